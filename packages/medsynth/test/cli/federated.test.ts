// `medsynth federated` as a user runs it: test certificates, refusals that name the flag, and a 3-site
// simulation on 127.0.0.1 whose run `generate` then uses like any other.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readRounds } from '../../src/federated/coordinator.js';
import { sharedData } from '../helpers/shared-data.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', entry, ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-cli-fed-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('medsynth federated', () => {
  test('certs: a CA, the coordinator and each site; keys private; no silent overwrite', async () => {
    const out = join(dir, 'certs');
    const r = cli('federated', 'certs', '--out', out, '--sites', 'a,b');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /site a: --tls-cert .*site-a\.crt/);
    const files = (await readdir(out)).sort();
    assert.deepEqual(files, [
      'ca.crt',
      'ca.key',
      'coordinator.crt',
      'coordinator.key',
      'site-a.crt',
      'site-a.key',
      'site-b.crt',
      'site-b.key',
    ]);
    assert.equal((await stat(join(out, 'site-a.key'))).mode & 0o777, 0o600);
    const again = cli('federated', 'certs', '--out', out, '--sites', 'a');
    assert.equal(again.code, 2);
    assert.match(again.stderr, /ca\.crt/);
  });

  test('serve and site refuse to run without TLS unless --insecure is given, naming the flag', () => {
    const serve = cli(
      'federated',
      'serve',
      '--data-free',
      '--preset',
      'tiny',
      '--rounds',
      '1',
      '--local-steps',
      '1',
    );
    assert.equal(serve.code, 2);
    assert.match(serve.stderr, /--tls-cert/);
    const site = cli(
      'federated',
      'site',
      '--coordinator',
      '127.0.0.1:1',
      '--name',
      'a',
      '--data',
      PNEUMONIA,
      '--ca',
      'x.crt',
    );
    assert.equal(site.code, 2);
    assert.match(site.stderr, /--tls-cert/);
    const bad = cli(
      'federated',
      'serve',
      '--preset',
      'tiny',
      '--rounds',
      '1',
      '--local-steps',
      '1',
      '--insecure',
      '--min-sites',
      '1',
      '--min-fit',
      '2',
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /minFit/);
  });

  test('simulate: 3 sites (non-IID) train one tiny cGAN; the run works with generate', async () => {
    const out = join(dir, 'runs');
    const r = cli(
      'federated',
      'simulate',
      '--data',
      PNEUMONIA,
      '--sites',
      '3',
      '--alpha',
      '0.3',
      '--preset',
      'tiny',
      '--rounds',
      '3',
      '--local-steps',
      '2',
      '--out',
      out,
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as {
      runDir: string;
      rounds: number;
      sites: string[];
      partition: Record<string, number[]>;
    };
    assert.equal(result.rounds, 3);
    assert.deepEqual(result.sites, ['site-1', 'site-2', 'site-3']);
    // The partition covers the train split (4708 images) and is non-IID: the sites' class mixes differ.
    const counts = Object.values(result.partition);
    assert.equal(
      counts.flat().reduce((a, b) => a + b, 0),
      4708,
    );
    const shares = counts.map((c) => c[0]! / (c[0]! + c[1]!));
    assert.ok(Math.max(...shares) - Math.min(...shares) > 0.05, JSON.stringify(counts));
    const rounds = await readRounds(result.runDir);
    assert.equal(rounds.length, 3);
    assert.deepEqual(
      rounds.map((r) => r.accepted.length),
      [3, 3, 3],
    );
    // Each site's software line names its backend (it once read "medsynth [object Object]").
    const federation = JSON.parse(await readFile(join(result.runDir, 'federation.json'), 'utf8')) as {
      sites: { software: string }[];
    };
    for (const s of federation.sites)
      assert.match(s.software, /^medsynth on \w+ \(\d+ threads, TF\.js [\d.]+\)$/);
    for (const site of result.sites) {
      const log = await readFile(join(result.runDir, 'sites', `${site}.log`), 'utf8');
      assert.match(log, /3 rounds/);
    }
    const gen = cli('generate', '--run', result.runDir, '--per-class', '4', '--out', join(dir, 'gen'));
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal((await readdir(join(dir, 'gen', 'normal'))).filter((f) => f.endsWith('.png')).length, 4);
  });
});
