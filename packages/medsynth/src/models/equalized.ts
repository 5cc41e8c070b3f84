/**
 * Equalised-learning-rate layers (Karras et al. 2018, "Progressive growing of GANs"; StyleGAN2's
 * `FullyConnectedLayer` and `Conv2dLayer`), serialisable and registered under `LAYERS_PACKAGE`:
 *
 * - `EqualizedDense`: y = act(x · (W·g) + b·lrMul)·gain, W `[in, units]` stored ~ N(0, 1/lrMul²),
 *   g = lrMul/√in.
 * - `EqualizedConv2D`: y = act(conv(x, W·g) + b·lrMul)·gain, W `[k, k, in, out]` stored ~ N(0, 1/lrMul²),
 *   g = lrMul/√(k·k·in); NHWC, stride 1, 'same' (default) or 'valid' padding.
 *   The stored weights are N(0, 1)/lrMul and the scale is applied at call time, so every weight sees the same
 *   effective learning rate under Adam (scale-invariant updates), times lrMul (StyleGAN's mapping network:
 *   lrMul = 0.01). The bias is stored as b/lrMul (initialised to `biasInit`/lrMul) and multiplied by lrMul.
 *   `activation: 'lrelu'` is LeakyReLU(0.2)·√2 (StyleGAN2's `lrelu` with its default gain, which keeps the
 *   second moment of unit-variance activations at about 1); `'none'` is linear. LeakyReLU being positively
 *   homogeneous, lrelu(z)·c = lrelu(c·z) for c > 0: the √2 and the optional output `gain` (default 1;
 *   StyleGAN2's residual D uses √½) are folded into the (small) kernel and bias scales rather than spent on
 *   a full-size multiplication and its gradient.
 * - `PixelNorm`: x / √(mean_c(x²) + 1e-8) over the last axis (channels of NHWC maps, features of `[N, F]`):
 *   PGGAN's pixelwise feature normalisation and StyleGAN's `normalize_2nd_moment` of z.
 *
 * Weight names are `<layer>/kernel` and `<layer>/bias`; kernels use TF.js layouts (conv `[kh, kw, in, out]`,
 * dense `[in, out]`). Initialisers are seeded (`seed`, e.g. `subSeed(spec.seed, layerName)`), so one seed
 * builds bit-identical weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { LAYERS_PACKAGE, oneShape, oneTensor } from './layers.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type LayerVariable = tfl.LayerVariable;
type ConfigDict = tf.serialization.ConfigDict;

/** Activations of the equalised layers: linear, or LeakyReLU(0.2) × √2. */
export type EqualizedActivation = 'none' | 'lrelu';
export const EQUALIZED_ACTIVATIONS: readonly EqualizedActivation[] = ['none', 'lrelu'];

/** LeakyReLU slope of StyleGAN2's `lrelu`. */
export const LRELU_ALPHA = 0.2;
/** StyleGAN2's default gain of `lrelu`. */
export const LRELU_GAIN = Math.SQRT2;

/** ε of `PixelNorm` (StyleGAN2's `normalize_2nd_moment`). */
export const PIXEL_NORM_EPSILON = 1e-8;

/** `act(x)`: x for 'none', LeakyReLU(x, 0.2)·√2 for 'lrelu'. */
export function equalizedActivation(x: tf.Tensor, activation: EqualizedActivation): tf.Tensor {
  return activation === 'lrelu' ? tf.mul(tf.leakyRelu(x, LRELU_ALPHA), LRELU_GAIN) : x;
}

/** x / √(mean(x², last axis) + ε). */
export function pixelNorm(x: tf.Tensor, epsilon = PIXEL_NORM_EPSILON): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), epsilon))));
}

/** N(0, 1/lrMul²) stored weights, seeded when `seed` is a number. */
export function equalizedInitializer(seed: number | null, lrMul: number) {
  const stddev = 1 / lrMul;
  return seed === null
    ? tfl.initializers.randomNormal({ mean: 0, stddev })
    : tfl.initializers.randomNormal({ mean: 0, stddev, seed });
}

function checkCommon(layer: string, lrMul: number, biasInit: number, activation: string, gain: number): void {
  if (!(typeof gain === 'number' && Number.isFinite(gain) && gain > 0))
    throw new RangeError(`${layer} gain must be a positive number, got ${String(gain)}`);
  if (!(typeof lrMul === 'number' && Number.isFinite(lrMul) && lrMul > 0))
    throw new RangeError(`${layer} lrMul must be a positive number, got ${String(lrMul)}`);
  if (!(typeof biasInit === 'number' && Number.isFinite(biasInit)))
    throw new RangeError(`${layer} biasInit must be a finite number, got ${String(biasInit)}`);
  if (!(EQUALIZED_ACTIVATIONS as readonly string[]).includes(activation))
    throw new RangeError(
      `${layer} activation must be one of ${EQUALIZED_ACTIVATIONS.join(', ')}, got ${activation}`,
    );
}

/** Options shared by the equalised layers. */
export interface EqualizedCommonArgs extends LayerArgs {
  /** Learning-rate multiplier (default 1; StyleGAN's mapping network uses 0.01). */
  lrMul?: number;
  /** Add a bias (default true). */
  useBias?: boolean;
  /** The bias's initial effective value (default 0; StyleGAN2's style affines use 1). */
  biasInit?: number;
  /** Default 'none'. */
  activation?: EqualizedActivation;
  /**
   * Extra output gain (default 1), e.g. √½ on both branches of a residual block (StyleGAN2's `gain`). Folded
   * into the kernel and bias scales, as the activation's √2.
   */
  gain?: number;
  /** Seed of the kernel initialiser; null = unseeded. */
  seed?: number | null;
}

// ---------------------------------------------------------------------------------------------------------

export interface EqualizedDenseArgs extends EqualizedCommonArgs {
  units: number;
}

/** Dense layer on `[N, F]` with an equalised learning rate (see the module header). */
export class EqualizedDense extends tfl.layers.Layer {
  static readonly className = 'EqualizedDense';
  readonly units: number;
  readonly lrMul: number;
  readonly useBias: boolean;
  readonly biasInit: number;
  readonly activation: EqualizedActivation;
  readonly gain: number;
  readonly seed: number | null;
  private kernel: LayerVariable | null = null;
  private bias: LayerVariable | null = null;
  /** lrMul / √fan_in, set in build. */
  private scale = 1;

  constructor(args: EqualizedDenseArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units < 1)
      throw new RangeError(`EqualizedDense units must be a positive integer, got ${args.units}`);
    this.units = args.units;
    this.lrMul = args.lrMul ?? 1;
    this.useBias = args.useBias ?? true;
    this.biasInit = args.biasInit ?? 0;
    this.activation = args.activation ?? 'none';
    this.gain = args.gain ?? 1;
    this.seed = args.seed ?? null;
    checkCommon('EqualizedDense', this.lrMul, this.biasInit, this.activation, this.gain);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const features = shape[shape.length - 1];
    if (shape.length !== 2 || typeof features !== 'number')
      throw new RangeError(`EqualizedDense expects [N, features] input, got [${shape.join(', ')}]`);
    this.kernel = this.addWeight(
      'kernel',
      [features, this.units],
      'float32',
      equalizedInitializer(this.seed, this.lrMul),
    );
    if (this.useBias)
      this.bias = this.addWeight(
        'bias',
        [this.units],
        'float32',
        tfl.initializers.constant({ value: this.biasInit / this.lrMul }),
      );
    this.scale = this.lrMul / Math.sqrt(features);
    this.built = true;
  }

  /** The output's gain: `gain`, × √2 with lrelu (positive: folded in before the activation). */
  private outputScale(): number {
    return this.gain * (this.activation === 'lrelu' ? LRELU_GAIN : 1);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = oneShape(inputShape);
    return [shape[0] ?? null, this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, 'EqualizedDense') as tf.Tensor2D;
      const g = this.outputScale();
      let y: tf.Tensor = tf.matMul(x, tf.mul(this.kernel!.read(), this.scale * g) as tf.Tensor2D);
      if (this.bias) y = tf.add(y, tf.mul(this.bias.read(), this.lrMul * g));
      return this.activation === 'lrelu' ? tf.leakyRelu(y, LRELU_ALPHA) : y;
    });
  }

  override getConfig(): ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      lrMul: this.lrMul,
      useBias: this.useBias,
      biasInit: this.biasInit,
      activation: this.activation,
      gain: this.gain,
      seed: this.seed,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface EqualizedConv2DArgs extends EqualizedCommonArgs {
  filters: number;
  /** Square kernel side. */
  kernelSize: number;
  /** Default 'same'. */
  padding?: 'same' | 'valid';
}

/** 2-D convolution (NHWC, stride 1) with an equalised learning rate (see the module header). */
export class EqualizedConv2D extends tfl.layers.Layer {
  static readonly className = 'EqualizedConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly padding: 'same' | 'valid';
  readonly lrMul: number;
  readonly useBias: boolean;
  readonly biasInit: number;
  readonly activation: EqualizedActivation;
  readonly gain: number;
  readonly seed: number | null;
  private kernel: LayerVariable | null = null;
  private bias: LayerVariable | null = null;
  /** lrMul / √fan_in, set in build. */
  private scale = 1;

  constructor(args: EqualizedConv2DArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1)
      throw new RangeError(`EqualizedConv2D filters must be a positive integer, got ${args.filters}`);
    if (!Number.isInteger(args.kernelSize) || args.kernelSize < 1)
      throw new RangeError(`EqualizedConv2D kernelSize must be a positive integer, got ${args.kernelSize}`);
    const padding = args.padding ?? 'same';
    if (padding !== 'same' && padding !== 'valid')
      throw new RangeError(`EqualizedConv2D padding must be 'same' or 'valid', got ${String(padding)}`);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.padding = padding;
    this.lrMul = args.lrMul ?? 1;
    this.useBias = args.useBias ?? true;
    this.biasInit = args.biasInit ?? 0;
    this.activation = args.activation ?? 'none';
    this.gain = args.gain ?? 1;
    this.seed = args.seed ?? null;
    checkCommon('EqualizedConv2D', this.lrMul, this.biasInit, this.activation, this.gain);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const inChannels = shape[shape.length - 1];
    if (shape.length !== 4 || typeof inChannels !== 'number')
      throw new RangeError(
        `EqualizedConv2D expects NHWC input with known channels, got [${shape.join(', ')}]`,
      );
    const k = this.kernelSize;
    this.kernel = this.addWeight(
      'kernel',
      [k, k, inChannels, this.filters],
      'float32',
      equalizedInitializer(this.seed, this.lrMul),
    );
    if (this.useBias)
      this.bias = this.addWeight(
        'bias',
        [this.filters],
        'float32',
        tfl.initializers.constant({ value: this.biasInit / this.lrMul }),
      );
    this.scale = this.lrMul / Math.sqrt(k * k * inChannels);
    this.built = true;
  }

  /** The output's gain: `gain`, × √2 with lrelu (positive: folded in before the activation). */
  private outputScale(): number {
    return this.gain * (this.activation === 'lrelu' ? LRELU_GAIN : 1);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w] = oneShape(inputShape);
    const side = (s: number | null | undefined): number | null =>
      typeof s !== 'number' ? null : this.padding === 'same' ? s : s - this.kernelSize + 1;
    return [n ?? null, side(h), side(w), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, 'EqualizedConv2D') as tf.Tensor4D;
      const g = this.outputScale();
      const w = tf.mul(this.kernel!.read(), this.scale * g) as tf.Tensor4D;
      let y: tf.Tensor = tf.conv2d(x, w, 1, this.padding);
      if (this.bias) y = tf.add(y, tf.mul(this.bias.read(), this.lrMul * g));
      return this.activation === 'lrelu' ? tf.leakyRelu(y, LRELU_ALPHA) : y;
    });
  }

  override getConfig(): ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      padding: this.padding,
      lrMul: this.lrMul,
      useBias: this.useBias,
      biasInit: this.biasInit,
      activation: this.activation,
      gain: this.gain,
      seed: this.seed,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface PixelNormArgs extends LayerArgs {
  /** Default 1e-8. */
  epsilon?: number;
}

/** x / √(mean(x², last axis) + ε): any rank (NHWC maps per pixel, `[N, F]` per sample). No weights. */
export class PixelNorm extends tfl.layers.Layer {
  static readonly className = 'PixelNorm';
  readonly epsilon: number;

  constructor(args: PixelNormArgs = {}) {
    super(args);
    this.epsilon = args.epsilon ?? PIXEL_NORM_EPSILON;
    if (!(this.epsilon > 0)) throw new RangeError(`PixelNorm epsilon must be > 0, got ${this.epsilon}`);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return pixelNorm(oneTensor(inputs, 'PixelNorm'), this.epsilon);
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon };
  }
}

for (const cls of [EqualizedDense, EqualizedConv2D, PixelNorm]) {
  tf.serialization.registerClass(cls, LAYERS_PACKAGE);
}
