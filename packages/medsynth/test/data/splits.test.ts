import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { groupUnits, partitionSites, stratifiedAssign, stratifiedFraction } from '../../src/data/splits.js';
import { Rng } from '../../src/runtime/random.js';
import { ConfigError } from '../../src/runtime/errors.js';

/** An imbalanced 3-class label vector: 600 / 300 / 100. */
function labels3(): Int32Array {
  return Int32Array.from({ length: 1000 }, (_, i) => (i < 600 ? 0 : i < 900 ? 1 : 2));
}

function countsBy(
  assign: ArrayLike<number>,
  labels: ArrayLike<number>,
  parts: number,
  classes: number,
): number[][] {
  const m = Array.from({ length: parts }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) m[assign[i]!]![labels[i]!]!++;
  return m;
}

describe('stratifiedAssign', () => {
  test('hits the ratios per class and is deterministic by seed', () => {
    const labels = labels3();
    const a = stratifiedAssign(labels, [0.7, 0.1, 0.2], 7);
    const m = countsBy(a, labels, 3, 3);
    assert.deepEqual(m, [
      [420, 210, 70],
      [60, 30, 10],
      [120, 60, 20],
    ]);
    assert.deepEqual(stratifiedAssign(labels, [0.7, 0.1, 0.2], 7), a);
    assert.notDeepEqual(stratifiedAssign(labels, [0.7, 0.1, 0.2], 8), a);
  });

  test('keeps every group inside one split and stays close to the ratios', () => {
    // 300 groups of 1–6 images, like LC25000 tiles with rotated/flipped copies.
    const rng = new Rng(1);
    const labels: number[] = [];
    const groups: string[] = [];
    for (let g = 0; g < 300; g++) {
      const n = 1 + rng.int(6);
      for (let k = 0; k < n; k++) {
        labels.push(g % 3);
        groups.push(`g${g}`);
      }
    }
    const a = stratifiedAssign(labels, [0.7, 0.1, 0.2], 3, groups);
    const where = new Map<string, number>();
    groups.forEach((g, i) => {
      const prev = where.get(g);
      if (prev !== undefined) assert.equal(a[i], prev, `group ${g} straddles splits`);
      where.set(g, a[i]!);
    });
    const m = countsBy(a, labels, 3, 3);
    for (let c = 0; c < 3; c++) {
      const n = m[0]![c]! + m[1]![c]! + m[2]![c]!;
      assert.ok(Math.abs(m[0]![c]! / n - 0.7) < 0.05, `train share of class ${c}: ${m[0]![c]! / n}`);
      assert.ok(m[1]![c]! > 0 && m[2]![c]! > 0, 'every class in val and test');
    }
  });

  test('a rare class still reaches every split', () => {
    const labels = [...new Array<number>(200).fill(0), 1, 1, 1];
    const a = stratifiedAssign(labels, [0.8, 0.1, 0.1], 0);
    const m = countsBy(a, labels, 3, 2);
    assert.deepEqual(
      m.map((r) => r[1]),
      [1, 1, 1],
    );
  });

  test('group units take the majority label', () => {
    const u = groupUnits([0, 1, 1, 2], ['a', 'a', 'a', undefined]);
    assert.deepEqual(
      u.map((x) => [x.members, x.label]),
      [
        [[0, 1, 2], 1],
        [[3], 2],
      ],
    );
  });

  test('rejects bad ratios', () => {
    assert.throws(() => stratifiedAssign([0, 1], [0, 0, 0], 0), RangeError);
    assert.throws(() => stratifiedAssign([0, 1], [1, -1, 0], 0), RangeError);
  });
});

describe('stratifiedFraction', () => {
  test('keeps ~f of each class, at least one, nested across fractions', () => {
    const labels = labels3();
    const ten = stratifiedFraction(labels, 0.1, 5);
    const counts = [0, 0, 0];
    for (const i of ten) counts[labels[i]!]!++;
    assert.deepEqual(counts, [60, 30, 10]);
    const twentyFive = new Set(stratifiedFraction(labels, 0.25, 5));
    assert.ok(
      ten.every((i) => twentyFive.has(i)),
      '10% subset is inside the 25% subset',
    );
    const tiny = stratifiedFraction(labels, 0.001, 5);
    assert.deepEqual(
      [0, 1, 2].map((c) => tiny.filter((i) => labels[i] === c).length),
      [1, 1, 1],
    );
    assert.deepEqual(stratifiedFraction(labels, 0.1, 5), ten);
    assert.throws(() => stratifiedFraction(labels, 0, 5), RangeError);
  });
});

describe('partitionSites', () => {
  test('IID: equal sizes and equal class mix, deterministic', () => {
    const labels = labels3();
    const s = partitionSites(labels, 4, 11);
    const m = countsBy(s, labels, 4, 3);
    for (const row of m) assert.deepEqual(row, [150, 75, 25]);
    assert.deepEqual(partitionSites(labels, 4, 11), s);
  });

  test('non-IID Dirichlet: skewed with small alpha, near-IID with large alpha, no empty site', () => {
    const labels = labels3();
    const skew = (alpha: number) => {
      const m = countsBy(partitionSites(labels, 5, 2, { alpha }), labels, 5, 3);
      // Mean over classes of the largest site share of that class.
      return (
        [0, 1, 2].reduce((acc, c) => {
          const col = m.map((r) => r[c]!);
          return acc + Math.max(...col) / col.reduce((a, b) => a + b, 0);
        }, 0) / 3
      );
    };
    const small = skew(0.1);
    const large = skew(1000);
    assert.ok(small > 0.6, `alpha=0.1 should concentrate classes, max share ${small}`);
    assert.ok(large < 0.3, `alpha=1000 should be close to 1/5, max share ${large}`);
    for (const alpha of [0.05, 0.1, 0.5]) {
      for (let seed = 0; seed < 10; seed++) {
        const s = partitionSites(labels, 8, seed, { alpha });
        const sizes = new Array<number>(8).fill(0);
        for (const x of s) sizes[x]!++;
        assert.ok(
          sizes.every((n) => n > 0),
          `empty site with alpha=${alpha} seed=${seed}`,
        );
      }
    }
    assert.deepEqual(
      partitionSites(labels, 5, 2, { alpha: 0.3 }),
      partitionSites(labels, 5, 2, { alpha: 0.3 }),
    );
  });

  test('rejects impossible partitions', () => {
    assert.throws(() => partitionSites([0, 1], 3, 0), ConfigError);
    assert.throws(() => partitionSites([0, 1], 0, 0), ConfigError);
    assert.throws(() => partitionSites([0, 1], 2, 0, { alpha: 0 }), ConfigError);
  });
});

describe('Rng', () => {
  test('derived streams are reproducible and independent by name', () => {
    const a = Rng.derive(42, 'split');
    const b = Rng.derive(42, 'split');
    const c = Rng.derive(42, 'init');
    const xs = Array.from({ length: 5 }, () => a.next());
    assert.deepEqual(
      Array.from({ length: 5 }, () => b.next()),
      xs,
    );
    assert.notDeepEqual(
      Array.from({ length: 5 }, () => c.next()),
      xs,
    );
  });

  test('gamma and normal samples have the right moments', () => {
    const r = new Rng(9);
    const n = 20000;
    for (const shape of [0.3, 1, 4]) {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        const g = r.gamma(shape);
        s += g;
        s2 += g * g;
      }
      const mean = s / n;
      const variance = s2 / n - mean * mean;
      assert.ok(Math.abs(mean - shape) < 0.05 * Math.max(1, shape), `gamma(${shape}) mean ${mean}`);
      assert.ok(
        Math.abs(variance - shape) < 0.1 * Math.max(1, shape),
        `gamma(${shape}) variance ${variance}`,
      );
    }
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = r.normal();
      s += x;
      s2 += x * x;
    }
    assert.ok(Math.abs(s / n) < 0.03);
    assert.ok(Math.abs(s2 / n - 1) < 0.05);
  });
});
