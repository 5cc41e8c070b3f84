/**
 * Builds a reader study's images in memory: the design's items (design.ts) made into PNGs — real images read
 * through the repository's dataset loaders, synthetic ones sampled from the generator by seed — both at the
 * generator's size and channels and encoded by the same PNG encoder, so nothing but the pixels tells them apart.
 *
 * What a folder is:
 * - a **training run** (`options.json` and `checkpoints/`): its generator (G_ema of the latest checkpoint, or
 *   `settings.checkpoint`) against the real images of the data its `options.json` names — the run's own part
 *   of the data (`trainClass`, and with the train split its `trainImages`);
 * - a **study** (`study.json`): one generator instance's pool (`settings.generator`, default the first entry;
 *   `settings.generatorSeed`, default 0; scope the whole train split; per-class models routed by class) against
 *   the study's real data, capped as the study caps it (`maxImages`).
 * The server reads what the folder's own files name (the data source, the runs, the checkpoints) and writes
 * nothing here: the images live in memory for the server's lifetime. Once answers are stored the stored
 * design pins the checkpoints and settings; a rebuild that gives other ids or truths (the data changed) is an
 * error; images whose bytes differ from those answered (e.g. another backend's rounding) are only counted
 * (the results say how many).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Split } from '../../data/dataset.js';
import { encodePng } from '../../data/image/grid.js';
import { openDataset } from '../../data/source.js';
import { stratifiedFraction } from '../../data/splits.js';
import type { ImageArray } from '../../data/types.js';
import { perClassGenerator } from '../../generate/per-class.js';
import { sampleImages } from '../../generate/sample.js';
import type { SamplingGenerator } from '../../models/types.js';
import { selectBackend } from '../../runtime/backend.js';
import { ConfigError, StudyError } from '../../runtime/errors.js';
import type { RunControl } from '../../runtime/progress.js';
import { readStudyConfig } from '../../study/runner.js';
import { generatorInstance } from '../../study/generators.js';
import { loadGenerator, type RunInfo } from '../../training/load-run.js';
import { readRunOptions } from '../../training/loop.js';
import {
  type ClassPool,
  CONFIDENCE_MAX,
  CONFIDENCE_MIN,
  fingerprint,
  planItems,
  type PlannedItem,
  type ReaderSettings,
} from './design.js';
import type { FolderKind } from './folder.js';
import { DESIGN_FORMAT, type DesignRecord, type DesignSource, type StoredItem } from './store.js';

/** An item with its picture. */
export interface BuiltItem extends StoredItem {
  readonly png: Buffer;
}

export interface ReaderSession {
  /** The study folder (absolute). */
  readonly folder: string;
  readonly design: DesignRecord;
  readonly items: readonly BuiltItem[];
  readonly byId: ReadonlyMap<string, BuiltItem>;
}

let backendReady: Promise<unknown> | null = null;

/** Selects medsynth's TF.js backend once, unless one is active already. */
async function ensureBackend(): Promise<void> {
  if (tf.getBackend()) return;
  backendReady ??= selectBackend().catch((e: unknown) => {
    backendReady = null;
    throw e;
  });
  await backendReady;
}

interface Material {
  readonly generator: SamplingGenerator;
  readonly runs: readonly RunInfo[];
  readonly split: Split;
  readonly classNames: readonly string[];
  readonly pools: readonly ClassPool[];
  readonly source: Omit<DesignSource, 'runs' | 'network' | 'size' | 'channels' | 'conditional'>;
  readonly showClass: boolean;
}

/** Positions of `split` per design class, by class name (`classNames` of the generator, or one pseudo-class). */
function poolsOf(
  split: Split,
  classNames: readonly string[],
  keep: (position: number) => boolean,
  allInOne: boolean,
  where: string,
): ClassPool[] {
  if (allInOne) {
    const positions: number[] = [];
    for (let p = 0; p < split.size; p++) if (keep(p)) positions.push(p);
    return [{ name: classNames[0]!, positions }];
  }
  return classNames.map((name) => {
    const label = split.classNames.indexOf(name);
    if (label < 0)
      throw new StudyError("the generator's classes are not the real data's", {
        file: where,
        expected: `classes among ${split.classNames.join(', ')}`,
        found: name,
      });
    const positions: number[] = [];
    for (let p = 0; p < split.size; p++) if (split.labels[p] === label && keep(p)) positions.push(p);
    return { name, positions };
  });
}

async function runMaterial(
  dir: string,
  settings: ReaderSettings,
  pinned: readonly string[] | null,
  control: RunControl,
): Promise<Material> {
  const options = await readRunOptions(dir);
  const checkpoint = pinned?.[0] ?? settings.checkpoint;
  const { generator, run } = await loadGenerator(dir, {
    ...(checkpoint !== undefined ? { checkpoint: join(dir, 'checkpoints', checkpoint) } : {}),
  });
  try {
    const ds = await openDataset(options.data, control);
    const split = ds.split(settings.realSplit);
    const ids = settings.realSplit === 'train' && options.trainImages ? new Set(options.trainImages) : null;
    const keep = ids === null ? () => true : (p: number) => ids.has(split.id(p));
    // A single-class run (trainClass) has classNames [trainClass]: its pool is that class, found by name.
    const allInOne = !generator.conditional && generator.classNames.length > 1;
    const classNames = allInOne ? ['all classes'] : generator.classNames;
    const pools = allInOne
      ? poolsOf(split, classNames, keep, true, ds.location)
      : poolsOf(split, classNames, keep, false, ds.location);
    return {
      generator,
      runs: [run],
      split,
      classNames,
      pools,
      showClass: settings.showClass && !allInOne,
      source: {
        kind: 'run',
        description: `run ${basename(dir)} (${options.model}, ${run.kimg.toFixed(1)} kimg)`,
        dataSource: options.data.source,
        realSplit: `${split.name}${ids ? ' (the images the run trained on)' : ''}`,
        truncation: settings.truncation ?? 1,
      },
    };
  } catch (e) {
    generator.dispose();
    throw e;
  }
}

/** The finished (or latest) numbered run in `folder`. */
async function latestRun(folder: string, key: string): Promise<string> {
  const names = await readdir(folder).catch(() => [] as string[]);
  const runs = names.filter((n) => /^\d{5,}-/.test(n)).sort();
  for (let i = runs.length - 1; i >= 0; i--) {
    const dir = join(folder, runs[i]!);
    if (existsSync(join(dir, 'checkpoints'))) return dir;
  }
  throw new StudyError(
    `generator ${key} has no trained run yet (run or resume the study first: medsynth study --resume <study-dir>)`,
    { file: folder },
  );
}

async function studyMaterial(
  dir: string,
  settings: ReaderSettings,
  pinned: readonly string[] | null,
  control: RunControl,
): Promise<Material> {
  const config = await readStudyConfig(dir);
  const entry =
    settings.generator === undefined
      ? config.generators[0]!
      : config.generators.find((g) => g.name === settings.generator);
  if (entry === undefined)
    throw new ConfigError('the study has no such generator', {
      file: join(dir, 'study.json'),
      field: 'generator',
      expected: config.generators.map((g) => g.name).join(', '),
      found: settings.generator ?? '',
    });
  const gseed = settings.generatorSeed ?? 0;
  if (gseed >= config.generatorSeeds)
    throw new ConfigError('the study has no such generator seed', {
      file: join(dir, 'study.json'),
      field: 'generatorSeed',
      expected: `0 … ${config.generatorSeeds - 1}`,
      found: String(gseed),
    });
  const instance = generatorInstance(entry, gseed, null);
  const ds = await openDataset(config.data, control);
  let split = ds.split(settings.realSplit);
  const cap = config.maxImages[settings.realSplit];
  if (cap !== undefined && split.size > cap)
    split = split.subset(
      stratifiedFraction(split.labels, cap / split.size, config.data.seed),
      `${settings.realSplit}[capped at ${cap}]`,
    );
  const folder = join(dir, 'generators', instance.key);
  const runDirs =
    entry.run !== undefined
      ? [resolve(dir, entry.run)]
      : entry.perClassModels
        ? await Promise.all(
            ds.classNames.map((_, k) => latestRun(join(folder, `class-${k}`), `${instance.key} class ${k}`)),
          )
        : [await latestRun(folder, instance.key)];
  const loaded: { generator: SamplingGenerator; run: RunInfo }[] = [];
  try {
    for (const [i, run] of runDirs.entries()) {
      const checkpoint = pinned?.[i];
      loaded.push(
        await loadGenerator(run, {
          checkpoint: checkpoint !== undefined ? join(run, 'checkpoints', checkpoint) : entry.checkpoint,
          sampling: entry.sampling,
        }),
      );
    }
    loaded.forEach(({ run }, k) => {
      if (entry.perClassModels && (run.classNames.length !== 1 || run.classNames[0] !== ds.classNames[k]))
        throw new StudyError(`a per-class model was not trained on class ${ds.classNames[k]} alone`, {
          file: run.dir,
          found: run.classNames.join(', '),
        });
    });
    const generator = entry.perClassModels
      ? perClassGenerator(
          loaded.map((l) => l.generator),
          ds.classNames,
        )
      : loaded[0]!.generator;
    const allInOne = !generator.conditional && generator.classNames.length > 1;
    const classNames = allInOne ? ['all classes'] : ds.classNames;
    return {
      generator,
      runs: loaded.map((l) => l.run),
      split,
      classNames,
      pools: poolsOf(split, classNames, () => true, allInOne, ds.location),
      showClass: settings.showClass && !allInOne,
      source: {
        kind: 'study',
        description: `study generator ${instance.key}`,
        dataSource: config.data.source,
        realSplit: split.name,
        truncation: settings.truncation ?? entry.truncation ?? 1,
      },
    };
  } catch (e) {
    for (const l of loaded) l.generator.dispose();
    throw e;
  }
}

function imageAt(images: ImageArray, i: number) {
  const per = images.height * images.width * images.channels;
  return {
    width: images.width,
    height: images.height,
    channels: images.channels,
    data: images.data.subarray(i * per, (i + 1) * per),
  };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The pictures of the planned items, in plan order. */
async function pictures(
  m: Material,
  planned: readonly PlannedItem[],
  truncation: number,
  control: RunControl,
): Promise<Buffer[]> {
  const out = new Array<Buffer>(planned.length);
  const { size, channels } = m.generator;
  const real = planned.map((p, i) => [p, i] as const).filter(([p]) => p.ref.kind === 'real');
  if (real.length > 0) {
    const positions = real.map(([p]) => (p.ref as { position: number }).position);
    const images = await m.split.subset(positions, `${m.split.name}[reader study]`).load({
      size,
      channels,
      bitDepth: 8,
      signal: control.signal,
    });
    for (const [j, [, i]] of real.entries()) out[i] = await encodePng(imageAt(images, j));
  }
  const synthetic = planned.map((p, i) => [p, i] as const).filter(([p]) => p.ref.kind === 'synthetic');
  for (let start = 0; start < synthetic.length; start += 64) {
    control.signal?.throwIfAborted();
    const batch = synthetic.slice(start, start + 64);
    const images = await sampleImages(
      m.generator,
      batch.map(([p]) => ({
        seed: (p.ref as { seed: number }).seed,
        label: m.generator.conditional ? p.classIndex : 0,
      })),
      { truncation },
    );
    for (const [j, [, i]] of batch.entries()) out[i] = await encodePng(imageAt(images, j));
  }
  return out;
}

/**
 * Makes the session of a study folder: its design (from `settings`, or `stored`, the design stored with the
 * answers, whose settings and checkpoints then win) and every item's picture.
 */
export async function buildReaderSession(
  folder: string,
  kind: FolderKind,
  settings: ReaderSettings,
  stored: DesignRecord | null,
  storedItems: readonly StoredItem[] = [],
  control: RunControl = {},
): Promise<ReaderSession> {
  await ensureBackend();
  const use = stored?.settings ?? settings;
  const pinned = stored ? stored.source.runs.map((r) => r.checkpoint) : null;
  const m =
    kind === 'run'
      ? await runMaterial(folder, use, pinned, control)
      : await studyMaterial(folder, use, pinned, control);
  try {
    const source: DesignSource = {
      ...m.source,
      runs: m.runs.map((r) => ({ dir: r.dir, checkpoint: basename(r.checkpoint) })),
      network: m.runs[0]!.network,
      size: m.generator.size,
      channels: m.generator.channels,
      conditional: m.generator.conditional,
    };
    const identity = {
      settings: use,
      kind: source.kind,
      checkpoints: source.runs.map((r) => r.checkpoint),
      dataSource: source.dataSource,
      realSplit: source.realSplit,
      size: source.size,
      channels: source.channels,
      truncation: source.truncation,
      classNames: m.classNames,
      showClass: m.showClass,
    };
    const print = fingerprint(identity);
    if (stored && stored.fingerprint !== print)
      throw new StudyError(
        'the stored reader study cannot be rebuilt: the folder, its data or its generator changed since the answers were stored',
        { file: folder, expected: `design ${stored.fingerprint.slice(0, 12)}`, found: print.slice(0, 12) },
      );
    const planned = planItems(use, m.pools, print, `${source.dataSource} (${source.realSplit})`);
    const pngs = await pictures(m, planned, source.truncation, control);
    const items: BuiltItem[] = planned.map((p, i) => ({
      id: p.id,
      position: p.position,
      truth: p.truth,
      classIndex: p.classIndex,
      source:
        p.ref.kind === 'real'
          ? `real ${m.split.name}: ${m.split.id(p.ref.position)}`
          : `synthetic seed ${p.ref.seed}${m.generator.conditional ? ` class ${m.classNames[p.classIndex]}` : ''}`,
      sha256: sha256(pngs[i]!),
      png: pngs[i]!,
    }));
    if (stored) {
      const byId = new Map(storedItems.map((s) => [s.id, s]));
      const mismatch = items.find((it) => {
        const s = byId.get(it.id);
        return (
          s === undefined || s.truth !== it.truth || s.classIndex !== it.classIndex || s.source !== it.source
        );
      });
      if (mismatch !== undefined || storedItems.length !== items.length)
        throw new StudyError('the stored reader study cannot be rebuilt: its images are no longer the same', {
          file: folder,
          found: mismatch
            ? `item ${mismatch.id} differs`
            : `${storedItems.length} stored items, ${items.length} now`,
        });
    }
    const design: DesignRecord = {
      format: DESIGN_FORMAT,
      version: 1,
      fingerprint: print,
      settings: { ...use },
      source,
      classNames: [...m.classNames],
      showClass: m.showClass,
      items: items.length,
      confidence: { min: CONFIDENCE_MIN, max: CONFIDENCE_MAX },
      createdAt: stored?.createdAt ?? new Date().toISOString(),
    };
    return {
      folder,
      design,
      items,
      byId: new Map(items.map((it) => [it.id, it])),
    };
  } finally {
    m.generator.dispose();
  }
}
