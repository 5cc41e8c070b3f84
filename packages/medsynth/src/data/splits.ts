/**
 * Split maths, as pure functions of labels (and groups) and a seed:
 * - `stratifiedAssign`: train/val/test (or any ratios), stratified by class and group-aware — every group
 *   (patient, source tile) lands whole in one split, so near-copies cannot leak across splits.
 * - `stratifiedFraction`: a limited-data subset keeping every class present.
 * - `partitionSites`: N institutions, IID (stratified round-robin) or non-IID (per-class Dirichlet(α) shares).
 * Same inputs and seed → same output, on every machine.
 */
import { Rng } from '../runtime/random.js';
import { ConfigError } from '../runtime/errors.js';

export interface Unit {
  /** Sample indices in this unit (a group, or a single ungrouped sample). */
  readonly members: number[];
  /** The unit's class: the most common label among its members (ties → smallest label). */
  readonly label: number;
}

/** Groups samples into units: one per distinct group id; samples without a group are their own unit. */
export function groupUnits(labels: ArrayLike<number>, groups?: ReadonlyArray<string | undefined>): Unit[] {
  const byGroup = new Map<string, number[]>();
  const units: { members: number[] }[] = [];
  for (let i = 0; i < labels.length; i++) {
    const g = groups?.[i];
    if (g === undefined) {
      units.push({ members: [i] });
      continue;
    }
    let m = byGroup.get(g);
    if (!m) {
      m = [];
      byGroup.set(g, m);
      units.push({ members: m });
    }
    m.push(i);
  }
  return units.map(({ members }) => ({ members, label: majorityLabel(members, labels) }));
}

function majorityLabel(members: readonly number[], labels: ArrayLike<number>): number {
  const counts = new Map<number, number>();
  for (const i of members) counts.set(labels[i]!, (counts.get(labels[i]!) ?? 0) + 1);
  let best = Number.POSITIVE_INFINITY;
  let bestCount = -1;
  for (const [label, c] of counts) {
    if (c > bestCount || (c === bestCount && label < best)) {
      best = label;
      bestCount = c;
    }
  }
  return best;
}

/**
 * Assigns each sample to a part (index into `ratios`), stratified by class and keeping groups whole.
 * Per class, the class's units are shuffled (seeded) and dealt greedily to the part furthest below its
 * target image count; while units remain, every part with a positive ratio first receives one unit, so
 * each class appears in each part whenever it has enough units.
 */
export function stratifiedAssign(
  labels: ArrayLike<number>,
  ratios: readonly number[],
  seed: number,
  groups?: ReadonlyArray<string | undefined>,
): Int32Array {
  const total = ratios.reduce((a, b) => a + b, 0);
  if (!(total > 0) || ratios.some((r) => r < 0 || !Number.isFinite(r))) {
    throw new RangeError(`split ratios must be non-negative with a positive sum, got ${ratios.join(',')}`);
  }
  const shares = ratios.map((r) => r / total);
  const out = new Int32Array(labels.length).fill(-1);
  const byClass = new Map<number, Unit[]>();
  for (const u of groupUnits(labels, groups)) {
    const list = byClass.get(u.label) ?? [];
    list.push(u);
    byClass.set(u.label, list);
  }
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const units = Rng.derive(seed, 'split', label).shuffle(byClass.get(label)!.slice());
    const size = units.reduce((s, u) => s + u.members.length, 0);
    const target = shares.map((s) => s * size);
    const filled = shares.map(() => 0);
    // Smallest positive shares are seeded first so that small parts are not starved.
    const seedOrder = shares
      .map((s, part) => ({ s, part }))
      .filter(({ s }) => s > 0)
      .sort((a, b) => a.s - b.s || a.part - b.part)
      .map(({ part }) => part);
    units.forEach((unit, k) => {
      let part: number;
      if (k < seedOrder.length && units.length >= seedOrder.length) {
        part = seedOrder[k]!;
      } else {
        part = 0;
        let bestDeficit = Number.NEGATIVE_INFINITY;
        for (let p = 0; p < shares.length; p++) {
          if (shares[p] === 0) continue;
          const deficit = (target[p]! - filled[p]!) / Math.max(target[p]!, 1e-9);
          if (deficit > bestDeficit) {
            bestDeficit = deficit;
            part = p;
          }
        }
      }
      filled[part]! += unit.members.length;
      for (const i of unit.members) out[i] = part;
    });
  }
  return out;
}

/**
 * A stratified subset of about `fraction` of the samples: per class round(fraction·n_c) samples, at least
 * one, chosen by a seeded shuffle. Returns sorted sample indices. Nested: a smaller fraction with the same
 * seed is a subset of a larger one.
 */
export function stratifiedFraction(labels: ArrayLike<number>, fraction: number, seed: number): number[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], got ${fraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    const list = byClass.get(l) ?? [];
    list.push(i);
    byClass.set(l, list);
  }
  const picked: number[] = [];
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = Rng.derive(seed, 'fraction', label).shuffle(byClass.get(label)!.slice());
    const k = Math.min(members.length, Math.max(1, Math.round(fraction * members.length)));
    picked.push(...members.slice(0, k));
  }
  return picked.sort((a, b) => a - b);
}

export interface SitePartitionOptions {
  /** Omitted: IID (each class dealt evenly). A number: non-IID with per-class Dirichlet(α) site shares. */
  readonly alpha?: number | undefined;
}

/**
 * Partitions samples into `sites` institutions; returns the site of each sample. IID deals each class's
 * shuffled samples round-robin (class mix equal across sites). Non-IID draws, per class, site proportions
 * from Dirichlet(α) (small α → very skewed) and cuts the class's shuffled samples accordingly. Every site
 * gets at least one sample (moved from the largest site if needed), so no institution is empty.
 */
export function partitionSites(
  labels: ArrayLike<number>,
  sites: number,
  seed: number,
  options: SitePartitionOptions = {},
): Int32Array {
  if (!(Number.isInteger(sites) && sites >= 1))
    throw new ConfigError('sites must be a positive integer', { field: 'sites', found: String(sites) });
  if (sites > labels.length) {
    throw new ConfigError('more sites than samples: every site needs at least one', {
      field: 'sites',
      expected: `at most ${labels.length}`,
      found: String(sites),
    });
  }
  const { alpha } = options;
  if (alpha !== undefined && !(alpha > 0))
    throw new ConfigError('alpha must be > 0', { field: 'alpha', found: String(alpha) });
  const out = new Int32Array(labels.length);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]!) ?? [];
    list.push(i);
    byClass.set(labels[i]!, list);
  }
  let offset = 0;
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const rng = Rng.derive(seed, 'sites', label);
    const members = rng.shuffle(byClass.get(label)!.slice());
    if (alpha === undefined) {
      // Continue the round-robin where the previous class stopped, so site sizes stay balanced.
      members.forEach((i, k) => {
        out[i] = (offset + k) % sites;
      });
      offset = (offset + members.length) % sites;
    } else {
      const p = rng.dirichlet(sites, alpha);
      let start = 0;
      let cum = 0;
      for (let s = 0; s < sites; s++) {
        cum += p[s]!;
        const end = s === sites - 1 ? members.length : Math.round(cum * members.length);
        for (let k = start; k < end; k++) out[members[k]!] = s;
        start = Math.max(start, end);
      }
    }
  }
  // No empty site: move one sample at a time from the largest site (its last-listed sample).
  const counts = new Array<number>(sites).fill(0);
  for (const s of out) counts[s]!++;
  for (let s = 0; s < sites; s++) {
    while (counts[s] === 0) {
      const largest = counts.indexOf(Math.max(...counts));
      const idx = out.lastIndexOf(largest);
      out[idx] = s;
      counts[largest]!--;
      counts[s]!++;
    }
  }
  return out;
}
