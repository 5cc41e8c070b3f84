/**
 * The federation's coordinator: a gRPC server (federation.proto) that holds no images. Sites join with
 * their class names and counts; once `minSites` agree on the classes and channels, the coordinator builds
 * the model from the training options (seeded, so every site starts from the same weights) and runs rounds:
 *
 *   1. choose this round's sites among those waiting for work (`fraction`, a seeded draw);
 *   2. send each the shared weights (G, and D unless each site keeps its own) with the round's instruction;
 *   3. wait for their updates until all came or `roundTimeoutSeconds` passed (a site killed mid-round
 *      costs the round its update, not the round itself; it rejoins later under its name);
 *   4. screen the updates (shape, finiteness, norm outliers; strategy.ts) and log every rejection's reason;
 *   5. FedAvg the accepted ones (weights ∝ the sites' sizes), step the server optimiser toward that average
 *      (none, FedAvgM or FedAdam; strategy.ts), move G_ema toward the new G, and write the
 *      round as an ordinary medsynth checkpoint (G, D, G_ema …) in the run directory — atomically — so
 *      `generate`, `evaluate` and `study --generator-run` use a federated run like any other; plus a line of
 *      `rounds.jsonl` (sites, examples, rejections, bytes, timings) and, every tick, a sample grid.
 *
 * A killed coordinator restarts with `resume` (the run directory): it restores the last round's checkpoint
 * and continues with the next round; sites reconnect by themselves.
 *
 * Timing of a round (rounds.jsonl `seconds`): `round` from the broadcast's start to the aggregate; the
 * sites' longest local fit is `fit`; `overhead` = round − fit (serialising, sending, receiving, checking and
 * aggregating weights, and waiting on the slowest link). Bytes are counted as encoded on the wire
 * (headers and chunks, both directions).
 */
import { randomUUID } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { appendFile, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { type TrainOptions, TrainOptionsSchema } from '../config/train-options.js';
import { resolveOptions } from '../config/data-options.js';
import { encodePng } from '../data/image/grid.js';
import { describeBackend } from '../runtime/backend.js';
import { CheckpointError, ConfigError, FederationError } from '../runtime/errors.js';
import { withFileContext, writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { Rng } from '../runtime/random.js';
import {
  disposeWeightSets,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type NamedTensor,
  type TrainState,
} from '../training/checkpoint.js';
import { emaBeta } from '../training/ema.js';
import { familyOfSpec, generatorFamily } from '../training/families/index.js';
import type { BaseSpec, FamilyTrainer } from '../training/family.js';
import { readRunOptions, sampleGrid } from '../training/loop.js';
import { createRunDir, dataName } from '../training/run-dir.js';
import { FederationOptionsSchema, serverOptimizerOf, type FederationOptions } from './options.js';
import {
  Assembler,
  chunksOf,
  manifestMismatch,
  manifestOf,
  readWeights,
  sharedGroups,
  assignWeights,
  trainableMask,
  type Payload,
} from './payload.js';
import {
  FederationService,
  Instruction,
  type FitInstruction,
  type JoinReply,
  type PullRequest,
  type PushReply,
  type SiteInfo,
  Update,
  type UpdateHeader,
} from './proto/federation.js';
import {
  chooseParticipants,
  emaInPlace,
  fedAvg,
  screenUpdates,
  serverStep,
  type ServerOptimizerState,
  type SiteUpdate,
} from './strategy.js';
import { isSiteName } from './certs.js';
import { peerSiteName } from './tls.js';

/** Largest gRPC message either end accepts: one weight chunk (1 MiB) plus headers. */
export const MAX_MESSAGE_BYTES = 4 << 20;

export interface CoordinatorControl extends RunControl {
  /** Called once the server listens, with its port (the one asked for, or the one the OS chose for 0) and the run directory. */
  readonly onListening?: ((port: number, runDir: string) => void) | undefined;
}

export interface CoordinatorSetup {
  readonly federation: FederationOptions;
  /** The model (family, sizes, rates, seed, EMA…); `data.source` is what the run records as its data. */
  readonly train: TrainOptions;
  readonly credentials: grpc.ServerCredentials;
  /** Whether the credentials authenticate sites (mutual TLS): a site must then join under its certificate's name. */
  readonly authenticated: boolean;
  /** Where the run directory is made (a new numbered one); ignored with `resume`. */
  readonly outDir: string;
  /** An existing federated run directory to continue. */
  readonly resume?: string | undefined;
}

export interface FederationResult {
  readonly runDir: string;
  readonly checkpoint: string;
  readonly rounds: number;
  readonly kimg: number;
  readonly seconds: number;
  readonly sites: readonly string[];
}

/** The checkpoint group holding the server optimiser's buffers (`m`, and `v` for adam). */
export const SERVER_GROUP = 'server';

/** The round log in a federated run directory: one `RoundRecord` per line. */
export const ROUNDS_FILE = 'rounds.jsonl';

export const RoundRecordSchema = z.object({
  round: z.number().int().min(1),
  participants: z.array(z.string()).readonly(),
  accepted: z.array(z.string()).readonly(),
  rejected: z.array(z.object({ site: z.string(), reason: z.string() }).readonly()).readonly(),
  /** Chosen sites whose update did not arrive before the round's timeout. */
  missing: z.array(z.string()).readonly(),
  examples: z.number().min(0),
  kimg: z.number().min(0),
  bytes: z.object({ sent: z.number().min(0), received: z.number().min(0) }).readonly(),
  seconds: z
    .object({
      round: z.number().min(0),
      fit: z.number().min(0),
      overhead: z.number(),
      broadcast: z.number().min(0),
      aggregate: z.number().min(0),
      checkpoint: z.number().min(0),
    })
    .readonly(),
  norms: z.record(z.string(), z.number()).readonly(),
  siteMetrics: z.record(z.string(), z.record(z.string(), z.number()).readonly()).readonly(),
  time: z.string(),
});
/** One line of a federated run's `rounds.jsonl`. */
export type RoundRecord = z.output<typeof RoundRecordSchema>;

/** A federated run's `rounds.jsonl`, every line validated. */
export async function readRounds(runDir: string): Promise<RoundRecord[]> {
  const file = join(runDir, ROUNDS_FILE);
  const text = await withFileContext('round log', file, () => readFile(file, 'utf8'));
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line, i) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new FederationError('a line of the round log is not JSON', { file, field: `line ${i + 1}` });
      }
      const r = RoundRecordSchema.safeParse(parsed);
      if (!r.success)
        throw new FederationError('a line of the round log is not a round record', {
          file,
          field: `line ${i + 1}`,
          found: r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; '),
        });
      return r.data;
    });
}

const SiteRecordSchema = z.object({
  name: z.string(),
  classCounts: z.array(z.number().int().min(0)),
  software: z.string(),
});
type SiteRecord = z.output<typeof SiteRecordSchema>;

/** federation.json: what a restarted coordinator needs beyond the checkpoint. */
const FederationStateSchema = z
  .object({
    format: z.literal('medsynth-federation'),
    version: z.literal(1),
    federationId: z.string().min(1),
    options: FederationOptionsSchema,
    classNames: z.array(z.string()).min(1),
    channels: z.union([z.literal(1), z.literal(3)]),
    sites: z.array(SiteRecordSchema),
    round: z.number().int().min(0),
    rng: z.array(z.number()).min(1),
  })
  .strict();
type FederationState = z.output<typeof FederationStateSchema>;

async function readFederationState(runDir: string): Promise<FederationState> {
  const file = join(runDir, 'federation.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new ConfigError('cannot read the federation state (is this a federated run directory?)', {
      file,
      cause: e,
    });
  }
  return resolveOptions(FederationStateSchema, raw, file);
}

interface Waiter {
  readonly afterRound: number;
  readonly call: grpc.ServerWritableStream<PullRequest, Instruction>;
}

interface PendingRound {
  readonly round: number;
  readonly participants: ReadonlySet<string>;
  readonly global: Payload;
  readonly updates: Map<string, { update: SiteUpdate; metrics: Record<string, number> }>;
  readonly rejected: { site: string; reason: string }[];
  received: number;
  wake: () => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `messages` to a server stream, waiting for the stream to drain when it asks to. */
async function writeAll(
  call: grpc.ServerWritableStream<PullRequest, Instruction>,
  messages: Iterable<Instruction>,
): Promise<number> {
  let bytes = 0;
  for (const m of messages) {
    bytes += Instruction.encode(m).finish().byteLength;
    if (!call.write(m)) await new Promise<void>((r) => call.once('drain', () => r()));
  }
  call.end();
  return bytes;
}

/**
 * Runs a federation to its last round (or until `control.signal` aborts, leaving the last round's checkpoint
 * to resume from). Resolves with the run directory and totals.
 */
export async function runCoordinator(
  setup: CoordinatorSetup,
  control: CoordinatorControl = {},
): Promise<FederationResult> {
  const coordinator = new Coordinator(setup, control);
  return coordinator.run();
}

class Coordinator {
  readonly #setup: CoordinatorSetup;
  readonly #control: CoordinatorControl;
  readonly #server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  readonly #sites = new Map<string, SiteRecord>();
  /** Sites that joined this process (a resumed coordinator waits for `minSites` of them again). */
  readonly #present = new Set<string>();
  readonly #waiting = new Map<string, Waiter>();
  #federationId: string = randomUUID();
  #options: FederationOptions;
  /** The model's options: the setup's, or a resumed run's own (options.json). */
  #train: TrainOptions;
  #classNames: string[] | null = null;
  #channels: 1 | 3 | null = null;
  #pending: PendingRound | null = null;
  #round = 0;
  #done: string | null = null;
  #sitesChanged: () => void = () => {};

  constructor(setup: CoordinatorSetup, control: CoordinatorControl) {
    this.#setup = setup;
    this.#control = control;
    this.#options = setup.federation;
    this.#train = setup.train;
  }

  async run(): Promise<FederationResult> {
    const setup = this.#setup;
    if (setup.train.model === 'pggan')
      throw new ConfigError(
        'pggan cannot be federated yet: its growing schedule changes the networks between rounds (use cgan, dcgan, acgan, stylegan2 or ddpm)',
        { field: 'model', found: 'pggan' },
      );
    let runDir: string;
    let resumed: FederationState | null = null;
    if (setup.resume !== undefined) {
      runDir = resolve(setup.resume);
      resumed = await readFederationState(runDir);
      this.#federationId = resumed.federationId;
      // The run's own model and strategy; the new total of rounds, the timeouts and the address are this start's.
      const now = this.#options;
      this.#options = Object.freeze({
        ...resumed.options,
        rounds: now.rounds,
        roundTimeoutSeconds: now.roundTimeoutSeconds,
        joinTimeoutSeconds: now.joinTimeoutSeconds,
        host: now.host,
        port: now.port,
      });
      this.#train = await readRunOptions(runDir);
      this.#classNames = resumed.classNames;
      this.#channels = resumed.channels;
      for (const s of resumed.sites) this.#sites.set(s.name, s);
      this.#round = resumed.round;
    } else {
      runDir = await createRunDir(
        setup.outDir,
        setup.train.name ??
          `federated-${setup.train.model}-${dataName(setup.train.data.source)}-${setup.train.size}`,
      );
    }
    this.#serve();
    const port = await new Promise<number>((res, rej) =>
      this.#server.bindAsync(`${this.#options.host}:${this.#options.port}`, setup.credentials, (e, p) =>
        e
          ? rej(
              new FederationError(
                `cannot listen on ${this.#options.host}:${this.#options.port}: ${e.message}`,
              ),
            )
          : res(p),
      ),
    );
    this.#control.onProgress?.({
      type: 'phase',
      phase: 'federation',
      detail: `coordinator on ${this.#options.host}:${port}, run ${runDir}`,
    });
    this.#control.onListening?.(port, runDir);
    try {
      const result = await this.#rounds(runDir, resumed);
      // Sites were told `done`; let their streams close, then stop.
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          this.#server.forceShutdown();
          r();
        }, 5000);
        this.#server.tryShutdown(() => {
          clearTimeout(t);
          r();
        });
      });
      return result;
    } catch (e) {
      // Stopped or failed: sites are not told `done` (a resumed coordinator picks them up again); they see
      // the connection drop and keep reconnecting.
      this.#server.forceShutdown();
      throw e;
    }
  }

  // ---- gRPC handlers ---------------------------------------------------------------------------------------

  #serve(): void {
    this.#server.addService(FederationService, {
      join: (call: grpc.ServerUnaryCall<SiteInfo, JoinReply>, cb: grpc.sendUnaryData<JoinReply>) => {
        try {
          cb(null, this.#join(call.request, this.#setup.authenticated ? peerSiteName(call) : null));
        } catch (e) {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message });
        }
      },
      pull: (call: grpc.ServerWritableStream<PullRequest, Instruction>) => this.#pull(call),
      push: (call: grpc.ServerReadableStream<Update, PushReply>, cb: grpc.sendUnaryData<PushReply>) =>
        this.#push(call, cb),
    });
  }

  #join(info: SiteInfo, certified: string | null): JoinReply {
    if (!isSiteName(info.name)) throw new Error(`site name "${info.name}" is not [A-Za-z0-9_-]{1,64}`);
    if (certified !== null && certified !== info.name)
      throw new Error(`the site's certificate is for "${certified}", not "${info.name}"`);
    const train = this.#train;
    const format = {
      size: train.size,
      channels: this.#channels ?? (train.channels === 'auto' ? 0 : train.channels),
    };
    if (info.channels === 0) return { siteId: '', federationId: this.#federationId, ...format };
    if (info.channels !== 1 && info.channels !== 3)
      throw new Error(`channels must be 1 or 3, not ${info.channels}`);
    if (info.classNames.length === 0 || info.classCounts.length !== info.classNames.length)
      throw new Error('the site must list its class names and a count for each');
    if (this.#classNames && this.#classNames.join('\n') !== info.classNames.join('\n'))
      throw new Error(
        `the site's classes (${info.classNames.join(', ')}) differ from the federation's (${this.#classNames.join(', ')})`,
      );
    if (this.#channels !== null && this.#channels !== info.channels)
      throw new Error(
        `the site's images have ${info.channels} channel(s), the federation's ${this.#channels}`,
      );
    this.#classNames ??= [...info.classNames];
    this.#channels ??= info.channels;
    const known = this.#sites.has(info.name);
    this.#present.add(info.name);
    this.#sites.set(info.name, {
      name: info.name,
      classCounts: info.classCounts.map(Number),
      software: info.software,
    });
    this.#control.onProgress?.({
      type: 'phase',
      phase: 'federation',
      detail: `site ${info.name} ${known ? 'rejoined' : 'joined'} (${info.classCounts.reduce((a, b) => a + b, 0)} images)`,
    });
    this.#sitesChanged();
    return { siteId: info.name, federationId: this.#federationId, ...format, channels: this.#channels };
  }

  #pull(call: grpc.ServerWritableStream<PullRequest, Instruction>): void {
    const { siteId, afterRound } = call.request;
    if (!this.#sites.has(siteId)) {
      call.destroy(
        Object.assign(new Error(`site "${siteId}" has not joined`), {
          code: grpc.status.FAILED_PRECONDITION,
        }),
      );
      return;
    }
    if (this.#done !== null) {
      void writeAll(call, [{ kind: { $case: 'done', value: { rounds: this.#round, reason: this.#done } } }]);
      return;
    }
    this.#waiting.get(siteId)?.call.end();
    this.#waiting.set(siteId, { afterRound, call });
    this.#present.add(siteId);
    call.on('cancelled', () => {
      if (this.#waiting.get(siteId)?.call === call) this.#waiting.delete(siteId);
      this.#sitesChanged();
    });
    this.#sitesChanged();
  }

  #push(call: grpc.ServerReadableStream<Update, PushReply>, cb: grpc.sendUnaryData<PushReply>): void {
    let header: UpdateHeader | null = null;
    let assembler: Assembler | null = null;
    let failed = false;
    let bytes = 0;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      // A refused update of the open round counts as that site's answer (logged with its reason).
      const p = this.#pending;
      const h: UpdateHeader | null = header;
      if (h && p && p.round === h.round && p.participants.has(h.siteId) && !p.updates.has(h.siteId))
        p.rejected.push({ site: h.siteId, reason });
      cb(null, { accepted: false, reason });
    };
    call.on('data', (m: Update) => {
      if (failed) return;
      try {
        bytes += Update.encode(m).finish().byteLength;
        if (m.kind?.$case === 'header') {
          if (header) throw new Error('a second header in one update');
          header = m.kind.value;
          const p = this.#pending;
          if (!p || p.round !== header.round)
            throw new Error(
              `round ${header.round} is not open (the coordinator is at round ${this.#round + 1})`,
            );
          if (!p.participants.has(header.siteId))
            throw new Error(`site "${header.siteId}" was not chosen for round ${p.round}`);
          if (p.updates.has(header.siteId))
            throw new Error(`site "${header.siteId}" already sent round ${p.round}`);
          const manifest = header.manifest;
          if (!manifest) throw new Error('the update has no manifest');
          const mismatch = manifestMismatch(manifest.tensors, p.global.tensors);
          if (mismatch) throw new Error(`the update does not fit the model: ${mismatch}`);
          assembler = new Assembler(manifest, p.global.buffer.byteLength, `site ${header.siteId}'s update`);
        } else if (m.kind?.$case === 'chunk') {
          if (!assembler) throw new Error('weights before the header');
          assembler.add(m.kind.value);
        }
      } catch (e) {
        fail((e as Error).message);
      }
    });
    call.on('error', () => fail('the update stream broke'));
    call.on('end', () => {
      if (failed) return;
      try {
        if (!header || !assembler) throw new Error('an empty update');
        const h: UpdateHeader = header;
        const payload = assembler.finish();
        const p = this.#pending;
        if (!p || p.round !== h.round) throw new Error(`round ${h.round} closed before the update arrived`);
        const metrics = { ...h.metrics };
        if ((metrics['diverged'] ?? 0) > 0) throw new Error('the site reports its losses became non-finite');
        p.updates.set(h.siteId, {
          update: { site: h.siteId, weights: payload.buffer, size: h.datasetSize, examples: h.numExamples },
          metrics,
        });
        p.received += bytes;
        cb(null, { accepted: true, reason: '' });
        p.wake();
      } catch (e) {
        fail((e as Error).message);
        this.#pending?.wake();
      }
    });
  }

  // ---- rounds ----------------------------------------------------------------------------------------------

  /** Resolves when `ready()` holds, re-checked whenever sites change, or rejects after `seconds`. */
  async #until(ready: () => boolean, seconds: number, what: string): Promise<void> {
    const deadline = performance.now() + seconds * 1000;
    while (!ready()) {
      this.#control.signal?.throwIfAborted();
      const left = deadline - performance.now();
      if (left <= 0) throw new FederationError(`timed out after ${seconds} s waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 250));
        this.#sitesChanged = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  async #rounds(runDir: string, resumed: FederationState | null): Promise<FederationResult> {
    const o = this.#options;
    const emit = this.#control.onProgress;
    const train = this.#train;
    emit?.({ type: 'phase', phase: 'federation', detail: `waiting for ${o.minSites} site(s) to join` });
    await this.#until(
      () => this.#present.size >= o.minSites,
      o.joinTimeoutSeconds,
      `${o.minSites} site(s) to join`,
    );
    const classNames = this.#classNames!;
    const channels = this.#channels!;
    const options: TrainOptions = Object.freeze({ ...train, channels });
    let trainer: FamilyTrainer;
    let spec: BaseSpec;
    let nimg = 0;
    let elapsedBefore = 0;
    let rng: Rng;
    /** The server optimiser's buffers (checkpoint group `server`). */
    const server: ServerOptimizerState = { m: null, v: null };
    if (resumed) {
      const dir = await latestCheckpoint(runDir);
      if (!dir) throw new FederationError(`the federated run ${runDir} has no checkpoint to resume from`);
      const ckpt = await loadCheckpoint(dir);
      try {
        const opened = familyOfSpec(ckpt.state.spec, ckpt.dir);
        spec = opened.spec;
        trainer = opened.family.trainer(spec, options);
        await trainer.restore({ weights: ckpt.weights, order: ckpt.order }, ckpt.state.family, ckpt.dir);
        const saved = ckpt.weights[SERVER_GROUP];
        for (const key of ['m', 'v'] as const) {
          const t = saved?.[key];
          if (t) server[key] = ((await t.data()) as Float32Array).slice();
        }
      } finally {
        disposeWeightSets(ckpt.weights);
      }
      nimg = ckpt.state.nimg;
      elapsedBefore = ckpt.state.elapsedSeconds;
      this.#round = ckpt.state.tick;
      rng = Rng.fromState(ckpt.state.rng.data);
      emit?.({
        type: 'phase',
        phase: 'federation',
        detail: `resumed after round ${this.#round} (${(nimg / 1000).toFixed(1)} kimg)`,
      });
    } else {
      const family = generatorFamily(options.model);
      spec = family.specFor(options, { channels, numClasses: classNames.length });
      trainer = family.trainer(spec, options);
      rng = Rng.derive(options.seed, 'federation', 'participants');
      await writeFileAtomic(join(runDir, 'options.json'), `${JSON.stringify(options, null, 2)}\n`);
      await this.#writeRunJson(runDir, options, spec, classNames);
    }
    const started = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - started) / 1000;
    let lastCheckpoint = '';
    let lastGrid = -Infinity;
    try {
      const shared = await sharedGroups(trainer, o.shareD);
      const trainable = await trainableMask(trainer, shared);
      const serverOptimizer = serverOptimizerOf(o);
      for (const key of ['m', 'v'] as const) {
        const b = server[key];
        if (b && b.length !== trainable.length)
          throw new CheckpointError(
            `the server optimiser's ${key} has ${b.length} values, the shared weights ${trainable.length}`,
            { file: runDir, field: `${SERVER_GROUP}/${key}` },
          );
      }
      const ema = await readWeights(trainer, ['G_ema']);
      const grid = trainer.sampler(classNames);
      const optionsJson = JSON.stringify(options);
      const specJson = JSON.stringify(spec);
      while (this.#round < o.rounds) {
        const round = this.#round + 1;
        this.#control.signal?.throwIfAborted();
        await this.#until(
          () => this.#waiting.size >= o.minFit,
          o.joinTimeoutSeconds,
          `${o.minFit} site(s) to ask for round ${round}`,
        );
        const available = [...this.#waiting.keys()].sort();
        const participants = chooseParticipants(available, o.fraction, o.minFit, rng);
        const t0 = performance.now();
        const global = await readWeights(trainer, shared);
        const manifest = manifestOf(global);
        let wake = () => {};
        const pending: PendingRound = {
          round,
          participants: new Set(participants),
          global,
          updates: new Map(),
          rejected: [],
          received: 0,
          wake: () => wake(),
        };
        this.#pending = pending;
        const fit: FitInstruction = {
          round,
          rounds: o.rounds,
          localSteps: o.localSteps,
          progress: (round - 1) / o.rounds,
          imagesSeen: nimg,
          proxMu: o.strategy === 'fedprox' ? o.proxMu : 0,
          optionsJson,
          specJson,
          manifest,
        };
        const sends = participants.map((site) => {
          const w = this.#waiting.get(site)!;
          this.#waiting.delete(site);
          const messages = function* (): Generator<Instruction> {
            yield { kind: { $case: 'fit', value: fit } };
            for (const c of chunksOf(global.buffer)) yield { kind: { $case: 'chunk', value: c } };
          };
          return writeAll(w.call, messages()).catch(() => 0);
        });
        const sent = (await Promise.all(sends)).reduce((a, b) => a + b, 0);
        const tBroadcast = (performance.now() - t0) / 1000;
        // Wait for every chosen site's update, or the round's timeout.
        const deadline = t0 + o.roundTimeoutSeconds * 1000;
        while (
          pending.updates.size + new Set(pending.rejected.map((r) => r.site)).size <
          participants.length
        ) {
          this.#control.signal?.throwIfAborted();
          const left = deadline - performance.now();
          if (left <= 0) break;
          await new Promise<void>((r) => {
            const t = setTimeout(r, Math.min(left, 500));
            wake = () => {
              clearTimeout(t);
              r();
            };
          });
        }
        this.#pending = null;
        const t1 = performance.now();
        // In site order, whatever the arrival order: the aggregate's float sums are then reproducible.
        const screened = screenUpdates(
          [...pending.updates.values()].map((u) => u.update).sort((a, b) => (a.site < b.site ? -1 : 1)),
          global.buffer,
          o.outlierFactor,
        );
        const rejected = [...pending.rejected, ...screened.rejected];
        const arrived = new Set([...pending.updates.keys(), ...pending.rejected.map((r) => r.site)]);
        const missing = participants.filter((s) => !arrived.has(s));
        for (const r of rejected)
          emit?.({ type: 'warning', message: `round ${round}: rejected ${r.site}'s update: ${r.reason}` });
        if (missing.length > 0)
          emit?.({
            type: 'warning',
            message: `round ${round}: no update from ${missing.join(', ')} within ${o.roundTimeoutSeconds} s`,
          });
        if (screened.accepted.length < o.minFit) {
          emit?.({
            type: 'warning',
            message: `round ${round}: ${screened.accepted.length} accepted update(s), ${o.minFit} needed; the round runs again`,
          });
          await sleep(100);
          continue;
        }
        const examples = screened.accepted.reduce((s, u) => s + u.examples, 0);
        const next = serverStep(global.buffer, fedAvg(screened.accepted), trainable, serverOptimizer, server);
        await assignWeights(trainer, { tensors: global.tensors, buffer: next }, `round ${round}'s aggregate`);
        const gLength = global.tensors
          .filter((t) => t.group === 'G')
          .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
        const beta = emaBeta(examples, options.emaKimg * 1000, nimg + examples, options.emaRampup);
        emaInPlace(ema.buffer, next.subarray(0, gLength), beta);
        await assignWeights(trainer, ema, `round ${round}'s G_ema`);
        nimg += examples;
        const tAggregated = performance.now();
        this.#round = round;
        // Checkpoint (atomic), federation state, then the round's line: a coordinator killed in between
        // resumes from the checkpoint and rewrites nothing it already wrote.
        const snapshot = await trainer.checkpoint();
        const serverTensors: NamedTensor[] = (['m', 'v'] as const).flatMap((key) => {
          const b = server[key];
          return b ? [{ name: key, tensor: tf.tensor1d(b) }] : [];
        });
        try {
          const state: TrainState = {
            step: round * o.localSteps,
            nimg,
            tick: round,
            elapsedSeconds: elapsed(),
            rng: { data: rng.state(), z: rng.state(), augment: rng.state() },
            augment: null,
            spec,
            classNames,
            classCounts: totalCounts([...this.#sites.values()], classNames.length),
            family: snapshot.state,
          };
          const groups =
            serverTensors.length > 0
              ? { ...snapshot.groups, [SERVER_GROUP]: serverTensors }
              : snapshot.groups;
          lastCheckpoint = await saveCheckpoint(runDir, state, groups, options.keepCheckpoints);
        } finally {
          snapshot.release();
          for (const t of serverTensors) t.tensor.dispose();
        }
        await this.#writeState(runDir, rng);
        if (round === o.rounds || elapsed() - lastGrid >= options.tickSeconds) {
          const png = await encodePng(await sampleGrid(grid, options.gridPerClass));
          await writeFileAtomic(join(runDir, 'samples', `round-${String(round).padStart(5, '0')}.png`), png);
          await writeFileAtomic(join(runDir, 'samples', 'latest.png'), png);
          lastGrid = elapsed();
        }
        const siteMetrics = Object.fromEntries([...pending.updates].map(([s, u]) => [s, u.metrics]));
        const fitSeconds = Math.max(
          0,
          ...screened.accepted.map((u) => siteMetrics[u.site]?.['fitSeconds'] ?? 0),
        );
        const roundSeconds = (tAggregated - t0) / 1000;
        const record: RoundRecord = {
          round,
          participants,
          accepted: screened.accepted.map((u) => u.site),
          rejected,
          missing,
          examples,
          kimg: nimg / 1000,
          bytes: { sent, received: pending.received },
          seconds: {
            round: roundSeconds,
            fit: fitSeconds,
            overhead: Math.max(0, roundSeconds - fitSeconds),
            broadcast: tBroadcast,
            aggregate: (tAggregated - t1) / 1000,
            checkpoint: (performance.now() - tAggregated) / 1000,
          },
          norms: screened.norms,
          siteMetrics,
          time: new Date().toISOString(),
        };
        await appendFile(join(runDir, ROUNDS_FILE), `${JSON.stringify(record)}\n`);
        emit?.({ type: 'checkpoint', path: lastCheckpoint, step: round * o.localSteps, kimg: nimg / 1000 });
        emit?.({
          type: 'tick',
          phase: 'federation',
          done: round,
          total: o.rounds,
          unit: 'rounds',
          stats: {
            kimg: nimg / 1000,
            sites: screened.accepted.length,
            ...meanMetric(siteMetrics, 'dLoss', 'D'),
            ...meanMetric(siteMetrics, 'gLoss', 'G'),
            'overhead %': roundSeconds > 0 ? (100 * record.seconds.overhead) / roundSeconds : 0,
          },
        });
      }
      this.#done = `all ${o.rounds} rounds are done`;
      this.#finish(this.#done);
      const result: FederationResult = {
        runDir,
        checkpoint: lastCheckpoint || ((await latestCheckpoint(runDir)) ?? ''),
        rounds: this.#round,
        kimg: nimg / 1000,
        seconds: elapsed(),
        sites: [...this.#sites.keys()].sort(),
      };
      await writeFileAtomic(join(runDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
      emit?.({ type: 'done', phase: 'federation', seconds: (performance.now() - started) / 1000 });
      return result;
    } finally {
      trainer.dispose();
    }
  }

  /** Answers every waiting site with `done`. */
  #finish(reason: string): void {
    this.#done ??= reason;
    for (const [site, w] of this.#waiting) {
      void writeAll(w.call, [{ kind: { $case: 'done', value: { rounds: this.#round, reason } } }]).catch(
        () => 0,
      );
      this.#waiting.delete(site);
    }
  }

  async #writeState(runDir: string, rng: Rng): Promise<void> {
    const state: FederationState = {
      format: 'medsynth-federation',
      version: 1,
      federationId: this.#federationId,
      options: { ...this.#options },
      classNames: this.#classNames!,
      channels: this.#channels!,
      sites: [...this.#sites.values()],
      round: this.#round,
      rng: rng.state(),
    };
    await writeFileAtomic(join(runDir, 'federation.json'), `${JSON.stringify(state, null, 2)}\n`);
  }

  async #writeRunJson(
    runDir: string,
    options: TrainOptions,
    spec: BaseSpec,
    classNames: readonly string[],
  ): Promise<void> {
    const sites = [...this.#sites.values()];
    const counts = totalCounts(sites, classNames.length);
    const run = {
      started: new Date().toISOString(),
      spec,
      data: {
        source: options.data.source,
        federated: true,
        classNames,
        trainCounts: counts,
        trainImages: counts.reduce((a, b) => a + b, 0),
        sites: Object.fromEntries(
          sites.map((s) => [s.name, { classCounts: s.classCounts, software: s.software }]),
        ),
        imageSize: [spec.size, spec.size, spec.channels],
        balancedSampling: options.balancedSampling,
      },
      federation: { id: this.#federationId, ...this.#options },
      backend: describeBackend(),
      node: process.version,
    };
    await writeFileAtomic(join(runDir, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
  }
}

function totalCounts(sites: readonly SiteRecord[], k: number): number[] {
  const out = new Array<number>(k).fill(0);
  for (const s of sites) s.classCounts.forEach((c, i) => (out[i]! += c));
  return out;
}

function meanMetric(
  metrics: Readonly<Record<string, Readonly<Record<string, number>>>>,
  key: string,
  label: string,
): Record<string, number> {
  const values = Object.values(metrics)
    .map((m) => m[key])
    .filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length > 0 ? { [label]: values.reduce((a, b) => a + b, 0) / values.length } : {};
}

/** Validates training options read back for a federation (e.g. from the site's instruction). */
export function trainOptionsFrom(json: string, data: TrainOptions['data'], where: string): TrainOptions {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new FederationError(`${where}: the training options are not JSON`, { cause: e });
  }
  return resolveOptions(TrainOptionsSchema, { ...(raw as object), data }, where);
}
