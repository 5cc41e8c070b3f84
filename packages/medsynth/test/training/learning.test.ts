// A short real-data run of every family must move the generator toward the data, per class. The FID-like proxy here is class
// fidelity: a small CNN trained briefly on real images labels the generated images; the untrained generator's
// images are at chance (or one class), the trained one's must carry their class.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { labelledFromSplit } from '../../src/classify/labelled.js';
import { resolveTrainOptions } from '../../src/config/train-options.js';
import { tensorToImages } from '../../src/data/image/tensors.js';
import { openDataset } from '../../src/data/source.js';
import type { ImageArray } from '../../src/data/types.js';
import { classFidelity, trainJudge } from '../../src/metrics/class-fidelity.js';
import { generatorFamily } from '../../src/training/families/index.js';
import type { SamplingGenerator } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { zFromSeed } from '../../src/runtime/random.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { ganSpecFor, trainGan } from '../../src/training/loop.js';
import { loadRealSet } from '../../src/training/real-data.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
let out: string;
before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-learn-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

/** `n` images per class (seeds 1000…) and their intended labels. */
async function samples(generate: SamplingGenerator['generate'], zDim: number, n: number) {
  const labels = Int32Array.from({ length: 2 * n }, (_, i) => (i < n ? 0 : 1));
  const z = new Float32Array(2 * n * zDim);
  for (let i = 0; i < 2 * n; i++) z.set(zFromSeed(1000 + (i % n), zDim), i * zDim);
  const x = tf.tidy(() => generate(tf.tensor2d(z, [2 * n, zDim]), tf.tensor1d(labels, 'int32')));
  const images: ImageArray = await tensorToImages(x);
  x.dispose();
  return { images, labels };
}

for (const model of ['pggan', 'cgan', 'stylegan2'] as const) {
  test(`a short ${model} run on PneumoniaMNIST makes images a real-data classifier labels as their class`, async () => {
    const options = resolveTrainOptions({
      data: { source: PNEUMONIA },
      preset: 'tiny',
      model,
      gWidth: 16,
      dWidth: 16,
      batchSize: 32,
      // pggan: its steps are cheaper (small networks while growing); most of the run at the full size.
      kimg: model === 'pggan' ? 10 : 6,
      tickKimg: 10,
      growFraction: 0.3,
      emaKimg: 0.2,
      outDir: out,
    });
    const ds = await openDataset({ source: PNEUMONIA });
    const judge = await trainJudge(
      await labelledFromSplit(ds.split('train').fraction(1500 / 4708, 7)),
      await labelledFromSplit(ds.split('val')),
      { epochs: 3, seed: 1 },
    );
    try {
      const real = await loadRealSet(options.data, 28, 'auto');
      const spec = ganSpecFor(options, real);
      const untrained = generatorFamily(model).trainer(spec, options);
      const pre = await samples(untrained.sampler(real.classNames).generate, spec.zDim, 100);
      untrained.dispose();
      const before = await classFidelity(judge, pre.images, pre.labels);

      const r = await trainGan(options);
      const { generator } = await loadGenerator(r.runDir);
      const post = await samples((z, l) => generator.generate(z, l), spec.zDim, 100);
      generator.dispose();
      const afterTraining = await classFidelity(judge, post.images, post.labels);

      assert.ok(
        before.accuracy <= 0.65,
        `untrained generator: fidelity ${before.accuracy} should be near chance`,
      );
      assert.ok(
        afterTraining.accuracy >= 0.8,
        `after ${r.kimg} kimg: fidelity ${afterTraining.accuracy} (before ${before.accuracy})`,
      );
      for (const c of afterTraining.perClass)
        assert.ok((c.accuracy ?? 0) >= 0.6, `class ${c.className}: ${c.accuracy}`);
    } finally {
      judge.dispose();
    }
  });
}
