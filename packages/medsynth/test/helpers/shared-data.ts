/** Paths into the read-only real data beside the repository (`<repo>/../shared/data`). Never copy it in. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../../shared/data/', import.meta.url));

export function sharedData(...parts: string[]): string {
  return join(root, ...parts);
}
