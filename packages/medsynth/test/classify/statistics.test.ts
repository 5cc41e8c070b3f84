import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  BOUNDED_LOGIT_EPSILON,
  boundedInterval,
  bootstrapCi,
  holmAdjust,
  mcnemar,
  pairedTTest,
  quantile,
  spearman,
  summarise,
  type BoundedInterval,
  type McNemarResult,
  type SpearmanResult,
} from '../../src/classify/statistics.js';

/** Written by test/fixtures/classify/make_fixtures.py (independent numpy/scipy reference). */
interface Fixture {
  readonly summaries: {
    readonly name: string;
    readonly values: number[];
    readonly level: number;
    readonly expected: {
      n: number;
      mean: number;
      std: number | null;
      ci: [number, number];
      level: number;
      degenerate: boolean;
    };
  }[];
  readonly quantiles: { values: number[]; q: number; expected: number }[];
  readonly bootstrap: {
    values: number[];
    level: number;
    replicates: number;
    seed: number;
    /** The exact bootstrap distribution of the mean: `[mean, probability]`, ascending. */
    exactMeans: [number, number][];
  };
  readonly mcnemar: { name: string; correctA: string; correctB: string; expected: McNemarResult }[];
  readonly pairedT: {
    readonly name: string;
    readonly a: number[];
    readonly b: number[];
    readonly level: number;
    readonly expected: {
      n: number;
      meanDiff: number;
      sdDiff: number | null;
      t: number | null;
      df: number;
      p: number | null;
      ci: [number, number] | null;
      level: number;
      hasNote: boolean;
    };
  }[];
  readonly holm: { name: string; p: (number | null)[]; expected: (number | null)[] }[];
  readonly spearman: {
    readonly name: string;
    readonly x: number[];
    readonly y: number[];
    readonly level: number;
    readonly expected: SpearmanResult;
  }[];
  readonly boundedInterval: {
    readonly epsilon: number;
    readonly cases: {
      readonly name: string;
      readonly values: number[];
      readonly range: [number, number];
      readonly level: number;
      readonly expected: BoundedInterval;
    }[];
  };
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/classify/classify_metrics.json', import.meta.url), 'utf8'),
) as Fixture;

/** |actual − expected| ≤ max(rel · |expected|, abs). */
function near(actual: number | null, expected: number | null, what: string, rel = 1e-9, abs = 1e-14): void {
  if (expected === null) {
    assert.equal(actual, null, `${what}: expected null, got ${actual}`);
    return;
  }
  assert.equal(typeof actual, 'number', `${what}: expected a number, got ${actual}`);
  assert.ok(
    Math.abs(actual! - expected) <= Math.max(rel * Math.abs(expected), abs),
    `${what}: ${actual} vs expected ${expected}`,
  );
}

/**
 * An interval `[lo, hi]` against the expected one: its centre to 1e-9, its half-width to 1e-6 relative (the
 * half-width carries a Student t quantile, computed by jstat to about 1e-8).
 */
function nearInterval(
  actual: [number, number] | null,
  expected: [number, number] | null,
  what: string,
): void {
  if (expected === null) {
    assert.equal(actual, null, what);
    return;
  }
  assert.ok(actual !== null, `${what}: expected an interval`);
  assert.ok(actual[0] <= actual[1], `${what}: lo ≤ hi`);
  near((actual[0] + actual[1]) / 2, (expected[0] + expected[1]) / 2, `${what} centre`, 1e-9, 1e-12);
  near((actual[1] - actual[0]) / 2, (expected[1] - expected[0]) / 2, `${what} half-width`, 1e-6, 1e-12);
}

function isRangeError(pattern: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof RangeError && pattern.test(e.message);
}

describe('summarise', () => {
  for (const c of fixture.summaries) {
    test(c.name, () => {
      const s = summarise(c.values, { level: c.level });
      const e = c.expected;
      assert.equal(s.n, e.n);
      near(s.mean, e.mean, 'mean');
      near(s.std, e.std, 'std', 1e-9, 1e-12);
      nearInterval(s.ci, e.ci, 'ci');
      assert.equal(s.level, e.level);
      assert.equal(s.degenerate, e.degenerate);
      assert.equal(s.method, 't');
      assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
    });
  }

  test('the default level is 0.95', () => {
    const c = fixture.summaries.find((x) => x.level === 0.95 && x.values.length > 2)!;
    assert.deepEqual(summarise(c.values), summarise(c.values, { level: 0.95 }));
  });

  test('bad input is a RangeError', () => {
    assert.throws(() => summarise([]), isRangeError(/empty/));
    assert.throws(() => summarise([0.5, Number.NaN]), isRangeError(/not finite/));
    assert.throws(() => summarise([0.5, 0.6], { level: 1 }), isRangeError(/level/));
  });
});

describe('quantile', () => {
  test('matches numpy.quantile (linear)', () => {
    for (const c of fixture.quantiles) near(quantile(c.values, c.q), c.expected, `q=${c.q}`, 1e-12, 1e-15);
  });

  test('bad input is a RangeError', () => {
    assert.throws(() => quantile([], 0.5), RangeError);
    assert.throws(() => quantile([1, 2], 1.5), RangeError);
  });
});

describe('bootstrapCi', () => {
  const { values, level, replicates, seed, exactMeans } = fixture.bootstrap;
  /** P(mean ≤ x) (or < x with `strict`) under the exact bootstrap distribution, with a 1e-12 slack for rounding. */
  const cdf = (x: number, strict: boolean): number =>
    exactMeans.filter(([m]) => (strict ? m < x - 1e-12 : m <= x + 1e-12)).reduce((a, [, p]) => a + p, 0);

  test('percentile interval agrees with the exact bootstrap distribution', () => {
    const r = bootstrapCi(values, { seed, replicates, level });
    const tail = (1 - level) / 2;
    // Monte Carlo error of a 2.5 % quantile's rank at 20 000 replicates is ≈ 0.001; allow 0.01.
    for (const [x, target] of [
      [r.ci[0], tail],
      [r.ci[1], 1 - tail],
    ] as const) {
      assert.ok(cdf(x, true) <= target + 0.01, `P(mean < ${x}) = ${cdf(x, true)} vs ${target}`);
      assert.ok(cdf(x, false) >= target - 0.01, `P(mean ≤ ${x}) = ${cdf(x, false)} vs ${target}`);
    }
    near(r.mean, values.reduce((a, b) => a + b, 0) / values.length, 'mean');
    assert.equal(r.replicates, replicates);
    assert.equal(r.method, 'bootstrap-percentile');
  });

  test('reproducible for a seed, different for another', () => {
    const a = bootstrapCi(values, { seed, replicates: 2000 });
    assert.deepEqual(bootstrapCi(values, { seed, replicates: 2000 }), a);
    assert.notDeepEqual(bootstrapCi(values, { seed: seed + 1, replicates: 2000 }).ci, a.ci);
    assert.equal(a.level, 0.95);
  });

  test('a single value gives a zero-width interval', () => {
    assert.deepEqual(bootstrapCi([values[0]!], { seed, replicates: 100 }).ci, [values[0], values[0]]);
  });

  test('bad input is a RangeError', () => {
    assert.throws(() => bootstrapCi([], { seed }), isRangeError(/empty/));
    assert.throws(() => bootstrapCi(values, { seed, replicates: 0 }), isRangeError(/replicates/));
    assert.throws(() => bootstrapCi(values, { seed, level: 0 }), isRangeError(/level/));
  });
});

describe('mcnemar', () => {
  const bits = (s: string): Uint8Array => Uint8Array.from(s, (ch) => (ch === '1' ? 1 : 0));
  for (const c of fixture.mcnemar) {
    test(c.name, () => {
      const a = bits(c.correctA);
      const b = bits(c.correctB);
      for (const r of [mcnemar(a, b), mcnemar(Array.from(a, Boolean), Array.from(b, Boolean))]) {
        assert.equal(r.n, c.expected.n);
        assert.equal(r.b, c.expected.b);
        assert.equal(r.c, c.expected.c);
        near(r.pExact, c.expected.pExact, 'pExact', 1e-9, 1e-300);
        near(r.statistic, c.expected.statistic, 'statistic', 1e-12);
        near(r.pChi2, c.expected.pChi2, 'pChi2', 1e-9, 1e-300);
      }
    });
  }

  test('swapping the classifiers swaps b and c and keeps the p-values', () => {
    const c = fixture.mcnemar.find((x) => x.name === 'random-300')!;
    const ab = mcnemar(bits(c.correctA), bits(c.correctB));
    const ba = mcnemar(bits(c.correctB), bits(c.correctA));
    assert.deepEqual([ba.b, ba.c, ba.pExact, ba.pChi2], [ab.c, ab.b, ab.pExact, ab.pChi2]);
  });

  test('bad input is a RangeError', () => {
    assert.throws(() => mcnemar([true], [true, false]), isRangeError(/differ in length/));
    assert.throws(() => mcnemar([], []), isRangeError(/at least one/));
  });
});

describe('pairedTTest', () => {
  for (const c of fixture.pairedT) {
    test(c.name, () => {
      const r = pairedTTest(c.a, c.b, { level: c.level });
      const e = c.expected;
      assert.equal(r.n, e.n);
      assert.equal(r.df, e.df);
      near(r.meanDiff, e.meanDiff, 'meanDiff', 1e-9, 1e-15);
      near(r.sdDiff, e.sdDiff, 'sdDiff', 1e-9, 1e-15);
      near(r.t, e.t, 't', 1e-9);
      near(r.p, e.p, 'p', 1e-6, 1e-300);
      nearInterval(r.ci, e.ci, 'ci');
      assert.equal(r.level, e.level);
      assert.equal(typeof r.note === 'string', e.hasNote, `note: ${r.note}`);
      assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
    });
  }

  test('bad input is a RangeError', () => {
    assert.throws(() => pairedTTest([0.8, 0.9], [0.8]), isRangeError(/differ in length/));
    assert.throws(() => pairedTTest([], []), isRangeError(/at least one pair/));
    assert.throws(() => pairedTTest([0.8, Number.POSITIVE_INFINITY], [0.8, 0.9]), isRangeError(/not finite/));
  });
});

describe('holmAdjust', () => {
  for (const c of fixture.holm) {
    test(c.name, () => {
      const adjusted = holmAdjust(c.p);
      assert.equal(adjusted.length, c.expected.length);
      c.expected.forEach((e, i) => near(adjusted[i] as number | null, e, `[${i}]`, 1e-12, 0));
    });
  }

  test('p-values outside [0, 1] are a RangeError', () => {
    assert.throws(() => holmAdjust([0.1, 1.2]), isRangeError(/outside \[0, 1\]/));
    assert.throws(() => holmAdjust([Number.NaN]), RangeError);
  });
});

describe('spearman', () => {
  for (const c of fixture.spearman) {
    test(c.name, () => {
      const r = spearman(c.x, c.y, { level: c.level });
      const e = c.expected;
      assert.equal(r.n, e.n);
      near(r.rho, e.rho, 'rho', 1e-12, 1e-15);
      assert.equal(r.pMethod, e.pMethod);
      if (e.pMethod === 't-approximation' && e.p !== 0) near(r.p, e.p, 'p', 1e-6, 1e-300);
      else near(r.p, e.p, 'p', 1e-12, 0);
      if (e.ci === null) assert.equal(r.ci, null, 'ci');
      else {
        assert.ok(r.ci !== null, 'ci: expected an interval');
        // Fisher z with a Newton-refined normal quantile: good to about 1e-15.
        near(r.ci[0], e.ci[0], 'ci[0]', 1e-12, 1e-15);
        near(r.ci[1], e.ci[1], 'ci[1]', 1e-12, 1e-15);
        assert.ok(-1 < r.ci[0] && r.ci[0] <= r.rho! && r.rho! <= r.ci[1] && r.ci[1] < 1, `ci ${r.ci}`);
      }
      assert.equal(r.ciMethod, e.ciMethod);
      assert.equal(r.level, e.level);
      assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
    });
  }

  test('symmetric in x and y, odd under negation, invariant under monotone maps', () => {
    for (const c of fixture.spearman.filter((x) => x.expected.rho !== null)) {
      const r = spearman(c.x, c.y, { level: c.level });
      assert.deepEqual(spearman(c.y, c.x, { level: c.level }), r, c.name);
      const neg = spearman(
        c.x.map((v) => -v),
        c.y,
        { level: c.level },
      );
      near(neg.rho, -r.rho!, `${c.name} negated rho`, 1e-12, 1e-15);
      assert.equal(neg.p, r.p, `${c.name} negated p`);
      assert.deepEqual(spearman(c.x.map(Math.exp), c.y, { level: c.level }), r, `${c.name} exp(x)`);
    }
  });

  test('the default level is 0.95', () => {
    const c = fixture.spearman.find((x) => x.level === 0.95 && x.expected.ci !== null)!;
    assert.deepEqual(spearman(c.x, c.y), spearman(c.x, c.y, { level: 0.95 }));
  });

  test('bad input is a RangeError', () => {
    assert.throws(() => spearman([1, 2, 3], [1, 2]), isRangeError(/differ in length/));
    assert.throws(() => spearman([1, 2, Number.NaN], [1, 2, 3]), isRangeError(/not finite/));
    assert.throws(() => spearman([1, 2, 3], [1, Number.NEGATIVE_INFINITY, 3]), isRangeError(/not finite/));
    assert.throws(() => spearman([1, 2, 3], [1, 2, 3], { level: 0 }), isRangeError(/level/));
  });
});

describe('boundedInterval', () => {
  test('the logit clamp matches the fixture', () => {
    assert.equal(BOUNDED_LOGIT_EPSILON, fixture.boundedInterval.epsilon);
  });

  for (const c of fixture.boundedInterval.cases) {
    test(c.name, () => {
      const r = boundedInterval(c.values, c.range, { level: c.level });
      const e = c.expected;
      assert.equal(r.n, e.n);
      near(r.mean, e.mean, 'mean');
      near(r.std, e.std, 'std', 1e-9, 1e-12);
      assert.equal(r.method, e.method);
      if (e.method === 't') {
        // Exactly summarise's interval.
        assert.deepEqual(r.ci, summarise(c.values, { level: c.level }).ci);
        nearInterval(r.ci, e.ci, 'ci');
      } else {
        // The half-width on the logit scale carries jstat's t quantile (≈ 1e-8 relative).
        near(r.ci[0], e.ci[0], 'ci[0]', 1e-7, 1e-12);
        near(r.ci[1], e.ci[1], 'ci[1]', 1e-7, 1e-12);
      }
      const [lo, hi] = c.range;
      assert.ok(lo <= r.ci[0] && r.ci[0] <= r.mean && r.mean <= r.ci[1] && r.ci[1] <= hi, `ci ${r.ci}`);
      assert.equal(r.level, e.level);
      assert.equal(r.degenerate, e.degenerate);
      assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
    });
  }

  test('falls back to logit-t exactly when the t interval leaves the range', () => {
    for (const c of fixture.boundedInterval.cases) {
      const t = summarise(c.values, { level: c.level }).ci;
      const leaves = t[0] < c.range[0] || t[1] > c.range[1];
      assert.equal(boundedInterval(c.values, c.range, { level: c.level }).method, leaves ? 'logit-t' : 't');
    }
  });

  test('the default level is 0.95', () => {
    const c = fixture.boundedInterval.cases.find((x) => x.name === 'accuracy-near-1')!;
    assert.deepEqual(boundedInterval(c.values, c.range), boundedInterval(c.values, c.range, { level: 0.95 }));
  });

  test('bad input is a RangeError', () => {
    assert.throws(() => boundedInterval([], [0, 1]), isRangeError(/empty/));
    assert.throws(() => boundedInterval([0.5, Number.NaN], [0, 1]), isRangeError(/not finite/));
    assert.throws(() => boundedInterval([0.5, 1.2], [0, 1]), isRangeError(/outside the range/));
    assert.throws(() => boundedInterval([0.5], [1, 0]), isRangeError(/lo < hi/));
    assert.throws(() => boundedInterval([0.5], [0, Number.POSITIVE_INFINITY]), isRangeError(/lo < hi/));
    assert.throws(() => boundedInterval([0.5, 0.6], [0, 1], { level: 1.5 }), isRangeError(/level/));
  });
});
