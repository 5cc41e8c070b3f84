import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resolveTrainOptions, type TrainOptionsInput } from '../../src/config/train-options.js';
import {
  avgPoolBy,
  buildPgganDiscriminator,
  buildPgganGenerator,
  defaultPgganSpec,
  type PgganFadeIn,
  type PgganSpec,
  upsampleBy,
  validatePgganSpec,
} from '../../src/models/pggan.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { CheckpointError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';
import type { FamilySnapshot, SavedGroups, StepInput } from '../../src/training/family.js';
import {
  laterPhase,
  PGGAN_POSITION,
  pgganFamily,
  pgganSchedule,
  type PgganTrainer,
} from '../../src/training/families/pggan.js';

before(async () => {
  await selectBackend();
});

const tiny = (extra: Partial<TrainOptionsInput> = {}) =>
  resolveTrainOptions({
    data: { source: 'unused.npz' },
    preset: 'tiny',
    model: 'pggan',
    zDim: 8,
    gWidth: 4,
    dWidth: 4,
    maxWidth: 8,
    batchSize: 8,
    kimg: 1,
    growFraction: 0.5,
    ...extra,
  } as TrainOptionsInput);

const spec28 = (extra: Partial<PgganSpec> = {}) =>
  defaultPgganSpec({
    size: 28,
    channels: 1,
    numClasses: 2,
    zDim: 8,
    gWidth: 4,
    dWidth: 4,
    maxWidth: 8,
    ...extra,
  });

describe('pggan schedule', () => {
  test('three levels, growFraction 0.5: phases of 1/8, the final stable phase from 0.5', () => {
    const at = (p: number) => pgganSchedule(3, 0.5, p);
    assert.deepEqual(at(0), { phaseIndex: 0, level: 0, alpha: 1 });
    assert.deepEqual(at(0.1), { phaseIndex: 0, level: 0, alpha: 1 });
    assert.deepEqual(at(0.125), { phaseIndex: 1, level: 1, alpha: 0 });
    assert.deepEqual(at(0.1875), { phaseIndex: 1, level: 1, alpha: 0.5 });
    assert.deepEqual(at(0.25), { phaseIndex: 2, level: 1, alpha: 1 });
    assert.deepEqual(at(0.34375), { phaseIndex: 2, level: 1, alpha: 1 });
    assert.deepEqual(at(0.375), { phaseIndex: 3, level: 2, alpha: 0 });
    assert.deepEqual(at(0.46875), { phaseIndex: 3, level: 2, alpha: 0.75 });
    assert.deepEqual(at(0.5), { phaseIndex: 4, level: 2, alpha: 1 });
    assert.deepEqual(at(0.9), { phaseIndex: 4, level: 2, alpha: 1 });
    assert.deepEqual(at(1), { phaseIndex: 4, level: 2, alpha: 1 });
    assert.deepEqual(at(7), { phaseIndex: 4, level: 2, alpha: 1 }, 'clamped');
    assert.deepEqual(at(-1), { phaseIndex: 0, level: 0, alpha: 1 }, 'clamped');
  });

  test('five levels (64 px), growFraction 0.8: phases of 0.1', () => {
    const at = (p: number) => pgganSchedule(5, 0.8, p);
    const near = (p: number, phaseIndex: number, level: number, alpha: number) => {
      const s = at(p);
      assert.equal(s.phaseIndex, phaseIndex, `phase at ${p}`);
      assert.equal(s.level, level, `level at ${p}`);
      assert.ok(Math.abs(s.alpha - alpha) < 1e-9, `α at ${p}: ${s.alpha} ≠ ${alpha}`);
    };
    near(0.05, 0, 0, 1);
    near(0.15, 1, 1, 0.5);
    near(0.35, 3, 2, 0.5);
    near(0.52, 5, 3, 0.2);
    near(0.69, 6, 3, 1);
    near(0.79, 7, 4, 0.9);
    near(0.8, 8, 4, 1);
  });

  test('growFraction 0 trains the full resolution from the start; the position never moves back', () => {
    assert.deepEqual(pgganSchedule(3, 0, 0), { phaseIndex: 4, level: 2, alpha: 1 });
    const a = { phaseIndex: 3, level: 2, alpha: 0.5 };
    assert.equal(laterPhase(a, pgganSchedule(3, 0.5, 0.1)), a);
    assert.equal(laterPhase(a, { ...a, alpha: 0.25 }), a);
    assert.deepEqual(laterPhase(a, pgganSchedule(3, 0.5, 0.5)), { phaseIndex: 4, level: 2, alpha: 1 });
    assert.throws(() => pgganSchedule(3, 1, 0), RangeError);
  });
});

describe('pggan networks', () => {
  test('spec validation names the field', () => {
    assert.throws(() => spec28({ size: 48 as 28 }), /PgganSpec\.size/);
    assert.throws(() => spec28({ zDim: 0 }), /PgganSpec\.zDim/);
    assert.throws(() => spec28({ maxWidth: 2 }), /PgganSpec\.maxWidth/);
    assert.throws(() => validatePgganSpec({ ...spec28(), family: 'cgan' } as unknown as PgganSpec), /family/);
    assert.throws(() => pgganFamily.checkSpec({ ...spec28(), channels: 2 }, 'x.json'), CheckpointError);
    assert.deepEqual(pgganFamily.checkSpec(JSON.parse(JSON.stringify(spec28())), 'x.json'), spec28());
    const fromOptions = pgganFamily.specFor(tiny({ size: 32 }), { channels: 3, numClasses: 4 });
    assert.equal(fromOptions.size, 32);
    assert.equal(fromOptions.channels, 3);
    assert.equal(fromOptions.numClasses, 4);
    assert.equal(fromOptions.seed, Rng.derive(0, 'init').int(2 ** 31 - 1));
  });

  for (const [size, channels, numClasses] of [
    [28, 1, 2],
    [32, 3, 1],
  ] as const) {
    test(`${size} px, ${channels} ch, ${numClasses} class(es): G_L and D_L shapes per level`, () => {
      const spec = spec28({ size, channels, numClasses });
      const G = buildPgganGenerator(spec);
      const D = buildPgganDiscriminator(spec);
      const sides = size === 28 ? [7, 14, 28] : [4, 8, 16, 32];
      try {
        assert.deepEqual(G.plan.sides, sides);
        assert.equal(G.levels.length, sides.length);
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          const z = tf.randomNormal([3, 8], 0, 1, 'float32', 1) as tf.Tensor2D;
          const y = tf.tensor1d(
            [0, 1, 0].map((c) => c % numClasses),
            'int32',
          );
          sides.forEach((s, L) => {
            const x = G.levels[L]!.apply(numClasses > 1 ? [z, y] : [z]) as tf.Tensor;
            assert.deepEqual(x.shape, [3, s, s, channels]);
            const logits = D.levels[L]!.apply(numClasses > 1 ? [x, y] : [x]) as tf.Tensor;
            assert.deepEqual(logits.shape, [3, 1]);
          });
        });
        assert.equal(tf.memory().numTensors, before);
        // Weights are shared by name across levels, each once.
        const names = G.weights.map((w) => w.originalName);
        assert.equal(new Set(names).size, names.length);
        assert.ok(names.includes('g_rgb1/kernel') && names.includes('g_b1_conv0/kernel'));
      } finally {
        G.dispose();
        D.dispose();
      }
    });
  }

  test('fade-in: α = 1 is the new path alone, α = 0 the upsampled / pooled previous level', () => {
    const spec = spec28();
    const G = buildPgganGenerator(spec);
    const D = buildPgganDiscriminator(spec);
    const z = tf.randomNormal([4, 8], 0, 1, 'float32', 2) as tf.Tensor2D;
    const y = tf.tensor1d([0, 1, 1, 0], 'int32');
    const values = (t: tf.Tensor) => {
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    try {
      for (const L of [1, 2]) {
        const gL = G.levels[L]!;
        const fade = G.fades[L] as PgganFadeIn;
        const [fresh] = fade.getInputAt(0) as tfl.SymbolicTensor[];
        const newPath = tfl.model({ inputs: gL.inputs, outputs: fresh! });
        G.setAlpha(L, 1);
        assert.deepEqual(
          values(gL.apply([z, y]) as tf.Tensor),
          values(newPath.apply([z, y]) as tf.Tensor),
          `G_${L} at α = 1`,
        );
        G.setAlpha(L, 0);
        G.setAlpha(L - 1, 1);
        const old = tf.tidy(() => upsampleBy(G.levels[L - 1]!.apply([z, y]) as tf.Tensor4D, 2));
        assert.deepEqual(values(gL.apply([z, y]) as tf.Tensor), values(old), `G_${L} at α = 0`);
        G.setAlpha(L, 0.5);
        assert.notDeepEqual(
          values(gL.apply([z, y]) as tf.Tensor),
          values(newPath.apply([z, y]) as tf.Tensor),
        );

        const x = tf.randomUniform([4, 7 * 2 ** L, 7 * 2 ** L, 1], -1, 1, 'float32', 3) as tf.Tensor4D;
        D.setAlpha(L, 0);
        D.setAlpha(L - 1, 1);
        const pooled = avgPoolBy(x, 2);
        assert.deepEqual(
          values(D.levels[L]!.apply([x, y]) as tf.Tensor),
          values(D.levels[L - 1]!.apply([pooled, y]) as tf.Tensor),
          `D_${L} at α = 0`,
        );
        // α = 1: D_L ignores fromRGB_{L−1} (changing it changes nothing).
        D.setAlpha(L, 1);
        const a = values(D.levels[L]!.apply([x, y]) as tf.Tensor);
        const rgbOld = D.weights.find((w) => w.originalName === `d_rgb${L - 1}/kernel`)!;
        const saved = rgbOld.read().clone();
        rgbOld.write(tf.tidy(() => tf.mul(saved, 3)));
        assert.deepEqual(values(D.levels[L]!.apply([x, y]) as tf.Tensor), a, `D_${L} at α = 1`);
        rgbOld.write(saved);
        saved.dispose();
        tf.dispose([x, pooled]);
      }
    } finally {
      tf.dispose([z, y]);
      G.dispose();
      D.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

/** A deterministic loop stand-in: real batch k of step s is drawn from its own seed; z/augment Rngs carry on. */
class FakeLoop {
  step = 0;
  imagesSeen = 0;
  readonly rng: { z: Rng; augment: Rng };

  constructor(
    readonly size: number,
    readonly channels: number,
    readonly numClasses: number,
    state?: FakeLoopState,
  ) {
    this.rng = state
      ? { z: Rng.fromState(state.z), augment: Rng.fromState(state.augment) }
      : { z: new Rng(11), augment: new Rng(12) };
    if (state) {
      this.step = state.step;
      this.imagesSeen = state.imagesSeen;
    }
  }

  input(progress: number, augmentP = 1): StepInput {
    let draws = 0;
    const step = this.step;
    return {
      draw: (n: number) => {
        const r = Rng.derive(99, step, draws++);
        const count = n * this.size * this.size * this.channels;
        const x = Float32Array.from({ length: count }, () => r.next() * 2 - 1);
        const labels = Int32Array.from({ length: n }, () => r.int(this.numClasses));
        return {
          x: tf.tensor4d(x, [n, this.size, this.size, this.channels]),
          labels: tf.tensor1d(labels, 'int32'),
        };
      },
      rng: this.rng,
      augmentP,
      progress,
      imagesSeen: this.imagesSeen,
    };
  }

  run(trainer: PgganTrainer, progress: number) {
    const stats = trainer.step(this.input(progress));
    this.step++;
    this.imagesSeen += stats.images;
    return stats;
  }

  state(): FakeLoopState {
    return {
      step: this.step,
      imagesSeen: this.imagesSeen,
      z: this.rng.z.state(),
      augment: this.rng.augment.state(),
    };
  }
}

interface FakeLoopState {
  step: number;
  imagesSeen: number;
  z: number[];
  augment: number[];
}

/** A snapshot as it comes back from disk: every group encoded and decoded (float32, names, order). */
async function roundTrip(snap: FamilySnapshot): Promise<{ saved: SavedGroups; state: unknown }> {
  const weights: Record<string, tf.NamedTensorMap> = {};
  const order: Record<string, string[]> = {};
  for (const [group, list] of Object.entries(snap.groups)) {
    const { data, specs } = await tf.io.encodeWeights([...list]);
    weights[group] = tf.io.decodeWeights(data as ArrayBuffer, specs);
    order[group] = specs.map((s) => s.name);
  }
  const state: unknown = JSON.parse(JSON.stringify(snap.state));
  snap.release();
  return { saved: { weights, order }, state };
}

function disposeSaved(saved: SavedGroups): void {
  for (const m of Object.values(saved.weights)) tf.dispose(Object.values(m));
}

/** Every weight of G, D and G_ema, by name. */
function allWeights(trainer: PgganTrainer): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [group, net] of [
    ['G', trainer.G],
    ['D', trainer.D],
    ['G_ema', trainer.gEma],
  ] as const) {
    for (const w of net.weights) out.set(`${group}:${w.originalName}`, w.read().dataSync() as Float32Array);
  }
  return out;
}

describe('pggan trainer', () => {
  test('steps change the weights, leak no tensors, and grow through the levels', () => {
    const options = tiny({ r1Gamma: 1, r1Interval: 2, augment: 'diffaugment', modeSeeking: 0.2 });
    const spec = pgganFamily.specFor(options, { channels: 1, numClasses: 2 });
    const trainer = pgganFamily.trainer(spec, options) as PgganTrainer;
    const loop = new FakeLoop(28, 1, 2);
    try {
      const w0 = allWeights(trainer);
      const s1 = loop.run(trainer, 0.01);
      assert.equal(s1.images, 8);
      assert.ok(Number.isFinite(s1.dLoss) && Number.isFinite(s1.gLoss));
      assert.notEqual(s1.penalty, null, 'R1 on D update 0');
      assert.equal(typeof s1.realSignSum, 'number');
      const w1 = allWeights(trainer);
      assert.notDeepEqual(w1.get('G:g_b0_conv/kernel'), w0.get('G:g_b0_conv/kernel'), 'G moved');
      assert.notDeepEqual(w1.get('D:d_b0_conv/kernel'), w0.get('D:d_b0_conv/kernel'), 'D moved');
      assert.notDeepEqual(w1.get('G_ema:g_b0_conv/kernel'), w0.get('G_ema:g_b0_conv/kernel'), 'EMA moved');
      assert.deepEqual(w1.get('G:g_b2_conv0/kernel'), w0.get('G:g_b2_conv0/kernel'), 'level 2 untouched');
      const n = tf.memory().numTensors;
      loop.run(trainer, 0.02);
      loop.run(trainer, 0.03);
      assert.equal(tf.memory().numTensors, n, 'no leak within a level');
      // Into the fade-in of level 1: fresh optimizers over more variables; then constant again.
      loop.run(trainer, 0.15);
      assert.deepEqual(trainer.phase, pgganSchedule(3, 0.5, 0.15));
      assert.deepEqual(trainer.tickStats(), { pgPhase: 1, pgSide: 14, pgAlpha: trainer.phase.alpha });
      const n1 = tf.memory().numTensors;
      loop.run(trainer, 0.16);
      assert.equal(tf.memory().numTensors, n1, 'no leak within the fade');
      loop.run(trainer, 0.3);
      assert.equal(tf.memory().numTensors, n1, 'fade → stable keeps the optimizer state');
      assert.notDeepEqual(allWeights(trainer).get('G:g_b1_conv0/kernel'), w0.get('G:g_b1_conv0/kernel'));
      loop.run(trainer, 0.6);
      assert.equal(trainer.side, 28);
      // Tick grids while growing: full-size images in [−1, 1] from the current level.
      const g = trainer.sampler(['a', 'b']);
      const img = tf.tidy(() => g.generate(tf.ones([2, 8]) as tf.Tensor2D, tf.tensor1d([0, 1], 'int32')));
      assert.deepEqual(img.shape, [2, 28, 28, 1]);
      const v = img.dataSync();
      assert.ok(v.every((x) => x >= -1 && x <= 1));
      img.dispose();
    } finally {
      trainer.dispose();
    }
  });

  test('wgan-gp, dSteps 2, unconditional, 3 channels: images count both D updates', () => {
    const options = tiny({ loss: 'wgan', dSteps: 2, size: 32, augment: 'none' });
    const spec = pgganFamily.specFor(options, { channels: 3, numClasses: 1 });
    const baseline = tf.memory().numTensors;
    const trainer = pgganFamily.trainer(spec, options) as PgganTrainer;
    const loop = new FakeLoop(32, 3, 1);
    try {
      const s = loop.run(trainer, 0.2);
      assert.equal(s.images, 16);
      assert.ok(s.penalty !== null && Number.isFinite(s.penalty));
      assert.equal(trainer.dStepCount, 2);
      const g = trainer.sampler(['all']);
      assert.equal(g.conditional, false);
      assert.equal(g.truncation, 'z');
      const img = tf.tidy(() => g.generate(tf.zeros([1, 8]) as tf.Tensor2D, null));
      assert.deepEqual(img.shape, [1, 32, 32, 3]);
      img.dispose();
    } finally {
      trainer.dispose();
    }
    assert.equal(tf.memory().numTensors, baseline, 'dispose frees every weight and optimizer slot');
  });

  test('NaN weights show as a NaN loss in the step stats', () => {
    const options = tiny();
    const trainer = pgganFamily.trainer(
      pgganFamily.specFor(options, { channels: 1, numClasses: 2 }),
      options,
    ) as PgganTrainer;
    try {
      const w = trainer.D.weights.find((x) => x.originalName === 'd_out/bias')!;
      w.write(tf.tidy(() => tf.fill([1], Number.NaN)));
      const s = new FakeLoop(28, 1, 2).run(trainer, 0);
      assert.ok(Number.isNaN(s.dLoss), `dLoss ${s.dLoss}`);
    } finally {
      trainer.dispose();
    }
  });

  /**
   * Runs `progress` steps uninterrupted, and again checkpointing after step `at` into a fresh trainer: the
   * weights must be bit-identical after every later step.
   */
  async function resumeMatches(extra: Partial<TrainOptionsInput>, progress: number[], at: number) {
    const options = tiny(extra);
    const spec = pgganFamily.specFor(options, { channels: 1, numClasses: 2 });
    const a = pgganFamily.trainer(spec, options) as PgganTrainer;
    const loopA = new FakeLoop(28, 1, 2);
    let b: PgganTrainer | null = null;
    try {
      for (let i = 0; i <= at; i++) loopA.run(a, progress[i]!);
      const { saved, state } = await roundTrip(await a.checkpoint());
      const loopB = new FakeLoop(28, 1, 2, loopA.state());
      b = pgganFamily.trainer(spec, options) as PgganTrainer;
      try {
        await b.restore(saved, state, 'ckpt');
      } finally {
        disposeSaved(saved);
      }
      assert.deepEqual(b.phase, a.phase);
      assert.deepEqual(allWeights(b), allWeights(a), 'restored');
      for (let i = at + 1; i < progress.length; i++) {
        const sa = loopA.run(a, progress[i]!);
        const sb = loopB.run(b, progress[i]!);
        assert.deepEqual(sb, sa, `stats of step ${i}`);
        assert.deepEqual(b.phase, a.phase);
        assert.deepEqual(allWeights(b), allWeights(a), `weights after step ${i} (progress ${progress[i]})`);
      }
    } finally {
      a.dispose();
      b?.dispose();
    }
  }

  test('resume is bit-exact across a phase boundary (level 0 → fade 1)', async () => {
    await resumeMatches(
      { r1Gamma: 1, r1Interval: 3, augment: 'diffaugment', modeSeeking: 0.2 },
      [0.01, 0.05, 0.1, 0.13, 0.14, 0.2],
      2,
    );
  });

  test('resume is bit-exact mid-fade and into the next stable phase (hinge, R1, dSteps 2)', async () => {
    await resumeMatches({ r1Gamma: 1, r1Interval: 3, dSteps: 2 }, [0.13, 0.16, 0.19, 0.22, 0.26, 0.3], 2);
  });

  test('resume is bit-exact with wgan-gp in the final level', async () => {
    await resumeMatches({ loss: 'wgan', augment: 'ada' }, [0.3, 0.45, 0.48, 0.5, 0.6], 1);
  });

  test('standalone sampler: samples at the saved level and α, or the final level without it', async () => {
    const options = tiny();
    const spec = pgganFamily.specFor(options, { channels: 1, numClasses: 2 });
    const trainer = pgganFamily.trainer(spec, options) as PgganTrainer;
    const loop = new FakeLoop(28, 1, 2);
    try {
      loop.run(trainer, 0.01);
      loop.run(trainer, 0.2);
      const { saved } = await roundTrip(await trainer.checkpoint());
      try {
        assert.deepEqual(pgganFamily.samplerGroups(true), ['G_ema']);
        assert.deepEqual(pgganFamily.samplerGroups(false), ['G']);
        const z = tf.randomNormal([3, 8], 0, 1, 'float32', 5) as tf.Tensor2D;
        const y = tf.tensor1d([0, 1, 1], 'int32');
        const live = trainer.sampler(['a', 'b']).generate(z, y);
        const g = pgganFamily.sampler(spec, saved, true, ['a', 'b'], 'ckpt');
        const standalone = g.generate(z, y);
        assert.deepEqual(standalone.shape, [3, 28, 28, 1]);
        assert.deepEqual(Array.from(standalone.dataSync()), Array.from(live.dataSync()));
        g.dispose();
        const { [PGGAN_POSITION]: _drop, ...noPosition } = saved.weights['G_ema']!;
        const final = pgganFamily.sampler(
          spec,
          { ...saved, weights: { G_ema: noPosition } },
          true,
          [],
          'ckpt',
        );
        const full = final.generate(z, y);
        assert.notDeepEqual(Array.from(full.dataSync()), Array.from(live.dataSync()));
        final.dispose();
        tf.dispose([z, y, live, standalone, full]);
        assert.throws(
          () => pgganFamily.sampler(spec, { ...saved, weights: {} }, true, [], 'ckpt'),
          (e: unknown) => e instanceof CheckpointError && /ckpt/.test(e.message),
        );
      } finally {
        disposeSaved(saved);
      }
    } finally {
      trainer.dispose();
    }
  });

  test('restore errors name the checkpoint', async () => {
    const options = tiny();
    const spec = pgganFamily.specFor(options, { channels: 1, numClasses: 2 });
    const a = pgganFamily.trainer(spec, options) as PgganTrainer;
    const b = pgganFamily.trainer(spec, options) as PgganTrainer;
    try {
      const { saved, state } = await roundTrip(await a.checkpoint());
      try {
        const { ['d_out/kernel']: _drop, ...lessD } = saved.weights['D']!;
        await assert.rejects(
          b.restore({ ...saved, weights: { ...saved.weights, D: lessD } }, state, 'step-1/D.bin'),
          (e: unknown) =>
            e instanceof CheckpointError && /d_out\/kernel/.test(e.message) && /step-1/.test(e.message),
        );
        await assert.rejects(b.restore(saved, { ...(state as object), level: 9 }, 'c.json'), CheckpointError);
      } finally {
        disposeSaved(saved);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});
