// Loads the native addon and gives it a typed surface. The addon is deliberately generic: tensors are opaque
// handles, and every ATen operator is called by schema name (see src/addon/addon.cc).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

/** An opaque handle owning one `at::Tensor`. */
export type Handle = { readonly __libtorchHandle: unique symbol };

/** Values an ATen argument can take: tensors, ints (number, or bigint for an integer Scalar), floats, bools,
 * strings, lists of those, and null for `None`. `undefined` takes the schema default. */
export type AtenArg = Handle | number | bigint | boolean | string | null | undefined | readonly AtenArg[];

export type AtenResult = Handle | Handle[] | number | boolean | null;

/** dtype codes shared with the addon. */
export const DTYPE_CODE = { float32: 0, int32: 1, bool: 2 } as const;
export type NativeDtype = keyof typeof DTYPE_CODE;
export const CODE_DTYPE: readonly NativeDtype[] = ['float32', 'int32', 'bool'];
/** float64: no TF.js dtype, for statistics done outside TF.js (see float64.ts). */
export const FLOAT64_CODE = 3;

export interface LibtorchInfo {
  version: string;
  threads: number;
  cuda: boolean;
  mkldnn: boolean;
  device: string;
  parallel: string;
}

export interface Addon {
  fromBuffer(
    values: Float32Array | Int32Array | Uint8Array | Float64Array,
    shape: readonly number[],
    dtype: number,
  ): Handle;
  /** A Float64Array only for a float64 tensor, which only `call(…, true)` returns. */
  toBuffer(h: Handle): Float32Array | Int32Array | Uint8Array;
  toBufferAsync(h: Handle): Promise<Float32Array | Int32Array | Uint8Array>;
  dispose(h: Handle): void;
  shape(h: Handle): number[];
  strides(h: Handle): number[];
  /** [dtypeCode, ...shape]; dtypeCode is -1 for a dtype TF.js does not have. */
  meta(h: Handle): number[];
  dtype(h: Handle): number | string;
  liveCount(): number;
  op(name: string, overload: string): number;
  schema(id: number): string;
  /** Results are narrowed to TF.js dtypes (float64 to float32, int64 to int32) unless `keepFloat64`. */
  call(id: number, args: readonly AtenArg[], keepFloat64?: boolean): AtenResult;
  setNumThreads(n: number): void;
  setDevice(device: string): void;
  info(): LibtorchInfo;
  /** glibc allocator statistics in bytes (empty on other C libraries). */
  mallocStats(): { inUse?: number; heapFree?: number; mmapped?: number };
}

/** This package's folder, when known (not inside a CommonJS bundle, where import.meta is empty). */
function packageRoot(): string | undefined {
  try {
    return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  } catch {
    return undefined;
  }
}

/** Where the addon may be: $TFJS_LIBTORCH_ADDON, node-gyp's Release build, or a Debug build. */
function candidates(): string[] {
  const explicit = process.env['TFJS_LIBTORCH_ADDON'];
  const root = packageRoot();
  const builds = root
    ? ['Release', 'Debug'].map((d) => path.join(root, 'build', d, 'tfjs_libtorch.node'))
    : [];
  return explicit ? [explicit, ...builds] : builds;
}

let loaded: Addon | undefined;
let loadError: Error | undefined;

/** The addon, or a thrown Error that says why it cannot load (not built, libtorch missing…). */
export function loadAddon(): Addon {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  const found = candidates().find((p) => fs.existsSync(p));
  if (!found) {
    loadError = new Error(
      'the libtorch addon is not built (no build/Release/tfjs_libtorch.node). Install libtorch ' +
        "(Debian: apt-get install libtorch-dev) and run 'npm run build:addon -w tfjs-backend-libtorch'.",
    );
    throw loadError;
  }
  // libgomp reads its settings when the addon's libraries load. By default its idle threads spin for ~300k
  // iterations before sleeping; when anything else wants the cores (another process, the test runner's second
  // worker) the spinning threads take them from the working one, and a 2-thread DCGAN step ran 10-20x slower
  // than on 1 thread (PyTorch as well). Fully passive waiting costs a wake-up per parallel region instead.
  // A short spin was fastest here (gan28 step, 2 threads: 128-130 ms against 138-196 ms passive and 148-166
  // ms at 100k-300k). A policy or spin count the user set is kept.
  if (process.env['OMP_WAIT_POLICY'] === undefined && process.env['GOMP_SPINCOUNT'] === undefined) {
    process.env['GOMP_SPINCOUNT'] = '10000';
  }
  try {
    loaded = createRequire(found)(found) as Addon;
    return loaded;
  } catch (error) {
    loadError = new Error(`the libtorch addon at ${found} failed to load: ${(error as Error).message}`);
    throw loadError;
  }
}

/** A callable ATen operator, looked up once by schema name ("aten::add.Tensor"). */
export type AtenOp = (...args: AtenArg[]) => AtenResult;

const opCache = new Map<string, AtenOp>();

export function aten(schema: string): AtenOp {
  let fn = opCache.get(schema);
  if (fn) return fn;
  const addon = loadAddon();
  const dot = schema.indexOf('.');
  const name = dot < 0 ? schema : schema.slice(0, dot);
  const overload = dot < 0 ? '' : schema.slice(dot + 1);
  const id = addon.op(name, overload);
  fn = (...args: AtenArg[]) => addon.call(id, args);
  opCache.set(schema, fn);
  return fn;
}
