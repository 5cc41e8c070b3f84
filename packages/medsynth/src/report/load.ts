/**
 * Reads what a report needs from a study directory (results version 2): `results.json` (required),
 * `study.json`, `real-grid.png`, and for each generator instance of `results.json` its folder
 * `generators/<key>/`: `synthetic-grid.png`, `evaluation/` (evaluation.json and the closest-pair pictures)
 * and its training runs (stats.jsonl, result.json). Folders are found from the study directory and the
 * instance keys, never from the absolute paths recorded in results.json, so a moved or copied study still
 * reports. Missing optional pieces become `null` with a short note saying why; only a missing, foreign or
 * old results.json throws.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { EMBEDDING_FILE, readEmbeddingMap, type EmbeddingMap } from '../metrics/embedding-map.js';
import type { Comparison, MetricName } from '../metrics/registry.js';
import { StudyError } from '../runtime/errors.js';
import { jsonLines } from '../runtime/fs.js';
import type { InstanceRecord, StudySummary } from '../study/summary.js';

/** A PNG read from the study directory, with its size from the header. */
export interface PngFile {
  readonly file: string;
  readonly bytes: Buffer;
  readonly width: number;
  readonly height: number;
}

/** One metric record of evaluation.json (the fields the report uses). */
export interface EvaluationRecord {
  readonly metric: MetricName;
  readonly comparison: Comparison;
  readonly class: string | null;
  readonly nReal: number;
  readonly nCompared: number;
  /** The extractor's key, or null for metrics computed on pixels. */
  readonly extractor: string | null;
  readonly values: Readonly<Record<string, number | null>>;
  readonly details?: unknown;
  readonly note?: string;
}

interface SetInfo {
  readonly source?: string;
  readonly split?: string;
  readonly kind?: string;
  readonly count?: number;
  readonly classCounts?: readonly number[] | null;
  readonly detail?: string;
}

/** evaluation.json (metrics/write-evaluation.ts), the fields the report uses. */
export interface EvaluationFile {
  readonly createdAt?: string;
  readonly real?: SetInfo;
  readonly holdout?: SetInfo | null;
  readonly fake?: SetInfo;
  readonly classNames?: readonly string[];
  readonly shape?: readonly number[];
  readonly extractor?: {
    readonly kind?: string;
    readonly key?: string;
    readonly dim?: number;
    readonly description?: string;
  };
  readonly settings?: Readonly<Record<string, number>>;
  readonly comparisons?: readonly Comparison[];
  readonly records: readonly EvaluationRecord[];
  readonly warnings?: readonly string[];
  readonly seconds?: number;
}

/** One line of a training run's stats.jsonl. */
export interface TickStats {
  readonly kimg: number;
  readonly dLoss: number | null;
  readonly gLoss: number | null;
  readonly penalty: number | null;
  readonly augmentP: number | null;
  readonly imagesPerSecond: number | null;
  readonly seconds: number | null;
}

/** A training run of a generator instance, as far as it could be read. */
export interface GanRun {
  /** Where it was found. */
  readonly dir: string;
  /** Its folder name (the name runs.json of the instance gives it). */
  readonly name: string;
  readonly ticks: readonly TickStats[];
  readonly result: Readonly<Record<string, unknown>> | null;
}

/** One generator instance (summary.instances) and what its folder `generators/<key>/` holds. */
export interface InstanceReport {
  readonly record: InstanceRecord;
  /** `<study>/generators/<key>` (from the study folder and the key, never from recorded absolute paths). */
  readonly dir: string;
  readonly syntheticGrid: PngFile | null;
  readonly evaluation: EvaluationFile | null;
  /** Why there is no evaluation (null when there is one). */
  readonly evaluationNote: string | null;
  readonly privacyPictures: { readonly features: PngFile | null; readonly pixels: PngFile | null };
  /** `evaluation/projection.png` (images above their reconstructions), when the projection metric ran. */
  readonly projectionPicture?: PngFile | null;
  /** The evaluation's embedding map (`evaluation/embedding.json`), when there is a readable one. */
  readonly embedding?: EmbeddingMap | null;
  /** Why a map that should be there is not (unreadable file); null when there is one or none was made. */
  readonly embeddingNote?: string | null;
  /** The runs whose folders were found, in the record's order. */
  readonly runs: readonly GanRun[];
  /** Why some or all training curves are missing (null when every run has them). */
  readonly runsNote: string | null;
}

export interface StudyReportData {
  readonly dir: string;
  readonly summary: StudySummary;
  readonly realGrid: PngFile | null;
  readonly instances: readonly InstanceReport[];
  /** Which of the study's result files exist (for the footer). */
  readonly files: Readonly<Record<'results.json' | 'results.csv' | 'study.sqlite' | 'study.json', boolean>>;
}

/** The results.json version this report reads (study/summary.ts). */
export const RESULTS_VERSION = 2;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from a PNG's IHDR chunk, or null when the bytes are not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24 || !PNG_SIGNATURE.equals(Buffer.from(bytes.subarray(0, 8)))) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

async function readPng(file: string): Promise<PngFile | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    return null;
  }
  const size = pngSize(bytes);
  return size ? { file, bytes, ...size } : null;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch {
    return null;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

async function readSummary(dir: string): Promise<StudySummary> {
  const file = join(dir, 'results.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    const started = existsSync(join(dir, 'study.json')) || existsSync(join(dir, 'study.sqlite'));
    throw new StudyError(
      started
        ? 'the study has no results yet (finish it with `medsynth study --resume <study-dir>`)'
        : 'not a study directory: results.json is missing',
      { file },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new StudyError(`results.json is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!isObject(value) || value['format'] !== 'medsynth-study-results')
    throw new StudyError('not a medsynth study results file', {
      file,
      expected: 'format "medsynth-study-results"',
      found: isObject(value) ? String(value['format']) : typeof value,
    });
  if (value['version'] !== RESULTS_VERSION)
    throw new StudyError(
      typeof value['version'] === 'number' && value['version'] < RESULTS_VERSION
        ? `results.json was written by an older medsynth (results version ${value['version']}); this report reads version ${RESULTS_VERSION} — rerun the study with this medsynth, or report it with the medsynth that ran it`
        : 'unsupported results version',
      { file, expected: String(RESULTS_VERSION), found: String(value['version']) },
    );
  for (const key of [
    'classNames',
    'conditions',
    'classifiers',
    'generators',
    'instances',
    'cells',
    'verdicts',
    'jobs',
    'testClassCounts',
  ])
    if (!Array.isArray(value[key]))
      throw new StudyError('results.json is incomplete', { file, field: key, expected: 'a list' });
  if (!isObject(value['config']))
    throw new StudyError('results.json is incomplete', { file, field: 'config', expected: 'an object' });
  // Studies written before queued runs have no failures list.
  if (value['failures'] === undefined) value['failures'] = [];
  else if (!Array.isArray(value['failures']))
    throw new StudyError('results.json is damaged', { file, field: 'failures', expected: 'a list' });
  return value as unknown as StudySummary;
}

async function readEvaluation(
  folder: string,
  summary: StudySummary,
  record: InstanceRecord,
): Promise<{ evaluation: EvaluationFile | null; note: string | null }> {
  const file = join(folder, 'evaluation', 'evaluation.json');
  const enabled = (summary.config.evaluate as { enabled?: boolean } | undefined)?.enabled !== false;
  if (!existsSync(file))
    return {
      evaluation: null,
      note: !enabled
        ? 'Not evaluated: evaluation was disabled in this study’s config.'
        : record.fraction !== null
          ? 'Not evaluated: the study evaluates the generators trained on the whole train split only.'
          : `No evaluation was found (generators/${record.key}/evaluation/evaluation.json is missing).`,
    };
  const value = await readJson(file);
  if (!isObject(value) || !Array.isArray(value['records']))
    return {
      evaluation: null,
      note: `generators/${record.key}/evaluation/evaluation.json could not be read (not a medsynth evaluation).`,
    };
  return { evaluation: value as unknown as EvaluationFile, note: null };
}

/** Parses stats.jsonl, skipping lines that are not JSON objects (a run cut off mid-line). */
export function parseStats(text: string): TickStats[] {
  const out: TickStats[] = [];
  for (const v of jsonLines(text)) {
    if (!isObject(v)) continue;
    const kimg = num(v['kimg']);
    if (kimg === null) continue;
    out.push({
      kimg,
      dLoss: num(v['dLoss']),
      gLoss: num(v['gLoss']),
      penalty: num(v['penalty']),
      augmentP: num(v['augmentP']),
      imagesPerSecond: num(v['imagesPerSecond']),
      seconds: num(v['seconds']),
    });
  }
  return out;
}

/**
 * Where a recorded run is on this machine: the same place under the instance's folder (the part of its
 * recorded path after `generators/<key>/`, else its folder name), or for an existing run outside the study
 * its recorded path (absolute, or relative to the study).
 */
function runCandidates(studyDir: string, folder: string, key: string, recorded: string): string[] {
  const path = recorded.replace(/\\/g, '/');
  const marker = `/generators/${key}/`;
  const at = path.lastIndexOf(marker);
  const inside = at >= 0 ? path.slice(at + marker.length) : basename(path);
  const out = [join(folder, inside)];
  if (at < 0) out.push(isAbsolute(recorded) ? recorded : resolve(studyDir, recorded));
  return out;
}

async function readRuns(
  studyDir: string,
  folder: string,
  record: InstanceRecord,
): Promise<{ runs: GanRun[]; note: string | null }> {
  const runs: GanRun[] = [];
  const missing: string[] = [];
  for (const r of record.runs ?? []) {
    const dir = runCandidates(studyDir, folder, record.key, r.dir).find((c) => existsSync(c));
    if (!dir) {
      missing.push(basename(r.dir));
      continue;
    }
    let ticks: TickStats[] = [];
    try {
      ticks = parseStats(await readFile(join(dir, 'stats.jsonl'), 'utf8'));
    } catch {
      // no stats: the run is still described
    }
    const result = await readJson(join(dir, 'result.json'));
    runs.push({ dir, name: basename(dir), ticks, result: isObject(result) ? result : null });
  }
  const noStats = runs.filter((r) => r.ticks.length === 0).map((r) => r.name);
  const notes = [
    missing.length > 0
      ? record.existingRun
        ? `The existing run it samples from (${missing.join(', ')}) is not on this machine.`
        : `Its training run${missing.length === 1 ? '' : 's'} (${missing.join(', ')}) ${missing.length === 1 ? 'is' : 'are'} not in the study folder.`
      : null,
    noStats.length > 0 ? `No training statistics (stats.jsonl) in ${noStats.join(', ')}.` : null,
  ].filter((x) => x !== null);
  return { runs, note: notes.length > 0 ? notes.join(' ') : null };
}

/** `evaluation/embedding.json` when it exists: the map, or a note saying why it could not be read. */
async function readEmbedding(
  folder: string,
  record: InstanceRecord,
): Promise<{ map: EmbeddingMap | null; note: string | null }> {
  const file = join(folder, 'evaluation', EMBEDDING_FILE);
  if (!existsSync(file)) return { map: null, note: null };
  try {
    return { map: await readEmbeddingMap(file), note: null };
  } catch (e) {
    const reason = (e as Error).message.replace(
      file,
      `generators/${record.key}/evaluation/${EMBEDDING_FILE}`,
    );
    return { map: null, note: `The embedding map could not be read: ${reason}` };
  }
}

async function readInstance(
  studyDir: string,
  summary: StudySummary,
  record: InstanceRecord,
): Promise<InstanceReport> {
  // the key's segments only (a results.json cannot point the report outside generators/)
  const folder = join(
    studyDir,
    'generators',
    ...record.key.split('/').filter((p) => p !== '' && p !== '.' && p !== '..'),
  );
  const [evaluation, runs, syntheticGrid, features, pixels, embedding] = await Promise.all([
    readEvaluation(folder, summary, record),
    readRuns(studyDir, folder, record),
    readPng(join(folder, 'synthetic-grid.png')),
    readPng(join(folder, 'evaluation', 'privacy-closest-features.png')),
    readPng(join(folder, 'evaluation', 'privacy-closest-pixels.png')),
    readEmbedding(folder, record),
  ]);
  return {
    record,
    dir: folder,
    syntheticGrid,
    evaluation: evaluation.evaluation,
    evaluationNote: evaluation.note,
    privacyPictures: { features, pixels },
    projectionPicture: await readPng(join(folder, 'evaluation', 'projection.png')),
    embedding: embedding.map,
    embeddingNote: embedding.note,
    runs: runs.runs,
    runsNote: runs.note,
  };
}

/** Everything a report shows, read from `studyDir`. Throws `StudyError` only when results.json is unusable. */
export async function loadStudyReport(studyDir: string): Promise<StudyReportData> {
  const dir = resolve(studyDir);
  const summary = await readSummary(dir);
  const [realGrid, instances] = await Promise.all([
    readPng(join(dir, 'real-grid.png')),
    Promise.all(summary.instances.map((r) => readInstance(dir, summary, r))),
  ]);
  return {
    dir,
    summary,
    realGrid,
    instances,
    files: {
      'results.json': true,
      'results.csv': existsSync(join(dir, 'results.csv')),
      'study.sqlite': existsSync(join(dir, 'study.sqlite')),
      'study.json': existsSync(join(dir, 'study.json')),
    },
  };
}
