/**
 * Benchmark: the embedding map (PCA + UMAP of domain features, metrics/embedding.ts) as `medsynth evaluate`
 * computes it — real train, real test and a "synthetic" set, each cut to the cap — at several caps.
 *
 *   npm run bench bench/embedding.ts [--data <npz|folder>] [--size 28] [--caps 250,500,1000] [--epochs 2] [--cache <dir>]
 *
 * Features: the domain extractor (a short training, `--epochs`, into a temporary cache unless `--cache`; its
 * time is not part of the measurement) on the dataset's train and test splits. "Synthetic": the test images
 * with Gaussian pixel noise (σ = 12 grey levels, seeded), so the third set is near but not on the real ones.
 * For each cap one JSON line: points, feature width, PCA seconds, UMAP seconds (k-NN graph + 500 epochs), the
 * whole map, the thumbnail sheet (and its PNG size), and PCA's explained-variance ratios.
 * What `evaluate` adds by default is the 500 cap: 1 500 points when every set has 500 images or more.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { encodePng } from '../packages/medsynth/src/data/image/grid.js';
import { openDataset } from '../packages/medsynth/src/data/source.js';
import type { ImageArray } from '../packages/medsynth/src/data/types.js';
import { computeEmbedding, embeddingThumbnails } from '../packages/medsynth/src/metrics/embedding.js';
import { domainExtractor } from '../packages/medsynth/src/metrics/features/domain.js';
import { linalgImplementation } from '../packages/medsynth/src/metrics/linalg.js';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import { Rng } from '../packages/medsynth/src/runtime/random.js';

const { values: args } = parseArgs({
  options: {
    data: {
      type: 'string',
      default: fileURLToPath(
        new URL('../../shared/data/medmnist/pneumoniamnist_28_reconstructed.npz', import.meta.url),
      ),
    },
    size: { type: 'string', default: '28' },
    caps: { type: 'string', default: '250,500,1000' },
    epochs: { type: 'string', default: '2' },
    cache: { type: 'string' },
  },
});
const size = Number(args.size);
const caps = args.caps.split(',').map(Number);

function noisy(images: ImageArray, seed: number): ImageArray {
  const rng = new Rng(seed);
  const data = Uint8Array.from(images.data, (v) =>
    Math.max(0, Math.min(255, Math.round(v + 12 * rng.normal()))),
  );
  return { ...images, data };
}

const backend = await selectBackend();
const cache = args.cache ?? (await mkdtemp(join(tmpdir(), 'medsynth-bench-embedding-')));
try {
  const ds = await openDataset({ source: args.data });
  const t0 = performance.now();
  const extractor = await domainExtractor(ds, [size, size, 1], cache, { epochs: Number(args.epochs) });
  const extractorSeconds = (performance.now() - t0) / 1000;
  try {
    const load = async (name: 'train' | 'test') => {
      const s = ds.split(name);
      return { images: await s.load({ size: [size, size], channels: 1 }), labels: Int32Array.from(s.labels) };
    };
    const train = await load('train');
    const test = await load('test');
    const synthetic = { images: noisy(test.images, 7), labels: test.labels };
    const features = {
      train: await extractor.features(train.images),
      test: await extractor.features(test.images),
      synthetic: await extractor.features(synthetic.images),
    };
    for (const cap of caps) {
      const started = performance.now();
      const map = await computeEmbedding(
        [
          {
            key: 'train',
            role: 'real',
            description: 'train',
            features: features.train,
            labels: train.labels,
          },
          { key: 'test', role: 'real', description: 'test', features: features.test, labels: test.labels },
          {
            key: 'synthetic',
            role: 'synthetic',
            description: 'noisy test',
            features: features.synthetic,
            labels: synthetic.labels,
          },
        ],
        ds.classNames,
        extractor.info,
        { capPerSet: cap, seed: 0 },
      );
      const mapSeconds = (performance.now() - started) / 1000;
      const t1 = performance.now();
      const sheet = embeddingThumbnails(map, {
        train: train.images,
        test: test.images,
        synthetic: synthetic.images,
      });
      const png = await encodePng(sheet.image);
      const thumbnailSeconds = (performance.now() - t1) / 1000;
      console.log(
        JSON.stringify({
          bench: 'embedding',
          data: ds.location,
          size,
          backend: backend.backend,
          linalg: linalgImplementation(),
          cap,
          points: map.points.length,
          dim: extractor.info.dim,
          pcaSeconds: map.pca.seconds,
          umapSeconds: map.umap?.seconds ?? null,
          umapEpochs: map.umap?.nEpochs ?? null,
          mapSeconds,
          thumbnailSeconds,
          thumbnailBytes: png.length,
          jsonBytes: JSON.stringify(map).length,
          explainedVarianceRatio: map.pca.explainedVarianceRatio,
          extractorSeconds,
        }),
      );
    }
  } finally {
    extractor.dispose();
  }
} finally {
  if (!args.cache) await rm(cache, { recursive: true, force: true });
}
