/**
 * medsynth — the library. The CLI (`medsynth …`) is a thin layer over these exports.
 */
export * from './config/data-options.js';
export { Dataset, DEFAULT_SPLIT_POLICY, type LoadOptions, Split, type SplitPolicy } from './data/dataset.js';
export { encodePng, tileImages } from './data/image/grid.js';
export {
  convertBitDepth,
  convertChannels,
  packImages,
  type ResolvedTransform,
  resolveTransform,
  transformImage,
} from './data/image/transform.js';
export { classGrid, type DatasetSummary, inspectDataset } from './data/inspect.js';
export { classIndex, readLabelsCsv } from './data/labels-csv.js';
export { detectFormat, listSource, openDataset } from './data/source.js';
export { partitionSites, stratifiedAssign, stratifiedFraction } from './data/splits.js';
export * from './data/types.js';
export {
  type BackendAttempt,
  BackendError,
  type BackendName,
  type BackendReport,
  BACKENDS,
  checkBackend,
  describeBackend,
  type LibtorchFacts,
  type SanityCheck,
  type SanityCheckItem,
  selectBackend,
  type SelectBackendOptions,
  TFJS_VERSION,
} from './runtime/backend.js';
export * from './runtime/errors.js';
export type { ProgressCallback, ProgressEvent, RunControl } from './runtime/progress.js';
export { Rng } from './runtime/random.js';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './runtime/wasm-kernels.js';
