// The live-generation routes on their own fastify instance (no browser): the export served over HTTP loads
// back with tfjs-layers into the run's own images; nothing is written into the served folder; the nearest-real
// search set follows the run's training subset (here: one class) and the cap; the page escapes what run files
// say; paths outside the folder, unknown checkpoints and non-runs are 404s.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import Fastify, { type FastifyInstance } from 'fastify';
import { latents, sampleImages } from '../../src/generate/sample.js';
import { loadTfjsSampler, parseGeneratorMeta } from '../../src/generate/tfjs-generator.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { escapeHtml } from '../../src/report/markup.js';
import { serveContext } from '../../src/serve/context.js';
import { encodeRel } from '../../src/serve/pages/shell.js';
import { generateRoutes, NEAREST_CAP } from '../../src/serve/routes/generate.js';
import { loadGenerator } from '../../src/training/load-run.js';
import { trainGan } from '../../src/training/loop.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

let root: string;
let app: FastifyInstance;
let rel: string;
let runDir: string;

const tiny = tinyTrainOptions(() => ({ outDir: join(root, 'runs'), kimg: 0.032, tickKimg: 0.016 }));

/** Every file under `dir` with its size and modification time. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    const s = await stat(p);
    out.push(`${relative(dir, p)} ${s.size} ${s.mtimeMs}`);
  }
  return out.sort();
}

before(async () => {
  await selectBackend();
  root = await mkdtemp(join(tmpdir(), 'medsynth-generate-routes-'));
  // A single-class dcgan: the search set must hold that class only.
  const run = await trainGan(tiny({ model: 'dcgan', trainClass: 'pneumonia' }));
  // A folder name the page must escape.
  runDir = join(root, 'runs', `one <b>class &"'`);
  await rename(run.runDir, runDir);
  rel = relative(root, runDir).split('\\').join('/');
  app = Fastify();
  await generateRoutes(app, await serveContext(root));
  await app.ready();
});

after(async () => {
  await app?.close();
  await rm(root, { recursive: true, force: true });
});

const api = () => `/api/generate/${encodeRel(rel)}/-/`;

test('the export over HTTP loads back and makes the run’s images; the folder is left untouched', async () => {
  const before = await listing(root);
  const metaRes = await app.inject(`${api()}generator.json`);
  assert.equal(metaRes.statusCode, 200);
  const meta = parseGeneratorMeta(metaRes.json());
  assert.equal(meta.family, 'dcgan');
  assert.deepEqual(meta.classNames, ['pneumonia']);
  const base = `${api()}model/${encodeURIComponent(meta.checkpoint)}/`;
  const modelRes = await app.inject(`${base}model.json`);
  assert.equal(modelRes.statusCode, 200);
  const model = modelRes.json() as tf.io.ModelJSON;
  assert.deepEqual(model.weightsManifest[0]!.paths, ['weights.bin']);
  const weightsRes = await app.inject(`${base}weights.bin`);
  assert.equal(weightsRes.statusCode, 200);
  const etag = weightsRes.headers['etag'] as string;
  assert.equal(
    (await app.inject({ url: `${base}weights.bin`, headers: { 'if-none-match': etag } })).statusCode,
    304,
  );
  const w = weightsRes.rawPayload;
  const loaded = await loadTfjsSampler(
    tf.io.fromMemory({
      modelTopology: model.modelTopology,
      weightSpecs: model.weightsManifest[0]!.weights,
      weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
    }),
    meta,
  );
  const { generator } = await loadGenerator(runDir);
  try {
    const items = [0, 1, 2].map((seed) => ({ seed, label: 0 }));
    assert.deepEqual(
      (await sampleImages(loaded, items, { truncation: 0.5 })).data,
      (await sampleImages(generator, items, { truncation: 0.5 })).data,
    );
    assert.equal(latents([0], meta.zDim).length, meta.zDim);
  } finally {
    loaded.dispose();
    generator.dispose();
  }
  // The search set, and one of its images at the run's size.
  const realsRes = await app.inject(`${api()}reals.json`);
  assert.equal(realsRes.statusCode, 200);
  const info = realsRes.json() as {
    count: number;
    total: number;
    labels: number[];
    classNames: string[];
    side: number;
    channels: number;
    ids: string[];
  };
  // PneumoniaMNIST's train split has 3494 pneumonia images: capped, seeded.
  assert.equal(info.total, 3494);
  assert.equal(info.count, NEAREST_CAP);
  assert.deepEqual(info.classNames, ['pneumonia']);
  assert.ok(info.labels.every((l) => l === 0));
  assert.equal(new Set(info.ids).size, info.count);
  const bin = await app.inject(`${api()}reals.bin`);
  assert.equal(bin.rawPayload.length, info.count * info.side * info.side * info.channels);
  const png = await app.inject(`${api()}reals/${info.count - 1}.png`);
  assert.equal(png.statusCode, 200);
  assert.equal(png.headers['content-type'], 'image/png');
  assert.equal((await app.inject(`${api()}reals/${info.count}.png`)).statusCode, 404);
  assert.deepEqual(await listing(root), before, 'nothing was written into the served folder');
});

test('the page: escaped run strings, scripts from this server only, no inline script or handlers', async () => {
  const res = await app.inject(`/generate/${encodeRel(rel)}`);
  assert.equal(res.statusCode, 200);
  const html = res.body;
  assert.ok(!html.includes('<b>class'), 'the run name is escaped');
  assert.match(html, /one &lt;b&gt;class &amp;&quot;&#39;/);
  const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.equal(scripts.length, 1);
  assert.match(scripts[0]![1]!, /src="\/generate\/-\/app\.js\?v=/);
  assert.equal(scripts[0]![2]!.trim(), '', 'no inline script');
  assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
  const js = await app.inject('/generate/-/app.js');
  assert.equal(js.statusCode, 200);
  assert.match(js.headers['content-type'] as string, /javascript/);
  assert.ok(js.body.length > 100_000, 'the bundle holds TF.js');
  assert.doesNotMatch(js.body, /from\s*["']node:/, 'no Node imports in the browser bundle');
  const wasm = await app.inject('/generate/-/wasm/tfjs-backend-wasm-simd.wasm');
  assert.equal(wasm.statusCode, 200);
  assert.equal(wasm.headers['content-type'], 'application/wasm');
  const index = await app.inject('/generate');
  assert.ok(
    index.body.includes(`href="${escapeHtml(`/generate/${encodeRel(rel)}`)}"`),
    'the index links the run',
  );
});

test('refusals: outside the folder, not a run, no checkpoint, a bad checkpoint name', async () => {
  const empty = join(root, 'runs', 'not-started');
  await mkdir(join(empty, 'checkpoints'), { recursive: true });
  await writeFile(join(empty, 'options.json'), '{}');
  for (const url of [
    '/generate/..%2F..%2Fetc',
    '/generate/runs',
    '/api/generate/runs/-/generator.json',
    `/api/generate/${encodeRel(rel)}/-/model/..%2F..%2Fx/model.json`,
    `/api/generate/${encodeRel(rel)}/-/model/step-9999999/model.json`,
    `/api/generate/${encodeRel(rel)}/-/nothing`,
    '/generate/-/wasm/package.json',
  ]) {
    const res = await app.inject(url);
    assert.ok(res.statusCode === 404, `${url}: ${res.statusCode}`);
  }
  const noCheckpoint = await app.inject('/api/generate/runs/not-started/-/generator.json');
  assert.equal(noCheckpoint.statusCode, 422);
  assert.match((noCheckpoint.json() as { error: string }).error, /no checkpoint/);
  const page = await app.inject('/generate/runs/not-started');
  assert.equal(page.statusCode, 422);
});
