// Live generation in a real browser: headless Chromium (Debian's `chromium`, or $CHROMIUM_PATH) loads
// `/generate/<run>` from the web app (started here on 127.0.0.1, port 0, with its real security headers) for
// tiny cgan and stylegan2 runs trained on PneumoniaMNIST, and must:
//   - load with no console error or warning, page error or failed request (the CSP forbids inline script and
//     allows WebAssembly; a violation is a console error);
//   - generate seeds 5–8 of one class with ψ 0.7 whose pixels match `medsynth generate` (run in process, read
//     back from its PNGs) within the stated tolerance;
//   - interpolate from seed 5 to seed 8 with end frames equal to those seeds' images;
//   - show each image's nearest real training image, and it must be the nearest one (checked here against the
//     server's search set with the page's own pixels).
// Tolerance: the CLI runs on libtorch (float32, oneDNN), the page on TF.js wasm (XNNPACK) or WebGL (float32
// shaders): the same network in another summation order differs by ~1e-6 relative, which moves an 8-bit value
// (round((x + 1)·127.5)) by one level only where x falls within that of a rounding boundary. So at most one
// level anywhere, and at most 1 % of the samples off by one (measured here: see the diagnostics).
// On CI (CI set) a missing Chromium fails the test; elsewhere it is skipped with the reason.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import puppeteer, { type Browser } from 'puppeteer-core';
import sharp from 'sharp';
import { registerGenerateCommand } from '../../src/cli/generate.js';
import { readManifest } from '../../src/generate/export.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { boxDownsample, nearestRow } from '../../src/serve/browser/nearest.js';
import { generateRoutes } from '../../src/serve/routes/generate.js';
import { type RunningServer, startServer } from '../../src/serve/server.js';
import { encodeRel } from '../../src/serve/pages/shell.js';
import { trainGan } from '../../src/training/loop.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';
import { findChromium } from '../helpers/chromium.js';

const SEEDS = [5, 6, 7, 8];
const PSI = 0.7;
const CLASS = 1;

let root: string;
let server: RunningServer | undefined;
let browser: Browser | undefined;
const chromium = findChromium();

const tiny = tinyTrainOptions(() => ({ outDir: join(root, 'runs'), kimg: 0.048, tickKimg: 0.016 }));

before(async () => {
  await selectBackend();
  root = await mkdtemp(join(tmpdir(), 'medsynth-live-'));
});

after(async () => {
  await browser?.close();
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

/** `medsynth generate` of SEEDS of class CLASS at ψ PSI, read back: 8-bit samples per seed. */
async function cliImages(runDir: string, className: string): Promise<Map<number, Uint8Array>> {
  const out = join(root, `cli-${relative(join(root, 'runs'), runDir)}`);
  const program = new Command('medsynth').exitOverride();
  registerGenerateCommand(program, { stdout: { write: () => true } });
  await program.parseAsync(
    [
      'generate',
      '--run',
      runDir,
      '--out',
      out,
      '--counts',
      `${className}=${SEEDS.length}`,
      '--seeds',
      `${SEEDS[0]}-${SEEDS[SEEDS.length - 1]}`,
      '--truncation',
      String(PSI),
    ],
    { from: 'user' },
  );
  const manifest = await readManifest(out);
  const images = new Map<number, Uint8Array>();
  for (const im of manifest.images) {
    assert.equal(im.label, CLASS);
    const { data, info } = await sharp(join(out, im.id)).raw().toBuffer({ resolveWithObject: true });
    // A grey image: one channel, or three equal ones.
    const grey = Uint8Array.from({ length: info.width * info.height }, (_, i) => data[i * info.channels]!);
    if (info.channels === 3)
      grey.forEach((v, i) => assert.ok(data[3 * i + 1] === v && data[3 * i + 2] === v, 'grey PNG'));
    images.set(im.seed, grey);
  }
  return images;
}

interface PageImages {
  readonly state: string;
  readonly status: string;
  readonly backend: string;
  readonly backendLabel: string;
  readonly seeds: string;
  readonly grid: {
    generated: number[];
    nearest: number | null;
    nearestWidth: number;
    rms: string | null;
    caption: string;
  }[];
  readonly strip: number[][];
}

/** The page's images, read from its canvases (channel R of RGBA; grey images have R = G = B). */
const READ_PAGE = `(() => {
  const px = (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const out = [];
    for (let i = 0; i < d.length; i += 4) out.push(d[i]);
    return out;
  };
  const live = document.getElementById('live');
  return {
    state: live.dataset.state,
    status: document.getElementById('status').textContent,
    backend: live.dataset.backend ?? '',
    backendLabel: document.getElementById('backend').textContent,
    seeds: document.getElementById('grid').dataset.seeds ?? '',
    grid: [...document.querySelectorAll('#grid figure.pair')].map((f) => ({
      generated: px(f.querySelector('canvas.generated')),
      nearest: f.querySelector('.nearest').dataset.index === undefined ? null : Number(f.querySelector('.nearest').dataset.index),
      nearestWidth: f.querySelector('.nearest img')?.naturalWidth ?? 0,
      rms: f.querySelector('.nearest').dataset.rms ?? null,
      caption: f.querySelector('figcaption').textContent,
    })),
    strip: [...document.querySelectorAll('#strip canvas')].map(px),
  };
})()`;

function compare(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; offByOne: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let off = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    if (d > 0) off++;
  }
  return { max, offByOne: off / a.length };
}

describe(
  'live generation in headless Chromium',
  { skip: chromium === null && !process.env['CI'] ? 'no Chromium' : false },
  () => {
    test('server and runs', async () => {
      assert.ok(chromium, 'Chromium is installed (apt-get install chromium) or CHROMIUM_PATH names it');
      server = await startServer({ dir: root, host: '127.0.0.1', port: 0, parts: [generateRoutes] });
      browser = await puppeteer.launch({
        executablePath: chromium,
        headless: true,
        // No GPU here: WebGL runs on SwiftShader (software), which Chromium wants opted into explicitly.
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--enable-unsafe-swiftshader',
          '--disable-dev-shm-usage',
          '--no-first-run',
        ],
        timeout: 30_000,
      });
    });

    const runs = new Map<string, Promise<{ rel: string; cli: Map<number, Uint8Array> }>>();
    const runOf = (model: 'cgan' | 'stylegan2' | 'pggan' | 'ddpm') => {
      if (!runs.has(model))
        runs.set(
          model,
          (async () => {
            const extra =
              model === 'ddpm' ? { sampleSteps: 4 } : model === 'pggan' ? { growFraction: 0.5 } : {};
            const run = await trainGan(tiny({ model, ...extra }));
            const rel = relative(root, run.runDir).split('\\').join('/');
            return { rel, cli: await cliImages(run.runDir, 'pneumonia') };
          })(),
        );
      return runs.get(model)!;
    };

    // `default`: the page's own choice — here (no GPU: WebGL only in software, SwiftShader) it must pick wasm.
    for (const [model, backend] of [
      ['cgan', 'webgl'],
      ['cgan', 'default'],
      // (StyleGAN2 on WebGL works too, but software WebGL compiles its many shaders slowly: ~30 s here.)
      ['stylegan2', 'wasm'],
      ['pggan', 'wasm'],
      // Diffusion: DDIM (4 steps here) runs in the page around the exported U-Net.
      ['ddpm', 'wasm'],
    ] as const) {
      test(`${model} on ${backend}: pixels match medsynth generate, interpolation ends at the seeds, nearest real shown`, async (t) => {
        assert.ok(server && browser, 'the server and the browser started');
        const { rel, cli } = await runOf(model);

        const problems: string[] = [];
        const page = await browser.newPage();
        try {
          page.on('console', (m) => {
            if (m.type() === 'error' || m.type() === 'warn')
              problems.push(`console ${m.type()}: ${m.text()}`);
          });
          page.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
          page.on('requestfailed', (r) =>
            problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`),
          );
          page.on('response', (r) => {
            if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
          });
          const query = `${backend === 'default' ? '' : `backend=${backend}&`}seed=${SEEDS[0]}&count=${SEEDS.length}&class=pneumonia&psi=${PSI}&a=${SEEDS[0]}&b=${SEEDS[SEEDS.length - 1]}&frames=5&interpolate=1`;
          const response = await page.goto(`${server.url}generate/${encodeRel(rel)}?${query}`, {
            waitUntil: 'load',
            timeout: 30_000,
          });
          assert.equal(response?.status(), 200);
          await page.waitForFunction(
            `(() => { const s = document.getElementById('live').dataset.state;
            return s === 'error' || (s === 'done' && document.querySelectorAll('#strip canvas').length === 5
              && [...document.querySelectorAll('#grid .nearest')].every((n) => n.dataset.index !== undefined)
              && [...document.querySelectorAll('#grid .nearest img')].every((i) => i.complete && i.naturalWidth > 0)); })()`,
            { timeout: 180_000 },
          );
          const got = (await page.evaluate(READ_PAGE)) as PageImages;
          assert.equal(got.state, 'done', got.status);
          assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
          assert.equal(got.backend, backend === 'default' ? 'wasm' : backend);
          if (backend === 'default') assert.match(got.backendLabel, /software|no WebGL/);
          assert.equal(got.seeds, SEEDS.join(','));

          // Pixels against the CLI's images.
          const stats = SEEDS.map((seed, i) => compare(got.grid[i]!.generated, cli.get(seed)!));
          t.diagnostic(
            `${model} on ${got.backend}: ${stats.map((s) => `max ${s.max}, ${(100 * s.offByOne).toFixed(2)} % off`).join('; ')}`,
          );
          for (const s of stats) {
            assert.ok(s.max <= 1, `at most one 8-bit level from the CLI's image (got ${s.max})`);
            assert.ok(
              s.offByOne <= 0.01,
              `at most 1 % of samples off by one (got ${(100 * s.offByOne).toFixed(2)} %)`,
            );
          }
          // Not all the same picture.
          assert.ok(compare(got.grid[0]!.generated, got.grid[1]!.generated).max > 10);

          // Interpolation: the end frames are the two seeds' images (same backend: within one level, as above).
          const first = compare(got.strip[0]!, got.grid[0]!.generated);
          const last = compare(got.strip[4]!, got.grid[SEEDS.length - 1]!.generated);
          assert.ok(
            first.max <= 1 && first.offByOne <= 0.01,
            `first frame = seed ${SEEDS[0]} (${first.max})`,
          );
          assert.ok(
            last.max <= 1 && last.offByOne <= 0.01,
            `last frame = seed ${SEEDS[SEEDS.length - 1]} (${last.max})`,
          );
          assert.ok(compare(got.strip[2]!, got.strip[0]!).max > 0, 'the middle frame is another image');

          // Nearest real: the search set from the server, searched here with the page's own pixels.
          const api = `${server.url}api/generate/${encodeRel(rel)}/-/`;
          const info = (await (await fetch(`${api}reals.json`)).json()) as {
            count: number;
            side: number;
            factor: number;
            size: number;
            channels: number;
            ids: string[];
          };
          const reals = new Uint8Array(await (await fetch(`${api}reals.bin`)).arrayBuffer());
          assert.equal(info.size, 28);
          assert.equal(info.factor, 1);
          assert.ok(info.count > 100, `${info.count} real images`);
          const dim = info.side * info.side * info.channels;
          for (const cell of got.grid) {
            const query = boxDownsample(cell.generated, 1, info.size, info.channels, info.factor);
            const want = nearestRow(query, reals, info.count, dim);
            assert.equal(cell.nearest, want.index);
            assert.equal(cell.rms, Math.sqrt(want.d2 / dim).toFixed(2));
            assert.ok(cell.caption.includes(info.ids[want.index]!), cell.caption);
            assert.equal(cell.nearestWidth, 28, 'the nearest real image is shown at the run size');
          }
          const png = await fetch(`${api}reals/${got.grid[0]!.nearest}.png`);
          assert.equal(png.status, 200);
          const meta = await sharp(Buffer.from(await png.arrayBuffer())).metadata();
          assert.equal(meta.width, 28);
        } finally {
          await page.close();
        }
      });
    }

    test('errors: not a run, a path out of the folder, a bad checkpoint name', async () => {
      assert.ok(server);
      for (const path of [
        'generate/nothing-here',
        'generate/..%2F..%2Fetc',
        'api/generate/runs/-/generator.json',
      ])
        assert.equal((await fetch(`${server.url}${path}`)).status, 404, path);
      const res = await fetch(`${server.url}generate/-/wasm/..%2Fpackage.json`);
      assert.equal(res.status, 404);
      const index = await (await fetch(`${server.url}generate`)).text();
      assert.match(index, /href="\/generate\/runs\//);
    });
  },
);
