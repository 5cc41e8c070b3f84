/**
 * Image grids: rows of same-sized images tiled into one picture with a gap, and PNG encoding.
 * Used for dataset previews (one row per class) and, later, real-vs-synthetic sample grids.
 */
import sharp from 'sharp';
import type { RawImage } from '../types.js';
import { convertBitDepth, convertChannels } from './transform.js';

export interface GridOptions {
  /** Pixels between cells (default 2). */
  readonly gap?: number;
  /** Gap/background grey level 0–255 (default 32). */
  readonly background?: number;
}

/**
 * Tiles `rows` (each a list of images of one size) into one 8-bit image; rows may be ragged. Gray images are
 * replicated to RGB when any image is RGB. Empty cells stay background.
 */
export function tileImages(rows: readonly (readonly RawImage[])[], options: GridOptions = {}): RawImage {
  const gap = options.gap ?? 2;
  const bg = options.background ?? 32;
  const all = rows.flat();
  const first = all[0];
  if (!first) throw new RangeError('tileImages: no images');
  const { width: cw, height: ch } = first;
  const channels: 1 | 3 = all.some((i) => i.channels === 3) ? 3 : 1;
  const cols = Math.max(...rows.map((r) => r.length));
  const width = cols * cw + (cols + 1) * gap;
  const height = rows.length * ch + (rows.length + 1) * gap;
  const out = new Uint8Array(width * height * channels).fill(bg);
  rows.forEach((row, r) => {
    row.forEach((img0, c) => {
      if (img0.width !== cw || img0.height !== ch) {
        throw new RangeError(
          `tileImages: image ${r},${c} is ${img0.width}x${img0.height}, expected ${cw}x${ch}`,
        );
      }
      const img = convertChannels(convertBitDepth(img0, 8), channels);
      const x0 = gap + c * (cw + gap);
      const y0 = gap + r * (ch + gap);
      for (let y = 0; y < ch; y++) {
        const src = img.data.subarray(y * cw * channels, (y + 1) * cw * channels);
        out.set(src, ((y0 + y) * width + x0) * channels);
      }
    });
  });
  return { width, height, channels, data: out };
}

/** Encodes an image as PNG (16-bit stays 16-bit). */
export async function encodePng(img: RawImage): Promise<Buffer> {
  const is16 = img.data instanceof Uint16Array;
  const colourspace = img.channels === 1 ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb';
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .toColourspace(colourspace)
    .png()
    .toBuffer();
}
