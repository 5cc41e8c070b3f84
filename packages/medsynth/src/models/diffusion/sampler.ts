/**
 * Sampling a trained denoiser (models/diffusion/unet.ts) with DDIM (schedule.ts), as a `SamplingGenerator`, so
 * `generate`, tick grids, `evaluate` and `study` use a diffusion model exactly as they use a GAN.
 *
 * The latent of an image is its initial noise: z `[N, S·S·C]` (drawn from the image's seed by the caller, like
 * a GAN's z) reshaped to x_T `[N, S, S, C]`. With η > 0 each step also needs fresh noise; it comes from an Rng
 * seeded by a hash of the image's own z, so an image is a function of its seed and class alone, whatever batch
 * it is drawn in. `truncation` is `'z'`: ψ < 1 scales the initial noise (lower-variance, smoother images).
 *
 * Classifier-free guidance runs the network once on [x, x] with labels [y, ∅] and mixes the two predictions;
 * with w = 1 (or an unconditional model) it runs once on x alone.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../../runtime/random.js';
import type { SamplingGenerator } from '../types.js';
import {
  cosineSchedule,
  ddimCoefficients,
  ddimStep,
  guide,
  type NoiseSchedule,
  samplingSteps,
} from './schedule.js';

/** How to sample: DDIM steps, η, guidance scale. */
export interface DiffusionSampling {
  /** Denoising steps (≤ the schedule's). */
  readonly steps: number;
  /** 0: deterministic DDIM; 1 over all schedule steps: DDPM's ancestral sampler. */
  readonly eta: number;
  /** Classifier-free guidance scale w (1: the conditional model alone). */
  readonly guidance: number;
}

export interface DiffusionModelFacts {
  readonly size: number;
  readonly channels: 1 | 3;
  readonly numClasses: number;
  /** Steps of the training noise schedule (T). */
  readonly scheduleSteps: number;
}

/** A stable 31-bit seed from the bits of one image's initial noise (FNV-1a over its float32 words). */
function noiseSeed(z: Float32Array, offset: number, length: number): number {
  const words = new Uint32Array(z.buffer, z.byteOffset + offset * 4, length);
  let h = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) {
    h ^= words[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/**
 * Denoises x_T = z (reshaped) down to x_0 with `sampling`; `denoise(x, t, labels)` is the network in inference
 * mode (t `[N, 1]`, labels `[N]` int32 with `numClasses` = no label). Returns images in [−1, 1].
 */
export function ddimSample(
  denoise: (x: tf.Tensor4D, t: tf.Tensor2D, labels: tf.Tensor1D) => tf.Tensor4D,
  facts: DiffusionModelFacts,
  schedule: NoiseSchedule,
  sampling: DiffusionSampling,
  z: tf.Tensor2D,
  labels: tf.Tensor1D | null,
  onStep?: (done: number, total: number) => void,
): tf.Tensor4D {
  const n = z.shape[0];
  const { size, channels, numClasses } = facts;
  if (z.shape[1] !== size * size * channels) {
    throw new RangeError(
      `diffusion sampler: z has ${z.shape[1]} values per image, expected ${size * size * channels}`,
    );
  }
  const steps = samplingSteps(schedule.steps, sampling.steps);
  const zData = sampling.eta > 0 ? (z.dataSync() as Float32Array) : null;
  const rngs = zData
    ? Array.from({ length: n }, (_, i) =>
        Rng.derive(noiseSeed(zData, i * z.shape[1], z.shape[1]), 'ddim-eta'),
      )
    : [];
  const nullLabels = tf.fill([n], numClasses, 'int32') as tf.Tensor1D;
  const y = labels ?? nullLabels;
  const guided = labels !== null && numClasses > 1 && sampling.guidance !== 1;
  let x = tf.reshape(z, [n, size, size, channels]) as tf.Tensor4D;
  try {
    for (let k = 0; k < steps.length; k++) {
      const i = steps[k]!;
      const prev = k + 1 < steps.length ? schedule.alphaBars[steps[k + 1]!]! : 1;
      const c = ddimCoefficients(schedule.alphaBars[i]!, prev, sampling.eta);
      const next = tf.tidy(() => {
        let eps: tf.Tensor4D;
        if (guided) {
          const both = denoise(
            tf.concat([x, x]) as tf.Tensor4D,
            tf.fill([2 * n, 1], i) as tf.Tensor2D,
            tf.concat([y, nullLabels]) as tf.Tensor1D,
          );
          const [cond, uncond] = tf.split(both, 2) as [tf.Tensor4D, tf.Tensor4D];
          eps = guide(cond, uncond, sampling.guidance);
        } else {
          eps = denoise(x, tf.fill([n, 1], i) as tf.Tensor2D, y);
        }
        let noise: tf.Tensor4D | null = null;
        if (c.sigma > 0) {
          const per = size * size * channels;
          const values = new Float32Array(n * per);
          rngs.forEach((rng, m) => values.set(rng.normals(per), m * per));
          noise = tf.tensor4d(values, [n, size, size, channels]);
        }
        return ddimStep(x, eps, c, noise);
      });
      x.dispose();
      x = next;
      onStep?.(k + 1, steps.length);
    }
    const out = tf.clipByValue(x, -1, 1) as tf.Tensor4D;
    x.dispose();
    return out;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    nullLabels.dispose();
  }
}

/** A SamplingGenerator over a denoiser (not owned unless `release` frees it). */
export function diffusionSampler(
  net: tfl.LayersModel,
  facts: DiffusionModelFacts,
  sampling: DiffusionSampling,
  classNames: readonly string[],
  release: () => void,
): SamplingGenerator {
  const schedule = cosineSchedule(facts.scheduleSteps);
  const denoise = (x: tf.Tensor4D, t: tf.Tensor2D, labels: tf.Tensor1D) =>
    net.apply([x, t, labels], { training: false }) as tf.Tensor4D;
  return {
    zDim: facts.size * facts.size * facts.channels,
    numClasses: facts.numClasses,
    classNames,
    size: facts.size,
    channels: facts.channels,
    conditional: facts.numClasses > 1,
    truncation: 'z',
    generate: (z, labels) => ddimSample(denoise, facts, schedule, sampling, z, labels),
    dispose: release,
    family: 'ddpm',
  };
}
