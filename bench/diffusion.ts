/**
 * Speed of the diffusion family (`--model ddpm`): training img/s of the denoising step and sampled img/s with
 * DDIM, per image size, on the backend medsynth selects (libtorch when it loads); the time of one denoiser
 * forward pass at the sampling batch (one DDIM step) and the network's convolution MFLOP per image. One JSON
 * line per size, plus `tf.profile` kernel tables of one training step and one sampling forward pass with
 * `--profile`.
 *
 *   npm run bench bench/diffusion.ts -- [--sizes 28,64] [--channels 1] [--width 16] [--mults 1,2,4] [--batch 32] [--steps 5]
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
    width: { type: 'string', default: '16' },
    mults: { type: 'string' },
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
// Without --mults each size gets the family's default levels (unetLevels).
const mults = f.mults === undefined ? null : f.mults.split(',').map((m) => int('mults', m, 1));
const batch = int('batch', f.batch, 1);
const steps = int('steps', f.steps, 1);
const sampleSteps = int('sample-steps', f['sample-steps'], 1);
const sampleBatch = int('sample-batch', f['sample-batch'], 1);
const classes = int('classes', f.classes, 1);
const guidance = Number(f.guidance);

const backend = (await selectBackend()).backend;

type KernelTable = { kernels: number; kernelMs: number; top: [string, number, number][] };

/** Kernel time by kernel name for one call of `fn` (customGrad scopes also count their inner kernels). */
async function kernelTable(fn: () => void): Promise<KernelTable> {
  const p = await tf.profile(fn);
  const by = new Map<string, { ms: number; n: number }>();
  for (const k of p.kernels) {
    const e = by.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += Number(k.kernelTimeMs) || 0;
    e.n++;
    by.set(k.name, e);
  }
  return {
    kernels: p.kernels.length,
    kernelMs: Math.round([...by.values()].reduce((a, b) => a + b.ms, 0)),
    top: [...by.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 12)
      .map(([k, v]) => [k, Math.round(v.ms), v.n]),
  };
}

/** Multiply-adds ×2 of every convolution of one image's forward pass (H_out·W_out·k·k·C_in·C_out·2). */
function convFlops(net: {
  layers: { getClassName(): string; outputShape: unknown; getWeights(): tf.Tensor[] }[];
}): number {
  let flops = 0;
  for (const layer of net.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const out = layer.outputShape as number[];
    const [kh, kw, cin, cout] = layer.getWeights()[0]!.shape;
    flops += 2 * out[1]! * out[2]! * kh! * kw! * cin! * cout!;
  }
  return flops;
}

for (const size of sizes) {
  const options = resolveTrainOptions({
    data: { source: 'bench' },
    model: 'ddpm',
    kimg: 1,
    size,
    gWidth: width,
    unetMults: mults,
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

  // One denoiser forward pass at the sampling batch (what each DDIM step runs), timed and profiled.
  const x = tf.randomNormal([sampleBatch, size, size, channels]) as tf.Tensor4D;
  const t = tf.fill([sampleBatch, 1], 500) as tf.Tensor2D;
  const y = tf.tensor1d(
    Int32Array.from({ length: sampleBatch }, (_, i) => i % classes),
    'int32',
  );
  const forward = () =>
    tf.tidy(() => {
      (trainer.net.apply([x, t, y], { training: false }) as tf.Tensor).dataSync();
    });
  forward();
  const f0 = performance.now();
  for (let i = 0; i < 3; i++) forward();
  const forwardMs = (performance.now() - f0) / 3;

  let profile: { train: KernelTable; sampleForward: KernelTable } | undefined;
  if (f.profile) {
    profile = { train: await kernelTable(step), sampleForward: await kernelTable(forward) };
  }
  tf.dispose([x, t, y]);
  const params = trainer.net.countParams();
  const mflop = Math.round(convFlops(trainer.net) / 1e5) / 10;
  trainer.dispose();
  console.log(
    JSON.stringify({
      bench: 'diffusion',
      backend,
      size,
      channels,
      width,
      mults: spec.unet.mults,
      params,
      batch,
      stepMs: Math.round(stepMs),
      trainImagesPerSecond: Math.round((batch * 1000 * 10) / stepMs) / 10,
      leakedTensorsPerStep: leaked / steps,
      sampleSteps,
      guidance,
      sampleBatch,
      sampledImagesPerSecond: Math.round((sampleBatch / sampleSeconds) * 10) / 10,
      forwardMs: Math.round(forwardMs),
      convMflopPerImage: mflop,
      ...(profile ? { profile } : {}),
    }),
  );
}
