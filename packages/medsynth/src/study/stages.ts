/**
 * The stages of a study, each a function of the config and what earlier stages made, so the in-process
 * runner (runner.ts) and a queue worker (queue/worker.ts) run the very same code:
 *   loadReal       the real splits at the study's size (train capped as configured; val/test for the classifiers)
 *   studyJudge     the class-fidelity judge (a CNN on the real train split, seed 0)
 *   preparePool    a generator instance's run(s) trained or reused, its synthetic pool sampled, judged and
 *                  evaluated, and its record
 *   runJob         one classifier job trained and scored: its row
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { z } from 'zod';
import type { CnnOptionsInput } from '../classify/cnn.js';
import { argmaxRows } from '../classify/evaluation.js';
import { classificationMetrics } from '../classify/metrics.js';
import type { TrainedClassifier } from '../classify/types.js';
import { encodePng, tileImages } from '../data/image/grid.js';
import { openDataset } from '../data/source.js';
import { stratifiedFraction } from '../data/splits.js';
import { classFidelity, type ClassFidelityResult, trainJudge } from '../metrics/class-fidelity.js';
import type { LabelledSet } from '../metrics/evaluate.js';
import { evaluateSources, generateFromRun } from '../metrics/sources.js';
import { gridRows, writeEvaluation } from '../metrics/write-evaluation.js';
import type { SamplingGenerator } from '../models/types.js';
import { describeBackend } from '../runtime/backend.js';
import { ConfigError, StudyError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { loadGenerator } from '../training/load-run.js';
import { countsOf, limitedSubset, syntheticDemand } from './conditions.js';
import type { StudyConfig } from './config.js';
import { instanceRuns, loadInstance, type GeneratorInstance } from './generators.js';
import { trainingSet, type StudyJob } from './grid.js';
import type { StudyStore, JobRow } from './store.js';
import { type InstanceRecord, InstanceRecordSchema, type Quality } from './summary.js';

/** What the stages need beyond the config: progress, stopping, and the feature-extractor cache. */
export interface StageOptions extends RunControl {
  /** Feature-extractor cache root for the evaluation (default `$MEDSYNTH_CACHE` or ~/.cache/medsynth). */
  readonly cacheDir?: string | undefined;
}

export type Labelled = LabelledSet & { labels: Int32Array };

export interface RealData {
  readonly classNames: readonly string[];
  /** The train split's image ids (`Split.id`), in `train`'s order: what generators are told to train on. */
  readonly trainIds: readonly string[];
  /** Whether the train split was capped (`maxImages.train`): then generators get its ids too. */
  readonly capped: boolean;
  readonly train: Labelled;
  readonly val: Labelled;
  readonly test: Labelled;
}

/**
 * The real splits at the study's size: the train split with the config's channels (`auto`: the data layer's
 * rule on its content), val and test converted to the channels the train split got, so every split — and
 * every generator, which is told these channels — has one channel count.
 */
export async function loadReal(
  config: StudyConfig,
  channels: 1 | 3 | 'auto',
  control: RunControl,
): Promise<RealData> {
  const ds = await openDataset(config.data, control);
  let trainIds: string[] = [];
  let capped = false;
  const load = async (name: 'train' | 'val' | 'test', ch: 1 | 3 | 'auto') => {
    let split = ds.split(name);
    if (split.size === 0)
      throw new StudyError(`the ${name} split is empty`, {
        field: 'data.splitRatios',
        expected: `images in train, val and test (${name} scores or stops the classifiers)`,
      });
    const cap = config.maxImages[name];
    if (cap !== undefined && split.size > cap) {
      split = split.subset(stratifiedFraction(split.labels, cap / split.size, config.data.seed));
      if (name === 'train') capped = true;
    }
    if (name === 'train') trainIds = Array.from({ length: split.size }, (_, i) => split.id(i));
    const images = await split.load({ size: config.size, channels: ch, bitDepth: 8, ...control });
    return { images, labels: Int32Array.from(split.labels) };
  };
  const train = await load('train', channels);
  const ch = train.images.channels;
  return {
    classNames: ds.classNames,
    trainIds,
    capped,
    train,
    val: await load('val', ch),
    test: await load('test', ch),
  };
}

/** The channels asked for: the config's, or an existing run's when the study uses one (`auto`). */
export async function studyChannels(config: StudyConfig): Promise<1 | 3 | 'auto'> {
  if (config.channels !== 'auto') return config.channels;
  const run = config.generators.find((g) => g.run !== undefined)?.run;
  if (run === undefined) return 'auto';
  const { generator } = await loadGenerator(run);
  generator.dispose();
  return generator.channels;
}

export function checkGenerator(
  g: SamplingGenerator,
  real: RealData,
  config: StudyConfig,
  instance: GeneratorInstance,
  run: string,
): void {
  const channels = real.train.images.channels;
  if (g.size !== config.size)
    throw new StudyError(`generator ${instance.entry.name} makes images of another size than the study`, {
      file: run,
      expected: `${config.size} px`,
      found: `${g.size} px`,
    });
  if (g.channels !== channels)
    throw new StudyError(
      `generator ${instance.entry.name} makes images with other channels than the study's real images`,
      {
        file: run,
        field: 'channels',
        expected: `${channels} channel(s)`,
        found: `${g.channels} channel(s) (set the study's channels to ${g.channels} to use it)`,
      },
    );
  if (!g.conditional)
    throw new StudyError(
      `generator ${instance.entry.name} is unconditional: the study needs per-class sets — a class-conditional generator, or perClassModels: true (one unconditional model per class)`,
      { file: run },
    );
  if (g.classNames.join('\u0000') !== real.classNames.join('\u0000'))
    throw new StudyError(`generator ${instance.entry.name}'s classes are not the dataset's`, {
      file: run,
      expected: real.classNames.join(', '),
      found: g.classNames.join(', '),
    });
}

export function positiveIndex(config: StudyConfig, classNames: readonly string[]): number | undefined {
  if (config.positiveClass === undefined) return undefined;
  const k = classNames.indexOf(config.positiveClass);
  if (k < 0)
    throw new ConfigError('positiveClass is not a class of the dataset', {
      field: 'positiveClass',
      expected: classNames.join(', '),
      found: config.positiveClass,
    });
  return k;
}

export const classCounts = (labels: ArrayLike<number>, k: number) => countsOf(labels, null, k);

/** The ids of the images an instance trains on (null: the whole train split, uncapped). */
export function instanceImages(
  instance: GeneratorInstance,
  real: RealData,
): { ids: string[] | null; labels: Int32Array } {
  if (instance.fraction === null)
    return { ids: real.capped ? [...real.trainIds] : null, labels: real.train.labels };
  const subset = limitedSubset(real.train.labels, instance.fraction, instance.seed);
  return {
    ids: Array.from(subset, (p) => real.trainIds[p]!),
    labels: Int32Array.from(subset, (p) => real.train.labels[p]!),
  };
}

/**
 * The judge of class fidelity (metrics/class-fidelity.ts): a CNN trained once on the real train split with
 * the study's first deep classifier's options (seed 0, early stopping on val). Null without a deep
 * classifier, or with the evaluation off.
 */
export async function studyJudge(
  config: StudyConfig,
  jobs: readonly StudyJob[],
  real: RealData,
  control: RunControl,
): Promise<TrainedClassifier | null> {
  const deep = jobs.find((j) => j.classifier.family === 'deep')?.classifier;
  if (!config.evaluate.enabled || !deep) return null;
  control.onProgress?.({
    type: 'phase',
    phase: 'class-fidelity judge',
    detail: `${deep.name} on the real train split`,
  });
  return trainJudge(
    { images: real.train.images, labels: real.train.labels, classNames: real.classNames },
    { images: real.val.images, labels: real.val.labels },
    { ...(deep.options as CnnOptionsInput), seed: 0 },
    { signal: control.signal },
  );
}

export interface Pool {
  readonly set: Labelled;
  readonly record: InstanceRecord;
}

/** Trains (or finds) an instance's runs, samples its pool, judges it and evaluates it when asked. */
export async function preparePool(
  dir: string,
  config: StudyConfig,
  instance: GeneratorInstance,
  jobs: readonly StudyJob[],
  real: RealData,
  judge: TrainedClassifier | null,
  options: StageOptions,
): Promise<Pool> {
  const control: RunControl = { onProgress: options.onProgress, signal: options.signal };
  const K = real.classNames.length;
  const seen = instanceImages(instance, real);
  const runs = await instanceRuns(
    dir,
    instance,
    config,
    { trainImages: seen.ids, classNames: real.classNames, channels: real.train.images.channels },
    control,
  );
  const folder = join(dir, 'generators', instance.key);
  const { generator, runs: info } = await loadInstance(instance, runs, real.classNames);
  try {
    checkGenerator(generator, real, config, instance, runs[0]!);
    const demand = syntheticDemand(
      jobs.map((j) => j.condition),
      real.train.labels,
      K,
    );
    control.onProgress?.({
      type: 'phase',
      phase: 'synthetic pool',
      detail: `${instance.key}: ${demand.reduce((a, b) => a + b, 0)} images (${demand.join(' / ')})`,
    });
    const started = performance.now();
    const made = await generateFromRun(generator, demand, instance.entry.truncation, control);
    const set = { images: made.images, labels: made.labels ?? new Int32Array(0) };
    const seconds = (performance.now() - started) / 1000;
    await writeFileAtomic(
      join(folder, 'synthetic-grid.png'),
      await encodePng(tileImages(gridRows(set, real.classNames, 10))),
    );
    let fidelity: ClassFidelityResult | null = null;
    if (judge && set.images.count > 0) fidelity = await classFidelity(judge, set.images, set.labels);
    const evaluation = join(folder, 'evaluation');
    if (
      config.evaluate.enabled &&
      instance.fraction === null &&
      !existsSync(join(evaluation, 'evaluation.json'))
    ) {
      control.onProgress?.({ type: 'phase', phase: 'evaluate synthetic images', detail: instance.key });
      const ev = await evaluateSources({
        fake: runs[0]!,
        generator: { generator, detail: `${instance.key} (${info.map((r) => r.checkpoint).join(', ')})` },
        real: config.data,
        size: config.size,
        channels: generator.channels,
        truncation: instance.entry.truncation,
        metrics: config.evaluate.metrics,
        extractor: config.evaluate.extractor,
        domain: config.evaluate.extractorEpochs ? { epochs: config.evaluate.extractorEpochs } : {},
        cacheDir: options.cacheDir,
        ...control,
      });
      await writeEvaluation(evaluation, ev);
    }
    const record: InstanceRecord = {
      key: instance.key,
      generator: instance.entry.name,
      generatorSeed: instance.seed,
      fraction: instance.fraction,
      perClassModels: instance.entry.perClassModels,
      existingRun: instance.entry.run !== undefined,
      runs: info.map((r) => ({ dir: r.dir, checkpoint: r.checkpoint, kimg: r.kimg })),
      trainedOn: {
        images: seen.labels.length,
        classCounts: classCounts(seen.labels, K),
        what:
          instance.entry.run !== undefined
            ? 'its own training data (an existing run)'
            : instance.fraction === null
              ? real.capped
                ? `the study's capped train split (${seen.labels.length} images)`
                : `the whole train split (${seen.labels.length} images)`
              : `the ${Number((instance.fraction * 100).toPrecision(6))} % subset of generator seed ${instance.seed} (${seen.labels.length} images; the limited-data classifiers of that seed train on the same images)`,
      },
      pool: { images: set.images.count, seconds, perClass: demand },
      fidelity: fidelity
        ? { accuracy: fidelity.accuracy, balancedAccuracy: fidelity.balancedAccuracy }
        : null,
      evaluation: existsSync(join(evaluation, 'evaluation.json')) ? relative(dir, evaluation) : null,
      quality: existsSync(join(evaluation, 'evaluation.json'))
        ? await qualityOf(join(evaluation, 'evaluation.json'), fidelity)
        : null,
    };
    return { set, record };
  } finally {
    generator.dispose();
  }
}

const EvaluationRecords = z
  .object({
    records: z.array(
      z
        .object({
          metric: z.string(),
          comparison: z.string(),
          class: z.string().nullable(),
          values: z.record(z.string(), z.number().nullable()),
        })
        .passthrough(),
    ),
  })
  .passthrough();

/** The headline quality figures of an evaluation (overall, synthetic vs real train) and the pool's class fidelity. */
export async function qualityOf(file: string, fidelity: ClassFidelityResult | null): Promise<Quality> {
  let parsed: z.infer<typeof EvaluationRecords>;
  try {
    parsed = EvaluationRecords.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (e) {
    throw new StudyError(`unreadable evaluation: ${(e as Error).message}`, { file });
  }
  const value = (metric: string, key: string) =>
    parsed.records.find((r) => r.metric === metric && r.comparison === 'fake' && r.class === null)?.values[
      key
    ] ?? null;
  const fake = value('msssim', 'msssim');
  const real = value('msssim', 'msssimReal');
  return {
    fid: value('fid', 'fid'),
    kid: value('kid', 'kid'),
    precision: value('prdc', 'precision'),
    recall: value('prdc', 'recall'),
    coverage: value('prdc', 'coverage'),
    msssimRatio: fake !== null && real !== null && real > 0 ? fake / real : null,
    // Class-averaged: the pool's class mix follows the conditions' demand, not the data's.
    classFidelity: fidelity?.balancedAccuracy ?? null,
  };
}

/** A generator instance's record in the store, validated (undefined when the instance has none yet). */
export function instanceRecord(store: StudyStore, key: string): InstanceRecord | undefined {
  const raw = store.getMeta<unknown>(`instance:${key}`);
  if (raw === undefined) return undefined;
  const parsed = InstanceRecordSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StudyError(`a damaged generator record in the study database: ${issue.message}`, {
      file: store.file,
      field: `instance:${key}.${issue.path.join('.')}`,
    });
  }
  return parsed.data;
}

/** Trains and scores one job, and writes its row. */
export async function runJob(
  job: StudyJob,
  real: RealData,
  pool: Labelled | null,
  config: StudyConfig,
  positive: number | undefined,
  control: RunControl,
): Promise<JobRow> {
  const t0 = performance.now();
  const K = real.classNames.length;
  const set = trainingSet(job, real.train, pool, K);
  const steps = config.equalSteps ? job.classifier.stepsFor(real.train.labels.length) : null;
  const classifier = await job.classifier.train(
    { images: set.images, labels: set.labels, classNames: real.classNames },
    { images: real.val.images, labels: real.val.labels },
    job.seed,
    { signal: control.signal },
    { augment: job.condition.augment, ...(steps !== null ? { steps } : {}) },
  );
  try {
    const proba = await classifier.predictProba(real.test.images);
    const metrics = classificationMetrics(real.test.labels, proba, real.classNames, {
      ...(positive !== undefined ? { positiveClass: positive } : {}),
    });
    const predicted = argmaxRows(proba, K);
    return {
      id: job.id,
      generator: job.instance?.entry.name ?? null,
      generatorSeed: job.generatorSeed,
      condition: job.conditionName,
      classifier: job.classifier.name,
      seed: job.seed,
      trainReal: set.real,
      trainSynthetic: set.synthetic,
      trainClassCounts: classCounts(set.labels, K),
      metrics: metrics as unknown as Record<string, unknown>,
      correct: Uint8Array.from(real.test.labels, (l, i) => (predicted[i] === l ? 1 : 0)),
      proba,
      classifierInfo: { ...classifier.describe(), backend: describeBackend()?.backend ?? null },
      seconds: (performance.now() - t0) / 1000,
      finishedAt: new Date().toISOString(),
    };
  } finally {
    classifier.dispose();
  }
}
