/**
 * Memorization / privacy check by nearest-neighbour distances (the authenticity test of the SIM Toolkit and
 * of the dermatology seed study). For every synthetic image: the distance to its nearest *training* image.
 * The reference: the same distance for held-out real images (never seen in training) — what "a new image
 * from the same distribution" looks like. A generator that copies its training data puts synthetic images
 * closer to the training set than held-out images are:
 * - `medianRatio` = median(fake→train) / median(holdout→train): ≈ 1 or above is normal, well below 1 is a warning;
 * - `closerThanHoldoutP5`: share of synthetic images closer than the 5th percentile of held-out distances
 *   (≈ 0.05 by construction for images like held-out ones; much more suggests copies).
 * The distances can be measured in any space (extractor features, raw pixels); the caller says which.
 */
import { nearestNeighbours, type Matrix } from './distances.js';
import { quantile } from './frechet.js';

export interface DistanceSummary {
  readonly count: number;
  readonly min: number;
  readonly p5: number;
  readonly p25: number;
  readonly median: number;
  readonly p75: number;
  readonly p95: number;
  readonly max: number;
  readonly mean: number;
}

export function summariseDistances(values: Float64Array): DistanceSummary {
  const s = Float64Array.from(values).sort();
  const mean = s.reduce((a, v) => a + v, 0) / Math.max(1, s.length);
  return {
    count: s.length,
    min: s[0] ?? Number.NaN,
    p5: quantile(s, 0.05),
    p25: quantile(s, 0.25),
    median: quantile(s, 0.5),
    p75: quantile(s, 0.75),
    p95: quantile(s, 0.95),
    max: s[s.length - 1] ?? Number.NaN,
    mean,
  };
}

/** A synthetic image and the training image nearest to it. */
export interface ClosestPair {
  readonly fake: number;
  readonly train: number;
  readonly distance: number;
}

export interface PrivacyResult {
  /** What the distances were measured in, e.g. `features (domain:…)` or `pixels (64×64×1, [-1, 1])`. */
  readonly space: string;
  readonly fakeToTrain: DistanceSummary;
  readonly holdoutToTrain: DistanceSummary;
  readonly medianRatio: number;
  /** The 5th percentile of held-out distances. */
  readonly threshold: number;
  readonly closerThanHoldoutP5: number;
  /** The `pairs` synthetic images closest to a training image, closest first. */
  readonly closest: readonly ClosestPair[];
  /** Histograms over common bins, for plots: `edges` has one more entry than each `counts`. */
  readonly histogram: { readonly edges: number[]; readonly fake: number[]; readonly holdout: number[] };
  /** Per-image distances (fake, then held-out), for plots and custom analysis. */
  readonly fakeDistances: Float64Array;
  readonly holdoutDistances: Float64Array;
}

function histogram(values: Float64Array, edges: readonly number[]): number[] {
  const counts = new Array<number>(edges.length - 1).fill(0);
  const lo = edges[0]!;
  const width = (edges[edges.length - 1]! - lo) / (edges.length - 1);
  for (const v of values) {
    const b = width > 0 ? Math.min(edges.length - 2, Math.max(0, Math.floor((v - lo) / width))) : 0;
    counts[b]!++;
  }
  return counts;
}

/**
 * Nearest-training-image distances of `fake` and of `holdout` rows (all in the same space) and their
 * comparison. Each set needs at least one row.
 */
export async function privacyCheck(
  train: Matrix,
  fake: Matrix,
  holdout: Matrix,
  options: { readonly space: string; readonly pairs?: number; readonly bins?: number },
): Promise<PrivacyResult> {
  const { pairs = 8, bins = 30 } = options;
  for (const [name, m] of [
    ['train', train],
    ['fake', fake],
    ['holdout', holdout],
  ] as const) {
    if (m.rows === 0) throw new RangeError(`privacy check: the ${name} set is empty`);
  }
  const f = await nearestNeighbours(fake, train);
  const h = await nearestNeighbours(holdout, train);
  const fs = summariseDistances(f.distance);
  const hs = summariseDistances(h.distance);
  const threshold = hs.p5;
  let closer = 0;
  for (const d of f.distance) if (d < threshold) closer++;
  const order = Array.from(f.distance.keys()).sort((a, b) => f.distance[a]! - f.distance[b]!);
  const closest = order
    .slice(0, pairs)
    .map((i) => ({ fake: i, train: f.index[i]!, distance: f.distance[i]! }));
  const hi = Math.max(fs.max, hs.max);
  const edges = Array.from({ length: bins + 1 }, (_, i) => (hi * i) / bins);
  return {
    space: options.space,
    fakeToTrain: fs,
    holdoutToTrain: hs,
    medianRatio: hs.median > 0 ? fs.median / hs.median : Number.POSITIVE_INFINITY,
    threshold,
    closerThanHoldoutP5: closer / fake.rows,
    closest,
    histogram: { edges, fake: histogram(f.distance, edges), holdout: histogram(h.distance, edges) },
    fakeDistances: f.distance,
    holdoutDistances: h.distance,
  };
}
