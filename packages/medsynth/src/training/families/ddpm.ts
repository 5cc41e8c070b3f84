/**
 * `ddpm`: a class-conditional denoising diffusion model behind the family interface (models/diffusion/:
 * U-Net, cosine schedule, DDIM sampler with classifier-free guidance).
 *
 * Step. One real batch x_0 of `batchSize` drawn by the loop; per image, from the z Rng in this order: the step
 * i (uniform over the T schedule steps), whether its label is dropped to the null class (probability
 * `condDropout`; always dropped for an unconditional model), then the noise ε `[N, S, S, C]`. One Adam update
 * of the denoiser on mean (ε̂(x_i, i, y) − ε)², then the EMA update. Nothing else is random, so a step is a
 * pure function of the weights, the optimizer state and the Rng states: a resumed run continues exactly.
 * There is no generator loss and no D: `StepStats.gLoss`, `penalty` and `realSignSum` are null (ADA has no
 * signal, and augmentation is not applied: the denoiser sees the real images as they are).
 *
 * Saved groups: G (the denoiser), G_ema (its EMA, used for sampling), gOpt; family state: updates done and
 * Adam's β powers.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { TrainOptions } from '../../config/train-options.js';
import { diffusionSampler, type DiffusionSampling } from '../../models/diffusion/sampler.js';
import { cosineSchedule, type NoiseSchedule, qSample } from '../../models/diffusion/schedule.js';
import { buildUNet, checkUNetSpec, type UNetSpec } from '../../models/diffusion/unet.js';
import type { SamplingGenerator } from '../../models/types.js';
import { CheckpointError, ConfigError } from '../../runtime/errors.js';
import { Rng } from '../../runtime/random.js';
import {
  adamBetaPowers,
  assignOptimizer,
  assignWeights,
  namedWeights,
  optimizerWeights,
  parseFamilyState,
  savedGroup,
  setAdamBetaPowers,
  trainableVariables,
} from '../checkpoint.js';
import { copyWeights, emaBeta, updateEma } from '../ema.js';
import {
  type BaseSpec,
  type DataFacts,
  type FamilySnapshot,
  type FamilyTrainer,
  type GeneratorFamily,
  SAMPLER_SETTING_FLAGS,
  type SamplerSettings,
  type SavedGroups,
  type StepInput,
  type StepStats,
} from '../family.js';

/** Steps of the training noise schedule (T). */
export const DDPM_SCHEDULE_STEPS = 1000;
/** Adam ε as in PyTorch. */
const ADAM_EPSILON = 1e-8;

/** A ddpm run's architecture and sampling defaults (saved in run.json and every checkpoint). */
export interface DdpmSpec extends BaseSpec {
  readonly family: 'ddpm';
  /** The denoiser; its `size`, `channels`, `numClasses` and `seed` equal the spec's. */
  readonly unet: UNetSpec;
  readonly scheduleSteps: number;
  /** Probability that a training label is replaced by the null class (classifier-free guidance). */
  readonly condDropout: number;
  /** How `generate`, grids and `evaluate` sample. */
  readonly sampling: DiffusionSampling;
}

/** U-Net channel multipliers per level for an image side (down to 7×7 at 28 px, 8×8 at 64 px). */
export function unetLevels(size: number): number[] {
  if (size <= 32) return [1, 2, 4];
  if (size <= 64) return [1, 2, 4, 4];
  return [1, 1, 2, 4, 4];
}

const samplingSchema = z.object({
  steps: z.number().int().min(1),
  eta: z.number().min(0).max(1),
  guidance: z.number().min(0),
});

const specSchema = z.object({
  family: z.literal('ddpm'),
  size: z.number().int().positive(),
  channels: z.union([z.literal(1), z.literal(3)]),
  numClasses: z.number().int().min(1),
  zDim: z.number().int().positive(),
  seed: z.number().int(),
  unet: z.object({
    size: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
    numClasses: z.number().int().min(1),
    width: z.number().int().positive(),
    mults: z.array(z.number().int().positive()).min(1),
    blocksPerLevel: z.number().int().min(1),
    attention: z.boolean(),
    seed: z.number().int(),
  }),
  scheduleSteps: z.number().int().min(2),
  condDropout: z.number().min(0).max(1),
  sampling: samplingSchema,
});

/** Validates a ddpm spec (a RangeError naming the field). */
export function checkDdpmSpec(spec: DdpmSpec): DdpmSpec {
  const parsed = specSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RangeError(`spec.${issue.path.join('.')}: ${issue.message}`);
  }
  const s = parsed.data;
  checkUNetSpec(s.unet);
  for (const k of ['size', 'channels', 'numClasses', 'seed'] as const) {
    if (s.unet[k] !== s[k])
      throw new RangeError(`spec.unet.${k} (${s.unet[k]}) differs from spec.${k} (${s[k]})`);
  }
  if (s.zDim !== s.size * s.size * s.channels) {
    throw new RangeError(`spec.zDim must be size²·channels = ${s.size * s.size * s.channels}, got ${s.zDim}`);
  }
  if (s.sampling.steps > s.scheduleSteps) {
    throw new RangeError(
      `spec.sampling.steps (${s.sampling.steps}) exceeds the schedule's ${s.scheduleSteps}`,
    );
  }
  return Object.freeze({ ...s, unet: Object.freeze({ ...s.unet, mults: Object.freeze([...s.unet.mults]) }) });
}

/**
 * The spec the options ask for on this data. A U-Net the options cannot build (levels the side cannot halve,
 * a width the group norms cannot divide) is a ConfigError naming `unetMults` or `gWidth`.
 */
export function ddpmSpecFor(options: TrainOptions, data: DataFacts): DdpmSpec {
  const seed = Rng.derive(options.seed, 'init').int(2 ** 31 - 1);
  const conditional = data.numClasses > 1;
  const mults = options.unetMults ?? unetLevels(options.size);
  const unet: UNetSpec = {
    size: options.size,
    channels: data.channels,
    numClasses: data.numClasses,
    width: options.gWidth,
    mults,
    blocksPerLevel: 1,
    attention: options.attention,
    seed,
  };
  try {
    checkUNetSpec(unet);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const field = /\.mults/.test(e.message) ? 'unetMults' : 'gWidth';
    throw new ConfigError(`the U-Net cannot be built: ${e.message.replace(/^UNetSpec\.\w+:? ?/, '')}`, {
      field,
      found: field === 'unetMults' ? `[${mults.join(', ')}] at ${options.size} px` : String(options.gWidth),
    });
  }
  return checkDdpmSpec({
    family: 'ddpm',
    size: options.size,
    channels: data.channels,
    numClasses: data.numClasses,
    zDim: options.size * options.size * data.channels,
    seed,
    unet,
    scheduleSteps: DDPM_SCHEDULE_STEPS,
    condDropout: conditional ? options.condDropout : 1,
    sampling: {
      steps: options.sampleSteps,
      eta: options.eta,
      guidance: conditional ? options.guidance : 1,
    },
  });
}

const stateSchema = z.object({
  updates: z.number().int().min(0),
  adam: z.tuple([z.number(), z.number()]),
});

export class DdpmTrainer implements FamilyTrainer {
  readonly spec: DdpmSpec;
  readonly net: tfl.LayersModel;
  readonly ema: tfl.LayersModel;
  readonly #opt: tf.AdamOptimizer;
  readonly #vars: tf.Variable[];
  readonly #options: TrainOptions;
  readonly #schedule: NoiseSchedule;
  #updates = 0;

  constructor(spec: DdpmSpec, options: TrainOptions) {
    this.spec = checkDdpmSpec(spec);
    this.#options = options;
    this.net = buildUNet(this.spec.unet);
    this.ema = buildUNet(this.spec.unet);
    copyWeights(this.ema, this.net);
    this.#opt = tf.train.adam(options.gLr, options.beta1, options.beta2, ADAM_EPSILON);
    this.#vars = trainableVariables(this.net);
    this.#schedule = cosineSchedule(this.spec.scheduleSteps);
  }

  step(input: StepInput): StepStats {
    const o = this.#options;
    const { numClasses, scheduleSteps, condDropout, size, channels } = this.spec;
    const batch = input.draw(o.batchSize);
    const n = batch.x.shape[0];
    let loss: number;
    try {
      const rng = input.rng.z;
      const steps = Int32Array.from({ length: n }, () => rng.int(scheduleSteps));
      const drop = Array.from({ length: n }, () => condDropout >= 1 || rng.next() < condDropout);
      const noiseValues = rng.normals(n * size * size * channels);
      const labels = batch.labels.dataSync();
      const cost = tf.tidy(() => {
        const noise = tf.tensor4d(noiseValues, [n, size, size, channels]);
        const xt = qSample(this.#schedule, batch.x, steps, noise);
        const t = tf.tensor2d(Float32Array.from(steps), [n, 1]);
        const y = tf.tensor1d(
          Int32Array.from(labels, (l, k) => (drop[k] ? numClasses : l)),
          'int32',
        );
        return this.#opt.minimize(
          () => {
            const eps = this.net.apply([xt, t, y], { training: true }) as tf.Tensor4D;
            return tf.mean(tf.square(tf.sub(eps, noise))) as tf.Scalar;
          },
          true,
          this.#vars,
        )!;
      });
      loss = cost.dataSync()[0]!;
      cost.dispose();
    } finally {
      batch.x.dispose();
      batch.labels.dispose();
    }
    this.#updates++;
    updateEma(this.ema, this.net, emaBeta(n, o.emaKimg * 1000, input.imagesSeen + n, o.emaRampup));
    return { images: n, dLoss: loss, gLoss: null, penalty: null, realSignSum: null };
  }

  tickStats(): Readonly<Record<string, number>> {
    return { updates: this.#updates };
  }

  sampler(classNames: readonly string[]): SamplingGenerator {
    return diffusionSampler(this.ema, this.spec, this.spec.sampling, classNames, () => {});
  }

  async checkpoint(): Promise<FamilySnapshot> {
    const gOpt = await optimizerWeights(
      this.#opt,
      this.net.trainableWeights.map((w) => w.originalName),
    );
    const state = {
      updates: this.#updates,
      adam: adamBetaPowers(this.#opt),
    } satisfies z.input<typeof stateSchema>;
    return {
      groups: { G: namedWeights(this.net), G_ema: namedWeights(this.ema), gOpt },
      state,
      release: () => {
        for (const w of gOpt) if (w.name === 'iter') w.tensor.dispose();
      },
    };
  }

  async restore(saved: SavedGroups, state: unknown, where: string): Promise<void> {
    const s = parseFamilyState(stateSchema, state, where);
    const group = (name: string) => savedGroup(saved.weights, name, where);
    assignWeights(this.net, group('G'), where);
    assignWeights(this.ema, group('G_ema'), where);
    await assignOptimizer(this.#opt, group('gOpt'), saved.order['gOpt'] ?? [], where);
    setAdamBetaPowers(this.#opt, s.adam);
    this.#updates = s.updates;
  }

  dispose(): void {
    this.#opt.dispose();
    this.net.dispose();
    this.ema.dispose();
  }
}

/** The run's sampling choices with `settings` laid over them (a ConfigError naming the flag when out of range). */
export function samplingWith(spec: DdpmSpec, settings: SamplerSettings): DiffusionSampling {
  const out = {
    steps: settings.steps ?? spec.sampling.steps,
    eta: settings.eta ?? spec.sampling.eta,
    guidance: settings.guidance ?? spec.sampling.guidance,
  };
  const bad = (key: keyof SamplerSettings, expected: string) =>
    new ConfigError(`${SAMPLER_SETTING_FLAGS[key]} is out of range`, {
      field: SAMPLER_SETTING_FLAGS[key],
      expected,
      found: String(out[key]),
    });
  if (!Number.isInteger(out.steps) || out.steps < 1 || out.steps > spec.scheduleSteps)
    throw bad('steps', `an integer in 1…${spec.scheduleSteps}`);
  if (!(out.eta >= 0 && out.eta <= 1)) throw bad('eta', 'a number in [0, 1]');
  if (!(out.guidance >= 0) || !Number.isFinite(out.guidance)) throw bad('guidance', 'a number ≥ 0');
  // An unconditional model has nothing to guide toward.
  if (spec.numClasses === 1) out.guidance = 1;
  return out;
}

export const ddpmFamily: GeneratorFamily<DdpmSpec> = {
  name: 'ddpm',
  divergence: {
    loss: 'denoiser',
    hint: 'Try a lower learning rate (--g-lr).',
  },
  description:
    'denoising diffusion (DDPM, ε-prediction, cosine schedule) with a small U-Net; DDIM sampling, classifier-free guidance',
  specFor: ddpmSpecFor,
  checkSpec(spec, file) {
    try {
      return checkDdpmSpec(spec as DdpmSpec);
    } catch (e) {
      throw new CheckpointError(`the saved architecture is not valid: ${(e as Error).message}`, {
        file,
        field: 'spec',
        cause: e,
      });
    }
  },
  trainer: (spec, options) => new DdpmTrainer(spec, options),
  samplerGroups: (ema) => [ema ? 'G_ema' : 'G'],
  sampler(spec, saved, ema, classNames, where, settings = {}) {
    const sampling = samplingWith(spec, settings);
    const weights = savedGroup(saved.weights, ema ? 'G_ema' : 'G', where);
    const net = buildUNet(spec.unet);
    try {
      assignWeights(net, weights, where);
    } catch (e) {
      net.dispose();
      throw e;
    }
    return diffusionSampler(net, spec, sampling, classNames, () => net.dispose());
  },
};
