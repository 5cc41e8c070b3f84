/**
 * The study's results store: one SQLite database (better-sqlite3) in the study directory, one row per
 * finished job. A row is written in a single transaction only when its job has finished, with the journal
 * in WAL mode and `synchronous = FULL`, so a killed study leaves every finished job's row intact and no
 * partial one; `--resume` runs exactly the jobs without a row.
 *
 * Rows hold everything the report needs without re-running anything: the training set's composition, the
 * test metrics, each test image's predicted probabilities and correctness (for paired tests between
 * conditions), the classifier's training history and summary, and timings.
 */
import Database from 'better-sqlite3';
import { StudyError } from '../runtime/errors.js';

export const STORE_FILE = 'study.sqlite';
const SCHEMA_VERSION = 2;

/** One finished job: (generator, generator seed, condition, classifier, seed). */
export interface JobRow {
  /** `<generator>|<generator seed>|<condition>|<classifier>|<seed>` (`-` for none: see `jobId`). */
  readonly id: string;
  /** The generator whose images the job trained on; null for conditions without synthetic images. */
  readonly generator: string | null;
  /**
   * The generator seed the job depends on: its generator's, or for `limited` without synthetic images the
   * seed that chose the subset; null for conditions that depend on neither (`real`, `oversampled`).
   */
  readonly generatorSeed: number | null;
  readonly condition: string;
  readonly classifier: string;
  readonly seed: number;
  /** Training images: real, synthetic, and per class (real + synthetic). */
  readonly trainReal: number;
  readonly trainSynthetic: number;
  readonly trainClassCounts: readonly number[];
  /** Test-set metrics (plain JSON, see classify/metrics.ts). */
  readonly metrics: Readonly<Record<string, unknown>>;
  /** Per test image: 1 when predicted right. */
  readonly correct: Uint8Array;
  /** Per test image: class probabilities, row-major `N × K`. */
  readonly proba: Float32Array;
  /** The classifier's description and training history (plain JSON). */
  readonly classifierInfo: Readonly<Record<string, unknown>>;
  readonly seconds: number;
  readonly finishedAt: string;
}

export function jobId(
  generator: string | null,
  generatorSeed: number | null,
  condition: string,
  classifier: string,
  seed: number,
): string {
  return `${generator ?? '-'}|${generatorSeed ?? '-'}|${condition}|${classifier}|${seed}`;
}

interface RawRow {
  id: string;
  generator: string | null;
  generator_seed: number | null;
  condition: string;
  classifier: string;
  seed: number;
  train_real: number;
  train_synthetic: number;
  train_class_counts: string;
  metrics: string;
  correct: Buffer;
  proba: Buffer;
  classifier_info: string;
  seconds: number;
  finished_at: string;
}

function floatsOf(b: Buffer): Float32Array {
  // Copy: the Buffer may not be 4-byte aligned.
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export class StudyStore {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  /** Opens (creating when missing) the store at `file`. */
  static open(file: string): StudyStore {
    let db: Database.Database;
    try {
      db = new Database(file);
    } catch (e) {
      throw new StudyError(`cannot open the study database: ${(e as Error).message}`, { file });
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS jobs (
          id TEXT PRIMARY KEY,
          generator TEXT,
          generator_seed INTEGER,
          condition TEXT NOT NULL,
          classifier TEXT NOT NULL,
          seed INTEGER NOT NULL,
          train_real INTEGER NOT NULL,
          train_synthetic INTEGER NOT NULL,
          train_class_counts TEXT NOT NULL,
          metrics TEXT NOT NULL,
          correct BLOB NOT NULL,
          proba BLOB NOT NULL,
          classifier_info TEXT NOT NULL,
          seconds REAL NOT NULL,
          finished_at TEXT NOT NULL
        );`);
      const version = db.prepare('SELECT value FROM meta WHERE key = ?').get('schemaVersion') as
        { value: string } | undefined;
      if (version === undefined) {
        db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(
          'schemaVersion',
          String(SCHEMA_VERSION),
        );
      } else if (Number(version.value) !== SCHEMA_VERSION) {
        throw new StudyError(
          `the study database has schema version ${version.value}; this medsynth reads version ${SCHEMA_VERSION} (a study made by an older medsynth: run it again as a new study)`,
          { file },
        );
      }
    } catch (e) {
      db.close();
      if (e instanceof StudyError) throw e;
      throw new StudyError(`not a usable study database: ${(e as Error).message}`, { file });
    }
    return new StudyStore(db, file);
  }

  getMeta<T>(key: string): T | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
      { value: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  setMeta(key: string, value: unknown): void {
    this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, JSON.stringify(value));
  }

  /** Removes every meta entry whose key starts with `prefix`. */
  clearMeta(prefix: string): void {
    this.db.prepare('DELETE FROM meta WHERE substr(key, 1, ?) = ?').run(prefix.length, prefix);
  }

  /** The meta entries whose key starts with `prefix`, by key (values parsed, not validated). */
  metaWithPrefix(prefix: string): Map<string, unknown> {
    const rows = this.db
      .prepare('SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? ORDER BY key')
      .all(prefix.length, prefix) as { key: string; value: string }[];
    return new Map(rows.map((r) => [r.key, JSON.parse(r.value) as unknown]));
  }

  /** Ids of the jobs that have a row (finished). */
  finishedIds(): Set<string> {
    const rows = this.db.prepare('SELECT id FROM jobs').all() as { id: string }[];
    return new Set(rows.map((r) => r.id));
  }

  /** Writes a finished job's row (one transaction; replaces a row with the same id). */
  putJob(row: JobRow): void {
    const insert = this.db.prepare(`INSERT OR REPLACE INTO jobs
      (id, generator, generator_seed, condition, classifier, seed, train_real, train_synthetic, train_class_counts, metrics, correct, proba,
       classifier_info, seconds, finished_at)
      VALUES (@id, @generator, @generator_seed, @condition, @classifier, @seed, @train_real, @train_synthetic, @train_class_counts, @metrics,
       @correct, @proba, @classifier_info, @seconds, @finished_at)`);
    this.db.transaction(() =>
      insert.run({
        id: row.id,
        generator: row.generator,
        generator_seed: row.generatorSeed,
        condition: row.condition,
        classifier: row.classifier,
        seed: row.seed,
        train_real: row.trainReal,
        train_synthetic: row.trainSynthetic,
        train_class_counts: JSON.stringify(row.trainClassCounts),
        metrics: JSON.stringify(row.metrics),
        correct: Buffer.from(row.correct.buffer, row.correct.byteOffset, row.correct.byteLength),
        proba: Buffer.from(row.proba.buffer, row.proba.byteOffset, row.proba.byteLength),
        classifier_info: JSON.stringify(row.classifierInfo),
        seconds: row.seconds,
        finished_at: row.finishedAt,
      }),
    )();
  }

  /** Every finished job, ordered by generator, generator seed, condition, classifier and seed. */
  jobs(): JobRow[] {
    const rows = this.db
      .prepare('SELECT * FROM jobs ORDER BY generator, generator_seed, condition, classifier, seed')
      .all() as RawRow[];
    return rows.map((r) => ({
      id: r.id,
      generator: r.generator,
      generatorSeed: r.generator_seed,
      condition: r.condition,
      classifier: r.classifier,
      seed: r.seed,
      trainReal: r.train_real,
      trainSynthetic: r.train_synthetic,
      trainClassCounts: JSON.parse(r.train_class_counts) as number[],
      metrics: JSON.parse(r.metrics) as Record<string, unknown>,
      correct: new Uint8Array(r.correct),
      proba: floatsOf(r.proba),
      classifierInfo: JSON.parse(r.classifier_info) as Record<string, unknown>,
      seconds: r.seconds,
      finishedAt: r.finished_at,
    }));
  }

  close(): void {
    this.db.close();
  }
}
