/**
 * Checks shared by every family's spec validator: specs come back from checkpoint files, so each field is
 * checked with a RangeError naming `<Spec type>.<field>`.
 */

/** The fields every width-based network spec has. */
export interface WidthSpecFields {
  readonly family: string;
  readonly size: number;
  readonly channels: number;
  readonly numClasses: number;
  readonly zDim: number;
  readonly gWidth: number;
  readonly dWidth: number;
  readonly maxWidth: number;
  readonly seed: number;
}

/** Throws a RangeError `<type>.<field> must be a positive integer` unless `value` is one. */
export function positiveInteger(type: string, value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new RangeError(`${type}.${field} must be a positive integer, got ${String(value)}`);
}

/**
 * Checks the common fields: `family` one of `families`, `size` one of `sizes`, channels 1 or 3, positive
 * integer class count, latent size and widths, maxWidth ≥ both widths, an integer seed.
 */
export function checkWidthSpec(
  type: string,
  spec: WidthSpecFields,
  families: readonly string[],
  sizes: readonly number[],
): void {
  if (spec === null || typeof spec !== 'object') throw new RangeError(`${type} must be an object`);
  if (!families.includes(spec.family))
    throw new RangeError(`${type}.family must be one of ${families.join(', ')}, got ${String(spec.family)}`);
  if (!sizes.includes(spec.size))
    throw new RangeError(`${type}.size must be one of ${sizes.join(', ')}, got ${String(spec.size)}`);
  if (spec.channels !== 1 && spec.channels !== 3)
    throw new RangeError(`${type}.channels must be 1 or 3, got ${String(spec.channels)}`);
  for (const field of ['numClasses', 'zDim', 'gWidth', 'dWidth', 'maxWidth'] as const)
    positiveInteger(type, spec[field], field);
  if (spec.maxWidth < Math.max(spec.gWidth, spec.dWidth))
    throw new RangeError(
      `${type}.maxWidth (${spec.maxWidth}) must be ≥ gWidth (${spec.gWidth}) and dWidth (${spec.dWidth})`,
    );
  if (typeof spec.seed !== 'number' || !Number.isSafeInteger(spec.seed))
    throw new RangeError(`${type}.seed must be an integer, got ${String(spec.seed)}`);
}
