// The diffusion family beyond the shared family contract (families.test.ts): the denoising loss falls on real
// data, an image depends on its seed alone (not on the batch it is drawn in) with deterministic and
// stochastic DDIM, guidance changes conditional samples, sampling leaks no tensors, the spec is checked by
// field, and `--model ddpm` gets the diffusion defaults over a GAN preset.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveTrainOptions, type TrainOptionsInput } from '../../src/config/train-options.js';
import { sampleImages } from '../../src/generate/sample.js';
import { diffusionSampler } from '../../src/models/diffusion/sampler.js';
import { buildUNet } from '../../src/models/diffusion/unet.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import {
  assignWeights,
  disposeWeightSets,
  findCheckpoint,
  loadCheckpoint,
} from '../../src/training/checkpoint.js';
import { checkDdpmSpec, type DdpmSpec, ddpmSpecFor, DdpmTrainer } from '../../src/training/families/ddpm.js';
import type { SamplerSettings } from '../../src/training/family.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { trainGan } from '../../src/training/loop.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

let out: string;
let runDir: string;
before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-ddpm-'));
  // One short run shared by the sampling tests (width 8, 0.5 kimg at a high rate).
  runDir = (await trainGan(options({ kimg: 0.512, tickKimg: 0.128, gLr: 2e-3 }))).runDir;
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

function options(extra: Partial<TrainOptionsInput> = {}) {
  return resolveTrainOptions({
    data: { source: PNEUMONIA },
    preset: 'tiny',
    model: 'ddpm',
    outDir: out,
    gWidth: 8,
    sampleSteps: 5,
    ...extra,
  } as TrainOptionsInput);
}

test('the denoising loss falls over a short run on real images', async () => {
  const lines = (await readFile(join(runDir, 'stats.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { dLoss: number; gLoss: number | null });
  assert.ok(lines.length >= 3, `${lines.length} ticks`);
  assert.equal(lines[0]!.gLoss, null, 'no generator loss');
  const first = lines[0]!.dLoss;
  const last = lines.at(-1)!.dLoss;
  // E‖ε‖² = 1 for a network that predicts 0 (the U-Net starts there); learning must get well below it.
  assert.ok(first > 0.3 && first < 1.5, `first tick's loss ${first}`);
  assert.ok(last < 0.8 * first, `loss ${first} → ${last}`);
});

test('an image depends on its seed and class only: batches of 1, 3 and 5 agree (η = 0 and η = 1)', async () => {
  const { generator, run } = await loadGenerator(runDir);
  const net = await loadNet(runDir);
  try {
    const spec = run.spec as DdpmSpec;
    const items = [7, 8, 9, 10, 11].map((seed, i) => ({ seed, label: i % 2 }));
    for (const eta of [0, 1]) {
      // η = 0: the run's own sampler (loadGenerator); η = 1: the same network through a second sampler.
      const g =
        eta === 0
          ? generator
          : diffusionSampler(net, spec, { ...spec.sampling, eta }, run.classNames, () => {});
      const all = await sampleImages(g, items);
      const three = await sampleImages(g, items.slice(2));
      const one = await sampleImages(g, items.slice(4));
      const px = all.data.length / 5;
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        // 8-bit pixels: float differences between batch shapes may flip a rounding, never more.
        assert.ok(worst <= 1, `${what} (η = ${eta}): pixels differ by up to ${worst}`);
      };
      close(three.data, all.data.slice(2 * px), 'batch of 3 vs 5');
      close(one.data, all.data.slice(4 * px), 'batch of 1 vs 5');
      // Different seeds give different images.
      const a = all.data.slice(0, px);
      const b = all.data.slice(2 * px, 3 * px);
      assert.ok(
        a.some((v, i) => v !== b[i]),
        'seeds 7 and 9 gave the same image',
      );
    }
  } finally {
    generator.dispose();
    net.dispose();
  }
});

/** The run's EMA denoiser as a bare network (for samplers with other settings). */
async function loadNet(dir: string) {
  const ckpt = await loadCheckpoint(await findCheckpoint(dir), ['G_ema']);
  const spec = ckpt.state.spec as unknown as DdpmSpec;
  const net = buildUNet(spec.unet);
  assignWeights(net, ckpt.weights['G_ema']!, ckpt.dir);
  disposeWeightSets(ckpt.weights);
  return net;
}

test('guidance changes conditional samples; sampling leaks no tensors', async () => {
  const net = await loadNet(runDir);
  try {
    const { run } = await loadGenerator(runDir).then((r) => {
      r.generator.dispose();
      return r;
    });
    const spec = run.spec as DdpmSpec;
    const at = (guidance: number) =>
      diffusionSampler(net, spec, { ...spec.sampling, guidance }, run.classNames, () => {});
    const items = [1, 2, 3].map((seed) => ({ seed, label: 1 }));
    const plain = await sampleImages(at(1), items);
    const before = tf.memory().numTensors;
    const guided = await sampleImages(at(3), items);
    assert.equal(tf.memory().numTensors, before, 'tensors left after guided sampling');
    assert.ok(
      plain.data.some((v, i) => v !== guided.data[i]),
      'guidance 3 gave the same images as guidance 1',
    );
  } finally {
    net.dispose();
  }
});

test('a trainer step leaves no tensors behind', () => {
  const o = options({ kimg: 1 });
  const spec = ddpmSpecFor(o, { channels: 1, numClasses: 2 });
  const trainer = new DdpmTrainer(spec, o);
  try {
    const rng = { z: Rng.derive(1, 'z'), augment: Rng.derive(1, 'a') };
    const draw = (n: number) => ({
      x: tf.randomUniform([n, 28, 28, 1], -1, 1) as tf.Tensor4D,
      labels: tf.tensor1d(
        Array.from({ length: n }, (_, i) => i % 2),
        'int32',
      ),
    });
    const step = () => trainer.step({ draw, rng, augmentP: 0, progress: 0, imagesSeen: 0 });
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    assert.equal(tf.memory().numTensors, before);
  } finally {
    trainer.dispose();
  }
});

test('the spec is checked field by field', () => {
  const spec = ddpmSpecFor(options({ kimg: 1 }), { channels: 1, numClasses: 2 });
  assert.equal(spec.zDim, 28 * 28);
  assert.deepEqual(spec.unet.mults, [1, 2, 4]);
  assert.deepEqual(
    ddpmSpecFor(options({ kimg: 1, unetMults: [2, 2] }), { channels: 1, numClasses: 2 }).unet.mults,
    [2, 2],
  );
  // Options the U-Net cannot be built from: a ConfigError naming the option, not a RangeError from deep inside.
  const refused = (patch: Partial<TrainOptionsInput>, field: string, re: RegExp) =>
    assert.throws(
      () => ddpmSpecFor(options({ kimg: 1, ...patch }), { channels: 1, numClasses: 2 }),
      (e: unknown) => e instanceof ConfigError && e.context.field === field && re.test(e.message),
    );
  refused(
    { unetMults: [1, 2, 2, 2] },
    'unetMults',
    /size 28 must be divisible by 8.*\[1, 2, 2, 2\] at 28 px/,
  );
  refused({ gWidth: 12 }, 'gWidth', /not divisible by its 8 groups/);
  const bad = (patch: object, re: RegExp) =>
    assert.throws(() => checkDdpmSpec({ ...spec, ...patch } as DdpmSpec), re);
  bad({ zDim: 100 }, /spec\.zDim must be size²·channels = 784/);
  bad({ sampling: { steps: 2000, eta: 0, guidance: 1 } }, /sampling\.steps \(2000\) exceeds/);
  bad({ sampling: { steps: 10, eta: 2, guidance: 1 } }, /spec\.sampling\.eta/);
  bad({ unet: { ...spec.unet, seed: spec.seed + 1 } }, /spec\.unet\.seed .* differs/);
  bad({ condDropout: -0.5 }, /spec\.condDropout/);
  // An unconditional model always trains on the null class and samples without guidance.
  const uncond = ddpmSpecFor(options({ kimg: 1, guidance: 3 }), { channels: 3, numClasses: 1 });
  assert.equal(uncond.condDropout, 1);
  assert.equal(uncond.sampling.guidance, 1);
  assert.equal(uncond.zDim, 28 * 28 * 3);
});

test('--model ddpm over a GAN preset gets the diffusion defaults; explicit values still win', () => {
  const base = { data: { source: PNEUMONIA }, preset: 'medmnist-28', kimg: 1 } as const;
  const d = resolveTrainOptions({ ...base, model: 'ddpm' });
  assert.equal(d.beta1, 0.9);
  assert.equal(d.beta2, 0.999);
  assert.equal(d.modeSeeking, 0);
  assert.equal(d.augment, 'none');
  const own = resolveTrainOptions({ ...base, model: 'ddpm', beta1: 0.5, modeSeeking: 0.1 });
  assert.equal(own.beta1, 0.5);
  assert.equal(own.modeSeeking, 0.1);
  // The preset's own family keeps the preset's values.
  const c = resolveTrainOptions({ ...base, model: 'cgan' });
  assert.equal(c.beta1, resolveTrainOptions(base).beta1);
  assert.equal(c.modeSeeking, 0.2);
});

test('sampling choices at load time: steps and guidance override the run; out of range and GAN runs refuse by flag', async () => {
  const items = [3, 4].map((seed) => ({ seed, label: 1 }));
  const own = await loadGenerator(runDir);
  const other = await loadGenerator(runDir, { sampling: { steps: 3, guidance: 2 } });
  try {
    const a = await sampleImages(own.generator, items);
    const b = await sampleImages(other.generator, items);
    assert.ok(
      a.data.some((v, i) => v !== b.data[i]),
      '3 steps at guidance 2 gave the images of the run’s 5 steps at guidance 1',
    );
  } finally {
    own.generator.dispose();
    other.generator.dispose();
  }
  const refuses = async (sampling: SamplerSettings, dir: string, re: RegExp, flag: string) =>
    assert.rejects(loadGenerator(dir, { sampling }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, re);
      assert.equal(e.context.field, flag);
      return true;
    });
  await refuses({ steps: 5000 }, runDir, /--sample-steps is out of range/, '--sample-steps');
  await refuses({ eta: 1.5 }, runDir, /--eta is out of range/, '--eta');
  await refuses({ guidance: -1 }, runDir, /--guidance is out of range/, '--guidance');
  const gan = await trainGan(
    resolveTrainOptions({ data: { source: PNEUMONIA }, preset: 'tiny', outDir: out, kimg: 0.032 }),
  );
  await refuses({ guidance: 2 }, gan.runDir, /--guidance applies to diffusion models.*cgan/, '--guidance');
});
