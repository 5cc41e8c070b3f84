/** `medsynth data …`: look at a dataset before using it. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { encodePng } from '../data/image/grid.js';
import {
  classGrid,
  type DatasetSummary,
  inspectDataset,
  type SplitSummary,
  summarizeSplit,
} from '../data/inspect.js';
import { ConfigError } from '../runtime/errors.js';
import { openDataset } from '../data/source.js';
import { writeFileAtomic } from '../runtime/fs.js';
import { addDataFlags, type DataFlags, dataOptionsFromFlags, parseInteger } from './data-flags.js';
import { createRenderer, formatTable } from './render.js';

interface InspectFlags extends DataFlags {
  json?: boolean;
  grid?: string;
  overwrite?: boolean;
  gridPerClass: number;
  gridSize: number;
  maxImages?: number;
  fraction?: number;
  sites?: number;
  alpha?: number;
}

function parseFraction(v: string): number {
  const f = Number(v);
  if (!(f > 0 && f <= 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1], got "${v}"`);
  return f;
}

function parsePositiveNumber(v: string): number {
  const x = Number(v);
  if (!(x > 0) || !Number.isFinite(x))
    throw new InvalidArgumentError(`expected a positive number, got "${v}"`);
  return x;
}

function positive(name: string) {
  const int = parseInteger(name);
  return (v: string) => {
    const n = int(v);
    if (n < 1) throw new InvalidArgumentError(`${name} must be ≥ 1`);
    return n;
  };
}

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('inspect datasets (MedMNIST npz, image folders, DICOM)');
  addDataFlags(
    data
      .command('inspect')
      .description(
        'per split × class counts, image size, channels, value range, label source, class imbalance',
      )
      .argument(
        '<source>',
        'an .npz file, medmnist:<name>[@size], a folder of PNG/JPEG or DICOM, or a .dcm file',
      )
      .option('--json', 'print one JSON object instead of tables')
      .option('--grid <file.png>', 'also write a PNG grid of samples, one row per class (train split)')
      .option('--grid-per-class <n>', 'images per class in the grid', positive('--grid-per-class'), 8)
      .option('--overwrite', 'replace an existing --grid file')
      .option('--grid-size <px>', 'grid cell size', positive('--grid-size'), 64)
      .option(
        '--max-images <n>',
        'decode at most n images for the image statistics',
        positive('--max-images'),
      )
      .option(
        '--fraction <f>',
        'also show the limited-data subset of train (e.g. 0.1), every class kept',
        parseFraction,
      )
      .option('--sites <n>', 'also show train partitioned into n institutions', positive('--sites'))
      .option(
        '--alpha <a>',
        'with --sites: non-IID, per-class Dirichlet(α) shares (omit for IID)',
        parsePositiveNumber,
      ),
  ).action(async (source: string, flags: InspectFlags) => {
    const render = createRenderer({ json: flags.json === true });
    const gridFile = flags.grid === undefined ? undefined : resolve(flags.grid);
    if (gridFile !== undefined && flags.overwrite !== true && existsSync(gridFile)) {
      throw new ConfigError('the grid file exists; pass --overwrite to replace it', {
        field: '--grid',
        file: gridFile,
      });
    }
    const ds = await openDataset(dataOptionsFromFlags(source, flags), { onProgress: render.onProgress });
    if (flags.alpha !== undefined && flags.sites === undefined) {
      throw new ConfigError('--alpha needs --sites', { field: '--alpha' });
    }
    const subsets: SplitSummary[] = [];
    if (flags.fraction !== undefined || flags.sites !== undefined) {
      const train = ds.split('train');
      if (flags.fraction !== undefined)
        subsets.push(summarizeSplit(train.fraction(flags.fraction, flags.seed)));
      if (flags.sites !== undefined) {
        if (flags.sites > train.size) {
          throw new ConfigError('more sites than train images: every site needs at least one image', {
            field: '--sites',
            expected: `at most ${train.size} (the train split's images)`,
            found: String(flags.sites),
          });
        }
        const sites = train.sites(flags.sites, { seed: flags.seed, alpha: flags.alpha });
        subsets.push(...sites.map(summarizeSplit));
      }
    }
    // Subsets first: a bad --fraction/--sites fails before every image is decoded.
    const inspected = await inspectDataset(ds, { maxImages: flags.maxImages, onProgress: render.onProgress });
    const summary = subsets.length > 0 ? { ...inspected, subsets } : inspected;
    if (gridFile !== undefined) {
      const split = ds.splits()[0]!;
      const grid = await classGrid(split, {
        perClass: flags.gridPerClass,
        cellSize: flags.gridSize,
        seed: flags.seed,
      });
      await writeFileAtomic(gridFile, await encodePng(grid), 'writing the sample grid');
    }
    render.clear();
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ source, ...summary, ...(gridFile ? { grid: gridFile } : {}) }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(`${formatSummary(source, summary)}\n`);
      if (gridFile)
        process.stdout.write(`grid        ${gridFile} (rows: ${summary.classNames.join(', ')})\n`);
    }
  });
}

export function formatSummary(source: string, s: DatasetSummary & { subsets?: SplitSummary[] }): string {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(11)} ${v}`);
  kv('source', `${source} (${s.format})`);
  kv('labels', s.labelSource);
  kv('splits', s.splitSource);
  const quote = s.classNames.some((n) => /[,\s]/.test(n));
  kv(
    'classes',
    `${s.classNames.length}: ${s.classNames.map((n) => (quote ? JSON.stringify(n) : n)).join(', ')}`,
  );
  lines.push('');
  const totals = s.classNames.map((_, c) => s.splits.reduce((a, sp) => a + (sp.classCounts[c] ?? 0), 0));
  const hasGroups = s.splits.some((sp) => sp.groups !== undefined);
  lines.push(
    formatTable(
      ['split', ...s.classNames, 'total', ...(hasGroups ? ['groups'] : [])],
      [
        ...s.splits.map((sp) => [
          sp.name,
          ...sp.classCounts,
          sp.count,
          ...(hasGroups ? [sp.groups ?? 0] : []),
        ]),
        ['all', ...totals, s.total, ...(hasGroups ? [''] : [])],
      ],
    ),
  );
  if (s.subsets && s.subsets.length > 0) {
    lines.push('');
    lines.push(
      formatTable(
        ['subset of train', ...s.classNames, 'total'],
        s.subsets.map((sp) => [sp.name, ...sp.classCounts, sp.count]),
      ),
    );
  }
  lines.push('');
  const sizes = s.image.sizes
    .slice(0, 3)
    .map((z) => `${z.height}×${z.width} (${z.count})`)
    .join(', ');
  const more = s.image.sizes.length > 3 ? ` and ${s.image.sizes.length - 3} more sizes` : '';
  const ch = Object.entries(s.image.channels)
    .map(([k, v]) => `${k} ch (${v})`)
    .join(', ');
  const bits = Object.entries(s.image.bitDepths)
    .map(([k, v]) => `${k}-bit (${v})`)
    .join(', ');
  kv('images', `${sizes}${more}`);
  kv(
    'pixels',
    `${ch} · ${bits} · values ${s.image.valueRange.min}–${s.image.valueRange.max} (${s.image.scanned} scanned)`,
  );
  kv('imbalance', `${s.imbalanceRatio.toFixed(2)} (largest / smallest class, train)`);
  if (s.groupsAcrossSplits !== undefined)
    kv('groups', `${s.groupsAcrossSplits} groups in more than one split`);
  for (const n of s.notes) kv('note', n);
  return lines.join('\n');
}
