/**
 * A study's results, summarised: per (generator, condition, classifier) cell the mean and 95 % interval of
 * each headline metric and of per-class precision, recall and F1; each cell compared with its baseline
 * (`real` under the same augmentation setting; `limited-f%` for a limited top-up) and with its controls
 * (`oversampled` and `rebalanced+shuffled` for `rebalanced`; the shuffled-label twin of `real+synthetic×r`);
 * the quality of each generator against its downstream effect; and plain-language verdicts.
 *
 * Statistics.
 * - Units. A cell's rows are (generator seed g, classifier seed s). With two or more generator seeds, the
 *   unit is the generator seed: each g's value is the mean over its classifier seeds, and intervals and the
 *   paired t test run over those per-generator-seed means — so a generator trained twice, not only a
 *   classifier trained twice, is in the interval. With one generator seed (or none), the unit is the
 *   classifier seed.
 * - Intervals: the 95 % Student-t interval of the mean over units; where it would leave the metric's range
 *   ([0, 1] for a metric, [−1, 1] for a difference) the t interval on the logit scale instead (`method`
 *   says which), so no interval is ever printed outside what the metric can be.
 * - Comparisons pair each row with the baseline's row of the same classifier seed (and generator seed, where
 *   the baseline has one): the paired t test on the per-unit differences, and McNemar's exact test on the
 *   test images with the discordant pairs pooled over all pairs; McNemar's p is Holm-adjusted over the
 *   comparisons of a (generator, classifier).
 * - A verdict (`judgeEffect`) rests on both tests and says which: an effect is called only when the t
 *   interval excludes 0 and McNemar is significant in the same direction; when exactly one of them says so,
 *   the verdict says which one and that the effect is not established; one unit → McNemar alone, and says so.
 * - Quality vs gain: Spearman's ρ over generator instances (whole-split generators, each generator seed one
 *   point) between each evaluation metric and each downstream difference, with an exact permutation p
 *   (n ≤ 9) and a Fisher-z interval (n ≥ 4).
 *
 * Written as `results.json` (everything) and `results.csv` (one line per job).
 */
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/fs.js';
import {
  boundedInterval,
  holmAdjust,
  mcnemar,
  mcnemarFromCounts,
  pairedTTest,
  spearman,
} from '../classify/statistics.js';
import {
  baselineOf,
  conditionName,
  controlsOf,
  isShuffled,
  parseCondition,
  usesSynthetic,
} from './conditions.js';
import { studyConditions, type StudyConfig } from './config.js';
import type { JobRow } from './store.js';

/** Headline metrics, by their key in a job's metrics. */
export const HEADLINE_METRICS = [
  'accuracy',
  'balancedAccuracy',
  'macroF1',
  'auc',
  'sensitivity',
  'specificity',
] as const;
export type HeadlineMetric = (typeof HEADLINE_METRICS)[number];

/** Downstream differences the quality-vs-gain analysis correlates with image quality. */
export const EFFECT_METRICS = ['accuracy', 'balancedAccuracy', 'minorityF1'] as const;
export type EffectMetric = (typeof EFFECT_METRICS)[number];

/** Image-quality figures of a generator instance (from its evaluation and the pool's class fidelity). */
export const QUALITY_METRICS = [
  'fid',
  'kid',
  'precision',
  'recall',
  'coverage',
  'msssimRatio',
  'classFidelity',
] as const;
export type QualityMetric = (typeof QUALITY_METRICS)[number];
/** Which direction is "better images" for each quality figure (MS-SSIM ratio: nearer 1, i.e. lower |log ratio|). */
export const QUALITY_BETTER: Readonly<Record<QualityMetric, 'lower' | 'higher'>> = {
  fid: 'lower',
  kid: 'lower',
  precision: 'higher',
  recall: 'higher',
  coverage: 'higher',
  msssimRatio: 'lower',
  classFidelity: 'higher',
};

export interface Interval {
  /** Units the interval is over (see the module comment). */
  readonly n: number;
  readonly mean: number;
  readonly std: number | null;
  /** 95 % interval of the mean ([mean, mean] for one unit). */
  readonly ci: readonly [number, number];
  /** `t`, or `logit-t` where the t interval would have left the metric's range. */
  readonly method: 't' | 'logit-t';
}

export type Direction = 'better' | 'worse' | 'none' | 'unclear';

/** Which tests a comparison's verdict rests on, and what they say together. */
export interface EffectJudgement {
  readonly direction: Direction;
  /** Why, naming the tests (a clause to follow a dash). */
  readonly basis: string;
}

export interface Comparison {
  /** The condition compared with (baseline or control) and its generator (null: generator-free). */
  readonly against: string;
  readonly againstGenerator: string | null;
  readonly role: 'baseline' | 'control';
  /** This cell minus the other, per unit. */
  readonly diff: Readonly<Record<EffectMetric, Interval | null>>;
  readonly pairedT: { readonly p: number | null; readonly t: number | null; readonly n: number };
  /** McNemar on the test images, discordant pairs summed over pairs: b = other right only, c = this right only. */
  readonly mcnemar: { readonly b: number; readonly c: number; readonly p: number };
  /** Holm-adjusted McNemar p over the comparisons of this (generator, classifier). */
  readonly pHolm: number | null;
  readonly judgement: EffectJudgement;
}

export interface PerClassSummary {
  readonly precision: readonly (Interval | null)[];
  readonly recall: readonly (Interval | null)[];
  readonly f1: readonly (Interval | null)[];
}

export interface CellSummary {
  /** The generator whose images the cell trained on; null for generator-free conditions. */
  readonly generator: string | null;
  readonly condition: string;
  readonly classifier: string;
  readonly seeds: readonly number[];
  readonly generatorSeeds: readonly number[];
  readonly units: 'classifier seeds' | 'generator seeds';
  readonly jobs: number;
  readonly trainReal: number;
  readonly trainSynthetic: number;
  readonly trainClassCounts: readonly number[];
  readonly metrics: Readonly<Record<HeadlineMetric, Interval | null>>;
  readonly minorityF1: Interval | null;
  readonly perClass: PerClassSummary;
  /** Mean confusion matrix over jobs (rows true classes). */
  readonly confusion: readonly (readonly number[])[];
  readonly comparisons: readonly Comparison[];
  readonly seconds: number;
}

export type VerdictQuestion =
  'replace' | 'augment' | 'controls' | 'limited' | 'augmentation' | 'classes' | 'quality';

export interface Verdict {
  readonly question: VerdictQuestion;
  readonly classifier: string | null;
  readonly generator: string | null;
  readonly text: string;
}

export interface JobLine {
  readonly generator: string | null;
  readonly generatorSeed: number | null;
  readonly condition: string;
  readonly classifier: string;
  readonly seed: number;
  readonly trainReal: number;
  readonly trainSynthetic: number;
  readonly values: Readonly<Record<HeadlineMetric, number | null>>;
  readonly perClassF1: readonly (number | null)[];
  readonly seconds: number;
}

export type Quality = Readonly<Record<QualityMetric, number | null>>;

const figure = z.number().nullable();

/**
 * What the study recorded about one generator instance (runner.ts writes it to the store; read back
 * through this schema, so a damaged record is an error naming the field, not a silent cast).
 */
export const InstanceRecordSchema = z
  .object({
    key: z.string(),
    generator: z.string(),
    generatorSeed: z.number().int(),
    /** The limited fraction it trained on; null for the whole train split. */
    fraction: z.number().nullable(),
    perClassModels: z.boolean(),
    existingRun: z.boolean(),
    runs: z.array(z.object({ dir: z.string(), checkpoint: z.string(), kimg: z.number() }).strict()),
    trainedOn: z
      .object({ images: z.number().int(), classCounts: z.array(z.number().int()), what: z.string() })
      .strict(),
    pool: z
      .object({ images: z.number().int(), seconds: z.number(), perClass: z.array(z.number().int()) })
      .strict(),
    fidelity: z.object({ accuracy: z.number(), balancedAccuracy: z.number() }).strict().nullable(),
    /** The evaluation folder, relative to the study directory (whole-split instances with evaluation on). */
    evaluation: z.string().nullable(),
    quality: z
      .object({
        fid: figure,
        kid: figure,
        precision: figure,
        recall: figure,
        coverage: figure,
        msssimRatio: figure,
        classFidelity: figure,
      })
      .strict()
      .nullable(),
  })
  .strict();
export type InstanceRecord = z.infer<typeof InstanceRecordSchema>;

export interface CorrelationCell {
  readonly quality: QualityMetric;
  readonly effect: EffectMetric;
  readonly condition: string;
  readonly classifier: string;
  readonly n: number;
  readonly rho: number | null;
  readonly p: number | null;
  readonly pMethod: string | null;
  readonly ci: readonly [number, number] | null;
}

/** Quality against downstream effect, over whole-split generator instances. */
export interface QualityVsGain {
  /** One point per (instance, condition, classifier): its quality and mean differences against the baseline. */
  readonly points: readonly {
    readonly instance: string;
    readonly generator: string;
    readonly generatorSeed: number;
    readonly condition: string;
    readonly classifier: string;
    readonly quality: Quality;
    readonly effect: Readonly<Record<EffectMetric, number | null>>;
  }[];
  readonly correlations: readonly CorrelationCell[];
}

export interface StudySummary {
  readonly format: 'medsynth-study-results';
  readonly version: 2;
  readonly createdAt: string;
  readonly config: StudyConfig;
  readonly classNames: readonly string[];
  readonly testCount: number;
  readonly testClassCounts: readonly number[];
  /** The class with the fewest real train images (minority F1 is its F1). */
  readonly minorityClass: number;
  readonly conditions: readonly string[];
  readonly classifiers: readonly string[];
  readonly generators: readonly string[];
  readonly instances: readonly InstanceRecord[];
  readonly cells: readonly CellSummary[];
  readonly qualityVsGain: QualityVsGain | null;
  readonly verdicts: readonly Verdict[];
  /** How the intervals and tests were made, in words (for the report). */
  readonly statistics: string;
  readonly jobs: readonly JobLine[];
  /** Jobs that failed (queued studies: after their retries, or at once for a deterministic error). */
  readonly failures: readonly JobFailure[];
}

/** A job that did not finish, and why. */
export interface JobFailure {
  /** The job id, or for a pool job the generator instance's key. */
  readonly id: string;
  readonly kind: 'pool' | 'classify';
  readonly error: string;
}

type Metrics = {
  accuracy: number;
  balancedAccuracy: number;
  macroF1: number | null;
  auc: number | null;
  binary: { sensitivity: number | null; specificity: number | null } | null;
  perClass: { precision: number | null; f1: number | null; recall: number | null }[];
  confusion: number[][];
};

const metricsOf = (r: JobRow) => r.metrics as unknown as Metrics;

/** One job's headline values: binary sensitivity/specificity, or their class-averaged forms for K > 2. */
export function headlineValues(m: Metrics): Record<HeadlineMetric, number | null> {
  return {
    accuracy: m.accuracy,
    balancedAccuracy: m.balancedAccuracy,
    macroF1: m.macroF1,
    auc: m.auc,
    sensitivity: m.binary ? m.binary.sensitivity : null,
    specificity: m.binary ? m.binary.specificity : null,
  };
}

function effectValue(m: Metrics, metric: EffectMetric, minority: number): number | null {
  return metric === 'minorityF1' ? (m.perClass[minority]?.f1 ?? null) : m[metric];
}

/** Interval of per-unit values, inside `range`. */
export function interval(
  values: readonly (number | null)[],
  range: readonly [number, number] = [0, 1],
): Interval | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  const b = boundedInterval(v, range);
  return { n: b.n, mean: b.mean, std: b.std, ci: [b.ci[0], b.ci[1]], method: b.method };
}

/**
 * Per-unit values of `value` over rows: per generator seed (each the mean over its classifier seeds) when
 * the rows span two or more generator seeds, else one per row.
 */
function unitValues<T>(
  rows: readonly T[],
  seedOf: (r: T) => number | null,
  value: (r: T) => number | null,
): (number | null)[] {
  const seeds = new Set(rows.map(seedOf).filter((g) => g !== null));
  if (seeds.size < 2) return rows.map(value);
  return [...seeds]
    .sort((a, b) => a! - b!)
    .map((g) => {
      const v = rows
        .filter((r) => seedOf(r) === g)
        .map(value)
        .filter((x): x is number => x !== null);
      return v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : null;
    });
}

function meanMatrix(ms: readonly number[][][]): number[][] {
  const k = ms[0]!.length;
  return Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) => ms.reduce((a, m) => a + m[i]![j]!, 0) / ms.length),
  );
}

const pct = (v: number) => `${(100 * v).toFixed(1)}`;
const pText = (p: number | null) => (p === null ? 'p n/a' : p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`);

/** `+1.2 points (95 % CI −0.3 to 2.7 over 3 classifier seeds)`. */
export function pointsText(i: Interval, units = 'seeds'): string {
  return `${i.mean >= 0 ? '+' : ''}${pct(i.mean)} points ${
    i.n > 1
      ? `(95 % CI ${pct(i.ci[0])} to ${pct(i.ci[1])}${i.method === 'logit-t' ? ', logit scale' : ''}, ${i.n} ${units})`
      : `(one ${units.replace(/s$/, '')}: no interval)`
  }`;
}

/**
 * What a difference and McNemar's test say together (see the module comment): `better`/`worse` only when
 * the interval over units excludes 0 and McNemar (Holm) is significant in the same direction; `unclear`
 * when only one of them says so (or they disagree in direction); `none` when neither does. With one unit,
 * McNemar alone decides, and the basis says there is no interval.
 */
export function judgeEffect(
  diff: Interval | null,
  test: { readonly b: number; readonly c: number; readonly pHolm: number | null },
  units = 'seeds',
  alpha = 0.05,
): EffectJudgement {
  const p = test.pHolm;
  const significant = p !== null && p < alpha;
  const mcnemarSays: Direction = !significant ? 'none' : test.c > test.b ? 'better' : 'worse';
  const mc = `McNemar's test on the pooled test images ${significant ? 'is significant' : 'is not significant'} (${pText(p)}, Holm-adjusted)`;
  if (!diff || diff.n < 2)
    return {
      direction: mcnemarSays,
      basis: `${mc}; one ${units.replace(/s$/, '')}, so no interval over ${units}`,
    };
  const excludes = diff.ci[0] > 0 || diff.ci[1] < 0;
  const intervalSays: Direction = !excludes ? 'none' : diff.ci[0] > 0 ? 'better' : 'worse';
  const iv = `the 95 % interval over ${diff.n} ${units} (paired t) ${excludes ? 'excludes' : 'spans'} 0`;
  if (intervalSays !== 'none' && intervalSays === mcnemarSays)
    return { direction: intervalSays, basis: `both tests agree: ${iv} and ${mc}` };
  if (intervalSays === 'none' && mcnemarSays === 'none')
    return { direction: 'none', basis: `neither test finds a difference: ${iv} and ${mc}` };
  if (intervalSays !== 'none' && mcnemarSays !== 'none')
    return { direction: 'unclear', basis: `the tests disagree in direction: ${iv} and ${mc}` };
  return {
    direction: 'unclear',
    basis:
      intervalSays === 'none'
        ? `${mc}, but ${iv}: the difference does not hold across ${units}, so it is not established`
        : `${iv}, but ${mc}: a consistent but small difference, not established`,
  };
}

const DIRECTION_WORDS: Readonly<Record<Direction, string>> = {
  better: 'better',
  worse: 'worse',
  none: 'no clear difference',
  unclear: 'not established',
};

/** Rows of a comparison, paired: each row of `a` with `b`'s row of the same seed and generator seed (or any). */
function pairRows(a: readonly JobRow[], b: readonly JobRow[]): [JobRow, JobRow][] {
  const pairs: [JobRow, JobRow][] = [];
  for (const r of a) {
    const m =
      b.find((x) => x.seed === r.seed && x.generatorSeed === r.generatorSeed) ??
      b.find((x) => x.seed === r.seed && x.generatorSeed === null);
    if (m) pairs.push([r, m]);
  }
  return pairs;
}

function compare(
  rows: readonly JobRow[],
  other: readonly JobRow[],
  role: Comparison['role'],
  minority: number,
): Omit<Comparison, 'pHolm' | 'judgement'> | null {
  const pairs = pairRows(rows, other);
  if (pairs.length === 0) return null;
  const seedOf = ([r]: [JobRow, JobRow]) => r.generatorSeed;
  const diff = Object.fromEntries(
    EFFECT_METRICS.map((metric) => {
      const d = ([r, o]: [JobRow, JobRow]) => {
        const x = effectValue(metricsOf(r), metric, minority);
        const y = effectValue(metricsOf(o), metric, minority);
        return x === null || y === null ? null : x - y;
      };
      return [metric, interval(unitValues(pairs, seedOf, d), [-1, 1])];
    }),
  ) as Record<EffectMetric, Interval | null>;
  const acc = (r: JobRow) => metricsOf(r).accuracy;
  const a = unitValues(pairs, seedOf, ([r]) => acc(r)) as number[];
  const b = unitValues(pairs, seedOf, ([, o]) => acc(o)) as number[];
  const t = pairedTTest(a, b);
  let bOnly = 0;
  let cOnly = 0;
  for (const [r, o] of pairs) {
    const m = mcnemar(o.correct, r.correct);
    bOnly += m.b;
    cOnly += m.c;
  }
  return {
    against: other[0]!.condition,
    againstGenerator: other[0]!.generator,
    role,
    diff,
    pairedT: { p: t.p, t: t.t, n: t.n },
    mcnemar: { b: bOnly, c: cOnly, p: mcnemarFromCounts(bOnly, cOnly).pExact },
  };
}

function cellOf(rows: readonly JobRow[], k: number, minority: number): Omit<CellSummary, 'comparisons'> {
  const first = rows[0]!;
  const seedOf = (r: JobRow) => r.generatorSeed;
  const generatorSeeds = [...new Set(rows.map(seedOf).filter((g): g is number => g !== null))].sort(
    (a, b) => a - b,
  );
  const per = (value: (m: Metrics) => number | null) =>
    interval(unitValues(rows, seedOf, (r) => value(metricsOf(r))));
  return {
    generator: first.generator,
    condition: first.condition,
    classifier: first.classifier,
    seeds: [...new Set(rows.map((r) => r.seed))].sort((a, b) => a - b),
    generatorSeeds,
    units: generatorSeeds.length >= 2 ? 'generator seeds' : 'classifier seeds',
    jobs: rows.length,
    trainReal: first.trainReal,
    trainSynthetic: first.trainSynthetic,
    trainClassCounts: first.trainClassCounts,
    metrics: Object.fromEntries(
      HEADLINE_METRICS.map((key) => [key, per((m) => headlineValues(m)[key])]),
    ) as Record<HeadlineMetric, Interval | null>,
    minorityF1: per((m) => m.perClass[minority]?.f1 ?? null),
    perClass: {
      precision: Array.from({ length: k }, (_, c) => per((m) => m.perClass[c]?.precision ?? null)),
      recall: Array.from({ length: k }, (_, c) => per((m) => m.perClass[c]?.recall ?? null)),
      f1: Array.from({ length: k }, (_, c) => per((m) => m.perClass[c]?.f1 ?? null)),
    },
    confusion: meanMatrix(rows.map((r) => metricsOf(r).confusion)),
    seconds: rows.reduce((s, r) => s + r.seconds, 0),
  };
}

const cellKey = (generator: string | null, condition: string, classifier: string) =>
  `${generator ?? '-'}|${condition}|${classifier}`;

/** The cells of generator-free conditions compared with, and the cell's own generator's for controls. */
function comparisonsOf(
  cell: Omit<CellSummary, 'comparisons'>,
  groups: ReadonlyMap<string, JobRow[]>,
  minority: number,
): Omit<Comparison, 'pHolm' | 'judgement'>[] {
  const condition = parseCondition(cell.condition);
  const out: Omit<Comparison, 'pHolm' | 'judgement'>[] = [];
  const rows = groups.get(cellKey(cell.generator, cell.condition, cell.classifier))!;
  const add = (other: ReturnType<typeof baselineOf>, role: Comparison['role']) => {
    if (!other) return;
    const name = conditionName(other);
    const found = groups.get(cellKey(usesSynthetic(other) ? cell.generator : null, name, cell.classifier));
    if (!found) return;
    const c = compare(rows, found, role, minority);
    if (c) out.push(c);
  };
  add(baselineOf(condition), 'baseline');
  for (const c of controlsOf(condition)) add(c, 'control');
  return out;
}

/** Summaries, comparisons, the quality-vs-gain analysis and verdicts of a study's finished jobs. */
export function summariseStudy(
  config: StudyConfig,
  classNames: readonly string[],
  testLabels: Int32Array,
  rows: readonly JobRow[],
  instances: readonly InstanceRecord[] = [],
  trainClassCounts?: readonly number[],
  failures: readonly JobFailure[] = [],
): StudySummary {
  const k = classNames.length;
  const realCounts = trainClassCounts ?? rows.find((r) => r.condition === 'real')?.trainClassCounts ?? [];
  const minority = realCounts.length === k ? realCounts.indexOf(Math.min(...realCounts)) : 0;
  const configured = studyConditions(config).map((c) => c.name);
  const found = new Set(rows.map((r) => r.condition));
  const conditions = [
    ...configured.filter((c) => found.has(c)),
    ...[...found].filter((c) => !configured.includes(c)),
  ];
  const classifiers = [...new Set(rows.map((r) => r.classifier))];
  const generators = config.generators.map((g) => g.name);
  const groups = new Map<string, JobRow[]>();
  for (const r of rows) {
    const key = cellKey(r.generator, r.condition, r.classifier);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const partial = [...groups.values()].map((g) => {
    const c = cellOf(g, k, minority);
    return { cell: c, comparisons: comparisonsOf(c, groups, minority) };
  });
  // Holm over the comparisons of each (generator, classifier).
  const families = new Map<string, { i: number; j: number; p: number }[]>();
  partial.forEach(({ cell, comparisons }, i) =>
    comparisons.forEach((c, j) => {
      const key = `${cell.generator ?? '-'}|${cell.classifier}`;
      families.set(key, [...(families.get(key) ?? []), { i, j, p: c.mcnemar.p }]);
    }),
  );
  const adjusted = new Map<string, number | null>();
  for (const list of families.values()) {
    const ps = holmAdjust(list.map((x) => x.p));
    list.forEach((x, n) => adjusted.set(`${x.i}|${x.j}`, ps[n] ?? null));
  }
  const cells: CellSummary[] = partial.map(({ cell, comparisons }, i) => ({
    ...cell,
    comparisons: comparisons.map((c, j) => {
      const pHolm = adjusted.get(`${i}|${j}`) ?? null;
      return {
        ...c,
        pHolm,
        judgement: judgeEffect(c.diff.accuracy, { b: c.mcnemar.b, c: c.mcnemar.c, pHolm }, cell.units),
      };
    }),
  }));
  const order = (list: readonly (string | null)[], x: string | null) => list.indexOf(x);
  const genOrder = [null, ...generators];
  cells.sort(
    (a, b) =>
      order(classifiers, a.classifier) - order(classifiers, b.classifier) ||
      order(genOrder, a.generator) - order(genOrder, b.generator) ||
      order(conditions, a.condition) - order(conditions, b.condition),
  );
  const testClassCounts = new Array<number>(k).fill(0);
  for (const l of testLabels) testClassCounts[l]!++;
  const qualityVsGain = qualityAgainstGain(instances, rows, minority);
  return {
    format: 'medsynth-study-results',
    version: 2,
    createdAt: new Date().toISOString(),
    config,
    classNames,
    testCount: testLabels.length,
    testClassCounts,
    minorityClass: minority,
    conditions,
    classifiers,
    generators,
    instances,
    cells,
    qualityVsGain,
    verdicts: verdicts(cells, classNames, qualityVsGain, minority),
    statistics: statisticsText(config),
    jobs: rows.map((r) => {
      const m = metricsOf(r);
      return {
        generator: r.generator,
        generatorSeed: r.generatorSeed,
        condition: r.condition,
        classifier: r.classifier,
        seed: r.seed,
        trainReal: r.trainReal,
        trainSynthetic: r.trainSynthetic,
        values: headlineValues(m),
        perClassF1: m.perClass.map((p) => p.f1),
        seconds: r.seconds,
      };
    }),
    failures: [...failures],
  };
}

function statisticsText(config: StudyConfig): string {
  const units =
    config.generatorSeeds >= 2
      ? `Each generator was trained ${config.generatorSeeds} times (generator seeds); conditions with synthetic images are summarised over generator seeds (each the mean over ${config.seeds.length} classifier seed${config.seeds.length === 1 ? '' : 's'}), so generator-to-generator variance is in their intervals. Conditions without a generator are summarised over classifier seeds.`
      : `Each generator was trained once, so intervals are over the ${config.seeds.length} classifier seed${config.seeds.length === 1 ? '' : 's'} and do not include generator-to-generator variance (set generatorSeeds ≥ 2 for that).`;
  const limited =
    config.generatorSeeds < 2 && studyConditions(config).some(({ condition }) => condition.kind === 'limited')
      ? " Limited subsets are chosen by the generator seed (the subset its generator trained on), so with one generator seed every classifier seed trains on the same subset and the limited rows' intervals do not include subset-to-subset variance."
      : '';
  return `${units}${limited} Intervals are 95 % Student-t intervals of the mean, computed on the logit scale where the t interval would leave the metric's range. Comparisons pair jobs of the same classifier seed (and generator seed); each verdict rests on the paired t interval and on McNemar's exact test on the pooled test images (Holm-adjusted over a generator's and classifier's comparisons) and calls an effect only when both agree.${config.equalSteps ? ' Every deep classifier trained for the same number of optimiser steps in every condition (equalSteps).' : ''}`;
}

/** Quality of whole-split instances against their mean downstream differences with the baseline. */
function qualityAgainstGain(
  instances: readonly InstanceRecord[],
  rows: readonly JobRow[],
  minority: number,
): QualityVsGain | null {
  const scored = instances.filter((i) => i.fraction === null && i.quality !== null);
  if (scored.length === 0) return null;
  const points: QualityVsGain['points'][number][] = [];
  const byCell = new Map<string, JobRow[]>();
  for (const r of rows) {
    const key = `${r.generator ?? '-'}|${r.generatorSeed ?? '-'}|${r.condition}|${r.classifier}`;
    byCell.set(key, [...(byCell.get(key) ?? []), r]);
  }
  for (const inst of scored)
    for (const [key, mine] of byCell) {
      if (!key.startsWith(`${inst.generator}|${inst.generatorSeed}|`)) continue;
      const { condition, classifier } = mine[0]!;
      // Conditions with a synthetic effect on the whole split; not the limited top-ups (another generator) nor
      // the shuffled-label controls (their images' content is scrambled on purpose).
      const parsed = parseCondition(condition);
      const base = baselineOf(parsed);
      if (!base || parsed.kind === 'limited' || isShuffled(parsed)) continue;
      const baseRows = rows.filter(
        (r) => r.generator === null && r.condition === conditionName(base) && r.classifier === classifier,
      );
      const pairs = pairRows(mine, baseRows);
      if (pairs.length === 0) continue;
      const effect = Object.fromEntries(
        EFFECT_METRICS.map((metric) => {
          const d = pairs
            .map(([r, o]) => {
              const x = effectValue(metricsOf(r), metric, minority);
              const y = effectValue(metricsOf(o), metric, minority);
              return x === null || y === null ? null : x - y;
            })
            .filter((x): x is number => x !== null);
          return [metric, d.length > 0 ? d.reduce((a, b) => a + b, 0) / d.length : null];
        }),
      ) as Record<EffectMetric, number | null>;
      points.push({
        instance: inst.key,
        generator: inst.generator,
        generatorSeed: inst.generatorSeed,
        condition,
        classifier,
        quality: inst.quality!,
        effect,
      });
    }
  const correlations: CorrelationCell[] = [];
  const combos = new Map<string, typeof points>();
  for (const p of points) {
    const key = `${p.condition}|${p.classifier}`;
    combos.set(key, [...(combos.get(key) ?? []), p]);
  }
  for (const list of combos.values())
    for (const quality of QUALITY_METRICS)
      for (const effect of EFFECT_METRICS) {
        const both = list.filter((p) => p.quality[quality] !== null && p.effect[effect] !== null);
        const x = both.map((p) => p.quality[quality]!);
        const y = both.map((p) => p.effect[effect]!);
        const s = both.length >= 3 ? spearman(x, y) : null;
        correlations.push({
          quality,
          effect,
          condition: list[0]!.condition,
          classifier: list[0]!.classifier,
          n: both.length,
          rho: s?.rho ?? null,
          p: s?.p ?? null,
          pMethod: s?.pMethod ?? null,
          ci: s?.ci ?? null,
        });
      }
  return { points, correlations };
}

/** ` Sensitivity a → b %, specificity c → d %.` from `from` to `to` (binary tasks), or ''. */
function sensSpecChange(from: CellSummary | undefined, to: CellSummary): string {
  const [s0, s1, p0, p1] = [
    from?.metrics.sensitivity,
    to.metrics.sensitivity,
    from?.metrics.specificity,
    to.metrics.specificity,
  ];
  return s0 && s1 && p0 && p1
    ? ` Sensitivity ${pct(s0.mean)} → ${pct(s1.mean)} %, specificity ${pct(p0.mean)} → ${pct(p1.mean)} %.`
    : '';
}

function verdicts(
  cells: readonly CellSummary[],
  classNames: readonly string[],
  qvg: QualityVsGain | null,
  minority: number,
): Verdict[] {
  const out: Verdict[] = [];
  const find = (generator: string | null, condition: string, classifier: string) =>
    cells.find((c) => c.generator === generator && c.condition === condition && c.classifier === classifier);
  const who = (c: CellSummary) => `${c.classifier}${c.generator ? ` × ${c.generator}` : ''}`;
  const sentence = (c: CellSummary, cmp: Comparison, what: string) =>
    `${who(c)}: ${what} changed accuracy by ${pointsText(cmp.diff.accuracy!, c.units)} against ${cmp.against} — ${DIRECTION_WORDS[cmp.judgement.direction]}: ${cmp.judgement.basis}.`;
  const baseline = (c: CellSummary) => c.comparisons.find((x) => x.role === 'baseline' && x.diff.accuracy);

  for (const c of cells) {
    const b = baseline(c);
    if (!b) continue;
    const cond = parseCondition(c.condition);
    if (cond.kind === 'synthetic') {
      out.push({
        question: 'replace',
        classifier: c.classifier,
        generator: c.generator,
        text: sentence(c, b, 'training only on synthetic images'),
      });
    } else if (cond.kind === 'limited' && cond.topUp) {
      out.push({
        question: 'limited',
        classifier: c.classifier,
        generator: c.generator,
        text: `${sentence(c, b, `a synthetic top-up of ${c.condition.replace(/^limited-/, '').replace(/\+synthetic.*$/, '')} of the real images`)}${sensSpecChange(
          find(null, b.against, c.classifier),
          c,
        )}`,
      });
    } else if ((cond.kind === 'augmented' || cond.kind === 'rebalanced') && !cond.shuffled) {
      const extra = sensSpecChange(find(null, b.against, c.classifier), c);
      out.push({
        question: 'augment',
        classifier: c.classifier,
        generator: c.generator,
        text: `${sentence(c, b, c.condition)}${extra}`,
      });
      const controls = c.comparisons.filter((x) => x.role === 'control' && x.diff.accuracy);
      if (controls.length > 0) {
        const beatsAll = controls.every((x) => x.judgement.direction === 'better');
        const parts = controls
          .map(
            (x) =>
              `${x.against} ${pointsText(x.diff.accuracy!, c.units)}, ${DIRECTION_WORDS[x.judgement.direction]}`,
          )
          .join('; ');
        out.push({
          question: 'controls',
          classifier: c.classifier,
          generator: c.generator,
          text: `${who(c)}: ${c.condition} against its controls — ${parts}. ${
            beatsAll
              ? 'It beats every control, so the gain comes from the synthetic images’ content, not from more steps or balanced batches.'
              : b.judgement.direction === 'better'
                ? 'It does not beat every control, so its gain over real data may come from more steps, balanced batches or the label mix rather than the synthetic content.'
                : 'No gain over real data to attribute.'
          }`,
        });
      }
    } else if (cond.kind === 'real' && !cond.augment) {
      // Reported from the augmented side below.
    }
  }
  // Classic augmentation: real vs real:noaug, and limited with vs without.
  for (const c of cells) {
    const cond = parseCondition(c.condition);
    if (
      c.generator !== null ||
      !cond.augment ||
      (cond.kind !== 'real' && !(cond.kind === 'limited' && !cond.topUp))
    )
      continue;
    const plain = find(null, `${c.condition}:noaug`, c.classifier);
    if (!plain?.metrics.accuracy || !c.metrics.accuracy) continue;
    const d = c.metrics.accuracy.mean - plain.metrics.accuracy.mean;
    out.push({
      question: 'augmentation',
      classifier: c.classifier,
      generator: null,
      text: `${c.classifier}: on ${c.condition}, classic augmentation moved accuracy from ${pct(plain.metrics.accuracy.mean)} to ${pct(c.metrics.accuracy.mean)} % (${d >= 0 ? '+' : ''}${pct(d)} points, means over ${c.metrics.accuracy.n} ${c.units}).`,
    });
  }
  // Per-class F1 under rebalancing.
  for (const c of cells) {
    if (c.condition !== 'rebalanced') continue;
    const real = find(null, 'real', c.classifier);
    if (!real) continue;
    const changes = classNames
      .map((name, k) => {
        const a = real.perClass.f1[k];
        const b = c.perClass.f1[k];
        return a && b ? `${name} ${pct(a.mean)} → ${pct(b.mean)}` : null;
      })
      .filter((x): x is string => x !== null);
    if (changes.length > 0)
      out.push({
        question: 'classes',
        classifier: c.classifier,
        generator: c.generator,
        text: `${who(c)}: rebalancing with synthetic images changed per-class F1 (%): ${changes.join(', ')} (minority class: ${classNames[minority]}).`,
      });
  }
  if (qvg) out.push(...qualityVerdicts(qvg));
  return out;
}

/** One sentence per (condition, classifier): did lower FID go with larger accuracy gains? */
function qualityVerdicts(qvg: QualityVsGain): Verdict[] {
  const out: Verdict[] = [];
  const fid = qvg.correlations.filter((c) => c.quality === 'fid' && c.effect === 'accuracy');
  const tested = fid.filter((c) => c.rho !== null);
  if (tested.length === 0) {
    const n = Math.max(0, ...fid.map((c) => c.n));
    return [
      {
        question: 'quality',
        classifier: null,
        generator: null,
        text: `Quality vs gain needs three or more evaluated generator instances (generators × generator seeds) with FID and downstream results; this study has ${n}.`,
      },
    ];
  }
  for (const c of tested) {
    const rho = c.rho!;
    const generators = new Set(
      qvg.points
        .filter((p) => p.condition === c.condition && p.classifier === c.classifier)
        .map((p) => p.generator),
    );
    // Lower FID is better, so "better images, better classifiers" is a negative ρ.
    const agree = rho < 0;
    const sig = c.p !== null && c.p < 0.05;
    const ci = c.ci ? `, 95 % CI ${c.ci[0].toFixed(2)} to ${c.ci[1].toFixed(2)}` : '';
    out.push({
      question: 'quality',
      classifier: c.classifier,
      generator: null,
      text: `${c.classifier}, ${c.condition}: over ${c.n} generator instances (${generators.size} generator${generators.size === 1 ? '' : 's'}), Spearman's ρ between FID and the accuracy change is ${rho.toFixed(2)} (${c.pMethod === 'exact-permutation' ? 'exact permutation' : 't-approximation'} ${pText(c.p)}${ci}) — ${
        sig
          ? agree
            ? 'better images (lower FID) went with better classifiers here'
            : 'better images (lower FID) went with worse classifiers here'
          : `${agree ? 'lower FID tended to go with larger gains' : 'lower FID did not go with larger gains'}, but not significantly: with ${c.n} points this study cannot say whether better images meant better classifiers`
      }.`,
    });
  }
  return out;
}

/** `results.csv`: one line per job (empty cells for metrics that do not apply, RFC 4180 quoting). */
export function resultsCsv(summary: StudySummary): string {
  const header = [
    'generator',
    'generator_seed',
    'condition',
    'classifier',
    'seed',
    'train_real',
    'train_synthetic',
    ...HEADLINE_METRICS.map((m) => m.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)),
    ...summary.classNames.map((n) => `f1_${n}`),
    'seconds',
  ];
  const rows = summary.jobs.map((j) => [
    j.generator ?? '',
    j.generatorSeed ?? '',
    j.condition,
    j.classifier,
    j.seed,
    j.trainReal,
    j.trainSynthetic,
    ...HEADLINE_METRICS.map((m) => j.values[m]),
    ...j.perClassF1,
    Number(j.seconds.toFixed(3)),
  ]);
  return stringify([header, ...rows], { record_delimiter: 'unix' });
}

export async function writeResults(dir: string, summary: StudySummary): Promise<void> {
  await writeFileAtomic(join(dir, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);
  await writeFileAtomic(join(dir, 'results.csv'), resultsCsv(summary));
}
