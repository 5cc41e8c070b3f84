/**
 * `medsynth worker --queue redis://…`: runs study jobs from the queue (queue/worker.ts) until Ctrl-C (the job
 * in hand finishes first; Ctrl-C again quits at once, and BullMQ hands that job to another worker).
 * `--concurrency n` starts n worker processes (this one and n − 1 children), each with its share of the
 * cores' threads: TF.js runs one model at a time per process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { parseInteger } from './data-flags.js';
import { abortOnSigint } from './interrupt.js';
import { createRenderer } from './render.js';

interface WorkerFlags {
  queue: string;
  concurrency: number;
  scratch?: string;
  redisCa?: string;
  cacheDir?: string;
  lockSeconds?: number;
  stalledSeconds?: number;
  maxJobs?: number;
  json?: boolean;
}

const atLeast = (flag: string, min: number) => (v: string) => {
  const n = parseInteger(flag)(v);
  if (n < min) throw new InvalidArgumentError(`${flag} must be ≥ ${min}`);
  return n;
};

/** The flags again, with `--concurrency` set to 1 (what each child process gets). */
function childArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--concurrency') i++;
    else if (!a.startsWith('--concurrency=')) out.push(a);
  }
  return [...out, '--concurrency', '1'];
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'run study jobs from a queue (start studies with `medsynth study … --queue <url>`); any machine with the data and medsynth',
    )
    .requiredOption('--queue <redis-url>', 'the queue: redis://[:password@]host:port[/db] or rediss://')
    .option(
      '--concurrency <n>',
      'worker processes on this machine (default 1)',
      atLeast('--concurrency', 1),
      1,
    )
    .option(
      '--scratch <dir>',
      'local folder for generator runs before they go to the artifact store (default ~/.cache/medsynth/worker)',
    )
    .option('--redis-ca <file>', 'with rediss://: the CA of the Redis server (PEM)')
    .option('--cache-dir <dir>', 'feature-extractor cache (default $MEDSYNTH_CACHE or ~/.cache/medsynth)')
    .option(
      '--lock-seconds <s>',
      'a job whose worker is silent this long goes to another worker (default 300)',
      atLeast('--lock-seconds', 1),
    )
    .option(
      '--stalled-seconds <s>',
      'how often to look for jobs of dead workers (default 30)',
      atLeast('--stalled-seconds', 1),
    )
    .option('--max-jobs <n>', 'stop after this many jobs', atLeast('--max-jobs', 1))
    .option('--json', 'no progress; the totals as one JSON object')
    .action(async (flags: WorkerFlags) => {
      // A bad URL or CA file is refused before any process starts.
      (await import('../queue/connection.js')).redisOptions(flags.queue, { ca: flags.redisCa });
      const children: ChildProcess[] = [];
      if (flags.concurrency > 1) {
        process.env['MEDSYNTH_THREADS'] ??= String(
          Math.max(1, Math.floor(availableParallelism() / flags.concurrency)),
        );
        for (let i = 1; i < flags.concurrency; i++)
          children.push(
            fork(process.argv[1]!, childArgs(process.argv.slice(2)), {
              execArgv: process.execArgv,
              env: process.env,
              stdio: 'inherit',
            }),
          );
      }
      const render = createRenderer({ json: flags.json === true });
      const { selectBackend } = await import('../runtime/backend.js');
      const backend = await selectBackend();
      if (!flags.json)
        process.stderr.write(
          `worker ${process.pid}: backend ${backend.backend}, ${backend.threads} thread(s)\n`,
        );
      const interrupt = abortOnSigint(
        'stopping after the current job (Ctrl-C again to quit now; the queue gives the job to another worker)',
        render.clear,
      );
      const { runWorker } = await import('../queue/worker.js');
      try {
        const result = await runWorker(
          {
            queue: flags.queue,
            ca: flags.redisCa,
            scratch: flags.scratch ?? join(homedir() || tmpdir(), '.cache', 'medsynth', 'worker'),
            cacheDir: flags.cacheDir,
            lockSeconds: flags.lockSeconds,
            stalledSeconds: flags.stalledSeconds,
            maxJobs: flags.maxJobs,
          },
          { onProgress: render.onProgress, signal: interrupt.signal },
        );
        render.clear();
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(result)}\n`
            : `worker ${process.pid}: ${result.completed} job(s) done, ${result.failed} failed\n`,
        );
      } finally {
        interrupt.release();
        for (const c of children) c.kill('SIGINT');
        await Promise.all(
          children.map((c) =>
            c.exitCode !== null ? undefined : new Promise<void>((r) => c.once('exit', () => r())),
          ),
        );
      }
    });
}
