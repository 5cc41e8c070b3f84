/**
 * The denoising network of a diffusion model: a class- and timestep-conditioned U-Net ε̂(x_t, t, y) in the style
 * of DDPM (Ho et al. 2020) and improved DDPM (Nichol & Dhariwal 2021, `improved-diffusion/unet.py`), sized for
 * CPUs. Inputs, in this order: x `[N,S,S,C]` float32 (the noisy image), t `[N,1]` float32 (the timestep, a
 * real number in [0, 1000)), labels `[N]` int32 in 0..K where K = numClasses is "no label" (the null class of
 * classifier-free guidance). Output: ε̂ `[N,S,S,C]` float32, linear.
 * Call it with `model.apply` (or `predictNoise`): `model.predict` cannot take the 1-D labels input.
 *
 * Conditioning: emb = Dense(4w)(SiLU(Dense(4w)(sinusoid_w(t)))) + E[y], E `[K+1, 4w]` ~ N(0, 1) (a learned row per
 * class plus the null class), w = `width`. Every residual block adds its own Dense(SiLU(emb)) to its features.
 * SiLU(x) = x·sigmoid(x) is the `SiLU` layer and GN the `GroupNorm` layer of layers.ts: each runs as one fused
 * kernel forward and one backward where the backend has them (libtorch; first-order gradients only), as
 * composed TF.js ops elsewhere.
 *
 * Layout, level l = 0..L−1 at side S/2^l with c_l = width·mults[l] channels:
 *   stem: Conv3×3 → width
 *   down: per level `blocksPerLevel` ResBlocks → c_l, then (not at the last level) a stride-2 Conv3×3 'same';
 *         the stem output, each ResBlock output and each downsample output are kept as skips.
 *   middle: ResBlock, [self-attention], ResBlock at the lowest resolution (c_{L−1} channels).
 *   up: per level (from L−1 to 0) `blocksPerLevel + 1` ResBlocks → c_l, each on concat(h, last skip); then (not
 *       at level 0) nearest 2× upsampling + Conv3×3.
 *   out: GroupNorm → SiLU → Conv3×3 → C.
 * ResBlock(h, emb) = skip(h) + Conv3×3(SiLU(GN(Conv3×3(SiLU(GN(h))) + Dense(SiLU(emb))))), skip a 1×1 conv
 * when the channel count changes, else the identity (no dropout). Attention(h) = h + proj(softmax(q·kᵀ/√c)·v)
 * with q, k, v, proj 1×1 convs of GN(h) over the H·W positions (single head).
 *
 * Initialisation (improved DDPM): the last conv of every ResBlock, the attention's output projection and the
 * output conv are zero: each block starts as its skip path (identity) and the network's first output is ε̂ = 0.
 * Every other conv/dense kernel is Glorot-uniform seeded with `subSeed(seed, layerName)`, biases zero,
 * GroupNorm γ = 1 and β = 0: the same seed builds bit-identical weights. (Consequence: at initialisation only
 * the output conv receives a gradient; after one optimiser step the zero layers are non-zero and gradients
 * reach every weight.)
 *
 * GroupNorm groups: `groupCount(c)` = 32 when c ≥ 256 and 32 | c, else min(8, c); every normalised channel
 * count (including the up path's concatenations) must be divisible by it, which `checkUNetSpec` checks.
 * Sides: the stride-2 'same' convs give ⌈s/2⌉, so S must be divisible by 2^(L−1) for the up path's sizes to
 * match (28 → 14 → 7 with three levels; 64 → 32 → 16 → 8 with four).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { subSeed } from '../layers.js';
import { positiveInteger } from '../spec-checks.js';
import { BroadcastAdd, GroupNorm, SiLU, SpatialAttention, TimestepEmbedding } from './layers.js';

export { timestepEmbedding } from './layers.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** Image sides the U-Net is built for. */
export const UNET_SIZES = [28, 32, 64, 128] as const;

export interface UNetSpec {
  /** Image side: 28, 32, 64 or 128. */
  readonly size: number;
  readonly channels: 1 | 3;
  /** ≥ 1. Labels take 0..numClasses; numClasses is "no label" (classifier-free guidance's null class). */
  readonly numClasses: number;
  /** Channels of the first level (even: it is also the size of the sinusoidal timestep embedding). */
  readonly width: number;
  /** Channel multiplier per level, e.g. [1, 2, 2] at 28 px (28 → 14 → 7), [1, 2, 2, 2] at 64 px. */
  readonly mults: readonly number[];
  /** Residual blocks per level on the way down (the way up has one more per level). */
  readonly blocksPerLevel: number;
  /** One self-attention block in the middle, at the lowest resolution. */
  readonly attention: boolean;
  /** Weight-initialiser seed: the same seed builds identical weights. */
  readonly seed: number;
}

/** GroupNorm groups for c channels: 32 when c ≥ 256 and divisible by 32, else min(8, c). */
export function groupCount(channels: number): number {
  return channels >= 256 && channels % 32 === 0 ? 32 : Math.min(8, channels);
}

/** The channel counts every GroupNorm of the network sees, in build order (for the divisibility check). */
function normalisedChannels(spec: UNetSpec): number[] {
  const out: number[] = [];
  const levels = spec.mults.map((m) => spec.width * m);
  const skips: number[] = [spec.width];
  let ch = spec.width;
  levels.forEach((c, l) => {
    for (let b = 0; b < spec.blocksPerLevel; b++) {
      out.push(ch, c);
      ch = c;
      skips.push(ch);
    }
    if (l < levels.length - 1) skips.push(ch);
  });
  out.push(ch, ch); // middle ResBlock
  if (spec.attention) out.push(ch);
  out.push(ch, ch);
  for (let l = levels.length - 1; l >= 0; l--) {
    const c = levels[l]!;
    for (let b = 0; b <= spec.blocksPerLevel; b++) {
      out.push(ch + skips.pop()!, c);
      ch = c;
    }
  }
  out.push(ch); // output norm
  return out;
}

/**
 * Validates a spec (specs come back from checkpoint files): a RangeError naming `UNetSpec.<field>` for any
 * value the builder cannot use.
 */
export function checkUNetSpec(spec: UNetSpec): void {
  const type = 'UNetSpec';
  if (spec === null || typeof spec !== 'object') throw new RangeError(`${type} must be an object`);
  if (!(UNET_SIZES as readonly unknown[]).includes(spec.size))
    throw new RangeError(`${type}.size must be one of ${UNET_SIZES.join(', ')}, got ${String(spec.size)}`);
  if (spec.channels !== 1 && spec.channels !== 3)
    throw new RangeError(`${type}.channels must be 1 or 3, got ${String(spec.channels)}`);
  positiveInteger(type, spec.numClasses, 'numClasses');
  positiveInteger(type, spec.width, 'width');
  if (spec.width % 2 !== 0)
    throw new RangeError(
      `${type}.width must be even (it is the timestep embedding's size), got ${spec.width}`,
    );
  if (!Array.isArray(spec.mults) || spec.mults.length < 1)
    throw new RangeError(`${type}.mults must be a non-empty array of positive integers`);
  spec.mults.forEach((m, i) => positiveInteger(type, m, `mults[${i}]`));
  const levels = spec.mults.length;
  const factor = 2 ** (levels - 1);
  if (spec.size % factor !== 0)
    throw new RangeError(
      `${type}.mults: ${levels} levels halve the side ${levels - 1} times, so size ${spec.size} must be ` +
        `divisible by ${factor}`,
    );
  positiveInteger(type, spec.blocksPerLevel, 'blocksPerLevel');
  if (typeof spec.attention !== 'boolean')
    throw new RangeError(`${type}.attention must be a boolean, got ${String(spec.attention)}`);
  if (typeof spec.seed !== 'number' || !Number.isSafeInteger(spec.seed))
    throw new RangeError(`${type}.seed must be an integer, got ${String(spec.seed)}`);
  for (const c of normalisedChannels(spec)) {
    const g = groupCount(c);
    if (c % g !== 0)
      throw new RangeError(
        `${type}.width: a GroupNorm sees ${c} channels (width ${spec.width}, mults [${spec.mults.join(', ')}]), ` +
          `not divisible by its ${g} groups; use a width divisible by 8`,
      );
  }
}

// ---------------------------------------------------------------------------------------------------------

function glorot(spec: UNetSpec, name: string) {
  return tfl.initializers.glorotUniform({ seed: subSeed(spec.seed, name) });
}

function channelsOf(h: SymbolicTensor): number {
  const c = h.shape[h.shape.length - 1];
  if (typeof c !== 'number') throw new RangeError('buildUNet: unknown channel count');
  return c;
}

function conv(
  spec: UNetSpec,
  name: string,
  filters: number,
  kernelSize: 1 | 3,
  options: { strides?: 1 | 2; zero?: boolean } = {},
): tfl.layers.Layer {
  return tfl.layers.conv2d({
    filters,
    kernelSize,
    strides: options.strides ?? 1,
    padding: 'same',
    kernelInitializer: options.zero === true ? tfl.initializers.zeros() : glorot(spec, name),
    biasInitializer: tfl.initializers.zeros(),
    name,
  });
}

function dense(spec: UNetSpec, name: string, units: number): tfl.layers.Layer {
  return tfl.layers.dense({
    units,
    kernelInitializer: glorot(spec, name),
    biasInitializer: tfl.initializers.zeros(),
    name,
  });
}

function silu(name: string): tfl.layers.Layer {
  // x·sigmoid(x): one fused kernel each way on libtorch, tfjs-layers' 'swish' maths elsewhere (layers.ts).
  return new SiLU({ name });
}

function norm(name: string, h: SymbolicTensor): SymbolicTensor {
  return new GroupNorm({ groups: groupCount(channelsOf(h)), name }).apply(h) as SymbolicTensor;
}

function apply(layer: tfl.layers.Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
  return layer.apply(x) as SymbolicTensor;
}

/** skip(h) + Conv(SiLU(GN(Conv(SiLU(GN(h))) + Dense(embAct)))), the last conv zero-initialised. */
function resBlock(
  spec: UNetSpec,
  name: string,
  h: SymbolicTensor,
  embAct: SymbolicTensor,
  outC: number,
): SymbolicTensor {
  const inC = channelsOf(h);
  let y = apply(silu(`${name}_silu0`), norm(`${name}_norm0`, h));
  y = apply(conv(spec, `${name}_conv0`, outC, 3), y);
  const e = apply(dense(spec, `${name}_emb`, outC), embAct);
  y = apply(new BroadcastAdd({ name: `${name}_add_emb` }), [y, e]);
  y = apply(silu(`${name}_silu1`), norm(`${name}_norm1`, y));
  y = apply(conv(spec, `${name}_conv1`, outC, 3, { zero: true }), y);
  const skip = inC === outC ? h : apply(conv(spec, `${name}_skip`, outC, 1), h);
  return apply(tfl.layers.add({ name: `${name}_out` }), [skip, y]);
}

/** h + proj(attention(q, k, v of GN(h))), proj zero-initialised. */
function attentionBlock(spec: UNetSpec, name: string, h: SymbolicTensor): SymbolicTensor {
  const c = channelsOf(h);
  const n = norm(`${name}_norm`, h);
  const q = apply(conv(spec, `${name}_q`, c, 1), n);
  const k = apply(conv(spec, `${name}_k`, c, 1), n);
  const v = apply(conv(spec, `${name}_v`, c, 1), n);
  const a = apply(new SpatialAttention({ name: `${name}_attend` }), [q, k, v]);
  const p = apply(conv(spec, `${name}_proj`, c, 1, { zero: true }), a);
  return apply(tfl.layers.add({ name: `${name}_out` }), [h, p]);
}

/**
 * The U-Net of a spec (see the module header): inputs `[x [N,S,S,C], t [N,1], labels [N] int32]`, output
 * ε̂ `[N,S,S,C]`. Validates the spec first.
 */
export function buildUNet(spec: UNetSpec): tfl.LayersModel {
  checkUNetSpec(spec);
  const { size, channels, width } = spec;
  const embDim = 4 * width;
  const x = tfl.input({ batchShape: [null, size, size, channels], dtype: 'float32', name: 'x' });
  const t = tfl.input({ batchShape: [null, 1], dtype: 'float32', name: 't' });
  const labels = tfl.input({ batchShape: [null], dtype: 'int32', name: 'labels' });

  // Conditioning vector.
  let temb = apply(new TimestepEmbedding({ dim: width, name: 'time_sinusoid' }), t);
  temb = apply(dense(spec, 'time_dense0', embDim), temb);
  temb = apply(silu('time_silu'), temb);
  temb = apply(dense(spec, 'time_dense1', embDim), temb);
  const cemb = apply(
    tfl.layers.embedding({
      inputDim: spec.numClasses + 1,
      outputDim: embDim,
      embeddingsInitializer: tfl.initializers.randomNormal({
        mean: 0,
        stddev: 1,
        seed: subSeed(spec.seed, 'class_embed'),
      }),
      name: 'class_embed',
    }),
    labels,
  );
  const emb = apply(tfl.layers.add({ name: 'emb' }), [temb, cemb]);
  const embAct = apply(silu('emb_silu'), emb);

  // Down.
  let h = apply(conv(spec, 'stem', width, 3), x);
  const skips: SymbolicTensor[] = [h];
  const last = spec.mults.length - 1;
  spec.mults.forEach((m, l) => {
    for (let b = 0; b < spec.blocksPerLevel; b++) {
      h = resBlock(spec, `down${l}_res${b}`, h, embAct, width * m);
      skips.push(h);
    }
    if (l < last) {
      h = apply(conv(spec, `down${l}_down`, channelsOf(h), 3, { strides: 2 }), h);
      skips.push(h);
    }
  });

  // Middle.
  const mid = channelsOf(h);
  h = resBlock(spec, 'mid_res0', h, embAct, mid);
  if (spec.attention) h = attentionBlock(spec, 'mid_attn', h);
  h = resBlock(spec, 'mid_res1', h, embAct, mid);

  // Up.
  for (let l = last; l >= 0; l--) {
    const c = width * spec.mults[l]!;
    for (let b = 0; b <= spec.blocksPerLevel; b++) {
      const skip = skips.pop()!;
      h = apply(tfl.layers.concatenate({ axis: -1, name: `up${l}_cat${b}` }), [h, skip]);
      h = resBlock(spec, `up${l}_res${b}`, h, embAct, c);
    }
    if (l > 0) {
      h = apply(
        tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: `up${l}_resize` }),
        h,
      );
      h = apply(conv(spec, `up${l}_up`, c, 3), h);
    }
  }

  // Out.
  h = apply(silu('out_silu'), norm('out_norm', h));
  const eps = apply(conv(spec, 'out_conv', channels, 3, { zero: true }), h);
  return tfl.model({ inputs: [x, t, labels], outputs: eps, name: 'unet' });
}

/**
 * ε̂ for one batch, `model.apply` inside `tf.tidy`. Use this (or `model.apply`), not `model.predict`: tfjs-layers'
 * `predict` reshapes 1-D inputs to `[N, 1]` and then rejects them against the `[N]` labels input.
 */
export function predictNoise(
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  t: tf.Tensor2D,
  labels: tf.Tensor1D,
  training = false,
): tf.Tensor4D {
  return tf.tidy(() => model.apply([x, t, labels], { training }) as tf.Tensor4D);
}
