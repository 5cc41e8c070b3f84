/**
 * The single-resolution GAN families behind the family interface: `dcgan`, `cgan`, `acgan` (models/dcgan.ts,
 * conditional.ts) and `stylegan2` (models/stylegan2.ts). One step is `options.dSteps` D updates, each on its
 * own real batch, then one G update with the last batch's labels (`GanTrainer`); transitional conditioning's
 * λ follows the run's progress. Saved groups: G, D, G_ema, gOpt, dOpt; family state: D updates done (lazy R1),
 * Adam's β powers and LeCam's anchors (restored exactly).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { TrainOptions } from '../../config/train-options.js';
import {
  buildGenerator,
  checkGanSpec,
  isConditional,
  runG,
  type AdversarialSpec,
} from '../../models/registry.js';
import type { GanFamily, SamplingGenerator } from '../../models/types.js';
import { styleSpaceOf } from '../../models/style-space.js';
import { CheckpointError } from '../../runtime/errors.js';
import { Rng } from '../../runtime/random.js';
import { lecamAnchorsSchema } from '../../losses/lecam.js';
import {
  adamPowersSchema,
  assignOptimizer,
  assignWeights,
  namedWeights,
  optimizerWeights,
  parseFamilyState,
  savedGroup,
} from '../checkpoint.js';
import {
  alternatingStep,
  type DataFacts,
  GAN_DIVERGENCE,
  notDiffusion,
  refuseSamplerSettings,
  type FamilySnapshot,
  type FamilyTrainer,
  type GeneratorFamily,
  type SavedGroups,
  type StepInput,
  type StepStats,
} from '../family.js';
import { GanTrainer } from '../gan-step.js';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Transitional conditioning's λ at `progress` ∈ [0, 1] of the run: 0 before `start`, linear to 1 at `end`
 * (a step at `start === end`), 1 after. Without a ramp, always 1.
 */
export function conditionStrength(ramp: readonly [number, number] | null, progress: number): number {
  if (ramp === null) return 1;
  const [start, end] = ramp;
  if (progress >= end) return 1;
  if (progress <= start) return 0;
  return (progress - start) / (end - start);
}

/** The state beside the weights: D updates done (lazy R1), Adam's β powers, LeCam's anchors. */
const adversarialStateSchema = z.object({
  dSteps: z.number().int().min(0),
  adam: adamPowersSchema,
  // Absent in checkpoints written before LeCam existed (they ran without it).
  lecam: lecamAnchorsSchema.default(null),
});

type AdversarialState = z.input<typeof adversarialStateSchema>;

/** A SamplingGenerator over a live or loaded G (not owned: `dispose` is the caller's `release`). */
export function ganSampler(
  spec: AdversarialSpec,
  G: tfl.LayersModel,
  classNames: readonly string[],
  release: () => void,
): SamplingGenerator {
  const conditional = isConditional(spec);
  return {
    zDim: spec.zDim,
    numClasses: spec.numClasses,
    classNames,
    size: spec.size,
    channels: spec.channels,
    conditional,
    truncation: spec.family === 'stylegan2' ? 'w' : 'z',
    generate: (z, labels, psi = 1) =>
      tf.tidy(() => runG({ spec, G }, z, conditional ? labels : null, false, psi)),
    dispose: release,
    family: spec.family,
    ...(spec.family === 'stylegan2' ? { styleSpace: styleSpaceOf(G, conditional) } : {}),
  };
}

class AdversarialTrainer implements FamilyTrainer {
  readonly #t: GanTrainer;

  constructor(
    readonly spec: AdversarialSpec,
    readonly options: TrainOptions,
  ) {
    this.#t = new GanTrainer(options, spec);
  }

  /** The underlying trainer (tests, benchmarks). */
  get gan(): GanTrainer {
    return this.#t;
  }

  step(input: StepInput): StepStats {
    const t = this.#t;
    if (t.transitional) t.setConditionStrength(conditionStrength(this.options.condRamp, input.progress));
    return alternatingStep(
      input,
      this.options,
      (x, labels) => t.dStep(x, labels, input.augmentP, input.rng),
      (labels, seen) => t.gStep(labels, input.augmentP, input.rng, seen),
    );
  }

  tickStats(): Readonly<Record<string, number>> {
    return this.#t.transitional ? { condLambda: this.#t.conditionStrength } : {};
  }

  sampler(classNames: readonly string[]): SamplingGenerator {
    return ganSampler(this.spec, this.#t.gEma, classNames, () => {});
  }

  async checkpoint(): Promise<FamilySnapshot> {
    const t = this.#t;
    const groups = {
      G: namedWeights(t.net.G),
      D: namedWeights(t.net.D),
      G_ema: namedWeights(t.gEma),
      gOpt: await optimizerWeights(
        t.gOpt,
        t.net.G.trainableWeights.map((w) => w.originalName),
      ),
      dOpt: await optimizerWeights(
        t.dOpt,
        t.net.D.trainableWeights.map((w) => w.originalName),
      ),
    };
    const state: AdversarialState = {
      dSteps: t.dStepCount,
      adam: t.adamBetaPowers(),
      lecam: t.lecamAnchors,
    };
    return {
      groups,
      state,
      // getWeights hands out fresh tensors for the iteration counters; model weights are the live variables.
      release: () => {
        for (const w of [...groups.gOpt, ...groups.dOpt]) if (w.name === 'iter') w.tensor.dispose();
      },
    };
  }

  async restore(saved: SavedGroups, state: unknown, where: string): Promise<void> {
    const s = parseFamilyState(adversarialStateSchema, state, where);
    const t = this.#t;
    const group = (name: string) => savedGroup(saved.weights, name, where);
    assignWeights(t.net.G, group('G'), where);
    assignWeights(t.net.D, group('D'), where);
    assignWeights(t.gEma, group('G_ema'), where);
    await assignOptimizer(t.gOpt, group('gOpt'), saved.order['gOpt'] ?? [], where);
    await assignOptimizer(t.dOpt, group('dOpt'), saved.order['dOpt'] ?? [], where);
    t.setAdamBetaPowers(s.adam);
    t.dStepCount = s.dSteps;
    t.lecamAnchors = s.lecam;
    // λ lives in the networks' ConditionScale weights; the trainer's copy follows them.
    t.syncConditionStrength();
  }

  dispose(): void {
    this.#t.dispose();
  }
}

/** The spec the options ask for, on this data. */
export function adversarialSpecFor(options: TrainOptions, data: DataFacts): AdversarialSpec {
  const base = {
    size: options.size,
    channels: data.channels,
    numClasses: data.numClasses,
    zDim: options.zDim,
    gWidth: options.gWidth,
    dWidth: options.dWidth,
    maxWidth: options.maxWidth,
    seed: Rng.derive(options.seed, 'init').int(2 ** 31 - 1),
  };
  if (options.model === 'stylegan2') {
    return checkGanSpec({
      ...base,
      family: 'stylegan2',
      conditional: data.numClasses > 1,
      wDim: options.wDim,
      mappingLayers: options.mappingLayers,
    });
  }
  return checkGanSpec({
    ...base,
    family: options.model as GanFamily,
    conditioning: options.conditioning,
    spectralNorm: options.spectralNorm,
    ...(options.condRamp !== null && options.model !== 'dcgan' ? { transitional: true } : {}),
    ...(options.minibatchStd ? { minibatchStd: true } : {}),
  });
}

function adversarialFamily(
  name: AdversarialSpec['family'],
  description: string,
): GeneratorFamily<AdversarialSpec> {
  return {
    name,
    description,
    divergence: GAN_DIVERGENCE,
    specFor: adversarialSpecFor,
    checkSpec(spec, file) {
      try {
        const s = checkGanSpec(spec as AdversarialSpec);
        if (s.family !== name) throw new RangeError(`spec.family must be ${name}, got ${s.family}`);
        return s;
      } catch (e) {
        throw new CheckpointError(`the saved architecture is not valid: ${(e as Error).message}`, {
          file,
          field: 'spec',
          cause: e,
        });
      }
    },
    trainer: (spec, options) => new AdversarialTrainer(spec, options),
    samplerGroups: (ema) => [ema ? 'G_ema' : 'G'],
    sampler(spec, saved, ema, classNames, where, settings = {}) {
      refuseSamplerSettings(settings, notDiffusion(name));
      const weights = savedGroup(saved.weights, ema ? 'G_ema' : 'G', where);
      const G = buildGenerator(spec);
      try {
        assignWeights(G, weights, where);
      } catch (e) {
        G.dispose();
        throw e;
      }
      return ganSampler(spec, G, classNames, () => G.dispose());
    },
  };
}

export const dcganFamily = adversarialFamily('dcgan', 'unconditional DCGAN (transposed-conv G, SN D)');
export const cganFamily = adversarialFamily(
  'cgan',
  'class-conditional DCGAN: label embedding in G, projection (or label-map) D',
);
export const acganFamily = adversarialFamily('acgan', 'auxiliary-classifier GAN: D also predicts the class');
export const stylegan2Family = adversarialFamily(
  'stylegan2',
  'StyleGAN2-ADA-style: mapping network, modulated convs, skip G, residual D; truncation in W',
);
