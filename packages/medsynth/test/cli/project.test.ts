// `medsynth project` on a tiny trained cgan: the files it writes (validated read-back), reproducibility by seed,
// the human summary, bad input (exit 2), and the projection metric through `medsynth evaluate --metrics
// projection` with the domain extractor's feature term.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import sharp from 'sharp';
import { registerEvaluateCommand } from '../../src/cli/evaluate.js';
import { main } from '../../src/cli/main.js';
import { registerProjectCommand } from '../../src/cli/project.js';
import { resolveTrainOptions, type TrainOptionsInput } from '../../src/config/train-options.js';
import { readProjection } from '../../src/metrics/projection-files.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { trainGan } from '../../src/training/loop.js';
import { PNEUMONIA_28, tinyTrainOptions } from '../helpers/tiny-train.js';

let dir: string;
let runDir: string;

before(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'medsynth-project-cli-'));
  const tiny = tinyTrainOptions(() => ({
    model: 'cgan',
    outDir: join(dir, 'runs'),
    kimg: 0.128,
    tickKimg: 0.064,
  }));
  runDir = (await trainGan(tiny())).runDir;
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function command(
  register: (
    p: Command,
    deps: { selectBackend: () => Promise<unknown>; stdout: { write(t: string): unknown } },
  ) => void,
  args: string[],
): Promise<string> {
  const program = new Command('medsynth').exitOverride();
  let out = '';
  register(program, { selectBackend: async () => undefined, stdout: { write: (t: string) => (out += t) } });
  for (const c of program.commands) c.exitOverride();
  await program.parseAsync(['node', 'medsynth', ...args]);
  return out;
}

const project = (args: string[]) => command(registerProjectCommand, ['project', ...args]);

/** Runs the whole CLI in process; returns the exit code and what went to stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'medsynth', ...args]);
    return { code, stderr };
  } finally {
    process.stderr.write = write;
  }
}

const quick = ['--count', '6', '--synthetic', '4', '--steps', '12', '--restarts', '1', '--features', 'none'];

describe('medsynth project', () => {
  test('writes projection.json, projection.png and distances.csv; the same seed gives the same distances', async () => {
    const out1 = join(dir, 'p1');
    const json = JSON.parse(
      await project(['--run', runDir, ...quick, '--seed', '5', '--out', out1, '--json']),
    );
    assert.equal(json.format, 'medsynth-projection');
    assert.equal(json.out, out1);
    assert.equal(json.space, 'z');
    assert.equal(json.objective, 'pixel+multiscale');
    assert.equal(json.run.family, 'cgan');
    assert.deepEqual([json.sets.train.n, json.sets.holdout.n, json.sets.synthetic.n], [6, 6, 4]);
    // The real sets follow the held-out class mix (234 normal : 390 pneumonia → 2 : 4 of 6).
    assert.deepEqual(json.sets.train.classCounts, [2, 4]);
    assert.deepEqual(json.sets.holdout.classCounts, [2, 4]);
    assert.equal(json.test.nTrain, 6);
    assert.ok(json.test.p > 0 && json.test.p <= 1);
    assert.equal(typeof json.signal, 'boolean');
    assert.match(json.verdict, /memorisation signal/);
    assert.ok(json.secondsPerImage > 0);

    const file = await readProjection(join(out1, 'projection.json'));
    assert.equal(file.verdict, json.verdict);
    assert.deepEqual(file.picture?.rows, [
      'train: image',
      'train: projection',
      'holdout: image',
      'holdout: projection',
      'synthetic: image',
      'synthetic: projection',
    ]);
    const png = await sharp(join(out1, 'projection.png')).metadata();
    // 6 rows and at most 6 columns of 28 px cells with 2 px gaps.
    assert.deepEqual([png.width, png.height], [6 * 28 + 7 * 2, 6 * 28 + 7 * 2]);
    const csv = (await readFile(join(out1, 'distances.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv[0], 'set,index,id,class,pixel_rmse,feature_distance,loss,restart');
    assert.equal(csv.length, 1 + 6 + 6 + 4);
    const train = csv.filter((l) => l.startsWith('train,'));
    assert.ok(
      train.every((l) => /^train,\d,train\[\d+\],(normal|pneumonia),0\.\d+,,/.test(l)),
      train[0],
    );
    assert.ok(csv.some((l) => /^holdout,\d,test\[\d+\],/.test(l)));
    assert.ok(csv.some((l) => /^synthetic,\d,seed \d,/.test(l)));

    const out2 = join(dir, 'p2');
    await project(['--run', runDir, ...quick, '--seed', '5', '--out', out2, '--json']);
    assert.equal(
      await readFile(join(out2, 'distances.csv'), 'utf8'),
      await readFile(join(out1, 'distances.csv'), 'utf8'),
    );
  });

  test('the human summary, written to <run>/projection by default', async () => {
    const text = await project(['--run', runDir, ...quick, '--split', 'test']);
    assert.match(text, /held-out +6 /);
    assert.doesNotMatch(text, /^train /m);
    assert.match(text, /verdict: not tested/);
    assert.match(text, /s per image projected/);
    const file = await readProjection(join(runDir, 'projection', 'projection.json'));
    assert.equal(file.test, null);
    assert.equal(file.sets.train, undefined);
  });

  test('bad input exits 2 with a clear message', async () => {
    for (const count of ['0', 'abc']) {
      const r = await cli(['project', '--run', runDir, '--count', count]);
      assert.equal(r.code, 2, `--count ${count}`);
      assert.match(r.stderr, /--count/);
    }
    const missing = await cli(['project', '--run', join(dir, 'no-such-run'), ...quick]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no-such-run/);

    // A diffusion run: refused before anything loads, naming the family.
    const ddpmRun = join(dir, 'ddpm-run');
    await mkdir(ddpmRun, { recursive: true });
    const options = resolveTrainOptions({
      data: { source: PNEUMONIA_28 },
      preset: 'tiny',
      model: 'ddpm',
      outDir: dir,
    } as TrainOptionsInput);
    await writeFile(join(ddpmRun, 'options.json'), JSON.stringify(options));
    const ddpm = await cli(['project', '--run', ddpmRun, ...quick]);
    assert.equal(ddpm.code, 2);
    assert.match(ddpm.stderr, /not defined for diffusion models \(ddpm\)/);
  });
});

describe('medsynth evaluate --metrics projection', () => {
  test('runs the projection metric with the domain features and writes its picture', async () => {
    const out = join(dir, 'eval');
    const json = JSON.parse(
      await command(registerEvaluateCommand, [
        'evaluate',
        '--fake',
        runDir,
        '--metrics',
        'projection',
        '--count',
        '20',
        '--projection-count',
        '5',
        '--projection-steps',
        '8',
        '--extractor-epochs',
        '1',
        '--extractor-width',
        '8',
        '--cache-dir',
        join(dir, 'cache'),
        '--no-baselines',
        '--out',
        out,
        '--json',
      ]),
    );
    const records = json.records.filter((r: { metric: string }) => r.metric === 'projection');
    assert.equal(records.length, 1);
    const r = records[0];
    assert.equal(r.comparison, 'fake');
    assert.equal(r.nReal, 5);
    assert.equal(r.nCompared, 5);
    assert.equal(r.details.objective, 'pixel+features');
    assert.match(r.extractor, /^domain-/);
    assert.match(r.details.verdict, /memorisation signal/);
    for (const key of [
      'medianTrain',
      'medianHoldout',
      'medianSynthetic',
      'p',
      'probTrainCloser',
      'pFeatures',
    ])
      assert.equal(typeof r.values[key], 'number', key);
    const png = await sharp(join(out, 'projection.png')).metadata();
    assert.equal(png.height, 6 * 28 + 7 * 2);
    // Only what was asked for: no feature metric ran.
    assert.ok(json.records.every((x: { metric: string }) => x.metric === 'projection'));
  });

  test('is not among the default metrics', async () => {
    const { DEFAULT_METRIC_NAMES, METRIC_NAMES } = await import('../../src/metrics/registry.js');
    assert.ok(METRIC_NAMES.includes('projection'));
    assert.ok(!DEFAULT_METRIC_NAMES.includes('projection'));
  });
});
