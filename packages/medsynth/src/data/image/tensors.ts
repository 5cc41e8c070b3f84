/**
 * Between image arrays and network tensors: networks see float32 NHWC in [-1, 1]; image arrays hold
 * 8- or 16-bit samples. `x = 2·v/max − 1` one way, `v = round((x + 1)/2 · 255)` (clipped) the other.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ImageArray } from '../types.js';

/** Images `indices` (default all) of `images` as one float32 array in [-1, 1], NHWC. */
export function imagesToFloat(images: ImageArray, indices?: ArrayLike<number>): Float32Array {
  const per = images.height * images.width * images.channels;
  const count = indices ? indices.length : images.count;
  const out = new Float32Array(count * per);
  const scale = 2 / images.maxValue;
  for (let k = 0; k < count; k++) {
    const i = indices ? indices[k]! : k;
    if (!(i >= 0 && i < images.count))
      throw new RangeError(`image index ${i} out of range 0..${images.count - 1}`);
    const src = images.data.subarray(i * per, (i + 1) * per);
    const base = k * per;
    for (let j = 0; j < per; j++) out[base + j] = src[j]! * scale - 1;
  }
  return out;
}

/** Images `indices` (default all) as a float32 tensor `[N, H, W, C]` in [-1, 1]. */
export function imagesToTensor(images: ImageArray, indices?: ArrayLike<number>): tf.Tensor4D {
  const count = indices ? indices.length : images.count;
  return tf.tensor4d(imagesToFloat(images, indices), [count, images.height, images.width, images.channels]);
}

/** Float samples in [-1, 1] to 8-bit: rounded and clipped (values outside the range saturate). */
export function floatToUint8(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round((x[i]! + 1) * 127.5);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

/** A `[N, H, W, C]` tensor in [-1, 1] back to an 8-bit image array (reads the data asynchronously). */
export async function tensorToImages(x: tf.Tensor4D): Promise<ImageArray> {
  const [count, height, width, channels] = x.shape;
  if (channels !== 1 && channels !== 3) throw new RangeError(`expected 1 or 3 channels, got ${channels}`);
  const data = floatToUint8((await x.data()) as Float32Array);
  return { data, count, height, width, channels, maxValue: 255 };
}
