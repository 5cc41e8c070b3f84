import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { makePlan, parseCounts, parseSeeds } from '../../src/generate/plan.js';
import { type GeneratedBatch, generateImages, latents, sampleImages } from '../../src/generate/sample.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { zFromSeed } from '../../src/runtime/random.js';
import { expectedPixels, tinyGenerator } from './tiny-generator.js';

before(async () => {
  await selectBackend();
});

const CLASSES = ['a', 'b', 'c'];

async function collect(gen: AsyncGenerator<GeneratedBatch>): Promise<GeneratedBatch[]> {
  const out: GeneratedBatch[] = [];
  for await (const b of gen) out.push(b);
  return out;
}

/** Each image's pixels by seed. */
function bySeed(batches: readonly GeneratedBatch[]): Map<number, { label: number; pixels: Uint8Array }> {
  const m = new Map<number, { label: number; pixels: Uint8Array }>();
  for (const b of batches) {
    const px = b.images.height * b.images.width * b.images.channels;
    b.seeds.forEach((seed, i) => {
      m.set(seed, { label: b.labels[i]!, pixels: b.images.data.slice(i * px, (i + 1) * px) as Uint8Array });
    });
  }
  return m;
}

describe('sampling by seed and class', () => {
  test('images follow their seed and class (against a plain-JS reference)', async () => {
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'counts', counts: parseCounts('a=2,c=3') }, CLASSES);
    const batches = await collect(generateImages(g, plan, { seeds: parseSeeds('100-104'), batchSize: 2 }));
    assert.deepEqual(
      batches.map((b) => [b.start, [...b.labels], b.seeds]),
      [
        [0, [0, 0], [100, 101]],
        [2, [2, 2], [102, 103]],
        [4, [2], [104]],
      ],
    );
    const got = bySeed(batches);
    for (const [seed, { label, pixels }] of got) {
      const ref = expectedPixels(zFromSeed(seed, g.zDim), label);
      const worst = Math.max(...pixels.map((v, i) => Math.abs(v - ref[i]!)));
      assert.ok(worst <= 1, `seed ${seed}: off by ${worst}`);
    }
    // The class changes the image: the same seed as another class differs.
    const asA = await sampleImages(g, [{ seed: 102, label: 0 }]);
    assert.notDeepEqual([...asA.data], [...got.get(102)!.pixels]);
    g.dispose();
  });

  test('an image is the same whatever the batch size or the plan it is in', async () => {
    const g = tinyGenerator({ classNames: CLASSES, channels: 3 });
    const plan = makePlan({ kind: 'per-class', count: 5 }, CLASSES);
    const ref = bySeed(await collect(generateImages(g, plan, { batchSize: 1 })));
    for (const batchSize of [2, 4, 7, 64]) {
      const got = bySeed(await collect(generateImages(g, plan, { batchSize })));
      assert.equal(got.size, 15);
      for (const [seed, v] of ref) assert.deepEqual(got.get(seed), v, `seed ${seed}, batch ${batchSize}`);
    }
    // Seeds 5..9 are class b in this plan; in a plan of class b only with those seeds, the same images.
    const onlyB = makePlan({ kind: 'counts', counts: parseCounts('b=5') }, CLASSES);
    const got = bySeed(await collect(generateImages(g, onlyB, { seeds: parseSeeds('9,5-8'), batchSize: 3 })));
    for (const seed of [5, 6, 7, 8, 9])
      assert.deepEqual(got.get(seed), ref.get(seed), `seed ${seed} in another plan`);
    g.dispose();
  });

  test("truncation in W: the generator gets ψ and the unscaled z (stylegan2's w̄ + ψ·(w − w̄))", async () => {
    const g = tinyGenerator({ classNames: CLASSES, truncation: 'w' });
    const plan = makePlan({ kind: 'per-class', count: 2 }, CLASSES);
    await collect(generateImages(g, plan, { truncation: 0.5 }));
    const call = g.calls.at(-1)!;
    assert.equal(call.psi, 0.5);
    for (let i = 0; i < 6; i++) {
      const z = zFromSeed(i, g.zDim);
      assert.deepEqual(call.z.subarray(i * g.zDim, (i + 1) * g.zDim), z, `seed ${i}: z not scaled`);
    }
    await collect(generateImages(g, plan, {}));
    assert.equal(g.calls.at(-1)!.psi, 1);
    const zg = tinyGenerator({ classNames: CLASSES });
    await collect(generateImages(zg, plan, { truncation: 0.5 }));
    assert.equal(zg.calls.at(-1)!.psi, 1, "a 'z' generator is handed ψ = 1 (z carries the truncation)");
    g.dispose();
    zg.dispose();
  });

  test('truncation: ψ = 1 is no truncation, ψ < 1 scales z toward 0', async () => {
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'per-class', count: 2 }, CLASSES);
    const plain = bySeed(await collect(generateImages(g, plan, {})));
    const zPlain = g.calls.at(-1)!.z;
    const one = bySeed(await collect(generateImages(g, plan, { truncation: 1 })));
    assert.deepEqual(one, plain);
    assert.deepEqual(g.calls.at(-1)!.z, zPlain);
    const half = bySeed(await collect(generateImages(g, plan, { truncation: 0.5 })));
    const zHalf = g.calls.at(-1)!.z;
    assert.notDeepEqual(half, plain);
    const zDim = g.zDim;
    for (let i = 0; i < 6; i++) {
      const z = zFromSeed(i, zDim);
      for (let j = 0; j < zDim; j++) {
        assert.equal(zPlain[i * zDim + j], z[j]);
        assert.equal(zHalf[i * zDim + j], Math.fround(0.5 * z[j]!));
      }
    }
    const norm = (z: Float32Array) => Math.hypot(...z);
    assert.ok(Math.abs(norm(zHalf) - 0.5 * norm(zPlain)) < 1e-3);
    assert.deepEqual(
      latents([3], zDim, 0.25),
      Float32Array.from(zFromSeed(3, zDim), (v) => 0.25 * v),
    );
    for (const psi of [0, -0.5, 1.01, Number.NaN]) {
      await assert.rejects(collect(generateImages(g, plan, { truncation: psi })), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.context.field, '--truncation');
        return true;
      });
    }
    g.dispose();
  });

  test('labels reach a conditional generator; an unconditional one with several classes is refused', async () => {
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'counts', counts: parseCounts('b=1,c=2') }, CLASSES);
    await collect(generateImages(g, plan, {}));
    assert.deepEqual([...g.calls.at(-1)!.labels!], [1, 2, 2]);
    g.dispose();

    const u = tinyGenerator({ classNames: CLASSES, conditional: false });
    await assert.rejects(collect(generateImages(u, plan, {})), /unconditional/);
    u.dispose();
    const single = tinyGenerator({ classNames: ['all'], conditional: false });
    const one = await collect(generateImages(single, makePlan({ kind: 'per-class', count: 2 }, ['all']), {}));
    assert.equal(single.calls.at(-1)!.labels, null, 'no labels passed to an unconditional generator');
    assert.deepEqual([...one[0]!.labels], [0, 0]);
    single.dispose();
  });

  test('progress events, abort between batches, and bad batch sizes', async () => {
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'per-class', count: 3 }, CLASSES);
    const events: ProgressEvent[] = [];
    await collect(generateImages(g, plan, { batchSize: 4, onProgress: (e) => events.push(e) }));
    assert.deepEqual(
      events.map((e) => (e.type === 'tick' ? `tick ${e.done}/${e.total} ${e.unit}` : e.type)),
      ['phase', 'tick 4/9 images', 'tick 8/9 images', 'tick 9/9 images', 'done'],
    );
    const controller = new AbortController();
    let seen = 0;
    await assert.rejects(async () => {
      for await (const _ of generateImages(g, plan, { batchSize: 2, signal: controller.signal })) {
        seen++;
        controller.abort();
      }
    }, /abort/i);
    assert.equal(seen, 1);
    await assert.rejects(collect(generateImages(g, plan, { batchSize: 0 })), /batch size/);
    g.dispose();
  });

  test('no tensor leaks', async () => {
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'per-class', count: 5 }, CLASSES);
    await collect(generateImages(g, plan, { batchSize: 4, truncation: 0.7 })); // warm-up
    const before = tf.memory().numTensors;
    await collect(generateImages(g, plan, { batchSize: 4, truncation: 0.7 }));
    await sampleImages(g, [{ seed: 1, label: 2 }]);
    // A generator that throws midway leaks nothing either.
    const failing = { ...g, generate: () => tf.tidy(() => tf.zeros([1, 2, 2, 1]) as tf.Tensor4D) };
    await assert.rejects(sampleImages(failing, [{ seed: 1, label: 0 }]), /generator output/);
    assert.equal(tf.memory().numTensors, before);
    g.dispose();
  });
});
