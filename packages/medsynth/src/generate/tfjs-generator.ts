/**
 * A run's sampling generator in TF.js layers format, loaded back as a `SamplingGenerator` — the same object
 * `medsynth generate` samples from, so `sampleImages` (sample.ts) gives the same images from it: image `seed`'s
 * latent is `zFromSeed(seed, zDim)`, ψ acts where the family's own sampler applies it, and the pixels are
 * converted to 8 bits the same way. Used by the round-trip tests in Node and by `medsynth serve`'s live
 * generation in the browser, so this module is browser-safe: it imports only TF.js, zod and the model modules
 * (which register every custom layer with TF.js's serialisation registry when imported), never a Node API.
 *
 * An export is `model.json` + weights (TF.js layers format) beside `generator.json` (`TfjsGeneratorMeta`): what
 * the network alone does not say — family and spec, classes, where truncation acts, and the state the family
 * keeps in plain JS numbers rather than weights:
 * - dcgan, cgan, acgan, stylegan2: the network is the run's G (G_ema by default). StyleGAN2's tracked mean w̄
 *   is a weight of its `WAverage` layer (in the export); ψ is that layer's JS property, set per call by `runG`.
 *   Its noise inputs use their constant buffers (weights too), as every sampler does.
 * - pggan: the network is G at the level the checkpoint reached (`PgganSpec` levels share layers; only the
 *   level's own graph is exported). Its fade-in α is a JS number, stored in `pggan.alpha` and set after
 *   loading; the output is upsampled (nearest) from the level's side to the full size and clipped to [−1, 1],
 *   as the family's sampler does.
 * - ddpm: the network is the U-Net denoiser; DDIM sampling (models/diffusion/sampler.ts, pure TF.js) runs
 *   around it with the run's schedule length and sampling choices (`diffusion`), which a caller may override.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { tensorToImages } from '../data/image/tensors.js';
import type { ImageArray } from '../data/types.js';
import { diffusionSampler, type DiffusionSampling } from '../models/diffusion/sampler.js';
// Registers the U-Net's custom layers (GroupNorm, SiLU, TimestepEmbedding, …) for deserialisation.
import '../models/diffusion/unet.js';
import { PgganFadeIn, upsampleBy } from '../models/pggan.js';
import { type AdversarialSpec, checkGanSpec, isConditional, runG } from '../models/registry.js';
import type { SamplingGenerator } from '../models/types.js';
import { checkTruncation } from './sample.js';

export const TFJS_GENERATOR_FORMAT = 'medsynth-tfjs-generator';
export const TFJS_GENERATOR_VERSION = 1;

/** Families an export can hold (every generator family). */
export const TFJS_FAMILIES = ['dcgan', 'cgan', 'acgan', 'stylegan2', 'pggan', 'ddpm'] as const;
export type TfjsFamily = (typeof TFJS_FAMILIES)[number];

const samplingSchema = z
  .object({
    steps: z.number().int().min(1),
    eta: z.number().min(0).max(1),
    guidance: z.number().min(0),
  })
  .strict();

/** `generator.json`: everything beside the network that sampling needs, and where it came from. */
export const TfjsGeneratorMetaSchema = z
  .object({
    format: z.literal(TFJS_GENERATOR_FORMAT),
    version: z.literal(TFJS_GENERATOR_VERSION),
    family: z.enum(TFJS_FAMILIES),
    /** The family's full spec, as in the checkpoint. */
    spec: z
      .object({
        family: z.enum(TFJS_FAMILIES),
        size: z.number().int().positive(),
        channels: z.union([z.literal(1), z.literal(3)]),
        numClasses: z.number().int().min(1),
        zDim: z.number().int().positive(),
        seed: z.number().int(),
      })
      .passthrough(),
    classNames: z.array(z.string()).min(1),
    zDim: z.number().int().positive(),
    size: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
    /** Whether the generator takes labels. */
    conditional: z.boolean(),
    /** Where ψ acts: `'z'` (the caller scales z) or `'w'` (StyleGAN2's W space). */
    truncation: z.enum(['z', 'w']),
    /** Which network of the checkpoint was exported. */
    network: z.enum(['G_ema', 'G']),
    /** Checkpoint folder name (`step-0000899`), its step and the images shown to D (thousands). */
    checkpoint: z.string().min(1),
    step: z.number().int().min(0),
    kimg: z.number().min(0),
    /** pggan: the level exported, its side and fade-in α; null for other families. */
    pggan: z
      .object({
        level: z.number().int().min(0),
        side: z.number().int().positive(),
        alpha: z.number().min(0).max(1),
      })
      .strict()
      .nullable(),
    /** ddpm: the training schedule's length and the run's sampling choices; null for other families. */
    diffusion: z
      .object({ scheduleSteps: z.number().int().min(2), sampling: samplingSchema })
      .strict()
      .nullable(),
    /** TF.js version that wrote the export. */
    tfjsVersion: z.string(),
  })
  .strict();

export type TfjsGeneratorMeta = z.output<typeof TfjsGeneratorMetaSchema>;

/** Validates `generator.json` content; a RangeError naming the field (and `where`) otherwise. */
export function parseGeneratorMeta(raw: unknown, where = 'generator.json'): TfjsGeneratorMeta {
  const parsed = TfjsGeneratorMetaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    throw new RangeError(`${where}: ${field ? `${field}: ` : ''}${issue.message}`);
  }
  const m = parsed.data;
  if (m.spec.family !== m.family) throw new RangeError(`${where}: spec.family differs from family`);
  if ((m.family === 'pggan') !== (m.pggan !== null))
    throw new RangeError(`${where}: pggan must be set exactly for the pggan family`);
  if ((m.family === 'ddpm') !== (m.diffusion !== null))
    throw new RangeError(`${where}: diffusion must be set exactly for the ddpm family`);
  if (m.classNames.length !== m.spec.numClasses)
    throw new RangeError(`${where}: ${m.classNames.length} class names for ${m.spec.numClasses} classes`);
  return m;
}

/** Sampling choices of a diffusion export (unset: the run's own); GAN exports take none. */
export interface TfjsSamplerSettings {
  readonly steps?: number | undefined;
  readonly eta?: number | undefined;
  readonly guidance?: number | undefined;
}

/** The run's diffusion sampling with `settings` over it, checked (a RangeError naming the setting). */
export function diffusionSamplingWith(
  meta: TfjsGeneratorMeta,
  settings: TfjsSamplerSettings = {},
): DiffusionSampling {
  if (!meta.diffusion) throw new RangeError(`sampling settings apply to ddpm exports, not ${meta.family}`);
  const base = meta.diffusion.sampling;
  const out = {
    steps: settings.steps ?? base.steps,
    eta: settings.eta ?? base.eta,
    guidance: settings.guidance ?? base.guidance,
  };
  if (!Number.isInteger(out.steps) || out.steps < 1 || out.steps > meta.diffusion.scheduleSteps)
    throw new RangeError(`steps must be an integer in 1…${meta.diffusion.scheduleSteps}, got ${out.steps}`);
  if (!(out.eta >= 0 && out.eta <= 1)) throw new RangeError(`eta must be in [0, 1], got ${out.eta}`);
  if (!(out.guidance >= 0 && Number.isFinite(out.guidance)))
    throw new RangeError(`guidance must be a number ≥ 0, got ${out.guidance}`);
  // As the family's own sampler: an unconditional model has nothing to guide toward.
  if (meta.spec.numClasses === 1) out.guidance = 1;
  return out;
}

/**
 * A `SamplingGenerator` over an exported network loaded with tfjs-layers (`model`, owned: `dispose` frees it),
 * sampling as the run's family does (see the module header).
 */
export function tfjsSampler(
  model: tfl.LayersModel,
  meta: TfjsGeneratorMeta,
  settings: TfjsSamplerSettings = {},
): SamplingGenerator {
  const base = {
    zDim: meta.zDim,
    numClasses: meta.spec.numClasses,
    classNames: [...meta.classNames],
    size: meta.size,
    channels: meta.channels,
    conditional: meta.conditional,
    truncation: meta.truncation,
    dispose: () => model.dispose(),
  };
  if (meta.family === 'ddpm') {
    const facts = {
      size: meta.size,
      channels: meta.channels,
      numClasses: meta.spec.numClasses,
      scheduleSteps: meta.diffusion!.scheduleSteps,
    };
    return diffusionSampler(
      model,
      facts,
      diffusionSamplingWith(meta, settings),
      base.classNames,
      base.dispose,
    );
  }
  if (Object.values(settings).some((v) => v !== undefined))
    throw new RangeError(
      `sampling settings (steps, eta, guidance) apply to ddpm exports, not ${meta.family}`,
    );
  if (meta.family === 'pggan') {
    const { alpha, side } = meta.pggan!;
    const fades = model.layers.filter((l): l is PgganFadeIn => l instanceof PgganFadeIn);
    for (const fade of fades) fade.alpha = alpha;
    const factor = meta.size / side;
    if (!Number.isInteger(factor) || factor < 1)
      throw new RangeError(`pggan side ${side} does not divide the image size ${meta.size}`);
    return {
      ...base,
      generate(zs: tf.Tensor2D, labels: tf.Tensor1D | null): tf.Tensor4D {
        if (zs.rank !== 2 || zs.shape[1] !== meta.zDim)
          throw new RangeError(`generate: z must have shape [N, ${meta.zDim}], got [${zs.shape.join(', ')}]`);
        if (meta.conditional && (!labels || labels.rank !== 1 || labels.shape[0] !== zs.shape[0]))
          throw new RangeError(`generate: a conditional pggan needs labels [${zs.shape[0]}]`);
        return tf.tidy(() => {
          const x = model.apply(meta.conditional ? [zs, labels!] : [zs], { training: false }) as tf.Tensor4D;
          return tf.clipByValue(upsampleBy(x, factor), -1, 1);
        });
      },
    };
  }
  const spec = checkGanSpec(meta.spec as unknown as AdversarialSpec);
  if (isConditional(spec) !== meta.conditional)
    throw new RangeError(
      `generator.json: conditional (${meta.conditional}) contradicts the ${spec.family} spec`,
    );
  return {
    ...base,
    generate: (zs, labels, psi = 1) =>
      tf.tidy(() => runG({ spec, G: model }, zs, meta.conditional ? labels : null, false, psi)),
  };
}

/** Loads an export's network from any TF.js IO handler (`tf.io.fromMemory`, an http loader…) as a sampler. */
export async function loadTfjsSampler(
  handler: tf.io.IOHandler,
  meta: TfjsGeneratorMeta,
  settings: TfjsSamplerSettings = {},
): Promise<SamplingGenerator> {
  const model = await tfl.loadLayersModel(handler, { strict: true });
  try {
    return tfjsSampler(model, meta, settings);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Latents beside seeds: interpolation.

/**
 * Spherical interpolation between two latents, `[sin((1−t)Ω)·a + sin(tΩ)·b] / sin Ω` with Ω the angle between
 * them (in float64; linear when they are (anti)parallel within 1e-7). t = 0 gives `a` and t = 1 gives `b`
 * exactly. For Gaussian latents slerp keeps the norm near √zDim, where the generator was trained; a straight
 * line through the origin's neighbourhood would not.
 */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  if (a.length !== b.length) throw new RangeError(`slerp: lengths differ (${a.length}, ${b.length})`);
  if (!(t >= 0 && t <= 1)) throw new RangeError(`slerp: t must be in [0, 1], got ${t}`);
  if (t === 0) return Float32Array.from(a);
  if (t === 1) return Float32Array.from(b);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  const cos = Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb || 1)));
  const omega = Math.acos(cos);
  const s = Math.sin(omega);
  const out = new Float32Array(a.length);
  if (s < 1e-7) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i]! + t * b[i]!;
    return out;
  }
  const wa = Math.sin((1 - t) * omega) / s;
  const wb = Math.sin(t * omega) / s;
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i]! + wb * b[i]!;
  return out;
}

/**
 * Images from explicit latents (rows of `z`, unscaled, `[N·zDim]`) and labels, as `sampleImages` makes them
 * from seeds: ψ·z for `'z'` truncation (the same float32 product as `latents`), ψ inside the generator for
 * `'w'`; the generator runs once inside `tf.tidy`, the pixels are read asynchronously and converted to 8 bits.
 */
export async function sampleFromLatents(
  generator: SamplingGenerator,
  z: Float32Array,
  labels: Int32Array,
  truncation = 1,
): Promise<ImageArray> {
  const psi = checkTruncation(truncation, 'truncation');
  const n = labels.length;
  if (n === 0 || z.length !== n * generator.zDim)
    throw new RangeError(`sampleFromLatents: ${z.length} latent values for ${n} images of ${generator.zDim}`);
  let scaled = z;
  if (generator.truncation === 'z' && psi !== 1) {
    scaled = new Float32Array(z.length);
    for (let i = 0; i < z.length; i++) scaled[i] = psi * z[i]!;
  }
  const x = tf.tidy(() =>
    generator.generate(
      tf.tensor2d(scaled, [n, generator.zDim]),
      generator.conditional ? tf.tensor1d(labels, 'int32') : null,
      generator.truncation === 'w' ? psi : 1,
    ),
  );
  try {
    return await tensorToImages(x);
  } finally {
    x.dispose();
  }
}
