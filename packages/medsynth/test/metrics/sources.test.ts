// evaluateSources with a run directory: the run's own dataset is the real side and its generator makes the
// synthetic images, spread over classes like the held-out split.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveTrainOptions, type TrainOptionsInput } from '../../src/config/train-options.js';
import { evaluateSources } from '../../src/metrics/sources.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { trainGan } from '../../src/training/loop.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
let dir: string;

before(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'medsynth-sources-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a run directory: its data is the real side, its generator the synthetic side', async () => {
  const run = await trainGan(
    resolveTrainOptions({
      data: { source: PNEUMONIA },
      preset: 'tiny',
      outDir: join(dir, 'runs'),
      kimg: 0.128,
      tickKimg: 0.064,
    } as TrainOptionsInput),
  );
  const ev = await evaluateSources({
    fake: run.runDir,
    fakeCount: 200,
    metrics: ['fid', 'prdc'],
    domain: { epochs: 2, width: 8, maxTrainImages: 800, seed: 3 },
    cacheDir: join(dir, 'cache'),
    bootstrap: 0,
  });
  assert.equal(ev.fake.kind, 'run');
  assert.equal(ev.fake.count, 200);
  assert.match(ev.fake.detail, /step-/);
  assert.deepEqual(ev.classNames, ['normal', 'pneumonia']);
  assert.equal(ev.real.split, 'train');
  assert.equal(ev.real.count, 4708);
  assert.deepEqual(ev.holdout?.classCounts, [234, 390]);
  // 200 images spread like the held-out split (234 : 390).
  assert.deepEqual(ev.fake.classCounts, [75, 125]);
  assert.ok(ev.seconds >= ev.result.seconds);
  const fid = (comparison: string) =>
    ev.result.records.find((r) => r.metric === 'fid' && r.comparison === comparison && r.class === null)!
      .values['fid']!;
  // 8 training steps make blobs: far above the held-out floor, and still closer than uniform noise.
  assert.ok(fid('floor') < fid('fake'), `floor ${fid('floor')} < fake ${fid('fake')}`);
  assert.ok(fid('fake') < fid('noise'), `fake ${fid('fake')} < noise ${fid('noise')}`);
});
