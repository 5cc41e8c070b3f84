/**
 * R1 and WGAN-GP against analytic values, and their gradients w.r.t. D's weights (second-order gradients)
 * against central finite differences — on libtorch and on TF.js's cpu backend. The small nets use the ops the
 * real D and its fused libtorch gradients involve: conv2d, batch norm with batch statistics, tanh, sigmoid,
 * LeakyReLU, ReLU, mean, sum, matMul.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { inputGradientNormSquared, r1Penalty, wganGradientPenalty } from '../../src/losses/index.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { Rng } from '../../src/runtime/random.js';

before(async () => {
  await selectBackend();
});

const N = 2;
const H = 6;
const W = 6;
const C = 1;

/** Deterministic normals × scale. */
function normals(n: number, name: string, scale = 1): Float32Array {
  return Rng.derive(7, name)
    .normals(n)
    .map((v) => v * scale);
}

function input(name: string, shape: [number, number, number, number] = [N, H, W, C]): tf.Tensor4D {
  return tf.tensor4d(
    normals(
      shape.reduce((a, b) => a * b, 1),
      name,
    ),
    shape,
  );
}

function scalarOf(t: tf.Tensor): number {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

/** Parameters of a small net by name; values as plain arrays, with shapes. */
interface ParamSpec {
  readonly name: string;
  readonly shape: number[];
  readonly scale: number;
  readonly offset?: number;
}
type Params = Record<string, tf.Tensor>;

const SMOOTH: ParamSpec[] = [
  { name: 'k1', shape: [3, 3, C, 3], scale: 0.5 },
  { name: 'gamma', shape: [3], scale: 0.2, offset: 1 },
  { name: 'beta', shape: [3], scale: 0.2 },
  { name: 'k2', shape: [3, 3, 3, 4], scale: 0.3 },
  { name: 'wd', shape: [4, 1], scale: 1 },
  { name: 'bd', shape: [1], scale: 0.1 },
];

/**
 * conv → batch norm (batch statistics) → `act` → conv stride 2 → `act` → spatial mean → dense. Softplus: its
 * gradient saves its input. Tanh and sigmoid: TF.js's own gradients save their output, which its tape cannot
 * differentiate again; tfjs-backend-libtorch's wrappers recompute from the input under a recording tape.
 */
function smoothNet(p: Params, x: tf.Tensor4D, act: (t: tf.Tensor) => tf.Tensor = tf.softplus): tf.Tensor2D {
  const c1 = tf.conv2d(x, p['k1'] as tf.Tensor4D, 1, 'same');
  const { mean, variance } = tf.moments(c1, [0, 1, 2]);
  const h1 = act(tf.batchNorm(c1, mean, variance, p['beta'] as tf.Tensor1D, p['gamma'] as tf.Tensor1D, 1e-3));
  const h2 = act(tf.conv2d(h1 as tf.Tensor4D, p['k2'] as tf.Tensor4D, 2, 'same'));
  const pooled = tf.mean(h2, [1, 2]) as tf.Tensor2D;
  return tf.add(tf.matMul(pooled, p['wd'] as tf.Tensor2D), p['bd']!);
}

const LEAKY: ParamSpec[] = [
  { name: 'k1', shape: [3, 3, C, 3], scale: 0.5 },
  { name: 'b1', shape: [3], scale: 0.1 },
  { name: 'k2', shape: [3, 3, 3, 4], scale: 0.4 },
  { name: 'b2', shape: [4], scale: 0.1, offset: 0.2 },
  { name: 'wd', shape: [4, 1], scale: 1 },
];

/** conv → LeakyReLU(0.2) → conv stride 2 → ReLU → spatial sum → dense; also the pre-activations. */
function leakyNetWithPre(p: Params, x: tf.Tensor4D): { logits: tf.Tensor2D; pre: tf.Tensor[] } {
  const pre1 = tf.add(tf.conv2d(x, p['k1'] as tf.Tensor4D, 1, 'same'), p['b1']!);
  const pre2 = tf.add(
    tf.conv2d(tf.leakyRelu(pre1, 0.2) as tf.Tensor4D, p['k2'] as tf.Tensor4D, 2, 'same'),
    p['b2']!,
  );
  const pooled = tf.sum(tf.relu(pre2), [1, 2]) as tf.Tensor2D;
  return { logits: tf.matMul(pooled, p['wd'] as tf.Tensor2D), pre: [pre1, pre2] };
}

const leakyNet = (p: Params, x: tf.Tensor4D) => leakyNetWithPre(p, x).logits;

function initialValues(specs: readonly ParamSpec[]): Float32Array[] {
  return specs.map((s) =>
    normals(
      s.shape.reduce((a, b) => a * b, 1),
      s.name,
      s.scale,
    ).map((v) => v + (s.offset ?? 0)),
  );
}

function tensorsOf(specs: readonly ParamSpec[], values: readonly Float32Array[]): Params {
  return Object.fromEntries(specs.map((s, i) => [s.name, tf.tensor(values[i]!, s.shape)]));
}

/**
 * Central finite differences of `f` w.r.t. every coordinate (4-point stencil, error O(h⁴)); coordinates where
 * `valid` says the function is not smooth within ±2h come back as NaN.
 */
function finiteDifferences(
  values: readonly Float32Array[],
  f: (v: Float32Array[]) => number,
  h: number,
  valid: (v: Float32Array[][]) => boolean = () => true,
): Float32Array {
  const out: number[] = [];
  values.forEach((block, b) => {
    for (let i = 0; i < block.length; i++) {
      const at = (d: number) => values.map((v, j) => (j === b ? v.map((x, k) => (k === i ? x + d : x)) : v));
      const points = [2 * h, h, -h, -2 * h].map(at);
      if (!valid(points)) {
        out.push(Number.NaN);
        continue;
      }
      const [f2, f1, fm1, fm2] = points.map(f) as [number, number, number, number];
      out.push((8 * (f1 - fm1) - (f2 - fm2)) / (12 * h));
    }
  });
  return Float32Array.from(out);
}

/** ‖a − b‖ / ‖b‖ over the coordinates where b is a number, and how many those are. */
function relativeError(a: Float32Array, b: Float32Array): { rel: number; used: number } {
  let num = 0;
  let den = 0;
  let used = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i]!)) continue;
    used++;
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return { rel: Math.sqrt(num / den), used };
}

function penaltyGradientCase(
  specs: readonly ParamSpec[],
  penalty: (p: Params) => tf.Scalar,
  h: number,
  valid?: (v: Float32Array[][]) => boolean,
): { rel: number; used: number; total: number; grad: Float32Array } {
  const values = initialValues(specs);
  const vars = specs.map((s, i) => tf.variable(tf.tensor(values[i]!, s.shape)));
  let grad: Float32Array;
  try {
    const params: Params = Object.fromEntries(specs.map((s, i) => [s.name, vars[i]!]));
    const { value, grads } = tf.variableGrads(() => penalty(params), vars);
    // A weight the penalty does not depend on (the output bias, for R1) gets no gradient: 0.
    grad = Float32Array.from(
      vars.flatMap((v) => Array.from(grads[v.name]?.dataSync() ?? new Float32Array(v.size))),
    );
    tf.dispose([value, ...Object.values(grads)]);
  } finally {
    tf.dispose(vars);
  }
  const fd = finiteDifferences(
    values,
    (v) => tf.tidy(() => penalty(tensorsOf(specs, v)).dataSync()[0]!),
    h,
    valid,
  );
  return { ...relativeError(grad, fd), total: fd.length, grad };
}

/** Whether the LeakyReLU/ReLU pre-activations at `real` keep their signs at every point. */
function sameRegion(real: tf.Tensor4D, base: readonly Float32Array[]) {
  const signs = (v: readonly Float32Array[]) =>
    tf.tidy(() =>
      leakyNetWithPre(tensorsOf(LEAKY, v), real).pre.flatMap((t) => Array.from(tf.sign(t).dataSync())),
    );
  const ref = signs(base);
  return (points: Float32Array[][]) => points.every((v) => signs(v).every((s, i) => s === ref[i]));
}

/** Runs the suite on one backend. */
function suite(backend: 'libtorch' | 'cpu'): void {
  describe(`gradient penalties on ${backend}`, () => {
    before(async () => {
      if (backend === 'cpu') assert.ok(await tf.setBackend('cpu'));
      else await selectBackend({ prefer: 'libtorch' });
      assert.equal(tf.getBackend(), backend);
    });

    test('R1 of D(x) = Σ w_c·x² is mean Σ (2 w_c x)², and its w-gradient is mean Σ 8 w_c x²', () => {
      const xs = normals(2 * 3 * 3 * 2, 'quad-x');
      const w = [0.7, -1.3];
      const x = tf.tensor4d(xs, [2, 3, 3, 2]);
      const wv = tf.variable(tf.tensor1d(w));
      const d = (t: tf.Tensor4D) => tf.sum(tf.mul(tf.square(t), wv), [1, 2, 3]);
      let expected = 0;
      const dw = [0, 0];
      xs.forEach((v, i) => {
        const c = i % 2;
        expected += (2 * w[c]! * v) ** 2 / 2;
        dw[c]! += (8 * w[c]! * v * v) / 2;
      });
      const r1 = scalarOf(tf.tidy(() => r1Penalty(d, x)));
      assert.ok(Math.abs(r1 - expected) <= 1e-5 * expected, `R1 ${r1}, expected ${expected}`);
      const { value, grads } = tf.variableGrads(() => r1Penalty(d, x), [wv]);
      const g = Array.from(grads[wv.name]!.dataSync());
      tf.dispose([value, ...Object.values(grads)]);
      g.forEach((gi, c) =>
        assert.ok(Math.abs(gi - dw[c]!) <= 1e-5 * Math.abs(dw[c]!), `dR1/dw ${g} vs ${dw}`),
      );
      tf.dispose([x, wv]);
    });

    test('per-sample squared input-gradient norms of the quadratic D', () => {
      const x = tf.tensor4d([1, 2, 3, 4, -1, 0, 0, 1], [2, 2, 2, 1]);
      const d = (t: tf.Tensor4D) => tf.sum(tf.mul(tf.square(t), 0.5), [1, 2, 3]);
      const norms = tf.tidy(() => inputGradientNormSquared(d, x));
      // ∂D/∂x = x per sample.
      assert.deepEqual(Array.from(norms.dataSync()), [1 + 4 + 9 + 16, 1 + 0 + 0 + 1]);
      tf.dispose([norms, x]);
    });

    test('WGAN-GP of a linear D is (‖w‖ − 1)², with w-gradient 2(‖w‖ − 1)·w/‖w‖', () => {
      const wData = normals(H * W * C, 'linear-w', 0.3);
      const norm = Math.hypot(...wData);
      const wv = tf.variable(tf.tensor4d(wData, [1, H, W, C]));
      const d = (t: tf.Tensor4D) => tf.sum(tf.mul(t, wv), [1, 2, 3]);
      const real = input('real');
      const fake = input('fake');
      const alpha = tf.tensor4d([0.25, 0.8], [N, 1, 1, 1]);
      const gp = scalarOf(tf.tidy(() => wganGradientPenalty(d, real, fake, alpha)));
      const expected = (norm - 1) ** 2;
      assert.ok(Math.abs(gp - expected) <= 1e-5 * Math.max(1, expected), `GP ${gp}, expected ${expected}`);
      const { value, grads } = tf.variableGrads(() => wganGradientPenalty(d, real, fake, alpha), [wv]);
      const g = grads[wv.name]!.dataSync();
      const scale = (2 * (norm - 1)) / norm;
      let maxErr = 0;
      wData.forEach((wi, i) => (maxErr = Math.max(maxErr, Math.abs(g[i]! - scale * wi))));
      tf.dispose([value, ...Object.values(grads)]);
      assert.ok(maxErr <= 1e-5, `max |dGP/dw − analytic| = ${maxErr}`);
      tf.dispose([wv, real, fake, alpha]);
    });

    test('WGAN-GP mixes α·real + (1 − α)·fake (quadratic D: ∇ = 2w·x̂)', () => {
      const real = tf.tensor4d([1, 2, 3, 4, 0, 0, 0, 0], [2, 2, 2, 1]);
      const fake = tf.tensor4d([0, 0, 0, 0, 1, 1, 1, 1], [2, 2, 2, 1]);
      const alpha = tf.tensor4d([0.5, 0.25], [2, 1, 1, 1]);
      const d = (t: tf.Tensor4D) => tf.sum(tf.mul(tf.square(t), 0.5), [1, 2, 3]);
      // Sample 0: x̂ = (0.5, 1, 1.5, 2) → ‖x̂‖ = √7.5; sample 1: x̂ = 0.75·1 → ‖x̂‖ = 1.5.
      const expected = ((Math.sqrt(7.5) - 1) ** 2 + (1.5 - 1) ** 2) / 2;
      const gp = scalarOf(tf.tidy(() => wganGradientPenalty(d, real, fake, alpha)));
      assert.ok(Math.abs(gp - expected) <= 1e-5, `GP ${gp}, expected ${expected}`);
      tf.dispose([real, fake, alpha]);
    });

    test('WGAN-GP stays finite where the input gradient is 0 (ε inside the root)', () => {
      // D(x) = Σ w·x with w = 0: ∇D = 0, GP = (√ε − 1)² ≈ 1, and dGP/dw = 2(‖w‖ − 1)·w/‖w‖ is 0/0 without ε.
      const wv = tf.variable(tf.zeros([1, H, W, C]));
      const d = (t: tf.Tensor4D) => tf.sum(tf.mul(t, wv), [1, 2, 3]);
      const real = input('real');
      const fake = input('fake');
      const alpha = tf.tensor4d([0.5, 0.5], [N, 1, 1, 1]);
      const { value, grads } = tf.variableGrads(() => wganGradientPenalty(d, real, fake, alpha), [wv]);
      const v = value.dataSync()[0]!;
      const g = grads[wv.name]!.dataSync();
      assert.ok(Math.abs(v - 1) < 1e-5, `GP ${v}`);
      assert.ok(
        g.every((x) => Number.isFinite(x)),
        'gradient not finite',
      );
      tf.dispose([value, ...Object.values(grads), wv, real, fake, alpha]);
    });

    test('the input gradient of the conv nets matches finite differences (first order)', () => {
      const values = initialValues(SMOOTH);
      const params = tensorsOf(SMOOTH, values);
      const xData = normals(N * H * W * C, 'real');
      const x = tf.tensor4d(xData, [N, H, W, C]);
      const g = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(smoothNet(params, t as tf.Tensor4D)))(x));
      const analytic = g.dataSync();
      const D = (v: Float32Array) =>
        tf.tidy(() => tf.sum(smoothNet(params, tf.tensor4d(v, [N, H, W, C]))).dataSync()[0]!);
      const fd = finiteDifferences([xData], (v) => D(v[0]!), 1e-2);
      const { rel } = relativeError(Float32Array.from(analytic), fd);
      assert.ok(rel < 1e-3, `relative error ${rel}`);
      tf.dispose([g, x, ...Object.values(params)]);
    });

    test('R1 of a smooth conv net (batch norm, softplus, mean): weight gradient = finite differences', () => {
      const real = input('real');
      const { rel, used, total, grad } = penaltyGradientCase(
        SMOOTH,
        (p) => r1Penalty((x) => smoothNet(p, x), real),
        1e-2,
      );
      assert.equal(used, total);
      assert.ok(grad.some((v) => v !== 0));
      assert.ok(rel < 1e-3, `relative error ${rel}`);
      real.dispose();
    });

    for (const [name, act] of [
      ['tanh', tf.tanh],
      ['sigmoid', tf.sigmoid],
    ] as const) {
      test(`R1 through ${name}: weight gradient = finite differences (its gradient recomputed from the input)`, () => {
        const real = input('real');
        const { rel } = penaltyGradientCase(
          SMOOTH,
          (p) => r1Penalty((x) => smoothNet(p, x, act), real),
          1e-2,
        );
        assert.ok(rel < 1e-3, `relative error ${rel}`);
        real.dispose();
      });
    }

    test('R1 of a LeakyReLU/ReLU conv net with sum pooling: weight gradient = finite differences', () => {
      const real = input('real');
      const { rel, used, total } = penaltyGradientCase(
        LEAKY,
        (p) => r1Penalty((x) => leakyNet(p, x), real),
        1e-2,
        sameRegion(real, initialValues(LEAKY)),
      );
      // Coordinates whose ±2h steps change an activation's side are left out (R1 jumps there).
      assert.ok(used >= total / 2, `only ${used} of ${total} coordinates usable`);
      assert.ok(rel < 1e-3, `relative error ${rel} over ${used} coordinates`);
      real.dispose();
    });

    test('WGAN-GP of the smooth conv net: weight gradient = finite differences', () => {
      const real = input('real');
      const fake = input('fake');
      const alpha = tf.tensor4d([0.3, 0.9], [N, 1, 1, 1]);
      const { rel, used, total } = penaltyGradientCase(
        SMOOTH,
        (p) => wganGradientPenalty((x) => smoothNet(p, x), real, fake, alpha),
        1e-2,
      );
      assert.equal(used, total);
      assert.ok(rel < 1e-3, `relative error ${rel}`);
      tf.dispose([real, fake, alpha]);
    });

    test('inside optimizer.minimize the R1 term moves D’s weights by −lr·∇R1', () => {
      const real = input('real');
      const values = initialValues(LEAKY);
      const vars = LEAKY.map((s, i) => tf.variable(tf.tensor(values[i]!, s.shape)));
      const params: Params = Object.fromEntries(LEAKY.map((s, i) => [s.name, vars[i]!]));
      const f = (): tf.Scalar =>
        tf.mul(
          r1Penalty((x) => leakyNet(params, x), real),
          5,
        );
      const { value, grads } = tf.variableGrads(f, vars);
      const expected = vars.map((v, i) => values[i]!.map((w, k) => w - 0.1 * grads[v.name]!.dataSync()[k]!));
      tf.dispose([value, ...Object.values(grads)]);
      const opt = tf.train.sgd(0.1);
      const cost = opt.minimize(f, true, vars);
      assert.ok(cost && Number.isFinite(cost.dataSync()[0]!));
      cost?.dispose();
      vars.forEach((v, i) => {
        const got = v.dataSync();
        expected[i]!.forEach((e, k) => assert.ok(Math.abs(got[k]! - e) <= 1e-5 * Math.max(1, Math.abs(e))));
      });
      opt.dispose();
      tf.dispose([...vars, real]);
    });

    test('leaves no tensors behind (penalties, and their weight gradients)', () => {
      const real = input('real');
      const fake = input('fake');
      const alpha = tf.tensor4d([0.3, 0.9], [N, 1, 1, 1]);
      const vars = LEAKY.map((s, i) => tf.variable(tf.tensor(initialValues(LEAKY)[i]!, s.shape)));
      const params: Params = Object.fromEntries(LEAKY.map((s, i) => [s.name, vars[i]!]));
      const d = (x: tf.Tensor4D) => leakyNet(params, x);
      const run = () => {
        tf.tidy(() => r1Penalty(d, real)).dispose();
        wganGradientPenalty(d, real, fake, alpha).dispose();
        const { value, grads } = tf.variableGrads(() => r1Penalty(d, real), vars);
        tf.dispose([value, ...Object.values(grads)]);
      };
      run();
      const before = tf.memory().numTensors;
      run();
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([...vars, real, fake, alpha]);
    });

    test('rejects real and fake of different shapes', () => {
      const real = input('real');
      const fake = input('fake', [N, H, W, 2]);
      const alpha = tf.tensor4d([0.3, 0.9], [N, 1, 1, 1]);
      assert.throws(() => wganGradientPenalty((x) => tf.sum(x), real, fake, alpha), /differ in shape/);
      tf.dispose([real, fake, alpha]);
    });
  });
}

suite('libtorch');
suite('cpu');
