/**
 * The image-folder loader: PNG and JPEG (plus TIFF and WebP, and BMP where the installed sharp decodes it),
 * grayscale or colour, 8 or 16 bits, images of mixed sizes.
 *
 * Layouts, tried in this order:
 * 1. a labels CSV (`labelsCsv`, else `<root>/labels.csv` when present) mapping file → label, with optional
 *    split and group columns. The CSV is the source of truth: a row naming a missing file is an error; image
 *    files not in the CSV are ignored (and counted in a note). Paths are relative to the CSV's folder.
 *    A split column wins over split folder names (which are used only for rows without a split value).
 * 2. `<root>/<split>/<class>/…` where every top-level folder is a split name (train, val, test and the
 *    spellings `normalizeSplitName` accepts, case-insensitively).
 * 3. `<root>/<class>/…` (no split given).
 * Images anywhere below a class folder belong to that class. Hidden files and folders are skipped and
 * non-image files (checksums, CSVs) are ignored silently.
 *
 * `labelFromFilename` (a regex with one capture group) relabels files whose base name matches;
 * `groupFromFilename` takes the sample's group (e.g. the patient id) from the file name.
 *
 * Pixels are decoded lazily with sharp: `read` gives the native size, 1 channel for grayscale sources and 3
 * for colour (alpha flattened onto black), Uint16Array data for 16-bit sources. `readTransformed` decodes
 * and resizes in one sharp pipeline (JPEG shrink-on-load), then applies the shared channel and bit-depth
 * conversions, so it matches `transformImage(await read(i), t)` up to resampling differences.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { ConfigError, DatasetError } from '../../runtime/errors.js';
import { throwIfAborted } from '../../runtime/progress.js';
import {
  convertBitDepth,
  convertChannels,
  type ResolvedTransform,
  sharpResizeOptions,
} from '../image/transform.js';
import { classIndex, type LabelsCsv, normalizeSplitName, readLabelsCsv } from '../labels-csv.js';
import {
  type LoaderOptions,
  type RawImage,
  type SampleRecord,
  type SourceListing,
  SPLIT_NAMES,
  type SplitName,
} from '../types.js';

/** File extensions (lower case) mapped to the sharp input format that decodes them. */
const EXTENSION_FORMATS: Readonly<Record<string, string>> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.webp': 'webp',
  '.bmp': 'magick',
};

function sharpDecodes(format: string): boolean {
  const f = (sharp.format as unknown as Record<string, { input?: { buffer?: boolean } } | undefined>)[format];
  return f?.input?.buffer === true;
}

/** Extensions this build of sharp decodes. */
const DECODABLE = new Set(
  Object.keys(EXTENSION_FORMATS).filter((ext) => sharpDecodes(EXTENSION_FORMATS[ext]!)),
);
/** Image extensions we recognise but this sharp build cannot decode (e.g. `.bmp` without libmagick). */
const UNDECODABLE = new Set(Object.keys(EXTENSION_FORMATS).filter((ext) => !DECODABLE.has(ext)));

/** Image file extensions the folder loader reads (lower case, with the dot). */
export const FOLDER_IMAGE_EXTENSIONS: readonly string[] = [...DECODABLE];

/** `failOn: 'warning'` makes truncated/corrupt JPEGs an error instead of a silently gray-filled image. */
const SHARP_INPUT = { failOn: 'warning', autoOrient: true } as const;

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function isHidden(name: string): boolean {
  return name.startsWith('.') || name === '__MACOSX' || name === 'Thumbs.db';
}

type Kind = 'image' | 'undecodable' | 'other';

function kindOf(name: string): Kind {
  const ext = extname(name).toLowerCase();
  if (DECODABLE.has(ext)) return 'image';
  if (UNDECODABLE.has(ext)) return 'undecodable';
  return 'other';
}

interface DirListing {
  readonly dirs: string[];
  readonly files: string[];
}

/** One folder's visible sub-folders and files, sorted by name (symbolic links followed). */
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

interface Walked {
  /** Absolute paths of decodable image files, in sorted depth-first order. */
  readonly images: string[];
  /** Count of image files this sharp build cannot decode, by extension. */
  readonly undecodable: Map<string, number>;
}

/** Every image file below `dir` (recursively), deterministic order. */
async function walkImages(dir: string, signal: AbortSignal | undefined): Promise<Walked> {
  const images: string[] = [];
  const undecodable = new Map<string, number>();
  const visit = async (d: string): Promise<void> => {
    throwIfAborted(signal);
    const { dirs, files } = await listDir(d);
    for (const f of files) {
      const k = kindOf(f);
      if (k === 'image') images.push(join(d, f));
      else if (k === 'undecodable') {
        const ext = extname(f).toLowerCase();
        undecodable.set(ext, (undecodable.get(ext) ?? 0) + 1);
      }
    }
    for (const sub of dirs) await visit(join(d, sub));
  };
  await visit(dir);
  return { images, undecodable };
}

function mergeCounts(into: Map<string, number>, from: Map<string, number>): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

/** Parses a file-name regex option: `pattern` or `/pattern/flags`; it must have a capture group. */
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
  const groups = new RegExp(`${source}|`, flags).exec('')!.length - 1;
  if (groups < 1) {
    throw new ConfigError('the regular expression needs a capture group (…) for the value', {
      field: option,
      expected: 'one capture group, e.g. _(bacteria|virus)_',
      found: text,
    });
  }
  return re;
}

/** The first capture of `re` in the file's base name, if it matches and captured something. */
function capture(re: RegExp | undefined, file: string): string | undefined {
  if (!re) return undefined;
  const m = re.exec(basename(file));
  const v = m?.[1];
  return v === undefined || v === '' ? undefined : v;
}

function toId(root: string, file: string): string {
  const rel = relative(root, file);
  return sep === '/' ? rel : rel.split(sep).join('/');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
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

/** Split name for each top-level folder, or undefined when the top level is not all split folders. */
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

/** Layouts 2 and 3: class folders, optionally below split folders. */
async function listClassFolders(
  root: string,
  signal: AbortSignal | undefined,
  notes: string[],
  undecodable: Map<string, number>,
): Promise<Entry[]> {
  const top = await listDir(root);
  const splits = topLevelSplits(root, top.dirs);
  const parents: { dir: string; split?: SplitName }[] = splits
    ? [...splits]
        .sort(([, a], [, b]) => SPLIT_NAMES.indexOf(a) - SPLIT_NAMES.indexOf(b))
        .map(([d, split]) => ({ dir: join(root, d), split }))
    : [{ dir: root }];
  const entries: Entry[] = [];
  let stray = top.files.filter((f) => kindOf(f) === 'image').length;
  for (const parent of parents) {
    const { dirs, files } = splits ? await listDir(parent.dir) : top;
    if (splits) stray += files.filter((f) => kindOf(f) === 'image').length;
    if (splits && dirs.length === 0) {
      notes.push(`split folder ${basename(parent.dir)}/ has no class folders; ignored`);
      continue;
    }
    for (const cls of dirs) {
      const classDir = join(parent.dir, cls);
      const walked = await walkImages(classDir, signal);
      mergeCounts(undecodable, walked.undecodable);
      if (walked.images.length === 0) {
        throw new DatasetError(`class ${cls} has no images`, {
          file: classDir,
          expected: `image files (${FOLDER_IMAGE_EXTENSIONS.join(' ')})`,
          found: 'none',
        });
      }
      for (const file of walked.images) {
        entries.push({ file, label: cls, ...(parent.split ? { split: parent.split } : {}) });
      }
    }
  }
  if (entries.length === 0) {
    throw new DatasetError('no class folders with images found', {
      file: root,
      expected: '<root>/<class>/*.png|jpg, <root>/<split>/<class>/*.png|jpg, or a labels.csv',
      found: stray > 0 ? `${plural(stray, 'image')} directly in the folder` : 'no images',
    });
  }
  if (stray > 0) notes.push(`${plural(stray, 'image file')} outside class folders ignored`);
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
  signal: AbortSignal | undefined,
  notes: string[],
  undecodable: Map<string, number>,
): Promise<Entry[]> {
  const walked = await walkImages(root, signal);
  mergeCounts(undecodable, walked.undecodable);
  const present = new Set(walked.images);
  const top = await listDir(root);
  const splits = (() => {
    try {
      return topLevelSplits(root, top.dirs);
    } catch {
      return undefined; // mixed top level: the CSV decides, folder names give no split
    }
  })();
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
  const ignored = walked.images.filter((f) => !used.has(f)).length;
  if (ignored > 0) notes.push(`${plural(ignored, 'image file')} under the folder not in ${csvName}; ignored`);
  return entries;
}

/** Lists an image folder (see the module comment for layouts, labels and groups). */
export async function loadFolder(root: string, opts: LoaderOptions = {}): Promise<SourceListing> {
  const location = resolve(root);
  const labelRe =
    opts.labelFromFilename !== undefined
      ? compilePattern('labelFromFilename', opts.labelFromFilename)
      : undefined;
  const groupRe =
    opts.groupFromFilename !== undefined
      ? compilePattern('groupFromFilename', opts.groupFromFilename)
      : undefined;
  const st = await stat(location).catch(() => undefined);
  if (!st) throw new DatasetError('folder not found', { file: location });
  if (!st.isDirectory()) throw new DatasetError('not a folder', { file: location });
  throwIfAborted(opts.signal);

  let csvFile: string | undefined;
  if (opts.labelsCsv !== undefined && opts.labelsCsv !== '') {
    csvFile = resolve(opts.labelsCsv);
    // A relative path that is not there relative to the working directory may be meant relative to the root.
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
  const undecodable = new Map<string, number>();
  let labelSource: string;
  let entries: Entry[];
  if (csvFile !== undefined) {
    const csv = await readLabelsCsv(csvFile, {
      pathColumn: opts.pathColumn,
      labelColumn: opts.labelColumn,
      splitColumn: opts.splitColumn,
      groupColumn: opts.groupColumn,
    });
    entries = await listFromCsv(location, csv, opts.signal, notes, undecodable);
    labelSource = `${basename(csv.file)} column "${csv.columns.label}"`;
  } else {
    entries = await listClassFolders(location, opts.signal, notes, undecodable);
    labelSource = 'class folders';
  }
  for (const [ext, n] of undecodable) {
    notes.push(`${plural(n, `${ext} file`)} ignored: this build of sharp cannot decode ${ext}`);
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

  const { classNames, indexOf } = classIndex(entries.map((e) => e.label));
  const files = entries.map((e) => e.file);
  const samples: SampleRecord[] = entries.map((e) => ({
    id: toId(location, e.file),
    label: indexOf.get(e.label)!,
    ...(e.split ? { split: e.split } : {}),
    ...(e.group !== undefined ? { group: e.group } : {}),
  }));
  const groups = new Set(samples.map((s) => s.group).filter((g) => g !== undefined));
  if (groups.size > 0) notes.push(`${plural(groups.size, 'group')} over ${samples.length} samples`);

  const fileAt = (index: number): string => {
    const file = files[index];
    if (file === undefined) throw new RangeError(`sample index ${index} out of range 0..${files.length - 1}`);
    return file;
  };
  return {
    format: 'folder',
    location,
    classNames,
    labelSource,
    samples,
    notes,
    read: async (index) => decodeImage(fileAt(index), undefined),
    readTransformed: async (index, t) => decodeImage(fileAt(index), t),
  };
}

/**
 * Decodes one image file. Without `t`: native size, 1 channel for grayscale sources and 3 for colour, alpha
 * flattened onto black, 16-bit sources as Uint16Array. With `t`: resized in the same sharp pipeline at the
 * source bit depth, then channel and bit-depth conversion as in `transformImage`.
 */
export async function decodeImage(file: string, t: ResolvedTransform | undefined): Promise<RawImage> {
  let input: Buffer;
  try {
    input = await readFile(file);
  } catch (cause) {
    throw new DatasetError('cannot read the image file', { file, cause });
  }
  if (input.length === 0) throw new DatasetError('the image file is empty', { file });
  let img: RawImage;
  try {
    const meta = await sharp(input, SHARP_INPUT).metadata();
    const colourBands = meta.channels - (meta.hasAlpha ? 1 : 0);
    const gray = colourBands === 1 || meta.space === 'b-w' || meta.space === 'grey16';
    const is16 = meta.depth === 'ushort' || meta.depth === 'short';
    const channels: 1 | 3 = gray ? 1 : 3;
    let pipeline = sharp(input, SHARP_INPUT);
    if (meta.hasAlpha) pipeline = pipeline.flatten({ background: { r: 0, g: 0, b: 0 } });
    if (t) {
      const srcW = meta.autoOrient?.width ?? meta.width;
      const srcH = meta.autoOrient?.height ?? meta.height;
      const width = t.width ?? srcW;
      const height = t.height ?? srcH;
      // fastShrinkOnLoad: false keeps JPEG shrink-on-load but leaves at least a 2× reduction to the antialiased
      // resize kernel: no moiré, and within ~0.5 gray levels of transformImage(read()) instead of ~1.
      if (width !== srcW || height !== srcH) {
        pipeline = pipeline.resize({ ...sharpResizeOptions(t, width, height), fastShrinkOnLoad: false });
      }
    }
    const { data, info } = await pipeline
      .toColourspace(gray ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb')
      .raw(is16 ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== channels) {
      throw new DatasetError(`decoded to ${info.channels} channels instead of ${channels}`, { file });
    }
    const pixels = is16
      ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    img = { width: info.width, height: info.height, channels, data: pixels };
  } catch (cause) {
    if (cause instanceof DatasetError) throw cause;
    const msg = (cause as Error).message?.trim().split('\n')[0] ?? String(cause);
    throw new DatasetError(`cannot decode the image: ${msg}`, { file, cause });
  }
  if (!t) return img;
  if (t.channels !== undefined) img = convertChannels(img, t.channels);
  return convertBitDepth(img, t.bitDepth);
}
