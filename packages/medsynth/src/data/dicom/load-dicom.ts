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
 * `labelFromFilename` / `groupFromFilename` work as in the image-folder loader. The listing is shared with it
 * (`../files.ts`); `DICOM_FILES` says what differs.
 *
 * Listing never decodes pixels. To report transfer syntaxes and MONOCHROME1 inversion early, the headers of
 * up to 16 files (evenly spread over the listing) are parsed from their first 256 KiB; the notes say how many
 * were sampled. `read(i)` decodes file i with `dicomWindow` / `dicomBitDepth` (see `decodeDicom`).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { DatasetError, UnsupportedFormatError } from '../../runtime/errors.js';
import { throwIfAborted } from '../../runtime/progress.js';
import {
  applyFilenamePatterns,
  type FilePolicy,
  filenamePatterns,
  listEntries,
  plural,
  readHead,
  toSamples,
} from '../files.js';
import type { LoaderOptions, RawImage, SourceListing } from '../types.js';
import { checkDicomWindow, type DicomHeader, decodeDicom, isDicomFile, readDicomHeader } from './decode.js';

/** Extensions (lower case) always taken as DICOM. */
const DICOM_EXTENSIONS = new Set(['.dcm', '.dicom', '.dic', '.ima']);
/** Class name used when there are no labels. */
export const UNLABELLED = 'unlabelled';
const HEADER_SAMPLE = 16;
const HEADER_BYTES = 256 * 1024;
const SIGNATURE_BYTES = 132;

/** 'yes' by extension, 'maybe' when the signature decides, 'no' otherwise. */
function candidate(name: string): 'yes' | 'maybe' | 'no' {
  if (name.toUpperCase() === 'DICOMDIR') return 'no';
  const ext = extname(name).toLowerCase();
  if (DICOM_EXTENSIONS.has(ext)) return 'yes';
  if (ext === '' || /^\.\d+$/.test(ext)) return 'maybe';
  return 'no';
}

/**
 * Whether the loader takes `file` (base name `name`) as DICOM: `*.dcm`, `*.dicom`, `*.dic`, `*.ima`, or a
 * file with no extension or a numeric one whose first bytes carry a DICOM signature; never `DICOMDIR`.
 */
export async function isDicom(file: string, name: string = basename(file)): Promise<boolean> {
  const c = candidate(name);
  if (c !== 'maybe') return c === 'yes';
  try {
    return isDicomFile(await readHead(file, SIGNATURE_BYTES));
  } catch {
    return false;
  }
}

const DICOM_FILES: FilePolicy = {
  classify: async (file, name) => ((await isDicom(file, name)) ? 'take' : 'ignore'),
  noun: 'DICOM file',
  emptyClass: { missing: 'DICOM files' },
  unlisted: 'skipped',
  patternExample: '^(\\w+)_',
  flatLabel: UNLABELLED,
  noFiles: () => ({
    message: 'no DICOM files found in the folder',
    expected: '*.dcm files (or extension-less DICOM files), in class folders or directly in the folder',
    found: 'none',
  }),
};

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

async function readDicomBytes(file: string): Promise<Uint8Array> {
  try {
    const bytes = await readFile(file);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (cause) {
    throw new DatasetError('cannot read the DICOM file', { file, cause });
  }
}

async function decodeFile(file: string, opts: LoaderOptions): Promise<RawImage> {
  const { image } = await decodeDicom(await readDicomBytes(file), file, {
    window: opts.dicomWindow,
    bitDepth: opts.dicomBitDepth,
  });
  return image;
}

async function loadSingle(file: string, opts: LoaderOptions): Promise<SourceListing> {
  const bytes = await readDicomBytes(file);
  const h = readDicomHeader(bytes, file);
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
  const patterns = filenamePatterns(opts, DICOM_FILES);
  const st = await stat(location).catch(() => undefined);
  if (!st) throw new DatasetError('DICOM file or folder not found', { file: location });
  throwIfAborted(opts.signal);
  if (st.isFile()) return loadSingle(location, opts);
  if (!st.isDirectory()) throw new DatasetError('not a file or folder', { file: location });

  const notes: string[] = [];
  const listed = await listEntries(location, opts, DICOM_FILES, notes);
  const { entries, labelSourceSuffix } = applyFilenamePatterns(listed.entries, patterns, notes);
  const files = entries.map((e) => e.file);
  await headerNotes(files, notes, opts.signal);
  if ((opts.dicomWindow ?? 'auto') === 'auto' && files.length > 1) {
    notes.push(
      'window auto: each file uses its own Window Center/Width (else its min–max), so intensities may not be comparable across files; pass an explicit center,width (e.g. 40,400 for CT soft tissue) for a fixed mapping',
    );
  }
  const { classNames, samples } = toSamples(location, entries, notes);
  const labelSource = listed.labelSource + labelSourceSuffix;

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
