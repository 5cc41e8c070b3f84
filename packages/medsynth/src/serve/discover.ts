/**
 * The index of a served folder: every training run, evaluation and study below it, with the numbers the index
 * page shows. Found by walking the folder breadth-first, to a bounded depth and number of folders, in name
 * order, never leaving it (a symbolic link is followed only when its target lies inside the folder, and each
 * real folder is visited once, so link cycles end). What a folder is:
 * - a **study** holds `results.json` (or `study.json` while it runs); the walk goes on inside it, and the runs
 *   and evaluations found there carry the study's path;
 * - a **run** holds `options.json` (or `stats.jsonl` with `result.json`, `run.json`, `checkpoints/` or
 *   `samples/`); the walk does not go inside;
 * - an **evaluation** holds `evaluation.json`; the walk does not go inside.
 *
 * Cached with modification times: a folder's listing is read again only when its mtime changed, an entry's
 * files only when one of their mtimes changed, and a snapshot younger than `freshMs` is reused as it is, so a
 * page asks the disk for a few hundred `stat`s at most (a folder of 20 runs answers in milliseconds after the
 * first page).
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, posix, relative, resolve, sep } from 'node:path';
import pLimit from 'p-limit';
import { type ServeContext, isWithin } from './context.js';
import {
  type EvaluationJson,
  EvaluationFileSchema,
  listCheckpoints,
  listSamples,
  mtimeOf,
  readChecked,
  readLastTick,
  RunJsonSchema,
  RunOptionsSchema,
  RunResultSchema,
  type RunStatus,
  runStatus,
  StudyConfigSchema,
  StudyHeadSchema,
} from './read.js';

export interface RunEntry {
  readonly kind: 'run';
  /** Path relative to the served folder, `/`-separated. */
  readonly rel: string;
  readonly name: string;
  /** The enclosing study's rel, or null. */
  readonly study: string | null;
  readonly model: string | null;
  readonly dataset: string | null;
  readonly size: number | null;
  readonly classNames: readonly string[];
  readonly status: RunStatus;
  readonly stoppedBy: string | null;
  /** A federated run (rounds.jsonl): its ticks are rounds. */
  readonly federated: boolean;
  /** Thousands of real images shown so far, and the budget (null when the run is bounded by minutes). */
  readonly kimg: number | null;
  readonly kimgTarget: number | null;
  readonly ticks: number | null;
  readonly seconds: number | null;
  readonly dLoss: number | null;
  readonly gLoss: number | null;
  readonly augmentP: number | null;
  readonly imagesPerSecond: number | null;
  readonly checkpoints: number;
  readonly samples: number;
  /** `samples/latest.png` (rel), else null. */
  readonly latestSample: string | null;
  /** Latest modification of its files (ms since the epoch). */
  readonly updated: number;
  /** What could not be read (a missing options.json, a foreign result.json…). */
  readonly problems: readonly string[];
}

export interface EvaluationEntry {
  readonly kind: 'evaluation';
  readonly rel: string;
  readonly name: string;
  readonly study: string | null;
  readonly createdAt: string | null;
  readonly fakeKind: string | null;
  readonly fakeSource: string | null;
  /** The run that made the synthetic images, when it lies in the served folder. */
  readonly fakeRun: string | null;
  readonly realSource: string | null;
  readonly realSplit: string | null;
  readonly fakeCount: number | null;
  readonly realCount: number | null;
  readonly classNames: readonly string[];
  readonly extractor: string | null;
  /** Headline figures of the synthetic set against the real one, all classes (null where not computed). */
  readonly fid: number | null;
  readonly fidFloor: number | null;
  readonly kid: number | null;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly coverage: number | null;
  /** Privacy: median nearest-training distance, synthetic over held-out (well below 1 suggests copies). */
  readonly privacyRatio: number | null;
  readonly hasEmbedding: boolean;
  readonly updated: number;
  readonly problems: readonly string[];
}

export interface StudyEntry {
  readonly kind: 'study';
  readonly rel: string;
  readonly name: string;
  /** results.json exists (the study finished). */
  readonly finished: boolean;
  readonly createdAt: string | null;
  readonly dataset: string | null;
  readonly classNames: readonly string[];
  readonly conditions: number;
  readonly classifiers: readonly string[];
  readonly generators: readonly string[];
  readonly instances: number;
  readonly jobs: number;
  readonly verdicts: readonly string[];
  readonly results: { readonly version: number } | null;
  readonly updated: number;
  readonly problems: readonly string[];
}

export type IndexEntry = RunEntry | EvaluationEntry | StudyEntry;

export interface FolderSnapshot {
  readonly root: string;
  readonly runs: readonly RunEntry[];
  readonly evaluations: readonly EvaluationEntry[];
  readonly studies: readonly StudyEntry[];
  /** The walk stopped at `maxDirs` folders or `maxDepth` levels somewhere: some entries may be missing. */
  readonly truncated: boolean;
  readonly folders: number;
  /** When the snapshot was taken (ms since the epoch). */
  readonly scannedAt: number;
}

export interface FolderIndexOptions {
  /** Levels below the root the walk goes to (default 10: a study's runs sit 5 below it). */
  readonly maxDepth?: number;
  /** Folders the walk visits at most (default 20 000). */
  readonly maxDirs?: number;
  /** A snapshot younger than this is reused without touching the disk (default 1 000 ms). */
  readonly freshMs?: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

/** Folders never walked into. */
const SKIP = new Set(['node_modules', 'checkpoints', 'samples', '__pycache__']);

interface DirListing {
  readonly mtimeMs: number;
  readonly entries: readonly { name: string; dir: boolean; file: boolean; link: boolean }[];
}

interface Found {
  readonly kind: IndexEntry['kind'];
  readonly abs: string;
  readonly rel: string;
  readonly study: string | null;
}

/** `a/b/c` from an absolute path below root. */
export function relOf(root: string, abs: string): string {
  return relative(root, abs).split(sep).join('/');
}

/** A dataset's short name (`/x/pneumoniamnist_28.npz` → `pneumoniamnist_28.npz`, `medmnist:…` as it is). */
export function datasetName(source: string): string {
  return /[\\/]/.test(source) ? posix.basename(source.replace(/\\/g, '/').replace(/\/+$/, '')) : source;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function headline(ev: EvaluationJson, metric: string, comparison: string, value: string): number | null {
  const r = ev.records.find((x) => x.metric === metric && x.comparison === comparison && x.class === null);
  return num(r?.values[value]);
}

/** The features-space privacy record's median ratio (else the pixel one's). */
function privacyRatio(ev: EvaluationJson): number | null {
  const records = ev.records.filter((r) => r.metric === 'privacy' && r.class === null);
  const pick = records.find((r) => r.extractor !== null) ?? records[0];
  return num(pick?.values['medianRatio']);
}

/**
 * An evaluation's name: its folder's, except a study instance's `generators/<key>/evaluation`, named by its
 * key (`cgan/seed-0/all`).
 */
export function evaluationName(rel: string): string {
  const parts = rel.split('/');
  const last = parts[parts.length - 1] ?? '';
  const at = parts.lastIndexOf('generators');
  if (last === 'evaluation' && at >= 0 && at < parts.length - 2) return parts.slice(at + 1, -1).join('/');
  return last || '.';
}

export class FolderIndex {
  readonly #ctx: ServeContext;
  readonly #maxDepth: number;
  readonly #maxDirs: number;
  readonly #freshMs: number;
  readonly #now: () => number;
  readonly #dirs = new Map<string, DirListing>();
  readonly #entries = new Map<string, { signature: string; entry: IndexEntry }>();
  #snapshot: FolderSnapshot | null = null;
  #pending: Promise<FolderSnapshot> | null = null;

  constructor(ctx: ServeContext, options: FolderIndexOptions = {}) {
    this.#ctx = ctx;
    this.#maxDepth = options.maxDepth ?? 10;
    this.#maxDirs = options.maxDirs ?? 20_000;
    this.#freshMs = options.freshMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  get root(): string {
    return this.#ctx.root;
  }

  /** The current snapshot (rescanned when older than `freshMs`; concurrent callers share one scan). */
  async snapshot(): Promise<FolderSnapshot> {
    const s = this.#snapshot;
    if (s && this.#now() - s.scannedAt < this.#freshMs) return s;
    this.#pending ??= this.#scan().finally(() => {
      this.#pending = null;
    });
    return this.#pending;
  }

  /** The entry of `kind` at `rel`, or null. */
  async find<K extends IndexEntry['kind']>(
    kind: K,
    rel: string,
  ): Promise<Extract<IndexEntry, { kind: K }> | null> {
    const snap = await this.snapshot();
    const list: readonly IndexEntry[] =
      kind === 'run' ? snap.runs : kind === 'evaluation' ? snap.evaluations : snap.studies;
    return (list.find((e) => e.rel === rel) as Extract<IndexEntry, { kind: K }> | undefined) ?? null;
  }

  async #listing(dir: string): Promise<DirListing | null> {
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(dir)).mtimeMs;
    } catch {
      this.#dirs.delete(dir);
      return null;
    }
    const cached = this.#dirs.get(dir);
    if (cached && cached.mtimeMs === mtimeMs) return cached;
    let dirents: Dirent[];
    try {
      dirents = await readdir(dir, { withFileTypes: true });
    } catch {
      return null;
    }
    const listing: DirListing = {
      mtimeMs,
      entries: dirents
        .map((d) => ({ name: d.name, dir: d.isDirectory(), file: d.isFile(), link: d.isSymbolicLink() }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    };
    this.#dirs.set(dir, listing);
    return listing;
  }

  /** A linked entry's real path when it is a folder inside the root; else null. */
  async #linkedDir(abs: string): Promise<string | null> {
    const real = await this.#ctx.inside(relOf(this.#ctx.root, abs));
    if (!real) return null;
    try {
      return (await stat(real)).isDirectory() ? real : null;
    } catch {
      return null;
    }
  }

  async #walk(): Promise<{ found: Found[]; truncated: boolean; folders: number }> {
    const root = this.#ctx.root;
    const found: Found[] = [];
    const seen = new Set<string>([root]);
    let truncated = false;
    let folders = 0;
    // One level at a time, in name order: the same folder gives the same entries and the same cut-off.
    let level: { abs: string; study: string | null }[] = [{ abs: root, study: null }];
    for (let depth = 0; level.length > 0; depth++) {
      const listings = await Promise.all(level.map((d) => this.#listing(d.abs)));
      const next: { abs: string; study: string | null }[] = [];
      for (let i = 0; i < level.length; i++) {
        const { abs, study } = level[i]!;
        const listing = listings[i];
        if (!listing) continue;
        folders++;
        const names = new Map(listing.entries.map((e) => [e.name, e]));
        const file = (n: string) => names.get(n)?.file === true;
        const dir = (n: string) => names.get(n)?.dir === true;
        const rel = relOf(root, abs);
        if (file('evaluation.json')) {
          found.push({ kind: 'evaluation', abs, rel, study });
          continue;
        }
        const isRun =
          file('options.json') ||
          (file('stats.jsonl') &&
            (file('result.json') || file('run.json') || dir('checkpoints') || dir('samples')));
        if (isRun) {
          found.push({ kind: 'run', abs, rel, study });
          continue;
        }
        let inner = study;
        if (file('results.json') || file('study.json')) {
          found.push({ kind: 'study', abs, rel, study });
          inner = rel;
        }
        if (depth >= this.#maxDepth) {
          if (listing.entries.some((e) => e.dir || e.link)) truncated = true;
          continue;
        }
        for (const e of listing.entries) {
          if (e.name.startsWith('.') || SKIP.has(e.name)) continue;
          const child = join(abs, e.name);
          if (e.link) {
            const real = await this.#linkedDir(child);
            if (!real) continue;
            // A link is walked under its own name, once per real folder.
            if (seen.has(real)) continue;
            seen.add(real);
          } else if (e.dir) {
            if (seen.has(child)) continue;
            seen.add(child);
          } else continue;
          if (seen.size > this.#maxDirs) {
            truncated = true;
            break;
          }
          next.push({ abs: child, study: inner });
        }
      }
      level = next;
    }
    return { found, truncated, folders };
  }

  async #signature(f: Found): Promise<string> {
    const files =
      f.kind === 'run'
        ? ['options.json', 'run.json', 'result.json', 'stats.jsonl', 'rounds.jsonl', 'samples', 'checkpoints']
        : f.kind === 'evaluation'
          ? ['evaluation.json', 'embedding.json']
          : ['results.json', 'study.json'];
    const times = await Promise.all(files.map((n) => mtimeOf(join(f.abs, n))));
    return `${f.kind}:${times.join(',')}`;
  }

  async #scan(): Promise<FolderSnapshot> {
    const scannedAt = this.#now();
    const { found, truncated, folders } = await this.#walk();
    const limit = pLimit(16);
    const entries = await Promise.all(
      found.map((f) =>
        limit(async () => {
          const key = `${f.kind}:${f.abs}:${f.study ?? ''}`;
          const signature = await this.#signature(f);
          const cached = this.#entries.get(key);
          // A running run's status depends on the clock too: re-read it (cheap) on every scan.
          if (
            cached &&
            cached.signature === signature &&
            !(cached.entry.kind === 'run' && cached.entry.status === 'running')
          )
            return cached.entry;
          const entry = await this.#read(f);
          this.#entries.set(key, { signature, entry });
          return entry;
        }),
      ),
    );
    const keep = new Set(found.map((f) => `${f.kind}:${f.abs}:${f.study ?? ''}`));
    for (const k of this.#entries.keys()) if (!keep.has(k)) this.#entries.delete(k);
    const snap: FolderSnapshot = {
      root: this.#ctx.root,
      runs: entries.filter((e): e is RunEntry => e.kind === 'run'),
      evaluations: entries.filter((e): e is EvaluationEntry => e.kind === 'evaluation'),
      studies: entries.filter((e): e is StudyEntry => e.kind === 'study'),
      truncated,
      folders,
      scannedAt,
    };
    this.#snapshot = snap;
    return snap;
  }

  #read(f: Found): Promise<IndexEntry> {
    return f.kind === 'run'
      ? this.#readRun(f)
      : f.kind === 'evaluation'
        ? this.#readEvaluation(f)
        : this.#readStudy(f);
  }

  async #readRun(f: Found): Promise<RunEntry> {
    const [options, run, result, last, samples, checkpoints, times] = await Promise.all([
      readChecked(join(f.abs, 'options.json'), RunOptionsSchema, 'options.json'),
      readChecked(join(f.abs, 'run.json'), RunJsonSchema, 'run.json'),
      readChecked(join(f.abs, 'result.json'), RunResultSchema, 'result.json'),
      readLastTick(f.abs),
      listSamples(f.abs),
      listCheckpoints(f.abs),
      Promise.all(
        ['options.json', 'stats.jsonl', 'result.json', join('samples', 'latest.png'), 'rounds.jsonl'].map(
          (n) => mtimeOf(join(f.abs, n)),
        ),
      ),
    ]);
    const o = options.ok ? options.value : null;
    const r = result.ok ? result.value : null;
    const problems = [options, run, result]
      .filter((c) => !c.ok && !(c.missing && c !== options))
      .map((c) => (c.ok ? '' : c.problem));
    const lastWrite = Math.max(
      ...[times[1], times[3], times[4]].filter((t): t is number => t !== null),
      -Infinity,
    );
    const hasLatest = times[3] !== null;
    return {
      kind: 'run',
      rel: f.rel,
      name: basename(f.abs),
      study: f.study,
      model: o?.model ?? null,
      dataset: o ? datasetName(o.data.source) : null,
      size: o?.size ?? null,
      classNames: (run.ok ? run.value.data?.classNames : undefined) ?? [],
      status: runStatus(
        result.ok,
        Number.isFinite(lastWrite) ? lastWrite : null,
        o?.tickSeconds,
        this.#now(),
      ),
      stoppedBy: r?.stoppedBy ?? null,
      federated: times[4] !== null,
      kimg: r?.kimg ?? last?.kimg ?? null,
      kimgTarget: o?.kimg ?? null,
      ticks: last?.tick ?? null,
      seconds: r?.seconds ?? last?.seconds ?? null,
      dLoss: last?.dLoss ?? null,
      gLoss: last?.gLoss ?? null,
      augmentP: last?.augmentP ?? null,
      imagesPerSecond: r?.imagesPerSecond ?? last?.imagesPerSecond ?? null,
      checkpoints: checkpoints.length,
      samples: samples.length,
      latestSample: hasLatest ? posix.join(f.rel, 'samples', 'latest.png') : null,
      updated: Math.max(0, ...times.filter((t): t is number => t !== null)),
      problems,
    };
  }

  /** The run (its rel) that a recorded absolute run path names, when it lies in the served folder. */
  async #runRel(source: string | undefined, kind: string | undefined): Promise<string | null> {
    if (!source || kind !== 'run') return null;
    const abs = resolve(source);
    if (!isWithin(this.#ctx.root, abs)) return null;
    const real = await this.#ctx.inside(relOf(this.#ctx.root, abs));
    return real ? relOf(this.#ctx.root, real) : null;
  }

  async #readEvaluation(f: Found): Promise<EvaluationEntry> {
    const [checked, embedding, updated] = await Promise.all([
      readChecked(join(f.abs, 'evaluation.json'), EvaluationFileSchema, 'evaluation.json'),
      mtimeOf(join(f.abs, 'embedding.json')),
      mtimeOf(join(f.abs, 'evaluation.json')),
    ]);
    const ev = checked.ok ? checked.value : null;
    return {
      kind: 'evaluation',
      rel: f.rel,
      name: evaluationName(f.rel),
      study: f.study,
      createdAt: ev?.createdAt ?? null,
      fakeKind: ev?.fake?.kind ?? null,
      fakeSource: ev?.fake?.source ?? null,
      fakeRun: await this.#runRel(ev?.fake?.source, ev?.fake?.kind),
      realSource: ev?.real?.source ?? null,
      realSplit: ev?.real?.split ?? null,
      fakeCount: ev?.fake?.count ?? null,
      realCount: ev?.real?.count ?? null,
      classNames: ev?.classNames ?? [],
      extractor: ev?.extractor?.kind ?? null,
      fid: ev ? headline(ev, 'fid', 'fake', 'fid') : null,
      fidFloor: ev ? headline(ev, 'fid', 'floor', 'fid') : null,
      kid: ev ? headline(ev, 'kid', 'fake', 'kid') : null,
      precision: ev ? headline(ev, 'prdc', 'fake', 'precision') : null,
      recall: ev ? headline(ev, 'prdc', 'fake', 'recall') : null,
      coverage: ev ? headline(ev, 'prdc', 'fake', 'coverage') : null,
      privacyRatio: ev ? privacyRatio(ev) : null,
      hasEmbedding: embedding !== null,
      updated: updated ?? 0,
      problems: checked.ok ? [] : [checked.problem],
    };
  }

  async #readStudy(f: Found): Promise<StudyEntry> {
    const [results, config, t1, t2] = await Promise.all([
      readChecked(join(f.abs, 'results.json'), StudyHeadSchema, 'results.json'),
      readChecked(join(f.abs, 'study.json'), StudyConfigSchema, 'study.json'),
      mtimeOf(join(f.abs, 'results.json')),
      mtimeOf(join(f.abs, 'study.json')),
    ]);
    const s = results.ok ? results.value : null;
    const c = config.ok ? config.value : null;
    const problems = [results, config].filter((x) => !x.ok && !x.missing).map((x) => (x.ok ? '' : x.problem));
    const source = s?.config.data?.source ?? c?.data?.source ?? null;
    return {
      kind: 'study',
      rel: f.rel,
      name: basename(f.abs),
      finished: s !== null,
      createdAt: s?.createdAt ?? null,
      dataset: source ? datasetName(source) : null,
      classNames: s?.classNames ?? [],
      conditions: s?.conditions.length ?? c?.conditions?.length ?? 0,
      classifiers: s?.classifiers ?? [],
      generators: s?.generators ?? [],
      instances: s?.instances.length ?? 0,
      jobs: s?.jobs.length ?? 0,
      verdicts: s?.verdicts.map((v) => v.text) ?? [],
      results: s ? { version: s.version } : null,
      updated: Math.max(0, t1 ?? 0, t2 ?? 0),
      problems,
    };
  }
}
