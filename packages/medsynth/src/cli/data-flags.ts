/** The data-source flags every command that reads a dataset shares, and their translation to options. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { DataOptionsInput } from '../config/data-options.js';

export function parseInteger(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${v}"`);
    return n;
  };
}

function parseRatios(v: string): { train: number; val: number; test: number } {
  const parts = v.split(',').map(Number);
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x) || x < 0)) {
    throw new InvalidArgumentError(`expected three non-negative numbers "train,val,test", got "${v}"`);
  }
  const [train, val, test] = parts as [number, number, number];
  return { train, val, test };
}

function parseWindow(v: string): 'auto' | 'minmax' | { center: number; width: number } {
  if (v === 'auto' || v === 'minmax') return v;
  const parts = v.split(',').map(Number);
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)) || !(parts[1]! > 0)) {
    throw new InvalidArgumentError(`expected auto, minmax or "center,width" (width > 0), got "${v}"`);
  }
  return { center: parts[0]!, width: parts[1]! };
}

export function addDataFlags(cmd: Command): Command {
  return cmd
    .option('--seed <n>', 'seed for the splits made by medsynth', parseInteger('--seed'), 0)
    .option(
      '--split-ratios <train,val,test>',
      'shares for splits the source does not give (missing val/test are carved from train)',
      parseRatios,
    )
    .option('--labels-csv <file>', 'CSV mapping files to labels (default: labels.csv in the folder, if any)')
    .option('--path-column <name>', 'CSV column with the file path')
    .option('--label-column <name>', 'CSV column with the label')
    .option('--split-column <name>', 'CSV column with train/val/test')
    .option(
      '--group-column <name>',
      'CSV column with a group id (patient, source tile) kept inside one split',
    )
    .option(
      '--label-from-filename <regex>',
      'a regex with one capture group; when a file name matches, the capture is its label (e.g. "_(bacteria|virus)_")',
    )
    .option(
      '--group-from-filename <regex>',
      'a regex with one capture group giving the group id (e.g. "^(person\\d+)_")',
    )
    .option('--dicom-window <auto|minmax|center,width>', 'DICOM windowing', parseWindow)
    .addOption(
      new Option('--dicom-bit-depth <bits>', 'DICOM output bit depth after windowing').choices(['8', '16']),
    )
    .option(
      '--allow-outside-root',
      'follow symbolic links and labels-CSV paths that lead outside the dataset folder (off: not followed / an error)',
    )
    .option('--cache-dir <dir>', 'download cache (default: $MEDSYNTH_CACHE or ~/.cache/medsynth)')
    .option('--medmnist-url <url>', 'base URL replacing the official MedMNIST record (a mirror)');
}

export interface DataFlags {
  seed: number;
  splitRatios?: { train: number; val: number; test: number };
  labelsCsv?: string;
  pathColumn?: string;
  labelColumn?: string;
  splitColumn?: string;
  groupColumn?: string;
  labelFromFilename?: string;
  groupFromFilename?: string;
  dicomWindow?: 'auto' | 'minmax' | { center: number; width: number };
  dicomBitDepth?: '8' | '16';
  cacheDir?: string;
  medmnistUrl?: string;
  allowOutsideRoot?: boolean;
}

export function dataOptionsFromFlags(source: string, f: DataFlags): DataOptionsInput {
  const o: Record<string, unknown> = { source, seed: f.seed };
  const copy = [
    'splitRatios',
    'labelsCsv',
    'pathColumn',
    'labelColumn',
    'splitColumn',
    'groupColumn',
    'labelFromFilename',
    'groupFromFilename',
    'dicomWindow',
    'cacheDir',
    'allowOutsideRoot',
  ] as const;
  for (const k of copy) if (f[k] !== undefined) o[k] = f[k];
  if (f.dicomBitDepth !== undefined) o.dicomBitDepth = Number(f.dicomBitDepth);
  if (f.medmnistUrl !== undefined) o.medmnistBaseUrl = f.medmnistUrl;
  return o as DataOptionsInput;
}
