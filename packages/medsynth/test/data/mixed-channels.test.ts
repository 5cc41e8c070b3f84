// A folder that pools true 1-channel JPEGs, RGB files of grey content and colour files: `channels: 'auto'`
// resolves one channel count from content (colour → 3, grey → 1) and converts every image to it, the
// decision is reported, and leaving `channels` out no longer fails on a shape error.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DataOptionsSchema, resolveOptions } from '../../src/config/data-options.js';
import { type Dataset, type LoadOptions, Split } from '../../src/data/dataset.js';
import { unpackImage } from '../../src/data/image/transform.js';
import { inspectDataset } from '../../src/data/inspect.js';
import { openDataset } from '../../src/data/source.js';
import type { ImageArray } from '../../src/data/types.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { loadRealSet } from '../../src/training/real-data.js';
import { type MixedFolder, writeMixedFolder } from '../helpers/mixed-channels.js';

let dir: string;
let mixed: MixedFolder;
let grey: MixedFolder;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-mixed-channels-'));
  mixed = await writeMixedFolder(join(dir, 'mixed'));
  grey = await writeMixedFolder(join(dir, 'grey'), { colour: false });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every sample of a dataset as one split named `all`. */
const everything = (ds: Dataset) => new Split(ds, 'all', Int32Array.from(ds.listing.samples.keys()));

async function load(folder: MixedFolder, options: LoadOptions) {
  const ds = await openDataset({ source: folder.root });
  const split = everything(ds);
  const events: ProgressEvent[] = [];
  const images = await split.load({ size: 16, ...options, onProgress: (e) => events.push(e) });
  const byId = new Map(Array.from({ length: split.size }, (_, i) => [split.id(i), i]));
  return { images, events, index: (id: string) => byId.get(id)! };
}

function hasColour(images: ImageArray, i: number): boolean {
  const d = unpackImage(images, i).data;
  for (let j = 0; j < d.length; j += 3) if (d[j] !== d[j + 1] || d[j] !== d[j + 2]) return true;
  return false;
}

const warnings = (events: ProgressEvent[]) =>
  events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
const details = (events: ProgressEvent[]) =>
  events.flatMap((e) => (e.type === 'phase' && e.detail !== undefined ? [e.detail] : []));

describe("channels: 'auto' on a folder of mixed grey and colour files", () => {
  test('the folder really mixes 1-channel, grey RGB and colour files', () => {
    assert.deepEqual([mixed.storedGrey, mixed.greyRgb, mixed.colour], [6, 12, 6]);
    assert.deepEqual([grey.storedGrey, grey.greyRgb, grey.colour], [6, 18, 0]);
  });

  test('colour content → 3 channels for every image; grey images replicated; the decision is a warning', async () => {
    const { images, events, index } = await load(mixed, { channels: 'auto' });
    assert.equal(images.count, mixed.total);
    assert.equal(images.channels, 3);
    assert.equal(images.data.length, mixed.total * 16 * 16 * 3);
    for (const id of mixed.ids.colour) assert.ok(hasColour(images, index(id)), `${id} keeps its colour`);
    for (const id of [...mixed.ids.storedGrey, ...mixed.ids.greyRgb])
      assert.ok(!hasColour(images, index(id)), `${id} is grey, replicated`);
    assert.deepEqual(warnings(events), [
      'load all: channels auto: 3 (colour content in 6 of 24 images; 6 grey images replicated to RGB)',
    ]);
  });

  test('grey content (1-channel files beside RGB files with equal channels) → 1 channel, exactly as channels 1', async () => {
    const auto = await load(grey, { channels: 'auto' });
    assert.equal(auto.images.channels, 1);
    assert.equal(auto.images.count, grey.total);
    assert.deepEqual(warnings(auto.events), [
      'load all: channels auto: 1 (grey content in all 24 images; 18 RGB files with equal channels read as grey)',
    ]);
    const one = await load(grey, { channels: 1 });
    assert.deepEqual(one.images.data, auto.images.data, 'first channel of equal channels = luma');
    assert.equal(warnings(one.events).length + details(one.events).filter((d) => /auto/.test(d)).length, 0);
  });

  test('a uniformly stored folder: the decision is a phase detail, not a warning', async () => {
    const ds = await openDataset({ source: grey.root });
    const clear = ds.listing.samples.flatMap((s, i) => (s.label === 0 ? [i] : []));
    const events: ProgressEvent[] = [];
    const images = await new Split(ds, 'clear', Int32Array.from(clear)).load({
      size: 16,
      channels: 'auto',
      onProgress: (e) => events.push(e),
    });
    assert.equal(images.channels, 1);
    assert.deepEqual(warnings(events), []);
    assert.ok(
      details(events).includes(
        'channels auto: 1 (grey content in all 12 images; 12 RGB files with equal channels read as grey)',
      ),
      details(events).join(' | '),
    );
  });

  test('channels left out: the mixed folder loads as auto, with a warning naming the option', async () => {
    const { images, events } = await load(mixed, {});
    assert.equal(images.channels, 3);
    const [w, ...rest] = warnings(events);
    assert.equal(rest.length, 0);
    assert.match(w ?? '', /stored with both 1 and 3 channels/);
    assert.match(w ?? '', /channels auto: 3 \(colour content in 6 of 24 images/);
    assert.match(w ?? '', /--channels/);
  });

  test('explicit channels convert every file without a decision', async () => {
    for (const channels of [1, 3] as const) {
      const { images, events } = await load(mixed, { channels });
      assert.equal(images.channels, channels);
      assert.deepEqual(warnings(events), []);
    }
  });

  test('training loads its real set through the same rule', async () => {
    const data = (source: string) => resolveOptions(DataOptionsSchema, { source }, 'data');
    const colour = await loadRealSet(data(mixed.root), 16, 'auto');
    assert.equal(colour.images.channels, 3);
    const greySet = await loadRealSet(data(grey.root), 16, 'auto');
    assert.equal(greySet.images.channels, 1);
    assert.equal(greySet.images.count, greySet.labels.length);
  });

  test('inspect counts channels by content and notes what auto makes of them', async () => {
    const m = await inspectDataset(await openDataset({ source: mixed.root }));
    assert.deepEqual(m.image.channels, { 1: 6, 3: 18 });
    assert.equal(m.image.greyRgb, 12);
    assert.equal(m.image.channelsAuto, 3);
    assert.ok(
      m.notes.includes(
        'channels auto: 3 (colour content in 6 of 24 images; 6 grey images replicated to RGB)',
      ),
      m.notes.join(' | '),
    );
    const g = await inspectDataset(await openDataset({ source: grey.root }), { maxImages: 10 });
    assert.equal(g.image.channelsAuto, 1);
    assert.ok(
      g.notes.some((n) =>
        /^channels auto: 1 \(grey content in all 10 images; \d+ RGB files .*\(of the 10 images scanned\)$/.test(
          n,
        ),
      ),
      g.notes.join(' | '),
    );
  });
});
