import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  ADVERSARIAL_LOSSES,
  type AdversarialLoss,
  auxiliaryClassLoss,
  discriminatorLoss,
  generatorLoss,
} from '../../src/losses/index.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

const softplus = (x: number) => Math.log1p(Math.exp(x));
const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

const REAL = [2, -1, 0.5];
const FAKE = [-3, 1, 0];

/** The value of a scalar tensor, disposing it. */
function value(t: tf.Scalar): number {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
}

function close(actual: number, expected: number, tol = 1e-5): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `expected ${expected}, got ${actual}`,
  );
}

/** A loss on 1-D logit arrays, as `[N, 1]` tensors. */
function dLoss(kind: AdversarialLoss, real: number[], fake: number[], labelSmoothing?: number): number {
  return value(
    tf.tidy(() =>
      discriminatorLoss(
        kind,
        tf.tensor2d(real, [real.length, 1]),
        tf.tensor2d(fake, [fake.length, 1]),
        labelSmoothing === undefined ? {} : { labelSmoothing },
      ),
    ),
  );
}

function gLoss(kind: AdversarialLoss, fake: number[]): number {
  return value(tf.tidy(() => generatorLoss(kind, tf.tensor2d(fake, [fake.length, 1]))));
}

describe('discriminatorLoss and generatorLoss: values computed by hand', () => {
  const cases: { kind: AdversarialLoss; d: number; g: number }[] = [
    {
      kind: 'nonsaturating',
      // mean softplus(−r) + mean softplus(f)
      d: (softplus(-2) + softplus(1) + softplus(-0.5)) / 3 + (softplus(-3) + softplus(1) + softplus(0)) / 3,
      // mean softplus(−f)
      g: (softplus(3) + softplus(-1) + softplus(0)) / 3,
    },
    {
      kind: 'hinge',
      // relu(1 − r) = [0, 2, 0.5]; relu(1 + f) = [0, 2, 1]
      d: (0 + 2 + 0.5) / 3 + (0 + 2 + 1) / 3,
      g: -(-3 + 1 + 0) / 3,
    },
    {
      kind: 'wgan',
      d: (-3 + 1 + 0) / 3 - (2 - 1 + 0.5) / 3,
      g: -(-3 + 1 + 0) / 3,
    },
  ];
  for (const c of cases) {
    test(`${c.kind}: D and G`, () => {
      close(dLoss(c.kind, REAL, FAKE), c.d);
      close(gLoss(c.kind, FAKE), c.g);
    });
  }

  test('ADVERSARIAL_LOSSES lists the three kinds', () => {
    assert.deepEqual([...ADVERSARIAL_LOSSES], ['nonsaturating', 'hinge', 'wgan']);
  });

  test('non-saturating label smoothing is BCE against the target 1 − s on reals only', () => {
    const s = 0.1;
    const t = 1 - s;
    const bce = (x: number) => -(t * Math.log(sigmoid(x)) + (1 - t) * Math.log(1 - sigmoid(x)));
    const expected = mean(REAL.map(bce)) + mean(FAKE.map(softplus));
    close(dLoss('nonsaturating', REAL, FAKE, s), expected);
    // And not the unsmoothed value.
    assert.ok(Math.abs(dLoss('nonsaturating', REAL, FAKE, s) - dLoss('nonsaturating', REAL, FAKE)) > 1e-3);
  });

  test('label smoothing does not change hinge or WGAN', () => {
    for (const kind of ['hinge', 'wgan'] as const)
      close(dLoss(kind, REAL, FAKE, 0.2), dLoss(kind, REAL, FAKE));
  });

  test('[N] and [N, 1] logits give the same losses', () => {
    for (const kind of ADVERSARIAL_LOSSES) {
      const flat = value(tf.tidy(() => discriminatorLoss(kind, tf.tensor1d(REAL), tf.tensor1d(FAKE))));
      close(flat, dLoss(kind, REAL, FAKE));
      close(value(tf.tidy(() => generatorLoss(kind, tf.tensor1d(FAKE)))), gLoss(kind, FAKE));
    }
  });

  test('non-saturating losses are finite and exact for saturated logits (softplus, not log σ)', () => {
    // softplus(−1000) = 0 and softplus(1000) = 1000: log(sigmoid(−1000)) would be −∞.
    close(dLoss('nonsaturating', [1000, -1000], [-1000, 1000]), 1000 / 2 + 1000 / 2);
    close(gLoss('nonsaturating', [-1000, 1000]), 1000 / 2);
    close(dLoss('nonsaturating', [100, 100], [-100, -100]), 0);
  });

  test('non-saturating D gradient w.r.t. the real logits is −σ(−r)/N', () => {
    const g = tf.tidy(() =>
      tf.grad((r: tf.Tensor) => discriminatorLoss('nonsaturating', r, tf.tensor1d(FAKE)))(tf.tensor1d(REAL)),
    );
    const got = Array.from(g.dataSync());
    g.dispose();
    REAL.forEach((r, i) => close(got[i]!, -sigmoid(-r) / REAL.length));
  });

  test('leaves no tensors behind', () => {
    const real = tf.tensor2d(REAL, [3, 1]);
    const fake = tf.tensor2d(FAKE, [3, 1]);
    const before = tf.memory().numTensors;
    for (const kind of ADVERSARIAL_LOSSES) {
      tf.tidy(() => discriminatorLoss(kind, real, fake, { labelSmoothing: 0.1 })).dispose();
      tf.tidy(() => generatorLoss(kind, fake)).dispose();
      discriminatorLoss(kind, real, fake).dispose();
      generatorLoss(kind, fake).dispose();
    }
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([real, fake]);
  });

  test('rejects an unknown kind and a smoothing outside [0, 1)', () => {
    const r = tf.tensor1d(REAL);
    const f = tf.tensor1d(FAKE);
    const before = tf.memory().numTensors;
    assert.throws(
      () => discriminatorLoss('lsgan' as AdversarialLoss, r, f),
      /unknown adversarial loss 'lsgan'/,
    );
    assert.throws(() => generatorLoss('lsgan' as AdversarialLoss, f), /unknown adversarial loss 'lsgan'/);
    assert.throws(() => discriminatorLoss('nonsaturating', r, f, { labelSmoothing: 1 }), /labelSmoothing/);
    assert.throws(() => discriminatorLoss('nonsaturating', r, f, { labelSmoothing: -0.1 }), /labelSmoothing/);
    assert.throws(
      () => discriminatorLoss('nonsaturating', r, f, { labelSmoothing: Number.NaN }),
      /labelSmoothing/,
    );
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([r, f]);
  });
});

describe('auxiliaryClassLoss', () => {
  test('softmax cross-entropy by hand', () => {
    const logits = [
      [1, 2, 3],
      [0, 0, 0],
      [2, -1, 0.5],
    ];
    const labels = [2, 0, 1];
    const lse = (row: number[]) => Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
    const expected = mean(logits.map((row, i) => lse(row) - row[labels[i]!]!));
    close(
      value(tf.tidy(() => auxiliaryClassLoss(tf.tensor2d(logits), tf.tensor1d(labels, 'int32')))),
      expected,
    );
    // Row 2 alone is log 3.
    close(
      value(tf.tidy(() => auxiliaryClassLoss(tf.tensor2d([[0, 0, 0]]), tf.tensor1d([0], 'int32')))),
      Math.log(3),
    );
  });

  test('gradient w.r.t. the logits is (softmax − onehot)/N', () => {
    const logits = [
      [1, 2, 3],
      [0.5, -1, 0],
    ];
    const labels = [0, 2];
    const g = tf.tidy(() =>
      tf.grad((l: tf.Tensor) => auxiliaryClassLoss(l as tf.Tensor2D, tf.tensor1d(labels, 'int32')))(
        tf.tensor2d(logits),
      ),
    );
    const got = g.arraySync() as number[][];
    g.dispose();
    logits.forEach((row, i) => {
      const z = row.reduce((a, x) => a + Math.exp(x), 0);
      row.forEach((x, k) =>
        close(got[i]![k]!, (Math.exp(x) / z - (k === labels[i] ? 1 : 0)) / logits.length),
      );
    });
  });

  test('stable for large logits', () => {
    const v = value(
      tf.tidy(() => auxiliaryClassLoss(tf.tensor2d([[1000, -1000, 0]]), tf.tensor1d([1], 'int32'))),
    );
    close(v, 2000);
  });

  test('rejects mismatched shapes', () => {
    const l = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const y = tf.tensor1d([0, 1, 1], 'int32');
    assert.throws(() => auxiliaryClassLoss(l, y), /logits \[N, K\] and labels \[N\]/);
    tf.dispose([l, y]);
  });
});
