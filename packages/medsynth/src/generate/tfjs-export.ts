/**
 * Exporting a run's sampling generator in TF.js layers format — the network `medsynth generate` samples from
 * (G_ema of the latest checkpoint unless told otherwise; see `tfjs-generator.ts` for what is exported per family
 * and how it is loaded back) — for the browser (`medsynth serve`) or any TF.js program.
 *
 * `exportTfjsGenerator` builds the family's network, assigns the checkpoint's weights (checked by name and
 * shape), and serialises it in memory with `tf.io.withSaveHandler`: the layers topology (custom layers by their
 * registered `medsynth>…` class names), one weight buffer and its manifest, and `generator.json`. Nothing is
 * written: the web app keeps exports in memory, so a read-only run folder works.
 * `writeTfjsGenerator` writes an export as a folder — `model.json` (topology + `weightsManifest` pointing at
 * `weights.bin`), `weights.bin`, `generator.json` — built in a hidden sibling temporary folder and renamed into
 * place, so a reader never sees half an export; an existing export is replaced only with `overwrite`.
 * `readTfjsGenerator` reads such a folder back (validated with zod).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { buildUNet } from '../models/diffusion/unet.js';
import { buildPgganGenerator, pgganConditional, type PgganSpec } from '../models/pggan.js';
import { type AdversarialSpec, buildGenerator, isConditional } from '../models/registry.js';
import { CheckpointError, ConfigError } from '../runtime/errors.js';
import { fsyncDir, withFileContext, writeFileSynced } from '../runtime/fs.js';
import {
  assignWeights,
  disposeWeightSets,
  findCheckpoint,
  loadCheckpoint,
  savedGroup,
} from '../training/checkpoint.js';
import { familyOfSpec } from '../training/families/index.js';
import type { DdpmSpec } from '../training/families/ddpm.js';
import { savedPosition } from '../training/families/pggan.js';
import {
  parseGeneratorMeta,
  TFJS_GENERATOR_FORMAT,
  TFJS_GENERATOR_VERSION,
  type TfjsFamily,
  type TfjsGeneratorMeta,
} from './tfjs-generator.js';

/** The weight file's name inside an export folder (and in `model.json`'s manifest). */
export const TFJS_WEIGHTS_FILE = 'weights.bin';

/** An export in memory: what `model.json`, `weights.bin` and `generator.json` hold. */
export interface TfjsGeneratorExport {
  readonly meta: TfjsGeneratorMeta;
  /** The layers model's topology (`model.toJSON()`). */
  readonly modelTopology: object;
  readonly weightSpecs: tf.io.WeightsManifestEntry[];
  readonly weightData: ArrayBuffer;
  readonly generatedBy: string;
}

export interface ExportOptions {
  /** A checkpoint folder name inside `<run>/checkpoints` or a path; default the latest. */
  readonly checkpoint?: string | undefined;
  /** Export G_ema (default true) or the raw G. */
  readonly ema?: boolean | undefined;
}

/** The serialised layers model: topology, weight manifest and one weight buffer. */
async function serialise(model: tfl.LayersModel) {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = artifacts;
  if (!a?.modelTopology || !a.weightSpecs || a.weightData === undefined)
    throw new Error('tfjs-layers saved no topology or weights');
  return {
    modelTopology: a.modelTopology as object,
    weightSpecs: a.weightSpecs,
    weightData: tf.io.CompositeArrayBuffer.join(a.weightData),
    generatedBy: a.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_core}`,
  };
}

/**
 * The run's sampling generator (see the module header) as a TF.js layers export in memory. Errors: a
 * `CheckpointError` naming the file when the run has no checkpoint, or a weight is missing or misshapen.
 */
export async function exportTfjsGenerator(
  runDir: string,
  options: ExportOptions = {},
): Promise<TfjsGeneratorExport> {
  const ema = options.ema !== false;
  const group = ema ? 'G_ema' : 'G';
  const dir = await findCheckpoint(resolve(runDir), options.checkpoint);
  const head = await loadCheckpoint(dir, []);
  const { spec } = familyOfSpec(head.state.spec, head.dir);
  const ckpt = await loadCheckpoint(dir, [group]);
  const where = ckpt.dir;
  try {
    const weights = savedGroup(ckpt.weights, group, where);
    const family = spec.family as TfjsFamily;
    let model: tfl.LayersModel;
    let release: () => void;
    let pggan: TfjsGeneratorMeta['pggan'] = null;
    let diffusion: TfjsGeneratorMeta['diffusion'] = null;
    let conditional: boolean;
    let truncation: 'z' | 'w' = 'z';
    if (family === 'pggan') {
      const p = spec as PgganSpec;
      const net = buildPgganGenerator(p);
      release = () => net.dispose();
      try {
        const { level, alpha } = savedPosition(weights, net.levels.length, where);
        model = net.levels[level]!;
        assignWeights(model, weights, where);
        net.setAlpha(level, alpha);
        pggan = { level, side: net.plan.sides[level]!, alpha: Math.fround(alpha) };
      } catch (e) {
        release();
        throw e;
      }
      conditional = pgganConditional(p);
    } else if (family === 'ddpm') {
      const d = spec as unknown as DdpmSpec;
      model = buildUNet(d.unet);
      release = () => model.dispose();
      diffusion = { scheduleSteps: d.scheduleSteps, sampling: { ...d.sampling } };
      conditional = d.numClasses > 1;
    } else {
      const a = spec as AdversarialSpec;
      model = buildGenerator(a);
      release = () => model.dispose();
      conditional = isConditional(a);
      truncation = a.family === 'stylegan2' ? 'w' : 'z';
    }
    try {
      if (family !== 'pggan') assignWeights(model, weights, where);
      const saved = await serialise(model);
      const meta = parseGeneratorMeta(
        {
          format: TFJS_GENERATOR_FORMAT,
          version: TFJS_GENERATOR_VERSION,
          family,
          spec: JSON.parse(JSON.stringify(spec)) as unknown,
          classNames: [...ckpt.state.classNames],
          zDim: spec.zDim,
          size: spec.size,
          channels: spec.channels,
          conditional,
          truncation,
          network: group,
          checkpoint: basename(ckpt.dir),
          step: ckpt.state.step,
          kimg: ckpt.state.nimg / 1000,
          pggan,
          diffusion,
          tfjsVersion: tf.version_core,
        },
        `export of ${where}`,
      );
      return { meta, ...saved };
    } finally {
      release();
    }
  } finally {
    disposeWeightSets(ckpt.weights);
  }
}

/** `model.json` of an export (layers format), its manifest naming `weightsPath` (default `weights.bin`). */
export function tfjsModelJson(exp: TfjsGeneratorExport, weightsPath = TFJS_WEIGHTS_FILE): tf.io.ModelJSON {
  return {
    modelTopology: exp.modelTopology,
    format: 'layers-model',
    generatedBy: exp.generatedBy,
    convertedBy: null,
    weightsManifest: [{ paths: [weightsPath], weights: exp.weightSpecs }],
  };
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

/**
 * Writes `exp` as the folder `outDir` (`model.json`, `weights.bin`, `generator.json`), atomically: into a hidden
 * temporary sibling, renamed into place. An existing `outDir` is a `ConfigError` unless `overwrite`, and then
 * only when it is an export (holds a `generator.json`): it is swapped out and deleted after the rename.
 */
export async function writeTfjsGenerator(
  exp: TfjsGeneratorExport,
  outDir: string,
  options: { readonly overwrite?: boolean | undefined } = {},
): Promise<string> {
  const out = resolve(outDir);
  const present = await exists(out);
  if (present && !options.overwrite)
    throw new ConfigError('the output folder exists (use --overwrite to replace an earlier export)', {
      field: '--out',
      found: out,
    });
  if (present && !(await exists(join(out, 'generator.json'))))
    throw new ConfigError('the output folder exists and is not a TF.js generator export: not replacing it', {
      field: '--out',
      found: out,
      expected: 'a missing folder or an earlier export (with generator.json)',
    });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${tag}`);
  const old = join(dirname(out), `.${basename(out)}.old-${tag}`);
  await withFileContext('writing the TF.js export', out, async () => {
    await mkdir(tmp, { recursive: true });
    try {
      await writeFileSynced(join(tmp, TFJS_WEIGHTS_FILE), new Uint8Array(exp.weightData));
      await writeFileSynced(join(tmp, 'model.json'), `${JSON.stringify(tfjsModelJson(exp))}\n`);
      await writeFileSynced(join(tmp, 'generator.json'), `${JSON.stringify(exp.meta, null, 2)}\n`);
      await fsyncDir(tmp);
      if (present) await rename(out, old);
      await rename(tmp, out);
      await fsyncDir(dirname(out));
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      if (present && !(await exists(out)) && (await exists(old)))
        await rename(old, out).catch(() => undefined);
      throw e;
    }
    if (present) await rm(old, { recursive: true, force: true });
  });
  return out;
}

const modelJsonSchema = z
  .object({
    modelTopology: z.record(z.string(), z.unknown()),
    format: z.string().optional(),
    generatedBy: z.string().optional(),
    weightsManifest: z
      .array(
        z.object({
          paths: z.array(z.string()),
          weights: z.array(
            z
              .object({
                name: z.string(),
                shape: z.array(z.number().int().min(0)),
                dtype: z.enum(['float32', 'int32', 'bool']),
              })
              .passthrough(),
          ),
        }),
      )
      .length(1),
  })
  .passthrough();

/** Reads an export folder written by `writeTfjsGenerator` (every part validated; errors name the file). */
export async function readTfjsGenerator(dir: string): Promise<TfjsGeneratorExport> {
  const root = resolve(dir);
  const json = async (name: string) => {
    const file = join(root, name);
    try {
      return JSON.parse(await readFile(file, 'utf8')) as unknown;
    } catch (e) {
      throw new CheckpointError(`cannot read ${name}`, { file, cause: e });
    }
  };
  let meta: TfjsGeneratorMeta;
  try {
    meta = parseGeneratorMeta(await json('generator.json'), join(root, 'generator.json'));
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError('not a medsynth TF.js generator export', {
      file: join(root, 'generator.json'),
      found: (e as Error).message,
    });
  }
  const parsed = modelJsonSchema.safeParse(await json('model.json'));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CheckpointError(`model.json is not a layers model: ${issue.message}`, {
      file: join(root, 'model.json'),
      field: issue.path.join('.'),
    });
  }
  const manifest = parsed.data.weightsManifest[0]!;
  const files = await Promise.all(manifest.paths.map((p) => readFile(join(root, basename(p)))));
  const bytes = Buffer.concat(files);
  const expected = manifest.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (bytes.byteLength !== expected)
    throw new CheckpointError('the weights have the wrong size (truncated?)', {
      file: join(root, manifest.paths[0] ?? TFJS_WEIGHTS_FILE),
      expected: `${expected} bytes`,
      found: `${bytes.byteLength}`,
    });
  return {
    meta,
    modelTopology: parsed.data.modelTopology,
    weightSpecs: manifest.weights as tf.io.WeightsManifestEntry[],
    weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    generatedBy: parsed.data.generatedBy ?? '',
  };
}

/** An IO handler that hands tfjs-layers an export held in memory (`tfl.loadLayersModel(memoryHandler(exp))`). */
export function memoryHandler(exp: TfjsGeneratorExport): tf.io.IOHandler {
  return tf.io.fromMemory({
    modelTopology: exp.modelTopology,
    weightSpecs: exp.weightSpecs,
    weightData: exp.weightData,
  });
}
