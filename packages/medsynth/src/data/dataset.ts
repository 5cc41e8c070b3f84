/**
 * `Dataset` and `Split`: a loader's listing with a split policy applied. Pixels load lazily, per split,
 * resized and channel-converted on request; subsets (limited-data fractions, sites) are cheap views.
 *
 * Channels (`Split.load`), because folders pooled from several sources mix grey and colour files:
 * - `1` or `3`: every image converted to that count (luma / replication, see image/transform.ts).
 * - `auto`: decided from content, over every image of the split: any image with real colour → 3, else 1.
 *   An RGB file whose R, G and B are equal everywhere is grey content. Every image is converted to the one
 *   count (grey images replicated to RGB when the answer is 3). Grey-content RGB files are kept at 1 channel
 *   while loading, so a grey set costs 1 channel of memory. The decision is reported: a `phase` event
 *   detail for a uniform split, a `warning` when the files were stored with both 1 and 3 channels.
 * - omitted: as stored when every image has the same channels; when they differ, resolved as `auto` with a
 *   `warning` saying so (never a shape error).
 */
import { availableParallelism } from 'node:os';
import pLimit from 'p-limit';
import { DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import {
  convertChannels,
  greyOfRgb,
  isGreyContent,
  packImages,
  type ResolvedTransform,
  resolveTransform,
  transformImage,
} from './image/transform.js';
import { plural } from './files.js';
import { partitionSites, type SitePartitionOptions, stratifiedAssign, stratifiedFraction } from './splits.js';
import {
  type ImageArray,
  type ImageTransform,
  type RawImage,
  type SourceListing,
  SPLIT_NAMES,
  type SplitName,
} from './types.js';

export interface SplitPolicy {
  /** Seed of the split (and of fractions/sites derived from it unless they get their own). */
  readonly seed: number;
  /** Shares used when the source gives no split at all. */
  readonly ratios: { readonly train: number; readonly val: number; readonly test: number };
}

export const DEFAULT_SPLIT_POLICY: SplitPolicy = Object.freeze({
  seed: 0,
  ratios: Object.freeze({ train: 0.7, val: 0.1, test: 0.2 }),
});

/** Channels to load: 1, 3, or `auto` (1 for grey content, 3 when any image has colour). */
export type ChannelsOption = 1 | 3 | 'auto';

export interface LoadOptions extends Omit<ImageTransform, 'channels'>, RunControl {
  /**
   * 1, 3 or `auto` (see the module comment). Omitted: as stored, or as `auto` when the images disagree.
   */
  readonly channels?: ChannelsOption | undefined;
  /** Images decoded at once (default: available cores, at least 2). */
  readonly concurrency?: number | undefined;
}

/** What `auto` channel resolution found in a set of images, and what it chose. */
export interface ChannelsDecision {
  readonly channels: 1 | 3;
  readonly images: number;
  /** Images stored with 1 channel. */
  readonly storedGrey: number;
  /** Images stored as RGB with R = G = B everywhere (grey content). */
  readonly greyRgb: number;
  /** Images with real colour. */
  readonly colour: number;
}

/** Counts images by channel content and decides: any colour → 3, else 1. */
export function decideChannels(
  census: Pick<ChannelsDecision, 'storedGrey' | 'greyRgb' | 'colour'>,
): ChannelsDecision {
  const { storedGrey, greyRgb, colour } = census;
  return { channels: colour > 0 ? 3 : 1, images: storedGrey + greyRgb + colour, storedGrey, greyRgb, colour };
}

/**
 * The decision in words, e.g. `channels auto: 3 (colour content in 45 of 90 images; 45 grey images
 * replicated to RGB)` or `channels auto: 1 (grey content in all 90 images; 45 RGB files with equal channels
 * read as grey)`.
 */
export function describeChannels(d: ChannelsDecision): string {
  if (d.channels === 3) {
    const replicated = d.storedGrey > 0 ? `; ${plural(d.storedGrey, 'grey image')} replicated to RGB` : '';
    return `channels auto: 3 (colour content in ${d.colour} of ${plural(d.images, 'image')}${replicated})`;
  }
  const read = d.greyRgb > 0 ? `; ${plural(d.greyRgb, 'RGB file')} with equal channels read as grey` : '';
  return `channels auto: 1 (grey content in ${d.images === 1 ? 'the image' : `all ${d.images} images`}${read})`;
}

/** Sorts decoded images for `auto`: grey-content RGB becomes 1 channel at once (memory), colour is counted. */
class ChannelCensus {
  storedGrey = 0;
  greyRgb = 0;
  colour = 0;

  add(img: RawImage): RawImage {
    if (img.channels === 1) {
      this.storedGrey++;
      return img;
    }
    if (isGreyContent(img)) {
      this.greyRgb++;
      return greyOfRgb(img);
    }
    this.colour++;
    return img;
  }
}

/** One split (or a subset of one): sample indices into the listing, with their labels. */
export class Split {
  readonly labels: Int32Array;

  constructor(
    readonly dataset: Dataset,
    readonly name: string,
    /** Indices into `dataset.listing.samples`. */
    readonly indices: Int32Array,
  ) {
    const samples = dataset.listing.samples;
    this.labels = Int32Array.from(indices, (i) => samples[i]!.label);
  }

  get size(): number {
    return this.indices.length;
  }

  get classNames(): readonly string[] {
    return this.dataset.classNames;
  }

  /** The stable id (relative path or `split[i]`) of sample `i` of this split. */
  id(i: number): string {
    return this.dataset.listing.samples[this.indices[i]!]!.id;
  }

  group(i: number): string | undefined {
    return this.dataset.listing.samples[this.indices[i]!]!.group;
  }

  classCounts(): number[] {
    const counts = new Array<number>(this.classNames.length).fill(0);
    for (const l of this.labels) counts[l]!++;
    return counts;
  }

  /** Decodes sample `i` at its native size. */
  read(i: number): Promise<RawImage> {
    return this.dataset.listing.read(this.indices[i]!);
  }

  /** Decodes sample `i` with a transform (resize while decoding where the loader can). */
  readTransformed(i: number, t: ResolvedTransform): Promise<RawImage> {
    const listing = this.dataset.listing;
    const index = this.indices[i]!;
    if (listing.readTransformed) return listing.readTransformed(index, t);
    return listing.read(index).then((img) => transformImage(img, t));
  }

  /**
   * Loads every image of the split into one NHWC array. Without `size`, images must already agree in size.
   * `channels`: 1, 3, `auto`, or omitted (see the module comment). Emits `tick` progress events (unit
   * `images`), the channel decision when there is one, and honours `signal`.
   */
  async load(options: LoadOptions = {}): Promise<ImageArray> {
    if (this.size === 0)
      throw new DatasetError(`split "${this.name}" is empty`, { file: this.dataset.location });
    const requested = options.channels;
    const t = resolveTransform({
      size: options.size,
      channels: requested === 'auto' ? undefined : requested,
      interpolation: options.interpolation,
      fit: options.fit,
      bitDepth: options.bitDepth,
    });
    const concurrency = options.concurrency ?? Math.max(2, availableParallelism());
    const limit = pLimit(concurrency);
    let images = new Array<RawImage>(this.size);
    const census = requested === 'auto' ? new ChannelCensus() : undefined;
    const phase = `load ${this.name}`;
    const every = Math.max(1, Math.floor(this.size / 100));
    let done = 0;
    options.onProgress?.({ type: 'phase', phase, detail: `${this.size} images` });
    const started = performance.now();
    await Promise.all(
      Array.from({ length: this.size }, (_, i) =>
        limit(async () => {
          options.signal?.throwIfAborted();
          const img = await this.readTransformed(i, t);
          images[i] = census ? census.add(img) : img;
          done++;
          if (done % every === 0 || done === this.size) {
            options.onProgress?.({ type: 'tick', phase, done, total: this.size, unit: 'images' });
          }
        }),
      ),
    );
    // Files stored with 1 and with 3 channels side by side: a pooled folder, worth a warning.
    const mixedStorage = census
      ? census.storedGrey > 0 && census.greyRgb + census.colour > 0
      : images.some((img) => img.channels !== images[0]!.channels);
    if (census || (requested === undefined && mixedStorage)) {
      const c = census ?? new ChannelCensus();
      if (!census) images = images.map((img) => c.add(img));
      const decision = decideChannels(c);
      if (decision.channels === 3) images = images.map((img) => convertChannels(img, 3));
      const text = describeChannels(decision);
      if (requested === undefined)
        options.onProgress?.({
          type: 'warning',
          message: `${phase}: the images are stored with both 1 and 3 channels, so ${text}; pass channels 1, 3 or auto (--channels) to choose`,
        });
      else if (mixedStorage) options.onProgress?.({ type: 'warning', message: `${phase}: ${text}` });
      else options.onProgress?.({ type: 'phase', phase, detail: text });
    }
    options.onProgress?.({ type: 'done', phase, seconds: (performance.now() - started) / 1000 });
    return packImages(
      images,
      Array.from({ length: this.size }, (_, i) => this.id(i)),
    );
  }

  /** A view on some of this split's samples (`positions` index into this split). */
  subset(positions: ArrayLike<number>, name = `${this.name}[subset]`): Split {
    return new Split(
      this.dataset,
      name,
      Int32Array.from(positions as ArrayLike<number>, (p) => this.indices[p]!),
    );
  }

  /** Limited-data regime: about `fraction` of each class (at least one image per class), seeded. */
  fraction(fraction: number, seed = this.dataset.policy.seed): Split {
    return this.subset(stratifiedFraction(this.labels, fraction, seed), `${this.name}[fraction=${fraction}]`);
  }

  /** Partition into `sites` institutions, IID or non-IID (Dirichlet α), deterministic by seed. */
  sites(sites: number, options: SitePartitionOptions & { readonly seed?: number } = {}): Split[] {
    const assignment = partitionSites(this.labels, sites, options.seed ?? this.dataset.policy.seed, options);
    return Array.from({ length: sites }, (_, s) => {
      const positions: number[] = [];
      assignment.forEach((site, p) => {
        if (site === s) positions.push(p);
      });
      return this.subset(positions, `${this.name}[site ${s + 1}/${sites}]`);
    });
  }
}

/** A labelled image collection with train/val/test splits. */
export class Dataset {
  readonly #splits = new Map<SplitName, Split>();
  /** How the splits were made, for humans and metadata. */
  readonly splitSource: string;

  constructor(
    readonly listing: SourceListing,
    readonly policy: SplitPolicy = DEFAULT_SPLIT_POLICY,
  ) {
    checkClasses(listing);
    const { assignment, description } = assignSplits(listing, policy);
    this.splitSource = description;
    for (const [k, name] of SPLIT_NAMES.entries()) {
      const idx: number[] = [];
      assignment.forEach((a, i) => {
        if (a === k) idx.push(i);
      });
      this.#splits.set(name, new Split(this, name, Int32Array.from(idx)));
    }
  }

  get classNames(): readonly string[] {
    return this.listing.classNames;
  }

  get location(): string {
    return this.listing.location;
  }

  get format(): SourceListing['format'] {
    return this.listing.format;
  }

  /** A split; throws a `DatasetError` when it is empty (e.g. asking for `val` of a one-image DICOM). */
  split(name: SplitName): Split {
    const s = this.#splits.get(name)!;
    if (s.size === 0) throw new DatasetError(`the dataset has no "${name}" images`, { file: this.location });
    return s;
  }

  /** The non-empty splits, in train/val/test order. */
  splits(): Split[] {
    return SPLIT_NAMES.map((n) => this.#splits.get(n)!).filter((s) => s.size > 0);
  }
}

/** Every class must have images: an empty class cannot be learned, generated or evaluated. */
function checkClasses(listing: SourceListing): void {
  if (listing.samples.length === 0)
    throw new DatasetError('the source holds no images', { file: listing.location });
  const counts = new Array<number>(listing.classNames.length).fill(0);
  for (const s of listing.samples) {
    if (!(Number.isInteger(s.label) && s.label >= 0 && s.label < counts.length)) {
      throw new DatasetError('label out of range', {
        file: listing.location,
        field: s.id,
        expected: `0..${counts.length - 1}`,
        found: String(s.label),
      });
    }
    counts[s.label]!++;
  }
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    throw new DatasetError(`class "${listing.classNames[empty]}" has no images`, {
      file: listing.location,
      field: `class ${empty}`,
    });
  }
}

const PART: Record<SplitName, number> = { train: 0, val: 1, test: 2 };

/**
 * The split policy. Samples whose source gives a split keep it. The rest are split stratified and
 * group-aware with `policy.ratios`. If that leaves `val` or `test` empty while `train` has images, the
 * missing split is carved out of train (stratified, group-aware, its share relative to train's).
 */
function assignSplits(
  listing: SourceListing,
  policy: SplitPolicy,
): { assignment: Int32Array; description: string } {
  const samples = listing.samples;
  const n = samples.length;
  const assignment = new Int32Array(n).fill(-1);
  const given = samples.filter((s) => s.split !== undefined).length;
  const grouped = samples.some((s) => s.group !== undefined);
  const how: string[] = [];
  const { train, val, test } = policy.ratios;
  const ratios = [train, val, test];
  if (given > 0) {
    samples.forEach((s, i) => {
      if (s.split !== undefined) assignment[i] = PART[s.split];
    });
    how.push(given === n ? 'given by the source' : `${given} given by the source`);
  }
  const rest = [...assignment.keys()].filter((i) => assignment[i] === -1);
  if (rest.length > 0 && rest.length <= 1 && given === 0) {
    rest.forEach((i) => {
      assignment[i] = 0;
    });
    how.push('single image (train)');
  } else if (rest.length > 0) {
    const parts = stratifiedAssign(
      rest.map((i) => samples[i]!.label),
      ratios,
      policy.seed,
      rest.map((i) => samples[i]!.group),
    );
    rest.forEach((i, k) => {
      assignment[i] = parts[k]!;
    });
    how.push(
      `${given > 0 ? 'the rest ' : ''}stratified ${ratios.map((r) => Math.round(r * 100)).join('/')} (seed ${policy.seed}${grouped ? ', groups kept whole' : ''})`,
    );
  }
  for (const name of ['val', 'test'] as const) {
    const part = PART[name];
    if (assignment.includes(part) || !assignment.includes(0)) continue;
    const share = ratios[part]! / (ratios[0]! + ratios[part]!);
    if (!(share > 0)) continue;
    const trainIdx = [...assignment.keys()].filter((i) => assignment[i] === 0);
    if (trainIdx.length < 2) continue;
    const parts = stratifiedAssign(
      trainIdx.map((i) => samples[i]!.label),
      [1 - share, share],
      policy.seed,
      trainIdx.map((i) => samples[i]!.group),
    );
    trainIdx.forEach((i, k) => {
      if (parts[k] === 1) assignment[i] = part;
    });
    how.push(
      `${name} carved from train (${Math.round(share * 100)}%, seed ${policy.seed}${grouped ? ', groups kept whole' : ''})`,
    );
  }
  return { assignment, description: how.join('; ') };
}
