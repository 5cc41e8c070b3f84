import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { downloadVerified, resolveCacheDir } from '../../src/data/npz/download.js';
import {
  loadMedmnist,
  MEDMNIST_FLAGS,
  MEDMNIST_INFO,
  medmnistCachePath,
  medmnistUrl,
  parseMedmnistSource,
} from '../../src/data/npz/medmnist.js';
import { ConfigError, DatasetError, DownloadError, IntegrityError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { sharedData } from '../helpers/shared-data.js';

const PNEUMONIA = sharedData('medmnist', 'pneumoniamnist_28_reconstructed.npz');
const BREAST = sharedData('medmnist', 'breastmnist_28_resaved.npz');

describe('MedMNIST sources and table', () => {
  test('parses medmnist:<flag>[@size]', () => {
    assert.deepEqual(parseMedmnistSource('medmnist:pneumoniamnist@64'), { flag: 'pneumoniamnist', size: 64 });
    assert.deepEqual(parseMedmnistSource('medmnist:breastmnist'), { flag: 'breastmnist', size: 28 });
    assert.deepEqual(parseMedmnistSource('medmnist:DermaMNIST@224'), { flag: 'dermamnist', size: 224 });
    assert.deepEqual(parseMedmnistSource('medmnist:bloodmnist@28'), { flag: 'bloodmnist', size: 28 });
  });

  test('unknown flag or size is a ConfigError listing the valid ones', () => {
    assert.throws(
      () => parseMedmnistSource('medmnist:pneumonia'),
      (e: unknown) =>
        e instanceof ConfigError &&
        /unknown MedMNIST dataset "pneumonia"/.test(e.message) &&
        e.message.includes('pathmnist, chestmnist, dermamnist, octmnist, pneumoniamnist') &&
        e.context.field === 'source',
    );
    assert.throws(
      () => parseMedmnistSource('medmnist:pneumoniamnist@32'),
      (e: unknown) => e instanceof ConfigError && /size "32".*one of 28, 64, 128, 224/.test(e.message),
    );
    assert.throws(
      () => parseMedmnistSource('medmnist:organmnist3d'),
      (e: unknown) => e instanceof ConfigError && /3D MedMNIST subset/.test(e.message),
    );
    assert.throws(() => parseMedmnistSource('pneumoniamnist'), ConfigError);
  });

  test('official URLs and MD5s (values from MedMNIST medmnist/info.py v3.0.2)', () => {
    assert.equal(
      medmnistUrl('pneumoniamnist', 28),
      'https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1',
    );
    assert.equal(
      medmnistUrl('breastmnist', 224),
      'https://zenodo.org/records/10519652/files/breastmnist_224.npz?download=1',
    );
    assert.equal(
      medmnistUrl('breastmnist', 64, 'http://127.0.0.1:9/m/'),
      'http://127.0.0.1:9/m/breastmnist_64.npz',
    );
    assert.equal(MEDMNIST_INFO.pneumoniamnist.md5[28], '28209eda62fecd6e6a2d98b1501bb15f');
    assert.equal(MEDMNIST_INFO.pneumoniamnist.md5[64], '8f4eceb4ccffa70c672198ea285246c6');
    assert.equal(MEDMNIST_INFO.breastmnist.md5[28], '750601b1f35ba3300ea97c75c52ff8f6');
    assert.equal(MEDMNIST_INFO.breastmnist.md5[224], 'b56378a6eefa9fed602bb16d192d4c8b');
    assert.equal(MEDMNIST_INFO.organamnist.md5[28], '68e3f8846a6bd62f0c9bf841c0d9eacc');
    assert.deepEqual(MEDMNIST_INFO.breastmnist.labels, ['malignant', 'normal, benign']);
    assert.equal(MEDMNIST_FLAGS.length, 12);
    for (const flag of MEDMNIST_FLAGS) {
      for (const md5 of Object.values(MEDMNIST_INFO[flag].md5)) assert.match(md5, /^[0-9a-f]{32}$/);
    }
  });

  test('cache location', () => {
    assert.equal(medmnistCachePath('pneumoniamnist', 64, '/c'), '/c/medmnist/pneumoniamnist_64.npz');
    assert.equal(medmnistCachePath('pneumoniamnist', 28, '/c'), '/c/medmnist/pneumoniamnist.npz');
    const saved = process.env.MEDSYNTH_CACHE;
    try {
      process.env.MEDSYNTH_CACHE = '/env/cache';
      assert.equal(resolveCacheDir(), '/env/cache');
      assert.equal(resolveCacheDir('/opt'), '/opt');
      delete process.env.MEDSYNTH_CACHE;
      assert.match(resolveCacheDir(), /\.cache\/medsynth$/);
    } finally {
      if (saved === undefined) delete process.env.MEDSYNTH_CACHE;
      else process.env.MEDSYNTH_CACHE = saved;
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// A local mirror: serves the real files from memory under /files/<name>, with Range support.
// ---------------------------------------------------------------------------------------------------------

interface Mirror {
  base: string;
  requests: { url: string; range: string | undefined }[];
  /** Answer Range requests with the whole file and 200. */
  ignoreRange: boolean;
  /** Destroy the connection after this many body bytes (once). */
  dropAfter: number | undefined;
  server: Server;
}

let files: Record<string, Buffer>;
let pneumoniaMd5: string;
let mirror: Mirror;
let cache: string;
const tempDirs: string[] = [];

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

async function startMirror(): Promise<Mirror> {
  const m: Mirror = {
    base: '',
    requests: [],
    ignoreRange: false,
    dropAfter: undefined,
    server: createServer(),
  };
  m.server.on('request', (req, res) => {
    const range = req.headers.range;
    m.requests.push({ url: req.url ?? '', range });
    const name = /^\/files\/([^/?]+)$/.exec(req.url ?? '')?.[1];
    const body = name === undefined ? undefined : files[name];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    let start = 0;
    const r = /^bytes=(\d+)-$/.exec(range ?? '');
    if (r?.[1] !== undefined && !m.ignoreRange) {
      start = Number(r[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    }
    const part = body.subarray(start);
    const drop = m.dropAfter;
    if (drop !== undefined) {
      m.dropAfter = undefined;
      res.write(part.subarray(0, drop), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(part);
  });
  await new Promise<void>((resolve) => m.server.listen(0, '127.0.0.1', resolve));
  m.base = `http://127.0.0.1:${(m.server.address() as AddressInfo).port}/files`;
  return m;
}

before(async () => {
  const pneumonia = await readFile(PNEUMONIA);
  files = { 'pneumoniamnist.npz': pneumonia, 'breastmnist.npz': await readFile(BREAST) };
  pneumoniaMd5 = md5(pneumonia);
  mirror = await startMirror();
});

after(async () => {
  mirror.server.closeAllConnections();
  await new Promise((resolve) => mirror.server.close(resolve));
});

beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'medsynth-cache-'));
  tempDirs.push(cache);
  mirror.requests = [];
  mirror.ignoreRange = false;
  mirror.dropAfter = undefined;
});

describe('downloadVerified', () => {
  test('the real file has the md5 the tests expect (and not the official one)', () => {
    assert.equal(pneumoniaMd5, '05c5b701061cc0b6e5199c92ea6a3ec6');
    assert.notEqual(pneumoniaMd5, MEDMNIST_INFO.pneumoniamnist.md5[28]);
  });

  test('good md5: file lands in the cache, a second call is a cache hit', async () => {
    const dest = join(cache, 'medmnist', 'pneumoniamnist.npz');
    const events: ProgressEvent[] = [];
    const url = `${mirror.base}/pneumoniamnist.npz`;
    const r = await downloadVerified({ url, dest, md5: pneumoniaMd5, onProgress: (e) => events.push(e) });
    assert.deepEqual(r, { path: dest, cached: false, bytes: 4158908, resumedFrom: 0, md5: pneumoniaMd5 });
    assert.equal(md5(await readFile(dest)), pneumoniaMd5);
    assert.deepEqual(await readdir(join(cache, 'medmnist')), ['pneumoniamnist.npz']);
    assert.equal(mirror.requests.length, 1);
    assert.equal(mirror.requests[0]?.range, undefined);
    const ticks = events.filter((e) => e.type === 'tick');
    assert.ok(ticks.length >= 2, `ticks: ${ticks.length}`);
    assert.deepEqual(ticks.at(-1), {
      type: 'tick',
      phase: 'download',
      done: 4158908,
      total: 4158908,
      unit: 'bytes',
    });
    assert.ok(events.some((e) => e.type === 'done' && e.phase === 'download'));

    const again = await downloadVerified({ url, dest, md5: pneumoniaMd5 });
    assert.equal(again.cached, true);
    assert.equal(mirror.requests.length, 1, 'no request on a cache hit');
  });

  test('bad md5: IntegrityError naming URL, expected and found; nothing left in the cache', async () => {
    const dest = join(cache, 'medmnist', 'pneumoniamnist.npz');
    const url = `${mirror.base}/pneumoniamnist.npz`;
    const wrong = 'f'.repeat(32);
    await assert.rejects(downloadVerified({ url, dest, md5: wrong }), (e: unknown) => {
      assert.ok(e instanceof IntegrityError);
      assert.equal(e.context.file, url);
      assert.equal(e.context.expected, wrong);
      assert.equal(e.context.found, pneumoniaMd5);
      assert.ok(
        e.message.includes(url) && e.message.includes(wrong) && e.message.includes(pneumoniaMd5),
        e.message,
      );
      return true;
    });
    assert.deepEqual(await readdir(join(cache, 'medmnist')), []);
  });

  test('resume: an existing .part is continued with a Range request and the result verifies', async () => {
    const dest = join(cache, 'medmnist', 'pneumoniamnist.npz');
    const K = 1_000_003;
    await mkdir(join(cache, 'medmnist'), { recursive: true });
    await writeFile(`${dest}.part`, files['pneumoniamnist.npz']?.subarray(0, K) ?? Buffer.alloc(0));
    const r = await downloadVerified({ url: `${mirror.base}/pneumoniamnist.npz`, dest, md5: pneumoniaMd5 });
    assert.deepEqual(
      mirror.requests.map((q) => q.range),
      [`bytes=${K}-`],
    );
    assert.equal(r.resumedFrom, K);
    assert.equal(r.bytes, 4158908);
    assert.equal(md5(await readFile(dest)), pneumoniaMd5);
    assert.equal(existsSync(`${dest}.part`), false);
  });

  test('a server that ignores Range (200) restarts from zero', async () => {
    mirror.ignoreRange = true;
    const dest = join(cache, 'pneumoniamnist.npz');
    await writeFile(`${dest}.part`, Buffer.alloc(5000, 7)); // garbage that must not survive
    const r = await downloadVerified({ url: `${mirror.base}/pneumoniamnist.npz`, dest, md5: pneumoniaMd5 });
    assert.equal(mirror.requests[0]?.range, 'bytes=5000-');
    assert.equal(r.resumedFrom, 0);
    assert.equal(md5(await readFile(dest)), pneumoniaMd5);
  });

  test('an interrupted transfer keeps the .part; the next call resumes it', async () => {
    const dest = join(cache, 'pneumoniamnist.npz');
    const url = `${mirror.base}/pneumoniamnist.npz`;
    mirror.dropAfter = 1_500_000;
    await assert.rejects(downloadVerified({ url, dest, md5: pneumoniaMd5 }), (e: unknown) => {
      assert.ok(e instanceof DownloadError, String(e));
      assert.equal(e.context.file, url);
      return true;
    });
    const partSize = (await stat(`${dest}.part`)).size;
    assert.ok(partSize > 0 && partSize <= 1_500_000, `part size ${partSize}`);
    assert.equal(existsSync(dest), false);
    const r = await downloadVerified({ url, dest, md5: pneumoniaMd5 });
    assert.equal(mirror.requests.at(-1)?.range, `bytes=${partSize}-`);
    assert.equal(r.resumedFrom, partSize);
    assert.equal(md5(await readFile(dest)), pneumoniaMd5);
  });

  test('a complete .part (server answers 416) is verified and kept', async () => {
    const dest = join(cache, 'pneumoniamnist.npz');
    await writeFile(`${dest}.part`, files['pneumoniamnist.npz'] ?? Buffer.alloc(0));
    const r = await downloadVerified({ url: `${mirror.base}/pneumoniamnist.npz`, dest, md5: pneumoniaMd5 });
    assert.deepEqual(
      mirror.requests.map((q) => q.range),
      ['bytes=4158908-'],
    );
    assert.equal(r.bytes, 4158908);
    assert.equal(r.resumedFrom, 4158908);
    assert.equal(md5(await readFile(dest)), pneumoniaMd5);
    assert.equal(existsSync(`${dest}.part`), false);
  });

  test('HTTP 404 is a DownloadError naming the URL and status; nothing left behind', async () => {
    const dest = join(cache, 'medmnist', 'missing.npz');
    const url = `${mirror.base}/missing.npz`;
    await assert.rejects(downloadVerified({ url, dest, md5: pneumoniaMd5 }), (e: unknown) => {
      assert.ok(e instanceof DownloadError, String(e));
      assert.equal(e.context.file, url);
      assert.equal(e.context.found, 'HTTP 404');
      assert.ok(e.message.includes(url) && e.message.includes('404'), e.message);
      return true;
    });
    assert.deepEqual(await readdir(join(cache, 'medmnist')), []);
  });

  test('unreachable server is a DownloadError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const url = `http://127.0.0.1:${port}/x.npz`;
    await assert.rejects(
      downloadVerified({ url, dest: join(cache, 'x.npz'), md5: pneumoniaMd5 }),
      (e: unknown) =>
        e instanceof DownloadError && e.message.includes(url) && /request failed/.test(e.message),
    );
  });

  test('a corrupt cached file is an IntegrityError telling the user to delete it (and is kept)', async () => {
    const dest = join(cache, 'pneumoniamnist.npz');
    await writeFile(dest, 'not the file');
    await assert.rejects(
      downloadVerified({ url: `${mirror.base}/pneumoniamnist.npz`, dest, md5: pneumoniaMd5 }),
      (e: unknown) => e instanceof IntegrityError && /delete it/.test(e.message) && e.context.file === dest,
    );
    assert.equal(mirror.requests.length, 0);
    assert.equal(await readFile(dest, 'utf8'), 'not the file');
  });

  test('an aborted signal stops before any request; a malformed md5 is a ConfigError', async () => {
    const ac = new AbortController();
    ac.abort();
    const url = `${mirror.base}/pneumoniamnist.npz`;
    await assert.rejects(
      downloadVerified({ url, dest: join(cache, 'a.npz'), md5: pneumoniaMd5, signal: ac.signal }),
      (e: unknown) => e instanceof Error && e.name === 'AbortError',
    );
    await assert.rejects(downloadVerified({ url, dest: join(cache, 'a.npz'), md5: 'abc' }), ConfigError);
    assert.equal(mirror.requests.length, 0);
  });
});

describe('loadMedmnist', () => {
  test('downloads from a mirror (md5 override), caches, and loads with the official class names', async () => {
    const opts = { cacheDir: cache, medmnistBaseUrl: mirror.base, medmnistMd5: pneumoniaMd5 };
    const l = await loadMedmnist('medmnist:pneumoniamnist', opts);
    assert.deepEqual(
      mirror.requests.map((r) => r.url),
      ['/files/pneumoniamnist.npz'],
    );
    const cached = join(cache, 'medmnist', 'pneumoniamnist.npz');
    assert.equal(l.location, cached);
    assert.equal(l.format, 'npz');
    assert.deepEqual(l.classNames, ['normal', 'pneumonia']);
    assert.equal(l.samples.length, 5856);
    assert.equal(l.samples.filter((s) => s.split === 'test' && s.label === 1).length, 390);
    assert.match(
      l.notes[0] ?? '',
      /^medmnist:pneumoniamnist@28: downloaded from .*MD5 given by medmnistMd5, not the official one 05c5b7/,
    );
    const im = await l.read(0);
    assert.equal(im.data[0], 72);

    const again = await loadMedmnist('medmnist:pneumoniamnist@28', opts);
    assert.equal(mirror.requests.length, 1, 'cache hit');
    assert.match(again.notes[0] ?? '', /cached/);
  });

  test('the official md5 rejects the re-saved file; the cache stays empty', async () => {
    await assert.rejects(
      loadMedmnist('medmnist:pneumoniamnist', { cacheDir: cache, medmnistBaseUrl: mirror.base }),
      (e: unknown) =>
        e instanceof IntegrityError &&
        e.context.expected === '28209eda62fecd6e6a2d98b1501bb15f' &&
        e.context.found === pneumoniaMd5,
    );
    assert.deepEqual(await readdir(join(cache, 'medmnist')), []);
  });

  test('env MEDSYNTH_MEDMNIST_URL and MEDSYNTH_CACHE are used when options are absent', async () => {
    const saved = [process.env.MEDSYNTH_MEDMNIST_URL, process.env.MEDSYNTH_CACHE] as const;
    try {
      process.env.MEDSYNTH_MEDMNIST_URL = mirror.base;
      process.env.MEDSYNTH_CACHE = cache;
      const l = await loadMedmnist('medmnist:breastmnist', {
        medmnistMd5: md5(files['breastmnist.npz'] ?? Buffer.alloc(0)),
      });
      assert.equal(l.location, join(cache, 'medmnist', 'breastmnist.npz'));
      assert.deepEqual(l.classNames, ['malignant', 'normal, benign']);
      assert.equal(l.samples.length, 780);
    } finally {
      restoreEnv('MEDSYNTH_MEDMNIST_URL', saved[0]);
      restoreEnv('MEDSYNTH_CACHE', saved[1]);
    }
  });

  test('MedMNIST+ sizes use the _<size> file name', async () => {
    await assert.rejects(
      loadMedmnist('medmnist:pneumoniamnist@64', { cacheDir: cache, medmnistBaseUrl: mirror.base }),
      (e: unknown) =>
        e instanceof DownloadError &&
        e.message.includes('/files/pneumoniamnist_64.npz') &&
        /404/.test(e.message),
    );
    assert.deepEqual(
      mirror.requests.map((r) => r.url),
      ['/files/pneumoniamnist_64.npz'],
    );
  });

  test('multi-label subsets are refused before downloading', async () => {
    await assert.rejects(
      loadMedmnist('medmnist:chestmnist', { cacheDir: cache, medmnistBaseUrl: mirror.base }),
      (e: unknown) => e instanceof DatasetError && /multi-label is not supported/.test(e.message),
    );
    assert.equal(mirror.requests.length, 0);
  });
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

after(async () => {
  for (const d of tempDirs) await rm(d, { recursive: true, force: true });
});
