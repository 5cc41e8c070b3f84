/**
 * A study's page: the study report itself (the sections `medsynth report` writes, report/html.ts, with its
 * tables and charts), under a short block that links to the study's runs and evaluations in this app. A study
 * without results yet shows what has been made so far.
 */
import { h, type Html } from '../../report/markup.js';
import type { StudyDetail } from '../details.js';
import { entryUrl, fileUrl, note, stat, statusBadge, table } from './parts.js';
import { type Crumb, page } from './shell.js';

function inside(d: StudyDetail): Html {
  const runs = d.runs.map(
    (r) =>
      h`<tr><td class="name"><a href="${entryUrl('runs', r.rel)}">${r.rel.slice(d.entry.rel.length).replace(/^\//, '')}</a></td><td>${r.model ?? '–'}</td><td>${statusBadge(r.status, r.stoppedBy)}</td><td class="num">${stat(r.kimg)}</td></tr>`,
  );
  const evaluations = d.evaluations.map(
    (e) =>
      h`<tr><td class="name"><a href="${entryUrl('evaluations', e.rel)}">${e.rel.slice(d.entry.rel.length).replace(/^\//, '')}</a>${e.hasEmbedding ? h` <a class="badge" href="${entryUrl('evaluations', e.rel)}/-/embedding">map</a>` : ''}</td><td class="num">${stat(e.fid)}</td><td class="num">${stat(e.precision)}</td><td class="num">${stat(e.recall)}</td><td class="num">${stat(e.privacyRatio)}</td></tr>`,
  );
  if (runs.length + evaluations.length === 0)
    return note('No training run or evaluation found inside this study folder.');
  return h`<details class="callout"><summary>Browse this study’s ${d.runs.length} training run${d.runs.length === 1 ? '' : 's'} (sample grids over training time) and ${d.evaluations.length} evaluation${d.evaluations.length === 1 ? '' : 's'}</summary>
${runs.length ? table(['run', 'model', 'status', 'kimg'], runs, (i) => i === 3) : ''}
${evaluations.length ? table(['evaluation', 'FID ↓', 'precision ↑', 'recall ↑', 'privacy ratio'], evaluations, (i) => i > 0) : ''}
</details>`;
}

export function studyPage(d: StudyDetail, crumbs: readonly Crumb[]): string {
  const e = d.entry;
  const files = h`<a href="/api${entryUrl('studies', e.rel)}">JSON</a>${e.finished ? h` · <a href="${fileUrl(`${e.rel}/results.json`)}">results.json</a>` : ''}`;
  const head = h`<p class="lead">Study folder <code>${e.rel || '.'}</code> · ${files}</p>
${inside(d)}`;
  const body = d.report
    ? h`${head}
${d.report}`
    : h`<h1>Study ${e.name}</h1>
${head}
${
  d.problem
    ? h`<p class="warning">${d.problem}</p>`
    : h`<p class="callout">No results yet: this study is running, or stopped before it finished (<code>medsynth study --resume ${d.dir}</code> finishes it). Its report appears here once <code>results.json</code> is written.</p>`
}`;
  return page({ title: `study ${e.name}`, body, crumbs });
}
