import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { sharedData } from '../helpers/shared-data.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('medsynth CLI', () => {
  test('data inspect --json on PneumoniaMNIST reports the real counts', () => {
    const r = cli('data', 'inspect', sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.format, 'npz');
    assert.deepEqual(
      s.splits.map((x: { name: string; classCounts: number[] }) => [x.name, x.classCounts]),
      [
        ['train', [1214, 3494]],
        ['val', [135, 389]],
        ['test', [234, 390]],
      ],
    );
    assert.deepEqual(s.image.sizes, [{ height: 28, width: 28, count: 5856 }]);
    assert.equal(s.image.channels['1'], 5856);
    assert.ok(Math.abs(s.imbalanceRatio - 3494 / 1214) < 1e-9);
  });

  test('human output and a PNG grid with one row per class', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'medsynth-cli-'));
    const grid = join(dir, 'grid.png');
    const r = cli(
      'data',
      'inspect',
      sharedData('medmnist', 'breastmnist_28_resaved.npz'),
      '--grid',
      grid,
      '--grid-per-class',
      '5',
      '--grid-size',
      '32',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /train\s+147\s+399\s+546/);
    assert.match(r.stdout, /imbalance\s+2\.71/);
    const meta = await sharp(await readFile(grid)).metadata();
    assert.equal(meta.width, 5 * 32 + 6 * 2);
    assert.equal(meta.height, 2 * 32 + 3 * 2);
  });

  test('--fraction and --sites show deterministic train subsets that keep every class', () => {
    const npz = sharedData('medmnist', 'breastmnist_28_resaved.npz');
    const args = ['data', 'inspect', npz, '--json', '--fraction', '0.1', '--sites', '3', '--alpha', '0.5'];
    const a = cli(...args, '--seed', '4');
    assert.equal(a.code, 0, a.stderr);
    const s = JSON.parse(a.stdout);
    const [fraction, ...sites] = s.subsets as { name: string; count: number; classCounts: number[] }[];
    assert.deepEqual(fraction!.classCounts, [15, 40], '10% of 147 / 399, rounded');
    assert.equal(sites.length, 3);
    assert.equal(
      sites.reduce((n, x) => n + x.count, 0),
      546,
      'sites cover train',
    );
    assert.ok(sites.every((x) => x.count > 0));
    const b = JSON.parse(cli(...args, '--seed', '4').stdout);
    assert.deepEqual(b.subsets, s.subsets, 'same seed, same subsets');
    const c = JSON.parse(cli(...args, '--seed', '5').stdout);
    assert.notDeepEqual(c.subsets.slice(1), s.subsets.slice(1), 'another seed, other sites');
    assert.equal(cli('data', 'inspect', npz, '--alpha', '0.5').code, 2, '--alpha without --sites');
    assert.equal(cli('data', 'inspect', npz, '--fraction', '1.5').code, 2);
  });

  test('exit codes: 0 help, 2 usage and input errors, with the file named', async () => {
    assert.equal(cli('--help').code, 0);
    assert.equal(cli('data', 'inspect', '--help').code, 0);
    assert.equal(cli('no-such-command').code, 2);
    assert.equal(cli('data', 'inspect').code, 2, 'missing argument');
    assert.equal(cli('data', 'inspect', 'x.npz', '--seed', 'abc').code, 2);
    const missing = cli('data', 'inspect', '/nonexistent/set.npz');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\/nonexistent\/set\.npz/);
    const dir = await mkdtemp(join(tmpdir(), 'medsynth-cli-'));
    const bad = join(dir, 'broken.npz');
    await writeFile(bad, 'this is not a zip file');
    const r = cli('data', 'inspect', bad, '--json');
    assert.equal(r.code, 2);
    const err = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    assert.equal(err.error.file, bad);
    const unknown = join(dir, 'data.xyz');
    await writeFile(unknown, 'x');
    const u = cli('data', 'inspect', unknown);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /unknown source format/);
    const badRegex = cli(
      'data',
      'inspect',
      sharedData('kermany_cxr_224'),
      '--label-from-filename',
      '(unclosed',
    );
    assert.equal(badRegex.code, 2);
    assert.match(badRegex.stderr, /labelFromFilename/);
  });
});
