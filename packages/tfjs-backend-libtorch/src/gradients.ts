// Fused gradients. TF.js builds some gradients out of several full-size element-wise ops (batch norm's out of
// about a dozen, ReLU's as dy * cast(step(x)), a mean's as dy * ones / n). On libtorch each is one ATen
// kernel, or a free broadcast view. The overrides apply only while the libtorch backend is active; on any
// other backend the original gradient runs unchanged.
//
// Also fused ops TF.js has no kernel for (`FUSED_KERNELS`: group normalisation, SiLU, and their gradients),
// registered for libtorch only under names no TF.js op uses: a model library looks them up with
// `getKernel(name, getBackend())` and, where present, runs them inside its own `customGrad`.
import {
  engine,
  getGradient,
  mul as tfMul,
  registerGradient,
  sigmoid as tfSigmoid,
  square as tfSquare,
  sub as tfSub,
  tanh as tfTanh,
  unregisterGradient,
  util,
} from '@tensorflow/tfjs-core';
import type { GradFunc, KernelConfig, NamedAttrMap, NamedTensorInfoMap, Tensor } from '@tensorflow/tfjs-core';

type NamedGradientMap = Record<string, () => Tensor>;
import { BACKEND_NAME, type LibtorchBackend } from './backend.js';
import { nchwView, nhwcView } from './kernels/layout.js';
import { kernel, op, opN, type Handle } from './kernels/util.js';

const reshape = op('aten::reshape');
const expand = op('aten::expand');
const divScalar = op('aten::div.Scalar');
const mul = op('aten::mul.Tensor');
const mulScalar = op('aten::mul.Scalar');
const neg = op('aten::neg');
const rsqrt = op('aten::rsqrt');
const addScalar = op('aten::add.Scalar');
const thresholdBackward = op('aten::threshold_backward');
const leakyReluBackward = op('aten::leaky_relu_backward');
const tanhBackward = op('aten::tanh_backward');
const sigmoidBackward = op('aten::sigmoid_backward');
const batchNormBackward = opN('aten::native_batch_norm_backward');
const toDtype = op('aten::to.dtype');
const contiguous = op('aten::contiguous');
const groupNormForward = opN('aten::native_group_norm');
const sumDims = op('aten::sum.dim_IntList');
const sub = op('aten::sub.Tensor');
const add = op('aten::add.Tensor');
const powScalar = op('aten::pow.Tensor_Scalar');
const addcmul = op('aten::addcmul');
const addcmulInPlace = op('aten::addcmul_');
const silu = op('aten::silu');
const siluBackward = op('aten::silu_backward');

const FLOAT32 = 6;

/** Gradient kernels the overrides below call; registered for libtorch only. */
export const gradientKernels: KernelConfig[] = [
  // All five batch-norm gradients from one native_batch_norm_backward pass (per-channel parameters):
  // dx = dy·s·r, dscale = Σ dy·(x−m)·r, doffset = Σ dy, dmean = −doffset·s·r, dvar = −½·dscale·s·r²,
  // with r = 1/√(var+ε) and s the scale (1 when absent).
  kernel('_LibtorchBatchNormGrad', ({ x, inputs, attrs }) => {
    const eps = attrs['varianceEpsilon'] as number;
    const rank = inputs['x']!.shape.length;
    const scale = inputs['scale'] ? x('scale') : null;
    const [dx, dscale, doffset] = batchNormBackward(
      nchwView(x('dy'), rank),
      nchwView(x('x'), rank),
      scale,
      x('mean'),
      x('variance'),
      null,
      null,
      false,
      eps,
      [true, true, true],
    );
    const r = rsqrt(addScalar(x('variance'), eps));
    const sr = scale ? mul(scale, r) : r;
    const dmean = neg(mul(doffset!, sr));
    const dvar = mulScalar(mul(mul(dscale!, sr), r), -0.5);
    return [nhwcView(dx!, rank), dmean, dvar, dscale!, doffset!];
  }),
  // d mean(x)/dx: dy/n broadcast over the reduced axes, as a stride-0 view (no full-size tensor is written).
  kernel('_LibtorchMeanGrad', ({ x, attrs }) => {
    const xShape = attrs['xShape'] as number[];
    const keptShape = attrs['keptShape'] as number[];
    return expand(divScalar(reshape(x('dy'), keptShape), attrs['size'] as number), xShape);
  }),
  kernel('_LibtorchSumGrad', ({ x, attrs }) =>
    expand(reshape(x('dy'), attrs['keptShape'] as number[]), attrs['xShape'] as number[]),
  ),
  kernel('_LibtorchReluGrad', ({ x, inputs }) => {
    const dy = inputs['dy']!.dtype === 'float32' ? x('dy') : toDtype(x('dy'), FLOAT32);
    const xf = inputs['x']!.dtype === 'float32' ? x('x') : toDtype(x('x'), FLOAT32);
    return thresholdBackward(dy, xf, 0);
  }),
  kernel('_LibtorchLeakyReluGrad', ({ x, attrs }) =>
    leakyReluBackward(x('dy'), x('x'), attrs['alpha'] as number, false),
  ),
  kernel('_LibtorchTanhGrad', ({ x }) => tanhBackward(x('dy'), x('y'))),
  kernel('_LibtorchSigmoidGrad', ({ x }) => sigmoidBackward(x('dy'), x('y'))),
];

/**
 * Fused ops that TF.js has no kernel for, registered for the libtorch backend only, under names no TF.js op
 * uses. A dependent package detects them with `getKernel(FUSED_KERNELS.groupNorm, getBackend())` and runs
 * them through `engine().runKernel` inside its own `customGrad` (they have no registered gradients: the
 * `…Grad` kernels are the first-order gradients, and are not differentiable themselves).
 *
 * - `groupNorm` — inputs `x` `[N,H,W,C]` float32 (NHWC), optional `gamma` and `beta` `[C]` float32;
 *   attrs `groups` (a positive divisor of C), `epsilon`. Outputs `[y, mean, rstd]`: y `[N,H,W,C]`, with
 *   μ_ng = mean of the H·W·C/G values of sample n and group g (C/G consecutive channels),
 *   σ²_ng their biased variance, y = (x − μ_ng)·rstd_ng·γ_c + β_c, rstd = 1/√(σ² + ε); mean, rstd `[N, G]`.
 * - `groupNormGrad` — inputs `dy`, `x` `[N,H,W,C]`, `mean`, `rstd` `[N,G]` (from `groupNorm`), optional
 *   `gamma` `[C]`; attr `groups`. Outputs `[dx, dgamma, dbeta]` (`[N,H,W,C]`, `[C]`, `[C]`; dgamma and dbeta
 *   are computed even without gamma/beta).
 * - `silu` — input `x` float32; output x·σ(x) (SiLU, tfjs-layers' 'swish').
 * - `siluGrad` — inputs `dy`, `x`; output dy·σ(x)·(1 + x·(1 − σ(x))).
 */
export const FUSED_KERNELS = {
  groupNorm: 'GroupNormLibtorch',
  groupNormGrad: 'GroupNormGradLibtorch',
  silu: 'SiluLibtorch',
  siluGrad: 'SiluGradLibtorch',
} as const;

/** c10::MemoryFormat::ChannelsLast. */
const CHANNELS_LAST = 2;

/**
 * Largest |μ|/σ of a group for which the single-pass group-norm statistics are used as they are. ATen 1.13's
 * channels-last native_group_norm takes the variance as E[x²] − E[x]² in float32, whose error grows as
 * (μ/σ)²: measured max |Δy| ≈ 1e-6·(μ/σ)² at 3136 values per group (4e-7 at μ/σ = 0, 8e-5 at 10, 1e-2 at
 * 100; the composed TF.js ops and ATen's contiguous kernel stay near 1e-6). The backward's Σ dy·x − μ·Σ dy
 * loses precision linearly in μ/σ. Beyond this ratio both kernels first centre x on the group means.
 */
const CENTRE_ABOVE = 4;

/** Whether some group has |μ|·rstd > CENTRE_ABOVE (reads the small `[N, G]` statistics to the host). */
function illConditioned(b: LibtorchBackend, mean: Handle, rstd: Handle): boolean {
  const m = b.addon.toBuffer(mean);
  const r = b.addon.toBuffer(rstd);
  for (let i = 0; i < m.length; i++) if (!(Math.abs(m[i]!) * r[i]! <= CENTRE_ABOVE)) return true;
  return false;
}

interface GroupNormGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  groups: number;
  /** Channels per group. */
  d: number;
}

/** Checks a group-norm kernel's inputs; returns its geometry. */
function groupNormGeometry(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap): GroupNormGeometry {
  const xi = inputs['x'];
  if (xi === undefined) throw new Error(`${name}: input 'x' is missing`);
  if (xi.shape.length !== 4 || xi.dtype !== 'float32')
    throw new Error(`${name}: x must be NHWC float32 of rank 4, got ${xi.dtype} [${xi.shape.join(', ')}]`);
  const [n, h, w, c] = xi.shape as [number, number, number, number];
  const groups = attrs['groups'];
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1 || c % groups !== 0)
    throw new Error(
      `${name}: groups must be a positive integer dividing the ${c} channels, got ${String(groups)}`,
    );
  for (const p of ['gamma', 'beta']) {
    const t = inputs[p];
    if (t !== undefined && (t.shape.length !== 1 || t.shape[0] !== c || t.dtype !== 'float32'))
      throw new Error(`${name}: ${p} must be float32 [${c}], got ${t.dtype} [${t.shape.join(', ')}]`);
  }
  return { n, h, w, c, groups, d: c / groups };
}

/** x `[N,H,W,C]` minus its per-(n, group) means `[N, G]`: contiguous NHWC. */
function centred(xh: Handle, mean: Handle, g: GroupNormGeometry): Handle {
  const grouped = reshape(xh, [g.n, g.h * g.w, g.groups, g.d]);
  return reshape(sub(grouped, reshape(mean, [g.n, 1, g.groups, 1])), [g.n, g.h, g.w, g.c]);
}

function requireFloat32(name: string, inputs: NamedTensorInfoMap, names: readonly string[]): void {
  for (const p of names) {
    const t = inputs[p];
    if (t !== undefined && t.dtype !== 'float32')
      throw new Error(`${name}: ${p} must be float32, got ${t.dtype}`);
  }
}

/** Kernels of `FUSED_KERNELS`; registered for libtorch only. */
export const fusedKernels: KernelConfig[] = [
  // native_group_norm on the NCHW view of the NHWC data. Its CPU kernel (1.13) has a channels-last path: the
  // view is read in place and y comes back channels-last, i.e. its NHWC view is contiguous (no copy either
  // way; the `contiguous` calls are no-ops then and only guard other layouts and other libtorch versions).
  // Ill-conditioned groups (see CENTRE_ABOVE) are normalised again from x − μ (group norm is invariant to a
  // per-group shift), which costs one more pass over x.
  kernel(FUSED_KERNELS.groupNorm, ({ x, inputs, attrs, b }) => {
    const geo = groupNormGeometry(FUSED_KERNELS.groupNorm, inputs, attrs);
    const { n, h, w, c, groups } = geo;
    const eps = attrs['epsilon'] === undefined ? 1e-5 : (attrs['epsilon'] as number);
    const gamma = inputs['gamma'] ? x('gamma') : null;
    const beta = inputs['beta'] ? x('beta') : null;
    const forward = (xh: Handle) =>
      groupNormForward(contiguous(nchwView(xh), CHANNELS_LAST), gamma, beta, n, c, h * w, groups, eps);
    let [y, mean, rstd] = forward(x('x')) as [Handle, Handle, Handle];
    if (illConditioned(b, mean, rstd)) {
      const [y2, mean2, rstd2] = forward(centred(x('x'), mean, geo)) as [Handle, Handle, Handle];
      [y, mean, rstd] = [y2, add(mean, mean2), rstd2];
    }
    return [contiguous(nhwcView(y)), mean, rstd];
  }),
  // Not native_group_norm_backward: in 1.13 its CPU kernel reads X and dY as contiguous NCHW whatever their
  // strides (channels-last support came in 2.0), so on the channels-last view it is silently wrong, and
  // copying x and dy to NCHW and dx back measured 1.4–17× slower than this. The same maths (PyTorch's
  // GroupNormKernel) on the NHWC data, with per-(n, c) sums ds = Σ_hw dy·x and db = Σ_hw dy, and per group
  // u = Σ_c∈g γ_c·db, v = Σ_c∈g γ_c·ds, s = 1/(H·W·C/G):
  //   dx = r·γ_c·dy − b·x + (b·μ − s·u·r),  b = (v − u·μ)·r³·s,
  //   dγ_c = Σ_n (ds − db·μ)·r,  dβ_c = Σ_n db.
  // Full-size passes: dy·x (written once, summed), Σ dy, and dx (written once, then updated in place). For
  // ill-conditioned groups x is centred first (one more pass) and μ taken as 0.
  kernel(FUSED_KERNELS.groupNormGrad, ({ x, inputs, attrs, b: backend }) => {
    const geo = groupNormGeometry(FUSED_KERNELS.groupNormGrad, inputs, attrs);
    const { n, c, groups, d } = geo;
    const hw = geo.h * geo.w;
    requireFloat32(FUSED_KERNELS.groupNormGrad, inputs, ['dy', 'mean', 'rstd']);
    const s = 1 / (d * hw);
    const centre = illConditioned(backend, x('mean'), x('rstd'));
    const xh = centre ? centred(x('x'), x('mean'), geo) : x('x');
    const dyh = x('dy');
    const dy3 = reshape(dyh, [n, hw, c]);
    const ds = reshape(sumDims(mul(dy3, reshape(xh, [n, hw, c])), [1], false), [n, groups, d]);
    const db = reshape(sumDims(dy3, [1], false), [n, groups, d]);
    const mu = centre ? null : reshape(x('mean'), [n, groups, 1]);
    const r = reshape(x('rstd'), [n, groups, 1]);
    const gamma: Handle | null = inputs['gamma'] ? reshape(x('gamma'), [1, groups, d]) : null;
    const u = sumDims(gamma ? mul(db, gamma) : db, [2], true);
    const v = sumDims(gamma ? mul(ds, gamma) : ds, [2], true);
    const b = mulScalar(mul(mu ? sub(v, mul(u, mu)) : v, powScalar(r, 3)), s);
    const ur = mul(u, r);
    const offset = mu ? sub(mul(b, mu), ur, s) : mulScalar(ur, -s);
    const perChannel = (t: Handle) => reshape(expand(t, [n, groups, d]), [n, 1, 1, c]);
    const dx = addcmul(perChannel(offset), xh, perChannel(b), -1);
    addcmulInPlace(dx, dyh, perChannel(gamma ? mul(r, gamma) : r), 1);
    const dsCentred = mu ? sub(ds, mul(db, mu)) : ds;
    const dgamma = reshape(sumDims(mul(dsCentred, r), [0], false), [c]);
    const dbeta = reshape(sumDims(db, [0], false), [c]);
    return [dx, dgamma, dbeta];
  }),
  kernel(FUSED_KERNELS.silu, ({ x, inputs }) => {
    requireFloat32(FUSED_KERNELS.silu, inputs, ['x']);
    return silu(x('x'));
  }),
  kernel(FUSED_KERNELS.siluGrad, ({ x, inputs }) => {
    requireFloat32(FUSED_KERNELS.siluGrad, inputs, ['dy', 'x']);
    return siluBackward(x('dy'), x('x'));
  }),
];

const run = (name: string, inputs: Record<string, Tensor>, attrs: NamedAttrMap = {}) =>
  engine().runKernel(name, inputs, attrs) as Tensor | Tensor[];

/** Reduction geometry of a Mean/Sum over `axis` of a tensor shaped `xShape`. */
function reduction(xShape: number[], axis: unknown): { keptShape: number[]; size: number } {
  const axes = util.parseAxisParam(axis as number | number[], xShape);
  const keptShape = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  const size = axes.reduce((n, a) => n * xShape[a]!, 1);
  return { keptShape, size };
}

type Fused = (dy: Tensor, saved: Tensor[], attrs: NamedAttrMap) => NamedGradientMap | null;

/** Fused gradients by kernel name. Returning null falls back to TF.js's own gradient. */
const fused: Record<string, Fused> = {
  FusedBatchNorm: (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved as [Tensor, Tensor, Tensor, Tensor | undefined];
    const c = x.shape[x.rank - 1];
    const perChannel = [mean, variance, scale].every(
      (t) => t === undefined || (t.rank === 1 && t.shape[0] === c),
    );
    if (!perChannel || x.rank < 2 || x.dtype !== 'float32') return null;
    // Computed once, eagerly, in the backward pass's scope: each thunk below only hands out its part.
    const inputs: Record<string, Tensor> = { dy, x, mean, variance };
    if (scale) inputs['scale'] = scale;
    const [dx, dmean, dvar, dscale, doffset] = run('_LibtorchBatchNormGrad', inputs, attrs) as Tensor[];
    return {
      x: () => dx!,
      mean: () => dmean!,
      variance: () => dvar!,
      scale: () => dscale!,
      offset: () => doffset!,
    };
  },
  Mean: (dy, saved, attrs) => {
    const [x] = saved as [Tensor];
    const { keptShape, size } = reduction(x.shape, attrs['axis']);
    return {
      x: () => run('_LibtorchMeanGrad', { dy }, { xShape: x.shape, keptShape, size }) as Tensor,
    };
  },
  Sum: (dy, saved, attrs) => {
    const [x] = saved as [Tensor];
    if (dy.dtype !== 'float32') return null;
    const { keptShape } = reduction(x.shape, attrs['axis']);
    return { x: () => run('_LibtorchSumGrad', { dy }, { xShape: x.shape, keptShape }) as Tensor };
  },
  Relu: (dy, saved) => {
    const [x] = saved as [Tensor];
    return { x: () => run('_LibtorchReluGrad', { dy, x }) as Tensor };
  },
  LeakyRelu: (dy, saved, attrs) => {
    const [x] = saved as [Tensor];
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
    return {
      x: () => run('_LibtorchLeakyReluGrad', { dy, x }, { alpha: attrs['alpha'] as number }) as Tensor,
    };
  },
  Tanh: (dy, saved) => {
    const [y] = saved as [Tensor];
    if (y.dtype !== 'float32' || dy.dtype !== 'float32') return null;
    return { x: () => run('_LibtorchTanhGrad', { dy, y }) as Tensor };
  },
  Sigmoid: (dy, saved) => {
    const [y] = saved as [Tensor];
    if (y.dtype !== 'float32' || dy.dtype !== 'float32') return null;
    return { x: () => run('_LibtorchSigmoidGrad', { dy, y }) as Tensor };
  },
};

/**
 * Tanh and Sigmoid: TF.js differentiates them through a saved copy of the output, and the tape records that
 * copy before the op itself, so a second-order gradient silently loses the path through it (an R1 penalty
 * through a tanh or sigmoid would be wrong, on every backend). The wrapped gradients also save the input and,
 * while a tape is recording, differentiate a recomputation from it: d tanh = 1 − tanh(x)², d σ = σ(x)(1 − σ(x)).
 */
const derivativeFromInput: Record<string, (x: Tensor) => Tensor> = {
  Tanh: (x) => tfSub(1, tfSquare(tfTanh(x))),
  Sigmoid: (x) => {
    const s = tfSigmoid(x);
    return tfMul(s, tfSub(1, s));
  },
};

/** Our wrappers, to tell them from gradients registered (again) after us. */
const wrappers = new WeakSet<GradFunc>();

/**
 * Wraps TF.js's gradients for the kernels above so that, on libtorch, the fused versions run. Idempotent.
 * tfjs-core's Node bundle registers no gradients; tfjs-layers (or `@tensorflow/tfjs`) does when it is first
 * imported, replacing any wrapper made before. So this runs when the backend is registered and again when
 * it is created (first `setBackend('libtorch')`), and wraps whatever gradient is current.
 */
export function installFusedGradients(): void {
  for (const [kernelName, fusedGrad] of Object.entries(fused)) {
    const original = getGradient(kernelName);
    if (original === undefined || wrappers.has(original.gradFunc)) continue;
    const fromInput = derivativeFromInput[kernelName];
    const gradFunc: GradFunc = (dy, savedAll, attrs) => {
      // With `fromInput`, the input x is saved ahead of the op's own saved tensors.
      const saved = fromInput ? savedAll.slice(1) : savedAll;
      // A tape still recording while this gradient runs means a higher-order gradient (R1, WGAN-GP): the
      // fused kernels have no gradients of their own, so TF.js's differentiable gradient runs instead.
      const e = engine();
      const higherOrder = e.state.gradientDepth > 0;
      if (higherOrder && fromInput && !Array.isArray(dy)) {
        const x = savedAll[0]!;
        return { x: () => tfMul(dy, fromInput(x)) };
      }
      if (e.backendName === BACKEND_NAME && !Array.isArray(dy) && !higherOrder) {
        const grads = fusedGrad(dy, saved, attrs);
        if (grads !== null) return grads;
      }
      return original.gradFunc(dy, saved, attrs);
    };
    wrappers.add(gradFunc);
    unregisterGradient(kernelName);
    registerGradient({ ...original, ...(fromInput ? { inputsToSave: ['x'] } : {}), gradFunc });
  }
}
