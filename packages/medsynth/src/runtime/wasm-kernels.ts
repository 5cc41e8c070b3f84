/**
 * Training kernels the TF.js wasm backend (tfjs-backend-wasm 4.22) lacks, so that conv nets and GANs can train
 * on it when no faster backend is available:
 *
 * - `Conv2DBackpropFilter` (the filter gradient of every conv2d, and of conv2dTranspose): missing in wasm.
 * - `Conv2DBackpropInput` (the input gradient of conv2d, and conv2dTranspose's forward pass): wasm has one, but
 *   it is a direct loop about 6× slower than its own forward convolution; it is replaced.
 * - `DepthwiseConv2dNativeBackpropInput` / `…BackpropFilter` (depthwise and separable convolutions): missing.
 * - `UnsortedSegmentSum` (the gradient of gather, i.e. of `Embedding` layers in conditional GANs): missing.
 * - `MaxPoolGrad` (the gradient of max pooling): wasm has one, but it is wrong wherever a pooling window's values
 *   are negative (it returns a different element than the maximum); it is replaced.
 *
 * The dense convolutions are im2col + the wasm backend's own (XNNPACK) `BatchMatMul`, always called with
 * `transposeA = transposeB = false` — its transposed variants are a much slower fallback — so the patch matrix is
 * laid out for a plain product. The patch matrices are built with JS loops directly on the wasm heap and are
 * processed in chunks of samples so their size stays bounded. Depthwise convolutions do too little arithmetic
 * per element for a matmul to pay off; they are direct loops.
 *
 * `AvgPoolGrad`, `ResizeNearestNeighborGrad`, `ResizeBilinearGrad`, `EluGrad` and `FusedBatchNorm` (whose gradient
 * is composite) exist in tfjs-backend-wasm 4.22, are correct, and are left alone.
 */
import {
  backend_util,
  type DataId,
  type DataType,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  registerKernel,
  type TensorInfo,
  unregisterKernel,
  util,
} from '@tensorflow/tfjs-core';
// Registers the wasm backend and its kernels first, so that the replacements below are not overwritten later.
import '@tensorflow/tfjs-backend-wasm';

const BACKEND = 'wasm';

/** Largest patch matrix (in float32 elements) built at once: 16 Mi elements = 64 MiB of wasm heap. */
const MAX_PATCH_ELEMENTS = 1 << 24;

/** The part of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  /** A view of the tensor's bytes on the wasm heap. Invalidated when the heap grows (any allocation). */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

type Shape4 = [number, number, number, number];
type Padding = 'same' | 'valid' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

function input(inputs: Record<string, TensorInfo | undefined>, name: string, kernel: string): TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new Error(`${kernel}: missing input '${name}'`);
  return t;
}

function floats(backend: WasmBackend, t: TensorInfo, kernel: string): Float32Array {
  const v = backend.typedArrayFromHeap(t);
  if (!(v instanceof Float32Array))
    throw new Error(`${kernel} on wasm supports float32 only, got ${t.dtype}`);
  return v;
}

function shape4(shape: readonly number[], what: string, kernel: string): Shape4 {
  if (shape.length !== 4)
    throw new Error(`${kernel}: ${what} must be rank 4, got shape [${shape.join(', ')}]`);
  return [shape[0]!, shape[1]!, shape[2]!, shape[3]!];
}

function channelsLastOnly(dataFormat: unknown, kernel: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports dataFormat 'NHWC' only, got '${String(dataFormat)}'`);
  }
}

/** The attributes TF.js's conv2d gradient kernels share. */
interface ConvAttrs {
  strides: number | [number, number];
  pad: Padding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: Rounding;
}

/** TF.js's conv geometry for an (NHWC-only) conv2d gradient kernel. */
function conv2DInfo(
  kernel: string,
  xShape: Shape4,
  filterShape: Shape4,
  a: ConvAttrs,
): backend_util.Conv2DInfo {
  channelsLastOnly(a.dataFormat, kernel);
  return backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** `a · b` for rank-3 `[batch, m, k]·[batch, k, n]` through the wasm backend's own BatchMatMul kernel. */
function matmul(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  const kernel = getKernel('BatchMatMul', BACKEND);
  if (kernel === undefined) throw new Error("tfjs-backend-wasm has no 'BatchMatMul' kernel");
  const attrs = { transposeA: false, transposeB: false } as unknown as NamedAttrMap;
  return kernel.kernelFunc({ inputs: { a, b }, backend, attrs }) as TensorInfo;
}

/** A tensor that reads `t`'s data with another (same-size) shape; valid for the duration of a kernel call. */
function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** Samples per chunk so that `perSample`-element slices of a patch matrix stay under the budget. */
function samplesPerChunk(batch: number, perSample: number): number {
  return Math.max(1, Math.min(batch, Math.floor(MAX_PATCH_ELEMENTS / Math.max(1, perSample))));
}

interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  filterH: number;
  filterW: number;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  padTop: number;
  padLeft: number;
}

function geometry(info: backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    filterH: info.filterHeight,
    filterW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    dilationH: info.dilationHeight,
    dilationW: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: dW[k, co] = Σ_p patchT[k, p] · dy[p, co], with k = (fh, fw, ci) and p = (n, oh, ow).

const conv2DBackpropFilter: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const name = 'Conv2DBackpropFilter';
  const backend = b as WasmBackend;
  const x = input(inputs, 'x', name);
  const dy = input(inputs, 'dy', name);
  const a = attrs as unknown as ConvAttrs & { filterShape: number[] };
  const fShape = shape4(a.filterShape, 'filterShape', name);
  const info = conv2DInfo(name, shape4(x.shape, 'x', name), fShape, a);
  const g = geometry(info);
  const outC = info.outChannels;
  const rows = g.filterH * g.filterW * g.inC;
  const pixels = g.outH * g.outW;

  const out = backend.makeOutput([...fShape], 'float32');
  const perChunk = samplesPerChunk(g.batch, rows * pixels);
  const single = perChunk >= g.batch;
  for (let n0 = 0; n0 < g.batch; n0 += perChunk) {
    const nb = Math.min(perChunk, g.batch - n0);
    const cols = nb * pixels;
    const patches = backend.makeOutput([1, rows, cols], 'float32');
    const dyChunk = single ? view(dy, [1, cols, outC]) : backend.makeOutput([1, cols, outC], 'float32');
    if (!single) {
      const src = floats(backend, dy, name);
      floats(backend, dyChunk, name).set(src.subarray(n0 * pixels * outC, (n0 + nb) * pixels * outC));
    }
    fillTransposedPatches(floats(backend, x, name), floats(backend, patches, name), g, n0, nb);
    const product = matmul(backend, patches, dyChunk);
    const dw = floats(backend, out, name);
    const part = floats(backend, product, name);
    if (n0 === 0) dw.set(part);
    else for (let i = 0; i < dw.length; i++) dw[i]! += part[i]!;
    backend.disposeData(product.dataId);
    backend.disposeData(patches.dataId);
    if (!single) backend.disposeData(dyChunk.dataId);
  }
  return out;
};

/** patchT[(fh, fw, c), (n, oh, ow)] = x[n0 + n, oh·sh − pt + fh·dh, ow·sw − pl + fw·dw, c] (0 outside). */
function fillTransposedPatches(
  x: Float32Array,
  patchT: Float32Array,
  g: ConvGeometry,
  n0: number,
  nb: number,
): void {
  const cols = nb * g.outH * g.outW;
  const C = g.inC;
  const rowStride = g.inW * C;
  const imageStride = g.inH * rowStride;
  patchT.fill(0);
  for (let fh = 0; fh < g.filterH; fh++) {
    for (let fw = 0; fw < g.filterW; fw++) {
      const rowBase = (fh * g.filterW + fw) * C * cols;
      let p = 0;
      for (let n = 0; n < nb; n++) {
        const xImage = (n0 + n) * imageStride;
        for (let oh = 0; oh < g.outH; oh++) {
          const ih = oh * g.strideH - g.padTop + fh * g.dilationH;
          if (ih < 0 || ih >= g.inH) {
            p += g.outW;
            continue;
          }
          const xRow = xImage + ih * rowStride;
          for (let ow = 0; ow < g.outW; ow++, p++) {
            const iw = ow * g.strideW - g.padLeft + fw * g.dilationW;
            if (iw < 0 || iw >= g.inW) continue;
            const xo = xRow + iw * C;
            let o = rowBase + p;
            for (let c = 0; c < C; c++, o += cols) patchT[o] = x[xo + c]!;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropInput: cols[p, k] = Σ_co dy[p, co] · W[k, co] (W transposed once), then col2im adds each
// patch back to the input positions it was read from.

const conv2DBackpropInput: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const name = 'Conv2DBackpropInput';
  const backend = b as WasmBackend;
  const dy = input(inputs, 'dy', name);
  const filter = input(inputs, 'filter', name);
  const a = attrs as unknown as ConvAttrs & { inputShape: number[] };
  const inShape = shape4(a.inputShape, 'inputShape', name);
  const info = conv2DInfo(name, inShape, shape4(filter.shape, 'filter', name), a);
  const g = geometry(info);
  const outC = info.outChannels;
  const rows = g.filterH * g.filterW * g.inC;
  const pixels = g.outH * g.outW;

  const out = backend.makeOutput([...inShape], 'float32');
  const filterT = backend.makeOutput([1, outC, rows], 'float32');
  {
    const w = floats(backend, filter, name);
    const wt = floats(backend, filterT, name);
    for (let k = 0; k < rows; k++) for (let co = 0; co < outC; co++) wt[co * rows + k] = w[k * outC + co]!;
  }
  floats(backend, out, name).fill(0);
  const perChunk = samplesPerChunk(g.batch, rows * pixels);
  const single = perChunk >= g.batch;
  for (let n0 = 0; n0 < g.batch; n0 += perChunk) {
    const nb = Math.min(perChunk, g.batch - n0);
    const cols = nb * pixels;
    const dyChunk = single ? view(dy, [1, cols, outC]) : backend.makeOutput([1, cols, outC], 'float32');
    if (!single) {
      const src = floats(backend, dy, name);
      floats(backend, dyChunk, name).set(src.subarray(n0 * pixels * outC, (n0 + nb) * pixels * outC));
    }
    const patches = matmul(backend, dyChunk, filterT);
    addPatches(floats(backend, patches, name), floats(backend, out, name), g, n0, nb);
    backend.disposeData(patches.dataId);
    if (!single) backend.disposeData(dyChunk.dataId);
  }
  backend.disposeData(filterT.dataId);
  return out;
};

/** dx[n0 + n, ih, iw, c] += cols[(n, oh, ow), (fh, fw, c)] for every in-bounds (ih, iw) — col2im. */
function addPatches(cols: Float32Array, dx: Float32Array, g: ConvGeometry, n0: number, nb: number): void {
  const C = g.inC;
  const rowStride = g.inW * C;
  const imageStride = g.inH * rowStride;
  const rows = g.filterH * g.filterW * C;
  let p = 0;
  for (let n = 0; n < nb; n++) {
    const dxImage = (n0 + n) * imageStride;
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++, p++) {
        const colBase = p * rows;
        for (let fh = 0; fh < g.filterH; fh++) {
          const ih = oh * g.strideH - g.padTop + fh * g.dilationH;
          if (ih < 0 || ih >= g.inH) continue;
          const dxRow = dxImage + ih * rowStride;
          for (let fw = 0; fw < g.filterW; fw++) {
            const iw = ow * g.strideW - g.padLeft + fw * g.dilationW;
            if (iw < 0 || iw >= g.inW) continue;
            const d = dxRow + iw * C;
            const s = colBase + (fh * g.filterW + fw) * C;
            for (let c = 0; c < C; c++) dx[d + c]! += cols[s + c]!;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Depthwise convolution gradients (filter [fh, fw, c, m], output channel c·M + m): direct loops.

interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations?: number | [number, number];
  pad: Padding;
  dimRoundingMode?: Rounding;
}

/**
 * Calls `visit(xOffset, dyOffset, filterOffset)` for every (sample, output pixel, filter tap) whose input pixel
 * is in bounds; offsets are of channel 0 (x: `[n, ih, iw, 0]`, dy: `[n, oh, ow, 0]`, filter: `[fh, fw, 0, 0]`).
 */
function forEachTap(
  g: ConvGeometry,
  multiplier: number,
  visit: (xOffset: number, dyOffset: number, filterOffset: number) => void,
): void {
  const C = g.inC;
  const CM = C * multiplier;
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        const dyOffset = ((n * g.outH + oh) * g.outW + ow) * CM;
        for (let fh = 0; fh < g.filterH; fh++) {
          const ih = oh * g.strideH - g.padTop + fh * g.dilationH;
          if (ih < 0 || ih >= g.inH) continue;
          for (let fw = 0; fw < g.filterW; fw++) {
            const iw = ow * g.strideW - g.padLeft + fw * g.dilationW;
            if (iw < 0 || iw >= g.inW) continue;
            visit(((n * g.inH + ih) * g.inW + iw) * C, dyOffset, (fh * g.filterW + fw) * CM);
          }
        }
      }
    }
  }
}

const depthwiseBackpropFilter: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const name = 'DepthwiseConv2dNativeBackpropFilter';
  const backend = b as WasmBackend;
  const x = input(inputs, 'x', name);
  const dy = input(inputs, 'dy', name);
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: number[] };
  const fShape = shape4(a.filterShape, 'filterShape', name);
  const info = backend_util.computeConv2DInfo(
    shape4(x.shape, 'x', name),
    fShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  const g = geometry(info);
  const M = fShape[3];
  const C = g.inC;
  const acc = new Float64Array(util.sizeFromShape(fShape));
  const out = backend.makeOutput([...fShape], 'float32');
  const xv = floats(backend, x, name);
  const dyv = floats(backend, dy, name);
  if (M === 1) {
    forEachTap(g, 1, (xo, dyo, fo) => {
      for (let c = 0; c < C; c++) acc[fo + c]! += xv[xo + c]! * dyv[dyo + c]!;
    });
  } else {
    forEachTap(g, M, (xo, dyo, fo) => {
      for (let c = 0; c < C; c++) {
        const xval = xv[xo + c]!;
        const base = c * M;
        for (let m = 0; m < M; m++) acc[fo + base + m]! += xval * dyv[dyo + base + m]!;
      }
    });
  }
  floats(backend, out, name).set(acc);
  return out;
};

const depthwiseBackpropInput: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const name = 'DepthwiseConv2dNativeBackpropInput';
  const backend = b as WasmBackend;
  const dy = input(inputs, 'dy', name);
  const filter = input(inputs, 'filter', name);
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: number[] };
  const inShape = shape4(a.inputShape, 'inputShape', name);
  const fShape = shape4(filter.shape, 'filter', name);
  const info = backend_util.computeConv2DInfo(
    inShape,
    fShape,
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    true,
  );
  const g = geometry(info);
  const M = fShape[3];
  const C = g.inC;
  const out = backend.makeOutput([...inShape], 'float32');
  const dx = floats(backend, out, name);
  const dyv = floats(backend, dy, name);
  const w = floats(backend, filter, name);
  dx.fill(0);
  if (M === 1) {
    forEachTap(g, 1, (xo, dyo, fo) => {
      for (let c = 0; c < C; c++) dx[xo + c]! += dyv[dyo + c]! * w[fo + c]!;
    });
  } else {
    forEachTap(g, M, (xo, dyo, fo) => {
      for (let c = 0; c < C; c++) {
        const base = c * M;
        let s = 0;
        for (let m = 0; m < M; m++) s += dyv[dyo + base + m]! * w[fo + base + m]!;
        dx[xo + c]! += s;
      }
    });
  }
  return out;
};

// ---------------------------------------------------------------------------------------------------------
// UnsortedSegmentSum: out[id, …] = Σ over entries i with segmentIds[i] = id of x[i, …]. Ids outside
// [0, numSegments) are dropped.

const unsortedSegmentSum: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const name = 'UnsortedSegmentSum';
  const backend = b as WasmBackend;
  const x = input(inputs, 'x', name);
  const segmentIds = input(inputs, 'segmentIds', name);
  const { numSegments } = attrs as unknown as { numSegments: number };
  const segRank = segmentIds.shape.length;
  for (let i = 0; i < segRank; i++) {
    if (segmentIds.shape[i] !== x.shape[i]) {
      throw new Error(
        `${name}: segmentIds shape [${segmentIds.shape.join(', ')}] is not a prefix of x shape [${x.shape.join(', ')}]`,
      );
    }
  }
  const outShape = [numSegments, ...x.shape.slice(segRank)];
  const out = backend.makeOutput(outShape, x.dtype);
  const xv = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const ov = backend.typedArrayFromHeap(out);
  ov.fill(0);
  const count = ids.length;
  const inner = count === 0 ? 0 : xv.length / count;
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= numSegments) continue;
    const s = i * inner;
    const d = id * inner;
    for (let j = 0; j < inner; j++) ov[d + j]! += xv[s + j]!;
  }
  return out;
};

// ---------------------------------------------------------------------------------------------------------
// MaxPoolGrad: each output's gradient goes to the first maximum of its window (padding excluded), in window
// scan order — TF.js's convention.

const maxPoolGrad: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const name = 'MaxPoolGrad';
  const backend = b as WasmBackend;
  const dy = input(inputs, 'dy', name);
  const x = input(inputs, 'input', name);
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: Padding;
    dimRoundingMode?: Rounding;
  };
  const info = backend_util.computePool2DInfo(
    shape4(x.shape, 'input', name),
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const g = geometry(info);
  const C = g.inC;
  const out = backend.makeOutput([...x.shape], 'float32');
  const dx = floats(backend, out, name);
  const xv = floats(backend, x, name);
  const dyv = floats(backend, dy, name);
  dx.fill(0);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        best.fill(Number.NEGATIVE_INFINITY);
        at.fill(-1);
        for (let fh = 0; fh < g.filterH; fh++) {
          const ih = oh * g.strideH - g.padTop + fh * g.dilationH;
          if (ih < 0 || ih >= g.inH) continue;
          for (let fw = 0; fw < g.filterW; fw++) {
            const iw = ow * g.strideW - g.padLeft + fw * g.dilationW;
            if (iw < 0 || iw >= g.inW) continue;
            const xo = ((n * g.inH + ih) * g.inW + iw) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[xo + c]!;
              if (v > best[c]! || at[c] === -1) {
                best[c] = v;
                at[c] = xo + c;
              }
            }
          }
        }
        const dyo = ((n * g.outH + oh) * g.outW + ow) * C;
        for (let c = 0; c < C; c++) if (at[c]! >= 0) dx[at[c]!]! += dyv[dyo + c]!;
      }
    }
  }
  return out;
};

// ---------------------------------------------------------------------------------------------------------

/** Kernels wasm does not have; registered only where it still lacks them. */
const missing: readonly KernelConfig[] = [
  { kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilter },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: BACKEND,
    kernelFunc: depthwiseBackpropFilter,
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: BACKEND,
    kernelFunc: depthwiseBackpropInput,
  },
  { kernelName: 'UnsortedSegmentSum', backendName: BACKEND, kernelFunc: unsortedSegmentSum },
];

/** Kernels wasm has in a much slower (Conv2DBackpropInput) or wrong (MaxPoolGrad) form; replaced. */
const replacements: readonly KernelConfig[] = [
  { kernelName: 'Conv2DBackpropInput', backendName: BACKEND, kernelFunc: conv2DBackpropInput },
  { kernelName: 'MaxPoolGrad', backendName: BACKEND, kernelFunc: maxPoolGrad },
];

/** Names of the kernels this module provides for the wasm backend. */
export const WASM_TRAINING_KERNELS: readonly string[] = [...missing, ...replacements].map(
  (k) => k.kernelName,
);

/**
 * Registers the training kernels above for the 'wasm' backend (tfjs-backend-wasm need not be imported yet;
 * registration is by name). Idempotent. Returns the names of this module's kernels that are now registered for
 * 'wasm' — by this call or an earlier one; a kernel a future tfjs-backend-wasm provides itself is left alone
 * and not listed.
 */
export function registerWasmTrainingKernels(): string[] {
  const active: string[] = [];
  for (const config of missing) {
    const existing = getKernel(config.kernelName, BACKEND);
    if (existing === undefined) registerKernel(config);
    else if (existing.kernelFunc !== config.kernelFunc) continue;
    active.push(config.kernelName);
  }
  for (const config of replacements) {
    const existing = getKernel(config.kernelName, BACKEND);
    if (existing?.kernelFunc !== config.kernelFunc) {
      if (existing !== undefined) unregisterKernel(config.kernelName, BACKEND);
      registerKernel(config);
    }
    active.push(config.kernelName);
  }
  return active;
}
