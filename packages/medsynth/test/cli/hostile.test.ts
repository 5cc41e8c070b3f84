/**
 * Hostile inputs, built in a temp dir and run through the real CLI (a child process): symbolic-link loops and
 * escapes in image folders, labels-CSV paths that leave the dataset, a full disk, out-of-range flags, files that
 * would be overwritten, runs killed before their first checkpoint, one-image classes. Each case asserts the
 * message, the exit code, and — through a preload that records every path the process opens, lists or writes
 * (test/helpers/fs-trace.mjs) — that nothing outside the temp dir was read or written.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/runtime/backend.js';
import { disposeWeightSets, findCheckpoint, loadCheckpoint } from '../../src/training/checkpoint.js';
import { sharedData } from '../helpers/shared-data.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const trace = fileURLToPath(new URL('../helpers/fs-trace.mjs', import.meta.url));
const LUNG = sharedData('lc25000_lung_224');
const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
const CLASSES = ['lung_aca', 'lung_n', 'lung_scc'];
const PER_CLASS = 30;

interface FsCall {
  readonly op: 'read' | 'write';
  readonly fn: string;
  readonly path: string;
}

interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly calls: FsCall[];
}

let tmp: string;
let runs = 0;

/** Runs the CLI with the fs-trace preload; `fault` makes matching writes fail (see fs-trace.mjs). */
function cli(
  args: string[],
  opts: { fault?: string; faultAfter?: number; timeout?: number } = {},
): CliResult {
  const traceFile = join(tmp, `.trace-${runs++}.jsonl`);
  const r = spawnSync(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', '--import', trace, entry, ...args],
    {
      encoding: 'utf8',
      timeout: opts.timeout ?? 120_000,
      env: {
        ...process.env,
        MEDSYNTH_FS_TRACE: traceFile,
        MEDSYNTH_DEBUG: '',
        ...(opts.fault !== undefined ? { MEDSYNTH_FS_FAULT: opts.fault } : {}),
        ...(opts.faultAfter !== undefined ? { MEDSYNTH_FS_FAULT_AFTER: String(opts.faultAfter) } : {}),
      },
    },
  );
  const calls = existsSync(traceFile)
    ? readFileSync(traceFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as FsCall)
    : [];
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls };
}

/** Nothing under `dir` was opened, listed or read (paths resolved as the process saw them). */
function assertNotRead(r: CliResult, dir: string): void {
  const touched = r.calls.filter((c) => c.op === 'read' && !relative(dir, c.path).startsWith('..'));
  assert.deepEqual(
    touched.map((c) => `${c.fn} ${c.path}`),
    [],
    'read outside the dataset',
  );
}

/** Every write went inside the temp dir (trace files aside). */
function assertWritesInside(r: CliResult, dir = tmp): void {
  const outside = r.calls.filter((c) => c.op === 'write' && relative(dir, c.path).startsWith('..'));
  assert.deepEqual(
    outside.map((c) => `${c.fn} ${c.path}`),
    [],
    'wrote outside the temp dir',
  );
}

/** Lists a whole tree (relative paths, links as `-> target`), for before/after comparisons. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.name.startsWith('.trace-')) continue;
      if (e.isDirectory()) {
        out.push(`${relative(dir, p)}/`);
        await walk(p);
      } else out.push(relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
}

/** A fresh 3-class folder of 30 real histology tiles per class (90 images), and an `outside/` beside it. */
async function lungFolder(name: string): Promise<{ root: string; outside: string }> {
  const base = join(tmp, name);
  const root = join(base, 'data');
  const outside = join(base, 'outside');
  for (const cls of CLASSES) {
    await mkdir(join(root, cls), { recursive: true });
    const files = (await readdir(join(LUNG, cls))).filter((f) => f.endsWith('.jpeg')).sort();
    for (const f of files.slice(0, PER_CLASS)) await copyFile(join(LUNG, cls, f), join(root, cls, f));
  }
  await mkdir(outside, { recursive: true });
  const extra = (await readdir(join(LUNG, 'lung_n'))).filter((f) => f.endsWith('.jpeg')).sort();
  for (const f of extra.slice(-5)) await copyFile(join(LUNG, 'lung_n', f), join(outside, f));
  await writeFile(join(outside, 'secret.txt'), 'not for medsynth\n');
  return { root, outside };
}

interface Inspected {
  total: number;
  notes: string[];
  splits: { name: string; count: number; classCounts: number[] }[];
}

function inspectJson(r: CliResult): Inspected {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Inspected;
}

before(async () => {
  await selectBackend();
  tmp = await mkdtemp(join(tmpdir(), 'medsynth-hostile-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('hostile image folders', () => {
  test('two links to a parent folder: listed once, quickly, with a note', async () => {
    const { root, outside } = await lungFolder('two-links');
    await symlink('..', join(root, 'lung_n', 'a'));
    await symlink('..', join(root, 'lung_n', 'b'));
    const t0 = performance.now();
    const r = cli(['data', 'inspect', root, '--json'], { timeout: 60_000 });
    const s = inspectJson(r);
    assert.ok(performance.now() - t0 < 60_000);
    assert.equal(s.total, 3 * PER_CLASS);
    assert.ok(
      s.notes.some((n) => /2 folders reached again through symbolic links/.test(n)),
      s.notes.join('\n'),
    );
    assertNotRead(r, outside);
    assertWritesInside(r);
  });

  test('one loop: 90 images stay 90, each in one class and one split', async () => {
    const { root } = await lungFolder('loop');
    await symlink('..', join(root, 'lung_n', 'loop'));
    const s = inspectJson(cli(['data', 'inspect', root, '--json']));
    assert.equal(s.total, 3 * PER_CLASS);
    const all = s.splits.reduce((acc, sp) => acc.map((v, c) => v + sp.classCounts[c]!), [0, 0, 0]);
    assert.deepEqual(all, [PER_CLASS, PER_CLASS, PER_CLASS]);
    assert.ok(
      s.notes.some((n) => /reached again/.test(n) && /lung_n\/loop/.test(n)),
      s.notes.join('\n'),
    );
  });

  test('a link leading out of the dataset is not followed (nor read) unless --allow-outside-root', async () => {
    const { root, outside } = await lungFolder('escape');
    await symlink(outside, join(root, 'lung_n', 'more'));
    const r = cli(['data', 'inspect', root, '--json']);
    const s = inspectJson(r);
    assert.equal(s.total, 3 * PER_CLASS);
    assert.ok(
      s.notes.some((n) => /1 symbolic link leading outside the dataset folder not followed/.test(n)),
      s.notes.join('\n'),
    );
    assertNotRead(r, outside);
    const allowed = inspectJson(cli(['data', 'inspect', root, '--json', '--allow-outside-root']));
    assert.equal(allowed.total, 3 * PER_CLASS + 5);
  });

  test('a file linked into a second class is counted once', async () => {
    const { root } = await lungFolder('dup-file');
    const first = (await readdir(join(root, 'lung_n'))).sort()[0]!;
    await symlink(join('..', 'lung_n', first), join(root, 'lung_scc', `zz-${first}`));
    const s = inspectJson(cli(['data', 'inspect', root, '--json']));
    assert.equal(s.total, 3 * PER_CLASS);
    assert.ok(
      s.notes.some((n) => /1 file reached twice through symbolic links counted once/.test(n)),
      s.notes.join('\n'),
    );
  });

  test('a one-image class (a label typo) gets a warning', async () => {
    const { root } = await lungFolder('typo');
    await mkdir(join(root, 'lung_nn'));
    const moved = (await readdir(join(root, 'lung_n'))).sort()[0]!;
    await copyFile(join(root, 'lung_n', moved), join(root, 'lung_nn', moved));
    await rm(join(root, 'lung_n', moved));
    const r = cli(['data', 'inspect', root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*a class with a single image \(a typo in a label\?\): "lung_nn"/);
    assert.match(r.stdout, /note {8}a class with a single image/);
  });
});

describe('hostile labels CSVs', () => {
  const csvCase = async (name: string, path: string) => {
    const { root, outside } = await lungFolder(name);
    const lines = ['path,label'];
    for (const cls of CLASSES) {
      for (const f of (await readdir(join(root, cls))).sort().slice(0, 5)) lines.push(`${cls}/${f},${cls}`);
    }
    lines.splice(2, 0, `${path},lung_n`);
    await writeFile(join(root, 'labels.csv'), `${lines.join('\n')}\n`);
    return { root, outside };
  };

  test('../outside/x.jpeg is refused, naming line and column, and never opened', async () => {
    const { root, outside } = await csvCase('csv-up', 'PLACEHOLDER');
    const target = (await readdir(outside)).find((f) => f.endsWith('.jpeg'))!;
    const csv = (await readFile(join(root, 'labels.csv'), 'utf8')).replace(
      'PLACEHOLDER',
      `../outside/${target}`,
    );
    await writeFile(join(root, 'labels.csv'), csv);
    const before = await tree(join(root, '..'));
    const r = cli(['data', 'inspect', root]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /labels\.csv \[line 3, column path\]: the path in the labels CSV leads outside the dataset folder; pass --allow-outside-root/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assertNotRead(r, outside);
    assertWritesInside(r);
    assert.deepEqual(await tree(join(root, '..')), before);
    const allowed = cli(['data', 'inspect', root, '--json', '--allow-outside-root']);
    assert.equal(inspectJson(allowed).total, 16);
  });

  test('an absolute path outside the dataset is refused', async () => {
    const { root, outside } = await csvCase('csv-abs', 'PLACEHOLDER');
    const target = join(
      outside,
      (await readdir(outside)).find((f) => f.endsWith('.jpeg'))!,
    );
    const csv = (await readFile(join(root, 'labels.csv'), 'utf8')).replace('PLACEHOLDER', target);
    await writeFile(join(root, 'labels.csv'), csv);
    const r = cli(['data', 'inspect', root]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[line 3, column path\]: the path in the labels CSV leads outside/);
    assertNotRead(r, outside);
  });

  test('../../../etc/passwd: refused without opening it, in words that do not say whether it exists', async () => {
    const { root } = await csvCase('csv-passwd', '../../../../../../../../etc/passwd');
    const r = cli(['data', 'inspect', root]);
    assert.equal(r.code, 2, r.stderr);
    assertNotRead(r, '/etc/passwd');
    const csv = await readFile(join(root, 'labels.csv'), 'utf8');
    await writeFile(join(root, 'labels.csv'), csv.replace('etc/passwd', 'etc/no-such-file-medsynth'));
    const missing = cli(['data', 'inspect', root]);
    assert.equal(missing.code, 2);
    const words = (s: string) => s.replace(/found [^)]*\)/, '').replace(/expected a path inside \S+/, '');
    assert.equal(words(missing.stderr), words(r.stderr));
  });

  test('a path through a link inside the dataset that leads out is refused', async () => {
    const { root, outside } = await csvCase('csv-link', 'PLACEHOLDER');
    await symlink(outside, join(root, 'shortcut'));
    const target = (await readdir(outside)).find((f) => f.endsWith('.jpeg'))!;
    const csv = (await readFile(join(root, 'labels.csv'), 'utf8')).replace(
      'PLACEHOLDER',
      `shortcut/${target}`,
    );
    await writeFile(join(root, 'labels.csv'), csv);
    const r = cli(['data', 'inspect', root]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /leads outside the dataset folder through a symbolic link/);
    assertNotRead(r, outside);
  });
});

describe('flags and outputs', () => {
  test('--sites larger than the train split is a config error naming the flag', () => {
    const r = cli(['data', 'inspect', PNEUMONIA, '--max-images', '10', '--sites', '100000']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /ConfigError: \[--sites\]: more sites than train images.*expected at most 4708/);
    assert.doesNotMatch(r.stderr, /RangeError/);
  });

  test('--grid does not replace an existing file without --overwrite', async () => {
    const grid = join(tmp, 'grid.png');
    await writeFile(grid, 'mine');
    const r = cli(['data', 'inspect', PNEUMONIA, '--max-images', '10', '--grid', grid]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[--grid\]: the grid file exists; pass --overwrite/);
    assert.equal(await readFile(grid, 'utf8'), 'mine');
    const ok = cli(['data', 'inspect', PNEUMONIA, '--max-images', '10', '--grid', grid, '--overwrite']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.notEqual(await readFile(grid, 'utf8'), 'mine');
  });
});

/** A 64 KiB tmpfs (a real full disk), or undefined where this process may not mount one. */
function smallDisk(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('a full disk', () => {
  test('a real full disk while writing a grid: FileSystemError naming the file, exit 1, no stack, no temp file', async (t) => {
    const disk = join(tmp, 'disk');
    await mkdir(disk);
    if (!smallDisk(disk)) {
      t.skip('cannot mount a tmpfs here (needs root); the injected-fault test below covers the mapping');
      return;
    }
    try {
      await writeFile(join(disk, 'filler'), new Uint8Array(60 * 1024)).catch(() => undefined);
      const grid = join(disk, 'grid.png');
      const r = cli([
        'data',
        'inspect',
        PNEUMONIA,
        '--max-images',
        '10',
        '--grid',
        grid,
        '--grid-size',
        '128',
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `medsynth: FileSystemError: ${grid.replace(/[.]/g, '\\.')}: no space left on the device while writing the sample grid; free some space`,
        ),
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(await readdir(disk), ['filler']);
      const debug = cli(['data', 'inspect', PNEUMONIA, '--max-images', '10', '--grid', grid, '--debug']);
      assert.equal(debug.code, 1);
      assert.match(debug.stderr, /\n\s+at /);
    } finally {
      execFileSync('umount', [disk]);
    }
  });

  test('ENOSPC at the second checkpoint: the first stays valid, the error names it, a resume continues', async () => {
    const out = join(tmp, 'runs-enospc');
    const r = cli(
      ['train', '--data', PNEUMONIA, '--preset', 'tiny', '--kimg', '1', '--tick-kimg', '0.25', '--out', out],
      { fault: 'ENOSPC:/checkpoints/\\.tmp-step-[^/]*$', faultAfter: 1, timeout: 300_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /medsynth: FileSystemError: \S+\/checkpoints\/step-\d+: no space left on the device while writing checkpoint step-\d+ \(the previous checkpoint is kept\)/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at |unexpected error/);
    const [run] = await readdir(out);
    const ckptRoot = join(out, run!, 'checkpoints');
    const names = await readdir(ckptRoot);
    assert.deepEqual(
      names.filter((n) => n.startsWith('.')),
      [],
      'no temporary checkpoint left',
    );
    const ckpt = await loadCheckpoint(await findCheckpoint(join(out, run!)));
    assert.ok(ckpt.state.step > 0);
    disposeWeightSets(ckpt.weights);
    assertWritesInside(r);
    const resumed = cli(['train', '--resume', join(out, run!)], { timeout: 300_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(await readFile(join(out, run!, 'result.json'), 'utf8')) as { kimg: number };
    assert.ok(result.kimg >= 1);
    // generate onto the full disk: the staging copy goes, nothing is replaced, the message says what was written.
    const set = join(tmp, 'full-set');
    const gen = cli(['generate', '--run', join(out, run!), '--per-class', '40', '--out', set], {
      fault: `ENOSPC:/\\.full-set\\.tmp-[^/]*/[^/]+/seed`,
      faultAfter: 20,
    });
    assert.equal(gen.code, 1, gen.stderr);
    assert.match(
      gen.stderr,
      /FileSystemError: \S+full-set: no space left on the device while writing the synthetic set \(nothing was replaced; the staging copy was removed\)/,
    );
    assert.equal(existsSync(set), false);
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.startsWith('.full-set')),
      [],
    );
  });
});

describe('runs killed early', () => {
  test('a run killed before its first checkpoint starts over on --resume (and generate says how)', async () => {
    const out = join(tmp, 'runs-early');
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--conditions=source',
        '--import',
        'tsx',
        entry,
        'train',
        '--data',
        PNEUMONIA,
        '--preset',
        'tiny',
        '--kimg',
        '1000',
        '--tick-kimg',
        '1000',
        '--out',
        out,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((res) => child.once('exit', res));
    // Killed once the run directory holds its options (training has started; no checkpoint for 1000 kimg).
    const deadline = Date.now() + 120_000;
    let run: string | undefined;
    while (Date.now() < deadline) {
      const names = existsSync(out) ? await readdir(out) : [];
      run = names[0];
      if (run !== undefined && existsSync(join(out, run, 'run.json'))) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    child.kill('SIGKILL');
    await exited;
    assert.ok(run, 'the run directory appeared');
    const dir = join(out, run);
    assert.equal(existsSync(join(dir, 'checkpoints', 'latest.json')), false);
    const gen = cli(['generate', '--run', dir, '--per-class', '2', '--out', join(tmp, 'early-set')]);
    assert.equal(gen.code, 2, gen.stderr);
    assert.match(gen.stderr, /no checkpoint yet: it stopped before its first one; `medsynth train --resume/);
    const resumed = cli(['train', '--resume', dir, '--kimg', '0.25'], { timeout: 300_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stderr,
      /has no checkpoint yet \(the run stopped before its first one\): starting it over/,
    );
    assert.ok((await stat(join(dir, 'checkpoints', 'latest.json'))).isFile());
  });
});
