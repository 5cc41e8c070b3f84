/**
 * Kernel Inception Distance (Bińkowski et al. 2018), in whatever feature space it is given: the unbiased
 * estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
 * k(x, y) = (x·y/d + 1)³,
 *
 *   MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/(mn),
 *
 * averaged over random subsets of equal size drawn without replacement from each set (mean ± std over
 * subsets, as torch-fidelity reports). Unlike FD it is unbiased, so it can be compared across N, and it can
 * be slightly negative when the sets match. The Gram matrices are float32 matmuls on the TF.js backend;
 * their row sums are added in float64, and the diagonal terms come from float64 norms.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../runtime/random.js';
import type { Matrix } from './distances.js';
import { selectRows } from './distances.js';

/** k(xᵢ, xᵢ) = (|xᵢ|²/d + 1)³ summed over the rows of `m`, in float64. */
function diagonalSum(m: Matrix): number {
  const d = m.cols;
  let total = 0;
  for (let i = 0; i < m.rows; i++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += m.data[i * d + j]! ** 2;
    total += (sq / d + 1) ** 3;
  }
  return total;
}

/**
 * Sums of k over x×x, y×y and x×y. The Gram matrices and their row sums are float32 on the backend (ATen
 * sums in cascades, so a row of 1 000 terms keeps float32's relative accuracy); the row sums are added in
 * float64. Only 3 vectors of row sums leave the backend, not the three Gram matrices.
 */
async function kernelSums(x: Matrix, y: Matrix): Promise<[number, number, number]> {
  const d = x.cols;
  const sums = tf.tidy(() => {
    const xt = tf.tensor2d(x.data, [x.rows, d]);
    const yt = tf.tensor2d(y.data, [y.rows, d]);
    const rowSums = (a: tf.Tensor2D, b: tf.Tensor2D) =>
      tf.sum(tf.pow(tf.add(tf.div(tf.matMul(a, b, false, true), d), 1), 3), 1);
    return tf.concat([rowSums(xt, xt), rowSums(yt, yt), rowSums(xt, yt)]);
  });
  let v: Float32Array;
  try {
    v = (await sums.data()) as Float32Array;
  } finally {
    sums.dispose();
  }
  const add = (from: number, to: number) => {
    let t = 0;
    for (let i = from; i < to; i++) t += v[i]!;
    return t;
  };
  const m = x.rows;
  const n = y.rows;
  return [add(0, m), add(m, m + n), add(m + n, m + n + m)];
}

/** Unbiased MMD² between the rows of `x` and `y` (each needs ≥ 2 rows) with the cubic polynomial kernel. */
export async function mmd2Unbiased(x: Matrix, y: Matrix): Promise<number> {
  if (x.cols !== y.cols) throw new RangeError(`feature widths differ: ${x.cols} vs ${y.cols}`);
  if (x.rows < 2 || y.rows < 2) throw new RangeError('MMD² needs at least 2 samples per set');
  const m = x.rows;
  const n = y.rows;
  const [sxx, syy, sxy] = await kernelSums(x, y);
  const kxx = sxx - diagonalSum(x);
  const kyy = syy - diagonalSum(y);
  return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - (2 * sxy) / (m * n);
}

/** `size` distinct indices of 0..n−1 (a partial Fisher–Yates shuffle). */
export function sampleWithoutReplacement(n: number, size: number, rng: Rng): Int32Array {
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < size; i++) {
    const j = i + rng.int(n - i);
    const t = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = t;
  }
  return pool.slice(0, size);
}

export interface KidResult {
  readonly mean: number;
  readonly std: number;
  readonly subsets: number;
  readonly subsetSize: number;
  readonly nReal: number;
  readonly nFake: number;
}

export interface KidOptions {
  /** Random subsets (default 100). */
  readonly subsets?: number;
  /** Samples per subset and set (default 1000), capped at the smaller set's size. */
  readonly subsetSize?: number;
  readonly seed?: number;
}

/** KID: unbiased MMD² averaged over `subsets` random subsets of each set. */
export async function kid(real: Matrix, fake: Matrix, options: KidOptions = {}): Promise<KidResult> {
  const { subsets = 100, subsetSize = 1000, seed = 0 } = options;
  const size = Math.min(subsetSize, real.rows, fake.rows);
  if (size < 2) throw new RangeError('KID needs at least 2 samples per set');
  const rng = Rng.derive(seed, 'kid');
  const values: number[] = [];
  for (let s = 0; s < subsets; s++) {
    const x = selectRows(real, sampleWithoutReplacement(real.rows, size, rng));
    const y = selectRows(fake, sampleWithoutReplacement(fake.rows, size, rng));
    values.push(await mmd2Unbiased(x, y));
  }
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  return { mean, std, subsets, subsetSize: size, nReal: real.rows, nFake: fake.rows };
}
