import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { EqualizedConv2D, EqualizedDense, PixelNorm } from '../../src/models/equalized.js';
import {
  downsampleBox2x,
  modulatedConv2d,
  ModulatedConv2D,
  NoiseInjection,
  upsampleBilinear2x,
  upsampleNearest2x,
} from '../../src/models/style-layers.js';
import {
  buildStyleGan2,
  defaultStyleGan2Spec,
  noiseLayers,
  setNoiseSeed,
  setTruncation,
  styleGan2Plan,
  type StyleGan2Networks,
  type StyleGan2Spec,
  validateStyleGan2Spec,
  wAverageLayer,
} from '../../src/models/stylegan2.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

/** Narrow networks: the default skeleton, built and run in milliseconds. */
function tinySpec(partial: Partial<StyleGan2Spec> = {}): StyleGan2Spec {
  return defaultStyleGan2Spec({
    zDim: 16,
    wDim: 16,
    gWidth: 8,
    dWidth: 8,
    maxWidth: 32,
    numClasses: 3,
    ...partial,
  });
}

function latents(n: number, zDim: number, seed = 1): tf.Tensor2D {
  return tf.randomNormal([n, zDim], 0, 1, 'float32', seed);
}

function disposeNet(net: StyleGan2Networks): void {
  net.G.dispose();
  net.D.dispose();
}

/** Values of a tensor produced in `f` (tidied). */
function values(f: () => tf.Tensor): Float32Array {
  const t = tf.tidy(f);
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function gInputs(net: StyleGan2Networks, z: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor[] {
  return net.spec.conditional ? [z, labels] : [z];
}

function dInputs(net: StyleGan2Networks, x: tf.Tensor, labels: tf.Tensor1D): tf.Tensor | tf.Tensor[] {
  return net.spec.conditional ? [x, labels] : x;
}

function runG(net: StyleGan2Networks, z: tf.Tensor2D, labels: tf.Tensor1D, training: boolean): tf.Tensor4D {
  return net.G.apply(gInputs(net, z, labels), { training }) as tf.Tensor4D;
}

function runD(net: StyleGan2Networks, x: tf.Tensor, labels: tf.Tensor1D, training: boolean): tf.Tensor2D {
  return net.D.apply(dInputs(net, x, labels), { training }) as tf.Tensor2D;
}

function weightOf(owner: { weights: tfl.LayerVariable[] }, name: string): tfl.LayerVariable {
  const w = owner.weights.find((x) => x.originalName === name);
  assert.ok(w, `no weight ${name}: ${owner.weights.map((x) => x.originalName).join(', ')}`);
  return w;
}

// ---------------------------------------------------------------------------------------------------------

describe('equalised layers', () => {
  test('EqualizedDense: y = lrelu(x·W·lrMul/√in + b·lrMul)·√2, weights stored N(0, 1/lrMul²)', () => {
    const layer = new EqualizedDense({
      units: 64,
      lrMul: 0.01,
      biasInit: 0.5,
      activation: 'lrelu',
      seed: 3,
      name: 'eq_dense_test',
    });
    const x = tf.randomNormal([5, 32], 0, 1, 'float32', 2);
    const y = values(() => layer.apply(x) as tf.Tensor);
    const kernel = weightOf(layer, 'eq_dense_test/kernel').read();
    const bias = weightOf(layer, 'eq_dense_test/bias').read();
    assert.deepEqual(kernel.shape, [32, 64]);
    const std = values(() => tf.sqrt(tf.moments(kernel).variance)).at(0)!;
    assert.ok(Math.abs(std - 100) < 10, `stored kernel std ${std}, want ≈ 1/lrMul = 100`);
    assert.ok(maxAbsDiff(bias.dataSync(), new Float32Array(64).fill(50)) < 1e-3, 'bias stored as 0.5/lrMul');
    const want = values(() => {
      const pre = tf.add(
        tf.matMul(x, tf.mul(kernel, 0.01 / Math.sqrt(32)) as tf.Tensor2D),
        tf.mul(bias, 0.01),
      );
      return tf.mul(tf.leakyRelu(pre, 0.2), Math.SQRT2);
    });
    assert.ok(maxAbsDiff(y, want) < 1e-5);
    x.dispose();
  });

  test("EqualizedConv2D: conv(x, W/√(k²·in)) + b, 'same' and 'valid', no bias when asked", () => {
    const x = tf.randomNormal([2, 6, 6, 4], 0, 1, 'float32', 5);
    for (const padding of ['same', 'valid'] as const) {
      const layer = new EqualizedConv2D({
        filters: 3,
        kernelSize: 3,
        padding,
        seed: 1,
        name: `eq_conv_${padding}`,
      });
      const y = layer.apply(x) as tf.Tensor;
      assert.deepEqual(y.shape, padding === 'same' ? [2, 6, 6, 3] : [2, 4, 4, 3]);
      const w = weightOf(layer, `eq_conv_${padding}/kernel`).read() as tf.Tensor4D;
      const want = values(() =>
        tf.conv2d(x as tf.Tensor4D, tf.mul(w, 1 / Math.sqrt(36)) as tf.Tensor4D, 1, padding),
      );
      assert.ok(maxAbsDiff(y.dataSync(), want) < 1e-5);
      y.dispose();
    }
    // gain and lrelu: act(z)·√2·gain, folded into the kernel and bias scales.
    const gained = new EqualizedConv2D({
      filters: 3,
      kernelSize: 3,
      activation: 'lrelu',
      gain: 0.5,
      biasInit: -0.2,
      seed: 1,
      name: 'eq_conv_gain',
    });
    const yg = values(() => gained.apply(x) as tf.Tensor);
    const wg = weightOf(gained, 'eq_conv_gain/kernel').read() as tf.Tensor4D;
    const wantG = values(() => {
      const pre = tf.add(tf.conv2d(x as tf.Tensor4D, tf.mul(wg, 1 / 6) as tf.Tensor4D, 1, 'same'), -0.2);
      return tf.mul(tf.leakyRelu(pre, 0.2), Math.SQRT2 * 0.5);
    });
    assert.ok(maxAbsDiff(yg, wantG) < 1e-5);
    const noBias = new EqualizedConv2D({
      filters: 2,
      kernelSize: 1,
      useBias: false,
      seed: 1,
      name: 'eq_conv_nb',
    });
    tf.dispose(noBias.apply(x) as tf.Tensor);
    assert.deepEqual(
      noBias.weights.map((w) => w.originalName),
      ['eq_conv_nb/kernel'],
    );
    x.dispose();
  });

  test('PixelNorm: unit second moment over the last axis', () => {
    const x = tf.mul(tf.randomNormal([3, 5, 5, 8], 0, 1, 'float32', 9), 7);
    const m2 = values(() => tf.mean(tf.square(new PixelNorm({ name: 'pn_test' }).apply(x) as tf.Tensor), -1));
    assert.ok(maxAbsDiff(m2, new Float32Array(m2.length).fill(1)) < 1e-4);
    x.dispose();
  });
});

describe('modulated convolution', () => {
  /** The fused form: each sample convolved alone with its own weight W·s_n (·d_n). */
  function fused(
    x: tf.Tensor4D,
    kernel: tf.Tensor4D,
    styles: tf.Tensor2D,
    demodulate: boolean,
    upsample: boolean,
  ): tf.Tensor4D {
    return tf.tidy(() => {
      const n = x.shape[0];
      const [k, , inC, outC] = kernel.shape;
      const outs: tf.Tensor4D[] = [];
      for (let i = 0; i < n; i++) {
        const s = tf.reshape(tf.slice(styles, [i, 0], [1, inC]), [1, 1, inC, 1]);
        let w = tf.mul(kernel, s) as tf.Tensor4D; // W_{k,i,o}·s_i
        if (demodulate) {
          const d = tf.rsqrt(tf.add(tf.sum(tf.square(w), [0, 1, 2], true), 1e-8)); // [1,1,1,O]
          w = tf.mul(w, d) as tf.Tensor4D;
        }
        assert.deepEqual(w.shape, [k, k, inC, outC]);
        let xi = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
        if (upsample) xi = upsampleNearest2x(xi);
        outs.push(tf.conv2d(xi, w, 1, 'same'));
      }
      return tf.concat(outs, 0);
    });
  }

  for (const [demodulate, upsample, k] of [
    [true, false, 3],
    [true, true, 3],
    [false, false, 1],
  ] as const) {
    test(`equals the fused per-sample form (demodulate ${demodulate}, upsample ${upsample}, ${k}×${k})`, () => {
      const x = tf.randomNormal([4, 6, 6, 5], 0, 1, 'float32', 11) as tf.Tensor4D;
      const kernel = tf.mul(
        tf.randomNormal([k, k, 5, 7], 0, 1, 'float32', 12),
        1 / Math.sqrt(k * k * 5),
      ) as tf.Tensor4D;
      const styles = tf.add(tf.randomNormal([4, 5], 0, 1, 'float32', 13), 1) as tf.Tensor2D;
      const a = values(() => modulatedConv2d(x, kernel, styles, demodulate, upsample));
      const b = values(() => fused(x, kernel, styles, demodulate, upsample));
      const err = maxAbsDiff(a, b);
      assert.ok(err < 1e-5 * Math.max(1, maxAbs(b)), `max |Δ| = ${err}`);
      tf.dispose([x, kernel, styles]);
    });
  }

  test('ModulatedConv2D: the style is an equalised affine of w with bias 1; the layer equals modulatedConv2d', () => {
    const layer = new ModulatedConv2D({ filters: 6, kernelSize: 3, seed: 4, name: 'modconv_test' });
    const x = tf.randomNormal([3, 5, 5, 4], 0, 1, 'float32', 21);
    const w = tf.randomNormal([3, 10], 0, 1, 'float32', 22);
    const y = values(() => layer.apply([x, w]) as tf.Tensor);
    assert.deepEqual(
      layer.weights.map((v) => v.originalName),
      ['modconv_test/kernel', 'modconv_test/affine_kernel', 'modconv_test/affine_bias'],
    );
    const a = weightOf(layer, 'modconv_test/affine_kernel').read() as tf.Tensor2D;
    assert.deepEqual(Array.from(weightOf(layer, 'modconv_test/affine_bias').read().dataSync()), [1, 1, 1, 1]);
    const kernel = weightOf(layer, 'modconv_test/kernel').read() as tf.Tensor4D;
    const want = values(() =>
      modulatedConv2d(
        x as tf.Tensor4D,
        tf.mul(kernel, 1 / Math.sqrt(36)) as tf.Tensor4D,
        tf.add(tf.matMul(w, tf.mul(a, 1 / Math.sqrt(10)) as tf.Tensor2D), 1) as tf.Tensor2D,
        true,
      ),
    );
    assert.ok(maxAbsDiff(y, want) < 1e-5);
    tf.dispose([x, w]);
  });

  test('upsampling ×2: nearest repeats pixels; bilinear has half-pixel centres (weights ¾, ¼)', () => {
    const x = tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1]);
    assert.deepEqual(
      Array.from(values(() => upsampleNearest2x(x))),
      [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3],
    );
    const b = values(() => upsampleBilinear2x(x));
    const want = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
    assert.ok(maxAbsDiff(b, want) < 1e-6, `${Array.from(b).join(', ')}`);
    x.dispose();
  });

  test('downsampleBox2x is the 2×2 average pool, also in second-order gradients', () => {
    const x = tf.randomNormal([2, 6, 4, 3], 0, 1, 'float32', 31) as tf.Tensor4D;
    const a = values(() => downsampleBox2x(x));
    const b = values(() => tf.avgPool(x, 2, 2, 'valid'));
    assert.ok(maxAbsDiff(a, b) < 1e-6);
    // Against a reshape-and-mean box filter (differentiable by TF.js's own gradients) in an R1-like loss.
    const box = (t: tf.Tensor4D) => {
      const [n, h, w, c] = t.shape;
      return tf.reshape(tf.mean(tf.reshape(t, [n, h / 2, 2, w / 2, 2, c]), [2, 4]), [n, h / 2, w / 2, c]);
    };
    const v = tf.variable(tf.randomNormal([3 * 2 * 3, 1], 0, 1, 'float32', 32));
    const r1 = (down: (t: tf.Tensor4D) => tf.Tensor) => {
      const { value, grads } = tf.variableGrads(() => {
        const f = (t: tf.Tensor) =>
          tf.sum(tf.matMul(tf.reshape(tf.square(down(t as tf.Tensor4D)), [2, -1]), v));
        return tf.sum(tf.square(tf.grad(f)(x))) as tf.Scalar;
      }, [v]);
      const g = grads[v.name]!.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
      return g;
    };
    assert.ok(maxAbsDiff(r1(downsampleBox2x), r1(box)) < 1e-4);
    tf.dispose([x, v]);
  });
});

describe('spec', () => {
  test('defaults: 28×28×1, two classes, conditional; frozen', () => {
    const spec = defaultStyleGan2Spec();
    assert.equal(spec.family, 'stylegan2');
    assert.equal(spec.size, 28);
    assert.equal(spec.channels, 1);
    assert.equal(spec.conditional, true);
    assert.ok(Object.isFrozen(spec));
    assert.equal(defaultStyleGan2Spec({ numClasses: 1 }).conditional, false);
  });

  for (const [field, bad, message] of [
    ['size', 48, /StyleGan2Spec\.size/],
    ['channels', 2, /StyleGan2Spec\.channels/],
    ['numClasses', 0, /StyleGan2Spec\.numClasses/],
    ['zDim', 1.5, /StyleGan2Spec\.zDim/],
    ['wDim', 0, /StyleGan2Spec\.wDim/],
    ['mappingLayers', 0, /StyleGan2Spec\.mappingLayers/],
    ['gWidth', -1, /StyleGan2Spec\.gWidth/],
    ['maxWidth', 4, /StyleGan2Spec\.maxWidth/],
    ['seed', 0.5, /StyleGan2Spec\.seed/],
    ['family', 'cgan', /StyleGan2Spec\.family/],
    ['conditional', 'yes', /StyleGan2Spec\.conditional/],
  ] as const) {
    test(`rejects ${field} = ${String(bad)} with a RangeError naming it`, () => {
      const spec = { ...tinySpec(), [field]: bad } as unknown as StyleGan2Spec;
      assert.throws(
        () => validateStyleGan2Spec(spec),
        (e: unknown) => e instanceof RangeError && message.test(e.message),
      );
    });
  }

  test('a conditional spec needs two classes', () => {
    assert.throws(() => tinySpec({ numClasses: 1, conditional: true }), /numClasses must be ≥ 2/);
  });

  test('plans: sides from s0, widths doubling per halving, capped', () => {
    const p28 = styleGan2Plan(defaultStyleGan2Spec({ size: 28 }));
    assert.deepEqual(p28.sides, [7, 14, 28]);
    assert.deepEqual(p28.gWidths, [128, 64, 32]);
    const p64 = styleGan2Plan(defaultStyleGan2Spec({ size: 64, numClasses: 1 }));
    assert.deepEqual(p64.sides, [4, 8, 16, 32, 64]);
    assert.deepEqual(p64.dWidths, [256, 256, 128, 64, 32]);
    assert.equal(p64.cmapDim, 0);
    assert.deepEqual(styleGan2Plan(tinySpec({ size: 128 })).sides, [4, 8, 16, 32, 64, 128]);
  });
});

describe('networks', () => {
  for (const [size, channels, conditional] of [
    [28, 1, true],
    [28, 1, false],
    [64, 3, true],
    [64, 3, false],
  ] as const) {
    test(`shapes at ${size} px ×${channels}, ${conditional ? 'conditional' : 'unconditional'}`, () => {
      const net = buildStyleGan2(tinySpec({ size, channels, conditional, numClasses: conditional ? 3 : 1 }));
      assert.equal(net.G.name, 'G');
      assert.equal(net.D.name, 'D');
      assert.equal(net.G.inputs.length, conditional ? 2 : 1);
      assert.equal(net.D.inputs.length, conditional ? 2 : 1);
      const z = latents(5, 16);
      const labels = tf.tensor1d(
        [0, 1, 2, 0, 1].map((v) => (conditional ? v : 0)),
        'int32',
      );
      for (const training of [true, false]) {
        tf.tidy(() => {
          const x = runG(net, z, labels, training);
          assert.deepEqual(x.shape, [5, size, size, channels]);
          assert.ok(
            x.dataSync().every((v) => Number.isFinite(v) && Math.abs(v) <= 1),
            'images in [-1, 1]',
          );
          const logits = runD(net, x, labels, training);
          assert.deepEqual(logits.shape, [5, 1]);
          assert.ok(logits.dataSync().every(Number.isFinite));
        });
      }
      // One noise layer per modulated 3×3 conv: one at s0, two per larger side.
      assert.equal(noiseLayers(net.G).length, 2 * styleGan2Plan(net.spec).sides.length - 1);
      tf.dispose([z, labels]);
      disposeNet(net);
    });
  }

  test('the same spec builds bit-identical weights (names and values); another seed other weights', () => {
    const spec = tinySpec({ size: 32, channels: 3 });
    const a = buildStyleGan2(spec);
    const b = buildStyleGan2(spec);
    const c = buildStyleGan2({ ...spec, seed: 5 });
    for (const m of ['G', 'D'] as const) {
      const wa = a[m].weights;
      const wb = b[m].weights;
      assert.deepEqual(
        wa.map((w) => w.originalName),
        wb.map((w) => w.originalName),
      );
      assert.equal(new Set(wa.map((w) => w.originalName)).size, wa.length, 'weight names are unique');
      for (let i = 0; i < wa.length; i++)
        assert.deepEqual(wa[i]!.read().dataSync(), wb[i]!.read().dataSync(), wa[i]!.originalName);
      const kernels = (n: StyleGan2Networks) =>
        n[m].weights.filter((w) => w.originalName.endsWith('kernel')).map((w) => w.read().dataSync());
      const ka = kernels(a);
      kernels(c).forEach((k, i) => assert.notDeepEqual(k, ka[i]));
    }
    for (const w of a.G.weights.concat(a.D.weights))
      assert.match(w.originalName, /^[gd]_[a-z0-9_]+\/[a-z_]+$/, 'weights are named <layer>/<weight>');
    [a, b, c].forEach(disposeNet);
  });

  for (const conditional of [true, false]) {
    test(`gradients reach every trainable weight of G through D (${conditional ? 'conditional' : 'unconditional'})`, () => {
      const net = buildStyleGan2(tinySpec({ conditional, numClasses: conditional ? 3 : 1 }));
      setNoiseSeed(net.G, 7);
      const z = latents(4, 16);
      const labels = tf.tensor1d(conditional ? [0, 1, 2, 1] : [0, 0, 0, 0], 'int32');
      const gVars = net.G.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => tf.mean(tf.softplus(tf.neg(runD(net, runG(net, z, labels, true), labels, true)))) as tf.Scalar,
        gVars,
      );
      for (const v of gVars) {
        const g = grads[v.name];
        assert.ok(g, `no gradient for ${v.name}`);
        const gv = g.dataSync();
        assert.ok(gv.every(Number.isFinite), `non-finite gradient for ${v.name}`);
        assert.ok(maxAbs(gv) > 0, `zero gradient for ${v.name}`);
      }
      // Non-trainable: the tracked mean w and the constant noise.
      assert.deepEqual(net.G.nonTrainableWeights.map((w) => w.originalName.split('/')[1]).sort(), [
        'noise_const',
        'noise_const',
        'noise_const',
        'noise_const',
        'noise_const',
        'w_avg',
      ]);
      tf.dispose([value, ...Object.values(grads), z, labels]);
      disposeNet(net);
    });
  }

  test('an R1 penalty (second-order gradients through D) trains every D weight', () => {
    const net = buildStyleGan2(tinySpec());
    const x = tf.randomNormal([4, 28, 28, 1], 0, 1, 'float32', 41);
    const labels = tf.tensor1d([0, 1, 2, 0], 'int32');
    const dVars = net.D.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const grad = tf.grad((xi: tf.Tensor) => tf.sum(runD(net, xi, labels, true)));
      return tf.mean(tf.sum(tf.square(grad(x)), [1, 2, 3])) as tf.Scalar;
    }, dVars);
    assert.ok(Number.isFinite(value.dataSync()[0]!));
    // Every kernel is on the path from x to the logits (biases of the last layers are not: ∂D/∂x ignores them).
    for (const v of dVars.filter((v) => v.name.includes('kernel'))) {
      const g = grads[v.name];
      assert.ok(g, `no R1 gradient for ${v.name}`);
      assert.ok(g.dataSync().every(Number.isFinite));
    }
    tf.dispose([value, ...Object.values(grads), x, labels]);
    disposeNet(net);
  });
});

describe('mean w and truncation', () => {
  test('w_avg moves toward the batch class means in training calls, only for classes present; not in inference', () => {
    const net = buildStyleGan2(tinySpec());
    const layer = wAverageLayer(net.G);
    const mapping = tfl.model({ inputs: net.G.inputs, outputs: layer.input as tfl.SymbolicTensor[] });
    const z = latents(4, 16, 3);
    const labels = tf.tensor1d([0, 2, 2, 0], 'int32');
    const w = (mapping.apply([z, labels]) as tf.Tensor[])[0]!;
    const wv = w.arraySync() as number[][];
    const avg0 = layer.mean();
    assert.equal(maxAbs(avg0.dataSync()), 0);
    tf.dispose(runG(net, z, labels, true));
    const avg1 = layer.mean().arraySync() as number[][];
    const rate = 1 - 0.995;
    const mean = (rows: number[]) =>
      wv[0]!.map((_, j) => rows.reduce((s, r) => s + wv[r]![j]!, 0) / rows.length);
    const want = [
      mean([0, 3]).map((v) => v * rate),
      new Array<number>(16).fill(0),
      mean([1, 2]).map((v) => v * rate),
    ];
    assert.ok(maxAbsDiff(avg1.flat(), want.flat()) < 1e-6, 'one EMA step toward each present class mean');
    assert.ok(maxAbs(avg1[0]!) > 0 && maxAbs(avg1[2]!) > 0);
    // A second training call moves it further toward the same means.
    tf.dispose(runG(net, z, labels, true));
    const avg2 = layer.mean().arraySync() as number[][];
    const dist = (a: number[], b: number[]) => Math.hypot(...a.map((v, i) => v - b[i]!));
    assert.ok(dist(avg2[0]!, mean([0, 3])) < dist(avg1[0]!, mean([0, 3])));
    // Inference calls leave it alone.
    tf.dispose(runG(net, z, labels, false));
    assert.deepEqual(layer.mean().arraySync(), avg2);
    tf.dispose([z, labels, w, avg0]);
    disposeNet(net);
  });

  test('ψ = 0 gives one image per class whatever z (constant noise); ψ = 1 is no truncation', () => {
    const net = buildStyleGan2(tinySpec());
    const labels = tf.tensor1d([1, 1, 1, 2], 'int32');
    const z = latents(4, 16, 8);
    // Some training calls so w_avg is not 0 for class 1 and 2.
    setNoiseSeed(net.G, 3);
    for (let i = 0; i < 3; i++) tf.dispose(runG(net, z, labels, true));
    setNoiseSeed(net.G, null);
    setTruncation(net.G, 0);
    const x = tf.tidy(() => runG(net, latents(4, 16, 9), labels, false));
    const [a, b, c, d] = tf.unstack(x).map((t) => t.dataSync());
    assert.ok(maxAbsDiff(a!, b!) < 1e-5 && maxAbsDiff(a!, c!) < 1e-5, 'class 1: one image');
    assert.ok(maxAbsDiff(a!, d!) > 1e-3, 'class 2 differs from class 1');
    setTruncation(net.G, 1);
    const y = tf.tidy(() => runG(net, latents(4, 16, 9), labels, false));
    const [e, f] = tf.unstack(y).map((t) => t.dataSync());
    assert.ok(maxAbsDiff(e!, f!) > 1e-3, 'ψ = 1: different z, different images');
    // Training calls ignore ψ.
    setTruncation(net.G, 0);
    const t1 = values(() => runG(net, latents(4, 16, 9), labels, true));
    setTruncation(net.G, 1);
    const t2 = values(() => runG(net, latents(4, 16, 9), labels, true));
    assert.ok(maxAbsDiff(t1, t2) < 1e-6);
    assert.throws(() => setTruncation(net.G, Number.NaN), RangeError);
    tf.dispose([x, y, z, labels]);
    disposeNet(net);
  });
});

describe('noise', () => {
  function withStrength(net: StyleGan2Networks): void {
    for (const l of noiseLayers(net.G)) {
      const s = weightOf(l, `${l.name}/strength`);
      tf.tidy(() => {
        s.write(tf.fill(s.shape as number[], 0.5));
      });
    }
  }

  test('a noise seed gives the same output for the same seed and another for another seed', () => {
    const net = buildStyleGan2(tinySpec());
    withStrength(net);
    const z = latents(3, 16, 4);
    const labels = tf.tensor1d([0, 1, 2], 'int32');
    const run = (seed: number | null) => {
      setNoiseSeed(net.G, seed);
      return values(() => runG(net, z, labels, false));
    };
    const a = run(100);
    assert.deepEqual(run(100), a);
    assert.ok(maxAbsDiff(run(101), a) > 1e-3);
    // null: the constant buffers, the same at every call (and different from seeded noise).
    const c = run(null);
    assert.deepEqual(run(null), c);
    assert.ok(maxAbsDiff(c, a) > 1e-3);
    // Layers draw different noise from one seed.
    const layers = noiseLayers(net.G);
    assert.deepEqual(
      layers.map((l) => l.noiseIndex),
      layers.map((_, i) => i),
    );
    assert.ok(layers.every((l) => l instanceof NoiseInjection && l.noiseSeed === null));
    // A second build (G_ema) has the same constant noise: samples depend only on z and label.
    const other = buildStyleGan2(tinySpec());
    withStrength(other);
    assert.deepEqual(
      values(() => runG(other, z, labels, false)),
      c,
    );
    tf.dispose([z, labels]);
    disposeNet(net);
    disposeNet(other);
  });
});

describe('serialisation', () => {
  async function roundTrip(model: tfl.LayersModel): Promise<tfl.LayersModel> {
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    assert.ok(saved);
    return tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: saved.modelTopology,
        weightSpecs: saved.weightSpecs,
        weightData: saved.weightData,
      }),
    );
  }

  for (const conditional of [true, false]) {
    test(`save then load gives identical outputs (${conditional ? 'conditional' : 'unconditional'})`, async () => {
      const spec = tinySpec({ conditional, numClasses: conditional ? 3 : 1, size: 32, channels: 3 });
      const net = buildStyleGan2(spec);
      const z = latents(3, 16, 3);
      const labels = tf.tensor1d(conditional ? [1, 2, 0] : [0, 0, 0], 'int32');
      setNoiseSeed(net.G, 1);
      tf.tidy(() => {
        runG(net, z, labels, true); // w_avg moves away from 0
      });
      setNoiseSeed(net.G, null);
      const loaded: StyleGan2Networks = { spec, G: await roundTrip(net.G), D: await roundTrip(net.D) };
      assert.equal(loaded.G.name, 'G');
      for (const n of [net, loaded]) setTruncation(n.G, 0.5);
      const x = values(() => runG(net, z, labels, false));
      assert.deepEqual(
        values(() => runG(loaded, z, labels, false)),
        x,
      );
      const img = tf.tensor4d(x, [3, 32, 32, 3]);
      assert.deepEqual(
        values(() => runD(loaded, img, labels, false)),
        values(() => runD(net, img, labels, false)),
      );
      tf.dispose([z, labels, img]);
      disposeNet(net);
      disposeNet(loaded);
    });
  }
});

describe('no leaks', () => {
  for (const conditional of [true, false]) {
    test(`repeated G and D applies in tf.tidy leave tf.memory().numTensors unchanged (${conditional ? 'conditional' : 'unconditional'})`, () => {
      const net = buildStyleGan2(
        tinySpec({ conditional, numClasses: conditional ? 3 : 1, size: 32, channels: 3 }),
      );
      const z = latents(4, 16);
      const labels = tf.tensor1d(conditional ? [0, 1, 2, 1] : [0, 0, 0, 0], 'int32');
      const once = (i: number) => {
        setNoiseSeed(net.G, i % 2 === 0 ? i : null);
        setTruncation(net.G, i % 3 === 0 ? 0.7 : 1);
        tf.tidy(() => {
          runD(net, runG(net, z, labels, i % 2 === 0), labels, i % 2 === 0);
        });
        const { value, grads } = tf.variableGrads(
          () => tf.mean(runD(net, runG(net, z, labels, true), labels, true)) as tf.Scalar,
          net.G.trainableWeights.map((w) => w.read() as tf.Variable),
        );
        tf.dispose([value, ...Object.values(grads)]);
      };
      once(0);
      const before = tf.memory().numTensors;
      for (let i = 1; i < 6; i++) once(i);
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([z, labels]);
      disposeNet(net);
    });
  }
});
