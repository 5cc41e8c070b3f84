import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../../src/data/source.js';
import {
  readManifest,
  STAGING_OWNER_NAME,
  STALE_UNOWNED_MS,
  writeSyntheticSet,
} from '../../src/generate/export.js';
import { makePlan } from '../../src/generate/plan.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { tinyGenerator } from './tiny-generator.js';

before(async () => {
  await selectBackend();
});

const CLASSES = ['a', 'b', 'c'];
const child = fileURLToPath(new URL('./stale-child.ts', import.meta.url));

const made: string[] = [];
after(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'medsynth-stale-'));
  made.push(d);
  return d;
}

async function hidden(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('.')).sort();
}

/** Writes a small set (per-class `n`), collecting its warning events. */
async function write(out: string, n: number, overwrite = false) {
  const g = tinyGenerator({ classNames: CLASSES });
  const events: string[] = [];
  try {
    const res = await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: n }, CLASSES), {
      out,
      overwrite,
      onProgress: (e: ProgressEvent) => {
        if (e.type === 'warning') events.push(e.message);
      },
    });
    return { res, events };
  } finally {
    g.dispose();
  }
}

/**
 * Starts stale-child.ts writing `out`, waits for its first batch and then until `ready()` (what the test
 * wants to find on disk: `tick` means a batch was generated, not yet written), kills it with SIGKILL.
 */
async function killMidway(out: string, ready: () => Promise<boolean> = async () => true): Promise<number> {
  const p = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', child, out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      let polling = false;
      p.stdout.on('data', (d: Buffer) => {
        if (polling || !d.toString().includes('tick')) return;
        polling = true;
        const poll = async () => {
          if (p.exitCode !== null) return;
          if (await ready()) resolve();
          else setTimeout(() => void poll().catch(reject), 20);
        };
        void poll().catch(reject);
      });
      p.once('exit', (code) => reject(new Error(`the child exited (${code}) before writing: ${stderr}`)));
    });
  } finally {
    p.kill('SIGKILL');
  }
  if (p.exitCode === null && p.signalCode === null) await once(p, 'exit');
  assert.equal(p.signalCode, 'SIGKILL');
  return p.pid!;
}

function owner(pid: number, host = hostname()): string {
  return JSON.stringify({ pid, hostname: host, startedAt: '2024-01-01T00:00:00.000Z' });
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid;
}

describe('leftovers of killed runs', () => {
  test('kill -9 during a folder set: the next run removes the staging folder and writes a complete set', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    // Killed once the first class folder exists in the staging folder (images are being written).
    const pid = await killMidway(out, async () => {
      const [staging] = await hidden(dir);
      return (
        staging !== undefined && (await readdir(join(dir, staging)).catch((): string[] => [])).includes('a')
      );
    });
    const [staging, ...more] = await hidden(dir);
    assert.ok(staging !== undefined && /^\.set\.tmp-[0-9a-f]{8}$/.test(staging), `staging left: ${staging}`);
    assert.deepEqual(more, []);
    const rec = JSON.parse(await readFile(join(dir, staging, STAGING_OWNER_NAME), 'utf8'));
    assert.equal(rec.pid, pid, 'the staging folder names its writer');
    assert.ok(
      (await readdir(join(dir, staging))).some((n) => n === 'a'),
      'images were being written',
    );

    const { res, events } = await write(out, 2);
    assert.deepEqual(await hidden(dir), [], 'the leftover is gone');
    const message = `removed leftovers of an earlier generate run that was killed: ${join(dir, staging)}`;
    assert.deepEqual(events, [message]);
    assert.deepEqual(res.warnings, [message]);
    const ds = await openDataset(out);
    assert.deepEqual(ds.classNames, CLASSES);
    assert.equal(ds.listing.samples.length, 6);
    assert.equal((await readManifest(out)).total, 6);
    assert.deepEqual(
      (await readdir(out)).sort(),
      ['a', 'b', 'c', 'manifest.json'],
      'no owner file in the set',
    );
  });

  test('kill -9 during an .npz: the next run removes the temporary file and its owner record', async () => {
    const dir = await tmp();
    const out = join(dir, 'set.npz');
    await killMidway(out);
    const left = await hidden(dir);
    assert.equal(left.length, 2, left.join());
    assert.match(left[0]!, /^\.set\.npz\.tmp-[0-9a-f]{8}$/);
    assert.equal(left[1], `${left[0]}.owner.json`);
    const { res } = await write(out, 2);
    assert.deepEqual(await hidden(dir), []);
    assert.deepEqual(res.warnings, [
      `removed leftovers of an earlier generate run that was killed: ${join(dir, left[0]!)}, ${join(dir, left[1]!)}`,
    ]);
    assert.equal((await openDataset(out)).listing.samples.length, 6);
  });

  test('a staging folder whose writer still runs, or of another host, or recent without owner, is left alone', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    const stage = async (hex: string, ownerText: string | undefined, ageMs = 0) => {
      const p = join(dir, `.set.tmp-${hex}`);
      await mkdir(join(p, 'a'), { recursive: true });
      await writeFile(join(p, 'a', 'seed000000.png'), 'x');
      if (ownerText !== undefined) await writeFile(join(p, STAGING_OWNER_NAME), ownerText);
      const t = new Date(Date.now() - ageMs);
      await utimes(p, t, t);
      return p;
    };
    const live = await stage('0000000a', owner(process.pid));
    const remote = await stage('0000000b', owner(deadPid(), 'some-other-host.example'));
    const young = await stage('0000000c', undefined, 60_000);
    const dead = await stage('0000000d', owner(deadPid()));
    const ownerless = await stage('0000000e', 'not json', STALE_UNOWNED_MS + 60_000);
    const { res } = await write(out, 1);
    assert.deepEqual(await hidden(dir), ['.set.tmp-0000000a', '.set.tmp-0000000b', '.set.tmp-0000000c']);
    assert.equal(
      res.warnings[0],
      `removed leftovers of an earlier generate run that was killed: ${dead}, ${ownerless}`,
    );
    assert.match(
      res.warnings[1]!,
      new RegExp(`^left ${live} alone: .*pid ${process.pid}.* is still running`),
    );
    assert.match(res.warnings[2]!, new RegExp(`^left ${remote} alone: .*on host some-other-host\\.example`));
    assert.match(res.warnings[3]!, new RegExp(`^left ${young} alone: it has no owner record .*1 min ago`));
    assert.equal(res.warnings.length, 4);
    assert.equal((await stat(join(live, STAGING_OWNER_NAME))).isFile(), true);
    assert.equal((await openDataset(out)).listing.samples.length, 3, 'the staging folders are not classes');
  });

  test('killed between the two renames: the previous set is restored from .old, never lost', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    await write(out, 2);
    const old = join(dir, '.set.old-0123abcd');
    await rename(out, old);
    const events: string[] = [];
    const g = tinyGenerator({ classNames: CLASSES });
    await assert.rejects(
      writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 1 }, CLASSES), {
        out,
        onProgress: (e) => {
          if (e.type === 'warning') events.push(e.message);
        },
      }),
      (e: unknown) => e instanceof ConfigError && /not empty.*--overwrite/.test(e.message),
      'the restored set is not replaced without --overwrite',
    );
    g.dispose();
    assert.deepEqual(events, [
      `restored the previous synthetic set ${out} from ${old} (an earlier generate run was stopped while replacing it)`,
    ]);
    assert.deepEqual(await hidden(dir), []);
    assert.equal((await readManifest(out)).total, 6, 'the previous set is back');
    assert.equal((await openDataset(out)).listing.samples.length, 6);
  });

  test('an .old leftover beside an existing set is deleted (only what its manifest owns)', async () => {
    const dir = await tmp();
    const out = join(dir, 'set');
    await write(out, 1);
    await write(join(dir, 'other'), 1);
    await rename(join(dir, 'other'), join(dir, '.set.old-0000aaaa'));
    await write(join(dir, 'other'), 1);
    await writeFile(join(dir, 'other', 'notes.txt'), 'mine');
    await rename(join(dir, 'other'), join(dir, '.set.old-0000bbbb'));
    const { res } = await write(out, 2, true);
    assert.deepEqual(await hidden(dir), ['.set.old-0000bbbb'], 'the one with a foreign file is kept');
    assert.equal(
      await readFile(join(dir, '.set.old-0000bbbb', 'notes.txt'), 'utf8'),
      'mine',
      'nothing of a user is deleted',
    );
    assert.equal(
      res.warnings[0],
      `removed leftovers of an earlier generate run that was killed: ${join(dir, '.set.old-0000aaaa')}`,
    );
    assert.match(res.warnings[1]!, /^left .*\.set\.old-0000bbbb alone: .*\(notes\.txt\)/);
    assert.equal((await readManifest(out)).total, 6);
  });
});
