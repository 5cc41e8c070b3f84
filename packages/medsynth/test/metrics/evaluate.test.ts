import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pickImages } from '../../src/data/image/transform.js';
import { openDataset } from '../../src/data/source.js';
import type { Dataset } from '../../src/data/dataset.js';
import type { ImageArray } from '../../src/data/types.js';
import { evaluateSets, type LabelledSet } from '../../src/metrics/evaluate.js';
import { cachedFeatures, splitKey } from '../../src/metrics/features/cache.js';
import { domainExtractor } from '../../src/metrics/features/domain.js';
import type { FeatureExtractor } from '../../src/metrics/features/types.js';
import { METRICS, type MetricRecord } from '../../src/metrics/registry.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { DatasetError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { Rng } from '../../src/runtime/random.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
/** Small and quick: the extractor's quality is not what these tests measure. */
const QUICK = { epochs: 2, width: 8, maxTrainImages: 800, seed: 3 } as const;

let cache: string;
let ds: Dataset;
let extractor: FeatureExtractor;
let train: LabelledSet;
let test_: LabelledSet;

/** `n` images of `set` (every k-th), labels kept. */
function take(set: LabelledSet, n: number, offset = 0): LabelledSet {
  const step = Math.floor(set.images.count / n);
  const idx = Array.from({ length: n }, (_, i) => i * step + offset);
  return { images: pickImages(set.images, idx), labels: Int32Array.from(idx, (i) => set.labels![i]!) };
}

/** Real images with Gaussian pixel noise (σ in 8-bit levels): a degraded "generator". */
function noisy(set: LabelledSet, sigma: number, seed: number): LabelledSet {
  const rng = new Rng(seed);
  const data = Uint8Array.from(set.images.data, (v) =>
    Math.max(0, Math.min(255, Math.round(v + sigma * rng.normal()))),
  );
  return { images: { ...set.images, data }, labels: set.labels };
}

function find(
  records: readonly MetricRecord[],
  metric: string,
  comparison: string,
  cls: string | null = null,
) {
  const r = records.find((x) => x.metric === metric && x.comparison === comparison && x.class === cls);
  assert.ok(r, `no ${metric} record for ${comparison} ${cls}`);
  return r;
}

before(async () => {
  await selectBackend();
  cache = await mkdtemp(join(tmpdir(), 'medsynth-eval-'));
  ds = await openDataset({ source: PNEUMONIA });
  extractor = await domainExtractor(ds, [28, 28, 1], cache, QUICK);
  const load = async (name: 'train' | 'test') => {
    const s = ds.split(name);
    return { images: await s.load(), labels: Int32Array.from(s.labels) };
  };
  train = take(await load('train'), 1200);
  test_ = await load('test');
});

after(async () => {
  extractor?.dispose();
  await rm(cache, { recursive: true, force: true });
});

describe('domain extractor', () => {
  test('is trained once, then loaded from the cache with identical features', async () => {
    const events: ProgressEvent[] = [];
    const again = await domainExtractor(ds, [28, 28, 1], cache, QUICK, { onProgress: (e) => events.push(e) });
    try {
      assert.ok(events.some((e) => e.type === 'phase' && /cached domain extractor/.test(e.detail ?? '')));
      assert.equal(again.info.key, extractor.info.key);
      assert.equal(again.info.kind, 'domain');
      assert.equal(again.info.dim, 16); // width 8, 2 blocks at 28 px
      assert.match(again.info.description, /not ImageNet Inception/);
      const some = pickImages(test_.images, [0, 1, 2, 3, 4]);
      const a = await extractor.features(some);
      const b = await again.features(some);
      assert.deepEqual([a.rows, a.cols], [5, 16]);
      assert.deepEqual(Array.from(a.data), Array.from(b.data));
    } finally {
      again.dispose();
    }
    assert.equal((await readdir(join(cache, 'extractors'))).length, 1);
  });

  test('other options or another size give another extractor', async () => {
    const other = await domainExtractor(ds, [32, 32, 1], cache, { ...QUICK, epochs: 1 });
    try {
      assert.notEqual(other.info.key, extractor.info.key);
      // A 28 px image is resized (bilinear) to the extractor's 32 px input: same path for real and fake.
      const f = await other.features(pickImages(test_.images, [0, 1]));
      assert.equal(f.rows, 2);
    } finally {
      other.dispose();
    }
  });

  test('feature cache: a hit returns the stored matrix, another extractor key misses', async () => {
    const split = ds.split('test');
    const key = `${await splitKey(split)}-test-28x28x1`;
    let loads = 0;
    const load = async () => {
      loads++;
      return test_.images;
    };
    const first = await cachedFeatures(cache, extractor, key, load);
    const second = await cachedFeatures(cache, extractor, key, load);
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(loads, 1);
    assert.deepEqual(
      Array.from(second.features.data.subarray(0, 50)),
      Array.from(first.features.data.subarray(0, 50)),
    );
    const renamed: FeatureExtractor = {
      info: { ...extractor.info, key: 'other' },
      features: (i) => extractor.features(i),
      dispose: () => {},
    };
    assert.equal((await cachedFeatures(cache, renamed, key, load)).cached, false);
    assert.notEqual(await splitKey(ds.split('train')), await splitKey(split));
  });
});

describe('evaluateSets on PneumoniaMNIST', () => {
  test('floor < degraded real images < noise, per class too; registry records carry N, extractor, seed, time', async () => {
    const fake = noisy(take(test_, 400, 1), 40, 5);
    const result = await evaluateSets(
      { classNames: ds.classNames, real: train, fake, holdout: take(test_, 400), extractor },
      { metrics: ['fid', 'kid', 'prdc'], kidSubsets: 10, kidSubsetSize: 200, bootstrap: 5, seed: 2 },
    );
    assert.deepEqual(result.comparisons, ['fake', 'floor', 'noise']);
    for (const cls of [null, ...ds.classNames]) {
      const fid = (c: string) => find(result.records, 'fid', c, cls).values.fid!;
      assert.ok(
        fid('floor') < fid('fake') && fid('fake') < fid('noise'),
        `${cls}: ${fid('floor')} ${fid('fake')} ${fid('noise')}`,
      );
    }
    const kidOf = (c: string) => find(result.records, 'kid', c).values.kid!;
    assert.ok(kidOf('floor') < kidOf('fake') && kidOf('fake') < kidOf('noise'));
    const precision = (c: string) => find(result.records, 'prdc', c).values.precision!;
    assert.ok(precision('floor') > precision('noise'));
    const r = find(result.records, 'fid', 'fake');
    assert.equal(r.nReal, 1200);
    assert.equal(r.nCompared, 400);
    assert.equal(r.extractor, extractor.info.key);
    assert.equal(r.seed, 2);
    assert.ok(r.seconds > 0 && r.createdAt.length > 0);
    assert.ok(r.values.fidStd! > 0);
    // Every record is plain JSON.
    for (const rec of result.records) assert.deepEqual(JSON.parse(JSON.stringify(rec)), rec);
    assert.deepEqual(Object.keys(METRICS), [
      'fid',
      'kid',
      'prdc',
      'msssim',
      'privacy',
      'embedding',
      'projection',
    ]);
  });

  test('privacy: copies of training images are flagged, held-out-like images are not', async () => {
    const copies = take(train, 200, 2);
    const settings = { metrics: ['privacy'] as const, baselines: false, privacyPairs: 4 };
    const holdout = take(test_, 300);
    const copied = await evaluateSets(
      { classNames: ds.classNames, real: train, fake: copies, holdout, extractor },
      settings,
    );
    const fresh = await evaluateSets(
      { classNames: ds.classNames, real: train, fake: take(test_, 200, 1), holdout, extractor },
      settings,
    );
    for (const space of ['features', 'pixels']) {
      const c = copied.records.find((x) => (x.details as { space: string }).space.startsWith(space))!;
      const f = fresh.records.find((x) => (x.details as { space: string }).space.startsWith(space))!;
      assert.equal(c.values.closerThanHoldoutP5, 1);
      assert.ok(c.values.medianRatio! < 0.01);
      assert.ok(f.values.closerThanHoldoutP5! < 0.2, `${space}: ${f.values.closerThanHoldoutP5}`);
      assert.ok(
        f.values.medianRatio! > 0.8 && f.values.medianRatio! < 1.25,
        `${space}: ${f.values.medianRatio}`,
      );
    }
    const pairs = copied.privacy!.pixels.closest;
    assert.equal(pairs.length, 4);
    assert.equal(pairs[0]!.distance, 0);
  });

  test('MS-SSIM diversity: within classes of one set, beside the real reference', async () => {
    const fake = take(test_, 100, 3);
    const dup: LabelledSet = {
      images: pickImages(fake.images, new Array(100).fill(0)),
      labels: new Int32Array(100).fill(fake.labels![0]!),
    };
    const result = await evaluateSets(
      { classNames: ds.classNames, real: train, fake: dup, extractor },
      { metrics: ['msssim'], baselines: false, msssimPairs: 20 },
    );
    const all = find(result.records, 'msssim', 'fake');
    assert.equal(all.extractor, null);
    assert.ok(Math.abs(all.values.msssim! - 1) < 1e-4);
    assert.ok(all.values.msssimReal! < 0.9);
  });

  test('bad input gets errors that name the set', async () => {
    const real = take(train, 50);
    const rgb: ImageArray = {
      ...real.images,
      channels: 3,
      data: new Uint8Array(real.images.data.length * 3),
    };
    const cases: Array<[LabelledSet, RegExp]> = [
      [{ images: rgb, labels: real.labels }, /fake.*differ in size or channels|differ in size or channels/],
      [
        { images: { ...real.images, count: 0, data: new Uint8Array(0) }, labels: new Int32Array(0) },
        /no images/,
      ],
      [{ images: real.images, labels: new Int32Array(3) }, /one label per image/],
      [
        { images: pickImages(real.images, [0, 1, 2]), labels: Int32Array.from([0, 1, 0]) },
        /PRDC with k = 5 needs more than 5 images/,
      ],
    ];
    for (const [fake, pattern] of cases) {
      await assert.rejects(
        evaluateSets(
          { classNames: ds.classNames, real, fake, extractor },
          { metrics: ['fid', 'prdc'], baselines: false },
        ),
        (e: unknown) => e instanceof DatasetError && pattern.test(e.message) && /fake/.test(e.message),
      );
    }
  });
});
