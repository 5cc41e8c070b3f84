/**
 * A study's expected run time, for `--dry-run`: what the grid will cost before hours are spent on it.
 *
 * Generators cost their budget (`minutes`, or `kimg` at a measured training rate), once per model (per class
 * with `perClassModels`) and per instance (generator × generator seed × scope). Everything else is sized by
 * rates measured on this project's 2-core reference machine (libtorch backend) at 28 px and scaled by the
 * pixel count ((size / 28)²) and by 2 / cores:
 * - GAN training ≈ 440 real images/s (a 3-minute cGAN reached 80 kimg); sampling: GANs ≈ 2000 images/s,
 *   the diffusion model ≈ 12 images/s (25 DDIM steps; a 5774-image pool took 496 s). An existing run
 *   (`run:`) costs no training but still its pool, at its own model's rate (`runModels`);
 * - the small CNN ≈ 0.4 ms per training image per epoch (study jobs of 8 epochs: 2.5–3.5 ms per training
 *   image); ResNet ×4 and VGG ×3 of it (not measured: assumed from their convolution cost);
 * - texture classifiers ≈ 2 ms (LBP + forest) and 4 ms (GLCM + LBP + logistic regression) per image
 *   (features of training and test images; assumed);
 * - an evaluation ≈ 30 s per generator instance plus the domain extractor's epochs (once, cached).
 * Early stopping makes deep jobs shorter than this bound; the figure is a planning estimate, not a promise.
 */
import os from 'node:os';
import { resolveCnnOptions, type CnnOptionsInput } from '../classify/cnn.js';
import { composeTrainingSet } from './conditions.js';
import type { StudyConfig } from './config.js';
import type { StudyJob } from './grid.js';

export interface StudyEstimate {
  readonly jobs: number;
  readonly generatorInstances: number;
  readonly generatorModels: number;
  /** Minutes by stage and in total, on this machine's cores. */
  readonly minutes: {
    readonly generators: number;
    readonly pools: number;
    readonly evaluation: number;
    readonly classifiers: number;
    readonly total: number;
  };
  readonly cores: number;
  readonly basis: string;
}

const GAN_TRAIN_IMAGES_PER_S = 440;
const SAMPLE_IMAGES_PER_S: Readonly<Record<string, number>> = { ddpm: 12 };
const GAN_SAMPLE_IMAGES_PER_S = 2000;
const CNN_SECONDS_PER_IMAGE_EPOCH = 0.0004;
const DEEP_FACTOR: Readonly<Record<string, number>> = { small: 1, resnet: 4, vgg: 3 };
const CONVENTIONAL_SECONDS_PER_IMAGE: Readonly<Record<string, number>> = {
  'lbp-rf': 0.002,
  'texture-lr': 0.004,
};
const EVALUATION_SECONDS = 30;

/**
 * The estimate for `jobs` of `config` with `trainLabels` the real train split's labels (capped as the
 * study caps it) and `testCount` its test images; `runModels` maps an existing run's directory (as the
 * config names it) to its model family.
 */
export function estimateStudy(
  config: StudyConfig,
  jobs: readonly StudyJob[],
  trainLabels: Int32Array,
  numClasses: number,
  testCount: number,
  cores = os.availableParallelism(),
  runModels: ReadonlyMap<string, string> = new Map(),
): StudyEstimate {
  const pixels = (config.size / 28) ** 2;
  const speed = 2 / Math.max(1, cores);
  const instances = new Map<string, StudyJob['instance']>();
  for (const j of jobs) if (j.instance) instances.set(j.instance.key, j.instance);
  let generatorSeconds = 0;
  let models = 0;
  let poolSeconds = 0;
  for (const inst of instances.values()) {
    if (!inst) continue;
    const train = inst.entry.train as { minutes?: number; kimg?: number; model?: string };
    let model = train.model ?? 'cgan';
    if (inst.entry.run !== undefined) {
      model = runModels.get(inst.entry.run) ?? model;
    } else {
      const perInstance = inst.entry.perClassModels ? numClasses : 1;
      models += perInstance;
      const byKimg =
        train.kimg !== undefined ? ((train.kimg * 1000) / GAN_TRAIN_IMAGES_PER_S) * pixels * speed : Infinity;
      const byMinutes = train.minutes !== undefined ? train.minutes * 60 : Infinity;
      generatorSeconds += perInstance * Math.min(byKimg, byMinutes);
    }
    const rate = SAMPLE_IMAGES_PER_S[model] ?? GAN_SAMPLE_IMAGES_PER_S;
    const demand = Math.max(
      0,
      ...jobs
        .filter((j) => j.instance?.key === inst.key)
        .map((j) =>
          composeTrainingSet(j.condition, trainLabels, numClasses, { subset: 0, order: 0 }).synthetic.reduce(
            (a, b) => a + b,
            0,
          ),
        ),
    );
    poolSeconds += (demand / rate) * pixels * speed;
  }
  const wholeSplit = [...instances.values()].filter((i) => i && i.fraction === null).length;
  const extractorEpochs = config.evaluate.extractorEpochs ?? 15;
  const evaluationSeconds = config.evaluate.enabled
    ? (wholeSplit * EVALUATION_SECONDS +
        extractorEpochs * trainLabels.length * CNN_SECONDS_PER_IMAGE_EPOCH +
        // the class-fidelity judge: one small-CNN run on the real train split
        8 * trainLabels.length * CNN_SECONDS_PER_IMAGE_EPOCH) *
      pixels *
      speed
    : 0;
  let classifierSeconds = 0;
  for (const j of jobs) {
    const comp = composeTrainingSet(j.condition, trainLabels, numClasses, { subset: 0, order: 0 });
    const n = comp.real.length + comp.synthetic.reduce((a, b) => a + b, 0);
    if (j.classifier.family === 'deep') {
      const o = resolveCnnOptions(j.classifier.options as CnnOptionsInput);
      const images = config.equalSteps ? trainLabels.length : n;
      classifierSeconds +=
        (images * o.epochs + testCount) * CNN_SECONDS_PER_IMAGE_EPOCH * (DEEP_FACTOR[o.architecture] ?? 2);
    } else {
      classifierSeconds += (n + testCount) * (CONVENTIONAL_SECONDS_PER_IMAGE[j.classifier.base] ?? 0.004);
    }
  }
  classifierSeconds *= pixels * speed;
  const minutes = (s: number) => Math.round((s / 60) * 10) / 10;
  const total = generatorSeconds + poolSeconds + evaluationSeconds + classifierSeconds;
  return {
    jobs: jobs.length,
    generatorInstances: instances.size,
    generatorModels: models,
    minutes: {
      generators: minutes(generatorSeconds),
      pools: minutes(poolSeconds),
      evaluation: minutes(evaluationSeconds),
      classifiers: minutes(classifierSeconds),
      total: minutes(total),
    },
    cores,
    basis:
      'rates measured on 2 CPU cores with libtorch at 28 px, scaled by pixels and cores; deep jobs counted at their full epochs (early stopping shortens them); see study/estimate.ts',
  };
}
