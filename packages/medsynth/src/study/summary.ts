/**
 * A study's results, summarised: per (condition, classifier) the mean and 95 % interval over seeds of each
 * headline metric, per-class F1, and the comparison with the real-data baseline of the same classifier
 * (paired t-test across seeds on accuracy; McNemar's exact test on the test images, discordant pairs pooled
 * over seeds; Holm-adjusted over the conditions of a classifier). Then plain-language verdicts for the
 * study's questions: can synthetic images replace real ones, do they help when added, for which classes.
 *
 * Written as `results.json` (everything) and `results.csv` (one line per job).
 */
import { stringify } from 'csv-stringify/sync';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/fs.js';
import { holmAdjust, mcnemar, mcnemarFromCounts, pairedTTest, summarise } from '../classify/statistics.js';
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

export interface Interval {
  readonly n: number;
  readonly mean: number;
  readonly std: number | null;
  /** 95 % Student-t interval of the mean over seeds ([mean, mean] for one seed). */
  readonly ci: readonly [number, number];
}

export interface VersusReal {
  /** Accuracy minus the real baseline's, over the seeds both have. */
  readonly accuracyDiff: Interval | null;
  readonly pairedT: { readonly p: number | null; readonly t: number | null; readonly n: number };
  /** McNemar on the test images, discordant pairs summed over seeds: b = baseline right only, c = this right only. */
  readonly mcnemar: { readonly b: number; readonly c: number; readonly p: number };
  /** Holm-adjusted McNemar p over this classifier's conditions. */
  readonly pHolm: number | null;
}

export interface CellSummary {
  readonly condition: string;
  readonly classifier: string;
  readonly seeds: readonly number[];
  readonly trainReal: number;
  readonly trainSynthetic: number;
  readonly trainClassCounts: readonly number[];
  readonly metrics: Readonly<Record<HeadlineMetric, Interval | null>>;
  /** Mean F1 of each class over seeds (null where a seed's F1 was undefined). */
  readonly perClassF1: readonly (Interval | null)[];
  readonly perClassRecall: readonly (Interval | null)[];
  /** Mean confusion matrix over seeds (rows true classes). */
  readonly confusion: readonly (readonly number[])[];
  readonly vsReal: VersusReal | null;
  readonly seconds: number;
}

export interface Verdict {
  readonly question: 'replace' | 'augment' | 'limited' | 'classes';
  readonly classifier: string;
  readonly text: string;
}

export interface JobLine {
  readonly condition: string;
  readonly classifier: string;
  readonly seed: number;
  readonly trainReal: number;
  readonly trainSynthetic: number;
  readonly values: Readonly<Record<HeadlineMetric, number | null>>;
  readonly perClassF1: readonly (number | null)[];
  readonly seconds: number;
}

export interface StudySummary {
  readonly format: 'medsynth-study-results';
  readonly version: 1;
  readonly createdAt: string;
  readonly config: StudyConfig;
  readonly classNames: readonly string[];
  readonly testCount: number;
  readonly testClassCounts: readonly number[];
  readonly conditions: readonly string[];
  readonly classifiers: readonly string[];
  readonly cells: readonly CellSummary[];
  readonly verdicts: readonly Verdict[];
  readonly jobs: readonly JobLine[];
  /**
   * The synthetic pool the jobs drew from: its size and the seconds its sampling took (the last time it was
   * made: a resumed study samples it again). Absent in results written before it was recorded.
   */
  readonly pool?: PoolTiming | undefined;
}

export interface PoolTiming {
  readonly images: number;
  readonly seconds: number;
}

type Metrics = {
  accuracy: number;
  balancedAccuracy: number;
  macroF1: number | null;
  auc: number | null;
  binary: { sensitivity: number | null; specificity: number | null } | null;
  perClass: { f1: number | null; recall: number | null }[];
  confusion: number[][];
};

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

function interval(values: readonly (number | null)[]): Interval | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  const s = summarise(v);
  return { n: s.n, mean: s.mean, std: v.length > 1 ? s.std : null, ci: [s.ci[0], s.ci[1]] };
}

function meanMatrix(ms: readonly number[][][]): number[][] {
  const k = ms[0]!.length;
  return Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) => ms.reduce((a, m) => a + m[i]![j]!, 0) / ms.length),
  );
}

function cell(
  rows: readonly JobRow[],
  baseline: readonly JobRow[] | null,
  k: number,
): Omit<CellSummary, 'vsReal'> & {
  versus: Omit<VersusReal, 'pHolm'> | null;
} {
  const first = rows[0]!;
  const metrics = rows.map((r) => r.metrics as unknown as Metrics);
  const values = metrics.map(headlineValues);
  const headline = Object.fromEntries(
    HEADLINE_METRICS.map((key) => [key, interval(values.map((v) => v[key]))]),
  ) as Record<HeadlineMetric, Interval | null>;
  let versus: Omit<VersusReal, 'pHolm'> | null = null;
  if (baseline) {
    const bySeed = new Map(baseline.map((r) => [r.seed, r]));
    const paired = rows.filter((r) => bySeed.has(r.seed));
    const a = paired.map((r) => (r.metrics as unknown as Metrics).accuracy);
    const b = paired.map((r) => (bySeed.get(r.seed)!.metrics as unknown as Metrics).accuracy);
    const t = pairedTTest(a, b);
    let bOnly = 0;
    let cOnly = 0;
    for (const r of paired) {
      const base = bySeed.get(r.seed)!;
      const m = mcnemar(base.correct, r.correct);
      bOnly += m.b;
      cOnly += m.c;
    }
    const pooled = mcnemarFromCounts(bOnly, cOnly);
    versus = {
      accuracyDiff: interval(a.map((x, i) => x - b[i]!)),
      pairedT: { p: t.p, t: t.t, n: t.n },
      mcnemar: { b: bOnly, c: cOnly, p: pooled.pExact },
    };
  }
  return {
    condition: first.condition,
    classifier: first.classifier,
    seeds: rows.map((r) => r.seed),
    trainReal: first.trainReal,
    trainSynthetic: first.trainSynthetic,
    trainClassCounts: first.trainClassCounts,
    metrics: headline,
    perClassF1: Array.from({ length: k }, (_, c) => interval(metrics.map((m) => m.perClass[c]?.f1 ?? null))),
    perClassRecall: Array.from({ length: k }, (_, c) =>
      interval(metrics.map((m) => m.perClass[c]?.recall ?? null)),
    ),
    confusion: meanMatrix(metrics.map((m) => m.confusion)),
    seconds: rows.reduce((s, r) => s + r.seconds, 0),
    versus,
  };
}

const pct = (v: number) => `${(100 * v).toFixed(1)}`;
const pts = (i: Interval) =>
  `${i.mean >= 0 ? '+' : ''}${pct(i.mean)} points ${
    i.n > 1 ? `(95 % CI ${pct(i.ci[0])} to ${pct(i.ci[1])}, ${i.n} seeds)` : '(one seed: no interval)'
  }`;
const pText = (p: number | null) => (p === null ? 'p n/a' : p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`);

function verdicts(cells: readonly CellSummary[], classNames: readonly string[]): Verdict[] {
  const out: Verdict[] = [];
  const byClassifier = new Map<string, CellSummary[]>();
  for (const c of cells) byClassifier.set(c.classifier, [...(byClassifier.get(c.classifier) ?? []), c]);
  for (const [classifier, list] of byClassifier) {
    const real = list.find((c) => c.condition === 'real');
    if (!real?.metrics.accuracy) continue;
    const significant = (c: CellSummary) => (c.vsReal?.pHolm ?? 1) < 0.05;
    const synth = list.find((c) => c.condition === 'synthetic');
    if (synth?.vsReal?.accuracyDiff) {
      const d = synth.vsReal.accuracyDiff;
      const verdict =
        d.ci[1] < 0 && significant(synth)
          ? 'synthetic images cannot fully replace real ones here'
          : d.mean >= -0.01
            ? 'synthetic-only training came close to real training'
            : 'the loss is not statistically clear over these seeds';
      out.push({
        question: 'replace',
        classifier,
        text: `${classifier}: training only on synthetic images changed accuracy by ${pts(d)} against real images (${pText(synth.vsReal.pHolm)}, Holm-adjusted McNemar) — ${verdict}.`,
      });
    }
    const added = list.filter(
      (c) => c.condition.startsWith('real+synthetic') || c.condition === 'rebalanced',
    );
    const best = added
      .filter((c) => c.vsReal?.accuracyDiff)
      .sort((a, b) => b.vsReal!.accuracyDiff!.mean - a.vsReal!.accuracyDiff!.mean)[0];
    if (best) {
      const d = best.vsReal!.accuracyDiff!;
      const sens = best.metrics.sensitivity;
      const spec = best.metrics.specificity;
      const extra =
        sens && spec && real.metrics.sensitivity && real.metrics.specificity
          ? ` Sensitivity ${pct(real.metrics.sensitivity.mean)} → ${pct(sens.mean)} %, specificity ${pct(real.metrics.specificity.mean)} → ${pct(spec.mean)} %.`
          : '';
      const verdict =
        d.ci[0] > 0 && significant(best)
          ? 'adding synthetic images helped'
          : d.ci[1] < 0 && significant(best)
            ? 'adding synthetic images hurt'
            : 'no clear effect over these seeds';
      out.push({
        question: 'augment',
        classifier,
        text: `${classifier}: the best augmented condition, ${best.condition}, changed accuracy by ${pts(d)} (${pText(best.vsReal!.pHolm)}) — ${verdict}.${extra}`,
      });
    }
    for (const lim of list.filter((c) => /^limited-[\d.]+%$/.test(c.condition))) {
      const topped = list.find((c) => c.condition === `${lim.condition}+synthetic`);
      if (!topped?.metrics.accuracy || !lim.metrics.accuracy) continue;
      const diff = topped.metrics.accuracy.mean - lim.metrics.accuracy.mean;
      out.push({
        question: 'limited',
        classifier,
        text: `${classifier}: with ${lim.condition.replace('limited-', '')} of the real images, a synthetic top-up moved accuracy from ${pct(lim.metrics.accuracy.mean)} to ${pct(topped.metrics.accuracy.mean)} % (${diff >= 0 ? '+' : ''}${pct(diff)} points; full real data: ${pct(real.metrics.accuracy.mean)} %).`,
      });
    }
    const rebalanced = list.find((c) => c.condition === 'rebalanced');
    if (rebalanced) {
      const changes = classNames
        .map((name, k) => {
          const a = real.perClassF1[k];
          const b = rebalanced.perClassF1[k];
          return a && b ? { name, from: a.mean, to: b.mean } : null;
        })
        .filter((x): x is { name: string; from: number; to: number } => x !== null)
        .sort((x, y) => y.to - y.from - (x.to - x.from));
      if (changes.length > 0) {
        const list2 = changes.map((c) => `${c.name} ${pct(c.from)} → ${pct(c.to)}`).join(', ');
        out.push({
          question: 'classes',
          classifier,
          text: `${classifier}: rebalancing with synthetic images changed per-class F1 (%): ${list2}; accuracy ${pct(real.metrics.accuracy.mean)} → ${rebalanced.metrics.accuracy ? pct(rebalanced.metrics.accuracy.mean) : 'n/a'} %.`,
        });
      }
    }
  }
  return out;
}

/** Summaries, comparisons and verdicts of a study's finished jobs. */
export function summariseStudy(
  config: StudyConfig,
  classNames: readonly string[],
  testLabels: Int32Array,
  rows: readonly JobRow[],
  pool?: PoolTiming,
): StudySummary {
  const k = classNames.length;
  const configured = studyConditions(config).map((c) => c.name);
  const found = new Set(rows.map((r) => r.condition));
  const conditions = [
    ...configured.filter((c) => found.has(c)),
    ...[...found].filter((c) => !configured.includes(c)),
  ];
  const classifiers = [...new Set(rows.map((r) => r.classifier))];
  const order = (list: readonly string[], x: string) => list.indexOf(x);
  const groups = new Map<string, JobRow[]>();
  for (const r of rows) {
    const key = `${r.condition}|${r.classifier}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const partial = [...groups.values()].map((g) => {
    const baseline = g[0]!.condition === 'real' ? null : (groups.get(`real|${g[0]!.classifier}`) ?? null);
    return cell(g, baseline, k);
  });
  const cells: CellSummary[] = [];
  for (const classifier of classifiers) {
    const mine = partial.filter((c) => c.classifier === classifier);
    const adjusted = holmAdjust(mine.map((c) => c.versus?.mcnemar.p ?? null));
    mine.forEach((c, i) => {
      const { versus, ...rest } = c;
      cells.push({ ...rest, vsReal: versus ? { ...versus, pHolm: adjusted[i] ?? null } : null });
    });
  }
  cells.sort(
    (a, b) =>
      order(classifiers, a.classifier) - order(classifiers, b.classifier) ||
      order(conditions, a.condition) - order(conditions, b.condition),
  );
  const testClassCounts = new Array<number>(k).fill(0);
  for (const l of testLabels) testClassCounts[l]!++;
  return {
    format: 'medsynth-study-results',
    version: 1,
    createdAt: new Date().toISOString(),
    config,
    classNames,
    testCount: testLabels.length,
    testClassCounts,
    conditions,
    classifiers,
    cells,
    verdicts: verdicts(cells, classNames),
    jobs: rows.map((r) => {
      const m = r.metrics as unknown as Metrics;
      return {
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
    ...(pool ? { pool } : {}),
  };
}

/** `results.csv`: one line per job (empty cells for metrics that do not apply, RFC 4180 quoting). */
export function resultsCsv(summary: StudySummary): string {
  const header = [
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
