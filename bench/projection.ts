/**
 * Benchmark: latent projection (`medsynth project`) of a trained run — N training vs N held-out real images
 * and N synthetic images (the floor), each reconstructed through the generator; the one-sided Mann–Whitney U
 * test and the verdict, and the time per projected image.
 *
 *   npm run bench bench/projection.ts -- --run <run dir> [--count 200] [--synthetic N] [--steps 200]
 *     [--restarts 2] [--features domain|none] [--cache <dir>] [--out <dir>] [--seed 0]
 *
 * The domain extractor is trained into `--cache` on first use; that, loading and generating the floor are
 * `setupSeconds`, not part of the projection time per image (the optimisation only). Prints one JSON line per projected set, then one summary
 * line (seconds per image, medians, p, effect size, verdict). With `--out`, also writes projection.json,
 * projection.png and distances.csv there.
 *
 * Measured (2026-12-06, libtorch 1.13 CPU, 2 cores shared with other jobs — load average 10–18, so times are
 * upper bounds): the PneumoniaMNIST-28 cgan of a federated-comparison study's central run (192 kimg, G_ema),
 * 200 train / 200 held-out / 200 synthetic images, defaults (200 steps × 2 restarts, domain features λ 0.1):
 * median pixel RMSE 0.1045 train, 0.0935 held-out, 0.0301 synthetic (floor); Mann–Whitney p = 0.675,
 * P(train closer) 0.487, median ratio 1.117 → "no memorisation signal"; feature distances p = 0.0093 (not used
 * for the verdict, see metrics/projection.ts); 2.9 s per projected image (2.0–4.3 by set as the load varied),
 * 29 min in all.
 */
import { parseArgs } from 'node:util';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import { writeProjection } from '../packages/medsynth/src/metrics/projection-files.js';
import { projectRun } from '../packages/medsynth/src/metrics/projection-run.js';
import { PROJECTION_SETS } from '../packages/medsynth/src/metrics/projection.js';
import type { ProgressEvent } from '../packages/medsynth/src/runtime/progress.js';

const { values: args } = parseArgs({
  options: {
    run: { type: 'string' },
    count: { type: 'string', default: '200' },
    synthetic: { type: 'string' },
    steps: { type: 'string' },
    restarts: { type: 'string' },
    features: { type: 'string', default: 'domain' },
    cache: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
  },
});
if (!args.run) {
  process.stderr.write('usage: bench/projection.ts --run <run dir> [--count 200] …\n');
  process.exit(2);
}
const features = args.features === 'none' ? 'none' : 'domain';
const round = (v: number, d = 5) => Number(v.toFixed(d));

const backend = await selectBackend();
const started = performance.now();
/** Until the first projection starts: loading, generating the floor, the extractor (trained or cached). */
let setupSeconds = 0;
const onProgress = (e: ProgressEvent) => {
  if (e.type !== 'phase' || !e.phase.startsWith('projection: ')) return;
  if (setupSeconds === 0) setupSeconds = (performance.now() - started) / 1000;
  process.stderr.write(`${e.phase} (${e.detail ?? ''})\n`);
};
const { analysis, meta } = await projectRun({
  run: args.run,
  features,
  cacheDir: args.cache,
  projection: {
    count: Number(args.count),
    seed: Number(args.seed),
    ...(args.synthetic !== undefined ? { syntheticCount: Number(args.synthetic) } : {}),
    ...(args.steps !== undefined ? { steps: Number(args.steps) } : {}),
    ...(args.restarts !== undefined ? { restarts: Number(args.restarts) } : {}),
  },
  onProgress,
});
const seconds = (performance.now() - started) / 1000;
for (const name of PROJECTION_SETS) {
  const s = analysis.sets[name];
  if (!s) continue;
  console.log(
    JSON.stringify({
      bench: 'projection-set',
      set: name,
      n: s.result.count,
      secondsPerImage: round(s.result.seconds / s.result.count, 3),
      pixelRmse: { median: round(s.pixel.median), q1: round(s.pixel.q1), q3: round(s.pixel.q3) },
      featureDistance: s.feature
        ? { median: round(s.feature.median), q1: round(s.feature.q1), q3: round(s.feature.q3) }
        : null,
      trace: s.result.trace.map((t) => [t.step, round(t.pixelRmse, 4)]),
    }),
  );
}
const t = analysis.test;
console.log(
  JSON.stringify({
    bench: 'projection',
    run: meta.run?.dir ?? args.run,
    family: meta.run?.family ?? null,
    checkpoint: meta.run?.checkpoint ?? null,
    backend: backend.backend,
    space: analysis.space,
    objective: analysis.objective,
    options: analysis.options,
    secondsPerImage: round(analysis.secondsPerImage, 3),
    seconds: round(seconds, 1),
    setupSeconds: round(setupSeconds, 1),
    medianTrain: analysis.sets.train ? round(analysis.sets.train.pixel.median) : null,
    medianHoldout: analysis.sets.holdout ? round(analysis.sets.holdout.pixel.median) : null,
    medianSynthetic: analysis.sets.synthetic ? round(analysis.sets.synthetic.pixel.median) : null,
    p: t ? t.p : null,
    probTrainCloser: t ? round(t.probTrainCloser, 4) : null,
    medianRatio: t ? round(t.medianRatio, 4) : null,
    pFeatures: analysis.featureTest ? analysis.featureTest.p : null,
    verdict: analysis.verdict,
    warnings: analysis.warnings,
  }),
);
if (args.out) await writeProjection(args.out, analysis, { ...meta, backend: backend.backend });
