import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Dataset } from '../../src/data/dataset.js';
import { inspectDataset } from '../../src/data/inspect.js';
import type { RawImage, SampleRecord, SourceListing } from '../../src/data/types.js';
import { DatasetError } from '../../src/runtime/errors.js';

/** An in-memory listing: image i is a 4×4 gray image filled with value i % 256. */
function listing(samples: SampleRecord[], classNames = ['a', 'b', 'c']): SourceListing {
  return {
    format: 'folder',
    location: '/virtual',
    classNames,
    labelSource: 'test',
    samples,
    notes: [],
    read: async (i: number): Promise<RawImage> => ({
      width: 4,
      height: 4,
      channels: 1,
      data: new Uint8Array(16).fill(i % 256),
    }),
  };
}

const ungrouped = (n: number): SampleRecord[] =>
  Array.from({ length: n }, (_, i) => ({ id: `img${i}.png`, label: i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2 }));

describe('Dataset split policy', () => {
  test('no given split: stratified 70/10/20 by seed, every class everywhere', () => {
    const ds = new Dataset(listing(ungrouped(1000)), {
      seed: 3,
      ratios: { train: 0.7, val: 0.1, test: 0.2 },
    });
    assert.deepEqual(ds.split('train').classCounts(), [420, 210, 70]);
    assert.deepEqual(ds.split('val').classCounts(), [60, 30, 10]);
    assert.deepEqual(ds.split('test').classCounts(), [120, 60, 20]);
    assert.match(ds.splitSource, /stratified 70\/10\/20 \(seed 3\)/);
    const again = new Dataset(listing(ungrouped(1000)), {
      seed: 3,
      ratios: { train: 0.7, val: 0.1, test: 0.2 },
    });
    assert.deepEqual(again.split('val').indices, ds.split('val').indices);
  });

  test('given train/test: kept, val carved from train with groups whole', () => {
    const samples: SampleRecord[] = [];
    for (let i = 0; i < 400; i++) {
      samples.push({
        id: `t${i}`,
        label: i % 2,
        split: i < 300 ? 'train' : 'test',
        group: `p${Math.floor(i / 4)}`,
      });
    }
    const ds = new Dataset(listing(samples, ['x', 'y']));
    assert.equal(ds.split('test').size, 100);
    assert.equal(ds.split('train').size + ds.split('val').size, 300);
    const valGroups = new Set(
      Array.from({ length: ds.split('val').size }, (_, i) => ds.split('val').group(i)),
    );
    for (let i = 0; i < ds.split('train').size; i++) assert.ok(!valGroups.has(ds.split('train').group(i)));
    assert.ok(ds.split('val').size >= 20 && ds.split('val').size <= 40, `val size ${ds.split('val').size}`);
    assert.match(
      ds.splitSource,
      /given by the source; val carved from train \(13%, seed 0, groups kept whole\)/,
    );
  });

  test('an empty class or out-of-range label is a DatasetError naming it', () => {
    const s = ungrouped(30).map((x) => ({ ...x, label: x.label === 2 ? 1 : x.label }));
    assert.throws(
      () => new Dataset(listing(s)),
      (e: unknown) => e instanceof DatasetError && /class "c" has no images/.test(e.message),
    );
    assert.throws(
      () => new Dataset(listing([{ id: 'z.png', label: 7 }])),
      (e: unknown) => e instanceof DatasetError && /z\.png.*label out of range/.test(e.message),
    );
    assert.throws(() => new Dataset(listing([])), /no images/);
  });

  test('asking for a split that does not exist is an error', () => {
    const ds = new Dataset(listing([{ id: 'only.dcm', label: 0 }], ['unlabelled']));
    assert.equal(ds.split('train').size, 1);
    assert.throws(() => ds.split('test'), DatasetError);
  });
});

describe('Split', () => {
  test('load packs images in split order; fraction and sites are views', async () => {
    const ds = new Dataset(listing(ungrouped(200)));
    const train = ds.split('train');
    const events: string[] = [];
    const arr = await train.load({ onProgress: (e) => events.push(e.type) });
    assert.equal(arr.count, train.size);
    assert.equal(arr.height, 4);
    for (let i = 0; i < train.size; i++) assert.equal(arr.data[i * 16], train.indices[i]! % 256);
    assert.equal(events[0], 'phase');
    assert.equal(events.at(-1), 'done');
    assert.ok(events.includes('tick'));
    const resized = await train.load({ size: 2, channels: 3 });
    assert.equal(resized.width, 2);
    assert.equal(resized.channels, 3);

    const tenth = train.fraction(0.1);
    assert.deepEqual(
      tenth.classCounts(),
      train.classCounts().map((c) => Math.max(1, Math.round(c * 0.1))),
    );
    assert.match(tenth.name, /fraction=0.1/);
    const sites = train.sites(3, { alpha: 0.5, seed: 1 });
    assert.equal(
      sites.reduce((a, s) => a + s.size, 0),
      train.size,
    );
    const all = new Set(sites.flatMap((s) => [...s.indices]));
    assert.equal(all.size, train.size, 'sites are disjoint and cover the split');
  });

  test('load honours an aborted signal', async () => {
    const ds = new Dataset(listing(ungrouped(50)));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(ds.split('train').load({ signal: ac.signal }), /stop/);
  });

  test('inspect reports counts, imbalance, value range and group leakage', async () => {
    const samples: SampleRecord[] = ungrouped(100).map((s, i) => ({ ...s, group: `g${i % 25}` }));
    const ds = new Dataset(listing(samples));
    const s = await inspectDataset(ds);
    assert.equal(s.total, 100);
    assert.equal(s.groupsAcrossSplits, 0);
    assert.equal(s.groupsAcrossSourceSplits, 0);
    assert.equal(s.image.scanned, 100);
    assert.deepEqual(s.image.valueRange, { min: 0, max: 99 });
    assert.deepEqual(s.image.sizes, [{ height: 4, width: 4, count: 100 }]);
    const train = s.splits.find((x) => x.name === 'train')!;
    const present = train.classCounts.filter((c) => c > 0);
    assert.equal(s.imbalanceRatio, Math.max(...present) / Math.min(...present));
  });

  test('inspect tells groups the source split apart from groups medsynth split', async () => {
    // Group "p1" is in the source's train and test (as Kermany's patient ids are); medsynth carves val.
    const samples: SampleRecord[] = Array.from({ length: 60 }, (_, i) => ({
      id: `f${i}`,
      label: i % 3,
      split: i < 50 ? 'train' : 'test',
      group: i === 0 || i === 55 ? 'p1' : `g${i}`,
    }));
    const s = await inspectDataset(new Dataset(listing(samples)));
    assert.equal(s.groupsAcrossSplits, 1);
    assert.equal(s.groupsAcrossSourceSplits, 1);
  });
});
