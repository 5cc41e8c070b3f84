import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import sharp from 'sharp';
import { registerEvaluateCommand } from '../../src/cli/evaluate.js';
import { encodePng } from '../../src/data/image/grid.js';
import { convertChannels, unpackImage } from '../../src/data/image/transform.js';
import { openDataset } from '../../src/data/source.js';
import { readEmbeddingMap } from '../../src/metrics/embedding-map.js';
import { evaluateSources } from '../../src/metrics/sources.js';
import { selectBackend } from '../../src/runtime/backend.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { ConfigError } from '../../src/runtime/errors.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
let dir: string;
let grayFake: string;
let rgbFake: string;

/**
 * A folder set `<root>/<class>/<i>.png` made of every 5th real test image (stand-in synthetic images): grey,
 * grey stored as RGB, or RGB with a red corner (colour content). `keep(class, written)` can thin a class.
 */
async function writeSet(
  root: string,
  kind: 'gray' | 'rgb' | 'colour',
  keep: (cls: string, written: number) => boolean = () => true,
): Promise<void> {
  const ds = await openDataset({ source: PNEUMONIA });
  const test_ = ds.split('test');
  const images = await test_.load();
  const written = new Map<string, number>();
  for (let i = 0; i < images.count; i += 5) {
    const cls = ds.classNames[test_.labels[i]!]!;
    if (!keep(cls, written.get(cls) ?? 0)) continue;
    written.set(cls, (written.get(cls) ?? 0) + 1);
    await mkdir(join(root, cls), { recursive: true });
    let img = unpackImage(images, i);
    if (kind !== 'gray') img = convertChannels(img, 3);
    if (kind === 'colour') {
      const data = Uint8Array.from(img.data);
      for (let p = 0; p < 16; p++) data.set([220, 30, 30], p * 3);
      img = { ...img, data };
    }
    await writeFile(join(root, cls, `${i}.png`), await encodePng(img));
  }
}

async function evaluate(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  let out = '';
  registerEvaluateCommand(program, { stdout: { write: (t: string) => (out += t) } });
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(['node', 'medsynth', 'evaluate', ...args]);
  return out;
}

/** Quick settings: a 1-epoch, narrow extractor and few subsets — the CLI's plumbing is under test here. */
const quick = () => [
  '--real',
  PNEUMONIA,
  '--cache-dir',
  join(dir, 'cache'),
  '--extractor-epochs',
  '1',
  '--extractor-width',
  '8',
  '--kid-subsets',
  '5',
  '--kid-subset-size',
  '50',
  '--bootstrap',
  '2',
  '--msssim-pairs',
  '10',
];

before(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'medsynth-evaluate-cli-'));
  grayFake = join(dir, 'gray');
  rgbFake = join(dir, 'rgb');
  await writeSet(grayFake, 'gray');
  await writeSet(rgbFake, 'rgb');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('medsynth evaluate', () => {
  test('every metric, as JSON and as files in --out', async () => {
    const out = join(dir, 'report');
    const text = await evaluate([...quick(), '--fake', grayFake, '--out', out, '--json']);
    const doc = JSON.parse(text) as {
      records: Array<{
        metric: string;
        comparison: string;
        class: string | null;
        nCompared: number;
        values: Record<string, number>;
      }>;
      comparisons: string[];
      fake: { count: number; classCounts: number[] };
      extractor: { kind: string };
      out: string;
    };
    assert.equal(doc.fake.count, 125);
    assert.equal(
      doc.fake.classCounts.reduce((a, b) => a + b, 0),
      125,
    );
    assert.equal(doc.extractor.kind, 'domain');
    assert.deepEqual(doc.comparisons, ['fake', 'floor', 'noise']);
    for (const m of ['fid', 'kid', 'prdc', 'msssim', 'privacy', 'embedding'])
      assert.ok(
        doc.records.some((r) => r.metric === m && r.comparison === 'fake'),
        m,
      );
    // Per class, for the class-wise metrics.
    assert.ok(doc.records.some((r) => r.metric === 'fid' && r.class === 'pneumonia'));
    // The stand-ins are held-out real images: they score like the floor, far from noise.
    const fid = (c: string) =>
      doc.records.find((r) => r.metric === 'fid' && r.comparison === c && r.class === null)!.values.fid!;
    assert.ok(fid('fake') < fid('noise') / 3, `${fid('fake')} vs noise ${fid('noise')}`);
    const files = await readdir(out);
    for (const f of [
      'evaluation.json',
      'metrics.jsonl',
      'real-grid.png',
      'fake-grid.png',
      'privacy-closest-features.png',
      'privacy-closest-pixels.png',
      'embedding.json',
      'embedding-thumbnails.png',
    ])
      assert.ok(files.includes(f), f);
    // The embedding map: train (capped at 500, per class), all 624 test images, the 125 synthetic ones.
    const map = await readEmbeddingMap(join(out, 'embedding.json'));
    assert.deepEqual(
      map.sets.map((s) => [s.key, s.sampled]),
      [
        ['train', 500],
        ['test', 500],
        ['synthetic', 125],
      ],
    );
    assert.match(map.sets[0]!.description, /train split/);
    assert.ok(map.umap !== null && map.thumbnails?.count === 1125);
    const sheet = await sharp(join(out, 'embedding-thumbnails.png')).metadata();
    assert.equal(sheet.width, map.thumbnails.columns * 28);
    const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, doc.records.length);
    // The extractor was cached: a second evaluation (table output) reuses it and the real features.
    const table = await evaluate([...quick(), '--fake', grayFake, '--metrics', 'fid,prdc', '--no-baselines']);
    assert.match(table, /FID/);
    assert.match(table, /pneumonia/);
    assert.doesNotMatch(table, /^noise /m);
    assert.equal((await readdir(join(dir, 'cache', 'evaluation', 'extractors'))).length, 1);
  });

  test('bad input: unknown metric, unknown extractor, no real dataset', async () => {
    await assert.rejects(
      evaluate([...quick(), '--fake', grayFake, '--metrics', 'fid,fancy']),
      /unknown metric "fancy"/,
    );
    await assert.rejects(
      evaluate([...quick(), '--fake', grayFake, '--extractor', 'resnet']),
      (e: unknown) => e instanceof ConfigError && /--extractor/.test(e.message),
    );
    await assert.rejects(
      evaluate(['--fake', grayFake]),
      (e: unknown) => e instanceof ConfigError && /--real/.test(e.message),
    );
    // Sampler flags are for images generated from a (diffusion) run, not for a set on disk.
    await assert.rejects(
      evaluate([...quick(), '--fake', grayFake, '--guidance', '2']),
      (e: unknown) =>
        e instanceof ConfigError && /--guidance applies to images generated from a run/.test(e.message),
    );
  });

  test('--channels: auto (the default) reads grey RGB files as grey; 1 and 3 convert both sides; bad values refused', async () => {
    const shapeOf = async (...extra: string[]) =>
      (
        JSON.parse(
          await evaluate([
            ...quick(),
            '--fake',
            rgbFake,
            '--metrics',
            'fid',
            '--no-baselines',
            '--json',
            ...extra,
          ]),
        ) as { shape: number[] }
      ).shape;
    assert.deepEqual(await shapeOf(), [28, 28, 1], 'grey content stored as RGB, against grey real images');
    assert.deepEqual(await shapeOf('--channels', 'auto'), [28, 28, 1]);
    assert.deepEqual(await shapeOf('--channels', '3'), [28, 28, 3]);
    assert.deepEqual(await shapeOf('--channels', '1'), [28, 28, 1]);
    await assert.rejects(evaluate([...quick(), '--fake', rgbFake, '--channels', '2']), /--channels/);
  });

  test('auto against colour synthetic images: 3 channels, the grey real images replicated, with a warning', async () => {
    const colourFake = join(dir, 'colour');
    await writeSet(colourFake, 'colour');
    const events: ProgressEvent[] = [];
    const ev = await evaluateSources({
      real: PNEUMONIA,
      fake: colourFake,
      channels: 'auto',
      metrics: ['fid'],
      baselines: false,
      bootstrap: 0,
      domain: { epochs: 1, width: 8 },
      cacheDir: join(dir, 'cache'),
      onProgress: (e) => events.push(e),
    });
    assert.deepEqual(ev.shape, [28, 28, 3]);
    assert.equal(ev.images.real.images.channels, 3);
    assert.equal(ev.images.holdout?.images.channels, 3);
    assert.ok(
      events.some(
        (e) =>
          e.type === 'warning' &&
          e.message ===
            'channels auto: 3 (the synthetic images have colour content, the real ones are grey; the real images replicated to RGB)',
      ),
      JSON.stringify(events.filter((e) => e.type === 'warning')),
    );
  });

  test('cells without a value are explained under the table (a class too small for PRDC, metrics not asked for)', async () => {
    const fewNormal = join(dir, 'few-normal');
    await writeSet(fewNormal, 'gray', (cls, written) => cls !== 'normal' || written < 4);
    const table = await evaluate([
      ...quick(),
      '--fake',
      fewNormal,
      '--metrics',
      'fid,prdc',
      '--bootstrap',
      '0',
    ]);
    const lines = table.split('\n');
    const row = lines.find((l) => /^fake\s+normal\s/.test(l));
    assert.ok(row, table);
    assert.match(row, /–/, 'no PRDC for 4 synthetic images of a class');
    const at = lines.indexOf('– = not computed:');
    assert.ok(at > 0, table);
    const footnote = lines.slice(at + 1).filter((l) => l.startsWith('  '));
    assert.ok(footnote.includes('  kid, msssim: not requested (--metrics)'), footnote.join('\n'));
    assert.ok(footnote.includes('  ± (FID spread): no bootstrap (--bootstrap 0)'), footnote.join('\n'));
    assert.ok(
      footnote.some((l) =>
        /^ {2}fake normal prdc \(k = 5\): needs at least 6 images in each set, has \d+ real and 4 compared$/.test(
          l,
        ),
      ),
      footnote.join('\n'),
    );
    assert.ok(!footnote.some((l) => /pneumonia/.test(l)), 'the large class has every value');
  });
});
