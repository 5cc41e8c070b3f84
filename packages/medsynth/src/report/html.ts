/**
 * The report page: one self-contained HTML document (inline CSS, images as data: URIs, charts as inline SVG,
 * no script, a Content-Security-Policy that forbids every network request) of a study's results (version 2).
 * Sections: the answer (verdicts by question, how to read the statistics), the study, the generators (one
 * block per generator instance: what it trained on, its run, pool, quality, synthetic grid beside the real
 * one, training curves, evaluation with the privacy panels), downstream results (per classifier: results
 * grouped by generator, comparisons with controls, classic augmentation, per-class tables), quality vs gain,
 * charts, how to read. Every value from the study is escaped (markup.ts).
 */
import { basename } from 'node:path';
import { parseCondition } from '../study/conditions.js';
import {
  QUALITY_BETTER,
  QUALITY_METRICS,
  type CellSummary,
  type Comparison,
  type CorrelationCell,
  type Direction,
  type InstanceRecord,
  type Interval,
  type QualityMetric,
  type StudySummary,
} from '../study/summary.js';
import { bestAugmented, qualityPoints } from './charts.js';
import { embeddingSection } from './embedding-svg.js';
import { duration, fixed, pct, pctInterval, pValue, signedPct, stat, utcDate } from './format.js';
import type { EvaluationRecord, InstanceReport, PngFile, StudyReportData } from './load.js';
import { h, raw, type Html, type Markup } from './markup.js';
import { REPORT_CSS } from './style.js';

export { REPORT_CSS } from './style.js';

/** One instance's charts (SVG markup). */
export interface InstanceCharts {
  /** Loss curves, one per training run that logged statistics. */
  readonly loss: readonly { readonly run: string; readonly svg: string }[];
  /** Adaptive-augmentation probability, per run where ADA moved it. */
  readonly augment: readonly { readonly run: string; readonly svg: string }[];
  /** Nearest-training-image distance histograms, per privacy record. */
  readonly privacy: readonly { readonly space: string; readonly svg: string }[];
}

/** The rendered charts (SVG markup), null or empty where the study has nothing to draw. */
export interface ReportCharts {
  readonly accuracy: string | null;
  readonly perClassF1: string | null;
  readonly ratio: string | null;
  readonly limited: string | null;
  readonly confusion: readonly { readonly classifier: string; readonly svg: string }[];
  /** By instance key. */
  readonly instances: Readonly<Record<string, InstanceCharts>>;
  /** Quality vs gain scatters, per (condition, classifier) with two or more points. */
  readonly quality: readonly {
    readonly condition: string;
    readonly classifier: string;
    readonly svg: string;
  }[];
}

export interface ReportMeta {
  readonly generatedAt: Date;
  readonly version: string | null;
}

/** The mark after an interval computed on the logit scale, and its footnote. */
export const LOGIT_MARK = '†';
export const LOGIT_NOTE =
  '† 95 % interval computed on the logit scale: the Student-t interval would have left the range the value can take.';

// ---- small helpers -------------------------------------------------------------------------------------

const dataUri = (png: PngFile) => `data:image/png;base64,${png.bytes.toString('base64')}`;

/** A right-aligned numeric cell. */
function num(text: Markup, cls = '', title?: string): Html {
  const attr = title ? h` title="${title}"` : '';
  return h`<td class="num${cls ? ` ${cls}` : ''}"${attr}>${text}</td>`;
}

function table(head: readonly string[], body: Markup, numeric: (column: number) => boolean): Html {
  const ths = head.map((x, i) => (numeric(i) ? h`<th class="num">${x}</th>` : h`<th>${x}</th>`));
  return h`<div class="scroll"><table>
<thead><tr>${ths}</tr></thead>
${body}
</table></div>`;
}

function note(text: Markup): Html {
  return h`<p class="note">${text}</p>`;
}

function datasetName(source: string): string {
  return /[\\/]/.test(source) ? basename(source) : source;
}

function classList(names: readonly string[], counts: readonly number[] | null | undefined): string {
  return names.map((n, k) => (counts?.[k] !== undefined ? `${n} ${counts[k]}` : n)).join(', ');
}

function optionsText(o: Readonly<Record<string, unknown>> | undefined): string {
  if (!o) return '';
  return Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
}

/**
 * A grid picture with its rows labelled, when its height says it has one row per label (square cells of
 * `cell` pixels and a 2-pixel gap, as tileImages makes them); shown at 2–4× with crisp pixels.
 */
function labelledPicture(png: PngFile, labels: readonly string[], cell: number, alt: string): Html {
  const gap = 2;
  const rows = (png.height - gap) / (cell + gap);
  const labelled = Number.isInteger(rows) && rows === labels.length && labels.length > 0;
  const spans = labels.map((name, r) => {
    const top = ((gap + r * (cell + gap)) / png.height) * 100;
    const height = (cell / png.height) * 100;
    return h`<span style="top:${top.toFixed(3)}%;height:${height.toFixed(3)}%">${name}</span>`;
  });
  const maxWidth = png.width * Math.max(2, Math.min(4, Math.floor(560 / png.width)));
  const labelsColumn = labelled ? h`<div class="grid-labels">${spans}</div>` : '';
  return h`<div class="grid-wrap">${labelsColumn}<img src="${dataUri(png)}" width="${png.width}" height="${png.height}" style="max-width:${maxWidth}px" alt="${alt}"></div>`;
}

const DIRECTION_WORDS: Readonly<Record<Direction, string>> = {
  better: 'better',
  worse: 'worse',
  none: 'no clear difference',
  unclear: 'not established',
};

/** The table-cell class of a verdict's direction. */
const directionClass = (d: Direction | undefined) =>
  d === 'better' ? 'better' : d === 'worse' ? 'worse' : d === 'unclear' ? 'unclear' : '';

/** `79.5 [75.1, 83.2]†`: a mean in percent, its interval (two units or more) and the logit mark. */
function meanCi(i: Interval | null, signed = false): Html {
  if (!i) return h`–`;
  const interval = pctInterval(i, signed);
  return h`${signed ? signedPct(i.mean) : pct(i.mean)}${interval ? h` <span class="ci">${interval}</span>` : ''}${
    i.method === 'logit-t' && i.n > 1 ? h`<sup class="fn">${LOGIT_MARK}</sup>` : ''
  }`;
}

/** The interval of `i` as a tooltip (`95 % CI 75.1 to 83.2 over 3 classifier seeds`), for cells that show the mean only. */
function ciTitle(i: Interval | null, units: string): string | undefined {
  if (!i) return undefined;
  if (i.n < 2) return `one ${units.replace(/s$/, '')}: no interval`;
  return `95 % CI ${pct(i.ci[0])} to ${pct(i.ci[1])}${i.method === 'logit-t' ? ' (logit scale)' : ''} over ${i.n} ${units}`;
}

const usesLogit = (intervals: readonly (Interval | null | undefined)[]) =>
  intervals.some((i) => i?.method === 'logit-t' && i.n > 1);

/** The footnote for the logit mark, when any of `intervals` carries it. */
function logitFootnote(intervals: readonly (Interval | null | undefined)[]): Html | '' {
  return usesLogit(intervals) ? note(LOGIT_NOTE) : '';
}

const unitsShort = (c: CellSummary) => (c.units === 'generator seeds' ? 'gen.' : 'clf.');

/** A cell's number of units as shown: `3 clf.` (the interval is over 3 classifier seeds). */
function unitsCell(c: CellSummary): Html {
  const n =
    c.metrics.accuracy?.n ?? (c.units === 'generator seeds' ? c.generatorSeeds.length : c.seeds.length);
  return num(`${n} ${unitsShort(c)}`, '', `${n} ${n === 1 ? c.units.replace(/s$/, '') : c.units}`);
}

/** Cells of a classifier grouped by generator: generator-free first, then each generator in the study's order. */
function byGenerator(s: StudySummary, cells: readonly CellSummary[]): [string | null, CellSummary[]][] {
  return ([null, ...s.generators] as (string | null)[])
    .map((g): [string | null, CellSummary[]] => [g, cells.filter((c) => c.generator === g)])
    .filter(([, list]) => list.length > 0);
}

const groupTitle = (g: string | null) => (g === null ? 'without a generator' : `generator ${g}`);

function groupHeader(title: Markup, columns: number): Html {
  return h`<tr><th colspan="${columns}">${title}</th></tr>`;
}

/** The scope of an instance in words. */
function scopeText(r: InstanceRecord): string {
  return r.fraction === null
    ? 'whole train split'
    : `limited: ${Number((r.fraction * 100).toPrecision(6))} % of the train split`;
}

const instanceTitle = (r: InstanceRecord) =>
  `${r.generator} · generator seed ${r.generatorSeed} · ${scopeText(r)}`;
const instanceId = (i: number) => `generator-${i + 1}`;

const QUALITY_NAMES: Readonly<Record<QualityMetric, string>> = {
  fid: 'FID',
  kid: 'KID',
  precision: 'precision',
  recall: 'recall',
  coverage: 'coverage',
  msssimRatio: 'MS-SSIM ratio',
  classFidelity: 'class fidelity',
};

/** ↓ lower is better, ↑ higher is better; the MS-SSIM ratio (synthetic over real variety) is best near 1. */
const qualityArrow = (m: QualityMetric) =>
  m === 'msssimRatio' ? '≈1' : QUALITY_BETTER[m] === 'lower' ? '↓' : '↑';

const EFFECT_NAMES: Readonly<Record<string, string>> = {
  accuracy: 'Δ accuracy',
  balancedAccuracy: 'Δ balanced accuracy',
  minorityF1: 'Δ minority-class F1',
};

// ---- sections ------------------------------------------------------------------------------------------

function sections(s: StudySummary): (readonly [string, string])[] {
  return [
    ['answer', 'The answer'],
    ['study', 'The study'],
    ['generators', 'Generators'],
    ['downstream', 'Downstream results'],
    ...(s.qualityVsGain ? [['quality', 'Quality vs gain'] as const] : []),
    ['charts', 'Charts'],
    ['reading', 'How to read'],
  ];
}

function header(data: StudyReportData, meta: ReportMeta): Html {
  const s = data.summary;
  const version = meta.version ? ` · medsynth ${meta.version}` : '';
  return h`<header>
<h1>Can synthetic images replace or augment the real ones? — ${datasetName(s.config.data.source)}</h1>
<p class="sub">medsynth study report${version} · study finished ${utcDate(s.createdAt)} · report made ${utcDate(meta.generatedAt)}</p>
<p class="sub">Study directory <code>${data.dir}</code></p>
<nav class="toc">${sections(s).map(([id, title]) => h`<a href="#${id}">${title}</a>`)}</nav>
</header>`;
}

/** The study's questions, in the order the answer takes them (summary.verdicts' `question`). */
const QUESTIONS: readonly (readonly [string, string])[] = [
  ['replace', 'Can synthetic images replace the real ones?'],
  ['augment', 'Do they help when added to the real ones?'],
  ['controls', 'Is a gain due to the synthetic content? (controls)'],
  ['limited', 'Do they make up for having little real data?'],
  ['augmentation', 'What does classic augmentation do?'],
  ['classes', 'Which classes gain from rebalancing?'],
  ['quality', 'Do better images make better classifiers?'],
];

function answer(s: StudySummary): Html {
  const known = new Set(QUESTIONS.map(([q]) => q));
  const groups = [...QUESTIONS, ['other', 'Other findings'] as const]
    .map(([question, title]) => {
      const verdicts = s.verdicts.filter((v) => (known.has(v.question) ? v.question : 'other') === question);
      return verdicts.length
        ? h`<h3>${title}</h3>
<ul class="verdicts">${verdicts.map((v) => h`<li>${v.text}</li>`)}</ul>`
        : '';
    })
    .filter((x) => x !== '');
  const list = groups.length
    ? groups
    : note(
        'No verdicts: the study has no synthetic-only or augmented condition to compare with the real baseline.',
      );
  const seeds = s.config.seeds.length;
  const seedNote =
    seeds === 1 && s.config.generatorSeeds < 2
      ? 'One classifier seed and one generator seed: no confidence intervals — run more seeds (e.g. --seeds 0-4) before trusting small differences.'
      : `${seeds} classifier seed${seeds === 1 ? '' : 's'} and ${s.config.generatorSeeds} generator seed${s.config.generatorSeeds === 1 ? '' : 's'} per condition.`;
  return h`<section id="answer"><h2>The answer</h2>
${list}
${failuresNote(s)}
<h3>How to read the statistics</h3>
<p class="callout">${s.statistics}</p>
${note(`Test set: ${s.testCount} real images (${classList(s.classNames, s.testClassCounts)}), the same for every condition. ${seedNote}`)}
</section>`;
}

/** Jobs that failed (queued studies): what is missing from the tables below, and why. */
function failuresNote(s: StudySummary): Html | null {
  if (s.failures.length === 0) return null;
  return h`<h3>Failed jobs</h3>
<p class="callout">${s.failures.length} job${s.failures.length === 1 ? '' : 's'} failed and ${s.failures.length === 1 ? 'is' : 'are'} missing from the results below; <code>medsynth study --resume</code> tries ${s.failures.length === 1 ? 'it' : 'them'} again.</p>
<ul>${s.failures.map((f) => h`<li><code>${f.kind === 'pool' ? `generator ${f.id}` : f.id}</code>: ${f.error}</li>`)}</ul>`;
}

function generatorEntryText(e: StudySummary['config']['generators'][number]): string {
  const parts: string[] = [
    e.run !== undefined
      ? `existing run ${e.run}`
      : `trained in this study (${optionsText(e.train) || 'defaults'})`,
  ];
  if (e.perClassModels) parts.push('one unconditional model per class');
  if (e.checkpoint !== undefined) parts.push(`checkpoint ${e.checkpoint}`);
  if (e.truncation !== undefined) parts.push(`truncation ψ ${e.truncation}`);
  if (e.sampling !== undefined) {
    const { steps, eta, guidance } = e.sampling;
    const said = [
      steps !== undefined ? `${steps} DDIM steps` : null,
      eta !== undefined ? `η ${eta}` : null,
      guidance !== undefined ? `guidance ${guidance}` : null,
    ].filter((x) => x !== null);
    if (said.length) parts.push(`sampled with ${said.join(', ')}`);
  }
  return `${e.name}: ${parts.join(', ')}`;
}

function study(data: StudyReportData): Html {
  const s = data.summary;
  const c = s.config;
  const real = s.cells.find((x) => x.generator === null && x.condition === 'real');
  const caps = Object.entries(c.maxImages ?? {}).filter(([, v]) => v !== undefined);
  const classifiers = c.classifiers.map((e) =>
    typeof e === 'string'
      ? e
      : `${e.name} (${e.base}${Object.keys(e.options).length ? `; ${optionsText(e.options)}` : ''})`,
  );
  const imageFacts = [
    real ? `train ${real.trainReal} (${classList(s.classNames, real.trainClassCounts)})` : null,
    `test ${s.testCount} (${classList(s.classNames, s.testClassCounts)})`,
    caps.length ? `capped per split: ${caps.map(([k, v]) => `${k} ${String(v)}`).join(', ')}` : null,
  ].filter((x) => x !== null);
  const facts: [string, Markup][] = [
    ['dataset', h`<code>${c.data.source}</code>`],
    [
      'classes',
      `${s.classNames.length}: ${s.classNames.join(', ')} (minority class: ${s.classNames[s.minorityClass] ?? '–'})`,
    ],
    ['images', imageFacts.join(' · ')],
    ['preset', c.preset ?? 'custom'],
    ['image size', `${c.size} px, channels ${String(c.channels)}`],
    ['classifier seeds', c.seeds.join(', ')],
    [
      'generator seeds',
      `${c.generatorSeeds} (each generator trained ${c.generatorSeeds === 1 ? 'once' : `${c.generatorSeeds} times`})`,
    ],
    ['conditions', s.conditions.join(', ')],
    ['classifiers', classifiers.join(', ')],
    ['generators', h`${c.generators.map((e, i) => h`${i > 0 ? raw('<br>') : ''}${generatorEntryText(e)}`)}`],
  ];
  if (c.equalSteps)
    facts.push([
      'equal steps',
      'every deep classifier trained for the same number of optimiser steps in every condition',
    ]);
  if (c.positiveClass !== undefined || s.classNames.length === 2)
    facts.push(['positive class', `${c.positiveClass ?? s.classNames[1] ?? ''} (sensitivity is its recall)`]);
  const e = c.evaluate;
  facts.push([
    'evaluation',
    e?.enabled === false
      ? 'disabled'
      : `${(e?.metrics ?? []).join(', ')} in ${e?.extractor ?? 'domain'} features, of each generator trained on the whole train split`,
  ]);
  return h`<section id="study"><h2>The study</h2>
<dl class="facts">${facts.map(([k, v]) => h`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
</section>`;
}

// ---- generators ----------------------------------------------------------------------------------------

/** The quality figures an instance has, as `FID 2827 · precision 0 · …` (null when none). */
function qualityText(r: InstanceRecord): string | null {
  if (!r.quality) return null;
  const parts = QUALITY_METRICS.filter((m) => r.quality![m] !== null && r.quality![m] !== undefined).map(
    (m) => `${QUALITY_NAMES[m]} ${stat(r.quality![m])}`,
  );
  return parts.length ? parts.join(' · ') : null;
}

/** One row per instance: scope, trained-on images, pool, and every quality figure (the overview table). */
function instancesTable(data: StudyReportData): Html {
  const s = data.summary;
  const metrics = QUALITY_METRICS.filter((m) =>
    s.instances.some((r) => r.quality?.[m] !== null && r.quality?.[m] !== undefined),
  );
  const head = [
    'generator',
    'seed',
    'scope',
    'trained on (images)',
    'kimg',
    'pool (images)',
    ...metrics.map((m) => `${QUALITY_NAMES[m]} ${qualityArrow(m)}`),
  ];
  const rows = s.instances.map(
    (r, i) =>
      h`<tr><td><a href="#${instanceId(i)}">${r.generator}</a></td>${num(r.generatorSeed)}<td>${scopeText(r)}</td>${num(
        r.trainedOn.images,
      )}${num(r.runs.map((x) => stat(x.kimg)).join(' / ') || '–')}${num(r.pool.images)}${metrics.map((m) =>
        num(stat(r.quality?.[m] ?? null)),
      )}</tr>`,
  );
  return h`${table(head, h`<tbody>${rows}</tbody>`, (i) => i === 1 || i >= 3)}
${metrics.length ? note(`↓: lower is better; ↑: higher is better${metrics.includes('msssimRatio') ? '; MS-SSIM ratio: the synthetic images’ within-class MS-SSIM over the real ones’ (near 1: as varied as the real images)' : ''}. Figures of the evaluation (synthetic vs real train images) and the pool’s class fidelity; generators trained on a limited subset are not evaluated.`) : ''}`;
}

function instanceFacts(data: StudyReportData, inst: InstanceReport): [string, Markup][] {
  const s = data.summary;
  const r = inst.record;
  const entry = s.config.generators.find((e) => e.name === r.generator);
  const facts: [string, Markup][] = [
    ['generator', entry ? generatorEntryText(entry) : r.generator],
    ['generator seed', r.generatorSeed],
    ['scope', scopeText(r)],
    [
      'trained on',
      `${r.trainedOn.what}: ${r.trainedOn.images} images (${classList(s.classNames, r.trainedOn.classCounts)})`,
    ],
  ];
  const runs = (r.runs ?? []).map((run) => {
    const found = inst.runs.find((x) => x.name === basename(run.dir));
    const result = found?.result;
    const seconds = typeof result?.['seconds'] === 'number' ? ` in ${duration(result['seconds'])}` : '';
    const stopped = typeof result?.['stoppedBy'] === 'string' ? ` (stopped by ${result['stoppedBy']})` : '';
    return `${basename(run.dir)}: ${stat(run.kimg)} kimg${seconds}${stopped}`;
  });
  facts.push([
    r.runs.length === 1 ? 'run' : 'runs',
    h`${runs.map((t, i) => h`${i > 0 ? raw('<br>') : ''}${t}`)}${r.existingRun ? ' (an existing run, not trained in this study)' : ''}`,
  ]);
  const pool = r.pool;
  facts.push([
    'synthetic pool',
    `${pool.images} images (${classList(s.classNames, pool.perClass)})${
      pool.seconds > 0
        ? ` sampled in ${duration(pool.seconds)} (${stat(pool.images / pool.seconds)} images/s)`
        : ''
    }`,
  ]);
  if (r.fidelity)
    facts.push([
      'class fidelity',
      `a classifier trained on the real images gives ${pct(r.fidelity.accuracy)} % of the synthetic images the class they were made for (balanced accuracy ${pct(r.fidelity.balancedAccuracy)} %)`,
    ]);
  const quality = qualityText(r);
  if (quality) facts.push(['quality', quality]);
  return facts;
}

function gridFigure(png: PngFile | null, title: string, file: string, s: StudySummary): Html {
  return png
    ? h`<figure><figcaption>${title}</figcaption>${labelledPicture(png, s.classNames, s.config.size, `${title}: one row per class`)}</figure>`
    : h`<figure><figcaption>${title}</figcaption>${note(`No picture (${file} is missing).`)}</figure>`;
}

function instanceTraining(inst: InstanceReport, charts: InstanceCharts | undefined): Html {
  const parts: Markup[] = [];
  const many = inst.runs.length > 1;
  for (const run of inst.runs) {
    const ticks = run.ticks;
    const last = ticks[ticks.length - 1];
    const speed = ticks.filter((t) => t.imagesPerSecond !== null).map((t) => t.imagesPerSecond!);
    const time = last?.seconds !== null && last?.seconds !== undefined ? ` in ${duration(last.seconds)}` : '';
    const rate = speed.length
      ? `, ${Math.round(speed.reduce((a, b) => a + b, 0) / speed.length)} images/s on average`
      : '';
    const loss = charts?.loss.find((x) => x.run === run.name);
    const augment = charts?.augment.find((x) => x.run === run.name);
    parts.push(
      h`${many ? h`<h5>${run.name}</h5>` : ''}${
        last ? note(`${ticks.length} ticks up to ${stat(last.kimg)} kimg${time}${rate}.`) : ''
      }${loss ? h`<div class="chart">${raw(loss.svg)}</div>` : ''}${
        augment
          ? h`<div class="chart">${raw(augment.svg)}</div>${note('Adaptive augmentation: the probability p of each augmentation over training.')}`
          : ''
      }`,
    );
  }
  const any = (charts?.loss.length ?? 0) > 0;
  return h`<h4>Training</h4>
${parts}
${inst.runsNote ? note(inst.runsNote) : ''}
${any ? note('Losses are per tick and noisy by nature: a D loss near zero with a rising G loss means the discriminator has won; exploding or oscillating losses mean unstable training. Judge the images by the evaluation, not by the losses.') : ''}`;
}

function instanceSection(data: StudyReportData, charts: ReportCharts, inst: InstanceReport, i: number): Html {
  const s = data.summary;
  const r = inst.record;
  const facts = instanceFacts(data, inst);
  const mine = charts.instances[r.key];
  return h`<section class="instance" id="${instanceId(i)}"><h3>${instanceTitle(r)}</h3>
<p class="note">Folder <code>generators/${r.key}</code></p>
<dl class="facts">${facts.map(([k, v]) => h`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
<div class="grids">
${gridFigure(data.realGrid, 'Real (training split)', 'real-grid.png', s)}
${gridFigure(inst.syntheticGrid, `Synthetic (${r.generator}, seed ${r.generatorSeed})`, `generators/${r.key}/synthetic-grid.png`, s)}
</div>
${instanceTraining(inst, mine)}
${instanceEvaluation(data, inst, mine)}
</section>`;
}

function generators(data: StudyReportData, charts: ReportCharts): Html {
  const s = data.summary;
  const blocks = data.instances.map((inst, i) => instanceSection(data, charts, inst, i));
  return h`<section id="generators"><h2>Generators</h2>
<p>${s.instances.length} generator instance${s.instances.length === 1 ? '' : 's'}: each generator (${s.generators.join(', ')}) trained once per generator seed on the whole train split, and once per seed and limited fraction on that fraction’s subset (the subset the limited-data classifiers of that seed train on). Grids: one row per class (${s.classNames.join(', ')}), the first ten images of each.</p>
${s.instances.length ? instancesTable(data) : note('The study recorded no generator instances.')}
${blocks}
</section>`;
}

// ---- evaluation (per instance) -------------------------------------------------------------------------

const COMPARISON_NAMES: Readonly<Record<string, string>> = {
  fake: 'synthetic',
  floor: 'held-out real (floor)',
  noise: 'noise',
};

const EVAL_COLUMNS: readonly { readonly head: string; readonly metric: string; readonly value: string }[] = [
  { head: 'FID', metric: 'fid', value: 'fid' },
  { head: '± (bootstrap)', metric: 'fid', value: 'fidStd' },
  { head: 'KID', metric: 'kid', value: 'kid' },
  { head: 'precision', metric: 'prdc', value: 'precision' },
  { head: 'recall', metric: 'prdc', value: 'recall' },
  { head: 'density', metric: 'prdc', value: 'density' },
  { head: 'coverage', metric: 'prdc', value: 'coverage' },
  { head: 'MS-SSIM', metric: 'msssim', value: 'msssim' },
  { head: 'MS-SSIM real', metric: 'msssim', value: 'msssimReal' },
];

/** One row per compared set, grouped by class (all classes first); columns no record has are left out. */
export function evaluationTable(
  records: readonly EvaluationRecord[],
  classNames: readonly string[],
  comparisons: readonly string[],
): Html {
  const feature = records.filter((r) => r.metric !== 'privacy' && r.metric !== 'projection');
  const find = (metric: string, comparison: string, cls: string | null) =>
    feature.find((r) => r.metric === metric && r.comparison === comparison && r.class === cls);
  const columns = EVAL_COLUMNS.filter((col) =>
    feature.some((r) => r.metric === col.metric && typeof r.values[col.value] === 'number'),
  );
  const groups: Html[] = [];
  for (const cls of [null, ...classNames]) {
    const rows: Html[] = [];
    for (const cmp of comparisons) {
      const any = feature.find((r) => r.comparison === cmp && r.class === cls);
      if (!any) continue;
      const cells = columns.map((col) => {
        const r = find(col.metric, cmp, cls);
        return num(stat(r?.values[col.value] ?? null), '', r?.note);
      });
      const rowClass = cmp === 'fake' ? raw(' class="baseline"') : '';
      rows.push(h`<tr${rowClass}><td>${COMPARISON_NAMES[cmp] ?? cmp}</td>${num(any.nCompared)}${cells}</tr>`);
    }
    if (rows.length === 0) continue;
    const title = cls === null ? 'all classes' : `class ${cls}`;
    groups.push(h`<tbody class="group">${groupHeader(title, columns.length + 2)}${rows}</tbody>`);
  }
  return table(['compared set', 'images', ...columns.map((c) => c.head)], groups, (i) => i > 0);
}

interface PrivacyDetails {
  readonly space?: string;
  readonly threshold?: number;
}

function privacy(data: StudyReportData, inst: InstanceReport, charts: InstanceCharts | undefined): Html {
  const records = (inst.evaluation?.records ?? []).filter((r) => r.metric === 'privacy');
  if (records.length === 0) return h``;
  const lines = records.map((r) => {
    const d = (r.details ?? {}) as PrivacyDetails;
    const ratio = r.values['medianRatio'] ?? null;
    const closer = r.values['closerThanHoldoutP5'] ?? null;
    const flagged = (ratio !== null && ratio < 0.9) || (closer !== null && closer > 0.1);
    const space = d.space ?? (r.extractor === null ? 'pixels' : 'features');
    return h`<li${flagged ? raw(' class="warning"') : ''}><strong>${space}</strong>: median distance from a synthetic image to its nearest training image ${stat(
      r.values['medianFakeToTrain'] ?? null,
    )}, against ${stat(r.values['medianHoldoutToTrain'] ?? null)} for held-out real images (ratio ${stat(ratio)}; about 1 or more is normal, well below 1 suggests copies). ${pct(closer)} % of the synthetic images are closer to a training image than the closest 5 % of held-out images (about 5 % expected; much more suggests memorisation).${
      flagged ? ' Look at the closest pairs below.' : ''
    }</li>`;
  });
  const { features, pixels } = inst.privacyPictures;
  const pic = (png: PngFile | null, title: string) =>
    png
      ? h`<figure><figcaption>${title} <span class="note">(top: synthetic; below: its nearest training image; closest first)</span></figcaption>${labelledPicture(
          png,
          ['synthetic', 'nearest training image'],
          data.summary.config.size,
          `${title}: synthetic images above their nearest training images`,
        )}</figure>`
      : '';
  const histograms = charts?.privacy.length
    ? h`<div class="chart-row">${charts.privacy.map((p) => h`<div class="chart">${raw(p.svg)}</div>`)}</div>${note(
        'Distance of each synthetic (red) and held-out real (blue) image to its nearest training image; dashed line: the held-out 5th percentile. Pixel distances favour smooth images: blurry or averaged synthetic images sit close to many training images without copying any. When the two spaces disagree, trust the feature space and look at the closest pairs.',
      )}`
    : '';
  return h`<h4>Privacy (memorisation)</h4>
<ul>${lines}</ul>
${histograms}
<div class="grids">${pic(features, 'Closest pairs in feature space')}${pic(pixels, 'Closest pairs in pixel space')}</div>`;
}

const PROJECTION_ROW_LABELS: Readonly<Record<string, readonly [string, string]>> = {
  train: ['training image', 'its projection'],
  holdout: ['held-out image', 'its projection'],
  synthetic: ['synthetic image', 'its projection'],
};

/** The projection metric's result: the verdict, median reconstruction distances, p and the pairs picture. */
export function projectionSection(data: StudyReportData, inst: InstanceReport): Html {
  const r = (inst.evaluation?.records ?? []).find((x) => x.metric === 'projection');
  if (!r) return h``;
  const d = (r.details ?? {}) as { verdict?: string; space?: string; sets?: Record<string, unknown> };
  if (d.verdict === undefined)
    return h`<h4>Latent projection</h4>
${note(`Not computed: ${r.note ?? 'no result'}.`)}`;
  const v = r.values;
  const signal = v['memorisationSignal'] === 1;
  const png = inst.projectionPicture ?? null;
  const sets = Object.keys(d.sets ?? {}).filter((k) => k in PROJECTION_ROW_LABELS);
  const labels = sets.flatMap((k) => PROJECTION_ROW_LABELS[k]!);
  const picture = png
    ? h`<figure><figcaption>Images above their reconstructions through the generator</figcaption>${labelledPicture(
        png,
        labels,
        data.summary.config.size,
        'images above their projections through the generator',
      )}</figure>`
    : '';
  return h`<h4>Latent projection (memorisation)</h4>
<p${signal ? raw(' class="warning"') : ''}><strong>${d.verdict}</strong></p>
<ul><li>Median reconstruction distance (pixel RMSE, ${d.space ?? 'z'}-space): ${stat(v['medianTrain'] ?? null)} training, ${stat(
    v['medianHoldout'] ?? null,
  )} held-out, ${stat(v['medianSynthetic'] ?? null)} synthetic (floor); ratio train/held-out ${stat(v['medianRatio'] ?? null)}.</li>
<li>One-sided Mann–Whitney U (training closer than held-out): p ${pValue(v['p'] ?? null)}; P(training image closer) ${stat(
    v['probTrainCloser'] ?? null,
  )} (0.5: no difference)${v['pFeatures'] === null || v['pFeatures'] === undefined ? '' : `; on feature distances p ${pValue(v['pFeatures'])} (not used for the verdict: the feature extractor was trained on the training images)`}.</li>
<li>${r.nReal} training and ${r.nCompared} held-out images, ${stat(v['secondsPerImage'] ?? null)} s per image projected.</li></ul>
${note('Each image is reconstructed by optimising the generator’s latent for it. A generator that memorised its training images reproduces them more closely than real images it never saw; synthetic images lie in its range and should reconstruct best.')}
<div class="grids">${picture}</div>`;
}

function instanceEvaluation(
  data: StudyReportData,
  inst: InstanceReport,
  charts: InstanceCharts | undefined,
): Html {
  const ev = inst.evaluation;
  if (!ev)
    return h`<h4>Evaluation</h4>
${note(inst.evaluationNote ?? 'No evaluation.')}`;
  const comparisons = ev.comparisons ?? ['fake', 'floor', 'noise'];
  const classNames = ev.classNames ?? data.summary.classNames;
  const x = ev.extractor;
  const warnings = ev.warnings ?? [];
  const extractor = x
    ? h`<div class="callout"><strong>Feature space${x.kind ? ` (${x.kind}${x.dim ? `, ${x.dim} dims` : ''})` : ''}:</strong> ${x.description ?? x.key ?? ''}</div>`
    : '';
  return h`<h4>Evaluation</h4>
<p>${ev.fake?.count ?? '?'} synthetic images against ${ev.real?.count ?? '?'} real images of the ${ev.real?.split ?? 'train'} split. The floor row compares ${ev.holdout?.count ?? '?'} held-out real images of the ${ev.holdout?.split ?? 'test'} split (what a perfect generator would score); the noise row uniform noise (a useless generator).</p>
${extractor}
${evaluationTable(ev.records, classNames, comparisons)}
${note('FID and KID: distance between the real and the compared feature distributions, lower is better — compare the synthetic row with the floor and noise rows, not with published FIDs. Precision and density: fidelity (synthetic images that look real); recall and coverage: diversity (real images the synthetic ones cover). MS-SSIM within a class: lower is more varied; compare with the real images’ value.')}
${privacy(data, inst, charts)}
${projectionSection(data, inst)}
${embeddingSection(inst.embedding ?? null, inst.embeddingNote ?? null, `emb-${data.instances.indexOf(inst)}`)}
${warnings.length ? h`<h4>Warnings</h4>${warnings.map((w) => h`<p class="warning">${w}</p>`)}` : ''}`;
}

// ---- downstream ----------------------------------------------------------------------------------------

const baselineOfCell = (c: CellSummary): Comparison | undefined =>
  c.comparisons.find((x) => x.role === 'baseline');

function classifierTable(s: StudySummary, classifier: string): Html {
  const cells = s.cells.filter((c) => c.classifier === classifier);
  const binary = cells.some((c) => c.metrics.sensitivity !== null || c.metrics.specificity !== null);
  const hasAuc = cells.some((c) => c.metrics.auc !== null);
  const head: string[] = ['condition', 'train real + syn.', 'n', 'accuracy %', 'bal. acc. %'];
  if (binary) head.push('sens. %', 'spec. %');
  head.push('macro F1 %', 'minority F1 %');
  if (hasAuc) head.push('AUC');
  head.push('Δ acc. (points)', 'verdict', 'p (Holm)');
  const shown: (Interval | null)[] = [];
  const row = (c: CellSummary) => {
    const units = c.units;
    const b = baselineOfCell(c);
    const counts = c.trainClassCounts.length
      ? `per class: ${classList(s.classNames, c.trainClassCounts)}`
      : undefined;
    shown.push(c.metrics.accuracy);
    const tds: Html[] = [
      h`<td>${c.condition}</td>`,
      num(`${c.trainReal} + ${c.trainSynthetic}`, '', counts),
      unitsCell(c),
      num(meanCi(c.metrics.accuracy)),
      num(pct(c.metrics.balancedAccuracy?.mean), '', ciTitle(c.metrics.balancedAccuracy, units)),
    ];
    if (binary) {
      shown.push(c.metrics.sensitivity, c.metrics.specificity);
      tds.push(num(meanCi(c.metrics.sensitivity)), num(meanCi(c.metrics.specificity)));
    }
    tds.push(
      num(pct(c.metrics.macroF1?.mean), '', ciTitle(c.metrics.macroF1, units)),
      num(pct(c.minorityF1?.mean), '', ciTitle(c.minorityF1, units)),
    );
    if (hasAuc) tds.push(num(c.metrics.auc ? c.metrics.auc.mean.toFixed(3) : '–', '', undefined));
    if (!b) {
      tds.push(num('baseline'), num(''), num(''));
    } else {
      const d = b.diff.accuracy;
      shown.push(d);
      const cls = directionClass(b.judgement.direction);
      const mcnemar = `McNemar: ${b.mcnemar.b} test images only ${b.against} got right, ${b.mcnemar.c} only this condition (pooled over pairs); unadjusted p ${pValue(b.mcnemar.p)}; paired t-test p ${pValue(b.pairedT.p)} over ${b.pairedT.n}`;
      tds.push(
        num(meanCi(d, true), cls, `against ${b.against}`),
        h`<td class="verdict${cls ? ` ${cls}` : ''}" title="${b.judgement.basis}">${DIRECTION_WORDS[b.judgement.direction]}</td>`,
        num(pValue(b.pHolm), '', mcnemar),
      );
    }
    const baseline = c.generator === null && (c.condition === 'real' || c.condition === 'real:noaug');
    return h`<tr${baseline ? raw(' class="baseline"') : ''}>${tds}</tr>`;
  };
  const groups = byGenerator(s, cells).map(
    ([g, list]) => h`<tbody class="group">${groupHeader(groupTitle(g), head.length)}${list.map(row)}</tbody>`,
  );
  return h`<h3>${classifier}</h3>
${table(head, groups, (i) => i > 0 && head[i] !== 'verdict')}
${logitFootnote(shown)}`;
}

/** The comparisons of each cell with its controls (oversampled, shuffled twins), one table per classifier. */
function controlsTable(s: StudySummary, classifier: string): Html | '' {
  const cells = s.cells.filter(
    (c) => c.classifier === classifier && c.comparisons.some((x) => x.role === 'control'),
  );
  if (cells.length === 0) return '';
  const head = ['against', 'Δ acc. (points)', 'McNemar b / c', 'p (Holm)', 'verdict', 'basis'];
  const shown: (Interval | null)[] = [];
  const groups = cells.map((c) => {
    const rows = c.comparisons
      .filter((x) => x.role === 'control')
      .map((x) => {
        shown.push(x.diff.accuracy);
        const cls = directionClass(x.judgement.direction);
        return h`<tr><td>${x.against}</td>${num(meanCi(x.diff.accuracy, true), cls)}${num(
          `${x.mcnemar.b} / ${x.mcnemar.c}`,
          '',
          `b: test images only ${x.against} got right; c: only ${c.condition} (pooled over pairs); unadjusted p ${pValue(x.mcnemar.p)}`,
        )}${num(pValue(x.pHolm))}<td class="verdict${cls ? ` ${cls}` : ''}">${DIRECTION_WORDS[x.judgement.direction]}</td><td class="text">${x.judgement.basis}</td></tr>`;
      });
    const title = `${c.generator ?? 'no generator'}: ${c.condition} against its controls`;
    return h`<tbody class="group">${groupHeader(title, head.length)}${rows}</tbody>`;
  });
  return h`<h4>${classifier}: comparisons with controls</h4>
${table(head, groups, (i) => i >= 1 && i <= 3)}
${logitFootnote(shown)}`;
}

/**
 * Classic augmentation side by side: rows the real split and each limited fraction; columns no augmentation
 * (`:noaug`), classic augmentation, and classic + each generator's synthetic images. Null unless the study
 * has a `:noaug` condition.
 */
function augmentationTable(s: StudySummary, classifier: string): Html | '' {
  if (!s.conditions.some((c) => c.endsWith(':noaug'))) return '';
  const cells = s.cells.filter((c) => c.classifier === classifier);
  const find = (generator: string | null, condition: string) =>
    cells.find((c) => c.generator === generator && c.condition === condition);
  const bases = [
    'real',
    ...s.conditions.filter((c) => {
      try {
        const p = parseCondition(c);
        return p.kind === 'limited' && !p.topUp && p.augment;
      } catch {
        return false;
      }
    }),
  ];
  const synthetic = (g: string, base: string): CellSummary[] => {
    if (base !== 'real')
      return [find(g, `${base}+synthetic`)].filter((c): c is CellSummary => c !== undefined);
    return cells.filter((c) => {
      if (c.generator !== g) return false;
      try {
        const p = parseCondition(c.condition);
        return p.kind === 'augmented' && !p.shuffled && p.augment;
      } catch {
        return false;
      }
    });
  };
  const shown: (Interval | null)[] = [];
  const value = (list: readonly (CellSummary | undefined)[], label: boolean): Html => {
    const present = list.filter((c): c is CellSummary => c !== undefined);
    if (present.length === 0) return num('–', '', 'not run');
    present.forEach((c) => shown.push(c.metrics.accuracy));
    return h`<td class="num" title="${present.map((c) => c.condition).join(', ')}">${present.map(
      (c, i) =>
        h`${i > 0 ? raw('<br>') : ''}${meanCi(c.metrics.accuracy)}${label && present.length > 1 ? ` (${c.condition.replace(/^real\+synthetic/, '')})` : ''}`,
    )}</td>`;
  };
  const rows = bases
    .filter((b) => find(null, b) || find(null, `${b}:noaug`))
    .map(
      (b) =>
        h`<tr><td>${b}</td>${value([find(null, `${b}:noaug`)], false)}${value([find(null, b)], false)}${s.generators.map(
          (g) => value(synthetic(g, b), true),
        )}</tr>`,
    );
  if (rows.length === 0) return '';
  const head = [
    'training images',
    'no augmentation (:noaug) %',
    'classic augmentation %',
    ...s.generators.map((g) => `classic + synthetic (${g}) %`),
  ];
  return h`<h4>${classifier}: no augmentation, classic, classic + synthetic (accuracy)</h4>
${table(head, h`<tbody>${rows}</tbody>`, (i) => i > 0)}
${logitFootnote(shown)}`;
}

function perClassTable(s: StudySummary, classifier: string): Html {
  const cells = s.cells.filter((c) => c.classifier === classifier);
  const head = [
    'condition',
    ...s.classNames.flatMap((n) => [`${n} precision %`, `${n} recall %`, `${n} F1 %`]),
  ];
  const shown: (Interval | null)[] = [];
  const row = (c: CellSummary) =>
    h`<tr><td>${c.condition}</td>${s.classNames.map((_, k) =>
      [c.perClass.precision[k], c.perClass.recall[k], c.perClass.f1[k]].map((i) => {
        shown.push(i ?? null);
        return num(meanCi(i ?? null));
      }),
    )}</tr>`;
  const groups = byGenerator(s, cells).map(
    ([g, list]) => h`<tbody class="group">${groupHeader(groupTitle(g), head.length)}${list.map(row)}</tbody>`,
  );
  return h`<details><summary>${classifier}: per-class precision, recall and F1</summary>
${table(head, groups, (i) => i > 0)}
${logitFootnote(shown)}
</details>`;
}

function jobsTable(s: StudySummary): Html {
  const head = [
    'classifier',
    'generator',
    'gen. seed',
    'condition',
    'seed',
    'train real + synthetic',
    'accuracy %',
    'balanced accuracy %',
    'macro F1 %',
    'AUC',
    'time',
  ];
  const rows = s.jobs.map(
    (j) =>
      h`<tr><td>${j.classifier}</td><td>${j.generator ?? '–'}</td>${num(j.generatorSeed ?? '–')}<td>${j.condition}</td>${num(j.seed)}${num(`${j.trainReal} + ${j.trainSynthetic}`)}${num(
        pct(j.values.accuracy),
      )}${num(pct(j.values.balancedAccuracy))}${num(pct(j.values.macroF1))}${num(
        j.values.auc === null ? '–' : j.values.auc.toFixed(3),
      )}${num(duration(j.seconds))}</tr>`,
  );
  return table(head, h`<tbody>${rows}</tbody>`, (i) => i === 2 || i >= 4);
}

function downstream(s: StudySummary): Html {
  const oneUnit = s.cells.every((c) => (c.metrics.accuracy?.n ?? 1) < 2)
    ? note(
        'One unit per cell (one classifier seed, one generator seed): no confidence intervals and no paired t-test; each verdict rests on McNemar’s test alone, which compares the test predictions image by image.',
      )
    : '';
  const augmentation = s.classifiers.map((c) => augmentationTable(s, c)).filter((x) => x !== '');
  const controls = s.classifiers.map((c) => controlsTable(s, c)).filter((x) => x !== '');
  return h`<section id="downstream"><h2>Downstream results</h2>
<p>Each classifier trained under each data condition and scored on the same ${s.testCount} real test images. Rows are grouped by the generator whose synthetic images the condition uses (conditions without synthetic images first). train real + syn.: real and synthetic training images (hover for the class counts); n: the units means and 95 % intervals are over (clf.: classifier seeds; gen.: generator seeds, each the mean over its classifier seeds); [lo, hi]: the 95 % interval (with two units or more; ${LOGIT_MARK} computed on the logit scale); bal. acc.: balanced accuracy; sens./spec.: sensitivity and specificity (binary tasks); minority F1: F1 of the class with the fewest real training images (${s.classNames[s.minorityClass] ?? '–'}); Δ acc.: change in accuracy, in percentage points, against the condition’s baseline (real under the same augmentation setting; a limited top-up against the same limited subset), hover for which; verdict: what the paired interval and McNemar’s test say together (hover for why); p (Holm): McNemar’s test on the test images, Holm-adjusted over the comparisons of a generator and classifier (hover for the counts).
<span class="swatch" style="background:var(--good)"></span> better,
<span class="swatch" style="background:var(--bad)"></span> worse,
<span class="swatch" style="background:var(--warn)"></span> not established (the two tests disagree).</p>
${oneUnit}
${s.classifiers.map((c) => classifierTable(s, c))}
${
  controls.length
    ? h`<h3>Comparisons with controls</h3>
<p>A gain from synthetic images should beat its controls: <code>oversampled</code> (the same class counts from repeated real images) and the shuffled-label twins (the same synthetic images with their labels permuted). b: test images only the control got right; c: only the condition.</p>
${controls}`
    : ''
}
${
  augmentation.length
    ? h`<h3>Classic augmentation and synthetic images</h3>
${note('Accuracy % [95 % CI] of each classifier without augmentation, with its classic augmentation, and with classic augmentation plus synthetic images. –: not run (conventional classifiers never augment, so the study skips their :noaug jobs).')}
${augmentation}`
    : ''
}
<h3>Per-class results</h3>
${s.classifiers.map((c) => perClassTable(s, c))}
<details><summary>Every job (${s.jobs.length})</summary>
${jobsTable(s)}
</details>
</section>`;
}

// ---- quality vs gain -----------------------------------------------------------------------------------

const P_METHODS: Readonly<Record<string, string>> = {
  'exact-permutation': 'exact permutation',
  't-approximation': 't approximation',
};

/** Spearman's ρ of every quality figure with every downstream change (rows no instance has are left out). */
function correlationTable(cells: readonly CorrelationCell[]): Html {
  const head = ['quality', 'effect', 'n', 'Spearman ρ', 'p', 'p method', '95 % CI (Fisher z)'];
  const rows = cells
    .filter((c) => c.n > 0)
    .map(
      (c) =>
        h`<tr><td>${QUALITY_NAMES[c.quality] ?? c.quality}</td><td>${EFFECT_NAMES[c.effect] ?? c.effect}</td>${num(
          c.n,
        )}${num(fixed(c.rho))}${num(pValue(c.p))}<td>${
          c.pMethod ? (P_METHODS[c.pMethod] ?? c.pMethod) : c.n < 3 ? 'needs n ≥ 3' : '–'
        }</td>${num(c.ci ? `[${fixed(c.ci[0])}, ${fixed(c.ci[1])}]` : c.n < 4 ? 'needs n ≥ 4' : '–')}</tr>`,
    );
  return table(head, h`<tbody>${rows}</tbody>`, (i) => i >= 2 && i !== 5);
}

function quality(s: StudySummary, charts: ReportCharts): Html | '' {
  const qvg = s.qualityVsGain;
  if (!qvg) return '';
  const combos: { condition: string; classifier: string }[] = [];
  for (const condition of s.conditions)
    for (const classifier of s.classifiers)
      if (qvg.points.some((p) => p.condition === condition && p.classifier === classifier))
        combos.push({ condition, classifier });
  const blocks = combos
    .map(({ condition, classifier }) => {
      const chart = charts.quality.find((q) => q.condition === condition && q.classifier === classifier);
      if (!chart) return null;
      const n = qualityPoints(qvg, condition, classifier).length;
      const cells = qvg.correlations.filter((c) => c.condition === condition && c.classifier === classifier);
      return h`<div class="chart">${raw(chart.svg)}</div>
<details><summary>${classifier} · ${condition}: Spearman’s ρ of every quality figure with every downstream change (${n} instances)</summary>
${correlationTable(cells)}
</details>`;
    })
    .filter((x) => x !== null);
  const fewest = Math.max(0, ...combos.map((c) => qualityPoints(qvg, c.condition, c.classifier).length));
  return h`<section id="quality"><h2>Quality vs gain</h2>
<p>Do generators that make better images (by FID and the other evaluation figures) also make better classifiers? One point per generator instance trained on the whole train split (each generator seed is one point): its FID against the mean change in accuracy its synthetic images brought over the baseline. Spearman’s ρ over instances, with an exact permutation p for up to 9 points and a Fisher-z interval from 4. Lower FID is better, so “better images, better classifiers” is a negative ρ.</p>
${blocks.length ? blocks : note(`Nothing to plot: every condition has fewer than two evaluated generator instances with an FID (at most ${fewest} here). Train more generators or generator seeds (generatorSeeds ≥ 3) to see whether image quality predicts the downstream gain.`)}
</section>`;
}

// ---- charts and footer ---------------------------------------------------------------------------------

function chartsSection(s: StudySummary, charts: ReportCharts): Html {
  const block = (title: string, svg: string | null, caption: string) =>
    svg ? h`<h3>${title}</h3><div class="chart">${raw(svg)}</div>${note(caption)}` : '';
  const ratios = s.conditions.filter((c) => /^real\+synthetic×/.test(c)).length;
  const ratio = charts.ratio
    ? block(
        'Accuracy vs amount of synthetic data',
        charts.ratio,
        'Synthetic images added per real image (0 = the real baseline); bars: 95 % CI.',
      )
    : ratios === 1
      ? note(
          'Accuracy vs synthetic ratio: the study has one synthetic ratio only (add e.g. real+synthetic:0.5 and :2 to see a trend).',
        )
      : '';
  const anyAugmented = s.classifiers.some((c) => bestAugmented(s.cells, c) !== null);
  const confusion = charts.confusion.length
    ? h`<h3>Confusion matrices</h3>
${charts.confusion.map((c) => h`<h4>${c.classifier}</h4><div class="chart">${raw(c.svg)}</div>`)}
${note(
  `Rows: true class; columns: predicted class; colour: share of the true class (row-normalised); numbers: test images (mean over jobs). Shown: real, and for each generator its synthetic-only condition and the augmented condition with the largest gain${anyAugmented ? '' : ' (this study has none)'}.`,
)}`
    : '';
  return h`<section id="charts"><h2>Charts</h2>
${block(
  'Accuracy by condition',
  charts.accuracy,
  'Points: mean test accuracy; bars: 95 % confidence interval (none with one unit); dashed lines: each classifier’s real-data baseline. Conditions with synthetic images are named after their generator.',
)}
${block(
  'Per-class F1',
  charts.perClassF1,
  'F1 of each class (mean) under each condition: which classes gain or lose from synthetic images.',
)}
${ratio}
${block(
  'Accuracy vs amount of real data',
  charts.limited,
  'Share of the real training images kept (stratified); squares: topped up with synthetic images (from a generator trained on that subset only) to the full class counts; 100 % is the real baseline.',
)}
${confusion}
</section>`;
}

const FILE_NOTES: Readonly<Record<string, string>> = {
  'results.json':
    'everything in this report: per-cell summaries, comparisons, quality vs gain, verdicts, one line per job',
  'results.csv':
    'one line per job (generator, generator seed, condition, classifier, seed, metrics, per-class F1)',
  'study.sqlite':
    'every job’s full result, including per-image predictions, and each generator instance’s record',
  'study.json': 'the resolved study config (what --resume reads)',
};

function footer(data: StudyReportData): Html {
  const files = Object.entries(data.files).filter(([, present]) => present);
  return h`<footer id="reading"><h2>How to read this report</h2>
<ul>
<li><strong>Units and intervals.</strong> Means and 95 % Student-t intervals are over units: generator seeds where a condition uses synthetic images and the generator was trained more than once, else classifier seeds (the n column says which). An interval marked ${LOGIT_MARK} was computed on the logit scale, because the t interval would have left the range the value can take. See “How to read the statistics” at the top for this study.</li>
<li><strong>Verdicts.</strong> An effect is called better or worse only when the 95 % interval of the paired differences excludes 0 and McNemar’s test (Holm-adjusted) is significant in the same direction; when only one of them says so, the verdict is “not established”; with one unit McNemar alone decides and the verdict says so.</li>
<li><strong>Controls.</strong> <code>oversampled</code> repeats real images to the same class counts as <code>rebalanced</code>; the shuffled twins use the very same synthetic images with their labels permuted. A gain that does not beat them comes from more steps, balanced batches or the label mix, not from what the synthetic images show.</li>
<li><strong>Floor and noise.</strong> Generative metrics have no absolute scale. The floor row compares held-out real images with the real reference: what a perfect generator would score. The noise row is what a useless one scores. A good generator sits near the floor.</li>
<li><strong>Feature space.</strong> FID, KID and precision/recall/density/coverage are computed in the feature space named in each evaluation; with the domain extractor they are comparable only within this dataset and extractor, never with published Inception FIDs.</li>
<li><strong>Sensitivity and specificity</strong> (binary tasks) are the recalls of the positive and of the negative class; macro F1 averages the classes’ F1 with equal weight; AUC is the area under the ROC curve.</li>
</ul>
<h3>Files</h3>
<ul>${files.map(([name]) => h`<li><code>${name}</code>${FILE_NOTES[name] ? ` — ${FILE_NOTES[name]}` : ''}</li>`)}
<li><code>generators/&lt;name&gt;/seed-&lt;g&gt;/&lt;all | limited-…pct&gt;/</code> — each generator instance’s run(s), synthetic-grid.png and evaluation/</li></ul>
<p class="note">In <code>${data.dir}</code></p>
</footer>`;
}

/** The report's content (what goes inside `<main>`): every section, from the header to the footer. */
export function reportBody(data: StudyReportData, charts: ReportCharts, meta: ReportMeta): Html {
  const s = data.summary;
  return h`${header(data, meta)}
${answer(s)}
${study(data)}
${generators(data, charts)}
${downstream(s)}
${quality(s, charts)}
${chartsSection(s, charts)}
${footer(data)}`;
}

/** The whole page. */
export function reportHtml(data: StudyReportData, charts: ReportCharts, meta: ReportMeta): string {
  const s = data.summary;
  const generator = `medsynth${meta.version ? ` ${meta.version}` : ''}`;
  const page = h`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="${generator}">
<title>medsynth study report — ${datasetName(s.config.data.source)}</title>
<style>${raw(REPORT_CSS)}</style>
</head>
<body>
<main>
${reportBody(data, charts, meta)}
</main>
</body>
</html>
`;
  return page.value;
}
