/**
 * Federation benchmark: a simulated federation (coordinator + one site process per partition on 127.0.0.1)
 * of a real model, and what each round costs besides local training.
 *
 *   npm run bench -- bench/federation.ts [--data PATH] [--model cgan] [--preset medmnist-28] [--sites 3]
 *                    [--alpha A] [--rounds 10] [--local-steps 50] [--out DIR]
 *
 * Output: JSON lines on stdout. One `round` line per round (participants, images, bytes sent/received,
 * seconds: round, fit = the slowest site's local training, overhead = round − fit, broadcast, aggregate), then
 * one `summary` line: mean bytes per round, mean and worst overhead share of a round (the target:
 * ≤ 10 % on 127.0.0.1), total wall time and kimg.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveTrainOptions } from '../packages/medsynth/src/config/train-options.js';
import { readRounds } from '../packages/medsynth/src/federated/coordinator.js';
import { resolveFederationOptions } from '../packages/medsynth/src/federated/options.js';
import { simulate } from '../packages/medsynth/src/federated/simulate.js';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';

const { values: flags } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/medmnist/pneumoniamnist_28_reconstructed.npz' },
    model: { type: 'string', default: 'cgan' },
    preset: { type: 'string', default: 'medmnist-28' },
    sites: { type: 'string', default: '3' },
    alpha: { type: 'string' },
    rounds: { type: 'string', default: '10' },
    'local-steps': { type: 'string', default: '50' },
    out: { type: 'string' },
  },
});

const sites = Number(flags.sites);
const rounds = Number(flags.rounds);
const localSteps = Number(flags['local-steps']);
await selectBackend();
const train = resolveTrainOptions({
  data: { source: flags.data },
  preset: flags.preset,
  model: flags.model as 'cgan',
  kimg: 1,
});
const out = flags.out ?? (await mkdtemp(join(os.tmpdir(), 'medsynth-bench-fed-')));
const started = performance.now();
const result = await simulate({
  train,
  federation: resolveFederationOptions({ rounds, localSteps, minSites: sites, port: 0 }),
  sites,
  alpha: flags.alpha !== undefined ? Number(flags.alpha) : undefined,
  outDir: out,
});
const records = await readRounds(result.runDir);
for (const r of records)
  console.log(
    JSON.stringify({
      type: 'round',
      round: r.round,
      participants: r.participants.length,
      accepted: r.accepted.length,
      images: r.examples,
      bytes: r.bytes,
      seconds: r.seconds,
    }),
  );
const share = records.map((r) => (r.seconds.round > 0 ? r.seconds.overhead / r.seconds.round : 0));
console.log(
  JSON.stringify({
    type: 'summary',
    model: train.model,
    preset: flags.preset,
    sites,
    alpha: flags.alpha ?? null,
    rounds,
    localSteps,
    cores: os.availableParallelism(),
    bytesPerRound: records.reduce((s, r) => s + r.bytes.sent + r.bytes.received, 0) / records.length,
    overheadShareMean: share.reduce((a, b) => a + b, 0) / share.length,
    overheadShareMax: Math.max(...share),
    wallSeconds: (performance.now() - started) / 1000,
    kimg: result.kimg,
    runDir: result.runDir,
  }),
);
