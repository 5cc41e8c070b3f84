/**
 * What `medsynth serve` reads from the folders it browses, each file checked with a zod schema (the fields the
 * pages use; other fields pass through untouched) so that a foreign, truncated or hand-edited file becomes a
 * note on the page, never a crash or a wrong number:
 * - a training run (training/loop.ts): `options.json`, `run.json`, `result.json`, `stats.jsonl` (one line per
 *   tick; a line cut off mid-write is skipped), `samples/step-NNNNNNN.png` (the grid of each tick),
 *   `samples/latest.png`, `reals.png`, `checkpoints/step-NNNNNNN/`; a federated run (federated/coordinator.ts)
 *   logs `rounds.jsonl` instead of `stats.jsonl` (read as one tick per round, losses averaged over the sites)
 *   and `samples/round-NNNNN.png`;
 * - an evaluation (metrics/write-evaluation.ts): `evaluation.json` (format "medsynth-evaluation"), its grids
 *   and closest-pair pictures;
 * - a study (study/summary.ts): the head of `results.json` (format "medsynth-study-results"), or `study.json`
 *   alone while it runs.
 * Every path here is absolute and already inside the served folder (the caller found it through
 * `ServeContext.inside` or by walking from the root without following links out of it).
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { TickStats } from '../report/load.js';
import { jsonLines } from '../runtime/fs.js';

// ---- schemas -------------------------------------------------------------------------------------------

const finite = z.number().refine(Number.isFinite, 'a finite number');
const optNum = finite.nullable().optional();

/** options.json of a run: the resolved training options (fields the pages show). */
export const RunOptionsSchema = z.looseObject({
  model: z.string(),
  data: z.looseObject({ source: z.string() }),
  preset: z.string().nullable().optional(),
  size: finite.optional(),
  kimg: optNum,
  minutes: optNum,
  batchSize: finite.optional(),
  seed: finite.optional(),
  augment: z.string().optional(),
  loss: z.string().optional(),
  gridPerClass: finite.optional(),
  tickSeconds: finite.optional(),
  name: z.string().nullable().optional(),
});
export type RunOptions = z.infer<typeof RunOptionsSchema>;

/** run.json: what the run trained on and where. */
export const RunJsonSchema = z.looseObject({
  started: z.string().optional(),
  data: z
    .looseObject({
      source: z.string().optional(),
      classNames: z.array(z.string()).optional(),
      trainCounts: z.array(finite).optional(),
      trainImages: finite.optional(),
      imageSize: z.array(finite).optional(),
    })
    .optional(),
  backend: z.unknown().optional(),
  node: z.string().optional(),
});
export type RunJson = z.infer<typeof RunJsonSchema>;

/** result.json: written when a training session ends. */
export const RunResultSchema = z.looseObject({
  kimg: finite,
  seconds: finite,
  /** A training run's last step and why it stopped (a federated run has `rounds` instead). */
  step: finite.optional(),
  stoppedBy: z.string().optional(),
  rounds: finite.optional(),
  imagesPerSecond: optNum,
  checkpoint: z.string().optional(),
});
export type RunResult = z.infer<typeof RunResultSchema>;

/** One line of stats.jsonl (family-specific numbers pass through). */
export const TickLineSchema = z.looseObject({
  tick: finite.optional(),
  step: finite.optional(),
  kimg: finite,
  seconds: optNum,
  imagesPerSecond: optNum,
  dLoss: optNum,
  gLoss: optNum,
  penalty: optNum,
  augmentP: optNum,
  adaRt: optNum,
  rssMiB: optNum,
  time: z.string().optional(),
});
export type TickLine = z.infer<typeof TickLineSchema>;

const SetInfoSchema = z.looseObject({
  source: z.string().optional(),
  split: z.string().nullable().optional(),
  kind: z.string().optional(),
  count: finite.optional(),
  classCounts: z.array(finite).nullable().optional(),
  detail: z.string().optional(),
});

export const EvaluationRecordSchema = z.looseObject({
  metric: z.string(),
  comparison: z.string(),
  class: z.string().nullable(),
  nReal: finite,
  nCompared: finite,
  extractor: z.string().nullable(),
  // JSON has no NaN/Infinity: a metric that could not be computed is written as null.
  values: z.record(z.string(), z.number().nullable()),
  details: z.unknown().optional(),
  note: z.string().optional(),
});

/** evaluation.json (metrics/write-evaluation.ts). */
export const EvaluationFileSchema = z.looseObject({
  format: z.literal('medsynth-evaluation'),
  version: finite.optional(),
  createdAt: z.string().optional(),
  real: SetInfoSchema.optional(),
  holdout: SetInfoSchema.nullable().optional(),
  fake: SetInfoSchema.optional(),
  classNames: z.array(z.string()).optional(),
  shape: z.array(finite).optional(),
  extractor: z
    .looseObject({
      kind: z.string().optional(),
      key: z.string().optional(),
      dim: finite.optional(),
      description: z.string().optional(),
    })
    .nullable()
    .optional(),
  settings: z.record(z.string(), z.unknown()).optional(),
  comparisons: z.array(z.string()).optional(),
  records: z.array(EvaluationRecordSchema),
  warnings: z.array(z.string()).optional(),
  seconds: optNum,
});
export type EvaluationJson = z.infer<typeof EvaluationFileSchema>;

/** The head of a study's results.json: what the index shows (the study page reads it whole, report/load.ts). */
export const StudyHeadSchema = z.looseObject({
  format: z.literal('medsynth-study-results'),
  version: finite,
  createdAt: z.string().optional(),
  config: z.looseObject({ data: z.looseObject({ source: z.string() }).optional() }),
  classNames: z.array(z.string()),
  conditions: z.array(z.string()),
  classifiers: z.array(z.string()),
  generators: z.array(z.string()),
  instances: z.array(z.unknown()),
  jobs: z.array(z.unknown()),
  verdicts: z.array(z.looseObject({ question: z.string().optional(), text: z.string() })),
  testCount: finite.optional(),
});
export type StudyHead = z.infer<typeof StudyHeadSchema>;

/** study.json of a study that has not finished (no results.json yet). */
export const StudyConfigSchema = z.looseObject({
  data: z.looseObject({ source: z.string() }).optional(),
  conditions: z.array(z.unknown()).optional(),
  classifiers: z.array(z.unknown()).optional(),
  generators: z.array(z.unknown()).optional(),
});

// ---- reading -------------------------------------------------------------------------------------------

/** A file read and checked: its value, or why it could not be used (`missing` when absent). */
export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly missing: boolean; readonly problem: string };

/** Reads a JSON file and checks it with `schema`. */
export async function readChecked<T>(file: string, schema: z.ZodType<T>, name: string): Promise<Checked<T>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, missing, problem: missing ? `${name} is missing` : `${name} could not be read` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, missing: false, problem: `${name} is not valid JSON` };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return {
      ok: false,
      missing: false,
      problem: `${name} is not what medsynth writes${where}: ${issue?.message ?? 'invalid'}`,
    };
  }
  return { ok: true, value: parsed.data };
}

/** The value of a checked file, or null. */
export const valueOf = <T>(c: Checked<T>): T | null => (c.ok ? c.value : null);

/** Parses stats.jsonl text: one checked tick per line, skipping blank, cut-off or foreign lines. */
export function parseTickLines(text: string): TickLine[] {
  const out: TickLine[] = [];
  for (const v of jsonLines(text)) {
    const parsed = TickLineSchema.safeParse(v);
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

/** One line of a federated run's rounds.jsonl (federated/coordinator.ts), the fields the pages use. */
export const RoundLineSchema = z.looseObject({
  round: finite,
  kimg: finite,
  examples: finite.optional(),
  seconds: z.looseObject({ round: finite }).optional(),
  siteMetrics: z
    .record(z.string(), z.looseObject({ dLoss: optNum, gLoss: optNum, imagesPerSecond: optNum }))
    .optional(),
  time: z.string().optional(),
});

const mean = (xs: readonly (number | null | undefined)[]): number | null => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

/**
 * A federated run's rounds as ticks: `tick` and `step` are the round, losses the mean over the sites that
 * reported, `seconds` the time so far (from `offset`: the rounds before the text), images per second the
 * round's examples over its time.
 */
export function parseRoundLines(text: string, offset = 0): TickLine[] {
  const out: TickLine[] = [];
  let seconds = offset;
  for (const v of jsonLines(text)) {
    const parsed = RoundLineSchema.safeParse(v);
    if (!parsed.success) continue;
    const r = parsed.data;
    const sites = Object.values(r.siteMetrics ?? {});
    const roundSeconds = r.seconds?.round ?? null;
    if (roundSeconds !== null) seconds += roundSeconds;
    out.push({
      tick: r.round,
      step: r.round,
      kimg: r.kimg,
      seconds: roundSeconds !== null ? seconds : null,
      imagesPerSecond: roundSeconds && r.examples !== undefined ? r.examples / roundSeconds : null,
      dLoss: mean(sites.map((x) => x.dLoss)),
      gLoss: mean(sites.map((x) => x.gLoss)),
      penalty: null,
      augmentP: null,
      ...(r.time !== undefined ? { time: r.time } : {}),
    });
  }
  return out;
}

/** The statistics file of a run: `stats.jsonl`, or a federated run's `rounds.jsonl`. */
export const STATS_FILES = ['stats.jsonl', 'rounds.jsonl'] as const;

/** Whether a run folder is a federated run (it logs rounds, not ticks). */
export async function isFederated(runDir: string): Promise<boolean> {
  return (await mtimeOf(join(runDir, 'rounds.jsonl'))) !== null;
}

/** Every tick of a run's stats.jsonl, or every round of a federated run's rounds.jsonl ([] when none). */
export async function readTicks(runDir: string): Promise<TickLine[]> {
  try {
    return parseTickLines(await readFile(join(runDir, 'stats.jsonl'), 'utf8'));
  } catch {
    // not a tick log: a federated run's rounds, or nothing yet
  }
  try {
    return parseRoundLines(await readFile(join(runDir, 'rounds.jsonl'), 'utf8'));
  } catch {
    return [];
  }
}

/**
 * The last complete tick of stats.jsonl, reading only the file's end (a long run's file is large; the index
 * needs only where the run is now). Null when there is no usable line.
 */
export async function readLastTick(runDir: string, tailBytes = 16_384): Promise<TickLine | null> {
  let handle;
  let parse = parseTickLines;
  try {
    handle = await open(join(runDir, 'stats.jsonl'), 'r');
  } catch {
    try {
      handle = await open(join(runDir, 'rounds.jsonl'), 'r');
      // From the file's end the time so far is unknown: the round's own time only.
      parse = (text: string) => parseRoundLines(text).map((t) => ({ ...t, seconds: null }));
    } catch {
      return null;
    }
  }
  try {
    const { size } = await handle.stat();
    let span = Math.min(size, tailBytes);
    for (;;) {
      const buf = Buffer.alloc(span);
      await handle.read(buf, 0, span, size - span);
      const text = buf.toString('utf8');
      // The first line of a partial read may be cut: drop it unless the read began at the file's start.
      const lines = text.split('\n');
      if (span < size) lines.shift();
      const ticks = parse(lines.join('\n'));
      const last = ticks[ticks.length - 1];
      if (last || span >= size) return last ?? null;
      span = Math.min(size, span * 4);
    }
  } finally {
    await handle.close();
  }
}

/** The same tick in the report's shape (charts.ts draws these). */
export function toTickStats(t: TickLine): TickStats {
  return {
    kimg: t.kimg,
    dLoss: t.dLoss ?? null,
    gLoss: t.gLoss ?? null,
    penalty: t.penalty ?? null,
    augmentP: t.augmentP ?? null,
    imagesPerSecond: t.imagesPerSecond ?? null,
    seconds: t.seconds ?? null,
  };
}

/** A sample grid of a tick (`samples/step-0000313.png`) or of a federated round (`samples/round-00008.png`). */
export interface SampleGrid {
  /** The step, or the round. */
  readonly step: number;
  readonly unit: 'step' | 'round';
  /** The file name inside `samples/`. */
  readonly file: string;
}

const SAMPLE = /^(step|round)-(\d+)\.png$/;
const CHECKPOINT = /^step-(\d+)$/;

/** The tick grids of a run, by step. */
export async function listSamples(runDir: string): Promise<SampleGrid[]> {
  let names: string[];
  try {
    names = await readdir(join(runDir, 'samples'));
  } catch {
    return [];
  }
  return names
    .map((file) => ({ file, m: SAMPLE.exec(file) }))
    .filter((x): x is { file: string; m: RegExpExecArray } => x.m !== null)
    .map(({ file, m }) => ({ step: Number(m[2]), unit: m[1] as 'step' | 'round', file }))
    .sort((a, b) => a.step - b.step);
}

/** The checkpoint folders of a run (`step-0001565`), by step. */
export async function listCheckpoints(runDir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(join(runDir, 'checkpoints'), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && CHECKPOINT.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** Modification time in ms, or null when the file does not exist. */
export async function mtimeOf(file: string): Promise<number | null> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return null;
  }
}

/** Whether a training run is finished, still being written, or was stopped without finishing. */
export type RunStatus = 'finished' | 'running' | 'stopped';

/**
 * A run's status: `finished` once result.json exists (a resumed run removes it), `running` while stats.jsonl
 * or the latest grid changed within three tick intervals (at least 5 minutes), else `stopped` (killed or
 * interrupted; `medsynth train --resume` continues it).
 */
export function runStatus(
  hasResult: boolean,
  lastWrite: number | null,
  tickSeconds: number | undefined,
  now = Date.now(),
): RunStatus {
  if (hasResult) return 'finished';
  const window = Math.max(300, 3 * (tickSeconds ?? 60)) * 1000;
  return lastWrite !== null && now - lastWrite < window ? 'running' : 'stopped';
}
