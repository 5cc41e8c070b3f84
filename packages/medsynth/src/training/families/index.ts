/**
 * Every generator family by name (`--model`). The loop, the run directory, resume, `generate`, `evaluate`
 * and `study` reach a family only through this table and the interface in `../family.ts`.
 */
import type { GanModelName } from '../../config/train-options.js';
import type { BaseSpec, GeneratorFamily } from '../family.js';
import { acganFamily, cganFamily, dcganFamily, stylegan2Family } from './adversarial.js';
import { ddpmFamily } from './ddpm.js';
import { pgganFamily } from './pggan.js';
import { CheckpointError } from '../../runtime/errors.js';

const FAMILIES: Readonly<Record<GanModelName, GeneratorFamily>> = Object.freeze({
  dcgan: dcganFamily,
  cgan: cganFamily,
  acgan: acganFamily,
  stylegan2: stylegan2Family,
  pggan: pgganFamily,
  ddpm: ddpmFamily as GeneratorFamily,
});

/** The family `--model` names. */
export function generatorFamily(name: GanModelName): GeneratorFamily {
  return FAMILIES[name];
}

/** The family of a spec read back from a checkpoint, with the spec validated by it. */
export function familyOfSpec(spec: unknown, file: string): { family: GeneratorFamily; spec: BaseSpec } {
  const name = (spec as { family?: unknown } | null)?.family;
  const family = typeof name === 'string' ? FAMILIES[name as GanModelName] : undefined;
  if (!family) {
    throw new CheckpointError('the checkpoint was made by an unknown generator family', {
      file,
      field: 'spec.family',
      expected: Object.keys(FAMILIES).join(', '),
      found: String(name),
    });
  }
  return { family, spec: family.checkSpec(spec, file) };
}
