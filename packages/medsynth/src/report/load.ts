/**
 * Reads what a report needs from a study directory: `results.json` (required), `study.json`, the grids,
 * `evaluation/` (optional: evaluation.json and its pictures) and the generator's run (optional: stats.jsonl,
 * result.json, run.json, options.json — inside `gan/`, or the run named by config.generator.run). Missing
 * optional pieces become `null` with a short note saying why; only a missing or foreign results.json throws.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Comparison, MetricName } from '../metrics/registry.js';
import { StudyError } from '../runtime/errors.js';
import type { StudySummary } from '../study/summary.js';

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

/** The generator's training run, as far as it could be read. */
export interface GanRun {
  readonly dir: string;
  readonly ticks: readonly TickStats[];
  readonly result: Readonly<Record<string, unknown>> | null;
  readonly spec: Readonly<Record<string, unknown>> | null;
  readonly options: Readonly<Record<string, unknown>> | null;
}

export interface StudyReportData {
  readonly dir: string;
  readonly summary: StudySummary;
  readonly evaluation: EvaluationFile | null;
  /** Why there is no evaluation (null when there is one). */
  readonly evaluationNote: string | null;
  readonly realGrid: PngFile | null;
  readonly syntheticGrid: PngFile | null;
  readonly privacyPictures: { readonly features: PngFile | null; readonly pixels: PngFile | null };
  readonly gan: GanRun | null;
  /** Why there are no training curves (null when there are). */
  readonly ganNote: string | null;
  /** Which of the study's result files exist (for the footer). */
  readonly files: Readonly<Record<'results.json' | 'results.csv' | 'study.sqlite' | 'study.json', boolean>>;
}

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
  if (value['version'] !== 1)
    throw new StudyError('unsupported results version', {
      file,
      expected: '1',
      found: String(value['version']),
    });
  for (const key of [
    'classNames',
    'conditions',
    'classifiers',
    'cells',
    'verdicts',
    'jobs',
    'testClassCounts',
  ])
    if (!Array.isArray(value[key]))
      throw new StudyError('results.json is incomplete', { file, field: key, expected: 'a list' });
  if (!isObject(value['config']))
    throw new StudyError('results.json is incomplete', { file, field: 'config', expected: 'an object' });
  return value as unknown as StudySummary;
}

async function readEvaluation(
  dir: string,
  summary: StudySummary,
): Promise<{ evaluation: EvaluationFile | null; note: string | null }> {
  const file = join(dir, 'evaluation', 'evaluation.json');
  const enabled = (summary.config.evaluate as { enabled?: boolean } | undefined)?.enabled !== false;
  if (!existsSync(file))
    return {
      evaluation: null,
      note: enabled
        ? 'No evaluation of the synthetic images was found (evaluation/evaluation.json is missing).'
        : 'The synthetic images were not evaluated: evaluation was disabled in this study’s config.',
    };
  const value = await readJson(file);
  if (!isObject(value) || !Array.isArray(value['records']))
    return {
      evaluation: null,
      note: 'evaluation/evaluation.json could not be read (not a medsynth evaluation).',
    };
  return { evaluation: value as unknown as EvaluationFile, note: null };
}

/** The generator's run directory: config.generator.run (absolute, or relative to the study or the cwd), else the newest `gan/<run>`. */
async function findGanRun(
  dir: string,
  summary: StudySummary,
): Promise<{ dir: string | null; note: string | null }> {
  const named = summary.config.generator?.run;
  if (named !== undefined) {
    const candidates = isAbsolute(named) ? [named] : [resolve(dir, named), resolve(named)];
    const found = candidates.find((c) => existsSync(c));
    return found
      ? { dir: found, note: null }
      : {
          dir: null,
          note: `The study used an existing generator run (${named}) that is not on this machine.`,
        };
  }
  const gan = join(dir, 'gan');
  let runs: string[] = [];
  try {
    runs = (await readdir(gan)).filter((n) => /^\d{5,}-/.test(n)).sort();
  } catch {
    // no gan folder
  }
  const last = runs[runs.length - 1];
  return last
    ? { dir: join(gan, last), note: null }
    : { dir: null, note: 'No generator run was found in gan/.' };
}

/** Parses stats.jsonl, skipping lines that are not JSON objects (a run cut off mid-line). */
export function parseStats(text: string): TickStats[] {
  const out: TickStats[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
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

async function readGan(
  dir: string,
  summary: StudySummary,
): Promise<{ gan: GanRun | null; note: string | null }> {
  const found = await findGanRun(dir, summary);
  if (!found.dir) return { gan: null, note: found.note };
  let ticks: TickStats[] = [];
  try {
    ticks = parseStats(await readFile(join(found.dir, 'stats.jsonl'), 'utf8'));
  } catch {
    // no stats: the run is still described
  }
  const result = await readJson(join(found.dir, 'result.json'));
  const run = await readJson(join(found.dir, 'run.json'));
  const options = await readJson(join(found.dir, 'options.json'));
  return {
    gan: {
      dir: found.dir,
      ticks,
      result: isObject(result) ? result : null,
      spec: isObject(run) && isObject(run['spec']) ? run['spec'] : null,
      options: isObject(options) ? options : null,
    },
    note:
      ticks.length === 0
        ? `The generator run (${found.dir}) has no training statistics (stats.jsonl).`
        : null,
  };
}

/** Everything a report shows, read from `studyDir`. Throws `StudyError` only when results.json is unusable. */
export async function loadStudyReport(studyDir: string): Promise<StudyReportData> {
  const dir = resolve(studyDir);
  const summary = await readSummary(dir);
  const [evaluation, gan, realGrid, syntheticGrid, features, pixels] = await Promise.all([
    readEvaluation(dir, summary),
    readGan(dir, summary),
    readPng(join(dir, 'real-grid.png')),
    readPng(join(dir, 'synthetic-grid.png')),
    readPng(join(dir, 'evaluation', 'privacy-closest-features.png')),
    readPng(join(dir, 'evaluation', 'privacy-closest-pixels.png')),
  ]);
  return {
    dir,
    summary,
    evaluation: evaluation.evaluation,
    evaluationNote: evaluation.note,
    realGrid,
    syntheticGrid,
    privacyPictures: { features, pixels },
    gan: gan.gan,
    ganNote: gan.note,
    files: {
      'results.json': true,
      'results.csv': existsSync(join(dir, 'results.csv')),
      'study.sqlite': existsSync(join(dir, 'study.sqlite')),
      'study.json': existsSync(join(dir, 'study.json')),
    },
  };
}
