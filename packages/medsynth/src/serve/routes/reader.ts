/**
 * The reader study (blinded visual Turing test) in `medsynth serve`. URL space (a folder is a training run or a
 * study, addressed by its path relative to the served folder, each segment URL-encoded; `~` is the served
 * folder itself):
 *   GET  /reader/                          the folders that can host a study, with their answer counts
 *   GET  /reader/<folder>                  start page: the reader types a name
 *   GET  /reader/<folder>?reader=<name>    the session page (its script asks for images one at a time)
 *   GET  /reader/<folder>/results          results: per-reader accuracy with CIs and tests, κ, verdict
 *   GET  /reader/-/reader.js, reader.css   the page script and style sheet
 *   GET  /api/reader/<folder>/next?reader=<name>   the reader's progress and next item: opaque id, image URL,
 *                                          class (when shown) — never its truth
 *   GET  /api/reader/<folder>/image/<id>   an item's PNG (real and synthetic encoded alike)
 *   GET  /api/reader/<folder>/results      the results as JSON (aggregates only, no per-item truth)
 *   POST /api/reader/<folder>/answers      stores one answer: the only write of the whole app
 *
 * The answer POST: JSON only (other media types 415), bounded body (`bodyLimit`, 2 KiB: 413), strict zod schema
 * `{ reader, item, call, confidence, ms }`, reader name checked (design.ts), the item must be one of the
 * study's (else 400); cross-site requests (an `Origin` of another host, `Sec-Fetch-Site: cross-site`) are
 * refused (403). Every refusal happens before the database is opened, so a refused request writes nothing. A
 * reader's second answer to the same item is 409 (the first is kept). A read-only folder is a 503 whose message
 * says so; the start page says it before anyone starts.
 *
 * Folders are resolved only through `ctx.inside` (never outside the served folder). Images are made in memory
 * on the first request for a folder (session.ts, loaded lazily with TF.js) and kept for the server's lifetime;
 * pages, results and the index read only the folder's files and `reader-study.sqlite`, opened read-only.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ConfigError, isMedsynthError } from '../../runtime/errors.js';
import type { ProgressCallback } from '../../runtime/progress.js';
import { CALLS } from '../../study/reader-stats.js';
import type { ServeContext, ServeRoutes } from '../context.js';
import { READER_ASSETS } from '../reader/assets.js';
import {
  checkReaderName,
  CONFIDENCE_MAX,
  CONFIDENCE_MIN,
  READER_SETTINGS_FILE,
  readerOrder,
  type ReaderSettings,
  type ReaderSettingsInput,
  resolveSettings,
} from '../reader/design.js';
import { findReaderFolders, type FolderKind, folderKind } from '../reader/folder.js';
import {
  indexPage,
  messagePage,
  readerApiUrl,
  resultsPage,
  ROOT_SEGMENT,
  sessionPage,
  startPage,
} from '../reader/pages.js';
import { readerStudyResults } from '../reader/results.js';
import type { ReaderSession } from '../reader/session.js';
import {
  type DesignRecord,
  notWritable,
  ReaderStore,
  type StoredItem,
  withReadStore,
} from '../reader/store.js';

export interface ReaderRouteOptions {
  /** Design settings under each folder's `reader-study.json` (e.g. from `medsynth serve` flags). */
  readonly defaults?: ReaderSettingsInput;
  /** Largest answer body accepted, in bytes (default 2048). */
  readonly bodyLimit?: number;
  /** Progress of building a session's images (loading data, sampling). */
  readonly onProgress?: ProgressCallback;
}

/** An answer as posted by the page script. */
const AnswerBodySchema = z
  .object({
    reader: z.string().max(400),
    item: z.string().regex(/^[0-9a-f]{16}$/, 'an item id (16 hex digits)'),
    call: z.enum(CALLS),
    confidence: z.number().int().min(CONFIDENCE_MIN).max(CONFIDENCE_MAX),
    ms: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600 * 1000)
      .nullable(),
  })
  .strict();

interface Folder {
  readonly rel: string;
  readonly dir: string;
  readonly kind: FolderKind;
}

/** The URL path after `prefix`, split into decoded segments; null when a segment is not valid percent-encoding. */
function segmentsOf(url: string, prefix: string): string[] | null {
  const path = url.split(/[?#]/, 1)[0]!.slice(prefix.length);
  try {
    return path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
}

const queryOf = (url: string) =>
  new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');

/** The run or study folder that `segments` name under the served folder, or null. */
async function folderAt(ctx: ServeContext, segments: readonly string[]): Promise<Folder | null> {
  if (segments.length === 0) return null;
  if (segments.some((s) => s.includes('/') || s.includes('\\') || s.includes('\0'))) return null;
  let rel = segments.join('/');
  let dir = await ctx.inside(rel);
  if (dir === null && segments.length === 1 && segments[0] === ROOT_SEGMENT) {
    rel = '';
    dir = ctx.root;
  }
  if (dir === null) return null;
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) return null;
  const kind = await folderKind(dir);
  return kind === null ? null : { rel, dir, kind };
}

/** The folder's `reader-study.json`, when there is one (validated with the defaults in `resolveSettings`). */
async function settingsFileOf(dir: string): Promise<{ values: unknown; source: string }> {
  const file = join(dir, READER_SETTINGS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { values: undefined, source: file };
  }
  try {
    return { values: JSON.parse(text) as unknown, source: file };
  } catch (e) {
    throw new ConfigError(`the reader-study settings are not valid JSON: ${(e as Error).message}`, { file });
  }
}

function statusOf(e: unknown): number {
  if (isMedsynthError(e)) return e.exitCode === 2 ? 422 : e.code === 'FILESYSTEM_ERROR' ? 503 : 500;
  return 500;
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** True for a request another site's page made (a form or script of another origin). */
function crossSite(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (origin === 'null') return true;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

interface NextState {
  readonly reader: string;
  readonly total: number;
  readonly answered: number;
  readonly done: boolean;
  readonly item: { readonly id: string; readonly image: string; readonly className?: string } | null;
}

/** The reader study's routes, with `options` (see `ReaderRouteOptions`). */
export function readerRoutesWith(options: ReaderRouteOptions = {}): ServeRoutes {
  const bodyLimit = options.bodyLimit ?? 2048;
  return async (app, ctx) => {
    const sessions = new Map<string, Promise<ReaderSession>>();
    /** Sessions already made (for the results' note on changed images). */
    const made = new Map<string, ReaderSession>();

    const settingsOf = async (f: Folder): Promise<ReaderSettings> =>
      resolveSettings([
        { values: options.defaults, source: 'the server’s reader-study defaults' },
        await settingsFileOf(f.dir),
      ]);

    /** The folder's session: built once (images in memory), from the stored design when answers exist. */
    const sessionOf = (f: Folder): Promise<ReaderSession> => {
      let p = sessions.get(f.dir);
      if (p === undefined) {
        p = (async () => {
          const stored = withReadStore(
            f.dir,
            { design: null as DesignRecord | null, items: [] as StoredItem[] },
            (s) => ({ design: s.design(), items: s.items() }),
          );
          const settings = stored.design ? stored.design.settings : await settingsOf(f);
          const { buildReaderSession } = await import('../reader/session.js');
          return buildReaderSession(f.dir, f.kind, settings, stored.design, stored.items, {
            onProgress: options.onProgress,
          });
        })();
        sessions.set(f.dir, p);
        p.then(
          (s) => made.set(f.dir, s),
          () => sessions.delete(f.dir),
        );
      }
      return p;
    };

    /** Images made now that differ from those answered; null when unknown (not made yet, or made before the first answer). */
    const changedOf = (f: Folder, design: DesignRecord | null): number | null => {
      const s = made.get(f.dir);
      if (s === undefined || design === null || s.design.fingerprint !== design.fingerprint) return null;
      const stored = withReadStore(f.dir, [] as StoredItem[], (st) => st.items());
      const sha = new Map(stored.map((it) => [it.id, it.sha256]));
      return s.items.filter((it) => sha.get(it.id) !== it.sha256).length;
    };

    const nextState = (f: Folder, session: ReaderSession, reader: string): NextState => {
      const answered = withReadStore(
        f.dir,
        new Set<string>(),
        (s) => new Set(s.answers(reader).map((a) => a.item)),
      );
      const order = readerOrder(
        session.items.map((it) => it.id),
        session.design.settings.seed,
        reader,
      );
      const nextId = order.find((id) => !answered.has(id));
      const item = nextId === undefined ? undefined : session.byId.get(nextId)!;
      const count = order.filter((id) => answered.has(id)).length;
      return {
        reader,
        total: order.length,
        answered: count,
        done: item === undefined,
        item:
          item === undefined
            ? null
            : {
                id: item.id,
                image: `${readerApiUrl(f.rel)}/image/${item.id}`,
                ...(session.design.showClass
                  ? { className: session.design.classNames[item.classIndex]! }
                  : {}),
              },
      };
    };

    const html = (reply: FastifyReply, code: number, body: string) =>
      reply.code(code).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);
    const json = (reply: FastifyReply, code: number, body: unknown) =>
      reply.code(code).header('cache-control', 'no-store').send(body);

    // ---- pages ----

    const index = async (_req: FastifyRequest, reply: FastifyReply) => {
      const found = await findReaderFolders(ctx.root);
      const entries = found.map((f) => {
        const dir = f.rel === '' ? ctx.root : join(ctx.root, ...f.rel.split('/'));
        let counts = { readers: 0, answers: 0 };
        try {
          counts = withReadStore(dir, counts, (s) => {
            const r = s.readers();
            return { readers: r.length, answers: r.reduce((a, b) => a + b.answers, 0) };
          });
        } catch {
          // an unreadable database: the folder's own page says why
        }
        return { ...f, ...counts };
      });
      return html(reply, 200, indexPage(entries));
    };
    app.get('/reader', index);

    app.get('/reader/*', async (req, reply) => {
      const segments = segmentsOf(req.raw.url ?? req.url, '/reader/');
      if (segments === null)
        return html(reply, 400, messagePage('Bad address', 'The address is not valid URL encoding.'));
      if (segments.length === 0) return index(req, reply);
      if (segments[0] === '-') {
        const asset = segments.length === 2 ? READER_ASSETS.get(segments[1]!) : undefined;
        if (asset === undefined) return html(reply, 404, messagePage('Not found', 'No such file.'));
        return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
      }
      if (segments.length > 1 && segments[segments.length - 1] === 'results') {
        const f = await folderAt(ctx, segments.slice(0, -1));
        if (f !== null) {
          try {
            const { design, stats } = readerStudyResults(f.dir);
            return html(
              reply,
              200,
              resultsPage({ rel: f.rel, design, stats, changedImages: changedOf(f, design) }),
            );
          } catch (e) {
            return html(reply, statusOf(e), messagePage('Results unavailable', messageOf(e), f.rel));
          }
        }
      }
      const f = await folderAt(ctx, segments);
      if (f === null)
        return html(
          reply,
          404,
          messagePage(
            'Not a study folder',
            'There is no training run or study at this address in the served folder.',
          ),
        );
      let settings: ReaderSettings;
      let counts: { design: DesignRecord | null; readers: { reader: string; answers: number }[] };
      try {
        counts = withReadStore(
          f.dir,
          { design: null, readers: [] as { reader: string; answers: number }[] },
          (s) => ({
            design: s.design(),
            readers: s.readers(),
          }),
        );
        settings = counts.design?.settings ?? (await settingsOf(f));
      } catch (e) {
        return html(reply, statusOf(e), messagePage('Reader study unavailable', messageOf(e), f.rel));
      }
      const readOnly = notWritable(f.dir);
      const query = queryOf(req.raw.url ?? req.url);
      const wanted = query.get('reader');
      const start = (nameError?: { name: string; reason: string }) =>
        html(
          reply,
          nameError ? 400 : 200,
          startPage({
            rel: f.rel,
            kind: f.kind,
            settings,
            design: counts.design,
            readers: counts.readers.length,
            answers: counts.readers.reduce((a, b) => a + b.answers, 0),
            readOnly:
              readOnly === null ? null : `${readOnly} on ${f.rel === '' ? 'the served folder' : f.rel}`,
            ...(nameError ? { nameError } : {}),
          }),
        );
      // Make the images while the reader reads the instructions (errors show on the session page).
      sessionOf(f).catch(() => undefined);
      if (wanted === null || readOnly !== null) return start();
      const name = checkReaderName(wanted);
      if (!name.ok) return start({ name: wanted.slice(0, 200), reason: name.reason });
      return html(reply, 200, sessionPage(f.rel, name.name));
    });

    // ---- API ----

    app.get('/api/reader/*', async (req, reply) => {
      const segments = segmentsOf(req.raw.url ?? req.url, '/api/reader/');
      if (segments === null) return json(reply, 400, { error: 'the address is not valid URL encoding' });
      const last = segments[segments.length - 1];
      const isImage = segments.length >= 3 && segments[segments.length - 2] === 'image';
      const action = isImage ? 'image' : last;
      const f = await folderAt(ctx, segments.slice(0, isImage ? -2 : -1));
      if (f === null || (action !== 'next' && action !== 'results' && action !== 'image'))
        return json(reply, 404, {
          error: 'no reader study here: not a training run or study in the served folder',
        });
      try {
        if (action === 'results') {
          const { design, stats } = readerStudyResults(f.dir);
          return json(reply, 200, { folder: f.rel, design, stats, changedImages: changedOf(f, design) });
        }
        if (action === 'image') {
          const item = (await sessionOf(f)).byId.get(last!);
          if (item === undefined) return json(reply, 404, { error: 'no such image in this reader study' });
          return reply.code(200).type('image/png').header('cache-control', 'no-store').send(item.png);
        }
        const name = checkReaderName(queryOf(req.raw.url ?? req.url).get('reader') ?? '');
        if (!name.ok) return json(reply, 400, { error: name.reason });
        return json(reply, 200, nextState(f, await sessionOf(f), name.name));
      } catch (e) {
        return json(reply, statusOf(e), { error: messageOf(e) });
      }
    });

    app.post('/api/reader/*', { bodyLimit }, async (req, reply) => {
      if (crossSite(req))
        return json(reply, 403, { error: 'answers are accepted from this app’s own pages only' });
      const segments = segmentsOf(req.raw.url ?? req.url, '/api/reader/');
      if (segments === null || segments[segments.length - 1] !== 'answers')
        return json(reply, 404, { error: 'not found' });
      const f = await folderAt(ctx, segments.slice(0, -1));
      if (f === null)
        return json(reply, 404, {
          error: 'no reader study here: not a training run or study in the served folder',
        });
      const type = String(req.headers['content-type'] ?? '');
      if (!/^application\/json\s*(;|$)/i.test(type))
        return json(reply, 415, { error: 'an answer is sent as JSON (content-type application/json)' });
      const parsed = AnswerBodySchema.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        return json(reply, 400, {
          error: `invalid answer: ${issue.path.join('.') || 'body'}: ${issue.message}`,
        });
      }
      const name = checkReaderName(parsed.data.reader);
      if (!name.ok) return json(reply, 400, { error: name.reason });
      const readOnly = notWritable(f.dir);
      if (readOnly !== null)
        return json(reply, 503, {
          error: `the folder is read-only (${readOnly}), so answers cannot be stored: serve a writable copy of it to run the study`,
        });
      try {
        const session = await sessionOf(f);
        if (!session.byId.has(parsed.data.item))
          return json(reply, 400, { error: 'unknown item: not an image of this reader study' });
        const store = ReaderStore.openWrite(f.dir);
        let outcome: 'stored' | 'duplicate';
        try {
          outcome = store.addAnswer(session.design, session.items, { ...parsed.data, reader: name.name });
        } finally {
          store.close();
        }
        const next = nextState(f, session, name.name);
        if (outcome === 'duplicate')
          return json(reply, 409, {
            error: 'this reader already answered this image; the first answer is kept',
            next,
          });
        return json(reply, 201, { stored: true, next });
      } catch (e) {
        return json(reply, statusOf(e), { error: messageOf(e) });
      }
    });
  };
}

/** The reader study's routes with the default settings (20 real + 20 synthetic per class, seed 0, class shown). */
export const readerRoutes: ServeRoutes = readerRoutesWith();
