/**
 * The classifiers a study can train, by name. Deep ones are the CNN trainer (classify/cnn.ts) with an
 * architecture, classic augmentation and early stopping on the real validation split; conventional ones are
 * texture features with a maintained learner (classify/conventional.ts). A config names a built-in
 * (`cnn`), or a variant with overrides (`{ name: 'cnn-wide', base: 'cnn', options: { width: 32 } }`); the
 * options are validated by the classifier's own schema before the study starts.
 */
import { resolveCnnOptions, trainCnn, type CnnOptionsInput } from '../classify/cnn.js';
import { resolveConventionalOptions, trainConventional } from '../classify/conventional.js';
import type { ImagesWithLabels, LabelledImages, TrainedClassifier } from '../classify/types.js';
import { ConfigError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import type { StudyConfig } from './config.js';

export type ClassifierFamily = 'deep' | 'conventional';

export interface StudyClassifierModel extends TrainedClassifier {
  describe(): object;
}

/** What a data condition changes in a classifier's training. */
export interface TrainOverrides {
  /** False: no classic augmentation (a `:noaug` condition). */
  readonly augment?: boolean | undefined;
  /** Exactly this many optimiser steps (a study's `equalSteps`); deep classifiers only. */
  readonly steps?: number | undefined;
}

export interface StudyClassifier {
  readonly name: string;
  readonly base: string;
  readonly family: ClassifierFamily;
  /** The options the classifier trains with (its defaults for the study merged with the config's). */
  readonly options: Readonly<Record<string, unknown>>;
  /** Does a condition's `augment: false` change this classifier (deep ones augment; conventional never do)? */
  readonly augments: boolean;
  /** Optimiser steps of a full run over `images` training images (epochs × batches); null when not step-based. */
  stepsFor(images: number): number | null;
  train(
    train: LabelledImages,
    validation: ImagesWithLabels,
    seed: number,
    control: RunControl,
    overrides?: TrainOverrides,
  ): Promise<StudyClassifierModel>;
}

/** Classic augmentation off. */
const NO_AUGMENT = { flip: false, verticalFlip: false, shift: 0, rotate: 0, brightness: 0, contrast: 0 };

interface Builtin {
  readonly family: ClassifierFamily;
  readonly description: string;
  readonly defaults: Readonly<Record<string, unknown>>;
}

/** Deep classifiers: early stopping on the validation loss, classic augmentation, class-balanced loss. */
const DEEP_DEFAULTS = {
  epochs: 20,
  patience: 5,
  monitor: 'valLoss',
  classWeights: 'balanced',
  augment: { flip: true, shift: 0.1 },
} as const;

export const BUILTIN_CLASSIFIERS: Readonly<Record<string, Builtin>> = Object.freeze({
  cnn: {
    family: 'deep',
    description: 'small CNN (2–4 conv blocks, batch norm, global average pooling)',
    defaults: { ...DEEP_DEFAULTS, architecture: 'small', width: 16 },
  },
  resnet: {
    family: 'deep',
    description: 'ResNet-18-style network (4 stages of 2 basic blocks)',
    defaults: { ...DEEP_DEFAULTS, architecture: 'resnet', width: 16 },
  },
  vgg: {
    family: 'deep',
    description: 'VGG-style network (stages of two 3×3 convs and max pooling)',
    defaults: { ...DEEP_DEFAULTS, architecture: 'vgg', width: 16 },
  },
  'lbp-rf': {
    family: 'conventional',
    description: 'multi-radius uniform LBP histograms + random forest (the seed study’s conventional method)',
    defaults: { preset: 'lbp-rf' },
  },
  'texture-lr': {
    family: 'conventional',
    description: 'GLCM/Haralick + LBP texture features + logistic regression',
    defaults: { preset: 'texture-lr' },
  },
});

function make(
  name: string,
  base: string,
  overrides: Readonly<Record<string, unknown>>,
  field: string,
): StudyClassifier {
  const builtin = BUILTIN_CLASSIFIERS[base];
  if (!builtin)
    throw new ConfigError(`unknown classifier "${base}"`, {
      field,
      expected: Object.keys(BUILTIN_CLASSIFIERS).join(', '),
      found: base,
    });
  const options = { ...builtin.defaults, ...overrides };
  if (builtin.family === 'deep') {
    // Validated now (a ConfigError names the field), so a typo fails before hours of work.
    const resolved = resolveCnnOptions(options as CnnOptionsInput);
    return {
      name,
      base,
      family: 'deep',
      options,
      augments: true,
      // As the trainer counts them: a last batch of one image sits its pass out.
      stepsFor: (images) =>
        (Math.floor(images / resolved.batchSize) + (images % resolved.batchSize >= 2 ? 1 : 0)) *
        resolved.epochs,
      async train(train, validation, seed, control, overrides = {}) {
        return trainCnn(
          train,
          {
            ...(options as CnnOptionsInput),
            ...(overrides.augment === false ? { augment: NO_AUGMENT } : {}),
            ...(overrides.steps !== undefined ? { steps: overrides.steps } : {}),
            seed,
            validation,
          },
          control,
        );
      },
    };
  }
  resolveConventionalOptions(options);
  return {
    name,
    base,
    family: 'conventional',
    options,
    augments: false,
    stepsFor: () => null,
    async train(train, _validation, seed, control) {
      return trainConventional(train, { ...options, seed }, control);
    },
  };
}

/** The classifiers of a study config, names checked for duplicates. */
export function resolveStudyClassifiers(entries: StudyConfig['classifiers']): StudyClassifier[] {
  const out = entries.map((e, i) =>
    typeof e === 'string'
      ? make(e, e, {}, `classifiers.${i}`)
      : make(e.name, e.base, e.options, `classifiers.${i}`),
  );
  const seen = new Set<string>();
  for (const c of out) {
    if (seen.has(c.name))
      throw new ConfigError(`classifier ${c.name} is listed twice`, { field: 'classifiers' });
    seen.add(c.name);
  }
  return out;
}
