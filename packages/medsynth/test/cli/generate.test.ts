import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { type GenerateCommandDeps, registerGenerateCommand } from '../../src/cli/generate.js';
import { openDataset } from '../../src/data/source.js';
import { readManifest } from '../../src/generate/export.js';
import type { GanSpec } from '../../src/models/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError } from '../../src/runtime/errors.js';
import type { RunInfo } from '../../src/training/load-run.js';
import { type TinyGenerator, tinyGenerator } from '../generate/tiny-generator.js';

before(async () => {
  await selectBackend();
});

const CLASSES = ['normal', 'pneumonia'];

function fakeRun(classCounts?: number[]): RunInfo {
  const spec: GanSpec = {
    family: 'cgan',
    size: 28,
    channels: 1,
    numClasses: 2,
    zDim: 16,
    gWidth: 8,
    dWidth: 8,
    maxWidth: 64,
    conditioning: 'projection',
    spectralNorm: false,
    seed: 0,
  };
  return {
    dir: '/runs/r1',
    checkpoint: '/runs/r1/checkpoints/step-0000042',
    step: 42,
    kimg: 2.5,
    spec,
    classNames: CLASSES,
    ...(classCounts ? { classCounts } : {}),
    dataSource: 'medmnist:pneumoniamnist',
    network: 'G_ema',
  };
}

/** Runs `medsynth generate …` in process with a tiny generator; returns stdout and what the loader saw. */
async function generate(args: string[], classCounts?: number[]) {
  const loads: { runDir: string; options: unknown }[] = [];
  const generators: TinyGenerator[] = [];
  let stdout = '';
  const deps: GenerateCommandDeps = {
    selectBackend: async () => undefined,
    loadGenerator: async (runDir, options) => {
      loads.push({ runDir, options });
      const g = tinyGenerator({ classNames: CLASSES });
      generators.push(g);
      return { generator: g, run: fakeRun(classCounts) };
    },
    stdout: { write: (s: string) => (stdout += s) },
  };
  const program = new Command('medsynth').exitOverride();
  registerGenerateCommand(program, deps);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => undefined });
  await program.parseAsync(['generate', ...args], { from: 'user' });
  return { stdout, loads, generators };
}

function isConfig(field: RegExp | string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    if (typeof field === 'string') assert.equal(e.context.field, field);
    else assert.match(e.context.field ?? '', field);
    if (message) assert.match(e.message, message);
    return true;
  };
}

const made: string[] = [];
after(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'medsynth-cli-generate-'));
  made.push(d);
  return d;
}

describe('medsynth generate', () => {
  test('--per-class --json writes a folder set and prints one JSON summary', async () => {
    const out = join(await tmp(), 'set');
    const r = await generate([
      '--run',
      '/runs/r1',
      '--per-class',
      '3',
      '--out',
      out,
      '--seeds',
      '100-199',
      '--truncation',
      '0.7',
      '--checkpoint',
      'step-0000042',
      '--no-ema',
      '--batch-size',
      '2',
      '--guidance',
      '2.5',
      '--sample-steps',
      '10',
      '--json',
    ]);
    assert.deepEqual(r.loads, [
      {
        runDir: '/runs/r1',
        options: {
          checkpoint: 'step-0000042',
          ema: false,
          // Handed to the family's sampler, which range-checks them (or refuses them: GAN runs).
          sampling: { steps: 10, eta: undefined, guidance: 2.5 },
        },
      },
    ]);
    assert.ok(r.generators[0]!.disposed(), 'the generator is disposed');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const s = JSON.parse(lines[0]!);
    assert.equal(s.out, out);
    assert.equal(s.layout, 'folder');
    assert.deepEqual(s.counts, [3, 3]);
    assert.equal(s.total, 6);
    assert.deepEqual(s.seeds, { first: 100, last: 105, list: '100-105' });
    assert.equal(s.truncation, 0.7);
    assert.equal(s.checkpoint, '/runs/r1/checkpoints/step-0000042');
    assert.equal(typeof s.seconds, 'number');
    const ds = await openDataset(out);
    assert.deepEqual(ds.classNames, CLASSES);
    const m = await readManifest(out);
    assert.equal(m.source?.runDir, '/runs/r1');
    assert.equal(m.source?.network, 'G_ema', 'recorded from the run info');
    assert.equal(m.truncation, 0.7);
  });

  test('--balance-to max uses the run class counts; npz out; human summary', async () => {
    const dir = await tmp();
    const out = join(dir, 'balanced.npz');
    const grid = join(dir, 'grid.png');
    const r = await generate(['--run', 'r', '--balance-to', 'max', '--out', out, '--grid', grid], [5, 9]);
    assert.match(r.stdout, /out\s+.*balanced\.npz \(npz, 4 images: normal 4, pneumonia 0\)/);
    assert.match(r.stdout, /seeds\s+0-3 \(class by class\)/);
    assert.match(r.stdout, /grid\s+.*grid\.png/);
    assert.deepEqual((await readManifest(out)).counts, [4, 0]);
    assert.ok((await readdir(dir)).includes('grid.png'));
    const c = await generate(['--run', 'r', '--counts', 'pneumonia=2', '--out', join(dir, 'c'), '--json']);
    assert.deepEqual(JSON.parse(c.stdout).counts, [0, 2]);
  });

  const errors: {
    name: string;
    args: string[];
    field: RegExp | string;
    message?: RegExp;
    counts?: number[];
  }[] = [
    { name: 'no plan flag', args: [], field: /--per-class\|--counts\|--balance-to/ },
    {
      name: 'two plan flags',
      args: ['--per-class', '2', '--counts', 'normal=1'],
      field: '--per-class, --counts',
      message: /only one/,
    },
    {
      name: 'unknown class',
      args: ['--counts', 'covid=3'],
      field: '--counts',
      message: /unknown class "covid"/,
    },
    { name: 'bad per-class', args: ['--per-class', 'many'], field: '--per-class' },
    { name: 'truncation 0', args: ['--per-class', '1', '--truncation', '0'], field: '--truncation' },
    { name: 'truncation text', args: ['--per-class', '1', '--truncation', 'x'], field: '--truncation' },
    { name: 'batch size 0', args: ['--per-class', '1', '--batch-size', '0'], field: '--batch-size' },
    { name: 'guidance text', args: ['--per-class', '1', '--guidance', 'high'], field: '--guidance' },
    { name: 'eta empty', args: ['--per-class', '1', '--eta', ''], field: '--eta' },
    {
      name: 'too few seeds',
      args: ['--per-class', '3', '--seeds', '0-4'],
      field: '--seeds',
      message: /too few/,
    },
    { name: 'bad seeds', args: ['--per-class', '1', '--seeds', '3-1'], field: '--seeds' },
    {
      name: '--balance-to without run counts',
      args: ['--balance-to', 'max'],
      field: '--balance-to',
      message: /real class counts/,
    },
  ];
  for (const c of errors) {
    test(`error: ${c.name}`, async () => {
      const out = join(await tmp(), 'set');
      await assert.rejects(
        generate(['--run', 'r', '--out', out, ...c.args], c.counts),
        isConfig(c.field, c.message),
      );
    });
  }

  test('a non-empty --out is refused before the run is loaded', async () => {
    const out = join(await tmp(), 'set');
    await mkdir(out);
    await writeFile(join(out, 'x.txt'), 'x');
    let loaded = false;
    const program = new Command('medsynth').exitOverride();
    registerGenerateCommand(program, {
      selectBackend: async () => undefined,
      loadGenerator: async () => {
        loaded = true;
        throw new Error('should not load');
      },
    });
    await assert.rejects(
      program.parseAsync(['generate', '--run', 'r', '--per-class', '1', '--out', out], { from: 'user' }),
      isConfig('--out', /not empty/),
    );
    assert.equal(loaded, false);
  });

  test('an existing --grid file is refused before the run is loaded, and replaced with --overwrite', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    const grid = join(dir, 'grid.png');
    await writeFile(grid, 'precious');
    let loaded = false;
    const program = new Command('medsynth').exitOverride();
    registerGenerateCommand(program, {
      selectBackend: async () => undefined,
      loadGenerator: async () => {
        loaded = true;
        throw new Error('should not load');
      },
    });
    const args = ['generate', '--run', 'r', '--per-class', '1', '--out', out, '--grid', grid];
    await assert.rejects(program.parseAsync(args, { from: 'user' }), (e: unknown) => {
      isConfig('--grid', /the grid file exists; pass --overwrite to replace it/)(e);
      assert.equal((e as ConfigError).context.file, grid);
      return true;
    });
    assert.equal(loaded, false);
    assert.equal(await readFile(grid, 'utf8'), 'precious');
    assert.deepEqual(await readdir(dir), ['grid.png'], 'nothing written');

    const r = await generate(['--run', 'r', '--per-class', '1', '--out', out, '--grid', grid, '--overwrite']);
    assert.match(r.stdout, new RegExp(`warning\\s+replacing the grid ${grid}\\n`));
    assert.notEqual(await readFile(grid, 'utf8'), 'precious');
  });

  test('--overwrite says what it replaces (once), and refuses files the old set does not own', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    await generate(['--run', 'r', '--per-class', '2', '--out', out]);
    const createdAt = (await readManifest(out)).createdAt;
    await writeFile(join(out, 'notes.txt'), 'mine');
    await assert.rejects(
      generate(['--run', 'r', '--per-class', '1', '--out', out, '--overwrite']),
      isConfig('--out', /does not list \(notes\.txt\)/),
    );
    assert.equal(await readFile(join(out, 'notes.txt'), 'utf8'), 'mine');
    await rm(join(out, 'notes.txt'));
    const r = await generate(['--run', 'r', '--per-class', '1', '--out', out, '--overwrite', '--json']);
    const message = `replacing the synthetic set in ${out}: 4 images and manifest.json of the set made ${createdAt}`;
    assert.deepEqual(JSON.parse(r.stdout).warnings, [message]);
    const human = await generate(['--run', 'r', '--per-class', '1', '--out', out, '--overwrite']);
    assert.equal(human.stdout.split('\n').filter((l) => l.includes('replacing the synthetic set')).length, 1);
    assert.equal((await readManifest(out)).total, 2);
  });

  test('--run and --out are required', async () => {
    await assert.rejects(generate(['--per-class', '1']), /required option/);
  });
});
