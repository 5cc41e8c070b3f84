/**
 * `medsynth export`: a run's sampling generator in another format, for programs outside medsynth. One format
 * so far, `tfjs`: the TF.js layers model (`model.json` + `weights.bin`) and `generator.json` (family, spec,
 * classes, where truncation acts, the state beside the weights) — what `medsynth serve` loads in the browser;
 * see generate/tfjs-export.ts. Written atomically; an earlier export is replaced only with `--overwrite`.
 */
import type { Command } from 'commander';
import { ConfigError } from '../runtime/errors.js';

interface ExportFlags {
  run: string;
  out: string;
  format: string;
  checkpoint?: string;
  ema: boolean;
  overwrite?: boolean;
  json?: boolean;
}

export const EXPORT_FORMATS = ['tfjs'] as const;

export interface ExportCommandDeps {
  /** Selects the TF.js backend before the run is loaded (default: runtime/backend's `selectBackend`). */
  readonly selectBackend?: () => Promise<unknown>;
  /** Where the summary goes (default `process.stdout`). */
  readonly stdout?: { write(text: string): unknown };
}

export function registerExportCommand(program: Command, deps: ExportCommandDeps = {}): void {
  program
    .command('export')
    .description(
      "export a run's generator (G_ema of the latest checkpoint) for other programs: --format tfjs writes a TF.js layers model (model.json, weights.bin) and generator.json",
    )
    .requiredOption('--run <dir>', 'the training run directory')
    .requiredOption('--out <folder>', 'the export folder (must not exist, unless --overwrite)')
    .option('--format <format>', `export format: ${EXPORT_FORMATS.join(', ')}`, 'tfjs')
    .option('--checkpoint <name>', 'a checkpoint in <run>/checkpoints (or a path); default the latest')
    .option('--no-ema', 'export the raw generator G instead of its moving average G_ema')
    .option('--overwrite', 'replace an earlier export in --out (never another kind of folder)')
    .option('--json', 'print one JSON summary on stdout')
    .action(async (flags: ExportFlags) => {
      if (!(EXPORT_FORMATS as readonly string[]).includes(flags.format))
        throw new ConfigError('unknown export format', {
          field: '--format',
          expected: EXPORT_FORMATS.join(', '),
          found: flags.format,
        });
      const select =
        deps.selectBackend ?? (async () => (await import('../runtime/backend.js')).selectBackend());
      await select();
      const { exportTfjsGenerator, writeTfjsGenerator } = await import('../generate/tfjs-export.js');
      const exp = await exportTfjsGenerator(flags.run, { checkpoint: flags.checkpoint, ema: flags.ema });
      const out = await writeTfjsGenerator(exp, flags.out, { overwrite: flags.overwrite === true });
      const m = exp.meta;
      const stdout = deps.stdout ?? process.stdout;
      const bytes = exp.weightData.byteLength;
      if (flags.json === true) {
        stdout.write(
          `${JSON.stringify({
            out,
            format: flags.format,
            family: m.family,
            network: m.network,
            checkpoint: m.checkpoint,
            step: m.step,
            size: m.size,
            classes: m.classNames,
            weightBytes: bytes,
          })}\n`,
        );
      } else {
        stdout.write(
          `exported ${m.family} ${m.network} of ${m.checkpoint} (step ${m.step}, ${m.size}×${m.size}, ${m.classNames.length} classes) to ${out}: model.json, weights.bin (${(bytes / 1e6).toFixed(1)} MB), generator.json\n`,
        );
      }
    });
}
