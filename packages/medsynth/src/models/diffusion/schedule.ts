/**
 * The maths of a denoising diffusion model (Ho et al. 2020, "DDPM"; Song et al. 2021, "DDIM"; Nichol &
 * Dhariwal 2021, "Improved DDPM"), as pure functions of numbers and tensors.
 *
 * Noise schedule (cosine, Nichol & Dhariwal eq. 17), T steps, offset s = 0.008:
 *   ᾱ(τ) = f(τ) / f(0),  f(τ) = cos²( (τ + s) / (1 + s) · π/2 ),  τ ∈ [0, 1]
 *   β_i  = min(1 − ᾱ((i+1)/T) / ᾱ(i/T), 0.999),  i = 0 … T−1
 *   ᾱ_i  = Π_{j ≤ i} (1 − β_j)
 * Step i = 0 is the least noisy; the model is told the step as a number t = i ∈ [0, T).
 *
 * Forward process: x_i = √ᾱ_i · x_0 + √(1 − ᾱ_i) · ε, ε ~ N(0, I). The network predicts ε (ε-prediction) and is
 * trained on E‖ε̂(x_i, i, y) − ε‖² with i uniform over the T steps.
 *
 * DDIM update from step i (ᾱ) to an earlier step j (ᾱ′; ᾱ′ = 1 past the last step), with η ∈ [0, 1]:
 *   x̂_0 = clip( (x_i − √(1 − ᾱ) · ε̂) / √ᾱ, −1, 1 ),  ε̂ ← (x_i − √ᾱ · x̂_0) / √(1 − ᾱ)   (consistent with the clip)
 *   σ   = η · √((1 − ᾱ′) / (1 − ᾱ)) · √(1 − ᾱ / ᾱ′)
 *   x_j = √ᾱ′ · x̂_0 + √(1 − ᾱ′ − σ²) · ε̂ + σ · z,  z ~ N(0, I)
 * η = 0 is deterministic DDIM; η = 1 over all T steps is DDPM's ancestral sampler (σ² = the posterior
 * variance β̃_i = (1 − ᾱ_{i−1}) / (1 − ᾱ_i) · β_i).
 *
 * Sampling steps ("leading" spacing, improved DDPM's `ddimS` respacing), descending, then a last update to
 * ᾱ′ = 1:
 *   τ_k = ⌊k · T / S⌋,  k = S − 1 … 0  (τ_{S−1} = T − T/S: 960 for T = 1000, S = 25; τ_0 = 0)
 * Not "trailing" spacing from T − 1: the cosine schedule's ᾱ_{T−1} ≈ 2e-9, where an ε-prediction network's
 * x̂_0 = (x − √(1 − ᾱ)·ε̂)/√ᾱ multiplies its error by ~2·10⁴ (Lin et al. pair trailing spacing with a
 * v-prediction network for this reason). Starting at τ = 960 (ᾱ ≈ 4e-3) from x ~ N(0, I) is what improved
 * DDPM's DDIM sampler does. (Measured on a 70-kimg PneumoniaMNIST-28 model: the two spacings gave the same
 * grids; what mattered there was η, see `TrainOptions.eta`.)
 *
 * Classifier-free guidance (Ho & Salimans 2021): the network is trained with the label replaced by the null
 * class with probability p; at sampling, ε̃ = ε̂(x, ∅) + w · (ε̂(x, y) − ε̂(x, ∅)); w = 1 is the plain
 * conditional model, w = 0 the unconditional one, w > 1 trades diversity for class fidelity.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The cosine schedule's offset s. */
export const COSINE_OFFSET = 0.008;
/** Cap on β (Nichol & Dhariwal), keeping the last steps from dividing by ~0. */
export const MAX_BETA = 0.999;

/** A noise schedule of T steps: β_i and ᾱ_i as float64 arrays. */
export interface NoiseSchedule {
  readonly steps: number;
  readonly betas: Float64Array;
  readonly alphaBars: Float64Array;
}

/** The cosine schedule of `steps` steps. */
export function cosineSchedule(steps: number): NoiseSchedule {
  if (!Number.isInteger(steps) || steps < 2)
    throw new RangeError(`cosineSchedule: steps must be an integer ≥ 2, got ${steps}`);
  const f = (tau: number) => Math.cos(((tau + COSINE_OFFSET) / (1 + COSINE_OFFSET)) * (Math.PI / 2)) ** 2;
  const f0 = f(0);
  const betas = new Float64Array(steps);
  const alphaBars = new Float64Array(steps);
  let prod = 1;
  for (let i = 0; i < steps; i++) {
    const beta = Math.min(1 - f((i + 1) / steps) / f0 / (f(i / steps) / f0), MAX_BETA);
    betas[i] = beta;
    prod *= 1 - beta;
    alphaBars[i] = prod;
  }
  return { steps, betas, alphaBars };
}

/** The S sampling steps, descending to 0 (leading spacing; see the header). */
export function samplingSteps(scheduleSteps: number, sampleSteps: number): number[] {
  if (!Number.isInteger(sampleSteps) || sampleSteps < 1 || sampleSteps > scheduleSteps) {
    throw new RangeError(`sampling steps must be an integer in 1…${scheduleSteps}, got ${sampleSteps}`);
  }
  const out: number[] = [];
  for (let k = sampleSteps - 1; k >= 0; k--) out.push(Math.floor((k * scheduleSteps) / sampleSteps));
  return out;
}

/** x_i = √ᾱ_i · x_0 + √(1 − ᾱ_i) · ε for a batch whose sample n is at step `steps[n]`. */
export function qSample(
  schedule: NoiseSchedule,
  x0: tf.Tensor4D,
  steps: Int32Array | readonly number[],
  noise: tf.Tensor4D,
): tf.Tensor4D {
  const n = x0.shape[0];
  if (steps.length !== n) throw new RangeError(`qSample: ${steps.length} steps for a batch of ${n}`);
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const ab = schedule.alphaBars[steps[k]!];
    if (ab === undefined) throw new RangeError(`qSample: step ${steps[k]} outside 0…${schedule.steps - 1}`);
    a[k] = Math.sqrt(ab);
    b[k] = Math.sqrt(1 - ab);
  }
  return tf.tidy(() =>
    tf.add(tf.mul(x0, tf.tensor4d(a, [n, 1, 1, 1])), tf.mul(noise, tf.tensor4d(b, [n, 1, 1, 1]))),
  );
}

/** The coefficients of one DDIM update from ᾱ to ᾱ′ with η (see the header). */
export interface DdimCoefficients {
  readonly sqrtAlphaBar: number;
  readonly sqrtOneMinusAlphaBar: number;
  readonly sqrtAlphaBarPrev: number;
  /** √(1 − ᾱ′ − σ²): the weight of the predicted noise in x_j. */
  readonly direction: number;
  readonly sigma: number;
}

export function ddimCoefficients(alphaBar: number, alphaBarPrev: number, eta: number): DdimCoefficients {
  const sigma =
    eta *
    Math.sqrt((1 - alphaBarPrev) / (1 - alphaBar)) *
    Math.sqrt(Math.max(0, 1 - alphaBar / alphaBarPrev));
  return {
    sqrtAlphaBar: Math.sqrt(alphaBar),
    sqrtOneMinusAlphaBar: Math.sqrt(1 - alphaBar),
    sqrtAlphaBarPrev: Math.sqrt(alphaBarPrev),
    direction: Math.sqrt(Math.max(0, 1 - alphaBarPrev - sigma * sigma)),
    sigma,
  };
}

/**
 * One DDIM update: x_j from x_i and the predicted noise ε̂ (x̂_0 clipped to [−1, 1]); `z` is the fresh noise,
 * used only when σ > 0.
 */
export function ddimStep(
  x: tf.Tensor4D,
  eps: tf.Tensor4D,
  c: DdimCoefficients,
  z: tf.Tensor4D | null,
): tf.Tensor4D {
  return tf.tidy(() => {
    const x0 = tf.clipByValue(tf.div(tf.sub(x, tf.mul(eps, c.sqrtOneMinusAlphaBar)), c.sqrtAlphaBar), -1, 1);
    const e = tf.div(tf.sub(x, tf.mul(x0, c.sqrtAlphaBar)), c.sqrtOneMinusAlphaBar);
    let next = tf.add(tf.mul(x0, c.sqrtAlphaBarPrev), tf.mul(e, c.direction));
    if (c.sigma > 0) {
      if (!z) throw new RangeError('ddimStep: η > 0 needs noise');
      next = tf.add(next, tf.mul(z, c.sigma));
    }
    return next as tf.Tensor4D;
  });
}

/** Classifier-free guidance: ε̂(∅) + w · (ε̂(y) − ε̂(∅)). */
export function guide(epsCond: tf.Tensor4D, epsUncond: tf.Tensor4D, scale: number): tf.Tensor4D {
  if (scale === 1) return tf.clone(epsCond);
  return tf.tidy(() => tf.add(epsUncond, tf.mul(tf.sub(epsCond, epsUncond), scale)) as tf.Tensor4D);
}
