// `medsynth serve` in a real browser: headless Chromium (Debian's `chromium`, or $CHROMIUM_PATH) loads every
// page of a folder with real outputs (browse-fixture.ts) from a server on 127.0.0.1 port 0, and each must
// show without one console error or warning, page error, failed request or HTTP error, with every picture
// decoded, every chart drawn, no horizontal scrolling at a laptop's width, and no dialog (nothing injected
// runs). The run page's timeline slider must show the grid of the tick it is moved to, and the embedding map
// must switch projections and show a point's image on hover. Full-page screenshots are left in a temporary
// folder (its path is printed as a test diagnostic). On CI (CI set) a missing Chromium fails the test;
// elsewhere it is skipped with the reason.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { enc, makeServeFolder, type ServeFolder } from './browse-fixture.js';
import { findChromium, NO_CHROMIUM } from '../helpers/chromium.js';

interface PageState {
  readonly images: number;
  readonly broken: string[];
  readonly charts: number[];
  readonly scrollWidth: number;
  readonly innerWidth: number;
  readonly inlineScripts: number;
}

const VIEWPORT = { width: 1366, height: 900 };
let f: ServeFolder;
let server: RunningServer;
let shots: string;

before(async () => {
  f = await makeServeFolder('medsynth-serve-browser-');
  server = await startServer({ dir: f.root, port: 0, parts: [] });
  shots = await mkdtemp(join(tmpdir(), 'medsynth-serve-screenshots-'));
});

after(async () => {
  await server?.close();
  if (f) await rm(f.root, { recursive: true, force: true });
});

/** Opens `path`, asserts it loaded cleanly, and returns its state. */
async function visit(page: Page, path: string, problems: string[], name: string): Promise<PageState> {
  const response = await page.goto(`${server.url.replace(/\/$/, '')}${path}`, {
    waitUntil: 'networkidle0',
    timeout: 60_000,
  });
  assert.ok(response?.ok(), `${path} loads (${response?.status()})`);
  const state = (await page.evaluate(`(() => {
    const imgs = [...document.images].filter((i) => !i.hidden);
    return {
      images: imgs.length,
      broken: imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.alt || i.src),
      charts: [...document.querySelectorAll('.chart svg')].map((s) => s.getBoundingClientRect().width),
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      inlineScripts: [...document.scripts].filter((s) => !s.src).length,
    };
  })()`)) as PageState;
  assert.deepEqual(state.broken, [], `${path}: every picture decodes`);
  assert.ok(
    state.charts.every((w) => w > 100),
    `${path}: charts drawn (${state.charts.join(', ')})`,
  );
  assert.equal(state.inlineScripts, 0, `${path}: no inline script`);
  assert.ok(
    state.scrollWidth <= state.innerWidth,
    `${path}: no horizontal scrolling at ${VIEWPORT.width} px (page is ${state.scrollWidth} px wide)`,
  );
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  assert.deepEqual(problems, [], `${path}: no console errors, failed requests or HTTP errors`);
  return state;
}

test('every page loads in headless Chromium without errors; the timeline and the embedding map work', async (t) => {
  const chromium = findChromium();
  if (!chromium) {
    const reason = NO_CHROMIUM;
    if (process.env['CI']) assert.fail(reason);
    t.skip(reason);
    return;
  }
  const problems: string[] = [];
  let browser: Browser | undefined;
  try {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
      timeout: 60_000,
    });
    const page = await browser.newPage();
    await page.setViewport(VIEWPORT);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
    page.on('requestfailed', (r) =>
      problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`),
    );
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url) && !r.url().startsWith('data:'))
        problems.push(`foreign request: ${r.url()}`);
    });
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });

    const index = await visit(page, '/', problems, 'index');
    assert.ok(index.images >= 1, 'the run’s latest grid as a thumbnail');

    // The run page: the slider shows the grid of the tick it is moved to.
    const run = await visit(page, `/runs/${enc(f.runRel)}`, problems, 'run');
    assert.ok(run.charts.length >= 1, 'the loss curve');
    const ticks = (await page.evaluate(
      `JSON.parse(document.querySelector('figure.timeline').dataset.ticks)`,
    )) as [string, string][];
    assert.ok(ticks.length >= 3);
    const hidden = await page.evaluate(`document.querySelector('.timeline-controls').hidden`);
    assert.equal(hidden, false, 'the script showed the controls');
    await page.evaluate(`(() => {
      const r = document.querySelector('figure.timeline input[type=range]');
      r.value = '0';
      r.dispatchEvent(new Event('input'));
    })()`);
    await page.waitForFunction(
      `(() => { const i = document.querySelector('figure.timeline img'); return i.complete && i.naturalWidth > 0; })()`,
    );
    const shown = (await page.evaluate(`(() => ({
      src: document.querySelector('figure.timeline img').getAttribute('src'),
      label: document.querySelector('figure.timeline output').textContent,
    }))()`)) as { src: string; label: string };
    assert.equal(shown.src, ticks[0]![0]);
    assert.equal(shown.label, ticks[0]![1]);
    await page.click('figure.timeline button[data-step="1"]');
    assert.equal(
      await page.evaluate(`document.querySelector('figure.timeline img').getAttribute('src')`),
      ticks[1]![0],
    );

    // A training run inside the study (no options.json, no samples): curves only.
    const snap = JSON.parse(await (await fetch(`${server.url}api/index`)).text());
    const inside = snap.runs.find((r: { study: string | null }) => r.study === f.studyRel);
    await visit(page, `/runs/${enc(inside.rel)}`, problems, 'run-in-study');

    const evaluation = await visit(page, `/evaluations/${enc(f.evalRel)}`, problems, 'evaluation');
    assert.equal(evaluation.images, 4, 'real and synthetic grids, closest pairs in two spaces');

    // The embedding map: hover shows the point's image; UMAP moves the points.
    const map = JSON.parse(await readFile(join(f.evalDir, 'embedding.json'), 'utf8'));
    await visit(page, `/evaluations/${enc(f.evalRel)}/-/embedding`, problems, 'embedding');
    const circles = await page.$$('figure.embedding svg circle[data-set]');
    assert.equal(circles.length, map.points.length);
    const target = circles[Math.floor(circles.length / 2)]!;
    await target.hover();
    await page.waitForFunction(
      `(() => { const i = document.querySelector('.preview img'); return !i.hidden && i.complete && i.naturalWidth > 0; })()`,
    );
    const preview = (await page.evaluate(`(() => {
      const i = document.querySelector('.preview img');
      const c = document.querySelector('circle.on');
      return { src: i.getAttribute('src'), width: i.naturalWidth, set: c.dataset.set, index: c.dataset.index, text: document.querySelector('.preview p').textContent };
    })()`)) as { src: string; width: number; set: string; index: string; text: string };
    assert.ok(
      preview.src.endsWith(`/-/image/${encodeURIComponent(preview.set)}/${preview.index}.png`),
      preview.src,
    );
    assert.equal(preview.width, map.thumbnails.cellWidth);
    assert.match(preview.text, new RegExp(`image ${preview.index}$`));
    if (map.umap) {
      const before = await page.evaluate(`document.querySelector('circle[data-set]').getAttribute('cx')`);
      await page.click('button[data-method="umap"]');
      const after = (await page.evaluate(`(() => {
        const c = document.querySelector('circle[data-set]');
        return [c.getAttribute('cx') + ',' + c.getAttribute('cy'), c.dataset.umap];
      })()`)) as [string, string];
      assert.equal(after[0], after[1], 'points moved to their UMAP positions');
      assert.notEqual(before, after[0].split(',')[0]);
    }
    // Filtering a set hides its points.
    const set = map.sets[0].key;
    await page.click(`input[data-filter="set:${set}"]`);
    const off = await page.evaluate(`document.querySelectorAll('circle.off').length`);
    assert.equal(off, map.points.filter((p: { set: string }) => p.set === set).length);

    const study = await visit(page, `/studies/${enc(f.studyRel)}`, problems, 'study');
    assert.ok(study.charts.length >= 5, 'the report’s charts');

    // A page that does not exist: a 404 page, itself without errors.
    const response = await page.goto(`${server.url}runs/nothing-here`, { waitUntil: 'networkidle0' });
    assert.equal(response?.status(), 404);
    // The page's own 404 is reported twice (the response and Chromium's console line), and nothing else.
    assert.deepEqual(problems, [
      `HTTP 404: ${server.url}runs/nothing-here`,
      'console error: Failed to load resource: the server responded with a status of 404 (Not Found)',
    ]);
    t.diagnostic(`screenshots: ${shots}`);
  } finally {
    await browser?.close();
  }
});
