// Per-class models behind one conditional generator: every row goes to its class's model and comes back in
// place, so image i is exactly what that model makes for z_i alone.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { perClassGenerator } from '../../src/generate/per-class.js';
import type { SamplingGenerator } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

/** An unconditional stand-in: a 2×2 image whose pixels are z's first entry + 10·k (k the model's class). */
function model(k: number, calls: number[][]): SamplingGenerator {
  return {
    zDim: 3,
    numClasses: 1,
    classNames: [`c${k}`],
    size: 2,
    channels: 1,
    conditional: false,
    truncation: 'z',
    generate(z, labels) {
      assert.equal(labels, null, 'a per-class model gets no labels');
      calls[k]!.push(z.shape[0]);
      return tf.tidy(
        () =>
          tf.tile(
            tf.reshape(tf.add(tf.slice(z, [0, 0], [-1, 1]), 10 * k), [-1, 1, 1, 1]),
            [1, 2, 2, 1],
          ) as tf.Tensor4D,
      );
    },
    dispose() {},
  };
}

test('rows are routed to their class model and returned in input order', () => {
  const calls: number[][] = [[], [], []];
  const g = perClassGenerator([model(0, calls), model(1, calls), model(2, calls)], ['a', 'b', 'c']);
  assert.equal(g.conditional, true);
  assert.deepEqual(g.classNames, ['a', 'b', 'c']);
  const labels = [2, 0, 2, 1, 0];
  const z = tf.tensor2d(
    labels.flatMap((_, i) => [i + 0.5, 0, 0]),
    [5, 3],
  );
  const y = tf.tensor1d(labels, 'int32');
  const before = tf.memory().numTensors;
  const x = g.generate(z, y);
  assert.equal(tf.memory().numTensors, before + 1, 'only the result is left');
  const pixels = x.dataSync();
  labels.forEach((k, i) => {
    for (let p = 0; p < 4; p++) assert.equal(pixels[i * 4 + p], i + 0.5 + 10 * k, `image ${i}`);
  });
  assert.deepEqual(calls, [[2], [1], [2]], 'one batch per class present');
  tf.dispose([x, z, y]);
});

test('labels are required and must be classes; models must agree', () => {
  const calls: number[][] = [[], []];
  const g = perClassGenerator([model(0, calls), model(1, calls)], ['a', 'b']);
  const z = tf.zeros([2, 3]) as tf.Tensor2D;
  assert.throws(() => g.generate(z, null), /labels/);
  assert.throws(() => g.generate(z, tf.tensor1d([0, 2], 'int32')), /label 2/);
  const other = { ...model(1, calls), zDim: 4 };
  assert.throws(() => perClassGenerator([model(0, calls), other], ['a', 'b']), /zDim/);
  assert.throws(() => perClassGenerator([model(0, calls)], ['a', 'b']), /1 models for 2 classes/);
  assert.throws(
    () => perClassGenerator([{ ...model(0, calls), conditional: true }], ['a']),
    /class-conditional/,
  );
  z.dispose();
});
