/**
 * LeCam regularisation of D (Tseng et al., "Regularizing Generative Adversarial Networks under Limited Data",
 * CVPR 2021), added to D's loss with weight λ:
 *
 *   R_LC = E_x[ relu(D(x) − α_F)² ] + E_z[ relu(α_R − D(G(z)))² ]
 *
 * where α_R and α_F are exponential moving averages of D's mean logit on real and on fake batches (the
 * "anchors"). It keeps D's real and fake outputs from drifting apart, which is how D memorises a small
 * training set; the paper shows it bounds a LeCam divergence and helps most with few images, alone or with
 * DiffAugment/ADA. Like the authors' code, the penalty is one-sided (relu) and uses the anchors as constants.
 *
 * Anchor updates (α ← decay·α + (1 − decay)·mean logit, decay 0.99 as in the paper's code) follow each D
 * update, from the logits of that update; the first update only sets the anchors (no penalty yet), which is
 * the authors' "decay 0 before the start iteration" with a start of one update. The anchors are part of a
 * trainer's checkpoint state, so a resumed run continues exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';

/** EMA decay of the anchors (the authors' `ema_decay`). */
export const LECAM_DECAY = 0.99;

/** The EMAs of D's mean logit on real (α_R) and fake (α_F) batches. */
export interface LecamAnchors {
  readonly real: number;
  readonly fake: number;
}

/** Anchors as stored in checkpoint state (null before the first D update). */
export const lecamAnchorsSchema = z
  .object({ real: z.number().finite(), fake: z.number().finite() })
  .strict()
  .nullable();

/** R_LC for one batch of real and fake logits (any shape; every element is one sample's logit). */
export function lecamPenalty(realLogits: tf.Tensor, fakeLogits: tf.Tensor, anchors: LecamAnchors): tf.Scalar {
  return tf.tidy(() => {
    const realTerm = tf.mean(tf.square(tf.relu(tf.sub(realLogits, anchors.fake))));
    const fakeTerm = tf.mean(tf.square(tf.relu(tf.sub(anchors.real, fakeLogits))));
    return tf.add(realTerm, fakeTerm) as tf.Scalar;
  });
}

/** The anchors after one D update whose batches had mean logits `realMean` and `fakeMean`. */
export function nextLecamAnchors(
  previous: LecamAnchors | null,
  realMean: number,
  fakeMean: number,
  decay = LECAM_DECAY,
): LecamAnchors {
  if (previous === null) return { real: realMean, fake: fakeMean };
  return {
    real: decay * previous.real + (1 - decay) * realMean,
    fake: decay * previous.fake + (1 - decay) * fakeMean,
  };
}
