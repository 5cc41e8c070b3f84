/**
 * What every part of `medsynth serve` shares: the served folder and the one way to turn a request's path into
 * a file inside it. The server reads only files under `root` — a relative path is resolved, every symbolic
 * link on it followed (`realpath`), and the result refused unless it is `root` itself or below it — so `..`,
 * percent-encoded `..`, absolute paths and symlinks that lead out all end in a 404, never in a file outside.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';

export interface ServeContext {
  /** The served folder, already `realpath`-ed. */
  readonly root: string;
  /**
   * The real path of `rel` (a path relative to `root`, `/`-separated, already URL-decoded) when it exists and
   * lies inside `root`; `null` otherwise (missing, outside, or not a valid path).
   */
  inside(rel: string): Promise<string | null>;
}

/** True when the absolute path `p` is `root` or lies below it. */
export function isWithin(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

export async function serveContext(folder: string): Promise<ServeContext> {
  const root = await realpath(resolve(folder));
  return {
    root,
    async inside(rel: string): Promise<string | null> {
      if (rel.includes('\0')) return null;
      const candidate = resolve(root, `.${sep}${rel.replace(/^[/\\]+/, '')}`);
      if (!isWithin(root, candidate)) return null;
      let real: string;
      try {
        real = await realpath(candidate);
      } catch {
        return null;
      }
      return isWithin(root, real) ? real : null;
    },
  };
}

/** A part of the web app: registers its routes (GET only, except the reader study's answers). */
export type ServeRoutes = (app: FastifyInstance, ctx: ServeContext) => Promise<void>;
