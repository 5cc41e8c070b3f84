/**
 * Opening a dataset from a source string: `medmnist:<name>[@size]`, an `.npz` file, a DICOM file, or a
 * folder (of PNG/JPEG images or of DICOM files). The format is chosen by looking at the source, never by
 * a flag the user must remember; anything unrecognised is an `UnsupportedFormatError` naming it.
 */
import { stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import {
  type DataOptions,
  type DataOptionsInput,
  DataOptionsSchema,
  resolveOptions,
} from '../config/data-options.js';
import { DatasetError, UnsupportedFormatError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { Dataset } from './dataset.js';
import { isDicomFile } from './dicom/decode.js';
import { isDicom, loadDicom } from './dicom/load-dicom.js';
import { FolderWalk, readHead, type WalkOptions } from './files.js';
import { FOLDER_IMAGE_EXTENSIONS, loadFolder } from './folder/load-folder.js';
import { loadNpz } from './npz/load-npz.js';
import { loadMedmnist } from './npz/medmnist.js';
import type { LoaderOptions, SourceFormat, SourceListing } from './types.js';

export type DetectedFormat = SourceFormat | 'medmnist';

/** Image extensions: a single such file is not a dataset (decodable or not, it gets that message). */
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp']);
/** Image extensions the folder loader reads (with this build of sharp). */
const FOLDER_IMAGES = new Set(FOLDER_IMAGE_EXTENSIONS);

/**
 * Looks (breadth-first, bounded) for the first file one of the folder loaders reads: an image the image-folder
 * loader decodes, or a file the DICOM loader takes (`isDicom`). Hidden entries are skipped, and symbolic links
 * followed, as the loaders do (never out of the folder unless `allowOutsideRoot`, never round a loop).
 */
async function detectFolder(root: string, options: WalkOptions): Promise<SourceFormat> {
  const walk = await FolderWalk.open(root, options);
  const queue = [root];
  let seen = 0;
  while (queue.length > 0 && seen < 2000) {
    const dir = queue.shift()!;
    const { dirs, files } = await walk.listDir(dir);
    for (const name of files) {
      seen++;
      if (FOLDER_IMAGES.has(extname(name).toLowerCase())) return 'folder';
      if (await isDicom(join(dir, name), name)) return 'dicom';
    }
    for (const d of dirs) if (await walk.enter(join(dir, d))) queue.push(join(dir, d));
  }
  throw new DatasetError('no PNG/JPEG or DICOM files found in the folder', { file: root });
}

/** Which loader a source string needs. */
export async function detectFormat(source: string, options: WalkOptions = {}): Promise<DetectedFormat> {
  if (source.startsWith('medmnist:')) return 'medmnist';
  const path = resolve(source);
  const st = await stat(path).catch(() => undefined);
  if (!st)
    throw new DatasetError('source not found (a file, a folder, or medmnist:<name>[@size])', { file: path });
  if (st.isDirectory()) return detectFolder(path, options);
  const ext = extname(path).toLowerCase();
  if (ext === '.npz') return 'npz';
  if (ext === '.dcm' || ext === '.dicom' || isDicomFile(await readHead(path, 1024))) return 'dicom';
  if (IMAGE_EXT.has(ext)) {
    throw new UnsupportedFormatError('a single image is not a dataset; point at its folder', { file: path });
  }
  throw new UnsupportedFormatError('unknown source format', {
    file: path,
    expected: '.npz, .dcm, a folder of images/DICOM, or medmnist:<name>[@size]',
    found: ext || 'no extension',
  });
}

function loaderOptions(o: DataOptions, control: RunControl): LoaderOptions {
  return {
    labelsCsv: o.labelsCsv,
    pathColumn: o.pathColumn,
    labelColumn: o.labelColumn,
    splitColumn: o.splitColumn,
    groupColumn: o.groupColumn,
    labelFromFilename: o.labelFromFilename,
    groupFromFilename: o.groupFromFilename,
    dicomWindow: o.dicomWindow,
    dicomBitDepth: o.dicomBitDepth,
    cacheDir: o.cacheDir,
    medmnistBaseUrl: o.medmnistBaseUrl,
    allowOutsideRoot: o.allowOutsideRoot,
    onProgress: control.onProgress,
    signal: control.signal,
  };
}

/** Lists a source with the loader its format needs (no split policy). */
export async function listSource(options: DataOptions, control: RunControl = {}): Promise<SourceListing> {
  const format = await detectFormat(options.source, { allowOutsideRoot: options.allowOutsideRoot });
  const lo = loaderOptions(options, control);
  switch (format) {
    case 'medmnist':
      return loadMedmnist(options.source, lo);
    case 'npz':
      return loadNpz(resolve(options.source), lo);
    case 'dicom':
      return loadDicom(resolve(options.source), lo);
    case 'folder':
      return loadFolder(resolve(options.source), lo);
  }
}

/**
 * Opens a dataset: validates the options (a `ConfigError` names a bad field), lists the source, and applies
 * the split policy (given splits kept; missing ones made stratified, group-aware and seeded).
 */
export async function openDataset(
  input: DataOptionsInput | string,
  control: RunControl = {},
): Promise<Dataset> {
  const options = resolveOptions(
    DataOptionsSchema,
    typeof input === 'string' ? { source: input } : input,
    'data',
  );
  const listing = withSingletonNote(await listSource(options, control), control);
  return new Dataset(listing, { seed: options.seed, ratios: options.splitRatios });
}

/**
 * Classes with a single image (often a typo in a label file or a misplaced file) get a note and a warning
 * event: one image cannot be in both the train and the test split, nor be learned or evaluated.
 */
function withSingletonNote(listing: SourceListing, control: RunControl): SourceListing {
  if (listing.classNames.length < 2) return listing;
  const counts = new Array<number>(listing.classNames.length).fill(0);
  for (const s of listing.samples) if (s.label >= 0 && s.label < counts.length) counts[s.label]!++;
  const single = listing.classNames.filter((_, c) => counts[c] === 1);
  if (single.length === 0) return listing;
  const ids = single.map((name) => {
    const c = listing.classNames.indexOf(name);
    return `"${name}" (${listing.samples.find((s) => s.label === c)!.id})`;
  });
  const message = `${single.length === 1 ? 'a class' : `${single.length} classes`} with a single image (a typo in a label?): ${ids.join(', ')}; such a class cannot be in both train and test`;
  control.onProgress?.({ type: 'warning', message: `${listing.location}: ${message}` });
  return { ...listing, notes: [...listing.notes, message] };
}
