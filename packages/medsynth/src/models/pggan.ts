/**
 * The progressive-growing GAN (Karras et al. 2018, "Progressive growing of GANs for improved quality, stability,
 * and variation"): networks for every resolution level L = 0 … K (sides s_L = s0·2^L, s0 = 7 at 28 px and 4
 * otherwise), built once from shared layer objects, so growing never copies a weight.
 *
 * G: z → PixelNorm (++ a class embedding N(0, 1) when numClasses > 1) → dense to s0×s0×c0, LReLU, PixelNorm →
 *    conv 3×3, LReLU, PixelNorm (the base block, h_0); block L ≥ 1: nearest ×2 upsample → 2 × (conv 3×3, LReLU,
 *    PixelNorm) (h_L). toRGB_L: conv 1×1, linear. G_L(z) = toRGB_0(h_0) at L = 0, else the fade-in
 *      G_L = α·toRGB_L(h_L) + (1 − α)·up(toRGB_{L−1}(h_{L−1})).
 * D: fromRGB_L: conv 1×1, LReLU. Block L ≥ 1: conv 3×3, LReLU, conv 3×3, LReLU, 2×2 average pool. The base:
 *    minibatch stddev (grouped by class when conditional) → conv 3×3, LReLU → flatten → dense, LReLU → dense → 1,
 *    plus the projection term Σ embed(y) ⊙ f (Miyato & Koyama) on those dense features when conditional.
 *      D_L(x) = base(block_1(… block_{L−1}(α·block_L(fromRGB_L(x)) + (1 − α)·fromRGB_{L−1}(avgpool(x))) …)).
 * Every conv and dense layer has an equalised learning rate (`EqualizedConv2D`, `EqualizedDense`: N(0, 1) weights
 * scaled by 1/√fan_in at run time; their `lrelu` is LeakyReLU(0.2)·√2, the He gain); G's output is linear (the
 * sampler clips it to [−1, 1]).
 *
 * α lives in each level's `PgganFadeIn` layer as a plain JS number (not a weight): the trainer sets it per step
 * from its schedule, and its checkpoints store it in their JSON state. The 2×2 average pool is a reshape and a
 * mean, whose gradient is itself differentiable (R1 and WGAN-GP differentiate D's input gradient again; TF.js
 * has no gradient of `AvgPoolGrad`).
 *
 * Widths as `ganPlan` in dcgan.ts: `gWidth`/`dWidth` channels at full and half resolution, doubled at every side
 * below, capped at `maxWidth`. D's block L maps w_L → w_L → w_{L−1}; fromRGB_L gives w_L.
 *
 * Layer names are explicit (`g_dense0`, `g_b2_conv1`, `g_rgb2`, `d_rgb1`, `d_b3_conv0`, `d_out`…) and every
 * initialiser is seeded with `subSeed(spec.seed, name)`: one spec builds bit-identical networks any number of
 * times in one process (G and its EMA copy); weights are named `<layer>/<weight>`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { EqualizedConv2D, EqualizedDense, PixelNorm } from './equalized.js';
import { LabelProjection, LAYERS_PACKAGE, MinibatchStdDev, subSeed } from './layers.js';
import { checkWidthSpec } from './spec-checks.js';
import { downsampleBox2x } from './style-layers.js';

type SymbolicTensor = tfl.SymbolicTensor;
type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type LayerVariable = tfl.LayerVariable;

export const PGGAN_SIZES = [28, 32, 64, 128] as const;
export type PgganSize = (typeof PGGAN_SIZES)[number];

/** A fully resolved progressive GAN (saved in run.json and every checkpoint). */
export interface PgganSpec {
  readonly family: 'pggan';
  readonly size: PgganSize;
  readonly channels: 1 | 3;
  /** Classes in the data (≥ 1); conditional (label embedding in G, projection in D) when > 1. */
  readonly numClasses: number;
  readonly zDim: number;
  /** Channels of G's / D's blocks at full and half resolution; doubled at every side below, capped. */
  readonly gWidth: number;
  readonly dWidth: number;
  readonly maxWidth: number;
  /** Seed of the weight initialisers. */
  readonly seed: number;
}

/** A complete spec from a partial one: a 28×28×1, 2-class PGGAN unless told otherwise. Validated, frozen. */
export function defaultPgganSpec(partial: Partial<PgganSpec> = {}): PgganSpec {
  const size = partial.size ?? 28;
  const spec: PgganSpec = {
    family: 'pggan',
    size,
    channels: partial.channels ?? 1,
    numClasses: partial.numClasses ?? 2,
    zDim: partial.zDim ?? 128,
    gWidth: partial.gWidth ?? 32,
    dWidth: partial.dWidth ?? 32,
    maxWidth: partial.maxWidth ?? (size >= 128 ? 256 : 128),
    seed: partial.seed ?? 0,
  };
  validatePgganSpec(spec);
  return Object.freeze(spec);
}

/** Throws a RangeError naming the field when `spec` cannot be built (specs also come from checkpoint files). */
export function validatePgganSpec(spec: PgganSpec): void {
  checkWidthSpec('PgganSpec', spec, ['pggan'], PGGAN_SIZES);
}

/** The resolved layout of one spec's networks. */
export interface PgganPlan {
  /** The base side (level 0). */
  readonly s0: number;
  /** Side of every level: `[7, 14, 28]`, `[4, 8, 16, 32, 64]`. */
  readonly sides: readonly number[];
  /** G's channels at each level (the base block's, then block L's). */
  readonly gWidths: readonly number[];
  /** D's channels at each level (fromRGB_L's and block L's first conv's). */
  readonly dWidths: readonly number[];
  /** Size of G's label embedding (0 when unconditional). */
  readonly labelDim: number;
}

/** Whether the spec is class-conditional (more than one class). */
export function pgganConditional(spec: Pick<PgganSpec, 'numClasses'>): boolean {
  return spec.numClasses > 1;
}

export function pgganPlan(spec: PgganSpec): PgganPlan {
  const s0 = spec.size === 28 ? 7 : 4;
  const sides: number[] = [];
  for (let s = s0; s <= spec.size; s *= 2) sides.push(s);
  if (sides[sides.length - 1] !== spec.size) throw new RangeError(`size ${spec.size} is not s0·2^k`);
  const halvings = (side: number) => Math.round(Math.log2(spec.size / side));
  const capped = (base: number, side: number) =>
    Math.min(spec.maxWidth, base * 2 ** Math.max(0, halvings(side) - 1));
  return {
    s0,
    sides,
    gWidths: sides.map((s) => capped(spec.gWidth, s)),
    dWidths: sides.map((s) => capped(spec.dWidth, s)),
    labelDim: pgganConditional(spec) ? Math.min(spec.zDim, 64) : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Resampling and fade-in (differentiable to any order).

/** Mean over f×f blocks: `[N, H, W, C]` → `[N, H/f, W/f, C]` (f = 1: x itself). */
export function avgPoolBy(x: tf.Tensor4D, factor: number): tf.Tensor4D {
  if (factor === 1) return x;
  const [n, h, w, c] = x.shape;
  if (h % factor !== 0 || w % factor !== 0)
    throw new RangeError(`avgPoolBy: ${h}×${w} is not divisible by ${factor}`);
  // Powers of two: repeated 2×2 box averages (tf.avgPool with a differentiable gradient of its own, so R1
  // passes through; measured at 64 px, the reshape-and-mean form below was 11 % of a step's kernel time).
  if ((factor & (factor - 1)) === 0) {
    return tf.tidy(() => {
      let y = x;
      for (let f = factor; f > 1; f /= 2) y = downsampleBox2x(y);
      return y;
    });
  }
  return tf.tidy(() => tf.mean(tf.reshape(x, [n, h / factor, factor, w / factor, factor, c]), [2, 4]));
}

/** Nearest-neighbour upsampling by an integer factor (f = 1: x itself). */
export function upsampleBy(x: tf.Tensor4D, factor: number): tf.Tensor4D {
  if (factor === 1) return x;
  const [, h, w] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [h * factor, w * factor]);
}

function oneShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
  return (Array.isArray(inputShape[0]) ? (inputShape as tfl.Shape[])[0] : inputShape) as tfl.Shape;
}

/** 2×2 average pooling as a reshape and a mean (see the module header). No weights. */
export class PgganDownsample extends tfl.layers.Layer {
  static readonly className = 'PgganDownsample';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w, c] = oneShape(inputShape);
    const half = (s: number | null | undefined) => (typeof s === 'number' ? s / 2 : null);
    return [n ?? null, half(h), half(w), c ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return avgPoolBy(x, 2);
  }
}

/**
 * The fade-in: inputs `[new, old]` (same shape) → α·new + (1 − α)·old, α a JS number in [0, 1] set by the
 * trainer (1 after building). Both terms are always computed, so a level's variables and their order (and
 * the optimizer's state) do not change between its fade and stable phases.
 */
export class PgganFadeIn extends tfl.layers.Layer {
  static readonly className = 'PgganFadeIn';
  #alpha = 1;

  constructor(args: LayerArgs = {}) {
    super(args);
  }

  get alpha(): number {
    return this.#alpha;
  }

  set alpha(value: number) {
    if (!(value >= 0 && value <= 1))
      throw new RangeError(`PgganFadeIn alpha must be in [0, 1], got ${value}`);
    // As float32, so that a network given α from a float32 checkpoint tensor computes the same 1 − α.
    this.#alpha = Math.fround(value);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2)
      throw new RangeError('PgganFadeIn expects inputs [new, old]');
    const [fresh, old] = inputs as [tf.Tensor, tf.Tensor];
    const a = this.#alpha;
    return tf.tidy(() => tf.add(tf.mul(fresh, a), tf.mul(old, 1 - a)));
  }
}

for (const cls of [PgganDownsample, PgganFadeIn]) tf.serialization.registerClass(cls, LAYERS_PACKAGE);

// ---------------------------------------------------------------------------------------------------------
// The networks.

/** One network at every level: `levels[L]` is G_L / D_L; all share the same layer objects. */
export interface PgganNetwork {
  readonly spec: PgganSpec;
  readonly plan: PgganPlan;
  readonly levels: readonly tfl.LayersModel[];
  /** The fade-in layer of each level (null at level 0). */
  readonly fades: readonly (PgganFadeIn | null)[];
  /** Every weight of every level, each once (by name), in a fixed order. */
  readonly weights: readonly LayerVariable[];
  /** Sets α in level L's fade-in (a no-op at level 0). */
  setAlpha(level: number, alpha: number): void;
  /** Frees every weight (the models share layers, so `LayersModel.dispose` cannot). */
  dispose(): void;
}

/** Unique weights of models that share layers, by name, in level order. */
function uniqueWeights(models: readonly tfl.LayersModel[]): LayerVariable[] {
  const seen = new Map<string, LayerVariable>();
  for (const m of models)
    for (const w of m.weights) if (!seen.has(w.originalName)) seen.set(w.originalName, w);
  return [...seen.values()];
}

function network(
  spec: PgganSpec,
  plan: PgganPlan,
  levels: tfl.LayersModel[],
  fades: (PgganFadeIn | null)[],
): PgganNetwork {
  const weights = uniqueWeights(levels);
  let disposed = false;
  return {
    spec,
    plan,
    levels,
    fades,
    weights,
    setAlpha(level: number, alpha: number) {
      const fade = fades[level];
      if (fade === undefined) throw new RangeError(`no level ${level} (0 … ${levels.length - 1})`);
      if (fade) fade.alpha = alpha;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const w of weights) w.dispose();
    },
  };
}

function conv(spec: PgganSpec, name: string, filters: number, kernelSize: number, lrelu: boolean) {
  return new EqualizedConv2D({
    filters,
    kernelSize,
    activation: lrelu ? 'lrelu' : 'none',
    seed: subSeed(spec.seed, name),
    name,
  });
}

function dense(spec: PgganSpec, name: string, units: number, lrelu: boolean) {
  return new EqualizedDense({
    units,
    activation: lrelu ? 'lrelu' : 'none',
    seed: subSeed(spec.seed, name),
    name,
  });
}

function apply(layer: tfl.layers.Layer, x: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
  return layer.apply(x) as SymbolicTensor;
}

/**
 * G at every level: inputs `[z]` (unconditional) or `[z, labels]` (z float32 `[N, zDim]`, labels int32 `[N]`),
 * output `[N, s_L, s_L, C]` (linear; about [−1, 1] once trained).
 */
export function buildPgganGenerator(spec: PgganSpec): PgganNetwork {
  validatePgganSpec(spec);
  const plan = pgganPlan(spec);
  const z = tfl.input({ shape: [spec.zDim], name: 'g_z' });
  const labels = pgganConditional(spec)
    ? tfl.input({ batchShape: [null], dtype: 'int32', name: 'g_labels' })
    : null;
  let code = apply(new PixelNorm({ name: 'g_z_norm' }), z);
  if (labels) {
    const embed = tfl.layers.embedding({
      inputDim: spec.numClasses,
      outputDim: plan.labelDim,
      embeddingsInitializer: tfl.initializers.randomNormal({
        mean: 0,
        stddev: 1,
        seed: subSeed(spec.seed, 'g_label_embed'),
      }),
      name: 'g_label_embed',
    });
    code = apply(tfl.layers.concatenate({ axis: -1, name: 'g_concat' }), [code, apply(embed, labels)]);
  }
  const s0 = plan.s0;
  const c0 = plan.gWidths[0]!;
  let h = apply(dense(spec, 'g_dense0', s0 * s0 * c0, true), code);
  h = apply(tfl.layers.reshape({ targetShape: [s0, s0, c0], name: 'g_reshape0' }), h);
  h = apply(new PixelNorm({ name: 'g_b0_norm0' }), h);
  h = apply(conv(spec, 'g_b0_conv', c0, 3, true), h);
  h = apply(new PixelNorm({ name: 'g_b0_norm1' }), h);
  const rgb: SymbolicTensor[] = [apply(conv(spec, 'g_rgb0', spec.channels, 1, false), h)];
  const outputs: SymbolicTensor[] = [rgb[0]!];
  const fades: (PgganFadeIn | null)[] = [null];
  for (let L = 1; L < plan.sides.length; L++) {
    const width = plan.gWidths[L]!;
    h = apply(tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: `g_b${L}_up` }), h);
    h = apply(conv(spec, `g_b${L}_conv0`, width, 3, true), h);
    h = apply(new PixelNorm({ name: `g_b${L}_norm0` }), h);
    h = apply(conv(spec, `g_b${L}_conv1`, width, 3, true), h);
    h = apply(new PixelNorm({ name: `g_b${L}_norm1` }), h);
    rgb.push(apply(conv(spec, `g_rgb${L}`, spec.channels, 1, false), h));
    const old = apply(
      tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'nearest', name: `g_fade${L}_up` }),
      rgb[L - 1]!,
    );
    const fade = new PgganFadeIn({ name: `g_fade${L}` });
    fades.push(fade);
    outputs.push(apply(fade, [rgb[L]!, old]));
  }
  const inputs = labels ? [z, labels] : [z];
  const levels = outputs.map((out, L) => tfl.model({ inputs, outputs: out, name: `G_${L}` }));
  return network(spec, plan, levels, fades);
}

/**
 * D at every level: inputs `[x]` or `[x, labels]` (x `[N, s_L, s_L, C]`, labels int32 `[N]`), output logits
 * `[N, 1]`.
 */
export function buildPgganDiscriminator(spec: PgganSpec): PgganNetwork {
  validatePgganSpec(spec);
  const plan = pgganPlan(spec);
  const K = plan.sides.length - 1;
  const conditional = pgganConditional(spec);
  const labels = conditional ? tfl.input({ batchShape: [null], dtype: 'int32', name: 'd_labels' }) : null;
  const w = plan.dWidths;
  const fromRgb = plan.sides.map((_, L) => conv(spec, `d_rgb${L}`, w[L]!, 1, true));
  // Block L ≥ 1: [conv0, conv1, pool]; index 0 unused.
  const blocks = plan.sides.map((_, L) =>
    L === 0
      ? null
      : ([
          conv(spec, `d_b${L}_conv0`, w[L]!, 3, true),
          conv(spec, `d_b${L}_conv1`, w[L - 1]!, 3, true),
          new PgganDownsample({ name: `d_b${L}_down` }),
        ] as const),
  );
  const mbstd = new MinibatchStdDev({
    name: 'd_mbstd',
    ...(conditional ? { numClasses: spec.numClasses } : {}),
  });
  const baseConv = conv(spec, 'd_b0_conv', w[0]!, 3, true);
  const flatten = tfl.layers.flatten({ name: 'd_flatten' });
  const baseDense = dense(spec, 'd_dense0', w[0]!, true);
  const out = dense(spec, 'd_out', 1, false);
  const projection = conditional
    ? new LabelProjection({
        numClasses: spec.numClasses,
        spectralNorm: false,
        seed: subSeed(spec.seed, 'd_proj_embed'),
        name: 'd_proj_embed',
      })
    : null;
  const sum = conditional ? tfl.layers.add({ name: 'd_logits' }) : null;
  const block = (L: number, x: SymbolicTensor) => {
    const [c0, c1, pool] = blocks[L]!;
    return apply(pool, apply(c1, apply(c0, x)));
  };

  const levels: tfl.LayersModel[] = [];
  const fades: (PgganFadeIn | null)[] = [];
  for (let L = 0; L <= K; L++) {
    const side = plan.sides[L]!;
    const x = tfl.input({ shape: [side, side, spec.channels], name: `d_x${L}` });
    let h = apply(fromRgb[L]!, x);
    if (L > 0) {
      h = block(L, h);
      const pooled = apply(new PgganDownsample({ name: `d_fade${L}_down` }), x);
      const fade = new PgganFadeIn({ name: `d_fade${L}` });
      fades.push(fade);
      h = apply(fade, [h, apply(fromRgb[L - 1]!, pooled)]);
      for (let l = L - 1; l >= 1; l--) h = block(l, h);
    } else {
      fades.push(null);
    }
    h = apply(mbstd, labels ? [h, labels] : h);
    h = apply(baseConv, h);
    const features = apply(baseDense, apply(flatten, h));
    let logits = apply(out, features);
    if (projection && sum && labels) logits = apply(sum, [logits, apply(projection, [features, labels])]);
    levels.push(tfl.model({ inputs: labels ? [x, labels] : [x], outputs: logits, name: `D_${L}` }));
  }
  return network(spec, plan, levels, fades);
}
