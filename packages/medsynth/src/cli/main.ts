/**
 * The `medsynth` command line: thin over the library. Exit codes: 0 ok, 2 usage/config/input errors,
 * 1 runtime failures. `--json` gives machine-readable output on stdout; progress and errors go to stderr.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isMedsynthError, type MedsynthError } from '../runtime/errors.js';
import { fileSystemError } from '../runtime/fs.js';
import { registerDataCommands } from './data.js';
import { registerDoctorCommand } from './doctor.js';
import { registerEvaluateCommand } from './evaluate.js';
import { registerExportCommand } from './export.js';
import { registerFederatedCommands } from './federated.js';
import { registerGenerateCommand } from './generate.js';
import { registerProjectCommand } from './project.js';
import { registerReportCommand } from './report.js';
import { registerServeCommand } from './serve.js';
import { registerStudyCommand } from './study.js';
import { registerTrainCommand } from './train.js';
import { registerWorkerCommand } from './worker.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('medsynth')
    .description(
      'GAN-based synthetic medical images: data, generative models, evaluation and downstream studies',
    )
    .version(pkg.version)
    .option('--debug', 'print stack traces of errors (also MEDSYNTH_DEBUG=1)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerDataCommands(program);
  registerDoctorCommand(program);
  registerTrainCommand(program);
  registerGenerateCommand(program);
  registerExportCommand(program);
  registerEvaluateCommand(program);
  registerProjectCommand(program);
  registerStudyCommand(program);
  registerReportCommand(program);
  registerServeCommand(program);
  registerFederatedCommands(program);
  registerWorkerCommand(program);
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version')
        return 0;
      return 2;
    }
    return reportError(e, argv);
  }
}

/**
 * Prints an error that ended a command and returns the exit code. `MedsynthError`s (and file-system refusals
 * such as a full disk, mapped to one) print their message alone; anything else is a bug and says so. Stack
 * traces only with `--debug` or `MEDSYNTH_DEBUG=1`.
 */
export function reportError(e: unknown, argv: readonly string[]): number {
  const debug = argv.includes('--debug') || ['1', 'true'].includes(process.env.MEDSYNTH_DEBUG ?? '');
  const json = argv.includes('--json');
  const known: MedsynthError | undefined = isMedsynthError(e) ? e : fileSystemError(e);
  const stack = debug ? `\n${(e as Error)?.stack ?? String(e)}` : '';
  if (known) {
    if (json) process.stderr.write(`${JSON.stringify({ error: known.toJSON() })}\n`);
    else process.stderr.write(`medsynth: ${known.name}: ${known.message}${stack}\n`);
    return known.exitCode;
  }
  const message = (e as Error)?.message ?? String(e);
  if (json) process.stderr.write(`${JSON.stringify({ error: { name: 'Error', message } })}\n`);
  process.stderr.write(
    `medsynth: unexpected error: ${message}${stack || '\n(run with --debug for the stack trace)'}\n`,
  );
  return 1;
}
