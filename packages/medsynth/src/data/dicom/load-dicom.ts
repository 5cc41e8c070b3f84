/**
 * The DICOM loader: a single DICOM file, or a folder of them.
 *
 * A single file is one unlabelled sample (class `unlabelled`); its header is read at list time, so a file that
 * is not DICOM, has no pixel data or uses a transfer syntax without a codec fails at once.
 *
 * A folder is walked recursively (hidden entries and `DICOMDIR` skipped). DICOM files are those named `*.dcm`,
 * `*.dicom`, `*.dic` or `*.ima`, plus files with no extension or a numeric one (UID-named files such as
 * `1.2.840.113619.2.55.3.1`) whose first bytes carry a DICOM signature (`isDicomFile`). Labels, in this order:
 * 1. a labels CSV (`labelsCsv`, else `<root>/labels.csv`), read with `readLabelsCsv`. Paths are relative to
 *    the CSV's folder. A row naming a missing file is a DatasetError naming the CSV line; DICOM files under the
 *    folder that no row names are skipped and counted in a note. Split/group columns are used when present;
 *    rows without a split value take it from a top-level split folder (train/val/test) if the file is in one;
 * 2. `<root>/<split>/<class>/…` when every top-level folder is a split name;
 * 3. `<root>/<class>/…`;
 * 4. DICOM files directly in the folder and no sub-folders with DICOM files: one class, `unlabelled`.
 * `labelFromFilename` / `groupFromFilename` work as in the image-folder loader.
 *
 * Listing never decodes pixels. To report transfer syntaxes and MONOCHROME1 inversion early, the headers of
 * up to 16 files (evenly spread over the listing) are parsed from their first 256 KiB; the notes say how many
 * were sampled. `read(i)` decodes file i with `dicomWindow` / `dicomBitDepth` (see `decodeDicom`).
 */
import type { Dirent } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError, DatasetError, UnsupportedFormatError } from '../../runtime/errors.js';
import { throwIfAborted } from '../../runtime/progress.js';
import { classIndex, type LabelsCsv, normalizeSplitName, readLabelsCsv } from '../labels-csv.js';
import {
  type LoaderOptions,
  type RawImage,
  type SampleRecord,
  type SourceListing,
  SPLIT_NAMES,
  type SplitName,
} from '../types.js';
import { checkDicomWindow, type DicomHeader, decodeDicom, isDicomFile, readDicomHeader } from './decode.js';

/** Extensions (lower case) always taken as DICOM. */
const DICOM_EXTENSIONS = new Set(['.dcm', '.dicom', '.dic', '.ima']);
/** Class name used when there are no labels. */
export const UNLABELLED = 'unlabelled';
const HEADER_SAMPLE = 16;
const HEADER_BYTES = 256 * 1024;
const SIGNATURE_BYTES = 132;

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

async function readHead(file: string, bytes: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const buf = new Uint8Array(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function isHidden(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX' || name === 'Thumbs.db';
}

/** 'yes' by extension, 'maybe' when the signature decides, 'no' otherwise. */
function candidate(name: string): 'yes' | 'maybe' | 'no' {
  if (name.toUpperCase() === 'DICOMDIR') return 'no';
  const ext = extname(name).toLowerCase();
  if (DICOM_EXTENSIONS.has(ext)) return 'yes';
  if (ext === '' || /^\.\d+$/.test(ext)) return 'maybe';
  return 'no';
}

async function isDicom(file: string, name: string): Promise<boolean> {
  const c = candidate(name);
  if (c !== 'maybe') return c === 'yes';
  try {
    return isDicomFile(await readHead(file, SIGNATURE_BYTES));
  } catch {
    return false;
  }
}

interface DirListing {
  readonly dirs: string[];
  readonly files: string[];
}

async function listDir(dir: string): Promise<DirListing> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (cause) {
    throw new DatasetError('cannot read the folder', { file: dir, cause });
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const e of entries) {
    if (isHidden(e.name)) continue;
    if (e.isDirectory()) dirs.push(e.name);
    else if (e.isFile()) files.push(e.name);
    else if (e.isSymbolicLink()) {
      const st = await stat(join(dir, e.name)).catch(() => undefined);
      if (st?.isDirectory()) dirs.push(e.name);
      else if (st?.isFile()) files.push(e.name);
    }
  }
  dirs.sort(byName);
  files.sort(byName);
  return { dirs, files };
}

/** DICOM files directly in a folder (not recursive). */
async function dicomFilesIn(dir: string, files: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) if (await isDicom(join(dir, f), f)) out.push(join(dir, f));
  return out;
}

/** Every DICOM file below `dir`, in sorted depth-first order. */
async function walkDicom(dir: string, signal: AbortSignal | undefined): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string): Promise<void> => {
    throwIfAborted(signal);
    const { dirs, files } = await listDir(d);
    out.push(...(await dicomFilesIn(d, files)));
    for (const sub of dirs) await visit(join(d, sub));
  };
  await visit(dir);
  return out;
}

function compilePattern(option: 'labelFromFilename' | 'groupFromFilename', text: string): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(text);
  const source = m ? m[1]! : text;
  const flags = (m ? m[2]! : '').replace(/[gy]/g, '');
  let re: RegExp;
  try {
    re = new RegExp(source, flags);
  } catch (cause) {
    throw new ConfigError(`invalid regular expression: ${(cause as Error).message}`, {
      field: option,
      found: text,
      cause,
    });
  }
  if (new RegExp(`${source}|`, flags).exec('')!.length - 1 < 1) {
    throw new ConfigError('the regular expression needs a capture group (…) for the value', {
      field: option,
      expected: 'one capture group, e.g. ^(\\w+)_',
      found: text,
    });
  }
  return re;
}

function capture(re: RegExp | undefined, file: string): string | undefined {
  if (!re) return undefined;
  const v = re.exec(basename(file))?.[1];
  return v === undefined || v === '' ? undefined : v;
}

function toId(root: string, file: string): string {
  const rel = relative(root, file);
  return sep === '/' ? rel : rel.split(sep).join('/');
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

interface Entry {
  readonly file: string;
  readonly label: string;
  readonly split?: SplitName;
  readonly group?: string;
}

function topLevelSplits(root: string, dirs: readonly string[]): Map<string, SplitName> | undefined {
  const splits = new Map<string, SplitName>();
  const others: string[] = [];
  for (const d of dirs) {
    const s = normalizeSplitName(d);
    if (s) splits.set(d, s);
    else others.push(d);
  }
  if (splits.size === 0) return undefined;
  if (others.length > 0) {
    throw new DatasetError(
      'the folder mixes split folders with other folders; use <split>/<class>/ or <class>/',
      {
        file: root,
        expected: 'only train/val/test folders, or only class folders',
        found: `split folders ${[...splits.keys()].join(', ')} and other folders ${others.join(', ')}`,
      },
    );
  }
  return splits;
}

/** Layouts 2–4: class folders (optionally below split folders), or a flat folder of DICOM files. */
async function listFolders(root: string, signal: AbortSignal | undefined, notes: string[]): Promise<Entry[]> {
  const top = await listDir(root);
  const direct = await dicomFilesIn(root, top.files);
  const perDir = new Map<string, string[]>();
  for (const d of top.dirs) perDir.set(d, await walkDicom(join(root, d), signal));
  const withFiles = top.dirs.filter((d) => perDir.get(d)!.length > 0);
  if (withFiles.length === 0) {
    if (direct.length === 0) {
      throw new DatasetError('no DICOM files found in the folder', {
        file: root,
        expected: '*.dcm files (or extension-less DICOM files), in class folders or directly in the folder',
        found: 'none',
      });
    }
    notes.push(`layout: flat folder, no labels (one class "${UNLABELLED}")`);
    return direct.map((file) => ({ file, label: UNLABELLED }));
  }
  const splits = topLevelSplits(root, top.dirs);
  const entries: Entry[] = [];
  let stray = direct.length;
  if (splits) {
    const ordered = [...splits].sort(([, a], [, b]) => SPLIT_NAMES.indexOf(a) - SPLIT_NAMES.indexOf(b));
    for (const [dir, split] of ordered) {
      const splitDir = join(root, dir);
      const { dirs, files } = await listDir(splitDir);
      stray += (await dicomFilesIn(splitDir, files)).length;
      if (dirs.length === 0) {
        notes.push(`split folder ${dir}/ has no class folders; ignored`);
        continue;
      }
      for (const cls of dirs) {
        const files = await walkDicom(join(splitDir, cls), signal);
        if (files.length === 0) {
          throw new DatasetError(`class ${cls} has no DICOM files`, {
            file: join(splitDir, cls),
            found: 'none',
          });
        }
        for (const file of files) entries.push({ file, label: cls, split });
      }
    }
    notes.push(`layout <split>/<class>/: splits from folders ${[...splits.keys()].join(', ')}`);
  } else {
    for (const cls of top.dirs) {
      const files = perDir.get(cls)!;
      if (files.length === 0) {
        throw new DatasetError(`class ${cls} has no DICOM files`, { file: join(root, cls), found: 'none' });
      }
      for (const file of files) entries.push({ file, label: cls });
    }
    notes.push('layout <class>/: no split given');
  }
  if (stray > 0) notes.push(`${plural(stray, 'DICOM file')} outside class folders ignored`);
  return entries;
}

/** Layout 1: a labels CSV. */
async function listFromCsv(
  root: string,
  csv: LabelsCsv,
  signal: AbortSignal | undefined,
  notes: string[],
): Promise<Entry[]> {
  const found = await walkDicom(root, signal);
  const present = new Set(found);
  const top = await listDir(root);
  let splits: Map<string, SplitName> | undefined;
  try {
    splits = topLevelSplits(root, top.dirs);
  } catch {
    splits = undefined; // mixed top level: the CSV decides, folder names give no split
  }
  const csvDir = dirname(csv.file);
  const used = new Map<string, number>();
  const entries: Entry[] = [];
  let folderSplits = 0;
  for (const row of csv.rows) {
    const file = resolve(csvDir, row.path);
    if (!present.has(file)) {
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) {
        throw new DatasetError('the file named in the labels CSV does not exist', {
          file: csv.file,
          field: `line ${row.line}, column ${csv.columns.path}`,
          expected: `a file at ${file}`,
          found: row.path,
        });
      }
    }
    const prev = used.get(file);
    if (prev !== undefined) {
      throw new DatasetError(`the labels CSV lists the same file twice (lines ${prev} and ${row.line})`, {
        file: csv.file,
        field: `line ${row.line}, column ${csv.columns.path}`,
        found: row.path,
      });
    }
    used.set(file, row.line);
    let split = row.split;
    if (!split && splits) {
      const first = relative(root, file).split(sep)[0];
      split = first === undefined ? undefined : splits.get(first);
      if (split) folderSplits++;
    }
    entries.push({
      file,
      label: row.label,
      ...(split ? { split } : {}),
      ...(row.group !== undefined ? { group: row.group } : {}),
    });
  }
  const csvName = basename(csv.file);
  notes.push(`labels from ${csvName} (${plural(csv.rows.length, 'row')})`);
  if (csv.columns.split) notes.push(`splits from ${csvName} column "${csv.columns.split}"`);
  if (folderSplits > 0)
    notes.push(`${plural(folderSplits, 'sample')} without a CSV split took it from its folder`);
  if (csv.columns.group) notes.push(`groups from ${csvName} column "${csv.columns.group}"`);
  const skipped = found.filter((f) => !used.has(f)).length;
  if (skipped > 0) notes.push(`${plural(skipped, 'DICOM file')} under the folder not in ${csvName}; skipped`);
  return entries;
}

/** Notes from a few headers: transfer syntaxes, MONOCHROME1, files that will not decode. */
async function headerNotes(
  files: readonly string[],
  notes: string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const n = Math.min(HEADER_SAMPLE, files.length);
  if (n === 0) return;
  const picked = Array.from({ length: n }, (_, i) => files[Math.floor((i * files.length) / n)]!);
  const syntaxes = new Map<string, number>();
  let mono1 = 0;
  let multiFrame = 0;
  let unreadable = 0;
  const undecodable = new Map<string, number>();
  let noPixels = 0;
  for (const file of picked) {
    throwIfAborted(signal);
    let h: DicomHeader;
    try {
      h = readDicomHeader(await readHead(file, HEADER_BYTES), file);
    } catch {
      unreadable++;
      continue;
    }
    const ts = `${h.transferSyntaxName} (${h.transferSyntaxUid})`;
    syntaxes.set(ts, (syntaxes.get(ts) ?? 0) + 1);
    if (h.photometric === 'MONOCHROME1') mono1++;
    if (h.frames > 1) multiFrame++;
    if (!h.decodable) undecodable.set(ts, (undecodable.get(ts) ?? 0) + 1);
    if (!h.hasPixelData) noPixels++;
  }
  const of = n === files.length ? `all ${plural(n, 'file')}` : `${n} of ${files.length} files sampled`;
  notes.push(
    `transfer syntaxes (${of}): ${[...syntaxes].map(([ts, k]) => `${ts} ×${k}`).join(', ') || 'none read'}`,
  );
  if (mono1 > 0)
    notes.push(`MONOCHROME1 in ${mono1} of ${n} headers: inverted after windowing (high = bright)`);
  if (multiFrame > 0)
    notes.push(`${multiFrame} of ${n} headers are multi-frame: only the first frame is decoded`);
  for (const [ts, k] of undecodable)
    notes.push(`${k} of ${n} headers use ${ts}, which medsynth cannot decode`);
  if (noPixels > 0) notes.push(`${noPixels} of ${n} headers have no pixel data (not images)`);
  if (unreadable > 0) notes.push(`${unreadable} of ${n} sampled headers could not be parsed`);
}

async function decodeFile(file: string, opts: LoaderOptions): Promise<RawImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new DatasetError('cannot read the DICOM file', { file, cause });
  }
  const { image } = await decodeDicom(
    new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    file,
    {
      window: opts.dicomWindow,
      bitDepth: opts.dicomBitDepth,
    },
  );
  return image;
}

async function loadSingle(file: string, opts: LoaderOptions): Promise<SourceListing> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    throw new DatasetError('cannot read the DICOM file', { file, cause });
  }
  const h = readDicomHeader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
  if (!h.hasPixelData) {
    throw new DatasetError('no pixel data: not an image object', { file, field: '(7FE0,0010) PixelData' });
  }
  if (!h.decodable) {
    throw new UnsupportedFormatError(
      `transfer syntax ${h.transferSyntaxUid} (${h.transferSyntaxName}) is not supported`,
      {
        file,
        field: '(0002,0010) TransferSyntaxUID',
        found: `${h.transferSyntaxUid} ${h.transferSyntaxName}`,
      },
    );
  }
  const notes = [
    `single DICOM file: ${h.modality ?? 'modality unknown'}, ${h.columns ?? '?'}×${h.rows ?? '?'}, ${h.photometric ?? 'no photometric'}, ${h.transferSyntaxName} (${h.transferSyntaxUid})`,
  ];
  if (h.legacy) notes.push(`no DICOM preamble/meta header; read as ${h.transferSyntaxName}`);
  if (h.photometric === 'MONOCHROME1') notes.push('MONOCHROME1: inverted after windowing (high = bright)');
  if (h.frames > 1) notes.push(`${h.frames} frames: only the first is decoded`);
  return {
    format: 'dicom',
    location: file,
    classNames: [UNLABELLED],
    labelSource: 'none (single file)',
    samples: [{ id: basename(file), label: 0 }],
    notes,
    read: (index) => {
      if (index !== 0) return Promise.reject(new RangeError(`sample index ${index} out of range 0..0`));
      return decodeFile(file, opts);
    },
  };
}

/** Lists a DICOM file or a folder of DICOM files (see the module comment for layouts and labels). */
export async function loadDicom(path: string, opts: LoaderOptions = {}): Promise<SourceListing> {
  const location = resolve(path);
  if (typeof opts.dicomWindow === 'object') checkDicomWindow(opts.dicomWindow);
  const labelRe =
    opts.labelFromFilename !== undefined
      ? compilePattern('labelFromFilename', opts.labelFromFilename)
      : undefined;
  const groupRe =
    opts.groupFromFilename !== undefined
      ? compilePattern('groupFromFilename', opts.groupFromFilename)
      : undefined;
  const st = await stat(location).catch(() => undefined);
  if (!st) throw new DatasetError('DICOM file or folder not found', { file: location });
  throwIfAborted(opts.signal);
  if (st.isFile()) return loadSingle(location, opts);
  if (!st.isDirectory()) throw new DatasetError('not a file or folder', { file: location });

  let csvFile: string | undefined;
  if (opts.labelsCsv !== undefined && opts.labelsCsv !== '') {
    csvFile = resolve(opts.labelsCsv);
    if (
      !isAbsolute(opts.labelsCsv) &&
      !(await exists(csvFile)) &&
      (await exists(join(location, opts.labelsCsv)))
    ) {
      csvFile = join(location, opts.labelsCsv);
    }
  } else if (await exists(join(location, 'labels.csv'))) {
    csvFile = join(location, 'labels.csv');
  }

  const notes: string[] = [];
  let labelSource: string;
  let entries: Entry[];
  if (csvFile !== undefined) {
    const csv = await readLabelsCsv(csvFile, {
      pathColumn: opts.pathColumn,
      labelColumn: opts.labelColumn,
      splitColumn: opts.splitColumn,
      groupColumn: opts.groupColumn,
    });
    entries = await listFromCsv(location, csv, opts.signal, notes);
    labelSource = `${basename(csv.file)} column "${csv.columns.label}"`;
  } else {
    entries = await listFolders(location, opts.signal, notes);
    labelSource = entries.every((e) => e.label === UNLABELLED) ? 'none (flat folder)' : 'class folders';
  }

  if (labelRe) {
    let relabelled = 0;
    entries = entries.map((e) => {
      const label = capture(labelRe, e.file);
      if (label === undefined) return e;
      relabelled++;
      return { ...e, label };
    });
    labelSource += ` + file name pattern ${String(labelRe)}`;
    notes.push(
      `file name pattern ${String(labelRe)} set the label of ${relabelled} of ${entries.length} files`,
    );
  }
  if (groupRe) {
    let matched = 0;
    entries = entries.map((e) => {
      const group = capture(groupRe, e.file);
      if (group === undefined) return e;
      matched++;
      return { ...e, group };
    });
    notes.push(`file name pattern ${String(groupRe)} set the group of ${matched} of ${entries.length} files`);
  }

  const files = entries.map((e) => e.file);
  await headerNotes(files, notes, opts.signal);
  if ((opts.dicomWindow ?? 'auto') === 'auto' && files.length > 1) {
    notes.push(
      'window auto: each file uses its own Window Center/Width (else its min–max), so intensities may not be comparable across files; pass an explicit center,width (e.g. 40,400 for CT soft tissue) for a fixed mapping',
    );
  }
  const { classNames, indexOf } = classIndex(entries.map((e) => e.label));
  const samples: SampleRecord[] = entries.map((e) => ({
    id: toId(location, e.file),
    label: indexOf.get(e.label)!,
    ...(e.split ? { split: e.split } : {}),
    ...(e.group !== undefined ? { group: e.group } : {}),
  }));
  const groups = new Set(samples.map((s) => s.group).filter((g) => g !== undefined));
  if (groups.size > 0) notes.push(`${plural(groups.size, 'group')} over ${samples.length} samples`);

  return {
    format: 'dicom',
    location,
    classNames,
    labelSource,
    samples,
    notes,
    read: (index) => {
      const file = files[index];
      if (file === undefined) {
        return Promise.reject(new RangeError(`sample index ${index} out of range 0..${files.length - 1}`));
      }
      return decodeFile(file, opts);
    },
  };
}
