// tfjs-core specs skipped for the reduce-shape kernels: [substring of the spec's full name, why].
// The backend has no complex64 dtype. (String inputs run on the cpu kernels: see kernels/cpu-fallback.ts.)
const complex = 'complex64 tensors are not supported (float32, int32 and bool only)';

export const exclusions: ReadonlyArray<readonly [string, string]> = [
  ['concat1d libtorch {} concat complex input', complex],
  ['concat2d libtorch {} concat complex input', complex],
  ['concat3d libtorch {} concat complex input', complex],
];
