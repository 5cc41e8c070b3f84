// Layout helpers for spatial kernels. TF.js images are channels-last (NHWC / NDHWC) and contiguous; ATen's
// pooling, resampling and convolution ops take channels-first shapes. Permuting a contiguous NHWC tensor to
// NCHW gives a view with channels-last strides (no copy) that ATen's CPU kernels consume directly, and their
// channels-last results permute back to contiguous NHWC for free.
//
// TF padding can be asymmetric (TF 'same' puts the odd row/column at the bottom/right) and its output size can
// follow a rounding mode; ATen pads symmetrically and rounds down. `padInfoToAten` splits TF's padding into a
// symmetric part for ATen and an explicit remainder for constant_pad_nd, chosen so that ATen's output size is
// TF's.
import type { backend_util } from '@tensorflow/tfjs-core';
import { op, type Handle } from './util.js';

const permute = op('aten::permute');
const constantPad = op('aten::constant_pad_nd');

/** Axis order moving the channel axis from last to second: [0, r-1, 1, …, r-2]. */
function channelsFirstOrder(rank: number): number[] {
  return [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
}

/** Axis order moving the channel axis from second to last: [0, 2, …, r-1, 1]. */
function channelsLastOrder(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1];
}

/** The NCHW (NCDHW for rank 5) view of an NHWC (NDHWC) tensor; no copy. */
export function nchwView(h: Handle, rank = 4): Handle {
  return permute(h, channelsFirstOrder(rank));
}

/** The NHWC (NDHWC for rank 5) view of an NCHW (NCDHW) tensor; contiguous when `h` is channels-last. */
export function nhwcView(h: Handle, rank = 4): Handle {
  return permute(h, channelsLastOrder(rank));
}

/** The channels-first shape of a channels-last shape: [N, ...spatial, C] → [N, C, ...spatial]. */
export function channelsFirstShape(shape: readonly number[]): number[] {
  return [shape[0]!, shape[shape.length - 1]!, ...shape.slice(1, -1)];
}

/** One spatial axis of a TF window op (pooling or convolution). */
export interface SpatialAxis {
  inSize: number;
  outSize: number;
  /** The dilated filter size. */
  window: number;
  stride: number;
  dilation: number;
  /** TF's padding before (top/left/front) and after (bottom/right/back) the input. */
  before: number;
  after: number;
}

/** The spatial axes (depth,) height, width of a TF.js conv/pool geometry. */
export function spatialAxes(info: backend_util.Conv2DInfo | backend_util.Conv3DInfo): SpatialAxis[] {
  const axes: SpatialAxis[] = [];
  if ('inDepth' in info) {
    axes.push({
      inSize: info.inDepth,
      outSize: info.outDepth,
      window: info.effectiveFilterDepth,
      stride: info.strideDepth,
      dilation: info.dilationDepth,
      before: info.padInfo.front,
      after: info.padInfo.back,
    });
  }
  const pad = info.padInfo;
  axes.push(
    {
      inSize: info.inHeight,
      outSize: info.outHeight,
      window: info.effectiveFilterHeight,
      stride: info.strideHeight,
      dilation: info.dilationHeight,
      before: pad.top,
      after: pad.bottom,
    },
    {
      inSize: info.inWidth,
      outSize: info.outWidth,
      window: info.effectiveFilterWidth,
      stride: info.strideWidth,
      dilation: info.dilationWidth,
      before: pad.left,
      after: pad.right,
    },
  );
  return axes;
}

/** Padding in ATen's terms for one window op. */
export interface AtenPadding {
  /** Symmetric padding per spatial axis: the `padding` argument of ATen's pooling/convolution ops. */
  sym: number[];
  /** Remaining padding in constant_pad_nd order over the spatial axes of a channels-first tensor (last axis
   * first: [left, right, top, bottom, front, back]). Negative entries crop. */
  extra: number[];
  /** Whether `extra` adds elements (some entry > 0). */
  grows: boolean;
  /** Whether `extra` is not all zero. */
  any: boolean;
}

/**
 * Splits TF's padding into ATen's symmetric padding (at most `maxSym[i]` on axis i: ATen pooling allows at most
 * half the window) and an explicit remainder. The padding after the input is first adjusted so that ATen's
 * floor-rounded output size equals TF's (TF's 'ceil'/'round' dimRoundingMode can ask for one more window,
 * which reads padding only; a TF size smaller than ATen's would crop rows no window reads).
 */
export function padInfoToAten(axes: readonly SpatialAxis[], maxSym?: readonly number[]): AtenPadding {
  const sym: number[] = [];
  const perAxis: [number, number][] = [];
  axes.forEach((a, i) => {
    const span = (n: number) => a.inSize + a.before + n - a.window;
    let after = a.after;
    // ATen's output size is floor(span / stride) + 1; it must be outSize.
    const least = (a.outSize - 1) * a.stride - span(0);
    const most = a.outSize * a.stride - 1 - span(0);
    after = Math.min(Math.max(after, least), most);
    const s = Math.max(0, Math.min(a.before, after, maxSym?.[i] ?? Infinity));
    sym.push(s);
    perAxis.push([a.before - s, after - s]);
  });
  const extra = perAxis.reverse().flat();
  return { sym, extra, grows: extra.some((e) => e > 0), any: extra.some((e) => e !== 0) };
}

/** Applies the explicit padding of `p` to a channels-first tensor (`value` fills new elements). */
export function padExtra(h: Handle, p: AtenPadding, value = 0): Handle {
  return p.any ? constantPad(h, p.extra, value) : h;
}

/** Undoes `padExtra` on a channels-first gradient: crops what was added, zero-fills what was cropped. */
export function unpadExtra(h: Handle, p: AtenPadding): Handle {
  return p.any
    ? constantPad(
        h,
        p.extra.map((e) => -e),
        0,
      )
    : h;
}

/** Channels-first shape of the explicitly padded input of `p`, from the channels-first input shape. */
export function paddedShape(shape: readonly number[], p: AtenPadding): number[] {
  const spatial = shape.length - 2;
  return shape.map((d, i) => {
    if (i < 2) return d;
    const k = 2 * (spatial - 1 - (i - 2));
    return d + p.extra[k]! + p.extra[k + 1]!;
  });
}

/** ATen's pooled output size along one axis (ceil mode drops a last window that would start in the padding
 * after the input). */
function atenPoolOutput(a: SpatialAxis, pad: number, ceil: boolean): number {
  const span = a.inSize + 2 * pad - a.window;
  if (span < 0) return 0;
  const out = (ceil ? Math.ceil(span / a.stride) : Math.floor(span / a.stride)) + 1;
  return ceil && (out - 1) * a.stride >= a.inSize + pad ? out - 1 : out;
}

/**
 * Padding for ATen's pooling ops. When TF's windows are ATen's with the padding before the input mirrored
 * after it, rounding up (ceil_mode) where TF needs more windows at the end, no explicit padding is needed:
 * ATen clips windows to the input, as TF does. Otherwise the remainder is padded explicitly (a copy).
 * `inputCoversWindow`: the op (avg_pool3d) insists that its unpadded input is at least one window long.
 */
export function poolPaddingToAten(
  axes: readonly SpatialAxis[],
  inputCoversWindow = false,
): { pad: AtenPadding; ceil: boolean } {
  // TF.js's 3-D 'same' padding can be negative (front/top/left): the windows start inside the input.
  const symmetric = (a: SpatialAxis) =>
    a.before >= 0 && a.before <= Math.floor(a.window / 2) && (!inputCoversWindow || a.inSize >= a.window);
  const fits = (ceil: boolean) =>
    axes.every((a) => symmetric(a) && atenPoolOutput(a, a.before, ceil) === a.outSize);
  const ceil = fits(false) ? false : fits(true) ? true : null;
  if (ceil !== null) {
    const extra = axes.flatMap(() => [0, 0]);
    return { pad: { sym: axes.map((a) => a.before), extra, grows: false, any: false }, ceil };
  }
  // ATen pools pad by at most half the window; an input shorter than the window gets all its padding
  // explicitly where the op requires it.
  const maxSym = axes.map((a) => (inputCoversWindow && a.inSize < a.window ? 0 : Math.floor(a.window / 2)));
  return { pad: padInfoToAten(axes, maxSym), ceil: false };
}
