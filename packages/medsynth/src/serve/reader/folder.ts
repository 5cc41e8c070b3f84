/**
 * Which folders can host a reader study, found without loading TF.js: a training run (`options.json` and a
 * `checkpoints/` folder) or a study (`study.json`). `findReaderFolders` walks the served folder breadth-first
 * to a bounded depth and count, in name order, never following symbolic links and never entering a run, a
 * study's `generators/` or hidden folders, so a large folder answers quickly and nothing outside is read.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';

export type FolderKind = 'run' | 'study';

/** What a folder is for a reader study, or null. */
export async function folderKind(dir: string): Promise<FolderKind | null> {
  if (existsSync(join(dir, 'study.json'))) return 'study';
  if (existsSync(join(dir, 'options.json'))) {
    const ck = await stat(join(dir, 'checkpoints')).catch(() => null);
    if (ck?.isDirectory()) return 'run';
  }
  return null;
}

const SKIP = new Set(['node_modules', 'checkpoints', 'samples', 'evaluation', 'generators']);

/** Reader-capable folders under `root` (rel paths, `/`-separated; `''` is root itself). */
export async function findReaderFolders(
  root: string,
  options: { maxDepth?: number; maxFolders?: number } = {},
): Promise<{ rel: string; kind: FolderKind }[]> {
  const maxDepth = options.maxDepth ?? 4;
  const maxFolders = options.maxFolders ?? 2000;
  const out: { rel: string; kind: FolderKind }[] = [];
  let queue: string[] = [''];
  let visited = 0;
  for (let depth = 0; depth <= maxDepth && queue.length > 0; depth++) {
    const next: string[] = [];
    for (const rel of queue) {
      if (++visited > maxFolders) return out;
      const dir = rel === '' ? root : join(root, ...rel.split('/'));
      const kind = await folderKind(dir);
      if (kind !== null) out.push({ rel, kind });
      if (kind === 'run') continue;
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
        if (e.isDirectory() && !e.name.startsWith('.') && !SKIP.has(e.name))
          next.push(rel === '' ? e.name : posix.join(rel, e.name));
    }
    queue = next;
  }
  return out;
}
