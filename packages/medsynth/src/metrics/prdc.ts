/**
 * Precision, recall, density and coverage (Naeem, Oh, Uh, Choi & Yoo, ICML 2020) over k-NN balls:
 * - a real sample's radius is the distance to its k-th nearest other real sample; a fake's, to its k-th
 *   nearest other fake;
 * - precision: share of fakes inside at least one real ball (`d(r, f) < radius(r)`);
 * - recall: share of reals inside at least one fake ball;
 * - density: (1/k) × mean over fakes of the number of real balls containing it (≈ 1 when the sets match,
 *   above 1 when fakes crowd the dense regions of the real data);
 * - coverage: share of reals whose ball contains at least one fake.
 * Precision/density measure fidelity, recall/coverage diversity. Distances are Euclidean in feature space.
 */
import { kthNeighbourDistances, scanSquaredDistances, type Matrix } from './distances.js';

export interface Prdc {
  readonly precision: number;
  readonly recall: number;
  readonly density: number;
  readonly coverage: number;
  readonly k: number;
}

/** PRDC of `fake` against `real`. Both need more than `k` rows (a `RangeError` otherwise). */
export async function prdc(real: Matrix, fake: Matrix, k = 5): Promise<Prdc> {
  if (real.cols !== fake.cols) throw new RangeError(`feature widths differ: ${real.cols} vs ${fake.cols}`);
  const realRadius = await kthNeighbourDistances(real, k);
  const fakeRadius = await kthNeighbourDistances(fake, k);
  const r2 = realRadius.map((r) => r * r);
  const f2 = fakeRadius.map((r) => r * r);
  const ballsHolding = new Int32Array(fake.rows);
  const inFakeBall = new Uint8Array(real.rows);
  const covered = new Uint8Array(real.rows);
  await scanSquaredDistances(real, fake, (start, count, d2) => {
    for (let r = 0; r < count; r++) {
      const i = start + r;
      const ri = r2[i]!;
      const base = r * fake.rows;
      for (let j = 0; j < fake.rows; j++) {
        const v = d2[base + j]!;
        if (v < ri) {
          ballsHolding[j]!++;
          covered[i] = 1;
        }
        if (v < f2[j]!) inFakeBall[i] = 1;
      }
    }
  });
  let precision = 0;
  let density = 0;
  for (const c of ballsHolding) {
    if (c > 0) precision++;
    density += c;
  }
  let recall = 0;
  let coverage = 0;
  for (let i = 0; i < real.rows; i++) {
    recall += inFakeBall[i]!;
    coverage += covered[i]!;
  }
  return {
    precision: precision / fake.rows,
    recall: recall / real.rows,
    density: density / (k * fake.rows),
    coverage: coverage / real.rows,
    k,
  };
}
