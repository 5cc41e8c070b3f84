/**
 * The embedding map of an evaluation (`embedding.json`, metrics/embedding-map.ts): every embedded real and
 * synthetic image as a point of an SVG scatter, under PCA or UMAP (a switch), one colour per class, real
 * images filled and synthetic ones hollow, sets and classes filterable. Hovering a point shows its image (one
 * cell of the evaluation's thumbnail sheet, served by `/evaluations/<rel>/-/image/<set>/<index>.png`).
 * Positions of both projections are scaled into the same box and carried on each point; the page's script
 * (assets.ts, map.js) swaps them.
 */
import type { EmbeddingMap } from '../../metrics/embedding-map.js';
import { h, type Html } from '../../report/markup.js';
import type { EvaluationEntry } from '../discover.js';
import { entryUrl, facts, note } from './parts.js';
import { assetUrl, type Crumb, page } from './shell.js';

const WIDTH = 640;
const HEIGHT = 520;
const PAD = 14;

/** Maps 2-D points into the box (aspect kept, y up), as `x,y` strings with one decimal. */
export function fitToBox(points: readonly (readonly [number, number])[]): string[] {
  if (points.length === 0) return [];
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of points) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  const w = WIDTH - 2 * PAD;
  const hgt = HEIGHT - 2 * PAD;
  const span = Math.max((x1 - x0) / w, (y1 - y0) / hgt) || 1;
  const ox = PAD + (w - (x1 - x0) / span) / 2;
  const oy = PAD + (hgt - (y1 - y0) / span) / 2;
  return points.map(
    ([x, y]) => `${(ox + (x - x0) / span).toFixed(1)},${(HEIGHT - oy - (y - y0) / span).toFixed(1)}`,
  );
}

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

export function embeddingPage(entry: EvaluationEntry, map: EmbeddingMap, crumbs: readonly Crumb[]): string {
  const pca = fitToBox(map.points.map((p) => p.pca));
  const umap = map.umap ? fitToBox(map.points.map((p) => p.umap ?? [0, 0])) : null;
  const role = new Map(map.sets.map((s) => [s.key, s.role]));
  const classIndex = new Map(map.classNames.map((c, k) => [c, k]));
  const r = Math.max(1.8, Math.min(4.5, 120 / Math.sqrt(Math.max(1, map.points.length))));
  // Real images first, so synthetic rings are drawn over them.
  const order = map.points
    .map((_, i) => i)
    .sort((a, b) => {
      const ra = role.get(map.points[a]!.set) === 'real' ? 0 : 1;
      const rb = role.get(map.points[b]!.set) === 'real' ? 0 : 1;
      return ra - rb || a - b;
    });
  const circles = order.map((i) => {
    const p = map.points[i]!;
    const [x, y] = pca[i]!.split(',');
    const k = p.class === null ? 9 : (classIndex.get(p.class) ?? 9) % 10;
    const label = `${p.set} · ${p.class ?? 'unlabelled'} · image ${p.index}`;
    return h`<circle class="k${k} ${role.get(p.set) ?? 'real'}" cx="${x}" cy="${y}" r="${r.toFixed(1)}" data-set="${p.set}" data-index="${p.index}" data-class="${p.class ?? ''}" data-label="${label}" data-pca="${pca[i]}"${umap ? h` data-umap="${umap[i]}"` : ''}><title>${label}</title></circle>`;
  });
  const pcaNote = `PCA: the first two principal axes explain ${pct(map.pca.explainedVarianceRatio[0])} and ${pct(map.pca.explainedVarianceRatio[1])} of the variance.`;
  const umapNote = map.umap
    ? `UMAP (${map.umap.nNeighbors} neighbours, min. distance ${map.umap.minDist}, ${map.umap.implementation}): neighbourhoods are kept, distances between clusters are not meaningful.`
    : (map.umapNote ?? 'No UMAP was computed.');
  const setBoxes = map.sets.map(
    (s) =>
      h`<label><input type="checkbox" checked data-filter="set:${s.key}"> <svg width="12" height="12" aria-hidden="true"><circle class="k9 swatch-${s.role}" cx="6" cy="6" r="4.5"></circle></svg> ${s.key} <span class="note">(${s.role}, ${s.sampled} of ${s.total})</span></label>`,
  );
  const classBoxes = map.classNames.map(
    (c, k) =>
      h`<label><input type="checkbox" checked data-filter="class:${c}"> <svg width="12" height="12" aria-hidden="true"><circle class="k${k % 10} swatch-real" cx="6" cy="6" r="4.5"></circle></svg> ${c}</label>`,
  );
  const imageBase = `${entryUrl('evaluations', entry.rel)}/-/image/`;
  const sheet = map.thumbnails;
  const body = h`<h1>Embedding map — ${entry.name}</h1>
<p class="lead">${map.points.length} images embedded in ${map.extractor.kind} features (${map.extractor.dim} dims) · <a href="${entryUrl('evaluations', entry.rel)}">the evaluation</a></p>
<figure class="embedding" data-image="${imageBase}">
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="embedding map: one point per image">${circles}</svg>
<div class="map-side">
<div class="map-controls" hidden>
<p><button type="button" data-method="pca" aria-pressed="true" data-note="${pcaNote}">PCA</button> ${umap ? h`<button type="button" data-method="umap" aria-pressed="false" data-note="${umapNote}">UMAP</button>` : ''}</p>
</div>
<p class="note" data-method-note>${pcaNote}</p>
<div class="preview"><img hidden alt="" width="${sheet?.cellWidth ?? 28}" height="${sheet?.cellHeight ?? 28}"><p>${sheet ? 'Hover a point to see its image.' : 'No thumbnails were saved with this map: hover a point for its set, class and index.'}</p></div>
<fieldset><legend>Sets</legend>${setBoxes}</fieldset>
<fieldset><legend>Classes</legend>${classBoxes}</fieldset>
</div>
</figure>
${note(h`Filled points: real images; hollow: synthetic. Colour: class. ${umap ? '' : umapNote}`)}
${facts([
  ['made', map.createdAt],
  ['seed', map.seed],
  ['feature space', map.extractor.description],
  ['images per set', `at most ${map.capPerSet} (split over classes in proportion to the set)`],
  ...map.sets.map((s) => [s.key, `${s.role}: ${s.description}`] as const),
])}`;
  return page({ title: `embedding map ${entry.name}`, body, crumbs, scripts: [assetUrl('map.js')] });
}

/** Where an embedding map could not be shown, in a page. */
export function embeddingProblemPage(
  entry: EvaluationEntry,
  problem: string,
  crumbs: readonly Crumb[],
): string {
  const body: Html = h`<h1>Embedding map — ${entry.name}</h1>
<p class="warning">${problem}</p>
<p><a href="${entryUrl('evaluations', entry.rel)}">Back to the evaluation</a></p>`;
  return page({ title: `embedding map ${entry.name}`, body, crumbs });
}
