// The TF.js KernelBackend over libtorch: TF.js dataIds map to addon handles; kernels (src/kernels) turn
// TF.js kernel calls into ATen calls.
import { DataStorage, KernelBackend, engine, util } from '@tensorflow/tfjs-core';
import type { BackendTimingInfo, BackendValues, DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';
import { CODE_DTYPE, DTYPE_CODE, type Addon, type Handle } from './addon.js';

export const BACKEND_NAME = 'libtorch';

interface TensorData {
  /** The tensor, for float32/int32/bool. */
  handle: Handle | null;
  /** String tensors are kept as JS values: TF.js can store them here, but no libtorch kernel reads them. */
  strings: Uint8Array[] | null;
  dtype: DataType;
  refCount: number;
}

function unsupportedDtype(dtype: DataType, what: string): Error {
  return new Error(
    `libtorch backend: dtype '${dtype}' is not supported (${what}); it supports float32, int32 and bool.`,
  );
}

function toTyped(values: BackendValues, dtype: DataType): Float32Array | Int32Array | Uint8Array {
  switch (dtype) {
    case 'float32':
      return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    case 'int32':
      return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
    case 'bool':
      return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
    default:
      throw unsupportedDtype(dtype, 'write');
  }
}

export class LibtorchBackend extends KernelBackend {
  readonly addon: Addon;
  private readonly data: DataStorage<TensorData>;
  private disposed = false;

  constructor(addon: Addon) {
    super();
    this.addon = addon;
    this.data = new DataStorage(this, engine());
  }

  override write(values: BackendValues | null, shape: number[], dtype: DataType): DataId {
    const dataId = {};
    this.store(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(
    dataId: DataId,
    values: BackendValues | null,
    shape: number[],
    dtype: DataType,
    refCount: number,
  ) {
    this.store(dataId, values, shape, dtype, refCount);
  }

  private store(
    dataId: DataId,
    values: BackendValues | null,
    shape: number[],
    dtype: DataType,
    refCount: number,
  ) {
    if (dtype === 'string') {
      const strings =
        (values as Uint8Array[] | null) ??
        new Array<Uint8Array>(util.sizeFromShape(shape)).fill(new Uint8Array());
      this.data.set(dataId, { handle: null, strings, dtype, refCount });
      return;
    }
    if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') throw unsupportedDtype(dtype, 'write');
    const typed =
      values === null || values === undefined
        ? new (dtype === 'float32' ? Float32Array : dtype === 'int32' ? Int32Array : Uint8Array)(
            util.sizeFromShape(shape),
          )
        : toTyped(values, dtype);
    const handle = this.addon.fromBuffer(typed, shape, DTYPE_CODE[dtype]);
    this.data.set(dataId, { handle, strings: null, dtype, refCount });
  }

  /** Wraps a new handle as a kernel output. Shape and dtype are read from the tensor itself. */
  output(handle: Handle): TensorInfo {
    const meta = this.addon.meta(handle);
    const dtype = CODE_DTYPE[meta[0]!];
    if (dtype === undefined) throw new Error(`libtorch backend: a kernel produced an unsupported dtype`);
    const dataId = {};
    this.data.set(dataId, { handle, strings: null, dtype, refCount: 1 });
    return { dataId, shape: meta.slice(1), dtype };
  }

  /** The handle behind a tensor the engine passed to a kernel. */
  handle(t: TensorInfo): Handle {
    const d = this.data.get(t.dataId);
    if (d === undefined)
      throw new Error('libtorch backend: unknown tensor (disposed, or from another backend)');
    if (d.handle === null) throw unsupportedDtype(d.dtype, 'this kernel');
    return d.handle;
  }

  override refCount(dataId: DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0;
  }

  override incRef(dataId: DataId): void {
    this.data.get(dataId).refCount++;
  }

  override async read(dataId: DataId): Promise<BackendValues> {
    const d = this.data.get(dataId);
    if (d.strings) return d.strings;
    return this.addon.toBufferAsync(d.handle!);
  }

  override readSync(dataId: DataId): BackendValues {
    const d = this.data.get(dataId);
    if (d.strings) return d.strings;
    return this.addon.toBuffer(d.handle!);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const d = this.data.get(dataId);
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    if (d.handle) this.addon.dispose(d.handle);
    this.data.delete(dataId);
    return true;
  }

  override numDataIds(): number {
    return this.data.numDataIds();
  }

  override memory(): { unreliable: boolean; reasons?: string[]; liveHandles: number } {
    return { unreliable: false, liveHandles: this.addon.liveCount() };
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<BackendTimingInfo> {
    const start = performance.now();
    f();
    return { kernelMs: performance.now() - start };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
  }
}
