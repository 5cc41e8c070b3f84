/**
 * Statistics over the seeds of a downstream study: a figure (accuracy, AUC…) measured once per seed is
 * summarised by its mean with a 95 % confidence interval, and a condition (synthetic or mixed training
 * data) is compared with the real-data baseline by a paired test — over seeds (paired t test) or over the
 * test images of one seed (McNemar) — with Holm's correction when many conditions face the same baseline.
 * A figure bounded by nature (an accuracy in [0, 1], a difference of accuracies in [−1, 1]) gets an interval
 * kept inside its range (`boundedInterval`), and two figures measured on the same items are related by
 * Spearman's rank correlation (`spearman`).
 * Pure functions; results are plain JSON (no NaN or Infinity: an undefined quantity is `null`).
 */
import jStat from 'jstat';
import { Rng } from '../runtime/random.js';

/** Mean and Student t confidence interval of values measured once per seed. */
export interface Summary {
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation (n − 1 in the denominator); `null` for a single value. */
  readonly std: number | null;
  /** mean ± t_{(1+level)/2, n−1} · std / √n; `[mean, mean]` for a single value (see `degenerate`). */
  readonly ci: [number, number];
  readonly level: number;
  readonly method: 't';
  /** True when there is a single value, so that the interval says nothing about its spread. */
  readonly degenerate: boolean;
}

/** Percentile bootstrap interval of the mean. */
export interface BootstrapInterval {
  readonly n: number;
  readonly mean: number;
  /** The (1−level)/2 and (1+level)/2 quantiles of the resampled means. */
  readonly ci: [number, number];
  readonly level: number;
  readonly replicates: number;
  readonly seed: number;
  readonly method: 'bootstrap-percentile';
}

/** McNemar's test of two classifiers on the same test images. */
export interface McNemarResult {
  /** Test images. */
  readonly n: number;
  /** Images classifier A got right and B wrong. */
  readonly b: number;
  /** Images A got wrong and B right. */
  readonly c: number;
  /** Two-sided exact p: the binomial test of b successes in b + c trials with p = ½ (1 when b + c = 0). */
  readonly pExact: number;
  /** Continuity-corrected χ² = max(0, |b − c| − 1)² / (b + c) (0 when b + c = 0). */
  readonly statistic: number;
  /** Upper tail of χ²(1 dof) at `statistic`. */
  readonly pChi2: number;
}

/** Paired t test of two figures measured on the same seeds. */
export interface PairedTTest {
  readonly n: number;
  /** Mean of a_i − b_i. */
  readonly meanDiff: number;
  /** Standard deviation of the differences (n − 1); `null` when n < 2. */
  readonly sdDiff: number | null;
  /** meanDiff / (sdDiff / √n); `null` when n < 2 or the differences are all equal. */
  readonly t: number | null;
  /** n − 1. */
  readonly df: number;
  /** Two-sided p of `t` under Student's t with `df` dof; `null` when `t` is (see `note`). */
  readonly p: number | null;
  /** meanDiff ± t_{(1+level)/2, df} · sdDiff / √n; `null` when n < 2, `[meanDiff, meanDiff]` without variance. */
  readonly ci: [number, number] | null;
  readonly level: number;
  /** Why `t` and `p` are `null`, or `null` when they are defined. */
  readonly note: string | null;
}

/** Spearman's rank correlation of paired values, with a two-sided p-value and a Fisher z interval. */
export interface SpearmanResult {
  readonly n: number;
  /**
   * Pearson correlation of the average ranks (ties share the mean of their ranks), as scipy.stats.spearmanr;
   * `null` when n < 3 or either side is constant.
   */
  readonly rho: number | null;
  /** Two-sided p-value of rho = 0 (see `pMethod`); `null` when `rho` is. */
  readonly p: number | null;
  /**
   * `exact-permutation` for n ≤ 9 (all n! pairings), `t-approximation` for n ≥ 10 (Student t, n − 2 dof);
   * `null` when `rho` is.
   */
  readonly pMethod: 'exact-permutation' | 't-approximation' | null;
  /**
   * tanh(atanh(rho) ∓ z_{(1+level)/2} · √((1 + rho²/2) / (n − 3))) (Fisher z with the Bonett–Wright standard
   * error); `null` when `rho` is, when n < 4 or when |rho| = 1.
   */
  readonly ci: [number, number] | null;
  /** `fisher-z` when `ci` is given, else `null`. */
  readonly ciMethod: 'fisher-z' | null;
  readonly level: number;
}

/** Mean of values bounded by a known range, with a confidence interval kept inside that range. */
export interface BoundedInterval {
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation (n − 1 in the denominator); `null` for a single value. */
  readonly std: number | null;
  /** Inside `range` always: `summarise`'s t interval where that fits in the range, else the logit-t interval. */
  readonly ci: [number, number];
  /** `t`: the Student t interval of `summarise`; `logit-t`: the t interval on the logit scale, mapped back. */
  readonly method: 't' | 'logit-t';
  readonly level: number;
  /** True when there is a single value (interval `[mean, mean]`, method `t`). */
  readonly degenerate: boolean;
}

const DEFAULT_LEVEL = 0.95;

/** Spearman p-values are exact (all n! pairings enumerated) up to this many pairs, t-approximated above. */
export const SPEARMAN_EXACT_MAX_N = 9;

/**
 * `boundedInterval`'s logit-t interval clamps each value, mapped to [0, 1], into [ε, 1 − ε] with this ε, so
 * that values on the bounds (an accuracy of exactly 1) have a finite logit (±ln((1 − ε)/ε) ≈ ±9.21).
 */
export const BOUNDED_LOGIT_EPSILON = 1e-4;

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be in (0, 1), got ${level}`);
}

function checkFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new RangeError(`${what}[${i}] = ${values[i]} is not finite`);
  }
}

/** Arithmetic mean; exactly the common value when all values are equal. */
function mean(values: ArrayLike<number>): number {
  const first = values[0]!;
  let sum = 0;
  let constant = true;
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!;
    if (values[i] !== first) constant = false;
  }
  return constant ? first : sum / values.length;
}

/** Sample standard deviation √(Σ(x − mean)² / (n − 1)) (two-pass); 0 when all values are equal. */
function sampleStd(values: ArrayLike<number>, m: number): number {
  let ss = 0;
  for (let i = 0; i < values.length; i++) ss += (values[i]! - m) ** 2;
  return Math.sqrt(ss / (values.length - 1));
}

/** The `p` quantile of Student's t with `df` degrees of freedom. */
function tQuantile(p: number, df: number): number {
  return jStat.studentt.inv(p, df);
}

/** Upper tail Q(x) = P(Z ≥ x) of the standard normal: erfc(x / √2) / 2, and 1 − Q(−x) below 0. */
function normalUpperTail(x: number): number {
  return x >= 0 ? erfc(x / Math.SQRT2) / 2 : 1 - erfc(-x / Math.SQRT2) / 2;
}

/**
 * The `p` quantile of the standard normal for p ∈ (½, 1), from its upper tail q = 1 − p: Abramowitz & Stegun
 * 26.2.23 (t = √(−2 ln q), x = t − (c₀ + c₁t + c₂t²) / (1 + d₁t + d₂t² + d₃t³), error < 4.5e-4) refined by
 * Newton's method on Q(x) = q (Q' = −φ) until the step is below 1e-15 · |x| — to about 1e-15, as `erfc`.
 */
function normalQuantileUpper(p: number): number {
  const q = 1 - p;
  const t = Math.sqrt(-2 * Math.log(q));
  let x =
    t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1 + t * (1.432788 + t * (0.189269 + t * 0.001308)));
  for (let i = 0; i < 8; i++) {
    const step = (normalUpperTail(x) - q) / (Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI));
    x += step;
    if (Math.abs(step) <= 1e-15 * Math.abs(x)) break;
  }
  return x;
}

/**
 * Two-sided p-value P(|T| ≥ |t|) of Student's t with `df` dof, as the regularised incomplete beta
 * I_{df/(df+t²)}(df/2, ½) — direct, so small p keep their relative precision (no 1 − cdf).
 */
function tTwoSided(t: number, df: number): number {
  return Math.min(1, jStat.ibeta(df / (df + t * t), df / 2, 0.5));
}

/**
 * erfc(z) for z ≥ 0, to about 1e-15 relative: erfc(z) = Q(½, z²), the upper regularised gamma function.
 * For z² < 1.5, 1 − P(½, z²) with P's power series P(a, y) = e^{−y} y^a / Γ(a+1) · Σ_n y^n / ((a+1)…(a+n));
 * above, Legendre's continued fraction for Q evaluated by the modified Lentz method (Numerical Recipes §6.2).
 */
function erfc(z: number): number {
  const y = z * z;
  const eps = 1e-16;
  if (y < 1.5) {
    let term = 1;
    let sum = 1;
    for (let n = 1; n < 200 && term > eps * sum; n++) {
      term *= y / (n + 0.5);
      sum += term;
    }
    // Γ(3/2) = √π / 2.
    return 1 - (Math.exp(-y) * z * sum * 2) / Math.sqrt(Math.PI);
  }
  const tiny = 1e-300;
  let b = y + 0.5;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - 0.5);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < eps) break;
  }
  // Γ(½) = √π.
  return (Math.exp(-y) * z * h) / Math.sqrt(Math.PI);
}

/** Upper tail P(X ≥ x) of χ² with 1 dof: erfc(√(x/2)). */
function chi2Df1Sf(x: number): number {
  return x <= 0 ? 1 : erfc(Math.sqrt(x / 2));
}

/**
 * Two-sided exact binomial p of k successes in n trials with p = ½: the total probability of the outcomes no
 * more likely than k (scipy.stats.binomtest's definition). By symmetry that is 2 · P(X ≤ min(k, n−k)),
 * capped at 1. P(X ≤ m) = pmf(m) · Σ_{i≤m} pmf(i)/pmf(m), pmf(m) = C(n, m) / 2ⁿ computed in logs
 * (ln C(n, m) = Σ_{i=1..m} ln((n−m+i)/i)) and the ratios by pmf(i−1)/pmf(i) = i / (n−i+1), so large n
 * neither overflows nor loses precision.
 */
export function binomialTwoSidedHalf(k: number, n: number): number {
  if (n === 0) return 1;
  const m = Math.min(k, n - k);
  if (2 * m === n) return 1;
  let logPmf = -n * Math.LN2;
  for (let i = 1; i <= m; i++) logPmf += Math.log((n - m + i) / i);
  let term = 1;
  let sum = 1;
  for (let i = m; i > 0 && term > 1e-17 * sum; i--) {
    term *= i / (n - i + 1);
    sum += term;
  }
  return Math.min(1, 2 * Math.exp(logPmf) * sum);
}

/**
 * Mean, sample standard deviation and the Student t interval mean ± t_{(1+level)/2, n−1} · s / √n of values
 * measured once per seed (level 0.95 by default). A single value gives the interval `[mean, mean]`,
 * `std: null` and `degenerate: true`. Throws a RangeError for no values or non-finite ones.
 */
export function summarise(values: readonly number[], options: { level?: number } = {}): Summary {
  const level = options.level ?? DEFAULT_LEVEL;
  checkLevel(level);
  if (values.length === 0) throw new RangeError('cannot summarise an empty list of values');
  checkFinite(values, 'values');
  const n = values.length;
  const m = mean(values);
  if (n === 1) return { n, mean: m, std: null, ci: [m, m], level, method: 't', degenerate: true };
  const std = sampleStd(values, m);
  const half = tQuantile((1 + level) / 2, n - 1) * (std / Math.sqrt(n));
  return { n, mean: m, std, ci: [m - half, m + half], level, method: 't', degenerate: false };
}

/**
 * The `q` quantile of `values` with linear interpolation between order statistics (Hyndman & Fan type 7,
 * numpy's default): x_(⌊h⌋) + (h − ⌊h⌋)(x_(⌊h⌋+1) − x_(⌊h⌋)), h = (n − 1) q, 0-based sorted x.
 */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty list');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile level must be in [0, 1], got ${q}`);
  const sorted = Float64Array.from(values).sort();
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const a = sorted[lo]!;
  return lo + 1 < sorted.length ? a + (h - lo) * (sorted[lo + 1]! - a) : a;
}

/**
 * Percentile bootstrap interval of the mean: `replicates` (default 10 000) resamples of the values with
 * replacement, drawn with the project's seeded generator (`new Rng(seed)`, so the interval is reproducible),
 * and the (1−level)/2 and (1+level)/2 quantiles (`quantile`) of their means.
 */
export function bootstrapCi(
  values: readonly number[],
  options: { seed: number; replicates?: number; level?: number },
): BootstrapInterval {
  const level = options.level ?? DEFAULT_LEVEL;
  const replicates = options.replicates ?? 10_000;
  checkLevel(level);
  if (!(Number.isInteger(replicates) && replicates >= 1)) {
    throw new RangeError(`replicates must be a positive integer, got ${replicates}`);
  }
  if (values.length === 0) throw new RangeError('cannot bootstrap an empty list of values');
  checkFinite(values, 'values');
  const n = values.length;
  const rng = new Rng(options.seed);
  const means = new Float64Array(replicates);
  for (let r = 0; r < replicates; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[rng.int(n)]!;
    means[r] = sum / n;
  }
  return {
    n,
    mean: mean(values),
    ci: [quantile(means, (1 - level) / 2), quantile(means, (1 + level) / 2)],
    level,
    replicates,
    seed: options.seed,
    method: 'bootstrap-percentile',
  };
}

/**
 * McNemar's test of classifiers A and B on the same test images, from whether each got each image right
 * (any non-zero entry of a Uint8Array is "right"). Only the discordant images count: b (A right, B wrong)
 * and c (A wrong, B right). `pExact` — the one to report — is the two-sided exact binomial test of b in
 * b + c trials with p = ½; `statistic` is Edwards' continuity-corrected χ² max(0, |b − c| − 1)² / (b + c)
 * (as R's mcnemar.test, which applies no correction when b = c) with `pChi2` its χ²(1) upper tail.
 * b + c = 0 gives p = 1.
 */
export function mcnemar(
  correctA: readonly boolean[] | Uint8Array,
  correctB: readonly boolean[] | Uint8Array,
): McNemarResult {
  if (correctA.length !== correctB.length) {
    throw new RangeError(`correctA (${correctA.length}) and correctB (${correctB.length}) differ in length`);
  }
  if (correctA.length === 0) throw new RangeError('McNemar test needs at least one test image');
  let b = 0;
  let c = 0;
  for (let i = 0; i < correctA.length; i++) {
    const a = Boolean(correctA[i]);
    const bb = Boolean(correctB[i]);
    if (a && !bb) b++;
    else if (!a && bb) c++;
  }
  return mcnemarFromCounts(b, c, correctA.length);
}

/**
 * McNemar's test from the discordant counts alone: b (A right, B wrong) and c (A wrong, B right), e.g.
 * summed over the seeds of a study. `n` is recorded as given (default b + c).
 */
export function mcnemarFromCounts(b: number, c: number, n = b + c): McNemarResult {
  for (const [name, v] of [
    ['b', b],
    ['c', c],
  ] as const)
    if (!(Number.isInteger(v) && v >= 0))
      throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
  const discordant = b + c;
  const statistic = discordant > 0 ? Math.max(0, Math.abs(b - c) - 1) ** 2 / discordant : 0;
  return {
    n,
    b,
    c,
    pExact: binomialTwoSidedHalf(b, discordant),
    statistic,
    pChi2: chi2Df1Sf(statistic),
  };
}

/**
 * Paired t test of a against b (same seeds, same order): differences d_i = a_i − b_i, t = mean(d) / (s_d / √n)
 * with n − 1 dof, two-sided p, and the interval mean(d) ± t_{(1+level)/2, n−1} · s_d / √n. A single pair,
 * or differences that are all equal (zero variance), leave `t` and `p` `null` with a `note` saying why.
 * Throws a RangeError for lists of different or zero length, or non-finite values.
 */
export function pairedTTest(
  a: readonly number[],
  b: readonly number[],
  options: { level?: number } = {},
): PairedTTest {
  const level = options.level ?? DEFAULT_LEVEL;
  checkLevel(level);
  if (a.length !== b.length) throw new RangeError(`a (${a.length}) and b (${b.length}) differ in length`);
  if (a.length === 0) throw new RangeError('paired t test needs at least one pair');
  checkFinite(a, 'a');
  checkFinite(b, 'b');
  const n = a.length;
  const d = a.map((x, i) => x - b[i]!);
  const meanDiff = mean(d);
  const df = n - 1;
  if (n < 2) {
    const note = 'a single pair: no variance to test against, t and p undefined';
    return { n, meanDiff, sdDiff: null, t: null, df, p: null, ci: null, level, note };
  }
  const sdDiff = sampleStd(d, meanDiff);
  if (d.every((x) => x === d[0])) {
    const note = `all ${n} differences equal ${d[0]}: zero variance, t and p undefined`;
    return { n, meanDiff, sdDiff: 0, t: null, df, p: null, ci: [meanDiff, meanDiff], level, note };
  }
  const se = sdDiff / Math.sqrt(n);
  const t = meanDiff / se;
  const half = tQuantile((1 + level) / 2, df) * se;
  return {
    n,
    meanDiff,
    sdDiff,
    t,
    df,
    p: tTwoSided(t, df),
    ci: [meanDiff - half, meanDiff + half],
    level,
    note: null,
  };
}

/**
 * Holm–Bonferroni adjusted p-values, for m conditions each tested against the same baseline: with the m
 * non-null p sorted ascending p_(1) ≤ … ≤ p_(m), adj_(i) = max_{j≤i} min(1, (m − j + 1) · p_(j)); rejecting
 * where adj ≤ α controls the family-wise error rate at α. `null` entries (tests that could not be done)
 * stay `null` and do not count in m. Output in input order.
 */
export function holmAdjust(pValues: readonly (number | null)[]): (number | null)[] {
  pValues.forEach((p, i) => {
    if (p !== null && !(p >= 0 && p <= 1)) throw new RangeError(`p-value ${p} at ${i} outside [0, 1]`);
  });
  const order = pValues
    .map((p, i) => ({ p, i }))
    .filter((x): x is { p: number; i: number } => x.p !== null)
    .sort((x, y) => x.p - y.p || x.i - y.i);
  const m = order.length;
  const out: (number | null)[] = pValues.map(() => null);
  let running = 0;
  order.forEach(({ p, i }, j) => {
    running = Math.max(running, Math.min(1, (m - j) * p));
    out[i] = running;
  });
  return out;
}

/**
 * Twice the centred average ranks of `values`: 2 r_i − (n + 1), with r_i the 1-based rank of values[i] and
 * tied values sharing the mean of their ranks (2 r_i is then an integer, so every sum below is exact).
 */
function doubledCentredRanks(values: readonly number[]): Float64Array {
  const n = values.length;
  const order = Array.from(values.keys()).sort((i, j) => values[i]! - values[j]!);
  const out = new Float64Array(n);
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && values[order[end]!] === values[order[start]!]) end++;
    // Ranks start + 1 … end share their mean (start + 1 + end) / 2: doubled and centred, start + end − n.
    for (let k = start; k < end; k++) out[order[k]!] = start + end - n;
    start = end;
  }
  return out;
}

/**
 * Count of the n! orderings π of `b` with |Σ a_i b_π(i)| / denom ≥ threshold, enumerated by Heap's algorithm
 * (one swap per ordering, the sum updated by (a_i − a_j)(b_j − b_i): exact on the integer doubled ranks).
 */
function countPermutationsAtLeast(
  a: Float64Array,
  b: Float64Array,
  denom: number,
  threshold: number,
): number {
  const n = a.length;
  const perm = Float64Array.from(b);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[i]! * perm[i]!;
  let count = Math.abs(sum) / denom >= threshold ? 1 : 0;
  const c = new Int32Array(n);
  for (let i = 1; i < n;) {
    if (c[i]! < i) {
      const j = i % 2 === 0 ? 0 : c[i]!;
      sum += (a[i]! - a[j]!) * (perm[j]! - perm[i]!);
      const t = perm[i]!;
      perm[i] = perm[j]!;
      perm[j] = t;
      if (Math.abs(sum) / denom >= threshold) count++;
      c[i]!++;
      i = 1;
    } else {
      c[i] = 0;
      i++;
    }
  }
  return count;
}

/**
 * Spearman's rank correlation of paired values x_i, y_i: rho is the Pearson correlation of their average
 * ranks (ties share the mean of their ranks), as scipy.stats.spearmanr; `null` (with every other figure)
 * when n < 3 or either side is constant.
 *
 * p is two-sided, for H0: no association.
 * - n ≤ 9 (`SPEARMAN_EXACT_MAX_N`): exact permutation p. All n! orderings of y's ranks against x's are
 *   enumerated (orderings that only swap tied ranks are not merged: each counts once) and
 *   p = #{orderings with |rho_perm| ≥ |rho| − 1e-12} / n!, the 1e-12 keeping orderings that reach |rho| up to
 *   rounding. This equals scipy.stats.permutation_test(..., permutation_type='pairings',
 *   n_resamples=np.inf, alternative='two-sided') whenever the null distribution of rho is symmetric about 0,
 *   as it is when either side has no ties (its centred ranks are then symmetric). With ties on both sides
 *   the two may differ: scipy's two-sided p is 2 · min(P(rho_perm ≤ rho), P(rho_perm ≥ rho)), capped at 1.
 * - n ≥ 10: t = rho · √((n − 2) / (1 − rho²)) under Student's t with n − 2 dof (scipy.stats.spearmanr's
 *   default p), computed as I_{1−rho²}((n − 2)/2, ½); 0 when |rho| = 1.
 *
 * ci: z = atanh(rho) ± z_{(1+level)/2} · √((1 + rho²/2) / (n − 3)) — Fisher's z with the Bonett–Wright (2000)
 * standard error for Spearman's rho — mapped back with tanh. `null` when n < 4 (the standard error needs
 * n − 3 > 0) or |rho| = 1 (atanh(±1) is infinite: the interval would be the single point ±1, a certainty
 * that n pairs cannot give).
 *
 * Throws a RangeError for lists of different lengths, non-finite values or a level outside (0, 1).
 */
export function spearman(
  x: readonly number[],
  y: readonly number[],
  options: { level?: number } = {},
): SpearmanResult {
  const level = options.level ?? DEFAULT_LEVEL;
  checkLevel(level);
  if (x.length !== y.length) throw new RangeError(`x (${x.length}) and y (${y.length}) differ in length`);
  checkFinite(x, 'x');
  checkFinite(y, 'y');
  const n = x.length;
  const undefinedResult: SpearmanResult = {
    n,
    rho: null,
    p: null,
    pMethod: null,
    ci: null,
    ciMethod: null,
    level,
  };
  if (n < 3) return undefinedResult;
  const a = doubledCentredRanks(x);
  const b = doubledCentredRanks(y);
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += a[i]! * b[i]!;
    saa += a[i]! * a[i]!;
    sbb += b[i]! * b[i]!;
  }
  if (saa === 0 || sbb === 0) return undefinedResult;
  const denom = Math.sqrt(saa * sbb);
  const rho = Math.max(-1, Math.min(1, sab / denom));
  const perfect = Math.abs(rho) === 1;

  let p: number;
  let pMethod: 'exact-permutation' | 't-approximation';
  if (n <= SPEARMAN_EXACT_MAX_N) {
    let factorial = 1;
    for (let k = 2; k <= n; k++) factorial *= k;
    p = countPermutationsAtLeast(a, b, denom, Math.abs(rho) - 1e-12) / factorial;
    pMethod = 'exact-permutation';
  } else {
    // t² / (df + t²) = rho², so the incomplete beta's argument df / (df + t²) is 1 − rho² = (1 − rho)(1 + rho).
    p = perfect ? 0 : Math.min(1, jStat.ibeta((1 - rho) * (1 + rho), (n - 2) / 2, 0.5));
    pMethod = 't-approximation';
  }

  let ci: [number, number] | null = null;
  if (n >= 4 && !perfect) {
    const z = Math.atanh(rho);
    const half = normalQuantileUpper((1 + level) / 2) * Math.sqrt((1 + (rho * rho) / 2) / (n - 3));
    ci = [Math.tanh(z - half), Math.tanh(z + half)];
  }
  return { n, rho, p, pMethod, ci, ciMethod: ci === null ? null : 'fisher-z', level };
}

/**
 * Mean and confidence interval of values that lie in a known `range` [lo, hi] (an accuracy in [0, 1], a
 * difference of accuracies in [−1, 1]), the interval always inside the range.
 *
 * First `summarise`'s Student t interval mean ± t_{(1+level)/2, n−1} · s / √n: if it lies inside [lo, hi] it
 * is the answer (method `t`). Otherwise (method `logit-t`) each value is mapped to u = (v − lo) / (hi − lo),
 * clamped to [ε, 1 − ε] with ε = `BOUNDED_LOGIT_EPSILON` (1e-4), and taken to the logit scale
 * z = ln(u / (1 − u)); the t interval of the z, mean(z) ± t_{(1+level)/2, n−1} · s_z / √n, is mapped back by
 * z ↦ lo + (hi − lo) / (1 + e^{−z}). That interval surrounds the back-transformed mean logit, not the
 * arithmetic mean; where it misses the arithmetic mean (skewed values, e.g. nine 1s and a 0, or values all
 * clamped to the same u) it is widened just enough to include it, [min(lower, mean), max(upper, mean)], so
 * the reported mean always lies in its interval. A single value gives `[mean, mean]`, `std: null`,
 * `degenerate: true` and method `t`.
 *
 * Throws a RangeError for no values, non-finite values, values outside the range, a range that is not
 * finite with lo < hi, or a level outside (0, 1).
 */
export function boundedInterval(
  values: readonly number[],
  range: readonly [number, number],
  options: { level?: number } = {},
): BoundedInterval {
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) {
    throw new RangeError(`range must be finite with lo < hi, got [${lo}, ${hi}]`);
  }
  const s = summarise(values, options);
  values.forEach((v, i) => {
    if (v < lo || v > hi) throw new RangeError(`values[${i}] = ${v} is outside the range [${lo}, ${hi}]`);
  });
  const { n, mean: m, std, level, degenerate } = s;
  if (std === null || (s.ci[0] >= lo && s.ci[1] <= hi)) {
    return { n, mean: m, std, ci: s.ci, method: 't', level, degenerate };
  }
  const width = hi - lo;
  const eps = BOUNDED_LOGIT_EPSILON;
  const z = values.map((v) => {
    const u = Math.min(1 - eps, Math.max(eps, (v - lo) / width));
    return Math.log(u / (1 - u));
  });
  const mz = mean(z);
  const half = tQuantile((1 + level) / 2, n - 1) * (sampleStd(z, mz) / Math.sqrt(n));
  const back = (t: number): number => Math.min(hi, Math.max(lo, lo + width / (1 + Math.exp(-t))));
  const ci: [number, number] = [Math.min(back(mz - half), m), Math.max(back(mz + half), m)];
  return { n, mean: m, std, ci, method: 'logit-t', level, degenerate };
}
