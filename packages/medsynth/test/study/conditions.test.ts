import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  composeTrainingSet,
  conditionName,
  parseCondition,
  syntheticDemand,
} from '../../src/study/conditions.js';
import { ConfigError } from '../../src/runtime/errors.js';

// 3 classes: 10, 4, 1 images.
const labels = Int32Array.from([...new Array(10).fill(0), ...new Array(4).fill(1), 2]);

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
  ] as const) {
    const c = parseCondition(text);
    assert.equal(conditionName(c), name, text);
    assert.deepEqual(parseCondition(conditionName(c)), c, `${name} parses back`);
  }
  for (const bad of ['fake', 'limited:1.5', 'limited:0', 'real+synthetic:0', 'real+synthetic'])
    assert.throws(
      () => parseCondition(bad, 'conditions.3'),
      (e: unknown) => {
        return e instanceof ConfigError && /conditions\.3/.test(e.message);
      },
      bad,
    );
});

test('training-set composition of every condition', () => {
  assert.deepEqual(counts(composeTrainingSet({ kind: 'real' }, labels, 3, 0)), {
    real: [10, 4, 1],
    synthetic: [0, 0, 0],
  });
  // Replacement: same count and class mix, no real image.
  assert.deepEqual(counts(composeTrainingSet({ kind: 'synthetic' }, labels, 3, 0)), {
    real: [0, 0, 0],
    synthetic: [10, 4, 1],
  });
  assert.deepEqual(counts(composeTrainingSet({ kind: 'augmented', ratio: 0.5 }, labels, 3, 0)), {
    real: [10, 4, 1],
    synthetic: [5, 2, 1], // round(0.5) = 1 in JS (half up)
  });
  assert.deepEqual(counts(composeTrainingSet({ kind: 'rebalanced' }, labels, 3, 0)), {
    real: [10, 4, 1],
    synthetic: [0, 6, 9],
  });
  const limited = composeTrainingSet({ kind: 'limited', fraction: 0.5, topUp: false }, labels, 3, 7);
  assert.deepEqual(counts(limited), { real: [5, 2, 1], synthetic: [0, 0, 0] });
  const topped = composeTrainingSet({ kind: 'limited', fraction: 0.5, topUp: true }, labels, 3, 7);
  assert.deepEqual(counts(topped), { real: [5, 2, 1], synthetic: [5, 2, 0] });
  assert.deepEqual([...topped.real], [...limited.real], 'same seed, same real subset');
  const other = composeTrainingSet({ kind: 'limited', fraction: 0.5, topUp: false }, labels, 3, 8);
  assert.notDeepEqual([...other.real], [...limited.real], 'another seed, another subset');
});

test('synthetic demand is the most any condition needs per class', () => {
  const conditions = ['real', 'synthetic', 'real+synthetic:2', 'rebalanced'].map((c) => parseCondition(c));
  assert.deepEqual(syntheticDemand(conditions, labels, 3), [20, 8, 9]);
});
