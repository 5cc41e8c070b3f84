// Central vs federated training judged side by side: every run sees the same number of real images, the
// federated ones report bytes and overhead per round, and one study scores all three.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveFederationOptions } from '../../src/federated/options.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { compareFederated } from '../../src/study/federated-compare.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

let dir: string;
before(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'medsynth-fed-compare-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('compare: central, IID and non-IID runs of equal images seen, scored by one study', async () => {
  const train = tinyTrainOptions(() => ({ kimg: 1 }))();
  const federation = resolveFederationOptions({ rounds: 2, localSteps: 3, minSites: 2, port: 0 });
  const result = await compareFederated({
    train,
    federation,
    sites: 2,
    alpha: 0.3,
    outDir: dir,
    seeds: [0],
    study: {
      maxImages: { train: 400, val: 100, test: 200 },
      evaluate: { enabled: true, metrics: ['fid', 'prdc'], extractor: 'domain', extractorEpochs: 1 },
      classifiers: [{ name: 'cnn', base: 'cnn', options: { epochs: 1, width: 8 } }],
    },
  });
  // Split batch (the default): each of the 2 sites takes ⌊batch / 2⌋ images a step, so the federated runs
  // make as many updates (rounds × local steps) as the central run makes steps.
  const siteBatch = Math.floor(train.batchSize / 2);
  const images = 2 * 3 * siteBatch * train.dSteps * 2;
  assert.equal(result.imagesSeen, images);
  assert.equal(result.siteBatchSize, siteBatch);
  const siteOptions = JSON.parse(await readFile(join(result.runs[1]!.runDir, 'options.json'), 'utf8')) as {
    batchSize: number;
  };
  assert.equal(siteOptions.batchSize, siteBatch);
  const centralOptions = JSON.parse(await readFile(join(result.runs[0]!.runDir, 'options.json'), 'utf8')) as {
    batchSize: number;
  };
  assert.equal(centralOptions.batchSize, train.batchSize);
  assert.deepEqual(
    result.runs.map((r) => r.name),
    ['central', 'federated-iid', 'federated-noniid'],
  );
  for (const r of result.runs) {
    assert.ok(Math.abs(r.kimg - images / 1000) < 1e-9, `${r.name}: ${r.kimg} kimg`);
    assert.ok(r.fid !== null && r.fid > 0, `${r.name}: FID ${r.fid}`);
    assert.ok(r.syntheticAccuracy !== null && r.syntheticAccuracy.mean >= 0 && r.syntheticAccuracy.mean <= 1);
    assert.equal(r.bytesPerRound === null, r.name === 'central');
  }
  // Two sites each receive and send G and D every round.
  const fed = result.runs[1]!;
  assert.ok(fed.bytesPerRound! > 4 * 0.9 * 1e5, String(fed.bytesPerRound));
  assert.equal(result.verdicts.length, 2);
  const md = await readFile(join(result.dir, 'compare.md'), 'utf8');
  assert.match(md, /\| federated-noniid \|/);
  const saved = JSON.parse(await readFile(join(result.dir, 'compare.json'), 'utf8')) as typeof result;
  assert.deepEqual(
    saved.runs.map((r) => r.fid),
    result.runs.map((r) => r.fid),
  );
});
