// Element-wise kernel behaviour that tfjs-core's own specs do not reach: integer division by zero (ATen
// throws, TF.js gives 0), NaN and Infinity landing in int32 results, the legacy rank-1 Select condition,
// Range edge cases, string Fill, and handle leaks.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadAddon, registerLibtorchBackend } from '../src/index.js';

before(async () => {
  registerLibtorchBackend({ threads: 1 });
  await tf.setBackend('libtorch');
});

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync() as ArrayLike<number>);
}

describe('integer division', () => {
  test('FloorDiv by zero gives 0 where TF.js does, and floors the rest', () => {
    const r = tf.floorDiv(tf.tensor1d([5, -5, 7, -7], 'int32'), tf.tensor1d([0, 2, 0, -2], 'int32'));
    assert.equal(r.dtype, 'int32');
    assert.deepEqual(values(r), [0, -3, 0, 3]);
  });

  test('Mod by zero gives 0 and follows the divisor sign elsewhere', () => {
    const r = tf.mod(tf.tensor1d([5, -5, 7], 'int32'), tf.tensor1d([0, 3, -3], 'int32'));
    assert.equal(r.dtype, 'int32');
    assert.deepEqual(values(r), [0, 1, -2]);
  });

  test('float FloorDiv is int32 floor(a / b), non-finite quotients become 0', () => {
    const r = tf.floorDiv(tf.tensor1d([7.5, -7.5, 1, 0, 100]), tf.tensor1d([2, 2, 0, 0, -Infinity]));
    assert.equal(r.dtype, 'int32');
    assert.deepEqual(values(r), [3, -4, 0, 0, 0]);
  });
});

describe('dtype rules', () => {
  test('float math on int32 keeps int32, truncating, with NaN and Infinity as 0', () => {
    const x = tf.tensor1d([4, -1, 0], 'int32');
    const run = (name: string) => tf.engine().runKernel(name, { x }) as tf.Tensor;
    assert.deepEqual(values(run('Sqrt')), [2, 0, 0]);
    assert.deepEqual(values(run('Reciprocal')), [0, -1, 0]);
    assert.equal(run('Sqrt').dtype, 'int32');
    assert.equal(run('Exp').dtype, 'float32');
  });

  test('Relu, Relu6 and ClipByValue keep int32 and truncate fractional bounds', () => {
    const x = tf.tensor1d([-3, 2, 9], 'int32');
    assert.deepEqual(values(tf.relu6(x)), [0, 2, 6]);
    assert.deepEqual(values(tf.clipByValue(x, -2.5, 2.5)), [-2, 2, 2]);
    assert.equal(tf.clipByValue(x, -2.5, 2.5).dtype, 'int32');
  });

  test('NaN: relu and maximum propagate it, sign maps it to 0, step keeps it', () => {
    const x = tf.tensor1d([NaN, -1, 2]);
    assert.deepEqual(values(tf.relu(x)), [NaN, 0, 2]);
    assert.deepEqual(values(tf.sign(x)), [0, -1, 1]);
    assert.deepEqual(values(tf.step(x, 0.5)), [NaN, 0.5, 1]);
    assert.deepEqual(values(tf.maximum(x, tf.scalar(0))), [NaN, 0, 2]);
  });

  test('Round rounds half to even', () => {
    assert.deepEqual(values(tf.round(tf.tensor1d([0.5, 1.5, 2.5, -0.5, -1.5]))), [0, 2, 2, -0, -2]);
  });
});

describe('Select', () => {
  test('a rank-1 condition picks whole rows of higher-rank t and e', () => {
    const r = tf.engine().runKernel('Select', {
      condition: tf.tensor1d([true, false, true], 'bool'),
      t: tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]),
      e: tf.tensor2d([7, 8, 9, 10, 11, 12], [3, 2], 'int32'),
    }) as tf.Tensor;
    assert.equal(r.dtype, 'float32');
    assert.deepEqual(values(r), [1, 2, 9, 10, 5, 6]);
  });
});

describe('factories', () => {
  test('Range follows TF.js: auto-negated step 1, empty when the step points away', () => {
    assert.deepEqual(values(tf.range(3, 0)), [3, 2, 1]);
    assert.deepEqual(values(tf.range(0, 5, -1)), []);
    assert.deepEqual(values(tf.range(10, 0, 2)), []);
    assert.deepEqual(values(tf.range(0, 10, 3, 'int32')), [0, 3, 6, 9]);
    assert.equal(tf.range(0, 1, 0.1).size, 10);
  });

  test('Fill writes int32, bool and string tensors', () => {
    assert.deepEqual(values(tf.fill([2], 3.7, 'int32')), [3, 3]);
    assert.deepEqual(values(tf.fill([2], 1, 'bool')), [1, 1]);
    const s = tf.fill([2, 1], 'ab');
    assert.equal(s.dtype, 'string');
    assert.deepEqual(s.arraySync(), [['ab'], ['ab']]);
  });
});

test('kernels leave no ATen handles behind', () => {
  const addon = loadAddon();
  const live = addon.liveCount();
  tf.tidy(() => {
    const x = tf.tensor1d([1, -2, NaN]);
    const i = tf.tensor1d([3, 0, -4], 'int32');
    tf.floorDiv(i, i);
    tf.mod(i, i);
    tf.floorDiv(x, x);
    tf.step(x, 0.2);
    tf.addN([x, x, x]);
    tf.prelu(i, tf.tensor1d([2], 'int32'));
    tf.engine().runKernel('Sqrt', { x: i });
  });
  assert.equal(addon.liveCount(), live);
});
