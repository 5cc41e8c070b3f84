/**
 * The web app's own static files, held in memory (no file lookup, so nothing here can be reached by a crafted
 * path): the style sheet (the report's, so study pages look like `medsynth report`, plus the app's own rules),
 * the icon, and two small scripts — the run page's timeline of sample grids and the embedding map's hover and
 * controls. Scripts are plain ES modules with no dependency; pages hand them data through `data-` attributes.
 */
import { createHash } from 'node:crypto';
import { REPORT_CSS } from '../../report/style.js';

const APP_CSS = `
body { background: #fff; }
.site-bar { position: sticky; top: 0; z-index: 10; background: #1d2329; color: #e8ecef; font-size: 0.92rem; }
.site-bar nav { max-width: 1180px; margin: 0 auto; padding: 8px 28px; display: flex; flex-wrap: wrap; gap: 2px 6px;
  align-items: baseline; }
.site-bar a { color: #cfe3f7; text-decoration: none; }
.site-bar a:hover { text-decoration: underline; }
.site-bar .brand { font-weight: 700; color: #fff; letter-spacing: 0.02em; }
.site-bar .sep { color: #7d8a96; }
h1 code { font-size: 0.8em; }
.lead { color: var(--muted); margin: 0 0 12px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 12px 0 4px; }
.counts a { font-weight: 600; text-decoration: none; }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 0.8rem; line-height: 1.6;
  background: var(--bg-soft); color: var(--muted); white-space: nowrap; }
.badge.running { background: #e3effa; color: #1f5f99; }
.badge.finished { background: var(--good); color: var(--good-fg); }
.badge.stopped { background: var(--warn); color: #6b5300; }
.badge.problem { background: var(--bad); color: var(--bad-fg); }
td.thumb { width: 1%; padding: 2px 6px; }
td.thumb img { display: block; height: 40px; width: auto; max-width: 96px; object-fit: cover;
  object-position: left top; image-rendering: pixelated; border-radius: 2px; }
td.name { white-space: normal; min-width: 11em; overflow-wrap: anywhere; }
td.name small, td small.note { color: var(--muted); display: block; }
.empty { color: var(--muted); font-style: italic; }
figure.timeline img { max-width: 100%; }
.timeline-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 12px; margin: 8px 0; }
.timeline-controls input[type=range] { flex: 1 1 260px; min-width: 160px; }
.timeline-controls output { font-variant-numeric: tabular-nums; min-width: 16em; color: var(--muted); }
button { font: inherit; font-size: 0.9rem; padding: 2px 10px; border: 1px solid var(--line); border-radius: 4px;
  background: #fff; color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
button[aria-pressed=true] { background: var(--accent); border-color: var(--accent); color: #fff; }
ol.ticks { columns: 14em; font-size: 0.88rem; padding-left: 1.6em; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(128px, 1fr)); gap: 8px; margin: 8px 0 12px; }
.kv div { background: var(--bg-soft); border-radius: 4px; padding: 6px 10px; }
.kv b { display: block; font-size: 1.15rem; font-variant-numeric: tabular-nums; }
.kv span { color: var(--muted); font-size: 0.82rem; }
.two { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px 28px; }
figure.embedding { display: grid; grid-template-columns: minmax(0, 1fr) 230px; gap: 16px; margin: 12px 0; }
@media (max-width: 900px) { figure.embedding { grid-template-columns: 1fr; } }
figure.embedding > svg { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px;
  background: #fff; }
.map-side svg { vertical-align: -1px; }
figure.embedding circle { stroke-width: 1.2; cursor: crosshair; }
figure.embedding circle.real { fill-opacity: 0.75; }
figure.embedding circle.synthetic { fill-opacity: 0.12; }
figure.embedding circle.on { stroke: #000; stroke-width: 2.5; fill-opacity: 1; }
figure.embedding circle.off { display: none; }
.map-side { font-size: 0.88rem; }
.map-side .preview { border: 1px solid var(--line); border-radius: 4px; padding: 8px; min-height: 240px; }
.map-side .preview img { width: 100%; height: auto; image-rendering: pixelated; background: var(--bg-soft); }
.map-side .preview p { margin: 6px 0 0; color: var(--muted); overflow-wrap: anywhere; }
.map-side fieldset { border: 1px solid var(--line); border-radius: 4px; margin: 10px 0; padding: 4px 10px 8px; }
.map-side label { display: block; }
.k0 { fill: #1f77b4; stroke: #1f77b4; color: #1f77b4; } .k1 { fill: #d62728; stroke: #d62728; color: #d62728; }
.k2 { fill: #2ca02c; stroke: #2ca02c; color: #2ca02c; } .k3 { fill: #9467bd; stroke: #9467bd; color: #9467bd; }
.k4 { fill: #ff7f0e; stroke: #ff7f0e; color: #ff7f0e; } .k5 { fill: #8c564b; stroke: #8c564b; color: #8c564b; }
.k6 { fill: #e377c2; stroke: #e377c2; color: #e377c2; } .k7 { fill: #17becf; stroke: #17becf; color: #17becf; }
.k8 { fill: #bcbd22; stroke: #bcbd22; color: #bcbd22; } .k9 { fill: #7f7f7f; stroke: #7f7f7f; color: #7f7f7f; }
svg .swatch-real { stroke-width: 1.2; fill-opacity: 0.75; }
svg .swatch-synthetic { stroke-width: 1.2; fill-opacity: 0.12; }
`;

/** The run page's timeline: a slider over the tick grids (`figure.timeline[data-ticks]`: [[url, label], …]). */
const RUN_JS = `// medsynth serve: the timeline of a run's sample grids.
for (const fig of document.querySelectorAll('figure.timeline[data-ticks]')) {
  const ticks = JSON.parse(fig.dataset.ticks);
  const img = fig.querySelector('img');
  const range = fig.querySelector('input[type=range]');
  const out = fig.querySelector('output');
  const play = fig.querySelector('button[data-play]');
  if (!img || !range || !out || ticks.length === 0) continue;
  let timer = null;
  const show = (i) => {
    const k = Math.max(0, Math.min(ticks.length - 1, i));
    range.value = String(k);
    img.src = ticks[k][0];
    out.textContent = ticks[k][1];
    return k;
  };
  const stop = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
    if (play) { play.textContent = 'play'; play.setAttribute('aria-pressed', 'false'); }
  };
  range.addEventListener('input', () => { stop(); show(Number(range.value)); });
  for (const b of fig.querySelectorAll('button[data-step]'))
    b.addEventListener('click', () => { stop(); show(Number(range.value) + Number(b.dataset.step)); });
  play?.addEventListener('click', () => {
    if (timer !== null) return stop();
    if (Number(range.value) >= ticks.length - 1) show(0);
    play.textContent = 'pause';
    play.setAttribute('aria-pressed', 'true');
    timer = setInterval(() => {
      const next = Number(range.value) + 1;
      if (next >= ticks.length) return stop();
      show(next);
    }, 400);
  });
  fig.querySelector('.timeline-controls')?.removeAttribute('hidden');
}
`;

/**
 * The embedding map: PCA/UMAP switch (each point carries both positions in \`data-pca\` / \`data-umap\`),
 * filters by set and class, and on hover the point's image (\`figure.embedding[data-image]\` + set/index.png).
 */
const MAP_JS = `// medsynth serve: the embedding map (hover shows the image).
const fig = document.querySelector('figure.embedding');
if (fig) {
  const svg = fig.querySelector('svg');
  const points = [...svg.querySelectorAll('circle[data-set]')];
  const img = fig.querySelector('.preview img');
  const text = fig.querySelector('.preview p');
  let current = null;
  const select = (c) => {
    if (current === c) return;
    current?.classList.remove('on');
    current = c;
    c.classList.add('on');
    c.parentNode.appendChild(c);
    const url = fig.dataset.image + encodeURIComponent(c.dataset.set) + '/' + c.dataset.index + '.png';
    if (img) {
      img.hidden = false;
      img.src = url;
      img.alt = c.dataset.set + ' image ' + c.dataset.index;
    }
    if (text) text.textContent = c.dataset.label;
  };
  svg.addEventListener('pointerover', (e) => {
    const c = e.target.closest ? e.target.closest('circle[data-set]') : null;
    if (c) select(c);
  });
  svg.addEventListener('focusin', (e) => {
    const c = e.target.closest ? e.target.closest('circle[data-set]') : null;
    if (c) select(c);
  });
  for (const b of fig.querySelectorAll('button[data-method]')) {
    b.addEventListener('click', () => {
      const m = b.dataset.method;
      for (const c of points) {
        const xy = c.dataset[m];
        if (!xy) continue;
        const [x, y] = xy.split(',');
        c.setAttribute('cx', x);
        c.setAttribute('cy', y);
      }
      for (const o of fig.querySelectorAll('button[data-method]'))
        o.setAttribute('aria-pressed', String(o === b));
      const note = fig.querySelector('[data-method-note]');
      if (note) note.textContent = b.dataset.note || '';
    });
  }
  const filters = [...fig.querySelectorAll('input[data-filter]')];
  const apply = () => {
    const hidden = new Set(filters.filter((f) => !f.checked).map((f) => f.dataset.filter));
    for (const c of points)
      c.classList.toggle('off', hidden.has('set:' + c.dataset.set) || hidden.has('class:' + c.dataset.class));
  };
  for (const f of filters) f.addEventListener('change', apply);
  fig.querySelector('.map-controls')?.removeAttribute('hidden');
}
`;

const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f5f99"/><path d="M3 12V4l5 5 5-5v8" fill="none" stroke="#fff" stroke-width="2"/></svg>`;

export interface Asset {
  readonly type: string;
  readonly body: string;
}

export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['medsynth.css', { type: 'text/css; charset=utf-8', body: `${REPORT_CSS}\n${APP_CSS}` }],
  ['run.js', { type: 'text/javascript; charset=utf-8', body: RUN_JS }],
  ['map.js', { type: 'text/javascript; charset=utf-8', body: MAP_JS }],
  ['favicon.svg', { type: 'image/svg+xml', body: FAVICON }],
]);

/** A short hash of every asset: asset URLs carry it, so a browser never keeps an old script or style. */
export const ASSET_VERSION = createHash('sha256')
  .update([...ASSETS.values()].map((a) => a.body).join('\0'))
  .digest('hex')
  .slice(0, 12);
