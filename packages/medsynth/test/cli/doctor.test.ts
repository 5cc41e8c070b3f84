import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

/** A module resolve hook under which 'tfjs-backend-libtorch' is not installed. */
const withoutLibtorch =
  'data:text/javascript,import {register} from "node:module"; register("data:text/javascript,' +
  'export async function resolve(s, c, next) { if (s === \\"tfjs-backend-libtorch\\") { ' +
  'const e = new Error(\\"Cannot find package \'tfjs-backend-libtorch\' imported from medsynth\\"); ' +
  'e.code = \\"ERR_MODULE_NOT_FOUND\\"; throw e; } return next(s, c); }");';

function doctor(args: string[], options: { env?: Record<string, string>; imports?: string[] } = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  if (!options.env?.['MEDSYNTH_BACKEND']) delete env['MEDSYNTH_BACKEND'];
  // The `source` condition, as in the test runner: tfjs-backend-libtorch from its TypeScript sources.
  const nodeArgs = ['--conditions=source', ...(options.imports ?? []).flatMap((i) => ['--import', i])];
  const r = spawnSync(process.execPath, [...nodeArgs, '--import', 'tsx', entry, 'doctor', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Report {
  ok: boolean;
  node: string;
  cpu: { cores: number };
  tfjs: string;
  backend: {
    backend: string;
    reason: string;
    libtorch?: { version: string; threads: number; mkldnn: boolean; cuda: boolean; device: string };
    wasmKernels?: string[];
  } | null;
  tried: { backend: string; ok: boolean; reason: string }[];
  error?: string;
  sanity?: { ok: boolean; reference: string; checks: { name: string; ok: boolean; maxError: number }[] };
}

describe('medsynth doctor', () => {
  test('--json: libtorch selected, every backend tried, libtorch facts, sanity check OK', () => {
    const r = doctor(['--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'nothing on stderr');
    const s = JSON.parse(r.stdout) as Report;
    assert.equal(s.ok, true);
    assert.equal(s.node, process.version);
    assert.ok(s.cpu.cores >= 1);
    assert.match(s.tfjs, /^4\./);
    assert.equal(s.backend?.backend, 'libtorch');
    assert.match(s.backend.reason, /first choice/);
    assert.deepEqual(
      s.tried.map((t) => [t.backend, t.ok]),
      [
        ['libtorch', true],
        ['tfjs-node', false],
        ['wasm', true],
        ['cpu', true],
      ],
    );
    assert.match(s.tried[1]!.reason, /@tensorflow\/tfjs-node' is not installed/);
    assert.match(s.backend.libtorch!.version, /^\d+\.\d+/);
    assert.equal(s.backend.libtorch!.device, 'cpu');
    assert.equal(s.sanity?.ok, true);
    assert.equal(s.sanity.reference, 'cpu');
    assert.deepEqual(
      s.sanity.checks.map((c) => c.ok),
      [true, true, true],
    );
  });

  test('human output names the backend, why, what was tried, and the sanity check', () => {
    const r = doctor([]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^node\s+v\d+/m);
    assert.match(r.stdout, /^backend\s+libtorch$/m);
    assert.match(r.stdout, /^why\s+libtorch is the first choice/m);
    assert.match(r.stdout, /^tried\s+libtorch\s+ok\s/m);
    assert.match(r.stdout, /^\s+tfjs-node\s+--\s+the package '@tensorflow\/tfjs-node' is not installed/m);
    assert.match(
      r.stdout,
      /^libtorch\s+version \d+\.\d+\S* · \d+ threads · oneDNN (yes|no) · CUDA (yes|no) · device cpu/m,
    );
    assert.match(r.stdout, /^tfjs\s+4\./m);
    assert.match(r.stdout, /^sanity\s+OK\s+matmul/m);
    assert.match(r.stdout, /^\s+OK\s+conv2d filter gradient/m);
    assert.match(r.stdout, /^result\s+OK/m);
  });

  test('without libtorch it falls back to wasm, says why and that training will be slow', () => {
    const r = doctor(['--json'], { imports: [withoutLibtorch] });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Report;
    assert.equal(s.backend?.backend, 'wasm');
    assert.match(s.backend.reason, /libtorch not used: the package 'tfjs-backend-libtorch' is not installed/);
    assert.match(s.backend.reason, /[Tt]raining will be slow/);
    assert.ok(s.backend.wasmKernels?.includes('Conv2DBackpropFilter'));
    assert.equal(s.sanity?.ok, true);
  });

  test('--backend tfjs-node when it is not installed: the report, then exit 1', () => {
    const r = doctor(['--backend', 'tfjs-node', '--json']);
    assert.equal(r.code, 1);
    const s = JSON.parse(r.stdout) as Report;
    assert.equal(s.ok, false);
    assert.equal(s.backend, null);
    assert.match(
      s.error ?? '',
      /--backend tfjs-node cannot be used: the package '@tensorflow\/tfjs-node' is not installed/,
    );
    assert.match(r.stderr, /no working TF.js backend/);
    const human = doctor(['--backend', 'tfjs-node']);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^result\s+FAIL: --backend tfjs-node cannot be used/m);
    assert.match(human.stderr, /^medsynth: MedsynthError: no working TF.js backend/m);
  });

  test('MEDSYNTH_BACKEND selects the backend; an unknown one is a usage error', () => {
    const wasm = doctor(['--json'], { env: { MEDSYNTH_BACKEND: 'wasm' } });
    assert.equal(wasm.code, 0, wasm.stderr);
    const s = JSON.parse(wasm.stdout) as Report;
    assert.equal(s.backend?.backend, 'wasm');
    assert.deepEqual(
      s.tried.map((t) => t.backend),
      ['wasm'],
    );
    const bad = doctor([], { env: { MEDSYNTH_BACKEND: 'tpu' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /MEDSYNTH_BACKEND.*unknown backend/);
  });
});
