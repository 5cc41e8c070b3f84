import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { ImageArray } from '../../src/data/types.js';
import {
  computeEmbedding,
  embeddingThumbnails,
  EmbeddingMapSchema,
  type EmbeddingInputSet,
  type EmbeddingMap,
  parseEmbeddingMap,
  pca2,
  readEmbeddingMap,
  subsampleSet,
  umap2,
} from '../../src/metrics/embedding.js';
import { evaluateSets } from '../../src/metrics/evaluate.js';
import type { FeatureExtractor, FeatureMatrix } from '../../src/metrics/features/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { DatasetError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { Rng } from '../../src/runtime/random.js';

/** Written by test/fixtures/embedding/make_embedding.py (numpy SVD, float64). */
interface PcaCase {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly features: number[];
  readonly coords: [number, number][];
  readonly explainedVariance: [number, number];
  readonly explainedVarianceRatio: [number, number];
  readonly totalVariance: number;
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/embedding/pca_cases.json', import.meta.url), 'utf8'),
) as { cases: PcaCase[] };

const matrixOf = (c: PcaCase): FeatureMatrix => ({
  data: Float32Array.from(c.features),
  rows: c.rows,
  cols: c.cols,
});

/** Points in `k` Gaussian clusters (σ = 1) in `d` dims, centres `sep` apart along axis 0; label = cluster. */
function clusters(
  n: number,
  d: number,
  sep: number,
  seed: number,
  k = 2,
): EmbeddingInputSet['features'] & {
  labels: Int32Array;
} {
  const rng = new Rng(seed);
  const data = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % k;
    for (let j = 0; j < d; j++) data[i * d + j] = rng.normal() + (j === 0 ? sep * labels[i]! : 0);
  }
  return { data, rows: n, cols: d, labels };
}

const EXTRACTOR = { kind: 'domain', key: 'test-extractor', dim: 6, description: 'test features' } as const;

before(async () => {
  await selectBackend();
});

describe('PCA (against numpy SVD)', () => {
  for (const c of fixture.cases) {
    test(`${c.name}: coordinates up to sign, explained variance and its ratio`, () => {
      const r = pca2(matrixOf(c));
      assert.equal(r.solver, c.rows < c.cols ? 'gram' : 'covariance');
      const scale = Math.sqrt(c.explainedVariance[0]);
      for (let k = 0; k < 2; k++) {
        // sign of the column from its largest reference entry
        let at = 0;
        c.coords.forEach((p, i) => {
          if (Math.abs(p[k]!) > Math.abs(c.coords[at]![k]!)) at = i;
        });
        const sign = Math.sign(r.coords[at * 2 + k]!) === Math.sign(c.coords[at]![k]!) ? 1 : -1;
        for (let i = 0; i < c.rows; i++) {
          const got = sign * r.coords[i * 2 + k]!;
          const want = c.coords[i]![k]!;
          assert.ok(Math.abs(got - want) < 1e-8 * scale, `${c.name} point ${i} axis ${k}: ${got} vs ${want}`);
        }
        const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
        assert.ok(rel(r.explainedVariance[k]!, c.explainedVariance[k]!) < 1e-9, `variance ${k}`);
        assert.ok(rel(r.explainedVarianceRatio[k]!, c.explainedVarianceRatio[k]!) < 1e-9, `ratio ${k}`);
      }
      assert.ok(Math.abs(r.totalVariance - c.totalVariance) < 1e-9 * c.totalVariance);
    });
  }

  test('signs are fixed: each axis’s largest-magnitude coordinate is positive', () => {
    for (const c of fixture.cases) {
      const r = pca2(matrixOf(c));
      for (let k = 0; k < 2; k++) {
        let best = 0;
        for (let i = 0; i < c.rows; i++)
          if (Math.abs(r.coords[i * 2 + k]!) > Math.abs(best)) best = r.coords[i * 2 + k]!;
        assert.ok(best > 0, `${c.name} axis ${k}`);
      }
    }
  });

  test('two separated clusters lie apart along the first axis', () => {
    const c = fixture.cases.find((x) => x.name === 'clusters')!;
    const r = pca2(matrixOf(c));
    const first = Array.from({ length: c.rows }, (_, i) => r.coords[i * 2]!);
    const a = first.slice(0, 30);
    const b = first.slice(30);
    assert.ok(Math.max(...a) < Math.min(...b) || Math.max(...b) < Math.min(...a));
    assert.ok(r.explainedVarianceRatio[0] > 0.5, String(r.explainedVarianceRatio[0]));
  });

  test('fewer than two points is a DatasetError', () => {
    assert.throws(() => pca2({ data: new Float32Array(3), rows: 1, cols: 3 }), DatasetError);
  });
});

describe('UMAP', () => {
  const options = { nNeighbors: 10, minDist: 0.1, spread: 1, nEpochs: 200 };

  test('reproducible for a seed; another seed gives another layout', async () => {
    const m = clusters(80, 8, 8, 1);
    const a = await umap2(m, { ...options, seed: 5 });
    const b = await umap2(m, { ...options, seed: 5 });
    const c = await umap2(m, { ...options, seed: 6 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test('separates two well-separated Gaussian clusters', async () => {
    const m = clusters(120, 16, 12, 2);
    const y = await umap2(m, { ...options, seed: 0 });
    const n = m.rows;
    // every point's nearest neighbour in the map is from its own cluster
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      let best = -1;
      let bestD = Infinity;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const d = (y[i * 2]! - y[j * 2]!) ** 2 + (y[i * 2 + 1]! - y[j * 2 + 1]!) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      if (m.labels[best] !== m.labels[i]) wrong++;
    }
    assert.equal(wrong, 0);
    // and the clusters' centres are far apart compared with their spread
    const stats = (k: number) => {
      const idx = [...m.labels.keys()].filter((i) => m.labels[i] === k);
      const cx = idx.reduce((s, i) => s + y[i * 2]!, 0) / idx.length;
      const cy = idx.reduce((s, i) => s + y[i * 2 + 1]!, 0) / idx.length;
      const spread = Math.sqrt(
        idx.reduce((s, i) => s + (y[i * 2]! - cx) ** 2 + (y[i * 2 + 1]! - cy) ** 2, 0) / idx.length,
      );
      return { cx, cy, spread };
    };
    const [a, b] = [stats(0), stats(1)];
    const gap = Math.hypot(a.cx - b.cx, a.cy - b.cy);
    assert.ok(gap > 3 * Math.max(a.spread, b.spread), `gap ${gap}, spreads ${a.spread} ${b.spread}`);
  });

  test('one cluster is not split in two (the separation above is a real outcome)', async () => {
    const m = clusters(120, 16, 0, 2);
    const y = await umap2(m, { ...options, seed: 0 });
    let wrong = 0;
    for (let i = 0; i < m.rows; i++) {
      let best = -1;
      let bestD = Infinity;
      for (let j = 0; j < m.rows; j++) {
        if (j === i) continue;
        const d = (y[i * 2]! - y[j * 2]!) ** 2 + (y[i * 2 + 1]! - y[j * 2 + 1]!) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      if (m.labels[best] !== m.labels[i]) wrong++;
    }
    assert.ok(wrong > m.rows / 4, `labels mix when the clusters coincide: ${wrong} of ${m.rows}`);
  });
});

describe('subsampling', () => {
  const labels = Int32Array.from({ length: 400 }, (_, i) => (i < 300 ? 0 : i < 390 ? 1 : 2));

  test('per class, in proportion to the class counts, without repeats, in order', () => {
    const picked = subsampleSet(labels, 400, 100, 3, Rng.derive(1, 'x'));
    assert.equal(picked.length, 100);
    const counts = [0, 0, 0];
    for (const i of picked) counts[labels[i]!]!++;
    // 300/90/10 of 400 → 75 / 22.5 / 2.5: largest remainder gives 75 / 23 / 2 (ties to the lower index)
    assert.deepEqual(counts, [75, 23, 2]);
    assert.equal(new Set(picked).size, 100);
    for (let k = 1; k < picked.length; k++) assert.ok(picked[k]! > picked[k - 1]!);
  });

  test('seeded: the same seed draws the same images, another seed others', () => {
    const a = subsampleSet(labels, 400, 100, 3, Rng.derive(1, 'x'));
    const b = subsampleSet(labels, 400, 100, 3, Rng.derive(1, 'x'));
    const c = subsampleSet(labels, 400, 100, 3, Rng.derive(2, 'x'));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test('all images when there are no more than the cap; unlabelled sets uniformly', () => {
    assert.deepEqual(subsampleSet(labels, 400, 400, 3, new Rng(0)), Int32Array.from(labels.keys()));
    const u = subsampleSet(null, 50, 20, 1, new Rng(0));
    assert.equal(u.length, 20);
    assert.equal(new Set(u).size, 20);
    assert.ok(u.every((i) => i >= 0 && i < 50));
  });
});

describe('computeEmbedding', () => {
  const sets = (): EmbeddingInputSet[] => {
    const a = clusters(300, 6, 10, 11);
    const b = clusters(60, 6, 10, 12);
    const s = clusters(90, 6, 10, 13);
    const set = (key: string, role: 'real' | 'synthetic', m: typeof a): EmbeddingInputSet => ({
      key,
      role,
      description: `${key} images`,
      features: { data: m.data, rows: m.rows, cols: m.cols },
      labels: m.labels,
    });
    return [set('train', 'real', a), set('test', 'real', b), set('synthetic', 'synthetic', s)];
  };

  test('subsamples per set to the cap, fits one map on the union, seeded; progress is reported', async () => {
    const events: ProgressEvent[] = [];
    const map = await computeEmbedding(sets(), ['a', 'b'], EXTRACTOR, {
      seed: 3,
      capPerSet: 80,
      nEpochs: 100,
      onProgress: (e) => events.push(e),
    });
    assert.deepEqual(
      map.sets.map((s) => [s.key, s.total, s.sampled]),
      [
        ['train', 300, 80],
        ['test', 60, 60],
        ['synthetic', 90, 80],
      ],
    );
    assert.deepEqual(map.sets[0]!.sampledClassCounts, [40, 40]);
    assert.equal(map.points.length, 220);
    assert.equal(map.pca.solver, 'covariance');
    assert.ok(map.umap && map.umap.nEpochs === 100 && map.umap.nNeighbors === 15);
    // the points of every set lie in one frame: the two classes separate along PC1 in every set
    for (const key of ['train', 'test', 'synthetic']) {
      const xs = (cls: string) =>
        map.points.filter((p) => p.set === key && p.class === cls).map((p) => p.pca[0]);
      const [a, b] = [xs('a'), xs('b')];
      assert.ok(Math.max(...a) < Math.min(...b) || Math.max(...b) < Math.min(...a), key);
    }
    assert.ok(events.some((e) => e.type === 'tick' && e.phase === 'embedding: UMAP' && e.done === 100));
    const again = await computeEmbedding(sets(), ['a', 'b'], EXTRACTOR, {
      seed: 3,
      capPerSet: 80,
      nEpochs: 100,
    });
    assert.deepEqual(again.points, map.points);
    const other = await computeEmbedding(sets(), ['a', 'b'], EXTRACTOR, {
      seed: 4,
      capPerSet: 80,
      nEpochs: 100,
    });
    assert.notDeepEqual(
      other.points.filter((p) => p.set === 'train').map((p) => p.index),
      map.points.filter((p) => p.set === 'train').map((p) => p.index),
    );
  });

  test('JSON round trip through the schema; bad files are DatasetErrors naming file and field', async () => {
    const map = await computeEmbedding(sets(), ['a', 'b'], EXTRACTOR, { capPerSet: 40, umap: false });
    assert.equal(map.umap, null);
    assert.equal(map.umapNote, 'UMAP was not asked for');
    const back = parseEmbeddingMap(JSON.parse(JSON.stringify(map)), 'x.json');
    assert.deepEqual(back, map);
    const dir = await mkdtemp(join(tmpdir(), 'medsynth-embedding-'));
    try {
      const file = join(dir, 'embedding.json');
      await writeFile(file, JSON.stringify(map));
      assert.deepEqual(await readEmbeddingMap(file), map);

      const bad = async (value: unknown, pattern: RegExp, field?: string) => {
        await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
        await assert.rejects(readEmbeddingMap(file), (e: unknown) => {
          assert.ok(e instanceof DatasetError, String(e));
          assert.equal(e.exitCode, 2);
          assert.equal(e.context.file, file);
          if (field !== undefined) assert.equal(e.context.field, field);
          assert.match(e.message, pattern);
          return true;
        });
      };
      await bad('{"format": "medsynth-embedding", ', /not valid JSON/);
      await bad({ format: 'medsynth-evaluation' }, /not a medsynth embedding map/, 'format');
      const points = map.points.map((p, i) => (i === 5 ? { ...p, set: 'elsewhere' } : p));
      await bad({ ...map, points }, /unknown set "elsewhere"/, 'points.5.set');
      await bad(
        { ...map, points: map.points.map((p, i) => (i === 2 ? { ...p, pca: [1, 'x'] } : p)) },
        /invalid embedding map/,
        'points.2.pca.1',
      );
      await bad({ ...map, points: map.points.slice(1) }, /40 sampled, but 39 points/, 'sets.0.sampled');
      await assert.rejects(readEmbeddingMap(join(dir, 'missing.json')), DatasetError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal(EmbeddingMapSchema.safeParse({ ...map, version: 2 }).success, false);
  });

  test('bad input: different feature widths, labels out of range, repeated keys, too few points', async () => {
    const [a, b] = sets();
    const narrow = { ...b!, features: { data: new Float32Array(10), rows: 2, cols: 5 }, labels: null };
    await assert.rejects(computeEmbedding([a!, narrow], ['a', 'b'], EXTRACTOR), /feature widths differ/);
    await assert.rejects(computeEmbedding([a!], ['a'], EXTRACTOR), /label out of range/);
    await assert.rejects(computeEmbedding([a!, a!], ['a', 'b'], EXTRACTOR), /distinct/);
    const one = { ...b!, features: { data: new Float32Array(6), rows: 1, cols: 6 }, labels: null };
    await assert.rejects(computeEmbedding([one], ['a', 'b'], EXTRACTOR), DatasetError);
    const few = await computeEmbedding(
      [
        {
          ...b!,
          features: { data: new Float32Array(36).map((_, i) => i % 7), rows: 6, cols: 6 },
          labels: null,
        },
      ],
      ['a', 'b'],
      EXTRACTOR,
    );
    assert.equal(few.umap, null);
    assert.match(few.umapNote ?? '', /at least 10/);
    assert.ok(few.points.every((p) => p.class === null && p.umap === null));
  });
});

describe('thumbnails', () => {
  /** `n` images whose every pixel is (i·7 + 3) mod 256 for image i. */
  const images = (n: number, size: number, channels: 1 | 3 = 1): ImageArray => {
    const per = size * size * channels;
    const data = new Uint8Array(n * per);
    for (let i = 0; i < n; i++) data.fill((i * 7 + 3) % 256, i * per, (i + 1) * per);
    return { data, count: n, height: size, width: size, channels, maxValue: 255 };
  };

  test('point i is cell i, showing image `index` of its set; large images are shrunk to ≤ 64 px', async () => {
    const map = await computeEmbedding(
      [
        { key: 'train', role: 'real', description: '', ...split(clusters(30, 4, 5, 1)) },
        { key: 'synthetic', role: 'synthetic', description: '', ...split(clusters(20, 4, 5, 2)) },
      ],
      ['a', 'b'],
      EXTRACTOR,
      { capPerSet: 12, umap: false },
    );
    for (const [size, cell] of [
      [28, 28],
      [128, 64],
    ] as const) {
      const trainImages = images(30, size);
      const synthImages = images(20, size, 3);
      const { image, info } = embeddingThumbnails(map, { train: trainImages, synthetic: synthImages });
      assert.equal(info.count, 24);
      assert.equal(info.cellWidth, cell);
      assert.equal(info.columns, 5);
      assert.equal(info.rows, 5);
      assert.equal(image.channels, 3, 'RGB when a set is');
      assert.equal(image.width, 5 * cell);
      map.points.forEach((p, i) => {
        const x = (i % info.columns) * cell + Math.floor(cell / 2);
        const y = Math.floor(i / info.columns) * cell + Math.floor(cell / 2);
        const v = image.data[(y * image.width + x) * 3]!;
        assert.equal(v, (p.index * 7 + 3) % 256, `point ${i}`);
      });
    }
    assert.throws(() => embeddingThumbnails(map, { train: images(30, 28) }), /no images for an embedded set/);
    assert.throws(
      () => embeddingThumbnails(map, { train: images(5, 28), synthetic: images(20, 28) }),
      /past the end/,
    );
  });

  function split(m: ReturnType<typeof clusters>): Pick<EmbeddingInputSet, 'features' | 'labels'> {
    return { features: { data: m.data, rows: m.rows, cols: m.cols }, labels: m.labels };
  }
});

describe('the embedding metric in evaluateSets', () => {
  /** Features = mean brightness of each image quadrant, its overall mean and a constant: 6 dims, no network. */
  const quadrantExtractor: FeatureExtractor = {
    info: {
      kind: 'domain',
      key: 'quadrants',
      dim: 6,
      inputShape: [16, 16, 1],
      description: 'quadrant means',
      preprocessing: 'none',
    },
    async features(images) {
      const out = new Float32Array(images.count * 6);
      const { width: w, height: h } = images;
      for (let i = 0; i < images.count; i++) {
        const q = [0, 0, 0, 0];
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            q[(y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1)]! += images.data[i * w * h + y * w + x]! / 255;
        const s = (w * h) / 4;
        out.set(
          [q[0]! / s, q[1]! / s, q[2]! / s, q[3]! / s, (q[0]! + q[1]! + q[2]! + q[3]!) / (4 * s), 1],
          i * 6,
        );
      }
      return { data: out, rows: images.count, cols: 6 };
    },
    dispose() {},
  };
  /** Class 0: bright top half; class 1: bright left half; noise on top. */
  const set = (n: number, seed: number) => {
    const rng = new Rng(seed);
    const data = new Uint8Array(n * 256);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 2;
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 16; x++) {
          const bright = labels[i] === 0 ? y < 8 : x < 8;
          data[i * 256 + y * 16 + x] = Math.max(
            0,
            Math.min(255, Math.round((bright ? 180 : 60) + 30 * rng.normal())),
          );
        }
    }
    return { images: { data, count: n, height: 16, width: 16, channels: 1 as const, maxValue: 255 }, labels };
  };

  test('runs for the synthetic comparison only, with train, test and synthetic sets', async () => {
    const r = await evaluateSets(
      {
        classNames: ['top', 'left'],
        real: set(200, 1),
        fake: set(120, 2),
        holdout: set(80, 3),
        extractor: quadrantExtractor,
      },
      { metrics: ['embedding'], embeddingCap: 100, seed: 9 },
    );
    assert.deepEqual(r.comparisons, ['fake', 'floor', 'noise']);
    assert.equal(r.records.length, 1, 'floor and noise are not embedded');
    const rec = r.records[0]!;
    assert.equal(rec.metric, 'embedding');
    assert.equal(rec.nReal, 100);
    assert.equal(rec.nCompared, 100);
    assert.ok(r.embedding);
    const map: EmbeddingMap = r.embedding;
    assert.deepEqual(
      map.sets.map((s) => [s.key, s.sampled]),
      [
        ['train', 100],
        ['test', 80],
        ['synthetic', 100],
      ],
    );
    assert.equal(map.seed, 9);
    assert.equal(rec.values['pcaVarianceRatio1'], map.pca.explainedVarianceRatio[0]);
    // The two classes differ in the features: PC1 separates them in the real and synthetic sets alike.
    const mean = (key: string, cls: string) => {
      const xs = map.points.filter((p) => p.set === key && p.class === cls).map((p) => p.pca[0]);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    for (const key of ['train', 'test', 'synthetic'])
      assert.ok(Math.abs(mean(key, 'top') - mean(key, 'left')) > 0.3, key);
    assert.ok(
      Math.sign(mean('train', 'top') - mean('train', 'left')) ===
        Math.sign(mean('synthetic', 'top') - mean('synthetic', 'left')),
    );
  });
});
