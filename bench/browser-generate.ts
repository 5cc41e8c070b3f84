/**
 * Live generation in headless Chromium (`medsynth serve`'s `/generate/<run>` page): how long the page takes to
 * generate `--count` images (default 16) after the model is loaded, per run and TF.js backend, and what the
 * steps before cost. The issue's target: 16 images at 64 px in under 2 s on this machine.
 *
 *   npm run bench bench/browser-generate.ts -- [--dir <served folder>] [--runs rel1,rel2] [--backends webgl,wasm]
 *     [--count 16] [--repeats 5] [--shots <folder>]
 *
 * Defaults: the 64-px cgan and stylegan2 runs of /tmp/r17/k64 (a previous session's study); `--runs` are paths
 * under `--dir` (default: every cgan and stylegan2 run with a checkpoint the folder index finds). The server is
 * the real one (`startServer`, 127.0.0.1, port 0, live generation registered); Chromium is Debian's (or
 * $CHROMIUM_PATH), headless, with `--enable-unsafe-swiftshader`: there is no GPU here, so WebGL runs on
 * SwiftShader (software, on the CPU) and wasm on one thread with SIMD (not cross-origin isolated: no threads).
 *
 * Per run, first on the server (Node): `export_ms` — the first `generator.json` request, which exports the
 * checkpoint's G_ema to TF.js (later requests hit the memory cache); `reals_ms` — the nearest-real search set
 * (a seeded sample of ≤ 2000 training images loaded at the run's size). Then per backend, in a fresh page:
 * `load_ms` (generator.json + model.json + weights fetched, the layers model built), `warmup_ms` (the first
 * one-image call: WebGL shader compilation / wasm set-up), and `--repeats` timed generations of `--count`
 * images (`generate_ms`: the page's own timing of `sampleImages` — z from the seeds, the network, the pixels
 * read back as 8 bits; `page_ms`: from the click to the drawn grid with every nearest real image found,
 * measured here). One JSON line per run × backend; `--shots` saves a full-page screenshot of each run's page
 * (after a grid and an interpolation) as `<folder>/live-<family>-<backend>.png`.
 */
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { selectBackend } from '../packages/medsynth/src/runtime/backend.js';
import { encodeRel } from '../packages/medsynth/src/serve/pages/shell.js';
import { generateRoutes } from '../packages/medsynth/src/serve/routes/generate.js';
import { startServer } from '../packages/medsynth/src/serve/server.js';
import { findChromium, NO_CHROMIUM } from '../packages/medsynth/test/helpers/chromium.js';

const { values: f } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/r17/k64/00000-replacement-kermany_cxr_224-64' },
    runs: { type: 'string' },
    backends: { type: 'string', default: 'webgl,wasm' },
    count: { type: 'string', default: '16' },
    repeats: { type: 'string', default: '5' },
    shots: { type: 'string' },
  },
});

function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`bench/browser-generate.ts: --${name} must be an integer in ${min}…${max}, got ${v}`);
    process.exit(2);
  }
  return n;
}

const count = int('count', f.count, 1, 64);
const repeats = int('repeats', f.repeats, 1, 100);
const backends = f.backends.split(',').map((b) => b.trim());
for (const b of backends)
  if (b !== 'webgl' && b !== 'wasm') {
    console.error(`bench/browser-generate.ts: --backends takes webgl and wasm, got ${b}`);
    process.exit(2);
  }

function chromium(): string {
  const found = findChromium();
  if (found) return found;
  console.error(`bench/browser-generate.ts: ${NO_CHROMIUM}`);
  process.exit(2);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const STATE = (want: string) =>
  `(() => { const s = document.getElementById('live').dataset.state; return s === 'error' || s === '${want}'; })()`;

async function main(): Promise<void> {
  await selectBackend();
  const server = await startServer({ dir: f.dir, host: '127.0.0.1', port: 0, parts: [generateRoutes] });
  const browser = await puppeteer.launch({
    executablePath: chromium(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--enable-unsafe-swiftshader',
      '--disable-dev-shm-usage',
      '--no-first-run',
    ],
    timeout: 60_000,
  });
  let failed = false;
  try {
    const version = await browser.version();
    const snap = await server.index.snapshot();
    const runs = f.runs
      ? f.runs.split(',').map((r) => r.trim())
      : snap.runs
          .filter((r) => r.checkpoints > 0 && (r.model === 'cgan' || r.model === 'stylegan2'))
          .map((r) => r.rel);
    console.log(
      JSON.stringify({
        bench: 'browser-generate',
        dir: server.ctx.root,
        runs,
        backends,
        count,
        repeats,
        chromium: version,
        cpus: cpus().length,
        loadavg: loadavg().map((l) => Number(l.toFixed(2))),
      }),
    );
    for (const rel of runs) {
      const api = `${server.url}api/generate/${encodeRel(rel)}/-/`;
      const e0 = performance.now();
      const metaRes = await fetch(`${api}generator.json`);
      if (!metaRes.ok) {
        console.log(
          JSON.stringify({ run: rel, error: `generator.json: ${metaRes.status} ${await metaRes.text()}` }),
        );
        failed = true;
        continue;
      }
      const meta = (await metaRes.json()) as { family: string; size: number; checkpoint: string };
      const exportMs = performance.now() - e0;
      const r0 = performance.now();
      const realsRes = await fetch(`${api}reals.json`);
      const reals = realsRes.ok ? ((await realsRes.json()) as { count: number; total: number }) : null;
      const realsMs = performance.now() - r0;
      for (const backend of backends) {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warn') problems.push(m.text());
        });
        page.on('pageerror', (e) => problems.push(String(e)));
        try {
          await page.setViewport({ width: 1366, height: 900 });
          await page.goto(
            `${server.url}generate/${encodeRel(rel)}?backend=${backend}&auto=0&seed=0&count=${count}&class=1&psi=0.7&a=3&b=11&frames=9`,
            { waitUntil: 'load', timeout: 60_000 },
          );
          await page.waitForFunction(STATE('ready'), { timeout: 300_000, polling: 50 });
          const ready = (await page.evaluate(
            `(() => { const d = document.getElementById('live').dataset; return { state: d.state, status: document.getElementById('status').textContent, backend: d.backend, load: Number(d.loadMs), warmup: Number(d.warmupMs) }; })()`,
          )) as { state: string; status: string; backend: string; load: number; warmup: number };
          if (ready.state !== 'ready') throw new Error(ready.status);
          const generate: number[] = [];
          const pageMs: number[] = [];
          for (let i = 0; i < repeats; i++) {
            const p0 = performance.now();
            await page.evaluate(`document.getElementById('controls').requestSubmit()`);
            await page.waitForFunction(
              `(() => { const s = document.getElementById('live').dataset.state; return s === 'error' || (s === 'done'
                && [...document.querySelectorAll('#grid .nearest')].every((n) => n.dataset.index !== undefined || n.textContent === '—')); })()`,
              { timeout: 300_000, polling: 20 },
            );
            pageMs.push(performance.now() - p0);
            const d = (await page.evaluate(
              `(() => ({ state: document.getElementById('live').dataset.state, status: document.getElementById('status').textContent, ms: Number(document.getElementById('live').dataset.generateMs) }))()`,
            )) as { state: string; status: string; ms: number };
            if (d.state !== 'done') throw new Error(d.status);
            generate.push(d.ms);
          }
          if (f.shots) {
            await page.evaluate(`document.getElementById('interp').requestSubmit()`);
            await page.waitForFunction(
              `document.getElementById('live').dataset.state === 'done' && document.querySelectorAll('#strip canvas').length > 0`,
              { timeout: 300_000 },
            );
            await mkdir(f.shots, { recursive: true });
            await page.screenshot({
              path: join(f.shots, `live-${meta.family}-${backend}.png`),
              fullPage: true,
            });
          }
          console.log(
            JSON.stringify({
              run: rel,
              family: meta.family,
              size: meta.size,
              checkpoint: meta.checkpoint,
              backend: ready.backend,
              count,
              export_ms: Math.round(exportMs),
              reals_ms: Math.round(realsMs),
              reals: reals ? `${reals.count} of ${reals.total}` : null,
              load_ms: ready.load,
              warmup_ms: ready.warmup,
              generate_ms: { median: median(generate), min: Math.min(...generate), all: generate },
              page_ms: { median: Math.round(median(pageMs)), all: pageMs.map(Math.round) },
              under_2s: median(generate) < 2000,
              console_problems: problems,
              loadavg: loadavg().map((l) => Number(l.toFixed(2))),
            }),
          );
        } catch (e) {
          failed = true;
          console.log(
            JSON.stringify({ run: rel, backend, error: (e as Error).message, console_problems: problems }),
          );
        } finally {
          await page.close();
        }
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
  if (failed) process.exitCode = 1;
}

await main();
