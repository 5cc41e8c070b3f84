/**
 * What the reader-study tests share: a tiny class-conditional run trained on PneumoniaMNIST-28 inside a served
 * folder, the reader routes on their own fastify instance (with the app's assets and the Content-Security-Policy
 * serve-core sets, so the pages are tested under the same rules), and reading the answers' database back.
 */
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { selectBackend } from '../../src/runtime/backend.js';
import { serveContext } from '../../src/serve/context.js';
import { ASSETS } from '../../src/serve/pages/assets.js';
import { type ReaderRouteOptions, readerRoutesWith } from '../../src/serve/routes/reader.js';
import { trainGan } from '../../src/training/loop.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

export interface TinyRoot {
  /** The served folder. */
  readonly root: string;
  /** The run's folder and its path relative to root. */
  readonly runDir: string;
  readonly rel: string;
}

/** A served folder holding one tiny cGAN run (a few seconds of training). */
export async function tinyRoot(): Promise<TinyRoot> {
  await selectBackend();
  const root = await mkdtemp(join(tmpdir(), 'medsynth-reader-'));
  const tiny = tinyTrainOptions(() => ({ outDir: join(root, 'runs'), kimg: 0.064, tickKimg: 0.032 }));
  const result = await trainGan(tiny({ model: 'cgan', seed: 3 }));
  return { root, runDir: result.runDir, rel: relative(root, result.runDir).split('\\').join('/') };
}

/** A copy of the run in another folder under root (its own reader study). */
export async function copyRun(t: TinyRoot, rel: string): Promise<string> {
  await cp(t.runDir, join(t.root, ...rel.split('/')), { recursive: true });
  return rel;
}

/** The Content-Security-Policy serve-core's server sets (scripts from self only, no inline anything). */
export const CSP =
  "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** The reader routes on a fresh fastify instance, plus the app's `/assets/…` (as serve-core serves them). */
export async function readerApp(root: string, options: ReaderRouteOptions = {}): Promise<FastifyInstance> {
  const app = Fastify();
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    return payload;
  });
  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const asset = ASSETS.get(req.params.name);
    if (!asset) return reply.code(404).send({ error: 'not found' });
    return reply.type(asset.type).send(asset.body);
  });
  await readerRoutesWith(options)(app, await serveContext(root));
  return app;
}

export interface AnswerRow {
  reader: string;
  item: string;
  call: string;
  confidence: number;
  ms: number | null;
  answered_at: string;
}

export interface ItemRow {
  id: string;
  position: number;
  truth: 'real' | 'synthetic';
  class_index: number;
  source: string;
  sha256: string;
}

/** The rows of the answers' database, read with a connection of the test's own. */
export function readDb(folder: string): {
  answers: AnswerRow[];
  items: ItemRow[];
  design: Record<string, unknown>;
} {
  const db = new Database(join(folder, 'reader-study.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return {
      answers: db
        .prepare('SELECT reader, item, call, confidence, ms, answered_at FROM answers ORDER BY seq')
        .all() as AnswerRow[],
      items: db.prepare('SELECT * FROM items ORDER BY position').all() as ItemRow[],
      design: JSON.parse(
        (db.prepare("SELECT value FROM meta WHERE key = 'design'").get() as { value: string }).value,
      ) as Record<string, unknown>,
    };
  } finally {
    db.close();
  }
}

/** Cohen's κ by hand from the 2 × 2 table of two readers' calls (the independent check of the tests). */
export function kappaByHand(a: readonly string[], b: readonly string[]): number {
  const n = a.length;
  let both = 0;
  let aReal = 0;
  let bReal = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) both++;
    if (a[i] === 'real') aReal++;
    if (b[i] === 'real') bReal++;
  }
  const po = both / n;
  const pe = (aReal / n) * (bReal / n) + (1 - aReal / n) * (1 - bReal / n);
  return (po - pe) / (1 - pe);
}
