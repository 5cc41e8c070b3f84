// The reader study's routes over HTTP (fastify inject) on a tiny real cGAN run: the session's design (balanced
// per class, seeded, opaque ids, the truth never sent), storing answers, resume, the stored design pinning the
// images across a restart, the security of the one write endpoint (refusals write nothing), a read-only
// folder, settings from reader-study.json, a study folder, escaping, and the results JSON.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { pngSize } from '../../src/report/load.js';
import { FileSystemError } from '../../src/runtime/errors.js';
import { readerOrder } from '../../src/serve/reader/design.js';
import { readerRoutesWith } from '../../src/serve/routes/reader.js';
import { createServer } from '../../src/serve/server.js';
import { ReaderStore } from '../../src/serve/reader/store.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import { PNEUMONIA_28 } from '../helpers/tiny-train.js';
import { copyRun, readDb, readerApp, type TinyRoot, tinyRoot } from './reader-fixture.js';

let t: TinyRoot;
let app: FastifyInstance;

before(async () => {
  t = await tinyRoot();
  app = await readerApp(t.root, { defaults: { perClass: 3 } });
});
after(async () => {
  await app?.close();
  if (t) await rm(t.root, { recursive: true, force: true });
});

const enc = (rel: string) => rel.split('/').map(encodeURIComponent).join('/');

interface Next {
  reader: string;
  total: number;
  answered: number;
  done: boolean;
  item: { id: string; image: string; className?: string } | null;
}

async function next(a: FastifyInstance, rel: string, reader: string): Promise<Next> {
  const res = await a.inject({ url: `/api/reader/${enc(rel)}/next?reader=${encodeURIComponent(reader)}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Next>();
}

function post(a: FastifyInstance, rel: string, body: unknown, headers: Record<string, string> = {}) {
  return a.inject({
    method: 'POST',
    url: `/api/reader/${enc(rel)}/answers`,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const dbOf = (rel: string) => join(t.root, ...rel.split('/'), 'reader-study.sqlite');

describe('the session', () => {
  test('before any answer: the truth is in no page or JSON, images look alike, and refused posts write nothing', async () => {
    const rel = await copyRun(t, 'fresh/run-a');
    const first = await next(app, rel, 'alice');
    assert.equal(first.total, 12, '3 real + 3 synthetic in each of 2 classes');
    assert.equal(first.answered, 0);
    assert.deepEqual(Object.keys(first).sort(), ['answered', 'done', 'item', 'reader', 'total']);
    assert.deepEqual(Object.keys(first.item!).sort(), ['className', 'id', 'image']);
    assert.match(first.item!.id, /^[0-9a-f]{16}$/);
    assert.ok(['normal', 'pneumonia'].includes(first.item!.className!));

    // Every page and JSON a reader can fetch before answering.
    const texts = [
      (await app.inject({ url: `/reader/${enc(rel)}` })).body,
      (await app.inject({ url: `/reader/${enc(rel)}?reader=alice` })).body,
      (await app.inject({ url: `/reader/${enc(rel)}/results` })).body,
      (await app.inject({ url: `/api/reader/${enc(rel)}/results` })).body,
      (await app.inject({ url: '/reader/' })).body,
      JSON.stringify(first),
    ];
    for (const text of texts) assert.doesNotMatch(text, /"truth"|seed \d+|train\[\d+\]|synthetic seed/);
    assert.ok(!texts.slice(0, 5).some((x) => x.includes(first.item!.id)), 'no page lists item ids');

    // The first picture now; every picture once the items are stored (below): the same PNG header for all.
    const headers = new Set<string>();
    const id = first.item!.id;
    const png = await app.inject({ url: first.item!.image });
    assert.equal(png.statusCode, 200);
    assert.equal(png.headers['content-type'], 'image/png');
    assert.equal(png.headers['cache-control'], 'no-store');
    assert.deepEqual(pngSize(png.rawPayload), { width: 28, height: 28 });
    headers.add(png.rawPayload.subarray(24, 26).toString('hex'));

    // Refused answers: nothing written (no database file appears).
    const good = { reader: 'alice', item: id, call: 'real', confidence: 3, ms: 1200 };
    const refusals: [string, Awaited<ReturnType<typeof post>>, number][] = [
      ['unknown item', await post(app, rel, { ...good, item: '0123456789abcdef' }), 400],
      ['malformed item id', await post(app, rel, { ...good, item: '../../x' }), 400],
      ['bad JSON', await post(app, rel, '{"reader": "alice", '), 400],
      ['oversized body', await post(app, rel, { ...good, pad: 'x'.repeat(5000) }), 413],
      ['unknown field', await post(app, rel, { ...good, truth: 'real' }), 400],
      ['confidence out of range', await post(app, rel, { ...good, confidence: 6 }), 400],
      ['bad call', await post(app, rel, { ...good, call: 'maybe' }), 400],
      ['bad reader name', await post(app, rel, { ...good, reader: '<script>x</script>' }), 400],
      ['empty reader name', await post(app, rel, { ...good, reader: '   ' }), 400],
      ['cross-site origin', await post(app, rel, good, { origin: 'http://evil.example' }), 403],
      ['cross-site fetch', await post(app, rel, good, { 'sec-fetch-site': 'cross-site' }), 403],
      [
        'not JSON',
        await app.inject({
          method: 'POST',
          url: `/api/reader/${enc(rel)}/answers`,
          headers: { 'content-type': 'text/plain' },
          payload: JSON.stringify(good),
        }),
        415,
      ],
      ['outside the root', await post(app, '..%2F..%2Fetc', good), 404],
      ['not a run', await post(app, 'fresh', good), 404],
    ];
    for (const [what, res, code] of refusals) assert.equal(res.statusCode, code, `${what}: ${res.body}`);
    assert.match(refusals[0]![1].json<{ error: string }>().error, /unknown item/);
    assert.ok(!existsSync(dbOf(rel)), 'no refused answer created the database');

    // The first accepted answer creates it.
    const ok = await post(app, rel, good);
    assert.equal(ok.statusCode, 201, ok.body);
    assert.ok(existsSync(dbOf(rel)));
    const db = readDb(join(t.root, 'fresh', 'run-a'));
    assert.equal(db.answers.length, 1);
    assert.deepEqual(
      { ...db.answers[0], answered_at: undefined },
      { reader: 'alice', item: id, call: 'real', confidence: 3, ms: 1200, answered_at: undefined },
    );
    // Now every item's picture: the same PNG header for real and synthetic.
    for (const item of db.items) {
      const res = await app.inject({ url: `/api/reader/${enc(rel)}/image/${item.id}` });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(pngSize(res.rawPayload), { width: 28, height: 28 });
      headers.add(res.rawPayload.subarray(24, 26).toString('hex'));
    }
    assert.equal(headers.size, 1, `one bit depth and colour type for all: ${[...headers].join(', ')}`);
    assert.equal(
      (await app.inject({ url: `/api/reader/${enc(rel)}/image/0123456789abcdef` })).statusCode,
      404,
    );
  });

  test('design: balanced per class, seeded, stored with the first answer; answers stored one per (reader, item)', async () => {
    const rel = await copyRun(t, 'fresh/run-b');
    const seenIds: string[] = [];
    let state = await next(app, rel, 'bob');
    const calls = ['real', 'synthetic', 'synthetic', 'real'] as const;
    for (let i = 0; !state.done; i++) {
      seenIds.push(state.item!.id);
      const res = await post(app, rel, {
        reader: 'bob',
        item: state.item!.id,
        call: calls[i % 4],
        confidence: 1 + (i % 5),
        ms: 500 + i,
      });
      assert.equal(res.statusCode, 201, res.body);
      state = res.json<{ next: Next }>().next;
      assert.equal(state.answered, i + 1);
    }
    assert.equal(seenIds.length, 12);
    assert.equal(new Set(seenIds).size, 12, 'each item once');
    const db = readDb(join(t.root, 'fresh', 'run-b'));
    assert.deepEqual(
      db.answers.map((a) => a.item),
      seenIds,
    );
    assert.deepEqual(
      db.answers.map((a) => a.call),
      seenIds.map((_, i) => calls[i % 4]),
    );
    // Per class: 3 real + 3 synthetic.
    for (const k of [0, 1])
      for (const truth of ['real', 'synthetic'])
        assert.equal(
          db.items.filter((it) => it.class_index === k && it.truth === truth).length,
          3,
          `class ${k} ${truth}`,
        );
    assert.equal(new Set(db.items.map((it) => it.sha256)).size, 12, 'twelve different pictures');
    // Bob's order is the seeded per-reader permutation of the items.
    assert.deepEqual(
      seenIds,
      readerOrder(
        db.items.map((it) => it.id),
        0,
        'bob',
      ),
    );
    const design = db.design as {
      settings: { perClass: number; seed: number };
      classNames: string[];
      source: { kind: string; runs: { checkpoint: string }[] };
    };
    assert.deepEqual([design.settings.perClass, design.settings.seed], [3, 0]);
    assert.deepEqual(design.classNames, ['normal', 'pneumonia']);
    assert.equal(design.source.kind, 'run');
    assert.match(design.source.runs[0]!.checkpoint, /\S/);

    // Same item twice: 409, the first answer kept.
    const again = await post(app, rel, {
      reader: 'bob',
      item: seenIds[0],
      call: 'synthetic',
      confidence: 5,
      ms: 1,
    });
    assert.equal(again.statusCode, 409);
    const after = readDb(join(t.root, 'fresh', 'run-b'));
    assert.equal(after.answers.length, 12);
    assert.equal(after.answers[0]!.call, 'real');

    // Another reader sees the same items in another order.
    const carol = await next(app, rel, 'carol');
    assert.equal(carol.total, 12);
    const carolOrder = readerOrder(
      db.items.map((it) => it.id),
      0,
      'carol',
    );
    assert.equal(carol.item!.id, carolOrder[0]);
    assert.notDeepEqual(carolOrder, seenIds);
  });

  test('resume: a reader who comes back continues at the next unanswered item, also after a restart', async () => {
    const rel = await copyRun(t, 'fresh/run-c');
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await next(app, rel, 'dana');
      got.push(s.item!.id);
      assert.equal(
        (await post(app, rel, { reader: 'dana', item: s.item!.id, call: 'real', confidence: 2, ms: null }))
          .statusCode,
        201,
      );
    }
    const back = await next(app, rel, 'dana');
    assert.equal(back.answered, 3);
    // A fresh server (other defaults even): the stored design wins, the same ids, the same place.
    const restarted = await readerApp(t.root, { defaults: { perClass: 5, seed: 9 } });
    try {
      const again = await next(restarted, rel, 'dana');
      assert.equal(again.total, 12);
      assert.equal(again.answered, 3);
      assert.equal(again.item!.id, back.item!.id);
      const img1 = await app.inject({ url: `/api/reader/${enc(rel)}/image/${got[0]}` });
      const img2 = await restarted.inject({ url: `/api/reader/${enc(rel)}/image/${got[0]}` });
      assert.ok(img1.rawPayload.equals(img2.rawPayload), 'the same picture after a restart');
    } finally {
      await restarted.close();
    }
    // A name is trimmed and its spaces collapsed: " dana " is dana.
    assert.equal((await next(app, rel, '  dana ')).answered, 3);
  });

  test('seeds decide the design: another seed, other images', async () => {
    const relA = await copyRun(t, 'seeds/a');
    const relB = await copyRun(t, 'seeds/b');
    await writeFile(join(t.root, 'seeds', 'b', 'reader-study.json'), JSON.stringify({ seed: 7 }));
    const a = await app.inject({ url: `/api/reader/${enc(relA)}/next?reader=x` });
    const b = await app.inject({ url: `/api/reader/${enc(relB)}/next?reader=x` });
    assert.notEqual(a.json<Next>().item!.id, b.json<Next>().item!.id);
    // Same settings in another folder copy: the very same ids (the design does not depend on the path).
    const relC = await copyRun(t, 'seeds/c');
    const c = await app.inject({ url: `/api/reader/${enc(relC)}/next?reader=x` });
    assert.equal(a.json<Next>().item!.id, c.json<Next>().item!.id);
  });
});

describe('settings, folders and errors', () => {
  test('reader-study.json: fewer images, class hidden; an invalid file is a clear error', async () => {
    const rel = await copyRun(t, 'settings/hidden');
    await writeFile(
      join(t.root, 'settings', 'hidden', 'reader-study.json'),
      JSON.stringify({ perClass: 2, showClass: false }),
    );
    const s = await next(app, rel, 'eve');
    assert.equal(s.total, 8);
    assert.deepEqual(Object.keys(s.item!).sort(), ['id', 'image']);

    const bad = await copyRun(t, 'settings/bad');
    await writeFile(join(t.root, 'settings', 'bad', 'reader-study.json'), JSON.stringify({ perClass: 0 }));
    const res = await app.inject({ url: `/api/reader/${enc(bad)}/next?reader=eve` });
    assert.equal(res.statusCode, 422);
    assert.match(
      res.json<{ error: string }>().error,
      /reader-study\.json \[perClass\]: invalid reader-study setting/,
    );
    const page = await app.inject({ url: `/reader/${enc(bad)}` });
    assert.equal(page.statusCode, 422);
    assert.match(page.body, /perClass/);

    const tooMany = await copyRun(t, 'settings/too-many');
    await writeFile(
      join(t.root, 'settings', 'too-many', 'reader-study.json'),
      JSON.stringify({ perClass: 400, realSplit: 'val' }),
    );
    const r2 = await app.inject({ url: `/api/reader/${enc(tooMany)}/next?reader=eve` });
    assert.equal(r2.statusCode, 422);
    assert.match(
      r2.json<{ error: string }>().error,
      /class "normal" has 135 real images, fewer than the 400 per class/,
    );
  });

  test('a study folder: the instance generator against the study’s real data', async () => {
    const studyDir = join(t.root, 'studies', 's1');
    await mkdir(studyDir, { recursive: true });
    const config = resolveStudyConfig({
      preset: 'tiny',
      data: { source: PNEUMONIA_28 },
      generators: [{ name: 'mine', run: t.runDir }],
      conditions: ['real', 'real+synthetic:1'],
    });
    await writeFile(
      join(studyDir, 'study.json'),
      JSON.stringify({ format: 'medsynth-study', version: 2, config }),
    );
    const s = await next(app, 'studies/s1', 'frank');
    assert.equal(s.total, 12);
    assert.equal(
      (
        await post(app, 'studies/s1', {
          reader: 'frank',
          item: s.item!.id,
          call: 'real',
          confidence: 4,
          ms: 10,
        })
      ).statusCode,
      201,
    );
    const db = readDb(studyDir);
    const design = db.design as { source: { kind: string; description: string; realSplit: string } };
    assert.equal(design.source.kind, 'study');
    assert.match(design.source.description, /mine\/seed-0\/all/);
    assert.match(design.source.realSplit, /train/);
    await writeFile(
      join(t.root, 'studies', 's1', 'reader-study.json'),
      JSON.stringify({ generator: 'nope' }),
    );
    // The stored design wins over the settings file once answers exist: still served.
    assert.equal((await next(app, 'studies/s1', 'frank')).answered, 1);
  });

  test('not a study folder, bad encoding, traversal: 404 / 400, no file outside the root', async () => {
    assert.equal((await app.inject({ url: '/reader/nothing-here' })).statusCode, 404);
    assert.equal((await app.inject({ url: '/reader/%E0%A4%A' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/reader/..%2F..%2F..%2Fetc/next?reader=x' })).statusCode, 404);
    assert.equal((await app.inject({ url: '/api/reader/%2E%2E/%2E%2E/next?reader=x' })).statusCode, 404);
    assert.equal((await app.inject({ url: `/api/reader/${enc(t.rel)}/whatever` })).statusCode, 404);
    assert.equal((await app.inject({ url: '/reader/-/nope.js' })).statusCode, 404);
    const js = await app.inject({ url: '/reader/-/reader.js' });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
  });

  test('names and paths are escaped in pages', async () => {
    const rel = await copyRun(t, 'odd/x<b>&"y');
    const start = await app.inject({ url: `/reader/${enc(rel)}` });
    assert.equal(start.statusCode, 200);
    assert.ok(start.body.includes('x&lt;b&gt;&amp;&quot;y'));
    assert.ok(!start.body.includes('x<b>'));
    const session = await app.inject({
      url: `/reader/${enc(rel)}?reader=${encodeURIComponent("Ann O'Neil")}`,
    });
    assert.equal(session.statusCode, 200);
    assert.ok(session.body.includes('data-reader="Ann O&#39;Neil"'));
    const refused = await app.inject({
      url: `/reader/${enc(rel)}?reader=${encodeURIComponent('<img src=x>')}`,
    });
    assert.equal(refused.statusCode, 400);
    assert.ok(refused.body.includes('&lt;img src=x&gt;'));
    assert.ok(!refused.body.includes('<img src=x>'));
  });

  test('a read-only folder: the store says so; the start page and the POST refuse before anyone starts', async (tc) => {
    assert.throws(
      () => ReaderStore.openWrite('/proc'),
      (e: unknown) => e instanceof FileSystemError && /read-only/.test(e.message),
    );
    const rel = await copyRun(t, 'readonly/run');
    const dir = join(t.root, 'readonly', 'run');
    const s = await next(app, rel, 'gus');
    // Permissions do not stop root: there the folder is made immutable (chattr +i) when the file system allows.
    const root = process.getuid?.() === 0;
    const lock = (on: boolean) =>
      root
        ? spawnSync('chattr', [on ? '+i' : '-i', dir]).status === 0
        : (chmodSync(dir, on ? 0o555 : 0o755), true);
    const locked = lock(true);
    try {
      if (!locked) {
        tc.skip(
          'running as root where chattr +i is not available: the page and POST checks need a read-only folder',
        );
        return;
      }
      const page = await app.inject({ url: `/reader/${enc(rel)}?reader=gus` });
      assert.match(page.body, /read-only, so answers cannot be stored/);
      assert.doesNotMatch(page.body, /id="reader-session"/);
      const res = await post(app, rel, {
        reader: 'gus',
        item: s.item!.id,
        call: 'real',
        confidence: 3,
        ms: 5,
      });
      assert.equal(res.statusCode, 503);
      assert.match(res.json<{ error: string }>().error, /read-only/);
      assert.ok(!existsSync(join(dir, 'reader-study.sqlite')));
    } finally {
      if (locked) lock(false);
    }
  });

  test('results JSON: per reader, κ between readers, verdict; the index counts answers', async () => {
    const rel = await copyRun(t, 'results/run');
    const answerAll = async (reader: string, rule: (i: number) => 'real' | 'synthetic') => {
      let s = await next(app, rel, reader);
      for (let i = 0; !s.done; i++) {
        const res = await post(app, rel, { reader, item: s.item!.id, call: rule(i), confidence: 3, ms: 100 });
        s = res.json<{ next: Next }>().next;
      }
    };
    await answerAll('r1', (i) => (i % 2 === 0 ? 'real' : 'synthetic'));
    await answerAll('r2', (i) => (i % 3 === 0 ? 'real' : 'synthetic'));
    const res = await app.inject({ url: `/api/reader/${enc(rel)}/results` });
    assert.equal(res.statusCode, 200);
    const body = res.json<{
      folder: string;
      design: { items: number };
      stats: {
        readers: { reader: string; answered: number; accuracy: { k: number; n: number } }[];
        cohen: { kappa: number | null; n: number }[];
        fleiss: { n: number };
        verdict: { kind: string };
      };
    }>();
    assert.equal(body.folder, rel);
    assert.equal(body.design.items, 12);
    assert.deepEqual(
      body.stats.readers.map((r) => [r.reader, r.answered]),
      [
        ['r1', 12],
        ['r2', 12],
      ],
    );
    // Accuracy from the stored truth, counted here by hand.
    const db = readDb(join(t.root, 'results', 'run'));
    const truth = new Map(db.items.map((it) => [it.id, it.truth]));
    for (const r of body.stats.readers) {
      const right = db.answers.filter((a) => a.reader === r.reader && truth.get(a.item) === a.call).length;
      assert.deepEqual([r.accuracy.k, r.accuracy.n], [right, 12]);
    }
    assert.equal(body.stats.cohen[0]!.n, 12);
    assert.equal(body.stats.fleiss.n, 12);
    assert.ok(['chance', 'distinguishable'].includes(body.stats.verdict.kind));
    const index = await app.inject({ url: '/reader/' });
    assert.equal(index.statusCode, 200);
    assert.ok(index.body.includes(`href="/reader/${enc(rel)}"`));
    assert.match(
      index.body,
      /results\/run<\/a><\/td><td>training run<\/td>\s*<td class="num">2<\/td><td class="num">24<\/td>/,
    );
  });
});

describe('inside the app (server.ts)', () => {
  test('the reader part behind the app’s hooks: answers stored; foreign origins, other methods, big bodies refused', async () => {
    const rel = await copyRun(t, 'app/run');
    const { app: whole } = await createServer({
      dir: t.root,
      parts: [readerRoutesWith({ defaults: { perClass: 3 } })],
    });
    try {
      const host = { host: '127.0.0.1:8765' };
      const s = await whole.inject({ url: `/api/reader/${enc(rel)}/next?reader=hana`, headers: host });
      assert.equal(s.statusCode, 200, s.body);
      assert.match(String(s.headers['content-security-policy']), /script-src 'self'/);
      const item = s.json<Next>().item!.id;
      const body = { reader: 'hana', item, call: 'synthetic', confidence: 2, ms: 900 };
      const send = (method: 'POST' | 'PUT', payload: string, headers: Record<string, string> = {}) =>
        whole.inject({
          method,
          url: `/api/reader/${enc(rel)}/answers`,
          headers: { ...host, 'content-type': 'application/json', ...headers },
          payload,
        });
      assert.equal(
        (await send('POST', JSON.stringify(body), { origin: 'http://evil.example' })).statusCode,
        403,
      );
      assert.equal((await send('PUT', JSON.stringify(body))).statusCode, 405);
      const big = await send('POST', JSON.stringify({ ...body, pad: 'x'.repeat(4000) }));
      assert.equal(big.statusCode, 413);
      assert.match(big.json<{ error: string }>().error, /body|large/i);
      assert.ok(!existsSync(dbOf(rel)), 'nothing written by the refusals');
      const ok = await send('POST', JSON.stringify(body), { origin: 'http://127.0.0.1:8765' });
      assert.equal(ok.statusCode, 201, ok.body);
      assert.deepEqual(
        readDb(join(t.root, 'app', 'run')).answers.map((a) => [a.reader, a.item, a.call, a.confidence, a.ms]),
        [['hana', item, 'synthetic', 2, 900]],
      );
      const page = await whole.inject({ url: `/reader/${enc(rel)}/results`, headers: host });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /Reader study results/);
    } finally {
      await whole.close();
    }
  });
});
