/**
 * The embedding map's file format (`embedding.json`, written beside `evaluation.json`): its TypeScript type,
 * the zod schema that reads it back, and `readEmbeddingMap`. No TensorFlow here, so the report and the web
 * app can read maps without loading a backend; the maths that makes a map is in embedding.ts.
 *
 * A map holds one point per embedded image: the set it comes from (`train`, `test`, `synthetic`, or any
 * other key such as a generator's name), its class name (null when the set is unlabelled), its index in that
 * set (the order the evaluation loaded or generated the set in), and its 2-D coordinates under PCA and UMAP
 * (UMAP null when it was not computed). Point `i` is cell `i` of the thumbnail sheet when there is one
 * (`thumbnails`: cells left to right, then top to bottom, no gaps).
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DatasetError } from '../runtime/errors.js';

export const EMBEDDING_FORMAT = 'medsynth-embedding';
export const EMBEDDING_VERSION = 1;
/** File names in an evaluation folder. */
export const EMBEDDING_FILE = 'embedding.json';
export const EMBEDDING_THUMBNAILS_FILE = 'embedding-thumbnails.png';

const finite = z.number().finite();
const count = z.number().int().min(0);
const xy = z.tuple([finite, finite]);

export const EmbeddingSetSchema = z
  .object({
    /** The key points refer to: `train`, `test`, `synthetic`, or e.g. a generator's name. */
    key: z.string().min(1),
    role: z.enum(['real', 'synthetic']),
    /** Where the images come from, in words (dataset and split, run and checkpoint…). */
    description: z.string(),
    /** Images in the whole set, and per class (null: unlabelled). */
    total: count,
    classCounts: z.array(count).nullable(),
    /** Images embedded (at most the cap), and per class. */
    sampled: count,
    sampledClassCounts: z.array(count).nullable(),
  })
  .strict();

export const EmbeddingPointSchema = z
  .object({
    set: z.string().min(1),
    class: z.string().nullable(),
    /** Index of the image in its set. */
    index: count,
    pca: xy,
    umap: xy.nullable(),
  })
  .strict();

export const EmbeddingMapSchema = z
  .object({
    format: z.literal(EMBEDDING_FORMAT),
    version: z.literal(EMBEDDING_VERSION),
    createdAt: z.string(),
    /** Seed of the subsampling and of UMAP. */
    seed: z.number().int(),
    classNames: z.array(z.string()),
    extractor: z.object({ kind: z.string(), key: z.string(), dim: count, description: z.string() }).strict(),
    /** Most images embedded per set (split over classes in proportion to the set's class counts). */
    capPerSet: z.number().int().min(1),
    sets: z.array(EmbeddingSetSchema).min(1),
    pca: z
      .object({
        /** Variance along the first two principal axes (eigenvalues of the sample covariance, ddof 1). */
        explainedVariance: xy,
        /** Those variances over the total variance (trace of the covariance). */
        explainedVarianceRatio: xy,
        totalVariance: finite.min(0),
        /** `covariance` (d × d eigenproblem) or `gram` (n × n, when there are fewer points than dimensions). */
        solver: z.enum(['covariance', 'gram']),
        seconds: finite.min(0),
      })
      .strict(),
    umap: z
      .object({
        nNeighbors: z.number().int().min(1),
        minDist: finite.min(0),
        spread: finite.positive(),
        nEpochs: z.number().int().min(1),
        metric: z.literal('euclidean'),
        init: z.literal('random'),
        implementation: z.string(),
        seconds: finite.min(0),
      })
      .strict()
      .nullable(),
    /** Why there is no UMAP (null when there is one). */
    umapNote: z.string().nullable(),
    thumbnails: z
      .object({
        file: z.string().min(1),
        columns: z.number().int().min(1),
        rows: z.number().int().min(1),
        cellWidth: z.number().int().min(1),
        cellHeight: z.number().int().min(1),
        count,
      })
      .strict()
      .nullable(),
    seconds: finite.min(0),
    points: z.array(EmbeddingPointSchema),
  })
  .strict()
  .superRefine((m, ctx) => {
    const sets = new Map(m.sets.map((s) => [s.key, s]));
    if (sets.size !== m.sets.length)
      ctx.addIssue({ code: 'custom', path: ['sets'], message: 'set keys must be distinct' });
    const classes = new Set(m.classNames);
    const seen = new Map<string, number>();
    for (let i = 0; i < m.points.length; i++) {
      const p = m.points[i]!;
      const set = sets.get(p.set);
      if (!set) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'set'],
          message: `unknown set "${p.set}" (sets: ${[...sets.keys()].join(', ')})`,
        });
        return;
      }
      if (p.index >= set.total) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'index'],
          message: `index ${p.index} is past the end of set "${p.set}" (${set.total} images)`,
        });
        return;
      }
      if (p.class !== null && !classes.has(p.class)) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'class'],
          message: `unknown class "${p.class}"`,
        });
        return;
      }
      if ((p.umap === null) !== (m.umap === null)) {
        ctx.addIssue({
          code: 'custom',
          path: ['points', i, 'umap'],
          message: m.umap === null ? 'no UMAP was computed' : 'UMAP coordinates missing',
        });
        return;
      }
      seen.set(p.set, (seen.get(p.set) ?? 0) + 1);
    }
    m.sets.forEach((s, k) => {
      if ((seen.get(s.key) ?? 0) !== s.sampled)
        ctx.addIssue({
          code: 'custom',
          path: ['sets', k, 'sampled'],
          message: `${s.sampled} sampled, but ${seen.get(s.key) ?? 0} points belong to "${s.key}"`,
        });
    });
    if (m.thumbnails && m.thumbnails.count !== m.points.length)
      ctx.addIssue({
        code: 'custom',
        path: ['thumbnails', 'count'],
        message: `${m.thumbnails.count} thumbnails for ${m.points.length} points`,
      });
  });

export type EmbeddingSet = z.infer<typeof EmbeddingSetSchema>;
export type EmbeddingPoint = z.infer<typeof EmbeddingPointSchema>;
export type EmbeddingMap = z.infer<typeof EmbeddingMapSchema>;
export type EmbeddingMethod = 'pca' | 'umap';
export type EmbeddingThumbnails = NonNullable<EmbeddingMap['thumbnails']>;

/** Validates a parsed `embedding.json`; a `DatasetError` naming the file, the field and what is wrong. */
export function parseEmbeddingMap(value: unknown, file: string): EmbeddingMap {
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  const format = isObject ? (value as Record<string, unknown>)['format'] : undefined;
  if (format !== EMBEDDING_FORMAT)
    throw new DatasetError('not a medsynth embedding map', {
      file,
      field: 'format',
      expected: JSON.stringify(EMBEDDING_FORMAT),
      found: isObject ? JSON.stringify(format) : Array.isArray(value) ? 'a list' : typeof value,
    });
  const r = EmbeddingMapSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new DatasetError(`invalid embedding map: ${issue.message}`, {
      file,
      field: issue.path.map(String).join('.') || '(root)',
      ...('expected' in issue && typeof issue.expected === 'string' ? { expected: issue.expected } : {}),
    });
  }
  return r.data;
}

/** Reads and validates an `embedding.json`: a `DatasetError` when it is missing, not JSON or malformed. */
export async function readEmbeddingMap(file: string): Promise<EmbeddingMap> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new DatasetError('cannot read the embedding map', {
      file,
      found: (e as NodeJS.ErrnoException).code ?? String(e),
      cause: e,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DatasetError(`the embedding map is not valid JSON: ${(e as Error).message}`, { file });
  }
  return parseEmbeddingMap(value, file);
}
