/**
 * Data conditions of a downstream study: which real and how many synthetic images of each class a
 * classifier is trained on. Pure functions; the test split is never touched here (it is always real and the
 * same for every condition), and synthetic images only ever come from a generator trained on the real train
 * split.
 *
 * - `real`: the real train split (the baseline).
 * - `synthetic`: synthetic images only, with the real split's count and class mix (replacement).
 * - `augmented` (ratio r): the real split plus r × its count of synthetic images, in its class mix.
 * - `rebalanced`: the real split with every class topped up with synthetic images to the largest class.
 * - `limited` (fraction f): a stratified f of the real split (seeded); with `topUp`, each class filled back
 *   to its full real count with synthetic images.
 */
import { stratifiedFraction } from '../data/splits.js';
import { ConfigError } from '../runtime/errors.js';

export type Condition =
  | { readonly kind: 'real' }
  | { readonly kind: 'synthetic' }
  | { readonly kind: 'augmented'; readonly ratio: number }
  | { readonly kind: 'rebalanced' }
  | { readonly kind: 'limited'; readonly fraction: number; readonly topUp: boolean };

export type ConditionKind = Condition['kind'];

const trim = (v: number) => Number(v.toPrecision(6));

/** The condition's name in tables and job ids: `real`, `synthetic`, `real+synthetic×1`, `rebalanced`, `limited-10%`, `limited-10%+synthetic`. */
export function conditionName(c: Condition): string {
  switch (c.kind) {
    case 'real':
    case 'synthetic':
    case 'rebalanced':
      return c.kind;
    case 'augmented':
      return `real+synthetic×${trim(c.ratio)}`;
    case 'limited':
      return `limited-${trim(c.fraction * 100)}%${c.topUp ? '+synthetic' : ''}`;
  }
}

const NUMBER = String.raw`(\d+(?:\.\d+)?)`;

/**
 * Parses a condition written as text: the names `conditionName` makes, or the short forms
 * `real+synthetic:1`, `augmented:0.5`, `limited:0.1`, `limited:0.1+synthetic`, `limited:10%`.
 */
export function parseCondition(text: string, field = 'conditions'): Condition {
  const s = text.trim().replace(/\s+/g, '');
  if (s === 'real' || s === 'synthetic' || s === 'rebalanced') return { kind: s };
  let m = new RegExp(`^(?:real\\+synthetic|augmented)[:×x*]${NUMBER}$`).exec(s);
  if (m) return checked({ kind: 'augmented', ratio: Number(m[1]) }, text, field);
  m = new RegExp(`^limited[:-]${NUMBER}(%?)(\\+synthetic)?$`).exec(s);
  if (m) {
    const fraction = m[2] === '%' ? Number(m[1]) / 100 : Number(m[1]);
    return checked({ kind: 'limited', fraction, topUp: m[3] !== undefined }, text, field);
  }
  throw new ConfigError(`unknown condition "${text}"`, {
    field,
    expected:
      'real, synthetic, real+synthetic:<ratio>, rebalanced, limited:<fraction>[+synthetic] (e.g. limited:0.1+synthetic)',
    found: text,
  });
}

function checked(c: Condition, text: string, field: string): Condition {
  if (c.kind === 'augmented' && !(c.ratio > 0 && c.ratio <= 100))
    throw new ConfigError('the synthetic ratio must be in (0, 100]', { field, found: text });
  if (c.kind === 'limited' && !(c.fraction > 0 && c.fraction < 1))
    throw new ConfigError('the real fraction must be in (0, 1)', { field, found: text });
  return c;
}

/** A condition's training set: positions into the real train split, and synthetic images per class. */
export interface Composition {
  readonly real: Int32Array;
  readonly synthetic: readonly number[];
}

function countsOf(labels: ArrayLike<number>, positions: ArrayLike<number> | null, k: number): number[] {
  const counts = new Array<number>(k).fill(0);
  const n = positions ? positions.length : labels.length;
  for (let i = 0; i < n; i++) counts[labels[positions ? positions[i]! : i]!]!++;
  return counts;
}

const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/**
 * The training set of `condition` for the real train labels `labels` (K classes). `seed` picks the limited
 * subset (each seed its own); the other conditions do not depend on it.
 */
export function composeTrainingSet(
  condition: Condition,
  labels: Int32Array,
  numClasses: number,
  seed: number,
): Composition {
  const full = countsOf(labels, null, numClasses);
  const none = new Array<number>(numClasses).fill(0);
  switch (condition.kind) {
    case 'real':
      return { real: all(labels.length), synthetic: none };
    case 'synthetic':
      return { real: new Int32Array(0), synthetic: full };
    case 'augmented':
      return { real: all(labels.length), synthetic: full.map((n) => Math.round(condition.ratio * n)) };
    case 'rebalanced': {
      const top = Math.max(...full);
      return { real: all(labels.length), synthetic: full.map((n) => top - n) };
    }
    case 'limited': {
      const real = Int32Array.from(stratifiedFraction(labels, condition.fraction, seed)).sort();
      const kept = countsOf(labels, real, numClasses);
      return { real, synthetic: condition.topUp ? full.map((n, k) => n - kept[k]!) : none };
    }
  }
}

/** Synthetic images of each class the study needs at most in any one training set. */
export function syntheticDemand(
  conditions: readonly Condition[],
  labels: Int32Array,
  numClasses: number,
): number[] {
  const demand = new Array<number>(numClasses).fill(0);
  for (const c of conditions) {
    // The synthetic counts of every condition are independent of the seed (limited+synthetic tops up to
    // the full count minus a stratified fraction, whose per-class size does not depend on the seed).
    const { synthetic } = composeTrainingSet(c, labels, numClasses, 0);
    synthetic.forEach((n, k) => {
      demand[k] = Math.max(demand[k]!, n);
    });
  }
  return demand;
}
