/**
 * Verified, resumable downloads. `downloadVerified` streams a URL into `<dest>.part`, resuming an existing
 * part with an HTTP `Range` request, checks the MD5 of the complete file and only then renames it to `dest`
 * (atomic on one file system), so `dest` is either absent or complete and verified.
 *
 * Cache policy: an existing `dest` is re-hashed on every call. If it does not match, this module does NOT
 * delete it (it may be a file the user put there on purpose); it throws an `IntegrityError` that tells the
 * user to delete it. A failed or interrupted transfer keeps `<dest>.part` for the next call to resume; a
 * complete download whose MD5 is wrong deletes the part file (resuming it could never succeed).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError, DownloadError, IntegrityError } from '../../runtime/errors.js';
import type { ProgressCallback } from '../../runtime/progress.js';

export interface DownloadRequest {
  readonly url: string;
  /** Final path; the transfer goes to `<dest>.part` first. */
  readonly dest: string;
  /** Expected MD5 of the complete file, 32 hex digits. */
  readonly md5: string;
  readonly onProgress?: ProgressCallback | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface DownloadResult {
  readonly path: string;
  /** True when `dest` already existed and verified: nothing was fetched. */
  readonly cached: boolean;
  readonly bytes: number;
  /** Bytes of an existing `.part` the server let us keep (0: fresh download or server ignored Range). */
  readonly resumedFrom: number;
  readonly md5: string;
}

/** Emit at most one `tick` per this many bytes (plus the last one). */
const TICK_BYTES = 1 << 20;

/** The download cache: `cacheDir`, else env `MEDSYNTH_CACHE`, else `~/.cache/medsynth`. */
export function resolveCacheDir(cacheDir?: string): string {
  if (cacheDir !== undefined && cacheDir !== '') return cacheDir;
  const env = process.env.MEDSYNTH_CACHE;
  if (env !== undefined && env !== '') return env;
  return join(homedir(), '.cache', 'medsynth');
}

export async function downloadVerified(req: DownloadRequest): Promise<DownloadResult> {
  const { url, dest, onProgress, signal } = req;
  const expected = req.md5.toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(expected)) {
    throw new ConfigError('not an MD5 checksum', { field: 'md5', expected: '32 hex digits', found: req.md5 });
  }
  signal?.throwIfAborted();

  const existing = await fileSize(dest);
  if (existing !== undefined) {
    onProgress?.({ type: 'phase', phase: 'verify', detail: dest });
    const found = await md5File(dest, existing, onProgress, signal);
    if (found !== expected) {
      throw new IntegrityError(
        'cached file does not have the expected MD5 (corrupt, or a different version); delete it to download it again',
        { file: dest, expected, found },
      );
    }
    return { path: dest, cached: true, bytes: existing, resumedFrom: 0, md5: found };
  }

  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let result = await transfer(url, part, await fileSize(part), expected, onProgress, signal);
  if (result === 'restart') result = await transfer(url, part, undefined, expected, onProgress, signal);
  if (result === 'restart') {
    throw new DownloadError('server rejected the download range twice', { file: url });
  }
  if (result.md5 !== expected) {
    await unlink(part).catch(() => undefined);
    throw new IntegrityError('downloaded file does not have the expected MD5; the partial file was deleted', {
      file: url,
      field: dest,
      expected,
      found: result.md5,
    });
  }
  await rename(part, dest);
  return { path: dest, cached: false, bytes: result.bytes, resumedFrom: result.resumedFrom, md5: result.md5 };
}

interface Transferred {
  readonly bytes: number;
  readonly resumedFrom: number;
  readonly md5: string;
}

/** One HTTP request into `part`. Returns 'restart' when the part must be discarded and the download redone. */
async function transfer(
  url: string,
  part: string,
  partSize: number | undefined,
  expected: string,
  onProgress: ProgressCallback | undefined,
  signal: AbortSignal | undefined,
): Promise<Transferred | 'restart'> {
  const resumeFrom = partSize ?? 0;
  onProgress?.({
    type: 'phase',
    phase: 'download',
    detail: resumeFrom > 0 ? `${url} (resuming at ${resumeFrom} bytes)` : url,
  });
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(url, {
      headers: resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {},
      redirect: 'follow',
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (e) {
    signal?.throwIfAborted();
    throw new DownloadError(`request failed: ${describe(e)}`, { file: url, cause: e });
  }

  let append = false;
  let total: number | undefined;
  const length = headerInt(res, 'content-length');
  if (resumeFrom > 0 && res.status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (range?.[1] === undefined || Number(range[1]) !== resumeFrom) {
      // A range we did not ask for: safest is to start over.
      await res.body?.cancel();
      await unlink(part).catch(() => undefined);
      return 'restart';
    }
    append = true;
    total =
      range[3] !== undefined && range[3] !== '*'
        ? Number(range[3])
        : length === undefined
          ? undefined
          : resumeFrom + length;
  } else if (resumeFrom > 0 && res.status === 416) {
    // Nothing left to send: the part may already be complete. Keep it if it verifies, else start over.
    await res.body?.cancel();
    const found = await md5File(part, resumeFrom, onProgress, signal);
    if (found === expected) return { bytes: resumeFrom, resumedFrom: resumeFrom, md5: found };
    await unlink(part).catch(() => undefined);
    return 'restart';
  } else if (res.status === 200) {
    total = length; // a 200 answer to a Range request: the server sends everything, so restart from zero
  } else {
    await res.body?.cancel().catch(() => undefined);
    throw new DownloadError(
      `download failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`,
      {
        file: url,
        expected: resumeFrom > 0 ? 'HTTP 200 or 206' : 'HTTP 200',
        found: `HTTP ${res.status}`,
      },
    );
  }
  if (res.body === null)
    throw new DownloadError('server sent no body', { file: url, found: `HTTP ${res.status}` });

  const hash = createHash('md5');
  if (append) await hashInto(hash, part, resumeFrom, signal);
  let done = append ? resumeFrom : 0;
  const tickTotal = total ?? 0;
  let lastTick = done;
  const fh = await open(part, append ? 'a' : 'w');
  try {
    for await (const chunk of res.body) {
      await fh.write(chunk);
      hash.update(chunk);
      done += chunk.length;
      if (done - lastTick >= TICK_BYTES) {
        lastTick = done;
        onProgress?.({ type: 'tick', phase: 'download', done, total: tickTotal, unit: 'bytes' });
      }
    }
  } catch (e) {
    signal?.throwIfAborted();
    throw new DownloadError(
      `transfer interrupted after ${done} bytes (run again to resume): ${describe(e)}`,
      {
        file: url,
        cause: e,
        ...(total === undefined ? {} : { expected: `${total} bytes` }),
        found: `${done} bytes`,
      },
    );
  } finally {
    await fh.close();
  }
  onProgress?.({ type: 'tick', phase: 'download', done, total: total ?? done, unit: 'bytes' });
  if (total !== undefined && done !== total) {
    throw new DownloadError('transfer ended early (run again to resume)', {
      file: url,
      expected: `${total} bytes`,
      found: `${done} bytes`,
    });
  }
  onProgress?.({ type: 'done', phase: 'download', seconds: (performance.now() - started) / 1000 });
  return { bytes: done, resumedFrom: append ? resumeFrom : 0, md5: hash.digest('hex') };
}

/** MD5 of a whole file, streamed, with `verify` ticks. */
export async function md5File(
  file: string,
  size?: number,
  onProgress?: ProgressCallback,
  signal?: AbortSignal,
): Promise<string> {
  const hash = createHash('md5');
  await hashInto(hash, file, undefined, signal, (done) =>
    onProgress?.({ type: 'tick', phase: 'verify', done, total: size ?? done, unit: 'bytes' }),
  );
  return hash.digest('hex');
}

async function hashInto(
  hash: Hash,
  file: string,
  bytes: number | undefined,
  signal: AbortSignal | undefined,
  tick?: (done: number) => void,
): Promise<void> {
  if (bytes === 0) return;
  const stream = createReadStream(file, {
    ...(bytes === undefined ? {} : { end: bytes - 1 }),
    ...(signal === undefined ? {} : { signal }),
    highWaterMark: 1 << 20,
  });
  let done = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    done += chunk.length;
    tick?.(done);
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function headerInt(res: Response, name: string): number | undefined {
  const v = res.headers.get(name);
  return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}`;
}
