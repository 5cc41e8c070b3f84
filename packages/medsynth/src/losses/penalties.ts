/**
 * Gradient penalties on D, differentiable w.r.t. D's weights (second-order gradients), so they can sit
 * inside `optimizer.minimize`:
 * - R1 (Mescheder et al. 2018): E‖∇ₓD(x)‖² on real images; the caller multiplies by γ/2;
 * - WGAN-GP (Gulrajani et al. 2017): E(‖∇D(x̂)‖₂ − 1)² at x̂ = α·real + (1 − α)·fake, α given by the caller
 *   (so its randomness comes from the caller's seeded Rng).
 */
import * as tf from '@tensorflow/tfjs-core';

export type Critic = (x: tf.Tensor4D) => tf.Tensor;

/** Per-sample squared gradient norms of Σ D(x) w.r.t. x, `[N]`. */
function gradNormSquared(d: Critic, x: tf.Tensor4D): tf.Tensor1D {
  const g = tf.grad((xi: tf.Tensor) => tf.sum(d(xi as tf.Tensor4D)))(x);
  return tf.sum(tf.square(g), [1, 2, 3]) as tf.Tensor1D;
}

/** R1: mean over the batch of ‖∂ΣD/∂x‖² at the real images. */
export function r1Penalty(d: Critic, real: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => tf.mean(gradNormSquared(d, real)));
}

/** WGAN-GP: mean of (‖∇D(x̂)‖₂ − 1)² with x̂ = α·real + (1 − α)·fake, α `[N, 1, 1, 1]`. */
export function wganGradientPenalty(d: Critic, real: tf.Tensor4D, fake: tf.Tensor4D, alpha: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const mixed = tf.add(tf.mul(real, alpha), tf.mul(fake, tf.sub(1, alpha))) as tf.Tensor4D;
    // ε inside the root keeps the gradient finite where the norm is 0.
    const norm = tf.sqrt(tf.add(gradNormSquared(d, mixed), 1e-12));
    return tf.mean(tf.square(tf.sub(norm, 1)));
  });
}
