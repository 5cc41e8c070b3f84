// Weights on the wire and at the site: chunking and reassembly refuse every inconsistency; a trainer's shared
// weights round-trip; FedProx's pull at full strength returns the weights to the global ones; sharing only G
// leaves each site's D its own.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { LocalTrainer } from '../../src/federated/local.js';
import {
  Assembler,
  chunksOf,
  manifestOf,
  readWeights,
  assignWeights,
  sharedGroups,
  type Payload,
} from '../../src/federated/payload.js';
import { FederationError } from '../../src/runtime/errors.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { generatorFamily } from '../../src/training/families/index.js';
import { ganSpecFor } from '../../src/training/loop.js';
import { loadRealSet, type RealSet } from '../../src/training/real-data.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

const tiny = tinyTrainOptions(() => ({ kimg: 1 }));
let real: RealSet;

before(async () => {
  await selectBackend();
  const o = tiny();
  real = await loadRealSet(o.data, 28, 1, {}, {});
});

function payloadOf(values: number[]): Payload {
  return {
    tensors: [
      { group: 'G', name: 'w', shape: [2, 2] },
      { group: 'D', name: 'b', shape: [values.length - 4] },
    ],
    buffer: Float32Array.from(values),
  };
}

test('chunks reassemble to the same buffer; extra, missing or altered bytes and oversize manifests are refused', () => {
  const p = payloadOf(Array.from({ length: 1000 }, (_, i) => i / 7));
  const m = manifestOf(p);
  const chunks = [...chunksOf(p.buffer, 333)];
  assert.equal(chunks.length, Math.ceil(4000 / 333));
  const a = new Assembler(m, 1 << 20, 'test');
  for (const c of chunks) a.add(c);
  assert.deepEqual(a.finish().buffer, p.buffer);

  const short = new Assembler(m, 1 << 20, 'test');
  for (const c of chunks.slice(1)) short.add(c);
  assert.throws(() => short.finish(), /stopped after 3667 of 4000 bytes/);
  const extra = new Assembler(m, 1 << 20, 'test');
  for (const c of chunks) extra.add(c);
  assert.throws(() => extra.add(new Uint8Array(1)), /more weight bytes than the manifest announced/);
  const altered = new Assembler(m, 1 << 20, 'test');
  chunks.forEach((c, i) => altered.add(i === 3 ? Uint8Array.from(c, (b, j) => (j === 0 ? b ^ 1 : b)) : c));
  assert.throws(() => altered.finish(), /SHA-256 does not match/);
  assert.throws(() => new Assembler(m, 3999, 'test'), /exceed the limit of 3999/);
  assert.throws(() => new Assembler({ ...m, totalBytes: 4004 }, 1 << 20, 'test'), FederationError);
});

test("a trainer's shared weights round-trip through a payload; a payload of another model is refused", async () => {
  const options = tiny();
  const family = generatorFamily('cgan');
  const spec = ganSpecFor(options, real);
  const a = family.trainer(spec, options);
  const b = family.trainer({ ...spec, seed: spec.seed + 1 }, options);
  try {
    const groups = await sharedGroups(a, true);
    assert.deepEqual(groups, ['G', 'D']);
    const pa = await readWeights(a, groups);
    const pb = await readWeights(b, groups);
    assert.notDeepEqual(pa.buffer, pb.buffer);
    await assignWeights(b, pa, 'test');
    assert.deepEqual((await readWeights(b, groups)).buffer, pa.buffer);
    await assert.rejects(
      assignWeights(b, { ...pa, tensors: pa.tensors.slice(1) }, 'test'),
      /do not fit this model/,
    );
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('FedProx at full strength (lr·μ = 1) returns the shared weights to the global ones; μ = 0 does not', async () => {
  const options = tiny();
  const spec = ganSpecFor(options, real);
  const site = new LocalTrainer(options, spec, real, 'a');
  const family = generatorFamily('cgan');
  const source = family.trainer(spec, options);
  try {
    const global = await readWeights(source, ['G', 'D']);
    const request = { round: 1, rounds: 1, localSteps: 3, progress: 0, imagesSeen: 0 };
    const free = await site.fit(global, { ...request, proxMu: 0 });
    assert.notDeepEqual(free.payload.buffer, global.buffer);
    assert.equal(free.examples, 3 * options.batchSize * options.dSteps);
    const pulled = await site.fit(global, { ...request, proxMu: 1 / Math.min(options.gLr, options.dLr) });
    let worst = 0;
    for (let i = 0; i < global.buffer.length; i++)
      worst = Math.max(worst, Math.abs(pulled.payload.buffer[i]! - global.buffer[i]!));
    assert.ok(worst < 1e-6, `weights moved by ${worst}`);
  } finally {
    site.dispose();
    source.dispose();
  }
});

test('sharing only G: the update carries G alone; later rounds (FedProx too) add no tensors', async () => {
  const options = tiny();
  const spec = ganSpecFor(options, real);
  const site = new LocalTrainer(options, spec, real, 'a');
  const family = generatorFamily('cgan');
  const source = family.trainer(spec, options);
  try {
    const global = await readWeights(source, ['G']);
    const request = { round: 1, rounds: 2, localSteps: 2, progress: 0, imagesSeen: 0, proxMu: 0 };
    const r1 = await site.fit(global, request);
    // (the first round made the optimisers' slot variables; later rounds must not add tensors)
    const before = tf.memory().numTensors;
    assert.deepEqual([...new Set(r1.payload.tensors.map((t) => t.group))], ['G']);
    assert.equal(r1.payload.buffer.length, global.buffer.length);
    await site.fit(global, { ...request, round: 2, progress: 0.5, proxMu: 0.5 });
    assert.equal(tf.memory().numTensors, before, 'a round leaks tensors');
  } finally {
    site.dispose();
    source.dispose();
  }
});
