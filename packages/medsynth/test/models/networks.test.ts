import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  buildGan,
  buildGenerator,
  defaultGanSpec,
  ganPlan,
  parameterCount,
  runD,
  runG,
  validateGanSpec,
} from '../../src/models/registry.js';
import type { GanFamily, GanNetworks, GanSize, GanSpec } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

/** Narrow networks: the same skeleton as the defaults, built and run in milliseconds. */
function tinySpec(partial: Partial<GanSpec> = {}): GanSpec {
  return defaultGanSpec({ zDim: 16, gWidth: 8, dWidth: 8, maxWidth: 32, numClasses: 3, ...partial });
}

function latents(n: number, zDim: number, seed = 1): tf.Tensor2D {
  return tf.randomNormal([n, zDim], 0, 1, 'float32', seed);
}

function disposeNet(net: GanNetworks): void {
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
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('defaultGanSpec and validation', () => {
  test('defaults: a 28×28×1 two-class projection cgan with spectral norm', () => {
    assert.deepEqual(defaultGanSpec(), {
      family: 'cgan',
      size: 28,
      channels: 1,
      numClasses: 2,
      zDim: 128,
      gWidth: 64,
      dWidth: 64,
      maxWidth: 256,
      conditioning: 'projection',
      spectralNorm: true,
      seed: 0,
    });
    assert.equal(defaultGanSpec({ size: 64 }).maxWidth, 256);
    assert.equal(defaultGanSpec({ size: 128 }).maxWidth, 512);
    assert.equal(defaultGanSpec({ size: 128, maxWidth: 64 }).maxWidth, 64);
    assert.ok(Object.isFrozen(defaultGanSpec()));
  });

  const bad: [string, Partial<GanSpec>, RegExp][] = [
    [
      'size not in GAN_SIZES',
      { size: 48 as GanSize },
      /GanSpec\.size must be one of 28, 32, 64, 128, got 48/,
    ],
    ['channels 2', { channels: 2 as 1 }, /GanSpec\.channels must be 1 or 3/],
    ['numClasses 0', { family: 'dcgan', numClasses: 0 }, /GanSpec\.numClasses must be a positive integer/],
    ['cgan with one class', { family: 'cgan', numClasses: 1 }, /numClasses must be ≥ 2 for family 'cgan'/],
    ['acgan with one class', { family: 'acgan', numClasses: 1 }, /numClasses must be ≥ 2 for family 'acgan'/],
    [
      'unknown family',
      { family: 'stylegan' as GanFamily },
      /GanSpec\.family must be one of dcgan, cgan, acgan/,
    ],
    ['zDim 0', { zDim: 0 }, /GanSpec\.zDim must be a positive integer/],
    ['fractional gWidth', { gWidth: 8.5 }, /GanSpec\.gWidth must be a positive integer/],
    ['maxWidth below dWidth', { dWidth: 128, maxWidth: 64 }, /maxWidth \(64\) must be ≥/],
    ['unknown conditioning', { conditioning: 'film' as 'concat' }, /GanSpec\.conditioning must be one of/],
    ['non-integer seed', { seed: 0.5 }, /GanSpec\.seed must be an integer/],
  ];
  for (const [name, partial, message] of bad) {
    test(`rejects ${name} with a RangeError`, () => {
      assert.throws(
        () => defaultGanSpec(partial),
        (e: unknown) => e instanceof RangeError && message.test(e.message),
      );
      assert.throws(() => buildGan({ ...defaultGanSpec(), ...partial }), RangeError);
    });
  }

  test('dcgan accepts a single class', () => {
    assert.doesNotThrow(() => validateGanSpec(tinySpec({ family: 'dcgan', numClasses: 1 })));
  });
});

describe('architecture', () => {
  test('plans: sides from s0 and widths doubling below half resolution, capped', () => {
    const cases: [Partial<GanSpec>, object][] = [
      [
        { size: 28 },
        { s0: 7, sides: [7, 14, 28], gWidths: [128, 64, 64], dWidths: [128, 64, 64], labelDim: 64 },
      ],
      [
        { size: 32 },
        { s0: 4, sides: [4, 8, 16, 32], gWidths: [256, 128, 64, 64], dWidths: [256, 128, 64, 64] },
      ],
      [
        { size: 64, gWidth: 32, dWidth: 16 },
        { s0: 4, sides: [4, 8, 16, 32, 64], gWidths: [256, 128, 64, 32, 32], dWidths: [128, 64, 32, 16, 16] },
      ],
      [{ size: 128 }, { s0: 4, gWidths: [512, 512, 256, 128, 64, 64] }],
      [
        { size: 64, family: 'dcgan', zDim: 32 },
        { gWidths: [256, 256, 128, 64, 64], labelDim: 0 },
      ],
    ];
    for (const [partial, expected] of cases) {
      const plan = ganPlan(defaultGanSpec(partial));
      assert.deepEqual({ ...plan, ...expected }, plan, JSON.stringify(partial));
    }
  });

  test('parameter counts of the default 28 px two-class cgan (G ≈ 1.41 M, D ≈ 0.20 M)', () => {
    const net = buildGan(defaultGanSpec());
    // G: label embedding 2·64, dense 192·7·7·128 (no bias) + BN, transposed convs 4·4·128·64 and 4·4·64·64
    // (no bias) + BN, output conv 3·3·64·1 + 1.
    const g = 2 * 64 + 192 * 6272 + 2 * 6272 + 16 * 128 * 64 + 2 * 64 + 16 * 64 * 64 + 2 * 64 + 9 * 64 + 1;
    // D: conv 3·3·1·64, down 4·4·64·64 and 4·4·64·128 (with biases), dense 128 + 1, projection 2·128.
    const d = 9 * 64 + 64 + 16 * 64 * 64 + 64 + 16 * 64 * 128 + 128 + 128 + 1 + 2 * 128;
    assert.equal(parameterCount(net.G), g);
    assert.equal(parameterCount(net.D), d);
    assert.equal(g, 1_414_337);
    assert.equal(d, 197_825);
    disposeNet(net);
  });

  test('models are named G and D, every layer and weight deterministically', () => {
    const spec = tinySpec();
    const a = buildGan(spec);
    const b = buildGan(spec);
    assert.equal(a.G.name, 'G');
    assert.equal(a.D.name, 'D');
    for (const key of ['G', 'D'] as const) {
      const names = a[key].weights.map((w) => w.originalName);
      assert.equal(new Set(names).size, names.length, `duplicate weight names in ${key}`);
      assert.deepEqual(
        b[key].weights.map((w) => w.originalName),
        names,
      );
      assert.deepEqual(
        b[key].layers.map((l) => l.name),
        a[key].layers.map((l) => l.name),
      );
    }
    const dNames = a.D.weights.map((w) => w.originalName);
    for (const name of [
      'd_conv0/kernel',
      'd_conv0/sn_u',
      'd_down2_conv/kernel',
      'd_out/kernel',
      'd_proj_embed/embeddings',
    ])
      assert.ok(dNames.includes(name), `D lacks ${name}`);
    const gNames = a.G.weights.map((w) => w.originalName);
    for (const name of [
      'g_label_embed/embeddings',
      'g_dense0/kernel',
      'g_bn0/moving_mean',
      'g_up1_conv/kernel',
    ])
      assert.ok(gNames.includes(name), `G lacks ${name}`);
    disposeNet(a);
    disposeNet(b);
  });

  test('spectralNorm: false builds D without sn_u weights', () => {
    const net = buildGan(tinySpec({ spectralNorm: false }));
    assert.ok(net.D.weights.every((w) => !w.originalName.endsWith('/sn_u')));
    assert.equal(net.D.nonTrainableWeights.length, 0);
    disposeNet(net);
  });
});

describe('output shapes', () => {
  const families: { family: GanFamily; conditioning?: 'projection' | 'concat' }[] = [
    { family: 'dcgan' },
    { family: 'cgan', conditioning: 'projection' },
    { family: 'cgan', conditioning: 'concat' },
    { family: 'acgan' },
  ];
  const geometries: { size: GanSize; channels: 1 | 3; families: typeof families }[] = [
    { size: 28, channels: 1, families },
    { size: 28, channels: 3, families },
    { size: 64, channels: 1, families },
    { size: 64, channels: 3, families },
    { size: 32, channels: 3, families: [{ family: 'cgan', conditioning: 'projection' }] },
    { size: 128, channels: 1, families: [{ family: 'acgan' }] },
  ];
  for (const { size, channels, families: fams } of geometries) {
    for (const f of fams) {
      const label = `${f.family}${f.conditioning ? `/${f.conditioning}` : ''} ${size}×${size}×${channels}`;
      test(label, () => {
        const spec = tinySpec({ size, channels, ...f });
        const net = buildGan(spec);
        const n = 3;
        const labels = tf.tensor1d([0, 1, 2], 'int32');
        const z = latents(n, spec.zDim);
        for (const training of [false, true]) {
          tf.tidy(() => {
            const x = runG(net, z, spec.family === 'dcgan' ? null : labels, training);
            assert.deepEqual(x.shape, [n, size, size, channels]);
            assert.equal(x.dtype, 'float32');
            const v = x.dataSync();
            assert.ok(
              v.every((p) => p >= -1 && p <= 1),
              'G output outside [-1, 1]',
            );
            const out = runD(net, x, spec.family === 'cgan' ? labels : null, training);
            assert.deepEqual(out.logits.shape, [n, 1]);
            assert.ok(out.logits.dataSync().every(Number.isFinite));
            if (spec.family === 'acgan') assert.deepEqual(out.classLogits?.shape, [n, spec.numClasses]);
            else assert.equal(out.classLogits, null);
          });
        }
        assert.deepEqual(net.G.inputs.length, spec.family === 'dcgan' ? 1 : 2);
        assert.deepEqual(net.D.inputs.length, spec.family === 'cgan' ? 2 : 1);
        tf.dispose([labels, z]);
        disposeNet(net);
      });
    }
  }

  test('runG / runD reject missing labels and wrong shapes', () => {
    const spec = tinySpec({ family: 'cgan' });
    const net = buildGan(spec);
    const z = latents(2, spec.zDim);
    const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1], 'int32');
    assert.throws(() => runG(net, z, null, false), /runG: family 'cgan' needs labels/);
    assert.throws(() => runD(net, x, null, false), /runD: family 'cgan' needs labels/);
    assert.throws(() => runG(net, latents(2, 5), labels, false), /runG z must have shape \[N, 16\]/);
    assert.throws(
      () => runG(net, z, tf.tensor1d([0, 1, 2], 'int32'), false),
      /runG labels must have shape \[2\]/,
    );
    assert.throws(
      () => runD(net, tf.zeros([2, 32, 32, 1]) as tf.Tensor4D, labels, false),
      /runD x must have shape/,
    );
    tf.dispose([z, x, labels]);
    disposeNet(net);
  });
});

describe('conditioning', () => {
  test('the conditional G depends on the label (cgan and acgan)', () => {
    for (const family of ['cgan', 'acgan'] as const) {
      const spec = tinySpec({ family });
      const net = buildGan(spec);
      const z = tf.tidy(() => tf.tile(latents(1, spec.zDim), [3, 1])) as tf.Tensor2D;
      const labels = tf.tensor1d([0, 1, 2], 'int32');
      const img = values(() => runG(net, z, labels, false));
      const per = img.length / 3;
      assert.ok(maxAbsDiff(img.subarray(0, per), img.subarray(per, 2 * per)) > 1e-3, `${family}: 0 vs 1`);
      assert.ok(maxAbsDiff(img.subarray(per, 2 * per), img.subarray(2 * per)) > 1e-3, `${family}: 1 vs 2`);
      // Same label, same z → same image (the difference comes from the label).
      const again = values(() => runG(net, z, tf.tensor1d([0, 0, 0], 'int32'), false));
      assert.equal(maxAbsDiff(again.subarray(0, per), again.subarray(per, 2 * per)), 0);
      tf.dispose([z, labels]);
      disposeNet(net);
    }
  });

  for (const conditioning of ['projection', 'concat'] as const) {
    test(`the ${conditioning} D depends on the label`, () => {
      const spec = tinySpec({ family: 'cgan', conditioning });
      const net = buildGan(spec);
      const x = tf.tidy(() => tf.tile(tf.randomUniform([1, 28, 28, 1], -1, 1, 'float32', 4), [3, 1, 1, 1]));
      const logits = values(() => runD(net, x as tf.Tensor4D, tf.tensor1d([0, 1, 2], 'int32'), false).logits);
      assert.ok(
        Math.abs(logits[0]! - logits[1]!) > 1e-4 && Math.abs(logits[1]! - logits[2]!) > 1e-4,
        `${logits}`,
      );
      const same = values(() => runD(net, x as tf.Tensor4D, tf.tensor1d([1, 1, 1], 'int32'), false).logits);
      assert.equal(same[0], same[2]);
      x.dispose();
      disposeNet(net);
    });
  }

  test("acgan's D ignores labels and has a class head of K logits", () => {
    const spec = tinySpec({ family: 'acgan', numClasses: 5 });
    const net = buildGan(spec);
    const x = tf.randomUniform([4, 28, 28, 1], -1, 1, 'float32', 5) as tf.Tensor4D;
    tf.tidy(() => {
      const a = runD(net, x, null, false);
      const b = runD(net, x, tf.tensor1d([4, 3, 2, 1], 'int32'), false);
      assert.deepEqual(a.classLogits?.shape, [4, 5]);
      assert.deepEqual(a.logits.dataSync(), b.logits.dataSync());
    });
    assert.deepEqual(
      net.D.outputs.map((o) => o.shape),
      [
        [null, 1],
        [null, 5],
      ],
    );
    x.dispose();
    disposeNet(net);
  });
});

describe('determinism', () => {
  function weightValues(model: tfl.LayersModel): Float32Array[] {
    return model.weights.map((w) => w.read().dataSync() as Float32Array);
  }

  test('the same spec builds bit-identical weights; another seed other weights', () => {
    for (const family of ['dcgan', 'cgan', 'acgan'] as const) {
      const spec = tinySpec({ family, seed: 42 });
      const a = buildGan(spec);
      const b = buildGan({ ...spec });
      const c = buildGan({ ...spec, seed: 43 });
      for (const key of ['G', 'D'] as const) {
        assert.deepEqual(weightValues(b[key]), weightValues(a[key]), `${family} ${key}`);
        // Every random weight differs with the seed; zero/one-initialised ones (biases, BN) do not.
        const va = weightValues(a[key]);
        const vc = weightValues(c[key]);
        const random = a[key].weights
          .map((w, i) => ({ name: w.originalName, i }))
          .filter(({ name }) => /(kernel|embeddings|sn_u)$/.test(name));
        assert.ok(random.length > 0);
        for (const { name, i } of random) assert.notDeepEqual(vc[i], va[i], `${family} ${key} ${name}`);
      }
      // Layers of the same shape get different initial weights (per-layer seeds).
      disposeNet(a);
      disposeNet(b);
      disposeNet(c);
    }
  });

  test('buildGenerator builds the same G as buildGan', () => {
    const spec = tinySpec({ seed: 8 });
    const net = buildGan(spec);
    const G = buildGenerator(spec);
    assert.equal(G.name, 'G');
    assert.deepEqual(
      G.weights.map((w) => w.originalName),
      net.G.weights.map((w) => w.originalName),
    );
    assert.deepEqual(weightValues(G), weightValues(net.G));
    G.dispose();
    disposeNet(net);
  });

  test('same-shaped layers are initialised differently', () => {
    const net = buildGan(tinySpec({ family: 'dcgan', size: 64, gWidth: 8, maxWidth: 8 }));
    const kernels = net.G.weights.filter((w) => /g_up[34]_conv\/kernel/.test(w.originalName));
    assert.equal(kernels.length, 2);
    assert.deepEqual(kernels[0]!.shape, kernels[1]!.shape);
    assert.notDeepEqual(kernels[0]!.read().dataSync(), kernels[1]!.read().dataSync());
    disposeNet(net);
  });

  test('weights restored by name into a second build reproduce the outputs (G / G_ema)', () => {
    const spec = tinySpec({ family: 'cgan', seed: 5 });
    const a = buildGan(spec);
    const b = buildGan({ ...spec, seed: 6 });
    const z = latents(2, spec.zDim, 9);
    const labels = tf.tensor1d([2, 0], 'int32');
    // Move a's weights away from their initial values (batch-norm statistics, u) with training calls.
    tf.tidy(() => {
      runD(a, runG(a, z, labels, true), labels, true);
    });
    for (const key of ['G', 'D'] as const) {
      const byName = new Map(a[key].weights.map((w) => [w.originalName, w.read()]));
      for (const w of b[key].weights) (w.read() as tf.Variable).assign(byName.get(w.originalName)!);
    }
    const x = values(() => runG(a, z, labels, false));
    assert.deepEqual(
      values(() => runG(b, z, labels, false)),
      x,
    );
    const img = tf.tensor4d(x, [2, 28, 28, 1]);
    assert.deepEqual(
      values(() => runD(b, img, labels, false).logits),
      values(() => runD(a, img, labels, false).logits),
    );
    tf.dispose([z, labels, img]);
    disposeNet(a);
    disposeNet(b);
  });
});

describe('serialisation of whole networks', () => {
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

  for (const [family, conditioning] of [
    ['cgan', 'projection'],
    ['cgan', 'concat'],
    ['acgan', 'projection'],
    ['dcgan', 'projection'],
  ] as const) {
    test(`${family}${family === 'cgan' ? `/${conditioning}` : ''}: save then load gives identical outputs`, async () => {
      const spec = tinySpec({ family, conditioning, channels: 3, size: 32 });
      const net = buildGan(spec);
      const z = latents(3, spec.zDim, 3);
      const labels = tf.tensor1d([1, 2, 0], 'int32');
      const lab = family === 'dcgan' ? null : labels;
      const dLab = family === 'cgan' ? labels : null;
      // Training calls first: BN moving statistics and u differ from their initial values.
      tf.tidy(() => {
        runD(net, runG(net, z, lab, true), dLab, true);
      });
      const loaded: GanNetworks = { spec, G: await roundTrip(net.G), D: await roundTrip(net.D) };
      assert.equal(loaded.G.name, 'G');
      assert.equal(loaded.D.name, 'D');
      const x = values(() => runG(net, z, lab, false));
      assert.deepEqual(
        values(() => runG(loaded, z, lab, false)),
        x,
      );
      const img = tf.tensor4d(x, [3, 32, 32, 3]);
      const outputs = (n: GanNetworks) => {
        let result: unknown[] = [];
        tf.tidy(() => {
          const o = runD(n, img, dLab, false);
          result = [o.logits.dataSync(), o.classLogits?.dataSync() ?? null];
        });
        return result;
      };
      assert.deepEqual(outputs(loaded), outputs(net));
      tf.dispose([z, labels, img]);
      disposeNet(net);
      disposeNet(loaded);
    });
  }
});
