/**
 * Custom tfjs-layers layers of the diffusion U-Net (unet.ts), serialisable and registered under
 * `LAYERS_PACKAGE`. Everything is NHWC.
 *
 * - `GroupNorm` (Wu & He 2018): the C channels are split into G groups of C/G consecutive channels; every
 *   sample n and group g is normalised over its H·W·C/G values,
 *     μ_ng = mean(x_n,·,·,g),  σ²_ng = mean((x_n,·,·,g − μ_ng)²)  (biased),
 *     y = (x − μ_ng)·r_ng · γ_c + β_c,  r_ng = 1/√(σ²_ng + ε),
 *   with ε = 1e-5 (PyTorch's default) and learned per-channel γ (init 1) and β (init 0), weights
 *   `<layer>/gamma`, `<layer>/beta`. Its gradient, with x̂ = (x − μ)·r, g = γ·dy and means over the group:
 *     dx = r·(g − mean(g) − x̂·mean(g·x̂)),  dγ_c = Σ_n,h,w dy·x̂,  dβ_c = Σ_n,h,w dy.
 *   TF.js has no group-norm op. `groupNormComposed`: x `[N,H,W,C]` viewed as `[N,H,W,G,C/G]`, `tf.moments`
 *   over axes {1, 2, 4} and element-wise ops (~15 kernels forward, more backward), differentiable to any
 *   order, on every backend.
 * - `SiLU` (weightless): y = x·σ(x) (tfjs-layers' 'swish' activation), dy/dx = σ(x)·(1 + x·(1 − σ(x))).
 *   `siluComposed` is tf.mul(x, tf.sigmoid(x)).
 *
 * Fused path. When the active backend has the fused kernels of tfjs-backend-libtorch (its `FUSED_KERNELS`:
 * `GroupNormLibtorch`, `GroupNormGradLibtorch`, `SiluLibtorch`, `SiluGradLibtorch`, looked up by name with
 * `tf.getKernel(name, tf.getBackend())` since that package is optional), `groupNorm` and `silu` — and so the
 * `GroupNorm` and `SiLU` layers — run them in a `tf.customGrad`: forward one kernel (ATen's
 * native_group_norm / silu), backward one kernel (the gradient above in a few ATen ops / silu_backward),
 * agreeing with the composed ops to float32 rounding (~1e-5 relative). That replaces most of the U-Net's
 * element-wise work. On any other backend (wasm, cpu, tfjs-node) the composed ops run, as before. The fused path gives first-order gradients only — all the diffusion model needs (its loss is a
 * plain MSE on ε̂): `tf.customGrad` is not twice-differentiable, and differentiating the fused gradient
 * again fails loudly (its kernels have no gradients). Use the `…Composed` functions for higher orders.
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
import { LAYERS_PACKAGE, oneShape, oneTensor, shapeList } from '../layers.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type LayerVariable = tfl.LayerVariable;
type ConfigDict = tf.serialization.ConfigDict;

/** ε of `GroupNorm` (PyTorch's `nn.GroupNorm` default). */
export const GROUP_NORM_EPSILON = 1e-5;

/** The base of the sinusoidal timestep frequencies (DDPM, Transformer). */
export const TIMESTEP_MAX_PERIOD = 10000;

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
 * Kernel names of tfjs-backend-libtorch's fused ops (its exported `FUSED_KERNELS`). That package is an
 * optional dependency loaded at run time, so its names are repeated here and looked up per call.
 */
const FUSED = {
  groupNorm: 'GroupNormLibtorch',
  groupNormGrad: 'GroupNormGradLibtorch',
  silu: 'SiluLibtorch',
  siluGrad: 'SiluGradLibtorch',
} as const;

/** Whether the active backend has a forward kernel and its gradient kernel. */
function hasFused(forward: string, gradient: string): boolean {
  const backend = tf.getBackend();
  return tf.getKernel(forward, backend) !== undefined && tf.getKernel(gradient, backend) !== undefined;
}

function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) {
  return tf.engine().runKernel(name, inputs, attrs);
}

function checkGroups(c: number, groups: number): void {
  if (c % groups !== 0) throw new RangeError(`groupNorm: ${groups} groups do not divide ${c} channels`);
}

/**
 * Group normalisation of NHWC maps (see the module header) from TF.js ops: reshape, moments and
 * element-wise ops. Runs on every backend and is differentiable to any order. `groups` must divide the
 * channel count. `[N,H,W,C]` → `[N,H,W,C]`.
 */
export function groupNormComposed(
  x: tf.Tensor4D,
  groups: number,
  gamma: tf.Tensor | null = null,
  beta: tf.Tensor | null = null,
  epsilon = GROUP_NORM_EPSILON,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    checkGroups(c, groups);
    const grouped = tf.reshape(x, [n, h, w, groups, c / groups]);
    const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
    const normed = tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, epsilon)));
    let y = tf.reshape(normed, [n, h, w, c]) as tf.Tensor4D;
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return y;
  });
}

/** The fused group norm: one kernel forward, one backward (first-order gradients only). */
function groupNormFused(
  x: tf.Tensor4D,
  groups: number,
  gamma: tf.Tensor1D | null,
  beta: tf.Tensor1D | null,
  epsilon: number,
): tf.Tensor4D {
  const args: tf.Tensor[] = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
  const f = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = inputs.pop() as tf.GradSaveFunc;
    const [xi, ...rest] = inputs as tf.Tensor[];
    const g = gamma ? rest.shift() : undefined;
    const b = beta ? rest.shift() : undefined;
    const affine: tf.NamedTensorMap = { ...(g ? { gamma: g } : {}), ...(b ? { beta: b } : {}) };
    const [y, mean, rstd] = runKernel(
      FUSED.groupNorm,
      { x: xi!, ...affine },
      { groups, epsilon },
    ) as tf.Tensor[];
    save([xi!, mean!, rstd!, ...(g ? [g] : [])]);
    return {
      value: y as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sMean, sRstd, sGamma] = saved;
        const [dx, dgamma, dbeta] = runKernel(
          FUSED.groupNormGrad,
          { dy, x: sx!, mean: sMean!, rstd: sRstd!, ...(sGamma ? { gamma: sGamma } : {}) },
          { groups },
        ) as tf.Tensor[];
        const grads = [dx!];
        if (gamma) grads.push(dgamma!);
        else dgamma!.dispose();
        if (beta) grads.push(dbeta!);
        else dbeta!.dispose();
        return grads;
      },
    };
  });
  return f(...args);
}

/** A per-channel float32 vector `[C]`, the only γ/β the fused kernel takes. */
const perChannel = (t: tf.Tensor | null, c: number): t is tf.Tensor1D =>
  t !== null && t.rank === 1 && t.shape[0] === c && t.dtype === 'float32';

/**
 * Group normalisation of NHWC maps (see the module header): `groups` must divide the channel count.
 * `[N,H,W,C]` → `[N,H,W,C]`. On a backend with the fused kernels (libtorch) and float32 input with
 * per-channel γ, β (or none), the fused path (first-order gradients only); else `groupNormComposed`.
 */
export function groupNorm(
  x: tf.Tensor4D,
  groups: number,
  gamma: tf.Tensor | null = null,
  beta: tf.Tensor | null = null,
  epsilon = GROUP_NORM_EPSILON,
): tf.Tensor4D {
  const c = x.shape[3];
  if (
    x.rank === 4 &&
    x.dtype === 'float32' &&
    (gamma === null || perChannel(gamma, c)) &&
    (beta === null || perChannel(beta, c)) &&
    hasFused(FUSED.groupNorm, FUSED.groupNormGrad)
  ) {
    checkGroups(c, groups);
    return groupNormFused(x, groups, gamma as tf.Tensor1D | null, beta as tf.Tensor1D | null, epsilon);
  }
  return groupNormComposed(x, groups, gamma, beta, epsilon);
}

/** SiLU from TF.js ops, x·sigmoid(x): every backend, differentiable to any order. */
export function siluComposed(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/**
 * SiLU, x·sigmoid(x). On a backend with the fused kernels (libtorch) and float32 input, one kernel forward
 * and one backward (first-order gradients only); else `siluComposed`.
 */
export function silu(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32' || !hasFused(FUSED.silu, FUSED.siluGrad)) return siluComposed(x);
  const f = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, save] = inputs as [tf.Tensor, tf.GradSaveFunc];
    save([xi]);
    return {
      value: runKernel(FUSED.silu, { x: xi }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => runKernel(FUSED.siluGrad, { dy, x: sx! }) as tf.Tensor,
    };
  });
  return f(x);
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

/** SiLU, x·sigmoid(x), as a layer (weightless; see `silu`). Replaces tfjs-layers' 'swish' activation. */
export class SiLU extends tfl.layers.Layer {
  static readonly className = 'SiLU';

  constructor(args: LayerArgs = {}) {
    super(args);
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return silu(oneTensor(inputs, 'SiLU'));
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

for (const cls of [GroupNorm, SiLU, TimestepEmbedding, BroadcastAdd, SpatialAttention]) {
  tf.serialization.registerClass(cls, LAYERS_PACKAGE);
}
