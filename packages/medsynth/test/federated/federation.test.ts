// A federation in one process (coordinator and sites over gRPC on 127.0.0.1): the next global model is
// FedAvg of the sites' updates, G_ema follows the recursion, the run is an ordinary run, no message carries
// an image; a coordinator killed between rounds resumes; mutual TLS keeps out sites the CA did not sign.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { makeCertificates, type CertificateFiles } from '../../src/federated/certs.js';
import {
  runCoordinator,
  type CoordinatorControl,
  type RoundRecord,
} from '../../src/federated/coordinator.js';
import { LocalTrainer } from '../../src/federated/local.js';
import {
  resolveFederationOptions,
  serverOptimizerOf,
  type FederationOptionsInput,
} from '../../src/federated/options.js';
import { trainableMask, type Payload } from '../../src/federated/payload.js';
import { FederationService } from '../../src/federated/proto/federation.js';
import { partitionIds } from '../../src/federated/simulate.js';
import { runSite, type SiteSetup } from '../../src/federated/site.js';
import { fedAvg, serverStep, type ServerOptimizerState } from '../../src/federated/strategy.js';
import { generatorFamily } from '../../src/training/families/index.js';
import { channelCredentials, serverCredentials } from '../../src/federated/tls.js';
import { openDataset } from '../../src/data/source.js';
import { imagesToFloat } from '../../src/data/image/tensors.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { FederationError } from '../../src/runtime/errors.js';
import { disposeWeightSets, latestCheckpoint, loadCheckpoint } from '../../src/training/checkpoint.js';
import { emaBeta } from '../../src/training/ema.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

let dir: string;
let certs: CertificateFiles;
let otherCerts: CertificateFiles;
const tiny = tinyTrainOptions(() => ({ outDir: dir, kimg: 1 }));
const data = tinyTrainOptions(() => ({ kimg: 1 }))().data;

before(async () => {
  await selectBackend();
  dir = await mkdtemp(join(tmpdir(), 'medsynth-fed-'));
  certs = await makeCertificates(join(dir, 'certs'), { sites: ['a', 'b'] });
  otherCerts = await makeCertificates(join(dir, 'other-ca'), { sites: ['a'] });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const federation = (extra: Partial<FederationOptionsInput> = {}) =>
  resolveFederationOptions({
    rounds: 3,
    localSteps: 2,
    minSites: 2,
    port: 0,
    roundTimeoutSeconds: 60,
    joinTimeoutSeconds: 60,
    ...extra,
  });

/** Runs a coordinator and `sites` (started once it listens); resolves with both outcomes. */
async function federate(
  setup: Partial<Parameters<typeof runCoordinator>[0]>,
  sites: (port: number) => Omit<SiteSetup, 'coordinator'>[],
  control: CoordinatorControl = {},
) {
  const siteRuns: Promise<unknown>[] = [];
  const result = await runCoordinator(
    {
      federation: federation(),
      train: tiny(),
      credentials: grpc.ServerCredentials.createInsecure(),
      authenticated: false,
      outDir: join(dir, 'runs'),
      ...setup,
    },
    {
      ...control,
      onListening: (port, runDir) => {
        control.onListening?.(port, runDir);
        for (const s of sites(port)) siteRuns.push(runSite({ ...s, coordinator: `127.0.0.1:${port}` }));
      },
    },
  );
  return { result, sites: await Promise.allSettled(siteRuns) };
}

async function rounds(runDir: string): Promise<RoundRecord[]> {
  return (await readFile(join(runDir, 'rounds.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RoundRecord);
}

/** Equal up to float32 rounding of sums taken in another order. */
function assertClose(got: Float32Array, want: Float32Array): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++)
    assert.ok(
      Math.abs(got[i]! - want[i]!) <= 1e-6 * Math.max(1, Math.abs(want[i]!)),
      `weight ${i}: ${got[i]} vs ${want[i]}`,
    );
}

interface FitCall {
  readonly round: number;
  readonly global: Payload;
  readonly update: Payload;
  readonly size: number;
  readonly examples: number;
}

/** Records what every site trains from and sends back (in-process sites share the class) until `restore()`. */
function recordFits(): { calls: FitCall[]; restore(): void } {
  const calls: FitCall[] = [];
  const fit = LocalTrainer.prototype.fit;
  LocalTrainer.prototype.fit = async function (this: LocalTrainer, global, request, signal) {
    const r = await fit.call(this, global, request, signal);
    calls.push({ round: request.round, global, update: r.payload, size: this.size, examples: r.examples });
    return r;
  };
  return { calls, restore: () => (LocalTrainer.prototype.fit = fit) };
}

/** FedAvg of the updates the sites sent in `calls`. */
const averageOf = (calls: readonly FitCall[]) =>
  fedAvg(
    calls.map((c, i) => ({ site: String(i), weights: c.update.buffer, size: c.size, examples: c.examples })),
  );

const flat = (m: Record<string, { dataSync(): ArrayLike<number> }>, order: readonly string[]) =>
  Float32Array.from(order.flatMap((n) => Array.from(m[n]!.dataSync())));

test('FedAvg of the updates is the next global model, G_ema follows it, and no message carries an image', async () => {
  const { calls, restore } = recordFits();
  // Record every message's bytes as the server reads and writes them.
  const wire: Buffer[] = [];
  const service = FederationService as unknown as Record<
    string,
    { requestDeserialize: (b: Buffer) => unknown; responseSerialize: (v: unknown) => Buffer }
  >;
  const saved = Object.entries(service).map(([k, m]) => [k, { ...m }] as const);
  for (const m of Object.values(service)) {
    const des = m.requestDeserialize;
    const ser = m.responseSerialize;
    m.requestDeserialize = (b) => (wire.push(Buffer.from(b)), des(b));
    m.responseSerialize = (v) => {
      const b = ser(v);
      wire.push(Buffer.from(b));
      return b;
    };
  }
  try {
    const ids = await Promise.all([0, 1].map((i) => partitionIds(data, 2, i, 0, 0.3)));
    assert.notEqual(ids[0]!.length, ids[1]!.length);
    const { result, sites } = await federate({}, () =>
      ['a', 'b'].map((name, i) => ({
        name,
        credentials: grpc.credentials.createInsecure(),
        data,
        subset: { trainImages: ids[i]! },
      })),
    );
    for (const s of sites) assert.equal(s.status, 'fulfilled', String((s as PromiseRejectedResult).reason));
    const log = await rounds(result.runDir);
    assert.deepEqual(
      log.map((r) => [r.round, r.accepted.length, r.rejected.length, r.missing.length]),
      [
        [1, 2, 0, 0],
        [2, 2, 0, 0],
        [3, 2, 0, 0],
      ],
    );
    assert.ok(log.every((r) => r.bytes.sent > 0 && r.bytes.received > 0 && r.seconds.round >= r.seconds.fit));
    assert.equal(calls.length, 6);
    // Round r+1's global weights = the mean of round r's updates weighted by site size (unequal: non-IID).
    for (const r of [1, 2]) {
      const updates = calls.filter((c) => c.round === r);
      const want = averageOf(updates);
      for (const next of calls.filter((c) => c.round === r + 1)) assertClose(next.global.buffer, want);
      // and the sites really trained: their updates differ from the weights they were sent
      for (const u of updates) assert.notDeepEqual(u.update.buffer, u.global.buffer);
    }
    // The final checkpoint: G and D are round 3's aggregate; G_ema the EMA recursion over the rounds' G.
    const ckptDir = (await latestCheckpoint(result.runDir))!;
    const ckpt = await loadCheckpoint(ckptDir, ['G', 'D', 'G_ema']);
    try {
      const last = averageOf(calls.filter((c) => c.round === 3));
      const gd = Float32Array.from([
        ...flat(ckpt.weights['G']!, ckpt.order['G']!),
        ...flat(ckpt.weights['D']!, ckpt.order['D']!),
      ]);
      assertClose(gd, last);
      const gLength = calls[0]!.global.tensors
        .filter((t) => t.group === 'G')
        .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      const ema = Float64Array.from(calls.find((c) => c.round === 1)!.global.buffer.subarray(0, gLength));
      const options = tiny();
      let seen = 0;
      for (const r of [1, 2, 3]) {
        const updates = calls.filter((c) => c.round === r);
        const examples = updates.reduce((s, c) => s + c.examples, 0);
        const g = r < 3 ? calls.find((c) => c.round === r + 1)!.global.buffer : last;
        seen += examples;
        const beta = emaBeta(examples, options.emaKimg * 1000, seen, options.emaRampup);
        for (let i = 0; i < gLength; i++) ema[i] = Math.fround(beta * ema[i]! + (1 - beta) * g[i]!);
      }
      const gEma = flat(ckpt.weights['G_ema']!, ckpt.order['G_ema']!);
      let worst = 0;
      for (let i = 0; i < gLength; i++) worst = Math.max(worst, Math.abs(gEma[i]! - ema[i]!));
      assert.ok(worst < 1e-5, `G_ema differs from the recursion by ${worst}`);
      assert.equal(ckpt.state.tick, 3);
      assert.equal(
        ckpt.state.nimg,
        calls.reduce((s, c) => s + c.examples, 0),
      );
    } finally {
      disposeWeightSets(ckpt.weights);
    }
    // An ordinary run: generate loads it.
    const { generator, run } = await loadGenerator(result.runDir);
    assert.equal(run.network, 'G_ema');
    assert.deepEqual(run.classNames, ['normal', 'pneumonia']);
    generator.dispose();
    // No message carries an image: not one of 64 train images of each site appears, as bytes or as the
    // float32 values the model would see, in any message either way.
    const ds = await openDataset(data);
    const train = ds.split('train');
    const sample = train.subset(Array.from({ length: 64 }, (_, i) => i * 37));
    const images = await sample.load({ size: 28, channels: 1, bitDepth: 8 });
    const floats = imagesToFloat(
      images,
      Int32Array.from({ length: 64 }, (_, i) => i),
    );
    const px = 28 * 28;
    assert.ok(wire.length > 20);
    for (let i = 0; i < 64; i++) {
      const raw = Buffer.from(images.data.buffer, images.data.byteOffset + i * px, px);
      const f = Buffer.from(floats.buffer, floats.byteOffset + i * px * 4, px * 4);
      for (const m of wire) {
        assert.equal(m.indexOf(raw), -1, `image ${i}'s bytes are in a message`);
        assert.equal(m.indexOf(f), -1, `image ${i}'s float values are in a message`);
      }
    }
    // What crossed the wire is weights and headers: chunks add up to the manifests' bytes.
    const total = wire.reduce((s, b) => s + b.byteLength, 0);
    const weights = log.reduce((s, r) => s + r.bytes.sent + r.bytes.received, 0);
    assert.ok(
      total <= weights * 1.02 + 64 * 1024,
      `${total} bytes on the wire, ${weights} in weights and headers`,
    );
  } finally {
    restore();
    for (const [k, m] of saved) Object.assign(service[k]!, m);
  }
});

test('a coordinator stopped after round 2 resumes from its checkpoint (server momentum included); the sites reconnect by themselves', async () => {
  const ids = await Promise.all([0, 1].map((i) => partitionIds(data, 2, i, 0)));
  const { calls, restore } = recordFits();
  const momentum = { serverOptimizer: 'momentum', serverMomentum: 0.5, serverLr: 1.5 } as const;
  try {
    const abort = new AbortController();
    let port = 0;
    let runDir = '';
    const sites: Promise<unknown>[] = [];
    await assert.rejects(
      runCoordinator(
        {
          federation: federation({ rounds: 4, ...momentum }),
          train: tiny(),
          credentials: grpc.ServerCredentials.createInsecure(),
          authenticated: false,
          outDir: join(dir, 'runs'),
        },
        {
          signal: abort.signal,
          onProgress: (e) => {
            if (e.type === 'checkpoint' && e.step === 4) abort.abort(new Error('killed'));
          },
          onListening: (p, d) => {
            port = p;
            runDir = d;
            for (const [i, name] of ['a', 'b'].entries())
              sites.push(
                runSite({
                  name,
                  coordinator: `127.0.0.1:${p}`,
                  credentials: grpc.credentials.createInsecure(),
                  data,
                  subset: { trainImages: ids[i]! },
                  retryMinutes: 1,
                }),
              );
          },
        },
      ),
      /killed/,
    );
    assert.deepEqual(
      (await rounds(runDir)).map((r) => r.round),
      [1, 2],
    );
    const result = await runCoordinator({
      federation: federation({ rounds: 4, port }),
      train: tiny(),
      credentials: grpc.ServerCredentials.createInsecure(),
      authenticated: false,
      outDir: join(dir, 'runs'),
      resume: runDir,
    });
    const settled = await Promise.allSettled(sites);
    for (const s of settled) assert.equal(s.status, 'fulfilled', String((s as PromiseRejectedResult).reason));
    const log = await rounds(runDir);
    assert.deepEqual(
      log.map((r) => [r.round, r.accepted.length]),
      [
        [1, 2],
        [2, 2],
        [3, 2],
        [4, 2],
      ],
    );
    assert.equal(result.rounds, 4);
    const ckpt = await loadCheckpoint((await latestCheckpoint(runDir))!, []);
    assert.equal(ckpt.state.tick, 4);
    assert.equal(
      ckpt.state.nimg,
      log.reduce((s, r) => s + r.examples, 0),
    );
    // Each round's global weights follow FedAvgM from the last (η 1.5, β 0.5), across the restart: a
    // coordinator that lost its momentum buffer would send other weights in round 3.
    const options = tiny();
    const family = generatorFamily(options.model);
    const trainer = family.trainer(family.specFor(options, { channels: 1, numClasses: 2 }), options);
    const mask = await trainableMask(trainer, ['G', 'D']);
    trainer.dispose();
    assert.ok(mask.includes(0) && mask.includes(1), 'the tiny model has running statistics and weights');
    const state: ServerOptimizerState = { m: null, v: null };
    const settings = serverOptimizerOf(federation(momentum));
    for (const r of [1, 2, 3]) {
      const sent = calls.filter((c) => c.round === r);
      const averaged = averageOf(sent);
      const want = serverStep(sent[0]!.global.buffer, averaged, mask, settings, state);
      assert.notDeepEqual(want, averaged);
      for (const next of calls.filter((c) => c.round === r + 1)) assertClose(next.global.buffer, want);
    }
  } finally {
    restore();
  }
});

test('mutual TLS: a site the CA signed takes part; another CA’s certificate, or a certificate for another name, is refused', async () => {
  const ids = await partitionIds(data, 2, 0, 0);
  const tls = { cert: certs.coordinator.cert, key: certs.coordinator.key, ca: certs.ca.cert };
  const site = (name: string, pair: { cert: string; key: string }, ca: string, retryMinutes = 1) =>
    channelCredentials({ ...pair, ca }).then((credentials) => ({
      name,
      credentials,
      data,
      subset: { trainImages: ids },
      retryMinutes,
    }));
  const good = await site('a', certs.sites['a']!, certs.ca.cert);
  const foreign = await site('a', otherCerts.sites['a']!, certs.ca.cert, 0.05);
  const impostor = await site('b', certs.sites['a']!, certs.ca.cert);
  const refused: Promise<unknown>[] = [];
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => null,
      (e: unknown) => e,
    );
  const joined: string[] = [];
  const { result, sites } = await federate(
    {
      federation: federation({ rounds: 1, minSites: 1 }),
      credentials: await serverCredentials(tls),
      authenticated: true,
    },
    (port) => {
      const at = `127.0.0.1:${port}`;
      refused.push(
        outcome(runSite({ ...foreign, coordinator: at })),
        outcome(runSite({ ...impostor, coordinator: at })),
      );
      return [good];
    },
    {
      onProgress: (e) => {
        if (e.type === 'phase' && e.detail?.startsWith('site ')) joined.push(e.detail);
      },
    },
  );
  assert.equal(sites[0]!.status, 'fulfilled', String((sites[0] as PromiseRejectedResult).reason));
  assert.deepEqual(result.sites, ['a']);
  assert.ok(
    joined.every((j) => j.startsWith('site a ')),
    joined.join('; '),
  );
  const [f, i] = await Promise.all(refused);
  assert.ok(f instanceof FederationError, String(f));
  assert.match(String(f), /has not answered/);
  assert.match(String(i), /certificate is for "a", not "b"/);
});

test('other families federate the same way (stylegan2, ddpm: one round, two sites); pggan is refused up front', async () => {
  const ids = await Promise.all([0, 1].map((i) => partitionIds(data, 2, i, 0)));
  for (const model of ['stylegan2', 'ddpm'] as const) {
    const { result, sites } = await federate(
      { federation: federation({ rounds: 1, localSteps: 1 }), train: tiny({ model }) },
      () =>
        ['a', 'b'].map((name, i) => ({
          name,
          credentials: grpc.credentials.createInsecure(),
          data,
          subset: { trainImages: ids[i]! },
        })),
    );
    for (const s of sites)
      assert.equal(s.status, 'fulfilled', `${model}: ${String((s as PromiseRejectedResult).reason)}`);
    const log = await rounds(result.runDir);
    assert.equal(log[0]!.accepted.length, 2, model);
    const { generator, run } = await loadGenerator(result.runDir);
    assert.equal(run.spec.family, model);
    generator.dispose();
  }
  await assert.rejects(
    runCoordinator({
      federation: federation(),
      train: tiny({ model: 'pggan' }),
      credentials: grpc.ServerCredentials.createInsecure(),
      authenticated: false,
      outDir: join(dir, 'runs'),
    }),
    /pggan cannot be federated yet/,
  );
});
