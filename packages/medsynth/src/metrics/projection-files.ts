/**
 * A projection analysis on disk (metrics/projection.ts):
 * - `projection.json`: sources, options, per-set distance summaries and traces, the test, the verdict
 *   (`ProjectionFileSchema` validates it when read back: `readProjection`);
 * - `projection.png`: per projected set two rows — the images (top) and their projections (below) — the first
 *   `columns` images of each set, sets in the order train, held-out, synthetic (`picture.rows` names them);
 * - `distances.csv`: one row per projected image (set, index, id, class, pixel RMSE, feature distance, loss,
 *   kept restart).
 * Every file is written atomically.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { encodePng, tileImages } from '../data/image/grid.js';
import { unpackImage } from '../data/image/transform.js';
import type { RawImage } from '../data/types.js';
import { DatasetError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import {
  type AuthenticityTest,
  PROJECTION_SETS,
  type ProjectionAnalysis,
  type ProjectionSetName,
} from './projection.js';

export const PROJECTION_FILE = 'projection.json';
export const PROJECTION_PICTURE = 'projection.png';
export const PROJECTION_DISTANCES = 'distances.csv';

/** Human names of the sets (pictures, tables). */
export const PROJECTION_SET_LABELS: Readonly<Record<ProjectionSetName, string>> = Object.freeze({
  train: 'training images',
  holdout: 'held-out real images',
  synthetic: 'synthetic images (floor)',
});

const summarySchema = z.object({
  n: z.number().int().min(0),
  mean: z.number(),
  median: z.number(),
  q1: z.number(),
  q3: z.number(),
  min: z.number(),
  max: z.number(),
});

const testSchema = z.object({
  method: z.enum(['exact', 'asymptotic']),
  alternative: z.literal('less'),
  u: z.number(),
  p: z.number().min(0).max(1),
  probTrainCloser: z.number().min(0).max(1),
  medianRatio: z.number().nullable(),
  nTrain: z.number().int().min(1),
  nHoldout: z.number().int().min(1),
});

const setSchema = z.object({
  n: z.number().int().min(1),
  classCounts: z.array(z.number().int().min(0)).nullable(),
  pixelRmse: summarySchema,
  featureDistance: summarySchema.nullable(),
  seconds: z.number().min(0),
  trace: z.array(z.object({ step: z.number().int().min(0), loss: z.number(), pixelRmse: z.number() })),
});

/** projection.json as written by `writeProjection`. */
export const ProjectionFileSchema = z.object({
  format: z.literal('medsynth-projection'),
  version: z.literal(1),
  createdAt: z.string(),
  run: z
    .object({
      dir: z.string(),
      checkpoint: z.string(),
      step: z.number(),
      kimg: z.number(),
      family: z.string(),
      network: z.string(),
    })
    .nullable(),
  data: z
    .object({
      source: z.string(),
      classNames: z.array(z.string()),
      trainSplit: z.number().int().min(0).nullable(),
      holdoutSplit: z.number().int().min(0).nullable(),
    })
    .nullable(),
  space: z.enum(['z', 'w']),
  objective: z.enum(['pixel+features', 'pixel+multiscale']),
  options: z.record(z.string(), z.unknown()),
  features: z.object({ key: z.string(), description: z.string() }).nullable(),
  featuresNote: z.string().nullable(),
  sets: z.object({
    train: setSchema.optional(),
    holdout: setSchema.optional(),
    synthetic: setSchema.optional(),
  }),
  test: testSchema.nullable(),
  featureTest: testSchema.nullable(),
  signal: z.boolean().nullable(),
  verdict: z.string(),
  warnings: z.array(z.string()),
  seconds: z.number().min(0),
  secondsPerImage: z.number().min(0),
  picture: z
    .object({ file: z.string(), columns: z.number().int().min(0), rows: z.array(z.string()) })
    .nullable(),
  distances: z.string(),
  backend: z.string().nullable(),
});
export type ProjectionFile = z.infer<typeof ProjectionFileSchema>;

/** Where the analysis came from, for projection.json. */
export interface ProjectionMeta {
  readonly run?: ProjectionFile['run'];
  readonly data?: ProjectionFile['data'];
  readonly featuresNote?: string | null;
  readonly backend?: string | null;
  /** Class names, for the class column of distances.csv (generator class indices). */
  readonly classNames?: readonly string[];
}

function classCounts(labels: Int32Array | null, k: number): number[] | null {
  if (!labels || k < 1) return null;
  const c = new Array<number>(k).fill(0);
  for (const l of labels) if (l >= 0 && l < k) c[l]!++;
  return c;
}

function cleanTest(t: AuthenticityTest | null): z.infer<typeof testSchema> | null {
  if (!t) return null;
  return { ...t, medianRatio: Number.isFinite(t.medianRatio) ? t.medianRatio : null };
}

/** The rows of projection.png (see the module comment). */
export function pictureRows(a: ProjectionAnalysis, columns: number): { rows: RawImage[][]; names: string[] } {
  const rows: RawImage[][] = [];
  const names: string[] = [];
  for (const name of PROJECTION_SETS) {
    const set = a.sets[name];
    if (!set) continue;
    const k = Math.min(columns, set.input.images.count);
    if (k === 0) continue;
    rows.push(Array.from({ length: k }, (_, i) => unpackImage(set.input.images, i)));
    rows.push(Array.from({ length: k }, (_, i) => unpackImage(set.result.projections, i)));
    names.push(`${name}: image`, `${name}: projection`);
  }
  return { rows, names };
}

/** projection.json's content. */
export function projectionJson(
  a: ProjectionAnalysis,
  meta: ProjectionMeta = {},
  picture: ProjectionFile['picture'] = null,
): ProjectionFile {
  const k = meta.classNames?.length ?? 0;
  const sets: ProjectionFile['sets'] = {};
  for (const name of PROJECTION_SETS) {
    const s = a.sets[name];
    if (!s) continue;
    sets[name] = {
      n: s.result.count,
      classCounts: classCounts(s.input.labels, k),
      pixelRmse: s.pixel,
      featureDistance: s.feature,
      seconds: s.result.seconds,
      trace: [...s.result.trace],
    };
  }
  return {
    format: 'medsynth-projection',
    version: 1,
    createdAt: new Date().toISOString(),
    run: meta.run ?? null,
    data: meta.data ?? null,
    space: a.space,
    objective: a.objective,
    options: { ...a.options },
    features: a.features,
    featuresNote: meta.featuresNote ?? null,
    sets,
    test: cleanTest(a.test),
    featureTest: cleanTest(a.featureTest),
    signal: a.signal,
    verdict: a.verdict,
    warnings: [...a.warnings],
    seconds: a.seconds,
    secondsPerImage: a.secondsPerImage,
    picture,
    distances: PROJECTION_DISTANCES,
    backend: meta.backend ?? null,
  };
}

/** distances.csv's content (see the module comment). */
export function distancesCsv(a: ProjectionAnalysis, classNames: readonly string[] = []): string {
  const rows: (string | number)[][] = [];
  for (const name of PROJECTION_SETS) {
    const s = a.sets[name];
    if (!s) continue;
    const r = s.result;
    for (let i = 0; i < r.count; i++) {
      const label = s.input.labels?.[i];
      rows.push([
        name,
        i,
        s.input.ids[i] ?? '',
        label === undefined ? '' : (classNames[label] ?? String(label)),
        r.pixelRmse[i]!,
        r.featureDistance ? r.featureDistance[i]! : '',
        r.loss[i]!,
        r.restart[i]!,
      ]);
    }
  }
  return stringify(rows, {
    header: true,
    columns: ['set', 'index', 'id', 'class', 'pixel_rmse', 'feature_distance', 'loss', 'restart'],
  });
}

export interface WrittenProjection {
  readonly dir: string;
  readonly files: string[];
  readonly json: ProjectionFile;
}

/** Writes projection.json, projection.png (when any set was projected) and distances.csv into `dir`. */
export async function writeProjection(
  dir: string,
  a: ProjectionAnalysis,
  meta: ProjectionMeta = {},
  columns = 10,
): Promise<WrittenProjection> {
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, data: string | Uint8Array) => {
    await writeFileAtomic(join(out, name), data);
    files.push(join(out, name));
  };
  const { rows, names } = pictureRows(a, columns);
  let picture: ProjectionFile['picture'] = null;
  if (rows.length > 0) {
    await write(PROJECTION_PICTURE, await encodePng(tileImages(rows)));
    picture = { file: PROJECTION_PICTURE, columns, rows: names };
  }
  await write(PROJECTION_DISTANCES, distancesCsv(a, meta.classNames ?? []));
  const json = projectionJson(a, meta, picture);
  await write(PROJECTION_FILE, `${JSON.stringify(json, null, 1)}\n`);
  return { dir: out, files, json };
}

/** Reads and validates a projection.json (a `DatasetError` naming the file and field when it is not one). */
export async function readProjection(file: string): Promise<ProjectionFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new DatasetError('cannot read the projection file', { file, cause: e });
  }
  const parsed = ProjectionFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DatasetError(`not a medsynth projection file: ${issue.message}`, {
      file,
      field: issue.path.join('.') || '(root)',
    });
  }
  return parsed.data;
}
