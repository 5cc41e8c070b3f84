/**
 * Writing a synthetic set to disk so that the data loaders read it back (`openDataset({ source: out })`),
 * with a manifest of where every image came from.
 *
 * **Folder** (`out` not ending in `.npz`): the folder loader's `<root>/<class>/` layout —
 *   `<out>/<class name>/seed000123.png` (8-bit PNG, gray or RGB), plus `<out>/manifest.json` (the folder loader
 *   ignores non-image files). No `labels.csv` is written (the loader would take it as the source of truth) and
 *   no split folders: `openDataset` applies its own split policy to the set, `dataset.listing` has every image.
 *   The loader names classes after their folders and numbers them in sorted order (numerically when every name
 *   is an integer), so labels read back equal the generator's when its class names are in that order (true for
 *   runs trained on folders); otherwise map by class name (a warning says so).
 *   A class with no images in the plan gets no folder — an empty class folder is an error for the loader, and
 *   a missing one is a class the loader cannot know — so the loader lists fewer classes and later labels shift;
 *   `manifest.json` keeps every class name (`classNames`, index = the generator's label).
 *   Class names that cannot be folder names are made safe (`/` → `_`, a leading `.` → `_`…, with a warning);
 *   a class named like a split folder (`train`, `val`, `test`…) cannot be written as a folder: a `ConfigError`.
 *
 * **npz** (`out` ends in `.npz`): the MedMNIST layout the npz loader opens — `train_images` uint8 `[N, H, W]`
 *   (gray) or `[N, H, W, 3]`, `train_labels` `[N, 1]` (uint8, int32 beyond 256 classes) holding the generator's
 *   label indices, and empty `test_images`/`test_labels` (the loader requires them); the manifest is
 *   `<out>.manifest.json`. The npz loader names classes by label value (`"0"`, `"1"`…), or from the official
 *   table when the file name starts with a MedMNIST flag (`pneumoniamnist_synth.npz`). It refuses a file where
 *   a class below the largest label has no image, so such a plan is a `ConfigError` for npz output (use a folder).
 *
 * Atomicity: a folder set is written into a hidden sibling folder `.<out>.tmp-xxxxxxxx` and renamed into place
 * when complete (an existing set it replaces is first renamed to `.<out>.old-xxxxxxxx`, deleted last); an npz is
 * written to a hidden temporary file `.<name>.npz.tmp-xxxxxxxx` and renamed. An abort or error leaves the
 * previous output untouched. The hidden siblings start with `.`, which the folder loaders skip, and are never
 * inside `out`, so a loader never takes them for a class.
 *
 * Overwriting (all checked by `prepareOut`, before any image is generated): an existing file, a non-empty
 * folder, or an existing `--grid` file is replaced only with `overwrite`. A non-empty folder is replaced only
 * when it is a medsynth synthetic set, and `overwrite` deletes only what that set's `manifest.json` owns: the
 * manifest, the image files it lists (`images[].id`), the class folders that are then empty, and OS litter
 * (`.DS_Store`, `Thumbs.db`, `desktop.ini`, named in the warning). Any other file or folder in it (notes, images
 * the manifest does not list) is a `ConfigError` listing them: move them out or choose another folder. The
 * check is repeated just before the swap, in case something was added while the images were generated. What an
 * overwrite replaces is said in a `warning` event (and in the result's `warnings`): the folder set's image count
 * and creation time, or the .npz and its `.manifest.json`, or the grid file.
 *
 * Leftovers of a killed run (`kill -9`, power loss) are found and cleaned up by the next `prepareOut` for the
 * same `out`, each named in a `warning`:
 *   - a staging folder / npz temporary file is removed when it is stale: its owner record (`.medsynth-staging.json`
 *     inside the staging folder, `<temp>.owner.json` beside an npz temporary file: pid, hostname, startedAt)
 *     names a process of this host that no longer runs (`process.kill(pid, 0)` fails with `ESRCH`), or it has no
 *     readable owner record and was last modified over an hour ago. One whose process still runs (or whose pid
 *     another process now has), or that was made on another host, or that is ownerless but recent, is left
 *     alone (with a warning). The owner record is deleted just before the staging folder is renamed into place,
 *     so a finished set never holds it.
 *   - `.<out>.old-xxxxxxxx` (killed between the two renames of a swap): when `out` does not exist it is renamed
 *     back to `out` — the previous set is restored, never lost; when `out` exists it is deleted like an
 *     overwritten set (only what its manifest owns; anything else keeps it, with a warning).
 */
import { randomBytes } from 'node:crypto';
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { listSome } from '../data/files.js';
import { encodePng, tileImages } from '../data/image/grid.js';
import { normalizeSplitName } from '../data/labels-csv.js';
import { medmnistFlagFromFileName } from '../data/npz/load-npz.js';
import { medmnistInfo } from '../data/npz/medmnist-info.js';
import type { RawImage } from '../data/types.js';
import type { SamplingGenerator } from '../models/types.js';
import type { RunInfo } from '../training/load-run.js';
import { describeBackend } from '../runtime/backend.js';
import { ConfigError, DatasetError } from '../runtime/errors.js';
import { errnoCode, fileSystemError, processRuns, writeFileAtomic } from '../runtime/fs.js';
import type { ProgressCallback, RunControl } from '../runtime/progress.js';
import { NpzWriter, type NpyStream } from './npz-writer.js';
import { DEFAULT_SEEDS, formatSeeds, type GenerationPlan, type SeedList, takeSeeds } from './plan.js';
import {
  checkBatchSize,
  checkConditional,
  checkTruncation,
  type GeneratedBatch,
  generateImages,
} from './sample.js';

export const MANIFEST_FORMAT = 'medsynth-synthetic-set';
export const MANIFEST_VERSION = 1;
/** The manifest's name inside a folder set. */
export const MANIFEST_NAME = 'manifest.json';

export type OutKind = 'folder' | 'npz';

/** `npz` when `out` ends in `.npz` (any case), else `folder`. */
export function outKind(out: string): OutKind {
  return extname(out).toLowerCase() === '.npz' ? 'npz' : 'folder';
}

/** Where a set's manifest lives: `<out>/manifest.json` for a folder, `<out>.manifest.json` beside an npz. */
export function manifestPathFor(out: string): string {
  const abs = resolve(out);
  return outKind(abs) === 'npz' ? `${abs}.manifest.json` : join(abs, MANIFEST_NAME);
}

/** The PNG file name of a seed: `seed000123.png` (at least 6 digits). */
export function seedFileName(seed: number): string {
  return `seed${String(seed).padStart(6, '0')}.png`;
}

/** Where the images came from (recorded in the manifest). */
export interface ManifestSource {
  readonly runDir: string;
  readonly checkpoint: string;
  readonly network: 'G_ema' | 'G';
  readonly step: number;
  readonly kimg: number;
  readonly family: string;
  readonly dataSource: string;
}

/** The manifest fields of a loaded run. */
export function sourceFromRun(run: RunInfo): ManifestSource {
  return {
    runDir: run.dir,
    checkpoint: run.checkpoint,
    network: run.network,
    step: run.step,
    kimg: run.kimg,
    family: run.spec.family,
    dataSource: run.dataSource,
  };
}

/** One image of a set. */
export interface ManifestImage {
  /** The loader's sample id: the file path relative to the folder, or `train[i]` in an npz. */
  readonly id: string;
  readonly class: string;
  /** The generator's label (index into `classNames`). */
  readonly label: number;
  readonly seed: number;
}

export interface SyntheticManifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: number;
  readonly createdAt: string;
  readonly layout: OutKind;
  /** Null when the generator did not come from a run directory. */
  readonly source: ManifestSource | null;
  readonly truncation: number;
  readonly plan: string;
  /** Every class of the generator (index = label), including classes with no images. */
  readonly classNames: readonly string[];
  /** Folder sets: each class's folder name (differs from the class name only when it had to be made safe). */
  readonly classFolders?: readonly string[];
  readonly counts: readonly number[];
  readonly total: number;
  /** The seeds used, compactly (`0-99,500`), and how they were assigned. */
  readonly seeds: string;
  readonly seedOrder: string;
  readonly image: { readonly size: number; readonly channels: 1 | 3; readonly bitDepth: 8 };
  readonly backend: string | null;
  readonly tfjsVersion: string | null;
  readonly images: readonly ManifestImage[];
}

const SEED_ORDER = 'plan order: class by class (class 0 first), each class taking the next seeds of the list';

/** Reads a set's manifest (`out` is the folder or the .npz). */
export async function readManifest(out: string): Promise<SyntheticManifest> {
  const file = manifestPathFor(out);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new DatasetError('cannot read the synthetic set manifest', { file, cause });
  }
  let m: Partial<SyntheticManifest>;
  try {
    m = JSON.parse(text) as Partial<SyntheticManifest>;
  } catch (cause) {
    throw new DatasetError('the manifest is not valid JSON', { file, cause });
  }
  if (m.format !== MANIFEST_FORMAT) {
    throw new DatasetError('not a medsynth synthetic set manifest', {
      file,
      expected: `format "${MANIFEST_FORMAT}"`,
      found: JSON.stringify(m.format),
    });
  }
  return m as SyntheticManifest;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what must go
const UNSAFE_CHARS = /[/\\:*?"<>|\u0000-\u001f]/g;
/** Names the folder listing skips or that are not folder names. */
const SKIPPED_NAMES = new Set(['', '.', '..', '__MACOSX', 'Thumbs.db']);

/**
 * The folder name of each class: the class name, made safe where it must be (path separators and characters
 * Windows forbids → `_`, a leading `.` → `_`, trailing dots/spaces dropped). Split-like names and two classes
 * with one folder are `ConfigError`s.
 */
export function classFolderNames(classNames: readonly string[]): string[] {
  const folders = classNames.map((name) => {
    let f = name.replace(UNSAFE_CHARS, '_').replace(/[. ]+$/, '');
    if (f.startsWith('.')) f = `_${f.slice(1)}`;
    if (SKIPPED_NAMES.has(f)) f = `_${f}`;
    return f;
  });
  const split = folders.findIndex((f) => normalizeSplitName(f) !== undefined);
  if (split >= 0) {
    throw new ConfigError(
      `class "${classNames[split]}" is named like a split folder, which the folder loader would read as a split; write an .npz instead`,
      { field: '--out', found: folders[split]! },
    );
  }
  const seen = new Map<string, number>();
  folders.forEach((f, i) => {
    const key = f.toLowerCase();
    const j = seen.get(key);
    if (j !== undefined) {
      throw new ConfigError(
        `classes "${classNames[j]}" and "${classNames[i]}" would share the folder "${f}" (names are compared without case); write an .npz instead`,
        { field: '--out' },
      );
    }
    seen.set(key, i);
  });
  return folders;
}

async function statOrUndefined(path: string) {
  return stat(path).catch(() => undefined);
}

async function lstatOrUndefined(path: string) {
  return lstat(path).catch(() => undefined);
}

/** The fields of an existing set's manifest that overwriting relies on. */
const OwnedManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  createdAt: z.string(),
  layout: z.enum(['folder', 'npz']),
  classFolders: z.array(z.string()).optional(),
  images: z.array(z.object({ id: z.string() })),
});
type OwnedManifest = z.infer<typeof OwnedManifestSchema>;

/**
 * An existing manifest: `undefined` when the file is missing, is not JSON or is not ours (no medsynth `format`);
 * a `ConfigError` when it is ours but lacks what overwriting relies on.
 */
async function readOwnedManifest(file: string): Promise<OwnedManifest | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || !('format' in json) || json.format !== MANIFEST_FORMAT) {
    return undefined;
  }
  const r = OwnedManifestSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(
      'this synthetic set manifest does not say which files are the set (not replacing it; delete the set yourself or choose another output)',
      { field: '--out', file, found: `${issue.path.join('.') || 'manifest'}: ${issue.message}` },
    );
  }
  return r.data;
}

/** Files the OS drops into folders someone browsed: deleted with a set (and named in the warning). */
const OS_LITTER = new Set(['.DS_Store', 'Thumbs.db', 'desktop.ini']);

/** What deleting a folder set would delete (paths relative to the folder, `/`-separated), and what it may not. */
interface SetScan {
  readonly manifest: OwnedManifest;
  /** Image files the manifest lists that exist. */
  readonly images: readonly string[];
  readonly litter: readonly string[];
  /** Class folders that are empty once the images and litter are gone. */
  readonly classDirs: readonly string[];
  /** Everything else (`name/` for a folder): files a user added, images the manifest does not list. */
  readonly foreign: readonly string[];
}

/** What a folder set owns (`undefined`: no manifest of ours). Symbolic links are never followed. */
async function scanSet(folder: string): Promise<SetScan | undefined> {
  const manifest = await readOwnedManifest(join(folder, MANIFEST_NAME));
  if (manifest === undefined) return undefined;
  const owned = new Set(manifest.images.map((x) => x.id));
  const classes = new Set([
    ...(manifest.classFolders ?? []),
    ...manifest.images.map((x) => x.id.split('/')[0]),
  ]);
  const images: string[] = [];
  const litter: string[] = [];
  const classDirs: string[] = [];
  const foreign: string[] = [];
  /** Lists one folder; true when nothing would be left in it. */
  async function walk(rel: string): Promise<boolean> {
    let empty = true;
    const entries = await readdir(rel === '' ? folder : join(folder, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const id = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (!(await walk(id))) empty = false;
        else if (rel === '' && classes.has(e.name)) classDirs.push(id);
        else {
          foreign.push(`${id}/`);
          empty = false;
        }
      } else if (e.isFile() && id === MANIFEST_NAME) {
        // deleted last
      } else if (e.isFile() && owned.has(id)) images.push(id);
      else if (e.isFile() && OS_LITTER.has(e.name)) litter.push(id);
      else {
        foreign.push(id);
        empty = false;
      }
    }
    return empty;
  }
  await walk('');
  return { manifest, images, litter, classDirs, foreign };
}

function notOursError(abs: string): ConfigError {
  return new ConfigError(
    `the output folder is not empty and is not a medsynth synthetic set (no ${MANIFEST_NAME} of ours): not replacing it even with --overwrite; delete it yourself or choose another folder`,
    { field: '--out', file: abs },
  );
}

function foreignError(abs: string, foreign: readonly string[]): ConfigError {
  return new ConfigError(
    `the output folder holds ${foreign.length === 1 ? 'a file' : `${foreign.length} files`} that the synthetic set's ${MANIFEST_NAME} does not list (${listSome(foreign)}); --overwrite replaces only the set's own files: move ${foreign.length === 1 ? 'it' : 'them'} out of the folder or choose another output`,
    { field: '--out', file: abs },
  );
}

/** The warning of a folder overwrite. */
function replacingFolderMessage(abs: string, scan: SetScan): string {
  const n = scan.images.length;
  const litter = scan.litter.length > 0 ? ` (also deleting ${listSome(scan.litter)})` : '';
  return `replacing the synthetic set in ${abs}: ${n} image${n === 1 ? '' : 's'} and ${MANIFEST_NAME} of the set made ${scan.manifest.createdAt}${litter}`;
}

/**
 * Deletes a folder set that `scan` found with nothing foreign: its images, litter, manifest, class folders and
 * the folder. False (and the rest left) when the folder is not empty at the end (something was added since).
 */
async function removeSet(folder: string, scan: SetScan): Promise<boolean> {
  const gone = (e: unknown) => {
    if (errnoCode(e) !== 'ENOENT') throw e;
  };
  for (const id of [...scan.images, ...scan.litter, MANIFEST_NAME])
    await unlink(join(folder, id)).catch(gone);
  try {
    for (const d of scan.classDirs) await rmdir(join(folder, d)).catch(gone);
    await rmdir(folder).catch(gone);
  } catch (e) {
    if (errnoCode(e) === 'ENOTEMPTY' || errnoCode(e) === 'EEXIST') return false;
    throw e;
  }
  return true;
}

/** The owner record of a staging folder (inside it) or an npz temporary file (`<temp>.owner.json`). */
export const STAGING_OWNER_NAME = '.medsynth-staging.json';
/** A leftover with no readable owner record is stale once unmodified for this long. */
export const STALE_UNOWNED_MS = 60 * 60 * 1000;

const OwnerSchema = z.object({
  pid: z.number().int().positive(),
  hostname: z.string(),
  startedAt: z.string(),
});

function ownerText(): string {
  return `${JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() })}\n`;
}

/** Whether a staging leftover may be removed; otherwise why not. */
async function stagingVerdict(
  path: string,
  ownerFile: string,
): Promise<{ stale: true } | { stale: false; why: string }> {
  let owner: z.infer<typeof OwnerSchema> | undefined;
  try {
    owner = OwnerSchema.parse(JSON.parse(await readFile(ownerFile, 'utf8')));
  } catch {
    owner = undefined;
  }
  if (owner !== undefined) {
    if (owner.hostname !== hostname()) {
      return {
        stale: false,
        why: `it belongs to a generate run on host ${owner.hostname} (pid ${owner.pid}, started ${owner.startedAt}); delete it yourself if that run is over`,
      };
    }
    if (processRuns(owner.pid)) {
      return {
        stale: false,
        why: `the generate run that writes it (pid ${owner.pid}, started ${owner.startedAt}) is still running`,
      };
    }
    return { stale: true };
  }
  const st = await lstatOrUndefined(path);
  const age = st === undefined ? Infinity : Date.now() - st.mtimeMs;
  if (age >= STALE_UNOWNED_MS) return { stale: true };
  return {
    stale: false,
    why: `it has no owner record and was modified ${Math.floor(age / 60_000)} min ago (removed once unmodified for ${STALE_UNOWNED_MS / 60_000} min)`,
  };
}

const LEFTOVER_SUFFIX = /^(tmp|old)-[0-9a-f]{8}$/;

/**
 * Finds the hidden leftovers of earlier runs writing `out` (see the module comment) and removes the stale ones,
 * restoring a previous set from `.old-…` when `out` is missing. Returns the warnings.
 */
async function recoverLeftovers(out: string, kind: OutKind): Promise<string[]> {
  const dir = dirname(out);
  const prefix = `.${basename(out)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const temps = new Set<string>();
  const olds: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    const key = rest.endsWith('.owner.json') ? rest.slice(0, -'.owner.json'.length) : rest;
    if (!LEFTOVER_SUFFIX.test(key)) continue;
    if (key.startsWith('tmp-')) temps.add(join(dir, prefix + key));
    else if (key === rest && kind === 'folder') olds.push(join(dir, name));
  }
  const removed: string[] = [];
  const warnings: string[] = [];
  for (const temp of [...temps].sort()) {
    const st = await lstatOrUndefined(temp);
    const sidecar = `${temp}.owner.json`;
    if (st !== undefined && (kind === 'folder' ? !st.isDirectory() : !st.isFile())) continue; // not ours
    const verdict = await stagingVerdict(
      st !== undefined ? temp : sidecar,
      st?.isDirectory() === true ? join(temp, STAGING_OWNER_NAME) : sidecar,
    );
    if (!verdict.stale) {
      if (st !== undefined) warnings.push(`left ${temp} alone: ${verdict.why}`);
      continue;
    }
    if (st !== undefined) {
      await rm(temp, { recursive: true, force: true });
      removed.push(temp);
    }
    if (await lstatOrUndefined(sidecar)) {
      await rm(sidecar, { force: true });
      removed.push(sidecar);
    }
  }
  const stats = await Promise.all(olds.map(async (p) => ({ path: p, st: await lstatOrUndefined(p) })));
  const oldDirs = stats
    .filter((x) => x.st?.isDirectory() === true)
    .sort((a, b) => b.st!.mtimeMs - a.st!.mtimeMs)
    .map((x) => x.path);
  for (const old of oldDirs) {
    if ((await lstatOrUndefined(out)) === undefined) {
      await rename(old, out);
      warnings.push(
        `restored the previous synthetic set ${out} from ${old} (an earlier generate run was stopped while replacing it)`,
      );
      continue;
    }
    let scan: SetScan | undefined;
    try {
      scan = await scanSet(old);
    } catch {
      scan = undefined;
    }
    if (scan === undefined || scan.foreign.length > 0) {
      warnings.push(
        `left ${old} alone: it is a set an earlier generate run replaced, but ${scan === undefined ? `it has no readable ${MANIFEST_NAME} of ours` : `it holds files its manifest does not list (${listSome(scan.foreign)})`}; look inside and delete it yourself`,
      );
      continue;
    }
    if (await removeSet(old, scan)) removed.push(old);
    else warnings.push(`left ${old} alone: files were added to it while it was being deleted`);
  }
  if (removed.length > 0) {
    warnings.unshift(`removed leftovers of an earlier generate run that was killed: ${listSome(removed)}`);
  }
  return warnings;
}

export interface PrepareOutOptions {
  /** Replace an existing output and grid (see the module comment for what may be replaced). */
  readonly overwrite?: boolean | undefined;
  /** The grid file that will be written too. */
  readonly grid?: string | undefined;
  /** Receives the warnings as they arise. */
  readonly onProgress?: ProgressCallback | undefined;
}

export interface PreparedOut {
  /** Absolute path of the folder or .npz. */
  readonly out: string;
  readonly layout: OutKind;
  /** Absolute path of the grid file. */
  readonly grid?: string;
  /** Leftovers cleaned up, and what an overwrite will replace (also emitted as `warning` events). */
  readonly warnings: readonly string[];
}

/**
 * Prepares writing `out` (call before the slow work): cleans up leftovers of killed runs, then checks that `out`
 * (and `grid`) may be written: a missing path or an empty folder is fine; an existing file, non-empty folder or
 * grid file needs `overwrite`, and a folder must be a previous synthetic set holding nothing its manifest does
 * not own (see the module comment). Only the cleanup changes anything on disk.
 */
export async function prepareOut(out: string, options: PrepareOutOptions = {}): Promise<PreparedOut> {
  const overwrite = options.overwrite === true;
  const abs = resolve(out);
  const layout = outKind(abs);
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    options.onProgress?.({ type: 'warning', message });
  };
  const grid = options.grid === undefined ? undefined : checkGridPath(options.grid, abs, layout);
  for (const message of await recoverLeftovers(abs, layout)) warn(message);
  const st = await statOrUndefined(abs);
  if (layout === 'npz') {
    if (st?.isDirectory())
      throw new ConfigError('the .npz output is an existing folder', { field: '--out', file: abs });
    if (st && !overwrite) {
      throw new ConfigError('the output file exists; pass --overwrite to replace it', {
        field: '--out',
        file: abs,
      });
    }
    const manifest = manifestPathFor(abs);
    const manifestSt = await statOrUndefined(manifest);
    if (!st && manifestSt && !overwrite) {
      throw new ConfigError('a manifest for this output exists; pass --overwrite to replace it', {
        field: '--out',
        file: manifest,
      });
    }
    if (st || manifestSt)
      warn(await replacingNpzMessage(abs, manifest, st !== undefined, manifestSt !== undefined));
  } else if (st && !st.isDirectory()) {
    throw new ConfigError('the output exists and is not a folder (give a folder, or a file ending in .npz)', {
      field: '--out',
      file: abs,
    });
  } else if (st) {
    const entries = await readdir(abs);
    if (entries.length > 0 && !overwrite) {
      throw new ConfigError(
        `the output folder is not empty (${entries.length} entries); pass --overwrite to replace it`,
        { field: '--out', file: abs },
      );
    }
    if (entries.length > 0) {
      const scan = await scanSet(abs);
      if (scan === undefined) throw notOursError(abs);
      if (scan.foreign.length > 0) throw foreignError(abs, scan.foreign);
      warn(replacingFolderMessage(abs, scan));
    }
  }
  if (grid !== undefined) {
    const gridSt = await statOrUndefined(grid);
    if (gridSt?.isDirectory()) {
      throw new ConfigError('the grid file is an existing folder', { field: '--grid', file: grid });
    }
    if (gridSt && !overwrite) {
      throw new ConfigError('the grid file exists; pass --overwrite to replace it', {
        field: '--grid',
        file: grid,
      });
    }
    if (gridSt) warn(`replacing the grid ${grid}`);
  }
  return { out: abs, layout, ...(grid !== undefined ? { grid } : {}), warnings };
}

/** The warning of an npz overwrite. */
async function replacingNpzMessage(
  abs: string,
  manifest: string,
  npz: boolean,
  hasManifest: boolean,
): Promise<string> {
  const m = hasManifest ? await readOwnedManifest(manifest) : undefined;
  if (npz && m !== undefined) {
    const n = m.images.length;
    return `replacing the synthetic set ${abs}: the .npz (${n} image${n === 1 ? '' : 's'}) and ${basename(manifest)} of the set made ${m.createdAt}`;
  }
  const parts = [
    ...(npz ? [`${abs} (no synthetic set manifest of ours beside it)`] : []),
    ...(hasManifest
      ? [`${manifest}${m === undefined ? ' (not a medsynth manifest)' : ' (its .npz is missing)'}`]
      : []),
  ];
  return `replacing ${parts.join(' and ')}`;
}

/** Checks `grid` can be written beside `out` (never inside a folder set, where a loader would see it). */
function checkGridPath(grid: string, out: string, kind: OutKind): string {
  const abs = resolve(grid);
  if (abs === out || abs === manifestPathFor(out))
    throw new ConfigError('the grid would overwrite the output', { field: '--grid', file: abs });
  if (kind === 'folder') {
    const rel = relative(out, abs);
    if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) {
      throw new ConfigError(
        'the grid may not be written inside the output folder (the folder loader would see it)',
        {
          field: '--grid',
          file: abs,
        },
      );
    }
  }
  return abs;
}

/**
 * Output-specific checks of a plan, before anything is generated: `ConfigError`s for what the loader could not
 * read back, warnings (returned) for what it reads back differently.
 */
export function checkPlanForOutput(
  plan: GenerationPlan,
  out: string,
): { warnings: string[]; folders?: string[] } {
  const warnings: string[] = [];
  const empty = plan.classNames.filter((_, c) => plan.counts[c] === 0);
  const kind = outKind(out);
  if (kind === 'folder') {
    const folders = classFolderNames(plan.classNames);
    const renamed = plan.classNames.filter((n, c) => folders[c] !== n);
    if (renamed.length > 0) {
      warnings.push(
        `class names made safe as folder names (the loader will call them by the folder name): ${renamed
          .map((n) => `${JSON.stringify(n)} → ${JSON.stringify(folders[plan.classNames.indexOf(n)])}`)
          .join(', ')}`,
      );
    }
    if (empty.length > 0) {
      warnings.push(
        `no images of ${empty.map((n) => JSON.stringify(n)).join(', ')}: no folder is written for ${empty.length === 1 ? 'it' : 'them'}, so the folder loader will not list ${empty.length === 1 ? 'that class' : 'those classes'} and labels of later classes shift; ${MANIFEST_NAME} keeps every class name`,
      );
    }
    const present = folders.filter((_, c) => plan.counts[c]! > 0);
    const numeric = present.every((n) => /^-?\d+$/.test(n));
    const sorted = [...present].sort(
      numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    );
    if (sorted.some((n, i) => n !== present[i])) {
      warnings.push(
        `the class names are not in the folder loader's (sorted) order: labels read back by openDataset differ from the generator's; map them by class name (${MANIFEST_NAME})`,
      );
    }
    return { warnings, folders };
  }
  const flag = medmnistFlagFromFileName(basename(out));
  const last = plan.counts.reduce((acc, n, c) => (n > 0 ? c : acc), -1);
  const holes = plan.classNames.filter((_, c) => c < last && plan.counts[c] === 0);
  if (flag !== undefined) {
    const official = medmnistInfo(flag).labels;
    if (empty.length > 0 || official.length !== plan.classNames.length) {
      throw new ConfigError(
        `the file name makes the npz loader use the ${flag} class table, which needs images of all ${official.length} classes${empty.length > 0 ? ` (none of ${empty.join(', ')})` : ''}; use another file name or a folder`,
        { field: '--out', file: out },
      );
    }
    if (official.some((n, i) => n !== plan.classNames[i])) {
      warnings.push(
        `the npz loader will name the classes from the ${flag} table (${official.join(', ')}), not the generator's`,
      );
    }
  } else if (holes.length > 0) {
    throw new ConfigError(
      `no images of ${holes.map((n) => JSON.stringify(n)).join(', ')}, which come before the last class with images: the npz loader refuses a file whose labels skip a class; write a folder instead`,
      { field: '--out', file: out },
    );
  } else if (empty.length > 0) {
    warnings.push(
      `no images of ${empty.map((n) => JSON.stringify(n)).join(', ')} (the last classes): the npz loader will list only ${last + 1} classes; the manifest keeps every class name`,
    );
  }
  return { warnings };
}

/** Where batches go: a folder or an npz. */
interface Sink {
  add(batch: GeneratedBatch): Promise<void>;
  /** Writes the manifest and moves the set into place; returns warnings. */
  finish(manifest: Omit<SyntheticManifest, 'images'>): Promise<string[]>;
  /** Removes what was written. Never throws. */
  abort(): Promise<void>;
}

/** The manifest as JSON text: fields indented, one line per image. */
export function manifestText(m: SyntheticManifest): string {
  const { images, ...head } = m;
  const top = JSON.stringify(head, null, 2);
  const list = images.map((x) => `    ${JSON.stringify(x)}`).join(',\n');
  return `${top.slice(0, -2)},\n  "images": [\n${list}\n  ]\n}\n`;
}

function tempSibling(out: string, what: string): string {
  return join(dirname(out), `.${basename(out)}.${what}-${randomBytes(4).toString('hex')}`);
}

function batchImage(batch: GeneratedBatch, i: number): RawImage {
  const { height, width, channels, data } = batch.images;
  const px = height * width * channels;
  return { width, height, channels, data: data.subarray(i * px, (i + 1) * px) };
}

async function folderSink(out: string, plan: GenerationPlan, folders: readonly string[]): Promise<Sink> {
  await mkdir(dirname(out), { recursive: true });
  const staging = tempSibling(out, 'tmp');
  await mkdir(staging);
  await writeFile(join(staging, STAGING_OWNER_NAME), ownerText());
  const made = new Set<number>();
  const images: ManifestImage[] = [];
  return {
    async add(batch) {
      const files: { file: string; image: ManifestImage; raw: RawImage }[] = [];
      for (let i = 0; i < batch.seeds.length; i++) {
        const label = batch.labels[i]!;
        const seed = batch.seeds[i]!;
        const id = `${folders[label]}/${seedFileName(seed)}`;
        if (!made.has(label)) {
          await mkdir(join(staging, folders[label]!));
          made.add(label);
        }
        const image = { id, class: plan.classNames[label]!, label, seed };
        files.push({ file: join(staging, id), image, raw: batchImage(batch, i) });
      }
      await Promise.all(files.map(async ({ file, raw }) => writeFile(file, await encodePng(raw))));
      images.push(...files.map((f) => f.image));
    },
    async finish(manifest) {
      await writeFile(join(staging, MANIFEST_NAME), manifestText({ ...manifest, images }));
      await rm(join(staging, STAGING_OWNER_NAME), { force: true });
      const existing = await statOrUndefined(out);
      if (!existing) {
        await rename(staging, out);
        return [];
      }
      // Checked again: files may have been added while the images were generated.
      const empty = (await readdir(out)).length === 0;
      const scan = empty ? undefined : await scanSet(out);
      if (!empty && scan === undefined) throw notOursError(out);
      if (scan !== undefined && scan.foreign.length > 0) throw foreignError(out, scan.foreign);
      const old = tempSibling(out, 'old');
      await rename(out, old);
      try {
        await rename(staging, out);
      } catch (e) {
        await rename(old, out).catch(() => undefined);
        throw e;
      }
      // The new set is in place: a failure to delete the old one is a warning, not an error.
      try {
        if (scan === undefined ? (await rmdir(old), true) : await removeSet(old, scan)) return [];
        return [`kept the replaced set in ${old}: files were added to it while it was replaced; look inside`];
      } catch (e) {
        return [`could not delete the replaced set in ${old}: ${e instanceof Error ? e.message : String(e)}`];
      }
    },
    async abort() {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

async function npzSink(out: string, plan: GenerationPlan, generator: SamplingGenerator): Promise<Sink> {
  await mkdir(dirname(out), { recursive: true });
  const tmp = tempSibling(out, 'tmp');
  const owner = `${tmp}.owner.json`;
  await writeFile(owner, ownerText());
  const writer = new NpzWriter(tmp);
  const { size, channels } = generator;
  const geometry = channels === 1 ? [size, size] : [size, size, 3];
  let stream: NpyStream | undefined = writer.beginArray('train_images', '|u1', [plan.total, ...geometry]);
  const labels = new Int32Array(plan.total);
  const images: ManifestImage[] = [];
  return {
    async add(batch) {
      await stream!.write(batch.images.data);
      batch.seeds.forEach((seed, i) => {
        const label = batch.labels[i]!;
        const index = batch.start + i;
        labels[index] = label;
        images.push({ id: `train[${index}]`, class: plan.classNames[label]!, label, seed });
      });
    },
    async finish(manifest) {
      stream!.end();
      stream = undefined;
      if (plan.classNames.length <= 256) {
        writer.addArray('train_labels', '|u1', [plan.total, 1], Uint8Array.from(labels));
        writer.addArray('test_labels', '|u1', [0, 1], new Uint8Array(0));
      } else {
        writer.addArray('train_labels', '<i4', [plan.total, 1], labels);
        writer.addArray('test_labels', '<i4', [0, 1], new Int32Array(0));
      }
      writer.addArray('test_images', '|u1', [0, ...geometry], new Uint8Array(0));
      await writer.close();
      await writeFileAtomic(manifestPathFor(out), manifestText({ ...manifest, images }));
      await rename(tmp, out);
      await rm(owner, { force: true });
      return [];
    },
    async abort() {
      await writer.abort();
      await rm(tmp, { force: true }).catch(() => undefined);
      await rm(owner, { force: true }).catch(() => undefined);
    },
  };
}

export interface WriteSetOptions extends RunControl {
  /** A folder, or a file ending in `.npz`. */
  readonly out: string;
  /** Replace an existing output and grid (see the module comment for what may be replaced). */
  readonly overwrite?: boolean | undefined;
  readonly seeds?: SeedList | undefined;
  /** Truncation ψ ∈ (0, 1] (default 1). */
  readonly truncation?: number | undefined;
  readonly batchSize?: number | undefined;
  /** Also write a PNG grid, one row per class (its first images). */
  readonly grid?: string | undefined;
  /** Images per class in the grid (default 8). */
  readonly gridPerClass?: number | undefined;
  /** Recorded in the manifest. */
  readonly source?: ManifestSource | undefined;
}

export interface WriteSetResult {
  /** Absolute path of the folder or .npz. */
  readonly out: string;
  readonly layout: OutKind;
  readonly manifest: string;
  readonly classNames: readonly string[];
  readonly counts: readonly number[];
  readonly total: number;
  /** The seeds used, compactly (`0-299`). */
  readonly seeds: string;
  readonly firstSeed: number;
  readonly lastSeed: number;
  readonly truncation: number;
  readonly grid?: string;
  /**
   * Leftovers of killed runs cleaned up, what was overwritten, and what the loaders will read differently (also
   * emitted as `warning` events).
   */
  readonly warnings: readonly string[];
  readonly seconds: number;
}

/**
 * Generates a plan's images and writes them as a synthetic set (folder or npz, see the module comment), with
 * its manifest and optionally a grid. Everything that can be checked is checked before the first image.
 */
export async function writeSyntheticSet(
  generator: SamplingGenerator,
  plan: GenerationPlan,
  options: WriteSetOptions,
): Promise<WriteSetResult> {
  const started = performance.now();
  const truncation = checkTruncation(options.truncation ?? 1);
  if (options.batchSize !== undefined) checkBatchSize(options.batchSize);
  checkConditional(generator, plan);
  takeSeeds(options.seeds ?? DEFAULT_SEEDS, plan.total);
  const prepared = await prepareOut(options.out, {
    overwrite: options.overwrite,
    grid: options.grid,
    onProgress: options.onProgress,
  });
  const { out, layout, grid } = prepared;
  const gridPerClass = options.gridPerClass ?? 8;
  if (!(Number.isSafeInteger(gridPerClass) && gridPerClass >= 1)) {
    throw new ConfigError('images per class in the grid must be a positive integer', {
      field: '--grid-per-class',
      found: String(options.gridPerClass),
    });
  }
  const checked = checkPlanForOutput(plan, out);
  const { folders } = checked;
  for (const message of checked.warnings) options.onProgress?.({ type: 'warning', message });
  const warnings = [...prepared.warnings, ...checked.warnings];

  const rows: RawImage[][] = plan.classNames.map(() => []);
  const seeds: number[] = [];
  const sink =
    layout === 'folder' ? await folderSink(out, plan, folders!) : await npzSink(out, plan, generator);
  let pending: Promise<void> | undefined;
  try {
    for await (const batch of generateImages(generator, plan, {
      seeds: options.seeds,
      truncation,
      batchSize: options.batchSize,
      onProgress: options.onProgress,
      signal: options.signal,
    })) {
      // Encoding/writing one batch overlaps generating the next.
      if (pending) await pending;
      pending = sink.add(batch);
      pending.catch(() => undefined);
      seeds.push(...batch.seeds);
      if (grid !== undefined) {
        batch.labels.forEach((label, i) => {
          const row = rows[label]!;
          if (row.length < gridPerClass) {
            const img = batchImage(batch, i);
            row.push({ ...img, data: img.data.slice() });
          }
        });
      }
    }
    if (pending) await pending;
    options.signal?.throwIfAborted();
    const backend = describeBackend();
    const finished = await sink.finish({
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      createdAt: new Date().toISOString(),
      layout,
      source: options.source ?? null,
      truncation,
      plan: plan.description,
      classNames: plan.classNames,
      ...(folders ? { classFolders: folders } : {}),
      counts: plan.counts,
      total: plan.total,
      seeds: formatSeeds(seeds),
      seedOrder: SEED_ORDER,
      image: { size: generator.size, channels: generator.channels, bitDepth: 8 },
      backend: backend?.backend ?? null,
      tfjsVersion: backend?.tfjsVersion ?? null,
    });
    for (const message of finished) options.onProgress?.({ type: 'warning', message });
    warnings.push(...finished);
  } catch (e) {
    // A batch still being written must finish before its staging folder is removed.
    await pending?.catch(() => undefined);
    await sink.abort();
    throw (
      fileSystemError(
        e,
        'writing the synthetic set (nothing was replaced; the staging copy was removed)',
        out,
      ) ?? e
    );
  }
  if (grid !== undefined) await writeFileAtomic(grid, await encodePng(tileImages(rows)), 'writing the grid');
  return {
    out,
    layout,
    manifest: manifestPathFor(out),
    classNames: plan.classNames,
    counts: plan.counts,
    total: plan.total,
    seeds: formatSeeds(seeds),
    firstSeed: seeds.reduce((a, b) => Math.min(a, b)),
    lastSeed: seeds.reduce((a, b) => Math.max(a, b)),
    truncation,
    ...(grid !== undefined ? { grid } : {}),
    warnings,
    seconds: (performance.now() - started) / 1000,
  };
}
