import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { kthNeighbourDistances, nearestNeighbours, type Matrix } from '../../src/metrics/distances.js';
import { frechetDistance, frechetWithSpread, gaussianStats, quantile } from '../../src/metrics/frechet.js';
import { kid, mmd2Unbiased } from '../../src/metrics/kid.js';
import { prdc } from '../../src/metrics/prdc.js';
import { Rng } from '../../src/runtime/random.js';
import { selectBackend, describeBackend } from '../../src/runtime/backend.js';
import {
  linalgImplementation,
  meanCovariance,
  meanCovarianceJs,
  symmetricEigen,
} from '../../src/metrics/linalg.js';

/** Oracle values computed independently with numpy/scipy (../shared/fixtures/make_feature_metrics.py). */
interface Case {
  readonly name: string;
  readonly real: number[][];
  readonly fake: number[][];
  readonly frechet_distance: number;
  readonly mmd2_unbiased_poly3_full: number;
  readonly prdc_k5: { precision: number; recall: number; density: number; coverage: number };
}
const fixture = JSON.parse(
  readFileSync(
    fileURLToPath(new URL('../../../../../shared/fixtures/feature_metrics.json', import.meta.url)),
    'utf8',
  ),
) as { cases: Case[] };

function matrix(rows: number[][]): Matrix {
  const cols = rows[0]!.length;
  return { data: Float32Array.from(rows.flat()), rows: rows.length, cols };
}

function randomMatrix(rows: number, cols: number, seed: number, shift = 0): Matrix {
  const rng = new Rng(seed);
  const data = rng.normals(rows * cols).map((v) => v + shift);
  return { data, rows, cols };
}

function relClose(actual: number, expected: number, tol: number, what: string): void {
  const rel = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-12);
  assert.ok(
    rel <= tol,
    `${what}: ${actual} vs ${expected} (relative error ${rel.toExponential(2)} > ${tol})`,
  );
}

before(async () => {
  await selectBackend();
});

describe('feature metrics match the numpy/scipy oracle', () => {
  for (const c of fixture.cases) {
    test(`${c.name}: Fréchet distance (float64 path, 1e-6)`, () => {
      // Our input is float32 (features come from a network); the fixture's values are rounded to 6
      // decimals, which float32 represents to ~1e-7 relative.
      relClose(frechetDistance(matrix(c.real), matrix(c.fake)), c.frechet_distance, 1e-6, 'FD');
    });
    test(`${c.name}: full-set unbiased MMD² (1e-4)`, async () => {
      relClose(await mmd2Unbiased(matrix(c.real), matrix(c.fake)), c.mmd2_unbiased_poly3_full, 1e-4, 'MMD²');
    });
    test(`${c.name}: PRDC k=5`, async () => {
      const p = await prdc(matrix(c.real), matrix(c.fake), 5);
      for (const key of ['precision', 'recall', 'density', 'coverage'] as const)
        relClose(p[key], c.prdc_k5[key], 1e-6, key);
    });
  }
});

describe('float64 linear algebra', () => {
  test('runs natively on libtorch, and the native covariance equals the JavaScript one', (t) => {
    if (describeBackend()?.backend !== 'libtorch') {
      assert.equal(linalgImplementation(), 'javascript');
      t.skip('libtorch is not the backend: the JavaScript path is the only one');
      return;
    }
    assert.equal(linalgImplementation(), 'native');
    const m = randomMatrix(300, 12, 7, 0.25);
    const counts = new Int32Array(300).map((_, i) => (i * 7) % 3);
    for (const w of [undefined, counts]) {
      const a = meanCovariance(m, w);
      const b = meanCovarianceJs(m, w);
      assert.equal(a.n, b.n);
      for (let i = 0; i < b.cov.length; i++) assert.ok(Math.abs(a.cov[i]! - b.cov[i]!) < 1e-12);
      for (let i = 0; i < b.mean.length; i++) assert.ok(Math.abs(a.mean[i]! - b.mean[i]!) < 1e-13);
    }
  });
  test('symmetric eigendecomposition reconstructs the matrix (A v = λ v)', () => {
    const n = 9;
    const { cov } = meanCovarianceJs(randomMatrix(40, n, 8));
    const { values, vectors } = symmetricEigen(cov, n);
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += cov[i * n + j]! * vectors[j * n + k]!;
        assert.ok(Math.abs(av - values[k]! * vectors[i * n + k]!) < 1e-12, `A v = λ v for eigenpair ${k}`);
      }
    }
  });
});

describe('Fréchet distance', () => {
  test('is 0 for a set against itself, and grows with a mean shift by ‖Δμ‖²', () => {
    const a = randomMatrix(200, 6, 1);
    assert.ok(Math.abs(frechetDistance(a, a)) < 1e-9);
    const shifted = { ...a, data: a.data.map((v) => v + 0.5) };
    relClose(frechetDistance(a, shifted), 6 * 0.25, 1e-5, 'shift');
  });
  test('bootstrap spread brackets the value; warns when N < dim', () => {
    const r = frechetWithSpread(randomMatrix(300, 8, 2), randomMatrix(300, 8, 3, 0.3), {
      replicates: 20,
      seed: 4,
    });
    assert.equal(r.bootstrap!.replicates, 20);
    assert.ok(r.bootstrap!.std > 0);
    assert.ok(r.bootstrap!.ci95[0] < r.value * 1.5 && r.bootstrap!.ci95[1] > r.value * 0.5);
    assert.deepEqual(r.warnings, []);
    const small = frechetWithSpread(randomMatrix(5, 8, 2), randomMatrix(20, 8, 3), { replicates: 0 });
    assert.equal(small.warnings.length, 1);
    assert.match(small.warnings[0]!, /real: 5 samples < 8 feature dimensions/);
  });
  test('weighted stats equal the stats of the duplicated rows', () => {
    const a = randomMatrix(4, 3, 5);
    const counts = Int32Array.from([2, 0, 1, 3]);
    const rows: number[][] = [];
    counts.forEach((c, i) => {
      for (let k = 0; k < c; k++) rows.push(Array.from(a.data.subarray(i * 3, i * 3 + 3)));
    });
    const w = gaussianStats(a, counts);
    const d = gaussianStats(matrix(rows));
    w.cov.forEach((v, i) => assert.ok(Math.abs(v - d.cov[i]!) < 1e-12));
    w.mean.forEach((v, i) => assert.ok(Math.abs(v - d.mean[i]!) < 1e-12));
  });
});

describe('KID', () => {
  test('near 0 for the same distribution, clearly positive for a shifted one; subset size capped', async () => {
    const a = randomMatrix(400, 8, 6);
    const same = await kid(a, randomMatrix(300, 8, 7), { subsets: 20, subsetSize: 1000 });
    assert.equal(same.subsetSize, 300);
    assert.ok(Math.abs(same.mean) < 0.05, `same ${same.mean}`);
    const far = await kid(a, randomMatrix(300, 8, 8, 1), { subsets: 20, subsetSize: 100 });
    assert.equal(far.subsetSize, 100);
    assert.ok(far.mean > 10 * Math.abs(same.mean) && far.mean > 0.5, `far ${far.mean}`);
    assert.ok(far.std > 0);
  });
});

describe('k-NN distances', () => {
  test('agree with brute force in float64', async () => {
    const a = randomMatrix(70, 5, 9);
    const b = randomMatrix(40, 5, 10);
    const dist = (x: Matrix, i: number, y: Matrix, j: number) => {
      let s = 0;
      for (let c = 0; c < x.cols; c++) s += (x.data[i * x.cols + c]! - y.data[j * y.cols + c]!) ** 2;
      return Math.sqrt(s);
    };
    const kth = await kthNeighbourDistances(a, 3);
    for (let i = 0; i < a.rows; i++) {
      const ds = Array.from({ length: a.rows }, (_, j) => (j === i ? 0 : dist(a, i, a, j))).sort(
        (x, y) => x - y,
      );
      assert.ok(Math.abs(kth[i]! - ds[3]!) < 1e-5);
    }
    const nn = await nearestNeighbours(b, a);
    for (let i = 0; i < b.rows; i++) {
      const ds = Array.from({ length: a.rows }, (_, j) => dist(b, i, a, j));
      const best = Math.min(...ds);
      assert.ok(Math.abs(nn.distance[i]! - best) < 1e-5);
      assert.equal(ds[nn.index[i]!], best);
    }
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  });
  test('k-NN needs more than k rows', async () => {
    await assert.rejects(prdc(randomMatrix(5, 3, 1), randomMatrix(20, 3, 2), 5), /more than 5 rows, got 5/);
  });
});
