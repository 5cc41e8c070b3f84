/**
 * The diffusion sampler's flags, shared by `generate` and `evaluate`: `--sample-steps`, `--eta`, `--guidance`
 * (a GAN run refuses them by flag when its generator is loaded).
 */
import type { Command } from 'commander';
import { ConfigError } from '../runtime/errors.js';
import type { SamplerSettings } from '../training/family.js';

/** Adds `--sample-steps`, `--eta`, `--guidance` (diffusion runs; read with `samplerSettingsFromFlags`). */
export function addSamplerFlags(cmd: Command): Command {
  return cmd
    .option('--sample-steps <n>', "diffusion runs: DDIM steps (default: the run's, 25)")
    .option('--eta <η>', "diffusion runs: DDIM η, 0 deterministic … 1 stochastic (default: the run's)")
    .option(
      '--guidance <w>',
      "diffusion runs: classifier-free guidance scale (1 = conditional model alone; default: the run's)",
    );
}

/** `--sample-steps`, `--eta`, `--guidance` (diffusion runs): numbers, range-checked by the family. */
export function samplerSettingsFromFlags(flags: {
  sampleSteps?: string | undefined;
  eta?: string | undefined;
  guidance?: string | undefined;
}): SamplerSettings {
  const num = (text: string | undefined, flag: string): number | undefined => {
    if (text === undefined) return undefined;
    const v = text.trim() === '' ? Number.NaN : Number(text);
    if (!Number.isFinite(v)) throw new ConfigError(`${flag} must be a number`, { field: flag, found: text });
    return v;
  };
  return {
    steps: num(flags.sampleSteps, '--sample-steps'),
    eta: num(flags.eta, '--eta'),
    guidance: num(flags.guidance, '--guidance'),
  };
}
