/**
 * Classification metrics of one classifier on one labelled test set, from class scores: accuracy, balanced
 * accuracy, macro/weighted F1, per-class precision/recall/specificity/F1/AUC, and for two classes the
 * clinical figures (sensitivity, specificity, PPV, NPV, AUC). Pure functions; the results are plain JSON
 * (no NaN or Infinity: a quantity whose denominator is zero is `null`).
 */
import { argmaxRows, confusionMatrix, evaluateConfusion } from './evaluation.js';

/** Figures of one class, treating it as "positive" and every other class as "negative" (one-vs-rest). */
export interface ClassMetrics {
  readonly name: string;
  /** Images whose label is this class. */
  readonly support: number;
  /** TP / (TP + FP); `null` when the class is never predicted. */
  readonly precision: number | null;
  /** TP / (TP + FN) (= sensitivity); `null` when the class has no images. */
  readonly recall: number | null;
  /** TN / (TN + FP); `null` when every image belongs to this class. */
  readonly specificity: number | null;
  /** Harmonic mean of precision and recall, 2TP / (2TP + FP + FN); `null` when either is `null`. */
  readonly f1: number | null;
  /** One-vs-rest ROC AUC of this class's score; `null` when the labels have no positives or no negatives. */
  readonly auc: number | null;
}

/** The usual figures of a two-class (e.g. normal vs pneumonia) test, for the chosen positive class. */
export interface BinaryMetrics {
  /** Index of the positive class (default 1). */
  readonly positiveClass: number;
  readonly positiveName: string;
  /** TP / (TP + FN); `null` without positive images. */
  readonly sensitivity: number | null;
  /** TN / (TN + FP); `null` without negative images. */
  readonly specificity: number | null;
  /** Positive predictive value TP / (TP + FP); `null` when nothing is predicted positive. */
  readonly ppv: number | null;
  /** Negative predictive value TN / (TN + FN); `null` when nothing is predicted negative. */
  readonly npv: number | null;
  /** ROC AUC of the positive class's score; `null` without positive or without negative images. */
  readonly auc: number | null;
}

/** Everything `classificationMetrics` reports; plain JSON. */
export interface ClassificationMetrics {
  /** Images evaluated. */
  readonly count: number;
  /** Fraction of images whose predicted class (argmax of the scores) is their label. */
  readonly accuracy: number;
  /** Mean recall over the classes that have images. */
  readonly balancedAccuracy: number;
  /**
   * Mean F1 over the classes that occur in the labels or in the predictions, where F1 = 2TP / (2TP + FP + FN)
   * — a class with images that is never predicted (or predicted but without images) counts as F1 = 0, the
   * scikit-learn convention (`zero_division=0`), so that never predicting a class is not rewarded.
   */
  readonly macroF1: number;
  /** Σ_k support_k · F1_k / count, with F1_k = 2TP / (2TP + FP + FN) (0 for a class never predicted). */
  readonly weightedF1: number;
  readonly perClass: ClassMetrics[];
  /** For two classes, the figures of the positive class; `null` for more than two classes. */
  readonly binary: BinaryMetrics | null;
  /**
   * Two classes: the AUC of the positive class's score. More classes: the macro one-vs-rest AUC, the mean of
   * the per-class AUCs that are defined. `null` when none is.
   */
  readonly auc: number | null;
  /** `confusion[label][predicted]` counts (rows are true classes). */
  readonly confusion: number[][];
}

export interface ClassificationMetricsOptions {
  /** The positive class of a two-class problem (default 1); ignored for more classes. */
  readonly positiveClass?: number;
}

/** `num / den`, or `null` when `den` is 0. */
function ratio(num: number, den: number): number | null {
  return den > 0 ? num / den : null;
}

/**
 * ROC AUC of `scores` for telling positives from negatives: the Mann–Whitney statistic
 * U / (P·N) = (R₊ − P(P+1)/2) / (P·N), where R₊ is the sum of the positives' ranks among all scores, tied
 * scores sharing the mean of their ranks. Equal to the probability that a random positive scores above a
 * random negative, ties counting ½ — exact for ties (no interpolation of the ROC curve needed).
 * `null` when there are no positives or no negatives. Scores must be finite.
 */
export function rocAuc(scores: ArrayLike<number>, positive: ArrayLike<boolean | number>): number | null {
  const n = scores.length;
  if (positive.length !== n) {
    throw new RangeError(`scores (${n}) and positive flags (${positive.length}) differ in length`);
  }
  let numPos = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(scores[i]!)) throw new RangeError(`score ${scores[i]} at ${i} is not finite`);
    if (positive[i]) numPos++;
  }
  const numNeg = n - numPos;
  if (numPos === 0 || numNeg === 0) return null;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    // Positions start..end-1 hold equal scores: ranks start+1..end, mean (start + 1 + end) / 2.
    const meanRank = (start + 1 + end) / 2;
    for (let j = start; j < end; j++) if (positive[order[j]!]) rankSumPos += meanRank;
    start = end;
  }
  return (rankSumPos - (numPos * (numPos + 1)) / 2) / (numPos * numNeg);
}

/** 1 where the prediction equals the label, else 0 (the per-image input of a McNemar test). */
export function correctPredictions(labels: Int32Array, predicted: Int32Array): Uint8Array {
  if (labels.length !== predicted.length) {
    throw new RangeError(`labels (${labels.length}) and predictions (${predicted.length}) differ in length`);
  }
  return Uint8Array.from(labels, (l, i) => (l === predicted[i] ? 1 : 0));
}

/** Throws a RangeError naming the first problem with the inputs of `classificationMetrics`. */
function validate(labels: Int32Array, proba: Float32Array, numClasses: number): void {
  if (numClasses < 2) throw new RangeError(`need at least 2 classes, got ${numClasses}`);
  if (labels.length === 0) throw new RangeError('no images to evaluate (labels is empty)');
  if (proba.length !== labels.length * numClasses) {
    throw new RangeError(
      `proba has ${proba.length} values, expected labels (${labels.length}) × classes (${numClasses}) = ` +
        `${labels.length * numClasses}`,
    );
  }
  labels.forEach((l, i) => {
    if (!(l >= 0 && l < numClasses)) throw new RangeError(`label ${l} at ${i} outside 0..${numClasses - 1}`);
  });
  proba.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new RangeError(`proba[${i}] = ${v} is not finite`);
  });
}

/**
 * Metrics of class scores `proba` (row-major `N × K`: probabilities, or any finite scores where larger means
 * more likely) against integer `labels` in `0..K-1`. The predicted class of an image is the argmax of its
 * row, ties going to the lower index (as `argmaxRows`). Throws a RangeError for inconsistent input.
 */
export function classificationMetrics(
  labels: Int32Array,
  proba: Float32Array,
  classNames: readonly string[],
  options: ClassificationMetricsOptions = {},
): ClassificationMetrics {
  const k = classNames.length;
  validate(labels, proba, k);
  const positiveClass = options.positiveClass ?? 1;
  if (!Number.isInteger(positiveClass) || positiveClass < 0 || positiveClass >= k) {
    throw new RangeError(`positiveClass ${positiveClass} outside 0..${k - 1}`);
  }
  const n = labels.length;
  const predicted = argmaxRows(proba, k);
  const confusion = confusionMatrix(labels, predicted, k);
  const { accuracy, balancedAccuracy, classCounts } = evaluateConfusion(confusion);

  const perClass = classNames.map((name, c): ClassMetrics => {
    const tp = confusion[c]![c]!;
    const support = classCounts[c]!;
    const predictedCount = confusion.reduce((a, row) => a + row[c]!, 0);
    const fp = predictedCount - tp;
    const fn = support - tp;
    const precision = ratio(tp, predictedCount);
    const recall = ratio(tp, support);
    const scores = Float64Array.from({ length: n }, (_, i) => proba[i * k + c]!);
    const isClass = Array.from(labels, (l) => l === c);
    return {
      name,
      support,
      precision,
      recall,
      specificity: ratio(n - support - fp, n - support),
      f1: precision === null || recall === null ? null : (2 * tp) / (2 * tp + fp + fn),
      auc: rocAuc(scores, isClass),
    };
  });

  // Dice form of F1 for the averages: defined (possibly 0) for every class in the labels or predictions.
  let f1Sum = 0;
  let f1Classes = 0;
  let weighted = 0;
  perClass.forEach((m, c) => {
    const tp = confusion[c]![c]!;
    const den = m.support + confusion.reduce((a, row) => a + row[c]!, 0); // 2TP + FP + FN
    if (den === 0) return;
    const f1 = (2 * tp) / den;
    f1Sum += f1;
    f1Classes++;
    weighted += m.support * f1;
  });

  let binary: BinaryMetrics | null = null;
  let auc: number | null;
  if (k === 2) {
    const pos = perClass[positiveClass]!;
    const neg = perClass[1 - positiveClass]!;
    binary = {
      positiveClass,
      positiveName: pos.name,
      sensitivity: pos.recall,
      specificity: neg.recall,
      ppv: pos.precision,
      npv: neg.precision,
      auc: pos.auc,
    };
    auc = pos.auc;
  } else {
    const defined = perClass.map((m) => m.auc).filter((a): a is number => a !== null);
    auc = defined.length > 0 ? defined.reduce((a, b) => a + b, 0) / defined.length : null;
  }

  return {
    count: n,
    accuracy,
    balancedAccuracy,
    macroF1: f1Sum / f1Classes,
    weightedF1: weighted / n,
    perClass,
    binary,
    auc,
    confusion,
  };
}
