/**
 * Adversarial losses on D's logits, as pure functions returning scalars (means over the batch):
 * - non-saturating (Goodfellow et al. 2014): D = softplus(−r) + softplus(f), G = softplus(−f). With one-sided
 *   label smoothing s the real term is binary cross-entropy against the target 1 − s:
 *   (1 − s)·softplus(−r) + s·softplus(r);
 * - hinge (Lim & Ye 2017; Miyato et al. 2018): D = relu(1 − r) + relu(1 + f), G = −f;
 * - wgan (Arjovsky et al. 2017): D = f − r, G = −f (pair it with the gradient penalty).
 * softplus(x) = log(1 + eˣ) is TF.js's stable form (never log(sigmoid(x)), which underflows to −∞).
 * Logits may be `[N, 1]` or `[N]`: every loss is a mean over all elements.
 */
import * as tf from '@tensorflow/tfjs-core';

export const ADVERSARIAL_LOSSES = ['nonsaturating', 'hinge', 'wgan'] as const;
export type AdversarialLoss = (typeof ADVERSARIAL_LOSSES)[number];

export interface DiscriminatorLossOptions {
  /**
   * One-sided label smoothing of the real target, in [0, 1) (default 0; 0.1 is usual). Non-saturating loss only:
   * the hinge and WGAN losses have no target to smooth and ignore it.
   */
  readonly labelSmoothing?: number | undefined;
}

/** D's loss for its logits on real and on fake images. */
export function discriminatorLoss(
  kind: AdversarialLoss,
  realLogits: tf.Tensor,
  fakeLogits: tf.Tensor,
  options: DiscriminatorLossOptions = {},
): tf.Scalar {
  const s = options.labelSmoothing ?? 0;
  if (!(s >= 0 && s < 1)) throw new RangeError(`labelSmoothing must be in [0, 1), got ${s}`);
  return tf.tidy(() => {
    switch (kind) {
      case 'nonsaturating': {
        const real =
          s > 0
            ? tf.add(tf.mul(tf.softplus(tf.neg(realLogits)), 1 - s), tf.mul(tf.softplus(realLogits), s))
            : tf.softplus(tf.neg(realLogits));
        return tf.add(tf.mean(real), tf.mean(tf.softplus(fakeLogits)));
      }
      case 'hinge':
        return tf.add(tf.mean(tf.relu(tf.sub(1, realLogits))), tf.mean(tf.relu(tf.add(1, fakeLogits))));
      case 'wgan':
        return tf.sub(tf.mean(fakeLogits), tf.mean(realLogits));
      default:
        throw unknownLoss(kind);
    }
  });
}

/** G's loss for D's logits on G's images. */
export function generatorLoss(kind: AdversarialLoss, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    switch (kind) {
      case 'nonsaturating':
        return tf.mean(tf.softplus(tf.neg(fakeLogits)));
      case 'hinge':
      case 'wgan':
        return tf.neg(tf.mean(fakeLogits));
      default:
        throw unknownLoss(kind);
    }
  });
}

/**
 * ACGAN's auxiliary loss: softmax cross-entropy of class logits `[N, K]` against integer labels `[N]` in
 * [0, K), mean over the batch. Computed as −mean(log_softmax(logits)[i, label_i]).
 */
export function auxiliaryClassLoss(classLogits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  if (classLogits.rank !== 2 || labels.rank !== 1 || classLogits.shape[0] !== labels.shape[0]) {
    throw new RangeError(
      `auxiliaryClassLoss needs logits [N, K] and labels [N], got [${classLogits.shape.join(', ')}] ` +
        `and [${labels.shape.join(', ')}]`,
    );
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(classLogits);
    const onehot = tf.oneHot(
      labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32'),
      classLogits.shape[1],
    );
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), 1)));
  });
}

function unknownLoss(kind: never): RangeError {
  return new RangeError(
    `unknown adversarial loss '${String(kind)}' (expected ${ADVERSARIAL_LOSSES.join(', ')})`,
  );
}
