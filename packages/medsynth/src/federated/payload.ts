/**
 * Weights on the wire: the shared weight groups of a trainer (G, and D unless each site keeps its own) as one
 * little-endian float32 buffer in manifest order, with the manifest (group, name, shape of every tensor),
 * its byte length and its SHA-256; cut into chunks of at most `CHUNK_BYTES` for gRPC and put back together
 * with every bound checked (a stream that sends more bytes than announced, fewer, or other bytes is refused
 * before any weight is touched).
 *
 * Reading and assigning go through the family interface: a family's `checkpoint()` hands out its model
 * weights as the live variables (training/family.ts), which is what the federation reads and assigns. A
 * shared group holding anything but variables (e.g. a derived schedule tensor) is refused by name.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { FederationError } from '../runtime/errors.js';
import type { FamilyTrainer } from '../training/family.js';
import type { Manifest, TensorSpec } from './proto/federation.js';

/** Largest chunk of weight bytes in one message. */
export const CHUNK_BYTES = 1 << 20;

export interface Payload {
  readonly tensors: readonly TensorSpec[];
  readonly buffer: Float32Array;
}

const elements = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function sha256(buffer: Float32Array): Buffer {
  return createHash('sha256')
    .update(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength))
    .digest();
}

export function manifestOf(payload: Payload): Manifest {
  return {
    tensors: [...payload.tensors],
    totalBytes: payload.buffer.byteLength,
    sha256: sha256(payload.buffer),
  };
}

/** The buffer as chunks of at most `size` bytes (views, no copies). */
export function* chunksOf(buffer: Float32Array, size = CHUNK_BYTES): Generator<Buffer> {
  const bytes = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  for (let at = 0; at < bytes.byteLength; at += size)
    yield bytes.subarray(at, Math.min(at + size, bytes.byteLength));
}

/** Do two manifests describe the same tensors (groups, names, shapes, order)? The first difference, or null. */
export function manifestMismatch(a: readonly TensorSpec[], b: readonly TensorSpec[]): string | null {
  if (a.length !== b.length) return `${a.length} tensors where ${b.length} were expected`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.group !== y.group || x.name !== y.name || x.shape.join('x') !== y.shape.join('x'))
      return `tensor ${i} is ${x.group}/${x.name} [${x.shape.join('×')}], expected ${y.group}/${y.name} [${y.shape.join('×')}]`;
  }
  return null;
}

/**
 * Collects the chunks of one announced buffer. `maxBytes` bounds what a peer may announce; `add` refuses a
 * chunk past the announced size; `finish` checks the size and checksum and returns the weights.
 */
export class Assembler {
  readonly #bytes: Uint8Array;
  readonly #manifest: Manifest;
  #at = 0;

  constructor(manifest: Manifest, maxBytes: number, what: string) {
    const expected = 4 * manifest.tensors.reduce((n, t) => n + elements(t.shape), 0);
    if (manifest.totalBytes !== expected)
      throw new FederationError(
        `${what}: the manifest announces ${manifest.totalBytes} bytes, its tensors hold ${expected}`,
      );
    if (expected > maxBytes)
      throw new FederationError(`${what}: ${expected} bytes of weights exceed the limit of ${maxBytes}`);
    if (manifest.sha256.byteLength !== 32) throw new FederationError(`${what}: the manifest has no SHA-256`);
    this.#manifest = manifest;
    this.#bytes = new Uint8Array(expected);
    this.what = what;
  }

  readonly what: string;

  get received(): number {
    return this.#at;
  }

  add(chunk: Uint8Array): void {
    if (this.#at + chunk.byteLength > this.#bytes.byteLength)
      throw new FederationError(
        `${this.what}: more weight bytes than the manifest announced (${this.#bytes.byteLength})`,
      );
    this.#bytes.set(chunk, this.#at);
    this.#at += chunk.byteLength;
  }

  finish(): Payload {
    if (this.#at !== this.#bytes.byteLength)
      throw new FederationError(
        `${this.what}: the weights stopped after ${this.#at} of ${this.#bytes.byteLength} bytes`,
      );
    const buffer = new Float32Array(this.#bytes.buffer, 0, this.#bytes.byteLength / 4);
    if (!sha256(buffer).equals(Buffer.from(this.#manifest.sha256)))
      throw new FederationError(
        `${this.what}: the weights' SHA-256 does not match the manifest (corrupted in transit?)`,
      );
    return { tensors: this.#manifest.tensors, buffer };
  }
}

/** A trained weight of a trainer: its wire description and its live variable. */
export interface LiveWeight {
  readonly spec: TensorSpec;
  readonly variable: tf.Variable;
}

/** The live variables of `groups` in the trainer's checkpoint order (valid while the trainer lives). */
export async function liveWeights(trainer: FamilyTrainer, groups: readonly string[]): Promise<LiveWeight[]> {
  const snapshot = await trainer.checkpoint();
  try {
    const out: LiveWeight[] = [];
    for (const group of groups) {
      const tensors = snapshot.groups[group];
      if (!tensors)
        throw new FederationError(`the ${trainer.spec.family} trainer has no weight group "${group}"`);
      for (const { name, tensor } of tensors) {
        if (!(tensor instanceof tf.Variable))
          throw new FederationError(
            `${trainer.spec.family}: weight ${group}/${name} is derived state, not a trained weight; this family cannot be federated yet`,
          );
        out.push({ spec: { group, name, shape: [...tensor.shape] }, variable: tensor });
      }
    }
    return out;
  } finally {
    snapshot.release();
  }
}

/** The trainer's current weights of `groups` as a payload. */
export async function readWeights(trainer: FamilyTrainer, groups: readonly string[]): Promise<Payload> {
  const live = await liveWeights(trainer, groups);
  const buffer = new Float32Array(live.reduce((n, w) => n + elements(w.spec.shape), 0));
  let at = 0;
  for (const w of live) {
    const data = await w.variable.data();
    buffer.set(data as Float32Array, at);
    at += data.length;
  }
  return { tensors: live.map((w) => w.spec), buffer };
}

/** Per value of `readWeights(trainer, groups)`: 1 where the weight is trained, 0 for running statistics. */
export async function trainableMask(trainer: FamilyTrainer, groups: readonly string[]): Promise<Uint8Array> {
  const live = await liveWeights(trainer, groups);
  const mask = new Uint8Array(live.reduce((n, w) => n + elements(w.spec.shape), 0));
  let at = 0;
  for (const w of live) {
    const n = elements(w.spec.shape);
    if (w.variable.trainable) mask.fill(1, at, at + n);
    at += n;
  }
  return mask;
}

/** Assigns `payload` to the trainer's variables (its manifest must match the trainer's groups exactly). */
export async function assignWeights(trainer: FamilyTrainer, payload: Payload, where: string): Promise<void> {
  const groups = [...new Set(payload.tensors.map((t) => t.group))];
  const live = await liveWeights(trainer, groups);
  const mismatch = manifestMismatch(
    payload.tensors,
    live.map((w) => w.spec),
  );
  if (mismatch) throw new FederationError(`${where}: the weights do not fit this model: ${mismatch}`);
  let at = 0;
  tf.tidy(() => {
    for (const w of live) {
      const n = elements(w.spec.shape);
      w.variable.assign(tf.tensor(payload.buffer.subarray(at, at + n), w.spec.shape, 'float32'));
      at += n;
    }
  });
}

/** The groups a federation shares for a trainer: G, and D when present and `shareD`. */
export async function sharedGroups(trainer: FamilyTrainer, shareD: boolean): Promise<string[]> {
  const snapshot = await trainer.checkpoint();
  try {
    return ['G', ...(shareD && snapshot.groups['D'] ? ['D'] : [])];
  } finally {
    snapshot.release();
  }
}

/**
 * FedProx's decoupled pull of `live` toward `global` (tensors of the same shapes, in the same order):
 * θ ← θ − c (θ − θ_global), with c per group (strategy.ts `proximalCoefficient`).
 */
export function proximalPull(
  live: readonly LiveWeight[],
  global: readonly tf.Tensor[],
  coefficient: (group: string) => number,
): void {
  tf.tidy(() => {
    live.forEach((w, i) => {
      const c = coefficient(w.spec.group);
      if (c > 0) w.variable.assign(tf.sub(w.variable, tf.mul(tf.sub(w.variable, global[i]!), c)));
    });
  });
}

/** `payload` as one tensor per manifest entry (the caller disposes them). */
export function payloadTensors(payload: Payload): tf.Tensor[] {
  let at = 0;
  return payload.tensors.map((t) => {
    const n = elements(t.shape);
    const out = tf.tensor(payload.buffer.subarray(at, at + n), [...t.shape], 'float32');
    at += n;
    return out;
  });
}
