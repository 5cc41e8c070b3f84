/**
 * Feature extractors: images → one feature vector per image, the space where Fréchet distance, KID, PRDC
 * and the privacy distances are measured. Every extractor sees real and fake images through the same
 * `prepare` step (channel conversion, resizing, value range), so the two sets differ only in content.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ImageArray } from '../../data/types.js';
import type { RunControl } from '../../runtime/progress.js';

/** Row-major `[rows, cols]` features (float32 from the network). */
export interface FeatureMatrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

export type ExtractorKind = 'domain' | 'inception';

/** JSON facts about an extractor, written into every metric record and report. */
export interface ExtractorInfo {
  readonly kind: ExtractorKind;
  /** Identity for caches: changes whenever the features would (weights, preprocessing, layer). */
  readonly key: string;
  /** Feature dimension. */
  readonly dim: number;
  /** What the network sees: `[height, width, channels]`. */
  readonly inputShape: readonly [number, number, 1 | 3];
  /** One sentence for reports, e.g. "domain-specific CNN features (trained on …), not ImageNet Inception". */
  readonly description: string;
  /** How images are brought to `inputShape`: channel conversion, resampling, value range. */
  readonly preprocessing: string;
}

export interface FeatureExtractor {
  readonly info: ExtractorInfo;
  /**
   * Features of every image of `images` (any size, 1 or 3 channels; 8- or 16-bit), in batches, in
   * inference mode. Emits `tick` progress events (unit `img`) and honours `control.signal`.
   */
  features(images: ImageArray, control?: RunControl): Promise<FeatureMatrix>;
  /**
   * The features `[n, dim]` as a differentiable function of a batch already at `info.inputShape` with values
   * in [-1, 1] (synchronous, inference mode; call inside `tf.tidy`), where gradients pass through the network
   * (the domain CNN); absent otherwise. Latent projection (metrics/projection.ts) uses it.
   */
  embedTensor?(x: tf.Tensor4D): tf.Tensor2D;
  /** Frees the network's tensors. */
  dispose(): void;
}
