import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import {
  type ArtifactStore,
  artifactKey,
  openArtifactStore,
  parseArtifactLocation,
} from '../../src/queue/artifacts.js';
import { ArtifactError, ConfigError } from '../../src/runtime/errors.js';
import { FakeS3, type FakeS3Request } from '../helpers/fake-s3.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-artifacts-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
const fresh = (name: string) => join(dir, `${name}-${n++}`);

/**
 * A nested tree with binary files: random bytes, every byte value, an empty file, a name with a space and
 * non-ASCII letters, a top-level manifest.json (as exported synthetic sets have) and an empty folder.
 */
async function makeTree(root: string, seed = 0): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>([
    ['weights/g.bin', randomBytes(200_000 + seed)],
    ['weights/ema/g.bin', randomBytes(70_001)],
    ['bytes.bin', Buffer.from(Array.from({ length: 256 }, (_, i) => (i + seed) & 255))],
    ['empty.bin', Buffer.alloc(0)],
    ['grids/ü ñ #1.png', randomBytes(3_000)],
    ['manifest.json', Buffer.from(JSON.stringify({ classNames: ['normal', 'pneumonia'], seed }))],
  ]);
  for (const [p, data] of files) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), data);
  }
  await mkdir(join(root, 'empty-folder'), { recursive: true });
  return files;
}

/** Every file under `root`, by posix relative path. */
async function readTree(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(root, { recursive: true, withFileTypes: true }))
    if (e.isFile()) {
      const abs = join(e.parentPath, e.name);
      out.set(relative(root, abs).split('\\').join('/'), await readFile(abs));
    }
  return out;
}

function assertSameTree(got: Map<string, Buffer>, want: Map<string, Buffer>): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [p, data] of want) assert.ok(got.get(p)!.equals(data), `${p} differs`);
}

async function rejectsWith(
  p: Promise<unknown>,
  reason: ArtifactError['reason'],
  mentions: readonly string[],
): Promise<ArtifactError> {
  let caught: unknown;
  await assert.rejects(p, (e) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof ArtifactError, `expected an ArtifactError, got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.equal(caught.exitCode, 1);
  for (const m of mentions)
    assert.ok(caught.message.includes(m), `"${caught.message}" does not mention ${m}`);
  return caught;
}

/** Flips one bit of byte `at` of `data`. */
function flipped(data: Uint8Array, at: number): Buffer {
  const out = Buffer.from(data);
  out[at] = out[at]! ^ 0x01;
  return out;
}

describe('artifactKey', () => {
  test('sha256 of JSON.stringify(parts) under the namespace; deterministic, and different parts differ', () => {
    const parts = [{ family: 'dcgan', seed: 3, data: { size: 28 } }, 'train'];
    const key = artifactKey('generator', ...parts);
    assert.match(key, /^generator\/[0-9a-f]{64}$/);
    assert.equal(
      key,
      `generator/${createHash('sha256').update('[{"family":"dcgan","seed":3,"data":{"size":28}},"train"]').digest('hex')}`,
    );
    assert.equal(artifactKey('generator', { family: 'dcgan', seed: 3, data: { size: 28 } }, 'train'), key);
    const others = [
      artifactKey('generator', { family: 'dcgan', seed: 4, data: { size: 28 } }, 'train'),
      artifactKey('generator', 'train', { family: 'dcgan', seed: 3, data: { size: 28 } }),
      artifactKey('pool', ...parts),
      artifactKey('generator', parts),
      artifactKey('generator'),
      artifactKey('generator', '1'),
      artifactKey('generator', 1),
    ];
    assert.equal(new Set([key, ...others]).size, others.length + 1);
    // Dates go through toJSON; undefined object properties are dropped as JSON drops them.
    assert.equal(
      artifactKey('x', { at: new Date(0), skip: undefined }),
      artifactKey('x', { at: '1970-01-01T00:00:00.000Z' }),
    );
  });

  test('refuses namespaces outside [a-z0-9-]+ and values JSON would alter', () => {
    for (const ns of ['', 'Gen', 'a/b', 'a_b', 'ü', '../x'])
      assert.throws(() => artifactKey(ns, 1), RangeError, ns);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      undefined,
      () => 1,
      1n,
      Symbol('s'),
      [1, undefined],
      { a: Number.NaN },
      cyclic,
    ])
      assert.throws(() => artifactKey('x', bad), RangeError, String(typeof bad));
  });
});

describe('artifact locations', () => {
  test('folders, file URLs and s3:// parse; anything else is a ConfigError', () => {
    assert.deepEqual(parseArtifactLocation('/a/b'), { kind: 'folder', root: '/a/b' });
    assert.deepEqual(parseArtifactLocation('file:///a/b%20c'), { kind: 'folder', root: '/a/b c' });
    assert.deepEqual(parseArtifactLocation('rel'), { kind: 'folder', root: join(process.cwd(), 'rel') });
    assert.deepEqual(parseArtifactLocation('s3://my-bucket'), {
      kind: 's3',
      bucket: 'my-bucket',
      prefix: '',
    });
    assert.deepEqual(parseArtifactLocation('s3://my-bucket/a/b/'), {
      kind: 's3',
      bucket: 'my-bucket',
      prefix: 'a/b',
    });
    for (const bad of [
      '',
      'redis://localhost:6379',
      's3://My_Bucket/x',
      's3://b',
      's3://bucket/a/../b',
      'file://host/x',
    ])
      assert.throws(
        () => parseArtifactLocation(bad),
        (e) => e instanceof ConfigError && e.context.field === 'location' && e.exitCode === 2,
        bad,
      );
    assert.throws(() => openArtifactStore('s3://bucket', { s3: { endpoint: 'not a url' } }), ConfigError);
    assert.throws(() => openArtifactStore('s3://bucket', { s3: { partBytes: 1024 } }), ConfigError);
  });
});

const KEY_A = artifactKey('generator', 'a');
const BAD_KEYS = [
  'generator/xyz',
  `Generator/${'0'.repeat(64)}`,
  `gen/${'0'.repeat(63)}`,
  `../${'0'.repeat(64)}`,
  '0'.repeat(64),
  `a/b/${'0'.repeat(64)}`,
];

/** What the shared tests need to know about a store. */
interface Backend {
  readonly name: string;
  open(): ArtifactStore;
  /** Replaces the stored bytes of `path` in artifact `key` (a dir artifact's file, or DATA for a file). */
  damage(key: string, path: string | null, f: (data: Buffer) => Buffer): Promise<string>;
  /** The file/object that holds `path` (null: a one-file artifact's data), as errors name it. */
  where(key: string, path: string | null): Promise<string>;
}

function sharedTests(backend: () => Backend): void {
  test('putDir/getDir round trip of a nested tree with binary files; a second putDir stores nothing', async () => {
    const b = backend();
    const store = b.open();
    try {
      const src = fresh('src');
      const want = await makeTree(src);
      const key = artifactKey('generator', { test: 'round-trip', backend: b.name });
      assert.equal(await store.has(key), false);
      assert.equal(await store.putDir(key, src), true);
      assert.equal(await store.has(key), true);
      const out = join(fresh('out'), 'nested', 'run');
      await store.getDir(key, out);
      assertSameTree(await readTree(out), want);
      assert.deepEqual(await readdir(dirname(out)), ['run'], 'no temporary folder is left beside the copy');
      // Content-addressed: the key is complete, so the folder is not even read again.
      assert.equal(await store.putDir(key, fresh('does-not-exist')), false);
      assert.equal(await store.putDir(key, src), false);
    } finally {
      await store.close();
    }
  });

  test('putFile/getFile round trip, idempotent; getDir of a file artifact and getFile of a folder are refused', async () => {
    const b = backend();
    const store = b.open();
    try {
      const key = artifactKey('pool', { test: 'file', backend: b.name });
      const data = randomBytes(123_457);
      assert.equal(await store.putFile(key, data), true);
      assert.equal(await store.putFile(key, randomBytes(10)), false);
      assert.ok(Buffer.from(await store.getFile(key)).equals(data));
      const empty = artifactKey('pool', { test: 'empty', backend: b.name });
      assert.equal(await store.putFile(empty, new Uint8Array(0)), true);
      assert.equal((await store.getFile(empty)).byteLength, 0);
      await rejectsWith(store.getDir(key, fresh('x')), 'refused', [key, 'getFile']);
      const dirKey = artifactKey('generator', { test: 'file-vs-dir', backend: b.name });
      const src = fresh('src');
      await makeTree(src);
      await store.putDir(dirKey, src);
      await rejectsWith(store.getFile(dirKey), 'refused', [dirKey, 'getDir']);
    } finally {
      await store.close();
    }
  });

  test('a missing artifact: has false, getDir/getFile throw an ArtifactError naming the key', async () => {
    const store = backend().open();
    try {
      const key = artifactKey('generator', 'never stored');
      assert.equal(await store.has(key), false);
      const out = fresh('out');
      await rejectsWith(store.getDir(key, out), 'missing', [key]);
      await rejectsWith(store.getFile(key), 'missing', [key]);
      await assert.rejects(stat(out), { code: 'ENOENT' });
    } finally {
      await store.close();
    }
  });

  test('a damaged file (one bit flipped) or a truncated one: getDir/getFile name the key, the file, both sizes or hashes', async () => {
    const b = backend();
    const store = b.open();
    try {
      const src = fresh('src');
      const files = await makeTree(src);
      const key = artifactKey('generator', { test: 'damage', backend: b.name });
      await store.putDir(key, src);
      const file = await b.damage(key, 'weights/ema/g.bin', (d) => flipped(d, 12_345));
      const wantSha = createHash('sha256').update(files.get('weights/ema/g.bin')!).digest('hex');
      const foundSha = createHash('sha256')
        .update(flipped(files.get('weights/ema/g.bin')!, 12_345))
        .digest('hex');
      const out = fresh('out');
      const e = await rejectsWith(store.getDir(key, out), 'damaged', [
        key,
        'weights/ema/g.bin',
        wantSha,
        foundSha,
      ]);
      assert.equal(e.context.file, file);
      await assert.rejects(stat(out), { code: 'ENOENT' }, 'nothing is left at the destination');
      assert.deepEqual(
        (await readdir(dirname(out))).filter((x) => x.startsWith(`.${out.split('/').pop()!}.tmp-`)),
        [],
        'the temporary folder is removed',
      );

      const fileKey = artifactKey('pool', { test: 'damage', backend: b.name });
      await store.putFile(fileKey, randomBytes(5_000));
      const where = await b.damage(fileKey, null, (d) => d.subarray(0, 4_999));
      const e2 = await rejectsWith(store.getFile(fileKey), 'damaged', [fileKey, '5000 bytes', '4999 bytes']);
      assert.equal(e2.context.file, where);
    } finally {
      await store.close();
    }
  });

  test('two writers racing on one key both resolve; one copy remains and reads back whole', async () => {
    const b = backend();
    const one = b.open();
    const two = b.open();
    try {
      const key = artifactKey('generator', { test: 'race', backend: b.name });
      // The two writers made different bytes for one key (a retried job): readers must get one of them whole.
      const srcA = fresh('src');
      const srcB = fresh('src');
      const treeA = await makeTree(srcA, 1);
      const treeB = await makeTree(srcB, 2);
      // B has more to copy, so A is done first and B meets a complete artifact when it comes to store its own.
      const extra = randomBytes(6 * 1024 * 1024);
      await writeFile(join(srcB, 'weights', 'extra.bin'), extra);
      treeB.set('weights/extra.bin', extra);
      const results = await Promise.all([one.putDir(key, srcA), two.putDir(key, srcB)]);
      assert.deepEqual(
        [...results].sort(),
        [false, true],
        `exactly one writer stores the artifact: ${results.join(', ')}`,
      );
      const out = fresh('out');
      await one.getDir(key, out);
      const got = await readTree(out);
      assertSameTree(got, results[0] ? treeA : treeB);
    } finally {
      await one.close();
      await two.close();
    }
  });

  test('symlinks are refused by name, and nothing is stored', async () => {
    const store = backend().open();
    try {
      const src = fresh('src');
      await makeTree(src);
      await symlink(join(src, 'bytes.bin'), join(src, 'weights', 'link.bin'));
      const key = artifactKey('generator', 'symlink');
      await rejectsWith(store.putDir(key, src), 'refused', [
        key,
        join(src, 'weights', 'link.bin'),
        'symbolic link',
      ]);
      assert.equal(await store.has(key), false);
      await rejectsWith(store.putDir(key, join(src, 'bytes.bin')), 'refused', ['not a folder']);
    } finally {
      await store.close();
    }
  });

  test('bad keys are a programming error (RangeError) in every method', async () => {
    const store = backend().open();
    try {
      for (const key of BAD_KEYS) {
        await assert.rejects(store.has(key), RangeError, key);
        await assert.rejects(store.putDir(key, dir), RangeError, key);
        await assert.rejects(store.getDir(key, fresh('x')), RangeError, key);
        await assert.rejects(store.putFile(key, new Uint8Array(1)), RangeError, key);
        await assert.rejects(store.getFile(key), RangeError, key);
        assert.throws(() => store.localPath(key), RangeError, key);
      }
    } finally {
      await store.close();
    }
  });

  test('getDir onto a regular file is refused, naming the destination', async () => {
    const store = backend().open();
    try {
      const src = fresh('src');
      await makeTree(src);
      const key = artifactKey('generator', 'onto-file');
      await store.putDir(key, src);
      const out = fresh('out');
      await writeFile(out, 'a file, not a folder');
      await rejectsWith(store.getDir(key, out), 'refused', [key, out]);
      assert.equal(await readFile(out, 'utf8'), 'a file, not a folder');
    } finally {
      await store.close();
    }
  });

  test('getDir into a folder that already holds files moves the artifact in and keeps the rest', async () => {
    const store = backend().open();
    try {
      const src = fresh('src');
      const want = await makeTree(src);
      const key = artifactKey('generator', 'merge');
      await store.putDir(key, src);
      const out = fresh('out');
      await mkdir(join(out, 'weights'), { recursive: true });
      await writeFile(join(out, 'mine.txt'), 'keep me');
      await writeFile(join(out, 'bytes.bin'), 'stale copy');
      await store.getDir(key, out);
      const got = await readTree(out);
      assert.equal(got.get('mine.txt')?.toString(), 'keep me');
      got.delete('mine.txt');
      assertSameTree(got, want);
    } finally {
      await store.close();
    }
  });
}

describe('folder artifact store', () => {
  const backendFor = (root: string): Backend => ({
    name: 'folder',
    open: () => openArtifactStore(root),
    where: async (key, path) =>
      path === null ? join(root, key, 'data') : join(root, key, 'files', ...path.split('/')),
    async damage(key, path, f) {
      const file = await this.where(key, path);
      await writeFile(file, f(await readFile(file)));
      return file;
    },
  });
  let root: string;
  before(async () => {
    root = fresh('store');
  });
  sharedTests(() => backendFor(root));

  test('layout: <root>/<key>/files + manifest.json written last-valid; location is a file URL; localPath serves in place', async () => {
    const store = openArtifactStore(root);
    try {
      assert.equal(store.location, pathToFileURL(root).href);
      const src = fresh('src');
      const want = await makeTree(src);
      const key = artifactKey('generator', 'layout');
      assert.equal(store.localPath(key), null);
      await store.putDir(key, src);
      assert.deepEqual((await readdir(join(root, key))).sort(), ['files', 'manifest.json']);
      const manifest = JSON.parse(await readFile(join(root, key, 'manifest.json'), 'utf8')) as {
        format: string;
        key: string;
        kind: string;
        files: { path: string; bytes: number; sha256: string }[];
      };
      assert.equal(manifest.format, 'medsynth-artifact/1');
      assert.equal(manifest.key, key);
      assert.equal(manifest.kind, 'dir');
      assert.deepEqual(
        manifest.files.map((f) => [f.path, f.bytes, f.sha256]),
        [...want.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([p, d]) => [p, d.byteLength, createHash('sha256').update(d).digest('hex')]),
      );
      assert.equal(store.localPath(key), join(root, key, 'files'));
      assertSameTree(await readTree(store.localPath(key)!), want);
      // The same store through a file URL and through a relative path.
      const again = openArtifactStore(pathToFileURL(root).href);
      assert.equal(await again.has(key), true);
      await again.close();
      const rel = openArtifactStore(relative(process.cwd(), root));
      assert.equal(rel.location, store.location);
      await rel.close();
      const fileKey = artifactKey('pool', 'layout');
      await store.putFile(fileKey, new Uint8Array([1, 2, 3]));
      assert.deepEqual((await readdir(join(root, fileKey))).sort(), ['data', 'manifest.json']);
      assert.equal(store.localPath(fileKey), null);
    } finally {
      await store.close();
    }
  });

  test('a second putDir does not rewrite anything (mtimes unchanged, no temporary folder)', async () => {
    const store = openArtifactStore(root);
    try {
      const src = fresh('src');
      await makeTree(src);
      const key = artifactKey('generator', 'mtime');
      assert.equal(await store.putDir(key, src), true);
      const old = new Date(Date.now() - 3_600_000);
      for (const p of [join(root, key, 'manifest.json'), join(root, key, 'files', 'bytes.bin')])
        await utimes(p, old, old);
      const before = await Promise.all(
        ['manifest.json', 'files/bytes.bin'].map(async (p) => (await stat(join(root, key, p))).mtimeMs),
      );
      await writeFile(join(src, 'bytes.bin'), 'changed');
      assert.equal(await store.putDir(key, src), false);
      const afterwards = await Promise.all(
        ['manifest.json', 'files/bytes.bin'].map(async (p) => (await stat(join(root, key, p))).mtimeMs),
      );
      assert.deepEqual(afterwards, before);
      assert.deepEqual(
        (await readdir(root)).filter((x) => x.startsWith('.tmp-')),
        [],
      );
    } finally {
      await store.close();
    }
  });

  test('half-written artifacts are not complete: a .tmp-* leftover, a folder without manifest, a bad manifest', async () => {
    const r = fresh('store');
    const src = fresh('src');
    const want = await makeTree(src);
    const key = artifactKey('generator', 'half');
    // A writer killed before its rename leaves only a temporary folder.
    await mkdir(join(r, '.tmp-0123456789abcdef', 'files'), { recursive: true });
    await writeFile(join(r, '.tmp-0123456789abcdef', 'files', 'bytes.bin'), 'x');
    const store = openArtifactStore(r);
    try {
      assert.equal(await store.has(key), false);
      // Files at the key's place but no manifest (copied by hand, or an unfinished copy).
      await mkdir(join(r, key, 'files'), { recursive: true });
      await writeFile(join(r, key, 'files', 'bytes.bin'), 'partial');
      assert.equal(await store.has(key), false);
      assert.equal(store.localPath(key), null);
      await rejectsWith(store.getDir(key, fresh('out')), 'missing', [key]);
      // A manifest cut short.
      const full = JSON.stringify({ format: 'medsynth-artifact/1', key, kind: 'dir', files: [] });
      await writeFile(join(r, key, 'manifest.json'), full.slice(0, 40));
      assert.equal(await store.has(key), false);
      await rejectsWith(store.getDir(key, fresh('out')), 'damaged', [key, 'manifest']);
      // Another key's manifest.
      const other = artifactKey('generator', 'other');
      await writeFile(
        join(r, key, 'manifest.json'),
        JSON.stringify({
          format: 'medsynth-artifact/1',
          key: other,
          kind: 'dir',
          files: [],
          createdAt: new Date().toISOString(),
        }),
      );
      assert.equal(await store.has(key), false);
      // A writer replaces the leftover.
      assert.equal(await store.putDir(key, src), true);
      const out = fresh('out');
      await store.getDir(key, out);
      assertSameTree(await readTree(out), want);
      assert.deepEqual(
        (await readdir(r)).filter((x) => x.startsWith('.tmp-')),
        ['.tmp-0123456789abcdef'],
        'only the (recent) leftover of the killed writer remains',
      );
    } finally {
      await store.close();
    }
  });

  test('opening removes temporary folders older than an hour and keeps recent ones', async () => {
    const r = fresh('store');
    for (const name of ['.tmp-aaaaaaaaaaaaaaaa', '.tmp-bbbbbbbbbbbbbbbb']) {
      await mkdir(join(r, name, 'files'), { recursive: true });
      await writeFile(join(r, name, 'files', 'x'), 'x');
    }
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(r, '.tmp-aaaaaaaaaaaaaaaa'), old, old);
    const store = openArtifactStore(r);
    await store.has(KEY_A); // waits for the clean-up
    await store.close();
    assert.deepEqual((await readdir(r)).sort(), ['.tmp-bbbbbbbbbbbbbbbb']);
  });

  test('a stored file that went missing is damage, named by path', async () => {
    const store = openArtifactStore(root);
    try {
      const src = fresh('src');
      await makeTree(src);
      const key = artifactKey('generator', 'gone');
      await store.putDir(key, src);
      await rm(join(root, key, 'files', 'weights', 'g.bin'));
      await rejectsWith(store.getDir(key, fresh('out')), 'damaged', [key, 'weights/g.bin', 'missing']);
    } finally {
      await store.close();
    }
  });
});

describe('S3 artifact store (fake S3 server)', () => {
  const ENV = {
    AWS_ACCESS_KEY_ID: 'AKIAMEDSYNTHTEST',
    AWS_SECRET_ACCESS_KEY: 'medsynth-test-secret',
    AWS_REGION: 'eu-west-3',
    AWS_EC2_METADATA_DISABLED: 'true',
  } as const;
  const saved = new Map<string, string | undefined>();
  let s3: FakeS3;
  const BUCKET = 'medsynth-test';
  const PREFIX = 'studies/s1';
  const open = (options: { partBytes?: number } = {}) =>
    openArtifactStore(`s3://${BUCKET}/${PREFIX}/`, { s3: { endpoint: s3.endpoint, ...options } });
  const object = (key: string, rest: string) => `${PREFIX}/${key}/${rest}`;
  async function manifestOf(key: string): Promise<{ upload: string; files: { path: string }[] }> {
    const text = s3.getObject(BUCKET, object(key, 'manifest.json'));
    assert.ok(text, `no manifest for ${key}`);
    return JSON.parse(text.toString('utf8')) as { upload: string; files: { path: string }[] };
  }
  const backend: Backend = {
    name: 's3',
    open: () => open(),
    async where(key, path) {
      const m = await manifestOf(key);
      return `s3://${BUCKET}/${object(key, `files/${m.upload}/${path ?? 'data'}`)}`;
    },
    async damage(key, path, f) {
      const uri = await this.where(key, path);
      const name = uri.slice(`s3://${BUCKET}/`.length);
      s3.putObject(BUCKET, name, f(s3.getObject(BUCKET, name)!));
      return uri;
    },
  };

  before(async () => {
    for (const [k, v] of Object.entries(ENV)) {
      saved.set(k, process.env[k]);
      process.env[k] = v;
    }
    s3 = await FakeS3.start({ buckets: [BUCKET] });
  });
  after(async () => {
    await s3.close();
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  sharedTests(() => backend);

  test('files are PUT first, the manifest last (conditional), signed with the credentials from the environment', async () => {
    const store = open();
    try {
      assert.equal(store.location, `s3://${BUCKET}/${PREFIX}`);
      assert.equal(store.localPath(KEY_A), null);
      const src = fresh('src');
      const want = await makeTree(src);
      const key = artifactKey('generator', 'order');
      const from = s3.requests.length;
      assert.equal(await store.putDir(key, src), true);
      const puts = s3.requests.slice(from).filter((r) => r.operation === 'PutObject');
      const manifestPut = puts.filter((r) => r.key === object(key, 'manifest.json'));
      assert.equal(manifestPut.length, 1);
      assert.equal(manifestPut[0]!.headers['if-none-match'], '*');
      const filePuts = puts.filter((r) => r !== manifestPut[0]);
      const m = await manifestOf(key);
      assert.deepEqual(
        filePuts.map((r) => r.key).sort(),
        [...want.keys()].map((p) => object(key, `files/${m.upload}/${p}`)).sort(),
      );
      assert.ok(filePuts.every((r) => r.seq < manifestPut[0]!.seq && r.status === 200));
      assert.equal(puts.at(-1), manifestPut[0], 'the manifest is the last object written');
      assert.ok(s3.requests.slice(from).every((r) => r.accessKeyId === ENV.AWS_ACCESS_KEY_ID));
      assert.ok(
        String(s3.requests[from]!.headers.authorization).includes(`/${ENV.AWS_REGION}/s3/aws4_request`),
        'signed for AWS_REGION',
      );
      // The second putDir only reads the manifest.
      const second = s3.requests.length;
      assert.equal(await store.putDir(key, src), false);
      assert.deepEqual(
        s3.requests.slice(second).map((r) => r.operation),
        ['GetObject'],
      );
    } finally {
      await store.close();
    }
  });

  test('large files go up as multipart uploads and come back identical', async () => {
    const store = open({ partBytes: 5 * 1024 * 1024 });
    try {
      const src = fresh('src');
      const big = randomBytes(11 * 1024 * 1024 + 17);
      await mkdir(join(src, 'ckpt'), { recursive: true });
      await writeFile(join(src, 'ckpt', 'big.bin'), big);
      await writeFile(join(src, 'small.json'), '{"a":1}');
      const key = artifactKey('generator', 'multipart');
      const from = s3.requests.length;
      assert.equal(await store.putDir(key, src), true);
      const ops = s3.requests.slice(from).map((r) => r.operation);
      assert.equal(ops.filter((o) => o === 'UploadPart').length, 3);
      assert.equal(ops.filter((o) => o === 'CompleteMultipartUpload').length, 1);
      assert.ok(ops.lastIndexOf('CompleteMultipartUpload') < ops.lastIndexOf('PutObject'));
      assert.equal(s3.openUploads, 0);
      const out = fresh('out');
      await store.getDir(key, out);
      assert.ok((await readFile(join(out, 'ckpt', 'big.bin'))).equals(big));
      const pool = randomBytes(6 * 1024 * 1024);
      const poolKey = artifactKey('pool', 'multipart');
      assert.equal(await store.putFile(poolKey, pool), true);
      assert.ok(Buffer.from(await store.getFile(poolKey)).equals(pool));
    } finally {
      await store.close();
    }
  });

  test('an upload refused midway: an ArtifactError naming the object, no manifest, uploaded objects deleted', async () => {
    const store = open({ partBytes: 5 * 1024 * 1024 });
    try {
      const src = fresh('src');
      await makeTree(src);
      await writeFile(join(src, 'big.bin'), randomBytes(6 * 1024 * 1024));
      const key = artifactKey('generator', 'refused');
      s3.fail({
        when: (r) => r.operation === 'PutObject' && r.key.endsWith('/weights/g.bin'),
        status: 403,
        code: 'AccessDenied',
      });
      try {
        await rejectsWith(store.putDir(key, src), 'unavailable', [key, 'access denied', 'weights/g.bin']);
      } finally {
        s3.clearFaults();
      }
      assert.equal(await store.has(key), false);
      assert.deepEqual(s3.keys(BUCKET, `${PREFIX}/${key}/`), []);
      assert.equal(s3.openUploads, 0);
      // A part refused: the multipart upload is aborted.
      s3.fail({
        when: (r) => r.operation === 'UploadPart' && r.query.partNumber === '2',
        status: 403,
        code: 'AccessDenied',
      });
      try {
        await rejectsWith(store.putDir(key, src), 'unavailable', [key, 'big.bin']);
      } finally {
        s3.clearFaults();
      }
      assert.deepEqual(s3.keys(BUCKET, `${PREFIX}/${key}/`), []);
      assert.equal(s3.openUploads, 0);
      assert.equal(await store.putDir(key, src), true, 'a later try succeeds');
    } finally {
      await store.close();
    }
  });

  test('the losing writer of a race deletes its objects; a server without conditional writes keeps a whole copy too', async () => {
    const key = artifactKey('generator', 'race-cleanup');
    const srcA = fresh('src');
    const srcB = fresh('src');
    const treeA = await makeTree(srcA, 3);
    const treeB = await makeTree(srcB, 4);
    const one = open();
    const two = open();
    try {
      const from = s3.requests.length;
      const results = await Promise.all([one.putDir(key, srcA), two.putDir(key, srcB)]);
      const manifestPuts = s3.requests
        .slice(from)
        .filter((r) => r.operation === 'PutObject' && r.key === object(key, 'manifest.json'));
      assert.deepEqual(
        manifestPuts.map((r) => r.status).sort(),
        [200, 412],
        'both writers got as far as the conditional manifest PUT',
      );
      const m = await manifestOf(key);
      const stored = s3.keys(BUCKET, `${PREFIX}/${key}/`);
      assert.deepEqual(
        stored,
        [
          object(key, 'manifest.json'),
          ...[...treeA.keys()].map((p) => object(key, `files/${m.upload}/${p}`)),
        ].sort(),
        `only the winner's objects remain (${results.join(', ')})`,
      );
    } finally {
      await one.close();
      await two.close();
    }
    // An S3-compatible server that ignores If-None-Match: the last manifest wins, and it names its own objects.
    const legacy = await FakeS3.start({ buckets: [BUCKET], conditionalWrites: false });
    const a = openArtifactStore(`s3://${BUCKET}`, { s3: { endpoint: legacy.endpoint } });
    const bStore = openArtifactStore(`s3://${BUCKET}`, { s3: { endpoint: legacy.endpoint } });
    try {
      const results = await Promise.all([a.putDir(key, srcA), bStore.putDir(key, srcB)]);
      assert.ok(results.includes(true));
      const out = fresh('out');
      await a.getDir(key, out);
      const got = await readTree(out);
      const gotSeed = JSON.parse(got.get('manifest.json')!.toString()) as { seed: number };
      assertSameTree(got, gotSeed.seed === 3 ? treeA : treeB);
    } finally {
      await a.close();
      await bStore.close();
      await legacy.close();
    }
  });

  test('a manifest PUT that landed but whose answer was lost still counts as stored (retried or not)', async () => {
    const store = open();
    try {
      const isManifestPut = (key: string) => (r: FakeS3Request) =>
        r.operation === 'PutObject' && r.key === object(key, 'manifest.json');
      for (const [status, code, answers] of [
        [500, 'InternalError', [412, 500]], // retried by the SDK: the retry meets the landed manifest
        [400, 'BadRequest', [400]], // not retried: the store looks and finds its own manifest
      ] as const) {
        const key = artifactKey('generator', { test: 'lost-answer', status });
        const src = fresh('src');
        const want = await makeTree(src);
        const from = s3.requests.length;
        s3.fail({ when: isManifestPut(key), status, code, times: 1, after: true });
        try {
          assert.equal(await store.putDir(key, src), true, code);
        } finally {
          s3.clearFaults();
        }
        assert.deepEqual(
          s3.requests
            .slice(from)
            .filter(isManifestPut(key))
            .map((r) => r.status)
            .sort(),
          [...answers],
        );
        const out = fresh('out');
        await store.getDir(key, out);
        assertSameTree(await readTree(out), want);
      }
    } finally {
      await store.close();
    }
  });

  test('a download refused by the server: an unavailable ArtifactError naming the object, nothing at the destination', async () => {
    const store = open();
    try {
      const key = artifactKey('generator', 'download-refused');
      const src = fresh('src');
      await makeTree(src);
      await store.putDir(key, src);
      s3.fail({
        when: (r) => r.operation === 'GetObject' && r.key.endsWith('/bytes.bin'),
        status: 403,
        code: 'AccessDenied',
      });
      const out = fresh('out');
      try {
        await rejectsWith(store.getDir(key, out), 'unavailable', [key, 'bytes.bin', 'access denied']);
      } finally {
        s3.clearFaults();
      }
      await assert.rejects(stat(out), { code: 'ENOENT' });
      assert.deepEqual(
        (await readdir(dirname(out))).filter((x) => x.includes('.tmp-')),
        [],
      );
    } finally {
      await store.close();
    }
  });

  test('no credentials anywhere: an unavailable ArtifactError that says how to give them', async () => {
    const changes: Record<string, string | undefined> = {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_PROFILE: undefined,
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_CONFIG_FILE: join(dir, 'no-config'),
    };
    const before = Object.fromEntries(Object.keys(changes).map((k) => [k, process.env[k]]));
    const set = (values: Record<string, string | undefined>) => {
      for (const [k, v] of Object.entries(values))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    };
    set(changes);
    const store = open();
    try {
      await rejectsWith(store.has(KEY_A), 'unavailable', [KEY_A, 'AWS_ACCESS_KEY_ID']);
    } finally {
      set(before);
      await store.close();
    }
  });

  test('a missing bucket and a damaged manifest are reported by name', async () => {
    const store = openArtifactStore('s3://no-such-bucket/x', { s3: { endpoint: s3.endpoint } });
    try {
      await rejectsWith(store.has(KEY_A), 'unavailable', [KEY_A, 'no-such-bucket', 'does not exist']);
    } finally {
      await store.close();
    }
    const good = open();
    try {
      const key = artifactKey('pool', 'bad-manifest');
      await good.putFile(key, randomBytes(100));
      const manifest = s3.getObject(BUCKET, object(key, 'manifest.json'))!;
      s3.putObject(BUCKET, object(key, 'manifest.json'), manifest.subarray(0, 50));
      assert.equal(await good.has(key), false);
      await rejectsWith(good.getFile(key), 'damaged', [key, 'manifest']);
      // A writer replaces the damaged manifest.
      const data = randomBytes(100);
      assert.equal(await good.putFile(key, data), true);
      assert.ok(Buffer.from(await good.getFile(key)).equals(data));
    } finally {
      await good.close();
    }
  });
});
