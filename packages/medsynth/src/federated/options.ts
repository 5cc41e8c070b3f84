/**
 * The federation's options (validated once, frozen): how many rounds and local steps, who takes part, how
 * updates are combined, and the limits that keep one site from stalling or poisoning the run. The model
 * itself is described by ordinary training options (`TrainOptions`), sent to every site.
 */
import { z } from 'zod';
import { resolveOptions } from '../config/data-options.js';
import { ConfigError } from '../runtime/errors.js';
import type { ServerOptimizerSettings } from './strategy.js';

export const STRATEGIES = ['fedavg', 'fedprox'] as const;
/** How the coordinator applies the round's average (strategy.ts): as is, FedAvgM, or FedAdam. */
export const SERVER_OPTIMIZERS = ['none', 'momentum', 'adam'] as const;

export const FederationOptionsSchema = z
  .object({
    /** Aggregation rounds. */
    rounds: z.number().int().min(1).max(1_000_000),
    /** Optimisation steps each site takes per round on its own data. */
    localSteps: z.number().int().min(1).max(1_000_000),
    /** Sites that must have joined before round 1. */
    minSites: z.number().int().min(1).default(2),
    /** Share of the available sites trained each round (a seeded draw). */
    fraction: z.number().gt(0).max(1).default(1),
    /** Accepted updates a round needs to be aggregated (else it is run again). */
    minFit: z.number().int().min(1).default(1),
    /** Seconds a round waits for the chosen sites' updates before it aggregates those that came. */
    roundTimeoutSeconds: z.number().positive().default(600),
    /** Seconds to wait for `minSites` sites (and, later, for any site to ask for work). */
    joinTimeoutSeconds: z.number().positive().default(600),
    strategy: z.enum(STRATEGIES).default('fedavg'),
    /** FedProx μ (strategy fedprox). */
    proxMu: z.number().min(0).default(0.01),
    /** The server optimiser stepping from the global weights toward the round's average (strategy.ts). */
    serverOptimizer: z.enum(SERVER_OPTIMIZERS).default('none'),
    /** Its learning rate η (default 1 for none and momentum; adam needs it given). */
    serverLr: z.number().positive().max(100).optional(),
    /** β of momentum, β₁ of adam. */
    serverMomentum: z.number().min(0).lt(1).default(0.9),
    /** β₂ of adam. */
    serverBeta2: z.number().min(0).lt(1).default(0.99),
    /** τ of adam (its √v floor). */
    serverTau: z.number().positive().default(1e-3),
    /** Share D too (FedAvg of G and D); false: only G travels and every site keeps its own D. */
    shareD: z.boolean().default(true),
    /** An update moving the weights by more than this × the round's median update norm is rejected (≥ 3 updates). */
    outlierFactor: z.number().gt(1).default(5),
    /** Address to listen on. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(7521),
  })
  .strict();

export type FederationOptionsInput = z.input<typeof FederationOptionsSchema>;
export type FederationOptions = Readonly<z.output<typeof FederationOptionsSchema>>;

/** Validated, frozen options; a ConfigError names the first bad field. */
export function resolveFederationOptions(
  input: FederationOptionsInput,
  where = 'federation options',
): FederationOptions {
  const o = resolveOptions(FederationOptionsSchema, input, where);
  if (o.minFit > o.minSites)
    throw new ConfigError('minFit cannot exceed minSites (a round could never gather enough updates)', {
      field: 'minFit',
      expected: `≤ ${o.minSites}`,
      found: String(o.minFit),
    });
  if (o.serverOptimizer === 'adam' && o.serverLr === undefined)
    throw new ConfigError(
      "the adam server optimiser needs its learning rate (its steps are η-sized whatever the sites' updates; try 1e-3)",
      { field: 'serverLr', expected: 'a positive number', found: 'nothing' },
    );
  return o;
}

/** The server optimiser's settings from validated options. */
export function serverOptimizerOf(o: FederationOptions): ServerOptimizerSettings {
  return {
    kind: o.serverOptimizer,
    lr: o.serverLr ?? 1,
    momentum: o.serverMomentum,
    beta2: o.serverBeta2,
    tau: o.serverTau,
  };
}
