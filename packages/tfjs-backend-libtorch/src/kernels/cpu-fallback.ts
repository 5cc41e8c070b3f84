// Kernels with no libtorch implementation run on tfjs-backend-cpu: inputs are copied out, the cpu kernel
// runs, outputs are copied back. This keeps every TF.js op usable on `libtorch` (string, sparse and ragged
// ops, non-max suppression…) without pretending those are fast. The training-path kernels are all native;
// `fallbackKernelNames()` lists the rest.
// Importing tfjs-backend-cpu registers its kernels (and the 'cpu' backend), as the `@tensorflow/tfjs` bundle does.
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { getKernel, getKernelsForBackend } from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { BACKEND_NAME, type LibtorchBackend } from '../backend.js';

let cpu: MathBackendCPU | undefined;

function cpuBackend(): MathBackendCPU {
  cpu ??= new MathBackendCPU();
  return cpu;
}

type KernelParams = Parameters<KernelFunc>[0];

/** Runs the cpu backend's kernel `kernelName` on a libtorch kernel call's tensors (copied there and back). */
export function runOnCpu(
  kernelName: string,
  { inputs, attrs, backend }: KernelParams,
): TensorInfo | TensorInfo[] {
  const config = getKernel(kernelName, 'cpu');
  if (config === undefined) throw new Error(`libtorch backend: no kernel '${kernelName}' for these inputs`);
  const lt = backend as LibtorchBackend;
  const host = cpuBackend();
  // Inputs are copied to the cpu backend; some kernels take a list under one name (RaggedGather's
  // splits) and some read `rank`, which the engine's Tensors carry.
  const created: TensorInfo[] = [];
  const toHost = (t: TensorInfo): TensorInfo => {
    const info = {
      dataId: host.write(lt.readSync(t.dataId), t.shape, t.dtype),
      shape: t.shape,
      dtype: t.dtype,
    };
    created.push(info);
    return Object.assign(info, { rank: t.shape.length });
  };
  // Concat and Pack get their inputs as an array, not a map.
  let hostInputs: Record<string, TensorInfo | TensorInfo[]> | TensorInfo[];
  if (Array.isArray(inputs)) {
    hostInputs = (inputs as TensorInfo[]).map(toHost);
  } else {
    hostInputs = {};
    for (const [name, t] of Object.entries(inputs as Record<string, TensorInfo | TensorInfo[] | undefined>)) {
      if (t !== undefined) hostInputs[name] = Array.isArray(t) ? t.map(toHost) : toHost(t);
    }
  }
  try {
    const out = config.kernelFunc({
      inputs: hostInputs as NamedTensorInfoMap,
      attrs: attrs ?? {},
      backend: host,
    });
    const outs = Array.isArray(out) ? out : [out];
    const moved = outs.map((o) => {
      const values = host.readSync(o.dataId);
      host.disposeData(o.dataId, true);
      return { dataId: lt.write(values, o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
    });
    return Array.isArray(out) ? moved : moved[0]!;
  } finally {
    for (const t of created) host.disposeData(t.dataId, true);
  }
}

function fallbackKernel(config: KernelConfig): KernelConfig {
  return {
    kernelName: config.kernelName,
    backendName: BACKEND_NAME,
    kernelFunc: (params) => runOnCpu(config.kernelName, params),
  };
}

/** Fallback configs for every cpu kernel not in `native`. */
export function cpuFallbackKernels(native: ReadonlySet<string>): KernelConfig[] {
  return getKernelsForBackend('cpu')
    .filter((k) => !native.has(k.kernelName))
    .map(fallbackKernel);
}
