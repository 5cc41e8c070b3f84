// `medsynth study` as a user runs it: a config file with flag overrides (--dry-run), errors that name the
// field, and a study process killed with SIGKILL mid-grid that `--resume` finishes with the finished jobs'
// rows unchanged.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { STORE_FILE } from '../../src/study/store.js';
import { writeMixedFolder } from '../helpers/mixed-channels.js';
import { studyRows } from '../helpers/study.js';
import { sharedData } from '../helpers/shared-data.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
const node = [process.execPath, '--conditions=source', '--import', 'tsx', entry] as const;

function cli(...args: string[]) {
  const r = spawnSync(node[0], [...node.slice(1), ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Finished jobs so far, read without disturbing the writer (0 before the store exists). */
function finishedCount(studyDir: string): number {
  const file = join(studyDir, STORE_FILE);
  if (!existsSync(file)) return 0;
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0; // the table is being created
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-cli-study-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('medsynth study (CLI)', () => {
  test('--dry-run: the config file, then flags over it, resolved against the preset; the job grid', async () => {
    const file = join(dir, 'study.yaml');
    await writeFile(
      file,
      [
        'preset: tiny',
        `data: { source: ${JSON.stringify(PNEUMONIA)} }`,
        'conditions: [real, synthetic, rebalanced]',
        'classifiers: [lbp-rf, { name: cnn-wide, base: cnn, options: { width: 32 } }]',
        'seeds: [7]',
        '',
      ].join('\n'),
    );
    const r = cli('study', '--config', file, '--seeds', '0-2', '--minutes', '2', '--dry-run');
    assert.equal(r.code, 0, r.stderr);
    const { config, jobs, estimate } = JSON.parse(r.stdout) as {
      config: { preset: string; seeds: number[]; conditions: string[]; generators: { train: object }[] };
      jobs: string[];
      estimate: { jobs: number; minutes: { total: number; generators: number } };
    };
    assert.equal(config.preset, 'tiny');
    assert.deepEqual(config.seeds, [0, 1, 2], 'the flag wins over the file');
    assert.deepEqual(config.conditions, ['real', 'synthetic', 'rebalanced'], 'the file wins over the preset');
    assert.deepEqual(config.generators[0]!.train, { preset: 'tiny', kimg: 0.5, minutes: 2, model: 'cgan' });
    assert.equal(jobs.length, 3 * 2 * 3);
    assert.ok(jobs.includes('cgan|0|rebalanced|cnn-wide|2'), jobs.join(' '));
    assert.ok(jobs.includes('-|-|real|lbp-rf|0'), jobs.join(' '));
    // The expected run time: the generator's budget (kimg 0.5 reached long before 2 minutes) and the jobs.
    assert.equal(estimate.jobs, jobs.length);
    assert.ok(estimate.minutes.total > 0 && estimate.minutes.generators < 2, JSON.stringify(estimate));
    assert.match(r.stderr, /expected about .* on \d+ cores/);
    assert.equal(readdirSync(dir).length, 1, 'a dry run writes nothing');
  });

  test('bad configs exit non-zero and name the field; --resume excludes a new study', () => {
    const noReal = cli('study', '--data', PNEUMONIA, '--conditions', 'synthetic', '--dry-run');
    assert.notEqual(noReal.code, 0);
    assert.match(noReal.stderr, /conditions/);
    assert.match(noReal.stderr, /real/);
    const badCondition = cli('study', '--data', PNEUMONIA, '--conditions', 'real,halfreal', '--dry-run');
    assert.notEqual(badCondition.code, 0);
    assert.match(badCondition.stderr, /halfreal/);
    const badClassifier = cli('study', '--data', PNEUMONIA, '--classifiers', 'cnn,svm9', '--dry-run');
    assert.notEqual(badClassifier.code, 0);
    assert.match(badClassifier.stderr, /svm9/);
    const both = cli('study', '--data', PNEUMONIA, '--resume', join(dir, 'x'));
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /--resume/);
    const missing = cli('study', '--resume', join(dir, 'nowhere'));
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /study/);
    // Queued studies: a queue that is not a Redis URL, or queue flags without --queue, exit 2 naming the flag.
    const badQueue = cli('study', '--data', PNEUMONIA, '--preset', 'tiny', '--queue', 'localhost:6379');
    assert.equal(badQueue.code, 2, badQueue.stderr);
    assert.match(badQueue.stderr, /--queue/);
    const stray = cli('study', '--data', PNEUMONIA, '--preset', 'tiny', '--artifacts', join(dir, 'a'));
    assert.equal(stray.code, 2, stray.stderr);
    assert.match(stray.stderr, /--artifacts/);
    const worker = cli('worker', '--queue', 'http://127.0.0.1:6379');
    assert.equal(worker.code, 2, worker.stderr);
    assert.match(worker.stderr, /--queue/);
  });

  test('SIGKILL mid-study, then --resume: finished rows unchanged, the rest run, results and report written', async () => {
    const out = join(dir, 'studies');
    const file = join(dir, 'kill.json');
    const forest = { name: 'rf', base: 'lbp-rf', options: { nEstimators: 10 } };
    await writeFile(
      file,
      JSON.stringify({
        preset: 'tiny',
        classifiers: [forest],
        generators: ['cgan', { train: { model: 'dcgan' }, perClassModels: true }],
      }),
    );
    const args = [
      'study',
      '--config',
      file,
      '--data',
      PNEUMONIA,
      '--no-evaluate',
      '--conditions',
      'real,synthetic,real+synthetic:1',
      '--seeds',
      '0-3',
      '--out',
      out,
      '--name',
      'killed',
      '--json',
    ];
    const child = spawn(node[0], [...node.slice(1), ...args], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let studyDir = '';
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      const found = existsSync(out) ? readdirSync(out) : [];
      if (found.length > 0) studyDir = join(out, found[0]!);
      // Killed inside the generators' jobs: after the baselines (4) and some of the first generator's.
      if (studyDir && finishedCount(studyDir) >= 6) break;
      if (child.exitCode !== null) break;
      await sleep(100);
    }
    assert.equal(child.exitCode, null, 'the study was still running when killed');
    child.kill('SIGKILL');
    await exited;
    const before = studyRows(studyDir);
    assert.ok(before.length >= 2 && before.length < 20, `${before.length} jobs had finished`);

    const r = cli('study', '--resume', studyDir, '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { dir: string; report: string | null; cells: unknown[] };
    assert.equal(result.cells.length, 5, 'real, and synthetic and real+synthetic for each of 2 generators');
    const afterRows = studyRows(studyDir);
    assert.equal(afterRows.length, 20, '(1 real + 2 generators × 2 conditions) × 1 classifier × 4 seeds');
    for (const row of before)
      assert.deepEqual(
        afterRows.find((x) => x.id === row.id),
        row,
        `row ${row.id} unchanged by the resume`,
      );
    for (const f of ['results.json', 'results.csv', 'report.html'])
      assert.ok(existsSync(join(studyDir, f)), f);
    assert.equal(result.report, join(studyDir, 'report.html'));
  });
});

describe('medsynth study on a folder of mixed grey and colour files', () => {
  let mixedDir: string;
  before(async () => {
    mixedDir = await mkdtemp(join(tmpdir(), 'medsynth-cli-study-mixed-'));
  });
  after(async () => {
    await rm(mixedDir, { recursive: true, force: true });
  });

  test('--channels 1|3|auto reaches the resolved config (default auto); other values are refused', () => {
    const channelsOf = (...extra: string[]) => {
      const r = cli('study', '--data', PNEUMONIA, '--preset', 'tiny', ...extra, '--dry-run');
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { config: { channels: unknown } }).config.channels;
    };
    assert.equal(channelsOf('--channels', '1'), 1);
    assert.equal(channelsOf('--channels', '3'), 3);
    assert.equal(channelsOf('--channels', 'auto'), 'auto');
    assert.equal(channelsOf(), 'auto');
    const bad = cli('study', '--data', PNEUMONIA, '--channels', '2', '--dry-run');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--channels/);
  });

  test('true 1-channel JPEGs beside colour PNGs: the whole study runs at one channel count and says which', async () => {
    const folder = await writeMixedFolder(join(mixedDir, 'data'), { perClass: 30 });
    const study = (name: string, ...extra: string[]) => {
      const r = cli(
        'study',
        '--preset',
        'tiny',
        '--data',
        folder.root,
        '--size',
        '32',
        '--conditions',
        'real,synthetic',
        '--classifiers',
        'lbp-rf',
        '--out',
        join(mixedDir, 'studies'),
        '--name',
        name,
        ...extra,
      );
      assert.equal(r.code, 0, r.stderr);
      const dirs = readdirSync(join(mixedDir, 'studies')).filter((d) => d.endsWith(name));
      const evaluation = JSON.parse(
        readFileSync(
          join(mixedDir, 'studies', dirs[0]!, 'generators/cgan/seed-0/all/evaluation/evaluation.json'),
          'utf8',
        ),
      ) as { shape: number[] };
      return { stderr: r.stderr, shape: evaluation.shape };
    };
    const auto = study('auto');
    assert.match(
      auto.stderr,
      /warning: load train: channels auto: 3 \(colour content in \d+ of \d+ images; \d+ grey images replicated to RGB\)/,
    );
    assert.deepEqual(auto.shape, [32, 32, 3]);
    const grey = study('grey', '--channels', '1');
    assert.doesNotMatch(grey.stderr, /channels auto/);
    assert.deepEqual(grey.shape, [32, 32, 1]);
  });
});
