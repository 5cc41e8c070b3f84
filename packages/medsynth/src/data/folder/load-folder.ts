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
 * `groupFromFilename` takes the sample's group (e.g. the patient id) from the file name. The listing is shared
 * with the DICOM loader (`../files.ts`); `IMAGE_FILES` says what differs.
 *
 * Pixels are decoded lazily with sharp: `read` gives the native size, 1 channel for grayscale sources and 3
 * for colour (alpha flattened onto black), Uint16Array data for 16-bit sources. `readTransformed` decodes
 * and resizes in one sharp pipeline (JPEG shrink-on-load), then applies the shared channel and bit-depth
 * conversions, so it matches `transformImage(await read(i), t)` up to resampling differences.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import sharp from 'sharp';
import { DatasetError } from '../../runtime/errors.js';
import { throwIfAborted } from '../../runtime/progress.js';
import {
  applyFilenamePatterns,
  type FilePolicy,
  type FileVerdict,
  filenamePatterns,
  listEntries,
  plural,
  toSamples,
} from '../files.js';
import {
  convertBitDepth,
  convertChannels,
  type ResolvedTransform,
  sharpResizeOptions,
} from '../image/transform.js';
import type { LoaderOptions, RawImage, SourceListing } from '../types.js';

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

/** Decodable images are read; images this sharp build cannot decode are counted by extension. */
function imageVerdict(_file: string, name: string): FileVerdict {
  const ext = extname(name).toLowerCase();
  if (DECODABLE.has(ext)) return 'take';
  if (UNDECODABLE.has(ext)) return { skip: ext };
  return 'ignore';
}

const IMAGE_FILES: FilePolicy = {
  classify: imageVerdict,
  noun: 'image file',
  emptyClass: { missing: 'images', expected: `image files (${FOLDER_IMAGE_EXTENSIONS.join(' ')})` },
  unlisted: 'ignored',
  patternExample: '_(bacteria|virus)_',
  noFiles: (stray) => ({
    message: 'no class folders with images found',
    expected: '<root>/<class>/*.png|jpg, <root>/<split>/<class>/*.png|jpg, or a labels.csv',
    found: stray > 0 ? `${plural(stray, 'image')} directly in the folder` : 'no images',
  }),
};

/** Lists an image folder (see the module comment for layouts, labels and groups). */
export async function loadFolder(root: string, opts: LoaderOptions = {}): Promise<SourceListing> {
  const location = resolve(root);
  const patterns = filenamePatterns(opts, IMAGE_FILES);
  const st = await stat(location).catch(() => undefined);
  if (!st) throw new DatasetError('folder not found', { file: location });
  if (!st.isDirectory()) throw new DatasetError('not a folder', { file: location });
  throwIfAborted(opts.signal);

  const notes: string[] = [];
  const listed = await listEntries(location, opts, IMAGE_FILES, notes);
  for (const [ext, n] of listed.skipped) {
    notes.push(`${plural(n, `${ext} file`)} ignored: this build of sharp cannot decode ${ext}`);
  }
  const { entries, labelSourceSuffix } = applyFilenamePatterns(listed.entries, patterns, notes);
  const { classNames, samples } = toSamples(location, entries, notes);

  const files = entries.map((e) => e.file);
  const fileAt = (index: number): string => {
    const file = files[index];
    if (file === undefined) throw new RangeError(`sample index ${index} out of range 0..${files.length - 1}`);
    return file;
  };
  return {
    format: 'folder',
    location,
    classNames,
    labelSource: listed.labelSource + labelSourceSuffix,
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
