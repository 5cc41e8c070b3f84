/**
 * Which TF.js backend medsynth computes on. In order of preference:
 *
 * 1. `libtorch` — tfjs-backend-libtorch, TF.js kernels as libtorch (ATen) calls through an N-API addon: the fast
 *    one, multi-threaded with oneDNN on CPU, or CUDA.
 * 2. `tfjs-node` — @tensorflow/tfjs-node, only when the user installed it (medsynth does not depend on it).
 * 3. `wasm` — @tensorflow/tfjs-backend-wasm, always available, plus the training kernels it lacks
 *    (see wasm-kernels.ts). Single-threaded in Node: training is slow.
 *
 * `cpu` (@tensorflow/tfjs-backend-cpu, plain JS) is used only when asked for, or as a last resort when installed.
 * `prefer` (or `$MEDSYNTH_BACKEND`) forces one backend, and fails rather than falls back.
 *
 * The library never prints: TF.js's own console warnings about backend initialisation are held back while a
 * backend is set up, and the reasons go into the returned report instead.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { ConfigError, type ErrorCode, MedsynthError, type MedsynthErrorOptions } from './errors.js';
import { Rng } from './random.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';
import { registerMissingGradients } from './gradients.js';

export const BACKENDS = ['libtorch', 'tfjs-node', 'wasm', 'cpu'] as const;
/** The TF.js (tfjs-core) version medsynth runs. */
export const TFJS_VERSION: string = tf.version_core;
export type BackendName = (typeof BACKENDS)[number];

/** The libtorch build's facts, as tfjs-backend-libtorch reports them. */
export interface LibtorchFacts {
  version: string;
  threads: number;
  cuda: boolean;
  mkldnn: boolean;
  device: string;
  parallel: string;
  /** Kernels tfjs-backend-libtorch runs on tfjs-backend-cpu because it has no libtorch version of them. */
  fallbackKernels?: string[];
}

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  /** What was found: the facts of a backend that works, or why it cannot be used. */
  reason: string;
}

/** The backend in use and how it was chosen; plain JSON, for run metadata. */
export interface BackendReport {
  /** One of BACKENDS — or, from `describeBackend`, whatever TF.js backend was set outside medsynth. */
  backend: string;
  /** Why this backend: forced by whom, or why the ones before it were not used (and what that costs). */
  reason: string;
  /** Every backend tried, in order. */
  tried: BackendAttempt[];
  /** Threads the backend computes with. */
  threads: number;
  libtorch?: LibtorchFacts;
  /** The training kernels medsynth added to the wasm backend (wasm only). */
  wasmKernels?: string[];
  tfjsVersion: string;
}

export interface SelectBackendOptions {
  /** Use this backend or fail. Default: `$MEDSYNTH_BACKEND`, else the first that works. */
  prefer?: BackendName | undefined;
  /** libtorch intra-op threads (default: $MEDSYNTH_THREADS, $OMP_NUM_THREADS or all cores); wasm threads. */
  threads?: number | undefined;
  /** libtorch device: 'cpu', 'cuda' or 'cuda:N' (default: $MEDSYNTH_DEVICE or 'cpu'). */
  device?: string | undefined;
  /** Also try the backends after the first that works, so the report says which others would work too. */
  probeAll?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** A backend that was asked for cannot be used, or none can. `attempts` lists what was tried. */
export class BackendError extends MedsynthError {
  override readonly name = 'BackendError';
  override readonly code: ErrorCode = 'RUNTIME_ERROR';
  override readonly exitCode = 1;
  readonly attempts: BackendAttempt[];

  constructor(message: string, attempts: BackendAttempt[], options: MedsynthErrorOptions = {}) {
    super(message, options);
    this.attempts = attempts;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), tried: this.attempts };
  }
}

/** The TF.js registry name of each backend. */
const TFJS_NAME: Record<BackendName, string> = {
  libtorch: 'libtorch',
  'tfjs-node': 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

/** Packages loaded by name at run time: optional, so not resolved (or type-checked) at build time. */
const PACKAGES = {
  libtorch: 'tfjs-backend-libtorch',
  'tfjs-node': '@tensorflow/tfjs-node',
  cpu: '@tensorflow/tfjs-backend-cpu',
} as const;

interface LibtorchModule {
  registerLibtorchBackend(options?: { threads?: number; device?: string }): LibtorchFacts;
  /** Not in every version. */
  fallbackKernelNames?: () => string[];
  /** Float64 linear algebra (not in every version). */
  covariance64?: NativeFloat64['covariance'];
  symmetricEigen64?: NativeFloat64['symmetricEigen'];
  symmetricEigenvalues64?: NativeFloat64['symmetricEigenvalues'];
  matmul64?: NativeFloat64['matmul'];
}

/** Float64 linear algebra in native code (LAPACK/BLAS through libtorch); row-major typed arrays. */
export interface NativeFloat64 {
  covariance(
    data: Float32Array,
    rows: number,
    cols: number,
    weights?: Int32Array,
  ): { mean: Float64Array; cov: Float64Array; n: number };
  symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array };
  symmetricEigenvalues(a: Float64Array, n: number): Float64Array;
  matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array;
}

let nativeFloat64Impl: NativeFloat64 | undefined;

/**
 * Native float64 linear algebra while libtorch is TF.js's active backend (it shares the backend's threads and
 * device); undefined otherwise, and callers use JavaScript.
 */
export function nativeFloat64(): NativeFloat64 | undefined {
  return tf.getBackend() === TFJS_NAME.libtorch ? nativeFloat64Impl : undefined;
}

function float64From(mod: LibtorchModule): NativeFloat64 | undefined {
  const { covariance64, symmetricEigen64, symmetricEigenvalues64, matmul64 } = mod;
  if (!covariance64 || !symmetricEigen64 || !symmetricEigenvalues64 || !matmul64) return undefined;
  return {
    covariance: covariance64,
    symmetricEigen: symmetricEigen64,
    symmetricEigenvalues: symmetricEigenvalues64,
    matmul: matmul64,
  };
}

interface Activated {
  /** What works, for the report. */
  summary: string;
  threads: number;
  libtorch?: LibtorchFacts;
  wasmKernels?: string[];
}

/** The last selection, and the TF.js name of its backend. */
let current: { report: BackendReport; tfjsName: string } | undefined;

/**
 * Picks the TF.js backend (see the module comment), makes it TF.js's active backend and returns the report.
 * Throws `BackendError` when `prefer`/`$MEDSYNTH_BACKEND` names a backend that cannot be used, or when none can;
 * `ConfigError` for an unknown backend name.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendReport> {
  registerMissingGradients();
  const forced = forcedBackend(options.prefer);
  const order: readonly BackendName[] = forced ? [forced.backend] : BACKENDS;
  const tried: BackendAttempt[] = [];
  let chosen: { backend: BackendName; activated: Activated } | undefined;
  let lastError: unknown;
  for (const backend of order) {
    options.signal?.throwIfAborted();
    // The first that works is chosen; so cpu, last, is tried only when forced, when nothing else works, or to probe.
    if (chosen && !options.probeAll) break;
    try {
      const activated = await activate(backend, options);
      tried.push({ backend, ok: true, reason: activated.summary });
      chosen ??= { backend, activated };
    } catch (error) {
      lastError = error;
      tried.push({ backend, ok: false, reason: messageOf(error) });
    }
  }
  if (!chosen) {
    if (forced) {
      const reason = tried[0]?.reason ?? 'unknown';
      throw new BackendError(`backend '${forced.backend}' cannot be used: ${reason}`, tried, {
        field: forced.source,
        cause: lastError,
      });
    }
    const reasons = tried.map((t) => `${t.backend}: ${t.reason}`).join('; ');
    throw new BackendError(`no TF.js backend can be used (${reasons})`, tried, { cause: lastError });
  }
  // Probing later backends switched TF.js to them; switch back.
  if (tf.getBackend() !== TFJS_NAME[chosen.backend])
    await quietly(() => tf.setBackend(TFJS_NAME[chosen.backend]));
  const report: BackendReport = {
    backend: chosen.backend,
    reason: explain(chosen.backend, tried, forced?.source),
    tried,
    threads: chosen.activated.threads,
    ...(chosen.activated.libtorch ? { libtorch: chosen.activated.libtorch } : {}),
    ...(chosen.activated.wasmKernels ? { wasmKernels: chosen.activated.wasmKernels } : {}),
    tfjsVersion: tf.version_core,
  };
  current = { report, tfjsName: TFJS_NAME[chosen.backend] };
  return structuredClone(report);
}

/**
 * The report of the backend in use: the last `selectBackend` result, or — when TF.js's backend was changed
 * outside it, or none was selected — a report saying so. `undefined` when TF.js has no active backend.
 */
export function describeBackend(): BackendReport | undefined {
  const active = tf.getBackend() as string | undefined | null;
  if (current && active === current.tfjsName) return structuredClone(current.report);
  if (!active) return undefined;
  const backend = (Object.keys(TFJS_NAME) as BackendName[]).find((b) => TFJS_NAME[b] === active);
  return {
    backend: backend ?? active,
    reason: `set directly through TF.js (tf.setBackend('${active}')), not by medsynth's selectBackend`,
    tried: [],
    threads: backend === 'wasm' ? getThreadsCount() : os.availableParallelism(),
    tfjsVersion: tf.version_core,
  };
}

/**
 * For a long job (training, a study): a one-sentence warning when it is about to compute on a slow backend —
 * wasm or cpu, per `describeBackend()` (or `report`) — saying how much slower than libtorch, why libtorch was not
 * used (when the selection recorded it) and how to get it. `null` on libtorch or tfjs-node, or when no backend
 * has been chosen yet. Measured: the quick study's 3-minute GAN trains on about 7 kimg on wasm, 80 on libtorch.
 */
export function slowBackendWarning(report: BackendReport | undefined = describeBackend()): string | null {
  if (report?.backend !== 'wasm' && report?.backend !== 'cpu') return null;
  const backend = report.backend;
  const libtorch = report.tried.find((t) => t.backend === 'libtorch' && !t.ok);
  const forced = /^\S+ requested \((prefer option|MEDSYNTH_BACKEND)\)/.exec(report.reason)?.[1];
  const why = libtorch
    ? ` (libtorch not used: ${libtorch.reason.replace(/\.$/, '')})`
    : forced
      ? ` (${forced === 'prefer option' ? 'the prefer option' : 'MEDSYNTH_BACKEND'} asks for ${backend})`
      : '';
  const speed =
    backend === 'wasm'
      ? 'about 11× slower than on libtorch'
      : 'slower still than on wasm, itself about 11× slower than libtorch';
  return (
    `training on ${backend}${why} is ${speed} (the quick study's 3-minute GAN trains on about 7 kimg on wasm ` +
    `vs 80 on libtorch, 2 cores): for the fast path run 'apt-get install libtorch-dev libopenblas0-pthread g++ ` +
    `make python3', then 'npm ci' again, and check with 'medsynth doctor'`
  );
}

function forcedBackend(
  prefer: BackendName | undefined,
): { backend: BackendName; source: 'prefer' | 'MEDSYNTH_BACKEND' } | undefined {
  if (prefer !== undefined) {
    if (!isBackendName(prefer)) {
      throw new ConfigError('unknown backend', {
        field: 'prefer',
        expected: BACKENDS.join(', '),
        found: String(prefer),
      });
    }
    return { backend: prefer, source: 'prefer' };
  }
  const env = process.env['MEDSYNTH_BACKEND']?.trim();
  if (env === undefined || env === '' || env === 'auto') return undefined;
  if (!isBackendName(env)) {
    throw new ConfigError('unknown backend', {
      field: 'MEDSYNTH_BACKEND',
      expected: `${BACKENDS.join(', ')} or auto`,
      found: env,
    });
  }
  return { backend: env, source: 'MEDSYNTH_BACKEND' };
}

function isBackendName(s: string): s is BackendName {
  return (BACKENDS as readonly string[]).includes(s);
}

function explain(
  backend: BackendName,
  tried: readonly BackendAttempt[],
  forcedBy: 'prefer' | 'MEDSYNTH_BACKEND' | undefined,
): string {
  const mine = tried.find((t) => t.backend === backend)?.reason ?? '';
  if (forcedBy)
    return `${backend} requested (${forcedBy === 'prefer' ? 'prefer option' : 'MEDSYNTH_BACKEND'}): ${mine}`;
  const before = tried.slice(
    0,
    tried.findIndex((t) => t.backend === backend),
  );
  if (before.length === 0) return `${backend} is the first choice and works: ${mine}`;
  const why = before.map((t) => `${t.backend} not used: ${t.reason}`).join('; ');
  const slow =
    backend === 'wasm' || backend === 'cpu'
      ? ` Training will be slow on ${backend} (single-threaded here, no native BLAS); build the libtorch addon ` +
        `for fast training.`
      : '';
  return `${why}. Using ${backend}: ${mine}.${slow}`;
}

async function activate(backend: BackendName, options: SelectBackendOptions): Promise<Activated> {
  switch (backend) {
    case 'libtorch': {
      const mod = (await importOptional(PACKAGES.libtorch)) as LibtorchModule;
      const info = await quietly(() =>
        mod.registerLibtorchBackend({
          ...(options.threads !== undefined ? { threads: options.threads } : {}),
          ...(options.device !== undefined ? { device: options.device } : {}),
        }),
      );
      await setActive(TFJS_NAME.libtorch);
      nativeFloat64Impl = float64From(mod);
      const fallbackKernels =
        typeof mod.fallbackKernelNames === 'function' ? mod.fallbackKernelNames() : undefined;
      const facts: LibtorchFacts = {
        version: info.version,
        threads: info.threads,
        cuda: info.cuda,
        mkldnn: info.mkldnn,
        device: info.device,
        parallel: info.parallel,
        ...(fallbackKernels ? { fallbackKernels } : {}),
      };
      return {
        summary:
          `libtorch ${facts.version} on ${facts.device}, ${facts.threads} threads` +
          `${facts.mkldnn ? ', oneDNN' : ''}${facts.cuda ? ', CUDA available' : ''}`,
        threads: facts.threads,
        libtorch: facts,
      };
    }
    case 'tfjs-node': {
      await importOptional(PACKAGES['tfjs-node']);
      await setActive(TFJS_NAME['tfjs-node']);
      const threads = os.availableParallelism();
      return { summary: `@tensorflow/tfjs-node (TensorFlow C library), ${threads} threads`, threads };
    }
    case 'wasm': {
      const wasmKernels = registerWasmTrainingKernels();
      if (options.threads !== undefined && tf.engine().registry['wasm'] === undefined) {
        setThreadsCount(options.threads);
      }
      await setActive(TFJS_NAME.wasm);
      const threads = getThreadsCount();
      return {
        summary:
          `@tensorflow/tfjs-backend-wasm ${tf.version_core}, ${threads} thread${threads === 1 ? '' : 's'}, ` +
          `with medsynth's ${wasmKernels.length} training kernels (convolution and pooling gradients)`,
        threads,
        wasmKernels,
      };
    }
    case 'cpu': {
      await importOptional(PACKAGES.cpu);
      await setActive(TFJS_NAME.cpu);
      return { summary: '@tensorflow/tfjs-backend-cpu (plain JavaScript, 1 thread)', threads: 1 };
    }
  }
}

/** Imports an optional package; "not installed" is a normal reason, other load failures keep their message. */
async function importOptional(specifier: string): Promise<unknown> {
  try {
    return (await import(specifier)) as unknown;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
      messageOf(error).includes(`'${specifier}'`)
    ) {
      throw new Error(`the package '${specifier}' is not installed (npm install ${specifier})`, {
        cause: error,
      });
    }
    throw new Error(`the package '${specifier}' failed to load: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * `tf.setBackend(name)`, with the initialisation error thrown rather than printed (TF.js logs it and returns
 * false).
 */
async function setActive(name: string): Promise<void> {
  const engine = tf.engine();
  const entry = engine.registryFactory[name];
  if (entry === undefined) throw new Error(`TF.js has no backend named '${name}' registered`);
  let failure: unknown;
  const initialised = engine.registry[name] !== undefined;
  if (!initialised) {
    const { factory, priority } = entry;
    engine.registryFactory[name] = {
      factory: async () => {
        try {
          return await factory();
        } catch (error) {
          failure = error;
          throw error;
        }
      },
      priority,
    };
  }
  let ok: boolean;
  try {
    ok = await quietly(() => tf.setBackend(name));
  } finally {
    if (!initialised) engine.registryFactory[name] = entry;
  }
  if (!ok) {
    throw new Error(
      `TF.js could not initialise its '${name}' backend: ${messageOf(failure ?? 'no reason given')}`,
      {
        cause: failure,
      },
    );
  }
}

/** Runs `f` with TF.js's console warnings held back (the library never prints). */
async function quietly<T>(f: () => T | Promise<T>): Promise<T> {
  const env = tf.env();
  const prod = env.getBool('PROD');
  env.set('PROD', true);
  try {
    return await f();
  } finally {
    env.set('PROD', prod);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------------------
// Sanity check: a few small computations on the active backend against a reference.

export interface SanityCheckItem {
  name: string;
  /** max |result − reference| */
  maxError: number;
  /** maxError / max |reference| */
  relError: number;
  ok: boolean;
  ms: number;
}

export interface SanityCheck {
  backend: string;
  /** 'cpu': @tensorflow/tfjs-backend-cpu; 'js': float64 loops (when tfjs-backend-cpu is not installed). */
  reference: 'cpu' | 'js';
  ok: boolean;
  /** Largest relative error that counts as OK (float32 arithmetic, TF32 convolutions on CUDA). */
  tolerance: number;
  checks: SanityCheckItem[];
  /** Why the check could not run, when it could not. */
  error?: string;
}

interface Case {
  name: string;
  inputs: { shape: number[]; data: Float32Array }[];
  run: (...t: tf.Tensor[]) => tf.Tensor;
  reference: (...d: Float32Array[]) => Float64Array;
}

const MM = { m: 32, k: 48, n: 24 };
const CONV = { n: 2, h: 10, w: 9, c: 4, fh: 3, fw: 3, co: 5, stride: 2 };

function sanityCases(): Case[] {
  const rng = new Rng(20240601);
  const data = (shape: number[]) => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
  });
  const { n, h, w, c, fh, fw, co, stride } = CONV;
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const xShape = [n, h, w, c];
  const fShape = [fh, fw, c, co];
  const convAttrs = { strides: stride, pad: 'same', dataFormat: 'NHWC', filterShape: fShape };
  return [
    {
      name: `matmul ${MM.m}×${MM.k} · ${MM.k}×${MM.n}`,
      inputs: [data([MM.m, MM.k]), data([MM.k, MM.n])],
      run: (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      reference: (a, b) => jsMatMul(a, b, MM.m, MM.k, MM.n),
    },
    {
      name: `conv2d ${xShape.join('×')} * ${fShape.join('×')}, stride ${stride}, same`,
      inputs: [data(xShape), data(fShape)],
      run: (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, 'same'),
      reference: (x, f) => jsConv(x, f, 'forward'),
    },
    {
      name: `conv2d filter gradient (training) ${xShape.join('×')}, stride ${stride}, same`,
      inputs: [data(xShape), data([n, oh, ow, co])],
      run: (x, dy) =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: x!, dy: dy! },
            convAttrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor,
      reference: (x, dy) => jsConv(x, dy, 'filterGrad'),
    },
  ];
}

/**
 * Runs a small matmul, a conv2d and a conv2d filter gradient on the active backend and compares them with
 * tfjs-backend-cpu (or float64 loops when it is not installed, or when the active backend is cpu).
 */
export async function checkBackend(
  options: { tolerance?: number; reference?: 'cpu' | 'js' } = {},
): Promise<SanityCheck> {
  const tolerance = options.tolerance ?? 1e-3;
  const backend = tf.getBackend();
  const result: SanityCheck = { backend, reference: 'js', ok: false, tolerance, checks: [] };
  try {
    const cases = sanityCases();
    const outputs = cases.map((c) => {
      const t0 = performance.now();
      const values = tf.tidy(() => c.run(...c.inputs.map((i) => tf.tensor(i.data, i.shape)))).dataSync();
      return { values: Float32Array.from(values), ms: performance.now() - t0 };
    });
    let references: ArrayLike<number>[] | undefined;
    if (options.reference !== 'js' && backend !== 'cpu') references = await cpuReferences(cases, backend);
    if (references) result.reference = 'cpu';
    else references = cases.map((c) => c.reference(...c.inputs.map((i) => i.data)));
    result.checks = cases.map((c, i) => {
      const { maxError, relError } = compare(outputs[i]!.values, references[i]!);
      return { name: c.name, maxError, relError, ok: relError <= tolerance, ms: outputs[i]!.ms };
    });
    result.ok = result.checks.every((c) => c.ok);
  } catch (error) {
    result.error = messageOf(error);
  }
  return result;
}

/** The cases on tfjs-backend-cpu, or undefined when it is not installed. Leaves `backend` active. */
async function cpuReferences(cases: Case[], backend: string): Promise<Float32Array[] | undefined> {
  try {
    await importOptional(PACKAGES.cpu);
  } catch {
    return undefined;
  }
  try {
    await setActive('cpu');
    return cases.map((c) =>
      Float32Array.from(
        quietlySync(() =>
          tf.tidy(() => c.run(...c.inputs.map((i) => tf.tensor(i.data, i.shape)))).dataSync(),
        ),
      ),
    );
  } finally {
    await quietly(() => tf.setBackend(backend));
  }
}

function quietlySync<T>(f: () => T): T {
  const env = tf.env();
  const prod = env.getBool('PROD');
  env.set('PROD', true);
  try {
    return f();
  } finally {
    env.set('PROD', prod);
  }
}

function compare(a: ArrayLike<number>, ref: ArrayLike<number>): { maxError: number; relError: number } {
  if (a.length !== ref.length)
    return { maxError: Number.POSITIVE_INFINITY, relError: Number.POSITIVE_INFINITY };
  let maxError = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - ref[i]!);
    // NaN counts as an infinite error.
    maxError = Math.max(maxError, Number.isNaN(e) ? Number.POSITIVE_INFINITY : e);
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return { maxError, relError: maxError / Math.max(scale, Number.MIN_VALUE) };
}

function jsMatMul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p]!;
      for (let j = 0; j < n; j++) out[i * n + j]! += av * b[p * n + j]!;
    }
  return out;
}

/** NHWC conv2d with CONV's geometry ('same' padding): the forward pass, or the filter gradient given dy. */
function jsConv(x: Float32Array, other: Float32Array, mode: 'forward' | 'filterGrad'): Float64Array {
  const { n, h, w, c, fh, fw, co, stride } = CONV;
  const oh = Math.ceil(h / stride);
  const ow = Math.ceil(w / stride);
  const padTop = Math.floor(Math.max((oh - 1) * stride + fh - h, 0) / 2);
  const padLeft = Math.floor(Math.max((ow - 1) * stride + fw - w, 0) / 2);
  const out = new Float64Array(mode === 'forward' ? n * oh * ow * co : fh * fw * c * co);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < oh; y++)
      for (let xo = 0; xo < ow; xo++)
        for (let i = 0; i < fh; i++) {
          const iy = y * stride - padTop + i;
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < fw; j++) {
            const ix = xo * stride - padLeft + j;
            if (ix < 0 || ix >= w) continue;
            for (let ci = 0; ci < c; ci++) {
              const xv = x[((b * h + iy) * w + ix) * c + ci]!;
              for (let o = 0; o < co; o++) {
                const fIndex = ((i * fw + j) * c + ci) * co + o;
                const yIndex = ((b * oh + y) * ow + xo) * co + o;
                if (mode === 'forward') out[yIndex]! += xv * other[fIndex]!;
                else out[fIndex]! += xv * other[yIndex]!;
              }
            }
          }
        }
  return out;
}
