/**
 * The training loop, the same for every generator family (`families/`). It takes one resolved options
 * object, trains until `kimg` thousand real images or `minutes` of wall-clock time (whichever comes first)
 * or an abort, and at every tick runs its hooks: a line in `stats.jsonl`, a sample grid from fixed seeds
 * (one row per class) and an atomic checkpoint. The loop owns the budget, the data order, every Rng and the
 * augmentation probability; the family owns the maths of one step. A run continues exactly from its latest
 * checkpoint (`resumeGan`): the same weights, optimizer moments, Rng states, augmentation probability and
 * family state, so a killed run loses at most one tick.
 */
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdaController } from '../augment/ada.js';
import { resolveOptions } from '../config/data-options.js';
import { type TrainOptions, TrainOptionsSchema } from '../config/train-options.js';
import { encodePng, tileImages } from '../data/image/grid.js';
import { tensorToImages } from '../data/image/tensors.js';
import type { ImageArray, RawImage } from '../data/types.js';
import type { SamplingGenerator } from '../models/types.js';
import { describeBackend } from '../runtime/backend.js';
import { CheckpointError, TrainingError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng, zFromSeed } from '../runtime/random.js';
import {
  disposeWeightSets,
  latestCheckpoint,
  type LoadedCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainState,
} from './checkpoint.js';
import { familyOfSpec, generatorFamily } from './families/index.js';
import type { BaseSpec, FamilyTrainer, GeneratorFamily, StepStats } from './family.js';
import { BatchSampler, loadRealSet, type RealSet } from './real-data.js';
import { createRunDir, dataName } from './run-dir.js';
import { Yielder } from '../runtime/yield.js';

export interface TickStats {
  readonly tick: number;
  readonly step: number;
  readonly kimg: number;
  /** Training seconds so far (all sessions). */
  readonly seconds: number;
  /** Real images per second over this tick. */
  readonly imagesPerSecond: number;
  readonly dLoss: number;
  /** Mean generator loss (null for a family without a generator update). */
  readonly gLoss: number | null;
  /** Mean R1 / GP penalty over the steps that computed one (null if none). */
  readonly penalty: number | null;
  /** Augmentation probability and ADA's r_t (null without ADA). */
  readonly augmentP: number;
  readonly adaRt: number | null;
  /** Transitional conditioning's λ at the tick (absent without a ramp). */
  readonly condLambda?: number;
  /** The family's own numbers at the tick (PGGAN: level and fade-in α …). */
  readonly [familyStat: string]: number | string | null | undefined;
  readonly numTensors: number;
  readonly rssMiB: number;
  readonly time: string;
}

export interface TrainResult {
  readonly runDir: string;
  readonly checkpoint: string;
  readonly step: number;
  readonly kimg: number;
  readonly seconds: number;
  /** Real images per second over this session's training steps (ticks excluded). */
  readonly imagesPerSecond: number;
  readonly stoppedBy: 'kimg' | 'minutes' | 'aborted';
  readonly last: TickStats | null;
}

/** The architecture the options ask for, on this data (the family's resolved spec). */
export function ganSpecFor(options: TrainOptions, real: Pick<RealSet, 'images' | 'classNames'>): BaseSpec {
  return generatorFamily(options.model).specFor(options, {
    channels: real.images.channels,
    numClasses: real.classNames.length,
  });
}

export { conditionStrength } from './families/adversarial.js';

/** Grid seeds: row c holds class c, images c·perClass … c·perClass + perClass − 1 (one row if unconditional). */
export async function sampleGrid(generator: SamplingGenerator, perClass: number): Promise<RawImage> {
  const rows = generator.conditional ? generator.numClasses : 1;
  const n = rows * perClass;
  const z = new Float32Array(n * generator.zDim);
  for (let i = 0; i < n; i++) z.set(zFromSeed(i, generator.zDim), i * generator.zDim);
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / perClass));
  const x = tf.tidy(() =>
    generator.generate(
      tf.tensor2d(z, [n, generator.zDim]),
      generator.conditional ? tf.tensor1d(labels, 'int32') : null,
    ),
  );
  try {
    return tileImages(splitRows(await tensorToImages(x), rows, perClass));
  } finally {
    x.dispose();
  }
}

function splitRows(images: ImageArray, rows: number, perRow: number): RawImage[][] {
  const per = images.height * images.width * images.channels;
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length: perRow }, (_, c) => {
      const i = r * perRow + c;
      return {
        width: images.width,
        height: images.height,
        channels: images.channels,
        data: images.data.subarray(i * per, (i + 1) * per),
      };
    }),
  );
}

/** Real images, one row per class, for comparing with the sample grids. */
function realGrid(real: RealSet, perClass: number): RawImage {
  const { images } = real;
  const per = images.height * images.width * images.channels;
  const rows = real.classNames.map((_, c) => {
    const row: RawImage[] = [];
    for (let i = 0; i < real.labels.length && row.length < perClass; i++) {
      if (real.labels[i] === c) {
        row.push({
          width: images.width,
          height: images.height,
          channels: images.channels,
          data: images.data.subarray(i * per, (i + 1) * per),
        });
      }
    }
    return row;
  });
  return tileImages(rows.filter((r) => r.length > 0));
}

/**
 * Starts a new run: loads the train split (or the part `trainImages` / `trainClass` choose), creates the run
 * directory and trains.
 */
export async function trainGan(options: TrainOptions, control: RunControl = {}): Promise<TrainResult> {
  const real = await loadRealSet(options.data, options.size, options.channels, control, options);
  ganSpecFor(options, real); // options the family cannot build fail here, before the run directory exists
  const name = options.name ?? `${options.model}-${dataName(options.data.source)}-${options.size}`;
  const runDir = await createRunDir(options.outDir, name);
  await writeFileAtomic(join(runDir, 'options.json'), `${JSON.stringify(options, null, 2)}\n`);
  await writeFileAtomic(join(runDir, 'reals.png'), await encodePng(realGrid(real, options.gridPerClass)));
  return runTraining(runDir, options, real, null, control);
}

/** Reads and re-validates a run's `options.json`. */
export async function readRunOptions(runDir: string): Promise<TrainOptions> {
  const file = join(runDir, 'options.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError('cannot read the run options (is this a run directory?)', { file, cause: e });
  }
  return resolveOptions(TrainOptionsSchema, raw, file);
}

export interface ResumeOverrides {
  /** A new total length (extends or shortens the run). */
  readonly kimg?: number | undefined;
  readonly minutes?: number | undefined;
}

/** Continues a run from its latest checkpoint, in the same directory. */
export async function resumeGan(
  runDir: string,
  overrides: ResumeOverrides = {},
  control: RunControl = {},
): Promise<TrainResult> {
  let options = await readRunOptions(runDir);
  if (overrides.kimg !== undefined || overrides.minutes !== undefined) {
    options = resolveOptions(TrainOptionsSchema, { ...options, ...stripUndefined(overrides) }, 'resume');
    await writeFileAtomic(join(runDir, 'options.json'), `${JSON.stringify(options, null, 2)}\n`);
  }
  const found = await latestCheckpoint(runDir);
  if (found === undefined) return restartGan(runDir, options, control);
  const ckpt = await loadCheckpoint(found);
  try {
    const real = await loadRealSet(options.data, options.size, options.channels, control, options);
    if (real.classNames.join('\n') !== ckpt.state.classNames.join('\n')) {
      throw new CheckpointError('the data has other classes than the checkpoint', {
        file: ckpt.dir,
        expected: ckpt.state.classNames.join(', '),
        found: real.classNames.join(', '),
      });
    }
    return await runTraining(runDir, options, real, ckpt, control);
  } finally {
    disposeWeightSets(ckpt.weights);
  }
}

/**
 * A run killed before its first checkpoint has nothing to continue from: it starts over from step 0 in the same
 * directory with its saved options (what it wrote before the kill — stats, sample grids — is replaced).
 */
async function restartGan(runDir: string, options: TrainOptions, control: RunControl): Promise<TrainResult> {
  control.onProgress?.({
    type: 'warning',
    message: `${runDir} has no checkpoint yet (the run stopped before its first one): starting it over from step 0 with its options.json`,
  });
  const real = await loadRealSet(options.data, options.size, options.channels, control, options);
  await rm(join(runDir, 'samples'), { recursive: true, force: true });
  await rm(join(runDir, 'stats.jsonl'), { force: true });
  await rm(join(runDir, 'result.json'), { force: true });
  await writeFileAtomic(join(runDir, 'reals.png'), await encodePng(realGrid(real, options.gridPerClass)));
  return runTraining(runDir, options, real, null, control);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Drops stats lines written after the checkpoint a resumed run continues from. */
async function truncateStats(file: string, step: number): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const kept = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => {
      try {
        return (JSON.parse(l) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
  await writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
}

/** Per-tick sums of the steps' numbers. */
class Accumulator {
  steps = 0;
  images = 0;
  dLoss = 0;
  gLoss = 0;
  gLosses = 0;
  penalty = 0;
  penalties = 0;
  readonly started = performance.now();

  add(s: StepStats): void {
    this.steps++;
    this.images += s.images;
    this.dLoss += s.dLoss;
    if (s.gLoss !== null) {
      this.gLoss += s.gLoss;
      this.gLosses++;
    }
    if (s.penalty !== null) {
      this.penalty += s.penalty;
      this.penalties++;
    }
  }
}

/** The family, its spec and a trainer for a new run or a checkpoint (restored). */
async function openTrainer(
  runDir: string,
  options: TrainOptions,
  real: RealSet,
  ckpt: LoadedCheckpoint | null,
): Promise<{ family: GeneratorFamily; spec: BaseSpec; trainer: FamilyTrainer }> {
  const { family, spec } = ckpt
    ? familyOfSpec(ckpt.state.spec, ckpt.dir)
    : {
        family: generatorFamily(options.model),
        spec: ganSpecFor(options, real),
      };
  if (spec.channels !== real.images.channels) {
    throw new CheckpointError('the data has another channel count than the checkpoint', {
      file: ckpt?.dir ?? runDir,
      expected: String(spec.channels),
      found: String(real.images.channels),
    });
  }
  const trainer = family.trainer(spec, options);
  if (ckpt) {
    try {
      await trainer.restore({ weights: ckpt.weights, order: ckpt.order }, ckpt.state.family, ckpt.dir);
    } catch (e) {
      trainer.dispose();
      throw e;
    }
  }
  return { family, spec, trainer };
}

async function writeRunJson(
  runDir: string,
  options: TrainOptions,
  real: RealSet,
  spec: BaseSpec,
): Promise<void> {
  const run = {
    started: new Date().toISOString(),
    spec,
    data: {
      source: options.data.source,
      location: real.location,
      split: real.splitSource,
      classNames: real.classNames,
      trainCounts: real.classCounts,
      // Images trained on; with a subset or class, which ones (`Split.id`, in load order).
      trainImages: real.labels.length,
      ...(real.imageIds !== null ? { imageIds: real.imageIds, trainClass: options.trainClass } : {}),
      imageSize: [real.images.height, real.images.width, real.images.channels],
      balancedSampling: options.balancedSampling,
    },
    backend: describeBackend(),
    node: process.version,
  };
  await writeFileAtomic(join(runDir, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
}

async function runTraining(
  runDir: string,
  options: TrainOptions,
  real: RealSet,
  ckpt: LoadedCheckpoint | null,
  control: RunControl,
): Promise<TrainResult> {
  const { onProgress, signal } = control;
  const { family, spec, trainer } = await openTrainer(runDir, options, real, ckpt);
  try {
    const s = ckpt?.state;
    const rngData = s ? Rng.fromState(s.rng.data) : Rng.derive(options.seed, 'data');
    const rngs = {
      z: s ? Rng.fromState(s.rng.z) : Rng.derive(options.seed, 'z'),
      augment: s ? Rng.fromState(s.rng.augment) : Rng.derive(options.seed, 'augment'),
    };
    const ada =
      options.augment === 'ada'
        ? s?.augment
          ? AdaController.fromState(s.augment)
          : new AdaController({ target: options.adaTarget, speedKimg: options.adaSpeedKimg })
        : null;
    let step = s?.step ?? 0;
    let nimg = s?.nimg ?? 0;
    let tick = s?.tick ?? 0;
    const elapsedBefore = s?.elapsedSeconds ?? 0;
    if (ckpt) await truncateStats(join(runDir, 'stats.jsonl'), step);
    else await writeRunJson(runDir, options, real, spec);
    const sampler = new BatchSampler(real, options.balancedSampling);
    const augmentP = () => (options.augment === 'diffaugment' ? 1 : (ada?.p ?? 0));
    const totalImages = options.kimg !== undefined ? options.kimg * 1000 : Number.POSITIVE_INFINITY;
    const budgetSeconds = options.minutes !== undefined ? options.minutes * 60 : Number.POSITIVE_INFINITY;
    const sessionStart = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - sessionStart) / 1000;
    /** How far the run is through its budget: the larger of its kimg and minutes shares. */
    const progress = () => Math.min(1, Math.max(nimg / totalImages, elapsed() / budgetSeconds));
    let acc = new Accumulator();
    let lastStats: TickStats | null = null;
    let lastCheckpoint = ckpt?.dir ?? '';
    let stepSeconds = 0;
    let stepImages = 0;
    let nextTickImages = nimg + options.tickKimg * 1000;
    const phase = 'train';
    const grid = trainer.sampler(real.classNames);
    onProgress?.({
      type: 'phase',
      phase,
      detail: `${family.name} ${spec.size}px, ${real.labels.length} images`,
    });

    const doTick = async () => {
      tick++;
      const seconds = (performance.now() - acc.started) / 1000;
      lastStats = {
        tick,
        step,
        kimg: nimg / 1000,
        seconds: elapsed(),
        imagesPerSecond: seconds > 0 ? acc.images / seconds : 0,
        dLoss: acc.dLoss / Math.max(1, acc.steps),
        gLoss: acc.gLosses > 0 ? acc.gLoss / acc.gLosses : null,
        penalty: acc.penalties > 0 ? acc.penalty / acc.penalties : null,
        augmentP: augmentP(),
        ...trainer.tickStats(),
        adaRt: ada ? ada.rt : null,
        numTensors: tf.memory().numTensors,
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
        time: new Date().toISOString(),
      };
      // Hooks, in an order that keeps the run consistent if killed between them: the stats line first (a
      // resumed run drops lines past its checkpoint), then the grid, then the checkpoint.
      await appendFile(join(runDir, 'stats.jsonl'), `${JSON.stringify(lastStats)}\n`);
      const png = await encodePng(await sampleGrid(grid, options.gridPerClass));
      await writeFileAtomic(join(runDir, 'samples', `step-${String(step).padStart(7, '0')}.png`), png);
      await writeFileAtomic(join(runDir, 'samples', 'latest.png'), png);
      const snapshot = await trainer.checkpoint();
      try {
        const state: TrainState = {
          step,
          nimg,
          tick,
          elapsedSeconds: elapsed(),
          rng: { data: rngData.state(), z: rngs.z.state(), augment: rngs.augment.state() },
          augment: ada ? ada.state() : null,
          spec,
          classNames: real.classNames,
          classCounts: real.classCounts,
          family: snapshot.state,
        };
        lastCheckpoint = await saveCheckpoint(runDir, state, snapshot.groups, options.keepCheckpoints);
      } finally {
        snapshot.release();
      }
      onProgress?.({ type: 'checkpoint', path: lastCheckpoint, step, kimg: nimg / 1000 });
      acc = new Accumulator();
      nextTickImages = nimg + options.tickKimg * 1000;
    };

    let stoppedBy: TrainResult['stoppedBy'] = 'kimg';
    let lastTickTime = performance.now();
    // Steps are synchronous: give timers and I/O (a queue worker's lock renewal, Ctrl-C) a turn now and then.
    const yielder = new Yielder();
    for (;;) {
      await yielder.maybe();
      if (nimg >= totalImages) {
        stoppedBy = 'kimg';
        break;
      }
      if (elapsed() >= budgetSeconds) {
        stoppedBy = 'minutes';
        break;
      }
      if (signal?.aborted) {
        stoppedBy = 'aborted';
        break;
      }
      const t0 = performance.now();
      const stats = trainer.step({
        draw: (n) => sampler.batch(n, rngData),
        rng: rngs,
        augmentP: augmentP(),
        progress: progress(),
        imagesSeen: nimg,
      });
      const diverged = (loss: string, value: number) =>
        nonFinite(loss, family.divergence.hint, value, step, nimg, lastCheckpoint);
      if (!Number.isFinite(stats.dLoss)) throw diverged(family.divergence.loss, stats.dLoss);
      if (stats.gLoss !== null && !Number.isFinite(stats.gLoss)) throw diverged('G', stats.gLoss);
      nimg += stats.images;
      step++;
      acc.add(stats);
      if (ada && stats.realSignSum !== null) {
        ada.accumulate(stats.realSignSum, stats.images);
        if (step % options.adaInterval === 0) ada.update(stats.images * options.adaInterval);
      }
      stepSeconds += (performance.now() - t0) / 1000;
      stepImages += stats.images;
      onProgress?.({
        type: 'tick',
        phase,
        done: Number.isFinite(totalImages) ? nimg : Math.floor(elapsed()),
        total: Number.isFinite(totalImages) ? totalImages : budgetSeconds,
        unit: Number.isFinite(totalImages) ? 'images' : 's',
        stats: {
          kimg: nimg / 1000,
          [family.divergence.loss]: stats.dLoss,
          ...(acc.gLosses > 0 ? { G: acc.gLoss / acc.gLosses } : {}),
          'img/s': stepImages / Math.max(stepSeconds, 1e-9),
          ...(options.augment !== 'none' ? { p: augmentP() } : {}),
        },
      });
      if (nimg >= nextTickImages || (performance.now() - lastTickTime) / 1000 >= options.tickSeconds) {
        await doTick();
        lastTickTime = performance.now();
      }
    }
    if (acc.steps > 0 || !lastCheckpoint) await doTick();
    onProgress?.({ type: 'done', phase, seconds: (performance.now() - sessionStart) / 1000 });
    const result: TrainResult = {
      runDir,
      checkpoint: lastCheckpoint,
      step,
      kimg: nimg / 1000,
      seconds: elapsed(),
      imagesPerSecond: stepImages / Math.max(stepSeconds, 1e-9),
      stoppedBy,
      last: lastStats,
    };
    await writeFileAtomic(join(runDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    trainer.dispose();
  }
}

function nonFinite(
  which: string,
  hint: string,
  value: number,
  step: number,
  nimg: number,
  checkpoint: string,
): TrainingError {
  return new TrainingError(
    `${which} loss became ${value} at step ${step + 1} (${(nimg / 1000).toFixed(2)} kimg); training stopped. ` +
      (checkpoint
        ? `The last good checkpoint is kept: ${checkpoint}. `
        : 'No checkpoint had been written yet. ') +
      hint,
    { field: `${which} loss` },
  );
}
