/**
 * Writing NumPy `.npz` archives (what `np.savez_compressed` writes: a zip of deflated `.npy` entries) with
 * bounded memory: an array can be streamed into its entry chunk by chunk (its shape must be known up front),
 * so a large synthetic set never has to sit in memory whole. Arrays are C order, little-endian.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';

/** npy dtypes this writer knows: element size in bytes. */
export const NPY_ITEM_SIZE = { '|u1': 1, '<i4': 4, '<f4': 4 } as const;
export type NpyDescr = keyof typeof NPY_ITEM_SIZE;

/** An npy (format 1.0) header for a C-order array; header + padding is a multiple of 64 bytes, as numpy writes it. */
export function npyHeader(descr: NpyDescr, shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + dict.length + 1;
  dict += `${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  if (dict.length > 0xffff) throw new RangeError('npy header too long');
  const out = new Uint8Array(10 + dict.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[10 + i] = dict.charCodeAt(i);
  return out;
}

/** A whole `.npy` file in memory. */
export function npyBytes(descr: NpyDescr, shape: readonly number[], data: ArrayBufferView): Uint8Array {
  const expected = shape.reduce((a, b) => a * b, 1) * NPY_ITEM_SIZE[descr];
  if (data.byteLength !== expected) {
    throw new RangeError(
      `npy data is ${data.byteLength} bytes, shape (${shape.join(', ')}) ${descr} needs ${expected}`,
    );
  }
  const header = npyHeader(descr, shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/** One array being streamed into the archive. */
export interface NpyStream {
  /** Appends data (C order); waits while the archive catches up. */
  write(chunk: ArrayBufferView): Promise<void>;
  /** Ends the entry; throws if fewer or more bytes than the shape needs were written. */
  end(): void;
}

/** A streaming `.npz` writer into `file` (created or truncated). Call `close()` to finish or `abort()`. */
export class NpzWriter {
  readonly file: string;
  readonly #zip = new yazl.ZipFile();
  readonly #done: Promise<void>;
  #failure: unknown;
  #open: PassThrough | undefined;

  constructor(file: string) {
    this.file = file;
    this.#done = pipeline(this.#zip.outputStream, createWriteStream(file));
    this.#done.catch((e: unknown) => {
      this.#failure ??= e;
    });
  }

  /** Adds a whole array. */
  addArray(key: string, descr: NpyDescr, shape: readonly number[], data: ArrayBufferView): void {
    this.#checkIdle(key);
    this.#zip.addBuffer(Buffer.from(npyBytes(descr, shape, data)), `${key}.npy`, { compress: true });
  }

  /** Starts an array whose data is written in chunks; `end()` it before adding another entry. */
  beginArray(key: string, descr: NpyDescr, shape: readonly number[]): NpyStream {
    this.#checkIdle(key);
    const expected = shape.reduce((a, b) => a * b, 1) * NPY_ITEM_SIZE[descr];
    const stream = new PassThrough();
    this.#open = stream;
    this.#zip.addReadStreamLazy(`${key}.npy`, { compress: true }, (cb) => cb(null, stream));
    stream.write(npyHeader(descr, shape));
    let written = 0;
    const failed = this.#done.then(
      () => {
        throw new Error('the archive closed while an entry was being written');
      },
      (e: unknown) => {
        throw e;
      },
    );
    failed.catch(() => undefined);
    return {
      write: async (chunk) => {
        if (this.#failure !== undefined) throw this.#failure;
        written += chunk.byteLength;
        if (written > expected) throw new RangeError(`npz entry ${key}: more data than its shape needs`);
        const ok = stream.write(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (!ok) await Promise.race([once(stream, 'drain'), failed]);
      },
      end: () => {
        if (written !== expected) {
          throw new RangeError(`npz entry ${key}: ${written} bytes written, its shape needs ${expected}`);
        }
        stream.end();
        this.#open = undefined;
      },
    };
  }

  /** Finishes the archive and waits until the file is written and closed. */
  async close(): Promise<void> {
    if (this.#open) throw new Error('npz: an entry is still open');
    this.#zip.end();
    await this.#done;
  }

  /** Stops writing (the file is left incomplete: delete it). Never throws. */
  async abort(): Promise<void> {
    const err = new Error('npz writing aborted');
    this.#open?.destroy(err);
    (this.#zip.outputStream as Readable).destroy(err);
    await this.#done.catch(() => undefined);
  }

  #checkIdle(key: string): void {
    if (this.#open) throw new Error(`npz: cannot add ${key} while another entry is open`);
  }
}
