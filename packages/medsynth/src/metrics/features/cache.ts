/**
 * Caches for evaluation, under `<cacheDir>/evaluation/` (`cacheDir`: `--cache-dir`, else `$MEDSYNTH_CACHE`,
 * else `~/.cache/medsynth`):
 * - `extractors/<key>/`: trained domain extractors (a classifier folder plus `extractor.json`);
 * - `features/<extractor key>/<dataset key>-<split>-<h>x<w>x<c>.f32` + `.json`: features of a real split.
 * Keys are short sha256 digests of everything that changes the content (the dataset's identity, the split
 * policy, the image size, the extractor's weights and preprocessing), so a stale entry is never read.
 * Entries are written to a temporary name and renamed: a killed run leaves no half-written entry.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Split } from '../../data/dataset.js';
import type { ImageArray } from '../../data/types.js';
import { resolveCacheDir } from '../../data/npz/download.js';
import { writeFileAtomic } from '../../runtime/fs.js';
import type { RunControl } from '../../runtime/progress.js';
import type { FeatureExtractor, FeatureMatrix } from './types.js';

/** Hex sha256 of the JSON of `parts`, first `length` characters. */
export function digest(parts: unknown, length = 16): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, length);
}

/** The evaluation cache root for a user's `cacheDir` option. */
export function evaluationCacheDir(cacheDir?: string): string {
  return join(resolveCacheDir(cacheDir), 'evaluation');
}

/**
 * Identity of a dataset split's content: the source's location, size and modification time, its class
 * names, and the split's sample ids and labels (which also capture the split policy and seed).
 */
export async function splitKey(split: Split): Promise<string> {
  const ds = split.dataset;
  let fileFacts: [number, number] | null = null;
  try {
    const s = await stat(ds.location);
    fileFacts = [s.size, Math.round(s.mtimeMs)];
  } catch {
    // Not a plain path (cannot happen for opened sources, but the key stays well-defined).
  }
  const ids = createHash('sha256');
  for (let i = 0; i < split.size; i++) ids.update(`${split.id(i)}\t${split.labels[i]}\n`);
  return digest([ds.location, ds.format, fileFacts, ds.classNames, split.name, ids.digest('hex')]);
}

interface FeatureFileMeta {
  readonly rows: number;
  readonly cols: number;
  readonly extractor: string;
  readonly set: string;
  readonly createdAt: string;
}

/**
 * Features of `images` (the real split whose content key is `setKey`) through `extractor`, read from the
 * cache when present, else computed and stored. `loadImages` is only called on a miss.
 */
export async function cachedFeatures(
  cacheRoot: string,
  extractor: FeatureExtractor,
  setKey: string,
  loadImages: () => Promise<ImageArray>,
  control: RunControl = {},
): Promise<{ features: FeatureMatrix; cached: boolean }> {
  const dir = join(cacheRoot, 'features', extractor.info.key);
  const base = join(dir, setKey);
  try {
    const meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as FeatureFileMeta;
    const bytes = await readFile(`${base}.f32`);
    if (bytes.byteLength === meta.rows * meta.cols * 4 && meta.extractor === extractor.info.key) {
      const data = new Float32Array(
        bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      );
      return { features: { data, rows: meta.rows, cols: meta.cols }, cached: true };
    }
  } catch {
    // A miss (or an unreadable entry, which is recomputed and replaced).
  }
  const features = await extractor.features(await loadImages(), control);
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(
    `${base}.f32`,
    new Uint8Array(features.data.buffer, features.data.byteOffset, features.data.byteLength),
  );
  const meta: FeatureFileMeta = {
    rows: features.rows,
    cols: features.cols,
    extractor: extractor.info.key,
    set: setKey,
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(`${base}.json`, `${JSON.stringify(meta)}\n`);
  return { features, cached: false };
}
