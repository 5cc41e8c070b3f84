/**
 * ADA's controller (Karras et al. 2020, StyleGAN2-ADA): the overfitting heuristic r_t = E[sign(D(real))] is
 * collected over an interval (every `interval` D steps), then the augmentation probability moves by
 * ±(images shown in the interval)/(speedKimg · 1000) so as to hold r_t at the target (0.6): D too sure about
 * the reals → more augmentation, less sure → less. p stays in [0, 1]. Plain numbers only: deterministic, and
 * its state is JSON for checkpoints.
 */

export interface AdaOptions {
  /** Target of r_t, in [0, 1] (default 0.6). */
  readonly target?: number | undefined;
  /**
   * Thousands of images for p to go from 0 to 1 when r_t stays on one side of the target (default 100, for
   * small medical sets; StyleGAN2-ADA used 500).
   */
  readonly speedKimg?: number | undefined;
  /** D steps between updates (default 4); the training loop calls `update` when `isUpdateStep(step)`. */
  readonly interval?: number | undefined;
  /** Starting p, in [0, 1] (default 0). */
  readonly initialP?: number | undefined;
}

/** The controller's whole state, plain JSON. */
export interface AdaState {
  readonly p: number;
  /** r_t of the last update; null before the first. */
  readonly rt: number | null;
  readonly target: number;
  readonly speedKimg: number;
  /** Absent in checkpoints written before it existed (then the default, 4). */
  readonly interval?: number | undefined;
  /** Σ sign(D(real)) since the last update. */
  readonly signSum: number;
  /** Real images counted in `signSum`. */
  readonly count: number;
}

const DEFAULTS = { target: 0.6, speedKimg: 100, interval: 4, initialP: 0 } as const;

export class AdaController {
  readonly target: number;
  readonly speedKimg: number;
  readonly interval: number;
  #p: number;
  #rt: number | null = null;
  #signSum = 0;
  #count = 0;

  constructor(options: AdaOptions = {}) {
    this.target = options.target ?? DEFAULTS.target;
    this.speedKimg = options.speedKimg ?? DEFAULTS.speedKimg;
    this.interval = options.interval ?? DEFAULTS.interval;
    this.#p = options.initialP ?? DEFAULTS.initialP;
    check('target', this.target, this.target >= 0 && this.target <= 1, 'in [0, 1]');
    check('speedKimg', this.speedKimg, this.speedKimg > 0 && Number.isFinite(this.speedKimg), '> 0');
    check('interval', this.interval, Number.isInteger(this.interval) && this.interval >= 1, 'an integer ≥ 1');
    check('initialP', this.#p, this.#p >= 0 && this.#p <= 1, 'in [0, 1]');
  }

  /** The current augmentation probability. */
  get p(): number {
    return this.#p;
  }

  /** r_t of the last update (null before the first). */
  get rt(): number | null {
    return this.#rt;
  }

  /** Whether D step `step` (counted from 1) ends an interval: `step % interval === 0`. */
  isUpdateStep(step: number): boolean {
    return step % this.interval === 0;
  }

  /** Adds Σ sign(D(real)) over `count` real images (D's logits on the augmented reals). */
  accumulate(realLogitsSignSum: number, count: number): void {
    check(
      'realLogitsSignSum',
      realLogitsSignSum,
      Math.abs(realLogitsSignSum) <= count,
      `in [−${count}, ${count}]`,
    );
    check('count', count, Number.isInteger(count) && count >= 0, 'an integer ≥ 0');
    this.#signSum += realLogitsSignSum;
    this.#count += count;
  }

  /**
   * Ends an interval in which `imagesSinceLast` real images were shown: r_t = signSum / count,
   * p ← clamp(p + sign(r_t − target) · imagesSinceLast / (speedKimg · 1000), 0, 1), and the sums restart.
   * Does nothing when nothing was accumulated.
   */
  update(imagesSinceLast: number): void {
    check(
      'imagesSinceLast',
      imagesSinceLast,
      imagesSinceLast >= 0 && Number.isFinite(imagesSinceLast),
      '≥ 0',
    );
    if (this.#count === 0) return;
    const rt = this.#signSum / this.#count;
    this.#rt = rt;
    const adjust = Math.sign(rt - this.target) * (imagesSinceLast / (this.speedKimg * 1000));
    this.#p = Math.min(1, Math.max(0, this.#p + adjust));
    this.#signSum = 0;
    this.#count = 0;
  }

  /** Plain JSON, for checkpoints. */
  state(): AdaState {
    return {
      p: this.#p,
      rt: this.#rt,
      target: this.target,
      speedKimg: this.speedKimg,
      interval: this.interval,
      signSum: this.#signSum,
      count: this.#count,
    };
  }

  /** A controller continuing exactly from `state()`. */
  static fromState(s: AdaState): AdaController {
    const c = new AdaController({
      target: s.target,
      speedKimg: s.speedKimg,
      interval: s.interval ?? DEFAULTS.interval,
      initialP: s.p,
    });
    check('rt', s.rt ?? 0, s.rt === null || (s.rt >= -1 && s.rt <= 1), 'null or in [−1, 1]');
    check('count', s.count, Number.isInteger(s.count) && s.count >= 0, 'an integer ≥ 0');
    check('signSum', s.signSum, Math.abs(s.signSum) <= s.count, `in [−${s.count}, ${s.count}]`);
    c.#rt = s.rt;
    c.#signSum = s.signSum;
    c.#count = s.count;
    return c;
  }
}

function check(field: string, value: number, ok: boolean, expected: string): void {
  if (!ok || Number.isNaN(value)) throw new RangeError(`ADA ${field} must be ${expected}, got ${value}`);
}
