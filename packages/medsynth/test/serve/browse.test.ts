// The browsing pages of `medsynth serve` on real outputs made here (browse-fixture.ts): a tiny run trained on
// PneumoniaMNIST, an evaluation of its images with an embedding map, and the report's sample study. Each page
// is checked against the files it shows (counts, values, links), not against hard-coded numbers.
import assert from 'node:assert/strict';
import { appendFile, cp, mkdir, readdir, readFile, rm, stat as statFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp, { type OutputInfo } from 'sharp';
import type { EmbeddingMap } from '../../src/metrics/embedding-map.js';
import { stat } from '../../src/report/format.js';
import type { FolderSnapshot } from '../../src/serve/discover.js';
import { createServer, type MedsynthServer } from '../../src/serve/server.js';
import { enc, makeServeFolder, type ServeFolder } from './browse-fixture.js';

let f: ServeFolder;
let server: MedsynthServer;

before(async () => {
  f = await makeServeFolder('medsynth-browse-');
  // freshMs 0: every request looks at the disk again (the mtime checks decide what is re-read).
  server = await createServer({ dir: f.root, parts: [], index: { freshMs: 0 } });
});

after(async () => {
  await server?.app.close();
  if (f) await rm(f.root, { recursive: true, force: true });
});

const get = (url: string, headers: Record<string, string> = {}) =>
  server.app.inject({ method: 'GET', url, headers });

const decodeAttr = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

interface Tick {
  readonly tick: number;
  readonly step: number;
  readonly kimg: number;
  readonly dLoss: number;
  readonly seconds: number;
}
interface EvaluationFile {
  readonly records: readonly {
    readonly metric: string;
    readonly comparison: string;
    readonly class: string | null;
    readonly values: Readonly<Record<string, number | null>>;
  }[];
}
interface ResultsFile {
  readonly conditions: readonly string[];
  readonly jobs: readonly unknown[];
  readonly verdicts: readonly { readonly text: string }[];
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** The index as the JSON API gives it. */
const index = async () => (await get('/api/index')).json() as FolderSnapshot;

async function statsLines(runDir: string): Promise<Tick[]> {
  return (await readFile(join(runDir, 'stats.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Tick);
}

const sampleGrids = async (runDir: string) =>
  (await readdir(join(runDir, 'samples'))).filter((n) => /^step-\d+\.png$/.test(n)).sort();

const fidOf = (ev: EvaluationFile, comparison: string) =>
  ev.records.find((r) => r.metric === 'fid' && r.comparison === comparison && r.class === null)!.values.fid;

test('the index lists the run, the evaluation and the study with the numbers in their files', async () => {
  assert.equal((await get('/api/index')).statusCode, 200);
  const snap = await index();
  const result = await readJson<{ kimg: number }>(join(f.runDir, 'result.json'));
  const ticks = await statsLines(f.runDir);
  const run = snap.runs.find((x) => x.rel === f.runRel);
  assert.ok(run, `the run ${f.runRel} is listed`);
  assert.equal(run.status, 'finished');
  assert.equal(run.kimg, result.kimg);
  assert.equal(run.ticks, ticks.length);
  assert.equal(run.dLoss, ticks[ticks.length - 1]!.dLoss);
  assert.equal(run.samples, (await sampleGrids(f.runDir)).length);
  assert.deepEqual(run.classNames, ['normal', 'pneumonia']);
  assert.equal(run.study, null);

  const ev = await readJson<EvaluationFile>(join(f.evalDir, 'evaluation.json'));
  const e = snap.evaluations.find((x) => x.rel === f.evalRel);
  assert.ok(e, 'the evaluation is listed');
  assert.equal(e.fid, fidOf(ev, 'fake'));
  assert.equal(e.fidFloor, fidOf(ev, 'floor'));
  assert.equal(e.fakeRun, f.runRel, 'the evaluation knows the run that made its images');
  assert.equal(e.hasEmbedding, true);

  const results = await readJson<ResultsFile>(join(f.studyDir, 'results.json'));
  const s = snap.studies.find((x) => x.rel === f.studyRel);
  assert.ok(s, 'the study is listed');
  assert.equal(s.finished, true);
  assert.equal(s.conditions, results.conditions.length);
  assert.equal(s.jobs, results.jobs.length);
  assert.deepEqual(
    s.verdicts,
    results.verdicts.map((v) => v.text),
  );
  // The study's two training runs (stats.jsonl and result.json, no options.json) belong to it.
  const inside = snap.runs.filter((x) => x.study === f.studyRel);
  assert.equal(inside.length, 2);
  assert.ok(inside.every((x) => x.rel.startsWith(`${f.studyRel}/generators/cgan/seed-0/`)));
  assert.ok(!snap.runs.some((x) => x.rel.includes('.cache')), 'hidden folders are not walked');

  const page = await get('/');
  assert.equal(page.statusCode, 200);
  assert.match(page.headers['content-type'] as string, /text\/html/);
  for (const href of [
    `/runs/${enc(f.runRel)}`,
    `/evaluations/${enc(f.evalRel)}`,
    `/studies/${enc(f.studyRel)}`,
  ])
    assert.ok(page.body.includes(`href="${href}"`), `the index links ${href}`);
  assert.ok(page.body.includes(`>${stat(fidOf(ev, 'fake'))}<`), 'the FID is shown');
});

test('run page: one grid per tick on the timeline, the loss curve, the evaluation of its images', async () => {
  const r = await get(`/runs/${enc(f.runRel)}`);
  assert.equal(r.statusCode, 200);
  const grids = await sampleGrids(f.runDir);
  assert.ok(grids.length >= 3, `${grids.length} grids`);
  const m = /data-ticks="([^"]*)"/.exec(r.body);
  assert.ok(m, 'the timeline carries its ticks');
  const ticks = JSON.parse(decodeAttr(m[1]!)) as [string, string][];
  assert.equal(ticks.length, grids.length);
  const lines = await statsLines(f.runDir);
  for (const [k, [url, label]] of ticks.entries()) {
    assert.equal(url, `/files/${enc(f.runRel)}/samples/${grids[k]}`);
    const step = Number(/step-(\d+)/.exec(grids[k]!)![1]);
    const tick = lines.find((t) => t.step === step)!;
    assert.ok(label.includes(`step ${step}`) && label.includes(`${stat(tick.kimg)} kimg`), label);
    const png = await get(url);
    assert.equal(png.statusCode, 200);
    assert.deepEqual(png.rawPayload, await readFile(join(f.runDir, 'samples', grids[k]!)));
  }
  assert.ok((r.body.match(/class="marks"/g) ?? []).length >= 1, 'a Vega chart is drawn');
  assert.ok(r.body.includes(`href="/evaluations/${enc(f.evalRel)}"`), 'links the evaluation of its images');
  for (const name of ['normal', 'pneumonia'])
    assert.ok(r.body.includes(`>${name}</span>`), `row label ${name}`);
  assert.ok(r.body.includes('src="/assets/run.js?v='), 'loads the timeline script');

  const api = (await get(`/api/runs/${enc(f.runRel)}`)).json();
  assert.equal(api.ticks.length, lines.length);
  assert.equal(api.timeline.length, grids.length);
  assert.equal(api.options.model, 'cgan');
});

test('evaluation page: the metric table, its pictures, and the embedding map link', async () => {
  const r = await get(`/evaluations/${enc(f.evalRel)}`);
  assert.equal(r.statusCode, 200);
  const ev = await readJson<EvaluationFile>(join(f.evalDir, 'evaluation.json'));
  for (const comparison of ['fake', 'floor', 'noise'])
    assert.ok(r.body.includes(`>${stat(fidOf(ev, comparison))}<`), `FID of ${comparison}`);
  const images = [...r.body.matchAll(/<img src="([^"]+)"/g)].map((x) => decodeAttr(x[1]!));
  const expected = [
    'real-grid.png',
    'fake-grid.png',
    'privacy-closest-features.png',
    'privacy-closest-pixels.png',
  ];
  assert.deepEqual(
    images.map((u) => u.split('/').pop()),
    expected,
  );
  for (const url of images) {
    const png = await get(url);
    assert.equal(png.statusCode, 200, url);
    assert.equal(png.headers['content-type'], 'image/png');
  }
  assert.ok(r.body.includes(`href="/evaluations/${enc(f.evalRel)}/-/embedding"`));
  const privacy = ev.records.filter((x) => x.metric === 'privacy');
  assert.equal(
    (r.body.match(/class="marks"/g) ?? []).length,
    privacy.length,
    'a histogram per privacy record',
  );
  const api = (await get(`/api/evaluations/${enc(f.evalRel)}`)).json();
  assert.equal(api.evaluation.records.length, ev.records.length);
});

test('embedding map: a point per embedded image, and a point’s image is its cell of the thumbnail sheet', async () => {
  const map = await readJson<EmbeddingMap>(join(f.evalDir, 'embedding.json'));
  const r = await get(`/evaluations/${enc(f.evalRel)}/-/embedding`);
  assert.equal(r.statusCode, 200);
  const circles = [
    ...r.body.matchAll(/<circle class="k\d (real|synthetic)"[^>]*data-set="([^"]+)" data-index="(\d+)"/g),
  ];
  assert.equal(circles.length, map.points.length);
  assert.equal(
    circles.filter((c) => c[1] === 'synthetic').length,
    map.points.filter((p) => map.sets.find((s) => s.key === p.set)!.role === 'synthetic').length,
  );
  assert.ok(r.body.includes('data-umap="') === (map.umap !== null));
  const sheet = map.thumbnails;
  assert.ok(sheet, 'the evaluation saved thumbnails');
  const file = join(f.evalDir, sheet.file);
  for (const i of [0, Math.floor(map.points.length / 2), map.points.length - 1]) {
    const p = map.points[i]!;
    const res = await get(
      `/evaluations/${enc(f.evalRel)}/-/image/${encodeURIComponent(p.set)}/${p.index}.png`,
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/png');
    const got = await sharp(res.rawPayload).raw().toBuffer({ resolveWithObject: true });
    const want: { data: Buffer; info: OutputInfo } = await sharp(file)
      .extract({
        left: (i % sheet.columns) * sheet.cellWidth,
        top: Math.floor(i / sheet.columns) * sheet.cellHeight,
        width: sheet.cellWidth,
        height: sheet.cellHeight,
      })
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.equal(got.info.width, sheet.cellWidth);
    assert.equal(got.info.channels, want.info.channels);
    assert.ok(got.data.equals(want.data), `image ${i} is cell ${i} of the sheet`);
  }
  const set = map.points[0]!.set;
  const missing = await get(`/evaluations/${enc(f.evalRel)}/-/image/${set}/999999.png`);
  assert.equal(missing.statusCode, 404);
  assert.equal((await get(`/evaluations/${enc(f.evalRel)}/-/nothing`)).statusCode, 404);
});

test('study page: the report’s sections, and links to the study’s runs', async () => {
  const results = await readJson<ResultsFile>(join(f.studyDir, 'results.json'));
  const r = await get(`/studies/${enc(f.studyRel)}`);
  assert.equal(r.statusCode, 200);
  for (const id of ['answer', 'study', 'generators', 'downstream', 'charts'])
    assert.ok(r.body.includes(`id="${id}"`), `section ${id}`);
  const verdicts = /<ul class="verdicts">([\s\S]*?)<\/ul>/g;
  const items = [...r.body.matchAll(verdicts)].reduce((n, m) => n + (m[1]!.match(/<li>/g) ?? []).length, 0);
  assert.equal(items, results.verdicts.length);
  assert.ok((r.body.match(/class="marks"/g) ?? []).length >= 5, 'the report’s charts are drawn');
  const runs = (await index()).runs.filter((x) => x.study === f.studyRel);
  for (const run of runs) {
    assert.ok(r.body.includes(`href="/runs/${enc(run.rel)}"`), `links ${run.rel}`);
    const page = await get(`/runs/${enc(run.rel)}`);
    assert.equal(page.statusCode, 200);
    assert.ok(page.body.includes('class="marks"'), 'its loss curve from stats.jsonl');
  }
  // A second request is served from the cache (same body, report made once).
  const again = await get(`/studies/${enc(f.studyRel)}`);
  assert.equal(again.body, r.body);
});

test('raw files: exact bytes, HEAD, ETag revalidation, a sandboxed policy; folders and unknown types', async () => {
  const url = `/files/${enc(f.runRel)}/options.json`;
  const bytes = await readFile(join(f.runDir, 'options.json'));
  const r = await get(url);
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.rawPayload, bytes);
  assert.match(r.headers['content-type'] as string, /^application\/json/);
  assert.match(r.headers['content-security-policy'] as string, /^sandbox;/);
  const head = await server.app.inject({ method: 'HEAD', url });
  assert.equal(head.statusCode, 200);
  assert.equal(Number(head.headers['content-length']), bytes.length);
  assert.equal(head.rawPayload.length, 0);
  const etag = r.headers['etag'] as string;
  assert.equal((await get(url, { 'if-none-match': etag })).statusCode, 304);
  assert.equal((await get(`/files/${enc(f.runRel)}`)).statusCode, 404, 'a folder is not a file');
  const ckpt = (await readdir(join(f.runDir, 'checkpoints'))).find((n) => n.startsWith('step-'))!;
  const bin = (await readdir(join(f.runDir, 'checkpoints', ckpt))).find((n) => n.endsWith('.bin'))!;
  const b = await get(`/files/${enc(f.runRel)}/checkpoints/${ckpt}/${bin}`);
  assert.equal(b.statusCode, 200);
  assert.equal(b.headers['content-type'], 'application/octet-stream');
  assert.equal(b.headers['content-disposition'], 'attachment');
});

test('the index follows the folder: a new tick, a run that resumed, a new run (modification times)', async () => {
  const live = join(f.root, 'runs', 'live');
  await cp(f.runDir, live, { recursive: true });
  let snap = await index();
  const before = snap.runs.find((x) => x.rel === 'runs/live');
  assert.ok(before, 'a copied run appears');
  assert.equal(before.status, 'finished');
  const lines = await statsLines(live);
  const last = lines[lines.length - 1]!;
  // A resumed run: result.json goes, ticks are appended.
  await rm(join(live, 'result.json'));
  await appendFile(
    join(live, 'stats.jsonl'),
    `${JSON.stringify({ ...last, tick: last.tick + 1, kimg: 9.5 })}\n`,
  );
  snap = await index();
  const now = snap.runs.find((x) => x.rel === 'runs/live')!;
  assert.equal(now.kimg, 9.5);
  assert.equal(now.ticks, last.tick + 1);
  assert.equal(now.status, 'running');
  // An untouched entry keeps its object between scans (nothing re-read).
  const a = await server.index.snapshot();
  const b = await server.index.snapshot();
  assert.equal(
    a.evaluations.find((x) => x.rel === f.evalRel),
    b.evaluations.find((x) => x.rel === f.evalRel),
  );
  await rm(live, { recursive: true });
  snap = await index();
  assert.ok(!snap.runs.some((x) => x.rel === 'runs/live'), 'a removed run disappears');
  assert.ok((await statFile(f.runDir)).isDirectory());
});

test('a federated run: rounds as ticks, losses averaged over the sites, a grid per round', async () => {
  const dir = join(f.root, 'runs', 'fed');
  await cp(f.runDir, dir, { recursive: true });
  await rm(join(dir, 'stats.jsonl'));
  await rm(join(dir, 'samples'), { recursive: true });
  await mkdir(join(dir, 'samples'));
  const grid = await readFile(join(f.runDir, 'samples', 'latest.png'));
  const rounds = [1, 2, 3].map((round) => ({
    round,
    kimg: round * 4.8,
    examples: 4800,
    seconds: { round: 10 + round },
    siteMetrics: {
      'site-1': { dLoss: 1 + round, gLoss: 2, imagesPerSecond: 100 },
      'site-2': { dLoss: 2 + round, gLoss: 4, imagesPerSecond: 100 },
    },
  }));
  await writeFile(join(dir, 'rounds.jsonl'), rounds.map((r) => `${JSON.stringify(r)}\n`).join(''));
  for (const r of rounds)
    await writeFile(join(dir, 'samples', `round-${String(r.round).padStart(5, '0')}.png`), grid);
  await writeFile(
    join(dir, 'result.json'),
    JSON.stringify({ runDir: dir, rounds: 3, kimg: 14.4, seconds: 36, sites: ['site-1', 'site-2'] }),
  );
  const run = (await index()).runs.find((x) => x.rel === 'runs/fed')!;
  assert.equal(run.federated, true);
  assert.equal(run.status, 'finished');
  assert.deepEqual(run.problems, []);
  assert.equal(run.kimg, 14.4);
  assert.equal(run.ticks, 3);
  assert.equal(run.dLoss, (1 + 3 + (2 + 3)) / 2);
  assert.equal(run.gLoss, 3);
  const api = (await get('/api/runs/runs/fed')).json() as {
    ticks: Tick[];
    timeline: { unit: string; kimg: number }[];
  };
  assert.deepEqual(
    api.ticks.map((t) => t.seconds),
    [11, 11 + 12, 11 + 12 + 13],
  );
  assert.deepEqual(
    api.timeline.map((t) => [t.unit, t.kimg]),
    rounds.map((r) => ['round', r.kimg]),
  );
  const page = await get('/runs/runs/fed');
  assert.ok(page.body.includes(`round 3 · ${stat(14.4)} kimg`));
  assert.ok(page.body.includes('class="marks"'), 'the loss curve over rounds');
  await rm(dir, { recursive: true });
});
