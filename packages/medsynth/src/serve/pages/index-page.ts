/** The index page: every study, run and evaluation of the served folder, with its key numbers. */
import { h, type Html } from '../../report/markup.js';
import type { EvaluationEntry, FolderSnapshot, RunEntry, StudyEntry } from '../discover.js';
import { datasetName } from '../discover.js';
import { ago, entryUrl, fileUrl, note, num, stat, statusBadge, table } from './parts.js';
import { page } from './shell.js';

const kimgText = (r: RunEntry) =>
  r.kimg === null ? '–' : r.kimgTarget !== null ? `${stat(r.kimg)} / ${stat(r.kimgTarget)}` : stat(r.kimg);

const RUN_HEAD = [
  '',
  'run',
  'model and data',
  'status',
  'kimg',
  'ticks',
  'D loss',
  'G loss',
  'augment p',
  'images/s',
  'updated',
];

/** The folder an entry sits in, below `base` (a study's folder) when given; '' at the top. */
function folderOf(rel: string, base: string | null): string {
  const inside = base !== null && rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : rel;
  return inside.includes('/') ? inside.slice(0, inside.lastIndexOf('/')) : '';
}

const where = (rel: string, base: string | null) => {
  const folder = folderOf(rel, base);
  return folder ? h`<small>in ${folder}</small>` : '';
};

function runRow(r: RunEntry, now: number, base: string | null): Html {
  const thumb = r.latestSample
    ? h`<td class="thumb"><a href="${entryUrl('runs', r.rel)}"><img src="${fileUrl(r.latestSample)}" alt="latest samples of ${r.name}" loading="lazy"></a></td>`
    : h`<td class="thumb"></td>`;
  const problems = r.problems.length
    ? h` <span class="badge problem" title="${r.problems.join('; ')}">unreadable files</span>`
    : '';
  const federated = r.federated ? h` <span class="badge">federated</span>` : '';
  return h`<tr>${thumb}<td class="name"><a href="${entryUrl('runs', r.rel)}">${r.name}</a>${federated}${problems}${where(r.rel, base)}</td><td>${r.model ?? '–'}${r.size ? ` ${r.size}px` : ''}<small class="note">${r.dataset ?? ''}</small></td><td>${statusBadge(r.status, r.stoppedBy)}</td>${num(kimgText(r))}${num(r.ticks ?? '–')}${num(stat(r.dLoss))}${num(stat(r.gLoss))}${num(stat(r.augmentP))}${num(r.imagesPerSecond === null ? '–' : Math.round(r.imagesPerSecond))}${num(ago(r.updated, now), new Date(r.updated).toISOString())}</tr>`;
}

function runsTable(runs: readonly RunEntry[], now: number, base: string | null = null): Html {
  return table(
    RUN_HEAD,
    runs.map((r) => runRow(r, now, base)),
    (i) => i >= 4,
  );
}

const EVAL_HEAD = [
  'evaluation',
  'synthetic vs real images',
  'FID ↓',
  'floor FID',
  'KID ↓',
  'precision ↑',
  'recall ↑',
  'coverage ↑',
  'privacy ratio',
  'made',
];

function evaluationRow(e: EvaluationEntry, now: number, base: string | null): Html {
  const fake = e.fakeRun
    ? h`<a href="${entryUrl('runs', e.fakeRun)}">${e.fakeRun.split('/').pop() ?? ''}</a>`
    : e.fakeSource
      ? `${e.fakeKind ?? 'set'} ${datasetName(e.fakeSource)}`
      : '–';
  const real = e.realSource ? `${datasetName(e.realSource)}${e.realSplit ? ` (${e.realSplit})` : ''}` : '–';
  const map = e.hasEmbedding
    ? h` <a class="badge" href="${entryUrl('evaluations', e.rel)}/-/embedding">map</a>`
    : '';
  const problems = e.problems.length
    ? h` <span class="badge problem" title="${e.problems.join('; ')}">unreadable</span>`
    : '';
  const made = e.createdAt ? Date.parse(e.createdAt) : e.updated;
  const privacyTitle =
    'median distance to the nearest training image, synthetic over held-out real: about 1 or more is normal, well below 1 suggests copies';
  return h`<tr><td class="name"><a href="${entryUrl('evaluations', e.rel)}">${e.name}</a>${map}${problems}${where(e.rel, base)}</td><td class="name">${e.fakeCount !== null ? `${e.fakeCount} from ` : ''}${fake}<small>vs ${e.realCount !== null ? `${e.realCount} ` : ''}${real}</small></td>${num(stat(e.fid))}${num(stat(e.fidFloor))}${num(stat(e.kid))}${num(stat(e.precision))}${num(stat(e.recall))}${num(stat(e.coverage))}${num(stat(e.privacyRatio), privacyTitle)}${num(ago(made, now))}</tr>`;
}

function evaluationsTable(
  evaluations: readonly EvaluationEntry[],
  now: number,
  base: string | null = null,
): Html {
  return table(
    EVAL_HEAD,
    evaluations.map((e) => evaluationRow(e, now, base)),
    (i) => i >= 2,
  );
}

const STUDY_HEAD = ['study', 'status', 'data', 'conditions', 'classifiers', 'generators', 'jobs', 'inside'];

function studyRow(s: StudyEntry, snap: FolderSnapshot, now: number): Html {
  const runs = snap.runs.filter((r) => r.study === s.rel).length;
  const evaluations = snap.evaluations.filter((e) => e.study === s.rel).length;
  const when = s.createdAt ? ` ${ago(Date.parse(s.createdAt), now)}` : '';
  const status = s.finished
    ? h`<span class="badge finished" title="${s.createdAt ?? ''}">finished${when}</span>`
    : h`<span class="badge running" title="study.json without results.json: running, or stopped before the end (medsynth study --resume continues it)">no results yet</span>`;
  const problems = s.problems.length
    ? h` <span class="badge problem" title="${s.problems.join('; ')}">unreadable</span>`
    : '';
  const parent = s.rel.includes('/') ? s.rel.slice(0, s.rel.lastIndexOf('/')) : '';
  return h`<tr><td class="name"><a href="${entryUrl('studies', s.rel)}">${s.name}</a>${problems}${parent ? h`<small>in ${parent}</small>` : ''}</td><td>${status}</td><td>${s.dataset ?? '–'}${s.classNames.length ? h`<small class="note">${s.classNames.join(', ')}</small>` : ''}</td>${num(s.conditions)}<td>${s.classifiers.join(', ') || '–'}</td><td>${s.generators.join(', ') || '–'}</td>${num(s.jobs)}<td>${runs} run${runs === 1 ? '' : 's'}, ${evaluations} evaluation${evaluations === 1 ? '' : 's'}</td></tr>`;
}

/** Runs and evaluations inside each study, folded. */
function insideStudies(snap: FolderSnapshot, now: number): Html[] {
  return snap.studies
    .map((s) => {
      const runs = snap.runs.filter((r) => r.study === s.rel);
      const evaluations = snap.evaluations.filter((e) => e.study === s.rel);
      if (runs.length + evaluations.length === 0) return null;
      return h`<details><summary>${s.name}: ${runs.length} run${runs.length === 1 ? '' : 's'}, ${evaluations.length} evaluation${evaluations.length === 1 ? '' : 's'}</summary>
${runs.length ? runsTable(runs, now, s.rel) : ''}
${evaluations.length ? evaluationsTable(evaluations, now, s.rel) : ''}
</details>`;
    })
    .filter((x): x is Html => x !== null);
}

export function indexPage(snap: FolderSnapshot, now = Date.now()): string {
  const runs = snap.runs.filter((r) => r.study === null);
  const evaluations = snap.evaluations.filter((e) => e.study === null);
  const inside = insideStudies(snap, now);
  const total = snap.runs.length + snap.evaluations.length + snap.studies.length;
  const running = snap.runs.filter((r) => r.status === 'running').length;
  const body = h`<h1>Runs, evaluations and studies</h1>
<p class="lead">In <code>${snap.root}</code> · ${snap.folders} folders looked at · ${running ? `${running} run${running === 1 ? '' : 's'} training now · ` : ''}refreshed ${new Date(snap.scannedAt).toISOString().slice(11, 19)} UTC</p>
<div class="counts"><a href="#studies">${snap.studies.length} ${snap.studies.length === 1 ? 'study' : 'studies'}</a><a href="#runs">${snap.runs.length} training run${snap.runs.length === 1 ? '' : 's'}</a><a href="#evaluations">${snap.evaluations.length} evaluation${snap.evaluations.length === 1 ? '' : 's'}</a><a href="/api/index">JSON</a></div>
${snap.truncated ? h`<p class="warning">The folder is large: the search stopped before looking everywhere (too deep or too many folders). Serve a smaller folder to see everything in it.</p>` : ''}
${
  total === 0
    ? h`<p class="callout">Nothing here yet. medsynth looks for training runs (folders with <code>options.json</code>: <code>medsynth train --out-dir ${snap.root}</code>), evaluations (<code>evaluation.json</code>: <code>medsynth evaluate --out …</code>) and studies (<code>results.json</code>: <code>medsynth study</code>) anywhere below this folder.</p>`
    : ''
}
<h2 id="studies">Studies</h2>
${
  snap.studies.length
    ? h`${table(
        STUDY_HEAD,
        snap.studies.map((s) => studyRow(s, snap, now)),
        (i) => i === 3 || i === 6,
      )}`
    : note('No study in this folder.')
}
<h2 id="runs">Training runs</h2>
${runs.length ? runsTable(runs, now) : note(snap.runs.length ? 'Every run here belongs to a study (below).' : 'No training run in this folder.')}
${snap.runs.length ? note('kimg: thousands of real images shown, done / budget; losses, augmentation probability and speed of the last tick. Hover a status for what it means.') : ''}
<h2 id="evaluations">Evaluations</h2>
${evaluations.length ? evaluationsTable(evaluations, now) : note(snap.evaluations.length ? 'Every evaluation here belongs to a study (below).' : 'No evaluation in this folder.')}
${evaluations.length ? note('Figures of the synthetic images against the real ones, all classes. FID and KID depend on the feature space: compare an evaluation with its floor (held-out real images), not with published numbers.') : ''}
${inside.length ? h`<h2 id="inside">Inside studies</h2>${inside}` : ''}`;
  return page({ title: 'Index', body, crumbs: [] });
}
