/**
 * What a run's or an evaluation's page shows, read from its folder (schemas in read.ts), with the charts
 * drawn by the report's Vega-Lite specs (report/charts.ts) rendered to SVG on the server. Charts are cached by
 * the file they come from and its modification time, so a page asked again (or a running run's page
 * refreshed between ticks) does not render them again.
 */
import { open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { augmentChart, lossChart, privacyChart, renderSvg } from '../report/charts.js';
import {
  type EvaluationRecord,
  type GanRun,
  type InstanceReport,
  loadStudyReport,
  pngSize,
  type StudyReportData,
  type TickStats,
} from '../report/load.js';
import type { Html } from '../report/markup.js';
import { isMedsynthError } from '../runtime/errors.js';
import { isWithin, type ServeContext } from './context.js';
import {
  type EvaluationEntry,
  type FolderSnapshot,
  relOf,
  type RunEntry,
  type StudyEntry,
} from './discover.js';
import {
  type EvaluationJson,
  EvaluationFileSchema,
  listCheckpoints,
  listSamples,
  mtimeOf,
  readChecked,
  readTicks,
  STATS_FILES,
  type RunJson,
  RunJsonSchema,
  type RunOptions,
  RunOptionsSchema,
  type RunResult,
  RunResultSchema,
  type TickLine,
  toTickStats,
} from './read.js';

/** A PNG under the served folder: its rel path and size (null when it is not a readable PNG). */
export interface Picture {
  readonly rel: string;
  readonly size: { readonly width: number; readonly height: number } | null;
}

/** A tick's sample grid. */
export interface TimelineGrid {
  readonly step: number;
  /** Whether `step` counts steps or a federated run's rounds. */
  readonly unit: 'step' | 'round';
  /** kimg at that step or round (from the run's statistics), when known. */
  readonly kimg: number | null;
  readonly rel: string;
}

export interface RunDetail {
  readonly entry: RunEntry;
  /** The run's folder on this machine (for commands to copy). */
  readonly dir: string;
  readonly options: RunOptions | null;
  readonly run: RunJson | null;
  readonly result: RunResult | null;
  readonly ticks: readonly TickLine[];
  readonly timeline: readonly TimelineGrid[];
  readonly latest: Picture | null;
  readonly reals: Picture | null;
  readonly checkpoints: readonly string[];
  /** Which of the run's own files exist (options.json, run.json, stats.jsonl or rounds.jsonl, result.json…). */
  readonly files: readonly string[];
  readonly charts: { readonly loss: string | null; readonly augment: string | null };
  /** Evaluations of this run's images found in the served folder. */
  readonly evaluations: readonly EvaluationEntry[];
  readonly problems: readonly string[];
}

export interface EvaluationDetail {
  readonly entry: EvaluationEntry;
  readonly evaluation: EvaluationJson | null;
  readonly problem: string | null;
  readonly realGrid: Picture | null;
  readonly fakeGrid: Picture | null;
  readonly closest: { readonly features: Picture | null; readonly pixels: Picture | null };
  /** One histogram per privacy record (nearest-training-image distances). */
  readonly privacyCharts: readonly { readonly space: string; readonly svg: string }[];
  readonly hasEmbedding: boolean;
}

/** Width and height of a PNG from its first 24 bytes; null when it is missing or not a PNG. */
export async function pngFileSize(file: string): Promise<{ width: number; height: number } | null> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(24);
    const { bytesRead } = await handle.read(buf, 0, 24, 0);
    return pngSize(buf.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

async function picture(abs: string, rel: string, name: string): Promise<Picture | null> {
  const size = await pngFileSize(join(abs, name));
  return size ? { rel: posix.join(rel, name), size } : null;
}

/** The most points a curve is drawn with (evenly thinned, the last tick kept). */
const MAX_CURVE_POINTS = 1500;

export function thin<T>(items: readonly T[], max = MAX_CURVE_POINTS): T[] {
  if (items.length <= max) return [...items];
  const out: T[] = [];
  const stride = (items.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(items[Math.round(i * stride)]!);
  return out;
}

/** Renders Vega-Lite charts to SVG once per (key, version). */
export class ChartCache {
  readonly #cache = new Map<string, { version: string; svg: Promise<string | null> }>();
  readonly #max: number;

  constructor(max = 200) {
    this.#max = max;
  }

  get(
    key: string,
    version: string,
    make: () => Parameters<typeof renderSvg>[0] | null,
    idPrefix: string,
  ): Promise<string | null> {
    const hit = this.#cache.get(key);
    if (hit && hit.version === version) return hit.svg;
    const spec = make();
    const svg = spec ? renderSvg(spec, idPrefix) : Promise.resolve(null);
    this.#cache.delete(key);
    this.#cache.set(key, { version, svg });
    svg.catch(() => this.#cache.delete(key));
    while (this.#cache.size > this.#max) this.#cache.delete(this.#cache.keys().next().value!);
    return svg;
  }
}

/** Evaluations of a run: those whose synthetic images came from it, and a study instance's `evaluation/` beside it. */
export function evaluationsOfRun(snap: FolderSnapshot, run: RunEntry): EvaluationEntry[] {
  const parent = posix.dirname(run.rel);
  return snap.evaluations.filter(
    (e) =>
      e.fakeRun === run.rel ||
      (run.study !== null && e.study === run.study && posix.dirname(e.rel) === parent),
  );
}

export async function readRunDetail(
  abs: string,
  entry: RunEntry,
  snap: FolderSnapshot,
  charts: ChartCache,
): Promise<RunDetail> {
  const [options, run, result, ticks, samples, checkpoints, latest, reals, statsTime] = await Promise.all([
    readChecked(join(abs, 'options.json'), RunOptionsSchema, 'options.json'),
    readChecked(join(abs, 'run.json'), RunJsonSchema, 'run.json'),
    readChecked(join(abs, 'result.json'), RunResultSchema, 'result.json'),
    readTicks(abs),
    listSamples(abs),
    listCheckpoints(abs),
    picture(abs, entry.rel, 'samples/latest.png'),
    picture(abs, entry.rel, 'reals.png'),
    Promise.all(STATS_FILES.map((n) => mtimeOf(join(abs, n)))).then((t) => t.find((x) => x !== null) ?? null),
  ]);
  const RUN_FILES = [
    'options.json',
    'run.json',
    'stats.jsonl',
    'rounds.jsonl',
    'federation.json',
    'result.json',
  ];
  const present = await Promise.all(RUN_FILES.map((n) => mtimeOf(join(abs, n))));
  const kimgAt = new Map(ticks.filter((t) => t.step !== undefined).map((t) => [t.step!, t.kimg]));
  const stats: TickStats[] = thin(ticks.map(toTickStats));
  const version = `${statsTime ?? 'none'}:${ticks.length}`;
  const prefix = `run${Math.abs(hashCode(entry.rel)).toString(36)}`;
  const [loss, augment] = await Promise.all([
    charts.get(`loss:${abs}`, version, () => lossChart(stats), `${prefix}l`),
    charts.get(`augment:${abs}`, version, () => augmentChart(stats), `${prefix}a`),
  ]);
  const problems = [options, run, result]
    .filter((c) => !c.ok && !(c.missing && c !== options))
    .map((c) => (c.ok ? '' : c.problem));
  return {
    entry,
    dir: abs,
    options: options.ok ? options.value : null,
    run: run.ok ? run.value : null,
    result: result.ok ? result.value : null,
    ticks,
    timeline: samples.map((s) => ({
      step: s.step,
      unit: s.unit,
      kimg: kimgAt.get(s.step) ?? null,
      rel: posix.join(entry.rel, 'samples', s.file),
    })),
    latest,
    reals,
    checkpoints,
    files: RUN_FILES.filter((_, i) => present[i] !== null),
    charts: { loss, augment },
    evaluations: evaluationsOfRun(snap, entry),
    problems,
  };
}

/** A short stable number of a string (chart id prefixes). */
function hashCode(s: string): number {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (Math.imul(x, 31) + s.charCodeAt(i)) | 0;
  return x;
}

export async function readEvaluationDetail(
  abs: string,
  entry: EvaluationEntry,
  charts: ChartCache,
): Promise<EvaluationDetail> {
  const [checked, realGrid, fakeGrid, features, pixels, evalTime, embedding] = await Promise.all([
    readChecked(join(abs, 'evaluation.json'), EvaluationFileSchema, 'evaluation.json'),
    picture(abs, entry.rel, 'real-grid.png'),
    picture(abs, entry.rel, 'fake-grid.png'),
    picture(abs, entry.rel, 'privacy-closest-features.png'),
    picture(abs, entry.rel, 'privacy-closest-pixels.png'),
    mtimeOf(join(abs, 'evaluation.json')),
    mtimeOf(join(abs, 'embedding.json')),
  ]);
  const ev = checked.ok ? checked.value : null;
  const privacy: { space: string; svg: string }[] = [];
  const records = (ev?.records ?? []).filter((r) => r.metric === 'privacy');
  const prefix = `ev${Math.abs(hashCode(entry.rel)).toString(36)}`;
  for (const [i, r] of records.entries()) {
    const svg = await charts.get(
      `privacy:${abs}:${i}`,
      String(evalTime),
      () => privacyChart(r as unknown as EvaluationRecord),
      `${prefix}p${i}`,
    );
    if (svg) privacy.push({ space: r.extractor === null ? 'pixels' : 'features', svg });
  }
  return {
    entry,
    evaluation: ev,
    problem: checked.ok ? null : checked.problem,
    realGrid,
    fakeGrid,
    closest: { features, pixels },
    privacyCharts: privacy,
    hasEmbedding: embedding !== null,
  };
}

/** A study's page content: the report's sections (report/html.ts), or why there are none yet. */
export interface StudyDetail {
  readonly entry: StudyEntry;
  /** The study's folder on this machine. */
  readonly dir: string;
  /** The report's body; null while the study has no results.json. */
  readonly report: Html | null;
  /** Why the report could not be made (an old or foreign results.json). */
  readonly problem: string | null;
  readonly runs: readonly RunEntry[];
  readonly evaluations: readonly EvaluationEntry[];
}

/** The report of a study, with every training run outside the served folder left out (it is not served). */
export async function readStudyReport(ctx: ServeContext, abs: string): Promise<StudyReportData> {
  const data = await loadStudyReport(abs);
  const instances: InstanceReport[] = [];
  for (const inst of data.instances) {
    const inside: GanRun[] = [];
    const outside: string[] = [];
    for (const run of inst.runs) {
      const rel = relOf(ctx.root, run.dir);
      if (isWithin(ctx.root, run.dir) && (await ctx.inside(rel)) !== null) inside.push(run);
      else outside.push(run.name);
    }
    const note = outside.length
      ? `${outside.length === 1 ? 'Its run' : 'Its runs'} ${outside.join(', ')} ${outside.length === 1 ? 'lies' : 'lie'} outside the served folder and ${outside.length === 1 ? 'is' : 'are'} not shown.`
      : null;
    instances.push({
      ...inst,
      runs: inside,
      runsNote: [inst.runsNote, note].filter((x) => x !== null).join(' ') || null,
    });
  }
  return { ...data, instances };
}

/** Caches rendered study reports by folder and the modification times of what they show. */
export class StudyCache {
  readonly #cache = new Map<string, { version: string; body: Promise<Html> }>();

  get(abs: string, version: string, make: () => Promise<Html>): Promise<Html> {
    const hit = this.#cache.get(abs);
    if (hit && hit.version === version) return hit.body;
    const body = make();
    this.#cache.set(abs, { version, body });
    body.catch(() => this.#cache.delete(abs));
    if (this.#cache.size > 50) this.#cache.delete(this.#cache.keys().next().value!);
    return body;
  }
}

export async function readStudyDetail(
  ctx: ServeContext,
  abs: string,
  entry: StudyEntry,
  snap: FolderSnapshot,
  studies: StudyCache,
  version: string | null,
): Promise<StudyDetail> {
  const runs = snap.runs.filter((r) => r.study === entry.rel);
  const evaluations = snap.evaluations.filter((e) => e.study === entry.rel);
  if (!entry.finished) return { entry, dir: abs, report: null, problem: null, runs, evaluations };
  const stamp = [entry.updated, ...runs.map((r) => r.updated), ...evaluations.map((e) => e.updated)].join(
    ',',
  );
  try {
    const report = await studies.get(abs, stamp, async () => {
      // Loaded on first use: the report's renderers pull in the study and metric modules (slow to load).
      const [{ reportBody }, { renderReportCharts }] = await Promise.all([
        import('../report/html.js'),
        import('../report/index.js'),
      ]);
      const data = await readStudyReport(ctx, abs);
      const charts = await renderReportCharts(data);
      return reportBody(data, charts, { generatedAt: new Date(), version });
    });
    return { entry, dir: abs, report, problem: null, runs, evaluations };
  } catch (e) {
    if (!isMedsynthError(e)) throw e;
    return { entry, dir: abs, report: null, problem: e.message, runs, evaluations };
  }
}
