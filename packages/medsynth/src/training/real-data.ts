/**
 * The real images a GAN trains on: the train split only (val/test stay unseen), or a chosen part of it
 * (`TrainSubset`: listed images and/or one class), loaded once at the model's size, and a seeded batch sampler
 * (by data frequency or class-balanced) whose whole state is its Rng.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataOptions } from '../config/data-options.js';
import type { Dataset, Split } from '../data/dataset.js';
import { imagesToFloat } from '../data/image/tensors.js';
import { openDataset } from '../data/source.js';
import type { ImageArray } from '../data/types.js';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import type { Rng } from '../runtime/random.js';

export interface RealSet {
  readonly images: ImageArray;
  readonly labels: Int32Array;
  /** The run's classes: the dataset's, or `[trainClass]` for a single-class run (every label 0). */
  readonly classNames: readonly string[];
  readonly classCounts: readonly number[];
  /**
   * The ids (`Split.id`) of the images loaded, in load order (= `labels` order), when a part of the train split
   * was asked for (`trainImages` and/or `trainClass`); null when the whole split was loaded.
   */
  readonly imageIds: readonly string[] | null;
  /** The split's source location and how it was split, for run metadata. */
  readonly location: string;
  readonly splitSource: string;
}

/** Which part of the train split to train on (the fields of the same name in `TrainOptions`). */
export interface TrainSubset {
  /** Ids (`Split.id`) of the train images to keep; null or absent: all of them. */
  readonly trainImages?: readonly string[] | null | undefined;
  /** Keep this class's images only, as a single-class set; null or absent: every class. */
  readonly trainClass?: string | null | undefined;
}

/**
 * Loads the train split, or the part of it `subset` names, at `size`×`size` with `channels`. `auto` is the
 * data layer's rule (`Split.load`) over the images loaded: 1 for grey content (RGB files with equal channels
 * included), 3 when any image has colour, every image converted to that count, the decision reported through
 * `onProgress`. Only the chosen images are decoded. An id that is not a train image, or an unknown class, is
 * a `ConfigError` (raised before anything is decoded); a subset with no images left is a `DatasetError`.
 */
export async function loadRealSet(
  data: DataOptions,
  size: number,
  channels: 1 | 3 | 'auto',
  control: RunControl = {},
  subset: TrainSubset = {},
): Promise<RealSet> {
  const ds = await openDataset(data, control);
  const train = ds.split('train');
  const trainClass = subset.trainClass ?? null;
  const chosen = chooseTrainImages(ds, train, subset.trainImages ?? null, trainClass);
  const images = await chosen.load({
    size,
    channels,
    bitDepth: 8,
    onProgress: control.onProgress,
    signal: control.signal,
  });
  const whole = chosen === train;
  return {
    images,
    labels: trainClass === null ? chosen.labels : new Int32Array(chosen.size),
    classNames: trainClass === null ? ds.classNames : [trainClass],
    classCounts: trainClass === null ? chosen.classCounts() : [chosen.size],
    imageIds: whole ? null : Array.from({ length: chosen.size }, (_, i) => chosen.id(i)),
    location: ds.location,
    splitSource: ds.splitSource,
  };
}

/** The part of `train` to load (a `subset` view in split order), or `train` itself when none is asked for. */
function chooseTrainImages(
  ds: Dataset,
  train: Split,
  trainImages: readonly string[] | null,
  trainClass: string | null,
): Split {
  if (trainImages === null && trainClass === null) return train;
  const keep = new Array<boolean>(train.size).fill(trainImages === null);
  const parts: string[] = [];
  if (trainImages !== null) {
    const position = new Map<string, number>();
    for (let i = 0; i < train.size; i++) position.set(train.id(i), i);
    if (new Set(trainImages).size !== trainImages.length) {
      throw new ConfigError('an id is listed more than once', { field: 'trainImages' });
    }
    const unknown = trainImages.filter((id) => !position.has(id));
    if (unknown.length > 0) {
      const anySplit = new Set(ds.listing.samples.map((s) => s.id));
      const elsewhere = unknown.filter((id) => anySplit.has(id)).length;
      const shown = unknown
        .slice(0, 3)
        .map((id) => `"${id}"`)
        .join(', ');
      throw new ConfigError(
        `${unknown.length} of ${trainImages.length} ids are not train images${elsewhere > 0 ? ` (${elsewhere} of them in the val or test split)` : ''}`,
        {
          file: ds.location,
          field: 'trainImages',
          expected: 'ids of train-split images',
          found: `${unknown.length} unknown: ${shown}${unknown.length > 3 ? ', …' : ''}`,
        },
      );
    }
    for (const id of trainImages) keep[position.get(id)!] = true;
    parts.push(`${trainImages.length} listed`);
  }
  if (trainClass !== null) {
    const c = ds.classNames.indexOf(trainClass);
    if (c < 0) {
      throw new ConfigError(`unknown class "${trainClass}"`, {
        file: ds.location,
        field: 'trainClass',
        expected: ds.classNames.join(', '),
        found: trainClass,
      });
    }
    train.labels.forEach((l, i) => {
      if (l !== c) keep[i] = false;
    });
    parts.push(`class ${trainClass}`);
  }
  const positions: number[] = [];
  keep.forEach((k, i) => {
    if (k) positions.push(i);
  });
  const what = parts.join(', ');
  if (positions.length === 0) {
    throw new DatasetError(`no train images are left to train on (${what})`, {
      file: ds.location,
      field: trainClass !== null ? 'trainClass' : 'trainImages',
    });
  }
  return train.subset(positions, `train[${what}]`);
}

/** Draws batches of real images with replacement: by data frequency, or each class equally often. */
export class BatchSampler {
  readonly #byClass: Int32Array[];

  constructor(
    readonly set: RealSet,
    readonly balanced: boolean,
  ) {
    const k = set.classNames.length;
    const lists: number[][] = Array.from({ length: k }, () => []);
    set.labels.forEach((l, i) => lists[l]!.push(i));
    this.#byClass = lists.map((l) => Int32Array.from(l));
    if (balanced) {
      const empty = this.#byClass.findIndex((l) => l.length === 0);
      if (empty >= 0) {
        throw new DatasetError(`class "${set.classNames[empty]}" has no train images to sample`, {
          file: set.location,
          field: `class ${empty}`,
        });
      }
    }
  }

  /** Indices of one batch, drawn with `rng`. */
  indices(batch: number, rng: Rng): Int32Array {
    const out = new Int32Array(batch);
    const n = this.set.labels.length;
    for (let b = 0; b < batch; b++) {
      if (this.balanced) {
        const list = this.#byClass[rng.int(this.#byClass.length)]!;
        out[b] = list[rng.int(list.length)]!;
      } else {
        out[b] = rng.int(n);
      }
    }
    return out;
  }

  /** One batch as tensors: images `[B, S, S, C]` in [-1, 1] and int32 labels `[B]`. */
  batch(batch: number, rng: Rng): { x: tf.Tensor4D; labels: tf.Tensor1D } {
    const idx = this.indices(batch, rng);
    const { height, width, channels } = this.set.images;
    const x = tf.tensor4d(imagesToFloat(this.set.images, idx), [batch, height, width, channels]);
    const labels = tf.tensor1d(
      Int32Array.from(idx, (i) => this.set.labels[i]!),
      'int32',
    );
    return { x, labels };
  }
}
