/**
 * Listing image files on disk, shared by the image-folder and DICOM loaders: folder walking (hidden entries
 * skipped, sorted), the three folder layouts (a labels CSV, `<split>/<class>/`, `<class>/`), file-name
 * patterns for labels and groups, and the step from listed files to `SampleRecord`s.
 *
 * What a loader reads, and where the two loaders differ (a flat folder, the words of notes and errors), is
 * its `FilePolicy`.
 */
import type { Dirent } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import { throwIfAborted } from '../runtime/progress.js';
import { classIndex, type LabelsCsv, normalizeSplitName, readLabelsCsv } from './labels-csv.js';
import { type LoaderOptions, type SampleRecord, SPLIT_NAMES, type SplitName } from './types.js';

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A sample id: the file's path relative to the root, with `/` separators. */
export function toId(root: string, file: string): string {
  const rel = relative(root, file);
  return sep === '/' ? rel : rel.split(sep).join('/');
}

/** The first `bytes` bytes of a file (fewer if it is shorter). */
export async function readHead(file: string, bytes: number): Promise<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    const buf = new Uint8Array(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function isHidden(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX' || name === 'Thumbs.db';
}

export interface DirListing {
  readonly dirs: string[];
  readonly files: string[];
}

/** One folder's visible sub-folders and files, sorted by name (symbolic links followed). */
export async function listDir(dir: string): Promise<DirListing> {
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

/**
 * A loader's verdict on one file: read it, pass over it silently (checksums, notes), or pass over it and
 * count it under `skip` (e.g. `.bmp` when this build of sharp cannot decode it).
 */
export type FileVerdict = 'take' | 'ignore' | { readonly skip: string };
/** Judges one file: `file` is its absolute path, `name` its base name. */
export type FileClassifier = (file: string, name: string) => FileVerdict | Promise<FileVerdict>;

export interface Found {
  /** Absolute paths of the files taken, in sorted (depth-first) order. */
  readonly files: string[];
  /** Files passed over with a `skip` verdict, counted by its key. */
  readonly skipped: Map<string, number>;
}

function mergeCounts(into: Map<string, number>, from: Map<string, number>): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

/** The files among `names` (entries of `dir`, not recursive) that `classify` takes. */
async function classifyFiles(
  dir: string,
  names: readonly string[],
  classify: FileClassifier,
): Promise<Found> {
  const files: string[] = [];
  const skipped = new Map<string, number>();
  for (const name of names) {
    const file = join(dir, name);
    const v = await classify(file, name);
    if (v === 'take') files.push(file);
    else if (v !== 'ignore') skipped.set(v.skip, (skipped.get(v.skip) ?? 0) + 1);
  }
  return { files, skipped };
}

/** Every file below `dir` (recursively) that `classify` takes, in deterministic order. */
export async function walkFiles(
  dir: string,
  classify: FileClassifier,
  signal: AbortSignal | undefined,
): Promise<Found> {
  const files: string[] = [];
  const skipped = new Map<string, number>();
  const visit = async (d: string): Promise<void> => {
    throwIfAborted(signal);
    const { dirs, files: names } = await listDir(d);
    const here = await classifyFiles(d, names, classify);
    files.push(...here.files);
    mergeCounts(skipped, here.skipped);
    for (const sub of dirs) await visit(join(d, sub));
  };
  await visit(dir);
  return { files, skipped };
}

/** Split name for each top-level folder, or undefined when the top level is not all split folders. */
export function topLevelSplits(root: string, dirs: readonly string[]): Map<string, SplitName> | undefined {
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

/** The fields of a `DatasetError` a loader words its own way. */
export interface ErrorText {
  readonly message: string;
  readonly expected?: string;
  readonly found?: string;
}

/** What a loader reads and how it words what it finds; the folder and DICOM loaders each have one. */
export interface FilePolicy {
  /** Which files the loader reads. */
  readonly classify: FileClassifier;
  /** One such file in notes: "image file", "DICOM file". */
  readonly noun: string;
  /** What the "class X has no …" error says is missing ("images") and, if given, what was expected. */
  readonly emptyClass: { readonly missing: string; readonly expected?: string };
  /** The note's word for files under the folder that a labels CSV leaves out: "ignored", "skipped". */
  readonly unlisted: string;
  /** The example in the "needs a capture group" error of `labelFromFilename` / `groupFromFilename`. */
  readonly patternExample: string;
  /**
   * What a folder without class folders holding files means. Without `flatLabel` (the folder loader): the
   * error `noFiles`, given how many of the loader's files lie outside class folders. With it (the DICOM
   * loader): when no top-level folder holds a file, the files directly in the folder are one class of that
   * name, and `noFiles(0)` when there are none; split folders holding only loose files then list nothing.
   */
  readonly flatLabel?: string;
  readonly noFiles: (stray: number) => ErrorText;
}

export interface Entry {
  readonly file: string;
  readonly label: string;
  readonly split?: SplitName;
  readonly group?: string;
}

function noFiles(root: string, policy: FilePolicy, stray: number): never {
  const { message, ...context } = policy.noFiles(stray);
  throw new DatasetError(message, { file: root, ...context });
}

/** Layouts 2 and 3: class folders, optionally below split folders (or a flat folder, see `flatLabel`). */
async function listClassFolders(
  root: string,
  policy: FilePolicy,
  signal: AbortSignal | undefined,
  notes: string[],
  skipped: Map<string, number>,
): Promise<Entry[]> {
  const top = await listDir(root);
  const direct = await classifyFiles(root, top.files, policy.classify);
  // With a flat policy every top-level folder is walked first; the walks are reused as class folders.
  const walked = new Map<string, Found>();
  if (policy.flatLabel !== undefined) {
    const label = policy.flatLabel;
    for (const d of top.dirs) walked.set(d, await walkFiles(join(root, d), policy.classify, signal));
    if ([...walked.values()].every((w) => w.files.length === 0)) {
      if (direct.files.length === 0) noFiles(root, policy, 0);
      mergeCounts(skipped, direct.skipped);
      notes.push(`layout: flat folder, no labels (one class "${label}")`);
      return direct.files.map((file) => ({ file, label }));
    }
  }
  const splits = topLevelSplits(root, top.dirs);
  const parents: { dir: string; split?: SplitName }[] = splits
    ? [...splits]
        .sort(([, a], [, b]) => SPLIT_NAMES.indexOf(a) - SPLIT_NAMES.indexOf(b))
        .map(([d, split]) => ({ dir: join(root, d), split }))
    : [{ dir: root }];
  const entries: Entry[] = [];
  let stray = direct.files.length;
  for (const parent of parents) {
    const { dirs, files } = splits ? await listDir(parent.dir) : top;
    if (splits) stray += (await classifyFiles(parent.dir, files, policy.classify)).files.length;
    if (splits && dirs.length === 0) {
      notes.push(`split folder ${basename(parent.dir)}/ has no class folders; ignored`);
      continue;
    }
    for (const cls of dirs) {
      const classDir = join(parent.dir, cls);
      const found =
        (splits ? undefined : walked.get(cls)) ?? (await walkFiles(classDir, policy.classify, signal));
      mergeCounts(skipped, found.skipped);
      if (found.files.length === 0) {
        const { missing, expected } = policy.emptyClass;
        throw new DatasetError(`class ${cls} has no ${missing}`, {
          file: classDir,
          ...(expected !== undefined ? { expected } : {}),
          found: 'none',
        });
      }
      for (const file of found.files) {
        entries.push({ file, label: cls, ...(parent.split ? { split: parent.split } : {}) });
      }
    }
  }
  if (entries.length === 0 && policy.flatLabel === undefined) noFiles(root, policy, stray);
  if (stray > 0) notes.push(`${plural(stray, policy.noun)} outside class folders ignored`);
  notes.push(
    splits
      ? `layout <split>/<class>/: splits from folders ${[...splits.keys()].join(', ')}`
      : 'layout <class>/: no split given',
  );
  return entries;
}

/** Layout 1: a labels CSV. */
async function listFromCsv(
  root: string,
  csv: LabelsCsv,
  policy: FilePolicy,
  signal: AbortSignal | undefined,
  notes: string[],
  skipped: Map<string, number>,
): Promise<Entry[]> {
  const found = await walkFiles(root, policy.classify, signal);
  mergeCounts(skipped, found.skipped);
  const present = new Set(found.files);
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
  const unlisted = found.files.filter((f) => !used.has(f)).length;
  if (unlisted > 0) {
    notes.push(`${plural(unlisted, policy.noun)} under the folder not in ${csvName}; ${policy.unlisted}`);
  }
  return entries;
}

/** `opts.labelsCsv` (relative to the working directory, else to the root), else `<root>/labels.csv` if any. */
async function findLabelsCsv(root: string, labelsCsv: string | undefined): Promise<string | undefined> {
  if (labelsCsv !== undefined && labelsCsv !== '') {
    const file = resolve(labelsCsv);
    // A relative path that is not there relative to the working directory may be meant relative to the root.
    if (!isAbsolute(labelsCsv) && !(await exists(file)) && (await exists(join(root, labelsCsv)))) {
      return join(root, labelsCsv);
    }
    return file;
  }
  return (await exists(join(root, 'labels.csv'))) ? join(root, 'labels.csv') : undefined;
}

export interface Listed {
  readonly entries: Entry[];
  /** Where the labels came from: the CSV's label column, "class folders", or "none (flat folder)". */
  readonly labelSource: string;
  /** Files passed over with a `skip` verdict (see `FileVerdict`), counted by key. */
  readonly skipped: Map<string, number>;
}

/**
 * Lists a folder's files with their labels, splits and groups: from a labels CSV (`opts.labelsCsv`, else
 * `<root>/labels.csv`) when there is one, else from class folders. Notes about the listing go to `notes`.
 */
export async function listEntries(
  root: string,
  opts: LoaderOptions,
  policy: FilePolicy,
  notes: string[],
): Promise<Listed> {
  const skipped = new Map<string, number>();
  const csvFile = await findLabelsCsv(root, opts.labelsCsv);
  if (csvFile !== undefined) {
    const csv = await readLabelsCsv(csvFile, {
      pathColumn: opts.pathColumn,
      labelColumn: opts.labelColumn,
      splitColumn: opts.splitColumn,
      groupColumn: opts.groupColumn,
    });
    const entries = await listFromCsv(root, csv, policy, opts.signal, notes, skipped);
    return { entries, labelSource: `${basename(csv.file)} column "${csv.columns.label}"`, skipped };
  }
  const entries = await listClassFolders(root, policy, opts.signal, notes, skipped);
  const flat = policy.flatLabel !== undefined && entries.every((e) => e.label === policy.flatLabel);
  return { entries, labelSource: flat ? 'none (flat folder)' : 'class folders', skipped };
}

/** Parses a file-name regex option: `pattern` or `/pattern/flags`; it must have a capture group. */
function compilePattern(
  option: 'labelFromFilename' | 'groupFromFilename',
  text: string,
  example: string,
): RegExp {
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
  const groups = new RegExp(`${source}|`, flags).exec('')!.length - 1;
  if (groups < 1) {
    throw new ConfigError('the regular expression needs a capture group (…) for the value', {
      field: option,
      expected: `one capture group, e.g. ${example}`,
      found: text,
    });
  }
  return re;
}

/** `labelFromFilename` / `groupFromFilename`, compiled. */
export interface FilenamePatterns {
  readonly label?: RegExp;
  readonly group?: RegExp;
}

/** Compiles the file-name options (a `ConfigError` names a bad one). */
export function filenamePatterns(opts: LoaderOptions, policy: FilePolicy): FilenamePatterns {
  return {
    ...(opts.labelFromFilename !== undefined
      ? { label: compilePattern('labelFromFilename', opts.labelFromFilename, policy.patternExample) }
      : {}),
    ...(opts.groupFromFilename !== undefined
      ? { group: compilePattern('groupFromFilename', opts.groupFromFilename, policy.patternExample) }
      : {}),
  };
}

/** The first capture of `re` in the file's base name, if it matches and captured something. */
function capture(re: RegExp, file: string): string | undefined {
  const v = re.exec(basename(file))?.[1];
  return v === undefined || v === '' ? undefined : v;
}

/** Sets `key` of each entry whose file name `re` captures a value for, noting how many it set. */
function setFromFilename(entries: Entry[], re: RegExp, key: 'label' | 'group', notes: string[]): Entry[] {
  let matched = 0;
  const out = entries.map((e) => {
    const value = capture(re, e.file);
    if (value === undefined) return e;
    matched++;
    return { ...e, [key]: value };
  });
  notes.push(`file name pattern ${String(re)} set the ${key} of ${matched} of ${out.length} files`);
  return out;
}

/**
 * Relabels and groups entries whose file names match the patterns, with a note for each pattern. Returns
 * the entries and what to append to the label source.
 */
export function applyFilenamePatterns(
  entries: Entry[],
  patterns: FilenamePatterns,
  notes: string[],
): { entries: Entry[]; labelSourceSuffix: string } {
  let out = entries;
  if (patterns.label) out = setFromFilename(out, patterns.label, 'label', notes);
  if (patterns.group) out = setFromFilename(out, patterns.group, 'group', notes);
  const labelSourceSuffix = patterns.label ? ` + file name pattern ${String(patterns.label)}` : '';
  return { entries: out, labelSourceSuffix };
}

/** Class names (sorted, see `classIndex`) and sample records for entries; notes the group count if any. */
export function toSamples(
  root: string,
  entries: readonly Entry[],
  notes: string[],
): { classNames: string[]; samples: SampleRecord[] } {
  const { classNames, indexOf } = classIndex(entries.map((e) => e.label));
  const samples: SampleRecord[] = entries.map((e) => ({
    id: toId(root, e.file),
    label: indexOf.get(e.label)!,
    ...(e.split ? { split: e.split } : {}),
    ...(e.group !== undefined ? { group: e.group } : {}),
  }));
  const groups = new Set(samples.map((s) => s.group).filter((g) => g !== undefined));
  if (groups.size > 0) notes.push(`${plural(groups.size, 'group')} over ${samples.length} samples`);
  return { classNames, samples };
}
