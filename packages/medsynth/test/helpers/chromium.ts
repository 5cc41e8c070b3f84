// Finding a Chromium for the browser tests and benchmarks: Debian's `chromium` (what .ci/run installs) or the
// executable named by $CHROMIUM_PATH. Nothing here downloads a browser.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const CHROMIUM_NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];

/** Why no browser test can run, for a skip (or, on CI, a failure). */
export const NO_CHROMIUM = `no Chromium: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH (looked for ${CHROMIUM_NAMES.join(', ')} on PATH)`;

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $CHROMIUM_PATH, else the first of CHROMIUM_NAMES on PATH; null when there is none. */
export function findChromium(): string | null {
  const env = process.env['CHROMIUM_PATH'];
  if (env) return executable(env) ? env : null;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).filter(Boolean))
    for (const name of CHROMIUM_NAMES) if (executable(join(dir, name))) return join(dir, name);
  return null;
}
