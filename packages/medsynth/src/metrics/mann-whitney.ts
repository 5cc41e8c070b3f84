/**
 * The Mann–Whitney U test (Wilcoxon rank-sum) of two independent samples, as scipy.stats.mannwhitneyu computes
 * it with `use_continuity=True` (checked against it: test/fixtures/projection/make_mannwhitney.py).
 *
 * Pool x (n₁ values) and y (n₂), rank them 1…n with tied values given their mean rank; R₁ = the sum of x's
 * ranks, U₁ = R₁ − n₁(n₁+1)/2 (the number of pairs with xᵢ > yⱼ, ties counting ½) and U₂ = n₁n₂ − U₁.
 * - alternative `less` (x tends to be smaller than y): U = U₂, p = P(U ≥ u); `greater`: U = U₁;
 *   `two-sided`: U = max(U₁, U₂) and p doubled (capped at 1).
 * - `exact`: P(U ≥ u) under H₀ from the null distribution of U, the number of the C(n, n₁) equally likely
 *   rank arrangements with each U, counted by f(u; m, k) = f(u − k; m − 1, k) + f(u; m, k − 1) (no ties).
 * - `asymptotic`: z = (U − n₁n₂/2 − ½) / σ with σ² = n₁n₂/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1))), t the sizes of
 *   the groups of tied values; p = 1 − Φ(z).
 * - `auto` (scipy's rule): exact when a sample has at most 8 values and there are no ties, else asymptotic.
 * Effect size: the common-language probability P(X < Y) + ½P(X = Y) = U₂/(n₁n₂) (AUC of "x is smaller").
 */

export type Alternative = 'less' | 'greater' | 'two-sided';
export type MannWhitneyMethod = 'auto' | 'exact' | 'asymptotic';

export interface MannWhitneyResult {
  /** U of the first sample (scipy's `statistic`). */
  readonly u1: number;
  readonly p: number;
  readonly alternative: Alternative;
  readonly method: 'exact' | 'asymptotic';
  /** The normal deviate (asymptotic method), else null. */
  readonly z: number | null;
  /** P(X < Y) + ½ P(X = Y). */
  readonly probLess: number;
  readonly n1: number;
  readonly n2: number;
  readonly ties: boolean;
}

/** Mean ranks (1-based) of `values` and the sizes of the tie groups. */
export function rankWithTies(values: ArrayLike<number>): { ranks: Float64Array; tieSizes: number[] } {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Float64Array(n);
  const tieSizes: number[] = [];
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && values[order[j]!] === values[order[i]!]) j++;
    const rank = (i + 1 + j) / 2; // mean of ranks i+1 … j
    for (let k = i; k < j; k++) ranks[order[k]!] = rank;
    if (j - i > 1) tieSizes.push(j - i);
    i = j;
  }
  return { ranks, tieSizes };
}

/** The exact null distribution is counted only up to this many cells (m·k)²: 8 against 5 000 values. */
const EXACT_LIMIT = 1.6e9;

/**
 * P(U ≥ u) under H₀ for sample sizes m, k without ties: the count of arrangements with U ≥ u over C(m + k, m).
 * Counts are float64 (exact below 2⁵³; beyond, each sum keeps ~1e-16 relative error). O(m·k·m·k) time.
 */
export function exactUpperTail(u: number, m: number, k: number): number {
  const max = m * k;
  if (max * max > EXACT_LIMIT)
    throw new RangeError(
      `exact Mann–Whitney distribution for ${m} × ${k} values is too large: use asymptotic`,
    );
  if (u <= 0) return 1;
  if (u > max) return 0;
  // f[j][·]: the distribution for (j, kk) while kk grows from 0 to k; f(u; j, 0) = [u = 0].
  let prev: Float64Array[] = Array.from({ length: m + 1 }, () => {
    const a = new Float64Array(max + 1);
    a[0] = 1;
    return a;
  });
  for (let kk = 1; kk <= k; kk++) {
    const next: Float64Array[] = [new Float64Array(max + 1)];
    next[0]![0] = 1;
    for (let j = 1; j <= m; j++) {
      const a = new Float64Array(max + 1);
      const left = next[j - 1]!; // f(·; j − 1, kk)
      const down = prev[j]!; // f(·; j, kk − 1)
      for (let v = 0; v <= j * kk; v++) a[v] = (v >= kk ? left[v - kk]! : 0) + down[v]!;
      next.push(a);
    }
    prev = next;
  }
  const f = prev[m]!;
  let total = 0;
  let tail = 0;
  for (let v = 0; v <= max; v++) {
    total += f[v]!;
    if (v >= u) tail += f[v]!;
  }
  return tail / total;
}

/** erfc(x) to about 1e-14 relative: a positive series below 2, a continued fraction (Lentz) above. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    // erf(x) = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
      if (term < 1e-17 * sum) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  if (x > 27) return 0;
  // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), modified Lentz.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

/** 1 − Φ(z) of the standard normal. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

function checkSample(values: ArrayLike<number>, name: string): void {
  if (values.length === 0) throw new RangeError(`mannWhitneyU: ${name} is empty`);
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]!))
      throw new RangeError(`mannWhitneyU: ${name}[${i}] is not finite (${values[i]})`);
}

/** The test (see the module comment). Throws a RangeError for an empty sample or a non-finite value. */
export function mannWhitneyU(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  alternative: Alternative = 'two-sided',
  method: MannWhitneyMethod = 'auto',
): MannWhitneyResult {
  checkSample(x, 'x');
  checkSample(y, 'y');
  const n1 = x.length;
  const n2 = y.length;
  const n = n1 + n2;
  const pooled = new Float64Array(n);
  for (let i = 0; i < n1; i++) pooled[i] = x[i]!;
  for (let j = 0; j < n2; j++) pooled[n1 + j] = y[j]!;
  const { ranks, tieSizes } = rankWithTies(pooled);
  let r1 = 0;
  for (let i = 0; i < n1; i++) r1 += ranks[i]!;
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1;
  const ties = tieSizes.length > 0;
  const chosen: 'exact' | 'asymptotic' =
    method === 'auto' ? ((n1 <= 8 || n2 <= 8) && !ties ? 'exact' : 'asymptotic') : method;
  const u = alternative === 'greater' ? u1 : alternative === 'less' ? u2 : Math.max(u1, u2);
  const factor = alternative === 'two-sided' ? 2 : 1;
  let p: number;
  let z: number | null = null;
  if (chosen === 'exact') {
    p = exactUpperTail(Math.round(u), Math.min(n1, n2), Math.max(n1, n2));
  } else {
    const tieTerm = tieSizes.reduce((s, t) => s + t * t * t - t, 0);
    const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
    const numerator = u - (n1 * n2) / 2 - 0.5;
    z = variance > 0 ? numerator / Math.sqrt(variance) : numerator >= 0 ? Infinity : -Infinity;
    p = normalSf(z);
  }
  p = Math.min(1, Math.max(0, p * factor));
  return { u1, p, alternative, method: chosen, z, probLess: u2 / (n1 * n2), n1, n2, ties };
}
