/**
 * `medsynth study`: does synthetic data replace or augment real data? Trains the generator, makes the
 * synthetic pool, evaluates it, trains every classifier under every data condition over several seeds,
 * and writes the results (study.sqlite, results.json, results.csv). A config file (YAML/JSON) or a preset
 * plus flags; `--resume <study-dir>` finishes an interrupted study; Ctrl-C stops after the current job.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../runtime/errors.js';
import type { StudyConfigInput } from '../study/config.js';
import type { Interval, StudySummary } from '../study/summary.js';
import { addDataFlags, type DataFlags, dataOptionsFromFlags, parseInteger } from './data-flags.js';
import { abortOnSigint } from './interrupt.js';
import { createRenderer, formatSeconds, formatTable } from './render.js';

interface StudyFlags extends DataFlags {
  data?: string;
  config?: string;
  preset?: string;
  resume?: string;
  size?: string;
  channels?: '1' | '3' | 'auto';
  conditions?: string[];
  classifiers?: string[];
  seeds?: number[];
  minutes?: number;
  generators?: string[];
  generatorSeeds?: number;
  equalSteps?: boolean;
  generatorRun?: string;
  evaluate?: boolean;
  out?: string;
  name?: string;
  dryRun?: boolean;
  json?: boolean;
  queue?: string;
  artifacts?: string;
  redisCa?: string;
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

function seedList(v: string): number[] {
  const int = parseInteger('--seeds');
  const m = /^(\d+)-(\d+)$/.exec(v.trim());
  if (m) {
    const [a, b] = [Number(m[1]), Number(m[2])];
    if (b < a) throw new InvalidArgumentError('--seeds: a range goes up (e.g. 0-4)');
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  return list(v).map(int);
}

function positive(flag: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!(x > 0 && Number.isFinite(x))) throw new InvalidArgumentError(`${flag} must be a positive number`);
    return x;
  };
}

/** The config the flags (and file) ask for, before preset merging and validation. */
export async function studyInputFromFlags(f: StudyFlags): Promise<StudyConfigInput> {
  const { readStudyConfigFile } = await import('../study/config.js');
  const o: Record<string, unknown> = f.config ? await readStudyConfigFile(f.config) : {};
  if (f.data !== undefined) o['data'] = dataOptionsFromFlags(f.data, f);
  if (o['data'] === undefined)
    throw new ConfigError('--data is required (or a --config file with data, or --resume <study-dir>)', {
      field: '--data',
    });
  if (f.preset !== undefined) o['preset'] = f.preset;
  if (f.size !== undefined) o['size'] = Number(f.size);
  if (f.channels !== undefined) o['channels'] = f.channels === 'auto' ? 'auto' : Number(f.channels);
  if (f.conditions !== undefined) o['conditions'] = f.conditions;
  if (f.classifiers !== undefined) o['classifiers'] = f.classifiers;
  if (f.seeds !== undefined) o['seeds'] = f.seeds;
  if (f.generators !== undefined) o['generators'] = f.generators;
  if (f.generatorSeeds !== undefined) o['generatorSeeds'] = f.generatorSeeds;
  if (f.equalSteps !== undefined) o['equalSteps'] = f.equalSteps;
  const generator = { ...((o['generator'] as Record<string, unknown> | undefined) ?? {}) };
  if (f.generatorRun !== undefined) generator['run'] = f.generatorRun;
  if (f.minutes !== undefined)
    generator['train'] = { ...((generator['train'] as object | undefined) ?? {}), minutes: f.minutes };
  if (Object.keys(generator).length > 0) o['generator'] = generator;
  if (f.evaluate === false)
    o['evaluate'] = { ...((o['evaluate'] as object | undefined) ?? {}), enabled: false };
  return o as StudyConfigInput;
}

const pct = (v: number | undefined | null) => (v === undefined || v === null ? '–' : (100 * v).toFixed(1));
const withCi = (i: Interval | null) => (i ? `${pct(i.mean)} [${pct(i.ci[0])}, ${pct(i.ci[1])}]` : '–');

/** The terminal report: one row per (classifier, generator, condition), then the verdicts. */
export function formatStudy(
  s: StudySummary,
  dir: string,
  seconds: number,
  ran: number,
  jobs: number,
): string {
  const rows = s.cells.map((c) => {
    const base = c.comparisons.find((x) => x.role === 'baseline');
    const d = base?.diff.accuracy;
    return [
      c.classifier,
      c.generator ?? '–',
      c.condition,
      `${c.trainReal}+${c.trainSynthetic}`,
      `${c.metrics.accuracy?.n ?? 0} ${c.units === 'generator seeds' ? 'g' : 's'}`,
      withCi(c.metrics.accuracy),
      pct(c.metrics.balancedAccuracy?.mean),
      withCi(c.metrics.sensitivity),
      withCi(c.metrics.specificity),
      pct(c.minorityF1?.mean),
      d && base ? `${d.mean >= 0 ? '+' : ''}${pct(d.mean)} vs ${base.against}` : '',
      base ? base.judgement.direction : '',
    ];
  });
  const lines = [
    `test set: ${s.testCount} real images (${s.classNames.map((n, k) => `${n} ${s.testClassCounts[k]}`).join(', ')}); minority class ${s.classNames[s.minorityClass]}`,
    ...s.instances.map(
      (i) =>
        `generator ${i.key}: trained on ${i.trainedOn.what}; pool ${i.pool.images} images in ${formatSeconds(i.pool.seconds)}${
          i.quality?.fid !== null && i.quality?.fid !== undefined ? `; FID ${i.quality.fid.toFixed(2)}` : ''
        }${i.fidelity ? `; class fidelity ${pct(i.fidelity.accuracy)} %` : ''}`,
    ),
    '',
    formatTable(
      [
        'classifier',
        'generator',
        'condition',
        'train real+syn',
        'n',
        'accuracy % [95% CI]',
        'bal.acc',
        'sens [CI]',
        'spec [CI]',
        'minority F1',
        'Δacc',
        'verdict',
      ],
      rows,
    ),
    '',
    ...s.verdicts.map((v) => `• ${v.text}`),
    '',
    s.statistics,
    '',
    ...s.failures.map((f) => `FAILED ${f.kind === 'pool' ? `generator ${f.id}` : f.id}: ${f.error}`),
    `${ran} of ${jobs} jobs run now in ${formatSeconds(seconds)}; results: ${dir}/results.json, results.csv, study.sqlite`,
  ];
  return lines.join('\n');
}

export function registerStudyCommand(program: Command): void {
  const cmd = program
    .command('study')
    .description(
      'does synthetic data replace or augment real data? generator, synthetic pool, evaluation, classifiers × conditions × seeds, statistics',
    )
    .option('--data <source>', 'the real dataset (an .npz, medmnist:<name>, a folder of images or DICOM)')
    .option('--config <file>', 'a study config file (YAML or JSON); flags override its fields')
    .addOption(
      new Option('--preset <name>', 'starting config').choices([
        'quick',
        'replacement',
        'augmentation',
        'limited-data',
        'paper',
        'tiny',
      ]),
    )
    .option('--resume <study-dir>', 'finish an interrupted study (finished jobs are kept)')
    .addOption(new Option('--size <px>', 'image side').choices(['28', '32', '64', '128']))
    .addOption(
      new Option(
        '--channels <n>',
        'image channels: 1, 3, or auto (1 for grey content, 3 when any image has colour; default)',
      ).choices(['1', '3', 'auto']),
    )
    .option(
      '--conditions <list>',
      'data conditions, e.g. real,synthetic,real+synthetic:1,rebalanced,limited:0.1+synthetic',
      list,
    )
    .option('--classifiers <list>', 'classifiers, e.g. cnn,resnet,vgg,lbp-rf,texture-lr', list)
    .option('--seeds <list>', 'seeds, e.g. 0,1,2 or 0-4', seedList)
    .option('--minutes <n>', 'training minutes of every generator', positive('--minutes'))
    .option(
      '--generators <list>',
      'generator families side by side, e.g. cgan,stylegan2,pggan,ddpm (a config file can give each options)',
      list,
    )
    .option(
      '--generator-seeds <n>',
      'train each generator n times (generator variance in the intervals)',
      (v) => parseInteger('--generator-seeds')(v),
    )
    .option(
      '--equal-steps',
      'every deep classifier trains for the same number of optimiser steps in every condition',
    )
    .option('--generator-run <dir>', 'use a finished `medsynth train` run instead of training one')
    .option('--no-evaluate', 'skip the synthetic images’ FID/KID/PRDC/MS-SSIM/privacy evaluation')
    .option('--out <dir>', 'parent folder of the numbered study directories', 'studies')
    .option('--name <name>', 'study directory name (default <preset>-<data>-<size>)')
    .option('--dry-run', 'print the resolved config and the job grid, and exit')
    .option(
      '--queue <redis-url>',
      'run the jobs on a BullMQ queue (redis://[:password@]host:port or rediss://); start `medsynth worker` processes on any machine with the data',
    )
    .option(
      '--artifacts <location>',
      'with --queue: where workers put generator runs and pools, a folder all of them reach or s3://bucket/prefix (default <study-dir>/artifacts)',
    )
    .option('--redis-ca <file>', 'with --queue rediss://: the CA of the Redis server (PEM)')
    .option('--json', 'no progress; the results as one JSON document');
  addDataFlags(cmd).action(async (flags: StudyFlags) => {
    const render = createRenderer({ json: flags.json === true });
    const { resolveStudyConfig } = await import('../study/config.js');
    const { estimateStudyTime, resumeStudy, runStudy, studyJobs } = await import('../study/runner.js');
    if (flags.resume !== undefined && (flags.data !== undefined || flags.config !== undefined))
      throw new ConfigError('give either --resume or a new study (--data/--config), not both', {
        field: '--resume',
      });
    const config =
      flags.resume === undefined ? resolveStudyConfig(await studyInputFromFlags(flags)) : undefined;
    if (flags.dryRun) {
      const jobs = config ? studyJobs(config) : [];
      const estimate = config ? await estimateStudyTime(config) : null;
      process.stdout.write(
        `${JSON.stringify(config ? { config, jobs: jobs.map((j) => j.id), estimate } : { resume: flags.resume }, null, 2)}\n`,
      );
      if (estimate && !flags.json)
        process.stderr.write(
          `${estimate.jobs} jobs, ${estimate.generatorModels} generator model(s) in ${estimate.generatorInstances} instance(s); expected about ${formatSeconds(estimate.minutes.total * 60)} on ${estimate.cores} cores (generators ${formatSeconds(estimate.minutes.generators * 60)}, pools ${formatSeconds(estimate.minutes.pools * 60)}, evaluation ${formatSeconds(estimate.minutes.evaluation * 60)}, classifiers ${formatSeconds(estimate.minutes.classifiers * 60)}; ${estimate.basis})\n`,
        );
      return;
    }
    const { selectBackend } = await import('../runtime/backend.js');
    const backend = await selectBackend();
    if (!flags.json)
      process.stderr.write(`backend: ${backend.backend} (${backend.reason}), ${backend.threads} threads\n`);
    const interrupt = abortOnSigint(
      'stopping after the current job (finished jobs are saved; resume with --resume; Ctrl-C again to quit now)',
      render.clear,
    );
    let result;
    try {
      const queue =
        flags.queue !== undefined
          ? { url: flags.queue, artifacts: flags.artifacts, ca: flags.redisCa }
          : undefined;
      // A bad URL or CA file is refused now, not after the real images are loaded.
      if (queue) {
        (await import('../queue/connection.js')).redisOptions(queue.url, { ca: queue.ca });
        if (queue.artifacts !== undefined)
          (await import('../queue/artifacts.js')).parseArtifactLocation(queue.artifacts);
      }
      if (queue === undefined && (flags.artifacts !== undefined || flags.redisCa !== undefined))
        throw new ConfigError('--artifacts and --redis-ca go with --queue', {
          field: flags.artifacts !== undefined ? '--artifacts' : '--redis-ca',
        });
      const control = {
        onProgress: render.onProgress,
        signal: interrupt.signal,
        cacheDir: flags.cacheDir,
        queue,
      };
      result =
        flags.resume !== undefined
          ? await resumeStudy(flags.resume, control)
          : await runStudy(config!, { ...control, outDir: flags.out, name: flags.name });
    } finally {
      interrupt.release();
    }
    // The report is a view of results.json: a failure to draw it must not fail the finished study.
    let report: string | null = null;
    try {
      const { writeReport } = await import('../report/index.js');
      report = await writeReport(result.dir);
    } catch (e) {
      render.onProgress({ type: 'warning', message: `report not written: ${(e as Error).message}` });
    }
    render.clear();
    if (result.summary.failures.length > 0) process.exitCode = 1;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ dir: result.dir, report, ...result.summary }, null, 2)}\n`);
      return;
    }
    process.stdout.write(
      `${formatStudy(result.summary, result.dir, result.seconds, result.ran, result.jobs)}\n` +
        (report ? `report: ${report}\n` : ''),
    );
  });
}
