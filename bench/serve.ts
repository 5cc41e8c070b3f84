/**
 * Benchmark: `medsynth serve`'s first page on a folder of 20 training runs (target: under 1 s).
 *
 *   npm run bench bench/serve.ts [--runs 20] [--run <run-dir>] [--repeat 20]
 *
 * One tiny run is trained on PneumoniaMNIST-28 (or `--run` is used) and copied `--runs` times into a temporary
 * folder (checkpoints, samples and all). Measured, each on a fresh server over real HTTP on 127.0.0.1:
 * - `importMs`: loading the server module (once per process, TypeScript through tsx);
 * - `firstPageMs`: from `startServer()` (which reads the folder once before it listens) to the index page
 *   received — what a user waits for after the URL is printed, plus the startup the CLI does before printing;
 * - `coldIndexMs`: `createServer()` and the index asked of it in-process (`inject`) before it has read the
 *   folder (registration, scan and render);
 * - `warmPageMs`: the median and 95th percentile of `--repeat` later index requests (the cache with mtime
 *   checks: a rescan after each 1 s of freshness; here every request rescans, `freshMs` 0);
 * - `runPageMs`: a run page, first (Vega charts rendered) and again (cached);
 * - `cliFirstPageMs`: `medsynth serve --port 0` started as a process (TypeScript through tsx), from spawn to
 *   the index page received.
 * With `parts: 'browse'` only the browsing pages are registered; with `parts: 'all'` also live generation and
 * the reader study, as the CLI does (their modules are loaded by the first such server: its `startMs`).
 * Prints one JSON line per configuration.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TrainOptionsInput } from '../packages/medsynth/src/config/train-options.js';
import type { ServeOptions } from '../packages/medsynth/src/serve/server.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    run: { type: 'string' },
    repeat: { type: 'string', default: '20' },
  },
});
const runs = Number(args.runs);
const repeat = Number(args.repeat);
const data = fileURLToPath(
  new URL('../../shared/data/medmnist/pneumoniamnist_28_reconstructed.npz', import.meta.url),
);
const cli = fileURLToPath(new URL('../packages/medsynth/src/cli/run.ts', import.meta.url));

const ms = (t0: number) => Number((performance.now() - t0).toFixed(1));

// The server module first, before anything else is loaded (TypeScript through tsx: slower than the built JS).
const importStart = performance.now();
const { createServer, startServer } = await import('../packages/medsynth/src/serve/server.js');
const importMs = ms(importStart);
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function timedGet(url: string): Promise<{ ms: number; status: number; bytes: number }> {
  const t = performance.now();
  const res = await fetch(url);
  const body = await res.arrayBuffer();
  return { ms: ms(t), status: res.status, bytes: body.byteLength };
}

async function measure(dir: string, parts: 'browse' | 'all', runRel: string) {
  const extra: Partial<ServeOptions> = parts === 'browse' ? { parts: [] } : {};
  // First page after start: startServer reads the folder before listening (as the CLI does).
  let t = performance.now();
  let server = await startServer({ dir, port: 0, ...extra });
  const startMs = ms(t);
  const first = await timedGet(server.url);
  const firstPageMs = ms(t);
  if (first.status !== 200) throw new Error(`index answered ${first.status}`);
  const snapshot = await server.index.snapshot();
  const found = snapshot.runs.length;
  const run1 = await timedGet(`${server.url}runs/${runRel}`);
  const run2 = await timedGet(`${server.url}runs/${runRel}`);
  await server.close();

  // A server that has not read the folder: the scan and the page are made in the first request.
  t = performance.now();
  const cold = await createServer({ dir, ...extra });
  const coldPage = await cold.app.inject({ method: 'GET', url: '/' });
  const coldIndexMs = ms(t);
  await cold.app.close();
  // Later pages: freshMs 0, so every request checks the folder again (listings and entries by mtime).
  server = await startServer({ dir, port: 0, index: { freshMs: 0 }, ...extra });
  const warm: number[] = [];
  for (let i = 0; i < repeat; i++) warm.push((await timedGet(server.url)).ms);
  await server.close();
  return {
    bench: 'serve',
    parts,
    runs: found,
    importMs,
    startMs,
    firstPageMs,
    indexBytes: first.bytes,
    coldIndexMs,
    coldStatus: coldPage.statusCode,
    warmPageMs: { median: quantile(warm, 0.5), p95: quantile(warm, 0.95) },
    runPageMs: { first: run1.ms, again: run2.ms },
    // The machine's 1-minute load average: these are wall times, and other work slows them.
    loadAverage: Number(loadavg()[0]!.toFixed(1)),
  };
}

async function cliFirstPage(dir: string): Promise<number> {
  const t = performance.now();
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', cli, 'serve', dir, '--port', '0', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!).url as string);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    const res = await timedGet(url);
    if (res.status !== 200) throw new Error(`index answered ${res.status}`);
    return ms(t);
  } finally {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGINT');
    await exited;
  }
}

const work = await mkdtemp(join(tmpdir(), 'medsynth-bench-serve-'));
try {
  let source = args.run;
  if (!source) {
    const [{ resolveTrainOptions }, { selectBackend }, { trainGan }] = await Promise.all([
      import('../packages/medsynth/src/config/train-options.js'),
      import('../packages/medsynth/src/runtime/backend.js'),
      import('../packages/medsynth/src/training/loop.js'),
    ]);
    await selectBackend();
    const result = await trainGan(
      resolveTrainOptions({
        data: { source: data },
        preset: 'tiny',
        outDir: join(work, 'train'),
        kimg: 0.128,
        tickKimg: 0.032,
      } as TrainOptionsInput),
    );
    source = result.runDir;
  }
  const dir = join(work, 'folder');
  for (let i = 0; i < runs; i++)
    await cp(source, join(dir, `${String(i).padStart(5, '0')}-cgan-pneumoniamnist-28`), { recursive: true });
  const runRel = '00000-cgan-pneumoniamnist-28';
  for (const parts of ['browse', 'all'] as const)
    process.stdout.write(`${JSON.stringify(await measure(dir, parts, runRel))}\n`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'serve',
      parts: 'all',
      runs,
      cliFirstPageMs: await cliFirstPage(dir),
      loadAverage: Number(loadavg()[0]!.toFixed(1)),
    })}\n`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
