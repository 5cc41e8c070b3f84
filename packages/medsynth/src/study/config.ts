/**
 * Study configuration: one zod schema, presets (`quick`, `paper`, `tiny`), and the file forms (YAML or
 * JSON). Resolved once at the boundary (`resolveStudyConfig`); the runner and the study directory's
 * `study.json` keep the resolved, frozen object.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DataOptionsSchema, resolveOptions } from '../config/data-options.js';
import { METRIC_NAMES } from '../metrics/registry.js';
import { ConfigError } from '../runtime/errors.js';
import { conditionName, parseCondition, type Condition } from './conditions.js';

const SizeSchema = z.union([z.literal(28), z.literal(32), z.literal(64), z.literal(128)]);

/** A classifier in the grid: a built-in name, or a named variant of one with option overrides. */
export const ClassifierEntrySchema = z.union([
  z.string().min(1),
  z
    .object({
      /** The name in tables and job ids (letters, digits, `-`, `_`, `.`). */
      name: z.string().regex(/^[\w.-]+$/, 'letters, digits, _ . - only'),
      /** The built-in classifier it starts from (see study/classifiers.ts). */
      base: z.string().min(1),
      /** Options of the base classifier (validated by it). */
      options: z.record(z.string(), z.unknown()).default({}),
    })
    .strict(),
]);

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
     * The generator: `run` reuses a finished training run (its data must be this study's); otherwise one is
     * trained inside the study directory with these training options (see `medsynth train`). Without a
     * `preset` there, the training preset made for the study's size is used (`medmnist-28`, `small-64`, `small-128`;
     * `ddpm-28`, `ddpm-64` for `model: ddpm`).
     */
    generator: z
      .object({
        run: z.string().min(1).optional(),
        train: z.record(z.string(), z.unknown()).default({}),
        checkpoint: z.string().optional(),
        truncation: z.number().positive().max(4).optional(),
        /** Diffusion runs: the sampler for the pool and the evaluation (DDIM steps, η, guidance scale). */
        sampling: z
          .object({
            steps: z.number().int().min(1).max(1000).optional(),
            eta: z.number().min(0).max(1).optional(),
            guidance: z.number().min(0).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ train: {} }),
    /** Evaluate the synthetic images (FID, KID, PRDC, MS-SSIM, privacy) against the real ones. */
    evaluate: z
      .object({
        enabled: z.boolean().default(true),
        metrics: z
          .array(z.enum(METRIC_NAMES))
          .min(1)
          .default([...METRIC_NAMES]),
        extractor: z.string().default('domain'),
        extractorEpochs: z.number().int().min(1).optional(),
      })
      .strict()
      .default({ enabled: true, metrics: [...METRIC_NAMES], extractor: 'domain' }),
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
  });

export type StudyConfigInput = z.input<typeof StudyConfigSchema>;
export type StudyConfig = Readonly<z.output<typeof StudyConfigSchema>>;

type Preset = Omit<Partial<StudyConfigInput>, 'data'>;

/**
 * - `quick`: the one-command answer on a MedMNIST-sized set at 28 px (the README's main job): a 3-minute
 *   cGAN (with the training preset for the size), six conditions, the small CNN (≤ 8 epochs) and LBP + random forest (50 trees), 3 seeds.
 * - `paper`: the full grid: synthetic ratios 0.5/1/2, limited 10 %/25 % with and without synthetic top-up,
 *   three CNNs and two conventional classifiers, 5 seeds, a longer GAN.
 * - `tiny`: seconds-long smoke study (tests, CI): a tiny GAN, small subsets, tiny networks, one seed.
 */
export const STUDY_PRESETS: Readonly<Record<string, Preset>> = Object.freeze({
  quick: {
    size: 28,
    generator: { train: { minutes: 3 } },
    conditions: [
      'real',
      'synthetic',
      'real+synthetic:1',
      'rebalanced',
      'limited:0.1',
      'limited:0.1+synthetic',
    ],
    // Shortened so that the whole study fits in 15 minutes on 2 cores (measured 14m58s with a 15-epoch
    // feature extractor, whose training took 2 of them; 10 epochs leave a margin).
    evaluate: { enabled: true, metrics: [...METRIC_NAMES], extractor: 'domain', extractorEpochs: 10 },
    classifiers: [
      { name: 'cnn', base: 'cnn', options: { epochs: 8, patience: 3 } },
      { name: 'lbp-rf', base: 'lbp-rf', options: { nEstimators: 50 } },
    ],
    seeds: [0, 1, 2],
  },
  paper: {
    size: 28,
    generator: { train: { minutes: 30 } },
    conditions: [
      'real',
      'synthetic',
      'real+synthetic:0.5',
      'real+synthetic:1',
      'real+synthetic:2',
      'rebalanced',
      'limited:0.1',
      'limited:0.1+synthetic',
      'limited:0.25',
      'limited:0.25+synthetic',
    ],
    classifiers: ['cnn', 'resnet', 'vgg', 'lbp-rf', 'texture-lr'],
    seeds: [0, 1, 2, 3, 4],
  },
  tiny: {
    size: 28,
    maxImages: { train: 400, val: 100, test: 200 },
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
  merged['data'] = data;
  merged['preset'] = presetName;
  const config = resolveOptions(StudyConfigSchema, merged, 'study config');
  studyConditions(config); // names every bad condition now, not mid-study
  return config;
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
  if (isPlainObject(out['generator']) && 'run' in out['generator'])
    out['generator'] = { ...out['generator'], run: pathFrom(base, out['generator']['run']) };
  return out;
}
