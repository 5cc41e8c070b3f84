/**
 * A site of the federation: an institution's process that keeps its images and trains on them when the
 * coordinator asks. It asks the coordinator which image size and channels the model uses, loads its own
 * train split (or the part `subset` names) at that format, joins with its class names and counts, then
 * loops: wait for an instruction (Pull), train the local steps (local.ts), send the shared weights back
 * (Push). Only weights, counts and numbers leave the site (federation.proto).
 *
 * A coordinator that goes away (killed, restarted with `--resume`, network trouble) is waited for: the site
 * reconnects with a growing back-off and rejoins under its name, for up to `retryMinutes` without contact;
 * then it gives up with a FederationError. A federation id that changes means a new federation: the site
 * starts over with fresh local state.
 */
import * as grpc from '@grpc/grpc-js';
import type { DataOptions } from '../config/data-options.js';
import { describeBackend } from '../runtime/backend.js';
import { FederationError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { loadRealSet, type RealSet, type TrainSubset } from '../training/real-data.js';
import { MAX_MESSAGE_BYTES, trainOptionsFrom } from './coordinator.js';
import { LocalTrainer } from './local.js';
import { Assembler, chunksOf, manifestOf, type Payload } from './payload.js';
import {
  FederationClient,
  type FitInstruction,
  type Instruction,
  type JoinReply,
  type PushReply,
  type SiteInfo,
  Update,
} from './proto/federation.js';

export interface SiteSetup {
  /** The site's stable name (its certificate's CN under mutual TLS). */
  readonly name: string;
  /** `host:port` of the coordinator. */
  readonly coordinator: string;
  readonly credentials: grpc.ChannelCredentials;
  /** This site's data (its train split is what it trains on). */
  readonly data: DataOptions;
  /** A part of the train split only (simulations hand each site its partition this way). */
  readonly subset?: TrainSubset | undefined;
  /** Minutes without contact with the coordinator before the site gives up. */
  readonly retryMinutes?: number | undefined;
  /** Largest weight buffer the site accepts from the coordinator (bytes). */
  readonly maxModelBytes?: number | undefined;
}

export interface SiteResult {
  readonly rounds: number;
  readonly examples: number;
  readonly bytes: { readonly sent: number; readonly received: number };
  readonly reason: string;
}

const RETRYABLE = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNKNOWN,
  grpc.status.INTERNAL,
  grpc.status.FAILED_PRECONDITION,
]);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });

function unary<Req, Res>(
  fn: (req: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => grpc.ClientUnaryCall,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (e, r) => (e ? reject(e) : resolve(r))));
}

/** Runs a site until the coordinator says the federation is done. */
export async function runSite(setup: SiteSetup, control: RunControl = {}): Promise<SiteResult> {
  const emit = control.onProgress;
  const client = new FederationClient(setup.coordinator, setup.credentials, {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  const retryMs = (setup.retryMinutes ?? 10) * 60_000;
  const maxModelBytes = setup.maxModelBytes ?? 1 << 30;
  let lastContact = performance.now();
  let backoff = 250;
  let real: RealSet | null = null;
  let federationId = '';
  let local: LocalTrainer | null = null;
  let afterRound = 0;
  let rounds = 0;
  let examples = 0;
  const bytes = { sent: 0, received: 0 };

  /** Runs `fn`, retrying while the coordinator is unreachable (and `retryMinutes` have not passed). */
  const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      control.signal?.throwIfAborted();
      try {
        const r = await fn();
        lastContact = performance.now();
        backoff = 250;
        return r;
      } catch (e) {
        const code = (e as grpc.ServiceError).code;
        if (code === undefined || !RETRYABLE.has(code)) throw e;
        if (performance.now() - lastContact > retryMs)
          throw new FederationError(
            `the coordinator at ${setup.coordinator} has not answered for ${setup.retryMinutes ?? 10} minute(s) (${what}: ${(e as Error).message})`,
          );
        emit?.({
          type: 'warning',
          message: `${what}: ${(e as Error).message}; retrying in ${(backoff / 1000).toFixed(1)} s`,
        });
        await sleep(backoff, control.signal);
        backoff = Math.min(5000, backoff * 2);
      }
    }
  };

  const join = async (): Promise<JoinReply> => {
    const backend = describeBackend();
    const software = backend
      ? `medsynth on ${backend.backend} (${backend.threads} threads, TF.js ${backend.tfjsVersion})`
      : 'medsynth';
    const format = await unary<SiteInfo, JoinReply>(client.join.bind(client), {
      name: setup.name,
      classNames: [],
      classCounts: [],
      channels: 0,
      software,
    });
    if (
      !real ||
      real.images.height !== format.size ||
      (format.channels !== 0 && real.images.channels !== format.channels)
    ) {
      real = await loadRealSet(
        setup.data,
        format.size,
        format.channels === 0 ? 'auto' : (format.channels as 1 | 3),
        control,
        setup.subset ?? {},
      );
    }
    const reply = await unary<SiteInfo, JoinReply>(client.join.bind(client), {
      name: setup.name,
      classNames: [...real.classNames],
      classCounts: [...real.classCounts],
      channels: real.images.channels,
      software,
    });
    if (reply.federationId !== federationId) {
      if (federationId !== '')
        emit?.({ type: 'phase', phase: 'site', detail: 'a new federation: starting over' });
      federationId = reply.federationId;
      local?.dispose();
      local = null;
      afterRound = 0;
    }
    emit?.({
      type: 'phase',
      phase: 'site',
      detail: `${setup.name} joined ${setup.coordinator} with ${real.labels.length} images (${real.classNames.map((c, i) => `${c} ${real!.classCounts[i]}`).join(', ')})`,
    });
    return reply;
  };

  /** One Pull: the next instruction (fit + weights, or done). */
  const pull = async (): Promise<{ fit: FitInstruction; payload: Payload } | { done: string }> => {
    const stream = client.pull({ siteId: setup.name, afterRound });
    let fit: FitInstruction | null = null;
    let assembler: Assembler | null = null;
    try {
      for await (const m of stream as AsyncIterable<Instruction>) {
        lastContact = performance.now();
        const kind = m.kind;
        if (kind?.$case === 'done') return { done: kind.value.reason };
        if (kind?.$case === 'fit') {
          fit = kind.value;
          if (!fit.manifest)
            throw new FederationError(`round ${fit.round}: the instruction has no weight manifest`);
          assembler = new Assembler(fit.manifest, maxModelBytes, `round ${fit.round}'s global weights`);
          bytes.received += fit.manifest.totalBytes;
        } else if (kind?.$case === 'chunk') {
          if (!assembler) throw new FederationError('weights arrived before their instruction');
          assembler.add(kind.value);
        }
      }
    } finally {
      stream.cancel();
    }
    if (!fit || !assembler)
      throw Object.assign(new Error('the instruction stream ended early'), { code: grpc.status.UNAVAILABLE });
    return { fit, payload: assembler.finish() };
  };

  const push = async (
    fit: FitInstruction,
    result: Awaited<ReturnType<LocalTrainer['fit']>>,
  ): Promise<PushReply> =>
    new Promise<PushReply>((resolve, reject) => {
      const call = client.push((e, r) => (e ? reject(e) : resolve(r)));
      const messages: Update[] = [
        {
          kind: {
            $case: 'header',
            value: {
              siteId: setup.name,
              round: fit.round,
              numExamples: result.examples,
              datasetSize: local!.size,
              metrics: { ...result.metrics },
              manifest: manifestOf(result.payload),
            },
          },
        },
        ...[...chunksOf(result.payload.buffer)].map((c): Update => ({ kind: { $case: 'chunk', value: c } })),
      ];
      void (async () => {
        for (const m of messages) {
          bytes.sent += Update.encode(m).finish().byteLength;
          if (!call.write(m)) await new Promise<void>((r) => call.once('drain', () => r()));
        }
        call.end();
      })();
    });

  try {
    await retrying('joining', join);
    for (;;) {
      const next = await retrying('waiting for the next round', async () => {
        try {
          return await pull();
        } catch (e) {
          // The connection dropped (a coordinator restarted meanwhile may not know this site): join again
          // before the next pull; a failed join is retried with the pull.
          const code = (e as grpc.ServiceError).code;
          if (code !== undefined && RETRYABLE.has(code)) await join().catch(() => undefined);
          throw e;
        }
      });
      if ('done' in next) {
        emit?.({ type: 'done', phase: 'site', seconds: 0 });
        return { rounds, examples, bytes, reason: next.done };
      }
      const { fit, payload } = next;
      local ??= new LocalTrainer(
        trainOptionsFrom(fit.optionsJson, setup.data, `round ${fit.round}'s training options`),
        JSON.parse(fit.specJson) as unknown,
        real!,
        setup.name,
      );
      const result = await local.fit(
        payload,
        {
          round: fit.round,
          rounds: fit.rounds,
          localSteps: fit.localSteps,
          progress: fit.progress,
          imagesSeen: fit.imagesSeen,
          proxMu: fit.proxMu,
        },
        control.signal,
      );
      const reply = await push(fit, result).catch((e: unknown) => {
        emit?.({
          type: 'warning',
          message: `round ${fit.round}: the update could not be sent (${(e as Error).message})`,
        });
        return null;
      });
      if (reply && !reply.accepted)
        emit?.({ type: 'warning', message: `round ${fit.round}: update refused: ${reply.reason}` });
      if (reply?.accepted) {
        rounds++;
        examples += result.examples;
      }
      afterRound = fit.round;
      emit?.({
        type: 'tick',
        phase: 'site',
        done: fit.round,
        total: fit.rounds,
        unit: 'rounds',
        stats: { images: result.examples, ...result.metrics },
      });
    }
  } finally {
    local?.dispose();
    client.close();
  }
}
