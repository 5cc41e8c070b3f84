// Reductions (Sum, Mean, Prod, Max, Min, All, Any, ArgMax, ArgMin), Softmax/LogSoftmax, scans (Cumsum,
// Cumprod), TopK and the counting kernels (UnsortedSegmentSum, Bincount, DenseBincount). Every kernel is a few
// ATen calls on the whole tensor.
import {
  util,
  type DataType,
  type KernelConfig,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { kernel, op, opN, SCALAR_TYPE, type Handle } from './util.js';

const alias = op('aten::alias');
const to = op('aten::to.dtype');
const sumDims = op('aten::sum.dim_IntList');
const meanDims = op('aten::mean.dim');
const amax = op('aten::amax');
const amin = op('aten::amin');
const prodDim = op('aten::prod.dim_int');
const allDim = op('aten::all.dim');
const anyDim = op('aten::any.dim');
const argmax = op('aten::argmax');
const argmin = op('aten::argmin');
const softmax = op('aten::softmax.int');
const logSoftmax = op('aten::log_softmax.int');
const cumsum = op('aten::cumsum');
const cumprod = op('aten::cumprod');
const flip = op('aten::flip');
const narrow = op('aten::narrow');
const constantPad = op('aten::constant_pad_nd');
const sortStable = opN('aten::sort.stable');
const reshape = op('aten::reshape');
const where = op('aten::where.ScalarOther');
const lt = op('aten::lt.Scalar');
const ge = op('aten::ge.Scalar');
const ne = op('aten::ne.Scalar');
const logicalAnd = op('aten::logical_and');
const newZeros = op('aten::new_zeros');
const newOnes = op('aten::new_ones');
const indexAdd = op('aten::index_add');
const add = op('aten::add.Tensor');
const mulScalar = op('aten::mul.Scalar');
const arangeOut = op('aten::arange.start_out');
const newEmpty = op('aten::new_empty');
const unsqueeze = op('aten::unsqueeze');
const maskedFill = op('aten::masked_fill.Scalar');
const isnan = op('aten::isnan');

/** The ATen code of the dtype TF.js gives sums, products and scans: int32 for int32 and bool inputs. */
function accumulateType(dtype: DataType): number {
  return dtype === 'float32' ? SCALAR_TYPE.float32 : SCALAR_TYPE.int32;
}

/** The reduction axes of a kernel's `axis` attribute, non-negative. */
function axesOf(attrs: NamedAttrMap, name: string, x: TensorInfo): number[] {
  return util.parseAxisParam(attrs[name] as number | number[], x.shape);
}

/** The ATen ScalarType code of a TF.js dtype. */
function codeOf(dtype: DataType): number {
  return dtype === 'float32' ? SCALAR_TYPE.float32 : dtype === 'int32' ? SCALAR_TYPE.int32 : SCALAR_TYPE.bool;
}

/** `t` (of TF.js dtype `dtype`) as ScalarType `code`, as a new handle: an alias when nothing changes. */
function asType(t: Handle, dtype: DataType, code: number): Handle {
  return codeOf(dtype) === code ? alias(t) : to(t, code);
}

/** Applies a one-axis ATen reduction over several axes, highest first so the lower indices stay valid when
 * dims are dropped. */
function reduceEach(t: Handle, axes: number[], f: (t: Handle, dim: number) => Handle): Handle {
  let out = t;
  for (const axis of [...axes].sort((a, b) => b - a)) out = f(out, axis);
  return out === t ? alias(t) : out;
}

/** Integers 0..n-1 (int32) on `like`'s device. */
function arange(like: Handle, n: number): Handle {
  return arangeOut(0n, BigInt(n), 1n, newEmpty(like, [0], SCALAR_TYPE.int32));
}

/** x shifted one place along `axis` (`fill` in front, the last element dropped): turns an inclusive scan into
 * an exclusive one without subtracting, so float sums stay exact. */
function shiftRight(t: Handle, axis: number, rank: number, length: number, fill: number): Handle {
  const pad = new Array<number>(2 * (rank - axis)).fill(0);
  pad[2 * (rank - 1 - axis)] = 1;
  return narrow(constantPad(t, pad, fill), axis, 0, length);
}

function scanKernel(name: 'Cumsum' | 'Cumprod'): KernelConfig {
  const scan = name === 'Cumsum' ? cumsum : cumprod;
  const identity = name === 'Cumsum' ? 0 : 1;
  return kernel(name, ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const rank = info.shape.length;
    const axis = util.parseAxisParam(attrs['axis'] as number, info.shape)[0]!;
    const reverse = attrs['reverse'] as boolean;
    let t = x('x');
    if (reverse) t = flip(t, [axis]);
    if (attrs['exclusive'] as boolean) t = shiftRight(t, axis, rank, info.shape[axis]!, identity);
    const out = scan(t, axis, accumulateType(info.dtype));
    return reverse ? flip(out, [axis]) : out;
  });
}

/** ArgMax / ArgMin. TF.js skips NaNs (ATen ranks them highest), so they are turned into the value that never
 * wins; bools are compared as numbers, which ATen's arg reductions do not take. */
function argKernel(name: 'ArgMax' | 'ArgMin'): KernelConfig {
  const f = name === 'ArgMax' ? argmax : argmin;
  const loser = name === 'ArgMax' ? -Infinity : Infinity;
  return kernel(name, ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const axis = axesOf(attrs, 'axis', info)[0]!;
    let t = x('x');
    if (info.dtype === 'bool') t = to(t, SCALAR_TYPE.int32);
    else if (info.dtype === 'float32') t = maskedFill(t, isnan(t), loser);
    return f(t, axis, false);
  });
}

/** Bin ids with the ones outside [0, numBins) moved to a spare last bin that is dropped afterwards: TF.js
 * ignores segment ids and bincount values it has no bin for. */
function binIds(ids: Handle, numBins: number): Handle {
  const valid = logicalAnd(ge(ids, 0n), lt(ids, BigInt(numBins)));
  return where(valid, ids, BigInt(numBins));
}

/** Sums the rows of `values` ([n, ...rowShape]) into `numBins` bins by `ids` (int32, [n]). */
function binSum(values: Handle, ids: Handle, numBins: number, rowShape: number[]): Handle {
  const bins = newZeros(values, [numBins + 1, ...rowShape]);
  return narrow(indexAdd(bins, 0, binIds(ids, numBins), values), 0, 0, numBins);
}

/** Bincount / DenseBincount: counts (or sums `weights`) per value of x, row by row when x is 2-D; the result
 * has the weights' dtype. Negative values are ignored (TF.js's CPU backend throws on them instead). */
function bincount(
  x: Handle,
  xShape: number[],
  weights: Handle,
  weightsInfo: TensorInfo,
  size: number,
  binary: boolean,
): Handle {
  const rows = xShape.length === 2 ? xShape[0]! : 1;
  const cols = xShape.length === 2 ? xShape[1]! : util.sizeFromShape(xShape);
  // Each row owns size + 1 bins (the last one spare) of one flat vector.
  const offsets = mulScalar(unsqueeze(arange(x, rows), 1), BigInt(size + 1));
  const flatIds = reshape(add(binIds(reshape(x, [rows, cols]), size), offsets), [-1]);
  const code = codeOf(weightsInfo.dtype);
  const values =
    !binary && util.sizeFromShape(weightsInfo.shape) > 0
      ? reshape(weights, [-1])
      : newOnes(weights, [rows * cols], code);
  const bins = newZeros(values, [rows * (size + 1)]);
  const summed = narrow(reshape(indexAdd(bins, 0, flatIds, values), [rows, size + 1]), 1, 0, size);
  const counts = binary ? to(ne(summed, 0), code) : summed;
  return xShape.length === 2 ? counts : reshape(counts, [size]);
}

export const reduceKernels: KernelConfig[] = [
  kernel('Sum', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const axes = axesOf(attrs, 'axis', info);
    const code = accumulateType(info.dtype);
    // ATen reads an empty dim list as "all dims"; TF.js as "none".
    if (axes.length === 0) return asType(x('x'), info.dtype, code);
    return sumDims(x('x'), axes, attrs['keepDims'] as boolean, code);
  }),
  kernel('Mean', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const axes = axesOf(attrs, 'axis', info);
    if (axes.length === 0) return asType(x('x'), info.dtype, SCALAR_TYPE.float32);
    return meanDims(x('x'), axes, attrs['keepDims'] as boolean, SCALAR_TYPE.float32);
  }),
  kernel('Prod', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const code = accumulateType(info.dtype);
    const keepDims = attrs['keepDims'] as boolean;
    const axes = axesOf(attrs, 'axis', info);
    if (axes.length === 0) return asType(x('x'), info.dtype, code);
    return reduceEach(x('x'), axes, (t, d) => prodDim(t, d, keepDims, code));
  }),
  kernel('Max', ({ x, inputs, attrs }) => {
    const axes = axesOf(attrs, 'reductionIndices', inputs['x']!);
    return axes.length === 0 ? alias(x('x')) : amax(x('x'), axes, attrs['keepDims'] as boolean);
  }),
  kernel('Min', ({ x, inputs, attrs }) => {
    const axes = axesOf(attrs, 'axis', inputs['x']!);
    return axes.length === 0 ? alias(x('x')) : amin(x('x'), axes, attrs['keepDims'] as boolean);
  }),
  kernel('All', ({ x, inputs, attrs }) => {
    const keepDims = attrs['keepDims'] as boolean;
    return reduceEach(x('x'), axesOf(attrs, 'axis', inputs['x']!), (t, d) => allDim(t, d, keepDims));
  }),
  kernel('Any', ({ x, inputs, attrs }) => {
    const keepDims = attrs['keepDims'] as boolean;
    return reduceEach(x('x'), axesOf(attrs, 'axis', inputs['x']!), (t, d) => anyDim(t, d, keepDims));
  }),
  argKernel('ArgMax'),
  argKernel('ArgMin'),
  kernel('Softmax', ({ x, attrs }) => softmax(x('logits'), attrs['dim'] as number)),
  kernel('LogSoftmax', ({ x, attrs }) => logSoftmax(x('logits'), attrs['axis'] as number)),
  scanKernel('Cumsum'),
  scanKernel('Cumprod'),
  kernel('TopK', ({ x, inputs, attrs }) => {
    const k = attrs['k'] as number;
    const rank = inputs['x']!.shape.length;
    // A stable descending sort puts equal values in index order, as TF.js does; topk gives no such order.
    const [values, indices] = sortStable(x('x'), true, rank - 1, true) as [Handle, Handle];
    return [narrow(values, rank - 1, 0, k), narrow(indices, rank - 1, 0, k)];
  }),
  kernel('UnsortedSegmentSum', ({ x, inputs, attrs }) => {
    const xInfo = inputs['x']!;
    const idsShape = inputs['segmentIds']!.shape;
    const rowShape = xInfo.shape.slice(idsShape.length);
    const values = reshape(x('x'), [util.sizeFromShape(idsShape), ...rowShape]);
    return binSum(values, reshape(x('segmentIds'), [-1]), attrs['numSegments'] as number, rowShape);
  }),
  kernel('Bincount', ({ x, inputs, attrs }) =>
    bincount(x('x'), inputs['x']!.shape, x('weights'), inputs['weights']!, attrs['size'] as number, false),
  ),
  kernel('DenseBincount', ({ x, inputs, attrs }) =>
    bincount(
      x('x'),
      inputs['x']!.shape,
      x('weights'),
      inputs['weights']!,
      attrs['size'] as number,
      (attrs['binaryOutput'] as boolean | undefined) ?? false,
    ),
  ),
];
