/**
 * The study's generators: which trained models the grid needs, training (or resuming) each inside the
 * study directory, and loading each as one sampling generator.
 *
 * A *generator instance* is (generator entry, generator seed g, scope): scope `all` is the study's real
 * train split; scope `limited f` is the stratified f subset chosen by g — the very subset the
 * `limited:f` and `limited:f+synthetic` classifiers of generator seed g train on, so a limited top-up
 * carries nothing its subset does not have. An instance is one run, or with `perClassModels` one
 * unconditional run per class trained on that class's images of the scope. Runs live in
 *   generators/<name>/seed-<g>/<all | limited-10pct>/[class-<k>/]<numbered run>/
 * and record the ids of the images they saw (`run.json` `data.imageIds`).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { resolveTrainOptions, type TrainOptionsInput, trainPresetForSize } from '../config/train-options.js';
import { perClassGenerator } from '../generate/per-class.js';
import type { SamplingGenerator } from '../models/types.js';
import { StudyError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { loadGenerator, type RunInfo } from '../training/load-run.js';
import { resumeGan, trainGan } from '../training/loop.js';
import type { GeneratorEntry, StudyConfig } from './config.js';

export interface GeneratorInstance {
  /** `<name>/seed-<g>/<all | limited-10pct>`: its folder under `generators/` and its key in metadata. */
  readonly key: string;
  readonly entry: GeneratorEntry;
  readonly seed: number;
  /** The limited fraction it trains on, or null for the whole train split. */
  readonly fraction: number | null;
}

const pctTag = (f: number) => `limited-${Number((f * 100).toPrecision(6))}pct`;

export function generatorInstance(
  entry: GeneratorEntry,
  seed: number,
  fraction: number | null,
): GeneratorInstance {
  return {
    key: `${entry.name}/seed-${seed}/${fraction === null ? 'all' : pctTag(fraction)}`,
    entry,
    seed,
    fraction,
  };
}

/** What a generator instance trains on: the study's image ids (null = the whole train split), its classes. */
export interface InstanceData {
  readonly trainImages: readonly string[] | null;
  readonly classNames: readonly string[];
  /** 1 or 3: the channels the study resolved from its real train split (every generator makes those). */
  readonly channels: 1 | 3;
}

const ResultSchema = z.object({ stoppedBy: z.string().optional() }).passthrough();

/** The finished run in `folder` (trained, resumed or reused); a new one when there is none. */
async function trainedRun(folder: string, options: TrainOptionsInput, control: RunControl): Promise<string> {
  await mkdir(folder, { recursive: true });
  const runs = (await readdir(folder)).filter((n) => /^\d{5,}-/.test(n)).sort();
  const existing = runs.length > 0 ? join(folder, runs[runs.length - 1]!) : undefined;
  if (existing) {
    const result = join(existing, 'result.json');
    if (existsSync(result)) {
      let parsed: z.infer<typeof ResultSchema>;
      try {
        parsed = ResultSchema.parse(JSON.parse(await readFile(result, 'utf8')));
      } catch (e) {
        throw new StudyError(`unreadable result of a generator run: ${(e as Error).message}`, {
          file: result,
        });
      }
      if (parsed.stoppedBy !== 'aborted') return existing;
    }
    const ckpts = join(existing, 'checkpoints');
    if (existsSync(ckpts) && (await readdir(ckpts)).length > 0) {
      control.onProgress?.({ type: 'phase', phase: 'generator', detail: `resuming ${existing}` });
      const r = await resumeGan(existing, {}, control);
      if (r.stoppedBy === 'aborted') control.signal?.throwIfAborted();
      return existing;
    }
    await rm(existing, { recursive: true, force: true });
  }
  const r = await trainGan(resolveTrainOptions(options), control);
  if (r.stoppedBy === 'aborted') control.signal?.throwIfAborted();
  return r.runDir;
}

/** The training options of an instance's run (of class `trainClass` for per-class models). */
function trainOptions(
  instance: GeneratorInstance,
  config: StudyConfig,
  data: InstanceData,
  folder: string,
  trainClass: string | null,
): TrainOptionsInput {
  const train = instance.entry.train as Partial<TrainOptionsInput>;
  return {
    ...train,
    // Without a named preset, the one made for the study's image size and family (ADA and R1 from 64 px up
    // for the GANs; ddpm-28 / ddpm-64 for the diffusion model).
    preset: train.preset ?? trainPresetForSize(config.size, train.model),
    data: config.data,
    size: config.size,
    channels: data.channels,
    seed: (train.seed ?? 0) + instance.seed,
    trainImages: data.trainImages === null ? null : [...data.trainImages],
    trainClass,
    outDir: folder,
  } as TrainOptionsInput;
}

/** The run directories of an instance: trained now, resumed, or found finished (one per class with perClassModels). */
export async function instanceRuns(
  studyDir: string,
  instance: GeneratorInstance,
  config: StudyConfig,
  data: InstanceData,
  control: RunControl,
): Promise<string[]> {
  if (instance.entry.run !== undefined) return [resolve(instance.entry.run)];
  const folder = join(studyDir, 'generators', instance.key);
  control.onProgress?.({ type: 'phase', phase: 'generator', detail: instance.key });
  if (!instance.entry.perClassModels)
    return [await trainedRun(folder, trainOptions(instance, config, data, folder, null), control)];
  const runs: string[] = [];
  for (const [k, name] of data.classNames.entries()) {
    const sub = join(folder, `class-${k}`);
    control.onProgress?.({ type: 'phase', phase: 'generator', detail: `${instance.key} class ${name}` });
    runs.push(await trainedRun(sub, trainOptions(instance, config, data, sub, name), control));
  }
  return runs;
}

export interface LoadedInstance {
  readonly generator: SamplingGenerator;
  readonly runs: readonly RunInfo[];
}

/** The instance's runs as one class-conditional sampling generator (per-class models routed by label). */
export async function loadInstance(
  instance: GeneratorInstance,
  runDirs: readonly string[],
  classNames: readonly string[],
): Promise<LoadedInstance> {
  const options = { checkpoint: instance.entry.checkpoint, sampling: instance.entry.sampling };
  if (!instance.entry.perClassModels) {
    const { generator, run } = await loadGenerator(runDirs[0]!, options);
    return { generator, runs: [run] };
  }
  const loaded: { generator: SamplingGenerator; run: RunInfo }[] = [];
  try {
    for (const dir of runDirs) loaded.push(await loadGenerator(dir, options));
    loaded.forEach(({ run }, k) => {
      if (run.classNames.length !== 1 || run.classNames[0] !== classNames[k])
        throw new StudyError(`a per-class model was not trained on class ${classNames[k]} alone`, {
          file: run.dir,
          expected: classNames[k] ?? '',
          found: run.classNames.join(', '),
        });
    });
    return {
      generator: perClassGenerator(
        loaded.map((l) => l.generator),
        classNames,
      ),
      runs: loaded.map((l) => l.run),
    };
  } catch (e) {
    for (const l of loaded) l.generator.dispose();
    throw e;
  }
}
