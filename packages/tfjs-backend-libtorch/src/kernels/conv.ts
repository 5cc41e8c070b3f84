// Convolutions on ATen, shared by Conv2D (conv-matmul.ts) and the depthwise and 3-D kernels (spatial.ts).
// TF tensors are channels-last; ATen sees their channels-first views (a permute, no copy), which oneDNN
// consumes as channels-last memory. TF's padding is split by layout.ts into ATen's symmetric padding and an
// explicit remainder (asymmetric 'same', rounding modes). Gradients are `convolution_backward` of the forward
// convolution, given dummy (uninitialised) tensors where only a shape is needed.
import type { backend_util, NamedAttrMap, NamedTensorInfoMap } from '@tensorflow/tfjs-core';
import { applyActivation } from './activation.js';
import {
  channelsFirstShape,
  nchwView,
  nhwcView,
  padExtra,
  paddedShape,
  padInfoToAten,
  spatialAxes,
  unpadExtra,
  type AtenPadding,
} from './layout.js';
import { op, opN, shapeOf, type Handle } from './util.js';

const contiguous = op('aten::contiguous');
const newEmpty = op('aten::new_empty');
const reshape = op('aten::reshape');
const add = op('aten::add.Tensor');
const convolution = op('aten::convolution');
const convolutionBackward = opN('aten::convolution_backward');
const convTranspose2d = op('aten::conv_transpose2d.input');

/** ATen MemoryFormat codes. */
export const MEMORY_FORMAT = { contiguous: 0, channelsLast: 2, channelsLast3d: 3 } as const;

export interface ConvGeometry {
  /** Spatial dimensions: 2 (NHWC) or 3 (NDHWC). */
  rank: 2 | 3;
  stride: number[];
  dilation: number[];
  pad: AtenPadding;
  /** Whether the TF tensors are channels-last (NHWC / NDHWC), TF.js's default. */
  channelsLast: boolean;
}

export function convGeometry(info: backend_util.Conv2DInfo | backend_util.Conv3DInfo): ConvGeometry {
  const axes = spatialAxes(info);
  return {
    rank: axes.length as 2 | 3,
    stride: axes.map((a) => a.stride),
    dilation: axes.map((a) => a.dilation),
    pad: padInfoToAten(axes),
    channelsLast: info.dataFormat === 'channelsLast',
  };
}

export const toChannelsFirst = (h: Handle, g: ConvGeometry) => (g.channelsLast ? nchwView(h, g.rank + 2) : h);
export const fromChannelsFirst = (h: Handle, g: ConvGeometry) =>
  g.channelsLast ? nhwcView(h, g.rank + 2) : h;
/** x's shape as ATen sees it (channels first), from its TF shape. */
const atenShape = (shape: readonly number[], g: ConvGeometry): number[] =>
  g.channelsLast ? channelsFirstShape(shape) : [...shape];

/** The channels-last memory format of the geometry's rank (what oneDNN runs fastest). */
export const channelsLastFormat = (g: ConvGeometry) =>
  g.rank === 2 ? MEMORY_FORMAT.channelsLast : MEMORY_FORMAT.channelsLast3d;

/** An uninitialised channels-first tensor of `shape`, stored channels-last: a stand-in whose shape (and memory
 * format, which steers oneDNN) is all `convolution_backward` reads. */
function dummy(like: Handle, shape: number[], g: ConvGeometry): Handle {
  return contiguous(newEmpty(like, shape), channelsLastFormat(g));
}

/** Forward convolution of a TF-layout input with an ATen weight; the result is in TF layout. */
export function convForward(
  x: Handle,
  weight: Handle,
  bias: Handle | null,
  g: ConvGeometry,
  groups = 1,
): Handle {
  const xp = padExtra(toChannelsFirst(x, g), g.pad);
  const zeros = g.stride.map(() => 0);
  return fromChannelsFirst(
    convolution(xp, weight, bias, g.stride, g.pad.sym, g.dilation, false, zeros, groups),
    g,
  );
}

/**
 * Below this many input channels (of the forward convolution: output channels of a conv2dTranspose), oneDNN's
 * backward-data primitive is slow in this build and ATen's direct transposed convolution on contiguous data
 * wins (measured, 1 thread, batch 64, 64→1 channels, 32→64 px: 22 ms against 5.4 ms; with 64 channels the
 * backward primitive wins, 38 against 56 ms).
 */
const TRANSPOSED_MAX_CHANNELS = 4;

/** conv_transpose2d's output_padding giving `size` on one axis, or null when ATen cannot express it. */
function outputPadding(
  size: number,
  dySize: number,
  k: number,
  g: ConvGeometry,
  axis: number,
): number | null {
  const produced = (dySize - 1) * g.stride[axis]! - 2 * g.pad.sym[axis]! + g.dilation[axis]! * (k - 1) + 1;
  const extra = size - produced;
  return extra >= 0 && extra < Math.max(g.stride[axis]!, g.dilation[axis]!) ? extra : null;
}

/** dL/dx by ATen's direct transposed convolution, where it is the faster route and can express the shape. */
function gradInputTransposed(
  dyCF: Handle,
  weight: Handle,
  xShapeCF: number[],
  g: ConvGeometry,
  groups: number,
) {
  if (g.rank !== 2 || groups !== 1 || g.pad.any || xShapeCF[1]! > TRANSPOSED_MAX_CHANNELS) return null;
  const [, , kh, kw] = shapeOf(weight) as [number, number, number, number];
  const dyShape = shapeOf(dyCF);
  const oh = outputPadding(xShapeCF[2]!, dyShape[2]!, kh, g, 0);
  const ow = outputPadding(xShapeCF[3]!, dyShape[3]!, kw, g, 1);
  if (oh === null || ow === null) return null;
  const w = contiguous(weight, MEMORY_FORMAT.contiguous);
  return convTranspose2d(
    contiguous(dyCF, MEMORY_FORMAT.contiguous),
    w,
    null,
    g.stride,
    g.pad.sym,
    [oh, ow],
    1,
    g.dilation,
  );
}

/** dL/dx of a convolution: dy and the result in TF layout, `xShape` x's TF shape. */
export function convGradInput(
  dy: Handle,
  weight: Handle,
  xShape: number[],
  g: ConvGeometry,
  groups = 1,
): Handle {
  const dyCF = toChannelsFirst(dy, g);
  const xShapeCF = atenShape(xShape, g);
  const direct = gradInputTransposed(dyCF, weight, xShapeCF, g, groups);
  if (direct !== null) return fromChannelsFirst(direct, g);
  const input = dummy(dy, paddedShape(xShapeCF, g.pad), g);
  const zeros = g.stride.map(() => 0);
  const [dxp] = convolutionBackward(
    dyCF,
    input,
    weight,
    null,
    g.stride,
    g.pad.sym,
    g.dilation,
    false,
    zeros,
    groups,
    [true, false, false],
  );
  return fromChannelsFirst(unpadExtra(dxp!, g.pad), g);
}

/** dL/dW of a convolution in ATen layout (`weightShape`), from x and dy in TF layout. */
export function convGradWeight(
  x: Handle,
  dy: Handle,
  weightShape: number[],
  g: ConvGeometry,
  groups = 1,
): Handle {
  const xp = padExtra(toChannelsFirst(x, g), g.pad);
  const weight = dummy(dy, weightShape, g);
  const zeros = g.stride.map(() => 0);
  const [, dw] = convolutionBackward(
    toChannelsFirst(dy, g),
    xp,
    weight,
    null,
    g.stride,
    g.pad.sym,
    g.dilation,
    false,
    zeros,
    groups,
    [false, true, false],
  );
  return dw!;
}

/** Whether a fused kernel's bias is one value per output channel, so that ATen's convolution adds it. */
export function biasInConvolution(inputs: NamedTensorInfoMap, outChannels: number): boolean {
  const shape = inputs['bias']?.shape;
  return shape !== undefined && shape.length === 1 && shape[0] === outChannels;
}

/**
 * The rest of a fused convolution: a bias the convolution did not add, then the activation. In NCHW a 1-D
 * per-channel bias or PReLU weight broadcasts as [C, 1, 1].
 */
export function fusedEpilogue(
  y: Handle,
  args: { inputs: NamedTensorInfoMap; attrs: NamedAttrMap; x(name: string): Handle },
  g: ConvGeometry,
  biasDone: boolean,
): Handle {
  const { inputs, attrs, x } = args;
  const operand = (name: string) => {
    const shape = inputs[name]!.shape;
    return !g.channelsLast && shape.length === 1 && shape[0] !== 1
      ? reshape(x(name), [shape[0]!, ...new Array<number>(g.rank).fill(1)])
      : x(name);
  };
  const biased = inputs['bias'] && !biasDone ? add(y, operand('bias')) : y;
  return applyActivation(
    biased,
    attrs['activation'] as string | undefined,
    inputs['preluActivationWeights'] ? operand('preluActivationWeights') : undefined,
    attrs['leakyreluAlpha'] as number | undefined,
  );
}
