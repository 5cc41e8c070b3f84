// Runs tfjs-core's shipped kernel test suite against the libtorch backend.
//   node --import tsx conformance/run.ts [--filter <substring>] [--json out.json] [--verbose]
// The tests are ESM with extension-less imports, so they are bundled first (esbuild, CommonJS; tree-shaking
// annotations ignored or tfjs-core's sideEffects field drops the test modules).
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { EXCLUSIONS } from './exclusions.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const filter = flag('--filter');
const jsonOut = flag('--json');
const verbose = args.includes('--verbose');

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'libtorch-conformance-'));
const bundle = path.join(outDir, 'tests.cjs');
await build({
  entryPoints: [path.join(here, 'entry.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  ignoreAnnotations: true,
  outfile: bundle,
  logLevel: 'error',
  external: ['*.node'],
  plugins: [
    {
      // tfjs-core's jasmine_util requires a jasmine-core file that newer jasmine-core no longer exports.
      name: 'jasmine-core-path',
      setup(b) {
        b.onResolve({ filter: /^jasmine-core\/lib\/jasmine-core\/jasmine\.js$/ }, () => ({
          path: path.join(
            path.dirname(createRequire(import.meta.url).resolve('jasmine-core')),
            'jasmine-core',
            'jasmine.js',
          ),
        }));
      },
    },
  ],
});
process.env['TFJS_LIBTORCH_ADDON'] ??= path.join(pkg, 'build', 'Release', 'tfjs_libtorch.node');

const require = createRequire(import.meta.url);
const Jasmine = require('jasmine') as new (opts?: object) => {
  env: { configure(c: object): void; addReporter(r: object): void };
  exitOnCompletion: boolean;
  execute(files?: string[]): Promise<{ overallStatus: string }>;
};
const jasmine = new Jasmine({ projectBaseDir: outDir });
jasmine.exitOnCompletion = false;

interface SpecResult {
  fullName: string;
  status: string;
  failedExpectations: { message: string }[];
}
const excludedBy = (name: string) => EXCLUSIONS.find(([p]) => name.includes(p));
jasmine.env.configure({
  random: false,
  specFilter: (spec: { getFullName(): string }) => {
    const name = spec.getFullName();
    if (filter !== undefined && !name.includes(filter)) return false;
    return excludedBy(name) === undefined;
  },
});

const counts = { passed: 0, failed: 0, excluded: 0, pending: 0 };
const failures: { name: string; message: string }[] = [];
jasmine.env.addReporter({
  specDone(result: SpecResult) {
    if (result.status === 'passed') counts.passed++;
    else if (result.status === 'failed') {
      counts.failed++;
      const message = result.failedExpectations[0]?.message.split('\n')[0] ?? '';
      failures.push({ name: result.fullName, message });
      if (verbose) console.log(`FAIL ${result.fullName}\n     ${message.slice(0, 300)}`);
    } else if (result.status === 'excluded') counts.excluded++;
    else counts.pending++;
  },
});

const started = performance.now();
await jasmine.execute([bundle]);
const seconds = (performance.now() - started) / 1000;
const summary = { ...counts, exclusionPatterns: EXCLUSIONS.length, seconds: Number(seconds.toFixed(1)) };
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ summary, failures }, null, 2));
if (!verbose)
  for (const f of failures.slice(0, 50)) console.log(`FAIL ${f.name}\n     ${f.message.slice(0, 300)}`);
console.log(JSON.stringify(summary));
fs.rmSync(outDir, { recursive: true, force: true });
process.exitCode = counts.failed > 0 ? 1 : 0;
