/**
 * Generator EMA (Karras et al.): G_ema ← β·G_ema + (1−β)·G after every G step, with β from a half-life in
 * images, β = 0.5^(batch / halfLifeImages), optionally ramped up over the first images
 * (halfLife = min(halfLife, images seen · rampup)). Non-trainable weights (batch-norm statistics) are copied.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** β for one update of `batch` images, given the half-life (images; 0 = copy G) and optional ramp-up. */
export function emaBeta(batch: number, halfLifeImages: number, imagesSeen: number, rampup?: number): number {
  let half = halfLifeImages;
  if (rampup !== undefined) half = Math.min(half, imagesSeen * rampup);
  return half > 0 ? 0.5 ** (batch / half) : 0;
}

/** Moves `ema`'s weights toward `model`'s (same architecture, weights in the same order). */
export function updateEma(ema: tfl.LayersModel, model: tfl.LayersModel, beta: number): void {
  const src = model.weights;
  const dst = ema.weights;
  if (src.length !== dst.length) throw new RangeError('updateEma: the models have different weights');
  tf.tidy(() => {
    src.forEach((w, i) => {
      const e = dst[i]!;
      const value = w.read();
      const next = w.trainable && beta > 0 ? tf.add(tf.mul(e.read(), beta), tf.mul(value, 1 - beta)) : value;
      (e.read() as tf.Variable).assign(next);
    });
  });
}

/** Copies every weight of `from` into `to` (same architecture). */
export function copyWeights(to: tfl.LayersModel, from: tfl.LayersModel): void {
  updateEma(to, from, 0);
}
