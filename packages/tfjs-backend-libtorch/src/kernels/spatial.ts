// Pooling, resizing, depthwise and 3-D convolutions. Channels-last TF.js tensors go to ATen as channels-first
// views (see layout.ts), so ATen's channels-last CPU kernels run without layout copies.
import { backend_util } from '@tensorflow/tfjs-core';
import type { DataType, KernelConfig } from '@tensorflow/tfjs-core';
import { DTYPE_CODE } from '../addon.js';
import type { LibtorchBackend } from '../backend.js';
import {
  biasInConvolution,
  convForward,
  convGeometry,
  convGradInput,
  convGradWeight,
  fusedEpilogue,
} from './conv.js';
import {
  channelsFirstShape,
  nchwView,
  nhwcView,
  padExtra,
  paddedShape,
  poolPaddingToAten,
  spatialAxes,
  unpadExtra,
  type AtenPadding,
  type SpatialAxis,
} from './layout.js';
import { kernel, op, opN, SCALAR_TYPE, type Handle } from './util.js';

const alias = op('aten::alias');
const permute = op('aten::permute');
const reshape = op('aten::reshape');
const unsqueeze = op('aten::unsqueeze');
const contiguous = op('aten::contiguous');
const toDtype = op('aten::to.dtype');
const nanToNum = op('aten::nan_to_num');
const max = op('aten::max');
const isnan = op('aten::isnan');
// Returns a JS boolean, not a handle (nothing to dispose).
const isNonzero = op('aten::is_nonzero');
const newEmpty = op('aten::new_empty');
const newZeros = op('aten::new_zeros');
const add = op('aten::add.Tensor');
const mul = op('aten::mul.Tensor');
const lerp = op('aten::lerp.Tensor');
const slice = op('aten::slice.Tensor');
const constantPad = op('aten::constant_pad_nd');
// In place, into views of tensors this kernel made.
const copyInto = op('aten::copy_');
const addInto = op('aten::add_.Tensor');
const where = op('aten::where.self');
const div = op('aten::div.Tensor');
const mulScalar = op('aten::mul.Scalar');
const powScalar = op('aten::pow.Tensor_Scalar');
const addcmul = op('aten::addcmul');
const floorDivide = op('aten::floor_divide.Scalar');
const remainder = op('aten::remainder.Scalar');
const addScalar = op('aten::add.Scalar');
const indexSelect = op('aten::index_select');
const indexAdd = op('aten::index_add');

const maxPoolOp = { 2: op('aten::max_pool2d'), 3: op('aten::max_pool3d') };
const maxPoolIndicesOp = { 2: opN('aten::max_pool2d_with_indices'), 3: opN('aten::max_pool3d_with_indices') };
const avgPoolOp = { 2: op('aten::avg_pool2d'), 3: op('aten::avg_pool3d') };
const avgPoolBackwardOp = { 2: op('aten::avg_pool2d_backward'), 3: op('aten::avg_pool3d_backward') };

const upsampleBilinear = op('aten::upsample_bilinear2d');
const upsampleBilinearBackward = op('aten::upsample_bilinear2d_backward');
const upsampleNearest = op('aten::upsample_nearest2d');
const upsampleNearestBackward = op('aten::upsample_nearest2d_backward');
const upsampleNearestExact = op('aten::_upsample_nearest_exact2d');
const upsampleNearestExactBackward = op('aten::_upsample_nearest_exact2d_backward');

const CHANNELS_LAST_3D = 3;

/** A small constant tensor made from JS values (index tables, per-position factors); disposed with the kernel. */
function constant(
  b: LibtorchBackend,
  values: Float32Array | Int32Array | Uint8Array,
  shape: number[],
): Handle {
  const code =
    values instanceof Float32Array
      ? DTYPE_CODE.float32
      : values instanceof Int32Array
        ? DTYPE_CODE.int32
        : DTYPE_CODE.bool;
  const raw = b.addon.fromBuffer(values, shape, code);
  try {
    return alias(raw);
  } finally {
    b.addon.dispose(raw);
  }
}

const prod = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

/** An uninitialised channels-first tensor with channels-last memory, shaped like `dy`'s input would be: ATen's
 * backward ops read only its shape and memory format. */
function emptyChannelsFirst(like: Handle, shape: readonly number[]): Handle {
  const [n, c, ...spatial] = shape as [number, number, ...number[]];
  return nchwView(newEmpty(like, [n, ...spatial, c]), shape.length);
}

// ---- pooling ---------------------------------------------------------------------------------------------

type Rank = 2 | 3;

interface PoolGeometry {
  rank: Rank;
  kernel: number[];
  stride: number[];
  axes: SpatialAxis[];
  pad: AtenPadding;
  /** ATen's ceil_mode (see poolPaddingToAten). */
  ceil: boolean;
  /** The channels-last output shape. */
  outShape: number[];
}

/**
 * TF's pooling geometry in ATen's terms. `outSpatial` overrides the output size: gradient kernels get no
 * dimRoundingMode, so dy's own shape is the truth there.
 */
function poolGeometry(
  kind: 'max' | 'avg',
  xShape: number[],
  attrs: Record<string, unknown>,
  outSpatial?: number[],
): PoolGeometry {
  const rounding = attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined;
  const info =
    xShape.length === 4
      ? backend_util.computePool2DInfo(
          xShape as [number, number, number, number],
          attrs['filterSize'] as [number, number] | number,
          attrs['strides'] as [number, number] | number,
          1,
          attrs['pad'] as 'valid' | 'same' | number | backend_util.ExplicitPadding,
          rounding,
        )
      : backend_util.computePool3DInfo(
          xShape as [number, number, number, number, number],
          attrs['filterSize'] as [number, number, number] | number,
          attrs['strides'] as [number, number, number] | number,
          1,
          attrs['pad'] as 'valid' | 'same' | number,
          rounding,
        );
  const axes = spatialAxes(info).map((a, i) => ({ ...a, outSize: outSpatial?.[i] ?? a.outSize }));
  // avg_pool3d (unlike the others) rejects an input shorter than the window, padding aside.
  const { pad, ceil } = poolPaddingToAten(axes, kind === 'avg' && xShape.length === 5);
  return {
    rank: (xShape.length - 2) as Rank,
    kernel: axes.map((a) => a.window),
    stride: axes.map((a) => a.stride),
    axes,
    pad,
    ceil,
    outShape: [xShape[0]!, ...axes.map((a) => a.outSize), xShape[xShape.length - 1]!],
  };
}

const isEmptyOutput = (g: PoolGeometry) => g.outShape.some((d) => d === 0);

/** TF.js returns the input of a 1x1 2-D pool whose output has the input's shape, whatever the stride and
 * padding would otherwise select. */
const isIdentityPool = (g: PoolGeometry) =>
  g.rank === 2 && g.kernel.every((k) => k === 1) && g.axes.every((a) => a.outSize === a.inSize);

/** ATen pools floating-point tensors only; int32 pools exactly as float32 up to 2^24. */
function asFloat(h: Handle, dtype: DataType): Handle {
  return dtype === 'float32' ? h : toDtype(h, SCALAR_TYPE.float32);
}

/** The channels-first input max pooling reads: TF skips NaNs (a NaN is never greater), ATen propagates them,
 * so NaNs become -inf; explicit padding is -inf too. */
function maxPoolInput(x: Handle, dtype: DataType, g: PoolGeometry): Handle {
  const xf = dtype === 'float32' ? withoutNaN(x) : asFloat(x, dtype);
  return padExtra(nchwView(xf, g.rank + 2), g.pad, -Infinity);
}

/** NaNs replaced by -inf. Looking for one first (a max reduction reads the tensor once) is much cheaper than
 * rewriting every tensor. */
function withoutNaN(x: Handle): Handle {
  const hasNaN = isNonzero(isnan(max(x))) as unknown as boolean;
  return hasNaN ? nanToNum(x, -Infinity, Infinity, -Infinity) : x;
}

/** Unit dilations for ATen's max pooling. */
const ones = (g: PoolGeometry) => g.kernel.map(() => 1);

function maxPool(x: Handle, dtype: DataType, g: PoolGeometry): Handle {
  if (isEmptyOutput(g)) return newEmpty(x, g.outShape);
  if (isIdentityPool(g)) return alias(x);
  const y = nhwcView(
    maxPoolOp[g.rank](maxPoolInput(x, dtype, g), g.kernel, g.stride, g.pad.sym, ones(g), g.ceil),
    g.rank + 2,
  );
  return dtype === 'float32' ? y : toDtype(y, SCALAR_TYPE.int32);
}

/**
 * 1 / (number of input elements in each window), shaped like the spatial output. TF averages over the input
 * elements a window covers, never over padding; ATen can only leave out its own symmetric padding.
 */
function inverseWindowCounts(b: LibtorchBackend, g: PoolGeometry): Handle {
  const perAxis = g.axes.map((a) =>
    Array.from({ length: a.outSize }, (_, o) => {
      const start = o * a.stride - a.before;
      return Math.max(0, Math.min(start + a.window, a.inSize) - Math.max(start, 0));
    }),
  );
  const shape = g.axes.map((a) => a.outSize);
  const values = new Float32Array(prod(shape));
  values.forEach((_, flat) => {
    let count = 1;
    let rest = flat;
    for (let i = shape.length - 1; i >= 0; i--) {
      count *= perAxis[i]![rest % shape[i]!]!;
      rest = Math.floor(rest / shape[i]!);
    }
    // An all-padding window: TF.js's 2-D pool divides 0 by 0, its 3-D pool returns 0.
    values[flat] = count > 0 ? 1 / count : g.rank === 2 ? NaN : 0;
  });
  return constant(b, values, shape);
}

function avgPool(b: LibtorchBackend, x: Handle, g: PoolGeometry): Handle {
  if (isEmptyOutput(g)) return newEmpty(x, g.outShape);
  if (isIdentityPool(g)) return alias(x);
  const xp = padExtra(nchwView(x, g.rank + 2), g.pad);
  if (!g.pad.grows) {
    return nhwcView(avgPoolOp[g.rank](xp, g.kernel, g.stride, g.pad.sym, g.ceil, false), g.rank + 2);
  }
  // Asymmetric padding: window sums over zero padding, divided by the true counts.
  const sums = avgPoolOp[g.rank](xp, g.kernel, g.stride, g.pad.sym, g.ceil, true, 1);
  return nhwcView(mul(sums, inverseWindowCounts(b, g)), g.rank + 2);
}

/** Channels-first shape of a channels-last one. */

/**
 * dL/dx of average pooling as TF.js defines it: each dy is spread evenly over its whole window, padding
 * included (1 / filter size), whatever the forward divided by.
 */
function avgPoolGrad(dy: Handle, xShape: number[], g: PoolGeometry): Handle {
  const r = g.rank + 2;
  if (isEmptyOutput(g)) return newZeros(dy, xShape);
  const input = emptyChannelsFirst(dy, paddedShape(channelsFirstShape(xShape), g.pad));
  const dxp = avgPoolBackwardOp[g.rank](
    nchwView(dy, r),
    input,
    g.kernel,
    g.stride,
    g.pad.sym,
    g.ceil,
    true,
    prod(g.kernel),
  );
  return nhwcView(unpadExtra(dxp, g.pad), r);
}

/**
 * ATen's max-pool indices (flat per (batch, channel) plane) → flat indices into the channels-last tensor with
 * `batch` planes of `planeSize` elements and `channels` channels.
 */
function channelsLastFlatIndex(
  b: LibtorchBackend,
  indices: Handle,
  planeSize: number,
  batch: number,
  channels: number,
  rank: number,
): Handle {
  const offsets = new Int32Array(batch * channels);
  offsets.forEach((_, i) => {
    offsets[i] = Math.floor(i / channels) * planeSize * channels + (i % channels);
  });
  const offsetShape = [batch, ...new Array<number>(rank - 2).fill(1), channels];
  // offset + channels * index, in int32.
  return add(constant(b, offsets, offsetShape), nhwcView(indices, rank), BigInt(channels));
}

/** dL/dx of max pooling: each dy goes to the first maximum of its window (TF and ATen pick the same one). */
function maxPoolGrad(
  b: LibtorchBackend,
  dy: Handle,
  x: Handle,
  xShape: number[],
  dtype: DataType,
  g: PoolGeometry,
): Handle {
  const r = g.rank + 2;
  if (isEmptyOutput(g)) return newZeros(dy, xShape);
  const [, indices] = maxPoolIndicesOp[g.rank](
    maxPoolInput(x, dtype, g),
    g.kernel,
    g.stride,
    g.pad.sym,
    ones(g),
    g.ceil,
  );
  const padded = paddedShape(channelsFirstShape(xShape), g.pad);
  const [batch, channels, ...spatial] = padded as [number, number, ...number[]];
  // ATen's own max-pool backward wants int64 indices, which this addon cannot hand back; index_add takes int32.
  const flat = channelsLastFlatIndex(b, indices!, prod(spatial), batch, channels, r);
  const dxFlat = indexAdd(newZeros(dy, [prod(padded)]), 0, reshape(flat, [-1]), reshape(dy, [-1]));
  const dxp = nchwView(reshape(dxFlat, [batch, ...spatial, channels]), r);
  return nhwcView(unpadExtra(dxp, g.pad), r);
}

/** TF's argmax convention: ((b * height + y) * width + x) * channels + c, without the batch term unless asked. */
function maxPoolWithArgmax(
  b: LibtorchBackend,
  x: Handle,
  xShape: number[],
  dtype: DataType,
  includeBatch: boolean,
  g: PoolGeometry,
): Handle[] {
  const [batch, height, width, channels] = xShape as [number, number, number, number];
  const [y, indices] = maxPoolIndicesOp[2](
    maxPoolInput(x, dtype, g),
    g.kernel,
    g.stride,
    g.pad.sym,
    ones(g),
    g.ceil,
  );
  let plane = indices!;
  if (g.pad.any) {
    // Indices into the explicitly padded plane → indices into the input plane.
    const [left, right, top] = g.pad.extra as [number, number, number, number];
    const paddedWidth = width + left + right;
    const row = addScalar(floorDivide(plane, BigInt(paddedWidth)), BigInt(-top));
    const col = addScalar(remainder(plane, BigInt(paddedWidth)), BigInt(-left));
    plane = add(col, row, BigInt(width));
  }
  const index = channelsLastFlatIndex(b, plane, height * width, includeBatch ? batch : 1, channels, 4);
  const values = nhwcView(y!);
  return [dtype === 'float32' ? values : toDtype(values, SCALAR_TYPE.int32), contiguous(index)];
}

// ---- resizing --------------------------------------------------------------------------------------------

interface ResizeAttrs {
  alignCorners: boolean;
  halfPixelCenters: boolean;
  size: [number, number];
}

function resizeAttrs(attrs: Record<string, unknown>): ResizeAttrs {
  const a = {
    alignCorners: attrs['alignCorners'] === true,
    halfPixelCenters: attrs['halfPixelCenters'] === true,
    size: attrs['size'] as [number, number],
  };
  if (a.alignCorners && a.halfPixelCenters) {
    throw new Error('libtorch backend: resize with halfPixelCenters needs alignCorners false (as in TF)');
  }
  return a;
}

/** TF's source/destination scale: with alignCorners the corner pixels' centres map onto each other. */
function resizeScale(inSize: number, outSize: number, alignCorners: boolean): number {
  return alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
}

/** TF's nearest source position for each destination position along one axis. */
function nearestTable(inSize: number, outSize: number, a: ResizeAttrs): Int32Array {
  const scale = resizeScale(inSize, outSize, a.alignCorners);
  const index = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = a.halfPixelCenters ? (o + 0.5) * scale : o * scale;
    const nearest = Math.min(inSize - 1, a.alignCorners ? Math.round(src) : Math.floor(src));
    index[o] = a.halfPixelCenters ? Math.max(0, nearest) : nearest;
  }
  return index;
}

const isIdentity = (index: Int32Array, inSize: number) =>
  index.length === inSize && index.every((v, i) => v === i);

/** Row indices into an NHWC tensor seen as [batch * height, width * channels]: each batch's `index` rows. */
function batchRows(batch: number, height: number, index: Int32Array): Int32Array {
  const rows = new Int32Array(batch * index.length);
  rows.forEach((_, i) => (rows[i] = Math.floor(i / index.length) * height + index[i % index.length]!));
  return rows;
}

/** Swaps the height and width axes of an NHWC tensor (a copy: row gathers want contiguous rows). */
const swapHW = (h: Handle) => contiguous(permute(h, [0, 2, 1, 3]));

/**
 * x[:, index] (axis 1) or x[:, :, index] (axis 2) of a contiguous NHWC tensor. Rows are gathered whole, as
 * [batch * height, width * channels]; ATen's index_select along an inner axis is far slower, so columns are
 * gathered as rows of the transposed tensor.
 */
function gatherAxis(b: LibtorchBackend, x: Handle, shape: number[], axis: 1 | 2, index: Int32Array): Handle {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  if (isIdentity(index, shape[axis]!)) return x;
  if (axis === 2) return swapHW(gatherAxis(b, swapHW(x), [batch, width, height, channels], 1, index));
  const rows = batchRows(batch, height, index);
  const picked = indexSelect(
    reshape(x, [batch * height, width * channels]),
    0,
    constant(b, rows, [rows.length]),
  );
  return reshape(picked, [batch, index.length, width, channels]);
}

/** The adjoint of gatherAxis: `shape` is the gathered-from shape; each slice of dy adds to its source. */
function scatterAxis(
  b: LibtorchBackend,
  dy: Handle,
  shape: number[],
  axis: 1 | 2,
  index: Int32Array,
): Handle {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  if (isIdentity(index, shape[axis]!)) return dy;
  if (axis === 2) return swapHW(scatterAxis(b, swapHW(dy), [batch, width, height, channels], 1, index));
  const rows = batchRows(batch, height, index);
  const sum = indexAdd(
    newZeros(dy, [batch * height, width * channels]),
    0,
    constant(b, rows, [rows.length]),
    reshape(dy, [rows.length, width * channels]),
  );
  return reshape(sum, shape);
}

/** A channels-first tensor with one more row and column at the end, copies of the last ones. */
function replicateLastRowAndColumn(x: Handle, height: number, width: number): Handle {
  const padded = constantPad(x, [0, 1, 0, 1], 0);
  copyInto(slice(slice(padded, 2, 0, height), 3, width, width + 1), slice(x, 3, width - 1, width));
  copyInto(slice(padded, 2, height, height + 1), slice(padded, 2, height - 1, height));
  return padded;
}

/**
 * TF's default (legacy) bilinear sampling reads source position dst * in / out, clamped to the last pixel.
 * That is ATen's align_corners sampling, whose scale is (in' - 1) / (out' - 1), of the input with its last
 * row and column repeated (in' = in + 1) to one more output row and column (out' = out + 1), which are then
 * dropped. The result is a (non-contiguous) view.
 */
function legacyBilinear(x: Handle, shape: number[], size: [number, number]): Handle {
  const [, height, width] = shape as [number, number, number, number];
  const [newHeight, newWidth] = size;
  const padded = replicateLastRowAndColumn(nchwView(x), height, width);
  const y = upsampleBilinear(padded, [newHeight + 1, newWidth + 1], true);
  return nhwcView(slice(slice(y, 2, 0, newHeight), 3, 0, newWidth));
}

/** The adjoint of legacyBilinear: the gradient of the repeated row and column folds back onto the last ones. */
function legacyBilinearGrad(dy: Handle, shape: number[], size: [number, number]): Handle {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  const [newHeight, newWidth] = size;
  const dyPadded = constantPad(nchwView(dy), [0, 1, 0, 1], 0);
  const g = upsampleBilinearBackward(
    dyPadded,
    [newHeight + 1, newWidth + 1],
    [batch, channels, height + 1, width + 1],
    true,
  );
  addInto(slice(g, 3, width - 1, width), slice(g, 3, width, width + 1));
  addInto(slice(g, 2, height - 1, height), slice(g, 2, height, height + 1));
  return nhwcView(slice(slice(g, 2, 0, height), 3, 0, width));
}

function resizeBilinear(images: Handle, shape: number[], dtype: DataType, a: ResizeAttrs): Handle {
  const x = asFloat(images, dtype);
  // ATen's align_corners=true is TF's alignCorners; its align_corners=false is TF's halfPixelCenters.
  if (a.alignCorners || a.halfPixelCenters) {
    return nhwcView(upsampleBilinear(nchwView(x), a.size, a.alignCorners));
  }
  return legacyBilinear(x, shape, a.size);
}

function resizeBilinearGrad(dy: Handle, shape: number[], a: ResizeAttrs): Handle {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  if (a.alignCorners || a.halfPixelCenters) {
    return nhwcView(
      upsampleBilinearBackward(nchwView(dy), a.size, [batch, channels, height, width], a.alignCorners),
    );
  }
  return legacyBilinearGrad(dy, shape, a.size);
}

/** Which ATen nearest-neighbour op samples as TF does: floor(dst * in / out), or with half-pixel centres. */
function atenNearest(a: ResizeAttrs): 'legacy' | 'exact' | null {
  if (a.alignCorners) return null;
  return a.halfPixelCenters ? 'exact' : 'legacy';
}

function resizeNearest(
  b: LibtorchBackend,
  images: Handle,
  shape: number[],
  dtype: DataType,
  a: ResizeAttrs,
): Handle {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  const [newHeight, newWidth] = a.size;
  const mode = atenNearest(a);
  if (mode !== null && dtype === 'float32') {
    const resample = mode === 'exact' ? upsampleNearestExact : upsampleNearest;
    return nhwcView(resample(nchwView(images), a.size));
  }
  // TF's alignCorners rounds to the nearest source, which no ATen op does; int32 stays exact this way too.
  const rows = gatherAxis(b, images, shape, 1, nearestTable(height, newHeight, a));
  const out = gatherAxis(b, rows, [batch, newHeight, width, channels], 2, nearestTable(width, newWidth, a));
  return out === images ? alias(images) : out;
}

function resizeNearestGrad(b: LibtorchBackend, dy: Handle, shape: number[], a: ResizeAttrs): Handle {
  const [batch, height, width, channels] = shape as [number, number, number, number];
  const [newHeight, newWidth] = a.size;
  const mode = atenNearest(a);
  if (mode !== null) {
    const backward = mode === 'exact' ? upsampleNearestExactBackward : upsampleNearestBackward;
    return nhwcView(backward(nchwView(dy), a.size, [batch, channels, height, width]));
  }
  const cols = scatterAxis(b, dy, [batch, newHeight, width, channels], 2, nearestTable(width, newWidth, a));
  const out = scatterAxis(b, cols, shape, 1, nearestTable(height, newHeight, a));
  return out === dy ? alias(dy) : out;
}

// ---- convolutions ----------------------------------------------------------------------------------------

function depthwiseInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as [number, number] | number,
    (attrs['dilations'] as [number, number] | number | null | undefined) ?? 1,
    attrs['pad'] as 'valid' | 'same' | number | backend_util.ExplicitPadding,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    true,
    backend_util.convertConv2DDataFormat((attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC'),
  );
}

function conv3dInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): backend_util.Conv3DInfo {
  return backend_util.computeConv3DInfo(
    xShape as [number, number, number, number, number],
    filterShape as [number, number, number, number, number],
    attrs['strides'] as [number, number, number] | number,
    (attrs['dilations'] as [number, number, number] | number | undefined) ?? 1,
    attrs['pad'] as 'valid' | 'same',
  );
}

/** TF depthwise filter [fh, fw, in, multiplier] → ATen grouped weight [in * multiplier, 1, fh, fw]: output
 * channel c * multiplier + m of both is input channel c filtered by m. */
function depthwiseWeight(filter: Handle, filterShape: number[]): Handle {
  const [fh, fw, cin, mult] = filterShape as [number, number, number, number];
  return contiguous(unsqueeze(permute(reshape(filter, [fh, fw, cin * mult]), [2, 0, 1]), 1));
}

/** TF 3-D filter [fd, fh, fw, in, out] → ATen weight [out, in, fd, fh, fw] (channels-last, as oneDNN likes). */
function conv3dWeight(filter: Handle): Handle {
  return contiguous(permute(filter, [4, 3, 0, 1, 2]), CHANNELS_LAST_3D);
}

/** ATen depthwise weight gradient [in * multiplier, 1, fh, fw] → TF layout [fh, fw, in, multiplier]. */
function fromDepthwiseWeight(dw: Handle, filterShape: number[]): Handle {
  const [fh, fw] = filterShape as [number, number];
  return reshape(permute(reshape(dw, [-1, fh, fw]), [1, 2, 0]), filterShape);
}

// ---- crop and resize, local response normalisation -----------------------------------------------------

interface CropAttrs {
  cropSize: [number, number];
  bilinear: boolean;
  extrapolationValue: number;
}

/**
 * Where each output element of CropAndResize reads, as TF defines it: per box, crop rows/columns are evenly
 * spaced over the box's span (its centre for a size of 1), in input pixels. `corners` holds flat
 * (batch, row, column) indices into the image: four (top-left, top-right, bottom-left, bottom-right) for
 * bilinear, one (the nearest) otherwise. Where a sample is not `inside` the image, the output is `fill`: the
 * extrapolation value, or 0 for a box whose batch index is out of range (which TF leaves untouched).
 */
interface CropSamples {
  corners: Int32Array[];
  xLerp: Float32Array;
  yLerp: Float32Array;
  inside: Uint8Array;
  fill: Float32Array;
}

function cropSamples(
  boxes: Float32Array,
  boxIndex: Int32Array,
  imageShape: number[],
  a: CropAttrs,
): CropSamples {
  const [batch, height, width] = imageShape as [number, number, number, number];
  const [cropHeight, cropWidth] = a.cropSize;
  const total = boxIndex.length * cropHeight * cropWidth;
  const corners = Array.from({ length: a.bilinear ? 4 : 1 }, () => new Int32Array(total));
  const xLerp = new Float32Array(total);
  const yLerp = new Float32Array(total);
  const inside = new Uint8Array(total);
  const fill = new Float32Array(total);
  // Evaluated exactly as TF does: a sample on the image's edge must not round off it.
  const source = (lo: number, hi: number, size: number, crop: number, i: number) => {
    const scale = crop > 1 ? ((hi - lo) * (size - 1)) / (crop - 1) : 0;
    return crop > 1 ? lo * (size - 1) + i * scale : 0.5 * (lo + hi) * (size - 1);
  };
  let p = 0;
  boxIndex.forEach((bi, box) => {
    const [y1, x1, y2, x2] = boxes.subarray(box * 4, box * 4 + 4) as unknown as [
      number,
      number,
      number,
      number,
    ];
    for (let y = 0; y < cropHeight; y++) {
      const ys = source(y1, y2, height, cropHeight, y);
      for (let x = 0; x < cropWidth; x++, p++) {
        const xs = source(x1, x2, width, cropWidth, x);
        if (bi < 0 || bi >= batch) continue;
        if (ys < 0 || ys > height - 1 || xs < 0 || xs > width - 1) {
          fill[p] = a.extrapolationValue;
          continue;
        }
        inside[p] = 1;
        const at = (r: number, c: number) => (bi * height + r) * width + c;
        if (a.bilinear) {
          const [top, left] = [Math.floor(ys), Math.floor(xs)];
          const [bottom, right] = [Math.ceil(ys), Math.ceil(xs)];
          [at(top, left), at(top, right), at(bottom, left), at(bottom, right)].forEach(
            (v, k) => (corners[k]![p] = v),
          );
          yLerp[p] = ys - top;
          xLerp[p] = xs - left;
        } else {
          corners[0]![p] = at(Math.round(ys), Math.round(xs));
        }
      }
    }
  });
  return { corners, xLerp, yLerp, inside, fill };
}

function cropAndResize(
  b: LibtorchBackend,
  image: Handle,
  imageShape: number[],
  dtype: DataType,
  boxes: Handle,
  boxIndex: Handle,
  a: CropAttrs,
): Handle {
  const channels = imageShape[3]!;
  const ids = b.addon.toBuffer(boxIndex) as Int32Array;
  const samples = cropSamples(b.addon.toBuffer(boxes) as Float32Array, ids, imageShape, a);
  const total = samples.fill.length;
  const outShape = [ids.length, ...a.cropSize, channels];
  if (total === 0 || channels === 0) return newZeros(image, outShape, SCALAR_TYPE.float32);
  // The output is float32 whatever the image's dtype.
  const pixels = reshape(asFloat(image, dtype), [-1, channels]);
  const gather = (index: Int32Array) => indexSelect(pixels, 0, constant(b, index, [total]));
  let out: Handle;
  if (a.bilinear) {
    const [tl, tr, bl, br] = samples.corners.map(gather) as [Handle, Handle, Handle, Handle];
    const xl = constant(b, samples.xLerp, [total, 1]);
    out = lerp(lerp(tl, tr, xl), lerp(bl, br, xl), constant(b, samples.yLerp, [total, 1]));
  } else {
    out = gather(samples.corners[0]!);
  }
  if (samples.inside.some((v) => v === 0)) {
    out = where(constant(b, samples.inside, [total, 1]), out, constant(b, samples.fill, [total, 1]));
  }
  return reshape(out, outShape);
}

interface LrnAttrs {
  depthRadius: number;
  bias: number;
  alpha: number;
  beta: number;
}

function lrnAttrs(attrs: Record<string, unknown>): LrnAttrs {
  return {
    depthRadius: attrs['depthRadius'] as number,
    bias: attrs['bias'] as number,
    alpha: attrs['alpha'] as number,
    beta: attrs['beta'] as number,
  };
}

/** Sums over the channels within `radius` of each channel (clipped at the ends) of an NHWC tensor: a 1-row
 * sum pool over channels. */
function channelWindowSum(h: Handle, shape: number[], radius: number): Handle {
  const channels = shape[shape.length - 1]!;
  const rows = reshape(h, [-1, 1, 1, channels]);
  const sums = avgPoolOp[2](rows, [1, 2 * radius + 1], [1, 1], [0, radius], false, true, 1);
  return reshape(sums, shape);
}

/** bias + alpha * (sum of squares over the channel window). */
function lrnNorm(x: Handle, shape: number[], a: LrnAttrs): Handle {
  return addScalar(mulScalar(channelWindowSum(mul(x, x), shape, a.depthRadius), a.alpha), a.bias);
}

/** TF's LRN: x / norm^beta. */
function lrn(x: Handle, shape: number[], a: LrnAttrs): Handle {
  return mul(x, powScalar(lrnNorm(x, shape, a), -a.beta));
}

/**
 * dL/dx of LRN: dy * norm^-beta - 2 alpha beta x * windowSum(y dy / norm). The channel windows are
 * symmetric, so the sum over the outputs whose window holds x is itself a window sum.
 */
function lrnGrad(x: Handle, y: Handle, dy: Handle, shape: number[], a: LrnAttrs): Handle {
  const norm = lrnNorm(x, shape, a);
  const spread = channelWindowSum(div(mul(y, dy), norm), shape, a.depthRadius);
  return addcmul(mul(dy, powScalar(norm, -a.beta)), x, spread, -2 * a.alpha * a.beta);
}

// ---- kernels ---------------------------------------------------------------------------------------------

const shapeOf = (inputs: Record<string, { shape: number[] } | undefined>, name: string) =>
  inputs[name]!.shape;

const poolKernels: KernelConfig[] = (['MaxPool', 'MaxPool3D'] as const)
  .map((name) =>
    kernel(name, ({ x, inputs, attrs }) =>
      maxPool(x('x'), inputs['x']!.dtype, poolGeometry('max', shapeOf(inputs, 'x'), attrs)),
    ),
  )
  .concat(
    (['AvgPool', 'AvgPool3D'] as const).map((name) =>
      kernel(name, ({ x, inputs, attrs, b }) =>
        avgPool(b, x('x'), poolGeometry('avg', shapeOf(inputs, 'x'), attrs)),
      ),
    ),
    (['MaxPoolGrad', 'MaxPool3DGrad'] as const).map((name) =>
      kernel(name, ({ x, inputs, attrs, b }) => {
        const shape = shapeOf(inputs, 'input');
        const g = poolGeometry('max', shape, attrs, shapeOf(inputs, 'dy').slice(1, -1));
        return maxPoolGrad(b, x('dy'), x('input'), shape, inputs['input']!.dtype, g);
      }),
    ),
    (['AvgPoolGrad', 'AvgPool3DGrad'] as const).map((name) =>
      kernel(name, ({ x, inputs, attrs }) => {
        const shape = shapeOf(inputs, 'input');
        return avgPoolGrad(
          x('dy'),
          shape,
          poolGeometry('avg', shape, attrs, shapeOf(inputs, 'dy').slice(1, -1)),
        );
      }),
    ),
  );

export const spatialKernels: KernelConfig[] = [
  ...poolKernels,
  kernel('MaxPoolWithArgmax', ({ x, inputs, attrs, b }) => {
    const shape = shapeOf(inputs, 'x');
    return maxPoolWithArgmax(
      b,
      x('x'),
      shape,
      inputs['x']!.dtype,
      attrs['includeBatchInIndex'] === true,
      poolGeometry('max', shape, attrs),
    );
  }),
  kernel('ResizeBilinear', ({ x, inputs, attrs }) =>
    resizeBilinear(x('images'), shapeOf(inputs, 'images'), inputs['images']!.dtype, resizeAttrs(attrs)),
  ),
  kernel('ResizeBilinearGrad', ({ x, inputs, attrs }) =>
    resizeBilinearGrad(x('dy'), shapeOf(inputs, 'images'), resizeAttrs(attrs)),
  ),
  kernel('ResizeNearestNeighbor', ({ x, inputs, attrs, b }) =>
    resizeNearest(b, x('images'), shapeOf(inputs, 'images'), inputs['images']!.dtype, resizeAttrs(attrs)),
  ),
  kernel('ResizeNearestNeighborGrad', ({ x, inputs, attrs, b }) =>
    resizeNearestGrad(b, x('dy'), shapeOf(inputs, 'images'), resizeAttrs(attrs)),
  ),
  kernel('DepthwiseConv2dNative', ({ x, inputs, attrs }) => {
    const filterShape = shapeOf(inputs, 'filter');
    const info = depthwiseInfo(shapeOf(inputs, 'x'), filterShape, attrs);
    return convForward(
      x('x'),
      depthwiseWeight(x('filter'), filterShape),
      null,
      convGeometry(info),
      info.inChannels,
    );
  }),
  kernel('FusedDepthwiseConv2D', (args) => {
    const { x, inputs, attrs } = args;
    const filterShape = shapeOf(inputs, 'filter');
    const info = depthwiseInfo(shapeOf(inputs, 'x'), filterShape, attrs);
    const g = convGeometry(info);
    const biasInConv = biasInConvolution(inputs, info.outChannels);
    const weight = depthwiseWeight(x('filter'), filterShape);
    const y = convForward(x('x'), weight, biasInConv ? x('bias') : null, g, info.inChannels);
    return fusedEpilogue(y, args, g, biasInConv);
  }),

  kernel('DepthwiseConv2dNativeBackpropInput', ({ x, inputs, attrs }) => {
    const filterShape = shapeOf(inputs, 'filter');
    const inputShape = attrs['inputShape'] as number[];
    const info = depthwiseInfo(inputShape, filterShape, attrs);
    const weight = depthwiseWeight(x('filter'), filterShape);
    return convGradInput(x('dy'), weight, inputShape, convGeometry(info), info.inChannels);
  }),
  kernel('DepthwiseConv2dNativeBackpropFilter', ({ x, inputs, attrs }) => {
    const filterShape = attrs['filterShape'] as number[];
    const info = depthwiseInfo(shapeOf(inputs, 'x'), filterShape, attrs);
    const [fh, fw] = filterShape as [number, number];
    const dw = convGradWeight(
      x('x'),
      x('dy'),
      [info.outChannels, 1, fh, fw],
      convGeometry(info),
      info.inChannels,
    );
    return fromDepthwiseWeight(dw, filterShape);
  }),
  kernel('CropAndResize', ({ x, inputs, attrs, b }) =>
    cropAndResize(b, x('image'), shapeOf(inputs, 'image'), inputs['image']!.dtype, x('boxes'), x('boxInd'), {
      cropSize: attrs['cropSize'] as [number, number],
      bilinear: attrs['method'] !== 'nearest',
      extrapolationValue: (attrs['extrapolationValue'] as number | undefined) ?? 0,
    }),
  ),
  kernel('LRN', ({ x, inputs, attrs }) => lrn(x('x'), shapeOf(inputs, 'x'), lrnAttrs(attrs))),
  kernel('LRNGrad', ({ x, inputs, attrs }) =>
    lrnGrad(x('x'), x('y'), x('dy'), shapeOf(inputs, 'dy'), lrnAttrs(attrs)),
  ),
  kernel('Conv3D', ({ x, inputs, attrs }) => {
    const info = conv3dInfo(shapeOf(inputs, 'x'), shapeOf(inputs, 'filter'), attrs);
    return convForward(x('x'), conv3dWeight(x('filter')), null, convGeometry(info), 1);
  }),
  kernel('Conv3DBackpropInputV2', ({ x, inputs, attrs }) => {
    const inputShape = attrs['inputShape'] as number[];
    const info = conv3dInfo(inputShape, shapeOf(inputs, 'filter'), attrs);
    return convGradInput(x('dy'), conv3dWeight(x('filter')), inputShape, convGeometry(info), 1);
  }),
  kernel('Conv3DBackpropFilterV2', ({ x, inputs, attrs }) => {
    const filterShape = attrs['filterShape'] as number[];
    const info = conv3dInfo(shapeOf(inputs, 'x'), filterShape, attrs);
    const [fd, fh, fw, cin, cout] = filterShape as [number, number, number, number, number];
    const dw = convGradWeight(x('x'), x('dy'), [cout, cin, fd, fh, fw], convGeometry(info), 1);
    return permute(dw, [2, 3, 4, 1, 0]);
  }),
];
