// tfjs-backend-libtorch: a TensorFlow.js backend for Node whose kernels are libtorch (ATen) calls.
import os from 'node:os';
import { findBackendFactory, registerBackend, registerKernel, getKernel } from '@tensorflow/tfjs-core';
import { loadAddon, type LibtorchInfo } from './addon.js';
import { BACKEND_NAME, LibtorchBackend } from './backend.js';
import { kernelConfigs } from './kernels/index.js';
import { fusedKernels, gradientKernels, installFusedGradients } from './gradients.js';
import { cpuFallbackKernels } from './kernels/cpu-fallback.js';

export { BACKEND_NAME, LibtorchBackend } from './backend.js';
export { loadAddon, aten, type Addon, type AtenArg, type Handle, type LibtorchInfo } from './addon.js';
export { kernelConfigs } from './kernels/index.js';
// Fused group norm and SiLU (+ gradients), libtorch-only kernels for a model library's `customGrad`.
export { FUSED_KERNELS } from './gradients.js';
export {
  covariance64,
  matmul64,
  symmetricEigen64,
  symmetricEigenvalues64,
  type MeanCovariance,
} from './float64.js';

export interface LibtorchOptions {
  /** Intra-op threads. Default: $MEDSYNTH_THREADS, else $OMP_NUM_THREADS, else all available cores. */
  threads?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. Default: $MEDSYNTH_DEVICE or 'cpu'. */
  device?: string;
  /** Backend priority for TF.js's automatic choice (tfjs-node uses 3). Default 4. */
  priority?: number;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: expected a positive integer`);
  return n;
}

export function defaultThreads(): number {
  return envInt('MEDSYNTH_THREADS') ?? envInt('OMP_NUM_THREADS') ?? os.availableParallelism();
}

let kernelsRegistered = false;

function registerKernels(): void {
  if (kernelsRegistered) return;
  const native = [...kernelConfigs, ...gradientKernels, ...fusedKernels];
  for (const config of [...native, ...cpuFallbackKernels(new Set(native.map((k) => k.kernelName)))]) {
    if (getKernel(config.kernelName, BACKEND_NAME) === undefined) registerKernel(config);
  }
  installFusedGradients();
  kernelsRegistered = true;
}

/**
 * Loads the addon and registers the `libtorch` backend with TF.js. Throws an Error that says why when the
 * addon cannot load. Returns the libtorch build's facts.
 */
export function registerLibtorchBackend(options: LibtorchOptions = {}): LibtorchInfo {
  const addon = loadAddon();
  addon.setNumThreads(options.threads ?? defaultThreads());
  addon.setDevice(options.device ?? process.env['MEDSYNTH_DEVICE'] ?? 'cpu');
  registerKernels();
  // Registering twice would make TF.js print a warning; threads and device above still apply.
  if (findBackendFactory(BACKEND_NAME) !== null) return addon.info();
  registerBackend(
    BACKEND_NAME,
    () => {
      installFusedGradients();
      return new LibtorchBackend(addon);
    },
    options.priority ?? 4,
  );
  return addon.info();
}

/** Kernels that run on tfjs-backend-cpu (copying data) because libtorch has no implementation of them. */
export function fallbackKernelNames(): string[] {
  const native = new Set([...kernelConfigs, ...gradientKernels, ...fusedKernels].map((k) => k.kernelName));
  return cpuFallbackKernels(native)
    .map((k) => k.kernelName)
    .sort();
}

/** The libtorch build's facts (version, threads, CUDA, oneDNN), or throws why the addon cannot load. */
export function libtorchInfo(): LibtorchInfo {
  return loadAddon().info();
}
