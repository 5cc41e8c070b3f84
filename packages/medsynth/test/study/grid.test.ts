// The job grid (which jobs depend on which generator and generator seed) and each job's training set: the
// shuffled controls take the very images of their condition with the labels permuted among them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageArray } from '../../src/data/types.js';
import { parseCondition } from '../../src/study/conditions.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { poolLabelsFor, studyInstances, studyJobs, trainingSet } from '../../src/study/grid.js';

/** One-pixel images whose value says which image it is. */
function set(values: number[], labels: number[]) {
  const images: ImageArray = {
    width: 1,
    height: 1,
    channels: 1,
    count: values.length,
    maxValue: 255,
    data: Uint8Array.from(values),
  };
  return { images, labels: Int32Array.from(labels) };
}

// Real: 10 of class 0, 4 of class 1, 1 of class 2; pool: 30 images, 10 per class, values 100 + i.
const realLabels = [...new Array(10).fill(0), ...new Array(4).fill(1), 2];
const real = set(
  realLabels.map((_, i) => i),
  realLabels,
);
const poolLabels = Array.from({ length: 30 }, (_, i) => i % 3);
const pool = set(
  poolLabels.map((_, i) => 100 + i),
  poolLabels,
);
const job = (condition: string, seed = 3) => ({
  condition: parseCondition(condition),
  seed,
  generatorSeed: 0,
});

test('a shuffled control: its condition’s label counts, drawn from the pool under a permutation of its labels', () => {
  for (const [name, control] of [
    ['rebalanced', 'rebalanced+shuffled'],
    ['real+synthetic:0.5', 'real+shuffled-synthetic:0.5'],
  ] as const) {
    const a = trainingSet(job(name), real, pool, 3);
    const b = trainingSet(job(control), real, pool, 3);
    const n = a.real;
    assert.equal(b.real, n);
    assert.deepEqual(Array.from(b.labels.slice(0, n)), Array.from(a.labels.slice(0, n)), 'real part kept');
    // The same number of synthetic images of each label …
    const synthA = Array.from(a.labels.slice(n));
    const synthB = Array.from(b.labels.slice(n));
    assert.deepEqual([...synthB].sort(), [...synthA].sort(), `${control}: the same label counts`);
    // … drawn under the pool's labels permuted across the whole pool (a permutation within the pool) …
    const permuted = poolLabelsFor(job(control), Int32Array.from(poolLabels));
    assert.deepEqual([...permuted].sort(), [...poolLabels].sort(), 'a permutation of the pool labels');
    assert.notDeepEqual(Array.from(permuted), poolLabels, 'labels moved');
    b.poolPositions.forEach((p, i) => assert.equal(synthB[i], permuted[p], 'each label is the permuted one'));
    // … so behind the labels are images of other classes; in the condition every image is its class.
    a.poolPositions.forEach((p, i) => assert.equal(synthA[i], poolLabels[p]));
    const mismatched = b.poolPositions.filter((p, i) => poolLabels[p] !== synthB[i]).length;
    assert.ok(
      mismatched > b.poolPositions.length / 3,
      `${control}: ${mismatched} of ${b.poolPositions.length} images under another class's label`,
    );
  }
  // rebalanced tops up one class only here too (class 0 is the largest): its shuffled control still scrambles.
  const reb = trainingSet(job('rebalanced+shuffled'), real, pool, 3);
  assert.ok(reb.poolPositions.some((p, i) => poolLabels[p] !== reb.labels[reb.real + i]));
});

test('a :noaug twin and another classifier seed: same images / other images', () => {
  const a = trainingSet(job('real+synthetic:1'), real, pool, 3);
  const noaug = trainingSet(job('real+synthetic:1:noaug'), real, pool, 3);
  assert.deepEqual(noaug.poolPositions, a.poolPositions);
  const other = trainingSet(job('real+synthetic:1', 4), real, pool, 3);
  assert.notDeepEqual(other.poolPositions, a.poolPositions);
  // Limited subsets follow the generator seed, not the classifier seed.
  const l0 = trainingSet({ ...job('limited:0.5', 1), generatorSeed: 0 }, real, null, 3);
  const l0b = trainingSet({ ...job('limited:0.5', 2), generatorSeed: 0 }, real, null, 3);
  const l1 = trainingSet({ ...job('limited:0.5', 1), generatorSeed: 1 }, real, null, 3);
  assert.deepEqual(Array.from(l0b.images.data), Array.from(l0.images.data));
  assert.notDeepEqual(Array.from(l1.images.data), Array.from(l0.images.data));
});

test('the grid: generator-free jobs once, limited ones per generator seed, synthetic ones per generator and seed', () => {
  const config = resolveStudyConfig({
    data: { source: 'x.npz' },
    generators: ['cgan', 'ddpm'],
    generatorSeeds: 2,
    conditions: ['real', 'real:noaug', 'oversampled', 'synthetic', 'limited:0.1', 'limited:0.1+synthetic'],
    classifiers: ['cnn', 'lbp-rf'],
    seeds: [0, 1, 2],
  });
  const jobs = studyJobs(config);
  const count = (pred: (j: (typeof jobs)[number]) => boolean) => jobs.filter(pred).length;
  // real, oversampled: 2 classifiers × 3 seeds; real:noaug only for the CNN (lbp-rf never augments).
  assert.equal(
    count((j) => j.conditionName === 'real'),
    6,
  );
  assert.equal(
    count((j) => j.conditionName === 'oversampled'),
    6,
  );
  assert.equal(
    count((j) => j.conditionName === 'real:noaug'),
    3,
  );
  // limited: per generator seed, no generator.
  assert.equal(
    count((j) => j.conditionName === 'limited-10%'),
    2 * 2 * 3,
  );
  assert.ok(jobs.filter((j) => j.conditionName === 'limited-10%').every((j) => j.instance === null));
  // synthetic and limited+synthetic: per generator × generator seed.
  assert.equal(
    count((j) => j.conditionName === 'synthetic'),
    2 * 2 * 2 * 3,
  );
  assert.equal(
    count((j) => j.conditionName === 'limited-10%+synthetic'),
    2 * 2 * 2 * 3,
  );
  assert.equal(new Set(jobs.map((j) => j.id)).size, jobs.length, 'ids are unique');
  // Generator-free jobs come first; then each instance's jobs together.
  const firstSynthetic = jobs.findIndex((j) => j.instance !== null);
  assert.ok(jobs.slice(firstSynthetic).every((j) => j.instance !== null));
  assert.deepEqual(
    studyInstances(jobs).map((i) => i.key),
    [
      'cgan/seed-0/all',
      'cgan/seed-0/limited-10pct',
      'cgan/seed-1/all',
      'cgan/seed-1/limited-10pct',
      'ddpm/seed-0/all',
      'ddpm/seed-0/limited-10pct',
      'ddpm/seed-1/all',
      'ddpm/seed-1/limited-10pct',
    ],
  );
  const lim = jobs.find(
    (j) => j.conditionName === 'limited-10%+synthetic' && j.instance?.entry.name === 'ddpm',
  )!;
  assert.equal(lim.instance!.fraction, 0.1);
  assert.equal(lim.generatorSeed, lim.instance!.seed);
});
