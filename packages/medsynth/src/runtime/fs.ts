/**
 * File helpers: atomic writes, and one place that turns the file system's refusals into errors a user can act on.
 *
 * `writeFileAtomic` writes a temporary file in the same folder, flushes it to the disk (fsync), renames it over
 * the target and flushes the folder, so after a crash or power loss readers find the old file or the new one,
 * never half of one (a rename is atomic; the two fsyncs make it durable). The temporary file's name carries the
 * writer's pid (`.<name>.<pid>-<hex>.tmp`); the next write of the same file removes those of dead writers.
 *
 * `fileSystemError` maps the errno codes that mean "the machine, not the input" — ENOSPC/EDQUOT (full disk or
 * quota), EACCES/EPERM (no permission), EROFS (read-only), EMFILE/ENFILE (too many open files), EIO — to a
 * `FileSystemError` (exit 1) naming the path and what was being written; `withFileContext` wraps a block of
 * writes with that description. The CLI applies the same mapping to anything that escapes without context.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FileSystemError, isMedsynthError, type MedsynthError } from './errors.js';

/** What each errno code means, in words. */
const FS_CODES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  EMFILE: 'too many open files in this process (raise `ulimit -n`)',
  ENFILE: 'too many open files on this machine',
  EIO: 'input/output error from the device',
};

interface ErrnoLike {
  readonly code?: unknown;
  readonly path?: unknown;
  readonly dest?: unknown;
  readonly syscall?: unknown;
}

/** The errno code of a Node file-system error that `fileSystemError` maps, else undefined. */
export function fileSystemCode(e: unknown): string | undefined {
  const code = (e as ErrnoLike | null)?.code;
  return typeof code === 'string' && code in FS_CODES ? code : undefined;
}

/**
 * A `FileSystemError` for a file-system refusal (see the module comment), naming `file` (else the error's own
 * path) and `what` was being done; undefined for any other error. A `MedsynthError` whose cause is such a
 * refusal is returned as it is.
 */
export function fileSystemError(e: unknown, what?: string, file?: string): MedsynthError | undefined {
  if (isMedsynthError(e)) return undefined;
  const code = fileSystemCode(e);
  if (code === undefined) return undefined;
  const err = e as ErrnoLike;
  const path = file ?? (typeof err.path === 'string' ? err.path : undefined);
  const doing = what ?? (typeof err.syscall === 'string' ? `calling ${err.syscall}` : undefined);
  const advice = code === 'ENOSPC' || code === 'EDQUOT' ? '; free some space and run the command again' : '';
  return new FileSystemError(`${FS_CODES[code]}${doing ? ` while ${doing}` : ''}${advice}`, {
    ...(path !== undefined ? { file: path } : {}),
    found: code,
    cause: e,
  });
}

/** Runs `fn`; a file-system refusal inside it becomes a `FileSystemError` saying `what` was being written. */
export async function withFileContext<T>(what: string, file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw fileSystemError(e, what, file) ?? e;
  }
}

/** The errno code of an error (`ENOENT`, `ENOSPC`…), if it has one. */
export function errnoCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** Whether process `pid` runs on this machine (as any user). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errnoCode(e) !== 'ESRCH'; // EPERM: it runs, as another user
  }
}

/**
 * Removes the temporary siblings `writeFileAtomic` left for `file` when its process was killed mid-write
 * (`.<name>.<pid>-<hex>.tmp` whose pid no longer runs). Never throws.
 */
async function removeStaleTemps(file: string): Promise<void> {
  const prefix = `.${basename(file)}.`;
  const names = await readdir(dirname(file)).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const pid = /^(\d+)-[0-9a-f]{12}$/.exec(name.slice(prefix.length, -'.tmp'.length))?.[1];
    if (pid !== undefined && Number(pid) !== process.pid && !processRuns(Number(pid)))
      await rm(join(dirname(file), name), { force: true }).catch(() => undefined);
  }
}

/** Flushes a folder's entries (a rename into it) to the disk; a no-op where folders cannot be opened. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` and flushes it to the disk before returning. */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `file` atomically and durably (see the module comment). `what` describes the file for errors
 * ("the checkpoint index", "the study report"); a full disk leaves the previous file untouched.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  what = `writing ${basename(file)}`,
): Promise<void> {
  await withFileContext(what, file, async () => {
    await mkdir(dirname(file), { recursive: true });
    await removeStaleTemps(file);
    const tmp = join(
      dirname(file),
      `.${basename(file)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`,
    );
    try {
      await writeFileSynced(tmp, data);
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await fsyncDir(dirname(file));
  });
}

/**
 * The JSON values of a JSON-lines text, in order, skipping blank lines and lines that do not parse (a log cut
 * off mid-line by a killed process). Callers validate each value.
 */
export function jsonLines(text: string): unknown[] {
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a cut-off line
    }
  }
  return out;
}
