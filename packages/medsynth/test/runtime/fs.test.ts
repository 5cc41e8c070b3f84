import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileSystemError } from '../../src/runtime/errors.js';
import { fileSystemError, withFileContext, writeFileAtomic } from '../../src/runtime/fs.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-fs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An errno error as Node's fs makes them. */
function errno(code: string, path?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: test`), { code, syscall: 'write', ...(path ? { path } : {}) });
}

describe('writeFileAtomic', () => {
  test('replaces the file, leaves no temporary file, and removes those of dead writers only', async () => {
    const file = join(dir, 'a', 'results.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    assert.equal(await readFile(file, 'utf8'), 'two');
    assert.deepEqual(await readdir(join(dir, 'a')), ['results.json']);
    // A writer killed mid-write left its temporary file; a live writer's is kept.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const alive = process.ppid;
    await writeFile(join(dir, 'a', `.results.json.${dead}-0123456789ab.tmp`), 'half');
    await writeFile(join(dir, 'a', `.results.json.${alive}-0123456789ab.tmp`), 'in progress');
    await writeFile(join(dir, 'a', `.other.json.${dead}-0123456789ab.tmp`), 'not ours');
    await writeFileAtomic(file, 'three');
    assert.deepEqual((await readdir(join(dir, 'a'))).sort(), [
      `.other.json.${dead}-0123456789ab.tmp`,
      `.results.json.${alive}-0123456789ab.tmp`,
      'results.json',
    ]);
  });

  test('a real full disk: a FileSystemError naming the file and what was written; the old file survives', async (t) => {
    const disk = join(dir, 'disk');
    await mkdir(disk);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    try {
      const file = join(disk, 'report.html');
      await writeFileAtomic(file, 'old report');
      await assert.rejects(
        writeFileAtomic(file, new Uint8Array(256 * 1024), 'writing the study report'),
        (e) => {
          assert.ok(e instanceof FileSystemError);
          assert.equal(e.exitCode, 1);
          assert.equal(e.context.file, file);
          assert.equal(e.context.found, 'ENOSPC');
          assert.match(
            e.message,
            /no space left on the device while writing the study report; free some space/,
          );
          return true;
        },
      );
      assert.equal(await readFile(file, 'utf8'), 'old report');
      assert.deepEqual(await readdir(disk), ['report.html']);
    } finally {
      execFileSync('umount', [disk]);
    }
  });
});

describe('fileSystemError', () => {
  test('maps the machine-side errno codes, and nothing else', () => {
    for (const [code, words] of [
      ['ENOSPC', /no space left on the device/],
      ['EDQUOT', /disk quota exceeded/],
      ['EACCES', /permission denied/],
      ['EROFS', /read-only/],
      ['EMFILE', /too many open files/],
    ] as const) {
      const e = fileSystemError(errno(code, '/x/y'), 'writing y');
      assert.ok(e instanceof FileSystemError, code);
      assert.match(e.message, words);
      assert.match(e.message, /^\/x\/y: .* while writing y/);
    }
    assert.equal(fileSystemError(errno('ENOENT', '/x')), undefined);
    assert.equal(fileSystemError(new Error('plain')), undefined);
  });

  test('withFileContext names the target file and keeps other errors as they are', async () => {
    await assert.rejects(
      withFileContext('writing checkpoint step-1', '/runs/r/checkpoints/step-1', async () => {
        throw errno('ENOSPC');
      }),
      /\/runs\/r\/checkpoints\/step-1: no space left on the device while writing checkpoint step-1/,
    );
    const other = new TypeError('a bug');
    await assert.rejects(
      withFileContext('writing x', '/x', async () => {
        throw other;
      }),
      (e) => e === other,
    );
  });
});
