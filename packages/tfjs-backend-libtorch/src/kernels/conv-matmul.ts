// Convolutions, matrix products and batch normalisation: the kernels that decide training speed.
// The convolution machinery (layouts, TF padding, gradient routes) is in conv.ts.
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedTensorInfoMap } from '@tensorflow/tfjs-core';
import { applyActivation } from './activation.js';
import {
  MEMORY_FORMAT,
  biasInConvolution,
  convForward,
  convGeometry,
  convGradInput,
  convGradWeight,
  fusedEpilogue,
} from './conv.js';
import { nchwView, nhwcView } from './layout.js';
import { kernel, op, type Handle } from './util.js';

const permute = op('aten::permute');
const contiguous = op('aten::contiguous');
const slice = op('aten::slice.Tensor');
const matmul = op('aten::matmul');
const transpose = op('aten::transpose.int');
const add = op('aten::add.Tensor');
const batchNorm = op('aten::batch_norm');
const addcmul = op('aten::addcmul');
const mul = op('aten::mul.Tensor');
const rsqrt = op('aten::rsqrt');
const addScalar = op('aten::add.Scalar');
const neg = op('aten::neg');

/** TF filter [fh, fw, in, out] → ATen weight [out, in, fh, fw], stored channels-last (what oneDNN wants). */
const toWeight = (filter: Handle) => contiguous(permute(filter, [3, 2, 0, 1]), MEMORY_FORMAT.channelsLast);
/** ATen weight gradient [out, in, fh, fw] → TF filter layout [fh, fw, in, out], made contiguous: the
 * optimizer combines it element-wise with the (contiguous) variable, which is slow on permuted strides. */
const fromWeight = (w: Handle) => contiguous(permute(w, [2, 3, 1, 0]), MEMORY_FORMAT.contiguous);

function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): backend_util.Conv2DInfo {
  const dataFormat = (attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC';
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as [number, number] | number,
    (attrs['dilations'] as [number, number] | number | undefined) ?? 1,
    attrs['pad'] as 'valid' | 'same' | number | backend_util.ExplicitPadding,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
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
    const rank = xShape.length;
    const y = batchNorm(
      nchwView(x, rank),
      params.scale,
      params.offset,
      params.mean,
      params.variance,
      false,
      0,
      eps,
      false,
    );
    return nhwcView(y, rank);
  }
  let factor = rsqrt(addScalar(params.variance, eps));
  if (params.scale) factor = mul(factor, params.scale);
  let shift = neg(mul(params.mean, factor));
  if (params.offset) shift = add(shift, params.offset);
  return addcmul(shift, x, factor);
}

export const convMatmulKernels: KernelConfig[] = [
  kernel('Conv2D', ({ x, inputs, attrs }) => {
    const g = convGeometry(convInfo(inputs['x']!.shape, inputs['filter']!.shape, attrs));
    return convForward(x('x'), toWeight(x('filter')), null, g);
  }),
  kernel('FusedConv2D', (args) => {
    const { x, inputs, attrs } = args;
    const info = convInfo(inputs['x']!.shape, inputs['filter']!.shape, attrs);
    const g = convGeometry(info);
    const biasInConv = biasInConvolution(inputs, info.outChannels);
    const y = convForward(x('x'), toWeight(x('filter')), biasInConv ? x('bias') : null, g);
    return fusedEpilogue(y, args, g, biasInConv);
  }),
  kernel('Conv2DBackpropInput', ({ x, inputs, attrs }) => {
    const inputShape = attrs['inputShape'] as number[];
    const info = convInfo(inputShape, inputs['filter']!.shape, attrs);
    const g = convGeometry(info);
    // TF.js reads only the dy rows/columns the forward convolution would produce; a larger dy is cropped.
    const [hAxis, wAxis] = g.channelsLast ? [1, 2] : [2, 3];
    const dyShape = inputs['dy']!.shape;
    let dy = x('dy');
    if (dyShape[hAxis]! > info.outHeight) dy = slice(dy, hAxis, 0, info.outHeight);
    if (dyShape[wAxis]! > info.outWidth) dy = slice(dy, wAxis, 0, info.outWidth);
    return convGradInput(dy, toWeight(x('filter')), inputShape, g);
  }),
  kernel('Conv2DBackpropFilter', ({ x, inputs, attrs }) => {
    const filterShape = attrs['filterShape'] as number[];
    const g = convGeometry(convInfo(inputs['x']!.shape, filterShape, attrs));
    const [fh, fw, cin, cout] = filterShape as [number, number, number, number];
    return fromWeight(convGradWeight(x('x'), x('dy'), [cout, cin, fh, fw], g));
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
