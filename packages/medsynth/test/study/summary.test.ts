// Study summaries from hand-made job rows: intervals over seeds (and over generator seeds), the paired
// comparisons with the baseline and the controls, Holm adjustment, the verdicts' wording for every
// combination of the two tests, quality vs gain, and the CSV — checked against values computed here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classificationMetrics } from '../../src/classify/metrics.js';
import { boundedInterval, mcnemar, pairedTTest, spearman, summarise } from '../../src/classify/statistics.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { jobId, type JobRow } from '../../src/study/store.js';
import {
  type InstanceRecord,
  judgeEffect,
  resultsCsv,
  summariseStudy,
  type Interval,
} from '../../src/study/summary.js';
import { parse } from 'csv-parse/sync';
import { formatStudy } from '../../src/cli/study.js';

const classNames = ['normal', 'pneumonia'];
// 40 test images: 16 normal, 24 pneumonia.
const labels = Int32Array.from({ length: 40 }, (_, i) => (i < 16 ? 0 : 1));

/** A job whose classifier gets image i right unless `wrong(i)`; probabilities follow the prediction. */
function row(
  condition: string,
  seed: number,
  wrong: (i: number) => boolean,
  synthetic = 0,
  generator: string | null = synthetic > 0 ? 'cgan' : null,
  generatorSeed: number | null = generator ? 0 : null,
): JobRow {
  const proba = new Float32Array(80);
  labels.forEach((l, i) => {
    const predicted = wrong(i) ? 1 - l : l;
    proba[2 * i + predicted] = 0.8;
    proba[2 * i + 1 - predicted] = 0.2;
  });
  const metrics = classificationMetrics(labels, proba, classNames);
  return {
    id: jobId(generator, generatorSeed, condition, 'cnn', seed),
    generator,
    generatorSeed,
    condition,
    classifier: 'cnn',
    seed,
    trainReal: synthetic > 0 && condition === 'synthetic' ? 0 : 100,
    trainSynthetic: synthetic,
    trainClassCounts: [40, 60],
    metrics: metrics as unknown as Record<string, unknown>,
    correct: Uint8Array.from(labels, (_, i) => (wrong(i) ? 0 : 1)),
    proba,
    classifierInfo: {},
    seconds: 1,
    finishedAt: '2026-12-03T00:00:00.000Z',
  };
}

const rows: JobRow[] = [];
for (const seed of [0, 1, 2]) {
  rows.push(row('real', seed, (i) => i % 10 === seed)); // 4 wrong
  rows.push(row('synthetic', seed, (i) => i % 5 === seed || i < 3, 100)); // 8–11 wrong
  rows.push(row('real+synthetic×1', seed, (i) => i % 20 === seed, 100)); // 2 wrong
}
const config = resolveStudyConfig({
  data: { source: 'x.npz' },
  conditions: ['real', 'synthetic', 'real+synthetic:1'],
  classifiers: ['cnn'],
  seeds: [0, 1, 2],
});

test('intervals, paired tests and Holm-adjusted p against the real baseline', () => {
  const s = summariseStudy(config, classNames, labels, rows);
  assert.deepEqual(s.conditions, ['real', 'synthetic', 'real+synthetic×1']);
  assert.deepEqual(s.testClassCounts, [16, 24]);
  const cell = (c: string) => s.cells.find((x) => x.condition === c)!;
  const acc = (c: string) =>
    rows.filter((r) => r.condition === c).map((r) => r.metrics['accuracy'] as number);
  const expected = summarise(acc('synthetic'));
  assert.equal(cell('synthetic').metrics.accuracy!.mean, expected.mean);
  assert.deepEqual(cell('synthetic').metrics.accuracy!.ci, expected.ci);
  const diff = acc('synthetic').map((a, i) => a - acc('real')[i]!);
  const vs = (c: string) => cell(c).comparisons.find((x) => x.role === 'baseline')!;
  assert.equal(vs('synthetic').against, 'real');
  assert.ok(Math.abs(vs('synthetic').diff.accuracy!.mean - diff.reduce((a, b) => a + b) / 3) < 1e-12);
  assert.deepEqual(vs('synthetic').diff.accuracy!.ci, boundedInterval(diff, [-1, 1]).ci);
  assert.equal(vs('synthetic').pairedT.p, pairedTTest(acc('synthetic'), acc('real')).p);
  // McNemar pooled over seeds: the discordant counts add up.
  let b = 0;
  let c = 0;
  for (const seed of [0, 1, 2]) {
    const m = mcnemar(
      rows.find((r) => r.condition === 'real' && r.seed === seed)!.correct,
      rows.find((r) => r.condition === 'synthetic' && r.seed === seed)!.correct,
    );
    b += m.b;
    c += m.c;
  }
  assert.deepEqual([vs('synthetic').mcnemar.b, vs('synthetic').mcnemar.c], [b, c]);
  assert.ok(vs('synthetic').pHolm! >= vs('synthetic').mcnemar.p);
  assert.deepEqual(cell('real').comparisons, []);
  assert.ok(cell('synthetic').metrics.sensitivity !== null && cell('synthetic').perClass.f1.length === 2);
  assert.equal(cell('synthetic').generator, 'cgan');
  assert.equal(cell('synthetic').units, 'classifier seeds');
  // Per-class precision: the mean of each job's.
  const prec = rows
    .filter((r) => r.condition === 'synthetic')
    .map((r) => (r.metrics['perClass'] as { precision: number }[])[0]!.precision);
  assert.ok(
    Math.abs(cell('synthetic').perClass.precision[0]!.mean - prec.reduce((x, y) => x + y) / 3) < 1e-12,
  );

  const replace = s.verdicts.find((v) => v.question === 'replace')!;
  assert.match(replace.text, /^cnn × cgan: training only on synthetic images changed accuracy by -/);
  assert.match(replace.text, /3 classifier seeds/);
  assert.match(replace.text, /paired t/);
  assert.match(replace.text, /McNemar/);
  const augment = s.verdicts.find((v) => v.question === 'augment')!;
  assert.match(augment.text, /real\+synthetic×1/);

  const csv = resultsCsv(s).trim().split('\n');
  assert.equal(csv.length, 1 + rows.length);
  assert.equal(
    csv[0],
    'generator,generator_seed,condition,classifier,seed,train_real,train_synthetic,accuracy,balanced_accuracy,macro_f1,auc,sensitivity,specificity,f1_normal,f1_pneumonia,seconds',
  );
  // Quoting and empty cells, read back by an independent parser.
  const odd = parse(resultsCsv({ ...s, classNames: ['nor,mal', 'pneu"monia'] }), {
    relax_column_count: false,
  }) as string[][];
  assert.deepEqual(odd[0]!.slice(-3), ['f1_nor,mal', 'f1_pneu"monia', 'seconds']);
  assert.equal(odd.length, 1 + rows.length);
  const job = s.jobs[0]!;
  assert.deepEqual(odd[1]!.slice(0, 7), [
    job.generator ?? '',
    job.generatorSeed === null ? '' : String(job.generatorSeed),
    job.condition,
    job.classifier,
    String(job.seed),
    String(job.trainReal),
    String(job.trainSynthetic),
  ]);
  const text = formatStudy(s, '/tmp/x', 12, 9, 9);
  for (const c of ['real', 'synthetic', 'real+synthetic×1']) assert.ok(text.includes(c));
  assert.match(text, /9 of 9 jobs/);
});

const iv = (mean: number, lo: number, hi: number, n = 3): Interval => ({
  n,
  mean,
  std: 0.01,
  ci: [lo, hi],
  method: 't',
});

test('verdict wording for every combination of (interval spans 0) × (McNemar significant), never contradicting', () => {
  // Interval excludes 0, McNemar significant, same direction: an effect, both tests named.
  let j = judgeEffect(iv(0.05, 0.01, 0.09), { b: 2, c: 20, pHolm: 0.0004 }, 'classifier seeds');
  assert.equal(j.direction, 'better');
  assert.match(
    j.basis,
    /both tests agree: the 95 % interval over 3 classifier seeds \(paired t\) excludes 0 and McNemar's test .* is significant \(p < 0.001, Holm-adjusted\)/,
  );
  j = judgeEffect(iv(-0.05, -0.09, -0.01), { b: 20, c: 2, pHolm: 0.004 });
  assert.equal(j.direction, 'worse');
  // Interval spans 0, McNemar significant (the case that read "no clear effect (p = 0.011)"): not established.
  j = judgeEffect(iv(0.02, -0.01, 0.05), { b: 5, c: 16, pHolm: 0.011 }, 'classifier seeds');
  assert.equal(j.direction, 'unclear');
  assert.match(
    j.basis,
    /is significant \(p = 0.011.*but the 95 % interval .* spans 0: the difference does not hold across classifier seeds, so it is not established/,
  );
  assert.doesNotMatch(j.basis, /no clear/);
  // Interval excludes 0, McNemar not significant: consistent but small, not established.
  j = judgeEffect(iv(0.01, 0.002, 0.02), { b: 8, c: 11, pHolm: 0.65 });
  assert.equal(j.direction, 'unclear');
  assert.match(j.basis, /excludes 0, but McNemar's test .* is not significant \(p = 0.650/);
  // Neither: no difference, and both tests named.
  j = judgeEffect(iv(0.0, -0.02, 0.02), { b: 8, c: 9, pHolm: 1 });
  assert.equal(j.direction, 'none');
  assert.match(j.basis, /neither test finds a difference: .* spans 0 and McNemar's test .* not significant/);
  // The tests disagree in direction.
  j = judgeEffect(iv(0.03, 0.01, 0.05), { b: 30, c: 10, pHolm: 0.002 });
  assert.equal(j.direction, 'unclear');
  assert.match(j.basis, /disagree in direction/);
  // One unit: McNemar alone, and the text says there is no interval.
  j = judgeEffect(iv(0.05, 0.05, 0.05, 1), { b: 1, c: 12, pHolm: 0.003 }, 'classifier seeds');
  assert.equal(j.direction, 'better');
  assert.match(j.basis, /one classifier seed, so no interval/);
  j = judgeEffect(null, { b: 3, c: 4, pHolm: 1 });
  assert.equal(j.direction, 'none');
});

test('two generator seeds: intervals over per-generator-seed means; controls compared within the generator', () => {
  const rs: JobRow[] = [];
  for (const seed of [0, 1]) {
    rs.push(row('real', seed, (i) => i % 8 === seed));
    rs.push(row('oversampled', seed, (i) => i % 9 === seed));
    for (const g of [0, 1]) {
      rs.push(row('rebalanced', seed, (i) => i % (6 + g) === seed, 20, 'ddpm', g));
      rs.push(row('rebalanced+shuffled', seed, (i) => i % (4 + g) === 0 || i === seed, 20, 'ddpm', g));
    }
  }
  const cfg = resolveStudyConfig({
    data: { source: 'x.npz' },
    generators: ['ddpm'],
    generatorSeeds: 2,
    conditions: ['real', 'rebalanced', 'oversampled', 'rebalanced+shuffled'],
    classifiers: ['cnn'],
    seeds: [0, 1],
  });
  const s = summariseStudy(cfg, classNames, labels, rs);
  const reb = s.cells.find((c) => c.condition === 'rebalanced')!;
  assert.equal(reb.units, 'generator seeds');
  assert.deepEqual(reb.generatorSeeds, [0, 1]);
  const acc = (c: string, g: number | null) =>
    rs.filter((r) => r.condition === c && r.generatorSeed === g).map((r) => r.metrics['accuracy'] as number);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const perG = [mean(acc('rebalanced', 0)), mean(acc('rebalanced', 1))];
  assert.equal(reb.metrics.accuracy!.n, 2);
  assert.deepEqual(reb.metrics.accuracy!.ci, boundedInterval(perG, [0, 1]).ci);
  const real = mean(acc('real', null));
  const base = reb.comparisons.find((c) => c.role === 'baseline')!;
  assert.equal(base.against, 'real');
  assert.ok(Math.abs(base.diff.accuracy!.mean - (mean(perG) - real)) < 1e-12);
  assert.deepEqual(
    reb.comparisons.filter((c) => c.role === 'control').map((c) => [c.against, c.againstGenerator]),
    [
      ['oversampled', null],
      ['rebalanced+shuffled', 'ddpm'],
    ],
  );
  assert.match(s.statistics, /trained 2 times/);
  assert.ok(s.verdicts.some((v) => v.question === 'controls' && /oversampled/.test(v.text)));
});

test('quality vs gain: Spearman over generator instances, as scipy computes it', () => {
  const rs: JobRow[] = [];
  const gens = ['a', 'b', 'c', 'd'];
  for (const seed of [0, 1]) {
    rs.push(row('real', seed, (i) => i % 8 === seed));
    gens.forEach((g, k) => {
      rs.push(row('synthetic', seed, (i) => i % (3 + k) === 0 || i === seed, 40, g, 0));
      rs.push(row('rebalanced+shuffled', seed, (i) => i % (5 + k) === 0, 8, g, 0));
    });
  }
  const fids = [9, 4, 6, 2];
  const instances: InstanceRecord[] = gens.map((g, k) => ({
    key: `${g}/seed-0/all`,
    generator: g,
    generatorSeed: 0,
    fraction: null,
    perClassModels: false,
    existingRun: false,
    runs: [],
    trainedOn: { images: 40, classCounts: [16, 24], what: 'the whole train split' },
    pool: { images: 40, seconds: 1, perClass: [16, 24] },
    fidelity: null,
    evaluation: null,
    quality: {
      fid: fids[k]!,
      kid: null,
      precision: null,
      recall: null,
      coverage: null,
      msssimRatio: null,
      classFidelity: null,
    },
  }));
  const cfg = resolveStudyConfig({
    data: { source: 'x.npz' },
    generators: gens.map((name) => ({ name, train: { model: 'cgan' } })),
    conditions: ['real', 'synthetic', 'rebalanced+shuffled'],
    classifiers: ['cnn'],
    seeds: [0, 1],
  });
  const s = summariseStudy(cfg, classNames, labels, rs, instances);
  const q = s.qualityVsGain!;
  // One point per generator for synthetic; the shuffled-label control is not a quality-vs-gain point.
  assert.deepEqual(
    q.points.map((p) => p.condition),
    ['synthetic', 'synthetic', 'synthetic', 'synthetic'],
  );
  const gain = gens.map((g) => {
    const mine = rs
      .filter((r) => r.generator === g && r.condition === 'synthetic')
      .map((r) => r.metrics['accuracy'] as number);
    const real = rs.filter((r) => r.condition === 'real').map((r) => r.metrics['accuracy'] as number);
    return (mine[0]! - real[0]! + mine[1]! - real[1]!) / 2;
  });
  const cell = q.correlations.find((c) => c.quality === 'fid' && c.effect === 'accuracy')!;
  const expected = spearman(fids, gain);
  assert.equal(cell.n, 4);
  assert.ok(Math.abs(cell.rho! - expected.rho!) < 1e-12);
  assert.equal(cell.p, expected.p);
  const verdict = s.verdicts.find((v) => v.question === 'quality')!;
  assert.match(verdict.text, /Spearman's ρ between FID and the accuracy change is/);
  assert.match(verdict.text, /exact permutation/);
});
