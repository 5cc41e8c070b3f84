/**
 * `medsynth project`: latent projection (GAN inversion) of a run's training images against held-out real
 * images — does the generator reproduce what it trained on more closely than what it never saw? Writes
 * projection.json, projection.png (image / projection pairs) and distances.csv to `--out` (default
 * `<run>/projection`), and prints the distance table, the test and the verdict (or one JSON document with
 * `--json`).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ProjectionFile } from '../metrics/projection-files.js';
import { MedsynthError } from '../runtime/errors.js';
import { parseInteger } from './data-flags.js';
import { createRenderer, formatSeconds, formatStat, formatTable } from './render.js';

interface ProjectFlags {
  run: string;
  data?: string;
  split: 'train' | 'test' | 'both';
  count: number;
  synthetic?: number;
  steps?: number;
  restarts?: number;
  lr?: number;
  batchSize?: number;
  featureWeight?: number;
  multiscaleWeight?: number;
  latentPrior?: number;
  features: 'domain' | 'none';
  extractorEpochs?: number;
  extractorWidth?: number;
  extractorSeed?: number;
  checkpoint?: string;
  seed: number;
  alpha?: number;
  columns: number;
  cacheDir?: string;
  out?: string;
  json?: boolean;
}

export interface ProjectCommandDeps {
  readonly selectBackend?: () => Promise<unknown>;
  readonly stdout?: { write(text: string): unknown };
}

function atLeast(name: string, min: number) {
  const int = parseInteger(name);
  return (v: string): number => {
    const n = int(v);
    if (n < min) throw new InvalidArgumentError(`${name} must be at least ${min}, got ${n}`);
    return n;
  };
}

function positiveNumber(name: string, allowZero = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
      throw new InvalidArgumentError(
        `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${v}"`,
      );
    return n;
  };
}

export function registerProjectCommand(program: Command, deps: ProjectCommandDeps = {}): void {
  program
    .command('project')
    .description(
      'latent projection (GAN inversion) for authenticity: reconstruct training and held-out real images through the generator and test whether training images reconstruct closer (a memorisation signal)',
    )
    .requiredOption('--run <dir>', 'the training run directory (a GAN: dcgan, cgan, acgan, stylegan2, pggan)')
    .option('--data <source>', 'the run’s dataset from another place (its split settings are kept)')
    .addOption(
      new Option(
        '--split <which>',
        'real images to project: train, test (held-out) or both (the test needs both)',
      )
        .choices(['train', 'test', 'both'])
        .default('both'),
    )
    .option(
      '--count <n>',
      'real images per split (stratified like the held-out split)',
      atLeast('--count', 1),
      200,
    )
    .option(
      '--synthetic <n>',
      'images generated for the synthetic floor (default --count; 0: none)',
      atLeast('--synthetic', 0),
    )
    .option('--steps <n>', 'Adam steps per image (default 200)', atLeast('--steps', 1))
    .option('--restarts <n>', 'starting points per image, best kept (default 2)', atLeast('--restarts', 1))
    .option('--lr <x>', 'peak learning rate (default 0.1)', positiveNumber('--lr'))
    .option(
      '--batch-size <n>',
      'images projected together (speed and memory only; default 32)',
      atLeast('--batch-size', 1),
    )
    .addOption(
      new Option(
        '--features <kind>',
        'perceptual term: domain (CNN features, default) or none (multi-scale pixels)',
      )
        .choices(['domain', 'none'])
        .default('domain'),
    )
    .option(
      '--feature-weight <λ>',
      'weight of the feature term (default 0.1)',
      positiveNumber('--feature-weight', true),
    )
    .option(
      '--multiscale-weight <λ>',
      'weight of the multi-scale pixel term with --features none (default 1)',
      positiveNumber('--multiscale-weight', true),
    )
    .option(
      '--latent-prior <λ>',
      'weight of the Gaussian prior on z (z-space generators; default 0.001)',
      positiveNumber('--latent-prior', true),
    )
    .option(
      '--extractor-epochs <n>',
      'domain extractor: most training epochs (default 15)',
      atLeast('--extractor-epochs', 1),
    )
    .option(
      '--extractor-width <n>',
      'domain extractor: first conv block channels (default 32)',
      atLeast('--extractor-width', 4),
    )
    .option(
      '--extractor-seed <n>',
      'domain extractor: training seed (default 0)',
      atLeast('--extractor-seed', 0),
    )
    .option('--checkpoint <name>', 'a checkpoint in <run>/checkpoints (or a path); default the latest')
    .option(
      '--seed <n>',
      'seed of the image choice, the starting latents and the restarts',
      atLeast('--seed', 0),
      0,
    )
    .option('--alpha <p>', 'significance level of the verdict (default 0.05)', positiveNumber('--alpha'))
    .option(
      '--columns <n>',
      'image / projection pairs per set in projection.png',
      atLeast('--columns', 1),
      10,
    )
    .option(
      '--cache-dir <dir>',
      'cache root for the domain extractor (default $MEDSYNTH_CACHE or ~/.cache/medsynth)',
    )
    .option(
      '--out <dir>',
      'write projection.json, projection.png and distances.csv here (default <run>/projection)',
    )
    .option('--json', 'print one JSON document on stdout')
    .action(async (flags: ProjectFlags) => {
      const json = flags.json === true;
      const render = createRenderer({ json });
      if (flags.alpha !== undefined && !(flags.alpha < 1))
        throw new InvalidArgumentError(`--alpha must be below 1, got ${flags.alpha}`);
      const select =
        deps.selectBackend ?? (async () => (await import('../runtime/backend.js')).selectBackend());
      const backend = await select();
      const { projectRun } = await import('../metrics/projection-run.js');
      const { writeProjection } = await import('../metrics/projection-files.js');
      const { join, resolve } = await import('node:path');
      const controller = new AbortController();
      const onSigint = () => controller.abort(new MedsynthError('interrupted: nothing was written'));
      process.once('SIGINT', onSigint);
      const defined = <T extends Record<string, unknown>>(o: T) =>
        Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
      let result: Awaited<ReturnType<typeof projectRun>>;
      try {
        result = await projectRun({
          run: flags.run,
          data: flags.data,
          split: flags.split,
          checkpoint: flags.checkpoint,
          features: flags.features,
          domain: defined({
            epochs: flags.extractorEpochs,
            width: flags.extractorWidth,
            seed: flags.extractorSeed,
          }),
          cacheDir: flags.cacheDir,
          projection: defined({
            count: flags.count,
            syntheticCount: flags.synthetic,
            steps: flags.steps,
            restarts: flags.restarts,
            learningRate: flags.lr,
            batchSize: flags.batchSize,
            featureWeight: flags.featureWeight,
            multiscaleWeight: flags.multiscaleWeight,
            latentPrior: flags.latentPrior,
            seed: flags.seed,
            alpha: flags.alpha,
          }),
          onProgress: render.onProgress,
          signal: controller.signal,
        });
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      const out = resolve(flags.out ?? join(flags.run, 'projection'));
      const written = await writeProjection(
        out,
        result.analysis,
        { ...result.meta, backend: backendName(backend) },
        flags.columns,
      );
      render.clear();
      const stdout = deps.stdout ?? process.stdout;
      if (json) stdout.write(`${JSON.stringify({ ...written.json, out: written.dir })}\n`);
      else stdout.write(`${formatProjection(written.json, written.dir)}\n`);
    });
}

function backendName(b: unknown): string | null {
  const name = (b as { backend?: unknown } | null)?.backend;
  return typeof name === 'string' ? name : null;
}

const SET_NAMES: Readonly<Record<string, string>> = {
  train: 'train',
  holdout: 'held-out',
  synthetic: 'synthetic',
};

/** The terminal report of a projection (from its projection.json content). */
export function formatProjection(p: ProjectionFile, out: string | null): string {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(10)} ${v}`);
  if (p.run) kv('run', `${p.run.dir} (${p.run.family}, ${p.run.network} at step ${p.run.step})`);
  if (p.data) kv('data', `${p.data.source} (classes ${p.data.classNames.join(', ')})`);
  const loss =
    p.objective === 'pixel+features'
      ? `pixel MSE + ${String(p.options['featureWeight'])}·feature distance`
      : `pixel MSE + ${String(p.options['multiscaleWeight'])}·multi-scale pixel MSE`;
  kv(
    'projection',
    `${p.space}-space, ${String(p.options['steps'])} steps × ${String(p.options['restarts'])} restarts, loss ${loss}`,
  );
  if (p.featuresNote) kv('note', p.featuresNote);
  lines.push('');
  const header = ['set', 'N', 'median RMSE', 'q1', 'q3', 'mean RMSE'];
  const withFeatures = Object.values(p.sets).some((s) => s?.featureDistance);
  if (withFeatures) header.push('median feature dist');
  const rows: string[][] = [];
  for (const [name, s] of Object.entries(p.sets)) {
    if (!s) continue;
    const row = [
      SET_NAMES[name] ?? name,
      String(s.n),
      formatStat(s.pixelRmse.median),
      formatStat(s.pixelRmse.q1),
      formatStat(s.pixelRmse.q3),
      formatStat(s.pixelRmse.mean),
    ];
    if (withFeatures) row.push(s.featureDistance ? formatStat(s.featureDistance.median) : '–');
    rows.push(row);
  }
  lines.push(formatTable(header, rows));
  lines.push('RMSE: root mean squared pixel error of the best reconstruction, pixels in [-1, 1].');
  lines.push('');
  if (p.test) {
    const t = p.test;
    lines.push(
      `Mann–Whitney U (one-sided, train < held-out, ${t.method}): U ${formatStat(t.u)}, p ${formatStat(t.p)}; P(train closer) ${formatStat(t.probTrainCloser)}; median ratio train/held-out ${t.medianRatio === null ? '–' : formatStat(t.medianRatio)}`,
    );
  }
  if (p.featureTest)
    lines.push(
      `same test on feature distances: p ${formatStat(p.featureTest.p)}; P(train closer) ${formatStat(p.featureTest.probTrainCloser)} (not used for the verdict: the domain CNN was trained on these training images)`,
    );
  lines.push(`verdict: ${p.verdict}`);
  for (const w of p.warnings) lines.push(`warning: ${w}`);
  lines.push(
    `time ${formatSeconds(p.seconds)} (${formatStat(p.secondsPerImage)} s per image projected)${out ? `; written to ${out}` : ''}`,
  );
  return lines.join('\n');
}
