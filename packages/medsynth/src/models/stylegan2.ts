/**
 * The `stylegan2` family: StyleGAN2-ADA-style networks (Karras et al. 2020a, "Analyzing and improving the
 * image quality of StyleGAN"; 2020b, "Training GANs with limited data"), sized for a CPU. The layers are in
 * equalized.ts (equalised learning rate everywhere) and style-layers.ts (modulation, noise, mean w).
 *
 * G = synthesis ∘ mapping.
 * - Mapping: z ↦ z / √(mean z² + 1e-8); when conditional, ++ the class embedding e = normalise(EqualizedDense
 *   (one-hot(y))) (StyleGAN2-ADA's conditional mapping), then `mappingLayers` × EqualizedDense(wDim) + lrelu
 *   with lrMul 0.01 → w `[N, wDim]`. `WAverage` tracks w̄ per class (training calls: w̄_k ← w̄_k + 0.005·(batch
 *   mean of class k − w̄_k), classes present only) and truncates in inference calls: w ← w̄_y + ψ·(w − w̄_y),
 *   ψ set by `setTruncation`.
 * - Synthesis, one w for every layer (no style mixing): a learned constant s0×s0 (s0 = 7 at 28 px, else 4);
 *   at s0 one modulated 3×3 conv (as StyleGAN2's 4×4 block); at each larger side (×2) a modulated 3×3 conv
 *   on the nearest-×2-upsampled map, then a second one; every modulated conv is followed by noise
 *   (`NoiseInjection`, per-pixel noise × learned per-channel strength) and bias + lrelu·√2. Skip
 *   architecture: every side has a toRGB (modulated 1×1 conv, no demodulation, + bias), added to the bilinear
 *   ×2 upsampled sum of the previous sides; then tanh, so images are in [-1, 1] as every family's. (StyleGAN2
 *   leaves the output linear. Measured here on two 28 px two-class toy sets, 150 steps of batch 32, lazy R1:
 *   on binary discs 99% of tanh's pixels were within 0.3 of ±1 (real: all) against half of the linear
 *   output's, and D's loss stayed near 1.1 where the linear G let D win (0.19); on Gaussian blobs the 1-D
 *   Wasserstein distance of the pixel values to the real ones was 0.03 / 0.07 per class with tanh, 0.17 / 0.11
 *   linear. The linear output starts at std ≈ 1.3 (28 px) to 2 (64 px), ranging about ±10.)
 * D, residual (StyleGAN2's `resnet` D), equalised lr, lrelu·√2:
 * - fromRGB: 1×1 conv at full size. Per side from full down to 2·s0: conv 3×3 (C→C), 2×2 average pool,
 *   conv 3×3 (C→C'); skip: 2×2 average pool, 1×1 conv C→C' without bias; (main + skip)/√2, the √½ folded
 *   into both branches' last conv (StyleGAN2's `gain`). Pooling before the second conv instead of after it is
 *   StyleGAN2's down-sampling conv1 (filter, then stride-2 conv) with a box filter, at ¼ of the cost of a
 *   full-size conv followed by pooling.
 *   The 2×2 average pool is `tf.avgPool` with a differentiable gradient of its own (`Downsample2D`), so that
 *   an R1 penalty (second-order gradients) passes through D.
 *
 * Widths (`styleGan2Plan`): gWidth/dWidth channels at full size, doubled at every halving of the side, capped
 * at maxWidth; G and D share the sides: 28 px → 7, 14, 28; 32 → 4…32; 64 → 4…64; 128 → 4…128. The defaults
 * (gWidth = dWidth = 32, maxWidth 128 below 64 px and 256 from 64 px, zDim = wDim = 128, 2 mapping layers, as
 * StyleGAN2-ADA's small-data configurations) give at 28 px widths 128, 64, 32 (G ≈ 0.43 M parameters, D ≈
 * 1.15 M, conditional) and at 64 px 256, 256, 128, 64, 32 (G ≈ 2.7 M, D ≈ 3.7 M).
 *
 * The modulated convolution needs no grouped convolution: x ⊙ s, one convolution with the shared kernel,
 * then ⊙ d (style-layers.ts). Training noise is `tf.randomNormal` with the seed `setNoiseSeed` gives (one
 * per step, drawn by the loop from its Rng: bit-exact resume); with seed null the noise is each layer's
 * constant buffer (sampling: an image depends only on its z and label).
 *
 * Layer names: mapping `g_map_*`, synthesis `g_b<side>_conv0|conv1|torgb` (+ `_noise`, `_act`), D
 * `d_b<side>_*`, `d_map_*`, `d_out`; every initialiser is seeded with `subSeed(spec.seed, layerName)`.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { EqualizedConv2D, EqualizedDense, PixelNorm } from './equalized.js';
import { MinibatchStdDev, subSeed } from './layers.js';
import {
  BiasActivation,
  ConstantInput,
  Downsample2D,
  ModulatedConv2D,
  NoiseInjection,
  OneHot,
  ProjectionLogit,
  Upsample2D,
  WAverage,
} from './style-layers.js';
import { checkWidthSpec, positiveInteger } from './spec-checks.js';

type SymbolicTensor = tfl.SymbolicTensor;

export const STYLEGAN2_SIZES = [28, 32, 64, 128] as const;
export type StyleGan2Size = (typeof STYLEGAN2_SIZES)[number];

/** The mapping networks' learning-rate multiplier (StyleGAN2). */
export const MAPPING_LR_MUL = 0.01;

/** A fully resolved StyleGAN2 architecture (saved in checkpoints). */
export interface StyleGan2Spec {
  readonly family: 'stylegan2';
  readonly size: StyleGan2Size;
  readonly channels: 1 | 3;
  /** Classes in the data (≥ 1; ≥ 2 when conditional). */
  readonly numClasses: number;
  /** G and D take labels (G: class embedding in the mapping; D: projection). */
  readonly conditional: boolean;
  /** Size of z. */
  readonly zDim: number;
  /** Size of w (and of G's class embedding). */
  readonly wDim: number;
  /** EqualizedDense layers of the mapping networks (G's; D's class mapping has as many). */
  readonly mappingLayers: number;
  /** Channels of G's / D's full-size layers; doubled at every halving of the side, capped at maxWidth. */
  readonly gWidth: number;
  readonly dWidth: number;
  readonly maxWidth: number;
  /** Seed of the weight initialisers (and of the constant noise buffers). */
  readonly seed: number;
}

/** The spec's two networks. */
export interface StyleGan2Networks {
  readonly spec: StyleGan2Spec;
  /** Inputs `[z]` or `[z, labels]` (z float32 `[N, zDim]`, labels int32 `[N]`); output `[N, S, S, C]` in [-1, 1]. */
  readonly G: tfl.LayersModel;
  /** Inputs `[x]` or `[x, labels]`; output logits `[N, 1]`. */
  readonly D: tfl.LayersModel;
}

/** The resolved layout of one spec's networks. */
export interface StyleGan2Plan {
  /** Side of the learned constant and of D's last block. */
  readonly s0: number;
  /** Sides from s0 up to the image size, doubling. */
  readonly sides: readonly number[];
  /** G's channels at each side of `sides`. */
  readonly gWidths: readonly number[];
  /** D's channels at each side of `sides`. */
  readonly dWidths: readonly number[];
  /** Size of D's projection (its s0 width); 0 when unconditional. */
  readonly cmapDim: number;
}

/** A complete spec from a partial one (a 28×28×1, 2-class conditional one unless told otherwise). Validated, frozen. */
export function defaultStyleGan2Spec(partial: Partial<StyleGan2Spec> = {}): StyleGan2Spec {
  const size = partial.size ?? 28;
  const numClasses = partial.numClasses ?? 2;
  const spec: StyleGan2Spec = {
    family: 'stylegan2',
    size,
    channels: partial.channels ?? 1,
    numClasses,
    conditional: partial.conditional ?? numClasses > 1,
    zDim: partial.zDim ?? 128,
    wDim: partial.wDim ?? 128,
    mappingLayers: partial.mappingLayers ?? 2,
    gWidth: partial.gWidth ?? 32,
    dWidth: partial.dWidth ?? 32,
    maxWidth: partial.maxWidth ?? (size >= 64 ? 256 : 128),
    seed: partial.seed ?? 0,
  };
  validateStyleGan2Spec(spec);
  return Object.freeze(spec);
}

/** Throws a RangeError naming the field when `spec` cannot be built (specs also come from checkpoint files). */
export function validateStyleGan2Spec(spec: StyleGan2Spec): void {
  checkWidthSpec('StyleGan2Spec', spec, ['stylegan2'], STYLEGAN2_SIZES);
  if (typeof spec.conditional !== 'boolean')
    throw new RangeError(`StyleGan2Spec.conditional must be a boolean, got ${String(spec.conditional)}`);
  if (spec.conditional && spec.numClasses < 2)
    throw new RangeError(`StyleGan2Spec.numClasses must be ≥ 2 when conditional, got ${spec.numClasses}`);
  positiveInteger('StyleGan2Spec', spec.wDim, 'wDim');
  positiveInteger('StyleGan2Spec', spec.mappingLayers, 'mappingLayers');
}

export function styleGan2Plan(spec: StyleGan2Spec): StyleGan2Plan {
  const s0 = spec.size === 28 ? 7 : 4;
  const sides: number[] = [];
  for (let s = s0; s <= spec.size; s *= 2) sides.push(s);
  if (sides[sides.length - 1] !== spec.size) throw new RangeError(`size ${spec.size} is not s0·2^k`);
  const width = (base: number, side: number) =>
    Math.min(spec.maxWidth, base * 2 ** Math.round(Math.log2(spec.size / side)));
  const dWidths = sides.map((s) => width(spec.dWidth, s));
  return {
    s0,
    sides,
    gWidths: sides.map((s) => width(spec.gWidth, s)),
    dWidths,
    cmapDim: spec.conditional ? dWidths[0]! : 0,
  };
}

function seedOf(spec: StyleGan2Spec, name: string): number {
  return subSeed(spec.seed, name);
}

function dense(
  spec: StyleGan2Spec,
  name: string,
  units: number,
  opts: { lrMul?: number; activation?: 'none' | 'lrelu' } = {},
): EqualizedDense {
  return new EqualizedDense({ units, ...opts, seed: seedOf(spec, name), name });
}

function conv(
  spec: StyleGan2Spec,
  name: string,
  filters: number,
  kernelSize: number,
  opts: { useBias?: boolean; activation?: 'none' | 'lrelu'; gain?: number } = {},
): EqualizedConv2D {
  return new EqualizedConv2D({ filters, kernelSize, ...opts, seed: seedOf(spec, name), name });
}

/**
 * A class mapping (`prefix` g_map / d_map): one-hot → EqualizedDense(dim) → normalise; for D then
 * `mappingLayers` EqualizedDense(dim) + lrelu at lrMul 0.01 (G's layers follow the concatenation with z).
 */
function classEmbedding(
  spec: StyleGan2Spec,
  prefix: string,
  labels: SymbolicTensor,
  dim: number,
): SymbolicTensor {
  let e = new OneHot({ numClasses: spec.numClasses, name: `${prefix}_onehot` }).apply(
    labels,
  ) as SymbolicTensor;
  e = dense(spec, `${prefix}_embed`, dim).apply(e) as SymbolicTensor;
  return new PixelNorm({ name: `${prefix}_ynorm` }).apply(e) as SymbolicTensor;
}

function mappingStack(spec: StyleGan2Spec, prefix: string, h: SymbolicTensor, dim: number): SymbolicTensor {
  let out = h;
  for (let i = 0; i < spec.mappingLayers; i++)
    out = dense(spec, `${prefix}_fc${i}`, dim, { lrMul: MAPPING_LR_MUL, activation: 'lrelu' }).apply(
      out,
    ) as SymbolicTensor;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Generator

function buildGenerator(spec: StyleGan2Spec, plan: StyleGan2Plan): tfl.LayersModel {
  const z = tfl.input({ shape: [spec.zDim], name: 'g_z' });
  const labels = spec.conditional
    ? tfl.input({ batchShape: [null], dtype: 'int32', name: 'g_labels' })
    : null;

  // Mapping.
  let h = new PixelNorm({ name: 'g_map_znorm' }).apply(z) as SymbolicTensor;
  if (labels) {
    const e = classEmbedding(spec, 'g_map', labels, spec.wDim);
    h = tfl.layers.concatenate({ axis: -1, name: 'g_map_concat' }).apply([h, e]) as SymbolicTensor;
  }
  h = mappingStack(spec, 'g_map', h, spec.wDim);
  const w = new WAverage({ numClasses: labels ? spec.numClasses : 1, name: 'g_map_wavg' }).apply(
    labels ? [h, labels] : h,
  ) as SymbolicTensor;

  // Synthesis.
  let noiseIndex = 0;
  const styled = (x: SymbolicTensor, name: string, filters: number, upsample: boolean): SymbolicTensor => {
    let y = new ModulatedConv2D({
      filters,
      kernelSize: 3,
      upsample,
      seed: seedOf(spec, name),
      name,
    }).apply([x, w]) as SymbolicTensor;
    y = new NoiseInjection({
      noiseIndex: noiseIndex++,
      seed: seedOf(spec, `${name}_noise`),
      name: `${name}_noise`,
    }).apply(y) as SymbolicTensor;
    return new BiasActivation({ activation: 'lrelu', name: `${name}_act` }).apply(y) as SymbolicTensor;
  };
  const toRgb = (x: SymbolicTensor, side: number): SymbolicTensor => {
    const name = `g_b${side}_torgb`;
    const y = new ModulatedConv2D({
      filters: spec.channels,
      kernelSize: 1,
      demodulate: false,
      seed: seedOf(spec, name),
      name,
    }).apply([x, w]) as SymbolicTensor;
    return new BiasActivation({ activation: 'none', name: `${name}_act` }).apply(y) as SymbolicTensor;
  };

  const s0 = plan.sides[0]!;
  let x = new ConstantInput({
    side: s0,
    channels: plan.gWidths[0]!,
    seed: seedOf(spec, 'g_const'),
    name: 'g_const',
  }).apply(w) as SymbolicTensor;
  x = styled(x, `g_b${s0}_conv1`, plan.gWidths[0]!, false);
  let img = toRgb(x, s0);
  for (let i = 1; i < plan.sides.length; i++) {
    const side = plan.sides[i]!;
    x = styled(x, `g_b${side}_conv0`, plan.gWidths[i]!, true);
    x = styled(x, `g_b${side}_conv1`, plan.gWidths[i]!, false);
    const up = new Upsample2D({ interpolation: 'bilinear', name: `g_b${side}_rgb_up` }).apply(
      img,
    ) as SymbolicTensor;
    img = tfl.layers.add({ name: `g_b${side}_rgb` }).apply([up, toRgb(x, side)]) as SymbolicTensor;
  }
  const out = tfl.layers.activation({ activation: 'tanh', name: 'g_tanh' }).apply(img) as SymbolicTensor;
  return tfl.model({ inputs: labels ? [z, labels] : [z], outputs: out, name: 'G' });
}

// ---------------------------------------------------------------------------------------------------------
// Discriminator

function avgPool(name: string): Downsample2D {
  return new Downsample2D({ name });
}

function buildDiscriminator(spec: StyleGan2Spec, plan: StyleGan2Plan): tfl.LayersModel {
  const x = tfl.input({ shape: [spec.size, spec.size, spec.channels], name: 'd_x' });
  const labels = spec.conditional
    ? tfl.input({ batchShape: [null], dtype: 'int32', name: 'd_labels' })
    : null;
  const last = plan.sides.length - 1;
  let h = conv(spec, `d_b${spec.size}_fromrgb`, plan.dWidths[last]!, 1, { activation: 'lrelu' }).apply(
    x,
  ) as SymbolicTensor;
  for (let i = last; i >= 1; i--) {
    const side = plan.sides[i]!;
    const cin = plan.dWidths[i]!;
    const cout = plan.dWidths[i - 1]!;
    const p = `d_b${side}`;
    let skip = avgPool(`${p}_skip_pool`).apply(h) as SymbolicTensor;
    skip = conv(spec, `${p}_skip`, cout, 1, { useBias: false, gain: Math.SQRT1_2 }).apply(
      skip,
    ) as SymbolicTensor;
    let t = conv(spec, `${p}_conv0`, cin, 3, { activation: 'lrelu' }).apply(h) as SymbolicTensor;
    t = avgPool(`${p}_pool`).apply(t) as SymbolicTensor;
    t = conv(spec, `${p}_conv1`, cout, 3, { activation: 'lrelu', gain: Math.SQRT1_2 }).apply(
      t,
    ) as SymbolicTensor;
    h = tfl.layers.add({ name: `${p}_sum` }).apply([t, skip]) as SymbolicTensor;
  }
  const s0 = plan.sides[0]!;
  const c0 = plan.dWidths[0]!;
  const mbstd = new MinibatchStdDev({ name: 'd_mbstd', ...(labels ? { numClasses: spec.numClasses } : {}) });
  h = mbstd.apply(labels ? [h, labels] : h) as SymbolicTensor;
  h = conv(spec, `d_b${s0}_conv`, c0, 3, { activation: 'lrelu' }).apply(h) as SymbolicTensor;
  h = tfl.layers.flatten({ name: 'd_flatten' }).apply(h) as SymbolicTensor;
  h = dense(spec, 'd_fc', c0, { activation: 'lrelu' }).apply(h) as SymbolicTensor;
  let logits: SymbolicTensor;
  if (labels) {
    const out = dense(spec, 'd_out', plan.cmapDim).apply(h) as SymbolicTensor;
    const cmap = mappingStack(
      spec,
      'd_map',
      classEmbedding(spec, 'd_map', labels, plan.cmapDim),
      plan.cmapDim,
    );
    logits = new ProjectionLogit({ name: 'd_logits' }).apply([out, cmap]) as SymbolicTensor;
  } else {
    logits = dense(spec, 'd_out', 1).apply(h) as SymbolicTensor;
  }
  return tfl.model({ inputs: labels ? [x, labels] : [x], outputs: logits, name: 'D' });
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Builds the spec's G and D (models named 'G' and 'D'). Same spec → bit-identical initial weights (and
 * constant noise); G's noise seed starts null (constant noise) and its truncation ψ at 1.
 */
export function buildStyleGan2(spec: StyleGan2Spec): StyleGan2Networks {
  validateStyleGan2Spec(spec);
  const frozen: StyleGan2Spec = Object.isFrozen(spec) ? spec : Object.freeze({ ...spec });
  const plan = styleGan2Plan(frozen);
  return { spec: frozen, G: buildGenerator(frozen, plan), D: buildDiscriminator(frozen, plan) };
}

/** G's noise layers, in noise-index order. */
export function noiseLayers(G: tfl.LayersModel): NoiseInjection[] {
  return G.layers
    .filter((l): l is NoiseInjection => l instanceof NoiseInjection)
    .sort((a, b) => a.noiseIndex - b.noiseIndex);
}

/** G's mean-w layer (throws when G is not a StyleGAN2 generator). */
export function wAverageLayer(G: tfl.LayersModel): WAverage {
  const layer = G.layers.find((l): l is WAverage => l instanceof WAverage);
  if (!layer) throw new RangeError(`model '${G.name}' has no WAverage layer: not a StyleGAN2 generator`);
  return layer;
}

/**
 * Noise of G's following calls: a seed → fresh `tf.randomNormal` noise from seed + layer index (training;
 * the loop draws one seed per forward pass); null → every layer's constant buffer (sampling).
 */
export function setNoiseSeed(G: tfl.LayersModel, seed: number | null): void {
  if (seed !== null && !Number.isSafeInteger(seed))
    throw new RangeError(`noise seed must be an integer or null, got ${String(seed)}`);
  const layers = noiseLayers(G);
  if (layers.length === 0)
    throw new RangeError(`model '${G.name}' has no noise inputs: not a StyleGAN2 generator`);
  for (const l of layers) l.noiseSeed = seed;
}

/** Truncation ψ of G's following inference calls: w ← w̄_y + ψ·(w − w̄_y) (1 = none; training calls ignore it). */
export function setTruncation(G: tfl.LayersModel, psi: number): void {
  if (typeof psi !== 'number' || !Number.isFinite(psi))
    throw new RangeError(`truncation psi must be a finite number, got ${String(psi)}`);
  wAverageLayer(G).psi = psi;
}
