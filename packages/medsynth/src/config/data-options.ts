/**
 * The data options schema: everything that says which images to read and how, validated once at the
 * boundary (CLI flags or a config file) and passed inward frozen.
 */
import { z } from 'zod';
import { ConfigError } from '../runtime/errors.js';

const positiveInt = z.number().int().positive();

export const DicomWindowSchema = z.union([
  z.literal('auto'),
  z.literal('minmax'),
  z.object({ center: z.number(), width: z.number().positive() }).strict(),
]);

export const RegexSchema = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

export const SplitRatiosSchema = z
  .object({ train: z.number().min(0), val: z.number().min(0), test: z.number().min(0) })
  .strict()
  .refine((r) => r.train > 0 && r.train + r.val + r.test > 0, { message: 'train share must be positive' });

export const DataOptionsSchema = z
  .object({
    /** File, folder, or `medmnist:<name>[@size]`. */
    source: z.string().min(1),
    seed: z.number().int().min(0).default(0),
    splitRatios: SplitRatiosSchema.default({ train: 0.7, val: 0.1, test: 0.2 }),
    labelsCsv: z.string().min(1).optional(),
    pathColumn: z.string().min(1).optional(),
    labelColumn: z.string().min(1).optional(),
    splitColumn: z.string().min(1).optional(),
    groupColumn: z.string().min(1).optional(),
    labelFromFilename: RegexSchema.optional(),
    groupFromFilename: RegexSchema.optional(),
    dicomWindow: DicomWindowSchema.default('auto'),
    dicomBitDepth: z.union([z.literal(8), z.literal(16)]).default(8),
    cacheDir: z.string().min(1).optional(),
    medmnistBaseUrl: z.string().url().optional(),
    /** Follow symbolic links / labels-CSV paths that lead outside the dataset folder. */
    allowOutsideRoot: z.boolean().default(false),
  })
  .strict();

export const ImageTransformSchema = z
  .object({
    size: z
      .union([positiveInt.max(8192), z.tuple([positiveInt.max(8192), positiveInt.max(8192)])])
      .optional(),
    channels: z.union([z.literal(1), z.literal(3)]).optional(),
    interpolation: z.enum(['nearest', 'linear', 'cubic', 'lanczos3']).default('lanczos3'),
    fit: z.enum(['fill', 'cover', 'contain']).default('fill'),
    bitDepth: z.union([z.literal(8), z.literal(16)]).default(8),
  })
  .strict();

export type DataOptionsInput = z.input<typeof DataOptionsSchema>;
export type DataOptions = Readonly<z.output<typeof DataOptionsSchema>>;
export type ImageTransformOptions = Readonly<z.output<typeof ImageTransformSchema>>;

/** Validates with a schema and freezes; a failure becomes a `ConfigError` naming the field. */
export function resolveOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what = 'options',
): Readonly<z.output<S>> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : what;
    throw new ConfigError(issue.message, { field });
  }
  return deepFreeze(r.data) as Readonly<z.output<S>>;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
