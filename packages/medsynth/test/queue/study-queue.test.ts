// A study on a BullMQ queue with `medsynth worker` processes, against Debian's redis-server on 127.0.0.1:
// the rows equal the in-process study's; a worker killed mid-job, a Redis restart that loses every key, and
// a coordinator stopped and resumed with another set of workers all still end with one row per job, equal
// to the in-process rows; a job whose config cannot be verified fails once, with its error in the results.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { connectRedis } from '../../src/queue/connection.js';
import { QUEUE_NAME, studyHash } from '../../src/queue/protocol.js';
import { writeReport } from '../../src/report/index.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { resumeStudy, runStudy, studyJobs } from '../../src/study/runner.js';
import type { JobRow } from '../../src/study/store.js';
import { REDIS_MISSING, startRedis, type TestRedis } from '../helpers/redis.js';
import { studyRows } from '../helpers/study.js';
import { PNEUMONIA_28 } from '../helpers/tiny-train.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
let dir: string;
let redis: TestRedis;
let reference: JobRow[];

const config = () =>
  resolveStudyConfig({
    preset: 'tiny',
    data: { source: PNEUMONIA_28 },
    conditions: ['real', 'synthetic', 'limited:0.25+synthetic'],
    classifiers: [{ name: 'cnn', base: 'cnn', options: { epochs: 2, width: 8 } }],
    evaluate: { enabled: true, metrics: ['fid'], extractor: 'domain', extractorEpochs: 1 },
  });

interface TestWorker {
  readonly proc: ChildProcess;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function startWorker(name: string, env: Record<string, string> = {}): TestWorker {
  const proc = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      entry,
      'worker',
      '--queue',
      redis.url,
      '--scratch',
      join(dir, 'scratch', name),
      '--cache-dir',
      join(dir, 'cache'),
      '--lock-seconds',
      '4',
      '--stalled-seconds',
      '1',
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  proc.stdout!.on('data', (b: Buffer) => (text += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (text += b.toString()));
  return {
    proc,
    log: () => text,
    stop: (signal = 'SIGINT') =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const t = setTimeout(() => proc.kill('SIGKILL'), 60_000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        proc.kill(signal);
      }),
  };
}

/** The same rows as the in-process study, bit for bit (same backend and threads). */
function assertSameRows(rows: readonly JobRow[], what: string): void {
  assert.equal(rows.length, reference.length, `${what}: ${rows.length} rows`);
  assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, `${what}: a job has two rows`);
  for (const r of reference) {
    const got = rows.find((x) => x.id === r.id);
    assert.ok(got, `${what}: no row for ${r.id}`);
    assert.deepEqual(got.metrics, r.metrics, `${what}: ${r.id}`);
    assert.deepEqual(Array.from(got.proba), Array.from(r.proba), `${what}: ${r.id}`);
    assert.deepEqual(got.trainClassCounts, r.trainClassCounts, `${what}: ${r.id}`);
  }
}

async function activeJobs(): Promise<number> {
  const connection = connectRedis(redis.url);
  const q = new Queue(QUEUE_NAME, { connection });
  try {
    return await q.getActiveCount();
  } finally {
    await q.close();
    await connection.quit();
  }
}

const until = async (what: string, ok: () => boolean | Promise<boolean>, seconds = 240) => {
  const deadline = Date.now() + seconds * 1000;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('medsynth study --queue (BullMQ on redis-server)', { skip: REDIS_MISSING }, () => {
  before(async () => {
    await selectBackend();
    dir = await mkdtemp(join(tmpdir(), 'medsynth-queue-'));
    redis = await startRedis();
    const ref = await runStudy(config(), { outDir: join(dir, 'ref'), cacheDir: join(dir, 'cache') });
    reference = studyRows(ref.dir);
    assert.equal(reference.length, studyJobs(config()).length);
  });
  after(async () => {
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('two workers give the in-process rows; the study directory and report are as in-process', async () => {
    const workers = [startWorker('a'), startWorker('b')];
    try {
      const result = await runStudy(config(), {
        outDir: join(dir, 'queued'),
        cacheDir: join(dir, 'cache'),
        queue: { url: redis.url, artifacts: join(dir, 'artifacts-1'), sweepSeconds: 0.5 },
      });
      assert.equal(result.ran, reference.length);
      assert.deepEqual(result.summary.failures, []);
      assertSameRows(studyRows(result.dir), 'queued');
      // The instance folders came back: runs, grid, evaluation; the records point into this study.
      const all = join(result.dir, 'generators', 'cgan', 'seed-0', 'all');
      assert.ok(existsSync(join(all, 'evaluation', 'evaluation.json')));
      assert.ok(existsSync(join(all, 'synthetic-grid.png')));
      for (const i of result.summary.instances)
        for (const r of i.runs) assert.ok(r.dir.startsWith(result.dir) && existsSync(r.dir), r.dir);
      assert.ok(result.summary.instances.find((i) => i.key === 'cgan/seed-0/all')?.quality?.fid);
      // queue.jsonl: each job once, with its worker and times in order.
      const log = (await readFile(join(result.dir, 'queue.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              id: string;
              state: string;
              worker: string | null;
              enqueuedAt: number;
              startedAt: number;
              finishedAt: number;
              recordedAt: number;
            },
        );
      assert.equal(log.length, reference.length + 2);
      assert.equal(new Set(log.map((l) => l.id)).size, log.length);
      for (const l of log) {
        assert.equal(l.state, 'completed');
        assert.ok(l.worker, `${l.id}: no worker`);
        assert.ok(l.enqueuedAt <= l.startedAt && l.startedAt <= l.finishedAt && l.finishedAt <= l.recordedAt);
      }
      const html = await readFile((await writeReport(result.dir))!, 'utf8');
      assert.match(html, /cgan/);
      assert.doesNotMatch(html, /Failed jobs/);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  test('a worker killed mid-job: another worker takes the job over; one row per job, the same rows', async () => {
    const study = runStudy(config(), {
      outDir: join(dir, 'killed'),
      cacheDir: join(dir, 'cache'),
      queue: { url: redis.url, artifacts: join(dir, 'artifacts-2'), sweepSeconds: 0.5 },
    });
    const first = startWorker('c');
    let second: TestWorker | null = null;
    try {
      await until('the first worker to start a job', async () => (await activeJobs()) > 0);
      await new Promise((r) => setTimeout(r, 1500));
      await first.stop('SIGKILL');
      second = startWorker('d');
      const result = await study;
      assertSameRows(studyRows(result.dir), 'after the kill');
      assert.deepEqual(result.summary.failures, []);
    } finally {
      await first.stop();
      await second?.stop();
    }
  });

  test('Redis restarted mid-study (every key lost): the study continues to the same rows', async () => {
    const workers = [startWorker('e'), startWorker('f')];
    let rows = 0;
    try {
      const study = runStudy(config(), {
        outDir: join(dir, 'restart'),
        cacheDir: join(dir, 'cache'),
        queue: { url: redis.url, artifacts: join(dir, 'artifacts-3'), sweepSeconds: 0.5 },
        onProgress: (e) => {
          if (e.type === 'metric' && e.name.endsWith('accuracy')) rows++;
        },
      });
      await until('a first row', () => rows > 0);
      await redis.restart();
      const result = await study;
      assertSameRows(studyRows(result.dir), 'after the restart');
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  test('a stopped coordinator resumes with a new set of workers', async () => {
    const first = startWorker('g');
    const abort = new AbortController();
    try {
      await assert.rejects(
        runStudy(config(), {
          outDir: join(dir, 'resumed'),
          cacheDir: join(dir, 'cache'),
          queue: { url: redis.url, artifacts: join(dir, 'artifacts-4'), sweepSeconds: 0.5 },
          signal: abort.signal,
          onProgress: (e) => {
            if (e.type === 'metric' && e.name.endsWith('accuracy')) abort.abort(new Error('stopped'));
          },
        }),
        /stopped/,
      );
    } finally {
      await first.stop('SIGKILL');
    }
    const dirs = readdirSync(join(dir, 'resumed'));
    assert.equal(dirs.length, 1);
    const partial = studyRows(join(dir, 'resumed', dirs[0]!));
    assert.ok(partial.length >= 1 && partial.length < reference.length, `${partial.length} rows before`);
    const fresh = startWorker('h');
    try {
      const result = await resumeStudy(join(dir, 'resumed', dirs[0]!), {
        cacheDir: join(dir, 'cache'),
        queue: { url: redis.url, artifacts: join(dir, 'artifacts-4'), sweepSeconds: 0.5 },
      });
      assertSameRows(studyRows(result.dir), 'resumed');
    } finally {
      await fresh.stop();
    }
  });

  test('jobs a worker cannot verify fail once, with the reason in results.json and the report', async () => {
    // This worker only runs jobs signed with its secret; the study's machine signs nothing.
    const strict = startWorker('i', { MEDSYNTH_QUEUE_SECRET: 'only-signed-jobs' });
    try {
      const result = await runStudy(config(), {
        outDir: join(dir, 'refused'),
        cacheDir: join(dir, 'cache'),
        queue: { url: redis.url, artifacts: join(dir, 'artifacts-5'), sweepSeconds: 0.5, secret: '' },
      });
      assert.equal(result.ran, 0);
      const failures = result.summary.failures;
      assert.equal(failures.length, reference.length + 2, JSON.stringify(failures)); // jobs + 2 pools
      for (const f of failures) assert.match(f.error, /not signed/);
      const saved = JSON.parse(await readFile(join(result.dir, 'results.json'), 'utf8')) as {
        failures: unknown[];
      };
      assert.equal(saved.failures.length, failures.length);
      const html = await readFile((await writeReport(result.dir))!, 'utf8');
      assert.match(html, /Failed jobs/);
      assert.match(html, /not signed/);
      // Each refused job ran once (the real baseline and the 2 pools): no retries of a job that cannot succeed.
      const connection = connectRedis(redis.url);
      const q = new Queue(QUEUE_NAME, { connection });
      try {
        const failed = await q.getJobs(['failed']);
        const mine = failed.filter(
          (j) => (j.data as { studyHash: string }).studyHash === studyHash(config()),
        );
        assert.equal(mine.length, 3, failed.map((j) => j.name).join(', '));
        for (const j of mine)
          assert.equal(j.attemptsMade, 1, `${j.name} ${j.id}: ${j.attemptsMade} attempts`);
      } finally {
        await q.close();
        await connection.quit();
      }
    } finally {
      await strict.stop();
    }
  });
});
