/** Small pieces the web app's pages share: links, tables, badges, grids of pictures, figures. */
import { stat as statText } from '../../report/format.js';
import { h, raw, type Html, type Markup } from '../../report/markup.js';
import type { RunStatus } from '../read.js';
import { encodeRel } from './shell.js';

export type Section = 'runs' | 'evaluations' | 'studies';

/** The page of an entry: `/runs/<rel>` (each segment URL-encoded). */
export const entryUrl = (section: Section, rel: string): string => `/${section}/${encodeRel(rel)}`;

/** A file under the served folder, raw: `/files/<rel>`. */
export const fileUrl = (rel: string): string => `/files/${encodeRel(rel)}`;

/** A right-aligned number cell. */
export function num(text: Markup, title?: string): Html {
  return title ? h`<td class="num" title="${title}">${text}</td>` : h`<td class="num">${text}</td>`;
}

/** A table with a header row; `numeric(i)` right-aligns column i. */
export function table(head: readonly string[], rows: readonly Html[], numeric: (i: number) => boolean): Html {
  const ths = head.map((x, i) => (numeric(i) ? h`<th class="num">${x}</th>` : h`<th>${x}</th>`));
  return h`<div class="scroll"><table>
<thead><tr>${ths}</tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}

export function note(text: Markup): Html {
  return h`<p class="note">${text}</p>`;
}

/** A metric value (four significant digits), `–` when missing. */
export const stat = (v: number | null | undefined): string => statText(v ?? null);

const STATUS_TEXT: Readonly<Record<RunStatus, string>> = {
  finished: 'finished',
  running: 'running',
  stopped: 'stopped',
};

/** A run's status as a badge (`finished (kimg)`, `running`, `stopped`). */
export function statusBadge(status: RunStatus, stoppedBy: string | null): Html {
  const why = status === 'finished' && stoppedBy && stoppedBy !== 'kimg' ? ` (${stoppedBy})` : '';
  const title =
    status === 'stopped'
      ? 'no result.json and no new tick for a while: the run was interrupted (medsynth train --resume <run> continues it)'
      : status === 'running'
        ? 'its statistics or sample grid changed in the last few tick intervals'
        : 'result.json written: the training session ended';
  return h`<span class="badge ${status}" title="${title}">${STATUS_TEXT[status]}${why}</span>`;
}

/** `3 min ago`, `2 h ago`, `2026-12-03` for a time in ms. */
export function ago(ms: number, now = Date.now()): string {
  if (!Number.isFinite(ms) || ms <= 0) return '–';
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toISOString().slice(0, 10);
}

/** Key figures as tiles: `[label, value]`. */
export function tiles(items: readonly (readonly [string, Markup])[]): Html {
  return h`<div class="kv">${items.map(([k, v]) => h`<div><b>${v}</b><span>${k}</span></div>`)}</div>`;
}

/** A definition list of facts. */
export function facts(items: readonly (readonly [string, Markup])[]): Html {
  return h`<dl class="facts">${items.map(([k, v]) => h`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

/**
 * A grid picture (one row per class, square cells of `cell` px with a 2 px gap, as tileImages makes them)
 * with its rows labelled when its height says so, shown at 2–4× with crisp pixels.
 */
export function gridPicture(
  src: string,
  size: { width: number; height: number } | null,
  labels: readonly string[],
  cell: number | null,
  alt: string,
  imgAttrs: Html = h``,
): Html {
  const gap = 2;
  const rows = size && cell ? (size.height - gap) / (cell + gap) : NaN;
  const labelled = Number.isInteger(rows) && rows === labels.length && labels.length > 0 && size && cell;
  const spans =
    labelled && size && cell
      ? labels.map((name, r) => {
          const top = ((gap + r * (cell + gap)) / size.height) * 100;
          const height = (cell / size.height) * 100;
          return h`<span style="top:${top.toFixed(3)}%;height:${height.toFixed(3)}%">${name}</span>`;
        })
      : [];
  const dims = size ? h` width="${size.width}" height="${size.height}"` : '';
  const maxWidth = size ? size.width * Math.max(2, Math.min(4, Math.floor(560 / size.width))) : 560;
  return h`<div class="grid-wrap">${labelled ? h`<div class="grid-labels">${spans}</div>` : ''}<img src="${src}"${dims} style="max-width:${maxWidth}px" alt="${alt}"${imgAttrs}></div>`;
}

/** An SVG chart rendered by Vega (trusted markup from report/charts.ts). */
export function chart(svg: string | null): Html | '' {
  return svg ? h`<div class="chart">${raw(svg)}</div>` : '';
}
