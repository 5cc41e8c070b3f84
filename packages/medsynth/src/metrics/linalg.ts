/**
 * Float64 linear algebra for the metrics: mean/covariance, symmetric eigendecompositions and matrix products.
 * Native (LAPACK/BLAS through libtorch) while libtorch is the active backend — a 2048-wide Fréchet distance
 * takes seconds there — and plain JavaScript (ml-matrix's Householder + QL solver, as in EISPACK/JAMA)
 * otherwise, which is fine at the domain extractor's widths (≤ 512) and slow at Inception's 2048.
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { nativeFloat64 } from '../runtime/backend.js';
import type { Matrix } from './distances.js';

export interface MeanCovariance {
  readonly n: number;
  readonly mean: Float64Array;
  /** Row-major `[cols, cols]` sample covariance (ddof = 1). */
  readonly cov: Float64Array;
}

/** Which implementation runs now: 'native' (libtorch) or 'javascript'. */
export function linalgImplementation(): 'native' | 'javascript' {
  return nativeFloat64() ? 'native' : 'javascript';
}

/**
 * Mean and covariance of the rows of `m`; with `counts`, of the multiset where row i appears `counts[i]`
 * times (a bootstrap resample without copying rows).
 */
export function meanCovariance(m: Matrix, counts?: Int32Array): MeanCovariance {
  const native = nativeFloat64();
  if (native) {
    const { n, mean, cov } = native.covariance(m.data, m.rows, m.cols, counts);
    return { n, mean, cov };
  }
  return meanCovarianceJs(m, counts);
}

export function meanCovarianceJs(m: Matrix, counts?: Int32Array): MeanCovariance {
  const d = m.cols;
  const n = counts ? counts.reduce((s, c) => s + c, 0) : m.rows;
  const mean = new Float64Array(d);
  for (let i = 0; i < m.rows; i++) {
    const w = counts ? counts[i]! : 1;
    if (w === 0) continue;
    const base = i * d;
    for (let j = 0; j < d; j++) mean[j]! += w * m.data[base + j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= Math.max(1, n);
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < m.rows; i++) {
    const w = counts ? counts[i]! : 1;
    if (w === 0) continue;
    const base = i * d;
    for (let j = 0; j < d; j++) row[j] = m.data[base + j]! - mean[j]!;
    for (let a = 0; a < d; a++) {
      const va = w * row[a]!;
      if (va === 0) continue;
      const off = a * d;
      for (let b = a; b < d; b++) cov[off + b]! += va * row[b]!;
    }
  }
  const denom = Math.max(1, n - 1);
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / denom;
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { n, mean, cov };
}

/** Eigenvalues and eigenvectors (columns of the row-major `vectors`) of a symmetric `[n, n]` matrix. */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const native = nativeFloat64();
  if (native) return native.symmetricEigen(a, n);
  const e = new EigenvalueDecomposition(MlMatrix.from1DArray(n, n, a), { assumeSymmetric: true });
  return {
    values: Float64Array.from(e.realEigenvalues),
    vectors: Float64Array.from(e.eigenvectorMatrix.to1DArray()),
  };
}

/** Eigenvalues of a symmetric `[n, n]` matrix. */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  const native = nativeFloat64();
  if (native) return native.symmetricEigenvalues(a, n);
  return symmetricEigen(a, n).values;
}

/** `a [m, k] × b [k, n]`, row-major. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const native = nativeFloat64();
  if (native) return native.matmul(a, b, m, k, n);
  return Float64Array.from(
    MlMatrix.from1DArray(m, k, a)
      .mmul(MlMatrix.from1DArray(k, n, b))
      .to1DArray(),
  );
}
