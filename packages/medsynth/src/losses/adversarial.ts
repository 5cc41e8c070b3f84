/**
 * Adversarial losses on D's logits, as pure functions returning scalars (means over the batch):
 * - non-saturating (Goodfellow et al.): D = softplus(−r) + softplus(f), G = softplus(−f); with one-sided
 *   label smoothing s the real term is BCE against target 1 − s: (1 − s)·softplus(−r) + s·softplus(r);
 * - hinge (Lim & Ye; Miyato et al.): D = relu(1 − r) + relu(1 + f), G = −f;
 * - wgan (Arjovsky et al.): D = f − r, G = −f (pair it with the gradient penalty).
 * softplus(x) = log(1 + eˣ), computed stably by TF.js.
 */
import * as tf from '@tensorflow/tfjs-core';

export const ADVERSARIAL_LOSSES = ['nonsaturating', 'hinge', 'wgan'] as const;
export type AdversarialLoss = (typeof ADVERSARIAL_LOSSES)[number];

export interface DiscriminatorLossOptions {
  /** One-sided label smoothing of the real target (non-saturating only), in [0, 0.5]. */
  readonly labelSmoothing?: number | undefined;
}

/** D's loss for logits on real and on fake images. */
export function discriminatorLoss(
  kind: AdversarialLoss,
  realLogits: tf.Tensor,
  fakeLogits: tf.Tensor,
  options: DiscriminatorLossOptions = {},
): tf.Scalar {
  return tf.tidy(() => {
    switch (kind) {
      case 'nonsaturating': {
        const s = options.labelSmoothing ?? 0;
        const real =
          s > 0
            ? tf.add(tf.mul(tf.softplus(tf.neg(realLogits)), 1 - s), tf.mul(tf.softplus(realLogits), s))
            : tf.softplus(tf.neg(realLogits));
        return tf.add(tf.mean(real), tf.mean(tf.softplus(fakeLogits)));
      }
      case 'hinge':
        return tf.add(
          tf.mean(tf.relu(tf.sub(1, realLogits))),
          tf.mean(tf.relu(tf.add(1, fakeLogits))),
        );
      case 'wgan':
        return tf.sub(tf.mean(fakeLogits), tf.mean(realLogits));
    }
  });
}

/** G's loss for D's logits on its images. */
export function generatorLoss(kind: AdversarialLoss, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() =>
    kind === 'nonsaturating' ? tf.mean(tf.softplus(tf.neg(fakeLogits))) : tf.neg(tf.mean(fakeLogits)),
  );
}

/** ACGAN's auxiliary loss: softmax cross-entropy of class logits `[N, K]` against int32 labels `[N]`, mean. */
export function auxiliaryClassLoss(classLogits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const k = classLogits.shape[1];
    const logp = tf.logSoftmax(classLogits);
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), k);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), 1)));
  });
}
