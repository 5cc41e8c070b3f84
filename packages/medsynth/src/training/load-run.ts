/**
 * Opening a finished (or running) training run for sampling: the run directory's latest checkpoint (or a
 * named one), its resolved options, and the family's sampling network (the EMA generator, or the raw one)
 * rebuilt as a `SamplingGenerator`.
 */
import { resolve } from 'node:path';
import type { SamplingGenerator } from '../models/types.js';
import { disposeWeightSets, findCheckpoint, loadCheckpoint } from './checkpoint.js';
import { familyOfSpec } from './families/index.js';
import type { BaseSpec, SamplerSettings } from './family.js';
import { readRunOptions } from './loop.js';

export interface RunInfo {
  /** Absolute run directory. */
  readonly dir: string;
  /** Absolute path of the checkpoint that was loaded. */
  readonly checkpoint: string;
  /** Training step and images shown to D (thousands) at that checkpoint. */
  readonly step: number;
  readonly kimg: number;
  readonly spec: BaseSpec;
  readonly classNames: readonly string[];
  /** Real train images per class the run saw (for rebalancing plans). */
  readonly classCounts?: readonly number[];
  /** The data source the run trained on (as given to `--data`). */
  readonly dataSource: string;
  /** Which network was loaded. */
  readonly network: 'G_ema' | 'G';
}

export interface LoadGeneratorOptions {
  /** A checkpoint directory name inside `<run>/checkpoints` or a path; default the latest. */
  readonly checkpoint?: string | undefined;
  /** Load G_ema (default true) or the raw G. */
  readonly ema?: boolean | undefined;
  /** Sampling choices over the run's own (diffusion: steps, η, guidance); other families refuse them. */
  readonly sampling?: SamplerSettings | undefined;
}

export async function loadGenerator(
  runDir: string,
  options: LoadGeneratorOptions = {},
): Promise<{ generator: SamplingGenerator; run: RunInfo }> {
  const dir = resolve(runDir);
  const runOptions = await readRunOptions(dir);
  const ema = options.ema !== false;
  const network = ema ? 'G_ema' : 'G';
  const dir0 = await findCheckpoint(dir, options.checkpoint);
  // The spec first (checkpoint.json alone), to learn which weight groups the family's sampler reads.
  const head = await loadCheckpoint(dir0, []);
  const { family, spec } = familyOfSpec(head.state.spec, head.dir);
  const ckpt = await loadCheckpoint(dir0, family.samplerGroups(ema));
  const { classNames, classCounts } = ckpt.state;
  let generator: SamplingGenerator;
  try {
    generator = family.sampler(
      spec,
      { weights: ckpt.weights, order: ckpt.order },
      ema,
      classNames,
      ckpt.dir,
      options.sampling ?? {},
    );
  } finally {
    disposeWeightSets(ckpt.weights);
  }
  return {
    generator,
    run: {
      dir,
      checkpoint: ckpt.dir,
      step: ckpt.state.step,
      kimg: ckpt.state.nimg / 1000,
      spec,
      classNames,
      classCounts,
      dataSource: runOptions.data.source,
      network,
    },
  };
}
