/**
 * Fréchet distance between two feature sets modelled as Gaussians (Heusel et al. 2017, the "F" of FID):
 *
 *   FD = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁Σ₂)^½)
 *
 * with sample covariances (ddof = 1), all in float64. Tr((Σ₁Σ₂)^½) is computed without a general matrix
 * square root: Σ₁Σ₂ is similar to the symmetric PSD matrix A = Σ₁^½ Σ₂ Σ₁^½, so the trace is Σ √λᵢ(A).
 * Both Σ₁^½ and λ(A) come from symmetric eigendecompositions (LAPACK through libtorch when that is the
 * backend, else ml-matrix; see linalg.ts); eigenvalues that rounding leaves slightly negative are clamped to 0.
 * With the feature sets of torch-fidelity/clean-fid this equals their `scipy.linalg.sqrtm` value.
 *
 * FD is biased: it grows as N shrinks. Compare values only at equal N, and read the bootstrap spread.
 */
import { Rng } from '../runtime/random.js';
import type { Matrix } from './distances.js';
import {
  linalgImplementation,
  matmul,
  meanCovariance,
  symmetricEigen,
  symmetricEigenvalues,
} from './linalg.js';

export interface GaussianStats {
  readonly n: number;
  readonly dim: number;
  readonly mean: Float64Array;
  /** Row-major `[dim, dim]` sample covariance (ddof = 1). */
  readonly cov: Float64Array;
}

/**
 * Mean and covariance of the rows of `m`; with `counts`, of the multiset where row i appears `counts[i]`
 * times (a bootstrap resample without copying rows).
 */
export function gaussianStats(m: Matrix, counts?: Int32Array): GaussianStats {
  const { n, mean, cov } = meanCovariance(m, counts);
  return { n, dim: m.cols, mean, cov };
}

/** Tr((Σ₁Σ₂)^½) for symmetric PSD Σ₁, Σ₂ (see the module comment). */
export function traceSqrtProduct(d: number, s1: Float64Array, s2: Float64Array): number {
  const { values, vectors } = symmetricEigen(s1, d);
  // Σ₁^½ = V diag(√λ) Vᵀ
  const scaled = new Float64Array(d * d);
  const vt = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const v = vectors[i * d + j]!;
      scaled[i * d + j] = v * Math.sqrt(Math.max(values[j]!, 0));
      vt[j * d + i] = v;
    }
  }
  const root = matmul(scaled, vt, d, d, d);
  const a = matmul(matmul(root, s2, d, d, d), root, d, d, d);
  // Symmetrise away rounding so the symmetric solver sees an exactly symmetric matrix.
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const v = 0.5 * (a[i * d + j]! + a[j * d + i]!);
      a[i * d + j] = v;
      a[j * d + i] = v;
    }
  }
  let trace = 0;
  for (const v of symmetricEigenvalues(a, d)) trace += Math.sqrt(Math.max(v, 0));
  return trace;
}

export function frechetFromStats(a: GaussianStats, b: GaussianStats): number {
  if (a.dim !== b.dim) throw new RangeError(`feature widths differ: ${a.dim} vs ${b.dim}`);
  const d = a.dim;
  let meanTerm = 0;
  let traces = 0;
  for (let j = 0; j < d; j++) {
    meanTerm += (a.mean[j]! - b.mean[j]!) ** 2;
    traces += a.cov[j * d + j]! + b.cov[j * d + j]!;
  }
  return meanTerm + traces - 2 * traceSqrtProduct(d, a.cov, b.cov);
}

/** Fréchet distance between the rows of `real` and `fake`. Each set needs at least 2 rows. */
export function frechetDistance(real: Matrix, fake: Matrix): number {
  if (real.rows < 2 || fake.rows < 2)
    throw new RangeError('the Fréchet distance needs at least 2 samples per set');
  return frechetFromStats(gaussianStats(real), gaussianStats(fake));
}

/** Bootstrap spread of a statistic: replicate values summarised. */
export interface BootstrapSpread {
  readonly replicates: number;
  readonly mean: number;
  readonly std: number;
  /** 2.5th and 97.5th percentiles of the replicates. */
  readonly ci95: readonly [number, number];
}

export function summariseReplicates(values: readonly number[]): BootstrapSpread {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const sorted = [...values].sort((x, y) => x - y);
  return { replicates: n, mean, std, ci95: [quantile(sorted, 0.025), quantile(sorted, 0.975)] };
}

/** Linear-interpolated quantile of ascending `sorted` (numpy's default method). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Multiplicities of a bootstrap resample of n rows. */
export function resampleCounts(n: number, rng: Rng): Int32Array {
  const counts = new Int32Array(n);
  for (let i = 0; i < n; i++) counts[rng.int(n)]!++;
  return counts;
}

export interface FrechetResult {
  readonly value: number;
  readonly nReal: number;
  readonly nFake: number;
  readonly dim: number;
  /** Both sets resampled with replacement `replicates` times; absent when `replicates` is 0. */
  readonly bootstrap?: BootstrapSpread;
  readonly warnings: readonly string[];
}

/**
 * Fréchet distance with a bootstrap spread (both sets resampled with replacement, seeded) and warnings
 * when a set has fewer samples than feature dimensions (a singular covariance: FD is then mostly noise).
 */
export function frechetWithSpread(
  real: Matrix,
  fake: Matrix,
  options: { readonly replicates?: number; readonly seed?: number } = {},
): FrechetResult {
  const { replicates = 10, seed = 0 } = options;
  const value = frechetDistance(real, fake);
  const warnings: string[] = [];
  for (const [name, m] of [
    ['real', real],
    ['fake', fake],
  ] as const) {
    if (m.rows < m.cols)
      warnings.push(
        `${name}: ${m.rows} samples < ${m.cols} feature dimensions — the covariance is singular and the Fréchet distance unreliable`,
      );
  }
  if (real.cols >= 1024 && linalgImplementation() === 'javascript')
    warnings.push(
      `${real.cols} feature dimensions without libtorch: each Fréchet distance takes minutes in JavaScript ` +
        `(bootstrap replicates: ${replicates}; --bootstrap 0 skips them)`,
    );
  if (replicates <= 0) return { value, nReal: real.rows, nFake: fake.rows, dim: real.cols, warnings };
  const rng = Rng.derive(seed, 'frechet-bootstrap');
  const values: number[] = [];
  for (let r = 0; r < replicates; r++) {
    const a = gaussianStats(real, resampleCounts(real.rows, rng));
    const b = gaussianStats(fake, resampleCounts(fake.rows, rng));
    values.push(frechetFromStats(a, b));
  }
  return {
    value,
    nReal: real.rows,
    nFake: fake.rows,
    dim: real.cols,
    bootstrap: summariseReplicates(values),
    warnings,
  };
}
