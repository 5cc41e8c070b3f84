// Study summaries from hand-made job rows: intervals over seeds, the paired comparisons with the real
// baseline, Holm adjustment, verdicts and the CSV — checked against values computed here from the rows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classificationMetrics } from '../../src/classify/metrics.js';
import { mcnemar, pairedTTest, summarise } from '../../src/classify/statistics.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { jobId, type JobRow } from '../../src/study/store.js';
import { resultsCsv, summariseStudy } from '../../src/study/summary.js';
import { parse } from 'csv-parse/sync';
import { formatStudy } from '../../src/cli/study.js';

const classNames = ['normal', 'pneumonia'];
// 40 test images: 16 normal, 24 pneumonia.
const labels = Int32Array.from({ length: 40 }, (_, i) => (i < 16 ? 0 : 1));

/** A job whose classifier gets image i right unless `wrong(i)`; probabilities follow the prediction. */
function row(condition: string, seed: number, wrong: (i: number) => boolean, synthetic = 0): JobRow {
  const proba = new Float32Array(80);
  labels.forEach((l, i) => {
    const predicted = wrong(i) ? 1 - l : l;
    proba[2 * i + predicted] = 0.8;
    proba[2 * i + 1 - predicted] = 0.2;
  });
  const metrics = classificationMetrics(labels, proba, classNames);
  return {
    id: jobId(condition, 'cnn', seed),
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
  assert.ok(
    Math.abs(cell('synthetic').vsReal!.accuracyDiff!.mean - diff.reduce((a, b) => a + b) / 3) < 1e-12,
  );
  assert.equal(cell('synthetic').vsReal!.pairedT.p, pairedTTest(acc('synthetic'), acc('real')).p);
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
  assert.deepEqual([cell('synthetic').vsReal!.mcnemar.b, cell('synthetic').vsReal!.mcnemar.c], [b, c]);
  assert.ok(cell('synthetic').vsReal!.pHolm! >= cell('synthetic').vsReal!.mcnemar.p);
  assert.equal(cell('real').vsReal, null);
  assert.ok(cell('synthetic').metrics.sensitivity !== null && cell('synthetic').perClassF1.length === 2);

  const replace = s.verdicts.find((v) => v.question === 'replace')!;
  assert.match(replace.text, /^cnn: training only on synthetic images changed accuracy by -/);
  assert.match(replace.text, /3 seeds/);
  const augment = s.verdicts.find((v) => v.question === 'augment')!;
  assert.match(augment.text, /real\+synthetic×1/);

  const csv = resultsCsv(s).trim().split('\n');
  assert.equal(csv.length, 1 + rows.length);
  assert.equal(
    csv[0],
    'condition,classifier,seed,train_real,train_synthetic,accuracy,balanced_accuracy,macro_f1,auc,sensitivity,specificity,f1_normal,f1_pneumonia,seconds',
  );
  // Quoting and empty cells, read back by an independent parser.
  const odd = parse(resultsCsv({ ...s, classNames: ['nor,mal', 'pneu"monia'] }), {
    relax_column_count: false,
  }) as string[][];
  assert.deepEqual(odd[0]!.slice(-3), ['f1_nor,mal', 'f1_pneu"monia', 'seconds']);
  assert.equal(odd.length, 1 + rows.length);
  const job = s.jobs[0]!;
  assert.deepEqual(odd[1]!.slice(0, 5), [
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
