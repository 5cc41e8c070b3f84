/**
 * Backend benchmark: the training steps of bench/models.ts (gan28, gan64, cls — the PyTorch peer's models) on
 * the `libtorch` backend and on `wasm`, and the PyTorch peer (/work/shared/bench/pytorch_reference.py, 'same'
 * rows) in the same run when /usr/bin/python3 can import torch.
 *
 *   npm run bench:backend -- [--backends libtorch,wasm] [--models gan28,gan64,cls] [--steps N]
 *                            [--wasm-steps N] [--warmup N] [--threads T] [--no-peer] [--seed S] [--batch B]
 *   npm run bench:backend -- --leak-steps 200 [--leak-model gan28]
 *
 * Output: JSON lines on stdout. One `env` line; one `backend` line per (backend, model) with median/min/max ms
 * per step, images/s, GFLOP/s (compute FLOPs of forward + backward from the layer shapes), RSS, and for
 * libtorch tf.memory().numTensors and the addon's live native tensors (`num_tensors`, `live_handles`: before
 * building, after the warm-up, after the timed steps, after disposing); then one `ratio` line per
 * model: step time of libtorch and of wasm over PyTorch's (> 1 means slower than PyTorch).
 * `--leak-steps N` instead runs N gan28 steps on libtorch and prints numTensors, live native tensors and RSS
 * at steps 1, 10, 50, 100, 200 (and N), then a `leak-summary` line; the exit code is 1 when tensors grew.
 * Threads default to every core (os.availableParallelism()); in Node, wasm runs one thread whatever is asked.
 * `--steps` timed steps (default 10) after `--warmup` steps (default 2) on libtorch and the peer; wasm (and
 * `cpu`, tfjs-backend-cpu, a slow reference accepted by --backends) time `--wasm-steps` (default 3 for gan64,
 * else 5, at most --steps). `--batch` overrides every model's batch (a smoke test; the peer is then skipped).
 */
import os from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_NAME, loadAddon, registerLibtorchBackend } from 'tfjs-backend-libtorch';
import { buildStep, isModelName, MODEL_NAMES, stepFacts, type BenchStep, type ModelName } from './models.js';

const USAGE = `usage: bench/backend.ts [--backends libtorch,wasm,cpu] [--models gan28,gan64,cls] [--steps N]
  [--wasm-steps N] [--warmup N] [--threads T] [--seed S] [--batch B] [--no-peer] [--python PATH]
  [--peer-script PATH] [--leak-steps N] [--leak-model NAME]`;

const { values: flags } = parseArgs({
  options: {
    backends: { type: 'string', default: 'libtorch,wasm' },
    models: { type: 'string', default: MODEL_NAMES.join(',') },
    steps: { type: 'string', default: '10' },
    'wasm-steps': { type: 'string' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string' },
    seed: { type: 'string', default: '1' },
    batch: { type: 'string' },
    'no-peer': { type: 'boolean', default: false },
    python: { type: 'string', default: '/usr/bin/python3' },
    'peer-script': {
      type: 'string',
      default: fileURLToPath(new URL('../../shared/bench/pytorch_reference.py', import.meta.url)),
    },
    'leak-steps': { type: 'string' },
    'leak-model': { type: 'string', default: 'gan28' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (flags.help) {
  console.log(USAGE);
  process.exit(0);
}

function usageError(message: string): never {
  console.error(`bench/backend.ts: ${message}\n${USAGE}`);
  process.exit(2);
}

function positiveInt(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usageError(`--${name} ${value}: expected an integer ≥ ${min}`);
  return n;
}

function modelList(text: string): ModelName[] {
  const names = text.split(',').filter((s) => s !== '');
  for (const m of names)
    if (!isModelName(m)) usageError(`unknown model '${m}' (known: ${MODEL_NAMES.join(', ')})`);
  return names as ModelName[];
}

const BACKENDS = ['libtorch', 'wasm', 'cpu'] as const;
type BackendName = (typeof BACKENDS)[number];

const threads = positiveInt('threads', flags.threads) ?? os.availableParallelism();
const steps = positiveInt('steps', flags.steps)!;
const warmup = positiveInt('warmup', flags.warmup, 0)!;
const wasmSteps = positiveInt('wasm-steps', flags['wasm-steps']);
const seed = positiveInt('seed', flags.seed, 0)!;
const batchFlag = positiveInt('batch', flags.batch);
const stepOptions = { seed, ...(batchFlag === undefined ? {} : { batch: batchFlag }) };
const models = modelList(flags.models);
const backends = flags.backends.split(',').filter((s) => s !== '');
for (const b of backends)
  if (!(BACKENDS as readonly string[]).includes(b)) usageError(`unknown backend '${b}'`);
const leakSteps = positiveInt('leak-steps', flags['leak-steps']);

// ---------------------------------------------------------------------------------------------------------
// Helpers

const round = (x: number, digits = 1): number => Number(x.toFixed(digits));
const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function emit(row: Record<string, unknown>): void {
  console.log(JSON.stringify(row));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** numTensors (all backends) and, once the addon is loaded, the addon's live native tensors. */
function counts(): { numTensors: number; liveHandles: number | null } {
  let liveHandles: number | null = null;
  try {
    liveHandles = loadAddon().liveCount();
  } catch {
    // no addon: only the TF.js count
  }
  return { numTensors: tf.memory().numTensors, liveHandles };
}

let libtorchInfo: Record<string, unknown> | undefined;
let wasmThreads: number | undefined;
let wasmTrainingKernels: string[] = [];

/** Makes a backend the active one; throws why when it cannot. */
async function activate(backend: BackendName): Promise<void> {
  if (backend === 'libtorch') {
    if (libtorchInfo === undefined) {
      const { parallel: _parallel, ...info } = registerLibtorchBackend({ threads });
      libtorchInfo = info;
    }
    if (!(await tf.setBackend(BACKEND_NAME))) throw new Error('tf.setBackend(libtorch) failed');
    return;
  }
  if (backend === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend(cpu) failed');
    return;
  }
  if (wasmThreads === undefined) {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // Conv2DBackpropFilter & co. for 'wasm', so the convolutions can train there.
    const { registerWasmTrainingKernels } = await import('../packages/medsynth/src/runtime/wasm-kernels.js');
    wasmTrainingKernels = registerWasmTrainingKernels();
    wasm.setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend(wasm) failed');
    wasmThreads = wasm.getThreadsCount();
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend(wasm) failed');
}

interface Timing {
  model: ModelName;
  medianMs: number;
}

// ---------------------------------------------------------------------------------------------------------
// TF.js backends

async function benchOne(backend: BackendName, model: ModelName): Promise<Timing | undefined> {
  const slow = backend !== 'libtorch';
  const n = slow ? (wasmSteps ?? Math.min(steps, model === 'gan64' ? 3 : 5)) : steps;
  const base = {
    bench: 'backend',
    backend,
    model,
    threads: backend === 'libtorch' ? threads : backend === 'wasm' ? wasmThreads : 1,
  };
  const before = counts();
  let step: BenchStep | undefined;
  try {
    const t0 = performance.now();
    const built = buildStep(model, stepOptions);
    step = built;
    const buildMs = performance.now() - t0;
    const losses: number[] = [];
    const times: number[] = [];
    let afterWarmup = counts();
    for (let i = 0; i < warmup + n; i++) {
      if (i === warmup) afterWarmup = counts();
      const start = performance.now();
      losses.push(built.step());
      times.push(performance.now() - start);
    }
    const afterSteps = counts();
    const rss = process.memoryUsage().rss;
    built.dispose();
    step = undefined;
    const after = counts();
    const timed = times.slice(warmup);
    const med = median(timed);
    const flops = built.flopsPerStep;
    const batch = built.batch;
    const grew =
      afterSteps.numTensors !== afterWarmup.numTensors ||
      (afterSteps.liveHandles !== null && afterSteps.liveHandles !== afterWarmup.liveHandles);
    emit({
      ...base,
      batch,
      warmup,
      steps: n,
      median_ms: round(med),
      min_ms: round(Math.min(...timed)),
      max_ms: round(Math.max(...timed)),
      img_per_s: round((batch / med) * 1000),
      gflop_per_step: round(flops / 1e9, 2),
      gflop_per_s: round(flops / 1e9 / (med / 1000), 2),
      first_step_ms: round(times[0]!),
      build_ms: round(buildMs),
      loss_first: round(losses[0]!, 4),
      loss_last: round(losses.at(-1)!, 4),
      finite: losses.every(Number.isFinite),
      rss_mib: mib(rss),
      // tensors before building, after the warm-up steps, after the timed steps and after disposing
      num_tensors: [before.numTensors, afterWarmup.numTensors, afterSteps.numTensors, after.numTensors],
      ...(backend === 'libtorch'
        ? {
            live_handles: [
              before.liveHandles,
              afterWarmup.liveHandles,
              afterSteps.liveHandles,
              after.liveHandles,
            ],
          }
        : {}),
      tensors_grew_during_timed_steps: grew,
    });
    return { model, medianMs: med };
  } catch (error) {
    emit({ ...base, error: errorMessage(error) });
    try {
      step?.dispose();
    } catch {
      // already broken
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The PyTorch peer

function peerAvailable(): { ok: boolean; why?: string } {
  if (!existsSync(flags['peer-script']))
    return { ok: false, why: `no peer script at ${flags['peer-script']}` };
  const r = spawnSync(flags.python, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return { ok: true };
  return {
    ok: false,
    why: `${flags.python} cannot import torch: ${(r.stderr || r.error?.message || '').trim()}`,
  };
}

function peerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: '1' };
  for (const [name, value] of Object.entries(USER_OMP)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

interface PeerRow {
  backend: string;
  model: string;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  n: number;
  img_per_s: number;
}

/** The OpenMP waiting settings the user gave, read before tfjs-backend-libtorch sets its own default
 * (GOMP_SPINCOUNT=10000) while loading: the peer runs as PyTorch users run it, with libgomp's defaults unless
 * some were given. */
const USER_OMP = {
  OMP_WAIT_POLICY: process.env['OMP_WAIT_POLICY'],
  GOMP_SPINCOUNT: process.env['GOMP_SPINCOUNT'],
};

/** Runs the peer script as a child process (OpenBLAS single-threaded, torch with `threads` threads). */
function runPeer(which: readonly ModelName[]): Promise<PeerRow[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      flags.python,
      [flags['peer-script'], which.join(','), String(threads), String(steps)],
      {
        env: peerEnv(),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const rows: PeerRow[] = [];
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          rows.push(JSON.parse(line) as PeerRow);
        } catch {
          // not a result line
        }
      }
      if (code !== 0 && rows.length === 0) reject(new Error(`the peer exited with code ${code}`));
      else resolve(rows);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Leak check

async function leakCheck(total: number, model: ModelName): Promise<void> {
  await activate('libtorch');
  const checkpoints = new Set([1, 10, 50, 100, 200, total].filter((s) => s <= total));
  const step = buildStep(model, stepOptions);
  const rows: { step: number; numTensors: number; liveHandles: number | null; rssMiB: number }[] = [];
  let last = performance.now();
  let lastStep = 0;
  for (let i = 1; i <= total; i++) {
    step.step();
    if (!checkpoints.has(i)) continue;
    const now = performance.now();
    // Collect garbage first (the script runs with --expose-gc): RSS then shows what is really held, not
    // JS wrappers of already-freed native tensors waiting for a collection.
    (globalThis as { gc?: () => void }).gc?.();
    const c = counts();
    const row = { step: i, ...c, rssMiB: mib(process.memoryUsage().rss) };
    rows.push(row);
    emit({
      bench: 'leak',
      backend: 'libtorch',
      model,
      step: i,
      num_tensors: c.numTensors,
      live_handles: c.liveHandles,
      rss_mib: row.rssMiB,
      heap_mib: mib(process.memoryUsage().heapUsed),
      ms_per_step: round((now - last) / (i - lastStep)),
    });
    last = now;
    lastStep = i;
  }
  step.dispose();
  // Tensors are compared from step 10 on (step 1 creates the optimizers' slots); RSS from step 50 on, as the
  // allocators take a few dozen steps to reach their working set.
  const base = rows.find((r) => r.step === 10) ?? rows[0]!;
  const rssBase = rows.find((r) => r.step === 50) ?? base;
  const end = rows.at(-1)!;
  const tensorGrowth = end.numTensors - base.numTensors;
  const liveGrowth =
    end.liveHandles === null || base.liveHandles === null ? 0 : end.liveHandles - base.liveHandles;
  const rssGrowth = end.rssMiB - rssBase.rssMiB;
  const leak = tensorGrowth !== 0 || liveGrowth !== 0;
  // RSS is noisy: a warning only, when it keeps growing by more than 64 MiB or 10 % after the warm-up.
  const rssWarning = end.step > rssBase.step && rssGrowth > Math.max(64, rssBase.rssMiB * 0.1);
  const after = counts();
  emit({
    bench: 'leak-summary',
    backend: 'libtorch',
    model,
    steps: total,
    from_step: base.step,
    tensor_growth: tensorGrowth,
    live_handle_growth: liveGrowth,
    rss_growth_mib: rssGrowth,
    rss_from_step: rssBase.step,
    leak,
    rss_warning: rssWarning,
    after_dispose: { num_tensors: after.numTensors, live_handles: after.liveHandles },
  });
  if (leak) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------------------
// Main

emit({
  bench: 'env',
  node: process.version,
  cpus: os.availableParallelism(),
  cpu_model: os.cpus()[0]?.model,
  threads,
  seed,
  openmp_waiting: {
    libtorch:
      USER_OMP.OMP_WAIT_POLICY ??
      USER_OMP.GOMP_SPINCOUNT ??
      'GOMP_SPINCOUNT=10000 (tfjs-backend-libtorch default)',
    peer: USER_OMP.OMP_WAIT_POLICY ?? USER_OMP.GOMP_SPINCOUNT ?? 'libgomp default (spin 300000, then sleep)',
  },
});

if (leakSteps !== undefined) {
  const model = flags['leak-model'];
  if (!isModelName(model)) usageError(`unknown --leak-model '${model}'`);
  await leakCheck(leakSteps, model);
} else {
  const results = new Map<string, Map<ModelName, number>>();
  for (const backend of backends as BackendName[]) {
    const times = new Map<ModelName, number>();
    results.set(backend, times);
    try {
      await activate(backend);
    } catch (error) {
      emit({ bench: 'backend', backend, error: `cannot start: ${errorMessage(error)}` });
      continue;
    }
    emit({
      bench: 'backend-info',
      backend,
      ...(backend === 'libtorch'
        ? { libtorch: libtorchInfo }
        : backend === 'wasm'
          ? { wasm_threads: wasmThreads, training_kernels: wasmTrainingKernels }
          : {}),
    });
    for (const model of models) {
      const t = await benchOne(backend, model);
      if (t) times.set(t.model, t.medianMs);
    }
  }

  const peer = new Map<ModelName, number>();
  let peerName: string | undefined;
  if (batchFlag !== undefined && !flags['no-peer']) {
    emit({
      bench: 'backend',
      backend: 'pytorch',
      skipped: 'the peer runs its own batch sizes; --batch was given',
    });
  } else if (!flags['no-peer']) {
    const avail = peerAvailable();
    if (!avail.ok) {
      emit({ bench: 'backend', backend: 'pytorch', skipped: avail.why });
    } else {
      try {
        for (const row of await runPeer(models)) {
          // The peer's 'gan28-same' is our gan28; its '-std' rows (the official PyTorch loop) are extra.
          const name = row.model.replace(/-same$/, '');
          peerName ??= row.backend;
          const facts = isModelName(name) ? stepFacts(name) : undefined;
          emit({
            bench: 'backend',
            backend: 'pytorch',
            peer: row.backend,
            model: name,
            threads,
            ...(facts ? { batch: facts.batch } : {}),
            warmup: 2,
            steps: row.n,
            median_ms: row.median_ms,
            min_ms: row.min_ms,
            max_ms: row.max_ms,
            img_per_s: row.img_per_s,
            ...(facts
              ? {
                  gflop_per_step: round(facts.flopsPerStep / 1e9, 2),
                  gflop_per_s: round(facts.flopsPerStep / 1e9 / (row.median_ms / 1000), 2),
                }
              : {}),
          });
          if (isModelName(name)) peer.set(name, row.median_ms);
        }
      } catch (error) {
        emit({ bench: 'backend', backend: 'pytorch', error: errorMessage(error) });
      }
    }
  }

  for (const model of models) {
    const p = peer.get(model);
    const ratio = (backend: BackendName): number | null => {
      const t = results.get(backend)?.get(model);
      return t === undefined || p === undefined ? null : round(t / p, 2);
    };
    emit({
      bench: 'ratio',
      model,
      peer: peerName ?? null,
      // step time over PyTorch's: 1 = as fast, 2 = twice as slow
      libtorch_over_peer: ratio('libtorch'),
      wasm_over_peer: ratio('wasm'),
    });
  }
}
