/**
 * Speed of the diffusion family (`--model ddpm`): training img/s of the denoising step and sampled img/s with
 * DDIM, per image size, on the backend medsynth selects (libtorch when it loads). One JSON line per size, plus
 * a `tf.profile` kernel table of one training step with `--profile`.
 *
 *   npm run bench bench/diffusion.ts -- [--sizes 28,64] [--channels 1] [--width 32] [--batch 32] [--steps 5]
 *     [--sample-steps 25] [--sample-batch 64] [--guidance 1] [--classes 2] [--profile]
 *
 * Inputs are random images (speed does not depend on the data); the trainer is the family's own
 * (`DdpmTrainer`), so the numbers include the EMA update and everything a run's step does.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  resolveTrainOptions,
  type TrainOptionsInput,
} from '../packages/medsynth/src/config/train-options.js';
import { sampleImages } from '../packages/medsynth/src/generate/sample.js';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import { Rng } from '../packages/medsynth/src/runtime/random.js';
import { ddpmSpecFor, DdpmTrainer } from '../packages/medsynth/src/training/families/ddpm.js';

const { values: f } = parseArgs({
  options: {
    sizes: { type: 'string', default: '28,64' },
    channels: { type: 'string', default: '1' },
    width: { type: 'string', default: '32' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '5' },
    'sample-steps': { type: 'string', default: '25' },
    'sample-batch': { type: 'string', default: '64' },
    guidance: { type: 'string', default: '1' },
    classes: { type: 'string', default: '2' },
    profile: { type: 'boolean', default: false },
  },
});

function int(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench/diffusion.ts: --${name} must be an integer ≥ ${min}, got ${v}`);
    process.exit(2);
  }
  return n;
}

const sizes = f.sizes.split(',').map((s) => int('sizes', s, 4));
const channels = int('channels', f.channels, 1);
if (channels !== 1 && channels !== 3) {
  console.error('bench/diffusion.ts: --channels must be 1 or 3');
  process.exit(2);
}
const width = int('width', f.width, 2);
const batch = int('batch', f.batch, 1);
const steps = int('steps', f.steps, 1);
const sampleSteps = int('sample-steps', f['sample-steps'], 1);
const sampleBatch = int('sample-batch', f['sample-batch'], 1);
const classes = int('classes', f.classes, 1);
const guidance = Number(f.guidance);

const backend = (await selectBackend()).backend;

for (const size of sizes) {
  const options = resolveTrainOptions({
    data: { source: 'bench' },
    model: 'ddpm',
    kimg: 1,
    size,
    gWidth: width,
    batchSize: batch,
    sampleSteps,
    guidance,
  } as TrainOptionsInput);
  const spec = ddpmSpecFor(options, { channels: channels as 1 | 3, numClasses: classes });
  const trainer = new DdpmTrainer(spec, options);
  const rng = { z: Rng.derive(1, 'z'), augment: Rng.derive(1, 'augment') };
  const data = Rng.derive(1, 'data');
  const draw = (n: number) => ({
    x: tf.tensor4d(
      Float32Array.from({ length: n * size * size * channels }, () => 2 * data.next() - 1),
      [n, size, size, channels],
    ),
    labels: tf.tensor1d(
      Int32Array.from({ length: n }, (_, i) => i % classes),
      'int32',
    ),
  });
  const step = () => trainer.step({ draw, rng, augmentP: 0, progress: 0, imagesSeen: 10_000 });
  for (let i = 0; i < 2; i++) step();
  const tensorsBefore = tf.memory().numTensors;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const stepMs = (performance.now() - t0) / steps;
  const leaked = tf.memory().numTensors - tensorsBefore;

  const sampler = trainer.sampler(Array.from({ length: classes }, (_, i) => `class${i}`));
  const items = Array.from({ length: sampleBatch }, (_, i) => ({ seed: i, label: i % classes }));
  await sampleImages(sampler, items.slice(0, 2));
  const s0 = performance.now();
  await sampleImages(sampler, items);
  const sampleSeconds = (performance.now() - s0) / 1000;

  let profile: { kernels: number; kernelMs: number; top: [string, number, number][] } | undefined;
  if (f.profile) {
    const p = await tf.profile(() => {
      step();
    });
    const by = new Map<string, { ms: number; n: number }>();
    for (const k of p.kernels) {
      const e = by.get(k.name) ?? { ms: 0, n: 0 };
      e.ms += Number(k.kernelTimeMs) || 0;
      e.n++;
      by.set(k.name, e);
    }
    profile = {
      kernels: p.kernels.length,
      kernelMs: Math.round([...by.values()].reduce((a, b) => a + b.ms, 0)),
      top: [...by.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, 12)
        .map(([k, v]) => [k, Math.round(v.ms), v.n]),
    };
  }
  const params = trainer.net.countParams();
  trainer.dispose();
  console.log(
    JSON.stringify({
      bench: 'diffusion',
      backend,
      size,
      channels,
      width,
      params,
      batch,
      stepMs: Math.round(stepMs),
      trainImagesPerSecond: Math.round((batch * 1000 * 10) / stepMs) / 10,
      leakedTensorsPerStep: leaked / steps,
      sampleSteps,
      guidance,
      sampleBatch,
      sampledImagesPerSecond: Math.round((sampleBatch / sampleSeconds) * 10) / 10,
      ...(profile ? { profile } : {}),
    }),
  );
}
