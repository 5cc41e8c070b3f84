import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveTrainOptions, TRAIN_PRESETS, trainPresetForSize } from '../../src/config/train-options.js';
import { ConfigError } from '../../src/runtime/errors.js';

const data = { source: 'x.npz' };

describe('resolveTrainOptions', () => {
  test('the default preset fills every field; user values win; the result is frozen', () => {
    const o = resolveTrainOptions({ data, model: 'acgan', batchSize: 32 });
    assert.equal(o.preset, 'medmnist-28');
    assert.equal(o.model, 'acgan');
    assert.equal(o.batchSize, 32);
    assert.equal(o.size, 28);
    assert.equal(o.loss, 'hinge');
    assert.equal(o.minutes, TRAIN_PRESETS['medmnist-28']!.minutes);
    assert.equal(o.data.source, 'x.npz');
    assert.equal(o.data.seed, 0);
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.data) && Object.isFrozen(o.augmentOps));
  });

  test('an explicit kimg replaces the preset’s time budget, and minutes replaces its kimg', () => {
    assert.equal(resolveTrainOptions({ data, kimg: 5 }).minutes, undefined);
    assert.equal(resolveTrainOptions({ data, kimg: 5 }).kimg, 5);
    const t = resolveTrainOptions({ data, preset: 'tiny', minutes: 2 });
    assert.equal(t.kimg, undefined);
    assert.equal(t.minutes, 2);
    const both = resolveTrainOptions({ data, kimg: 5, minutes: 2 });
    assert.deepEqual([both.kimg, both.minutes], [5, 2]);
  });

  test('each image size maps to a preset made for that size', () => {
    // 32 px shares the 28-px preset (same network depth); from 64 px up, ADA + R1 presets of that size.
    assert.deepEqual(
      [28, 32, 64, 128].map((s) => trainPresetForSize(s)),
      ['medmnist-28', 'medmnist-28', 'small-64', 'small-128'],
    );
    for (const size of [64, 128]) assert.equal(TRAIN_PRESETS[trainPresetForSize(size)]!.size, size);
    // The diffusion family has its own presets up to 64 px.
    assert.deepEqual(
      [28, 32, 64, 128].map((s) => trainPresetForSize(s, 'ddpm')),
      ['ddpm-28', 'ddpm-28', 'ddpm-64', 'small-128'],
    );
    for (const name of ['ddpm-28', 'ddpm-64'])
      assert.equal(resolveTrainOptions({ data, preset: name }).model, 'ddpm');
  });

  test('a family default does not resize the smoke preset', () => {
    // --model ddpm over a GAN preset gets the diffusion width; over `tiny` it keeps tiny's networks.
    assert.equal(resolveTrainOptions({ data, preset: 'medmnist-28', model: 'ddpm' }).gWidth, 16);
    assert.equal(resolveTrainOptions({ data, preset: 'tiny', model: 'ddpm' }).gWidth, 8);
    assert.equal(resolveTrainOptions({ data, preset: 'tiny', model: 'ddpm' }).gLr, 5e-4);
  });

  test('presets differ where they should', () => {
    assert.equal(resolveTrainOptions({ data, preset: 'small-64' }).augment, 'ada');
    assert.equal(resolveTrainOptions({ data, preset: 'small-64' }).size, 64);
    assert.equal(resolveTrainOptions({ data, preset: 'tiny' }).gWidth, 8);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['unknown preset', { preset: 'huge' }, /preset/],
    ['size not offered', { size: 48 }, /size/],
    ['negative learning rate', { gLr: -1 }, /gLr/],
    ['unknown loss', { loss: 'lsgan' }, /loss/],
    ['unknown augmentation op', { augmentOps: ['rotate'] }, /augmentOps/],
    ['unknown field', { epochs: 3 }, /epochs|train options/],
    ['label smoothing above 0.5', { labelSmoothing: 0.7 }, /labelSmoothing/],
    ['bad run name', { name: 'a b/c' }, /name/],
  ];
  for (const [what, input, field] of bad) {
    test(`rejects ${what} with a ConfigError naming the field`, () => {
      assert.throws(
        () => resolveTrainOptions({ data, ...input } as Parameters<typeof resolveTrainOptions>[0]),
        (e: unknown) => e instanceof ConfigError && field.test(`${e.context.field} ${e.message}`),
      );
    });
  }
});
