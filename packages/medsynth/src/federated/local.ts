/**
 * A site's local training: the family trainer the coordinator described (its training options and model
 * spec, identical at every site), fed from this site's own images only. Each round the shared weights
 * arrive, the trainer takes `localSteps` optimisation steps exactly as the central training loop takes
 * them (same family `step`, same batch sampler, ADA where asked), and the shared weights go back with the
 * number of real images used. What stays at the site between rounds: its optimisers' state, its data order
 * and Rngs, its ADA controller, and its own D when the federation shares only G.
 *
 * FedProx (μ > 0): after every local step the shared weights are pulled toward the round's global weights,
 * decoupled from the optimiser (strategy.ts); the coefficient uses the group's learning rate (G: gLr, D: dLr).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdaController } from '../augment/ada.js';
import type { TrainOptions } from '../config/train-options.js';
import { FederationError } from '../runtime/errors.js';
import { Rng } from '../runtime/random.js';
import { generatorFamily } from '../training/families/index.js';
import type { BaseSpec, FamilyTrainer } from '../training/family.js';
import { BatchSampler, type RealSet } from '../training/real-data.js';
import {
  assignWeights,
  liveWeights,
  payloadTensors,
  proximalPull,
  readWeights,
  type Payload,
} from './payload.js';
import { proximalCoefficient } from './strategy.js';

/** What the coordinator asks of one round. */
export interface FitRequest {
  readonly round: number;
  readonly rounds: number;
  readonly localSteps: number;
  /** The run's progress at the round's start, in [0, 1]. */
  readonly progress: number;
  /** Real images the global model has seen before this round. */
  readonly imagesSeen: number;
  readonly proxMu: number;
}

export interface FitResult {
  readonly payload: Payload;
  /** Real images drawn this round (FedAvg's weight). */
  readonly examples: number;
  readonly metrics: Readonly<Record<string, number>>;
}

export class LocalTrainer {
  readonly #trainer: FamilyTrainer;
  readonly #options: TrainOptions;
  readonly #sampler: BatchSampler;
  readonly #rngData: Rng;
  readonly #rngs: { readonly z: Rng; readonly augment: Rng };
  readonly #ada: AdaController | null;
  #steps = 0;

  /**
   * A trainer for `spec` (the coordinator's, validated by the family) over this site's `real` images.
   * `site` and the options' seed name the site's Rngs, so two sites never draw the same batches or latents.
   */
  constructor(options: TrainOptions, spec: unknown, real: RealSet, site: string) {
    const family = generatorFamily(options.model);
    const checked: BaseSpec = family.checkSpec(spec, 'the coordinator’s model spec');
    if (checked.channels !== real.images.channels)
      throw new FederationError(
        `the model has ${checked.channels} channel(s), this site's images ${real.images.channels}`,
      );
    if (checked.numClasses !== real.classNames.length)
      throw new FederationError(
        `the model has ${checked.numClasses} classes, this site's data ${real.classNames.length}`,
      );
    this.#options = options;
    this.#trainer = family.trainer(checked, options);
    this.#sampler = new BatchSampler(real, options.balancedSampling);
    this.#rngData = Rng.derive(options.seed, 'site', site, 'data');
    this.#rngs = {
      z: Rng.derive(options.seed, 'site', site, 'z'),
      augment: Rng.derive(options.seed, 'site', site, 'augment'),
    };
    this.#ada =
      options.augment === 'ada'
        ? new AdaController({ target: options.adaTarget, speedKimg: options.adaSpeedKimg })
        : null;
  }

  get spec(): BaseSpec {
    return this.#trainer.spec;
  }

  /** The site's train images (FedAvg's weight). */
  get size(): number {
    return this.#sampler.set.labels.length;
  }

  /** Sets the shared weights to `global`, trains `localSteps` steps, and returns the shared weights. */
  async fit(global: Payload, request: FitRequest, signal?: AbortSignal): Promise<FitResult> {
    const where = `round ${request.round}`;
    await assignWeights(this.#trainer, global, where);
    const groups = [...new Set(global.tensors.map((t) => t.group))];
    const options = this.#options;
    const proximal = request.proxMu > 0;
    const live = proximal ? await liveWeights(this.#trainer, groups) : [];
    const anchor = proximal ? payloadTensors(global) : [];
    const coefficient = (group: string) =>
      proximalCoefficient(group === 'D' ? options.dLr : options.gLr, request.proxMu);
    const started = performance.now();
    let images = 0;
    let dLoss = 0;
    let gLoss = 0;
    let gLosses = 0;
    let steps = 0;
    let diverged = 0;
    const augmentP = () => (options.augment === 'diffaugment' ? 1 : (this.#ada?.p ?? 0));
    try {
      for (let s = 0; s < request.localSteps; s++) {
        signal?.throwIfAborted();
        const stats = this.#trainer.step({
          draw: (n) => this.#sampler.batch(n, this.#rngData),
          rng: this.#rngs,
          augmentP: augmentP(),
          progress: Math.min(1, request.progress + s / (request.localSteps * request.rounds)),
          imagesSeen: request.imagesSeen + images,
        });
        images += stats.images;
        steps++;
        this.#steps++;
        if (!Number.isFinite(stats.dLoss) || (stats.gLoss !== null && !Number.isFinite(stats.gLoss))) {
          diverged = 1;
          break;
        }
        dLoss += stats.dLoss;
        if (stats.gLoss !== null) {
          gLoss += stats.gLoss;
          gLosses++;
        }
        if (this.#ada && stats.realSignSum !== null) {
          this.#ada.accumulate(stats.realSignSum, stats.images);
          if (this.#steps % options.adaInterval === 0) this.#ada.update(stats.images * options.adaInterval);
        }
        if (proximal) proximalPull(live, anchor, coefficient);
      }
    } finally {
      tf.dispose(anchor);
    }
    const seconds = (performance.now() - started) / 1000;
    const payload = await readWeights(this.#trainer, groups);
    return {
      payload,
      examples: images,
      metrics: {
        steps,
        fitSeconds: seconds,
        imagesPerSecond: images / Math.max(seconds, 1e-9),
        dLoss: steps > 0 ? dLoss / steps : Number.NaN,
        ...(gLosses > 0 ? { gLoss: gLoss / gLosses } : {}),
        ...(this.#ada ? { augmentP: this.#ada.p } : {}),
        diverged,
      },
    };
  }

  dispose(): void {
    this.#trainer.dispose();
  }
}
