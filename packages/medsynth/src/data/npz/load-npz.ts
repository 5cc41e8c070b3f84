/**
 * Loader for MedMNIST-style `.npz` files: `train_images`/`train_labels`, `test_images`/`test_labels` and
 * optionally `val_images`/`val_labels`. Images are uint8 shaped (N,H,W) (gray; (N,H,W,1) also accepted) or
 * (N,H,W,3) (RGB); labels are integers shaped (N,1) (official) or (N,). Labels are read when the listing is
 * built; each split's images are inflated on the first `read` of that split and kept (the returned
 * `RawImage.data` is a view into that cache: treat it as read-only). The archive is closed between uses.
 */
import { basename, resolve } from 'node:path';
import { DatasetError } from '../../runtime/errors.js';
import { throwIfAborted } from '../../runtime/progress.js';
import {
  type LoaderOptions,
  type RawImage,
  type SampleRecord,
  type SourceListing,
  SPLIT_NAMES,
  type SplitName,
} from '../types.js';
import { isMedmnistFlag, type MedmnistFlag, medmnistInfo } from './medmnist-info.js';
import { type NpyArray, type NpyHeader, type NpzReader, withNpz } from './npz-reader.js';

/** Internal knobs for callers that know more than the file name tells (the MedMNIST downloader). */
export interface NpzLoadContext {
  /** Use this MedMNIST flag's class names (default: detected from the file name). */
  readonly medmnistFlag?: MedmnistFlag | undefined;
  /** Notes to put before the loader's own. */
  readonly notes?: readonly string[] | undefined;
}

interface SplitInfo {
  readonly split: SplitName;
  readonly imagesKey: string;
  readonly labelsKey: string;
  readonly labels: Int32Array;
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  /** Index of this split's first sample in `samples`. */
  readonly start: number;
}

export async function loadNpz(file: string, opts: LoaderOptions): Promise<SourceListing> {
  return loadNpzWith(file, opts, {});
}

export async function loadNpzWith(
  file: string,
  opts: LoaderOptions,
  context: NpzLoadContext,
): Promise<SourceListing> {
  throwIfAborted(opts.signal);
  const location = resolve(file);
  const flag = context.medmnistFlag ?? medmnistFlagFromFileName(basename(location));
  const notes: string[] = [...(context.notes ?? [])];
  const labelShapes = new Map<LabelShape, string[]>();
  const floatLabelKeys: string[] = [];

  const splits = await withNpz(location, async (npz) => {
    const present = checkKeys(npz);
    const out: SplitInfo[] = [];
    let start = 0;
    for (const split of present) {
      throwIfAborted(opts.signal);
      const imagesKey = `${split}_images`;
      const labelsKey = `${split}_labels`;
      const header = await npz.header(imagesKey);
      const geometry = imageGeometry(header, location, imagesKey);
      if (header.fortranOrder)
        notes.push(`${imagesKey} is stored in Fortran order; converted to C order on read`);
      const { labels, shape, float } = toLabels(await npz.read(labelsKey), location, labelsKey);
      labelShapes.set(shape, [...(labelShapes.get(shape) ?? []), labelsKey]);
      if (float) floatLabelKeys.push(labelsKey);
      if (labels.length !== geometry.count) {
        throw new DatasetError(
          `image and label counts differ: ${imagesKey} has ${geometry.count}, ${labelsKey} has ${labels.length}`,
          {
            file: location,
            field: `${imagesKey}/${labelsKey}`,
            expected: `${geometry.count} labels`,
            found: `${labels.length}`,
          },
        );
      }
      out.push({ split, imagesKey, labelsKey, labels, ...geometry, start });
      start += labels.length;
    }
    const ignored = npz.keys().filter((k) => !out.some((s) => s.imagesKey === k || s.labelsKey === k));
    if (ignored.length > 0) notes.push(`ignored keys: ${ignored.join(', ')}`);
    return out;
  });

  if (!splits.some((s) => s.split === 'val'))
    notes.push('no val_images/val_labels in the file: no given val split');
  const classNames = classNamesFor(splits, flag, location);
  if (flag !== undefined) {
    notes.push(`class names from the official MedMNIST table for "${flag}"`);
    const official = medmnistInfo(flag).samples;
    const diffs = splits
      .filter((s) => official[s.split] !== s.labels.length)
      .map((s) => `${s.split} ${s.labels.length} vs ${official[s.split]}`);
    notes.push(
      diffs.length === 0
        ? `split sizes equal the official ${flag} ones`
        : `split sizes differ from the official ${flag} ones (${diffs.join(', ')})`,
    );
  } else {
    notes.push('file name matches no MedMNIST subset: class names are the label values');
  }
  notes.push(...labelShapeNotes(labelShapes, floatLabelKeys));

  const samples: SampleRecord[] = [];
  for (const s of splits) {
    for (let i = 0; i < s.labels.length; i++) {
      samples.push({ id: `${s.split}[${i}]`, label: s.labels[i] as number, split: s.split });
    }
  }

  const cache = new Map<SplitName, Promise<Uint8Array>>();
  const loadImages = (s: SplitInfo): Promise<Uint8Array> => {
    let p = cache.get(s.split);
    if (p === undefined) {
      p = withNpz(location, (npz) => npz.read(s.imagesKey)).then((arr) => {
        if (!(arr.data instanceof Uint8Array)) {
          throw new DatasetError('images must be uint8', {
            file: location,
            field: s.imagesKey,
            found: arr.dtype,
          });
        }
        const expected = s.labels.length * s.height * s.width * s.channels;
        if (arr.data.length !== expected) {
          throw new DatasetError('images changed since the file was listed', {
            file: location,
            field: s.imagesKey,
            expected: `${expected} pixels`,
            found: `${arr.data.length}`,
          });
        }
        return arr.data;
      });
      // A failed read is not cached, so a later call can retry (and report the error again).
      p.catch(() => cache.delete(s.split));
      cache.set(s.split, p);
    }
    return p;
  };

  return {
    format: 'npz',
    location,
    classNames,
    labelSource: `npz keys ${splits.map((s) => s.labelsKey).join(', ')}`,
    samples,
    notes,
    async read(index: number): Promise<RawImage> {
      throwIfAborted(opts.signal);
      const s = splitOf(splits, index);
      if (s === undefined) {
        throw new RangeError(`sample index ${index} out of range 0..${samples.length - 1} (${location})`);
      }
      const data = await loadImages(s);
      const px = s.height * s.width * s.channels;
      const i = index - s.start;
      return {
        width: s.width,
        height: s.height,
        channels: s.channels,
        data: data.subarray(i * px, (i + 1) * px),
      };
    },
  };
}

/** The MedMNIST flag a file name starts with (`pneumoniamnist_64.npz`, `breastmnist-copy.npz`…), if any. */
export function medmnistFlagFromFileName(name: string): MedmnistFlag | undefined {
  const stem = name.toLowerCase().replace(/\.npz$/, '');
  const m = /^([a-z]+mnist)(?:$|[^a-z0-9])/.exec(stem);
  const candidate = m?.[1];
  return candidate !== undefined && isMedmnistFlag(candidate) ? candidate : undefined;
}

function checkKeys(npz: NpzReader): SplitName[] {
  const found = npz.keys();
  const required = ['train_images', 'train_labels', 'test_images', 'test_labels'];
  const hasVal = npz.has('val_images') || npz.has('val_labels');
  if (hasVal) required.push('val_images', 'val_labels');
  for (const key of required) {
    if (!npz.has(key)) {
      throw new DatasetError(
        `missing array "${key}" (MedMNIST layout: train_*, test_* and optional val_*; keys found: ${found.join(', ') || 'none'})`,
        { file: npz.file, field: key },
      );
    }
  }
  return SPLIT_NAMES.filter((s) => s !== 'val' || hasVal);
}

function imageGeometry(
  header: NpyHeader,
  file: string,
  key: string,
): { count: number; height: number; width: number; channels: 1 | 3 } {
  const shape = `(${header.shape.join(', ')})`;
  if (header.dtype !== 'u1') {
    throw new DatasetError('images must be uint8', {
      file,
      field: key,
      expected: 'uint8 (|u1)',
      found: header.dtype,
    });
  }
  const [count, height, width, c] = header.shape;
  const ok =
    count !== undefined &&
    height !== undefined &&
    width !== undefined &&
    height > 0 &&
    width > 0 &&
    (header.shape.length === 3 || (header.shape.length === 4 && (c === 1 || c === 3)));
  if (!ok) {
    throw new DatasetError(
      'images must be shaped (N,H,W) or (N,H,W,3) (3D volumes and other layouts are not supported)',
      {
        file,
        field: key,
        found: shape,
      },
    );
  }
  return { count, height, width, channels: c === 3 ? 3 : 1 };
}

type LabelShape = '(N,1)' | '(N,)';

/** Validates a labels array and turns it into plain integers. */
function toLabels(
  arr: NpyArray,
  file: string,
  key: string,
): { labels: Int32Array; shape: LabelShape; float: boolean } {
  const found = `(${arr.shape.join(', ')})`;
  const [n, k] = arr.shape;
  if (arr.shape.length === 2 && k !== undefined && k > 1) {
    throw new DatasetError(
      `multi-label labels (${k} label columns per image, as in ChestMNIST) are not supported; expected one class label per image`,
      { file, field: key, expected: '(N,1) or (N,)', found },
    );
  }
  if (n === undefined || arr.shape.length > 2 || (arr.shape.length === 2 && k !== 1)) {
    throw new DatasetError('labels must be shaped (N,1) or (N,)', { file, field: key, found });
  }
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const raw = arr.data[i] as number | bigint;
    const v = typeof raw === 'bigint' ? Number(raw) : raw;
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new DatasetError(`label of sample ${i} is not a non-negative integer`, {
        file,
        field: `${key}[${i}]`,
        expected: 'integer >= 0',
        found: String(raw),
      });
    }
    labels[i] = v;
  }
  return {
    labels,
    shape: arr.shape.length === 1 ? '(N,)' : '(N,1)',
    float: arr.dtype === 'f4' || arr.dtype === 'f8',
  };
}

function labelShapeNotes(byShape: ReadonlyMap<LabelShape, string[]>, floatKeys: readonly string[]): string[] {
  const notes = [...byShape].map(([shape, keys]) =>
    shape === '(N,)'
      ? `labels shaped (N,) accepted (official MedMNIST files use (N,1)): ${keys.join(', ')}`
      : `labels shaped (N,1): ${keys.join(', ')}`,
  );
  if (floatKeys.length > 0) notes.push(`float labels with integer values accepted: ${floatKeys.join(', ')}`);
  return notes;
}

function classNamesFor(splits: readonly SplitInfo[], flag: MedmnistFlag | undefined, file: string): string[] {
  let maxLabel = -1;
  for (const s of splits) for (const v of s.labels) if (v > maxLabel) maxLabel = v;
  let names: string[];
  if (flag !== undefined) {
    names = [...medmnistInfo(flag).labels];
    if (maxLabel >= names.length) {
      const where = findLabel(splits, maxLabel);
      throw new DatasetError(`label ${maxLabel} is out of range for ${flag} (${names.length} classes)`, {
        file,
        field: where,
        expected: `0..${names.length - 1}`,
        found: `${maxLabel}`,
      });
    }
  } else {
    names = Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  }
  if (names.length === 0) {
    throw new DatasetError('the file holds no labelled images', { file, field: 'train_labels' });
  }
  const counts = new Array<number>(names.length).fill(0);
  for (const s of splits) for (const v of s.labels) counts[v] = (counts[v] ?? 0) + 1;
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    throw new DatasetError(
      `class ${empty} ("${names[empty]}") has no images in any split` +
        (flag === undefined
          ? ' (class names come from the label values 0..max)'
          : ` (MedMNIST ${flag} table)`),
      {
        file,
        field: splits.map((s) => s.labelsKey).join(', '),
        expected: 'at least 1 image per class',
        found: '0',
      },
    );
  }
  return names;
}

function findLabel(splits: readonly SplitInfo[], label: number): string {
  for (const s of splits) {
    const i = s.labels.indexOf(label);
    if (i >= 0) return `${s.labelsKey}[${i}]`;
  }
  return 'labels';
}

function splitOf(splits: readonly SplitInfo[], index: number): SplitInfo | undefined {
  if (!Number.isInteger(index) || index < 0) return undefined;
  for (const s of splits) if (index < s.start + s.labels.length) return s;
  return undefined;
}
