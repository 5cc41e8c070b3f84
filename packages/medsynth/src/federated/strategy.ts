/**
 * The federation's algorithms, as pure functions on flat weight buffers (one float32 array: the shared
 * weight groups' tensors in manifest order). No I/O, no tensors: the coordinator and the sites call these.
 *
 * FedAvg (McMahan et al. 2017): the new global weights are the sites' weights averaged with weights equal to
 * each site's size n_k (its train images),
 *     θ ← Σ_k n_k θ_k / Σ_k n_k            (accumulated in float64).
 *
 * FedProx (Li et al. 2020) adds μ/2 ‖θ − θ_global‖² to each site's local objective. Our sites apply it
 * decoupled from the optimiser, as AdamW decouples weight decay: after each local update of the shared
 * weights, θ ← θ − c (θ − θ_global) with c = min(1, lr · μ). (Adding μ(θ − θ_global) to the gradient would be
 * rescaled by Adam's per-weight normalisation, turning the pull into a sign-like step.)
 *
 * Server optimiser (Reddi et al. 2021, "Adaptive federated optimization"): the round's average θ̄ is not
 * taken as is but read as a pseudo-gradient Δ = θ̄ − θ_global, stepped by an optimiser on the coordinator:
 *     none      θ ← θ_global + η Δ                                   (η = 1: FedAvg itself)
 *     momentum  m ← β m + Δ;  θ ← θ_global + η m                     (FedAvgM, Hsu et al. 2019)
 *     adam      m ← β₁ m + (1 − β₁) Δ;  v ← β₂ v + (1 − β₂) Δ²;
 *               θ ← θ_global + η m / (√v + τ)                          (FedAdam, no bias correction, as Reddi)
 * Only trained weights take the step; running statistics (batch-norm means and variances) take θ̄ itself,
 * since momentum on a variance could carry it below zero. With S sites each taking E local steps, FedAvg
 * makes E updates of the global model per round where a central run on the same images makes S·E; momentum
 * β carries each round's move into later rounds, 1/(1 − β) times in all along a steady direction.
 * m and v are part of the run's checkpoint (group `server`), so a resumed coordinator continues them.
 *
 * Generator EMA on the coordinator: after each round, G_ema ← β G_ema + (1 − β) G with
 * β = 0.5^(images this round / half-life in images), the same rule (and ramp-up) as centralised training
 * (training/ema.ts), so a federated run's G_ema averages over as many images as a central run's.
 *
 * Update screening, before aggregation: an update is rejected, with its reason, when it has another length
 * than the global weights, holds a non-finite number, or moves the weights by an outlying norm:
 *     ‖θ_k − θ_global‖₂ > factor · median_j ‖θ_j − θ_global‖₂   (with ≥ 3 updates; factor 5 by default),
 * so one broken or malicious site cannot drag the model away while honest sites' ordinary spread passes.
 *
 * Participation: each round a seeded draw picks ⌈fraction · available⌉ sites (at least `minFit`, at most all).
 */
import type { Rng } from '../runtime/random.js';

/** One site's update as the strategy sees it. */
export interface SiteUpdate {
  readonly site: string;
  readonly weights: Float32Array;
  /** The site's size: its train images (FedAvg's weight). */
  readonly size: number;
  /** Real images it trained on this round. */
  readonly examples: number;
}

/** θ ← Σ n_k θ_k / Σ n_k over `updates` (at least one, all of one length, sizes > 0 in total). */
export function fedAvg(updates: readonly SiteUpdate[]): Float32Array {
  if (updates.length === 0) throw new RangeError('fedAvg: no updates');
  const n = updates[0]!.weights.length;
  const total = updates.reduce((s, u) => s + u.size, 0);
  if (!(total > 0)) throw new RangeError('fedAvg: the sites have no images');
  const acc = new Float64Array(n);
  for (const u of updates) {
    if (u.weights.length !== n)
      throw new RangeError(`fedAvg: ${u.site}'s update has ${u.weights.length} values, not ${n}`);
    const w = u.size / total;
    const x = u.weights;
    for (let i = 0; i < n; i++) acc[i]! += w * x[i]!;
  }
  return Float32Array.from(acc);
}

/** How the coordinator steps from the global weights to the round's average (module header). */
export interface ServerOptimizerSettings {
  readonly kind: 'none' | 'momentum' | 'adam';
  /** η. */
  readonly lr: number;
  /** β (momentum) or β₁ (adam). */
  readonly momentum: number;
  /** β₂ (adam). */
  readonly beta2: number;
  /** τ (adam). */
  readonly tau: number;
}

/** The server optimiser's buffers (null until the first round, or for `none`). */
export interface ServerOptimizerState {
  m: Float32Array | null;
  v: Float32Array | null;
}

/**
 * The next global weights from `global` and the round's average `averaged` (module header); `trainable[i]`
 * is 0 where the value is a running statistic (it takes the average). Updates `state` in place.
 */
export function serverStep(
  global: Float32Array,
  averaged: Float32Array,
  trainable: Uint8Array,
  settings: ServerOptimizerSettings,
  state: ServerOptimizerState,
): Float32Array {
  const n = global.length;
  if (averaged.length !== n || trainable.length !== n)
    throw new RangeError('serverStep: the global weights, the average and the mask differ in length');
  const { kind, lr, momentum: b1, beta2: b2, tau } = settings;
  if (kind === 'none' && lr === 1) return averaged;
  const out = new Float32Array(n);
  if (kind !== 'none') state.m ??= new Float32Array(n);
  if (kind === 'adam') state.v ??= new Float32Array(n);
  const m = state.m;
  const v = state.v;
  for (let i = 0; i < n; i++) {
    if (!trainable[i]) {
      out[i] = averaged[i]!;
      continue;
    }
    const delta = averaged[i]! - global[i]!;
    if (kind === 'none') out[i] = global[i]! + lr * delta;
    else if (kind === 'momentum') {
      m![i] = b1 * m![i]! + delta;
      out[i] = global[i]! + lr * m![i]!;
    } else {
      m![i] = b1 * m![i]! + (1 - b1) * delta;
      v![i] = b2 * v![i]! + (1 - b2) * delta * delta;
      out[i] = global[i]! + (lr * m![i]!) / (Math.sqrt(v![i]!) + tau);
    }
  }
  return out;
}

/** G_ema ← β G_ema + (1 − β) G, in place (β = 0: a copy). */
export function emaInPlace(ema: Float32Array, value: Float32Array, beta: number): void {
  if (ema.length !== value.length) throw new RangeError('emaInPlace: lengths differ');
  for (let i = 0; i < ema.length; i++) ema[i] = beta * ema[i]! + (1 - beta) * value[i]!;
}

/** ‖a − b‖₂ (float64). */
export function distance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Why an update cannot be used at all (length, non-finite values), or null. */
export function invalidUpdate(update: Float32Array, global: Float32Array): string | null {
  if (update.length !== global.length)
    return `it has ${update.length} weights, the model has ${global.length} (another model or version?)`;
  for (let i = 0; i < update.length; i++) {
    if (!Number.isFinite(update[i]!)) return `weight ${i} is ${update[i]} (training diverged at the site?)`;
  }
  return null;
}

export interface Screened {
  readonly accepted: SiteUpdate[];
  readonly rejected: { readonly site: string; readonly reason: string }[];
  /** ‖θ_k − θ_global‖ of every valid update, by site. */
  readonly norms: Readonly<Record<string, number>>;
}

/** Splits `updates` into those to aggregate and those rejected (with reasons), as the module header says. */
export function screenUpdates(
  updates: readonly SiteUpdate[],
  global: Float32Array,
  outlierFactor = 5,
): Screened {
  const rejected: { site: string; reason: string }[] = [];
  const valid: SiteUpdate[] = [];
  for (const u of updates) {
    const why = invalidUpdate(u.weights, global);
    if (why) rejected.push({ site: u.site, reason: why });
    else if (!(u.examples > 0) || !(u.size > 0))
      rejected.push({ site: u.site, reason: `it trained on ${u.examples} of its ${u.size} images` });
    else valid.push(u);
  }
  const norms: Record<string, number> = {};
  for (const u of valid) norms[u.site] = distance(u.weights, global);
  if (valid.length < 3) return { accepted: valid, rejected, norms };
  const med = median(valid.map((u) => norms[u.site]!));
  const limit = outlierFactor * med;
  const accepted: SiteUpdate[] = [];
  for (const u of valid) {
    const norm = norms[u.site]!;
    if (med > 0 && norm > limit) {
      rejected.push({
        site: u.site,
        reason: `its update norm ${norm.toPrecision(3)} is over ${outlierFactor}× the median of this round's updates (${med.toPrecision(3)})`,
      });
    } else accepted.push(u);
  }
  return { accepted, rejected, norms };
}

/** The sites to train this round: a seeded draw of ⌈fraction · n⌉ (≥ minFit, ≤ n) of `available`, in their order. */
export function chooseParticipants(
  available: readonly string[],
  fraction: number,
  minFit: number,
  rng: Rng,
): string[] {
  const n = available.length;
  const k = Math.min(n, Math.max(minFit, Math.ceil(fraction * n)));
  if (k >= n) return [...available];
  const index = available.map((_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [index[i], index[j]] = [index[j]!, index[i]!];
  }
  const chosen = new Set(index.slice(0, k));
  return available.filter((_, i) => chosen.has(i));
}

/** FedProx's decoupled pull toward the global weights: c = min(1, lr · μ). */
export function proximalCoefficient(lr: number, mu: number): number {
  return Math.min(1, Math.max(0, lr * mu));
}
