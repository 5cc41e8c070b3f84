/**
 * Label tables: a CSV that maps image files to labels, and optionally to a split and a group
 * (patient / source tile). Used by the folder and DICOM loaders.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import type { SplitName } from './types.js';

export interface LabelsCsvRow {
  /** As written in the CSV (relative to the CSV's folder unless absolute). */
  readonly path: string;
  readonly label: string;
  readonly split?: SplitName;
  readonly group?: string;
  /** 1-based line number in the file (header = line 1). */
  readonly line: number;
}

export interface LabelsCsvColumns {
  readonly pathColumn?: string | undefined;
  readonly labelColumn?: string | undefined;
  readonly splitColumn?: string | undefined;
  readonly groupColumn?: string | undefined;
}

export interface LabelsCsv {
  readonly file: string;
  readonly rows: readonly LabelsCsvRow[];
  readonly columns: {
    readonly path: string;
    readonly label: string;
    readonly split?: string;
    readonly group?: string;
  };
}

const CANDIDATES = {
  path: ['path', 'file', 'filename', 'file_name', 'image', 'image_path', 'image_id'],
  label: ['label', 'class', 'target', 'diagnosis', 'dx'],
  split: ['split', 'subset', 'fold_split'],
  group: ['group_id', 'group', 'patient_id', 'patient', 'subject_id', 'subject'],
} as const;

/** Maps split spellings (`valid`, `validation`, `TEST`…) to a `SplitName`, or undefined if unknown. */
export function normalizeSplitName(s: string): SplitName | undefined {
  const v = s.trim().toLowerCase();
  if (v === 'train' || v === 'training') return 'train';
  if (v === 'val' || v === 'valid' || v === 'validation' || v === 'dev') return 'val';
  if (v === 'test' || v === 'testing') return 'test';
  return undefined;
}

function pickColumn(
  header: readonly string[],
  requested: string | undefined,
  kind: keyof typeof CANDIDATES,
  file: string,
  required: boolean,
): string | undefined {
  if (requested !== undefined) {
    if (!header.includes(requested)) {
      throw new ConfigError(`column "${requested}" is not in the CSV header`, {
        file,
        field: `${kind}Column`,
        found: header.join(','),
      });
    }
    return requested;
  }
  const lower = header.map((h) => h.toLowerCase());
  for (const c of CANDIDATES[kind]) {
    const i = lower.indexOf(c);
    if (i >= 0) return header[i];
  }
  if (required) {
    throw new DatasetError(`no ${kind} column in the CSV header; name it with --${kind}-column`, {
      file,
      expected: `one of ${CANDIDATES[kind].join(', ')}`,
      found: header.join(','),
    });
  }
  return undefined;
}

export async function readLabelsCsv(file: string, cols: LabelsCsvColumns = {}): Promise<LabelsCsv> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new DatasetError('cannot read the labels CSV', { file, cause });
  }
  let records: string[][];
  try {
    records = parse(text, { skip_empty_lines: true, trim: true, bom: true, relax_column_count: false });
  } catch (cause) {
    throw new DatasetError(`malformed CSV: ${(cause as Error).message}`, { file, cause });
  }
  const header = records[0];
  if (!header || records.length < 2) throw new DatasetError('the labels CSV has no data rows', { file });
  const pathCol = pickColumn(header, cols.pathColumn, 'path', file, true)!;
  const labelCol = pickColumn(header, cols.labelColumn, 'label', file, true)!;
  const splitCol = pickColumn(header, cols.splitColumn, 'split', file, false);
  const groupCol = pickColumn(header, cols.groupColumn, 'group', file, false);
  const idx = (c: string | undefined) => (c === undefined ? -1 : header.indexOf(c));
  const [pi, li, si, gi] = [idx(pathCol), idx(labelCol), idx(splitCol), idx(groupCol)];
  const rows: LabelsCsvRow[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]!;
    const line = r + 1;
    const path = rec[pi] ?? '';
    const label = rec[li] ?? '';
    if (!path) throw new DatasetError('empty path', { file, field: `line ${line}, column ${pathCol}` });
    if (!label) throw new DatasetError('empty label', { file, field: `line ${line}, column ${labelCol}` });
    let split: SplitName | undefined;
    if (si >= 0 && rec[si]) {
      split = normalizeSplitName(rec[si]!);
      if (!split) {
        throw new DatasetError('unknown split name', {
          file,
          field: `line ${line}, column ${splitCol}`,
          expected: 'train, val or test',
          found: rec[si],
        });
      }
    }
    const group = gi >= 0 && rec[gi] ? rec[gi] : undefined;
    rows.push({ path, label, line, ...(split ? { split } : {}), ...(group ? { group } : {}) });
  }
  return {
    file,
    rows,
    columns: {
      path: pathCol,
      label: labelCol,
      ...(splitCol ? { split: splitCol } : {}),
      ...(groupCol ? { group: groupCol } : {}),
    },
  };
}

/**
 * Class names in a stable order: numerically when every name is an integer, else lexicographically.
 * Returns the names and a lookup from name to index.
 */
export function classIndex(names: Iterable<string>): { classNames: string[]; indexOf: Map<string, number> } {
  const unique = [...new Set(names)];
  const numeric = unique.every((n) => /^-?\d+$/.test(n));
  unique.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { classNames: unique, indexOf: new Map(unique.map((n, i) => [n, i])) };
}
