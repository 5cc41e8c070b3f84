/**
 * The design of a reader study (blinded visual Turing test), as pure functions: which images a session
 * shows, under which opaque ids, and in which order each reader sees them.
 *
 * - **Balanced per class, seeded.** For each class the study shows `perClass` real images — drawn without
 *   replacement from that class's real images by a stream `Rng.derive(seed, 'reader-study', 'real', k)` — and
 *   `perClass` synthetic ones, made from distinct latent seeds drawn by `Rng.derive(seed, 'reader-study',
 *   'synthetic')` (image i of a seed is always the same image, see generate/sample.ts). An unconditional
 *   generator trained on several classes cannot be asked for a class: its study has one pseudo-class (all
 *   images) and never shows a class.
 * - **Opaque ids.** All items are shuffled once (`Rng.derive(seed, 'reader-study', 'order')`); item p of that
 *   order gets the id `sha256(<design fingerprint>:<p>)` cut to 16 hex digits, so an id says nothing about the
 *   image's truth or class, and a different design (other seed, data, checkpoint) has other ids. The truth of
 *   an id stays on the server.
 * - **Per-reader order.** Each reader sees every item once, in an order of their own,
 *   `Rng.derive(seed, 'reader-study', 'reader', <name>)` shuffling the ids, so order effects average out over
 *   readers and a reader who reloads the page continues where they stopped (the next item in their order that
 *   has no stored answer).
 *
 * The settings (`ReaderSettingsSchema`) come from the route's defaults, then `reader-study.json` in the study
 * folder (read, never written by the server), and once answers are stored from the design stored beside them
 * (which pins the checkpoints), so every reader of one study sees the same images.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, DatasetError } from '../../runtime/errors.js';
import { Rng } from '../../runtime/random.js';
import type { Call } from '../../study/reader-stats.js';

/** The answers' database, in the study folder. */
export const READER_DB_FILE = 'reader-study.sqlite';
/** Optional settings file in the study folder (see `ReaderSettingsSchema`). */
export const READER_SETTINGS_FILE = 'reader-study.json';
export const CONFIDENCE_MIN = 1;
export const CONFIDENCE_MAX = 5;
export const MAX_PER_CLASS = 500;

const SETTINGS = {
  /** Real and synthetic images per class (each). */
  perClass: z.number().int().min(1).max(MAX_PER_CLASS),
  /** Seed of the images chosen, their ids and every reader's order. */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  /** Show each image's class to the reader (a class-conditional judgement: "a plausible pneumonia?"). */
  showClass: z.boolean(),
  /** The split the real images come from. */
  realSplit: z.enum(['train', 'val', 'test']),
  /** A run: its checkpoint (a name in `checkpoints/`; default the latest). */
  checkpoint: z.string().regex(/^(?!\.\.?$)[\w.-]+$/, 'a checkpoint folder name in checkpoints/ (no path)'),
  /** A study: the generator entry (default the first) and generator seed (default 0); scope is always `all`. */
  generator: z.string().min(1),
  generatorSeed: z.number().int().min(0),
  /** Truncation ψ of the synthetic images (default: the study entry's, else 1 = none). */
  truncation: z.number().positive().max(1),
};

/** One layer of settings (server defaults, `reader-study.json`): any of the fields, no defaults filled in. */
export const ReaderSettingsLayerSchema = z.object(SETTINGS).partial().strict();

/** Resolved settings: 20 real + 20 synthetic images per class, seed 0, class shown, real images from train. */
export const ReaderSettingsSchema = z
  .object({
    ...SETTINGS,
    perClass: SETTINGS.perClass.default(20),
    seed: SETTINGS.seed.default(0),
    showClass: SETTINGS.showClass.default(true),
    realSplit: SETTINGS.realSplit.default('train'),
    checkpoint: SETTINGS.checkpoint.optional(),
    generator: SETTINGS.generator.optional(),
    generatorSeed: SETTINGS.generatorSeed.optional(),
    truncation: SETTINGS.truncation.optional(),
  })
  .strict();
export type ReaderSettingsInput = z.input<typeof ReaderSettingsSchema>;
export type ReaderSettings = Readonly<z.output<typeof ReaderSettingsSchema>>;

/** Settings from layers of partial input (later layers win), validated once; `source` names the layer at fault. */
export function resolveSettings(
  layers: readonly { readonly values: unknown; readonly source: string }[],
): ReaderSettings {
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    if (layer.values === undefined || layer.values === null) continue;
    const parsed = ReaderSettingsLayerSchema.safeParse(layer.values);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ConfigError(`invalid reader-study setting: ${issue.message}`, {
        file: layer.source,
        field: issue.path.join('.') || '(root)',
      });
    }
    merged = {
      ...merged,
      ...Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined)),
    };
  }
  return Object.freeze(ReaderSettingsSchema.parse(merged));
}

/** The real images one class can draw from: positions into the real split. */
export interface ClassPool {
  readonly name: string;
  readonly positions: readonly number[];
}

/** Where an item's image comes from (server side only). */
export type ItemRef =
  | { readonly kind: 'real'; readonly position: number }
  | { readonly kind: 'synthetic'; readonly seed: number };

export interface PlannedItem {
  readonly id: string;
  /** Place in the study's shuffled order (the id is derived from it). */
  readonly position: number;
  readonly truth: Call;
  readonly classIndex: number;
  readonly ref: ItemRef;
}

/** sha256 of a JSON value with sorted keys (the design's identity). */
export function fingerprint(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

/** The opaque id of the item at `position` of a design. */
export function itemId(designFingerprint: string, position: number): string {
  return createHash('sha256').update(`${designFingerprint}:${position}`).digest('hex').slice(0, 16);
}

/** `count` distinct latent seeds in [0, 2³²). */
function syntheticSeeds(seed: number, count: number): number[] {
  const rng = Rng.derive(seed, 'reader-study', 'synthetic');
  const seen = new Set<number>();
  const out: number[] = [];
  while (out.length < count) {
    const s = Math.floor(rng.next() * 2 ** 32);
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(s);
  }
  return out;
}

/**
 * The items of a design (see the module comment), in the study's shuffled order. Throws a `DatasetError`
 * naming the class when a class has fewer than `perClass` real images.
 */
export function planItems(
  settings: Pick<ReaderSettings, 'perClass' | 'seed'>,
  pools: readonly ClassPool[],
  designFingerprint: string,
  where = 'the real split',
): PlannedItem[] {
  const n = settings.perClass;
  if (pools.length === 0) throw new DatasetError('no classes to show', { file: where });
  const seeds = syntheticSeeds(settings.seed, n * pools.length);
  const unordered: Omit<PlannedItem, 'id' | 'position'>[] = [];
  pools.forEach((pool, k) => {
    if (pool.positions.length < n)
      throw new DatasetError(
        `class "${pool.name}" has ${pool.positions.length} real images, fewer than the ${n} per class the study shows`,
        {
          file: where,
          field: 'perClass',
          expected: `at most ${pool.positions.length}`,
          found: String(n),
        },
      );
    const chosen = Rng.derive(settings.seed, 'reader-study', 'real', k)
      .shuffle([...pool.positions])
      .slice(0, n)
      .sort((a, b) => a - b);
    for (const position of chosen)
      unordered.push({ truth: 'real', classIndex: k, ref: { kind: 'real', position } });
    for (let i = 0; i < n; i++)
      unordered.push({
        truth: 'synthetic',
        classIndex: k,
        ref: { kind: 'synthetic', seed: seeds[k * n + i]! },
      });
  });
  const ordered = Rng.derive(settings.seed, 'reader-study', 'order').shuffle(unordered);
  return ordered.map((item, position) => ({ id: itemId(designFingerprint, position), position, ...item }));
}

/** The order in which `reader` sees the items (a permutation of `ids`, fixed by seed and name). */
export function readerOrder(ids: readonly string[], seed: number, reader: string): string[] {
  return Rng.derive(seed, 'reader-study', 'reader', reader).shuffle([...ids]);
}

/** Longest reader name. */
export const READER_NAME_MAX = 60;

/**
 * A reader's name as typed: trimmed, inner runs of white space made one space, Unicode NFC; 1–60 characters,
 * letters and digits first, then letters, digits, spaces and `. _ ' @ -`.
 */
export const ReaderNameSchema = z
  .string({ error: 'a reader name must be text' })
  .transform((s) => s.normalize('NFC').trim().replace(/\s+/g, ' '))
  .pipe(
    z
      .string()
      .min(1, 'a reader name is required')
      .max(READER_NAME_MAX, `a reader name has at most ${READER_NAME_MAX} characters`)
      .regex(
        /^[\p{L}\p{N}][\p{L}\p{N}\p{M} ._'’@-]*$/u,
        "a reader name starts with a letter or digit and holds letters, digits, spaces and . _ ' ’ @ - only",
      ),
  );

/** The reader name, or the reason it is refused. */
export function checkReaderName(input: unknown): { ok: true; name: string } | { ok: false; reason: string } {
  const r = ReaderNameSchema.safeParse(input);
  return r.success ? { ok: true, name: r.data } : { ok: false, reason: r.error.issues[0]!.message };
}
