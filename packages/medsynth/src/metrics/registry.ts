/**
 * The evaluation metrics by name. Each entry turns an evaluation context (feature matrices and images of
 * the real reference set, the compared set and the held-out set) into JSONL-ready records: one per
 * comparison and class (class `null` = all images), each with the sample counts, the extractor, the seed and
 * the time it took. Feature metrics are pure functions of `(real, fake)` feature matrices (frechet.ts,
 * kid.ts, prdc.ts); MS-SSIM works on images within one class of one set; privacy on nearest-train distances;
 * the embedding map (embedding.ts) on the train, held-out and synthetic features together.
 */
import type { ImageArray } from '../data/types.js';
import type { SamplingGenerator } from '../models/types.js';
import type { RunControl } from '../runtime/progress.js';
import { selectRows, type Matrix } from './distances.js';
import { computeEmbedding, type EmbeddingInputSet, type EmbeddingMap } from './embedding.js';
import type { ExtractorInfo } from './features/types.js';
import { frechetWithSpread } from './frechet.js';
import { kid } from './kid.js';
import { msSsimDiversity } from './ms-ssim.js';
import { prdc } from './prdc.js';
import { privacyCheck, type PrivacyResult } from './privacy.js';
import {
  analyseProjection,
  type ProjectionAnalysis,
  type ProjectionAnalysisOptionsInput,
  type ProjectionFeatures,
  type ProjectionSetInput,
  type ProjectionSetName,
  resolveProjectionAnalysisOptions,
  selectImages,
  stratifiedSample,
} from './projection.js';

export const METRIC_NAMES = ['fid', 'kid', 'prdc', 'msssim', 'privacy', 'embedding', 'projection'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
/** The metrics an evaluation runs unless told otherwise: all but projection (slow: asked for by name). */
export const DEFAULT_METRIC_NAMES: readonly MetricName[] = Object.freeze(
  METRIC_NAMES.filter((m) => m !== 'projection'),
);

/**
 * What a set is compared as: `fake` (the synthetic images), `floor` (held-out real images: what a perfect
 * generator would score), `noise` (uniform noise images: a useless generator).
 */
export type Comparison = 'fake' | 'floor' | 'noise';

/** A set of images with their features; `labels` index the evaluation's class names (null: unlabelled). */
export interface EvalSet {
  readonly images: ImageArray;
  readonly labels: Int32Array | null;
  readonly features: Matrix;
}

export interface MetricSettings {
  readonly seed: number;
  /** k of PRDC's k-NN balls. */
  readonly k: number;
  readonly kidSubsets: number;
  readonly kidSubsetSize: number;
  /** Bootstrap replicates of the Fréchet distance (0: none). */
  readonly bootstrap: number;
  readonly msssimPairs: number;
  /** Closest synthetic/train pairs kept for the privacy picture. */
  readonly privacyPairs: number;
  /** Most images per set in the embedding map. */
  readonly embeddingCap: number;
}

export interface MetricContext {
  readonly classNames: readonly string[];
  readonly extractor: ExtractorInfo;
  /** The real reference set (default: the train split). */
  readonly real: EvalSet;
  /** The set being judged, and what it is. */
  readonly compared: EvalSet;
  readonly comparison: Comparison;
  /** Held-out real images (default: the test split): the privacy reference. */
  readonly holdout: EvalSet | null;
  readonly settings: MetricSettings;
  readonly control: RunControl;
  /** The generator that made the compared set (a run's), when there is one: projection inverts it. */
  readonly generator?: SamplingGenerator | null | undefined;
  /** The projection's perceptual term (the extractor with its gradient), or null: multi-scale pixels. */
  readonly projectionFeatures?: ProjectionFeatures | null | undefined;
  /** Projection options (count per set, steps, restarts…); the seed defaults to the settings' seed. */
  readonly projection?: ProjectionAnalysisOptionsInput | undefined;
}

/** One JSONL line. `values` hold plain numbers or null (a class too small for the metric: `note` says why). */
export interface MetricRecord {
  readonly metric: MetricName;
  readonly comparison: Comparison;
  readonly class: string | null;
  readonly nReal: number;
  readonly nCompared: number;
  /** The extractor's key, or null for metrics computed on pixels. */
  readonly extractor: string | null;
  readonly seed: number;
  readonly seconds: number;
  readonly createdAt: string;
  readonly values: Readonly<Record<string, number | null>>;
  readonly details?: unknown;
  readonly note?: string;
  readonly warnings?: readonly string[];
}

export interface MetricDefinition {
  readonly name: MetricName;
  /** One line for help texts and reports. */
  readonly description: string;
  /** Whether the metric applies to a comparison (privacy only to the synthetic set). */
  appliesTo(comparison: Comparison): boolean;
  compute(ctx: MetricContext): Promise<MetricOutput>;
}

/** Privacy results by space, kept for pictures (the records hold the numbers). */
export interface PrivacyOutcome {
  readonly features: PrivacyResult;
  readonly pixels: PrivacyResult;
}

export interface MetricOutput {
  readonly records: MetricRecord[];
  /** The privacy metric's full results (closest pairs, distances). */
  readonly privacy?: PrivacyOutcome;
  /** The projection metric's full analysis (per-image distances, projections). */
  readonly projection?: ProjectionAnalysis;
  /** The embedding metric's map (written as embedding.json). */
  readonly embedding?: EmbeddingMap;
}

/** Rows of a set per class (`null` entry = all rows). */
function groups(ctx: MetricContext, set: EvalSet): Array<{ cls: string | null; rows: Int32Array | null }> {
  const out: Array<{ cls: string | null; rows: Int32Array | null }> = [{ cls: null, rows: null }];
  if (!set.labels || !ctx.real.labels || ctx.classNames.length < 2) return out;
  ctx.classNames.forEach((cls, k) => {
    const rows: number[] = [];
    set.labels!.forEach((l, i) => {
      if (l === k) rows.push(i);
    });
    out.push({ cls, rows: Int32Array.from(rows) });
  });
  return out;
}

function rowsOf(set: EvalSet, cls: number | null): Matrix {
  if (cls === null || !set.labels) return set.features;
  const rows: number[] = [];
  set.labels.forEach((l, i) => {
    if (l === cls) rows.push(i);
  });
  return selectRows(set.features, rows);
}

/** A feature metric computed overall and per class, with a minimum sample count per set. */
function featureMetric(
  name: 'fid' | 'kid' | 'prdc',
  description: string,
  minimum: (s: MetricSettings) => number,
  compute: (
    real: Matrix,
    fake: Matrix,
    s: MetricSettings,
  ) => Promise<
    Omit<
      MetricRecord,
      | 'metric'
      | 'comparison'
      | 'class'
      | 'nReal'
      | 'nCompared'
      | 'extractor'
      | 'seed'
      | 'seconds'
      | 'createdAt'
    >
  >,
): MetricDefinition {
  return {
    name,
    description,
    appliesTo: () => true,
    async compute(ctx) {
      const records: MetricRecord[] = [];
      for (const { cls } of groups(ctx, ctx.compared)) {
        ctx.control.signal?.throwIfAborted();
        const k = cls === null ? null : ctx.classNames.indexOf(cls);
        const real = rowsOf(ctx.real, k);
        const fake = rowsOf(ctx.compared, k);
        const started = performance.now();
        const min = minimum(ctx.settings);
        const base = {
          metric: name,
          comparison: ctx.comparison,
          class: cls,
          nReal: real.rows,
          nCompared: fake.rows,
          extractor: ctx.extractor.key,
          seed: ctx.settings.seed,
        };
        if (real.rows < min || fake.rows < min) {
          records.push({
            ...base,
            seconds: 0,
            createdAt: new Date().toISOString(),
            values: {},
            note: `needs at least ${min} images in each set, has ${real.rows} real and ${fake.rows} compared`,
          });
          continue;
        }
        const result = await compute(real, fake, ctx.settings);
        records.push({
          ...base,
          seconds: (performance.now() - started) / 1000,
          createdAt: new Date().toISOString(),
          ...result,
        });
      }
      return { records };
    },
  };
}

export const fidMetric = featureMetric(
  'fid',
  'Fréchet distance between Gaussian fits of real and compared features (lower is better), with a bootstrap spread',
  () => 2,
  async (real, fake, s) => {
    const r = frechetWithSpread(real, fake, { replicates: s.bootstrap, seed: s.seed });
    return {
      values: { fid: r.value, fidStd: r.bootstrap?.std ?? null },
      details: { dim: r.dim, bootstrap: r.bootstrap ?? null },
      ...(r.warnings.length > 0 ? { warnings: r.warnings } : {}),
    };
  },
);

export const kidMetric = featureMetric(
  'kid',
  'Kernel distance: unbiased MMD² with the (x·y/d + 1)³ kernel, mean ± std over random subsets (lower is better)',
  () => 2,
  async (real, fake, s) => {
    const r = await kid(real, fake, { subsets: s.kidSubsets, subsetSize: s.kidSubsetSize, seed: s.seed });
    return {
      values: { kid: r.mean, kidStd: r.std },
      details: { subsets: r.subsets, subsetSize: r.subsetSize },
    };
  },
);

export const prdcMetric = featureMetric(
  'prdc',
  'Precision, recall, density, coverage over k-NN balls (Naeem et al. 2020; higher is better)',
  (s) => s.k + 1,
  async (real, fake, s) => {
    const r = await prdc(real, fake, s.k);
    return {
      values: { precision: r.precision, recall: r.recall, density: r.density, coverage: r.coverage },
      details: { k: r.k },
    };
  },
);

export const msssimMetric: MetricDefinition = {
  name: 'msssim',
  description:
    'MS-SSIM between random pairs of images of the same class within one set (diversity: lower is more varied), beside the same statistic on the real reference set',
  appliesTo: () => true,
  async compute(ctx) {
    const started = performance.now();
    const { settings, classNames } = ctx;
    const options = { pairsPerClass: settings.msssimPairs, seed: settings.seed, signal: ctx.control.signal };
    const labelsOf = (s: EvalSet) => s.labels ?? new Int32Array(s.images.count);
    const names = ctx.compared.labels ? classNames : ['all'];
    const realNames = ctx.real.labels ? classNames : ['all'];
    const compared = await msSsimDiversity(ctx.compared.images, labelsOf(ctx.compared), names, options);
    const real = await msSsimDiversity(ctx.real.images, labelsOf(ctx.real), realNames, options);
    const seconds = (performance.now() - started) / 1000;
    const createdAt = new Date().toISOString();
    const base = {
      metric: 'msssim' as const,
      comparison: ctx.comparison,
      extractor: null,
      seed: settings.seed,
      seconds,
      createdAt,
      details: { setup: compared.setup },
    };
    const records: MetricRecord[] = [
      {
        ...base,
        class: null,
        nReal: ctx.real.images.count,
        nCompared: ctx.compared.images.count,
        values: { msssim: compared.mean, msssimReal: real.mean },
      },
    ];
    if (ctx.compared.labels && ctx.real.labels && classNames.length > 1) {
      compared.perClass.forEach((c, k) => {
        const r = real.perClass[k]!;
        records.push({
          ...base,
          class: c.className,
          nReal: r.images,
          nCompared: c.images,
          values: { msssim: c.mean, msssimReal: r.mean, pairs: c.pairs },
          ...(c.mean === null ? { note: 'fewer than 2 images of this class' } : {}),
        });
      });
    }
    return { records };
  },
};

/** Pixel-space rows of an image array: samples in [-1, 1]. */
export function pixelMatrix(images: ImageArray): Matrix {
  const per = images.height * images.width * images.channels;
  const data = new Float32Array(images.count * per);
  const scale = 2 / images.maxValue;
  for (let i = 0; i < data.length; i++) data[i] = images.data[i]! * scale - 1;
  return { data, rows: images.count, cols: per };
}

function privacyRecord(r: PrivacyResult): Pick<MetricRecord, 'values' | 'details'> {
  return {
    values: {
      medianRatio: r.medianRatio,
      closerThanHoldoutP5: r.closerThanHoldoutP5,
      medianFakeToTrain: r.fakeToTrain.median,
      medianHoldoutToTrain: r.holdoutToTrain.median,
    },
    details: {
      space: r.space,
      threshold: r.threshold,
      fakeToTrain: r.fakeToTrain,
      holdoutToTrain: r.holdoutToTrain,
      closest: r.closest,
      histogram: r.histogram,
    },
  };
}

export const privacyMetric: MetricDefinition = {
  name: 'privacy',
  description:
    'Memorization: distance of each synthetic image to its nearest training image vs the same for held-out real images, in feature and pixel space',
  appliesTo: (c) => c === 'fake',
  async compute(ctx) {
    if (!ctx.holdout) return { records: [] };
    const train = ctx.real;
    const records: MetricRecord[] = [];
    const outcome: Partial<Record<'features' | 'pixels', PrivacyResult>> = {};
    for (const space of ['features', 'pixels'] as const) {
      ctx.control.signal?.throwIfAborted();
      const started = performance.now();
      const { images } = ctx.compared;
      const r =
        space === 'features'
          ? await privacyCheck(train.features, ctx.compared.features, ctx.holdout.features, {
              space: `features (${ctx.extractor.key})`,
              pairs: ctx.settings.privacyPairs,
            })
          : await privacyCheck(
              pixelMatrix(train.images),
              pixelMatrix(images),
              pixelMatrix(ctx.holdout.images),
              {
                space: `pixels (${images.height}×${images.width}×${images.channels}, [-1, 1])`,
                pairs: ctx.settings.privacyPairs,
              },
            );
      outcome[space] = r;
      records.push({
        metric: 'privacy',
        comparison: ctx.comparison,
        class: null,
        nReal: train.images.count,
        nCompared: images.count,
        extractor: space === 'features' ? ctx.extractor.key : null,
        seed: ctx.settings.seed,
        seconds: (performance.now() - started) / 1000,
        createdAt: new Date().toISOString(),
        ...privacyRecord(r),
      });
    }
    return { records, privacy: outcome as PrivacyOutcome };
  },
};

/**
 * The embedding map (embedding.ts): PCA and UMAP of the features of the real reference set (`train`), the
 * held-out set (`test`) and the synthetic set, fitted on their union, at most `embeddingCap` images per set.
 * Its record holds the share of variance the two principal axes explain; the map itself goes to
 * embedding.json. Only for the synthetic comparison (the floor and noise sets are not drawn).
 */
export const embeddingMetric: MetricDefinition = {
  name: 'embedding',
  description:
    '2-D maps (PCA and UMAP) of the features of real train, real test and synthetic images by class, fitted on their union (embedding.json; a picture in the report)',
  appliesTo: (c) => c === 'fake',
  async compute(ctx) {
    const started = performance.now();
    const sets: EmbeddingInputSet[] = [
      {
        key: 'train',
        role: 'real',
        description: 'real reference images',
        features: ctx.real.features,
        labels: ctx.real.labels,
      },
    ];
    if (ctx.holdout)
      sets.push({
        key: 'test',
        role: 'real',
        description: 'held-out real images',
        features: ctx.holdout.features,
        labels: ctx.holdout.labels,
      });
    sets.push({
      key: 'synthetic',
      role: 'synthetic',
      description: 'synthetic images',
      features: ctx.compared.features,
      labels: ctx.compared.labels,
    });
    const map = await computeEmbedding(sets, ctx.classNames, ctx.extractor, {
      seed: ctx.settings.seed,
      capPerSet: ctx.settings.embeddingCap,
      ...ctx.control,
    });
    const sampled = (key: string) => map.sets.find((s) => s.key === key)?.sampled ?? 0;
    const [pc1, pc2] = map.pca.explainedVarianceRatio;
    return {
      records: [
        {
          metric: 'embedding',
          comparison: ctx.comparison,
          class: null,
          nReal: sampled('train'),
          nCompared: sampled('synthetic'),
          extractor: ctx.extractor.key,
          seed: ctx.settings.seed,
          seconds: (performance.now() - started) / 1000,
          createdAt: new Date().toISOString(),
          values: { pcaVarianceRatio1: pc1, pcaVarianceRatio2: pc2, points: map.points.length },
          details: {
            capPerSet: map.capPerSet,
            sets: map.sets.map((s) => ({ key: s.key, total: s.total, sampled: s.sampled })),
            umap: map.umap,
            pcaSeconds: map.pca.seconds,
          },
          ...(map.umapNote ? { note: map.umapNote } : {}),
        },
      ],
      embedding: map,
    };
  },
};

/** Sampled rows of an evaluation set as a projection set (labels kept only for a conditional generator). */
function projectionSet(
  set: EvalSet,
  count: number,
  seed: number,
  weights: readonly number[] | undefined,
  conditional: boolean,
  idOf: (i: number) => string,
): ProjectionSetInput {
  const rows = stratifiedSample(set.labels, set.images.count, count, seed, weights);
  return {
    images: selectImages(set.images, rows),
    labels: conditional && set.labels ? Int32Array.from(rows, (i) => set.labels![i]!) : null,
    ids: Array.from(rows, idOf),
  };
}

/**
 * Latent projection (projection.ts): up to `count` training images (the real reference set) and as many
 * held-out ones, with the held-out class mix, reconstructed through the generator that made the compared set,
 * and a sample of the compared (synthetic) images as the floor. Only for the synthetic comparison, and only
 * when the evaluation has the generator (a run) and held-out images; otherwise a record with a note. Not among
 * the default metrics: it optimises a latent per image.
 */
export const projectionMetric: MetricDefinition = {
  name: 'projection',
  description:
    'Latent projection: training and held-out real images reconstructed through the generator; a one-sided Mann–Whitney U test of "training images reconstruct closer" (a memorisation signal), synthetic images as the floor',
  appliesTo: (c) => c === 'fake',
  async compute(ctx) {
    const started = performance.now();
    const features = ctx.projectionFeatures ?? null;
    const base = {
      metric: 'projection' as const,
      comparison: ctx.comparison,
      class: null,
      extractor: features ? features.key : null,
      seed: ctx.settings.seed,
    };
    const generator = ctx.generator ?? null;
    if (!generator || !ctx.holdout) {
      const note = !generator
        ? 'needs the synthetic images to come from a generator (evaluate a run directory)'
        : 'needs held-out real images (--holdout-split)';
      return {
        records: [
          {
            ...base,
            nReal: ctx.real.images.count,
            nCompared: ctx.compared.images.count,
            seconds: 0,
            createdAt: new Date().toISOString(),
            values: {},
            note,
          },
        ],
      };
    }
    const o = resolveProjectionAnalysisOptions({ seed: ctx.settings.seed, ...ctx.projection });
    const K = ctx.classNames.length;
    let weights: number[] | undefined;
    if (ctx.holdout.labels) {
      weights = new Array<number>(K).fill(0);
      for (const l of ctx.holdout.labels) weights[l]!++;
    }
    const cond = generator.conditional;
    const sets: Partial<Record<ProjectionSetName, ProjectionSetInput>> = {
      train: projectionSet(ctx.real, o.count, o.seed, weights, cond, (i) => `real ${i}`),
      holdout: projectionSet(ctx.holdout, o.count, o.seed, weights, cond, (i) => `holdout ${i}`),
    };
    const nSynthetic = o.syntheticCount ?? o.count;
    if (nSynthetic > 0)
      sets.synthetic = projectionSet(
        ctx.compared,
        nSynthetic,
        o.seed,
        weights,
        cond,
        (i) => `synthetic ${i}`,
      );
    const a = await analyseProjection(generator, sets, o, { ...ctx.control, features });
    const median = (name: ProjectionSetName) => a.sets[name]?.pixel.median ?? null;
    return {
      records: [
        {
          ...base,
          nReal: a.sets.train?.result.count ?? 0,
          nCompared: a.sets.holdout?.result.count ?? 0,
          seconds: (performance.now() - started) / 1000,
          createdAt: new Date().toISOString(),
          values: {
            medianTrain: median('train'),
            medianHoldout: median('holdout'),
            medianSynthetic: median('synthetic'),
            medianRatio: a.test && Number.isFinite(a.test.medianRatio) ? a.test.medianRatio : null,
            p: a.test?.p ?? null,
            probTrainCloser: a.test?.probTrainCloser ?? null,
            pFeatures: a.featureTest?.p ?? null,
            memorisationSignal: a.signal === null ? null : a.signal ? 1 : 0,
            secondsPerImage: a.secondsPerImage,
          },
          details: {
            verdict: a.verdict,
            space: a.space,
            objective: a.objective,
            options: a.options,
            sets: Object.fromEntries(
              Object.entries(a.sets).map(([k, s]) => [
                k,
                { n: s.result.count, pixelRmse: s.pixel, featureDistance: s.feature },
              ]),
            ),
            test: a.test,
            featureTest: a.featureTest,
          },
          ...(a.warnings.length > 0 ? { warnings: a.warnings } : {}),
        },
      ],
      projection: a,
    };
  },
};

/** The registry: every metric by name. */
export const METRICS: Readonly<Record<MetricName, MetricDefinition>> = Object.freeze({
  fid: fidMetric,
  kid: kidMetric,
  prdc: prdcMetric,
  msssim: msssimMetric,
  privacy: privacyMetric,
  embedding: embeddingMetric,
  projection: projectionMetric,
});
