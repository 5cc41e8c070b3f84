/**
 * Class fidelity of generated images: a classifier trained on real images (the *judge*) labels each
 * generated image, and we report how often it agrees with the class the image was generated for — beside
 * the judge's accuracy on real test images, which bounds what generated images can score. A class-
 * conditional GAN whose images carry their class scores close to the real-test figure; one that ignores
 * its labels scores near chance.
 */
import { trainCnn, type CnnOptionsInput, type TrainedCnn } from '../classify/cnn.js';
import { confusionMatrix, evaluateConfusion } from '../classify/evaluation.js';
import { checkImages, checkLabels, checkShape } from '../classify/labelled.js';
import type { ImagesWithLabels, LabelledImages, TrainedClassifier } from '../classify/types.js';
import type { ImageArray } from '../data/types.js';
import type { RunControl } from '../runtime/progress.js';

export interface ClassFidelityPerClass {
  readonly className: string;
  /** Fraction of the images generated for this class that the judge labels as it; `null` when none were generated. */
  readonly accuracy: number | null;
  /** Images generated for this class. */
  readonly count: number;
}

/** Plain JSON (no NaN, no typed arrays). */
export interface ClassFidelityResult {
  /** Generated images judged. */
  readonly count: number;
  /** Fraction of generated images the judge labels as their intended class. */
  readonly accuracy: number;
  /** Mean of the per-class accuracies over the classes that have generated images. */
  readonly balancedAccuracy: number;
  readonly perClass: ClassFidelityPerClass[];
  /** `confusion[intended][judged]` counts over the generated images. */
  readonly confusion: number[][];
  /** The judge's accuracy on the real test images, when given: the figure to read `accuracy` against. */
  readonly realTestAccuracy?: number;
  readonly realTestBalancedAccuracy?: number;
  readonly realTestCount?: number;
}

export interface ClassFidelityOptions {
  /** Inference batch size (default: the judge's). */
  readonly batchSize?: number | undefined;
}

/**
 * Labels `fake` with `judge` and compares with `intendedLabels` (one per image, indices into the judge's
 * classes); with `realTest`, also the judge's accuracy on those real images. Images must have the judge's
 * input shape (resize them first). Bad input → `DatasetError` naming `fake` or `realTest`.
 */
export async function classFidelity(
  judge: TrainedClassifier,
  fake: ImageArray,
  intendedLabels: Int32Array,
  realTest?: ImagesWithLabels,
  options: ClassFidelityOptions = {},
): Promise<ClassFidelityResult> {
  const K = judge.classNames.length;
  checkImages(fake, 'fake');
  checkShape(fake, judge.inputShape, 'fake');
  checkLabels(fake, intendedLabels, K, 'fake');
  if (realTest) {
    checkImages(realTest.images, 'realTest');
    checkShape(realTest.images, judge.inputShape, 'realTest');
    checkLabels(realTest.images, realTest.labels, K, 'realTest');
  }
  const judged = await judge.predict(fake, options.batchSize);
  const ev = evaluateConfusion(confusionMatrix(intendedLabels, judged, K));
  const real = realTest
    ? await judge.evaluate(realTest.images, realTest.labels, options.batchSize)
    : undefined;
  return {
    count: ev.count,
    accuracy: ev.accuracy,
    balancedAccuracy: ev.balancedAccuracy,
    perClass: judge.classNames.map((className, k) => ({
      className,
      accuracy: ev.perClassRecall[k] ?? null,
      count: ev.classCounts[k] ?? 0,
    })),
    confusion: ev.confusion,
    ...(real
      ? {
          realTestAccuracy: real.accuracy,
          realTestBalancedAccuracy: real.balancedAccuracy,
          realTestCount: real.count,
        }
      : {}),
  };
}

/**
 * The judge's defaults, where they differ from the CNN's: class-balanced loss (so the judge does not favour
 * the majority class, which would flatter a generator's majority-class images), early stopping on val loss
 * with patience 5 over at most 30 epochs.
 */
export const JUDGE_DEFAULTS: Readonly<CnnOptionsInput> = Object.freeze({
  classWeights: 'balanced',
  epochs: 30,
  patience: 5,
  monitor: 'valLoss',
});

/**
 * Trains a judge: a CNN on the real train split (`train`), with early stopping on `validation` (the real
 * val split) when given. `options` override `JUDGE_DEFAULTS`. The caller disposes the judge.
 */
export async function trainJudge(
  train: LabelledImages,
  validation?: ImagesWithLabels,
  options: CnnOptionsInput = {},
  control: RunControl = {},
): Promise<TrainedCnn> {
  return trainCnn(train, { ...JUDGE_DEFAULTS, ...options, ...(validation ? { validation } : {}) }, control);
}
