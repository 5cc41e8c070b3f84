/**
 * Benchmark: open the Kermany chest X-ray train folder (5216 JPEGs, 224×224 RGB) as a dataset and load
 * every image resized to 64×64 gray through the public API (`openDataset` → `Split.load`), which decodes
 * and resizes in one sharp pipeline per image.
 *
 *   npm run bench bench/load-kermany.ts [folder] [concurrency]
 *
 * Prints one JSON line: {bench, images, seconds, imagesPerSecond, listSeconds, concurrency, ...}.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../packages/medsynth/src/data/source.js';

const root =
  process.argv[2] || fileURLToPath(new URL('../../shared/data/kermany_cxr_224/train/', import.meta.url));
const concurrency = Number(process.argv[3] || Math.max(2, availableParallelism()));

const start = performance.now();
// The train folder alone has class folders only: keep every image in "train".
const ds = await openDataset({ source: root, splitRatios: { train: 1, val: 0, test: 0 } });
const listed = performance.now();
const images = await ds.split('train').load({ size: 64, channels: 1, concurrency });
const seconds = (performance.now() - start) / 1000;
let sum = 0;
for (const v of images.data) sum += v;
console.log(
  JSON.stringify({
    bench: 'load-kermany-64-gray',
    images: images.count,
    shape: [images.count, images.height, images.width, images.channels],
    seconds: Number(seconds.toFixed(3)),
    imagesPerSecond: Number((images.count / seconds).toFixed(1)),
    listSeconds: Number(((listed - start) / 1000).toFixed(3)),
    meanPixel: Number((sum / images.data.length).toFixed(2)),
    concurrency,
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  }),
);
