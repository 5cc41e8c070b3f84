import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, checkBackend, describeBackend, selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, isMedsynthError } from '../../src/runtime/errors.js';

const savedEnv = process.env['MEDSYNTH_BACKEND'];
before(() => {
  delete process.env['MEDSYNTH_BACKEND'];
});
after(() => {
  if (savedEnv === undefined) delete process.env['MEDSYNTH_BACKEND'];
  else process.env['MEDSYNTH_BACKEND'] = savedEnv;
});

describe('selectBackend', () => {
  test('picks libtorch by default (the addon is built here) and reports it', async () => {
    const report = await selectBackend();
    assert.equal(report.backend, 'libtorch', report.reason);
    assert.equal(tf.getBackend(), 'libtorch');
    assert.deepEqual(report.tried[0], { backend: 'libtorch', ok: true, reason: report.tried[0]!.reason });
    assert.equal(report.tried.length, 1, 'stops at the first backend that works');
    assert.match(report.reason, /first choice/);
    assert.ok(report.libtorch, 'libtorch facts');
    assert.match(report.libtorch.version, /^\d+\.\d+/);
    assert.equal(report.threads, report.libtorch.threads);
    assert.equal(typeof report.libtorch.mkldnn, 'boolean');
    assert.equal(report.tfjsVersion, tf.version_core);
    assert.deepEqual(JSON.parse(JSON.stringify(report)), report, 'plain JSON');
    assert.deepEqual(describeBackend(), report);
  });

  test("prefer: 'wasm' gives wasm with the training kernels registered", async () => {
    const report = await selectBackend({ prefer: 'wasm' });
    assert.equal(report.backend, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(
      report.tried.map((t) => [t.backend, t.ok]),
      [['wasm', true]],
    );
    assert.match(report.reason, /wasm requested \(prefer option\)/);
    assert.ok(report.wasmKernels?.includes('Conv2DBackpropFilter'));
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
    assert.equal(report.libtorch, undefined);
    assert.ok(report.threads >= 1);
    assert.deepEqual(describeBackend(), report);
    // The training kernels work: a conv2d filter gradient matches the reference.
    const check = await checkBackend();
    assert.equal(check.backend, 'wasm');
    assert.ok(check.ok, JSON.stringify(check));
    assert.equal(tf.getBackend(), 'wasm', 'the check leaves the backend as it was');
  });

  test("prefer: 'tfjs-node' fails with a clear error naming the package when it isn't installed", async () => {
    const before = tf.getBackend();
    await assert.rejects(selectBackend({ prefer: 'tfjs-node' }), (e: unknown) => {
      assert.ok(e instanceof BackendError && isMedsynthError(e));
      assert.equal(e.exitCode, 1);
      assert.match(e.message, /backend 'tfjs-node' cannot be used/);
      assert.match(e.message, /'@tensorflow\/tfjs-node' is not installed/);
      assert.deepEqual(
        e.attempts.map((a) => [a.backend, a.ok]),
        [['tfjs-node', false]],
      );
      assert.equal((e.toJSON() as { field?: string }).field, 'prefer');
      return true;
    });
    assert.equal(tf.getBackend(), before, 'a failed request leaves the active backend alone');
  });

  test('MEDSYNTH_BACKEND forces a backend; an unknown name is a ConfigError', async () => {
    try {
      process.env['MEDSYNTH_BACKEND'] = 'wasm';
      const report = await selectBackend();
      assert.equal(report.backend, 'wasm');
      assert.match(report.reason, /requested \(MEDSYNTH_BACKEND\)/);
      process.env['MEDSYNTH_BACKEND'] = 'tpu';
      await assert.rejects(selectBackend(), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /MEDSYNTH_BACKEND.*unknown backend.*found tpu/);
        return true;
      });
      // An explicit prefer wins over the environment.
      process.env['MEDSYNTH_BACKEND'] = 'tfjs-node';
      assert.equal((await selectBackend({ prefer: 'libtorch' })).backend, 'libtorch');
    } finally {
      delete process.env['MEDSYNTH_BACKEND'];
    }
  });

  test('probeAll tries every backend but still selects the first that works', async () => {
    const report = await selectBackend({ probeAll: true });
    assert.equal(report.backend, 'libtorch');
    assert.equal(tf.getBackend(), 'libtorch');
    assert.deepEqual(
      report.tried.map((t) => t.backend),
      ['libtorch', 'tfjs-node', 'wasm', 'cpu'],
    );
    assert.deepEqual(
      report.tried.map((t) => t.ok),
      [true, false, true, true],
    );
  });

  test('describeBackend says so when the backend was changed outside selectBackend', async () => {
    await selectBackend({ prefer: 'wasm' });
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    const report = describeBackend();
    assert.equal(report?.backend, 'cpu');
    assert.match(report.reason, /not by medsynth's selectBackend/);
    await tf.setBackend('wasm');
    assert.equal(describeBackend()?.backend, 'wasm');
    assert.match(describeBackend()!.reason, /wasm requested/);
  });

  test('an aborted signal stops the selection', async () => {
    await assert.rejects(selectBackend({ signal: AbortSignal.abort() }), { name: 'AbortError' });
  });
});

describe('checkBackend', () => {
  test('compares with tfjs-backend-cpu, or float64 loops', async () => {
    await selectBackend({ prefer: 'libtorch' });
    for (const reference of ['cpu', 'js'] as const) {
      const check = await checkBackend({ reference });
      assert.equal(check.reference, reference);
      assert.equal(check.backend, 'libtorch');
      assert.equal(check.checks.length, 3);
      for (const c of check.checks) {
        assert.ok(c.ok && c.relError < 1e-4, `${c.name}: ${c.relError}`);
      }
      assert.ok(check.ok);
    }
    assert.equal(tf.getBackend(), 'libtorch');
  });
});
