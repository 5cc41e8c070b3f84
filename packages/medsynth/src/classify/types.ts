/**
 * What every classifier in medsynth shares: labelled image sets in, class probabilities out. The CNN
 * (cnn.ts) is one implementation; the judge of class fidelity and the downstream studies only use this
 * interface, so a conventional classifier can take its place.
 */
import type { ImageArray } from '../data/types.js';

/** Images with one integer label each (an index into `classNames`). */
export interface LabelledImages {
  readonly images: ImageArray;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];
}

/** Images with their labels, where the class names are known from elsewhere (a classifier, a dataset). */
export interface ImagesWithLabels {
  readonly images: ImageArray;
  readonly labels: Int32Array;
}

/** Accuracy figures of a classifier on a labelled set; plain JSON (no NaN: a class without images is `null`). */
export interface ClassificationEvaluation {
  /** Images evaluated. */
  readonly count: number;
  /** Fraction of images whose predicted class is their label. */
  readonly accuracy: number;
  /** Mean of the per-class recalls over the classes that have images. */
  readonly balancedAccuracy: number;
  /** Recall of each class (its images predicted as it); `null` for a class with no images here. */
  readonly perClassRecall: (number | null)[];
  /** Images of each class. */
  readonly classCounts: number[];
  /** `confusion[label][predicted]`: counts; rows are true classes, columns predictions; sums to `count`. */
  readonly confusion: number[][];
}

/** One epoch of training, as recorded in a classifier's history. */
export interface EpochRecord {
  /** 1-based epoch number. */
  readonly epoch: number;
  /** Mean training loss (class-weighted cross-entropy) over the epoch's batches. */
  readonly trainLoss: number;
  /** On the validation set, when one was given (the loss class-weighted like the training loss). */
  readonly valLoss?: number;
  readonly valAccuracy?: number;
  readonly valBalancedAccuracy?: number;
  /** Wall-clock seconds the epoch took (validation included). */
  readonly seconds: number;
}

/** A classifier ready to label images of the size and channels it was trained on. */
export interface TrainedClassifier {
  readonly classNames: readonly string[];
  /** `[height, width, channels]` of the images it takes. */
  readonly inputShape: readonly [number, number, 1 | 3];
  /** Per-epoch training record (empty for classifiers that are not trained by epochs). */
  readonly history: readonly EpochRecord[];
  /** The epoch whose weights the classifier holds (1-based); the last epoch when there was no validation set. */
  readonly bestEpoch: number;
  /** True when early stopping ended training before the maximum number of epochs. */
  readonly stoppedEarly: boolean;
  /** Class probabilities, row-major `N × K` (K = classNames.length). */
  predictProba(images: ImageArray, batchSize?: number): Promise<Float32Array>;
  /** The most probable class of each image (ties go to the lower class index). */
  predict(images: ImageArray, batchSize?: number): Promise<Int32Array>;
  evaluate(images: ImageArray, labels: Int32Array, batchSize?: number): Promise<ClassificationEvaluation>;
  /** Frees the model's tensors; the classifier cannot be used afterwards. */
  dispose(): void;
}
