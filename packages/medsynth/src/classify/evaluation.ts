/**
 * Classification figures from labels and predictions: confusion matrix, accuracy, balanced accuracy and
 * per-class recall. Pure functions on integer arrays, JSON-safe results (no NaN).
 */
import type { ClassificationEvaluation } from './types.js';

/** `confusion[label][predicted]` counts. Labels and predictions must be integers in `0..numClasses-1`. */
export function confusionMatrix(labels: Int32Array, predicted: Int32Array, numClasses: number): number[][] {
  if (labels.length !== predicted.length) {
    throw new RangeError(`labels (${labels.length}) and predictions (${predicted.length}) differ in length`);
  }
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const row = m[labels[i]!];
    const p = predicted[i]!;
    if (row === undefined || !(p >= 0 && p < numClasses)) {
      throw new RangeError(`label ${labels[i]} or prediction ${p} at ${i} outside 0..${numClasses - 1}`);
    }
    row[p]!++;
  }
  return m;
}

/** Accuracy, balanced accuracy and per-class recall of a confusion matrix (rows = true classes). */
export function evaluateConfusion(confusion: number[][]): ClassificationEvaluation {
  const classCounts = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const count = classCounts.reduce((a, b) => a + b, 0);
  const correct = confusion.reduce((a, row, k) => a + (row[k] ?? 0), 0);
  const perClassRecall = confusion.map((row, k) => (classCounts[k]! > 0 ? row[k]! / classCounts[k]! : null));
  const present = perClassRecall.filter((r): r is number => r !== null);
  return {
    count,
    accuracy: count > 0 ? correct / count : 0,
    balancedAccuracy: present.length > 0 ? present.reduce((a, b) => a + b, 0) / present.length : 0,
    perClassRecall,
    classCounts,
    confusion,
  };
}

/** The index of the largest of each row of a row-major `N × K` matrix (ties: the lowest index). */
export function argmaxRows(values: Float32Array, numClasses: number): Int32Array {
  const n = Math.floor(values.length / numClasses);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestValue = values[i * numClasses]!;
    for (let k = 1; k < numClasses; k++) {
      const v = values[i * numClasses + k]!;
      if (v > bestValue) {
        best = k;
        bestValue = v;
      }
    }
    out[i] = best;
  }
  return out;
}
