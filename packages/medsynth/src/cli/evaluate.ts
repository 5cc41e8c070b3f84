/**
 * `medsynth evaluate`: fidelity, diversity and privacy of synthetic images against a real dataset — a table
 * on stdout (or one JSON document with `--json`), and with `--out` a folder with everything (evaluation.json,
 * metrics.jsonl, grids, closest-pair pictures, the embedding map).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { SourceEvaluation } from '../metrics/sources.js';
import {
  DEFAULT_METRIC_NAMES,
  METRIC_NAMES,
  type MetricName,
  type MetricRecord,
} from '../metrics/registry.js';
import { MedsynthError } from '../runtime/errors.js';
import { addDataFlags, type DataFlags, dataOptionsFromFlags, parseInteger } from './data-flags.js';
import { createRenderer, formatSeconds, formatStat, formatTable } from './render.js';
import { addSamplerFlags, samplerSettingsFromFlags } from './sampler-flags.js';

interface EvaluateFlags extends DataFlags {
  real?: string;
  fake: string;
  metrics: MetricName[];
  extractor: string;
  realSplit: 'train' | 'val' | 'test';
  holdoutSplit: 'train' | 'val' | 'test' | 'none';
  size?: number;
  channels?: '1' | '3' | 'auto';
  count?: number;
  checkpoint?: string;
  truncation?: number;
  sampleSteps?: string;
  eta?: string;
  guidance?: string;
  unlabelledFake?: boolean;
  k: number;
  kidSubsets: number;
  kidSubsetSize: number;
  bootstrap: number;
  msssimPairs: number;
  embeddingCap: number;
  evalSeed: number;
  extractorEpochs?: number;
  extractorWidth?: number;
  extractorSeed?: number;
  baselines: boolean;
  projectionCount?: number;
  projectionSteps?: number;
  out?: string;
  json?: boolean;
}

export interface EvaluateCommandDeps {
  readonly selectBackend?: () => Promise<unknown>;
  readonly stdout?: { write(text: string): unknown };
}

function parseMetrics(v: string): MetricName[] {
  const names = v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  const bad = names.filter((n) => !(METRIC_NAMES as readonly string[]).includes(n));
  if (bad.length > 0 || names.length === 0)
    throw new InvalidArgumentError(
      `unknown metric "${bad.join(', ')}": choose from ${METRIC_NAMES.join(', ')}`,
    );
  return [...new Set(names)] as MetricName[];
}

function positive(name: string) {
  const int = parseInteger(name);
  return (v: string): number => {
    const n = int(v);
    if (n < 1) throw new InvalidArgumentError(`${name} must be at least 1, got ${n}`);
    return n;
  };
}

function parseTruncation(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`--truncation must be in (0, 1], got "${v}"`);
  return n;
}

export function registerEvaluateCommand(program: Command, deps: EvaluateCommandDeps = {}): void {
  const cmd = program
    .command('evaluate')
    .description(
      'fidelity (FID, KID, precision/recall/density/coverage), diversity (MS-SSIM), privacy (nearest-training-image distances) and an embedding map (PCA/UMAP) of synthetic images against real ones',
    )
    .option(
      '--real <source>',
      'the real dataset (file, folder, medmnist:<name>); default: a run’s own training data',
    )
    .requiredOption(
      '--fake <run|set>',
      'a training run directory (images are generated) or a synthetic set / dataset',
    )
    .option(
      `--metrics <list>`,
      `comma-separated: ${METRIC_NAMES.join(',')} (default: all but projection, which is slow)`,
      parseMetrics,
      [...DEFAULT_METRIC_NAMES],
    )
    .option(
      '--extractor <domain|inception:path>',
      'feature space: domain (a CNN trained on the real train split; default) or inception:<TF.js model folder>',
      'domain',
    )
    .addOption(
      new Option('--real-split <split>', 'real reference split')
        .choices(['train', 'val', 'test'])
        .default('train'),
    )
    .addOption(
      new Option('--holdout-split <split>', 'held-out real split (privacy reference and floor), or none')
        .choices(['train', 'val', 'test', 'none'])
        .default('test'),
    )
    .option('--size <px>', 'compare at this size (default: the synthetic images’ size)', positive('--size'))
    .addOption(
      new Option(
        '--channels <n>',
        'compare at 1 or 3 channels, or auto (default: a run’s own channels; for a set, 1 for grey content, 3 when any image has colour)',
      ).choices(['1', '3', 'auto']),
    )
    .option(
      '--count <n>',
      'images to generate from a run (default: the held-out split’s size, same class mix)',
      positive('--count'),
    )
    .option('--checkpoint <name>', 'run checkpoint to sample (default: the latest)')
    .option('--truncation <ψ>', 'truncation ψ in (0, 1] for images generated from a run', parseTruncation)
    .option('--unlabelled-fake', 'ignore the synthetic images’ classes (overall metrics only)')
    .option('--k <n>', 'k of the k-NN balls (PRDC)', positive('--k'), 5)
    .option('--kid-subsets <n>', 'KID random subsets', positive('--kid-subsets'), 100)
    .option(
      '--kid-subset-size <n>',
      'KID subset size (capped at the smaller set)',
      positive('--kid-subset-size'),
      1000,
    )
    .option('--bootstrap <n>', 'bootstrap replicates of FID (0: none)', parseInteger('--bootstrap'), 10)
    .option('--msssim-pairs <n>', 'MS-SSIM pairs per class', positive('--msssim-pairs'), 200)
    .option(
      '--embedding-cap <n>',
      'embedding map (PCA/UMAP): most images per set (train, test, synthetic), drawn per class',
      positive('--embedding-cap'),
      500,
    )
    .option(
      '--eval-seed <n>',
      'seed of subsets, bootstrap, pairs and the noise baseline',
      parseInteger('--eval-seed'),
      0,
    )
    .option(
      '--extractor-epochs <n>',
      'domain extractor: most training epochs (default 15)',
      positive('--extractor-epochs'),
    )
    .option(
      '--extractor-width <n>',
      'domain extractor: channels of the first conv block (default 32)',
      positive('--extractor-width'),
    )
    .option(
      '--extractor-seed <n>',
      'domain extractor: training seed (default 0)',
      parseInteger('--extractor-seed'),
    )
    .option(
      '--projection-count <n>',
      'projection metric: real images per split (train, held-out) and synthetic images projected (default 200)',
      positive('--projection-count'),
    )
    .option(
      '--projection-steps <n>',
      'projection metric: Adam steps per image (default 200)',
      positive('--projection-steps'),
    )
    .option('--no-baselines', 'skip the floor (held-out real) and noise comparisons')
    .option('--out <dir>', 'write evaluation.json, metrics.jsonl, embedding.json and pictures here')
    .option('--json', 'print one JSON document on stdout');
  addSamplerFlags(cmd);
  addDataFlags(cmd).action(async (flags: EvaluateFlags) => {
    const json = flags.json === true;
    const render = createRenderer({ json });
    if (flags.bootstrap < 0) throw new InvalidArgumentError('--bootstrap must be ≥ 0');
    const select =
      deps.selectBackend ?? (async () => (await import('../runtime/backend.js')).selectBackend());
    await select();
    const { evaluateSources } = await import('../metrics/sources.js');
    const { writeEvaluation, evaluationJson } = await import('../metrics/write-evaluation.js');
    const controller = new AbortController();
    const onSigint = () => controller.abort(new MedsynthError('interrupted: nothing was written'));
    process.once('SIGINT', onSigint);
    let ev: SourceEvaluation;
    try {
      ev = await evaluateSources({
        real: flags.real === undefined ? undefined : dataOptionsFromFlags(flags.real, flags),
        fake: flags.fake,
        realSplit: flags.realSplit,
        holdoutSplit: flags.holdoutSplit,
        size: flags.size,
        channels:
          flags.channels === undefined || flags.channels === 'auto'
            ? flags.channels
            : (Number(flags.channels) as 1 | 3),
        fakeCount: flags.count,
        checkpoint: flags.checkpoint,
        truncation: flags.truncation,
        sampling: samplerSettingsFromFlags(flags),
        unlabelledFake: flags.unlabelledFake === true,
        extractor: flags.extractor,
        domain: {
          ...(flags.extractorEpochs !== undefined ? { epochs: flags.extractorEpochs } : {}),
          ...(flags.extractorWidth !== undefined ? { width: flags.extractorWidth } : {}),
          ...(flags.extractorSeed !== undefined ? { seed: flags.extractorSeed } : {}),
        },
        cacheDir: flags.cacheDir,
        metrics: flags.metrics,
        baselines: flags.baselines,
        seed: flags.evalSeed,
        k: flags.k,
        kidSubsets: flags.kidSubsets,
        kidSubsetSize: flags.kidSubsetSize,
        bootstrap: flags.bootstrap,
        msssimPairs: flags.msssimPairs,
        embeddingCap: flags.embeddingCap,
        projection: {
          ...(flags.projectionCount !== undefined ? { count: flags.projectionCount } : {}),
          ...(flags.projectionSteps !== undefined ? { steps: flags.projectionSteps } : {}),
        },
        onProgress: render.onProgress,
        signal: controller.signal,
      });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    const written = flags.out === undefined ? null : await writeEvaluation(flags.out, ev);
    render.clear();
    const stdout = deps.stdout ?? process.stdout;
    if (json) stdout.write(`${JSON.stringify({ ...evaluationJson(ev), out: written?.dir ?? null })}\n`);
    else stdout.write(`${formatEvaluation(ev, written?.dir ?? null)}\n`);
  });
}

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : formatStat(v));

/** Columns of the table per metric, for the "not computed" footnote. */
const TABLE_METRICS: readonly MetricName[] = ['fid', 'kid', 'prdc', 'msssim'];

/**
 * Why table cells show `–`: metrics not asked for (`--metrics`), FID without a bootstrap spread, and
 * metrics a class of a comparison is too small for (the record's note, e.g. PRDC's k-NN balls need more
 * than k images of the class in both sets), one line per comparison, class and reason.
 */
function notComputed(ev: SourceEvaluation, classes: readonly (string | null)[]): string[] {
  const { records, settings } = ev.result;
  const out: string[] = [];
  const present = new Set(records.map((r) => r.metric));
  const absent = TABLE_METRICS.filter((m) => !present.has(m));
  if (absent.length > 0) out.push(`${absent.join(', ')}: not requested (--metrics)`);
  if (present.has('fid') && settings.bootstrap === 0)
    out.push('± (FID spread): no bootstrap (--bootstrap 0)');
  const label = (m: MetricName) => (m === 'prdc' ? `prdc (k = ${settings.k})` : m);
  const byReason = new Map<string, MetricName[]>();
  for (const r of records) {
    if (r.note === undefined || !TABLE_METRICS.includes(r.metric) || !classes.includes(r.class)) continue;
    const key = `${r.comparison} ${r.class ?? 'all'}\u0000${r.note}`;
    byReason.set(key, [...(byReason.get(key) ?? []), r.metric]);
  }
  for (const [key, metrics] of byReason) {
    const [where, note] = key.split('\u0000') as [string, string];
    out.push(`${where} ${metrics.map(label).join(', ')}: ${note}`);
  }
  return out;
}

/** The terminal report: sources, extractor, one table row per comparison and class, privacy, warnings. */
export function formatEvaluation(ev: SourceEvaluation, out: string | null): string {
  const { result } = ev;
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(10)} ${v}`);
  kv('real', `${ev.real.source} (${ev.real.split}: ${ev.real.count} images; ${ev.classNames.join(', ')})`);
  if (ev.holdout) kv('held-out', `${ev.holdout.split}: ${ev.holdout.count} images`);
  kv('synthetic', `${ev.fake.count} images — ${ev.fake.detail}`);
  kv('shape', ev.shape.join('×'));
  kv('features', `${ev.extractor.kind} (${ev.extractor.dim} dims): ${ev.extractor.description}`);
  lines.push('');
  const byKey = new Map<string, MetricRecord>();
  for (const r of result.records) byKey.set(`${r.metric}|${r.comparison}|${r.class ?? ''}`, r);
  const get = (m: string, c: string, cls: string | null, v: string) =>
    byKey.get(`${m}|${c}|${cls ?? ''}`)?.values[v];
  const header = [
    'set',
    'class',
    'N',
    'FID',
    '±',
    'KID',
    'prec',
    'recall',
    'density',
    'coverage',
    'MS-SSIM',
    'real MS-SSIM',
  ];
  const rows: string[][] = [];
  const classes: (string | null)[] = [null, ...(ev.classNames.length > 1 ? ev.classNames : [])];
  for (const c of result.comparisons) {
    for (const cls of classes) {
      const any = result.records.find(
        (r) =>
          r.comparison === c &&
          r.class === cls &&
          r.metric !== 'privacy' &&
          r.metric !== 'embedding' &&
          r.metric !== 'projection',
      );
      if (!any) continue;
      rows.push([
        c,
        cls ?? 'all',
        String(any.nCompared),
        fmt(get('fid', c, cls, 'fid')),
        fmt(get('fid', c, cls, 'fidStd')),
        fmt(get('kid', c, cls, 'kid')),
        fmt(get('prdc', c, cls, 'precision')),
        fmt(get('prdc', c, cls, 'recall')),
        fmt(get('prdc', c, cls, 'density')),
        fmt(get('prdc', c, cls, 'coverage')),
        fmt(get('msssim', c, cls, 'msssim')),
        fmt(get('msssim', c, cls, 'msssimReal')),
      ]);
    }
  }
  lines.push(formatTable(header, rows));
  const why = notComputed(ev, classes);
  if (why.length > 0) lines.push('– = not computed:', ...why.map((w) => `  ${w}`));
  lines.push('');
  lines.push(
    'floor = held-out real images vs the real reference (what a perfect generator scores); noise = uniform noise.',
  );
  lines.push(
    'FID/KID: lower is better; precision/density: fidelity; recall/coverage: diversity; MS-SSIM: lower is more varied.',
  );
  for (const r of result.records.filter((x) => x.metric === 'privacy')) {
    const d = r.details as { space: string; threshold: number };
    lines.push(
      `privacy (${d.space}): median distance to nearest training image ${fmt(r.values.medianFakeToTrain)} synthetic vs ${fmt(
        r.values.medianHoldoutToTrain,
      )} held-out (ratio ${fmt(r.values.medianRatio)}); ${fmt(
        (r.values.closerThanHoldoutP5 ?? 0) * 100,
      )} % of synthetic images are closer than 5 % of held-out ones (${fmt(d.threshold)})`,
    );
  }
  const map = result.embedding;
  if (map) {
    const [r1, r2] = map.pca.explainedVarianceRatio;
    lines.push(
      `embedding map: ${map.sets.map((s) => `${s.key} ${s.sampled}`).join(', ')} images; PCA axes explain ${fmt(100 * r1)} % + ${fmt(100 * r2)} % of the variance; ${
        map.umap
          ? `UMAP ${map.umap.nEpochs} epochs in ${formatSeconds(map.umap.seconds)}`
          : `no UMAP (${map.umapNote ?? ''})`
      }${out ? ' (embedding.json)' : ' (written with --out)'}`,
    );
  }
  for (const r of result.records.filter((x) => x.metric === 'projection')) {
    const verdict = (r.details as { verdict?: string } | undefined)?.verdict;
    lines.push(
      verdict === undefined
        ? `projection: not computed (${r.note ?? 'no result'})`
        : `projection: median pixel RMSE of the reconstructions ${fmt(r.values.medianTrain)} train vs ${fmt(
            r.values.medianHoldout,
          )} held-out vs ${fmt(r.values.medianSynthetic)} synthetic (floor); ${verdict}; ${fmt(
            r.values.secondsPerImage,
          )} s per image${out ? ' (projection.png)' : ''}`,
    );
  }
  for (const w of result.warnings) lines.push(`warning: ${w}`);
  lines.push(
    `time ${formatSeconds(ev.seconds)} (metrics ${formatSeconds(result.seconds)})${out ? `; written to ${out}` : ''}`,
  );
  return lines.join('\n');
}
