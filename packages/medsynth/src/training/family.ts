/**
 * The generator-family interface (DESIGN.md §5). Every generative model — the DCGAN-style GANs, StyleGAN2,
 * the progressive GAN, and later a diffusion model — plugs in behind it, so the training loop, the run
 * directory, resume, ticks, grids, `generate`, `evaluate` and `study` never branch on a family.
 *
 * The loop owns time and budget (kimg / minutes / abort), ticks, stats lines, grids, checkpoint files, the
 * data order and every Rng; a family owns only maths:
 *
 *   const family = generatorFamily(options.model);
 *   const spec = family.specFor(options, data);           // saved in run.json and every checkpoint
 *   const trainer = family.trainer(spec, options);        // networks, optimisers, EMA, schedules
 *   await trainer.restore(saved, where);                  // resume: bit-exact
 *   const stats = trainer.step(input);                    // one optimisation step
 *   const saved = await trainer.checkpoint();             // weight groups + JSON state
 *   const g = family.sampler(spec, groups, classNames);   // generate / evaluate / study
 *
 * A step is a pure function of the trainer's weights and state, the Rngs it is handed and the real batches
 * it draws; so a run resumed from a checkpoint continues exactly as the uninterrupted run would.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { TrainOptions } from '../config/train-options.js';
import { ConfigError } from '../runtime/errors.js';
import type { SamplingGenerator } from '../models/types.js';
import type { Rng } from '../runtime/random.js';
import type { NamedTensor } from './checkpoint.js';

/** What every family's spec has (the rest is the family's own, validated by it). */
export interface BaseSpec {
  readonly family: string;
  /** Side of the generated images. */
  readonly size: number;
  readonly channels: 1 | 3;
  /** Classes in the data (≥ 1). */
  readonly numClasses: number;
  /** Latent size: `sample` takes z `[N, zDim]` (a diffusion model's initial noise is drawn from the same seeds). */
  readonly zDim: number;
  /** Seed of the weight initialisers. */
  readonly seed: number;
}

/** A real batch drawn by the loop (in its data order): images in [-1, 1] and int32 labels. Caller of `draw` disposes. */
export interface RealBatch {
  readonly x: tf.Tensor4D;
  readonly labels: tf.Tensor1D;
}

/** What the loop hands one step. */
export interface StepInput {
  /** Draws the next real batch of `n` images at the spec's size (the family downsamples if it must). */
  draw(n: number): RealBatch;
  /** Latents / noise / mixing, and augmentation parameters. */
  readonly rng: { readonly z: Rng; readonly augment: Rng };
  /** Augmentation probability for this step (DiffAugment: 1; ADA: its current p; none: 0). */
  readonly augmentP: number;
  /** How far the run is through its budget, in [0, 1] (schedules: transitional λ, PGGAN phases). */
  readonly progress: number;
  /** Real images shown before this step (EMA ramp-up). */
  readonly imagesSeen: number;
}

/** One step's numbers. */
export interface StepStats {
  /** Real images the step consumed (counts toward kimg). */
  readonly images: number;
  /** The critic's / denoiser's loss, averaged over this step's updates of it. */
  readonly dLoss: number;
  /** The generator's loss, or null when the family has no separate generator update (diffusion). */
  readonly gLoss: number | null;
  /** Mean R1 / GP penalty of this step's updates that computed one, or null. */
  readonly penalty: number | null;
  /** Σ sign(D(real)) over the real images of this step (ADA's signal), or null when the family has none. */
  readonly realSignSum: number | null;
}

/** A checkpoint's contents as a family sees them. */
export interface FamilySnapshot {
  /** Weight groups by name (`G`, `D`, `G_ema`, `gOpt`…): each saved as `<group>.bin`. */
  readonly groups: Readonly<Record<string, readonly NamedTensor[]>>;
  /** The family's JSON state (optimizer β powers, step counters, schedule position…). */
  readonly state: unknown;
  /** Frees any tensors made only for the snapshot (called once the checkpoint is written). */
  release(): void;
}

/** Saved weight groups as read back from a checkpoint: tensors by name, and each group's saved order. */
export interface SavedGroups {
  readonly weights: Readonly<Record<string, tf.NamedTensorMap>>;
  readonly order: Readonly<Record<string, readonly string[]>>;
}

/** A family's live training state: networks, optimisers, EMA, schedules. */
export interface FamilyTrainer {
  readonly spec: BaseSpec;
  /** One optimisation step (GAN: D then G; diffusion: one denoising-loss update). Throws on nothing; the loop checks finiteness. */
  step(input: StepInput): StepStats;
  /** Extra numbers for the tick's stats line (λ, PGGAN phase and α…). */
  tickStats(): Readonly<Record<string, number>>;
  /** The sampling network (EMA when the family keeps one), for tick grids. Owned by the trainer. */
  sampler(classNames: readonly string[]): SamplingGenerator;
  checkpoint(): Promise<FamilySnapshot>;
  /** Restores weights and state saved by `checkpoint` (the loop checked spec and classes); `where` names the file for errors. */
  restore(saved: SavedGroups, state: unknown, where: string): Promise<void>;
  dispose(): void;
}

/**
 * How to sample, where a family has a choice (diffusion: steps, η, guidance); unset fields keep the run's own.
 * A family without such choices refuses any set field (a ConfigError naming the flag).
 */
export interface SamplerSettings {
  readonly steps?: number | undefined;
  readonly eta?: number | undefined;
  readonly guidance?: number | undefined;
}

/** The flags of `SamplerSettings`, for errors. */
export const SAMPLER_SETTING_FLAGS: Readonly<Record<keyof SamplerSettings, string>> = Object.freeze({
  steps: '--sample-steps',
  eta: '--eta',
  guidance: '--guidance',
});

/** A ConfigError naming the first set field of `settings` (by flag), `why` completing its message; else nothing. */
export function refuseSamplerSettings(settings: SamplerSettings | undefined, why: string): void {
  for (const [key, flag] of Object.entries(SAMPLER_SETTING_FLAGS)) {
    const value = settings?.[key as keyof SamplerSettings];
    if (value !== undefined) {
      throw new ConfigError(`${flag} ${why}`, { field: flag, found: String(value) });
    }
  }
}

/** `refuseSamplerSettings`' reason for a family without sampler choices. */
export function notDiffusion(family: string): string {
  return `applies to diffusion models (ddpm); this run's generator is ${family}`;
}

/** Data facts a spec is resolved from. */
export interface DataFacts {
  readonly channels: 1 | 3;
  readonly numClasses: number;
}

export interface GeneratorFamily<Spec extends BaseSpec = BaseSpec> {
  readonly name: string;
  /** One line for `--help` and the docs. */
  readonly description: string;
  /** What the loop calls `StepStats.dLoss` in errors (`D`, `denoiser`), and what to try when it diverges. */
  readonly divergence: { readonly loss: string; readonly hint: string };
  /** The resolved spec for these options and data (validated, frozen). */
  specFor(options: TrainOptions, data: DataFacts): Spec;
  /** Validates a spec read back from a checkpoint (a `CheckpointError` naming `file` when it is not one). */
  checkSpec(spec: unknown, file: string): Spec;
  trainer(spec: Spec, options: TrainOptions): FamilyTrainer;
  /** Weight groups `sampler` needs: the EMA generator's, or the raw one's. */
  samplerGroups(ema: boolean): readonly string[];
  /**
   * A standalone sampling network from saved weights (`generate`, `evaluate`, `study`); `settings` override
   * the run's sampling choices where the family has any.
   */
  sampler(
    spec: Spec,
    saved: SavedGroups,
    ema: boolean,
    classNames: readonly string[],
    where: string,
    settings?: SamplerSettings,
  ): SamplingGenerator;
}

/** What the GAN families say when a loss diverges. */
export const GAN_DIVERGENCE = Object.freeze({
  loss: 'D',
  hint: 'Try lower learning rates (--g-lr/--d-lr), an R1 penalty (--r1-gamma) or another loss.',
});

/** One critic update's numbers (a GAN's D step). */
export interface CriticUpdate {
  readonly loss: number;
  /** The R1 (or WGAN-GP) penalty when this update computed one. */
  readonly penalty: number | null;
  /** Σ sign(D(real)) over the batch: ADA's overfitting signal. */
  readonly realSignSum: number;
}

/**
 * The adversarial step every GAN family shares: `dSteps` critic updates, each on its own real batch of
 * `batchSize` drawn from the loop (`critic` owns nothing it is handed: the batch is disposed here), then one
 * generator update with the last batch's labels at `imagesSeen` + this step's images. A non-finite critic
 * loss ends the step at once, without a generator update (the loop names the error).
 */
export function alternatingStep(
  input: StepInput,
  counts: { readonly dSteps: number; readonly batchSize: number },
  critic: (x: tf.Tensor4D, labels: tf.Tensor1D) => CriticUpdate,
  generator: (labels: tf.Tensor1D, imagesSeen: number) => number,
): StepStats {
  let labels: tf.Tensor1D | null = null;
  let dLoss = 0;
  let penalty = 0;
  let penalties = 0;
  let signSum = 0;
  let images = 0;
  try {
    for (let k = 0; k < counts.dSteps; k++) {
      labels?.dispose();
      const b = input.draw(counts.batchSize);
      labels = b.labels;
      let r: CriticUpdate;
      try {
        r = critic(b.x, b.labels);
      } finally {
        b.x.dispose();
      }
      images += b.x.shape[0];
      dLoss += r.loss;
      signSum += r.realSignSum;
      if (r.penalty !== null) {
        penalty += r.penalty;
        penalties++;
      }
      if (!Number.isFinite(r.loss)) break;
    }
    const gLoss = Number.isFinite(dLoss) ? generator(labels!, input.imagesSeen + images) : Number.NaN;
    return {
      images,
      dLoss: dLoss / counts.dSteps,
      gLoss,
      penalty: penalties > 0 ? penalty / penalties : null,
      realSignSum: signSum,
    };
  } finally {
    labels?.dispose();
  }
}
