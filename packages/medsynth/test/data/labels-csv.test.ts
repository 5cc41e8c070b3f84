import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { classIndex, normalizeSplitName, readLabelsCsv } from '../../src/data/labels-csv.js';
import { ConfigError, DatasetError } from '../../src/runtime/errors.js';
import { sharedData } from '../helpers/shared-data.js';

describe('labels CSV', () => {
  test('reads the ISIC labels.csv with its split column', async () => {
    const csv = await readLabelsCsv(sharedData('isic_skin_8class_180', 'labels.csv'));
    assert.equal(csv.rows.length, 1912);
    assert.deepEqual(csv.columns, { path: 'path', label: 'label', split: 'split' });
    assert.equal(csv.rows.filter((r) => r.split === 'test').length, 100);
  });

  test('reads the LC25000 group column', async () => {
    const csv = await readLabelsCsv(sharedData('lc25000_lung_224', 'labels.csv'));
    assert.equal(csv.columns.group, 'group_id');
    assert.equal(new Set(csv.rows.map((r) => r.group)).size, 740);
  });

  test('errors name the file, line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'medsynth-csv-'));
    const bad = join(dir, 'bad.csv');
    await writeFile(bad, 'path,label,split\na.png,x,train\nb.png,y,holdout\n');
    await assert.rejects(
      readLabelsCsv(bad),
      (e: unknown) => e instanceof DatasetError && /bad\.csv.*line 3/.test(e.message),
    );
    const noLabel = join(dir, 'nolabel.csv');
    await writeFile(noLabel, 'file,foo\na.png,1\n');
    await assert.rejects(
      readLabelsCsv(noLabel),
      (e: unknown) => e instanceof DatasetError && /label column/.test(e.message),
    );
    await assert.rejects(readLabelsCsv(noLabel, { labelColumn: 'bar' }), ConfigError);
    const ok = await readLabelsCsv(noLabel, { labelColumn: 'foo' });
    assert.deepEqual(ok.rows[0], { path: 'a.png', label: '1', line: 2 });
  });

  test('class order is numeric for integer labels, else lexicographic', () => {
    assert.deepEqual(classIndex(['10', '2', '1', '2']).classNames, ['1', '2', '10']);
    assert.deepEqual(classIndex(['b', 'a', 'B']).classNames, ['B', 'a', 'b']);
    assert.equal(normalizeSplitName('Validation'), 'val');
    assert.equal(normalizeSplitName('holdout'), undefined);
  });
});
