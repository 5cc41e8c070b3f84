/**
 * A study worker: takes jobs from the BullMQ queue and runs them with the study's own stage functions
 * (study/stages.ts), so a queued job computes exactly what the in-process runner computes.
 *
 *   pool      a generator instance: its run(s) trained (or reused), its synthetic pool sampled, judged and
 *             evaluated; the instance's folder and the pool go to the artifact store (content-addressed by
 *             the study's hash and the instance key: a retried or repeated job finds them and returns the
 *             stored record without training again);
 *   classify  one classifier job on the real splits (+ the instance's pool from the store): its row.
 *
 * A worker keeps one study's real splits, judge and last pools in memory between jobs (the next job of the
 * same study skips loading them). A job whose payload does not verify (protocol.ts), names an unknown job
 * or instance, or fails on its input (a ConfigError, a StudyError…) fails once: BullMQ's
 * `UnrecoverableError` stops its retries. Any other error is retried (`attempts` set by the coordinator). A
 * worker killed mid-job loses its lock; BullMQ's stalled-job check hands the job to another worker.
 */
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { TrainedClassifier } from '../classify/types.js';
import type { ImageArray } from '../data/types.js';
import { isMedsynthError, QueueError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { resolveStudyConfig, type StudyConfig } from '../study/config.js';
import { studyInstances, studyJobs, type StudyJob } from '../study/grid.js';
import {
  loadReal,
  positiveIndex,
  preparePool,
  runJob,
  studyChannels,
  studyJudge,
  type Labelled,
  type RealData,
} from '../study/stages.js';
import { openArtifactStore, type ArtifactStore } from './artifacts.js';
import { connectRedis } from './connection.js';
import {
  encodeRow,
  instanceArtifacts,
  QUEUE_NAME,
  SECRET_ENV,
  verifyPayload,
  type JobPayload,
  type PoolResult,
  PoolResultSchema,
} from './protocol.js';

export interface WorkerSetup {
  /** The queue's Redis URL (connection.ts). */
  readonly queue: string;
  /** CA of a TLS Redis (PEM file). */
  readonly ca?: string | undefined;
  /** Local working folder for generator runs before they go to the store. */
  readonly scratch: string;
  /** The secret jobs must be signed with (default $MEDSYNTH_QUEUE_SECRET; unset: hashes are still checked). */
  readonly secret?: string | undefined;
  /** Feature-extractor cache root (evaluations). */
  readonly cacheDir?: string | undefined;
  /** Seconds a job's lock lasts without renewal; a worker silent for longer is taken as dead (default 300: long synchronous stretches — a PRDC or memorisation pass — must not look like death). */
  readonly lockSeconds?: number | undefined;
  /** Seconds between checks for jobs whose worker died (default 30). */
  readonly stalledSeconds?: number | undefined;
  /** Stop after this many jobs (tests, draining); default: run until stopped. */
  readonly maxJobs?: number | undefined;
}

export interface WorkerResult {
  readonly completed: number;
  readonly failed: number;
}

/** A synthetic pool as bytes: a JSON header line, then the pixels, then the labels (int32 LE). */
export function encodePool(set: Labelled): Uint8Array {
  const { images, labels } = set;
  const header = Buffer.from(
    `${JSON.stringify({
      format: 'medsynth-pool',
      count: images.count,
      height: images.height,
      width: images.width,
      channels: images.channels,
      maxValue: images.maxValue,
      bytesPerValue: images.data.BYTES_PER_ELEMENT,
    })}\n`,
  );
  const pixels = Buffer.from(images.data.buffer, images.data.byteOffset, images.data.byteLength);
  const lab = Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength);
  return Buffer.concat([header, pixels, lab]);
}

export function decodePool(bytes: Uint8Array, where: string): Labelled {
  const nl = bytes.indexOf(10);
  let h: {
    format?: unknown;
    count: number;
    height: number;
    width: number;
    channels: 1 | 3;
    maxValue: number;
    bytesPerValue: number;
  };
  try {
    h = JSON.parse(Buffer.from(bytes.subarray(0, nl)).toString('utf8')) as typeof h;
  } catch {
    throw new QueueError(`${where}: not a synthetic pool`);
  }
  const values = h.count * h.height * h.width * h.channels;
  const pixelBytes = values * h.bytesPerValue;
  if (h.format !== 'medsynth-pool' || bytes.byteLength !== nl + 1 + pixelBytes + 4 * h.count)
    throw new QueueError(`${where}: a damaged synthetic pool`, {
      expected: `${nl + 1 + pixelBytes + 4 * h.count} bytes`,
      found: `${bytes.byteLength}`,
    });
  // Copies (own buffers, aligned): `bytes` may be a view into a larger, shared buffer.
  const raw = new Uint8Array(bytes.subarray(nl + 1, nl + 1 + pixelBytes));
  const data = h.bytesPerValue === 2 ? new Uint16Array(raw.buffer, 0, values) : raw;
  const labels = new Int32Array(new Uint8Array(bytes.subarray(nl + 1 + pixelBytes)).buffer);
  const images: ImageArray = {
    data,
    count: h.count,
    height: h.height,
    width: h.width,
    channels: h.channels,
    maxValue: h.maxValue,
  };
  return { images, labels };
}

/** One study's loaded state on this worker. */
interface StudyContext {
  readonly hash: string;
  readonly config: StudyConfig;
  readonly jobs: readonly StudyJob[];
  readonly real: RealData;
  readonly positive: number | undefined;
  judge: TrainedClassifier | null | undefined;
  readonly pools: Map<string, Labelled>;
}

/** Keeps the pools of the last few instances (the classifier jobs of one instance come together). */
function remember(ctx: StudyContext, key: string, pool: Labelled): void {
  if (!ctx.pools.has(key) && ctx.pools.size >= 4) ctx.pools.delete(ctx.pools.keys().next().value!);
  ctx.pools.set(key, pool);
}

const unrecoverable = (e: unknown): boolean =>
  e instanceof QueueError || (isMedsynthError(e) && e.exitCode === 2);

/**
 * Runs jobs until `control.signal` aborts (the job in hand finishes first) or `maxJobs` are done.
 */
export async function runWorker(setup: WorkerSetup, control: RunControl = {}): Promise<WorkerResult> {
  const secret = setup.secret ?? (process.env[SECRET_ENV] || undefined);
  const emit = control.onProgress;
  let context: StudyContext | null = null;
  const stores = new Map<string, ArtifactStore>();
  const storeAt = (location: string) => {
    let s = stores.get(location);
    if (!s) stores.set(location, (s = openArtifactStore(location)));
    return s;
  };
  let completed = 0;
  let failed = 0;

  const contextFor = async (p: JobPayload): Promise<StudyContext> => {
    if (context?.hash === p.studyHash) return context;
    context?.judge?.dispose();
    context = null;
    const config = resolveStudyConfig(p.config as Parameters<typeof resolveStudyConfig>[0]);
    emit?.({ type: 'phase', phase: 'load real images', detail: `study ${p.studyHash.slice(0, 12)}` });
    const real = await loadReal(config, await studyChannels(config), control);
    context = {
      hash: p.studyHash,
      config,
      jobs: studyJobs(config),
      real,
      positive: positiveIndex(config, real.classNames),
      judge: undefined,
      pools: new Map(),
    };
    return context;
  };

  const poolJob = async (p: JobPayload, ctx: StudyContext): Promise<PoolResult> => {
    const instance = studyInstances(ctx.jobs).find((i) => i.key === p.instanceKey);
    if (!instance)
      throw new QueueError(`the study has no generator instance "${p.instanceKey}"`, {
        field: 'instanceKey',
      });
    const store = storeAt(p.artifacts);
    const keys = instanceArtifacts(p.studyHash, instance.key);
    if ((await store.has(keys.record)) && (await store.has(keys.folder)) && (await store.has(keys.pool))) {
      emit?.({ type: 'phase', phase: 'pool', detail: `${instance.key}: finished before (reused)` });
      const saved = JSON.parse(Buffer.from(await store.getFile(keys.record)).toString('utf8')) as unknown;
      return PoolResultSchema.parse(saved);
    }
    ctx.judge ??= await studyJudge(ctx.config, ctx.jobs, ctx.real, control);
    const root = join(setup.scratch, p.studyHash.slice(0, 16));
    await mkdir(root, { recursive: true });
    const mine = ctx.jobs.filter((j) => j.instance?.key === instance.key);
    const pool = await preparePool(root, ctx.config, instance, mine, ctx.real, ctx.judge, {
      ...control,
      cacheDir: setup.cacheDir,
    });
    remember(ctx, instance.key, pool.set);
    await store.putFile(keys.pool, encodePool(pool.set));
    await store.putDir(keys.folder, join(root, 'generators', instance.key));
    const result: PoolResult = { record: pool.record, folder: keys.folder, pool: keys.pool, root };
    await store.putFile(keys.record, Buffer.from(JSON.stringify(result)));
    return result;
  };

  const classifyJob = async (p: JobPayload, ctx: StudyContext) => {
    const job = ctx.jobs.find((j) => j.id === p.jobId);
    if (!job) throw new QueueError(`the study has no job "${p.jobId}"`, { field: 'jobId' });
    let pool: Labelled | null = null;
    if (job.instance) {
      pool = ctx.pools.get(job.instance.key) ?? null;
      if (!pool) {
        const key = instanceArtifacts(p.studyHash, job.instance.key).pool;
        pool = decodePool(await storeAt(p.artifacts).getFile(key), `the pool of ${job.instance.key}`);
        remember(ctx, job.instance.key, pool);
      }
    }
    emit?.({ type: 'phase', phase: `job ${job.id}` });
    const row = await runJob(job, ctx.real, pool, ctx.config, ctx.positive, control);
    return encodeRow(row);
  };

  const processor = async (job: Job) => {
    try {
      const p = verifyPayload(job.data, secret, `job ${job.id}`);
      const ctx = await contextFor(p);
      return p.kind === 'pool' ? await poolJob(p, ctx) : await classifyJob(p, ctx);
    } catch (e) {
      if (unrecoverable(e)) throw new UnrecoverableError(e instanceof Error ? e.message : String(e));
      throw e;
    }
  };

  const connection = connectRedis(setup.queue, { ca: setup.ca });
  // ioredis reconnects by itself; BullMQ's 'error' events below report what matters.
  connection.on('error', () => {});
  const worker = new Worker(QUEUE_NAME, processor, {
    connection,
    concurrency: 1,
    lockDuration: (setup.lockSeconds ?? 300) * 1000,
    stalledInterval: (setup.stalledSeconds ?? 30) * 1000,
    maxStalledCount: 3,
    name: `${hostname()}:${process.pid}`,
    autorun: false,
  });
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  worker.on('completed', (job) => {
    completed++;
    emit?.({ type: 'metric', name: `done ${job.id}`, value: completed });
    if (setup.maxJobs !== undefined && completed + failed >= setup.maxJobs) stop();
  });
  worker.on('failed', (job, e) => {
    failed++;
    emit?.({ type: 'warning', message: `job ${job?.id ?? '?'} failed: ${e.message}` });
    if (setup.maxJobs !== undefined && completed + failed >= setup.maxJobs) stop();
  });
  worker.on('error', (e) => emit?.({ type: 'warning', message: `queue: ${e.message}` }));
  const onAbort = () => stop();
  control.signal?.addEventListener('abort', onAbort, { once: true });
  emit?.({ type: 'phase', phase: 'worker', detail: `waiting for jobs on ${QUEUE_NAME}` });
  void worker.run();
  try {
    await stopped;
  } finally {
    control.signal?.removeEventListener('abort', onAbort);
    await worker.close();
    await connection.quit().catch(() => connection.disconnect());
    for (const s of stores.values()) await s.close();
    (context as StudyContext | null)?.judge?.dispose();
  }
  return { completed, failed };
}
