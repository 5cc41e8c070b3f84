/** GAN losses: adversarial terms, the auxiliary class term, and gradient penalties. */
export * from './adversarial.js';
export * from './penalties.js';
