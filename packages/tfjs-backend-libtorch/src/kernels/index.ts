import type { KernelConfig } from '@tensorflow/tfjs-core';
import { coreKernels } from './core.js';
import { elementwiseKernels } from './elementwise.js';
import { reduceShapeKernels } from './reduce-shape.js';
import { spatialKernels } from './spatial.js';
import { convMatmulKernels } from './conv-matmul.js';

/** Every kernel the libtorch backend registers. */
export const kernelConfigs: KernelConfig[] = [
  ...coreKernels,
  ...elementwiseKernels,
  ...reduceShapeKernels,
  ...spatialKernels,
  ...convMatmulKernels,
];
