/**
 * Labelled image sets for classifiers: loading one from a dataset split, and the checks every classifier
 * entry point runs on its inputs (count agreement, label range, non-empty, matching image shape).
 */
import type { LoadOptions, Split } from '../data/dataset.js';
import type { ImageArray } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';
import type { LabelledImages } from './types.js';

/** A split's images (resized/converted as `options` say) with its labels and class names. */
export async function labelledFromSplit(split: Split, options: LoadOptions = {}): Promise<LabelledImages> {
  const images = await split.load(options);
  return { images, labels: Int32Array.from(split.labels), classNames: split.classNames };
}

/** Throws a `DatasetError` naming `what` when the image array is malformed or empty (when `allowEmpty` is false). */
export function checkImages(images: ImageArray, what: string, allowEmpty = false): void {
  if (!(Number.isInteger(images.count) && images.count >= 0)) {
    throw new DatasetError('image count must be a non-negative integer', {
      field: `${what}.count`,
      found: String(images.count),
    });
  }
  if (!allowEmpty && images.count === 0) {
    throw new DatasetError('no images', { field: what, expected: 'at least 1 image', found: '0' });
  }
  if (images.channels !== 1 && images.channels !== 3) {
    throw new DatasetError('images must have 1 or 3 channels', {
      field: `${what}.channels`,
      found: String(images.channels),
    });
  }
  const expected = images.count * images.height * images.width * images.channels;
  if (images.data.length !== expected) {
    throw new DatasetError('image data length does not match count × height × width × channels', {
      field: `${what}.data`,
      expected: `${expected} samples (${images.count}×${images.height}×${images.width}×${images.channels})`,
      found: String(images.data.length),
    });
  }
}

/**
 * Throws a `DatasetError` naming `what` when `labels` do not fit `images`: a different count, or a label
 * that is not an integer in `0..numClasses-1` (the first offending index is named).
 */
export function checkLabels(images: ImageArray, labels: Int32Array, numClasses: number, what: string): void {
  if (labels.length !== images.count) {
    throw new DatasetError('label count does not match image count', {
      field: `${what}.labels`,
      expected: `${images.count} labels (one per image)`,
      found: `${labels.length}`,
    });
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!(l >= 0 && l < numClasses)) {
      throw new DatasetError('label out of range', {
        field: `${what}.labels[${i}]`,
        expected: `0..${numClasses - 1}`,
        found: String(l),
      });
    }
  }
}

/** `checkImages` + `checkLabels` + class names, for a training or evaluation set. */
export function checkLabelled(set: LabelledImages, what: string): void {
  if (set.classNames.length < 2) {
    throw new DatasetError('a classifier needs at least 2 classes', {
      field: `${what}.classNames`,
      found: String(set.classNames.length),
    });
  }
  checkImages(set.images, what);
  checkLabels(set.images, set.labels, set.classNames.length, what);
}

/** Throws a `DatasetError` when `images` are not `[height, width, channels]` = `shape`. */
export function checkShape(images: ImageArray, shape: readonly [number, number, number], what: string): void {
  const [h, w, c] = shape;
  if (images.height !== h || images.width !== w || images.channels !== c) {
    throw new DatasetError('images do not have the shape the classifier was trained on (resize them first)', {
      field: what,
      expected: `${h}×${w}×${c}`,
      found: `${images.height}×${images.width}×${images.channels}`,
    });
  }
}

/** Images of each class. */
export function classCounts(labels: Int32Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const l of labels) counts[l]!++;
  return counts;
}
