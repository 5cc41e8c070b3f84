/**
 * `projectRun`: the whole projection analysis of a training run from paths — what `medsynth project` runs.
 *
 * - Generator: the run's checkpoint (default the latest), its sampling network (G_ema). A diffusion run is
 *   refused before anything loads.
 * - Real images: the run's own dataset and split settings (`data` replaces only the source, e.g. a moved
 *   file), loaded at the run's size and channels as training loaded them. Training images are drawn from the
 *   images the run learned from (its `trainImages` / `trainClass` subset when it had one), held-out images from
 *   the test split, restricted to the run's classes. Both are stratified with the held-out split's class mix
 *   (so a class imbalance cannot pass for a memorisation effect), seeded by `seed`.
 * - Synthetic floor: `syntheticCount` images generated from seeds 0, 1, 2… (spread over classes like the real
 *   sets), exactly as `medsynth generate` would make them.
 * - Perceptual term: the domain extractor (trained on the run's train split and cached, as `evaluate` does)
 *   unless `features: 'none'`.
 */
import type { DataOptionsInput } from '../config/data-options.js';
import { DataOptionsSchema, resolveOptions } from '../config/data-options.js';
import type { Split } from '../data/dataset.js';
import { openDataset } from '../data/source.js';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { loadGenerator } from '../training/load-run.js';
import { readRunOptions } from '../training/loop.js';
import { evaluationCacheDir } from './features/cache.js';
import { domainExtractor, type DomainExtractorInput } from './features/domain.js';
import type { FeatureExtractor } from './features/types.js';
import {
  analyseProjection,
  latentSpaceOf,
  type ProjectionAnalysis,
  type ProjectionAnalysisOptionsInput,
  projectionFeatures,
  type ProjectionSetInput,
  type ProjectionSetName,
  resolveProjectionAnalysisOptions,
  stratifiedSample,
} from './projection.js';
import type { ProjectionMeta } from './projection-files.js';
import { proportionalCounts } from './quota.js';
import { generateFromRun } from './sources.js';

export const PROJECTION_SPLITS = ['train', 'test', 'both'] as const;
export type ProjectionSplit = (typeof PROJECTION_SPLITS)[number];

export interface ProjectRunOptions extends RunControl {
  /** The run directory. */
  readonly run: string;
  /** Another source for the run's dataset (the run's split settings are kept). */
  readonly data?: string | undefined;
  /** Which real images to project (default both: the two-sample test needs both). */
  readonly split?: ProjectionSplit | undefined;
  /** A checkpoint in `<run>/checkpoints` (or a path); default the latest. */
  readonly checkpoint?: string | undefined;
  /** `domain` (default) or `none` (pixel + multi-scale pixel loss). */
  readonly features?: 'domain' | 'none' | undefined;
  readonly domain?: DomainExtractorInput | undefined;
  /** Cache root (default `$MEDSYNTH_CACHE` or ~/.cache/medsynth). */
  readonly cacheDir?: string | undefined;
  /** Projection and analysis options (count, steps, restarts, seed, alpha…). */
  readonly projection?: ProjectionAnalysisOptionsInput | undefined;
}

export interface ProjectRunResult {
  readonly analysis: ProjectionAnalysis;
  readonly meta: ProjectionMeta;
}

/** A split's positions whose class the generator makes, and their generator labels (null: unconditional). */
interface Eligible {
  readonly split: Split;
  readonly positions: Int32Array;
  /** Dataset class of each eligible position. */
  readonly classes: Int32Array;
}

function eligible(
  split: Split,
  keep: (position: number) => boolean,
  classOk: (c: number) => boolean,
): Eligible {
  const positions: number[] = [];
  const classes: number[] = [];
  for (let i = 0; i < split.size; i++) {
    const c = split.labels[i]!;
    if (!classOk(c) || !keep(i)) continue;
    positions.push(i);
    classes.push(c);
  }
  return { split, positions: Int32Array.from(positions), classes: Int32Array.from(classes) };
}

/** Runs the analysis (see the module comment). The caller writes the files (`writeProjection`). */
export async function projectRun(o: ProjectRunOptions): Promise<ProjectRunResult> {
  const control: RunControl = { onProgress: o.onProgress, signal: o.signal };
  const options = resolveProjectionAnalysisOptions(o.projection ?? {});
  const split = o.split ?? 'both';
  const runOptions = await readRunOptions(o.run);
  if (runOptions.model === 'ddpm')
    throw new ConfigError(
      'latent projection is not defined for diffusion models (ddpm): their images come from an iterative denoising chain, not a latent a generator maps in one pass; project a GAN run (dcgan, cgan, acgan, stylegan2, pggan)',
      { field: '--run', file: o.run, expected: 'a GAN run', found: 'ddpm' },
    );
  const { generator, run } = await loadGenerator(o.run, { checkpoint: o.checkpoint });
  let extractor: FeatureExtractor | null = null;
  try {
    latentSpaceOf(generator);
    const dataInput: DataOptionsInput = {
      ...(runOptions.data as DataOptionsInput),
      ...(o.data !== undefined ? { source: o.data } : {}),
      ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
    };
    const data = resolveOptions(DataOptionsSchema, dataInput, '--data');
    const ds = await openDataset(data, control);
    const { spec } = run;
    // Generator class k ↔ dataset class dsClass[k].
    const dsClass = generator.classNames.map((name) => ds.classNames.indexOf(name));
    const missing = generator.classNames.filter((_, k) => dsClass[k]! < 0);
    if (missing.length > 0)
      throw new DatasetError("the run's classes are not in the dataset", {
        file: ds.location,
        expected: `classes ${generator.classNames.join(', ')}`,
        found: ds.classNames.join(', '),
      });
    const single = runOptions.trainClass !== null;
    const classOk = (c: number) => !single || dsClass.includes(c);
    const genLabel = new Map(dsClass.map((c, k) => [c, k]));
    const trainSplit = ds.split('train');
    let keepTrain: (i: number) => boolean = () => true;
    if (runOptions.trainImages !== null) {
      const ids = new Set(runOptions.trainImages);
      keepTrain = (i) => ids.has(trainSplit.id(i));
    }
    const want = (name: 'train' | 'test') => split === 'both' || split === name;
    const train = want('train') ? eligible(trainSplit, keepTrain, classOk) : null;
    const test = want('test') ? eligible(ds.split('test'), () => true, classOk) : null;
    for (const [name, e] of [
      ['train', train],
      ['test', test],
    ] as const)
      if (e && e.positions.length === 0)
        throw new DatasetError(`no ${name} images of the run's classes to project`, {
          file: ds.location,
          field: `${name} split`,
        });
    // Both real sets (and the synthetic one) follow the held-out class mix.
    const K = ds.classNames.length;
    const mixOf = (e: Eligible) => {
      const w = new Array<number>(K).fill(0);
      for (const c of e.classes) w[c]!++;
      return w;
    };
    const weights = mixOf(test ?? train!);
    const sets: Partial<Record<ProjectionSetName, ProjectionSetInput>> = {};
    const load = { size: [spec.size, spec.size] as const, channels: spec.channels, bitDepth: 8 as const };
    for (const [name, e] of [
      ['train', train],
      ['holdout', test],
    ] as const) {
      if (!e) continue;
      const picked = stratifiedSample(e.classes, e.positions.length, options.count, options.seed, weights);
      const positions = Array.from(picked, (j) => e.positions[j]!);
      const view = e.split.subset(positions);
      const images = await view.load({ ...load, ...control });
      sets[name] = {
        images,
        labels: generator.conditional
          ? Int32Array.from(positions, (p) => genLabel.get(e.split.labels[p]!)!)
          : null,
        ids: positions.map((p) => e.split.id(p)),
      };
    }
    const syntheticCount = options.syntheticCount ?? options.count;
    if (syntheticCount > 0) {
      const perClass = generator.conditional
        ? proportionalCounts(
            syntheticCount,
            dsClass.map((c) => weights[c]!),
          )
        : [syntheticCount];
      const made = await generateFromRun(generator, perClass, undefined, control);
      sets.synthetic = {
        images: made.images,
        labels: made.labels,
        ids: Array.from({ length: made.images.count }, (_, i) => `seed ${i}`),
      };
    }
    let featuresNote: string | null = null;
    let features = null;
    if ((o.features ?? 'domain') === 'domain') {
      extractor = await domainExtractor(
        ds,
        [spec.size, spec.size, spec.channels],
        evaluationCacheDir(o.cacheDir),
        o.domain ?? {},
        control,
      );
      const f = projectionFeatures(extractor, generator);
      features = f.features;
      featuresNote = f.note;
    } else {
      featuresNote = 'features: none (pixel + multi-scale pixel loss)';
    }
    const analysis = await analyseProjection(generator, sets, options, { ...control, features });
    return {
      analysis,
      meta: {
        run: {
          dir: run.dir,
          checkpoint: run.checkpoint,
          step: run.step,
          kimg: run.kimg,
          family: spec.family,
          network: run.network,
        },
        data: {
          source: ds.location,
          classNames: [...generator.classNames],
          trainSplit: train ? train.positions.length : null,
          holdoutSplit: test ? test.positions.length : null,
        },
        featuresNote,
        classNames: generator.classNames,
      },
    };
  } finally {
    extractor?.dispose();
    generator.dispose();
  }
}
