/**
 * medsynth — the library. The CLI (`medsynth …`) is a thin layer over these exports.
 */
export * from './config/data-options.js';
export {
  DEFAULT_TRAIN_PRESET,
  resolveTrainOptions,
  TRAIN_PRESETS,
  type TrainOptions,
  type TrainOptionsInput,
} from './config/train-options.js';
export { Dataset, DEFAULT_SPLIT_POLICY, type LoadOptions, Split, type SplitPolicy } from './data/dataset.js';
export { encodePng, tileImages } from './data/image/grid.js';
export { imagesToTensor, tensorToImages } from './data/image/tensors.js';
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
export { AdaController, type AdaState } from './augment/ada.js';
export { augment, type AugmentPolicy, DEFAULT_AUGMENT_POLICY } from './augment/diff-augment.js';
export * from './losses/index.js';
export { buildGan, defaultGanSpec, parameterCount, runD, runG } from './models/registry.js';
export * from './models/types.js';
export {
  type ResumeOverrides,
  resumeGan,
  type TickStats,
  type TrainResult,
  trainGan,
} from './training/loop.js';
export { loadGenerator, type LoadGeneratorOptions, type RunInfo } from './training/load-run.js';
export { makePlan, parseSeeds, type GenerationPlan, type PlanSpec } from './generate/plan.js';
export { generateImages, type GeneratedBatch, type GenerateOptions } from './generate/sample.js';
export {
  readManifest,
  type SyntheticManifest,
  type WriteSetOptions,
  type WriteSetResult,
  writeSyntheticSet,
} from './generate/export.js';
export { trainCnn, type CnnOptionsInput, TrainedCnn } from './classify/cnn.js';
export type { LabelledImages, TrainedClassifier, ClassificationEvaluation } from './classify/types.js';
export { classFidelity, type ClassFidelityResult, trainJudge } from './metrics/class-fidelity.js';
export type { ProgressCallback, ProgressEvent, RunControl } from './runtime/progress.js';
export { Rng, zFromSeed } from './runtime/random.js';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './runtime/wasm-kernels.js';
