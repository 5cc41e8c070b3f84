import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  type BackendReport,
  describeBackend,
  selectBackend,
  slowBackendWarning,
} from '../../src/runtime/backend.js';

const savedEnv = process.env['MEDSYNTH_BACKEND'];
before(() => {
  delete process.env['MEDSYNTH_BACKEND'];
});
after(() => {
  if (savedEnv === undefined) delete process.env['MEDSYNTH_BACKEND'];
  else process.env['MEDSYNTH_BACKEND'] = savedEnv;
});

describe('slowBackendWarning', () => {
  test('null while no backend has been chosen', () => {
    assert.equal(describeBackend(), undefined);
    assert.equal(slowBackendWarning(), null);
  });

  test('on wasm (MEDSYNTH_BACKEND=wasm): how much slower, why, and how to get libtorch', async () => {
    try {
      process.env['MEDSYNTH_BACKEND'] = 'wasm';
      assert.equal((await selectBackend()).backend, 'wasm');
    } finally {
      delete process.env['MEDSYNTH_BACKEND'];
    }
    const warning = slowBackendWarning();
    assert.ok(warning !== null);
    assert.match(warning, /^training on wasm \(MEDSYNTH_BACKEND asks for wasm\) is about 11× slower/);
    assert.match(warning, /7 kimg on wasm vs 80 on libtorch/);
    assert.match(warning, /apt-get install libtorch-dev libopenblas0-pthread g\+\+ make python3/);
    assert.match(warning, /'npm ci' again/);
    assert.match(warning, /medsynth doctor/);
  });

  test('null on the default libtorch backend', async () => {
    assert.equal((await selectBackend()).backend, 'libtorch');
    assert.equal(tf.getBackend(), 'libtorch');
    assert.equal(slowBackendWarning(), null);
  });

  test("says why libtorch was not used when the selection fell back (cpu: 'slower still')", () => {
    const failed =
      "the package 'tfjs-backend-libtorch' failed to load: libtorch_cpu.so: cannot open shared object file";
    const report = (backend: string): BackendReport => ({
      backend,
      reason: `libtorch not used: ${failed}. Using ${backend}: …`,
      tried: [
        { backend: 'libtorch', ok: false, reason: failed },
        { backend: 'tfjs-node', ok: false, reason: 'not installed' },
        { backend: 'wasm', ok: backend === 'wasm', reason: '…' },
        ...(backend === 'cpu' ? [{ backend: 'cpu' as const, ok: true, reason: '…' }] : []),
      ],
      threads: 1,
      tfjsVersion: tf.version_core,
    });
    const wasm = slowBackendWarning(report('wasm'));
    assert.ok(wasm?.startsWith(`training on wasm (libtorch not used: ${failed}) is about 11× slower`), wasm!);
    const cpu = slowBackendWarning(report('cpu'));
    assert.match(
      cpu!,
      /^training on cpu \(libtorch not used: .*cannot open shared object file\) is slower still/,
    );
    assert.match(cpu!, /libtorch-dev.*medsynth doctor/);
    assert.equal(slowBackendWarning({ ...report('wasm'), backend: 'tfjs-node' }), null);
  });
});
