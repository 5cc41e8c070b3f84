/**
 * Runs a study: the real splits; the generator-free jobs (the baselines); then for every generator instance
 * (generator × generator seed × scope, see generators.ts) its training run(s), its synthetic pool, the pool's
 * class fidelity, the evaluation of its images, and its jobs; each job writes one row to the results store
 * when it finishes; finally the summaries (`results.json`, `results.csv`).
 *
 * Resumable at every stage: generator runs resume from their last checkpoint (finished ones are reused), a
 * synthetic pool is regenerated from its seeds (image i of a pool is always the same image), an evaluation is
 * skipped when its `evaluation.json` exists, and jobs with a row are skipped. A job's result depends only on
 * its (generator instance, condition, classifier, seed), the data and that generator, so a resumed study has
 * the same rows as an uninterrupted one (same backend and threads).
 *
 * Study directory:
 *   study.json            the resolved config (what `--resume` reads)
 *   study.sqlite          one row per finished job, and each generator instance's record (store.ts)
 *   real-grid.png
 *   generators/<name>/seed-<g>/<all | limited-10pct>/   the instance's run(s), synthetic-grid.png, evaluation/
 *   results.json, results.csv
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { TrainedClassifier } from '../classify/types.js';
import { encodePng, tileImages } from '../data/image/grid.js';
import { openDataset } from '../data/source.js';
import { stratifiedFraction } from '../data/splits.js';
import { gridRows } from '../metrics/write-evaluation.js';
import { slowBackendWarning } from '../runtime/backend.js';
import { StudyError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { createRunDir } from '../training/run-dir.js';
import { readRunOptions } from '../training/loop.js';
import { resolveStudyConfig, type StudyConfig } from './config.js';
import { estimateStudy, type StudyEstimate } from './estimate.js';
import { studyInstances, studyJobs, type StudyJob } from './grid.js';
import {
  classCounts,
  instanceRecord,
  loadReal,
  positiveIndex,
  preparePool,
  runJob,
  studyChannels,
  studyJudge,
  type Labelled,
  type RealData,
  type StageOptions,
} from './stages.js';
import type { GeneratorInstance } from './generators.js';
import type { QueueFailure, QueueSettings } from './queued.js';
import { STORE_FILE, StudyStore } from './store.js';
import { type InstanceRecord, summariseStudy, writeResults, type StudySummary } from './summary.js';

export { studyJobs, trainingSet, type StudyJob } from './grid.js';

export const STUDY_FILE = 'study.json';
const STUDY_FORMAT = 'medsynth-study';

export interface StudyOptions extends StageOptions {
  /** Run the jobs on a BullMQ queue (workers anywhere: queued.ts) instead of in this process. */
  readonly queue?: QueueSettings | undefined;
  /** Parent folder of numbered study directories (default `studies`). */
  readonly outDir?: string | undefined;
  /** Study directory name suffix (default `<preset>-<data name>-<size>`). */
  readonly name?: string | undefined;
}

export interface StudyResult {
  readonly dir: string;
  readonly jobs: number;
  /** Jobs run now; the rest were finished before (resume). */
  readonly ran: number;
  readonly seconds: number;
  readonly summary: StudySummary;
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
    `${JSON.stringify({ format: STUDY_FORMAT, version: 2, config }, null, 2)}\n`,
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

/**
 * The study's expected run time (estimate.ts), from the dataset's listing: the train split's labels capped
 * as the study caps them, and the test split's size. No image is decoded.
 */
export async function estimateStudyTime(
  config: StudyConfig,
  control: RunControl = {},
): Promise<StudyEstimate> {
  const ds = await openDataset(config.data, control);
  let train = ds.split('train');
  const cap = config.maxImages.train;
  if (cap !== undefined && train.size > cap)
    train = train.subset(stratifiedFraction(train.labels, cap / train.size, config.data.seed));
  const testCap = config.maxImages.test;
  const test = ds.split('test').size;
  const runModels = new Map<string, string>();
  for (const entry of config.generators)
    if (entry.run !== undefined) runModels.set(entry.run, (await readRunOptions(entry.run)).model);
  return estimateStudy(
    config,
    studyJobs(config),
    Int32Array.from(train.labels),
    ds.classNames.length,
    testCap !== undefined ? Math.min(testCap, test) : test,
    undefined,
    runModels,
  );
}

/** Finishes a study that was interrupted (or re-summarises a finished one). */
export async function resumeStudy(dir: string, options: StudyOptions = {}): Promise<StudyResult> {
  const config = await readStudyConfig(dir);
  return execute(resolve(dir), config, options);
}

async function execute(dir: string, config: StudyConfig, options: StudyOptions): Promise<StudyResult> {
  const started = performance.now();
  const control: RunControl = { onProgress: options.onProgress, signal: options.signal };
  const { onProgress } = control;
  const jobs = studyJobs(config);
  const instances = studyInstances(jobs);
  const store = StudyStore.open(join(dir, STORE_FILE));
  try {
    store.setMeta('config', config);
    // Checks that need only the dataset's listing, before minutes of loading and training.
    positiveIndex(config, (await openDataset(config.data, control)).classNames);
    const slow = slowBackendWarning();
    if (slow) onProgress?.({ type: 'warning', message: slow });
    onProgress?.({ type: 'phase', phase: 'load real images' });
    const real = await loadReal(config, await studyChannels(config), control);
    await writeFileAtomic(
      join(dir, 'real-grid.png'),
      await encodePng(tileImages(gridRows(real.train, real.classNames, 10))),
    );
    const needsEvaluation = (instance: GeneratorInstance) =>
      config.evaluate.enabled &&
      instance.fraction === null &&
      !existsSync(join(dir, 'generators', instance.key, 'evaluation', 'evaluation.json'));
    let ran: number;
    let failures: readonly QueueFailure[] = [];
    if (options.queue) {
      // Loaded only for queued studies: an in-process study needs neither BullMQ nor Redis.
      const { runQueued } = await import('./queued.js');
      const queued = await runQueued(
        dir,
        config,
        jobs,
        store,
        options.queue,
        (i) => instanceRecord(store, i.key) === undefined || needsEvaluation(i),
        control,
      );
      ran = queued.ran;
      failures = queued.failures;
    } else ran = await runHere(dir, config, jobs, store, real, options, needsEvaluation);
    onProgress?.({ type: 'tick', phase: 'jobs', done: jobs.length, total: jobs.length, unit: 'jobs' });
    const records = instances
      .map((i) => instanceRecord(store, i.key))
      .filter((r): r is InstanceRecord => r !== undefined);
    const summary = summariseStudy(
      config,
      real.classNames,
      real.test.labels,
      store.jobs(),
      records,
      classCounts(real.train.labels, real.classNames.length),
      failures,
    );
    await writeResults(dir, summary);
    return { dir, jobs: jobs.length, ran, seconds: (performance.now() - started) / 1000, summary };
  } finally {
    store.close();
  }
}

/** The study's remaining jobs in this process: the baselines, then each generator instance and its jobs. */
async function runHere(
  dir: string,
  config: StudyConfig,
  jobs: readonly StudyJob[],
  store: StudyStore,
  real: RealData,
  options: StudyOptions,
  needsEvaluation: (instance: GeneratorInstance) => boolean,
): Promise<number> {
  const control: RunControl = { onProgress: options.onProgress, signal: options.signal };
  const { onProgress, signal } = control;
  const positive = positiveIndex(config, real.classNames);
  const done = store.finishedIds();
  let ran = 0;
  let finished = jobs.filter((j) => done.has(j.id)).length;
  const jobsStarted = performance.now();
  const run = async (list: readonly StudyJob[], pool: Labelled | null) => {
    for (const job of list) {
      if (done.has(job.id)) continue;
      signal?.throwIfAborted();
      onProgress?.({
        type: 'tick',
        phase: 'jobs',
        done: finished,
        total: jobs.length,
        unit: 'jobs',
        ...(ran > 0 ? { stats: { secondsPerJob: (performance.now() - jobsStarted) / 1000 / ran } } : {}),
      });
      onProgress?.({ type: 'phase', phase: `job ${job.id}` });
      const row = await runJob(job, real, pool, config, positive, control);
      store.putJob(row);
      ran++;
      finished++;
      onProgress?.({
        type: 'metric',
        name: `${job.id} accuracy`,
        value: (row.metrics as { accuracy: number }).accuracy,
      });
    }
  };
  await run(
    jobs.filter((j) => j.instance === null),
    null,
  );
  // The class-fidelity judge is trained when the first pool is made (a finished study needs none).
  let judge: TrainedClassifier | null | undefined;
  try {
    for (const instance of studyInstances(jobs)) {
      const mine = jobs.filter((j) => j.instance?.key === instance.key);
      const recorded = instanceRecord(store, instance.key);
      if (mine.every((j) => done.has(j.id)) && recorded && !needsEvaluation(instance)) continue;
      if (judge === undefined) judge = await studyJudge(config, jobs, real, control);
      const pool = await preparePool(dir, config, instance, mine, real, judge, options);
      store.setMeta(`instance:${instance.key}`, pool.record);
      await run(mine, pool.set);
    }
  } finally {
    judge?.dispose();
  }
  return ran;
}
