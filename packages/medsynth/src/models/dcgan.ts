/**
 * The DCGAN skeleton every family shares, and the unconditional family (`dcgan`) built from it.
 *
 * G: z (++ label embedding) → dense to s0×s0×c0 → BN → ReLU → reshape → up-blocks (transposed conv 4×4,
 *    stride 2, + BN + ReLU), each doubling the side, down to full resolution → conv 3×3 to the image channels →
 *    tanh. s0 = 7 for 28 px, 4 for 32/64/128 px.
 * D: (image ++ label map) → conv 3×3 + LeakyReLU(0.2) at full resolution → down-blocks (conv 4×4, stride 2,
 *    'same', + LeakyReLU(0.2)) down to s0 → global sum pooling → dense 1 (+ the family's heads). No batch norm;
 *    every conv/dense kernel spectrally normalised when `spec.spectralNorm`.
 *
 * Widths (see `ganPlan`): G and D have `gWidth`/`dWidth` channels at full and at half resolution and double
 * them at every side below (capped at `maxWidth`); so D's first down-block keeps the width and the others
 * double it, and G's last up-block keeps it and the others halve it. A 28 px cgan is
 *   G: dense → 7×7×128 → 14×14×64 → 28×28×64 → 28×28×1,   D: 28×28×64 → 14×14×64 → 7×7×128 → Σ → 1,
 * the PyTorch peer's widths at every side plus one full-resolution conv each. Doubling at every block from the
 * full-resolution width would put G's dense layer at (zDim + labelDim)·7²·256 ≈ 2.4 M weights and cost D 2.6×
 * the FLOPs (measured: the 28 px D+G step 1.6× slower, the 64 px one 1.5×).
 *
 * Every layer has an explicit name (`g_dense0`, `g_up1_conv`, `d_down2_conv`…) and every initialiser a seed
 * derived from `spec.seed` and that name, so one spec builds bit-identical networks, any number of times
 * in one process (weights are restored by their names `<layer>/<weight>`).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { ConditionScale, GlobalSumPooling2D, MinibatchStdDev, SNConv2D, SNDense, subSeed } from './layers.js';
import type { GanNetworks, GanSpec } from './types.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** How G doubles its side: transposed conv 4×4/2 (chosen: measured faster), or nearest ×2 + conv 3×3. */
export type UpsampleMode = 'transpose' | 'nearest';

/** Architecture knobs that are not part of the spec (fixed for checkpoint compatibility; for benchmarks). */
export interface ArchitectureOptions {
  readonly upsample: UpsampleMode;
}

export const DEFAULT_ARCHITECTURE: ArchitectureOptions = Object.freeze({ upsample: 'transpose' });

/** The resolved layout of one spec's networks. */
export interface GanPlan {
  /** Side of G's first feature map and of D's last. */
  readonly s0: number;
  /** Sides from s0 up to the image size, doubling: `[7, 14, 28]`. */
  readonly sides: readonly number[];
  /** G's channels at each side of `sides` (the dense layer's output at s0, then each up-block's). */
  readonly gWidths: readonly number[];
  /** D's channels at each side of `sides` (each down-block's output, the first conv's at full size). */
  readonly dWidths: readonly number[];
  /** Size of G's label embedding concatenated to z (0 when unconditional). */
  readonly labelDim: number;
}

/** G's label embedding size: as large as z up to 64. */
export function labelEmbeddingDim(spec: GanSpec): number {
  return spec.family === 'dcgan' ? 0 : Math.min(spec.zDim, 64);
}

export function ganPlan(spec: GanSpec): GanPlan {
  const s0 = spec.size === 28 ? 7 : 4;
  const sides: number[] = [];
  for (let s = s0; s <= spec.size; s *= 2) sides.push(s);
  if (sides[sides.length - 1] !== spec.size) throw new RangeError(`size ${spec.size} is not s0·2^k`);
  const levels = (side: number) => Math.round(Math.log2(spec.size / side));
  const capped = (base: number, doublings: number) => Math.min(spec.maxWidth, base * 2 ** doublings);
  return {
    s0,
    sides,
    gWidths: sides.map((s) => capped(spec.gWidth, Math.max(0, levels(s) - 1))),
    dWidths: sides.map((s) => capped(spec.dWidth, Math.max(0, levels(s) - 1))),
    labelDim: labelEmbeddingDim(spec),
  };
}

function glorot(spec: GanSpec, layer: string) {
  return tfl.initializers.glorotUniform({ seed: subSeed(spec.seed, layer) });
}

/** N(0, 1), as PyTorch's nn.Embedding: label codes on the scale of z. */
export function embeddingInit(spec: GanSpec, layer: string) {
  return tfl.initializers.randomNormal({ mean: 0, stddev: 1, seed: subSeed(spec.seed, layer) });
}

// ---------------------------------------------------------------------------------------------------------
// Generator

export function generatorInputs(spec: GanSpec): { z: SymbolicTensor; labels: SymbolicTensor | null } {
  const z = tfl.input({ shape: [spec.zDim], name: 'g_z' });
  const labels =
    spec.family === 'dcgan' ? null : tfl.input({ batchShape: [null], dtype: 'int32', name: 'g_labels' });
  return { z, labels };
}

/** G's latent code: z, or z ++ embed(label). */
export function generatorCode(
  spec: GanSpec,
  z: SymbolicTensor,
  labels: SymbolicTensor | null,
): SymbolicTensor {
  if (!labels) return z;
  const embed = tfl.layers
    .embedding({
      inputDim: spec.numClasses,
      outputDim: labelEmbeddingDim(spec),
      embeddingsInitializer: embeddingInit(spec, 'g_label_embed'),
      name: 'g_label_embed',
    })
    .apply(labels) as SymbolicTensor;
  const code = spec.transitional
    ? (new ConditionScale({ name: 'g_cond_scale' }).apply(embed) as SymbolicTensor)
    : embed;
  return tfl.layers.concatenate({ axis: -1, name: 'g_concat' }).apply([z, code]) as SymbolicTensor;
}

function batchNorm(name: string) {
  return tfl.layers.batchNormalization({ axis: -1, momentum: 0.9, epsilon: 1e-5, name });
}

/** code `[N, zDim (+ labelDim)]` → images `[N, S, S, C]` in [-1, 1]. */
export function generatorTrunk(
  spec: GanSpec,
  code: SymbolicTensor,
  arch: ArchitectureOptions = DEFAULT_ARCHITECTURE,
): SymbolicTensor {
  const plan = ganPlan(spec);
  const c0 = plan.gWidths[0]!;
  let h = tfl.layers
    .dense({
      units: plan.s0 * plan.s0 * c0,
      useBias: false,
      kernelInitializer: glorot(spec, 'g_dense0'),
      name: 'g_dense0',
    })
    .apply(code) as SymbolicTensor;
  h = batchNorm('g_bn0').apply(h) as SymbolicTensor;
  h = tfl.layers.reLU({ name: 'g_relu0' }).apply(h) as SymbolicTensor;
  h = tfl.layers
    .reshape({ targetShape: [plan.s0, plan.s0, c0], name: 'g_reshape0' })
    .apply(h) as SymbolicTensor;
  for (let i = 1; i < plan.sides.length; i++) {
    const filters = plan.gWidths[i]!;
    const name = `g_up${i}_conv`;
    if (arch.upsample === 'transpose') {
      h = tfl.layers
        .conv2dTranspose({
          filters,
          kernelSize: 4,
          strides: 2,
          padding: 'same',
          useBias: false,
          kernelInitializer: glorot(spec, name),
          name,
        })
        .apply(h) as SymbolicTensor;
    } else {
      h = tfl.layers
        .upSampling2d({ size: [2, 2], interpolation: 'nearest', name: `g_up${i}_resize` })
        .apply(h) as SymbolicTensor;
      h = tfl.layers
        .conv2d({
          filters,
          kernelSize: 3,
          padding: 'same',
          useBias: false,
          kernelInitializer: glorot(spec, name),
          name,
        })
        .apply(h) as SymbolicTensor;
    }
    h = batchNorm(`g_up${i}_bn`).apply(h) as SymbolicTensor;
    h = tfl.layers.reLU({ name: `g_up${i}_relu` }).apply(h) as SymbolicTensor;
  }
  h = tfl.layers
    .conv2d({
      filters: spec.channels,
      kernelSize: 3,
      padding: 'same',
      kernelInitializer: glorot(spec, 'g_out_conv'),
      name: 'g_out_conv',
    })
    .apply(h) as SymbolicTensor;
  return tfl.layers.activation({ activation: 'tanh', name: 'g_tanh' }).apply(h) as SymbolicTensor;
}

/** The full G of a spec: inputs `[z]` or `[z, labels]`. */
export function buildGenerator(
  spec: GanSpec,
  arch: ArchitectureOptions = DEFAULT_ARCHITECTURE,
): tfl.LayersModel {
  const { z, labels } = generatorInputs(spec);
  const image = generatorTrunk(spec, generatorCode(spec, z, labels), arch);
  return tfl.model({ inputs: labels ? [z, labels] : [z], outputs: image, name: 'G' });
}

// ---------------------------------------------------------------------------------------------------------
// Discriminator

export function imageInput(spec: GanSpec): SymbolicTensor {
  return tfl.input({ shape: [spec.size, spec.size, spec.channels], name: 'd_x' });
}

/** A D conv: spectrally normalised when the spec says so (same weight names either way, plus `sn_u`). */
export function dConv(
  spec: GanSpec,
  name: string,
  filters: number,
  kernelSize: number,
  strides: number,
): SNConv2D {
  return new SNConv2D({
    filters,
    kernelSize,
    strides,
    padding: 'same',
    spectralNorm: spec.spectralNorm,
    seed: subSeed(spec.seed, name),
    name,
  });
}

export function dDense(spec: GanSpec, name: string, units: number): SNDense {
  return new SNDense({ units, spectralNorm: spec.spectralNorm, seed: subSeed(spec.seed, name), name });
}

/** D's body: `[N, S, S, C']` → pooled features `[N, F]`. */
export function discriminatorTrunk(
  spec: GanSpec,
  x: SymbolicTensor,
  labels: SymbolicTensor | null = null,
): SymbolicTensor {
  const plan = ganPlan(spec);
  const last = plan.sides.length - 1;
  let h = dConv(spec, 'd_conv0', plan.dWidths[last]!, 3, 1).apply(x) as SymbolicTensor;
  h = tfl.layers.leakyReLU({ alpha: 0.2, name: 'd_lrelu0' }).apply(h) as SymbolicTensor;
  for (let i = 1; i <= last; i++) {
    h = dConv(spec, `d_down${i}_conv`, plan.dWidths[last - i]!, 4, 2).apply(h) as SymbolicTensor;
    h = tfl.layers.leakyReLU({ alpha: 0.2, name: `d_down${i}_lrelu` }).apply(h) as SymbolicTensor;
  }
  if (spec.minibatchStd) {
    const layer = new MinibatchStdDev({
      name: 'd_mbstd',
      ...(labels ? { numClasses: spec.numClasses } : {}),
    });
    h = layer.apply(labels ? [h, labels] : h) as SymbolicTensor;
  }
  return new GlobalSumPooling2D({ name: 'd_pool' }).apply(h) as SymbolicTensor;
}

/** Real/fake logits `[N, 1]` from pooled features. */
export function adversarialHead(spec: GanSpec, features: SymbolicTensor): SymbolicTensor {
  return dDense(spec, 'd_out', 1).apply(features) as SymbolicTensor;
}

// ---------------------------------------------------------------------------------------------------------

/** The unconditional family: G `[z]` → images, D `[x]` → logits `[N, 1]`. */
export function buildDcgan(spec: GanSpec, arch: ArchitectureOptions = DEFAULT_ARCHITECTURE): GanNetworks {
  const G = buildGenerator(spec, arch);
  const x = imageInput(spec);
  const logits = adversarialHead(spec, discriminatorTrunk(spec, x));
  const D = tfl.model({ inputs: x, outputs: logits, name: 'D' });
  return { spec, G, D };
}
