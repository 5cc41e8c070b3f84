/**
 * Benchmark: `medsynth evaluate`'s work on 5 000 synthetic-like images of 64×64 — the domain extractor's
 * features and every metric (FID with bootstrap, KID, PRDC, MS-SSIM diversity, privacy), with the floor
 * (held-out real) and noise baselines, as `evaluate` runs them.
 *
 *   npm run bench bench/evaluate.ts [--count 5000] [--size 64] [--bootstrap 10] [--data <folder>] [--cache <dir>]
 *
 * Real: the Kermany chest X-ray train folder (5 216 images) at 64×64 gray; held-out: its test folder (624).
 * "Synthetic": `--count` train images degraded (box blur + Gaussian noise, seeded), so the metrics have
 * something between the floor and noise to measure. The domain extractor is trained once into a temporary
 * cache; its training time is reported separately (`extractorSeconds`, cold) and the timed evaluation uses
 * the cached extractor, as every evaluation after the first does. Target: `evaluateSeconds` ≤ 60 on 2 cores.
 *
 * Prints one JSON line with the time of each stage and the headline values.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import { openDataset } from '../packages/medsynth/src/data/source.js';
import { domainExtractor } from '../packages/medsynth/src/metrics/features/domain.js';
import { evaluateSets, type LabelledSet } from '../packages/medsynth/src/metrics/evaluate.js';
import { linalgImplementation } from '../packages/medsynth/src/metrics/linalg.js';
import { Rng } from '../packages/medsynth/src/runtime/random.js';
import type { ProgressEvent } from '../packages/medsynth/src/runtime/progress.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '5000' },
    size: { type: 'string', default: '64' },
    bootstrap: { type: 'string', default: '10' },
    /** Keep the extractor here between runs (then `extractorSeconds` is a cache hit after the first). */
    cache: { type: 'string' },
    data: {
      type: 'string',
      default: fileURLToPath(new URL('../../shared/data/kermany_cxr_224/', import.meta.url)),
    },
  },
});
const count = Number(args.count);
const size = Number(args.size);

/** Box blur (3×3) plus Gaussian noise σ = 12 grey levels: a plausible, imperfect "generator". */
function degrade(set: LabelledSet, n: number, seed: number): LabelledSet {
  const { height: h, width: w, channels: c } = set.images;
  const px = h * w * c;
  const rng = new Rng(seed);
  const picks = Array.from({ length: n }, (_, i) => i % set.images.count);
  const data = new Uint8Array(n * px);
  picks.forEach((src, k) => {
    const from = set.images.data.subarray(src * px, (src + 1) * px);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let sum = 0;
        let cnt = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy;
            const xx = x + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            sum += from[(yy * w + xx) * c]!;
            cnt++;
          }
        }
        const v = sum / cnt + 12 * rng.normal();
        data[k * px + (y * w + x) * c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  });
  const labels = set.labels ? Int32Array.from(picks, (i) => set.labels![i]!) : null;
  return { images: { ...set.images, data, count: n }, labels };
}

const seconds = (t0: number) => Number(((performance.now() - t0) / 1000).toFixed(2));

const backend = await selectBackend();
const cache = args.cache ?? (await mkdtemp(join(tmpdir(), 'medsynth-bench-eval-')));
try {
  let t = performance.now();
  const ds = await openDataset({ source: args.data });
  const load = async (name: 'train' | 'test'): Promise<LabelledSet> => {
    const s = ds.split(name);
    return { images: await s.load({ size, channels: 1 }), labels: Int32Array.from(s.labels) };
  };
  const real = await load('train');
  const holdout = await load('test');
  const loadSeconds = seconds(t);
  const fake = degrade(real, count, 1);

  t = performance.now();
  const cold = await domainExtractor(ds, [size, size, 1], cache);
  const extractorSeconds = seconds(t);
  cold.dispose();

  t = performance.now();
  const extractor = await domainExtractor(ds, [size, size, 1], cache);
  const extractorLoadSeconds = seconds(t);
  const stages: Record<string, number> = {};
  t = performance.now();
  const result = await evaluateSets(
    { classNames: ds.classNames, real, fake, holdout, extractor },
    {
      bootstrap: Number(args.bootstrap),
      onProgress: (e: ProgressEvent) => {
        if (e.type === 'done') stages[e.phase] = Number(e.seconds.toFixed(2));
      },
    },
  );
  const evaluateSeconds = seconds(t);
  extractor.dispose();
  const value = (metric: string, comparison: string, key: string) =>
    result.records.find((r) => r.metric === metric && r.comparison === comparison && r.class === null)
      ?.values[key] ?? null;
  console.log(
    JSON.stringify({
      bench: `evaluate-kermany-${size}-gray`,
      backend: backend.backend,
      threads: backend.threads,
      linalg: linalgImplementation(),
      real: real.images.count,
      fake: fake.images.count,
      holdout: holdout.images.count,
      featureDim: extractor.info.dim,
      loadSeconds,
      extractorSeconds,
      extractorLoadSeconds,
      evaluateSeconds,
      targetSeconds: 60,
      stages,
      fid: {
        fake: value('fid', 'fake', 'fid'),
        floor: value('fid', 'floor', 'fid'),
        noise: value('fid', 'noise', 'fid'),
      },
      kid: { fake: value('kid', 'fake', 'kid'), floor: value('kid', 'floor', 'kid') },
      prdc: {
        precision: value('prdc', 'fake', 'precision'),
        recall: value('prdc', 'fake', 'recall'),
        density: value('prdc', 'fake', 'density'),
        coverage: value('prdc', 'fake', 'coverage'),
      },
      msssim: { fake: value('msssim', 'fake', 'msssim'), real: value('msssim', 'fake', 'msssimReal') },
      privacyMedianRatio: value('privacy', 'fake', 'medianRatio'),
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    }),
  );
} finally {
  if (args.cache === undefined) await rm(cache, { recursive: true, force: true });
}
