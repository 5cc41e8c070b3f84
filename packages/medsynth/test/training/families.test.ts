// The generator-family contract, checked the same way for every family through the one loop: shapes, no
// tensor leaks per step, save → load → the same samples, resume = uninterrupted, NaN → a named error, and a
// checkpoint from an unknown family is refused by name.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { MODELS, resolveTrainOptions, type TrainOptionsInput } from '../../src/config/train-options.js';
import { encodePng } from '../../src/data/image/grid.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { CheckpointError, TrainingError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import { disposeWeightSets, findCheckpoint, loadCheckpoint } from '../../src/training/checkpoint.js';
import { generatorFamily } from '../../src/training/families/index.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { ganSpecFor, resumeGan, sampleGrid, trainGan } from '../../src/training/loop.js';
import { BatchSampler, loadRealSet } from '../../src/training/real-data.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

let out: string;
before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-families-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

function tiny(model: (typeof MODELS)[number], extra: Partial<TrainOptionsInput> = {}) {
  return resolveTrainOptions({
    data: { source: PNEUMONIA },
    preset: 'tiny',
    model,
    outDir: out,
    kimg: 0.128,
    tickKimg: 0.064,
    // Grow within the short run (pggan): the resume point falls mid-schedule.
    growFraction: 0.6,
    ...extra,
  } as TrainOptionsInput);
}

async function checkpointValues(runDir: string): Promise<Map<string, Float32Array | Int32Array>> {
  const ckpt = await loadCheckpoint(await findCheckpoint(runDir));
  const values = new Map<string, Float32Array | Int32Array>();
  for (const [group, map] of Object.entries(ckpt.weights)) {
    for (const [name, t] of Object.entries(map)) {
      values.set(`${group}:${name}`, t.dataSync() as Float32Array | Int32Array);
    }
  }
  disposeWeightSets(ckpt.weights);
  return values;
}

async function statsLines(runDir: string): Promise<Record<string, unknown>[]> {
  return (await readFile(join(runDir, 'stats.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

for (const model of MODELS) {
  describe(`family ${model}`, () => {
    test('steps: image shapes, losses finite, tensor count constant from the second step', async () => {
      const options = tiny(model);
      const real = await loadRealSet(options.data, 28, 'auto');
      const family = generatorFamily(model);
      const spec = ganSpecFor(options, real);
      assert.equal(spec.family, model);
      const trainer = family.trainer(spec, options);
      const sampler = new BatchSampler(real, false);
      const rngData = new Rng(1);
      const rng = { z: new Rng(2), augment: new Rng(3) };
      try {
        const counts: number[] = [];
        for (let i = 0; i < 4; i++) {
          const s = trainer.step({
            draw: (n) => sampler.batch(n, rngData),
            rng,
            augmentP: 0,
            progress: 0.9,
            imagesSeen: i * options.batchSize,
          });
          assert.ok(Number.isFinite(s.dLoss) && (s.gLoss === null || Number.isFinite(s.gLoss)));
          assert.equal(s.images, options.batchSize * options.dSteps);
          counts.push(tf.memory().numTensors);
        }
        assert.deepEqual(counts.slice(1), [counts[1], counts[1], counts[1]], `tensors per step ${counts}`);
        const g = trainer.sampler(real.classNames);
        const x = tf.tidy(() => g.generate(tf.randomNormal([3, g.zDim]), tf.tensor1d([0, 1, 0], 'int32')));
        assert.deepEqual(x.shape, [3, 28, 28, 1]);
        x.dispose();
      } finally {
        trainer.dispose();
      }
    });

    test('resume from a mid-run checkpoint is bit-identical to the uninterrupted run', async () => {
      // With LeCam on, whose anchors live in the family state: a resume that lost them would differ.
      const full = await trainGan(tiny(model, { lecam: 0.1 }));
      // The same run stopped at its first checkpoint (same budget, so the same schedules), then resumed.
      const controller = new AbortController();
      const stopped = await trainGan(tiny(model, { lecam: 0.1 }), {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.type === 'checkpoint') controller.abort();
        },
      });
      assert.equal(stopped.stoppedBy, 'aborted');
      assert.ok(stopped.step > 0 && stopped.step < full.step);
      const resumed = await resumeGan(stopped.runDir);
      assert.equal(resumed.step, full.step);
      const a = await checkpointValues(full.runDir);
      const b = await checkpointValues(resumed.runDir);
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
      for (const [k, v] of a) assert.deepEqual(b.get(k), v, `${k} differs after resume`);
      const drop = (s: Record<string, unknown>) => {
        const { seconds: _s, imagesPerSecond: _i, time: _t, rssMiB: _r, numTensors: _n, ...rest } = s;
        return rest;
      };
      assert.deepEqual(
        (await statsLines(resumed.runDir)).map(drop),
        (await statsLines(full.runDir)).map(drop),
      );
    });

    test('save → load: the loaded sampler draws the same grid the live trainer drew', async () => {
      const r = await trainGan(tiny(model, { kimg: 0.064 }));
      const { generator, run } = await loadGenerator(r.runDir);
      try {
        assert.equal(run.spec.family, model);
        const png = await encodePng(await sampleGrid(generator, 4));
        assert.deepEqual(png, await readFile(join(r.runDir, 'samples', 'latest.png')));
      } finally {
        generator.dispose();
      }
    });

    test('a NaN loss stops the run with a TrainingError naming the step and the kept checkpoint', async () => {
      const r = await trainGan(tiny(model, { kimg: 0.064 }));
      const dir = await findCheckpoint(r.runDir);
      // A GAN's D, or the diffusion model's denoiser (its only network).
      const bin = join(dir, model === 'ddpm' ? 'G.bin' : 'D.bin');
      const buf = await readFile(bin);
      const f = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
      f.fill(Number.NaN);
      await writeFile(bin, new Uint8Array(f.buffer));
      await assert.rejects(resumeGan(r.runDir, { kimg: 0.128 }), (e: unknown) => {
        assert.ok(e instanceof TrainingError, String(e));
        const loss = model === 'ddpm' ? 'denoiser' : 'D';
        assert.match(e.message, new RegExp(`${loss} loss became NaN at step ${r.step + 1}`));
        assert.ok(e.message.includes(dir), 'names the checkpoint kept');
        return true;
      });
    });
  });
}

test('a checkpoint of an unknown family is a CheckpointError naming the field', async () => {
  const r = await trainGan(tiny('cgan', { kimg: 0.064 }));
  const dir = await findCheckpoint(r.runDir);
  const file = join(dir, 'checkpoint.json');
  const json = JSON.parse(await readFile(file, 'utf8')) as { spec: { family: string } };
  json.spec.family = 'biggan';
  await writeFile(file, JSON.stringify(json));
  await assert.rejects(loadGenerator(r.runDir), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.match(e.message, /unknown generator family/);
    assert.match(e.message, /spec\.family/);
    assert.match(e.message, /biggan/);
    return true;
  });
});

test('a malformed family state is a CheckpointError naming the field and what it holds', async () => {
  const r = await trainGan(tiny('cgan', { kimg: 0.064, lecam: 0.1 }));
  const dir = await findCheckpoint(r.runDir);
  const file = join(dir, 'checkpoint.json');
  const json = JSON.parse(await readFile(file, 'utf8')) as { family: { lecam: { real: unknown } } };
  assert.equal(typeof json.family.lecam.real, 'number', 'the LeCam anchors are saved');
  json.family.lecam.real = 'high';
  await writeFile(file, JSON.stringify(json));
  await assert.rejects(resumeGan(r.runDir, { kimg: 0.128 }), (e: unknown) => {
    assert.ok(e instanceof CheckpointError, String(e));
    assert.match(e.message, /family state is not valid/);
    assert.match(e.message, /family\.lecam\.real/);
    assert.match(e.message, /"high"/);
    return true;
  });
});
