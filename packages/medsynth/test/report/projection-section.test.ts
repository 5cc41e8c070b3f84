// The report's latent-projection section (report/html.ts): the verdict, medians, p and the labelled picture
// from an evaluation's projection record; a note when it was not computed; nothing without a record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { projectionSection } from '../../src/report/html.js';
import type { EvaluationRecord, InstanceReport, PngFile, StudyReportData } from '../../src/report/load.js';

const data = { summary: { config: { size: 28 } } } as unknown as StudyReportData;

function instance(records: EvaluationRecord[], picture: PngFile | null = null): InstanceReport {
  return { evaluation: { records }, projectionPicture: picture } as unknown as InstanceReport;
}

const record: EvaluationRecord = {
  metric: 'projection',
  comparison: 'fake',
  class: null,
  nReal: 200,
  nCompared: 200,
  extractor: 'domain-x',
  values: {
    medianTrain: 0.0912,
    medianHoldout: 0.0951,
    medianSynthetic: 0.031,
    medianRatio: 0.959,
    p: 0.0123,
    probTrainCloser: 0.571,
    pFeatures: 0.2,
    memorisationSignal: 1,
    secondsPerImage: 1.5,
  },
  details: {
    verdict: 'memorisation signal: training images reconstruct closer than held-out (p=0.0123) <b>',
    space: 'z',
    sets: { train: {}, holdout: {}, synthetic: {} },
  },
};

test('the verdict (escaped, flagged), the medians, p and the counts', () => {
  const html = String(projectionSection(data, instance([record])));
  assert.match(html, /<h4>Latent projection \(memorisation\)<\/h4>/);
  assert.match(html, /<p class="warning"><strong>memorisation signal: .*&lt;b&gt;<\/strong><\/p>/);
  assert.match(html, /0\.0912 training, 0\.0951 held-out, 0\.031 synthetic/);
  assert.match(html, /p 0\.012;/);
  assert.match(html, /on feature distances p 0\.200/);
  assert.match(html, /200 training and 200 held-out images/);
});

test('no signal is not flagged; the picture rows are labelled by set', () => {
  // A 3-set picture: 6 rows of 28 px cells with 2 px gaps.
  const png = { file: 'p.png', bytes: Buffer.from([]), width: 40, height: 6 * 30 + 2 } as PngFile;
  const quiet = { ...record, values: { ...record.values, memorisationSignal: 0 } };
  const html = String(projectionSection(data, instance([quiet], png)));
  assert.doesNotMatch(html, /class="warning"/);
  for (const label of ['training image', 'held-out image', 'synthetic image', 'its projection'])
    assert.ok(html.includes(`>${label}</span>`), label);
});

test('a record without a result shows its note; no record shows nothing', () => {
  const note = { ...record, values: {}, details: undefined, note: 'needs held-out real images' };
  assert.match(String(projectionSection(data, instance([note]))), /Not computed: needs held-out real images/);
  assert.equal(String(projectionSection(data, instance([]))), '');
});
