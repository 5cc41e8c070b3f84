/** Reading a study directory's job rows in tests. */
import { join } from 'node:path';
import { STORE_FILE, StudyStore, type JobRow } from '../../src/study/store.js';

/** Every finished job's row in the study directory's store. */
export function studyRows(studyDir: string): JobRow[] {
  const store = StudyStore.open(join(studyDir, STORE_FILE));
  try {
    return store.jobs();
  } finally {
    store.close();
  }
}
