/**
 * DICOM pixel decoding: one DICOM file (Part 10, or a legacy data set without preamble/meta) → a windowed
 * 8- or 16-bit `RawImage`. Parsing is done by dicom-parser; compressed pixel data by the codecs below.
 *
 * Transfer syntaxes that decode:
 * - native: Implicit VR LE (1.2.840.10008.1.2), Explicit VR LE (.1.2.1), Deflated Explicit VR LE (.1.2.1.99,
 *   inflated with node:zlib), Explicit VR Big Endian (.1.2.2, retired; samples byte-swapped);
 * - RLE Lossless (.1.2.5), decoded here per PS3.5 Annex G;
 * - JPEG Lossless (.4.57, .4.70) with jpeg-lossless-decoder-js;
 * - JPEG-LS (.4.80, .4.81) with @cornerstonejs/codec-charls (wasm);
 * - JPEG 2000 (.4.90, .4.91) with @cornerstonejs/codec-openjpeg (wasm);
 * - JPEG Baseline (.4.50) and 8-bit JPEG Extended (.4.51) with sharp (libjpeg-turbo); colour JPEGs come out
 *   as RGB (YBR_FULL_422 is converted by the decoder).
 * Everything else (12-bit JPEG Extended, HTJ2K, JPEG 2000 Part 2, JPEG XL, MPEG/HEVC video, JPIP,
 * encapsulated uncompressed, unknown UIDs) is an `UnsupportedFormatError` naming the file, the UID and its name.
 *
 * From stored values to pixels (grayscale, i.e. MONOCHROME1/MONOCHROME2):
 * 1. stored value = the sample's bits `HighBit-BitsStored+1 … HighBit`, sign-extended when PixelRepresentation
 *    is 1 (for JPEG 2000 the codestream's own precision and signedness win when they disagree with the header;
 *    this is noted in `meta.notes`);
 * 2. modality value = stored × RescaleSlope + RescaleIntercept (defaults 1 and 0; a Modality LUT Sequence is
 *    ignored and noted);
 * 3. windowing (PS3.3 C.11.2.1.2) to 0…255 (`bitDepth` 8, default) or 0…65535 (16): `auto` uses the file's
 *    first Window Center/Width (with its VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID), else min–max;
 *    `minmax` maps the smallest modality value to 0 and the largest to the maximum (Pixel Padding Value
 *    excluded); an explicit `{center, width}` uses the LINEAR function;
 * 4. MONOCHROME1 only: the windowed output is inverted, `out = max − out`, *after* windowing, so that the
 *    window values keep their meaning (they refer to modality values) and high output = bright on screen.
 * Colour (RGB; YBR_FULL converted to RGB with the JPEG/JFIF full-range equations; YBR_ICT/YBR_RCT/YBR_FULL_422
 * as decoded to RGB by the JPEG and JPEG 2000 codecs) is not windowed: samples are scaled to the requested
 * depth (8 → 16 bit as v·257, 16 → 8 bit as round(v/257), other BitsStored as round(v·max/(2^BitsStored−1))).
 *
 * Multi-frame files: the first frame is decoded and `meta.frames` / `meta.notes` say so. Not decoded (error):
 * PALETTE COLOR, bit-packed 1-bit data, Float/Double Float Pixel Data, native YBR_FULL_422, SamplesPerPixel
 * other than 1 or 3.
 */
import { createRequire } from 'node:module';
import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import dicomParser, { type DataSet, type Element, type ParseDicomOptions } from 'dicom-parser';
import sharp from 'sharp';
import { ConfigError, DatasetError, isMedsynthError, UnsupportedFormatError } from '../../runtime/errors.js';
import type { DicomWindow, RawImage } from '../types.js';

// ---------------------------------------------------------------------------------------------------------
// Transfer syntaxes
// ---------------------------------------------------------------------------------------------------------

type Codec = 'native' | 'native-be' | 'rle' | 'jpeg-lossless' | 'jpeg-ls' | 'j2k' | 'jpeg-8bit' | 'none';

const TS: Readonly<Record<string, readonly [name: string, codec: Codec]>> = {
  '1.2.840.10008.1.2': ['Implicit VR Little Endian', 'native'],
  '1.2.840.10008.1.2.1': ['Explicit VR Little Endian', 'native'],
  '1.2.840.10008.1.2.1.98': ['Encapsulated Uncompressed Explicit VR Little Endian', 'none'],
  '1.2.840.10008.1.2.1.99': ['Deflated Explicit VR Little Endian', 'native'],
  '1.2.840.10008.1.2.2': ['Explicit VR Big Endian (retired)', 'native-be'],
  '1.2.840.10008.1.2.4.50': ['JPEG Baseline (Process 1)', 'jpeg-8bit'],
  '1.2.840.10008.1.2.4.51': ['JPEG Extended (Process 2 & 4)', 'jpeg-8bit'],
  '1.2.840.10008.1.2.4.57': ['JPEG Lossless, Non-Hierarchical (Process 14)', 'jpeg-lossless'],
  '1.2.840.10008.1.2.4.70': [
    'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])',
    'jpeg-lossless',
  ],
  '1.2.840.10008.1.2.4.80': ['JPEG-LS Lossless Image Compression', 'jpeg-ls'],
  '1.2.840.10008.1.2.4.81': ['JPEG-LS Lossy (Near-Lossless) Image Compression', 'jpeg-ls'],
  '1.2.840.10008.1.2.4.90': ['JPEG 2000 Image Compression (Lossless Only)', 'j2k'],
  '1.2.840.10008.1.2.4.91': ['JPEG 2000 Image Compression', 'j2k'],
  '1.2.840.10008.1.2.4.92': ['JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)', 'none'],
  '1.2.840.10008.1.2.4.93': ['JPEG 2000 Part 2 Multi-component Image Compression', 'none'],
  '1.2.840.10008.1.2.4.94': ['JPIP Referenced', 'none'],
  '1.2.840.10008.1.2.4.95': ['JPIP Referenced Deflate', 'none'],
  '1.2.840.10008.1.2.4.100': ['MPEG2 Main Profile / Main Level', 'none'],
  '1.2.840.10008.1.2.4.101': ['MPEG2 Main Profile / High Level', 'none'],
  '1.2.840.10008.1.2.4.102': ['MPEG-4 AVC/H.264 High Profile / Level 4.1', 'none'],
  '1.2.840.10008.1.2.4.103': ['MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1', 'none'],
  '1.2.840.10008.1.2.4.104': ['MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video', 'none'],
  '1.2.840.10008.1.2.4.105': ['MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video', 'none'],
  '1.2.840.10008.1.2.4.106': ['MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2', 'none'],
  '1.2.840.10008.1.2.4.107': ['HEVC/H.265 Main Profile / Level 5.1', 'none'],
  '1.2.840.10008.1.2.4.108': ['HEVC/H.265 Main 10 Profile / Level 5.1', 'none'],
  '1.2.840.10008.1.2.4.110': ['JPEG XL Lossless', 'none'],
  '1.2.840.10008.1.2.4.111': ['JPEG XL JPEG Recompression', 'none'],
  '1.2.840.10008.1.2.4.112': ['JPEG XL', 'none'],
  '1.2.840.10008.1.2.4.201': ['High-Throughput JPEG 2000 Image Compression (Lossless Only)', 'none'],
  '1.2.840.10008.1.2.4.202': [
    'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)',
    'none',
  ],
  '1.2.840.10008.1.2.4.203': ['High-Throughput JPEG 2000 Image Compression', 'none'],
  '1.2.840.10008.1.2.5': ['RLE Lossless', 'rle'],
};

/** The standard name of a transfer syntax UID (PS3.6 Table A-1), or a description of an unknown one. */
export function transferSyntaxName(uid: string): string {
  const known = TS[uid];
  if (known) return known[0];
  if (uid.startsWith('1.2.840.10008.1.2.4.')) return 'JPEG family transfer syntax (retired or unknown)';
  return 'unknown transfer syntax';
}

function codecOf(uid: string): Codec {
  return TS[uid]?.[1] ?? 'none';
}

/** Transfer syntax UIDs whose pixel data `decodeDicom` decodes. */
export const DECODABLE_TRANSFER_SYNTAXES: readonly string[] = Object.keys(TS).filter(
  (uid) => codecOf(uid) !== 'none',
);

// ---------------------------------------------------------------------------------------------------------
// Recognising DICOM bytes
// ---------------------------------------------------------------------------------------------------------

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';

const VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(
    ' ',
  ),
);

export type DicomSniff =
  { readonly kind: 'part10' } | { readonly kind: 'legacy'; readonly transferSyntaxUid: string };

/**
 * What kind of DICOM data the first bytes show: a Part 10 file ("DICM" at byte 128), or a legacy data set
 * with no preamble and no meta header that starts with a group 0008 element (implicit VR LE, explicit VR LE,
 * or explicit VR big endian, judged from the first element). Undefined when it looks like neither.
 */
export function sniffDicom(bytes: Uint8Array): DicomSniff | undefined {
  if (
    bytes.length >= 132 &&
    bytes[128] === 0x44 &&
    bytes[129] === 0x49 &&
    bytes[130] === 0x43 &&
    bytes[131] === 0x4d
  ) {
    return { kind: 'part10' };
  }
  if (bytes.length < 8) return undefined;
  const b = (i: number): number => bytes[i]!;
  const vr = String.fromCharCode(b(4), b(5));
  const isVr = VRS.has(vr);
  // Little endian: group 0x0008 is stored 08 00.
  if (b(0) === 0x08 && b(1) === 0x00) {
    if (isVr) return { kind: 'legacy', transferSyntaxUid: EXPLICIT_LE };
    const length = (b(4) | (b(5) << 8) | (b(6) << 16) | (b(7) << 24)) >>> 0;
    // An implicit-VR element: a plausible value length (even, or undefined for a sequence), and for the
    // usual first elements (group length, Specific Character Set, Image Type…) a small one.
    if (length === 0xffffffff || (length % 2 === 0 && length <= 1024)) {
      return { kind: 'legacy', transferSyntaxUid: IMPLICIT_LE };
    }
    return undefined;
  }
  // Big endian explicit: 00 08 and a VR.
  if (b(0) === 0x00 && b(1) === 0x08 && isVr) return { kind: 'legacy', transferSyntaxUid: EXPLICIT_BE };
  return undefined;
}

/** True for Part 10 files and for legacy data sets that start with a group 0008 element (see `sniffDicom`). */
export function isDicomFile(bytes: Uint8Array): boolean {
  return sniffDicom(bytes) !== undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

const PIXEL_DATA = '(7FE0,0010) PixelData';

function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'exception' in e)
    return describeError((e as { exception: unknown }).exception);
  return String(e);
}

function hexHead(bytes: Uint8Array): string {
  return `first bytes ${Array.from(bytes.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ') || '(empty)'}`;
}

function inflater(file: string): NonNullable<ParseDicomOptions['inflater']> {
  return (arr: Uint8Array, position: number): Uint8Array => {
    let inflated: Buffer;
    try {
      // Sync flush: a truncated stream inflates as far as it goes (header reads of a file's first bytes).
      inflated = inflateRawSync(arr.subarray(position), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (cause) {
      throw new DatasetError(`cannot inflate the deflated data set: ${describeError(cause)}`, {
        file,
        field: '(0002,0010) TransferSyntaxUID 1.2.840.10008.1.2.1.99',
        cause,
      });
    }
    const full = new Uint8Array(position + inflated.length);
    full.set(arr.subarray(0, position), 0);
    full.set(inflated, position);
    return full; // dicom-parser's typing says `void`, but it parses the returned array
  };
}

interface Parsed {
  readonly ds: DataSet;
  readonly transferSyntaxUid: string;
  readonly legacy: boolean;
}

/** dicom-parser wrapped: legacy files get a transfer syntax, every failure becomes a DatasetError naming the file. */
function parse(bytes: Uint8Array, file: string, untilPixelData: boolean): Parsed {
  const sniff = sniffDicom(bytes);
  if (!sniff) {
    throw new DatasetError('not a DICOM file', {
      file,
      expected: '"DICM" at byte 128 (Part 10), or a legacy data set starting with a group 0008 element',
      found: hexHead(bytes),
    });
  }
  const options: ParseDicomOptions = { inflater: inflater(file) };
  if (sniff.kind === 'legacy') options.TransferSyntaxUID = sniff.transferSyntaxUid;
  if (untilPixelData) options.untilTag = 'x7fe00010';
  let ds: DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, options);
  } catch (e) {
    if (isMedsynthError(e)) throw e;
    const partial =
      e && typeof e === 'object' && 'dataSet' in e ? (e as { dataSet?: DataSet }).dataSet : undefined;
    const pixel = partial?.elements.x7fe00010;
    if (pixel && !untilPixelData && pixel.dataOffset + pixel.length > bytes.length) {
      throw truncated(file, pixel, bytes.length, e);
    }
    const msg = describeError(e);
    if (msg.includes('0002,0010')) {
      throw new DatasetError('the file meta header has no transfer syntax', {
        file,
        field: '(0002,0010) TransferSyntaxUID',
        cause: e,
      });
    }
    throw new DatasetError(`malformed DICOM: ${msg}`, { file, cause: e });
  }
  const transferSyntaxUid = (ds.string('x00020010') ?? '').replace(/\0/g, '').trim();
  if (!transferSyntaxUid) {
    throw new DatasetError('the file meta header has no transfer syntax', {
      file,
      field: '(0002,0010) TransferSyntaxUID',
    });
  }
  return { ds, transferSyntaxUid, legacy: sniff.kind === 'legacy' };
}

function truncated(file: string, pixel: Element, size: number, cause?: unknown): DatasetError {
  return new DatasetError('truncated pixel data: the file ends inside the Pixel Data element', {
    file,
    field: PIXEL_DATA,
    expected: `${pixel.length} bytes from offset ${pixel.dataOffset}`,
    found: `${Math.max(0, size - pixel.dataOffset)} bytes`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The header facts a loader can show without decoding pixels. */
export interface DicomHeader {
  readonly transferSyntaxUid: string;
  readonly transferSyntaxName: string;
  /** Whether `decodeDicom` has a codec for this transfer syntax. */
  readonly decodable: boolean;
  /** True for a data set without preamble and meta header (read with an assumed transfer syntax). */
  readonly legacy: boolean;
  readonly photometric?: string;
  readonly rows?: number;
  readonly columns?: number;
  readonly frames: number;
  readonly modality?: string;
  readonly patientId?: string;
  readonly hasPixelData: boolean;
}

function str(ds: DataSet, tag: string): string | undefined {
  const v = ds.string(tag);
  return v === undefined || v === '' ? undefined : v;
}

function header(p: Parsed): DicomHeader {
  const { ds } = p;
  const photometric = str(ds, 'x00280004');
  const rows = ds.uint16('x00280010');
  const columns = ds.uint16('x00280011');
  const modality = str(ds, 'x00080060');
  const patientId = str(ds, 'x00100020');
  return {
    transferSyntaxUid: p.transferSyntaxUid,
    transferSyntaxName: transferSyntaxName(p.transferSyntaxUid),
    decodable: codecOf(p.transferSyntaxUid) !== 'none',
    legacy: p.legacy,
    ...(photometric !== undefined ? { photometric } : {}),
    ...(rows !== undefined ? { rows } : {}),
    ...(columns !== undefined ? { columns } : {}),
    frames: Math.max(1, ds.intString('x00280008') ?? 1),
    ...(modality !== undefined ? { modality } : {}),
    ...(patientId !== undefined ? { patientId } : {}),
    hasPixelData: ds.elements.x7fe00010 !== undefined,
  };
}

/**
 * Reads the header (everything before the pixel data) of a DICOM file's bytes — or of its first bytes,
 * when they reach the Pixel Data element. Throws a DatasetError naming the file when it is not DICOM.
 */
export function readDicomHeader(bytes: Uint8Array, file: string): DicomHeader {
  return header(parse(bytes, file, true));
}

// ---------------------------------------------------------------------------------------------------------
// Image attributes
// ---------------------------------------------------------------------------------------------------------

interface ImageAttributes {
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: 1 | 3;
  readonly photometric: string;
  readonly bitsAllocated: 8 | 16 | 32;
  readonly bitsStored: number;
  readonly highBit: number;
  readonly signed: boolean;
  readonly planar: boolean;
  readonly frames: number;
}

function requireUint16(ds: DataSet, tag: string, name: string, file: string): number {
  const v = ds.uint16(tag);
  if (v === undefined) throw new DatasetError(`missing ${name}`, { file, field: field(tag, name) });
  return v;
}

function field(tag: string, name: string): string {
  return `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()}) ${name}`;
}

function attributes(ds: DataSet, file: string, notes: string[]): ImageAttributes {
  const rows = requireUint16(ds, 'x00280010', 'Rows', file);
  const columns = requireUint16(ds, 'x00280011', 'Columns', file);
  if (rows === 0 || columns === 0) {
    throw new DatasetError('the image has no pixels', {
      file,
      field: `${field('x00280010', 'Rows')} / ${field('x00280011', 'Columns')}`,
      found: `${rows} × ${columns}`,
    });
  }
  const spp = ds.uint16('x00280002') ?? 1;
  if (spp !== 1 && spp !== 3) {
    throw new UnsupportedFormatError('only 1 or 3 samples per pixel are supported', {
      file,
      field: field('x00280002', 'SamplesPerPixel'),
      found: String(spp),
    });
  }
  let photometric = str(ds, 'x00280004')?.toUpperCase();
  if (photometric === undefined) {
    photometric = spp === 1 ? 'MONOCHROME2' : 'RGB';
    notes.push(`no Photometric Interpretation; assumed ${photometric}`);
  }
  const ba = requireUint16(ds, 'x00280100', 'BitsAllocated', file);
  if (ba !== 8 && ba !== 16 && ba !== 32) {
    throw new UnsupportedFormatError(
      ba === 1 ? 'bit-packed (1 bit allocated) pixel data is not supported' : 'unsupported Bits Allocated',
      { file, field: field('x00280100', 'BitsAllocated'), expected: '8, 16 or 32', found: String(ba) },
    );
  }
  const bitsStored = ds.uint16('x00280101') ?? ba;
  if (bitsStored < 1 || bitsStored > ba) {
    throw new DatasetError('Bits Stored is not in 1..Bits Allocated', {
      file,
      field: field('x00280101', 'BitsStored'),
      expected: `1..${ba}`,
      found: String(bitsStored),
    });
  }
  let highBit = ds.uint16('x00280102') ?? bitsStored - 1;
  if (highBit < bitsStored - 1 || highBit >= ba) {
    notes.push(`High Bit ${highBit} is inconsistent with Bits Stored ${bitsStored}; used ${bitsStored - 1}`);
    highBit = bitsStored - 1;
  }
  const pr = ds.uint16('x00280103') ?? 0;
  if (pr !== 0 && pr !== 1) {
    throw new DatasetError('Pixel Representation must be 0 or 1', {
      file,
      field: field('x00280103', 'PixelRepresentation'),
      found: String(pr),
    });
  }
  const frames = Math.max(1, ds.intString('x00280008') ?? 1);
  const planar = spp === 3 && (ds.uint16('x00280006') ?? 0) === 1;
  return {
    rows,
    columns,
    samplesPerPixel: spp,
    photometric,
    bitsAllocated: ba,
    bitsStored,
    highBit,
    signed: pr === 1,
    planar,
    frames,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Frames: raw sample words of the first frame
// ---------------------------------------------------------------------------------------------------------

type Words = Uint8Array | Uint16Array | Uint32Array;

interface DecodedFrame {
  /** Raw sample words (unsigned bit patterns), pixel-interleaved unless `planar`. */
  readonly words: Words;
  readonly planar: boolean;
  /** Set when the codec reports a precision/signedness that overrides the header (JPEG 2000). */
  readonly bitsStored?: number;
  readonly signed?: boolean;
  /** True when the codec already converted colour to RGB. */
  readonly rgb?: boolean;
}

function nativeFrame(
  ds: DataSet,
  pixel: Element,
  a: ImageAttributes,
  bigEndian: boolean,
  file: string,
): DecodedFrame {
  if (pixel.encapsulatedPixelData) {
    throw new DatasetError('native transfer syntax but the pixel data is encapsulated (undefined length)', {
      file,
      field: PIXEL_DATA,
    });
  }
  const bytesPer = a.bitsAllocated / 8;
  const n = a.rows * a.columns * a.samplesPerPixel;
  const frameBytes = n * bytesPer;
  const needed = frameBytes * a.frames;
  const bytes = ds.byteArray;
  if (pixel.dataOffset + pixel.length > bytes.length) throw truncated(file, pixel, bytes.length);
  if (pixel.length < needed) {
    throw new DatasetError('truncated pixel data: shorter than Rows × Columns × Samples × Bytes × Frames', {
      file,
      field: PIXEL_DATA,
      expected: `${needed} bytes (${a.rows} × ${a.columns} × ${a.samplesPerPixel} × ${bytesPer} × ${a.frames})`,
      found: `${pixel.length} bytes`,
    });
  }
  const o = pixel.dataOffset;
  let words: Words;
  if (bytesPer === 1) {
    if (bigEndian && pixel.vr === 'OW') {
      // 8-bit samples in an OW element of a big endian data set: bytes are swapped in pairs.
      words = new Uint8Array(n);
      for (let i = 0; i < n; i++) words[i] = bytes[o + (i ^ 1)]!;
    } else {
      words = Uint8Array.from(bytes.subarray(o, o + n));
    }
  } else if (bytesPer === 2) {
    words = new Uint16Array(n);
    if (bigEndian) for (let i = 0, p = o; i < n; i++, p += 2) words[i] = (bytes[p]! << 8) | bytes[p + 1]!;
    else for (let i = 0, p = o; i < n; i++, p += 2) words[i] = bytes[p]! | (bytes[p + 1]! << 8);
  } else {
    words = new Uint32Array(n);
    const view = new DataView(bytes.buffer, bytes.byteOffset + o, frameBytes);
    for (let i = 0; i < n; i++) words[i] = view.getUint32(i * 4, !bigEndian);
  }
  return { words, planar: a.planar };
}

/** The encapsulated bytes of the first frame. */
function firstEncapsulatedFrame(
  ds: DataSet,
  pixel: Element,
  a: ImageAttributes,
  codec: Codec,
  file: string,
): Uint8Array {
  const fragments = pixel.fragments ?? [];
  if (!pixel.encapsulatedPixelData || fragments.length === 0) {
    throw new DatasetError('compressed transfer syntax but the pixel data has no fragments', {
      file,
      field: PIXEL_DATA,
      expected: 'encapsulated pixel data (undefined length, item fragments)',
      found: pixel.encapsulatedPixelData ? 'no fragments' : `native pixel data of ${pixel.length} bytes`,
    });
  }
  for (const f of fragments) {
    if (f.position + f.length > ds.byteArray.length) {
      throw new DatasetError('truncated pixel data: a fragment runs past the end of the file', {
        file,
        field: PIXEL_DATA,
        expected: `${f.length} bytes at offset ${f.position}`,
        found: `${Math.max(0, ds.byteArray.length - f.position)} bytes`,
      });
    }
  }
  try {
    let out: Uint8Array;
    if (a.frames === 1) {
      out = dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixel, 0, fragments.length);
    } else if ((pixel.basicOffsetTable ?? []).length > 0) {
      out = dicomParser.readEncapsulatedImageFrame(ds, pixel, 0);
    } else if (fragments.length === a.frames || codec === 'rle') {
      out = dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixel, 0, 1);
    } else {
      // No offset table and several fragments per frame: frames end at an EOI/EOC marker (FFD9).
      const table = dicomParser.createJPEGBasicOffsetTable(ds, pixel);
      out = dicomParser.readEncapsulatedImageFrame(ds, pixel, 0, table);
    }
    return out;
  } catch (e) {
    throw new DatasetError(`cannot read the first frame's fragments: ${describeError(e)}`, {
      file,
      field: PIXEL_DATA,
      cause: e,
    });
  }
}

/** PS3.5 Annex G: a 64-byte header (segment count, 15 offsets) then one PackBits segment per byte plane. */
function decodeRle(frame: Uint8Array, a: ImageAttributes, file: string): DecodedFrame {
  const bytesPer = a.bitsAllocated / 8;
  const spp = a.samplesPerPixel;
  const pixels = a.rows * a.columns;
  if (frame.length < 64) {
    throw new DatasetError('RLE frame shorter than its 64-byte header', {
      file,
      field: PIXEL_DATA,
      found: `${frame.length} bytes`,
    });
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  const expected = spp * bytesPer;
  if (segments !== expected) {
    throw new DatasetError('RLE segment count does not match Samples per Pixel × Bytes per sample', {
      file,
      field: PIXEL_DATA,
      expected: String(expected),
      found: String(segments),
    });
  }
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  const words: Words =
    bytesPer === 1
      ? new Uint8Array(pixels * spp)
      : bytesPer === 2
        ? new Uint16Array(pixels * spp)
        : new Uint32Array(pixels * spp);
  const plane = new Uint8Array(pixels);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s]!;
    const end = s + 1 < segments ? offsets[s + 1]! : frame.length;
    if (start < 64 || end > frame.length || end < start) {
      throw new DatasetError(`RLE segment ${s + 1} has an invalid offset`, {
        file,
        field: PIXEL_DATA,
        found: `${start}..${end} of ${frame.length} bytes`,
      });
    }
    let out = 0;
    let i = start;
    while (i < end && out < pixels) {
      const h = frame[i++]!;
      if (h < 128) {
        const n = Math.min(h + 1, pixels - out, end - i);
        plane.set(frame.subarray(i, i + n), out);
        out += n;
        i += h + 1;
      } else if (h > 128) {
        const n = Math.min(257 - h, pixels - out);
        if (i >= end) break;
        plane.fill(frame[i++]!, out, out + n);
        out += n;
      }
      // h === 128: no operation
    }
    if (out < pixels) {
      throw new DatasetError(`RLE segment ${s + 1} decodes to fewer bytes than Rows × Columns`, {
        file,
        field: PIXEL_DATA,
        expected: String(pixels),
        found: String(out),
      });
    }
    const sample = Math.floor(s / bytesPer);
    const shift = 8 * (bytesPer - 1 - (s % bytesPer)); // segment order: most significant byte first
    for (let p = 0, q = sample; p < pixels; p++, q += spp) words[q] = words[q]! | (plane[p]! << shift);
  }
  return { words, planar: false };
}

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes?: number): Uint8Array | Uint16Array;
  xDim: number;
  yDim: number;
  numComp: number;
}

interface WasmFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): WasmFrameInfo;
  getInterleaveMode?(): number;
  delete(): void;
}

interface WasmCodecModule {
  J2KDecoder?: new () => WasmDecoder;
  JpegLSDecoder?: new () => WasmDecoder;
}

type WasmFactory = (moduleArg?: Record<string, unknown>) => Promise<WasmCodecModule>;

const require_ = createRequire(import.meta.url);
const wasmModules = new Map<string, Promise<WasmCodecModule>>();

/** Loads (once) an Emscripten codec with its output silenced: the library never prints. */
function wasmCodec(specifier: string): Promise<WasmCodecModule> {
  let m = wasmModules.get(specifier);
  if (!m) {
    const quiet = (): void => {};
    m = (async () => {
      const factory = require_(specifier) as WasmFactory;
      return factory({ print: quiet, printErr: quiet });
    })();
    m.catch(() => wasmModules.delete(specifier));
    wasmModules.set(specifier, m);
  }
  return m;
}

function checkSize(
  got: { width: number; height: number; components: number },
  a: ImageAttributes,
  what: string,
  file: string,
): void {
  if (got.width === 0 || got.height === 0) {
    throw new DatasetError(`the ${what} decoder produced no image (corrupt codestream)`, {
      file,
      field: PIXEL_DATA,
    });
  }
  if (got.width !== a.columns || got.height !== a.rows || got.components !== a.samplesPerPixel) {
    throw new DatasetError(`the ${what} codestream's size differs from the header`, {
      file,
      field: PIXEL_DATA,
      expected: `${a.columns}×${a.rows}×${a.samplesPerPixel} (Columns×Rows×Samples)`,
      found: `${got.width}×${got.height}×${got.components}`,
    });
  }
}

function wordsFromBytes(bytes: Uint8Array, bytesPerSample: number): Words {
  if (bytesPerSample === 1) return Uint8Array.from(bytes);
  const n = Math.floor(bytes.length / 2);
  const out = new Uint16Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 2) out[i] = bytes[p]! | (bytes[p + 1]! << 8);
  return out;
}

function decodeJpegLossless(frame: Uint8Array, a: ImageAttributes, file: string): DecodedFrame {
  if (a.samplesPerPixel === 3 && a.bitsAllocated > 8) {
    throw new UnsupportedFormatError(
      '16-bit colour JPEG Lossless is not supported by the JPEG Lossless decoder',
      {
        file,
        field: PIXEL_DATA,
      },
    );
  }
  const { Decoder } = require_('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };
  const decoder = new Decoder();
  const copy = frame.slice(); // the decoder wants an ArrayBuffer of its own
  const out = decoder.decode(copy.buffer, 0, copy.length, a.bitsAllocated > 8 ? 2 : 1);
  checkSize(
    { width: decoder.xDim, height: decoder.yDim, components: decoder.numComp },
    a,
    'JPEG Lossless',
    file,
  );
  return { words: out, planar: false };
}

/**
 * Decodes one frame with an Emscripten codec (OpenJPEG, CharLS) and checks its size against the header.
 * `finish` builds the result from the samples, the codec's frame info and the decoder, before it is freed.
 */
async function decodeWithWasm(
  specifier: string,
  decoderName: 'J2KDecoder' | 'JpegLSDecoder',
  what: string,
  frame: Uint8Array,
  a: ImageAttributes,
  file: string,
  finish: (words: Words, info: WasmFrameInfo, decoder: WasmDecoder) => DecodedFrame,
): Promise<DecodedFrame> {
  const codec = await wasmCodec(specifier);
  const decoder = new codec[decoderName]!();
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    decoder.decode();
    const info = decoder.getFrameInfo();
    checkSize({ width: info.width, height: info.height, components: info.componentCount }, a, what, file);
    return finish(wordsFromBytes(decoder.getDecodedBuffer(), info.bitsPerSample > 8 ? 2 : 1), info, decoder);
  } finally {
    decoder.delete();
  }
}

function decodeJ2k(
  frame: Uint8Array,
  a: ImageAttributes,
  file: string,
  notes: string[],
): Promise<DecodedFrame> {
  const openjpeg = '@cornerstonejs/codec-openjpeg/decodewasmjs';
  return decodeWithWasm(openjpeg, 'J2KDecoder', 'JPEG 2000', frame, a, file, (words, info) => {
    const signed = info.isSigned === true;
    if (info.bitsPerSample !== a.bitsStored) {
      notes.push(
        `JPEG 2000 precision ${info.bitsPerSample} bits used instead of Bits Stored ${a.bitsStored}`,
      );
    }
    if (a.samplesPerPixel === 1 && signed !== a.signed) {
      notes.push(
        `JPEG 2000 codestream is ${signed ? 'signed' : 'unsigned'}; Pixel Representation ${a.signed ? 1 : 0} overridden`,
      );
    }
    return {
      words,
      planar: false,
      bitsStored: Math.min(info.bitsPerSample, a.bitsAllocated),
      signed: a.samplesPerPixel === 1 ? signed : false,
      rgb: a.samplesPerPixel === 3,
    };
  });
}

function decodeJpegLs(frame: Uint8Array, a: ImageAttributes, file: string): Promise<DecodedFrame> {
  const charls = '@cornerstonejs/codec-charls/decodewasmjs';
  return decodeWithWasm(charls, 'JpegLSDecoder', 'JPEG-LS', frame, a, file, (words, _info, decoder) => {
    // Interleave mode 0 (none) decodes colour plane by plane; line and sample modes decode pixel-interleaved.
    const planar = a.samplesPerPixel === 3 && (decoder.getInterleaveMode?.() ?? 2) === 0;
    return { words, planar };
  });
}

/**
 * A JPEG whose DICOM Photometric Interpretation is RGB holds RGB samples (no colour transform). libjpeg
 * would assume YCbCr for 3 components unless an Adobe APP14 marker or R/G/B component ids say otherwise, so
 * when the stream has neither an APP14 nor a JFIF APP0 marker, an APP14 marker with transform 0 (none) is
 * inserted after SOI. Streams with JFIF (which implies YCbCr) are left as they are.
 */
function markAsRgb(jpeg: Uint8Array): Uint8Array {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return jpeg;
  let p = 2;
  while (p + 4 <= jpeg.length && jpeg[p] === 0xff) {
    const marker = jpeg[p + 1]!;
    if (marker === 0xda || (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xcc)) break;
    const len = (jpeg[p + 2]! << 8) | jpeg[p + 3]!;
    const id = String.fromCharCode(...jpeg.subarray(p + 4, p + 9));
    if ((marker === 0xee && id === 'Adobe') || (marker === 0xe0 && id === 'JFIF\0')) return jpeg;
    p += 2 + len;
  }
  const app14 = [
    0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00,
  ];
  const out = new Uint8Array(jpeg.length + app14.length);
  out.set(jpeg.subarray(0, 2), 0);
  out.set(app14, 2);
  out.set(jpeg.subarray(2), 2 + app14.length);
  return out;
}

async function decodeJpeg8(frame: Uint8Array, a: ImageAttributes, file: string): Promise<DecodedFrame> {
  if (a.bitsStored > 8) {
    throw new UnsupportedFormatError(
      `${a.bitsStored}-bit JPEG Extended needs a 12-bit JPEG codec, which medsynth lacks`,
      {
        file,
        field: field('x00280101', 'BitsStored'),
      },
    );
  }
  const input = a.photometric === 'RGB' ? markAsRgb(frame) : frame;
  // libvips hands out sRGB unless told otherwise, even for a one-component JPEG.
  const { data, info } = await sharp(input, { failOn: 'warning' })
    .toColourspace(a.samplesPerPixel === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  checkSize({ width: info.width, height: info.height, components: info.channels }, a, 'JPEG', file);
  return {
    words: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    planar: false,
    rgb: a.samplesPerPixel === 3,
  };
}

// ---------------------------------------------------------------------------------------------------------
// From words to pixels
// ---------------------------------------------------------------------------------------------------------

/** Stored values: bits HighBit-BitsStored+1..HighBit of each word, sign-extended when signed. */
function storedValues(
  words: Words,
  bitsStored: number,
  highBit: number,
  signed: boolean,
): Int32Array | Float64Array {
  const n = words.length;
  if (bitsStored >= 32) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = signed ? words[i]! | 0 : words[i]!;
    return out;
  }
  const shift = Math.max(0, highBit + 1 - bitsStored);
  const mask = 2 ** bitsStored - 1;
  const signBit = 2 ** (bitsStored - 1);
  const range = 2 ** bitsStored;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let v = (words[i]! >>> shift) & mask;
    if (signed && v >= signBit) v -= range;
    out[i] = v;
  }
  return out;
}

function deplanarize(words: Words, pixels: number): Words {
  const out = new (words.constructor as new (n: number) => Words)(words.length);
  for (let p = 0; p < pixels; p++) {
    out[3 * p] = words[p]!;
    out[3 * p + 1] = words[pixels + p]!;
    out[3 * p + 2] = words[2 * pixels + p]!;
  }
  return out;
}

/** YCbCr (full range, JPEG/JFIF equations, PS3.3 C.7.6.3.1.2) → RGB, in place, for `bits`-bit samples. */
function ybrFullToRgb(words: Words, bits: number): void {
  const max = 2 ** bits - 1;
  const half = 2 ** (bits - 1);
  const clamp = (v: number): number => (v < 0 ? 0 : v > max ? max : Math.round(v));
  for (let i = 0; i + 2 < words.length; i += 3) {
    const y = words[i]!;
    const cb = words[i + 1]! - half;
    const cr = words[i + 2]! - half;
    words[i] = clamp(y + 1.402 * cr);
    words[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    words[i + 2] = clamp(y + 1.772 * cb);
  }
}

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

export interface DicomWindowUsed {
  readonly center: number;
  readonly width: number;
  readonly source: 'file' | 'minmax' | 'user';
  /** VOI LUT Function (0028,1056); LINEAR unless the file's window asks for another. */
  readonly function: VoiFunction;
}

/** What a DICOM file said and what was done with it. */
export interface DicomMeta {
  readonly transferSyntaxUid: string;
  readonly transferSyntaxName: string;
  /** Photometric Interpretation as stored (e.g. MONOCHROME1, RGB, YBR_FULL_422). */
  readonly photometric: string;
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: 1 | 3;
  readonly bitsAllocated: number;
  /** Bits actually used (the JPEG 2000 codestream's precision where it overrides the header). */
  readonly bitsStored: number;
  readonly pixelRepresentation: 0 | 1;
  readonly modality?: string;
  readonly patientId?: string;
  readonly rescale: { readonly slope: number; readonly intercept: number };
  /** The window applied; absent for colour images, which are not windowed. */
  readonly window?: DicomWindowUsed;
  /** Number of Frames (0028,0008), 1 when absent. Only the first frame is decoded. */
  readonly frames: number;
  /** True for MONOCHROME1: output = max − windowed value. */
  readonly inverted: boolean;
  /** Smallest and largest modality value of the decoded frame (grayscale only). */
  readonly valueRange?: { readonly min: number; readonly max: number };
  /** True for files without preamble/meta header (read with an assumed transfer syntax). */
  readonly legacy: boolean;
  readonly notes: readonly string[];
}

export interface DecodeDicomOptions {
  readonly window?: DicomWindow | undefined;
  readonly bitDepth?: 8 | 16 | undefined;
}

/** Throws a ConfigError for an explicit window with a non-finite center or a width below 1. */
export function checkDicomWindow(w: { readonly center: number; readonly width: number }): void {
  if (!Number.isFinite(w.center)) {
    throw new ConfigError('window center must be a finite number', {
      field: 'dicomWindow.center',
      found: String(w.center),
    });
  }
  if (!(Number.isFinite(w.width) && w.width >= 1)) {
    throw new ConfigError('window width must be a number ≥ 1 (DICOM PS3.3 C.11.2.1.2)', {
      field: 'dicomWindow.width',
      found: String(w.width),
    });
  }
}

/**
 * Windowed output value for modality value x (PS3.3 C.11.2.1.2 / C.11.2.1.3), in 0..ymax (not rounded).
 * LINEAR: x ≤ c − ½ − (w−1)/2 → 0; x > c − ½ + (w−1)/2 → ymax; else ((x − (c − ½)) / (w−1) + ½) · ymax.
 */
export function windowValue(
  x: number,
  center: number,
  width: number,
  ymax: number,
  fn: VoiFunction = 'LINEAR',
): number {
  if (fn === 'SIGMOID') return ymax / (1 + Math.exp((-4 * (x - center)) / width));
  if (fn === 'LINEAR_EXACT') {
    if (x <= center - width / 2) return 0;
    if (x > center + width / 2) return ymax;
    return ((x - center) / width + 0.5) * ymax;
  }
  const c = center - 0.5;
  const half = (width - 1) / 2;
  if (x <= c - half) return 0;
  if (x > c + half) return ymax;
  return ((x - c) / (width - 1) + 0.5) * ymax;
}

function fileWindow(ds: DataSet, notes: string[]): Omit<DicomWindowUsed, 'source'> | undefined {
  const center = ds.floatString('x00281050', 0);
  const width = ds.floatString('x00281051', 0);
  if (center === undefined || width === undefined || Number.isNaN(center) || Number.isNaN(width))
    return undefined;
  const fnRaw = str(ds, 'x00281056')?.toUpperCase() ?? 'LINEAR';
  const fn: VoiFunction = fnRaw === 'SIGMOID' || fnRaw === 'LINEAR_EXACT' ? fnRaw : 'LINEAR';
  if (fnRaw !== fn) notes.push(`VOI LUT Function ${fnRaw} unknown; LINEAR used`);
  const minWidth = fn === 'LINEAR' ? 1 : Number.MIN_VALUE;
  if (!(width >= minWidth)) {
    notes.push(`file window width ${width} is invalid; min–max used`);
    return undefined;
  }
  return { center, width, function: fn };
}

/** Pixel Padding Value (and Range Limit) as stored values, to leave out of the min–max window. */
function paddingRange(ds: DataSet, signed: boolean): readonly [number, number] | undefined {
  const read = (tag: string): number | undefined => {
    const el = ds.elements[tag];
    if (!el || el.length < 2) return undefined;
    return signed ? ds.int16(tag) : ds.uint16(tag);
  };
  const value = read('x00280120');
  if (value === undefined) return undefined;
  const limit = read('x00280121') ?? value;
  return [Math.min(value, limit), Math.max(value, limit)];
}

/**
 * Decodes the first frame of a DICOM file to a windowed grayscale (or passed-through RGB) image.
 * See the module comment for the exact pipeline. Errors are DatasetError / UnsupportedFormatError naming
 * the file and the tag; a bad explicit window is a ConfigError.
 */
export async function decodeDicom(
  bytes: Uint8Array,
  file: string,
  opts: DecodeDicomOptions = {},
): Promise<{ image: RawImage; meta: DicomMeta }> {
  const window = opts.window ?? 'auto';
  const bitDepth = opts.bitDepth ?? 8;
  if (typeof window === 'object') checkDicomWindow(window);
  const parsed = parse(bytes, file, false);
  const { ds, transferSyntaxUid } = parsed;
  const tsName = transferSyntaxName(transferSyntaxUid);
  const pixel = ds.elements.x7fe00010;
  if (!pixel) {
    const floatTag = ds.elements.x7fe00008
      ? '(7FE0,0008) FloatPixelData'
      : ds.elements.x7fe00009
        ? '(7FE0,0009) DoubleFloatPixelData'
        : undefined;
    if (floatTag)
      throw new UnsupportedFormatError('float pixel data is not supported', { file, field: floatTag });
    const sopClass = str(ds, 'x00080016');
    throw new DatasetError('no pixel data: not an image object', {
      file,
      field: PIXEL_DATA,
      ...(sopClass
        ? {
            found: `SOP Class ${sopClass}${str(ds, 'x00080060') ? `, Modality ${str(ds, 'x00080060')}` : ''}`,
          }
        : {}),
    });
  }
  const codec = codecOf(transferSyntaxUid);
  if (codec === 'none') {
    throw new UnsupportedFormatError(`transfer syntax ${transferSyntaxUid} (${tsName}) is not supported`, {
      file,
      field: '(0002,0010) TransferSyntaxUID',
      expected: 'native, RLE, JPEG Baseline, JPEG Lossless, JPEG-LS or JPEG 2000',
      found: `${transferSyntaxUid} ${tsName}`,
    });
  }
  const notes: string[] = [];
  if (parsed.legacy) notes.push(`no DICOM preamble/meta header; read as ${tsName}`);
  const a = attributes(ds, file, notes);
  if (a.frames > 1) notes.push(`${a.frames} frames; only the first is decoded`);
  const ph = a.photometric;
  const mono = ph === 'MONOCHROME1' || ph === 'MONOCHROME2';
  if (ph === 'PALETTE COLOR') {
    throw new UnsupportedFormatError('PALETTE COLOR images are not supported', {
      file,
      field: field('x00280004', 'PhotometricInterpretation'),
      found: ph,
    });
  }
  const colour = ['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT'];
  if (
    (mono && a.samplesPerPixel !== 1) ||
    (colour.includes(ph) && a.samplesPerPixel !== 3) ||
    (!mono && !colour.includes(ph))
  ) {
    throw new UnsupportedFormatError(
      'unsupported Photometric Interpretation / Samples per Pixel combination',
      {
        file,
        field: field('x00280004', 'PhotometricInterpretation'),
        expected:
          'MONOCHROME1/2 with 1 sample, RGB/YBR_FULL (native/RLE) or YBR_FULL_422/YBR_ICT/YBR_RCT (JPEG/J2K) with 3',
        found: `${ph} with ${a.samplesPerPixel} sample(s)`,
      },
    );
  }

  let frame: DecodedFrame;
  try {
    if (codec === 'native' || codec === 'native-be') {
      if (ph === 'YBR_FULL_422') {
        throw new UnsupportedFormatError(
          'uncompressed YBR_FULL_422 (chroma-subsampled) pixel data is not supported',
          {
            file,
            field: field('x00280004', 'PhotometricInterpretation'),
          },
        );
      }
      frame = nativeFrame(ds, pixel, a, codec === 'native-be', file);
    } else {
      const encoded = firstEncapsulatedFrame(ds, pixel, a, codec, file);
      if (codec === 'rle') frame = decodeRle(encoded, a, file);
      else if (codec === 'jpeg-lossless') frame = decodeJpegLossless(encoded, a, file);
      else if (codec === 'j2k') frame = await decodeJ2k(encoded, a, file, notes);
      else if (codec === 'jpeg-ls') frame = await decodeJpegLs(encoded, a, file);
      else frame = await decodeJpeg8(encoded, a, file);
    }
  } catch (e) {
    if (isMedsynthError(e)) throw e;
    throw new DatasetError(`cannot decode ${tsName} pixel data: ${describeError(e)}`, {
      file,
      field: PIXEL_DATA,
      cause: e,
    });
  }

  const pixels = a.rows * a.columns;
  let words = frame.words;
  if (words.length < pixels * a.samplesPerPixel) {
    throw new DatasetError('the decoded frame has fewer samples than Rows × Columns × Samples', {
      file,
      field: PIXEL_DATA,
      expected: String(pixels * a.samplesPerPixel),
      found: String(words.length),
    });
  }
  if (words.length > pixels * a.samplesPerPixel) words = words.subarray(0, pixels * a.samplesPerPixel);
  const bitsStored = frame.bitsStored ?? a.bitsStored;
  const highBit = frame.bitsStored !== undefined ? frame.bitsStored - 1 : a.highBit;
  const signed = frame.signed ?? a.signed;
  const modality = str(ds, 'x00080060');
  const patientId = str(ds, 'x00100020');
  const ymax = bitDepth === 16 ? 65535 : 255;
  const base = {
    transferSyntaxUid,
    transferSyntaxName: tsName,
    photometric: ph,
    rows: a.rows,
    columns: a.columns,
    samplesPerPixel: a.samplesPerPixel,
    bitsAllocated: a.bitsAllocated,
    bitsStored,
    pixelRepresentation: signed ? 1 : 0,
    ...(modality !== undefined ? { modality } : {}),
    ...(patientId !== undefined ? { patientId } : {}),
    frames: a.frames,
    legacy: parsed.legacy,
  } as const;

  if (a.samplesPerPixel === 3) {
    if (frame.planar) words = deplanarize(words, pixels);
    if (ph === 'YBR_FULL' && !frame.rgb) ybrFullToRgb(words, bitsStored);
    if ((ph === 'YBR_ICT' || ph === 'YBR_RCT') && !frame.rgb) {
      throw new UnsupportedFormatError(`${ph} is only valid with JPEG 2000`, {
        file,
        field: field('x00280004', 'PhotometricInterpretation'),
      });
    }
    const values = storedValues(words, bitsStored, highBit, false);
    const inMax = 2 ** bitsStored - 1;
    const data = bitDepth === 16 ? new Uint16Array(values.length) : new Uint8Array(values.length);
    if (inMax === ymax) data.set(values);
    else if (inMax === 255 && ymax === 65535)
      for (let i = 0; i < values.length; i++) data[i] = values[i]! * 257;
    else if (inMax === 65535 && ymax === 255)
      for (let i = 0; i < values.length; i++) data[i] = Math.round(values[i]! / 257);
    else for (let i = 0; i < values.length; i++) data[i] = Math.round((values[i]! * ymax) / inMax);
    if (ph !== 'RGB') notes.push(`${ph} converted to RGB`);
    return {
      image: { width: a.columns, height: a.rows, channels: 3, data },
      meta: { ...base, rescale: { slope: 1, intercept: 0 }, inverted: false, notes },
    };
  }

  // Grayscale.
  const values = storedValues(words, bitsStored, highBit, signed);
  const slopeRaw = ds.floatString('x00281053', 0);
  const interceptRaw = ds.floatString('x00281052', 0);
  const slope = slopeRaw !== undefined && Number.isFinite(slopeRaw) && slopeRaw !== 0 ? slopeRaw : 1;
  const intercept = interceptRaw !== undefined && Number.isFinite(interceptRaw) ? interceptRaw : 0;
  if (slopeRaw === 0) notes.push('Rescale Slope 0 ignored (1 used)');
  if (ds.elements.x00283000 && slopeRaw === undefined)
    notes.push('Modality LUT Sequence ignored (identity used)');

  const padding = paddingRange(ds, signed);
  let minS = Number.POSITIVE_INFINITY;
  let maxS = Number.NEGATIVE_INFINITY;
  let padded = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (padding && v >= padding[0] && v <= padding[1]) {
      padded++;
      continue;
    }
    if (v < minS) minS = v;
    if (v > maxS) maxS = v;
  }
  if (minS > maxS) {
    // Everything is padding: fall back to the full range.
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < minS) minS = v;
      if (v > maxS) maxS = v;
    }
  }
  const m1 = minS * slope + intercept;
  const m2 = maxS * slope + intercept;
  const valueRange = { min: Math.min(m1, m2), max: Math.max(m1, m2) };

  let used: DicomWindowUsed;
  const fromFile = window === 'auto' ? fileWindow(ds, notes) : undefined;
  if (typeof window === 'object') {
    used = { center: window.center, width: window.width, source: 'user', function: 'LINEAR' };
  } else if (fromFile) {
    used = { ...fromFile, source: 'file' };
  } else {
    // c − ½ − (w−1)/2 = min and c − ½ + (w−1)/2 = max: min → 0 and max → ymax exactly.
    used = {
      center: (valueRange.min + valueRange.max) / 2 + 0.5,
      width: valueRange.max - valueRange.min + 1,
      source: 'minmax',
      function: 'LINEAR',
    };
    if (padded > 0) notes.push(`${padded} Pixel Padding Value pixels left out of the min–max window`);
  }
  if (ds.elements.x00283010 && used.source !== 'file' && window === 'auto') {
    notes.push('VOI LUT Sequence ignored (no Window Center/Width); min–max used');
  }

  const inverted = ph === 'MONOCHROME1';
  const data = bitDepth === 16 ? new Uint16Array(pixels) : new Uint8Array(pixels);
  const { center, width } = used;
  for (let i = 0; i < pixels; i++) {
    const y = Math.round(windowValue(values[i]! * slope + intercept, center, width, ymax, used.function));
    data[i] = inverted ? ymax - y : y;
  }
  if (inverted) notes.push('MONOCHROME1 inverted after windowing (high = bright)');
  return {
    image: { width: a.columns, height: a.rows, channels: 1, data },
    meta: { ...base, rescale: { slope, intercept }, window: used, inverted, valueRange, notes },
  };
}
