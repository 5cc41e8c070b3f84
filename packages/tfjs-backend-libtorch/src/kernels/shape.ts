// Layout and indexing kernels: Transpose, Slice, StridedSlice, Concat, Pack, Unpack, SplitV, PadV2, MirrorPad,
// Tile, Reverse, BroadcastTo, BroadcastArgs, GatherV2, GatherNd, ScatterNd, TensorScatterUpdate, SparseToDense,
// OneHot, Diag, SearchSorted, Unique and Einsum. Views (permute, slice, narrow, expand, unbind, split) are
// returned as they are: reads densify them.
//
// libtorch 1.13's gather/scatter/index take int64 indices only, and every int64 result comes back narrowed to
// int32, so the kernels index with the ops that accept int32 (index_select, index_add) over tensors flattened
// to [slices, sliceSize] and flat int32 slice numbers. (index_reduce also takes int32 but prints a "beta"
// warning on first use.)
import {
  backend_util,
  slice_util,
  util,
  type KernelConfig,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { BACKEND_NAME, type LibtorchBackend } from '../backend.js';
import { DTYPE_CODE } from '../addon.js';
import { kernel, op, opN, scalarType, SCALAR_TYPE, type Handle } from './util.js';

const alias = op('aten::alias');
const to = op('aten::to.dtype');
const reshape = op('aten::reshape');
const permute = op('aten::permute');
const slice = op('aten::slice.Tensor');
const narrow = op('aten::narrow');
const select = op('aten::select.int');
const flip = op('aten::flip');
const cat = op('aten::cat');
const stack = op('aten::stack');
const unbind = opN('aten::unbind.int');
const splitWithSizes = opN('aten::split_with_sizes');
const constantPad = op('aten::constant_pad_nd');
const repeat = op('aten::repeat');
const expand = op('aten::expand');
const indexSelect = op('aten::index_select');
const indexAdd = op('aten::index_add');
const maskedSelect = op('aten::masked_select');
const newEmpty = op('aten::new_empty');
const newZeros = op('aten::new_zeros');
const arangeOut = op('aten::arange.start_out');
const add = op('aten::add.Tensor');
const mulScalar = op('aten::mul.Scalar');
const rsubScalar = op('aten::rsub.Scalar');
const abs = op('aten::abs');
const bitwiseNot = op('aten::bitwise_not');
const minimum = op('aten::minimum');
const maximum = op('aten::maximum');
const eq = op('aten::eq.Tensor');
const ge = op('aten::ge.Scalar');
const gt = op('aten::gt.Scalar');
const ne = op('aten::ne.Scalar');
const neTensor = op('aten::ne.Tensor');
const newOnes = op('aten::new_ones');
const lt = op('aten::lt.Scalar');
const logicalAnd = op('aten::logical_and');
const logicalOr = op('aten::logical_or');
const whereScalarOther = op('aten::where.ScalarOther');
const whereScalar = op('aten::where.Scalar');
const where = op('aten::where.self');
const unsqueeze = op('aten::unsqueeze');
const diagEmbed = op('aten::diag_embed');
const searchsorted = op('aten::searchsorted.Tensor');
const uniqueDim = opN('aten::unique_dim');
const sortStable = opN('aten::sort.stable');
const einsum = op('aten::einsum');
const viewDtype = op('aten::view.dtype');
const maskedFill = op('aten::masked_fill.Scalar');
const isnan = op('aten::isnan');
const addScalar = op('aten::add.Scalar');

/** The tensors of a kernel whose inputs are a list (Concat, Pack, Einsum). */
function listInputs(inputs: NamedTensorInfoMap): TensorInfo[] {
  return Object.values(inputs).filter((t): t is TensorInfo => t !== undefined);
}

/** Integers start..end-1 (int32) on `like`'s device. */
function arange(like: Handle, start: number, end: number): Handle {
  return arangeOut(BigInt(start), BigInt(end), 1n, newEmpty(like, [0], SCALAR_TYPE.int32));
}

/** `t` sliced by TF.js's normalized begin/size (one entry per dim); untouched dims cost nothing. */
function sliceBySize(t: Handle, shape: readonly number[], begin: number[], size: number[]): Handle {
  let out = t;
  shape.forEach((n, d) => {
    if (begin[d] !== 0 || size[d] !== n) out = narrow(out, d, begin[d]!, size[d]!);
  });
  return out === t ? alias(t) : out;
}

/** The strided part of StridedSlice, after slice_util has resolved masks and negative indices: dims with a
 * negative stride are flipped first (ATen slices step forward only), then each dim is sliced. */
function stridedSlice(
  t: Handle,
  shape: readonly number[],
  begin: number[],
  end: number[],
  strides: number[],
): Handle {
  const sizes = slice_util.computeOutShape(begin, end, strides);
  const reversed = strides.flatMap((s, d) => (s < 0 ? [d] : []));
  let out = reversed.length > 0 ? flip(t, reversed) : t;
  shape.forEach((n, d) => {
    const step = Math.abs(strides[d]!);
    const start = strides[d]! < 0 ? n - 1 - begin[d]! : begin[d]!;
    const size = sizes[d]!;
    if (size === 0) out = narrow(out, d, 0, 0);
    else if (start !== 0 || step !== 1 || size !== n)
      out = slice(out, d, start, start + (size - 1) * step + 1, step);
  });
  return out === t ? alias(t) : out;
}

/** Source positions for a mirror-padded dim of size n: i runs over [-before, n + after). Reflect mirrors
 * around the edge elements (index -1 reads 1), symmetric repeats them (index -1 reads 0). */
function mirrorIndex(like: Handle, n: number, before: number, after: number, mode: string): Handle {
  const i = arange(like, -before, n + after);
  if (mode === 'reflect') {
    const a = abs(i);
    return minimum(a, rsubScalar(a, BigInt(2 * (n - 1))));
  }
  // max(i, ~i) is i for i >= 0 and -i - 1 below: the symmetric fold at the start.
  const k = maximum(i, bitwiseNot(i));
  return minimum(k, rsubScalar(k, BigInt(2 * n - 1)));
}

/** Row-major slice numbers (int32, [n]) of the n index vectors in `indices` ([..., K]) into a tensor whose
 * first K dims are `dims`. An index outside its dim gives -1, so the ATen op that consumes the numbers throws
 * instead of reading a neighbouring slice. */
function flatIndex(indices: Handle, n: number, dims: readonly number[]): Handle {
  const k = dims.length;
  if (k === 0) return newZeros(indices, [n]);
  const rows = reshape(indices, [n, k]);
  let flat: Handle | null = null;
  let valid: Handle | null = null;
  let stride = 1;
  for (let d = k - 1; d >= 0; d--) {
    const i = select(rows, 1, d);
    const term = stride === 1 ? i : mulScalar(i, BigInt(stride));
    flat = flat === null ? term : add(flat, term);
    const inRange = logicalAnd(ge(i, 0n), lt(i, BigInt(dims[d]!)));
    valid = valid === null ? inRange : logicalAnd(valid, inRange);
    stride *= dims[d]!;
  }
  return whereScalarOther(valid!, flat!, -1n);
}

/** Marks, in a run-sorted int32 vector, where a run of equal values starts (`first`) or ends (otherwise). */
function runEdges(sorted: Handle, n: number, first: boolean): Handle {
  if (n === 0) return ne(sorted, 0n);
  const differs = neTensor(narrow(sorted, 0, 1, n - 1), narrow(sorted, 0, 0, n - 1));
  return constantPad(differs, first ? [1, 0] : [0, 1], 1);
}

/** `base` ([rows, sliceSize]) with the rows numbered `flat` replaced by the rows of `updates` ([n, sliceSize]).
 * Where a row is named twice the last update wins, as in TF.js: after a stable sort of the row numbers only the
 * last of each run writes, the others go to a spare row, so a plain index_add sets each row at most once. */
function scatterReplace(
  base: Handle,
  [rows, sliceSize]: [number, number],
  flat: Handle,
  updates: Handle,
  numUpdates: number,
): Handle {
  if (numUpdates === 0) return alias(base);
  const [sortedRows, order] = sortStable(flat, true, 0, false) as [Handle, Handle];
  const target = whereScalarOther(runEdges(sortedRows, numUpdates, false), sortedRows, BigInt(rows));
  const written = indexAdd(newZeros(flat, [rows + 1]), 0, target, newOnes(flat, [numUpdates]));
  const values = indexAdd(
    newZeros(updates, [rows + 1, sliceSize]),
    0,
    target,
    indexSelect(updates, 0, order),
  );
  return where(unsqueeze(gt(narrow(written, 0, 0, rows), 0n), 1), narrow(values, 0, 0, rows), base);
}

/** GatherV2's TF.js error for an index outside [0, dimSize), naming the first such index; the indices are read
 * only after the gather has failed. Other errors pass through. */
function gatherIndexError(b: LibtorchBackend, indices: Handle, dimSize: number, error: unknown): unknown {
  const bad = b.addon.toBuffer(
    maskedSelect(indices, logicalOr(lt(indices, 0n), ge(indices, BigInt(dimSize)))),
  );
  if (bad.length === 0) return error;
  return new Error(`GatherV2: the index value ${bad[0]} is not in [0, ${dimSize - 1}]`);
}

/** out[b, o, n, s] = x[b, o, indices[b, n], s] for x read as [B, O, D, S] and indices as [B, N]. */
function gather(
  x: Handle,
  indices: Handle,
  info: backend_util.segment_util.GatherOpShapeInfo,
  size: number,
): Handle {
  const { batchSize: batches, outerSize: outer, dimSize: dim, sliceSize } = info;
  if (batches === 1) return indexSelect(reshape(x, [outer, dim, sliceSize]), 1, reshape(indices, [-1]));
  // With batch dims, index the flattened [B * O * D, S] rows: row (b * O + o) * D + indices[b, n].
  const perBatch = size / batches;
  const idx = reshape(indices, [batches, 1, perBatch]);
  const base = reshape(mulScalar(arange(indices, 0, batches * outer), BigInt(dim)), [batches, outer, 1]);
  const inRange = logicalAnd(ge(idx, 0n), lt(idx, BigInt(dim)));
  const flat = whereScalarOther(inRange, add(base, idx), -1n);
  return indexSelect(reshape(x, [batches * outer * dim, sliceSize]), 0, reshape(flat, [-1]));
}

/** Reads a small int32 tensor (BroadcastArgs' shapes). */
function readInts(b: LibtorchBackend, t: TensorInfo): number[] {
  return Array.from(b.readSync(t.dataId) as Int32Array);
}

export const shapeKernels: KernelConfig[] = [
  kernel('Transpose', ({ x, attrs }) => permute(x('x'), attrs['perm'] as number[])),
  kernel('Slice', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const [begin, size] = slice_util.parseSliceParams(
      info,
      attrs['begin'] as number | number[],
      attrs['size'] as number | number[],
    );
    slice_util.assertParamsValid(info, begin!, size!);
    return sliceBySize(x('x'), info.shape, begin!, size!);
  }),
  kernel('StridedSlice', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const sliced = slice_util.sliceInfo(
      info.shape,
      attrs['begin'] as number[],
      attrs['end'] as number[],
      attrs['strides'] as number[],
      attrs['beginMask'] as number,
      attrs['endMask'] as number,
      attrs['ellipsisMask'] as number,
      attrs['newAxisMask'] as number,
      attrs['shrinkAxisMask'] as number,
    );
    const out = sliced.isIdentity
      ? x('x')
      : stridedSlice(x('x'), info.shape, sliced.begin, sliced.end, sliced.strides);
    return reshape(out, sliced.finalShape);
  }),
  kernel('Concat', ({ inputs, attrs, b }) => {
    const infos = listInputs(inputs);
    const axis = util.parseAxisParam(attrs['axis'] as number, infos[0]!.shape)[0]!;
    backend_util.assertParamsConsistent(
      infos.map((t) => t.shape),
      axis,
    );
    return cat(
      infos.map((t) => b.handle(t)),
      axis,
    );
  }),
  kernel('Pack', ({ inputs, attrs, b }) => {
    const infos = listInputs(inputs);
    // ATen would promote mixed dtypes; TF.js refuses them.
    if (infos.some((t) => t.dtype !== infos[0]!.dtype))
      throw new Error('All tensors passed to stack must have matching dtypes');
    return stack(
      infos.map((t) => b.handle(t)),
      attrs['axis'] as number,
    );
  }),
  kernel('ExpandDims', ({ x, attrs }) => unsqueeze(x('input'), attrs['dim'] as number)),
  kernel('Unpack', ({ x, attrs }) => unbind(x('value'), attrs['axis'] as number)),
  kernel('SplitV', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const axis = util.parseAxisParam(attrs['axis'] as number, info.shape)[0]!;
    const sizes = backend_util.prepareSplitSize(info, attrs['numOrSizeSplits'] as number | number[], axis);
    return splitWithSizes(x('x'), sizes, axis);
  }),
  kernel('PadV2', ({ x, attrs }) => {
    // ATen lists paddings from the last dim back.
    const pad = (attrs['paddings'] as [number, number][]).slice().reverse().flat();
    if (pad.every((p) => p === 0)) return alias(x('x'));
    return constantPad(x('x'), pad, attrs['constantValue'] as number);
  }),
  kernel('MirrorPad', ({ x, inputs, attrs }) => {
    const shape = inputs['x']!.shape;
    const mode = attrs['mode'] as string;
    const t = x('x');
    let out = t;
    (attrs['paddings'] as [number, number][]).forEach(([before, after], d) => {
      if (before !== 0 || after !== 0)
        out = indexSelect(out, d, mirrorIndex(t, shape[d]!, before, after, mode));
    });
    return out === t ? alias(t) : out;
  }),
  kernel('Tile', ({ x, attrs }) => repeat(x('x'), attrs['reps'] as number[])),
  kernel('Reverse', ({ x, inputs, attrs }) => {
    const dims = util.parseAxisParam(attrs['dims'] as number | number[], inputs['x']!.shape);
    return dims.length === 0 ? alias(x('x')) : flip(x('x'), dims);
  }),
  kernel('BroadcastTo', ({ x, attrs }) => expand(x('x'), attrs['shape'] as number[])),
  {
    // The result is a shape computed from two small shape tensors, so it is read and built here.
    kernelName: 'BroadcastArgs',
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, backend }) => {
      const b = backend as LibtorchBackend;
      const shape = backend_util.assertAndGetBroadcastShape(
        readInts(b, inputs['s0']!),
        readInts(b, inputs['s1']!),
      );
      return b.output(b.addon.fromBuffer(Int32Array.from(shape), [shape.length], DTYPE_CODE.int32));
    },
  },
  kernel('GatherV2', ({ x, inputs, attrs, b }) => {
    const xInfo = inputs['x']!;
    const indicesInfo = inputs['indices']!;
    const axis = util.parseAxisParam(attrs['axis'] as number, xInfo.shape)[0]!;
    const batchDims = (attrs['batchDims'] as number | undefined) ?? 0;
    const info = backend_util.segment_util.collectGatherOpShapeInfo(xInfo, indicesInfo, axis, batchDims);
    const indices = x('indices');
    let out: Handle;
    try {
      out = gather(x('x'), indices, info, util.sizeFromShape(indicesInfo.shape));
    } catch (error) {
      throw gatherIndexError(b, indices, info.dimSize, error);
    }
    return reshape(out, info.outputShape);
  }),
  kernel('GatherNd', ({ x, inputs }) => {
    const params = inputs['params']!;
    const indices = inputs['indices']!;
    const [resultShape, numSlices, sliceSize] = backend_util.prepareAndValidate(params, indices);
    const k = indices.shape[indices.shape.length - 1]!;
    const rows = reshape(x('params'), [util.sizeFromShape(params.shape.slice(0, k)), sliceSize]);
    const flat = flatIndex(x('indices'), numSlices, params.shape.slice(0, k));
    return reshape(indexSelect(rows, 0, flat), resultShape);
  }),
  kernel('ScatterNd', ({ x, inputs, attrs }) => {
    const shape = attrs['shape'] as number[];
    const { sliceRank, numUpdates, sliceSize } = backend_util.calculateShapes(
      inputs['updates']!,
      inputs['indices']!,
      shape,
    );
    const updates = reshape(x('updates'), [numUpdates, sliceSize]);
    const flat = flatIndex(x('indices'), numUpdates, shape.slice(0, sliceRank));
    // TF.js sums updates that name the same slice.
    const zeros = newZeros(updates, [util.sizeFromShape(shape.slice(0, sliceRank)), sliceSize]);
    return reshape(indexAdd(zeros, 0, flat, updates), shape);
  }),
  kernel('TensorScatterUpdate', ({ x, inputs }) => {
    const shape = inputs['tensor']!.shape;
    const { sliceRank, numUpdates, sliceSize } = backend_util.calculateShapes(
      inputs['updates']!,
      inputs['indices']!,
      shape,
    );
    const rows = util.sizeFromShape(shape.slice(0, sliceRank));
    const base = reshape(x('tensor'), [rows, sliceSize]);
    const flat = flatIndex(x('indices'), numUpdates, shape.slice(0, sliceRank));
    const updates = reshape(x('updates'), [numUpdates, sliceSize]);
    return reshape(scatterReplace(base, [rows, sliceSize], flat, updates, numUpdates), shape);
  }),
  kernel('SparseToDense', ({ x, inputs, attrs }) => {
    const shape = attrs['outputShape'] as number[];
    const valuesInfo = inputs['sparseValues']!;
    const { sliceRank, numUpdates, sliceSize } = backend_util.calculateShapes(
      valuesInfo,
      inputs['sparseIndices']!,
      shape,
    );
    const rows = util.sizeFromShape(shape.slice(0, sliceRank));
    const base = expand(reshape(x('defaultValue'), []), [rows, sliceSize]);
    // A scalar value fills every listed position.
    const values =
      valuesInfo.shape.length === 0
        ? expand(x('sparseValues'), [numUpdates, sliceSize])
        : reshape(x('sparseValues'), [numUpdates, sliceSize]);
    const flat = flatIndex(x('sparseIndices'), numUpdates, shape.slice(0, sliceRank));
    return reshape(scatterReplace(base, [rows, sliceSize], flat, values, numUpdates), shape);
  }),
  kernel('OneHot', ({ x, attrs }) => {
    const indices = x('indices');
    const hot = eq(unsqueeze(indices, -1), arange(indices, 0, attrs['depth'] as number));
    const values = whereScalar(hot, attrs['onValue'] as number, attrs['offValue'] as number);
    return to(values, scalarType(attrs['dtype'] as 'float32' | 'int32' | 'bool'));
  }),
  kernel('Diag', ({ x, inputs }) => {
    const shape = inputs['x']!.shape;
    return reshape(diagEmbed(reshape(x('x'), [-1])), [...shape, ...shape]);
  }),
  kernel('SearchSorted', ({ x, attrs }) =>
    searchsorted(x('sortedSequence'), x('values'), true, (attrs['side'] as string) === 'right'),
  ),
  kernel('Unique', ({ x, inputs, attrs }) => {
    const info = inputs['x']!;
    const axis = util.parseAxisParam((attrs['axis'] as number | undefined) ?? 0, info.shape)[0]!;
    const n = info.shape[axis]!;
    const float = info.dtype === 'float32';
    // ATen compares floats by value (NaN never equal to itself); TF.js by their printed form (all NaNs one value,
    // -0 the same as 0). Comparing the bits of canonical NaN and +0 does what TF.js does.
    const t = float
      ? viewDtype(addScalar(maskedFill(x('x'), isnan(x('x')), NaN), 0), SCALAR_TYPE.int32)
      : x('x');
    // ATen returns the distinct values sorted; TF.js lists them by first occurrence.
    const [sorted, inverse] = uniqueDim(t, axis, true, true) as [Handle, Handle];
    // The first position of each distinct value: the start of its run among the positions sorted by value.
    const [byValue, positions] = sortStable(inverse, true, 0, false) as [Handle, Handle];
    const first = maskedSelect(positions, runEdges(byValue, n, true));
    const order = sortStable(first, false, 0, false)[1]!;
    // The rank of each sorted value in first-occurrence order: the inverse permutation of `order`.
    const rank = sortStable(order, false, 0, false)[1]!;
    const values = indexSelect(sorted, axis, order);
    return [float ? viewDtype(values, SCALAR_TYPE.float32) : values, indexSelect(rank, 0, inverse)];
  }),
  kernel('Einsum', ({ inputs, attrs, b }) => {
    const equation = attrs['equation'] as string;
    const tensors = listInputs(inputs);
    // TF.js's equation checks first: it accepts less than ATen does (two operands, no repeated labels), and its
    // errors are the ones callers see on the other backends.
    const { allDims, idDims, summedDims } = backend_util.decodeEinsumEquation(equation, tensors.length);
    backend_util.checkEinsumDimSizes(
      allDims.length,
      idDims,
      tensors as Parameters<typeof backend_util.checkEinsumDimSizes>[2],
    );
    backend_util.getEinsumComputePath(summedDims, idDims);
    return einsum(
      equation,
      tensors.map((t) => b.handle(t)),
    );
  }),
];
