// The report in a real browser: headless Chromium (Debian's `chromium`, or the one at $CHROMIUM_PATH) loads
// it from file:// and must show it without one console error, page error or failed request, with every
// picture decoded, every chart drawn and no horizontal scrolling at a laptop's width. A full-page screenshot
// is left in a temporary folder (its path is printed as a test diagnostic) for a person to look at.
// On CI (CI set) a missing Chromium fails the test; elsewhere it is skipped with the reason.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import puppeteer, { type Browser } from 'puppeteer-core';
import { writeReport } from '../../src/report/index.js';
import { findChromium, NO_CHROMIUM } from '../helpers/chromium.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/report/sample-study/', import.meta.url));

interface PageState {
  readonly title: string;
  readonly images: number;
  readonly broken: string[];
  readonly svgs: number[];
  readonly scrollWidth: number;
  readonly innerWidth: number;
  readonly verdicts: number;
  readonly scripts: number;
}

const VIEWPORT = { width: 1366, height: 900 };
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-report-browser-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the report loads in headless Chromium without errors, pictures and charts shown, no sideways scrolling', async (t) => {
  const chromium = findChromium();
  if (!chromium) {
    const reason = NO_CHROMIUM;
    if (process.env['CI']) assert.fail(reason);
    t.skip(reason);
    return;
  }
  const study = join(dir, 'study');
  await cp(FIXTURE, study, { recursive: true });
  const file = await writeReport(study);
  const url = pathToFileURL(file).href;

  const problems: string[] = [];
  let browser: Browser | undefined;
  try {
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
      timeout: 30_000,
    });
    const page = await browser.newPage();
    await page.setViewport(VIEWPORT);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
    page.on('requestfailed', (r) =>
      problems.push(`request failed: ${r.url().slice(0, 100)} ${r.failure()?.errorText ?? ''}`),
    );
    page.on('request', (r) => {
      if (!/^(?:file|data):/.test(r.url())) problems.push(`network request: ${r.url().slice(0, 100)}`);
    });
    const response = await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
    assert.ok(response === null || response.ok(), 'the page loads');

    // A string, evaluated in the page: this project's TypeScript has no DOM types.
    const state = (await page.evaluate(`(() => {
      const imgs = [...document.images];
      return {
        title: document.title,
        images: imgs.length,
        broken: imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.alt),
        svgs: [...document.querySelectorAll('.chart svg')].map((s) => s.getBoundingClientRect().width),
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        verdicts: document.querySelectorAll('ul.verdicts li').length,
        scripts: document.scripts.length,
      };
    })()`)) as PageState;
    assert.match(state.title, /medsynth study report/);
    assert.equal(state.images, 6);
    assert.deepEqual(state.broken, [], 'every picture decodes');
    assert.equal(state.svgs.length, 9);
    assert.ok(
      state.svgs.every((w) => w > 100),
      `charts drawn: ${state.svgs.join(', ')}`,
    );
    assert.ok(state.verdicts > 0);
    assert.equal(state.scripts, 0);
    assert.ok(
      state.scrollWidth <= state.innerWidth,
      `no horizontal scrolling at ${VIEWPORT.width} px (page is ${state.scrollWidth} px wide)`,
    );

    const shots = await mkdtemp(join(tmpdir(), 'medsynth-report-screenshot-'));
    const shot = join(shots, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    assert.ok(png.subarray(1, 4).toString() === 'PNG' && png.length > 50_000, 'a real screenshot');
    t.diagnostic(`screenshot: ${shot}`);
  } finally {
    await browser?.close();
  }
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
});
