// Reader-study statistics against an independent computation (test/fixtures/reader/make_reader_stats.py:
// scipy's binomtest and proportion_ci, Cohen's and Fleiss' κ by hand in numpy), plus hand-checked values and
// the verdict's behaviour on clear-cut readers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  binomialTestHalf,
  clopperPearsonInterval,
  cohenKappa,
  fleissKappa,
  kappaStrength,
  type Proportion,
  type ReaderAnswer,
  type ReaderItem,
  readerStudyStats,
  wilsonInterval,
} from '../../src/study/reader-stats.js';

interface Fixture {
  binomial: {
    k: number;
    n: number;
    level: number;
    p: number;
    wilson: [number, number];
    exact: [number, number];
  }[];
  cohen: { a: string[]; b: string[]; n: number; observed: number; expected: number; kappa: number | null }[];
  fleiss: { counts: number[][]; n: number; observed: number; expected: number; kappa: number | null }[];
  studies: {
    classNames: string[];
    items: ReaderItem[];
    answers: ReaderAnswer[];
    expected: {
      readers: {
        reader: string;
        answered: number;
        accuracy: FixtureProportion;
        sensitivity: FixtureProportion;
        specificity: FixtureProportion;
        p: number;
        pHolm: number;
        perClass: {
          accuracy: FixtureProportion | null;
          sensitivity: FixtureProportion | null;
          specificity: FixtureProportion | null;
        }[];
        meanConfidence: number;
        medianSeconds: number | null;
      }[];
      cohen: { a: string; b: string; n: number; observed: number; expected: number; kappa: number | null }[];
      fleiss: {
        readers: string[];
        n: number;
        observed: number;
        expected: number;
        kappa: number | null;
      } | null;
    };
  }[];
}
type FixtureProportion = { k: number; n: number; value: number; wilson: number[]; exact: number[] };

const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/reader/reader_stats_cases.json', import.meta.url), 'utf8'),
) as Fixture;

function close(actual: number | null, expected: number | null, tol: number, what: string): void {
  if (expected === null) {
    assert.equal(actual, null, what);
    return;
  }
  assert.ok(actual !== null, `${what}: got null, expected ${expected}`);
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs ${expected}`,
  );
}

function sameProportion(actual: Proportion, expected: FixtureProportion | null, what: string): void {
  if (expected === null) {
    assert.equal(actual.n, 0, what);
    assert.equal(actual.value, null, what);
    return;
  }
  assert.equal(actual.k, expected.k, `${what} k`);
  assert.equal(actual.n, expected.n, `${what} n`);
  close(actual.value, expected.value, 1e-12, `${what} value`);
  for (const i of [0, 1]) {
    close(actual.wilson![i]!, expected.wilson[i]!, 1e-10, `${what} wilson[${i}]`);
    close(actual.exact![i]!, expected.exact[i]!, 1e-9, `${what} exact[${i}]`);
  }
}

describe('binomial intervals and test (scipy binomtest)', () => {
  for (const c of FIXTURE.binomial)
    test(`${c.k}/${c.n} at ${c.level}`, () => {
      const w = wilsonInterval(c.k, c.n, c.level)!;
      const e = clopperPearsonInterval(c.k, c.n, c.level)!;
      close(w[0], c.wilson[0], 1e-10, 'wilson low');
      close(w[1], c.wilson[1], 1e-10, 'wilson high');
      close(e[0], c.exact[0], 1e-9, 'exact low');
      close(e[1], c.exact[1], 1e-9, 'exact high');
      close(binomialTestHalf(c.k, c.n), c.p, 1e-10, 'p');
    });

  test('hand values: 5/10 has p = 1; 0/10 has p = 2/1024; Wilson of 5/10 is symmetric around ½', () => {
    assert.equal(binomialTestHalf(5, 10), 1);
    close(binomialTestHalf(0, 10), 2 / 1024, 1e-15, 'p(0/10)');
    close(binomialTestHalf(10, 10), 2 / 1024, 1e-15, 'p(10/10)');
    const [lo, hi] = wilsonInterval(5, 10)!;
    close(lo + hi, 1, 1e-14, 'symmetry');
    assert.deepEqual(clopperPearsonInterval(0, 4)![0], 0);
    assert.deepEqual(clopperPearsonInterval(4, 4)![1], 1);
  });

  test('no trials: intervals null, p = 1; bad counts throw', () => {
    assert.equal(wilsonInterval(0, 0), null);
    assert.equal(clopperPearsonInterval(0, 0), null);
    assert.equal(binomialTestHalf(0, 0), 1);
    assert.throws(() => wilsonInterval(3, 2), RangeError);
    assert.throws(() => binomialTestHalf(-1, 2), RangeError);
    assert.throws(() => wilsonInterval(1, 2, 1), RangeError);
    assert.throws(() => clopperPearsonInterval(1.5, 2), RangeError);
  });
});

describe("Cohen's κ (hand-computed in numpy)", () => {
  for (const [i, c] of FIXTURE.cohen.entries())
    test(`case ${i}: ${c.n} items`, () => {
      const k = cohenKappa(c.a, c.b);
      assert.equal(k.n, c.n);
      close(k.observed, c.observed, 1e-12, 'p_o');
      close(k.expected, c.expected, 1e-12, 'p_e');
      close(k.kappa, c.kappa, 1e-12, 'κ');
    });

  test('the 2 × 2 table [[4, 1], [2, 3]] by hand: p_o 0.7, p_e 0.5, κ 0.4', () => {
    const a = [...Array<string>(5).fill('real'), ...Array<string>(5).fill('synthetic')];
    const b = [
      'real',
      'real',
      'real',
      'real',
      'synthetic',
      'real',
      'real',
      'synthetic',
      'synthetic',
      'synthetic',
    ];
    const k = cohenKappa(a, b);
    close(k.kappa, 0.4, 1e-12, 'κ');
    assert.equal(k.strength, 'fair');
  });

  test('undefined κ: no items, or both raters constant and equal; unequal lengths throw', () => {
    assert.equal(cohenKappa([], []).kappa, null);
    const same = cohenKappa(['real', 'real'], ['real', 'real']);
    assert.equal(same.kappa, null);
    assert.match(same.note!, /same call/);
    assert.throws(() => cohenKappa(['real'], []), RangeError);
    // One rater constant, the other not: p_e < 1, κ = 0 exactly (agreement at chance).
    close(cohenKappa(['real', 'real'], ['real', 'synthetic']).kappa, 0, 1e-15, 'κ');
  });
});

describe("Fleiss' κ (hand-computed in numpy)", () => {
  for (const [i, c] of FIXTURE.fleiss.entries())
    test(`case ${i}: ${c.n} items`, () => {
      const k = fleissKappa(c.counts);
      assert.equal(k.n, c.n);
      close(k.observed, c.observed, 1e-12, 'P̄');
      close(k.expected, c.expected, 1e-12, 'P̄e');
      close(k.kappa, c.kappa, 1e-12, 'κ');
    });

  test("Fleiss (1971)'s example table gives κ = 0.210", () => {
    const k = fleissKappa(FIXTURE.fleiss[FIXTURE.fleiss.length - 1]!.counts);
    assert.equal(k.kappa!.toFixed(3), '0.210');
    assert.equal(k.strength, 'fair');
  });

  test('bad matrices throw: ragged counts, one rater', () => {
    assert.throws(
      () =>
        fleissKappa([
          [1, 1],
          [2, 1],
        ]),
      /ratings/,
    );
    assert.throws(() => fleissKappa([[1, 0]]), /two raters/);
    assert.equal(fleissKappa([]).kappa, null);
  });

  test('κ words (Landis & Koch)', () => {
    assert.deepEqual([-0.1, 0.1, 0.3, 0.5, 0.7, 0.9].map(kappaStrength), [
      'poor',
      'slight',
      'fair',
      'moderate',
      'substantial',
      'almost perfect',
    ]);
  });
});

describe('a whole study', () => {
  for (const [i, s] of FIXTURE.studies.entries())
    test(`study ${i}: per reader, per class, pairs and all readers`, () => {
      const stats = readerStudyStats({ items: s.items, answers: s.answers, classNames: s.classNames });
      assert.equal(stats.items, s.items.length);
      assert.equal(stats.answers, s.answers.length);
      assert.deepEqual(
        stats.readers.map((r) => r.reader),
        s.expected.readers.map((r) => r.reader),
      );
      stats.readers.forEach((r, j) => {
        const e = s.expected.readers[j]!;
        assert.equal(r.answered, e.answered);
        assert.equal(r.complete, e.answered === s.items.length);
        sameProportion(r.accuracy, e.accuracy, `${r.reader} accuracy`);
        sameProportion(r.sensitivity, e.sensitivity, `${r.reader} sensitivity`);
        sameProportion(r.specificity, e.specificity, `${r.reader} specificity`);
        close(r.p, e.p, 1e-10, `${r.reader} p`);
        close(r.pHolm, e.pHolm, 1e-10, `${r.reader} Holm p`);
        close(r.meanConfidence, e.meanConfidence, 1e-12, `${r.reader} confidence`);
        close(r.medianSeconds, e.medianSeconds, 1e-12, `${r.reader} median seconds`);
        r.perClass.forEach((c, k) => {
          sameProportion(c.accuracy, e.perClass[k]!.accuracy, `${r.reader} class ${k} accuracy`);
          sameProportion(c.sensitivity, e.perClass[k]!.sensitivity, `${r.reader} class ${k} sensitivity`);
          sameProportion(c.specificity, e.perClass[k]!.specificity, `${r.reader} class ${k} specificity`);
        });
      });
      assert.equal(stats.cohen.length, s.expected.cohen.length);
      stats.cohen.forEach((c, j) => {
        const e = s.expected.cohen[j]!;
        assert.deepEqual([c.a, c.b, c.n], [e.a, e.b, e.n]);
        close(c.kappa, e.kappa, 1e-12, `κ ${c.a}–${c.b}`);
        close(c.observed, e.observed, 1e-12, `p_o ${c.a}–${c.b}`);
      });
      const f = s.expected.fleiss!;
      assert.deepEqual(stats.fleiss!.readers, f.readers);
      assert.equal(stats.fleiss!.n, f.n);
      close(stats.fleiss!.kappa, f.kappa, 1e-12, 'Fleiss κ');
    });
});

describe('the verdict', () => {
  const classNames = ['normal', 'pneumonia'];
  const items: ReaderItem[] = [];
  for (let c = 0; c < 2; c++)
    for (let j = 0; j < 20; j++) {
      items.push({ id: `r${c}-${j}`, truth: 'real', classIndex: c });
      items.push({ id: `s${c}-${j}`, truth: 'synthetic', classIndex: c });
    }
  const flip = (t: 'real' | 'synthetic') => (t === 'real' ? 'synthetic' : 'real');
  const answersOf = (reader: string, rule: (it: ReaderItem, i: number) => 'real' | 'synthetic') =>
    items.map((it, i): ReaderAnswer => ({
      reader: reader,
      item: it.id,
      call: rule(it, i),
      confidence: 3,
      ms: 1000,
    }));

  test('no answers: says so', () => {
    const s = readerStudyStats({ items, answers: [], classNames });
    assert.equal(s.verdict.kind, 'no-answers');
    assert.equal(s.fleiss, null);
    assert.equal(s.pooled.accuracy.value, null);
  });

  test('a reader right every time: readers tell them apart', () => {
    const s = readerStudyStats({
      items,
      answers: [
        ...answersOf('expert', (it) => it.truth),
        ...answersOf('novice', (_, i) => (i % 4 < 2 ? 'real' : 'synthetic')),
      ],
      classNames,
    });
    assert.equal(s.verdict.kind, 'distinguishable');
    assert.match(s.verdict.text, /^Readers tell them apart: 1 of 2 readers \(expert\)/);
    assert.equal(s.readers[0]!.accuracy.value, 1);
    assert.equal(s.readers[0]!.sensitivity.value, 1);
  });

  test('a reader wrong every time also tells them apart (inverted)', () => {
    const s = readerStudyStats({
      items,
      answers: answersOf('contrarian', (it) => flip(it.truth)),
      classNames,
    });
    assert.equal(s.verdict.kind, 'distinguishable');
    assert.match(s.verdict.text, /wrong way round/);
  });

  test('readers calling at random: at chance, with a caution when the interval is wide', () => {
    // Items alternate real, synthetic: calls in runs of two (four) are right exactly half of the time.
    const s = readerStudyStats({
      items,
      answers: [
        ...answersOf('a', (_, i) => (i % 4 < 2 ? 'real' : 'synthetic')),
        ...answersOf('b', (_, i) => (i % 8 < 4 ? 'real' : 'synthetic')),
      ],
      classNames,
    });
    assert.equal(s.verdict.kind, 'chance');
    assert.match(s.verdict.text, /^Readers at chance: indistinguishable/);
    assert.equal(s.pooled.accuracy.value, 0.5);
    assert.deepEqual(
      s.readers.map((r) => r.accuracy.value),
      [0.5, 0.5],
    );
    assert.doesNotMatch(s.verdict.text, /Too few answers/, '160 answers: the interval is 42–58 %');
    const few = readerStudyStats({
      items,
      answers: answersOf('a', (_, i) => (i % 4 < 2 ? 'real' : 'synthetic')).slice(0, 12),
      classNames,
    });
    assert.equal(few.verdict.kind, 'chance');
    assert.match(few.verdict.text, /Too few answers to be sure: accuracies up to 75 %/);
  });

  test('unknown items and double answers are refused', () => {
    assert.throws(
      () =>
        readerStudyStats({
          items,
          answers: [{ reader: 'x', item: 'nope', call: 'real', confidence: 1, ms: null }],
          classNames,
        }),
      /unknown item/,
    );
    const one: ReaderAnswer = { reader: 'x', item: items[0]!.id, call: 'real', confidence: 1, ms: null };
    assert.throws(() => readerStudyStats({ items, answers: [one, one], classNames }), /twice/);
  });
});
