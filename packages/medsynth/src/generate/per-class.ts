/**
 * One class-conditional generator over K single-class models (a study's `perClassModels`: each model is
 * unconditional and trained on one class's images only, as in the chest X-ray and lymph-node study).
 *
 * `generate(z, labels)` routes each row to its class's model: image i is model_{y_i}(z_i, ψ), exactly the
 * image that model makes for z_i alone (rows of one class go through their model as one batch, then the
 * images are put back in the input order). So a seed gives the same image whether the class is sampled on
 * its own or mixed with others, and sampling, grids, `generateImages` and the evaluation work unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SamplingGenerator } from '../models/types.js';

/** `models[k]` makes class k (`classNames[k]`); all must share size, channels, z size and truncation kind. */
export function perClassGenerator(
  models: readonly SamplingGenerator[],
  classNames: readonly string[],
): SamplingGenerator {
  const first = models[0];
  if (!first || models.length !== classNames.length)
    throw new RangeError(`perClassGenerator: ${models.length} models for ${classNames.length} classes`);
  for (const [k, m] of models.entries()) {
    const differs = (['size', 'channels', 'zDim', 'truncation'] as const).find(
      (key) => m[key] !== first[key],
    );
    if (differs !== undefined)
      throw new RangeError(
        `perClassGenerator: the model of ${classNames[k]} has another ${differs} (${String(m[differs])}) than the first (${String(first[differs])})`,
      );
    if (m.conditional)
      throw new RangeError(`perClassGenerator: the model of ${classNames[k]} is class-conditional`);
  }
  return {
    zDim: first.zDim,
    numClasses: classNames.length,
    classNames: [...classNames],
    size: first.size,
    channels: first.channels,
    conditional: true,
    truncation: first.truncation,
    generate(z, labels, psi) {
      if (!labels || labels.rank !== 1 || labels.shape[0] !== z.shape[0])
        throw new RangeError(`generate: per-class models need labels [${z.shape[0]}]`);
      const y = labels.dataSync();
      const rows: number[][] = models.map(() => []);
      for (let i = 0; i < y.length; i++) {
        const k = y[i]!;
        if (!(k >= 0 && k < models.length)) throw new RangeError(`generate: label ${k} is not a class`);
        rows[k]!.push(i);
      }
      return tf.tidy(() => {
        const parts: tf.Tensor4D[] = [];
        const order: number[] = [];
        rows.forEach((idx, k) => {
          if (idx.length === 0) return;
          const zk = tf.gather(z, tf.tensor1d(idx, 'int32'));
          parts.push(models[k]!.generate(zk, null, psi));
          order.push(...idx);
        });
        const stacked = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
        // Row j of `stacked` is input row order[j]; the inverse permutation puts them back.
        const inverse = new Int32Array(order.length);
        order.forEach((row, j) => {
          inverse[row] = j;
        });
        return tf.gather(stacked, tf.tensor1d(inverse, 'int32'));
      });
    },
    dispose() {
      for (const m of models) m.dispose();
    },
    ...(first.family !== undefined ? { family: first.family } : {}),
  };
}
