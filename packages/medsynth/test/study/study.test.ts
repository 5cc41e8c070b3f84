// A tiny study end to end: generator, synthetic pool, evaluation, the job grid, results; interrupted and
// resumed with the finished jobs' rows untouched and the rest equal to an uninterrupted study's.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, StudyError } from '../../src/runtime/errors.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { readStudyConfig, resumeStudy, runStudy, studyJobs } from '../../src/study/runner.js';
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
      'synthetic-grid.png',
      'evaluation/evaluation.json',
    ])
      assert.ok(existsSync(join(interrupted, f)), f);

    const summary = result.summary;
    assert.deepEqual(summary.classNames, ['normal', 'pneumonia']);
    assert.equal(summary.cells.length, 8);
    for (const classifier of ['cnn', 'lbp-rf']) {
      const real = summary.cells.find((x) => x.classifier === classifier && x.condition === 'real')!;
      assert.equal(real.vsReal, null);
      // Trained on 400 real images, scored on 200 held-out ones: well above chance (0.5).
      assert.ok(
        real.metrics.balancedAccuracy!.mean > 0.6,
        `${classifier} real: ${real.metrics.balancedAccuracy!.mean}`,
      );
      const synth = summary.cells.find((x) => x.classifier === classifier && x.condition === 'synthetic')!;
      assert.equal(synth.trainReal, 0);
      assert.equal(synth.trainSynthetic, real.trainReal);
      assert.ok(synth.vsReal && synth.vsReal.mcnemar.p >= 0 && synth.vsReal.mcnemar.p <= 1);
    }
    const limited = summary.cells.find((x) => x.condition === 'limited-25%+synthetic')!;
    assert.equal(limited.trainReal + limited.trainSynthetic, summary.cells[0]!.trainReal);
    assert.ok(summary.verdicts.some((v) => v.question === 'replace'));
    const csv = (await readFile(join(interrupted, 'results.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv.length, 9);
    assert.match(csv[0]!, /^condition,classifier,seed,train_real,train_synthetic,accuracy,balanced_accuracy/);
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

  test('a generator run with other channels than the study asks for is refused before loading images', async () => {
    const { readdirSync } = await import('node:fs');
    const gan = join(interrupted, 'gan');
    const run = join(
      gan,
      readdirSync(gan).find((n) => /^\d{5,}-/.test(n))!,
    );
    const events: string[] = [];
    await assert.rejects(
      runStudy(
        resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA }, channels: 3, generator: { run } }),
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
    assert.ok(!events.includes('load real images'), events.join(', '));
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
  const { readdirSync } = await import('node:fs');
  const gan = join(result.dir, 'gan');
  const run = join(
    gan,
    readdirSync(gan).find((n) => /^\d{5,}-/.test(n))!,
  );
  const spec = JSON.parse(await readFile(join(run, 'run.json'), 'utf8')).spec;
  assert.equal(spec.family, 'ddpm');
  assert.equal(spec.sampling.steps, 4);
  // The study's tiny preset keeps its narrow networks for the diffusion family too.
  assert.equal(spec.unet.width, 8);
  assert.equal(result.jobs, 2);
  // The pool is the synthetic condition's demand: the real train split's count (400 with tiny's maxImages).
  assert.equal(result.summary.pool?.images, 400);
  assert.ok(result.summary.pool!.seconds > 0);
  const saved = JSON.parse(await readFile(join(result.dir, 'results.json'), 'utf8'));
  assert.deepEqual(saved.pool, result.summary.pool);
  const synthetic = result.summary.jobs.find((j) => j.condition === 'synthetic')!;
  assert.equal(synthetic.trainReal, 0);
  assert.equal(synthetic.trainSynthetic, 400);

  // The same run sampled again by another study: the same sampler gives the same pool, another guidance
  // scale another one (the pool's first images are the synthetic grid).
  const again = (name: string, sampling?: { guidance: number }) =>
    runStudy(
      { ...c, generator: { ...c.generator, run, ...(sampling ? { sampling } : {}) } },
      {
        outDir: join(dir, name),
        cacheDir: join(dir, 'cache'),
      },
    );
  const grid = async (d: string) => readFile(join(d, 'synthetic-grid.png'));
  const first = await grid(result.dir);
  assert.ok(first.equals(await grid((await again('ddpm-same')).dir)), 'the same sampler gave another pool');
  const guided = await again('ddpm-guided', { guidance: 3 });
  assert.ok(!first.equals(await grid(guided.dir)), 'guidance 3 gave the pool of guidance 1');
});
