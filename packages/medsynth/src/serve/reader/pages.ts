/**
 * The reader study's pages: the index of folders a study can run on, a folder's start page (the reader's
 * name), the session page (one image at a time; the script does the rest) and the results. Built with `h`, so
 * every string from the folder (names, paths, class names, reader names) is escaped; no inline script or style
 * (the Content-Security-Policy allows neither). Nothing on the start and session pages depends on an image's
 * truth: the session page holds no image at all until the script asks for one by opaque id.
 */
import { h, type Html, type Markup } from '../../report/markup.js';
import type { ClassRates, Proportion, ReaderStats, ReaderStudyStats } from '../../study/reader-stats.js';
import { encodeRel, page } from '../pages/shell.js';
import { CONFIDENCE_MAX, CONFIDENCE_MIN, READER_NAME_MAX, type ReaderSettings } from './design.js';
import type { FolderKind } from './folder.js';
import type { DesignRecord } from './store.js';

/** The URL segment that stands for the served folder itself. */
export const ROOT_SEGMENT = '~';

/** `/reader/<folder>` (root: `/reader/~`). */
export const readerUrl = (rel: string): string => `/reader/${rel === '' ? ROOT_SEGMENT : encodeRel(rel)}`;
export const readerApiUrl = (rel: string): string =>
  `/api/reader/${rel === '' ? ROOT_SEGMENT : encodeRel(rel)}`;
const STYLE = '/reader/-/reader.css';
const SCRIPT = '/reader/-/reader.js';

const folderLabel = (rel: string) => (rel === '' ? '(the served folder)' : rel);
const stylesheet = h`<link rel="stylesheet" href="${STYLE}">`;

function crumbs(rel: string, last?: string) {
  const out: { label: string; href?: string }[] = [{ label: 'reader studies', href: '/reader/' }];
  if (last === undefined) out.push({ label: folderLabel(rel) });
  else out.push({ label: folderLabel(rel), href: readerUrl(rel) }, { label: last });
  return out;
}

export interface IndexEntry {
  readonly rel: string;
  readonly kind: FolderKind;
  readonly readers: number;
  readonly answers: number;
}

export function indexPage(entries: readonly IndexEntry[]): string {
  const rows = entries.map(
    (
      e,
    ) => h`<tr><td><a href="${readerUrl(e.rel)}">${folderLabel(e.rel)}</a></td><td>${e.kind === 'run' ? 'training run' : 'study'}</td>
<td class="num">${e.readers}</td><td class="num">${e.answers}</td><td><a href="${`${readerUrl(e.rel)}/results`}">results</a></td></tr>`,
  );
  const body = h`${stylesheet}
<h1>Reader studies</h1>
<p class="lead reader-intro">A blinded visual Turing test: readers see real and synthetic images, shuffled and balanced per class, and call each one real or synthetic. Readers at chance — about 50 % right — is the bar a generator aims for. Any training run or study below can host one; its answers are kept in the folder’s <code>reader-study.sqlite</code>.</p>
${
  entries.length === 0
    ? h`<p class="empty">No training run or study in this folder.</p>`
    : h`<div class="scroll"><table><thead><tr><th>Folder</th><th>Kind</th><th class="num">Readers</th><th class="num">Answers</th><th></th></tr></thead>
<tbody>${rows}</tbody></table></div>`
}`;
  return page({ title: 'Reader studies', body, crumbs: [{ label: 'reader studies' }] });
}

export interface StartPageInput {
  readonly rel: string;
  readonly kind: FolderKind;
  readonly settings: ReaderSettings;
  /** The stored design (answers exist), else null. */
  readonly design: DesignRecord | null;
  readonly readers: number;
  readonly answers: number;
  /** Why answers cannot be stored, or null. */
  readonly readOnly: string | null;
  /** A refused name and why. */
  readonly nameError?: { readonly name: string; readonly reason: string };
}

export function startPage(p: StartPageInput): string {
  const per = p.design?.settings.perClass ?? p.settings.perClass;
  const showClass = p.design?.showClass ?? p.settings.showClass;
  const total = p.design ? h`${p.design.items} images` : h`${per} real and ${per} synthetic images per class`;
  const form = p.readOnly
    ? h`<p class="warning">This folder is read-only, so answers cannot be stored: ${p.readOnly}. Serve a writable copy of it to run the study.</p>`
    : h`<form method="get" action="${readerUrl(p.rel)}">
<label for="reader-name">Your name (or reader code)
<input type="text" id="reader-name" name="reader" required maxlength="${READER_NAME_MAX}" autocomplete="off" spellcheck="false"${p.nameError ? h` value="${p.nameError.name}" aria-invalid="true"` : ''}></label>
<button type="submit">Start</button>
</form>
${p.nameError ? h`<p class="error-text" role="alert">${p.nameError.reason}.</p>` : ''}`;
  const body = h`${stylesheet}
<section class="reader-start">
<h1>Reader study: real or synthetic?</h1>
<p class="lead">${p.kind === 'run' ? 'Training run' : 'Study'} <code>${folderLabel(p.rel)}</code></p>
<div class="callout reader-intro">
<p>You will see ${total}, one at a time, in an order of your own. Some are real images, the others were made by a generative model; about half are real. For each image, choose how confident you are (${CONFIDENCE_MIN} = guessing, ${CONFIDENCE_MAX} = certain), then answer <strong>Real</strong> or <strong>Synthetic</strong>.${showClass ? ' Each image is shown with its class: judge whether it is a plausible real image of that class.' : ''}</p>
<p>Every answer is stored as soon as you give it, under the name you type here. To continue later, come back and type the same name.</p>
</div>
${form}
<p class="note">${p.readers === 0 ? 'No reader has answered yet.' : `${p.readers} reader${p.readers === 1 ? ' has' : 's have'} answered so far (${p.answers} answers).`}</p>
</section>`;
  return page({ title: 'Reader study', body, crumbs: crumbs(p.rel) });
}

export function sessionPage(rel: string, reader: string): string {
  const levels = Array.from({ length: CONFIDENCE_MAX - CONFIDENCE_MIN + 1 }, (_, i) => CONFIDENCE_MIN + i);
  const body = h`${stylesheet}
<section id="reader-session" class="reader" data-api="${readerApiUrl(rel)}" data-reader="${reader}" data-state="loading">
<div class="reader-top">
<h1>Real or synthetic?</h1>
<div class="reader-progress"><progress id="progress" max="1" value="0"></progress><span id="progress-text"></span></div>
</div>
<p class="lead">Reader <strong>${reader}</strong> · <a href="${readerUrl(rel)}">not you?</a></p>
<div class="reader-stage">
<figure id="item-figure" class="reader-figure">
<img id="item-image" alt="The image to judge">
<figcaption id="item-class" class="reader-class" hidden></figcaption>
</figure>
<form id="answer-form" class="reader-answer">
<fieldset>
<legend>How confident are you?</legend>
<div class="confidence-scale">${levels.map(
    (v) => h`<label><input type="radio" name="confidence" value="${v}">${v}</label>`,
  )}</div>
<div class="confidence-ends"><span>guessing</span><span>certain</span></div>
</fieldset>
<div class="calls">
<button type="button" id="call-real" data-call="real" disabled>Real<kbd>R</kbd></button>
<button type="button" id="call-synthetic" data-call="synthetic" disabled>Synthetic<kbd>S</kbd></button>
</div>
<p id="status" class="status" role="status" aria-live="polite"></p>
<p class="note">Keys: ${CONFIDENCE_MIN}–${CONFIDENCE_MAX} for the confidence, R or S to answer.</p>
</form>
</div>
<section id="done" hidden>
<h2>Thank you</h2>
<p>You have answered every image; your answers are stored.</p>
</section>
</section>`;
  return page({ title: 'Reader study', body, scripts: [SCRIPT], crumbs: crumbs(rel, reader) });
}

export function messagePage(title: string, message: Markup, rel?: string): string {
  const body = h`${stylesheet}<h1>${title}</h1><p class="warning">${message}</p>`;
  return page({
    title,
    body,
    crumbs:
      rel === undefined
        ? [{ label: 'reader studies', href: '/reader/' }, { label: title }]
        : crumbs(rel, title),
  });
}

// ---- results ----

const percent = (x: number | null): string => (x === null ? '–' : `${(x * 100).toFixed(1)} %`);
const interval = (ci: readonly [number, number] | null): string =>
  ci === null ? '–' : `${(ci[0] * 100).toFixed(1)}–${(ci[1] * 100).toFixed(1)} %`;
const fixed = (x: number | null, digits: number): string => (x === null ? '–' : x.toFixed(digits));

function pValue(p: number | null): string {
  if (p === null) return '–';
  if (p < 1e-4) return p.toExponential(1);
  return p >= 0.1 ? p.toFixed(2) : p.toPrecision(2);
}

function share(x: Proportion): Html {
  return h`<td class="num" title="${`${x.k} of ${x.n}`}">${percent(x.value)}</td>`;
}

function shareWithCi(x: Proportion): Html {
  return h`${share(x)}<td class="num ci">${interval(x.wilson)}</td>`;
}

function readerRow(r: ReaderStats, items: number): Html {
  return h`<tr><td>${r.reader}</td><td class="num">${r.answered}${r.complete ? '' : h` <small>of ${items}</small>`}</td>
${shareWithCi(r.accuracy)}<td class="num ci">${interval(r.accuracy.exact)}</td>
<td class="num">${pValue(r.p)}</td><td class="num">${pValue(r.pHolm)}</td>
${share(r.sensitivity)}${share(r.specificity)}
<td class="num">${fixed(r.meanConfidence, 2)}</td><td class="num">${fixed(r.confidenceRight, 2)} / ${fixed(r.confidenceWrong, 2)}</td>
<td class="num">${fixed(r.medianSeconds, 1)}</td></tr>`;
}

function classRow(who: string, c: ClassRates): Html {
  return h`<tr><td>${who}</td><td>${c.className}</td><td class="num">${c.accuracy.n}</td>${shareWithCi(c.accuracy)}${share(c.sensitivity)}${share(c.specificity)}</tr>`;
}

export interface ResultsPageInput {
  readonly rel: string;
  readonly design: DesignRecord | null;
  readonly stats: ReaderStudyStats;
  /** Images whose bytes now differ from those answered (known once this server made the images), else null. */
  readonly changedImages?: number | null;
}

export function resultsPage({ rel, design, stats, changedImages = null }: ResultsPageInput): string {
  const level = Math.round(stats.level * 100);
  const facts: [string, Markup][] = design
    ? [
        [
          'Images',
          `${stats.items}: ${stats.itemsPerClass.map((c) => `${c.className} ${c.real} real + ${c.synthetic} synthetic`).join(', ')}`,
        ],
        [
          'Synthetic from',
          `${design.source.description}; checkpoint ${design.source.runs.map((r) => r.checkpoint).join(', ')} (${design.source.network})`,
        ],
        ['Real from', h`<code>${design.source.dataSource}</code>, ${design.source.realSplit}`],
        [
          'Shown at',
          `${design.source.size} × ${design.source.size} px, ${design.source.channels === 1 ? 'grey' : 'colour'}; truncation ψ ${design.source.truncation}`,
        ],
        ['Class shown to readers', design.showClass ? 'yes' : 'no'],
        ['Seed', String(design.settings.seed)],
        ['Design', `${design.fingerprint.slice(0, 12)}, fixed with the first answer (${design.createdAt})`],
      ]
    : [['Design', 'not fixed yet: it is stored with the first answer']];
  const readers = stats.readers;
  const body = h`${stylesheet}
<h1>Reader study results</h1>
<p class="lead"><code>${folderLabel(rel)}</code> · ${readers.length} reader${readers.length === 1 ? '' : 's'}, ${stats.answers} answers · <a href="${`${readerApiUrl(rel)}/results`}">JSON</a></p>
<p id="verdict" class="verdict ${stats.verdict.kind}">${stats.verdict.text}</p>
<dl class="facts">${facts.map(([k, v]) => h`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
${
  changedImages
    ? h`<p class="warning">${changedImages} of the ${stats.items} images this server makes differ in their bytes from those the readers answered (another TF.js backend or version rounds differently); the stored answers refer to the images as they were.</p>`
    : ''
}
${
  readers.length === 0
    ? ''
    : h`<h2>Readers</h2>
<p class="note">Accuracy: share of right calls, with the ${level} % Wilson interval and the exact (Clopper–Pearson) one; p: two-sided exact binomial test against 50 % (chance), then Holm-adjusted over readers. Sensitivity: synthetic images called synthetic; specificity: real images called real. Confidence ${CONFIDENCE_MIN}–${CONFIDENCE_MAX}.</p>
<div class="scroll"><table id="readers">
<thead><tr><th>Reader</th><th class="num">Answered</th><th class="num">Accuracy</th><th class="num">${level} % CI (Wilson)</th><th class="num">Exact CI</th><th class="num">p</th><th class="num">p (Holm)</th><th class="num">Sensitivity</th><th class="num">Specificity</th><th class="num">Mean confidence</th><th class="num">right / wrong</th><th class="num">Median s</th></tr></thead>
<tbody>${readers.map((r) => readerRow(r, stats.items))}</tbody>
<tfoot><tr><td>all answers</td><td class="num">${stats.answers}</td>${shareWithCi(stats.pooled.accuracy)}<td class="num ci">${interval(stats.pooled.accuracy.exact)}</td><td></td><td></td>${share(stats.pooled.sensitivity)}${share(stats.pooled.specificity)}<td></td><td></td><td></td></tr></tfoot>
</table></div>
<h2>Per class</h2>
<div class="scroll"><table id="per-class">
<thead><tr><th>Reader</th><th>Class</th><th class="num">Answers</th><th class="num">Accuracy</th><th class="num">${level} % CI</th><th class="num">Sensitivity</th><th class="num">Specificity</th></tr></thead>
<tbody>${stats.pooled.perClass.map((c) => classRow('all', c))}${readers.flatMap((r) => r.perClass.map((c) => classRow(r.reader, c)))}</tbody>
</table></div>
<h2>Agreement between readers</h2>
<p class="note">Cohen’s κ of the calls of each pair over the images both answered; Fleiss’ κ over the images every reader answered. In words after Landis &amp; Koch (1977).</p>
${
  stats.cohen.length === 0
    ? h`<p class="empty">One reader so far: agreement needs two.</p>`
    : h`<div class="scroll"><table id="cohen">
<thead><tr><th>Reader A</th><th>Reader B</th><th class="num">Common images</th><th class="num">Agreement</th><th class="num">By chance</th><th class="num">Cohen’s κ</th><th></th></tr></thead>
<tbody>${stats.cohen.map(
        (
          c,
        ) => h`<tr><td>${c.a}</td><td>${c.b}</td><td class="num">${c.n}</td><td class="num">${percent(c.observed)}</td><td class="num">${percent(c.expected)}</td>
<td class="num kappa" data-pair="${`${c.a}\n${c.b}`}">${fixed(c.kappa, 3)}</td><td>${c.strength ?? c.note ?? ''}</td></tr>`,
      )}</tbody></table></div>`
}
${
  stats.fleiss
    ? h`<p>Fleiss’ κ over ${stats.fleiss.n} image${stats.fleiss.n === 1 ? '' : 's'} answered by ${stats.fleiss.readers.length === 2 ? 'both' : `all ${stats.fleiss.readers.length}`} readers: <strong id="fleiss-kappa">${fixed(stats.fleiss.kappa, 3)}</strong>${stats.fleiss.strength ? ` (${stats.fleiss.strength})` : stats.fleiss.note ? ` (${stats.fleiss.note})` : ''}.</p>`
    : ''
}`
}`;
  return page({ title: 'Reader study results', body, crumbs: crumbs(rel, 'results') });
}
