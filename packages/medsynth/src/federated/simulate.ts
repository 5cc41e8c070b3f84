/**
 * A federation on one machine: the coordinator in this process on 127.0.0.1 and one site *process* per
 * partition of one dataset's train split (IID, or non-IID with per-class Dirichlet(α) shares:
 * data/splits.ts `partitionSites`). Each site process computes its own partition from the same seed and
 * loads only those images (`federated site --partition i/N`), so the simulation exercises exactly the code
 * and the wire protocol of a real deployment; only TLS is off (loopback). Sites' output goes to
 * `<run>/sites/<name>.log`. The simulation ends when the coordinator's last round is written; a site process
 * that exits with an error before that fails the simulation with the end of its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { DataOptions } from '../config/data-options.js';
import type { TrainOptions } from '../config/train-options.js';
import { openDataset } from '../data/source.js';
import { partitionSites } from '../data/splits.js';
import { ConfigError, FederationError } from '../runtime/errors.js';
import type { RunControl } from '../runtime/progress.js';
import { runCoordinator, type FederationResult } from './coordinator.js';
import type { FederationOptions } from './options.js';

export interface SimulationSetup {
  /** The model; `train.data` is the dataset whose train split is partitioned. */
  readonly train: TrainOptions;
  readonly federation: FederationOptions;
  readonly sites: number;
  /** Dirichlet α of a non-IID partition; undefined: IID. */
  readonly alpha?: number | undefined;
  /** Seed of the partition (default: the training seed). */
  readonly partitionSeed?: number | undefined;
  readonly outDir: string;
  /** The command that starts `medsynth` (default: this Node with its flags and medsynth's CLI entry). */
  readonly command?: readonly string[] | undefined;
  /** libtorch threads per site process (default: the cores shared out among the sites, at least 1). */
  readonly threadsPerSite?: number | undefined;
}

export interface SimulationResult extends FederationResult {
  /** Train images per class at each site. */
  readonly partition: Readonly<Record<string, readonly number[]>>;
}

/** The `medsynth` entry this module ships with (the TypeScript source under tsx, the build otherwise). */
function defaultCommand(): string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(`../cli/run.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  return [process.execPath, ...process.execArgv, entry];
}

/** Train-split ids of site `index` (0-based) of `sites`, as `federated site --partition` computes them. */
export async function partitionIds(
  data: DataOptions,
  sites: number,
  index: number,
  seed: number,
  alpha?: number,
): Promise<string[]> {
  if (!(index >= 0 && index < sites))
    throw new ConfigError(`site ${index + 1} of ${sites} does not exist`, { field: '--partition' });
  const train = (await openDataset(data)).split('train');
  const site = partitionSites(train.labels, sites, seed, alpha === undefined ? {} : { alpha });
  const ids: string[] = [];
  site.forEach((s, i) => {
    if (s === index) ids.push(train.id(i));
  });
  return ids;
}

/** Class counts of every site of a partition (for the record and the report). */
async function partitionCounts(
  data: DataOptions,
  sites: number,
  seed: number,
  alpha?: number,
): Promise<Record<string, number[]>> {
  const ds = await openDataset(data);
  const train = ds.split('train');
  const site = partitionSites(train.labels, sites, seed, alpha === undefined ? {} : { alpha });
  const out: Record<string, number[]> = {};
  for (let s = 0; s < sites; s++) out[`site-${s + 1}`] = new Array<number>(ds.classNames.length).fill(0);
  site.forEach((s, i) => out[`site-${s + 1}`]![train.labels[i]!]!++);
  return out;
}

export async function simulate(setup: SimulationSetup, control: RunControl = {}): Promise<SimulationResult> {
  const { train, sites } = setup;
  if (!(Number.isInteger(sites) && sites >= 1))
    throw new ConfigError('--sites must be ≥ 1', { field: '--sites' });
  const seed = setup.partitionSeed ?? train.seed;
  const partition = await partitionCounts(train.data, sites, seed, setup.alpha);
  const threads = setup.threadsPerSite ?? Math.max(1, Math.floor(os.availableParallelism() / sites));
  const command = setup.command ?? defaultCommand();
  const children: { name: string; child: ChildProcess; log: string; exit: Promise<number | null> }[] = [];
  const abort = new AbortController();
  const signal = control.signal ? AbortSignal.any([control.signal, abort.signal]) : abort.signal;
  let failure: Error | null = null;

  const startSites = async (port: number, runDir: string) => {
    await mkdir(join(runDir, 'sites'), { recursive: true });
    for (let s = 0; s < sites; s++) {
      const name = `site-${s + 1}`;
      const args = [
        ...command.slice(1),
        'federated',
        'site',
        '--coordinator',
        `127.0.0.1:${port}`,
        '--insecure',
        '--name',
        name,
        '--data',
        train.data.source,
        '--partition',
        `${s + 1}/${sites}`,
        '--partition-seed',
        String(seed),
        ...(setup.alpha !== undefined ? ['--alpha', String(setup.alpha)] : []),
        '--retry-minutes',
        '2',
      ];
      const log = join(runDir, 'sites', `${name}.log`);
      const out = createWriteStream(log);
      const child = spawn(command[0]!, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, MEDSYNTH_THREADS: String(threads) },
      });
      child.stdout!.pipe(out, { end: false });
      child.stderr!.pipe(out, { end: false });
      const exit = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => {
          out.end();
          resolve(code);
        }),
      );
      children.push({ name, child, log, exit });
      void exit.then(async (code) => {
        if (code !== 0 && !signal.aborted && failure === null) {
          const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
          failure = new FederationError(
            `${name} exited with code ${code} before the federation ended:\n${tail}`,
          );
          if (children.every((c) => c.child.exitCode !== null && c.child.exitCode !== 0))
            abort.abort(failure);
        }
      });
    }
  };

  let result: FederationResult;
  try {
    result = await runCoordinator(
      {
        federation: {
          ...setup.federation,
          host: '127.0.0.1',
          minSites: Math.min(setup.federation.minSites, sites),
        },
        train,
        credentials: grpc.ServerCredentials.createInsecure(),
        authenticated: false,
        outDir: setup.outDir,
      },
      {
        signal,
        onProgress: control.onProgress,
        onListening: (port, runDir) => {
          void startSites(port, runDir).catch((e: unknown) => abort.abort(e));
        },
      },
    );
  } catch (e) {
    throw (failure as Error | null) ?? e;
  } finally {
    // Sites leave on the coordinator's `done`; give them a moment, then stop any that linger.
    const deadline = Date.now() + 10_000;
    for (const c of children) {
      const left = Math.max(0, deadline - Date.now());
      const code = await Promise.race([
        c.exit,
        new Promise<'late'>((r) => setTimeout(() => r('late'), left)),
      ]);
      if (code === 'late') c.child.kill('SIGKILL');
    }
  }
  return { ...result, partition };
}
