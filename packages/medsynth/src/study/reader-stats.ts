/**
 * Statistics of a reader study — a blinded visual Turing test: readers see a shuffled, class-balanced mix of
 * real and synthetic images and call each one `real` or `synthetic` with a confidence. A reader who cannot
 * tell them apart is right half of the time; "readers at chance" is the bar a generator aims for.
 *
 * The maths (k right calls out of n, level 1 − α, z = Φ⁻¹(1 − α/2)):
 *  - **Accuracy** k / n, with the **Wilson** score interval
 *      (k + z²/2) / (n + z²) ± z / (n + z²) · √(k(n − k)/n + z²/4)
 *    and the exact **Clopper–Pearson** interval [B⁻¹(α/2; k, n − k + 1), B⁻¹(1 − α/2; k + 1, n − k)]
 *    (0 when k = 0, 1 when k = n; B⁻¹ the Beta quantile) — the intervals of scipy's
 *    `binomtest(k, n).proportion_ci(method='wilson' | 'exact')`.
 *  - **Binomial test against ½** (chance: the generator fools the reader), two-sided exact: the total
 *    probability of the outcomes no more likely than k under Bin(n, ½) (scipy's `binomtest` definition),
 *    which by symmetry is min(1, 2 · P(X ≤ min(k, n − k))), and 1 when k = n/2. Readers are tested one by
 *    one, so their p-values get **Holm's** step-down correction (p₍ᵢ₎ · (m − i + 1), running maximum, ≤ 1).
 *  - **Sensitivity to synthetic**: the share of synthetic images called synthetic; **specificity**: the share
 *    of real images called real. Both overall and per class (the class the image shows, or is made for).
 *  - **Cohen's κ** for two readers over the items both answered: p_o = share of items with the same call,
 *    p_e = Σ_c p_A(c) · p_B(c) (each reader's own share of calls c ∈ {real, synthetic}),
 *    κ = (p_o − p_e) / (1 − p_e). Undefined (null) when p_e = 1 (both readers gave one and the same call
 *    throughout) or no item is common.
 *  - **Fleiss' κ** for m ≥ 2 readers over the items every one of them answered: for item i with n_ic calls c,
 *    P_i = (Σ_c n_ic² − m) / (m(m − 1)), P̄ = mean P_i, p_c = Σ_i n_ic / (N·m), P̄_e = Σ_c p_c²,
 *    κ = (P̄ − P̄_e) / (1 − P̄_e); undefined when P̄_e = 1. With two readers it is Scott's π, not Cohen's κ
 *    (the chance term pools both readers' calls).
 *  - κ in words after Landis & Koch (1977): < 0 poor, ≤ 0.20 slight, ≤ 0.40 fair, ≤ 0.60 moderate,
 *    ≤ 0.80 substantial, above almost perfect.
 *  - **Verdict**: "readers tell them apart" when some reader's accuracy differs from ½ at α after Holm's
 *    correction (above ½: they spot the synthetic images; below: they take synthetic for real and real for
 *    synthetic, which also tells them apart); otherwise "readers at chance: indistinguishable", with the
 *    pooled accuracy's Wilson interval, and a caution when that interval still reaches past 60 % (too few
 *    answers to rule out that readers notice a difference).
 * The pooled accuracy counts every answer of every reader as one trial; answers of different readers on the
 * same image are not independent, so it describes, it does not test.
 *
 * Pure functions over answers; results are plain JSON (an undefined quantity is `null`, never NaN).
 */
import jStat from 'jstat';
import { binomialTwoSidedHalf, holmAdjust } from '../classify/statistics.js';

export const CALLS = ['real', 'synthetic'] as const;
export type Call = (typeof CALLS)[number];

/** One image of a study: its opaque id, whether it is real or synthetic, and its class (index). */
export interface ReaderItem {
  readonly id: string;
  readonly truth: Call;
  readonly classIndex: number;
}

/** One stored answer. */
export interface ReaderAnswer {
  readonly reader: string;
  readonly item: string;
  readonly call: Call;
  /** 1 (guessing) … 5 (certain). */
  readonly confidence: number;
  /** Milliseconds from the image being shown to the answer; null when unknown. */
  readonly ms: number | null;
}

/** A proportion k / n with its Wilson and exact (Clopper–Pearson) intervals; `value` null when n = 0. */
export interface Proportion {
  readonly k: number;
  readonly n: number;
  readonly value: number | null;
  readonly wilson: readonly [number, number] | null;
  readonly exact: readonly [number, number] | null;
}

export interface Rates {
  /** Right calls among all answers. */
  readonly accuracy: Proportion;
  /** Synthetic images called synthetic. */
  readonly sensitivity: Proportion;
  /** Real images called real. */
  readonly specificity: Proportion;
}

export interface ClassRates extends Rates {
  readonly classIndex: number;
  readonly className: string;
}

export interface ReaderStats extends Rates {
  readonly reader: string;
  readonly answered: number;
  /** Whether the reader answered every item of the study. */
  readonly complete: boolean;
  /** Two-sided exact binomial test of the accuracy against ½. */
  readonly p: number | null;
  /** `p` with Holm's correction over the readers who answered. */
  readonly pHolm: number | null;
  readonly perClass: readonly ClassRates[];
  readonly meanConfidence: number | null;
  /** Mean confidence of the right and of the wrong calls. */
  readonly confidenceRight: number | null;
  readonly confidenceWrong: number | null;
  /** Median seconds per answer (answers with a time). */
  readonly medianSeconds: number | null;
}

export type KappaStrength = 'poor' | 'slight' | 'fair' | 'moderate' | 'substantial' | 'almost perfect';

export interface Kappa {
  /** Items the κ is computed over. */
  readonly n: number;
  /** Observed agreement (p_o for Cohen, P̄ for Fleiss). */
  readonly observed: number | null;
  /** Agreement expected by chance (p_e, P̄_e). */
  readonly expected: number | null;
  readonly kappa: number | null;
  readonly strength: KappaStrength | null;
  /** Why κ is undefined, when it is. */
  readonly note?: string;
}

export interface PairKappa extends Kappa {
  readonly a: string;
  readonly b: string;
}

export interface FleissKappa extends Kappa {
  readonly readers: readonly string[];
}

export type VerdictKind = 'no-answers' | 'chance' | 'distinguishable';

export interface Verdict {
  readonly kind: VerdictKind;
  /** One plain sentence. */
  readonly text: string;
}

export interface ReaderStudyStats {
  readonly level: number;
  readonly alpha: number;
  readonly items: number;
  readonly itemsPerClass: readonly {
    readonly className: string;
    readonly real: number;
    readonly synthetic: number;
  }[];
  readonly answers: number;
  readonly readers: readonly ReaderStats[];
  /** Every answer of every reader as one trial (descriptive: answers on the same image are not independent). */
  readonly pooled: Rates & { readonly perClass: readonly ClassRates[] };
  readonly cohen: readonly PairKappa[];
  /** Over the items every reader answered; null with fewer than two readers. */
  readonly fleiss: FleissKappa | null;
  readonly verdict: Verdict;
}

export interface ReaderStudyInput {
  readonly items: readonly ReaderItem[];
  readonly answers: readonly ReaderAnswer[];
  readonly classNames: readonly string[];
  /** Interval level (default 0.95). */
  readonly level?: number;
  /** Significance level of the per-reader tests (default 0.05). */
  readonly alpha?: number;
}

function checkCounts(k: number, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || k > n)
    throw new RangeError(`k must be an integer in [0, n = ${n}], got ${k}`);
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
}

/** Φ⁻¹(p) of the standard normal, refined by Newton's method on jStat's cdf (to about 1e-15). */
function normalQuantile(p: number): number {
  let x = jStat.normal.inv(p, 0, 1);
  for (let i = 0; i < 4; i++) {
    const step = (jStat.normal.cdf(x, 0, 1) - p) / jStat.normal.pdf(x, 0, 1);
    x -= step;
    if (Math.abs(step) < 1e-15 * Math.max(1, Math.abs(x))) break;
  }
  return x;
}

/**
 * The p quantile of Beta(a, b): jStat's estimate polished by Newton steps on the regularised incomplete beta
 * I_x(a, b) = p (derivative: the Beta density), kept inside (0, 1), so that the result matches scipy's to ~1e-12.
 */
function betaQuantile(p: number, a: number, b: number): number {
  let x = jStat.beta.inv(p, a, b);
  const lnB = jStat.betaln(a, b);
  for (let i = 0; i < 20; i++) {
    const f = jStat.ibeta(x, a, b) - p;
    const pdf = Math.exp((a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x) - lnB);
    if (!(pdf > 0) || !Number.isFinite(pdf)) break;
    let next = x - f / pdf;
    if (next <= 0) next = x / 2;
    if (next >= 1) next = (x + 1) / 2;
    const step = Math.abs(next - x);
    x = next;
    if (step < 1e-15 * Math.max(x, 1e-300)) break;
  }
  return x;
}

/** The Wilson score interval of k successes in n trials (see the module comment); null when n = 0. */
export function wilsonInterval(k: number, n: number, level = 0.95): [number, number] | null {
  checkCounts(k, n);
  checkLevel(level);
  if (n === 0) return null;
  const z = normalQuantile(1 - (1 - level) / 2);
  const z2 = z * z;
  const centre = (k + z2 / 2) / (n + z2);
  const half = (z / (n + z2)) * Math.sqrt((k * (n - k)) / n + z2 / 4);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** The exact (Clopper–Pearson) interval of k successes in n trials; null when n = 0. */
export function clopperPearsonInterval(k: number, n: number, level = 0.95): [number, number] | null {
  checkCounts(k, n);
  checkLevel(level);
  if (n === 0) return null;
  const alpha = 1 - level;
  const lo = k === 0 ? 0 : betaQuantile(alpha / 2, k, n - k + 1);
  const hi = k === n ? 1 : betaQuantile(1 - alpha / 2, k + 1, n - k);
  return [lo, hi];
}

/**
 * Two-sided exact binomial test of k successes in n trials against p = ½ (scipy's `binomtest`):
 * min(1, 2 · P(X ≤ min(k, n − k))), 1 when k = n/2 or n = 0 — classify/statistics' exact McNemar p-value,
 * with its arguments checked.
 */
export function binomialTestHalf(k: number, n: number): number {
  checkCounts(k, n);
  return binomialTwoSidedHalf(k, n);
}

/** k / n with both intervals. */
export function proportion(k: number, n: number, level = 0.95): Proportion {
  return {
    k,
    n,
    value: n === 0 ? null : k / n,
    wilson: wilsonInterval(k, n, level),
    exact: clopperPearsonInterval(k, n, level),
  };
}

/** Landis & Koch's words for a κ. */
export function kappaStrength(kappa: number): KappaStrength {
  if (kappa < 0) return 'poor';
  if (kappa <= 0.2) return 'slight';
  if (kappa <= 0.4) return 'fair';
  if (kappa <= 0.6) return 'moderate';
  if (kappa <= 0.8) return 'substantial';
  return 'almost perfect';
}

function kappaOf(n: number, observed: number, expected: number, undefinedNote: string): Kappa {
  if (expected >= 1 - 1e-12)
    return { n, observed, expected, kappa: null, strength: null, note: undefinedNote };
  const kappa = (observed - expected) / (1 - expected);
  return { n, observed, expected, kappa, strength: kappaStrength(kappa) };
}

/**
 * Cohen's κ of two raters' labels of the same items (`a[i]` and `b[i]` label item i; any categories). Throws
 * a RangeError for lists of different lengths; no items give κ null with a note.
 */
export function cohenKappa(a: readonly string[], b: readonly string[]): Kappa {
  if (a.length !== b.length)
    throw new RangeError(`the two raters label ${a.length} and ${b.length} items: give the same items`);
  const n = a.length;
  if (n === 0)
    return { n, observed: null, expected: null, kappa: null, strength: null, note: 'no items in common' };
  const countA = new Map<string, number>();
  const countB = new Map<string, number>();
  let same = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) same++;
    countA.set(a[i]!, (countA.get(a[i]!) ?? 0) + 1);
    countB.set(b[i]!, (countB.get(b[i]!) ?? 0) + 1);
  }
  let expected = 0;
  for (const [c, ca] of countA) expected += (ca / n) * ((countB.get(c) ?? 0) / n);
  return kappaOf(n, same / n, expected, 'undefined: both readers gave one and the same call to every item');
}

/**
 * Fleiss' κ from an items × categories matrix of counts (row i: how many raters put item i in each
 * category); every row must sum to the same number m ≥ 2 of raters. No rows give κ null with a note.
 */
export function fleissKappa(counts: readonly (readonly number[])[]): Kappa {
  const n = counts.length;
  if (n === 0)
    return {
      n,
      observed: null,
      expected: null,
      kappa: null,
      strength: null,
      note: 'no item answered by all readers',
    };
  const k = counts[0]!.length;
  const m = counts[0]!.reduce((s, x) => s + x, 0);
  if (m < 2) throw new RangeError(`Fleiss' κ needs at least two raters per item, got ${m}`);
  const totals = new Array<number>(k).fill(0);
  let sumP = 0;
  counts.forEach((row, i) => {
    if (row.length !== k) throw new RangeError(`row ${i} has ${row.length} categories, expected ${k}`);
    let sum = 0;
    let squares = 0;
    row.forEach((x, c) => {
      if (!Number.isInteger(x) || x < 0) throw new RangeError(`count [${i}][${c}] = ${x} is not a count`);
      sum += x;
      squares += x * x;
      totals[c]! += x;
    });
    if (sum !== m) throw new RangeError(`item ${i} has ${sum} ratings, expected ${m} like the first item`);
    sumP += (squares - m) / (m * (m - 1));
  });
  const observed = sumP / n;
  const expected = totals.reduce((s, t) => s + (t / (n * m)) ** 2, 0);
  return kappaOf(n, observed, expected, 'undefined: every answer was the same call');
}

interface Tally {
  right: number;
  n: number;
  synth: number;
  synthN: number;
  realRight: number;
  realN: number;
}

const emptyTally = (): Tally => ({ right: 0, n: 0, synth: 0, synthN: 0, realRight: 0, realN: 0 });

function add(t: Tally, item: ReaderItem, call: Call): void {
  t.n++;
  if (call === item.truth) t.right++;
  if (item.truth === 'synthetic') {
    t.synthN++;
    if (call === 'synthetic') t.synth++;
  } else {
    t.realN++;
    if (call === 'real') t.realRight++;
  }
}

function rates(t: Tally, level: number): Rates {
  return {
    accuracy: proportion(t.right, t.n, level),
    sensitivity: proportion(t.synth, t.synthN, level),
    specificity: proportion(t.realRight, t.realN, level),
  };
}

const meanOf = (xs: readonly number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

function verdictOf(readers: readonly ReaderStats[], pooled: Rates, alpha: number, level: number): Verdict {
  if (readers.length === 0) return { kind: 'no-answers', text: 'No answers yet.' };
  const above = readers.filter((r) => r.pHolm !== null && r.pHolm < alpha && r.accuracy.value! > 0.5);
  const below = readers.filter((r) => r.pHolm !== null && r.pHolm < alpha && r.accuracy.value! < 0.5);
  const acc = pooled.accuracy;
  const ci = acc.wilson!;
  const pooledText = `pooled accuracy ${pct(acc.value!)} (${Math.round(level * 100)} % CI ${pct(ci[0])}–${pct(ci[1])}, ${acc.n} answers)`;
  if (above.length + below.length > 0) {
    const parts: string[] = [];
    if (above.length > 0)
      parts.push(
        `${above.length} of ${readers.length} reader${readers.length === 1 ? '' : 's'} (${above.map((r) => r.reader).join(', ')}) spot the synthetic images better than chance`,
      );
    if (below.length > 0)
      parts.push(
        `${below.length} of ${readers.length} (${below.map((r) => r.reader).join(', ')}) call them the wrong way round more often than chance`,
      );
    return {
      kind: 'distinguishable',
      text: `Readers tell them apart: ${parts.join('; ')} (exact binomial test against 50 %, Holm-adjusted, α = ${alpha}); ${pooledText}.`,
    };
  }
  const caution =
    ci[1] > 0.6 ? ` Too few answers to be sure: accuracies up to ${pct(ci[1])} are not ruled out.` : '';
  return {
    kind: 'chance',
    text: `Readers at chance: indistinguishable — no reader's accuracy differs from 50 % (exact binomial test, Holm-adjusted, α = ${alpha}); ${pooledText}.${caution}`,
  };
}

/**
 * The statistics of a reader study from its items and answers (see the module comment). Answers to unknown
 * items, or a reader answering an item twice, are RangeErrors (the store makes both impossible).
 */
export function readerStudyStats(input: ReaderStudyInput): ReaderStudyStats {
  const level = input.level ?? 0.95;
  const alpha = input.alpha ?? 0.05;
  checkLevel(level);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  const K = input.classNames.length;
  const items = new Map<string, ReaderItem>();
  for (const it of input.items) {
    if (items.has(it.id)) throw new RangeError(`item ${it.id} is listed twice`);
    if (!(Number.isInteger(it.classIndex) && it.classIndex >= 0 && it.classIndex < K))
      throw new RangeError(`item ${it.id} has class ${it.classIndex}, outside 0…${K - 1}`);
    items.set(it.id, it);
  }
  const byReader = new Map<string, Map<string, ReaderAnswer>>();
  for (const a of input.answers) {
    if (!items.has(a.item)) throw new RangeError(`an answer of ${a.reader} names an unknown item ${a.item}`);
    const mine = byReader.get(a.reader) ?? new Map<string, ReaderAnswer>();
    if (mine.has(a.item)) throw new RangeError(`${a.reader} answered item ${a.item} twice`);
    mine.set(a.item, a);
    byReader.set(a.reader, mine);
  }
  const names = [...byReader.keys()].sort();
  const pooledAll = emptyTally();
  const pooledClass = Array.from({ length: K }, emptyTally);
  const partial = names.map((reader) => {
    const answers = [...byReader.get(reader)!.values()];
    const all = emptyTally();
    const perClass = Array.from({ length: K }, emptyTally);
    const right: number[] = [];
    const wrong: number[] = [];
    for (const a of answers) {
      const item = items.get(a.item)!;
      add(all, item, a.call);
      add(perClass[item.classIndex]!, item, a.call);
      add(pooledAll, item, a.call);
      add(pooledClass[item.classIndex]!, item, a.call);
      (a.call === item.truth ? right : wrong).push(a.confidence);
    }
    return {
      reader,
      answered: answers.length,
      complete: answers.length === items.size,
      ...rates(all, level),
      p: binomialTestHalf(all.right, all.n),
      perClass: perClass.map((t, k) => ({
        classIndex: k,
        className: input.classNames[k]!,
        ...rates(t, level),
      })),
      meanConfidence: meanOf(answers.map((a) => a.confidence)),
      confidenceRight: meanOf(right),
      confidenceWrong: meanOf(wrong),
      medianSeconds: median(answers.filter((a) => a.ms !== null).map((a) => a.ms! / 1000)),
    };
  });
  const adjusted = holmAdjust(partial.map((r) => r.p));
  const readers: ReaderStats[] = partial.map((r, i) => ({ ...r, pHolm: adjusted[i]! }));

  const cohen: PairKappa[] = [];
  for (let i = 0; i < names.length; i++)
    for (let j = i + 1; j < names.length; j++) {
      const a = byReader.get(names[i]!)!;
      const b = byReader.get(names[j]!)!;
      const common = [...a.keys()].filter((id) => b.has(id)).sort();
      cohen.push({
        a: names[i]!,
        b: names[j]!,
        ...cohenKappa(
          common.map((id) => a.get(id)!.call),
          common.map((id) => b.get(id)!.call),
        ),
      });
    }

  let fleiss: FleissKappa | null = null;
  if (names.length >= 2) {
    const everyone = [...items.keys()].filter((id) => names.every((r) => byReader.get(r)!.has(id)));
    const matrix = everyone.map((id) => {
      const row = [0, 0];
      for (const r of names) row[byReader.get(r)!.get(id)!.call === 'real' ? 0 : 1]!++;
      return row;
    });
    fleiss = { readers: names, ...fleissKappa(matrix) };
  }

  const pooled = {
    ...rates(pooledAll, level),
    perClass: pooledClass.map((t, k) => ({
      classIndex: k,
      className: input.classNames[k]!,
      ...rates(t, level),
    })),
  };
  const itemsPerClass = input.classNames.map((className, k) => {
    const mine = input.items.filter((it) => it.classIndex === k);
    return {
      className,
      real: mine.filter((it) => it.truth === 'real').length,
      synthetic: mine.filter((it) => it.truth === 'synthetic').length,
    };
  });
  return {
    level,
    alpha,
    items: items.size,
    itemsPerClass,
    answers: input.answers.length,
    readers,
    pooled,
    cohen,
    fleiss,
    verdict: verdictOf(readers, pooled, alpha, level),
  };
}
