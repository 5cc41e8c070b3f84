// The fused path of the diffusion U-Net's GroupNorm and SiLU (tfjs-backend-libtorch's fused kernels in a
// tf.customGrad) against the composed TF.js ops: forward and first-order gradients w.r.t. x, γ and β, the
// whole U-Net's weight gradients, and the fallback on a backend without the kernels.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  GroupNorm,
  SiLU,
  groupNorm,
  groupNormComposed,
  silu,
  siluComposed,
} from '../../src/models/diffusion/layers.js';
import { buildUNet, type UNetSpec } from '../../src/models/diffusion/unet.js';
import { selectBackend } from '../../src/runtime/backend.js';

const FUSED = ['GroupNormLibtorch', 'GroupNormGradLibtorch', 'SiluLibtorch', 'SiluGradLibtorch'];

let fusedHere = false;
before(async () => {
  await selectBackend();
  fusedHere = FUSED.every((k) => tf.getKernel(k, tf.getBackend()) !== undefined);
});

/** Runs `f` with the fused kernels unregistered from the active backend (so the composed ops run). */
function withoutFused<T>(f: () => T): T {
  const backend = tf.getBackend();
  const configs = FUSED.map((k) => tf.getKernel(k, backend)).filter((c) => c !== undefined);
  for (const c of configs) tf.unregisterKernel(c.kernelName, backend);
  try {
    return f();
  } finally {
    for (const c of configs) tf.registerKernel(c);
  }
}

function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** max |a − b| ≤ tol·max(1, max |b|). */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 1e-5): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  assert.ok(diff <= tol * scale, `${what}: max diff ${diff} (scale ${scale})`);
}

type Norm = (x: tf.Tensor4D, g: tf.Tensor | null, b: tf.Tensor | null) => tf.Tensor;

/** y and the gradients of Σ y·dy w.r.t. x, γ, β (γ, β omitted when not affine). */
function forwardAndGrads(
  norm: Norm,
  shape: [number, number, number, number],
  affine: boolean,
  seed: number,
): Float32Array[] {
  return tf.tidy(() => {
    const size = shape.reduce((a, b) => a * b, 1);
    const c = shape[3];
    const x = tf.tensor4d(
      values(size, seed).map((v, i) => v * 2 + (i % c) - 1),
      shape,
    );
    const dy = tf.tensor4d(values(size, seed + 1), shape);
    const gamma = tf.tensor1d(values(c, seed + 2).map((v) => 1 + v));
    const beta = tf.tensor1d(values(c, seed + 3));
    const inputs = affine ? [x, gamma, beta] : [x];
    const loss = (...t: tf.Tensor[]) =>
      tf.sum(tf.mul(norm(t[0] as tf.Tensor4D, affine ? t[1]! : null, affine ? t[2]! : null), dy));
    const y = norm(x, affine ? gamma : null, affine ? beta : null);
    const grads = tf.grads(loss)(inputs);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

describe('fused GroupNorm and SiLU (libtorch)', () => {
  const shapes: { name: string; shape: [number, number, number, number]; groups: number }[] = [
    { name: '[2,7,7,16], 8 groups', shape: [2, 7, 7, 16], groups: 8 },
    { name: '[3,5,7,8], 8 groups (C/G = 1)', shape: [3, 5, 7, 8], groups: 8 },
    { name: '[2,6,4,6], 1 group', shape: [2, 6, 4, 6], groups: 1 },
    { name: '[2,14,14,24], 8 groups', shape: [2, 14, 14, 24], groups: 8 },
  ];
  for (const { name, shape, groups } of shapes) {
    for (const affine of [true, false]) {
      test(`groupNorm ${name}${affine ? '' : ', no γ/β'}: fused = composed (y, dx, dγ, dβ)`, (t) => {
        if (!fusedHere) return t.skip(`backend ${tf.getBackend()} has no fused kernels`);
        const fused = forwardAndGrads((x, g, b) => groupNorm(x, groups, g, b), shape, affine, 17);
        const composed = forwardAndGrads((x, g, b) => groupNormComposed(x, groups, g, b), shape, affine, 17);
        const names = ['y', 'dx', 'dγ', 'dβ'];
        composed.forEach((want, i) => assertClose(fused[i]!, want, names[i]!));
      });
    }
  }

  test('the GroupNorm layer takes the fused kernels, forward and backward', async (t) => {
    if (!fusedHere) return t.skip(`backend ${tf.getBackend()} has no fused kernels`);
    const layer = new GroupNorm({ groups: 4, name: 'gn_fused' });
    const x = tf.tensor4d(values(2 * 5 * 5 * 8, 3), [2, 5, 5, 8]);
    layer.apply(x); // build
    const info = await tf.profile(() => tf.grads((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))([x]));
    assert.ok(info.kernelNames.includes('GroupNormLibtorch'), info.kernelNames.join(','));
    assert.ok(info.kernelNames.includes('GroupNormGradLibtorch'), info.kernelNames.join(','));
    assert.ok(!info.kernelNames.includes('Rsqrt'), info.kernelNames.join(','));
    tf.dispose(info.result as tf.Tensor[]);
    // Same layer, composed: the same values for y and for the gradients of x, γ and β.
    const grads = () =>
      tf.tidy(() => {
        const { value, grads: g } = tf.variableGrads(
          () => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar,
          layer.trainableWeights.map((w) => w.read() as tf.Variable),
        );
        const gx = tf.grad((v: tf.Tensor) => tf.sum(tf.square(layer.apply(v) as tf.Tensor)))(x);
        return [value, gx, ...Object.values(g)].map((v) => v.dataSync() as Float32Array);
      });
    const fused = grads();
    const composed = withoutFused(grads);
    assert.equal(fused.length, 4);
    composed.forEach((want, i) => assertClose(fused[i]!, want, `output ${i}`));
    x.dispose();
    layer.dispose();
  });

  test('silu and the SiLU layer: fused = composed = tfjs-layers swish, values and gradient', async (t) => {
    if (!fusedHere) return t.skip(`backend ${tf.getBackend()} has no fused kernels`);
    const x = tf.tensor4d(
      values(2 * 3 * 3 * 5, 9).map((v, i) => v * (i % 4 === 0 ? 25 : 4)),
      [2, 3, 3, 5],
    );
    const swish = tfl.layers.activation({ activation: 'swish' });
    const layer = new SiLU({});
    const run = (f: (v: tf.Tensor) => tf.Tensor) =>
      tf.tidy(() => [f(x), tf.grad((v: tf.Tensor) => tf.sum(tf.square(f(v))))(x)].map((v) => v.dataSync()));
    const [yFused, gFused] = run(silu);
    const [yLayer, gLayer] = run((v) => layer.apply(v) as tf.Tensor);
    const [yComposed, gComposed] = run(siluComposed);
    const [ySwish, gSwish] = run((v) => swish.apply(v) as tf.Tensor);
    assertClose(yFused!, yComposed!, 'y');
    assertClose(gFused!, gComposed!, 'dx');
    assert.deepEqual(yLayer, yFused);
    assert.deepEqual(gLayer, gFused);
    assert.deepEqual(ySwish, yComposed);
    assert.deepEqual(gSwish, gComposed);
    const info = await tf.profile(() => tf.grad((v: tf.Tensor) => tf.sum(silu(v)))(x));
    // One kernel each way (plus customGrad's bookkeeping: Identity for the saved x, 'forward').
    const names = info.kernelNames.join(',');
    assert.ok(names.includes('SiluLibtorch') && names.includes('SiluGradLibtorch'), names);
    assert.ok(!/Sigmoid|Multiply|Add|Sub/.test(names), names);
    (info.result as tf.Tensor).dispose();
    x.dispose();
  });

  test('no tensor leaks in a fused forward + backward', (t) => {
    if (!fusedHere) return t.skip(`backend ${tf.getBackend()} has no fused kernels`);
    const layer = new GroupNorm({ groups: 2, name: 'gn_leak' });
    const x = tf.tensor4d(values(2 * 4 * 4 * 4, 1), [2, 4, 4, 4]);
    layer.apply(x);
    const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const once = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => tf.sum(silu(layer.apply(x) as tf.Tensor)) as tf.Scalar,
          vars,
        );
        return [value.dataSync()[0], ...Object.values(grads).map((g) => g.dataSync()[0])];
      });
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) once();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
    layer.dispose();
  });

  test('a second-order gradient through the fused path fails loudly (the composed one works)', (t) => {
    if (!fusedHere) return t.skip(`backend ${tf.getBackend()} has no fused kernels`);
    const x = tf.tensor4d(values(32, 2), [1, 2, 2, 8]);
    const penalty = (norm: (v: tf.Tensor4D) => tf.Tensor) =>
      tf.tidy(() =>
        tf.grad((v: tf.Tensor) =>
          tf.sum(tf.square(tf.grad((u: tf.Tensor) => tf.sum(tf.square(norm(u as tf.Tensor4D))))(v))),
        )(x),
      );
    assert.throws(() => penalty((v) => groupNorm(v, 2)), /gradient function not found/);
    const composed = penalty((v) => groupNormComposed(v, 2));
    assert.deepEqual(composed.shape, x.shape);
    tf.dispose([composed, x]);
  });

  test("a U-Net's weight gradients: fused = composed", (t) => {
    if (!fusedHere) return t.skip(`backend ${tf.getBackend()} has no fused kernels`);
    const spec: UNetSpec = {
      size: 28,
      channels: 1,
      numClasses: 2,
      width: 8,
      mults: [1, 2, 2],
      blocksPerLevel: 1,
      attention: true,
      seed: 3,
    };
    const model = buildUNet(spec);
    // Non-zero weights everywhere (the zero-initialised convs would hide most of the network).
    model.setWeights(
      tf.tidy(() =>
        model.getWeights().map((w, i) => tf.add(w, tf.randomNormal(w.shape, 0, 0.1, 'float32', 7 + i))),
      ),
    );
    const x = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 1);
    const target = tf.randomNormal([2, 28, 28, 1], 0, 1, 'float32', 2);
    const tt = tf.tensor2d([[10], [500]]);
    const labels = tf.tensor1d([0, 2], 'int32');
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const grads = () =>
      tf.tidy(() => {
        const { value, grads: g } = tf.variableGrads(
          () =>
            tf.mean(
              tf.square(tf.sub(model.apply([x, tt, labels], { training: true }) as tf.Tensor, target)),
            ) as tf.Scalar,
          vars,
        );
        return [value, ...vars.map((v) => g[v.name]!)].map((v) => v.dataSync() as Float32Array);
      });
    try {
      const fused = grads();
      const composed = withoutFused(grads);
      assert.equal(fused.length, vars.length + 1);
      composed.forEach((want, i) => assertClose(fused[i]!, want, i === 0 ? 'loss' : vars[i - 1]!.name, 1e-4));
    } finally {
      tf.dispose([x, target, tt, labels]);
      model.dispose();
    }
  });
});

describe('fallback without the fused kernels', () => {
  test('groupNorm and silu run the composed ops, bit-identical to them', async () => {
    const x = tf.tensor4d(values(2 * 3 * 3 * 4, 5), [2, 3, 3, 4]);
    const g = tf.tensor1d([1, 2, 0.5, -1]);
    const b = tf.tensor1d([0, 1, 0, -1]);
    const got = withoutFused(() => tf.tidy(() => [groupNorm(x, 2, g, b).dataSync(), silu(x).dataSync()]));
    const info = await tf.profile(() => withoutFused(() => [groupNorm(x, 2, g, b), silu(x)]));
    assert.ok(!info.kernelNames.some((k) => FUSED.includes(k)), info.kernelNames.join(','));
    tf.dispose(info.result as tf.Tensor[]);
    const want = tf.tidy(() => [groupNormComposed(x, 2, g, b).dataSync(), siluComposed(x).dataSync()]);
    assert.deepEqual(got, want);
    tf.dispose([x, g, b]);
  });

  test('groupNorm still rejects a group count that does not divide the channels', () => {
    const x = tf.zeros([1, 2, 2, 6]) as tf.Tensor4D;
    assert.throws(() => groupNorm(x, 4), /4 groups do not divide 6 channels/);
    assert.throws(() => withoutFused(() => groupNorm(x, 4)), /4 groups do not divide 6 channels/);
    x.dispose();
  });
});
