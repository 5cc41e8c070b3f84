// Second-order gradients (R1 / WGAN-GP penalties differentiate a gradient again) through the kernels whose
// first-order gradients the backend fuses: the fused kernels have no gradients, so under a recording tape
// TF.js's own differentiable gradients must run. Checked against the analytic result and against cpu.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-layers registers TF.js's gradients (tfjs-core's Node bundle registers none).
import '@tensorflow/tfjs-layers';
import { registerLibtorchBackend } from '../src/index.js';

before(async () => {
  // TF.js's LeakyReLU gradient masks with Greater, which has no gradient: a zero one (what medsynth registers)
  // lets second-order gradients through, on any backend.
  if (!tf.getGradient('Greater')) {
    tf.registerGradient({
      kernelName: 'Greater',
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, [a, b]) => ({ a: () => tf.zerosLike(a!), b: () => tf.zerosLike(b!) }),
    });
  }
  registerLibtorchBackend({ threads: 1 });
  await tf.setBackend('libtorch');
});

/** d/dw of Σ (∂/∂x Σ f(w·x))² — a gradient penalty of a one-weight "discriminator". */
function penaltyGrad(f: (t: tf.Tensor) => tf.Tensor, x: tf.Tensor, w: tf.Variable): number[] {
  return tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const gx = tf.grad((xi: tf.Tensor) => tf.sum(f(tf.mul(xi, w))))(x);
      return tf.sum(tf.square(gx)) as tf.Scalar;
    }, [w]);
    return Array.from(grads[w.name]!.dataSync());
  });
}

describe('second-order gradients on libtorch', () => {
  const cases: [string, (t: tf.Tensor) => tf.Tensor][] = [
    ['leakyRelu', (t) => tf.leakyRelu(t, 0.2)],
    ['relu', (t) => tf.relu(t)],
    ['tanh', (t) => tf.tanh(t)],
    ['sigmoid', (t) => tf.sigmoid(t)],
    ['mean', (t) => tf.mean(tf.square(t))],
    ['sum', (t) => tf.sum(tf.square(t), 0)],
  ];
  for (const [name, f] of cases) {
    test(`${name}: matches the cpu backend`, async () => {
      const xs = [-1.5, -0.3, 0.4, 2];
      const run = () => {
        const w = tf.variable(tf.scalar(0.7));
        try {
          return penaltyGrad(f, tf.tensor1d(xs), w);
        } finally {
          w.dispose();
        }
      };
      const lt = run();
      await tf.setBackend('cpu');
      const cpu = run();
      await tf.setBackend('libtorch');
      assert.equal(lt.length, 1);
      assert.ok(Math.abs(lt[0]! - cpu[0]!) <= 1e-5 * Math.max(1, Math.abs(cpu[0]!)), `${lt} vs ${cpu}`);
    });
  }

  test('leakyRelu penalty equals the analytic value', () => {
    // f = Σ lrelu(w·x): ∂f/∂x = w·s(x) with s = 1 or α by the sign of w·x, so the penalty is w²·Σ s² and its
    // w-derivative 2w·Σ s².
    const alpha = 0.2;
    const xs = [-1.5, -0.3, 0.4, 2];
    const w = tf.variable(tf.scalar(0.7));
    const g = penaltyGrad((t) => tf.leakyRelu(t, alpha), tf.tensor1d(xs), w);
    const s2 = xs.reduce((a, x) => a + (x > 0 ? 1 : alpha * alpha), 0);
    assert.ok(Math.abs(g[0]! - 2 * 0.7 * s2) < 1e-5, `${g[0]} vs ${2 * 0.7 * s2}`);
    w.dispose();
  });

  test('first-order gradients still take the fused kernels', async () => {
    const x = tf.tensor1d([-1, 2]);
    const info = await tf.profile(() => tf.grad((t: tf.Tensor) => tf.sum(tf.leakyRelu(t, 0.2)))(x));
    assert.ok(info.kernelNames.includes('_LibtorchLeakyReluGrad'), info.kernelNames.join(','));
    x.dispose();
  });
});
