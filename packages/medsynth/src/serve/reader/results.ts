/**
 * A reader study's results from its folder alone: the stored design, items and answers
 * (`reader-study.sqlite`) through the statistics of study/reader-stats.ts. No TF.js, no images: the truth of
 * each item is in the database.
 */
import { readerStudyStats, type ReaderStudyStats } from '../../study/reader-stats.js';
import { type DesignRecord, type StoredAnswer, type StoredItem, withReadStore } from './store.js';

export interface ReaderStudyResults {
  /** null before the first answer. */
  readonly design: DesignRecord | null;
  readonly stats: ReaderStudyStats;
}

export interface ReaderStudyData {
  readonly design: DesignRecord | null;
  readonly items: readonly StoredItem[];
  readonly answers: readonly StoredAnswer[];
}

/** The stored design, items and answers of the reader study in `folder` (empty when it has none). */
export function readReaderStudy(folder: string): ReaderStudyData {
  return withReadStore<ReaderStudyData>(folder, { design: null, items: [], answers: [] }, (s) => ({
    design: s.design(),
    items: s.items(),
    answers: s.answers(),
  }));
}

/** The statistics of the reader study in `folder`. */
export function readerStudyResults(
  folder: string,
  options: { level?: number; alpha?: number } = {},
): ReaderStudyResults {
  const data = readReaderStudy(folder);
  return {
    design: data.design,
    stats: readerStudyStats({
      items: data.items,
      answers: data.answers,
      classNames: data.design?.classNames ?? [],
      ...options,
    }),
  };
}
