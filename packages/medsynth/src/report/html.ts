/**
 * The report page: one self-contained HTML document (inline CSS, images as data: URIs, charts as inline SVG,
 * no script, a Content-Security-Policy that forbids every network request). Sections: the answer (verdicts),
 * the study, real vs synthetic images, GAN training, synthetic-image evaluation, downstream results, charts,
 * how to read it. Every value from the study is escaped (markup.ts).
 */
import { basename } from 'node:path';
import type { CellSummary, Interval, StudySummary } from '../study/summary.js';
import { bestAugmented } from './charts.js';
import { duration, pct, pctInterval, pValue, signedPct, stat, utcDate } from './format.js';
import type { EvaluationRecord, PngFile, StudyReportData } from './load.js';
import { h, raw, type Html, type Markup } from './markup.js';

/** The rendered charts (SVG markup), null or empty where the study has nothing to draw. */
export interface ReportCharts {
  readonly loss: string | null;
  readonly augment: string | null;
  readonly accuracy: string | null;
  readonly perClassF1: string | null;
  readonly ratio: string | null;
  readonly limited: string | null;
  readonly confusion: readonly { readonly classifier: string; readonly svg: string }[];
  readonly privacy: readonly { readonly space: string; readonly svg: string }[];
}

export interface ReportMeta {
  readonly generatedAt: Date;
  readonly version: string | null;
}

/** Adjusted p below which a difference from the real baseline is highlighted. */
export const SIGNIFICANCE = 0.05;

const CSS = `
:root { --fg: #1d2329; --muted: #5b6670; --line: #dde2e6; --bg-soft: #f5f7f9; --accent: #1f5f99;
  --good: #dff3e4; --good-fg: #17602e; --bad: #fbe3e1; --bad-fg: #9b1c13; --warn: #fff4d6; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 40px 0 12px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 24px 0 8px; }
h4 { font-size: 0.95rem; margin: 16px 0 6px; }
p { margin: 8px 0; }
a { color: var(--accent); }
code { font: 0.88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--bg-soft);
  padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
.sub { color: var(--muted); margin: 0 0 8px; }
nav.toc { font-size: 0.92rem; display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 8px 0 0; }
.note { color: var(--muted); font-size: 0.93rem; }
.callout { background: var(--bg-soft); border-left: 4px solid var(--accent); padding: 8px 12px; margin: 12px 0; }
.warning { background: var(--warn); border-left: 4px solid #c99a06; padding: 8px 12px; margin: 8px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
ul.verdicts { list-style: none; padding: 0; margin: 8px 0; }
ul.verdicts li { padding: 7px 12px; margin: 6px 0; background: var(--bg-soft); border-left: 4px solid var(--accent);
  border-radius: 3px; }
.scroll { overflow-x: auto; margin: 8px 0 4px; }
table { border-collapse: collapse; font-size: 0.86rem; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); }
th { text-align: left; font-weight: 600; background: var(--bg-soft); vertical-align: bottom; }
td:first-child { white-space: nowrap; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.ci { color: var(--muted); }
tbody.group th { background: #fff; border-bottom: 1px solid var(--fg); padding-top: 12px; }
tr.baseline td { font-weight: 600; }
td.better { background: var(--good); color: var(--good-fg); font-weight: 600; }
td.worse { background: var(--bad); color: var(--bad-fg); font-weight: 600; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; vertical-align: -1px; }
.grids { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px 28px; }
figure { margin: 12px 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
figcaption .note { font-weight: normal; }
.grid-wrap { display: flex; align-items: stretch; }
.grid-labels { position: relative; flex: 0 0 7.5em; }
.grid-labels span { position: absolute; right: 8px; left: 0; display: flex; align-items: center;
  justify-content: flex-end; text-align: right; font-size: 0.85rem; line-height: 1.1; overflow: hidden; }
.grid-wrap img { flex: 0 1 auto; min-width: 0; width: 100%; height: auto; image-rendering: pixelated;
  border-radius: 2px; }
.chart { margin: 12px 0 8px; overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; }
.chart-row { display: flex; flex-wrap: wrap; gap: 12px 28px; }
.chart-row > .chart { flex: 0 0 auto; max-width: 100%; }
details { margin: 12px 0; }
summary { cursor: pointer; color: var(--accent); }
footer { margin-top: 40px; font-size: 0.93rem; }
footer li { margin: 4px 0; }
@media print { .chart, figure, table { break-inside: avoid; } }
`;

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

// ---- sections ------------------------------------------------------------------------------------------

const SECTIONS: readonly (readonly [string, string])[] = [
  ['answer', 'The answer'],
  ['study', 'The study'],
  ['images', 'Images'],
  ['training', 'GAN training'],
  ['evaluation', 'Synthetic-image evaluation'],
  ['downstream', 'Downstream results'],
  ['charts', 'Charts'],
  ['reading', 'How to read'],
];

function header(data: StudyReportData, meta: ReportMeta): Html {
  const s = data.summary;
  const version = meta.version ? ` · medsynth ${meta.version}` : '';
  return h`<header>
<h1>Can synthetic images replace or augment the real ones? — ${datasetName(s.config.data.source)}</h1>
<p class="sub">medsynth study report${version} · study finished ${utcDate(s.createdAt)} · report made ${utcDate(meta.generatedAt)}</p>
<p class="sub">Study directory <code>${data.dir}</code></p>
<nav class="toc">${SECTIONS.map(([id, title]) => h`<a href="#${id}">${title}</a>`)}</nav>
</header>`;
}

/** The study's questions, in the order the answer takes them. */
const QUESTIONS: readonly (readonly [string, string])[] = [
  ['replace', 'Can synthetic images replace the real ones?'],
  ['augment', 'Do they help when added to the real ones?'],
  ['limited', 'Do they make up for having little real data?'],
  ['classes', 'Which classes gain from rebalancing?'],
];

function answer(s: StudySummary): Html {
  const seeds = s.config.seeds.length;
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
  const seedNote =
    seeds === 1
      ? 'One seed: no confidence intervals — run more seeds (e.g. --seeds 0-4) before trusting small differences.'
      : `${seeds} seeds per condition.`;
  return h`<section id="answer"><h2>The answer</h2>
${list}
${note(`Test set: ${s.testCount} real images (${classList(s.classNames, s.testClassCounts)}), the same for every condition. ${seedNote}`)}
</section>`;
}

function generatorFacts(data: StudyReportData): string {
  const g = data.summary.config.generator;
  const spec = data.gan?.spec;
  const result = data.gan?.result;
  const parts: string[] = [];
  parts.push(
    g.run !== undefined
      ? `existing run ${g.run}`
      : `trained in this study (${optionsText(g.train) || 'defaults'})`,
  );
  if (spec) {
    const model = [
      spec['family'],
      spec['conditioning'] !== undefined ? `${String(spec['conditioning'])} conditioning` : undefined,
      spec['zDim'] !== undefined ? `z ${String(spec['zDim'])}` : undefined,
    ].filter((x) => x !== undefined);
    if (model.length) parts.push(model.map(String).join(', '));
  }
  if (result) {
    const trained = [
      typeof result['kimg'] === 'number' ? `${stat(result['kimg'])} kimg` : null,
      typeof result['seconds'] === 'number' ? `in ${duration(result['seconds'])}` : null,
      typeof result['stoppedBy'] === 'string' ? `(stopped by ${result['stoppedBy']})` : null,
    ].filter((x) => x !== null);
    if (trained.length) parts.push(`trained ${trained.join(' ')}`);
  }
  if (g.checkpoint !== undefined) parts.push(`checkpoint ${g.checkpoint}`);
  if (g.truncation !== undefined) parts.push(`truncation ψ ${g.truncation}`);
  if (g.sampling !== undefined) {
    const { steps, eta, guidance } = g.sampling;
    const said = [
      steps !== undefined ? `${steps} DDIM steps` : null,
      eta !== undefined ? `η ${eta}` : null,
      guidance !== undefined ? `guidance ${guidance}` : null,
    ].filter((x) => x !== null);
    if (said.length) parts.push(`sampled with ${said.join(', ')}`);
  }
  const pool = data.summary.pool;
  if (pool && pool.seconds > 0)
    parts.push(
      `synthetic pool of ${pool.images} images sampled in ${duration(pool.seconds)} ` +
        `(${stat(pool.images / pool.seconds)} images/s)`,
    );
  return parts.join(' · ');
}

function study(data: StudyReportData): Html {
  const s = data.summary;
  const c = s.config;
  const real = s.cells.find((x) => x.condition === 'real');
  const ev = data.evaluation;
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
    ['classes', `${s.classNames.length}: ${s.classNames.join(', ')}`],
    ['images', imageFacts.join(' · ')],
    ['preset', c.preset ?? 'custom'],
    ['image size', `${c.size} px, channels ${String(c.channels)}`],
    ['seeds', c.seeds.join(', ')],
    ['conditions', s.conditions.join(', ')],
    ['classifiers', classifiers.join(', ')],
  ];
  if (c.positiveClass !== undefined || s.classNames.length === 2)
    facts.push(['positive class', `${c.positiveClass ?? s.classNames[1] ?? ''} (sensitivity is its recall)`]);
  facts.push(['generator', generatorFacts(data)]);
  const e = c.evaluate;
  const evSets =
    ev?.real?.count !== undefined
      ? ` · real reference ${ev.real.split ?? ''} ${ev.real.count}, held-out ${ev.holdout?.count ?? '–'}, synthetic ${ev.fake?.count ?? '–'}`
      : '';
  facts.push([
    'evaluation',
    e?.enabled === false
      ? 'disabled'
      : `${(e?.metrics ?? []).join(', ')} in ${e?.extractor ?? 'domain'} features${evSets}`,
  ]);
  return h`<section id="study"><h2>The study</h2>
<dl class="facts">${facts.map(([k, v]) => h`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
</section>`;
}

function images(data: StudyReportData): Html {
  const s = data.summary;
  const fig = (png: PngFile | null, title: string, file: string) =>
    png
      ? h`<figure><figcaption>${title}</figcaption>${labelledPicture(png, s.classNames, s.config.size, `${title}: one row per class`)}</figure>`
      : h`<figure><figcaption>${title}</figcaption>${note(`No picture (${file} is missing).`)}</figure>`;
  return h`<section id="images"><h2>Real and synthetic images</h2>
<p>One row per class (${s.classNames.join(', ')}), the first ten images of each.</p>
<div class="grids">
${fig(data.realGrid, 'Real (training split)', 'real-grid.png')}
${fig(data.syntheticGrid, 'Synthetic (from the generator)', 'synthetic-grid.png')}
</div>
</section>`;
}

function training(data: StudyReportData, charts: ReportCharts): Html {
  const gan = data.gan;
  const ticks = gan?.ticks ?? [];
  const last = ticks[ticks.length - 1];
  const speed = ticks.filter((t) => t.imagesPerSecond !== null).map((t) => t.imagesPerSecond!);
  const time = last?.seconds !== null && last?.seconds !== undefined ? ` in ${duration(last.seconds)}` : '';
  const rate = speed.length
    ? `, ${Math.round(speed.reduce((a, b) => a + b, 0) / speed.length)} images/s on average`
    : '';
  const summary = last ? ` ${ticks.length} ticks up to ${stat(last.kimg)} kimg${time}${rate}.` : '';
  const caption =
    'Losses are per tick and noisy by nature: a D loss near zero with a rising G loss means the discriminator has won; exploding or oscillating losses mean unstable training. Judge the images by the evaluation below, not by the losses.';
  return h`<section id="training"><h2>GAN training</h2>
${gan ? h`<p class="note">Run <code>${gan.dir}</code>.${summary}</p>` : ''}
${data.ganNote ? note(data.ganNote) : ''}
${charts.loss ? h`<div class="chart">${raw(charts.loss)}</div>${note(caption)}` : ''}
${charts.augment ? h`<div class="chart">${raw(charts.augment)}</div>${note('Adaptive augmentation: the probability p of each augmentation over training.')}` : ''}
</section>`;
}

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
function evaluationTable(
  records: readonly EvaluationRecord[],
  classNames: readonly string[],
  comparisons: readonly string[],
): Html {
  const feature = records.filter((r) => r.metric !== 'privacy');
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
    groups.push(
      h`<tbody class="group"><tr><th colspan="${columns.length + 2}">${title}</th></tr>${rows}</tbody>`,
    );
  }
  return table(['compared set', 'images', ...columns.map((c) => c.head)], groups, (i) => i > 0);
}

interface PrivacyDetails {
  readonly space?: string;
  readonly threshold?: number;
}

function privacy(data: StudyReportData, charts: ReportCharts): Html {
  const records = (data.evaluation?.records ?? []).filter((r) => r.metric === 'privacy');
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
  const { features, pixels } = data.privacyPictures;
  const pic = (png: PngFile | null, title: string) =>
    png
      ? h`<figure><figcaption>${title} <span class="note">(top: synthetic; below: its nearest training image; closest first)</span></figcaption>${labelledPicture(
          png,
          ['synthetic', 'nearest training image'],
          data.summary.config.size,
          `${title}: synthetic images above their nearest training images`,
        )}</figure>`
      : '';
  const histograms = charts.privacy.length
    ? h`<div class="chart-row">${charts.privacy.map((p) => h`<div class="chart">${raw(p.svg)}</div>`)}</div>${note(
        'Distance of each synthetic (red) and held-out real (blue) image to its nearest training image; dashed line: the held-out 5th percentile. Pixel distances favour smooth images: blurry or averaged synthetic images sit close to many training images without copying any. When the two spaces disagree, trust the feature space and look at the closest pairs.',
      )}`
    : '';
  return h`<h3>Privacy (memorisation)</h3>
<ul>${lines}</ul>
${histograms}
<div class="grids">${pic(features, 'Closest pairs in feature space')}${pic(pixels, 'Closest pairs in pixel space')}</div>`;
}

function evaluation(data: StudyReportData, charts: ReportCharts): Html {
  const ev = data.evaluation;
  if (!ev)
    return h`<section id="evaluation"><h2>Synthetic-image evaluation</h2>
${note(data.evaluationNote ?? 'No evaluation.')}
</section>`;
  const comparisons = ev.comparisons ?? ['fake', 'floor', 'noise'];
  const classNames = ev.classNames ?? data.summary.classNames;
  const x = ev.extractor;
  const warnings = ev.warnings ?? [];
  const fakeDetail = ev.fake?.detail ? ` (${ev.fake.detail})` : '';
  const extractor = x
    ? h`<div class="callout"><strong>Feature space${x.kind ? ` (${x.kind}${x.dim ? `, ${x.dim} dims` : ''})` : ''}:</strong> ${x.description ?? x.key ?? ''}</div>`
    : '';
  return h`<section id="evaluation"><h2>Synthetic-image evaluation</h2>
<p>${ev.fake?.count ?? '?'} synthetic images${fakeDetail} against ${ev.real?.count ?? '?'} real images of the ${ev.real?.split ?? 'train'} split. The floor row compares ${ev.holdout?.count ?? '?'} held-out real images of the ${ev.holdout?.split ?? 'test'} split (what a perfect generator would score); the noise row uniform noise (a useless generator).</p>
${extractor}
${evaluationTable(ev.records, classNames, comparisons)}
${note('FID and KID: distance between the real and the compared feature distributions, lower is better — compare the synthetic row with the floor and noise rows, not with published FIDs. Precision and density: fidelity (synthetic images that look real); recall and coverage: diversity (real images the synthetic ones cover). MS-SSIM within a class: lower is more varied; compare with the real images’ value.')}
${privacy(data, charts)}
${warnings.length ? h`<h3>Warnings</h3>${warnings.map((w) => h`<p class="warning">${w}</p>`)}` : ''}
</section>`;
}

/** Whether a condition differs significantly from the real baseline (Holm-adjusted McNemar), and which way. */
export function significance(c: CellSummary): 'better' | 'worse' | null {
  const v = c.vsReal;
  if (!v || v.pHolm === null || !(v.pHolm < SIGNIFICANCE)) return null;
  const diff = v.accuracyDiff?.mean ?? v.mcnemar.c - v.mcnemar.b;
  return diff > 0 ? 'better' : diff < 0 ? 'worse' : null;
}

function classifierTable(s: StudySummary, classifier: string): Html {
  const cells = s.cells.filter((c) => c.classifier === classifier);
  const multiSeed = cells.some((c) => (c.metrics.accuracy?.n ?? 0) > 1);
  const binary = cells.some((c) => c.metrics.sensitivity !== null || c.metrics.specificity !== null);
  const hasAuc = cells.some((c) => c.metrics.auc !== null);
  const head: string[] = ['condition', 'train real + syn.', 'seeds', 'accuracy %'];
  if (multiSeed) head.push('95 % CI');
  head.push('bal. acc. %');
  if (binary) head.push('sens. %', 'spec. %');
  head.push('macro F1 %');
  if (hasAuc) head.push('AUC');
  head.push('Δ acc. (points)');
  if (multiSeed) head.push('Δ 95 % CI');
  head.push('p t‑test', 'p McNemar (Holm)');
  const m = (i: Interval | null) => pct(i?.mean ?? null);
  const rows = cells.map((c) => {
    const sig = significance(c) ?? '';
    const v = c.vsReal;
    const counts = c.trainClassCounts.length
      ? `per class: ${classList(s.classNames, c.trainClassCounts)}`
      : undefined;
    const tds: Html[] = [
      h`<td>${c.condition}</td>`,
      num(`${c.trainReal} + ${c.trainSynthetic}`, '', counts),
      num(c.seeds.length),
      num(m(c.metrics.accuracy)),
    ];
    if (multiSeed) tds.push(num(pctInterval(c.metrics.accuracy), 'ci'));
    tds.push(num(m(c.metrics.balancedAccuracy)));
    if (binary) tds.push(num(m(c.metrics.sensitivity)), num(m(c.metrics.specificity)));
    tds.push(num(m(c.metrics.macroF1)));
    if (hasAuc) tds.push(num(c.metrics.auc ? c.metrics.auc.mean.toFixed(3) : '–'));
    if (!v) {
      tds.push(num('baseline'));
      if (multiSeed) tds.push(num(''));
      tds.push(num(''), num(''));
    } else {
      const pT = v.pairedT.p;
      const mcnemar = `McNemar: ${v.mcnemar.b} test images only the real baseline got right, ${v.mcnemar.c} only this condition (over all seeds); unadjusted p ${pValue(v.mcnemar.p)}`;
      tds.push(num(signedPct(v.accuracyDiff?.mean ?? null), sig));
      if (multiSeed) tds.push(num(pctInterval(v.accuracyDiff, true), 'ci'));
      tds.push(num(pValue(pT), pT !== null && pT < SIGNIFICANCE ? sig : ''));
      tds.push(num(pValue(v.pHolm), sig, mcnemar));
    }
    return h`<tr${c.condition === 'real' ? raw(' class="baseline"') : ''}>${tds}</tr>`;
  });
  return h`<h3>${classifier}</h3>
${table(head, h`<tbody>${rows}</tbody>`, (i) => i > 0)}`;
}

function perClassTable(s: StudySummary, classifier: string): Html {
  const cells = s.cells.filter((c) => c.classifier === classifier);
  const head = ['condition', ...s.classNames.flatMap((n) => [`${n} F1 %`, `${n} recall %`])];
  const rows = cells.map(
    (c) =>
      h`<tr><td>${c.condition}</td>${s.classNames.map((_, k) => [
        num(pct(c.perClassF1[k]?.mean ?? null)),
        num(pct(c.perClassRecall[k]?.mean ?? null)),
      ])}</tr>`,
  );
  return h`<h4>${classifier}</h4>
${table(head, h`<tbody>${rows}</tbody>`, (i) => i > 0)}`;
}

function jobsTable(s: StudySummary): Html {
  const head = [
    'classifier',
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
      h`<tr><td>${j.classifier}</td><td>${j.condition}</td>${num(j.seed)}${num(`${j.trainReal} + ${j.trainSynthetic}`)}${num(
        pct(j.values.accuracy),
      )}${num(pct(j.values.balancedAccuracy))}${num(pct(j.values.macroF1))}${num(
        j.values.auc === null ? '–' : j.values.auc.toFixed(3),
      )}${num(duration(j.seconds))}</tr>`,
  );
  return table(head, h`<tbody>${rows}</tbody>`, (i) => i >= 2);
}

function downstream(s: StudySummary): Html {
  const oneSeed =
    s.config.seeds.length === 1
      ? note(
          'One seed: no confidence intervals and no paired t-test (it needs two seeds or more); McNemar’s test still compares the test predictions image by image.',
        )
      : '';
  return h`<section id="downstream"><h2>Downstream results</h2>
<p>Each classifier trained under each data condition and scored on the same ${s.testCount} real test images: accuracy, balanced accuracy (bal. acc.), sensitivity (sens.) and specificity (spec.) for binary tasks, macro F1 and AUC, as means over seeds. train real + syn.: real and synthetic training images; Δ acc. is the change in accuracy, in percentage points, against the same classifier trained on the real images only (the baseline, in bold); p t-test: paired t-test over seeds; p McNemar (Holm): McNemar’s test on the test images, Holm-adjusted (hover for the counts).
<span class="swatch" style="background:var(--good)"></span> significantly better,
<span class="swatch" style="background:var(--bad)"></span> significantly worse (Holm-adjusted McNemar p &lt; ${SIGNIFICANCE}).</p>
${oneSeed}
${s.classifiers.map((c) => classifierTable(s, c))}
<details><summary>Per-class F1 and recall</summary>
${s.classifiers.map((c) => perClassTable(s, c))}
</details>
<details><summary>Every job (${s.jobs.length})</summary>
${jobsTable(s)}
</details>
</section>`;
}

function chartsSection(s: StudySummary, charts: ReportCharts): Html {
  const block = (title: string, svg: string | null, caption: string) =>
    svg ? h`<h3>${title}</h3><div class="chart">${raw(svg)}</div>${note(caption)}` : '';
  const ratios = s.conditions.filter((c) => /^real\+synthetic×/.test(c)).length;
  const ratio = charts.ratio
    ? block(
        'Accuracy vs amount of synthetic data',
        charts.ratio,
        'Synthetic images added per real image (0 = the real baseline); bars: 95 % CI over seeds.',
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
  `Rows: true class; columns: predicted class; colour: share of the true class (row-normalised); numbers: test images (mean over seeds). Shown: real, synthetic and the best augmented condition of each classifier${anyAugmented ? '' : ' (this study has none)'}.`,
)}`
    : '';
  return h`<section id="charts"><h2>Charts</h2>
${block(
  'Accuracy by condition',
  charts.accuracy,
  'Points: mean test accuracy over seeds; bars: 95 % confidence interval (none with one seed); dashed lines: each classifier’s real-data baseline.',
)}
${block(
  'Per-class F1',
  charts.perClassF1,
  'F1 of each class (mean over seeds) under each condition: which classes gain or lose from synthetic images.',
)}
${ratio}
${block(
  'Accuracy vs amount of real data',
  charts.limited,
  'Share of the real training images kept (stratified); squares: topped up with synthetic images to the full class counts; 100 % is the real baseline.',
)}
${confusion}
</section>`;
}

const FILE_NOTES: Readonly<Record<string, string>> = {
  'results.json': 'everything in this report: per-cell summaries, comparisons, verdicts, one line per job',
  'results.csv': 'one line per job (condition, classifier, seed, metrics, per-class F1)',
  'study.sqlite': 'every job’s full result, including per-image predictions',
  'study.json': 'the resolved study config (what --resume reads)',
};

function footer(data: StudyReportData): Html {
  const files = Object.entries(data.files).filter(([, present]) => present);
  return h`<footer id="reading"><h2>How to read this report</h2>
<ul>
<li><strong>Floor and noise.</strong> Generative metrics have no absolute scale. The floor row compares held-out real images with the real reference: what a perfect generator would score. The noise row is what a useless one scores. A good generator sits near the floor.</li>
<li><strong>Feature space.</strong> FID, KID and precision/recall/density/coverage are computed in the feature space named in the evaluation; with the domain extractor they are comparable only within this dataset and extractor, never with published Inception FIDs.</li>
<li><strong>Confidence intervals</strong> are 95 % Student-t intervals of the mean over seeds (each seed retrains the classifier, reshuffles the data and redraws limited subsets). With one seed there are none.</li>
<li><strong>Tests against the real baseline.</strong> The paired t-test compares accuracies seed by seed. McNemar’s exact test compares the predictions image by image on the test set, with the discordant pairs pooled over seeds; its p-values are Holm-adjusted over the conditions of each classifier. Highlighted cells have an adjusted p &lt; ${SIGNIFICANCE}.</li>
<li><strong>Sensitivity and specificity</strong> (binary tasks) are the recalls of the positive and of the negative class; macro F1 averages the classes’ F1 with equal weight; AUC is the area under the ROC curve.</li>
</ul>
<h3>Files</h3>
<ul>${files.map(([name]) => h`<li><code>${name}</code>${FILE_NOTES[name] ? ` — ${FILE_NOTES[name]}` : ''}</li>`)}</ul>
<p class="note">In <code>${data.dir}</code></p>
</footer>`;
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
<style>${raw(CSS)}</style>
</head>
<body>
<main>
${header(data, meta)}
${answer(s)}
${study(data)}
${images(data)}
${training(data, charts)}
${evaluation(data, charts)}
${downstream(s)}
${chartsSection(s, charts)}
${footer(data)}
</main>
</body>
</html>
`;
  return page.value;
}
