// The federation's maths against direct float64 computations: FedAvg weights by images, screening rejects
// what it must (and only that), participation draws are seeded and sized as documented, the server
// optimisers (none, FedAvgM, FedAdam) follow their recursions over several rounds.
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
  serverStep,
  type ServerOptimizerSettings,
  type ServerOptimizerState,
} from '../../src/federated/strategy.js';
import { resolveFederationOptions, serverOptimizerOf } from '../../src/federated/options.js';
import { ConfigError } from '../../src/runtime/errors.js';

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

const settings = (extra: Partial<ServerOptimizerSettings>): ServerOptimizerSettings => ({
  kind: 'none',
  lr: 1,
  momentum: 0.9,
  beta2: 0.99,
  tau: 1e-3,
  ...extra,
});

test('server optimisers: none (η), FedAvgM and FedAdam follow their recursions; running statistics take the average', () => {
  const n = 500;
  // Every 5th value is a running statistic (mask 0).
  const mask = Uint8Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1));
  const rounds = [1, 2, 3, 4].map((r) => randomWeights(n, 100 + r, 0.01));
  const cases: {
    s: ServerOptimizerSettings;
    step: (d: number, m: number, v: number) => [number, number, number];
  }[] = [
    { s: settings({ lr: 0.5 }), step: (d) => [0.5 * d, 0, 0] },
    {
      s: settings({ kind: 'momentum', lr: 1.5, momentum: 0.7 }),
      step: (d, m) => {
        const m2 = 0.7 * m + d;
        return [1.5 * m2, m2, 0];
      },
    },
    {
      s: settings({ kind: 'adam', lr: 0.01, momentum: 0.9, beta2: 0.99, tau: 1e-3 }),
      step: (d, m, v) => {
        const m2 = 0.9 * m + 0.1 * d;
        const v2 = 0.99 * v + 0.01 * d * d;
        return [(0.01 * m2) / (Math.sqrt(v2) + 1e-3), m2, v2];
      },
    },
  ];
  for (const { s, step } of cases) {
    const state: ServerOptimizerState = { m: null, v: null };
    let global = randomWeights(n, 7);
    const want = Float64Array.from(global);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    for (const noise of rounds) {
      // The round's average: the global weights moved by a consistent drift plus noise.
      const averaged = Float32Array.from(global, (x, i) => x + 0.02 + noise[i]!);
      const got = serverStep(global, averaged, mask, s, state);
      for (let i = 0; i < n; i++) {
        if (!mask[i]) {
          want[i] = averaged[i]!;
          continue;
        }
        const [move, m2, v2] = step(averaged[i]! - global[i]!, m[i]!, v[i]!);
        m[i] = m2;
        v[i] = v2;
        want[i] = global[i]! + move;
      }
      for (let i = 0; i < n; i++)
        assert.ok(
          Math.abs(got[i]! - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)),
          `${s.kind} weight ${i}: ${got[i]} vs ${want[i]}`,
        );
      global = got;
    }
    assert.equal(state.m === null, s.kind === 'none');
    assert.equal(state.v === null, s.kind !== 'adam');
  }
  // FedAvgM with β = 0 and η = 1 is FedAvg: the average itself.
  const g = randomWeights(n, 1);
  const avg = randomWeights(n, 2);
  const plain = serverStep(g, avg, mask, settings({ kind: 'momentum', momentum: 0 }), { m: null, v: null });
  for (let i = 0; i < n; i++) assert.ok(Math.abs(plain[i]! - avg[i]!) < 1e-6);
  assert.throws(() => serverStep(g, avg.subarray(1), mask, settings({}), { m: null, v: null }), RangeError);
});

test('server optimiser options: defaults are FedAvg; adam needs its learning rate', () => {
  const base = { rounds: 2, localSteps: 1 };
  assert.deepEqual(serverOptimizerOf(resolveFederationOptions(base)), settings({}));
  assert.equal(
    serverOptimizerOf(resolveFederationOptions({ ...base, serverOptimizer: 'momentum', serverMomentum: 0.5 }))
      .momentum,
    0.5,
  );
  assert.throws(
    () => resolveFederationOptions({ ...base, serverOptimizer: 'adam' }),
    (e: unknown) => e instanceof ConfigError && e.context.field === 'serverLr',
  );
  assert.equal(
    serverOptimizerOf(resolveFederationOptions({ ...base, serverOptimizer: 'adam', serverLr: 1e-3 })).lr,
    1e-3,
  );
});
