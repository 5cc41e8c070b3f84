/**
 * One image of an embedding map as a PNG: cell `i` of the evaluation's thumbnail sheet
 * (`embedding-thumbnails.png`: cells left to right, then top to bottom, no gaps — metrics/embedding-map.ts).
 * A sheet is decoded once (sharp) and kept while its modification time holds; each cell's PNG is cached, so a
 * pointer moving over a map costs one small encode per new point.
 */
import { stat } from 'node:fs/promises';
import type { EmbeddingThumbnails } from '../metrics/embedding-map.js';

interface Sheet {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 2 | 3 | 4;
}

/** Least-recently-used map with a size cap. */
class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly max: number) {}
  get(k: K): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.#map.delete(k);
    this.#map.set(k, v);
    while (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }
  delete(k: K): void {
    this.#map.delete(k);
  }
}

export class ThumbnailCells {
  readonly #sheets = new Lru<string, Promise<Sheet>>(4);
  readonly #cells = new Lru<string, Promise<Buffer>>(4096);

  /** The PNG of cell `i` of the sheet `file` laid out as `layout`; throws a RangeError when it is not there. */
  async cell(file: string, layout: EmbeddingThumbnails, i: number): Promise<Buffer> {
    if (!Number.isInteger(i) || i < 0 || i >= layout.count) throw new RangeError(`no thumbnail ${i}`);
    const { mtimeMs } = await stat(file);
    const key = `${file}\0${mtimeMs}`;
    const cellKey = `${key}\0${i}`;
    const hit = this.#cells.get(cellKey);
    if (hit) return hit;
    const png = this.#encode(key, file, layout, i);
    this.#cells.set(cellKey, png);
    png.catch(() => this.#cells.delete(cellKey));
    return png;
  }

  #sheet(key: string, file: string): Promise<Sheet> {
    let sheet = this.#sheets.get(key);
    if (!sheet) {
      sheet = import('sharp')
        .then(({ default: sharp }) => sharp(file).raw().toBuffer({ resolveWithObject: true }))
        .then(({ data, info }) => ({
          data,
          width: info.width,
          height: info.height,
          channels: info.channels,
        }));
      this.#sheets.set(key, sheet);
      sheet.catch(() => this.#sheets.delete(key));
    }
    return sheet;
  }

  async #encode(key: string, file: string, layout: EmbeddingThumbnails, i: number): Promise<Buffer> {
    const sheet = await this.#sheet(key, file);
    const { cellWidth: w, cellHeight: ht, columns } = layout;
    const x0 = (i % columns) * w;
    const y0 = Math.floor(i / columns) * ht;
    if (x0 + w > sheet.width || y0 + ht > sheet.height)
      throw new RangeError(`thumbnail ${i} lies outside the ${sheet.width}×${sheet.height} sheet`);
    const c = sheet.channels;
    const out = Buffer.alloc(w * ht * c);
    for (let y = 0; y < ht; y++)
      sheet.data.copy(
        out,
        y * w * c,
        ((y0 + y) * sheet.width + x0) * c,
        ((y0 + y) * sheet.width + x0 + w) * c,
      );
    const { default: sharp } = await import('sharp');
    return sharp(out, { raw: { width: w, height: ht, channels: c } })
      .png()
      .toBuffer();
  }
}
