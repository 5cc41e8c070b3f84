import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  DEFAULT_TEXTURE_OPTIONS,
  featureNames,
  glcmFeatures,
  glcmMatrix,
  greyImage,
  hogDescriptor,
  hogLength,
  lbpCodes,
  lbpHistogram,
  quantise,
  textureFeatures,
} from '../../src/classify/texture.js';
import type { ImageArray } from '../../src/data/types.js';
import { DatasetError } from '../../src/runtime/errors.js';

interface Case {
  name: string;
  height: number;
  width: number;
  channels: 1 | 3;
  pixels: number[];
  lbp: { points: number; radius: number; hist: number[] }[];
  glcm: { levels: number; distances: number[]; features: number[] }[];
  hog: { cellSize: number; blockSize: number; bins: number; descriptor: number[] }[];
  glcmMatrices?: { levels: number; dRow: number; dCol: number; matrix: number[] }[];
}

/** Reference values from test/fixtures/classify/make_texture_fixtures.py (plain numpy, exact-rational LBP). */
const { cases } = JSON.parse(
  readFileSync(new URL('../fixtures/classify/texture_cases.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

function imageOf(c: Case): ImageArray {
  return {
    data: Uint8Array.from(c.pixels),
    count: 1,
    height: c.height,
    width: c.width,
    channels: c.channels,
    maxValue: 255,
  };
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    assert.ok(d <= tol, `${what}[${i}]: ${actual[i]} vs reference ${expected[i]} (|Δ| ${d} > ${tol})`);
  }
}

/** Deterministic pseudo-random bytes (LCG) for images built in the tests. */
function noise(n: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  return Uint8Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  });
}

/** A 64×64 grey test image: smooth blobs plus noise (a texture with structure at several scales). */
function textured64(): Float64Array {
  const n = noise(64 * 64, 7);
  return Float64Array.from({ length: 64 * 64 }, (_, i) => {
    const y = Math.floor(i / 64);
    const x = i % 64;
    return Math.round(
      Math.min(255, Math.max(0, 128 + 70 * Math.sin(y / 5) * Math.cos(x / 3) + (n[i]! - 128) / 4)),
    );
  });
}

/** The image turned by 90° counter-clockwise: out[y][x] = in[x][w−1−y]. */
function rotate90(g: Float64Array, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  for (let y = 0; y < w; y++) for (let x = 0; x < h; x++) out[y * h + x] = g[x * w + (w - 1 - y)]!;
  return out;
}

describe('texture features against the numpy reference', () => {
  assert.ok(cases.length >= 8);
  for (const c of cases) {
    describe(c.name, () => {
      const grey = greyImage(imageOf(c), 0);
      test('LBP riu2 histograms', () => {
        for (const { points, radius, hist } of c.lbp) {
          const h = lbpHistogram(grey, c.height, c.width, points, radius);
          assertClose(h, hist, 1e-12, `P${points}R${radius}`);
          assert.ok(Math.abs(h.reduce((a, b) => a + b, 0) - 1) < 1e-12);
        }
      });
      test('GLCM features', () => {
        for (const { levels, distances, features } of c.glcm) {
          assertClose(glcmFeatures(grey, c.height, c.width, levels, distances), features, 1e-9, `L${levels}`);
        }
        for (const m of c.glcmMatrices ?? []) {
          const q = quantise(grey, m.levels);
          const p = glcmMatrix(q, c.height, c.width, m.levels, m.dRow, m.dCol);
          assertClose(p, m.matrix, 1e-12, `GLCM (${m.dRow},${m.dCol})`);
        }
      });
      test('HOG descriptors', () => {
        assert.ok(c.hog.length >= 1);
        for (const { cellSize, blockSize, bins, descriptor } of c.hog) {
          const d = hogDescriptor(grey, c.height, c.width, cellSize, blockSize, bins);
          assert.equal(d.length, hogLength(c.height, c.width, cellSize, blockSize, bins));
          assertClose(d, descriptor, 1e-6, `HOG cell ${cellSize}`);
        }
      });
    });
  }

  test('textureFeatures stacks LBP, GLCM and HOG rows in order, one row per image', () => {
    const picked = cases.filter((c) => c.height === 16 && c.width === 16 && c.channels === 1);
    assert.ok(picked.length >= 4);
    const images: ImageArray = {
      data: Uint8Array.from(picked.flatMap((c) => c.pixels)),
      count: picked.length,
      height: 16,
      width: 16,
      channels: 1,
      maxValue: 255,
    };
    let done = 0;
    const m = textureFeatures(images, 'lbp+glcm+hog', {}, (n) => (done = n));
    assert.equal(done, picked.length);
    assert.equal(m.rows, picked.length);
    assert.equal(m.cols, 10 + 18 + 26 + 12 + 36);
    assert.deepEqual(m.names, featureNames('lbp+glcm+hog', 16, 16));
    picked.forEach((c, r) => {
      const expected = [
        ...c.lbp.flatMap((l) => l.hist),
        ...c.glcm.find((g) => g.levels === 16)!.features,
        ...c.hog.find((h) => h.cellSize === 8)!.descriptor,
      ];
      assertClose(m.data.subarray(r * m.cols, (r + 1) * m.cols), expected, 1e-6, `${c.name} row`);
    });
    const glcmOnly = textureFeatures(images, 'glcm', { glcmLevels: 8 });
    picked.forEach((c, r) => {
      assertClose(
        glcmOnly.data.subarray(r * 12, (r + 1) * 12),
        c.glcm.find((g) => g.levels === 8)!.features,
        1e-9,
        `${c.name} GLCM L8`,
      );
    });
  });
});

describe('texture features: properties', () => {
  test('a constant image: every LBP code is the all-ones uniform pattern; GLCM of one level; HOG zero', () => {
    const g = new Float64Array(20 * 20).fill(137);
    for (const { points, radius } of DEFAULT_TEXTURE_OPTIONS.lbpScales) {
      const h = lbpHistogram(g, 20, 20, points, radius);
      assert.equal(h[points], 1, `P${points}: ${Array.from(h).join(' ')}`);
    }
    const [contrast, dissimilarity, homogeneity, energy, correlation, entropy] = glcmFeatures(
      g,
      20,
      20,
      16,
      [1],
    );
    assert.deepEqual(
      [contrast, dissimilarity, homogeneity, energy, correlation, entropy],
      [0, 0, 1, 1, 1, 0],
    );
    assert.ok(hogDescriptor(g, 20, 20).every((v) => v === 0));
  });

  test('a vertical edge: only the bright column beside it gets a non-trivial uniform code', () => {
    // Left half 0, right half 200. A dark centre sees neighbours ≥ itself everywhere (all ones, code 8); the
    // first bright column sees the dark side below it on 3 of 8 neighbours (bits 11100011: uniform, code 5).
    const w = 12;
    const g = Float64Array.from({ length: 12 * w }, (_, i) => (i % w >= 6 ? 200 : 0));
    const codes = lbpCodes(g, 12, w, 8, 1);
    assert.equal(codes.length, 10 * 10);
    for (let y = 0; y < 10; y++) {
      // Code column x is image column x + 1; image column 6 is the first bright one.
      assert.deepEqual(Array.from(codes.subarray(y * 10, y * 10 + 10)), [8, 8, 8, 8, 8, 5, 8, 8, 8, 8]);
    }
  });

  test('turning an image by 90° leaves the riu2 histograms (and angle-averaged GLCM) unchanged', () => {
    const g = textured64();
    const r = rotate90(g, 64, 64);
    let worst = 0;
    for (const { points, radius } of DEFAULT_TEXTURE_OPTIONS.lbpScales) {
      const a = lbpHistogram(g, 64, 64, points, radius);
      const b = lbpHistogram(r, 64, 64, points, radius);
      const l1 = a.reduce((s, v, k) => s + Math.abs(v - b[k]!), 0);
      worst = Math.max(worst, l1);
    }
    // Sampling circles with P a multiple of 4 map onto themselves; only float rounding of the
    // interpolation order can flip a near-tie comparison. Measured: 0.
    assert.ok(worst <= 1e-3, `L1 change ${worst}`);
    assertClose(glcmFeatures(r, 64, 64, 16, [1, 2]), glcmFeatures(g, 64, 64, 16, [1, 2]), 1e-12, 'GLCM');
    // HOG is not rotation invariant: the descriptor must change (a sanity check that it sees orientation).
    const ha = hogDescriptor(g, 64, 64);
    const hb = hogDescriptor(r, 64, 64);
    assert.ok(ha.reduce((s, v, k) => s + Math.abs(v - hb[k]!), 0) > 1);
  });

  test('16-bit data (8-bit × 257) gives the same features as 8-bit; 3 grey channels the same as 1', () => {
    const px = noise(3 * 32 * 32, 11);
    const base = { count: 3, height: 32, width: 32 } as const;
    const a = textureFeatures({ ...base, data: px, channels: 1, maxValue: 255 }, 'lbp+glcm+hog');
    const wide = Uint16Array.from(px, (v) => v * 257);
    const b = textureFeatures({ ...base, data: wide, channels: 1, maxValue: 65535 }, 'lbp+glcm+hog');
    assert.deepEqual(b.data, a.data);
    const rgb = new Uint8Array(px.length * 3);
    px.forEach((v, i) => rgb.fill(v, 3 * i, 3 * i + 3));
    const c = textureFeatures({ ...base, data: rgb, channels: 3, maxValue: 255 }, 'lbp+glcm+hog');
    assertClose(c.data, a.data, 1e-9, 'grey RGB');
  });

  test('the feature length depends only on the image size and options', () => {
    assert.equal(hogLength(28, 28), 2 * 2 * 36);
    assert.equal(hogLength(64, 64), 7 * 7 * 36);
    assert.equal(hogLength(15, 64), 0);
    assert.equal(featureNames('lbp', 28, 28).length, 54);
    assert.equal(featureNames('glcm', 28, 28).length, 12);
    assert.equal(
      featureNames('lbp+hog', 64, 64, { ...DEFAULT_TEXTURE_OPTIONS, hogCellSize: 16 }).length,
      54 + 9 * 36,
    );
    const m = textureFeatures(
      { data: noise(2 * 28 * 28, 3), count: 2, height: 28, width: 28, channels: 1, maxValue: 255 },
      'hog',
    );
    assert.equal(m.cols, 144);
  });

  test('images too small for an extractor give a DatasetError naming the images', () => {
    const tiny: ImageArray = {
      data: new Uint8Array(8 * 8),
      count: 1,
      height: 8,
      width: 8,
      channels: 1,
      maxValue: 255,
    };
    assert.throws(
      () => textureFeatures(tiny, 'hog'),
      (e: unknown) => {
        return e instanceof DatasetError && e.context.field === 'images';
      },
    );
    const five: ImageArray = { ...tiny, data: new Uint8Array(5 * 5), height: 5, width: 5 };
    assert.throws(() => textureFeatures(five, 'lbp'), DatasetError);
    assert.doesNotThrow(() => textureFeatures(five, 'lbp', { lbpScales: [{ points: 8, radius: 1 }] }));
  });
});
