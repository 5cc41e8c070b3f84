import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  baselineOf,
  composeTrainingSet,
  conditionName,
  controlsOf,
  parseCondition,
  syntheticDemand,
  type Condition,
} from '../../src/study/conditions.js';
import { ConfigError } from '../../src/runtime/errors.js';

// 3 classes: 10, 4, 1 images.
const labels = Int32Array.from([...new Array(10).fill(0), ...new Array(4).fill(1), 2]);

const seeds = (subset: number, order = 0) => ({ subset, order });

function counts(c: ReturnType<typeof composeTrainingSet>) {
  const real = [0, 0, 0];
  for (const p of c.real) real[labels[p]!]!++;
  return { real, synthetic: [...c.synthetic] };
}

test('condition names round-trip through the parser, with the short forms', () => {
  for (const [text, name] of [
    ['real', 'real'],
    ['synthetic', 'synthetic'],
    ['rebalanced', 'rebalanced'],
    ['real+synthetic:1', 'real+synthetic×1'],
    ['augmented:0.5', 'real+synthetic×0.5'],
    ['limited:0.1', 'limited-10%'],
    ['limited:25%+synthetic', 'limited-25%+synthetic'],
    ['real:noaug', 'real:noaug'],
    ['real-noaug', 'real:noaug'],
    ['limited:0.1:noaug', 'limited-10%:noaug'],
    ['oversampled', 'oversampled'],
    ['rebalanced:shuffled', 'rebalanced+shuffled'],
    ['real+shuffled-synthetic:2', 'real+shuffled-synthetic×2'],
    ['real+synthetic:1:noaug', 'real+synthetic×1:noaug'],
  ] as const) {
    const c = parseCondition(text);
    assert.equal(conditionName(c), name, text);
    assert.deepEqual(parseCondition(conditionName(c)), c, `${name} parses back`);
  }
  for (const bad of [
    'fake',
    'limited:1.5',
    'limited:0',
    'real+synthetic:0',
    'real+synthetic',
    'real:noaugx',
    'oversampled+shuffled',
  ])
    assert.throws(
      () => parseCondition(bad, 'conditions.3'),
      (e: unknown) => {
        return e instanceof ConfigError && /conditions\.3/.test(e.message);
      },
      bad,
    );
});

test('training-set composition of every condition', () => {
  assert.deepEqual(counts(composeTrainingSet(parseCondition('real'), labels, 3, seeds(0))), {
    real: [10, 4, 1],
    synthetic: [0, 0, 0],
  });
  // Replacement: same count and class mix, no real image.
  assert.deepEqual(counts(composeTrainingSet(parseCondition('synthetic'), labels, 3, seeds(0))), {
    real: [0, 0, 0],
    synthetic: [10, 4, 1],
  });
  assert.deepEqual(counts(composeTrainingSet(parseCondition('real+synthetic:0.5'), labels, 3, seeds(0))), {
    real: [10, 4, 1],
    synthetic: [5, 2, 1], // round(0.5) = 1 in JS (half up)
  });
  assert.deepEqual(counts(composeTrainingSet(parseCondition('rebalanced'), labels, 3, seeds(0))), {
    real: [10, 4, 1],
    synthetic: [0, 6, 9],
  });
  const limited = composeTrainingSet(parseCondition('limited:0.5'), labels, 3, seeds(7));
  assert.deepEqual(counts(limited), { real: [5, 2, 1], synthetic: [0, 0, 0] });
  const topped = composeTrainingSet(parseCondition('limited:0.5+synthetic'), labels, 3, seeds(7));
  assert.deepEqual(counts(topped), { real: [5, 2, 1], synthetic: [5, 2, 0] });
  assert.deepEqual([...topped.real], [...limited.real], 'same seed, same real subset');
  const other = composeTrainingSet(parseCondition('limited:0.5'), labels, 3, seeds(8));
  assert.notDeepEqual([...other.real], [...limited.real], 'another seed, another subset');
});

test('synthetic demand is the most any condition needs per class', () => {
  const conditions = ['real', 'synthetic', 'real+synthetic:2', 'rebalanced', 'oversampled'].map((c) =>
    parseCondition(c),
  );
  assert.deepEqual(syntheticDemand(conditions, labels, 3), [20, 8, 9]);
});

test('oversampled reaches the class counts of rebalanced with repeated real images, evenly, seeded', () => {
  const rebalanced = composeTrainingSet(parseCondition('rebalanced'), labels, 3, seeds(0));
  const target = counts(rebalanced).real.map((n, k) => n + rebalanced.synthetic[k]!);
  const over = composeTrainingSet(parseCondition('oversampled'), labels, 3, seeds(0, 5));
  assert.deepEqual(counts(over), { real: target, synthetic: [0, 0, 0] });
  // Every real image is there at least once; class 1 (4 images → 10) repeats each 2 or 3 times.
  const times = new Map<number, number>();
  for (const p of over.real) times.set(p, (times.get(p) ?? 0) + 1);
  assert.equal(times.size, labels.length);
  const class1 = [...times].filter(([p]) => labels[p] === 1).map(([, n]) => n);
  assert.deepEqual(class1.sort(), [2, 2, 3, 3]);
  assert.deepEqual(times.get(14), 10, 'the single class-2 image ten times');
  const again = composeTrainingSet(parseCondition('oversampled'), labels, 3, seeds(0, 5));
  assert.deepEqual([...again.real], [...over.real], 'same seed, same repeats');
  const other = composeTrainingSet(parseCondition('oversampled'), labels, 3, seeds(0, 6));
  assert.notDeepEqual([...other.real], [...over.real], 'another seed, other repeats');
});

test('baselines and controls of each condition', () => {
  const name = (c: Condition | null) => (c ? conditionName(c) : null);
  const p = (t: string) => parseCondition(t);
  assert.equal(name(baselineOf(p('real'))), null);
  assert.equal(name(baselineOf(p('synthetic'))), 'real');
  assert.equal(name(baselineOf(p('real+synthetic:1:noaug'))), 'real:noaug');
  assert.equal(
    name(baselineOf(p('real:noaug'))),
    null,
    'a baseline itself (compared in the augmentation verdict)',
  );
  assert.equal(name(baselineOf(p('limited:0.1+synthetic'))), 'limited-10%');
  assert.equal(name(baselineOf(p('limited:0.1'))), null);
  assert.deepEqual(controlsOf(p('rebalanced')).map(name), ['oversampled', 'rebalanced+shuffled']);
  assert.deepEqual(controlsOf(p('real+synthetic:2')).map(name), ['real+shuffled-synthetic×2']);
  assert.deepEqual(controlsOf(p('rebalanced+shuffled')), []);
});
