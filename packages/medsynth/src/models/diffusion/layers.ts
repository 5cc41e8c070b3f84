/**
 * Custom tfjs-layers layers of the diffusion U-Net (unet.ts), serialisable and registered under
 * `LAYERS_PACKAGE`. Everything is NHWC.
 *
 * - `GroupNorm` (Wu & He 2018): the C channels are split into G groups of C/G consecutive channels; every
 *   sample n and group g is normalised over its H·W·C/G values,
 *     μ_ng = mean(x_n,·,·,g),  σ²_ng = mean((x_n,·,·,g − μ_ng)²)  (biased),
 *     y = (x − μ_ng)/√(σ²_ng + ε) · γ_c + β_c,
 *   with ε = 1e-5 (PyTorch's default) and learned per-channel γ (init 1) and β (init 0), weights
 *   `<layer>/gamma`, `<layer>/beta`. TF.js has no group-norm op: x `[N,H,W,C]` is viewed as
 *   `[N,H,W,G,C/G]` and `tf.moments` runs over axes {1, 2, 4}; all of it is differentiable.
 * - `TimestepEmbedding` (weightless): t `[N, 1]` → `[N, dim]`, the sinusoidal embedding of DDPM (Ho et al.
 *   2020) and "Attention is all you need": [sin(t·f_0), …, sin(t·f_{h−1}), cos(t·f_0), …, cos(t·f_{h−1})],
 *   f_i = 10000^(−i/h), h = dim/2. t is a real number (continuous timesteps are fine).
 * - `BroadcastAdd` (weightless): inputs `[h [N,H,W,C], e [N,C]]` → h + e broadcast over H and W (the
 *   residual block's timestep/class term).
 * - `SpatialAttention` (weightless): inputs `[q, k, v]`, each `[N,H,W,C]`, viewed as `[N, P, C]` with
 *   P = H·W positions; out = softmax(q·kᵀ/√C) · v, the softmax over the key positions, back to `[N,H,W,C]`
 *   (single-head self-attention; the 1×1 projections around it are ordinary conv layers).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { LAYERS_PACKAGE, oneShape, oneTensor } from '../layers.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type LayerVariable = tfl.LayerVariable;
type ConfigDict = tf.serialization.ConfigDict;

/** ε of `GroupNorm` (PyTorch's `nn.GroupNorm` default). */
export const GROUP_NORM_EPSILON = 1e-5;

/** The base of the sinusoidal timestep frequencies (DDPM, Transformer). */
export const TIMESTEP_MAX_PERIOD = 10000;

function shapeList(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape[] {
  return Array.isArray(inputShape[0]) ? (inputShape as tfl.Shape[]) : [inputShape as tfl.Shape];
}

/**
 * The sinusoidal embedding of timesteps t `[N, 1]`: `[N, dim]` = [sin(t·f_i) | cos(t·f_i)], i = 0..dim/2−1,
 * f_i = 10000^(−i/(dim/2)). `dim` must be a positive even integer.
 */
export function timestepEmbedding(t: tf.Tensor2D, dim: number): tf.Tensor2D {
  if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0)
    throw new RangeError(`timestepEmbedding dim must be a positive even integer, got ${dim}`);
  if (t.rank !== 2 || t.shape[1] !== 1)
    throw new RangeError(`timestepEmbedding expects t of shape [N, 1], got [${t.shape.join(', ')}]`);
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.pow(TIMESTEP_MAX_PERIOD, -i / half);
  return tf.tidy(() => {
    const tt = t.dtype === 'float32' ? t : tf.cast(t, 'float32');
    const args = tf.mul(tt, tf.tensor2d(freqs, [1, half]));
    return tf.concat([tf.sin(args), tf.cos(args)], 1) as tf.Tensor2D;
  });
}

/**
 * Group normalisation of NHWC maps (see the module header): `groups` must divide the channel count.
 * `[N,H,W,C]` → `[N,H,W,C]`.
 */
export function groupNorm(
  x: tf.Tensor4D,
  groups: number,
  gamma: tf.Tensor | null = null,
  beta: tf.Tensor | null = null,
  epsilon = GROUP_NORM_EPSILON,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    if (c % groups !== 0) throw new RangeError(`groupNorm: ${groups} groups do not divide ${c} channels`);
    const grouped = tf.reshape(x, [n, h, w, groups, c / groups]);
    const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
    const normed = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, epsilon)));
    let y = tf.reshape(normed, [n, h, w, c]) as tf.Tensor4D;
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return y;
  });
}

// ---------------------------------------------------------------------------------------------------------

export interface GroupNormArgs extends LayerArgs {
  /** Number of groups; must divide the input's channel count. */
  groups: number;
  /** Default 1e-5. */
  epsilon?: number;
}

/** Group normalisation with learned per-channel γ and β (see the module header). */
export class GroupNorm extends tfl.layers.Layer {
  static readonly className = 'GroupNorm';
  readonly groups: number;
  readonly epsilon: number;
  private gamma: LayerVariable | null = null;
  private beta: LayerVariable | null = null;

  constructor(args: GroupNormArgs) {
    super(args);
    if (!Number.isInteger(args.groups) || args.groups < 1)
      throw new RangeError(`GroupNorm groups must be a positive integer, got ${args.groups}`);
    const epsilon = args.epsilon ?? GROUP_NORM_EPSILON;
    if (!(Number.isFinite(epsilon) && epsilon > 0))
      throw new RangeError(`GroupNorm epsilon must be a positive number, got ${epsilon}`);
    this.groups = args.groups;
    this.epsilon = epsilon;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = oneShape(inputShape);
    const c = shape[3];
    if (shape.length !== 4 || typeof c !== 'number')
      throw new RangeError(`GroupNorm expects NHWC input with known channels, got [${shape.join(', ')}]`);
    if (c % this.groups !== 0)
      throw new RangeError(`GroupNorm: ${this.groups} groups do not divide ${c} channels`);
    this.gamma = this.addWeight('gamma', [c], 'float32', tfl.initializers.ones());
    this.beta = this.addWeight('beta', [c], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() =>
      groupNorm(
        oneTensor(inputs, 'GroupNorm') as tf.Tensor4D,
        this.groups,
        this.gamma!.read(),
        this.beta!.read(),
        this.epsilon,
      ),
    );
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), groups: this.groups, epsilon: this.epsilon };
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface TimestepEmbeddingArgs extends LayerArgs {
  /** Embedding size (positive, even). */
  dim: number;
}

/** t `[N, 1]` → the sinusoidal embedding `[N, dim]` (weightless; see `timestepEmbedding`). */
export class TimestepEmbedding extends tfl.layers.Layer {
  static readonly className = 'TimestepEmbedding';
  readonly dim: number;

  constructor(args: TimestepEmbeddingArgs) {
    super(args);
    if (!Number.isInteger(args.dim) || args.dim < 2 || args.dim % 2 !== 0)
      throw new RangeError(`TimestepEmbedding dim must be a positive even integer, got ${args.dim}`);
    this.dim = args.dim;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return [oneShape(inputShape)[0] ?? null, this.dim];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return timestepEmbedding(oneTensor(inputs, 'TimestepEmbedding') as tf.Tensor2D, this.dim);
  }

  override getConfig(): ConfigDict {
    return { ...super.getConfig(), dim: this.dim };
  }
}

// ---------------------------------------------------------------------------------------------------------

/** `[h [N,H,W,C], e [N,C]]` → h + e broadcast over height and width. */
export class BroadcastAdd extends tfl.layers.Layer {
  static readonly className = 'BroadcastAdd';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return shapeList(inputShape)[0]!;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 2)
        throw new RangeError('BroadcastAdd expects inputs [h [N, H, W, C], e [N, C]]');
      const [h, e] = inputs as [tf.Tensor4D, tf.Tensor2D];
      const [n, c] = e.shape;
      if (h.rank !== 4 || h.shape[3] !== c || h.shape[0] !== n)
        throw new RangeError(
          `BroadcastAdd: h [${h.shape.join(', ')}] and e [${e.shape.join(', ')}] do not match`,
        );
      return tf.add(h, tf.reshape(e, [n, 1, 1, c]));
    });
  }
}

// ---------------------------------------------------------------------------------------------------------

/** Single-head dot-product attention over the H·W positions: `[q, k, v]` → softmax(q·kᵀ/√C)·v. */
export class SpatialAttention extends tfl.layers.Layer {
  static readonly className = 'SpatialAttention';

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return shapeList(inputShape)[2]!;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (!Array.isArray(inputs) || inputs.length !== 3)
        throw new RangeError('SpatialAttention expects inputs [q, k, v]');
      const [q, k, v] = inputs as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const [n, h, w, c] = v.shape;
      const flat = (x: tf.Tensor4D) => tf.reshape(x, [n, h * w, x.shape[3]]) as tf.Tensor3D;
      const logits = tf.mul(tf.matMul(flat(q), flat(k), false, true), 1 / Math.sqrt(q.shape[3]));
      const weights = tf.softmax(logits, -1) as tf.Tensor3D;
      return tf.reshape(tf.matMul(weights, flat(v)), [n, h, w, c]);
    });
  }
}

for (const cls of [GroupNorm, TimestepEmbedding, BroadcastAdd, SpatialAttention]) {
  tf.serialization.registerClass(cls, LAYERS_PACKAGE);
}
