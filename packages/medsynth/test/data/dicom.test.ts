/**
 * DICOM decoding and loading. Real files come from ../shared/data/dicom (never copied into the repo); edge
 * cases are built here with a minimal DICOM writer (Part 10 meta header + explicit/implicit data set).
 *
 * Independent references used:
 * - CT_small.dcm and MR_small.dcm stored values at fixed positions from pydicom's pixel reference table
 *   (tests/pixels/pixels_reference.py, EXPL_16_16_1F and EXPL_16_1_1F), and the raw PixelData bytes read
 *   here with dicom-parser, windowed with this file's own implementation of PS3.3 C.11.2.1.2;
 * - JPEG2000.dcm: pydicom asserts its decoded array equals JPEG2000_UNC.dcm (the uncompressed original);
 *   the sums and samples below were computed with numpy from JPEG2000_UNC.dcm's raw little-endian bytes.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { checkDicomWindow, decodeDicom, isDicomFile, windowValue } from '../../src/data/dicom/decode.js';
import { loadDicom } from '../../src/data/dicom/load-dicom.js';
import type { DicomWindow, RawImage } from '../../src/data/types.js';
import { ConfigError, DatasetError, UnsupportedFormatError } from '../../src/runtime/errors.js';
import { sharedData } from '../helpers/shared-data.js';

const CR = sharedData('dicom', 'CR-MONO1-10-chest.dcm');
const CT = sharedData('dicom', 'CT_small.dcm');
const MR = sharedData('dicom', 'MR_small.dcm');
const JLL = sharedData('dicom', 'IM-0001-0001-0001.dcm');
const J2K = sharedData('dicom', 'JPEG2000.dcm');

const bytesOf = async (file: string): Promise<Uint8Array> => new Uint8Array(await readFile(file));

async function decodeFile(file: string, window?: DicomWindow, bitDepth?: 8 | 16) {
  return decodeDicom(await bytesOf(file), file, { window, bitDepth });
}

/**
 * A window under which the 16-bit output is modality value + offset, exactly: with w − 1 = 65535 the LINEAR
 * function gives y = x − c + 32768, so c = 32768 − offset. Lets the tests read modality values back.
 */
const identity = (offset: number): DicomWindow => ({ center: 32768 - offset, width: 65536 });

async function modalityValues(
  file: string | Uint8Array,
  offset = 4096,
): Promise<{ values: number[]; image: RawImage }> {
  const bytes = typeof file === 'string' ? await bytesOf(file) : file;
  const { image } = await decodeDicom(bytes, 'test.dcm', { window: identity(offset), bitDepth: 16 });
  return { values: Array.from(image.data, (y) => y - offset), image };
}

/** This test's own PS3.3 C.11.2.1.2.1 LINEAR function, rounded. */
function linear(x: number, c: number, w: number, ymax: number): number {
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return ymax;
  return Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * ymax);
}

async function rejects(
  p: Promise<unknown>,
  type: new (...a: never[]) => Error,
  pattern: RegExp,
): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, pattern);
    return e as Error;
  }
  assert.fail(`expected ${type.name}`);
}

function minOf(values: ArrayLike<number>): number {
  let m = Number.POSITIVE_INFINITY;
  for (let i = 0; i < values.length; i++) if (values[i]! < m) m = values[i]!;
  return m;
}

function maxOf(values: ArrayLike<number>): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) if (values[i]! > m) m = values[i]!;
  return m;
}

function mean(
  values: ArrayLike<number>,
  width: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
): number {
  let s = 0;
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) s += values[r * width + c]!;
  return s / ((r1 - r0) * (c1 - c0));
}

// ---------------------------------------------------------------------------------------------------------
// A minimal DICOM writer for edge cases
// ---------------------------------------------------------------------------------------------------------

type Value = string | readonly number[] | Uint8Array;
interface El {
  readonly tag: number;
  readonly vr: string;
  readonly value: Value;
}
const el = (tag: number, vr: string, value: Value): El => ({ tag, vr, value });
const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function valueBytes(e: El, be: boolean): Uint8Array {
  if (typeof e.value === 'string') {
    let s = e.value;
    if (s.length % 2 === 1) s += e.vr === 'UI' ? '\0' : ' ';
    return new Uint8Array(Buffer.from(s, 'latin1'));
  }
  if (e.value instanceof Uint8Array)
    return e.value.length % 2 ? concat([e.value, new Uint8Array(1)]) : e.value;
  const size = e.vr === 'UL' || e.vr === 'SL' ? 4 : 2;
  const out = new Uint8Array(e.value.length * size);
  const view = new DataView(out.buffer);
  e.value.forEach((v, i) => {
    if (size === 4) view.setUint32(i * 4, v >>> 0, !be);
    else view.setUint16(i * 2, v & 0xffff, !be);
  });
  return out;
}

function encode(elements: readonly El[], opts: { explicit?: boolean; be?: boolean } = {}): Uint8Array {
  const explicit = opts.explicit ?? true;
  const be = opts.be ?? false;
  const parts: Uint8Array[] = [];
  for (const e of [...elements].sort((a, b) => a.tag - b.tag)) {
    const value = valueBytes(e, be);
    const long = LONG_VRS.has(e.vr);
    const head = new Uint8Array(explicit ? (long ? 12 : 8) : 8);
    const v = new DataView(head.buffer);
    v.setUint16(0, e.tag >>> 16, !be);
    v.setUint16(2, e.tag & 0xffff, !be);
    if (!explicit) v.setUint32(4, value.length, !be);
    else {
      head[4] = e.vr.charCodeAt(0);
      head[5] = e.vr.charCodeAt(1);
      if (long) v.setUint32(8, value.length, !be);
      else v.setUint16(6, value.length, !be);
    }
    parts.push(head, value);
  }
  return concat(parts);
}

/** Encapsulated Pixel Data (explicit VR LE): empty offset table, one fragment per frame, delimiter. */
function encapsulated(frames: readonly Uint8Array[]): Uint8Array {
  const item = (data: Uint8Array): Uint8Array => {
    const padded = data.length % 2 ? concat([data, new Uint8Array(1)]) : data;
    const head = new Uint8Array(8);
    const v = new DataView(head.buffer);
    v.setUint16(0, 0xfffe, true);
    v.setUint16(2, 0xe000, true);
    v.setUint32(4, padded.length, true);
    return concat([head, padded]);
  };
  const head = new Uint8Array([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const delimiter = new Uint8Array([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return concat([head, item(new Uint8Array(0)), ...frames.map(item), delimiter]);
}

function part10(transferSyntax: string, dataset: Uint8Array): Uint8Array {
  const meta = encode([
    el(0x00020001, 'OB', new Uint8Array([0, 1])),
    el(0x00020002, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
    el(0x00020003, 'UI', '1.2.826.0.1.3680043.2.1125.1'),
    el(0x00020010, 'UI', transferSyntax),
    el(0x00020012, 'UI', '1.2.826.0.1.3680043.2.1125'),
  ]);
  const groupLength = encode([el(0x00020000, 'UL', [meta.length])]);
  return concat([new Uint8Array(128), new Uint8Array(Buffer.from('DICM')), groupLength, meta, dataset]);
}

interface ImageSpec {
  readonly rows: number;
  readonly cols: number;
  readonly photometric: string;
  readonly bitsAllocated: number;
  readonly spp?: number;
  readonly bitsStored?: number;
  readonly pixelRepresentation?: number;
  readonly planar?: number;
  readonly frames?: number;
  readonly extra?: readonly El[];
}

function imageElements(s: ImageSpec): El[] {
  const bs = s.bitsStored ?? s.bitsAllocated;
  return [
    el(0x00080060, 'CS', 'OT'),
    el(0x00280002, 'US', [s.spp ?? 1]),
    el(0x00280004, 'CS', s.photometric),
    ...((s.spp ?? 1) === 3 ? [el(0x00280006, 'US', [s.planar ?? 0])] : []),
    ...(s.frames !== undefined ? [el(0x00280008, 'IS', String(s.frames))] : []),
    el(0x00280010, 'US', [s.rows]),
    el(0x00280011, 'US', [s.cols]),
    el(0x00280100, 'US', [s.bitsAllocated]),
    el(0x00280101, 'US', [bs]),
    el(0x00280102, 'US', [bs - 1]),
    el(0x00280103, 'US', [s.pixelRepresentation ?? 0]),
    ...(s.extra ?? []),
  ];
}

function sampleBytes(words: readonly number[], bitsAllocated: number, be = false): Uint8Array {
  const size = bitsAllocated / 8;
  const out = new Uint8Array(words.length * size);
  const view = new DataView(out.buffer);
  words.forEach((w, i) => {
    if (size === 1) out[i] = w & 0xff;
    else if (size === 2) view.setUint16(i * 2, w & 0xffff, !be);
    else view.setUint32(i * 4, w >>> 0, !be);
  });
  return out;
}

/** A native (uncompressed) file: explicit VR LE by default, or big endian / implicit. */
function nativeFile(
  s: ImageSpec,
  words: readonly number[],
  opts: { be?: boolean; explicit?: boolean; transferSyntax?: string } = {},
): Uint8Array {
  const be = opts.be ?? false;
  const vr = s.bitsAllocated === 8 ? 'OB' : 'OW';
  const ds = encode([...imageElements(s), el(0x7fe00010, vr, sampleBytes(words, s.bitsAllocated, be))], opts);
  const ts =
    opts.transferSyntax ??
    (be ? '1.2.840.10008.1.2.2' : opts.explicit === false ? '1.2.840.10008.1.2' : '1.2.840.10008.1.2.1');
  return part10(ts, ds);
}

function compressedFile(s: ImageSpec, transferSyntax: string, frames: readonly Uint8Array[]): Uint8Array {
  return part10(transferSyntax, concat([encode(imageElements(s)), encapsulated(frames)]));
}

/** PackBits as PS3.5 G.3.1 describes it: literal runs (n ≥ 0) and replicate runs (n < 0). */
function packBits(src: Uint8Array): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < src.length) {
    let run = 1;
    while (i + run < src.length && run < 128 && src[i + run] === src[i]) run++;
    if (run >= 3) {
      out.push(257 - run, src[i]!);
      i += run;
      continue;
    }
    const literal: number[] = [];
    while (i < src.length && literal.length < 128) {
      if (i + 2 < src.length && src[i] === src[i + 1] && src[i] === src[i + 2]) break;
      literal.push(src[i]!);
      i++;
    }
    out.push(literal.length - 1, ...literal);
  }
  return out;
}

/** One RLE Lossless frame: per sample, per byte (most significant first), a PackBits segment. */
function rleFrame(words: readonly number[], spp: number, bitsAllocated: number): Uint8Array {
  const bytes = bitsAllocated / 8;
  const pixels = words.length / spp;
  const segments: Uint8Array[] = [];
  for (let s = 0; s < spp; s++) {
    for (let b = bytes - 1; b >= 0; b--) {
      const plane = new Uint8Array(pixels);
      for (let p = 0; p < pixels; p++) plane[p] = (words[p * spp + s]! >>> (8 * b)) & 0xff;
      const seg = packBits(plane);
      if (seg.length % 2) seg.push(128); // pad with a no-op
      segments.push(new Uint8Array(seg));
    }
  }
  const header = new Uint8Array(64);
  const view = new DataView(header.buffer);
  view.setUint32(0, segments.length, true);
  let offset = 64;
  segments.forEach((seg, i) => {
    view.setUint32(4 + 4 * i, offset, true);
    offset += seg.length;
  });
  return concat([header, ...segments]);
}

const gradient = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

// ---------------------------------------------------------------------------------------------------------

describe('isDicomFile', () => {
  it('recognises Part 10 files and legacy data sets, and nothing else', async () => {
    assert.equal(isDicomFile(await bytesOf(CT)), true);
    assert.equal(isDicomFile(await bytesOf(JLL)), true);
    assert.equal(isDicomFile(await bytesOf(CR)), true, 'legacy implicit VR LE file without preamble');
    assert.equal(isDicomFile((await bytesOf(CR)).subarray(0, 132)), true, 'first bytes suffice');
    assert.equal(isDicomFile(new Uint8Array(Buffer.from('path,label\na.dcm,1\n'))), false);
    const png = await sharp(new Uint8Array(16), { raw: { width: 4, height: 4, channels: 1 } })
      .png()
      .toBuffer();
    assert.equal(isDicomFile(new Uint8Array(png)), false);
    assert.equal(isDicomFile(new Uint8Array(0)), false);
    assert.equal(isDicomFile(new Uint8Array(200)), false, 'zeros: no DICM and no group 0008');
  });
});

describe('decodeDicom on real files', () => {
  it('CT_small: stored values match pydicom and the raw bytes; rescale and windowing follow PS3.3', async () => {
    const bytes = await bytesOf(CT);
    // Independent read of the raw pixel data.
    const ds = dicomParser.parseDicom(bytes);
    const pixel = ds.elements.x7fe00010!;
    const raw = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, pixel.length);
    const stored = (r: number, c: number): number => raw.getInt16((r * 128 + c) * 2, true);
    // pydicom's reference values (stored, before rescale).
    assert.deepEqual(
      [36, 37, 38, 39].map((c) => stored(24, c)),
      [520, 802, 930, 1008],
    );
    assert.deepEqual(
      [40, 41, 42, 43, 44].map((r) => stored(r, 40)),
      [1138, 1165, 1113, 1088, 1072],
    );
    assert.equal(ds.string('x00281052'), '-1024');

    const { values, image } = await modalityValues(bytes);
    assert.equal(image.width, 128);
    assert.equal(image.height, 128);
    assert.equal(image.channels, 1);
    assert.ok(image.data instanceof Uint16Array);
    for (let i = 0; i < 128 * 128; i++) {
      if (values[i] !== raw.getInt16(i * 2, true) - 1024) assert.fail(`modality value ${i}`);
    }

    // A soft-tissue window computed here from the raw bytes, 8 and 16 bits.
    for (const [bitDepth, ymax] of [
      [8, 255],
      [16, 65535],
    ] as const) {
      const { image: w, meta } = await decodeDicom(bytes, CT, {
        window: { center: 40, width: 400 },
        bitDepth,
      });
      assert.deepEqual(meta.window, { center: 40, width: 400, source: 'user', function: 'LINEAR' });
      let mismatches = 0;
      for (let i = 0; i < 128 * 128; i++) {
        if (w.data[i] !== linear(raw.getInt16(i * 2, true) - 1024, 40, 400, ymax)) mismatches++;
      }
      assert.equal(mismatches, 0, `${bitDepth}-bit window`);
    }

    // No window in the file: auto = min–max, which maps the extremes exactly to 0 and 255.
    const auto = await decodeFile(CT);
    assert.equal(auto.meta.window?.source, 'minmax');
    assert.deepEqual(auto.meta.valueRange, { min: -896, max: 1167 });
    assert.equal(minOf(auto.image.data), 0);
    assert.equal(maxOf(auto.image.data), 255);
    assert.deepEqual(auto.meta.rescale, { slope: 1, intercept: -1024 });
    assert.equal(auto.meta.transferSyntaxUid, '1.2.840.10008.1.2.1');
    assert.equal(auto.meta.transferSyntaxName, 'Explicit VR Little Endian');
    assert.equal(auto.meta.modality, 'CT');
    assert.equal(auto.meta.inverted, false);
    assert.equal(auto.meta.frames, 1);
  });

  it("MR_small: the file's window (600/1600) is used by default", async () => {
    const { values, image } = await modalityValues(MR);
    assert.equal(image.width, 64);
    assert.equal(image.height, 64);
    // pydicom's reference values (no rescale in this file).
    assert.deepEqual(values.slice(31, 34), [422, 319, 361]);
    assert.deepEqual(values.slice(31 * 64, 31 * 64 + 3), [366, 363, 322]);
    assert.deepEqual(values.slice(-3), [1369, 1129, 862]);

    const { image: out, meta } = await decodeFile(MR);
    assert.deepEqual(meta.window, { center: 600, width: 1600, function: 'LINEAR', source: 'file' });
    assert.deepEqual(
      Array.from(out.data),
      values.map((v) => linear(v, 600, 1600, 255)),
    );
    const minmax = await decodeFile(MR, 'minmax');
    assert.equal(minmax.meta.window?.source, 'minmax');
    assert.equal(minOf(minmax.image.data), 0);
    assert.equal(maxOf(minmax.image.data), 255);
  });

  it('CR-MONO1-10-chest (legacy, MONOCHROME1): inverted after windowing; bones bright, lungs dark', async () => {
    const bytes = await bytesOf(CR);
    const { image, meta } = await decodeDicom(bytes, CR, {});
    assert.equal(image.width, 440);
    assert.equal(image.height, 440);
    assert.equal(meta.photometric, 'MONOCHROME1');
    assert.equal(meta.inverted, true);
    assert.equal(meta.legacy, true);
    assert.equal(meta.transferSyntaxUid, '1.2.840.10008.1.2');
    assert.equal(meta.bitsStored, 10);
    assert.deepEqual(meta.window, { center: 550, width: 1024, function: 'LINEAR', source: 'file' });
    assert.ok(meta.notes.some((n) => n.includes('MONOCHROME1 inverted')));

    // Independent: raw 16-bit words masked to 10 bits, windowed with the file's values, then inverted.
    const ds = dicomParser.parseDicom(bytes, { TransferSyntaxUID: '1.2.840.10008.1.2' });
    const pixel = ds.elements.x7fe00010!;
    const raw = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, pixel.length);
    let mismatches = 0;
    for (let i = 0; i < 440 * 440; i++) {
      const expected = 255 - linear(raw.getUint16(i * 2, true) & 0x3ff, 550, 1024, 255);
      if (image.data[i] !== expected) mismatches++;
    }
    assert.equal(mismatches, 0);

    // Anatomy: the mediastinum/spine strip is brighter than both lung fields.
    const mediastinum = mean(image.data, 440, 120, 300, 200, 240);
    const rightLung = mean(image.data, 440, 120, 300, 80, 150);
    const leftLung = mean(image.data, 440, 120, 300, 290, 360);
    assert.ok(
      mediastinum > rightLung + 40 && mediastinum > leftLung + 40,
      `${mediastinum} vs ${rightLung}/${leftLung}`,
    );

    // min–max with inversion: the smallest stored value (most attenuation) becomes white.
    const mm = await decodeDicom(bytes, CR, { window: 'minmax' });
    assert.deepEqual(mm.meta.valueRange, { min: 0, max: 979 });
    let minIndex = 0;
    for (let i = 0; i < 440 * 440; i++) if ((raw.getUint16(i * 2, true) & 0x3ff) === 0) minIndex = i;
    assert.equal(mm.image.data[minIndex], 255);
  });

  it('IM-0001 (JPEG Lossless SV1): 512×512 CT with plausible Hounsfield units, deterministic', async () => {
    const { values, image } = await modalityValues(JLL, 2048);
    assert.equal(image.width, 512);
    assert.equal(image.height, 512);
    assert.equal(minOf(values), -1024);
    assert.equal(maxOf(values), 1456);
    // Brain parenchyma ≈ 20–45 HU; air outside the head ≈ −1000 HU.
    const brain = mean(values, 512, 240, 300, 200, 300);
    assert.ok(brain > 15 && brain < 45, `brain ${brain} HU`);
    for (const [r, c] of [
      [0, 492],
      [492, 0],
      [492, 492],
    ] as const) {
      const air = mean(values, 512, r, r + 20, c, c + 20);
      assert.ok(air < -900, `corner ${r},${c}: ${air} HU`);
    }
    // Regression: lossless, so the sum of all values is fixed (this decoder, checked against pydicom's
    // JPEG-LL.dcm reference values and lossless DICOM copies while writing it).
    assert.equal(
      values.reduce((s, v) => s + v, 0),
      -5905644,
    );
    const again = await modalityValues(JLL, 2048);
    assert.deepEqual(again.values, values);

    const { image: out, meta } = await decodeFile(JLL);
    assert.equal(meta.transferSyntaxUid, '1.2.840.10008.1.2.4.70');
    assert.deepEqual(meta.window, { center: 60, width: 360, function: 'LINEAR', source: 'file' });
    assert.deepEqual(meta.rescale, { slope: 1, intercept: -1024 });
    assert.deepEqual(
      Array.from(out.data),
      values.map((v) => linear(v, 60, 360, 255)),
    );
  });

  it('JPEG2000.dcm (JPEG 2000, signed 16-bit) decodes to the uncompressed original', async () => {
    const { values, image } = await modalityValues(J2K, 1000);
    assert.equal(image.width, 256);
    assert.equal(image.height, 1024);
    assert.equal(minOf(values), -30);
    assert.equal(maxOf(values), 245);
    assert.equal(
      values.reduce((s, v) => s + v, 0),
      3527976,
    );
    assert.equal(
      values.reduce((s, v) => s + v * v, 0),
      164034874,
    );
    assert.deepEqual(
      [400, 401, 402, 403, 404].map((r) => values[r * 256 + 128]),
      [69, 67, 65, 62, 60],
    );
    assert.deepEqual(values.slice(100 * 256 + 100, 100 * 256 + 105), [1, 3, 5, 6, 8]);
    const { meta } = await decodeFile(J2K);
    assert.equal(meta.transferSyntaxName, 'JPEG 2000 Image Compression');
    assert.equal(meta.pixelRepresentation, 1);
  });
});

describe('decodeDicom on built files', () => {
  it('masks to Bits Stored and sign-extends; little and big endian agree', async () => {
    const spec: ImageSpec = {
      rows: 1,
      cols: 5,
      photometric: 'MONOCHROME2',
      bitsAllocated: 16,
      bitsStored: 12,
      pixelRepresentation: 1,
    };
    const words = [0x0fff, 0x0800, 0x07ff, 0xf123, 0x0000];
    const expected = [-1, -2048, 2047, 0x123, 0];
    assert.deepEqual((await modalityValues(nativeFile(spec, words))).values, expected);
    assert.deepEqual((await modalityValues(nativeFile(spec, words, { be: true }))).values, expected);
    assert.deepEqual((await modalityValues(nativeFile(spec, words, { explicit: false }))).values, expected);
    const unsigned = { ...spec, pixelRepresentation: 0 };
    assert.deepEqual(
      (await modalityValues(nativeFile(unsigned, words))).values,
      [4095, 2048, 2047, 0x123, 0],
    );
  });

  it('applies Rescale Slope/Intercept before the window', async () => {
    const spec: ImageSpec = {
      rows: 1,
      cols: 4,
      photometric: 'MONOCHROME2',
      bitsAllocated: 16,
      extra: [
        el(0x00281052, 'DS', '-100'),
        el(0x00281053, 'DS', '2.5'),
        el(0x00281050, 'DS', '0\\50'),
        el(0x00281051, 'DS', '101\\7'),
      ],
    };
    const file = nativeFile(spec, [0, 20, 40, 60]);
    assert.deepEqual((await modalityValues(file)).values, [-100, -50, 0, 50]);
    const { image, meta } = await decodeDicom(file, 'x.dcm', {});
    assert.deepEqual(
      meta.window,
      { center: 0, width: 101, function: 'LINEAR', source: 'file' },
      'first of multi-valued',
    );
    assert.deepEqual(meta.rescale, { slope: 2.5, intercept: -100 });
    assert.deepEqual(
      Array.from(image.data),
      [-100, -50, 0, 50].map((x) => linear(x, 0, 101, 255)),
    );
  });

  it('windowValue follows the LINEAR, LINEAR_EXACT and SIGMOID definitions', () => {
    assert.equal(windowValue(-1000, 40, 400, 255), 0);
    assert.ok(Math.abs(windowValue(40, 40, 400, 255) - (0.5 / 399 + 0.5) * 255) < 1e-9);
    assert.equal(windowValue(240, 40, 400, 255), 255);
    assert.equal(windowValue(40, 40, 400, 255, 'LINEAR_EXACT'), 127.5);
    assert.equal(windowValue(-160, 40, 400, 255, 'LINEAR_EXACT'), 0);
    assert.equal(windowValue(40, 40, 400, 255, 'SIGMOID'), 127.5);
    assert.throws(() => checkDicomWindow({ center: 0, width: 0.5 }), ConfigError);
    assert.throws(() => checkDicomWindow({ center: Number.NaN, width: 10 }), ConfigError);
  });

  it('rejects an explicit window narrower than 1 with a ConfigError', async () => {
    await rejects(decodeFile(CT, { center: 0, width: 0 }), ConfigError, /dicomWindow\.width/);
  });

  it('MONOCHROME1 with min–max: largest value black, smallest white', async () => {
    const spec: ImageSpec = { rows: 1, cols: 3, photometric: 'MONOCHROME1', bitsAllocated: 8 };
    const { image, meta } = await decodeDicom(nativeFile(spec, [10, 20, 30]), 'm1.dcm', {});
    assert.equal(meta.window?.source, 'minmax');
    assert.deepEqual(Array.from(image.data), [255, 127, 0]); // 20 → round(127.5) = 128, inverted 127
    const normal = await decodeDicom(
      nativeFile({ ...spec, photometric: 'MONOCHROME2' }, [10, 20, 30]),
      'm2.dcm',
      {},
    );
    assert.deepEqual(
      Array.from(normal.image.data),
      Array.from(image.data, (v) => 255 - v),
    );
  });

  it('leaves Pixel Padding Value out of the min–max window', async () => {
    const spec: ImageSpec = {
      rows: 1,
      cols: 4,
      photometric: 'MONOCHROME2',
      bitsAllocated: 16,
      pixelRepresentation: 1,
      extra: [el(0x00280120, 'SS', [-2000])],
    };
    const { image, meta } = await decodeDicom(nativeFile(spec, [-2000, 0, 50, 100]), 'pad.dcm', {});
    assert.deepEqual(meta.valueRange, { min: 0, max: 100 });
    assert.deepEqual(Array.from(image.data), [0, 0, 128, 255]);
  });

  it('RGB: planar and interleaved agree, no windowing, 16-bit output is v·257', async () => {
    const spec: ImageSpec = { rows: 2, cols: 2, photometric: 'RGB', bitsAllocated: 8, spp: 3 };
    const rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
    const planarWords = [0, 1, 2].flatMap((c) => [0, 1, 2, 3].map((p) => rgb[p * 3 + c]!));
    const a = await decodeDicom(nativeFile(spec, rgb), 'rgb.dcm', {});
    const b = await decodeDicom(nativeFile({ ...spec, planar: 1 }, planarWords), 'rgbp.dcm', {});
    assert.equal(a.image.channels, 3);
    assert.deepEqual(Array.from(a.image.data), rgb);
    assert.deepEqual(Array.from(b.image.data), rgb);
    assert.equal(a.meta.window, undefined);
    const deep = await decodeDicom(nativeFile(spec, rgb), 'rgb.dcm', { bitDepth: 16 });
    assert.deepEqual(
      Array.from(deep.image.data),
      rgb.map((v) => v * 257),
    );
  });

  it('YBR_FULL is converted to RGB', async () => {
    const spec: ImageSpec = { rows: 1, cols: 2, photometric: 'YBR_FULL', bitsAllocated: 8, spp: 3 };
    const { image, meta } = await decodeDicom(nativeFile(spec, [128, 128, 128, 76, 85, 255]), 'ybr.dcm', {});
    assert.deepEqual(Array.from(image.data), [128, 128, 128, 254, 0, 0]);
    assert.ok(meta.notes.some((n) => n.includes('YBR_FULL converted')));
  });

  it('multi-frame: decodes the first frame and says so', async () => {
    const spec: ImageSpec = { rows: 2, cols: 2, photometric: 'MONOCHROME2', bitsAllocated: 8, frames: 2 };
    const { values } = await modalityValues(nativeFile(spec, [1, 2, 3, 4, 200, 200, 200, 200]));
    assert.deepEqual(values, [1, 2, 3, 4]);
    const { meta } = await decodeDicom(nativeFile(spec, [1, 2, 3, 4, 200, 200, 200, 200]), 'mf.dcm', {});
    assert.equal(meta.frames, 2);
    assert.ok(meta.notes.some((n) => n.includes('only the first')));
  });

  it('RLE Lossless (8-bit RGB, 16-bit signed) equals the native data', async () => {
    const rgbSpec: ImageSpec = { rows: 8, cols: 16, photometric: 'RGB', bitsAllocated: 8, spp: 3 };
    const rgb = gradient(8 * 16 * 3, (i) => (i % 7 === 0 ? 200 : (i * 13) & 0xff));
    const rle = await decodeDicom(
      compressedFile(rgbSpec, '1.2.840.10008.1.2.5', [rleFrame(rgb, 3, 8)]),
      'r.dcm',
      {},
    );
    assert.deepEqual(Array.from(rle.image.data), rgb);
    assert.equal(rle.meta.transferSyntaxName, 'RLE Lossless');

    const graySpec: ImageSpec = {
      rows: 16,
      cols: 16,
      photometric: 'MONOCHROME2',
      bitsAllocated: 16,
      pixelRepresentation: 1,
    };
    const gray = gradient(256, (i) => (i < 40 ? 0xfc18 : i * 97)); // runs of −1000, then a ramp
    const fromRle = await modalityValues(
      compressedFile(graySpec, '1.2.840.10008.1.2.5', [rleFrame(gray, 1, 16)]),
      2000,
    );
    const fromNative = await modalityValues(nativeFile(graySpec, gray), 2000);
    assert.deepEqual(fromRle.values, fromNative.values);
    assert.equal(fromRle.values[0], -1000);
  });

  it('JPEG Baseline (sharp-encoded) decodes close to the source, gray and YBR_FULL_422 colour', async () => {
    const w = 32;
    const h = 16;
    const gray = new Uint8Array(gradient(w * h, (i) => (i % w) * 8));
    const jpeg = await sharp(gray, { raw: { width: w, height: h, channels: 1 } })
      .jpeg({ quality: 100 })
      .toBuffer();
    const spec: ImageSpec = { rows: h, cols: w, photometric: 'MONOCHROME2', bitsAllocated: 8 };
    const { values } = await modalityValues(
      compressedFile(spec, '1.2.840.10008.1.2.4.50', [new Uint8Array(jpeg)]),
    );
    assert.ok(values.every((v, i) => Math.abs(v - gray[i]!) <= 3));

    const colour = new Uint8Array(gradient(w * h * 3, (i) => (i % 3 === 0 ? 220 : i % 3 === 1 ? 40 : 90)));
    const cjpeg = await sharp(colour, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: '4:2:0' })
      .toBuffer();
    const cspec: ImageSpec = { rows: h, cols: w, photometric: 'YBR_FULL_422', bitsAllocated: 8, spp: 3 };
    const { image } = await decodeDicom(
      compressedFile(cspec, '1.2.840.10008.1.2.4.50', [new Uint8Array(cjpeg)]),
      'j.dcm',
      {},
    );
    assert.equal(image.channels, 3);
    assert.ok(Array.from(image.data).every((v, i) => Math.abs(v - colour[i]!) <= 4));
  });

  it('JPEG-LS (CharLS-encoded, 16-bit) and JPEG 2000 lossless (OpenJPEG-encoded, 12-bit) are exact', async () => {
    const require = createRequire(import.meta.url);
    // Emscripten adopts the argument as its Module object: each codec needs its own.
    const quiet = () => ({ print: () => {}, printErr: () => {} });
    type Encoder = {
      getDecodedBuffer(info: object): Uint8Array;
      encode(): void;
      getEncodedBuffer(): Uint8Array;
      delete(): void;
    };
    const encodeWith = (
      EncoderClass: new () => Encoder,
      info: object,
      words: readonly number[],
    ): Uint8Array => {
      const enc = new EncoderClass();
      const buf = enc.getDecodedBuffer(info);
      new Uint16Array(buf.buffer, buf.byteOffset, words.length).set(words);
      enc.encode();
      const out = enc.getEncodedBuffer().slice();
      enc.delete();
      return out;
    };
    const w = 64;
    const h = 48;
    const words = gradient(w * h, (i) => (i * 37 + (i >> 3)) & 0xfff);

    const charls = await require('@cornerstonejs/codec-charls/wasmjs')(quiet());
    const jls = encodeWith(
      charls.JpegLSEncoder,
      { width: w, height: h, bitsPerSample: 16, componentCount: 1 },
      words,
    );
    const spec16: ImageSpec = { rows: h, cols: w, photometric: 'MONOCHROME2', bitsAllocated: 16 };
    const fromJls = await modalityValues(compressedFile(spec16, '1.2.840.10008.1.2.4.80', [jls]));
    assert.deepEqual(fromJls.values, words);

    const openjpeg = await require('@cornerstonejs/codec-openjpeg/wasmjs')(quiet());
    const j2k = encodeWith(
      openjpeg.J2KEncoder,
      {
        width: w,
        height: h,
        bitsPerSample: 12,
        componentCount: 1,
        isSigned: false,
        isUsingColorTransform: false,
      },
      words,
    );
    const spec12: ImageSpec = { ...spec16, bitsStored: 12 };
    const fromJ2k = await modalityValues(compressedFile(spec12, '1.2.840.10008.1.2.4.90', [j2k]));
    assert.deepEqual(fromJ2k.values, words);
  });
});

describe('decodeDicom errors', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'medsynth-dicom-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('truncated native pixel data names the file and (7FE0,0010)', async () => {
    const file = join(dir, 'truncated.dcm');
    const bytes = await bytesOf(CT);
    await writeFile(file, bytes.subarray(0, bytes.length - 1000));
    const e = await rejects(decodeFile(file), DatasetError, /truncated pixel data/);
    assert.match(e.message, /truncated\.dcm/);
    assert.match(e.message, /\(7FE0,0010\) PixelData/);
    assert.equal(e instanceof UnsupportedFormatError, false);
  });

  it('truncated compressed pixel data too', async () => {
    const file = join(dir, 'truncated-jll.dcm');
    const bytes = await bytesOf(JLL);
    await writeFile(file, bytes.subarray(0, bytes.length - 50_000));
    await rejects(decodeFile(file), DatasetError, /truncated-jll\.dcm.*\(7FE0,0010\) PixelData.*truncated/);
  });

  it('a native frame shorter than Rows × Columns × Samples × Bytes', async () => {
    const spec: ImageSpec = { rows: 4, cols: 4, photometric: 'MONOCHROME2', bitsAllocated: 16 };
    await rejects(
      decodeDicom(nativeFile(spec, [1, 2, 3]), 'short.dcm', {}),
      DatasetError,
      /short\.dcm \[\(7FE0,0010\) PixelData\]: truncated pixel data.*expected 32 bytes/,
    );
  });

  it('not DICOM', async () => {
    const file = join(dir, 'notes.dcm');
    await writeFile(
      file,
      'this is not a DICOM file, just text long enough to pass any length checks'.repeat(5),
    );
    await rejects(decodeFile(file), DatasetError, /notes\.dcm: not a DICOM file/);
  });

  it('no pixel data', async () => {
    const bytes = part10(
      '1.2.840.10008.1.2.1',
      encode([el(0x00080060, 'CS', 'SR'), el(0x00100020, 'LO', 'P1')]),
    );
    await rejects(
      decodeDicom(bytes, 'sr.dcm', {}),
      DatasetError,
      /sr\.dcm \[\(7FE0,0010\) PixelData\]: no pixel data/,
    );
  });

  it('an unsupported transfer syntax names the file, the UID and its name', async () => {
    const bytes = await bytesOf(JLL);
    const text = Buffer.from(bytes.subarray(0, 600)).toString('latin1');
    const at = text.indexOf('1.2.840.10008.1.2.4.70');
    assert.ok(at > 128);
    const patched = bytes.slice();
    patched.set(Buffer.from('1.2.840.10008.1.2.4.92', 'latin1'), at); // same length: JPEG 2000 Part 2
    const file = join(dir, 'part2.dcm');
    await writeFile(file, patched);
    const e = await rejects(decodeFile(file), UnsupportedFormatError, /part2\.dcm/);
    assert.match(e.message, /1\.2\.840\.10008\.1\.2\.4\.92/);
    assert.match(e.message, /JPEG 2000 Part 2 Multi-component Image Compression/);
    assert.match(e.message, /\(0002,0010\) TransferSyntaxUID/);

    // A longer UID needs a rebuilt meta header: HTJ2K.
    const spec: ImageSpec = { rows: 2, cols: 2, photometric: 'MONOCHROME2', bitsAllocated: 8 };
    await rejects(
      decodeDicom(compressedFile(spec, '1.2.840.10008.1.2.4.201', [new Uint8Array(8)]), 'ht.dcm', {}),
      UnsupportedFormatError,
      /ht\.dcm.*1\.2\.840\.10008\.1\.2\.4\.201.*High-Throughput JPEG 2000/,
    );
  });

  it('PALETTE COLOR and 1-bit data are refused clearly', async () => {
    const pal: ImageSpec = { rows: 1, cols: 2, photometric: 'PALETTE COLOR', bitsAllocated: 8 };
    await rejects(
      decodeDicom(nativeFile(pal, [0, 1]), 'pal.dcm', {}),
      UnsupportedFormatError,
      /PhotometricInterpretation.*PALETTE/,
    );
    const bits: ImageSpec = { rows: 1, cols: 16, photometric: 'MONOCHROME2', bitsAllocated: 8 };
    const oneBit = part10(
      '1.2.840.10008.1.2.1',
      encode([
        ...imageElements(bits).filter(
          (e) => e.tag !== 0x00280100 && e.tag !== 0x00280101 && e.tag !== 0x00280102,
        ),
        el(0x00280100, 'US', [1]),
        el(0x00280101, 'US', [1]),
        el(0x00280102, 'US', [0]),
        el(0x7fe00010, 'OB', new Uint8Array(2)),
      ]),
    );
    await rejects(decodeDicom(oneBit, 'bits.dcm', {}), UnsupportedFormatError, /BitsAllocated.*bit-packed/);
  });

  it('deflated and legacy explicit-VR data sets decode like the original', async () => {
    const bytes = await bytesOf(CT);
    const header = dicomParser.readPart10Header(bytes) as unknown as { position: number };
    const body = bytes.subarray(header.position);
    const reference = await modalityValues(bytes);
    const deflated = part10('1.2.840.10008.1.2.1.99', new Uint8Array(deflateRawSync(body)));
    const d = await decodeDicom(deflated, 'dfl.dcm', {});
    assert.equal(d.meta.transferSyntaxName, 'Deflated Explicit VR Little Endian');
    assert.deepEqual((await modalityValues(deflated)).values, reference.values);
    // The data set alone (no preamble, no meta): explicit VR LE guessed from the first element.
    assert.equal(isDicomFile(body), true);
    const legacy = await decodeDicom(body, 'legacy.dcm', {});
    assert.equal(legacy.meta.legacy, true);
    assert.deepEqual((await modalityValues(body)).values, reference.values);
  });
});

describe('loadDicom', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'medsynth-dicom-load-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a single file: one unlabelled sample', async () => {
    const l = await loadDicom(CR, {});
    assert.equal(l.format, 'dicom');
    assert.deepEqual(l.classNames, ['unlabelled']);
    assert.equal(l.labelSource, 'none (single file)');
    assert.deepEqual(l.samples, [{ id: 'CR-MONO1-10-chest.dcm', label: 0 }]);
    assert.ok(l.notes.some((n) => n.includes('MONOCHROME1')));
    assert.ok(l.notes.some((n) => n.includes('no DICOM preamble')));
    const img = await l.read(0);
    assert.deepEqual([img.width, img.height, img.channels], [440, 440, 1]);
    await assert.rejects(l.read(1), RangeError);
  });

  it('a single file honours dicomWindow and dicomBitDepth', async () => {
    const l = await loadDicom(CT, { dicomWindow: { center: 40, width: 400 }, dicomBitDepth: 16 });
    const img = await l.read(0);
    assert.ok(img.data instanceof Uint16Array);
    assert.equal(maxOf(img.data), 65535);
    await assert.rejects(loadDicom(CT, { dicomWindow: { center: 40, width: 0 } }), ConfigError);
  });

  it('a single non-DICOM file or a missing path fails at list time', async () => {
    const file = join(dir, 'fake.dcm');
    await writeFile(file, 'x'.repeat(300));
    await rejects(loadDicom(file, {}), DatasetError, /fake\.dcm: not a DICOM file/);
    await rejects(loadDicom(join(dir, 'missing.dcm'), {}), DatasetError, /not found/);
  });

  it('class folders (recursive, extension-less DICOM files found by signature)', async () => {
    const root = join(dir, 'classes');
    await mkdir(join(root, 'ct', 'series1'), { recursive: true });
    await mkdir(join(root, 'mr'), { recursive: true });
    await copyFile(CT, join(root, 'ct', 'a.dcm'));
    await copyFile(JLL, join(root, 'ct', 'series1', 'IM0001')); // no extension
    await copyFile(MR, join(root, 'mr', '1.2.840.113619.2.55.3.1')); // UID-named
    await writeFile(join(root, 'mr', 'readme.txt'), 'not an image');
    await writeFile(join(root, 'mr', 'DICOMDIR'), 'skipped by name');
    const l = await loadDicom(root, {});
    assert.deepEqual(l.classNames, ['ct', 'mr']);
    assert.equal(l.labelSource, 'class folders');
    assert.deepEqual(
      l.samples.map((s) => [s.id, l.classNames[s.label]]),
      [
        ['ct/a.dcm', 'ct'],
        ['ct/series1/IM0001', 'ct'],
        ['mr/1.2.840.113619.2.55.3.1', 'mr'],
      ],
    );
    assert.ok(
      l.notes.some((n) => n.includes('JPEG Lossless') && n.includes('Explicit VR Little Endian')),
      l.notes.join('\n'),
    );
    const sizes = await Promise.all(l.samples.map(async (_, i) => (await l.read(i)).width));
    assert.deepEqual(sizes, [128, 512, 64]);
  });

  it('split folders give splits; a flat folder is one unlabelled class', async () => {
    const root = join(dir, 'splits');
    await mkdir(join(root, 'train', 'a'), { recursive: true });
    await mkdir(join(root, 'test', 'b'), { recursive: true });
    await copyFile(CT, join(root, 'train', 'a', 'x.dcm'));
    await copyFile(MR, join(root, 'test', 'b', 'y.dcm'));
    const l = await loadDicom(root, {});
    assert.deepEqual(
      l.samples.map((s) => [s.id, s.split, l.classNames[s.label]]),
      [
        ['train/a/x.dcm', 'train', 'a'],
        ['test/b/y.dcm', 'test', 'b'],
      ],
    );

    const flat = join(dir, 'flat');
    await mkdir(flat);
    await copyFile(CT, join(flat, 'x.dcm'));
    await copyFile(CR, join(flat, 'y.dcm'));
    const f = await loadDicom(flat, {});
    assert.deepEqual(f.classNames, ['unlabelled']);
    assert.equal(f.labelSource, 'none (flat folder)');
    assert.equal(f.samples.length, 2);
    assert.ok(
      f.notes.some((n) => n.startsWith('MONOCHROME1 in 1 of 2')),
      f.notes.join('\n'),
    );
  });

  it('labels.csv: labels, splits and groups; unlisted DICOM files skipped with a note', async () => {
    const root = join(dir, 'csv');
    await mkdir(join(root, 'img'), { recursive: true });
    await copyFile(CT, join(root, 'img', 'ct.dcm'));
    await copyFile(MR, join(root, 'img', 'mr.dcm'));
    await copyFile(CR, join(root, 'img', 'extra.dcm'));
    await writeFile(
      join(root, 'labels.csv'),
      'path,label,split,patient_id\nimg/ct.dcm,1,train,p1\nimg/mr.dcm,0,test,p2\n',
    );
    const l = await loadDicom(root, {});
    assert.deepEqual(l.classNames, ['0', '1']);
    assert.equal(l.labelSource, 'labels.csv column "label"');
    assert.deepEqual(l.samples, [
      { id: 'img/ct.dcm', label: 1, split: 'train', group: 'p1' },
      { id: 'img/mr.dcm', label: 0, split: 'test', group: 'p2' },
    ]);
    assert.ok(l.notes.some((n) => n.includes('1 DICOM file under the folder not in labels.csv; skipped')));
  });

  it('labels.csv naming a missing file fails with the CSV line', async () => {
    const root = join(dir, 'csv-missing');
    await mkdir(root);
    await copyFile(CT, join(root, 'ct.dcm'));
    await writeFile(join(root, 'labels.csv'), 'file,class\nct.dcm,a\ngone.dcm,b\n');
    const e = await rejects(loadDicom(root, {}), DatasetError, /labels\.csv \[line 3, column file\]/);
    assert.match(e.message, /gone\.dcm/);
  });

  it('an explicit labelsCsv elsewhere resolves paths relative to its own folder', async () => {
    const root = join(dir, 'ext');
    await mkdir(join(root, 'data'), { recursive: true });
    await copyFile(MR, join(root, 'data', 'm.dcm'));
    const csv = join(root, 'meta', 'labels.csv');
    await mkdir(join(root, 'meta'));
    await writeFile(csv, 'image,dx\n../data/m.dcm,tumour\n');
    const l = await loadDicom(join(root, 'data'), { labelsCsv: csv });
    assert.deepEqual(l.classNames, ['tumour']);
    assert.deepEqual(l.samples, [{ id: 'm.dcm', label: 0 }]);
    assert.equal((await l.read(0)).width, 64);
  });

  it('an empty folder is a DatasetError', async () => {
    const root = join(dir, 'empty');
    await mkdir(root);
    await writeFile(join(root, 'a.txt'), 'x');
    await rejects(loadDicom(root, {}), DatasetError, /no DICOM files/);
  });
});
