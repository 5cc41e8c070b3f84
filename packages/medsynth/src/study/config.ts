/**
 * Study configuration: one zod schema, presets (`quick`, `paper`, `tiny`), and the file forms (YAML or
 * JSON). Resolved once at the boundary (`resolveStudyConfig`); the runner and the study directory's
 * `study.json` keep the resolved, frozen object.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DataOptionsSchema, resolveOptions } from '../config/data-options.js';
import { DEFAULT_METRIC_NAMES, METRIC_NAMES } from '../metrics/registry.js';
import { ConfigError } from '../runtime/errors.js';
import { conditionName, parseCondition, type Condition } from './conditions.js';

const SizeSchema = z.union([z.literal(28), z.literal(32), z.literal(64), z.literal(128)]);
const NAME = z.string().regex(/^[\w.-]+$/, 'letters, digits, _ . - only');

/** A classifier in the grid: a built-in name, or a named variant of one with option overrides. */
export const ClassifierEntrySchema = z.union([
  z.string().min(1),
  z
    .object({
      /** The name in tables and job ids (letters, digits, `-`, `_`, `.`). */
      name: NAME,
      /** The built-in classifier it starts from (see study/classifiers.ts). */
      base: z.string().min(1),
      /** Options of the base classifier (validated by it). */
      options: z.record(z.string(), z.unknown()).default({}),
    })
    .strict(),
]);

/** Sampler choices of a diffusion generator (DDIM steps, η, guidance scale) for its pool and evaluation. */
const SamplingSchema = z
  .object({
    steps: z.number().int().min(1).max(1000).optional(),
    eta: z.number().min(0).max(1).optional(),
    guidance: z.number().min(0).optional(),
  })
  .strict();

/**
 * A generator of the study: trained inside the study directory with `train` (the options of `medsynth
 * train`; without a `preset` the one made for the study's size and family: `medmnist-28`, `small-64`,
 * `small-128`; `ddpm-28`, `ddpm-64` for `model: ddpm`), or an existing run (`run`, whose data must be the
 * study's). `perClassModels` trains one unconditional model per class on that class's images only, and
 * samples each class from its own model.
 */
export const GeneratorEntrySchema = z
  .object({
    /** Its name in tables, job ids and folders (default: the family, `-per-class` appended, or the run's folder name). */
    name: NAME,
    run: z.string().min(1).optional(),
    train: z.record(z.string(), z.unknown()).default({}),
    perClassModels: z.boolean().default(false),
    checkpoint: z.string().optional(),
    truncation: z.number().positive().max(4).optional(),
    sampling: SamplingSchema.optional(),
  })
  .strict();
export type GeneratorEntry = Readonly<z.output<typeof GeneratorEntrySchema>>;

export const StudyConfigSchema = z
  .object({
    /** The preset the config started from (recorded for humans). */
    preset: z.string().optional(),
    /** The real dataset. Its train split trains the generator and the classifiers; val stops them early; test scores them. */
    data: DataOptionsSchema,
    /** Image side every model works at. */
    size: SizeSchema.default(28),
    channels: z.union([z.literal(1), z.literal(3), z.literal('auto')]).default('auto'),
    /** Cap images per split (stratified, seeded by data.seed) — for smoke runs; unset = all. */
    maxImages: z
      .object({
        train: z.number().int().min(2).optional(),
        val: z.number().int().min(2).optional(),
        test: z.number().int().min(2).optional(),
      })
      .strict()
      .default({}),
    /**
     * The generators compared side by side (the study's generator axis, see `GeneratorEntrySchema`); each is
     * trained inside the study directory on the real train split with the same budget, `generatorSeeds` times.
     */
    generators: z.array(GeneratorEntrySchema).min(1),
    /** How many times each generator is trained (seeds 0 … N−1 added to its training seed). */
    generatorSeeds: z.number().int().min(1).max(50).default(1),
    /**
     * Every deep classifier trains for the same number of optimiser steps in every condition: the steps of
     * its epochs over the real train split (so extra images do not simply mean a longer training); early
     * stopping is off and the best validation check of the run is kept.
     */
    equalSteps: z.boolean().default(false),
    /** Evaluate the synthetic images (FID, KID, PRDC, MS-SSIM, privacy) against the real ones. */
    evaluate: z
      .object({
        enabled: z.boolean().default(true),
        metrics: z
          .array(z.enum(METRIC_NAMES))
          .min(1)
          .default([...DEFAULT_METRIC_NAMES]),
        extractor: z.string().default('domain'),
        extractorEpochs: z.number().int().min(1).optional(),
      })
      .strict()
      .default({ enabled: true, metrics: [...DEFAULT_METRIC_NAMES], extractor: 'domain' }),
    /** Data conditions (study/conditions.ts), e.g. `real`, `synthetic`, `real+synthetic:1`, `rebalanced`, `limited:0.1+synthetic`. */
    conditions: z.array(z.string().min(1)).min(1),
    classifiers: z.array(ClassifierEntrySchema).min(1),
    /** Seeds: each job is repeated once per seed (classifier initialisation, data order, limited subsets). */
    seeds: z.array(z.number().int().min(0)).min(1),
    /** Binary tasks: the class whose recall is "sensitivity" (default the second class, e.g. `pneumonia`). */
    positiveClass: z.string().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.conditions.some((x) => x.trim() === 'real'))
      ctx.addIssue({
        code: 'custom',
        message: 'the conditions need the `real` baseline (every other condition is compared with it)',
        path: ['conditions'],
      });
    if (new Set(c.seeds).size !== c.seeds.length)
      ctx.addIssue({ code: 'custom', message: 'seeds must be distinct', path: ['seeds'] });
    const names = c.generators.map((g) => g.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i)
        ctx.addIssue({
          code: 'custom',
          message: `two generators are named ${n} (give each a distinct name)`,
          path: ['generators', i, 'name'],
        });
    });
    const limitedTopUp = c.conditions.filter((x) =>
      /^limited.*\+synthetic$/.test(x.trim().replace(/\s+/g, '')),
    );
    c.generators.forEach((g, i) => {
      const model = (g.train as { model?: unknown }).model ?? 'cgan';
      if (g.perClassModels && g.run === undefined && (model === 'cgan' || model === 'acgan'))
        ctx.addIssue({
          code: 'custom',
          message: `${g.name}: perClassModels trains one unconditional model per class; give train.model dcgan, stylegan2, pggan or ddpm (not ${String(model)})`,
          path: ['generators', i, 'train', 'model'],
        });
      if (g.run === undefined) return;
      const why = (message: string) =>
        ctx.addIssue({ code: 'custom', message, path: ['generators', i, 'run'] });
      if (limitedTopUp.length > 0)
        why(
          `${g.name} is an existing run, trained on the whole train split, so it cannot top up ${limitedTopUp.join(', ')} honestly (its images would carry what the subset does not have): let the study train it (give train options instead of run) or drop those conditions`,
        );
      if (g.perClassModels)
        why(`${g.name}: perClassModels trains its models inside the study; an existing run cannot`);
      if (c.generatorSeeds > 1)
        why(
          `${g.name} is one existing run, so it has one generator seed; generatorSeeds is ${c.generatorSeeds}`,
        );
    });
  });

/** A generator as a config gives it: a family name (`cgan`), or an entry whose `name` may be left out. */
export type GeneratorInput =
  string | (Omit<z.input<typeof GeneratorEntrySchema>, 'name'> & { name?: string });

/**
 * A study config as written: `generators` (the axis) and/or `generator` (settings shared by every generator,
 * e.g. `generator.train.minutes`; with `run`, the one generator is that run), both optional.
 */
export type StudyConfigInput = Omit<z.input<typeof StudyConfigSchema>, 'generators'> & {
  generators?: GeneratorInput[];
  generator?: Omit<z.input<typeof GeneratorEntrySchema>, 'name'>;
};
export type StudyConfig = Readonly<z.output<typeof StudyConfigSchema>>;

type Preset = Omit<Partial<StudyConfigInput>, 'data'>;

const SMALL_CNN = { name: 'cnn', base: 'cnn', options: { epochs: 8, patience: 3 } } as const;
const RESNET = { name: 'resnet', base: 'resnet', options: { epochs: 8, patience: 3 } } as const;

/** The research designs the presets mirror, as condition lists. */
const REPLACEMENT = ['real', 'synthetic'];
const AUGMENTATION = [
  'real:noaug',
  'real',
  'real+synthetic:0.5',
  'real+synthetic:1',
  'real+synthetic:2',
  'real+shuffled-synthetic:1',
  'rebalanced',
  'oversampled',
  'rebalanced+shuffled',
];
const LIMITED = [0.05, 0.1, 0.25].flatMap((f) => [
  `limited:${f}:noaug`,
  `limited:${f}`,
  `limited:${f}+synthetic`,
]);

/**
 * - `quick`: the one-command answer on a MedMNIST-sized set at 28 px (the README's main job): a cGAN on
 *   the whole train split and one on the 10 % subset (2 minutes each, the training preset for the size), six
 *   conditions, the small CNN (≤ 8 epochs) and LBP + random forest (50 trees), 3 seeds.
 * - `replacement` (the pneumonia study: can synthetic images replace real ones?): four generator families
 *   side by side (cgan, stylegan2, pggan, ddpm; 15 minutes each), real vs synthetic-only, two deep and two
 *   conventional classifiers, 3 seeds, quality against downstream effect.
 * - `augmentation` (the augmentation study): no augmentation vs classic vs classic + synthetic at ratios
 *   0.5 / 1 / 2, rebalancing, and the controls (oversampled, shuffled labels); per-class F1; 3 seeds.
 * - `limited-data`: 5 / 10 / 25 % of the real images, without augmentation, with classic augmentation and
 *   with a synthetic top-up from a generator trained on that subset only; sensitivity and specificity.
 * - `paper`: all three designs with four generator families, 2 generator seeds, 3 classifier seeds.
 * - `tiny`: seconds-long smoke study (tests, CI): a tiny GAN, small subsets, tiny networks, one seed.
 *
 * `medsynth study --dry-run` prints each one's job count and expected run time on this machine's cores.
 */
export const STUDY_PRESETS: Readonly<Record<string, Preset>> = Object.freeze({
  quick: {
    size: 28,
    generators: ['cgan'],
    generator: { train: { minutes: 2 } },
    conditions: [
      'real',
      'synthetic',
      'real+synthetic:1',
      'rebalanced',
      'limited:0.1',
      'limited:0.1+synthetic',
    ],
    // A 10-epoch feature extractor (of 15 by default) keeps the study inside 15 minutes on 2 cores.
    evaluate: { enabled: true, metrics: [...DEFAULT_METRIC_NAMES], extractor: 'domain', extractorEpochs: 10 },
    classifiers: [SMALL_CNN, { name: 'lbp-rf', base: 'lbp-rf', options: { nEstimators: 50 } }],
    seeds: [0, 1, 2],
  },
  replacement: {
    size: 28,
    generators: ['cgan', 'stylegan2', 'pggan', 'ddpm'],
    generator: { train: { minutes: 15 } },
    conditions: REPLACEMENT,
    classifiers: [SMALL_CNN, RESNET, 'lbp-rf', 'texture-lr'],
    seeds: [0, 1, 2],
  },
  augmentation: {
    size: 28,
    generators: ['cgan'],
    generator: { train: { minutes: 15 } },
    conditions: AUGMENTATION,
    classifiers: [SMALL_CNN, RESNET],
    seeds: [0, 1, 2],
  },
  'limited-data': {
    size: 28,
    generators: ['cgan'],
    generator: { train: { minutes: 10 } },
    generatorSeeds: 2,
    conditions: ['real:noaug', 'real', ...LIMITED],
    classifiers: [SMALL_CNN, 'lbp-rf'],
    seeds: [0, 1, 2],
  },
  paper: {
    size: 28,
    generators: ['cgan', 'stylegan2', 'pggan', 'ddpm'],
    generator: { train: { minutes: 15 } },
    generatorSeeds: 2,
    conditions: [...new Set([...REPLACEMENT, ...AUGMENTATION, ...LIMITED])],
    classifiers: [SMALL_CNN, RESNET, 'lbp-rf', 'texture-lr'],
    seeds: [0, 1, 2],
  },
  tiny: {
    size: 28,
    maxImages: { train: 400, val: 100, test: 200 },
    generators: ['cgan'],
    generator: { train: { preset: 'tiny', kimg: 0.5 } },
    evaluate: { enabled: true, metrics: ['fid', 'prdc', 'privacy'], extractor: 'domain', extractorEpochs: 2 },
    conditions: ['real', 'synthetic', 'real+synthetic:1', 'limited:0.25+synthetic'],
    classifiers: [
      { name: 'cnn', base: 'cnn', options: { epochs: 8, width: 8 } },
      { name: 'lbp-rf', base: 'lbp-rf', options: { nEstimators: 20 } },
    ],
    seeds: [0],
  },
});

export const DEFAULT_STUDY_PRESET = 'quick';

/** Preset (default `quick`) → user's values (nested objects merged key by key; `data` is the user's) → validation → frozen. */
export function resolveStudyConfig(
  input: Partial<StudyConfigInput> & { data: StudyConfigInput['data'] },
): StudyConfig {
  const presetName = input.preset ?? DEFAULT_STUDY_PRESET;
  const preset = STUDY_PRESETS[presetName];
  if (!preset)
    throw new ConfigError(`unknown study preset "${presetName}"`, {
      field: 'preset',
      expected: Object.keys(STUDY_PRESETS).join(', '),
    });
  const { data, ...rest } = input;
  const merged = mergeDeep(preset as Record<string, unknown>, rest);
  // A `generator` of the user's that names what to train (a model, a run, per-class models) is the whole
  // axis unless the user also lists `generators`; otherwise it holds settings shared by every generator.
  const own = isPlainObject(rest.generator) ? rest.generator : null;
  const names =
    own !== null &&
    (own['run'] !== undefined ||
      own['perClassModels'] !== undefined ||
      (isPlainObject(own['train']) && own['train']['model'] !== undefined));
  if (names && rest.generators === undefined) merged['generators'] = [{}];
  merged['generators'] = generatorEntries(merged['generators'], merged['generator']);
  delete merged['generator'];
  merged['data'] = data;
  merged['preset'] = presetName;
  const config = resolveOptions(StudyConfigSchema, merged, 'study config');
  studyConditions(config); // names every bad condition now, not mid-study
  return config;
}

/**
 * The generator axis with its shared settings laid under each entry: `generator` (shared) first, then the
 * entry's own values; a shared `run` makes that run the only generator. Entries without a name get the
 * family's (`cgan`, `ddpm-per-class`) or the run folder's name. Validation happens afterwards.
 */
function generatorEntries(list: unknown, shared: unknown): unknown {
  const common = isPlainObject(shared) ? shared : {};
  const { run, ...rest } = common;
  const entries: unknown[] = run !== undefined ? [{ run }] : Array.isArray(list) ? list : [{}];
  return entries.map((e) => {
    const entry: Record<string, unknown> =
      typeof e === 'string' ? { train: { model: e } } : isPlainObject(e) ? e : { name: e };
    const out = mergeDeep(rest, entry);
    if (out['name'] === undefined) {
      const train = isPlainObject(out['train']) ? out['train'] : {};
      out['name'] =
        typeof out['run'] === 'string'
          ? basename(out['run'].replace(/[/\\]+$/, '')).replace(/[^\w.-]+/g, '_')
          : `${typeof train['model'] === 'string' ? train['model'] : 'cgan'}${out['perClassModels'] === true ? '-per-class' : ''}`;
    }
    return out;
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `over` laid on `base`: nested objects merge key by key (so `generator.train.minutes` keeps the preset's
 * other GAN options), arrays and other values replace, `undefined` leaves the base value.
 */
function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? mergeDeep(b, v) : v;
  }
  return out;
}

/** The parsed conditions of a config, in order, with their names (duplicates refused). */
export function studyConditions(config: StudyConfig): { name: string; condition: Condition }[] {
  const out = config.conditions.map((text, i) => {
    const condition = parseCondition(text, `conditions.${i}`);
    return { name: conditionName(condition), condition };
  });
  const seen = new Set<string>();
  for (const { name } of out) {
    if (seen.has(name)) throw new ConfigError(`condition ${name} is listed twice`, { field: 'conditions' });
    seen.add(name);
  }
  return out;
}

/**
 * Reads a study config file (`.yaml`/`.yml` or `.json`); the result still needs `resolveStudyConfig`.
 * Relative paths in it (`data.source`, `data.labelsCsv`, `data.cacheDir`, `generator.run`) are taken from
 * the file's folder, so a config works from any working directory; `medmnist:` sources are left alone.
 */
export async function readStudyConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read the study config: ${(e as Error).message}`, { file });
  }
  let value: unknown;
  try {
    value = ['.yaml', '.yml'].includes(extname(file).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      `not valid ${extname(file) === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
      {
        file,
      },
    );
  }
  if (!isPlainObject(value))
    throw new ConfigError('a study config is a mapping of fields', { file, found: typeof value });
  return withPathsFrom(dirname(resolve(file)), value);
}

/** A path in a config file, made absolute against `base`; sources with a scheme (`medmnist:…`) unchanged. */
function pathFrom(base: string, v: unknown): unknown {
  if (typeof v !== 'string' || v.length === 0 || isAbsolute(v) || /^[a-z][\w+.-]+:/i.test(v)) return v;
  return resolve(base, v);
}

function withPathsFrom(base: string, config: Record<string, unknown>): Record<string, unknown> {
  const out = { ...config };
  if (isPlainObject(out['data'])) {
    const data = { ...out['data'] };
    for (const k of ['source', 'labelsCsv', 'cacheDir']) if (k in data) data[k] = pathFrom(base, data[k]);
    out['data'] = data;
  }
  const withRun = (g: unknown) =>
    isPlainObject(g) && 'run' in g ? { ...g, run: pathFrom(base, g['run']) } : g;
  if (out['generator'] !== undefined) out['generator'] = withRun(out['generator']);
  if (Array.isArray(out['generators'])) out['generators'] = out['generators'].map(withRun);
  return out;
}
