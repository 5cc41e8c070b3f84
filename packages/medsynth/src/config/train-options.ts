/**
 * GAN training options: one zod schema, named presets for small medical sets, and `resolveTrainOptions`
 * (preset → user overrides → validation → frozen object). The loop takes only the resolved object; the run
 * directory keeps it as `options.json`, and `--resume` reads it back from there.
 */
import { z } from 'zod';
import { ConfigError } from '../runtime/errors.js';
import { DataOptionsSchema, resolveOptions } from './data-options.js';

const MODELS = ['dcgan', 'cgan', 'acgan', 'stylegan2', 'pggan', 'ddpm'] as const;
const SIZES = [28, 32, 64, 128] as const;
const LOSSES = ['nonsaturating', 'hinge', 'wgan'] as const;
const AUGMENTS = ['none', 'diffaugment', 'ada'] as const;
const AUGMENT_OPS = ['translation', 'cutout', 'color'] as const;

const positive = z.number().positive();
const nonNegative = z.number().min(0);

export const TrainOptionsSchema = z
  .object({
    /** Where the images come from (the train split is used; val/test are never seen by the GAN). */
    data: DataOptionsSchema,
    /** The preset the options started from (recorded for humans). */
    preset: z.string().optional(),
    model: z.enum(MODELS).default('cgan'),
    size: z.union([z.literal(28), z.literal(32), z.literal(64), z.literal(128)]).default(28),
    /** Image channels; 'auto' = 3 when any train image has colour content, else 1 (RGB files with equal channels are grey). */
    channels: z.union([z.literal(1), z.literal(3), z.literal('auto')]).default('auto'),
    /** cgan: how D sees the label. */
    conditioning: z.enum(['projection', 'concat']).default('projection'),
    zDim: z.number().int().min(1).max(1024).default(128),
    gWidth: z.number().int().min(4).max(1024).default(64),
    dWidth: z.number().int().min(4).max(1024).default(64),
    maxWidth: z.number().int().min(4).max(2048).default(256),
    spectralNorm: z.boolean().default(true),
    loss: z.enum(LOSSES).default('hinge'),
    /** R1 penalty weight γ on real images (0 = off), applied lazily every `r1Interval` D steps. */
    r1Gamma: nonNegative.default(0),
    r1Interval: z.number().int().min(1).default(16),
    /** WGAN-GP weight (loss 'wgan' only). */
    gpWeight: nonNegative.default(10),
    /** acgan: weight of the auxiliary classification loss. */
    auxWeight: nonNegative.default(1),
    /** One-sided label smoothing of real targets (non-saturating loss only). */
    labelSmoothing: z.number().min(0).max(0.5).default(0),
    batchSize: z.number().int().min(2).max(4096).default(64),
    gLr: positive.default(2e-4),
    dLr: positive.default(2e-4),
    beta1: z.number().min(0).max(0.999).default(0),
    beta2: z.number().min(0).max(0.9999).default(0.99),
    /** D updates per G update. */
    dSteps: z.number().int().min(1).max(10).default(1),
    /** Differentiable augmentation of everything D sees: none, DiffAugment (always), or ADA (adaptive p). */
    augment: z.enum(AUGMENTS).default('none'),
    augmentOps: z.array(z.enum(AUGMENT_OPS)).min(1).default(['translation', 'cutout', 'color']),
    /** ADA: target of r_t = E[sign(D(real))] and how many kimg p needs to go from 0 to 1. */
    adaTarget: z.number().min(0).max(1).default(0.6),
    adaSpeedKimg: positive.default(100),
    adaInterval: z.number().int().min(1).default(4),
    /** Generator EMA half-life in kimg (0 = no EMA: G_ema = G), ramped up over the first images. */
    emaKimg: nonNegative.default(1),
    emaRampup: z.number().min(0).max(1).optional(),
    /** Sample real batches class-balanced (each class equally often) instead of by the data's frequencies. */
    balancedSampling: z.boolean().default(false),
    /**
     * Train on these train-split images only (their ids, `Split.id`: a folder's relative paths, an npz's
     * `train[i]`), e.g. the limited-data subset a classifier gets; null: the whole train split. Every id must
     * be a train image, each listed once. The images load in the split's order, whatever the list's order.
     */
    trainImages: z
      .array(z.string().min(1))
      .min(1)
      .superRefine((ids, ctx) => {
        const seen = new Set<string>();
        const repeated = new Set<string>();
        for (const id of ids) (seen.has(id) ? repeated : seen).add(id);
        if (repeated.size > 0) {
          const shown = [...repeated].slice(0, 3).map((id) => `"${id}"`);
          ctx.addIssue({
            code: 'custom',
            message: `ids listed more than once: ${shown.join(', ')}${repeated.size > 3 ? ` and ${repeated.size - 3} more` : ''}`,
          });
        }
      })
      .nullable()
      .default(null),
    /**
     * Train a single-class model on this class's train images only (with `trainImages`: the listed ones of
     * this class). The run's class list is `[trainClass]` and every label 0, so dcgan, stylegan2, pggan and
     * ddpm build their unconditional model; cgan and acgan need two classes or more and refuse it. Null: every
     * class.
     */
    trainClass: z.string().min(1).nullable().default(null),
    /**
     * Transitional conditioning (Shahbazi et al., ICLR 2022; cgan/acgan): the class information's strength λ
     * is 0 until `start` of the run's budget, then ramps linearly to 1 at `end` (fractions of kimg or minutes,
     * whichever budget is nearer its end). Null: conditional from the first step.
     */
    condRamp: z
      .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
      .refine(([a, b]) => a <= b, { message: 'condRamp: start must not be after end' })
      .nullable()
      .default(null),
    /**
     * Mode-seeking regulariser weight (MSGAN, Mao et al. 2019): G's batch holds pairs (z1, y), (z2, y) and
     * pays w / (mean|G(z1)−G(z2)| / mean|z1−z2| + ε), pushing samples of one class apart. 0 = off.
     */
    modeSeeking: nonNegative.default(0),
    /**
     * LeCam regulariser weight λ (Tseng et al., CVPR 2021; losses/lecam.ts): D's real and fake logits are held
     * near moving averages of each other, against D memorising a small set. 0 = off.
     */
    lecam: nonNegative.default(0),
    /**
     * D sees a minibatch standard-deviation map (within each class for cgan), so it can tell a batch of
     * near-copies from a varied one.
     */
    minibatchStd: z.boolean().default(false),
    /** stylegan2: size of the intermediate latent w, and the mapping network's depth (z ++ class embedding → w). */
    wDim: z.number().int().min(1).max(1024).default(128),
    mappingLayers: z.number().int().min(1).max(8).default(2),
    /**
     * pggan: share of the run's budget spent growing (fading in and stabilising the lower resolutions); the
     * rest trains the full resolution. The phase boundaries are fractions of the budget (kimg or minutes).
     */
    growFraction: z.number().min(0).max(0.95).default(0.5),
    /**
     * ddpm: DDIM steps when sampling (grids, generate, evaluate), and η (0 deterministic, 1 stochastic). η = 1
     * by measurement: a 15-minute PneumoniaMNIST-28 model sampled with η = 0 left about half its images as
     * noise textures (its low-noise predictions are not yet good enough for the deterministic path); with
     * η = 1 every image was a chest X-ray.
     */
    sampleSteps: z.number().int().min(1).max(1000).default(25),
    eta: z.number().min(0).max(1).default(1),
    /** ddpm: classifier-free guidance scale at sampling (1 = the conditional model alone). */
    guidance: nonNegative.default(1),
    /** ddpm: probability that a training label is replaced by the null class (what guidance needs). */
    condDropout: z.number().min(0).max(1).default(0.1),
    /** ddpm: a self-attention block at the U-Net's lowest resolution. */
    attention: z.boolean().default(true),
    /**
     * ddpm: the U-Net's channel multiplier per level (width·m channels at side S/2^l); null: by image side
     * (`unetLevels`: [1, 2, 4] up to 32 px, [1, 2, 4, 4] at 64, [1, 1, 2, 4, 4] at 128).
     */
    unetMults: z.array(z.number().int().min(1).max(16)).min(1).max(6).nullable().default(null),
    /** Length: thousands of real images shown to D; and/or a wall-clock budget in minutes (first reached ends). */
    kimg: positive.optional(),
    minutes: positive.optional(),
    /** A tick (stats line, grid, checkpoint) every `tickKimg`, or sooner after `tickSeconds`. */
    tickKimg: positive.default(4),
    tickSeconds: positive.default(120),
    /** Checkpoints kept (oldest deleted). */
    keepCheckpoints: z.number().int().min(1).default(3),
    /** Images per class in the tick grids (fixed seeds). */
    gridPerClass: z.number().int().min(1).max(64).default(8),
    /** Root seed: init, z, data order and augmentation get named sub-seeds of it. */
    seed: z.number().int().min(0).default(0),
    /** Parent folder of auto-numbered run directories. */
    outDir: z.string().min(1).default('runs'),
    /** Run name suffix (default `<model>-<data name>-<size>`). */
    name: z
      .string()
      .regex(/^[\w.-]+$/, 'letters, digits, _ . - only')
      .optional(),
  })
  .strict()
  .refine((o) => o.kimg !== undefined || o.minutes !== undefined, {
    message: 'give a training length: kimg and/or minutes',
    path: ['kimg'],
  })
  .refine((o) => o.trainClass === null || (o.model !== 'cgan' && o.model !== 'acgan'), {
    message:
      'a single-class run (trainClass) trains an unconditional model: use model dcgan, stylegan2, pggan or ddpm (cgan and acgan need two classes or more)',
    path: ['trainClass'],
  });

export type TrainOptionsInput = z.input<typeof TrainOptionsSchema>;
export type TrainOptions = Readonly<z.output<typeof TrainOptionsSchema>>;
export type GanModelName = (typeof MODELS)[number];
export type AdversarialLossName = (typeof LOSSES)[number];
export type AugmentMode = (typeof AUGMENTS)[number];
export type AugmentOp = (typeof AUGMENT_OPS)[number];
export { AUGMENT_OPS, AUGMENTS, LOSSES, MODELS, SIZES };

type Preset = Omit<Partial<TrainOptionsInput>, 'data'>;

/**
 * How ddpm trains, shared by its presets and by `--model ddpm` over a GAN preset: the diffusion literature's
 * Adam β 0.9 / 0.999, a U-Net of width 16 (see the ddpm presets), EMA half-life 2 kimg.
 */
const DDPM_TRAINING = { gWidth: 16, beta1: 0.9, beta2: 0.999, emaKimg: 2 } as const satisfies Preset;

/**
 * Presets whose network sizes hold for every family (smoke runs): `MODEL_DEFAULTS` do not resize their
 * networks.
 */
const SIZE_FOR_ANY_MODEL: ReadonlySet<string> = new Set(['tiny']);
const SIZE_FIELDS = ['gWidth', 'dWidth', 'zDim', 'maxWidth', 'unetMults'] as const;

/**
 * Presets for small medical sets. Each names what it is for; any field can still be overridden.
 * - `tiny`: seconds-long smoke runs (tests, CI): narrow networks, 28 px.
 * - `medmnist-28`: MedMNIST-style 28×28 sets of a few thousand images (PneumoniaMNIST, BreastMNIST); with
 *   the mode-seeking term, which kept the minority class from collapsing in short runs.
 * - `small-64`: folders of 1–10k images at 64×64; ADA against D overfitting, R1 for stability, mode seeking
 *   against per-class collapse.
 * - `small-128`: the same at 128×128 (slow on CPU; a GPU libtorch helps).
 * - `ddpm-28`, `ddpm-64`: the diffusion family (`--model ddpm`) at 28 and 64 px, 15 and 30 minutes.
 */
export const TRAIN_PRESETS: Readonly<Record<string, Preset>> = Object.freeze({
  tiny: {
    size: 28,
    // Short runs need fast learning: the non-saturating loss at a high rate gets class-shaped images in ~6 kimg.
    loss: 'nonsaturating',
    gLr: 1e-3,
    dLr: 1e-3,
    beta1: 0.5,
    zDim: 32,
    gWidth: 8,
    dWidth: 8,
    maxWidth: 32,
    batchSize: 16,
    kimg: 1,
    tickKimg: 0.25,
    emaKimg: 0.1,
    gridPerClass: 4,
  },
  'medmnist-28': {
    size: 28,
    model: 'cgan',
    loss: 'hinge',
    gWidth: 32,
    dWidth: 32,
    batchSize: 64,
    gLr: 2e-4,
    dLr: 2e-4,
    beta1: 0,
    beta2: 0.99,
    emaKimg: 1,
    // Measured on PneumoniaMNIST-28, 3-minute runs (one each): without it the minority class collapsed
    // (normal recall 0.007, within-class MS-SSIM 0.84 vs 0.75 real); 0.2 gave recall 0.65 / 0.77 per class
    // and a lower FID (0.57 vs 0.67); 1 overshot (FID 1.24, precision 0.68); 0.05 left normal at 0.10.
    modeSeeking: 0.2,
    minutes: 8,
    tickKimg: 20,
    tickSeconds: 60,
  },
  'small-64': {
    size: 64,
    // Measured on ISIC-8 at 64 px, 10-minute runs (one each; bench/generators.ts): cgan without mode seeking
    // collapsed every class to one image (within-class MS-SSIM 0.89 vs 0.26 real, recall 0.25, 0.00 in two
    // classes); with mode seeking 0.2, MS-SSIM 0.57, recall 0.24 overall and 0.16–0.70 per class, FID 9.4 vs
    // 8.0, class fidelity 0.49 vs 0.68 (judge's real-test accuracy 0.47). stylegan2 (width 16) reached recall
    // 0.64 but class fidelity 0.31 and speckled images; pggan (width 16) FID 14.8, fidelity 0.31.
    model: 'cgan',
    modeSeeking: 0.2,
    loss: 'hinge',
    gWidth: 32,
    dWidth: 32,
    maxWidth: 256,
    batchSize: 32,
    augment: 'ada',
    r1Gamma: 0.1,
    emaKimg: 2,
    minutes: 20,
    tickKimg: 10,
    tickSeconds: 120,
  },
  // Diffusion (ddpm) presets. Measured on PneumoniaMNIST-28 (2 cores, libtorch): the first U-Net (width 32,
  // levels [1, 2, 2], 373 MFLOP a forward pass) sampled ~10–14 img/s with 25 DDIM steps; width 16 with levels
  // [1, 2, 4] (140 MFLOP: narrow where the image is large, wide where it is small) is what the sampling
  // target of 20 img/s allows on this CPU. See the closing note of issue 15 for its quality.
  'ddpm-28': {
    ...DDPM_TRAINING,
    size: 28,
    model: 'ddpm',
    batchSize: 64,
    gLr: 5e-4,
    minutes: 15,
    tickKimg: 20,
    tickSeconds: 120,
  },
  'ddpm-64': {
    ...DDPM_TRAINING,
    size: 64,
    model: 'ddpm',
    batchSize: 32,
    gLr: 3e-4,
    minutes: 30,
    tickKimg: 10,
    tickSeconds: 300,
  },
  'small-128': {
    size: 128,
    model: 'cgan',
    loss: 'hinge',
    gWidth: 16,
    dWidth: 16,
    maxWidth: 512,
    batchSize: 32,
    augment: 'ada',
    r1Gamma: 0.2,
    emaKimg: 2,
    minutes: 60,
    tickKimg: 10,
    tickSeconds: 300,
  },
});

export const DEFAULT_TRAIN_PRESET = 'medmnist-28';

/**
 * What a family needs that a preset made for another family does not give it: applied over the preset when
 * `--model` names a family other than the preset's (the user's own values still win). The presets are GAN
 * presets; ddpm is trained like the diffusion literature's small models (Adam β 0.9 / 0.999, no augmentation
 * and none of the GAN regularisers).
 */
export const MODEL_DEFAULTS: Readonly<Partial<Record<GanModelName, Preset>>> = Object.freeze({
  ddpm: {
    ...DDPM_TRAINING,
    gLr: 5e-4,
    augment: 'none',
    r1Gamma: 0,
    modeSeeking: 0,
    lecam: 0,
  },
});

/**
 * The training preset made for images of this side (and family): `medmnist-28` up to 32 px, then `small-64`,
 * `small-128`; for ddpm `ddpm-28` and `ddpm-64` (`small-128` with the diffusion defaults above 64 px).
 */
export function trainPresetForSize(size: number, model?: GanModelName): string {
  if (model === 'ddpm' && size <= 64) return size <= 32 ? 'ddpm-28' : 'ddpm-64';
  if (size <= 32) return 'medmnist-28';
  return size <= 64 ? 'small-64' : 'small-128';
}

/**
 * Resolves training options: the preset's values (default `medmnist-28`, or the one named in `input.preset`),
 * then `MODEL_DEFAULTS` of the model when the user names one the preset was not made for, then the user's,
 * validated and frozen. An unknown preset is a ConfigError listing the known ones.
 */
export function resolveTrainOptions(input: TrainOptionsInput): TrainOptions {
  const presetName = input.preset ?? DEFAULT_TRAIN_PRESET;
  const preset = TRAIN_PRESETS[presetName];
  if (!preset) {
    throw new ConfigError(`unknown preset "${presetName}"`, {
      field: 'preset',
      expected: Object.keys(TRAIN_PRESETS).join(', '),
    });
  }
  const model = input.model ?? preset.model ?? 'cgan';
  const familyDefaults: Record<string, unknown> =
    model !== (preset.model ?? 'cgan') ? { ...MODEL_DEFAULTS[model] } : {};
  if (SIZE_FOR_ANY_MODEL.has(presetName)) for (const k of SIZE_FIELDS) delete familyDefaults[k];
  const merged: Record<string, unknown> = { ...preset, ...familyDefaults };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) merged[k] = v;
  merged['preset'] = presetName;
  // Length: an explicit kimg alone means "no time limit" unless minutes is also given, and vice versa.
  if (input.kimg !== undefined && input.minutes === undefined) delete merged['minutes'];
  if (input.minutes !== undefined && input.kimg === undefined) delete merged['kimg'];
  return resolveOptions(TrainOptionsSchema, merged, 'train options');
}
