/**
 * Network builders of the deep classifiers (classify/cnn.ts trains them). Each builds a `body` (image →
 * features `[N, C]`, the penultimate layer that `features`/`embed` return) and a `head` (features → logits,
 * one dense layer); the trainer puts dropout between them. Inputs are float32 NHWC in [-1, 1], 1 or 3
 * channels, at the size the images come in. Every conv is bias-free, He-normal initialised and followed by
 * batch norm; dense layers are Glorot-uniform; every initialiser is seeded from one `init` stream, in
 * layer order, so the same seed gives the same initial weights.
 *
 * - `small` — `blocks` (auto: clamp(⌊log2(s/7)⌋, 2, 4), s = the shorter side) blocks of
 *   [conv3×3 → BN → ReLU] ×2 → maxpool 2×2, `width`·2^b channels in block b → global average pool.
 * - `resnet` — ResNet-18 style: stem conv3×3 → BN → ReLU (stride 1; stride 2 when s > 64, which stands in
 *   for ImageNet's 7×7/2 conv + maxpool at 96–128 px), then `blocks` (auto: 4) stages of 2 BasicBlocks
 *   [conv3×3 → BN → ReLU → conv3×3 → BN, + shortcut, → ReLU] with `width`·2^i channels in stage i; stages
 *   after the first start with stride 2 and a 1×1/2 conv → BN projection shortcut; the rest are identity.
 *   → global average pool. Width 16 has ~0.70 M parameters (ResNet-18's 11.2 M at width 64, over 16).
 * - `vgg` — VGG style: `blocks` (auto: clamp(⌈log2(s/4)⌉, 2, 6): 28–32 px → 3, 64 → 4, 128 → 5, so the last
 *   map is about 4×4) stages of [conv3×3 → BN → ReLU] ×2 → maxpool 2×2, `width`·2^min(b, 3) channels in
 *   stage b (capped at 8·width, as VGG caps at 512), then VGG's classifier: flatten (keeps where on the
 *   image a feature is) → dense 8·width → ReLU. The head is the final dense layer.
 *
 * Why VGG rather than DenseNet: at 28–128 px with a few thousand images both do about as well, but a
 * DenseNet's growing concatenations and ~3 BN layers per conv make it memory-bound and slow on the CPU
 * backends for its accuracy, and VGG's plain conv stack with a fully-connected classifier is the more
 * different third member next to a (GAP-headed) small CNN and ResNet.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../runtime/random.js';

export const ARCHITECTURES = ['small', 'resnet', 'vgg'] as const;
export type CnnArchitecture = (typeof ARCHITECTURES)[number];

export interface CnnNetworks {
  /** Image → penultimate features `[N, C]`. A `tfl.Sequential` (small, vgg) or a functional model (resnet). */
  readonly body: tfl.LayersModel;
  /** Features → logits `[N, K]`. */
  readonly head: tfl.Sequential;
}

/** What a network is built from. */
export interface NetworkSpec {
  readonly architecture: CnnArchitecture;
  /** `[height, width, channels]` of the images. */
  readonly inputShape: readonly [number, number, 1 | 3];
  readonly numClasses: number;
  /** Base width: channels of the first block or stage. */
  readonly width: number;
  /** Blocks (small) or stages (resnet, vgg), resolved (see `resolveBlocks`). */
  readonly blocks: number;
  /** Root seed; initialisers draw from its `init` sub-stream. */
  readonly seed: number;
}

/** Small CNN: conv blocks for an image side, clamp(⌊log2(side/7)⌋, 2, 4). */
export function autoBlocks(height: number, width: number): number {
  const side = Math.min(height, width);
  return Math.min(4, Math.max(2, Math.floor(Math.log2(side / 7))));
}

/** VGG: stages for an image side, clamp(⌈log2(side/4)⌉, 2, 6) — the last map is about 4×4. */
export function autoVggStages(height: number, width: number): number {
  const side = Math.min(height, width);
  return Math.min(6, Math.max(2, Math.ceil(Math.log2(side / 4) - 1e-9)));
}

/** ResNet: ResNet-18's 4 stages at every size. */
export const RESNET_STAGES = 4;

/** Blocks (small) or stages (resnet, vgg) of an architecture for `blocks` ('auto' or a number) at an image size. */
export function resolveBlocks(
  architecture: CnnArchitecture,
  blocks: 'auto' | number,
  height: number,
  width: number,
): number {
  if (blocks !== 'auto') return blocks;
  if (architecture === 'resnet') return RESNET_STAGES;
  if (architecture === 'vgg') return autoVggStages(height, width);
  return autoBlocks(height, width);
}

/** ResNet stem stride at an image size: 2 when the shorter side exceeds 64 px, else 1. */
export function resnetStemStride(height: number, width: number): 1 | 2 {
  return Math.min(height, width) > 64 ? 2 : 1;
}

/** Draws the next initialiser seed. */
type SeedFn = () => number;

/** A seeded He-normal conv, 'same' padding (no bias; batch norm follows). */
function conv(seed: SeedFn, filters: number, kernelSize: number, strides = 1): tfl.layers.Layer {
  return tfl.layers.conv2d({
    filters,
    kernelSize,
    strides,
    padding: 'same',
    useBias: false,
    kernelInitializer: tfl.initializers.heNormal({ seed: seed() }),
  });
}

// Momentum 0.9 (PyTorch's 0.1): running statistics settle within a few dozen steps, so even a briefly
// trained classifier predicts well in inference mode.
const batchNorm = () => tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });

function denseHead(seed: SeedFn, features: number, numClasses: number): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [features],
        units: numClasses,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed() }),
      }),
    ],
  });
}

function buildSmall(spec: NetworkSpec, seed: SeedFn): CnnNetworks {
  const body = tfl.sequential();
  let channels = spec.width;
  for (let b = 0; b < spec.blocks; b++) {
    for (let j = 0; j < 2; j++) {
      body.add(
        tfl.layers.conv2d({
          ...(b === 0 && j === 0 ? { inputShape: [...spec.inputShape] } : {}),
          filters: channels,
          kernelSize: 3,
          padding: 'same',
          useBias: false,
          kernelInitializer: tfl.initializers.heNormal({ seed: seed() }),
        }),
      );
      body.add(batchNorm());
      body.add(tfl.layers.reLU());
    }
    body.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }));
    if (b < spec.blocks - 1) channels *= 2;
  }
  body.add(tfl.layers.globalAveragePooling2d({}));
  return { body, head: denseHead(seed, channels, spec.numClasses) };
}

/** conv3×3/s → BN → ReLU → conv3×3 → BN, plus identity or 1×1/s conv → BN shortcut, → ReLU. */
function basicBlock(
  x: tfl.SymbolicTensor,
  inChannels: number,
  channels: number,
  strides: number,
  seed: SeedFn,
): tfl.SymbolicTensor {
  const apply = (layer: tfl.layers.Layer, t: tfl.SymbolicTensor) => layer.apply(t) as tfl.SymbolicTensor;
  let y = apply(conv(seed, channels, 3, strides), x);
  y = apply(batchNorm(), y);
  y = apply(tfl.layers.reLU(), y);
  y = apply(conv(seed, channels, 3), y);
  y = apply(batchNorm(), y);
  let shortcut = x;
  if (strides !== 1 || inChannels !== channels) {
    shortcut = apply(conv(seed, channels, 1, strides), x);
    shortcut = apply(batchNorm(), shortcut);
  }
  const sum = tfl.layers.add().apply([y, shortcut]) as tfl.SymbolicTensor;
  return apply(tfl.layers.reLU(), sum);
}

function buildResnet(spec: NetworkSpec, seed: SeedFn): CnnNetworks {
  const [h, w] = spec.inputShape;
  const input = tfl.input({ shape: [...spec.inputShape] });
  let x = tfl.layers
    .conv2d({
      filters: spec.width,
      kernelSize: 3,
      strides: resnetStemStride(h, w),
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: seed() }),
    })
    .apply(input) as tfl.SymbolicTensor;
  x = batchNorm().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  let channels = spec.width;
  for (let s = 0; s < spec.blocks; s++) {
    const out = spec.width * 2 ** s;
    x = basicBlock(x, channels, out, s === 0 ? 1 : 2, seed);
    x = basicBlock(x, out, out, 1, seed);
    channels = out;
  }
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const body = tfl.model({ inputs: input, outputs: pooled });
  return { body, head: denseHead(seed, channels, spec.numClasses) };
}

function buildVgg(spec: NetworkSpec, seed: SeedFn): CnnNetworks {
  const body = tfl.sequential();
  body.add(tfl.layers.inputLayer({ inputShape: [...spec.inputShape] }));
  for (let b = 0; b < spec.blocks; b++) {
    const channels = spec.width * 2 ** Math.min(b, 3);
    for (let j = 0; j < 2; j++) {
      body.add(conv(seed, channels, 3));
      body.add(batchNorm());
      body.add(tfl.layers.reLU());
    }
    body.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }));
  }
  body.add(tfl.layers.flatten());
  const hidden = 8 * spec.width;
  body.add(
    tfl.layers.dense({
      units: hidden,
      activation: 'relu',
      kernelInitializer: tfl.initializers.heNormal({ seed: seed() }),
    }),
  );
  return { body, head: denseHead(seed, hidden, spec.numClasses) };
}

/** Builds the body and head of `spec.architecture`, with seeded initial weights. */
export function buildNetworks(spec: NetworkSpec): CnnNetworks {
  const init = Rng.derive(spec.seed, 'init');
  const seed = () => init.int(2 ** 31 - 1);
  switch (spec.architecture) {
    case 'small':
      return buildSmall(spec, seed);
    case 'resnet':
      return buildResnet(spec, seed);
    case 'vgg':
      return buildVgg(spec, seed);
  }
}
