import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { argmaxRows } from '../../src/classify/evaluation.js';
import {
  classificationMetrics,
  correctPredictions,
  rocAuc,
  type ClassificationMetrics,
} from '../../src/classify/metrics.js';

/** Written by test/fixtures/classify/make_fixtures.py (independent numpy/scipy reference). */
interface MetricCase {
  readonly name: string;
  readonly classNames: string[];
  readonly positiveClass: number | null;
  /** One digit per image. */
  readonly labels: string;
  /** Score rows as decimals, to be read as float32. */
  readonly proba: number[][];
  readonly expected: ClassificationMetrics;
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/classify/classify_metrics.json', import.meta.url), 'utf8'),
) as { metrics: MetricCase[] };

function inputs(c: MetricCase): { labels: Int32Array; proba: Float32Array } {
  return {
    labels: Int32Array.from(c.labels, (ch) => Number(ch)),
    proba: Float32Array.from(c.proba.flat()),
  };
}

/**
 * Asserts that `actual` has exactly the shape of `expected` (same keys, same nulls, same strings) and that
 * every number is within `rel` relative (or 1e-12 absolute, for values near 0) of the expected one.
 */
function assertMatches(actual: unknown, expected: unknown, path: string, rel = 1e-9): void {
  if (expected === null || typeof expected === 'string' || typeof expected === 'boolean') {
    assert.equal(actual, expected, path);
  } else if (typeof expected === 'number') {
    assert.equal(typeof actual, 'number', `${path}: expected a number, got ${String(actual)}`);
    const a = actual as number;
    assert.ok(
      Math.abs(a - expected) <= Math.max(rel * Math.abs(expected), 1e-12),
      `${path}: ${a} vs expected ${expected}`,
    );
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e, i) => assertMatches((actual as unknown[])[i], e, `${path}[${i}]`, rel));
  } else {
    assert.equal(typeof actual, 'object', `${path}: expected an object`);
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), `${path}: keys`);
    for (const key of Object.keys(e)) assertMatches(a[key], e[key], `${path}.${key}`, rel);
  }
}

describe('classificationMetrics against the numpy/scipy reference', () => {
  assert.ok(fixture.metrics.length >= 8);
  for (const c of fixture.metrics) {
    test(c.name, () => {
      const { labels, proba } = inputs(c);
      const options = c.positiveClass === null ? {} : { positiveClass: c.positiveClass };
      const result = classificationMetrics(labels, proba, c.classNames, options);
      assertMatches(result, c.expected, c.name);
      // Plain JSON: survives a round trip unchanged (NaN or Infinity would become null, a typed array an object).
      assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
    });
  }

  test('the fixture covers the edge cases it is meant to', () => {
    const byName = new Map(fixture.metrics.map((c) => [c.name, c.expected]));
    const gaps = byName.get('eight-class-gaps')!;
    assert.equal(gaps.perClass[2]!.precision, null, 'class 2 never predicted');
    assert.equal(gaps.perClass[5]!.support, 0, 'class 5 absent from the labels');
    assert.equal(gaps.perClass[5]!.auc, null);
    assert.equal(byName.get('perfect-3')!.accuracy, 1);
    assert.equal(byName.get('worst-binary')!.auc, 0);
    assert.equal(byName.get('binary-one-class')!.binary!.sensitivity, null);
    assert.equal(byName.get('binary-positive-0')!.binary!.positiveClass, 0);
  });
});

describe('rocAuc', () => {
  test('per-class AUC of every fixture case matches the pair-counting reference', () => {
    for (const c of fixture.metrics) {
      const { labels, proba } = inputs(c);
      const k = c.classNames.length;
      c.expected.perClass.forEach((m, cls) => {
        const scores = Array.from({ length: labels.length }, (_, i) => proba[i * k + cls]!);
        const positive = Array.from(labels, (l) => (l === cls ? 1 : 0));
        const auc = rocAuc(scores, positive);
        assertMatches(auc, m.auc, `${c.name} class ${cls}`);
      });
    }
  });

  test('mismatched lengths and non-finite scores are RangeErrors', () => {
    assert.throws(() => rocAuc([0.1, 0.2], [true]), /differ in length/);
    assert.throws(() => rocAuc([0.1, Number.NaN], [true, false]), RangeError);
  });
});

describe('correctPredictions', () => {
  test('marks the images whose argmax is the label; its mean is the accuracy', () => {
    for (const c of fixture.metrics) {
      const { labels, proba } = inputs(c);
      const correct = correctPredictions(labels, argmaxRows(proba, c.classNames.length));
      const accuracy = correct.reduce((a, b) => a + b, 0) / labels.length;
      assertMatches(accuracy, c.expected.accuracy, c.name);
    }
  });

  test('mismatched lengths are a RangeError', () => {
    assert.throws(() => correctPredictions(new Int32Array(2), new Int32Array(3)), RangeError);
  });
});

describe('classificationMetrics input checks', () => {
  const labels = Int32Array.from([0, 1, 1, 0]);
  const proba = Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.4, 0.6, 0.7, 0.3]);
  const names = ['normal', 'pneumonia'];

  const bad: [string, () => unknown, RegExp][] = [
    ['one class', () => classificationMetrics(labels, proba.subarray(0, 4), ['only']), /at least 2 classes/],
    ['no images', () => classificationMetrics(new Int32Array(0), new Float32Array(0), names), /empty/],
    ['proba length', () => classificationMetrics(labels, proba.subarray(0, 7), names), /proba has 7 values/],
    ['label too large', () => classificationMetrics(Int32Array.from([0, 1, 2, 0]), proba, names), /label 2/],
    ['negative label', () => classificationMetrics(Int32Array.from([0, -1, 1, 0]), proba, names), /label -1/],
    [
      'NaN score',
      () =>
        classificationMetrics(
          labels,
          Float32Array.from([0.9, Number.NaN, 0.2, 0.8, 0.4, 0.6, 0.7, 0.3]),
          names,
        ),
      /not finite/,
    ],
    [
      'positive class',
      () => classificationMetrics(labels, proba, names, { positiveClass: 2 }),
      /positiveClass 2/,
    ],
  ];
  for (const [name, fn, message] of bad) {
    test(name, () => {
      assert.throws(fn, (e: unknown) => e instanceof RangeError && message.test(e.message));
    });
  }

  test('the positive class changes which class the binary figures describe', () => {
    const one = classificationMetrics(labels, proba, names).binary!;
    const zero = classificationMetrics(labels, proba, names, { positiveClass: 0 }).binary!;
    assert.equal(one.positiveName, 'pneumonia');
    assert.equal(zero.positiveName, 'normal');
    assert.equal(one.sensitivity, zero.specificity);
    assert.equal(one.ppv, zero.npv);
  });
});
