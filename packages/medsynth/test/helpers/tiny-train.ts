/** Training options for fast tests: PneumoniaMNIST-28 with the `tiny` preset, a test's own defaults, then overrides. */
import {
  resolveTrainOptions,
  type TrainOptions,
  type TrainOptionsInput,
} from '../../src/config/train-options.js';
import { sharedData } from './shared-data.js';

export const PNEUMONIA_28 = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

/** `tiny(extra)` for a test file: `defaults` (e.g. `{ outDir, kimg }`) under each call's `extra`. */
export function tinyTrainOptions(
  defaults: () => Partial<TrainOptionsInput>,
): (extra?: Partial<TrainOptionsInput>) => TrainOptions {
  return (extra = {}) =>
    resolveTrainOptions({
      data: { source: PNEUMONIA_28 },
      preset: 'tiny',
      ...defaults(),
      ...extra,
    } as TrainOptionsInput);
}
