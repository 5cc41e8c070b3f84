/**
 * The GAN registry: resolve a spec (defaults + validation), build a family's two networks, and call them.
 * It covers the single-resolution adversarial families — `dcgan`, `cgan`, `acgan` (GanSpec) and `stylegan2`
 * (StyleGan2Spec) — which share one calling convention: G([z] or [z, labels]) → images, D([x] or [x, labels]).
 *
 *   const net = buildGan(defaultGanSpec({ family: 'cgan', size: 64, channels: 3, numClasses: 4 }));
 *   const x = tf.tidy(() => runG(net, z, labels, false));
 *   const { logits, classLogits } = runD(net, x, labels, true);
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildAcgan, buildCgan } from './conditional.js';
import { buildDcgan, buildGenerator as buildG } from './dcgan.js';
import {
  buildStyleGan2,
  setNoiseSeed,
  setTruncation,
  type StyleGan2Spec,
  validateStyleGan2Spec,
} from './stylegan2.js';
import {
  CONDITIONINGS,
  type DiscriminatorOutput,
  GAN_FAMILIES,
  GAN_SIZES,
  type GanFamily,
  type GanNetworks,
  type GanSpec,
} from './types.js';
import { checkWidthSpec } from './spec-checks.js';

export { ganPlan, type GanPlan } from './dcgan.js';

/** The spec of any single-resolution adversarial family. */
export type AdversarialSpec = GanSpec | StyleGan2Spec;

/** The two networks of any single-resolution adversarial family. */
export interface AdversarialNetworks {
  readonly spec: AdversarialSpec;
  readonly G: tfl.LayersModel;
  readonly D: tfl.LayersModel;
}

/** Whether G and D take labels. */
export function isConditional(spec: AdversarialSpec): boolean {
  return spec.family === 'stylegan2' ? spec.conditional : spec.family !== 'dcgan';
}

/** Validates any adversarial spec (RangeError naming the field) and returns it frozen. */
export function checkGanSpec<S extends AdversarialSpec>(spec: S): S {
  if (spec.family === 'stylegan2') validateStyleGan2Spec(spec);
  else validateGanSpec(spec);
  return Object.isFrozen(spec) ? spec : Object.freeze(Object.assign({}, spec));
}

/** Before a training forward pass of G: fresh noise inputs drawn from `rng` (StyleGAN2 only; others draw nothing). */
export function setTrainingNoise(
  net: Pick<AdversarialNetworks, 'spec' | 'G'>,
  rng: { int(n: number): number },
): void {
  if (net.spec.family === 'stylegan2') setNoiseSeed(net.G, rng.int(2 ** 31 - 1));
}

const BUILDERS: Record<GanFamily, (spec: GanSpec) => GanNetworks> = {
  dcgan: buildDcgan,
  cgan: buildCgan,
  acgan: buildAcgan,
};

/** A complete spec from a partial one: a 28×28×1, 2-class, projection cgan unless told otherwise. Validated. */
export function defaultGanSpec(partial: Partial<GanSpec> = {}): GanSpec {
  const size = partial.size ?? 28;
  const spec: GanSpec = {
    family: partial.family ?? 'cgan',
    size,
    channels: partial.channels ?? 1,
    numClasses: partial.numClasses ?? 2,
    zDim: partial.zDim ?? 128,
    gWidth: partial.gWidth ?? 64,
    dWidth: partial.dWidth ?? 64,
    maxWidth: partial.maxWidth ?? (size >= 128 ? 512 : 256),
    conditioning: partial.conditioning ?? 'projection',
    spectralNorm: partial.spectralNorm ?? true,
    seed: partial.seed ?? 0,
  };
  validateGanSpec(spec);
  return Object.freeze(spec);
}

/** Throws a RangeError naming the field when `spec` cannot be built (specs also come from checkpoint files). */
export function validateGanSpec(spec: GanSpec): void {
  checkWidthSpec('GanSpec', spec, GAN_FAMILIES, GAN_SIZES);
  if (spec.family !== 'dcgan' && spec.numClasses < 2)
    throw new RangeError(
      `GanSpec.numClasses must be ≥ 2 for family '${spec.family}', got ${spec.numClasses}`,
    );
  if (!(CONDITIONINGS as readonly unknown[]).includes(spec.conditioning))
    throw new RangeError(
      `GanSpec.conditioning must be one of ${CONDITIONINGS.join(', ')}, got ${String(spec.conditioning)}`,
    );
  if (typeof spec.spectralNorm !== 'boolean')
    throw new RangeError(`GanSpec.spectralNorm must be a boolean, got ${String(spec.spectralNorm)}`);
}

/**
 * Builds the spec's G and D (models named 'G' and 'D'). Same spec → bit-identical initial weights; building
 * it again in the same process (G and its EMA copy) gives models with the same weight names.
 */
export function buildGan(spec: GanSpec): GanNetworks;
export function buildGan(spec: AdversarialSpec): AdversarialNetworks;
export function buildGan(spec: AdversarialSpec): AdversarialNetworks {
  const frozen = checkGanSpec(spec);
  if (frozen.family === 'stylegan2') return buildStyleGan2(frozen);
  return BUILDERS[frozen.family](frozen);
}

/**
 * Only the spec's G (as `buildGan(spec).G`, same weights and names), for an EMA copy or sampling without
 * building a D.
 */
export function buildGenerator(spec: AdversarialSpec): tfl.LayersModel {
  const frozen = checkGanSpec(spec);
  if (frozen.family === 'stylegan2') {
    const net = buildStyleGan2(frozen);
    net.D.dispose();
    return net.G;
  }
  return buildG(frozen);
}

function checkBatch(what: string, t: tf.Tensor, rank: number, n: number | null, last?: number): void {
  if (
    t.rank !== rank ||
    (n !== null && t.shape[0] !== n) ||
    (last !== undefined && t.shape[rank - 1] !== last)
  ) {
    const want = [n ?? 'N', ...Array.from({ length: rank - 1 }, () => '·')];
    if (last !== undefined) want[rank - 1] = last;
    throw new RangeError(`${what} must have shape [${want.join(', ')}], got [${t.shape.join(', ')}]`);
  }
}

function labelsFor(spec: AdversarialSpec, labels: tf.Tensor1D | null, n: number, who: string): tf.Tensor1D {
  if (!labels) throw new RangeError(`${who}: family '${spec.family}' needs labels`);
  checkBatch(`${who} labels`, labels, 1, n);
  return labels;
}

/**
 * G's images `[N, S, S, C]` for latents `z [N, zDim]` (and int32 labels `[N]`, ignored when unconditional).
 * `training` switches batch norm to batch statistics (and updates its moving averages; StyleGAN2: the
 * tracked mean w). `psi` is StyleGAN2's truncation toward the mean w (inference only; default 1).
 */
export function runG(
  net: Pick<AdversarialNetworks, 'spec' | 'G'>,
  z: tf.Tensor2D,
  labels: tf.Tensor1D | null,
  training: boolean,
  psi = 1,
): tf.Tensor4D {
  const { spec } = net;
  checkBatch('runG z', z, 2, null, spec.zDim);
  const inputs = isConditional(spec) ? [z, labelsFor(spec, labels, z.shape[0], 'runG')] : [z];
  if (spec.family === 'stylegan2') setTruncation(net.G, training ? 1 : psi);
  return net.G.apply(inputs, { training }) as tf.Tensor4D;
}

/**
 * D's outputs for images `x [N, S, S, C]` (and int32 labels `[N]` for conditional families but acgan,
 * whose D predicts the class). `training` lets spectral norm do its power iteration (and update u).
 */
export function runD(
  net: Pick<AdversarialNetworks, 'spec' | 'D'>,
  x: tf.Tensor4D,
  labels: tf.Tensor1D | null,
  training: boolean,
): DiscriminatorOutput {
  const { spec } = net;
  if (x.rank !== 4 || x.shape[1] !== spec.size || x.shape[2] !== spec.size || x.shape[3] !== spec.channels)
    throw new RangeError(
      `runD x must have shape [N, ${spec.size}, ${spec.size}, ${spec.channels}], got [${x.shape.join(', ')}]`,
    );
  const n = x.shape[0];
  if (spec.family === 'acgan') {
    const [logits, classLogits] = net.D.apply(x, { training }) as tf.Tensor2D[];
    return { logits: logits!, classLogits: classLogits! };
  }
  const inputs = isConditional(spec) ? [x, labelsFor(spec, labels, n, 'runD')] : x;
  return { logits: net.D.apply(inputs, { training }) as tf.Tensor2D, classLogits: null };
}

/** Trainable parameters of a model (as PyTorch's `parameters()`: no batch-norm statistics, no sn_u). */
export function parameterCount(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce(
    (sum, w) => sum + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1),
    0,
  );
}

/** Every parameter of a model, trainable or not. */
export function weightCount(model: tfl.LayersModel): number {
  return model.weights.reduce((sum, w) => sum + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
}
