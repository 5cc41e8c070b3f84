/**
 * The reader study's answers: one SQLite database (better-sqlite3) in the study folder,
 * `<folder>/reader-study.sqlite`, WAL journal, `synchronous = FULL`. It holds
 *   - `meta`: the schema version and the design (`DesignRecordSchema`: settings with the checkpoints pinned,
 *     where the images come from, class names), written with the items when the first answer is stored;
 *   - `items`: one row per image of the study — opaque id, place in the study's order, truth, class, where the
 *     image came from, sha256 of the PNG shown;
 *   - `answers`: one row per answer — reader, item, call, confidence 1–5, milliseconds taken, timestamp —
 *     unique per (reader, item), the item a foreign key into `items`.
 * Reading opens the file read-only (a missing file is "no answers yet" and is not created); only `addAnswer`
 * writes, one transaction per answer. A folder or file the process cannot write is a `FileSystemError` whose
 * message says the folder is read-only.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { FileSystemError, StudyError } from '../../runtime/errors.js';
import { CALLS, type Call, type ReaderAnswer, type ReaderItem } from '../../study/reader-stats.js';
import { CONFIDENCE_MAX, CONFIDENCE_MIN, READER_DB_FILE, ReaderSettingsSchema } from './design.js';

const SCHEMA_VERSION = 1;
export const DESIGN_FORMAT = 'medsynth-reader-study';

/** What a study's images are made from (recorded with the design). */
export const DesignSourceSchema = z
  .object({
    kind: z.enum(['run', 'study']),
    /** Human description: the run, or the study's generator instance. */
    description: z.string(),
    /** The generator's runs (absolute, as found when the design was made) and the checkpoint of each. */
    runs: z.array(z.object({ dir: z.string(), checkpoint: z.string() }).strict()).min(1),
    network: z.string(),
    dataSource: z.string(),
    /** The real split's name as loaded (e.g. `train`, `train[capped]`). */
    realSplit: z.string(),
    size: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
    truncation: z.number().positive(),
    conditional: z.boolean(),
  })
  .strict();
export type DesignSource = z.infer<typeof DesignSourceSchema>;

export const DesignRecordSchema = z
  .object({
    format: z.literal(DESIGN_FORMAT),
    version: z.literal(1),
    fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
    settings: ReaderSettingsSchema,
    source: DesignSourceSchema,
    classNames: z.array(z.string()).min(1),
    /** Whether readers see the class (settings.showClass, off for a study of an unconditional generator). */
    showClass: z.boolean(),
    items: z.number().int().positive(),
    confidence: z.object({ min: z.literal(CONFIDENCE_MIN), max: z.literal(CONFIDENCE_MAX) }).strict(),
    createdAt: z.string(),
  })
  .strict();
export type DesignRecord = z.infer<typeof DesignRecordSchema>;

/** An item as stored. */
export interface StoredItem extends ReaderItem {
  readonly position: number;
  /** Where the image came from (e.g. `real train[123]`, `synthetic seed 42`). */
  readonly source: string;
  readonly sha256: string;
}

export interface StoredAnswer extends ReaderAnswer {
  readonly answeredAt: string;
}

/** What the server stores for one answer (validated by the route). */
export interface NewAnswer {
  readonly reader: string;
  readonly item: string;
  readonly call: Call;
  readonly confidence: number;
  readonly ms: number | null;
}

export function readerDbFile(folder: string): string {
  return join(folder, READER_DB_FILE);
}

const READ_ONLY_CODES = new Set([
  'SQLITE_READONLY',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY_DIRECTORY',
  'SQLITE_PERM',
]);

function readOnlyError(file: string, why: string, cause?: unknown): FileSystemError {
  return new FileSystemError(
    `the reader study cannot store answers: ${dirname(file)} is read-only (${why}); serve a writable copy of the folder to run the study`,
    { file, ...(cause !== undefined ? { cause } : {}) },
  );
}

/**
 * Why answers could not be stored in `folder` (null when they can): the folder, or an existing database file,
 * is not writable by this process.
 */
export function notWritable(folder: string): string | null {
  const file = readerDbFile(folder);
  try {
    accessSync(folder, constants.W_OK);
    if (existsSync(file)) accessSync(file, constants.W_OK);
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'not writable';
  }
}

interface ItemRow {
  id: string;
  position: number;
  truth: string;
  class_index: number;
  source: string;
  sha256: string;
}

interface AnswerRow {
  reader: string;
  item: string;
  call: string;
  confidence: number;
  ms: number | null;
  answered_at: string;
}

const isCall = (x: string): x is Call => (CALLS as readonly string[]).includes(x);

export class ReaderStore {
  private constructor(
    private readonly db: Database.Database,
    readonly file: string,
  ) {}

  /** Opens the folder's database for reading; null when there is none yet (nothing is created). */
  static openRead(folder: string): ReaderStore | null {
    const file = readerDbFile(folder);
    if (!existsSync(file)) return null;
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
    } catch (e) {
      throw new StudyError(`cannot read the reader study's answers: ${(e as Error).message}`, { file });
    }
    const store = new ReaderStore(db, file);
    try {
      store.checkVersion();
    } catch (e) {
      db.close();
      throw e;
    }
    return store;
  }

  /** Opens (creating when missing) the folder's database for writing. */
  static openWrite(folder: string): ReaderStore {
    const file = readerDbFile(folder);
    const refused = notWritable(folder);
    if (refused !== null) throw readOnlyError(file, refused);
    let db: Database.Database;
    try {
      db = new Database(file);
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (READ_ONLY_CODES.has(code)) throw readOnlyError(file, code, e);
      throw new StudyError(`cannot open the reader study's database: ${(e as Error).message}`, { file });
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      db.exec(`
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS items (
          id TEXT PRIMARY KEY,
          position INTEGER NOT NULL UNIQUE,
          truth TEXT NOT NULL CHECK (truth IN ('real', 'synthetic')),
          class_index INTEGER NOT NULL CHECK (class_index >= 0),
          source TEXT NOT NULL,
          sha256 TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS answers (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          reader TEXT NOT NULL,
          item TEXT NOT NULL REFERENCES items(id),
          call TEXT NOT NULL CHECK (call IN ('real', 'synthetic')),
          confidence INTEGER NOT NULL CHECK (confidence BETWEEN ${CONFIDENCE_MIN} AND ${CONFIDENCE_MAX}),
          ms INTEGER CHECK (ms IS NULL OR ms >= 0),
          answered_at TEXT NOT NULL,
          UNIQUE (reader, item)
        );`);
      db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(
        'schemaVersion',
        String(SCHEMA_VERSION),
      );
    } catch (e) {
      db.close();
      const code = (e as { code?: string }).code ?? '';
      if (READ_ONLY_CODES.has(code)) throw readOnlyError(file, code, e);
      throw new StudyError(`not a usable reader-study database: ${(e as Error).message}`, { file });
    }
    const store = new ReaderStore(db, file);
    try {
      store.checkVersion();
    } catch (e) {
      db.close();
      throw e;
    }
    return store;
  }

  private checkVersion(): void {
    let row: { value: string } | undefined;
    try {
      row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schemaVersion') as
        { value: string } | undefined;
    } catch (e) {
      throw new StudyError(`not a reader-study database: ${(e as Error).message}`, { file: this.file });
    }
    if (row !== undefined && Number(row.value) !== SCHEMA_VERSION)
      throw new StudyError('the reader-study database was written by another medsynth version', {
        file: this.file,
        expected: `schema version ${SCHEMA_VERSION}`,
        found: row.value,
      });
  }

  /** The stored design, or null before the first answer. */
  design(): DesignRecord | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('design') as
      { value: string } | undefined;
    if (row === undefined) return null;
    let value: unknown;
    try {
      value = JSON.parse(row.value);
    } catch (e) {
      throw new StudyError(`the stored design is not JSON: ${(e as Error).message}`, {
        file: this.file,
        field: 'design',
      });
    }
    const parsed = DesignRecordSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new StudyError(`the stored design is not a reader-study design: ${issue.message}`, {
        file: this.file,
        field: `design.${issue.path.join('.')}`,
      });
    }
    return parsed.data;
  }

  items(): StoredItem[] {
    const rows = this.db.prepare('SELECT * FROM items ORDER BY position').all() as ItemRow[];
    return rows.map((r) => {
      if (!isCall(r.truth))
        throw new StudyError('an item has an unknown truth', { file: this.file, found: r.truth });
      return {
        id: r.id,
        position: r.position,
        truth: r.truth,
        classIndex: r.class_index,
        source: r.source,
        sha256: r.sha256,
      };
    });
  }

  /** Every answer, oldest first; or one reader's. */
  answers(reader?: string): StoredAnswer[] {
    const rows = (
      reader === undefined
        ? this.db.prepare('SELECT * FROM answers ORDER BY seq').all()
        : this.db.prepare('SELECT * FROM answers WHERE reader = ? ORDER BY seq').all(reader)
    ) as AnswerRow[];
    return rows.map((r) => {
      if (!isCall(r.call))
        throw new StudyError('an answer has an unknown call', { file: this.file, found: r.call });
      return {
        reader: r.reader,
        item: r.item,
        call: r.call,
        confidence: r.confidence,
        ms: r.ms,
        answeredAt: r.answered_at,
      };
    });
  }

  /** Readers and how many answers each stored. */
  readers(): { reader: string; answers: number }[] {
    return this.db
      .prepare('SELECT reader, COUNT(*) AS answers FROM answers GROUP BY reader ORDER BY reader')
      .all() as { reader: string; answers: number }[];
  }

  /**
   * Stores one answer in one transaction; the first answer also stores the design and its items. `duplicate`
   * when the reader already answered the item (the stored answer is kept). Throws a `StudyError` when the
   * database holds another design (its answers belong to other images).
   */
  addAnswer(
    design: DesignRecord,
    items: readonly StoredItem[],
    answer: NewAnswer,
    now = new Date(),
  ): 'stored' | 'duplicate' {
    const write = this.db.transaction((): 'stored' | 'duplicate' => {
      const stored = this.design();
      if (stored === null) {
        // The design is fixed now: its time is that of the first answer.
        this.db
          .prepare('INSERT INTO meta (key, value) VALUES (?, ?)')
          .run('design', JSON.stringify({ ...design, createdAt: now.toISOString() }));
        const insert = this.db.prepare(
          'INSERT INTO items (id, position, truth, class_index, source, sha256) VALUES (?, ?, ?, ?, ?, ?)',
        );
        for (const it of items) insert.run(it.id, it.position, it.truth, it.classIndex, it.source, it.sha256);
      } else if (stored.fingerprint !== design.fingerprint) {
        throw new StudyError('the folder already holds answers to another reader-study design', {
          file: this.file,
          expected: stored.fingerprint.slice(0, 12),
          found: design.fingerprint.slice(0, 12),
        });
      }
      const result = this.db
        .prepare(
          `INSERT INTO answers (reader, item, call, confidence, ms, answered_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (reader, item) DO NOTHING`,
        )
        .run(answer.reader, answer.item, answer.call, answer.confidence, answer.ms, now.toISOString());
      return result.changes === 1 ? 'stored' : 'duplicate';
    });
    try {
      return write();
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (READ_ONLY_CODES.has(code)) throw readOnlyError(this.file, code, e);
      throw e;
    }
  }

  close(): void {
    this.db.close();
  }
}

/** Runs `fn` on the folder's store opened for reading, or returns `missing` when there is none. */
export function withReadStore<T>(folder: string, missing: T, fn: (store: ReaderStore) => T): T {
  const store = ReaderStore.openRead(folder);
  if (store === null) return missing;
  try {
    return fn(store);
  } finally {
    store.close();
  }
}
