/**
 * The live-generation page's script (bundled by esbuild when `medsynth serve` first sends it; see
 * serve/routes/generate.ts). It loads the run's generator exported in TF.js layers format and generates in the
 * browser, on the GPU through TF.js's WebGL backend when the browser offers WebGL, else on the CPU through its
 * WebAssembly backend (with the repository's faster transposed convolution for wasm). The page says which.
 *
 * An image is made exactly as `medsynth generate` makes it — `sampleImages` of generate/sample.ts over a
 * `SamplingGenerator` rebuilt from the export (generate/tfjs-generator.ts): z = zFromSeed(seed, zDim), the
 * class label, ψ where the family applies it, 8-bit pixels — so seed s of class c is the CLI's image, up to the
 * floating-point differences between backends.
 *
 * Interpolation: frames k = 0 … F−1 at t = k/(F−1) along the great circle between the two seeds' latents
 * (slerp in z, `slerp` of tfjs-generator.ts), same class and ψ; the end frames are the two seeds' images.
 *
 * Nearest real training image: the server sends a seeded sample of the run's training images in the search
 * space of serve/browser/nearest.ts (f×f box averages, ≤ 32 px, 8-bit); each generated image is mapped to the
 * same space and the real image at the least Euclidean distance is shown beside it.
 *
 * State for people and tests: `#live[data-state]` is loading → ready → busy → done (or error), and
 * `data-backend`, `data-load-ms`, `data-warmup-ms`, `data-generate-ms`, `data-interpolate-ms` carry timings.
 * Nothing is written to the console.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { MAX_SEED } from '../../generate/plan.js';
import { sampleImages } from '../../generate/sample.js';
import {
  parseGeneratorMeta,
  sampleFromLatents,
  slerp,
  type TfjsGeneratorMeta,
  tfjsSampler,
  type TfjsSamplerSettings,
} from '../../generate/tfjs-generator.js';
import type { SamplingGenerator } from '../../models/types.js';
import { zFromSeed } from '../../runtime/random.js';
import { registerWasmTrainingKernels } from '../../runtime/wasm-kernels.js';
import {
  byId,
  type DomElement,
  type DomInput,
  documentRef,
  el,
  imageCanvas,
  searchParams,
  webglRenderer,
} from './dom.js';
import { boxDownsample, nearestRow } from './nearest.js';

/** Most images per grid and frames per interpolation (the page's inputs say the same). */
const MAX_COUNT = 64;
const MAX_FRAMES = 32;

/** reals.json: the search set the server prepared (see serve/routes/generate.ts). */
interface RealsInfo {
  readonly count: number;
  readonly total: number;
  readonly side: number;
  readonly size: number;
  readonly factor: number;
  readonly channels: 1 | 3;
  readonly classNames: readonly string[];
  readonly labels: readonly number[];
  readonly ids: readonly string[];
  readonly space: string;
}

interface Reals {
  readonly info: RealsInfo;
  readonly data: Uint8Array;
}

const root = byId('live');
const api = root.dataset['api'] ?? '';

function setState(
  state: 'loading' | 'ready' | 'busy' | 'done' | 'error',
  message?: string,
  where: 'status' | 'interp-status' = 'status',
): void {
  root.dataset['state'] = state;
  if (message !== undefined) byId(where).textContent = message;
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  const text = await res.text();
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = JSON.parse(text) as { error?: unknown; detail?: unknown };
      const said = [body.error, body.detail].filter((v) => typeof v === 'string' && v !== '');
      if (said.length > 0) message = said.join(': ');
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  return JSON.parse(text) as unknown;
}

/** An integer control in [min, max] (an Error naming the field otherwise). */
function intOf(id: string, label: string, min: number, max: number): number {
  const raw = byId<DomInput>(id).value.trim();
  const v = Number(raw);
  if (raw === '' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new Error(`${label} must be an integer from ${min} to ${max} (got "${raw}")`);
  return v;
}

function numberOf(id: string, label: string, min: number, max: number, minOpen = false): number {
  const raw = byId<DomInput>(id).value.trim();
  const v = Number(raw);
  if (raw === '' || !Number.isFinite(v) || v > max || v < min || (minOpen && v === min))
    throw new Error(`${label} must be a number in ${minOpen ? '(' : '['}${min}, ${max}] (got "${raw}")`);
  return v;
}

/** Applies `?seed=…&class=…` etc. to the controls (unknown or empty values are ignored). */
function presetControls(meta: TfjsGeneratorMeta): void {
  const q = searchParams();
  const set = (param: string, id: string) => {
    const v = q.get(param);
    if (v !== null && v !== '') byId<DomInput>(id).value = v;
  };
  for (const [p, id] of [
    ['seed', 'seed'],
    ['count', 'count'],
    ['psi', 'psi'],
    ['a', 'seed-a'],
    ['b', 'seed-b'],
    ['frames', 'frames'],
    ['steps', 'steps'],
    ['guidance', 'guidance'],
  ] as const)
    set(p, id);
  const cls = q.get('class');
  if (cls !== null && meta.conditional) {
    const byName = meta.classNames.indexOf(cls);
    const index = byName >= 0 ? byName : Number(cls);
    if (Number.isInteger(index) && index >= 0 && index < meta.classNames.length)
      byId<DomInput>('class').value = String(index);
  }
}

/**
 * The backend: WebGL on a GPU; WebAssembly when the browser has no WebGL or only a software one (slower than
 * wasm on the same CPU: measured in bench/browser-generate.ts), or when `?backend=wasm` asks for it;
 * `?backend=webgl` insists on WebGL even in software.
 */
async function chooseBackend(assets: string): Promise<{ name: string; label: string }> {
  const want = searchParams().get('backend');
  const gl = want === 'wasm' ? null : webglRenderer();
  if (gl && (!gl.software || want === 'webgl') && (await tf.setBackend('webgl')))
    return { name: 'webgl', label: gl.software ? `WebGL in software (${gl.name})` : 'WebGL (GPU)' };
  setWasmPaths(assets);
  registerWasmTrainingKernels();
  if (await tf.setBackend('wasm')) {
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? ', SIMD' : '';
    const why = gl?.software
      ? '; WebGL here is software-rendered, slower'
      : gl === null && want !== 'wasm'
        ? '; no WebGL'
        : '';
    return { name: 'wasm', label: `WebAssembly (CPU${simd}${why})` };
  }
  throw new Error('neither WebGL nor WebAssembly is available in this browser');
}

/** Sampling settings of a diffusion export from the controls; none for a GAN. */
function samplerSettings(meta: TfjsGeneratorMeta): TfjsSamplerSettings {
  if (meta.family !== 'ddpm') return {};
  return {
    steps: intOf('steps', 'DDIM steps', 1, meta.diffusion!.scheduleSteps),
    guidance: numberOf('guidance', 'guidance', 0, 20),
  };
}

function classOf(meta: TfjsGeneratorMeta): number {
  return meta.conditional ? intOf('class', 'class', 0, meta.classNames.length - 1) : 0;
}

function ms(t0: number): number {
  return Math.round(performance.now() - t0);
}

// ---------------------------------------------------------------------------------------------------------
// Nearest real images

let reals: Reals | null = null;
let realsProblem: string | null = null;
const waitingForReals: (() => void)[] = [];

async function loadReals(): Promise<void> {
  try {
    const info = (await getJson(`${api}reals.json`)) as RealsInfo;
    const res = await fetch(`${api}reals.bin`);
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const data = new Uint8Array(await res.arrayBuffer());
    if (data.length !== info.count * info.side * info.side * info.channels)
      throw new Error('the real images arrived incomplete');
    reals = { info, data };
    const which =
      info.count === info.total
        ? `all ${info.total} of the run's training images`
        : `${info.count} of the run's ${info.total} training images (a seeded sample)`;
    byId('nearest-note').textContent = `Nearest real image: the closest of ${which}, by ${info.space}.`;
  } catch (e) {
    realsProblem = `Nearest real images are not available: ${(e as Error).message}`;
    byId('nearest-note').textContent = realsProblem;
  }
  for (const f of waitingForReals.splice(0)) f();
}

/** Fills `slot` with the nearest real image of generated `pixels` (now, or once the real images arrive). */
function showNearest(
  slot: DomElement,
  caption: DomElement,
  pixels: Uint8Array,
  size: number,
  channels: number,
): void {
  const fill = () => {
    if (!reals) {
      slot.replaceChildren(el('span', 'missing', '—'));
      caption.textContent = realsProblem ? 'no nearest real image' : '';
      return;
    }
    const { info, data } = reals;
    const query = boxDownsample(pixels, 1, size, channels, info.factor);
    const dim = info.side * info.side * info.channels;
    const { index, d2 } = nearestRow(query, data, info.count, dim);
    const label = info.classNames[info.labels[index]!] ?? '?';
    const id = info.ids[index] ?? String(index);
    const rms = Math.sqrt(d2 / dim);
    // Shown at the run's size (the search ran on the reduced copy).
    const img = documentRef().createElement('img');
    img.src = `${api}reals/${index}.png`;
    img.alt = `nearest real: ${id}`;
    img.title = `${id} (${label})`;
    img.width = info.size;
    img.height = info.size;
    img.className = 'px';
    slot.replaceChildren(img);
    slot.dataset['index'] = String(index);
    slot.dataset['rms'] = rms.toFixed(2);
    caption.textContent = `nearest real: ${id} (${label}), RMS ${rms.toFixed(1)}`;
    caption.title = id;
  };
  if (reals || realsProblem) fill();
  else {
    slot.replaceChildren(el('span', 'missing', '…'));
    waitingForReals.push(fill);
  }
}

/** One generated image with its nearest real image and a caption. */
function pair(pixels: Uint8Array, size: number, channels: number, title: string, index: number): DomElement {
  const fig = el('figure', 'pair');
  fig.dataset['index'] = String(index);
  const imgs = el('div', 'imgs');
  const gen = imageCanvas(pixels, size, channels, title);
  gen.classList.add('generated');
  const slot = el('div', 'nearest');
  imgs.append(gen, slot);
  const cap = el('figcaption');
  const near = el('small');
  cap.append(el('b', '', title), near);
  fig.append(imgs, cap);
  showNearest(slot, near, pixels, size, channels);
  return fig;
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  setState('loading', 'Loading the generator…');
  void loadReals();
  const t0 = performance.now();
  const meta = parseGeneratorMeta(await getJson(`${api}generator.json`), 'generator.json');
  const chosen = await chooseBackend(root.dataset['assets'] ?? '');
  const backend = chosen.name;
  tf.enableProdMode();
  root.dataset['backend'] = backend;
  byId('backend').textContent = chosen.label;
  const model = await tfl.loadLayersModel(
    tf.io.http(`${api}model/${encodeURIComponent(meta.checkpoint)}/model.json`),
    {
      strict: true,
    },
  );
  root.dataset['loadMs'] = String(ms(t0));
  presetControls(meta);
  const sampler = (): SamplingGenerator => tfjsSampler(model, meta, samplerSettings(meta));
  const S = meta.size;
  const C = meta.channels;
  const per = S * S * C;
  const className = (c: number) =>
    meta.conditional
      ? meta.classNames[c]!
      : meta.classNames.length === 1
        ? meta.classNames[0]!
        : 'all classes';

  // Warm-up: the first call compiles WebGL shaders / sets up wasm; timed on its own.
  const w0 = performance.now();
  await sampleImages(sampler(), [{ seed: 0, label: 0 }]);
  root.dataset['warmupMs'] = String(ms(w0));
  setState(
    'ready',
    `Ready: ${meta.family}, ${S}×${S}, ${meta.checkpoint}. Loaded in ${root.dataset['loadMs']} ms.`,
  );

  const buttons = [byId<DomInput>('generate'), byId<DomInput>('interpolate')];
  const busy = async (where: 'status' | 'interp-status', what: () => Promise<void>) => {
    if (root.dataset['state'] === 'busy') return;
    for (const b of buttons) b.disabled = true;
    setState('busy', 'Generating…', where);
    try {
      await what();
    } catch (e) {
      setState('error', (e as Error).message, where);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  };

  const generate = () =>
    busy('status', async () => {
      const seed = intOf('seed', 'seed', 0, MAX_SEED);
      const count = intOf('count', 'images', 1, MAX_COUNT);
      const psi = numberOf('psi', 'truncation ψ', 0, 1, true);
      if (seed + count - 1 > MAX_SEED) throw new Error(`seeds ${seed}…${seed + count - 1} pass ${MAX_SEED}`);
      const label = classOf(meta);
      const items = Array.from({ length: count }, (_, i) => ({ seed: seed + i, label }));
      const g0 = performance.now();
      const images = await sampleImages(sampler(), items, { truncation: psi });
      const took = ms(g0);
      root.dataset['generateMs'] = String(took);
      const data = images.data as Uint8Array;
      byId('grid').replaceChildren(
        ...items.map((it, i) => pair(data.subarray(i * per, (i + 1) * per), S, C, `seed ${it.seed}`, i)),
      );
      byId('grid').dataset['seeds'] = items.map((it) => it.seed).join(',');
      byId('grid').dataset['label'] = String(label);
      setState(
        'done',
        `${count} image${count === 1 ? '' : 's'} of ${className(label)} (seeds ${seed}–${seed + count - 1}, ψ ${psi}) in ${took} ms on ${backend}.`,
      );
    });

  let frames: Uint8Array[] = [];
  const showFrame = (k: number) => {
    const frame = frames[k];
    if (!frame) return;
    const view = byId('frame-view');
    view.replaceChildren(pair(frame, S, C, `frame ${k + 1} of ${frames.length}`, k));
    byId('frame-out').textContent = `t = ${(frames.length > 1 ? k / (frames.length - 1) : 0).toFixed(3)}`;
  };
  const interpolate = () =>
    busy('interp-status', async () => {
      const a = intOf('seed-a', 'seed A', 0, MAX_SEED);
      const b = intOf('seed-b', 'seed B', 0, MAX_SEED);
      const n = intOf('frames', 'frames', 2, MAX_FRAMES);
      const psi = numberOf('psi', 'truncation ψ', 0, 1, true);
      const label = classOf(meta);
      const za = zFromSeed(a, meta.zDim);
      const zb = zFromSeed(b, meta.zDim);
      const z = new Float32Array(n * meta.zDim);
      for (let k = 0; k < n; k++) z.set(slerp(za, zb, k / (n - 1)), k * meta.zDim);
      const i0 = performance.now();
      const images = await sampleFromLatents(sampler(), z, new Int32Array(n).fill(label), psi);
      const took = ms(i0);
      root.dataset['interpolateMs'] = String(took);
      const data = images.data as Uint8Array;
      frames = Array.from({ length: n }, (_, k) => data.subarray(k * per, (k + 1) * per));
      const slider = byId<DomInput>('frame');
      const strip = byId('strip');
      strip.replaceChildren(
        ...frames.map((f, k) => {
          const c = imageCanvas(f, S, C, `frame ${k + 1}: t = ${(k / (n - 1)).toFixed(3)}`);
          c.dataset['frame'] = String(k);
          c.addEventListener('click', () => {
            slider.value = String(k);
            showFrame(k);
          });
          return c;
        }),
      );
      slider.max = String(n - 1);
      slider.value = '0';
      slider.disabled = false;
      showFrame(0);
      setState(
        'done',
        `${n} frames from seed ${a} to seed ${b} (${className(label)}, slerp in z, ψ ${psi}) in ${took} ms on ${backend}.`,

        'interp-status',
      );
    });

  byId('frame').addEventListener('input', () => showFrame(Number(byId<DomInput>('frame').value)));
  byId('psi').addEventListener('input', () => {
    byId('psi-out').textContent = Number(byId<DomInput>('psi').value).toFixed(2);
  });
  byId('psi-out').textContent = Number(byId<DomInput>('psi').value).toFixed(2);
  byId('controls').addEventListener('submit', (e) => {
    e.preventDefault();
    void generate();
  });
  byId('interp').addEventListener('submit', (e) => {
    e.preventDefault();
    void interpolate();
  });
  for (const b of buttons) b.disabled = false;

  const q = searchParams();
  if (q.get('auto') !== '0') await generate();
  if (q.get('interpolate') === '1') await interpolate();
}

main().catch((e: unknown) => setState('error', `Live generation failed: ${(e as Error).message}`));
