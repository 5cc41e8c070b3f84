/**
 * Splitting a whole number of images over classes in proportion to weights, by the largest-remainder method:
 * class k first gets ⌊total·w_k / Σw⌋, then the images left over go one each to the classes with the largest
 * fractional parts (ties to the lower class index). All-zero weights split `total` evenly.
 */

/** `total` spread over classes in proportion to `weights` (largest remainder). */
export function proportionalCounts(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (sum > 0 ? (total * w) / sum : total / weights.length));
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, i) => [e - Math.floor(e), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  return out;
}
