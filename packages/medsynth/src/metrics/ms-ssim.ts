/**
 * MS-SSIM diversity: how alike images of the *same class* are (Wang, Simoncelli & Bovik 2003, "Multi-scale
 * structural similarity for image quality assessment"). Used among synthetic images of one class, and among
 * real images of that class as the reference — never synthetic against real. Lower mean MS-SSIM = more
 * diverse; a generator that collapses onto a few images scores close to 1.
 *
 * What is computed, for two images x and y of the same shape (all in float32 on the TF.js backend):
 * - samples scaled to [0, 1] (`v / maxValue`); data range L = 1; C1 = (k1·L)², C2 = (k2·L)², k1 = 0.01,
 *   k2 = 0.03 by default;
 * - a Gaussian window of `windowSize` (odd) taps and std `sigma`, normalised to sum 1, applied per channel as
 *   a 'valid' (unpadded) correlation (two 1-D depthwise passes — the 2-D window is their outer product):
 *   μx, μy, σx² = E[x²] − μx², σy², σxy = E[xy] − μxμy (Wang et al. 2004). The second moments are taken of
 *   each image minus its own mean (per channel), which leaves them unchanged and keeps float32
 *   cancellation small;
 * - at scales j < M: cs_j = mean over the valid positions of (2σxy + C2) / (σx² + σy² + C2); at the coarsest
 *   scale M: ssim_M = mean of the SSIM map l·cs, l = (2μxμy + C1) / (μx² + μy² + C1);
 * - between scales: 2×2 average pooling, stride 2; an odd height/width gets its last row/column repeated
 *   first (TF's `'same'` average pooling, which averages only the real samples, computes exactly that; it is
 *   also what `tf.image.ssim_multiscale` does), so a side n becomes ⌈n/2⌉;
 * - per channel: MS = Π_{j<M} relu(cs_j)^{w_j} · relu(ssim_M)^{w_M}, with the first M of the standard weights
 *   (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) renormalised to sum 1; an RGB result is the mean of the three
 *   per-channel MS values (as pytorch_msssim does);
 * - scales `'auto'`: the largest M ≤ 5 with min(h, w) / 2^(M−1) ≥ windowSize. Without an explicit window:
 *   11 taps with σ 1.5, or 7 taps with σ 1.0 when 11 would give fewer than 3 scales (images under 44 px, such
 *   as 28 px MedMNIST). An explicit window without σ gets σ 1.5, or 1.0 for windows of 7 taps or fewer.
 *
 * Identical images give 1; constant images a and b give ((2ab + C1) / (a² + b² + C1))^{w_M} (every cs = 1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { imagesToFloat } from '../data/image/tensors.js';
import type { ImageArray } from '../data/types.js';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import { throwIfAborted, type RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';

/** The five scale weights of Wang, Simoncelli & Bovik (2003), finest first. */
export const MS_SSIM_WEIGHTS: readonly number[] = Object.freeze([0.0448, 0.2856, 0.3001, 0.2363, 0.1333]);

export interface MsSsimOptions {
  /** Gaussian window taps (odd); default 11, or 7 for images under 44 px (see the module comment). */
  readonly windowSize?: number | undefined;
  /** Gaussian std in pixels; default 1.5, or 1.0 for windows of 7 taps or fewer. */
  readonly sigma?: number | undefined;
  /** Number of scales 1–5, or `'auto'` (default): as many as fit, at most 5. */
  readonly scales?: number | 'auto' | undefined;
  /** C1 = (k1·L)²; default 0.01. */
  readonly k1?: number | undefined;
  /** C2 = (k2·L)²; default 0.03. */
  readonly k2?: number | undefined;
  /** Pairs per backend batch; default 64. */
  readonly batchSize?: number | undefined;
}

/** What an MS-SSIM value was computed with. */
export interface MsSsimSetup {
  readonly windowSize: number;
  readonly sigma: number;
  readonly scales: number;
  /** One weight per scale, finest first, summing to 1. */
  readonly weights: readonly number[];
}

export interface MsSsimClassDiversity {
  readonly className: string;
  /** Images of this class. */
  readonly images: number;
  /** Pairs scored. */
  readonly pairs: number;
  /** Mean MS-SSIM over the pairs; `null` without pairs. */
  readonly mean: number | null;
  /** Sample standard deviation (n − 1) over the pairs; `null` with fewer than 2 pairs. */
  readonly std: number | null;
}

export interface MsSsimDiversity {
  readonly setup: MsSsimSetup;
  readonly perClass: MsSsimClassDiversity[];
  /** Mean of the per-class means over the classes with ≥ 1 pair; `null` when no class has one. */
  readonly mean: number | null;
  /** Pairs scored, all classes. */
  readonly pairs: number;
}

export interface MsSsimDiversityOptions extends MsSsimOptions, RunControl {
  /** Random pairs per class (default 200); a class with fewer distinct pairs has all of them scored. */
  readonly pairsPerClass?: number | undefined;
  /** Seed of the pair draw (default 0). */
  readonly seed?: number | undefined;
}

const DEFAULT_BATCH = 64;
const DEFAULT_PAIRS_PER_CLASS = 200;
const MAX_SCALES = MS_SSIM_WEIGHTS.length;

// ---- setup -------------------------------------------------------------------------------------------------

/** Scales that fit: the largest M ≤ 5 with side / 2^(M−1) ≥ window (0 when not even one does). */
function fittingScales(side: number, windowSize: number): number {
  let m = 0;
  while (m < MAX_SCALES && side / 2 ** m >= windowSize) m++;
  return m;
}

function checkOptions(o: MsSsimOptions): void {
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new ConfigError(`invalid MS-SSIM option ${field}`, { field, expected, found: String(value) });
  };
  const { windowSize, sigma, scales, k1, k2, batchSize } = o;
  if (windowSize !== undefined && !(Number.isInteger(windowSize) && windowSize >= 1 && windowSize % 2 === 1))
    bad('windowSize', 'an odd positive integer', windowSize);
  if (sigma !== undefined && !(Number.isFinite(sigma) && sigma > 0)) bad('sigma', 'a positive number', sigma);
  if (
    scales !== undefined &&
    scales !== 'auto' &&
    !(Number.isInteger(scales) && scales >= 1 && scales <= MAX_SCALES)
  )
    bad('scales', `'auto' or an integer 1..${MAX_SCALES}`, scales);
  if (k1 !== undefined && !(Number.isFinite(k1) && k1 > 0)) bad('k1', 'a positive number', k1);
  if (k2 !== undefined && !(Number.isFinite(k2) && k2 > 0)) bad('k2', 'a positive number', k2);
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1))
    bad('batchSize', 'a positive integer', batchSize);
}

/**
 * The window, σ, scales and weights MS-SSIM uses on `height`×`width` images. Bad options →
 * `ConfigError`; images too small for even one scale of the window → `DatasetError`.
 */
export function msSsimSetup(height: number, width: number, options: MsSsimOptions = {}): MsSsimSetup {
  checkOptions(options);
  if (!(Number.isInteger(height) && height >= 1 && Number.isInteger(width) && width >= 1)) {
    throw new DatasetError('image size must be positive integers', {
      field: 'height×width',
      found: `${height}×${width}`,
    });
  }
  const side = Math.min(height, width);
  const requested = options.scales ?? 'auto';
  const windowSize =
    options.windowSize ?? (side / 2 ** ((requested === 'auto' ? 3 : requested) - 1) >= 11 ? 11 : 7);
  const sigma = options.sigma ?? (windowSize > 7 ? 1.5 : 1.0);
  const fit = fittingScales(side, windowSize);
  const scales = requested === 'auto' ? fit : requested;
  if (scales < 1 || scales > fit) {
    const want = Math.max(1, scales);
    throw new DatasetError(`images too small for ${want} MS-SSIM scale(s) with a ${windowSize}-tap window`, {
      field: 'height×width',
      expected: `min(height, width) ≥ ${windowSize * 2 ** (want - 1)}`,
      found: `${height}×${width}`,
    });
  }
  const raw = MS_SSIM_WEIGHTS.slice(0, scales);
  const total = raw.reduce((s, w) => s + w, 0);
  return Object.freeze({
    windowSize,
    sigma,
    scales,
    weights: Object.freeze(raw.map((w) => w / total)),
  });
}

/** The normalised 1-D Gaussian; the 2-D window is its outer product with itself. */
function gaussian1d(size: number, sigma: number): Float32Array {
  const half = (size - 1) / 2;
  const g = Array.from({ length: size }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const s = g.reduce((a, b) => a + b, 0);
  return Float32Array.from(g, (v) => v / s);
}

// ---- tensor part -------------------------------------------------------------------------------------------

interface Kernel {
  readonly setup: MsSsimSetup;
  readonly c1: number;
  readonly c2: number;
  /** [k, 1, ch, 1] and [1, k, ch, 1] depthwise filters, ch = 5·channels. */
  readonly rows: tf.Tensor4D;
  readonly cols: tf.Tensor4D;
}

/** Separable 'valid' Gaussian filtering of every channel of `x` ([B, H, W, ch]). */
function blur(x: tf.Tensor4D, k: Kernel): tf.Tensor4D {
  return tf.depthwiseConv2d(tf.depthwiseConv2d(x, k.rows, 1, 'valid'), k.cols, 1, 'valid');
}

/**
 * Per-pair, per-channel (cs mean, ssim mean) at one scale, for [B, H, W, C] samples in [0, 1]. Returns
 * [B, C] tensors.
 */
function scaleTerms(x: tf.Tensor4D, y: tf.Tensor4D, k: Kernel): { cs: tf.Tensor2D; ssim: tf.Tensor2D } {
  const C = x.shape[3];
  // (Co)variances are shift-invariant: take them of each image minus its own mean (per channel), so that
  // E[x²] − μ² cancels far less in float32 (a constant image gives exactly 0); add the shift back for μ.
  const sx: tf.Tensor4D = tf.mean(x, [1, 2], true);
  const sy: tf.Tensor4D = tf.mean(y, [1, 2], true);
  const xc: tf.Tensor4D = tf.sub(x, sx);
  const yc: tf.Tensor4D = tf.sub(y, sy);
  // One depthwise pass for all five moments: [x, y, x², y², xy] along the channel axis.
  const f = blur(tf.concat([xc, yc, tf.square(xc), tf.square(yc), tf.mul(xc, yc)], 3), k);
  const [mx, my, exx, eyy, exy] = tf.split(f, [C, C, C, C, C], 3) as [
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
  ];
  const sxx = tf.sub(exx, tf.square(mx));
  const syy = tf.sub(eyy, tf.square(my));
  const sxy = tf.sub(exy, tf.mul(mx, my));
  const csMap = tf.div(tf.add(tf.mul(sxy, 2), k.c2), tf.add(tf.add(sxx, syy), k.c2));
  const ux = tf.add(mx, sx);
  const uy = tf.add(my, sy);
  const lum = tf.div(
    tf.add(tf.mul(tf.mul(ux, uy), 2), k.c1),
    tf.add(tf.add(tf.square(ux), tf.square(uy)), k.c1),
  );
  return { cs: tf.mean(csMap, [1, 2]), ssim: tf.mean(tf.mul(lum, csMap), [1, 2]) };
}

/** MS-SSIM of each pair of a batch: `x`, `y` are [B, H, W, C] samples in [0, 1]; returns [B]. */
function msSsimBatch(x: tf.Tensor4D, y: tf.Tensor4D, k: Kernel): tf.Tensor1D {
  const { scales, weights } = k.setup;
  let product: tf.Tensor2D | undefined;
  for (let j = 0; j < scales; j++) {
    if (j > 0) {
      // 'same' average pooling averages only real samples: equals repeating the last odd row/column.
      x = tf.avgPool(x, 2, 2, 'same');
      y = tf.avgPool(y, 2, 2, 'same');
    }
    const { cs, ssim } = scaleTerms(x, y, k);
    const term: tf.Tensor2D = tf.pow(tf.relu(j === scales - 1 ? ssim : cs), weights[j]!);
    product = product ? tf.mul(product, term) : term;
  }
  return tf.mean(product!, 1);
}

/** Samples of images 2v/max − 1 (as `imagesToFloat` gives them) → v/max, as a [n, H, W, C] tensor. */
function unitTensor(f: Float32Array, shape: [number, number, number, number]): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.mul(tf.tensor4d(f, shape), 0.5), 0.5));
}

function makeKernel(setup: MsSsimSetup, channels: number, options: MsSsimOptions): Kernel {
  const g = gaussian1d(setup.windowSize, setup.sigma);
  const ch = 5 * channels;
  const taps = new Float32Array(setup.windowSize * ch);
  for (let i = 0; i < setup.windowSize; i++) taps.fill(g[i]!, i * ch, (i + 1) * ch);
  const k = setup.windowSize;
  return {
    setup,
    c1: (options.k1 ?? 0.01) ** 2,
    c2: (options.k2 ?? 0.03) ** 2,
    rows: tf.tensor4d(taps, [k, 1, ch, 1]),
    cols: tf.tensor4d(taps, [1, k, ch, 1]),
  };
}

// ---- input checks ------------------------------------------------------------------------------------------

function checkImageArray(images: ImageArray, what: string): void {
  if (!(Number.isInteger(images.count) && images.count >= 1)) {
    throw new DatasetError('no images', {
      field: what,
      expected: 'at least 1 image',
      found: String(images.count),
    });
  }
  if (images.channels !== 1 && images.channels !== 3) {
    throw new DatasetError('images must have 1 or 3 channels', {
      field: `${what}.channels`,
      found: String(images.channels),
    });
  }
  const expected = images.count * images.height * images.width * images.channels;
  if (images.data.length !== expected) {
    throw new DatasetError('image data length does not match count × height × width × channels', {
      field: `${what}.data`,
      expected: `${expected} samples`,
      found: String(images.data.length),
    });
  }
  if (!(images.maxValue > 0)) {
    throw new DatasetError('maxValue must be positive', {
      field: `${what}.maxValue`,
      found: String(images.maxValue),
    });
  }
}

function checkIndices(idx: Int32Array, count: number, what: string): void {
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    if (!(i >= 0 && i < count)) {
      throw new DatasetError('image index out of range', {
        field: `${what}[${k}]`,
        expected: `0..${count - 1}`,
        found: String(i),
      });
    }
  }
}

// ---- public API --------------------------------------------------------------------------------------------

/**
 * MS-SSIM of image `a[aIdx[k]]` vs `b[bIdx[k]]` for each k; `a` and `b` must have the same height, width
 * and channels (their bit depths may differ). Pairs go through the backend `batchSize` at a time; progress
 * ticks (`phase 'ms-ssim'`, unit `pair`) follow each batch, and `signal` is checked before each.
 */
export async function msSsimPairs(
  a: ImageArray,
  aIdx: Int32Array,
  b: ImageArray,
  bIdx: Int32Array,
  options: MsSsimOptions & RunControl = {},
): Promise<Float64Array> {
  checkImageArray(a, 'a');
  checkImageArray(b, 'b');
  if (a.height !== b.height || a.width !== b.width || a.channels !== b.channels) {
    throw new DatasetError('images a and b must have the same shape', {
      field: 'b',
      expected: `${a.height}×${a.width}×${a.channels}`,
      found: `${b.height}×${b.width}×${b.channels}`,
    });
  }
  if (aIdx.length !== bIdx.length) {
    throw new DatasetError('aIdx and bIdx must have the same length', {
      field: 'bIdx',
      expected: `${aIdx.length} indices`,
      found: String(bIdx.length),
    });
  }
  checkIndices(aIdx, a.count, 'aIdx');
  checkIndices(bIdx, b.count, 'bIdx');
  const setup = msSsimSetup(a.height, a.width, options);
  return runPairs(a, aIdx, b, bIdx, setup, options);
}

async function runPairs(
  a: ImageArray,
  aIdx: Int32Array,
  b: ImageArray,
  bIdx: Int32Array,
  setup: MsSsimSetup,
  options: MsSsimOptions & RunControl,
): Promise<Float64Array> {
  const total = aIdx.length;
  const out = new Float64Array(total);
  if (total === 0) return out;
  const batch = options.batchSize ?? DEFAULT_BATCH;
  const { height: H, width: W, channels: C } = a;
  const kernel = makeKernel(setup, C, options);
  try {
    for (let start = 0; start < total; start += batch) {
      throwIfAborted(options.signal);
      const end = Math.min(total, start + batch);
      const n = end - start;
      const xs = imagesToFloat(a, aIdx.subarray(start, end));
      const ys = imagesToFloat(b, bIdx.subarray(start, end));
      const values = tf.tidy(() =>
        msSsimBatch(unitTensor(xs, [n, H, W, C]), unitTensor(ys, [n, H, W, C]), kernel),
      );
      try {
        out.set(await values.data(), start);
      } finally {
        values.dispose();
      }
      options.onProgress?.({ type: 'tick', phase: 'ms-ssim', done: end, total, unit: 'pair' });
    }
  } finally {
    kernel.rows.dispose();
    kernel.cols.dispose();
  }
  return out;
}

/**
 * Up to `k` distinct unordered pairs [i, j], 0 ≤ i < j < n, drawn with `rng`; all of them, in row-major
 * order, when there are no more than `k`.
 */
export function drawPairs(n: number, k: number, rng: Rng): [number, number][] {
  const all = (n * (n - 1)) / 2;
  if (all <= k) {
    const pairs: [number, number][] = [];
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push([i, j]);
    return pairs;
  }
  if (all <= 4 * k) {
    // Few more pairs than wanted: a partial Fisher–Yates over the enumerated pairs.
    const codes = Array.from({ length: all }, (_, c) => c);
    for (let t = 0; t < k; t++) {
      const s = t + rng.int(all - t);
      [codes[t], codes[s]] = [codes[s]!, codes[t]!];
    }
    return codes.slice(0, k).map((c) => pairFromCode(c, n));
  }
  // Many more pairs than wanted: rejection of repeats (under 1 in 4 draws is one).
  const seen = new Set<number>();
  const pairs: [number, number][] = [];
  while (pairs.length < k) {
    const i = rng.int(n);
    const j = rng.int(n - 1);
    const [lo, hi] = j >= i ? [i, j + 1] : [j, i];
    const code = lo * n + hi;
    if (seen.has(code)) continue;
    seen.add(code);
    pairs.push([lo, hi]);
  }
  return pairs;
}

/** The c-th pair (0-based) of the row-major enumeration (0,1), (0,2), …, (0,n−1), (1,2), … */
function pairFromCode(c: number, n: number): [number, number] {
  let i = 0;
  let rowLen = n - 1;
  while (c >= rowLen) {
    c -= rowLen;
    i++;
    rowLen--;
  }
  return [i, i + 1 + c];
}

/**
 * Within-class diversity: for each class, up to `pairsPerClass` (default 200) distinct random pairs of two
 * different images of that class (all pairs when there are no more), drawn from `Rng.derive(seed,
 * 'ms-ssim', classIndex)`, scored with MS-SSIM. Classes with fewer than 2 images get 0 pairs and mean `null`.
 * Bad input → `DatasetError` naming `images`, `labels` or `classNames`.
 */
export async function msSsimDiversity(
  images: ImageArray,
  labels: Int32Array,
  classNames: readonly string[],
  options: MsSsimDiversityOptions = {},
): Promise<MsSsimDiversity> {
  checkImageArray(images, 'images');
  if (classNames.length < 1) {
    throw new DatasetError('no class names', { field: 'classNames', expected: 'at least 1 class' });
  }
  if (labels.length !== images.count) {
    throw new DatasetError('label count does not match image count', {
      field: 'labels',
      expected: `${images.count} labels (one per image)`,
      found: String(labels.length),
    });
  }
  const K = classNames.length;
  const members: number[][] = Array.from({ length: K }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!(Number.isInteger(l) && l >= 0 && l < K)) {
      throw new DatasetError('label out of range', {
        field: `labels[${i}]`,
        expected: `0..${K - 1}`,
        found: String(l),
      });
    }
    members[l]!.push(i);
  }
  const perClassPairs = options.pairsPerClass ?? DEFAULT_PAIRS_PER_CLASS;
  if (!(Number.isInteger(perClassPairs) && perClassPairs >= 1)) {
    throw new ConfigError('invalid MS-SSIM option pairsPerClass', {
      field: 'pairsPerClass',
      expected: 'a positive integer',
      found: String(perClassPairs),
    });
  }
  const seed = options.seed ?? 0;
  const setup = msSsimSetup(images.height, images.width, options);

  const aIdx: number[] = [];
  const bIdx: number[] = [];
  const spans: [number, number][] = [];
  members.forEach((m, c) => {
    const from = aIdx.length;
    if (m.length >= 2) {
      for (const [p, q] of drawPairs(m.length, perClassPairs, Rng.derive(seed, 'ms-ssim', c))) {
        aIdx.push(m[p]!);
        bIdx.push(m[q]!);
      }
    }
    spans.push([from, aIdx.length]);
  });
  const values = await runPairs(images, Int32Array.from(aIdx), images, Int32Array.from(bIdx), setup, options);

  const perClass = classNames.map((className, c): MsSsimClassDiversity => {
    const [from, to] = spans[c]!;
    const v = values.subarray(from, to);
    return { className, images: members[c]!.length, pairs: v.length, mean: meanOf(v), std: stdOf(v) };
  });
  const means = perClass.flatMap((p) => (p.mean === null ? [] : [p.mean]));
  return {
    setup,
    perClass,
    mean: means.length > 0 ? means.reduce((s, x) => s + x, 0) / means.length : null,
    pairs: values.length,
  };
}

function meanOf(v: Float64Array): number | null {
  if (v.length === 0) return null;
  let s = 0;
  for (const x of v) s += x;
  return s / v.length;
}

function stdOf(v: Float64Array): number | null {
  if (v.length < 2) return null;
  const m = meanOf(v)!;
  let s = 0;
  for (const x of v) s += (x - m) ** 2;
  return Math.sqrt(s / (v.length - 1));
}
