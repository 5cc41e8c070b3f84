/**
 * Random-access reader for NumPy `.npz` archives (a zip of `.npy` files, as written by `np.savez` /
 * `np.savez_compressed`). Entries are only inflated when asked for: `header(key)` inflates just the first
 * bytes of an entry (the npy header), `read(key)` the whole entry. Every problem is a `DatasetError` naming
 * the file and the entry. Always `close()` the reader (or use `withNpz`), which waits until the file
 * descriptor is closed.
 */
import * as zlib from 'node:zlib';
import { parse as parseNpy } from 'npyjs';
import yauzl from 'yauzl';
import { DatasetError, type ErrorContext } from '../../runtime/errors.js';

/** The npy element types this reader decodes (little-endian or byte-sized). */
export const SUPPORTED_DTYPES = ['u1', 'i1', 'u2', 'i2', 'u4', 'i4', 'u8', 'i8', 'f4', 'f8'] as const;
export type NpyDtype = (typeof SUPPORTED_DTYPES)[number];

export type NpyData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** What an npy header declares. */
export interface NpyHeader {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  /** The stored order; arrays returned by `read` are always C order (row-major). */
  readonly fortranOrder: boolean;
  /** Byte offset of the data inside the `.npy` entry. */
  readonly dataOffset: number;
  /** Bytes of array data the header calls for (element count × item size). */
  readonly dataBytes: number;
}

/** A decoded array, always in C (row-major) order, with exactly `product(shape)` elements. */
export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  readonly data: NpyData;
  /** True when the entry was stored in Fortran order and has been transposed to C order. */
  readonly convertedFromFortran: boolean;
}

const ITEM_SIZE: Record<NpyDtype, number> = {
  u1: 1,
  i1: 1,
  u2: 2,
  i2: 2,
  u4: 4,
  i4: 4,
  u8: 8,
  i8: 8,
  f4: 4,
  f8: 8,
};

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** An npy header larger than this is not a real header (numpy caps it far lower in practice). */
const MAX_HEADER_BYTES = 1 << 20;

/** Opens an `.npz` archive and reads its central directory (no entry is inflated). */
export async function openNpz(file: string): Promise<NpzReader> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true });
  } catch (e) {
    throw openError(file, e);
  }
  const entries = new Map<string, yauzl.Entry>();
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue;
      const key = entry.fileName.endsWith('.npy') ? entry.fileName.slice(0, -4) : entry.fileName;
      entries.set(key, entry);
    }
  } catch (e) {
    await closeZip(zip);
    throw new DatasetError(`corrupt zip central directory: ${errorMessage(e)}`, { file, cause: e });
  }
  return new NpzReader(file, zip, entries);
}

/** Opens `file`, runs `fn` and closes the archive whatever happens. */
export async function withNpz<T>(file: string, fn: (npz: NpzReader) => Promise<T>): Promise<T> {
  const npz = await openNpz(file);
  try {
    return await fn(npz);
  } finally {
    await npz.close();
  }
}

export class NpzReader {
  readonly file: string;
  readonly #zip: yauzl.ZipFile;
  readonly #entries: ReadonlyMap<string, yauzl.Entry>;

  /** Use `openNpz`. */
  constructor(file: string, zip: yauzl.ZipFile, entries: ReadonlyMap<string, yauzl.Entry>) {
    this.file = file;
    this.#zip = zip;
    this.#entries = entries;
  }

  /** Array names in archive order (`train_images`, … — the `.npy` suffix removed). */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Reads and validates the npy header of `key`, inflating only the first bytes of the entry. */
  async header(key: string): Promise<NpyHeader> {
    const entry = this.#entry(key);
    const ctx: ErrorContext = { file: this.file, field: key };
    const stream = await this.#openStream(entry, key);
    // Flowing mode, not an async iterator: bytes inflated before a later corruption must still count
    // (the corruption is reported by `read`, which checks the whole entry).
    const { head, need } = await new Promise<{ head: Buffer; need: number }>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let have = 0;
      let need = 12; // long enough for the fixed part of any npy version
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        stream.destroy();
        const head = Buffer.concat(chunks);
        if (err !== undefined && head.length < need) reject(inflateError(ctx, err));
        else resolve({ head, need });
      };
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        have += chunk.length;
        if (have < need) return;
        try {
          const fixed = parseFixedPreamble(Buffer.concat(chunks), ctx);
          need = fixed.headerOffset + fixed.headerLen;
        } catch (e) {
          settled = true;
          stream.destroy();
          reject(e);
          return;
        }
        if (have >= need) finish();
      });
      stream.on('error', (e) => finish(e));
      stream.on('end', () => finish());
    });
    if (head.length < need) {
      throw new DatasetError('entry ends inside its npy header', {
        ...ctx,
        expected: `at least ${need} bytes`,
        found: `${head.length}`,
      });
    }
    const header = parseNpyHeader(head, ctx);
    checkEntrySize(header, entry.uncompressedSize, ctx);
    return header;
  }

  /** Inflates and decodes the whole array `key` (checking the entry's CRC-32). */
  async read(key: string): Promise<NpyArray> {
    const entry = this.#entry(key);
    const ctx: ErrorContext = { file: this.file, field: key };
    const size = entry.uncompressedSize;
    let buf: ArrayBuffer;
    try {
      buf = new ArrayBuffer(size);
    } catch (e) {
      throw new DatasetError(`entry too large to load into memory (${size} bytes)`, { ...ctx, cause: e });
    }
    const bytes = new Uint8Array(buf);
    const stream = await this.#openStream(entry, key);
    let pos = 0;
    let crc = 0;
    // zlib.crc32 exists from Node 20.15; on older 20.x the CRC check is skipped (sizes are still checked).
    const crc32 = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (pos + chunk.length > size) throw new Error(`more than the ${size} bytes the zip directory lists`);
        bytes.set(chunk, pos);
        pos += chunk.length;
        if (crc32 !== undefined) crc = crc32(chunk, crc);
      }
    } catch (e) {
      throw inflateError(ctx, e);
    } finally {
      stream.destroy();
    }
    if (pos !== size) {
      throw new DatasetError('entry is truncated', { ...ctx, expected: `${size} bytes`, found: `${pos}` });
    }
    if (crc32 !== undefined && crc >>> 0 !== entry.crc32 >>> 0) {
      throw new DatasetError('entry data is corrupt (CRC-32 mismatch)', {
        ...ctx,
        expected: hex32(entry.crc32),
        found: hex32(crc),
      });
    }
    const header = parseNpyHeader(bytes, ctx);
    checkEntrySize(header, size, ctx);
    return decodeNpy(buf, header, ctx);
  }

  /** Closes the archive; resolves once the file descriptor is closed. Safe to call twice. */
  async close(): Promise<void> {
    await closeZip(this.#zip);
  }

  #entry(key: string): yauzl.Entry {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      throw new DatasetError(`no array "${key}" in the archive (keys: ${this.keys().join(', ') || 'none'})`, {
        file: this.file,
        field: key,
      });
    }
    return entry;
  }

  async #openStream(entry: yauzl.Entry, key: string) {
    try {
      return await this.#zip.openReadStreamPromise(entry);
    } catch (e) {
      throw new DatasetError(`cannot read entry: ${errorMessage(e)}`, {
        file: this.file,
        field: key,
        cause: e,
      });
    }
  }
}

/** Parses and validates an npy header (magic, version, dtype, order, shape) from the entry's first bytes. */
export function parseNpyHeader(bytes: Uint8Array, ctx: ErrorContext): NpyHeader {
  const { headerOffset, headerLen } = parseFixedPreamble(bytes, ctx);
  if (bytes.length < headerOffset + headerLen) {
    throw new DatasetError('entry ends inside its npy header', {
      ...ctx,
      expected: `at least ${headerOffset + headerLen} bytes`,
      found: `${bytes.length}`,
    });
  }
  const text = new TextDecoder('latin1').decode(bytes.subarray(headerOffset, headerOffset + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  if (descr === undefined) {
    throw new DatasetError('unsupported npy dtype (structured or unreadable descr)', {
      ...ctx,
      expected: `one of ${SUPPORTED_DTYPES.join(', ')}`,
      found: /'descr'\s*:\s*([^,}]*)/.exec(text)?.[1]?.trim() ?? 'no descr',
    });
  }
  const dtype = parseDescr(descr, ctx);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (fortran === undefined || shapeText === undefined) {
    throw new DatasetError('malformed npy header', { ...ctx, found: JSON.stringify(text.trim()) });
  }
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const t = part.trim().replace(/L$/, '');
    if (t === '') continue;
    if (!/^\d+$/.test(t)) throw new DatasetError('malformed npy shape', { ...ctx, found: `(${shapeText})` });
    shape.push(Number(t));
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const dataBytes = count * ITEM_SIZE[dtype];
  if (!Number.isSafeInteger(dataBytes)) {
    throw new DatasetError('npy shape too large', { ...ctx, found: `(${shape.join(', ')})` });
  }
  return { dtype, shape, fortranOrder: fortran === 'True', dataOffset: headerOffset + headerLen, dataBytes };
}

function parseFixedPreamble(
  bytes: Uint8Array,
  ctx: ErrorContext,
): { headerOffset: number; headerLen: number } {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new DatasetError('entry is not an .npy array (bad magic)', ctx);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = view.getUint8(6);
  if (major === 1) return { headerOffset: 10, headerLen: view.getUint16(8, true) };
  if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new DatasetError('entry ends inside its npy header', ctx);
    const headerLen = view.getUint32(8, true);
    if (headerLen > MAX_HEADER_BYTES) {
      throw new DatasetError('npy header length is implausible', { ...ctx, found: `${headerLen} bytes` });
    }
    return { headerOffset: 12, headerLen };
  }
  throw new DatasetError('unsupported npy format version', {
    ...ctx,
    expected: '1.x, 2.x or 3.x',
    found: `${major}`,
  });
}

function parseDescr(descr: string, ctx: ErrorContext): NpyDtype {
  const m = /^([<>|=]?)([a-zA-Z]\d+)$/.exec(descr);
  const order = m?.[1] ?? '';
  const code = m?.[2];
  const dtype = SUPPORTED_DTYPES.find((d) => d === code);
  if (dtype === undefined) {
    throw new DatasetError('unsupported npy dtype', {
      ...ctx,
      expected: `one of ${SUPPORTED_DTYPES.join(', ')}`,
      found: descr,
    });
  }
  if (order === '>' && ITEM_SIZE[dtype] > 1) {
    throw new DatasetError('big-endian npy data is not supported', {
      ...ctx,
      expected: `<${dtype}`,
      found: descr,
    });
  }
  return dtype;
}

function checkEntrySize(header: NpyHeader, entryBytes: number, ctx: ErrorContext): void {
  const need = header.dataOffset + header.dataBytes;
  if (entryBytes < need) {
    throw new DatasetError(
      `entry is shorter than its npy header says (shape (${header.shape.join(', ')}), dtype ${header.dtype})`,
      { ...ctx, expected: `${need} bytes`, found: `${entryBytes}` },
    );
  }
}

function decodeNpy(buf: ArrayBuffer, header: NpyHeader, ctx: ErrorContext): NpyArray {
  const itemSize = ITEM_SIZE[header.dtype];
  if (header.dataOffset % itemSize !== 0) {
    throw new DatasetError('npy data is not aligned to its item size', {
      ...ctx,
      expected: `offset multiple of ${itemSize}`,
      found: `${header.dataOffset}`,
    });
  }
  let parsed: ReturnType<typeof parseNpy>;
  try {
    parsed = parseNpy(buf, { convertFloat16: false });
  } catch (e) {
    throw new DatasetError(`cannot decode npy data: ${errorMessage(e)}`, { ...ctx, cause: e });
  }
  const count = header.dataBytes / itemSize;
  // npyjs views everything after the header; keep exactly the elements the shape calls for.
  let data = (parsed.data as NpyData).subarray(0, count) as NpyData;
  if (data.length !== count) {
    throw new DatasetError('npy data is shorter than its shape', {
      ...ctx,
      expected: `${count} elements`,
      found: `${data.length}`,
    });
  }
  const convertedFromFortran = header.fortranOrder && header.shape.length > 1;
  if (convertedFromFortran) data = fortranToC(data, header.shape);
  return { dtype: header.dtype, shape: header.shape, data, convertedFromFortran };
}

/** Reorders a column-major (Fortran) array into row-major (C) order. */
export function fortranToC<T extends NpyData>(src: T, shape: readonly number[]): T {
  const ctor = src.constructor as new (n: number) => T;
  const out = new ctor(src.length);
  const nd = shape.length;
  // Fortran strides: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
  const stride: number[] = [];
  let s = 1;
  for (let k = 0; k < nd; k++) {
    stride.push(s);
    s *= shape[k] ?? 1;
  }
  const idx = new Array<number>(nd).fill(0);
  let fOffset = 0;
  for (let c = 0; c < src.length; c++) {
    out[c] = src[fOffset] as T[number];
    // Advance the C-order odometer (last axis fastest), tracking the Fortran offset incrementally.
    for (let k = nd - 1; k >= 0; k--) {
      const dim = shape[k] ?? 1;
      const st = stride[k] ?? 0;
      const v = (idx[k] ?? 0) + 1;
      if (v < dim) {
        idx[k] = v;
        fOffset += st;
        break;
      }
      idx[k] = 0;
      fOffset -= (dim - 1) * st;
    }
  }
  return out;
}

function openError(file: string, e: unknown): DatasetError {
  const msg = errorMessage(e);
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new DatasetError('file not found', { file, cause: e });
  if (code !== undefined && /^E[A-Z]+$/.test(code)) {
    return new DatasetError(`cannot open file: ${msg}`, { file, cause: e });
  }
  if (/end of central directory record signature not found/i.test(msg)) {
    return new DatasetError(
      'not a zip archive (.npz), or the file is truncated: no end-of-central-directory record found',
      { file, cause: e },
    );
  }
  return new DatasetError(`not a readable zip archive (.npz): ${msg}`, { file, cause: e });
}

function inflateError(ctx: ErrorContext, e: unknown): DatasetError {
  if (e instanceof DatasetError) return e;
  return new DatasetError(`entry is corrupt, failed to inflate: ${errorMessage(e)}`, { ...ctx, cause: e });
}

async function closeZip(zip: yauzl.ZipFile): Promise<void> {
  if (!zip.isOpen) return;
  await new Promise<void>((resolve) => {
    zip.once('close', () => resolve());
    // An error closing the descriptor leaves nothing to retry; do not let it crash the process.
    zip.once('error', () => resolve());
    zip.close();
  });
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
