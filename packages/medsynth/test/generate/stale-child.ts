/**
 * A long `writeSyntheticSet` for stale.test.ts to kill with SIGKILL: `tsx stale-child.ts <out>` writes a large
 * set of tiny images into `<out>` (a folder, or an .npz) and prints `tick` on stdout after every batch.
 */
import { writeSyntheticSet } from '../../src/generate/export.js';
import { makePlan } from '../../src/generate/plan.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { tinyGenerator } from './tiny-generator.js';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: stale-child.ts <out>');
await selectBackend();
const g = tinyGenerator({ classNames: ['a', 'b', 'c'] });
await writeSyntheticSet(g, makePlan({ kind: 'per-class', count: 100_000 }, g.classNames), {
  out,
  batchSize: 8,
  onProgress: (e) => {
    if (e.type === 'tick') process.stdout.write('tick\n');
  },
});
process.stdout.write('finished\n');
