// The reduction and shape kernels, in two files: reduce.ts (reductions, softmax, scans, top-k, bin counts) and
// shape.ts (layout, slicing, gather/scatter, padding).
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { reduceKernels } from './reduce.js';
import { shapeKernels } from './shape.js';

export const reduceShapeKernels: KernelConfig[] = [...reduceKernels, ...shapeKernels];
