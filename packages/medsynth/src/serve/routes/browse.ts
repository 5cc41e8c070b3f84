/**
 * The browsing part of `medsynth serve` (GET only): the index (`/`), a page per training run
 * (`/runs/<rel>`), evaluation (`/evaluations/<rel>`, its embedding map `/evaluations/<rel>/-/embedding` and
 * the map's images `/evaluations/<rel>/-/image/<set>/<index>.png`) and study (`/studies/<rel>`), and the same
 * as JSON under `/api/index`, `/api/runs/<rel>`, `/api/evaluations/<rel>`, `/api/studies/<rel>`. `<rel>` is
 * the folder's path under the served folder, each segment URL-encoded. A request names a folder the index
 * found (discover.ts) and that `ServeContext.inside` accepts, or gets a 404.
 */
import { posix } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EMBEDDING_FILE, readEmbeddingMap } from '../../metrics/embedding-map.js';
import { h } from '../../report/markup.js';
import { isMedsynthError } from '../../runtime/errors.js';
import type { ServeContext, ServeRoutes } from '../context.js';
import { ChartCache, readEvaluationDetail, readRunDetail, readStudyDetail, StudyCache } from '../details.js';
import { FolderIndex, type FolderIndexOptions, type FolderSnapshot } from '../discover.js';
import { embeddingPage, embeddingProblemPage } from '../pages/embedding-page.js';
import { indexPage } from '../pages/index-page.js';
import { entryUrl, fileUrl, type Section } from '../pages/parts.js';
import { runPage } from '../pages/run-page.js';
import { type Crumb, page } from '../pages/shell.js';
import { studyPage } from '../pages/study-page.js';
import { ThumbnailCells } from '../thumbnails.js';

export interface BrowseOptions {
  /** The folder index to use (the server shares one, warmed before it listens); else one is made. */
  readonly index?: FolderIndex;
  readonly indexOptions?: FolderIndexOptions;
  /** medsynth's version, shown in study reports. */
  readonly version?: string | null;
}

/**
 * A request's folder path: the router's decoded wildcard, without leading/trailing slashes, normalised; null
 * when it climbs above the root (`..`), holds a NUL, or names a hidden segment (`.git`).
 */
export function relParam(raw: string): string | null {
  if (raw.includes('\0')) return null;
  const trimmed = raw.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  const norm = posix.normalize(trimmed);
  if (norm === '.') return '';
  if (norm === '..' || norm.startsWith('../') || posix.isAbsolute(norm)) return null;
  if (norm.split('/').some((s) => s.startsWith('.'))) return null;
  return norm;
}

const SECTION_TITLES: Readonly<Record<Section, string>> = {
  runs: 'runs',
  evaluations: 'evaluations',
  studies: 'studies',
};

/** Breadcrumbs of an entry: its section, the folders above it (studies linked), and the entry itself. */
function crumbsOf(section: Section, rel: string, snap: FolderSnapshot, extra: Crumb[] = []): Crumb[] {
  const parts = rel.split('/').filter((s) => s !== '');
  const out: Crumb[] = [{ label: SECTION_TITLES[section], href: `/#${section}` }];
  parts.forEach((p, i) => {
    const sub = parts.slice(0, i + 1).join('/');
    const last = i === parts.length - 1;
    if (last && extra.length === 0) out.push({ label: p });
    else if (last) out.push({ label: p, href: entryUrl(section, sub) });
    else if (snap.studies.some((s) => s.rel === sub)) out.push({ label: p, href: entryUrl('studies', sub) });
    else out.push({ label: p });
  });
  return [...out, ...extra];
}

const html = (reply: FastifyReply, body: string) => reply.type('text/html; charset=utf-8').send(body);
const json = (reply: FastifyReply, value: unknown) =>
  reply.type('application/json; charset=utf-8').send(JSON.stringify(value));

/** A 404 page (or JSON under /api/). */
export function notFound(request: FastifyRequest, reply: FastifyReply, what?: string): FastifyReply {
  reply.code(404);
  if (request.url.startsWith('/api/')) return json(reply, { error: 'not found', detail: what ?? null });
  const body = h`<h1>Not found</h1>
<p>${what ?? 'Nothing is served at this address.'}</p>
<p><a href="/">Back to the index</a> of everything this server shows.</p>`;
  return html(reply, page({ title: 'not found', body, crumbs: [{ label: 'not found' }] }));
}

const wildcard = (request: FastifyRequest): string => (request.params as { '*'?: string })['*'] ?? '';

/** The browse routes, sharing one index (made from `ctx` when `options.index` is not given). */
export function browseRoutes(options: BrowseOptions = {}): ServeRoutes {
  return async (app, ctx: ServeContext) => {
    const index = options.index ?? new FolderIndex(ctx, options.indexOptions);
    const charts = new ChartCache();
    const studies = new StudyCache();
    const thumbnails = new ThumbnailCells();
    const version = options.version ?? null;

    /** The entry of `section` at the request's path, its real folder and the snapshot; null after a 404. */
    async function resolveEntry<K extends 'run' | 'evaluation' | 'study'>(
      request: FastifyRequest,
      reply: FastifyReply,
      kind: K,
      raw: string,
    ) {
      const rel = relParam(raw);
      const abs = rel === null ? null : await ctx.inside(rel);
      if (rel === null || abs === null) {
        notFound(request, reply, `No ${kind} at this address.`);
        return null;
      }
      const snap = await index.snapshot();
      const entry = await index.find(kind, rel);
      if (!entry) {
        notFound(request, reply, `No ${kind} at ${rel || 'the root of the served folder'}.`);
        return null;
      }
      return { rel, abs, snap, entry };
    }

    app.get('/', async (_request, reply) => html(reply, indexPage(await index.snapshot())));
    app.get('/api/index', async (_request, reply) => json(reply, await index.snapshot()));

    app.get('/runs/*', async (request, reply) => {
      const found = await resolveEntry(request, reply, 'run', wildcard(request));
      if (!found) return reply;
      const detail = await readRunDetail(found.abs, found.entry, found.snap, charts);
      return html(reply, runPage(detail, crumbsOf('runs', found.rel, found.snap)));
    });
    app.get('/api/runs/*', async (request, reply) => {
      const found = await resolveEntry(request, reply, 'run', wildcard(request));
      if (!found) return reply;
      const d = await readRunDetail(found.abs, found.entry, found.snap, charts);
      return json(reply, {
        entry: d.entry,
        options: d.options,
        run: d.run,
        result: d.result,
        ticks: d.ticks,
        timeline: d.timeline,
        checkpoints: d.checkpoints,
        evaluations: d.evaluations.map((e) => e.rel),
        problems: d.problems,
      });
    });

    app.get('/evaluations/*', async (request, reply) => {
      const raw = wildcard(request);
      // `<rel>/-/embedding` and `<rel>/-/image/<set>/<index>.png` are the evaluation's embedding map.
      const at = raw.lastIndexOf('/-/');
      const sub = at >= 0 ? raw.slice(at + 3) : null;
      const found = await resolveEntry(request, reply, 'evaluation', at >= 0 ? raw.slice(0, at) : raw);
      if (!found) return reply;
      const { rel, abs, snap, entry } = found;
      if (sub === null) {
        const detail = await readEvaluationDetail(abs, entry, charts);
        // Loaded on first use: it draws with the report's table (report/html.ts, slow to load).
        const { evaluationPage } = await import('../pages/evaluation-page.js');
        return html(reply, evaluationPage(detail, crumbsOf('evaluations', rel, snap)));
      }
      const image = /^image\/(.+)\/(\d{1,9})\.png$/.exec(sub);
      if (sub !== 'embedding' && !image) return notFound(request, reply);
      const file = await ctx.inside(posix.join(rel, EMBEDDING_FILE));
      let map;
      try {
        if (!file) throw new Error('no map');
        map = await readEmbeddingMap(file);
      } catch (e) {
        if (image || !file)
          return notFound(request, reply, 'This evaluation has no embedding map (embedding.json).');
        if (!isMedsynthError(e)) throw e;
        const crumbs = crumbsOf('evaluations', rel, snap, [{ label: 'embedding map' }]);
        return html(reply, embeddingProblemPage(entry, e.message, crumbs));
      }
      if (!image) {
        const crumbs = crumbsOf('evaluations', rel, snap, [{ label: 'embedding map' }]);
        return html(reply, embeddingPage(entry, map, crumbs));
      }
      const [, set, index] = image;
      const i = map.points.findIndex((p) => p.set === set && p.index === Number(index));
      const sheet = map.thumbnails;
      const sheetFile = sheet ? await ctx.inside(posix.join(rel, sheet.file)) : null;
      if (i < 0 || !sheet || !sheetFile) return notFound(request, reply, 'No such image in this map.');
      let png: Buffer;
      try {
        png = await thumbnails.cell(sheetFile, sheet, i);
      } catch (e) {
        if (e instanceof RangeError) return notFound(request, reply, e.message);
        throw e;
      }
      return reply.type('image/png').header('cache-control', 'private, max-age=60').send(png);
    });
    app.get('/api/evaluations/*', async (request, reply) => {
      const found = await resolveEntry(request, reply, 'evaluation', wildcard(request));
      if (!found) return reply;
      const d = await readEvaluationDetail(found.abs, found.entry, charts);
      return json(reply, { entry: d.entry, evaluation: d.evaluation, problem: d.problem });
    });

    app.get('/studies/*', async (request, reply) => {
      const found = await resolveEntry(request, reply, 'study', wildcard(request));
      if (!found) return reply;
      const detail = await readStudyDetail(ctx, found.abs, found.entry, found.snap, studies, version);
      return html(reply, studyPage(detail, crumbsOf('studies', found.rel, found.snap)));
    });
    app.get('/api/studies/*', async (request, reply) => {
      const found = await resolveEntry(request, reply, 'study', wildcard(request));
      if (!found) return reply;
      const { snap, entry } = found;
      return json(reply, {
        entry,
        runs: snap.runs.filter((r) => r.study === entry.rel).map((r) => r.rel),
        evaluations: snap.evaluations.filter((e) => e.study === entry.rel).map((e) => e.rel),
        results: entry.finished ? fileUrl(posix.join(entry.rel, 'results.json')) : null,
      });
    });
  };
}
