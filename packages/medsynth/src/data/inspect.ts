/**
 * `inspectDataset`: what a user needs to know before training on a dataset — counts per split × class,
 * image sizes, channels, bit depth, value range, where labels and splits came from, class imbalance, and
 * whether groups stay inside one split. Decodes every image once (or a seeded sample of `maxImages`).
 * Channels are counted as stored and by content (RGB files with equal channels are grey content), with what
 * `channels: auto` makes of them (`Split.load`); a note says so when files are stored as RGB grey or mixed.
 */
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import { type Dataset, decideChannels, describeChannels, type Split } from './dataset.js';
import { tileImages } from './image/grid.js';
import { isGreyContent, resolveTransform } from './image/transform.js';
import type { RawImage } from './types.js';

export interface SplitSummary {
  readonly name: string;
  readonly count: number;
  /** Images per class, in `classNames` order. */
  readonly classCounts: readonly number[];
  /** Groups (patients/tiles) in this split, when the source has groups. */
  readonly groups?: number;
}

export interface ImageStats {
  /** Images decoded to compute these statistics. */
  readonly scanned: number;
  /** Distinct sizes seen, most common first (height × width). */
  readonly sizes: readonly { readonly height: number; readonly width: number; readonly count: number }[];
  /** Images per channel count, as stored. */
  readonly channels: Readonly<Record<string, number>>;
  /** 3-channel images whose R, G and B are equal everywhere (grey content). */
  readonly greyRgb: number;
  /** What `channels: auto` makes of the scanned images: 3 when any has colour, else 1. */
  readonly channelsAuto: 1 | 3;
  /** Images per bit depth. */
  readonly bitDepths: Readonly<Record<string, number>>;
  readonly valueRange: { readonly min: number; readonly max: number };
}

export interface DatasetSummary {
  readonly location: string;
  readonly format: string;
  readonly classNames: readonly string[];
  readonly labelSource: string;
  readonly splitSource: string;
  readonly splits: readonly SplitSummary[];
  readonly total: number;
  /** Largest / smallest class count in the train split (1 = balanced). */
  readonly imbalanceRatio: number;
  readonly image: ImageStats;
  /** Groups that appear in more than one split (should be 0). Absent when the source has no groups. */
  readonly groupsAcrossSplits?: number;
  /**
   * Of those, groups whose every image sits in a split the source itself assigned (folders, CSV, npz keys):
   * the source's split shares group ids, which medsynth does not change. Splits medsynth makes keep groups whole.
   */
  readonly groupsAcrossSourceSplits?: number;
  readonly notes: readonly string[];
}

export interface InspectOptions extends RunControl {
  /** Decode at most this many images for the image statistics (seeded sample); default all. */
  readonly maxImages?: number | undefined;
  readonly concurrency?: number | undefined;
}

function countGroups(split: Split): number {
  const g = new Set<string>();
  for (let i = 0; i < split.size; i++) {
    const id = split.group(i);
    if (id !== undefined) g.add(id);
  }
  return g.size;
}

/** Counts of one split or subset (a fraction, a site): size, per-class counts, groups when present. */
export function summarizeSplit(split: Split): SplitSummary {
  const groups = countGroups(split);
  return {
    name: split.name,
    count: split.size,
    classCounts: split.classCounts(),
    ...(groups > 0 ? { groups } : {}),
  };
}

export async function inspectDataset(ds: Dataset, options: InspectOptions = {}): Promise<DatasetSummary> {
  const splits = ds.splits();
  const hasGroups = ds.listing.samples.some((s) => s.group !== undefined);
  const summaries = splits.map(summarizeSplit);
  let groupsAcrossSplits: number | undefined;
  let groupsAcrossSourceSplits: number | undefined;
  if (hasGroups) {
    const where = new Map<string, { splits: Set<string>; allGiven: boolean }>();
    for (const s of splits) {
      for (let i = 0; i < s.size; i++) {
        const g = s.group(i);
        if (g === undefined) continue;
        const given = ds.listing.samples[s.indices[i]!]!.split !== undefined;
        const w = where.get(g) ?? { splits: new Set<string>(), allGiven: true };
        w.splits.add(s.name);
        w.allGiven &&= given;
        where.set(g, w);
      }
    }
    const across = [...where.values()].filter((w) => w.splits.size > 1);
    groupsAcrossSplits = across.length;
    groupsAcrossSourceSplits = across.filter((w) => w.allGiven).length;
  }
  const trainCounts = (splits.find((s) => s.name === 'train') ?? splits[0])?.classCounts() ?? [];
  const present = trainCounts.filter((c) => c > 0);
  const imbalanceRatio = present.length > 0 ? Math.max(...present) / Math.min(...present) : 1;

  // Image statistics over every image (or a seeded sample).
  const refs: [Split, number][] = splits.flatMap((s) =>
    Array.from({ length: s.size }, (_, i) => [s, i] as [Split, number]),
  );
  const chosen =
    options.maxImages !== undefined && options.maxImages < refs.length
      ? Rng.derive(0, 'inspect').shuffle(refs.slice()).slice(0, options.maxImages)
      : refs;
  const sizes = new Map<string, number>();
  const channels: Record<string, number> = {};
  const bitDepths: Record<string, number> = {};
  let greyRgb = 0;
  let colour = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  const limit = pLimit(options.concurrency ?? Math.max(2, availableParallelism()));
  const every = Math.max(1, Math.floor(chosen.length / 100));
  let done = 0;
  options.onProgress?.({ type: 'phase', phase: 'inspect', detail: `${chosen.length} images` });
  await Promise.all(
    chosen.map(([split, i]) =>
      limit(async () => {
        options.signal?.throwIfAborted();
        const img = await split.read(i);
        const key = `${img.height}x${img.width}`;
        sizes.set(key, (sizes.get(key) ?? 0) + 1);
        channels[img.channels] = (channels[img.channels] ?? 0) + 1;
        if (img.channels === 3) {
          if (isGreyContent(img)) greyRgb++;
          else colour++;
        }
        const depth = img.data instanceof Uint16Array ? 16 : 8;
        bitDepths[depth] = (bitDepths[depth] ?? 0) + 1;
        const d = img.data;
        for (let k = 0; k < d.length; k++) {
          const v = d[k]!;
          if (v < min) min = v;
          if (v > max) max = v;
        }
        done++;
        if (done % every === 0 || done === chosen.length) {
          options.onProgress?.({
            type: 'tick',
            phase: 'inspect',
            done,
            total: chosen.length,
            unit: 'images',
          });
        }
      }),
    ),
  );
  const sizeList = [...sizes.entries()]
    .map(([k, count]) => {
      const [height, width] = k.split('x').map(Number) as [number, number];
      return { height, width, count };
    })
    .sort((a, b) => b.count - a.count || a.height - b.height || a.width - b.width);
  const decision = decideChannels({ storedGrey: channels[1] ?? 0, greyRgb, colour });
  const notes = [...ds.listing.notes];
  if (greyRgb > 0 || (decision.storedGrey > 0 && greyRgb + colour > 0)) {
    const of = chosen.length < refs.length ? ` (of the ${chosen.length} images scanned)` : '';
    notes.push(`${describeChannels(decision)}${of}`);
  }
  return {
    location: ds.location,
    format: ds.format,
    classNames: ds.classNames,
    labelSource: ds.listing.labelSource,
    splitSource: ds.splitSource,
    splits: summaries,
    total: ds.listing.samples.length,
    imbalanceRatio,
    image: {
      scanned: chosen.length,
      sizes: sizeList,
      channels,
      greyRgb,
      channelsAuto: decision.channels,
      bitDepths,
      valueRange: { min, max },
    },
    ...(groupsAcrossSplits !== undefined
      ? { groupsAcrossSplits, groupsAcrossSourceSplits: groupsAcrossSourceSplits ?? 0 }
      : {}),
    notes,
  };
}

export interface ClassGridOptions {
  /** Images per class (columns), default 8. */
  readonly perClass?: number;
  /** Cell side in pixels, default 64. */
  readonly cellSize?: number;
  readonly seed?: number;
}

/** One row per class of seeded random samples from a split, resized to square cells. */
export async function classGrid(split: Split, options: ClassGridOptions = {}): Promise<RawImage> {
  const perClass = options.perClass ?? 8;
  const t = resolveTransform({ size: options.cellSize ?? 64 });
  const rng = Rng.derive(options.seed ?? 0, 'grid');
  const rows: RawImage[][] = [];
  for (let c = 0; c < split.classNames.length; c++) {
    const members: number[] = [];
    split.labels.forEach((l, i) => {
      if (l === c) members.push(i);
    });
    const picked = rng.shuffle(members).slice(0, perClass);
    rows.push(await Promise.all(picked.map((i) => split.readTransformed(i, t))));
  }
  return tileImages(rows);
}
