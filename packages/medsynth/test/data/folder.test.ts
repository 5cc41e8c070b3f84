import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadFolder } from '../../src/data/folder/load-folder.js';
import {
  packImages,
  type ResolvedTransform,
  resolveTransform,
  transformImage,
} from '../../src/data/image/transform.js';
import type { RawImage, SourceListing } from '../../src/data/types.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import { sharedData } from '../helpers/shared-data.js';

const KERMANY = sharedData('kermany_cxr_224');
const ISIC = sharedData('isic_skin_8class_180');
const LC25000 = sharedData('lc25000_lung_224');

/** `split/class` → count (split `-` when none is given). */
function countBySplitClass(l: SourceListing): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of l.samples) {
    const key = `${s.split ?? '-'}/${l.classNames[s.label]}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

function meanAbsDiff(a: RawImage, b: RawImage): number {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  assert.equal(a.channels, b.channels);
  assert.equal(a.data.constructor, b.data.constructor);
  assert.equal(a.data.length, b.data.length);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / a.data.length;
}

async function readT(l: SourceListing, i: number, t: ResolvedTransform): Promise<RawImage> {
  assert.ok(l.readTransformed, 'folder listings provide readTransformed');
  return l.readTransformed(i, t);
}

async function rejectsWith<E extends Error>(
  p: Promise<unknown> | (() => Promise<unknown>),
  cls: new (...args: never[]) => E,
  ...fragments: string[]
): Promise<E> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${String(caught)}`);
  for (const f of fragments)
    assert.ok(caught.message.includes(f), `"${caught.message}" should mention "${f}"`);
  return caught;
}

describe('loadFolder on real data', () => {
  it('Kermany: <split>/<class>/ layout with exact counts', async () => {
    const l = await loadFolder(KERMANY, {});
    assert.equal(l.format, 'folder');
    assert.equal(l.location, KERMANY);
    assert.equal(l.labelSource, 'class folders');
    assert.deepEqual(l.classNames, ['NORMAL', 'PNEUMONIA']);
    assert.deepEqual(countBySplitClass(l), {
      'train/NORMAL': 1341,
      'train/PNEUMONIA': 3875,
      'test/NORMAL': 234,
      'test/PNEUMONIA': 390,
    });
    assert.equal(l.samples.length, 5840);
    assert.equal(l.samples[0]!.id, 'train/NORMAL/IM-0115-0001.jpeg');
    assert.ok(l.samples.every((s) => s.group === undefined));
    assert.equal(new Set(l.samples.map((s) => s.id)).size, 5840);
  });

  it('Kermany: labelFromFilename turns 2 classes into 3, groupFromFilename gives patient ids', async () => {
    const l = await loadFolder(KERMANY, {
      labelFromFilename: '_(bacteria|virus)_',
      groupFromFilename: '^(person\\d+)_',
    });
    assert.deepEqual(l.classNames, ['NORMAL', 'bacteria', 'virus']);
    assert.equal(l.labelSource, 'class folders + file name pattern /_(bacteria|virus)_/');
    assert.deepEqual(countBySplitClass(l), {
      'train/NORMAL': 1341,
      'train/bacteria': 2530,
      'train/virus': 1345,
      'test/NORMAL': 234,
      'test/bacteria': 242,
      'test/virus': 148,
    });
    for (const s of l.samples) {
      const m = /(?:^|\/)(person\d+)_/.exec(s.id);
      assert.equal(s.group, m?.[1], s.id);
    }
  });

  it('Kermany train/ alone: <class>/ layout, no split given', async () => {
    const l = await loadFolder(join(KERMANY, 'train'), {});
    assert.deepEqual(countBySplitClass(l), { '-/NORMAL': 1341, '-/PNEUMONIA': 3875 });
    assert.ok(l.samples[0]!.id.startsWith('NORMAL/'));
  });

  it('ISIC: labels.csv with a split column, exact counts per split × class', async () => {
    const l = await loadFolder(ISIC, {});
    assert.equal(l.labelSource, 'labels.csv column "label"');
    assert.deepEqual(l.classNames, [
      'actinic_keratosis',
      'basal_cell_carcinoma',
      'dermatofibroma',
      'melanoma',
      'nevus',
      'pigmented_benign_keratosis',
      'squamous_cell_carcinoma',
      'vascular_lesion',
    ]);
    const train = [114, 376, 95, 194, 251, 462, 181, 139];
    const test = [14, 16, 9, 16, 15, 16, 11, 3];
    const expected: Record<string, number> = {};
    l.classNames.forEach((c, i) => {
      expected[`train/${c}`] = train[i]!;
      expected[`test/${c}`] = test[i]!;
    });
    assert.deepEqual(countBySplitClass(l), expected);
    assert.equal(l.samples.length, 1912);
    assert.ok(l.notes.some((n) => n.includes('splits from labels.csv column "split"')));
  });

  it('LC25000: labels.csv with group_id, no split, 740 groups', async () => {
    const l = await loadFolder(LC25000, {});
    assert.deepEqual(countBySplitClass(l), { '-/lung_aca': 972, '-/lung_n': 995, '-/lung_scc': 992 });
    assert.ok(l.samples.every((s) => typeof s.group === 'string' && s.group.length > 0));
    assert.equal(new Set(l.samples.map((s) => s.group)).size, 740);
    // every group belongs to one class (group ids are `<class>_g<n>`)
    for (const s of l.samples) assert.ok(s.group!.startsWith(`${l.classNames[s.label]}_g`), s.id);
  });

  it('listing is deterministic', async () => {
    const a = await loadFolder(LC25000, {});
    const b = await loadFolder(LC25000, {});
    assert.deepEqual(a.samples, b.samples);
  });

  it('read() of a real JPEG equals sharp’s own decode', async () => {
    const l = await loadFolder(KERMANY, {});
    for (const i of [0, 1500, 5839]) {
      const img = await l.read(i);
      const { data, info } = await sharp(join(KERMANY, l.samples[i]!.id))
        .raw()
        .toBuffer({ resolveWithObject: true });
      assert.equal(img.width, info.width);
      assert.equal(img.height, info.height);
      assert.equal(img.channels, 3);
      assert.equal(info.channels, 3);
      assert.ok(img.data instanceof Uint8Array);
      assert.deepEqual(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), data);
    }
  });

  it('readTransformed matches transformImage(read()) on real images (64 gray, 32 RGB)', async () => {
    const kermany = await loadFolder(join(KERMANY, 'test'), {});
    const isic = await loadFolder(ISIC, {});
    const cases: [SourceListing, number][] = [
      [kermany, 0],
      [kermany, 300],
      [kermany, 600],
      [isic, 0],
      [isic, 900],
      [isic, 1900],
    ];
    for (const t of [
      resolveTransform({ size: 64, channels: 1 }),
      resolveTransform({ size: 32, channels: 3 }),
    ]) {
      for (const [l, i] of cases) {
        const fast = await readT(l, i, t);
        const slow = await transformImage(await l.read(i), t);
        assert.equal(fast.width, t.width);
        assert.equal(fast.channels, t.channels);
        const d = meanAbsDiff(fast, slow);
        assert.ok(d < 2, `${l.samples[i]!.id} ${t.width}x${t.channels}: mean abs diff ${d}`);
      }
    }
  });
});

describe('loadFolder on built folders', () => {
  let tmp: string;
  let realJpeg: Buffer;
  const GRAY16 = [0, 1, 255, 256, 257, 1000, 4095, 12345, 32768, 40000, 65534, 65535];

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'medsynth-folder-'));
    realJpeg = await readFile(join(KERMANY, 'test', 'NORMAL', 'IM-0001-0001.jpeg'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  let n = 0;
  async function dir(files: Record<string, Buffer | string>): Promise<string> {
    const root = join(tmp, `case${n++}`);
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(join(root, rel, '..'), { recursive: true });
      await writeFile(join(root, rel), content);
    }
    return root;
  }

  const gray8 = (w: number, h: number) => {
    const px = new Uint8Array(w * h);
    for (let i = 0; i < px.length; i++) px[i] = (i * 7) % 256;
    return sharp(px, { raw: { width: w, height: h, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toBuffer();
  };
  const gray16 = (w: number, h: number, values: readonly number[]) => {
    const px = new Uint16Array(w * h);
    for (let i = 0; i < px.length; i++) px[i] = values[i % values.length]!;
    return sharp(px, { raw: { width: w, height: h, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toBuffer();
  };
  const rgb8 = (w: number, h: number) => {
    const px = new Uint8Array(w * h * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 13) % 256;
    return sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toBuffer();
  };
  const rgba8 = (w: number, h: number) => {
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) px.set([200, 100, 50, [0, 255, 128][i % 3]!], i * 4);
    return sharp(px, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer();
  };

  it('16-bit PNGs keep their exact values (gray and RGB)', async () => {
    const png = await gray16(4, 3, GRAY16);
    // IHDR: bit depth 16, colour type 0 (grayscale): the file really is 16-bit
    assert.equal(png[24], 16);
    assert.equal(png[25], 0);
    const rgbValues = new Uint16Array(2 * 2 * 3).map((_, i) => GRAY16[i]!);
    const rgbPng = await sharp(rgbValues, { raw: { width: 2, height: 2, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    assert.equal(rgbPng[24], 16);
    assert.equal(rgbPng[25], 2);
    const root = await dir({ 'a/g16.png': png, 'b/rgb16.png': rgbPng });
    const l = await loadFolder(root, {});
    const g = await l.read(0);
    assert.equal(g.channels, 1);
    assert.ok(g.data instanceof Uint16Array);
    assert.deepEqual([...g.data], GRAY16);
    const c = await l.read(1);
    assert.equal(c.channels, 3);
    assert.ok(c.data instanceof Uint16Array);
    assert.deepEqual([...c.data], [...rgbValues]);
    // native-size readTransformed to 8 bit: round(v / 257)
    const g8 = await readT(l, 0, resolveTransform({ bitDepth: 8 }));
    assert.deepEqual(
      [...g8.data],
      GRAY16.map((v) => Math.round(v / 257)),
    );
    const g16 = await readT(l, 0, resolveTransform({ bitDepth: 16 }));
    assert.deepEqual([...g16.data], GRAY16);
  });

  it('mixed sizes, bit depths and channels load to a common 32×32 with 1 and 3 channels', async () => {
    const root = await dir({
      'gray/g8.png': await gray8(20, 30),
      'gray/g16.png': await gray16(24, 18, GRAY16),
      'colour/rgb.png': await rgb8(50, 40),
      'colour/rgba.png': await rgba8(16, 16),
      'colour/real.jpg': realJpeg,
    });
    const l = await loadFolder(root, {});
    assert.deepEqual(l.classNames, ['colour', 'gray']);
    assert.deepEqual(
      l.samples.map((s) => s.id),
      ['colour/real.jpg', 'colour/rgb.png', 'colour/rgba.png', 'gray/g16.png', 'gray/g8.png'],
    );
    const native = await Promise.all(l.samples.map((_, i) => l.read(i)));
    assert.deepEqual(
      native.map((im) => [im.width, im.height, im.channels, im.data instanceof Uint16Array ? 16 : 8]),
      [
        [224, 224, 3, 8],
        [50, 40, 3, 8],
        [16, 16, 3, 8],
        [24, 18, 1, 16],
        [20, 30, 1, 8],
      ],
    );
    // RGBA flattened onto black: alpha 0 → 0, alpha 255 → colour, alpha 128 → about half
    const rgba = native[2]!.data;
    assert.deepEqual([...rgba.subarray(0, 6)], [0, 0, 0, 200, 100, 50]);
    const half = [...rgba.subarray(6, 9)];
    assert.ok(
      [100, 50, 25].every((v, k) => Math.abs(half[k]! - v) <= 1),
      `half alpha → ${half}`,
    );

    for (const channels of [1, 3] as const) {
      for (const bitDepth of [8, 16] as const) {
        const t = resolveTransform({ size: 32, channels, bitDepth });
        const fast = await Promise.all(l.samples.map((_, i) => readT(l, i, t)));
        const packed = packImages(
          fast,
          l.samples.map((s) => s.id),
        );
        assert.equal(packed.count, 5);
        assert.equal(packed.height, 32);
        assert.equal(packed.width, 32);
        assert.equal(packed.channels, channels);
        assert.equal(packed.maxValue, bitDepth === 8 ? 255 : 65535);
        for (let i = 0; i < fast.length; i++) {
          const slow = await transformImage(native[i]!, t);
          const d = meanAbsDiff(fast[i]!, slow) / (bitDepth === 16 ? 257 : 1);
          assert.ok(d < 2, `${l.samples[i]!.id} c${channels} ${bitDepth}-bit: mean abs diff ${d}`);
        }
      }
    }
    // cover and contain on a non-square image
    for (const fit of ['cover', 'contain'] as const) {
      const t = resolveTransform({ size: [32, 16], fit, channels: 1, interpolation: 'linear' });
      const fast = await readT(l, 1, t);
      const slow = await transformImage(native[1]!, t);
      assert.equal(fast.height, 32);
      assert.equal(fast.width, 16);
      assert.ok(meanAbsDiff(fast, slow) < 2, fit);
    }
  });

  it('<split>/<class>/ accepts split spellings case-insensitively; hidden and non-image files are skipped', async () => {
    const png = await gray8(4, 4);
    const root = await dir({
      'Training/a/1.png': png,
      'Training/a/sub/2.PNG': png,
      'Training/b/3.jpg': realJpeg,
      'Training/b/.hidden.png': png,
      'Training/b/notes.txt': 'x',
      'VALID/a/4.png': png,
      'testing/b/5.jpeg': realJpeg,
      'MANIFEST.sha256': 'x',
      '.git/x.png': png,
    });
    const l = await loadFolder(root, {});
    assert.deepEqual(
      l.samples.map((s) => [s.id, s.split, l.classNames[s.label]]),
      [
        ['Training/a/1.png', 'train', 'a'],
        ['Training/a/sub/2.PNG', 'train', 'a'],
        ['Training/b/3.jpg', 'train', 'b'],
        ['VALID/a/4.png', 'val', 'a'],
        ['testing/b/5.jpeg', 'test', 'b'],
      ],
    );
  });

  it('labels CSV: source of truth for files and labels; its split wins over folders; unlisted images noted', async () => {
    const png = await gray8(4, 4);
    const root = await dir({
      'train/x/1.png': png,
      'train/x/2.png': png,
      'train/y/3.png': png,
      'test/y/4.png': png,
      'labels.csv':
        'file,diagnosis,subset,patient\ntrain/x/1.png,cat,val,p1\ntrain/x/2.png,dog,,p2\ntest/y/4.png,cat,train,p1\n',
    });
    const l = await loadFolder(root, {});
    assert.equal(l.labelSource, 'labels.csv column "diagnosis"');
    assert.deepEqual(l.classNames, ['cat', 'dog']);
    assert.deepEqual(l.samples, [
      { id: 'train/x/1.png', label: 0, split: 'val', group: 'p1' },
      { id: 'train/x/2.png', label: 1, split: 'train', group: 'p2' },
      { id: 'test/y/4.png', label: 0, split: 'train', group: 'p1' },
    ]);
    assert.ok(
      l.notes.some((n) => n.includes('1 image file under the folder not in labels.csv; ignored')),
      l.notes.join('; '),
    );
    const img = await l.read(2);
    assert.equal(img.width, 4);
  });

  it('labels CSV elsewhere: paths relative to the CSV folder, explicit columns, file name patterns', async () => {
    const png = await gray8(4, 4);
    const root = await dir({
      'imgs/a/person1_virus_1.png': png,
      'imgs/a/person2_x.png': png,
      'meta/l.csv': '',
    });
    const csv = join(root, 'meta', 'l.csv');
    await writeFile(csv, 'img,lab\n../imgs/a/person1_virus_1.png,A\n../imgs/a/person2_x.png,B\n');
    const l = await loadFolder(join(root, 'imgs'), {
      labelsCsv: csv,
      pathColumn: 'img',
      labelColumn: 'lab',
      labelFromFilename: '/_(VIRUS)_/i',
      groupFromFilename: '^(person\\d+)_',
    });
    assert.equal(l.labelSource, 'l.csv column "lab" + file name pattern /_(VIRUS)_/i');
    assert.deepEqual(l.classNames, ['B', 'virus']);
    assert.deepEqual(l.samples, [
      { id: 'a/person1_virus_1.png', label: 1, group: 'person1' },
      { id: 'a/person2_x.png', label: 0, group: 'person2' },
    ]);
  });

  it('a class folder with zero images is a DatasetError naming the folder', async () => {
    const root = await dir({ 'a/1.png': await gray8(4, 4), 'b/readme.txt': 'no images here' });
    const e = await rejectsWith(loadFolder(root, {}), DatasetError, 'class b has no images', join(root, 'b'));
    assert.equal(e.context.file, join(root, 'b'));
  });

  it('a truncated JPEG lists fine and fails at read with a DatasetError naming the file', async () => {
    const root = await dir({
      'a/ok.jpeg': realJpeg,
      'a/truncated.jpeg': realJpeg.subarray(0, Math.floor(realJpeg.length / 2)),
      'a/empty.png': Buffer.alloc(0),
      'a/garbage.png': Buffer.from('not a png at all'),
    });
    const l = await loadFolder(root, {});
    assert.deepEqual(
      l.samples.map((s) => s.id),
      ['a/empty.png', 'a/garbage.png', 'a/ok.jpeg', 'a/truncated.jpeg'],
    );
    await l.read(2);
    const t = resolveTransform({ size: 16 });
    for (const i of [0, 1, 3]) {
      const file = join(root, l.samples[i]!.id);
      const e = await rejectsWith(l.read(i), DatasetError, file);
      assert.equal(e.context.file, file);
      await rejectsWith(readT(l, i, t), DatasetError, file);
    }
    await assert.rejects(l.read(99), RangeError);
  });

  it('a CSV row naming a missing file is a DatasetError naming the CSV and the line', async () => {
    const root = await dir({
      'a/1.png': await gray8(4, 4),
      'labels.csv': 'path,label\na/1.png,x\na/missing.png,y\n',
    });
    const e = await rejectsWith(
      loadFolder(root, {}),
      DatasetError,
      join(root, 'labels.csv'),
      'line 3',
      'a/missing.png',
    );
    assert.equal(e.context.field, 'line 3, column path');
  });

  it('a CSV listing the same file twice is a DatasetError', async () => {
    const root = await dir({
      'a/1.png': await gray8(4, 4),
      'labels.csv': 'path,label\na/1.png,x\n./a/1.png,y\n',
    });
    await rejectsWith(loadFolder(root, {}), DatasetError, 'lines 2 and 3');
  });

  it('a bad regex is a ConfigError naming the option', async () => {
    const root = await dir({ 'a/1.png': await gray8(4, 4) });
    const bad = await rejectsWith(
      loadFolder(root, { labelFromFilename: '_(bacteria' }),
      ConfigError,
      'labelFromFilename',
    );
    assert.equal(bad.context.field, 'labelFromFilename');
    await rejectsWith(loadFolder(root, { groupFromFilename: '[' }), ConfigError, 'groupFromFilename');
    await rejectsWith(loadFolder(root, { groupFromFilename: 'person\\d+' }), ConfigError, 'capture group');
  });

  it('mixed split and class folders, missing roots and folders without class folders are DatasetErrors', async () => {
    const png = await gray8(4, 4);
    const mixed = await dir({ 'train/a/1.png': png, 'other/2.png': png });
    await rejectsWith(loadFolder(mixed, {}), DatasetError, 'mixes split folders');
    await rejectsWith(loadFolder(join(tmp, 'nope'), {}), DatasetError, 'not found');
    const flat = await dir({ '1.png': png });
    await rejectsWith(loadFolder(flat, {}), DatasetError, 'no class folders');
  });

  it('honours an aborted signal', async () => {
    const root = await dir({ 'a/1.png': await gray8(4, 4) });
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(loadFolder(root, { signal: ac.signal }), /stop/);
  });
});
