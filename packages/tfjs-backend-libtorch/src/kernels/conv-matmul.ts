// Convolutions, matrix products and batch normalisation: the kernels that decide training speed.
// TF.js is NHWC; ATen's convolutions take NCHW. A contiguous NHWC tensor permuted to NCHW is a channels-last
// view (no copy), which oneDNN consumes directly, and its channels-last results permute back to contiguous
// NHWC for free. TF 'same' padding can be asymmetric (the extra row/column at the bottom/right); ATen only
// pads symmetrically, so the symmetric part goes to ATen and the remainder is padded (or cropped) explicitly.
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedTensorInfoMap } from '@tensorflow/tfjs-core';
import { applyActivation } from './activation.js';
import { kernel, op, opN, shapeOf, type Handle } from './util.js';

const permute = op('aten::permute');
const contiguous = op('aten::contiguous');
const constantPad = op('aten::constant_pad_nd');
const slice = op('aten::slice.Tensor');
const convolution = op('aten::convolution');
const convolutionBackward = opN('aten::convolution_backward');
const convTranspose = op('aten::conv_transpose2d.input');
const newEmpty = op('aten::new_empty');
const matmul = op('aten::matmul');
const transpose = op('aten::transpose.int');
const add = op('aten::add.Tensor');
const reshape = op('aten::reshape');
const batchNorm = op('aten::batch_norm');
const addcmul = op('aten::addcmul');
const mul = op('aten::mul.Tensor');
const rsqrt = op('aten::rsqrt');
const addScalar = op('aten::add.Scalar');
const neg = op('aten::neg');

const CHANNELS_LAST = 2;

type Conv2DInfo = backend_util.Conv2DInfo;

/** The symmetric padding ATen applies, and what is left over on the bottom/right (or, if negative, top/left). */
export interface SplitPad {
  /** [height, width] padding passed to ATen. */
  sym: [number, number];
  /** Extra padding as constant_pad_nd wants it: [left, right, top, bottom]; all zero when symmetric. */
  extra: [number, number, number, number];
  asymmetric: boolean;
}

export function splitPadding(pad: { top: number; bottom: number; left: number; right: number }): SplitPad {
  const ph = Math.min(pad.top, pad.bottom);
  const pw = Math.min(pad.left, pad.right);
  const extra: [number, number, number, number] = [
    pad.left - pw,
    pad.right - pw,
    pad.top - ph,
    pad.bottom - ph,
  ];
  return { sym: [ph, pw], extra, asymmetric: extra.some((e) => e !== 0) };
}

const toNCHW = (h: Handle, channelsLast: boolean) => (channelsLast ? permute(h, [0, 3, 1, 2]) : h);
const fromNCHW = (h: Handle, channelsLast: boolean) => (channelsLast ? permute(h, [0, 2, 3, 1]) : h);

/** TF filter [fh, fw, in, out] → ATen weight [out, in, fh, fw], stored channels-last (what oneDNN wants). */
const toWeight = (filter: Handle) => contiguous(permute(filter, [3, 2, 0, 1]), CHANNELS_LAST);
/** ATen weight gradient [out, in, fh, fw] → TF filter layout [fh, fw, in, out], made contiguous: the
 * optimizer combines it element-wise with the (contiguous) variable, which is slow on permuted strides. */
const fromWeight = (w: Handle) => contiguous(permute(w, [2, 3, 1, 0]), 0);

function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  depthwise = false,
): Conv2DInfo {
  const dataFormat = (attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC';
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as [number, number] | number,
    (attrs['dilations'] as [number, number] | number | undefined) ?? 1,
    attrs['pad'] as 'valid' | 'same' | number | backend_util.ExplicitPadding,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    depthwise,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
}

interface ConvGeometry {
  stride: [number, number];
  dilation: [number, number];
  pad: SplitPad;
  channelsLast: boolean;
}

function geometry(info: Conv2DInfo): ConvGeometry {
  return {
    stride: [info.strideHeight, info.strideWidth],
    dilation: [info.dilationHeight, info.dilationWidth],
    pad: splitPadding(info.padInfo),
    channelsLast: info.dataFormat === 'channelsLast',
  };
}

/** Forward convolution of an NCHW(-view) input with an ATen weight; the asymmetric remainder is padded. */
function convForward(x: Handle, weight: Handle, bias: Handle | null, g: ConvGeometry, groups = 1): Handle {
  const input = g.pad.asymmetric ? constantPad(x, g.pad.extra, 0) : x;
  return convolution(input, weight, bias, g.stride, g.pad.sym, g.dilation, false, [0, 0], groups);
}

/**
 * Below this many input channels (of the forward convolution, i.e. output channels of a conv2dTranspose),
 * oneDNN's backward-data primitive is slow in this build and ATen's direct transposed convolution on
 * contiguous data wins (measured, 1 thread, batch 64: 64→1 channels 32→64 px, 22 ms against 5.4 ms).
 */
const TRANSPOSED_MAX_CHANNELS = 4;

/** conv_transpose2d's output_padding giving `size`, or null when ATen cannot express it. */
function outputPadding(size: number, inSize: number, k: number, g: ConvGeometry, axis: 0 | 1): number | null {
  const produced = (inSize - 1) * g.stride[axis] - 2 * g.pad.sym[axis] + g.dilation[axis] * (k - 1) + 1;
  const extra = size - produced;
  return extra >= 0 && extra < Math.max(g.stride[axis], g.dilation[axis]) ? extra : null;
}

/** dL/dx by a direct transposed convolution when the shape allows it (see TRANSPOSED_MAX_CHANNELS). */
function convGradInputTransposed(dy: Handle, weight: Handle, inShape: number[], g: ConvGeometry, groups: number) {
  if (g.pad.asymmetric || inShape[1]! > TRANSPOSED_MAX_CHANNELS) return null;
  const [, , kh, kw] = shapeOf(weight) as [number, number, number, number];
  const dyShape = shapeOf(dy);
  const oh = outputPadding(inShape[2]!, dyShape[2]!, kh, g, 0);
  const ow = outputPadding(inShape[3]!, dyShape[3]!, kw, g, 1);
  if (oh === null || ow === null) return null;
  return convTranspose(contiguous(dy, 0), contiguous(weight, 0), null, g.stride, g.pad.sym, [oh, ow], groups, g.dilation);
}

/**
 * dL/dx of a convolution, given dL/dy (NCHW view) and the ATen weight. `inShape` is x's NCHW shape. With an
 * asymmetric padding, the gradient is taken for the explicitly padded input and then cropped.
 */
function convGradInput(dy: Handle, weight: Handle, inShape: number[], g: ConvGeometry, groups = 1): Handle {
  const direct = convGradInputTransposed(dy, weight, inShape, g, groups);
  if (direct !== null) return direct;
  const [l, r, t, b] = g.pad.extra;
  const padded = [inShape[0]!, inShape[1]!, inShape[2]! + t + b, inShape[3]! + l + r];
  const input = contiguous(newEmpty(dy, padded), CHANNELS_LAST);
  const [dx] = convolutionBackward(
    dy,
    input,
    weight,
    null,
    g.stride,
    g.pad.sym,
    g.dilation,
    false,
    [0, 0],
    groups,
    [true, false, false],
  );
  if (!g.pad.asymmetric) return dx!;
  return slice(slice(dx!, 2, t, t + inShape[2]!), 3, l, l + inShape[3]!);
}

/** dL/dW of a convolution in ATen layout [out, in/groups, fh, fw]. */
function convGradWeight(x: Handle, dy: Handle, weightShape: number[], g: ConvGeometry, groups = 1): Handle {
  const input = g.pad.asymmetric ? constantPad(x, g.pad.extra, 0) : x;
  const weight = contiguous(newEmpty(dy, weightShape), CHANNELS_LAST);
  const [, dw] = convolutionBackward(
    dy,
    input,
    weight,
    null,
    g.stride,
    g.pad.sym,
    g.dilation,
    false,
    [0, 0],
    groups,
    [false, true, false],
  );
  return dw!;
}

function nchwShape(shape: number[], channelsLast: boolean): number[] {
  return channelsLast ? [shape[0]!, shape[3]!, shape[1]!, shape[2]!] : shape;
}

/** Bias for ATen's convolution when it is one value per output channel; otherwise null (added afterwards). */
function perChannelBias(shape: number[] | undefined, outChannels: number): boolean {
  return shape !== undefined && shape.length === 1 && shape[0] === outChannels;
}

/** TF.js's BatchMatMul takes matrices (rank ≥ 2); ATen's matmul would also accept vectors. */
function checkMatmulRanks(inputs: NamedTensorInfoMap): void {
  for (const name of ['a', 'b']) {
    const rank = inputs[name]!.shape.length;
    if (rank < 2) throw new Error(`BatchMatMul: '${name}' must have rank >= 2, got rank ${rank}`);
  }
}

function batchMatMul(a: Handle, bm: Handle, transposeA: boolean, transposeB: boolean): Handle {
  return matmul(transposeA ? transpose(a, -1, -2) : a, transposeB ? transpose(bm, -1, -2) : bm);
}

/**
 * y = (x - mean) * scale / sqrt(variance + eps) + offset. When every parameter is one value per channel (the
 * last axis), ATen's batch_norm runs it in one pass on a channels-first view; otherwise the per-element
 * factor and offset are formed on the parameters' (broadcast) shape and applied with one addcmul.
 */
function batchNormForward(
  x: Handle,
  xShape: number[],
  params: { mean: Handle; variance: Handle; scale: Handle | null; offset: Handle | null },
  paramShapes: (number[] | undefined)[],
  eps: number,
): Handle {
  const channels = xShape[xShape.length - 1]!;
  const perChannel =
    xShape.length >= 2 && paramShapes.every((s) => s === undefined || (s.length === 1 && s[0] === channels));
  if (perChannel) {
    const toFirst = channelsFirstOrder(xShape.length);
    const y = batchNorm(
      permute(x, toFirst),
      params.scale,
      params.offset,
      params.mean,
      params.variance,
      false,
      0,
      eps,
      false,
    );
    return permute(y, inverse(toFirst));
  }
  let factor = rsqrt(addScalar(params.variance, eps));
  if (params.scale) factor = mul(factor, params.scale);
  let shift = neg(mul(params.mean, factor));
  if (params.offset) shift = add(shift, params.offset);
  return addcmul(shift, x, factor);
}

/** Axis order that moves the last axis to position 1 (NHWC → NCHW for rank 4). */
function channelsFirstOrder(rank: number): number[] {
  return [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
}

function inverse(order: number[]): number[] {
  const inv = new Array<number>(order.length);
  order.forEach((o, i) => (inv[o] = i));
  return inv;
}

export const convMatmulKernels: KernelConfig[] = [
  kernel('Conv2D', ({ x, inputs, attrs }) => {
    const info = convInfo(inputs['x']!.shape, inputs['filter']!.shape, attrs);
    const g = geometry(info);
    return fromNCHW(
      convForward(toNCHW(x('x'), g.channelsLast), toWeight(x('filter')), null, g),
      g.channelsLast,
    );
  }),
  kernel('FusedConv2D', ({ x, inputs, attrs }) => {
    const info = convInfo(inputs['x']!.shape, inputs['filter']!.shape, attrs);
    const g = geometry(info);
    const biasInBody = perChannelBias(inputs['bias']?.shape, info.outChannels);
    const y = fromNCHW(
      convForward(toNCHW(x('x'), g.channelsLast), toWeight(x('filter')), biasInBody ? x('bias') : null, g),
      g.channelsLast,
    );
    // In NCHW, a 1-D bias or PReLU weight is per channel: it broadcasts as [C, 1, 1].
    const perChannel = (name: string) => {
      const shape = inputs[name]!.shape;
      return !g.channelsLast && shape.length === 1 && shape[0] !== 1
        ? reshape(x(name), [shape[0]!, 1, 1])
        : x(name);
    };
    const withBias = inputs['bias'] && !biasInBody ? add(y, perChannel('bias')) : y;
    return applyActivation(
      withBias,
      attrs['activation'] as string | undefined,
      inputs['preluActivationWeights'] ? perChannel('preluActivationWeights') : undefined,
      attrs['leakyreluAlpha'] as number | undefined,
    );
  }),
  kernel('Conv2DBackpropInput', ({ x, inputs, attrs }) => {
    const inputShape = attrs['inputShape'] as number[];
    const info = convInfo(inputShape, inputs['filter']!.shape, attrs);
    const g = geometry(info);
    // TF.js reads only the dy rows/columns the forward convolution would produce; a larger dy is cropped.
    let dy = toNCHW(x('dy'), g.channelsLast);
    const dyShape = nchwShape(inputs['dy']!.shape, g.channelsLast);
    if (dyShape[2]! > info.outHeight) dy = slice(dy, 2, 0, info.outHeight);
    if (dyShape[3]! > info.outWidth) dy = slice(dy, 3, 0, info.outWidth);
    const dx = convGradInput(dy, toWeight(x('filter')), nchwShape(inputShape, g.channelsLast), g);
    return fromNCHW(dx, g.channelsLast);
  }),
  kernel('Conv2DBackpropFilter', ({ x, inputs, attrs }) => {
    const filterShape = attrs['filterShape'] as number[];
    const info = convInfo(inputs['x']!.shape, filterShape, attrs);
    const g = geometry(info);
    const [fh, fw, cin, cout] = filterShape as [number, number, number, number];
    const dw = convGradWeight(
      toNCHW(x('x'), g.channelsLast),
      toNCHW(x('dy'), g.channelsLast),
      [cout, cin, fh, fw],
      g,
    );
    return fromWeight(dw);
  }),
  kernel('BatchMatMul', ({ x, inputs, attrs }) => {
    checkMatmulRanks(inputs);
    return batchMatMul(x('a'), x('b'), attrs['transposeA'] === true, attrs['transposeB'] === true);
  }),
  kernel('_FusedMatMul', ({ x, inputs, attrs }) => {
    checkMatmulRanks(inputs);
    let y = batchMatMul(x('a'), x('b'), attrs['transposeA'] === true, attrs['transposeB'] === true);
    if (inputs['bias']) y = add(y, x('bias'));
    return applyActivation(
      y,
      attrs['activation'] as string | undefined,
      inputs['preluActivationWeights'] ? x('preluActivationWeights') : undefined,
      attrs['leakyreluAlpha'] as number | undefined,
    );
  }),
  kernel('FusedBatchNorm', ({ x, inputs, attrs }) => {
    const eps = attrs['varianceEpsilon'] as number;
    const xShape = inputs['x']!.shape;
    return batchNormForward(
      x('x'),
      xShape,
      {
        mean: x('mean'),
        variance: x('variance'),
        scale: inputs['scale'] ? x('scale') : null,
        offset: inputs['offset'] ? x('offset') : null,
      },
      [inputs['mean']!.shape, inputs['variance']!.shape, inputs['scale']?.shape, inputs['offset']?.shape],
      eps,
    );
  }),
];
