/**
 * The study report: `buildReport(studyDir)` reads a finished study directory and returns one self-contained
 * HTML page (images inlined as data: URIs, charts as inline SVG, no script, no network); `writeReport` writes
 * it atomically to `<studyDir>/report.html` (or another file). Reads files only: no TensorFlow, no database.
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
  ratioChart,
  renderSvg,
} from './charts.js';
import { reportHtml, type ReportCharts } from './html.js';
import { loadStudyReport, type StudyReportData } from './load.js';

export { loadStudyReport, type StudyReportData } from './load.js';
export { reportHtml, type ReportCharts, type ReportMeta } from './html.js';

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
  const ticks = data.gan?.ticks ?? [];
  const loss = await svg(lossChart(ticks));
  const augment = await svg(augmentChart(ticks));
  const accuracy = await svg(accuracyChart(s));
  const perClassF1 = await svg(perClassF1Chart(s));
  const ratio = await svg(ratioChart(s));
  const limited = await svg(limitedChart(s));
  const confusion: { classifier: string; svg: string }[] = [];
  for (const classifier of s.classifiers) {
    const out = await svg(confusionChart(s, classifier));
    if (out) confusion.push({ classifier, svg: out });
  }
  const privacy: { space: string; svg: string }[] = [];
  for (const r of data.evaluation?.records ?? []) {
    if (r.metric !== 'privacy') continue;
    const out = await svg(privacyChart(r));
    if (out) privacy.push({ space: r.extractor === null ? 'pixels' : 'features', svg: out });
  }
  return { loss, augment, accuracy, perClassF1, ratio, limited, confusion, privacy };
}

/** The report of the study in `studyDir` as one HTML document. Throws `StudyError` when results.json is missing or foreign. */
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
