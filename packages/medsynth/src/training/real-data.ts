/**
 * The real images a GAN trains on: the train split only (val/test stay unseen), loaded once at the model's
 * size, and a seeded batch sampler (by data frequency or class-balanced) whose whole state is its Rng.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataOptions } from '../config/data-options.js';
import { imagesToFloat } from '../data/image/tensors.js';
import { openDataset } from '../data/source.js';
import type { ImageArray } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import type { Rng } from '../runtime/random.js';

export interface RealSet {
  readonly images: ImageArray;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
  readonly classCounts: readonly number[];
  /** The split's source location and how it was split, for run metadata. */
  readonly location: string;
  readonly splitSource: string;
}

/**
 * Loads the train split at `size`×`size` with `channels`. `auto` is the data layer's rule (`Split.load`):
 * 1 for grey content (RGB files with equal channels included), 3 when any image has colour, every image
 * converted to that count, the decision reported through `onProgress`.
 */
export async function loadRealSet(
  data: DataOptions,
  size: number,
  channels: 1 | 3 | 'auto',
  control: RunControl = {},
): Promise<RealSet> {
  const ds = await openDataset(data, control);
  const train = ds.split('train');
  const images = await train.load({
    size,
    channels,
    bitDepth: 8,
    onProgress: control.onProgress,
    signal: control.signal,
  });
  return {
    images,
    labels: train.labels,
    classNames: ds.classNames,
    classCounts: train.classCounts(),
    location: ds.location,
    splitSource: ds.splitSource,
  };
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
