// The federation's maths against direct float64 computations: FedAvg weights by images, screening rejects
// what it must (and only that), participation draws are seeded and sized as documented.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/runtime/random.js';
import {
  chooseParticipants,
  emaInPlace,
  fedAvg,
  median,
  proximalCoefficient,
  screenUpdates,
} from '../../src/federated/strategy.js';

function randomWeights(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

test('FedAvg is the mean weighted by site size, computed in float64', () => {
  const updates = [
    { site: 'a', weights: randomWeights(1000, 1), size: 100, examples: 64 },
    { site: 'b', weights: randomWeights(1000, 2), size: 300, examples: 64 },
    { site: 'c', weights: randomWeights(1000, 3), size: 600, examples: 64 },
  ];
  const got = fedAvg(updates);
  for (let i = 0; i < 1000; i++) {
    const want =
      (100 * updates[0]!.weights[i]! + 300 * updates[1]!.weights[i]! + 600 * updates[2]!.weights[i]!) / 1000;
    assert.ok(
      Math.abs(got[i]! - want) <= 1e-6 * Math.max(1, Math.abs(want)),
      `weight ${i}: ${got[i]} vs ${want}`,
    );
  }
  // One site alone: its weights exactly; equal sizes: the plain mean.
  assert.deepEqual(fedAvg([updates[1]!]), updates[1]!.weights);
  const equal = fedAvg(updates.map((u) => ({ ...u, size: 5 })));
  assert.ok(
    Math.abs(equal[7]! - (updates[0]!.weights[7]! + updates[1]!.weights[7]! + updates[2]!.weights[7]!) / 3) <
      1e-6,
  );
  assert.throws(() => fedAvg([]), /no updates/);
  assert.throws(
    () => fedAvg([{ site: 'z', weights: new Float32Array(2), size: 0, examples: 0 }]),
    /no images/,
  );
});

test('screening: wrong length and non-finite values are refused by name; a norm outlier too; ordinary spread passes', () => {
  const global = randomWeights(500, 9);
  const near = (seed: number) => {
    const d = randomWeights(500, seed, 0.01);
    return Float32Array.from(global, (g, i) => g + d[i]!);
  };
  const nan = near(11);
  nan[42] = Number.NaN;
  const far = Float32Array.from(near(12), (v) => v * 50);
  const s = screenUpdates(
    [
      { site: 'a', weights: near(1), size: 10, examples: 10 },
      { site: 'b', weights: near(2), size: 10, examples: 10 },
      { site: 'c', weights: near(3), size: 10, examples: 10 },
      { site: 'short', weights: new Float32Array(499), size: 10, examples: 10 },
      { site: 'nan', weights: nan, size: 10, examples: 10 },
      { site: 'far', weights: far, size: 10, examples: 10 },
    ],
    global,
  );
  assert.deepEqual(
    s.accepted.map((u) => u.site),
    ['a', 'b', 'c'],
  );
  const why = Object.fromEntries(s.rejected.map((r) => [r.site, r.reason]));
  assert.match(why['short']!, /499 weights, the model has 500/);
  assert.match(why['nan']!, /weight 42 is NaN/);
  assert.match(why['far']!, /over 5× the median/);
  // The norms are the distances to the global weights.
  let d = 0;
  const a = near(1);
  for (let i = 0; i < 500; i++) d += (a[i]! - global[i]!) ** 2;
  assert.ok(Math.abs(s.norms['a']! - Math.sqrt(d)) < 1e-9 * Math.max(1, s.norms['a']!) + 1e-6);
  // With fewer than 3 valid updates there is no median to judge by: nothing is an outlier.
  const two = screenUpdates(
    [
      { site: 'a', weights: near(1), size: 10, examples: 10 },
      { site: 'far', weights: far, size: 10, examples: 10 },
    ],
    global,
  );
  assert.equal(two.accepted.length, 2);
});

test('participants: ⌈fraction · n⌉ (≥ minFit), seeded, in the order given', () => {
  const sites = ['a', 'b', 'c', 'd', 'e'];
  const pick = (seed: number, fraction: number, minFit: number) =>
    chooseParticipants(sites, fraction, minFit, new Rng(seed));
  assert.deepEqual(pick(1, 1, 1), sites);
  assert.equal(pick(1, 0.4, 1).length, 2);
  assert.equal(pick(1, 0.1, 3).length, 3);
  assert.deepEqual(pick(7, 0.6, 1), pick(7, 0.6, 1));
  const chosen = pick(3, 0.6, 1);
  assert.deepEqual(chosen, [...chosen].sort());
  // Over many rounds every site is drawn about equally often.
  const rng = new Rng(5);
  const counts = new Map<string, number>();
  for (let r = 0; r < 2000; r++)
    for (const s of chooseParticipants(sites, 0.4, 1, rng)) counts.set(s, (counts.get(s) ?? 0) + 1);
  for (const s of sites) assert.ok(Math.abs(counts.get(s)! / 2000 - 0.4) < 0.05, `${s}: ${counts.get(s)}`);
});

test('EMA, median and the proximal coefficient', () => {
  const ema = Float32Array.from([0, 1, 2]);
  emaInPlace(ema, Float32Array.from([10, 10, 10]), 0.75);
  assert.deepEqual([...ema], [2.5, 3.25, 4]);
  emaInPlace(ema, Float32Array.from([1, 2, 3]), 0);
  assert.deepEqual([...ema], [1, 2, 3]);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Math.abs(proximalCoefficient(2e-4, 0.01) - 2e-6) < 1e-18);
  assert.equal(proximalCoefficient(1, 5), 1);
});
