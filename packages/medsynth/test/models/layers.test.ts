import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GlobalSumPooling2D, LabelProjection, SNConv2D, SNDense } from '../../src/models/layers.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

/** Largest singular value of a row-major `rows × cols` matrix: 500 power iterations in float64. */
function largestSingularValue(m: ArrayLike<number>, rows: number, cols: number): number {
  let v = Float64Array.from({ length: cols }, (_, i) => Math.sin(i + 1) + 1.5);
  let sigma = 0;
  for (let it = 0; it < 500; it++) {
    const u = new Float64Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) u[r]! += m[r * cols + c]! * v[c]!;
    const w = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) w[c]! += m[r * cols + c]! * u[r]!;
    const norm = Math.hypot(...w);
    sigma = Math.sqrt(norm);
    v = w.map((x) => x / norm);
  }
  return sigma;
}

function weightByName(layer: tfl.layers.Layer, suffix: string): tfl.LayerVariable {
  const w = layer.weights.find((x) => x.originalName === `${layer.name}/${suffix}`);
  assert.ok(
    w,
    `${layer.name} has no weight ${suffix}: ${layer.weights.map((x) => x.originalName).join(', ')}`,
  );
  return w;
}

/** Runs `layer` on `x` with `training` and returns the output's values (nothing left allocated). */
function run(layer: tfl.layers.Layer, x: tf.Tensor | tf.Tensor[], training: boolean): Float32Array {
  const y = tf.tidy(() => layer.apply(x, { training }) as tf.Tensor);
  const v = y.dataSync() as Float32Array;
  y.dispose();
  return v;
}

/**
 * The conv layer's effective kernel as the matrix `[kh·kw·in, out]`, read from its outputs only: a 'valid'
 * conv over one-hot inputs of the kernel's size gives one kernel row per input (bias 0 at initialisation).
 */
function effectiveConvKernel(layer: SNConv2D, k: number, cin: number): Float32Array {
  const rows = k * k * cin;
  const eye = tf.tidy(() => tf.reshape(tf.eye(rows), [rows, k, k, cin]));
  try {
    return run(layer, eye, false);
  } finally {
    eye.dispose();
  }
}

describe('SNConv2D', () => {
  test('the normalised kernel has largest singular value ≈ 1 after power iterations in training calls', () => {
    const k = 3;
    const cin = 4;
    const filters = 8;
    const layer = new SNConv2D({ filters, kernelSize: k, padding: 'valid', seed: 7, name: 'sn_test_conv' });
    const x = tf.randomNormal([2, k, k, cin], 0, 1, 'float32', 1);
    run(layer, x, true); // builds the layer
    // Glorot's kernels have σ near 1 already: scale it so that normalisation has something to do.
    const kernelVar = weightByName(layer, 'kernel');
    tf.tidy(() => {
      kernelVar.write(tf.mul(kernelVar.read(), 3));
    });
    const kernel = kernelVar.read().dataSync();
    const rawSigma = largestSingularValue(kernel, k * k * cin, filters);
    assert.ok(
      Math.abs(rawSigma - 1) > 0.1,
      `the raw kernel should not already be normalised (σ=${rawSigma})`,
    );
    for (let i = 0; i < 30; i++) run(layer, x, true);
    const w = effectiveConvKernel(layer, k, cin);
    const sigma = largestSingularValue(w, k * k * cin, filters);
    assert.ok(Math.abs(sigma - 1) < 1e-2, `σ(W/σ̂) = ${sigma}`);
    // The effective kernel is the raw one scaled by 1/σ̂.
    const scale = rawSigma / sigma;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i]! * scale - kernel[i]!) < 1e-4 * rawSigma);
    x.dispose();
  });

  test('u is a non-trainable weight <name>/sn_u, updated by training calls only', () => {
    const layer = new SNConv2D({ filters: 5, kernelSize: 3, strides: 2, seed: 3, name: 'sn_u_conv' });
    const x = tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', 2);
    run(layer, x, false);
    assert.deepEqual(
      layer.weights.map((w) => w.originalName),
      ['sn_u_conv/kernel', 'sn_u_conv/bias', 'sn_u_conv/sn_u'],
    );
    assert.deepEqual(
      layer.trainableWeights.map((w) => w.originalName),
      ['sn_u_conv/kernel', 'sn_u_conv/bias'],
    );
    const u = weightByName(layer, 'sn_u');
    const u0 = u.read().dataSync().slice();
    run(layer, x, false);
    assert.deepEqual(u.read().dataSync(), u0, 'inference changed u');
    run(layer, x, true);
    assert.notDeepEqual(u.read().dataSync(), u0, 'a training call did not update u');
    x.dispose();
  });

  test('an inference call right after a training call gives the same output', () => {
    const layer = new SNConv2D({ filters: 4, kernelSize: 4, strides: 2, seed: 1, name: 'sn_same_conv' });
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 3);
    run(layer, x, true);
    const a = run(layer, x, true);
    const b = run(layer, x, false);
    assert.deepEqual(b, a);
    x.dispose();
  });

  test("computeOutputShape matches the output ('same' and 'valid', strides)", () => {
    const cases = [
      { k: 3, s: 1, padding: 'same', input: [2, 28, 28, 1] },
      { k: 4, s: 2, padding: 'same', input: [2, 14, 14, 5] },
      { k: 4, s: 2, padding: 'same', input: [1, 7, 7, 2] },
      { k: 3, s: 2, padding: 'valid', input: [1, 9, 9, 2] },
    ] as const;
    for (const c of cases) {
      const layer = new SNConv2D({ filters: 6, kernelSize: c.k, strides: c.s, padding: c.padding });
      const x = tf.zeros([...c.input]);
      const y = layer.apply(x) as tf.Tensor;
      assert.deepEqual(y.shape, layer.computeOutputShape([...c.input]), JSON.stringify(c));
      tf.dispose([x, y]);
    }
  });

  test('spectralNorm: false is a plain conv with no sn_u', () => {
    const layer = new SNConv2D({
      filters: 3,
      kernelSize: 3,
      spectralNorm: false,
      seed: 1,
      name: 'plain_conv',
    });
    const x = tf.randomNormal([1, 5, 5, 2], 0, 1, 'float32', 4);
    const y = run(layer, x, true);
    assert.deepEqual(
      layer.weights.map((w) => w.originalName),
      ['plain_conv/kernel', 'plain_conv/bias'],
    );
    const ref = tf.tidy(() => tf.conv2d(x as tf.Tensor4D, layer.getWeights()[0] as tf.Tensor4D, 1, 'same'));
    assert.deepEqual(y, ref.dataSync());
    tf.dispose([x, ref]);
  });
});

describe('SNDense', () => {
  test('σ(W/σ̂) ≈ 1 (kernel read from the outputs on the identity)', () => {
    const features = 20;
    const units = 7;
    const layer = new SNDense({ units, seed: 11, name: 'sn_test_dense' });
    const eye = tf.eye(features);
    run(layer, eye, false);
    const kernel = weightByName(layer, 'kernel');
    tf.tidy(() => {
      kernel.write(tf.mul(kernel.read(), 5));
    });
    assert.ok(largestSingularValue(kernel.read().dataSync(), features, units) > 2);
    for (let i = 0; i < 30; i++) run(layer, eye, true);
    const w = run(layer, eye, false);
    assert.ok(Math.abs(largestSingularValue(w, features, units) - 1) < 1e-2);
    eye.dispose();
  });

  test('the gradient of W/σ(W) is exact with u held fixed (finite differences), σ not detached', () => {
    const layer = new SNDense({ units: 3, useBias: false, seed: 2, name: 'sn_grad_dense' });
    const x = tf.randomNormal([5, 4], 0, 1, 'float32', 6);
    const r = tf.randomNormal([5, 3], 0, 1, 'float32', 7);
    run(layer, x, true);
    run(layer, x, true);
    const kernel = weightByName(layer, 'kernel');
    const variable = kernel.read() as tf.Variable;
    // Inference calls: u stays fixed, so the loss is a plain function of W.
    const loss = () => tf.sum(tf.mul(layer.apply(x, { training: false }) as tf.Tensor, r)) as tf.Scalar;
    const { value, grads } = tf.variableGrads(loss, [variable]);
    const analytic = grads[variable.name]!.dataSync().slice();
    const base = loss().dataSync()[0]!;
    assert.ok(Math.abs(value.dataSync()[0]! - base) < 1e-6);
    tf.dispose([value, grads[variable.name]!]);
    const w0 = variable.dataSync().slice();
    const eps = 1e-2;
    const numeric = new Float64Array(w0.length);
    for (let i = 0; i < w0.length; i++) {
      const at = (delta: number) => {
        const w = w0.slice();
        w[i] = w[i]! + delta;
        tf.tidy(() => {
          kernel.write(tf.tensor(w, variable.shape));
        });
        return tf.tidy(() => loss().dataSync()[0]!);
      };
      numeric[i] = (at(eps) - at(-eps)) / (2 * eps);
    }
    tf.tidy(() => {
      kernel.write(tf.tensor(w0, variable.shape));
    });
    const scale = Math.max(...analytic.map(Math.abs));
    const err = Math.max(...analytic.map((g, i) => Math.abs(g - numeric[i]!)));
    assert.ok(err < 5e-3 * scale, `max |analytic − numeric| = ${err} (scale ${scale})`);
    // With σ treated as a constant the gradient would be xᵀr/σ: measurably different.
    const sigma = tf.tidy(() => {
      const eye = tf.eye(4);
      const wn = layer.apply(eye, { training: false }) as tf.Tensor;
      return tf.div(tf.max(tf.abs(variable)), tf.max(tf.abs(wn))).dataSync()[0]!;
    });
    const detached = tf.tidy(() => tf.div(tf.matMul(x, r, true, false), sigma).dataSync());
    const gap = Math.max(...analytic.map((g, i) => Math.abs(g - detached[i]!)));
    assert.ok(gap > 10 * err, `the σ term of the gradient is missing (gap ${gap}, err ${err})`);
    tf.dispose([x, r]);
  });

  test('rejects bad arguments', () => {
    assert.throws(() => new SNDense({ units: 0 }), RangeError);
    assert.throws(() => new SNConv2D({ filters: 2, kernelSize: 0 }), RangeError);
    const layer = new SNDense({ units: 2 });
    assert.throws(() => layer.apply(tf.zeros([1, 2, 3])), /SNDense expects \[N, features\]/);
  });
});

describe('LabelProjection and GlobalSumPooling2D', () => {
  test('projection = Σ_f E[y, f]·h[f] with the spectrally normalised table', () => {
    const layer = new LabelProjection({ numClasses: 3, spectralNorm: false, seed: 5, name: 'proj_test' });
    const h = tf.tensor2d([
      [1, 2, 3, 4],
      [0.5, -1, 0, 2],
    ]);
    const labels = tf.tensor1d([2, 0], 'int32');
    const y = run(layer, [h, labels], false);
    const table = layer.getWeights()[0]!.arraySync() as number[][];
    const expected = [
      [1, 2, 3, 4].reduce((s, v, f) => s + v * table[2]![f]!, 0),
      [0.5, -1, 0, 2].reduce((s, v, f) => s + v * table[0]![f]!, 0),
    ];
    assert.equal(y.length, 2);
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(y[i]! - expected[i]!) < 1e-5);
    tf.dispose([h, labels]);
  });

  test('global sum pooling sums over height and width', () => {
    const layer = new GlobalSumPooling2D({ name: 'pool_test' });
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    assert.deepEqual(Array.from(run(layer, x, false)), [16, 20]);
    assert.deepEqual(layer.computeOutputShape([null, 2, 2, 2]), [null, 2]);
    x.dispose();
  });
});

describe('serialisation', () => {
  test('a model of the custom layers saves and loads with identical outputs and weights', async () => {
    const x = tfl.input({ shape: [8, 8, 2], name: 'x' });
    const labels = tfl.input({ batchShape: [null], dtype: 'int32', name: 'labels' });
    let h = new SNConv2D({ filters: 4, kernelSize: 4, strides: 2, seed: 1, name: 'c1' }).apply(
      x,
    ) as tfl.SymbolicTensor;
    h = new GlobalSumPooling2D({ name: 'pool' }).apply(h) as tfl.SymbolicTensor;
    const out = new SNDense({ units: 1, seed: 2, name: 'out' }).apply(h) as tfl.SymbolicTensor;
    const proj = new LabelProjection({ numClasses: 3, seed: 3, name: 'proj' }).apply([
      h,
      labels,
    ]) as tfl.SymbolicTensor;
    const logits = tfl.layers.add({ name: 'sum' }).apply([out, proj]) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: [x, labels], outputs: logits, name: 'm' });
    const xs = tf.randomNormal([3, 8, 8, 2], 0, 1, 'float32', 9);
    const ys = tf.tensor1d([0, 2, 1], 'int32');
    // A few training calls move u away from its initial value: the loaded model must have the same.
    for (let i = 0; i < 3; i++) run(model, [xs, ys], true);
    const before = run(model, [xs, ys], false);

    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    assert.ok(saved?.weightSpecs && saved.weightData);
    assert.deepEqual(
      saved.weightSpecs.map((s) => s.name),
      [
        'c1/kernel',
        'c1/bias',
        'out/kernel',
        'out/bias',
        'proj/embeddings',
        'c1/sn_u',
        'out/sn_u',
        'proj/sn_u',
      ],
    );
    const topology = JSON.stringify(saved.modelTopology);
    for (const cls of ['SNConv2D', 'SNDense', 'LabelProjection', 'GlobalSumPooling2D']) {
      assert.ok(topology.includes(cls), `topology lacks ${cls}`);
    }
    const loaded = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: saved.modelTopology,
        weightSpecs: saved.weightSpecs,
        weightData: saved.weightData,
      }),
    );
    assert.deepEqual(run(loaded, [xs, ys], false), before);
    assert.deepEqual(
      loaded.weights.map((w) => w.originalName),
      model.weights.map((w) => w.originalName),
    );
    loaded.weights.forEach((w, i) =>
      assert.deepEqual(w.read().dataSync(), model.weights[i]!.read().dataSync()),
    );
    // Training calls continue identically (same u, same σ).
    assert.deepEqual(run(loaded, [xs, ys], true), run(model, [xs, ys], true));
    model.dispose();
    loaded.dispose();
    tf.dispose([xs, ys]);
  });
});
