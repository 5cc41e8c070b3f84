/**
 * `medsynth generate`: synthetic images from a training run, by class and seed, written as a dataset the
 * loaders read back (a folder of PNGs or a MedMNIST-style .npz) with a manifest of every image's seed.
 */
import type { Command } from 'commander';
import type { LoadGeneratorOptions, RunInfo } from '../training/load-run.js';
import {
  outKind,
  prepareOut,
  sourceFromRun,
  type WriteSetResult,
  writeSyntheticSet,
} from '../generate/export.js';
import {
  DEFAULT_SEEDS,
  makePlan,
  parseBalanceTo,
  parseCount,
  parseCounts,
  parseSeeds,
  type PlanSpec,
} from '../generate/plan.js';
import { checkTruncation, DEFAULT_BATCH_SIZE } from '../generate/sample.js';
import type { SamplingGenerator } from '../models/types.js';
import { ConfigError, MedsynthError } from '../runtime/errors.js';
import type { ProgressEvent } from '../runtime/progress.js';
import { createRenderer } from './render.js';
import { addSamplerFlags, samplerSettingsFromFlags } from './sampler-flags.js';

interface GenerateFlags {
  run: string;
  out: string;
  perClass?: string;
  counts?: string;
  balanceTo?: string;
  seeds?: string;
  truncation: string;
  sampleSteps?: string;
  eta?: string;
  guidance?: string;
  checkpoint?: string;
  ema: boolean;
  batchSize: string;
  grid?: string;
  gridPerClass: string;
  overwrite?: boolean;
  json?: boolean;
}

/** What the command calls outside itself; tests replace them. */
export interface GenerateCommandDeps {
  /** Opens a run for sampling (default: `loadGenerator` of training/load-run, imported when the command runs). */
  readonly loadGenerator?: (
    runDir: string,
    options: LoadGeneratorOptions,
  ) => Promise<{ generator: SamplingGenerator; run: RunInfo }>;
  /** Selects the TF.js backend before the run is loaded (default: runtime/backend's `selectBackend`). */
  readonly selectBackend?: () => Promise<unknown>;
  /** Where the summary goes (default `process.stdout`). */
  readonly stdout?: { write(text: string): unknown };
}

const PLAN_FLAGS = ['--per-class', '--counts', '--balance-to'] as const;

/** The plan flag given (exactly one), parsed. */
export function planSpecFromFlags(flags: {
  perClass?: string | undefined;
  counts?: string | undefined;
  balanceTo?: string | undefined;
}): PlanSpec {
  const given = [flags.perClass, flags.counts, flags.balanceTo]
    .map((v, i) => (v === undefined ? undefined : PLAN_FLAGS[i]))
    .filter((f) => f !== undefined);
  if (given.length !== 1) {
    throw new ConfigError(
      given.length === 0
        ? 'say how many images to generate with one of --per-class N, --counts class=N,… or --balance-to <count|max>'
        : `give only one of ${given.join(', ')}`,
      { field: given.length === 0 ? PLAN_FLAGS.join('|') : given.join(', ') },
    );
  }
  if (flags.perClass !== undefined)
    return { kind: 'per-class', count: parseCount(flags.perClass, '--per-class') };
  if (flags.counts !== undefined) return { kind: 'counts', counts: parseCounts(flags.counts, '--counts') };
  return { kind: 'balance-to', target: parseBalanceTo(flags.balanceTo!, '--balance-to') };
}

function parseTruncation(text: string): number {
  const t = text.trim();
  const psi = t === '' ? Number.NaN : Number(t);
  return checkTruncation(psi, '--truncation');
}

export function registerGenerateCommand(program: Command, deps: GenerateCommandDeps = {}): void {
  const cmd = program
    .command('generate')
    .description(
      'generate synthetic images from a training run, by class and seed, as an image folder or a MedMNIST-style .npz',
    )
    .requiredOption('--run <dir>', 'the training run directory')
    .requiredOption(
      '--out <folder|file.npz>',
      'output: a folder (<class>/seed000123.png + manifest.json) or a .npz (+ <file>.manifest.json)',
    )
    .option('--per-class <n>', 'n images of every class')
    .option('--counts <class=n,…>', 'images per class, by class name or index (other classes: 0)')
    .option(
      '--balance-to <count|max>',
      "top every class up to count real + synthetic images, or to the largest real class ('max'); uses the run's real train counts",
    )
    .option('--seeds <list>', 'seeds, e.g. 0-999 or 1,5,7 (default 0 upward), taken class by class in order')
    .option(
      '--truncation <ψ>',
      'truncation ψ in (0, 1]: stylegan2 pulls w toward its class mean, others scale z by ψ (1 = none)',
      '1',
    );
  addSamplerFlags(cmd);
  cmd
    .option('--checkpoint <name>', 'a checkpoint in <run>/checkpoints (or a path); default the latest')
    .option('--no-ema', 'sample the raw generator G instead of its moving average G_ema')
    .option(
      '--batch-size <n>',
      'images per generator call (speed and memory only)',
      String(DEFAULT_BATCH_SIZE),
    )
    .option('--grid <file.png>', 'also write a PNG grid: one row per class, its first images')
    .option('--grid-per-class <n>', 'images per class in the grid', '8')
    .option(
      '--overwrite',
      "replace an existing output and grid (a folder only if it is a previous synthetic set holding nothing but the set's files)",
    )
    .option('--json', 'print one JSON summary on stdout')
    .action(async (flags: GenerateFlags) => {
      const json = flags.json === true;
      const render = createRenderer({ json });
      // Everything the flags alone decide is checked before the run is loaded.
      const spec = planSpecFromFlags(flags);
      const seeds = flags.seeds === undefined ? DEFAULT_SEEDS : parseSeeds(flags.seeds, '--seeds');
      const truncation = parseTruncation(flags.truncation);
      const sampling = samplerSettingsFromFlags(flags);
      const batchSize = parseCount(flags.batchSize, '--batch-size', 1);
      const gridPerClass = parseCount(flags.gridPerClass, '--grid-per-class', 1);
      // Each warning is shown once: the output checks run here (before the run is loaded) and again when writing.
      const shown = new Set<string>();
      const onProgress = (e: ProgressEvent) => {
        if (e.type === 'warning') {
          if (shown.has(e.message)) return;
          shown.add(e.message);
        }
        render.onProgress(e);
      };
      const prepared = await prepareOut(flags.out, {
        overwrite: flags.overwrite === true,
        grid: flags.grid,
        onProgress,
      });

      const select =
        deps.selectBackend ?? (async () => (await import('../runtime/backend.js')).selectBackend());
      await select();
      const load = deps.loadGenerator ?? (await import('../training/load-run.js')).loadGenerator;
      const { generator, run } = await load(flags.run, {
        checkpoint: flags.checkpoint,
        ema: flags.ema,
        sampling,
      });
      const controller = new AbortController();
      const onSigint = () =>
        controller.abort(
          new MedsynthError('interrupted: the output was not written (an earlier one is left as it was)'),
        );
      process.once('SIGINT', onSigint);
      let result: WriteSetResult;
      try {
        const plan = makePlan(spec, generator.classNames, run.classCounts);
        result = await writeSyntheticSet(generator, plan, {
          out: flags.out,
          overwrite: flags.overwrite === true,
          seeds,
          truncation,
          batchSize,
          grid: flags.grid,
          gridPerClass,
          source: sourceFromRun(run),
          onProgress,
          signal: controller.signal,
        });
      } finally {
        process.removeListener('SIGINT', onSigint);
        generator.dispose();
      }
      result = { ...result, warnings: [...new Set([...prepared.warnings, ...result.warnings])] };
      render.clear();
      const stdout = deps.stdout ?? process.stdout;
      stdout.write(`${json ? JSON.stringify(summary(result, run)) : formatResult(result, run)}\n`);
    });
}

function summary(r: WriteSetResult, run: RunInfo) {
  return {
    out: r.out,
    layout: r.layout,
    manifest: r.manifest,
    run: run.dir,
    checkpoint: run.checkpoint,
    network: run.network,
    classNames: r.classNames,
    counts: r.counts,
    total: r.total,
    seeds: { first: r.firstSeed, last: r.lastSeed, list: r.seeds },
    truncation: r.truncation,
    ...(r.grid !== undefined ? { grid: r.grid } : {}),
    warnings: r.warnings,
    seconds: r.seconds,
  };
}

function formatResult(r: WriteSetResult, run: RunInfo): string {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(10)} ${v}`);
  const per = r.classNames.map((n, c) => `${n} ${r.counts[c]}`).join(', ');
  kv('out', `${r.out} (${outKind(r.out) === 'npz' ? 'npz' : 'folder'}, ${r.total} images: ${per})`);
  kv('manifest', r.manifest);
  kv('generator', `${run.network} of ${run.dir} at step ${run.step} (${run.checkpoint})`);
  kv('seeds', `${r.seeds} (class by class)`);
  kv('truncation', `ψ ${r.truncation}`);
  if (r.grid !== undefined) kv('grid', `${r.grid} (rows: ${r.classNames.join(', ')})`);
  kv('time', `${r.seconds.toFixed(1)} s`);
  for (const w of r.warnings) kv('warning', w);
  return lines.join('\n');
}
