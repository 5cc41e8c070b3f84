import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerEvaluateCommand } from '../../src/cli/evaluate.js';
import { encodePng } from '../../src/data/image/grid.js';
import { convertChannels, unpackImage } from '../../src/data/image/transform.js';
import { openDataset } from '../../src/data/source.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
let dir: string;
let grayFake: string;
let rgbFake: string;

/** A folder set `<root>/<class>/<i>.png` made of every 5th real test image (stand-in synthetic images). */
async function writeSet(root: string, rgb: boolean): Promise<void> {
  const ds = await openDataset({ source: PNEUMONIA });
  const test_ = ds.split('test');
  const images = await test_.load();
  for (let i = 0; i < images.count; i += 5) {
    const cls = ds.classNames[test_.labels[i]!]!;
    await mkdir(join(root, cls), { recursive: true });
    const img = unpackImage(images, i);
    await writeFile(join(root, cls, `${i}.png`), await encodePng(rgb ? convertChannels(img, 3) : img));
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
  await writeSet(grayFake, false);
  await writeSet(rgbFake, true);
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
    for (const m of ['fid', 'kid', 'prdc', 'msssim', 'privacy'])
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
    ])
      assert.ok(files.includes(f), f);
    const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, doc.records.length);
    // The extractor was cached: a second evaluation (table output) reuses it and the real features.
    const table = await evaluate([...quick(), '--fake', grayFake, '--metrics', 'fid,prdc', '--no-baselines']);
    assert.match(table, /FID/);
    assert.match(table, /pneumonia/);
    assert.doesNotMatch(table, /^noise /m);
    assert.equal((await readdir(join(dir, 'cache', 'evaluation', 'extractors'))).length, 1);
  });

  test('bad input: unknown metric, unknown extractor, channel mismatch', async () => {
    await assert.rejects(
      evaluate([...quick(), '--fake', grayFake, '--metrics', 'fid,fancy']),
      /unknown metric "fancy"/,
    );
    await assert.rejects(
      evaluate([...quick(), '--fake', grayFake, '--extractor', 'resnet']),
      (e: unknown) => e instanceof ConfigError && /--extractor/.test(e.message),
    );
    await assert.rejects(
      evaluate([...quick(), '--fake', rgbFake, '--metrics', 'fid']),
      (e: unknown) => e instanceof DatasetError && /--channels/.test(e.message),
    );
    await assert.rejects(
      evaluate(['--fake', grayFake]),
      (e: unknown) => e instanceof ConfigError && /--real/.test(e.message),
    );
  });
});
