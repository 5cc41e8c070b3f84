/**
 * The standard FID feature space: an ImageNet Inception-v3 network (usually its 2048-d `pool_3` output),
 * loaded from TF.js files on disk — a tfjs-converter graph model or a tfjs-layers model. medsynth ships no
 * weights: docs/inception-weights.md says how to obtain and convert them. Any other network in one of
 * these formats works too; it is then described as a user-supplied network.
 *
 * Images reach the network through `prepareBatch` (gray → RGB, bilinear resize, value range), the path every
 * extractor shares, so real and fake images are treated identically.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageArray } from '../../data/types.js';
import { ConfigError, DatasetError, MedsynthError } from '../../runtime/errors.js';
import { type RunControl, throwIfAborted } from '../../runtime/progress.js';
import { type ModelFiles, modelFilesHandler, readModelFiles } from './model-files.js';
import { describePreparation, type PrepareSpec, prepareBatch } from './prepare.js';
import type { ExtractorInfo, FeatureExtractor, FeatureMatrix } from './types.js';

export interface InceptionOptions {
  /**
   * The node (graph model: node name, optionally `name:k`) or layer (Layers model) whose output are the
   * features. Default: the model's single output.
   */
  readonly outputNode?: string | undefined;
  /**
   * Graph models only: the node the images are fed to. Default: the model's single input. For the TF FID
   * graph (whose own input is a JPEG string) this is `ExpandDims` — see docs/inception-weights.md.
   */
  readonly inputNode?: string | undefined;
  /** Side of the square network input. Default: the model's own fixed input size, else 299. */
  readonly inputSize?: number | undefined;
  /** The value range the network expects its input in. Default [-1, 1]. */
  readonly range?: readonly [number, number] | undefined;
  /** Images per forward pass. Default 32. */
  readonly batchSize?: number | undefined;
}

export const DEFAULT_INCEPTION_SIZE = 299;
const DEFAULT_BATCH = 32;
/** Node or layer names most listed in an error message. */
const MAX_LISTED = 40;

/** What both model kinds offer the extractor. */
interface Network {
  /** Resolved name of the output the features come from. */
  readonly outputNode: string;
  /** Resolved input node (graph models) — part of the cache key. */
  readonly inputNode?: string;
  /** `[height, width, channels]` of the input when the model fixes them (null = free). */
  readonly inputDims: readonly [number | null, number | null, number | null];
  /** Every node or layer name (to recognise Inception-v3). */
  readonly names: readonly string[];
  run(x: tf.Tensor4D): tf.Tensor;
  dispose(): void;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED).join(', ');
  return names.length > MAX_LISTED ? `${shown}, … (${names.length - MAX_LISTED} more)` : shown;
}

function baseName(node: string): string {
  return node.replace(/:\d+$/, '');
}

function dimOrNull(d: number | null | undefined): number | null {
  return typeof d === 'number' && d > 0 ? d : null;
}

function graphNetwork(model: GraphModel, files: ModelFiles, options: InceptionOptions): Network {
  const topology = files.artifacts.modelTopology as { node?: { name?: string; op?: string }[] } | undefined;
  const nodes = (topology?.node ?? []).filter(
    (n): n is { name: string; op?: string } => typeof n.name === 'string',
  );
  const names = nodes.map((n) => n.name);
  const known = new Set(names);
  const computed = nodes.filter((n) => n.op !== 'Const' && n.op !== 'Placeholder').map((n) => n.name);

  let inputNode = options.inputNode;
  if (inputNode === undefined) {
    if (model.inputNodes.length !== 1)
      throw new ConfigError('the graph model has several inputs; say which one takes the images', {
        file: files.jsonPath,
        field: 'inputNode',
        found: model.inputNodes.join(', '),
      });
    inputNode = model.inputNodes[0]!;
  } else if (!known.has(baseName(inputNode))) {
    throw new ConfigError(`unknown input node "${inputNode}"`, {
      file: files.jsonPath,
      field: 'inputNode',
      expected: `one of ${listNames(model.inputNodes)} (or any node: ${listNames(computed)})`,
    });
  }
  const inputInfo = model.inputs.find((i) => baseName(i.name) === baseName(inputNode));
  if (inputInfo !== undefined && inputInfo.dtype !== 'float32')
    throw new ConfigError(`input node "${inputNode}" takes ${inputInfo.dtype}, not image tensors`, {
      file: files.jsonPath,
      field: 'inputNode',
      expected: 'a float32 node fed with [n, h, w, c] images (for the TF FID graph: ExpandDims)',
      found: inputInfo.dtype,
    });

  let outputNode = options.outputNode;
  if (outputNode === undefined) {
    if (model.outputNodes.length !== 1)
      throw new ConfigError('the graph model has several outputs; say which one holds the features', {
        file: files.jsonPath,
        field: 'outputNode',
        expected: `one of ${listNames(model.outputNodes)}`,
      });
    outputNode = model.outputNodes[0]!;
  } else if (!known.has(baseName(outputNode))) {
    throw new ConfigError(`unknown output node "${outputNode}"`, {
      file: files.jsonPath,
      field: 'outputNode',
      expected: `a node of the graph: ${listNames(computed)}`,
    });
  }

  const shape = inputInfo?.shape;
  const feed = inputNode;
  const fetch = outputNode;
  return {
    outputNode,
    inputNode,
    inputDims: [dimOrNull(shape?.[1]), dimOrNull(shape?.[2]), dimOrNull(shape?.[3])],
    names,
    run: (x) => {
      const y = model.execute({ [feed]: x }, fetch);
      return Array.isArray(y) ? y[0]! : y;
    },
    dispose: () => model.dispose(),
  };
}

function layersNetwork(model: tfl.LayersModel, files: ModelFiles, options: InceptionOptions): Network {
  const names = model.layers.map((l) => l.name);
  if (model.inputs.length !== 1)
    throw new ConfigError('the Layers model must have exactly one input', {
      file: files.jsonPath,
      found: `${model.inputs.length} inputs`,
    });
  let net: tfl.LayersModel = model;
  let outputNode: string;
  if (options.outputNode === undefined) {
    if (model.outputs.length !== 1)
      throw new ConfigError('the Layers model has several outputs; say which layer holds the features', {
        file: files.jsonPath,
        field: 'outputNode',
        expected: `one of ${listNames(model.outputs.map((o) => o.sourceLayer.name))}`,
      });
    outputNode = model.outputs[0]!.sourceLayer.name;
  } else {
    outputNode = options.outputNode;
    const layer = model.layers.find((l) => l.name === outputNode);
    if (layer === undefined)
      throw new ConfigError(`unknown output layer "${outputNode}"`, {
        file: files.jsonPath,
        field: 'outputNode',
        expected: `a layer of the model: ${listNames(names)}`,
      });
    const out = layer.output;
    if (Array.isArray(out))
      throw new ConfigError(`layer "${outputNode}" has several outputs`, {
        file: files.jsonPath,
        field: 'outputNode',
      });
    if (out !== model.outputs[0]) net = tfl.model({ inputs: model.inputs, outputs: out });
  }
  const shape = model.inputs[0]!.shape;
  return {
    outputNode,
    inputDims: [dimOrNull(shape[1]), dimOrNull(shape[2]), dimOrNull(shape[3])],
    names,
    run: (x) => {
      const y = net.predict(x);
      return Array.isArray(y) ? y[0]! : y;
    },
    // The sub-model shares the base model's layers: disposing the base frees every weight.
    dispose: () => model.dispose(),
  };
}

async function loadNetwork(files: ModelFiles, options: InceptionOptions): Promise<Network> {
  const handler = modelFilesHandler(files);
  let network: Network | undefined;
  if (files.format === 'graph-model') {
    let model: GraphModel;
    try {
      model = await loadGraphModel(handler);
    } catch (e) {
      throw new DatasetError('cannot build the graph model from its files', {
        file: files.jsonPath,
        cause: e,
      });
    }
    try {
      network = graphNetwork(model, files, options);
    } finally {
      if (network === undefined) model.dispose();
    }
  } else {
    let model: tfl.LayersModel;
    try {
      model = await tfl.loadLayersModel(handler);
    } catch (e) {
      throw new DatasetError('cannot build the Layers model from its files', {
        file: files.jsonPath,
        cause: e,
      });
    }
    try {
      network = layersNetwork(model, files, options);
    } finally {
      if (network === undefined) model.dispose();
    }
  }
  return network;
}

function checkOptions(options: InceptionOptions): void {
  const { inputSize, batchSize, range } = options;
  if (inputSize !== undefined && !(Number.isInteger(inputSize) && inputSize >= 1))
    throw new ConfigError('inputSize must be a positive integer', {
      field: 'inputSize',
      found: String(inputSize),
    });
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1))
    throw new ConfigError('batchSize must be a positive integer', {
      field: 'batchSize',
      found: String(batchSize),
    });
  if (
    range !== undefined &&
    !(range.length === 2 && Number.isFinite(range[0]) && Number.isFinite(range[1]) && range[0] < range[1])
  )
    throw new ConfigError('range must be two finite numbers [low, high] with low < high', {
      field: 'range',
      found: JSON.stringify(range),
    });
}

/** The input `[h, w, c]`: the model's fixed size where it has one (checked against `inputSize`), else inputSize/299. */
function resolveInputShape(
  dims: Network['inputDims'],
  inputSize: number | undefined,
  file: string,
): readonly [number, number, 1 | 3] {
  const [mh, mw, mc] = dims;
  if (inputSize !== undefined && ((mh !== null && mh !== inputSize) || (mw !== null && mw !== inputSize)))
    throw new ConfigError('inputSize differs from the size the model was built for', {
      file,
      field: 'inputSize',
      expected: `${mh ?? '?'}×${mw ?? '?'}`,
      found: `${inputSize}`,
    });
  const h = mh ?? inputSize ?? DEFAULT_INCEPTION_SIZE;
  const w = mw ?? inputSize ?? DEFAULT_INCEPTION_SIZE;
  if (mc !== null && mc !== 1 && mc !== 3)
    throw new ConfigError('the model does not take 1- or 3-channel images', {
      file,
      field: 'inputShape',
      found: `${mc} channels`,
    });
  return [h, w, mc ?? 3];
}

/** Rows and features of one output tensor, or a ConfigError when it is not `[n, …]`. */
function featureDim(shape: readonly number[], n: number, node: string, file: string): number {
  const dim = shape.slice(1).reduce((a, b) => a * b, 1);
  if (shape.length < 2 || shape[0] !== n || !(dim > 0))
    throw new ConfigError(`output "${node}" is not [images, features] after flattening`, {
      file,
      field: 'outputNode',
      expected: `[${n}, …] for a batch of ${n}`,
      found: `[${shape.join(', ')}]`,
    });
  return dim;
}

/** An ImageNet Inception-v3 (or the user's own) network as a `FeatureExtractor`. */
class InceptionExtractor implements FeatureExtractor {
  #network: Network | undefined;

  constructor(
    network: Network,
    readonly info: ExtractorInfo,
    private readonly spec: PrepareSpec,
    private readonly batchSize: number,
    private readonly file: string,
  ) {
    this.#network = network;
  }

  async features(images: ImageArray, control?: RunControl): Promise<FeatureMatrix> {
    const network = this.#network;
    if (network === undefined)
      throw new MedsynthError('the feature extractor was disposed', { file: this.file });
    const total = images.count;
    if (total === 0)
      throw new DatasetError('no images to compute features of', {
        field: 'images',
        expected: 'at least 1 image',
        found: '0',
      });
    const { dim } = this.info;
    const data = new Float32Array(total * dim);
    for (let start = 0; start < total; start += this.batchSize) {
      throwIfAborted(control?.signal);
      const end = Math.min(total, start + this.batchSize);
      const n = end - start;
      const indices = Array.from({ length: n }, (_, i) => start + i);
      const y = tf.tidy(() => {
        const out = network.run(prepareBatch(images, indices, this.spec));
        const d = featureDim(out.shape, n, network.outputNode, this.file);
        if (d !== dim)
          throw new ConfigError(`output "${network.outputNode}" changed size between batches`, {
            file: this.file,
            field: 'outputNode',
            expected: `${dim} features`,
            found: `${d}`,
          });
        return tf.reshape(tf.cast(out, 'float32'), [n, dim]);
      });
      try {
        data.set((await y.data()) as Float32Array, start * dim);
      } finally {
        y.dispose();
      }
      control?.onProgress?.({ type: 'tick', phase: 'features', done: end, total, unit: 'img' });
    }
    return { data, rows: total, cols: dim };
  }

  dispose(): void {
    this.#network?.dispose();
    this.#network = undefined;
  }
}

/**
 * Loads a TF.js model from `modelPath` (a folder with model.json, or the model.json) as a feature extractor.
 * The features are the `outputNode` output flattened to `[N, dim]` (FID's pool_3 `[N, 1, 1, 2048]` →
 * `[N, 2048]`); `dim` is found by running a batch of two blank images at load time.
 * Errors: missing/corrupt files → `DatasetError` naming the file; bad options, unknown nodes, outputs that
 * are not one feature vector per image → `ConfigError` naming the field.
 */
export async function loadInceptionExtractor(
  modelPath: string,
  options: InceptionOptions = {},
): Promise<FeatureExtractor> {
  checkOptions(options);
  const files = await readModelFiles(modelPath);
  const network = await loadNetwork(files, options);
  try {
    const inputShape = resolveInputShape(network.inputDims, options.inputSize, files.jsonPath);
    const range = options.range ?? ([-1, 1] as const);
    const spec: PrepareSpec = { inputShape, range: [range[0], range[1]] };

    const probeShape = tf.tidy(
      () => network.run(tf.zeros([2, inputShape[0], inputShape[1], inputShape[2]])).shape,
    );
    const dim = featureDim(probeShape, 2, network.outputNode, files.jsonPath);

    const key = createHash('sha256')
      .update(files.jsonBytes)
      .update(new Uint8Array(files.artifacts.weightData))
      .update(
        JSON.stringify({
          inputNode: network.inputNode ?? null,
          outputNode: network.outputNode,
          inputShape,
          range: spec.range,
        }),
      )
      .digest('hex')
      .slice(0, 16);

    const inception = dim === 2048 && network.names.some((n) => /^mixed_?10(\/|$)/.test(n));
    const where = `loaded from ${files.jsonPath} (features of the \`${network.outputNode}\` ${
      files.format === 'graph-model' ? 'node' : 'layer'
    }, ${dim}-d)`;
    const info: ExtractorInfo = {
      kind: 'inception',
      key: `inception:${key}`,
      dim,
      inputShape,
      description: inception
        ? `ImageNet Inception-v3 network ${where}`
        : `user-supplied network ${where}; not recognisably ImageNet Inception-v3`,
      preprocessing: describePreparation(spec),
    };
    return new InceptionExtractor(network, info, spec, options.batchSize ?? DEFAULT_BATCH, files.jsonPath);
  } catch (e) {
    network.dispose();
    throw e;
  }
}
