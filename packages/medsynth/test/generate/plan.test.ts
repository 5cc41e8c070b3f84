import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_SEEDS,
  formatSeeds,
  makePlan,
  MAX_SEED,
  parseBalanceTo,
  parseCount,
  parseCounts,
  parseSeeds,
  type PlanSpec,
  planImages,
  seedCount,
  takeSeeds,
} from '../../src/generate/plan.js';
import { ConfigError } from '../../src/runtime/errors.js';

const CLASSES = ['normal', 'pneumonia', 'zeta'] as const;

/** Asserts a ConfigError whose field names `field` and whose message matches `message`. */
function throwsConfig(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.ok(e.context.field?.includes(field), `field ${e.context.field} should name ${field}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('plans', () => {
  const cases: {
    name: string;
    spec: PlanSpec;
    real?: number[];
    counts: number[];
    description?: RegExp;
  }[] = [
    {
      name: 'per-class',
      spec: { kind: 'per-class', count: 5 },
      counts: [5, 5, 5],
      description: /--per-class 5/,
    },
    {
      name: 'counts by name, others 0',
      spec: { kind: 'counts', counts: [{ key: 'pneumonia', count: 7 }] },
      counts: [0, 7, 0],
    },
    {
      name: 'counts by index and name',
      spec: {
        kind: 'counts',
        counts: [
          { key: '0', count: 2 },
          { key: 'zeta', count: 3 },
        ],
      },
      counts: [2, 0, 3],
    },
    {
      name: 'balance-to a count (classes above get 0)',
      spec: { kind: 'balance-to', target: 100 },
      real: [30, 120, 100],
      counts: [70, 0, 0],
    },
    {
      name: 'balance-to max',
      spec: { kind: 'balance-to', target: 'max' },
      real: [1214, 3494, 10],
      counts: [2280, 0, 3484],
      description: /max \(= 3494\)/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const plan = makePlan(c.spec, CLASSES, c.real);
      assert.deepEqual(plan.counts, c.counts);
      assert.equal(
        plan.total,
        c.counts.reduce((a, b) => a + b, 0),
      );
      assert.deepEqual(plan.classNames, CLASSES);
      if (c.description) assert.match(plan.description, c.description);
    });
  }

  const errors: { name: string; run: () => unknown; field: string; message?: RegExp }[] = [
    {
      name: 'unknown class name is named',
      run: () => makePlan({ kind: 'counts', counts: [{ key: 'covid', count: 1 }] }, CLASSES),
      field: '--counts',
      message: /unknown class "covid"/,
    },
    {
      name: 'an index out of range is unknown',
      run: () => makePlan({ kind: 'counts', counts: [{ key: '3', count: 1 }] }, CLASSES),
      field: '--counts',
      message: /unknown class "3"/,
    },
    {
      name: 'the same class twice',
      run: () =>
        makePlan(
          {
            kind: 'counts',
            counts: [
              { key: 'normal', count: 1 },
              { key: '0', count: 2 },
            ],
          },
          CLASSES,
        ),
      field: '--counts',
      message: /given twice/,
    },
    {
      name: 'balance-to without real counts',
      run: () => makePlan({ kind: 'balance-to', target: 'max' }, CLASSES),
      field: '--balance-to',
      message: /real class counts/,
    },
    {
      name: 'balance-to with counts of the wrong length',
      run: () => makePlan({ kind: 'balance-to', target: 5 }, CLASSES, [1, 2]),
      field: '--balance-to',
    },
    {
      name: 'balance-to with nothing to do',
      run: () => makePlan({ kind: 'balance-to', target: 'max' }, CLASSES, [4, 4, 4]),
      field: '--balance-to',
      message: /nothing to generate/,
    },
    {
      name: 'per-class 0 generates nothing',
      run: () => makePlan({ kind: 'per-class', count: 0 }, CLASSES),
      field: '--per-class',
      message: /no images/,
    },
  ];
  for (const c of errors) test(`error: ${c.name}`, () => throwsConfig(c.run, c.field, c.message));
});

describe('flag parsing', () => {
  test('--counts with names, indices, spaces and commas inside class names', () => {
    assert.deepEqual(parseCounts('normal=3, 1=4'), [
      { key: 'normal', count: 3 },
      { key: '1', count: 4 },
    ]);
    // BreastMNIST's class "normal, benign" holds a comma.
    assert.deepEqual(parseCounts('malignant=2,normal, benign=5'), [
      { key: 'malignant', count: 2 },
      { key: 'normal, benign', count: 5 },
    ]);
    const plan = makePlan({ kind: 'counts', counts: parseCounts('normal, benign=5') }, [
      'malignant',
      'normal, benign',
    ]);
    assert.deepEqual(plan.counts, [0, 5]);
  });

  const bad: [string, () => unknown, string][] = [
    ['--counts without =', () => parseCounts('normal'), '--counts'],
    ['--counts negative', () => parseCounts('normal=-1'), '--counts normal'],
    ['--counts not a number', () => parseCounts('normal=lots'), '--counts normal'],
    ['--counts empty key', () => parseCounts('=3'), '--counts'],
    ['--counts empty', () => parseCounts(''), '--counts'],
    ['--balance-to word', () => parseBalanceTo('most'), '--balance-to'],
    ['--per-class fraction', () => parseCount('1.5', '--per-class'), '--per-class'],
    ['--batch-size 0', () => parseCount('0', '--batch-size', 1), '--batch-size'],
  ];
  for (const [name, run, field] of bad) test(`error: ${name}`, () => throwsConfig(run, field));

  test('--balance-to max and numbers', () => {
    assert.equal(parseBalanceTo('max'), 'max');
    assert.equal(parseBalanceTo(' MAX '), 'max');
    assert.equal(parseBalanceTo('250'), 250);
  });
});

describe('seeds', () => {
  const good: [string, number[]][] = [
    ['0-4', [0, 1, 2, 3, 4]],
    ['7', [7]],
    ['5,1,9', [5, 1, 9]],
    ['10-12, 3 ,100-101', [10, 11, 12, 3, 100, 101]],
    [`${MAX_SEED}`, [MAX_SEED]],
  ];
  for (const [text, seeds] of good) {
    test(`--seeds ${text}`, () => {
      const list = parseSeeds(text);
      assert.equal(seedCount(list), seeds.length);
      assert.deepEqual(takeSeeds(list, seeds.length), seeds);
    });
  }

  const bad: [string, RegExp][] = [
    ['5-2', /upward/],
    ['1,2,1', /seed 1 is listed twice/],
    ['0-9,5-12', /seed 5 is listed twice/],
    ['-3', /integer/],
    ['1,,2', /empty item/],
    ['a-b', /integer/],
    [`${MAX_SEED + 1}`, /out of range/],
  ];
  for (const [text, message] of bad) {
    test(`error: --seeds ${text}`, () => throwsConfig(() => parseSeeds(text), '--seeds', message));
  }

  test('too few seeds for the plan names --seeds', () => {
    throwsConfig(() => takeSeeds(parseSeeds('0-9'), 11), '--seeds', /plan generates 11 images/);
    const plan = makePlan({ kind: 'per-class', count: 4 }, CLASSES);
    throwsConfig(() => planImages(plan, parseSeeds('0-10')), '--seeds');
  });

  test('default seeds are 0 upward and huge ranges cost nothing', () => {
    assert.deepEqual(takeSeeds(DEFAULT_SEEDS, 3), [0, 1, 2]);
    assert.equal(seedCount(DEFAULT_SEEDS), MAX_SEED + 1);
    assert.deepEqual(takeSeeds(parseSeeds(`0-${MAX_SEED}`), 2), [0, 1]);
  });

  test('images take seeds in order, class by class', () => {
    const plan = makePlan({ kind: 'counts', counts: parseCounts('zeta=1,normal=2') }, CLASSES);
    assert.deepEqual(planImages(plan, parseSeeds('40-41,7,99')), [
      { index: 0, label: 0, seed: 40 },
      { index: 1, label: 0, seed: 41 },
      { index: 2, label: 2, seed: 7 },
    ]);
    assert.deepEqual(
      planImages(plan).map((p) => p.seed),
      [0, 1, 2],
    );
  });

  test('formatSeeds compresses runs', () => {
    assert.equal(formatSeeds([0, 1, 2, 3, 7, 9, 10]), '0-3,7,9-10');
    assert.equal(formatSeeds([5]), '5');
    assert.equal(formatSeeds([]), '');
  });
});
