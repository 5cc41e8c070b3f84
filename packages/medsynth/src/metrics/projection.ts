/**
 * Latent projection (GAN inversion) as an authenticity check: does the generator reproduce its *training*
 * images more closely than real images it never saw? A generator that memorised its training set can
 * reconstruct those images from some latent better than held-out ones (Webster et al. 2019, "Detecting
 * overfitting of deep generative networks via latent recovery").
 *
 * **Projection.** For a target image x ∈ [−1, 1]^{S×S×C} of class y, find the latent that makes G reproduce it:
 * - z-space (dcgan, cgan, acgan, pggan, per-class models): minimise over z ∈ R^{zDim} with y fixed,
 *     L(z) = ‖G(z, y) − x‖²/D  +  λ·P(G(z, y), x)  +  λ_z·‖z‖²/zDim,
 *   the last term the Gaussian prior N(0, I) of z up to a constant (a MAP estimate: it keeps z where G was
 *   trained instead of letting it run off to reproduce anything);
 * - W-space (stylegan2, `SamplingGenerator.styleSpace`): minimise over a per-image w ∈ R^{wDim} (the class is
 *   in w), L(w) = ‖synthesis(w) − x‖²/D + λ·P(synthesis(w), x), noise inputs fixed (sampling's constant
 *   buffers), as StyleGAN2's projector; restart 0 starts at the class's tracked mean w̄_y, the others at
 *   mapping(z_r, y) for random z_r;
 * - diffusion models (ddpm) have no latent to invert in this sense: a `ConfigError`.
 * D = S·S·C. The perceptual term P:
 * - with a differentiable feature extractor (the domain CNN, `FeatureExtractor.embedTensor`, at the
 *   generator's size): P = ‖φ(a)/‖φ(a)‖ − φ(x)/‖φ(x)‖‖², the squared distance of unit-normalised penultimate
 *   features (in [0, 4]; LPIPS also unit-normalises its features). No LPIPS weights exist offline, and the domain
 *   CNN was trained on this very dataset, so its features carry what distinguishes these images;
 * - without one (`features: none`, an Inception graph model, another size): the multi-scale pixel term
 *   P = Σ_{s∈{2,4}} ‖pool_s(a) − pool_s(x)‖²/D_s with pool_s an s×s average pool (D_s its element count),
 *   which weighs coarse structure beside the per-pixel error.
 * Optimiser: Adam (β₁ 0.9, β₂ 0.999, ε 1e-8) on the latents, with StyleGAN2's projector schedule: at
 * t = (step + ½)/steps, lr = lr₀ · min(1, t/0.05) · (½ − ½cos(π·min(1, (1 − t)/0.25))). The loss of a batch is
 * the *sum* of its images' losses and Adam acts elementwise, so every image's latent follows its own
 * trajectory: the result does not depend on the batch it was projected in. Each image is projected from
 * `restarts` starting points (seeded by the image's index and the restart: `Rng.derive(seed, 'projection',
 * index, restart)`), and the restart with the lowest final loss is kept.
 *
 * **Distances** (per image, of the kept projection a = G(latent*)): pixel RMSE √(‖a − x‖²/D) in [−1, 1] units
 * (the headline: independent of λ and of any network), the feature distance ‖φ̂(a) − φ̂(x)‖ when features were
 * used, and the final loss.
 *
 * **Authenticity analysis** (`analyseProjection`): N training images (of the images the generator learned from)
 * and N held-out real images (the test split), sampled with the same class mix, plus N images the generator
 * made itself from known latents (a floor: they lie in its range, so a working projection reconstructs them
 * best). The one-sided Mann–Whitney U test (mann-whitney.ts) of H₁ "training distances are stochastically
 * smaller than held-out distances", the effect size P(d_train < d_held-out) + ½P(tie) (0.5: none) and the
 * median ratio train/held-out. Verdict: a memorisation signal when p < α (default 0.05), else none. When the
 * synthetic floor does not reconstruct better than held-out images, the projection did not work well enough
 * for the test to say much, and a warning says so. The same test on the feature distances is reported beside
 * it but never decides the verdict: the domain CNN was trained on the very training images, so its features of
 * training and held-out images are not exchangeable, and a difference there may be the extractor's own
 * memorisation rather than the generator's (on the PneumoniaMNIST-28 cgan of bench/projection.ts: pixel
 * p = 0.67, feature p = 0.009).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { resolveOptions } from '../config/data-options.js';
import { imagesToFloat, tensorToImages } from '../data/image/tensors.js';
import type { ImageArray } from '../data/types.js';
import type { SamplingGenerator } from '../models/types.js';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import type { FeatureExtractor } from './features/types.js';
import { mannWhitneyU, type MannWhitneyResult } from './mann-whitney.js';
import { proportionalCounts } from './quota.js';

// ---------------------------------------------------------------------------------------------------------
// Options

/**
 * Defaults, measured on a PneumoniaMNIST-28 cgan (192 kimg; 32 train, 32 held-out and 32 of its own images,
 * 2 restarts, multi-scale loss): peak lr 0.05 / 0.1 / 0.2 gave median pixel RMSE 0.102 / 0.095 / 0.090 on
 * training images after 200 steps (0.111 / 0.102 / 0.095 mean over restarts), still falling slowly; its own
 * images 0.034 at lr 0.1 — the generator's range is what separates them, long before full convergence.
 * 0.1 is StyleGAN2's projector's rate; 200 steps keep N = 200 per set within minutes on 2 cores. The feature
 * weight: at 100 steps λ = 1 traded pixel RMSE (train median 0.125 vs 0.115 at λ = 0.1) for feature distance
 * (0.053 vs 0.070) with the same train/held-out/own ordering; 0.1 keeps the headline pixel distance primary.
 * The prior λ_z = 0.001 changed the medians by < 0.001 (a guard, not a driver).
 */
export const ProjectionOptionsSchema = z
  .object({
    /** Adam steps per image. */
    steps: z.number().int().min(1).max(100_000).default(200),
    /** Peak learning rate of the schedule (latents are O(1)). */
    learningRate: z.number().positive().max(10).default(0.1),
    /** Starting points per image; the best final loss is kept. */
    restarts: z.number().int().min(1).max(64).default(2),
    /** Images projected together (each with all its restarts). Speed and memory only, never the results. */
    batchSize: z.number().int().min(1).max(4096).default(32),
    /** λ of the feature term (with a differentiable extractor). */
    featureWeight: z.number().min(0).max(1000).default(0.1),
    /** λ of the multi-scale pixel term (without one). */
    multiscaleWeight: z.number().min(0).max(1000).default(1),
    /** λ_z of the Gaussian prior of z (z-space only). */
    latentPrior: z.number().min(0).max(1000).default(0.001),
    seed: z.number().int().min(0).default(0),
  })
  .strict();
export type ProjectionOptionsInput = z.input<typeof ProjectionOptionsSchema>;
export type ProjectionOptions = z.output<typeof ProjectionOptionsSchema>;

export const ProjectionAnalysisOptionsSchema = ProjectionOptionsSchema.extend({
  /** Real images per split (train, held-out) at most. */
  count: z.number().int().min(1).max(100_000).default(200),
  /** Images generated for the synthetic floor (0: none); default `count`. */
  syntheticCount: z.number().int().min(0).max(100_000).optional(),
  /** Significance level of the verdict. */
  alpha: z.number().gt(0).lt(1).default(0.05),
}).strict();
export type ProjectionAnalysisOptionsInput = z.input<typeof ProjectionAnalysisOptionsSchema>;
export type ProjectionAnalysisOptions = z.output<typeof ProjectionAnalysisOptionsSchema>;

export function resolveProjectionOptions(input: ProjectionOptionsInput = {}, where = 'projection') {
  return resolveOptions(ProjectionOptionsSchema, input, where) as ProjectionOptions;
}

export function resolveProjectionAnalysisOptions(
  input: ProjectionAnalysisOptionsInput = {},
  where = 'projection',
) {
  return resolveOptions(ProjectionAnalysisOptionsSchema, input, where) as ProjectionAnalysisOptions;
}

// ---------------------------------------------------------------------------------------------------------
// Generator and features

export type LatentSpace = 'z' | 'w';
export type Objective = 'pixel+features' | 'pixel+multiscale';

/** The latent space projection optimises for `generator`; a `ConfigError` for a diffusion model. */
export function latentSpaceOf(generator: SamplingGenerator): LatentSpace {
  if (generator.family === 'ddpm')
    throw new ConfigError(
      'latent projection is not defined for diffusion models (ddpm): their images come from an iterative denoising chain, not a latent a generator maps in one pass; project a GAN run (dcgan, cgan, acgan, stylegan2, pggan)',
      { field: '--run', expected: 'a GAN run', found: 'ddpm' },
    );
  return generator.styleSpace ? 'w' : 'z';
}

/** A differentiable feature map for the perceptual term. */
export interface ProjectionFeatures {
  /** The extractor's key (caches, records). */
  readonly key: string;
  readonly description: string;
  /** Features `[n, dim]` of images `[n, S, S, C]` in [−1, 1]; synchronous, inside `tf.tidy`. */
  embed(x: tf.Tensor4D): tf.Tensor2D;
}

/**
 * The extractor as the projection's perceptual term, or null with the reason when it cannot be one (no
 * gradient through it, or another input shape than the generator's images).
 */
export function projectionFeatures(
  extractor: FeatureExtractor | null | undefined,
  generator: Pick<SamplingGenerator, 'size' | 'channels'>,
): { features: ProjectionFeatures | null; note: string | null } {
  if (!extractor) return { features: null, note: 'no feature extractor: pixel + multi-scale pixel loss' };
  const { info } = extractor;
  if (!extractor.embedTensor)
    return {
      features: null,
      note: `the ${info.kind} extractor has no gradient in TF.js: pixel + multi-scale pixel loss`,
    };
  const [h, w, c] = info.inputShape;
  if (h !== generator.size || w !== generator.size || c !== generator.channels)
    return {
      features: null,
      note: `the extractor sees ${h}×${w}×${c}, the generator makes ${generator.size}×${generator.size}×${generator.channels}: pixel + multi-scale pixel loss`,
    };
  return {
    features: {
      key: info.key,
      description: info.description,
      embed: (x) => extractor.embedTensor!(x),
    },
    note: null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Projection

/** Images to project and their classes (indices into the generator's classes; null for unconditional ones). */
export interface ProjectionTargets {
  readonly images: ImageArray;
  readonly labels: Int32Array | null;
}

export interface ProjectionControl extends RunControl {
  /** The perceptual term's features (null/absent: multi-scale pixels). */
  readonly features?: ProjectionFeatures | null | undefined;
  /** Progress phase name (default `projection`). */
  readonly phase?: string | undefined;
  /** Offsets the seeding index of image i to `indexOffset + i` (a set projected in parts). */
  readonly indexOffset?: number | undefined;
}

/** Mean loss and pixel RMSE over every image and restart after `step` Adam steps. */
export interface TracePoint {
  readonly step: number;
  readonly loss: number;
  readonly pixelRmse: number;
}

export interface ProjectionResult {
  readonly space: LatentSpace;
  readonly objective: Objective;
  readonly count: number;
  /** Per image: √(mean squared pixel error) of the kept projection, [−1, 1] units. */
  readonly pixelRmse: Float64Array;
  /** Per image: ‖φ̂(projection) − φ̂(image)‖, or null without features. */
  readonly featureDistance: Float64Array | null;
  /** Per image: the final loss of the kept restart. */
  readonly loss: Float64Array;
  /** Per image: which restart was kept. */
  readonly restart: Int32Array;
  /** The kept projections, 8-bit, in the targets' order. */
  readonly projections: ImageArray;
  /** The kept latents, `count × latentDim` row-major. */
  readonly latents: Float32Array;
  readonly latentDim: number;
  readonly trace: readonly TracePoint[];
  readonly seconds: number;
}

/** StyleGAN2's projector learning-rate schedule at step `step` of `steps` (see the module comment). */
export function learningRateAt(step: number, steps: number, peak: number): number {
  const t = (step + 0.5) / steps;
  const down = Math.min(1, (1 - t) / 0.25);
  return peak * Math.min(1, t / 0.05) * (0.5 - 0.5 * Math.cos(Math.PI * down));
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-8;
/** Trace points per projection (plus the start). */
const TRACE_POINTS = 10;

function checkTargets(generator: SamplingGenerator, t: ProjectionTargets): void {
  const { images, labels } = t;
  if (images.count === 0) throw new DatasetError('no images to project', { field: 'images', found: '0' });
  if (
    images.height !== generator.size ||
    images.width !== generator.size ||
    images.channels !== generator.channels
  )
    throw new DatasetError('images to project must have the generator’s size and channels', {
      field: 'images',
      expected: `${generator.size}×${generator.size}×${generator.channels}`,
      found: `${images.height}×${images.width}×${images.channels}`,
    });
  if (generator.conditional) {
    if (!labels)
      throw new ConfigError('a conditional generator projects an image with its class: labels are needed', {
        field: 'labels',
      });
    if (labels.length !== images.count)
      throw new DatasetError('one label per image is needed', {
        field: 'labels',
        expected: String(images.count),
        found: String(labels.length),
      });
    const bad = labels.findIndex((l) => !(l >= 0 && l < generator.numClasses));
    if (bad >= 0)
      throw new DatasetError('label out of the generator’s classes', {
        field: `labels[${bad}]`,
        expected: `0..${generator.numClasses - 1}`,
        found: String(labels[bad]),
      });
  }
}

/** Unit-normalised rows. */
function unitRows(f: tf.Tensor2D): tf.Tensor2D {
  return tf.div(f, tf.add(tf.norm(f, 'euclidean', 1, true), 1e-8));
}

/** Per-row loss parts of images `a` against targets `x` (rows aligned). */
function lossParts(
  a: tf.Tensor4D,
  x: tf.Tensor4D,
  xFeatures: tf.Tensor2D | null,
  features: ProjectionFeatures | null,
): { mse: tf.Tensor1D; perceptual: tf.Tensor1D } {
  const mse = tf.mean(tf.squaredDifference(a, x), [1, 2, 3]) as tf.Tensor1D;
  if (features && xFeatures) {
    const f = unitRows(features.embed(a));
    return { mse, perceptual: tf.sum(tf.squaredDifference(f, xFeatures), 1) as tf.Tensor1D };
  }
  let perceptual = tf.zerosLike(mse);
  for (const s of [2, 4]) {
    if (a.shape[1] < s || a.shape[2] < s) continue;
    const pa = tf.avgPool(a, s, s, 'valid');
    const px = tf.avgPool(x, s, s, 'valid');
    perceptual = tf.add(perceptual, tf.mean(tf.squaredDifference(pa, px), [1, 2, 3]));
  }
  return { mse, perceptual };
}

/**
 * Projects every image (see the module comment): batches of `batchSize` images, each with `restarts` latents,
 * `steps` Adam steps. Emits a `phase` event, `tick`s (unit `images`, with the running loss) and `done`; honours
 * `signal` between steps. Tensors: none left behind.
 */
export async function projectImages(
  generator: SamplingGenerator,
  targets: ProjectionTargets,
  input: ProjectionOptionsInput | ProjectionOptions = {},
  control: ProjectionControl = {},
): Promise<ProjectionResult> {
  const started = performance.now();
  const o = resolveProjectionOptions(input);
  const space = latentSpaceOf(generator);
  checkTargets(generator, targets);
  const features = control.features ?? null;
  const objective: Objective = features ? 'pixel+features' : 'pixel+multiscale';
  const weight = features ? o.featureWeight : o.multiscaleWeight;
  const { images } = targets;
  const labels = generator.conditional ? targets.labels : null;
  const n = images.count;
  const R = o.restarts;
  const style = generator.styleSpace;
  const latentDim = space === 'w' ? style!.wDim : generator.zDim;
  const phase = control.phase ?? 'projection';
  const offset = control.indexOffset ?? 0;
  const { onProgress, signal } = control;
  signal?.throwIfAborted();
  onProgress?.({
    type: 'phase',
    phase,
    detail: `${n} images, ${o.steps} steps × ${R} restarts, ${space}-space, ${objective}`,
  });

  const pixelRmse = new Float64Array(n);
  const featureDistance = features ? new Float64Array(n) : null;
  const finalLoss = new Float64Array(n);
  const restart = new Int32Array(n);
  const latents = new Float32Array(n * latentDim);
  const projected = new Uint8Array(n * images.height * images.width * images.channels);
  const traceEvery = Math.max(1, Math.ceil(o.steps / TRACE_POINTS));
  const traceSum = new Map<number, { loss: number; rmse: number; rows: number }>();
  const addTrace = (step: number, loss: number, rmse: number, rows: number) => {
    const t = traceSum.get(step) ?? { loss: 0, rmse: 0, rows: 0 };
    traceSum.set(step, { loss: t.loss + loss, rmse: t.rmse + rmse, rows: t.rows + rows });
  };

  for (let start = 0; start < n; start += o.batchSize) {
    const b = Math.min(o.batchSize, n - start);
    const rows = b * R;
    // Row k = image (k / R | 0), restart k % R.
    const rowImage = Int32Array.from({ length: rows }, (_, k) => start + Math.floor(k / R));
    const z0 = new Float32Array(rows * generator.zDim);
    for (let k = 0; k < rows; k++) {
      const i = rowImage[k]!;
      z0.set(Rng.derive(o.seed, 'projection', offset + i, k % R).normals(generator.zDim), k * generator.zDim);
    }
    const rowLabels = labels ? Int32Array.from(rowImage, (i) => labels[i]!) : null;
    let latent: tf.Tensor2D | null = null;
    let m: tf.Tensor2D | null = null;
    let v: tf.Tensor2D | null = null;
    const held: tf.Tensor[] = [];
    try {
      const y = rowLabels ? tf.tensor1d(rowLabels, 'int32') : null;
      if (y) held.push(y);
      const x = tf.tensor4d(imagesToFloat(images, rowImage), [
        rows,
        images.height,
        images.width,
        images.channels,
      ]);
      held.push(x);
      const xFeatures = features ? tf.tidy(() => unitRows(features.embed(x))) : null;
      if (xFeatures) held.push(xFeatures);
      latent = tf.tidy(() => {
        const z = tf.tensor2d(z0, [rows, generator.zDim]);
        if (space === 'z') return z;
        const mapped = style!.mapping(z, y);
        const mean = style!.meanW(y, rows);
        // Restart 0 of every image starts at w̄_y.
        const first = tf.tensor2d(
          Float32Array.from({ length: rows }, (_, k) => (k % R === 0 ? 1 : 0)),
          [rows, 1],
        );
        return tf.add(tf.mul(first, mean), tf.mul(tf.sub(1, first), mapped)) as tf.Tensor2D;
      });
      m = tf.zerosLike(latent);
      v = tf.zerosLike(latent);
      const render = (l: tf.Tensor2D): tf.Tensor4D =>
        space === 'w' ? style!.synthesis(l) : generator.generate(l, y, 1);
      const rowLoss = (l: tf.Tensor2D) => {
        const a = render(l);
        const { mse, perceptual } = lossParts(a, x, xFeatures, features);
        let loss = tf.add(mse, tf.mul(perceptual, weight)) as tf.Tensor1D;
        if (space === 'z' && o.latentPrior > 0)
          loss = tf.add(loss, tf.mul(tf.mean(tf.square(l), 1), o.latentPrior));
        return { a, mse, perceptual, loss };
      };
      const lossOf = (l: tf.Tensor) => tf.sum(rowLoss(l as tf.Tensor2D).loss) as tf.Scalar;
      const valueAndGrad = tf.valueAndGrad(lossOf);
      for (let step = 0; step < o.steps; step++) {
        signal?.throwIfAborted();
        const lr = learningRateAt(step, o.steps, o.learningRate);
        const traced = step % traceEvery === 0;
        const c1 = 1 - BETA1 ** (step + 1);
        const c2 = 1 - BETA2 ** (step + 1);
        const [nl, nm, nv, value, rmse] = tf.tidy(() => {
          const { value, grad } = valueAndGrad(latent!);
          const m1 = tf.add(tf.mul(m!, BETA1), tf.mul(grad, 1 - BETA1));
          const v1 = tf.add(tf.mul(v!, BETA2), tf.mul(tf.square(grad), 1 - BETA2));
          const update = tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), EPSILON));
          const l1 = tf.sub(latent!, tf.mul(update, lr));
          // The pixel RMSE at the latent the value belongs to, for the trace only.
          const r = traced
            ? tf.sum(tf.sqrt(tf.mean(tf.squaredDifference(render(latent!), x), [1, 2, 3])))
            : tf.scalar(0);
          return [l1, m1, v1, value, r] as tf.Tensor[];
        });
        latent.dispose();
        m.dispose();
        v.dispose();
        latent = nl as tf.Tensor2D;
        m = nm as tf.Tensor2D;
        v = nv as tf.Tensor2D;
        try {
          if (traced) {
            const [lv, rv] = await Promise.all([value!.data(), rmse!.data()]);
            addTrace(step, lv[0]!, rv[0]!, rows);
            onProgress?.({
              type: 'tick',
              phase,
              done: start + Math.floor((b * (step + 1)) / o.steps),
              total: n,
              unit: 'images',
              stats: { loss: lv[0]! / rows, step: step + 1 },
            });
          }
        } finally {
          value!.dispose();
          rmse!.dispose();
        }
      }
      // The final latents: per-row values, then the best restart of each image.
      const [aT, mseT, percT, lossT] = tf.tidy(() => {
        const r = rowLoss(latent!);
        return [r.a, r.mse, r.perceptual, r.loss];
      }) as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
      let mseV: Float32Array;
      let percV: Float32Array;
      let lossV: Float32Array;
      let latV: Float32Array;
      let best: Int32Array;
      try {
        [mseV, percV, lossV, latV] = (await Promise.all([
          mseT.data(),
          percT.data(),
          lossT.data(),
          latent.data(),
        ])) as [Float32Array, Float32Array, Float32Array, Float32Array];
        best = new Int32Array(b);
        for (let j = 0; j < b; j++) {
          let k0 = j * R;
          for (let r = 1; r < R; r++) if (lossV[j * R + r]! < lossV[k0]!) k0 = j * R + r;
          best[j] = k0;
        }
        let sumLoss = 0;
        let sumRmse = 0;
        for (let k = 0; k < rows; k++) {
          sumLoss += lossV[k]!;
          sumRmse += Math.sqrt(mseV[k]!);
        }
        addTrace(o.steps, sumLoss, sumRmse, rows);
        const picked = tf.tidy(() => tf.gather(aT, tf.tensor1d(best, 'int32')));
        try {
          const img = await tensorToImages(picked as tf.Tensor4D);
          projected.set(img.data as Uint8Array, (start * img.data.length) / b);
        } finally {
          picked.dispose();
        }
      } finally {
        for (const t of [aT, mseT, percT, lossT]) t.dispose();
      }
      for (let j = 0; j < b; j++) {
        const k = best[j]!;
        const i = start + j;
        pixelRmse[i] = Math.sqrt(mseV[k]!);
        if (featureDistance) featureDistance[i] = Math.sqrt(Math.max(0, percV[k]!));
        finalLoss[i] = lossV[k]!;
        restart[i] = k % R;
        latents.set(latV.subarray(k * latentDim, (k + 1) * latentDim), i * latentDim);
      }
      onProgress?.({
        type: 'tick',
        phase,
        done: start + b,
        total: n,
        unit: 'images',
        stats: { loss: lossV.reduce((s, l) => s + l, 0) / rows },
      });
    } finally {
      latent?.dispose();
      m?.dispose();
      v?.dispose();
      for (const t of held) t.dispose();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  onProgress?.({ type: 'done', phase, seconds });
  const trace = [...traceSum.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([step, t]) => ({ step, loss: t.loss / t.rows, pixelRmse: t.rmse / t.rows }));
  return {
    space,
    objective,
    count: n,
    pixelRmse,
    featureDistance,
    loss: finalLoss,
    restart,
    projections: { ...images, data: projected, maxValue: 255 },
    latents,
    latentDim,
    trace,
    seconds,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Sampling the sets

/**
 * `count` positions of a labelled set, stratified: class k gets its share of `count` by `weights` (largest
 * remainder; default the set's own class counts), each class's positions a seeded random choice, returned in
 * ascending order. Unlabelled sets (labels null): a seeded random choice. Fewer when a class runs short.
 */
export function stratifiedSample(
  labels: Int32Array | null,
  total: number,
  count: number,
  seed: number,
  weights?: readonly number[],
): Int32Array {
  const rng = Rng.derive(seed, 'projection-sample');
  if (!labels) {
    const all = rng.shuffle(Array.from({ length: total }, (_, i) => i));
    return Int32Array.from(all.slice(0, Math.min(count, total))).sort();
  }
  const K = Math.max(0, ...labels) + 1;
  const byClass: number[][] = Array.from({ length: K }, () => []);
  labels.forEach((l, i) => byClass[l]!.push(i));
  const w = weights ?? byClass.map((c) => c.length);
  const share = proportionalCounts(Math.min(count, total), w);
  const out: number[] = [];
  byClass.forEach((rows, k) => {
    out.push(...rng.shuffle(rows).slice(0, share[k] ?? 0));
  });
  return Int32Array.from(out).sort();
}

/** Rows `positions` of an image array. */
export function selectImages(images: ImageArray, positions: ArrayLike<number>): ImageArray {
  const per = images.height * images.width * images.channels;
  const data = new (images.data.constructor as Uint8ArrayConstructor)(positions.length * per);
  for (let k = 0; k < positions.length; k++) {
    const i = positions[k]!;
    data.set(images.data.subarray(i * per, (i + 1) * per), k * per);
  }
  return { ...images, data, count: positions.length };
}

// ---------------------------------------------------------------------------------------------------------
// Authenticity analysis

export const PROJECTION_SETS = ['train', 'holdout', 'synthetic'] as const;
export type ProjectionSetName = (typeof PROJECTION_SETS)[number];

/** One set to project: images, their classes (generator indices, or null) and an id per image. */
export interface ProjectionSetInput extends ProjectionTargets {
  /** Where each image comes from (a split id, `seed:<n>`…), for the per-image table. */
  readonly ids: readonly string[];
}

export interface DistanceSummary {
  readonly n: number;
  readonly mean: number;
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
  readonly min: number;
  readonly max: number;
}

export interface ProjectedSet {
  readonly name: ProjectionSetName;
  readonly input: ProjectionSetInput;
  readonly result: ProjectionResult;
  readonly pixel: DistanceSummary;
  readonly feature: DistanceSummary | null;
}

export interface AuthenticityTest {
  readonly method: 'exact' | 'asymptotic';
  readonly alternative: 'less';
  /** U of the training sample. */
  readonly u: number;
  readonly p: number;
  /** P(d_train < d_held-out) + ½P(tie): 0.5 = no difference, 1 = every training image closer. */
  readonly probTrainCloser: number;
  /** median(d_train) / median(d_held-out). */
  readonly medianRatio: number;
  readonly nTrain: number;
  readonly nHoldout: number;
}

export interface ProjectionAnalysis {
  readonly space: LatentSpace;
  readonly objective: Objective;
  readonly options: ProjectionAnalysisOptions;
  readonly features: { readonly key: string; readonly description: string } | null;
  readonly sets: Partial<Record<ProjectionSetName, ProjectedSet>>;
  /** On the pixel RMSE (the headline); null without both real sets. */
  readonly test: AuthenticityTest | null;
  /** The same test on the feature distances (when features were used). */
  readonly featureTest: AuthenticityTest | null;
  /** true: memorisation signal; false: none; null: not tested. */
  readonly signal: boolean | null;
  readonly verdict: string;
  readonly warnings: readonly string[];
  readonly seconds: number;
  /** Projection wall time over every projected image. */
  readonly secondsPerImage: number;
}

/** Mean, median, quartiles (numpy's linear quantiles), min and max. */
export function summariseDistances(values: ArrayLike<number>): DistanceSummary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) throw new RangeError('summariseDistances: no values');
  const q = (p: number) => {
    const h = (n - 1) * p;
    const lo = Math.floor(h);
    return lo + 1 < n ? sorted[lo]! + (h - lo) * (sorted[lo + 1]! - sorted[lo]!) : sorted[lo]!;
  };
  return {
    n,
    mean: sorted.reduce((a, b) => a + b, 0) / n,
    median: q(0.5),
    q1: q(0.25),
    q3: q(0.75),
    min: sorted[0]!,
    max: sorted[n - 1]!,
  };
}

function median(values: ArrayLike<number>): number {
  return summariseDistances(values).median;
}

/** The one-sided test "training images reconstruct closer than held-out ones". */
export function authenticityTest(train: ArrayLike<number>, holdout: ArrayLike<number>): AuthenticityTest {
  const r: MannWhitneyResult = mannWhitneyU(train, holdout, 'less');
  const mh = median(holdout);
  return {
    method: r.method,
    alternative: 'less',
    u: r.u1,
    p: r.p,
    probTrainCloser: r.probLess,
    medianRatio: mh > 0 ? median(train) / mh : Number.NaN,
    nTrain: r.n1,
    nHoldout: r.n2,
  };
}

/** `p` for a sentence: 3 significant digits, scientific below 0.001. */
export function formatP(p: number): string {
  return p < 0.001 ? p.toExponential(2) : String(Number(p.toPrecision(3)));
}

/** The plain verdict of a test at level `alpha` (null test: not tested). */
export function projectionVerdict(
  test: AuthenticityTest | null,
  alpha: number,
  medians?: { train: number; holdout: number },
): { signal: boolean | null; verdict: string } {
  if (!test)
    return {
      signal: null,
      verdict: 'not tested: projecting training and held-out images both is needed for the two-sample test',
    };
  const m = medians ? `, median pixel RMSE ${medians.train.toFixed(4)} vs ${medians.holdout.toFixed(4)}` : '';
  if (test.p < alpha)
    return {
      signal: true,
      verdict: `memorisation signal: training images reconstruct closer than held-out (p=${formatP(test.p)}${m})`,
    };
  return {
    signal: false,
    verdict: `no memorisation signal (training vs held-out reconstruction distances: p=${formatP(test.p)}${m})`,
  };
}

/**
 * Projects the given sets (any of train, held-out, synthetic; see the module comment), tests train against
 * held-out, and says what it means. The options' `count`/`syntheticCount` are the caller's business (the sets
 * arrive sampled); each set is seeded separately (`Rng.derive(seed, set)`), so adding a set changes no other.
 */
export async function analyseProjection(
  generator: SamplingGenerator,
  sets: Partial<Record<ProjectionSetName, ProjectionSetInput>>,
  input: ProjectionAnalysisOptionsInput | ProjectionAnalysisOptions = {},
  control: ProjectionControl = {},
): Promise<ProjectionAnalysis> {
  const started = performance.now();
  const o = resolveProjectionAnalysisOptions(input);
  const space = latentSpaceOf(generator);
  const features = control.features ?? null;
  const out: Partial<Record<ProjectionSetName, ProjectedSet>> = {};
  let projectionSeconds = 0;
  let projectedImages = 0;
  for (const name of PROJECTION_SETS) {
    const set = sets[name];
    if (!set) continue;
    if (set.ids.length !== set.images.count)
      throw new DatasetError('one id per image is needed', {
        field: `${name}.ids`,
        expected: String(set.images.count),
        found: String(set.ids.length),
      });
    const result = await projectImages(
      generator,
      set,
      { ...pickProjection(o), seed: Rng.derive(o.seed, name).int(2 ** 31 - 1) },
      { ...control, features, phase: `projection: ${name}` },
    );
    projectionSeconds += result.seconds;
    projectedImages += result.count;
    out[name] = {
      name,
      input: set,
      result,
      pixel: summariseDistances(result.pixelRmse),
      feature: result.featureDistance ? summariseDistances(result.featureDistance) : null,
    };
  }
  const { train, holdout, synthetic } = out;
  const test = train && holdout ? authenticityTest(train.result.pixelRmse, holdout.result.pixelRmse) : null;
  const featureTest =
    train?.result.featureDistance && holdout?.result.featureDistance
      ? authenticityTest(train.result.featureDistance, holdout.result.featureDistance)
      : null;
  const { signal, verdict } = projectionVerdict(
    test,
    o.alpha,
    train && holdout ? { train: train.pixel.median, holdout: holdout.pixel.median } : undefined,
  );
  const warnings: string[] = [];
  const realMedian = holdout?.pixel.median ?? train?.pixel.median;
  if (synthetic && realMedian !== undefined && !(synthetic.pixel.median < realMedian))
    warnings.push(
      `the synthetic floor did not reconstruct better than real images (median pixel RMSE ${synthetic.pixel.median.toFixed(4)} vs ${realMedian.toFixed(4)}): the projection is not converging, so the test has little power — raise steps or restarts`,
    );
  if (test && (test.nTrain < 20 || test.nHoldout < 20))
    warnings.push(
      `only ${test.nTrain} training and ${test.nHoldout} held-out images: the test can miss a real effect`,
    );
  return {
    space,
    objective: features ? 'pixel+features' : 'pixel+multiscale',
    options: o,
    features: features ? { key: features.key, description: features.description } : null,
    sets: out,
    test,
    featureTest,
    signal,
    verdict,
    warnings,
    seconds: (performance.now() - started) / 1000,
    secondsPerImage: projectedImages > 0 ? projectionSeconds / projectedImages : 0,
  };
}

function pickProjection(o: ProjectionAnalysisOptions): ProjectionOptions {
  const { count: _c, syntheticCount: _s, alpha: _a, ...rest } = o;
  return rest;
}
