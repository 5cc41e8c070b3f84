/**
 * What every GAN family hands the training loop and the generator: a resolved architecture spec, the two
 * tfjs-layers models, and how to call them. Networks are NHWC; images are float32 in [-1, 1].
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

export const GAN_FAMILIES = ['dcgan', 'cgan', 'acgan'] as const;
export type GanFamily = (typeof GAN_FAMILIES)[number];

export const GAN_SIZES = [28, 32, 64, 128] as const;
export type GanSize = (typeof GAN_SIZES)[number];

/** How a cgan's discriminator sees the label: a projection head, or a label map concatenated to the image. */
export const CONDITIONINGS = ['projection', 'concat'] as const;
export type Conditioning = (typeof CONDITIONINGS)[number];

/** A fully resolved architecture: everything needed to rebuild the same networks (saved in checkpoints). */
export interface GanSpec {
  readonly family: GanFamily;
  readonly size: GanSize;
  readonly channels: 1 | 3;
  /** Classes in the data (≥ 1). `dcgan` ignores labels. */
  readonly numClasses: number;
  /** Latent size. */
  readonly zDim: number;
  /** Channel width of G's and D's last/first block at full resolution; deeper blocks double it (capped). */
  readonly gWidth: number;
  readonly dWidth: number;
  /** Cap on any block's channels. */
  readonly maxWidth: number;
  /** cgan only: how D is conditioned. G is always conditioned by a label embedding concatenated to z. */
  readonly conditioning: Conditioning;
  /** Spectral normalisation of D's conv and dense kernels. */
  readonly spectralNorm: boolean;
  /** Seed of the weight initialisers. */
  readonly seed: number;
  /**
   * Transitional conditioning: the class information (G's label embedding, D's projection term or label map)
   * passes through `ConditionScale` layers whose λ the loop ramps from 0 to 1. Absent in older specs (false).
   */
  readonly transitional?: boolean;
  /**
   * D appends a minibatch standard-deviation map before pooling (`MinibatchStdDev`): grouped by class in a
   * projection or label-map cgan, over the batch otherwise. Absent in older specs (false).
   */
  readonly minibatchStd?: boolean;
}

/** The two networks of one GAN. */
export interface GanNetworks {
  readonly spec: GanSpec;
  /** Inputs `[z]` (dcgan) or `[z, labels]`; z float32 `[N, zDim]`, labels int32 `[N]`. Output `[N, S, S, C]` in [-1, 1]. */
  readonly G: tfl.LayersModel;
  /** Inputs `[x]` (dcgan, acgan) or `[x, labels]` (cgan). Output: logits `[N, 1]`; acgan adds class logits `[N, K]`. */
  readonly D: tfl.LayersModel;
}

/** D's outputs for one batch. */
export interface DiscriminatorOutput {
  /** Real/fake logits, `[N, 1]`. */
  readonly logits: tf.Tensor2D;
  /** acgan only: class logits `[N, K]`. */
  readonly classLogits: tf.Tensor2D | null;
}

/** Something that turns latents (+ labels) into images: a trained G (or G_ema) loaded for sampling. */
export interface SamplingGenerator {
  readonly zDim: number;
  readonly numClasses: number;
  readonly classNames: readonly string[];
  readonly size: number;
  readonly channels: 1 | 3;
  /** True when `generate` uses the labels (cgan, acgan). */
  readonly conditional: boolean;
  /**
   * Where the truncation trick acts: `'z'` — the caller scales z by ψ (no mapping network); `'w'` — the
   * generator pulls its intermediate latent toward the tracked mean, w → w̄ + ψ·(w − w̄) (StyleGAN).
   */
  readonly truncation: 'z' | 'w';
  /**
   * Images `[N, size, size, channels]` in [-1, 1] (inference mode). `labels` is ignored when not conditional;
   * `psi` (default 1) is used only by `'w'`-truncation generators.
   */
  generate(z: tf.Tensor2D, labels: tf.Tensor1D | null, psi?: number): tf.Tensor4D;
  dispose(): void;
  /** The family that made it (`cgan`, `stylegan2`, `ddpm`…), where known: for messages and for what applies. */
  readonly family?: string;
  /** StyleGAN-style generators: the mapping and synthesis halves (latent projection in W); absent otherwise. */
  readonly styleSpace?: StyleSpace;
}

/**
 * A generator's intermediate latent space W (StyleGAN2: G = synthesis ∘ mapping). Synchronous tensor functions
 * in inference mode (call them inside `tf.tidy`); gradients flow through them.
 */
export interface StyleSpace {
  readonly wDim: number;
  /** w `[N, wDim]` of latents z `[N, zDim]` (and int32 labels `[N]` when conditional), without truncation. */
  mapping(z: tf.Tensor2D, labels: tf.Tensor1D | null): tf.Tensor2D;
  /** The tracked mean w̄ of each row's class (`labels` null: the unconditional mean), `[n, wDim]`. */
  meanW(labels: tf.Tensor1D | null, n: number): tf.Tensor2D;
  /** Images `[N, S, S, C]` in [-1, 1] for w `[N, wDim]`, with the fixed noise inputs of sampling. */
  synthesis(w: tf.Tensor2D): tf.Tensor4D;
}
