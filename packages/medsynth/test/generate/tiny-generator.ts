/**
 * A tiny `SamplingGenerator` for tests: element-wise only (so a row's pixels never depend on the batch it is
 * in), image = clip(0.4·z + 0.3·(label − 1), −1, 1) with z reshaped to [N, size, size, channels]. It records
 * the z and labels it was called with, and owns one tensor (disposed by `dispose`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SamplingGenerator } from '../../src/models/types.js';

export interface TinyGenerator extends SamplingGenerator {
  /** z rows and labels of every call, in order. */
  readonly calls: { z: Float32Array; labels: Int32Array | null; n: number; psi: number | undefined }[];
  readonly disposed: () => boolean;
}

export function tinyGenerator(
  options: {
    classNames?: readonly string[];
    size?: number;
    channels?: 1 | 3;
    conditional?: boolean;
    /** Where ψ acts (default 'z'); a 'w' generator records the ψ it was handed. */
    truncation?: 'z' | 'w';
  } = {},
): TinyGenerator {
  const classNames = options.classNames ?? ['a', 'b', 'c'];
  const size = options.size ?? 4;
  const channels = options.channels ?? 1;
  const conditional = options.conditional ?? true;
  const zDim = size * size * channels;
  const scale = tf.scalar(0.4);
  let disposed = false;
  const calls: TinyGenerator['calls'] = [];
  return {
    zDim,
    numClasses: classNames.length,
    classNames,
    size,
    channels,
    conditional,
    truncation: options.truncation ?? 'z',
    calls,
    disposed: () => disposed,
    generate(z, labels, psi) {
      return tf.tidy(() => {
        const n = z.shape[0];
        calls.push({
          z: z.dataSync() as Float32Array,
          labels: labels ? (labels.dataSync() as Int32Array) : null,
          n,
          psi,
        });
        let x: tf.Tensor = tf.mul(tf.reshape(z, [n, size, size, channels]), scale);
        if (conditional && labels) {
          const offset = tf.reshape(tf.mul(tf.sub(tf.cast(labels, 'float32'), 1), 0.3), [n, 1, 1, 1]);
          x = tf.add(x, offset);
        }
        return tf.clipByValue(x, -1, 1) as tf.Tensor4D;
      });
    },
    dispose() {
      scale.dispose();
      disposed = true;
    },
  };
}

/** The tiny generator's image in 8 bits, computed in plain JS from z (float32 rounding at every step). */
export function expectedPixels(z: Float32Array, label: number | null): Uint8Array {
  const f = Math.fround;
  const out = new Uint8Array(z.length);
  for (let i = 0; i < z.length; i++) {
    let x = f(z[i]! * f(0.4));
    if (label !== null) x = f(x + f(f(label - 1) * f(0.3)));
    x = Math.min(1, Math.max(-1, x));
    const v = Math.round((x + 1) * 127.5);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}
