// tfjs-core specs skipped for the elementwise kernels: [substring of the spec's full name, why].
export const exclusions: ReadonlyArray<readonly [string, string]> = [
  ['libtorch {} complex number ', 'complex64 arithmetic: complex64 tensors are not supported'],
  ['onesLike libtorch {} 1D complex dtype', 'complex64 tensors are not supported'],
  ['onesLike libtorch {} 2D complex dtype', 'complex64 tensors are not supported'],
  ['onesLike libtorch {} 3D complex dtype', 'complex64 tensors are not supported'],
  ['onesLike libtorch {} 4D complex dtype', 'complex64 tensors are not supported'],
  ['onesLike libtorch {} 5D complex dtype', 'complex64 tensors are not supported'],
  ['onesLike libtorch {} 6D complex dtype', 'complex64 tensors are not supported'],
  // The int32 and bool halves of these pass; each ends by adding a complex64 tensor.
  ['add libtorch {} upcasts when dtypes dont match', 'its last cases add complex64 tensors (unsupported)'],
  [
    'sub libtorch {} upcasts when dtypes dont match',
    'its last cases subtract complex64 tensors (unsupported)',
  ],
];
