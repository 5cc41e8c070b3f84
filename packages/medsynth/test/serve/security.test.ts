// Security of `medsynth serve`, over real HTTP on 127.0.0.1 (the whole app: browsing, live generation and the
// reader study): only files under the served folder come out (`..`, percent-encoded and double-encoded `..`,
// encoded slashes and backslashes, absolute paths, NUL, hidden files and symbolic links that lead out all end
// in 404); nothing but GET/HEAD (and the reader's answers, from its own pages only); requests for another
// host name refused; every string from run and study files escaped; strict security headers; and a port that
// is taken is a clear error, from the library and from the CLI (exit 2).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { ConfigError } from '../../src/runtime/errors.js';
import { APP_CSP, createServer, type RunningServer, startServer } from '../../src/serve/server.js';
import { SAMPLE_STUDY } from './browse-fixture.js';

const SECRET = 'TOP SECRET 1234';
const XSS = '<script>alert(1)</script>';
const XSS_ATTR = 'x" onmouseover="alert(2)';
const XSS_DIR = '<img src=x onerror=alert(3)>';
const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

let base: string;
let root: string;
let server: RunningServer;

/** A raw HTTP GET (or other method): the path is sent exactly as written, never normalised by a client. */
function raw(
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method: options.method ?? 'GET',
        // A fresh connection each time: one request's unread body never bleeds into the next.
        agent: false,
        headers: {
          ...(options.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(options.body)) }
            : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** A run folder written by hand with hostile names everywhere a page shows a string. */
async function hostileRun(dir: string): Promise<void> {
  await mkdir(join(dir, 'samples'), { recursive: true });
  await writeFile(
    join(dir, 'options.json'),
    JSON.stringify({
      model: XSS,
      data: { source: `/data/${XSS_DIR}.npz` },
      size: 28,
      kimg: 1,
      gridPerClass: 2,
      name: XSS,
    }),
  );
  await writeFile(
    join(dir, 'run.json'),
    JSON.stringify({ started: XSS, data: { classNames: [XSS, XSS_ATTR], trainCounts: [1, 2], source: XSS } }),
  );
  const ticks = [1, 2].map((tick) => ({
    tick,
    step: tick * 10,
    kimg: tick * 0.5,
    dLoss: 1,
    gLoss: 2,
    augmentP: 0,
    note: XSS,
  }));
  await writeFile(join(dir, 'stats.jsonl'), ticks.map((t) => `${JSON.stringify(t)}\n`).join(''));
  const png = await sharp({ create: { width: 62, height: 62, channels: 3, background: '#404040' } })
    .png()
    .toBuffer();
  await writeFile(join(dir, 'samples', 'step-0000010.png'), png);
  await writeFile(join(dir, 'samples', 'step-0000020.png'), png);
  await writeFile(join(dir, 'samples', 'latest.png'), png);
  await writeFile(
    join(dir, 'result.json'),
    JSON.stringify({
      runDir: dir,
      checkpoint: XSS,
      step: 20,
      kimg: 1,
      seconds: 3,
      imagesPerSecond: 300,
      stoppedBy: XSS,
    }),
  );
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'medsynth-serve-security-'));
  root = join(base, 'root');
  const outside = join(base, 'outside');
  await mkdir(join(outside, 'run'), { recursive: true });
  await mkdir(join(root, 'runs'), { recursive: true });
  await writeFile(join(outside, 'secret.txt'), SECRET);
  await hostileRun(join(outside, 'run'));
  await writeFile(join(outside, 'run', 'secret.txt'), SECRET);
  await writeFile(join(root, 'inside.txt'), 'hello');
  await writeFile(join(root, '.env'), SECRET);
  await symlink(join(outside, 'secret.txt'), join(root, 'link-out-file'));
  await symlink(outside, join(root, 'link-out-dir'));
  await symlink('../outside/secret.txt', join(root, 'relative-link-out'));
  await symlink(join(root, 'inside.txt'), join(root, 'link-in'));
  await symlink(join(outside, 'run'), join(root, 'runs', 'link-run'));
  await hostileRun(join(root, 'runs', XSS_DIR));
  // A study whose class names, verdicts and generator name are hostile.
  const study = join(root, 'studies', 'evil');
  await cp(SAMPLE_STUDY, study, { recursive: true });
  const results = JSON.parse(await readFile(join(study, 'results.json'), 'utf8'));
  results.classNames = [XSS, XSS_ATTR];
  results.verdicts = results.verdicts.map((v: { text: string }) => ({ ...v, text: `${v.text} ${XSS}` }));
  await writeFile(join(study, 'results.json'), JSON.stringify(results));
  server = await startServer({ dir: root, port: 0 });
});

after(async () => {
  await server?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('only files under the served folder', () => {
  const refused = () => [
    '/files/../outside/secret.txt',
    '/files/../../outside/secret.txt',
    '/files/..%2foutside%2fsecret.txt',
    '/files/%2e%2e/outside/secret.txt',
    '/files/%2E%2E%2Foutside%2Fsecret.txt',
    '/files/.%2e/outside/secret.txt',
    '/files/%252e%252e%252foutside%252fsecret.txt',
    '/files/%252E%252E/outside/secret.txt',
    '/files/..%5coutside%5csecret.txt',
    '/files/..\\outside\\secret.txt',
    `/files/${encodeURIComponent(join(base, 'outside', 'secret.txt'))}`,
    `/files/${join(base, 'outside', 'secret.txt')}`,
    `/files//${join(base, 'outside', 'secret.txt')}`,
    `/files/inside.txt%00../../outside/secret.txt`,
    '/files/link-out-file',
    '/files/relative-link-out',
    '/files/link-out-dir/secret.txt',
    '/files/link-out-dir/run/secret.txt',
    '/files/runs/link-run/secret.txt',
    '/files/runs/link-run/options.json',
    '/files/.env',
    '/files/%2eenv',
    '/files/',
    '/runs/..%2f..%2foutside%2frun',
    '/runs/runs/link-run',
    '/api/runs/runs/link-run',
    '/runs/%2e%2e/outside/run',
    '/evaluations/..%2F..%2Foutside',
    '/studies/%2e%2e%2f%2e%2e',
    '/assets/..%2f..%2fpackage.json',
    '/assets/%2e%2e%2fserver.ts',
    '/evaluations/x/-/image/..%2f..%2fsecret/0.png',
  ];

  test('`..`, encoded, double-encoded, backslashed, absolute, NUL, hidden and linked-out paths: 404', async () => {
    for (const path of refused()) {
      const r = await raw(path);
      assert.ok(r.status === 404 || r.status === 400, `${path} → ${r.status}`);
      assert.ok(!r.body.includes(SECRET), `${path} leaked the secret`);
    }
  });

  test('files inside (and a link that stays inside) are served', async () => {
    const r = await raw('/files/inside.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello');
    assert.equal((await raw('/files/link-in')).body, 'hello');
  });

  test('a run reached through a link that leads out is not indexed', async () => {
    const snap = JSON.parse((await raw('/api/index')).body);
    assert.ok(!snap.runs.some((r: { rel: string }) => r.rel.includes('link-run')));
    assert.ok(snap.runs.some((r: { rel: string }) => r.rel === `runs/${XSS_DIR}`));
  });
});

describe('no write endpoints', () => {
  test('POST, PUT, DELETE, PATCH and OPTIONS are refused on every part’s addresses (405, Allow: GET, HEAD)', async () => {
    const urls = [
      '/',
      '/files/inside.txt',
      '/api/index',
      '/runs/x',
      '/studies/evil',
      '/assets/medsynth.css',
      '/generate',
      '/api/generate/x/-/generator.json',
      '/reader/',
    ];
    for (const url of urls)
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const r = await raw(url, { method, headers: { 'content-type': 'application/json' }, body: '{}' });
        assert.equal(r.status, 405, `${method} ${url} → ${r.status}`);
        assert.equal(r.headers['allow'], 'GET, HEAD');
      }
    assert.equal(await readFile(join(root, 'inside.txt'), 'utf8'), 'hello');
  });

  test('the reader study’s answers are accepted from its own pages only', async () => {
    const post = (headers: Record<string, string>) =>
      raw('/api/reader/x/answer', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: '{}',
      });
    assert.equal((await post({ origin: 'http://evil.example' })).status, 403);
    assert.equal((await post({ 'sec-fetch-site': 'cross-site' })).status, 403);
    // From its own origin the request reaches the reader study (which judges its body): not refused here.
    const own = await post({ origin: `http://127.0.0.1:${server.port}` });
    assert.notEqual(own.status, 405);
    assert.notEqual(own.status, 403);
  });

  test('a request for another host name (DNS rebinding) is refused', async () => {
    assert.equal((await raw('/', { headers: { host: 'evil.example' } })).status, 403);
    assert.equal((await raw('/', { headers: { host: `evil.example:${server.port}` } })).status, 403);
    assert.equal((await raw('/', { headers: { host: `localhost:${server.port}` } })).status, 200);
    assert.equal((await raw('/', { headers: { host: `[::1]:${server.port}` } })).status, 200);
  });
});

describe('every string from run and study files is escaped', () => {
  test('a run, its class names and its folder name; a study’s class names and verdicts', async () => {
    const pages = [
      '/',
      `/runs/runs/${encodeURIComponent(XSS_DIR)}`,
      '/studies/studies/evil',
      `/api/runs/runs/${encodeURIComponent(XSS_DIR)}`,
    ];
    for (const path of pages) {
      const r = await raw(path);
      assert.equal(r.status, 200, path);
      if (path.startsWith('/api/')) {
        assert.match(r.headers['content-type'] as string, /^application\/json/);
        continue;
      }
      for (const bad of [XSS, XSS_DIR, XSS_ATTR, 'onmouseover="alert'])
        assert.ok(!r.body.includes(bad), `${path} contains ${bad} unescaped`);
      assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/.test(r.body), `${path} has an inline script`);
    }
    const run = await raw(`/runs/runs/${encodeURIComponent(XSS_DIR)}`);
    assert.ok(run.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the class name is shown, escaped');
    assert.ok(run.body.includes('x&quot; onmouseover=&quot;alert(2)'), 'an attribute breakout is escaped');
    assert.ok(run.body.includes('&lt;img src=x onerror=alert(3)&gt;'), 'the folder name is shown, escaped');
    const study = await raw('/studies/studies/evil');
    assert.ok(study.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  test('security headers: strict CSP (no inline script), nosniff, no-referrer, no framing; raw files sandboxed', async () => {
    for (const path of ['/', '/runs/nothing', '/api/index', '/assets/run.js']) {
      const r = await raw(path);
      assert.equal(r.headers['content-security-policy'], APP_CSP, path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['referrer-policy'], 'no-referrer');
      assert.equal(r.headers['x-frame-options'], 'DENY');
    }
    const scriptSrc = /script-src ([^;]*)/.exec(APP_CSP)![1]!;
    assert.equal(scriptSrc, "'self' 'wasm-unsafe-eval'");
    assert.match(APP_CSP, /frame-ancestors 'none'/);
    const file = await raw('/files/inside.txt');
    assert.match(file.headers['content-security-policy'] as string, /^sandbox; default-src 'none'/);
    await writeFile(join(root, 'page.html'), '<script>alert(1)</script>');
    const html = await raw('/files/page.html');
    assert.match(
      html.headers['content-security-policy'] as string,
      /^sandbox;/,
      'an HTML file runs no script',
    );
    await writeFile(join(root, 'code.js'), 'alert(1)');
    assert.equal((await raw('/files/code.js')).headers['content-type'], 'application/octet-stream');
  });
});

describe('clear errors', () => {
  test('a port that is taken: a ConfigError naming --port (library) and exit 2 (CLI)', async () => {
    await assert.rejects(startServer({ dir: root, port: server.port, parts: [] }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, new RegExp(`port ${server.port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(e.message, /--port/);
      return true;
    });
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', entry, 'serve', root, '--port', String(server.port)],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /already in use/);
    assert.match(r.stderr, /--port/);
  });

  test('a folder that does not exist, or a file: ConfigError', async () => {
    await assert.rejects(createServer({ dir: join(base, 'nowhere'), parts: [] }), ConfigError);
    await assert.rejects(createServer({ dir: join(root, 'inside.txt'), parts: [] }), ConfigError);
  });

  test('the CLI prints the URL, serves, and stops cleanly on Ctrl-C (SIGINT)', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', entry, 'serve', root, '--port', '0', '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code} before printing its URL`)));
      });
      const info = JSON.parse(line);
      assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.equal(info.runs, 3, 'the hand-written run and the sample study’s two');
      assert.equal(info.studies, 1);
      const res = await fetch(info.url);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /Runs, evaluations and studies/);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
