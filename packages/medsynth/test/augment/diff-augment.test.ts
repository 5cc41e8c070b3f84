import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients; tfjs-layers registers TF.js's (medsynth's models import it anyway).
import '@tensorflow/tfjs-layers';
import {
  adjustColor,
  augment,
  augmentNames,
  augmentPolicy,
  type AugmentPolicy,
  cutout,
  cutoutMask,
  DEFAULT_AUGMENT_POLICY,
  drawColor,
  drawCutout,
  drawTranslation,
  parseAugmentPolicy,
  translate,
} from '../../src/augment/diff-augment.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { ConfigError } from '../../src/runtime/errors.js';
import { Rng } from '../../src/runtime/random.js';

before(async () => {
  await selectBackend();
});

const ONLY = {
  translation: { translation: true, cutout: false, color: false },
  cutout: { translation: false, cutout: true, color: false },
  color: { translation: false, cutout: false, color: true },
} as const satisfies Record<string, AugmentPolicy>;

type Shape = [number, number, number, number];

/** Deterministic values in [−1, 1). */
function data(shape: Shape, seed = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1);
}

/** Runs `augment` and returns its values, disposing everything. */
function run(values: Float32Array, shape: Shape, p: number, policy: AugmentPolicy, rng: Rng): Float32Array {
  const x = tf.tensor4d(values, shape);
  const y = augment(x, p, policy, rng);
  const out = Float32Array.from(y.dataSync());
  tf.dispose([x, y]);
  return out;
}

/** The JS reference shift of one sample (zero fill), as `translate` documents it. */
function shiftSample(v: Float32Array, shape: Shape, i: number, dy: number, dx: number): Float32Array {
  const [, h, w, c] = shape;
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) {
        const sy = y - dy;
        const sx = x - dx;
        if (sy >= 0 && sy < h && sx >= 0 && sx < w)
          out[(y * w + x) * c + k] = v[((i * h + sy) * w + sx) * c + k]!;
      }
  return out;
}

function sample(v: Float32Array, shape: Shape, i: number): Float32Array {
  const size = shape[1] * shape[2] * shape[3];
  return v.slice(i * size, (i + 1) * size);
}

const equal = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  a.length === b.length && Array.from(a).every((v, i) => Object.is(v + 0, b[i]! + 0));

describe('policies', () => {
  test('DEFAULT_AUGMENT_POLICY has all three, frozen', () => {
    assert.deepEqual({ ...DEFAULT_AUGMENT_POLICY }, { translation: true, cutout: true, color: true });
    assert.ok(Object.isFrozen(DEFAULT_AUGMENT_POLICY));
  });

  test('parseAugmentPolicy reads comma-separated names in any order', () => {
    assert.deepEqual(parseAugmentPolicy('translation,cutout,color'), DEFAULT_AUGMENT_POLICY);
    assert.deepEqual(parseAugmentPolicy(' color , translation'), {
      translation: true,
      cutout: false,
      color: true,
    });
    assert.deepEqual(parseAugmentPolicy('cutout'), ONLY.cutout);
    assert.deepEqual(augmentNames(parseAugmentPolicy('cutout,color')), ['color', 'cutout']);
    assert.deepEqual(augmentPolicy(augmentNames(DEFAULT_AUGMENT_POLICY)), DEFAULT_AUGMENT_POLICY);
  });

  test('unknown or no names are a ConfigError naming the field', () => {
    assert.throws(
      () => parseAugmentPolicy('translation,flip', '--augment-ops'),
      (e: unknown) =>
        e instanceof ConfigError && /flip/.test(e.message) && e.context.field === '--augment-ops',
    );
    assert.throws(() => parseAugmentPolicy(' , '), ConfigError);
    assert.throws(() => augmentPolicy(['Color']), ConfigError);
  });
});

describe('augment', () => {
  const shape: Shape = [4, 8, 8, 3];
  const x = data(shape);

  test('p = 0 returns x unchanged (a copy), whatever the policy', () => {
    for (const policy of [DEFAULT_AUGMENT_POLICY, ONLY.color, ONLY.translation, ONLY.cutout]) {
      const t = tf.tensor4d(x, shape);
      const y = augment(t, 0, policy, new Rng(3));
      assert.notEqual(y, t);
      assert.deepEqual(y.dataSync(), x);
      y.dispose();
      assert.ok(!t.isDisposed);
      t.dispose();
    }
  });

  test('translate shifts each sample by its explicit (dy, dx), zero fill', () => {
    const s: Shape = [3, 5, 6, 2];
    const v = data(s, 2);
    const dy = [1, -2, 0];
    const dx = [0, 2, -5];
    const t = tf.tensor4d(v, s);
    const y = translate(t, dy, dx);
    const got = y.dataSync();
    for (let i = 0; i < 3; i++)
      assert.deepEqual(sample(got as Float32Array, s, i), shiftSample(v, s, i, dy[i]!, dx[i]!));
    // Sample 0 moved down one row: its first row is zero, its second row is the input's first.
    assert.deepEqual(Array.from(got.slice(0, 12)), new Array(12).fill(0));
    assert.deepEqual(Array.from(got.slice(12, 24)), Array.from(v.slice(0, 12)));
    tf.dispose([t, y]);
    const bad = tf.zeros([2, 2, 2, 1]) as tf.Tensor4D;
    assert.throws(() => translate(bad, [0], [0, 0]), /2 samples/);
    assert.throws(() => translate(bad, [0.5, 0], [0, 0]), /integers/);
    bad.dispose();
  });

  test('p = 1 translation: each sample is a zero-filled shift of itself by at most side/8', () => {
    const s: Shape = [8, 16, 16, 1];
    const v = data(s, 4);
    const rng = new Rng(11);
    const expected = drawTranslation(8, 16, 16, 1, Rng.fromState(rng.state()));
    const out = run(v, s, 1, ONLY.translation, rng);
    let moved = 0;
    for (let i = 0; i < 8; i++) {
      // Search every shift in range: exactly the drawn one reproduces the output.
      const found: [number, number][] = [];
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++)
          if (equal(sample(out, s, i), shiftSample(v, s, i, dy, dx))) found.push([dy, dx]);
      assert.deepEqual(found, [[expected.dy[i]!, expected.dx[i]!]], `sample ${i}`);
      if (found[0]![0] !== 0 || found[0]![1] !== 0) moved++;
    }
    assert.ok(moved >= 4, `only ${moved} of 8 samples moved`);
  });

  test('p = 1 cutout zeroes exactly one (side/2)² square per sample, all channels', () => {
    for (const side of [8, 7]) {
      const s: Shape = [6, side, side, 2];
      const ones = new Float32Array(s.reduce((a, b) => a * b, 1)).fill(1);
      const out = run(ones, s, 1, ONLY.cutout, new Rng(side));
      const half = Math.floor(side / 2);
      for (let i = 0; i < s[0]; i++) {
        const zeros: [number, number][] = [];
        for (let y = 0; y < side; y++)
          for (let x = 0; x < side; x++) {
            const a = out[((i * side + y) * side + x) * 2]!;
            const b = out[((i * side + y) * side + x) * 2 + 1]!;
            assert.equal(a, b);
            if (a === 0) zeros.push([y, x]);
          }
        assert.equal(zeros.length, half * half, `side ${side}, sample ${i}`);
        const ys = zeros.map((z) => z[0]);
        const xs = zeros.map((z) => z[1]);
        assert.equal(Math.max(...ys) - Math.min(...ys) + 1, half);
        assert.equal(Math.max(...xs) - Math.min(...xs) + 1, half);
      }
    }
  });

  test('cutoutMask and cutout follow the drawn boxes', () => {
    const boxes = drawCutout(2, 4, 4, 1, new Rng(5));
    const mask = cutoutMask(4, 4, boxes);
    const t = tf.ones([2, 4, 4, 1]) as tf.Tensor4D;
    const y = cutout(t, boxes);
    assert.deepEqual(y.dataSync(), mask);
    for (let i = 0; i < 2; i++) {
      const y0 = boxes.y0[i]!;
      const x0 = boxes.x0[i]!;
      for (let yy = 0; yy < 4; yy++)
        for (let xx = 0; xx < 4; xx++) {
          const inside = yy >= y0 && yy < y0 + 2 && xx >= x0 && xx < x0 + 2;
          assert.equal(mask[(i * 4 + yy) * 4 + xx], inside ? 0 : 1);
        }
    }
    tf.dispose([t, y]);
  });

  test('p = 1 colour: brightness, saturation around the channel mean, contrast around the image mean', () => {
    for (const s of [
      [3, 4, 4, 3],
      [3, 4, 4, 1],
    ] as Shape[]) {
      const v = data(s, 6);
      const rng = new Rng(21);
      const params = drawColor(s[0], 1, Rng.fromState(rng.state()));
      const out = run(v, s, 1, ONLY.color, rng);
      const [n, h, w, c] = s;
      const size = h * w * c;
      for (let i = 0; i < n; i++) {
        const b = params.brightness[i]!;
        const sat = params.saturation[i]!;
        const con = params.contrast[i]!;
        assert.ok(b >= -0.5 && b < 0.5 && sat >= 0 && sat < 2 && con >= 0.5 && con < 1.5);
        const y = Array.from(sample(v, s, i), (val) => val + b);
        if (c > 1) {
          for (let px = 0; px < h * w; px++) {
            let m = 0;
            for (let k = 0; k < c; k++) m += y[px * c + k]! / c;
            for (let k = 0; k < c; k++) y[px * c + k] = (y[px * c + k]! - m) * sat + m;
          }
        }
        const m = y.reduce((a, q) => a + q, 0) / size;
        const ref = y.map((q) => (q - m) * con + m);
        const got = sample(out, s, i);
        ref.forEach((r, k) =>
          assert.ok(Math.abs(got[k]! - r) < 1e-5, `sample ${i}[${k}]: ${got[k]} vs ${r}`),
        );
      }
    }
  });

  test('adjustColor with identity parameters is exact', () => {
    const t = tf.tensor4d(x, shape);
    const id = {
      brightness: new Float32Array(4),
      saturation: new Float32Array(4).fill(1),
      contrast: new Float32Array(4).fill(1),
    };
    const y = adjustColor(t, id);
    assert.deepEqual(y.dataSync(), x);
    tf.dispose([t, y]);
  });

  test('0 < p < 1: samples no coin flip chose come out bit-identical; others change', () => {
    const s: Shape = [16, 8, 8, 3];
    const v = data(s, 8);
    const rng = new Rng(9);
    const copy = Rng.fromState(rng.state());
    const color = drawColor(16, 0.3, copy);
    const shift = drawTranslation(16, 8, 8, 0.3, copy);
    const boxes = drawCutout(16, 8, 8, 0.3, copy);
    const out = run(v, s, 0.3, DEFAULT_AUGMENT_POLICY, rng);
    let untouched = 0;
    for (let i = 0; i < 16; i++) {
      const identity =
        color.brightness[i] === 0 &&
        color.saturation[i] === 1 &&
        color.contrast[i] === 1 &&
        shift.dy[i] === 0 &&
        shift.dx[i] === 0 &&
        boxes.on[i] === 0;
      assert.equal(equal(sample(out, s, i), sample(v, s, i)), identity, `sample ${i}`);
      if (identity) untouched++;
    }
    assert.ok(untouched > 0 && untouched < 16, `${untouched} untouched`);
  });

  test('the number of Rng draws depends only on batch size and policy, not on p', () => {
    const states = [0, 0.3, 1].map((p) => {
      const rng = new Rng(4);
      run(x, shape, p, DEFAULT_AUGMENT_POLICY, rng);
      return rng.state();
    });
    assert.deepEqual(states[0], states[1]);
    assert.deepEqual(states[1], states[2]);
  });

  test('same seed gives the same output, another seed another; resumable from the Rng state', () => {
    const a = run(x, shape, 1, DEFAULT_AUGMENT_POLICY, new Rng(1));
    const b = run(x, shape, 1, DEFAULT_AUGMENT_POLICY, new Rng(1));
    const c = run(x, shape, 1, DEFAULT_AUGMENT_POLICY, new Rng(2));
    assert.ok(equal(a, b));
    assert.ok(!equal(a, c));
    const rng = new Rng(5);
    run(x, shape, 0.5, DEFAULT_AUGMENT_POLICY, rng);
    const resumed = Rng.fromState(rng.state());
    assert.ok(
      equal(
        run(x, shape, 0.5, DEFAULT_AUGMENT_POLICY, rng),
        run(x, shape, 0.5, DEFAULT_AUGMENT_POLICY, resumed),
      ),
    );
  });

  test('gradients flow through every augmentation: right shape, finite, non-zero', () => {
    for (const policy of [DEFAULT_AUGMENT_POLICY, ONLY.color, ONLY.translation, ONLY.cutout]) {
      const t = tf.tensor4d(x, shape);
      const rng = new Rng(13);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(augment(v as tf.Tensor4D, 1, policy, rng))))(t);
      assert.deepEqual(g.shape, shape);
      const values = g.dataSync();
      assert.ok(values.every((q) => Number.isFinite(q)));
      assert.ok(values.some((q) => q !== 0));
      tf.dispose([t, g]);
    }
  });

  test('the translation gradient is 1 on pixels kept in view and 0 on pixels shifted out', () => {
    const s: Shape = [4, 8, 8, 1];
    const rng = new Rng(17);
    const { dy, dx } = drawTranslation(4, 8, 8, 1, Rng.fromState(rng.state()));
    const t = tf.zeros(s) as tf.Tensor4D;
    const g = tf.grad((v: tf.Tensor) => tf.sum(augment(v as tf.Tensor4D, 1, ONLY.translation, rng)))(t);
    const got = g.dataSync();
    for (let i = 0; i < 4; i++)
      for (let y = 0; y < 8; y++)
        for (let xx = 0; xx < 8; xx++) {
          const ty = y + dy[i]!;
          const tx = xx + dx[i]!;
          const kept = ty >= 0 && ty < 8 && tx >= 0 && tx < 8 ? 1 : 0;
          assert.equal(got[(i * 8 + y) * 8 + xx], kept);
        }
    tf.dispose([t, g]);
  });

  test('leaves no tensors behind inside tf.tidy (and outside it)', () => {
    const t = tf.tensor4d(x, shape);
    const rng = new Rng(1);
    tf.tidy(() => augment(t, 0.5, DEFAULT_AUGMENT_POLICY, rng)).dispose(); // warm-up
    const before = tf.memory().numTensors;
    for (const p of [0, 0.5, 1]) {
      tf.tidy(() => {
        augment(t, p, DEFAULT_AUGMENT_POLICY, rng);
      });
      augment(t, p, DEFAULT_AUGMENT_POLICY, rng).dispose();
      tf.tidy(() => {
        tf.grad((v: tf.Tensor) => tf.sum(augment(v as tf.Tensor4D, p, DEFAULT_AUGMENT_POLICY, rng)))(t);
      });
    }
    assert.equal(tf.memory().numTensors, before);
    t.dispose();
  });

  test('rejects p outside [0, 1] and a batch that is not 4-D', () => {
    const t = tf.tensor4d(x, shape);
    const rng = new Rng(1);
    for (const p of [-0.1, 1.5, Number.NaN])
      assert.throws(() => augment(t, p, DEFAULT_AUGMENT_POLICY, rng), /p must be in/);
    const flat = tf.zeros([4, 8, 8]);
    assert.throws(() => augment(flat as tf.Tensor4D, 1, DEFAULT_AUGMENT_POLICY, rng), /\[N, H, W, C\]/);
    tf.dispose([t, flat]);
  });
});
