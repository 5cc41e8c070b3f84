/**
 * Hand-crafted texture features for conventional (non-deep) classifiers: pure functions on image arrays,
 * no TF. Every extractor works on one grey image as float64 values in 0..255 (see `greyImage`); the
 * feature length depends only on the image size and the options.
 *
 * - **LBP** (`lbpHistogram`): uniform rotation-invariant local binary patterns, "riu2" (Ojala, Pietikäinen
 *   & Mäenpää 2002, IEEE TPAMI 24(7)). P neighbours on a circle of radius R around each centre pixel,
 *   neighbour p at row offset −R·sin(2πp/P), column offset R·cos(2πp/P), both rounded to 5 decimals (as
 *   scikit-image does, so on-grid neighbours are exact), grey value by bilinear interpolation written as
 *   nested lerps `a + f·(b − a)` (exact where the four pixels agree). Bit s_p = 1 when g_p ≥ g_c. With U the
 *   number of 0/1 transitions around the circle, the code is Σ s_p when U ≤ 2, else P + 1. Only centres
 *   whose whole circle lies inside the image count (a border of ⌈R⌉ pixels is skipped; no padding). The
 *   histogram of the P + 2 codes is normalised to sum 1.
 * - **GLCM** (`glcmMatrix`, `glcmFeatures`): grey-level co-occurrence (Haralick, Shanmugam & Dinstein 1973).
 *   Grey values quantised to L levels, q = min(L − 1, ⌊g·L/256⌋); for each distance d the four offsets
 *   (Δrow, Δcol) = (0, d) 0°, (d, d) 45°, (d, 0) 90°, (d, −d) 135° (chessboard distance d); pairs with both
 *   pixels inside the image; the count matrix C plus its transpose (symmetric), divided by its sum → P.
 *   Features per matrix, with i, j the level indices 0..L−1:
 *     contrast Σ P(i,j)(i−j)², dissimilarity Σ P|i−j|, homogeneity Σ P/(1+(i−j)²),
 *     energy √(Σ P²) (the square root of the angular second moment), correlation
 *     Σ (i−μ)(j−μ)P / σ² with μ = Σ i·P, σ² = Σ (i−μ)²P (P symmetric, so row and column moments agree;
 *     1 when σ < 1e-15, as scikit-image does), entropy −Σ P·log2 P (0·log 0 = 0).
 *   Each feature is averaged over the four angles; the vector is [6 features] per distance.
 * - **HOG** (`hogDescriptor`): histograms of oriented gradients (Dalal & Triggs 2005). Gradients by the
 *   centred [−1, 0, 1] filter in both axes (0 on the outermost row/column, as scikit-image); magnitude
 *   √(gx² + gy²); unsigned orientation θ = atan2(gy, gx) mod π. Each pixel votes its magnitude into the two
 *   orientation bins whose centres ((b + ½)·π/B) are nearest θ, linearly (circular: bin B−1 neighbours bin
 *   0); no spatial interpolation. Cells of c×c pixels from the top-left corner (rows/columns beyond the
 *   last whole cell are ignored); blocks of b×b cells with a stride of one cell; each block vector
 *   v ← v/√(‖v‖² + ε²), clipped at 0.2, renormalised the same way (L2-Hys, ε = 1e-5). Descriptor order:
 *   block row, block column, cell row in block, cell column in block, orientation bin.
 *
 * `textureFeatures` stacks one or more of these for a whole image array: a row-major `[count, dim]` matrix.
 */
import { z } from 'zod';
import type { ImageArray } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';

/** Named feature sets: one extractor or several concatenated in the written order. */
export const FEATURE_SETS = [
  'lbp',
  'glcm',
  'hog',
  'lbp+glcm',
  'lbp+hog',
  'glcm+hog',
  'lbp+glcm+hog',
] as const;
export type FeatureSet = (typeof FEATURE_SETS)[number];

const LbpScaleSchema = z
  .object({
    /** Neighbours on the circle (4..31: a code must fit a 32-bit integer). */
    points: z.number().int().min(4).max(31),
    /** Circle radius in pixels. */
    radius: z.number().positive().max(32),
  })
  .strict();

export const TextureOptionsSchema = z
  .object({
    /** LBP (P, R) scales; the multi-radius descriptor concatenates their histograms. */
    lbpScales: z
      .array(LbpScaleSchema)
      .min(1)
      .default([
        { points: 8, radius: 1 },
        { points: 16, radius: 2 },
        { points: 24, radius: 3 },
      ]),
    /** GLCM grey levels. */
    glcmLevels: z.number().int().min(2).max(256).default(16),
    /** GLCM pixel distances (each at 0°, 45°, 90°, 135°). */
    glcmDistances: z.array(z.number().int().min(1).max(64)).min(1).default([1, 2]),
    /** HOG cell side in pixels. */
    hogCellSize: z.number().int().min(2).max(64).default(8),
    /** HOG block side in cells. */
    hogBlockSize: z.number().int().min(1).max(8).default(2),
    /** HOG unsigned orientation bins over 0..180°. */
    hogBins: z.number().int().min(2).max(36).default(9),
  })
  .strict();

export type TextureOptionsInput = z.input<typeof TextureOptionsSchema>;
export type TextureOptions = z.output<typeof TextureOptionsSchema>;

export const DEFAULT_TEXTURE_OPTIONS: TextureOptions = TextureOptionsSchema.parse({});

/** The names of the six GLCM features, in vector order. */
export const GLCM_FEATURES = [
  'contrast',
  'dissimilarity',
  'homogeneity',
  'energy',
  'correlation',
  'entropy',
] as const;

const HOG_EPS = 1e-5;
const HOG_CLIP = 0.2;

// ---------------------------------------------------------------------------------------------- grey

/**
 * Image `index` of `images` as grey float64 values in 0..255, row-major `height × width`: 1 channel
 * scaled by 255/maxValue; 3 channels as BT.601 luma (299 R + 587 G + 114 B)/1000 (then scaled). No rounding.
 * Writes into `out` when given (length height·width).
 */
export function greyImage(images: ImageArray, index: number, out?: Float64Array): Float64Array {
  const { height, width, channels, data, maxValue } = images;
  const n = height * width;
  const g = out ?? new Float64Array(n);
  const scale = 255 / maxValue;
  const base = index * n * channels;
  if (channels === 1) {
    if (scale === 1) for (let i = 0; i < n; i++) g[i] = data[base + i]!;
    else for (let i = 0; i < n; i++) g[i] = data[base + i]! * scale;
  } else {
    for (let i = 0, s = base; i < n; i++, s += 3) {
      // Integer weights and one division: exact for grey pixels (R = G = B), correctly rounded otherwise.
      const y = (299 * data[s]! + 587 * data[s + 1]! + 114 * data[s + 2]!) / 1000;
      g[i] = scale === 1 ? y : y * scale;
    }
  }
  return g;
}

// ----------------------------------------------------------------------------------------------- LBP

/** Neighbour offsets of an LBP scale: rows −R sin(2πp/P), columns R cos(2πp/P), rounded to 5 decimals. */
function lbpOffsets(points: number, radius: number): { dy: Float64Array; dx: Float64Array } {
  const dy = new Float64Array(points);
  const dx = new Float64Array(points);
  for (let p = 0; p < points; p++) {
    const a = (2 * Math.PI * p) / points;
    dy[p] = Math.round(-radius * Math.sin(a) * 1e5) / 1e5;
    dx[p] = Math.round(radius * Math.cos(a) * 1e5) / 1e5;
  }
  return { dy, dx };
}

/** riu2 code of every P-bit pattern is computed on the fly from the bit mask: popcount and transitions. */
function popcount32(v: number): number {
  let x = v - ((v >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Pixels left out at each side for an LBP radius. */
export function lbpMargin(radius: number): number {
  return Math.ceil(radius - 1e-9);
}

/**
 * riu2 LBP codes (0..P+1) of the centre pixels of a grey image, row-major over the
 * `(height − 2m) × (width − 2m)` centres, m = ⌈R⌉ (see the module comment). `work` is an optional scratch
 * buffer of at least that many int32s.
 */
export function lbpCodes(
  grey: Float64Array,
  height: number,
  width: number,
  points: number,
  radius: number,
  work?: Int32Array,
): Uint8Array {
  const m = lbpMargin(radius);
  const ch = height - 2 * m;
  const cw = width - 2 * m;
  if (ch < 1 || cw < 1) {
    throw new DatasetError('image too small for the LBP radius', {
      field: 'images',
      expected: `height and width > ${2 * m}`,
      found: `${height}×${width}`,
    });
  }
  const nc = ch * cw;
  const mask = work && work.length >= nc ? work.subarray(0, nc).fill(0) : new Int32Array(nc);
  const { dy, dx } = lbpOffsets(points, radius);
  for (let p = 0; p < points; p++) {
    const fy0 = Math.floor(dy[p]!);
    const fx0 = Math.floor(dx[p]!);
    const fy = dy[p]! - fy0;
    const fx = dx[p]! - fx0;
    if (fy === 0 && fx === 0) {
      // On the grid: one pixel.
      for (let y = 0, k = 0; y < ch; y++) {
        const row = (y + m) * width + m;
        const nrow = (y + m + fy0) * width + m + fx0;
        for (let x = 0; x < cw; x++, k++) mask[k]! |= +(grey[nrow + x]! >= grey[row + x]!) << p;
      }
    } else {
      // (Branch-free bit setting: on noisy images a branch per comparison mispredicts half the time.)
      // Bilinear between rows y+fy0, y+fy0+1 and columns x+fx0, x+fx0+1 (indices past the image are never
      // read with a non-zero weight: a zero fraction means the far pixel is not needed, and is not read).
      const y1 = fy > 0 ? 1 : 0;
      const x1 = fx > 0 ? 1 : 0;
      for (let y = 0, k = 0; y < ch; y++) {
        const row = (y + m) * width + m;
        const top = (y + m + fy0) * width + m + fx0;
        const bottom = top + y1 * width;
        for (let x = 0; x < cw; x++, k++) {
          const a = grey[top + x]!;
          const b = grey[top + x + x1]!;
          const c = grey[bottom + x]!;
          const d = grey[bottom + x + x1]!;
          const t = a + fx * (b - a);
          const u = c + fx * (d - c);
          mask[k]! |= +(t + fy * (u - t) >= grey[row + x]!) << p;
        }
      }
    }
  }
  const codes = new Uint8Array(nc);
  const full = points === 31 ? 0x7fffffff : (1 << points) - 1;
  for (let k = 0; k < nc; k++) {
    const v = mask[k]!;
    // Rotate by one within P bits; the transitions are the set bits of v XOR rot(v).
    const rot = ((v >>> 1) | ((v & 1) << (points - 1))) & full;
    const u = popcount32(v ^ rot);
    codes[k] = u <= 2 ? popcount32(v) : points + 1;
  }
  return codes;
}

/** Normalised riu2 LBP histogram (P + 2 bins, sum 1) of a grey image; see `lbpCodes`. */
export function lbpHistogram(
  grey: Float64Array,
  height: number,
  width: number,
  points: number,
  radius: number,
  work?: Int32Array,
): Float64Array {
  const codes = lbpCodes(grey, height, width, points, radius, work);
  const hist = new Float64Array(points + 2);
  for (let k = 0; k < codes.length; k++) hist[codes[k]!]!++;
  for (let b = 0; b < hist.length; b++) hist[b]! /= codes.length;
  return hist;
}

// ---------------------------------------------------------------------------------------------- GLCM

/** Grey value → level index: min(L − 1, ⌊g·L/256⌋). */
export function quantise(grey: Float64Array, levels: number, out?: Uint8Array): Uint8Array {
  const q = out ?? new Uint8Array(grey.length);
  const f = levels / 256;
  for (let i = 0; i < grey.length; i++) {
    const v = Math.floor(grey[i]! * f);
    q[i] = v < 0 ? 0 : v >= levels ? levels - 1 : v;
  }
  return q;
}

/** The four GLCM offsets (Δrow, Δcol) at distance d: 0°, 45°, 90°, 135°. */
export function glcmOffsets(distance: number): [number, number][] {
  return [
    [0, distance],
    [distance, distance],
    [distance, 0],
    [distance, -distance],
  ];
}

/**
 * The symmetric, normalised co-occurrence matrix (row-major L×L, sum 1) of a quantised image for one offset.
 * `counts` is optional scratch of L² float64s. Throws when no pixel pair fits the image.
 */
export function glcmMatrix(
  q: Uint8Array,
  height: number,
  width: number,
  levels: number,
  dRow: number,
  dCol: number,
  counts?: Float64Array,
): Float64Array {
  const L = levels;
  const c = counts && counts.length >= L * L ? counts.subarray(0, L * L).fill(0) : new Float64Array(L * L);
  const y0 = Math.max(0, -dRow);
  const y1 = Math.min(height, height - dRow);
  const x0 = Math.max(0, -dCol);
  const x1 = Math.min(width, width - dCol);
  if (y1 <= y0 || x1 <= x0) {
    throw new DatasetError('image too small for the GLCM distance', {
      field: 'images',
      expected: `height and width > ${Math.max(Math.abs(dRow), Math.abs(dCol))}`,
      found: `${height}×${width}`,
    });
  }
  const shift = dRow * width + dCol;
  for (let y = y0; y < y1; y++) {
    const row = y * width;
    for (let x = x0; x < x1; x++) {
      const i = q[row + x]!;
      const j = q[row + x + shift]!;
      c[i * L + j]!++;
      c[j * L + i]!++;
    }
  }
  const total = 2 * (y1 - y0) * (x1 - x0);
  const p = new Float64Array(L * L);
  for (let k = 0; k < L * L; k++) p[k] = c[k]! / total;
  return p;
}

/** The six Haralick features of one normalised symmetric GLCM, in `GLCM_FEATURES` order. */
export function glcmProperties(p: Float64Array, levels: number): Float64Array {
  const L = levels;
  let contrast = 0;
  let dissimilarity = 0;
  let homogeneity = 0;
  let asm = 0;
  let entropy = 0;
  let mu = 0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const v = p[i * L + j]!;
      if (v === 0) continue;
      const d = i - j;
      contrast += v * d * d;
      dissimilarity += v * Math.abs(d);
      homogeneity += v / (1 + d * d);
      asm += v * v;
      entropy -= v * Math.log2(v);
      mu += i * v;
    }
  }
  let variance = 0;
  let covariance = 0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const v = p[i * L + j]!;
      if (v === 0) continue;
      variance += (i - mu) * (i - mu) * v;
      covariance += (i - mu) * (j - mu) * v;
    }
  }
  const correlation = Math.sqrt(variance) < 1e-15 ? 1 : covariance / variance;
  return Float64Array.of(contrast, dissimilarity, homogeneity, Math.sqrt(asm), correlation, entropy);
}

/**
 * GLCM features of a grey image: for each distance, the six features of `GLCM_FEATURES` averaged over the
 * four angles (length 6 × distances).
 */
export function glcmFeatures(
  grey: Float64Array,
  height: number,
  width: number,
  levels: number,
  distances: readonly number[],
): Float64Array {
  const q = quantise(grey, levels);
  const counts = new Float64Array(levels * levels);
  const out = new Float64Array(6 * distances.length);
  distances.forEach((d, di) => {
    for (const [dr, dc] of glcmOffsets(d)) {
      const props = glcmProperties(glcmMatrix(q, height, width, levels, dr, dc, counts), levels);
      for (let f = 0; f < 6; f++) out[di * 6 + f]! += props[f]! / 4;
    }
  });
  return out;
}

// ----------------------------------------------------------------------------------------------- HOG

/** HOG descriptor length for an image size (0 when fewer cells than a block). */
export function hogLength(height: number, width: number, cellSize = 8, blockSize = 2, bins = 9): number {
  const by = Math.floor(height / cellSize) - blockSize + 1;
  const bx = Math.floor(width / cellSize) - blockSize + 1;
  return by > 0 && bx > 0 ? by * bx * blockSize * blockSize * bins : 0;
}

/** HOG descriptor of a grey image (see the module comment). Throws when the image holds no whole block. */
export function hogDescriptor(
  grey: Float64Array,
  height: number,
  width: number,
  cellSize = 8,
  blockSize = 2,
  bins = 9,
): Float64Array {
  const length = hogLength(height, width, cellSize, blockSize, bins);
  if (length === 0) {
    throw new DatasetError('image too small for a HOG block', {
      field: 'images',
      expected: `height and width ≥ ${cellSize * blockSize}`,
      found: `${height}×${width}`,
    });
  }
  const cy = Math.floor(height / cellSize);
  const cx = Math.floor(width / cellSize);
  const cells = new Float64Array(cy * cx * bins);
  const binsPerRadian = bins / Math.PI;
  for (let y = 0; y < cy * cellSize; y++) {
    const cellRow = Math.floor(y / cellSize) * cx;
    const row = y * width;
    for (let x = 0; x < cx * cellSize; x++) {
      const gx = x > 0 && x < width - 1 ? grey[row + x + 1]! - grey[row + x - 1]! : 0;
      const gy = y > 0 && y < height - 1 ? grey[row + width + x]! - grey[row - width + x]! : 0;
      const mag = Math.sqrt(gx * gx + gy * gy);
      if (mag === 0) continue;
      let theta = Math.atan2(gy, gx);
      if (theta < 0) theta += Math.PI;
      if (theta >= Math.PI) theta -= Math.PI;
      const pos = theta * binsPerRadian - 0.5;
      const b0 = Math.floor(pos);
      const frac = pos - b0;
      const lo = b0 < 0 ? b0 + bins : b0;
      const hi = b0 + 1 >= bins ? b0 + 1 - bins : b0 + 1;
      const base = (cellRow + Math.floor(x / cellSize)) * bins;
      cells[base + lo]! += mag * (1 - frac);
      cells[base + hi]! += mag * frac;
    }
  }
  const out = new Float64Array(length);
  const by = cy - blockSize + 1;
  const bx = cx - blockSize + 1;
  const blockLen = blockSize * blockSize * bins;
  let o = 0;
  for (let i = 0; i < by; i++) {
    for (let j = 0; j < bx; j++) {
      const start = o;
      for (let a = 0; a < blockSize; a++) {
        for (let b = 0; b < blockSize; b++) {
          const base = ((i + a) * cx + (j + b)) * bins;
          for (let k = 0; k < bins; k++) out[o++] = cells[base + k]!;
        }
      }
      l2Hys(out, start, blockLen);
    }
  }
  return out;
}

/** L2-Hys normalisation of `v[start .. start+n)` in place. */
function l2Hys(v: Float64Array, start: number, n: number): void {
  let s = 0;
  for (let k = start; k < start + n; k++) s += v[k]! * v[k]!;
  let norm = Math.sqrt(s + HOG_EPS * HOG_EPS);
  s = 0;
  for (let k = start; k < start + n; k++) {
    const x = Math.min(v[k]! / norm, HOG_CLIP);
    v[k] = x;
    s += x * x;
  }
  norm = Math.sqrt(s + HOG_EPS * HOG_EPS);
  for (let k = start; k < start + n; k++) v[k]! /= norm;
}

// ------------------------------------------------------------------------------------------- stacked

/** A row-major `[rows, cols]` feature matrix with a name per column. */
export interface FeatureMatrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
  readonly names: readonly string[];
}

/** The extractors of a feature set, in order. */
export function featureParts(set: FeatureSet): ('lbp' | 'glcm' | 'hog')[] {
  return set.split('+') as ('lbp' | 'glcm' | 'hog')[];
}

/** Column names of a feature set for an image size (its length is the feature dimension). */
export function featureNames(
  set: FeatureSet,
  height: number,
  width: number,
  options: TextureOptions = DEFAULT_TEXTURE_OPTIONS,
): string[] {
  const names: string[] = [];
  for (const part of featureParts(set)) {
    if (part === 'lbp') {
      for (const { points, radius } of options.lbpScales) {
        for (let b = 0; b < points + 2; b++) names.push(`lbp.P${points}R${radius}.${b}`);
      }
    } else if (part === 'glcm') {
      for (const d of options.glcmDistances) for (const f of GLCM_FEATURES) names.push(`glcm.d${d}.${f}`);
    } else {
      const n = hogLength(height, width, options.hogCellSize, options.hogBlockSize, options.hogBins);
      for (let k = 0; k < n; k++) names.push(`hog.${k}`);
    }
  }
  return names;
}

/**
 * Texture features of every image: a row-major `[count, dim]` float64 matrix, the extractors of `set`
 * concatenated in order (LBP histograms per scale, then GLCM, then HOG). Images of 1 or 3 channels, any
 * `maxValue` (see `greyImage`). `onImage` (optional) is called after each image with the number done.
 * Throws a `DatasetError` when the images are too small for an extractor.
 */
export function textureFeatures(
  images: ImageArray,
  set: FeatureSet,
  options: TextureOptionsInput | TextureOptions = {},
  onImage?: (done: number) => void,
): FeatureMatrix {
  const o = TextureOptionsSchema.parse(options);
  if (!(FEATURE_SETS as readonly string[]).includes(set)) {
    throw new RangeError(`unknown feature set "${String(set)}" (one of ${FEATURE_SETS.join(', ')})`);
  }
  const { height, width, count } = images;
  const names = featureNames(set, height, width, o);
  const parts = featureParts(set);
  const cols = names.length;
  const data = new Float64Array(count * cols);
  const grey = new Float64Array(height * width);
  const work = new Int32Array(height * width);
  for (let n = 0; n < count; n++) {
    greyImage(images, n, grey);
    let off = n * cols;
    for (const part of parts) {
      if (part === 'lbp') {
        for (const { points, radius } of o.lbpScales) {
          data.set(lbpHistogram(grey, height, width, points, radius, work), off);
          off += points + 2;
        }
      } else if (part === 'glcm') {
        const f = glcmFeatures(grey, height, width, o.glcmLevels, o.glcmDistances);
        data.set(f, off);
        off += f.length;
      } else {
        const f = hogDescriptor(grey, height, width, o.hogCellSize, o.hogBlockSize, o.hogBins);
        data.set(f, off);
        off += f.length;
      }
    }
    onImage?.(n + 1);
  }
  return { data, rows: count, cols, names };
}
