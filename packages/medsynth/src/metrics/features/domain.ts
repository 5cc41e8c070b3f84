/**
 * The `domain` feature extractor (medsynth's default): a CNN classifier trained on the real *training*
 * split of the dataset being evaluated, at the evaluation image size; its penultimate layer (global
 * average pool of the last conv block) gives the features. Fréchet distances in this space are
 * *domain-specific* — they measure what separates this dataset's classes and textures, not ImageNet
 * objects — so they are not comparable with published Inception FIDs, and reports say so.
 *
 * Trained once per (dataset content, split, size, channels, options) and reused from the cache
 * (`cache.ts`); training is seeded, so a rebuilt extractor is the same network on the same backend.
 */
import { rename, rm, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { loadCnn, type TrainedCnn, trainCnn } from '../../classify/cnn.js';
import { resolveOptions } from '../../config/data-options.js';
import type { Dataset } from '../../data/dataset.js';
import type { ImageArray } from '../../data/types.js';
import { writeFileAtomic } from '../../runtime/fs.js';
import type { RunControl } from '../../runtime/progress.js';
import { digest, splitKey } from './cache.js';
import { describePreparation, prepareBatch, type PrepareSpec } from './prepare.js';
import type { ExtractorInfo, FeatureExtractor, FeatureMatrix } from './types.js';

export const DomainExtractorSchema = z
  .object({
    /** Seed of the extractor's training. */
    seed: z.number().int().min(0).default(0),
    /** First conv block's channels; the features have width·2^(blocks−1) dimensions (64 at 28 px, 128 at 64 px). */
    width: z.number().int().min(4).max(256).default(32),
    epochs: z.number().int().min(1).max(200).default(15),
    patience: z.number().int().min(1).default(3),
    batchSize: z.number().int().min(2).max(1024).default(64),
    /** Training images at most (a stratified subset beyond it), to bound the one-off training time. */
    maxTrainImages: z.number().int().min(2).default(20_000),
    /** Inference batch size. */
    batchSizeInference: z.number().int().min(1).max(4096).default(256),
  })
  .strict();
export type DomainExtractorInput = z.input<typeof DomainExtractorSchema>;
export type DomainExtractorOptions = z.output<typeof DomainExtractorSchema>;

/** What is stored beside the classifier: enough to describe the extractor without loading it. */
interface DomainExtractorFile {
  readonly format: 'medsynth-domain-extractor';
  readonly key: string;
  readonly dataset: string;
  readonly trainImages: number;
  readonly valAccuracy: number | null;
  readonly valBalancedAccuracy: number | null;
  readonly options: DomainExtractorOptions;
  readonly createdAt: string;
}

class DomainExtractor implements FeatureExtractor {
  constructor(
    readonly info: ExtractorInfo,
    private readonly cnn: TrainedCnn,
    private readonly spec: PrepareSpec,
    private readonly batchSize: number,
  ) {}

  async features(images: ImageArray, control: RunControl = {}): Promise<FeatureMatrix> {
    return extractInBatches(
      images,
      this.spec,
      this.info.dim,
      this.batchSize,
      (x) => this.cnn.embed(x),
      control,
    );
  }

  embedTensor(x: tf.Tensor4D): tf.Tensor2D {
    return this.cnn.embed(x);
  }

  dispose(): void {
    this.cnn.dispose();
  }
}

/**
 * Runs `embed` over `images` in batches (prepared by `prepareBatch`), emitting `tick` events (phase
 * `features`, unit `img`) and honouring the abort signal between batches.
 */
export async function extractInBatches(
  images: ImageArray,
  spec: PrepareSpec,
  dim: number,
  batchSize: number,
  embed: (x: tf.Tensor4D) => tf.Tensor,
  control: RunControl = {},
): Promise<FeatureMatrix> {
  const out = new Float32Array(images.count * dim);
  for (let start = 0; start < images.count; start += batchSize) {
    control.signal?.throwIfAborted();
    const n = Math.min(batchSize, images.count - start);
    const idx = Int32Array.from({ length: n }, (_, i) => start + i);
    const f = tf.tidy(() => tf.reshape(embed(prepareBatch(images, idx, spec)), [n, dim]));
    try {
      out.set((await f.data()) as Float32Array, start * dim);
    } finally {
      f.dispose();
    }
    control.onProgress?.({
      type: 'tick',
      phase: 'features',
      done: start + n,
      total: images.count,
      unit: 'img',
    });
  }
  return { data: out, rows: images.count, cols: dim };
}

function describe(file: DomainExtractorFile, cnn: TrainedCnn, spec: PrepareSpec): ExtractorInfo {
  const acc = file.valBalancedAccuracy;
  return {
    kind: 'domain',
    key: file.key,
    dim: cnn.featureDim,
    inputShape: cnn.inputShape,
    description:
      `domain-specific features: penultimate layer (${cnn.featureDim} dims) of a CNN trained on the real ` +
      `training split of ${file.dataset} (${file.trainImages} images, seed ${file.options.seed}` +
      (acc === null ? '' : `, val balanced accuracy ${acc.toFixed(3)}`) +
      `) — not ImageNet Inception: values are comparable only within this dataset and extractor`,
    preprocessing: describePreparation(spec),
  };
}

/**
 * The domain extractor for `dataset` at `[size, size, channels]`: loaded from `<cacheRoot>/extractors/`
 * when trained before, else trained on the train split (early stopping on val) and stored.
 */
export async function domainExtractor(
  dataset: Dataset,
  shape: readonly [number, number, 1 | 3],
  cacheRoot: string,
  input: DomainExtractorInput = {},
  control: RunControl = {},
): Promise<FeatureExtractor> {
  const o = resolveOptions(DomainExtractorSchema, input, 'extractor') as DomainExtractorOptions;
  const train = dataset.split('train');
  const { batchSizeInference, ...trainingOptions } = o;
  const key = `domain-${digest([await splitKey(train), shape, trainingOptions])}`;
  const dir = join(cacheRoot, 'extractors', key);
  const spec: PrepareSpec = { inputShape: shape, range: [-1, 1] };
  try {
    const file = JSON.parse(await readFile(join(dir, 'extractor.json'), 'utf8')) as DomainExtractorFile;
    const cnn = await loadCnn(dir);
    control.onProgress?.({ type: 'phase', phase: 'extractor', detail: `cached domain extractor ${key}` });
    return new DomainExtractor(describe(file, cnn, spec), cnn, spec, batchSizeInference);
  } catch {
    // Not trained yet (or unreadable): train below.
  }
  const [h, w, c] = shape;
  const trainSplit =
    train.size > o.maxTrainImages ? train.fraction(o.maxTrainImages / train.size, o.seed) : train;
  const load = { size: [h, w] as const, channels: c, onProgress: control.onProgress, signal: control.signal };
  const images = await trainSplit.load(load);
  const validation = dataset.split('val').size > 0 ? dataset.split('val') : undefined;
  const valImages = validation ? await validation.load(load) : undefined;
  const cnn = await trainCnn(
    { images, labels: Int32Array.from(trainSplit.labels), classNames: dataset.classNames },
    {
      seed: o.seed,
      width: o.width,
      epochs: o.epochs,
      patience: o.patience,
      batchSize: o.batchSize,
      classWeights: 'balanced',
      monitor: 'valLoss',
      ...(validation && valImages
        ? { validation: { images: valImages, labels: Int32Array.from(validation.labels) } }
        : {}),
    },
    control,
  );
  try {
    const ev =
      validation && valImages ? await cnn.evaluate(valImages, Int32Array.from(validation.labels)) : null;
    const file: DomainExtractorFile = {
      format: 'medsynth-domain-extractor',
      key,
      dataset: dataset.location,
      trainImages: images.count,
      valAccuracy: ev?.accuracy ?? null,
      valBalancedAccuracy: ev?.balancedAccuracy ?? null,
      options: o,
      createdAt: new Date().toISOString(),
    };
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await cnn.save(tmp);
    await writeFileAtomic(join(tmp, 'extractor.json'), `${JSON.stringify(file, null, 1)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return new DomainExtractor(describe(file, cnn, spec), cnn, spec, batchSizeInference);
  } catch (e) {
    cnn.dispose();
    throw e;
  }
}
