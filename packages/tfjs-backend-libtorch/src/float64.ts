/**
 * Float64 linear algebra on libtorch, outside TF.js (which has no float64): covariance, matrix products and
 * symmetric eigendecompositions (LAPACK's syevd through `torch.linalg.eigh`; cuSOLVER on CUDA). Statistics
 * such as the Fréchet distance need these in double precision at sizes (2048 × 2048) where JavaScript
 * solvers take minutes.
 *
 * Every function takes and returns plain row-major typed arrays and frees its native tensors before it
 * returns. Operators are called with `keepFloat64`, so results stay double between calls.
 */
import { loadAddon, FLOAT64_CODE, DTYPE_CODE, type Addon, type AtenArg, type Handle } from './addon.js';

/** c10::ScalarType code of double. */
const SCALAR_DOUBLE = 7;

/** Calls operators without narrowing float64 and frees every handle made when the block ends. */
class Scope {
  private readonly handles: Handle[] = [];
  private readonly ids = new Map<string, number>();
  constructor(private readonly addon: Addon) {}

  private keep(h: Handle): Handle {
    this.handles.push(h);
    return h;
  }

  op(schema: string, ...args: AtenArg[]): Handle {
    return this.keep(this.call(schema, args) as Handle);
  }

  ops(schema: string, ...args: AtenArg[]): Handle[] {
    const hs = this.call(schema, args) as Handle[];
    for (const h of hs) this.keep(h);
    return hs;
  }

  private call(schema: string, args: readonly AtenArg[]): unknown {
    let id = this.ids.get(schema);
    if (id === undefined) {
      const dot = schema.indexOf('.');
      id = dot < 0 ? this.addon.op(schema, '') : this.addon.op(schema.slice(0, dot), schema.slice(dot + 1));
      this.ids.set(schema, id);
    }
    return this.addon.call(id, args, true);
  }

  float64(data: Float64Array, shape: readonly number[]): Handle {
    checkSize('float64 tensor', data.length, shape);
    return this.keep(this.addon.fromBuffer(data, shape, FLOAT64_CODE));
  }

  /** float32 data, widened to float64. */
  widened(data: Float32Array, shape: readonly number[]): Handle {
    checkSize('float32 tensor', data.length, shape);
    const t = this.keep(this.addon.fromBuffer(data, shape, DTYPE_CODE.float32));
    return this.op('aten::_to_copy', t, SCALAR_DOUBLE);
  }

  read(h: Handle): Float64Array {
    const out = this.addon.toBuffer(h) as unknown;
    if (!(out instanceof Float64Array))
      throw new TypeError('float64: an operator returned a non-double tensor');
    return out;
  }

  dispose(): void {
    for (const h of this.handles) this.addon.dispose(h);
    this.handles.length = 0;
  }
}

function scoped<T>(fn: (s: Scope) => T): T {
  const s = new Scope(loadAddon());
  try {
    return fn(s);
  } finally {
    s.dispose();
  }
}

function checkSize(what: string, length: number, shape: readonly number[]): void {
  const need = shape.reduce((p, d) => p * d, 1);
  if (length !== need)
    throw new RangeError(`${what}: ${length} values given, shape [${shape}] needs ${need}`);
}

export interface MeanCovariance {
  readonly mean: Float64Array;
  /** Row-major `[cols, cols]`. */
  readonly cov: Float64Array;
  /** Number of rows counted (the sum of `weights` when given). */
  readonly n: number;
}

/**
 * Mean and sample covariance (ddof = 1) of the rows of a row-major `[rows, cols]` float32 matrix, computed in
 * float64. With `weights`, row i counts `weights[i]` times (a bootstrap resample without copying rows).
 */
export function covariance64(
  data: Float32Array,
  rows: number,
  cols: number,
  weights?: Int32Array | Float64Array,
): MeanCovariance {
  if (weights && weights.length !== rows)
    throw new RangeError(`covariance64: ${weights.length} weights for ${rows} rows`);
  let n = rows;
  if (weights) {
    n = 0;
    for (let i = 0; i < rows; i++) n += weights[i]!;
  }
  return scoped((s) => {
    const x = s.widened(data, [rows, cols]);
    const w = weights ? s.float64(Float64Array.from(weights), [rows, 1]) : undefined;
    const sum = s.op('aten::sum.dim_IntList', w ? s.op('aten::mul.Tensor', x, w) : x, [0], true);
    const mean = s.op('aten::div.Scalar', sum, Math.max(1, n));
    const centred = s.op('aten::sub.Tensor', x, mean);
    const left = w ? s.op('aten::mul.Tensor', centred, w) : centred;
    const scatter = s.op('aten::mm', s.op('aten::t', left), centred);
    const cov = s.op('aten::div.Scalar', scatter, Math.max(1, n - 1));
    return { mean: s.read(mean), cov: s.read(cov), n };
  });
}

/** `a [m, k] × b [k, n]` in float64. */
export function matmul64(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  return scoped((s) => s.read(s.op('aten::mm', s.float64(a, [m, k]), s.float64(b, [k, n]))));
}

/**
 * Eigenvalues (ascending) and eigenvectors (the columns of the row-major `vectors`) of a symmetric `[n, n]`
 * matrix; only its lower triangle is read.
 */
export function symmetricEigen64(
  a: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  return scoped((s) => {
    const [values, vectors] = s.ops('aten::linalg_eigh', s.float64(a, [n, n]), 'L');
    return { values: s.read(values!), vectors: s.read(vectors!) };
  });
}

/** Eigenvalues (ascending) of a symmetric `[n, n]` matrix; only its lower triangle is read. */
export function symmetricEigenvalues64(a: Float64Array, n: number): Float64Array {
  return scoped((s) => s.read(s.op('aten::linalg_eigvalsh', s.float64(a, [n, n]), 'L')));
}
