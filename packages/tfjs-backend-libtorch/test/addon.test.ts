// The addon's generic surface: handles, reads, operator calls by schema, errors, and the libtorch finder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  aten,
  loadAddon,
  registerLibtorchBackend,
  fallbackKernelNames,
  type Handle,
} from 'tfjs-backend-libtorch';

const addon = loadAddon();
const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('tensors round-trip through handles in each dtype, sync and async', async () => {
  const before = addon.liveCount();
  const f = addon.fromBuffer(new Float32Array([1.5, -2, 3]), [3], 0);
  const i = addon.fromBuffer(new Int32Array([7, -8]), [2, 1], 1);
  const b = addon.fromBuffer(new Uint8Array([0, 5, 1]), [3], 2);
  assert.deepEqual(addon.meta(i), [1, 2, 1]);
  assert.deepEqual([...addon.toBuffer(f)], [1.5, -2, 3]);
  assert.deepEqual([...(await addon.toBufferAsync(i))], [7, -8]);
  // Any non-zero byte is true; bool reads back as 0/1.
  assert.deepEqual([...addon.toBuffer(b)], [0, 1, 1]);
  assert.equal(addon.liveCount(), before + 3);
  for (const h of [f, i, b]) addon.dispose(h);
  assert.equal(addon.liveCount(), before);
  assert.throws(() => addon.toBuffer(f), /disposed/);
});

test('operators are called by schema name, with defaults and bigint integer scalars', () => {
  const x = addon.fromBuffer(new Int32Array([1, 2, 3]), [3], 1);
  const plus = aten('aten::add.Scalar')(x, 2n) as Handle;
  assert.equal(addon.meta(plus)[0], 1, 'an integer Scalar keeps int32');
  assert.deepEqual([...addon.toBuffer(plus)], [3, 4, 5]);
  const half = aten('aten::add.Scalar')(x, 0.5) as Handle;
  assert.equal(addon.meta(half)[0], 0, 'a double Scalar promotes to float32');
  // argmax returns int64 in ATen; the addon narrows it to int32.
  const arg = aten('aten::argmax')(x) as Handle;
  assert.deepEqual([addon.meta(arg)[0], ...addon.toBuffer(arg)], [1, 2]);
  for (const h of [x, plus, half, arg]) addon.dispose(h);
});

test('ATen errors name the operator; unknown operators are refused', () => {
  const a = addon.fromBuffer(new Float32Array(6), [2, 3], 0);
  const b = addon.fromBuffer(new Float32Array(8), [2, 4], 0);
  assert.throws(() => aten('aten::add.Tensor')(a, b), /aten::add: The size of tensor a \(3\) must match/);
  assert.throws(() => aten('aten::no_such_op'), /libtorch has no operator aten::no_such_op/);
  assert.throws(() => aten('aten::mm')(a), /argument 'mat2' is required/);
  addon.dispose(a);
  addon.dispose(b);
});

test('a CUDA device is refused clearly when this libtorch has none', { skip: addon.info().cuda }, () => {
  assert.throws(() => addon.setDevice('cuda:0'), /setDevice\('cuda:0'\): this libtorch has no CUDA/);
  assert.equal(addon.info().device, 'cpu');
});

test('the backend registers, sets threads, and falls back to the cpu kernels it does not implement', async () => {
  const info = registerLibtorchBackend({ threads: 1 });
  assert.equal(info.threads, 1);
  assert.ok(info.version.startsWith('1.') || info.version.startsWith('2.'));
  await tf.setBackend('libtorch');
  const fallbacks = fallbackKernelNames();
  assert.ok(fallbacks.includes('NonMaxSuppressionV3'));
  assert.ok(!fallbacks.includes('Conv2D') && !fallbacks.includes('FusedBatchNorm'));
  // A fallback kernel computes the same as on cpu.
  const boxes = tf.tensor2d([0, 0, 1, 1, 0, 0.1, 1, 1.1, 0, 10, 1, 11], [3, 4]);
  const keep = await tf.image.nonMaxSuppressionAsync(boxes, tf.tensor1d([0.9, 0.75, 0.6]), 3, 0.5);
  assert.deepEqual([...(await keep.data())], [0, 2]);
  tf.dispose([boxes, keep]);
  // Identity shares the data id: clone makes no new native tensor.
  const x = tf.tensor1d([1, 2, 3]);
  const live = addon.liveCount();
  const y = tf.clone(x);
  assert.equal(addon.liveCount(), live);
  tf.dispose([x, y]);
});

test('libtorch-config finds Debian libtorch and names what is wrong with a bad LIBTORCH', () => {
  const script = path.join(pkg, 'scripts', 'libtorch-config.cjs');
  const include = execFileSync(process.execPath, [script, 'include'], {
    encoding: 'utf8',
    env: { ...process.env, LIBTORCH: '' },
  });
  assert.match(include, /torch\/csrc\/api\/include/);
  const bad = spawnSync(process.execPath, [script, 'include'], {
    encoding: 'utf8',
    env: { ...process.env, LIBTORCH: '/nonexistent/libtorch' },
  });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /LIBTORCH=\/nonexistent\/libtorch has no include\/torch folder/);
});

test('float64 crosses bit for bit; operators narrow it to float32 unless asked to keep it', () => {
  const before = addon.liveCount();
  const values = new Float64Array([1 + 2 ** -40, -3.25, 1e-300]);
  const h = addon.fromBuffer(values, [3], 3);
  assert.deepEqual([...(addon.toBuffer(h) as unknown as Float64Array)], [...values]);
  const id = addon.op('aten::mul', 'Scalar');
  const narrowed = addon.call(id, [h, 2]) as Handle;
  const kept = addon.call(id, [h, 2], true) as Handle;
  assert.ok(addon.toBuffer(narrowed) instanceof Float32Array);
  assert.deepEqual(
    [...(addon.toBuffer(kept) as unknown as Float64Array)],
    [...values].map((v) => v * 2),
  );
  for (const x of [h, narrowed, kept]) addon.dispose(x);
  assert.equal(addon.liveCount(), before);
});
