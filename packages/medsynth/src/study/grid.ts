/**
 * The study's job grid and each job's training set.
 *
 * Jobs are (generator, generator seed, condition, classifier, seed). A condition without synthetic images
 * does not depend on a generator: `real`, `real:noaug` and `oversampled` run once per classifier seed
 * (generator and generator seed `-`), `limited:f` once per generator seed too (the seed chooses its subset,
 * the one the generators of that seed train on). Conditions with synthetic images run for every generator
 * and generator seed. Conventional classifiers never augment, so their `:noaug` jobs are left out.
 *
 * Order: the generator-free jobs first (the baselines), then generator instance by instance (so one
 * synthetic pool is in memory at a time), seed-major within each.
 */
import type { ImageArray } from '../data/types.js';
import { pickImages } from '../data/image/transform.js';
import type { LabelledSet } from '../metrics/evaluate.js';
import { StudyError } from '../runtime/errors.js';
import { Rng } from '../runtime/random.js';
import { resolveStudyClassifiers, type StudyClassifier } from './classifiers.js';
import {
  composeTrainingSet,
  conditionName,
  isShuffled,
  positionsByClass,
  unshuffled,
  usesSynthetic,
  type Condition,
} from './conditions.js';
import { studyConditions, type GeneratorEntry, type StudyConfig } from './config.js';
import { generatorInstance, type GeneratorInstance } from './generators.js';
import { jobId } from './store.js';

/** One cell of the grid. */
export interface StudyJob {
  readonly id: string;
  /** The generator instance whose pool the job draws from; null without synthetic images. */
  readonly instance: GeneratorInstance | null;
  /** The generator seed the job depends on (see the module comment); null when none. */
  readonly generatorSeed: number | null;
  readonly conditionName: string;
  readonly condition: Condition;
  readonly classifier: StudyClassifier;
  readonly seed: number;
}

/** The grid in run order (see the module comment). */
export function studyJobs(config: StudyConfig): StudyJob[] {
  const conditions = studyConditions(config);
  const classifiers = resolveStudyClassifiers(config.classifiers);
  const gSeeds = Array.from({ length: config.generatorSeeds }, (_, g) => g);
  const jobs: StudyJob[] = [];
  const add = (
    instance: GeneratorInstance | null,
    generatorSeed: number | null,
    name: string,
    condition: Condition,
    classifier: StudyClassifier,
    seed: number,
  ) => {
    if (!condition.augment && !classifier.augments) return;
    jobs.push({
      id: jobId(instance?.entry.name ?? null, generatorSeed, name, classifier.name, seed),
      instance,
      generatorSeed,
      conditionName: name,
      condition,
      classifier,
      seed,
    });
  };
  // Baselines and controls without synthetic images.
  for (const seed of config.seeds)
    for (const { name, condition } of conditions) {
      if (usesSynthetic(condition)) continue;
      const seeds = condition.kind === 'limited' ? gSeeds : [null];
      for (const g of seeds) for (const c of classifiers) add(null, g, name, condition, c, seed);
    }
  // Per generator instance: the whole-split one, then one per limited fraction.
  const fractions = [
    ...new Set(
      conditions.flatMap(({ condition: c }) => (c.kind === 'limited' && c.topUp ? [c.fraction] : [])),
    ),
  ];
  for (const entry of config.generators)
    for (const g of gSeeds)
      for (const fraction of [null, ...fractions]) {
        const instance = generatorInstance(entry, g, fraction);
        for (const seed of config.seeds)
          for (const { name, condition } of conditions) {
            if (!usesSynthetic(condition)) continue;
            const scope = condition.kind === 'limited' ? condition.fraction : null;
            if (scope !== fraction) continue;
            for (const c of classifiers) add(instance, g, name, condition, c, seed);
          }
      }
  return jobs;
}

/** The generator instances the grid needs, in run order. */
export function studyInstances(jobs: readonly StudyJob[]): GeneratorInstance[] {
  const seen = new Map<string, GeneratorInstance>();
  for (const j of jobs) if (j.instance && !seen.has(j.instance.key)) seen.set(j.instance.key, j.instance);
  return [...seen.values()];
}

/** Entries of the config by name. */
export function entryNamed(config: StudyConfig, name: string): GeneratorEntry | undefined {
  return config.generators.find((g) => g.name === name);
}

/** Images of `set` at `positions`, with labels. */
function take(set: LabelledSet & { labels: Int32Array }, positions: ArrayLike<number>) {
  return {
    images: pickImages(set.images, Array.from(positions)),
    labels: Int32Array.from(positions as ArrayLike<number>, (p) => set.labels[p]!),
  };
}

function concat(a: ImageArray, b: ImageArray): ImageArray {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  const data = new Uint8Array(a.data.length + b.data.length);
  data.set(a.data as Uint8Array, 0);
  data.set(b.data as Uint8Array, a.data.length);
  return { ...a, data, count: a.count + b.count };
}

/** A job's training set, and which pool images it took (for checks). */
export interface TrainingSet {
  readonly images: ImageArray;
  readonly labels: Int32Array;
  readonly real: number;
  readonly synthetic: number;
  /** Pool positions of the synthetic images, in the order they follow the real ones. */
  readonly poolPositions: readonly number[];
}

/**
 * The pool's labels as a job sees them: the pool's own, or for a shuffled control a seeded permutation of them
 * across the whole pool — the same label counts, each image now under a label that is usually not its class.
 */
export function poolLabelsFor(job: Pick<StudyJob, 'condition' | 'seed'>, labels: Int32Array): Int32Array {
  if (!isShuffled(job.condition)) return labels;
  const rng = Rng.derive(job.seed, 'shuffle', conditionName({ ...job.condition, augment: true }));
  return Int32Array.from(rng.shuffle(Array.from(labels)));
}

/**
 * A job's training set: its real positions, plus per class a seeded choice from the synthetic pool. A shuffled
 * control draws from the pool under permuted labels (`poolLabelsFor`): the same number of synthetic images of
 * each label as its condition, but images of any class behind each label — so the label carries no content,
 * while the class counts, the extra images and the optimiser steps stay those of the condition.
 */
export function trainingSet(
  job: Pick<StudyJob, 'condition' | 'seed' | 'generatorSeed'>,
  real: LabelledSet & { labels: Int32Array },
  pool: (LabelledSet & { labels: Int32Array }) | null,
  numClasses: number,
): TrainingSet {
  const comp = composeTrainingSet(job.condition, real.labels, numClasses, {
    subset: job.generatorSeed ?? 0,
    order: job.seed,
  });
  const picked: number[] = [];
  const labels = pool ? poolLabelsFor(job, pool.labels) : new Int32Array(0);
  if (comp.synthetic.some((n) => n > 0)) {
    if (!pool) throw new StudyError('a condition with synthetic images has no synthetic pool');
    const byClass = positionsByClass(labels, numClasses);
    // Named by the unshuffled, augmented condition, so a `:noaug` twin draws the same images as its
    // condition (and a shuffled control the same positions under its permuted labels).
    const drawName = conditionName({ ...unshuffled(job.condition), augment: true });
    comp.synthetic.forEach((n, k) => {
      if (n === 0) return;
      const members = byClass[k]!;
      if (members.length < n)
        throw new StudyError(
          `the synthetic pool has ${members.length} images of class ${k}; ${n} are needed`,
        );
      picked.push(...Rng.derive(job.seed, 'synthetic', drawName, k).shuffle(members.slice()).slice(0, n));
    });
    picked.sort((a, b) => a - b);
  }
  const r = take(real, comp.real);
  const images = pool
    ? pickImages(pool.images, picked)
    : { ...real.images, count: 0, data: new Uint8Array(0) };
  return {
    images: concat(r.images, images),
    labels: Int32Array.from([...r.labels, ...picked.map((p) => labels[p]!)]),
    real: comp.real.length,
    synthetic: picked.length,
    poolPositions: picked,
  };
}
