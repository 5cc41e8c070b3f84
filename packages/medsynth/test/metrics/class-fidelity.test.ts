import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainedCnn } from '../../src/classify/cnn.js';
import { labelledFromSplit } from '../../src/classify/labelled.js';
import type { LabelledImages } from '../../src/classify/types.js';
import { openDataset } from '../../src/data/source.js';
import type { ImageArray } from '../../src/data/types.js';
import { classFidelity, JUDGE_DEFAULTS, trainJudge } from '../../src/metrics/class-fidelity.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { DatasetError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

let judge: TrainedCnn;
let realTest: LabelledImages;

/** Images `positions` of an image array. */
function pickImages(images: ImageArray, positions: readonly number[]): ImageArray {
  const per = images.height * images.width * images.channels;
  const data = new Uint8Array(positions.length * per);
  positions.forEach((p, i) => data.set(images.data.subarray(p * per, (p + 1) * per), i * per));
  return { ...images, data, count: positions.length };
}

before(async () => {
  await selectBackend();
  const ds = await openDataset({ source: PNEUMONIA });
  const train = await labelledFromSplit(ds.split('train').fraction(1500 / 4708, 7));
  const val = await labelledFromSplit(ds.split('val'));
  realTest = await labelledFromSplit(ds.split('test'));
  // Brief (3 epochs on ~1500 images, a few seconds); the real val split is monitored.
  judge = await trainJudge(train, val, { epochs: 3, seed: 1 });
});
after(() => judge.dispose());

describe('trainJudge', () => {
  test('trains with the judge defaults, monitoring the validation split', () => {
    assert.equal(judge.options.classWeights, JUDGE_DEFAULTS.classWeights);
    assert.equal(judge.options.epochs, 3, 'options override the defaults');
    assert.ok(judge.history.length >= 1 && judge.history.length <= 3);
    assert.ok(judge.history.every((h) => h.valAccuracy !== undefined && h.valAccuracy > 0.6));
    assert.ok(judge.bestEpoch >= 1 && judge.bestEpoch <= judge.history.length);
  });
});

describe('classFidelity', () => {
  test('real test images with their true labels score the judge’s real-test accuracy', async () => {
    const r = await classFidelity(judge, realTest.images, realTest.labels, realTest);
    const ev = await judge.evaluate(realTest.images, realTest.labels);
    assert.ok(
      ev.accuracy >= 0.8 && ev.balancedAccuracy >= 0.75,
      `judge accuracy ${ev.accuracy} / ${ev.balancedAccuracy}`,
    );
    assert.equal(r.accuracy, ev.accuracy);
    assert.equal(r.realTestAccuracy, ev.accuracy);
    assert.equal(r.realTestBalancedAccuracy, ev.balancedAccuracy);
    assert.equal(r.realTestCount, 624);
    assert.equal(r.balancedAccuracy, ev.balancedAccuracy);
    assert.deepEqual(r.confusion, ev.confusion);
    assert.equal(r.count, 624);
    assert.equal(
      r.confusion.flat().reduce((a, b) => a + b, 0),
      624,
    );
    assert.deepEqual(r.perClass, [
      { className: judge.classNames[0], accuracy: ev.perClassRecall[0], count: 234 },
      { className: judge.classNames[1], accuracy: ev.perClassRecall[1], count: 390 },
    ]);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  });

  test('deliberately swapped labels score low (1 − accuracy)', async () => {
    const swapped = realTest.labels.map((l) => 1 - l);
    const r = await classFidelity(judge, realTest.images, swapped);
    const right = await classFidelity(judge, realTest.images, realTest.labels);
    assert.ok(r.accuracy < 0.25, `swapped ${r.accuracy}`);
    assert.ok(Math.abs(r.accuracy - (1 - right.accuracy)) < 1e-12);
    assert.equal(r.realTestAccuracy, undefined);
    assert.ok(!('realTestAccuracy' in r));
    // Rows are intended classes: swapping the labels swaps the rows.
    assert.deepEqual(r.confusion, [right.confusion[1], right.confusion[0]]);
  });

  test('labels that ignore the image (a generator that ignores its class) score near chance', async () => {
    const rng = new Rng(11);
    const random = Int32Array.from(realTest.labels, () => rng.int(2));
    const r = await classFidelity(judge, realTest.images, random);
    assert.ok(r.accuracy > 0.35 && r.accuracy < 0.65, `random labels ${r.accuracy}`);
    assert.ok(r.balancedAccuracy > 0.35 && r.balancedAccuracy < 0.65);
  });

  test('a class with no generated images has accuracy null and is left out of the balanced mean', async () => {
    const ones = [...realTest.labels.keys()].filter((i) => realTest.labels[i] === 1).slice(0, 100);
    const fake = pickImages(realTest.images, ones);
    const r = await classFidelity(judge, fake, new Int32Array(100).fill(1));
    assert.deepEqual(r.perClass[0], { className: judge.classNames[0], accuracy: null, count: 0 });
    assert.equal(r.perClass[1]!.count, 100);
    assert.equal(r.balancedAccuracy, r.perClass[1]!.accuracy);
    assert.equal(r.accuracy, r.perClass[1]!.accuracy);
  });

  test('no tensor leaks after a warm-up call', async () => {
    await classFidelity(judge, realTest.images, realTest.labels, realTest);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      await classFidelity(judge, realTest.images, realTest.labels, realTest, { batchSize: 50 });
    assert.equal(tf.memory().numTensors, n);
  });

  const bad: [string, () => Promise<unknown>, RegExp][] = [
    [
      'intended labels length ≠ image count',
      () => classFidelity(judge, realTest.images, realTest.labels.slice(0, 5)),
      /\[fake\.labels\].*label count does not match image count.*expected 624 labels.*found 5/,
    ],
    [
      'intended label out of range',
      () =>
        classFidelity(
          judge,
          realTest.images,
          realTest.labels.map((l, i) => (i === 9 ? 7 : l)),
        ),
      /\[fake\.labels\[9\]\].*label out of range.*expected 0\.\.1, found 7/,
    ],
    [
      'no generated images',
      () => classFidelity(judge, pickImages(realTest.images, []), new Int32Array(0)),
      /\[fake\].*no images/,
    ],
    [
      'generated images of another size',
      () =>
        classFidelity(
          judge,
          { data: new Uint8Array(2 * 32 * 32), count: 2, height: 32, width: 32, channels: 1, maxValue: 255 },
          Int32Array.of(0, 1),
        ),
      /\[fake\].*resize them first.*expected 28×28×1, found 32×32×1/,
    ],
    [
      'real test labels length ≠ image count',
      () =>
        classFidelity(judge, realTest.images, realTest.labels, {
          images: realTest.images,
          labels: realTest.labels.slice(1),
        }),
      /\[realTest\.labels\].*label count does not match/,
    ],
  ];
  for (const [name, run, message] of bad) {
    test(`${name} → DatasetError naming it`, async () => {
      await assert.rejects(run(), (e: unknown) => {
        assert.ok(e instanceof DatasetError, String(e));
        assert.match(e.message, message);
        return true;
      });
    });
  }
});
