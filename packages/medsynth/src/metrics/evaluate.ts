/**
 * Evaluating a synthetic set against real images, in memory: features through one extractor, then every
 * requested metric (registry.ts) on up to three comparisons —
 * - `fake`: the synthetic images;
 * - `floor`: held-out real images (the test split), what a perfect generator would score, since they come
 *   from the real distribution but are not the reference images themselves;
 * - `noise`: uniform noise images shaped and labelled like the synthetic ones (at most `NOISE_COUNT`, a
 *   seeded sample of their labels), what a useless one scores.
 * A generator worth using lands between floor and noise, close to the floor. Loading sources, caching and
 * writing files are the caller's (cli/evaluate.ts, `evaluateSources`).
 */
import { sampleWithoutReplacement } from './kid.js';
import type { ImageArray } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import type { EmbeddingMap } from './embedding-map.js';
import type { FeatureExtractor, FeatureMatrix } from './features/types.js';
import type { SamplingGenerator } from '../models/types.js';
import {
  type ProjectionAnalysis,
  type ProjectionAnalysisOptionsInput,
  projectionFeatures,
} from './projection.js';
import {
  type Comparison,
  type EvalSet,
  METRICS,
  type MetricName,
  type MetricRecord,
  type MetricSettings,
  type PrivacyOutcome,
} from './registry.js';

/** Images with labels (indices into the evaluation's class names; null when the set has none). */
export interface LabelledSet {
  readonly images: ImageArray;
  readonly labels: Int32Array | null;
}

export interface EvaluationInput {
  readonly classNames: readonly string[];
  /** The real reference images (usually the train split). */
  readonly real: LabelledSet;
  readonly fake: LabelledSet;
  /** Held-out real images (usually the test split): privacy reference and the `floor` comparison. */
  readonly holdout?: LabelledSet | undefined;
  readonly extractor: FeatureExtractor;
  /** Features already computed for `real` / `holdout` (e.g. from the cache). */
  readonly realFeatures?: FeatureMatrix | undefined;
  readonly holdoutFeatures?: FeatureMatrix | undefined;
  /** The generator that made `fake`, when known (a run's): the projection metric inverts it. */
  readonly generator?: SamplingGenerator | null | undefined;
}

export interface EvaluationOptions extends RunControl, Partial<MetricSettings> {
  readonly metrics?: readonly MetricName[];
  /** Also score the floor (held-out real) and noise baselines (default true). */
  readonly baselines?: boolean;
  /** Options of the projection metric (images per set, steps, restarts…). */
  readonly projection?: ProjectionAnalysisOptionsInput | undefined;
}

export const DEFAULT_SETTINGS: MetricSettings = Object.freeze({
  seed: 0,
  k: 5,
  kidSubsets: 100,
  kidSubsetSize: 1000,
  bootstrap: 10,
  msssimPairs: 200,
  privacyPairs: 8,
  embeddingCap: 500,
});

export interface EvaluationResult {
  readonly records: MetricRecord[];
  readonly comparisons: readonly Comparison[];
  readonly privacy: PrivacyOutcome | null;
  /** The projection analysis, when the `projection` metric ran with a generator. */
  readonly projection?: ProjectionAnalysis | null;
  /** The embedding map, when the `embedding` metric ran. */
  readonly embedding: EmbeddingMap | null;
  readonly warnings: readonly string[];
  readonly settings: MetricSettings;
  readonly seconds: number;
}

function checkSet(set: LabelledSet, name: string, classes: number, like?: ImageArray): void {
  const { images, labels } = set;
  if (images.count === 0)
    throw new DatasetError('no images', { field: name, expected: 'at least 1 image', found: '0' });
  if (
    like &&
    (images.height !== like.height || images.width !== like.width || images.channels !== like.channels)
  ) {
    throw new DatasetError('images differ in size or channels from the real images', {
      field: name,
      expected: `${like.height}×${like.width}×${like.channels}`,
      found: `${images.height}×${images.width}×${images.channels}`,
    });
  }
  if (labels) {
    if (labels.length !== images.count)
      throw new DatasetError('one label per image is needed', {
        field: `${name}.labels`,
        expected: String(images.count),
        found: String(labels.length),
      });
    const bad = labels.findIndex((l) => !(l >= 0 && l < classes));
    if (bad >= 0)
      throw new DatasetError('label out of range', {
        field: `${name}.labels[${bad}]`,
        expected: `0..${classes - 1}`,
        found: String(labels[bad]),
      });
  }
}

/**
 * Images in the noise baseline: enough for stable values far above any generator's (its FID is in the
 * hundreds), and fewer than the synthetic set so the baseline does not double the evaluation's time.
 */
export const NOISE_COUNT = 1000;

/** `count` uniform noise images shaped like `like` (8-bit), seeded. */
export function noiseImages(like: ImageArray, seed: number, count = like.count): ImageArray {
  const rng = Rng.derive(seed, 'noise-baseline');
  const data = new Uint8Array(count * like.height * like.width * like.channels);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return {
    data,
    count,
    height: like.height,
    width: like.width,
    channels: like.channels,
    maxValue: 255,
  };
}

/** Runs the metrics. Bad input → `DatasetError` naming the set (`real`, `fake`, `holdout`). */
export async function evaluateSets(
  input: EvaluationInput,
  options: EvaluationOptions = {},
): Promise<EvaluationResult> {
  const started = performance.now();
  const { onProgress, signal } = options;
  const control: RunControl = { onProgress, signal };
  const settings: MetricSettings = {
    seed: options.seed ?? DEFAULT_SETTINGS.seed,
    k: options.k ?? DEFAULT_SETTINGS.k,
    kidSubsets: options.kidSubsets ?? DEFAULT_SETTINGS.kidSubsets,
    kidSubsetSize: options.kidSubsetSize ?? DEFAULT_SETTINGS.kidSubsetSize,
    bootstrap: options.bootstrap ?? DEFAULT_SETTINGS.bootstrap,
    msssimPairs: options.msssimPairs ?? DEFAULT_SETTINGS.msssimPairs,
    privacyPairs: options.privacyPairs ?? DEFAULT_SETTINGS.privacyPairs,
    embeddingCap: options.embeddingCap ?? DEFAULT_SETTINGS.embeddingCap,
  };
  const metrics = options.metrics ?? ['fid', 'kid', 'prdc', 'msssim', 'privacy', 'embedding'];
  const K = input.classNames.length;
  checkSet(input.real, 'real', K);
  checkSet(input.fake, 'fake', K, input.real.images);
  if (input.holdout) checkSet(input.holdout, 'holdout', K, input.real.images);
  const needsFeatures = metrics.some((m) => m !== 'msssim' && m !== 'projection');
  if (needsFeatures) {
    for (const [name, set] of [
      ['real', input.real],
      ['fake', input.fake],
    ] as const) {
      if (metrics.includes('prdc') && set.images.count <= settings.k)
        throw new DatasetError(`PRDC with k = ${settings.k} needs more than ${settings.k} images`, {
          field: name,
          found: String(set.images.count),
        });
    }
  }
  const warnings: string[] = [];
  if (metrics.includes('privacy') && !input.holdout)
    warnings.push('privacy: no held-out real images (test split), so memorization was not checked');

  const empty: FeatureMatrix = { data: new Float32Array(0), rows: 0, cols: 0 };
  const featuresOf = async (
    set: LabelledSet,
    phase: string,
    given?: FeatureMatrix,
  ): Promise<FeatureMatrix> => {
    if (!needsFeatures) return empty;
    if (given) return given;
    onProgress?.({ type: 'phase', phase: `features: ${phase}`, detail: `${set.images.count} images` });
    return input.extractor.features(set.images, control);
  };
  const real: EvalSet = { ...input.real, features: await featuresOf(input.real, 'real', input.realFeatures) };
  const fake: EvalSet = { ...input.fake, features: await featuresOf(input.fake, 'fake') };
  const holdout: EvalSet | null = input.holdout
    ? { ...input.holdout, features: await featuresOf(input.holdout, 'holdout', input.holdoutFeatures) }
    : null;
  const baselines = options.baselines ?? true;
  const sets: Array<[Comparison, EvalSet]> = [['fake', fake]];
  if (baselines && holdout) sets.push(['floor', holdout]);
  if (baselines) {
    const n = input.fake.images.count;
    const picked =
      n <= NOISE_COUNT
        ? null
        : sampleWithoutReplacement(n, NOISE_COUNT, Rng.derive(settings.seed, 'noise-labels')).sort();
    const labels =
      input.fake.labels && picked ? picked.map((i) => input.fake.labels![i]!) : input.fake.labels;
    const noise = { images: noiseImages(input.fake.images, settings.seed, picked?.length ?? n), labels };
    sets.push(['noise', { ...noise, features: await featuresOf(noise, 'noise') }]);
  }

  const records: MetricRecord[] = [];
  let privacy: PrivacyOutcome | null = null;
  let projection: ProjectionAnalysis | null = null;
  const projecting = metrics.includes('projection') && input.generator;
  const projectionFeatureNet = projecting
    ? projectionFeatures(input.extractor, input.generator!).features
    : null;
  let embedding: EmbeddingMap | null = null;
  for (const [comparison, compared] of sets) {
    for (const name of metrics) {
      const metric = METRICS[name];
      if (!metric.appliesTo(comparison)) continue;
      signal?.throwIfAborted();
      const t0 = performance.now();
      onProgress?.({ type: 'phase', phase: `${name}: ${comparison}` });
      const out = await metric.compute({
        classNames: input.classNames,
        extractor: input.extractor.info,
        real,
        compared,
        comparison,
        holdout,
        settings,
        control,
        generator: input.generator ?? null,
        projectionFeatures: projectionFeatureNet,
        projection: options.projection,
      });
      records.push(...out.records);
      if (out.privacy) privacy = out.privacy;
      if (out.projection) projection = out.projection;
      if (out.embedding) embedding = out.embedding;
      onProgress?.({
        type: 'done',
        phase: `${name}: ${comparison}`,
        seconds: (performance.now() - t0) / 1000,
      });
    }
  }
  for (const r of records)
    for (const w of r.warnings ?? [])
      warnings.push(`${r.metric} ${r.comparison}${r.class === null ? '' : ` ${r.class}`}: ${w}`);
  return {
    records,
    comparisons: sets.map(([c]) => c),
    privacy,
    projection,
    embedding,
    warnings,
    settings,
    seconds: (performance.now() - started) / 1000,
  };
}
