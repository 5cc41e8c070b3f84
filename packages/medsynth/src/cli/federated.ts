/**
 * `medsynth federated …`: one generator trained by several institutions that never pool images.
 *   certs     make a test CA and certificates for the coordinator and each site (mutual TLS)
 *   serve     run the coordinator (holds no images): rounds of local training at the sites, FedAvg/FedProx
 *   site      join a coordinator with this institution's data
 *   simulate  a whole federation on this machine: the coordinator and one site process per partition
 *   compare   central vs federated (IID, non-IID) training for the same images seen, judged by one study
 * TLS is on by default for `serve` and `site` (mutual: the coordinator accepts only sites whose certificate its
 * CA signed); `--insecure` turns it off where asked. The federated run is an ordinary run directory.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type TrainOptions, resolveTrainOptions } from '../config/train-options.js';
import { resolveOptions, DataOptionsSchema } from '../config/data-options.js';
import { addSiteCertificate, makeCertificates } from '../federated/certs.js';
import { runCoordinator, type FederationResult } from '../federated/coordinator.js';
import {
  resolveFederationOptions,
  SERVER_OPTIMIZERS,
  STRATEGIES,
  type FederationOptionsInput,
} from '../federated/options.js';
import { partitionIds, simulate } from '../federated/simulate.js';
import { runSite } from '../federated/site.js';
import { compareFederated, compareMarkdown } from '../study/federated-compare.js';
import { channelCredentials, serverCredentials, type TlsSetting } from '../federated/tls.js';
import { selectBackend, slowBackendWarning } from '../runtime/backend.js';
import { ConfigError } from '../runtime/errors.js';
import { addDataFlags, type DataFlags, dataOptionsFromFlags, parseInteger } from './data-flags.js';
import { abortOnSigint } from './interrupt.js';
import { createRenderer, formatSeconds } from './render.js';
import { addModelFlags, trainInputFromFlags, type TrainFlags } from './train.js';

interface FederationFlags {
  rounds?: number;
  localSteps?: number;
  minSites?: number;
  fraction?: number;
  minFit?: number;
  roundTimeout?: number;
  joinTimeout?: number;
  strategy?: string;
  proxMu?: number;
  serverOptimizer?: string;
  serverLr?: number;
  serverMomentum?: number;
  shareD?: boolean;
  outlierFactor?: number;
  host?: string;
  port?: number;
}

interface TlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  ca?: string;
  insecure?: boolean;
}

const positive = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x > 0 && Number.isFinite(x)))
    throw new InvalidArgumentError(`${flag} must be a positive number, got "${v}"`);
  return x;
};
const fraction01 = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError(`${flag} must be in [0, 1), got "${v}"`);
  return x;
};
const positiveInt = (flag: string) => (v: string) => {
  const n = parseInteger(flag)(v);
  if (n < 1) throw new InvalidArgumentError(`${flag} must be ≥ 1`);
  return n;
};

function addFederationFlags(cmd: Command, withNetwork: boolean): Command {
  cmd
    .requiredOption('--rounds <n>', 'aggregation rounds', positiveInt('--rounds'))
    .requiredOption(
      '--local-steps <n>',
      'optimisation steps each site takes per round',
      positiveInt('--local-steps'),
    )
    .option(
      '--fraction <f>',
      'share of the available sites trained each round (default 1)',
      positive('--fraction'),
    )
    .option('--min-fit <n>', 'accepted updates a round needs (default 1)', positiveInt('--min-fit'))
    .option(
      '--round-timeout <s>',
      'seconds a round waits for its sites before aggregating those that answered (default 600)',
      positive('--round-timeout'),
    )
    .addOption(
      new Option('--strategy <name>', 'aggregation: fedavg, or fedprox (proximal term)').choices([
        ...STRATEGIES,
      ]),
    )
    .option('--prox-mu <μ>', 'fedprox: weight of the proximal term (default 0.01)', positive('--prox-mu'))
    .addOption(
      new Option(
        '--server-optimizer <name>',
        "how the coordinator moves toward the round's average: none (FedAvg), momentum (FedAvgM) or adam (FedAdam)",
      ).choices([...SERVER_OPTIMIZERS]),
    )
    .option(
      '--server-lr <η>',
      'server learning rate (default 1; adam needs it, e.g. 1e-3)',
      positive('--server-lr'),
    )
    .option(
      '--server-momentum <β>',
      'server momentum β (adam: β₁; default 0.9)',
      fraction01('--server-momentum'),
    )
    .option('--no-share-d', 'share only G: every site keeps its own discriminator')
    .option(
      '--outlier-factor <k>',
      "reject an update whose norm exceeds k × the round's median (default 5)",
      positive('--outlier-factor'),
    );
  if (withNetwork)
    cmd
      .option(
        '--min-sites <n>',
        'sites that must join before round 1 (default 2)',
        positiveInt('--min-sites'),
      )
      .option('--join-timeout <s>', 'seconds to wait for sites (default 600)', positive('--join-timeout'))
      .option('--host <addr>', 'address to listen on (default 127.0.0.1)')
      .option('--port <n>', 'port to listen on (default 7521; 0: any free port)', parseInteger('--port'));
  return cmd;
}

function addTlsFlags(cmd: Command): Command {
  return cmd
    .option('--tls-cert <file>', "this end's certificate (PEM; `medsynth federated certs` makes test ones)")
    .option('--tls-key <file>', "this end's private key (PEM)")
    .option('--ca <file>', 'the CA that signed the other end (PEM)')
    .option('--insecure', 'no TLS at all (trusted networks and tests only)');
}

function tlsSetting(f: TlsFlags): TlsSetting {
  const given = [f.tlsCert, f.tlsKey, f.ca].filter((x) => x !== undefined).length;
  if (f.insecure) {
    if (given > 0)
      throw new ConfigError('give either --insecure or the TLS files, not both', { field: '--insecure' });
    return 'insecure';
  }
  if (given < 3)
    throw new ConfigError(
      'TLS needs --tls-cert, --tls-key and --ca (make test ones with `medsynth federated certs`), or --insecure to go without',
      { field: f.tlsCert === undefined ? '--tls-cert' : f.tlsKey === undefined ? '--tls-key' : '--ca' },
    );
  return { cert: f.tlsCert!, key: f.tlsKey!, ca: f.ca! };
}

function federationInput(f: FederationFlags): FederationOptionsInput {
  const o: Record<string, unknown> = { rounds: f.rounds, localSteps: f.localSteps };
  const copy = [
    'minSites',
    'fraction',
    'minFit',
    'strategy',
    'proxMu',
    'serverOptimizer',
    'serverLr',
    'serverMomentum',
    'outlierFactor',
    'host',
    'port',
  ] as const;
  for (const k of copy) if (f[k] !== undefined) o[k] = f[k];
  if (f.roundTimeout !== undefined) o['roundTimeoutSeconds'] = f.roundTimeout;
  if (f.joinTimeout !== undefined) o['joinTimeoutSeconds'] = f.joinTimeout;
  if (f.shareD === false) o['shareD'] = false;
  return o as FederationOptionsInput;
}

/**
 * The model's training options for a federation: the flags over the preset; without --kimg/--minutes the
 * nominal length is what the rounds show (rounds × local steps × batch × sites), which schedules never use
 * (they follow the rounds' progress).
 */
function federatedTrainOptions(
  flags: TrainFlags,
  rounds: number,
  localSteps: number,
  sites: number,
): TrainOptions {
  const input = trainInputFromFlags(flags);
  const probe = resolveTrainOptions({ ...input, kimg: 1 });
  const kimg = (rounds * localSteps * probe.batchSize * probe.dSteps * sites) / 1000;
  return resolveTrainOptions({ ...input, kimg, minutes: undefined });
}

/** The options of a federation run on this machine (`simulate`, `compare`): every site joins, any free port. */
function localFederation(flags: TrainFlags & FederationFlags & { sites: number }) {
  const federation = resolveFederationOptions({ ...federationInput(flags), minSites: flags.sites, port: 0 });
  return {
    federation,
    train: federatedTrainOptions(flags, federation.rounds, federation.localSteps, flags.sites),
  };
}

function printResult(result: FederationResult, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    [
      `run: ${result.runDir}`,
      `${result.rounds} rounds, ${result.kimg.toFixed(1)} kimg, ${formatSeconds(result.seconds)}; sites: ${result.sites.join(', ')}`,
      `checkpoint: ${result.checkpoint}`,
      `rounds: ${result.runDir}/rounds.jsonl; samples: ${result.runDir}/samples/latest.png`,
      `use it like any run: medsynth generate --run ${result.runDir} …, medsynth evaluate --run ${result.runDir} …`,
    ].join('\n') + '\n',
  );
}

interface SiteFlags extends DataFlags, TlsFlags {
  coordinator: string;
  name: string;
  data: string;
  partition?: string;
  alpha?: number;
  partitionSeed?: number;
  retryMinutes?: number;
  json?: boolean;
}

function parsePartition(v: string): [number, number] {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const i = Number(m?.[1]);
  const n = Number(m?.[2]);
  if (!m || !(i >= 1 && i <= n))
    throw new InvalidArgumentError(`expected i/N with 1 ≤ i ≤ N (e.g. 2/3), got "${v}"`);
  return [i, n];
}

export function registerFederatedCommands(program: Command): void {
  const fed = program
    .command('federated')
    .description('train one generator across institutions that never pool images (gRPC, mutual TLS)');

  fed
    .command('certs')
    .description('make a test CA and certificates for a coordinator and its sites (mutual TLS)')
    .requiredOption('--out <dir>', 'folder for the PEM files')
    .option('--sites <names>', 'comma-separated site names (each gets site-<name>.crt/.key)')
    .option('--add-site <name>', "sign one more site's certificate with the CA already in --out")
    .option('--hosts <list>', "the coordinator's addresses and host names (default 127.0.0.1,localhost)")
    .option('--days <n>', 'validity in days (default 365)', positiveInt('--days'))
    .option('--force', 'replace existing files')
    .action(
      async (f: {
        out: string;
        sites?: string;
        addSite?: string;
        hosts?: string;
        days?: number;
        force?: boolean;
      }) => {
        if (f.addSite !== undefined) {
          const pair = await addSiteCertificate(f.out, f.addSite, {
            ...(f.days !== undefined ? { days: f.days } : {}),
            ...(f.force ? { force: true } : {}),
          });
          process.stdout.write(`site ${f.addSite}: ${pair.cert} ${pair.key}\n`);
          return;
        }
        if (f.sites === undefined)
          throw new ConfigError('give --sites a,b,c (or --add-site <name>)', { field: '--sites' });
        const files = await makeCertificates(f.out, {
          sites: f.sites.split(',').map((s) => s.trim()),
          ...(f.hosts !== undefined ? { hosts: f.hosts.split(',').map((s) => s.trim()) } : {}),
          ...(f.days !== undefined ? { days: f.days } : {}),
          ...(f.force ? { force: true } : {}),
        });
        process.stdout.write(
          [
            `CA: ${files.ca.cert} (keep ${files.ca.key} private)`,
            `coordinator: --tls-cert ${files.coordinator.cert} --tls-key ${files.coordinator.key} --ca ${files.ca.cert}`,
            ...Object.entries(files.sites).map(
              ([name, p]) => `site ${name}: --tls-cert ${p.cert} --tls-key ${p.key} --ca ${files.ca.cert}`,
            ),
          ].join('\n') + '\n',
        );
      },
    );

  const serve = fed
    .command('serve')
    .description('run the coordinator: it holds no images; sites join with theirs')
    .option('--data-free', 'the coordinator holds no data (always so; accepted for clarity)')
    .option('--data-name <name>', "what the run records as its data (default 'federated')")
    .option(
      '--resume <run-dir>',
      'continue a federated run from its last round (its own model and strategy; --rounds is the new total)',
    );
  addTlsFlags(addFederationFlags(addModelFlags(serve), true))
    .option('--seed <n>', 'seed of the model and of the participant draws', parseInteger('--seed'), 0)
    .option('--out <dir>', 'parent folder of the numbered run directories', 'runs')
    .option('--name <name>', 'run name (default federated-<model>-<data>-<size>)')
    .option('--json', 'progress as nothing, the result as one JSON object')
    .action(
      async (
        flags: TrainFlags &
          FederationFlags &
          TlsFlags & { dataName?: string; resume?: string; json?: boolean },
      ) => {
        const render = createRenderer({ json: flags.json === true });
        const federation = resolveFederationOptions(federationInput(flags));
        const train = federatedTrainOptions(
          { ...flags, data: `federated:${flags.dataName ?? 'federated'}` },
          federation.rounds,
          federation.localSteps,
          federation.minSites,
        );
        const tls = tlsSetting(flags);
        const backend = await selectBackend();
        if (!flags.json)
          process.stderr.write(
            `backend: ${backend.backend} (${backend.reason}), ${backend.threads} threads\n`,
          );
        const interrupt = abortOnSigint(
          'stopping the federation (the last round is kept; --resume continues)',
          render.clear,
        );
        try {
          const result = await runCoordinator(
            {
              federation,
              train,
              credentials: await serverCredentials(tls),
              authenticated: tls !== 'insecure',
              outDir: flags.out ?? 'runs',
              resume: flags.resume,
            },
            { onProgress: render.onProgress, signal: interrupt.signal },
          );
          render.clear();
          printResult(result, flags.json === true);
        } finally {
          interrupt.release();
        }
      },
    );

  const site = fed
    .command('site')
    .description("join a coordinator with this institution's data (only weights and counts leave)")
    .requiredOption('--coordinator <host:port>', "the coordinator's address")
    .requiredOption('--name <name>', "this site's name (its certificate's CN under TLS)")
    .requiredOption('--data <source>', "this site's dataset (its train split is used)")
    .option('--partition <i/N>', 'simulations: train on part i of N of the train split', parsePartition)
    .option('--alpha <α>', 'with --partition: non-IID Dirichlet(α) partition', positive('--alpha'))
    .option(
      '--partition-seed <n>',
      'with --partition: its seed (default --seed)',
      parseInteger('--partition-seed'),
    )
    .option(
      '--retry-minutes <m>',
      'minutes without contact before giving up (default 10)',
      positive('--retry-minutes'),
    )
    .option('--json', 'progress as nothing, the result as one JSON object');
  addDataFlags(addTlsFlags(site)).action(async (flags: SiteFlags) => {
    const render = createRenderer({ json: flags.json === true });
    const data = resolveOptions(DataOptionsSchema, dataOptionsFromFlags(flags.data, flags), '--data');
    const tls = tlsSetting(flags);
    if (flags.alpha !== undefined && flags.partition === undefined)
      throw new ConfigError('--alpha applies with --partition', { field: '--alpha' });
    const partition = flags.partition as unknown as [number, number] | undefined;
    const subset = partition
      ? {
          trainImages: await partitionIds(
            data,
            partition[1],
            partition[0] - 1,
            flags.partitionSeed ?? flags.seed ?? 0,
            flags.alpha,
          ),
        }
      : {};
    await selectBackend();
    const slow = slowBackendWarning();
    if (slow) render.onProgress({ type: 'warning', message: slow });
    const interrupt = abortOnSigint('leaving the federation', render.clear);
    try {
      const result = await runSite(
        {
          name: flags.name,
          coordinator: flags.coordinator,
          credentials: await channelCredentials(tls),
          data,
          subset,
          retryMinutes: flags.retryMinutes,
        },
        { onProgress: render.onProgress, signal: interrupt.signal },
      );
      render.clear();
      if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else
        process.stdout.write(
          `${flags.name}: ${result.rounds} rounds, ${result.examples} images trained on; sent ${(result.bytes.sent / 2 ** 20).toFixed(1)} MiB, received ${(result.bytes.received / 2 ** 20).toFixed(1)} MiB (${result.reason})\n`,
        );
    } finally {
      interrupt.release();
    }
  });

  const sim = fed
    .command('simulate')
    .description(
      'a federation on this machine: the coordinator and one site process per partition (127.0.0.1)',
    )
    .requiredOption('--data <source>', 'the dataset whose train split is partitioned among the sites')
    .requiredOption('--sites <n>', 'number of sites', positiveInt('--sites'))
    .option('--alpha <α>', 'non-IID: per-class Dirichlet(α) site shares (omit for IID)', positive('--alpha'))
    .option(
      '--partition-seed <n>',
      'seed of the partition (default --seed)',
      parseInteger('--partition-seed'),
    );
  addDataFlags(addFederationFlags(addModelFlags(sim), false))
    .option('--out <dir>', 'parent folder of the numbered run directories', 'runs')
    .option('--name <name>', 'run name (default federated-<model>-<data>-<size>)')
    .option('--json', 'progress as nothing, the result as one JSON object')
    .action(
      async (
        flags: TrainFlags &
          FederationFlags & { sites: number; alpha?: number; partitionSeed?: number; json?: boolean },
      ) => {
        const render = createRenderer({ json: flags.json === true });
        const { federation, train } = localFederation(flags);
        const backend = await selectBackend();
        if (!flags.json) process.stderr.write(`backend: ${backend.backend} (${backend.reason})\n`);
        const interrupt = abortOnSigint('stopping the simulation (the last round is kept)', render.clear);
        try {
          const result = await simulate(
            {
              train,
              federation,
              sites: flags.sites,
              alpha: flags.alpha,
              partitionSeed: flags.partitionSeed,
              outDir: flags.out ?? 'runs',
            },
            { onProgress: render.onProgress, signal: interrupt.signal },
          );
          render.clear();
          printResult(result, flags.json === true);
          if (!flags.json)
            process.stdout.write(
              `partition (images per class): ${Object.entries(result.partition)
                .map(([s, c]) => `${s} ${c.join('/')}`)
                .join('; ')}\n`,
            );
        } finally {
          interrupt.release();
        }
      },
    );

  const cmp = fed
    .command('compare')
    .description(
      'train one generator centrally and federated (IID and non-IID sites) for the same images seen, then judge them side by side',
    )
    .requiredOption('--data <source>', 'the dataset (its train split is partitioned for the federated runs)')
    .requiredOption('--sites <n>', 'number of sites', positiveInt('--sites'))
    .option('--alpha <α>', 'Dirichlet α of the non-IID partition (default 0.3)', positive('--alpha'), 0.3)
    .option('--classifier-seeds <list>', 'seeds of the synthetic-only CNNs (default 0,1,2)', parseSeeds)
    .addOption(
      new Option(
        '--site-batch <how>',
        "each site's batch: split (⌊batch / sites⌋, as many updates as the central run; default) or same (the full batch)",
      )
        .choices(['split', 'same'])
        .default('split'),
    );
  addDataFlags(addFederationFlags(addModelFlags(cmp), false))
    .option('--out <dir>', 'parent folder of the numbered comparison directories', 'runs')
    .option('--json', 'progress as nothing, the result as one JSON object')
    .action(
      async (
        flags: TrainFlags &
          FederationFlags & {
            sites: number;
            alpha: number;
            classifierSeeds?: number[];
            siteBatch: 'split' | 'same';
            json?: boolean;
          },
      ) => {
        const render = createRenderer({ json: flags.json === true });
        const { federation, train } = localFederation(flags);
        await selectBackend();
        const interrupt = abortOnSigint('stopping the comparison', render.clear);
        try {
          const result = await compareFederated(
            {
              train,
              federation,
              sites: flags.sites,
              alpha: flags.alpha,
              siteBatch: flags.siteBatch,
              outDir: flags.out ?? 'runs',
              seeds: flags.classifierSeeds,
            },
            { onProgress: render.onProgress, signal: interrupt.signal },
          );
          render.clear();
          process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : compareMarkdown(result));
        } finally {
          interrupt.release();
        }
      },
    );
}

function parseSeeds(v: string): number[] {
  const seeds = v.split(',').map((x) => Number(x.trim()));
  if (seeds.length === 0 || seeds.some((x) => !Number.isInteger(x) || x < 0))
    throw new InvalidArgumentError(`expected comma-separated seeds ≥ 0, got "${v}"`);
  return seeds;
}
