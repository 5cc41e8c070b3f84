/**
 * `medmnist:<flag>[@<size>]` sources: resolve the official MedMNIST file (table in `medmnist-info.ts`, from
 * MedMNIST's `medmnist/info.py`), download it once into the cache with MD5 verification, then load it with
 * the npz loader.
 *
 * - URL: `https://zenodo.org/records/10519652/files/<flag>[_<size>].npz?download=1` (size 28 has no suffix).
 *   `medmnistBaseUrl` / env `MEDSYNTH_MEDMNIST_URL` replaces `https://zenodo.org/records/10519652/files`
 *   (a mirror gets `<base>/<flag>[_<size>].npz`; `?download=1` is only added for zenodo.org).
 * - Cache: `<cacheDir | MEDSYNTH_CACHE | ~/.cache/medsynth>/medmnist/<flag>[_<size>].npz`.
 * - Checksum: the official MD5 for that flag and size. A mirror that serves re-saved (not byte-identical)
 *   files can pass `medmnistMd5`; the file is still verified, against that value instead.
 */
import { join } from 'node:path';
import { ConfigError, DatasetError } from '../../runtime/errors.js';
import { throwIfAborted } from '../../runtime/progress.js';
import type { LoaderOptions, SourceListing } from '../types.js';
import { downloadVerified, resolveCacheDir } from './download.js';
import { loadNpzWith } from './load-npz.js';
import {
  isMedmnistFlag,
  MEDMNIST_3D_FLAGS,
  MEDMNIST_FLAGS,
  MEDMNIST_SIZES,
  MEDMNIST_ZENODO_FILES,
  type MedmnistFlag,
  type MedmnistSize,
  medmnistInfo,
} from './medmnist-info.js';

export {
  isMedmnistFlag,
  MEDMNIST_3D_FLAGS,
  MEDMNIST_FLAGS,
  MEDMNIST_INFO,
  MEDMNIST_SIZES,
  MEDMNIST_ZENODO_FILES,
  type MedmnistFlag,
  type MedmnistInfo,
  type MedmnistSize,
  medmnistInfo,
} from './medmnist-info.js';

export interface MedmnistSource {
  readonly flag: MedmnistFlag;
  readonly size: MedmnistSize;
}

export interface MedmnistLoadOptions extends LoaderOptions {
  /**
   * Expected MD5 instead of the official one, for mirrors that serve re-saved files (and tests). The
   * download is still verified; only use a value you got from the mirror's operator.
   */
  readonly medmnistMd5?: string | undefined;
}

const PREFIX = 'medmnist:';

/** True for strings that look like a `medmnist:` source (valid or not). */
export function isMedmnistSource(source: string): boolean {
  return source.toLowerCase().startsWith(PREFIX);
}

/** Parses `medmnist:<flag>[@<size>]` (case-insensitive; size defaults to 28). */
export function parseMedmnistSource(source: string): MedmnistSource {
  if (!isMedmnistSource(source)) {
    throw new ConfigError('not a MedMNIST source', {
      field: 'source',
      expected: 'medmnist:<name>[@<size>]',
      found: source,
    });
  }
  const rest = source.slice(PREFIX.length).trim().toLowerCase();
  const at = rest.indexOf('@');
  const name = at < 0 ? rest : rest.slice(0, at);
  const sizeText = at < 0 ? undefined : rest.slice(at + 1);
  if (!isMedmnistFlag(name)) {
    const is3d = (MEDMNIST_3D_FLAGS as readonly string[]).includes(name);
    throw new ConfigError(
      is3d
        ? `"${name}" is a 3D MedMNIST subset; medsynth loads 2D images only`
        : `unknown MedMNIST dataset "${name}"`,
      { field: 'source', expected: `one of ${MEDMNIST_FLAGS.join(', ')}`, found: source },
    );
  }
  let size: MedmnistSize = 28;
  if (sizeText !== undefined) {
    const found = MEDMNIST_SIZES.find((s) => String(s) === sizeText);
    if (found === undefined) {
      throw new ConfigError(`unknown MedMNIST image size "${sizeText}"`, {
        field: 'source',
        expected: `one of ${MEDMNIST_SIZES.join(', ')}`,
        found: source,
      });
    }
    size = found;
  }
  return { flag: name, size };
}

/** `pneumoniamnist.npz` for 28 px, `pneumoniamnist_64.npz` for MedMNIST+ sizes. */
export function medmnistFileName(flag: MedmnistFlag, size: MedmnistSize): string {
  return size === 28 ? `${flag}.npz` : `${flag}_${size}.npz`;
}

/** Download URL: the official Zenodo one, or `<baseUrl>/<file>` for a mirror. */
export function medmnistUrl(flag: MedmnistFlag, size: MedmnistSize, baseUrl?: string): string {
  const base = (baseUrl !== undefined && baseUrl !== '' ? baseUrl : MEDMNIST_ZENODO_FILES).replace(
    /\/+$/,
    '',
  );
  let zenodo: boolean;
  try {
    zenodo = new URL(base).hostname === 'zenodo.org';
  } catch (e) {
    throw new ConfigError('MedMNIST base URL is not a URL', {
      field: 'medmnistBaseUrl',
      found: base,
      cause: e,
    });
  }
  return `${base}/${medmnistFileName(flag, size)}${zenodo ? '?download=1' : ''}`;
}

/** Where a MedMNIST file is cached: `<cache>/medmnist/<flag>[_<size>].npz`. */
export function medmnistCachePath(flag: MedmnistFlag, size: MedmnistSize, cacheDir?: string): string {
  return join(resolveCacheDir(cacheDir), 'medmnist', medmnistFileName(flag, size));
}

/** Resolves, downloads (or finds in the cache) and verifies a MedMNIST file, then loads it. */
export async function loadMedmnist(source: string, opts: MedmnistLoadOptions): Promise<SourceListing> {
  throwIfAborted(opts.signal);
  const { flag, size } = parseMedmnistSource(source);
  const info = medmnistInfo(flag);
  if (info.task.startsWith('multi-label')) {
    // Refuse before downloading a file the npz loader would refuse anyway.
    throw new DatasetError(
      `${flag} is multi-label (${info.labels.length} labels per image); multi-label is not supported`,
      {
        file: source,
        field: 'labels',
      },
    );
  }
  const baseUrl = opts.medmnistBaseUrl ?? process.env.MEDSYNTH_MEDMNIST_URL;
  const url = medmnistUrl(flag, size, baseUrl);
  const dest = medmnistCachePath(flag, size, opts.cacheDir);
  const md5 = opts.medmnistMd5 ?? info.md5[size];
  const got = await downloadVerified({ url, dest, md5, onProgress: opts.onProgress, signal: opts.signal });
  const origin = got.cached ? `cached ${dest}` : `downloaded from ${url}`;
  const check =
    opts.medmnistMd5 === undefined ? 'official MD5' : 'MD5 given by medmnistMd5, not the official one';
  return loadNpzWith(dest, opts, {
    medmnistFlag: flag,
    notes: [`medmnist:${flag}@${size}: ${origin}, ${check} ${got.md5} verified`],
  });
}
