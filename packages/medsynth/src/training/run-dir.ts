/**
 * Run directories: `<outDir>/00003-cgan-pneumoniamnist-28`, numbered one above the highest existing number
 * (as stylegan2-ada-pytorch does), created exclusively so two runs started together never share one.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';

/** A short, filesystem-safe name for a data source (`medmnist:pneumoniamnist@28` → `pneumoniamnist`). */
export function dataName(source: string): string {
  const s = source.startsWith('medmnist:')
    ? source.slice('medmnist:'.length).split('@')[0]!
    : basename(resolve(source), extname(source));
  const clean = s
    .replace(/_(\d+)_(resaved|reconstructed)$/, '')
    .replace(/[^\w.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return clean.slice(0, 40) || 'data';
}

/** Creates the next numbered run directory under `outDir` and returns its absolute path. */
export async function createRunDir(outDir: string, name: string): Promise<string> {
  const root = resolve(outDir);
  await mkdir(root, { recursive: true });
  for (let attempt = 0; attempt < 100; attempt++) {
    const used = (await readdir(root))
      .map((n) => /^(\d{5,})-/.exec(n)?.[1])
      .filter((m): m is string => m !== undefined)
      .map(Number);
    const next = (used.length > 0 ? Math.max(...used) + 1 : 0) + attempt;
    const dir = join(root, `${String(next).padStart(5, '0')}-${name}`);
    try {
      await mkdir(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  throw new Error(`could not create a run directory in ${root}`);
}
