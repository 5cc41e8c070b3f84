/**
 * Writing an evaluation to a folder:
 * - `evaluation.json`: everything (sources, shape, extractor, settings, every record, warnings);
 * - `metrics.jsonl`: one metric record per line (appended to, so repeated evaluations accumulate);
 * - `real-grid.png`, `fake-grid.png`: one row per class, the first images of each set;
 * - `privacy-closest-features.png`, `privacy-closest-pixels.png`: the synthetic images nearest to a training
 *   image (top row) above that training image (bottom row), closest first — for a human to judge copies;
 * - `embedding.json` and `embedding-thumbnails.png` (when the embedding metric ran): the PCA/UMAP map, its
 *   sets described by their sources, and every embedded image as one cell of a thumbnail sheet.
 * - `projection.png` (when the projection metric ran): per projected set (train, held-out, synthetic) a row of
 *   images above a row of their reconstructions through the generator.
 * Files are written atomically (temporary name, then rename).
 */
import { linalgImplementation } from './linalg.js';
import { appendFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { encodePng, tileImages } from '../data/image/grid.js';
import { unpackImage } from '../data/image/transform.js';
import type { ImageArray, RawImage } from '../data/types.js';
import { writeFileAtomic } from '../runtime/fs.js';
import {
  EMBEDDING_FILE,
  EMBEDDING_THUMBNAILS_FILE,
  embeddingThumbnails,
  type EmbeddingMap,
} from './embedding.js';
import type { LabelledSet } from './evaluate.js';
import type { PrivacyResult } from './privacy.js';
import { PROJECTION_PICTURE, pictureRows } from './projection-files.js';
import type { SourceEvaluation } from './sources.js';

/** Rows of a grid: per class (labelled sets) or one row, up to `perRow` images each. */
export function gridRows(set: LabelledSet, classNames: readonly string[], perRow: number): RawImage[][] {
  if (!set.labels) {
    return [Array.from({ length: Math.min(perRow, set.images.count) }, (_, i) => unpackImage(set.images, i))];
  }
  const rows: RawImage[][] = classNames.map(() => []);
  set.labels.forEach((l, i) => {
    if (rows[l]!.length < perRow) rows[l]!.push(unpackImage(set.images, i));
  });
  return rows.filter((r) => r.length > 0);
}

function pairRows(r: PrivacyResult, fake: LabelledSet, train: LabelledSet): RawImage[][] {
  return [
    r.closest.map((p) => unpackImage(fake.images, p.fake)),
    r.closest.map((p) => unpackImage(train.images, p.train)),
  ];
}

/** JSON of an evaluation (typed arrays left out: the records and summaries hold the numbers). */
export function evaluationJson(ev: SourceEvaluation): Record<string, unknown> {
  const { result } = ev;
  return {
    format: 'medsynth-evaluation',
    version: 1,
    createdAt: new Date().toISOString(),
    real: ev.real,
    holdout: ev.holdout,
    fake: ev.fake,
    classNames: ev.classNames,
    shape: ev.shape,
    extractor: ev.extractor,
    featureCache: ev.featureCache,
    settings: result.settings,
    comparisons: result.comparisons,
    records: result.records,
    warnings: result.warnings,
    seconds: ev.seconds,
    metricsSeconds: result.seconds,
    /** Where the float64 statistics (covariances, eigendecompositions) ran. */
    linalg: linalgImplementation(),
  };
}

export interface WrittenEvaluation {
  readonly dir: string;
  readonly files: string[];
}

export async function writeEvaluation(
  dir: string,
  ev: SourceEvaluation,
  perRow = 10,
): Promise<WrittenEvaluation> {
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, data: string | Uint8Array) => {
    await writeFileAtomic(join(out, name), data);
    files.push(join(out, name));
  };
  await write('evaluation.json', `${JSON.stringify(evaluationJson(ev), null, 1)}\n`);
  await appendFile(
    join(out, 'metrics.jsonl'),
    ev.result.records.map((r) => `${JSON.stringify(r)}\n`).join(''),
  );
  files.push(join(out, 'metrics.jsonl'));
  const { real, fake } = ev.images;
  await write('real-grid.png', await encodePng(tileImages(gridRows(real, ev.classNames, perRow))));
  await write('fake-grid.png', await encodePng(tileImages(gridRows(fake, ev.classNames, perRow))));
  const privacy = ev.result.privacy;
  if (privacy) {
    for (const space of ['features', 'pixels'] as const) {
      const r = privacy[space];
      if (r.closest.length > 0)
        await write(`privacy-closest-${space}.png`, await encodePng(tileImages(pairRows(r, fake, real))));
    }
  }
  const map = ev.result.embedding;
  if (map) {
    const sheet = embeddingThumbnails(map, embeddingImages(ev));
    await write(EMBEDDING_THUMBNAILS_FILE, await encodePng(sheet.image));
    const described = describeEmbeddingSets(map, ev);
    await write(EMBEDDING_FILE, `${JSON.stringify({ ...described, thumbnails: sheet.info })}\n`);
  }
  const projection = ev.result.projection;
  if (projection) {
    // Per projected set: its images (top row) above their projections through the generator.
    const { rows } = pictureRows(projection, perRow);
    if (rows.length > 0) await write(PROJECTION_PICTURE, await encodePng(tileImages(rows)));
  }
  return { dir: out, files };
}

/** The images the embedding's set keys refer to (see the embedding metric in registry.ts). */
function embeddingImages(ev: SourceEvaluation): Record<string, ImageArray> {
  const { real, fake, holdout } = ev.images;
  return { train: real.images, synthetic: fake.images, ...(holdout ? { test: holdout.images } : {}) };
}

/** The map with each set described by its source (dataset and split, or how the synthetic images were made). */
export function describeEmbeddingSets(map: EmbeddingMap, ev: SourceEvaluation): EmbeddingMap {
  const describe: Record<string, string> = {
    train: `real reference images: ${ev.real.source}, ${ev.real.split} split`,
    synthetic: `synthetic images: ${ev.fake.detail}${ev.fake.kind === 'run' ? ' (image i has seed i)' : ''}`,
    ...(ev.holdout ? { test: `held-out real images: ${ev.real.source}, ${ev.holdout.split} split` } : {}),
  };
  return { ...map, sets: map.sets.map((s) => ({ ...s, description: describe[s.key] ?? s.description })) };
}
