/**
 * The two halves of a StyleGAN2 generator (stylegan2.ts), G = synthesis ∘ mapping, as separate functions over
 * the trained G's own layers (no copy of any weight): what latent projection needs to optimise w directly.
 *
 * - `mapping(z, labels)`: w = mapping network(z, y) `[N, wDim]`, before the tracked-mean layer (`WAverage`), so
 *   without truncation.
 * - `meanW(labels)`: the tracked mean w̄_y of each row's class `[N, wDim]` (w̄ for an unconditional G).
 * - `synthesis(w)`: the images `[N, S, S, C]` for w, with the noise inputs G's inference calls use (each noise
 *   layer's constant buffer while its training seed is null, as `loadGenerator` leaves it).
 *
 * Both run G's graph eagerly from a fed tensor (`runGraph`): the nodes whose inputs are all known are called in
 * depth order, as tfjs-layers' own `Container.runInternalGraph` does, so synthesis(mapping(z, y)) is G(z, y)
 * at ψ = 1 and gradients reach the fed tensor. Nothing is applied symbolically, so G's layers gain no inbound
 * nodes and no references (`G.dispose()` still frees every weight).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { wAverageLayer } from './stylegan2.js';
import type { StyleSpace } from './types.js';

type Symbolic = tfl.SymbolicTensor;

/**
 * Runs `model`'s graph eagerly from `feeds` (symbolic tensor → value) up to `target`, in inference mode. Nodes
 * with an input that is neither fed nor computed are skipped (e.g. the mapping when w is fed). Call inside
 * `tf.tidy`: every intermediate tensor is left to the caller's scope.
 */
export function runGraph(
  model: tfl.LayersModel,
  feeds: ReadonlyMap<Symbolic, tf.Tensor>,
  target: Symbolic,
): tf.Tensor {
  const values = new Map<number, tf.Tensor>();
  for (const [s, v] of feeds) values.set(s.id, v);
  const depths = Object.keys(model.nodesByDepth)
    .map(Number)
    .sort((a, b) => b - a);
  for (const depth of depths) {
    for (const node of model.nodesByDepth[depth]!) {
      if (node.outputTensors.every((t) => values.has(t.id))) continue; // fed, or an input layer
      if (node.inputTensors.length === 0) continue;
      const inputs = node.inputTensors.map((t) => values.get(t.id));
      if (inputs.some((t) => t === undefined)) continue;
      const list = inputs as tf.Tensor[];
      const out = node.outboundLayer.apply(list.length === 1 ? list[0]! : list, {
        ...(node.callArgs ?? {}),
        training: false,
      }) as tf.Tensor | tf.Tensor[];
      const outs = Array.isArray(out) ? out : [out];
      node.outputTensors.forEach((t, i) => values.set(t.id, outs[i]!));
      const value = values.get(target.id);
      if (value) return value;
    }
  }
  const value = values.get(target.id);
  if (!value) throw new RangeError(`runGraph: '${target.name}' cannot be computed from the fed tensors`);
  return value;
}

/** The mapping / synthesis halves of a StyleGAN2 G (see the module comment). G stays the caller's. */
export function styleSpaceOf(G: tfl.LayersModel, conditional: boolean): StyleSpace {
  const wavg = wAverageLayer(G);
  const node = wavg.inboundNodes[0];
  if (!node || wavg.inboundNodes.length !== 1)
    throw new RangeError(`model '${G.name}': its WAverage layer must be used exactly once`);
  const wIn = node.inputTensors[0]!;
  const wOut = node.outputTensors[0]!;
  const wDim = wIn.shape[1];
  if (typeof wDim !== 'number') throw new RangeError(`model '${G.name}': w has no fixed size`);
  const [zInput, labelInput] = G.inputs;
  const output = G.outputs[0]!;
  return {
    wDim,
    mapping(z, labels) {
      const feeds = new Map<Symbolic, tf.Tensor>([[zInput!, z]]);
      if (conditional) {
        if (!labels) throw new RangeError('mapping: a conditional generator needs labels');
        feeds.set(labelInput!, labels);
      }
      return runGraph(G, feeds, wIn) as tf.Tensor2D;
    },
    meanW(labels, n) {
      return tf.tidy(() => {
        const avg = wavg.mean();
        if (conditional && labels) return tf.gather(avg, labels);
        return tf.tile(tf.slice(avg, [0, 0], [1, -1]), [n, 1]) as tf.Tensor2D;
      });
    },
    synthesis(w) {
      return runGraph(G, new Map([[wOut, w]]), output) as tf.Tensor4D;
    },
  };
}
