/**
 * Live generation in the browser (`medsynth serve`, GET only). A run's sampling generator — what
 * `medsynth generate` samples from: G_ema of the latest checkpoint — is exported in TF.js layers format and
 * the page runs it on the user's GPU (TF.js WebGL) or CPU (WebAssembly), picking class, seed, count and
 * truncation ψ, interpolating between two seeds, with each image's nearest real training image beside it.
 *
 * Addresses (`<rel>`: the run folder's path under the served folder, each segment URL-encoded):
 *   /generate                                  the runs that can generate (links)
 *   /generate/<rel>                            the page
 *   /api/generate/<rel>/-/generator.json       the export's generator.json (latest checkpoint, or ?checkpoint=)
 *   /api/generate/<rel>/-/model/<ckpt>/model.json, …/weights.bin   the export (layers format)
 *   /api/generate/<rel>/-/reals.json, …/reals.bin                    the nearest-neighbour search set
 *   /api/generate/<rel>/-/reals/<i>.png        search image i at the run's size
 *   /generate/-/app.js, /generate/-/app.css, /generate/-/wasm/<tfjs-backend-wasm*.wasm>   the page's files
 *
 * Exports are made on first request and kept in memory (the four most recent, keyed by run, checkpoint and
 * the checkpoint's modification time): nothing is written, so a read-only run folder works, and a newer
 * checkpoint is picked up by the next page load. The search set for nearest real images is made once per run
 * and kept (the eight most recent): the run's train split (only the images and class it trained on, as
 * `options.json` says), a seeded sample of at most `NEAREST_CAP` of them, loaded as training loaded them (run
 * size and channels, 8-bit), reduced to ≤ 32 px by box averaging (serve/browser/nearest.ts). The page script is
 * bundled with esbuild into memory when the routes are registered (from the TypeScript source, or from the
 * compiled JavaScript in a built package), so `serve` works both ways with no build step of its own.
 *
 * Every path goes through `ServeContext.inside`; strings from run files reach the page through `h` (escaped)
 * or `textContent`; the page runs under the server's Content-Security-Policy (scripts from this server only,
 * `'wasm-unsafe-eval'` for TF.js's WebAssembly backend, no inline script).
 */
import { createHash } from 'node:crypto';
import { access, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { encodePng } from '../../data/image/grid.js';
import type { Dataset, Split } from '../../data/dataset.js';
import { openDataset } from '../../data/source.js';
import { exportTfjsGenerator, tfjsModelJson } from '../../generate/tfjs-export.js';
import type { TfjsGeneratorMeta } from '../../generate/tfjs-generator.js';
import { h, type Html } from '../../report/markup.js';
import { describeBackend, selectBackend } from '../../runtime/backend.js';
import { isMedsynthError } from '../../runtime/errors.js';
import { Rng } from '../../runtime/random.js';
import { findCheckpoint, loadCheckpoint } from '../../training/checkpoint.js';
import { readRunOptions } from '../../training/loop.js';
import { boxDownsample, nearestFactor } from '../browser/nearest.js';
import type { ServeContext, ServeRoutes } from '../context.js';
import { FolderIndex } from '../discover.js';
import { encodeRel, page } from '../pages/shell.js';
import { notFound, relParam } from './browse.js';

/** Real training images searched for the nearest one, at most (a seeded sample when the run has more). */
export const NEAREST_CAP = 2000;
/** Exports and search sets kept in memory. */
const EXPORTS_KEPT = 4;
const REALS_KEPT = 8;
/** Most images in one grid, frames in one interpolation (as the page script). */
const MAX_COUNT = 64;
const MAX_FRAMES = 32;

const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

// ---------------------------------------------------------------------------------------------------------
// Small caches

/** A map that forgets its oldest entries beyond `max`; a failed promise is forgotten at once. */
class PromiseCache<T> {
  readonly #map = new Map<string, Promise<T>>();
  constructor(readonly max: number) {}

  get(key: string, make: () => Promise<T>): Promise<T> {
    const hit = this.#map.get(key);
    if (hit) {
      this.#map.delete(key);
      this.#map.set(key, hit);
      return hit;
    }
    const p = make();
    this.#map.set(key, p);
    p.catch(() => {
      if (this.#map.get(key) === p) this.#map.delete(key);
    });
    while (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value!);
    return p;
  }
}

interface ExportEntry {
  readonly meta: TfjsGeneratorMeta;
  readonly metaJson: string;
  readonly modelJson: string;
  readonly weights: Buffer;
  readonly etag: string;
}

interface RealsEntry {
  readonly json: string;
  readonly bin: Buffer;
  /** The searched images (for one at full size), and how to load them. */
  readonly split: Split;
  readonly size: number;
  readonly channels: 1 | 3;
  /** Search images already sent at full size, as PNG. */
  readonly pngs: PromiseCache<Buffer>;
}

let backendReady: Promise<unknown> | null = null;

/** A TF.js backend for building and serialising networks (the one selected already, else the best). */
function ensureBackend(): Promise<unknown> {
  if (describeBackend() !== undefined) return Promise.resolve();
  backendReady ??= selectBackend().catch((e: unknown) => {
    backendReady = null;
    throw e;
  });
  return backendReady;
}

// ---------------------------------------------------------------------------------------------------------
// The page script, bundled once per process.

interface Bundle {
  readonly js: string;
  readonly css: string;
  readonly etag: string;
}

let bundled: Promise<Bundle> | null = null;

/** The page script's entry: the TypeScript source beside this file's source, or the compiled JavaScript. */
async function entryPoint(): Promise<string> {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const name of ['generate-page.ts', 'generate-page.js']) {
    const file = join(here, '..', 'browser', name);
    if (
      await access(file).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  throw new Error(`the live-generation page script is missing beside ${here}`);
}

function bundle(): Promise<Bundle> {
  bundled ??= (async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      entryPoints: [await entryPoint()],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
    });
    const js = result.outputFiles[0]!.text;
    return {
      js,
      css: PAGE_CSS,
      etag: `"${createHash('sha256').update(js).update(PAGE_CSS).digest('hex').slice(0, 20)}"`,
    };
  })().catch((e: unknown) => {
    bundled = null;
    throw e;
  });
  return bundled;
}

const require = createRequire(import.meta.url);

/** The folder of tfjs-backend-wasm's `.wasm` files. */
function wasmDir(): string {
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
}

// ---------------------------------------------------------------------------------------------------------
// Runs

/** A run folder under the root: `options.json` and `checkpoints/` inside it. */
async function runFolder(ctx: ServeContext, rel: string): Promise<string | null> {
  const abs = await ctx.inside(rel);
  if (!abs) return null;
  const options = await ctx.inside(posix.join(rel, 'options.json'));
  const checkpoints = await ctx.inside(posix.join(rel, 'checkpoints'));
  if (!options || !checkpoints) return null;
  const [o, c] = await Promise.all([stat(options).catch(() => null), stat(checkpoints).catch(() => null)]);
  return o?.isFile() && c?.isDirectory() ? abs : null;
}

/** A checkpoint folder of the run, by name (the latest when `name` is undefined), inside the root. */
async function checkpointFolder(ctx: ServeContext, rel: string, abs: string, name?: string): Promise<string> {
  const missing = () =>
    Object.assign(new Error(`no checkpoint ${name ?? ''} in this run`), { statusCode: 404 });
  if (name !== undefined) {
    if (!/^\w[\w.-]{0,99}$/.test(name)) throw missing();
    const inside = await ctx.inside(posix.join(rel, 'checkpoints', name));
    if (!inside || !(await stat(join(inside, 'checkpoint.json')).catch(() => null))) throw missing();
    return inside;
  }
  const found = await findCheckpoint(abs);
  const inside = await ctx.inside(posix.join(rel, 'checkpoints', basename(found)));
  if (!inside) throw missing();
  return inside;
}

async function exportOf(cache: PromiseCache<ExportEntry>, checkpoint: string): Promise<ExportEntry> {
  const mtime = (await stat(join(checkpoint, 'checkpoint.json'))).mtimeMs;
  return cache.get(`${checkpoint}\0${mtime}`, async () => {
    await ensureBackend();
    const exp = await exportTfjsGenerator(dirname(dirname(checkpoint)), { checkpoint });
    const weights = Buffer.from(exp.weightData);
    const etag = `"${createHash('sha256').update(weights).update(JSON.stringify(exp.meta)).digest('hex').slice(0, 20)}"`;
    return {
      meta: exp.meta,
      metaJson: JSON.stringify(exp.meta),
      modelJson: JSON.stringify(tfjsModelJson(exp)),
      weights,
      etag,
    };
  });
}

/** The nearest-neighbour search set of a run (see the module header). */
async function buildReals(runDir: string, checkpoint: string): Promise<RealsEntry> {
  const options = await readRunOptions(runDir);
  const head = await loadCheckpoint(checkpoint, []);
  const { size, channels } = head.state.spec as unknown as { size: number; channels: 1 | 3 };
  const runClasses = head.state.classNames;
  const ds: Dataset = await openDataset(options.data);
  const train = ds.split('train');
  const listed = options.trainImages ? new Set(options.trainImages) : null;
  const classIndex = options.trainClass ? ds.classNames.indexOf(options.trainClass) : -1;
  const positions: number[] = [];
  for (let i = 0; i < train.size; i++) {
    if (listed && !listed.has(train.id(i))) continue;
    if (options.trainClass && train.labels[i] !== classIndex) continue;
    positions.push(i);
  }
  if (positions.length === 0) throw new Error("none of the run's training images are in its data any more");
  const chosen =
    positions.length > NEAREST_CAP
      ? Rng.derive(options.seed, 'serve-nearest')
          .shuffle(positions.slice())
          .slice(0, NEAREST_CAP)
          .sort((a, b) => a - b)
      : positions;
  const split = train.subset(chosen, 'train[nearest]');
  const images = await split.load({ size, channels, bitDepth: 8 });
  const factor = nearestFactor(size);
  const side = size / factor;
  const bin = boxDownsample(images.data, images.count, size, channels, factor);
  const names = ds.classNames;
  const info = {
    count: images.count,
    total: positions.length,
    size,
    side,
    factor,
    channels,
    classNames: runClasses,
    labels: Array.from(split.labels, (l) => (options.trainClass ? 0 : runClasses.indexOf(names[l]!))),
    ids: Array.from({ length: split.size }, (_, i) => split.id(i)),
    space:
      factor === 1
        ? `Euclidean distance between the 8-bit pixels at ${size}×${size}`
        : `Euclidean distance between the 8-bit images averaged over ${factor}×${factor} blocks (${size} → ${side} px)`,
  };
  return {
    json: JSON.stringify(info),
    bin: Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength),
    split,
    size,
    channels,
    pngs: new PromiseCache<Buffer>(256),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Pages

const PAGE_CSS = `
#live .kv { margin-bottom: 6px; }
#live form { display: flex; flex-wrap: wrap; align-items: end; gap: 8px 16px; margin: 10px 0; padding: 10px 12px;
  background: var(--bg-soft, #f5f7f9); border-radius: 6px; }
#live form label { display: flex; flex-direction: column; font-size: 0.85rem; color: var(--muted, #5b6670); gap: 2px; }
#live form input[type=number] { width: 8em; font: inherit; padding: 2px 4px; }
#live form select { font: inherit; padding: 2px 4px; max-width: 16em; }
#live form input[type=range] { width: 10em; }
#live form output { font-variant-numeric: tabular-nums; color: var(--fg, #1d2329); }
#live form button { font-weight: 600; padding: 4px 16px; }
#live [role=status] { min-height: 1.4em; color: var(--muted, #5b6670); font-variant-numeric: tabular-nums; }
#live[data-state=error] [role=status] { color: var(--bad-fg, #9b1c13); font-weight: 600; }
#live canvas.px, #live img.px { image-rendering: pixelated; width: 96px; height: 96px; background: #000; display: block; }
.gen-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 12px; margin: 8px 0 18px; }
figure.pair { margin: 0; padding: 6px; border: 1px solid var(--line, #dde2e6); border-radius: 6px; }
figure.pair .imgs { display: flex; gap: 6px; }
figure.pair .nearest { width: 96px; height: 96px; display: flex; align-items: center; justify-content: center;
  background: var(--bg-soft, #f5f7f9); color: var(--muted, #5b6670); outline: 1px dashed var(--line, #dde2e6); }
figure.pair figcaption { font-size: 0.8rem; margin-top: 4px; line-height: 1.3; overflow-wrap: anywhere; }
figure.pair figcaption small { display: block; color: var(--muted, #5b6670); }
.strip { display: flex; flex-wrap: wrap; gap: 4px; margin: 8px 0; }
.strip canvas.px { width: 64px; height: 64px; cursor: pointer; }
.frame-row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.frame-row input[type=range] { flex: 1 1 260px; }
#frame-view figure.pair .px, #frame-view figure.pair .nearest { width: 192px; height: 192px; }
#frame-view figure.pair { display: inline-block; }
.pairs-legend { color: var(--muted, #5b6670); font-size: 0.85rem; }
`;

const FAMILY_NAMES: Readonly<Record<string, string>> = {
  dcgan: 'DCGAN (unconditional)',
  cgan: 'conditional GAN',
  acgan: 'AC-GAN',
  stylegan2: 'StyleGAN2',
  pggan: 'progressive GAN',
  ddpm: 'diffusion model (DDIM)',
};

interface PageFacts {
  readonly family: string;
  readonly size: number;
  readonly channels: number;
  readonly classNames: readonly string[];
  readonly conditional: boolean;
  readonly checkpoint: string;
  readonly step: number;
  readonly kimg: number;
  readonly truncation: 'z' | 'w';
  readonly sampling: { steps: number; guidance: number; scheduleSteps: number } | null;
}

function facts(
  spec: Record<string, unknown>,
  state: { classNames: readonly string[]; step: number; nimg: number },
  dir: string,
): PageFacts {
  const family = String(spec['family']);
  const numClasses = Number(spec['numClasses']);
  const conditional =
    family === 'stylegan2' ? spec['conditional'] === true : family === 'dcgan' ? false : numClasses > 1;
  const sampling = spec['sampling'] as { steps: number; guidance: number } | undefined;
  return {
    family,
    size: Number(spec['size']),
    channels: Number(spec['channels']),
    classNames: state.classNames,
    conditional,
    checkpoint: basename(dir),
    step: state.step,
    kimg: state.nimg / 1000,
    truncation: family === 'stylegan2' ? 'w' : 'z',
    sampling:
      family === 'ddpm' && sampling
        ? { steps: sampling.steps, guidance: sampling.guidance, scheduleSteps: Number(spec['scheduleSteps']) }
        : null,
  };
}

function generatePage(rel: string, f: PageFacts, bundle: Bundle): string {
  const api = `/api/generate/${encodeRel(rel)}/-/`;
  const classField: Html = f.conditional
    ? h`<label>class <select id="class" name="class">${f.classNames.map((c, i) => h`<option value="${i}">${c}</option>`)}</select></label>`
    : h`<p class="pairs-legend">unconditional: one model for all classes</p>`;
  const ddpmFields: Html | '' = f.sampling
    ? h`<label>DDIM steps <input type="number" id="steps" name="steps" min="1" max="${f.sampling.scheduleSteps}" step="1" value="${f.sampling.steps}"></label>
<label>guidance <input type="number" id="guidance" name="guidance" min="0" max="20" step="0.5" value="${f.sampling.guidance}"></label>`
    : '';
  const truncation =
    f.truncation === 'w'
      ? 'ψ pulls each image’s w toward its class’s mean w (StyleGAN’s truncation trick)'
      : f.family === 'ddpm'
        ? 'ψ scales the initial noise'
        : 'ψ scales z toward 0, the mean of its prior';
  const body = h`<link rel="stylesheet" href="/generate/-/app.css?v=${bundle.etag.replace(/"/g, '')}">
<section id="live" data-api="${api}" data-assets="/generate/-/wasm/" data-state="loading">
<h1>Live generation <code>${rel || '.'}</code></h1>
<p class="lead">Images are generated here, in this browser, by the run’s ${f.family === 'ddpm' ? 'denoiser' : 'generator'} exported to TF.js — on <output id="backend">…</output>. Seed <i>s</i> of class <i>c</i> is the image <code>medsynth generate --seeds s</code> makes.</p>
<div class="kv">
<div><b>${FAMILY_NAMES[f.family] ?? f.family}</b><span>family</span></div>
<div><b>${f.size}×${f.size}${f.channels === 3 ? ' RGB' : ''}</b><span>image size</span></div>
<div><b>${f.checkpoint}</b><span>checkpoint (${f.kimg.toFixed(1)} kimg)</span></div>
<div><b>${f.classNames.length}</b><span>classes: ${f.classNames.join(', ')}</span></div>
</div>
<form id="controls" autocomplete="off">
${classField}
<label>first seed <input type="number" id="seed" name="seed" min="0" max="4294967295" step="1" value="0"></label>
<label>images <input type="number" id="count" name="count" min="1" max="${MAX_COUNT}" step="1" value="16"></label>
<label>truncation ψ <span><input type="range" id="psi" name="psi" min="0.05" max="1" step="0.05" value="1"> <output id="psi-out">1.00</output></span></label>
${ddpmFields}
<button type="submit" id="generate" disabled>Generate</button>
</form>
<p class="pairs-legend">${truncation}. Each image is shown with, to its right, the nearest real training image. <span id="nearest-note">Loading the real images…</span></p>
<p id="status" role="status" aria-live="polite">Loading…</p>
<div id="grid" class="gen-grid"></div>
<h2>Interpolation</h2>
<p class="pairs-legend">Frames along the great circle between the two seeds’ latents (spherical interpolation, slerp, in z; it keeps |z| near √zDim where the generator was trained), with the class and ψ above. The first and last frames are the two seeds’ images.</p>
<form id="interp" autocomplete="off">
<label>seed A <input type="number" id="seed-a" name="a" min="0" max="4294967295" step="1" value="0"></label>
<label>seed B <input type="number" id="seed-b" name="b" min="0" max="4294967295" step="1" value="1"></label>
<label>frames <input type="number" id="frames" name="frames" min="2" max="${MAX_FRAMES}" step="1" value="9"></label>
<button type="submit" id="interpolate" disabled>Interpolate</button>
</form>
<p id="interp-status" role="status" aria-live="polite"></p>
<div id="strip" class="strip"></div>
<div class="frame-row"><input type="range" id="frame" min="0" max="0" step="1" value="0" disabled aria-label="frame"> <output id="frame-out"></output></div>
<div id="frame-view"></div>
</section>`;
  return page({
    title: `live generation: ${rel || '.'}`,
    body,
    scripts: [`/generate/-/app.js?v=${bundle.etag.replace(/"/g, '')}`],
    crumbs: [
      { label: 'runs', href: '/#runs' },
      { label: rel || '.', href: `/runs/${encodeRel(rel)}` },
      { label: 'live generation' },
    ],
  });
}

function indexBody(
  runs: readonly { rel: string; model: string | null; size: number | null; checkpoints: number }[],
): Html {
  const usable = runs.filter((r) => r.checkpoints > 0);
  const rows = usable.map(
    (r) =>
      h`<li><a href="/generate/${encodeRel(r.rel)}">${r.rel}</a> <small>${r.model ?? '?'}, ${r.size ?? '?'} px</small></li>`,
  );
  return h`<h1>Live generation</h1>
<p class="lead">Pick a training run: its generator runs in this browser.</p>
${usable.length > 0 ? h`<ul>${rows}</ul>` : h`<p class="empty">No run with a checkpoint in the served folder.</p>`}`;
}

// ---------------------------------------------------------------------------------------------------------

const wildcard = (request: FastifyRequest): string => (request.params as { '*'?: string })['*'] ?? '';

function sendJsonError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ error: message }));
}

/** An error from making an export or a search set: the user's problem (422) or the server's (500). */
function failure(reply: FastifyReply, e: unknown): FastifyReply {
  const status = (e as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number') return sendJsonError(reply, status, (e as Error).message);
  return sendJsonError(reply, isMedsynthError(e) ? 422 : 500, (e as Error).message);
}

/** `generateRoutes`: see the module header. */
export const generateRoutes: ServeRoutes = async (app, ctx) => {
  const exports = new PromiseCache<ExportEntry>(EXPORTS_KEPT);
  const realsCache = new PromiseCache<RealsEntry>(REALS_KEPT);
  const index = new FolderIndex(ctx);
  // Bundle now, in the background, so the first page is quick; a failure is reported when the script is asked for.
  bundle().catch(() => undefined);

  app.get('/generate/-/app.js', async (request, reply) => {
    const b = await bundle();
    reply.header('etag', b.etag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === b.etag) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(b.js);
  });
  app.get('/generate/-/app.css', async (request, reply) => {
    const b = await bundle();
    reply.header('etag', b.etag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === b.etag) return reply.code(304).send();
    return reply.type('text/css; charset=utf-8').send(b.css);
  });
  app.get('/generate/-/wasm/:name', async (request, reply) => {
    const { name } = request.params as { name: string };
    if (!WASM_FILES.includes(name)) return notFound(request, reply, 'No such file.');
    const body = await readFile(join(wasmDir(), name));
    return reply.type('application/wasm').header('cache-control', 'public, max-age=86400').send(body);
  });

  const runsIndex = async (reply: FastifyReply) => {
    const snap = await index.snapshot();
    return reply.type('text/html; charset=utf-8').send(
      page({
        title: 'live generation',
        body: indexBody(snap.runs),
        crumbs: [{ label: 'live generation' }],
      }),
    );
  };
  app.get('/generate', async (_request, reply) => runsIndex(reply));

  app.get('/generate/*', async (request, reply) => {
    const rel = relParam(wildcard(request));
    if (rel === '') return runsIndex(reply);
    const abs = rel === null ? null : await runFolder(ctx, rel);
    if (rel === null || abs === null) return notFound(request, reply, 'No training run at this address.');
    let pageFacts: PageFacts;
    try {
      const dir = await checkpointFolder(ctx, rel, abs);
      const head = await loadCheckpoint(dir, []);
      pageFacts = facts(head.state.spec as Record<string, unknown>, head.state, dir);
    } catch (e) {
      reply.code(isMedsynthError(e) ? 422 : 500);
      const body = h`<h1>Live generation <code>${rel}</code></h1><p class="warning">${(e as Error).message}</p>`;
      return reply
        .type('text/html; charset=utf-8')
        .send(page({ title: 'live generation', body, crumbs: [{ label: 'live generation' }] }));
    }
    const b = await bundle();
    return reply.type('text/html; charset=utf-8').send(generatePage(rel, pageFacts, b));
  });

  app.get('/api/generate/*', async (request, reply) => {
    const raw = wildcard(request);
    const at = raw.lastIndexOf('/-/');
    const rel = at >= 0 ? relParam(raw.slice(0, at)) : null;
    const sub = at >= 0 ? raw.slice(at + 3) : '';
    const abs = rel === null || rel === '' ? null : await runFolder(ctx, rel);
    if (rel === null || abs === null) return notFound(request, reply, 'No training run at this address.');
    try {
      if (sub === 'generator.json') {
        const which = (request.query as { checkpoint?: string }).checkpoint;
        const exp = await exportOf(exports, await checkpointFolder(ctx, rel, abs, which));
        return reply.type('application/json; charset=utf-8').send(exp.metaJson);
      }
      const model = /^model\/([^/]+)\/(model\.json|weights\.bin)$/.exec(sub);
      if (model) {
        const exp = await exportOf(exports, await checkpointFolder(ctx, rel, abs, model[1]!));
        reply.header('etag', exp.etag).header('cache-control', 'private, no-cache');
        if (request.headers['if-none-match'] === exp.etag) return reply.code(304).send();
        if (model[2] === 'model.json')
          return reply.type('application/json; charset=utf-8').send(exp.modelJson);
        return reply.type('application/octet-stream').send(exp.weights);
      }
      const realsFile = /^reals\.(json|bin)$/.exec(sub);
      const realImage = /^reals\/(\d{1,6})\.png$/.exec(sub);
      if (realsFile || realImage) {
        const checkpoint = await checkpointFolder(ctx, rel, abs);
        const reals = await realsCache.get(abs, () => buildReals(abs, checkpoint));
        reply.header('cache-control', 'private, max-age=300');
        if (realsFile?.[1] === 'json') return reply.type('application/json; charset=utf-8').send(reals.json);
        if (realsFile) return reply.type('application/octet-stream').send(reals.bin);
        const i = Number(realImage![1]);
        if (i >= reals.split.size) return notFound(request, reply, 'No such real image.');
        const png = await reals.pngs.get(String(i), async () => {
          const one = await reals.split
            .subset([i])
            .load({ size: reals.size, channels: reals.channels, bitDepth: 8 });
          return encodePng({ width: one.width, height: one.height, channels: one.channels, data: one.data });
        });
        return reply.type('image/png').send(png);
      }
    } catch (e) {
      return failure(reply, e);
    }
    return notFound(request, reply, 'No such live-generation resource.');
  });
};
