import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  autoBlocks,
  DEFAULT_CNN_OPTIONS,
  loadCnn,
  resolveCnnOptions,
  trainCnn,
  type CnnTrainOptions,
  type TrainedCnn,
} from '../../src/classify/cnn.js';
import { labelledFromSplit } from '../../src/classify/labelled.js';
import type { LabelledImages } from '../../src/classify/types.js';
import { openDataset } from '../../src/data/source.js';
import type { ImageArray } from '../../src/data/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

/** ~1500 train images (stratified), the whole test split (624, 62.5 % pneumonia), 300 train images for quick runs. */
let train: LabelledImages;
let small: LabelledImages;
let test_: LabelledImages;
/** Trained once (3 epochs on ~1500 images, ~3 s on one thread) and shared by the tests that only read it. */
let clf: TrainedCnn;

/** Images `positions` of a set, as a new labelled set. */
function pick(set: LabelledImages, positions: readonly number[]): LabelledImages {
  const { images } = set;
  const per = images.height * images.width * images.channels;
  const data = new Uint8Array(positions.length * per);
  positions.forEach((p, i) => data.set(images.data.subarray(p * per, (p + 1) * per), i * per));
  return {
    images: { ...images, data, count: positions.length },
    labels: Int32Array.from(positions, (p) => set.labels[p]!),
    classNames: set.classNames,
  };
}

before(async () => {
  await selectBackend();
  const ds = await openDataset({ source: PNEUMONIA });
  train = await labelledFromSplit(ds.split('train').fraction(1500 / 4708, 7));
  test_ = await labelledFromSplit(ds.split('test'));
  small = pick(
    train,
    Array.from({ length: 300 }, (_, i) => i * 5),
  );
  clf = await trainCnn(train, { epochs: 3, classWeights: 'balanced', seed: 1 });
});

describe('trainCnn on PneumoniaMNIST-28', () => {
  test('the data is what the thresholds assume', () => {
    assert.equal(test_.images.count, 624);
    const pneumonia = test_.labels.reduce((a, l) => a + l, 0) / test_.labels.length;
    assert.ok(Math.abs(pneumonia - 0.625) < 1e-9, `test pneumonia share ${pneumonia}`);
    assert.ok(train.images.count > 1400 && train.images.count < 1600, `${train.images.count} train images`);
  });

  test('briefly trained, it beats the majority class (0.625) by a clear margin on the real test split', async () => {
    const ev = await clf.evaluate(test_.images, test_.labels);
    // Seen over seeds 0–4: accuracy 0.86–0.875, balanced accuracy 0.84–0.87.
    assert.ok(ev.accuracy >= 0.8, `accuracy ${ev.accuracy}`);
    assert.ok(ev.balancedAccuracy >= 0.75, `balanced accuracy ${ev.balancedAccuracy}`);
    assert.equal(ev.count, 624);
    assert.deepEqual(ev.classCounts, [234, 390]);
    // The confusion matrix sums to N, its rows to the class counts, its diagonal to the correct ones.
    assert.equal(
      ev.confusion.flat().reduce((a, b) => a + b, 0),
      624,
    );
    assert.deepEqual(
      ev.confusion.map((r) => r[0]! + r[1]!),
      [234, 390],
    );
    assert.equal(ev.confusion[0]![0]! + ev.confusion[1]![1]!, Math.round(ev.accuracy * 624));
    assert.equal(ev.perClassRecall[0], ev.confusion[0]![0]! / 234);
    assert.equal(ev.balancedAccuracy, (ev.perClassRecall[0]! + ev.perClassRecall[1]!) / 2);
    assert.deepEqual(JSON.parse(JSON.stringify(ev)), ev);
  });

  test('predictProba rows are distributions; predict is their argmax', async () => {
    const proba = await clf.predictProba(test_.images, 100);
    assert.equal(proba.length, 624 * 2);
    const predicted = await clf.predict(test_.images);
    for (let i = 0; i < 624; i++) {
      const p0 = proba[2 * i]!;
      const p1 = proba[2 * i + 1]!;
      assert.ok(Math.abs(p0 + p1 - 1) < 1e-5 && p0 >= 0 && p1 >= 0);
      assert.equal(predicted[i], p1 > p0 ? 1 : 0);
    }
    // Batch size does not change the answer (inference mode: batch norm uses its running statistics).
    const whole = await clf.predictProba(test_.images, 624);
    for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(whole[i]! - proba[i]!) < 1e-5);
    assert.equal((await clf.predictProba({ ...test_.images, count: 0, data: new Uint8Array(0) })).length, 0);
  });

  test('history, summary and options are recorded', () => {
    assert.equal(clf.history.length, 3);
    assert.deepEqual(
      clf.history.map((h) => h.epoch),
      [1, 2, 3],
    );
    assert.ok(clf.history.every((h) => Number.isFinite(h.trainLoss) && h.valAccuracy === undefined));
    assert.ok(clf.history[2]!.trainLoss < clf.history[0]!.trainLoss, 'the training loss falls');
    assert.equal(clf.bestEpoch, 3);
    assert.equal(clf.stoppedEarly, false);
    assert.equal(clf.blocks, 2);
    assert.deepEqual(clf.inputShape, [28, 28, 1]);
    const summary = clf.describe();
    assert.deepEqual(JSON.parse(JSON.stringify(summary)), summary);
    assert.equal(summary.options.classWeights, 'balanced');
    assert.equal(summary.options.width, DEFAULT_CNN_OPTIONS.width);
    assert.ok(summary.parameters > 1000);
    // An epoch budget: whole epochs of ⌊N/64⌋ batches (+ a last one of ≥ 2 images); no per-epoch step counts.
    const n = train.images.count;
    assert.equal(summary.budget, 'epochs');
    assert.equal(summary.steps, 3 * (Math.floor(n / 64) + (n % 64 >= 2 ? 1 : 0)));
    assert.equal(summary.options.steps, undefined);
    assert.ok(!('steps' in DEFAULT_CNN_OPTIONS));
    assert.ok(clf.history.every((h) => !('steps' in h)));
  });

  test('no tensor leaks: repeated inference, and a whole training once disposed', async () => {
    await clf.predictProba(test_.images);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await clf.predictProba(test_.images, 64);
      await clf.evaluate(test_.images, test_.labels);
    }
    assert.equal(tf.memory().numTensors, n);
    const other = await trainCnn(small, {
      epochs: 2,
      width: 4,
      augment: { flip: true, shift: 0.1 },
      validation: { images: small.images, labels: small.labels },
    });
    assert.ok(tf.memory().numTensors > n);
    other.dispose();
    assert.equal(tf.memory().numTensors, n);
    await assert.rejects(other.predict(small.images), /disposed/);
  });
});

describe('reproducibility', () => {
  const options: CnnTrainOptions = { epochs: 2, width: 4, seed: 3, augment: { flip: true, shift: 0.1 } };

  test('same seed → identical predictions; another seed → different ones', async () => {
    const a = await trainCnn(small, options);
    const b = await trainCnn(small, options);
    const c = await trainCnn(small, { ...options, seed: 4 });
    try {
      const pa = await a.predictProba(test_.images);
      const pb = await b.predictProba(test_.images);
      const pc = await c.predictProba(test_.images);
      assert.deepEqual(pb, pa);
      assert.deepEqual(
        b.history.map((h) => h.trainLoss),
        a.history.map((h) => h.trainLoss),
      );
      assert.notDeepEqual(pc, pa);
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });
});

describe('early stopping', () => {
  test('stops after `patience` epochs without improvement and restores the best epoch', async () => {
    // A validation set whose labels are all wrong: the better the model learns the train labels, the worse
    // its validation loss — so epoch 1 is best, training stops at 1 + patience, and the final weights must be
    // epoch 1's, not the last epoch's.
    const wrong = { images: small.images, labels: small.labels.map((l) => 1 - l) };
    const events: ProgressEvent[] = [];
    const patience = 2;
    const es = await trainCnn(
      small,
      { epochs: 10, width: 4, patience, learningRate: 3e-3, schedule: 'constant', validation: wrong },
      { onProgress: (e) => events.push(e) },
    );
    try {
      const losses = es.history.map((h) => h.valLoss!);
      const best = losses.indexOf(Math.min(...losses)) + 1;
      assert.equal(es.bestEpoch, best);
      assert.equal(es.history.length, best + patience, `val losses ${losses.join(', ')}`);
      assert.ok(es.stoppedEarly);
      assert.ok(es.bestEpoch < es.history.length);
      // The held weights give the best epoch's validation figures, not the last epoch's.
      const proba = await es.predictProba(wrong.images);
      let nll = 0;
      wrong.labels.forEach((l, i) => (nll -= Math.log(Math.max(proba[2 * i + l]!, 1e-12))));
      nll /= wrong.labels.length;
      const record = es.history[es.bestEpoch - 1]!;
      const last = es.history[es.history.length - 1]!;
      assert.ok(
        Math.abs(nll - record.valLoss!) < 1e-5,
        `held ${nll}, best ${record.valLoss}, last ${last.valLoss}`,
      );
      assert.ok(Math.abs(nll - last.valLoss!) > 1e-3, 'differs from the last epoch');
      const ev = await es.evaluate(wrong.images, wrong.labels);
      assert.equal(ev.accuracy, record.valAccuracy);

      // Progress: one phase, a tick (unit epochs) and a valAccuracy metric per epoch, then done.
      assert.equal(events[0]?.type, 'phase');
      const ticks = events.filter((e) => e.type === 'tick');
      assert.deepEqual(
        ticks.map((t) => [t.done, t.total, t.unit]),
        es.history.map((h) => [h.epoch, 10, 'epochs']),
      );
      const metrics = events.filter((e) => e.type === 'metric');
      assert.deepEqual(
        metrics.map((m) => [m.name, m.value]),
        es.history.map((h) => ['valAccuracy', h.valAccuracy]),
      );
      assert.equal(events.at(-1)?.type, 'done');
    } finally {
      es.dispose();
    }
  });

  test('an aborted training rejects with the signal reason and frees its tensors', async () => {
    const n = tf.memory().numTensors;
    const ac = new AbortController();
    await assert.rejects(
      trainCnn(
        small,
        { epochs: 50, width: 4 },
        {
          signal: ac.signal,
          onProgress: (e) => {
            if (e.type === 'tick') ac.abort(new Error('stop here'));
          },
        },
      ),
      /stop here/,
    );
    assert.equal(tf.memory().numTensors, n);
  });
});

describe('a step budget (`steps`)', () => {
  /** 50 images at batch 16: batches of 16, 16, 16 and 2 → 4 steps per epoch. */
  let fifty: LabelledImages;
  before(() => {
    fifty = pick(
      small,
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  /** Runs `fn`, counting Adam updates and the step size each one used. */
  async function countingSteps<T>(fn: () => Promise<T>): Promise<{ result: T; rates: number[] }> {
    const proto = tf.AdamOptimizer.prototype;
    const original = proto.applyGradients;
    const rates: number[] = [];
    proto.applyGradients = function (this: tf.AdamOptimizer, grads) {
      rates.push((this as unknown as { learningRate: number }).learningRate);
      original.call(this, grads);
    };
    try {
      return { result: await fn(), rates };
    } finally {
      proto.applyGradients = original;
    }
  }

  test('takes exactly `steps` steps over ⌈steps / steps per epoch⌉ passes, the cosine decaying over them', async () => {
    const events: ProgressEvent[] = [];
    const { result: m, rates } = await countingSteps(() =>
      trainCnn(
        fifty,
        { steps: 10, epochs: 1, batchSize: 16, width: 4, learningRate: 2e-3 },
        { onProgress: (e) => events.push(e) },
      ),
    );
    try {
      assert.equal(rates.length, 10);
      // Cosine over the 10 steps, not over `epochs` (1 epoch = 4 steps).
      rates.forEach((r, s) => assert.ok(Math.abs(r - 1e-3 * (1 + Math.cos((Math.PI * s) / 10))) < 1e-12));
      assert.equal(m.steps, 10);
      assert.equal(m.budget, 'steps');
      assert.deepEqual(
        m.history.map((h) => [h.epoch, h.steps]),
        [
          [1, 4],
          [2, 4],
          [3, 2],
        ],
      );
      assert.equal(m.bestEpoch, 3);
      assert.equal(m.stoppedEarly, false);
      const summary = m.describe();
      assert.equal(summary.steps, 10);
      assert.equal(summary.budget, 'steps');
      assert.equal(summary.options.steps, 10);
      assert.deepEqual(JSON.parse(JSON.stringify(summary)), summary);
      const ticks = events.filter((e) => e.type === 'tick');
      assert.deepEqual(
        ticks.map((t) => [t.done, t.total, t.unit]),
        [
          [1, 3, 'epochs'],
          [2, 3, 'epochs'],
          [3, 3, 'epochs'],
        ],
      );

      // Saved and loaded, the record is the same.
      const dir = await mkdtemp(join(tmpdir(), 'medsynth-cnn-steps-'));
      try {
        await m.save(dir);
        const loaded = await loadCnn(dir);
        try {
          assert.deepEqual(loaded.describe(), summary);
        } finally {
          loaded.dispose();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      m.dispose();
    }
  });

  test('fewer steps than one epoch: that many steps, one pass', async () => {
    const { result: m, rates } = await countingSteps(() =>
      trainCnn(fifty, { steps: 2, batchSize: 16, width: 4 }),
    );
    try {
      assert.equal(rates.length, 2);
      assert.equal(m.steps, 2);
      assert.deepEqual(
        m.history.map((h) => [h.epoch, h.steps]),
        [[1, 2]],
      );
    } finally {
      m.dispose();
    }
  });

  test('early stopping never ends it early; the best pass is still restored', async () => {
    // As in the early-stopping test: validation labels all wrong, so the validation loss soon rises.
    const wrong = { images: fifty.images, labels: fifty.labels.map((l) => 1 - l) };
    const options: CnnTrainOptions = {
      batchSize: 16,
      width: 4,
      patience: 1,
      learningRate: 1e-2,
      schedule: 'constant',
      seed: 2,
      validation: wrong,
    };
    // With an epoch budget, this setup stops early.
    const byEpochs = await trainCnn(fifty, { ...options, epochs: 8 });
    const { result: m, rates } = await countingSteps(() => trainCnn(fifty, { ...options, steps: 30 }));
    try {
      assert.ok(byEpochs.stoppedEarly, `val losses ${byEpochs.history.map((h) => h.valLoss).join(', ')}`);
      assert.ok(byEpochs.history.length < 8);
      assert.equal(rates.length, 30);
      assert.equal(m.steps, 30);
      assert.equal(m.stoppedEarly, false);
      assert.deepEqual(
        m.history.map((h) => h.steps),
        [4, 4, 4, 4, 4, 4, 4, 2],
      );
      assert.ok(m.history.every((h) => Number.isFinite(h.valLoss)));
      // Same seed and constant step size: the passes the epoch budget ran are the same ones.
      assert.deepEqual(
        m.history.slice(0, byEpochs.history.length).map((h) => h.trainLoss),
        byEpochs.history.map((h) => h.trainLoss),
      );
      // The held weights are the best check's.
      const losses = m.history.map((h) => h.valLoss!);
      assert.equal(m.bestEpoch, losses.indexOf(Math.min(...losses)) + 1);
      const proba = await m.predictProba(wrong.images);
      let nll = 0;
      wrong.labels.forEach((l, i) => (nll -= Math.log(Math.max(proba[2 * i + l]!, 1e-12))));
      nll /= wrong.labels.length;
      assert.ok(
        Math.abs(nll - losses[m.bestEpoch - 1]!) < 1e-5,
        `held ${nll}, val losses ${losses.join(', ')}`,
      );
    } finally {
      byEpochs.dispose();
      m.dispose();
    }
  });

  test('a save from before `steps` was recorded loads with the steps of its whole epochs', async () => {
    const m = await trainCnn(fifty, { epochs: 2, batchSize: 16, width: 4 });
    const dir = await mkdtemp(join(tmpdir(), 'medsynth-cnn-steps-'));
    try {
      assert.equal(m.steps, 8);
      await m.save(dir);
      const path = join(dir, 'classifier.json');
      const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      delete json.steps;
      delete json.budget;
      await writeFile(path, JSON.stringify(json));
      const loaded = await loadCnn(dir);
      try {
        assert.deepEqual(loaded.describe(), m.describe());
      } finally {
        loaded.dispose();
      }
    } finally {
      m.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sizes and channels', () => {
  test('auto blocks follow the image side', () => {
    assert.deepEqual(
      [8, 28, 32, 64, 96, 128, 256].map((s) => autoBlocks(s, s)),
      [2, 2, 2, 3, 3, 4, 4],
    );
  });

  test('a 3-channel 64 px set trains and predicts at its own size', async () => {
    // Two synthetic classes: bright left half vs bright right half, 3 channels.
    const count = 40;
    const side = 64;
    const data = new Uint8Array(count * side * side * 3);
    const labels = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      labels[i] = i % 2;
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++)
          for (let c = 0; c < 3; c++)
            data[((i * side + y) * side + x) * 3 + c] = x < side / 2 === (labels[i] === 0) ? 220 : 30;
    }
    const images: ImageArray = { data, count, height: side, width: side, channels: 3, maxValue: 255 };
    const m = await trainCnn(
      { images, labels, classNames: ['left', 'right'] },
      { epochs: 4, width: 4, batchSize: 8 },
    );
    try {
      assert.equal(m.blocks, 3);
      assert.deepEqual(m.inputShape, [64, 64, 3]);
      const ev = await m.evaluate(images, labels);
      assert.equal(ev.accuracy, 1);
      await assert.rejects(m.predict(test_.images), (e: unknown) => {
        assert.ok(e instanceof DatasetError);
        assert.match(e.message, /expected 64×64×3, found 28×28×1/);
        return true;
      });
    } finally {
      m.dispose();
    }
  });
});

describe('bad input', () => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    [
      'label count ≠ image count',
      () => trainCnn({ ...small, labels: small.labels.slice(1) }),
      /train\.labels.*label count does not match image count.*expected 300 labels.*found 299/,
    ],
    [
      'label out of range',
      () => trainCnn({ ...small, labels: small.labels.map((l, i) => (i === 17 ? 2 : l)) }),
      /train\.labels\[17\].*label out of range.*expected 0\.\.1, found 2/,
    ],
    [
      'negative label',
      () => trainCnn({ ...small, labels: small.labels.map((l, i) => (i === 3 ? -1 : l)) }),
      /train\.labels\[3\].*out of range/,
    ],
    [
      'empty training set',
      () =>
        trainCnn({
          ...small,
          images: { ...small.images, count: 0, data: new Uint8Array(0) },
          labels: new Int32Array(0),
        }),
      /\[train\]: no images.*found 0/,
    ],
    [
      'a single training image',
      () => trainCnn(pick(small, [0])),
      /\[train\]: a classifier needs at least 2 training images/,
    ],
    [
      'one class',
      () => trainCnn({ ...small, classNames: ['only'] }),
      /train\.classNames.*at least 2 classes/,
    ],
    [
      'data length ≠ count × shape',
      () => trainCnn({ ...small, images: { ...small.images, count: 301 } }),
      /train\.data.*does not match/,
    ],
    [
      'validation labels out of range',
      () => trainCnn(small, { validation: { images: small.images, labels: small.labels.map(() => 5) } }),
      /validation\.labels\[0\].*out of range/,
    ],
    [
      'class weights of the wrong length',
      () => trainCnn(small, { classWeights: [1, 2, 3] }),
      /classWeights.*one class weight per class.*expected 2 weights, found 3/,
    ],
    [
      'evaluate: label count ≠ image count',
      () => clf.evaluate(test_.images, test_.labels.slice(0, 10)),
      /images\.labels.*label count does not match/,
    ],
    [
      'evaluate: empty set',
      () => clf.evaluate({ ...test_.images, count: 0, data: new Uint8Array(0) }, new Int32Array(0)),
      /no images/,
    ],
  ];
  for (const [name, run, message] of cases) {
    test(`${name} → DatasetError naming it`, async () => {
      await assert.rejects(run(), (e: unknown) => {
        assert.ok(e instanceof DatasetError, String(e));
        assert.match(e.message, message);
        return true;
      });
    });
  }

  test('bad options → ConfigError naming the field', async () => {
    for (const [options, field] of [
      [{ epochs: 0 }, 'epochs'],
      [{ learningRate: -1 }, 'learningRate'],
      [{ dropout: 1 }, 'dropout'],
      [{ augment: { shift: 0.9 } }, 'augment.shift'],
      [{ classWeights: 'equal' }, 'classWeights'],
      [{ epoch: 3 }, 'classifier'],
      [{ steps: 0 }, 'steps'],
      [{ steps: 2.5 }, 'steps'],
    ] as const) {
      assert.throws(
        () => resolveCnnOptions(options as never),
        (e: unknown) => e instanceof ConfigError && e.context.field === field,
        JSON.stringify(options),
      );
      await assert.rejects(trainCnn(small, options as never), ConfigError);
    }
  });

  test('a bad inference batch size → RangeError', async () => {
    await assert.rejects(clf.predictProba(test_.images, 0), RangeError);
  });
});
