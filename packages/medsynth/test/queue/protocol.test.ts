// What travels on the study queue: the config's hash and signature (a tampered config, a missing or wrong
// signature are refused), rows and pools survive encoding bit for bit, Redis URLs become the right options.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { redisOptions, safeQueueUrl } from '../../src/queue/connection.js';
import {
  canonicalJson,
  decodeRow,
  encodeRow,
  makePayload,
  queueJobId,
  studyHash,
  verifyPayload,
} from '../../src/queue/protocol.js';
import { decodePool, encodePool } from '../../src/queue/worker.js';
import { ConfigError, QueueError } from '../../src/runtime/errors.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import type { JobRow } from '../../src/study/store.js';
import { PNEUMONIA_28 } from '../helpers/tiny-train.js';

const config = resolveStudyConfig({ preset: 'tiny', data: { source: PNEUMONIA_28 } });

test('the hash is SHA-256 of the config as canonical JSON: key order does not matter, any value does', () => {
  const a = { b: 1, a: { y: [1, { q: 2, p: 3 }], x: 'z' } };
  const b = { a: { x: 'z', y: [1, { p: 3, q: 2 }] }, b: 1 };
  assert.equal(canonicalJson(a), '{"a":{"x":"z","y":[1,{"p":3,"q":2}]},"b":1}');
  assert.equal(studyHash(a), studyHash(b));
  assert.equal(studyHash(a), createHash('sha256').update(canonicalJson(b)).digest('hex'));
  assert.notEqual(studyHash(a), studyHash({ ...b, b: 2 }));
  // The resolved config hashes the same after the JSON round trip a job makes.
  assert.equal(studyHash(config), studyHash(JSON.parse(JSON.stringify(config))));
});

test('payloads: a verified job passes; an altered config, a missing or wrong signature are refused', () => {
  const hash = studyHash(config);
  const fields = { kind: 'classify', artifacts: '/tmp/a', instanceKey: null, jobId: 'x' } as const;
  const plain = makePayload(config, hash, undefined, fields);
  assert.equal(verifyPayload(JSON.parse(JSON.stringify(plain)), undefined, 'job 1').jobId, 'x');
  const signed = makePayload(config, hash, 's3cret', fields);
  assert.equal(signed.signature, createHmac('sha256', 's3cret').update(hash).digest('hex'));
  assert.equal(verifyPayload(signed, 's3cret', 'job 1').studyHash, hash);
  const refused = (data: unknown, secret: string | undefined, pattern: RegExp) =>
    assert.throws(
      () => verifyPayload(data, secret, 'job 7'),
      (e: unknown) => e instanceof QueueError && pattern.test(e.message) && /job 7/.test(e.message),
    );
  // Someone with access to Redis changes what a job trains on.
  const altered = JSON.parse(JSON.stringify(signed)) as typeof signed;
  (altered.config['data'] as { source: string }).source = '/somewhere/else.npz';
  refused(altered, undefined, /does not match its hash/);
  refused(altered, 's3cret', /does not match its hash/);
  // … and recomputes the hash: the signature then gives it away.
  const rehashed = { ...altered, studyHash: studyHash(altered.config) };
  assert.equal(verifyPayload(rehashed, undefined, 'job 7').studyHash, rehashed.studyHash);
  refused(rehashed, 's3cret', /signature does not verify/);
  refused(plain, 's3cret', /not signed/);
  refused({ ...plain, kind: 'train' }, undefined, /not a medsynth study job/);
  // Job ids are stable and distinct per kind and id.
  assert.equal(queueJobId(hash, 'pool', 'a'), queueJobId(hash, 'pool', 'a'));
  assert.notEqual(queueJobId(hash, 'pool', 'a'), queueJobId(hash, 'classify', 'a'));
  assert.doesNotMatch(queueJobId(hash, 'classify', 'cgan|0|synthetic|cnn|0'), /:/);
});

test('a row and a pool survive the queue bit for bit', () => {
  const proba = Float32Array.from({ length: 10 }, (_, i) => Math.fround(Math.sin(i) ** 2));
  const row: JobRow = {
    id: 'cgan|0|synthetic|cnn|0',
    generator: 'cgan',
    generatorSeed: 0,
    condition: 'synthetic',
    classifier: 'cnn',
    seed: 0,
    trainReal: 0,
    trainSynthetic: 40,
    trainClassCounts: [20, 20],
    metrics: { accuracy: 0.6 },
    correct: Uint8Array.from([1, 0, 1, 1, 0]),
    proba,
    classifierInfo: { name: 'cnn' },
    seconds: 1.5,
    finishedAt: '2026-12-06T00:00:00.000Z',
  };
  const back = decodeRow(JSON.parse(JSON.stringify(encodeRow(row))), 'job');
  assert.deepEqual(back, row);
  assert.throws(() => decodeRow({ ...encodeRow(row), seed: 'x' }, 'job 3'), QueueError);

  const images = {
    data: Uint8Array.from({ length: 3 * 4 * 4 }, (_, i) => (i * 37) % 256),
    count: 3,
    height: 4,
    width: 4,
    channels: 1 as const,
    maxValue: 255,
  };
  const labels = Int32Array.from([1, 0, 1]);
  const bytes = encodePool({ images, labels });
  const pool = decodePool(bytes, 'pool');
  assert.deepEqual(Array.from(pool.images.data), Array.from(images.data));
  assert.deepEqual(Array.from(pool.labels), [1, 0, 1]);
  assert.equal(pool.images.count, 3);
  assert.throws(() => decodePool(bytes.subarray(0, bytes.byteLength - 1), 'pool of x'), /damaged/);
});

test('Redis URLs: host, port, db, user and password (or from the environment), TLS with a CA; bad ones name --queue', async () => {
  const o = redisOptions('redis://127.0.0.1:6390/2', { env: {} });
  assert.equal(o.host, '127.0.0.1');
  assert.equal(o.port, 6390);
  assert.equal(o.db, 2);
  assert.equal(o.password, undefined);
  assert.equal(o.tls, undefined);
  assert.equal(o.maxRetriesPerRequest, null);
  assert.equal(redisOptions('redis://u:p%40ss@h', { env: {} }).password, 'p@ss');
  assert.equal(redisOptions('redis://u:p%40ss@h', { env: {} }).username, 'u');
  assert.equal(redisOptions('redis://h', { env: {} }).port, 6379);
  assert.equal(redisOptions('redis://h', { env: { MEDSYNTH_REDIS_PASSWORD: 'envpw' } }).password, 'envpw');
  const dir = await mkdtemp(join(tmpdir(), 'medsynth-redis-url-'));
  try {
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const tls = redisOptions('rediss://queue.example:6380', { ca, env: {} });
    assert.equal((tls.tls as { servername: string }).servername, 'queue.example');
    assert.ok(Buffer.isBuffer((tls.tls as { ca: Buffer }).ca));
    assert.throws(
      () => redisOptions('rediss://h', { ca: join(dir, 'missing.pem'), env: {} }),
      (e: unknown) => e instanceof ConfigError && /missing\.pem/.test(e.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  for (const bad of ['localhost:6379', 'http://h:6379', 'redis://h/db1'])
    assert.throws(
      () => redisOptions(bad, { env: {} }),
      (e: unknown) => e instanceof ConfigError && e.context.field === '--queue',
      bad,
    );
  assert.equal(safeQueueUrl('redis://:secret@h:1/0'), 'redis://:***@h:1/0');
});
