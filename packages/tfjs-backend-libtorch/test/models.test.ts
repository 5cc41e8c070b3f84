// Model-level checks of the libtorch backend against tfjs-backend-cpu: gan28's generator and discriminator
// and a small classifier (tfjs-layers models, as medsynth builds them) give the same outputs and gradients on
// both backends for the same weights and inputs, one full Adam training step leaves the same weights, and
// repeated GAN steps leave no tensors behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { BACKEND_NAME, loadAddon, registerLibtorchBackend } from '../src/index.js';

let unavailable: string | false = false;
try {
  registerLibtorchBackend();
} catch (error) {
  unavailable = `the libtorch addon cannot load: ${(error as Error).message}`;
}

type BackendName = 'cpu' | typeof BACKEND_NAME;

async function use(backend: BackendName): Promise<void> {
  assert.ok(await tf.setBackend(backend), `tf.setBackend(${backend})`);
}

/** Deterministic values in [lo, hi) (mulberry32), the same on every backend and run. */
function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * r;
  }
  return out;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** A tensor on the active backend with deterministic uniform values. */
function data(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  return tf.tensor(uniform(size(shape), seed, lo, hi), shape);
}

// ---------------------------------------------------------------------------------------------------------
// Models (the gan28 pair of bench/models.ts, and a small cousin of its classifier)

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
const BN = { epsilon: 1e-5, momentum: 0.9 } as const;

function generator28(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [100],
        units: 128 * 7 * 7,
        useBias: false,
        kernelInitializer: init(seed),
      }),
      tfl.layers.batchNormalization(BN),
      tfl.layers.reLU(),
      tfl.layers.reshape({ targetShape: [7, 7, 128] }),
      tfl.layers.conv2dTranspose({
        filters: 64,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: init(seed + 1),
      }),
      tfl.layers.batchNormalization(BN),
      tfl.layers.reLU(),
      tfl.layers.conv2dTranspose({
        filters: 1,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        kernelInitializer: init(seed + 2),
        biasInitializer: tfl.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 3 }),
      }),
      tfl.layers.activation({ activation: 'tanh' }),
    ],
  });
}

function discriminator28(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 64,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        kernelInitializer: init(seed),
        biasInitializer: tfl.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 1 }),
      }),
      tfl.layers.leakyReLU({ alpha: 0.2 }),
      tfl.layers.conv2d({
        filters: 128,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: init(seed + 2),
      }),
      tfl.layers.batchNormalization(BN),
      tfl.layers.leakyReLU({ alpha: 0.2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 1, kernelInitializer: init(seed + 3) }),
    ],
  });
}

function classifier(seed: number): tfl.LayersModel {
  const bias = (s: number) => tfl.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: s });
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 8,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(seed),
        biasInitializer: bias(seed + 1),
      }),
      tfl.layers.conv2d({
        filters: 16,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(seed + 2),
        biasInitializer: bias(seed + 3),
      }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({
        units: 32,
        activation: 'relu',
        kernelInitializer: init(seed + 4),
        biasInitializer: bias(seed + 5),
      }),
      tfl.layers.dense({ units: 10, kernelInitializer: init(seed + 6), biasInitializer: bias(seed + 7) }),
    ],
  });
}

type Builder = (seed: number) => tfl.LayersModel;

/** The same model on both backends: built (seeded) on cpu, its weights copied to the libtorch twin by value. */
async function twins(build: Builder, seed: number): Promise<Record<BackendName, tfl.LayersModel>> {
  await use('cpu');
  const cpu = build(seed);
  const values = cpu.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape }));
  await use(BACKEND_NAME);
  const lt = build(seed + 1000);
  const copies = values.map((v) => tf.tensor(v.values, v.shape));
  lt.setWeights(copies);
  tf.dispose(copies);
  return { cpu, [BACKEND_NAME]: lt } as Record<BackendName, tfl.LayersModel>;
}

const TRAIN = { training: true } as const;
const apply = (m: tfl.LayersModel, x: tf.Tensor, kwargs: { training: boolean } = TRAIN): tf.Tensor =>
  m.apply(x, kwargs) as tf.Tensor;

/** Runs `fn` in an engine scope: every tensor it makes and does not dispose is disposed afterwards. */
function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}
const trainable = (m: tfl.LayersModel): tf.Variable[] =>
  m.trainableWeights.map((w) => w.read() as tf.Variable);

function bce(logits: tf.Tensor, label: 0 | 1): tf.Scalar {
  const labels = label === 1 ? tf.onesLike(logits) : tf.zerosLike(logits);
  return tf.losses.sigmoidCrossEntropy(labels, logits, undefined, 0, tf.Reduction.MEAN) as tf.Scalar;
}

// ---------------------------------------------------------------------------------------------------------
// Comparison

/**
 * The tolerance measure: every element of `actual` must be within rtol × max_j |expected_j| of `expected`,
 * i.e. max_i |actual_i − expected_i| ≤ rtol · max_j |expected_j| (rtol = 1e-4 by default). An element-by-element
 * relative error would be meaningless here: gradients and normalised activations are sums of many products of
 * mixed signs, so an element can be the small remainder of a cancellation, and float32 rounding error of such a
 * sum scales with the size of its terms — which the tensor's largest magnitude bounds — not with the remainder.
 * Backends legitimately sum in different orders (blocked GEMM, oneDNN, threads vs. naive loops), so their
 * results differ by a few ulps of that scale; 1e-4 of the scale is ~800 float32 ulps, loose enough for those
 * differences and tight enough to catch any wrong index, stride, padding or missing term. Elements where
 * `skip` is 1 are not compared (see the Adam test).
 */
function assertClose(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 1e-4,
  skip?: Uint8Array,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  const tol = rtol * Math.max(scale, 1e-30);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < expected.length; i++) {
    if (skip?.[i]) continue;
    const err = Math.abs(actual[i]! - expected[i]!);
    if (!(err <= worstErr)) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0 && !(worstErr <= tol)) {
    assert.fail(
      `${what}: element ${worst} is ${actual[worst]} on libtorch, ${expected[worst]} on cpu ` +
        `(|diff| ${worstErr.toExponential(2)} > ${rtol} × max|cpu| = ${tol.toExponential(2)})`,
    );
  }
}

interface Result {
  output: Float32Array;
  loss: number;
  /** Gradients of the loss by each trainable weight, then by the input. */
  grads: Float32Array[];
  /** Every weight after the pass (training-mode BN updates its moving statistics). */
  weights: Float32Array[];
}

/** Forward in training mode + gradients by every trainable weight and by the input, on the active backend. */
function forwardBackward(
  model: tfl.LayersModel,
  xValues: Float32Array,
  xShape: number[],
  loss: Loss,
): Result {
  const x = tf.variable(tf.tensor(xValues, xShape));
  const vars = [...trainable(model), x];
  let output: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const y = apply(model, x);
    output = tf.keep(y);
    return loss(y);
  }, vars);
  const res: Result = {
    output: output!.dataSync() as Float32Array,
    loss: value.dataSync()[0]!,
    grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array),
    weights: model.getWeights().map((w) => w.dataSync() as Float32Array),
  };
  tf.dispose([output!, value, x, ...Object.values(grads)]);
  return res;
}

type Loss = (y: tf.Tensor) => tf.Scalar;

function compareResults(model: tfl.LayersModel, lt: Result, cpu: Result): void {
  const names = [...model.trainableWeights.map((w) => w.originalName), 'input'];
  assertClose('output', lt.output, cpu.output);
  assertClose('loss', [lt.loss], [cpu.loss]);
  cpu.grads.forEach((g, i) => assertClose(`d loss / d ${names[i]}`, lt.grads[i]!, g));
  const all = model.weights.map((w) => w.originalName);
  cpu.weights.forEach((w, i) => assertClose(`${all[i]} after the pass`, lt.weights[i]!, w));
}

async function checkForwardBackward(
  build: Builder,
  xShape: number[],
  makeLoss: () => Loss,
  seed: number,
): Promise<void> {
  const models = await twins(build, seed);
  const x = uniform(size(xShape), seed + 7);
  const results = {} as Record<BackendName, Result>;
  for (const b of ['cpu', BACKEND_NAME] as const) {
    await use(b);
    const loss = makeLoss();
    results[b] = scoped(() => forwardBackward(models[b], x, xShape, loss));
  }
  compareResults(models.cpu, results[BACKEND_NAME], results.cpu);
  // Inference mode too (BN with its moving statistics).
  const infer = {} as Record<BackendName, Float32Array>;
  for (const b of ['cpu', BACKEND_NAME] as const) {
    await use(b);
    infer[b] = tf.tidy(
      () => apply(models[b], tf.tensor(x, xShape), { training: false }).dataSync() as Float32Array,
    );
  }
  assertClose('inference output', infer[BACKEND_NAME], infer.cpu);
  models.cpu.dispose();
  models[BACKEND_NAME].dispose();
}

// ---------------------------------------------------------------------------------------------------------
// One Adam step

/** Reads every gradient (by variable, in `vars` order) then applies them: what `optimizer.minimize` does. */
function adamUpdate(opt: tf.Optimizer, vars: tf.Variable[], f: () => tf.Scalar): Float32Array[] {
  const { value, grads } = tf.variableGrads(f, vars);
  const read = vars.map((v) => grads[v.name]!.dataSync().slice() as Float32Array);
  opt.applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
  return read;
}

/**
 * After Adam's first step a weight moves by −lr · g / (|g| + ε): about lr · sign(g) whatever |g| is. Where a
 * gradient is so small that rounding noise may decide its sign, the two backends may legitimately move it by up
 * to 2·lr in opposite directions. Such elements — |g| ≤ 1e-4 · max|g| on cpu, i.e. within the tolerance the
 * gradients themselves are held to — are only held to that 2·lr bound; all others must match within the usual
 * tolerance (the sign of their gradient is certain, and g / (|g| + ε) barely depends on the rest).
 */
function assertWeightsAfterAdam(
  what: string,
  lt: Float32Array,
  cpu: Float32Array,
  grad: Float32Array | undefined,
  lr: number,
): void {
  if (grad === undefined) return assertClose(what, lt, cpu);
  let gMax = 0;
  for (const g of grad) gMax = Math.max(gMax, Math.abs(g));
  const skip = new Uint8Array(grad.length);
  for (let i = 0; i < grad.length; i++) skip[i] = Math.abs(grad[i]!) <= 1e-4 * gMax ? 1 : 0;
  assertClose(what, lt, cpu, 1e-4, skip);
  for (let i = 0; i < grad.length; i++) {
    if (skip[i] && !(Math.abs(lt[i]! - cpu[i]!) <= 2.001 * lr)) {
      assert.fail(
        `${what}: element ${i} (tiny gradient) moved by more than 2·lr apart: ${lt[i]} vs ${cpu[i]}`,
      );
    }
  }
}

/** Every weight of `model` (trainable and not), compared after an Adam step whose gradients were `grads`. */
function compareAfterStep(
  label: string,
  models: Record<BackendName, tfl.LayersModel>,
  after: Record<BackendName, Float32Array[]>,
  grads: Float32Array[],
  lr: number,
): void {
  const weights = models.cpu.weights;
  const trainableNames = models.cpu.trainableWeights.map((w) => w.name);
  weights.forEach((w, i) => {
    const gi = trainableNames.indexOf(w.name);
    assertWeightsAfterAdam(
      `${label} ${w.originalName}`,
      after[BACKEND_NAME][i]!,
      after.cpu[i]!,
      gi >= 0 ? grads[gi] : undefined,
      lr,
    );
  });
}

const readWeights = (m: tfl.LayersModel): Float32Array[] =>
  m.getWeights().map((w) => w.dataSync() as Float32Array);

// ---------------------------------------------------------------------------------------------------------

describe('libtorch vs cpu: models', { skip: unavailable }, () => {
  let initialBackend: string;
  before(() => {
    initialBackend = tf.getBackend();
  });
  after(async () => {
    if (initialBackend) await tf.setBackend(initialBackend);
  });

  // Small batches: tfjs-backend-cpu's Conv2DBackpropFilter is very slow (~5 MFLOP/s); 3, not 2, because batch
  // norm over two samples gives ±1 whatever the input, which leaves the generator's first layer no gradient.
  const B = 3;

  test('gan28 generator: forward and gradients', async () => {
    const r = uniform(B * 28 * 28, 99);
    // loss = Σ y · r: the gradient flowing into the output is a fixed random tensor
    const loss: () => Loss = () => (y) => tf.sum(tf.mul(y, tf.tensor(r, y.shape)));
    await checkForwardBackward(generator28, [B, 100], loss, 11);
  });

  test('gan28 discriminator: forward and gradients', async () => {
    const labels = Float32Array.from({ length: B }, (_, i) => i % 2);
    const loss: () => Loss = () => (y) =>
      tf.losses.sigmoidCrossEntropy(
        tf.tensor(labels, [B, 1]),
        y,
        undefined,
        0,
        tf.Reduction.MEAN,
      ) as tf.Scalar;
    await checkForwardBackward(discriminator28, [B, 28, 28, 1], loss, 21);
  });

  test('small classifier: forward and gradients', async () => {
    const labels = Int32Array.from({ length: B }, (_, i) => (i * 7) % 10);
    const loss: () => Loss = () => (y) =>
      tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), 10), y) as tf.Scalar;
    await checkForwardBackward(classifier, [B, 28, 28, 1], loss, 31);
  });

  test('gan28: one full Adam GAN step (D then G) leaves the same weights', async () => {
    const lr = 2e-4;
    const G = await twins(generator28, 41);
    const D = await twins(discriminator28, 51);
    const real = uniform(B * 28 * 28, 61);
    const z1 = uniform(B * 100, 62, -2, 2);
    const z2 = uniform(B * 100, 63, -2, 2);
    const after: Record<'G' | 'D', Record<BackendName, Float32Array[]>> = { G: {} as never, D: {} as never };
    let gradsD: Float32Array[] = [];
    let gradsG: Float32Array[] = [];
    for (const b of ['cpu', BACKEND_NAME] as const) {
      await use(b);
      const optD = tf.train.adam(lr, 0.5, 0.999);
      const optG = tf.train.adam(lr, 0.5, 0.999);
      const [gD, gG] = scoped(() => {
        const fake = apply(G[b], tf.tensor(z1, [B, 100]));
        const x = tf.tensor(real, [B, 28, 28, 1]);
        const dGrads = adamUpdate(optD, trainable(D[b]), () =>
          tf.add(bce(apply(D[b], x), 1), bce(apply(D[b], fake), 0)),
        );
        const zz = tf.tensor(z2, [B, 100]);
        const gGrads = adamUpdate(optG, trainable(G[b]), () => bce(apply(D[b], apply(G[b], zz)), 1));
        return [dGrads, gGrads];
      });
      if (b === 'cpu') [gradsD, gradsG] = [gD, gG];
      after.G[b] = readWeights(G[b]);
      after.D[b] = readWeights(D[b]);
      optD.dispose();
      optG.dispose();
    }
    compareAfterStep('D', D, after.D, gradsD, lr);
    compareAfterStep('G', G, after.G, gradsG, lr);
    for (const m of [G, D]) for (const b of ['cpu', BACKEND_NAME] as const) m[b].dispose();
  });

  test('small classifier: one Adam step leaves the same weights', async () => {
    const lr = 1e-3;
    const C = await twins(classifier, 71);
    const x = uniform(B * 28 * 28, 72, 0, 1);
    const labels = Int32Array.from({ length: B }, (_, i) => (i * 3) % 10);
    const after = {} as Record<BackendName, Float32Array[]>;
    let grads: Float32Array[] = [];
    for (const b of ['cpu', BACKEND_NAME] as const) {
      await use(b);
      const opt = tf.train.adam(lr);
      const g = scoped(() => {
        const xt = tf.tensor(x, [B, 28, 28, 1]);
        const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
        return adamUpdate(
          opt,
          trainable(C[b]),
          () => tf.losses.softmaxCrossEntropy(y, apply(C[b], xt)) as tf.Scalar,
        );
      });
      if (b === 'cpu') grads = g;
      after[b] = readWeights(C[b]);
      opt.dispose();
    }
    compareAfterStep('classifier', C, after, grads, lr);
    C.cpu.dispose();
    C[BACKEND_NAME].dispose();
  });
});

/** A full garbage collection (V8's gc(), exposed for this process). */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('libtorch: no leaks over GAN training steps', { skip: unavailable }, () => {
  test('30 gan28 steps keep numTensors and the native live count constant after the first', async () => {
    await use(BACKEND_NAME);
    const addon = loadAddon();
    const B = 4;
    const start = { tensors: tf.memory().numTensors, live: addon.liveCount() };
    const G = generator28(81);
    const D = discriminator28(91);
    const gVars = trainable(G);
    const dVars = trainable(D);
    const optG = tf.train.adam(2e-4, 0.5, 0.999);
    const optD = tf.train.adam(2e-4, 0.5, 0.999);
    const real = data([B, 28, 28, 1], 101);
    const step = (i: number) => {
      const [lD, lG] = tf.tidy(() => {
        const fake = apply(G, tf.randomNormal([B, 100], 0, 1, 'float32', 2 * i + 1));
        const lossD = optD.minimize(
          () => tf.add(bce(apply(D, real), 1), bce(apply(D, fake), 0)),
          true,
          dVars,
        )!;
        const z = tf.randomNormal([B, 100], 0, 1, 'float32', 2 * i + 2);
        const lossG = optG.minimize(() => bce(apply(D, apply(G, z)), 1), true, gVars)!;
        return [lossD, lossG];
      });
      const losses = [lD.dataSync()[0]!, lG.dataSync()[0]!];
      tf.dispose([lD, lG]);
      assert.ok(losses.every(Number.isFinite), `step ${i}: losses ${losses.join(', ')}`);
    };
    step(0);
    const first = { tensors: tf.memory().numTensors, live: addon.liveCount() };
    for (let i = 1; i < 30; i++) {
      step(i);
      const now = { tensors: tf.memory().numTensors, live: addon.liveCount() };
      assert.deepEqual(now, first, `after step ${i + 1} (tensors, native live count) vs. after step 1`);
    }
    // Native memory in use stays flat too, in a synchronous loop: the handles' finalizers run during garbage
    // collection, not on a later turn of the event loop (which this loop never yields to). Deferred, they
    // held ~180 KB per batch-64 step.
    const gc = collector();
    gc();
    const before = addon.mallocStats().inUse;
    for (let i = 30; i < 60; i++) step(i);
    gc();
    const after = addon.mallocStats().inUse;
    if (before !== undefined && after !== undefined) {
      assert.ok(after - before < 1 << 20, `native memory in use grew ${after - before} bytes over 30 steps`);
    }
    G.dispose();
    D.dispose();
    optG.dispose();
    optD.dispose();
    real.dispose();
    assert.deepEqual(
      { tensors: tf.memory().numTensors, live: addon.liveCount() },
      start,
      'everything disposed: back to the counts before the models were built',
    );
  });
});
