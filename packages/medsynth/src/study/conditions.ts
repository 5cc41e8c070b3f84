/**
 * Data conditions of a downstream study: which real and how many synthetic images of each class a
 * classifier is trained on. Pure functions; the test split is never touched here (it is always real and the
 * same for every condition).
 *
 * - `real`: the real train split (the baseline).
 * - `synthetic`: synthetic images only, with the real split's count and class mix (replacement).
 * - `augmented` (ratio r): the real split plus r × its count of synthetic images, in its class mix.
 * - `rebalanced`: the real split with every class topped up with synthetic images to the largest class.
 * - `oversampled` (control for `rebalanced`): the real split with every class topped up to the largest class
 *   by repeating its own real images (each as evenly as possible, seeded order), so the classifier sees the
 *   same class counts and batches as under `rebalanced` without any synthetic content.
 * - `shuffled` variants (negative controls): `real+shuffled-synthetic:r` and `rebalanced+shuffled` draw as many
 *   synthetic images of each label as their condition, from the pool under a seeded permutation of its labels
 *   (study/grid.ts `poolLabelsFor`): class counts, extra images and steps unchanged, but behind each label
 *   images of any class (a permutation among the condition's own images would change nothing for
 *   `rebalanced`, whose top-up is all one class in a binary task). Synthetic content that carries class
 *   signal should beat its shuffled control; extra images that only add steps and balance should not.
 * - `limited` (fraction f): a stratified f of the real split; with `topUp`, each class filled back to its
 *   full real count with synthetic images from a generator trained on that same subset only (the study
 *   trains one per fraction and generator seed; the subset is chosen by the generator seed).
 *
 * Every condition trains deep classifiers with their classic augmentation unless its name ends in `:noaug`
 * (`real:noaug`, `limited:0.1:noaug`), so "none vs classic vs classic + synthetic" is one table; conventional
 * classifiers never augment, so the study skips their `:noaug` jobs (they would repeat the augmented ones).
 */
import { stratifiedFraction } from '../data/splits.js';
import { ConfigError } from '../runtime/errors.js';
import { Rng } from '../runtime/random.js';

/** What a condition's training set is made of. */
export type Composed =
  | { readonly kind: 'real' }
  | { readonly kind: 'synthetic' }
  | { readonly kind: 'augmented'; readonly ratio: number; readonly shuffled: boolean }
  | { readonly kind: 'rebalanced'; readonly shuffled: boolean }
  | { readonly kind: 'oversampled' }
  | { readonly kind: 'limited'; readonly fraction: number; readonly topUp: boolean };

/** A condition: a training set, and whether the classifier's classic augmentation is on (`:noaug` turns it off). */
export type Condition = Composed & { readonly augment: boolean };

export type ConditionKind = Condition['kind'];

const trim = (v: number) => Number(v.toPrecision(6));

/**
 * The condition's name in tables and job ids: `real`, `synthetic`, `real+synthetic×1`,
 * `real+shuffled-synthetic×1`, `rebalanced`, `rebalanced+shuffled`, `oversampled`, `limited-10%`,
 * `limited-10%+synthetic`; `:noaug` appended without augmentation (`real:noaug`, `limited-10%:noaug`).
 */
export function conditionName(c: Condition): string {
  return `${setName(c)}${c.augment ? '' : ':noaug'}`;
}

function setName(c: Composed): string {
  switch (c.kind) {
    case 'real':
    case 'synthetic':
    case 'oversampled':
      return c.kind;
    case 'rebalanced':
      return c.shuffled ? 'rebalanced+shuffled' : 'rebalanced';
    case 'augmented':
      return `real+${c.shuffled ? 'shuffled-' : ''}synthetic×${trim(c.ratio)}`;
    case 'limited':
      return `limited-${trim(c.fraction * 100)}%${c.topUp ? '+synthetic' : ''}`;
  }
}

/** True when the condition's training set holds synthetic images (it needs a generator). */
export function usesSynthetic(c: Condition): boolean {
  return (
    c.kind === 'synthetic' ||
    c.kind === 'augmented' ||
    c.kind === 'rebalanced' ||
    (c.kind === 'limited' && c.topUp)
  );
}

/** The condition whose synthetic images a shuffled control takes (itself when not a control). */
export function unshuffled(c: Condition): Condition {
  return c.kind === 'augmented' || c.kind === 'rebalanced' ? { ...c, shuffled: false } : c;
}

/** True for a shuffled-label negative control. */
export function isShuffled(c: Condition): boolean {
  return (c.kind === 'augmented' || c.kind === 'rebalanced') && c.shuffled;
}

const NUMBER = String.raw`(\d+(?:\.\d+)?)`;

/**
 * Parses a condition written as text: the names `conditionName` makes, or the short forms
 * `real+synthetic:1`, `augmented:0.5`, `real+shuffled-synthetic:1`, `rebalanced:shuffled`, `limited:0.1`,
 * `limited:0.1+synthetic`, `limited:10%`; a `:noaug` suffix turns the classifier's augmentation off.
 */
export function parseCondition(text: string, field = 'conditions'): Condition {
  const full = text.trim().replace(/\s+/g, '');
  const noaug = /[:-]noaug$/.exec(full);
  const s = noaug ? full.slice(0, noaug.index) : full;
  const augment = noaug === null;
  if (s === 'real' || s === 'synthetic' || s === 'oversampled') return { kind: s, augment };
  if (s === 'rebalanced') return { kind: 'rebalanced', shuffled: false, augment };
  if (s === 'rebalanced+shuffled' || s === 'rebalanced:shuffled')
    return { kind: 'rebalanced', shuffled: true, augment };
  let m = new RegExp(`^(?:real\\+(shuffled-)?synthetic|augmented)[:×x*]${NUMBER}$`).exec(s);
  if (m)
    return checked(
      { kind: 'augmented', ratio: Number(m[2]), shuffled: m[1] !== undefined, augment },
      text,
      field,
    );
  m = new RegExp(`^limited[:-]${NUMBER}(%?)(\\+synthetic)?$`).exec(s);
  if (m) {
    const fraction = m[2] === '%' ? Number(m[1]) / 100 : Number(m[1]);
    return checked({ kind: 'limited', fraction, topUp: m[3] !== undefined, augment }, text, field);
  }
  throw new ConfigError(`unknown condition "${text}"`, {
    field,
    expected:
      'real, synthetic, real+synthetic:<ratio>, real+shuffled-synthetic:<ratio>, rebalanced, rebalanced+shuffled, oversampled, limited:<fraction>[+synthetic] (e.g. limited:0.1+synthetic), any of them with :noaug',
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

/**
 * The condition a verdict compares `c` with: real data under the same augmentation setting, or for a
 * limited top-up the same limited subset without synthetic images. Null for the baselines themselves.
 */
export function baselineOf(c: Condition): Condition | null {
  if (c.kind === 'real') return null;
  if (c.kind === 'limited') return c.topUp ? { ...c, topUp: false } : null;
  return { kind: 'real', augment: c.augment };
}

/**
 * The controls that tell synthetic content from side effects for `c`: for `rebalanced`, `oversampled`
 * (same class counts from repeated real images) and `rebalanced+shuffled` (same images, labels permuted);
 * for `real+synthetic×r`, `real+shuffled-synthetic×r`. Empty for other conditions and for the controls.
 */
export function controlsOf(c: Condition): Condition[] {
  if (c.kind === 'rebalanced' && !c.shuffled)
    return [
      { kind: 'oversampled', augment: c.augment },
      { ...c, shuffled: true },
    ];
  if (c.kind === 'augmented' && !c.shuffled) return [{ ...c, shuffled: true }];
  return [];
}

/**
 * A condition's training set: positions into the real train split (a position repeats under
 * `oversampled`), and synthetic images per class.
 */
export interface Composition {
  readonly real: Int32Array;
  readonly synthetic: readonly number[];
}

/** Images of each of `k` classes among `labels` (at `positions`, or all). */
export function countsOf(
  labels: ArrayLike<number>,
  positions: ArrayLike<number> | null,
  k: number,
): number[] {
  const counts = new Array<number>(k).fill(0);
  const n = positions ? positions.length : labels.length;
  for (let i = 0; i < n; i++) counts[labels[positions ? positions[i]! : i]!]!++;
  return counts;
}

const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/** The seeds a training set depends on. */
export interface CompositionSeeds {
  /** Picks the limited subset (the study passes the generator seed: the subset its generator trained on). */
  readonly subset: number;
  /** Orders the repeats of `oversampled` (the study passes the classifier seed). */
  readonly order: number;
}

/** The positions of each class, ascending. */
export function positionsByClass(labels: ArrayLike<number>, numClasses: number): number[][] {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  return byClass;
}

/** The limited subset of fraction `f` for a subset seed: sorted positions into the real train split. */
export function limitedSubset(labels: Int32Array, fraction: number, subsetSeed: number): Int32Array {
  return Int32Array.from(stratifiedFraction(labels, fraction, subsetSeed)).sort();
}

/**
 * The training set of `condition` for the real train labels `labels` (K classes). `seeds.subset` picks the
 * limited subset, `seeds.order` the order of `oversampled`'s repeats; the other conditions depend on neither.
 */
export function composeTrainingSet(
  condition: Condition,
  labels: Int32Array,
  numClasses: number,
  seeds: CompositionSeeds,
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
    case 'oversampled': {
      const top = Math.max(...full);
      const repeats: number[] = [];
      positionsByClass(labels, numClasses).forEach((members, k) => {
        const need = top - members.length;
        if (need <= 0 || members.length === 0) return;
        // Every image of the class repeated ⌊need / n⌋ times, and a seeded choice of the rest once more.
        const order = Rng.derive(seeds.order, 'oversample', k).shuffle(members.slice());
        for (let i = 0; i < need; i++) repeats.push(order[i % order.length]!);
      });
      return {
        real: Int32Array.from([...all(labels.length), ...repeats.sort((a, b) => a - b)]),
        synthetic: none,
      };
    }
    case 'limited': {
      const real = limitedSubset(labels, condition.fraction, seeds.subset);
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
    const { synthetic } = composeTrainingSet(c, labels, numClasses, { subset: 0, order: 0 });
    synthetic.forEach((n, k) => {
      demand[k] = Math.max(demand[k]!, n);
    });
  }
  return demand;
}
