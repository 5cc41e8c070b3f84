import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { argmaxRows, confusionMatrix, evaluateConfusion } from '../../src/classify/evaluation.js';

describe('confusionMatrix + evaluateConfusion', () => {
  const cases: {
    name: string;
    labels: number[];
    predicted: number[];
    k: number;
    confusion: number[][];
    accuracy: number;
    balanced: number;
    recall: (number | null)[];
  }[] = [
    {
      name: 'perfect',
      labels: [0, 1, 2, 1],
      predicted: [0, 1, 2, 1],
      k: 3,
      confusion: [
        [1, 0, 0],
        [0, 2, 0],
        [0, 0, 1],
      ],
      accuracy: 1,
      balanced: 1,
      recall: [1, 1, 1],
    },
    {
      name: 'majority-class guesser on 3:1 data',
      labels: [1, 1, 1, 0],
      predicted: [1, 1, 1, 1],
      k: 2,
      confusion: [
        [0, 1],
        [0, 3],
      ],
      accuracy: 0.75,
      balanced: 0.5,
      recall: [0, 1],
    },
    {
      name: 'a class without images is null and left out of the balanced mean',
      labels: [0, 0, 2, 2],
      predicted: [0, 1, 2, 2],
      k: 3,
      confusion: [
        [1, 1, 0],
        [0, 0, 0],
        [0, 0, 2],
      ],
      accuracy: 0.75,
      balanced: 0.75,
      recall: [0.5, null, 1],
    },
    {
      name: 'empty',
      labels: [],
      predicted: [],
      k: 2,
      confusion: [
        [0, 0],
        [0, 0],
      ],
      accuracy: 0,
      balanced: 0,
      recall: [null, null],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const m = confusionMatrix(Int32Array.from(c.labels), Int32Array.from(c.predicted), c.k);
      assert.deepEqual(m, c.confusion);
      const ev = evaluateConfusion(m);
      assert.equal(ev.count, c.labels.length);
      assert.equal(ev.accuracy, c.accuracy);
      assert.equal(ev.balancedAccuracy, c.balanced);
      assert.deepEqual(ev.perClassRecall, c.recall);
      assert.deepEqual(JSON.parse(JSON.stringify(ev)), ev);
    });
  }

  test('length mismatch and out-of-range values → RangeError', () => {
    assert.throws(() => confusionMatrix(Int32Array.of(0, 1), Int32Array.of(0), 2), RangeError);
    assert.throws(() => confusionMatrix(Int32Array.of(0, 2), Int32Array.of(0, 1), 2), /outside 0\.\.1/);
    assert.throws(() => confusionMatrix(Int32Array.of(0, 1), Int32Array.of(0, -1), 2), /outside 0\.\.1/);
  });
});

describe('argmaxRows', () => {
  test('picks the largest per row; ties go to the lower index', () => {
    const v = Float32Array.of(0.1, 0.7, 0.2, 0.5, 0.5, 0, 0, 0, 1);
    assert.deepEqual(argmaxRows(v, 3), Int32Array.of(1, 0, 2));
  });
});
