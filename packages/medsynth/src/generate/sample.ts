/**
 * Sampling a generator by seed and class. Image `seed`'s latent is `zFromSeed(seed, zDim)`, scaled by the
 * truncation ψ, and its label is the class the plan asks for; the generator runs in batches inside `tf.tidy`,
 * the pixels are read asynchronously outside it and converted to 8 bits. An image depends only on its seed,
 * its class and ψ: never on the batch size or on what else is generated with it.
 *
 * **Truncation trick.** ψ ∈ (0, 1] trades variety for fidelity; ψ = 1 changes nothing. Generators with a
 * mapping network (StyleGAN2, `truncation: 'w'`) apply it where StyleGAN users expect: the intermediate latent
 * is pulled toward the tracked mean of its class, w → w̄_y + ψ·(w − w̄_y). The others (`'z'`) have no W space:
 * their latent becomes `ψ·z`, pulled toward the mean of its prior N(0, I), which is 0 (BigGAN's truncation).
 */
import * as tf from '@tensorflow/tfjs-core';
import { tensorToImages } from '../data/image/tensors.js';
import type { ImageArray } from '../data/types.js';
import type { SamplingGenerator } from '../models/types.js';
import { ConfigError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { zFromSeed } from '../runtime/random.js';
import { DEFAULT_SEEDS, type GenerationPlan, planImages, type SeedList } from './plan.js';

/**
 * Images generated at once by default. 64 by measurement: the diffusion sampler (25 network passes per batch)
 * made 20.4 img/s at 28 px in batches of 64 against 18.6 in batches of 32 (`bench/diffusion.ts`, 2 cores);
 * a GAN's one pass is fast either way, and 64 images of 128 px are ~12 MB.
 */
export const DEFAULT_BATCH_SIZE = 64;

/** Checks ψ ∈ (0, 1]; a `ConfigError` names `flag`. */
export function checkTruncation(psi: number, flag = '--truncation'): number {
  if (!(Number.isFinite(psi) && psi > 0 && psi <= 1)) {
    throw new ConfigError('truncation ψ must be in (0, 1]', {
      field: flag,
      expected: '0 < ψ ≤ 1',
      found: String(psi),
    });
  }
  return psi;
}

/** Checks a batch size (a positive integer); a `ConfigError` names `flag`. */
export function checkBatchSize(n: number, flag = '--batch-size'): number {
  if (!(Number.isSafeInteger(n) && n >= 1)) {
    throw new ConfigError('batch size must be a positive integer', { field: flag, found: String(n) });
  }
  return n;
}

/**
 * An unconditional generator (dcgan) cannot make an image of a given class: with more than one class its
 * images cannot be labelled. A `ConfigError` then.
 */
export function checkConditional(generator: SamplingGenerator, plan: GenerationPlan): void {
  if (plan.classNames.length !== generator.numClasses) {
    throw new ConfigError('the plan does not match the generator', {
      field: 'classes',
      expected: `${generator.numClasses} classes`,
      found: `${plan.classNames.length}`,
    });
  }
  if (!generator.conditional && generator.numClasses > 1) {
    throw new ConfigError(
      'the generator is unconditional (dcgan): it cannot generate a given class, so its images have no labels; train a cgan or acgan, or one dcgan per class',
      { field: '--run', found: `${generator.numClasses} classes (${generator.classNames.join(', ')})` },
    );
  }
}

/** The latents of `seeds`, each `ψ·zFromSeed(seed, zDim)`, as one float32 `[N, zDim]` array. */
export function latents(seeds: readonly number[], zDim: number, truncation = 1): Float32Array {
  checkTruncation(truncation, 'truncation');
  const out = new Float32Array(seeds.length * zDim);
  seeds.forEach((seed, i) => {
    const z = zFromSeed(seed, zDim);
    if (truncation === 1) out.set(z, i * zDim);
    else for (let j = 0; j < zDim; j++) out[i * zDim + j] = truncation * z[j]!;
  });
  return out;
}

/** One image to sample: its seed and class. */
export interface SampleItem {
  readonly seed: number;
  readonly label: number;
}

/**
 * Samples one batch: the generator runs once on all `items` inside `tf.tidy`; the pixels are read
 * asynchronously and returned as 8-bit images (`[N, size, size, channels]`, `maxValue` 255).
 */
export async function sampleImages(
  generator: SamplingGenerator,
  items: readonly SampleItem[],
  options: { readonly truncation?: number | undefined } = {},
): Promise<ImageArray> {
  const n = items.length;
  if (n === 0) throw new RangeError('sampleImages: no items');
  const psi = checkTruncation(options.truncation ?? 1, 'truncation');
  const z = latents(
    items.map((it) => it.seed),
    generator.zDim,
    generator.truncation === 'z' ? psi : 1,
  );
  const labels = Int32Array.from(items, (it) => it.label);
  const x = tf.tidy(() =>
    generator.generate(
      tf.tensor2d(z, [n, generator.zDim]),
      generator.conditional ? tf.tensor1d(labels, 'int32') : null,
      generator.truncation === 'w' ? psi : 1,
    ),
  );
  try {
    const [count, height, width, channels] = x.shape;
    if (
      count !== n ||
      height !== generator.size ||
      width !== generator.size ||
      channels !== generator.channels
    ) {
      throw new RangeError(
        `generator output is [${x.shape.join(', ')}], expected [${n}, ${generator.size}, ${generator.size}, ${generator.channels}]`,
      );
    }
    return await tensorToImages(x);
  } finally {
    x.dispose();
  }
}

/** One batch of generated images, in the plan's order. */
export interface GeneratedBatch {
  /** Position of the batch's first image in the plan (class by class). */
  readonly start: number;
  /** 8-bit images, NHWC. */
  readonly images: ImageArray;
  /** The class of each image (index into the plan's `classNames`). */
  readonly labels: Int32Array;
  /** The seed of each image. */
  readonly seeds: readonly number[];
}

export interface GenerateOptions extends RunControl {
  /** Seeds in plan order (default 0, 1, 2…); too few is a `ConfigError` naming `--seeds`. */
  readonly seeds?: SeedList | undefined;
  /** Truncation ψ ∈ (0, 1] (default 1: none). */
  readonly truncation?: number | undefined;
  /** Images per generator call (default `DEFAULT_BATCH_SIZE`). Changes speed and memory, never the images. */
  readonly batchSize?: number | undefined;
  /** Progress phase name (default `generate`). */
  readonly phase?: string | undefined;
}

/**
 * Generates a plan's images batch by batch, in plan order (class by class, see `plan.ts`). Emits a `phase`
 * event, a `tick` per batch (unit `images`) and `done` once every image was generated; honours `signal`
 * between batches. Options are checked before the first batch.
 */
export async function* generateImages(
  generator: SamplingGenerator,
  plan: GenerationPlan,
  options: GenerateOptions = {},
): AsyncGenerator<GeneratedBatch, void, undefined> {
  const truncation = checkTruncation(options.truncation ?? 1);
  const batchSize = checkBatchSize(options.batchSize ?? DEFAULT_BATCH_SIZE);
  checkConditional(generator, plan);
  const items = planImages(plan, options.seeds ?? DEFAULT_SEEDS);
  const phase = options.phase ?? 'generate';
  const { onProgress, signal } = options;
  signal?.throwIfAborted();
  onProgress?.({
    type: 'phase',
    phase,
    detail: `${plan.total} images, ${plan.classNames.length} classes, ψ ${truncation}, batch ${batchSize}`,
  });
  const started = performance.now();
  for (let start = 0; start < items.length; start += batchSize) {
    signal?.throwIfAborted();
    const batch = items.slice(start, start + batchSize);
    const images = await sampleImages(generator, batch, { truncation });
    const done = start + batch.length;
    onProgress?.({ type: 'tick', phase, done, total: items.length, unit: 'images' });
    yield {
      start,
      images,
      labels: Int32Array.from(batch, (it) => it.label),
      seeds: batch.map((it) => it.seed),
    };
  }
  onProgress?.({ type: 'done', phase, seconds: (performance.now() - started) / 1000 });
}
