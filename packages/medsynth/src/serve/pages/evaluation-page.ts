/**
 * An evaluation's page: what was compared (real, held-out and synthetic sets, the feature space), the metric
 * table per class (the report's own table, report/html.ts), the real and synthetic grids, the privacy panel
 * (distance figures, histograms, and the closest synthetic–training pairs for a person to judge copies), the
 * evaluation's warnings, and a link to the embedding map when there is one.
 */
import { evaluationTable } from '../../report/html.js';
import { duration } from '../../report/format.js';
import type { EvaluationRecord } from '../../report/load.js';
import { h, raw, type Html, type Markup } from '../../report/markup.js';
import type { EvaluationDetail } from '../details.js';
import { datasetName } from '../discover.js';
import type { EvaluationJson } from '../read.js';
import { chart, entryUrl, facts, fileUrl, gridPicture, note, stat } from './parts.js';
import { type Crumb, page } from './shell.js';

type SetInfo = NonNullable<EvaluationJson['real']>;

function setText(s: SetInfo | null | undefined): string {
  if (!s) return '–';
  const parts = [
    s.kind ?? null,
    s.source ? datasetName(s.source) : null,
    s.split ? `${s.split} split` : null,
    s.count !== undefined ? `${s.count} images` : null,
  ].filter((x) => x !== null);
  return parts.join(' · ') || '–';
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)} %`;

function privacy(d: EvaluationDetail, cell: number | null): Html | '' {
  const ev = d.evaluation;
  const records = (ev?.records ?? []).filter((r) => r.metric === 'privacy');
  if (records.length === 0 && !d.closest.features && !d.closest.pixels) return '';
  const lines = records.map((r) => {
    const details = (r.details ?? {}) as { space?: string };
    const ratio = r.values['medianRatio'] ?? null;
    const closer = r.values['closerThanHoldoutP5'] ?? null;
    const flagged = (ratio !== null && ratio < 0.9) || (closer !== null && closer > 0.1);
    const space = details.space ?? (r.extractor === null ? 'pixels' : 'features');
    return h`<li${flagged ? raw(' class="warning"') : ''}><strong>${space}</strong>: median distance from a synthetic image to its nearest training image ${stat(r.values['medianFakeToTrain'])}, against ${stat(r.values['medianHoldoutToTrain'])} for held-out real images (ratio ${stat(ratio)}; about 1 or more is normal, well below 1 suggests copies). ${pct(closer)} of the synthetic images are closer to a training image than the closest 5 % of held-out images (about 5 % expected).${flagged ? ' Look at the closest pairs below.' : ''}</li>`;
  });
  const pair = (p: EvaluationDetail['closest']['features'], title: string) =>
    p
      ? h`<figure><figcaption>${title} <span class="note">(top: synthetic; below: its nearest training image; closest first)</span></figcaption>${gridPicture(fileUrl(p.rel), p.size, ['synthetic', 'nearest training image'], cell, `${title}: synthetic images above their nearest training images`)}</figure>`
      : '';
  return h`<h2 id="privacy">Privacy (memorisation)</h2>
${lines.length ? h`<ul>${lines}</ul>` : ''}
${d.privacyCharts.length ? h`<div class="chart-row">${d.privacyCharts.map((c) => chart(c.svg))}</div>${note('Distance of each synthetic (red) and held-out real (blue) image to its nearest training image; dashed line: the held-out 5th percentile. When pixel and feature spaces disagree, trust the feature space and look at the closest pairs.')}` : ''}
<div class="grids">${pair(d.closest.features, 'Closest pairs in feature space')}${pair(d.closest.pixels, 'Closest pairs in pixel space')}</div>`;
}

export function evaluationPage(d: EvaluationDetail, crumbs: readonly Crumb[]): string {
  const e = d.entry;
  const ev = d.evaluation;
  const labels = ev?.classNames ?? e.classNames;
  const cell = ev?.shape?.[0] ?? null;
  const x = ev?.extractor;
  const about: [string, Markup][] = [
    [
      'synthetic',
      h`${setText(ev?.fake)}${e.fakeRun ? h` (<a href="${entryUrl('runs', e.fakeRun)}">its run</a>)` : ''}`,
    ],
    ['real', setText(ev?.real)],
    ['held-out real', ev?.holdout ? setText(ev.holdout) : 'none (no floor row, no privacy reference)'],
    ['classes', labels.join(', ') || '–'],
  ];
  if (ev?.fake?.detail) about.push(['synthetic from', ev.fake.detail]);
  if (ev?.createdAt) about.push(['made', ev.createdAt]);
  if (ev?.seconds !== undefined && ev.seconds !== null) about.push(['took', duration(ev.seconds)]);
  if (e.study) about.push(['study', h`<a href="${entryUrl('studies', e.study)}">${e.study}</a>`]);
  const extractor = x
    ? h`<div class="callout"><strong>Feature space${x.kind ? ` (${x.kind}${x.dim ? `, ${x.dim} dims` : ''})` : ''}:</strong> ${x.description ?? x.key ?? ''}</div>`
    : '';
  const comparisons = ev?.comparisons ?? ['fake', 'floor', 'noise'];
  const records = (ev?.records ?? []) as unknown as readonly EvaluationRecord[];
  const warnings = ev?.warnings ?? [];
  const map = d.hasEmbedding
    ? h`<p class="callout"><a href="${entryUrl('evaluations', e.rel)}/-/embedding">Embedding map</a>: every embedded real and synthetic image as a point (PCA and UMAP of the features); hover a point to see its image.</p>`
    : '';
  const body = h`<h1>Evaluation ${e.name}</h1>
<p class="lead">${e.rel} · <a href="/api${entryUrl('evaluations', e.rel)}">JSON</a> · <a href="${fileUrl(`${e.rel}/evaluation.json`)}">evaluation.json</a></p>
${d.problem ? h`<p class="warning">${d.problem}.</p>` : ''}
${facts(about)}
${extractor}
${map}
${
  ev
    ? h`<h2 id="metrics">Metrics</h2>
${evaluationTable(records, labels, comparisons)}
${note('FID and KID: distance between the real and the compared feature distributions, lower is better — compare the synthetic row with the floor (held-out real images: what a perfect generator would score) and noise rows, not with published FIDs. Precision and density: fidelity; recall and coverage: diversity. MS-SSIM within a class: lower is more varied; compare with the real images’ value. Hover a cell for its note.')}`
    : ''
}
<h2 id="grids">Images</h2>
<div class="grids">
${d.realGrid ? h`<figure><figcaption>Real</figcaption>${gridPicture(fileUrl(d.realGrid.rel), d.realGrid.size, labels, cell, 'real images: one row per class')}</figure>` : ''}
${d.fakeGrid ? h`<figure><figcaption>Synthetic</figcaption>${gridPicture(fileUrl(d.fakeGrid.rel), d.fakeGrid.size, labels, cell, 'synthetic images: one row per class')}</figure>` : ''}
</div>
${!d.realGrid && !d.fakeGrid ? note('No grids in this folder (real-grid.png, fake-grid.png).') : ''}
${privacy(d, cell)}
${warnings.length ? h`<h2 id="warnings">Warnings</h2>${warnings.map((w) => h`<p class="warning">${w}</p>`)}` : ''}`;
  return page({ title: `evaluation ${e.name}`, body, crumbs });
}
