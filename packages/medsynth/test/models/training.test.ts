import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildGan, defaultGanSpec, runD, runG } from '../../src/models/registry.js';
import type { GanFamily, GanNetworks, GanSpec } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

function tinySpec(partial: Partial<GanSpec> = {}): GanSpec {
  return defaultGanSpec({ zDim: 16, gWidth: 8, dWidth: 8, maxWidth: 32, numClasses: 3, ...partial });
}

/** The tf.Variables behind a model's trainable weights (`LayerVariable.read()` is the variable itself). */
function variablesOf(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

function snapshot(model: tfl.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, w.read().dataSync().slice() as Float32Array]));
}

interface Fixture {
  net: GanNetworks;
  real: tf.Tensor4D;
  labels: tf.Tensor1D;
  z: tf.Tensor2D;
  dLabels: tf.Tensor1D | null;
  gLabels: tf.Tensor1D | null;
  dispose(): void;
}

function fixture(family: GanFamily, partial: Partial<GanSpec> = {}): Fixture {
  const spec = tinySpec({ family, ...partial });
  const net = buildGan(spec);
  const n = 4;
  const real = tf.randomUniform([n, spec.size, spec.size, spec.channels], -1, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
  const z = tf.randomNormal([n, spec.zDim], 0, 1, 'float32', 2) as tf.Tensor2D;
  return {
    net,
    real,
    labels,
    z,
    gLabels: family === 'dcgan' ? null : labels,
    dLabels: family === 'cgan' ? labels : null,
    dispose() {
      tf.dispose([real, labels, z]);
      net.G.dispose();
      net.D.dispose();
    },
  };
}

/** Hinge D loss (+ the class loss for acgan) on a real batch and G's fakes. */
function dLoss(f: Fixture): tf.Scalar {
  const fake = runG(f.net, f.z, f.gLabels, true);
  const r = runD(f.net, f.real, f.dLabels, true);
  const g = runD(f.net, fake, f.dLabels, true);
  let loss = tf.add(tf.mean(tf.relu(tf.sub(1, r.logits))), tf.mean(tf.relu(tf.add(1, g.logits))));
  if (r.classLogits)
    loss = tf.add(
      loss,
      tf.losses.softmaxCrossEntropy(tf.oneHot(f.labels, f.net.spec.numClasses), r.classLogits),
    );
  return loss as tf.Scalar;
}

function gLoss(f: Fixture): tf.Scalar {
  return tf.neg(tf.mean(runD(f.net, runG(f.net, f.z, f.gLabels, true), f.dLabels, true).logits));
}

describe('one optimizer step', () => {
  for (const family of ['dcgan', 'cgan', 'acgan'] as const) {
    test(`${family}: an Adam step on D changes D's trainable weights and u, not G's weights`, () => {
      const f = fixture(family);
      const opt = tf.train.adam(1e-3, 0.5, 0.999, 1e-8);
      const dBefore = snapshot(f.net.D);
      const gBefore = snapshot(f.net.G);
      const loss = tf.tidy(() => opt.minimize(() => dLoss(f), true, variablesOf(f.net.D))!);
      assert.ok(Number.isFinite(loss.dataSync()[0]));
      loss.dispose();
      for (const w of f.net.D.weights) {
        assert.notDeepEqual(
          w.read().dataSync(),
          dBefore.get(w.originalName),
          `D ${w.originalName} unchanged`,
        );
      }
      for (const w of f.net.G.trainableWeights) {
        assert.deepEqual(w.read().dataSync(), gBefore.get(w.originalName), `G ${w.originalName} changed`);
      }
      opt.dispose();
      f.dispose();
    });
  }

  test('a G step through D changes G only (D trainable weights fixed)', () => {
    const f = fixture('cgan', { conditioning: 'concat' });
    const opt = tf.train.adam(1e-3, 0.5);
    const dBefore = snapshot(f.net.D);
    const gBefore = snapshot(f.net.G);
    tf.tidy(() => {
      opt.minimize(() => gLoss(f), false, variablesOf(f.net.G));
    });
    for (const w of f.net.G.trainableWeights)
      assert.notDeepEqual(w.read().dataSync(), gBefore.get(w.originalName), `G ${w.originalName} unchanged`);
    for (const w of f.net.D.trainableWeights)
      assert.deepEqual(w.read().dataSync(), dBefore.get(w.originalName), `D ${w.originalName} changed`);
    opt.dispose();
    f.dispose();
  });

  test('second-order gradients through D (R1 penalty) train D', () => {
    const f = fixture('cgan');
    const opt = tf.train.adam(1e-3, 0.5);
    const before = snapshot(f.net.D);
    tf.tidy(() => {
      opt.minimize(
        () => {
          const grad = tf.grad((x: tf.Tensor) =>
            tf.sum(runD(f.net, x as tf.Tensor4D, f.dLabels, true).logits),
          );
          return tf.mean(tf.sum(tf.square(grad(f.real)), [1, 2, 3]));
        },
        false,
        variablesOf(f.net.D),
      );
    });
    for (const w of f.net.D.trainableWeights.filter((v) => v.originalName.endsWith('kernel')))
      assert.notDeepEqual(w.read().dataSync(), before.get(w.originalName), `${w.originalName} unchanged`);
    opt.dispose();
    f.dispose();
  });
});

describe('no leaks', () => {
  for (const family of ['dcgan', 'cgan', 'acgan'] as const) {
    test(`${family}: runG / runD in tf.tidy leave tf.memory().numTensors unchanged (training and not)`, () => {
      const f = fixture(family);
      const call = (training: boolean) =>
        tf.tidy(() => {
          const x = runG(f.net, f.z, f.gLabels, training);
          const out = runD(f.net, x, f.dLabels, training);
          return out.classLogits ? tf.add(tf.sum(out.logits), tf.sum(out.classLogits)) : tf.sum(out.logits);
        });
      for (const training of [true, false]) {
        call(training).dispose(); // warm-up
        const n = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) call(training).dispose();
        assert.equal(tf.memory().numTensors, n, `training=${training}`);
      }
      f.dispose();
    });
  }

  test('D and G optimizer steps leave tf.memory().numTensors unchanged after a warm-up', () => {
    const f = fixture('cgan');
    const dOpt = tf.train.adam(1e-4, 0.5);
    const gOpt = tf.train.adam(1e-4, 0.5);
    const step = () => {
      tf.tidy(() => {
        dOpt.minimize(() => dLoss(f), false, variablesOf(f.net.D));
      });
      tf.tidy(() => {
        gOpt.minimize(() => gLoss(f), false, variablesOf(f.net.G));
      });
    };
    step();
    const n = tf.memory().numTensors;
    step();
    step();
    assert.equal(tf.memory().numTensors, n);
    dOpt.dispose();
    gOpt.dispose();
    f.dispose();
  });

  test('dispose frees every weight of both networks', () => {
    const n = tf.memory().numTensors;
    const net = buildGan(tinySpec());
    assert.ok(tf.memory().numTensors > n);
    net.G.dispose();
    net.D.dispose();
    assert.equal(tf.memory().numTensors, n);
  });
});
