/**
 * `medsynth serve`: a local web app (fastify) over a folder of training runs, evaluations and studies.
 *
 * - Binds 127.0.0.1 by default (`host`), port 8765 (`port`; 0 = any free port). A port in use is a
 *   `ConfigError` (exit 2) that says so and suggests `--port`.
 * - Serves files only from under the folder: every request path becomes a file through
 *   `ServeContext.inside` (context.ts), which refuses `..`, encoded `..`, absolute paths and symbolic links
 *   that lead out; hidden files (`.git`, `.env`) are never served.
 * - GET and HEAD only, except the reader study's answers (`POST /api/reader/…`, which must come from this
 *   site's own pages: a foreign `Origin` or a cross-site fetch is refused). Anything else gets 405.
 * - While bound to a loopback address, a request whose `Host` is not a loopback name is refused (403): a web
 *   page elsewhere cannot reach the server through DNS rebinding.
 * - Every response carries a strict Content-Security-Policy (scripts and style sheets from this server only,
 *   plus `'wasm-unsafe-eval'` for TF.js's WebAssembly backend; no inline script, no `<style>` element, style
 *   attributes only; no framing), `nosniff` and `no-referrer`. Raw files under `/files/` are sandboxed (an HTML or SVG file from a run folder can run no
 *   script and reach nothing), and types outside a short list download as `application/octet-stream`.
 *
 * Parts: the browsing pages (routes/browse.ts), the live generation (`generateRoutes`) and the reader study
 * (`readerRoutes`) each register their routes in their own fastify scope, sharing this server's hooks.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { extname } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { h } from '../report/markup.js';
import { ConfigError, isMedsynthError } from '../runtime/errors.js';
import { type ServeContext, type ServeRoutes, serveContext } from './context.js';
import { FolderIndex, type FolderIndexOptions } from './discover.js';
import { ASSET_VERSION, ASSETS } from './pages/assets.js';
import { page } from './pages/shell.js';
import { browseRoutes, notFound, relParam } from './routes/browse.js';

/**
 * The parts registered after the browsing pages: live generation (routes/generate.ts) and the reader study
 * (routes/reader.ts). Imported when a server is made, not with this module: live generation loads TF.js.
 */
async function defaultParts(): Promise<ServeRoutes[]> {
  const [{ generateRoutes }, { readerRoutes }] = await Promise.all([
    import('./routes/generate.js'),
    import('./routes/reader.js'),
  ]);
  return [generateRoutes, readerRoutes];
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8765;

/** The Content-Security-Policy of the app's pages. */
export const APP_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  // Style attributes only (grid row labels are positioned with them); no <style> element from a page.
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The Content-Security-Policy of raw files from the folder: a sandbox, no script, nothing fetched but images. */
export const FILE_CSP =
  "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'";

/** Content types of raw files by extension; anything else is `application/octet-stream`, downloaded. */
const FILE_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.csv': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.yaml': 'text/plain; charset=utf-8',
  '.yml': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.pdf': 'application/pdf',
};

/** Methods other than GET/HEAD that a path may take: the reader study's answers only. */
const WRITABLE: readonly { readonly method: string; readonly prefix: string }[] = [
  { method: 'POST', prefix: '/api/reader/' },
];

/** One answered request (for a CLI log; the library itself never prints). */
export interface RequestRecord {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly ms: number;
}

export interface ServeOptions {
  /** The folder to serve. */
  readonly dir: string;
  /** Address to bind (default 127.0.0.1; `0.0.0.0` or `::` opens the server to the network). */
  readonly host?: string;
  /** Port (default 8765; 0 = any free port). */
  readonly port?: number;
  /** The parts after the browsing pages (default: live generation and the reader study). */
  readonly parts?: readonly ServeRoutes[];
  readonly index?: FolderIndexOptions;
  /** medsynth's version (shown in study reports; default: this package's). */
  readonly version?: string | null;
  /** Called after each response. */
  readonly onRequest?: (record: RequestRecord) => void;
}

export interface MedsynthServer {
  readonly app: FastifyInstance;
  readonly ctx: ServeContext;
  readonly index: FolderIndex;
}

export interface RunningServer extends MedsynthServer {
  /** `http://127.0.0.1:8765/` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Whether `host` (a bind address or a Host header's name) is a loopback name. */
export function isLoopback(host: string): boolean {
  const name = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost') || name === '::1') return true;
  return isIP(name) === 4 && name.startsWith('127.');
}

/** The name part of a Host header (`[::1]:8765` → `::1`, `localhost:80` → `localhost`). */
export function hostName(header: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header);
  if (m) return m[1]!;
  return header.replace(/:\d+$/, '');
}

async function packageVersion(): Promise<string | null> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

/** The served folder's context; a `ConfigError` naming it when it is missing or not a folder. */
async function folderContext(dir: string): Promise<ServeContext> {
  let ctx: ServeContext;
  try {
    ctx = await serveContext(dir);
  } catch (e) {
    throw new ConfigError('the folder to serve does not exist', {
      file: dir,
      found: (e as NodeJS.ErrnoException).code ?? String(e),
      cause: e,
    });
  }
  if (!(await stat(ctx.root)).isDirectory())
    throw new ConfigError('not a folder: medsynth serve shows a folder of runs, evaluations and studies', {
      file: dir,
    });
  return ctx;
}

const ERROR_TITLES: Readonly<Record<number, string>> = {
  403: 'Refused',
  405: 'Method not allowed',
  413: 'Request too large',
  422: 'Cannot show this',
};

function errorPage(status: number, message: string): string {
  const title = ERROR_TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'Bad request');
  const body = h`<h1>${title}</h1>
<p class="warning">${message}</p>
<p><a href="/">Back to the index</a></p>`;
  return page({ title: title.toLowerCase(), body, crumbs: [{ label: 'error' }] });
}

function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: string,
): FastifyReply {
  reply.code(status);
  if (request.url.startsWith('/api/'))
    return reply.type('application/json; charset=utf-8').send(JSON.stringify({ error: message }));
  return reply.type('text/html; charset=utf-8').send(errorPage(status, message));
}

/** The hooks every route shares: host and method checks, security headers, the request log. */
function securityHooks(app: FastifyInstance, host: string, onRequest?: (r: RequestRecord) => void): void {
  const loopback = isLoopback(host);
  app.addHook('onRequest', async (request, reply) => {
    if (loopback) {
      const name = hostName(request.headers.host ?? '');
      if (!isLoopback(name))
        return sendError(
          request,
          reply,
          403,
          'This server answers only requests addressed to localhost (the Host header names another site).',
        );
    }
    const method = request.method;
    if (method === 'GET' || method === 'HEAD') return;
    const path = request.url.split('?')[0] ?? '';
    const writable = WRITABLE.some((w) => w.method === method && path.startsWith(w.prefix));
    if (!writable) {
      // The request's body is not read: close the connection rather than leave it in the stream.
      reply.header('allow', 'GET, HEAD').header('connection', 'close');
      return sendError(
        request,
        reply,
        405,
        `${method} is not allowed here: this server only shows files (GET, HEAD).`,
      );
    }
    const origin = request.headers.origin;
    const site = request.headers['sec-fetch-site'];
    const own = `http://${request.headers.host ?? ''}`;
    if ((origin !== undefined && origin !== own) || site === 'cross-site') {
      reply.header('connection', 'close');
      return sendError(request, reply, 403, 'Answers are accepted from this server’s own pages only.');
    }
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', APP_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-cache');
    return payload;
  });
  if (onRequest)
    app.addHook('onResponse', async (request, reply) => {
      onRequest({
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: reply.elapsedTime,
      });
    });
}

/** `/files/<rel>`: a regular file under the folder, streamed, with an ETag; anything else 404. */
function fileRoutes(app: FastifyInstance, ctx: ServeContext): void {
  // GET and HEAD declared together: fastify's automatic HEAD route would reset content-length to 0.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/files/*',
    handler: async (request, reply) => {
      const rel = relParam((request.params as { '*'?: string })['*'] ?? '');
      const abs = rel === null || rel === '' ? null : await ctx.inside(rel);
      const info = abs ? await stat(abs).catch(() => null) : null;
      if (!abs || !info?.isFile()) return notFound(request, reply, 'No such file in the served folder.');
      const type = FILE_TYPES[extname(abs).toLowerCase()] ?? 'application/octet-stream';
      const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
      reply
        .header('content-security-policy', FILE_CSP)
        .header('etag', etag)
        .header('last-modified', info.mtime.toUTCString())
        .type(type);
      if (type === 'application/octet-stream') reply.header('content-disposition', 'attachment');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      reply.header('content-length', info.size);
      if (request.method === 'HEAD') return reply.send();
      return reply.send(createReadStream(abs));
    },
  });
}

/** `/assets/<name>`: the app's own style sheet, scripts and icon (from memory). */
function assetRoutes(app: FastifyInstance): void {
  app.get('/assets/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    const asset = ASSETS.get(name);
    if (!asset) return notFound(request, reply, 'No such asset.');
    const versioned = (request.query as { v?: string }).v === ASSET_VERSION;
    reply.header('cache-control', versioned ? 'public, max-age=31536000, immutable' : 'no-cache');
    return reply.type(asset.type).send(asset.body);
  });
  app.get('/favicon.ico', async (_request, reply) =>
    reply
      .type('image/svg+xml')
      .header('cache-control', 'public, max-age=86400')
      .send(ASSETS.get('favicon.svg')!.body),
  );
}

/** The web app, ready to listen (tests use `app.inject` or listen on port 0). */
export async function createServer(options: ServeOptions): Promise<MedsynthServer> {
  const ctx = await folderContext(options.dir);
  const index = new FolderIndex(ctx, options.index);
  const version = options.version === undefined ? await packageVersion() : options.version;
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    bodyLimit: 256 * 1024,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 2000 },
  });
  securityHooks(app, options.host ?? DEFAULT_HOST, options.onRequest);
  app.setNotFoundHandler((request, reply) => notFound(request, reply));
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status =
      typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600
        ? error.statusCode
        : isMedsynthError(error) && error.exitCode === 2
          ? 422
          : 500;
    return sendError(request, reply, status, error.message);
  });
  fileRoutes(app, ctx);
  assetRoutes(app);
  const parts = [browseRoutes({ index, version }), ...(options.parts ?? (await defaultParts()))];
  for (const part of parts) await app.register(async (scope) => part(scope, ctx));
  await app.ready();
  return { app, ctx, index };
}

/** `host` as it goes in a URL (`[::1]`). */
const urlHost = (host: string) => (isIP(host) === 6 ? `[${host}]` : host);

/**
 * Creates the app, reads the folder once (so the first page is quick) and listens. A `ConfigError` when the
 * port is taken, needs privileges, or the host is not an address of this machine.
 */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const server = await createServer(options);
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError('not a port number', {
      field: '--port',
      expected: 'an integer 0–65535 (0: any free port)',
      found: String(port),
    });
  await server.index.snapshot();
  try {
    await server.app.listen({ host, port });
  } catch (e) {
    await server.app.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new ConfigError(
        `port ${port} on ${host} is already in use (another medsynth serve, or another program): choose another with --port <number>, or --port 0 for any free port`,
        { field: '--port', found: String(port), cause: e },
      );
    if (code === 'EACCES')
      throw new ConfigError(
        `port ${port} needs privileges on this machine: choose one above 1023 with --port`,
        {
          field: '--port',
          found: String(port),
          cause: e,
        },
      );
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      throw new ConfigError(`cannot listen on ${host}: not an address of this machine`, {
        field: '--host',
        found: host,
        cause: e,
      });
    throw e;
  }
  const address = server.app.server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    ...server,
    host,
    port: bound,
    url: `http://${urlHost(host === '0.0.0.0' || host === '::' ? 'localhost' : host)}:${bound}/`,
    close: () => server.app.close(),
  };
}
