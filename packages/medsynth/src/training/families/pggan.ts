/**
 * The progressive-growing GAN as a generator family (`pggan`; networks in models/pggan.ts).
 *
 * Schedule. With K + 1 levels (sides s0 … size) there are 2K + 1 phases: stable 0, then for L = 1 … K a fade-in
 * of L followed by stable L. The first `growFraction` g of the budget (progress p ∈ [0, 1]) is split equally
 * among the 2K growing phases (stable 0 … K−1 and fade 1 … K), each a share d = g / 2K; the final stable
 * phase takes the rest, [g, 1]:
 *   i = ⌊p / d⌋ (p < g), else 2K;   level = ⌈i / 2⌉;   α = (p − i·d) / d in a fade (i odd), else 1.
 * The position never moves back (a run resumed with a longer budget stays where it was until the schedule
 * catches up). At every change of level both Adam optimisers start afresh over that level's variables (as the
 * original); within a level, the fade and stable phases run the same networks (α = 1 when stable), so the
 * variables and the optimizer state stay the same.
 *
 * Step. `dSteps` D updates, each on ONE fresh real batch of `batchSize` drawn by the loop, average-pooled to the
 * level's side and, during a fade, blended as the original does, x ← α·x + (1 − α)·up(avgpool(x)), against
 * as many fakes with the batch's labels; then one G update (labels of the last real batch) and the EMA of G.
 * Losses from src/losses per `loss` (with `wgan`: gradient penalty, plus the original's drift term
 * 0.001·E[D(real)²]); lazy R1 every `r1Interval` D updates; DiffAugment / ADA of everything D sees; the
 * mode-seeking term of gan-step.ts. All randomness from the Rngs handed in: a step is a pure function of the
 * weights, the optimizer states, the schedule position, the D-update counter and the Rng states.
 *
 * Checkpoints: groups G, D, G_ema (every weight of every level, once), gOpt, dOpt (the current level's Adam
 * state), and the JSON state { phaseIndex, level, alpha, dSteps, adam β powers, LeCam anchors }. G and G_ema also hold
 * `pggan/position` = [level, α], so the standalone sampler (`generate`, `evaluate`) samples a run stopped
 * before growing finished at the level it had reached (upsampled to the full size) instead of with untrained
 * higher levels; a group without it samples at the final level with α = 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { augment, type AugmentPolicy, augmentPolicy } from '../../augment/diff-augment.js';
import type { TrainOptions } from '../../config/train-options.js';
import { generatorLoss } from '../../losses/index.js';
import { type LecamAnchors, lecamAnchorsSchema } from '../../losses/lecam.js';
import {
  avgPoolBy,
  buildPgganDiscriminator,
  buildPgganGenerator,
  defaultPgganSpec,
  pgganConditional,
  pgganPlan,
  type PgganNetwork,
  type PgganSpec,
  upsampleBy,
  validatePgganSpec,
} from '../../models/pggan.js';
import type { SamplingGenerator } from '../../models/types.js';
import { CheckpointError } from '../../runtime/errors.js';
import { Rng } from '../../runtime/random.js';
import {
  adamBetaPowers,
  adamPowersSchema,
  assignOptimizer,
  assignWeights,
  type NamedTensor,
  optimizerWeights,
  parseFamilyState,
  savedGroup,
  setAdamBetaPowers,
  trainableVariables,
} from '../checkpoint.js';
import { emaBeta, updateEma } from '../ema.js';
import {
  alternatingStep,
  type DataFacts,
  GAN_DIVERGENCE,
  notDiffusion,
  refuseSamplerSettings,
  type SamplerSettings,
  type FamilySnapshot,
  type FamilyTrainer,
  type GeneratorFamily,
  type SavedGroups,
  type StepInput,
  type StepStats,
} from '../family.js';
import { criticUpdate, modeSeekingLoss } from '../gan-step.js';

/** Adam ε as in PyTorch (TF.js defaults to 1e-7). */
const ADAM_EPSILON = 1e-8;
/** The original's drift penalty ε_drift·E[D(real)²] with the WGAN loss. */
const WGAN_DRIFT = 0.001;
/** Name of the [level, α] tensor in the G and G_ema groups. */
export const PGGAN_POSITION = 'pggan/position';

// ---------------------------------------------------------------------------------------------------------
// Schedule

/** Where the schedule is: phase index (0 … 2K), level (0 … K) and fade-in α. */
export interface PgganPhase {
  readonly phaseIndex: number;
  readonly level: number;
  readonly alpha: number;
}

/**
 * The schedule's position at `progress` for `levels` = K + 1 resolution levels (see the module header).
 * Pure; progress is clamped to [0, 1].
 */
export function pgganSchedule(levels: number, growFraction: number, progress: number): PgganPhase {
  if (!Number.isInteger(levels) || levels < 1)
    throw new RangeError(`pgganSchedule: levels must be a positive integer, got ${levels}`);
  if (!(growFraction >= 0 && growFraction < 1))
    throw new RangeError(`pgganSchedule: growFraction must be in [0, 1), got ${growFraction}`);
  const K = levels - 1;
  const last = 2 * K;
  const p = Math.min(1, Math.max(0, Number.isFinite(progress) ? progress : 0));
  const share = K > 0 ? growFraction / last : 0;
  if (share <= 0 || p >= growFraction) return { phaseIndex: last, level: K, alpha: 1 };
  const i = Math.min(last - 1, Math.floor(p / share));
  const alpha = i % 2 === 1 ? Math.min(1, Math.max(0, (p - i * share) / share)) : 1;
  return { phaseIndex: i, level: Math.ceil(i / 2), alpha };
}

/** The later of two positions (the schedule never moves back). */
export function laterPhase(current: PgganPhase, next: PgganPhase): PgganPhase {
  if (next.phaseIndex !== current.phaseIndex) return next.phaseIndex > current.phaseIndex ? next : current;
  return next.alpha >= current.alpha ? next : current;
}

// ---------------------------------------------------------------------------------------------------------
// Trainer

/** The JSON state of a pggan checkpoint. */
export interface PgganState {
  readonly phaseIndex: number;
  readonly level: number;
  readonly alpha: number;
  /** D updates done (decides the lazy-R1 steps). */
  readonly dSteps: number;
  /** Adam's β-power accumulators of the current level's optimizers. */
  readonly adam: { readonly g: readonly number[]; readonly d: readonly number[] };
  /** LeCam's anchors (null before the first D update or with LeCam off). */
  readonly lecam: LecamAnchors | null;
}

interface Randomness {
  readonly z: Rng;
  readonly augment: Rng;
}

function weightNames(model: PgganNetwork['levels'][number]): string[] {
  return model.trainableWeights.map((w) => w.originalName);
}

function named(net: PgganNetwork): NamedTensor[] {
  return net.weights.map((w) => ({ name: w.originalName, tensor: w.read() }));
}

/** Live training state of one pggan run. */
export class PgganTrainer implements FamilyTrainer {
  readonly spec: PgganSpec;
  readonly G: PgganNetwork;
  readonly D: PgganNetwork;
  readonly gEma: PgganNetwork;
  readonly #options: TrainOptions;
  readonly #policy: AugmentPolicy;
  readonly #levels: number;
  #gOpt: tf.AdamOptimizer | null = null;
  #dOpt: tf.AdamOptimizer | null = null;
  #gVars: tf.Variable[] = [];
  #dVars: tf.Variable[] = [];
  #level = -1;
  #phase: PgganPhase;
  #dSteps = 0;
  #anchors: LecamAnchors | null = null;

  constructor(spec: PgganSpec, options: TrainOptions) {
    validatePgganSpec(spec);
    this.spec = Object.isFrozen(spec) ? spec : Object.freeze({ ...spec });
    this.#options = options;
    this.G = buildPgganGenerator(this.spec);
    this.D = buildPgganDiscriminator(this.spec);
    this.gEma = buildPgganGenerator(this.spec);
    this.#levels = this.G.levels.length;
    // The EMA copy starts as G (both are built from the same seeds, so they already are).
    this.#policy = augmentPolicy(options.augmentOps);
    this.#phase = pgganSchedule(this.#levels, options.growFraction, 0);
    this.#enterLevel(this.#phase.level);
    this.#setAlpha();
  }

  /** The current schedule position. */
  get phase(): PgganPhase {
    return this.#phase;
  }

  /** The current side (the level's). */
  get side(): number {
    return this.G.plan.sides[this.#phase.level]!;
  }

  /** D updates so far. */
  get dStepCount(): number {
    return this.#dSteps;
  }

  /** Fresh optimizers over level L's variables (the previous level's are freed). */
  #enterLevel(level: number): void {
    this.#gOpt?.dispose();
    this.#dOpt?.dispose();
    const o = this.#options;
    this.#gOpt = tf.train.adam(o.gLr, o.beta1, o.beta2, ADAM_EPSILON);
    this.#dOpt = tf.train.adam(o.dLr, o.beta1, o.beta2, ADAM_EPSILON);
    this.#gVars = trainableVariables(this.G.levels[level]!);
    this.#dVars = trainableVariables(this.D.levels[level]!);
    this.#level = level;
  }

  #setAlpha(): void {
    const { level, alpha } = this.#phase;
    for (const net of [this.G, this.D, this.gEma]) net.setAlpha(level, alpha);
  }

  /** Moves to the schedule's position at `progress` (never back); a new level resets the optimizers. */
  advance(progress: number): PgganPhase {
    this.#phase = laterPhase(this.#phase, pgganSchedule(this.#levels, this.#options.growFraction, progress));
    if (this.#phase.level !== this.#level) this.#enterLevel(this.#phase.level);
    this.#setAlpha();
    return this.#phase;
  }

  #z(batch: number, rng: Rng): tf.Tensor2D {
    return tf.tensor2d(rng.normals(batch * this.spec.zDim), [batch, this.spec.zDim]);
  }

  #aug(x: tf.Tensor4D, p: number, rng: Rng): tf.Tensor4D {
    return this.#options.augment === 'none' || p <= 0 ? x : augment(x, p, this.#policy, rng);
  }

  #runG(net: PgganNetwork, z: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor4D {
    const model = net.levels[this.#phase.level]!;
    return model.apply(pgganConditional(this.spec) ? [z, labels] : [z], { training: true }) as tf.Tensor4D;
  }

  #runD(x: tf.Tensor4D, labels: tf.Tensor1D): tf.Tensor2D {
    const model = this.D.levels[this.#phase.level]!;
    return model.apply(pgganConditional(this.spec) ? [x, labels] : [x], { training: true }) as tf.Tensor2D;
  }

  /** A real batch at the spec's size → the level's side, blended during a fade-in (PGGAN's process_reals). */
  realsAtLevel(x: tf.Tensor4D): tf.Tensor4D {
    const { level, alpha } = this.#phase;
    const factor = this.spec.size / this.G.plan.sides[level]!;
    return tf.tidy(() => {
      const xl = avgPoolBy(x, factor);
      if (level === 0 || alpha >= 1) return xl === x ? tf.clone(x) : xl;
      const coarse = upsampleBy(avgPoolBy(xl, 2), 2);
      return tf.add(tf.mul(xl, alpha), tf.mul(coarse, 1 - alpha)) as tf.Tensor4D;
    });
  }

  #dUpdate(real: tf.Tensor4D, labels: tf.Tensor1D, p: number, rng: Randomness) {
    const o = this.#options;
    const r = criticUpdate({
      options: o,
      optimizer: this.#dOpt!,
      vars: this.#dVars,
      real,
      update: this.#dSteps++,
      fake: () => this.#runG(this.G, this.#z(real.shape[0], rng.z), labels),
      critic: (x) => this.#runD(x, labels),
      logits: (out) => out,
      extra: (outReal) => (o.loss === 'wgan' ? tf.mul(tf.mean(tf.square(outReal)), WGAN_DRIFT) : null),
      augment: (x) => this.#aug(x, p, rng.augment),
      zRng: rng.z,
      anchors: this.#anchors,
    });
    this.#anchors = r.anchors;
    return r;
  }

  #gUpdate(labels: tf.Tensor1D, p: number, rng: Randomness, imagesSeen: number): number {
    const o = this.#options;
    const batch = labels.shape[0];
    const half = Math.floor(batch / 2);
    const pairs = o.modeSeeking > 0 && half > 0;
    const loss = tf.tidy(() => {
      const y = pairs ? tf.concat([tf.slice(labels, 0, half), tf.slice(labels, 0, batch - half)]) : labels;
      const z = this.#z(batch, rng.z);
      return this.#gOpt!.minimize(
        () => {
          const fake = this.#runG(this.G, z, y);
          let total = generatorLoss(o.loss, this.#runD(this.#aug(fake, p, rng.augment), y));
          if (pairs) total = tf.add(total, tf.mul(modeSeekingLoss(fake, z, half), o.modeSeeking));
          return total as tf.Scalar;
        },
        true,
        this.#gVars,
      )!;
    });
    const value = loss.dataSync()[0]!;
    loss.dispose();
    // Over the current level's weights: the only ones G's optimizer moves (the rest of G_ema equals G's).
    const L = this.#level;
    updateEma(
      this.gEma.levels[L]!,
      this.G.levels[L]!,
      emaBeta(batch, o.emaKimg * 1000, imagesSeen, o.emaRampup),
    );
    return value;
  }

  step(input: StepInput): StepStats {
    this.advance(input.progress);
    const p = input.augmentP;
    return alternatingStep(
      input,
      this.#options,
      (x, labels) => {
        const real = this.realsAtLevel(x);
        try {
          return this.#dUpdate(real, labels, p, input.rng);
        } finally {
          real.dispose();
        }
      },
      (labels, seen) => this.#gUpdate(labels, p, input.rng, seen),
    );
  }

  tickStats(): Readonly<Record<string, number>> {
    return { pgPhase: this.#phase.phaseIndex, pgSide: this.side, pgAlpha: this.#phase.alpha };
  }

  sampler(classNames: readonly string[]): SamplingGenerator {
    return pgganSampler(this.spec, classNames, this.gEma, () => this.#phase, false);
  }

  /** Adam's β-power accumulators of the current optimizers. */
  adamBetaPowers(): { g: [number, number]; d: [number, number] } {
    return { g: adamBetaPowers(this.#gOpt!), d: adamBetaPowers(this.#dOpt!) };
  }

  #setAdamBetaPowers(p: { g: readonly number[]; d: readonly number[] }): void {
    setAdamBetaPowers(this.#gOpt!, p.g);
    setAdamBetaPowers(this.#dOpt!, p.d);
  }

  async checkpoint(): Promise<FamilySnapshot> {
    const level = this.#level;
    const gOpt = await optimizerWeights(this.#gOpt!, weightNames(this.G.levels[level]!));
    const dOpt = await optimizerWeights(this.#dOpt!, weightNames(this.D.levels[level]!));
    const position = () => tf.tensor1d([this.#phase.level, this.#phase.alpha], 'float32');
    const gPos = position();
    const emaPos = position();
    const state: PgganState = {
      phaseIndex: this.#phase.phaseIndex,
      level: this.#phase.level,
      alpha: this.#phase.alpha,
      dSteps: this.#dSteps,
      adam: this.adamBetaPowers(),
      lecam: this.#anchors,
    };
    let released = false;
    return {
      groups: {
        G: [...named(this.G), { name: PGGAN_POSITION, tensor: gPos }],
        D: named(this.D),
        G_ema: [...named(this.gEma), { name: PGGAN_POSITION, tensor: emaPos }],
        gOpt,
        dOpt,
      },
      state,
      release: () => {
        if (released) return;
        released = true;
        // getWeights hands out fresh tensors for the iteration counters; m and v are the live variables.
        for (const w of [...gOpt, ...dOpt]) if (w.name === 'iter') w.tensor.dispose();
        gPos.dispose();
        emaPos.dispose();
      },
    };
  }

  async restore(saved: SavedGroups, state: unknown, where: string): Promise<void> {
    const s = parseState(state, this.#levels, where);
    const group = (name: string) => savedGroup(saved.weights, name, where);
    const pairs: [PgganNetwork, string][] = [
      [this.G, 'G'],
      [this.D, 'D'],
      [this.gEma, 'G_ema'],
    ];
    for (const [net, name] of pairs) {
      const weights = group(name);
      for (const model of net.levels) assignWeights(model, weights, where);
    }
    this.#phase = { phaseIndex: s.phaseIndex, level: s.level, alpha: s.alpha };
    this.#enterLevel(s.level);
    this.#setAlpha();
    for (const name of ['gOpt', 'dOpt'] as const) {
      const order = saved.order[name];
      if (!order) throw new CheckpointError(`optimizer group "${name}" is missing`, { file: where });
      await assignOptimizer(name === 'gOpt' ? this.#gOpt! : this.#dOpt!, group(name), order, where);
    }
    this.#setAdamBetaPowers(s.adam);
    this.#dSteps = s.dSteps;
    this.#anchors = s.lecam;
  }

  dispose(): void {
    this.#gOpt?.dispose();
    this.#dOpt?.dispose();
    this.#gOpt = null;
    this.#dOpt = null;
    this.G.dispose();
    this.D.dispose();
    this.gEma.dispose();
  }
}

/** The pggan state's schema for a network of `levels` levels (phase, level and α must agree). */
function pgganStateSchema(levels: number) {
  return z
    .object({
      phaseIndex: z
        .number()
        .int()
        .min(0)
        .max(2 * (levels - 1)),
      level: z
        .number()
        .int()
        .min(0)
        .max(levels - 1),
      alpha: z.number().min(0).max(1),
      dSteps: z.number().int().min(0),
      adam: adamPowersSchema,
      // Absent in checkpoints written before LeCam existed (they ran without it).
      lecam: lecamAnchorsSchema.default(null),
    })
    .refine((s) => Math.ceil(s.phaseIndex / 2) === s.level, {
      message: 'the phase index does not belong to the level',
      path: ['phaseIndex'],
    });
}

function parseState(state: unknown, levels: number, where: string): PgganState {
  return parseFamilyState(pgganStateSchema(levels), state, where);
}

// ---------------------------------------------------------------------------------------------------------
// Sampling

/**
 * A SamplingGenerator over `net` at the position `phase()` returns (read at every call), upsampled (nearest)
 * to the full size and clipped to [−1, 1]. `owned`: `dispose` frees the network.
 */
function pgganSampler(
  spec: PgganSpec,
  classNames: readonly string[],
  net: PgganNetwork,
  phase: () => Pick<PgganPhase, 'level' | 'alpha'>,
  owned: boolean,
): SamplingGenerator {
  const conditional = pgganConditional(spec);
  return {
    zDim: spec.zDim,
    numClasses: spec.numClasses,
    classNames: [...classNames],
    size: spec.size,
    channels: spec.channels,
    conditional,
    truncation: 'z',
    generate(z: tf.Tensor2D, labels: tf.Tensor1D | null): tf.Tensor4D {
      if (z.rank !== 2 || z.shape[1] !== spec.zDim)
        throw new RangeError(`generate: z must have shape [N, ${spec.zDim}], got [${z.shape.join(', ')}]`);
      if (conditional && (!labels || labels.rank !== 1 || labels.shape[0] !== z.shape[0]))
        throw new RangeError(`generate: a conditional pggan needs labels [${z.shape[0]}]`);
      const { level, alpha } = phase();
      net.setAlpha(level, alpha);
      const side = net.plan.sides[level]!;
      return tf.tidy(() => {
        const model = net.levels[level]!;
        const x = model.apply(conditional ? [z, labels!] : [z], { training: false }) as tf.Tensor4D;
        return tf.clipByValue(upsampleBy(x, spec.size / side), -1, 1);
      });
    },
    dispose() {
      if (owned) net.dispose();
    },
    family: 'pggan',
  };
}

/** The [level, α] a G group was saved at, or the final level with α = 1 when it has none. */
export function savedPosition(
  weights: tf.NamedTensorMap,
  levels: number,
  where: string,
): { level: number; alpha: number } {
  const t = weights[PGGAN_POSITION];
  if (!t) return { level: levels - 1, alpha: 1 };
  const [level, alpha] = Array.from(t.dataSync());
  if (!(Number.isInteger(level) && level! >= 0 && level! < levels && alpha! >= 0 && alpha! <= 1))
    throw new CheckpointError(`"${PGGAN_POSITION}" is not a level and α`, {
      file: where,
      found: `[${String(level)}, ${String(alpha)}]`,
    });
  return { level: level!, alpha: alpha! };
}

// ---------------------------------------------------------------------------------------------------------
// The family

export const pgganFamily: GeneratorFamily<PgganSpec> = {
  name: 'pggan',
  divergence: GAN_DIVERGENCE,
  description:
    'progressive-growing GAN (Karras et al. 2018): grows from 4×4 (7×7 at 28 px) to full size with fade-ins, equalised learning rate, pixel norm, minibatch stddev',

  specFor(options: TrainOptions, data: DataFacts): PgganSpec {
    return defaultPgganSpec({
      size: options.size,
      channels: data.channels,
      numClasses: data.numClasses,
      zDim: options.zDim,
      gWidth: options.gWidth,
      dWidth: options.dWidth,
      maxWidth: options.maxWidth,
      seed: Rng.derive(options.seed, 'init').int(2 ** 31 - 1),
    });
  },

  checkSpec(spec: unknown, file: string): PgganSpec {
    try {
      validatePgganSpec(spec as PgganSpec);
    } catch (e) {
      throw new CheckpointError(`not a pggan spec: ${(e as Error).message}`, { file, cause: e });
    }
    const s = spec as PgganSpec;
    return Object.freeze({
      family: s.family,
      size: s.size,
      channels: s.channels,
      numClasses: s.numClasses,
      zDim: s.zDim,
      gWidth: s.gWidth,
      dWidth: s.dWidth,
      maxWidth: s.maxWidth,
      seed: s.seed,
    });
  },

  trainer(spec: PgganSpec, options: TrainOptions): PgganTrainer {
    return new PgganTrainer(spec, options);
  },

  samplerGroups(ema: boolean): readonly string[] {
    return [ema ? 'G_ema' : 'G'];
  },

  sampler(
    spec: PgganSpec,
    saved: SavedGroups,
    ema: boolean,
    classNames: readonly string[],
    where: string,
    settings: SamplerSettings = {},
  ): SamplingGenerator {
    refuseSamplerSettings(settings, notDiffusion('pggan'));
    const weights = savedGroup(saved.weights, ema ? 'G_ema' : 'G', where);
    const net = buildPgganGenerator(spec);
    try {
      const position = savedPosition(weights, pgganPlan(spec).sides.length, where);
      assignWeights(net.levels[position.level]!, weights, where);
      return pgganSampler(spec, classNames, net, () => position, true);
    } catch (e) {
      net.dispose();
      throw e;
    }
  },
};
