/**
 * Seeded randomness. One root seed; named sub-streams (`data`, `split`, `init`, `z`, `augment`…) derived
 * from it by hashing the name, so adding a new consumer never shifts another's numbers.
 * Backed by pure-rand's xoroshiro128+.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';

export class Rng {
  #gen: ReturnType<typeof xoroshiro128plus>;

  constructor(seed: number) {
    this.#gen = xoroshiro128plus(seed | 0);
  }

  /** A generator continuing exactly from a state saved with `state()` (checkpoints, resume). */
  static fromState(state: readonly number[]): Rng {
    const rng = new Rng(0);
    rng.#gen = xoroshiro128plusFromState(state);
    return rng;
  }

  /** The generator's full state: four 32-bit integers, JSON-safe. */
  state(): number[] {
    return [...this.#gen.getState()];
  }

  /** A generator for a named purpose, independent of every other name under the same seed. */
  static derive(seed: number, ...names: (string | number)[]): Rng {
    let h = hash32(String(seed));
    for (const n of names) h = hash32(`${h}:${n}`);
    return new Rng(h);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return uniformFloat64(this.#gen);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** `n` standard normals as float32. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** Gamma(shape, 1) by Marsaglia–Tsang; shape < 1 via the boost Gamma(a+1)·U^(1/a). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new RangeError(`gamma shape must be > 0, got ${shape}`);
    if (shape < 1) {
      let u = 0;
      while (u === 0) u = this.next();
      return this.gamma(shape + 1) * u ** (1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x ** 4) return d * v;
      if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** A sample from the symmetric Dirichlet(alpha) over k outcomes. */
  dirichlet(k: number, alpha: number): number[] {
    const g = Array.from({ length: k }, () => this.gamma(alpha));
    const s = g.reduce((a, b) => a + b, 0);
    return s > 0 ? g.map((x) => x / s) : g.map(() => 1 / k);
  }

  /** Fisher–Yates shuffle, in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
    return items;
  }
}

/** FNV-1a 32-bit hash of a string. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The latent vector of one generated image: `zDim` standard normals from the image's own seed, so image
 * `seed` is the same whatever else is generated with it, in any batch and any order.
 */
export function zFromSeed(seed: number, zDim: number): Float32Array {
  return Rng.derive(seed, 'z').normals(zDim);
}
