import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { type EmbeddingMap, parseEmbeddingMap } from '../../src/metrics/embedding-map.js';
import { CLASS_COLOURS, embeddingSection, embeddingSvg } from '../../src/report/embedding-svg.js';
import { buildReport } from '../../src/report/index.js';
import { loadStudyReport } from '../../src/report/load.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/report/sample-study/', import.meta.url));
const INSTANCE = join('generators', 'cgan', 'seed-0', 'all');

/**
 * A valid map without any computation (the report reads files only): `perSet` points per set on two rings,
 * class 0 on the left, class 1 on the right, for PCA and UMAP alike.
 */
function makeMap(
  classNames: readonly string[],
  setKeys: readonly string[],
  perSet: number,
  umap = true,
): EmbeddingMap {
  const points: EmbeddingMap['points'] = [];
  for (const [s, key] of setKeys.entries())
    for (let i = 0; i < perSet; i++) {
      const k = i % classNames.length;
      const angle = (2 * Math.PI * i) / perSet + s;
      const xy: [number, number] = [(k === 0 ? -5 : 5) + Math.cos(angle), Math.sin(angle) + s * 0.1];
      points.push({
        set: key,
        class: classNames[k]!,
        index: i * 2,
        pca: xy,
        umap: umap ? [xy[0] * 2, xy[1] * 2] : null,
      });
    }
  const counts = classNames.map(
    (_, k) => points.filter((p, j) => j < perSet && p.class === classNames[k]).length,
  );
  return parseEmbeddingMap(
    {
      format: 'medsynth-embedding',
      version: 1,
      createdAt: '2025-01-01T00:00:00.000Z',
      seed: 0,
      classNames,
      extractor: { kind: 'domain', key: 'x', dim: 128, description: 'domain CNN' },
      capPerSet: 500,
      sets: setKeys.map((key, s) => ({
        key,
        role: s === setKeys.length - 1 ? 'synthetic' : 'real',
        description: `${key} images from <somewhere>`,
        total: perSet * 2,
        classCounts: counts.map((c) => c * 2),
        sampled: perSet,
        sampledClassCounts: counts,
      })),
      pca: {
        explainedVariance: [4, 1],
        explainedVarianceRatio: [0.4, 0.1],
        totalVariance: 10,
        solver: 'covariance',
        seconds: 0.1,
      },
      umap: umap
        ? {
            nNeighbors: 15,
            minDist: 0.1,
            spread: 1,
            nEpochs: 500,
            metric: 'euclidean',
            init: 'random',
            implementation: 'umap-js',
            seconds: 3,
          }
        : null,
      umapNote: umap ? null : 'UMAP was not asked for',
      thumbnails: null,
      seconds: 3.2,
      points,
    },
    'made in the test',
  );
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'medsynth-report-embedding-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('embedding map SVG', () => {
  test('one panel per set and method; text escaped; renders (sharp/librsvg) with the class colours', async () => {
    const map = makeMap(['normal', '<b>x</b> & "y"'], ['train', 'test', 'synthetic'], 60);
    const svg = embeddingSvg(map, { idPrefix: 'm1' });
    assert.ok(!svg.includes('<b>'), 'class name escaped');
    assert.ok(svg.includes('&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;'));
    assert.equal((svg.match(/<use href="#m1-(pca|umap)-all"/g) ?? []).length, 6, '3 sets × 2 methods');
    assert.match(svg, /PC1 \(40\.0 %\)/);
    assert.match(svg, />UMAP</);
    // coloured points: every point once per method
    assert.equal((svg.match(/r="2.2"/g) ?? []).length, 2 * 180);
    assert.ok(!/data-i=/.test(svg));
    assert.equal((embeddingSvg(map, { pointIndex: true }).match(/data-i="/g) ?? []).length, 360);
    // PCA only when there is no UMAP
    const pcaOnly = embeddingSvg(makeMap(['a', 'b'], ['train', 'synthetic'], 20, false));
    assert.ok(!/UMAP/.test(pcaOnly.replace(/<title[^]*?<\/title>/, '')));

    // A real renderer parses it and draws both class colours.
    const { data, info } = await sharp(Buffer.from(svg)).raw().toBuffer({ resolveWithObject: true });
    const hex = (i: number) =>
      `#${[0, 1, 2].map((c) => data[i + c]!.toString(16).padStart(2, '0')).join('')}`;
    const seen = new Set<string>();
    for (let i = 0; i < data.length; i += info.channels) seen.add(hex(i));
    for (const colour of CLASS_COLOURS.slice(0, 2)) assert.ok(seen.has(colour), colour);
  });

  test('the section lists the sets and explains the map; no map and no note renders nothing', () => {
    const map = makeMap(['normal', 'pneumonia'], ['train', 'synthetic'], 10);
    const html = embeddingSection(map, null, 'e0').toString();
    assert.match(html, /<h4>Embedding map<\/h4>/);
    assert.match(html, /from &lt;somewhere&gt;/);
    assert.match(html, /normal 5, pneumonia 5/);
    assert.match(html, /40\.0 % and 10\.0 %/);
    assert.equal(embeddingSection(null, null, 'e1').toString(), '');
    assert.match(embeddingSection(null, 'it <broke>', 'e2').toString(), /it &lt;broke&gt;/);
  });
});

describe('embedding map in the study report', () => {
  test('an instance with evaluation/embedding.json shows the map, escaped; a broken file a note', async () => {
    const dir = join(root, 'study');
    await cp(FIXTURE, dir, { recursive: true });
    const file = join(dir, INSTANCE, 'evaluation', 'embedding.json');
    await writeFile(
      file,
      JSON.stringify(makeMap(['normal', '<script>alert(1)</script>'], ['train', 'test', 'synthetic'], 40)),
    );
    const data = await loadStudyReport(dir);
    const inst = data.instances.find((i) => i.record.key === 'cgan/seed-0/all')!;
    assert.ok(inst.embedding);
    assert.equal(inst.embeddingNote, null);
    assert.equal(data.instances.find((i) => i.record.key !== 'cgan/seed-0/all')?.embedding, null);
    const html = await buildReport(dir, { generatedAt: new Date(0) });
    assert.match(html, /<h4>Embedding map<\/h4>/);
    assert.equal((html.match(/<svg[^>]*class="embedding-map"/g) ?? []).length, 1);
    assert.ok(!html.includes('<script>'), 'no script from the map');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));

    await writeFile(file, '{"format": "medsynth-embedding", "version": 1}');
    const broken = await buildReport(dir, { generatedAt: new Date(0) });
    assert.match(
      broken,
      /The embedding map could not be read: generators\/cgan\/seed-0\/all\/evaluation\/embedding\.json \[createdAt\]: invalid embedding map/,
    );
    assert.ok(!broken.includes(file), 'the file named relative to the study');
  });
});
