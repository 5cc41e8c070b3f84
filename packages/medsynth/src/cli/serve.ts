/**
 * `medsynth serve [dir]`: a local web app over a folder of training runs, evaluations and studies (sample
 * grids over training time, curves, metric tables, study reports, embedding maps, live generation, reader
 * studies). Binds 127.0.0.1:8765 unless `--host` / `--port` say otherwise; prints the URL on stdout (with
 * `--json`: one JSON line), the folder's contents and each request (`--log`) on stderr; Ctrl-C stops it.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { parseInteger } from './data-flags.js';
import { abortOnSigint } from './interrupt.js';

interface ServeFlags {
  host: string;
  port: number;
  log?: boolean;
  json?: boolean;
}

export interface ServeCommandDeps {
  readonly stdout?: { write(text: string): unknown };
  readonly stderr?: { write(text: string): unknown };
  /** Stops the server when aborted (tests); Ctrl-C and SIGTERM always do. */
  readonly signal?: AbortSignal;
}

function port(v: string): number {
  const n = parseInteger('--port')(v);
  if (n < 0 || n > 65535) throw new InvalidArgumentError('--port must be 0–65535 (0: any free port)');
  return n;
}

export function registerServeCommand(program: Command, deps: ServeCommandDeps = {}): void {
  program
    .command('serve')
    .description(
      'browse a folder of runs, evaluations and studies in a local web app (grids over training time, curves, metric tables, study reports, embedding maps)',
    )
    .argument('[dir]', 'the folder to serve (runs, evaluations and studies are found anywhere below it)', '.')
    .option('--host <address>', 'address to listen on (0.0.0.0 opens it to the network)', '127.0.0.1')
    .option('--port <number>', 'port to listen on (0: any free port)', port, 8765)
    .option('--log', 'print each request on stderr')
    .option('--json', 'print {"url", "root", "host", "port", …} as one JSON line on stdout')
    .action(async (dir: string, flags: ServeFlags) => {
      const { isLoopback, startServer } = await import('../serve/server.js');
      const stdout = deps.stdout ?? process.stdout;
      const stderr = deps.stderr ?? process.stderr;
      const server = await startServer({
        dir,
        host: flags.host,
        port: flags.port,
        ...(flags.log
          ? {
              onRequest: (r) => stderr.write(`${r.method} ${r.url} ${r.status} ${r.ms.toFixed(0)} ms\n`),
            }
          : {}),
      });
      const snap = await server.index.snapshot();
      const counts = {
        runs: snap.runs.length,
        evaluations: snap.evaluations.length,
        studies: snap.studies.length,
      };
      if (flags.json)
        stdout.write(
          `${JSON.stringify({ url: server.url, root: server.ctx.root, host: server.host, port: server.port, ...counts })}\n`,
        );
      else {
        stdout.write(`${server.url}\n`);
        stderr.write(
          `serving ${server.ctx.root}: ${counts.runs} training run${counts.runs === 1 ? '' : 's'}, ${counts.evaluations} evaluation${counts.evaluations === 1 ? '' : 's'}, ${counts.studies} stud${counts.studies === 1 ? 'y' : 'ies'} · Ctrl-C to stop\n`,
        );
      }
      if (!isLoopback(server.host))
        stderr.write(
          `warning: listening on ${server.host}: anyone who can reach this machine can read the files in ${server.ctx.root}\n`,
        );
      const interrupt = abortOnSigint('stopping the server', () => {});
      let onTerm: (() => void) | undefined;
      try {
        await new Promise<void>((resolve) => {
          onTerm = () => resolve();
          if (interrupt.signal.aborted || deps.signal?.aborted) return resolve();
          interrupt.signal.addEventListener('abort', onTerm, { once: true });
          deps.signal?.addEventListener('abort', onTerm, { once: true });
          process.once('SIGTERM', onTerm);
        });
      } finally {
        if (onTerm) process.off('SIGTERM', onTerm);
        interrupt.release();
        await server.close();
      }
    });
}
