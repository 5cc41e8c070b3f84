/**
 * Pairwise Euclidean distances between the rows of two matrices, block by block, for k-NN metrics (PRDC,
 * privacy). Squared distances come from `|a|² + |b|² − 2a·b` with the inner products on the TF.js backend
 * (float32 matmul; libtorch's BLAS in Node), after both sets are centred on the first set's mean, which
 * keeps the norms small and the cancellation error near float32 rounding of the distances themselves.
 * Memory stays bounded: one block of `blockRows × B.rows` distances at a time.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureMatrix } from './features/types.js';

/** A `[rows, cols]` row-major float matrix; `FeatureMatrix` is one. */
export type Matrix = FeatureMatrix;

const DEFAULT_BLOCK = 512;

/** Column means of `m` in float64. */
export function columnMeans(m: Matrix): Float64Array {
  const mean = new Float64Array(m.cols);
  for (let i = 0; i < m.rows; i++) {
    const base = i * m.cols;
    for (let j = 0; j < m.cols; j++) mean[j]! += m.data[base + j]!;
  }
  for (let j = 0; j < m.cols; j++) mean[j]! /= Math.max(1, m.rows);
  return mean;
}

function centred(m: Matrix, mean: Float64Array): Float32Array {
  const out = new Float32Array(m.rows * m.cols);
  for (let i = 0; i < m.rows; i++) {
    const base = i * m.cols;
    for (let j = 0; j < m.cols; j++) out[base + j] = m.data[base + j]! - mean[j]!;
  }
  return out;
}

/**
 * Calls `onBlock(start, count, d2)` for consecutive blocks of rows of `a`, where `d2[r·b.rows + j]` is the
 * squared distance (clamped at 0) between row `start + r` of `a` and row `j` of `b`. `onBlock` must not keep
 * `d2`: its buffer belongs to the block.
 */
export async function scanSquaredDistances(
  a: Matrix,
  b: Matrix,
  onBlock: (start: number, count: number, d2: Float32Array) => void,
  blockRows = DEFAULT_BLOCK,
): Promise<void> {
  if (a.cols !== b.cols) throw new RangeError(`feature widths differ: ${a.cols} vs ${b.cols}`);
  if (a.rows === 0 || b.rows === 0) return;
  const mean = columnMeans(a);
  const bt = tf.tensor2d(centred(b, mean), [b.rows, b.cols]);
  const ac = centred(a, mean);
  try {
    const bNorm = tf.tidy(() => tf.reshape(tf.sum(tf.square(bt), 1), [1, b.rows]));
    try {
      for (let start = 0; start < a.rows; start += blockRows) {
        const count = Math.min(blockRows, a.rows - start);
        const d2 = tf.tidy(() => {
          const at = tf.tensor2d(ac.subarray(start * a.cols, (start + count) * a.cols), [count, a.cols]);
          const aNorm = tf.reshape(tf.sum(tf.square(at), 1), [count, 1]);
          const ab = tf.matMul(at, bt, false, true);
          return tf.relu(tf.add(tf.sub(aNorm, tf.mul(ab, 2)), bNorm));
        });
        try {
          onBlock(start, count, (await d2.data()) as Float32Array);
        } finally {
          d2.dispose();
        }
      }
    } finally {
      bNorm.dispose();
    }
  } finally {
    bt.dispose();
  }
}

/**
 * For each row of `m`, the distance to its `k`-th nearest *other* row (the (k+1)-th smallest distance
 * counting itself at 0, as in Naeem et al. 2020). Needs `m.rows > k`.
 */
export async function kthNeighbourDistances(m: Matrix, k: number): Promise<Float64Array> {
  if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`k must be a positive integer, got ${k}`);
  if (m.rows <= k) throw new RangeError(`k-NN with k = ${k} needs more than ${k} rows, got ${m.rows}`);
  const out = new Float64Array(m.rows);
  const smallest = new Float64Array(k + 1);
  await scanSquaredDistances(m, m, (start, count, d2) => {
    for (let r = 0; r < count; r++) {
      const row = d2.subarray(r * m.rows, (r + 1) * m.rows);
      smallest.fill(Infinity);
      for (let j = 0; j < row.length; j++) {
        // The row's own distance is 0 by definition (float rounding may leave a tiny positive value).
        const v = j === start + r ? 0 : row[j]!;
        if (v >= smallest[k]!) continue;
        let p = k;
        while (p > 0 && smallest[p - 1]! > v) {
          smallest[p] = smallest[p - 1]!;
          p--;
        }
        smallest[p] = v;
      }
      out[start + r] = Math.sqrt(smallest[k]!);
    }
  });
  return out;
}

export interface Nearest {
  /** Row of the reference set nearest to each query row. */
  readonly index: Int32Array;
  readonly distance: Float64Array;
}

/** For each row of `query`, its nearest row of `reference` and the distance. */
export async function nearestNeighbours(query: Matrix, reference: Matrix): Promise<Nearest> {
  if (reference.rows === 0) throw new RangeError('the reference set is empty');
  const index = new Int32Array(query.rows);
  const distance = new Float64Array(query.rows);
  await scanSquaredDistances(query, reference, (start, count, d2) => {
    for (let r = 0; r < count; r++) {
      let best = Infinity;
      let at = 0;
      const base = r * reference.rows;
      for (let j = 0; j < reference.rows; j++) {
        const v = d2[base + j]!;
        if (v < best) {
          best = v;
          at = j;
        }
      }
      index[start + r] = at;
      distance[start + r] = Math.sqrt(best);
    }
  });
  return { index, distance };
}

/** Rows `rows` of `m` as a new matrix. */
export function selectRows(m: Matrix, rows: ArrayLike<number>): Matrix {
  const data = new Float32Array(rows.length * m.cols);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), i * m.cols);
  }
  return { data, rows: rows.length, cols: m.cols };
}
