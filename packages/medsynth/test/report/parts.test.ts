// The report's small parts: condition parsing for the charts, SVG id scoping, number formats, escaping,
// PNG sizes, stats.jsonl parsing, and the charts' "nothing to draw" cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  augmentChart,
  limitedFraction,
  lossChart,
  privacyChart,
  renderSvg,
  scopeSvgIds,
  syntheticRatio,
} from '../../src/report/charts.js';
import { count, pct, pctInterval, pValue, signedPct, stat } from '../../src/report/format.js';
import { parseStats, pngSize, type EvaluationRecord } from '../../src/report/load.js';
import { escapeHtml, h, raw } from '../../src/report/markup.js';

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
  ];
  for (const [got, expected, what] of cases) test(what, () => assert.equal(got, expected));

  test('intervals: none for one seed, signed for differences', () => {
    assert.equal(pctInterval({ n: 1, mean: 0.5, std: null, ci: [0.5, 0.5] }), '');
    assert.equal(pctInterval({ n: 3, mean: 0.5, std: 0.1, ci: [0.4, 0.6] }), '[40.0, 60.0]');
    assert.equal(pctInterval({ n: 3, mean: 0, std: 0.1, ci: [-0.02, 0.03] }, true), '[−2.0, +3.0]');
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
