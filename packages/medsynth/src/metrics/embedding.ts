/**
 * Embedding maps: 2-D pictures of where real train, real test and synthetic images lie in the extractor's
 * feature space, per class, for a human to see whether the synthetic images cover the real ones, collapse
 * onto a few modes, or drift off.
 *
 * Subsampling. Each set is cut to at most `capPerSet` images, split over its classes in proportion to the
 * set's class counts (largest remainder), each class's images drawn uniformly without replacement with a
 * generator seeded by `(seed, 'embedding', set key)`, then kept in their original order. Both maps are fitted
 * on the union of the sampled sets, so the sets share one map.
 *
 * PCA. With the sampled features as the rows of X (n × d), μ their column mean and Xc = X − 1μᵀ:
 *   C = XcᵀXc / (n − 1) (d × d, the sample covariance), C = V Λ Vᵀ with λ₁ ≥ λ₂ ≥ … ≥ 0;
 *   the coordinates of point i are (Xc v₁, Xc v₂)ᵢ, i.e. (U Σ)[:, :2] of the thin SVD Xc = U Σ Vᵀ;
 *   explained variance λₖ, its ratio λₖ / tr C, where tr C = ‖Xc‖²_F / (n − 1).
 * When n < d the n × n Gram matrix G = Xc Xcᵀ / (n − 1) has the same non-zero eigenvalues, with unit
 * eigenvectors uₖ, and Xc vₖ = √((n − 1) λₖ) uₖ — the smaller eigenproblem is solved. Signs follow
 * scikit-learn's `svd_flip`: each coordinate column is negated if needed so that its entry of largest
 * magnitude is positive (an SVD fixes columns only up to sign; this makes the picture reproducible).
 * Float64 throughout (linalg.ts: LAPACK through libtorch when active, else ml-matrix).
 *
 * UMAP (McInnes, Healy & Melville 2018) through umap-js: Euclidean k-NN graph (k = `nNeighbors`, at most
 * n − 1) by random-projection trees and NN-descent, fuzzy simplicial set, then `nEpochs` of SGD on the
 * layout with negative sampling from a random initial layout; every random number comes from the seeded
 * generator `(seed, 'embedding', 'umap')`, so the same seed and input give the same map. nEpochs defaults to
 * umap-js's own rule (500 up to 2 500 points, fewer for larger graphs).
 */
import { UMAP } from 'umap-js';
import type { ImageArray, RawImage } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import type { Matrix } from './distances.js';
import {
  EMBEDDING_FORMAT,
  EMBEDDING_THUMBNAILS_FILE,
  EMBEDDING_VERSION,
  type EmbeddingMap,
  type EmbeddingPoint,
  type EmbeddingSet,
  type EmbeddingThumbnails,
} from './embedding-map.js';
import type { ExtractorInfo } from './features/types.js';
import { sampleWithoutReplacement } from './kid.js';
import { matmul, meanCovariance, symmetricEigen } from './linalg.js';
import { proportionalCounts } from './quota.js';
import { yieldToEventLoop } from '../runtime/yield.js';

export * from './embedding-map.js';

/** One set to embed: its features (rows) and labels (indices into the class names; null: unlabelled). */
export interface EmbeddingInputSet {
  readonly key: string;
  readonly role: 'real' | 'synthetic';
  readonly description: string;
  readonly features: Matrix;
  readonly labels: Int32Array | null;
}

export interface EmbeddingOptions extends RunControl {
  readonly seed?: number;
  /** Most images per set (default 500). */
  readonly capPerSet?: number;
  /** Compute UMAP (default true); PCA is always computed. */
  readonly umap?: boolean;
  readonly nNeighbors?: number;
  readonly minDist?: number;
  readonly spread?: number;
  /** UMAP optimisation epochs (default: umap-js's rule for the graph's size). */
  readonly nEpochs?: number;
}

export const EMBEDDING_DEFAULTS = Object.freeze({
  capPerSet: 500,
  nNeighbors: 15,
  minDist: 0.1,
  spread: 1,
});

/** Fewest points UMAP is run on (below that its k-NN graph says little; PCA alone is drawn). */
export const UMAP_MIN_POINTS = 10;

/**
 * The rows of a set to embed: all of them when there are at most `cap`, else `cap` rows split over classes in
 * proportion to their counts (see the module comment), in ascending order. `rng` draws the rows.
 */
export function subsampleSet(
  labels: Int32Array | null,
  count: number,
  cap: number,
  numClasses: number,
  rng: Rng,
): Int32Array {
  if (count <= cap) return Int32Array.from({ length: count }, (_, i) => i);
  if (!labels) return sampleWithoutReplacement(count, cap, rng).sort();
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((l, i) => byClass[l]!.push(i));
  const quota = proportionalCounts(
    cap,
    byClass.map((rows) => rows.length),
  );
  const picked: number[] = [];
  byClass.forEach((rows, k) => {
    for (const j of sampleWithoutReplacement(rows.length, quota[k]!, rng)) picked.push(rows[j]!);
  });
  return Int32Array.from(picked).sort();
}

export interface Pca2 {
  /** Row-major `[n, 2]` coordinates. */
  readonly coords: Float64Array;
  readonly explainedVariance: [number, number];
  readonly explainedVarianceRatio: [number, number];
  readonly totalVariance: number;
  readonly solver: 'covariance' | 'gram';
}

/** Top-two principal-component coordinates of the rows of `m` (see the module comment). */
export function pca2(m: Matrix): Pca2 {
  const { rows: n, cols: d } = m;
  if (n < 2) throw new DatasetError('PCA needs at least 2 points', { expected: '≥ 2', found: String(n) });
  const solver = n < d ? 'gram' : 'covariance';
  // Centre in float64.
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += m.data[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const xc = new Float64Array(n * d);
  let sumSq = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      const v = m.data[i * d + j]! - mean[j]!;
      xc[i * d + j] = v;
      sumSq += v * v;
    }
  const totalVariance = sumSq / (n - 1);
  const coords = new Float64Array(n * 2);
  const variance: [number, number] = [0, 0];
  if (solver === 'covariance') {
    const { cov } = meanCovariance(m);
    const { values, vectors } = symmetricEigen(cov, d);
    const order = [...values.keys()].sort((a, b) => values[b]! - values[a]!);
    for (let k = 0; k < Math.min(2, d); k++) {
      const col = order[k]!;
      variance[k] = Math.max(0, values[col]!);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += xc[i * d + j]! * vectors[j * d + col]!;
        coords[i * 2 + k] = s;
      }
    }
  } else {
    const xt = new Float64Array(d * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) xt[j * n + i] = xc[i * d + j]!;
    const gram = matmul(xc, xt, n, d, n);
    for (let i = 0; i < gram.length; i++) gram[i]! /= n - 1;
    // exact symmetry for the eigensolver
    for (let a = 0; a < n; a++)
      for (let b = a + 1; b < n; b++) {
        const v = (gram[a * n + b]! + gram[b * n + a]!) / 2;
        gram[a * n + b] = v;
        gram[b * n + a] = v;
      }
    const { values, vectors } = symmetricEigen(gram, n);
    const order = [...values.keys()].sort((a, b) => values[b]! - values[a]!);
    for (let k = 0; k < Math.min(2, n); k++) {
      const col = order[k]!;
      const lambda = Math.max(0, values[col]!);
      variance[k] = lambda;
      const sigma = Math.sqrt((n - 1) * lambda);
      for (let i = 0; i < n; i++) coords[i * 2 + k] = sigma * vectors[i * n + col]!;
    }
  }
  // svd_flip: the largest-magnitude entry of each column positive.
  for (let k = 0; k < 2; k++) {
    let best = 0;
    for (let i = 0; i < n; i++) if (Math.abs(coords[i * 2 + k]!) > Math.abs(best)) best = coords[i * 2 + k]!;
    if (best < 0) for (let i = 0; i < n; i++) coords[i * 2 + k] = -coords[i * 2 + k]!;
  }
  const ratio = (v: number) => (totalVariance > 0 ? v / totalVariance : 0);
  return {
    coords,
    explainedVariance: variance,
    explainedVarianceRatio: [ratio(variance[0]), ratio(variance[1])],
    totalVariance,
    solver,
  };
}

/** umap-js's default number of epochs for a graph of `n` points. */
export function defaultUmapEpochs(n: number): number {
  return n <= 2500 ? 500 : n <= 5000 ? 400 : n <= 7500 ? 300 : 200;
}

export interface Umap2Options extends RunControl {
  readonly seed: number;
  readonly nNeighbors: number;
  readonly minDist: number;
  readonly spread: number;
  readonly nEpochs: number;
}

/** A 2-D UMAP layout of the rows of `m` (row-major `[n, 2]`), seeded; emits `tick` events per 25 epochs. */
export async function umap2(m: Matrix, o: Umap2Options): Promise<Float64Array> {
  const { rows: n, cols: d } = m;
  const rng = Rng.derive(o.seed, 'embedding', 'umap');
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: Math.min(o.nNeighbors, n - 1),
    minDist: o.minDist,
    spread: o.spread,
    nEpochs: o.nEpochs,
    random: () => rng.next(),
  });
  const x: number[][] = [];
  for (let i = 0; i < n; i++) x.push(Array.from(m.data.subarray(i * d, (i + 1) * d)));
  o.onProgress?.({ type: 'phase', phase: 'embedding: UMAP', detail: `${n} points, k-NN graph` });
  const epochs = umap.initializeFit(x);
  for (let e = 0; e < epochs; e++) {
    umap.step();
    if ((e + 1) % 25 === 0 || e + 1 === epochs) {
      o.onProgress?.({ type: 'tick', phase: 'embedding: UMAP', done: e + 1, total: epochs, unit: 'epoch' });
      // let an interrupt (SIGINT → abort) land between epochs
      await yieldToEventLoop();
      o.signal?.throwIfAborted();
    }
  }
  const y = umap.getEmbedding();
  const out = new Float64Array(n * 2);
  y.forEach((p, i) => {
    out[i * 2] = p[0]!;
    out[i * 2 + 1] = p[1]!;
  });
  return out;
}

function classCounts(labels: ArrayLike<number> | null, k: number): number[] | null {
  if (!labels) return null;
  const c = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) c[labels[i]!]!++;
  return c;
}

/** Seven significant digits: float32 features carry no more, and the file stays small. */
const round = (v: number): number => Number(v.toPrecision(7));

/**
 * The embedding map of `sets` (see the module comment): subsampled per set and class, PCA and UMAP fitted
 * on the union. Throws a `DatasetError` for fewer than 2 points, differing feature widths or bad labels.
 */
export async function computeEmbedding(
  sets: readonly EmbeddingInputSet[],
  classNames: readonly string[],
  extractor: Pick<ExtractorInfo, 'kind' | 'key' | 'dim' | 'description'>,
  options: EmbeddingOptions = {},
): Promise<EmbeddingMap> {
  const started = performance.now();
  const seed = options.seed ?? 0;
  const cap = options.capPerSet ?? EMBEDDING_DEFAULTS.capPerSet;
  if (!(Number.isInteger(cap) && cap >= 1))
    throw new DatasetError('the embedding cap must be a whole number ≥ 1', {
      field: 'capPerSet',
      found: String(cap),
    });
  if (sets.length === 0) throw new DatasetError('no sets to embed', { field: 'sets' });
  const K = classNames.length;
  const d = sets[0]!.features.cols;
  const keys = new Set<string>();
  for (const s of sets) {
    if (keys.has(s.key)) throw new DatasetError('set keys must be distinct', { field: 'sets', found: s.key });
    keys.add(s.key);
    if (s.features.cols !== d)
      throw new DatasetError('feature widths differ between sets', {
        field: `${s.key}.features`,
        expected: String(d),
        found: String(s.features.cols),
      });
    if (s.labels) {
      if (s.labels.length !== s.features.rows)
        throw new DatasetError('one label per feature row is needed', {
          field: `${s.key}.labels`,
          expected: String(s.features.rows),
          found: String(s.labels.length),
        });
      const bad = s.labels.findIndex((l) => !(l >= 0 && l < K));
      if (bad >= 0)
        throw new DatasetError('label out of range', {
          field: `${s.key}.labels[${bad}]`,
          expected: `0..${K - 1}`,
          found: String(s.labels[bad]),
        });
    }
  }

  // Subsample, then stack the union.
  const picks = sets.map((s) =>
    subsampleSet(s.labels, s.features.rows, cap, K, Rng.derive(seed, 'embedding', s.key)),
  );
  const n = picks.reduce((a, p) => a + p.length, 0);
  if (n < 2)
    throw new DatasetError('an embedding map needs at least 2 images', {
      field: 'sets',
      found: String(n),
    });
  const data = new Float32Array(n * d);
  let at = 0;
  sets.forEach((s, k) => {
    for (const i of picks[k]!) {
      data.set(s.features.data.subarray(i * d, (i + 1) * d), at * d);
      at++;
    }
  });
  const union: Matrix = { data, rows: n, cols: d };

  options.signal?.throwIfAborted();
  options.onProgress?.({ type: 'phase', phase: 'embedding: PCA', detail: `${n} points × ${d} features` });
  const t0 = performance.now();
  const pca = pca2(union);
  const pcaSeconds = (performance.now() - t0) / 1000;

  const wantUmap = options.umap ?? true;
  let umap: Float64Array | null = null;
  let umapInfo: EmbeddingMap['umap'] = null;
  let umapNote: string | null = null;
  if (!wantUmap) umapNote = 'UMAP was not asked for';
  else if (n < UMAP_MIN_POINTS) umapNote = `UMAP needs at least ${UMAP_MIN_POINTS} images, there are ${n}`;
  else {
    const nNeighbors = Math.min(options.nNeighbors ?? EMBEDDING_DEFAULTS.nNeighbors, n - 1);
    const settings = {
      nNeighbors,
      minDist: options.minDist ?? EMBEDDING_DEFAULTS.minDist,
      spread: options.spread ?? EMBEDDING_DEFAULTS.spread,
      nEpochs: options.nEpochs ?? defaultUmapEpochs(n),
    };
    const t1 = performance.now();
    umap = await umap2(union, { ...settings, seed, onProgress: options.onProgress, signal: options.signal });
    umapInfo = {
      ...settings,
      metric: 'euclidean',
      init: 'random',
      implementation: 'umap-js',
      seconds: (performance.now() - t1) / 1000,
    };
  }

  const points: EmbeddingPoint[] = [];
  const described: EmbeddingSet[] = sets.map((s, k) => {
    const rows = picks[k]!;
    for (const i of rows) {
      const p = points.length;
      const label = s.labels ? s.labels[i]! : null;
      points.push({
        set: s.key,
        class: label === null ? null : classNames[label]!,
        index: i,
        pca: [round(pca.coords[p * 2]!), round(pca.coords[p * 2 + 1]!)],
        umap: umap ? [round(umap[p * 2]!), round(umap[p * 2 + 1]!)] : null,
      });
    }
    return {
      key: s.key,
      role: s.role,
      description: s.description,
      total: s.features.rows,
      classCounts: classCounts(s.labels, K),
      sampled: rows.length,
      sampledClassCounts: s.labels
        ? classCounts(
            Array.from(rows, (i) => s.labels![i]!),
            K,
          )
        : null,
    };
  });
  return {
    format: EMBEDDING_FORMAT,
    version: EMBEDDING_VERSION,
    createdAt: new Date().toISOString(),
    seed,
    classNames: [...classNames],
    extractor: {
      kind: extractor.kind,
      key: extractor.key,
      dim: extractor.dim,
      description: extractor.description,
    },
    capPerSet: cap,
    sets: described,
    pca: {
      explainedVariance: pca.explainedVariance,
      explainedVarianceRatio: pca.explainedVarianceRatio,
      totalVariance: pca.totalVariance,
      solver: pca.solver,
      seconds: pcaSeconds,
    },
    umap: umapInfo,
    umapNote,
    thumbnails: null,
    seconds: (performance.now() - started) / 1000,
    points,
  };
}

/** Largest thumbnail side (pixels): bigger images are shrunk by a whole factor (box average). */
export const THUMBNAIL_MAX = 64;

/**
 * One picture holding every point's image, point `i` in cell `i` (left to right, then top to bottom, no gap):
 * what a viewer shows when a point is hovered. `images` maps each set key of the map to the images the point
 * indices refer to. 8-bit; grey unless some image has three channels.
 */
export function embeddingThumbnails(
  map: EmbeddingMap,
  images: Readonly<Record<string, ImageArray>>,
  maxSide = THUMBNAIL_MAX,
): { image: RawImage; info: EmbeddingThumbnails } {
  const used = map.sets.filter((s) => s.sampled > 0).map((s) => s.key);
  const arrays = used.map((k) => {
    const a = images[k];
    if (!a) throw new DatasetError('no images for an embedded set', { field: k });
    return a;
  });
  const first = arrays[0];
  if (!first || map.points.length === 0) throw new DatasetError('no points to draw thumbnails of');
  for (const [i, a] of arrays.entries())
    if (a.height !== first.height || a.width !== first.width)
      throw new DatasetError('embedded sets differ in image size', {
        field: used[i]!,
        expected: `${first.height}×${first.width}`,
        found: `${a.height}×${a.width}`,
      });
  const f = Math.max(1, Math.ceil(Math.max(first.height, first.width) / maxSide));
  const cw = Math.max(1, Math.floor(first.width / f));
  const ch = Math.max(1, Math.floor(first.height / f));
  const channels: 1 | 3 = arrays.some((a) => a.channels === 3) ? 3 : 1;
  const count = map.points.length;
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const width = columns * cw;
  const out = new Uint8Array(width * rows * ch * channels);
  const byKey = new Map(used.map((k, i) => [k, arrays[i]!]));
  map.points.forEach((p, idx) => {
    const a = byKey.get(p.set)!;
    if (p.index >= a.count)
      throw new DatasetError('a point refers past the end of its set', {
        field: `points[${idx}]`,
        expected: `< ${a.count}`,
        found: String(p.index),
      });
    const per = a.height * a.width * a.channels;
    const base = p.index * per;
    const scale = 255 / a.maxValue;
    const x0 = (idx % columns) * cw;
    const y0 = Math.floor(idx / columns) * ch;
    for (let y = 0; y < ch; y++)
      for (let x = 0; x < cw; x++)
        for (let c = 0; c < channels; c++) {
          const src = a.channels === 3 ? c : 0;
          let s = 0;
          for (let dy = 0; dy < f; dy++)
            for (let dx = 0; dx < f; dx++)
              s += a.data[base + ((y * f + dy) * a.width + (x * f + dx)) * a.channels + src]!;
          out[((y0 + y) * width + x0 + x) * channels + c] = Math.round((s / (f * f)) * scale);
        }
  });
  return {
    image: { width, height: rows * ch, channels, data: out },
    info: { file: EMBEDDING_THUMBNAILS_FILE, columns, rows, cellWidth: cw, cellHeight: ch, count },
  };
}
