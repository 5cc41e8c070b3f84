/**
 * Conventional (non-deep) image classifiers for downstream studies: hand-crafted texture features
 * (texture.ts: multi-radius LBP, GLCM, HOG) → optional z-scoring (statistics of the training set, stored)
 * → a maintained learner from the mljs family:
 *
 * - `random-forest`: an ensemble of `nEstimators` CART trees, each grown by ml-random-forest's
 *   `RandomForestClassifier` (one tree, Gini, `maxFeatures` — a fraction of the features drawn once per
 *   tree, the library's random-subspace scheme) on its own bootstrap sample drawn here: `maxSamples`
 *   images with replacement (all of them when fewer). We draw the samples ourselves because the library's
 *   CART scans every threshold with an O(n) pass (O(n²) per tree: ~0.3 s for 500 samples, minutes for
 *   5 000) and its bagging cannot be balanced; with `classWeights: 'balanced'` each tree's sample has the
 *   same number of images of every class (balanced random forest, Chen, Liaw & Breiman 2004). Class
 *   probabilities are the trees' vote shares (the library's `predictProbability` is not used: it seeds its
 *   vote count with the first tree's label).
 * - `logistic-regression`: ml-logistic-regression, one-vs-rest, full-batch gradient ascent from zero
 *   weights for `steps` steps of size `learningRate` on the mean gradient, with a bias feature; no penalty
 *   (the fixed step count is the only regulariser). Classifier j gives σ(x·w_j) = P(not j); the class
 *   probabilities are 1 − that, renormalised to sum 1. The library has no sample weights, so
 *   `classWeights: 'balanced'` replicates the images of smaller classes up to the largest class's count
 *   (⌊n_max/n_k⌋ copies each plus a seeded random subset for the remainder), which for a summed
 *   gradient is the same as weighting class k by n_max/n_k up to that rounding.
 *
 * Reproducible: bootstrap samples, tree seeds and the replication subset come from named sub-streams
 * (`bootstrap`, `trees`, `replicate`) of `seed`; same seed and data → identical probabilities.
 * Classes without training images are never predicted (probability 0); at least two classes must have
 * images.
 */
import LogisticRegression from 'ml-logistic-regression';
import { Matrix } from 'ml-matrix';
import { RandomForestClassifier } from 'ml-random-forest';
import { z } from 'zod';
import { resolveOptions } from '../config/data-options.js';
import type { ImageArray } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import { argmaxRows, confusionMatrix, evaluateConfusion } from './evaluation.js';
import { checkImages, checkLabelled, checkLabels, checkShape, classCounts } from './labelled.js';
import {
  FEATURE_SETS,
  TextureOptionsSchema,
  featureNames,
  textureFeatures,
  type FeatureMatrix,
  type FeatureSet,
  type TextureOptions,
} from './texture.js';
import type { ClassificationEvaluation, EpochRecord, LabelledImages, TrainedClassifier } from './types.js';
import { yieldToEventLoop } from '../runtime/yield.js';

export const CONVENTIONAL_LEARNERS = ['random-forest', 'logistic-regression'] as const;
export type ConventionalLearner = (typeof CONVENTIONAL_LEARNERS)[number];

export const CONVENTIONAL_PRESETS = ['lbp-rf', 'texture-lr'] as const;
export type ConventionalPreset = (typeof CONVENTIONAL_PRESETS)[number];

/**
 * The studies' two named set-ups, both class-balanced. `lbp-rf`: multi-radius riu2 LBP (P, R) = (8, 1),
 * (16, 2), (24, 3) + random forest — the seed study's method. `texture-lr`: GLCM (16 levels, distances 1
 * and 2) + HOG (8-px cells, 2×2 blocks) + z-scored logistic regression: global grey-level statistics and
 * gradient layout, complementing LBP's micro-texture. Measured on PneumoniaMNIST-28 (train 4 708 →
 * test 624), logistic regression's balanced accuracy was 0.83–0.86 for every feature set tried (LBP,
 * GLCM, HOG and their unions), so the choice is by content and cost (156 features, ~10 s).
 */
export const PRESET_OPTIONS: Readonly<Record<ConventionalPreset, ConventionalOptionsInput>> = {
  'lbp-rf': { features: 'lbp', learner: 'random-forest', classWeights: 'balanced' },
  'texture-lr': { features: 'glcm+hog', learner: 'logistic-regression', classWeights: 'balanced' },
};

export const ConventionalOptionsSchema = z
  .object({
    /** A named set-up whose values fill in the options not given (see `PRESET_OPTIONS`); kept for the record. */
    preset: z.enum(CONVENTIONAL_PRESETS).nullable().default(null),
    /** Texture feature set (texture.ts). */
    features: z.enum(FEATURE_SETS).default('lbp'),
    /** Extractor settings (LBP scales, GLCM levels/distances, HOG cells). */
    texture: TextureOptionsSchema.prefault({}),
    learner: z.enum(CONVENTIONAL_LEARNERS).default('random-forest'),
    /** Root seed of bootstrap samples, tree seeds and class-balancing draws. */
    seed: z.number().int().min(0).default(0),
    /** Z-score every feature with the training set's mean and standard deviation (stored with the model). */
    standardise: z.boolean().default(true),
    /** 'balanced': balanced bootstrap samples (forest) or replication of smaller classes (logistic). */
    classWeights: z.enum(['none', 'balanced']).default('none'),
    /** Forest: trees. */
    nEstimators: z.number().int().min(1).max(10_000).default(100),
    /** Forest: fraction of the features each tree may split on (drawn once per tree, without replacement). */
    maxFeatures: z.number().gt(0).max(1).default(0.3),
    /** Forest: images in each tree's bootstrap sample (capped at the training set size; split equally between the classes with images when balanced, rounded up). */
    maxSamples: z.number().int().min(2).max(1_000_000).default(500),
    /** Forest: a node with this many samples or fewer becomes a leaf (ml-cart's `minNumSamples`). */
    minNumSamples: z.number().int().min(1).default(3),
    /** Forest: deepest split level; `null` for no limit. */
    maxDepth: z.number().int().min(1).nullable().default(null),
    /** Logistic regression: gradient steps. */
    steps: z.number().int().min(1).max(1_000_000).default(300),
    /** Logistic regression: step size on the mean gradient. */
    learningRate: z.number().positive().max(100).default(0.5),
  })
  .strict();

/** Options as a caller writes them (everything optional). */
export type ConventionalOptionsInput = z.input<typeof ConventionalOptionsSchema>;
/** Fully resolved, frozen options (JSON). */
export type ConventionalOptions = z.output<typeof ConventionalOptionsSchema>;

/**
 * Validates options (a `ConfigError` names the bad field) and fills in defaults: first the preset's
 * values (when `preset` is given), then the schema defaults; options given explicitly win over both.
 */
export function resolveConventionalOptions(input: ConventionalOptionsInput = {}): ConventionalOptions {
  const preset = typeof input.preset === 'string' ? PRESET_OPTIONS[input.preset] : undefined;
  // An unknown preset name is left to the schema to reject (with the field named).
  return resolveOptions(ConventionalOptionsSchema, preset ? { ...preset, ...input } : input, 'classifier');
}

/** JSON description of a trained conventional classifier, for run metadata and reports. */
export interface ConventionalSummary {
  readonly kind: 'conventional';
  readonly preset: ConventionalPreset | null;
  readonly classNames: readonly string[];
  readonly inputShape: readonly [number, number, 1 | 3];
  readonly features: FeatureSet;
  readonly learner: ConventionalLearner;
  /** Feature dimension. */
  readonly dim: number;
  readonly trainCount: number;
  /** Training images per class. */
  readonly classCounts: readonly number[];
  /** Wall-clock seconds of training (feature extraction included). */
  readonly seconds: number;
  /** Of which feature extraction. */
  readonly featureSeconds: number;
  readonly options: ConventionalOptions;
}

/** A fitted learner on (standardised) feature rows. */
interface FittedLearner {
  /** Row-major `N × K` class probabilities of the rows of `x` (`N × dim`). */
  probabilities(x: Float64Array, rows: number): Float32Array;
}

/** Lets timers and abort signals run between chunks of work. */

const FEATURE_CHUNK = 256;

/** Texture features of `images` in chunks, yielding between them; ticks with unit `images`. */
async function extractFeatures(
  images: ImageArray,
  set: FeatureSet,
  texture: TextureOptions,
  control: RunControl,
  phase: string,
): Promise<FeatureMatrix> {
  const { onProgress, signal } = control;
  const names = featureNames(set, images.height, images.width, texture);
  const cols = names.length;
  const data = new Float64Array(images.count * cols);
  const per = images.height * images.width * images.channels;
  for (let start = 0; start < images.count; start += FEATURE_CHUNK) {
    signal?.throwIfAborted();
    const n = Math.min(FEATURE_CHUNK, images.count - start);
    const chunk: ImageArray = {
      ...images,
      data: images.data.subarray(start * per, (start + n) * per),
      count: n,
    };
    data.set(textureFeatures(chunk, set, texture).data, start * cols);
    onProgress?.({ type: 'tick', phase, done: start + n, total: images.count, unit: 'images' });
    if (start + n < images.count) await yieldToEventLoop();
  }
  return { data, rows: images.count, cols, names };
}

/** Per-column mean and standard deviation (population; 1 where a column is constant). */
function columnStats(m: FeatureMatrix): { mean: Float64Array; scale: Float64Array } {
  const { rows, cols, data } = m;
  const mean = new Float64Array(cols);
  const scale = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j]! += data[i * cols + j]!;
  for (let j = 0; j < cols; j++) mean[j]! /= rows;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const d = data[i * cols + j]! - mean[j]!;
      scale[j]! += d * d;
    }
  }
  for (let j = 0; j < cols; j++) {
    const sd = Math.sqrt(scale[j]! / rows);
    scale[j] = sd > 1e-12 ? sd : 1;
  }
  return { mean, scale };
}

/** Standardises a feature matrix's data in place. */
function standardiseInPlace(data: Float64Array, cols: number, mean: Float64Array, scale: Float64Array): void {
  for (let k = 0; k < data.length; k++) {
    const j = k % cols;
    data[k] = (data[k]! - mean[j]!) / scale[j]!;
  }
}

/** Rows `idx` of a row-major matrix as arrays (what the mljs learners take). */
function rowArrays(x: Float64Array, cols: number, idx: ArrayLike<number>, bias = false): number[][] {
  const out: number[][] = new Array<number[]>(idx.length);
  for (let r = 0; r < idx.length; r++) {
    const i = idx[r]!;
    const row = new Array<number>(cols + (bias ? 1 : 0));
    for (let j = 0; j < cols; j++) row[j] = x[i * cols + j]!;
    if (bias) row[cols] = 1;
    out[r] = row;
  }
  return out;
}

/** Training image indices of each class. */
function indicesByClass(labels: Int32Array, numClasses: number): number[][] {
  const by = Array.from({ length: numClasses }, () => [] as number[]);
  labels.forEach((l, i) => by[l]!.push(i));
  return by;
}

// ----------------------------------------------------------------------------------------- forest

class Forest implements FittedLearner {
  constructor(
    private readonly trees: RandomForestClassifier[],
    private readonly numClasses: number,
    private readonly cols: number,
  ) {}

  probabilities(x: Float64Array, rows: number): Float32Array {
    const K = this.numClasses;
    if (rows === 0) return new Float32Array(0);
    const votes = new Float64Array(rows * K);
    const m = new Matrix(
      rowArrays(
        x,
        this.cols,
        Int32Array.from({ length: rows }, (_, i) => i),
      ),
    );
    for (const tree of this.trees) {
      const p = tree.predict(m);
      for (let i = 0; i < rows; i++) votes[i * K + p[i]!]!++;
    }
    const out = new Float32Array(rows * K);
    for (let k = 0; k < out.length; k++) out[k] = votes[k]! / this.trees.length;
    return out;
  }
}

/**
 * `maxFeatures` as ml-random-forest reads it: a float in (0, 1] is a fraction of the columns, floored (an
 * integer 1 would also read as "all"); we pass (k + ½)/cols so that exactly k = max(1, ⌊cols·f⌋) columns
 * are drawn.
 */
function libraryMaxFeatures(fraction: number, cols: number): { k: number; value: number } {
  const k = Math.max(1, Math.min(cols, Math.floor(cols * fraction + 1e-9)));
  return { k, value: k === cols ? 1.0 : (k + 0.5) / cols };
}

async function trainForest(
  x: Float64Array,
  cols: number,
  labels: Int32Array,
  numClasses: number,
  o: ConventionalOptions,
  control: RunControl,
  phase: string,
): Promise<Forest> {
  const { onProgress, signal } = control;
  const n = labels.length;
  const size = Math.min(o.maxSamples, n);
  const byClass = indicesByClass(labels, numClasses).filter((c) => c.length > 0);
  const bootstrap = Rng.derive(o.seed, 'bootstrap');
  const treeSeeds = Rng.derive(o.seed, 'trees');
  const maxFeatures = libraryMaxFeatures(o.maxFeatures, cols).value;
  const treeOptions = {
    minNumSamples: o.minNumSamples,
    ...(o.maxDepth === null ? {} : { maxDepth: o.maxDepth }),
  };
  const trees: RandomForestClassifier[] = [];
  for (let t = 0; t < o.nEstimators; t++) {
    signal?.throwIfAborted();
    const idx: number[] = [];
    if (o.classWeights === 'balanced') {
      const per = Math.ceil(size / byClass.length);
      for (const members of byClass)
        for (let j = 0; j < per; j++) idx.push(members[bootstrap.int(members.length)]!);
    } else {
      for (let j = 0; j < size; j++) idx.push(bootstrap.int(n));
    }
    const tree = new RandomForestClassifier({
      nEstimators: 1,
      maxFeatures,
      replacement: false,
      useSampleBagging: false,
      noOOB: true,
      seed: treeSeeds.int(2 ** 31 - 1),
      treeOptions,
    });
    tree.train(
      rowArrays(x, cols, idx),
      idx.map((i) => labels[i]!),
    );
    trees.push(tree);
    onProgress?.({ type: 'tick', phase, done: t + 1, total: o.nEstimators, unit: 'trees' });
    await yieldToEventLoop();
  }
  return new Forest(trees, numClasses, cols);
}

// --------------------------------------------------------------------------------------- logistic

class Logistic implements FittedLearner {
  constructor(
    private readonly model: LogisticRegression,
    /** Class index of each library class (the present classes in order). */
    private readonly classes: readonly number[],
    private readonly numClasses: number,
    private readonly cols: number,
  ) {}

  probabilities(x: Float64Array, rows: number): Float32Array {
    const K = this.numClasses;
    const out = new Float32Array(rows * K);
    if (rows === 0) return out;
    const m = new Matrix(
      rowArrays(
        x,
        this.cols,
        Int32Array.from({ length: rows }, (_, i) => i),
        true,
      ),
    );
    const scores = this.model.classifiers.map((c) => c.testScores(m));
    for (let i = 0; i < rows; i++) {
      let sum = 0;
      for (const s of scores) sum += 1 - s[i]!;
      this.classes.forEach((k, c) => {
        const p = 1 - scores[c]![i]!;
        out[i * K + k] = sum > 0 ? p / sum : 1 / this.classes.length;
      });
    }
    return out;
  }
}

/** Training rows for the balanced logistic regression: every image ⌊n_max/n_k⌋ times plus a seeded remainder. */
function replicateToBalance(byClass: readonly number[][], rng: Rng): number[] {
  const nMax = Math.max(...byClass.map((c) => c.length));
  const out: number[] = [];
  for (const members of byClass) {
    if (members.length === 0) continue;
    const copies = Math.floor(nMax / members.length);
    for (let c = 0; c < copies; c++) out.push(...members);
    const rest = nMax - copies * members.length;
    if (rest > 0) out.push(...rng.shuffle([...members]).slice(0, rest));
  }
  return out;
}

async function trainLogistic(
  x: Float64Array,
  cols: number,
  labels: Int32Array,
  numClasses: number,
  o: ConventionalOptions,
  control: RunControl,
  phase: string,
): Promise<Logistic> {
  control.signal?.throwIfAborted();
  const byClass = indicesByClass(labels, numClasses);
  const classes = byClass.flatMap((c, k) => (c.length > 0 ? [k] : []));
  const libraryClass = new Int32Array(numClasses).fill(-1);
  classes.forEach((k, c) => (libraryClass[k] = c));
  const idx =
    o.classWeights === 'balanced'
      ? replicateToBalance(byClass, Rng.derive(o.seed, 'replicate'))
      : Array.from({ length: labels.length }, (_, i) => i);
  const X = new Matrix(rowArrays(x, cols, idx, true));
  const Y = Matrix.columnVector(idx.map((i) => libraryClass[labels[i]!]!));
  const model = new LogisticRegression({ numSteps: o.steps, learningRate: o.learningRate / idx.length });
  control.onProgress?.({
    type: 'phase',
    phase,
    detail: `logistic regression, ${idx.length} rows × ${cols + 1}, ${o.steps} steps, ${classes.length} one-vs-rest`,
  });
  await yieldToEventLoop();
  model.train(X, Y);
  return new Logistic(model, classes, numClasses, cols);
}

// ------------------------------------------------------------------------------------- classifier

/** A trained texture-feature classifier. Holds only plain JS objects: `dispose()` just forgets them. */
export class ConventionalClassifier implements TrainedClassifier {
  readonly history: readonly EpochRecord[] = [];
  readonly bestEpoch = 1;
  readonly stoppedEarly = false;
  #learner: FittedLearner | null;

  /** @internal Built by `trainConventional`. */
  constructor(
    learner: FittedLearner,
    readonly classNames: readonly string[],
    readonly inputShape: readonly [number, number, 1 | 3],
    readonly options: ConventionalOptions,
    readonly dim: number,
    readonly featureNames: readonly string[],
    private readonly mean: Float64Array | null,
    private readonly scale: Float64Array | null,
    readonly trainCount: number,
    readonly trainClassCounts: readonly number[],
    readonly seconds: number,
    readonly featureSeconds: number,
  ) {
    this.#learner = learner;
  }

  #fitted(): FittedLearner {
    if (!this.#learner) throw new Error('the classifier was disposed');
    return this.#learner;
  }

  /** The (standardised, when the options say so) feature rows the learner sees: row-major `[N, dim]`. */
  features(images: ImageArray, control: RunControl = {}): Promise<FeatureMatrix> {
    checkImages(images, 'images', true);
    checkShape(images, this.inputShape, 'images');
    return this.#features(images, control);
  }

  async #features(images: ImageArray, control: RunControl): Promise<FeatureMatrix> {
    const m = await extractFeatures(images, this.options.features, this.options.texture, control, 'features');
    if (this.mean && this.scale) standardiseInPlace(m.data, m.cols, this.mean, this.scale);
    return m;
  }

  /** Class probabilities, row-major `N × K`. `batchSize` is accepted for the interface and not needed. */
  async predictProba(images: ImageArray, batchSize?: number): Promise<Float32Array> {
    const learner = this.#fitted();
    checkImages(images, 'images', true);
    checkShape(images, this.inputShape, 'images');
    if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1)) {
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    const m = await this.#features(images, {});
    return learner.probabilities(m.data, m.rows);
  }

  async predict(images: ImageArray, batchSize?: number): Promise<Int32Array> {
    return argmaxRows(await this.predictProba(images, batchSize), this.classNames.length);
  }

  async evaluate(
    images: ImageArray,
    labels: Int32Array,
    batchSize?: number,
  ): Promise<ClassificationEvaluation> {
    checkImages(images, 'images');
    checkLabels(images, labels, this.classNames.length, 'images');
    const predicted = await this.predict(images, batchSize);
    return evaluateConfusion(confusionMatrix(labels, predicted, this.classNames.length));
  }

  describe(): ConventionalSummary {
    return {
      kind: 'conventional',
      preset: this.options.preset,
      classNames: [...this.classNames],
      inputShape: this.inputShape,
      features: this.options.features,
      learner: this.options.learner,
      dim: this.dim,
      trainCount: this.trainCount,
      classCounts: [...this.trainClassCounts],
      seconds: this.seconds,
      featureSeconds: this.featureSeconds,
      options: this.options,
    };
  }

  /** Nothing native to free; the classifier cannot be used afterwards. */
  dispose(): void {
    this.#learner = null;
  }
}

/**
 * Trains a conventional classifier on `train`: texture features, optional z-scoring, then the learner (see
 * the module comment). Emits `phase` events, `tick`s for feature extraction (unit `images`) and trees (unit
 * `trees`), and `done`; honours `control.signal` between chunks and trees. Bad input → `DatasetError`
 * naming the field (fewer than 2 images or fewer than 2 classes with images included); bad options →
 * `ConfigError`.
 */
export async function trainConventional(
  train: LabelledImages,
  options: ConventionalOptionsInput = {},
  control: RunControl = {},
): Promise<ConventionalClassifier> {
  const o = resolveConventionalOptions(options);
  checkLabelled(train, 'train');
  const { images, labels } = train;
  if (images.count < 2) {
    throw new DatasetError('a classifier needs at least 2 training images', {
      field: 'train',
      found: String(images.count),
    });
  }
  const K = train.classNames.length;
  const counts = classCounts(labels, K);
  const present = counts.filter((c) => c > 0).length;
  if (present < 2) {
    throw new DatasetError('the training images must cover at least 2 classes', {
      field: 'train.labels',
      expected: 'images of at least 2 classes',
      found: `only class ${counts.findIndex((c) => c > 0)} ("${train.classNames[counts.findIndex((c) => c > 0)]}")`,
    });
  }
  const { onProgress, signal } = control;
  signal?.throwIfAborted();
  const shape: [number, number, 1 | 3] = [images.height, images.width, images.channels];
  const phase = 'train conventional classifier';
  const started = performance.now();
  onProgress?.({
    type: 'phase',
    phase,
    detail: `${images.count} images ${shape.join('×')}, ${K} classes, ${o.features} features, ${o.learner}`,
  });

  const m = await extractFeatures(images, o.features, o.texture, control, 'texture features');
  const featureSeconds = (performance.now() - started) / 1000;
  let mean: Float64Array | null = null;
  let scale: Float64Array | null = null;
  if (o.standardise) {
    ({ mean, scale } = columnStats(m));
    standardiseInPlace(m.data, m.cols, mean, scale);
  }
  const learner =
    o.learner === 'random-forest'
      ? await trainForest(m.data, m.cols, labels, K, o, control, phase)
      : await trainLogistic(m.data, m.cols, labels, K, o, control, phase);
  const seconds = (performance.now() - started) / 1000;
  onProgress?.({ type: 'done', phase, seconds });
  return new ConventionalClassifier(
    learner,
    [...train.classNames],
    shape,
    o,
    m.cols,
    m.names,
    mean,
    scale,
    images.count,
    counts,
    seconds,
    featureSeconds,
  );
}
