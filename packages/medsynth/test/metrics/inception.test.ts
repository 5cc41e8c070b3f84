import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageArray } from '../../src/data/types.js';
import { loadInceptionExtractor } from '../../src/metrics/features/inception.js';
import { readModelFiles } from '../../src/metrics/features/model-files.js';
import { describePreparation, prepareBatch, type PrepareSpec } from '../../src/metrics/features/prepare.js';
import type { FeatureMatrix } from '../../src/metrics/features/types.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import type { ProgressEvent } from '../../src/runtime/progress.js';
import { Rng } from '../../src/runtime/random.js';

/*
 * No real Inception weights offline: the tests build tiny random-weight models in the two TF.js formats,
 * write them to a temp folder exactly as tfjs-converter / tfjs-layers would, and load them back.
 *
 * Graph model: input [n, 32, 32, 3] → Conv2D 3×3×3×8 stride 2 SAME (no bias) → Relu → Mean over H, W with
 * keep_dims (`pool_3`, [n, 1, 1, 8] like FID's pool_3) → Reshape [-1, 8] (`features`, the graph's output).
 */

let root: string;

const KERNEL = 3;
const FILTERS = 8;
const STRIDE = 2;

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function tensorShape(dims: readonly number[]): { dim: { size: string }[] } {
  return { dim: dims.map((d) => ({ size: String(d) })) };
}

function constNode(name: string, dtype: 'DT_FLOAT' | 'DT_INT32', dims: readonly number[]): object {
  return {
    name,
    op: 'Const',
    attr: { value: { tensor: { dtype, tensorShape: tensorShape(dims) } }, dtype: { type: dtype } },
  };
}

interface GraphOptions {
  /** Placeholder shape; -1 = free. */
  readonly inputDims?: readonly [number, number, number, number];
  /** Mimic the TF FID graph's head: a JPEG-string placeholder → DecodeJpeg → Cast → `ExpandDims` → conv. */
  readonly jpegInput?: boolean;
  /** Also add a `flat` node reshaping everything to 1-D (not one feature row per image). */
  readonly flatNode?: boolean;
}

/** A tfjs-converter graph model (model.json + two weight shards) with conv filter `filter` [3, 3, 3, 8]. */
async function writeGraphModel(dir: string, filter: Float32Array, opts: GraphOptions = {}): Promise<void> {
  const inputDims = opts.inputDims ?? [-1, 32, 32, 3];
  const T = { type: 'DT_FLOAT' };
  const nodes: object[] = [];
  const weights: { name: string; shape: number[]; dtype: 'float32' | 'int32' }[] = [];
  const values: Uint8Array[] = [];
  const addConst = (name: string, data: Float32Array | Int32Array, shape: number[]): void => {
    const dtype = data instanceof Float32Array ? 'float32' : 'int32';
    nodes.push(constNode(name, dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32', shape));
    weights.push({ name, shape, dtype });
    values.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  };
  let imageNode = 'input';
  if (opts.jpegInput) {
    nodes.push({
      name: 'jpeg',
      op: 'Placeholder',
      attr: { dtype: { type: 'DT_STRING' }, shape: { shape: {} } },
    });
    nodes.push({ name: 'decode', op: 'DecodeJpeg', input: ['jpeg'], attr: { channels: { i: '3' } } });
    nodes.push({
      name: 'cast',
      op: 'Cast',
      input: ['decode'],
      attr: { SrcT: { type: 'DT_UINT8' }, DstT: T },
    });
    addConst('ExpandDims/dim', new Int32Array([0]), []);
    nodes.push({ name: 'ExpandDims', op: 'ExpandDims', input: ['cast', 'ExpandDims/dim'], attr: { T } });
    imageNode = 'ExpandDims';
  } else {
    nodes.push({
      name: 'input',
      op: 'Placeholder',
      attr: { dtype: T, shape: { shape: tensorShape(inputDims) } },
    });
  }
  addConst('conv/filter', filter, [KERNEL, KERNEL, 3, FILTERS]);
  nodes.push({
    name: 'conv',
    op: 'Conv2D',
    input: [imageNode, 'conv/filter'],
    attr: {
      T,
      strides: { list: { i: ['1', String(STRIDE), String(STRIDE), '1'] } },
      padding: { s: b64('SAME') },
      data_format: { s: b64('NHWC') },
      dilations: { list: { i: ['1', '1', '1', '1'] } },
      use_cudnn_on_gpu: { b: true },
      explicit_paddings: { list: {} },
    },
  });
  nodes.push({ name: 'relu', op: 'Relu', input: ['conv'], attr: { T } });
  addConst('pool_3/reduction_indices', new Int32Array([1, 2]), [2]);
  nodes.push({
    name: 'pool_3',
    op: 'Mean',
    input: ['relu', 'pool_3/reduction_indices'],
    attr: { T, Tidx: { type: 'DT_INT32' }, keep_dims: { b: true } },
  });
  addConst('features/shape', new Int32Array([-1, FILTERS]), [2]);
  nodes.push({
    name: 'features',
    op: 'Reshape',
    input: ['pool_3', 'features/shape'],
    attr: { T, Tshape: { type: 'DT_INT32' } },
  });
  if (opts.flatNode) {
    addConst('flat/shape', new Int32Array([-1]), [1]);
    nodes.push({
      name: 'flat',
      op: 'Reshape',
      input: ['relu', 'flat/shape'],
      attr: { T, Tshape: { type: 'DT_INT32' } },
    });
  }
  const bytes = Buffer.concat(values);
  const cut = Math.floor(bytes.length / 2);
  const json = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'medsynth test (hand-written)',
    modelTopology: { node: nodes, library: {}, versions: { producer: 1482 } },
    weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights }],
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(join(dir, 'group1-shard1of2.bin'), bytes.subarray(0, cut));
  await writeFile(join(dir, 'group1-shard2of2.bin'), bytes.subarray(cut));
}

/** Seeded N(0, 0.3²) values. */
function randomWeights(n: number, seed: number): Float32Array {
  const w = new Rng(seed).normals(n);
  return w.map((v) => 0.3 * v);
}

/** Seeded 8-bit images. */
function randomImages(count: number, size: number, channels: 1 | 3, seed: number): ImageArray {
  const rng = new Rng(seed);
  const data = Uint8Array.from({ length: count * size * size * channels }, () => rng.int(256));
  return { data, count, height: size, width: size, channels, maxValue: 255 };
}

/** Gray images with each plane copied into R, G and B. */
function toRgb(images: ImageArray): ImageArray {
  const n = images.count * images.height * images.width;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) data.fill(images.data[i]!, 3 * i, 3 * i + 3);
  return { ...images, data, channels: 3 };
}

/**
 * The network computed by hand in plain JS, on the prepared input (NHWC): conv 3×3 stride 2 with TF 'SAME'
 * padding (for 32 → 16 the one padding row/column goes bottom/right), + bias, ReLU, mean over positions.
 */
function handFeatures(
  x: Float32Array,
  n: number,
  size: number,
  filter: Float32Array,
  bias?: Float32Array,
): number[][] {
  const out = Math.ceil(size / STRIDE);
  const padTotal = Math.max((out - 1) * STRIDE + KERNEL - size, 0);
  const pad = Math.floor(padTotal / 2);
  const rows: number[][] = [];
  for (let b = 0; b < n; b++) {
    const sums = new Array<number>(FILTERS).fill(0);
    for (let oy = 0; oy < out; oy++)
      for (let ox = 0; ox < out; ox++)
        for (let f = 0; f < FILTERS; f++) {
          let acc = bias?.[f] ?? 0;
          for (let ky = 0; ky < KERNEL; ky++) {
            const iy = oy * STRIDE + ky - pad;
            if (iy < 0 || iy >= size) continue;
            for (let kx = 0; kx < KERNEL; kx++) {
              const ix = ox * STRIDE + kx - pad;
              if (ix < 0 || ix >= size) continue;
              for (let c = 0; c < 3; c++)
                acc +=
                  x[((b * size + iy) * size + ix) * 3 + c]! *
                  filter[((ky * KERNEL + kx) * 3 + c) * FILTERS + f]!;
            }
          }
          sums[f]! += Math.max(acc, 0);
        }
    rows.push(sums.map((s) => s / (out * out)));
  }
  return rows;
}

function prepared(images: ImageArray, spec: PrepareSpec): Float32Array {
  const x = prepareBatch(
    images,
    Array.from({ length: images.count }, (_, i) => i),
    spec,
  );
  try {
    return x.dataSync() as Float32Array;
  } finally {
    x.dispose();
  }
}

function assertClose(m: FeatureMatrix, expected: number[][], tol: number): void {
  assert.equal(m.rows, expected.length);
  assert.equal(m.cols, expected[0]!.length);
  expected.forEach((row, i) =>
    row.forEach((v, j) => {
      const got = m.data[i * m.cols + j]!;
      assert.ok(Math.abs(got - v) <= tol * Math.max(1, Math.abs(v)), `feature [${i}, ${j}]: ${got} vs ${v}`);
    }),
  );
}

const FILTER = randomWeights(KERNEL * KERNEL * 3 * FILTERS, 1);

before(async () => {
  await selectBackend();
  root = await mkdtemp(join(os.tmpdir(), 'medsynth-inception-'));
  await writeGraphModel(join(root, 'graph'), FILTER);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadInceptionExtractor: graph model', () => {
  test('features equal the network computed by hand; 28×28 gray images are resized to the model’s 32×32', async () => {
    const ex = await loadInceptionExtractor(join(root, 'graph'));
    try {
      const spec: PrepareSpec = { inputShape: [32, 32, 3], range: [-1, 1] };
      assert.equal(ex.info.kind, 'inception');
      assert.equal(ex.info.dim, FILTERS);
      assert.deepEqual(ex.info.inputShape, [32, 32, 3]);
      assert.match(ex.info.key, /^inception:[0-9a-f]{16}$/);
      assert.match(ex.info.description, /user-supplied network/);
      assert.match(ex.info.description, /`features`/);
      assert.equal(ex.info.preprocessing, describePreparation(spec));

      const images = randomImages(5, 28, 1, 2);
      const m = await ex.features(images);
      assert.equal(m.rows, 5);
      assert.equal(m.cols, FILTERS);
      assertClose(m, handFeatures(prepared(images, spec), 5, 32, FILTER), 1e-5);
      // Features differ between images (the check above is not trivially satisfied by zeros).
      assert.notEqual(m.data[0], m.data[FILTERS]);
    } finally {
      ex.dispose();
    }
  });

  test('a gray image and its RGB replica give identical features', async () => {
    const ex = await loadInceptionExtractor(join(root, 'graph'));
    try {
      const gray = randomImages(3, 32, 1, 3);
      const a = await ex.features(gray);
      const b = await ex.features(toRgb(gray));
      assert.deepEqual(a.data, b.data);
    } finally {
      ex.dispose();
    }
  });

  test('batches: progress ticks, abort between batches, results independent of the batch size, no leaks', async () => {
    const images = randomImages(5, 32, 3, 4);
    const before = tf.memory().numTensors;
    const big = await loadInceptionExtractor(join(root, 'graph'));
    const ex = await loadInceptionExtractor(join(root, 'graph'), { batchSize: 2 });
    try {
      const events: ProgressEvent[] = [];
      const m = await ex.features(images, { onProgress: (e) => events.push(e) });
      assert.deepEqual(
        events.map((e) => (e.type === 'tick' ? [e.phase, e.done, e.total, e.unit] : e.type)),
        [
          ['features', 2, 5, 'img'],
          ['features', 4, 5, 'img'],
          ['features', 5, 5, 'img'],
        ],
      );
      const whole = await big.features(images);
      assertClose(
        m,
        Array.from({ length: 5 }, (_, i) => [...whole.data.subarray(i * 8, i * 8 + 8)]),
        1e-6,
      );

      const warm = tf.memory().numTensors;
      await ex.features(images);
      assert.equal(tf.memory().numTensors, warm, 'features() leaks tensors');

      const ac = new AbortController();
      let ticks = 0;
      await assert.rejects(
        ex.features(images, {
          signal: ac.signal,
          onProgress: () => {
            ticks++;
            ac.abort(new Error('stop here'));
          },
        }),
        /stop here/,
      );
      assert.equal(ticks, 1);
      assert.equal(tf.memory().numTensors, warm, 'an aborted run leaks tensors');
    } finally {
      ex.dispose();
      big.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'dispose() frees the models');
  });

  test('outputNode picks another node; 4-D pool_3 is flattened to [N, 8]', async () => {
    const images = randomImages(3, 32, 3, 5);
    const a = await loadInceptionExtractor(join(root, 'graph'));
    const b = await loadInceptionExtractor(join(root, 'graph'), { outputNode: 'pool_3' });
    const c = await loadInceptionExtractor(join(root, 'graph'), { outputNode: 'relu:0' });
    try {
      assert.equal(b.info.dim, FILTERS);
      assert.deepEqual((await b.features(images)).data, (await a.features(images)).data);
      assert.match(b.info.description, /`pool_3`/);
      assert.equal(c.info.dim, 16 * 16 * FILTERS);
      assert.equal((await c.features(images)).cols, 16 * 16 * FILTERS);
      assert.notEqual(a.info.key, b.info.key);
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });

  test('a model of free input size uses inputSize (default 299); a fixed one refuses another inputSize', async () => {
    const dir = join(root, 'free');
    await writeGraphModel(dir, FILTER, { inputDims: [-1, -1, -1, 3] });
    const images = randomImages(2, 28, 1, 6);
    const d = await loadInceptionExtractor(dir, { batchSize: 1 });
    const e = await loadInceptionExtractor(dir, { inputSize: 32, range: [0, 255] });
    try {
      assert.deepEqual(d.info.inputShape, [299, 299, 3]);
      assert.deepEqual(e.info.inputShape, [32, 32, 3]);
      assert.equal(e.info.preprocessing, describePreparation({ inputShape: [32, 32, 3], range: [0, 255] }));
      const spec: PrepareSpec = { inputShape: [32, 32, 3], range: [0, 255] };
      assertClose(await e.features(images), handFeatures(prepared(images, spec), 2, 32, FILTER), 1e-5);
      assert.equal((await d.features(images)).cols, FILTERS);
    } finally {
      d.dispose();
      e.dispose();
    }
    await assert.rejects(loadInceptionExtractor(join(root, 'graph'), { inputSize: 64 }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /inputSize/);
      assert.match(err.message, /32×32/);
      return true;
    });
  });

  test('like the TF FID graph: a JPEG-string input is refused; feeding inputNode "ExpandDims" works', async () => {
    const dir = join(root, 'jpeg');
    await writeGraphModel(dir, FILTER, { jpegInput: true });
    await assert.rejects(loadInceptionExtractor(dir), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /"jpeg" takes string/);
      assert.match(err.message, /ExpandDims/);
      return true;
    });
    const ex = await loadInceptionExtractor(dir, { inputNode: 'ExpandDims', inputSize: 32, range: [0, 255] });
    try {
      const images = randomImages(2, 32, 3, 7);
      const spec: PrepareSpec = { inputShape: [32, 32, 3], range: [0, 255] };
      assertClose(await ex.features(images), handFeatures(prepared(images, spec), 2, 32, FILTER), 1e-5);
    } finally {
      ex.dispose();
    }
  });

  test('same files → same key; changed weights, output or range → another key', async () => {
    const copy = join(root, 'copy');
    await cp(join(root, 'graph'), copy, { recursive: true });
    const changed = join(root, 'changed');
    const filter = FILTER.slice();
    filter[0] = filter[0]! + 1e-3;
    await writeGraphModel(changed, filter);
    const keys = [];
    for (const [path, options] of [
      [join(root, 'graph'), {}],
      [copy, {}],
      [changed, {}],
      [join(root, 'graph'), { range: [0, 255] as const }],
      [join(root, 'graph', 'model.json'), {}],
    ] as const) {
      const ex = await loadInceptionExtractor(path, options);
      keys.push(ex.info.key);
      ex.dispose();
    }
    assert.equal(keys[0], keys[1]);
    assert.notEqual(keys[0], keys[2]);
    assert.notEqual(keys[0], keys[3]);
    assert.equal(keys[0], keys[4]);
  });
});

describe('loadInceptionExtractor: Layers model', () => {
  const kernel = randomWeights(KERNEL * KERNEL * 3 * FILTERS, 11);
  const bias = randomWeights(FILTERS, 12);
  let dir: string;

  before(async () => {
    dir = join(root, 'layers');
    await mkdir(dir, { recursive: true });
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          name: 'conv',
          inputShape: [32, 32, 3],
          filters: FILTERS,
          kernelSize: KERNEL,
          strides: STRIDE,
          padding: 'same',
          activation: 'relu',
        }),
        tfl.layers.globalAveragePooling2d({ name: 'pool' }),
        tfl.layers.dense({ name: 'logits', units: 4 }),
      ],
    });
    const ws = [
      tf.tensor4d(kernel, [KERNEL, KERNEL, 3, FILTERS]),
      tf.tensor1d(bias),
      tf.tensor2d(randomWeights(FILTERS * 4, 13), [FILTERS, 4]),
      tf.zeros([4]),
    ];
    model.setWeights(ws);
    tf.dispose(ws);
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        const json = {
          format: a.format,
          generatedBy: a.generatedBy,
          convertedBy: a.convertedBy ?? null,
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        };
        await writeFile(join(dir, 'model.json'), JSON.stringify(json));
        await writeFile(
          join(dir, 'weights.bin'),
          new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData!)),
        );
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    model.dispose();
  });

  test('the format is detected; default output = the model output; outputNode "pool" = conv/relu/mean by hand', async () => {
    assert.equal((await readModelFiles(dir)).format, 'layers-model');
    const images = randomImages(4, 28, 1, 14);
    const logits = await loadInceptionExtractor(dir);
    const pool = await loadInceptionExtractor(join(dir, 'model.json'), { outputNode: 'pool', batchSize: 3 });
    try {
      assert.equal(logits.info.dim, 4);
      assert.match(logits.info.description, /`logits` layer/);
      assert.equal((await logits.features(images)).cols, 4);
      assert.equal(pool.info.dim, FILTERS);
      assert.deepEqual(pool.info.inputShape, [32, 32, 3]);
      const spec: PrepareSpec = { inputShape: [32, 32, 3], range: [-1, 1] };
      assertClose(
        await pool.features(images),
        handFeatures(prepared(images, spec), 4, 32, kernel, bias),
        1e-5,
      );
      assert.notEqual(logits.info.key, pool.info.key);
    } finally {
      logits.dispose();
      pool.dispose();
    }
    await assert.rejects(loadInceptionExtractor(dir, { outputNode: 'pool_3' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /unknown output layer "pool_3"/);
      assert.match(err.message, /conv, pool, logits/);
      return true;
    });
  });
});

describe('loadInceptionExtractor: errors name the file or field', () => {
  test('missing model.json', async () => {
    const empty = join(root, 'empty');
    await mkdir(empty, { recursive: true });
    await assert.rejects(loadInceptionExtractor(empty), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /empty\/model\.json/);
      return true;
    });
    await assert.rejects(loadInceptionExtractor(join(root, 'nowhere')), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /nowhere/);
      return true;
    });
  });

  test('missing or truncated shard; model.json that is not a model', async () => {
    const missing = join(root, 'missing-shard');
    await cp(join(root, 'graph'), missing, { recursive: true });
    await unlink(join(missing, 'group1-shard2of2.bin'));
    await assert.rejects(loadInceptionExtractor(missing), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /group1-shard2of2\.bin/);
      return true;
    });
    const short = join(root, 'short-shard');
    await cp(join(root, 'graph'), short, { recursive: true });
    await truncate(join(short, 'group1-shard2of2.bin'), 10);
    await assert.rejects(loadInceptionExtractor(short), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /truncated or corrupt/);
      assert.match(err.message, /group1-shard2of2\.bin/);
      return true;
    });
    const junk = join(root, 'junk');
    await mkdir(junk, { recursive: true });
    await writeFile(join(junk, 'model.json'), '{"hello": 1}');
    await assert.rejects(loadInceptionExtractor(junk), /junk\/model\.json.*modelTopology/);
    await writeFile(join(junk, 'model.json'), '{"modelTopology": ');
    await assert.rejects(loadInceptionExtractor(junk), /not valid JSON/);
  });

  test('unknown output node lists the nodes; an output that is not one row per image is refused', async () => {
    await assert.rejects(
      loadInceptionExtractor(join(root, 'graph'), { outputNode: 'nope' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /unknown output node "nope"/);
        assert.match(err.message, /pool_3/);
        assert.match(err.message, /\[outputNode\]/);
        return true;
      },
    );
    const dir = join(root, 'flat');
    await writeGraphModel(dir, FILTER, { flatNode: true });
    await assert.rejects(loadInceptionExtractor(dir), /several outputs/);
    await assert.rejects(loadInceptionExtractor(dir, { outputNode: 'flat' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /"flat" is not \[images, features\]/);
      return true;
    });
  });

  test('bad options and empty image sets', async () => {
    await assert.rejects(loadInceptionExtractor(join(root, 'graph'), { batchSize: 0 }), /\[batchSize\]/);
    await assert.rejects(loadInceptionExtractor(join(root, 'graph'), { range: [1, -1] }), /\[range\]/);
    await assert.rejects(loadInceptionExtractor(join(root, 'graph'), { inputSize: 2.5 }), /\[inputSize\]/);
    const ex = await loadInceptionExtractor(join(root, 'graph'));
    try {
      await assert.rejects(ex.features({ ...randomImages(1, 32, 3, 1), count: 0 }), DatasetError);
    } finally {
      ex.dispose();
    }
  });
});
