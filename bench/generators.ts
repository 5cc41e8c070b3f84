/**
 * Generator-family comparison: trains each family (cgan, stylegan2, pggan …) on the same dataset for the same
 * wall-clock budget, one after the other, then evaluates every run the same way:
 * - `medsynth evaluate`'s metrics (evaluateSources: fid, kid, prdc, msssim; domain features) overall and per
 *   class, each beside the real-vs-real floor (held-out test split against the train split);
 * - within-class MS-SSIM of the synthetic images beside the real train images' (and the held-out floor's);
 * - class fidelity: a judge CNN trained ONCE per dataset (real train split, early stopping on val) labels
 *   `--per-class` generated images of each class; read against the judge's real-test accuracy.
 * Each family is marked against the issue's 64-px targets: within-class MS-SSIM ≤ 1.5 × real's in every
 * class, PRDC recall ≥ 0.2 in every class, class fidelity ≥ 0.8 × the judge's real-test accuracy.
 *
 *   npm run bench bench/generators.ts -- --data <source> [--label-from-filename <regex>] --minutes M \
 *     [--families cgan,stylegan2,pggan] [--preset P] [--size 28|64] [--set key=value …] [--out dir] \
 *     [--judge-epochs N] [--per-class N] [--eval-count N] [--bootstrap N] [--extractor-epochs N] [--guidance w]
 *   npm run bench bench/generators.ts -- --runs <dir1,dir2,…> [--judge-epochs N] [--per-class N] …
 *
 * `--runs` skips training and evaluates existing run directories (family, data and size read from each run;
 * the training numbers from its result.json when it has one). `--preset` defaults to the preset made for
 * `--size` (medmnist-28 up to 32 px, small-64 at 64 px). `--set key=value` overrides a training option for
 * every family (value parsed as JSON when it parses, e.g. `condRamp=[0.1,0.5]`, else taken as a string).
 * `--eval-count`: synthetic images the evaluation generates (default: the held-out split's size and class
 * mix, so the floor compares the same N). `--bootstrap`: FID bootstrap replicates (default 10).
 * `--extractor-epochs`: most epochs of the domain feature extractor (default `evaluate`'s, 15; it is trained
 * once per dataset and size and cached, as `medsynth evaluate` does; lower it for smoke tests). A family that
 * fails prints an `error` line and the others go on. `--guidance w` samples diffusion (ddpm) runs with that
 * classifier-free guidance scale instead of their own (GAN runs are unaffected).
 *
 * Prints JSON lines on stdout: {bench…} (setup), {judge…} once per dataset, one {family…} per family, then
 * {summary: […]} ranking the families (all targets met first, then more targets met, then lower overall FID).
 * Progress goes to stderr. Exit code 1 when any family failed, 2 on bad flags.
 */
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { labelledFromSplit } from '../packages/medsynth/src/classify/labelled.js';
import type { LabelledImages } from '../packages/medsynth/src/classify/types.js';
import {
  MODELS,
  resolveTrainOptions,
  SIZES,
  TRAIN_PRESETS,
  trainPresetForSize,
  type GanModelName,
  type TrainOptions,
  type TrainOptionsInput,
} from '../packages/medsynth/src/config/train-options.js';
import type { DataOptions } from '../packages/medsynth/src/config/data-options.js';
import { openDataset } from '../packages/medsynth/src/data/source.js';
import {
  classFidelity,
  trainJudge,
  type ClassFidelityResult,
} from '../packages/medsynth/src/metrics/class-fidelity.js';
import type { MetricName } from '../packages/medsynth/src/metrics/registry.js';
import {
  evaluateSources,
  generateFromRun,
  type SourceEvaluation,
} from '../packages/medsynth/src/metrics/sources.js';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import type { ProgressEvent } from '../packages/medsynth/src/runtime/progress.js';
import { loadGenerator } from '../packages/medsynth/src/training/load-run.js';
import { readRunOptions, trainGan, type TrainResult } from '../packages/medsynth/src/training/loop.js';

const USAGE = `usage: bench/generators.ts --data <source> --minutes M [--label-from-filename <regex>]
  [--families ${['cgan', 'stylegan2', 'pggan'].join(',')}] [--preset ${Object.keys(TRAIN_PRESETS).join('|')}]
  [--size ${SIZES.join('|')}] [--set key=value …] [--out dir] [--judge-epochs N] [--per-class N]
  [--eval-count N] [--bootstrap N] [--extractor-epochs N] [--guidance w]
   or: bench/generators.ts --runs <dir1,dir2,…> [--judge-epochs N] [--per-class N] [--eval-count N]
  [--bootstrap N] [--extractor-epochs N] [--guidance w]`;

/** The issue's 64-px targets. */
const TARGETS = Object.freeze({ size: 64, msssimRatio: 1.5, recall: 0.2, fidelityShare: 0.8 });
/** Evaluation metrics (privacy is not part of this comparison). */
const METRICS: readonly MetricName[] = ['fid', 'kid', 'prdc', 'msssim'];
/** Training options that other flags own. */
const OWNED_KEYS: Readonly<Record<string, string>> = {
  data: '--data',
  model: '--families',
  minutes: '--minutes',
  size: '--size',
  preset: '--preset',
  outDir: '--out',
};

const { values: f } = parseArgs({
  options: {
    data: { type: 'string' },
    'label-from-filename': { type: 'string' },
    minutes: { type: 'string' },
    families: { type: 'string' },
    preset: { type: 'string' },
    size: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    out: { type: 'string', default: '/tmp/medsynth-bench-runs' },
    runs: { type: 'string' },
    'judge-epochs': { type: 'string', default: '30' },
    'per-class': { type: 'string', default: '500' },
    'eval-count': { type: 'string' },
    bootstrap: { type: 'string', default: '10' },
    'extractor-epochs': { type: 'string' },
    guidance: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
  allowPositionals: false,
});

if (f.help) {
  console.log(USAGE);
  process.exit(0);
}

function usageError(message: string): never {
  console.error(`bench/generators.ts: ${message}\n${USAGE}`);
  process.exit(2);
}

function integer(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min)
    usageError(`--${name} ${value}: expected an integer ≥ ${min}`);
  return n;
}

function parseSet(kv: string): [string, unknown] {
  const eq = kv.indexOf('=');
  if (eq <= 0) usageError(`--set ${kv}: expected key=value`);
  const key = kv.slice(0, eq).trim();
  const text = kv.slice(eq + 1);
  if (OWNED_KEYS[key]) usageError(`--set ${key}: use ${OWNED_KEYS[key]} instead`);
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // A plain string (a loss name, an augment mode …).
  }
  return [key, value];
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const judgeEpochs = integer('judge-epochs', f['judge-epochs'], 1)!;
const perClass = integer('per-class', f['per-class'], 1)!;
const evalCount = integer('eval-count', f['eval-count'], 2);
const bootstrap = integer('bootstrap', f.bootstrap, 0)!;
const extractorEpochs = integer('extractor-epochs', f['extractor-epochs'], 1);
// Classifier-free guidance scale for diffusion runs (class fidelity and evaluation); GAN runs ignore it.
const guidance = f.guidance === undefined ? undefined : Number(f.guidance);
if (guidance !== undefined && !(guidance >= 0)) usageError(`--guidance ${f.guidance}: expected a number ≥ 0`);
const samplingFor = (family: string) =>
  family === 'ddpm' && guidance !== undefined ? { guidance } : undefined;

/** What to evaluate: families to train (with their resolved options), or existing run directories. */
type Job = { kind: 'train'; family: GanModelName; options: TrainOptions } | { kind: 'run'; dir: string };
const jobs: Job[] = [];
let minutes: number | null = null;
if (f.runs !== undefined) {
  const clash: string[] = (
    ['data', 'label-from-filename', 'minutes', 'families', 'preset', 'size'] as const
  ).filter((k) => f[k] !== undefined);
  if (f.set!.length > 0) clash.push('set');
  if (clash.length > 0)
    usageError(
      `--runs evaluates existing runs; ${clash.map((k) => `--${k}`).join(', ')} only apply to training`,
    );
  const dirs = f.runs
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (dirs.length === 0) usageError('--runs: give at least one run directory');
  for (const d of dirs) {
    const dir = resolve(d);
    try {
      await access(join(dir, 'options.json'));
      await access(join(dir, 'checkpoints'));
    } catch {
      usageError(`--runs ${d}: not a run directory (needs options.json and checkpoints/)`);
    }
    jobs.push({ kind: 'run', dir });
  }
} else {
  if (f.data === undefined) usageError('--data (or --runs) is required');
  if (f.minutes === undefined)
    usageError('--minutes is required: every family gets the same wall-clock budget');
  minutes = Number(f.minutes);
  if (!(Number.isFinite(minutes) && minutes > 0)) usageError(`--minutes ${f.minutes}: expected a number > 0`);
  const families = (f.families ?? 'cgan,stylegan2,pggan')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (families.length === 0) usageError('--families: give at least one family');
  for (const name of families)
    if (!(MODELS as readonly string[]).includes(name))
      usageError(`--families: unknown family '${name}' (known: ${MODELS.join(', ')})`);
  if (new Set(families).size !== families.length)
    usageError(`--families ${f.families}: a family is named twice`);
  const size = integer('size', f.size, 1);
  if (size !== undefined && !(SIZES as readonly number[]).includes(size))
    usageError(`--size ${f.size}: expected one of ${SIZES.join(', ')}`);
  const preset = f.preset ?? trainPresetForSize(size ?? 28);
  if (!TRAIN_PRESETS[preset])
    usageError(`--preset ${preset}: unknown (known: ${Object.keys(TRAIN_PRESETS).join(', ')})`);
  if (!f.data.startsWith('medmnist:') && !(await exists(f.data)))
    usageError(`--data ${f.data}: no such file or folder`);
  const data: Record<string, unknown> = { source: f.data };
  if (f['label-from-filename'] !== undefined) data['labelFromFilename'] = f['label-from-filename'];
  const sets = Object.fromEntries(f.set!.map(parseSet));
  // Every family's options are resolved before anything trains, so a bad --set fails at once.
  for (const family of families as GanModelName[]) {
    const input: Record<string, unknown> = { ...sets, data, preset, model: family, minutes, outDir: f.out };
    if (size !== undefined) input['size'] = size;
    try {
      jobs.push({ kind: 'train', family, options: resolveTrainOptions(input as TrainOptionsInput) });
    } catch (e) {
      usageError(`training options for ${family}: ${(e as Error).message}`);
    }
  }
}

const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (v: number | null | undefined, digits = 4): number | null =>
  v === null || v === undefined || !Number.isFinite(v) ? null : Number(v.toFixed(digits));
const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

/** Peak RSS over a stretch of work: sampled on every progress event and every second. */
class RssMeter {
  private peak = 0;
  private readonly timer = setInterval(() => this.sample(), 1000).unref();
  constructor() {
    this.sample();
  }
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return mib(this.peak);
  }
}

function progress(label: string, meter: RssMeter): (e: ProgressEvent) => void {
  let lastTick = 0;
  return (e) => {
    meter.sample();
    if (e.type === 'tick') {
      if (performance.now() - lastTick < 30_000) return;
      lastTick = performance.now();
      const stats = e.stats ? ` ${JSON.stringify(e.stats)}` : '';
      log(`[${label}] ${e.phase} ${Math.round(e.done)}/${Math.round(e.total)} ${e.unit}${stats}`);
    } else if (e.type === 'phase') log(`[${label}] ${e.phase}${e.detail ? ` (${e.detail})` : ''}`);
    else if (e.type === 'checkpoint') log(`[${label}] checkpoint ${e.path}`);
    else if (e.type === 'warning') log(`[${label}] warning: ${e.message}`);
  };
}

/** A judge per dataset, shape and channels, trained once and shared by every family on it. */
interface Judge {
  readonly key: string;
  readonly classifier: Awaited<ReturnType<typeof trainJudge>>;
  readonly realTestAccuracy: number;
  readonly realTestBalancedAccuracy: number;
}
const judges = new Map<string, Judge>();

async function judgeFor(data: DataOptions, size: number, channels: 1 | 3): Promise<Judge> {
  const key = JSON.stringify({ data, size, channels });
  const known = judges.get(key);
  if (known) return known;
  const meter = new RssMeter();
  const t0 = performance.now();
  const onProgress = progress('judge', meter);
  onProgress({ type: 'phase', phase: 'training the judge CNN', detail: `${data.source} at ${size} px` });
  const ds = await openDataset(data);
  const load = { size, channels };
  const train: LabelledImages = await labelledFromSplit(ds.split('train'), load);
  const val = await labelledFromSplit(ds.split('val'), load);
  const test = await labelledFromSplit(ds.split('test'), load);
  const classifier = await trainJudge(train, val, { epochs: judgeEpochs }, { onProgress });
  const realTest = await classifier.evaluate(test.images, test.labels);
  const judge: Judge = {
    key,
    classifier,
    realTestAccuracy: realTest.accuracy,
    realTestBalancedAccuracy: realTest.balancedAccuracy,
  };
  judges.set(key, judge);
  print({
    judge: 'cnn',
    data: data.source,
    size,
    channels,
    classes: ds.classNames,
    trainImages: train.images.count,
    testImages: test.images.count,
    epochs: classifier.history.length,
    bestEpoch: classifier.bestEpoch,
    seconds: Math.round((performance.now() - t0) / 1000),
    realTestAccuracy: round(realTest.accuracy),
    realTestBalancedAccuracy: round(realTest.balancedAccuracy),
    peakRssMiB: meter.stop(),
  });
  return judge;
}

/** The training numbers of a run not trained here (its result.json), or nulls. */
async function savedResult(dir: string): Promise<Partial<TrainResult>> {
  try {
    return JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as Partial<TrainResult>;
  } catch {
    return {};
  }
}

interface Targets {
  readonly size: number;
  /** Whether the run is at the size the targets are set for. */
  readonly atTargetSize: boolean;
  readonly msssim: { ok: boolean; worst: { class: string; ratio: number | null } | null };
  readonly recall: { ok: boolean; worst: { class: string; recall: number | null } | null };
  readonly classFidelity: { ok: boolean; value: number | null; threshold: number | null };
  readonly met: number;
  readonly all: boolean;
}

interface ClassRow {
  readonly class: string;
  readonly nFake: number | null;
  readonly nFloor: number | null;
  readonly nReal: number | null;
  readonly precision: { fake: number | null; floor: number | null };
  readonly recall: { fake: number | null; floor: number | null };
  readonly density: { fake: number | null; floor: number | null };
  readonly coverage: { fake: number | null; floor: number | null };
  readonly fid: { fake: number | null; floor: number | null };
  readonly msssim: { fake: number | null; real: number | null; floor: number | null; ratio: number | null };
  readonly classFidelity: number | null;
}

function perClassRows(ev: SourceEvaluation, fidelity: ClassFidelityResult | null): ClassRow[] | null {
  if (ev.fake.classCounts === null || ev.classNames.length < 2) return null;
  const { records } = ev.result;
  const rec = (metric: MetricName, comparison: string, cls: string) =>
    records.find((r) => r.metric === metric && r.comparison === comparison && r.class === cls);
  const v = (metric: MetricName, comparison: string, cls: string, key: string) =>
    round(rec(metric, comparison, cls)?.values[key]);
  const pair = (metric: MetricName, cls: string, key: string) => ({
    fake: v(metric, 'fake', cls, key),
    floor: v(metric, 'floor', cls, key),
  });
  return ev.classNames.map((cls, k) => {
    const fake = v('msssim', 'fake', cls, 'msssim');
    const real = v('msssim', 'fake', cls, 'msssimReal');
    return {
      class: cls,
      nFake: rec('fid', 'fake', cls)?.nCompared ?? null,
      nFloor: rec('fid', 'floor', cls)?.nCompared ?? null,
      nReal: rec('fid', 'fake', cls)?.nReal ?? null,
      precision: pair('prdc', cls, 'precision'),
      recall: pair('prdc', cls, 'recall'),
      density: pair('prdc', cls, 'density'),
      coverage: pair('prdc', cls, 'coverage'),
      fid: pair('fid', cls, 'fid'),
      msssim: {
        fake,
        real,
        floor: v('msssim', 'floor', cls, 'msssim'),
        ratio: fake !== null && real !== null && real > 0 ? round(fake / real, 3) : null,
      },
      classFidelity: round(fidelity?.perClass[k]?.accuracy),
    };
  });
}

/**
 * The class whose value is worst (`worse(a, b)`: a is worse than b); a class without a value (too small for
 * the metric) is worst of all, so a missing value fails its target. Null for an unconditional run.
 */
function worstClass(
  rows: ClassRow[] | null,
  value: (r: ClassRow) => number | null,
  worse: (a: number, b: number) => boolean,
): { class: string; value: number | null } | null {
  if (!rows) return null;
  let worst: { class: string; value: number } | null = null;
  for (const row of rows) {
    const x = value(row);
    if (x === null) return { class: row.class, value: null };
    if (worst === null || worse(x, worst.value)) worst = { class: row.class, value: x };
  }
  return worst;
}

function targetsOf(
  size: number,
  rows: ClassRow[] | null,
  fidelity: ClassFidelityResult | null,
  judge: Judge | null,
): Targets {
  const ms = worstClass(
    rows,
    (r) => r.msssim.ratio,
    (a, b) => a > b,
  );
  const rc = worstClass(
    rows,
    (r) => r.recall.fake,
    (a, b) => a < b,
  );
  const threshold = judge ? TARGETS.fidelityShare * judge.realTestAccuracy : null;
  const value = fidelity?.accuracy ?? null;
  const checks = {
    msssim: { ok: ms !== null && ms.value !== null && ms.value <= TARGETS.msssimRatio, worst: ms },
    recall: { ok: rc !== null && rc.value !== null && rc.value >= TARGETS.recall, worst: rc },
    classFidelity: { ok: value !== null && threshold !== null && value >= threshold },
  };
  const met = [checks.msssim.ok, checks.recall.ok, checks.classFidelity.ok].filter(Boolean).length;
  return {
    size: TARGETS.size,
    atTargetSize: size === TARGETS.size,
    msssim: { ok: checks.msssim.ok, worst: ms ? { class: ms.class, ratio: ms.value } : null },
    recall: { ok: checks.recall.ok, worst: rc ? { class: rc.class, recall: rc.value } : null },
    classFidelity: { ok: checks.classFidelity.ok, value: round(value), threshold: round(threshold) },
    met,
    all: met === 3,
  };
}

interface Outcome {
  readonly family: string;
  readonly runDir: string | null;
  readonly error?: string;
  readonly fid?: number | null;
  readonly kid?: number | null;
  readonly imagesPerSecond?: number | null;
  readonly kimg?: number | null;
  readonly targets?: Targets;
}

const backend = await selectBackend();
print({
  bench: 'generators',
  backend: backend.backend,
  threads: backend.threads,
  mode: f.runs !== undefined ? 'runs' : 'train',
  data: f.data ?? null,
  minutes,
  families: jobs.map((j) => (j.kind === 'train' ? j.family : j.dir)),
  preset: jobs[0]?.kind === 'train' ? jobs[0].options.preset : null,
  size: jobs[0]?.kind === 'train' ? jobs[0].options.size : null,
  sets: f.set,
  judgeEpochs,
  perClass,
  evalCount: evalCount ?? 'held-out size',
  bootstrap,
  extractorEpochs: extractorEpochs ?? 'default',
  targets: TARGETS,
});

const outcomes: Outcome[] = [];
for (const job of jobs) {
  let family: string = job.kind === 'train' ? job.family : '?';
  let runDir: string | null = job.kind === 'run' ? job.dir : null;
  try {
    // Training (or the run's saved numbers).
    let train: Record<string, unknown>;
    if (job.kind === 'train') {
      const meter = new RssMeter();
      log(`[${family}] training for ${minutes} min (preset ${job.options.preset}, ${job.options.size} px)`);
      const r = await trainGan(job.options, { onProgress: progress(family, meter) });
      runDir = r.runDir;
      train = {
        trained: true,
        imagesPerSecond: round(r.imagesPerSecond, 1),
        kimg: round(r.kimg, 3),
        seconds: round(r.seconds, 1),
        steps: r.step,
        stoppedBy: r.stoppedBy,
        trainPeakRssMiB: meter.stop(),
      };
    } else {
      const r = await savedResult(job.dir);
      train = {
        trained: false,
        imagesPerSecond: round(r.imagesPerSecond, 1),
        kimg: round(r.kimg, 3),
        seconds: round(r.seconds, 1),
        steps: r.step ?? null,
        stoppedBy: r.stoppedBy ?? null,
        trainPeakRssMiB: null,
      };
    }
    const options = await readRunOptions(runDir!);
    const meter = new RssMeter();
    const t0 = performance.now();

    // Class fidelity: --per-class images of each class, judged by the dataset's judge.
    const { generator, run } = await loadGenerator(runDir!, {
      sampling: samplingFor(options.model),
    });
    family = run.spec.family;
    let judge: Judge | null = null;
    let fidelity: ClassFidelityResult | null = null;
    try {
      if (generator.conditional) {
        judge = await judgeFor(options.data, run.spec.size, run.spec.channels);
        log(`[${family}] class fidelity: ${perClass} images per class`);
        const fake = await generateFromRun(
          generator,
          run.classNames.map(() => perClass),
          undefined,
          { onProgress: progress(family, meter) },
        );
        fidelity = await classFidelity(judge.classifier, fake.images, fake.labels!);
      } else log(`[${family}] unconditional generator: no class fidelity`);
    } finally {
      generator.dispose();
    }

    // The evaluation `medsynth evaluate` runs (generated from the run's latest checkpoint).
    const ev = await evaluateSources({
      fake: runDir!,
      sampling: samplingFor(family),
      metrics: METRICS,
      baselines: true,
      bootstrap,
      fakeCount: evalCount,
      ...(extractorEpochs !== undefined ? { domain: { epochs: extractorEpochs } } : {}),
      onProgress: progress(family, meter),
    });
    const value = (metric: MetricName, comparison: string, key: string) =>
      round(
        ev.result.records.find((r) => r.metric === metric && r.comparison === comparison && r.class === null)
          ?.values[key],
      );
    const rows = perClassRows(ev, fidelity);
    const targets = targetsOf(run.spec.size, rows, fidelity, judge);
    const grid = join(runDir!, 'samples', 'latest.png');
    const fid = value('fid', 'fake', 'fid');
    const kid = value('kid', 'fake', 'kid');
    print({
      family,
      runDir,
      grid: (await exists(grid)) ? grid : null,
      data: options.data.source,
      size: run.spec.size,
      channels: run.spec.channels,
      preset: options.preset ?? null,
      checkpoint: run.checkpoint,
      ...train,
      evaluation: {
        seconds: round((performance.now() - t0) / 1000, 1),
        peakRssMiB: meter.stop(),
        extractor: ev.extractor.key,
        fakeCount: ev.fake.count,
        holdoutCount: ev.holdout?.count ?? null,
        fid: {
          fake: fid,
          fakeStd: value('fid', 'fake', 'fidStd'),
          floor: value('fid', 'floor', 'fid'),
          noise: value('fid', 'noise', 'fid'),
        },
        kid: { fake: kid, floor: value('kid', 'floor', 'kid'), noise: value('kid', 'noise', 'kid') },
        prdc: {
          precision: { fake: value('prdc', 'fake', 'precision'), floor: value('prdc', 'floor', 'precision') },
          recall: { fake: value('prdc', 'fake', 'recall'), floor: value('prdc', 'floor', 'recall') },
          density: { fake: value('prdc', 'fake', 'density'), floor: value('prdc', 'floor', 'density') },
          coverage: { fake: value('prdc', 'fake', 'coverage'), floor: value('prdc', 'floor', 'coverage') },
        },
        msssim: {
          fake: value('msssim', 'fake', 'msssim'),
          real: value('msssim', 'fake', 'msssimReal'),
          floor: value('msssim', 'floor', 'msssim'),
        },
        perClass: rows,
        warnings: ev.result.warnings,
      },
      classFidelity: fidelity
        ? {
            images: fidelity.count,
            accuracy: round(fidelity.accuracy),
            balancedAccuracy: round(fidelity.balancedAccuracy),
            judgeRealTestAccuracy: round(judge!.realTestAccuracy),
            judgeRealTestBalancedAccuracy: round(judge!.realTestBalancedAccuracy),
            perClass: fidelity.perClass.map((c) => ({ ...c, accuracy: round(c.accuracy) })),
            confusion: fidelity.confusion,
          }
        : null,
      targets,
    });
    outcomes.push({
      family,
      runDir,
      fid,
      kid,
      imagesPerSecond: train['imagesPerSecond'] as number | null,
      kimg: train['kimg'] as number | null,
      targets,
    });
  } catch (e) {
    const err = e as Error;
    log(`[${family}] FAILED: ${err.stack ?? String(err)}`);
    print({ family, runDir, error: `${err.name}: ${err.message}` });
    outcomes.push({ family, runDir, error: `${err.name}: ${err.message}` });
  }
}

for (const j of judges.values()) j.classifier.dispose();

// Ranking: all targets met first, then more targets met, then lower overall FID; failed runs last.
const ranked = [...outcomes].sort((a, b) => {
  if (a.error !== undefined || b.error !== undefined) return (a.error ? 1 : 0) - (b.error ? 1 : 0);
  const met = (b.targets?.met ?? 0) - (a.targets?.met ?? 0);
  if (met !== 0) return met;
  return (a.fid ?? Infinity) - (b.fid ?? Infinity);
});
print({
  summary: ranked.map((o, i) => ({
    rank: i + 1,
    family: o.family,
    runDir: o.runDir,
    ...(o.error !== undefined
      ? { error: o.error }
      : {
          fid: o.fid,
          kid: o.kid,
          imagesPerSecond: o.imagesPerSecond,
          kimg: o.kimg,
          meetsTargets: o.targets!.all,
          targetsMet: o.targets!.met,
          atTargetSize: o.targets!.atTargetSize,
          worstMsssimRatio: o.targets!.msssim.worst,
          worstRecall: o.targets!.recall.worst,
          classFidelity: o.targets!.classFidelity,
        }),
  })),
  ranking: 'all targets met, then targets met, then overall FID (lower first); failed last',
  targets: TARGETS,
  processPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  numTensors: tf.memory().numTensors,
});
if (outcomes.some((o) => o.error !== undefined)) process.exitCode = 1;
