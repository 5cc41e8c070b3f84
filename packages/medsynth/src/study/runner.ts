/**
 * Runs a study: the generator (trained inside the study directory, or an existing run), a synthetic pool,
 * the synthetic images' evaluation, then every job of the grid conditions × classifiers × seeds, each
 * writing one row to the results store when it finishes; finally the summaries (`results.json`,
 * `results.csv`).
 *
 * Resumable at every stage: the GAN run resumes from its last checkpoint, the synthetic pool is
 * regenerated from its seeds (image i of the pool is always the same image), the evaluation is skipped when
 * its `evaluation.json` exists, and jobs with a row are skipped. A job's result depends only on its
 * (condition, classifier, seed), the data and the generator, so a resumed study has the same rows as an
 * uninterrupted one (same backend and threads).
 *
 * Study directory:
 *   study.json            the resolved config (what `--resume` reads)
 *   study.sqlite          one row per finished job (store.ts)
 *   gan/<run>/            the generator's training run (when trained here)
 *   real-grid.png, synthetic-grid.png
 *   evaluation/           FID/KID/PRDC/MS-SSIM/privacy of the synthetic images (metrics/)
 *   results.json, results.csv
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openDataset } from '../data/source.js';
import { stratifiedFraction } from '../data/splits.js';
import { encodePng, tileImages } from '../data/image/grid.js';
import { pickImages } from '../data/image/transform.js';
import type { ImageArray } from '../data/types.js';
import { resolveTrainOptions, type TrainOptionsInput, trainPresetForSize } from '../config/train-options.js';
import type { LabelledSet } from '../metrics/evaluate.js';
import { evaluateSources, generateFromRun } from '../metrics/sources.js';
import { gridRows, writeEvaluation } from '../metrics/write-evaluation.js';
import type { SamplingGenerator } from '../models/types.js';
import { describeBackend } from '../runtime/backend.js';
import { ConfigError, StudyError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import { createRunDir } from '../training/run-dir.js';
import { loadGenerator } from '../training/load-run.js';
import { resumeGan, trainGan } from '../training/loop.js';
import { argmaxRows } from '../classify/evaluation.js';
import { classificationMetrics } from '../classify/metrics.js';
import { resolveStudyClassifiers, type StudyClassifier } from './classifiers.js';
import { composeTrainingSet, syntheticDemand, type Condition } from './conditions.js';
import { resolveStudyConfig, studyConditions, type StudyConfig } from './config.js';
import { jobId, STORE_FILE, StudyStore, type JobRow } from './store.js';
import { type PoolTiming, summariseStudy, writeResults, type StudySummary } from './summary.js';

export const STUDY_FILE = 'study.json';
const STUDY_FORMAT = 'medsynth-study';

export interface StudyOptions extends RunControl {
  /** Parent folder of numbered study directories (default `studies`). */
  readonly outDir?: string | undefined;
  /** Study directory name suffix (default `<preset>-<data name>-<size>`). */
  readonly name?: string | undefined;
  /** Feature-extractor cache root for the evaluation (default `$MEDSYNTH_CACHE` or ~/.cache/medsynth). */
  readonly cacheDir?: string | undefined;
}

export interface StudyResult {
  readonly dir: string;
  readonly jobs: number;
  /** Jobs run now; the rest were finished before (resume). */
  readonly ran: number;
  readonly seconds: number;
  readonly summary: StudySummary;
}

/** One cell of the grid. */
export interface StudyJob {
  readonly id: string;
  readonly conditionName: string;
  readonly condition: Condition;
  readonly classifier: StudyClassifier;
  readonly seed: number;
}

/** The grid in run order: seed-major, so every condition has results early and seeds fill in. */
export function studyJobs(config: StudyConfig): StudyJob[] {
  const conditions = studyConditions(config);
  const classifiers = resolveStudyClassifiers(config.classifiers);
  const jobs: StudyJob[] = [];
  for (const seed of config.seeds)
    for (const { name, condition } of conditions)
      for (const classifier of classifiers)
        jobs.push({
          id: jobId(name, classifier.name, seed),
          conditionName: name,
          condition,
          classifier,
          seed,
        });
  return jobs;
}

function dataName(source: string): string {
  const base = source.replace(/^medmnist:/, '').replace(/[/\\]+$/, '');
  const last = base.split(/[/\\]/).pop() ?? 'data';
  return (
    last
      .replace(/\.(npz|csv)$/i, '')
      .replace(/[^\w.-]+/g, '_')
      .slice(0, 40) || 'data'
  );
}

/** Starts a new study in a fresh numbered directory under `outDir`. */
export async function runStudy(config: StudyConfig, options: StudyOptions = {}): Promise<StudyResult> {
  studyJobs(config); // every condition and classifier checked before anything is written
  const name = options.name ?? `${config.preset ?? 'study'}-${dataName(config.data.source)}-${config.size}`;
  const dir = await createRunDir(options.outDir ?? 'studies', name);
  await writeFileAtomic(
    join(dir, STUDY_FILE),
    `${JSON.stringify({ format: STUDY_FORMAT, version: 1, config }, null, 2)}\n`,
  );
  return execute(dir, config, options);
}

/** Reads a study directory's resolved config. */
export async function readStudyConfig(dir: string): Promise<StudyConfig> {
  const file = join(resolve(dir), STUDY_FILE);
  let parsed: { format?: unknown; config?: unknown };
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as typeof parsed;
  } catch (e) {
    throw new StudyError(`not a study directory (no readable ${STUDY_FILE}): ${(e as Error).message}`, {
      file,
    });
  }
  if (parsed.format !== STUDY_FORMAT || typeof parsed.config !== 'object' || parsed.config === null)
    throw new StudyError('not a medsynth study file', { file });
  return resolveStudyConfig(parsed.config as Parameters<typeof resolveStudyConfig>[0]);
}

/** Finishes a study that was interrupted (or re-summarises a finished one). */
export async function resumeStudy(dir: string, options: StudyOptions = {}): Promise<StudyResult> {
  const config = await readStudyConfig(dir);
  return execute(resolve(dir), config, options);
}

interface RealData {
  readonly classNames: readonly string[];
  readonly train: LabelledSet & { labels: Int32Array };
  readonly val: LabelledSet & { labels: Int32Array };
  readonly test: LabelledSet & { labels: Int32Array };
}

/**
 * The real splits at the study's size and at the generator's channels (which `channels: auto` resolved from
 * the train split's content when the generator was trained), so that every split has one channel count.
 */
async function loadReal(config: StudyConfig, channels: 1 | 3, control: RunControl): Promise<RealData> {
  const ds = await openDataset(config.data, control);
  const load = async (name: 'train' | 'val' | 'test') => {
    let split = ds.split(name);
    if (split.size === 0)
      throw new StudyError(`the ${name} split is empty`, {
        field: 'data.splitRatios',
        expected: `images in train, val and test (${name} scores or stops the classifiers)`,
      });
    const cap = config.maxImages[name];
    if (cap !== undefined && split.size > cap)
      split = split.subset(stratifiedFraction(split.labels, cap / split.size, config.data.seed));
    const images = await split.load({ size: config.size, channels, bitDepth: 8, ...control });
    return { images, labels: Int32Array.from(split.labels) };
  };
  return {
    classNames: ds.classNames,
    train: await load('train'),
    val: await load('val'),
    test: await load('test'),
  };
}

/** The generator's run directory: trained (or resumed) inside the study, unless the config names one. */
async function generatorRun(dir: string, config: StudyConfig, control: RunControl): Promise<string> {
  if (config.generator.run !== undefined) return resolve(config.generator.run);
  const ganDir = join(dir, 'gan');
  await mkdir(ganDir, { recursive: true });
  const runs = (await readdir(ganDir)).filter((n) => /^\d{5,}-/.test(n)).sort();
  const existing = runs.length > 0 ? join(ganDir, runs[runs.length - 1]!) : undefined;
  if (existing) {
    const result = join(existing, 'result.json');
    if (existsSync(result)) {
      const r = JSON.parse(await readFile(result, 'utf8')) as { stoppedBy?: string };
      if (r.stoppedBy !== 'aborted') return existing;
    }
    if (
      existsSync(join(existing, 'checkpoints')) &&
      (await readdir(join(existing, 'checkpoints'))).length > 0
    ) {
      control.onProgress?.({ type: 'phase', phase: 'generator', detail: `resuming ${existing}` });
      await resumeGan(existing, {}, control);
      return existing;
    }
    await rm(existing, { recursive: true, force: true });
  }
  const train = config.generator.train as Partial<TrainOptionsInput>;
  const options = resolveTrainOptions({
    ...train,
    // Without a named preset, the one made for the study's image size and family (ADA and R1 from 64 px up
    // for the GANs; ddpm-28 / ddpm-64 for the diffusion model).
    preset: train.preset ?? trainPresetForSize(config.size, train.model),
    data: config.data,
    size: config.size,
    channels: config.channels,
    outDir: ganDir,
  } as TrainOptionsInput);
  const r = await trainGan(options, control);
  if (r.stoppedBy === 'aborted') control.signal?.throwIfAborted();
  return r.runDir;
}

function checkGenerator(
  g: SamplingGenerator,
  real: readonly string[],
  config: StudyConfig,
  run: string,
): void {
  if (g.size !== config.size)
    throw new StudyError('the generator makes images of another size than the study', {
      file: run,
      expected: `${config.size} px`,
      found: `${g.size} px`,
    });
  if (config.channels !== 'auto' && g.channels !== config.channels)
    throw new StudyError('the generator makes images with other channels than the study asks for', {
      file: run,
      field: 'channels',
      expected: `${config.channels} channel(s)`,
      found: `${g.channels} channel(s) (use --channels auto or ${g.channels} with this generator)`,
    });
  if (!g.conditional)
    throw new StudyError(
      'the study needs a class-conditional generator (one trained on labelled data) for per-class sets',
      {
        file: run,
      },
    );
  if (g.classNames.join('\u0000') !== real.join('\u0000'))
    throw new StudyError("the generator's classes are not the dataset's", {
      file: run,
      expected: real.join(', '),
      found: g.classNames.join(', '),
    });
}

/** Images of `set` at `positions`, with labels. */
function take(set: LabelledSet & { labels: Int32Array }, positions: ArrayLike<number>) {
  return {
    images: pickImages(set.images, Array.from(positions)),
    labels: Int32Array.from(positions as ArrayLike<number>, (p) => set.labels[p]!),
  };
}

function concat(a: ImageArray, b: ImageArray): ImageArray {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  const data = new Uint8Array(a.data.length + b.data.length);
  data.set(a.data as Uint8Array, 0);
  data.set(b.data as Uint8Array, a.data.length);
  return { ...a, data, count: a.count + b.count };
}

/** A job's training set: its real positions plus, per class, a seeded choice from the synthetic pool. */
export function trainingSet(
  job: Pick<StudyJob, 'condition' | 'conditionName' | 'seed'>,
  real: LabelledSet & { labels: Int32Array },
  pool: LabelledSet & { labels: Int32Array },
  numClasses: number,
): { images: ImageArray; labels: Int32Array; real: number; synthetic: number } {
  const comp = composeTrainingSet(job.condition, real.labels, numClasses, job.seed);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  pool.labels.forEach((l, i) => byClass[l]!.push(i));
  const picked: number[] = [];
  comp.synthetic.forEach((n, k) => {
    if (n === 0) return;
    const members = byClass[k]!;
    if (members.length < n)
      throw new StudyError(`the synthetic pool has ${members.length} images of class ${k}; ${n} are needed`);
    picked.push(
      ...Rng.derive(job.seed, 'synthetic', job.conditionName, k).shuffle(members.slice()).slice(0, n),
    );
  });
  const r = take(real, comp.real);
  const s = take(
    pool,
    picked.sort((a, b) => a - b),
  );
  return {
    images: concat(r.images, s.images),
    labels: Int32Array.from([...r.labels, ...s.labels]),
    real: comp.real.length,
    synthetic: picked.length,
  };
}

function positiveIndex(config: StudyConfig, classNames: readonly string[]): number | undefined {
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

function classCounts(labels: Int32Array, k: number): number[] {
  const c = new Array<number>(k).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}

async function execute(dir: string, config: StudyConfig, options: StudyOptions): Promise<StudyResult> {
  const started = performance.now();
  const control: RunControl = { onProgress: options.onProgress, signal: options.signal };
  const { onProgress, signal } = control;
  const jobs = studyJobs(config);
  const store = StudyStore.open(join(dir, STORE_FILE));
  try {
    store.setMeta('config', config);
    // Checks that need only the dataset's listing, before the generator's minutes of training.
    const classNames = (await openDataset(config.data, control)).classNames;
    positiveIndex(config, classNames);
    onProgress?.({ type: 'phase', phase: 'generator' });
    const runDir = await generatorRun(dir, config, control);
    store.setMeta('generatorRun', runDir);
    const { generator, run } = await loadGenerator(runDir, {
      checkpoint: config.generator.checkpoint,
      sampling: config.generator.sampling,
    });
    let pool: LabelledSet & { labels: Int32Array };
    let poolTiming: PoolTiming;
    let real: RealData;
    try {
      checkGenerator(generator, classNames, config, runDir); // before minutes of loading
      onProgress?.({ type: 'phase', phase: 'load real images' });
      real = await loadReal(config, generator.channels, control);
      const K = real.classNames.length;
      const demand = syntheticDemand(
        jobs.map((j) => j.condition),
        real.train.labels,
        K,
      );
      onProgress?.({
        type: 'phase',
        phase: 'synthetic pool',
        detail: `${demand.reduce((a, b) => a + b, 0)} images (${demand.join(' / ')})`,
      });
      const sampling = performance.now();
      const made = await generateFromRun(generator, demand, config.generator.truncation, control);
      pool = { images: made.images, labels: made.labels ?? new Int32Array(0) };
      poolTiming = { images: made.images.count, seconds: (performance.now() - sampling) / 1000 };
      store.setMeta('generator', {
        run: runDir,
        checkpoint: run.checkpoint ?? null,
        truncation: config.generator.truncation ?? 1,
        sampling: config.generator.sampling ?? null,
        pool: demand,
        poolSeconds: poolTiming.seconds,
      });
    } finally {
      generator.dispose();
    }
    const K = real.classNames.length;
    const positive = positiveIndex(config, real.classNames);
    await writeFileAtomic(
      join(dir, 'real-grid.png'),
      await encodePng(tileImages(gridRows(real.train, real.classNames, 10))),
    );
    await writeFileAtomic(
      join(dir, 'synthetic-grid.png'),
      await encodePng(tileImages(gridRows(pool, real.classNames, 10))),
    );

    if (config.evaluate.enabled && !existsSync(join(dir, 'evaluation', 'evaluation.json'))) {
      onProgress?.({ type: 'phase', phase: 'evaluate synthetic images' });
      const ev = await evaluateSources({
        fake: runDir,
        real: config.data,
        size: config.size,
        channels: generator.channels,
        checkpoint: config.generator.checkpoint,
        truncation: config.generator.truncation,
        sampling: config.generator.sampling,
        metrics: config.evaluate.metrics,
        extractor: config.evaluate.extractor,
        domain: config.evaluate.extractorEpochs ? { epochs: config.evaluate.extractorEpochs } : {},
        cacheDir: options.cacheDir,
        ...control,
      });
      await writeEvaluation(join(dir, 'evaluation'), ev);
    }

    const done = store.finishedIds();
    const todo = jobs.filter((j) => !done.has(j.id));
    let ran = 0;
    const jobsStarted = performance.now();
    for (const job of todo) {
      signal?.throwIfAborted();
      const t0 = performance.now();
      onProgress?.({
        type: 'tick',
        phase: 'jobs',
        done: jobs.length - todo.length + ran,
        total: jobs.length,
        unit: 'jobs',
        ...(ran > 0 ? { stats: { secondsPerJob: (t0 - jobsStarted) / 1000 / ran } } : {}),
      });
      onProgress?.({ type: 'phase', phase: `job ${job.id}` });
      const set = trainingSet(job, real.train, pool, K);
      const classifier = await job.classifier.train(
        { images: set.images, labels: set.labels, classNames: real.classNames },
        { images: real.val.images, labels: real.val.labels },
        job.seed,
        { signal },
      );
      try {
        const proba = await classifier.predictProba(real.test.images);
        const metrics = classificationMetrics(real.test.labels, proba, real.classNames, {
          ...(positive !== undefined ? { positiveClass: positive } : {}),
        });
        const predicted = argmaxRows(proba, K);
        const correct = Uint8Array.from(real.test.labels, (l, i) => (predicted[i] === l ? 1 : 0));
        const row: JobRow = {
          id: job.id,
          condition: job.conditionName,
          classifier: job.classifier.name,
          seed: job.seed,
          trainReal: set.real,
          trainSynthetic: set.synthetic,
          trainClassCounts: classCounts(set.labels, K),
          metrics: metrics as unknown as Record<string, unknown>,
          correct,
          proba,
          classifierInfo: { ...classifier.describe(), backend: describeBackend()?.backend ?? null },
          seconds: (performance.now() - t0) / 1000,
          finishedAt: new Date().toISOString(),
        };
        store.putJob(row);
        ran++;
        onProgress?.({ type: 'metric', name: `${job.id} accuracy`, value: metrics.accuracy });
      } finally {
        classifier.dispose();
      }
    }
    onProgress?.({ type: 'tick', phase: 'jobs', done: jobs.length, total: jobs.length, unit: 'jobs' });
    const summary = summariseStudy(config, real.classNames, real.test.labels, store.jobs(), poolTiming);
    await writeResults(dir, summary);
    return { dir, jobs: jobs.length, ran, seconds: (performance.now() - started) / 1000, summary };
  } finally {
    store.close();
  }
}
