/**
 * The custom layers of the StyleGAN2 family (stylegan2.ts), serialisable and registered under `LAYERS_PACKAGE`.
 * Everything is NHWC; weights are named `<layer>/<weight>`.
 *
 * - `ModulatedConv2D` (Karras et al. 2020, StyleGAN2 §2.2), inputs `[x [N,H,W,I], w [N,wDim]]`:
 *     s = w·A/√wDim + b                  (the style: an equalised affine layer, b initialised to 1)
 *     y = conv(x ⊙ s, W·g)               (the shared kernel W `[k,k,I,O]` ~ N(0,1), g = 1/√(k·k·I))
 *     y ← y ⊙ d,  d_{n,o} = 1/√(Σ_{i,k} (g·W_{k,i,o}·s_{n,i})² + 1e-8) = rsqrt(s_n² · Σ_k (gW)²_{·,o} + 1e-8)
 *   d is one matmul of s² `[N, I]` with Σ_k (gW)² `[I, O]`. This equals convolving every sample with its own
 *   weight W·s_n·d_n (the "fused" form) without grouped convolutions: scaling the input channels before, and
 *   the output channels after, one ordinary convolution with the shared kernel (StyleGAN2-ADA's
 *   `fused_modconv=False` path). With `upsample`, x ⊙ s is upsampled ×2 (nearest) before the convolution
 *   (the same as upsampling first: the style is constant over space, but on ¼ of the pixels). Without
 *   `demodulate` (toRGB) y = conv(x ⊙ s, W·g). No bias: `BiasActivation` follows, after the noise.
 * - `NoiseInjection`: x + strength ⊙ noise, strength `[C]` learned (initially 0), noise `[N,H,W,1]` per
 *   pixel, shared by the channels. When the JS property `noiseSeed` is a number, noise =
 *   `tf.randomNormal([N,H,W,1], 0, 1, 'float32', noiseSeed + noiseIndex)` — generated in JS by tfjs-core,
 *   so a training step is reproducible from the seed the loop draws from its Rng; when null (sampling), the
 *   layer's constant buffer `noise_const` `[1,H,W,1]` (non-trainable, initialised from the spec seed), so an
 *   image depends only on its z and label.
 * - `BiasActivation`: act(x + b), b `[C]` (initially 0), act linear or LeakyReLU(0.2)·√2.
 * - `ConstantInput`: the learned constant `[1, S0, S0, C]` ~ N(0, 1), broadcast to the batch of its input.
 * - `WAverage`: tracks the mean w per class, `w_avg` `[K, wDim]` (non-trainable, K = classes or 1), inputs
 *   `[w]` or `[w, labels]`. A training call moves the rows of the classes present in the batch toward their
 *   batch means, w̄_k ← w̄_k + (1 − β)·(mean_{n: y_n = k} w_n − w̄_k), β = 0.995, and returns w unchanged;
 *   an inference call returns w̄_y + ψ·(w − w̄_y) (the truncation trick; ψ the JS property `psi`, 1 = off).
 * - `OneHot`: int32 labels `[N]` → float32 one-hot `[N, K]`.
 * - `Upsample2D`: ×2, nearest (features) or bilinear with half-pixel centres (the RGB skip: the interior
 *   of StyleGAN2's [1,3,3,1] FIR upsampling).
 * - `Downsample2D`: 2×2 box average (D): `tf.avgPool` with its own gradient (nearest upsampling / 4), as
 *   TF.js's `AvgPoolGrad` has no gradient and an R1 penalty through D needs second-order gradients.
 * - `ProjectionLogit`: inputs `[h [N,F], cmap [N,F]]` → Σ_f h·cmap / √F `[N, 1]` (StyleGAN2-ADA's
 *   conditional D output).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type EqualizedActivation, equalizedActivation, EQUALIZED_ACTIVATIONS } from './equalized.js';
import { isTraining, LAYERS_PACKAGE, oneShape, oneTensor, shapeList, subSeed } from './layers.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];
type LayerVariable = tfl.LayerVariable;
type ConfigDict = tf.serialization.ConfigDict;

/** ε of the demodulation (StyleGAN2). */
export const DEMODULATION_EPSILON = 1e-8;

/** β of the tracked mean w (StyleGAN2's `w_avg_beta`). */
export const W_AVG_BETA = 0.995;

function normalInit(seed: number | null) {
  return seed === null
    ? tfl.initializers.randomNormal({ mean: 0, stddev: 1 })
    : tfl.initializers.randomNormal({ mean: 0, stddev: 1, seed });
}

function int32Labels(labels: tf.Tensor): tf.Tensor1D {
  const flat = tf.reshape(labels, [-1]) as tf.Tensor1D;
  return flat.dtype === 'int32' ? flat : (tf.cast(flat, 'int32') as tf.Tensor1D);
}

/** Nearest-neighbour ×2 upsampling (each pixel repeated 2×2). */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [h * 2, w * 2], false, false);
}

/** Bilinear ×2 upsampling with half-pixel centres (weights 3/4, 1/4 between neighbours; edges clamped). */
export function upsampleBilinear2x(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.image.resizeBilinear(x, [h * 2, w * 2], false, true);
}

/**
 * The modulated convolution without grouped convolutions (see the module header): x `[N,H,W,I]`, the
 * (already scaled) shared kernel `[k,k,I,O]`, styles `[N, I]`. 'same' padding, stride 1.
 */
export function modulatedConv2d(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  styles: tf.Tensor2D,
  demodulate: boolean,
  upsample = false,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n] = x.shape;
    const [, , inC, outC] = kernel.shape;
    let h = tf.mul(x, tf.reshape(styles, [n, 1, 1, inC])) as tf.Tensor4D;
    if (upsample) h = upsampleNearest2x(h);
    let y = tf.conv2d(h, kernel, 1, 'same');
    if (demodulate) {
      const w2 = tf.sum(tf.square(kernel), [0, 1]) as tf.Tensor2D; // [I, O]
      const d = tf.rsqrt(tf.add(tf.matMul(tf.square(styles), w2), DEMODULATION_EPSILON)); // [N, O]
      y = tf.mul(y, tf.reshape(d, [n, 1, 1, outC]));
    }
    return y;
  });
}

// ---------------------------------------------------------------------------------------------------------

export interface ModulatedConv2DArgs extends LayerArgs {
  filters: number;
  /** Square kernel side (3 for the synthesis convs, 1 for toRGB). */
  kernelSize: number;
  /** Default true; toRGB layers do not demodulate. */
  demodulate?: boolean;
  /** Nearest ×2 upsampling of the modulated input before the convolution (default false). */
  upsample?: boolean;
  /** Seed of the kernel and style-affine initialisers; null = unseeded. */
  seed?: number | null;
}

/** The StyleGAN2 modulated convolution with its style affine; inputs `[x, w]` (see the module header). */
export class ModulatedConv2D extends tfl.layers.Layer {
  static readonly className = 'ModulatedConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly demodulate: boolean;
  readonly upsample: boolean;
  readonly seed: number | null;
  private kernel: LayerVariable | null = null;
  private affineKernel: LayerVariable | null = null;
  private affineBias: LayerVariable | null = null;
  private gain = 1;
  private affineGain = 1;

  constructor(args: ModulatedConv2DArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1)
      throw new RangeError(`ModulatedConv2D filters must be a positive integer, got ${args.filters}`);
    if (!Number.isInteger(args.kernelSize) || args.kernelSize < 1 || args.kernelSize % 2 !== 1)
      throw new RangeError(
        `ModulatedConv2D kernelSize must be an odd positive integer, got ${args.kernelSize}`,
      );
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.demodulate = args.demodulate ?? true;
    this.upsample = args.upsample ?? false;
    this.seed = args.seed ?? null;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const [xShape, wShape] = shapeList(inputShape);
    const inC = xShape?.[3];
    const wDim = wShape?.[1];
    if (xShape?.length !== 4 || wShape?.length !== 2 || typeof inC !== 'number' || typeof wDim !== 'number')
      throw new RangeError('ModulatedConv2D expects inputs [x [N, H, W, C], w [N, wDim]]');
    const k = this.kernelSize;
    this.kernel = this.addWeight('kernel', [k, k, inC, this.filters], 'float32', normalInit(this.seed));
    this.affineKernel = this.addWeight(
      'affine_kernel',
      [wDim, inC],
      'float32',
      normalInit(this.seed === null ? null : subSeed(this.seed, 'affine_kernel')),
    );
    this.affineBias = this.addWeight('affine_bias', [inC], 'float32', tfl.initializers.ones());
    this.gain = 1 / Math.sqrt(k * k * inC);
    this.affineGain = 1 / Math.sqrt(wDim);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w] = shapeList(inputShape)[0]!;
    const f = this.upsample ? 2 : 1;
    const side = (s: number | null | undefined) => (typeof s === 'number' ? s * f : null);
    return [n ?? null, side(h), side(w), this.filters];
  }

  /** The style s `[N, I]` of latents w `[N, wDim]`. */
  styles(w: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() =>
      tf.add(
        tf.matMul(w, tf.mul(this.affineKernel!.read(), this.affineGain) as tf.Tensor2D),
        this.affineBias!.read(),
      ),
    );
  }

  /** The scaled shared kernel W·g `[k, k, I, O]`. */
  scaledKernel(): tf.Tensor4D {
    return tf.tidy(() => tf.mul(this.kernel!.read(), this.gain) as tf.Tensor4D);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2)
        throw new RangeError('ModulatedConv2D expects inputs [x, w]');
      const [x, w] = inputs as [tf.Tensor4D, tf.Tensor2D];
      return modulatedConv2d(x, this.scaledKernel(), this.styles(w), this.demodulate, this.upsample);
    });
  }

  override getConfig(): ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      demodulate: this.demodulate,
      upsample: this.upsample,
      seed: this.seed,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface NoiseInjectionArgs extends LayerArgs {
  /** Added to `noiseSeed`, so the layers of one G draw different noise from one seed. */
  noiseIndex: number;
  /** Seed of the constant noise buffer; null = unseeded. */
  seed?: number | null;
}

/** x + strength ⊙ noise (see the module header). */
export class NoiseInjection extends tfl.layers.Layer {
  static readonly className = 'NoiseInjection';
  readonly noiseIndex: number;
  readonly seed: number | null;
  /** Training noise seed (a number: fresh seeded noise per call; null: the constant buffer). */
  noiseSeed: number | null = null;
  private strength: LayerVariable | null = null;
  private noiseConst: LayerVariable | null = null;

  constructor(args: NoiseInjectionArgs) {
    super(args);
    if (!Number.isInteger(args.noiseIndex) || args.noiseIndex < 0)
      throw new RangeError(
        `NoiseInjection noiseIndex must be a non-negative integer, got ${args.noiseIndex}`,
      );
    this.noiseIndex = args.noiseIndex;
    this.seed = args.seed ?? null;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const [, h, w, c] = shape;
    if (shape.length !== 4 || typeof h !== 'number' || typeof w !== 'number' || typeof c !== 'number')
      throw new RangeError(`NoiseInjection expects NHWC input of known size, got [${shape.join(', ')}]`);
    this.strength = this.addWeight('strength', [c], 'float32', tfl.initializers.zeros());
    this.noiseConst = this.addWeight(
      'noise_const',
      [1, h, w, 1],
      'float32',
      normalInit(this.seed),
      undefined,
      false,
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, 'NoiseInjection') as tf.Tensor4D;
      const [n, h, w] = x.shape;
      const noise =
        this.noiseSeed === null
          ? this.noiseConst!.read()
          : tf.randomNormal([n, h, w, 1], 0, 1, 'float32', this.noiseSeed + this.noiseIndex);
      return tf.add(x, tf.mul(noise, this.strength!.read()));
    });
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), noiseIndex: this.noiseIndex, seed: this.seed };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface BiasActivationArgs extends LayerArgs {
  /** Default 'lrelu'. */
  activation?: EqualizedActivation;
}

/** act(x + b) over the last axis, b initially 0. */
export class BiasActivation extends tfl.layers.Layer {
  static readonly className = 'BiasActivation';
  readonly activation: EqualizedActivation;
  private bias: LayerVariable | null = null;

  constructor(args: BiasActivationArgs = {}) {
    super(args);
    this.activation = args.activation ?? 'lrelu';
    if (!(EQUALIZED_ACTIVATIONS as readonly string[]).includes(this.activation))
      throw new RangeError(`BiasActivation activation must be none or lrelu, got ${String(this.activation)}`);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const c = shape[shape.length - 1];
    if (typeof c !== 'number') throw new RangeError('BiasActivation needs a known last dimension');
    this.bias = this.addWeight('bias', [c], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() =>
      equalizedActivation(tf.add(oneTensor(inputs, 'BiasActivation'), this.bias!.read()), this.activation),
    );
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), activation: this.activation };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface ConstantInputArgs extends LayerArgs {
  side: number;
  channels: number;
  seed?: number | null;
}

/** The learned constant `[1, side, side, channels]`, broadcast to the batch size of its input (any rank). */
export class ConstantInput extends tfl.layers.Layer {
  static readonly className = 'ConstantInput';
  readonly side: number;
  readonly channels: number;
  readonly seed: number | null;
  private value: LayerVariable | null = null;

  constructor(args: ConstantInputArgs) {
    super(args);
    for (const [k, v] of [
      ['side', args.side],
      ['channels', args.channels],
    ] as const)
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`ConstantInput ${k} must be a positive integer, got ${v}`);
    this.side = args.side;
    this.channels = args.channels;
    this.seed = args.seed ?? null;
  }

  override build(): void {
    this.value = this.addWeight(
      'const',
      [1, this.side, this.side, this.channels],
      'float32',
      normalInit(this.seed),
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return [oneShape(inputShape)[0] ?? null, this.side, this.side, this.channels];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const n = oneTensor(inputs, 'ConstantInput').shape[0]!;
      return tf.broadcastTo(this.value!.read(), [n, this.side, this.side, this.channels]);
    });
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), side: this.side, channels: this.channels, seed: this.seed };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface WAverageArgs extends LayerArgs {
  /** Rows of w_avg: the classes when the layer takes labels, else 1. */
  numClasses: number;
  /** Default 0.995. */
  beta?: number;
}

/** Tracks the mean w per class and applies the truncation trick (see the module header). */
export class WAverage extends tfl.layers.Layer {
  static readonly className = 'WAverage';
  readonly numClasses: number;
  readonly beta: number;
  /** Truncation ψ of inference calls (1 = none). */
  psi = 1;
  private wAvg: LayerVariable | null = null;

  constructor(args: WAverageArgs) {
    super(args);
    if (!Number.isInteger(args.numClasses) || args.numClasses < 1)
      throw new RangeError(`WAverage numClasses must be a positive integer, got ${args.numClasses}`);
    this.numClasses = args.numClasses;
    this.beta = args.beta ?? W_AVG_BETA;
    if (!(this.beta >= 0 && this.beta < 1))
      throw new RangeError(`WAverage beta must be in [0, 1), got ${this.beta}`);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const wShape = shapeList(inputShape)[0]!;
    const wDim = wShape[1];
    if (wShape.length !== 2 || typeof wDim !== 'number')
      throw new RangeError('WAverage expects inputs [w [N, wDim]] or [w, labels]');
    this.wAvg = this.addWeight(
      'w_avg',
      [this.numClasses, wDim],
      'float32',
      tfl.initializers.zeros(),
      undefined,
      false,
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return shapeList(inputShape)[0]!;
  }

  /** The w_avg variable's current value `[K, wDim]` (a new tensor). */
  mean(): tf.Tensor2D {
    return tf.clone(this.wAvg!.read()) as tf.Tensor2D;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const list = Array.isArray(inputs) ? inputs : [inputs];
      const w = list[0] as tf.Tensor2D;
      const n = w.shape[0];
      const labels = list.length > 1 && this.numClasses > 1 ? int32Labels(list[1]!) : null;
      // One-hot class membership [N, K] (all ones in one column when unconditional).
      const y = labels
        ? (tf.cast(tf.oneHot(labels, this.numClasses), 'float32') as tf.Tensor2D)
        : (tf.ones([n, 1]) as tf.Tensor2D);
      const avg = this.wAvg!.read() as tf.Tensor2D;
      if (isTraining(kwargs)) {
        tf.tidy(() => {
          const count = tf.reshape(tf.sum(y, 0), [-1, 1]); // [K, 1]
          const batchMean = tf.div(tf.matMul(y, w, true, false), tf.maximum(count, 1));
          const present = tf.cast(tf.greater(count, 0), 'float32');
          const step = tf.mul(tf.sub(batchMean, avg), tf.mul(present, 1 - this.beta));
          this.wAvg!.write(tf.add(avg, step));
        });
        return tf.clone(w);
      }
      if (this.psi === 1) return tf.clone(w);
      const centre = labels ? tf.gather(avg, labels) : tf.broadcastTo(avg, w.shape);
      return tf.add(centre, tf.mul(tf.sub(w, centre), this.psi));
    });
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), numClasses: this.numClasses, beta: this.beta };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface OneHotArgs extends LayerArgs {
  numClasses: number;
}

/** int32 labels `[N]` → float32 one-hot `[N, K]`. */
export class OneHot extends tfl.layers.Layer {
  static readonly className = 'OneHot';
  readonly numClasses: number;

  constructor(args: OneHotArgs) {
    super(args);
    if (!Number.isInteger(args.numClasses) || args.numClasses < 1)
      throw new RangeError(`OneHot numClasses must be a positive integer, got ${args.numClasses}`);
    this.numClasses = args.numClasses;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return [oneShape(inputShape)[0] ?? null, this.numClasses];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() =>
      tf.cast(tf.oneHot(int32Labels(oneTensor(inputs, 'OneHot')), this.numClasses), 'float32'),
    );
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), numClasses: this.numClasses };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface Upsample2DArgs extends LayerArgs {
  /** Default 'nearest'. */
  interpolation?: 'nearest' | 'bilinear';
}

/** ×2 upsampling, nearest or bilinear (half-pixel centres). */
export class Upsample2D extends tfl.layers.Layer {
  static readonly className = 'Upsample2D';
  readonly interpolation: 'nearest' | 'bilinear';

  constructor(args: Upsample2DArgs = {}) {
    super(args);
    this.interpolation = args.interpolation ?? 'nearest';
    if (this.interpolation !== 'nearest' && this.interpolation !== 'bilinear')
      throw new RangeError(
        `Upsample2D interpolation must be nearest or bilinear, got ${String(this.interpolation)}`,
      );
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w, c] = oneShape(inputShape);
    const twice = (s: number | null | undefined) => (typeof s === 'number' ? s * 2 : null);
    return [n ?? null, twice(h), twice(w), c ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, 'Upsample2D') as tf.Tensor4D;
      return this.interpolation === 'nearest' ? upsampleNearest2x(x) : upsampleBilinear2x(x);
    });
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), interpolation: this.interpolation };
  }
}

/**
 * 2×2 box average of an NHWC tensor with even sides, differentiable to any order: `tf.avgPool` forward, and
 * as gradient dy spread over each 2×2 block (nearest ×2 upsampling, × ¼), itself differentiable.
 * (A reshape to [N, H/2, 2, W/2, 2, C] and a mean is the same, at twice the time on libtorch.)
 */
const boxDownsample = tf.customGrad((...args: Array<tf.Tensor | ((save: tf.Tensor[]) => void)>) => {
  const x = args[0] as tf.Tensor4D;
  const [, h, w] = x.shape;
  if (h % 2 !== 0 || w % 2 !== 0) throw new RangeError(`downsampleBox2x needs even sides, got ${h}×${w}`);
  return {
    value: tf.avgPool(x, 2, 2, 'valid'),
    gradFunc: (dy: tf.Tensor4D) => tf.mul(tf.image.resizeNearestNeighbor(dy, [h, w]), 0.25),
  };
});

export function downsampleBox2x(x: tf.Tensor4D): tf.Tensor4D {
  return boxDownsample(x);
}

/** 2×2 box average (halves the sides; see `downsampleBox2x`). */
export class Downsample2D extends tfl.layers.Layer {
  static readonly className = 'Downsample2D';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w, c] = oneShape(inputShape);
    const half = (s: number | null | undefined) => (typeof s === 'number' ? s / 2 : null);
    return [n ?? null, half(h), half(w), c ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return downsampleBox2x(oneTensor(inputs, 'Downsample2D') as tf.Tensor4D);
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Σ_f h·cmap / √F `[N, 1]` from inputs `[h [N, F], cmap [N, F]]`. */
export class ProjectionLogit extends tfl.layers.Layer {
  static readonly className = 'ProjectionLogit';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return [shapeList(inputShape)[0]![0] ?? null, 1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2)
        throw new RangeError('ProjectionLogit expects inputs [h, cmap]');
      const [h, cmap] = inputs as [tf.Tensor2D, tf.Tensor2D];
      return tf.mul(tf.sum(tf.mul(h, cmap), -1, true), 1 / Math.sqrt(h.shape[1]));
    });
  }
}

for (const cls of [
  ModulatedConv2D,
  NoiseInjection,
  BiasActivation,
  ConstantInput,
  WAverage,
  OneHot,
  Upsample2D,
  Downsample2D,
  ProjectionLogit,
]) {
  tf.serialization.registerClass(cls, LAYERS_PACKAGE);
}
