/**
 * Options against conditional collapse: transitional conditioning (a λ ramp on the class information) and the
 * mode-seeking term, checked against hand-computed values, for leaks, and for exact resume.
 */
import type { AdversarialSpec } from '../../src/models/registry.js';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { ConditionScale, MinibatchStdDev } from '../../src/models/layers.js';
import { buildGan, runD, runG } from '../../src/models/registry.js';
import type { GanSpec } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { Rng } from '../../src/runtime/random.js';
import { disposeWeightSets, findCheckpoint, loadCheckpoint } from '../../src/training/checkpoint.js';
import { GanTrainer, modeSeekingLoss } from '../../src/training/gan-step.js';
import { conditionStrength, ganSpecFor, resumeGan, trainGan } from '../../src/training/loop.js';
import { BatchSampler, loadRealSet } from '../../src/training/real-data.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

let out: string;

before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-collapse-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

const tiny = tinyTrainOptions(() => ({ outDir: out, kimg: 0.256, tickKimg: 0.064 }));

const SPEC: GanSpec = {
  family: 'cgan',
  size: 28,
  channels: 1,
  numClasses: 2,
  zDim: 8,
  gWidth: 4,
  dWidth: 4,
  maxWidth: 8,
  conditioning: 'projection',
  spectralNorm: true,
  seed: 3,
  transitional: true,
};

describe('transitional conditioning', () => {
  test('λ: 0 before start, linear to 1 at end, 1 after; always 1 without a ramp', () => {
    const ramp = [0.2, 0.6] as const;
    const cases: [number, number][] = [
      [0, 0],
      [0.2, 0],
      [0.3, 0.25],
      [0.4, 0.5],
      [0.5, 0.75],
      [0.6, 1],
      [0.9, 1],
    ];
    for (const [p, l] of cases) assert.ok(Math.abs(conditionStrength(ramp, p) - l) < 1e-12, `${p} → ${l}`);
    assert.equal(conditionStrength([0.5, 0.5], 0.49), 0);
    assert.equal(conditionStrength([0.5, 0.5], 0.5), 1);
    assert.equal(conditionStrength(null, 0), 1);
  });

  for (const conditioning of ['projection', 'concat'] as const) {
    test(`${conditioning}: at λ = 0 neither G nor D sees the label; at λ = 1 both do`, () => {
      const net = buildGan({ ...SPEC, conditioning });
      const scales = [...net.G.layers, ...net.D.layers].filter((l) => l instanceof ConditionScale);
      assert.equal(scales.length, 2, 'one scale in G, one in D');
      const z = tf.randomNormal([3, SPEC.zDim], 0, 1, 'float32', 1) as tf.Tensor2D;
      const x = tf.randomUniform([3, 28, 28, 1], -1, 1, 'float32', 2) as tf.Tensor4D;
      const y0 = tf.tensor1d([0, 0, 0], 'int32');
      const y1 = tf.tensor1d([1, 1, 1], 'int32');
      const gap = (strength: number) => {
        for (const s of scales) (s as ConditionScale).setStrength(strength);
        return tf.tidy(() => {
          const g = tf.max(tf.abs(tf.sub(runG(net, z, y0, false), runG(net, z, y1, false))));
          const d = tf.max(tf.abs(tf.sub(runD(net, x, y0, false).logits, runD(net, x, y1, false).logits)));
          return [g.dataSync()[0]!, d.dataSync()[0]!];
        });
      };
      try {
        assert.deepEqual(gap(0), [0, 0]);
        const [g, d] = gap(1);
        assert.ok(g! > 1e-4 && d! > 1e-6, `label changes the outputs at λ = 1 (G ${g}, D ${d})`);
      } finally {
        tf.dispose([z, x, y0, y1]);
        net.G.dispose();
        net.D.dispose();
      }
    });
  }

  test('a transitional run starts unconditional, reaches λ = 1, saves λ, and resumes bit for bit', async () => {
    const base = { condRamp: [0.25, 0.75] as [number, number], modeSeeking: 1 };
    const full = await trainGan(tiny(base));
    // The same run stopped after its second checkpoint (same budget, so the same λ schedule), then resumed.
    const controller = new AbortController();
    let checkpoints = 0;
    const stopped = await trainGan(tiny(base), {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'checkpoint' && ++checkpoints === 2) controller.abort();
      },
    });
    assert.equal(stopped.stoppedBy, 'aborted');
    const resumed = await resumeGan(stopped.runDir);
    assert.equal(resumed.step, full.step);
    const stats = (dir: string) =>
      readFile(join(dir, 'stats.jsonl'), 'utf8').then((t) =>
        t
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { condLambda: number; gLoss: number }),
      );
    const a = await stats(full.runDir);
    const b = await stats(resumed.runDir);
    assert.deepEqual(
      b.map((s) => s.condLambda),
      a.map((s) => s.condLambda),
    );
    assert.deepEqual(
      b.map((s) => s.gLoss),
      a.map((s) => s.gLoss),
    );
    assert.ok(a[0]!.condLambda < 0.25, `early ticks nearly unconditional (λ ${a[0]!.condLambda})`);
    assert.equal(a.at(-1)!.condLambda, 1);
    const ca = await loadCheckpoint(await findCheckpoint(full.runDir));
    const cb = await loadCheckpoint(await findCheckpoint(resumed.runDir));
    try {
      for (const group of ['G', 'D', 'G_ema'] as const) {
        for (const [name, t] of Object.entries(ca.weights[group]!)) {
          assert.deepEqual(cb.weights[group]![name]!.dataSync(), t.dataSync(), `${group} ${name}`);
        }
      }
      assert.equal(ca.weights.G_ema!['g_cond_scale/lambda']!.dataSync()[0], 1);
      assert.equal(ca.weights.D!['d_cond_scale/lambda']!.dataSync()[0], 1);
    } finally {
      disposeWeightSets(ca.weights);
      disposeWeightSets(cb.weights);
    }
  });
});

describe('mode seeking', () => {
  test('1 / (mean|G(z1) − G(z2)| / mean|z1 − z2| + ε), by hand', () => {
    const images = tf.tensor4d([0, 1, 2, 3, 1, 1, 4, 3], [4, 1, 2, 1]); // pairs (0,2) and (1,3)
    const z = tf.tensor2d([0, 0, 1, 1, 2, 0, 1, 3], [4, 2]);
    // |img0 − img2| = |0−1|,|1−1| = 1, 0; |img1 − img3| = |2−4|,|3−3| = 2, 0 → mean 0.75.
    // |z0 − z2| = 2, 0; |z1 − z3| = 0, 2 → mean 1. Loss = 1 / (0.75 + 1e-5).
    const loss = modeSeekingLoss(images, z, 2);
    assert.ok(Math.abs(loss.dataSync()[0]! - 1 / (0.75 + 1e-5)) < 1e-5);
    tf.dispose([images, z, loss]);
  });

  test('G steps with the term pair labels, train G only and leak no tensors', async () => {
    const options = tiny({ modeSeeking: 1, condRamp: [0, 0.5] });
    const real = await loadRealSet(options.data, 28, 'auto');
    const trainer = new GanTrainer(options, ganSpecFor(options, real) as AdversarialSpec);
    const sampler = new BatchSampler(real, false);
    const rng = { z: new Rng(1), augment: new Rng(2) };
    const data = new Rng(3);
    try {
      assert.equal(trainer.conditionStrength, 0, 'a fresh transitional trainer starts at λ = 0');
      const step = () => {
        const b = sampler.batch(16, data);
        trainer.dStep(b.x, b.labels, 0, rng);
        const d = trainer.dVars.map((v) => Array.from(v.dataSync()));
        const g = trainer.gStep(b.labels, 0, rng, 16);
        assert.deepEqual(
          trainer.dVars.map((v) => Array.from(v.dataSync())),
          d,
        );
        tf.dispose([b.x, b.labels]);
        assert.ok(Number.isFinite(g));
      };
      step();
      trainer.setConditionStrength(0.5);
      const n0 = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) step();
      assert.equal(tf.memory().numTensors, n0);
    } finally {
      trainer.dispose();
    }
  });
});

describe('minibatch standard deviation', () => {
  // Four samples of 1×1×2 features; classes 0, 0, 1, 1.
  const h = () => tf.tensor4d([0, 0, 2, 4, 1, 1, 1, 3], [4, 1, 1, 2]);

  test('within each class, by hand', () => {
    // Class 0: features (0,0), (2,4) → σ = (1, 2) → 1.5. Class 1: (1,1), (1,3) → σ = (√1e-8, 1) → 0.50005.
    const layer = new MinibatchStdDev({ numClasses: 2 });
    const x = h();
    const y = tf.tensor1d([0, 0, 1, 1], 'int32');
    const out = layer.apply([x, y]) as tf.Tensor;
    assert.deepEqual(out.shape, [4, 1, 1, 3]);
    const v = Array.from(out.dataSync());
    assert.deepEqual(
      v.filter((_, i) => i % 3 !== 2),
      [0, 0, 2, 4, 1, 1, 1, 3],
      'features pass through',
    );
    const s = v.filter((_, i) => i % 3 === 2);
    const want = [1.5, 1.5, (1e-4 + 1) / 2, (1e-4 + 1) / 2];
    s.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-5, `sample ${i}: ${x} vs ${want[i]}`));
    tf.dispose([x, y, out]);
  });

  test('over the batch without labels, by hand', () => {
    // σ over all four: feature 0 √0.5, feature 1 √2.5 → mean 1.144123.
    const layer = new MinibatchStdDev();
    const x = h();
    const out = layer.apply(x) as tf.Tensor;
    const s = Array.from(out.dataSync()).filter((_, i) => i % 3 === 2);
    const want = (Math.sqrt(0.5) + Math.sqrt(2.5)) / 2;
    for (const v of s) assert.ok(Math.abs(v - want) < 1e-5, `${v} vs ${want}`);
    tf.dispose([x, out]);
  });

  test('a cgan with minibatchStd trains (gradients flow through the grouped statistic) and saves', async () => {
    const r = await trainGan(tiny({ minibatchStd: true, kimg: 0.064 }));
    const ckpt = await loadCheckpoint(await findCheckpoint(r.runDir));
    try {
      assert.equal((ckpt.state.spec as { minibatchStd?: boolean }).minibatchStd, true);
      // D's pooled features are one wider than the last block: d_out's kernel has 1 more row.
      const kernel = ckpt.weights.D!['d_out/kernel']!;
      const last = ckpt.weights.D!['d_down2_conv/kernel']!;
      assert.equal(kernel.shape[0], last.shape[3]! + 1);
    } finally {
      disposeWeightSets(ckpt.weights);
    }
  });
});
