/**
 * A training run's page: where it is (status, kimg, speed, last losses), its sample grids over training time
 * (a slider over the ticks; without script, a list of the grids), the real images beside them, loss and
 * augmentation-probability curves, the last tick's numbers, evaluations of its images, and its options.
 */
import { duration } from '../../report/format.js';
import { h, type Html, type Markup } from '../../report/markup.js';
import type { RunDetail } from '../details.js';
import {
  chart,
  entryUrl,
  facts,
  fileUrl,
  gridPicture,
  note,
  num,
  stat,
  statusBadge,
  table,
  tiles,
} from './parts.js';
import { assetUrl, type Crumb, page } from './shell.js';

function tickLabel(d: RunDetail, i: number): string {
  const t = d.timeline[i]!;
  const kimg = t.kimg !== null ? ` · ${stat(t.kimg)} kimg` : '';
  return `grid ${i + 1} of ${d.timeline.length} · ${t.unit} ${t.step}${kimg}`;
}

function timeline(d: RunDetail, labels: readonly string[], cell: number | null): Html {
  const last = d.timeline.length - 1;
  const size = d.latest?.size ?? null;
  if (last < 0) {
    return d.latest
      ? h`<figure><figcaption>Latest samples</figcaption>${gridPicture(fileUrl(d.latest.rel), size, labels, cell, 'latest sample grid: one row per class')}</figure>`
      : note('No sample grid yet (samples/ is written at every tick).');
  }
  const ticks = d.timeline.map((t, i) => [fileUrl(t.rel), tickLabel(d, i)] as const);
  const list = d.timeline.map((t, i) => h`<li><a href="${fileUrl(t.rel)}">${tickLabel(d, i)}</a></li>`);
  return h`<figure class="timeline" data-ticks="${JSON.stringify(ticks)}"><figcaption>Samples over training time <span class="note">(fixed seeds: the same latent codes at every tick, one row per class)</span></figcaption>
${gridPicture(fileUrl(d.timeline[last]!.rel), size, labels, cell, 'sample grid: one row per class')}
<div class="timeline-controls" hidden><button type="button" data-step="-1" aria-label="previous grid">◀</button><input type="range" min="0" max="${last}" value="${last}" step="1" aria-label="training time"><button type="button" data-step="1" aria-label="next grid">▶</button><button type="button" data-play aria-pressed="false">play</button><output>${tickLabel(d, last)}</output></div>
<details><summary>Every grid (${d.timeline.length})</summary><ol class="ticks">${list}</ol></details>
</figure>`;
}

/** The last tick's numbers, every field (family statistics included). */
function lastTick(d: RunDetail): Html | '' {
  const t = d.ticks[d.ticks.length - 1];
  if (!t) return '';
  const rows = Object.entries(t)
    .filter(([, v]) => typeof v === 'number' || typeof v === 'string')
    .map(([k, v]) => h`<tr><td>${k}</td>${num(typeof v === 'number' ? stat(v) : String(v))}</tr>`);
  return h`<details><summary>Every number of the last tick</summary>${table(['field', 'value'], rows, (i) => i === 1)}</details>`;
}

function evaluations(d: RunDetail): Html {
  if (d.evaluations.length === 0)
    return note(
      h`No evaluation of this run in the served folder. <code>medsynth evaluate --fake ${d.dir} --out …</code> measures its images (FID, KID, precision/recall, privacy, embedding map).`,
    );
  const rows = d.evaluations.map(
    (e) =>
      h`<tr><td class="name"><a href="${entryUrl('evaluations', e.rel)}">${e.name}</a><small>${e.rel}</small></td>${num(stat(e.fid))}${num(stat(e.fidFloor))}${num(stat(e.kid))}${num(stat(e.precision))}${num(stat(e.recall))}${num(stat(e.coverage))}${num(stat(e.privacyRatio))}</tr>`,
  );
  return table(
    ['evaluation', 'FID ↓', 'floor FID', 'KID ↓', 'precision ↑', 'recall ↑', 'coverage ↑', 'privacy ratio'],
    rows,
    (i) => i > 0,
  );
}

function optionValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function optionsSection(d: RunDetail): Html {
  const o = d.options as Readonly<Record<string, unknown>> | null;
  const data = d.run?.data;
  const about: [string, Markup][] = [];
  if (data?.classNames)
    about.push([
      'classes',
      data.classNames
        .map((n, k) => `${n}${data.trainCounts?.[k] !== undefined ? ` ${data.trainCounts[k]}` : ''}`)
        .join(', '),
    ]);
  if (data?.trainImages !== undefined) about.push(['training images', data.trainImages]);
  if (data?.imageSize) about.push(['image size', data.imageSize.join(' × ')]);
  if (d.run?.started) about.push(['started', d.run.started]);
  if (d.run?.node) about.push(['node', d.run.node]);
  const backend = d.run?.backend as { backend?: unknown; reason?: unknown } | undefined;
  if (backend !== undefined)
    about.push([
      'backend',
      typeof backend === 'object' && backend !== null && typeof backend.backend === 'string'
        ? h`${backend.backend}${typeof backend.reason === 'string' ? `: ${backend.reason}` : ''} <details><summary>details</summary><code>${optionValue(backend)}</code></details>`
        : optionValue(backend),
    ]);
  const rows = o
    ? Object.entries(o).map(([k, v]) => h`<tr><td>${k}</td><td class="text">${optionValue(v)}</td></tr>`)
    : [];
  return h`<h2 id="options">Options and data</h2>
${about.length ? facts(about) : ''}
${o ? h`<details><summary>Every training option (options.json)</summary>${table(['option', 'value'], rows, () => false)}</details>` : note('No readable options.json.')}`;
}

function filesSection(d: RunDetail): Html {
  const rel = d.entry.rel;
  const files = d.files.map((n) => h`<li><a href="${fileUrl(`${rel}/${n}`)}">${n}</a></li>`);
  const checkpoints = d.checkpoints.length
    ? h`<li>checkpoints: ${d.checkpoints.join(', ')} (continue with <code>medsynth ${d.entry.federated ? 'federated serve' : 'train'} --resume ${d.dir}</code>; sample with <code>medsynth generate --run ${d.dir}</code>)</li>`
    : h`<li>no checkpoint yet</li>`;
  return h`<h2 id="files">Files</h2><ul>${files}${checkpoints}</ul>`;
}

export function runPage(d: RunDetail, crumbs: readonly Crumb[]): string {
  const e = d.entry;
  const o = d.options;
  const labels = d.run?.data?.classNames ?? e.classNames;
  const cell = o?.size ?? d.run?.data?.imageSize?.[0] ?? null;
  const last = d.ticks[d.ticks.length - 1];
  const seconds = d.result?.seconds ?? last?.seconds ?? null;
  const study =
    e.study !== null ? h` · part of study <a href="${entryUrl('studies', e.study)}">${e.study}</a>` : '';
  const problems = d.problems.length ? h`<p class="warning">${d.problems.join('; ')}.</p>` : '';
  const federated = e.federated
    ? h` <span class="badge" title="trained by federated learning: one tick per round, losses averaged over the sites">federated</span>`
    : '';
  const body = h`<h1>${e.name} ${statusBadge(e.status, e.stoppedBy)}${federated}</h1>
<p class="lead">${e.model ?? 'unknown model'}${o?.size ? ` · ${o.size} px` : ''} · ${e.dataset ?? 'unknown data'}${o?.preset ? ` · preset ${o.preset}` : ''}${o?.seed !== undefined ? ` · seed ${o.seed}` : ''}${study} · <a href="/api${entryUrl('runs', e.rel)}">JSON</a></p>
${problems}
${tiles([
  [
    'kimg (thousands of images shown)',
    e.kimgTarget !== null ? `${stat(e.kimg)} / ${stat(e.kimgTarget)}` : stat(e.kimg),
  ],
  [e.federated ? 'rounds' : 'ticks', d.ticks.length],
  ['training time', seconds !== null ? duration(seconds) : '–'],
  ['images per second', e.imagesPerSecond !== null ? Math.round(e.imagesPerSecond) : '–'],
  [`D loss (last ${e.federated ? 'round, mean over sites' : 'tick'})`, stat(last?.dLoss)],
  [`G loss (last ${e.federated ? 'round, mean over sites' : 'tick'})`, stat(last?.gLoss)],
  ['augment p', stat(last?.augmentP)],
  ['checkpoints', d.checkpoints.length],
])}
<h2 id="samples">Samples</h2>
<div class="two">
${timeline(d, labels, cell)}
${d.reals ? h`<figure><figcaption>Real training images</figcaption>${gridPicture(fileUrl(d.reals.rel), d.reals.size, labels, cell, 'real images: one row per class')}</figure>` : ''}
</div>
<h2 id="curves">Training curves</h2>
${chart(d.charts.loss) || note(e.federated ? 'No round yet (rounds.jsonl gets a line at every round).' : 'No statistics yet (stats.jsonl gets a line at every tick).')}
${d.charts.augment ? h`${chart(d.charts.augment)}${note('Adaptive augmentation: the probability p of each augmentation over training.')}` : ''}
${d.charts.loss ? note('Losses per tick, noisy by nature: a D loss near zero with a rising G loss means the discriminator has won; exploding or oscillating losses mean unstable training. Judge the images by an evaluation, not by the losses.') : ''}
${lastTick(d)}
<h2 id="evaluations">Evaluations</h2>
${evaluations(d)}
${optionsSection(d)}
${filesSection(d)}`;
  return page({ title: e.name, body, crumbs, scripts: [assetUrl('run.js')] });
}
