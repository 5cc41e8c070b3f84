import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { GroupNorm, SpatialAttention, TimestepEmbedding } from '../../src/models/diffusion/layers.js';
import {
  buildUNet,
  checkUNetSpec,
  groupCount,
  predictNoise,
  timestepEmbedding,
  type UNetSpec,
} from '../../src/models/diffusion/unet.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

/** A tiny 28 px U-Net: built and run in well under a second. */
function tinySpec(partial: Partial<UNetSpec> = {}): UNetSpec {
  return {
    size: 28,
    channels: 1,
    numClasses: 3,
    width: 8,
    mults: [1, 2, 2],
    blocksPerLevel: 1,
    attention: true,
    seed: 1,
    ...partial,
  };
}

interface Batch {
  x: tf.Tensor4D;
  t: tf.Tensor2D;
  labels: tf.Tensor1D;
  dispose(): void;
}

function batch(spec: UNetSpec, n = 2, seed = 3): Batch {
  const x = tf.randomNormal([n, spec.size, spec.size, spec.channels], 0, 1, 'float32', seed) as tf.Tensor4D;
  const t = tf.tensor2d(
    Array.from({ length: n }, (_, i) => (i * 397.5) % 1000),
    [n, 1],
  );
  const labels = tf.tensor1d(
    Array.from({ length: n }, (_, i) => i % (spec.numClasses + 1)),
    'int32',
  );
  return { x, t, labels, dispose: () => tf.dispose([x, t, labels]) };
}

function run(model: tfl.LayersModel, x: tf.Tensor, t: tf.Tensor, labels: tf.Tensor, training = false) {
  return model.apply([x, t, labels], { training }) as tf.Tensor4D;
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

function weightValues(model: tfl.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, w.read().dataSync().slice() as Float32Array]));
}

/**
 * Adds the same seeded noise (0.1·N(0, 1), one seed per weight index) to every weight, so the zero-initialised
 * layers no longer hide the inputs: two models with equal weights stay equal, different ones stay different.
 */
function perturb(model: tfl.LayersModel, seed = 11): void {
  const next = tf.tidy(() =>
    model.getWeights().map((w, i) => tf.add(w, tf.randomNormal(w.shape, 0, 0.1, 'float32', seed + i))),
  );
  model.setWeights(next);
  tf.dispose(next);
}

/** The features entering the output conv (the network's output is exactly 0 at initialisation). */
function penultimate(model: tfl.LayersModel): tfl.LayersModel {
  return tfl.model({
    inputs: model.inputs,
    outputs: model.getLayer('out_silu').output as tfl.SymbolicTensor,
  });
}

function variablesOf(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

// ---------------------------------------------------------------------------------------------------------

describe('U-Net layers', () => {
  test('GroupNorm matches a plain-loop reference (biased variance over H·W·C/G per sample and group)', () => {
    const [n, h, w, c, groups] = [2, 3, 4, 6, 3];
    const data = Float32Array.from({ length: n * h * w * c }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 5));
    const gamma = [0.5, 1, 1.5, 2, -1, 0.25];
    const beta = [0, 0.1, -0.2, 0.3, 1, -1];
    const layer = new GroupNorm({ groups, name: 'gn_test' });
    const x = tf.tensor4d(data, [n, h, w, c]);
    layer.apply(x); // build
    assert.deepEqual(
      layer.weights.map((v) => [v.originalName, Array.from(v.read().dataSync())]),
      [
        ['gn_test/gamma', [1, 1, 1, 1, 1, 1]],
        ['gn_test/beta', [0, 0, 0, 0, 0, 0]],
      ],
    );
    layer.setWeights([tf.tensor1d(gamma), tf.tensor1d(beta)]);
    const got = values(() => layer.apply(x) as tf.Tensor);
    const cg = c / groups;
    const want = new Float32Array(data.length);
    const at = (b: number, i: number, j: number, k: number) => ((b * h + i) * w + j) * c + k;
    for (let b = 0; b < n; b++)
      for (let g = 0; g < groups; g++) {
        let sum = 0;
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++)
            for (let k = g * cg; k < (g + 1) * cg; k++) sum += data[at(b, i, j, k)]!;
        const count = h * w * cg;
        const mean = sum / count;
        let sq = 0;
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++)
            for (let k = g * cg; k < (g + 1) * cg; k++) sq += (data[at(b, i, j, k)]! - mean) ** 2;
        const inv = 1 / Math.sqrt(sq / count + 1e-5);
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++)
            for (let k = g * cg; k < (g + 1) * cg; k++)
              want[at(b, i, j, k)] = (data[at(b, i, j, k)]! - mean) * inv * gamma[k]! + beta[k]!;
      }
    assert.ok(maxAbsDiff(got, want) < 1e-4, `max diff ${maxAbsDiff(got, want)}`);
    x.dispose();
  });

  test('GroupNorm rejects a group count that does not divide the channels', () => {
    const layer = new GroupNorm({ groups: 4, name: 'gn_bad' });
    const x = tf.zeros([1, 2, 2, 6]);
    assert.throws(() => layer.apply(x), /4 groups do not divide 6 channels/);
    assert.throws(() => new GroupNorm({ groups: 0 }), /groups must be a positive integer/);
    x.dispose();
  });

  test('groupCount: min(8, c), 32 for large channel counts divisible by 32', () => {
    assert.deepEqual([4, 8, 16, 64, 128, 256, 264, 512].map(groupCount), [4, 8, 8, 8, 8, 32, 8, 32]);
  });

  test('timestepEmbedding: [sin(t·f_i) | cos(t·f_i)], f_i = 10000^(−i/(dim/2))', () => {
    const ts = [0, 1, 17.5, 250, 999.9];
    const dim = 8;
    const t = tf.tensor2d(ts, [ts.length, 1]);
    const got = values(() => timestepEmbedding(t, dim));
    const viaLayer = values(() => new TimestepEmbedding({ dim }).apply(t) as tf.Tensor);
    const want: number[] = [];
    for (const tv of ts) {
      const f = [0, 1, 2, 3].map((i) => Math.pow(10000, -i / 4));
      want.push(...f.map((fi) => Math.sin(tv * fi)), ...f.map((fi) => Math.cos(tv * fi)));
    }
    assert.ok(maxAbsDiff(got, want) < 2e-4, `max diff ${maxAbsDiff(got, want)}`);
    assert.deepEqual(viaLayer, got);
    // Hand values: t = 1 → sin(1), sin(0.1), sin(0.01), sin(0.001), cos(1), …
    assert.ok(Math.abs(got[dim + 0]! - 0.841471) < 1e-5);
    assert.ok(Math.abs(got[dim + 1]! - 0.0998334) < 1e-5);
    assert.ok(Math.abs(got[dim + 4]! - 0.540302) < 1e-5);
    assert.throws(() => timestepEmbedding(t, 7), /dim must be a positive even integer/);
    t.dispose();
  });

  test("SiLU ('swish' activation) is x·sigmoid(x) with gradient σ(x)·(1 + x·(1 − σ(x)))", () => {
    const xs = [-6, -2, -0.5, 0, 0.3, 1, 4];
    const x = tf.tensor1d(xs);
    const layer = tfl.layers.activation({ activation: 'swish' });
    const y = values(() => layer.apply(x) as tf.Tensor);
    const g = values(() => tf.grad((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))(x));
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    assert.ok(
      maxAbsDiff(
        y,
        xs.map((v) => v * sig(v)),
      ) < 1e-6,
    );
    assert.ok(
      maxAbsDiff(
        g,
        xs.map((v) => sig(v) * (1 + v * (1 - sig(v)))),
      ) < 1e-5,
    );
    x.dispose();
  });

  test('SpatialAttention: softmax(q·kᵀ/√C) over the H·W positions, times v', () => {
    const [h, w, c] = [2, 2, 3];
    const p = h * w;
    const mk = (s: number) => Array.from({ length: p * c }, (_, i) => Math.cos(i * s + s));
    const [q, k, v] = [mk(0.7), mk(1.3), mk(2.1)];
    const got = values(
      () =>
        new SpatialAttention({}).apply([
          tf.tensor4d(q, [1, h, w, c]),
          tf.tensor4d(k, [1, h, w, c]),
          tf.tensor4d(v, [1, h, w, c]),
        ]) as tf.Tensor,
    );
    const want: number[] = [];
    for (let i = 0; i < p; i++) {
      const logits = Array.from({ length: p }, (_, j) => {
        let s = 0;
        for (let d = 0; d < c; d++) s += q[i * c + d]! * k[j * c + d]!;
        return s / Math.sqrt(c);
      });
      const mx = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < c; d++) want.push(e.reduce((acc, ej, j) => acc + (ej / z) * v[j * c + d]!, 0));
    }
    assert.ok(maxAbsDiff(got, want) < 1e-5, `max diff ${maxAbsDiff(got, want)}`);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('buildUNet', () => {
  const shapeCases: { name: string; spec: UNetSpec }[] = [
    { name: '28 px, 1 channel, [1, 2, 2]', spec: tinySpec() },
    {
      name: '28 px, 3 channels, 2 blocks, no attention',
      spec: tinySpec({ channels: 3, blocksPerLevel: 2, attention: false }),
    },
    { name: '64 px, 1 channel, [1, 2, 2, 2]', spec: tinySpec({ size: 64, mults: [1, 2, 2, 2] }) },
    {
      name: '32 px, 3 channels, [1, 2], 1 class',
      spec: tinySpec({ size: 32, channels: 3, mults: [1, 2], numClasses: 1 }),
    },
  ];
  for (const { name, spec } of shapeCases) {
    test(`output shape and dtype: ${name}`, () => {
      const model = buildUNet(spec);
      const b = batch(spec, 3);
      try {
        assert.deepEqual(model.inputNames, ['x', 't', 'labels']);
        assert.deepEqual(
          model.inputs.map((i) => [i.shape, i.dtype]),
          [
            [[null, spec.size, spec.size, spec.channels], 'float32'],
            [[null, 1], 'float32'],
            [[null], 'int32'],
          ],
        );
        assert.deepEqual(model.outputs[0]!.shape, [null, spec.size, spec.size, spec.channels]);
        const y = run(model, b.x, b.t, b.labels);
        assert.deepEqual(y.shape, [3, spec.size, spec.size, spec.channels]);
        assert.equal(y.dtype, 'float32');
        y.dispose();
      } finally {
        b.dispose();
        model.dispose();
      }
    });
  }

  test('initialisation: zero output conv, zero last conv per block and attention projection', () => {
    const spec = tinySpec();
    const model = buildUNet(spec);
    const b = batch(spec);
    try {
      const w = weightValues(model);
      const zeroKernels = [...w.keys()].filter((k) => /(_conv1|_proj|^out_conv)\/kernel$/.test(k));
      // 3 down + 2 middle + 6 up ResBlocks, the attention projection and the output conv.
      assert.equal(zeroKernels.length, 13);
      for (const k of zeroKernels) assert.equal(maxAbs(w.get(k)!), 0, k);
      assert.equal(maxAbs(values(() => run(model, b.x, b.t, b.labels))), 0);
      assert.ok(maxAbs(values(() => penultimate(model).apply([b.x, b.t, b.labels]) as tf.Tensor)) > 0.1);
    } finally {
      b.dispose();
      model.dispose();
    }
  });

  test('the same seed builds identical weights and outputs, another seed different ones', () => {
    const spec = tinySpec();
    const [a, a2, other] = [buildUNet(spec), buildUNet(spec), buildUNet({ ...spec, seed: 2 })];
    const b = batch(spec);
    try {
      const [wa, wa2, wo] = [weightValues(a), weightValues(a2), weightValues(other)];
      assert.deepEqual([...wa.keys()], [...wo.keys()]);
      for (const [k, v] of wa) {
        assert.deepEqual(wa2.get(k), v, k);
        if (/(stem|_conv0|_skip|_q|_k|_v|_emb|_down|_up|time_dense\d)\/kernel$|class_embed/.test(k))
          assert.ok(maxAbsDiff(wo.get(k)!, v) > 1e-3, `${k} equal across seeds`);
      }
      const feats = (m: tfl.LayersModel) =>
        values(() => penultimate(m).apply([b.x, b.t, b.labels]) as tf.Tensor);
      assert.deepEqual(feats(a2), feats(a));
      assert.ok(maxAbsDiff(feats(other), feats(a)) > 1e-3);
      for (const m of [a, a2, other]) perturb(m);
      const out = (m: tfl.LayersModel) => values(() => run(m, b.x, b.t, b.labels));
      assert.deepEqual(out(a2), out(a));
      assert.ok(maxAbsDiff(out(other), out(a)) > 1e-3);
    } finally {
      b.dispose();
      for (const m of [a, a2, other]) m.dispose();
    }
  });

  test('the label (including the null class) and the timestep change the output', () => {
    const spec = tinySpec();
    const model = buildUNet(spec);
    perturb(model);
    const x = tf.randomNormal([1, 28, 28, 1], 0, 1, 'float32', 5);
    const xs = tf.tile(x, [spec.numClasses + 1, 1, 1, 1]);
    const t = tf.fill([spec.numClasses + 1, 1], 420);
    const labels = tf.tensor1d([0, 1, 2, 3], 'int32');
    try {
      const y = values(() => run(model, xs, t, labels));
      const per = 28 * 28;
      for (let i = 0; i < 4; i++)
        for (let j = i + 1; j < 4; j++) {
          const d = maxAbsDiff(y.subarray(i * per, (i + 1) * per), y.subarray(j * per, (j + 1) * per));
          assert.ok(d > 1e-3, `labels ${i} and ${j} give the same output (diff ${d})`);
        }
      const t2 = tf.fill([4, 1], 421.5);
      const y2 = values(() => run(model, xs, t2, labels));
      t2.dispose();
      assert.ok(maxAbsDiff(y, y2) > 1e-4, 'the timestep does not change the output');
    } finally {
      tf.dispose([x, xs, t, labels]);
      model.dispose();
    }
  });

  test('getWeights → a model built with another seed → setWeights: identical outputs (and via JSON)', async () => {
    const spec = tinySpec({ numClasses: 2 });
    const a = buildUNet(spec);
    perturb(a);
    const b = buildUNet({ ...spec, seed: 99 });
    const restored = await tfl.models.modelFromJSON(JSON.parse(JSON.stringify(a.toJSON(null, false))));
    const data = batch(spec, 3);
    try {
      const weights = a.getWeights();
      b.setWeights(weights);
      restored.setWeights(weights);
      const want = values(() => run(a, data.x, data.t, data.labels));
      assert.ok(maxAbs(want) > 1e-3);
      assert.deepEqual(
        values(() => run(b, data.x, data.t, data.labels)),
        want,
      );
      assert.deepEqual(
        values(() => run(restored, data.x, data.t, data.labels)),
        want,
      );
    } finally {
      data.dispose();
      for (const m of [a, b, restored]) m.dispose();
    }
  });

  test('no tensor leaks across repeated inference calls in tf.tidy', () => {
    const spec = tinySpec();
    const model = buildUNet(spec);
    const b = batch(spec);
    try {
      const once = () => tf.tidy(() => tf.sum(predictNoise(model, b.x, b.t, b.labels)).dataSync());
      once();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) once();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      b.dispose();
      model.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('training', () => {
  test('Adam steps on a fixed batch lower the ε-MSE below 0.5, gradients reach every weight, no leaks', () => {
    const spec = tinySpec({ seed: 0 });
    const model = buildUNet(spec);
    const n = 4;
    const tv = [100, 300, 600, 900];
    const root = tv.map((t) => Math.cos(((Math.PI / 2) * t) / 1000)); // √ᾱ_t of a cosine schedule
    const { xt, eps, t, labels } = tf.tidy(() => {
      const x0 = tf.tanh(tf.randomNormal([n, 28, 28, 1], 0, 2, 'float32', 7));
      const eps = tf.randomNormal([n, 28, 28, 1], 0, 1, 'float32', 8);
      const a = tf.tensor4d(root, [n, 1, 1, 1]);
      const s = tf.tensor4d(
        root.map((r) => Math.sqrt(1 - r * r)),
        [n, 1, 1, 1],
      );
      return {
        xt: tf.add(tf.mul(x0, a), tf.mul(eps, s)),
        eps,
        t: tf.tensor2d(tv, [n, 1]),
        labels: tf.tensor1d([0, 1, 2, 3], 'int32'),
      };
    });
    const vars = variablesOf(model);
    const opt = tf.train.adam(1e-2);
    const loss = () => tf.losses.meanSquaredError(eps, run(model, xt, t, labels, true)) as tf.Scalar;
    try {
      const losses: number[] = [];
      const step = () => {
        const l = opt.minimize(loss, true, vars)!;
        losses.push(l.dataSync()[0]!);
        l.dispose();
      };
      step(); // warm-up: creates Adam's slots
      const before = tf.memory().numTensors;
      for (let i = 0; i < 7; i++) step();
      assert.equal(tf.memory().numTensors, before, 'training steps leak tensors');
      assert.ok(Math.abs(losses[0]! - 0.95) < 0.1, `the first loss is E[ε²] ≈ 1 (ε̂ = 0), got ${losses[0]}`);
      assert.ok(losses.at(-1)! < 0.5, `losses ${losses.map((v) => v.toFixed(3)).join(', ')}`);
      // After the first steps the zero-initialised layers are non-zero, so every weight gets a gradient.
      const { value, grads } = tf.variableGrads(loss, vars);
      try {
        assert.equal(Object.keys(grads).length, vars.length);
        for (const v of vars) assert.ok(maxAbs(grads[v.name]!.dataSync()) > 0, `no gradient for ${v.name}`);
      } finally {
        value.dispose();
        tf.dispose(Object.values(grads));
      }
    } finally {
      opt.dispose();
      tf.dispose([xt, eps, t, labels]);
      model.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('checkUNetSpec', () => {
  test('accepts the documented configurations', () => {
    checkUNetSpec(tinySpec());
    checkUNetSpec(tinySpec({ size: 64, mults: [1, 2, 2, 2], blocksPerLevel: 2, width: 32 }));
    checkUNetSpec(tinySpec({ size: 128, mults: [1, 1, 2, 2, 4], width: 64, channels: 3 }));
  });

  const bad: { name: string; partial: Record<string, unknown>; error: RegExp }[] = [
    { name: 'size', partial: { size: 48 }, error: /UNetSpec\.size must be one of 28, 32, 64, 128/ },
    { name: 'channels', partial: { channels: 2 }, error: /UNetSpec\.channels must be 1 or 3/ },
    {
      name: 'numClasses',
      partial: { numClasses: 0 },
      error: /UNetSpec\.numClasses must be a positive integer/,
    },
    { name: 'width', partial: { width: 0 }, error: /UNetSpec\.width must be a positive integer/ },
    { name: 'odd width', partial: { width: 7 }, error: /UNetSpec\.width must be even/ },
    {
      name: 'width vs groups',
      partial: { width: 12 },
      error: /UNetSpec\.width: a GroupNorm sees 12 channels/,
    },
    { name: 'empty mults', partial: { mults: [] }, error: /UNetSpec\.mults must be a non-empty array/ },
    {
      name: 'mults entry',
      partial: { mults: [1, 0] },
      error: /UNetSpec\.mults\[1\] must be a positive integer/,
    },
    {
      name: 'side vs levels',
      partial: { mults: [1, 2, 2, 2] },
      error: /UNetSpec\.mults: 4 levels .* size 28 must be divisible by 8/,
    },
    {
      name: 'blocksPerLevel',
      partial: { blocksPerLevel: 1.5 },
      error: /UNetSpec\.blocksPerLevel must be a positive integer/,
    },
    { name: 'attention', partial: { attention: 'yes' }, error: /UNetSpec\.attention must be a boolean/ },
    { name: 'seed', partial: { seed: 0.5 }, error: /UNetSpec\.seed must be an integer/ },
  ];
  for (const { name, partial, error } of bad) {
    test(`rejects a bad ${name} (and buildUNet does too)`, () => {
      const spec = { ...tinySpec(), ...partial } as unknown as UNetSpec;
      assert.throws(
        () => checkUNetSpec(spec),
        (e: unknown) => e instanceof RangeError && error.test(e.message),
      );
      assert.throws(() => buildUNet(spec), RangeError);
    });
  }
});
