// Fused gradients. TF.js builds some gradients out of several full-size element-wise ops (batch norm's out of
// about a dozen, ReLU's as dy * cast(step(x)), a mean's as dy * ones / n). On libtorch each is one ATen
// kernel, or a free broadcast view. The overrides apply only while the libtorch backend is active; on any
// other backend the original gradient runs unchanged.
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
import type { GradFunc, KernelConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

type NamedGradientMap = Record<string, () => Tensor>;
import { BACKEND_NAME } from './backend.js';
import { nchwView, nhwcView } from './kernels/layout.js';
import { kernel, op, opN } from './kernels/util.js';

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
