import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import {
  classFolderNames,
  manifestPathFor,
  readManifest,
  type SyntheticManifest,
  writeSyntheticSet,
} from '../../src/generate/export.js';
import { makePlan, parseCounts, parseSeeds } from '../../src/generate/plan.js';
import { type GeneratedBatch, generateImages } from '../../src/generate/sample.js';
import { openDataset } from '../../src/data/source.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { tinyGenerator } from './tiny-generator.js';

before(async () => {
  await selectBackend();
});

const CLASSES = ['normal', 'pneumonia', 'zeta'];
const SOURCE = {
  runDir: '/runs/r1',
  checkpoint: '/runs/r1/checkpoints/step-0000100',
  network: 'G_ema',
  step: 100,
  kimg: 6.4,
  family: 'cgan',
  dataSource: 'medmnist:pneumoniamnist',
} as const;

const made: string[] = [];
after(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'medsynth-generate-'));
  made.push(d);
  return d;
}

/** Every generated image by seed, straight from the sampler (the reference for round trips). */
async function reference(
  g: ReturnType<typeof tinyGenerator>,
  plan: ReturnType<typeof makePlan>,
  seeds?: string,
): Promise<Map<number, { label: number; pixels: number[] }>> {
  const m = new Map<number, { label: number; pixels: number[] }>();
  const it = generateImages(g, plan, seeds === undefined ? {} : { seeds: parseSeeds(seeds) });
  for await (const b of it as AsyncGenerator<GeneratedBatch>) {
    const px = b.images.height * b.images.width * b.images.channels;
    b.seeds.forEach((seed, i) => {
      m.set(seed, { label: b.labels[i]!, pixels: [...b.images.data.subarray(i * px, (i + 1) * px)] });
    });
  }
  return m;
}

function isConfig(field: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.context.field, field);
    if (message) assert.match(e.message, message);
    return true;
  };
}

describe('folder export', () => {
  test('round trip through openDataset: class names, labels and pixels as generated; manifest', async () => {
    const dir = await tmp();
    const out = join(dir, 'synthetic');
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'counts', counts: parseCounts('normal=3,pneumonia=2,zeta=4') }, CLASSES);
    const events: ProgressEvent[] = [];
    const res = await writeSyntheticSet(g, plan, {
      out,
      seeds: parseSeeds('10-19'),
      truncation: 0.8,
      batchSize: 4,
      source: SOURCE,
      onProgress: (e) => events.push(e),
    });
    assert.equal(res.out, out);
    assert.equal(res.layout, 'folder');
    assert.equal(res.total, 9);
    assert.equal(res.seeds, '10-18');
    assert.deepEqual([res.firstSeed, res.lastSeed], [10, 18]);
    assert.deepEqual(res.warnings, []);
    assert.ok(events.some((e) => e.type === 'done' && e.phase === 'generate'));
    assert.deepEqual((await readdir(out)).sort(), ['manifest.json', 'normal', 'pneumonia', 'zeta']);
    assert.deepEqual(await readdir(join(out, 'pneumonia')), ['seed000013.png', 'seed000014.png']);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
      'no staging folder left',
    );

    const ref = await reference(g, { ...plan }, '10-19');
    const truncatedRef = new Map<number, number[]>();
    for await (const b of generateImages(g, plan, { seeds: parseSeeds('10-19'), truncation: 0.8 })) {
      b.seeds.forEach((s, i) => truncatedRef.set(s, [...b.images.data.subarray(i * 16, (i + 1) * 16)]));
    }
    const ds = await openDataset(out);
    assert.equal(ds.format, 'folder');
    assert.deepEqual(ds.classNames, CLASSES);
    const samples = ds.listing.samples;
    assert.equal(samples.length, 9);
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const seed = Number(/seed(\d+)\.png$/.exec(s.id)![1]);
      assert.equal(s.label, ref.get(seed)!.label, s.id);
      const img = await ds.listing.read(i);
      assert.equal(img.channels, 1);
      assert.deepEqual([img.width, img.height], [4, 4]);
      assert.deepEqual([...img.data], truncatedRef.get(seed), `pixels of ${s.id}`);
      assert.notDeepEqual([...img.data], ref.get(seed)!.pixels, 'ψ 0.8 is not ψ 1');
    }

    const m = await readManifest(out);
    assert.equal(m.layout, 'folder');
    assert.deepEqual(m.source, SOURCE);
    assert.equal(m.truncation, 0.8);
    assert.deepEqual(m.classNames, CLASSES);
    assert.deepEqual(m.counts, [3, 2, 4]);
    assert.equal(m.total, 9);
    assert.equal(m.seeds, '10-18');
    assert.deepEqual(m.image, { size: 4, channels: 1, bitDepth: 8 });
    assert.equal(m.backend, 'libtorch');
    assert.deepEqual(m.images.slice(0, 4), [
      { id: 'normal/seed000010.png', class: 'normal', label: 0, seed: 10 },
      { id: 'normal/seed000011.png', class: 'normal', label: 0, seed: 11 },
      { id: 'normal/seed000012.png', class: 'normal', label: 0, seed: 12 },
      { id: 'pneumonia/seed000013.png', class: 'pneumonia', label: 1, seed: 13 },
    ]);
    assert.deepEqual(
      m.images.map((x) => x.id).sort(),
      samples.map((s) => s.id).sort(),
      'the manifest lists exactly the files the loader reads',
    );
    const text = await readFile(join(out, 'manifest.json'), 'utf8');
    assert.equal(text.split('\n').filter((l) => l.includes('"seed":')).length, 9, 'one line per image');
    g.dispose();
  });

  test('RGB images and a grid with one row per class', async () => {
    const dir = await tmp();
    const g = tinyGenerator({ classNames: CLASSES, channels: 3, size: 6 });
    const plan = makePlan({ kind: 'counts', counts: parseCounts('normal=3,zeta=1') }, CLASSES);
    const grid = join(dir, 'grid.png');
    const res = await writeSyntheticSet(g, plan, { out: join(dir, 'rgb'), grid, gridPerClass: 2 });
    assert.equal(res.grid, grid);
    const meta = await sharp(await readFile(grid)).metadata();
    assert.equal(meta.width, 2 * 6 + 3 * 2, '2 columns');
    assert.equal(meta.height, 3 * 6 + 4 * 2, 'one row per class, the empty class too');
    const ds = await openDataset(join(dir, 'rgb'));
    assert.equal((await ds.listing.read(0)).channels, 3);
    // Zero-count class: no folder, so the loader does not know it (warned); the manifest keeps it.
    assert.deepEqual(ds.classNames, ['normal', 'zeta']);
    assert.equal(res.warnings.length, 1);
    assert.match(res.warnings[0]!, /no images of "pneumonia"/);
    assert.deepEqual((await readManifest(join(dir, 'rgb'))).classNames, CLASSES);
    await assert.rejects(
      writeSyntheticSet(g, plan, { out: join(dir, 'x'), grid: join(dir, 'x', 'grid.png') }),
      isConfig('--grid'),
    );
    g.dispose();
  });

  test('refuses to overwrite, replaces a previous set only with --overwrite, and never an arbitrary folder', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'per-class', count: 1 }, CLASSES);
    await mkdir(out);
    await writeSyntheticSet(g, plan, { out }); // an empty folder is fine
    await assert.rejects(writeSyntheticSet(g, plan, { out }), isConfig('--out', /not empty.*--overwrite/));
    const two = makePlan({ kind: 'per-class', count: 2 }, CLASSES);
    await writeSyntheticSet(g, two, { out, overwrite: true, seeds: parseSeeds('50-59') });
    assert.deepEqual(await readdir(join(out, 'zeta')), ['seed000054.png', 'seed000055.png']);
    assert.equal((await readManifest(out)).total, 6);

    const mine = join(dir, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'thesis.txt'), 'precious');
    await assert.rejects(
      writeSyntheticSet(g, plan, { out: mine, overwrite: true }),
      isConfig('--out', /not a medsynth synthetic set/),
    );
    assert.equal(await readFile(join(mine, 'thesis.txt'), 'utf8'), 'precious');
    await writeFile(join(dir, 'file'), 'x');
    await assert.rejects(writeSyntheticSet(g, plan, { out: join(dir, 'file') }), isConfig('--out'));
    g.dispose();
  });

  test('--overwrite deletes only what the old manifest owns: other files are refused and listed, and kept', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    const g = tinyGenerator({ classNames: CLASSES });
    await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 2 }, CLASSES), { out });
    const createdAt = (await readManifest(out)).createdAt;
    await writeFile(join(out, 'notes.txt'), 'my notes');
    await writeFile(join(out, 'normal', 'seed999999.png'), 'an image the manifest does not list');
    await mkdir(join(out, 'empty'));
    const one = makePlan({ kind: 'counts', counts: parseCounts('normal=1,pneumonia=1') }, CLASSES);
    await assert.rejects(writeSyntheticSet(g, one, { out, overwrite: true }), (e: unknown) => {
      isConfig('--out')(e);
      assert.equal((e as ConfigError).exitCode, 2);
      assert.equal((e as ConfigError).context.file, out);
      assert.match(
        (e as ConfigError).message,
        /holds 3 files that the synthetic set's manifest.json does not list \(empty\/, normal\/seed999999\.png, notes\.txt\); --overwrite replaces only the set's own files: move them out of the folder or choose another output/,
      );
      return true;
    });
    assert.equal(await readFile(join(out, 'notes.txt'), 'utf8'), 'my notes');
    assert.equal((await readdir(join(out, 'normal'))).length, 3);
    assert.equal((await readManifest(out)).total, 6, 'the old set is untouched');
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
      'refused before any staging',
    );
    for (let i = 0; i < 12; i++) await writeFile(join(out, `extra${String(i).padStart(2, '0')}.txt`), '');
    await assert.rejects(
      writeSyntheticSet(g, one, { out, overwrite: true }),
      isConfig('--out', /holds 15 files .*\(empty\/, extra00\.txt, .*, extra08\.txt and 5 more\)/),
    );

    // Without them, the old set is replaced; what is deleted is said; a class folder left empty goes too.
    for (const f of await readdir(out)) if (/^(extra|notes)/.test(f)) await rm(join(out, f));
    await rm(join(out, 'normal', 'seed999999.png'));
    await rm(join(out, 'empty'), { recursive: true });
    await writeFile(join(out, '.DS_Store'), '');
    const events: ProgressEvent[] = [];
    const res = await writeSyntheticSet(g, one, { out, overwrite: true, onProgress: (e) => events.push(e) });
    const message = `replacing the synthetic set in ${out}: 6 images and manifest.json of the set made ${createdAt} (also deleting .DS_Store)`;
    assert.deepEqual(
      events.filter((e) => e.type === 'warning').map((e) => e.message),
      [message, ...res.warnings.slice(1)],
    );
    assert.equal(res.warnings[0], message);
    assert.deepEqual((await readdir(out)).sort(), ['manifest.json', 'normal', 'pneumonia']);
    assert.deepEqual(await readdir(join(out, 'normal')), ['seed000000.png']);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
    );
    g.dispose();
  });

  test('a file added to the old set while generating stops the swap: old set and file kept', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    const g = tinyGenerator({ classNames: CLASSES });
    await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 1 }, CLASSES), { out });
    await assert.rejects(
      writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 4 }, CLASSES), {
        out,
        overwrite: true,
        batchSize: 2,
        onProgress: (e) => {
          if (e.type === 'tick' && e.done === 2) writeFileSync(join(out, 'late.txt'), 'added meanwhile');
        },
      }),
      isConfig('--out', /\(late\.txt\)/),
    );
    assert.equal(await readFile(join(out, 'late.txt'), 'utf8'), 'added meanwhile');
    assert.equal((await readManifest(out)).total, 3);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
    );
    g.dispose();
  });

  test('an existing --grid file is refused without --overwrite, before anything is written', async () => {
    const dir = await tmp();
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'per-class', count: 1 }, CLASSES);
    const grid = join(dir, 'grid.png');
    await writeFile(grid, 'precious');
    const out = join(dir, 'set');
    await assert.rejects(writeSyntheticSet(g, plan, { out, grid }), (e: unknown) => {
      isConfig('--grid', /the grid file exists; pass --overwrite to replace it/)(e);
      assert.equal((e as ConfigError).context.file, grid);
      assert.equal((e as ConfigError).exitCode, 2);
      return true;
    });
    assert.equal(await readFile(grid, 'utf8'), 'precious');
    assert.equal(g.calls.length, 0, 'nothing generated');
    assert.deepEqual(await readdir(dir), ['grid.png'], 'nothing written');
    await mkdir(join(dir, 'grid-dir.png'));
    await assert.rejects(
      writeSyntheticSet(g, plan, { out, grid: join(dir, 'grid-dir.png'), overwrite: true }),
      isConfig('--grid', /existing folder/),
    );
    const res = await writeSyntheticSet(g, plan, { out, grid, overwrite: true });
    assert.deepEqual(res.warnings, [`replacing the grid ${grid}`]);
    assert.equal((await sharp(await readFile(grid)).metadata()).format, 'png');
    g.dispose();
  });

  test('an error midway leaves the previous set and no staging folder', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    const g = tinyGenerator({ classNames: CLASSES });
    await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 1 }, CLASSES), { out });
    const controller = new AbortController();
    await assert.rejects(
      writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 5 }, CLASSES), {
        out,
        overwrite: true,
        batchSize: 2,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.type === 'tick' && e.done >= 4) controller.abort();
        },
      }),
      /abort/i,
    );
    assert.equal((await readManifest(out)).total, 3, 'the previous set is intact');
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
    );
    g.dispose();
  });

  test('class folder names: made safe, split-like names refused', () => {
    assert.deepEqual(classFolderNames(['a/b', '.hidden', 'ok', 'normal, benign']), [
      'a_b',
      '_hidden',
      'ok',
      'normal, benign',
    ]);
    assert.throws(() => classFolderNames(['train', 'other']), isConfig('--out', /split folder/));
    assert.throws(() => classFolderNames(['A', 'a']), isConfig('--out', /share the folder/));
  });

  test('no tensor leaks while writing', async () => {
    const dir = await tmp();
    const g = tinyGenerator({ classNames: CLASSES });
    const plan = makePlan({ kind: 'per-class', count: 3 }, CLASSES);
    await writeSyntheticSet(g, plan, { out: join(dir, 'warm') });
    const n = tf.memory().numTensors;
    await writeSyntheticSet(g, plan, { out: join(dir, 'a'), batchSize: 2 });
    await writeSyntheticSet(g, plan, { out: join(dir, 'b.npz'), batchSize: 2 });
    assert.equal(tf.memory().numTensors, n);
    g.dispose();
  });
});

describe('npz export', () => {
  test('round trip through openDataset, gray and RGB; manifest beside the file', async () => {
    for (const channels of [1, 3] as const) {
      const dir = await tmp();
      const out = join(dir, `synthetic-${channels}.npz`);
      const g = tinyGenerator({ classNames: CLASSES, channels, size: 5 });
      const plan = makePlan({ kind: 'counts', counts: parseCounts('normal=4,pneumonia=1,zeta=2') }, CLASSES);
      const res = await writeSyntheticSet(g, plan, { out, batchSize: 3, seeds: parseSeeds('7,3,100-110') });
      assert.equal(res.layout, 'npz');
      assert.equal(res.manifest, `${out}.manifest.json`);
      assert.equal(manifestPathFor(out), res.manifest);
      const ref = await reference(g, plan, '7,3,100-110');
      const ds = await openDataset(out);
      assert.equal(ds.format, 'npz');
      assert.deepEqual(ds.classNames, ['0', '1', '2'], 'a generic npz names classes by label value');
      const train = ds.split('train');
      assert.equal(ds.listing.samples.length, 7);
      const m: SyntheticManifest = await readManifest(out);
      assert.equal(m.layout, 'npz');
      assert.deepEqual(m.classNames, CLASSES);
      assert.deepEqual(
        m.images.map((x) => x.seed),
        [7, 3, 100, 101, 102, 103, 104],
      );
      for (let i = 0; i < ds.listing.samples.length; i++) {
        const s = ds.listing.samples[i]!;
        const entry = m.images.find((x) => x.id === s.id)!;
        assert.ok(entry, `manifest entry for ${s.id}`);
        assert.equal(s.label, ref.get(entry.seed)!.label);
        assert.equal(entry.label, s.label);
        const img = await ds.listing.read(i);
        assert.equal(img.channels, channels);
        assert.deepEqual([...img.data], ref.get(entry.seed)!.pixels, `${s.id} seed ${entry.seed}`);
      }
      assert.ok(train.size > 0);
      g.dispose();
    }
  });

  test('refusals: existing file, a class hole, a MedMNIST name without all classes', async () => {
    const dir = await tmp();
    const g = tinyGenerator({ classNames: CLASSES });
    const out = join(dir, 'set.npz');
    await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 1 }, CLASSES), { out });
    const before = (await stat(out)).size;
    await assert.rejects(
      writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 1 }, CLASSES), { out }),
      isConfig('--out', /exists/),
    );
    const createdAt = (await readManifest(out)).createdAt;
    const events: ProgressEvent[] = [];
    const replaced = await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 3 }, CLASSES), {
      out,
      overwrite: true,
      onProgress: (e) => events.push(e),
    });
    const message = `replacing the synthetic set ${out}: the .npz (3 images) and set.npz.manifest.json of the set made ${createdAt}`;
    assert.deepEqual(replaced.warnings, [message]);
    assert.ok(events.some((e) => e.type === 'warning' && e.message === message));
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.')),
      [],
      'no temporary file or owner record left',
    );
    assert.ok((await stat(out)).size > before);
    assert.equal((await readManifest(out)).total, 9);

    const hole = makePlan({ kind: 'counts', counts: parseCounts('normal=1,zeta=1') }, CLASSES);
    await assert.rejects(
      writeSyntheticSet(g, hole, { out: join(dir, 'hole.npz') }),
      isConfig('--out', /skip a class/),
    );
    const tail = makePlan({ kind: 'counts', counts: parseCounts('normal=1') }, CLASSES);
    const res = await writeSyntheticSet(g, tail, { out: join(dir, 'tail.npz') });
    assert.match(res.warnings.join(), /only 1 classes/);
    assert.deepEqual((await openDataset(join(dir, 'tail.npz'))).classNames, ['0']);
    g.dispose();

    const pneu = tinyGenerator({ classNames: ['normal', 'pneumonia'] });
    const half = makePlan({ kind: 'counts', counts: parseCounts('normal=2') }, pneu.classNames);
    await assert.rejects(
      writeSyntheticSet(pneu, half, { out: join(dir, 'pneumoniamnist_synth.npz') }),
      isConfig('--out', /pneumoniamnist class table/),
    );
    await writeSyntheticSet(pneu, makePlan({ kind: 'per-class', count: 2 }, pneu.classNames), {
      out: join(dir, 'pneumoniamnist_synth.npz'),
    });
    const ds = await openDataset(join(dir, 'pneumoniamnist_synth.npz'));
    assert.deepEqual(
      ds.classNames,
      ['normal', 'pneumonia'],
      'a MedMNIST file name brings the class names back',
    );
    pneu.dispose();
  });
});
