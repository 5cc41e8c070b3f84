/**
 * What travels on the study queue (BullMQ over Redis): job payloads and results, and how a worker knows a
 * payload's study config is the one its coordinator started.
 *
 * A payload carries the study's resolved config, its hash and (when the coordinator has a secret) a
 * signature; never image data — a worker reads the images from the dataset path in the config, and
 * synthetic pools from the artifact store.
 *
 *   hash      = SHA-256 of the config as canonical JSON (object keys sorted, undefined dropped), hex;
 *   signature = HMAC-SHA256(secret, hash), hex, with the secret from MEDSYNTH_QUEUE_SECRET.
 *
 * A worker recomputes the hash from the config it received and refuses the job unless it matches; a worker
 * with a secret also refuses a job whose signature is missing or wrong (so only holders of the secret can
 * make it train anything). Refusals fail the job once (no retries): they cannot succeed elsewhere.
 *
 * Results come back as the job's return value: a classifier job's row with its typed arrays as base64, a
 * pool job's instance record (and the artifact keys of its generator folder and pool).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { artifactKey } from './artifacts.js';
import { QueueError } from '../runtime/errors.js';
import type { StudyConfig } from '../study/config.js';
import type { JobRow } from '../study/store.js';
import { InstanceRecordSchema, type InstanceRecord } from '../study/summary.js';

/** The BullMQ queue every study and worker uses (jobs carry their study's hash). */
export const QUEUE_NAME = 'medsynth-study';
export const SECRET_ENV = 'MEDSYNTH_QUEUE_SECRET';

/** JSON with object keys sorted at every level (the form the hash is taken of). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** The study config's hash (module header); the config as it travels (JSON) is what is hashed. */
export function studyHash(config: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(JSON.parse(JSON.stringify(config))))
    .digest('hex');
}

export function signHash(hash: string, secret: string): string {
  return createHmac('sha256', secret).update(hash).digest('hex');
}

export const JOB_KINDS = ['pool', 'classify'] as const;

export const JobPayloadSchema = z
  .object({
    format: z.literal('medsynth-queue-job'),
    version: z.literal(1),
    kind: z.enum(JOB_KINDS),
    studyHash: z.string().regex(/^[0-9a-f]{64}$/),
    signature: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .nullable(),
    /** The resolved study config (hashed as it travels). */
    config: z.record(z.string(), z.unknown()),
    /** The artifact store's location (artifacts.ts). */
    artifacts: z.string().min(1),
    /** pool: the generator instance's key; classify: the instance whose pool it trains on, or null. */
    instanceKey: z.string().nullable(),
    /** classify: the study job's id. */
    jobId: z.string().nullable(),
  })
  .strict();
export type JobPayload = z.output<typeof JobPayloadSchema>;

export function makePayload(
  config: StudyConfig,
  hash: string,
  secret: string | undefined,
  fields: Pick<JobPayload, 'kind' | 'artifacts' | 'instanceKey' | 'jobId'>,
): JobPayload {
  return {
    format: 'medsynth-queue-job',
    version: 1,
    studyHash: hash,
    signature: secret ? signHash(hash, secret) : null,
    config: JSON.parse(JSON.stringify(config)) as Record<string, unknown>,
    ...fields,
  };
}

/**
 * The payload of a queue job, checked: its shape, its config against its hash, and — when this worker has a
 * secret — its signature. Throws a QueueError saying which failed.
 */
export function verifyPayload(data: unknown, secret: string | undefined, where: string): JobPayload {
  const parsed = JobPayloadSchema.safeParse(data);
  if (!parsed.success)
    throw new QueueError(`${where}: not a medsynth study job`, {
      field: parsed.error.issues[0]!.path.join('.'),
      found: parsed.error.issues[0]!.message,
    });
  const p = parsed.data;
  const hash = studyHash(p.config);
  if (hash !== p.studyHash)
    throw new QueueError(`${where}: the study config does not match its hash (altered on the way?)`, {
      field: 'studyHash',
      expected: p.studyHash,
      found: hash,
    });
  if (secret !== undefined) {
    if (p.signature === null)
      throw new QueueError(
        `${where}: the job is not signed, and this worker only runs signed jobs (${SECRET_ENV} is set here; set the same on the study's machine)`,
        { field: 'signature' },
      );
    const want = Buffer.from(signHash(hash, secret), 'hex');
    if (!timingSafeEqual(want, Buffer.from(p.signature, 'hex')))
      throw new QueueError(
        `${where}: the job's signature does not verify (another ${SECRET_ENV} on the study's machine?)`,
        { field: 'signature' },
      );
  }
  return p;
}

/** A BullMQ job id for a study job: stable (a re-enqueued job is the same job), free of ':'. */
export function queueJobId(hash: string, kind: (typeof JOB_KINDS)[number], id: string): string {
  return `${hash.slice(0, 16)}-${kind}-${createHash('sha256').update(id).digest('hex').slice(0, 24)}`;
}

const b64 = (a: Uint8Array | Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** A classifier job's row as JSON (typed arrays as base64). */
export function encodeRow(row: JobRow): Record<string, unknown> {
  return { ...row, correct: b64(row.correct), proba: b64(row.proba) };
}

const RowSchema = z
  .object({
    id: z.string(),
    generator: z.string().nullable(),
    generatorSeed: z.number().int().nullable(),
    condition: z.string(),
    classifier: z.string(),
    seed: z.number().int(),
    trainReal: z.number().int().min(0),
    trainSynthetic: z.number().int().min(0),
    trainClassCounts: z.array(z.number().int().min(0)),
    metrics: z.record(z.string(), z.unknown()),
    correct: z.string(),
    proba: z.string(),
    classifierInfo: z.record(z.string(), z.unknown()),
    seconds: z.number().min(0),
    finishedAt: z.string(),
  })
  .strict();

export function decodeRow(value: unknown, where: string): JobRow {
  const parsed = RowSchema.safeParse(value);
  if (!parsed.success)
    throw new QueueError(`${where}: the worker's result is not a job row`, {
      field: parsed.error.issues[0]!.path.join('.'),
      found: parsed.error.issues[0]!.message,
    });
  const r = parsed.data;
  const correct = Buffer.from(r.correct, 'base64');
  const proba = Buffer.from(r.proba, 'base64');
  if (proba.byteLength % 4 !== 0)
    throw new QueueError(`${where}: the probabilities are not float32`, { field: 'proba' });
  const p = new Float32Array(proba.byteLength / 4);
  new Uint8Array(p.buffer).set(proba);
  return { ...r, correct: Uint8Array.from(correct), proba: p };
}

export const PoolResultSchema = z
  .object({
    record: InstanceRecordSchema,
    /** The artifact holding the instance's folder (runs, synthetic-grid.png, evaluation/). */
    folder: z.string(),
    /** The artifact holding its synthetic pool. */
    pool: z.string(),
    /** The folder the record's run paths start with on the worker (the coordinator rewrites them). */
    root: z.string(),
  })
  .strict();
export type PoolResult = z.output<typeof PoolResultSchema>;

export function decodePoolResult(value: unknown, where: string): PoolResult {
  const parsed = PoolResultSchema.safeParse(value);
  if (!parsed.success)
    throw new QueueError(`${where}: the worker's result is not a pool record`, {
      field: parsed.error.issues[0]!.path.join('.'),
      found: parsed.error.issues[0]!.message,
    });
  return parsed.data;
}

/** The artifact keys of an instance's folder, pool and record. */
export function instanceArtifacts(hash: string, instanceKey: string) {
  return {
    folder: artifactKey('generator', hash, instanceKey),
    pool: artifactKey('pool', hash, instanceKey),
    record: artifactKey('record', hash, instanceKey),
  };
}

export type { InstanceRecord };
