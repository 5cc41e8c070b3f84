// Helpers every kernel file uses: ATen calls that return handles, a per-kernel scope that disposes
// intermediate handles, and kernel-config builders.
import type {
  KernelConfig,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
  DataType,
} from '@tensorflow/tfjs-core';
import { aten, loadAddon, type AtenArg, type AtenResult, type Handle } from '../addon.js';
import { BACKEND_NAME, type LibtorchBackend } from '../backend.js';
import { runOnCpu } from './cpu-fallback.js';

/** Handles created inside the running kernel; the ones not returned are disposed when it ends. */
let scope: Handle[] | null = null;

function track(r: AtenResult): AtenResult {
  if (scope !== null && r !== null && typeof r === 'object') {
    if (Array.isArray(r)) scope.push(...r);
    else scope.push(r as Handle);
  }
  return r;
}

/** An ATen operator with one tensor result: `op('aten::add.Tensor')(a, b)`. */
export function op(schema: string): (...args: AtenArg[]) => Handle {
  let fn: ((...args: AtenArg[]) => AtenResult) | undefined;
  return (...args) => {
    fn ??= aten(schema);
    return track(fn(...args)) as Handle;
  };
}

/** An ATen operator with several tensor results (a tuple or a list). */
export function opN(schema: string): (...args: AtenArg[]) => Handle[] {
  let fn: ((...args: AtenArg[]) => AtenResult) | undefined;
  return (...args) => {
    fn ??= aten(schema);
    return track(fn(...args)) as Handle[];
  };
}

/** The shape of a handle (one N-API call; kernels mostly know shapes from their TensorInfos instead). */
export function shapeOf(h: Handle): number[] {
  return loadAddon().shape(h);
}

/** ScalarType codes for ATen `ScalarType` arguments. */
export const SCALAR_TYPE = { bool: 11, int32: 3, float32: 6, int64: 4 } as const;

export function scalarType(dtype: DataType): number {
  if (dtype === 'float32' || dtype === 'int32' || dtype === 'bool') return SCALAR_TYPE[dtype];
  throw new Error(
    `libtorch backend: dtype '${dtype}' is not supported; it supports float32, int32 and bool.`,
  );
}

export interface KernelArgs {
  inputs: NamedTensorInfoMap;
  attrs: NamedAttrMap;
  b: LibtorchBackend;
  /** The handle of a named input (throws when it is missing). */
  x(name: string): Handle;
}

type KernelBody = (args: KernelArgs) => Handle | Handle[];

const isStringInput = (t: TensorInfo | TensorInfo[] | undefined) =>
  Array.isArray(t) ? t.some((u) => u.dtype === 'string') : t?.dtype === 'string';

/** A kernel whose body returns fresh handles (from ATen calls); they become the outputs. Intermediate
 * handles made inside the body are disposed afterwards. */
export function kernel(kernelName: string, body: KernelBody): KernelConfig {
  return {
    kernelName,
    backendName: BACKEND_NAME,
    kernelFunc: (params) => {
      const { inputs, attrs, backend } = params;
      // String tensors have no ATen tensor: shape kernels given strings (concat, slice, tile…) run on cpu.
      if (Object.values(inputs).some(isStringInput)) return runOnCpu(kernelName, params);
      const b = backend as LibtorchBackend;
      const outer = scope;
      const mine: Handle[] = [];
      scope = mine;
      let result: Handle | Handle[];
      try {
        result = body({
          inputs,
          attrs: attrs ?? {},
          b,
          x: (name) => {
            const t = inputs[name];
            if (t === undefined) throw new Error(`${kernelName}: input '${name}' is missing`);
            return b.handle(t);
          },
        });
      } catch (error) {
        for (const h of mine) b.addon.dispose(h);
        throw error;
      } finally {
        scope = outer;
      }
      const outs = Array.isArray(result) ? result : [result];
      for (const h of mine) if (!outs.includes(h)) b.addon.dispose(h);
      const infos: TensorInfo[] = outs.map((h) => {
        if (!mine.includes(h)) throw new Error(`${kernelName}: a kernel must return fresh handles`);
        return b.output(h);
      });
      return Array.isArray(result) ? infos : infos[0]!;
    },
  };
}

export type { Handle, AtenArg };
