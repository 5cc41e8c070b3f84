/**
 * Gradient penalties on D. Each takes the input gradient of D with `tf.grad` inside the function, so the
 * penalty stays differentiable w.r.t. D's weights (a second-order gradient) and can sit inside
 * `optimizer.minimize(f, true, dVars)` or `tf.variableGrads`:
 * - R1 (Mescheder et al. 2018): E‖∇ₓ D(x)‖² at real images; the caller multiplies by γ/2;
 * - WGAN-GP (Gulrajani et al. 2017): E(‖∇D(x̂)‖₂ − 1)² at x̂ = α·real + (1 − α)·fake, with α given by the caller
 *   (so its randomness comes from the caller's seeded Rng).
 * The input gradient is that of Σ D(x) over the batch, which is each sample's own gradient when D treats samples
 * independently (as in the usual PyTorch implementations; batch statistics in D would mix them).
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; tfjs-layers registers all of TF.js's (tf.grad needs them).
import '@tensorflow/tfjs-layers';

/** D as a function of its input batch, returning logits (`[N, 1]` or `[N]`). */
export type Critic = (x: tf.Tensor4D) => tf.Tensor;

/** Per-sample squared norms of ∂(Σ D(x))/∂x, `[N]`. */
export function inputGradientNormSquared(d: Critic, x: tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => {
    const g = tf.grad((xi: tf.Tensor) => tf.sum(d(xi as tf.Tensor4D)))(x);
    return tf.sum(tf.square(g), [1, 2, 3]);
  });
}

/** R1: mean over the batch of ‖∂(Σ D(x))/∂x‖² at the real images (without the γ/2 factor). */
export function r1Penalty(d: Critic, real: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => tf.mean(inputGradientNormSquared(d, real)));
}

/**
 * WGAN-GP: mean over the batch of (‖∇D(x̂)‖₂ − 1)² with x̂ = α·real + (1 − α)·fake; α is `[N, 1, 1, 1]`
 * (uniform in [0, 1] per sample, drawn by the caller). Without the weight λ (10 in the paper).
 */
export function wganGradientPenalty(
  d: Critic,
  real: tf.Tensor4D,
  fake: tf.Tensor4D,
  alpha: tf.Tensor,
): tf.Scalar {
  if (!tf.util.arraysEqual(real.shape, fake.shape)) {
    throw new RangeError(
      `wganGradientPenalty: real [${real.shape.join(', ')}] and fake [${fake.shape.join(', ')}] differ in shape`,
    );
  }
  return tf.tidy(() => {
    const mixed = tf.add(tf.mul(real, alpha), tf.mul(fake, tf.sub(1, alpha))) as tf.Tensor4D;
    // ε inside the root keeps the gradient of the norm finite where the input gradient is 0.
    const norm = tf.sqrt(tf.add(inputGradientNormSquared(d, mixed), 1e-12));
    return tf.mean(tf.square(tf.sub(norm, 1)));
  });
}
