/**
 * Listing image files on disk, shared by the image-folder and DICOM loaders: folder walking (hidden entries
 * skipped, sorted), the three folder layouts (a labels CSV, `<split>/<class>/`, `<class>/`), file-name
 * patterns for labels and groups, and the step from listed files to `SampleRecord`s.
 *
 * What a loader reads, and where the two loaders differ (a flat folder, the words of notes and errors), is
 * its `FilePolicy`.
 */
import type { Dirent } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
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

/** True when `path` is `root` or lies below it (both absolute and normalised; no file system access). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

export interface DirListing {
  readonly dirs: string[];
  readonly files: string[];
}

export interface WalkOptions {
  /** Follow symbolic links whose target lies outside the dataset root (default: not followed, noted). */
  readonly allowOutsideRoot?: boolean | undefined;
}

/** Up to `max` names, then "and N more". */
export function listSome(names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/**
 * One listing's walk of a dataset folder, safe against what shared folders contain:
 * - **Loops.** Every folder entered is remembered by (device, inode); a folder reached again (a symbolic link
 *   to a parent, two links to one folder) is not walked a second time. The root counts as entered.
 * - **Escapes.** A symbolic link is followed only when its real target lies inside the real dataset root,
 *   unless `allowOutsideRoot`; links that are not followed are counted, never read.
 * - **Duplicates.** A file reached twice (through a link) is taken once, where the sorted walk meets it first.
 * What it passed over is reported by `notes()` (for the listing's notes and warning events).
 */
export class FolderWalk {
  readonly #root: string;
  readonly #realRoot: string;
  readonly #allowOutside: boolean;
  /** Real path of every folder path handed out by `listDir` (and of the root). */
  readonly #real = new Map<string, string>();
  readonly #enteredDirs = new Map<string, string>();
  readonly #files = new Map<string, string>();
  readonly #outside: string[] = [];
  readonly #broken: string[] = [];
  readonly #revisited: string[] = [];
  readonly #duplicates: string[] = [];

  private constructor(root: string, realRoot: string, allowOutside: boolean) {
    this.#root = root;
    this.#realRoot = realRoot;
    this.#allowOutside = allowOutside;
    this.#real.set(root, realRoot);
  }

  /** Starts a walk of `root` (an absolute, resolved path), the root itself counted as entered. */
  static async open(root: string, options: WalkOptions = {}): Promise<FolderWalk> {
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch (cause) {
      throw new DatasetError('cannot read the folder', { file: root, cause });
    }
    const walk = new FolderWalk(root, realRoot, options.allowOutsideRoot === true);
    await walk.enter(root);
    return walk;
  }

  /** A fresh walk of the same root with nothing entered but the root (for a look that is thrown away). */
  async fork(): Promise<FolderWalk> {
    const walk = new FolderWalk(this.#root, this.#realRoot, this.#allowOutside);
    await walk.enter(this.#root);
    return walk;
  }

  get root(): string {
    return this.#root;
  }

  /** Whether `path` (any path, real or not) lies inside the real root; does not open anything. */
  insideRealRoot(realPath: string): boolean {
    return isInside(this.#realRoot, realPath);
  }

  /** The real path of a path below the root (via `realpath`); undefined when it does not resolve. */
  async realPathOf(path: string): Promise<string | undefined> {
    return realpath(path).catch(() => undefined);
  }

  #rel(path: string): string {
    return toId(this.#root, path) || '.';
  }

  /**
   * Marks a folder entered; false when it was entered before (by this or another path), so the caller
   * does not walk it again.
   */
  async enter(dir: string): Promise<boolean> {
    let st;
    try {
      st = await stat(dir, { bigint: true });
    } catch (cause) {
      throw new DatasetError('cannot read the folder', { file: dir, cause });
    }
    const key = `${st.dev}:${st.ino}`;
    const first = this.#enteredDirs.get(key);
    if (first !== undefined) {
      this.#revisited.push(`${this.#rel(dir)} (= ${this.#rel(first)})`);
      return false;
    }
    this.#enteredDirs.set(key, dir);
    return true;
  }

  /**
   * One folder's visible sub-folders and files, sorted by name. Symbolic links are followed when their
   * target stays inside the root (or `allowOutsideRoot`); files already taken through another path are left
   * out (counted as duplicates).
   */
  async listDir(dir: string): Promise<DirListing> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (cause) {
      throw new DatasetError('cannot read the folder', { file: dir, cause });
    }
    const dirReal = this.#real.get(dir) ?? (await realpath(dir));
    const dirs: string[] = [];
    const files: string[] = [];
    for (const e of entries) {
      if (isHidden(e.name)) continue;
      const path = join(dir, e.name);
      let real = join(dirReal, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        // Where the link leads is settled before anything there is looked at.
        const target = await realpath(path).catch(() => undefined);
        if (target !== undefined && !this.#allowOutside && !isInside(this.#realRoot, target)) {
          this.#outside.push(`${this.#rel(path)} → ${target}`);
          continue;
        }
        const st = target === undefined ? undefined : await stat(target).catch(() => undefined);
        if (target === undefined || st === undefined) {
          this.#broken.push(this.#rel(path));
          continue;
        }
        real = target;
        isDir = st.isDirectory();
        isFile = st.isFile();
      }
      if (isDir) {
        this.#real.set(path, real);
        dirs.push(e.name);
      } else if (isFile) {
        const first = this.#files.get(real);
        if (first !== undefined && first !== path) {
          this.#duplicates.push(`${this.#rel(path)} (= ${this.#rel(first)})`);
          continue;
        }
        this.#files.set(real, path);
        files.push(e.name);
      }
    }
    dirs.sort(byName);
    files.sort(byName);
    return { dirs, files };
  }

  /** What the walk passed over, one sentence each (empty when nothing). */
  notes(): string[] {
    const out: string[] = [];
    if (this.#outside.length > 0) {
      out.push(
        `${plural(this.#outside.length, 'symbolic link')} leading outside the dataset folder not followed (${listSome(this.#outside, 3)}); pass --allow-outside-root to follow them`,
      );
    }
    if (this.#revisited.length > 0) {
      out.push(
        `${plural(this.#revisited.length, 'folder')} reached again through symbolic links (a loop or a second link) not walked twice: ${listSome(this.#revisited, 3)}`,
      );
    }
    if (this.#duplicates.length > 0) {
      out.push(
        `${plural(this.#duplicates.length, 'file')} reached twice through symbolic links counted once: ${listSome(this.#duplicates, 3)}`,
      );
    }
    if (this.#broken.length > 0) {
      out.push(
        `${plural(this.#broken.length, 'broken symbolic link')} ignored: ${listSome(this.#broken, 3)}`,
      );
    }
    return out;
  }
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
  /** The folder walked was entered before through another path (a link), so nothing was taken again. */
  readonly reentered?: boolean;
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

/**
 * Every file below `dir` (recursively) that `classify` takes, in deterministic order; `dir` itself is
 * entered unless it is the root (already entered), and folders entered before are not walked again.
 */
async function walkFiles(
  walk: FolderWalk,
  dir: string,
  classify: FileClassifier,
  signal: AbortSignal | undefined,
): Promise<Found> {
  const files: string[] = [];
  const skipped = new Map<string, number>();
  const visit = async (d: string): Promise<void> => {
    throwIfAborted(signal);
    const { dirs, files: names } = await walk.listDir(d);
    const here = await classifyFiles(d, names, classify);
    files.push(...here.files);
    mergeCounts(skipped, here.skipped);
    for (const sub of dirs) {
      const path = join(d, sub);
      if (await walk.enter(path)) await visit(path);
    }
  };
  if (dir !== walk.root && !(await walk.enter(dir))) return { files, skipped, reentered: true };
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
  rootWalk: FolderWalk,
  policy: FilePolicy,
  signal: AbortSignal | undefined,
  notes: string[],
  skipped: Map<string, number>,
): Promise<{ entries: Entry[]; walk: FolderWalk }> {
  const root = rootWalk.root;
  let walk = rootWalk;
  const top = await walk.listDir(root);
  const direct = await classifyFiles(root, top.files, policy.classify);
  const splits = topLevelSplits(root, top.dirs);
  // With a flat policy every top-level folder is walked first (in a walk of its own); without split folders
  // those walks are reused as the class folders' walks.
  const walked = new Map<string, Found>();
  if (policy.flatLabel !== undefined) {
    const label = policy.flatLabel;
    const pre = await walk.fork();
    for (const d of top.dirs) walked.set(d, await walkFiles(pre, join(root, d), policy.classify, signal));
    if ([...walked.values()].every((w) => w.files.length === 0)) {
      if (direct.files.length === 0) noFiles(root, policy, 0);
      mergeCounts(skipped, direct.skipped);
      notes.push(`layout: flat folder, no labels (one class "${label}")`);
      return { entries: direct.files.map((file) => ({ file, label })), walk };
    }
    if (!splits) walk = pre;
  }
  const parents: { dir: string; split?: SplitName }[] = splits
    ? [...splits]
        .sort(([, a], [, b]) => SPLIT_NAMES.indexOf(a) - SPLIT_NAMES.indexOf(b))
        .map(([d, split]) => ({ dir: join(root, d), split }))
    : [{ dir: root }];
  const entries: Entry[] = [];
  let stray = direct.files.length;
  for (const parent of parents) {
    if (splits && !(await walk.enter(parent.dir))) continue;
    const { dirs, files } = splits ? await walk.listDir(parent.dir) : top;
    if (splits) stray += (await classifyFiles(parent.dir, files, policy.classify)).files.length;
    if (splits && dirs.length === 0) {
      notes.push(`split folder ${basename(parent.dir)}/ has no class folders; ignored`);
      continue;
    }
    for (const cls of dirs) {
      const classDir = join(parent.dir, cls);
      const found =
        (splits ? undefined : walked.get(cls)) ?? (await walkFiles(walk, classDir, policy.classify, signal));
      mergeCounts(skipped, found.skipped);
      if (found.reentered === true) {
        throw new DatasetError(
          `class folder ${cls} is a folder already listed under another name (a symbolic link); an image can belong to one class only`,
          {
            file: classDir,
            expected: 'one folder per class',
            found: 'a second path to a folder listed before',
          },
        );
      }
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
  return { entries, walk };
}

/**
 * Where a labels-CSV path points, checked before the file is opened or even looked at: inside the dataset
 * root lexically, then (through any symbolic links on the way) really. A path that leads outside is refused
 * unless `allowOutsideRoot`; the check does not say whether the outside file exists.
 */
async function checkCsvPath(
  walk: FolderWalk,
  file: string,
  csv: LabelsCsv,
  row: { line: number; path: string },
  allowOutsideRoot: boolean,
): Promise<void> {
  const where = { file: csv.file, field: `line ${row.line}, column ${csv.columns.path}`, found: row.path };
  const refuse = (how: string): never => {
    throw new DatasetError(
      `the path in the labels CSV leads outside the dataset folder${how}; pass --allow-outside-root to allow it`,
      { ...where, expected: `a path inside ${walk.root}` },
    );
  };
  if (allowOutsideRoot) return;
  if (!isInside(walk.root, file)) refuse('');
  // The real path of the deepest part of the path that exists: a link on the way may lead out.
  let probe = file;
  let rest = '';
  for (;;) {
    const real = await walk.realPathOf(probe);
    if (real !== undefined) {
      if (!walk.insideRealRoot(join(real, rest))) refuse(' through a symbolic link');
      return;
    }
    const parent = dirname(probe);
    if (parent === probe) return;
    rest = join(basename(probe), rest);
    probe = parent;
  }
}

/** Layout 1: a labels CSV. */
async function listFromCsv(
  walk: FolderWalk,
  csv: LabelsCsv,
  policy: FilePolicy,
  opts: LoaderOptions,
  notes: string[],
  skipped: Map<string, number>,
): Promise<Entry[]> {
  const root = walk.root;
  const found = await walkFiles(walk, root, policy.classify, opts.signal);
  mergeCounts(skipped, found.skipped);
  const present = new Set(found.files);
  const top = await walk.listDir(root);
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
      await checkCsvPath(walk, file, csv, row, opts.allowOutsideRoot === true);
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
 * `<root>/labels.csv`) when there is one, else from class folders. Notes about the listing go to `notes`;
 * what the walk passed over (links leading out, loops, files reached twice) also goes out as warning events.
 */
export async function listEntries(
  root: string,
  opts: LoaderOptions,
  policy: FilePolicy,
  notes: string[],
): Promise<Listed> {
  const skipped = new Map<string, number>();
  const rootWalk = await FolderWalk.open(root, { allowOutsideRoot: opts.allowOutsideRoot });
  const csvFile = await findLabelsCsv(root, opts.labelsCsv);
  let listed: Listed;
  let walk = rootWalk;
  if (csvFile !== undefined) {
    const csv = await readLabelsCsv(csvFile, {
      pathColumn: opts.pathColumn,
      labelColumn: opts.labelColumn,
      splitColumn: opts.splitColumn,
      groupColumn: opts.groupColumn,
    });
    const entries = await listFromCsv(rootWalk, csv, policy, opts, notes, skipped);
    listed = { entries, labelSource: `${basename(csv.file)} column "${csv.columns.label}"`, skipped };
  } else {
    const r = await listClassFolders(rootWalk, policy, opts.signal, notes, skipped);
    walk = r.walk;
    const flat = policy.flatLabel !== undefined && r.entries.every((e) => e.label === policy.flatLabel);
    listed = { entries: r.entries, labelSource: flat ? 'none (flat folder)' : 'class folders', skipped };
  }
  for (const message of walk.notes()) {
    notes.push(message);
    opts.onProgress?.({ type: 'warning', message: `${root}: ${message}` });
  }
  return listed;
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
