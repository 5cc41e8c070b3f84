/**
 * The report's charts: Vega-Lite specs built from a study's numbers (pure functions, one per chart; null
 * when the study has nothing to draw), and their rendering to static SVG with Vega in Node (no canvas, no
 * browser). The SVG's element ids are prefixed per chart so that several charts can live in one page.
 */
import type { LoggerInterface } from 'vega';
import type { TopLevelSpec } from 'vega-lite';
import type { CellSummary, Interval, QualityVsGain, StudySummary } from '../study/summary.js';
import type { EvaluationRecord, TickStats } from './load.js';

export const CHART_FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif';

const CONFIG = {
  font: CHART_FONT,
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelLimit: 260 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  title: { fontSize: 13, fontWeight: 'normal', anchor: 'start' },
} as const;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** An interval in percent, with the mean also as the interval when there is only one seed. */
function pctRow(i: Interval): { mean: number; lo: number; hi: number } {
  return { mean: 100 * i.mean, lo: 100 * i.ci[0], hi: 100 * i.ci[1] };
}

const AUGMENTED = /^real\+synthetic×(\d+(?:\.\d+)?)$/;
const LIMITED = /^limited-(\d+(?:\.\d+)?)%(\+synthetic)?$/;

/** `real+synthetic×r` → r, `real` → 0, otherwise null. */
export function syntheticRatio(condition: string): number | null {
  if (condition === 'real') return 0;
  const m = AUGMENTED.exec(condition);
  return m ? Number(m[1]) : null;
}

/** `limited-f%[+synthetic]` → { fraction, topUp }, otherwise null. */
export function limitedFraction(condition: string): { fraction: number; topUp: boolean } | null {
  const m = LIMITED.exec(condition);
  return m ? { fraction: Number(m[1]) / 100, topUp: m[2] !== undefined } : null;
}

/** A cell's name in charts: its condition, after its generator's name when it has one (`cgan: rebalanced`). */
export function cellLabel(c: { readonly generator: string | null; readonly condition: string }): string {
  return c.generator === null ? c.condition : `${c.generator}: ${c.condition}`;
}

/** Every cell label of the study: generator-free conditions first, then each generator's, in condition order. */
export function cellLabels(summary: StudySummary): string[] {
  const generators: (string | null)[] = [null, ...summary.generators];
  const seen = new Map<string, [number, number]>();
  for (const c of summary.cells)
    seen.set(cellLabel(c), [generators.indexOf(c.generator), summary.conditions.indexOf(c.condition)]);
  return [...seen.entries()].sort(([, a], [, b]) => a[0] - b[0] || a[1] - b[1]).map(([label]) => label);
}

/** The accuracy difference of a cell against its baseline (null for a baseline or without a comparison). */
export function baselineDiff(c: CellSummary): Interval | null {
  return c.comparisons.find((x) => x.role === 'baseline')?.diff.accuracy ?? null;
}

/**
 * The augmented cell (real+synthetic×r or rebalanced) of a classifier, and of one generator when given, with
 * the largest accuracy gain over its baseline.
 */
export function bestAugmented(
  cells: readonly CellSummary[],
  classifier: string,
  generator?: string | null,
): CellSummary | null {
  const list = cells.filter(
    (c) =>
      c.classifier === classifier &&
      (generator === undefined || c.generator === generator) &&
      (AUGMENTED.test(c.condition) || c.condition === 'rebalanced') &&
      c.metrics.accuracy !== null,
  );
  const gain = (c: CellSummary) => baselineDiff(c)?.mean ?? c.metrics.accuracy!.mean;
  return [...list].sort((a, b) => gain(b) - gain(a))[0] ?? null;
}

/** D and G losses (and the regulariser, when logged) against training progress. */
export function lossChart(ticks: readonly TickStats[]): TopLevelSpec | null {
  const rows: { kimg: number; series: string; value: number }[] = [];
  for (const t of ticks) {
    if (t.dLoss !== null) rows.push({ kimg: t.kimg, series: 'D loss', value: t.dLoss });
    if (t.gLoss !== null) rows.push({ kimg: t.kimg, series: 'G loss', value: t.gLoss });
    if (t.penalty !== null) rows.push({ kimg: t.kimg, series: 'penalty', value: t.penalty });
  }
  if (rows.length === 0) return null;
  return {
    $schema: SCHEMA,
    config: CONFIG,
    width: 560,
    height: 220,
    data: { values: rows },
    mark: { type: 'line', point: ticks.length <= 40, strokeWidth: 1.5 },
    encoding: {
      x: {
        field: 'kimg',
        type: 'quantitative',
        title: 'training progress (kimg: thousands of real images shown)',
      },
      y: { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, sort: ['D loss', 'G loss', 'penalty'] },
    },
  };
}

/** The adaptive augmentation probability p against training progress (only when ADA moved it). */
export function augmentChart(ticks: readonly TickStats[]): TopLevelSpec | null {
  const rows = ticks.filter((t) => t.augmentP !== null).map((t) => ({ kimg: t.kimg, p: t.augmentP }));
  if (!rows.some((r) => (r.p ?? 0) > 0)) return null;
  return {
    $schema: SCHEMA,
    config: CONFIG,
    width: 560,
    height: 120,
    data: { values: rows },
    mark: { type: 'line', color: '#8a6d3b' },
    encoding: {
      x: { field: 'kimg', type: 'quantitative', title: 'kimg' },
      y: { field: 'p', type: 'quantitative', title: 'augment p', scale: { domain: [0, 1] } },
    },
  };
}

/** Test accuracy (mean and 95 % CI) per cell (condition, and generator where it has one), one colour per classifier; dashed: each classifier's real baseline. */
export function accuracyChart(summary: StudySummary): TopLevelSpec | null {
  const rows = summary.cells
    .filter((c) => c.metrics.accuracy !== null)
    .map((c) => ({ classifier: c.classifier, condition: cellLabel(c), ...pctRow(c.metrics.accuracy!) }));
  if (rows.length === 0) return null;
  const labels = cellLabels(summary);
  const baselines = rows
    .filter((r) => r.condition === 'real')
    .map((r) => ({ classifier: r.classifier, mean: r.mean }));
  const x = {
    field: 'condition',
    type: 'nominal',
    sort: labels,
    title: null,
    axis: { labelAngle: -25, labelLimit: 400 },
  } as const;
  const color = {
    field: 'classifier',
    type: 'nominal',
    sort: [...summary.classifiers],
    title: 'classifier',
  } as const;
  return {
    $schema: SCHEMA,
    config: CONFIG,
    // a band per condition wide enough for one point per classifier (a step would size the offset bands)
    width: Math.min(1000, Math.max(360, labels.length * Math.max(80, 24 * summary.classifiers.length))),
    height: 260,
    layer: [
      {
        data: { values: baselines },
        mark: { type: 'rule', strokeDash: [4, 4], opacity: 0.6 },
        encoding: { y: { field: 'mean', type: 'quantitative' }, color },
      },
      {
        data: { values: rows },
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: {
          x,
          xOffset: { field: 'classifier', sort: [...summary.classifiers] },
          y: { field: 'lo', type: 'quantitative' },
          y2: { field: 'hi' },
          color,
        },
      },
      {
        data: { values: rows },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x,
          xOffset: { field: 'classifier', sort: [...summary.classifiers] },
          y: {
            field: 'mean',
            type: 'quantitative',
            title: 'test accuracy % (95 % CI)',
            scale: { zero: false },
          },
          color,
        },
      },
    ],
  };
}

/** F1 of each class per cell (condition and generator), one panel per classifier. */
export function perClassF1Chart(summary: StudySummary): TopLevelSpec | null {
  const rows: { classifier: string; condition: string; cls: string; f1: number }[] = [];
  for (const c of summary.cells)
    c.perClass.f1.forEach((i, k) => {
      const cls = summary.classNames[k];
      if (i && cls !== undefined)
        rows.push({ classifier: c.classifier, condition: cellLabel(c), cls, f1: 100 * i.mean });
    });
  if (rows.length === 0) return null;
  const labels = cellLabels(summary);
  const bars = summary.classNames.length * labels.length;
  return {
    $schema: SCHEMA,
    config: CONFIG,
    data: { values: rows },
    facet: {
      row: {
        field: 'classifier',
        type: 'nominal',
        sort: [...summary.classifiers],
        title: null,
        header: { labelAngle: 0, labelAlign: 'left', labelFontWeight: 'bold' },
      },
    },
    spec: {
      width: Math.min(900, Math.max(320, bars * 16)),
      height: 150,
      mark: { type: 'bar' },
      encoding: {
        x: {
          field: 'cls',
          type: 'nominal',
          sort: [...summary.classNames],
          title: null,
          axis: { labelAngle: 0 },
        },
        xOffset: { field: 'condition', sort: labels },
        y: { field: 'f1', type: 'quantitative', title: 'F1 %', scale: { domain: [0, 100] } },
        color: { field: 'condition', type: 'nominal', sort: labels, title: 'condition' },
      },
    },
  };
}

function lineWithIntervals(
  rows: readonly Record<string, unknown>[],
  x: Record<string, unknown>,
  extra: Record<string, unknown>,
  yTitle: string,
): TopLevelSpec {
  return {
    $schema: SCHEMA,
    config: CONFIG,
    width: 420,
    height: 240,
    data: { values: rows as Record<string, unknown>[] },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x,
          y: { field: 'mean', type: 'quantitative', title: yTitle, scale: { zero: false } },
          ...extra,
        },
      },
      {
        mark: { type: 'rule' },
        encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, ...extra },
      },
      {
        mark: { type: 'point', filled: true, size: 50 },
        encoding: { x, y: { field: 'mean', type: 'quantitative' }, ...extra },
      },
    ],
  } as TopLevelSpec;
}

/** A line's name: the classifier, and the generator of its synthetic images when the study has several. */
function seriesName(summary: StudySummary, classifier: string, generator: string | null): string {
  return summary.generators.length > 1 && generator !== null ? `${classifier} × ${generator}` : classifier;
}

/**
 * Accuracy against the synthetic ratio (real = 0, real+synthetic×r = r), one line per classifier (and
 * generator), when the study has at least two ratios r > 0.
 */
export function ratioChart(summary: StudySummary): TopLevelSpec | null {
  const ratios = new Set(
    summary.conditions.map(syntheticRatio).filter((r): r is number => r !== null && r > 0),
  );
  if (ratios.size < 2) return null;
  const rows: Record<string, unknown>[] = [];
  for (const c of summary.cells) {
    const ratio = syntheticRatio(c.condition);
    if (!c.metrics.accuracy || ratio === null) continue;
    // the real baseline starts every generator's line
    const generators = c.generator === null ? summary.generators : [c.generator];
    for (const g of generators)
      rows.push({ series: seriesName(summary, c.classifier, g), ratio, ...pctRow(c.metrics.accuracy) });
  }
  rows.sort((a, b) => (a['ratio'] as number) - (b['ratio'] as number));
  return lineWithIntervals(
    rows,
    { field: 'ratio', type: 'quantitative', title: 'synthetic images added per real image (0 = real only)' },
    { color: { field: 'series', type: 'nominal', title: 'classifier' } },
    'test accuracy % (95 % CI)',
  );
}

/**
 * Accuracy against the share of real training images kept (limited-f, with and without each generator's
 * synthetic top-up; real = 100 %).
 */
export function limitedChart(summary: StudySummary): TopLevelSpec | null {
  if (!summary.conditions.some((c) => limitedFraction(c) !== null)) return null;
  const topUp = (g: string) =>
    summary.generators.length > 1 ? `with synthetic top-up (${g})` : 'with synthetic top-up';
  const series = ['real images only', ...summary.generators.map(topUp)];
  const rows: Record<string, unknown>[] = [];
  for (const c of summary.cells) {
    if (!c.metrics.accuracy) continue;
    const interval = pctRow(c.metrics.accuracy);
    if (c.condition === 'real') {
      for (const s of series) rows.push({ classifier: c.classifier, fraction: 1, series: s, ...interval });
      continue;
    }
    const lim = limitedFraction(c.condition);
    if (lim && lim.topUp === (c.generator !== null))
      rows.push({
        classifier: c.classifier,
        fraction: lim.fraction,
        series: c.generator === null ? series[0] : topUp(c.generator),
        ...interval,
      });
  }
  rows.sort((a, b) => (a['fraction'] as number) - (b['fraction'] as number));
  return lineWithIntervals(
    rows,
    {
      field: 'fraction',
      type: 'quantitative',
      title: 'share of the real training images used',
      axis: { format: '.0%' },
      scale: { domain: [0, 1] },
    },
    {
      color: { field: 'classifier', type: 'nominal', sort: [...summary.classifiers], title: 'classifier' },
      strokeDash: { field: 'series', type: 'nominal', sort: series, title: null },
      shape: { field: 'series', type: 'nominal', sort: series, title: null },
      detail: { field: 'series' },
    },
    'test accuracy % (95 % CI)',
  );
}

/**
 * The cells whose confusion matrices a classifier's heatmap shows: real, then for each generator its
 * synthetic-only cell and its best augmented one.
 */
export function confusionConditions(summary: StudySummary, classifier: string): CellSummary[] {
  const mine = summary.cells.filter((c) => c.classifier === classifier && c.confusion.length > 0);
  const out = mine.filter((c) => c.generator === null && c.condition === 'real');
  for (const g of summary.generators) {
    const synthetic = mine.find((c) => c.generator === g && c.condition === 'synthetic');
    if (synthetic) out.push(synthetic);
    const best = bestAugmented(mine, classifier, g);
    if (best) out.push(best);
  }
  return out;
}

/** Confusion matrices of one classifier as heatmaps, normalised by row (true class), with the counts as text. */
export function confusionChart(summary: StudySummary, classifier: string): TopLevelSpec | null {
  const cells = confusionConditions(summary, classifier);
  if (cells.length === 0) return null;
  const names = summary.classNames;
  const rows: Record<string, unknown>[] = [];
  for (const c of cells) {
    c.confusion.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      row.forEach((n, j) => {
        const share = total > 0 ? n / total : 0;
        rows.push({
          condition: cellLabel(c),
          actual: names[i] ?? String(i),
          predicted: names[j] ?? String(j),
          share,
          label: Number.isInteger(n) ? String(n) : n.toFixed(1),
        });
      });
    });
  }
  const side = Math.max(20, Math.min(64, Math.round(260 / Math.max(1, names.length))));
  const sort = [...names];
  return {
    $schema: SCHEMA,
    config: CONFIG,
    data: { values: rows },
    facet: {
      column: {
        field: 'condition',
        type: 'nominal',
        sort: cells.map(cellLabel),
        title: null,
        header: { labelFontSize: 12 },
      },
    },
    spec: {
      width: side * names.length,
      height: side * names.length,
      encoding: {
        x: { field: 'predicted', type: 'nominal', sort, title: 'predicted', axis: { labelAngle: -30 } },
        y: { field: 'actual', type: 'nominal', sort, title: 'true class' },
      },
      layer: [
        {
          mark: { type: 'rect' },
          encoding: {
            color: {
              field: 'share',
              type: 'quantitative',
              title: 'row share',
              scale: { domain: [0, 1], scheme: 'blues' },
              legend: { format: '.0%' },
            },
          },
        },
        {
          mark: { type: 'text', fontSize: Math.min(12, Math.max(8, side / 3)) },
          encoding: {
            text: { field: 'label' },
            color: { condition: { test: 'datum.share > 0.55', value: 'white' }, value: '#222' },
          },
        },
      ],
    },
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec;
}

/** The quality-vs-gain points of one (condition, classifier) that have an FID and an accuracy change. */
export function qualityPoints(
  qvg: QualityVsGain,
  condition: string,
  classifier: string,
): QualityVsGain['points'][number][] {
  return qvg.points.filter(
    (p) =>
      p.condition === condition &&
      p.classifier === classifier &&
      p.quality.fid !== null &&
      p.effect.accuracy !== null,
  );
}

/**
 * FID (x) against the mean accuracy change over the baseline (y, points) of one (condition, classifier):
 * one point per generator instance, labelled with its generator and seed; null with fewer than two points.
 */
export function qualityChart(qvg: QualityVsGain, condition: string, classifier: string): TopLevelSpec | null {
  const points = qualityPoints(qvg, condition, classifier);
  if (points.length < 2) return null;
  const rows = points.map((p) => ({
    fid: p.quality.fid,
    gain: 100 * p.effect.accuracy!,
    label: `${p.generator} seed ${p.generatorSeed}`,
    generator: p.generator,
  }));
  const x = {
    field: 'fid',
    type: 'quantitative',
    title: 'FID (lower is better)',
    scale: { zero: false, padding: 16 },
  };
  const y = {
    field: 'gain',
    type: 'quantitative',
    title: 'Δ accuracy (points) vs baseline',
    scale: { zero: true },
  };
  return {
    $schema: SCHEMA,
    config: CONFIG,
    title: `${classifier} · ${condition}`,
    width: 300,
    height: 200,
    layer: [
      {
        data: { values: [{ zero: 0 }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#888' },
        encoding: { y: { field: 'zero', type: 'quantitative' } },
      },
      {
        data: { values: rows },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x,
          y,
          color: { field: 'generator', type: 'nominal', legend: null },
        },
      },
      {
        data: { values: rows },
        mark: { type: 'text', align: 'left', dx: 7, fontSize: 10, color: '#333' },
        encoding: { x, y, text: { field: 'label' } },
      },
    ],
  } as TopLevelSpec;
}

interface PrivacyDetails {
  readonly space?: string;
  readonly threshold?: number;
  readonly histogram?: { readonly edges: number[]; readonly fake: number[]; readonly holdout: number[] };
}

/** Nearest-training-image distances of synthetic and held-out real images (a privacy record's histogram). */
export function privacyChart(record: EvaluationRecord): TopLevelSpec | null {
  const d = record.details as PrivacyDetails | undefined;
  const h = d?.histogram;
  if (!h || h.edges.length < 2) return null;
  const totals = {
    fake: h.fake.reduce((a, b) => a + b, 0) || 1,
    holdout: h.holdout.reduce((a, b) => a + b, 0) || 1,
  };
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i + 1 < h.edges.length; i++) {
    rows.push({
      lo: h.edges[i],
      hi: h.edges[i + 1],
      set: 'synthetic',
      share: (h.fake[i] ?? 0) / totals.fake,
    });
    rows.push({
      lo: h.edges[i],
      hi: h.edges[i + 1],
      set: 'held-out real',
      share: (h.holdout[i] ?? 0) / totals.holdout,
    });
  }
  const layers: unknown[] = [
    {
      data: { values: rows },
      mark: { type: 'rect', opacity: 0.55 },
      encoding: {
        x: { field: 'lo', type: 'quantitative', title: 'distance to the nearest training image' },
        x2: { field: 'hi' },
        y: {
          field: 'share',
          type: 'quantitative',
          title: 'share of images',
          axis: { format: '.0%' },
          stack: null,
        },
        color: {
          field: 'set',
          type: 'nominal',
          title: null,
          sort: ['synthetic', 'held-out real'],
          scale: { range: ['#d62728', '#1f77b4'] },
          legend: { orient: 'top', direction: 'horizontal' },
        },
      },
    },
  ];
  if (typeof d.threshold === 'number' && Number.isFinite(d.threshold))
    layers.push({
      data: { values: [{ t: d.threshold }] },
      mark: { type: 'rule', strokeDash: [4, 3], color: '#555' },
      encoding: { x: { field: 't', type: 'quantitative' } },
    });
  return {
    $schema: SCHEMA,
    config: CONFIG,
    title: d.space ?? '',
    width: 320,
    height: 150,
    layer: layers,
  } as TopLevelSpec;
}

/** A logger that keeps Vega's and Vega-Lite's messages instead of printing them (the library never prints). */
function quietLogger(messages: string[]): LoggerInterface {
  let level = 2;
  const keep = (kind: string, args: unknown[]) => messages.push(`${kind}: ${args.map(String).join(' ')}`);
  const logger: LoggerInterface = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error(...args: unknown[]) {
      keep('error', args);
      return logger;
    },
    warn(...args: unknown[]) {
      if (level >= 2) keep('warn', args);
      return logger;
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return logger;
}

/** Prefixes every `id` of an SVG (and its `url(#…)` / `href="#…"` references) so that charts in one page do not clash. */
export function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!));
  if (ids.size === 0) return svg;
  return svg
    .replace(/(\sid=")([^"]+)"/g, (m, a: string, id: string) => (ids.has(id) ? `${a}${prefix}-${id}"` : m))
    .replace(/url\(#([^)]+)\)/g, (m, id: string) => (ids.has(id) ? `url(#${prefix}-${id})` : m))
    .replace(/(href=")#([^"]+)"/g, (m, a: string, id: string) => (ids.has(id) ? `${a}#${prefix}-${id}"` : m));
}

/** Renders a Vega-Lite spec to a standalone SVG string (Vega's SVG renderer, headless). */
export async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<string> {
  // Loaded on first use: importing the library should not load Vega.
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const messages: string[] = [];
  const logger = quietLogger(messages);
  const vega = compile(spec, { logger }).spec;
  const view = new View(parse(vega), { renderer: 'none', logger });
  try {
    const svg = await view.toSVG();
    return scopeSvgIds(svg, idPrefix);
  } finally {
    view.finalize();
  }
}
