/**
 * Terminal rendering for the CLI: progress events become a one-line bar with rate and ETA on a TTY
 * (plain phase lines otherwise, nothing in --json mode), and small aligned tables.
 */
import type { ProgressEvent } from '../runtime/progress.js';

export interface Renderer {
  readonly onProgress: (e: ProgressEvent) => void;
  /** Clears a live bar before other output. */
  readonly clear: () => void;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function createRenderer(options: { json: boolean; stream?: NodeJS.WriteStream }): Renderer {
  const out = options.stream ?? process.stderr;
  const live = !options.json && out.isTTY === true;
  const started = new Map<string, number>();
  const firstDone = new Map<string, number>();
  let barShown = false;
  const clear = () => {
    if (barShown) {
      out.write('\r\x1b[2K');
      barShown = false;
    }
  };
  const onProgress = (e: ProgressEvent) => {
    if (options.json) return;
    switch (e.type) {
      case 'phase':
        started.set(e.phase, performance.now());
        if (!live) out.write(`${e.phase}${e.detail ? ` (${e.detail})` : ''}…\n`);
        break;
      case 'tick': {
        if (!live) break;
        const t0 = started.get(e.phase) ?? performance.now();
        // Work done before this phase's first tick (a resumed run) does not count toward the rate.
        if (!firstDone.has(e.phase)) firstDone.set(e.phase, e.done);
        const elapsed = (performance.now() - t0) / 1000;
        const rate = elapsed > 0 ? (e.done - firstDone.get(e.phase)!) / elapsed : 0;
        const eta = rate > 0 ? (e.total - e.done) / rate : Number.POSITIVE_INFINITY;
        const width = 28;
        const filled = e.total > 0 ? Math.round((width * e.done) / e.total) : 0;
        const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
        const stats = e.stats
          ? Object.entries(e.stats)
              .map(([k, v]) => ` · ${k} ${formatStat(v)}`)
              .join('')
          : '';
        out.write(
          `\r\x1b[2K${e.phase} ${bar} ${e.done}/${e.total} ${e.unit} · ${rate.toFixed(rate < 10 ? 1 : 0)}/s · ETA ${formatSeconds(eta)}${stats}`,
        );
        barShown = true;
        break;
      }
      case 'done':
        clear();
        out.write(`${e.phase} done in ${formatSeconds(e.seconds)}\n`);
        break;
      case 'warning':
        clear();
        out.write(`warning: ${e.message}\n`);
        break;
      case 'checkpoint':
        if (!live) out.write(`checkpoint ${e.path} (step ${e.step}, ${e.kimg.toFixed(1)} kimg)\n`);
        break;
      case 'metric':
        clear();
        out.write(`${e.name} = ${e.value}\n`);
        break;
    }
  };
  return { onProgress, clear };
}

/** A number for a status line: 4 significant digits, no exponent for ordinary magnitudes. */
export function formatStat(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

/** Left-aligned first column, right-aligned others. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  return cells
    .map((r) =>
      r.map((v, c) => (c === 0 ? (v ?? '').padEnd(widths[c]!) : (v ?? '').padStart(widths[c]!))).join('  '),
    )
    .join('\n');
}
