/** Number formats of the report's tables (pure; the tests compute expected cells with the same rules). */
import type { Interval } from '../study/summary.js';

const DASH = '–';
const MINUS = '−';

/** A proportion as a percentage with one decimal, `79.5`; `–` when missing. */
export function pct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  return (100 * v).toFixed(1);
}

/** A difference of proportions in percentage points with its sign, `+4.0` / `−12.5`. */
export function signedPct(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  const s = (100 * v).toFixed(1);
  if (Number(s) === 0) return '0.0';
  return v > 0 ? `+${s}` : `${MINUS}${s.slice(1)}`;
}

/** `[lo, hi]` of an interval in percent, or '' for one seed (no interval). */
export function pctInterval(i: Interval | null, signed = false): string {
  if (!i || i.n < 2) return '';
  const f = signed ? signedPct : pct;
  return `[${f(i.ci[0])}, ${f(i.ci[1])}]`;
}

/** A p-value: `< 0.001`, `0.034`, or `–`. */
export function pValue(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return DASH;
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

/** A metric value with four significant digits (exponent form when tiny or huge); `–` when missing. */
export function stat(v: number | null | undefined): string {
  if (v === null || v === undefined) return DASH;
  if (!Number.isFinite(v)) return Number.isNaN(v) ? DASH : v > 0 ? '∞' : `${MINUS}∞`;
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2).replace('-', MINUS);
  return Number(v.toPrecision(4)).toString().replace('-', MINUS);
}

/** A count: integers as they are, fractional means (confusion over seeds) with one decimal. */
export function count(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** A date as `2026-12-03 05:19 UTC`. */
export function utcDate(iso: string | Date): string {
  const d = typeof iso === 'string' ? new Date(iso) : iso;
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** Seconds as `42 s`, `3.5 min`, `1.2 h`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return DASH;
  if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A number with `digits` decimals and a typographic minus (`−0.52`); `–` when missing. */
export function fixed(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return DASH;
  const s = v.toFixed(digits);
  return Number(s) === 0 ? (0).toFixed(digits) : s.replace('-', MINUS);
}
