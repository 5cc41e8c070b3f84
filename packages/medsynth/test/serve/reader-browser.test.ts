// The reader study end to end in headless Chromium (Debian's `chromium`, or $CHROMIUM_PATH): the app's server
// (server.ts: its security hooks and Content-Security-Policy) on 127.0.0.1, port 0, with the reader study's part; two readers type their names and go through a
// 12-image session (one by mouse, one by keyboard, reloading half-way to resume); the answers are read back from
// the SQLite file and must be exactly the clicks; the results page must show the Cohen's κ and Fleiss' κ
// computed here by hand from the clicks; no console error, page error, failed request or error response
// anywhere. Screenshots of the start, session and results pages go to $MEDSYNTH_SHOTS (default a temporary
// folder), printed as test diagnostics. On CI (CI set) a missing Chromium fails the test; elsewhere it skips.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { readerRoutesWith } from '../../src/serve/routes/reader.js';
import { type RunningServer, startServer } from '../../src/serve/server.js';
import { copyRun, kappaByHand, readDb, type TinyRoot, tinyRoot } from './reader-fixture.js';
import { findChromium, NO_CHROMIUM } from '../helpers/chromium.js';

let t: TinyRoot;
let server: RunningServer;
let base: string;
let shots: string;

before(async () => {
  t = await tinyRoot();
  // The app's own server (security hooks, Content-Security-Policy, assets), with the reader study's part only.
  server = await startServer({
    dir: t.root,
    port: 0,
    parts: [readerRoutesWith({ defaults: { perClass: 3 } })],
  });
  base = server.url.replace(/\/$/, '');
  shots = process.env['MEDSYNTH_SHOTS'] ?? (await mkdtemp(join(tmpdir(), 'medsynth-reader-shots-')));
  await mkdir(shots, { recursive: true });
});
after(async () => {
  await server?.close();
  if (t) await rm(t.root, { recursive: true, force: true });
});

interface Click {
  readonly item: string;
  readonly call: 'real' | 'synthetic';
  readonly confidence: number;
}

/** Records every problem a page shows: console errors and warnings, page errors, failed or error responses. */
function watch(page: Page, problems: string[], who: string): void {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn')
      problems.push(`${who}: console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who}: page error: ${String(e)}`));
  page.on('requestfailed', (r) =>
    problems.push(`${who}: request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`),
  );
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${who}: HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:'))
      problems.push(`${who}: request outside: ${r.url()}`);
  });
}

/** Waits for the next image (a new item shown and answerable); returns its id. */
async function nextItem(page: Page, previous: string): Promise<string> {
  await page.waitForFunction(
    `(() => { const s = document.getElementById('reader-session'); return s.dataset.state === 'ready' && s.dataset.item && s.dataset.item !== ${JSON.stringify(previous)}; })()`,
    { timeout: 60_000 },
  );
  return (await page.evaluate(`document.getElementById('reader-session').dataset.item`)) as string;
}

async function progressText(page: Page): Promise<string> {
  return (await page.evaluate(`document.getElementById('progress-text').textContent`)) as string;
}

/**
 * One reader's session: name typed on the start page, then `count` answers (all when undefined) by `rule`;
 * by mouse (click the confidence, then the button) or by keyboard (digit, then R or S).
 */
async function answer(
  page: Page,
  rule: (i: number) => Omit<Click, 'item'>,
  how: 'mouse' | 'keyboard',
  clicks: Click[],
  count: number,
): Promise<void> {
  let previous = clicks.at(-1)?.item ?? '';
  for (let n = 0; n < count; n++) {
    const item = await nextItem(page, previous);
    const { call, confidence } = rule(clicks.length);
    if (how === 'mouse') {
      await page.click(`input[name="confidence"][value="${confidence}"]`);
      await page.click(call === 'real' ? '#call-real' : '#call-synthetic');
    } else {
      await page.keyboard.press(String(confidence) as '1');
      await page.keyboard.press(call === 'real' ? 'r' : 's');
    }
    clicks.push({ item, call, confidence });
    previous = item;
  }
}

test('two readers run the study in Chromium: answers stored as clicked, κ on the results page as computed by hand', async (tc) => {
  const chromium = findChromium();
  if (!chromium) {
    const reason = NO_CHROMIUM;
    if (process.env['CI']) assert.fail(reason);
    tc.skip(reason);
    return;
  }
  const rel = await copyRun(t, 'study-run');
  const url = `${base}/reader/${encodeURIComponent(rel)}`;
  const problems: string[] = [];
  let browser: Browser | undefined;
  const clicks: Record<'alice' | 'bob', Click[]> = { alice: [], bob: [] };
  try {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
      timeout: 30_000,
    });

    // Alice, by mouse, straight through.
    const alice = await browser.newPage();
    await alice.setViewport({ width: 1280, height: 800 });
    watch(alice, problems, 'alice');
    await alice.goto(url, { waitUntil: 'load' });
    await alice.screenshot({ path: join(shots, 'reader-start.png'), fullPage: true });
    await alice.type('#reader-name', 'alice');
    await Promise.all([
      alice.waitForNavigation({ waitUntil: 'load' }),
      alice.click('.reader-start button[type=submit]'),
    ]);
    await nextItem(alice, '');
    assert.equal(await progressText(alice), '0 of 12 answered');
    await alice.click('input[name="confidence"][value="4"]');
    await alice.screenshot({ path: join(shots, 'reader-session.png'), fullPage: true });
    const aliceRule = (i: number) => ({
      call: i % 3 === 0 ? ('real' as const) : ('synthetic' as const),
      confidence: 1 + (i % 5),
    });
    await answer(alice, aliceRule, 'mouse', clicks.alice, 12);
    await alice.waitForFunction(`document.getElementById('reader-session').dataset.state === 'done'`);
    assert.equal(await progressText(alice), '12 of 12 answered');
    assert.equal(await alice.evaluate(`document.getElementById('done').hidden`), false);

    // Bob, by keyboard; he reloads after 5 answers and continues where he was.
    const bob = await browser.newPage();
    await bob.setViewport({ width: 1280, height: 800 });
    watch(bob, problems, 'bob');
    await bob.goto(`${url}?reader=bob`, { waitUntil: 'load' });
    const bobRule = (i: number) => ({
      call: i % 2 === 0 ? ('real' as const) : ('synthetic' as const),
      confidence: 5 - (i % 3),
    });
    await answer(bob, bobRule, 'keyboard', clicks.bob, 5);
    await bob.reload({ waitUntil: 'load' });
    const resumed = await nextItem(bob, '');
    assert.equal(await progressText(bob), '5 of 12 answered');
    assert.ok(!clicks.bob.some((c) => c.item === resumed), 'the item after a reload is one not answered yet');
    await answer(bob, bobRule, 'keyboard', clicks.bob, 7);
    await bob.waitForFunction(`document.getElementById('reader-session').dataset.state === 'done'`);

    // The answers in the SQLite file are exactly the clicks.
    const db = readDb(join(t.root, rel));
    for (const who of ['alice', 'bob'] as const) {
      const stored = db.answers.filter((a) => a.reader === who);
      assert.deepEqual(
        stored.map((a) => ({ item: a.item, call: a.call, confidence: a.confidence })),
        clicks[who],
        `${who}'s answers as clicked`,
      );
      assert.ok(
        stored.every((a) => a.ms !== null && a.ms >= 0 && a.ms < 600_000),
        'times taken recorded',
      );
    }
    assert.equal(new Set(clicks.alice.map((c) => c.item)).size, 12);
    assert.deepEqual(
      [...new Set(clicks.bob.map((c) => c.item))].sort(),
      clicks.alice.map((c) => c.item).sort(),
    );

    // κ by hand from the clicks, over the items both answered (all 12), in one common item order.
    const items = clicks.alice.map((c) => c.item).sort();
    const callOf = (who: 'alice' | 'bob', id: string) => clicks[who].find((c) => c.item === id)!.call;
    const a = items.map((id) => callOf('alice', id));
    const b = items.map((id) => callOf('bob', id));
    const cohen = kappaByHand(a, b);
    // Fleiss with two readers: P̄ = share of agreement, P̄e = Σ_c (pooled share of c)².
    const agree = a.filter((x, i) => x === b[i]).length / 12;
    const pooledReal = (a.filter((x) => x === 'real').length + b.filter((x) => x === 'real').length) / 24;
    const pe = pooledReal ** 2 + (1 - pooledReal) ** 2;
    const fleiss = (agree - pe) / (1 - pe);

    const results = await browser.newPage();
    await results.setViewport({ width: 1280, height: 800 });
    watch(results, problems, 'results');
    await results.goto(`${url}/results`, { waitUntil: 'load' });
    const shown = (await results.evaluate(`(() => ({
      kappa: [...document.querySelectorAll('td.kappa')].map((td) => ({ pair: td.dataset.pair, text: td.textContent })),
      fleiss: document.getElementById('fleiss-kappa')?.textContent ?? null,
      verdict: document.getElementById('verdict')?.textContent ?? '',
      readers: [...document.querySelectorAll('#readers tbody tr')].map((tr) => tr.cells[0].textContent),
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
    }))()`)) as {
      kappa: { pair: string; text: string }[];
      fleiss: string | null;
      verdict: string;
      readers: string[];
      scrollWidth: number;
      innerWidth: number;
    };
    await results.screenshot({ path: join(shots, 'reader-results.png'), fullPage: true });
    assert.deepEqual(shown.readers, ['alice', 'bob']);
    assert.deepEqual(shown.kappa, [{ pair: 'alice\nbob', text: cohen.toFixed(3) }]);
    assert.equal(shown.fleiss, fleiss.toFixed(3));
    assert.match(shown.verdict, /^Readers (at chance|tell them apart)/);
    assert.ok(shown.scrollWidth <= shown.innerWidth + 1, `no sideways scrolling (${shown.scrollWidth} px)`);
    tc.diagnostic(
      `Cohen's κ by hand ${cohen.toFixed(4)}, Fleiss' κ ${fleiss.toFixed(4)}; screenshots in ${shots}`,
    );
  } finally {
    await browser?.close();
  }
  assert.deepEqual(problems, [], 'no console errors, page errors, failed requests or error responses');
});
