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
    assert.deepEqual(c.generators.length, 1);
    assert.deepEqual(c.generators[0]!.train, { preset: 'tiny', kimg: 0.5, minutes: 2, model: 'cgan' });
    assert.equal(c.generators[0]!.name, 'cgan');
    assert.equal(c.evaluate.extractorEpochs, 3);
    assert.deepEqual(c.evaluate.metrics, STUDY_PRESETS['tiny']!.evaluate!.metrics, 'kept from the preset');
    assert.deepEqual(c.seeds, [4, 5]);
    assert.deepEqual(c.maxImages, STUDY_PRESETS['tiny']!.maxImages);
    assert.equal(c.data.source, 'x.npz');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.generators));
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
        'generators: [ddpm, { name: b, run: ../runs/x }]',
        'conditions: [real]',
        '',
      ].join('\n'),
    );
    const a = await readStudyConfigFile(yaml);
    assert.deepEqual(a['data'], { source: join(dir, 'data', 'set'), labelsCsv: join(sub, 'labels.csv') });
    assert.deepEqual(a['generator'], { run: join(sub, 'runs', '00001-cgan') });
    assert.deepEqual(a['generators'], ['ddpm', { name: 'b', run: join(dir, 'runs', 'x') }]);
    assert.deepEqual(a['conditions'], ['real']);

    const json = join(sub, 'b.json');
    await writeFile(json, JSON.stringify({ data: { source: 'medmnist:pneumoniamnist@64' } }));
    assert.deepEqual((await readStudyConfigFile(json))['data'], { source: 'medmnist:pneumoniamnist@64' });
    await writeFile(json, JSON.stringify({ data: { source: '/abs/p.npz' } }));
    assert.deepEqual((await readStudyConfigFile(json))['data'], { source: '/abs/p.npz' });
  });

  test('the generator axis: family names, shared settings under every entry, a named generator alone', () => {
    const data = { source: 'x.npz' };
    const c = resolveStudyConfig({
      preset: 'quick',
      data,
      generators: [
        'cgan',
        { train: { model: 'ddpm', minutes: 5 } },
        { train: { model: 'dcgan' }, perClassModels: true },
      ],
      generator: { train: { minutes: 4, lecam: 0.1 }, truncation: 0.9 },
      generatorSeeds: 2,
    });
    assert.deepEqual(
      c.generators.map((g) => [
        g.name,
        g.train['model'],
        g.train['minutes'],
        g.train['lecam'],
        g.truncation,
        g.perClassModels,
      ]),
      [
        ['cgan', 'cgan', 4, 0.1, 0.9, false],
        ['ddpm', 'ddpm', 5, 0.1, 0.9, false],
        ['dcgan-per-class', 'dcgan', 4, 0.1, 0.9, true],
      ],
    );
    assert.equal(c.generatorSeeds, 2);
    // The preset's generators keep their family when the user only changes the budget …
    const r = resolveStudyConfig({ preset: 'replacement', data, generator: { train: { minutes: 1 } } });
    assert.deepEqual(
      r.generators.map((g) => [g.name, g.train['minutes']]),
      [
        ['cgan', 1],
        ['stylegan2', 1],
        ['pggan', 1],
        ['ddpm', 1],
      ],
    );
    // … and a generator that names a model or a run is the whole axis (the single-generator form).
    assert.deepEqual(
      resolveStudyConfig({
        preset: 'replacement',
        data,
        generator: { train: { model: 'ddpm' } },
      }).generators.map((g) => g.name),
      ['ddpm'],
    );
    const run = resolveStudyConfig({
      preset: 'quick',
      data,
      generator: { run: '/runs/00001-cgan-x' },
      conditions: ['real', 'synthetic'],
    });
    assert.deepEqual(
      run.generators.map((g) => [g.name, g.run]),
      [['00001-cgan-x', '/runs/00001-cgan-x']],
    );
  });

  test('generator entries the study cannot use honestly are refused, naming the field', () => {
    const data = { source: 'x.npz' };
    const refused = (input: Parameters<typeof resolveStudyConfig>[0], field: RegExp, message: RegExp) =>
      assert.throws(
        () => resolveStudyConfig(input),
        (e: unknown) => e instanceof ConfigError && field.test(e.message) && message.test(e.message),
      );
    // An existing run saw the whole train split: it cannot top up a limited subset.
    refused(
      { preset: 'quick', data, generator: { run: '/runs/r' } },
      /generators\.0\.run/,
      /limited-10%\+synthetic|limited:0\.1\+synthetic/,
    );
    refused(
      {
        preset: 'quick',
        data,
        generator: { run: '/runs/r' },
        conditions: ['real', 'synthetic'],
        generatorSeeds: 2,
      },
      /generators\.0\.run/,
      /one generator seed/,
    );
    refused({ preset: 'quick', data, generators: ['cgan', 'cgan'] }, /generators\.1\.name/, /two generators/);
    refused(
      { preset: 'quick', data, generators: [{ perClassModels: true }] },
      /generators\.0\.train\.model/,
      /unconditional/,
    );
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
