#!/usr/bin/env node
// Runs every `*.test.ts` under packages/*/test with node's built-in test runner (TypeScript through tsx).
// Node 20 has no glob support in `--test`, so the files are listed here. Extra arguments are passed through
// (e.g. `npm test -- --test-name-pattern=npz`); a path argument narrows the run to matching files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const files = [];
for (const pkg of readdirSync('packages')) {
  const testDir = join('packages', pkg, 'test');
  try {
    if (statSync(testDir).isDirectory()) walk(testDir, files);
  } catch {
    // a package without tests
  }
}
const selected = files.sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (selected.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...selected],
  // Two test files run at once on CI's two cores: one libtorch/OpenMP thread each, or they oversubscribe.
  { stdio: 'inherit', env: { MEDSYNTH_THREADS: '1', ...process.env } },
);
process.exit(res.status ?? 1);
