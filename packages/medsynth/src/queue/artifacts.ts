/**
 * The artifact store of a distributed study: where the jobs of `medsynth study --queue` put what they make
 * (generator run directories with checkpoints, synthetic pools, evaluation folders) so that other workers
 * and the coordinator can fetch it. Two stores behind one interface: a folder every worker reaches (a local
 * disk for one machine, an NFS/SMB mount for several) and an S3-compatible bucket.
 *
 * Keys. An artifact is named `<namespace>/<sha256 hex>` where the hash is SHA-256 of the UTF-8 bytes of
 * `JSON.stringify(parts)` (`artifactKey`): the same job inputs give the same key on every machine, so a job
 * whose artifact is already complete is skipped ("content addressing" of the inputs). An object's properties
 * are hashed in insertion order: callers pass values built the same way (resolved options are).
 *
 * Completeness. Every artifact has a `manifest.json` — format tag, key, kind (`dir` or `file`), the list of
 * its files with byte count and SHA-256, creation time and writer — written last. An artifact is complete
 * exactly when its manifest is present and valid (zod); everything else (a writer killed mid-copy, a folder
 * without a manifest) reads as absent. Readers verify every file's size and SHA-256 against the manifest.
 *
 * Folder store, `<root>/<key>/`:
 *   - a dir artifact keeps its files under `<root>/<key>/files/` (so that a stored folder may itself hold a
 *     `manifest.json`, as exported synthetic sets do) and `<root>/<key>/manifest.json`; `localPath` hands
 *     out `<root>/<key>/files` for use in place;
 *   - a one-file artifact is `<root>/<key>/data` plus the manifest.
 *   A writer copies into `<root>/.tmp-<random>/`, hashing the bytes it writes, flushes every file and folder
 *   to the disk, writes the manifest, then renames the folder to `<root>/<key>` (atomic on one file system).
 *   When another writer got there first the rename fails and this copy is dropped; a leftover without a valid
 *   manifest at the target is moved aside and replaced. `.tmp-*` folders older than an hour (writers that
 *   died) are removed when the store is opened.
 *
 * S3 store, `s3://bucket/prefix`: each writer uploads its files to `<prefix>/<key>/files/<upload>/<path>`
 * (`<upload>` a random id of this writer; files above `partBytes` go up as multipart uploads), then PUTs
 * `<prefix>/<key>/manifest.json` naming its upload, with `If-None-Match: *`. Because every writer uploads to
 * its own folder, a manifest always describes objects that no other writer touches, so readers see one
 * writer's complete copy or nothing even when two writers of one key produced different bytes (a job retried
 * after a stalled worker). The writer whose conditional PUT is refused deletes its objects and returns false.
 * A store that ignores `If-None-Match` keeps the last manifest; each is consistent with its own objects.
 * Objects of a writer that died before its manifest stay behind unreferenced (use a bucket lifecycle rule
 * to expire them); a writer that fails with an error deletes what it uploaded. Checksums are ours (SHA-256
 * in the manifest), so the SDK's own flexible checksums are only sent where S3 requires them, which keeps
 * S3-compatible servers (MinIO, Ceph, R2, the test's fake) working.
 *
 * Fetching (`getDir`) writes into a temporary folder beside the destination, verifies every file, then
 * renames the folder into place; when the destination already holds files, the artifact's files are moved
 * in one by one (each rename atomic) and other files there are left alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { z } from 'zod';
import { ArtifactError, type ArtifactErrorReason, ConfigError } from '../runtime/errors.js';
import { errnoCode, fileSystemError, fsyncDir, writeFileSynced } from '../runtime/fs.js';

/** Where artifacts live: a folder every worker reaches (default), or an S3-compatible bucket. */
export interface ArtifactStore {
  /** 'file:///abs/path' or 's3://bucket/prefix' — what jobs carry so a worker opens the same store. */
  readonly location: string;
  /** Whether artifact `key` is complete (a half-written one is not). */
  has(key: string): Promise<boolean>;
  /**
   * Stores the files under `localDir` (recursively) as artifact `key`, atomically: readers see all of it or
   * nothing. Content-addressed: when `key` is already complete, nothing is written (returns false; true when
   * this call stored it). Two writers racing on one key both succeed and one copy remains.
   */
  putDir(key: string, localDir: string): Promise<boolean>;
  /**
   * Copies artifact `key` into `localDir` (made if missing; files verified against their SHA-256). Throws an
   * ArtifactError naming the key when it is missing or damaged.
   */
  getDir(key: string, localDir: string): Promise<void>;
  /** One-file artifacts (synthetic pools, results): same atomicity and content addressing. */
  putFile(key: string, data: Uint8Array): Promise<boolean>;
  /** The bytes of one-file artifact `key`, verified; ArtifactError when missing/damaged. */
  getFile(key: string): Promise<Uint8Array>;
  /** A folder store's directory of a complete dir-artifact, usable in place (null for S3, or not complete). */
  localPath(key: string): string | null;
  close(): Promise<void>;
}

export interface S3StoreOptions {
  /** An S3-compatible endpoint (`http://minio:9000`); default `MEDSYNTH_S3_ENDPOINT`, else AWS's. */
  readonly endpoint?: string;
  /** Default `AWS_REGION`, else `us-east-1`. */
  readonly region?: string;
  /** Path-style URLs (`endpoint/bucket/key`); default true when an endpoint is given. */
  readonly forcePathStyle?: boolean;
  /**
   * Files larger than this go up as multipart uploads in parts of this size. At least 5 MiB (S3's smallest
   * part); default 64 MiB.
   */
  readonly partBytes?: number;
}

export interface ArtifactStoreOptions {
  readonly s3?: S3StoreOptions;
  /** Files transferred at once by one call (default 4). */
  readonly transfers?: number;
}

/** The manifest's format tag. */
export const ARTIFACT_FORMAT = 'medsynth-artifact/1';
export const MANIFEST_FILE = 'manifest.json';
/** A one-file artifact's file name (in the manifest, the folder store and S3). */
export const DATA_FILE = 'data';

const KEY_RE = /^[a-z0-9-]+\/[0-9a-f]{64}$/;
const NAMESPACE_RE = /^[a-z0-9-]+$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
/** Temporary folders of writers older than this are taken for dead and removed. */
const STALE_TEMP_MS = 60 * 60 * 1000;
const MIB = 1024 * 1024;
const MIN_PART_BYTES = 5 * MIB;
const DEFAULT_PART_BYTES = 64 * MIB;
/** S3's limits: 10,000 parts, 5 GiB per part. */
const MAX_PARTS = 10_000;
const MAX_PART_BYTES = 5 * 1024 * MIB;
const COPY_CHUNK = MIB;

// ---------------------------------------------------------------------------------------------------------
// Keys

/** Whether `key` is a well-formed artifact key (`[a-z0-9-]+/[0-9a-f]{64}`). */
export function isArtifactKey(key: unknown): key is string {
  return typeof key === 'string' && KEY_RE.test(key);
}

function assertKey(key: unknown): asserts key is string {
  if (!isArtifactKey(key))
    throw new RangeError(
      `not an artifact key: ${JSON.stringify(key)} (expected <namespace [a-z0-9-]+>/<64 hex digits>, made by artifactKey)`,
    );
}

/**
 * A key from parts: `${namespace}/${sha256(JSON.stringify(parts)) hex}`. Parts must be JSON values (plain
 * objects, arrays, strings, finite numbers, booleans, null; objects with `toJSON` such as dates): values that
 * JSON would silently turn into `null` or drop (undefined in an array, NaN, functions) would make different
 * inputs share a key, so they are refused with a RangeError, as is a namespace outside `[a-z0-9-]+`.
 */
export function artifactKey(namespace: string, ...parts: unknown[]): string {
  if (typeof namespace !== 'string' || !NAMESPACE_RE.test(namespace))
    throw new RangeError(`artifact namespace ${JSON.stringify(namespace)} is not [a-z0-9-]+`);
  checkJsonValue(parts, 'parts', new Set());
  return `${namespace}/${createHash('sha256').update(JSON.stringify(parts), 'utf8').digest('hex')}`;
}

function checkJsonValue(v: unknown, at: string, ancestors: Set<object>): void {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new RangeError(`artifactKey: ${at} is ${v}, which JSON cannot hold`);
      return;
    case 'object':
      break;
    default:
      throw new RangeError(`artifactKey: ${at} is a ${typeof v}, which JSON cannot hold`);
  }
  if (v === null || typeof (v as { toJSON?: unknown }).toJSON === 'function') return;
  if (ancestors.has(v)) throw new RangeError(`artifactKey: ${at} refers back to itself`);
  ancestors.add(v);
  if (Array.isArray(v)) v.forEach((x, i) => checkJsonValue(x, `${at}[${i}]`, ancestors));
  else
    // JSON drops undefined properties, so they are skipped here too.
    for (const [k, x] of Object.entries(v)) if (x !== undefined) checkJsonValue(x, `${at}.${k}`, ancestors);
  ancestors.delete(v);
}

// ---------------------------------------------------------------------------------------------------------
// Manifest

/** A relative posix path without `..`, `.`, empty segments, backslashes or NUL. */
export function isSafeRelativePath(p: string): boolean {
  return (
    p.length > 0 &&
    !p.includes('\\') &&
    !p.includes('\0') &&
    p.split('/').every((s) => s !== '' && s !== '.' && s !== '..')
  );
}

const ManifestFileSchema = z.object({
  path: z.string().max(4096).refine(isSafeRelativePath, 'a relative posix path without "..", "." or "//"'),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(SHA256_RE),
});

const ManifestSchema = z
  .object({
    format: z.literal(ARTIFACT_FORMAT),
    key: z.string().regex(KEY_RE),
    kind: z.enum(['dir', 'file']),
    files: z.array(ManifestFileSchema),
    /** S3 only: the writer's upload id, whose objects hold the files. */
    upload: z
      .string()
      .regex(/^[0-9a-f]{16,64}$/)
      .optional(),
    createdAt: z.iso.datetime(),
    /** `host:pid` of the writer. */
    createdBy: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.kind === 'file' && (m.files.length !== 1 || m.files[0]?.path !== DATA_FILE))
      ctx.addIssue({
        code: 'custom',
        path: ['files'],
        message: `a file artifact holds exactly "${DATA_FILE}"`,
      });
    const paths = new Set(m.files.map((f) => f.path));
    if (paths.size !== m.files.length)
      ctx.addIssue({ code: 'custom', path: ['files'], message: 'a path is listed twice' });
    for (const p of paths) {
      const segments = p.split('/');
      for (let i = 1; i < segments.length; i++)
        if (paths.has(segments.slice(0, i).join('/')))
          ctx.addIssue({ code: 'custom', path: ['files'], message: `${p} lies inside a file` });
    }
  });

export type ArtifactManifest = z.infer<typeof ManifestSchema>;
export type ArtifactFileEntry = z.infer<typeof ManifestFileSchema>;

type ManifestRead =
  | { readonly status: 'ok'; readonly manifest: ArtifactManifest }
  | { readonly status: 'missing' }
  | { readonly status: 'invalid'; readonly problem: string };

/** Validates a manifest's text for `key` (and, for S3, that it names an upload). */
function parseManifest(text: string, key: string, needsUpload: boolean): ManifestRead {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { status: 'invalid', problem: `not JSON (${(e as Error).message})` };
  }
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      status: 'invalid',
      problem: `${issue?.path.join('.') || 'manifest'}: ${issue?.message ?? 'invalid'}`,
    };
  }
  if (r.data.key !== key) return { status: 'invalid', problem: `it is the manifest of ${r.data.key}` };
  if (needsUpload && r.data.upload === undefined) return { status: 'invalid', problem: 'it names no upload' };
  return { status: 'ok', manifest: r.data };
}

function newManifest(
  key: string,
  kind: 'dir' | 'file',
  files: readonly ArtifactFileEntry[],
  upload?: string,
): ArtifactManifest {
  return {
    format: ARTIFACT_FORMAT,
    key,
    kind,
    files: [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    ...(upload !== undefined ? { upload } : {}),
    createdAt: new Date().toISOString(),
    createdBy: `${hostname()}:${process.pid}`,
  };
}

function manifestText(m: ArtifactManifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

const hexId = (bytes: number) => randomBytes(bytes).toString('hex');
const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** A file of a local folder to store. */
interface LocalFile {
  /** Posix path relative to the folder. */
  readonly path: string;
  readonly abs: string;
  readonly bytes: number;
}

/**
 * The regular files under `dir`, recursively, sorted by path. Symlinks and special files are refused by
 * name (an artifact must mean the same bytes on every machine); empty folders are not kept.
 */
async function listLocalFiles(key: string, dir: string): Promise<LocalFile[]> {
  const refuse = (message: string, file: string) =>
    new ArtifactError(message, { key, reason: 'refused', file });
  try {
    if (!(await stat(dir)).isDirectory()) throw refuse(`cannot store artifact ${key}: not a folder`, dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw refuse(`cannot store artifact ${key}: no such folder`, dir);
    throw fileSystemError(e, `reading the folder for artifact ${key}`, dir) ?? e;
  }
  const out: LocalFile[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    const entries = await readdir(abs, { withFileTypes: true });
    for (const d of entries) {
      const childAbs = join(abs, d.name);
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      if (!isSafeRelativePath(childRel))
        throw refuse(`cannot store artifact ${key}: the name has a backslash or NUL`, childAbs);
      if (d.isSymbolicLink())
        throw refuse(
          `cannot store artifact ${key}: symbolic links are not stored (copy the target in)`,
          childAbs,
        );
      if (d.isDirectory()) await walk(childAbs, childRel);
      else if (d.isFile()) out.push({ path: childRel, abs: childAbs, bytes: (await stat(childAbs)).size });
      else throw refuse(`cannot store artifact ${key}: neither a file nor a folder`, childAbs);
    }
  };
  try {
    await walk(dir, '');
  } catch (e) {
    throw fileSystemError(e, `reading the folder for artifact ${key}`) ?? e;
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Runs `fn` on every item, `concurrency` at a time. After a failure no further item starts; the running
 * ones are waited for (so a caller's clean-up does not race them), then the first error is thrown.
 */
async function runLimited<I, T>(
  items: readonly I[],
  concurrency: number,
  fn: (item: I) => Promise<T>,
): Promise<T[]> {
  const limit = pLimit(concurrency);
  let failure: { readonly error: unknown } | undefined;
  const settled = await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        if (failure !== undefined) throw failure.error;
        try {
          return await fn(item);
        } catch (e) {
          failure ??= { error: e };
          throw e;
        }
      }),
    ),
  );
  if (failure !== undefined) throw failure.error;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let at = 0; at < chunk.byteLength;) {
    const { bytesWritten } = await fh.write(chunk, at, chunk.byteLength - at);
    at += bytesWritten;
  }
}

/** The bytes of file `path`, a chunk at a time (each chunk is written before the next is read). */
async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.byteLength, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * Writes the chunks of `source()` to `dest` (flushed to the disk), returning the size and SHA-256 of what was
 * written.
 */
async function writeHashed(
  source: () => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>,
  dest: string,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const fh = await open(dest, 'w');
  try {
    // The source is opened only now, so that its errors reach this loop (not an unheard 'error' event).
    for await (const chunk of await source()) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      await writeAll(fh, chunk);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The folders of `paths` (relative, posix) under `root`, deepest first, `root` last. */
function foldersOf(root: string, paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const segments = p.split('/');
    for (let i = 1; i < segments.length; i++) dirs.add(segments.slice(0, i).join('/'));
  }
  return [...dirs]
    .sort((a, b) => b.split('/').length - a.split('/').length)
    .map((d) => join(root, ...d.split('/')))
    .concat(root);
}

/** Removes the `<prefix>*` entries of `dir` older than an hour (writers that died). Never throws. */
async function removeStaleTemps(dir: string, prefix: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const now = Date.now();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const p = join(dir, name);
    const st = await stat(p).catch(() => undefined);
    if (st !== undefined && now - st.mtimeMs > STALE_TEMP_MS)
      await rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

function checkEntry(
  key: string,
  entry: ArtifactFileEntry,
  got: { bytes: number; sha256: string },
  where: string,
): void {
  if (got.bytes !== entry.bytes)
    throw new ArtifactError(`artifact ${key} is damaged: ${entry.path} has the wrong size`, {
      key,
      reason: 'damaged',
      file: where,
      expected: `${entry.bytes} bytes`,
      found: `${got.bytes} bytes`,
    });
  if (got.sha256 !== entry.sha256)
    throw new ArtifactError(`artifact ${key} is damaged: ${entry.path} does not match its SHA-256`, {
      key,
      reason: 'damaged',
      file: where,
      expected: `sha256 ${entry.sha256}`,
      found: `sha256 ${got.sha256}`,
    });
}

/** The manifest of a complete artifact of `kind`, or the ArtifactError saying why there is none. */
function requireManifest(
  read: ManifestRead,
  key: string,
  kind: 'dir' | 'file',
  where: string,
  location: string,
): ArtifactManifest {
  if (read.status === 'missing')
    throw new ArtifactError(`artifact ${key} is not in the store ${location}`, {
      key,
      reason: 'missing',
      file: where,
    });
  if (read.status === 'invalid')
    throw new ArtifactError(`artifact ${key} is damaged: its manifest is not valid (${read.problem})`, {
      key,
      reason: 'damaged',
      file: where,
    });
  if (read.manifest.kind !== kind)
    throw new ArtifactError(
      `artifact ${key} is a ${read.manifest.kind === 'dir' ? 'folder' : 'one-file'} artifact: use ${read.manifest.kind === 'dir' ? 'getDir' : 'getFile'}`,
      { key, reason: 'refused', file: where, expected: kind, found: read.manifest.kind },
    );
  return read.manifest;
}

/**
 * Fetches the files of `manifest` into `localDir` through a temporary sibling folder: `fetch(entry, dest)`
 * writes one file and returns its size and SHA-256, which are checked here.
 */
async function fetchInto(
  key: string,
  manifest: ArtifactManifest,
  localDir: string,
  transfers: number,
  fetch: (entry: ArtifactFileEntry, dest: string) => Promise<{ bytes: number; sha256: string }>,
): Promise<void> {
  const dest = resolve(localDir);
  const parent = dirname(dest);
  const tmpPrefix = `.${basename(dest)}.tmp-`;
  const staging = join(parent, `${tmpPrefix}${hexId(8)}`);
  try {
    await mkdir(parent, { recursive: true });
    await removeStaleTemps(parent, tmpPrefix);
    await mkdir(staging);
    await runLimited(manifest.files, transfers, async (entry) => {
      const file = join(staging, ...entry.path.split('/'));
      await mkdir(dirname(file), { recursive: true });
      await fetch(entry, file);
    });
    for (const d of foldersOf(
      staging,
      manifest.files.map((f) => f.path),
    ))
      await fsyncDir(d);
    try {
      await rename(staging, dest); // dest missing or an empty folder
    } catch (e) {
      const code = errnoCode(e);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      // dest holds files: move the artifact's files in one by one, leaving the others alone.
      for (const entry of manifest.files) {
        const target = join(dest, ...entry.path.split('/'));
        await mkdir(dirname(target), { recursive: true });
        await rename(join(staging, ...entry.path.split('/')), target);
      }
      for (const d of foldersOf(
        dest,
        manifest.files.map((f) => f.path),
      ))
        await fsyncDir(d);
      await rm(staging, { recursive: true, force: true });
    }
    await fsyncDir(parent);
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    if (e instanceof ArtifactError) throw e;
    throw (
      fileSystemError(e, `fetching artifact ${key} into ${dest}`) ??
      new ArtifactError(`cannot fetch artifact ${key} into ${dest}: ${(e as Error).message}`, {
        key,
        reason: 'refused',
        file: dest,
        cause: e,
      })
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Locations

type ParsedLocation =
  | { readonly kind: 'folder'; readonly root: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string };

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * A store location: an absolute or relative folder path, a `file://` URL, or `s3://bucket[/prefix]`. A
 * ConfigError (field `location`) for anything else.
 */
export function parseArtifactLocation(location: string): ParsedLocation {
  const bad = (message: string, expected?: string) =>
    new ConfigError(message, {
      field: 'location',
      found: JSON.stringify(location),
      ...(expected !== undefined ? { expected } : {}),
    });
  if (typeof location !== 'string' || location.trim() === '')
    throw bad('no artifact store given', 'a folder, file:///path or s3://bucket/prefix');
  if (location.startsWith('s3://')) {
    const rest = location.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
    if (!BUCKET_RE.test(bucket))
      throw bad('not an S3 bucket name', '3–63 lowercase letters, digits, dots and hyphens');
    if (prefix !== '' && !isSafeRelativePath(prefix))
      throw bad('the S3 prefix has an empty, "." or ".." segment', 's3://bucket/some/prefix');
    return { kind: 's3', bucket, prefix };
  }
  if (location.startsWith('file:')) {
    let root: string;
    try {
      root = fileURLToPath(location);
    } catch (e) {
      throw bad(`not a file URL: ${(e as Error).message}`, 'file:///absolute/path');
    }
    return { kind: 'folder', root: resolve(root) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location))
    throw bad('unsupported artifact store', 'a folder, file:///path or s3://bucket/prefix');
  return { kind: 'folder', root: resolve(location) };
}

/**
 * Opens the store at `location` (see `parseArtifactLocation`). Nothing is touched until the first call; a
 * folder store removes temporary folders of dead writers in the background, and S3 credentials come from the
 * SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles…).
 */
export function openArtifactStore(location: string, options: ArtifactStoreOptions = {}): ArtifactStore {
  const transfers = options.transfers ?? 4;
  if (!Number.isInteger(transfers) || transfers < 1 || transfers > 64)
    throw new ConfigError('transfers must be an integer in [1, 64]', {
      field: 'transfers',
      found: String(transfers),
    });
  const parsed = parseArtifactLocation(location);
  if (parsed.kind === 'folder') return new FolderArtifactStore(parsed.root, transfers);
  return new S3ArtifactStore(parsed.bucket, parsed.prefix, resolveS3Config(options.s3 ?? {}), transfers);
}

// ---------------------------------------------------------------------------------------------------------
// Folder store

const TEMP_PREFIX = '.tmp-';

class FolderArtifactStore implements ArtifactStore {
  readonly location: string;
  readonly #root: string;
  readonly #transfers: number;
  readonly #opened: Promise<void>;
  #closed = false;

  constructor(root: string, transfers: number) {
    this.#root = root;
    this.#transfers = transfers;
    this.location = pathToFileURL(root).href;
    this.#opened = removeStaleTemps(root, TEMP_PREFIX);
  }

  async has(key: string): Promise<boolean> {
    assertKey(key);
    await this.#ready();
    return (await this.#readManifest(key)).status === 'ok';
  }

  async putDir(key: string, localDir: string): Promise<boolean> {
    assertKey(key);
    await this.#ready();
    if ((await this.#readManifest(key)).status === 'ok') return false;
    const files = await listLocalFiles(key, resolve(localDir));
    return this.#write(key, async (tmp) => {
      const entries = await runLimited(files, this.#transfers, async (f) => {
        const dest = join(tmp, 'files', ...f.path.split('/'));
        await mkdir(dirname(dest), { recursive: true });
        const got = await writeHashed(() => fileChunks(f.abs), dest);
        await utimes(tmp, new Date(), new Date()).catch(() => undefined); // still alive
        return { path: f.path, ...got };
      });
      await mkdir(join(tmp, 'files'), { recursive: true });
      for (const d of foldersOf(
        join(tmp, 'files'),
        files.map((f) => f.path),
      ))
        await fsyncDir(d);
      return newManifest(key, 'dir', entries);
    });
  }

  async putFile(key: string, data: Uint8Array): Promise<boolean> {
    assertKey(key);
    if (!(data instanceof Uint8Array)) throw new TypeError('putFile: data must be a Uint8Array');
    await this.#ready();
    if ((await this.#readManifest(key)).status === 'ok') return false;
    return this.#write(key, async (tmp) => {
      await writeFileSynced(join(tmp, DATA_FILE), data);
      return newManifest(key, 'file', [{ path: DATA_FILE, bytes: data.byteLength, sha256: sha256Hex(data) }]);
    });
  }

  /** The complete manifest of `key` (of `kind`), or an ArtifactError: missing or damaged. */
  async #manifest(key: string, kind: 'dir' | 'file'): Promise<ArtifactManifest> {
    return requireManifest(
      await this.#readManifest(key),
      key,
      kind,
      join(this.#dir(key), MANIFEST_FILE),
      this.location,
    );
  }

  async getDir(key: string, localDir: string): Promise<void> {
    assertKey(key);
    await this.#ready();
    const dir = this.#dir(key);
    const manifest = await this.#manifest(key, 'dir');
    await fetchInto(key, manifest, localDir, this.#transfers, async (entry, dest) => {
      const src = join(dir, 'files', ...entry.path.split('/'));
      let got;
      try {
        got = await writeHashed(() => fileChunks(src), dest);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT' && !(await exists(src))) throw damagedMissing(key, entry.path, src);
        throw e;
      }
      checkEntry(key, entry, got, src);
      return got;
    });
  }

  async getFile(key: string): Promise<Uint8Array> {
    assertKey(key);
    await this.#ready();
    const dir = this.#dir(key);
    const manifest = await this.#manifest(key, 'file');
    const entry = manifest.files[0]!;
    const src = join(dir, DATA_FILE);
    let data: Buffer;
    try {
      data = await readFile(src);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw damagedMissing(key, entry.path, src);
      throw fileSystemError(e, `reading artifact ${key}`, src) ?? e;
    }
    checkEntry(key, entry, { bytes: data.byteLength, sha256: sha256Hex(data) }, src);
    return data;
  }

  localPath(key: string): string | null {
    assertKey(key);
    const dir = this.#dir(key);
    let text: string;
    try {
      text = readFileSync(join(dir, MANIFEST_FILE), 'utf8');
    } catch {
      return null;
    }
    const read = parseManifest(text, key, false);
    return read.status === 'ok' && read.manifest.kind === 'dir' ? join(dir, 'files') : null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#opened;
  }

  async #ready(): Promise<void> {
    if (this.#closed) throw new Error(`the artifact store ${this.location} is closed`);
    await this.#opened;
  }

  #dir(key: string): string {
    return join(this.#root, ...key.split('/'));
  }

  async #readManifest(key: string): Promise<ManifestRead> {
    const file = join(this.#dir(key), MANIFEST_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'missing' };
      throw (
        fileSystemError(e, `reading the manifest of artifact ${key}`, file) ??
        new ArtifactError(`cannot read the manifest of artifact ${key}`, {
          key,
          reason: 'unavailable',
          file,
          cause: e,
        })
      );
    }
    return parseManifest(text, key, false);
  }

  /**
   * Writes an artifact through a temporary folder: `fill(tmp)` writes the files and returns the manifest,
   * which is written last; then the folder is renamed into place. False when another writer was first.
   */
  async #write(key: string, fill: (tmp: string) => Promise<ArtifactManifest>): Promise<boolean> {
    const tmp = join(this.#root, `${TEMP_PREFIX}${hexId(8)}`);
    const target = this.#dir(key);
    try {
      await mkdir(this.#root, { recursive: true });
      await mkdir(tmp);
      const manifest = await fill(tmp);
      await writeFileSynced(join(tmp, MANIFEST_FILE), manifestText(manifest));
      await fsyncDir(tmp);
      await mkdir(dirname(target), { recursive: true });
      for (let attempt = 0; ; attempt++) {
        try {
          await rename(tmp, target);
          await fsyncDir(dirname(target));
          return true;
        } catch (e) {
          const code = errnoCode(e);
          if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt >= 5) throw e;
        }
        if ((await this.#readManifest(key)).status === 'ok') {
          await rm(tmp, { recursive: true, force: true });
          return false; // another writer stored it
        }
        // A leftover without a valid manifest (copied in by hand, a damaged copy): move it aside, retry.
        const aside = join(this.#root, `${TEMP_PREFIX}${hexId(8)}`);
        try {
          await rename(target, aside);
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') throw e;
          continue; // someone else moved it
        }
        const movedText = await readFile(join(aside, MANIFEST_FILE), 'utf8').catch(() => '');
        if (parseManifest(movedText, key, false).status === 'ok')
          // Another writer completed the key between our check and the move: put its copy back.
          await rename(aside, target).catch(() => undefined);
        await rm(aside, { recursive: true, force: true });
      }
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if (e instanceof ArtifactError) throw e;
      throw (
        fileSystemError(e, `storing artifact ${key}`, target) ??
        new ArtifactError(`cannot store artifact ${key}: ${(e as Error).message}`, {
          key,
          reason: 'unavailable',
          file: target,
          cause: e,
        })
      );
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function damagedMissing(key: string, path: string, where: string): ArtifactError {
  return new ArtifactError(`artifact ${key} is damaged: ${path} is missing`, {
    key,
    reason: 'damaged',
    file: where,
  });
}

// ---------------------------------------------------------------------------------------------------------
// S3 store

interface S3Config {
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly partBytes: number;
}

function resolveS3Config(o: S3StoreOptions): S3Config {
  const env = process.env.MEDSYNTH_S3_ENDPOINT;
  const endpoint = o.endpoint ?? (env !== undefined && env !== '' ? env : undefined);
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
      throw new ConfigError('not an S3 endpoint URL', {
        field: o.endpoint !== undefined ? 's3.endpoint' : 'MEDSYNTH_S3_ENDPOINT',
        expected: 'http(s)://host[:port]',
        found: JSON.stringify(endpoint),
      });
  }
  const partBytes = o.partBytes ?? DEFAULT_PART_BYTES;
  if (!Number.isInteger(partBytes) || partBytes < MIN_PART_BYTES || partBytes > MAX_PART_BYTES)
    throw new ConfigError('the S3 part size is out of range', {
      field: 's3.partBytes',
      expected: `an integer in [${MIN_PART_BYTES}, ${MAX_PART_BYTES}]`,
      found: String(partBytes),
    });
  const region = o.region ?? (process.env.AWS_REGION || undefined) ?? 'us-east-1';
  return { endpoint, region, forcePathStyle: o.forcePathStyle ?? endpoint !== undefined, partBytes };
}

type Sdk = typeof S3Sdk;

interface S3Handle {
  readonly sdk: Sdk;
  readonly client: S3Client;
}

/** Bytes to upload, read a range at a time. */
interface UploadSource {
  readonly bytes: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

interface SdkErrorLike {
  readonly name?: string;
  readonly Code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const statusOf = (e: unknown) => (e as SdkErrorLike | null)?.$metadata?.httpStatusCode;
const nameOf = (e: unknown) => (e as SdkErrorLike | null)?.name ?? '';

function isNotFound(e: unknown): boolean {
  const name = nameOf(e);
  if (name === 'NoSuchBucket') return false;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(e) === 404;
}

class S3ArtifactStore implements ArtifactStore {
  readonly location: string;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #config: S3Config;
  readonly #transfers: number;
  #handle: Promise<S3Handle> | undefined;
  #closed = false;

  constructor(bucket: string, prefix: string, config: S3Config, transfers: number) {
    this.#bucket = bucket;
    this.#prefix = prefix;
    this.#config = config;
    this.#transfers = transfers;
    this.location = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
  }

  async has(key: string): Promise<boolean> {
    assertKey(key);
    return (await this.#readManifest(key)).status === 'ok';
  }

  async putDir(key: string, localDir: string): Promise<boolean> {
    assertKey(key);
    if ((await this.#readManifest(key)).status === 'ok') return false;
    const files = await listLocalFiles(key, resolve(localDir));
    return this.#write(key, 'dir', (upload, written) => {
      return runLimited(files, this.#transfers, async (f) => {
        const fh = await open(f.abs, 'r').catch((e: unknown) => {
          throw fileSystemError(e, `reading ${f.path} for artifact ${key}`, f.abs) ?? e;
        });
        try {
          const source: UploadSource = {
            bytes: f.bytes,
            read: async (offset, length) => {
              const buf = Buffer.allocUnsafe(length);
              let got = 0;
              while (got < length) {
                const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
                if (bytesRead === 0) break;
                got += bytesRead;
              }
              if (got < length)
                throw new ArtifactError(`cannot store artifact ${key}: ${f.path} shrank while it was read`, {
                  key,
                  reason: 'refused',
                  file: f.abs,
                  expected: `${f.bytes} bytes`,
                });
              return buf;
            },
          };
          const got = await this.#upload(
            key,
            this.#object(key, `files/${upload}/${f.path}`),
            source,
            written,
          );
          return { path: f.path, ...got };
        } finally {
          await fh.close();
        }
      });
    });
  }

  async putFile(key: string, data: Uint8Array): Promise<boolean> {
    assertKey(key);
    if (!(data instanceof Uint8Array)) throw new TypeError('putFile: data must be a Uint8Array');
    if ((await this.#readManifest(key)).status === 'ok') return false;
    const source: UploadSource = {
      bytes: data.byteLength,
      read: async (offset, length) => data.subarray(offset, offset + length),
    };
    return this.#write(key, 'file', async (upload, written) => [
      {
        path: DATA_FILE,
        ...(await this.#upload(key, this.#object(key, `files/${upload}/${DATA_FILE}`), source, written)),
      },
    ]);
  }

  /** The complete manifest of `key` (of `kind`), or an ArtifactError: missing or damaged. */
  async #manifest(key: string, kind: 'dir' | 'file'): Promise<ArtifactManifest> {
    return requireManifest(
      await this.#readManifest(key),
      key,
      kind,
      this.#uri(this.#object(key, MANIFEST_FILE)),
      this.location,
    );
  }

  async getDir(key: string, localDir: string): Promise<void> {
    assertKey(key);
    const manifest = await this.#manifest(key, 'dir');
    const { sdk, client } = await this.#client();
    await fetchInto(key, manifest, localDir, this.#transfers, async (entry, dest) => {
      const object = this.#object(key, `files/${manifest.upload!}/${entry.path}`);
      let got;
      try {
        got = await writeHashed(async () => {
          const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: object }));
          return res.Body as AsyncIterable<Uint8Array>;
        }, dest);
      } catch (e) {
        if (isNotFound(e)) throw damagedMissing(key, entry.path, this.#uri(object));
        throw this.#error(e, key, object, 'downloading');
      }
      checkEntry(key, entry, got, this.#uri(object));
      return got;
    });
  }

  async getFile(key: string): Promise<Uint8Array> {
    assertKey(key);
    const manifest = await this.#manifest(key, 'file');
    const entry = manifest.files[0]!;
    const object = this.#object(key, `files/${manifest.upload!}/${DATA_FILE}`);
    const { sdk, client } = await this.#client();
    let data: Uint8Array;
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: object }));
      if (res.Body === undefined) throw new Error('the response has no body');
      data = await res.Body.transformToByteArray();
    } catch (e) {
      if (isNotFound(e)) throw damagedMissing(key, entry.path, this.#uri(object));
      throw this.#error(e, key, object, 'downloading');
    }
    checkEntry(key, entry, { bytes: data.byteLength, sha256: sha256Hex(data) }, this.#uri(object));
    return data;
  }

  localPath(key: string): string | null {
    assertKey(key);
    return null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle !== undefined) (await handle.catch(() => undefined))?.client.destroy();
  }

  #client(): Promise<S3Handle> {
    if (this.#closed) return Promise.reject(new Error(`the artifact store ${this.location} is closed`));
    // The library never prints: the SDK's notice that its 2027 releases will need Node 22 goes to stderr
    // unless switched off by its documented variable (the user's own setting wins).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.#handle ??= import('@aws-sdk/client-s3').then((sdk) => {
      const c = this.#config;
      const client = new sdk.S3Client({
        region: c.region,
        ...(c.endpoint !== undefined ? { endpoint: c.endpoint } : {}),
        forcePathStyle: c.forcePathStyle,
        // Our own SHA-256 in the manifest checks every byte; the SDK's optional CRC checksums (and the
        // aws-chunked uploads they bring) are left to where S3 requires them, for S3-compatible servers.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
      });
      return { sdk, client };
    });
    return this.#handle;
  }

  #object(key: string, rest: string): string {
    return `${this.#prefix === '' ? '' : `${this.#prefix}/`}${key}/${rest}`;
  }

  #uri(object: string): string {
    return `s3://${this.#bucket}/${object}`;
  }

  /** An ArtifactError for an S3 call that failed (not a missing object: callers handle those). */
  #error(e: unknown, key: string, object: string, doing: string): Error {
    if (e instanceof ArtifactError) return e;
    const fsErr = fileSystemError(e, `${doing} ${this.#uri(object)} for artifact ${key}`);
    if (fsErr !== undefined) return fsErr;
    const name = nameOf(e);
    const status = statusOf(e);
    const hint =
      name === 'NoSuchBucket'
        ? `the bucket ${this.#bucket} does not exist`
        : name === 'CredentialsProviderError'
          ? 'no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)'
          : status === 403 || name === 'AccessDenied'
            ? 'access denied (check the credentials and the bucket policy)'
            : `${name || 'error'}${status !== undefined ? ` (HTTP ${status})` : ''}: ${(e as Error | null)?.message ?? String(e)}`;
    return new ArtifactError(`artifact ${key}: ${doing} failed: ${hint}`, {
      key,
      reason: 'unavailable' satisfies ArtifactErrorReason,
      file: this.#uri(object),
      cause: e,
    });
  }

  async #readManifest(key: string): Promise<ManifestRead> {
    const object = this.#object(key, MANIFEST_FILE);
    const { sdk, client } = await this.#client();
    let text: string;
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: object }));
      text = (await res.Body?.transformToString('utf-8')) ?? '';
    } catch (e) {
      if (isNotFound(e)) return { status: 'missing' };
      throw this.#error(e, key, object, 'reading the manifest');
    }
    return parseManifest(text, key, true);
  }

  /**
   * Uploads through a fresh upload id: `fill(upload, written)` uploads the files (recording each object it
   * starts in `written`), then the manifest is PUT if none is there. False when another writer was first.
   */
  async #write(
    key: string,
    kind: 'dir' | 'file',
    fill: (upload: string, written: string[]) => Promise<ArtifactFileEntry[]>,
  ): Promise<boolean> {
    const upload = hexId(8);
    const written: string[] = [];
    const manifestObject = this.#object(key, MANIFEST_FILE);
    let manifestSent = false;
    try {
      const manifest = newManifest(key, kind, await fill(upload, written), upload);
      const body = Buffer.from(manifestText(manifest));
      for (let attempt = 0; ; attempt++) {
        manifestSent = true;
        const outcome = await this.#putManifest(key, manifestObject, body, true);
        if (outcome === 'stored') return true;
        if (outcome === 'unsupported') {
          await this.#putManifest(key, manifestObject, body, false);
          return true;
        }
        // 'exists' (412) or 'conflict' (409, another conditional PUT in flight)
        const current = await this.#readManifest(key);
        if (current.status === 'ok') {
          // Ours when the SDK retried a PUT whose first try had landed.
          if (current.manifest.upload === upload) return true;
          await this.#deleteObjects(written);
          return false; // another writer stored it
        }
        if (outcome === 'exists') {
          // A manifest that is not valid (damaged, half-written by hand): replace it.
          await this.#putManifest(key, manifestObject, body, false);
          return true;
        }
        if (attempt >= 5) throw new Error('the manifest PUT kept conflicting with another writer');
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
      }
    } catch (e) {
      if (!manifestSent) await this.#deleteObjects(written).catch(() => undefined);
      else {
        // The manifest PUT failed on our side, but it may have landed: objects a manifest names are kept.
        const current = await this.#readManifest(key).catch(() => undefined);
        if (current?.status === 'ok' && current.manifest.upload === upload) return true;
        if (current !== undefined) await this.#deleteObjects(written).catch(() => undefined);
      }
      throw this.#error(e, key, manifestObject, 'storing');
    }
  }

  async #putManifest(
    key: string,
    object: string,
    body: Buffer,
    conditional: boolean,
  ): Promise<'stored' | 'exists' | 'conflict' | 'unsupported'> {
    const { sdk, client } = await this.#client();
    try {
      await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.#bucket,
          Key: object,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: 'application/json',
          ...(conditional ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return 'stored';
    } catch (e) {
      const status = statusOf(e);
      if (conditional && (status === 412 || nameOf(e) === 'PreconditionFailed')) return 'exists';
      if (conditional && (status === 409 || nameOf(e) === 'ConditionalRequestConflict')) return 'conflict';
      if (conditional && (status === 501 || nameOf(e) === 'NotImplemented')) return 'unsupported';
      throw this.#error(e, key, object, 'writing the manifest');
    }
  }

  /** Uploads `source` to `object` (multipart above `partBytes`), returning the size and SHA-256 sent. */
  async #upload(
    key: string,
    object: string,
    source: UploadSource,
    written: string[],
  ): Promise<{ bytes: number; sha256: string }> {
    const { sdk, client } = await this.#client();
    const partBytes = Math.max(this.#config.partBytes, Math.ceil(source.bytes / MAX_PARTS));
    written.push(object);
    try {
      if (source.bytes <= partBytes) {
        const data = await source.read(0, source.bytes);
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.#bucket,
            Key: object,
            Body: data,
            ContentLength: data.byteLength,
            ContentType: 'application/octet-stream',
          }),
        );
        return { bytes: data.byteLength, sha256: sha256Hex(data) };
      }
      const created = await client.send(
        new sdk.CreateMultipartUploadCommand({
          Bucket: this.#bucket,
          Key: object,
          ContentType: 'application/octet-stream',
        }),
      );
      const uploadId = created.UploadId;
      if (uploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
      try {
        const hash = createHash('sha256');
        const parts: { PartNumber: number; ETag: string }[] = [];
        for (let offset = 0, n = 1; offset < source.bytes; offset += partBytes, n++) {
          const chunk = await source.read(offset, Math.min(partBytes, source.bytes - offset));
          hash.update(chunk);
          const res = await client.send(
            new sdk.UploadPartCommand({
              Bucket: this.#bucket,
              Key: object,
              UploadId: uploadId,
              PartNumber: n,
              Body: chunk,
              ContentLength: chunk.byteLength,
            }),
          );
          if (res.ETag === undefined) throw new Error(`UploadPart ${n} returned no ETag`);
          parts.push({ PartNumber: n, ETag: res.ETag });
        }
        await client.send(
          new sdk.CompleteMultipartUploadCommand({
            Bucket: this.#bucket,
            Key: object,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
        return { bytes: source.bytes, sha256: hash.digest('hex') };
      } catch (e) {
        await client
          .send(
            new sdk.AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: object, UploadId: uploadId }),
          )
          .catch(() => undefined);
        throw e;
      }
    } catch (e) {
      throw this.#error(e, key, object, 'uploading');
    }
  }

  /** Deletes objects this writer uploaded (best effort, a few at a time). */
  async #deleteObjects(objects: readonly string[]): Promise<void> {
    if (objects.length === 0) return;
    const { sdk, client } = await this.#client();
    const limit = pLimit(this.#transfers);
    await Promise.all(
      objects.map((o) =>
        limit(() =>
          client.send(new sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: o })).catch(() => undefined),
        ),
      ),
    );
  }
}
