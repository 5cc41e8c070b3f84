// tfjs-core specs skipped for the spatial kernels: [substring of the spec's full name, why].
export const exclusions: ReadonlyArray<readonly [string, string]> = [];
