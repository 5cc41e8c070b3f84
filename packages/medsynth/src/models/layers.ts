/**
 * Custom tfjs-layers layers of the GAN families, all serialisable (`className`, `getConfig`, registered with
 * `tf.serialization.registerClass` under the package name `medsynth`):
 *
 * - `SNConv2D`, `SNDense`: convolution and dense layers whose kernel is spectrally normalised, W / σ(W)
 *   (Miyato et al. 2018). σ is estimated by power iteration with a persistent vector u (a non-trainable weight
 *   `<layer>/sn_u`): every call with `training: true` does one power iteration and stores the new u; every
 *   call (training or not) then uses σ = ‖W·û‖ with û = u/‖u‖ the stored vector, so an inference call right
 *   after a training call sees the same σ. u carries no gradient: the gradient of W/σ is the exact gradient
 *   with u held fixed, as in Miyato et al. and PyTorch's `spectral_norm`.
 * - `LabelProjection`: the projection discriminator's class term (Miyato & Koyama 2018), Σ embed(y) ⊙ h, with
 *   an optionally spectrally normalised embedding matrix.
 * - `GlobalSumPooling2D`: Σ over height and width (SNGAN's pooling).
 * - `MinibatchStdDev`: appends one feature map holding how much the batch's samples differ (Karras et al.
 *   2018): the standard deviation of every feature over a group, averaged over features, broadcast over
 *   height and width. With labels (`[h, labels]`) the group of a sample is the batch's samples of its class, so
 *   a conditional D can see that one class's fakes are all alike: with one-hot Y `[N, K]`, n_k = Σ_i Y_ik,
 *   μ = Yᵀh / n, σ²_k = Yᵀ(h − Yμ)² / n (per feature), s_k = mean_f √(σ²_kf + 1e-8), sample i gets s_{y_i}.
 *   Without labels the group is the whole batch.
 * - `ConditionScale`: x ↦ λ·x with λ a non-trainable scalar weight `<layer>/lambda` (initially 1) that the
 *   training loop sets: the strength of the class information in transitional conditioning (Shahbazi et al.,
 *   ICLR 2022). Being a weight, λ is saved in checkpoints and copied (not averaged) into G_ema.
 *
 * Weight names are `<layer name>/kernel`, `/bias`, `/sn_u`, `/embeddings`; kernels use TF.js layouts
 * (conv `[kh, kw, in, out]`, dense `[in, out]`), viewed for the spectral norm as the matrix `[kh·kw·in, out]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];
type LayerVariable = tfl.LayerVariable;
type ConfigDict = tf.serialization.ConfigDict;
type Initializer = ReturnType<typeof tfl.initializers.glorotUniform>;

/** Package name under which the layers are registered (`medsynth>SNConv2D` …). */
export const LAYERS_PACKAGE = 'medsynth';

/** ε of the power iteration's normalisations (PyTorch's default). */
const SN_EPSILON = 1e-12;

/** A seed for a named sub-stream of an initialiser seed (FNV-1a of both), so layers get distinct weights. */
export function subSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  const s = `${seed}:${name}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // tfjs seeds are stringified for seedrandom: any integer works; keep them positive and 31-bit.
  return (h >>> 1) & 0x7fffffff;
}

function kernelInitializer(seed: number | null): Initializer {
  return seed === null ? tfl.initializers.glorotUniform({}) : tfl.initializers.glorotUniform({ seed });
}

function uInitializer(seed: number | null): Initializer {
  return seed === null
    ? tfl.initializers.randomNormal({ mean: 0, stddev: 1 })
    : tfl.initializers.randomNormal({ mean: 0, stddev: 1, seed: subSeed(seed, 'sn_u') });
}

/** Whether a layer call is a training call (`{ training: true }`). */
export function isTraining(kwargs: Kwargs): boolean {
  return kwargs['training'] === true;
}

/** The single input of a one-input layer (a RangeError naming the layer otherwise). */
export function oneTensor(inputs: tf.Tensor | tf.Tensor[], layer: string): tf.Tensor {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  if (x === undefined || (Array.isArray(inputs) && inputs.length !== 1))
    throw new RangeError(`${layer} expects exactly one input`);
  return x;
}

/** A layer's input shapes as a list (one shape for a one-input layer). */
export function shapeList(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape[] {
  return Array.isArray(inputShape[0]) ? (inputShape as tfl.Shape[]) : [inputShape as tfl.Shape];
}

/** The single input shape of a one-input layer. */
export function oneShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
  if (Array.isArray(inputShape[0])) {
    const shapes = inputShape as tfl.Shape[];
    if (shapes.length !== 1) throw new RangeError(`expected one input shape, got ${shapes.length}`);
    return shapes[0]!;
  }
  return inputShape as tfl.Shape;
}

function l2Normalize(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.sqrt(tf.maximum(tf.sum(tf.square(x)), SN_EPSILON * SN_EPSILON)));
}

/**
 * `kernel / σ(kernel)`, σ estimated with the stored vector u (shape `[out]`). With `update`, first one power
 * iteration on the matrix view W `[·, out]`: v = normalise(W·u), u ← normalise(Wᵀ·v), written to `u` (no
 * gradient flows through it: the stored variable is read back afterwards). Then σ = ‖W·û‖, û = u/‖u‖.
 */
export function spectralNormalize(kernel: tf.Tensor, u: LayerVariable, update: boolean): tf.Tensor {
  return tf.tidy(() => {
    const out = kernel.shape[kernel.shape.length - 1]!;
    const w = tf.reshape(kernel, [-1, out]);
    if (update) {
      tf.tidy(() => {
        const v = l2Normalize(tf.matMul(w, tf.reshape(u.read(), [out, 1])));
        const next = l2Normalize(tf.matMul(w, v, true, false));
        u.write(tf.reshape(next, [out]));
      });
    }
    const uHat = l2Normalize(tf.reshape(u.read(), [out, 1]));
    const sigma = tf.sqrt(tf.sum(tf.square(tf.matMul(w, uHat))));
    return tf.div(kernel, tf.maximum(sigma, SN_EPSILON));
  });
}

// ---------------------------------------------------------------------------------------------------------

export interface SNConv2DArgs extends LayerArgs {
  filters: number;
  /** Square kernel side. */
  kernelSize: number;
  strides?: number;
  padding?: 'same' | 'valid';
  useBias?: boolean;
  /** Spectral normalisation on (default) or off (then a plain conv with the same weight names but no sn_u). */
  spectralNorm?: boolean;
  /** Seed of the kernel (Glorot uniform) and u (normal) initialisers; null = unseeded. */
  seed?: number | null;
}

/** 2-D convolution (NHWC) with a spectrally normalised kernel. */
export class SNConv2D extends tfl.layers.Layer {
  static readonly className = 'SNConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'same' | 'valid';
  readonly useBias: boolean;
  readonly spectralNorm: boolean;
  readonly seed: number | null;
  private kernel: LayerVariable | null = null;
  private bias: LayerVariable | null = null;
  private snU: LayerVariable | null = null;

  constructor(args: SNConv2DArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1)
      throw new RangeError(`SNConv2D filters must be a positive integer, got ${args.filters}`);
    if (!Number.isInteger(args.kernelSize) || args.kernelSize < 1)
      throw new RangeError(`SNConv2D kernelSize must be a positive integer, got ${args.kernelSize}`);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 'same';
    this.useBias = args.useBias ?? true;
    this.spectralNorm = args.spectralNorm ?? true;
    this.seed = args.seed ?? null;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const inChannels = shape[shape.length - 1];
    if (shape.length !== 4 || typeof inChannels !== 'number')
      throw new RangeError(`SNConv2D expects NHWC input with known channels, got [${shape.join(', ')}]`);
    const k = this.kernelSize;
    this.kernel = this.addWeight(
      'kernel',
      [k, k, inChannels, this.filters],
      'float32',
      kernelInitializer(this.seed),
    );
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tfl.initializers.zeros());
    if (this.spectralNorm)
      this.snU = this.addWeight('sn_u', [this.filters], 'float32', uInitializer(this.seed), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w] = oneShape(inputShape);
    const side = (s: number | null | undefined): number | null =>
      typeof s !== 'number'
        ? null
        : this.padding === 'same'
          ? Math.ceil(s / this.strides)
          : Math.ceil((s - this.kernelSize + 1) / this.strides);
    return [n ?? null, side(h), side(w), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, 'SNConv2D') as tf.Tensor4D;
      const kernel = this.kernel!.read();
      const w = (this.snU ? spectralNormalize(kernel, this.snU, isTraining(kwargs)) : kernel) as tf.Tensor4D;
      const y = tf.conv2d(x, w, this.strides, this.padding);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      useBias: this.useBias,
      spectralNorm: this.spectralNorm,
      seed: this.seed,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface SNDenseArgs extends LayerArgs {
  units: number;
  useBias?: boolean;
  spectralNorm?: boolean;
  seed?: number | null;
}

/** Dense layer on `[N, F]` with a spectrally normalised kernel `[F, units]`. */
export class SNDense extends tfl.layers.Layer {
  static readonly className = 'SNDense';
  readonly units: number;
  readonly useBias: boolean;
  readonly spectralNorm: boolean;
  readonly seed: number | null;
  private kernel: LayerVariable | null = null;
  private bias: LayerVariable | null = null;
  private snU: LayerVariable | null = null;

  constructor(args: SNDenseArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units < 1)
      throw new RangeError(`SNDense units must be a positive integer, got ${args.units}`);
    this.units = args.units;
    this.useBias = args.useBias ?? true;
    this.spectralNorm = args.spectralNorm ?? true;
    this.seed = args.seed ?? null;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const features = shape[shape.length - 1];
    if (shape.length !== 2 || typeof features !== 'number')
      throw new RangeError(`SNDense expects [N, features] input, got [${shape.join(', ')}]`);
    this.kernel = this.addWeight('kernel', [features, this.units], 'float32', kernelInitializer(this.seed));
    if (this.useBias) this.bias = this.addWeight('bias', [this.units], 'float32', tfl.initializers.zeros());
    if (this.spectralNorm)
      this.snU = this.addWeight('sn_u', [this.units], 'float32', uInitializer(this.seed), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = oneShape(inputShape);
    return [shape[0] ?? null, this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, 'SNDense') as tf.Tensor2D;
      const kernel = this.kernel!.read();
      const w = (this.snU ? spectralNormalize(kernel, this.snU, isTraining(kwargs)) : kernel) as tf.Tensor2D;
      const y = tf.matMul(x, w);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      useBias: this.useBias,
      spectralNorm: this.spectralNorm,
      seed: this.seed,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface LabelProjectionArgs extends LayerArgs {
  numClasses: number;
  spectralNorm?: boolean;
  seed?: number | null;
}

/**
 * The projection discriminator's class term: inputs `[h [N, F], labels [N] int32]`, output `[N, 1]` =
 * Σ_f E[y, f]·h[f], with E `[numClasses, F]` (spectrally normalised when asked, as in Miyato & Koyama).
 */
export class LabelProjection extends tfl.layers.Layer {
  static readonly className = 'LabelProjection';
  readonly numClasses: number;
  readonly spectralNorm: boolean;
  readonly seed: number | null;
  private embeddings: LayerVariable | null = null;
  private snU: LayerVariable | null = null;

  constructor(args: LabelProjectionArgs) {
    super(args);
    if (!Number.isInteger(args.numClasses) || args.numClasses < 1)
      throw new RangeError(`LabelProjection numClasses must be a positive integer, got ${args.numClasses}`);
    this.numClasses = args.numClasses;
    this.spectralNorm = args.spectralNorm ?? true;
    this.seed = args.seed ?? null;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shapes = inputShape as tfl.Shape[];
    const h = shapes[0];
    const features = h?.[h.length - 1];
    if (shapes.length !== 2 || h?.length !== 2 || typeof features !== 'number')
      throw new RangeError('LabelProjection expects inputs [h [N, F], labels [N]]');
    this.embeddings = this.addWeight(
      'embeddings',
      [this.numClasses, features],
      'float32',
      kernelInitializer(this.seed),
    );
    if (this.spectralNorm)
      this.snU = this.addWeight('sn_u', [features], 'float32', uInitializer(this.seed), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const h = (inputShape as tfl.Shape[])[0];
    return [h?.[0] ?? null, 1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2)
        throw new RangeError('LabelProjection expects inputs [h, labels]');
      const [h, labels] = inputs as [tf.Tensor2D, tf.Tensor];
      const table = this.embeddings!.read();
      const e = this.snU ? spectralNormalize(table, this.snU, isTraining(kwargs)) : table;
      const idx = labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32');
      const rows = tf.gather(e, tf.reshape(idx, [-1]));
      return tf.sum(tf.mul(rows, h), -1, true);
    });
  }

  override getConfig(): ConfigDict {
    return {
      ...super.getConfig(),
      numClasses: this.numClasses,
      spectralNorm: this.spectralNorm,
      seed: this.seed,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Σ over height and width: `[N, H, W, C]` → `[N, C]`. */
export class GlobalSumPooling2D extends tfl.layers.Layer {
  static readonly className = 'GlobalSumPooling2D';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = oneShape(inputShape);
    return [shape[0] ?? null, shape[3] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.sum(oneTensor(inputs, 'GlobalSumPooling2D'), [1, 2]));
  }
}

export interface MinibatchStdDevArgs extends LayerArgs {
  /** Classes, when the layer takes labels as its second input (class-grouped statistics). */
  readonly numClasses?: number;
}

export class MinibatchStdDev extends tfl.layers.Layer {
  static readonly className = 'MinibatchStdDev';
  readonly numClasses: number | null;

  constructor(args: MinibatchStdDevArgs = {}) {
    super(args);
    this.numClasses = args.numClasses ?? null;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const h = (Array.isArray(inputShape[0]) ? (inputShape as tfl.Shape[])[0] : inputShape) as tfl.Shape;
    const c = h[3];
    return [h[0] ?? null, h[1] ?? null, h[2] ?? null, typeof c === 'number' ? c + 1 : null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const list = Array.isArray(inputs) ? inputs : [inputs];
      const h = list[0] as tf.Tensor4D;
      const [n, height, width] = h.shape;
      const flat = tf.reshape(h, [n, -1]);
      let s: tf.Tensor;
      if (list.length === 2 && this.numClasses !== null) {
        const labels = list[1]!.dtype === 'int32' ? list[1]! : tf.cast(list[1]!, 'int32');
        const y = tf.cast(tf.oneHot(tf.reshape(labels, [-1]) as tf.Tensor1D, this.numClasses), 'float32');
        const count = tf.reshape(tf.maximum(tf.sum(y, 0), 1), [-1, 1]);
        const mean = tf.div(tf.matMul(y, flat, true, false), count);
        const dev = tf.sub(flat, tf.matMul(y, mean));
        const variance = tf.div(tf.matMul(y, tf.square(dev), true, false), count);
        const perClass = tf.mean(tf.sqrt(tf.add(variance, 1e-8)), 1, true);
        s = tf.matMul(y, perClass);
      } else {
        const dev = tf.sub(flat, tf.mean(flat, 0, true));
        const std = tf.mean(tf.sqrt(tf.add(tf.mean(tf.square(dev), 0), 1e-8)));
        s = tf.mul(tf.ones([n, 1]), std);
      }
      const map = tf.tile(tf.reshape(s, [n, 1, 1, 1]), [1, height, width, 1]);
      return tf.concat([h, map], -1);
    });
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), numClasses: this.numClasses };
  }
}

export class ConditionScale extends tfl.layers.Layer {
  static readonly className = 'ConditionScale';
  private lambda: LayerVariable | null = null;

  override build(): void {
    this.lambda = this.addWeight('lambda', [], 'float32', tfl.initializers.ones(), undefined, false);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(oneTensor(inputs, 'ConditionScale'), this.lambda!.read()));
  }

  /** The stored λ. */
  strength(): number {
    if (!this.lambda) throw new Error('ConditionScale: not built');
    return this.lambda.read().dataSync()[0]!;
  }

  /** Sets λ (the loop calls this every step of a transitional run). */
  setStrength(lambda: number): void {
    if (!this.lambda) throw new Error('ConditionScale: not built');
    const value = tf.scalar(lambda);
    try {
      this.lambda.write(value);
    } finally {
      value.dispose();
    }
  }
}

for (const cls of [SNConv2D, SNDense, LabelProjection, GlobalSumPooling2D, ConditionScale, MinibatchStdDev]) {
  tf.serialization.registerClass(cls, LAYERS_PACKAGE);
}
