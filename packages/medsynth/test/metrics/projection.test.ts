// Latent projection (metrics/projection.ts): the Mann–Whitney U test against scipy, the optimiser on a tiny
// trained cgan (its own images reconstruct far better than noise; the distance falls over the steps; seeds and
// batch sizes reproduce), W-space projection through a StyleGAN2's two halves, the verdict, and bad input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageArray } from '../../src/data/types.js';
import { sampleImages } from '../../src/generate/sample.js';
import { buildGan } from '../../src/models/registry.js';
import { defaultStyleGan2Spec } from '../../src/models/stylegan2.js';
import type { SamplingGenerator } from '../../src/models/types.js';
import type { FeatureExtractor } from '../../src/metrics/features/types.js';
import {
  type Alternative,
  erfc,
  mannWhitneyU,
  type MannWhitneyMethod,
} from '../../src/metrics/mann-whitney.js';
import {
  analyseProjection,
  authenticityTest,
  learningRateAt,
  latentSpaceOf,
  projectImages,
  projectionFeatures,
  projectionVerdict,
  stratifiedSample,
} from '../../src/metrics/projection.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { Rng } from '../../src/runtime/random.js';
import { ganSampler } from '../../src/training/families/adversarial.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { trainGan } from '../../src/training/loop.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

/** Written by test/fixtures/projection/make_mannwhitney.py (scipy.stats.mannwhitneyu). */
interface MwuCase {
  name: string;
  x: number[];
  y: number[];
  alternative: Alternative;
  method: MannWhitneyMethod;
  u1: number;
  p: number;
}
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/projection/mannwhitney_cases.json', import.meta.url), 'utf8'),
) as { cases: MwuCase[] };

describe('Mann–Whitney U', () => {
  for (const c of fixture.cases) {
    test(`matches scipy: ${c.name}`, () => {
      const r = mannWhitneyU(c.x, c.y, c.alternative, c.method);
      assert.equal(r.u1, c.u1);
      const tol = Math.max(1e-12, 1e-9 * c.p);
      assert.ok(Math.abs(r.p - c.p) <= tol, `p ${r.p} vs scipy ${c.p}`);
      assert.ok(Math.abs(r.probLess - (c.x.length * c.y.length - c.u1) / (c.x.length * c.y.length)) < 1e-12);
    });
  }

  test('the cases cover both methods, ties and every alternative', () => {
    const methods = new Set(fixture.cases.map((c) => mannWhitneyU(c.x, c.y, c.alternative, c.method).method));
    assert.deepEqual([...methods].sort(), ['asymptotic', 'exact']);
    assert.deepEqual([...new Set(fixture.cases.map((c) => c.alternative))].sort(), [
      'greater',
      'less',
      'two-sided',
    ]);
    assert.ok(fixture.cases.some((c) => mannWhitneyU(c.x, c.y).ties));
  });

  test('erfc against known values (and its tail)', () => {
    const known: [number, number][] = [
      [0, 1],
      [0.5, 0.4795001221869535],
      [1, 0.15729920705028516],
      [2, 0.004677734981047266],
      [3, 2.2090496998585445e-5],
      [6, 2.1519736712498913e-17],
      [-1, 1.8427007929497148],
    ];
    for (const [x, want] of known) assert.ok(Math.abs(erfc(x) - want) <= 1e-13 * want + 1e-16, `erfc(${x})`);
  });

  test('bad samples are refused', () => {
    assert.throws(() => mannWhitneyU([], [1]), /x is empty/);
    assert.throws(() => mannWhitneyU([1, Number.NaN], [1]), /x\[1\] is not finite/);
  });
});

describe('verdict and sampling', () => {
  test('a clear shift is a memorisation signal, equal distributions are not', () => {
    const rng = new Rng(4);
    const draw = (mean: number) => Array.from({ length: 60 }, () => mean + 0.01 * rng.normal());
    const shifted = authenticityTest(draw(0.075), draw(0.1));
    assert.ok(shifted.p < 1e-6 && shifted.probTrainCloser > 0.9);
    const v1 = projectionVerdict(shifted, 0.05);
    assert.equal(v1.signal, true);
    assert.match(v1.verdict, /^memorisation signal: training images reconstruct closer than held-out \(p=/);
    const same = authenticityTest(draw(0.1), draw(0.1));
    const v2 = projectionVerdict(same, 0.05);
    assert.equal(v2.signal, same.p < 0.05);
    if (!v2.signal) assert.match(v2.verdict, /^no memorisation signal/);
    // Training images reconstructing *worse* is no memorisation signal, however clear.
    const reversed = authenticityTest(draw(0.125), draw(0.1));
    assert.ok(reversed.p > 0.99);
    assert.equal(projectionVerdict(reversed, 0.05).signal, false);
    assert.equal(projectionVerdict(null, 0.05).signal, null);
  });

  test('stratified samples follow the weights, are seeded and stay in range', () => {
    const labels = Int32Array.from({ length: 300 }, (_, i) => (i < 100 ? 0 : 1));
    const a = stratifiedSample(labels, 300, 40, 7, [3, 5]);
    assert.equal(a.length, 40);
    assert.equal(a.filter((i) => labels[i] === 0).length, 15);
    assert.deepEqual(a, stratifiedSample(labels, 300, 40, 7, [3, 5]));
    assert.notDeepEqual(a, stratifiedSample(labels, 300, 40, 8, [3, 5]));
    assert.ok(a.every((i, k) => i >= 0 && i < 300 && (k === 0 || i > a[k - 1]!)));
    assert.equal(stratifiedSample(null, 10, 50, 1).length, 10);
  });

  test('the learning-rate schedule ramps up, holds and ramps down to near 0', () => {
    const lr = (s: number) => learningRateAt(s, 100, 0.1);
    assert.ok(lr(0) < 0.02);
    assert.equal(lr(50), 0.1);
    assert.ok(lr(99) < 0.001);
  });
});

describe('projection through a tiny trained cgan', () => {
  let dir: string;
  let generator: SamplingGenerator;
  let own: ImageArray;
  const ownLabels = Int32Array.from([0, 1, 0, 1, 0, 1]);
  let noise: ImageArray;

  before(async () => {
    await selectBackend();
    dir = await mkdtemp(join(tmpdir(), 'medsynth-projection-'));
    const tiny = tinyTrainOptions(() => ({ model: 'cgan', outDir: dir, kimg: 0.128, tickKimg: 0.064 }));
    const run = await trainGan(tiny());
    generator = (await loadGenerator(run.runDir)).generator;
    // Images the generator made itself, from known latents.
    own = await sampleImages(
      generator,
      Array.from(ownLabels, (label, i) => ({ seed: 500 + i, label })),
    );
    const rng = new Rng(9);
    noise = { ...own, data: Uint8Array.from(own.data, () => rng.int(256)) };
  });

  after(async () => {
    generator?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const quick = { steps: 60, restarts: 1, learningRate: 0.1, batchSize: 6, seed: 3 };

  test('its own images reconstruct far better than noise, and the distance falls over the steps', async () => {
    const events: ProgressEvent[] = [];
    const mine = await projectImages(generator, { images: own, labels: ownLabels }, quick, {
      onProgress: (e) => events.push(e),
    });
    const random = await projectImages(generator, { images: noise, labels: ownLabels }, quick);
    const median = (a: Float64Array) => Float64Array.from(a).sort()[a.length >> 1]!;
    assert.equal(mine.space, 'z');
    assert.equal(mine.objective, 'pixel+multiscale');
    assert.ok(
      median(mine.pixelRmse) < 0.25 * median(random.pixelRmse),
      `own ${median(mine.pixelRmse)} vs noise ${median(random.pixelRmse)}`,
    );
    // Starting from random latents, the projection closes most of the gap.
    const first = mine.trace[0]!;
    const last = mine.trace.at(-1)!;
    assert.equal(first.step, 0);
    assert.equal(last.step, quick.steps);
    assert.ok(last.pixelRmse < 0.5 * first.pixelRmse, `trace ${first.pixelRmse} → ${last.pixelRmse}`);
    assert.ok(last.loss < first.loss);
    const rises = mine.trace.slice(1).filter((t, i) => t.loss > mine.trace[i]!.loss * 1.02).length;
    assert.ok(rises <= 1, `loss rose at ${rises} trace points: ${mine.trace.map((t) => t.loss).join(', ')}`);
    // The 8-bit projections are the images whose distances were measured (up to rounding).
    const x = Array.from(own.data.subarray(0, 784), (v) => (2 * v) / 255 - 1);
    const a = Array.from(mine.projections.data.subarray(0, 784), (v) => (2 * v) / 255 - 1);
    const rmse = Math.sqrt(x.reduce((s, v, i) => s + (v - a[i]!) ** 2, 0) / x.length);
    assert.ok(Math.abs(rmse - mine.pixelRmse[0]!) < 0.01, `${rmse} vs ${mine.pixelRmse[0]}`);
    // Progress: a phase, ticks in images, done.
    assert.equal(events[0]?.type, 'phase');
    const ticks = events.filter((e) => e.type === 'tick');
    assert.ok(ticks.length >= 10 && ticks.every((t) => t.type === 'tick' && t.unit === 'images'));
    const lastTick = ticks.at(-1)!;
    assert.ok(lastTick.type === 'tick' && lastTick.done === 6 && lastTick.total === 6);
    assert.equal(events.at(-1)?.type, 'done');
  });

  test('seeds reproduce; the batch size changes nothing; no tensor is left behind', async () => {
    const targets = { images: own, labels: ownLabels };
    const o = { ...quick, steps: 20, restarts: 2 };
    await projectImages(generator, targets, o); // warm-up
    const before = tf.memory().numTensors;
    const a = await projectImages(generator, targets, o);
    assert.equal(tf.memory().numTensors, before);
    const b = await projectImages(generator, targets, o);
    assert.deepEqual(a.latents, b.latents);
    assert.deepEqual(a.pixelRmse, b.pixelRmse);
    const c = await projectImages(generator, targets, { ...o, seed: 4 });
    assert.notDeepEqual(a.latents, c.latents);
    const d = await projectImages(generator, targets, { ...o, batchSize: 4 });
    for (let i = 0; i < a.count; i++) {
      assert.ok(Math.abs(a.pixelRmse[i]! - d.pixelRmse[i]!) < 1e-3, `image ${i}`);
      assert.equal(a.restart[i], d.restart[i]);
    }
  });

  test('a differentiable feature extractor adds the feature term and its distances', async () => {
    // A fixed random linear map of the pixels: differentiable, cheap, and 28×28×1 like the generator.
    const w = tf.tensor2d(new Rng(5).normals(784 * 16), [784, 16]);
    const extractor: FeatureExtractor = {
      info: {
        kind: 'domain',
        key: 'linear-test',
        dim: 16,
        inputShape: [28, 28, 1],
        description: 'a fixed linear map',
        preprocessing: 'none',
      },
      features: async () => {
        throw new Error('not used');
      },
      embedTensor: (x) => tf.matMul(tf.reshape(x, [x.shape[0], 784]), w),
      dispose: () => w.dispose(),
    };
    try {
      const { features, note } = projectionFeatures(extractor, generator);
      assert.equal(note, null);
      const r = await projectImages(generator, { images: own, labels: ownLabels }, quick, { features });
      assert.equal(r.objective, 'pixel+features');
      assert.ok(r.featureDistance && r.featureDistance.every((v) => v >= 0 && v <= 2));
      assert.ok(r.trace.at(-1)!.loss < 0.8 * r.trace[0]!.loss, JSON.stringify(r.trace));
      // Another input shape, or no gradient: the multi-scale pixel term, with the reason.
      const other = { ...extractor, info: { ...extractor.info, inputShape: [64, 64, 1] as const } };
      assert.match(projectionFeatures(other, generator).note!, /64×64×1/);
      const { embedTensor: _, ...noGrad } = extractor;
      assert.match(projectionFeatures(noGrad, generator).note!, /no gradient/);
    } finally {
      extractor.dispose();
    }
  });

  test('the analysis: synthetic floor lowest, a verdict, per-set summaries', async () => {
    const ids = (p: string) => Array.from({ length: 6 }, (_, i) => `${p}${i}`);
    const a = await analyseProjection(
      generator,
      {
        train: { images: noise, labels: ownLabels, ids: ids('t') },
        holdout: { images: noise, labels: ownLabels, ids: ids('h') },
        synthetic: { images: own, labels: ownLabels, ids: ids('s') },
      },
      { ...quick, steps: 30 },
    );
    assert.ok(a.sets.synthetic!.pixel.median < a.sets.holdout!.pixel.median);
    assert.ok(a.test && a.test.nTrain === 6 && a.test.nHoldout === 6);
    assert.equal(typeof a.signal, 'boolean');
    assert.ok(a.warnings.some((w) => /only 6 training/.test(w)));
    assert.ok(a.secondsPerImage > 0);
  });

  test('bad input: wrong size, missing labels, labels out of range', async () => {
    const small: ImageArray = { ...own, height: 14, width: 14, data: new Uint8Array(6 * 196) };
    await assert.rejects(projectImages(generator, { images: small, labels: ownLabels }), DatasetError);
    await assert.rejects(projectImages(generator, { images: own, labels: null }), ConfigError);
    await assert.rejects(
      projectImages(generator, { images: own, labels: Int32Array.from([0, 1, 2, 0, 1, 0]) }),
      /label out of the generator/,
    );
    await assert.rejects(
      projectImages(generator, { images: own, labels: ownLabels }, { steps: 0 }),
      ConfigError,
    );
  });
});

describe('W-space projection (StyleGAN2)', () => {
  before(async () => {
    await selectBackend();
  });

  test('synthesis ∘ mapping is G, and projecting in W reconstructs a generated image', async () => {
    const spec = defaultStyleGan2Spec({ zDim: 16, wDim: 16, gWidth: 8, dWidth: 8, maxWidth: 16, seed: 2 });
    const net = buildGan(spec);
    const generator = ganSampler(spec, net.G, ['a', 'b'], () => {
      net.G.dispose();
      net.D.dispose();
    });
    try {
      assert.equal(latentSpaceOf(generator), 'w');
      const style = generator.styleSpace!;
      const diff = tf.tidy(() => {
        const z = tf.randomNormal([3, 16], 0, 1, 'float32', 1) as tf.Tensor2D;
        const y = tf.tensor1d([0, 1, 1], 'int32');
        const direct = generator.generate(z, y, 1);
        const halves = style.synthesis(style.mapping(z, y));
        return tf.max(tf.abs(tf.sub(direct, halves))).dataSync()[0]!;
      });
      assert.ok(diff < 1e-5, `max difference ${diff}`);
      const labels = Int32Array.from([0, 1]);
      const images = await sampleImages(generator, [
        { seed: 1, label: 0 },
        { seed: 2, label: 1 },
      ]);
      const r = await projectImages(
        generator,
        { images, labels },
        { steps: 40, restarts: 2, learningRate: 0.1 },
      );
      assert.equal(r.space, 'w');
      assert.equal(r.latentDim, 16);
      // From w̄ and random w, the reconstruction error falls well below where it started.
      assert.ok(r.trace.at(-1)!.pixelRmse < 0.8 * r.trace[0]!.pixelRmse, JSON.stringify(r.trace));
    } finally {
      generator.dispose();
    }
  });

  test('a diffusion model is refused with its family named', () => {
    const ddpm = { family: 'ddpm' } as unknown as SamplingGenerator;
    assert.throws(
      () => latentSpaceOf(ddpm),
      (e: unknown) => e instanceof ConfigError && e.exitCode === 2 && /ddpm/.test(e.message),
    );
  });
});
