// The study report built from a copy of a finished tiny study (test/fixtures/report/sample-study: the output
// of `medsynth study --preset tiny` on PneumoniaMNIST, one seed, without study.sqlite and GAN checkpoints).
// Expected cells are computed here from results.json / evaluation.json, never copied from the page.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerReportCommand } from '../../src/cli/report.js';
import { buildReport, writeReport } from '../../src/report/index.js';
import { StudyError } from '../../src/runtime/errors.js';
import { resolveStudyConfig, studyConditions } from '../../src/study/config.js';
import type { JobRow } from '../../src/study/store.js';
import { summariseStudy, type StudySummary } from '../../src/study/summary.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/report/sample-study/', import.meta.url));
let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'medsynth-report-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

let copies = 0;
async function copyStudy(name = `study-${++copies}`): Promise<string> {
  const dir = join(root, name);
  await cp(FIXTURE, dir, { recursive: true });
  return dir;
}

async function readSummary(dir: string): Promise<StudySummary> {
  return JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as StudySummary;
}

async function editJson(file: string, edit: (v: Record<string, unknown>) => void): Promise<void> {
  const v = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(v);
  await writeFile(file, JSON.stringify(v));
}

/** HTML-escaped text (an independent copy of the report's rule). */
const esc = (t: string) =>
  t
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
const svgCount = (page: string) => (page.match(/<svg[\s>]/g) ?? []).length;
const pct = (v: number) => (100 * v).toFixed(1);
/** A numeric table cell as the report writes it. */
const numCell = (text: string) =>
  new RegExp(`<td class="num[^"]*"(?: title="[^"]*")?>${text.replace(/[.+]/g, '\\$&')}</td>`);

describe('study report (sample study)', () => {
  let dir: string;
  let page: string;
  let summary: StudySummary;

  before(async () => {
    dir = await copyStudy();
    summary = await readSummary(dir);
    page = await buildReport(dir);
  });

  test('is one self-contained HTML document: no scripts, no external references, a CSP forbidding the network', () => {
    assert.match(page, /^<!DOCTYPE html>/);
    assert.match(page, /<\/html>\s*$/);
    assert.doesNotMatch(page, /<script/i);
    assert.match(page, /Content-Security-Policy" content="default-src 'none'/);
    // every src/href is inline data or an in-page anchor
    for (const m of page.matchAll(/\s(?:src|href|xlink:href)="([^"]*)"/g))
      assert.ok(/^(?:data:|#)/.test(m[1]!), `external reference ${m[1]!.slice(0, 80)}`);
    assert.doesNotMatch(page, /url\((?!#)/, 'no CSS url() other than in-SVG references');
  });

  test('names every condition and classifier, and carries every verdict', () => {
    for (const c of summary.conditions) assert.ok(page.includes(`<td>${c}</td>`), `condition ${c} row`);
    for (const c of summary.classifiers) assert.ok(page.includes(`<h3>${c}</h3>`), `classifier ${c} table`);
    assert.ok(summary.verdicts.length > 0);
    for (const v of summary.verdicts)
      assert.ok(page.includes(esc(v.text)), `verdict: ${v.text.slice(0, 60)}`);
  });

  test('shows every cell’s accuracy, macro F1 and Δ accuracy as the table formats them', () => {
    for (const c of summary.cells) {
      assert.match(page, numCell(pct(c.metrics.accuracy!.mean)), `${c.classifier}/${c.condition} accuracy`);
      assert.match(page, numCell(pct(c.metrics.macroF1!.mean)), `${c.classifier}/${c.condition} macro F1`);
      assert.match(page, numCell(`${c.trainReal} + ${c.trainSynthetic}`));
      const d = c.vsReal?.accuracyDiff?.mean;
      if (d !== undefined) {
        const text = (100 * d).toFixed(1);
        assert.match(page, numCell(d > 0 ? `+${text}` : `−${text.replace('-', '')}`));
      }
    }
  });

  test('shows the evaluation’s FID of the synthetic images and the extractor’s description', async () => {
    const ev = JSON.parse(await readFile(join(dir, 'evaluation', 'evaluation.json'), 'utf8')) as {
      records: { metric: string; comparison: string; class: string | null; values: Record<string, number> }[];
      extractor: { description: string };
    };
    const fid = ev.records.find((r) => r.metric === 'fid' && r.comparison === 'fake' && r.class === null)!;
    assert.match(page, numCell(String(Number(fid.values['fid']!.toPrecision(4)))));
    const floor = ev.records.find((r) => r.metric === 'fid' && r.comparison === 'floor' && r.class === null)!;
    assert.match(page, numCell(String(Number(floor.values['fid']!.toPrecision(4)))));
    assert.ok(page.includes('held-out real (floor)'));
    assert.ok(page.includes(esc(ev.extractor.description)), 'extractor description');
    assert.match(page, /Privacy \(memorisation\)/);
  });

  test('marks a significantly worse condition red and a non-significant one not at all', () => {
    const worse = summary.cells.find(
      (c) => (c.vsReal?.pHolm ?? 1) < 0.05 && c.vsReal!.accuracyDiff!.mean < 0,
    )!;
    assert.ok(worse, 'the sample has a significantly worse cell');
    const row = page
      .split('<tr')
      .find((r) => r.includes(`<td>${worse.condition}</td>`) && r.includes('worse'));
    assert.ok(row, `${worse.classifier}/${worse.condition} highlighted`);
    const plain = summary.cells.find((c) => c.vsReal && (c.vsReal.pHolm ?? 0) > 0.05)!;
    const d = (100 * plain.vsReal!.accuracyDiff!.mean).toFixed(1);
    assert.match(page, numCell(`${d.startsWith('-') ? '−' + d.slice(1) : '+' + d}`));
    assert.doesNotMatch(page, /class="num better"/, 'nothing is significantly better in the sample');
  });

  test('draws the charts as inline SVG: loss, accuracy, per-class F1, limited data, confusion per classifier, privacy', () => {
    // 1 loss + 1 accuracy + 1 per-class F1 + 1 limited + 2 confusion + 2 privacy histograms
    assert.equal(svgCount(page), 8);
    assert.match(page, /Accuracy vs amount of real data/);
    assert.match(page, /one synthetic ratio only/);
    // the ids of different charts do not clash
    const ids = [...page.matchAll(/\sid="(chart[^"]+)"/g)].map((m) => m[1]!);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('inlines the grids and the closest-pair pictures byte for byte', async () => {
    const inlined = [...page.matchAll(/src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)].map((m) =>
      Buffer.from(m[1]!, 'base64'),
    );
    assert.equal(inlined.length, 4);
    for (const file of [
      'real-grid.png',
      'synthetic-grid.png',
      'evaluation/privacy-closest-features.png',
      'evaluation/privacy-closest-pixels.png',
    ]) {
      const bytes = await readFile(join(dir, file));
      assert.ok(
        inlined.some((b) => b.equals(bytes)),
        `${file} is inlined`,
      );
    }
    // grid rows labelled by class
    for (const name of summary.classNames)
      assert.match(page, new RegExp(`<span style="top:[\\d.]+%;height:[\\d.]+%">${name}</span>`));
  });

  test('writeReport writes <study>/report.html atomically and returns its path', async () => {
    const file = await writeReport(dir);
    assert.equal(file, join(dir, 'report.html'));
    const written = await readFile(file, 'utf8');
    assert.match(written, /^<!DOCTYPE html>/);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
      [],
    );
    const other = await writeReport(dir, join(root, 'elsewhere', 'r.html'));
    assert.equal(other, join(root, 'elsewhere', 'r.html'));
  });
});

describe('study report: escaping', () => {
  test('class names and paths with markup characters are escaped, never raw tags', async () => {
    const dir = await copyStudy('study <i>&amp; "quoted"');
    await editJson(join(dir, 'results.json'), (v) => {
      (v['classNames'] as string[])[0] = '<b>&x';
    });
    const page = await buildReport(dir);
    assert.ok(page.includes('&lt;b&gt;&amp;x'), 'escaped class name');
    assert.doesNotMatch(page, /<b>/);
    assert.doesNotMatch(page, /<i>/);
    assert.ok(page.includes('study &lt;i&gt;&amp;amp; &quot;quoted&quot;'), 'escaped directory');
  });
});

describe('study report: missing pieces', () => {
  test('no evaluation folder: a note, no evaluation table or privacy charts', async () => {
    const dir = await copyStudy();
    await rm(join(dir, 'evaluation'), { recursive: true });
    const page = await buildReport(dir);
    assert.match(page, /No evaluation of the synthetic images was found/);
    assert.doesNotMatch(page, /held-out real \(floor\)/);
    assert.equal(svgCount(page), 6);
  });

  test('evaluation disabled in the config: says so', async () => {
    const dir = await copyStudy();
    await rm(join(dir, 'evaluation'), { recursive: true });
    await editJson(join(dir, 'results.json'), (v) => {
      (v['config'] as { evaluate: { enabled: boolean } }).evaluate.enabled = false;
    });
    assert.match(await buildReport(dir), /evaluation was disabled/);
  });

  test('no GAN run, no grids: notes instead of curves and pictures', async () => {
    const dir = await copyStudy();
    await rm(join(dir, 'gan'), { recursive: true });
    await rm(join(dir, 'synthetic-grid.png'));
    const page = await buildReport(dir);
    assert.match(page, /No generator run was found/);
    assert.match(page, /synthetic-grid\.png is missing/);
    assert.equal(svgCount(page), 7);
  });

  test("the synthetic pool's sampling time is reported; results written before it was recorded still render", async () => {
    // (The fixture predates the field; test/study/study.test.ts checks that a study writes it.)
    const dir = await copyStudy();
    await editJson(join(dir, 'results.json'), (v) => {
      v['pool'] = { images: 500, seconds: 25 };
    });
    assert.match(await buildReport(dir), /synthetic pool of 500 images sampled in [^(]*\(20 images\/s\)/);
    await editJson(join(dir, 'results.json'), (v) => {
      delete v['pool'];
    });
    assert.doesNotMatch(await buildReport(dir), /synthetic pool of/);
  });

  test('an existing generator run that is not on this machine: a note', async () => {
    const dir = await copyStudy();
    await editJson(join(dir, 'results.json'), (v) => {
      (v['config'] as { generator: { run: string } }).generator.run = '/nowhere/00001-run';
    });
    assert.match(
      await buildReport(dir),
      /existing generator run \(\/nowhere\/00001-run\) that is not on this machine/,
    );
  });

  test('several seeds: interval columns; a significant gain is green; two synthetic ratios add the ratio chart', async () => {
    const dir = await copyStudy();
    await editJson(join(dir, 'results.json'), (v) => {
      const s = v as unknown as {
        cells: Record<string, unknown>[];
        conditions: string[];
        config: { seeds: number[] };
      };
      const widen = (i: { n: number; mean: number; ci: [number, number] } | null) => {
        if (!i) return;
        i.n = 3;
        i.ci = [i.mean - 0.02, i.mean + 0.03];
      };
      s.config.seeds = [0, 1, 2];
      for (const c of s.cells) {
        const m = c['metrics'] as Record<string, { n: number; mean: number; ci: [number, number] } | null>;
        Object.values(m).forEach(widen);
        const vs = c['vsReal'] as {
          accuracyDiff: { n: number; mean: number; ci: [number, number] };
          pHolm: number;
        } | null;
        if (vs) widen(vs.accuracyDiff);
        if (vs && c['classifier'] === 'lbp-rf' && c['condition'] === 'real+synthetic×1') vs.pHolm = 0.004;
      }
      const x1 = s.cells.filter((c) => c['condition'] === 'real+synthetic×1');
      s.cells.push(...x1.map((c) => ({ ...c, condition: 'real+synthetic×2' })));
      s.conditions.splice(3, 0, 'real+synthetic×2');
    });
    const page = await buildReport(dir);
    assert.match(page, /<th class="num">95 % CI<\/th>/);
    const acc = (await readSummary(dir)).cells[0]!.metrics.accuracy!;
    assert.ok(
      page.includes(`<td class="num ci">[${pct(acc.ci[0])}, ${pct(acc.ci[1])}]</td>`),
      'accuracy interval',
    );
    assert.match(page, /class="num better"/);
    assert.match(page, /Accuracy vs amount of synthetic data/);
    assert.equal(svgCount(page), 9);
  });

  test('a folder without results.json is refused with a StudyError', async () => {
    const empty = join(root, 'empty');
    await cp(join(FIXTURE, 'study.json'), join(empty, 'study.json'));
    await assert.rejects(
      buildReport(empty),
      (e: unknown) => e instanceof StudyError && /no results yet/.test(e.message),
    );
    await assert.rejects(
      buildReport(join(root, 'missing')),
      (e: unknown) => e instanceof StudyError && /not a study directory/.test(e.message),
    );
    const foreign = await copyStudy();
    await writeFile(join(foreign, 'results.json'), '{"format":"something-else"}');
    await assert.rejects(buildReport(foreign), StudyError);
  });
});

describe('medsynth report (command)', () => {
  test('writes the report and prints its path; --out and --json', async () => {
    const dir = await copyStudy();
    const run = async (...args: string[]) => {
      let out = '';
      const program = new Command('medsynth').exitOverride();
      registerReportCommand(program, { stdout: { write: (t: string) => (out += t) } });
      await program.parseAsync(['node', 'medsynth', 'report', ...args]);
      return out;
    };
    assert.equal(await run(dir), `${join(dir, 'report.html')}\n`);
    const target = join(root, 'out', 'custom.html');
    const json = JSON.parse(await run(dir, '--out', target, '--json')) as { report: string; seconds: number };
    assert.equal(json.report, target);
    assert.ok(json.seconds > 0);
    assert.match(await readFile(target, 'utf8'), /^<!DOCTYPE html>/);
  });
});

/** mulberry32: a small seeded generator for made-up predictions. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The summary of a made-up `paper`-preset study (K classes, ten conditions, five classifiers, three seeds),
 * through the study's own summariseStudy: predictions right with a probability that depends on the condition.
 */
function madeUpStudy(classNames: readonly string[]): StudySummary {
  const config = resolveStudyConfig({
    preset: 'paper',
    data: { source: 'medmnist:organamnist' },
    seeds: [0, 1, 2],
  });
  const k = classNames.length;
  const testLabels = Int32Array.from({ length: 300 }, (_, i) => i % k);
  const conditions = studyConditions(config).map((c) => c.name);
  const classifiers = config.classifiers.map((c) => (typeof c === 'string' ? c : c.name));
  const rows: JobRow[] = [];
  conditions.forEach((condition, ci) => {
    classifiers.forEach((classifier, ki) => {
      for (const seed of config.seeds) {
        const random = rng(1000 * ci + 10 * ki + seed);
        const skill =
          condition === 'synthetic' ? 0.45 : condition.startsWith('limited') ? 0.6 : 0.8 + 0.02 * ci;
        const predicted = Array.from(testLabels, (l) => (random() < skill ? l : Math.floor(random() * k)));
        const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
        testLabels.forEach((l, i) => confusion[l]![predicted[i]!]!++);
        const perClass = confusion.map((row, c) => {
          const tp = row[c]!;
          const recall = tp / row.reduce((a, b) => a + b, 0);
          const precision = tp / confusion.reduce((a, r) => a + r[c]!, 0);
          return { f1: (2 * precision * recall) / (precision + recall), recall };
        });
        const correct = Uint8Array.from(testLabels, (l, i) => (predicted[i] === l ? 1 : 0));
        const accuracy = correct.reduce((a, b) => a + b, 0) / correct.length;
        rows.push({
          id: `${condition}|${classifier}|${seed}`,
          condition,
          classifier,
          seed,
          trainReal: condition === 'synthetic' ? 0 : 1000,
          trainSynthetic: condition === 'real' ? 0 : 500,
          trainClassCounts: new Array<number>(k).fill(100),
          metrics: {
            accuracy,
            balancedAccuracy: perClass.reduce((a, p) => a + p.recall, 0) / k,
            macroF1: perClass.reduce((a, p) => a + p.f1, 0) / k,
            auc: Math.min(1, accuracy + 0.1),
            binary: null,
            perClass,
            confusion,
          },
          correct,
          proba: new Float32Array(0),
          classifierInfo: {},
          seconds: 1,
          finishedAt: new Date(0).toISOString(),
        });
      }
    });
  });
  return summariseStudy(config, classNames, testLabels, rows);
}

describe('study report: a large study', () => {
  test('nine classes, ten conditions, five classifiers, three seeds: every table and chart, in a few seconds', async () => {
    const dir = join(root, 'large');
    await cp(join(FIXTURE, 'real-grid.png'), join(dir, 'real-grid.png'));
    const names = [
      'bladder',
      'femur-left',
      'femur-right',
      'heart',
      'kidney-left',
      'kidney-right',
      'liver',
      'lung-left',
      'lung-right',
    ];
    const summary = madeUpStudy(names);
    await writeFile(join(dir, 'results.json'), JSON.stringify(summary));
    const started = performance.now();
    const page = await buildReport(dir);
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 20, `built in ${seconds.toFixed(1)} s`);
    for (const c of summary.conditions) assert.ok(page.includes(`<td>${esc(c)}</td>`), c);
    for (const c of summary.classifiers) assert.ok(page.includes(`<h3>${c}</h3>`), c);
    for (const v of summary.verdicts) assert.ok(page.includes(esc(v.text)));
    assert.ok(summary.verdicts.some((v) => v.question === 'limited'));
    // accuracy intervals over three seeds, no sensitivity/specificity columns for nine classes
    const real = summary.cells[0]!.metrics.accuracy!;
    assert.ok(page.includes(`<td class="num ci">[${pct(real.ci[0])}, ${pct(real.ci[1])}]</td>`));
    assert.doesNotMatch(page, /sens\. %/);
    // accuracy, per-class F1, ratio (×0.5/1/2), limited (10 %/25 %), 5 confusion heatmaps; no loss, no privacy
    assert.equal(svgCount(page), 9);
    assert.match(page, /Accuracy vs amount of synthetic data/);
    assert.match(page, /No generator run was found/);
    assert.match(page, /synthetic-grid\.png is missing/);
  });
});
