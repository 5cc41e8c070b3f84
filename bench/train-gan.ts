/**
 * GAN training benchmark with a class-fidelity judge: trains (or takes an existing run), then trains a small
 * CNN on the real train split (early stopping on val), reports its real-test accuracy, generates N images per
 * class from the run's G_ema and reports the share the judge labels as their intended class. With
 * --peer-npz, a peer's generated set (bench/peers/cdcgan_pytorch.py) is judged by the same judge.
 *
 *   npm run bench bench/train-gan.ts -- --data ../shared/data/medmnist/pneumoniamnist_28_reconstructed.npz \
 *     --preset medmnist-28 --minutes 8 [--model cgan] [--set key=value …] [--run <dir>] [--peer-npz f.npz]
 *
 * Prints JSON lines: {train…}, {judge…}, {fidelity…}, {peerFidelity…}. Grids stay in the run directory.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { labelledFromSplit } from '../packages/medsynth/src/classify/labelled.js';
import {
  resolveTrainOptions,
  type TrainOptionsInput,
} from '../packages/medsynth/src/config/train-options.js';
import { openDataset } from '../packages/medsynth/src/data/source.js';
import type { ImageArray } from '../packages/medsynth/src/data/types.js';
import { makePlan } from '../packages/medsynth/src/generate/plan.js';
import { generateImages } from '../packages/medsynth/src/generate/sample.js';
import { classFidelity, trainJudge } from '../packages/medsynth/src/metrics/class-fidelity.js';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import type { ProgressEvent } from '../packages/medsynth/src/runtime/progress.js';
import { loadGenerator } from '../packages/medsynth/src/training/load-run.js';
import { trainGan } from '../packages/medsynth/src/training/loop.js';

const { values: f } = parseArgs({
  options: {
    data: { type: 'string' },
    preset: { type: 'string', default: 'medmnist-28' },
    model: { type: 'string' },
    minutes: { type: 'string' },
    kimg: { type: 'string' },
    out: { type: 'string', default: '/tmp/medsynth-bench-runs' },
    run: { type: 'string' },
    'per-class': { type: 'string', default: '500' },
    'peer-npz': { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
    'label-from-filename': { type: 'string' },
    'judge-epochs': { type: 'string', default: '30' },
  },
});

const print = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);
let lastPrint = 0;
const onProgress = (e: ProgressEvent) => {
  if (e.type === 'tick' && e.phase === 'train' && performance.now() - lastPrint > 30_000) {
    lastPrint = performance.now();
    process.stderr.write(`${JSON.stringify({ done: e.done, total: e.total, ...e.stats })}\n`);
  } else if (e.type === 'checkpoint') process.stderr.write(`checkpoint ${e.path}\n`);
};

function concat(batches: ImageArray[]): ImageArray {
  const first = batches[0]!;
  const per = first.height * first.width * first.channels;
  const count = batches.reduce((n, b) => n + b.count, 0);
  const data = new Uint8Array(count * per);
  let o = 0;
  for (const b of batches) {
    data.set(b.data as Uint8Array, o);
    o += b.data.length;
  }
  return { ...first, data, count };
}

const backend = await selectBackend();
let runDir = f.run;
if (!runDir) {
  if (!f.data) throw new Error('--data or --run is required');
  const data: Record<string, unknown> = { source: f.data };
  if (f['label-from-filename']) data['labelFromFilename'] = f['label-from-filename'];
  const input: Record<string, unknown> = { data, preset: f.preset, outDir: f.out };
  if (f.model) input['model'] = f.model;
  if (f.minutes) input['minutes'] = Number(f.minutes);
  if (f.kimg) input['kimg'] = Number(f.kimg);
  for (const kv of f.set ?? []) {
    const [k, v] = kv.split('=') as [string, string];
    input[k] = /^[\d.e-]+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
  }
  const options = resolveTrainOptions(input as TrainOptionsInput);
  const r = await trainGan(options, { onProgress });
  runDir = r.runDir;
  print({
    bench: 'train-gan',
    backend: backend.backend,
    threads: backend.threads,
    data: f.data,
    model: options.model,
    size: options.size,
    batch: options.batchSize,
    runDir,
    stoppedBy: r.stoppedBy,
    steps: r.step,
    kimg: r.kimg,
    seconds: Math.round(r.seconds),
    imagesPerSecond: Math.round(r.imagesPerSecond),
    last: r.last,
  });
}

const { generator, run } = await loadGenerator(runDir);
const { readRunOptions } = await import('../packages/medsynth/src/training/loop.js');
const ds = await openDataset((await readRunOptions(runDir)).data);
const load = { size: run.spec.size, channels: run.spec.channels };
const t0 = performance.now();
const train = await labelledFromSplit(ds.split('train'), load);
const val = await labelledFromSplit(ds.split('val'), load);
const test = await labelledFromSplit(ds.split('test'), load);
const judge = await trainJudge(train, val, { epochs: Number(f['judge-epochs']) });
const realTest = await judge.evaluate(test.images, test.labels);
print({
  judge: 'cnn',
  trainImages: train.images.count,
  epochs: judge.history.length,
  bestEpoch: judge.bestEpoch,
  seconds: Math.round((performance.now() - t0) / 1000),
  realTestAccuracy: realTest.accuracy,
  realTestBalancedAccuracy: realTest.balancedAccuracy,
});

const plan = makePlan({ kind: 'per-class', count: Number(f['per-class']) }, run.classNames);
const batches: ImageArray[] = [];
const labels: number[] = [];
for await (const b of generateImages(generator, plan, { batchSize: 100 })) {
  batches.push(b.images);
  labels.push(...b.labels);
}
const fake = concat(batches);
const fid = await classFidelity(judge, fake, Int32Array.from(labels), test);
print({
  fidelity: fid.accuracy,
  balanced: fid.balancedAccuracy,
  perClass: fid.perClass,
  run: runDir,
  kimg: run.kimg,
});

if (f['peer-npz']) {
  const peer = await openDataset({ source: f['peer-npz'] });
  // Every image of the file, whatever split the loader carves out of it.
  const parts = await Promise.all(peer.splits().map((s) => labelledFromSplit(s, load)));
  const images = concat(parts.map((x) => x.images));
  const peerLabels = Int32Array.from(parts.flatMap((x) => [...x.labels]));
  const pf = await classFidelity(judge, images, peerLabels);
  print({
    peerFidelity: pf.accuracy,
    balanced: pf.balancedAccuracy,
    perClass: pf.perClass,
    npz: f['peer-npz'],
  });
}
generator.dispose();
judge.dispose();
print({ numTensors: tf.memory().numTensors });
