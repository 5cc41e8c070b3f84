/**
 * Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020), applied per sample with
 * probability p (ADA, Karras et al. 2020: p = 1 is plain DiffAugment). Colour (brightness, saturation,
 * contrast), translation (up to 1/8 of the side, zero fill) and cutout (a zeroed square of half the side),
 * in that order. Gradients flow through to G. All randomness comes from the caller's seeded `Rng`, and the
 * number of draws does not depend on the outcomes, so runs are reproducible and resumable bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../runtime/random.js';

export interface AugmentPolicy {
  readonly translation: boolean;
  readonly cutout: boolean;
  readonly color: boolean;
}

export const AUGMENT_NAMES = ['translation', 'cutout', 'color'] as const;
export type AugmentName = (typeof AUGMENT_NAMES)[number];

export const DEFAULT_AUGMENT_POLICY: AugmentPolicy = Object.freeze({ translation: true, cutout: true, color: true });

/** A policy from names (`['translation', 'cutout']`); unknown names are a RangeError naming them. */
export function augmentPolicy(names: readonly string[]): AugmentPolicy {
  for (const n of names) {
    if (!(AUGMENT_NAMES as readonly string[]).includes(n))
      throw new RangeError(`unknown augmentation "${n}" (expected ${AUGMENT_NAMES.join(', ')})`);
  }
  return { translation: names.includes('translation'), cutout: names.includes('cutout'), color: names.includes('color') };
}

/** Per-sample colour parameters: brightness added, saturation and contrast factors (identity 0, 1, 1). */
function colorParams(n: number, p: number, rng: Rng) {
  const brightness = new Float32Array(n);
  const saturation = new Float32Array(n);
  const contrast = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const on = rng.next() < p;
    const b = rng.next() - 0.5;
    const s = rng.next() * 2;
    const c = rng.next() + 0.5;
    brightness[i] = on ? b : 0;
    saturation[i] = on ? s : 1;
    contrast[i] = on ? c : 1;
  }
  return { brightness, saturation, contrast };
}

function color(x: tf.Tensor4D, p: number, rng: Rng): tf.Tensor4D {
  const n = x.shape[0];
  const { brightness, saturation, contrast } = colorParams(n, p, rng);
  const per = (v: Float32Array) => tf.tensor4d(v, [n, 1, 1, 1]);
  let y: tf.Tensor = tf.add(x, per(brightness));
  if (x.shape[3] > 1) {
    const m = tf.mean(y, 3, true);
    y = tf.add(tf.mul(tf.sub(y, m), per(saturation)), m);
  }
  const m = tf.mean(y, [1, 2, 3], true);
  return tf.add(tf.mul(tf.sub(y, m), per(contrast)), m) as tf.Tensor4D;
}

/**
 * Shifts each sample by (dy[i], dx[i]) pixels (content moves down/right for positive shifts), zero fill:
 * a gather from the flattened batch plus one zero row that out-of-range pixels point at.
 */
export function translate(x: tf.Tensor4D, dy: ArrayLike<number>, dx: ArrayLike<number>): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const zeroRow = n * h * w;
  const idx = new Int32Array(n * h * w);
  for (let i = 0; i < n; i++) {
    for (let yy = 0; yy < h; yy++) {
      const sy = yy - dy[i]!;
      for (let xx = 0; xx < w; xx++) {
        const sx = xx - dx[i]!;
        idx[(i * h + yy) * w + xx] = sy >= 0 && sy < h && sx >= 0 && sx < w ? (i * h + sy) * w + sx : zeroRow;
      }
    }
  }
  const flat = tf.concat([tf.reshape(x, [n * h * w, c]), tf.zeros([1, c])], 0);
  return tf.reshape(tf.gather(flat, tf.tensor1d(idx, 'int32')), [n, h, w, c]) as tf.Tensor4D;
}

function translation(x: tf.Tensor4D, p: number, rng: Rng): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const my = Math.floor(h / 8);
  const mx = Math.floor(w / 8);
  const dy = new Int32Array(n);
  const dx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const on = rng.next() < p;
    const a = rng.int(2 * my + 1) - my;
    const b = rng.int(2 * mx + 1) - mx;
    dy[i] = on ? a : 0;
    dx[i] = on ? b : 0;
  }
  return translate(x, dy, dx);
}

/** A `[N, H, W, 1]` mask with a zeroed (h/2)×(w/2) square per selected sample, its centre anywhere in the image. */
export function cutoutMask(n: number, h: number, w: number, p: number, rng: Rng): Float32Array {
  const ch = Math.floor(h / 2);
  const cw = Math.floor(w / 2);
  const mask = new Float32Array(n * h * w).fill(1);
  for (let i = 0; i < n; i++) {
    const on = rng.next() < p;
    const cy = rng.int(h);
    const cx = rng.int(w);
    if (!on) continue;
    const y0 = cy - Math.floor(ch / 2);
    const x0 = cx - Math.floor(cw / 2);
    for (let y = Math.max(0, y0); y < Math.min(h, y0 + ch); y++) {
      for (let x = Math.max(0, x0); x < Math.min(w, x0 + cw); x++) mask[(i * h + y) * w + x] = 0;
    }
  }
  return mask;
}

function cutout(x: tf.Tensor4D, p: number, rng: Rng): tf.Tensor4D {
  const [n, h, w] = x.shape;
  return tf.mul(x, tf.tensor4d(cutoutMask(n, h, w, p, rng), [n, h, w, 1]));
}

/** Augments a batch `[N, H, W, C]` in [-1, 1]: each enabled augmentation hits each sample with probability p. */
export function augment(x: tf.Tensor4D, p: number, policy: AugmentPolicy, rng: Rng): tf.Tensor4D {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`augment: p must be in [0, 1], got ${p}`);
  return tf.tidy(() => {
    let y = x;
    if (policy.color) y = color(y, p, rng);
    if (policy.translation) y = translation(y, p, rng);
    if (policy.cutout) y = cutout(y, p, rng);
    return y === x ? tf.clone(x) : y;
  });
}
