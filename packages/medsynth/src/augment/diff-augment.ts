/**
 * Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020), each augmentation applied
 * to each sample independently with probability p (ADA, Karras et al. 2020; p = 1 is plain DiffAugment):
 * - color: brightness + U(−0.5, 0.5); saturation × U(0, 2) around each pixel's channel mean (RGB only: skipped
 *   for one channel); contrast × U(0.5, 1.5) around each image's mean — three independent coin flips;
 * - translation: an integer shift of up to ⌊side/8⌋ pixels on each axis, zero fill;
 * - cutout: a zeroed ⌊H/2⌋ × ⌊W/2⌋ rectangle (a square of half the side for square images) lying wholly
 *   inside the image, at a uniform position.
 * Applied in that order. All are built from differentiable ops (add, mul, mean, gather), so gradients reach G.
 * All randomness comes from the caller's seeded `Rng`, drawn in JS, never from tf.random*; the number of draws
 * depends only on the batch size and the policy — not on p, the image size or the coin flips — so runs are
 * reproducible and resumable bit for bit, and changing p (ADA) never shifts later draws. Samples a coin flip
 * leaves alone come out bit-identical to their input.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../runtime/errors.js';
import type { Rng } from '../runtime/random.js';

/** Which augmentations are on. */
export interface AugmentPolicy {
  readonly translation: boolean;
  readonly cutout: boolean;
  readonly color: boolean;
}

/** The augmentation names, in the order they are applied when on. */
export const AUGMENT_NAMES = ['color', 'translation', 'cutout'] as const;
export type AugmentName = (typeof AUGMENT_NAMES)[number];

/** All three, as DiffAugment recommends for small data sets. */
export const DEFAULT_AUGMENT_POLICY: AugmentPolicy = Object.freeze({
  translation: true,
  cutout: true,
  color: true,
});

/** Largest translation as a fraction of the side. */
const TRANSLATION_RATIO = 1 / 8;
/** Cutout side as a fraction of the image side. */
const CUTOUT_RATIO = 1 / 2;

function isAugmentName(s: string): s is AugmentName {
  return (AUGMENT_NAMES as readonly string[]).includes(s);
}

/** A policy from augmentation names; an unknown name is a `ConfigError` naming it and `field`. */
export function augmentPolicy(names: readonly string[], field = 'augmentOps'): AugmentPolicy {
  for (const n of names) {
    if (!isAugmentName(n)) {
      throw new ConfigError(`unknown augmentation '${n}'`, {
        field,
        expected: `a comma-separated subset of ${AUGMENT_NAMES.join(', ')}`,
        found: n,
      });
    }
  }
  return {
    translation: names.includes('translation'),
    cutout: names.includes('cutout'),
    color: names.includes('color'),
  };
}

/**
 * A policy from a comma-separated list, as given on the command line: `'translation,cutout,color'`
 * (spaces around names allowed, order irrelevant). Empty or unknown names are a `ConfigError`.
 */
export function parseAugmentPolicy(spec: string, field = 'augmentOps'): AugmentPolicy {
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) {
    throw new ConfigError('no augmentation named', {
      field,
      expected: `a comma-separated subset of ${AUGMENT_NAMES.join(', ')}`,
      found: JSON.stringify(spec),
    });
  }
  return augmentPolicy(names, field);
}

/** The names of a policy's augmentations that are on, in application order (the inverse of `augmentPolicy`). */
export function augmentNames(policy: AugmentPolicy): AugmentName[] {
  return AUGMENT_NAMES.filter((n) => policy[n]);
}

// ---------------------------------------------------------------------------------------------------------
// Per-sample parameters, drawn in JS. Each draw function takes a fixed number of draws per sample.

/** Per-sample colour parameters; a sample whose coin flip failed gets the identity (0, 1, 1). */
export interface ColorParams {
  /** Added to every pixel. */
  readonly brightness: Float32Array;
  /** Factor on the deviation from the pixel's channel mean. */
  readonly saturation: Float32Array;
  /** Factor on the deviation from the image's mean. */
  readonly contrast: Float32Array;
}

/** Colour parameters for `n` samples: 6 draws per sample (coin and value for each of the three). */
export function drawColor(n: number, p: number, rng: Rng): ColorParams {
  const brightness = new Float32Array(n);
  const saturation = new Float32Array(n).fill(1);
  const contrast = new Float32Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    const onB = rng.next() < p;
    const b = rng.next() - 0.5;
    const onS = rng.next() < p;
    const s = rng.next() * 2;
    const onC = rng.next() < p;
    const c = rng.next() + 0.5;
    if (onB) brightness[i] = b;
    if (onS) saturation[i] = s;
    if (onC) contrast[i] = c;
  }
  return { brightness, saturation, contrast };
}

/** Per-sample integer shifts (content moves down/right for positive values). */
export interface Shifts {
  readonly dy: Int32Array;
  readonly dx: Int32Array;
}

/** Shifts for `n` samples of `h × w`, each in [−⌊side/8⌋, ⌊side/8⌋] or 0: 3 draws per sample. */
export function drawTranslation(n: number, h: number, w: number, p: number, rng: Rng): Shifts {
  const my = Math.floor(h * TRANSLATION_RATIO);
  const mx = Math.floor(w * TRANSLATION_RATIO);
  const dy = new Int32Array(n);
  const dx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const on = rng.next() < p;
    const a = rng.int(2 * my + 1) - my;
    const b = rng.int(2 * mx + 1) - mx;
    if (on) {
      dy[i] = a;
      dx[i] = b;
    }
  }
  return { dy, dx };
}

/** Per-sample cutout rectangles: top-left corners, and whether each sample gets one. */
export interface CutoutBoxes {
  readonly height: number;
  readonly width: number;
  readonly y0: Int32Array;
  readonly x0: Int32Array;
  readonly on: Uint8Array;
}

/** Cutout rectangles (⌊h/2⌋ × ⌊w/2⌋, wholly inside the image) for `n` samples: 3 draws per sample. */
export function drawCutout(n: number, h: number, w: number, p: number, rng: Rng): CutoutBoxes {
  const height = Math.floor(h * CUTOUT_RATIO);
  const width = Math.floor(w * CUTOUT_RATIO);
  const y0 = new Int32Array(n);
  const x0 = new Int32Array(n);
  const on = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    on[i] = rng.next() < p && height > 0 && width > 0 ? 1 : 0;
    y0[i] = rng.int(h - height + 1);
    x0[i] = rng.int(w - width + 1);
  }
  return { height, width, y0, x0, on };
}

// ---------------------------------------------------------------------------------------------------------
// The augmentations with explicit parameters (differentiable w.r.t. x).

/**
 * Brightness, then saturation (channels > 1 only), then contrast, each per sample. Written as
 * x + (f − 1)·(x − mean) so that the identity parameters give back x exactly.
 */
export function adjustColor(x: tf.Tensor4D, params: ColorParams): tf.Tensor4D {
  const n = x.shape[0];
  const perSample = (v: Float32Array) => tf.tensor4d(v, [n, 1, 1, 1]);
  const minusOne = (v: Float32Array) => v.map((f) => f - 1);
  return tf.tidy(() => {
    let y: tf.Tensor4D = x;
    if (params.brightness.some((b) => b !== 0)) y = tf.add(y, perSample(params.brightness));
    if (x.shape[3] > 1 && params.saturation.some((s) => s !== 1)) {
      const mean = tf.mean(y, 3, true);
      y = tf.add(y, tf.mul(tf.sub(y, mean), perSample(minusOne(params.saturation))));
    }
    if (params.contrast.some((c) => c !== 1)) {
      const mean = tf.mean(y, [1, 2, 3], true);
      y = tf.add(y, tf.mul(tf.sub(y, mean), perSample(minusOne(params.contrast))));
    }
    return y === x ? tf.clone(x) : y;
  });
}

/**
 * Shifts each sample by (dy[i], dx[i]) pixels (content moves down/right for positive shifts), zero fill.
 * One gather from the flattened batch `[N·H·W, C]` plus a zero row that out-of-range pixels point at, so the
 * gradient w.r.t. x is the inverse shift (pixels shifted out get none).
 */
export function translate(x: tf.Tensor4D, dy: ArrayLike<number>, dx: ArrayLike<number>): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (dy.length !== n || dx.length !== n) {
    throw new RangeError(`translate: ${n} samples but ${dy.length} dy and ${dx.length} dx shifts`);
  }
  const zeroRow = n * h * w;
  const index = new Int32Array(n * h * w);
  for (let i = 0; i < n; i++) {
    const sy0 = dy[i]!;
    const sx0 = dx[i]!;
    if (!Number.isInteger(sy0) || !Number.isInteger(sx0)) {
      throw new RangeError(`translate: shifts must be integers, got (${sy0}, ${sx0}) for sample ${i}`);
    }
    for (let yy = 0; yy < h; yy++) {
      const sy = yy - sy0;
      const rowOk = sy >= 0 && sy < h;
      for (let xx = 0; xx < w; xx++) {
        const sx = xx - sx0;
        index[(i * h + yy) * w + xx] = rowOk && sx >= 0 && sx < w ? (i * h + sy) * w + sx : zeroRow;
      }
    }
  }
  return tf.tidy(() => {
    const flat = tf.concat([tf.reshape(x, [n * h * w, c]), tf.zeros([1, c], x.dtype)], 0);
    return tf.reshape(tf.gather(flat, tf.tensor1d(index, 'int32')), [n, h, w, c]);
  });
}

/** The `[N·H·W]` multiplicative mask (1 kept, 0 cut) of cutout boxes for `h × w` images. */
export function cutoutMask(h: number, w: number, boxes: CutoutBoxes): Float32Array {
  const n = boxes.on.length;
  const mask = new Float32Array(n * h * w).fill(1);
  for (let i = 0; i < n; i++) {
    if (!boxes.on[i]) continue;
    const y0 = boxes.y0[i]!;
    const x0 = boxes.x0[i]!;
    for (let y = y0; y < Math.min(h, y0 + boxes.height); y++) {
      const row = (i * h + y) * w;
      mask.fill(0, row + Math.max(0, x0), row + Math.min(w, x0 + boxes.width));
    }
  }
  return mask;
}

/** Zeroes each selected sample's box, all channels. */
export function cutout(x: tf.Tensor4D, boxes: CutoutBoxes): tf.Tensor4D {
  const [n, h, w] = x.shape;
  if (boxes.on.length !== n) throw new RangeError(`cutout: ${n} samples but ${boxes.on.length} boxes`);
  return tf.tidy(() => tf.mul(x, tf.tensor4d(cutoutMask(h, w, boxes), [n, h, w, 1])));
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Augments a batch `[N, H, W, C]` (values in [−1, 1]): each augmentation the policy turns on hits each sample
 * independently with probability p. p = 0 returns a copy of x. Takes its parameters from `rng` (see the module
 * comment); returns a new tensor and leaves no others behind.
 */
export function augment(x: tf.Tensor4D, p: number, policy: AugmentPolicy, rng: Rng): tf.Tensor4D {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`augment: p must be in [0, 1], got ${p}`);
  if (x.rank !== 4) throw new RangeError(`augment: x must be [N, H, W, C], got [${x.shape.join(', ')}]`);
  const [n, h, w] = x.shape;
  return tf.tidy(() => {
    let y = x;
    if (policy.color) {
      const params = drawColor(n, p, rng);
      y = adjustColor(y, params);
    }
    if (policy.translation) {
      const { dy, dx } = drawTranslation(n, h, w, p, rng);
      if (dy.some((v) => v !== 0) || dx.some((v) => v !== 0)) y = translate(y, dy, dx);
    }
    if (policy.cutout) {
      const boxes = drawCutout(n, h, w, p, rng);
      if (boxes.on.some((v) => v !== 0)) y = cutout(y, boxes);
    }
    return y === x ? tf.clone(x) : y;
  });
}
