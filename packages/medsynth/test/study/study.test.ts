// A tiny study end to end: generators (on the whole split and on the limited subset), synthetic pools,
// evaluation, the job grid, results; interrupted and resumed with the finished jobs' rows untouched and the
// rest equal to an uninterrupted study's; the limited generator saw exactly the limited classifiers' images;
// per-class unconditional generators; a diffusion generator.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, StudyError } from '../../src/runtime/errors.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { readStudyConfig, resumeStudy, runStudy, studyJobs } from '../../src/study/runner.js';
import { openDataset } from '../../src/data/source.js';
import { stratifiedFraction } from '../../src/data/splits.js';
import { limitedSubset } from '../../src/study/conditions.js';
import { studyRows } from '../helpers/study.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
let dir: string;

before(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'medsynth-study-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = () => resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA } });

/** The numbered run directory inside an instance's folder. */
function runIn(folder: string): string {
  return join(
    folder,
    readdirSync(folder).find((n) => /^\d{5,}-/.test(n))!,
  );
}

describe('medsynth study (tiny preset)', () => {
  let interrupted: string;

  test('a killed study resumes: finished rows kept, the rest run, results written', async () => {
    const c = config();
    const jobs = studyJobs(c);
    assert.equal(jobs.length, 8); // 4 conditions × 2 classifiers × 1 seed
    const controller = new AbortController();
    await assert.rejects(
      runStudy(c, {
        outDir: join(dir, 'studies'),
        cacheDir: join(dir, 'cache'),
        signal: controller.signal,
        onProgress: (e) => {
          if (e.type === 'tick' && e.phase === 'jobs' && e.done >= 3) controller.abort();
        },
      }),
    );
    const [name] = (await import('node:fs')).readdirSync(join(dir, 'studies'));
    interrupted = join(dir, 'studies', name!);
    const before = studyRows(interrupted);
    assert.equal(before.length, 3, 'three jobs had finished');
    assert.deepEqual(await readStudyConfig(interrupted), c);

    const result = await resumeStudy(interrupted, { cacheDir: join(dir, 'cache') });
    assert.equal(result.jobs, 8);
    assert.equal(result.ran, 5);
    const afterRows = studyRows(interrupted);
    assert.equal(afterRows.length, 8);
    for (const r of before) {
      const again = afterRows.find((x) => x.id === r.id)!;
      assert.deepEqual(again, r, `row ${r.id} untouched by the resume`);
    }
    for (const f of [
      'results.json',
      'results.csv',
      'real-grid.png',
      'generators/cgan/seed-0/all/synthetic-grid.png',
      'generators/cgan/seed-0/all/evaluation/evaluation.json',
      'generators/cgan/seed-0/limited-25pct/synthetic-grid.png',
    ])
      assert.ok(existsSync(join(interrupted, f)), f);
    // The limited subset's generator is not evaluated (its scope is not the whole split).
    assert.ok(!existsSync(join(interrupted, 'generators/cgan/seed-0/limited-25pct/evaluation')));

    const summary = result.summary;
    assert.deepEqual(summary.classNames, ['normal', 'pneumonia']);
    assert.equal(summary.cells.length, 8);
    for (const classifier of ['cnn', 'lbp-rf']) {
      const real = summary.cells.find((x) => x.classifier === classifier && x.condition === 'real')!;
      assert.deepEqual(real.comparisons, []);
      assert.equal(real.generator, null);
      // Trained on 400 real images, scored on 200 held-out ones: well above chance (0.5).
      assert.ok(
        real.metrics.balancedAccuracy!.mean > 0.6,
        `${classifier} real: ${real.metrics.balancedAccuracy!.mean}`,
      );
      const synth = summary.cells.find((x) => x.classifier === classifier && x.condition === 'synthetic')!;
      assert.equal(synth.trainReal, 0);
      assert.equal(synth.trainSynthetic, real.trainReal);
      const vs = synth.comparisons.find((c) => c.role === 'baseline')!;
      assert.ok(vs.mcnemar.p >= 0 && vs.mcnemar.p <= 1);
      assert.equal(synth.generator, 'cgan');
    }
    const limited = summary.cells.find((x) => x.condition === 'limited-25%+synthetic')!;
    assert.equal(limited.trainReal + limited.trainSynthetic, summary.cells[0]!.trainReal);
    assert.ok(summary.verdicts.some((v) => v.question === 'replace'));
    assert.deepEqual(
      summary.instances.map((i) => [i.key, i.trainedOn.images]),
      [
        ['cgan/seed-0/all', 400],
        ['cgan/seed-0/limited-25pct', 100],
      ],
    );
    const whole = summary.instances[0]!;
    assert.ok(
      whole.quality && whole.quality.fid !== null && whole.quality.fid > 0,
      'FID of the whole-split generator',
    );
    assert.ok(
      whole.fidelity && whole.fidelity.accuracy >= 0 && whole.fidelity.accuracy <= 1,
      'class fidelity',
    );
    const csv = (await readFile(join(interrupted, 'results.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv.length, 9);
    assert.match(
      csv[0]!,
      /^generator,generator_seed,condition,classifier,seed,train_real,train_synthetic,accuracy,balanced_accuracy/,
    );
  });

  test('an uninterrupted study gives the same rows as the resumed one', async () => {
    const fresh = await runStudy(config(), { outDir: join(dir, 'studies'), cacheDir: join(dir, 'cache') });
    const a = studyRows(interrupted);
    const b = studyRows(fresh.dir);
    assert.equal(b.length, a.length);
    for (const r of a) {
      const other = b.find((x) => x.id === r.id)!;
      assert.deepEqual(other.metrics, r.metrics, r.id);
      assert.deepEqual(Array.from(other.proba), Array.from(r.proba), r.id);
    }
  });

  test('the limited generator trained on exactly the images of the limited classifiers (its recorded ids)', async () => {
    const c = config();
    const ds = await openDataset(c.data);
    let train = ds.split('train');
    train = train.subset(stratifiedFraction(train.labels, c.maxImages.train! / train.size, c.data.seed));
    const labels = Int32Array.from(train.labels);
    const subset = limitedSubset(labels, 0.25, 0);
    const expected = Array.from(subset, (p) => train.id(p)).sort();
    const run = runIn(join(interrupted, 'generators/cgan/seed-0/limited-25pct'));
    const recorded = JSON.parse(await readFile(join(run, 'run.json'), 'utf8')).data;
    assert.equal(recorded.trainImages, expected.length);
    assert.deepEqual([...recorded.imageIds].sort(), expected);
    // … which are the real images of the limited rows (their real count), and the whole-split generator saw
    // the study's capped train split.
    const rows = studyRows(interrupted).filter((r) => r.condition === 'limited-25%+synthetic');
    for (const r of rows) assert.equal(r.trainReal, expected.length);
    const all = JSON.parse(
      await readFile(join(runIn(join(interrupted, 'generators/cgan/seed-0/all')), 'run.json'), 'utf8'),
    );
    assert.deepEqual(
      [...all.data.imageIds].sort(),
      Array.from({ length: train.size }, (_, i) => train.id(i)).sort(),
    );
  });

  test('a generator run with other channels than the study asks for is refused before loading images', async () => {
    const run = runIn(join(interrupted, 'generators/cgan/seed-0/all'));
    const events: string[] = [];
    await assert.rejects(
      runStudy(
        resolveStudyConfig({
          preset: 'tiny',
          data: { source: PNEUMONIA },
          channels: 3,
          generator: { run },
          conditions: ['real', 'synthetic'],
        }),
        {
          outDir: join(dir, 'channels'),
          onProgress: (e) => events.push(e.type === 'phase' ? e.phase : e.type),
        },
      ),
      (e: unknown) =>
        e instanceof StudyError &&
        /other channels/.test(e.message) &&
        /expected 3 channel\(s\), found 1 channel\(s\)/.test(e.message),
    );
    assert.ok(!events.includes('synthetic pool'), events.join(', '));
  });

  test('bad configs fail before any work', async () => {
    assert.throws(
      () => resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA }, conditions: ['real', 'fake'] }),
      (e: unknown) => e instanceof ConfigError && /conditions\.1/.test(e.message),
    );
    assert.throws(
      () => resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA }, conditions: ['synthetic'] }),
      (e: unknown) => e instanceof ConfigError && /real/.test(e.message),
    );
    assert.throws(
      () =>
        studyJobs(resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA }, classifiers: ['svm9'] })),
      (e: unknown) => e instanceof ConfigError && /svm9/.test(e.message),
    );
    assert.throws(
      () =>
        studyJobs(
          resolveStudyConfig({
            preset: 'tiny',
            data: { source: PNEUMONIA },
            classifiers: [{ name: 'x', base: 'cnn', options: { epochs: -1 } }],
          }),
        ),
      (e: unknown) => e instanceof ConfigError && /epochs/.test(e.message),
    );
    await assert.rejects(
      runStudy(resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA }, positiveClass: 'tumour' }), {
        outDir: join(dir, 'bad'),
      }),
      (e: unknown) => e instanceof ConfigError && /positiveClass/.test(e.message),
    );
    await assert.rejects(resumeStudy(join(dir, 'nowhere')), (e: unknown) => e instanceof StudyError);
  });
});

test('a study with a diffusion generator: trained, sampled into the pool, timed, summarised', async () => {
  const c = resolveStudyConfig({
    preset: 'tiny',
    data: { source: PNEUMONIA },
    generator: { train: { model: 'ddpm', kimg: 0.25, sampleSteps: 4 } },
    conditions: ['real', 'synthetic'],
    classifiers: [{ name: 'lbp-rf', base: 'lbp-rf', options: { nEstimators: 10 } }],
    evaluate: { enabled: false },
  });
  const result = await runStudy(c, { outDir: join(dir, 'ddpm'), cacheDir: join(dir, 'cache') });
  assert.deepEqual(
    c.generators.map((g) => g.name),
    ['ddpm'],
  );
  const run = runIn(join(result.dir, 'generators/ddpm/seed-0/all'));
  const spec = JSON.parse(await readFile(join(run, 'run.json'), 'utf8')).spec;
  assert.equal(spec.family, 'ddpm');
  assert.equal(spec.sampling.steps, 4);
  // The study's tiny preset keeps its narrow networks for the diffusion family too.
  assert.equal(spec.unet.width, 8);
  assert.equal(result.jobs, 2);
  // The pool is the synthetic condition's demand: the real train split's count (400 with tiny's maxImages).
  const pool = result.summary.instances[0]!.pool;
  assert.equal(pool.images, 400);
  assert.ok(pool.seconds > 0);
  const saved = JSON.parse(await readFile(join(result.dir, 'results.json'), 'utf8'));
  assert.deepEqual(saved.instances[0].pool, pool);
  const synthetic = result.summary.jobs.find((j) => j.condition === 'synthetic')!;
  assert.equal(synthetic.trainReal, 0);
  assert.equal(synthetic.trainSynthetic, 400);

  // The same run sampled again by another study: the same sampler gives the same pool, another guidance
  // scale another one (the pool's first images are the synthetic grid).
  const again = (name: string, sampling?: { guidance: number }) =>
    runStudy(
      resolveStudyConfig({
        ...c,
        generators: undefined,
        generator: { run, ...(sampling ? { sampling } : {}) },
      } as unknown as Parameters<typeof resolveStudyConfig>[0]),
      {
        outDir: join(dir, name),
        cacheDir: join(dir, 'cache'),
      },
    );
  const grid = async (d: string) =>
    readFile(
      join(d, 'generators', (await readdir(join(d, 'generators')))[0]!, 'seed-0/all/synthetic-grid.png'),
    );
  const first = await grid(result.dir);
  assert.ok(first.equals(await grid((await again('ddpm-same')).dir)), 'the same sampler gave another pool');
  const guided = await again('ddpm-guided', { guidance: 3 });
  assert.ok(!first.equals(await grid(guided.dir)), 'guidance 3 gave the pool of guidance 1');
});

test('per-class models: one unconditional generator per class, each class sampled from its own', async () => {
  const c = resolveStudyConfig({
    preset: 'tiny',
    data: { source: PNEUMONIA },
    generators: [{ train: { model: 'dcgan' }, perClassModels: true }],
    conditions: ['real', 'synthetic', 'rebalanced'],
    classifiers: [
      { name: 'lbp-rf', base: 'lbp-rf', options: { nEstimators: 10 } },
      { name: 'cnn', base: 'cnn', options: { epochs: 2, width: 4 } },
    ],
    evaluate: { enabled: false },
    equalSteps: true,
  });
  const result = await runStudy(c, { outDir: join(dir, 'per-class'), cacheDir: join(dir, 'cache') });
  const folder = join(result.dir, 'generators/dcgan-per-class/seed-0/all');
  const counts: number[] = [];
  for (const [k, name] of ['normal', 'pneumonia'].entries()) {
    const run = runIn(join(folder, `class-${k}`));
    const info = JSON.parse(await readFile(join(run, 'run.json'), 'utf8'));
    assert.deepEqual(info.data.classNames, [name], `class ${k}'s model knows only ${name}`);
    assert.equal(info.data.trainClass, name);
    counts.push(info.data.trainImages);
  }
  const instance = result.summary.instances[0]!;
  assert.equal(instance.perClassModels, true);
  assert.equal(instance.runs.length, 2);
  // Each model saw its class's images of the capped train split, together the whole split.
  assert.deepEqual(counts, instance.trainedOn.classCounts);
  const synth = result.summary.jobs.find((j) => j.condition === 'synthetic')!;
  assert.equal(synth.trainSynthetic, 400);
  assert.equal(synth.trainReal, 0);
  // The pool: per class the most any condition needs (synthetic: the class's count; rebalanced: the gap).
  const top = Math.max(...counts);
  assert.deepEqual(
    instance.pool.perClass,
    counts.map((n) => Math.max(n, top - n)),
  );
  assert.equal(
    instance.pool.images,
    instance.pool.perClass.reduce((a, b) => a + b, 0),
  );
  // equalSteps: every CNN job took the optimiser steps of 2 epochs over the 400 real images (batch 64: 7 per
  // epoch), whatever its training set's size (rebalanced has 400 + 194).
  const steps = studyRows(result.dir)
    .filter((r) => r.classifier === 'cnn')
    .map((r) => [r.condition, r.trainReal + r.trainSynthetic, (r.classifierInfo as { steps: number }).steps]);
  assert.equal(steps.length, 3);
  for (const [condition, , n] of steps) assert.equal(n, 14, `${String(condition)}: ${JSON.stringify(steps)}`);
  assert.ok(
    steps.some(([, images]) => (images as number) > 400),
    'a condition with more images',
  );
});
