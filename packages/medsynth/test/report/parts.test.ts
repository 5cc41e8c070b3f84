// The report's small parts: condition parsing for the charts, cell labels, SVG id scoping, number formats,
// escaping, PNG sizes, stats.jsonl parsing, the charts' "nothing to draw" cases, and the quality-vs-gain
// scatter and table of a StudySummary (version 2) built here by hand.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  augmentChart,
  bestAugmented,
  cellLabel,
  cellLabels,
  limitedFraction,
  lossChart,
  privacyChart,
  qualityChart,
  renderSvg,
  scopeSvgIds,
  syntheticRatio,
} from '../../src/report/charts.js';
import { count, fixed, pct, pctInterval, pValue, signedPct, stat } from '../../src/report/format.js';
import { LOGIT_MARK, reportHtml } from '../../src/report/html.js';
import { renderReportCharts } from '../../src/report/index.js';
import { parseStats, pngSize, type EvaluationRecord, type StudyReportData } from '../../src/report/load.js';
import { escapeHtml, h, raw } from '../../src/report/markup.js';
import { resolveStudyConfig } from '../../src/study/config.js';
import type {
  CellSummary,
  Comparison,
  CorrelationCell,
  InstanceRecord,
  Interval,
  Quality,
  QualityVsGain,
  StudySummary,
} from '../../src/study/summary.js';

describe('condition names', () => {
  const cases: [string, number | null, { fraction: number; topUp: boolean } | null][] = [
    ['real', 0, null],
    ['synthetic', null, null],
    ['real+synthetic×1', 1, null],
    ['real+synthetic×0.5', 0.5, null],
    ['rebalanced', null, null],
    ['limited-10%', null, { fraction: 0.1, topUp: false }],
    ['limited-12.5%+synthetic', null, { fraction: 0.125, topUp: true }],
    ['limited-10%+other', null, null],
  ];
  for (const [name, ratio, limited] of cases)
    test(name, () => {
      assert.equal(syntheticRatio(name), ratio);
      assert.deepEqual(limitedFraction(name), limited);
    });
});

describe('number formats', () => {
  const cases: [string, string, string][] = [
    [pct(0.795), '79.5', 'pct'],
    [pct(null), '–', 'pct of nothing'],
    [pct(Number.NaN), '–', 'pct of NaN'],
    [signedPct(0.04), '+4.0', 'gain'],
    [signedPct(-0.125), '−12.5', 'loss, typographic minus'],
    [signedPct(-0.0001), '0.0', 'no signed zero'],
    [pValue(0.0004), '< 0.001', 'tiny p'],
    [pValue(0.0337), '0.034', 'p'],
    [pValue(null), '–', 'no p'],
    [stat(2834.2233), '2834', 'four digits'],
    [stat(0.27585844), '0.2759', 'four significant digits'],
    [stat(0.00012345), '1.23e−4', 'exponent when tiny'],
    [stat(Number.POSITIVE_INFINITY), '∞', 'infinite ratio'],
    [stat(null), '–', 'missing'],
    [count(39), '39', 'integer count'],
    [count(12.333), '12.3', 'mean count'],
    [fixed(-0.5213), '−0.52', 'ρ, typographic minus'],
    [fixed(-0.001), '0.00', 'no signed zero in ρ'],
    [fixed(null), '–', 'no ρ'],
  ];
  for (const [got, expected, what] of cases) test(what, () => assert.equal(got, expected));

  test('intervals: none for one seed, signed for differences', () => {
    assert.equal(pctInterval({ n: 1, mean: 0.5, std: null, ci: [0.5, 0.5], method: 't' }), '');
    assert.equal(pctInterval({ n: 3, mean: 0.5, std: 0.1, ci: [0.4, 0.6], method: 't' }), '[40.0, 60.0]');
    assert.equal(
      pctInterval({ n: 3, mean: 0, std: 0.1, ci: [-0.02, 0.03], method: 'logit-t' }, true),
      '[−2.0, +3.0]',
    );
  });
});

describe('markup', () => {
  test('interpolations are escaped, Html is kept, lists are joined, nothing renders nothing', () => {
    const name = `<b>&x"'`;
    assert.equal(escapeHtml(name), '&lt;b&gt;&amp;x&quot;&#39;');
    assert.equal(
      h`<td title="${name}">${name}</td>`.value,
      `<td title="${escapeHtml(name)}">${escapeHtml(name)}</td>`,
    );
    assert.equal(h`<p>${raw('<em>ok</em>')}</p>`.value, '<p><em>ok</em></p>');
    assert.equal(
      h`<ul>${['a<', 'b'].map((x) => h`<li>${x}</li>`)}</ul>`.value,
      '<ul><li>a&lt;</li><li>b</li></ul>',
    );
    assert.equal(h`${null}${undefined}${false}${0}`.value, '0');
  });
});

describe('SVG ids', () => {
  test('ids and their references are prefixed, other text is left alone', () => {
    const svg =
      '<svg><defs><clipPath id="clip1"><rect/></clipPath></defs><g clip-path="url(#clip1)"><use href="#clip1"/><text>url(#other) id="x"</text></g></svg>';
    const out = scopeSvgIds(svg, 'chart3');
    assert.match(out, /id="chart3-clip1"/);
    assert.match(out, /clip-path="url\(#chart3-clip1\)"/);
    assert.match(out, /href="#chart3-clip1"/);
    assert.match(out, /url\(#other\)/);
    assert.equal(scopeSvgIds('<svg><g/></svg>', 'c'), '<svg><g/></svg>');
  });
});

describe('files', () => {
  test('pngSize reads the IHDR and refuses what is not a PNG', () => {
    const header = Buffer.from('89504e470d0a1a0a0000000d49484452000001230000004500', 'hex');
    assert.deepEqual(pngSize(header), { width: 0x123, height: 0x45 });
    assert.equal(pngSize(Buffer.from('GIF89a and more bytes here....')), null);
    assert.equal(pngSize(header.subarray(0, 20)), null);
  });

  test('parseStats keeps the ticks, skips a cut-off line and lines without kimg', () => {
    const ticks = parseStats(
      [
        '{"kimg":0.25,"dLoss":1.5,"gLoss":0.5,"penalty":null,"augmentP":0}',
        '',
        '{"tick":2}',
        '{"kimg":0.5,"dLoss":1.2,"gLoss":"NaN","augmentP":0.1}',
        '{"kimg":0.75,"dLo',
      ].join('\n'),
    );
    assert.equal(ticks.length, 2);
    assert.equal(ticks[1]!.gLoss, null);
    assert.equal(ticks[1]!.augmentP, 0.1);
  });
});

describe('charts', () => {
  test('nothing to draw: no ticks, ADA never moved, a privacy record without a histogram', () => {
    assert.equal(lossChart([]), null);
    const tick = {
      kimg: 1,
      dLoss: 1,
      gLoss: 1,
      penalty: null,
      augmentP: 0,
      imagesPerSecond: null,
      seconds: null,
    };
    assert.equal(augmentChart([tick]), null);
    assert.notEqual(augmentChart([tick, { ...tick, kimg: 2, augmentP: 0.2 }]), null);
    const record: EvaluationRecord = {
      metric: 'privacy',
      comparison: 'fake',
      class: null,
      nReal: 1,
      nCompared: 1,
      extractor: null,
      values: {},
    };
    assert.equal(privacyChart(record), null);
  });

  test('renders a loss chart to an SVG with scoped ids and escaped text', async () => {
    const spec = lossChart([
      { kimg: 0.25, dLoss: 2, gLoss: 1, penalty: null, augmentP: 0, imagesPerSecond: 100, seconds: 1 },
      { kimg: 0.5, dLoss: 1, gLoss: 2, penalty: 0.5, augmentP: 0, imagesPerSecond: 100, seconds: 2 },
    ])!;
    const svg = await renderSvg(spec, 'loss');
    assert.match(svg, /^<svg[^>]*viewBox=/);
    assert.match(svg, />D loss</);
    assert.match(svg, />penalty</);
    for (const m of svg.matchAll(/\sid="([^"]+)"/g)) assert.ok(m[1]!.startsWith('loss-'), m[1]);
  });
});

// ---- a StudySummary (version 2) by hand ----------------------------------------------------------------

const iv = (
  mean: number,
  n = 1,
  ci: [number, number] = [mean, mean],
  method: Interval['method'] = 't',
): Interval => ({
  n,
  mean,
  std: n > 1 ? 0.01 : null,
  ci,
  method,
});

const noQuality: Quality = {
  fid: null,
  kid: null,
  precision: null,
  recall: null,
  coverage: null,
  msssimRatio: null,
  classFidelity: null,
};

function cell(
  generator: string | null,
  condition: string,
  accuracy: Interval,
  comparisons: Comparison[] = [],
): CellSummary {
  return {
    generator,
    condition,
    classifier: 'cnn',
    seeds: [0, 1, 2],
    generatorSeeds: generator ? [0, 1, 2] : [],
    units: generator ? 'generator seeds' : 'classifier seeds',
    jobs: generator ? 9 : 3,
    trainReal: 100,
    trainSynthetic: generator ? 100 : 0,
    trainClassCounts: generator ? [80, 120] : [40, 60],
    metrics: {
      accuracy,
      balancedAccuracy: iv(0.7, 3, [0.65, 0.75]),
      macroF1: iv(0.69, 3, [0.64, 0.74]),
      auc: iv(0.81, 3, [0.78, 0.84]),
      sensitivity: iv(0.9, 3, [0.85, 0.95]),
      specificity: iv(0.5, 3, [0.4, 0.6]),
    },
    minorityF1: iv(0.55, 3, [0.5, 0.6]),
    perClass: {
      precision: [iv(0.6, 3, [0.5, 0.7]), iv(0.8, 3, [0.7, 0.9])],
      recall: [iv(0.5, 3, [0.4, 0.6]), iv(0.9, 3, [0.85, 0.95])],
      f1: [iv(0.55, 3, [0.5, 0.6]), iv(0.85, 3, [0.8, 0.9])],
    },
    confusion: [
      [10, 10],
      [3, 27],
    ],
    comparisons,
    seconds: 3,
  };
}

/**
 * Three instances of one generator (seeds 0–2) on the whole split, real and real+synthetic×1 for one
 * classifier, and quality vs gain over the three: FID 30 / 20 / 10 against Δ accuracy −2 / +1 / +3 points.
 */
function handMadeSummary(generator: string): StudySummary {
  const config = resolveStudyConfig({
    data: { source: 'medmnist:pneumoniamnist' },
    generators: [{ name: 'gan', train: { model: 'cgan' } }],
    generatorSeeds: 3,
    conditions: ['real', 'real+synthetic:1'],
    classifiers: ['cnn'],
    seeds: [0, 1, 2],
  });
  const fids = [30, 20, 10];
  const gains = [-0.02, 0.01, 0.03];
  const instances: InstanceRecord[] = fids.map((fid, g) => ({
    key: `gan/seed-${g}/all`,
    generator,
    generatorSeed: g,
    fraction: null,
    perClassModels: false,
    existingRun: false,
    runs: [{ dir: `/elsewhere/gan/seed-${g}/all/00000-run`, checkpoint: 'x', kimg: 2 }],
    trainedOn: { images: 100, classCounts: [40, 60], what: 'the whole train split (100 images)' },
    pool: { images: 100, seconds: 4, perClass: [40, 60] },
    fidelity: { accuracy: 0.9, balancedAccuracy: 0.88 },
    evaluation: null,
    quality: { ...noQuality, fid, precision: 0.5 + 0.1 * g },
  }));
  const condition = 'real+synthetic×1';
  const qualityVsGain: QualityVsGain = {
    points: instances.map((i, g) => ({
      instance: i.key,
      generator,
      generatorSeed: g,
      condition,
      classifier: 'cnn',
      quality: i.quality!,
      effect: { accuracy: gains[g]!, balancedAccuracy: gains[g]! / 2, minorityF1: null },
    })),
    correlations: [
      ...(['fid', 'precision', 'kid'] as const).flatMap((quality) =>
        (['accuracy', 'balancedAccuracy', 'minorityF1'] as const).map((effect): CorrelationCell => ({
          quality,
          effect,
          condition,
          classifier: 'cnn',
          n: quality === 'kid' || effect === 'minorityF1' ? 0 : 3,
          rho: quality === 'kid' || effect === 'minorityF1' ? null : quality === 'fid' ? -1 : 1,
          p: quality === 'kid' || effect === 'minorityF1' ? null : 1 / 3,
          pMethod: quality === 'kid' || effect === 'minorityF1' ? null : 'exact-permutation',
          ci: null,
        })),
      ),
    ],
  };
  const diff = iv(0.0067, 3, [-0.05, 0.06], 'logit-t');
  const comparison: Comparison = {
    against: 'real',
    againstGenerator: null,
    role: 'baseline',
    diff: { accuracy: diff, balancedAccuracy: iv(0.003, 3, [-0.02, 0.03]), minorityF1: null },
    pairedT: { p: 0.8, t: 0.3, n: 3 },
    mcnemar: { b: 12, c: 14, p: 0.85 },
    pHolm: 0.85,
    judgement: { direction: 'none', basis: 'neither test finds a difference' },
  };
  return {
    failures: [],
    format: 'medsynth-study-results',
    version: 2,
    createdAt: '2026-12-06T00:00:00.000Z',
    config,
    classNames: ['normal', 'pneumonia'],
    testCount: 50,
    testClassCounts: [20, 30],
    minorityClass: 0,
    conditions: ['real', condition],
    classifiers: ['cnn'],
    generators: [generator],
    instances,
    cells: [
      cell(null, 'real', iv(0.74, 3, [0.7, 0.78])),
      cell(generator, condition, iv(0.7467, 3, [0.6, 0.85], 'logit-t'), [comparison]),
    ],
    qualityVsGain,
    verdicts: [
      { question: 'quality', classifier: 'cnn', generator: null, text: `cnn, ${condition}: made up.` },
    ],
    statistics: 'Intervals over generator seeds (made up).',
    jobs: [],
  };
}

/** The report data of a summary with no files at all (no grids, no evaluations, no runs). */
function dataOf(summary: StudySummary): StudyReportData {
  return {
    dir: '/nowhere/study',
    summary,
    realGrid: null,
    instances: summary.instances.map((record) => ({
      record,
      dir: `/nowhere/study/generators/${record.key}`,
      syntheticGrid: null,
      evaluation: null,
      evaluationNote: 'No evaluation (made up).',
      privacyPictures: { features: null, pixels: null },
      runs: [],
      runsNote: 'Its training run is not in the study folder.',
    })),
    files: { 'results.json': true, 'results.csv': false, 'study.sqlite': false, 'study.json': false },
  };
}

const points = (svg: string) => (svg.match(/aria-roledescription="point"/g) ?? []).length;

describe('cells of several generators', () => {
  test('labels: generator-free conditions first, then each generator’s, in condition order', () => {
    const s = handMadeSummary('gan');
    assert.equal(cellLabel(s.cells[1]!), 'gan: real+synthetic×1');
    assert.equal(cellLabel(s.cells[0]!), 'real');
    assert.deepEqual(cellLabels({ ...s, cells: [...s.cells].reverse() }), ['real', 'gan: real+synthetic×1']);
  });

  test('the best augmented cell of a classifier, of one generator when asked', () => {
    const s = handMadeSummary('gan');
    assert.equal(bestAugmented(s.cells, 'cnn')?.condition, 'real+synthetic×1');
    assert.equal(bestAugmented(s.cells, 'cnn', 'other'), null);
  });
});

describe('quality vs gain (a hand-made summary with three instances)', () => {
  test('the scatter has one point per instance, labelled with generator and seed', async () => {
    const s = handMadeSummary('gan');
    assert.equal(qualityChart(s.qualityVsGain!, 'real', 'cnn'), null, 'no points for real');
    const one = { ...s.qualityVsGain!, points: s.qualityVsGain!.points.slice(0, 1) };
    assert.equal(qualityChart(one, 'real+synthetic×1', 'cnn'), null, 'one point: nothing to correlate');
    const svg = await renderSvg(qualityChart(s.qualityVsGain!, 'real+synthetic×1', 'cnn')!, 'q');
    assert.equal(points(svg), 3);
    for (const g of [0, 1, 2]) assert.match(svg, new RegExp(`>gan seed ${g}</text>`));
    assert.match(svg, />FID \(lower is better\)</);
  });

  test('the page: one scatter, the Spearman rows the instances have, a logit footnote, escaped names', async () => {
    const bad = '<script>x</script>';
    const s = handMadeSummary(bad);
    const data = dataOf(s);
    const page = reportHtml(data, await renderReportCharts(data), {
      generatedAt: new Date(0),
      version: null,
    });
    assert.doesNotMatch(page, /<script/);
    const quality = page.slice(page.indexOf('<section id="quality">'), page.indexOf('<section id="charts">'));
    assert.equal((quality.match(/<svg[\s>]/g) ?? []).length, 1);
    assert.equal(points(quality), 3);
    assert.ok(quality.includes(`>${escapeHtml(bad)} seed 2</text>`), 'escaped point label');
    assert.ok(
      quality.includes(
        '<tr><td>FID</td><td>Δ accuracy</td><td class="num">3</td><td class="num">−1.00</td><td class="num">0.333</td><td>exact permutation</td><td class="num">needs n ≥ 4</td></tr>',
      ),
      'Spearman row of FID × Δ accuracy',
    );
    assert.ok(
      quality.includes(
        '<tr><td>precision</td><td>Δ balanced accuracy</td><td class="num">3</td><td class="num">1.00</td>',
      ),
    );
    assert.doesNotMatch(quality, /<td>KID<\/td>|Δ minority-class F1/, 'rows with no instance are left out');
    // generator instances: three blocks, headed with the escaped name
    assert.equal(page.split('<section class="instance"').length - 1, 3);
    assert.ok(page.includes(`<h3>${escapeHtml(bad)} · generator seed 1 · whole train split</h3>`));
    assert.ok(page.includes('FID 20 · precision 0.6'), 'quality figures of seed 1');
    // the generator cell is over three generator seeds and its intervals are on the logit scale
    assert.ok(page.includes(`74.7 <span class="ci">[60.0, 85.0]</span><sup class="fn">${LOGIT_MARK}</sup>`));
    assert.ok(page.includes(`+0.7 <span class="ci">[−5.0, +6.0]</span><sup class="fn">${LOGIT_MARK}</sup>`));
    assert.match(page, /<td class="num" title="3 generator seeds">3 gen\.<\/td>/);
    assert.ok(page.includes(`${LOGIT_MARK} 95 % interval computed on the logit scale`));
  });
});
