// The reader study's design as pure functions: balanced per class, seeded, opaque ids, per-reader orders,
// reader names and the layered settings.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import {
  checkReaderName,
  fingerprint,
  itemId,
  planItems,
  readerOrder,
  resolveSettings,
} from '../../src/serve/reader/design.js';

const pools = [
  { name: 'normal', positions: Array.from({ length: 50 }, (_, i) => i) },
  { name: 'pneumonia', positions: Array.from({ length: 40 }, (_, i) => 100 + i) },
];
const FP = fingerprint({ any: 'design' });

describe('planItems', () => {
  test('N real + N synthetic per class, real images of their own class, distinct seeds, all ids distinct', () => {
    const items = planItems({ perClass: 7, seed: 1 }, pools, FP);
    assert.equal(items.length, 28);
    for (const k of [0, 1]) {
      const mine = items.filter((it) => it.classIndex === k);
      assert.equal(mine.filter((it) => it.truth === 'real').length, 7);
      assert.equal(mine.filter((it) => it.truth === 'synthetic').length, 7);
      for (const it of mine)
        if (it.ref.kind === 'real') assert.ok(pools[k]!.positions.includes(it.ref.position));
    }
    const seeds = items.flatMap((it) => (it.ref.kind === 'synthetic' ? [it.ref.seed] : []));
    assert.equal(new Set(seeds).size, 14);
    assert.equal(new Set(items.map((it) => it.id)).size, 28);
    assert.deepEqual(
      items.map((it) => it.position),
      [...items.keys()],
    );
    items.forEach((it, p) => assert.equal(it.id, itemId(FP, p)));
  });

  test('the same seed gives the same design; another seed another one; the order mixes truths and classes', () => {
    const a = planItems({ perClass: 7, seed: 1 }, pools, FP);
    assert.deepEqual(planItems({ perClass: 7, seed: 1 }, pools, FP), a);
    const b = planItems({ perClass: 7, seed: 2 }, pools, FP);
    assert.notDeepEqual(
      a.map((it) => it.ref),
      b.map((it) => it.ref),
    );
    // Not grouped: the first half holds both truths and both classes.
    const half = a.slice(0, 14);
    assert.ok(half.some((it) => it.truth === 'real') && half.some((it) => it.truth === 'synthetic'));
    assert.ok(half.some((it) => it.classIndex === 0) && half.some((it) => it.classIndex === 1));
  });

  test('ids depend on the design fingerprint only, not on truth or class', () => {
    const other = fingerprint({ any: 'other design' });
    const a = planItems({ perClass: 3, seed: 1 }, pools, FP);
    const b = planItems({ perClass: 3, seed: 1 }, pools, other);
    assert.deepEqual(
      a.map((it) => [it.truth, it.classIndex]),
      b.map((it) => [it.truth, it.classIndex]),
    );
    assert.ok(a.every((it, i) => it.id !== b[i]!.id));
    assert.ok(a.every((it) => /^[0-9a-f]{16}$/.test(it.id)));
  });

  test('a class with too few real images is a DatasetError naming it', () => {
    assert.throws(
      () => planItems({ perClass: 45, seed: 0 }, pools, FP, 'data.npz (train)'),
      (e: unknown) =>
        e instanceof DatasetError &&
        /class "pneumonia" has 40 real images, fewer than the 45/.test(e.message) &&
        e.context.field === 'perClass',
    );
  });

  test('fingerprint ignores key order', () => {
    assert.equal(
      fingerprint({ a: 1, b: [1, { c: 2, d: 3 }] }),
      fingerprint({ b: [1, { d: 3, c: 2 }], a: 1 }),
    );
    assert.notEqual(fingerprint({ a: 1 }), fingerprint({ a: 2 }));
  });
});

describe('readerOrder', () => {
  const ids = planItems({ perClass: 10, seed: 0 }, pools, FP).map((it) => it.id);
  test('a permutation, fixed by seed and name, different between readers', () => {
    const alice = readerOrder(ids, 0, 'alice');
    assert.deepEqual([...alice].sort(), [...ids].sort());
    assert.deepEqual(readerOrder(ids, 0, 'alice'), alice);
    assert.notDeepEqual(readerOrder(ids, 0, 'bob'), alice);
    assert.notDeepEqual(readerOrder(ids, 1, 'alice'), alice);
  });
});

describe('reader names', () => {
  test('accepted, normalised', () => {
    for (const [input, name] of [
      ['alice', 'alice'],
      ['  Dr.  Ann   O’Neil ', 'Dr. Ann O’Neil'],
      ["Ann O'Neil", "Ann O'Neil"],
      ['reader-07', 'reader-07'],
      ['Zoë', 'Zoë'],
      ['Zoe\u0308', 'Zoë'],
      ['山田 太郎', '山田 太郎'],
      ['a@b.org', 'a@b.org'],
    ] as const) {
      const r = checkReaderName(input);
      assert.ok(r.ok, `${input}: ${r.ok ? '' : r.reason}`);
      if (r.ok) assert.equal(r.name, name);
    }
  });

  test('refused, with a reason', () => {
    for (const input of ['', '   ', '<script>', 'a/b', '-x', 'x'.repeat(61), 'tab\there?', 42, null]) {
      const r = checkReaderName(input);
      assert.equal(r.ok, false, String(input));
      if (!r.ok) assert.match(r.reason, /reader name/);
    }
  });
});

describe('resolveSettings', () => {
  test('defaults, then each layer over the last', () => {
    const s = resolveSettings([
      { values: { perClass: 5, seed: 2 }, source: 'defaults' },
      { values: { seed: 9, showClass: false }, source: 'file' },
    ]);
    assert.deepEqual(
      { perClass: s.perClass, seed: s.seed, showClass: s.showClass, realSplit: s.realSplit },
      { perClass: 5, seed: 9, showClass: false, realSplit: 'train' },
    );
    assert.equal(resolveSettings([]).perClass, 20);
    assert.ok(Object.isFrozen(s));
  });

  test('a bad value names its layer and field; unknown fields are refused; checkpoints are names, not paths', () => {
    const refused = (values: unknown, field: string) =>
      assert.throws(
        () => resolveSettings([{ values, source: '/x/reader-study.json' }]),
        (e: unknown) =>
          e instanceof ConfigError && e.context.file === '/x/reader-study.json' && e.context.field === field,
      );
    refused({ perClass: 0 }, 'perClass');
    refused({ perClass: 1.5 }, 'perClass');
    refused({ realSplit: 'holdout' }, 'realSplit');
    refused({ perclass: 3 }, '(root)');
    refused({ checkpoint: '../../etc' }, 'checkpoint');
    refused({ checkpoint: '..' }, 'checkpoint');
    refused([1, 2], '(root)');
  });
});
