import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-layers registers TF.js's gradient functions (the tfjs-core node bundle does not).
import * as tfl from '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from '../../src/runtime/wasm-kernels.js';
import { Rng } from '../../src/runtime/random.js';

type Shape = number[];

function randomData(shape: Shape, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

/** max |a − b| / max |b|: the error relative to the reference's scale. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Runs `f` on each backend with the same inputs; returns each backend's outputs as plain arrays. */
async function onBoth(f: () => tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const out: Record<string, Float32Array[]> = {};
  for (const backend of ['wasm', 'cpu']) {
    await tf.setBackend(backend);
    out[backend] = tf.tidy(f).map((t) => {
      const v = t.dataSync() as Float32Array;
      t.dispose();
      return v;
    });
  }
  await tf.setBackend('wasm');
  return { wasm: out['wasm']!, cpu: out['cpu']! };
}

function assertClose(wasm: Float32Array[], cpu: Float32Array[], label: string, tol = 1e-4): void {
  assert.equal(wasm.length, cpu.length);
  wasm.forEach((w, i) => {
    const e = relError(w, cpu[i]!);
    assert.ok(e <= tol, `${label}: output ${i} differs from cpu by ${e.toExponential(2)} (relative)`);
  });
}

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

before(async () => {
  tf.env().set('PROD', true); // keeps tfjs-backend-cpu's "install tfjs-node" banner out of the test output
  registerWasmTrainingKernels();
  assert.ok(await tf.setBackend('wasm'));
});

describe('registerWasmTrainingKernels', () => {
  test('registers the missing training kernels for wasm, idempotently', () => {
    const names = registerWasmTrainingKernels();
    assert.deepEqual(names.sort(), [...WASM_TRAINING_KERNELS].sort());
    assert.deepEqual(registerWasmTrainingKernels().sort(), names);
    for (const k of [
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'UnsortedSegmentSum',
      'MaxPoolGrad',
    ]) {
      assert.ok(tf.getKernel(k, 'wasm'), `${k} registered for wasm`);
    }
  });
});

describe('conv2d gradients on wasm equal cpu', () => {
  const cases: { x: Shape; f: Shape; s: number | [number, number]; pad: Pad }[] = [
    { x: [2, 9, 8, 3], f: [3, 3, 3, 4], s: 1, pad: 'same' },
    { x: [3, 9, 8, 5], f: [3, 3, 5, 4], s: 2, pad: 'same' },
    { x: [2, 10, 9, 4], f: [3, 2, 4, 6], s: 1, pad: 'valid' },
    { x: [2, 11, 10, 3], f: [4, 4, 3, 5], s: 2, pad: 'valid' },
    { x: [2, 8, 12, 2], f: [1, 1, 2, 7], s: [1, 2], pad: 'same' },
    {
      x: [2, 7, 9, 3],
      f: [3, 3, 3, 2],
      s: 1,
      pad: [
        [0, 0],
        [1, 2],
        [2, 0],
        [0, 0],
      ],
    },
  ];
  for (const [i, c] of cases.entries()) {
    test(`x ${c.x.join('×')}, filter ${c.f.join('×')}, strides ${String(c.s)}, ${JSON.stringify(c.pad)}`, async () => {
      const xData = randomData(c.x, 10 + i);
      const fData = randomData(c.f, 20 + i);
      const r = await onBoth(() => {
        const x = tf.tensor4d(xData, c.x as [number, number, number, number]);
        const f = tf.tensor4d(fData, c.f as [number, number, number, number]);
        const y = tf.conv2d(x, f, c.s, c.pad);
        const weights = tf.tensor(randomData(y.shape, 30 + i), y.shape);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), weights)),
        )([x, f]);
        return [dx!, df!];
      });
      assertClose(r.wasm, r.cpu, 'conv2d grads');
    });
  }

  test('large batches, processed in chunks of samples, give the sample-by-sample result', async () => {
    // 1152 × 4096 patch elements a sample: 3 samples a chunk, so 2 chunks. wasm only (cpu takes ~20 s here); the
    // single-chunk kernels are checked against cpu above.
    await tf.setBackend('wasm');
    const xs: [number, number, number, number] = [4, 64, 64, 128];
    const fs: [number, number, number, number] = [3, 3, 128, 2];
    const x = tf.tensor4d(randomData(xs, 1), xs);
    const f = tf.tensor4d(randomData(fs, 2), fs);
    const dy = tf.tensor4d(randomData([4, 64, 64, 2], 3), [4, 64, 64, 2]);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC' };
    const filterGrad = (a: tf.Tensor, d: tf.Tensor) =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x: a, dy: d }, {
        ...attrs,
        filterShape: fs,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    const inputGrad = (d: tf.Tensor) =>
      tf.engine().runKernel('Conv2DBackpropInput', { dy: d, filter: f }, {
        ...attrs,
        inputShape: [d.shape[0]!, 64, 64, 128],
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    const samples = [0, 1, 2, 3];
    const slice = (t: tf.Tensor4D, n: number) => tf.slice(t, [n, 0, 0, 0], [1, -1, -1, -1]);
    const dwChunked = filterGrad(x, dy).dataSync();
    const dwSamples = tf.addN(samples.map((n) => filterGrad(slice(x, n), slice(dy, n)))).dataSync();
    assert.ok(relError(dwChunked, dwSamples) < 1e-5, `filter gradient ${relError(dwChunked, dwSamples)}`);
    const dxChunked = inputGrad(dy).dataSync();
    const dxSamples = tf.concat(samples.map((n) => inputGrad(slice(dy, n)))).dataSync();
    assert.ok(relError(dxChunked, dxSamples) < 1e-6, `input gradient ${relError(dxChunked, dxSamples)}`);
  });

  test('dilated conv2d gradients are refused by tfjs-core itself, on every backend', () => {
    const x = tf.ones([1, 6, 6, 1]) as tf.Tensor4D;
    const f = tf.ones([2, 2, 1, 1]) as tf.Tensor4D;
    assert.throws(
      () => tf.grad((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, f, 1, 'same', 'NHWC', 2)))(x),
      /dilation/,
    );
  });
});

describe('conv2dTranspose (Conv2DBackpropInput) and its gradients on wasm equal cpu', () => {
  const cases: { x: Shape; f: Shape; out: Shape; s: number; pad: 'same' | 'valid' }[] = [
    { x: [2, 5, 4, 6], f: [3, 3, 3, 6], out: [2, 5, 4, 3], s: 1, pad: 'same' },
    { x: [3, 4, 4, 5], f: [4, 4, 2, 5], out: [3, 8, 8, 2], s: 2, pad: 'same' },
    { x: [2, 4, 3, 4], f: [3, 3, 3, 4], out: [2, 9, 7, 3], s: 2, pad: 'valid' },
  ];
  for (const [i, c] of cases.entries()) {
    test(`x ${c.x.join('×')} → ${c.out.join('×')}, strides ${c.s}, ${c.pad}`, async () => {
      const xData = randomData(c.x, 40 + i);
      const fData = randomData(c.f, 50 + i);
      const r = await onBoth(() => {
        const x = tf.tensor4d(xData, c.x as [number, number, number, number]);
        const f = tf.tensor4d(fData, c.f as [number, number, number, number]);
        const outShape = c.out as [number, number, number, number];
        const y = tf.conv2dTranspose(x, f, outShape, c.s, c.pad);
        const weights = tf.tensor(randomData(y.shape, 60 + i), y.shape);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, outShape, c.s, c.pad), weights),
          ),
        )([x, f]);
        return [y, dx!, df!];
      });
      assertClose(r.wasm, r.cpu, 'conv2dTranspose');
    });
  }
});

describe('depthwise conv2d gradients on wasm equal cpu', () => {
  const cases: { x: Shape; f: Shape; s: number; pad: 'same' | 'valid' }[] = [
    { x: [2, 8, 7, 3], f: [3, 3, 3, 1], s: 1, pad: 'same' },
    { x: [3, 9, 9, 4], f: [3, 3, 4, 2], s: 2, pad: 'same' },
    { x: [2, 9, 8, 2], f: [2, 3, 2, 3], s: 1, pad: 'valid' },
    { x: [2, 10, 9, 5], f: [3, 3, 5, 1], s: 2, pad: 'valid' },
  ];
  for (const [i, c] of cases.entries()) {
    test(`x ${c.x.join('×')}, filter ${c.f.join('×')}, strides ${c.s}, ${c.pad}`, async () => {
      const xData = randomData(c.x, 70 + i);
      const fData = randomData(c.f, 80 + i);
      const r = await onBoth(() => {
        const x = tf.tensor4d(xData, c.x as [number, number, number, number]);
        const f = tf.tensor4d(fData, c.f as [number, number, number, number]);
        const y = tf.depthwiseConv2d(x, f, c.s, c.pad);
        const weights = tf.tensor(randomData(y.shape, 90 + i), y.shape);
        const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor3D, b as tf.Tensor4D, c.s, c.pad), weights)),
        )([x, f]);
        return [dx!, df!];
      });
      assertClose(r.wasm, r.cpu, 'depthwise grads');
    });
  }

  test('dilated depthwise backprop kernels are the adjoints of the dilated forward convolution', async () => {
    // cpu's depthwise backprop kernels ignore dilations, so the check is the adjoint identity
    // <conv(x, w), dy> = <x, backpropInput(dy, w)> = <w, backpropFilter(x, dy)>, forward on cpu.
    const xs: [number, number, number, number] = [2, 9, 10, 3];
    const fs: [number, number, number, number] = [3, 2, 3, 2];
    const [xData, fData] = [randomData(xs, 1), randomData(fs, 2)];
    await tf.setBackend('cpu');
    const yCpu = tf.depthwiseConv2d(tf.tensor4d(xData, xs), tf.tensor4d(fData, fs), 1, 'same', 'NHWC', 2);
    const dyShape = yCpu.shape;
    const dyData = randomData(dyShape, 3);
    const lhs = dot(yCpu.dataSync(), dyData);
    await tf.setBackend('wasm');
    const dy = tf.tensor(dyData, dyShape);
    const attrs = { strides: 1, pad: 'same', dilations: 2 };
    const dx = tf
      .engine()
      .runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: tf.tensor4d(fData, fs) }, {
        ...attrs,
        inputShape: xs,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    const df = tf
      .engine()
      .runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor4d(xData, xs), dy }, {
        ...attrs,
        filterShape: fs,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
    const viaInput = dot(xData, dx.dataSync());
    const viaFilter = dot(fData, df.dataSync());
    assert.ok(Math.abs(viaInput - lhs) <= 1e-4 * Math.abs(lhs), `${viaInput} vs ${lhs}`);
    assert.ok(Math.abs(viaFilter - lhs) <= 1e-4 * Math.abs(lhs), `${viaFilter} vs ${lhs}`);
  });
});

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

describe("MaxPoolGrad on wasm equals cpu (wasm 4.22's own is wrong for negative values)", () => {
  const cases: { x: Shape; size: number; s: number; pad: 'same' | 'valid' }[] = [
    { x: [3, 8, 8, 6], size: 2, s: 2, pad: 'valid' },
    { x: [2, 7, 9, 3], size: 3, s: 2, pad: 'same' },
    { x: [2, 6, 5, 4], size: 3, s: 1, pad: 'same' },
  ];
  for (const [i, c] of cases.entries()) {
    test(`x ${c.x.join('×')}, pool ${c.size}, strides ${c.s}, ${c.pad}`, async () => {
      const xData = randomData(c.x, 100 + i);
      const r = await onBoth(() => {
        const x = tf.tensor4d(xData, c.x as [number, number, number, number]);
        const y = tf.maxPool(x, c.size, c.s, c.pad);
        const weights = tf.tensor(randomData(y.shape, 110 + i), y.shape);
        return [
          tf.grad((a: tf.Tensor) =>
            tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.size, c.s, c.pad), weights)),
          )(x),
        ];
      });
      assertClose(r.wasm, r.cpu, 'maxPool grad', 1e-6);
    });
  }
});

describe('UnsortedSegmentSum (gather gradient) on wasm equals cpu', () => {
  test('embedding-style gather', async () => {
    const table = randomData([7, 5], 5);
    const r = await onBoth(() => {
      const x = tf.tensor2d(table, [7, 5]);
      const idx = tf.tensor1d([3, 0, 3, 6, 1, 3], 'int32');
      const w = tf.tensor2d(randomData([6, 5], 6), [6, 5]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(x);
      const direct = tf.unsortedSegmentSum(w, tf.tensor1d([2, 2, 0, 4, 9, -1], 'int32'), 5);
      return [g, direct];
    });
    assertClose(r.wasm, r.cpu, 'gather gradient and unsortedSegmentSum (ids out of range dropped)');
  });
});

describe('tfjs-layers models train on wasm', () => {
  /** A small DCGAN-like pair: generator (dense → conv2dTranspose → BN → upsampling → separable conv) and
   * discriminator (embedding-conditioned conv net with pooling). */
  function buildModels(): { gen: tfl.LayersModel; disc: tfl.LayersModel } {
    const z = tfl.input({ shape: [8] });
    let h = tfl.layers.dense({ units: 4 * 4 * 6 }).apply(z) as tfl.SymbolicTensor;
    h = tfl.layers.reshape({ targetShape: [4, 4, 6] }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers
      // No bias before batch norm: its gradient is zero up to rounding, so no relative comparison holds.
      .conv2dTranspose({ filters: 5, kernelSize: 4, strides: 2, padding: 'same', useBias: false })
      .apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.batchNormalization().apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(h) as tfl.SymbolicTensor;
    // No UpSampling2D here: tfjs-backend-cpu 4.22's ResizeNearestNeighborGrad is wrong (see below), so cpu is
    // no reference for it.
    h = tfl.layers
      .conv2dTranspose({ filters: 5, kernelSize: 3, strides: 2, padding: 'same' })
      .apply(h) as tfl.SymbolicTensor;
    h = tfl.layers
      .separableConv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' })
      .apply(h) as tfl.SymbolicTensor;
    const img = tfl.layers
      .conv2d({ filters: 1, kernelSize: 3, padding: 'same', activation: 'tanh' })
      .apply(h) as tfl.SymbolicTensor;
    const gen = tfl.model({ inputs: z, outputs: img });

    const x = tfl.input({ shape: [16, 16, 1] });
    const label = tfl.input({ shape: [1] });
    let e = tfl.layers.embedding({ inputDim: 3, outputDim: 16 * 16 }).apply(label) as tfl.SymbolicTensor;
    e = tfl.layers.reshape({ targetShape: [16, 16, 1] }).apply(e) as tfl.SymbolicTensor;
    let d = tfl.layers.concatenate().apply([x, e]) as tfl.SymbolicTensor;
    d = tfl.layers
      .conv2d({ filters: 6, kernelSize: 4, strides: 2, padding: 'same' })
      .apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.leakyReLU({ alpha: 0.2 }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'valid' }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.averagePooling2d({ poolSize: 2 }).apply(d) as tfl.SymbolicTensor;
    d = tfl.layers.flatten().apply(d) as tfl.SymbolicTensor;
    const p = tfl.layers.dense({ units: 1, activation: 'sigmoid' }).apply(d) as tfl.SymbolicTensor;
    const disc = tfl.model({ inputs: [x, label], outputs: p });
    return { gen, disc };
  }

  function ganLoss(
    gen: tfl.LayersModel,
    disc: tfl.LayersModel,
    z: tf.Tensor,
    labels: tf.Tensor,
    target: tf.Tensor,
  ): tf.Scalar {
    const fake = gen.apply(z, { training: true }) as tf.Tensor;
    const p = disc.apply([fake, labels], { training: true }) as tf.Tensor;
    return tf.mean(tf.losses.logLoss(target, p)) as tf.Scalar;
  }

  test('gradients of every weight of a small conditional GAN equal cpu', async () => {
    await tf.setBackend('wasm');
    const { gen, disc } = buildModels();
    const zData = randomData([4, 8], 11);
    const grads: Record<string, Float32Array[]> = {};
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      grads[backend] = tf.tidy(() => {
        const z = tf.tensor2d(zData, [4, 8]);
        const labels = tf.tensor2d([0, 2, 1, 2], [4, 1]);
        const target = tf.tensor2d([1, 0, 1, 1], [4, 1]);
        const { grads: g } = tf.variableGrads(() => ganLoss(gen, disc, z, labels, target));
        return Object.keys(g)
          .sort()
          .map((k) => g[k]!.dataSync() as Float32Array);
      });
    }
    await tf.setBackend('wasm');
    assert.ok(grads['wasm']!.length >= 15, 'every layer has trainable weights');
    assertClose(grads['wasm']!, grads['cpu']!, 'GAN weight gradients');
  });

  test("UpSampling2D's gradient on wasm is the adjoint of its forward pass (cpu's is not)", async () => {
    const xs: [number, number, number, number] = [2, 4, 5, 3];
    const xData = randomData(xs, 7);
    const dyData = randomData([2, 8, 10, 3], 8);
    const up = tfl.layers.upSampling2d({ size: [2, 2] });
    const errors: Record<string, number> = {};
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      const x = tf.tensor4d(xData, xs);
      const dy = tf.tensor4d(dyData, [2, 8, 10, 3]);
      const y = up.apply(x) as tf.Tensor;
      const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(up.apply(a) as tf.Tensor, dy)))(x);
      const lhs = dot(y.dataSync(), dyData);
      errors[backend] = Math.abs(dot(xData, dx.dataSync()) - lhs) / Math.abs(lhs);
    }
    await tf.setBackend('wasm');
    assert.ok(errors['wasm']! < 1e-5, `wasm: ${errors['wasm']}`);
    // Documents the cpu backend's bug; if a later tfjs fixes it, UpSampling2D can join the GAN comparison above.
    assert.ok(errors['cpu']! > 1e-3, `cpu: ${errors['cpu']}`);
  });

  test('a few training steps of a conv net classifier on wasm reduce its loss', async () => {
    await tf.setBackend('wasm');
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          inputShape: [12, 12, 1],
          filters: 8,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
        }),
        tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const n = 16;
    const xData = randomData([n, 12, 12, 1], 99);
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    // Class 1 images are brighter in the top half: learnable by the conv net.
    labels.forEach((l, i) => {
      if (l === 1) for (let j = 0; j < 72; j++) xData[i * 144 + j]! += 1.5;
    });
    const x = tf.tensor4d(xData, [n, 12, 12, 1]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);
    const first = (await model.trainOnBatch(x, y)) as number;
    let last = first;
    for (let step = 0; step < 8; step++) last = (await model.trainOnBatch(x, y)) as number;
    assert.equal(tf.getBackend(), 'wasm');
    assert.ok(Number.isFinite(last) && last < first, `loss ${first} → ${last}`);
  });
});
