/**
 * The one preprocessing path every extractor uses, so real and fake images reach a network identically:
 *  1. samples to float in [-1, 1] (`2·v/max − 1`, as everywhere in medsynth);
 *  2. channels: gray → RGB by replicating the plane; RGB → gray by BT.601 luma (0.299, 0.587, 0.114);
 *  3. size: bilinear resampling (half-pixel centres, no antialiasing) to the network's input size, only when
 *     the images are not already that size;
 *  4. value range: the linear map of [-1, 1] onto the network's range (e.g. [0, 255]).
 */
import * as tf from '@tensorflow/tfjs-core';
import { imagesToFloat } from '../../data/image/tensors.js';
import type { ImageArray } from '../../data/types.js';

export interface PrepareSpec {
  readonly inputShape: readonly [number, number, 1 | 3];
  /** The network's input value range; [-1, 1] needs no mapping. */
  readonly range: readonly [number, number];
}

/** A sentence for `ExtractorInfo.preprocessing`. */
export function describePreparation(spec: PrepareSpec): string {
  const [h, w, c] = spec.inputShape;
  return (
    `samples scaled to [-1, 1]; ${c === 3 ? 'gray replicated to RGB' : 'RGB to gray by BT.601 luma'}; ` +
    `bilinear resize (half-pixel centres) to ${h}×${w} when the size differs; ` +
    `values mapped to [${spec.range[0]}, ${spec.range[1]}]; identical for real and fake images`
  );
}

/** Images `indices` of `images` as the network's input tensor `[n, h, w, c]`. The caller disposes it. */
export function prepareBatch(images: ImageArray, indices: ArrayLike<number>, spec: PrepareSpec): tf.Tensor4D {
  const [h, w, c] = spec.inputShape;
  const x = imagesToFloat(images, indices);
  return tf.tidy(() => {
    let t: tf.Tensor4D = tf.tensor4d(x, [indices.length, images.height, images.width, images.channels]);
    if (images.channels === 1 && c === 3) t = tf.tile(t, [1, 1, 1, 3]);
    else if (images.channels === 3 && c === 1)
      t = tf.sum(tf.mul(t, tf.tensor1d([0.299, 0.587, 0.114])), -1, true) as tf.Tensor4D;
    if (images.height !== h || images.width !== w) t = tf.image.resizeBilinear(t, [h, w], false, true);
    const [lo, hi] = spec.range;
    if (lo !== -1 || hi !== 1) t = tf.add(tf.mul(t, (hi - lo) / 2), (hi + lo) / 2);
    return t;
  });
}
