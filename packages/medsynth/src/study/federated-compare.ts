/**
 * Centralised against decentralised training of one generator, as the dermatology study compared them:
 * the same model and options trained (1) centrally on the whole train split, (2) federated across `sites`
 * IID partitions and (3) across non-IID (Dirichlet α) partitions — every one for the **same number of real
 * images seen** (rounds × local steps × site batch × D steps × sites) — then judged side by side by one study:
 * FID, KID, precision / recall / coverage, class fidelity, and the accuracy of a CNN trained on the synthetic
 * images only (against real-only), plus wall time and, for the federated runs, bytes and overhead per round.
 *
 * The site batch: `split` (default) gives each site ⌊batch / sites⌋ images per step, so one round of the
 * federation draws as many images per local step as one central step, and the global model gets as many
 * updates as the central run (rounds × local steps = central steps). `same` keeps the full batch at every
 * site: the federation then makes `sites` times fewer updates for the same images (measured on
 * PneumoniaMNIST-28: that, not the averaging, was most of its gap to central).
 *
 * Layout: `<out>/NNNNN-compare-federated-…/{runs/, study/, compare.json, compare.md}`. The study is an
 * ordinary study directory (report, results.csv), so everything can be looked at the usual way.
 */
import { join } from 'node:path';
import type { TrainOptions } from '../config/train-options.js';
import { readRounds, type RoundRecord } from '../federated/coordinator.js';
import type { FederationOptions } from '../federated/options.js';
import { simulate } from '../federated/simulate.js';
import { ConfigError } from '../runtime/errors.js';
import { writeFileAtomic } from '../runtime/fs.js';
import type { RunControl } from '../runtime/progress.js';
import { trainGan } from '../training/loop.js';
import { createRunDir, dataName } from '../training/run-dir.js';
import { resolveStudyConfig, type StudyConfigInput } from './config.js';
import { runStudy } from './runner.js';
import type { Interval } from './summary.js';

export interface FederatedCompareSetup {
  /** The model and its options; `data` is the dataset. */
  readonly train: TrainOptions;
  readonly federation: FederationOptions;
  readonly sites: number;
  /** Dirichlet α of the non-IID partition. */
  readonly alpha: number;
  /** Each site's batch: ⌊batch / sites⌋ (`split`, default) or the full batch (`same`). */
  readonly siteBatch?: 'split' | 'same' | undefined;
  readonly outDir: string;
  /** Seeds of the synthetic-only classifiers (default 0, 1, 2). */
  readonly seeds?: readonly number[] | undefined;
  /** Study settings over the comparison's own (smaller evaluations and classifiers for smoke runs). */
  readonly study?: Partial<Pick<StudyConfigInput, 'evaluate' | 'classifiers' | 'maxImages'>> | undefined;
}

export interface ComparedRun {
  readonly name: 'central' | 'federated-iid' | 'federated-noniid';
  readonly runDir: string;
  readonly kimg: number;
  readonly wallSeconds: number;
  /** Federated runs: mean bytes per round (both directions) and mean overhead share of a round. */
  readonly bytesPerRound: number | null;
  readonly overheadShare: number | null;
  readonly fid: number | null;
  readonly kid: number | null;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly coverage: number | null;
  readonly classFidelity: number | null;
  /** Synthetic-only CNN accuracy (mean and interval over seeds). */
  readonly syntheticAccuracy: Interval | null;
}

export interface FederatedComparison {
  readonly dir: string;
  readonly studyDir: string;
  readonly imagesSeen: number;
  readonly sites: number;
  /** Images per step of the central run, and at each site of the federated runs. */
  readonly batchSize: number;
  readonly siteBatchSize: number;
  readonly realAccuracy: Interval | null;
  readonly runs: readonly ComparedRun[];
  /** Plain sentences: IID and non-IID against central. */
  readonly verdicts: readonly string[];
}

async function roundStats(runDir: string): Promise<{ bytes: number; overhead: number }> {
  const rounds = await readRounds(runDir);
  const mean = (f: (r: RoundRecord) => number) => rounds.reduce((s, r) => s + f(r), 0) / rounds.length;
  return {
    bytes: mean((r) => r.bytes.sent + r.bytes.received),
    overhead: mean((r) => (r.seconds.round > 0 ? r.seconds.overhead / r.seconds.round : 0)),
  };
}

const pct = (a: number, b: number) => `${a >= b ? '+' : ''}${((100 * (a - b)) / b).toFixed(1)} %`;

export async function compareFederated(
  setup: FederatedCompareSetup,
  control: RunControl = {},
): Promise<FederatedComparison> {
  const { train, federation, sites } = setup;
  const dir = await createRunDir(
    setup.outDir,
    `compare-federated-${train.model}-${dataName(train.data.source)}-${train.size}`,
  );
  const runsDir = join(dir, 'runs');
  const siteBatchSize = setup.siteBatch === 'same' ? train.batchSize : Math.floor(train.batchSize / sites);
  if (siteBatchSize < 1)
    throw new ConfigError(`a batch of ${train.batchSize} cannot be split among ${sites} sites`, {
      field: 'batchSize',
      expected: `≥ ${sites}`,
      found: String(train.batchSize),
    });
  const imagesSeen = federation.rounds * federation.localSteps * siteBatchSize * train.dSteps * sites;
  const siteTrain: TrainOptions = { ...train, batchSize: siteBatchSize, kimg: imagesSeen / 1000 };
  const emit = control.onProgress;
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const r = await f();
    return [r, (performance.now() - t0) / 1000];
  };

  emit?.({
    type: 'phase',
    phase: 'compare',
    detail: `central training, ${(imagesSeen / 1000).toFixed(1)} kimg`,
  });
  const [central, centralSeconds] = await timed(() =>
    trainGan(
      { ...train, kimg: imagesSeen / 1000, minutes: undefined, outDir: runsDir, name: 'central' },
      control,
    ),
  );
  const federated: {
    name: 'federated-iid' | 'federated-noniid';
    runDir: string;
    seconds: number;
    kimg: number;
  }[] = [];
  for (const [name, alpha] of [
    ['federated-iid', undefined],
    ['federated-noniid', setup.alpha],
  ] as const) {
    emit?.({
      type: 'phase',
      phase: 'compare',
      detail: `${name}: ${sites} sites${alpha ? `, α = ${alpha}` : ''}`,
    });
    const [r, seconds] = await timed(() =>
      simulate({ train: { ...siteTrain, name }, federation, sites, alpha, outDir: runsDir }, control),
    );
    federated.push({ name, runDir: r.runDir, seconds, kimg: r.kimg });
  }

  emit?.({ type: 'phase', phase: 'compare', detail: 'judging the three generators (study)' });
  const config = resolveStudyConfig({
    preset: 'quick',
    data: train.data,
    size: train.size,
    generators: [
      { name: 'central', run: central.runDir },
      ...federated.map((f) => ({ name: f.name, run: f.runDir })),
    ],
    conditions: ['real', 'synthetic'],
    classifiers: [{ name: 'cnn', base: 'cnn', options: { epochs: 8, patience: 3 } }],
    seeds: [...(setup.seeds ?? [0, 1, 2])],
    ...setup.study,
  });
  const study = await runStudy(config, { outDir: dir, name: 'study', ...control });
  const { summary } = study;
  const cell = (generator: string | null, condition: string) =>
    summary.cells.find(
      (c) => c.generator === generator && c.condition === condition && c.classifier === 'cnn',
    );
  const realAccuracy = cell(null, 'real')?.metrics.accuracy ?? null;
  const runs: ComparedRun[] = [];
  const described = [
    { name: 'central' as const, runDir: central.runDir, seconds: centralSeconds, kimg: central.kimg },
    ...federated,
  ];
  for (const r of described) {
    const quality = summary.instances.find((i) => i.generator === r.name)?.quality ?? null;
    const rounds = r.name === 'central' ? null : await roundStats(r.runDir);
    runs.push({
      name: r.name,
      runDir: r.runDir,
      kimg: r.kimg,
      wallSeconds: r.seconds,
      bytesPerRound: rounds?.bytes ?? null,
      overheadShare: rounds?.overhead ?? null,
      fid: quality?.fid ?? null,
      kid: quality?.kid ?? null,
      precision: quality?.precision ?? null,
      recall: quality?.recall ?? null,
      coverage: quality?.coverage ?? null,
      classFidelity: quality?.classFidelity ?? null,
      syntheticAccuracy: cell(r.name, 'synthetic')?.metrics.accuracy ?? null,
    });
  }
  const c = runs[0]!;
  const verdicts = runs.slice(1).map((f) => {
    const parts: string[] = [];
    if (f.fid !== null && c.fid !== null)
      parts.push(`FID ${f.fid.toFixed(3)} vs ${c.fid.toFixed(3)} central (${pct(f.fid, c.fid)})`);
    if (f.syntheticAccuracy && c.syntheticAccuracy)
      parts.push(
        `synthetic-only CNN accuracy ${(100 * f.syntheticAccuracy.mean).toFixed(1)} % vs ${(100 * c.syntheticAccuracy.mean).toFixed(1)} % (${(100 * (f.syntheticAccuracy.mean - c.syntheticAccuracy.mean)).toFixed(1)} points)`,
      );
    if (f.recall !== null && c.recall !== null)
      parts.push(`recall ${f.recall.toFixed(2)} vs ${c.recall.toFixed(2)}`);
    return `${f.name}: ${parts.join('; ')}`;
  });
  const result: FederatedComparison = {
    dir,
    studyDir: study.dir,
    imagesSeen,
    sites,
    batchSize: train.batchSize,
    siteBatchSize,
    realAccuracy,
    runs,
    verdicts,
  };
  await writeFileAtomic(join(dir, 'compare.json'), `${JSON.stringify(result, null, 2)}\n`);
  await writeFileAtomic(join(dir, 'compare.md'), compareMarkdown(result));
  emit?.({ type: 'done', phase: 'compare', seconds: runs.reduce((s, r) => s + r.wallSeconds, 0) });
  return result;
}

const num = (v: number | null, digits: number) => (v === null ? '–' : v.toFixed(digits));
const acc = (i: Interval | null) =>
  i === null
    ? '–'
    : `${(100 * i.mean).toFixed(1)} [${(100 * i.ci[0]).toFixed(1)}, ${(100 * i.ci[1]).toFixed(1)}]`;

/** The comparison as a Markdown table (also what the CLI prints). */
export function compareMarkdown(r: FederatedComparison): string {
  const rows = r.runs.map(
    (x) =>
      `| ${x.name} | ${x.kimg.toFixed(1)} | ${x.wallSeconds.toFixed(0)} | ${x.bytesPerRound === null ? '–' : (x.bytesPerRound / 2 ** 20).toFixed(2)} | ${x.overheadShare === null ? '–' : (100 * x.overheadShare).toFixed(1)} | ${num(x.fid, 3)} | ${num(x.kid, 4)} | ${num(x.precision, 2)} | ${num(x.recall, 2)} | ${num(x.coverage, 2)} | ${num(x.classFidelity, 3)} | ${acc(x.syntheticAccuracy)} |`,
  );
  return [
    `# Central vs federated training (${(r.imagesSeen / 1000).toFixed(1)} kimg each)`,
    '',
    `Batch: ${r.batchSize} images per central step, ${r.siteBatchSize} per step at each of the ${r.sites} sites.`,
    '',
    '| training | kimg | wall s | MiB / round | overhead % | FID | KID | precision | recall | coverage | class fidelity | synthetic-only CNN acc % [CI] |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Real-only CNN accuracy: ${acc(r.realAccuracy)} %.`,
    '',
    ...r.verdicts.map((v) => `- ${v}`),
    '',
    `Study: ${r.studyDir}`,
    '',
  ].join('\n');
}
