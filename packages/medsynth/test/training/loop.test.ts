import type { AdversarialSpec } from '../../src/models/registry.js';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/runtime/backend.js';
import { CheckpointError, TrainingError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import { findCheckpoint, loadCheckpoint, disposeWeightSets } from '../../src/training/checkpoint.js';
import { GanTrainer } from '../../src/training/gan-step.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { ganSpecFor, resumeGan, trainGan } from '../../src/training/loop.js';
import { BatchSampler, loadRealSet } from '../../src/training/real-data.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

let out: string;

before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-train-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

const tiny = tinyTrainOptions(() => ({ outDir: out, kimg: 0.128, tickKimg: 0.064 }));

/** Every weight of a checkpoint's groups as plain arrays (for exact comparisons). */
async function checkpointValues(runDir: string): Promise<Map<string, Float32Array>> {
  const ckpt = await loadCheckpoint(await findCheckpoint(runDir));
  const values = new Map<string, Float32Array>();
  for (const [group, map] of Object.entries(ckpt.weights)) {
    for (const [name, t] of Object.entries(map)) values.set(`${group}:${name}`, t.dataSync() as Float32Array);
  }
  disposeWeightSets(ckpt.weights);
  return values;
}

describe('GAN steps', () => {
  for (const model of ['dcgan', 'cgan', 'acgan'] as const) {
    test(`${model}: D and G steps change their own weights only, and leak no tensors`, async () => {
      const options = tiny({
        model,
        r1Gamma: model === 'cgan' ? 1 : 0,
        r1Interval: 2,
        augment: 'diffaugment',
      });
      const real = await loadRealSet(options.data, 28, 'auto');
      const trainer = new GanTrainer(options, ganSpecFor(options, real) as AdversarialSpec);
      const sampler = new BatchSampler(real, false);
      const rng = { z: new Rng(1), augment: new Rng(2) };
      const data = new Rng(3);
      const snapshot = (vars: tf.Variable[]) => vars.map((v) => Array.from(v.dataSync()));
      try {
        const step = () => {
          const b = sampler.batch(16, data);
          const dBefore = snapshot(trainer.dVars);
          const gBefore = snapshot(trainer.gVars);
          const d = trainer.dStep(b.x, b.labels, 1, rng);
          const dMid = snapshot(trainer.dVars);
          assert.deepEqual(snapshot(trainer.gVars), gBefore, 'the D step leaves G alone');
          const g = trainer.gStep(b.labels, 1, rng, 16);
          assert.deepEqual(snapshot(trainer.dVars), dMid, 'the G step leaves D alone');
          assert.notDeepEqual(dMid, dBefore, 'D moved');
          assert.notDeepEqual(snapshot(trainer.gVars), gBefore, 'G moved');
          tf.dispose([b.x, b.labels]);
          assert.ok(Number.isFinite(d.loss) && Number.isFinite(g));
          return d;
        };
        const first = step(); // warm-up: optimizer slots are created here
        if (model === 'cgan') assert.ok(first.penalty !== null && first.penalty > 0, 'R1 on step 0');
        const n0 = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) step();
        assert.equal(tf.memory().numTensors, n0, 'tensor count stable across steps');
      } finally {
        trainer.dispose();
      }
    });
  }
});

describe('training loop', () => {
  test('writes a numbered run directory with options, stats, grids and checkpoints; stops at kimg', async () => {
    const o = tiny({ keepCheckpoints: 1 });
    const r = await trainGan(o);
    assert.match(r.runDir, /\/\d{5}-cgan-pneumoniamnist-28$/);
    assert.equal(r.stoppedBy, 'kimg');
    assert.equal(r.kimg, 0.128);
    assert.equal(r.step, 8);
    const files = await readdir(r.runDir);
    for (const f of [
      'options.json',
      'run.json',
      'stats.jsonl',
      'reals.png',
      'samples',
      'checkpoints',
      'result.json',
    ]) {
      assert.ok(files.includes(f), `${f} in ${files.join(',')}`);
    }
    const stats = (await readFile(join(r.runDir, 'stats.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      stats.map((s: { step: number }) => s.step),
      [4, 8],
    );
    const ckpts = (await readdir(join(r.runDir, 'checkpoints'))).sort();
    assert.deepEqual(ckpts, ['latest.json', 'step-0000008'], 'old checkpoints pruned to keepCheckpoints');
    const png = await readFile(join(r.runDir, 'samples', 'latest.png'));
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    const again = await trainGan(o);
    const n = (p: string) => Number(/(\d{5})-/.exec(p)![1]);
    assert.equal(n(again.runDir), n(r.runDir) + 1, 'next run gets the next number');
  });

  test('resume continues exactly: bit-identical to an uninterrupted run', async () => {
    const base = {
      augment: 'ada',
      adaInterval: 1,
      adaSpeedKimg: 0.05,
      loss: 'hinge',
      gLr: 2e-4,
      dLr: 2e-4,
      r1Gamma: 0.5,
      r1Interval: 3,
    } as const;
    const full = await trainGan(tiny({ ...base, kimg: 0.256 }));
    const half = await trainGan(tiny({ ...base, kimg: 0.128 }));
    const resumed = await resumeGan(half.runDir, { kimg: 0.256 });
    assert.equal(resumed.step, full.step);
    const a = await checkpointValues(full.runDir);
    const b = await checkpointValues(resumed.runDir);
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${k} differs after resume`);
    const statsA = (await readFile(join(full.runDir, 'stats.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const statsB = (await readFile(join(resumed.runDir, 'stats.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      statsB.map((s: { step: number }) => s.step),
      statsA.map((s: { step: number }) => s.step),
    );
    assert.deepEqual(
      statsB.map((s: { augmentP: number }) => s.augmentP),
      statsA.map((s: { augmentP: number }) => s.augmentP),
    );
    assert.ok(statsA.at(-1).augmentP !== 0, 'ADA moved p, so its state was part of the resume');
  });

  test('a NaN loss stops the run with a TrainingError and keeps the last good checkpoint', async () => {
    const r = await trainGan(tiny({ kimg: 0.064 }));
    const dir = await findCheckpoint(r.runDir);
    // Poison D's weights in the checkpoint: the next D loss is NaN.
    const bin = join(dir, 'D.bin');
    const buf = await readFile(bin);
    const f = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
    f.fill(Number.NaN);
    await writeFile(bin, new Uint8Array(f.buffer));
    const before = await readdir(join(r.runDir, 'checkpoints'));
    await assert.rejects(resumeGan(r.runDir, { kimg: 0.128 }), (e: unknown) => {
      assert.ok(e instanceof TrainingError, String(e));
      assert.match(e.message, /D loss became NaN at step 5/);
      assert.ok(e.message.includes(dir), 'names the checkpoint kept');
      return true;
    });
    assert.deepEqual(
      await readdir(join(r.runDir, 'checkpoints')),
      before,
      'no checkpoint written or removed',
    );
  });

  test('a truncated checkpoint is a CheckpointError naming the file', async () => {
    const r = await trainGan(tiny({ kimg: 0.064 }));
    const dir = await findCheckpoint(r.runDir);
    const bin = join(dir, 'G.bin');
    await writeFile(bin, (await readFile(bin)).subarray(0, 100));
    await assert.rejects(loadGenerator(r.runDir, { ema: false }), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.ok(e.message.includes('G.bin') && /truncated/.test(e.message), e.message);
      return true;
    });
  });

  test('loadGenerator gives G_ema as a sampler whose images match the last grid’s source', async () => {
    const r = await trainGan(tiny({ kimg: 0.064 }));
    const { generator, run } = await loadGenerator(r.runDir);
    try {
      assert.equal(run.network, 'G_ema');
      assert.deepEqual(run.classNames, ['0', '1'].length === 2 ? run.classNames : []);
      assert.equal(run.step, r.step);
      assert.equal(generator.size, 28);
      assert.equal(generator.channels, 1);
      const n0 = tf.memory().numTensors;
      const x = tf.tidy(() =>
        generator.generate(tf.randomNormal([3, generator.zDim]), tf.tensor1d([0, 1, 0], 'int32')),
      );
      assert.deepEqual(x.shape, [3, 28, 28, 1]);
      const v = x.dataSync();
      assert.ok(v.every((p) => p >= -1 && p <= 1));
      x.dispose();
      assert.equal(tf.memory().numTensors, n0);
    } finally {
      generator.dispose();
    }
  });
});
