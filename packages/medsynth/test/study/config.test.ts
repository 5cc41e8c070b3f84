import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '../../src/runtime/errors.js';
import { readStudyConfigFile, resolveStudyConfig, STUDY_PRESETS } from '../../src/study/config.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'medsynth-study-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('study config', () => {
  test('user values merge into nested preset objects key by key; arrays replace', () => {
    const c = resolveStudyConfig({
      preset: 'tiny',
      data: { source: 'x.npz' },
      generator: { train: { minutes: 2 } },
      evaluate: { extractorEpochs: 3 },
      seeds: [4, 5],
    });
    assert.deepEqual(c.generator.train, { preset: 'tiny', kimg: 0.5, minutes: 2 });
    assert.equal(c.evaluate.extractorEpochs, 3);
    assert.deepEqual(c.evaluate.metrics, STUDY_PRESETS['tiny']!.evaluate!.metrics, 'kept from the preset');
    assert.deepEqual(c.seeds, [4, 5]);
    assert.deepEqual(c.maxImages, STUDY_PRESETS['tiny']!.maxImages);
    assert.equal(c.data.source, 'x.npz');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.generator));
  });

  test("relative paths in a config file are the file's; medmnist: sources and absolute paths are kept", async () => {
    const sub = join(dir, 'configs');
    await mkdir(sub, { recursive: true });
    const yaml = join(sub, 'a.yaml');
    await writeFile(
      yaml,
      [
        'data:',
        '  source: ../data/set',
        '  labelsCsv: labels.csv',
        'generator: { run: runs/00001-cgan }',
        'conditions: [real]',
        '',
      ].join('\n'),
    );
    const a = await readStudyConfigFile(yaml);
    assert.deepEqual(a['data'], { source: join(dir, 'data', 'set'), labelsCsv: join(sub, 'labels.csv') });
    assert.deepEqual(a['generator'], { run: join(sub, 'runs', '00001-cgan') });
    assert.deepEqual(a['conditions'], ['real']);

    const json = join(sub, 'b.json');
    await writeFile(json, JSON.stringify({ data: { source: 'medmnist:pneumoniamnist@64' } }));
    assert.deepEqual((await readStudyConfigFile(json))['data'], { source: 'medmnist:pneumoniamnist@64' });
    await writeFile(json, JSON.stringify({ data: { source: '/abs/p.npz' } }));
    assert.deepEqual((await readStudyConfigFile(json))['data'], { source: '/abs/p.npz' });
  });

  test('unreadable or malformed files are ConfigErrors naming the file', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'data: [unclosed\n');
    for (const file of [bad, join(dir, 'missing.json')])
      await assert.rejects(
        readStudyConfigFile(file),
        (e: unknown) => e instanceof ConfigError && JSON.stringify(e.toJSON()).includes(file),
      );
    const list = join(dir, 'list.json');
    await writeFile(list, '[1, 2]');
    await assert.rejects(readStudyConfigFile(list), ConfigError);
  });
});
