/**
 * The diffusion maths of models/diffusion/schedule.ts against values computed independently: the cosine
 * schedule against NumPy (improved-DDPM's betas_for_alpha_bar), q(x_t | x_0) statistics, DDIM updates worked
 * by hand, the η = 1 variance against DDPM's posterior variance, and classifier-free guidance.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  cosineSchedule,
  ddimCoefficients,
  ddimStep,
  guide,
  qSample,
  samplingSteps,
} from '../../src/models/diffusion/schedule.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { Rng } from '../../src/runtime/random.js';

before(async () => {
  await selectBackend();
});

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('cosine schedule of 10 steps equals NumPy', () => {
  // numpy: f = cos(((t+0.008)/1.008)·π/2)²; b_i = min(1 − f((i+1)/T)/f(i/T), 0.999); ᾱ = cumprod(1 − b)
  const betas = [
    0.02790726, 0.07549364, 0.12439599, 0.17718953, 0.23728153, 0.30988344, 0.40400314, 0.53699818,
    0.74382937, 0.999,
  ];
  const alphaBars = [
    9.72092737e-1, 8.98705921e-1, 7.86910511e-1, 6.47478211e-1, 4.9384359e-1, 3.4080964e-1, 2.03121474e-1,
    9.40456127e-2, 2.40917241e-2, 2.40917241e-5,
  ];
  const s = cosineSchedule(10);
  betas.forEach((b, i) => close(s.betas[i]!, b, 1e-8, `β_${i}`));
  alphaBars.forEach((a, i) => close(s.alphaBars[i]!, a, 1e-8 * Math.max(1, a * 10), `ᾱ_${i}`));
  // T = 1000 at a few steps (NumPy): ᾱ_0, ᾱ_499, ᾱ_998; β_999 is the cap.
  const t = cosineSchedule(1000);
  close(t.alphaBars[0]!, 0.999958715775178, 1e-12, 'ᾱ_0');
  close(t.alphaBars[499]!, 0.4938435904406382, 1e-12, 'ᾱ_499');
  close(t.alphaBars[998]!, 2.4287669070348544e-6, 1e-15, 'ᾱ_998');
  assert.equal(t.betas[999], 0.999);
});

test('sampling steps: leading spacing ⌊k·T/S⌋, descending to 0', () => {
  assert.deepEqual(samplingSteps(1000, 4), [750, 500, 250, 0]);
  assert.deepEqual(samplingSteps(1000, 25).slice(0, 3), [960, 920, 880]);
  assert.equal(samplingSteps(1000, 25).at(-1), 0);
  assert.deepEqual(samplingSteps(10, 10), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  assert.deepEqual(samplingSteps(1000, 3), [666, 333, 0]);
  assert.throws(() => samplingSteps(10, 11), /1…10/);
  assert.throws(() => samplingSteps(10, 0), /1…10/);
});

test('q(x_t | x_0): mean √ᾱ·x_0 and variance 1 − ᾱ per sample', () => {
  const s = cosineSchedule(1000);
  const steps = [10, 500, 900];
  const side = 64;
  const rng = Rng.derive(3, 'q');
  const [means, vars] = tf.tidy(() => {
    const x0 = tf.fill([3, side, side, 1], 0.7) as tf.Tensor4D;
    const noise = tf.tensor4d(rng.normals(3 * side * side), [3, side, side, 1]);
    const xt = qSample(s, x0, steps, noise);
    const m = tf.moments(xt, [1, 2, 3]);
    return [Array.from(m.mean.dataSync()), Array.from(m.variance.dataSync())];
  });
  steps.forEach((i, k) => {
    const ab = s.alphaBars[i]!;
    const n = side * side;
    // 5 standard errors of the mean and of the variance of n normals.
    close(means[k]!, Math.sqrt(ab) * 0.7, 5 * Math.sqrt((1 - ab) / n), `mean at ${i}`);
    close(vars[k]!, 1 - ab, 5 * (1 - ab) * Math.sqrt(2 / n), `variance at ${i}`);
  });
});

test('a DDIM step equals the update worked by hand (η = 0, with and without clipping x̂_0; η = 1)', () => {
  const c0 = ddimCoefficients(0.64, 0.81, 0);
  // x̂_0 = (0.5 − 0.6·0.2)/0.8 = 0.475; ε̂ = 0.2; x′ = 0.9·0.475 + √0.19·0.2
  // x̂_0 = (0.9 + 0.6·0.5)/0.8 = 1.5 → 1; ε̂ = (0.9 − 0.8)/0.6; x′ = 0.9·1 + √0.19·(1/6)
  const out = tf.tidy(() =>
    Array.from(
      ddimStep(
        tf.tensor4d([0.5, 0.9], [2, 1, 1, 1]),
        tf.tensor4d([0.2, -0.5], [2, 1, 1, 1]),
        c0,
        null,
      ).dataSync(),
    ),
  );
  close(out[0]!, 0.9 * 0.475 + Math.sqrt(0.19) * 0.2, 1e-6, 'unclipped');
  close(out[1]!, 0.9 + Math.sqrt(0.19) / 6, 1e-6, 'clipped');
  // η = 1: σ = √(0.19/0.36)·√(1 − 0.64/0.81) = 0.3328185, direction √(0.19 − σ²) = 0.2814815; z = −1.
  const c1 = ddimCoefficients(0.64, 0.81, 1);
  close(c1.sigma, 0.33281853251132276, 1e-12, 'σ');
  close(c1.direction, 0.2814814814814814, 1e-12, 'direction');
  const y = tf.tidy(
    () =>
      ddimStep(
        tf.tensor4d([0.5], [1, 1, 1, 1]),
        tf.tensor4d([0.2], [1, 1, 1, 1]),
        c1,
        tf.tensor4d([-1], [1, 1, 1, 1]),
      ).dataSync()[0]!,
  );
  close(y, 0.15097776378497352, 1e-6, 'η = 1');
  assert.throws(
    () => tf.tidy(() => ddimStep(tf.zeros([1, 1, 1, 1]), tf.zeros([1, 1, 1, 1]), c1, null)),
    /noise/,
  );
});

test('η = 1 between consecutive steps gives DDPM posterior variance β̃ = (1 − ᾱ_{i−1})/(1 − ᾱ_i)·β_i', () => {
  const s = cosineSchedule(1000);
  for (const i of [1, 300, 700, 999]) {
    const c = ddimCoefficients(s.alphaBars[i]!, s.alphaBars[i - 1]!, 1);
    const posterior = ((1 - s.alphaBars[i - 1]!) / (1 - s.alphaBars[i]!)) * s.betas[i]!;
    close(c.sigma ** 2, posterior, 1e-9 * Math.max(1, posterior), `step ${i}`);
  }
});

test('guidance: ε(∅) + w·(ε(y) − ε(∅)); w = 1 is the conditional prediction, w = 0 the unconditional', () => {
  const v = (w: number) =>
    tf.tidy(() =>
      Array.from(
        guide(tf.tensor4d([1, -2], [2, 1, 1, 1]), tf.tensor4d([0.5, 1], [2, 1, 1, 1]), w).dataSync(),
      ),
    );
  assert.deepEqual(v(1), [1, -2]);
  assert.deepEqual(v(0), [0.5, 1]);
  const three = v(3);
  close(three[0]!, 0.5 + 3 * 0.5, 1e-6, 'w = 3 [0]');
  close(three[1]!, 1 + 3 * -3, 1e-6, 'w = 3 [1]');
});
