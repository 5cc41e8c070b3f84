/**
 * The embedding map as a static SVG (hand-written, no script): one row per method (PCA, then UMAP when the
 * map has it) and one panel per set (train, test, synthetic, …). In each panel every point of the map is drawn
 * in light grey and the panel's own set on top, coloured by class — so each set is seen against the others
 * on the same axes (the panels of a row share their scale; PCA's two axes are scaled separately, UMAP's
 * alike). A legend names the classes. Every text from the
 * map (set keys, class names, extractor) is escaped; element ids carry a prefix so several maps can share a
 * page. With `pointIndex`, each coloured point carries `data-i` (its index in `map.points`, which is also its
 * cell in the thumbnail sheet) for an interactive viewer to hook onto.
 */
import type { EmbeddingMap, EmbeddingMethod } from '../metrics/embedding-map.js';
import { CHART_FONT } from './charts.js';
import { escapeHtml, h, raw, type Html } from './markup.js';

export interface EmbeddingSvgOptions {
  /** Prefix of element ids (default `emb`); distinct per map on one page. */
  readonly idPrefix?: string;
  /** Side of one panel in pixels (default 200). */
  readonly panel?: number;
  /** Add `data-i` to coloured points (default false). */
  readonly pointIndex?: boolean;
  /** Methods to draw (default: PCA, and UMAP when present). */
  readonly methods?: readonly EmbeddingMethod[];
}

/** Tableau 10: distinct at small sizes and for common colour-vision deficiencies. */
export const CLASS_COLOURS = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
] as const;
const UNLABELLED = '#555b61';
const CONTEXT = '#d5d9dd';

/** The colour of class `k` (cycling after ten), or of unlabelled points (`k` = -1). */
export function classColour(k: number): string {
  return k < 0 ? UNLABELLED : CLASS_COLOURS[k % CLASS_COLOURS.length]!;
}

const esc = (s: string): string => escapeHtml(s);
const f1 = (v: number): string => String(Math.round(v * 10) / 10);
const pct = (v: number): string => `${(100 * v).toFixed(1)} %`;

/** The methods a map can draw, in order. */
export function embeddingMethods(map: EmbeddingMap): EmbeddingMethod[] {
  return map.umap ? ['pca', 'umap'] : ['pca'];
}

/** Text width estimate for layout (no font metrics in Node): ~0.6 em per character. */
const textWidth = (s: string, size: number): number => s.length * size * 0.6;

/** The map as one SVG document fragment (an `<svg>` element). */
export function embeddingSvg(map: EmbeddingMap, options: EmbeddingSvgOptions = {}): string {
  const id = (options.idPrefix ?? 'emb').replace(/[^A-Za-z0-9_-]/g, '_');
  const P = options.panel ?? 200;
  const methods = (options.methods ?? embeddingMethods(map)).filter((m) => m === 'pca' || map.umap);
  const sets = map.sets.filter((s) => s.sampled > 0);
  const gap = 18;
  const left = 44;
  const titleH = 20;
  const axisH = 18;
  const rowH = titleH + P + axisH + 10;
  const top = 6;
  const classIndex = new Map(map.classNames.map((c, k) => [c, k]));
  const hasUnlabelled = map.points.some((p) => p.class === null);

  // Legend entries, laid out in lines under the panels.
  const shorten = (t: string) => (t.length > 36 ? `${t.slice(0, 35)}…` : t);
  const legend: { label: string; colour: string }[] = map.classNames.map((c, k) => ({
    label: shorten(c),
    colour: classColour(k),
  }));
  if (hasUnlabelled) legend.push({ label: 'unlabelled', colour: UNLABELLED });
  legend.push({ label: 'the other sets', colour: CONTEXT });
  const width = Math.max(left + sets.length * (P + gap), 320);
  const legendItems: { x: number; y: number; label: string; colour: string }[] = [];
  let lx = left;
  let ly = top + methods.length * rowH + 16;
  for (const item of legend) {
    const w = 16 + textWidth(item.label, 12) + 18;
    if (lx + w > width && lx > left) {
      lx = left;
      ly += 18;
    }
    legendItems.push({ x: lx, y: ly, ...item });
    lx += w;
  }
  const height = ly + 14;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="embedding-map" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" style="max-width: 100%; height: auto" font-family="${esc(CHART_FONT)}" font-size="12" role="img" aria-labelledby="${id}-title">`,
    `<title id="${id}-title">${esc(
      `Embedding map of ${map.points.length} images (${sets.map((s) => `${s.key} ${s.sampled}`).join(', ')}) in ${map.extractor.kind} features: ${methods.map((m) => m.toUpperCase()).join(' and ')}`,
    )}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  );
  methods.forEach((method, row) => {
    const coords = map.points.map((p) => (method === 'pca' ? p.pca : p.umap!));
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const [x, y] of coords) {
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
    // UMAP: one scale for both axes (its layout has no preferred direction). PCA: each axis fills the panel,
    // since PC1 often carries most of the variance and one scale would squash PC2 into a line; the axis
    // titles give each axis's share. Padded by 4 % on each side.
    const equal = Math.max(x1 - x0, y1 - y0, 1e-12);
    const spanX = (method === 'pca' ? Math.max(x1 - x0, 1e-12) : equal) * 1.08;
    const spanY = (method === 'pca' ? Math.max(y1 - y0, 1e-12) : equal) * 1.08;
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    const sx = (x: number) => P / 2 + ((x - cx) / spanX) * P;
    const sy = (y: number) => P / 2 - ((y - cy) / spanY) * P;
    const rowTop = top + row * rowH;
    const allId = `${id}-${method}-all`;
    parts.push(
      `<defs><g id="${allId}">${coords
        .map(([x, y]) => `<circle cx="${f1(sx(x))}" cy="${f1(sy(y))}" r="1.6"/>`)
        .join('')}</g></defs>`,
    );
    parts.push(
      `<text transform="translate(14 ${rowTop + titleH + P / 2}) rotate(-90)" text-anchor="middle" font-weight="600" font-size="13">${method === 'pca' ? 'PCA' : 'UMAP'}</text>`,
    );
    sets.forEach((set, col) => {
      const px = left + col * (P + gap);
      const py = rowTop + titleH;
      parts.push(
        `<text x="${px}" y="${rowTop + 14}" font-weight="600">${esc(set.key)}<tspan font-weight="normal" fill="#5b6670"> ${esc(
          `${set.role}, ${set.sampled}${set.sampled < set.total ? ` of ${set.total}` : ''}`,
        )}</tspan></text>`,
        `<g transform="translate(${px} ${py})">`,
        `<rect width="${P}" height="${P}" fill="white" stroke="#ccd2d7"/>`,
        `<use href="#${allId}" fill="${CONTEXT}"/>`,
      );
      const own: string[] = [];
      map.points.forEach((p, i) => {
        if (p.set !== set.key) return;
        const [x, y] = coords[i]!;
        const k = p.class === null ? -1 : (classIndex.get(p.class) ?? -1);
        own.push(
          `<circle cx="${f1(sx(x))}" cy="${f1(sy(y))}" r="2.2" fill="${classColour(k)}"${options.pointIndex ? ` data-i="${i}"` : ''}/>`,
        );
      });
      parts.push(`<g fill-opacity="0.8">${own.join('')}</g></g>`);
      if (method === 'pca') {
        const [r1, r2] = map.pca.explainedVarianceRatio;
        parts.push(
          `<text x="${px + P / 2}" y="${py + P + 14}" text-anchor="middle" font-size="11" fill="#5b6670">PC1 (${pct(r1)}) →</text>`,
        );
        if (col === 0)
          parts.push(
            `<text transform="translate(${px - 6} ${py + P / 2}) rotate(-90)" text-anchor="middle" font-size="11" fill="#5b6670">PC2 (${pct(r2)}) →</text>`,
          );
      } else {
        parts.push(
          `<text x="${px + P / 2}" y="${py + P + 14}" text-anchor="middle" font-size="11" fill="#5b6670">UMAP 1 →</text>`,
        );
        if (col === 0)
          parts.push(
            `<text transform="translate(${px - 6} ${py + P / 2}) rotate(-90)" text-anchor="middle" font-size="11" fill="#5b6670">UMAP 2 →</text>`,
          );
      }
    });
  });
  for (const item of legendItems) {
    parts.push(
      `<circle cx="${item.x + 5}" cy="${item.y - 4}" r="5" fill="${item.colour}"/>`,
      `<text x="${item.x + 14}" y="${item.y}">${esc(item.label)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * The report's block for one evaluation's map: heading, the SVG, which images each set holds, and how to
 * read it; with no map, the note saying why (or nothing when there is neither).
 */
export function embeddingSection(map: EmbeddingMap | null, note: string | null, idPrefix: string): Html {
  if (!map) return note ? h`<h4>Embedding map</h4><p class="note">${note}</p>` : h``;
  const [r1, r2] = map.pca.explainedVarianceRatio;
  const sets = map.sets.map(
    (s) =>
      h`<li><strong>${s.key}</strong> (${s.role}): ${s.sampled}${s.sampled < s.total ? ` of ${s.total}` : ''} images${
        s.sampledClassCounts
          ? ` (${s.sampledClassCounts.map((c, k) => `${map.classNames[k] ?? k} ${c}`).join(', ')})`
          : ''
      } — ${s.description}</li>`,
  );
  const umap = map.umap
    ? `UMAP (non-linear; k = ${map.umap.nNeighbors} neighbours, min. distance ${map.umap.minDist}, ${map.umap.nEpochs} epochs, seed ${map.seed}) keeps neighbourhoods: a point's neighbours in the map are its neighbours in feature space, but the distances between clusters and their sizes mean little.`
    : `No UMAP: ${map.umapNote ?? 'not computed'}.`;
  return h`<h4>Embedding map</h4>
<div class="chart">${raw(embeddingSvg(map, { idPrefix }))}</div>
<ul>${sets}</ul>
<p class="note">Each point is one image’s ${map.extractor.kind} features (${map.extractor.dim} dims) reduced to two: PCA (linear; the first two axes explain ${pct(r1)} and ${pct(r2)} of the variance) and ${umap} Both maps are fitted on all the sets together (at most ${map.capPerSet} images per set, drawn per class in proportion). In each panel the set’s own images are coloured by class over every other image in grey; the panels of a row share their axes (PCA’s two axes are stretched separately to fill the panel). Synthetic images that fill the same regions as the real ones, class by class, suggest fidelity and diversity; a few tight clumps suggest mode collapse; regions no real image reaches suggest artefacts.</p>`;
}
