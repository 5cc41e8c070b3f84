/**
 * ADA's controller (Karras et al. 2020): the overfitting heuristic r_t = E[sign(D(real))] is collected over
 * an interval, then the augmentation probability moves by ±(images in the interval)/(speed · 1000) toward
 * keeping r_t at the target (0.6): D too sure about reals → more augmentation. Clamped to [0, 1].
 */
export interface AdaOptions {
  /** Target of r_t (default 0.6). */
  readonly target?: number | undefined;
  /** kimg for p to go from 0 to 1 at full speed (default 100; StyleGAN2-ADA used 500). */
  readonly speedKimg?: number | undefined;
  /** Starting p (default 0). */
  readonly initialP?: number | undefined;
}

export interface AdaState {
  readonly p: number;
  readonly rt: number | null;
  readonly target: number;
  readonly speedKimg: number;
  readonly signSum: number;
  readonly count: number;
}

export class AdaController {
  readonly target: number;
  readonly speedKimg: number;
  #p: number;
  #rt: number | null = null;
  #signSum = 0;
  #count = 0;

  constructor(options: AdaOptions = {}) {
    this.target = options.target ?? 0.6;
    this.speedKimg = options.speedKimg ?? 100;
    this.#p = options.initialP ?? 0;
    if (!(this.speedKimg > 0)) throw new RangeError(`ADA speedKimg must be > 0, got ${this.speedKimg}`);
  }

  /** The current augmentation probability. */
  get p(): number {
    return this.#p;
  }

  /** r_t of the last interval (null before the first update). */
  get rt(): number | null {
    return this.#rt;
  }

  /** Adds Σ sign(D(real)) over `count` real images. */
  accumulate(signSum: number, count: number): void {
    this.#signSum += signSum;
    this.#count += count;
  }

  /** Ends an interval in which `images` real images were shown: updates r_t and p. */
  update(images: number): void {
    if (this.#count === 0) return;
    const rt = this.#signSum / this.#count;
    this.#rt = rt;
    const adjust = Math.sign(rt - this.target) * (images / (this.speedKimg * 1000));
    this.#p = Math.min(1, Math.max(0, this.#p + adjust));
    this.#signSum = 0;
    this.#count = 0;
  }

  state(): AdaState {
    return {
      p: this.#p,
      rt: this.#rt,
      target: this.target,
      speedKimg: this.speedKimg,
      signSum: this.#signSum,
      count: this.#count,
    };
  }

  static fromState(s: AdaState): AdaController {
    const c = new AdaController({ target: s.target, speedKimg: s.speedKimg, initialP: s.p });
    c.#rt = s.rt;
    c.#signSum = s.signSum;
    c.#count = s.count;
    return c;
  }
}
