// The fused kernels of FUSED_KERNELS (group norm, SiLU and their gradients) against TF.js's composed maths on
// the cpu backend: group norm as reshape + moments, differentiated by TF.js; SiLU as x·sigmoid(x).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-layers registers TF.js's gradients (tfjs-core's Node bundle registers none).
import '@tensorflow/tfjs-layers';
import { FUSED_KERNELS, registerLibtorchBackend, type LibtorchBackend } from '../src/index.js';

before(async () => {
  registerLibtorchBackend({ threads: 1 });
  await tf.setBackend('libtorch');
});

const EPS = 1e-5;

/** Deterministic pseudo-random values in [-1, 1) (no dependency on any backend's RNG). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
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

interface Case {
  shape: [number, number, number, number];
  groups: number;
  affine: boolean;
}

interface GroupNormData {
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  dy: Float32Array;
}

function caseData({ shape, affine }: Case, seed: number): GroupNormData {
  const size = shape.reduce((a, b) => a * b, 1);
  const c = shape[3];
  // Per-channel offsets and scales, so that groups have different means and variances.
  const x = values(size, seed).map((v, i) => v * (1 + (i % c) / 2) + ((i % c) % 5) - 2);
  const gamma = affine ? values(c, seed + 1).map((v) => 1 + v) : new Float32Array(c).fill(1);
  const beta = affine ? values(c, seed + 2) : new Float32Array(c);
  return { x, gamma, beta, dy: values(size, seed + 3) };
}

/** TF.js's composed group norm (what medsynth runs on other backends): y, mean and rstd `[N, G]`. */
function composed(x: tf.Tensor4D, groups: number, gamma: tf.Tensor | null, beta: tf.Tensor | null) {
  const [n, h, w, c] = x.shape;
  const grouped = tf.reshape(x, [n, h, w, groups, c / groups]);
  const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
  const rstd = tf.rsqrt(tf.add(variance, EPS));
  let y = tf.reshape(tf.mul(tf.sub(grouped, mean), rstd), [n, h, w, c]);
  if (gamma) y = tf.mul(y, gamma);
  if (beta) y = tf.add(y, beta);
  return { y, mean: tf.reshape(mean, [n, groups]), rstd: tf.reshape(rstd, [n, groups]) };
}

interface GroupNormResult {
  y: Float32Array;
  mean: Float32Array;
  rstd: Float32Array;
  dx: Float32Array;
  dgamma: Float32Array;
  dbeta: Float32Array;
}

/** On cpu: the composed forward and its TF.js gradients of Σ y·dy. */
function reference(k: Case, d: GroupNormData): GroupNormResult {
  return tf.tidy(() => {
    const x = tf.tensor4d(d.x, k.shape);
    const gamma = tf.tensor1d(d.gamma);
    const beta = tf.tensor1d(d.beta);
    const dy = tf.tensor4d(d.dy, k.shape);
    const { y, mean, rstd } = composed(x, k.groups, gamma, beta);
    const [dx, dgamma, dbeta] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(composed(a as tf.Tensor4D, k.groups, g, b).y, dy)),
    )([x, gamma, beta]);
    const read = (t: tf.Tensor) => t.dataSync() as Float32Array;
    return {
      y: read(y),
      mean: read(mean),
      rstd: read(rstd),
      dx: read(dx!),
      dgamma: read(dgamma!),
      dbeta: read(dbeta!),
    };
  });
}

/** Group norm and its gradients in float64 (plain loops): dx = r·(g − mean(g) − x̂·mean(g·x̂)), g = γ·dy. */
function float64Reference({ shape, groups }: Case, d: GroupNormData): GroupNormResult {
  const [n, h, w, c] = shape;
  const cg = c / groups;
  const count = h * w * cg;
  const out = {
    y: new Float32Array(d.x.length),
    mean: new Float32Array(n * groups),
    rstd: new Float32Array(n * groups),
    dx: new Float32Array(d.x.length),
    dgamma: new Float32Array(c),
    dbeta: new Float32Array(c),
  };
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  for (let b = 0; b < n; b++)
    for (let g = 0; g < groups; g++) {
      const idx: number[] = [];
      for (let p = 0; p < h * w; p++)
        for (let k = g * cg; k < (g + 1) * cg; k++) idx.push((b * h * w + p) * c + k);
      const mean = idx.reduce((a, i) => a + d.x[i]!, 0) / count;
      const r = 1 / Math.sqrt(idx.reduce((a, i) => a + (d.x[i]! - mean) ** 2, 0) / count + EPS);
      out.mean[b * groups + g] = mean;
      out.rstd[b * groups + g] = r;
      let meanG = 0;
      let meanGX = 0;
      for (const i of idx) {
        const xhat = (d.x[i]! - mean) * r;
        const ch = i % c;
        const gi = d.gamma[ch]! * d.dy[i]!;
        out.y[i] = xhat * d.gamma[ch]! + d.beta[ch]!;
        meanG += gi / count;
        meanGX += (gi * xhat) / count;
        dgamma[ch] = dgamma[ch]! + d.dy[i]! * xhat;
        dbeta[ch] = dbeta[ch]! + d.dy[i]!;
      }
      for (const i of idx) {
        const xhat = (d.x[i]! - mean) * r;
        out.dx[i] = r * (d.gamma[i % c]! * d.dy[i]! - meanG - xhat * meanGX);
      }
    }
  out.dgamma.set(dgamma);
  out.dbeta.set(dbeta);
  return out;
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs) as tf.Tensor[];
/** A kernel with one output (runKernel returns it unwrapped). */
const run1 = (name: string, inputs: tf.NamedTensorMap) => tf.engine().runKernel(name, inputs) as tf.Tensor;

/** On libtorch: the fused kernels (gamma and beta passed only when the case is affine). */
function fused(k: Case, d: GroupNormData, transposedInput = false): GroupNormResult {
  return tf.tidy(() => {
    let x = tf.tensor4d(d.x, k.shape);
    if (transposedInput) {
      // The same values through a non-contiguous view: Transpose returns a permuted view on libtorch.
      const [n, h, w, c] = k.shape;
      x = tf.transpose(tf.tensor4d(tf.transpose(x, [0, 2, 1, 3]).dataSync(), [n, w, h, c]), [0, 2, 1, 3]);
    }
    const affine: tf.NamedTensorMap = k.affine
      ? { gamma: tf.tensor1d(d.gamma), beta: tf.tensor1d(d.beta) }
      : {};
    const [y, mean, rstd] = run(
      FUSED_KERNELS.groupNorm,
      { x, ...affine },
      { groups: k.groups, epsilon: EPS },
    );
    const gamma = k.affine ? { gamma: affine['gamma']! } : {};
    const [dx, dgamma, dbeta] = run(
      FUSED_KERNELS.groupNormGrad,
      { dy: tf.tensor4d(d.dy, k.shape), x, mean: mean!, rstd: rstd!, ...gamma },
      { groups: k.groups },
    );
    assert.deepEqual(y!.shape, k.shape);
    assert.deepEqual(mean!.shape, [k.shape[0], k.groups]);
    assert.deepEqual(dx!.shape, k.shape);
    assert.deepEqual([dgamma!.shape, dbeta!.shape], [[k.shape[3]], [k.shape[3]]]);
    const read = (t: tf.Tensor | undefined) => t!.dataSync() as Float32Array;
    return {
      y: read(y),
      mean: read(mean),
      rstd: read(rstd),
      dx: read(dx),
      dgamma: read(dgamma),
      dbeta: read(dbeta),
    };
  });
}

async function onCpu<T>(f: () => T): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return f();
  } finally {
    await tf.setBackend('libtorch');
  }
}

function handles(): number {
  return (tf.backend() as LibtorchBackend).memory().liveHandles;
}

describe('fused group norm (GroupNormLibtorch / GroupNormGradLibtorch)', () => {
  const cases: (Case & { name: string })[] = [
    { name: '[2,7,7,6], 3 groups', shape: [2, 7, 7, 6], groups: 3, affine: true },
    { name: '[3,5,7,8], 8 groups (C/G = 1)', shape: [3, 5, 7, 8], groups: 8, affine: true },
    { name: '[2,4,6,5], 1 group', shape: [2, 4, 6, 5], groups: 1, affine: true },
    { name: '[1,7,3,1], C = G = 1', shape: [1, 7, 3, 1], groups: 1, affine: true },
    { name: '[4,1,1,16], H = W = 1, 4 groups', shape: [4, 1, 1, 16], groups: 4, affine: true },
    { name: '[2,9,7,32], 8 groups', shape: [2, 9, 7, 32], groups: 8, affine: true },
    { name: '[2,3,5,4], 2 groups, no gamma/beta', shape: [2, 3, 5, 4], groups: 2, affine: false },
  ];
  for (const k of cases) {
    test(`${k.name}: y, mean, rstd, dx, dgamma, dbeta match TF.js's composed version on cpu`, async () => {
      const d = caseData(
        k,
        k.shape.reduce((a, b) => a * b + 7, k.groups),
      );
      const want = await onCpu(() => reference(k, d));
      const got = fused(k, d);
      for (const key of ['y', 'mean', 'rstd', 'dx', 'dgamma', 'dbeta'] as const)
        assertClose(got[key], want[key], key);
      if (k.affine) {
        const exact = float64Reference(k, d);
        for (const key of ['y', 'mean', 'rstd', 'dx', 'dgamma', 'dbeta'] as const)
          assertClose(got[key], exact[key], `${key} (float64)`);
      }
    });
  }

  // Groups far from zero mean: 1.13's channels-last kernel alone (E[x²] − E[x]² in float32) is off by ~2e-3
  // at μ/σ = 100 here and useless at 3000; the kernels centre such groups first. At 3000 float32 itself limits
  // the accuracy (ulp(μ)/σ ≈ 1e-4 in the group mean): there the fused results must be within twice the error
  // of the composed ops on cpu.
  for (const offset of [100, 3000]) {
    test(`groups with μ ≈ ${offset}, σ ≈ 1: as accurate as the composed ops (float64 reference)`, async () => {
      const k: Case = { shape: [2, 9, 7, 8], groups: 2, affine: true };
      const d = caseData(k, 21);
      d.x = d.x.map((v) => offset + v);
      const exact = float64Reference(k, d);
      const composedOnCpu = await onCpu(() => reference(k, d));
      const got = fused(k, d);
      for (const key of ['y', 'mean', 'rstd', 'dx', 'dgamma', 'dbeta'] as const) {
        const scale = Math.max(1, ...Array.from(exact[key], Math.abs));
        const tol = Math.max(1e-5, (2 * maxAbsDiff(composedOnCpu[key], exact[key])) / scale);
        assertClose(got[key], exact[key], key, tol);
      }
    });
  }

  test('a non-contiguous input (a transposed view) gives the same results', () => {
    const k: Case = { shape: [2, 7, 5, 6], groups: 2, affine: true };
    const d = caseData(k, 5);
    const direct = fused(k, d);
    const viaView = fused(k, d, true);
    for (const key of ['y', 'mean', 'rstd', 'dx', 'dgamma', 'dbeta'] as const)
      assertClose(viaView[key], direct[key], key, 1e-6);
  });

  test('no tensor or handle leaks', () => {
    const k: Case = { shape: [2, 7, 7, 6], groups: 3, affine: true };
    const d = caseData(k, 9);
    fused(k, d);
    const [tensors, live] = [tf.memory().numTensors, handles()];
    for (let i = 0; i < 3; i++) fused(k, d);
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(handles(), live);
  });

  test('rejects groups that do not divide C, a non-NHWC input and mis-shaped gamma', () => {
    const x = tf.zeros([1, 2, 2, 6]);
    const x3 = tf.zeros([2, 6, 4]);
    const g = tf.ones([4]);
    const [tensors, live] = [tf.memory().numTensors, handles()];
    assert.throws(
      () => run(FUSED_KERNELS.groupNorm, { x }, { groups: 4 }),
      /groups must be a positive integer dividing the 6 channels/,
    );
    assert.throws(() => run(FUSED_KERNELS.groupNorm, { x: x3 }, { groups: 2 }), /rank 4/);
    assert.throws(
      () => run(FUSED_KERNELS.groupNorm, { x, gamma: g }, { groups: 2 }),
      /gamma must be float32 \[6\]/,
    );
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(handles(), live);
    tf.dispose([x, x3, g]);
  });
});

describe('fused SiLU (SiluLibtorch / SiluGradLibtorch)', () => {
  test('x·sigmoid(x) and its gradient match TF.js on cpu', async () => {
    const shape = [2, 3, 4, 5];
    const size = 2 * 3 * 4 * 5;
    const xs = values(size, 3).map((v, i) => v * (i % 7 === 0 ? 30 : 4)); // includes |x| ≫ 1
    const dys = values(size, 4);
    const want = await onCpu(() =>
      tf.tidy(() => {
        const x = tf.tensor(xs, shape);
        const f = (t: tf.Tensor) => tf.mul(t, tf.sigmoid(t));
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), tf.tensor(dys, shape))))(x);
        return { y: f(x).dataSync(), dx: dx.dataSync() };
      }),
    );
    const got = tf.tidy(() => {
      const x = tf.tensor(xs, shape);
      const y = run1(FUSED_KERNELS.silu, { x });
      const dx = run1(FUSED_KERNELS.siluGrad, { dy: tf.tensor(dys, shape), x });
      assert.deepEqual([y.shape, dx.shape], [shape, shape]);
      return { y: y.dataSync(), dx: dx.dataSync() };
    });
    assertClose(got.y, want.y, 'y');
    assertClose(got.dx, want.dx, 'dx');
    // Hand values: silu(1) = 0.7310586, silu'(1) = σ(1)·(1 + 1·(1 − σ(1))) = 0.9276705.
    const [y1, g1] = tf.tidy(() => {
      const one = tf.tensor1d([1]);
      const y = run1(FUSED_KERNELS.silu, { x: one });
      const g = run1(FUSED_KERNELS.siluGrad, { dy: tf.onesLike(one), x: one });
      return [y.dataSync()[0]!, g.dataSync()[0]!];
    });
    assert.ok(Math.abs(y1! - 0.7310586) < 1e-6 && Math.abs(g1! - 0.9276705) < 1e-6, `${y1} ${g1}`);
  });

  test('no tensor or handle leaks; int32 is rejected', () => {
    const x = tf.tensor1d([-1, 0, 2]);
    const once = () =>
      tf.dispose(tf.tidy(() => run1(FUSED_KERNELS.siluGrad, { dy: x, x: run1(FUSED_KERNELS.silu, { x }) })));
    once();
    const [tensors, live] = [tf.memory().numTensors, handles()];
    for (let i = 0; i < 3; i++) once();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(handles(), live);
    const xi = tf.tensor1d([1, 2], 'int32');
    assert.throws(() => run1(FUSED_KERNELS.silu, { x: xi }), /x must be float32, got int32/);
    tf.dispose([x, xi]);
  });
});

describe('FUSED_KERNELS registration', () => {
  test('registered for libtorch only, under names TF.js does not use', () => {
    for (const name of Object.values(FUSED_KERNELS)) {
      assert.ok(tf.getKernel(name, 'libtorch') !== undefined, `${name} on libtorch`);
      assert.equal(tf.getKernel(name, 'cpu'), undefined, `${name} on cpu`);
    }
    assert.deepEqual(FUSED_KERNELS, {
      groupNorm: 'GroupNormLibtorch',
      groupNormGrad: 'GroupNormGradLibtorch',
      silu: 'SiluLibtorch',
      siluGrad: 'SiluGradLibtorch',
    });
  });
});
