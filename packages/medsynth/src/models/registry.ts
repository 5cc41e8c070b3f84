/**
 * The GAN registry: resolve a spec (defaults + validation), build a family's two networks, and call them.
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
  CONDITIONINGS,
  type DiscriminatorOutput,
  GAN_FAMILIES,
  GAN_SIZES,
  type GanFamily,
  type GanNetworks,
  type GanSpec,
} from './types.js';

export { ganPlan, type GanPlan } from './dcgan.js';

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

function positiveInteger(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new RangeError(`GanSpec.${field} must be a positive integer, got ${String(value)}`);
}

/** Throws a RangeError naming the field when `spec` cannot be built (specs also come from checkpoint files). */
export function validateGanSpec(spec: GanSpec): void {
  if (!(GAN_FAMILIES as readonly unknown[]).includes(spec.family))
    throw new RangeError(
      `GanSpec.family must be one of ${GAN_FAMILIES.join(', ')}, got ${String(spec.family)}`,
    );
  if (!(GAN_SIZES as readonly unknown[]).includes(spec.size))
    throw new RangeError(`GanSpec.size must be one of ${GAN_SIZES.join(', ')}, got ${String(spec.size)}`);
  if (spec.channels !== 1 && spec.channels !== 3)
    throw new RangeError(`GanSpec.channels must be 1 or 3, got ${String(spec.channels)}`);
  positiveInteger(spec.numClasses, 'numClasses');
  if (spec.family !== 'dcgan' && spec.numClasses < 2)
    throw new RangeError(
      `GanSpec.numClasses must be ≥ 2 for family '${spec.family}', got ${spec.numClasses}`,
    );
  positiveInteger(spec.zDim, 'zDim');
  positiveInteger(spec.gWidth, 'gWidth');
  positiveInteger(spec.dWidth, 'dWidth');
  positiveInteger(spec.maxWidth, 'maxWidth');
  if (spec.maxWidth < Math.max(spec.gWidth, spec.dWidth))
    throw new RangeError(
      `GanSpec.maxWidth (${spec.maxWidth}) must be ≥ gWidth (${spec.gWidth}) and dWidth (${spec.dWidth})`,
    );
  if (!(CONDITIONINGS as readonly unknown[]).includes(spec.conditioning))
    throw new RangeError(
      `GanSpec.conditioning must be one of ${CONDITIONINGS.join(', ')}, got ${String(spec.conditioning)}`,
    );
  if (typeof spec.spectralNorm !== 'boolean')
    throw new RangeError(`GanSpec.spectralNorm must be a boolean, got ${String(spec.spectralNorm)}`);
  if (typeof spec.seed !== 'number' || !Number.isSafeInteger(spec.seed))
    throw new RangeError(`GanSpec.seed must be an integer, got ${String(spec.seed)}`);
}

/**
 * Builds the spec's G and D (models named 'G' and 'D'). Same spec → bit-identical initial weights; building
 * it again in the same process (G and its EMA copy) gives models with the same weight names.
 */
export function buildGan(spec: GanSpec): GanNetworks {
  validateGanSpec(spec);
  const frozen: GanSpec = Object.isFrozen(spec) ? spec : Object.freeze({ ...spec });
  return BUILDERS[frozen.family](frozen);
}

/**
 * Only the spec's G (as `buildGan(spec).G`, same weights and names), for an EMA copy or sampling without
 * building a D.
 */
export function buildGenerator(spec: GanSpec): tfl.LayersModel {
  validateGanSpec(spec);
  return buildG(Object.isFrozen(spec) ? spec : Object.freeze({ ...spec }));
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

function labelsFor(spec: GanSpec, labels: tf.Tensor1D | null, n: number, who: string): tf.Tensor1D {
  if (!labels) throw new RangeError(`${who}: family '${spec.family}' needs labels`);
  checkBatch(`${who} labels`, labels, 1, n);
  return labels;
}

/**
 * G's images `[N, S, S, C]` for latents `z [N, zDim]` (and int32 labels `[N]`, ignored by dcgan).
 * `training` switches batch norm to batch statistics (and updates its moving averages).
 */
export function runG(
  net: Pick<GanNetworks, 'spec' | 'G'>,
  z: tf.Tensor2D,
  labels: tf.Tensor1D | null,
  training: boolean,
): tf.Tensor4D {
  const { spec } = net;
  checkBatch('runG z', z, 2, null, spec.zDim);
  const inputs = spec.family === 'dcgan' ? [z] : [z, labelsFor(spec, labels, z.shape[0], 'runG')];
  return net.G.apply(inputs, { training }) as tf.Tensor4D;
}

/**
 * D's outputs for images `x [N, S, S, C]` (and int32 labels `[N]` for cgan; ignored otherwise).
 * `training` lets spectral norm do its power iteration (and update u).
 */
export function runD(
  net: Pick<GanNetworks, 'spec' | 'D'>,
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
  switch (spec.family) {
    case 'dcgan':
      return { logits: net.D.apply(x, { training }) as tf.Tensor2D, classLogits: null };
    case 'cgan':
      return {
        logits: net.D.apply([x, labelsFor(spec, labels, n, 'runD')], { training }) as tf.Tensor2D,
        classLogits: null,
      };
    case 'acgan': {
      const [logits, classLogits] = net.D.apply(x, { training }) as tf.Tensor2D[];
      return { logits: logits!, classLogits: classLogits! };
    }
  }
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
