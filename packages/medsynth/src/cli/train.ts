/**
 * `medsynth train`: train a GAN on a dataset's train split. Flags → preset + overrides → one validated,
 * frozen options object → the library's loop. `--resume <run-dir>` continues a run exactly; Ctrl-C stops
 * after the current step with a checkpoint.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  AUGMENT_OPS,
  AUGMENTS,
  type AugmentOp,
  LOSSES,
  MODELS,
  resolveTrainOptions,
  TRAIN_PRESETS,
  type TrainOptionsInput,
} from '../config/train-options.js';
import { selectBackend, slowBackendWarning } from '../runtime/backend.js';
import { ConfigError } from '../runtime/errors.js';
import { resumeGan, type TrainResult, trainGan } from '../training/loop.js';
import { addDataFlags, type DataFlags, dataOptionsFromFlags, parseInteger } from './data-flags.js';
import { abortOnSigint } from './interrupt.js';
import { createRenderer, formatSeconds } from './render.js';

export interface TrainFlags extends DataFlags {
  data?: string;
  resume?: string;
  preset?: string;
  model?: string;
  size?: string;
  channels?: string;
  conditioning?: string;
  loss?: string;
  augment?: string;
  augmentOps?: AugmentOp[];
  kimg?: number;
  minutes?: number;
  batchSize?: number;
  gLr?: number;
  dLr?: number;
  beta1?: number;
  beta2?: number;
  dSteps?: number;
  r1Gamma?: number;
  emaKimg?: number;
  labelSmoothing?: number;
  balanced?: boolean;
  condRamp?: [number, number] | null;
  modeSeeking?: number;
  lecam?: number;
  minibatchStd?: boolean;
  wDim?: number;
  mappingLayers?: number;
  growFraction?: number;
  sampleSteps?: number;
  eta?: number;
  guidance?: number;
  condDropout?: number;
  attention?: boolean;
  unetMults?: number[];
  zDim?: number;
  gWidth?: number;
  dWidth?: number;
  spectralNorm?: boolean;
  tickKimg?: number;
  out?: string;
  name?: string;
  dryRun?: boolean;
  json?: boolean;
}

function parseMults(v: string): number[] {
  const parts = v.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  if (parts.length < 1 || parts.length > 6 || parts.some((x) => !Number.isInteger(x) || x < 1 || x > 16)) {
    throw new InvalidArgumentError(
      `expected 1–6 comma-separated integers from 1 to 16 (one per level, e.g. 1,2,4), got "${v}"`,
    );
  }
  return parts;
}

function parseCondRamp(v: string): [number, number] | null {
  if (v === 'none') return null;
  const parts = v.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  if (parts.length !== 2 || parts.some((x) => !(x >= 0 && x <= 1)) || parts[0]! > parts[1]!) {
    throw new InvalidArgumentError(`expected "none" or "start,end" with 0 ≤ start ≤ end ≤ 1, got "${v}"`);
  }
  return [parts[0]!, parts[1]!];
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!(x > 0 && Number.isFinite(x)))
      throw new InvalidArgumentError(`${flag} must be a positive number, got "${v}"`);
    return x;
  };
}

function nonNegativeNumber(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!(x >= 0 && Number.isFinite(x))) throw new InvalidArgumentError(`${flag} must be ≥ 0, got "${v}"`);
    return x;
  };
}

function positiveInt(flag: string) {
  const int = parseInteger(flag);
  return (v: string): number => {
    const n = int(v);
    if (n < 1) throw new InvalidArgumentError(`${flag} must be ≥ 1`);
    return n;
  };
}

function parseAugmentOps(v: string): AugmentOp[] {
  const ops = v.split(',').map((s) => s.trim());
  for (const op of ops) {
    if (!(AUGMENT_OPS as readonly string[]).includes(op)) {
      throw new InvalidArgumentError(`unknown augmentation "${op}" (expected ${AUGMENT_OPS.join(', ')})`);
    }
  }
  return ops as AugmentOp[];
}

/** The training options the flags ask for (before preset merging and validation). */
export function trainInputFromFlags(f: TrainFlags): TrainOptionsInput {
  if (!f.data) throw new ConfigError('--data is required (or --resume <run-dir>)', { field: '--data' });
  const o: Record<string, unknown> = { data: dataOptionsFromFlags(f.data, f), seed: f.seed };
  const copy = [
    'preset',
    'model',
    'conditioning',
    'loss',
    'augment',
    'augmentOps',
    'kimg',
    'minutes',
    'batchSize',
    'gLr',
    'dLr',
    'beta1',
    'beta2',
    'dSteps',
    'r1Gamma',
    'emaKimg',
    'labelSmoothing',
    'condRamp',
    'modeSeeking',
    'lecam',
    'minibatchStd',
    'wDim',
    'mappingLayers',
    'growFraction',
    'sampleSteps',
    'eta',
    'guidance',
    'condDropout',
    'unetMults',
    'zDim',
    'gWidth',
    'dWidth',
    'tickKimg',
    'name',
  ] as const;
  for (const k of copy) if (f[k] !== undefined) o[k] = f[k];
  if (f.size !== undefined) o['size'] = Number(f.size);
  if (f.channels !== undefined) o['channels'] = f.channels === 'auto' ? 'auto' : Number(f.channels);
  if (f.balanced) o['balancedSampling'] = true;
  if (f.spectralNorm === false) o['spectralNorm'] = false;
  if (f.attention === false) o['attention'] = false;
  if (f.out !== undefined) o['outDir'] = f.out;
  return o as TrainOptionsInput;
}

/** The flags that describe a model and how it trains (`train`, `federated serve|simulate|compare`). */
export function addModelFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--preset <name>', 'starting options for a kind of data').choices(
        Object.keys(TRAIN_PRESETS),
      ),
    )
    .addOption(
      new Option(
        '--model <family>',
        'generator family: dcgan, cgan, acgan, stylegan2 (StyleGAN2-ADA-style), pggan (progressive growing), ddpm (diffusion)',
      ).choices([...MODELS]),
    )
    .addOption(new Option('--size <px>', 'image side').choices(['28', '32', '64', '128']))
    .addOption(
      new Option(
        '--channels <n>',
        'image channels: 1, 3, or auto (1 for grey content, 3 when any image has colour; default)',
      ).choices(['1', '3', 'auto']),
    )
    .addOption(
      new Option('--conditioning <how>', 'cgan: how D sees the label').choices(['projection', 'concat']),
    )
    .addOption(new Option('--loss <kind>', 'adversarial loss').choices([...LOSSES]))
    .addOption(new Option('--augment <mode>', 'differentiable augmentation for D').choices([...AUGMENTS]))
    .option('--augment-ops <list>', `augmentations (${AUGMENT_OPS.join(',')})`, parseAugmentOps)
    .option('--batch-size <n>', 'images per batch', positiveInt('--batch-size'))
    .option('--g-lr <lr>', 'generator learning rate', positiveNumber('--g-lr'))
    .option('--d-lr <lr>', 'discriminator learning rate', positiveNumber('--d-lr'))
    .option('--beta1 <b>', 'Adam β1', nonNegativeNumber('--beta1'))
    .option('--beta2 <b>', 'Adam β2', nonNegativeNumber('--beta2'))
    .option('--d-steps <n>', 'D updates per G update', positiveInt('--d-steps'))
    .option('--r1-gamma <γ>', 'R1 penalty weight (0 = off)', nonNegativeNumber('--r1-gamma'))
    .option('--ema-kimg <k>', 'generator EMA half-life in kimg (0 = off)', nonNegativeNumber('--ema-kimg'))
    .option(
      '--label-smoothing <s>',
      'one-sided label smoothing (non-saturating loss)',
      nonNegativeNumber('--label-smoothing'),
    )
    .option('--balanced', 'sample real batches class-balanced')
    .option(
      '--cond-ramp <start,end|none>',
      'transitional conditioning: unconditional until start, class information ramped to full at end (fractions of the run, e.g. 0.2,0.6)',
      parseCondRamp,
    )
    .option(
      '--mode-seeking <w>',
      'mode-seeking regulariser weight (pairs of z per class pushed apart; 0 = off)',
      nonNegativeNumber('--mode-seeking'),
    )
    .option(
      '--lecam <w>',
      "LeCam regulariser weight (D's real and fake outputs held near each other's moving averages; 0 = off)",
      nonNegativeNumber('--lecam'),
    )
    .option('--minibatch-std', "D sees how alike the batch's images are (within each class for cgan)")
    .option('--w-dim <n>', 'stylegan2: size of the intermediate latent w', positiveInt('--w-dim'))
    .option(
      '--mapping-layers <n>',
      'stylegan2: depth of the mapping network',
      positiveInt('--mapping-layers'),
    )
    .option(
      '--grow-fraction <f>',
      'pggan: share of the budget spent growing the lower resolutions (0–0.95)',
      nonNegativeNumber('--grow-fraction'),
    )
    .option(
      '--sample-steps <n>',
      'ddpm: DDIM steps when sampling grids, generate and evaluate (default 25)',
      positiveInt('--sample-steps'),
    )
    .option(
      '--eta <η>',
      'ddpm: DDIM η, 0 deterministic … 1 stochastic (default 1)',
      nonNegativeNumber('--eta'),
    )
    .option(
      '--guidance <w>',
      'ddpm: classifier-free guidance scale (1 = conditional model alone; higher: truer to the class, less varied)',
      nonNegativeNumber('--guidance'),
    )
    .option(
      '--cond-dropout <p>',
      'ddpm: share of training labels replaced by "no label" (needed for guidance; default 0.1)',
      nonNegativeNumber('--cond-dropout'),
    )
    .option('--no-attention', "ddpm: no self-attention at the U-Net's lowest resolution")
    .option(
      '--unet-mults <m,…>',
      'ddpm: channel multiplier per U-Net level (width·m channels at each halving; default by size, 1,2,4 at 28 px)',
      parseMults,
    )
    .option('--z-dim <n>', 'latent size', positiveInt('--z-dim'))
    .option('--g-width <n>', 'generator base width', positiveInt('--g-width'))
    .option('--d-width <n>', 'discriminator base width', positiveInt('--d-width'))
    .option('--no-spectral-norm', 'no spectral normalisation in D')
    .option('--tick-kimg <k>', 'stats, grid and checkpoint every k kimg', positiveNumber('--tick-kimg'));
}

export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command('train')
    .description('train a GAN (dcgan, cgan, acgan) on the train split of a dataset; resumable')
    .option('--data <source>', 'an .npz file, medmnist:<name>[@size], a folder of PNG/JPEG or DICOM')
    .option(
      '--resume <run-dir>',
      'continue a run from its latest checkpoint (--kimg/--minutes set a new length)',
    )
    .option('--kimg <n>', 'train until n thousand real images were shown to D', positiveNumber('--kimg'))
    .option('--minutes <n>', 'train for at most n minutes', positiveNumber('--minutes'))
    .option('--out <dir>', 'parent folder of the numbered run directories', 'runs')
    .option('--name <name>', 'run name (default <model>-<data>-<size>)')
    .option('--dry-run', 'print the resolved options and exit')
    .option('--json', 'progress as nothing, the result as one JSON object');
  addDataFlags(addModelFlags(cmd)).action(async (flags: TrainFlags) => {
    const render = createRenderer({ json: flags.json === true });
    if (flags.resume !== undefined && flags.data !== undefined) {
      throw new ConfigError('give either --data (a new run) or --resume (an existing run), not both', {
        field: '--resume',
      });
    }
    const options = flags.resume === undefined ? resolveTrainOptions(trainInputFromFlags(flags)) : undefined;
    if (flags.dryRun) {
      process.stdout.write(`${JSON.stringify(options ?? { resume: flags.resume }, null, 2)}\n`);
      return;
    }
    const backend = await selectBackend();
    if (!flags.json)
      process.stderr.write(`backend: ${backend.backend} (${backend.reason}), ${backend.threads} threads\n`);
    const slow = slowBackendWarning();
    if (slow) render.onProgress({ type: 'warning', message: slow });
    const interrupt = abortOnSigint(
      'stopping after this step (a checkpoint will be written; Ctrl-C again to quit now)',
      render.clear,
    );
    let result: TrainResult;
    try {
      const control = { onProgress: render.onProgress, signal: interrupt.signal };
      result =
        flags.resume !== undefined
          ? await resumeGan(flags.resume, { kimg: flags.kimg, minutes: flags.minutes }, control)
          : await trainGan(options!, control);
    } finally {
      interrupt.release();
    }
    render.clear();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    process.stdout.write(
      [
        `run: ${result.runDir}`,
        `stopped by ${result.stoppedBy} after ${result.step} steps, ${result.kimg.toFixed(1)} kimg, ${formatSeconds(result.seconds)}`,
        `throughput: ${result.imagesPerSecond.toFixed(0)} real images/s`,
        `checkpoint: ${result.checkpoint}`,
        `samples: ${result.runDir}/samples/latest.png (reals: ${result.runDir}/reals.png)`,
        `resume: medsynth train --resume ${result.runDir} --kimg <more>`,
      ].join('\n') + '\n',
    );
  });
}
