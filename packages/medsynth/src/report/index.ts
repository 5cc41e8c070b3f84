/**
 * The study report: `buildReport(studyDir)` reads a finished study directory (results version 2) and returns
 * one self-contained HTML page (images inlined as data: URIs, charts as inline SVG, no script, no network);
 * `writeReport` writes it atomically to `<studyDir>/report.html` (or another file). Reads files only: no
 * TensorFlow, no database.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../runtime/fs.js';
import {
  accuracyChart,
  augmentChart,
  confusionChart,
  limitedChart,
  lossChart,
  perClassF1Chart,
  privacyChart,
  qualityChart,
  ratioChart,
  renderSvg,
} from './charts.js';
import { reportHtml, type InstanceCharts, type ReportCharts } from './html.js';
import { loadStudyReport, type StudyReportData } from './load.js';

export { loadStudyReport, RESULTS_VERSION, type InstanceReport, type StudyReportData } from './load.js';
export { reportHtml, type InstanceCharts, type ReportCharts, type ReportMeta } from './html.js';

export const REPORT_FILE = 'report.html';

export interface BuildReportOptions {
  /** The "report made" time on the page (default: now). */
  readonly generatedAt?: Date;
}

async function medsynthVersion(): Promise<string | null> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}

/** Renders every chart the study has data for. */
export async function renderReportCharts(data: StudyReportData): Promise<ReportCharts> {
  const s = data.summary;
  let n = 0;
  const svg = async (spec: Parameters<typeof renderSvg>[0] | null): Promise<string | null> =>
    spec ? renderSvg(spec, `chart${++n}`) : null;
  const instances: Record<string, InstanceCharts> = {};
  for (const inst of data.instances) {
    const loss: { run: string; svg: string }[] = [];
    const augment: { run: string; svg: string }[] = [];
    for (const run of inst.runs) {
      const l = await svg(lossChart(run.ticks));
      if (l) loss.push({ run: run.name, svg: l });
      const a = await svg(augmentChart(run.ticks));
      if (a) augment.push({ run: run.name, svg: a });
    }
    const privacy: { space: string; svg: string }[] = [];
    for (const r of inst.evaluation?.records ?? []) {
      if (r.metric !== 'privacy') continue;
      const out = await svg(privacyChart(r));
      if (out) privacy.push({ space: r.extractor === null ? 'pixels' : 'features', svg: out });
    }
    instances[inst.record.key] = { loss, augment, privacy };
  }
  const accuracy = await svg(accuracyChart(s));
  const perClassF1 = await svg(perClassF1Chart(s));
  const ratio = await svg(ratioChart(s));
  const limited = await svg(limitedChart(s));
  const confusion: { classifier: string; svg: string }[] = [];
  for (const classifier of s.classifiers) {
    const out = await svg(confusionChart(s, classifier));
    if (out) confusion.push({ classifier, svg: out });
  }
  const quality: { condition: string; classifier: string; svg: string }[] = [];
  if (s.qualityVsGain)
    for (const condition of s.conditions)
      for (const classifier of s.classifiers) {
        const out = await svg(qualityChart(s.qualityVsGain, condition, classifier));
        if (out) quality.push({ condition, classifier, svg: out });
      }
  return { accuracy, perClassF1, ratio, limited, confusion, instances, quality };
}

/** The report of the study in `studyDir` as one HTML document. Throws `StudyError` when results.json is missing, foreign or of an older version. */
export async function buildReport(studyDir: string, options: BuildReportOptions = {}): Promise<string> {
  const data = await loadStudyReport(studyDir);
  const charts = await renderReportCharts(data);
  return reportHtml(data, charts, {
    generatedAt: options.generatedAt ?? new Date(),
    version: await medsynthVersion(),
  });
}

/** Builds the report and writes it atomically to `file` (default `<studyDir>/report.html`); returns the absolute path. */
export async function writeReport(
  studyDir: string,
  file?: string,
  options: BuildReportOptions = {},
): Promise<string> {
  const out = resolve(file ?? join(studyDir, REPORT_FILE));
  await writeFileAtomic(out, await buildReport(studyDir, options));
  return out;
}
