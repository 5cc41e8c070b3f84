// Specs skipped for reasons that hold for the whole backend: [substring of the spec's full name, why].
export const exclusions: ReadonlyArray<readonly [string, string]> = [
  ['complex64', 'complex64 tensors are not supported (float32, int32 and bool only)'],
  ['FFT libtorch', 'FFT/IFFT/RFFT/IRFFT work on complex64 tensors, which are not supported'],
  ['ones with complex type', 'creates a complex64 tensor, which is not supported'],
  ['with a complex tensor', 'reads a complex64 tensor, which is not supported'],
  ['for a complex tensor', 'reads a complex64 tensor, which is not supported'],
  ['stft libtorch', 'stft returns complex64 tensors, which are not supported'],
  ['Weights libtorch {} Complex64 tensors', 'saves/loads a complex64 tensor, which is not supported'],
  ['Weights libtorch {} Mixed dtype tensors', 'the mixed dtypes include complex64, which is not supported'],
  [
    'Weights libtorch {} from arraybuffer Mixed dtype',
    'the mixed dtypes include complex64, which is not supported',
  ],
  [
    'Weights libtorch {} from stream Mixed dtype',
    'the mixed dtypes include complex64, which is not supported',
  ],
];
