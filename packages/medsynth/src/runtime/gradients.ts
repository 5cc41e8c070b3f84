/**
 * Gradients TF.js lacks that medsynth's training needs. TF.js's LeakyReLU gradient builds its mask with
 * `Greater`, which has no registered gradient, so any second-order gradient through a LeakyReLU network (the
 * R1 and WGAN-GP penalties differentiate D's input gradient again) fails on every backend with "gradient
 * function not found for Greater". Comparisons are piecewise constant: their gradient is zero almost
 * everywhere, which is what these register (TF.js already does the same for `GreaterEqual` and `Step`).
 */
import { getGradient, type GradConfig, registerGradient, zerosLike } from '@tensorflow/tfjs-core';

const COMPARISONS = ['Greater', 'Less', 'LessEqual', 'Equal', 'NotEqual'] as const;

/** Registers zero gradients for the comparison kernels that have none. Idempotent; keeps any existing one. */
export function registerMissingGradients(): void {
  for (const kernelName of COMPARISONS) {
    if (getGradient(kernelName) !== undefined) continue;
    const config: GradConfig = {
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => {
        const [a, b] = saved as [Parameters<typeof zerosLike>[0], Parameters<typeof zerosLike>[0]];
        return { a: () => zerosLike(a), b: () => zerosLike(b) };
      },
    };
    registerGradient(config);
  }
}
