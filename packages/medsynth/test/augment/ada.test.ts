import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdaController, type AdaState } from '../../src/augment/ada.js';

describe('AdaController', () => {
  test('defaults: p = 0, no r_t yet, target 0.6, speed 100 kimg, interval 4', () => {
    const c = new AdaController();
    assert.equal(c.p, 0);
    assert.equal(c.rt, null);
    assert.equal(c.target, 0.6);
    assert.equal(c.speedKimg, 100);
    assert.equal(c.interval, 4);
  });

  test('r_t above the target raises p by images / (speedKimg · 1000)', () => {
    const c = new AdaController();
    c.accumulate(6, 8); // D says "real" for 7 of 8 reals: Σ sign = 7 − 1
    c.accumulate(2, 2);
    c.update(1000);
    assert.equal(c.rt, 8 / 10);
    assert.equal(c.p, 1000 / (100 * 1000));
  });

  test('r_t below the target lowers p', () => {
    const c = new AdaController({ initialP: 0.5, speedKimg: 500 });
    c.accumulate(-2, 10);
    c.update(2000);
    assert.equal(c.rt, -0.2);
    assert.equal(c.p, 0.5 - 2000 / (500 * 1000));
  });

  test('r_t exactly at the target leaves p unchanged', () => {
    const c = new AdaController({ initialP: 0.3, target: 0.5 });
    c.accumulate(2, 4);
    c.update(64);
    assert.equal(c.rt, 0.5);
    assert.equal(c.p, 0.3);
  });

  test('p is clamped to [0, 1]', () => {
    const low = new AdaController({ initialP: 0.001 });
    low.accumulate(-4, 4);
    low.update(1e6);
    assert.equal(low.p, 0);
    const high = new AdaController({ initialP: 0.999 });
    high.accumulate(4, 4);
    high.update(1e6);
    assert.equal(high.p, 1);
  });

  test('an update without accumulated images changes nothing; sums restart after an update', () => {
    const c = new AdaController({ initialP: 0.2 });
    c.update(1000);
    assert.equal(c.p, 0.2);
    assert.equal(c.rt, null);
    c.accumulate(4, 4);
    c.update(100);
    assert.deepEqual({ signSum: c.state().signSum, count: c.state().count }, { signSum: 0, count: 0 });
    c.accumulate(-4, 4);
    c.update(100);
    assert.equal(c.rt, -1);
    assert.ok(Math.abs(c.p - 0.2) < 1e-15);
  });

  test('isUpdateStep is every `interval` steps', () => {
    const c = new AdaController({ interval: 3 });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((s) => c.isUpdateStep(s)),
      [false, false, true, false, false, true],
    );
  });

  test('state() is plain JSON and fromState continues exactly', () => {
    const a = new AdaController({ target: 0.55, speedKimg: 20, interval: 2 });
    const feed = (c: AdaController, i: number) => {
      c.accumulate(8 - ((i * 3) % 7), 8);
      if (i % 2 === 1) c.update(16);
    };
    for (let i = 0; i < 9; i++) feed(a, i); // ends mid-interval: the partial sums must survive too
    const saved = JSON.parse(JSON.stringify(a.state())) as AdaState;
    assert.deepEqual(saved, a.state());
    assert.notEqual(saved.count, 0);
    const b = AdaController.fromState(saved);
    assert.deepEqual(b.state(), a.state());
    for (let i = 9; i < 30; i++) {
      feed(a, i);
      feed(b, i);
    }
    assert.deepEqual(b.state(), a.state());
    assert.ok(a.p > 0);
  });

  test('fromState accepts a state written without `interval` (default 4)', () => {
    const c = AdaController.fromState({
      p: 0.25,
      rt: 0.7,
      target: 0.6,
      speedKimg: 100,
      signSum: 3,
      count: 5,
    });
    assert.equal(c.interval, 4);
    assert.equal(c.p, 0.25);
    assert.equal(c.rt, 0.7);
  });

  test('rejects bad options, inputs and states', () => {
    assert.throws(() => new AdaController({ speedKimg: 0 }), /speedKimg/);
    assert.throws(() => new AdaController({ target: 1.5 }), /target/);
    assert.throws(() => new AdaController({ interval: 0 }), /interval/);
    assert.throws(() => new AdaController({ interval: 1.5 }), /interval/);
    assert.throws(() => new AdaController({ initialP: -0.1 }), /initialP/);
    assert.throws(() => new AdaController({ initialP: Number.NaN }), /initialP/);
    const c = new AdaController();
    assert.throws(() => c.accumulate(5, 2), /realLogitsSignSum/);
    assert.throws(() => c.accumulate(1, 1.5), /count/);
    assert.throws(() => c.update(-1), /imagesSinceLast/);
    const good = new AdaController().state();
    assert.throws(() => AdaController.fromState({ ...good, count: -1 }), /count/);
    assert.throws(() => AdaController.fromState({ ...good, p: 2 }), /initialP/);
    assert.throws(() => AdaController.fromState({ ...good, rt: 3 }), /rt/);
  });
});
