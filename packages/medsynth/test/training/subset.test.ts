// Training on part of the train split: `trainImages` (listed ids, e.g. a classifier's limited-data subset) and
// `trainClass` (one class, an unconditional model). Only the chosen images load; run.json names them; resume
// and restart load the same ones; bad ids and classes fail before a run directory exists.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainOptionsInput } from '../../src/config/train-options.js';
import type { Split } from '../../src/data/dataset.js';
import { openDataset } from '../../src/data/source.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import { disposeWeightSets, findCheckpoint, loadCheckpoint } from '../../src/training/checkpoint.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { resumeGan, trainGan } from '../../src/training/loop.js';
import { loadRealSet } from '../../src/training/real-data.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

const CLASSES = ['normal', 'pneumonia'];

let out: string;
let train: Split;
/** 20 train positions spread over the split (both classes), in split order, and their ids. */
const POSITIONS = Array.from({ length: 20 }, (_, k) => 7 + 233 * k);
let ids: string[];
let counts: number[];

before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-subset-'));
  train = (await openDataset(tiny().data)).split('train');
  ids = POSITIONS.map((p) => train.id(p));
  counts = [0, 0];
  for (const p of POSITIONS) counts[train.labels[p]!]!++;
  assert.ok(counts[0]! > 0 && counts[1]! > 0, `both classes among the 20: ${counts.join('/')}`);
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

const tiny = tinyTrainOptions(() => ({ model: 'dcgan', outDir: out, kimg: 0.064, tickKimg: 0.032 }));

interface RunJson {
  data: {
    classNames: string[];
    trainCounts: number[];
    trainImages: number;
    imageIds?: string[];
    trainClass?: string | null;
  };
}

async function runJson(runDir: string): Promise<RunJson> {
  return JSON.parse(await readFile(join(runDir, 'run.json'), 'utf8')) as RunJson;
}

async function checkpointState(runDir: string) {
  const ckpt = await loadCheckpoint(await findCheckpoint(runDir), []);
  disposeWeightSets(ckpt.weights);
  return ckpt.state;
}

/** Every weight of the latest checkpoint as plain arrays (for exact comparisons). */
async function checkpointValues(runDir: string): Promise<Map<string, Float32Array>> {
  const ckpt = await loadCheckpoint(await findCheckpoint(runDir));
  const values = new Map<string, Float32Array>();
  for (const [group, map] of Object.entries(ckpt.weights)) {
    for (const [name, t] of Object.entries(map)) values.set(`${group}:${name}`, t.dataSync() as Float32Array);
  }
  disposeWeightSets(ckpt.weights);
  return values;
}

/** A fresh, empty out dir; the assertion after a refused run is that it stays empty. */
async function emptyOut(): Promise<string> {
  return mkdtemp(join(out, 'refused-'));
}

async function rejectsBeforeRunDir(
  extra: Partial<TrainOptionsInput>,
  check: (e: unknown) => void,
): Promise<void> {
  const dir = await emptyOut();
  await assert.rejects(trainGan(tiny({ ...extra, outDir: dir })), (e: unknown) => {
    check(e);
    return true;
  });
  assert.deepEqual(await readdir(dir), [], 'no run directory created');
}

describe('loadRealSet with a subset', () => {
  test('trainImages: only the listed images, in split order whatever the list order', async () => {
    const events: ProgressEvent[] = [];
    const real = await loadRealSet(
      tiny().data,
      28,
      'auto',
      { onProgress: (e) => events.push(e) },
      { trainImages: [...ids].reverse() },
    );
    assert.equal(real.images.count, 20);
    assert.deepEqual(real.imageIds, ids);
    assert.deepEqual([...real.labels], [...POSITIONS.map((p) => train.labels[p]!)]);
    assert.deepEqual(real.classNames, CLASSES);
    assert.deepEqual(real.classCounts, counts);
    const load = events.find((e) => e.type === 'phase' && e.phase.startsWith('load train'));
    assert.ok(load?.type === 'phase' && load.detail === '20 images', 'decodes only the 20');
    // The pixels are those images' own.
    const one = await train.subset([POSITIONS[5]!]).load({ size: 28, channels: 1, bitDepth: 8 });
    const per = 28 * 28;
    assert.deepEqual(real.images.data.subarray(5 * per, 6 * per), one.data);
  });

  test('trainClass: one class, labels 0; with trainImages the intersection', async () => {
    const normal = await loadRealSet(tiny().data, 28, 1, {}, { trainClass: 'normal' });
    assert.deepEqual(normal.classNames, ['normal']);
    assert.deepEqual(normal.classCounts, [train.classCounts()[0]]);
    assert.equal(normal.images.count, train.classCounts()[0]);
    assert.ok(normal.labels.every((l) => l === 0));
    const normalIds = [...train.labels.keys()].filter((p) => train.labels[p] === 0).map((p) => train.id(p));
    assert.deepEqual(normal.imageIds, normalIds);

    const both = await loadRealSet(tiny().data, 28, 1, {}, { trainImages: ids, trainClass: 'pneumonia' });
    assert.deepEqual(
      both.imageIds,
      POSITIONS.filter((p) => train.labels[p] === 1).map((p) => train.id(p)),
    );
    assert.deepEqual(both.classNames, ['pneumonia']);
    assert.deepEqual(both.classCounts, [counts[1]]);
    assert.ok(both.labels.every((l) => l === 0));
  });

  test('no subset: the whole split, imageIds null', async () => {
    const real = await loadRealSet(tiny().data, 28, 1, {}, { trainImages: null, trainClass: null });
    assert.equal(real.imageIds, null);
    assert.equal(real.images.count, train.size);
    assert.deepEqual(real.classCounts, train.classCounts());
  });
});

describe('training on a subset', () => {
  test('trainImages: run.json records the ids and their count; the checkpoint the subset’s class counts', async () => {
    const r = await trainGan(tiny({ trainImages: [...ids].reverse() }));
    const { data } = await runJson(r.runDir);
    assert.equal(data.trainImages, 20);
    assert.deepEqual(data.imageIds, ids);
    assert.equal(data.trainClass, null);
    assert.deepEqual(data.classNames, CLASSES);
    assert.deepEqual(data.trainCounts, counts);
    const state = await checkpointState(r.runDir);
    assert.deepEqual(state.classCounts, counts);
    assert.deepEqual(state.classNames, CLASSES);
  });

  test('without a subset run.json has the image count and no ids', async () => {
    const r = await trainGan(tiny({ kimg: 0.032 }));
    const { data } = await runJson(r.runDir);
    assert.equal(data.trainImages, train.size);
    assert.ok(!('imageIds' in data) && !('trainClass' in data), Object.keys(data).join(','));
  });

  for (const model of ['dcgan', 'ddpm', 'stylegan2', 'pggan'] as const) {
    test(`trainClass (${model}): an unconditional single-class model`, async () => {
      const r = await trainGan(
        tiny({ model, trainClass: 'pneumonia', ...(model === 'ddpm' ? { sampleSteps: 2 } : {}) }),
      );
      const { data } = await runJson(r.runDir);
      const n = train.classCounts()[1]!;
      assert.deepEqual(data.classNames, ['pneumonia']);
      assert.deepEqual(data.trainCounts, [n]);
      assert.equal(data.trainImages, n);
      assert.equal(data.trainClass, 'pneumonia');
      assert.equal(data.imageIds?.length, n);
      const { generator, run } = await loadGenerator(r.runDir);
      try {
        assert.equal(generator.conditional, false);
        assert.equal(generator.numClasses, 1);
        assert.deepEqual(run.classNames, ['pneumonia']);
        assert.deepEqual(run.classCounts, [n]);
        const x = tf.tidy(() => generator.generate(tf.randomNormal([2, generator.zDim]), null));
        assert.deepEqual(x.shape, [2, 28, 28, 1]);
        x.dispose();
      } finally {
        generator.dispose();
      }
    });
  }
});

describe('refused subsets', () => {
  test('unknown ids: ConfigError on trainImages naming up to 3 and the count, no run directory', async () => {
    const unknown = ['train[99999]', 'nope.png', 'test[0]', 'val[1]', 'x'];
    await rejectsBeforeRunDir({ trainImages: [ids[0]!, ...unknown] }, (e) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.context.field, 'trainImages');
      assert.match(e.context.found!, /^5 unknown: "train\[99999\]", "nope\.png", "test\[0\]"/);
      assert.ok(!e.context.found!.includes('"x"'), e.context.found);
      assert.match(e.message, /5 of 6 ids are not train images \(2 of them in the val or test split\)/);
    });
  });

  test('an unknown class: ConfigError on trainClass listing the classes, no run directory', async () => {
    await rejectsBeforeRunDir({ trainClass: 'covid' }, (e) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.context.field, 'trainClass');
      assert.equal(e.context.expected, 'normal, pneumonia');
      assert.equal(e.context.found, 'covid');
    });
  });

  test('nothing left (the listed images hold none of the class): DatasetError, no run directory', async () => {
    const pneumoniaOnly = POSITIONS.filter((p) => train.labels[p] === 1).map((p) => train.id(p));
    await rejectsBeforeRunDir({ trainImages: pneumoniaOnly, trainClass: 'normal' }, (e) => {
      assert.ok(e instanceof DatasetError, String(e));
      assert.match(e.message, /no train images are left/);
    });
  });

  test('options: duplicate ids, an empty list, and trainClass with a conditional-only family', () => {
    const field = (f: string) => (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.context.field, f);
      return true;
    };
    assert.throws(() => tiny({ trainImages: ['train[1]', 'train[2]', 'train[1]'] }), field('trainImages'));
    assert.throws(() => tiny({ trainImages: [] }), field('trainImages'));
    for (const model of ['cgan', 'acgan'] as const)
      assert.throws(() => tiny({ model, trainClass: 'normal' }), field('trainClass'));
    const o = tiny();
    assert.equal(o.trainImages, null);
    assert.equal(o.trainClass, null);
  });
});

describe('resume and restart keep the subset', () => {
  test('a resumed trainImages run continues on the same ids, exactly as an uninterrupted one', async () => {
    const full = await trainGan(tiny({ trainImages: ids, kimg: 0.128 }));
    const half = await trainGan(tiny({ trainImages: ids, kimg: 0.064 }));
    const events: ProgressEvent[] = [];
    const resumed = await resumeGan(half.runDir, { kimg: 0.128 }, { onProgress: (e) => events.push(e) });
    assert.equal(resumed.stoppedBy, 'kimg');
    assert.equal(resumed.step, full.step);
    assert.ok(resumed.step > half.step);
    const trainPhase = events.find((e) => e.type === 'phase' && e.phase === 'train');
    assert.ok(trainPhase?.type === 'phase' && /, 20 images$/.test(trainPhase.detail ?? ''), 'trained on 20');
    const { data } = await runJson(resumed.runDir);
    assert.deepEqual(data.imageIds, ids);
    const options = JSON.parse(await readFile(join(resumed.runDir, 'options.json'), 'utf8')) as {
      trainImages: string[];
      kimg: number;
    };
    assert.deepEqual(options.trainImages, ids);
    assert.equal(options.kimg, 0.128);
    assert.deepEqual((await checkpointState(resumed.runDir)).classCounts, counts);
    const a = await checkpointValues(full.runDir);
    const b = await checkpointValues(resumed.runDir);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${k} differs after resume`);
  });

  test('a single-class run resumes (its classes match the checkpoint) and restarts on the same images', async () => {
    const subset = { trainImages: ids, trainClass: 'normal' };
    const first = await trainGan(tiny({ ...subset, kimg: 0.032 }));
    const resumed = await resumeGan(first.runDir, { kimg: 0.064 });
    assert.ok(resumed.step > first.step);
    assert.deepEqual((await checkpointState(resumed.runDir)).classNames, ['normal']);
    // Killed before its first checkpoint: a restart from step 0 with the saved options.
    await rm(join(first.runDir, 'checkpoints'), { recursive: true, force: true });
    await rm(join(first.runDir, 'run.json'));
    const warnings: string[] = [];
    const restarted = await resumeGan(
      first.runDir,
      {},
      { onProgress: (e) => void (e.type === 'warning' && warnings.push(e.message)) },
    );
    assert.ok(
      warnings.some((w) => /starting it over/.test(w)),
      warnings.join('\n'),
    );
    assert.equal(restarted.step, resumed.step);
    const { data } = await runJson(first.runDir);
    const normalIds = POSITIONS.filter((p) => train.labels[p] === 0).map((p) => train.id(p));
    assert.deepEqual(data.imageIds, normalIds);
    assert.equal(data.trainImages, normalIds.length);
    assert.equal(data.trainClass, 'normal');
    assert.deepEqual(data.classNames, ['normal']);
    assert.deepEqual((await checkpointState(first.runDir)).classCounts, [normalIds.length]);
  });
});
