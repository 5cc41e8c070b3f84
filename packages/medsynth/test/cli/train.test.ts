import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../../src/data/source.js';
import { sharedData } from '../helpers/shared-data.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', entry, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a long tiny training run in the background (to be interrupted). */
function spawnTrain(out: string, tickKimg: string, stdio: 'pipe' | 'ignore') {
  const args = ['--data', PNEUMONIA, '--preset', 'tiny', '--kimg', '1000', '--tick-kimg', tickKimg];
  return spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', entry, 'train', ...args, '--out', out, '--json'],
    { stdio: ['ignore', stdio, stdio] },
  );
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-cli-train-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('medsynth train / generate', () => {
  test('--dry-run prints the resolved options (preset + flags) and trains nothing', () => {
    const r = cli(
      'train',
      '--data',
      PNEUMONIA,
      '--model',
      'acgan',
      '--preset',
      'tiny',
      '--kimg',
      '3',
      '--dry-run',
      '--out',
      dir,
    );
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    assert.equal(o.model, 'acgan');
    assert.equal(o.preset, 'tiny');
    assert.equal(o.kimg, 3);
    assert.equal(o.gWidth, 8);
    assert.equal(o.data.source, PNEUMONIA);
  });

  test('usage errors exit 2 and name the flag', () => {
    const noData = cli('train', '--kimg', '1');
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /--data/);
    const both = cli('train', '--data', PNEUMONIA, '--resume', dir);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--resume/);
    const badLr = cli('train', '--data', PNEUMONIA, '--g-lr', '-1');
    assert.equal(badLr.code, 2);
    assert.match(badLr.stderr, /--g-lr/);
    const notARun = cli('train', '--resume', dir);
    assert.equal(notARun.code, 2);
    assert.match(notARun.stderr, /options\.json/);
  });

  test('train → resume → generate: a synthetic set that loads like a real one', async () => {
    const r = cli(
      'train',
      '--data',
      PNEUMONIA,
      '--preset',
      'tiny',
      '--kimg',
      '0.064',
      '--out',
      dir,
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.stoppedBy, 'kimg');
    const more = cli('train', '--resume', result.runDir, '--kimg', '0.128', '--json');
    assert.equal(more.code, 0, more.stderr);
    assert.equal(JSON.parse(more.stdout).step, 8);
    const synth = join(dir, 'synth');
    const g = cli(
      'generate',
      '--run',
      result.runDir,
      '--per-class',
      '5',
      '--out',
      synth,
      '--seeds',
      '100-199',
      '--json',
    );
    assert.equal(g.code, 0, g.stderr);
    const ds = await openDataset({ source: synth });
    assert.deepEqual([...ds.classNames], ['normal', 'pneumonia']);
    assert.equal(ds.listing.samples.length, 10);
    const manifest = JSON.parse(await readFile(join(synth, 'manifest.json'), 'utf8'));
    assert.ok(JSON.stringify(manifest).includes('step-0000008'), 'the manifest names the checkpoint');
  });

  test('SIGINT stops after the current step with a checkpoint that resumes', async () => {
    const child = spawnTrain(join(dir, 'int'), '1000', 'pipe');
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    // Wait until training is under way (the run directory holds run.json), then interrupt.
    for (let i = 0; i < 600; i++) {
      const runs = await readdir(join(dir, 'int')).catch(() => [] as string[]);
      if (runs.length > 0 && (await readdir(join(dir, 'int', runs[0]!))).includes('run.json')) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await new Promise((res) => setTimeout(res, 1500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.on('close', res));
    assert.equal(code, 0);
    const result = JSON.parse(stdout);
    assert.equal(result.stoppedBy, 'aborted');
    assert.ok(result.step > 0);
    assert.match(result.checkpoint, /step-\d{7}$/);
  });

  test('kill -9 mid-run loses at most one tick: --resume continues from the last checkpoint', async () => {
    const runs = join(dir, 'killed');
    const child = spawnTrain(runs, '0.032', 'ignore');
    // Wait until latest.json points at the second checkpoint (the checkpoint folder is renamed into place
    // before latest.json is replaced, so watching the folders alone races), then kill without warning.
    let runDir = '';
    for (let i = 0; i < 1200; i++) {
      const names = await readdir(runs).catch(() => [] as string[]);
      if (names[0]) {
        runDir = join(runs, names[0]);
        const index = await readFile(join(runDir, 'checkpoints', 'latest.json'), 'utf8').catch(() => '');
        if (index && (JSON.parse(index) as { step: number }).step >= 4) break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    child.kill('SIGKILL');
    await new Promise((res) => child.on('close', res));
    const latest = JSON.parse(await readFile(join(runDir, 'checkpoints', 'latest.json'), 'utf8'));
    assert.ok(latest.step >= 4, `a checkpoint was written before the kill (step ${latest.step})`);
    const r = cli('train', '--resume', runDir, '--kimg', String((latest.step * 16 + 64) / 1000), '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.step, latest.step + 4, 'continued from the checkpoint, not from scratch');
    const stats = (await readFile(join(runDir, 'stats.jsonl'), 'utf8')).trim().split('\n');
    const steps = stats.map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(
      steps,
      [...steps].sort((a, b) => a - b),
      'no duplicated or out-of-order stats lines',
    );
    assert.equal(new Set(steps).size, steps.length);
  });
});
