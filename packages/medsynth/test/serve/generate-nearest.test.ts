// The nearest-real search space of live generation (serve/browser/nearest.ts) against an independent numpy
// implementation (test/fixtures/nearest/make_nearest.py): the box factor, the rounded f×f means and the nearest
// row with its squared distance. The inputs are drawn from the same 32-bit LCG on both sides.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { boxDownsample, nearestFactor, nearestRow } from '../../src/serve/browser/nearest.js';

interface Case {
  side: number;
  channels: number;
  factor: number;
  seed: number;
  reals: number;
  queries: number;
  picks: number[];
  realSmall: string;
  querySmall: string;
  nearest: number[];
  d2: number[];
}

const { cases } = JSON.parse(
  readFileSync(new URL('../fixtures/nearest/nearest_cases.json', import.meta.url), 'utf8'),
) as { cases: Case[] };

/** The fixture's LCG: x ← 1664525·x + 1013904223 mod 2³², a sample is x >> 24. */
function lcg(seed: number) {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(1664525, x) + 1013904223) >>> 0;
    return x >>> 24;
  };
}

function inputs(c: Case): { real: Uint8Array; query: Uint8Array; picks: number[] } {
  const next = lcg(c.seed);
  const per = c.side * c.side * c.channels;
  const real = Uint8Array.from({ length: c.reals * per }, next);
  const query = new Uint8Array(c.queries * per);
  const picks: number[] = [];
  for (let k = 0; k < c.queries; k++) {
    const pick = next() % c.reals;
    picks.push(pick);
    for (let j = 0; j < per; j++) {
      const v = real[pick * per + j]! + ((next() % 41) - 20);
      query[k * per + j] = Math.min(255, Math.max(0, v));
    }
  }
  return { real, query, picks };
}

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

for (const c of cases) {
  test(`nearest real: ${c.side}×${c.side}×${c.channels} matches numpy (factor ${c.factor})`, () => {
    const { real, query, picks } = inputs(c);
    assert.deepEqual(picks, c.picks, 'the same inputs as the fixture');
    assert.equal(nearestFactor(c.side), c.factor);
    const realSmall = boxDownsample(real, c.reals, c.side, c.channels, c.factor);
    const querySmall = boxDownsample(query, c.queries, c.side, c.channels, c.factor);
    assert.deepEqual(realSmall, bytes(c.realSmall));
    assert.deepEqual(querySmall, bytes(c.querySmall));
    const dim = (c.side / c.factor) ** 2 * c.channels;
    c.nearest.forEach((want, k) => {
      const got = nearestRow(querySmall.subarray(k * dim, (k + 1) * dim), realSmall, c.reals, dim);
      assert.deepEqual(got, { index: want, d2: c.d2[k] });
    });
  });
}

test('nearest real: factors, ties and refusals', () => {
  assert.deepEqual([28, 32, 64, 128, 256, 33].map(nearestFactor), [1, 1, 2, 4, 8, 3]);
  // Rounding halves up: a 2×2 block of 0, 0, 1, 2 has mean 0.75 → 1; 0, 0, 0, 2 → 0.5 → 1; 0, 0, 0, 1 → 0.
  assert.deepEqual(boxDownsample([0, 0, 1, 2], 1, 2, 1, 2), Uint8Array.from([1]));
  assert.deepEqual(boxDownsample([0, 0, 0, 2], 1, 2, 1, 2), Uint8Array.from([1]));
  assert.deepEqual(boxDownsample([0, 0, 0, 1], 1, 2, 1, 2), Uint8Array.from([0]));
  // Two equally near rows: the first wins.
  assert.deepEqual(nearestRow([5, 5], [4, 5, 6, 5, 5, 7], 3, 2), { index: 0, d2: 1 });
  assert.throws(() => boxDownsample([1, 2, 3], 1, 2, 1, 2), /values/);
  assert.throws(() => boxDownsample([1, 2, 3, 4, 5, 6, 7, 8, 9], 1, 3, 1, 2), /does not divide/);
  assert.throws(() => nearestRow([1], [1, 2], 1, 2), RangeError);
  assert.throws(() => nearestFactor(0), RangeError);
});
