// The TF.js export of a run's generator, round-tripped in Node: for every family a tiny run is trained on
// PneumoniaMNIST, its sampling network exported (in memory, and through a folder on disk), loaded back with
// tfjs-layers and sampled with the same seeds, classes and ψ as the run's own generator (what
// `medsynth generate` loads). Same backend, same kernels: the float outputs must agree to 1e-6 and the 8-bit
// images exactly. Also: slerp's endpoints, the atomic folder write and the refusals.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { registerExportCommand } from '../../src/cli/export.js';
import {
  exportTfjsGenerator,
  memoryHandler,
  readTfjsGenerator,
  writeTfjsGenerator,
} from '../../src/generate/tfjs-export.js';
import {
  loadTfjsSampler,
  parseGeneratorMeta,
  sampleFromLatents,
  slerp,
} from '../../src/generate/tfjs-generator.js';
import { latents, sampleImages, type SampleItem } from '../../src/generate/sample.js';
import type { SamplingGenerator } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { CheckpointError, ConfigError } from '../../src/runtime/errors.js';
import { zFromSeed } from '../../src/runtime/random.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { trainGan } from '../../src/training/loop.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

let out: string;
before(async () => {
  await selectBackend();
  out = await mkdtemp(join(tmpdir(), 'medsynth-tfjs-export-'));
});
after(async () => {
  await rm(out, { recursive: true, force: true });
});

const tiny = tinyTrainOptions(() => ({ outDir: join(out, 'runs'), kimg: 0.048, tickKimg: 0.016 }));

/** Seeds 3…8, classes alternating (all 0 for an unconditional generator). */
function items(g: SamplingGenerator): SampleItem[] {
  return [3, 4, 5, 6, 7, 8].map((seed, i) => ({ seed, label: g.conditional ? i % g.numClasses : 0 }));
}

async function floats(g: SamplingGenerator, its: SampleItem[], psi: number): Promise<Float32Array> {
  const z = latents(
    its.map((i) => i.seed),
    g.zDim,
    g.truncation === 'z' ? psi : 1,
  );
  const x = tf.tidy(() =>
    g.generate(
      tf.tensor2d(z, [its.length, g.zDim]),
      g.conditional
        ? tf.tensor1d(
            Int32Array.from(its, (i) => i.label),
            'int32',
          )
        : null,
      g.truncation === 'w' ? psi : 1,
    ),
  );
  try {
    return (await x.data()) as Float32Array;
  } finally {
    x.dispose();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const FAMILIES = [
  { model: 'cgan', extra: {}, checkpoint: undefined },
  { model: 'stylegan2', extra: {}, checkpoint: undefined },
  // Grows within the short run; its second checkpoint is mid fade-in to level 1 (14 px, α = 2/3): both the
  // fade-in's α and the upsampling to 28 px are exercised.
  { model: 'pggan', extra: { growFraction: 0.8 }, checkpoint: 'step-0000002' },
  { model: 'dcgan', extra: { trainClass: 'pneumonia' }, checkpoint: undefined },
  { model: 'acgan', extra: {}, checkpoint: undefined },
  { model: 'ddpm', extra: { sampleSteps: 4 }, checkpoint: undefined },
] as const;

describe('TF.js export round trip', () => {
  for (const { model, extra, checkpoint } of FAMILIES) {
    test(`${model}: the exported network, loaded back with tfjs-layers, makes the run's images`, async () => {
      const run = await trainGan(tiny({ model, ...extra }));
      const exp = await exportTfjsGenerator(run.runDir, { checkpoint });
      assert.equal(exp.meta.family, model);
      assert.equal(exp.meta.network, 'G_ema');
      assert.equal(exp.meta.checkpoint, checkpoint ?? `step-${String(run.step).padStart(7, '0')}`);
      if (model === 'pggan') {
        const p = exp.meta.pggan!;
        assert.ok(p.side < exp.meta.size && p.alpha > 0 && p.alpha < 1, JSON.stringify(p));
      }
      const { generator: original } = await loadGenerator(run.runDir, { checkpoint });
      const loaded = await loadTfjsSampler(memoryHandler(exp), exp.meta);
      try {
        assert.equal(loaded.conditional, original.conditional);
        assert.equal(loaded.truncation, original.truncation);
        assert.deepEqual(loaded.classNames, original.classNames);
        const its = items(original);
        for (const psi of [1, 0.6]) {
          const [a, b] = [await floats(original, its, psi), await floats(loaded, its, psi)];
          const d = maxAbsDiff(a, b);
          assert.ok(d <= 1e-6, `ψ ${psi}: float outputs differ by ${d}`);
          // Not a constant picture: seeds give different images.
          assert.ok(maxAbsDiff(a.subarray(0, a.length / 6), a.subarray(a.length / 6, a.length / 3)) > 1e-3);
          const [ia, ib] = [
            await sampleImages(original, its, { truncation: psi }),
            await sampleImages(loaded, its, { truncation: psi }),
          ];
          assert.deepEqual(ib.data, ia.data, `ψ ${psi}: 8-bit images equal`);
        }
        // Leak check: a warmed-up call leaves the tensor count unchanged.
        await sampleImages(loaded, its.slice(0, 2));
        const before = tf.memory().numTensors;
        await sampleImages(loaded, its.slice(0, 2));
        assert.equal(tf.memory().numTensors, before);
      } finally {
        original.dispose();
        loaded.dispose();
      }

      // Through a folder: write atomically, read back (validated), same images again.
      const dir = join(out, `export-${model}`);
      await writeTfjsGenerator(exp, dir);
      assert.deepEqual((await readdir(dir)).sort(), ['generator.json', 'model.json', 'weights.bin']);
      assert.deepEqual(
        (await readdir(out)).filter((n) => n.startsWith('.')),
        [],
        'no temporary folder is left',
      );
      const back = await readTfjsGenerator(dir);
      assert.deepEqual(back.meta, exp.meta);
      const again = await loadTfjsSampler(memoryHandler(back), back.meta);
      const first = await loadTfjsSampler(memoryHandler(exp), exp.meta);
      try {
        const its = items(again);
        assert.deepEqual((await sampleImages(again, its)).data, (await sampleImages(first, its)).data);
      } finally {
        again.dispose();
        first.dispose();
      }
      await assert.rejects(writeTfjsGenerator(exp, dir), ConfigError, 'an existing export needs overwrite');
      await writeTfjsGenerator(exp, dir, { overwrite: true });
    });
  }

  test("interpolation: slerp keeps the endpoints exactly and the images at them equal the seeds' images", async () => {
    const run = await trainGan(tiny({ model: 'cgan' }));
    const exp = await exportTfjsGenerator(run.runDir);
    const g = await loadTfjsSampler(memoryHandler(exp), exp.meta);
    try {
      const [a, b] = [zFromSeed(11, g.zDim), zFromSeed(12, g.zDim)];
      assert.deepEqual(slerp(a, b, 0), a);
      assert.deepEqual(slerp(a, b, 1), b);
      // Midway: on the great circle (norm between the two), not the chord (shorter).
      const mid = slerp(a, b, 0.5);
      const norm = (v: Float32Array) => Math.hypot(...v);
      const lerpMid = a.map((v, i) => (v + b[i]!) / 2);
      assert.ok(norm(mid) > norm(lerpMid));
      assert.ok(Math.abs(norm(mid) - (norm(a) + norm(b)) / 2) < 0.05 * norm(a));
      const frames = [0, 0.5, 1].map((t) => slerp(a, b, t));
      const z = new Float32Array(frames.length * g.zDim);
      frames.forEach((f, i) => z.set(f, i * g.zDim));
      const labels = Int32Array.from([1, 1, 1]);
      const strip = await sampleFromLatents(g, z, labels, 0.8);
      const ends = await sampleImages(
        g,
        [
          { seed: 11, label: 1 },
          { seed: 12, label: 1 },
        ],
        { truncation: 0.8 },
      );
      const per = g.size * g.size * g.channels;
      assert.deepEqual(strip.data.subarray(0, per), ends.data.subarray(0, per));
      assert.deepEqual(strip.data.subarray(2 * per), ends.data.subarray(per));
      assert.notDeepEqual(strip.data.subarray(per, 2 * per), ends.data.subarray(0, per));
    } finally {
      g.dispose();
    }
  });

  test('refusals: no checkpoint, a folder that is not an export, a broken generator.json', async () => {
    const empty = join(out, 'not-a-run');
    await mkdir(join(empty, 'checkpoints'), { recursive: true });
    await assert.rejects(exportTfjsGenerator(empty), CheckpointError);
    const other = join(out, 'notes');
    await mkdir(other);
    await writeFile(join(other, 'readme.txt'), 'mine');
    const run = await trainGan(tiny({ model: 'cgan', kimg: 0.016 }));
    const exp = await exportTfjsGenerator(run.runDir);
    await assert.rejects(writeTfjsGenerator(exp, other, { overwrite: true }), /not a TF.js generator export/);
    await assert.rejects(readTfjsGenerator(other), CheckpointError);
    assert.throws(() => parseGeneratorMeta({ ...exp.meta, truncation: 'x' }), /truncation/);
    assert.throws(() => parseGeneratorMeta({ ...exp.meta, classNames: ['a'] }), /class names/);
    await assert.rejects(
      loadTfjsSampler(memoryHandler(exp), exp.meta, { steps: 3 }),
      /apply to ddpm exports/,
    );
  });

  test('medsynth export --format tfjs writes a folder that loads back; refusals name the flag', async () => {
    const run = await trainGan(tiny({ model: 'stylegan2', kimg: 0.016 }));
    const out = join(run.runDir, '..', 'exported');
    const cli = async (...args: string[]) => {
      let stdout = '';
      const program = new Command('medsynth').exitOverride();
      registerExportCommand(program, { stdout: { write: (s: string) => (stdout += s) } });
      for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => undefined });
      await program.parseAsync(['export', ...args], { from: 'user' });
      return stdout;
    };
    const said = JSON.parse(await cli('--run', run.runDir, '--out', out, '--json')) as Record<
      string,
      unknown
    >;
    assert.equal(said['family'], 'stylegan2');
    assert.equal(said['network'], 'G_ema');
    const back = await readTfjsGenerator(out);
    assert.equal(back.meta.truncation, 'w');
    const direct = await exportTfjsGenerator(run.runDir);
    assert.deepEqual(new Uint8Array(back.weightData), new Uint8Array(direct.weightData));
    await assert.rejects(cli('--run', run.runDir, '--out', out), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.context.field, '--out');
      return true;
    });
    assert.match(
      await cli('--run', run.runDir, '--out', out, '--overwrite', '--no-ema'),
      /exported stylegan2 G of/,
    );
    assert.equal((await readTfjsGenerator(out)).meta.network, 'G');
    await assert.rejects(
      cli('--run', run.runDir, '--out', join(out, 'x'), '--format', 'onnx'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.context.field, '--format');
        return true;
      },
    );
  });
});
