/** GAN losses: adversarial terms, the auxiliary class term, and gradient penalties. */
export {
  ADVERSARIAL_LOSSES,
  type AdversarialLoss,
  auxiliaryClassLoss,
  discriminatorLoss,
  type DiscriminatorLossOptions,
  generatorLoss,
} from './adversarial.js';
export { type Critic, inputGradientNormSquared, r1Penalty, wganGradientPenalty } from './penalties.js';
