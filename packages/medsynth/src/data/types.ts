/**
 * The data layer's shared types. A *loader* (npz, folder, DICOM) turns a source into a `SourceListing`:
 * class names, one `SampleRecord` per image (label, optional given split and group) and a `read(i)` that
 * decodes image i at its native size. `openDataset` then applies the split policy and hands out `Split`s,
 * which load pixels lazily (`Split.load`), resized and channel-converted on request.
 */
import type { RunControl } from '../runtime/progress.js';
import type { ResolvedTransform } from './image/transform.js';

export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export type SourceFormat = 'npz' | 'folder' | 'dicom';

/** One decoded image, samples interleaved row-major (HWC). 16-bit data comes as a Uint16Array. */
export interface RawImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array | Uint16Array;
}

/** A labelled sample as a loader lists it, before any pixels are read. */
export interface SampleRecord {
  /** Stable id: the file path relative to the source root, or `<split>[<index>]` inside an npz. */
  readonly id: string;
  /** Integer class label, an index into `classNames`. */
  readonly label: number;
  /** The split the source itself assigns (npz keys, `train/` folders, a CSV split column), if any. */
  readonly split?: SplitName;
  /** Group (patient, source tile…) that must never straddle two splits. */
  readonly group?: string;
}

/** What a loader returns: a listing of labelled samples plus a decoder. No split policy applied yet. */
export interface SourceListing {
  readonly format: SourceFormat;
  /** Resolved absolute path of the file or folder that was read. */
  readonly location: string;
  readonly classNames: readonly string[];
  /** Where labels came from, for humans: `npz keys *_labels`, `class folders`, `labels.csv column "label"`… */
  readonly labelSource: string;
  readonly samples: readonly SampleRecord[];
  /** Decodes sample `index` (into `samples`) at its native size. Errors name the file/entry. */
  read(index: number): Promise<RawImage>;
  /** Optional fast path: decode and resize in one pass; equals `transformImage(await read(i), t)` up to resampling. */
  readTransformed?(index: number, t: ResolvedTransform): Promise<RawImage>;
  /** Facts worth showing a user (e.g. "labels shaped (N,) accepted", "MONOCHROME1 inverted"). */
  readonly notes: readonly string[];
}

/** Options every loader understands; each ignores what does not apply to its format. */
export interface LoaderOptions extends RunControl {
  /** CSV mapping file → label (and optionally split and group); default `labels.csv` in the folder if present. */
  readonly labelsCsv?: string | undefined;
  readonly pathColumn?: string | undefined;
  readonly labelColumn?: string | undefined;
  readonly splitColumn?: string | undefined;
  readonly groupColumn?: string | undefined;
  /** Regex with one capture group: when a file name matches, the capture is its label (else the folder's). */
  readonly labelFromFilename?: string | undefined;
  /** Regex with one capture group: the capture is the sample's group (e.g. patient id). */
  readonly groupFromFilename?: string | undefined;
  /** DICOM: how modality values become pixels. */
  readonly dicomWindow?: DicomWindow | undefined;
  /** DICOM: output bit depth after windowing. */
  readonly dicomBitDepth?: 8 | 16 | undefined;
  /** Cache directory for downloads (default: env MEDSYNTH_CACHE, else ~/.cache/medsynth). */
  readonly cacheDir?: string | undefined;
  /** Base URL that replaces the official MedMNIST Zenodo record (mirrors, tests). */
  readonly medmnistBaseUrl?: string | undefined;
  /**
   * Folders: follow symbolic links, and accept labels-CSV paths, that lead outside the dataset folder
   * (default false: such links are not followed and such paths are an error).
   */
  readonly allowOutsideRoot?: boolean | undefined;
}

/**
 * DICOM windowing: `auto` uses the file's first Window Center/Width when present, else the min–max of the
 * rescaled values; `minmax` always uses min–max; an explicit center/width follows DICOM PS3.3 C.11.2.1.2.
 */
export type DicomWindow = 'auto' | 'minmax' | { readonly center: number; readonly width: number };

/** A batch of images in one typed array, NHWC. */
export interface ImageArray {
  readonly data: Uint8Array | Uint16Array;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  /** 255 for Uint8Array data, 65535 for Uint16Array data. */
  readonly maxValue: number;
}

export type Interpolation = 'nearest' | 'linear' | 'cubic' | 'lanczos3';
export type ResizeFit = 'fill' | 'cover' | 'contain';

export interface ImageTransform {
  /** Target size: a square side or [height, width]. Omitted: native size (all images must then agree). */
  readonly size?: number | readonly [number, number] | undefined;
  /** Output channels: 1 (luma, BT.601 weights) or 3 (gray replicated). Omitted: the source's channels. */
  readonly channels?: 1 | 3 | undefined;
  /** Resampling kernel (libvips through sharp); default `lanczos3`, antialiased when shrinking. */
  readonly interpolation?: Interpolation | undefined;
  /** `fill` stretches (default), `cover` centre-crops to the aspect ratio, `contain` pads with black. */
  readonly fit?: ResizeFit | undefined;
  /** 8 (default) or 16 bits per sample. */
  readonly bitDepth?: 8 | 16 | undefined;
}
