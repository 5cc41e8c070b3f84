/**
 * Generation plans (pure functions): how many images of each class to generate, and which seed each image
 * gets.
 *
 * Plans, one of:
 * - `--per-class N`: N images of every class;
 * - `--counts name=N,name=N`: the listed classes (by name, or by index when no class has that name), others 0;
 * - `--balance-to <count|max>`: tops every class up to `count` real + synthetic images, or to the largest real
 *   class count with `max` (classes already at or above the target get 0) — the rebalancing plan of a study.
 *   It needs the real (train) class counts.
 *
 * Seeds: `--seeds a-b` (inclusive), `a,b,c`, or a mix (`0-99,500,1000-1099`); default 0, 1, 2… upward.
 * **Seed order**: the plan's images take the seeds in the order given, class by class — class 0's images take
 * the first `counts[0]` seeds, class 1's the next `counts[1]`, and so on (classes with no images take none).
 * Each image's latent comes from its own seed only (`zFromSeed`), so an image is the same whatever plan or
 * batch it is generated in. Seeds are integers in 0..2^32−1 and may not repeat.
 *
 * Every validation error is a `ConfigError` that names the flag.
 */
import { ConfigError } from '../runtime/errors.js';

/** The largest seed (seeds are unsigned 32-bit integers, as in StyleGAN's `--seeds`). */
export const MAX_SEED = 0xffffffff;

/** One `name=N` item of `--counts`, as written: `key` is a class name or an index. */
export interface ClassCount {
  readonly key: string;
  readonly count: number;
}

/** What to generate, before it is resolved against a generator's classes. */
export type PlanSpec =
  | { readonly kind: 'per-class'; readonly count: number }
  | { readonly kind: 'counts'; readonly counts: readonly ClassCount[] }
  | { readonly kind: 'balance-to'; readonly target: number | 'max' };

/** Images to generate per class. */
export interface GenerationPlan {
  /** Every class of the generator, index = label. */
  readonly classNames: readonly string[];
  /** Images to generate of each class (same length as `classNames`). */
  readonly counts: readonly number[];
  readonly total: number;
  /** For humans and the manifest: `--per-class 100`, `--balance-to max (= 3494)`… */
  readonly description: string;
}

/** A flag's value: a non-negative integer (`min` 0) or a positive one (`min` 1). */
export function parseCount(text: string, flag: string, min: 0 | 1 = 0): number {
  const t = text.trim();
  const n = Number(t);
  if (t === '' || !/^\d+$/.test(t) || !Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(`not a${min === 0 ? ' non-negative' : ' positive'} integer`, {
      field: flag,
      expected: min === 0 ? 'an integer ≥ 0' : 'an integer ≥ 1',
      found: JSON.stringify(text),
    });
  }
  return n;
}

/**
 * Parses `--counts name=N,name=N`. A class name may itself hold commas (`normal, benign=5`): a piece without
 * `=` is joined to the next. The count is after the last `=`.
 */
export function parseCounts(text: string, flag = '--counts'): ClassCount[] {
  const pieces = text.split(',');
  const items: ClassCount[] = [];
  let pending: string | undefined;
  for (const piece of pieces) {
    const joined = pending === undefined ? piece : `${pending},${piece}`;
    if (!joined.includes('=')) {
      pending = joined;
      continue;
    }
    pending = undefined;
    const eq = joined.lastIndexOf('=');
    const key = joined.slice(0, eq).trim();
    if (key === '') {
      throw new ConfigError('a count without a class', {
        field: flag,
        expected: 'class=N (a class name or index)',
        found: JSON.stringify(joined.trim()),
      });
    }
    items.push({ key, count: parseCount(joined.slice(eq + 1), `${flag} ${key}`) });
  }
  if (pending !== undefined && pending.trim() !== '') {
    throw new ConfigError('expected class=N', { field: flag, found: JSON.stringify(pending.trim()) });
  }
  if (items.length === 0) {
    throw new ConfigError('no counts given', { field: flag, expected: 'class=N,class=N…', found: '""' });
  }
  return items;
}

/** Parses `--balance-to`: a non-negative integer or `max`. */
export function parseBalanceTo(text: string, flag = '--balance-to'): number | 'max' {
  return text.trim().toLowerCase() === 'max' ? 'max' : parseCount(text, flag);
}

/** Resolves a `--counts` key: a class name (exact, then trimmed) or, failing that, a class index. */
function classOf(key: string, classNames: readonly string[], flag: string): number {
  const exact = classNames.indexOf(key);
  if (exact >= 0) return exact;
  const trimmed = classNames.findIndex((n) => n.trim() === key);
  if (trimmed >= 0) return trimmed;
  if (/^\d+$/.test(key) && Number(key) < classNames.length) return Number(key);
  throw new ConfigError(`unknown class "${key}"`, {
    field: flag,
    expected: `one of ${classNames.map((n, i) => `${i}=${JSON.stringify(n)}`).join(', ')}`,
    found: JSON.stringify(key),
  });
}

function flagOf(spec: PlanSpec): string {
  return `--${spec.kind}`;
}

/**
 * Resolves a plan against a generator's classes. `realCounts` (real train images per class) is needed by
 * `balance-to` only. A plan that generates nothing is a `ConfigError` naming the plan's flag.
 */
export function makePlan(
  spec: PlanSpec,
  classNames: readonly string[],
  realCounts?: readonly number[],
): GenerationPlan {
  const flag = flagOf(spec);
  const k = classNames.length;
  if (k === 0) throw new ConfigError('the generator has no classes', { field: flag });
  let counts: number[];
  let description: string;
  switch (spec.kind) {
    case 'per-class':
      counts = new Array<number>(k).fill(spec.count);
      description = `--per-class ${spec.count}`;
      break;
    case 'counts': {
      counts = new Array<number>(k).fill(0);
      const seen = new Map<number, string>();
      for (const { key, count } of spec.counts) {
        const c = classOf(key, classNames, flag);
        const prev = seen.get(c);
        if (prev !== undefined) {
          throw new ConfigError(`class "${classNames[c]}" is given twice (as "${prev}" and "${key}")`, {
            field: flag,
          });
        }
        seen.set(c, key);
        counts[c] = count;
      }
      description = `--counts ${classNames.map((n, i) => `${n}=${counts[i]}`).join(',')}`;
      break;
    }
    case 'balance-to': {
      if (realCounts === undefined) {
        throw new ConfigError(
          'needs the real class counts, and none are known (the run does not record them); use --counts or --per-class',
          { field: flag },
        );
      }
      if (realCounts.length !== k || realCounts.some((n) => !(Number.isInteger(n) && n >= 0))) {
        throw new ConfigError('the real class counts do not match the classes', {
          field: flag,
          expected: `${k} non-negative integers (${classNames.join(', ')})`,
          found: `[${realCounts.join(', ')}]`,
        });
      }
      const target = spec.target === 'max' ? Math.max(...realCounts) : spec.target;
      counts = realCounts.map((n) => Math.max(0, target - n));
      description = `--balance-to ${spec.target}${spec.target === 'max' ? ` (= ${target})` : ''} over real counts [${realCounts.join(', ')}]`;
      break;
    }
  }
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) {
    throw new ConfigError(
      spec.kind === 'balance-to'
        ? 'nothing to generate: every class already has at least the target count of real images'
        : 'the plan generates no images',
      { field: flag, found: description },
    );
  }
  return Object.freeze({ classNames: [...classNames], counts, total, description });
}

/** An inclusive range of seeds. */
export interface SeedRange {
  readonly first: number;
  readonly last: number;
}

/** Seeds as inclusive ranges, used in the order given (kept as ranges: `0-4294967295` costs nothing). */
export interface SeedList {
  readonly ranges: readonly SeedRange[];
}

/** 0, 1, 2… upward. */
export const DEFAULT_SEEDS: SeedList = Object.freeze({
  ranges: Object.freeze([{ first: 0, last: MAX_SEED }]),
});

function parseSeed(text: string, flag: string): number {
  const n = parseCount(text, flag);
  if (n > MAX_SEED) {
    throw new ConfigError('seed out of range', {
      field: flag,
      expected: `0..${MAX_SEED}`,
      found: text.trim(),
    });
  }
  return n;
}

/** Parses `--seeds`: `a-b` (inclusive, a ≤ b), `a,b,c`, or a comma-separated mix; no seed may repeat. */
export function parseSeeds(text: string, flag = '--seeds'): SeedList {
  const ranges: SeedRange[] = [];
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p === '')
      throw new ConfigError('empty item in the seed list', { field: flag, found: JSON.stringify(text) });
    const m = /^(\d+)\s*-\s*(\d+)$/.exec(p);
    if (m) {
      const first = parseSeed(m[1]!, flag);
      const last = parseSeed(m[2]!, flag);
      if (first > last) {
        throw new ConfigError('a seed range must go upward', {
          field: flag,
          expected: `a-b with a ≤ b`,
          found: p,
        });
      }
      ranges.push({ first, last });
    } else {
      const s = parseSeed(p, flag);
      ranges.push({ first: s, last: s });
    }
  }
  const sorted = [...ranges].sort((a, b) => a.first - b.first);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.first <= a.last) {
      throw new ConfigError(`seed ${b.first} is listed twice`, {
        field: flag,
        expected: 'distinct seeds',
        found: text,
      });
    }
  }
  return Object.freeze({ ranges: Object.freeze(ranges) });
}

/** How many seeds a list holds. */
export function seedCount(seeds: SeedList): number {
  return seeds.ranges.reduce((n, r) => n + (r.last - r.first + 1), 0);
}

/** The first `n` seeds of a list; a `ConfigError` naming `flag` when it holds fewer. */
export function takeSeeds(seeds: SeedList, n: number, flag = '--seeds'): number[] {
  const available = seedCount(seeds);
  if (available < n) {
    throw new ConfigError(`too few seeds: the plan generates ${n} images, one seed each`, {
      field: flag,
      expected: `at least ${n} seeds`,
      found: `${available} (${formatSeeds(expandPrefix(seeds, available))})`,
    });
  }
  return expandPrefix(seeds, n);
}

function expandPrefix(seeds: SeedList, n: number): number[] {
  const out: number[] = [];
  for (const r of seeds.ranges) {
    for (let s = r.first; s <= r.last && out.length < n; s++) out.push(s);
    if (out.length >= n) break;
  }
  return out;
}

/** Seeds written compactly, runs of consecutive seeds as ranges: `0-99,500,1000-1099`. */
export function formatSeeds(seeds: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < seeds.length) {
    let j = i;
    while (j + 1 < seeds.length && seeds[j + 1] === seeds[j]! + 1) j++;
    parts.push(j > i ? `${seeds[i]}-${seeds[j]}` : `${seeds[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** One image of a plan: its position in the plan's order, its class and its seed. */
export interface PlannedImage {
  readonly index: number;
  readonly label: number;
  readonly seed: number;
}

/** Every image of a plan, class by class, with its seed (see the module comment for the order). */
export function planImages(plan: GenerationPlan, seeds: SeedList = DEFAULT_SEEDS): PlannedImage[] {
  const s = takeSeeds(seeds, plan.total);
  const out: PlannedImage[] = [];
  plan.counts.forEach((count, label) => {
    for (let k = 0; k < count; k++) out.push({ index: out.length, label, seed: s[out.length]! });
  });
  return out;
}
