import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageArray } from '../../src/data/types.js';
import {
  drawPairs,
  msSsimDiversity,
  msSsimPairs,
  msSsimSetup,
  type MsSsimOptions,
  type MsSsimSetup,
} from '../../src/metrics/ms-ssim.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { Rng } from '../../src/runtime/random.js';

/** Written by test/fixtures/ms-ssim/make_ms_ssim.py (float64 numpy/scipy reference). */
interface Fixture {
  readonly sets: {
    readonly name: string;
    readonly count: number;
    readonly height: number;
    readonly width: number;
    readonly channels: 1 | 3;
    readonly maxValue: number;
    readonly dtype: 'uint8' | 'uint16';
    readonly data: string;
  }[];
  readonly cases: {
    readonly set: string;
    readonly options: MsSsimOptions;
    readonly setup: MsSsimSetup;
    readonly pairs: string[];
    readonly aIdx: number[];
    readonly bIdx: number[];
    readonly expected: number[];
  }[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/ms-ssim/ms_ssim_cases.json', import.meta.url), 'utf8'),
) as Fixture;

function fixtureSet(name: string): ImageArray {
  const s = fixture.sets.find((x) => x.name === name)!;
  const bytes = Buffer.from(s.data, 'base64');
  const data =
    s.dtype === 'uint16'
      ? new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
      : new Uint8Array(bytes);
  return {
    data,
    count: s.count,
    height: s.height,
    width: s.width,
    channels: s.channels,
    maxValue: s.maxValue,
  };
}

/** `count` images of uniform 8-bit noise. */
function noise(count: number, size: number, channels: 1 | 3, seed: number): ImageArray {
  const rng = new Rng(seed);
  const data = Uint8Array.from({ length: count * size * size * channels }, () => rng.int(256));
  return { data, count, height: size, width: size, channels, maxValue: 255 };
}

/** Constant images, one per level. */
function constants(levels: readonly number[], size: number): ImageArray {
  const per = size * size;
  const data = new Uint8Array(levels.length * per);
  levels.forEach((v, i) => data.fill(v, i * per, (i + 1) * per));
  return { data, count: levels.length, height: size, width: size, channels: 1, maxValue: 255 };
}

/** Images `positions` of an image array. */
function pickImages(images: ImageArray, positions: readonly number[]): ImageArray {
  const per = images.height * images.width * images.channels;
  const data = new Uint8Array(positions.length * per);
  positions.forEach((p, i) => data.set(images.data.subarray(p * per, (p + 1) * per), i * per));
  return { ...images, data, count: positions.length };
}

const idx = (...xs: number[]) => Int32Array.from(xs);

before(async () => {
  await selectBackend();
});

describe('msSsimSetup', () => {
  test('28 px: the 11-tap window gives < 3 scales, so 7 taps (σ 1) and 3 scales', () => {
    const s = msSsimSetup(28, 28);
    assert.equal(s.windowSize, 7);
    assert.equal(s.sigma, 1);
    assert.equal(s.scales, 3);
    const w = [0.0448, 0.2856, 0.3001];
    const t = w.reduce((a, b) => a + b);
    s.weights.forEach((x, i) => assert.ok(Math.abs(x - w[i]! / t) < 1e-12));
  });

  test('64 px: 11 taps (σ 1.5), 3 scales; 256 px: 5 scales with the standard weights', () => {
    assert.deepEqual(
      { ...msSsimSetup(64, 64), weights: undefined },
      { windowSize: 11, sigma: 1.5, scales: 3, weights: undefined },
    );
    const s = msSsimSetup(256, 256);
    assert.equal(s.windowSize, 11);
    assert.equal(s.scales, 5);
    const w = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
    const t = w.reduce((a, b) => a + b);
    s.weights.forEach((x, i) => assert.ok(Math.abs(x - w[i]! / t) < 1e-12));
    assert.ok(Math.abs(s.weights.reduce((a, b) => a + b) - 1) < 1e-12);
    assert.equal(msSsimSetup(176, 176).scales, 5);
    assert.equal(msSsimSetup(175, 300).scales, 4, 'the shorter side decides');
  });

  test('explicit options are honoured; impossible ones throw', () => {
    assert.deepEqual(msSsimSetup(64, 64, { scales: 2, windowSize: 5 }).scales, 2);
    assert.equal(msSsimSetup(64, 64, { windowSize: 5 }).sigma, 1);
    assert.equal(msSsimSetup(64, 64, { windowSize: 9, sigma: 2 }).sigma, 2);
    assert.equal(msSsimSetup(16, 16).scales, 2);
    assert.throws(
      () => msSsimSetup(6, 28),
      (e) => e instanceof DatasetError && /6×28/.test(e.message),
    );
    assert.equal(msSsimSetup(64, 64, { scales: 4 }).windowSize, 7, '11 taps do not fit 4 scales at 64 px');
    assert.throws(
      () => msSsimSetup(64, 64, { scales: 5 }),
      DatasetError,
      '64 px cannot hold 5 scales of 7 taps',
    );
    assert.throws(
      () => msSsimSetup(64, 64, { windowSize: 4 }),
      (e) => e instanceof ConfigError && /windowSize/.test(e.message),
    );
    assert.throws(() => msSsimSetup(64, 64, { scales: 6 }), ConfigError);
    assert.throws(() => msSsimSetup(64, 64, { sigma: 0 }), ConfigError);
    assert.throws(() => msSsimSetup(64, 64, { batchSize: 0 }), ConfigError);
  });
});

describe('msSsimPairs', () => {
  for (const c of fixture.cases) {
    test(`matches the float64 numpy reference: ${c.set} ${JSON.stringify(c.options)}`, async () => {
      const images = fixtureSet(c.set);
      const setup = msSsimSetup(images.height, images.width, c.options);
      assert.equal(setup.windowSize, c.setup.windowSize);
      assert.equal(setup.sigma, c.setup.sigma);
      assert.equal(setup.scales, c.setup.scales);
      setup.weights.forEach((w, i) => assert.ok(Math.abs(w - c.setup.weights[i]!) < 1e-12));
      const got = await msSsimPairs(
        images,
        Int32Array.from(c.aIdx),
        images,
        Int32Array.from(c.bIdx),
        c.options,
      );
      got.forEach((v, k) =>
        assert.ok(Math.abs(v - c.expected[k]!) <= 1e-4, `${c.pairs[k]}: ${v} vs reference ${c.expected[k]}`),
      );
    });
  }

  test('identical images give 1; independent noise gives < 0.1 on average', async () => {
    for (const [size, channels] of [
      [28, 1],
      [28, 3],
      [64, 1],
    ] as const) {
      const imgs = noise(40, size, channels, size + channels);
      const first = Int32Array.from({ length: 20 }, (_, i) => i);
      const second = Int32Array.from({ length: 20 }, (_, i) => 20 + i);
      const same = await msSsimPairs(imgs, first, imgs, first);
      same.forEach((v) => assert.ok(Math.abs(v - 1) < 1e-5, `${size} px ×${channels}: ${v}`));
      // A single noise pair can reach ~0.3 at 28 px (few positions at the coarsest scale); the mean is ~0.03.
      const diff = await msSsimPairs(imgs, first, imgs, second);
      const mean = diff.reduce((s, v) => s + v, 0) / diff.length;
      assert.ok(mean < 0.1, `${size} px ×${channels}: mean ${mean}`);
      diff.forEach((v) => assert.ok(v >= 0 && v < 0.5, `${size} px ×${channels}: ${v}`));
    }
  });

  test('constant images: ((2ab + C1) / (a² + b² + C1))^w_M', async () => {
    const levels = [51, 204, 128, 0];
    for (const size of [28, 64]) {
      const imgs = constants(levels, size);
      const w = msSsimSetup(size, size).weights.at(-1)!;
      const got = await msSsimPairs(imgs, idx(0, 0, 2, 1), imgs, idx(1, 2, 3, 1));
      [
        [0, 1],
        [0, 2],
        [2, 3],
        [1, 1],
      ].forEach(([i, j], k) => {
        const a = levels[i!]! / 255;
        const b = levels[j!]! / 255;
        const expected = ((2 * a * b + 1e-4) / (a * a + b * b + 1e-4)) ** w;
        assert.ok(Math.abs(got[k]! - expected) < 1e-5, `${size} px ${a} vs ${b}: ${got[k]} vs ${expected}`);
      });
    }
  });

  test('batching does not change values; ticks report progress; no tensors leak', async () => {
    const imgs = noise(5, 28, 3, 9);
    const a = idx(0, 1, 2, 3, 4, 0, 1);
    const b = idx(1, 2, 3, 4, 0, 0, 3);
    const before = tf.memory().numTensors;
    const events: ProgressEvent[] = [];
    const small = await msSsimPairs(imgs, a, imgs, b, { batchSize: 3, onProgress: (e) => events.push(e) });
    const big = await msSsimPairs(imgs, a, imgs, b);
    assert.equal(tf.memory().numTensors, before);
    small.forEach((v, k) => assert.ok(Math.abs(v - big[k]!) < 1e-6));
    assert.deepEqual(
      events.map((e) => (e.type === 'tick' ? [e.phase, e.done, e.total, e.unit] : e.type)),
      [
        ['ms-ssim', 3, 7, 'pair'],
        ['ms-ssim', 6, 7, 'pair'],
        ['ms-ssim', 7, 7, 'pair'],
      ],
    );
    assert.equal((await msSsimPairs(imgs, idx(), imgs, idx())).length, 0);
  });

  test('MS-SSIM is symmetric and 8- vs 16-bit copies of an image agree', async () => {
    const imgs = fixtureSet('gray28');
    const [ab, ba] = [
      await msSsimPairs(imgs, idx(0, 1), imgs, idx(1, 2)),
      await msSsimPairs(imgs, idx(1, 2), imgs, idx(0, 1)),
    ];
    ab.forEach((v, k) => assert.ok(Math.abs(v - ba[k]!) < 1e-6));
    const wide: ImageArray = { ...imgs, data: Uint16Array.from(imgs.data, (v) => v * 257), maxValue: 65535 };
    const mixed = await msSsimPairs(imgs, idx(0, 1, 2), wide, idx(0, 1, 2));
    mixed.forEach((v) => assert.ok(Math.abs(v - 1) < 1e-5));
  });

  test('an aborted signal stops before the next batch', async () => {
    const imgs = noise(4, 28, 1, 3);
    const ctrl = new AbortController();
    ctrl.abort(new Error('stop'));
    await assert.rejects(msSsimPairs(imgs, idx(0), imgs, idx(1), { signal: ctrl.signal }), /stop/);
  });

  test('bad input → DatasetError naming the argument', async () => {
    const g = noise(3, 28, 1, 1);
    const rgb = noise(3, 28, 3, 1);
    const big = noise(3, 32, 1, 1);
    const named = (field: string) => (e: unknown) => e instanceof DatasetError && e.context.field === field;
    await assert.rejects(msSsimPairs(g, idx(0), rgb, idx(0)), named('b'));
    await assert.rejects(msSsimPairs(g, idx(0), big, idx(0)), named('b'));
    await assert.rejects(msSsimPairs(g, idx(0, 1), g, idx(0)), named('bIdx'));
    await assert.rejects(msSsimPairs(g, idx(0, 3), g, idx(0, 1)), named('aIdx[1]'));
    await assert.rejects(msSsimPairs(g, idx(0), g, idx(-1)), named('bIdx[0]'));
    await assert.rejects(
      msSsimPairs({ ...g, count: 0, data: new Uint8Array(0) }, idx(), g, idx()),
      named('a'),
    );
    await assert.rejects(msSsimPairs(g, idx(0), { ...g, data: g.data.subarray(1) }, idx(0)), named('b.data'));
  });
});

describe('drawPairs', () => {
  test('distinct unordered pairs i < j in every regime; all of them when few exist', () => {
    for (const [n, k] of [
      [5, 200],
      [21, 200],
      [30, 200],
      [300, 200],
    ] as const) {
      const pairs = drawPairs(n, k, new Rng(n));
      const all = (n * (n - 1)) / 2;
      assert.equal(pairs.length, Math.min(k, all));
      assert.ok(pairs.every(([i, j]) => i >= 0 && i < j && j < n));
      assert.equal(new Set(pairs.map(([i, j]) => i * n + j)).size, pairs.length, `n=${n}: repeats`);
    }
  });
});

describe('msSsimDiversity', () => {
  // Class 0: eight copies of one image; class 1: twelve noise images; class 2: one image; class 3: none.
  const base = noise(13, 28, 1, 42);
  const images = pickImages(base, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 10, 11, 12]);
  const labels = Int32Array.from([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 1, 1, 1, 1]);
  const names = ['copies', 'noise', 'single', 'empty'];

  test('copies score ≈ 1, noise low; pair counts; classes without pairs are null', async () => {
    const r = await msSsimDiversity(images, labels, names, { pairsPerClass: 40, seed: 1 });
    assert.equal(r.setup.windowSize, 7);
    const [copies, noisy, single, empty] = r.perClass;
    assert.deepEqual([copies!.images, noisy!.images, single!.images, empty!.images], [8, 12, 1, 0]);
    assert.equal(copies!.pairs, 28, 'all 28 pairs of 8 images');
    assert.equal(noisy!.pairs, 40, '40 of the 66 pairs of 12 images');
    assert.ok(Math.abs(copies!.mean! - 1) < 1e-5 && copies!.std! < 1e-5);
    assert.ok(noisy!.mean! < 0.1 && noisy!.std! >= 0);
    assert.deepEqual([single!.pairs, single!.mean, single!.std], [0, null, null]);
    assert.deepEqual([empty!.pairs, empty!.mean, empty!.std], [0, null, null]);
    assert.ok(Math.abs(r.mean! - (copies!.mean! + noisy!.mean!) / 2) < 1e-12);
    assert.equal(r.pairs, 68);
  });

  test('the same seed gives the same pairs and values; another seed other pairs', async () => {
    const opts = { pairsPerClass: 10 };
    const a = await msSsimDiversity(images, labels, names, { ...opts, seed: 5 });
    const b = await msSsimDiversity(images, labels, names, { ...opts, seed: 5 });
    const c = await msSsimDiversity(images, labels, names, { ...opts, seed: 6 });
    assert.deepEqual(a, b);
    assert.notEqual(a.perClass[1]!.mean, c.perClass[1]!.mean);
  });

  test('no class with two images → mean null', async () => {
    const r = await msSsimDiversity(pickImages(base, [0, 1]), idx(0, 1), ['a', 'b']);
    assert.deepEqual([r.mean, r.pairs], [null, 0]);
  });

  test('bad input → DatasetError naming the argument', async () => {
    const named = (field: string) => (e: unknown) => e instanceof DatasetError && e.context.field === field;
    await assert.rejects(msSsimDiversity(images, labels.subarray(1), names), named('labels'));
    await assert.rejects(msSsimDiversity(images, labels, names.slice(0, 2)), named('labels[16]'));
    await assert.rejects(msSsimDiversity(images, labels, []), named('classNames'));
    await assert.rejects(
      msSsimDiversity({ ...images, count: 0, data: new Uint8Array(0) }, idx(), names),
      named('images'),
    );
    await assert.rejects(msSsimDiversity(images, labels, names, { pairsPerClass: 0 }), ConfigError);
  });
});
