/**
 * `medsynth report <study-dir>`: one self-contained HTML page (images, charts, tables, verdicts) from a
 * finished study directory, written to `<study-dir>/report.html` or `--out`. Prints the file's path (with
 * `--json`: `{"report": path, "seconds": s}`).
 */
import type { Command } from 'commander';

interface ReportFlags {
  out?: string;
  json?: boolean;
}

export interface ReportCommandDeps {
  readonly stdout?: { write(text: string): unknown };
}

export function registerReportCommand(program: Command, deps: ReportCommandDeps = {}): void {
  program
    .command('report')
    .description(
      'write a study’s HTML report: verdicts, real vs synthetic images, GAN training, evaluation, downstream tables and charts (one self-contained file)',
    )
    .argument('<study-dir>', 'a study directory (with results.json)')
    .option('--out <file.html>', 'where to write the report (default: <study-dir>/report.html)')
    .option('--json', 'print {"report": path, "seconds": s} as JSON')
    .action(async (studyDir: string, flags: ReportFlags) => {
      const started = performance.now();
      const { writeReport } = await import('../report/index.js');
      const file = await writeReport(studyDir, flags.out);
      const seconds = (performance.now() - started) / 1000;
      const stdout = deps.stdout ?? process.stdout;
      stdout.write(flags.json === true ? `${JSON.stringify({ report: file, seconds })}\n` : `${file}\n`);
    });
}
