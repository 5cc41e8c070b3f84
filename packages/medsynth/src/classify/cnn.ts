/**
 * Deep CNN image classifiers, trained with a custom loop (`optimizer.minimize` inside `tf.tidy`; no
 * `model.fit`). The small one serves as the judge of generated images (metrics/class-fidelity.ts); all of
 * them serve as downstream classifiers of real/synthetic studies.
 *
 * Architecture (`architecture`, see architectures.ts): `small` (default), sized by the image's shorter side
 * s: `blocks` = clamp(⌊log2(s/7)⌋, 2, 4) (28–32 px → 2, 64 → 3, 128 → 4) blocks of [conv3×3 → BN → ReLU] ×2
 * → maxpool 2×2, with `width`·2^b channels in block b; then global average pooling → dropout → dense K
 * (logits). `resnet` is ResNet-18 style and `vgg` VGG style, both with the same dropout → dense head. Inputs
 * are float32 NHWC in [-1, 1] at the size the images come in (the caller resizes); 1 or 3 channels.
 *
 * Augmentation of training batches (`augment`, off by default; `classicAugment` is the usual set): flips,
 * shifts, rotations (bilinear), brightness and contrast jitter — see `augmentBatch`.
 *
 * Reproducible: initialisers are seeded, and data order, augmentation and dropout masks come from named
 * sub-streams (`init`, `data`, `augment`, `dropout`) of the seed — same seed, same backend and threads →
 * same weights and predictions.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { resolveOptions } from '../config/data-options.js';
import { imagesToFloat } from '../data/image/tensors.js';
import type { ImageArray } from '../data/types.js';
import { CheckpointError, DatasetError, TrainingError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import {
  ARCHITECTURES,
  buildNetworks,
  type CnnArchitecture,
  type CnnNetworks,
  resolveBlocks,
} from './architectures.js';
import { argmaxRows, confusionMatrix, evaluateConfusion } from './evaluation.js';
import { checkImages, checkLabelled, checkLabels, checkShape, classCounts } from './labelled.js';
import type {
  ClassificationEvaluation,
  EpochRecord,
  ImagesWithLabels,
  LabelledImages,
  TrainedClassifier,
} from './types.js';
import { yieldToEventLoop } from '../runtime/yield.js';

const MONITORS = ['valLoss', 'valAccuracy', 'valBalancedAccuracy'] as const;
export type CnnMonitor = (typeof MONITORS)[number];

const positive = z.number().positive();

/** Augmentation of training batches (all off): what `augment` resolves to by default. */
const NO_AUGMENT = Object.freeze({
  flip: false,
  verticalFlip: false,
  shift: 0,
  rotate: 0,
  brightness: 0,
  contrast: 0,
});

export const CnnOptionsSchema = z
  .object({
    /** Root seed: initialisers, data order, augmentation and dropout get named sub-seeds of it. */
    seed: z.number().int().min(0).default(0),
    /** Most epochs (early stopping may end sooner when a validation set is given); ignored when `steps` is set. */
    epochs: z.number().int().min(1).max(10_000).default(30),
    /**
     * Train for exactly this many optimiser steps, whatever the training set's size: passes over the data
     * (epochs) repeat, the last one cut short at the budget; `epochs` is then ignored and early stopping never
     * ends training early; with a validation set the check still runs at the end of each pass (and at the end
     * of training), and the weights of the best check are restored as usual. For "equal steps" controls: every
     * data condition gets the same number of updates, so a larger set does not simply train longer.
     */
    steps: z.number().int().min(1).max(10_000_000).optional(),
    batchSize: z.number().int().min(2).max(4096).default(64),
    /** Adam step size (β1 0.9, β2 0.999, ε 1e-8). */
    learningRate: positive.max(1).default(1e-3),
    /** Network: 'small' (the judge's CNN), 'resnet' (ResNet-18 style), 'vgg' (VGG style); see architectures.ts. */
    architecture: z.enum(ARCHITECTURES).default('small'),
    /** Base width: channels of the first conv block or stage (block b has width·2^b; vgg caps at 8·width). */
    width: z.number().int().min(1).max(512).default(16),
    /**
     * Step size over training: constant, or cosine decay from `learningRate` to 0 over training (`epochs`
     * epochs, or `steps` steps when that is set).
     */
    schedule: z.enum(['constant', 'cosine']).default('cosine'),
    /** Conv blocks (small) or stages (resnet, vgg); 'auto' sizes them by the image side (architectures.ts). */
    blocks: z.union([z.literal('auto'), z.number().int().min(1).max(6)]).default('auto'),
    /** Dropout rate before the dense layer. */
    dropout: z.number().min(0).max(0.9).default(0.3),
    /** Loss weight of each class: 'none' (all 1), 'balanced' (N / (K·n_k)), or one positive weight per class. */
    classWeights: z.union([z.enum(['none', 'balanced']), z.array(positive).min(2)]).default('none'),
    /**
     * Augmentation of training batches, each image drawn on its own (off by default): horizontal (`flip`) and
     * vertical (`verticalFlip`) flips with p = 0.5; shifts of up to `shift`·side whole pixels in both axes;
     * rotations by up to ±`rotate` degrees about the centre (bilinear); brightness (×U[1 ± `brightness`] on
     * the [0, 1] intensity scale) and contrast (blend with the image mean by U[1 ± `contrast`]) jitter,
     * clamped to the intensity range. Pixels moved in from outside the image are black (-1).
     */
    augment: z
      .object({
        flip: z.boolean().default(false),
        verticalFlip: z.boolean().default(false),
        shift: z.number().min(0).max(0.5).default(0),
        rotate: z.number().min(0).max(180).default(0),
        brightness: z.number().min(0).max(1).default(0),
        contrast: z.number().min(0).max(1).default(0),
      })
      .strict()
      .default({ ...NO_AUGMENT }),
    /**
     * Early stopping (with a validation set): stop after `patience` epochs without improvement of `monitor`,
     * then restore the best epoch's weights. With `steps`, training never stops early; the best epoch's weights
     * are still restored.
     */
    patience: z.number().int().min(1).default(5),
    monitor: z.enum(MONITORS).default('valLoss'),
    /** Improvement smaller than this does not count. */
    minDelta: z.number().min(0).default(0),
    /** Batch size of inference (validation, prediction). */
    predictBatchSize: z.number().int().min(1).max(65_536).default(256),
  })
  .strict();

/** Options as a caller writes them (everything optional). */
export type CnnOptionsInput = z.input<typeof CnnOptionsSchema>;
/** Fully resolved, frozen options (JSON): what the classifier was trained with. */
export type CnnOptions = z.output<typeof CnnOptionsSchema>;

/** Validates options (a `ConfigError` names the bad field) and fills in defaults. */
export function resolveCnnOptions(input: CnnOptionsInput = {}): CnnOptions {
  return resolveOptions(CnnOptionsSchema, input, 'classifier') as CnnOptions;
}

export const DEFAULT_CNN_OPTIONS: CnnOptions = resolveCnnOptions();

/** Augmentation settings of training batches (`options.augment`). */
export type CnnAugment = CnnOptions['augment'];

/**
 * The classic augmentation set for downstream studies: horizontal flips, shifts up to 10 %, rotations up to
 * ±10°, brightness and contrast jitter of ±10 % (no vertical flips). Use as `{ augment: classicAugment }`.
 */
export const classicAugment: Readonly<CnnAugment> = Object.freeze({
  ...NO_AUGMENT,
  flip: true,
  shift: 0.1,
  rotate: 10,
  brightness: 0.1,
  contrast: 0.1,
});

/** What `trainCnn` takes besides the training set: options, plus an optional validation set for early stopping. */
export type CnnTrainOptions = CnnOptionsInput & {
  /** Images and labels (same classes as the training set) monitored each epoch for early stopping. */
  readonly validation?: ImagesWithLabels | undefined;
};

export { ARCHITECTURES, autoBlocks, type CnnArchitecture, type CnnNetworks } from './architectures.js';

/** JSON description of a trained CNN, for run metadata and reports. */
export interface CnnSummary {
  readonly kind: 'cnn';
  readonly architecture: CnnArchitecture;
  readonly classNames: readonly string[];
  readonly inputShape: readonly [number, number, 1 | 3];
  /** Conv blocks (small) or stages (resnet, vgg). */
  readonly blocks: number;
  readonly parameters: number;
  readonly options: CnnOptions;
  readonly trainCount: number;
  /** What bounded training: `epochs` passes (early stopping may end it sooner), or exactly `steps` optimiser steps. */
  readonly budget: CnnBudget;
  /** Optimiser steps taken (equal to `options.steps` under a step budget). */
  readonly steps: number;
  /** One record per pass over the data; under a step budget each also has the pass's optimiser `steps`. */
  readonly history: readonly CnnEpochRecord[];
  readonly bestEpoch: number;
  readonly stoppedEarly: boolean;
  readonly trainSeconds: number;
}

/** What bounds training: `options.epochs` passes, or exactly `options.steps` optimiser steps. */
export type CnnBudget = 'epochs' | 'steps';

/** A CNN's record of one pass over the data. */
export interface CnnEpochRecord extends EpochRecord {
  /** Optimiser steps in this pass: recorded under a step budget only (the last pass may be cut short). */
  readonly steps?: number;
}

/** Optimiser steps of one pass over `count` images: a last batch of one image sits the pass out. */
function stepsPerEpoch(count: number, batchSize: number): number {
  return Math.floor(count / batchSize) + (count % batchSize >= 2 ? 1 : 0);
}

/** Loss weight of each class. */
function lossWeights(o: CnnOptions, labels: Int32Array, numClasses: number): Float64Array {
  const w = new Float64Array(numClasses).fill(1);
  if (o.classWeights === 'balanced') {
    const counts = classCounts(labels, numClasses);
    counts.forEach((n, k) => {
      w[k] = n > 0 ? labels.length / (numClasses * n) : 0;
    });
  } else if (Array.isArray(o.classWeights)) {
    if (o.classWeights.length !== numClasses) {
      throw new DatasetError('one class weight per class is needed', {
        field: 'classWeights',
        expected: `${numClasses} weights`,
        found: `${o.classWeights.length}`,
      });
    }
    o.classWeights.forEach((v, k) => {
      w[k] = v;
    });
  }
  return w;
}

/** One image's augmentation, drawn by `augmentBatch`; every field optional (identity). */
export interface ImageTransform {
  /** Mirror left–right. */
  readonly flip?: boolean;
  /** Mirror top–bottom. */
  readonly verticalFlip?: boolean;
  /** Shift right / down by whole pixels. */
  readonly dx?: number;
  readonly dy?: number;
  /** Rotation about the image centre, degrees, counter-clockwise as displayed (rows down). */
  readonly angle?: number;
  /** Intensity factor on the [0, 1] scale (1 = unchanged). */
  readonly brightness?: number;
  /** Contrast factor: blend with the image's mean intensity (1 = unchanged). */
  readonly contrast?: number;
}

/**
 * Applies `t` to one float HWC image in [-1, 1] (`src`, row-major) and writes the result to `dst` (same
 * length, not `src`). Geometry, as an inverse map from each output pixel: the image is rotated about its
 * centre, then flipped, then shifted; pixels from outside are -1 (black), with bilinear interpolation
 * against that border when rotated (whole-pixel copies otherwise). Then brightness, then contrast, each
 * clamped to [-1, 1].
 */
export function transformImage(
  src: Float32Array,
  dst: Float32Array,
  shape: readonly [number, number, number],
  t: ImageTransform,
): void {
  const [h, w, c] = shape;
  const dx = t.dx ?? 0;
  const dy = t.dy ?? 0;
  const angle = t.angle ?? 0;
  if (angle === 0) {
    for (let y = 0; y < h; y++) {
      const sy0 = y - dy;
      const sy = t.verticalFlip ? h - 1 - sy0 : sy0;
      for (let xx = 0; xx < w; xx++) {
        const sx0 = xx - dx;
        const sx = t.flip ? w - 1 - sx0 : sx0;
        const o = (y * w + xx) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (let k = 0; k < c; k++) dst[o + k] = -1;
        } else {
          const s = (sy * w + sx) * c;
          for (let k = 0; k < c; k++) dst[o + k] = src[s + k]!;
        }
      }
    }
  } else {
    const rad = (angle * Math.PI) / 180;
    const cos = Math.cos(rad);
    const sin = Math.sin(rad);
    const cx = (w - 1) / 2;
    const cy = (h - 1) / 2;
    const at = (yy: number, xx: number, k: number) =>
      yy < 0 || yy >= h || xx < 0 || xx >= w ? -1 : src[(yy * w + xx) * c + k]!;
    for (let y = 0; y < h; y++) {
      const v0 = y - dy;
      const v = (t.verticalFlip ? h - 1 - v0 : v0) - cy;
      for (let xx = 0; xx < w; xx++) {
        const u0 = xx - dx;
        const u = (t.flip ? w - 1 - u0 : u0) - cx;
        const sx = cx + cos * u - sin * v;
        const sy = cy + sin * u + cos * v;
        const o = (y * w + xx) * c;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        if (x0 < -1 || x0 >= w || y0 < -1 || y0 >= h) {
          for (let k = 0; k < c; k++) dst[o + k] = -1;
          continue;
        }
        const fx = sx - x0;
        const fy = sy - y0;
        for (let k = 0; k < c; k++) {
          const top = at(y0, x0, k) * (1 - fx) + at(y0, x0 + 1, k) * fx;
          const bottom = at(y0 + 1, x0, k) * (1 - fx) + at(y0 + 1, x0 + 1, k) * fx;
          dst[o + k] = top * (1 - fy) + bottom * fy;
        }
      }
    }
  }
  const brightness = t.brightness ?? 1;
  const contrast = t.contrast ?? 1;
  const per = h * w * c;
  if (brightness !== 1) {
    // On the [0, 1] scale: v01 ← clamp(v01·b); in [-1, 1]: v ← clamp((v + 1)·b − 1).
    for (let i = 0; i < per; i++) dst[i] = Math.min(1, Math.max(-1, (dst[i]! + 1) * brightness - 1));
  }
  if (contrast !== 1) {
    let mean = 0;
    for (let i = 0; i < per; i++) mean += dst[i]!;
    mean /= per;
    for (let i = 0; i < per; i++) dst[i] = Math.min(1, Math.max(-1, (dst[i]! - mean) * contrast + mean));
  }
}

/** Whether `aug` changes anything. */
function augmentsImages(aug: CnnAugment): boolean {
  return (
    aug.flip || aug.verticalFlip || aug.shift > 0 || aug.rotate > 0 || aug.brightness > 0 || aug.contrast > 0
  );
}

/**
 * Augments the images of a float NHWC batch (values in [-1, 1]) in place, each with its own transform drawn
 * from `rng` (see the `augment` option and `transformImage`). Per image it draws, in this order and only for
 * the settings that are on: flip, shift y, shift x, vertical flip, angle, brightness, contrast — so a batch
 * augmented with only flips and shifts draws what it always did.
 */
export function augmentBatch(
  x: Float32Array,
  count: number,
  shape: readonly [number, number, number],
  aug: CnnAugment,
  rng: Rng,
): void {
  const [h, w, c] = shape;
  const per = h * w * c;
  const maxDy = Math.round(aug.shift * h);
  const maxDx = Math.round(aug.shift * w);
  const jitter = (max: number) => (max > 0 ? 1 + max * (2 * rng.next() - 1) : 1);
  const src = new Float32Array(per);
  for (let n = 0; n < count; n++) {
    const flip = aug.flip && rng.next() < 0.5;
    const dy = maxDy > 0 ? rng.int(2 * maxDy + 1) - maxDy : 0;
    const dx = maxDx > 0 ? rng.int(2 * maxDx + 1) - maxDx : 0;
    const verticalFlip = aug.verticalFlip && rng.next() < 0.5;
    const angle = aug.rotate > 0 ? aug.rotate * (2 * rng.next() - 1) : 0;
    const brightness = jitter(aug.brightness);
    const contrast = jitter(aug.contrast);
    if (!flip && !verticalFlip && dx === 0 && dy === 0 && angle === 0 && brightness === 1 && contrast === 1)
      continue;
    const img = x.subarray(n * per, (n + 1) * per);
    src.set(img);
    transformImage(src, img, shape, { flip, verticalFlip, dx, dy, angle, brightness, contrast });
  }
}

/** Class probabilities of `images` through the networks in inference mode, batch by batch. */
async function probabilities(
  net: CnnNetworks,
  numClasses: number,
  images: ImageArray,
  batchSize: number,
): Promise<Float32Array> {
  const out = new Float32Array(images.count * numClasses);
  for (let start = 0; start < images.count; start += batchSize) {
    const n = Math.min(batchSize, images.count - start);
    const idx = Int32Array.from({ length: n }, (_, i) => start + i);
    const x = imagesToFloat(images, idx);
    const p = tf.tidy(() => {
      const xt = tf.tensor4d(x, [n, images.height, images.width, images.channels]);
      const features = net.body.apply(xt, { training: false }) as tf.Tensor2D;
      return tf.softmax(net.head.apply(features, { training: false }) as tf.Tensor2D);
    });
    try {
      out.set((await p.data()) as Float32Array, start * numClasses);
    } finally {
      p.dispose();
    }
  }
  return out;
}

/** Penultimate-layer features (the globally pooled body output) of `images`, batch by batch: `[N, C]`. */
async function bodyFeatures(net: CnnNetworks, images: ImageArray, batchSize: number): Promise<Float32Array> {
  const dim = (net.head.inputs[0]!.shape[1] ?? 0) as number;
  const out = new Float32Array(images.count * dim);
  for (let start = 0; start < images.count; start += batchSize) {
    const n = Math.min(batchSize, images.count - start);
    const idx = Int32Array.from({ length: n }, (_, i) => start + i);
    const x = imagesToFloat(images, idx);
    const f = tf.tidy(
      () =>
        net.body.apply(tf.tensor4d(x, [n, images.height, images.width, images.channels]), {
          training: false,
        }) as tf.Tensor2D,
    );
    try {
      out.set((await f.data()) as Float32Array, start * dim);
    } finally {
      f.dispose();
    }
  }
  return out;
}

/** Mean class-weighted negative log-likelihood of the labels under `proba`. */
function weightedNll(proba: Float32Array, labels: Int32Array, weights: Float64Array): number {
  const k = weights.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    const w = weights[l]!;
    num += -w * Math.log(Math.max(proba[i * k + l]!, 1e-12));
    den += w;
  }
  return den > 0 ? num / den : 0;
}

/** A trained CNN. Owns its networks' tensors: call `dispose()` when done. */
export class TrainedCnn implements TrainedClassifier {
  #net: CnnNetworks | null;

  /** @internal Built by `trainCnn`. */
  constructor(
    net: CnnNetworks,
    readonly classNames: readonly string[],
    readonly inputShape: readonly [number, number, 1 | 3],
    readonly blocks: number,
    readonly options: CnnOptions,
    readonly trainCount: number,
    readonly history: readonly CnnEpochRecord[],
    readonly bestEpoch: number,
    readonly stoppedEarly: boolean,
    readonly trainSeconds: number,
    /** Optimiser steps taken. */
    readonly steps: number,
  ) {
    this.#net = net;
  }

  #networks(): CnnNetworks {
    if (!this.#net) throw new Error('the classifier was disposed');
    return this.#net;
  }

  /** What bounded training: `epochs` passes, or exactly `options.steps` optimiser steps. */
  get budget(): CnnBudget {
    return this.options.steps === undefined ? 'epochs' : 'steps';
  }

  /** The network (`options.architecture`). */
  get architecture(): CnnArchitecture {
    return this.options.architecture;
  }

  /** Trainable and non-trainable parameters (batch-norm running statistics included). */
  get parameters(): number {
    const net = this.#networks();
    return net.body.countParams() + net.head.countParams();
  }

  async predictProba(images: ImageArray, batchSize = this.options.predictBatchSize): Promise<Float32Array> {
    const net = this.#networks();
    checkImages(images, 'images', true);
    checkShape(images, this.inputShape, 'images');
    if (!(Number.isInteger(batchSize) && batchSize >= 1))
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    return probabilities(net, this.classNames.length, images, batchSize);
  }

  /** Width of the penultimate layer (the features `features` returns). */
  get featureDim(): number {
    return (this.#networks().head.inputs[0]!.shape[1] ?? 0) as number;
  }

  /**
   * Penultimate-layer features (small, resnet: global average pool of the last conv block or stage; vgg: the
   * hidden fully-connected layer; before dropout and the dense head), inference mode: row-major
   * `[N, featureDim]`.
   */
  async features(images: ImageArray, batchSize = this.options.predictBatchSize): Promise<Float32Array> {
    const net = this.#networks();
    checkImages(images, 'images', true);
    checkShape(images, this.inputShape, 'images');
    return bodyFeatures(net, images, batchSize);
  }

  /**
   * Writes the classifier to `dir` (created; files replaced atomically): `classifier.json` (what `describe()`
   * returns, plus the weights' shapes) and `weights.bin`. `loadCnn(dir)` restores it exactly.
   */
  async save(dir: string): Promise<void> {
    const net = this.#networks();
    const weights = [...net.body.weights, ...net.head.weights];
    const { data, specs } = await tf.io.encodeWeights(
      weights.map((w, i) => ({ name: `w${i}`, tensor: w.read() })),
    );
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(join(dir, CNN_WEIGHTS), new Uint8Array(data as ArrayBuffer));
    const file = { format: CNN_FORMAT, version: 1, ...this.describe(), weights: specs };
    await writeFileAtomic(join(dir, CNN_JSON), `${JSON.stringify(file, null, 1)}\n`);
  }

  /**
   * Penultimate-layer features of a prepared batch `[n, h, w, c]` (the input shape, values in [-1, 1]),
   * inference mode. Synchronous; call it inside `tf.tidy`.
   */
  embed(x: tf.Tensor4D): tf.Tensor2D {
    return this.#networks().body.apply(x, { training: false }) as tf.Tensor2D;
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

  describe(): CnnSummary {
    return {
      kind: 'cnn',
      architecture: this.architecture,
      classNames: [...this.classNames],
      inputShape: this.inputShape,
      blocks: this.blocks,
      parameters: this.parameters,
      options: this.options,
      trainCount: this.trainCount,
      budget: this.budget,
      steps: this.steps,
      history: this.history,
      bestEpoch: this.bestEpoch,
      stoppedEarly: this.stoppedEarly,
      trainSeconds: this.trainSeconds,
    };
  }

  dispose(): void {
    if (!this.#net) return;
    this.#net.body.dispose();
    this.#net.head.dispose();
    this.#net = null;
  }
}

/** Adam reads its (protected) step size at every update. */
function setLearningRate(optimizer: tf.AdamOptimizer, lr: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = lr;
}

/** Lets timers and abort signals run between batches. */

/**
 * Trains a CNN on `train` (Adam, class-weighted cross-entropy). With `options.validation`, each epoch ends
 * with a validation pass; training stops after `patience` epochs without improvement of `monitor`, and the
 * best epoch's weights (BN statistics included) are restored. With `options.steps`, training takes exactly
 * that many optimiser steps in ⌈steps / steps per epoch⌉ passes (the last cut short) and never stops early;
 * validation and the restore of the best pass are unchanged. Emits `phase`, one `tick` per epoch (unit
 * `epochs`, total the epochs or passes planned), a `metric` `valAccuracy` per epoch with validation, and
 * `done`; honours `control.signal` between batches. Bad input → `DatasetError`; bad options → `ConfigError`;
 * a non-finite loss → `TrainingError`.
 */
export async function trainCnn(
  train: LabelledImages,
  options: CnnTrainOptions = {},
  control: RunControl = {},
): Promise<TrainedCnn> {
  const { validation, ...rest } = options;
  const o = resolveCnnOptions(rest);
  checkLabelled(train, 'train');
  if (train.images.count < 2) {
    throw new DatasetError('a classifier needs at least 2 training images', {
      field: 'train',
      found: String(train.images.count),
    });
  }
  const K = train.classNames.length;
  const { images } = train;
  const shape: [number, number, 1 | 3] = [images.height, images.width, images.channels];
  if (validation) {
    checkImages(validation.images, 'validation');
    checkShape(validation.images, shape, 'validation');
    checkLabels(validation.images, validation.labels, K, 'validation');
  }
  const weights = lossWeights(o, train.labels, K);
  const blocks = resolveBlocks(o.architecture, o.blocks, shape[0], shape[1]);
  const { onProgress, signal } = control;
  signal?.throwIfAborted();

  const phase = 'train classifier';
  const started = performance.now();
  onProgress?.({
    type: 'phase',
    phase,
    detail:
      `${images.count} images ${shape.join('×')}, ${K} classes, ${o.architecture} network with ` +
      `${blocks} ${o.architecture === 'small' ? 'conv blocks' : 'stages'}, width ${o.width}` +
      (validation ? `, ${validation.images.count} validation images` : ''),
  });

  const net = buildNetworks({
    architecture: o.architecture,
    inputShape: shape,
    numClasses: K,
    width: o.width,
    blocks,
    seed: o.seed,
  });
  const optimizer = tf.train.adam(o.learningRate, 0.9, 0.999, 1e-8);
  const allWeights = [...net.body.weights, ...net.head.weights];
  const vars = [...net.body.trainableWeights, ...net.head.trainableWeights].map(
    (w) => w.read() as tf.Variable,
  );
  const dataRng = Rng.derive(o.seed, 'data');
  const augmentRng = Rng.derive(o.seed, 'augment');
  const dropoutRng = Rng.derive(o.seed, 'dropout');
  const augmenting = augmentsImages(o.augment);
  const featureChannels = (net.head.inputs[0]!.shape[1] ?? 0) as number;
  const order = Array.from({ length: images.count }, (_, i) => i);
  const perEpoch = stepsPerEpoch(images.count, o.batchSize);
  // A step budget: exactly `o.steps` updates over as many passes as that takes, the last one cut short.
  const stepBudget = o.steps !== undefined;
  const totalSteps = o.steps ?? perEpoch * o.epochs;
  const epochs = o.steps === undefined ? o.epochs : Math.ceil(o.steps / perEpoch);
  let step = 0;

  const history: CnnEpochRecord[] = [];
  let best: { epoch: number; value: number; weights: tf.Tensor[] } | null = null;
  let sinceBest = 0;
  let stoppedEarly = false;
  let lossSum: tf.Scalar | null = null;
  let succeeded = false;
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const epochStart = performance.now();
      const stepsBefore = step;
      dataRng.shuffle(order);
      lossSum = tf.scalar(0);
      let seen = 0;
      for (let start = 0; start < order.length; start += o.batchSize) {
        const n = Math.min(o.batchSize, order.length - start);
        // A last batch of one image would give batch norm a zero variance: it sits this epoch out.
        if (n < 2) break;
        if (stepBudget && step >= totalSteps) break;
        signal?.throwIfAborted();
        const idx = order.slice(start, start + n);
        const x = imagesToFloat(images, idx);
        if (augmenting) augmentBatch(x, n, shape, o.augment, augmentRng);
        const labels = Int32Array.from(idx, (i) => train.labels[i]!);
        const sampleWeights = Float32Array.from(labels, (l) => weights[l]!);
        const weightSum = sampleWeights.reduce((a, b) => a + b, 0);
        let mask: Float32Array | null = null;
        if (o.dropout > 0) {
          const keep = 1 / (1 - o.dropout);
          mask = new Float32Array(n * featureChannels);
          for (let i = 0; i < mask.length; i++) mask[i] = dropoutRng.next() < o.dropout ? 0 : keep;
        }
        if (o.schedule === 'cosine') {
          setLearningRate(optimizer, 0.5 * o.learningRate * (1 + Math.cos((Math.PI * step) / totalSteps)));
        }
        step++;
        const previous: tf.Scalar = lossSum;
        lossSum = tf.tidy(() => {
          const xt = tf.tensor4d(x, [n, ...shape]);
          const y = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), K), 'float32');
          const sw = tf.tensor1d(sampleWeights);
          const m = mask ? tf.tensor2d(mask, [n, featureChannels]) : null;
          const cost = optimizer.minimize(
            () => {
              let features = net.body.apply(xt, { training: true }) as tf.Tensor2D;
              if (m) features = tf.mul(features, m);
              const logits = net.head.apply(features, { training: true }) as tf.Tensor2D;
              const nll = tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1));
              return tf.div(tf.sum(tf.mul(nll, sw)), weightSum) as tf.Scalar;
            },
            true,
            vars,
          )!;
          return tf.add(previous, tf.mul(cost, n)) as tf.Scalar;
        });
        previous.dispose();
        seen += n;
        await yieldToEventLoop();
      }
      const trainLoss = seen > 0 ? (await lossSum.data())[0]! / seen : 0;
      lossSum.dispose();
      lossSum = null;
      if (!Number.isFinite(trainLoss)) {
        throw new TrainingError(`the classifier's training loss is ${trainLoss} in epoch ${epoch}`, {
          field: 'learningRate',
          found: String(o.learningRate),
        });
      }

      let record: CnnEpochRecord = { epoch, trainLoss, seconds: 0 };
      let improved = false;
      if (validation) {
        const proba = await probabilities(net, K, validation.images, o.predictBatchSize);
        const ev = evaluateConfusion(confusionMatrix(validation.labels, argmaxRows(proba, K), K));
        const valLoss = weightedNll(proba, validation.labels, weights);
        record = {
          ...record,
          valLoss,
          valAccuracy: ev.accuracy,
          valBalancedAccuracy: ev.balancedAccuracy,
        };
        const value =
          o.monitor === 'valLoss' ? valLoss : o.monitor === 'valAccuracy' ? ev.accuracy : ev.balancedAccuracy;
        const better =
          best === null ||
          (o.monitor === 'valLoss' ? value < best.value - o.minDelta : value > best.value + o.minDelta);
        if (better) {
          improved = true;
          for (const t of best?.weights ?? []) t.dispose();
          best = { epoch, value, weights: allWeights.map((w) => tf.clone(w.read())) };
          sinceBest = 0;
        } else {
          sinceBest++;
        }
        onProgress?.({ type: 'metric', name: 'valAccuracy', value: ev.accuracy });
      }
      record = {
        ...record,
        seconds: (performance.now() - epochStart) / 1000,
        ...(stepBudget ? { steps: step - stepsBefore } : {}),
      };
      history.push(record);
      onProgress?.({
        type: 'tick',
        phase,
        done: epoch,
        total: epochs,
        unit: 'epochs',
        stats: {
          loss: trainLoss,
          ...(record.valLoss !== undefined ? { valLoss: record.valLoss } : {}),
          ...(record.valAccuracy !== undefined ? { valAccuracy: record.valAccuracy } : {}),
          'img/s': seen / Math.max(record.seconds, 1e-9),
        },
      });
      if (validation && !stepBudget && !improved && sinceBest >= o.patience) {
        stoppedEarly = epoch < o.epochs;
        break;
      }
    }

    let bestEpoch = history.length;
    if (best) {
      bestEpoch = best.epoch;
      if (best.epoch !== history.length) allWeights.forEach((w, i) => w.write(best!.weights[i]!));
    }
    const seconds = (performance.now() - started) / 1000;
    onProgress?.({ type: 'done', phase, seconds });
    succeeded = true;
    return new TrainedCnn(
      net,
      [...train.classNames],
      shape,
      blocks,
      o,
      images.count,
      history,
      bestEpoch,
      stoppedEarly,
      seconds,
      step,
    );
  } finally {
    lossSum?.dispose();
    for (const t of best?.weights ?? []) t.dispose();
    optimizer.dispose();
    if (!succeeded) {
      net.body.dispose();
      net.head.dispose();
    }
  }
}

const CNN_FORMAT = 'medsynth-cnn';
const CNN_JSON = 'classifier.json';
const CNN_WEIGHTS = 'weights.bin';

/** Restores a classifier written by `TrainedCnn.save(dir)`. Missing or mismatched files → `CheckpointError`. */
export async function loadCnn(dir: string): Promise<TrainedCnn> {
  const jsonPath = join(dir, CNN_JSON);
  let file: Omit<CnnSummary, 'architecture' | 'budget' | 'steps'> & {
    architecture?: CnnArchitecture;
    steps?: number;
    format: string;
    weights: tf.io.WeightsManifestEntry[];
  };
  let bytes: Buffer;
  try {
    file = JSON.parse(await readFile(jsonPath, 'utf8')) as typeof file;
    bytes = await readFile(join(dir, CNN_WEIGHTS));
  } catch (e) {
    throw new CheckpointError('cannot read a saved classifier', { file: dir, cause: e });
  }
  if (file.format !== CNN_FORMAT)
    throw new CheckpointError('not a medsynth classifier', {
      file: jsonPath,
      field: 'format',
      found: String(file.format),
    });
  // Saves from before `architecture` existed have none: they are 'small'.
  const o = resolveCnnOptions(file.options);
  if (file.architecture !== undefined && file.architecture !== o.architecture)
    throw new CheckpointError('the saved architecture and options disagree', {
      file: jsonPath,
      field: 'architecture',
      expected: o.architecture,
      found: String(file.architecture),
    });
  const net = buildNetworks({
    architecture: o.architecture,
    inputShape: file.inputShape,
    numClasses: file.classNames.length,
    width: o.width,
    blocks: file.blocks,
    seed: o.seed,
  });
  const weights = [...net.body.weights, ...net.head.weights];
  try {
    const map = tf.io.decodeWeights(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
      file.weights,
    );
    try {
      if (file.weights.length !== weights.length)
        throw new CheckpointError('the saved weights do not fit the network', {
          file: jsonPath,
          expected: `${weights.length} tensors`,
          found: `${file.weights.length}`,
        });
      weights.forEach((w, i) => {
        const t = map[`w${i}`]!;
        if (t.shape.join('x') !== w.shape.join('x'))
          throw new CheckpointError(`weight ${i} has another shape`, {
            file: jsonPath,
            expected: w.shape.join('×'),
            found: t.shape.join('×'),
          });
        (w.read() as tf.Variable).assign(t);
      });
    } finally {
      tf.dispose(Object.values(map));
    }
  } catch (e) {
    net.body.dispose();
    net.head.dispose();
    throw e;
  }
  return new TrainedCnn(
    net,
    file.classNames,
    file.inputShape,
    file.blocks,
    o,
    file.trainCount,
    file.history,
    file.bestEpoch,
    file.stoppedEarly,
    file.trainSeconds,
    // Saves from before `steps` was recorded trained whole epochs.
    file.steps ?? stepsPerEpoch(file.trainCount, o.batchSize) * file.history.length,
  );
}
