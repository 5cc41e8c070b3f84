/**
 * The `medsynth` command line: thin over the library. Exit codes: 0 ok, 2 usage/config/input errors,
 * 1 runtime failures. `--json` gives machine-readable output on stdout; progress and errors go to stderr.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { isMedsynthError } from '../runtime/errors.js';
import { registerDataCommands } from './data.js';
import { registerDoctorCommand } from './doctor.js';
import { registerEvaluateCommand } from './evaluate.js';
import { registerGenerateCommand } from './generate.js';
import { registerReportCommand } from './report.js';
import { registerStudyCommand } from './study.js';
import { registerTrainCommand } from './train.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('medsynth')
    .description(
      'GAN-based synthetic medical images: data, generative models, evaluation and downstream studies',
    )
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerDataCommands(program);
  registerDoctorCommand(program);
  registerTrainCommand(program);
  registerGenerateCommand(program);
  registerEvaluateCommand(program);
  registerStudyCommand(program);
  registerReportCommand(program);
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
    const json = argv.includes('--json');
    if (isMedsynthError(e)) {
      if (json) process.stderr.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
      else process.stderr.write(`medsynth: ${e.name}: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`medsynth: unexpected error: ${err?.stack ?? String(e)}\n`);
    return 1;
  }
}
