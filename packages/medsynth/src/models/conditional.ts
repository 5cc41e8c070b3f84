/**
 * The class-conditional families, on the skeleton of dcgan.ts. G is the same for both: a label embedding
 * concatenated to z.
 *
 * - `cgan`: D sees the label too. `projection` (Miyato & Koyama 2018): logit = dense(h) + Σ embed(y) ⊙ h, h D's
 *   pooled features. `concat`: the label embedded to an S×S×1 map concatenated to the image as an extra
 *   channel (the classic conditional DCGAN, as the PyTorch peer).
 * - `acgan` (Odena et al. 2017): D sees only the image and has two heads, real/fake logits `[N, 1]` and class
 *   logits `[N, K]`.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import {
  adversarialHead,
  type ArchitectureOptions,
  buildGenerator,
  DEFAULT_ARCHITECTURE,
  dDense,
  discriminatorTrunk,
  embeddingInit,
  imageInput,
} from './dcgan.js';
import { ConditionScale, LabelProjection, subSeed } from './layers.js';
import type { GanNetworks, GanSpec } from './types.js';

type SymbolicTensor = tfl.SymbolicTensor;

function labelInput(name: string): SymbolicTensor {
  return tfl.input({ batchShape: [null], dtype: 'int32', name });
}

/** cgan: G `[z, labels]`; D `[x, labels]` → logits `[N, 1]`, conditioned by projection or a label map. */
export function buildCgan(spec: GanSpec, arch: ArchitectureOptions = DEFAULT_ARCHITECTURE): GanNetworks {
  const G = buildGenerator(spec, arch);
  const x = imageInput(spec);
  const labels = labelInput('d_labels');
  let logits: SymbolicTensor;
  if (spec.conditioning === 'projection') {
    const h = discriminatorTrunk(spec, x, labels);
    const unconditional = adversarialHead(spec, h);
    const projection = new LabelProjection({
      numClasses: spec.numClasses,
      spectralNorm: spec.spectralNorm,
      seed: subSeed(spec.seed, 'd_proj_embed'),
      name: 'd_proj_embed',
    }).apply([h, labels]) as SymbolicTensor;
    const term = spec.transitional
      ? (new ConditionScale({ name: 'd_cond_scale' }).apply(projection) as SymbolicTensor)
      : projection;
    logits = tfl.layers.add({ name: 'd_logits' }).apply([unconditional, term]) as SymbolicTensor;
  } else {
    const side = spec.size;
    const code = tfl.layers
      .embedding({
        inputDim: spec.numClasses,
        outputDim: side * side,
        embeddingsInitializer: embeddingInit(spec, 'd_label_embed'),
        name: 'd_label_embed',
      })
      .apply(labels) as SymbolicTensor;
    const raw = tfl.layers
      .reshape({ targetShape: [side, side, 1], name: 'd_label_map' })
      .apply(code) as SymbolicTensor;
    const map = spec.transitional
      ? (new ConditionScale({ name: 'd_cond_scale' }).apply(raw) as SymbolicTensor)
      : raw;
    const input = tfl.layers.concatenate({ axis: -1, name: 'd_concat' }).apply([x, map]) as SymbolicTensor;
    logits = adversarialHead(spec, discriminatorTrunk(spec, input, labels));
  }
  const D = tfl.model({ inputs: [x, labels], outputs: logits, name: 'D' });
  return { spec, G, D };
}

/** acgan: G `[z, labels]`; D `[x]` → `[logits [N, 1], class logits [N, K]]`. */
export function buildAcgan(spec: GanSpec, arch: ArchitectureOptions = DEFAULT_ARCHITECTURE): GanNetworks {
  const G = buildGenerator(spec, arch);
  const x = imageInput(spec);
  const h = discriminatorTrunk(spec, x);
  const logits = adversarialHead(spec, h);
  const classLogits = dDense(spec, 'd_class', spec.numClasses).apply(h) as SymbolicTensor;
  const D = tfl.model({ inputs: x, outputs: [logits, classLogits], name: 'D' });
  return { spec, G, D };
}
