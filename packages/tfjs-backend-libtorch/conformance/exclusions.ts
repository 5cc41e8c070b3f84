// tfjs-core specs the libtorch backend does not run, each with the reason. A spec is skipped when its full
// name contains one of these strings. Each kernel group keeps its own list.
import { exclusions as common } from './exclusions/common.js';
import { exclusions as elementwise } from './exclusions/elementwise.js';
import { exclusions as reduceShape } from './exclusions/reduce-shape.js';
import { exclusions as spatial } from './exclusions/spatial.js';
import { exclusions as convMatmul } from './exclusions/conv-matmul.js';

export const EXCLUSIONS: ReadonlyArray<readonly [pattern: string, reason: string]> = [
  ...common,
  ...elementwise,
  ...reduceShape,
  ...spatial,
  ...convMatmul,
];
