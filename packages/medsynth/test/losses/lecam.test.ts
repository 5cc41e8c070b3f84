/** LeCam's penalty, its gradient and the anchor updates against hand-computed values. */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { LECAM_DECAY, lecamPenalty, nextLecamAnchors } from '../../src/losses/lecam.js';
import { selectBackend } from '../../src/runtime/backend.js';

before(async () => {
  await selectBackend();
});

const REAL = [1.5, -0.5, 0.2];
const FAKE = [-1, 0.3, 2];
const ANCHORS = { real: 0.4, fake: -0.2 };

test('the penalty is mean relu(D(x) − α_F)² + mean relu(α_R − D(G(z)))²', () => {
  // real − α_F = 1.7, −0.3, 0.4 → relu² 2.89, 0, 0.16; α_R − fake = 1.4, 0.1, −1.6 → relu² 1.96, 0.01, 0.
  const expected = (2.89 + 0 + 0.16) / 3 + (1.96 + 0.01 + 0) / 3;
  const p = tf.tidy(() => lecamPenalty(tf.tensor2d(REAL, [3, 1]), tf.tensor1d(FAKE), ANCHORS));
  assert.ok(Math.abs(p.dataSync()[0]! - expected) < 1e-6, `${p.dataSync()[0]} vs ${expected}`);
  p.dispose();
});

test('its gradient pulls real logits down toward α_F and fake logits up toward α_R, only past them', () => {
  const [gReal, gFake] = tf.tidy(() =>
    tf
      .grads((r: tf.Tensor, f: tf.Tensor) => lecamPenalty(r, f, ANCHORS))([
        tf.tensor1d(REAL),
        tf.tensor1d(FAKE),
      ])
      .map((g) => Array.from(g.dataSync())),
  ) as [number[], number[]];
  // d/dr mean(relu(r − α_F)²) = 2·relu(r − α_F)/n; d/df mean(relu(α_R − f)²) = −2·relu(α_R − f)/n.
  const want = [
    [(2 * 1.7) / 3, 0, (2 * 0.4) / 3],
    [(-2 * 1.4) / 3, (-2 * 0.1) / 3, 0],
  ];
  for (const [got, exp] of [
    [gReal, want[0]!],
    [gFake, want[1]!],
  ] as const) {
    got.forEach((g, i) => assert.ok(Math.abs(g - exp[i]!) < 1e-6, `${got} vs ${exp}`));
  }
});

test('anchors start at the first means, then move by (1 − decay) toward each new mean', () => {
  const first = nextLecamAnchors(null, 0.8, -0.6);
  assert.deepEqual(first, { real: 0.8, fake: -0.6 });
  const second = nextLecamAnchors(first, 1.8, 0.4);
  assert.ok(Math.abs(second.real - (0.99 * 0.8 + 0.01 * 1.8)) < 1e-12);
  assert.ok(Math.abs(second.fake - (0.99 * -0.6 + 0.01 * 0.4)) < 1e-12);
  assert.equal(LECAM_DECAY, 0.99);
  const fast = nextLecamAnchors(first, 1.8, 0.4, 0.5);
  assert.ok(Math.abs(fast.real - 1.3) < 1e-12 && Math.abs(fast.fake - -0.1) < 1e-12, JSON.stringify(fast));
});
