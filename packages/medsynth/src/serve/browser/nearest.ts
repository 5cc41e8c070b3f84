/**
 * The space in which live generation finds each generated image's nearest real training image, shared by the
 * server (which prepares the real side) and the page (which prepares the generated side and searches), so both
 * go through the same arithmetic:
 *
 *   1. 8-bit images at the run's size S (the real ones loaded as training loaded them: the run's train split
 *      at S px with the run's channels; the generated ones as `sampleImages` makes them);
 *   2. f×f box averages, f the smallest divisor of S with S/f ≤ 32 (28 and 32 px: f = 1; 64: 2; 128: 4),
 *      each mean rounded to the nearest integer (halves up): x'_{ij} = round(Σ_{f×f block} x / f²);
 *   3. squared Euclidean distance between the two d = (S/f)²·C vectors, d²(a, b) = Σ_k (a_k − b_k)²; the
 *      nearest real image is the one of least d² (ties: the lowest index). The page shows the root mean square
 *      difference √(d²/d) in 8-bit levels.
 *
 * Browser-safe (no imports).
 */

/** Largest side of the search space. */
export const NEAREST_MAX_SIDE = 32;

/** The box factor f for images of side `size` (see the module header). */
export function nearestFactor(size: number): number {
  if (!(Number.isInteger(size) && size >= 1))
    throw new RangeError(`image side must be a positive integer, got ${size}`);
  for (let f = 1; f <= size; f++) if (size % f === 0 && size / f <= NEAREST_MAX_SIDE) return f;
  return size;
}

/**
 * f×f box averages of `count` 8-bit images `[count, size, size, channels]` (row-major, channels last) →
 * `[count, size/f, size/f, channels]`, each mean rounded (halves up).
 */
export function boxDownsample(
  data: ArrayLike<number>,
  count: number,
  size: number,
  channels: number,
  factor: number,
): Uint8Array {
  if (size % factor !== 0) throw new RangeError(`box factor ${factor} does not divide ${size}`);
  if (data.length !== count * size * size * channels)
    throw new RangeError(`boxDownsample: ${data.length} values for ${count} images of ${size}²×${channels}`);
  const side = size / factor;
  const area = factor * factor;
  const out = new Uint8Array(count * side * side * channels);
  let o = 0;
  for (let n = 0; n < count; n++) {
    const base = n * size * size * channels;
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let dy = 0; dy < factor; dy++) {
            const row = base + ((y * factor + dy) * size + x * factor) * channels + c;
            for (let dx = 0; dx < factor; dx++) sum += data[row + dx * channels]!;
          }
          out[o++] = Math.floor((2 * sum + area) / (2 * area));
        }
  }
  return out;
}

/** The nearest row of `reals` (`count` rows of `dim`) to `query` (`dim` values): index and squared distance. */
export function nearestRow(
  query: ArrayLike<number>,
  reals: ArrayLike<number>,
  count: number,
  dim: number,
): { index: number; d2: number } {
  if (query.length !== dim || reals.length < count * dim)
    throw new RangeError(
      `nearestRow: query of ${query.length} values, ${reals.length} real values, dim ${dim}`,
    );
  let best = -1;
  let bestD2 = Infinity;
  for (let i = 0; i < count; i++) {
    const base = i * dim;
    let d2 = 0;
    for (let k = 0; k < dim && d2 < bestD2; k++) {
      const d = query[k]! - reals[base + k]!;
      d2 += d * d;
    }
    if (d2 < bestD2) {
      bestD2 = d2;
      best = i;
    }
  }
  return { index: best, d2: bestD2 };
}
