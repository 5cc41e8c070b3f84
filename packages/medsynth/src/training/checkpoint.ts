/**
 * Training checkpoints: a directory per checkpoint, written under a temporary name and renamed into place
 * (atomic), then `latest.json` is replaced atomically. A run killed at any moment leaves either the previous
 * checkpoint or the new one, never half of one. Layout of `<run>/checkpoints/step-0001234/`:
 *   checkpoint.json   state (step, images, time, Rng states, augment state, Adam β powers, spec, classes)
 *                     and the tensor index of every weight group
 *   G.bin D.bin G_ema.bin gOpt.bin dOpt.bin   raw little-endian weights (tf.io.encodeWeights)
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { AdaState } from '../augment/ada.js';
import type { GanSpec } from '../models/types.js';
import { CheckpointError } from '../runtime/errors.js';
import { fsyncDir, withFileContext, writeFileAtomic, writeFileSynced } from '../runtime/fs.js';

/** A tensor with its name (what optimizers' getWeights hands out). */
export interface NamedTensor {
  readonly name: string;
  readonly tensor: tf.Tensor;
}

export const CHECKPOINT_FORMAT = 'medsynth-gan-checkpoint';
export const CHECKPOINT_VERSION = 1;

export const WEIGHT_GROUPS = ['G', 'D', 'G_ema', 'gOpt', 'dOpt'] as const;
export type WeightGroup = (typeof WEIGHT_GROUPS)[number];

/** Everything but the weights: what the loop needs to continue exactly. */
export interface TrainState {
  /** G updates done. */
  readonly step: number;
  /** D updates done (decides lazy-R1 steps). */
  readonly dSteps: number;
  /** Real images shown to D. */
  readonly nimg: number;
  /** Ticks done. */
  readonly tick: number;
  /** Training wall-clock seconds so far (all sessions). */
  readonly elapsedSeconds: number;
  readonly rng: {
    readonly data: readonly number[];
    readonly z: readonly number[];
    readonly augment: readonly number[];
  };
  /** Augmentation controller state (ADA), or null. */
  readonly augment: AdaState | null;
  /** Adam's β-power accumulators, restored exactly. */
  readonly adam: { readonly g: readonly number[]; readonly d: readonly number[] };
  readonly spec: GanSpec;
  readonly classNames: readonly string[];
  readonly classCounts: readonly number[];
}

interface CheckpointFile extends TrainState {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly version: number;
  readonly savedAt: string;
  readonly weights: Record<WeightGroup, tf.io.WeightsManifestEntry[]>;
}

export type WeightSets = Record<WeightGroup, NamedTensor[]>;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`;
}

/** A model's weights by their stable names (layer name / weight name). */
export function namedWeights(model: tfl.LayersModel): NamedTensor[] {
  return model.weights.map((w) => ({ name: w.originalName, tensor: w.read() }));
}

/**
 * An optimizer's state under stable names: TF.js names Adam's slots after the variables' registered names,
 * which carry process-dependent suffixes (`g_dense0/kernel_12/m`). Adam's state is [iter, m…, v…] in the
 * order of the variables it updates; this renames them `<weight name>/m` and `/v`.
 */
export async function optimizerWeights(
  opt: tf.Optimizer,
  weightNames: readonly string[],
): Promise<NamedTensor[]> {
  const state = await opt.getWeights();
  const n = weightNames.length;
  if (state.length === 1) return state;
  if (state.length !== 1 + 2 * n) {
    tf.dispose(state.map((s) => s.tensor));
    throw new RangeError(`optimizer has ${state.length} state tensors, expected 1 + 2·${n}`);
  }
  return state.map((s, i) => ({
    name: i === 0 ? s.name : `${weightNames[(i - 1) % n]}/${i <= n ? 'm' : 'v'}`,
    tensor: s.tensor,
  }));
}

/** Writes a checkpoint into `<runDir>/checkpoints`, points `latest.json` at it, and prunes old ones. */
export async function saveCheckpoint(
  runDir: string,
  state: TrainState,
  weights: WeightSets,
  keep: number,
): Promise<string> {
  const root = join(runDir, 'checkpoints');
  const name = checkpointName(state.step);
  const final = join(root, name);
  const what = `writing checkpoint ${name} (the previous checkpoint is kept)`;
  await withFileContext(what, final, async () => {
    await mkdir(root, { recursive: true });
    const tmp = join(root, `.tmp-${name}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp);
    try {
      const index = {} as Record<WeightGroup, tf.io.WeightsManifestEntry[]>;
      for (const group of WEIGHT_GROUPS) {
        const { data, specs } = await tf.io.encodeWeights(weights[group]);
        index[group] = specs;
        await writeFileSynced(join(tmp, `${group}.bin`), new Uint8Array(data as ArrayBuffer));
      }
      const file: CheckpointFile = {
        format: CHECKPOINT_FORMAT,
        version: CHECKPOINT_VERSION,
        savedAt: new Date().toISOString(),
        ...state,
        weights: index,
      };
      await writeFileSynced(join(tmp, 'checkpoint.json'), `${JSON.stringify(file)}\n`);
      await fsyncDir(tmp);
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      await fsyncDir(root);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  });
  await writeFileAtomic(
    join(root, 'latest.json'),
    `${JSON.stringify({ checkpoint: name, step: state.step })}\n`,
    `writing the checkpoint index latest.json (${name} is complete)`,
  );
  await prune(root, keep, name);
  return join(root, name);
}

async function listCheckpoints(root: string): Promise<string[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  return names.filter((n) => /^step-\d{7,}$/.test(n)).sort();
}

async function prune(root: string, keep: number, current: string): Promise<void> {
  const names = await listCheckpoints(root);
  const old = names.filter((n) => n !== current).slice(0, Math.max(0, names.length - keep));
  for (const n of old) await rm(join(root, n), { recursive: true, force: true });
  for (const n of await readdir(root)) {
    if (n.startsWith('.tmp-')) await rm(join(root, n), { recursive: true, force: true });
  }
}

/**
 * The checkpoint directory to load: `which` as a path or a name inside `<run>/checkpoints`, else the one
 * `latest.json` names, else the newest complete one.
 */
export async function findCheckpoint(runDir: string, which?: string): Promise<string> {
  const found = await latestCheckpoint(runDir, which);
  if (found !== undefined) return found;
  throw new CheckpointError(
    `the run has no checkpoint yet: it stopped before its first one; \`medsynth train --resume ${resolve(runDir)}\` starts it over from step 0`,
    { file: join(resolve(runDir), 'checkpoints') },
  );
}

/** Like `findCheckpoint`, but undefined (not an error) when the run has no complete checkpoint yet. */
export async function latestCheckpoint(runDir: string, which?: string): Promise<string | undefined> {
  const root = join(resolve(runDir), 'checkpoints');
  const complete = async (dir: string) =>
    (await stat(join(dir, 'checkpoint.json')).catch(() => undefined)) !== undefined;
  if (which !== undefined) {
    for (const dir of [resolve(which), join(root, which)]) if (await complete(dir)) return dir;
    throw new CheckpointError('no such checkpoint', { file: which, expected: `a folder in ${root}` });
  }
  const latest = await readFile(join(root, 'latest.json'), 'utf8').catch(() => undefined);
  if (latest !== undefined) {
    try {
      const name = (JSON.parse(latest) as { checkpoint: string }).checkpoint;
      if (await complete(join(root, name))) return join(root, name);
    } catch {
      // fall through to scanning
    }
  }
  const names = await listCheckpoints(root);
  for (let i = names.length - 1; i >= 0; i--)
    if (await complete(join(root, names[i]!))) return join(root, names[i]!);
  return undefined;
}

export interface LoadedCheckpoint {
  readonly dir: string;
  readonly state: TrainState;
  /** Decoded tensors by group; the caller disposes them (`disposeWeightSets`). */
  readonly weights: Record<WeightGroup, tf.NamedTensorMap>;
  /** Tensor order of each group as saved (optimizer state is order-based). */
  readonly order: Record<WeightGroup, string[]>;
}

/** Reads a checkpoint directory; any missing or inconsistent part is a CheckpointError naming the file. */
export async function loadCheckpoint(
  dir: string,
  groups: readonly WeightGroup[] = WEIGHT_GROUPS,
): Promise<LoadedCheckpoint> {
  const jsonPath = join(dir, 'checkpoint.json');
  let file: CheckpointFile;
  try {
    file = JSON.parse(await readFile(jsonPath, 'utf8')) as CheckpointFile;
  } catch (e) {
    throw new CheckpointError('cannot read the checkpoint', { file: jsonPath, cause: e });
  }
  if (file.format !== CHECKPOINT_FORMAT || file.version !== CHECKPOINT_VERSION) {
    throw new CheckpointError('not a medsynth GAN checkpoint of a known version', {
      file: jsonPath,
      expected: `${CHECKPOINT_FORMAT} v${CHECKPOINT_VERSION}`,
      found: `${String(file.format)} v${String(file.version)}`,
    });
  }
  const weights = {} as Record<WeightGroup, tf.NamedTensorMap>;
  const order = {} as Record<WeightGroup, string[]>;
  for (const group of groups) {
    const specs = file.weights[group];
    const binPath = join(dir, `${group}.bin`);
    const buf = await readFile(binPath).catch((e: unknown) => {
      throw new CheckpointError('missing weights file', { file: binPath, cause: e });
    });
    const expected = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
    if (buf.byteLength !== expected) {
      throw new CheckpointError('weights file has the wrong size (truncated?)', {
        file: binPath,
        expected: `${expected} bytes`,
        found: `${buf.byteLength}`,
      });
    }
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    weights[group] = tf.io.decodeWeights(ab, specs);
    order[group] = specs.map((s) => s.name);
  }
  const { format: _f, version: _v, savedAt: _s, weights: _w, ...state } = file;
  return { dir, state, weights, order };
}

/** Assigns saved weights to a model by weight name, checking names and shapes. */
export function assignWeights(model: tfl.LayersModel, saved: tf.NamedTensorMap, where: string): void {
  for (const w of model.weights) {
    const t = saved[w.originalName];
    if (!t) throw new CheckpointError(`weight "${w.originalName}" is missing`, { file: where });
    if (t.shape.join('x') !== w.shape.join('x')) {
      throw new CheckpointError(`weight "${w.originalName}" has another shape`, {
        file: where,
        expected: w.shape.join('×'),
        found: t.shape.join('×'),
      });
    }
    (w.read() as tf.Variable).assign(t);
  }
}

/** Restores an optimizer's state (order-based, as TF.js optimizers are). */
export async function assignOptimizer(
  opt: tf.Optimizer,
  saved: tf.NamedTensorMap,
  order: readonly string[],
  where: string,
): Promise<void> {
  const current = await opt.getWeights();
  const expected = current.length;
  tf.dispose(current.map((c) => c.tensor));
  if (expected > 1 && expected !== order.length) {
    throw new CheckpointError('optimizer state does not match the model', {
      file: where,
      expected: `${expected} tensors`,
      found: `${order.length}`,
    });
  }
  await opt.setWeights(order.map((name) => ({ name, tensor: saved[name]! })));
}

export function disposeWeightSets(weights: Partial<Record<WeightGroup, tf.NamedTensorMap>>): void {
  for (const m of Object.values(weights)) if (m) tf.dispose(Object.values(m));
}
