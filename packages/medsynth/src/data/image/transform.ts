/**
 * Image transforms shared by every loader: channel conversion, bit depth, resizing. Resampling is done by
 * libvips through sharp; channel and bit-depth conversion are small pure functions here so that they are
 * identical for every format (and for real and synthetic images).
 *
 * Documented behaviour:
 * - RGB → gray: luma with ITU-R BT.601 weights (0.299 R + 0.587 G + 0.114 B), rounded. Gray → RGB: replicate.
 * - Grey content: an RGB image whose R, G and B are equal at every pixel holds grey content; `greyOfRgb` keeps
 *   its first channel, which is exact (luma of equal channels is that value). Channel resolution (`auto`) in
 *   `Split.load` uses these to decide 1 or 3 channels from content rather than from how files were stored.
 * - 16 → 8 bit: round(v / 257); 8 → 16 bit: v · 257 (so 255 ↔ 65535 exactly).
 * - Resize: `fill` stretches to the target, `cover` scales then centre-crops, `contain` scales then pads with
 *   black. Kernel default `lanczos3` (libvips reduces by block averaging first when shrinking, so it is
 *   antialiased); `nearest`, `linear`, `cubic` on request. Resizing runs at the source bit depth.
 */
import sharp, { type ResizeOptions } from 'sharp';
import { ConfigError } from '../../runtime/errors.js';
import type { ImageArray, ImageTransform, Interpolation, RawImage, ResizeFit } from '../types.js';

export interface ResolvedTransform {
  readonly height: number | undefined;
  readonly width: number | undefined;
  readonly channels: 1 | 3 | undefined;
  readonly interpolation: Interpolation;
  readonly fit: ResizeFit;
  readonly bitDepth: 8 | 16;
}

export function resolveTransform(t: ImageTransform = {}): ResolvedTransform {
  const size = t.size;
  const [height, width] =
    size === undefined ? [undefined, undefined] : typeof size === 'number' ? [size, size] : size;
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1 && v <= 8192)) {
      throw new ConfigError('image size must be an integer in 1..8192', {
        field: `size.${name}`,
        found: String(v),
      });
    }
  }
  return Object.freeze({
    height,
    width,
    channels: t.channels,
    interpolation: t.interpolation ?? 'lanczos3',
    fit: t.fit ?? 'fill',
    bitDepth: t.bitDepth ?? 8,
  });
}

/** sharp `resize` options for a resolved transform (used by loaders that resize while decoding). */
export function sharpResizeOptions(t: ResolvedTransform, width: number, height: number): ResizeOptions {
  return {
    width,
    height,
    fit: t.fit,
    position: 'centre',
    kernel: t.interpolation,
    background: { r: 0, g: 0, b: 0, alpha: 1 },
  };
}

export function bitDepthOf(img: { readonly data: Uint8Array | Uint16Array }): 8 | 16 {
  return img.data instanceof Uint16Array ? 16 : 8;
}

/** RGB → gray (BT.601 luma) or gray → RGB (replicate). Returns the input when channels already match. */
export function convertChannels(img: RawImage, channels: 1 | 3): RawImage {
  if (img.channels === channels) return img;
  const n = img.width * img.height;
  const src = img.data;
  const out = src instanceof Uint16Array ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
  if (channels === 1) {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[i] = Math.round(0.299 * src[j]! + 0.587 * src[j + 1]! + 0.114 * src[j + 2]!);
    }
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const v = src[i]!;
      out[j] = v;
      out[j + 1] = v;
      out[j + 2] = v;
    }
  }
  return { width: img.width, height: img.height, channels, data: out };
}

/** True for 1-channel images and for RGB images whose R, G and B are equal at every pixel (grey content). */
export function isGreyContent(img: RawImage): boolean {
  if (img.channels === 1) return true;
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
  return true;
}

/** An RGB image of grey content as 1 channel (its first channel: exact). The caller checks `isGreyContent`. */
export function greyOfRgb(img: RawImage): RawImage {
  if (img.channels === 1) return img;
  const n = img.width * img.height;
  const src = img.data;
  const out = src instanceof Uint16Array ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = src[i * 3]!;
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** 16 → 8 bit as round(v/257); 8 → 16 bit as v·257. */
export function convertBitDepth(img: RawImage, bitDepth: 8 | 16): RawImage {
  if (bitDepthOf(img) === bitDepth) return img;
  const src = img.data;
  let out: Uint8Array | Uint16Array;
  if (bitDepth === 8) {
    out = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = Math.round(src[i]! / 257);
  } else {
    out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = src[i]! * 257;
  }
  return { ...img, data: out };
}

/** Resizes with sharp at the image's own bit depth. */
export async function resizeImage(
  img: RawImage,
  t: ResolvedTransform,
  width: number,
  height: number,
): Promise<RawImage> {
  if (img.width === width && img.height === height) return img;
  const is16 = img.data instanceof Uint16Array;
  const colourspace = img.channels === 1 ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb';
  const { data, info } = await sharp(img.data, {
    raw: { width: img.width, height: img.height, channels: img.channels },
  })
    .resize(sharpResizeOptions(t, width, height))
    .toColourspace(colourspace)
    .raw(is16 ? { depth: 'ushort' } : {})
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== img.channels) {
    throw new Error(`resize changed channel count ${img.channels} → ${info.channels}`);
  }
  const out = is16
    ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { width: info.width, height: info.height, channels: img.channels, data: out };
}

/** Applies a resolved transform: gray conversion first, then resize, then gray → RGB, then bit depth. */
export async function transformImage(img: RawImage, t: ResolvedTransform): Promise<RawImage> {
  let out = img;
  if (t.channels === 1) out = convertChannels(out, 1);
  const height = t.height ?? out.height;
  const width = t.width ?? out.width;
  out = await resizeImage(out, t, width, height);
  if (t.channels === 3) out = convertChannels(out, 3);
  return convertBitDepth(out, t.bitDepth);
}

/**
 * Packs same-shaped images into one NHWC array. Images that differ are a `ConfigError` naming the first one
 * and saying what differs (size, channels or bit depth) and which option makes them agree.
 */
export function packImages(images: readonly RawImage[], ids: readonly string[] = []): ImageArray {
  const first = images[0];
  if (!first) throw new RangeError('packImages: no images');
  const { width, height, channels } = first;
  const is16 = first.data instanceof Uint16Array;
  const per = width * height * channels;
  const data = is16 ? new Uint16Array(per * images.length) : new Uint8Array(per * images.length);
  const depth = (x: boolean) => (x ? 16 : 8);
  images.forEach((img, i) => {
    const field = ids[i] ?? `image ${i}`;
    if (img.width !== width || img.height !== height)
      throw new ConfigError('images differ in size; pass a target size (--size) to load them together', {
        field,
        expected: `${height}x${width} (as ${ids[0] ?? 'image 0'})`,
        found: `${img.height}x${img.width}`,
      });
    if (img.channels !== channels)
      throw new ConfigError(
        'images differ in channels; pass channels 1, 3 or auto (--channels) to load them together',
        { field, expected: `${channels} (as ${ids[0] ?? 'image 0'})`, found: String(img.channels) },
      );
    if (img.data instanceof Uint16Array !== is16)
      throw new ConfigError('images differ in bit depth; pass a bit depth to load them together', {
        field,
        expected: `${depth(is16)} bits (as ${ids[0] ?? 'image 0'})`,
        found: `${depth(!is16)} bits`,
      });
    data.set(img.data, i * per);
  });
  return { data, count: images.length, height, width, channels, maxValue: is16 ? 65535 : 255 };
}

/** Every image of an array converted to `channels` (as `convertChannels`); the input when they match. */
export function convertImagesChannels(images: ImageArray, channels: 1 | 3): ImageArray {
  if (images.channels === channels) return images;
  const tall: RawImage = {
    width: images.width,
    height: images.height * images.count,
    channels: images.channels,
    data: images.data,
  };
  return { ...images, channels, data: convertChannels(tall, channels).data };
}

/** Image `i` of an array, as a view (no copy). */
export function unpackImage(images: ImageArray, i: number): RawImage {
  const per = images.height * images.width * images.channels;
  return {
    width: images.width,
    height: images.height,
    channels: images.channels,
    data: images.data.subarray(i * per, (i + 1) * per),
  };
}

/** Images `indices` of an array, copied into a new array. */
export function pickImages(images: ImageArray, indices: ArrayLike<number>): ImageArray {
  const per = images.height * images.width * images.channels;
  const data =
    images.data instanceof Uint16Array
      ? new Uint16Array(indices.length * per)
      : new Uint8Array(indices.length * per);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    data.set(images.data.subarray(i * per, (i + 1) * per), k * per);
  }
  return { ...images, data, count: indices.length };
}
