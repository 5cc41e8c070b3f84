// Specs skipped for reasons that hold for the whole backend: [substring of the spec's full name, why].
export const exclusions: ReadonlyArray<readonly [string, string]> = [
  ['complex64', 'complex64 tensors are not supported (float32, int32 and bool only)'],
];
