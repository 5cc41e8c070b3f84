/**
 * The training steps of the PyTorch peer benchmark (/work/shared/bench/pytorch_reference.py) as plain TF.js
 * (tfjs-layers) models, NHWC, with the same layer shapes:
 *
 *   gan28  G: z100 → dense 128·7·7 (no bias) → BN → ReLU → reshape 7×7×128 → convT 64 k4 s2 (no bias) → BN →
 *             ReLU → convT 1 k4 s2 → tanh;
 *          D: conv 64 k4 s2 → LeakyReLU .2 → conv 128 k4 s2 (no bias) → BN → LeakyReLU .2 → flatten → dense 1.
 *   gan64  the DCGAN paper's 64×64 pair, ngf = ndf = 64, one channel, no biases: G 1×1×100 → convT 512 k4 s1
 *          valid → 256/128/64 k4 s2 (BN + ReLU each) → convT 1 k4 s2 → tanh; D conv 64 k4 s2 → LeakyReLU,
 *          128/256/512 k4 s2 (BN + LeakyReLU each) → conv 1 k4 s1 valid → flatten.
 *   cls    conv 32 k3 → ReLU → conv 64 k3 → ReLU → maxpool 2 → flatten → dense 128 → ReLU → dense 10 on 28×28×1,
 *          batch 128, Adam 1e-3, softmax cross-entropy.
 *
 * A GAN step is the reference's 'same' mode: a D update on real + fake (fake from G, no gradient taken), then a
 * G update through D (only G's variables are differentiated, so D is frozen), Adam 2e-4 β = (.5, .999), BCE
 * with logits, batch 64. Models are built on the backend active when `buildStep` is called. Every initialiser
 * and input is seeded, so a step sequence is deterministic given the seed (and the backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export const MODEL_NAMES = ['gan28', 'gan64', 'cls'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

export interface StepOptions {
  /** Seeds the initialisers and the inputs. Default 1. */
  seed?: number;
  /** Images per step. Default: 64 for the GANs, 128 for cls (the reference's). */
  batch?: number;
}

export interface BenchStep {
  readonly name: ModelName;
  /** Images per step. */
  readonly batch: number;
  /** Compute FLOPs of one step (forward + backward of the convolutions and dense layers, 2 per MAC). */
  readonly flopsPerStep: number;
  /** Runs one training step; returns its loss (D loss + G loss for the GANs). Reading it waits for the step. */
  step(): number;
  /** Disposes the models, the optimizers and the fixed inputs. */
  dispose(): void;
}

/** Adam's ε in PyTorch (TF.js defaults to 1e-7). */
const ADAM_EPSILON = 1e-8;
/** PyTorch BatchNorm's ε and momentum (0.1 there is 0.9 in Keras's convention). */
const BN = { epsilon: 1e-5, momentum: 0.9 } as const;

/**
 * Hands out seeded initialisers. Weights follow PyTorch's default for Linear/Conv/ConvTranspose
 * (kaiming_uniform with a = √5, i.e. U(±1/√fan_in)): a variance-scaling uniform with scale 1/3 over fan_in,
 * which TF.js computes the same way for conv and transposed-conv kernels. Biases start at zero.
 */
class Init {
  private next: number;
  constructor(seed: number) {
    this.next = seed * 1009;
  }
  kernel(): ReturnType<typeof tfl.initializers.varianceScaling> {
    return tfl.initializers.varianceScaling({
      scale: 1 / 3,
      mode: 'fanIn',
      distribution: 'uniform',
      seed: this.next++,
    });
  }
}

/** MACs per image of each conv/dense layer, in order; forward FLOPs are 2 × batch × their sum. */
type MacList = readonly number[];

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** Forward MACs of a model. */
const fwd = (m: MacList): number => sum(m);
/** Backward MACs when its weights are trained: weight gradients everywhere, input gradients except layer 1. */
const bwdWeights = (m: MacList): number => 2 * sum(m) - (m[0] ?? 0);
/** Backward MACs when only the input gradient is needed (D frozen while G trains): every layer's input grad. */
const bwdInput = (m: MacList): number => sum(m);

/** MACs of a conv whose output is oh×ow×cout, kernel k×k over cin channels. */
const convMacs = (oh: number, ow: number, cout: number, k: number, cin: number): number =>
  oh * ow * cout * k * k * cin;
/** MACs of a transposed conv whose *input* is ih×iw×cin, kernel k×k to cout channels. */
const convTMacs = (ih: number, iw: number, cin: number, k: number, cout: number): number =>
  ih * iw * cin * k * k * cout;

/** FLOPs of one 'same'-mode GAN step for generator/discriminator MAC lists. */
function ganFlops(g: MacList, d: MacList, batch: number): number {
  const dStep = fwd(g) + 2 * fwd(d) + 2 * bwdWeights(d); // G(z) without grad; D on real and on fake
  const gStep = fwd(g) + fwd(d) + bwdInput(d) + bwdWeights(g);
  return 2 * batch * (dStep + gStep);
}

function convT(filters: number, strides: number, padding: 'same' | 'valid', useBias: boolean, init: Init) {
  return tfl.layers.conv2dTranspose({
    filters,
    kernelSize: 4,
    strides,
    padding,
    useBias,
    kernelInitializer: init.kernel(),
  });
}

function conv4(filters: number, strides: number, padding: 'same' | 'valid', useBias: boolean, init: Init) {
  return tfl.layers.conv2d({
    filters,
    kernelSize: 4,
    strides,
    padding,
    useBias,
    kernelInitializer: init.kernel(),
  });
}

const bn = () => tfl.layers.batchNormalization({ ...BN });
const lrelu = () => tfl.layers.leakyReLU({ alpha: 0.2 });
const relu = () => tfl.layers.reLU();

const MACS = {
  gan28: {
    g: [100 * 128 * 7 * 7, convTMacs(7, 7, 128, 4, 64), convTMacs(14, 14, 64, 4, 1)],
    d: [convMacs(14, 14, 64, 4, 1), convMacs(7, 7, 128, 4, 64), 128 * 7 * 7],
  },
  gan64: {
    g: [
      convTMacs(1, 1, 100, 4, 512),
      convTMacs(4, 4, 512, 4, 256),
      convTMacs(8, 8, 256, 4, 128),
      convTMacs(16, 16, 128, 4, 64),
      convTMacs(32, 32, 64, 4, 1),
    ],
    d: [
      convMacs(32, 32, 64, 4, 1),
      convMacs(16, 16, 128, 4, 64),
      convMacs(8, 8, 256, 4, 128),
      convMacs(4, 4, 512, 4, 256),
      convMacs(1, 1, 1, 4, 512),
    ],
  },
  cls: [convMacs(26, 26, 32, 3, 1), convMacs(24, 24, 64, 3, 32), 12 * 12 * 64 * 128, 128 * 10],
} as const;

const DEFAULT_BATCH: Record<ModelName, number> = { gan28: 64, gan64: 64, cls: 128 };

/** A model's images per step and compute FLOPs per step (gan28 ≈ 10.4 GFLOP, gan64 ≈ 156, cls ≈ 9.2 at the
 * default batches), without building it. */
export function stepFacts(
  name: ModelName,
  batch = DEFAULT_BATCH[name],
): { batch: number; flopsPerStep: number } {
  const flopsPerStep =
    name === 'cls'
      ? 2 * batch * (fwd(MACS.cls) + bwdWeights(MACS.cls))
      : ganFlops(MACS[name].g, MACS[name].d, batch);
  return { batch, flopsPerStep };
}

export interface GanPair {
  G: tfl.LayersModel;
  D: tfl.LayersModel;
  /** The shape of one batch of z. */
  zShape: number[];
  /** Image side. */
  size: number;
}

/** gan28's generator and discriminator (see the file comment). */
export function gan28Models(seed: number): GanPair {
  const init = new Init(seed);
  const G = tfl.sequential({
    name: 'gan28_G',
    layers: [
      tfl.layers.dense({
        inputShape: [100],
        units: 128 * 7 * 7,
        useBias: false,
        kernelInitializer: init.kernel(),
      }),
      bn(),
      relu(),
      tfl.layers.reshape({ targetShape: [7, 7, 128] }),
      convT(64, 2, 'same', false, init),
      bn(),
      relu(),
      convT(1, 2, 'same', true, init),
      tfl.layers.activation({ activation: 'tanh' }),
    ],
  });
  const D = tfl.sequential({
    name: 'gan28_D',
    layers: [
      tfl.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 64,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        kernelInitializer: init.kernel(),
      }),
      lrelu(),
      conv4(128, 2, 'same', false, init),
      bn(),
      lrelu(),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 1, kernelInitializer: init.kernel() }),
    ],
  });
  return {
    G,
    D,
    zShape: [100],
    size: 28,
  };
}

/** gan64: the DCGAN paper's pair with ngf = ndf = 64 and one channel. */
export function gan64Models(seed: number): GanPair {
  const init = new Init(seed);
  const G = tfl.sequential({
    name: 'gan64_G',
    layers: [
      tfl.layers.conv2dTranspose({
        inputShape: [1, 1, 100],
        filters: 512,
        kernelSize: 4,
        strides: 1,
        padding: 'valid',
        useBias: false,
        kernelInitializer: init.kernel(),
      }),
      bn(),
      relu(),
      ...[256, 128, 64].flatMap((f) => [convT(f, 2, 'same', false, init), bn(), relu()]),
      convT(1, 2, 'same', false, init),
      tfl.layers.activation({ activation: 'tanh' }),
    ],
  });
  const D = tfl.sequential({
    name: 'gan64_D',
    layers: [
      tfl.layers.conv2d({
        inputShape: [64, 64, 1],
        filters: 64,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: init.kernel(),
      }),
      lrelu(),
      ...[128, 256, 512].flatMap((f) => [conv4(f, 2, 'same', false, init), bn(), lrelu()]),
      conv4(1, 1, 'valid', false, init),
      tfl.layers.flatten(),
    ],
  });
  return {
    G,
    D,
    zShape: [1, 1, 100],
    size: 64,
  };
}

/** The cls classifier. */
export function clsModel(seed: number): tfl.LayersModel {
  const init = new Init(seed);
  const model = tfl.sequential({
    name: 'cls',
    layers: [
      tfl.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 32,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init.kernel(),
      }),
      tfl.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', kernelInitializer: init.kernel() }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 128, activation: 'relu', kernelInitializer: init.kernel() }),
      tfl.layers.dense({ units: 10, kernelInitializer: init.kernel() }),
    ],
  });
  return model;
}

/** The trainable variables of a model, as the optimizer wants them. */
export function trainableVars(model: tfl.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

const TRAIN = { training: true } as const;

function run(model: tfl.LayersModel, x: tf.Tensor): tf.Tensor {
  return model.apply(x, TRAIN) as tf.Tensor;
}

/** Mean binary cross-entropy with logits (TF.js's stable formula). */
function bce(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.losses.sigmoidCrossEntropy(labels, logits, undefined, 0, tf.Reduction.MEAN) as tf.Scalar;
}

function ganStep(name: ModelName, pair: GanPair, batch: number, seed: number): BenchStep {
  const { G, D, size } = pair;
  const gVars = trainableVars(G);
  const dVars = trainableVars(D);
  const optG = tf.train.adam(2e-4, 0.5, 0.999, ADAM_EPSILON);
  const optD = tf.train.adam(2e-4, 0.5, 0.999, ADAM_EPSILON);
  // The reference trains on one fixed batch of uniform noise in [-1, 1] standing in for real images.
  const real = tf.randomUniform([batch, size, size, 1], -1, 1, 'float32', seed * 7919 + 1);
  const ones = tf.ones([batch, 1]);
  const zeros = tf.zeros([batch, 1]);
  const zShape = [batch, ...pair.zShape];
  let n = 0;
  return {
    name,
    batch,
    flopsPerStep: stepFacts(name, batch).flopsPerStep,
    step() {
      const i = n++;
      const [lossD, lossG] = tf.tidy(() => {
        const z1 = tf.randomNormal(zShape, 0, 1, 'float32', seed * 7919 + 2 + 2 * i);
        const fake = run(G, z1); // no gradient is taken through it
        const lD = optD.minimize(
          () => tf.add(bce(run(D, real), ones), bce(run(D, fake), zeros)),
          true,
          dVars,
        )!;
        const z2 = tf.randomNormal(zShape, 0, 1, 'float32', seed * 7919 + 3 + 2 * i);
        const lG = optG.minimize(() => bce(run(D, run(G, z2)), ones), true, gVars)!;
        return [lD, lG];
      });
      const loss = lossD.dataSync()[0]! + lossG.dataSync()[0]!;
      lossD.dispose();
      lossG.dispose();
      return loss;
    },
    dispose() {
      G.dispose();
      D.dispose();
      optG.dispose();
      optD.dispose();
      tf.dispose([real, ones, zeros]);
    },
  };
}

function clsStep(batch: number, seed: number): BenchStep {
  const model = clsModel(seed);
  const vars = trainableVars(model);
  const opt = tf.train.adam(1e-3, 0.9, 0.999, ADAM_EPSILON);
  const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', seed * 7919 + 1);
  const y = tf.tidy(() =>
    tf.cast(
      tf.oneHot(tf.cast(tf.floor(tf.randomUniform([batch], 0, 10, 'float32', seed * 7919 + 2)), 'int32'), 10),
      'float32',
    ),
  );
  return {
    name: 'cls',
    batch,
    flopsPerStep: stepFacts('cls', batch).flopsPerStep,
    step() {
      const loss = opt.minimize(
        () => tf.losses.softmaxCrossEntropy(y, run(model, x)) as tf.Scalar,
        true,
        vars,
      )!;
      const value = loss.dataSync()[0]!;
      loss.dispose();
      return value;
    },
    dispose() {
      model.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    },
  };
}

/** Builds one model's training step on the active backend. */
export function buildStep(name: ModelName, options: StepOptions = {}): BenchStep {
  const seed = options.seed ?? 1;
  switch (name) {
    case 'gan28':
      return ganStep(name, gan28Models(seed), options.batch ?? DEFAULT_BATCH.gan28, seed);
    case 'gan64':
      return ganStep(name, gan64Models(seed), options.batch ?? DEFAULT_BATCH.gan64, seed);
    case 'cls':
      return clsStep(options.batch ?? DEFAULT_BATCH.cls, seed);
  }
}
