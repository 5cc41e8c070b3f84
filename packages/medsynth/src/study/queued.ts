/**
 * A study run through a BullMQ queue: this process (the coordinator) keeps the study directory and its
 * SQLite store exactly as the in-process runner does (runner.ts), and hands the work to `medsynth worker`
 * processes on any machine that has the data and the project:
 *
 *   1. the classifier jobs without synthetic images, and one `pool` job per generator instance that still
 *      needs its run, pool or evaluation, are enqueued at once;
 *   2. when an instance's pool job completes, its folder (runs, grid, evaluation) is copied from the
 *      artifact store into `generators/<key>/`, its record stored, and its classifier jobs enqueued;
 *   3. each finished classifier job's row is written to the store (one row per job id, so a job that ran
 *      twice — a worker presumed dead that was not — still leaves one row);
 *   4. the summaries are written as in-process.
 *
 * Waiting: queue events wake the coordinator at once; a sweep every `sweepSeconds` reads the state of every
 * job still out, so events lost while Redis restarted cost at most one sweep, and a job Redis lost (a
 * restart without persistence) is enqueued again under the same id. BullMQ job ids are derived from the study
 * hash and the job id, so enqueuing twice is a no-op, and a resumed study (another coordinator process,
 * another set of workers) picks up jobs finished meanwhile.
 *
 * A job that fails after its retries, or at once for a deterministic error, is recorded with its error
 * (`failed:<id>` in the store, `failures` in results.json and the report) and the study goes on; a failed
 * pool job fails its classifier jobs. A resumed study tries failed jobs again.
 *
 * `queue.jsonl` in the study directory has a line per job as the coordinator saw it finish: its worker,
 * attempts, and when it was enqueued, started, finished and recorded (epoch ms), for scheduling overheads.
 */
import { appendFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue, QueueEvents, type Job } from 'bullmq';
import { openArtifactStore } from '../queue/artifacts.js';
import { connectRedis, safeQueueUrl } from '../queue/connection.js';
import {
  decodePoolResult,
  decodeRow,
  instanceArtifacts,
  makePayload,
  QUEUE_NAME,
  queueJobId,
  SECRET_ENV,
  studyHash,
  type JobPayload,
} from '../queue/protocol.js';
import { QueueError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import type { StudyConfig } from './config.js';
import { studyInstances, type StudyJob } from './grid.js';
import type { GeneratorInstance } from './generators.js';
import type { StudyStore } from './store.js';
import type { InstanceRecord, JobFailure } from './summary.js';

export interface QueueSettings {
  /** Redis URL (queue/connection.ts). */
  readonly url: string;
  readonly ca?: string | undefined;
  /** Artifact store location every worker reaches (default `<study dir>/artifacts`). */
  readonly artifacts?: string | undefined;
  /** Signing secret (default $MEDSYNTH_QUEUE_SECRET). */
  readonly secret?: string | undefined;
  /** Retries of a job that fails for a reason that may pass (default 3 attempts in all). */
  readonly attempts?: number | undefined;
  /** Seconds between full sweeps of the jobs still out (default 2). */
  readonly sweepSeconds?: number | undefined;
}

export type QueueFailure = JobFailure;

/** The queued study's job log in its directory (one JSON line per finished or failed job). */
export const QUEUE_LOG = 'queue.jsonl';

export interface QueuedRunResult {
  readonly ran: number;
  readonly failures: readonly QueueFailure[];
}

interface Outstanding {
  readonly kind: 'pool' | 'classify';
  /** The study job id (classify) or instance key (pool). */
  readonly id: string;
  readonly payload: JobPayload;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the study's remaining work on the queue (see the module header); the caller has the store open and
 * writes the summaries afterwards.
 */
export async function runQueued(
  dir: string,
  config: StudyConfig,
  jobs: readonly StudyJob[],
  store: StudyStore,
  settings: QueueSettings,
  needsPool: (instance: GeneratorInstance) => boolean,
  control: RunControl,
): Promise<QueuedRunResult> {
  const emit = control.onProgress;
  const hash = studyHash(config);
  const secret = settings.secret ?? (process.env[SECRET_ENV] || undefined);
  const artifacts = openArtifactStore(settings.artifacts ?? join(dir, 'artifacts'));
  const attempts = settings.attempts ?? 3;
  const connection = connectRedis(settings.url, { ca: settings.ca });
  connection.on('error', () => {}); // reconnects by itself; a sweep reports what matters
  const queue = new Queue(QUEUE_NAME, { connection });
  const eventsConnection = connectRedis(settings.url, { ca: settings.ca });
  eventsConnection.on('error', () => {});
  const events = new QueueEvents(QUEUE_NAME, { connection: eventsConnection });
  events.on('error', () => {});
  const outstanding = new Map<string, Outstanding>();
  const failures: QueueFailure[] = [];
  const done = store.finishedIds();
  store.clearMeta('failed:');
  let ran = 0;
  let finished = jobs.filter((j) => done.has(j.id)).length;
  const instances = studyInstances(jobs);
  let poolsDone = instances.filter((i) => !needsPool(i)).length;
  let wake: () => void = () => {};

  const enqueue = async (o: Outstanding) => {
    const id = queueJobId(hash, o.kind, o.id);
    outstanding.set(id, o);
    const existing = await queue.getJob(id);
    if (existing && (await existing.isFailed())) await existing.remove();
    else if (existing) return;
    await queue.add(o.kind, o.payload, {
      jobId: id,
      attempts,
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
  };
  const classify = (job: StudyJob) =>
    enqueue({
      kind: 'classify',
      id: job.id,
      payload: makePayload(config, hash, secret, {
        kind: 'classify',
        artifacts: artifacts.location,
        instanceKey: job.instance?.key ?? null,
        jobId: job.id,
      }),
    });

  const pool = (instance: GeneratorInstance) =>
    enqueue({
      kind: 'pool',
      id: instance.key,
      payload: makePayload(config, hash, secret, {
        kind: 'pool',
        artifacts: artifacts.location,
        instanceKey: instance.key,
        jobId: null,
      }),
    });

  const progress = () => {
    emit?.({ type: 'tick', phase: 'generators', done: poolsDone, total: instances.length, unit: 'pools' });
    emit?.({ type: 'tick', phase: 'jobs', done: finished, total: jobs.length, unit: 'jobs' });
  };

  const poolFinished = async (key: string, value: unknown) => {
    const result = decodePoolResult(value, `the pool job of ${key}`);
    const target = join(dir, 'generators', key);
    const tmp = `${target}.incoming-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await artifacts.getDir(result.folder, tmp);
    await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
    const rewrite = (p: string) => (p.startsWith(result.root) ? join(dir, p.slice(result.root.length)) : p);
    const record: InstanceRecord = {
      ...result.record,
      runs: result.record.runs.map((r) => ({ ...r, dir: rewrite(r.dir) })),
    };
    store.setMeta(`instance:${key}`, record);
    poolsDone++;
    for (const j of jobs) if (j.instance?.key === key && !done.has(j.id)) await classify(j);
  };

  const handle = async (id: string) => {
    const o = outstanding.get(id);
    if (!o) return;
    const state = await queue.getJobState(id);
    // Read after its state: a job read first may finish in between, and then carry no result.
    const job = state === 'unknown' ? undefined : await queue.getJob(id);
    if (!job) {
      // Redis lost it (restarted without persistence): enqueue it again.
      emit?.({ type: 'warning', message: `the queue lost ${o.kind} job ${o.id}; enqueued again` });
      outstanding.delete(id);
      await enqueue(o);
      return;
    }
    if (state === 'completed') {
      outstanding.delete(id);
      try {
        if (o.kind === 'pool') await poolFinished(o.id, job.returnvalue);
        else recordRow(o.id, job.returnvalue);
      } catch (e) {
        // A result this coordinator cannot use (another medsynth version's?) fails the job, not the study.
        if (!(e instanceof QueueError)) throw e;
        failed(o, e.message);
      }
      await logJob(o, job, state);
      await job.remove().catch(() => {});
      progress();
    } else if (state === 'failed' && (job.attemptsMade >= attempts || job.finishedOn !== undefined)) {
      outstanding.delete(id);
      failed(o, job.failedReason || 'failed');
      await logJob(o, job, state);
      progress();
    }
  };

  const recordRow = (id: string, value: unknown) => {
    const row = decodeRow(value, `job ${id}`);
    if (row.id !== id) throw new QueueError(`a worker answered job ${id} with ${row.id}'s row`);
    store.putJob(row);
    done.add(id);
    ran++;
    finished++;
    emit?.({ type: 'metric', name: `${id} accuracy`, value: (row.metrics as { accuracy: number }).accuracy });
  };

  /** Records `o` as failed (a pool: its classifier jobs too). */
  const failed = (o: Outstanding, error: string) => {
    const fail = (f: QueueFailure) => {
      failures.push(f);
      store.setMeta(`failed:${f.id}`, f);
      emit?.({ type: 'warning', message: `${f.kind} job ${f.id} failed: ${f.error}` });
    };
    fail({ id: o.id, kind: o.kind, error });
    if (o.kind === 'pool') {
      poolsDone++;
      for (const j of jobs)
        if (j.instance?.key === o.id && !done.has(j.id))
          fail({ id: j.id, kind: 'classify', error: `its generator instance ${o.id} failed: ${error}` });
    }
  };

  /** A job's line in queue.jsonl, once its result is in the store: enqueued, started, finished, recorded. */
  const logJob = async (o: Outstanding, job: Job, state: string) => {
    const line = {
      id: o.id,
      kind: o.kind,
      state,
      worker: job.processedBy ?? null,
      attempts: job.attemptsMade,
      enqueuedAt: job.timestamp,
      startedAt: job.processedOn ?? null,
      finishedAt: job.finishedOn ?? null,
      recordedAt: Date.now(),
    };
    await appendFile(join(dir, QUEUE_LOG), `${JSON.stringify(line)}\n`);
  };

  const sweep = async () => {
    for (const id of [...outstanding.keys()]) await handle(id);
  };

  try {
    await queue.waitUntilReady().catch((e: Error) => {
      throw new QueueError(`cannot reach the queue at ${safeQueueUrl(settings.url)}: ${e.message}`, {
        field: '--queue',
      });
    });
    emit?.({
      type: 'phase',
      phase: 'queue',
      detail: `${safeQueueUrl(settings.url)}; artifacts in ${artifacts.location}; start workers with: medsynth worker --queue <url>`,
    });
    for (const j of jobs) if (j.instance === null && !done.has(j.id)) await classify(j);
    for (const instance of instances) {
      const mine = jobs.filter((j) => j.instance?.key === instance.key && !done.has(j.id));
      if (needsPool(instance)) await pool(instance);
      else if (mine.length > 0) {
        if (!(await artifacts.has(instanceArtifacts(hash, instance.key).pool)))
          // Recorded by an in-process run, or the store was cleared: a pool job makes (or reuses) the pool.
          await pool(instance);
        else for (const j of mine) await classify(j);
      }
    }
    progress();
    await events.waitUntilReady().catch(() => {});
    const onEvent = ({ jobId }: { jobId: string }) => {
      if (outstanding.has(jobId)) wake();
    };
    events.on('completed', onEvent);
    events.on('failed', onEvent);
    const sweepMs = (settings.sweepSeconds ?? 2) * 1000;
    while (outstanding.size > 0) {
      control.signal?.throwIfAborted();
      await new Promise<void>((r) => {
        const t = setTimeout(r, sweepMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      try {
        await sweep();
      } catch (e) {
        if (e instanceof QueueError) throw e;
        // Redis unreachable for the moment: the connection retries; try again after a pause.
        emit?.({ type: 'warning', message: `queue: ${(e as Error).message}; retrying` });
        await sleep(1000);
      }
    }
    return { ran, failures };
  } finally {
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
    await connection.quit().catch(() => connection.disconnect());
    await eventsConnection.quit().catch(() => eventsConnection.disconnect());
    await artifacts.close();
  }
}
