// tfjs-core specs skipped for the reduce-shape kernels: [substring of the spec's full name, why].
// All are string or complex64 inputs: the backend keeps string tensors as JS bytes (no ATen tensor for a kernel
// to slice, tile, stack, ...) and has no complex64 dtype.
const strings = 'string tensors are not libtorch tensors (float32, int32 and bool only)';
const complex = 'complex64 tensors are not supported (float32, int32 and bool only)';

export const exclusions: ReadonlyArray<readonly [string, string]> = [
  ['concat1d libtorch {} concat complex input', complex],
  ['concat2d libtorch {} concat complex input', complex],
  ['concat3d libtorch {} concat complex input', complex],
  ['concat3d libtorch {} Accepts string tensor.', strings],
  ['slice  libtorch {} accepts string libtorch {} ', strings],
  ['stack libtorch {} accepts string.', strings],
  ['unstack libtorch {} accepts string', strings],
  ['tile libtorch {} 1d string tensor', strings],
  ['tile libtorch {} 2d string tensor', strings],
  ['tile libtorch {} 6D string tensor', strings],
  ['expandDims libtorch {} 1d string tensor', strings],
  ['expandDims libtorch {} 2d string tensor, axis=1', strings],
  ['sparseToDense libtorch {} should work for string', strings],
  ['unique libtorch {} 1d tensor with string', strings],
  ['unique libtorch {} 2d tensor with string', strings],
  ['unique libtorch {} 3d tensor with string', strings],
];
