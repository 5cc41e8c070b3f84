/**
 * One GAN training iteration as separate D and G updates, each `optimizer.minimize(f, true, varList)` over
 * its own network's variables (never the frozen-D combined-model trick, which cannot express R1 or WGAN-GP).
 * Everything random (z, augmentation, GP mixing) is drawn from our seeded Rngs, so an iteration is a pure
 * function of the weights, the optimizer states and the Rng states: a resumed run continues bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { augment, type AugmentPolicy, augmentPolicy } from '../augment/diff-augment.js';
import type { TrainOptions } from '../config/train-options.js';
import {
  auxiliaryClassLoss,
  discriminatorLoss,
  generatorLoss,
  r1Penalty,
  wganGradientPenalty,
} from '../losses/index.js';
import { type LecamAnchors, lecamPenalty, nextLecamAnchors } from '../losses/lecam.js';
import {
  type AdversarialNetworks,
  type AdversarialSpec,
  buildGan,
  buildGenerator,
  isConditional,
  runD,
  runG,
  setTrainingNoise,
} from '../models/registry.js';
import { ConditionScale } from '../models/layers.js';
import type { Rng } from '../runtime/random.js';
import { adamBetaPowers, setAdamBetaPowers, trainableVariables } from './checkpoint.js';
import { copyWeights, emaBeta, updateEma } from './ema.js';
import type { CriticUpdate } from './family.js';

/**
 * MSGAN's mode-seeking term for a batch whose images i and i + half share a label: 1 / (d_img / d_z + ε), with
 * d_img = mean |G(z_i) − G(z_{i+half})| and d_z = mean |z_i − z_{i+half}| over the first `half` pairs.
 * Small when pairs differ as much as their latents; large when G maps different z to the same image.
 */
export function modeSeekingLoss(images: tf.Tensor4D, z: tf.Tensor2D, half: number): tf.Scalar {
  return tf.tidy(() => {
    const [n, h, w, c] = images.shape;
    const m = Math.min(half, n - half);
    const a = tf.slice(images, [0, 0, 0, 0], [m, h, w, c]);
    const b = tf.slice(images, [half, 0, 0, 0], [m, h, w, c]);
    const za = tf.slice(z, [0, 0], [m, z.shape[1]]);
    const zb = tf.slice(z, [half, 0], [m, z.shape[1]]);
    const dImg = tf.mean(tf.abs(tf.sub(a, b)));
    const dZ = tf.mean(tf.abs(tf.sub(za, zb)));
    return tf.div(1, tf.add(tf.div(dImg, dZ), MODE_SEEKING_EPS)) as tf.Scalar;
  });
}

/** ε of the mode-seeking ratio (MSGAN's 1e-5). */
const MODE_SEEKING_EPS = 1e-5;

/** Adam ε as in PyTorch (TF.js defaults to 1e-7). */
const ADAM_EPSILON = 1e-8;

export interface StepRandomness {
  /** Latents (and GP mixing weights). */
  readonly z: Rng;
  /** Augmentation parameters. */
  readonly augment: Rng;
}

/** What a critic update needs from its family. */
export interface CriticUpdateArgs<Out> {
  readonly options: TrainOptions;
  readonly optimizer: tf.Optimizer;
  readonly vars: tf.Variable[];
  /** The real batch (as D sees it before augmentation). */
  readonly real: tf.Tensor4D;
  /** Index of this D update over the run (lazy R1 every `r1Interval`-th). */
  readonly update: number;
  /** Draws z (and any noise) from the z Rng and runs G in training mode: the fake batch. */
  readonly fake: () => tf.Tensor4D;
  /** D on an (augmented) batch. */
  readonly critic: (x: tf.Tensor4D) => Out;
  readonly logits: (out: Out) => tf.Tensor2D;
  /** The family's extra terms on both outputs (acgan's class loss, pggan's WGAN drift), or null. */
  readonly extra?: (real: Out, fake: Out) => tf.Scalar | null;
  /** Augments everything D sees with the step's p and augmentation Rng (identity when off). */
  readonly augment: (x: tf.Tensor4D) => tf.Tensor4D;
  readonly zRng: Rng;
  /** LeCam anchors before this update (null before the first; only read when `options.lecam` > 0). */
  readonly anchors: LecamAnchors | null;
}

/** One critic update's numbers and the LeCam anchors after it (null when LeCam is off). */
export interface CriticUpdateResult extends CriticUpdate {
  readonly anchors: LecamAnchors | null;
}

/**
 * One critic (D) update, shared by the GAN families: the fake batch first (its z from the z Rng), then the
 * WGAN-GP mixing weights (also from the z Rng), then one optimizer step over D's variables on the adversarial
 * loss of D(aug(real)) and D(aug(fake)), the family's extra terms, LeCam's term (weight `lecam`, against the
 * anchors handed in; losses/lecam.ts), and either R1 on the real batch (every `r1Interval`-th update,
 * weighted γ/2 · interval: lazy regularisation) or the WGAN gradient penalty. The anchors returned include
 * this update's mean logits.
 */
export function criticUpdate<Out>(a: CriticUpdateArgs<Out>): CriticUpdateResult {
  const o = a.options;
  const batch = a.real.shape[0];
  const doR1 = o.r1Gamma > 0 && a.update % o.r1Interval === 0;
  const doGp = o.loss === 'wgan' && o.gpWeight > 0;
  const lecam = o.lecam > 0;
  let penalty: number | null = null;
  let signSum = 0;
  let means: [number, number] = [0, 0];
  const loss = tf.tidy(() => {
    const fake = tf.tidy(a.fake);
    const mix = doGp
      ? tf.tensor4d(
          Float32Array.from({ length: batch }, () => a.zRng.next()),
          [batch, 1, 1, 1],
        )
      : null;
    let penaltyT: tf.Scalar | null = null;
    let sign: tf.Scalar | null = null;
    let meanT: tf.Tensor1D | null = null;
    const cost = a.optimizer.minimize(
      () => {
        const outReal = a.critic(a.augment(a.real));
        const outFake = a.critic(a.augment(fake));
        const realLogits = a.logits(outReal);
        const fakeLogits = a.logits(outFake);
        let total = discriminatorLoss(o.loss, realLogits, fakeLogits, {
          labelSmoothing: o.labelSmoothing,
        });
        const extra = a.extra?.(outReal, outFake) ?? null;
        if (extra) total = tf.add(total, extra);
        sign = tf.keep(tf.sum(tf.sign(realLogits)));
        if (lecam) {
          meanT = tf.keep(tf.stack([tf.mean(realLogits), tf.mean(fakeLogits)]) as tf.Tensor1D);
          if (a.anchors)
            total = tf.add(total, tf.mul(lecamPenalty(realLogits, fakeLogits, a.anchors), o.lecam));
        }
        const dOf = (x: tf.Tensor4D) => a.logits(a.critic(a.augment(x)));
        if (doR1) {
          const r1 = r1Penalty(dOf, a.real);
          penaltyT = tf.keep(r1);
          total = tf.add(total, tf.mul(r1, (o.r1Gamma / 2) * o.r1Interval));
        } else if (doGp && mix) {
          const gp = wganGradientPenalty(dOf, a.real, fake, mix);
          penaltyT = tf.keep(gp);
          total = tf.add(total, tf.mul(gp, o.gpWeight));
        }
        return total as tf.Scalar;
      },
      true,
      a.vars,
    );
    // Kept out of minimize's scope to be read here; tidy does not dispose kept tensors.
    const kept = [penaltyT as tf.Scalar | null, sign as tf.Scalar | null, meanT as tf.Tensor1D | null];
    if (kept[0]) penalty = kept[0].dataSync()[0]!;
    if (kept[1]) signSum = kept[1].dataSync()[0]!;
    if (kept[2]) means = Array.from(kept[2].dataSync()) as [number, number];
    for (const t of kept) t?.dispose();
    return cost!;
  });
  const value = loss.dataSync()[0]!;
  loss.dispose();
  const anchors = lecam ? nextLecamAnchors(a.anchors, means[0], means[1]) : null;
  return { loss: value, penalty, realSignSum: signSum, anchors };
}

export class GanTrainer {
  readonly net: AdversarialNetworks;
  /** The EMA generator used for samples, grids and export. */
  readonly gEma: tfl.LayersModel;
  readonly gOpt: tf.AdamOptimizer;
  readonly dOpt: tf.AdamOptimizer;
  readonly gVars: tf.Variable[];
  readonly dVars: tf.Variable[];
  readonly #policy: AugmentPolicy;
  #dSteps = 0;
  #anchors: LecamAnchors | null = null;
  #lambda = 1;
  readonly #scales: ConditionScale[];

  constructor(
    readonly options: TrainOptions,
    readonly spec: AdversarialSpec,
  ) {
    this.net = buildGan(spec);
    this.gEma = buildGenerator(spec);
    copyWeights(this.gEma, this.net.G);
    this.gOpt = tf.train.adam(options.gLr, options.beta1, options.beta2, ADAM_EPSILON);
    this.dOpt = tf.train.adam(options.dLr, options.beta1, options.beta2, ADAM_EPSILON);
    this.gVars = trainableVariables(this.net.G);
    this.dVars = trainableVariables(this.net.D);
    this.#policy = augmentPolicy(options.augmentOps);
    this.#scales = [this.net.G, this.net.D, this.gEma].flatMap((m) =>
      m.layers.filter((l): l is ConditionScale => l instanceof ConditionScale),
    );
    if (this.transitional && this.#scales.length === 0)
      throw new Error('a transitional spec built networks without ConditionScale layers');
    // A fresh transitional run starts unconditional (the family sets λ before every step; restored runs
    // get λ from their checkpoint's weights).
    if (this.transitional) this.setConditionStrength(0);
  }

  /** True when the class information's strength λ ramps (transitional conditioning). */
  get transitional(): boolean {
    return 'transitional' in this.spec && this.spec.transitional === true;
  }

  /** After weights were restored: λ is whatever the ConditionScale weights hold. */
  syncConditionStrength(): void {
    if (this.#scales.length > 0) this.#lambda = this.#scales[0]!.strength();
  }

  /** Transitional conditioning's λ (1 when the spec has no ramp). */
  get conditionStrength(): number {
    return this.#lambda;
  }

  /** Sets λ in G, D and G_ema (and the acgan auxiliary weight's factor). */
  setConditionStrength(lambda: number): void {
    if (lambda === this.#lambda && this.#scales.length > 0) return;
    this.#lambda = lambda;
    for (const s of this.#scales) s.setStrength(lambda);
  }

  /** D updates done so far (restored from checkpoints: decides the lazy-R1 steps). */
  get dStepCount(): number {
    return this.#dSteps;
  }

  set dStepCount(n: number) {
    this.#dSteps = n;
  }

  #z(batch: number, rng: Rng): tf.Tensor2D {
    return tf.tensor2d(rng.normals(batch * this.spec.zDim), [batch, this.spec.zDim]);
  }

  #aug(x: tf.Tensor4D, p: number, rng: Rng): tf.Tensor4D {
    return this.options.augment === 'none' || p <= 0 ? x : augment(x, p, this.#policy, rng);
  }

  #labelsFor(labels: tf.Tensor1D): tf.Tensor1D | null {
    return isConditional(this.spec) ? labels : null;
  }

  /** Fresh training noise for G's next forward pass (StyleGAN2's noise inputs), drawn from the z Rng. */
  #noise(rng: Rng): void {
    setTrainingNoise(this.net, rng);
  }

  /** LeCam's anchors (null before the first D update or with LeCam off; restored from checkpoints). */
  get lecamAnchors(): LecamAnchors | null {
    return this.#anchors;
  }

  set lecamAnchors(a: LecamAnchors | null) {
    this.#anchors = a;
  }

  /** One D update on a real batch (and a fresh fake batch with the same labels). */
  dStep(real: tf.Tensor4D, labels: tf.Tensor1D, p: number, rng: StepRandomness): CriticUpdate {
    const o = this.options;
    const lab = this.#labelsFor(labels);
    const acgan = this.spec.family === 'acgan';
    const r = criticUpdate({
      options: o,
      optimizer: this.dOpt,
      vars: this.dVars,
      real,
      update: this.#dSteps++,
      fake: () => {
        const z = this.#z(real.shape[0], rng.z);
        this.#noise(rng.z);
        return runG(this.net, z, lab, true);
      },
      critic: (x) => runD(this.net, x, lab, true),
      logits: (out) => out.logits,
      extra: (outReal, outFake) =>
        acgan && outReal.classLogits && outFake.classLogits
          ? tf.mul(
              tf.add(
                auxiliaryClassLoss(outReal.classLogits, labels),
                auxiliaryClassLoss(outFake.classLogits, labels),
              ),
              o.auxWeight * this.#lambda,
            )
          : null,
      augment: (x) => this.#aug(x, p, rng.augment),
      zRng: rng.z,
      anchors: this.#anchors,
    });
    this.#anchors = r.anchors;
    return r;
  }

  /**
   * One G update through D (D's variables untouched), labels as given; then the EMA update. With mode seeking
   * the batch's second half repeats the first half's labels, so each image has a partner of its class.
   */
  gStep(labels: tf.Tensor1D, p: number, rng: StepRandomness, imagesSeen: number): number {
    const o = this.options;
    const batch = labels.shape[0];
    const half = Math.floor(batch / 2);
    const pairs = o.modeSeeking > 0 && half > 0;
    const loss = tf.tidy(() => {
      const y = pairs ? tf.concat([tf.slice(labels, 0, half), tf.slice(labels, 0, batch - half)]) : labels;
      const lab = this.#labelsFor(y);
      const z = this.#z(batch, rng.z);
      this.#noise(rng.z);
      return this.gOpt.minimize(
        () => {
          const fake = runG(this.net, z, lab, true);
          const out = runD(this.net, this.#aug(fake, p, rng.augment), lab, true);
          let total = generatorLoss(o.loss, out.logits);
          if (this.spec.family === 'acgan' && out.classLogits) {
            total = tf.add(total, tf.mul(auxiliaryClassLoss(out.classLogits, y), o.auxWeight * this.#lambda));
          }
          if (pairs) total = tf.add(total, tf.mul(modeSeekingLoss(fake, z, half), o.modeSeeking));
          return total as tf.Scalar;
        },
        true,
        this.gVars,
      )!;
    });
    const value = loss.dataSync()[0]!;
    loss.dispose();
    updateEma(this.gEma, this.net.G, emaBeta(batch, o.emaKimg * 1000, imagesSeen, o.emaRampup));
    return value;
  }

  /** Adam's β-power accumulators of both optimizers, to restore after `setWeights` (bit-exact resume). */
  adamBetaPowers(): { g: [number, number]; d: [number, number] } {
    return { g: adamBetaPowers(this.gOpt), d: adamBetaPowers(this.dOpt) };
  }

  setAdamBetaPowers(p: { g: readonly number[]; d: readonly number[] }): void {
    setAdamBetaPowers(this.gOpt, p.g);
    setAdamBetaPowers(this.dOpt, p.d);
  }

  dispose(): void {
    this.gOpt.dispose();
    this.dOpt.dispose();
    this.net.G.dispose();
    this.net.D.dispose();
    this.gEma.dispose();
  }
}
