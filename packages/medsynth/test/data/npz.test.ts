import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inflateRawSync } from 'node:zlib';
import { dump } from 'npyjs';
import yazl from 'yazl';
import { loadNpz, medmnistFlagFromFileName } from '../../src/data/npz/load-npz.js';
import { fortranToC, openNpz, withNpz } from '../../src/data/npz/npz-reader.js';
import type { SourceListing } from '../../src/data/types.js';
import { DatasetError } from '../../src/runtime/errors.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
const BREAST = sharedData('medmnist', 'breastmnist_28_resaved.npz');

// ---------------------------------------------------------------------------------------------------------
// Independent helpers: a minimal zip reader (node:zlib only) and npz/npy writers (yazl, npyjs dump).
// ---------------------------------------------------------------------------------------------------------

/** Where `<name>`'s data lies in a zip, found without yauzl: EOCD → central directory → local header. */
function entryData(zip: Buffer, name: string): { start: number; compSize: number; method: number } {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(eocd >= 0, 'EOCD');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    assert.equal(zip.readUInt32LE(p), 0x02014b50);
    const method = zip.readUInt16LE(p + 10);
    const compSize = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    if (zip.toString('utf8', p + 46, p + 46 + nameLen) === name) {
      assert.equal(zip.readUInt32LE(local), 0x04034b50);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      return { start, compSize, method };
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`no ${name}`);
}

/** Bytes of `<name>` in a zip, inflated with node:zlib (independent of the code under test). */
function unzipEntry(zip: Buffer, name: string): Buffer {
  const { start, compSize, method } = entryData(zip, name);
  const raw = zip.subarray(start, start + compSize);
  return method === 8 ? inflateRawSync(raw) : Buffer.from(raw);
}

/** Data bytes of an npy (after its header). */
function npyData(npy: Buffer): Buffer {
  const major = npy[6];
  const off = major === 1 ? 10 + npy.readUInt16LE(8) : 12 + npy.readUInt32LE(8);
  return npy.subarray(off);
}

/** An npy file with a hand-written header (for Fortran order, big-endian…). */
function npyRaw(descr: string, shape: number[], data: Uint8Array, fortran = false): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${dims}), }`;
  const total = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

function npy(array: Parameters<typeof dump>[0], shape: number[], dtype?: Parameters<typeof dump>[2]): Buffer {
  return Buffer.from(dump(array, shape, dtype));
}

async function writeNpz(file: string, arrays: Record<string, Buffer>, compress = true): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const [key, buf] of Object.entries(arrays)) zip.addBuffer(buf, `${key}.npy`, { compress });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  await writeFile(file, Buffer.concat(chunks));
  return file;
}

/** Deterministic gray images: pixel (n, y, x) = (n * 37 + y * 11 + x * 3) & 0xff. */
function images(n: number, h: number, w: number, c?: 3): Buffer {
  const ch = c ?? 1;
  const out = new Uint8Array(n * h * w * ch);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < ch; k++)
          out[((i * h + y) * w + x) * ch + k] = (i * 37 + y * 11 + x * 3 + k * 50) & 0xff;
  return npy(out, c === undefined ? [n, h, w] : [n, h, w, c]);
}

function labels(values: number[], column = true): Buffer {
  return npy(new Uint8Array(values), column ? [values.length, 1] : [values.length]);
}

/** A valid small MedMNIST-layout npz (train 6, val 3, test 4; labels 0..2), with overrides. */
function layout(over: Record<string, Buffer | undefined> = {}): Record<string, Buffer> {
  const base: Record<string, Buffer | undefined> = {
    train_images: images(6, 5, 4),
    train_labels: labels([0, 1, 2, 0, 1, 2]),
    val_images: images(3, 5, 4),
    val_labels: labels([2, 1, 0]),
    test_images: images(4, 5, 4),
    test_labels: labels([1, 1, 0, 2]),
    ...over,
  };
  return Object.fromEntries(Object.entries(base).filter((e): e is [string, Buffer] => e[1] !== undefined));
}

function sum(data: ArrayLike<number>): number {
  let t = 0;
  for (let i = 0; i < data.length; i++) t += data[i] ?? 0;
  return t;
}

function countsBySplit(l: SourceListing): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const s of l.samples) {
    const key = s.split ?? 'none';
    const row = out[key] ?? new Array<number>(l.classNames.length).fill(0);
    row[s.label] = (row[s.label] ?? 0) + 1;
    out[key] = row;
  }
  return out;
}

/** Open descriptors of this process that point at `file` (Linux; -1 where /proc is absent). */
function openFds(file: string): number {
  try {
    return readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    }).length;
  } catch {
    return -1;
  }
}

function datasetError(pattern: RegExp, field?: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof DatasetError, `expected DatasetError, got ${String(e)}`);
    assert.match(e.message, pattern);
    if (field !== undefined) assert.equal(e.context.field, field);
    return true;
  };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-npz-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------

describe('loadNpz on the real MedMNIST files', () => {
  test('pneumoniamnist (labels (N,1)): counts per split × class, names, ids, notes', async () => {
    const l = await loadNpz(PNEUMONIA, {});
    assert.equal(l.format, 'npz');
    assert.equal(l.location, PNEUMONIA);
    assert.deepEqual(l.classNames, ['normal', 'pneumonia']);
    assert.deepEqual(countsBySplit(l), { train: [1214, 3494], val: [135, 389], test: [234, 390] });
    assert.equal(l.samples.length, 5856);
    assert.deepEqual(l.samples[0], { id: 'train[0]', label: 0, split: 'train' });
    assert.deepEqual(l.samples[4708 + 12], { id: 'val[12]', label: 1, split: 'val' });
    assert.deepEqual(l.samples[5855], { id: 'test[623]', label: 0, split: 'test' });
    assert.equal(l.labelSource, 'npz keys train_labels, val_labels, test_labels');
    assert.ok(
      l.notes.includes('labels shaped (N,1): train_labels, val_labels, test_labels'),
      l.notes.join('\n'),
    );
    assert.ok(l.notes.includes('split sizes equal the official pneumoniamnist ones'));
  });

  test('breastmnist (labels (N,)): counts per split × class, names, notes', async () => {
    const l = await loadNpz(BREAST, {});
    assert.deepEqual(l.classNames, ['malignant', 'normal, benign']);
    assert.deepEqual(countsBySplit(l), { train: [147, 399], val: [21, 57], test: [42, 114] });
    assert.ok(
      l.notes.some((n) => n.startsWith('labels shaped (N,) accepted') && n.includes('train_labels')),
      l.notes.join('\n'),
    );
  });

  test('read() matches numpy values and an independent inflate of the npy bytes', async () => {
    const l = await loadNpz(PNEUMONIA, {});
    // Values computed with numpy from the same file.
    const known: [number, number, number, number, number][] = [
      // index, sum, px[0,0], px[14,14], px[27,3]
      [0, 80212, 72, 168, 121],
      [4707, 114309, 60, 183, 165],
      [4708 + 12, 120249, 109, 180, 177],
      [4708 + 524 + 100, 112610, 35, 173, 175],
    ];
    for (const [i, total, p00, p1414, p273] of known) {
      const im = await l.read(i);
      assert.equal(im.width, 28);
      assert.equal(im.height, 28);
      assert.equal(im.channels, 1);
      assert.ok(im.data instanceof Uint8Array);
      assert.equal(im.data.length, 784);
      assert.equal(sum(im.data), total, `sum of sample ${i}`);
      assert.deepEqual([im.data[0], im.data[14 * 28 + 14], im.data[27 * 28 + 3]], [p00, p1414, p273]);
    }
    // Every val image equals the bytes inflated by the test's own zip reader.
    const valBytes = npyData(unzipEntry(await readFile(PNEUMONIA), 'val_images.npy'));
    assert.equal(valBytes.length, 524 * 784);
    for (let i = 0; i < 524; i++) {
      const im = await l.read(4708 + i);
      assert.ok(
        Buffer.from(im.data.buffer, im.data.byteOffset, im.data.byteLength).equals(
          valBytes.subarray(i * 784, (i + 1) * 784),
        ),
      );
    }
  });

  test('breastmnist read() spot-check', async () => {
    const l = await loadNpz(BREAST, {});
    const im = await l.read(546 + 12);
    assert.equal(sum(im.data), 52442);
    assert.deepEqual([im.data[0], im.data[14 * 28 + 14], im.data[27 * 28 + 3]], [146, 59, 14]);
  });

  test('out-of-range read rejects', async () => {
    const l = await loadNpz(BREAST, {});
    await assert.rejects(l.read(780), RangeError);
    await assert.rejects(l.read(-1), RangeError);
  });

  test('file handles are closed after loading, reading and failing', async (t) => {
    if (openFds(PNEUMONIA) < 0) return t.skip('no /proc/self/fd');
    const l = await loadNpz(PNEUMONIA, {});
    await Promise.all([l.read(0), l.read(1), l.read(5000), l.read(5855)]);
    assert.equal(openFds(PNEUMONIA), 0);
    const bad = await writeNpz(join(dir, 'fds.npz'), layout({ test_labels: undefined }));
    await assert.rejects(loadNpz(bad, {}), DatasetError);
    assert.equal(openFds(bad), 0);
  });
});

describe('npz reader', () => {
  test('lists keys and reads one array without touching the others', async () => {
    const keys = await withNpz(PNEUMONIA, async (npz) => {
      const lab = await npz.read('test_labels');
      assert.deepEqual(lab.shape, [624, 1]);
      assert.equal(lab.dtype, 'u1');
      const h = await npz.header('train_images');
      assert.deepEqual(h.shape, [4708, 28, 28]);
      assert.equal(h.fortranOrder, false);
      return npz.keys();
    });
    assert.deepEqual(keys, [
      'train_images',
      'train_labels',
      'val_images',
      'val_labels',
      'test_images',
      'test_labels',
    ]);
  });

  test('unknown key names the file and the keys present', async () => {
    const npz = await openNpz(BREAST);
    try {
      await assert.rejects(
        npz.read('nope'),
        datasetError(/no array "nope".*train_images, train_labels/, 'nope'),
      );
    } finally {
      await npz.close();
    }
    await npz.close(); // twice is fine
  });

  test('Fortran-order arrays come back in C order', async () => {
    const [n, h, w] = [2, 3, 4];
    const c = new Uint8Array(n * h * w).map((_, i) => i * 3);
    const f = new Uint8Array(c.length);
    for (let a = 0; a < n; a++)
      for (let b = 0; b < h; b++)
        for (let d = 0; d < w; d++) f[a + n * (b + h * d)] = c[(a * h + b) * w + d] as number;
    assert.deepEqual([...fortranToC(f, [n, h, w])], [...c]);
    const file = await writeNpz(
      join(dir, 'fortran.npz'),
      layout({ train_images: npyRaw('|u1', [6, 5, 4], fortranOf(6, 5, 4), true) }),
    );
    const l = await loadNpz(file, {});
    assert.ok(l.notes.some((x) => x.includes('train_images is stored in Fortran order')));
    const im = await l.read(2);
    assert.deepEqual([...im.data], [...expectedImage(2, 5, 4)]);
  });

  test('stored (uncompressed) entries, as np.savez writes them, load too', async () => {
    const file = await writeNpz(join(dir, 'stored.npz'), layout(), false);
    const l = await loadNpz(file, {});
    assert.deepEqual([...(await l.read(7)).data], [...expectedImage(1, 5, 4)]);
  });

  test('unsupported dtype and big-endian data are refused with the entry named', async () => {
    const boolLabels = writeNpz(
      join(dir, 'bool.npz'),
      layout({ train_labels: npy(new Uint8Array(6), [6, 1], { dtype: 'b1' }) }),
    );
    await assert.rejects(
      loadNpz(await boolLabels, {}),
      datasetError(/unsupported npy dtype.*found <b1/, 'train_labels'),
    );
    const be = await writeNpz(
      join(dir, 'be.npz'),
      layout({ train_labels: npyRaw('>u2', [6], new Uint8Array(12)) }),
    );
    await assert.rejects(loadNpz(be, {}), datasetError(/big-endian/, 'train_labels'));
    const f32 = await writeNpz(
      join(dir, 'f32img.npz'),
      layout({ train_images: npy(new Float32Array(6 * 20), [6, 5, 4]) }),
    );
    await assert.rejects(loadNpz(f32, {}), datasetError(/images must be uint8.*found f4/, 'train_images'));
  });
});

function expectedImage(i: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = (i * 37 + y * 11 + x * 3) & 0xff;
  return out;
}

function fortranOf(n: number, h: number, w: number): Uint8Array {
  const f = new Uint8Array(n * h * w);
  for (let a = 0; a < n; a++) {
    const img = expectedImage(a, h, w);
    for (let b = 0; b < h; b++) for (let d = 0; d < w; d++) f[a + n * (b + h * d)] = img[b * w + d] as number;
  }
  return f;
}

describe('loadNpz on synthetic files', () => {
  test('a valid small file: generic class names, RGB images, no val split', async () => {
    const file = await writeNpz(
      join(dir, 'mydata.npz'),
      layout({
        train_images: images(6, 5, 4, 3),
        test_images: images(4, 5, 4, 3),
        val_images: undefined,
        val_labels: undefined,
      }),
    );
    const l = await loadNpz(file, {});
    assert.deepEqual(l.classNames, ['0', '1', '2']);
    assert.deepEqual(countsBySplit(l), { train: [2, 2, 2], test: [1, 2, 1] });
    assert.deepEqual(l.samples[6], { id: 'test[0]', label: 1, split: 'test' });
    assert.ok(l.notes.some((n) => n.includes('no val_images/val_labels')));
    assert.ok(l.notes.some((n) => n.includes('matches no MedMNIST subset')));
    const im = await l.read(7); // test[1]
    assert.equal(im.channels, 3);
    assert.equal(im.data.length, 5 * 4 * 3);
    // pixel (y=2, x=1), channel 2 of image 1: (1*37 + 2*11 + 1*3 + 2*50) & 255
    assert.equal(im.data[(2 * 4 + 1) * 3 + 2], (37 + 22 + 3 + 100) & 0xff);
  });

  test('not a zip', async () => {
    const file = join(dir, 'text.npz');
    await writeFile(file, 'this is not a zip archive at all\n'.repeat(10));
    await assert.rejects(loadNpz(file, {}), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.ok(e.message.includes(file), e.message);
      assert.match(e.message, /not a zip archive.*end-of-central-directory/);
      return true;
    });
  });

  test('missing file', async () => {
    await assert.rejects(loadNpz(join(dir, 'absent.npz'), {}), datasetError(/absent\.npz: file not found/));
  });

  test('truncated npz (real file cut short)', async () => {
    const file = join(dir, 'truncated.npz');
    const bytes = await readFile(PNEUMONIA);
    await writeFile(file, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    await assert.rejects(
      loadNpz(file, {}),
      datasetError(/truncated\.npz: .*truncated: no end-of-central-directory/),
    );
  });

  test('missing key names the file, the key and the keys found', async () => {
    const file = await writeNpz(join(dir, 'nolabels.npz'), layout({ test_labels: undefined }));
    await assert.rejects(
      loadNpz(file, {}),
      datasetError(
        /nolabels\.npz \[test_labels\]: missing array "test_labels".*keys found: train_images, train_labels, val_images, val_labels, test_images/,
        'test_labels',
      ),
    );
    const halfVal = await writeNpz(join(dir, 'halfval.npz'), layout({ val_labels: undefined }));
    await assert.rejects(loadNpz(halfVal, {}), datasetError(/missing array "val_labels"/, 'val_labels'));
  });

  test('image/label count mismatch names both keys and counts', async () => {
    const file = await writeNpz(join(dir, 'mismatch.npz'), layout({ train_images: images(5, 5, 4) }));
    await assert.rejects(
      loadNpz(file, {}),
      datasetError(/train_images has 5, train_labels has 6/, 'train_images/train_labels'),
    );
  });

  test('multi-label labels are refused', async () => {
    const file = await writeNpz(
      join(dir, 'chest.npz'),
      layout({ train_labels: npy(new Uint8Array(6 * 3), [6, 3]) }),
    );
    await assert.rejects(
      loadNpz(file, {}),
      datasetError(/multi-label.*not supported.*found \(6, 3\)/, 'train_labels'),
    );
  });

  test('a class with zero images is named', async () => {
    const generic = await writeNpz(
      join(dir, 'gap.npz'),
      layout({
        train_labels: labels([0, 2, 2, 0, 2, 2]),
        val_labels: labels([2, 0, 0]),
        test_labels: labels([0, 2, 0, 2]),
      }),
    );
    await assert.rejects(loadNpz(generic, {}), datasetError(/class 1 \("1"\) has no images in any split/));
    const breast = await writeNpz(
      join(dir, 'breastmnist_onlybenign.npz'),
      layout({
        train_labels: labels([1, 1, 1, 1, 1, 1]),
        val_labels: labels([1, 1, 1]),
        test_labels: labels([1, 1, 1, 1]),
      }),
    );
    await assert.rejects(loadNpz(breast, {}), datasetError(/class 0 \("malignant"\) has no images/));
  });

  test('labels beyond the MedMNIST table, negative or fractional labels are refused', async () => {
    const tooBig = await writeNpz(join(dir, 'pneumoniamnist_bad.npz'), layout());
    await assert.rejects(
      loadNpz(tooBig, {}),
      datasetError(/label 2 is out of range for pneumoniamnist \(2 classes\)/, 'train_labels[2]'),
    );
    const neg = await writeNpz(
      join(dir, 'neg.npz'),
      layout({ train_labels: npy(new BigInt64Array([0n, 1n, 2n, -1n, 1n, 2n]), [6]) }),
    );
    await assert.rejects(
      loadNpz(neg, {}),
      datasetError(/not a non-negative integer.*found -1/, 'train_labels[3]'),
    );
    const frac = await writeNpz(
      join(dir, 'frac.npz'),
      layout({ val_labels: npy(new Float32Array([0, 1.5, 2]), [3, 1]) }),
    );
    await assert.rejects(loadNpz(frac, {}), datasetError(/found 1\.5/, 'val_labels[1]'));
    const wholeFloats = await writeNpz(
      join(dir, 'floats.npz'),
      layout({ val_labels: npy(new Float64Array([2, 1, 0]), [3]) }),
    );
    const l = await loadNpz(wholeFloats, {});
    assert.deepEqual(
      l.samples.slice(6, 9).map((s) => s.label),
      [2, 1, 0],
    );
    assert.ok(l.notes.includes('float labels with integer values accepted: val_labels'));
    assert.ok(
      l.notes.includes('labels shaped (N,) accepted (official MedMNIST files use (N,1)): val_labels'),
    );
  });

  test('an entry shorter than its npy header says', async () => {
    const short = npy(new Uint8Array(6 * 5 * 4 - 7), [6, 5, 4]); // header claims 120 bytes, 113 follow
    const file = await writeNpz(join(dir, 'short.npz'), layout({ train_images: short }));
    await assert.rejects(
      loadNpz(file, {}),
      datasetError(/shorter than its npy header says.*expected \d+ bytes, found \d+/, 'train_images'),
    );
    const shortLabels = await writeNpz(
      join(dir, 'shortlab.npz'),
      layout({ test_labels: npy(new Uint8Array(3), [4, 1]) }),
    );
    await assert.rejects(
      loadNpz(shortLabels, {}),
      datasetError(/shorter than its npy header says/, 'test_labels'),
    );
  });

  test('corrupt deflate data in an image entry fails on read, naming the entry', async () => {
    // Larger, varied images so the entry has a long compressed body to damage (after its header).
    const n = 60;
    const px = new Uint8Array(n * 32 * 32);
    let s = 12345;
    for (let i = 0; i < px.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      px[i] = (s >>> 24) & 0x3f;
    }
    const file = join(dir, 'corrupt.npz');
    await writeNpz(
      file,
      layout({
        train_images: npy(px, [n, 32, 32]),
        train_labels: labels(Array.from({ length: n }, (_, i) => i % 3)),
      }),
    );
    const bytes = await readFile(file);
    const { start, compSize, method } = entryData(bytes, 'train_images.npy');
    assert.equal(method, 8);
    assert.ok(compSize > 20000, `compressed size ${compSize}`);
    const from = Math.floor(compSize / 2);
    for (let i = from; i < from + 64; i++) bytes[start + i] = (bytes[start + i] ?? 0) ^ 0x5a;
    await writeFile(file, bytes);
    const l = await loadNpz(file, {}); // labels and the images header are intact
    assert.equal(l.samples.length, n + 3 + 4);
    await assert.rejects(l.read(0), datasetError(/corrupt/, 'train_images'));
    await assert.rejects(l.read(1), datasetError(/corrupt/, 'train_images')); // failure is not cached as success
    assert.deepEqual([...(await l.read(n)).data], [...expectedImage(0, 5, 4)]); // val is unaffected
    if (openFds(file) >= 0) assert.equal(openFds(file), 0);
  });

  test('a damaged byte in a stored (uncompressed) entry is caught by the CRC-32 check', async () => {
    const file = await writeNpz(join(dir, 'crc.npz'), layout(), false);
    const bytes = await readFile(file);
    const { start, method } = entryData(bytes, 'train_images.npy');
    assert.equal(method, 0);
    const at = start + 10 + bytes.readUInt16LE(start + 8) + 30; // pixel 30 of train[0], after the npy header
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(file, bytes);
    const l = await loadNpz(file, {});
    await assert.rejects(l.read(0), datasetError(/CRC-32 mismatch/, 'train_images'));
  });

  test('3D volumes and 4-channel images are refused', async () => {
    const vol = await writeNpz(
      join(dir, 'organmnist3d.npz'),
      layout({ train_images: npy(new Uint8Array(6 * 4 * 4 * 4), [6, 4, 4, 4]) }),
    );
    await assert.rejects(
      loadNpz(vol, {}),
      datasetError(/\(N,H,W\) or \(N,H,W,3\).*found \(6, 4, 4, 4\)/, 'train_images'),
    );
  });
});

describe('MedMNIST flag from file name', () => {
  test('detects the flag prefix', () => {
    assert.equal(medmnistFlagFromFileName('pneumoniamnist_28_reconstructed.npz'), 'pneumoniamnist');
    assert.equal(medmnistFlagFromFileName('BreastMNIST.npz'), 'breastmnist');
    assert.equal(medmnistFlagFromFileName('pathmnist_224.npz'), 'pathmnist');
    assert.equal(medmnistFlagFromFileName('organmnist3d.npz'), undefined);
    assert.equal(medmnistFlagFromFileName('mydata.npz'), undefined);
    assert.equal(medmnistFlagFromFileName('notmnist.npz'), undefined);
  });
});
