/**
 * Training checkpoints: a directory per checkpoint, written under a temporary name and renamed into place
 * (atomic), then `latest.json` is replaced atomically. A run killed at any moment leaves either the previous
 * checkpoint or the new one, never half of one. Layout of `<run>/checkpoints/step-0001234/`:
 *   checkpoint.json   the loop's state (step, images, time, Rng states, augment state, spec, classes), the
 *                     family's own JSON state, and the tensor index of every weight group
 *   <group>.bin       raw little-endian weights (tf.io.encodeWeights), one file per group the family saves
 *                     (a GAN: G.bin D.bin G_ema.bin gOpt.bin dOpt.bin)
 * Version 1 (before generator families) kept a GAN's `dSteps` and `adam` at the top level; it still loads,
 * with those two fields as its family state.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { AdaState } from '../augment/ada.js';
import { CheckpointError } from '../runtime/errors.js';
import { fsyncDir, withFileContext, writeFileAtomic, writeFileSynced } from '../runtime/fs.js';

/** A tensor with its name (what optimizers' getWeights hands out). */
export interface NamedTensor {
  readonly name: string;
  readonly tensor: tf.Tensor;
}

export const CHECKPOINT_FORMAT = 'medsynth-gan-checkpoint';
export const CHECKPOINT_VERSION = 2;

/** Everything but the weights: what the loop needs to continue exactly, and the family's own state. */
export interface TrainState {
  /** Optimisation steps done (a GAN: G updates). */
  readonly step: number;
  /** Real images shown. */
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
  /** The family's spec (validated by the family when read back). */
  readonly spec: { readonly family: string };
  readonly classNames: readonly string[];
  readonly classCounts: readonly number[];
  /** The family's JSON state (optimizer β powers, counters, schedule position). */
  readonly family: unknown;
}

const rngState = z.array(z.number()).min(1);
const manifestEntry = z
  .object({ name: z.string(), shape: z.array(z.number().int().min(0)), dtype: z.enum(['float32', 'int32']) })
  .passthrough();

/** checkpoint.json as read back (v1 or v2); the family validates its spec and state itself. */
const CheckpointFileSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.union([z.literal(1), z.literal(2)]),
    savedAt: z.string(),
    step: z.number().int().min(0),
    nimg: z.number().min(0),
    tick: z.number().int().min(0),
    elapsedSeconds: z.number().min(0),
    rng: z.object({ data: rngState, z: rngState, augment: rngState }),
    augment: z
      .object({
        p: z.number(),
        rt: z.number().nullable(),
        target: z.number(),
        speedKimg: z.number(),
        interval: z.number().optional(),
        signSum: z.number(),
        count: z.number(),
      })
      .nullable(),
    spec: z.object({ family: z.string() }).passthrough(),
    classNames: z.array(z.string()).min(1),
    classCounts: z.array(z.number().int().min(0)),
    family: z.unknown().optional(),
    // version 1: a GAN's family state at the top level
    dSteps: z.number().int().min(0).optional(),
    adam: z.object({ g: z.array(z.number()), d: z.array(z.number()) }).optional(),
    weights: z.record(z.string().regex(/^[\w-]+$/), z.array(manifestEntry)),
  })
  .strict();

type CheckpointFile = z.output<typeof CheckpointFileSchema>;

/** Adam's β-power accumulators, which `getWeights`/`setWeights` do not round-trip exactly. */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

/** An Adam optimizer's β-power accumulators [β1^t, β2^t] (saved beside its weights for a bit-exact resume). */
export function adamBetaPowers(opt: tf.AdamOptimizer): [number, number] {
  const a = opt as unknown as AdamInternals;
  return [a.accBeta1.dataSync()[0]!, a.accBeta2.dataSync()[0]!];
}

/** Restores what `adamBetaPowers` read. */
export function setAdamBetaPowers(opt: tf.AdamOptimizer, powers: readonly number[]): void {
  const a = opt as unknown as AdamInternals;
  tf.tidy(() => {
    a.accBeta1.assign(tf.scalar(powers[0]!));
    a.accBeta2.assign(tf.scalar(powers[1]!));
  });
}

/** A weight group of a loaded checkpoint, or a CheckpointError naming it. */
export function savedGroup(
  weights: Readonly<Record<string, tf.NamedTensorMap>>,
  name: string,
  where: string,
): tf.NamedTensorMap {
  const g = weights[name];
  if (!g) throw new CheckpointError(`the checkpoint has no weight group "${name}"`, { file: where });
  return g;
}

/** Adam's β-power accumulators of G's and D's optimizers, as families keep them in their state. */
export const adamPowersSchema = z.object({
  g: z.tuple([z.number(), z.number()]),
  d: z.tuple([z.number(), z.number()]),
});

/**
 * A family's JSON state read back from `checkpoint.json`, validated by the family's schema: a mismatch is a
 * CheckpointError naming the field (`family.<path>`) and what was found there.
 */
export function parseFamilyState<S extends z.ZodTypeAny>(
  schema: S,
  state: unknown,
  where: string,
): z.output<S> {
  const parsed = schema.safeParse(state);
  if (parsed.success) return parsed.data as z.output<S>;
  const issue = parsed.error.issues[0]!;
  let found: unknown = state;
  for (const key of issue.path) found = (found as Record<PropertyKey, unknown> | undefined)?.[key];
  throw new CheckpointError(`the family state is not valid: ${issue.message}`, {
    file: where,
    field: ['family', ...issue.path].join('.'),
    found: found === undefined ? 'nothing' : JSON.stringify(found),
  });
}

/** Weight groups by name, each a list of named tensors (saved in this order). */
export type WeightSets = Readonly<Record<string, readonly NamedTensor[]>>;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`;
}

/** A model's trainable variables, in its weight order (what its optimizer updates). */
export function trainableVariables(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
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
      const index: Record<string, tf.io.WeightsManifestEntry[]> = {};
      for (const [group, tensors] of Object.entries(weights)) {
        if (!/^[\w-]+$/.test(group)) throw new RangeError(`weight group name "${group}" is not a file name`);
        const { data, specs } = await tf.io.encodeWeights([...tensors]);
        index[group] = specs;
        await writeFileSynced(join(tmp, `${group}.bin`), new Uint8Array(data as ArrayBuffer));
      }
      const file = {
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
  readonly weights: Record<string, tf.NamedTensorMap>;
  /** Tensor order of each group as saved (optimizer state is order-based). */
  readonly order: Record<string, string[]>;
}

/**
 * Reads a checkpoint directory (all its weight groups, or the ones named); any missing or inconsistent part
 * is a CheckpointError naming the file.
 */
export async function loadCheckpoint(dir: string, groups?: readonly string[]): Promise<LoadedCheckpoint> {
  const jsonPath = join(dir, 'checkpoint.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (e) {
    throw new CheckpointError('cannot read the checkpoint', { file: jsonPath, cause: e });
  }
  const head = raw as { format?: unknown; version?: unknown } | null;
  if (head?.format !== CHECKPOINT_FORMAT || (head.version !== 1 && head.version !== CHECKPOINT_VERSION)) {
    throw new CheckpointError('not a medsynth GAN checkpoint of a known version', {
      file: jsonPath,
      expected: `${CHECKPOINT_FORMAT} v1 or v${CHECKPOINT_VERSION}`,
      found: `${String(head?.format)} v${String(head?.version)}`,
    });
  }
  const parsed = CheckpointFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CheckpointError(`checkpoint.json is not valid: ${issue.message}`, {
      file: jsonPath,
      ...(issue.path.length > 0 ? { field: issue.path.join('.') } : {}),
    });
  }
  const file: CheckpointFile = parsed.data;
  const weights: Record<string, tf.NamedTensorMap> = {};
  const order: Record<string, string[]> = {};
  try {
    for (const group of groups ?? Object.keys(file.weights)) {
      const specs = file.weights[group];
      if (!specs) {
        throw new CheckpointError(`the checkpoint has no weight group "${group}"`, {
          file: jsonPath,
          expected: group,
          found: Object.keys(file.weights).join(', '),
        });
      }
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
      weights[group] = tf.io.decodeWeights(ab, specs as tf.io.WeightsManifestEntry[]);
      order[group] = specs.map((s) => s.name);
    }
  } catch (e) {
    disposeWeightSets(weights);
    throw e;
  }
  const { format: _f, version, savedAt: _s, weights: _w, dSteps, adam, family, ...rest } = file;
  const state: TrainState = {
    ...rest,
    augment: rest.augment as AdaState | null,
    family: version === 1 ? { dSteps, adam } : family,
  };
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

export function disposeWeightSets(weights: Readonly<Record<string, tf.NamedTensorMap | undefined>>): void {
  for (const m of Object.values(weights)) if (m) tf.dispose(Object.values(m));
}
