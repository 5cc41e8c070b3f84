/**
 * Opening a finished (or running) training run for sampling: the run directory's latest checkpoint (or a
 * named one), its resolved options, and G_ema (or G) rebuilt as a `SamplingGenerator`.
 */
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { buildGan, runG } from '../models/registry.js';
import type { GanSpec, SamplingGenerator } from '../models/types.js';
import { assignWeights, disposeWeightSets, findCheckpoint, loadCheckpoint } from './checkpoint.js';
import { readRunOptions } from './loop.js';

export interface RunInfo {
  /** Absolute run directory. */
  readonly dir: string;
  /** Absolute path of the checkpoint that was loaded. */
  readonly checkpoint: string;
  /** Training step and images shown to D (thousands) at that checkpoint. */
  readonly step: number;
  readonly kimg: number;
  readonly spec: GanSpec;
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
}

export async function loadGenerator(
  runDir: string,
  options: LoadGeneratorOptions = {},
): Promise<{ generator: SamplingGenerator; run: RunInfo }> {
  const dir = resolve(runDir);
  const runOptions = await readRunOptions(dir);
  const network = options.ema === false ? 'G' : 'G_ema';
  const ckpt = await loadCheckpoint(await findCheckpoint(dir, options.checkpoint), [network]);
  const { spec, classNames, classCounts } = ckpt.state;
  const net = buildGan(spec);
  net.D.dispose();
  const G = net.G;
  try {
    assignWeights(G, ckpt.weights[network], ckpt.dir);
  } catch (e) {
    G.dispose();
    throw e;
  } finally {
    disposeWeightSets(ckpt.weights);
  }
  const conditional = spec.family !== 'dcgan';
  const generator: SamplingGenerator = {
    zDim: spec.zDim,
    numClasses: spec.numClasses,
    classNames,
    size: spec.size,
    channels: spec.channels,
    conditional,
    generate: (z, labels) => tf.tidy(() => runG({ spec, G }, z, conditional ? labels : null, false)),
    dispose: () => G.dispose(),
  };
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
