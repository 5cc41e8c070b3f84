/**
 * A served folder with real outputs, for the browsing tests: a tiny cGAN run trained on PneumoniaMNIST-28
 * (three ticks, so three sample grids), an evaluation of its images written by `writeEvaluation` (FID, KID,
 * PRDC, privacy and the embedding map with its thumbnails), and a copy of the report's sample study
 * (test/fixtures/report/sample-study, whose two training runs sit inside it).
 */
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateSources } from '../../src/metrics/sources.js';
import { writeEvaluation } from '../../src/metrics/write-evaluation.js';
import { selectBackend } from '../../src/runtime/backend.js';
import { trainGan } from '../../src/training/loop.js';
import { tinyTrainOptions } from '../helpers/tiny-train.js';

export const SAMPLE_STUDY = fileURLToPath(new URL('../fixtures/report/sample-study/', import.meta.url));

export interface ServeFolder {
  readonly root: string;
  /** The run's folder and its rel path (`/`-separated, under root). */
  readonly runDir: string;
  readonly runRel: string;
  readonly evalDir: string;
  readonly evalRel: string;
  readonly studyDir: string;
  readonly studyRel: string;
}

const relOf = (root: string, p: string) => relative(root, p).split(sep).join('/');

/** Trains, evaluates and copies into a new temporary folder (about half a minute on two cores). */
export async function makeServeFolder(prefix: string): Promise<ServeFolder> {
  await selectBackend();
  const root = await mkdtemp(join(tmpdir(), prefix));
  const tiny = tinyTrainOptions(() => ({ outDir: join(root, 'runs'), kimg: 0.096, tickKimg: 0.032 }));
  const run = await trainGan(tiny({ model: 'cgan', seed: 1 }));
  const ev = await evaluateSources({
    fake: run.runDir,
    fakeCount: 120,
    metrics: ['fid', 'kid', 'prdc', 'privacy', 'embedding'],
    domain: { epochs: 1, width: 8, maxTrainImages: 600, seed: 3 },
    // A hidden folder: the index never walks into it.
    cacheDir: join(root, '.cache'),
    bootstrap: 0,
    kidSubsets: 10,
    kidSubsetSize: 100,
    embeddingCap: 40,
  });
  const evalDir = join(root, 'evaluations', 'tiny-eval');
  await writeEvaluation(evalDir, ev);
  const studyDir = join(root, 'studies', 'sample-study');
  await cp(SAMPLE_STUDY, studyDir, { recursive: true });
  return {
    root,
    runDir: run.runDir,
    runRel: relOf(root, run.runDir),
    evalDir,
    evalRel: relOf(root, evalDir),
    studyDir,
    studyRel: relOf(root, studyDir),
  };
}

/** `rel` as a URL path, each segment encoded. */
export const enc = (rel: string): string => rel.split('/').map(encodeURIComponent).join('/');
