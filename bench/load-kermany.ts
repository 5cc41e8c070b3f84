/**
 * Benchmark: list the Kermany chest X-ray train folder (5216 JPEGs, 224×224 RGB) and read every image
 * resized to 64×64 gray through the folder loader's one-pass `readTransformed`.
 *
 *   node --import tsx bench/load-kermany.ts [folder] [concurrency]
 *
 * Prints one JSON line: {bench, images, seconds, imagesPerSecond, ...}.
 */
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { loadFolder } from '../packages/medsynth/src/data/folder/load-folder.js';
import { resolveTransform } from '../packages/medsynth/src/data/image/transform.js';

const root = process.argv[2] || fileURLToPath(new URL('../../shared/data/kermany_cxr_224/train/', import.meta.url));
const concurrency = Number(process.argv[3] || 4);

async function main(): Promise<void> {
  const t = resolveTransform({ size: 64, channels: 1 });
  const start = performance.now();
  const listing = await loadFolder(root, {});
  const listed = performance.now();
  const read = listing.readTransformed;
  if (!read) throw new Error('the folder listing has no readTransformed');
  const limit = pLimit(concurrency);
  let checksum = 0;
  await Promise.all(
    listing.samples.map((_, i) =>
      limit(async () => {
        const img = await read(i, t);
        if (img.width !== 64 || img.height !== 64 || img.channels !== 1) throw new Error(`bad shape at ${i}`);
        checksum += img.data[0]!;
      }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  console.log(
    JSON.stringify({
      bench: 'load-kermany',
      images: listing.samples.length,
      seconds: Number(seconds.toFixed(3)),
      imagesPerSecond: Number((listing.samples.length / seconds).toFixed(1)),
      listSeconds: Number(((listed - start) / 1000).toFixed(3)),
      concurrency,
      checksum,
    }),
  );
}

await main();
