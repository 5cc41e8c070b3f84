/**
 * medsynth — the library. The CLI (`medsynth …`) is a thin layer over these exports.
 */
export * from './config/data-options.js';
export {
  DEFAULT_TRAIN_PRESET,
  resolveTrainOptions,
  TRAIN_PRESETS,
  trainPresetForSize,
  type TrainOptions,
  type TrainOptionsInput,
} from './config/train-options.js';
export {
  type ChannelsOption,
  Dataset,
  decideChannels,
  DEFAULT_SPLIT_POLICY,
  describeChannels,
  type LoadOptions,
  Split,
  type SplitPolicy,
} from './data/dataset.js';
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
// A run's generator in TF.js layers format (medsynth export --format tfjs; the browser in medsynth serve).
export {
  exportTfjsGenerator,
  readTfjsGenerator,
  type TfjsGeneratorExport,
  writeTfjsGenerator,
} from './generate/tfjs-export.js';
export {
  loadTfjsSampler,
  parseGeneratorMeta,
  slerp,
  type TfjsGeneratorMeta,
  tfjsSampler,
} from './generate/tfjs-generator.js';
export { trainCnn, type CnnOptionsInput, TrainedCnn } from './classify/cnn.js';
export type { LabelledImages, TrainedClassifier, ClassificationEvaluation } from './classify/types.js';
export { classFidelity, type ClassFidelityResult, trainJudge } from './metrics/class-fidelity.js';
export type { ProgressCallback, ProgressEvent, RunControl } from './runtime/progress.js';
export { Rng, zFromSeed } from './runtime/random.js';
export { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from './runtime/wasm-kernels.js';
export type { ExtractorInfo, FeatureExtractor, FeatureMatrix } from './metrics/features/types.js';
export {
  domainExtractor,
  DomainExtractorSchema,
  type DomainExtractorInput,
} from './metrics/features/domain.js';
export { loadInceptionExtractor, type InceptionOptions } from './metrics/features/inception.js';
export { frechetDistance, frechetWithSpread, type FrechetResult, gaussianStats } from './metrics/frechet.js';
export { kid, type KidResult, mmd2Unbiased } from './metrics/kid.js';
export { prdc, type Prdc } from './metrics/prdc.js';
export { msSsimDiversity, msSsimPairs, type MsSsimDiversity } from './metrics/ms-ssim.js';
export { privacyCheck, type PrivacyResult } from './metrics/privacy.js';
export { mannWhitneyU, type MannWhitneyResult } from './metrics/mann-whitney.js';
export {
  analyseProjection,
  authenticityTest,
  type ProjectionAnalysis,
  type ProjectionAnalysisOptionsInput,
  ProjectionAnalysisOptionsSchema,
  projectionFeatures,
  projectImages,
  type ProjectionOptionsInput,
  ProjectionOptionsSchema,
  type ProjectionResult,
} from './metrics/projection.js';
export {
  type ProjectionFile,
  ProjectionFileSchema,
  readProjection,
  writeProjection,
} from './metrics/projection-files.js';
export { projectRun, type ProjectRunOptions } from './metrics/projection-run.js';
export { linalgImplementation } from './metrics/linalg.js';
export {
  computeEmbedding,
  EMBEDDING_DEFAULTS,
  EMBEDDING_FILE,
  EmbeddingMapSchema,
  embeddingThumbnails,
  type EmbeddingInputSet,
  type EmbeddingMap,
  type EmbeddingOptions,
  type EmbeddingPoint,
  type EmbeddingSet,
  parseEmbeddingMap,
  pca2,
  readEmbeddingMap,
} from './metrics/embedding.js';
export { embeddingSvg, type EmbeddingSvgOptions } from './report/embedding-svg.js';
export {
  type Comparison,
  DEFAULT_METRIC_NAMES,
  METRIC_NAMES,
  METRICS,
  type MetricDefinition,
  type MetricName,
  type MetricRecord,
  type MetricSettings,
} from './metrics/registry.js';
export {
  DEFAULT_SETTINGS as DEFAULT_METRIC_SETTINGS,
  evaluateSets,
  type EvaluationInput,
  type EvaluationOptions,
  type EvaluationResult,
  type LabelledSet,
} from './metrics/evaluate.js';
export { evaluateSources, type EvaluateSourcesOptions, type SourceEvaluation } from './metrics/sources.js';
export { evaluationJson, writeEvaluation, type WrittenEvaluation } from './metrics/write-evaluation.js';
export {
  ARCHITECTURES,
  classicAugment,
  type CnnArchitecture,
  loadCnn,
  resolveCnnOptions,
} from './classify/cnn.js';
export {
  CONVENTIONAL_PRESETS,
  ConventionalClassifier,
  type ConventionalOptionsInput,
  resolveConventionalOptions,
  trainConventional,
} from './classify/conventional.js';
export { textureFeatures, type FeatureSet } from './classify/texture.js';
export { classificationMetrics, type ClassificationMetrics, rocAuc } from './classify/metrics.js';
export {
  bootstrapCi,
  holmAdjust,
  mcnemar,
  mcnemarFromCounts,
  pairedTTest,
  summarise,
} from './classify/statistics.js';
export {
  baselineOf,
  composeTrainingSet,
  type Condition,
  conditionName,
  controlsOf,
  parseCondition,
} from './study/conditions.js';
export {
  readStudyConfigFile,
  resolveStudyConfig,
  STUDY_PRESETS,
  type StudyConfig,
  type StudyConfigInput,
} from './study/config.js';
export { BUILTIN_CLASSIFIERS } from './study/classifiers.js';
export {
  estimateStudyTime,
  readStudyConfig,
  resumeStudy,
  runStudy,
  type StudyResult,
  studyJobs,
} from './study/runner.js';
export { type StudyEstimate } from './study/estimate.js';
export { perClassGenerator } from './generate/per-class.js';
export { type JobRow, StudyStore } from './study/store.js';
// Studies across machines (BullMQ + Redis workers, an artifact store every worker reaches).
export { type QueueSettings, QUEUE_LOG } from './study/queued.js';
export { runWorker, type WorkerResult, type WorkerSetup } from './queue/worker.js';
export { artifactKey, type ArtifactStore, openArtifactStore } from './queue/artifacts.js';
export { studyHash } from './queue/protocol.js';
export { judgeEffect, type StudySummary, summariseStudy } from './study/summary.js';
export { buildReport, loadStudyReport, REPORT_FILE, writeReport } from './report/index.js';
// Federated training (one generator, many institutions, no pooled images).
export {
  type CoordinatorSetup,
  type FederationResult,
  readRounds,
  type RoundRecord,
  runCoordinator,
} from './federated/coordinator.js';
export { runSite, type SiteResult, type SiteSetup } from './federated/site.js';
export { partitionIds, simulate, type SimulationResult, type SimulationSetup } from './federated/simulate.js';
export {
  type FederationOptions,
  type FederationOptionsInput,
  resolveFederationOptions,
} from './federated/options.js';
export { chooseParticipants, fedAvg, screenUpdates, serverStep } from './federated/strategy.js';
export { addSiteCertificate, makeCertificates } from './federated/certs.js';
export { channelCredentials, serverCredentials } from './federated/tls.js';
export {
  compareFederated,
  type FederatedComparison,
  type FederatedCompareSetup,
} from './study/federated-compare.js';
// Reader study (blinded visual Turing test, `medsynth serve`): statistics over answers, a folder's results.
export {
  binomialTestHalf,
  clopperPearsonInterval,
  cohenKappa,
  fleissKappa,
  type ReaderAnswer,
  type ReaderItem,
  readerStudyStats,
  type ReaderStudyStats,
  wilsonInterval,
} from './study/reader-stats.js';
export { readerStudyResults, readReaderStudy } from './serve/reader/results.js';
