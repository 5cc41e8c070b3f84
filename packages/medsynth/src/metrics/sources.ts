/**
 * `evaluateSources`: the whole evaluation from paths — what `medsynth evaluate` runs.
 * - Real images: a dataset (`real`); the reference is its `train` split (what a generator learns from),
 *   the held-out set its `test` split (both configurable).
 * - Synthetic images: a training run directory (images are generated from its latest checkpoint: by
 *   default as many per class as the held-out split has, so the floor comparison uses the same N), or a
 *   saved synthetic set / any dataset source (every image, labels matched to the real classes by name;
 *   a medsynth manifest, when present, gives each image's class).
 * - Size: everything is compared at the synthetic images' size (the run's, or the set's first image's) unless
 *   `size` says otherwise; real images are resampled on loading (lanczos3), which is also how a run's
 *   training images were made.
 * - Channels: `1` or `3` converts real and synthetic images to that count. `auto` (the default) takes a run's
 *   channels (what its generator makes; the real images are converted to them, as they were for training).
 *   Against a set on disk, both sides are loaded with the data layer's `auto` rule (`Split.load`: 1 for grey
 *   content, RGB files with equal channels included; 3 when any image has colour), and when one side has
 *   colour and the other not, the grey side is replicated to RGB (a `warning` says so). A run asked for other
 *   channels than it makes is a `ConfigError`.
 */
import { access, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { resolveOptions } from '../config/data-options.js';
import { DataOptionsSchema, type DataOptionsInput } from '../config/data-options.js';
import { type ChannelsOption, type Dataset, Split } from '../data/dataset.js';
import { convertImagesChannels } from '../data/image/transform.js';
import { openDataset } from '../data/source.js';
import type { ImageArray, SplitName } from '../data/types.js';
import { makePlan } from '../generate/plan.js';
import { generateImages } from '../generate/sample.js';
import { readManifest } from '../generate/export.js';
import type { SamplingGenerator } from '../models/types.js';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { refuseSamplerSettings, type SamplerSettings } from '../training/family.js';
import { loadGenerator } from '../training/load-run.js';
import { readRunOptions } from '../training/loop.js';
import { proportionalCounts } from './quota.js';
import { cachedFeatures, evaluationCacheDir, splitKey } from './features/cache.js';
import { domainExtractor, type DomainExtractorInput } from './features/domain.js';
import { loadInceptionExtractor } from './features/inception.js';
import type { FeatureExtractor } from './features/types.js';
import { evaluateSets, type EvaluationOptions, type EvaluationResult, type LabelledSet } from './evaluate.js';

export { proportionalCounts };

export interface EvaluateSourcesOptions extends EvaluationOptions {
  /** The real dataset; optional when `fake` is a run directory (its training data is used). */
  readonly real?: DataOptionsInput | string | undefined;
  /** A run directory, a synthetic set (folder or .npz) or any dataset source; with `generator`, its label. */
  readonly fake: string;
  /**
   * Generate the synthetic images from this generator (already loaded; the caller owns and disposes it)
   * instead of loading `fake`: e.g. a study's per-class models behind one conditional interface.
   */
  readonly generator?: { readonly generator: SamplingGenerator; readonly detail: string } | undefined;
  /** Real reference split (default `train`). */
  readonly realSplit?: SplitName | undefined;
  /** Held-out real split for privacy and the floor (default `test`; `none` to skip). */
  readonly holdoutSplit?: SplitName | 'none' | undefined;
  readonly size?: number | undefined;
  /** 1, 3 or `auto` (default; see the module comment). */
  readonly channels?: ChannelsOption | undefined;
  /** Synthetic images to generate from a run, in total, spread over classes like the held-out split. */
  readonly fakeCount?: number | undefined;
  /** Run checkpoint (default the latest) and truncation ψ for generated images. */
  readonly checkpoint?: string | undefined;
  readonly truncation?: number | undefined;
  /** Sampler choices for a diffusion run (steps, η, guidance); a GAN run refuses them by flag. */
  readonly sampling?: SamplerSettings | undefined;
  /** Treat the synthetic images as unlabelled (overall metrics only). */
  readonly unlabelledFake?: boolean | undefined;
  /** `domain` (default) or `inception:<path>`. */
  readonly extractor?: string | undefined;
  readonly domain?: DomainExtractorInput | undefined;
  /** Cache root (default `$MEDSYNTH_CACHE` or ~/.cache/medsynth). */
  readonly cacheDir?: string | undefined;
}

export interface SourceEvaluation {
  readonly result: EvaluationResult;
  readonly classNames: readonly string[];
  readonly extractor: FeatureExtractor['info'];
  readonly real: {
    readonly source: string;
    readonly split: SplitName;
    readonly count: number;
    readonly classCounts: number[];
  };
  readonly holdout: {
    readonly split: SplitName;
    readonly count: number;
    readonly classCounts: number[];
  } | null;
  readonly fake: {
    readonly source: string;
    readonly kind: 'run' | 'set';
    readonly count: number;
    readonly classCounts: number[] | null;
    readonly detail: string;
  };
  readonly shape: readonly [number, number, 1 | 3];
  /** The loaded images, for pictures (grids, closest pairs). */
  readonly images: {
    readonly real: LabelledSet;
    readonly fake: LabelledSet;
    readonly holdout: LabelledSet | null;
  };
  readonly featureCache: { readonly real: boolean; readonly holdout: boolean | null };
  /** Wall time of the whole evaluation: loading, generating, the extractor (training or cache) and metrics. */
  readonly seconds: number;
}

async function isRunDir(path: string): Promise<boolean> {
  try {
    await access(join(path, 'options.json'));
    return (await stat(join(path, 'checkpoints'))).isDirectory();
  } catch {
    return false;
  }
}

function counts(labels: Int32Array | null, k: number): number[] | null {
  if (!labels) return null;
  const c = new Array<number>(k).fill(0);
  for (const l of labels) c[l]!++;
  return c;
}

/** Images generated from a run: class by class, `perClass[k]` of class k (seeds 0, 1, 2… in plan order). */
export async function generateFromRun(
  generator: SamplingGenerator,
  perClass: readonly number[],
  truncation: number | undefined,
  control: RunControl,
): Promise<LabelledSet> {
  const unconditional = !generator.conditional;
  const g: SamplingGenerator = unconditional
    ? { ...generator, numClasses: 1, classNames: ['all'] }
    : generator;
  const total = perClass.reduce((a, b) => a + b, 0);
  const plan = makePlan(
    unconditional
      ? { kind: 'per-class', count: total }
      : { kind: 'counts', counts: generator.classNames.map((key, k) => ({ key, count: perClass[k]! })) },
    g.classNames,
  );
  const chunks: ImageArray[] = [];
  const labels: number[] = [];
  for await (const batch of generateImages(g, plan, { ...control, truncation, phase: 'generate' })) {
    chunks.push(batch.images);
    labels.push(...batch.labels);
  }
  const first = chunks[0]!;
  const per = first.height * first.width * first.channels;
  const data = new Uint8Array(total * per);
  let at = 0;
  for (const c of chunks) {
    data.set(c.data as Uint8Array, at);
    at += c.data.length;
  }
  return {
    images: { ...first, data, count: total },
    labels: unconditional ? null : Int32Array.from(labels),
  };
}

/** Maps a synthetic set's labels to the real class indices, by class name (a manifest's names when present). */
async function fakeLabels(ds: Dataset, fake: string, realNames: readonly string[]): Promise<Int32Array> {
  let names: (string | undefined)[];
  try {
    const manifest = await readManifest(fake);
    const byId = new Map(manifest.images.map((im) => [im.id, im.class]));
    names = ds.listing.samples.map((s) => byId.get(s.id));
  } catch {
    names = ds.listing.samples.map((s) => ds.classNames[s.label]);
  }
  const index = new Map(realNames.map((n, i) => [n, i]));
  const unknown = [...new Set(names.filter((n) => n === undefined || !index.has(n)))];
  if (unknown.length > 0) {
    throw new DatasetError('the synthetic images have classes the real dataset does not', {
      file: fake,
      expected: `classes among ${realNames.join(', ')}`,
      found: unknown.map(String).join(', '),
    });
  }
  return Int32Array.from(names, (n) => index.get(n!)!);
}

async function makeExtractor(
  o: EvaluateSourcesOptions,
  real: Dataset,
  shape: readonly [number, number, 1 | 3],
  cacheRoot: string,
): Promise<FeatureExtractor> {
  const spec = o.extractor ?? 'domain';
  if (spec === 'domain') return domainExtractor(real, shape, cacheRoot, o.domain ?? {}, o);
  if (spec.startsWith('inception:') && spec.length > 'inception:'.length)
    return loadInceptionExtractor(spec.slice('inception:'.length));
  throw new ConfigError('unknown feature extractor', {
    field: '--extractor',
    expected: 'domain or inception:<model folder or model.json>',
    found: spec,
  });
}

function checkGeneratorClasses(g: SamplingGenerator, classNames: readonly string[], file: string): void {
  if (g.conditional && g.classNames.join('\n') !== classNames.join('\n'))
    throw new DatasetError("the run's classes differ from the real dataset's", {
      file,
      expected: classNames.join(', '),
      found: g.classNames.join(', '),
    });
}

/** Loads, generates, extracts and evaluates (see the module comment). The caller writes the outputs. */
export async function evaluateSources(o: EvaluateSourcesOptions): Promise<SourceEvaluation> {
  const started = performance.now();
  const control: RunControl = { onProgress: o.onProgress, signal: o.signal };
  const fakePath = resolve(o.fake);
  const given = o.generator;
  const run = given !== undefined || (await isRunDir(fakePath));
  const runOptions = run && !given ? await readRunOptions(fakePath) : null;
  const realInput = o.real ?? runOptions?.data;
  if (realInput === undefined)
    throw new ConfigError('the real dataset is needed (only a run directory knows its own)', {
      field: '--real',
    });
  const realOptions = resolveOptions(
    DataOptionsSchema,
    typeof realInput === 'string' ? { source: realInput } : realInput,
    'real',
  );
  const realDs = await openDataset(
    { ...realOptions, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) },
    control,
  );
  const classNames = realDs.classNames;
  const K = classNames.length;
  const realSplitName = o.realSplit ?? 'train';
  const holdoutName = o.holdoutSplit ?? 'test';
  const realSplit = realDs.split(realSplitName);
  const holdoutSplit = holdoutName === 'none' ? null : realDs.split(holdoutName);
  if (holdoutSplit && holdoutSplit.size === 0)
    throw new DatasetError(`the ${holdoutName} split is empty`, { field: '--holdout-split' });

  // The synthetic side: from a run, or a set on disk.
  if (!run)
    refuseSamplerSettings(o.sampling, `applies to images generated from a run; ${fakePath} is an image set`);
  let fakeImages: LabelledSet;
  let fakeDs: Dataset | null = null;
  let fakeShape: [number, number, 1 | 3];
  let detail: string;
  let generator: SamplingGenerator | null = null;
  try {
    if (given) {
      fakeShape = [given.generator.size, given.generator.size, given.generator.channels];
      detail = given.detail;
      checkGeneratorClasses(given.generator, classNames, fakePath);
    } else if (run) {
      const loaded = await loadGenerator(fakePath, {
        ...(o.checkpoint ? { checkpoint: o.checkpoint } : {}),
        ...(o.sampling ? { sampling: o.sampling } : {}),
      });
      generator = loaded.generator;
      const { spec } = loaded.run;
      fakeShape = [spec.size, spec.size, spec.channels as 1 | 3];
      detail = `generated from ${loaded.run.network} of ${loaded.run.checkpoint} (step ${loaded.run.step}, ${loaded.run.kimg.toFixed(1)} kimg)`;
      checkGeneratorClasses(generator, classNames, fakePath);
    } else {
      fakeDs = await openDataset({ source: fakePath }, control);
      const first = await fakeDs.listing.read(0);
      fakeShape = [first.height, first.width, first.channels];
      detail = `${fakeDs.listing.samples.length} images from ${fakeDs.location}`;
    }
    const requested = o.channels ?? 'auto';
    const size = [o.size ?? fakeShape[0], o.size ?? fakeShape[1]] as const;
    if (
      run &&
      (size[0] !== fakeShape[0] ||
        size[1] !== fakeShape[1] ||
        (requested !== 'auto' && requested !== fakeShape[2]))
    ) {
      throw new ConfigError('--size/--channels must match the run when its images are generated', {
        field: o.size !== undefined && size[0] !== fakeShape[0] ? '--size' : '--channels',
        expected: `${fakeShape[0]} px, ${fakeShape[2]} channel(s)`,
        found: `${size[0]} px, ${requested === 'auto' ? fakeShape[2] : requested} channel(s)`,
      });
    }
    const loadAt = (channels: ChannelsOption) => ({ size, channels, ...control });

    // Real reference images (and a set's synthetic images) first: with `auto`, their content decides the
    // channels that the extractor, the held-out split and the metrics then use.
    let channels: 1 | 3 = run ? fakeShape[2] : requested === 'auto' ? 1 : requested;
    let realImages = await realSplit.load(loadAt(run ? channels : requested));
    let fakeSetImages: ImageArray | null = null;
    if (!run) {
      const ds = fakeDs!;
      const all = new Split(ds, 'synthetic', Int32Array.from(ds.listing.samples.keys()));
      fakeSetImages = await all.load(loadAt(requested));
      if (requested === 'auto') {
        channels = realImages.channels === 3 || fakeSetImages.channels === 3 ? 3 : 1;
        const grey =
          realImages.channels !== channels
            ? 'real'
            : fakeSetImages.channels !== channels
              ? 'synthetic'
              : null;
        if (grey !== null) {
          const colour = grey === 'real' ? 'synthetic' : 'real';
          o.onProgress?.({
            type: 'warning',
            message: `channels auto: 3 (the ${colour} images have colour content, the ${grey} ones are grey; the ${grey} images replicated to RGB)`,
          });
        }
        realImages = convertImagesChannels(realImages, channels);
        fakeSetImages = convertImagesChannels(fakeSetImages, channels);
      }
    }
    const shape: [number, number, 1 | 3] = [size[0], size[1], channels];
    const load = loadAt(channels);

    const cacheRoot = evaluationCacheDir(o.cacheDir);
    const extractor = await makeExtractor(o, realDs, shape, cacheRoot);
    try {
      const realSet: LabelledSet = { images: realImages, labels: Int32Array.from(realSplit.labels) };
      const holdoutSet: LabelledSet | null = holdoutSplit
        ? { images: await holdoutSplit.load(load), labels: Int32Array.from(holdoutSplit.labels) }
        : null;
      const sampler = given?.generator ?? generator;
      if (sampler) {
        const weights = (holdoutSplit ?? realSplit).classCounts();
        const total = o.fakeCount ?? (holdoutSplit ?? realSplit).size;
        fakeImages = await generateFromRun(
          sampler,
          proportionalCounts(total, weights),
          o.truncation,
          control,
        );
      } else {
        const labels = o.unlabelledFake ? null : await fakeLabels(fakeDs!, fakePath, classNames);
        fakeImages = { images: fakeSetImages!, labels };
      }
      const sizeTag = `${shape[0]}x${shape[1]}x${shape[2]}`;
      const realCached = await cachedFeatures(
        cacheRoot,
        extractor,
        `${await splitKey(realSplit)}-${realSplitName}-${sizeTag}`,
        async () => realSet.images,
        control,
      );
      const holdoutCached = holdoutSplit
        ? await cachedFeatures(
            cacheRoot,
            extractor,
            `${await splitKey(holdoutSplit)}-${holdoutName}-${sizeTag}`,
            async () => holdoutSet!.images,
            control,
          )
        : null;
      const result = await evaluateSets(
        {
          classNames,
          real: realSet,
          fake: fakeImages,
          holdout: holdoutSet ?? undefined,
          extractor,
          realFeatures: realCached.features,
          holdoutFeatures: holdoutCached?.features,
          generator: sampler,
        },
        o,
      );
      return {
        result,
        classNames,
        extractor: extractor.info,
        real: {
          source: realDs.location,
          split: realSplitName,
          count: realSplit.size,
          classCounts: realSplit.classCounts(),
        },
        holdout: holdoutSplit
          ? {
              split: holdoutName as SplitName,
              count: holdoutSplit.size,
              classCounts: holdoutSplit.classCounts(),
            }
          : null,
        fake: {
          source: fakePath,
          kind: run ? 'run' : 'set',
          count: fakeImages.images.count,
          classCounts: counts(fakeImages.labels, K),
          detail,
        },
        shape,
        images: { real: realSet, fake: fakeImages, holdout: holdoutSet },
        featureCache: { real: realCached.cached, holdout: holdoutCached?.cached ?? null },
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      extractor.dispose();
    }
  } finally {
    generator?.dispose();
  }
}
