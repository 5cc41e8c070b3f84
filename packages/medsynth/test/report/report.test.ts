// The study report built from a copy of a finished tiny study (test/fixtures/report/sample-study: a results
// version 2 study with one generator, cgan, trained on the whole split and on a 25 % subset; see its README).
// Expected cells are computed here from results.json / evaluation.json, never copied from the page.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerReportCommand } from '../../src/cli/report.js';
import { stat } from '../../src/report/format.js';
import { LOGIT_NOTE } from '../../src/report/html.js';
import { buildReport, writeReport } from '../../src/report/index.js';
import { StudyError } from '../../src/runtime/errors.js';
import { usesSynthetic } from '../../src/study/conditions.js';
import { resolveStudyConfig, studyConditions } from '../../src/study/config.js';
import type { JobRow } from '../../src/study/store.js';
import {
  summariseStudy,
  type CellSummary,
  type InstanceRecord,
  type Interval,
  type StudySummary,
} from '../../src/study/summary.js';

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

/** Edits results.json as a StudySummary (mutable). */
async function editSummary(dir: string, edit: (s: Mutable<StudySummary>) => void): Promise<void> {
  await editJson(join(dir, 'results.json'), (v) => edit(v as unknown as Mutable<StudySummary>));
}

/** A deep, writable copy of a results type (for editing a copy of results.json). */
type Mutable<T> = T extends readonly (infer U)[]
  ? Mutable<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: Mutable<T[K]> }
    : T;

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
const signed = (v: number) => {
  const t = (100 * v).toFixed(1);
  return Number(t) === 0 ? '0.0' : v > 0 ? `+${t}` : `−${t.slice(1)}`;
};
const reEsc = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A numeric table cell as the report writes it (any class, any title). */
const numCell = (text: string) => new RegExp(`<td class="num[^"]*"(?: title="[^"]*")?>${reEsc(text)}</td>`);

/** The markup between `<h3>${title}</h3>` and the next h3 (or the end of its section). */
function block(page: string, title: string): string {
  const start = page.indexOf(`<h3>${title}</h3>`);
  assert.ok(start >= 0, `block ${title}`);
  const rest = page.slice(start + title.length + 9);
  const end = rest.search(/<h3>|<\/section>/);
  return end < 0 ? rest : rest.slice(0, end);
}

/** A section of the page by id. */
function section(page: string, id: string): string {
  const start = page.indexOf(`<section id="${id}"`);
  assert.ok(start >= 0, `section ${id}`);
  const next = page.slice(start + 1).search(/<section id="|<footer/);
  return page.slice(start, next < 0 ? undefined : start + 1 + next);
}

/** The rows of a table markup that hold `<td>${name}</td>`, in the group of `generator` (null: none). */
function rowOf(markup: string, condition: string, generator: string | null): string {
  const groups = markup.split('<tbody class="group">').slice(1);
  const title = generator === null ? 'without a generator' : `generator ${esc(generator)}`;
  const group = groups.find((g) => g.startsWith(`<tr><th colspan="`) && g.includes(`>${title}</th>`));
  assert.ok(group, `group ${title}`);
  const row = group.split('<tr').find((r) => r.includes(`<td>${esc(condition)}</td>`));
  assert.ok(row, `row ${condition} in ${title}`);
  return row;
}

const cellOf = (s: StudySummary, generator: string | null, condition: string, classifier: string) => {
  const c = s.cells.find(
    (x) => x.generator === generator && x.condition === condition && x.classifier === classifier,
  );
  assert.ok(c, `${classifier}/${generator}/${condition}`);
  return c;
};

describe('study report (sample study)', () => {
  let dir: string;
  let page: string;
  let summary: StudySummary;

  before(async () => {
    dir = await copyStudy();
    summary = await readSummary(dir);
    page = await buildReport(dir);
  });

  test('the fixture is a results version 2 study whose recorded paths point nowhere on this machine', () => {
    assert.equal(summary.version, 2);
    assert.equal(summary.instances.length, 2);
    for (const i of summary.instances)
      for (const r of i.runs) assert.ok(r.dir.startsWith('/moved-away/'), `${r.dir} is not a real path`);
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
    // every in-page link has its target
    for (const m of page.matchAll(/\shref="#([^"]+)"/g))
      assert.ok(page.includes(` id="${m[1]!}"`), `link target #${m[1]!}`);
  });

  test('carries every verdict, grouped by question, and the statistics paragraph', () => {
    const answer = section(page, 'answer');
    assert.ok(summary.verdicts.length > 0);
    for (const v of summary.verdicts)
      assert.ok(answer.includes(esc(v.text)), `verdict: ${v.text.slice(0, 60)}`);
    const questions = [...new Set(summary.verdicts.map((v) => v.question))];
    assert.ok(questions.length >= 6, 'the sample answers most questions');
    // each verdict sits under its question's heading
    const controls = block(answer, 'Is a gain due to the synthetic content? (controls)');
    for (const v of summary.verdicts)
      assert.equal(controls.includes(esc(v.text)), v.question === 'controls', v.text.slice(0, 50));
    assert.ok(block(answer, 'How to read the statistics').includes(esc(summary.statistics)));
  });

  test('results tables: one per classifier, generator-free rows first, then each generator’s', () => {
    for (const classifier of summary.classifiers) {
      const table = block(page, classifier);
      const groups = [...table.matchAll(/<tbody class="group"><tr><th colspan="\d+">([^<]+)<\/th>/g)].map(
        (m) => m[1],
      );
      assert.deepEqual(groups, ['without a generator', 'generator cgan']);
      for (const c of summary.cells.filter((x) => x.classifier === classifier))
        rowOf(table, c.condition, c.generator);
      // the generator-free group has exactly the generator-free cells (real, real:noaug, oversampled, limited)
      const free = table.split('<tbody class="group">')[1]!;
      const names = [...free.matchAll(/<tr[^>]*><td>([^<]+)<\/td>/g)].map((m) => m[1]);
      assert.deepEqual(
        names,
        summary.cells
          .filter((x) => x.classifier === classifier && x.generator === null)
          .map((x) => x.condition),
      );
    }
  });

  test('a known cell: cnn × cgan real+synthetic×1 shows its accuracy, metrics and Δ against real as results.json has them', () => {
    const c = cellOf(summary, 'cgan', 'real+synthetic×1', 'cnn');
    assert.equal(c.metrics.accuracy!.mean, 0.685, 'the fixture’s value');
    const row = rowOf(block(page, 'cnn'), 'real+synthetic×1', 'cgan');
    assert.match(row, numCell('68.5'));
    assert.match(row, numCell(`${c.trainReal} + ${c.trainSynthetic}`));
    assert.match(row, numCell('1 clf.'));
    for (const i of [
      c.metrics.balancedAccuracy,
      c.metrics.sensitivity,
      c.metrics.specificity,
      c.metrics.macroF1,
      c.minorityF1,
    ])
      assert.match(row, numCell(pct(i!.mean)));
    assert.match(row, numCell(c.metrics.auc!.mean.toFixed(3)));
    const base = c.comparisons.find((x) => x.role === 'baseline')!;
    assert.equal(base.against, 'real');
    assert.match(row, /<td class="num worse" title="against real">−11\.0<\/td>/);
    assert.match(row, /<td class="verdict worse" title="[^"]+">worse<\/td>/);
    assert.match(row, numCell('0.002'));
  });

  test('every cell shows its accuracy, macro F1, training counts and Δ accuracy as the table formats them', () => {
    for (const c of summary.cells) {
      const row = rowOf(block(page, c.classifier), c.condition, c.generator);
      const what = `${c.classifier}/${c.generator}/${c.condition}`;
      assert.match(row, numCell(pct(c.metrics.accuracy!.mean)), `${what} accuracy`);
      assert.match(row, numCell(pct(c.metrics.macroF1!.mean)), `${what} macro F1`);
      assert.match(row, numCell(`${c.trainReal} + ${c.trainSynthetic}`));
      const base = c.comparisons.find((x) => x.role === 'baseline');
      if (base) {
        assert.match(row, numCell(signed(base.diff.accuracy!.mean)), `${what} Δ`);
        const words = {
          better: 'better',
          worse: 'worse',
          none: 'no clear difference',
          unclear: 'not established',
        };
        assert.ok(row.includes(`>${words[base.judgement.direction]}</td>`), `${what} verdict`);
      } else assert.match(row, numCell('baseline'));
    }
    // one classifier seed: no intervals, so no logit footnote
    assert.doesNotMatch(page, /class="ci"/);
    assert.ok(!page.includes(esc(LOGIT_NOTE)));
  });

  test('comparisons with controls: against, Δ, McNemar b / c, Holm p, verdict and basis for every control', () => {
    const controls = summary.cells.filter((c) => c.comparisons.some((x) => x.role === 'control'));
    assert.ok(controls.length >= 4, 'rebalanced and real+synthetic×1 of both classifiers');
    for (const c of controls) {
      const markup = block(page, 'Comparisons with controls');
      const start = markup.indexOf(`<h4>${c.classifier}: comparisons with controls</h4>`);
      const group = markup
        .slice(start)
        .split('<tbody class="group">')
        .find((g) => g.includes(`>${esc(`${c.generator}: ${c.condition} against its controls`)}</th>`));
      assert.ok(group, `${c.classifier} ${c.condition} controls`);
      for (const x of c.comparisons.filter((y) => y.role === 'control')) {
        const row = group.split('<tr>').find((r) => r.startsWith(`<td>${esc(x.against)}</td>`));
        assert.ok(row, `${c.condition} vs ${x.against}`);
        assert.match(row, numCell(signed(x.diff.accuracy!.mean)));
        assert.match(row, numCell(`${x.mcnemar.b} / ${x.mcnemar.c}`));
        assert.match(row, numCell(x.pHolm! < 0.001 ? '&lt; 0.001' : x.pHolm!.toFixed(3)));
        assert.ok(row.includes(esc(x.judgement.basis)), 'basis');
      }
    }
  });

  test('classic augmentation: none, classic and classic + synthetic side by side, – where not run', () => {
    const cnn = block(page, 'Classic augmentation and synthetic images')
      .split('<h4>')
      .find((x) => x.startsWith('cnn:'))!;
    const acc = (g: string | null, condition: string, classifier = 'cnn') =>
      pct(cellOf(summary, g, condition, classifier).metrics.accuracy!.mean);
    const real = cnn.split('<tr>').find((r) => r.startsWith('<td>real</td>'))!;
    const cells = [...real.matchAll(/<td class="num"[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
    assert.deepEqual(cells, [acc(null, 'real:noaug'), acc(null, 'real'), acc('cgan', 'real+synthetic×1')]);
    const limited = cnn.split('<tr>').find((r) => r.startsWith('<td>limited-25%</td>'))!;
    assert.deepEqual(
      [...limited.matchAll(/<td class="num"[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]),
      ['–', acc(null, 'limited-25%'), acc('cgan', 'limited-25%+synthetic')],
    );
    // lbp-rf never augments: no :noaug job
    const rf = block(page, 'Classic augmentation and synthetic images')
      .split('<h4>')
      .find((x) => x.startsWith('lbp-rf:'))!;
    assert.match(
      rf.split('<tr>').find((r) => r.startsWith('<td>real</td>'))!,
      /<td class="num" title="not run">–<\/td>/,
    );
  });

  test('per-class precision, recall and F1 of every cell, in a collapsible block per classifier', () => {
    for (const classifier of summary.classifiers) {
      const start = page.indexOf(`<summary>${classifier}: per-class precision, recall and F1</summary>`);
      assert.ok(start > 0);
      const details = page.slice(start, page.indexOf('</details>', start));
      for (const name of summary.classNames)
        for (const m of ['precision', 'recall', 'F1'])
          assert.ok(details.includes(`<th class="num">${name} ${m} %</th>`));
      for (const c of summary.cells.filter((x) => x.classifier === classifier)) {
        const row = rowOf(details, c.condition, c.generator);
        const values = [...row.matchAll(/<td class="num">([^<]*)<\/td>/g)].map((m) => m[1]);
        const expected = summary.classNames.flatMap((_, k) =>
          [c.perClass.precision[k], c.perClass.recall[k], c.perClass.f1[k]].map((i) =>
            i ? pct(i.mean) : '–',
          ),
        );
        assert.deepEqual(values, expected, `${classifier}/${c.generator}/${c.condition}`);
      }
    }
  });

  test('generators: one block per instance with what it trained on, its run, pool, quality and both grids', async () => {
    const gens = section(page, 'generators');
    const blocks = gens.split('<section class="instance"').slice(1);
    assert.equal(blocks.length, summary.instances.length);
    const realGrid = (await readFile(join(dir, 'real-grid.png'))).toString('base64');
    summary.instances.forEach((r, i) => {
      const b = blocks[i]!;
      const scope =
        r.fraction === null ? 'whole train split' : `limited: ${r.fraction * 100} % of the train split`;
      assert.ok(b.includes(`<h3>${r.generator} · generator seed ${r.generatorSeed} · ${scope}</h3>`), r.key);
      assert.ok(b.includes(esc(r.trainedOn.what)), 'trained on');
      assert.ok(
        b.includes(
          `${r.trainedOn.images} images (normal ${r.trainedOn.classCounts[0]}, pneumonia ${r.trainedOn.classCounts[1]})`,
        ),
      );
      assert.ok(b.includes(`${r.runs[0]!.kimg} kimg`), 'kimg');
      assert.ok(
        b.includes(
          `${r.pool.images} images (normal ${r.pool.perClass[0]}, pneumonia ${r.pool.perClass[1]}) sampled in`,
        ),
      );
      assert.ok(
        b.includes(`(${stat(r.pool.images / r.pool.seconds)} images/s)`),
        "the pool's sampling speed",
      );
      assert.ok(b.includes(`${pct(r.fidelity!.accuracy)} % of the synthetic images`), 'class fidelity');
      if (r.quality) assert.ok(b.includes(`FID ${Math.round(r.quality.fid!)}`), 'FID in the quality line');
      assert.ok(b.includes(realGrid), 'real grid beside');
    });
    // the limited instance has no evaluation and says why
    assert.match(
      blocks[1]!,
      /Not evaluated: the study evaluates the generators trained on the whole train split only/,
    );
    // instance overview table: FID of the whole-split instance
    assert.match(gens, numCell(String(Math.round(summary.instances[0]!.quality!.fid!))));
  });

  test('each instance’s evaluation: FID of its synthetic images and of the floor, the extractor, the privacy panels', async () => {
    const r = summary.instances[0]!;
    const ev = JSON.parse(
      await readFile(join(dir, 'generators', r.key, 'evaluation', 'evaluation.json'), 'utf8'),
    ) as {
      records: { metric: string; comparison: string; class: string | null; values: Record<string, number> }[];
      extractor: { description: string };
    };
    const b = section(page, 'generators').split('<section class="instance"')[1]!;
    const fid = ev.records.find((x) => x.metric === 'fid' && x.comparison === 'fake' && x.class === null)!;
    assert.match(b, numCell(String(Number(fid.values['fid']!.toPrecision(4)))));
    const floor = ev.records.find((x) => x.metric === 'fid' && x.comparison === 'floor' && x.class === null)!;
    assert.match(b, numCell(String(Number(floor.values['fid']!.toPrecision(4)))));
    assert.ok(b.includes('held-out real (floor)'));
    assert.ok(b.includes(esc(ev.extractor.description)), 'extractor description');
    assert.match(b, /Privacy \(memorisation\)/);
    assert.match(b, /Closest pairs in feature space/);
    assert.match(b, /Closest pairs in pixel space/);
  });

  test('inlines the real grid, each instance’s synthetic grid and the closest-pair pictures byte for byte', async () => {
    const inlined = [...page.matchAll(/src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)].map((m) =>
      Buffer.from(m[1]!, 'base64'),
    );
    // the real grid beside each of the two synthetic grids, and two closest-pair pictures
    assert.equal(inlined.length, 6);
    for (const file of [
      'real-grid.png',
      'generators/cgan/seed-0/all/synthetic-grid.png',
      'generators/cgan/seed-0/limited-25pct/synthetic-grid.png',
      'generators/cgan/seed-0/all/evaluation/privacy-closest-features.png',
      'generators/cgan/seed-0/all/evaluation/privacy-closest-pixels.png',
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

  test('draws the charts as inline SVG: training per instance, accuracy, per-class F1, limited, confusion, privacy', () => {
    // 2 loss (one per instance run) + accuracy + per-class F1 + limited + 2 confusion + 2 privacy histograms
    assert.equal(svgCount(page), 9);
    assert.match(page, /Accuracy vs amount of real data/);
    assert.match(page, /one synthetic ratio only/);
    // the ids of different charts do not clash
    const ids = [...page.matchAll(/\sid="(chart[^"]+)"/g)].map((m) => m[1]!);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('quality vs gain: one instance per condition, so a note and no scatter', () => {
    const q = section(page, 'quality');
    assert.match(q, /Nothing to plot: every condition has fewer than two evaluated generator instances/);
    assert.equal(svgCount(q), 0);
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

  test('a generator named <script>…: escaped in tables, headings, charts and facts; its folder still found', async () => {
    const dir = await copyStudy();
    const bad = '<script>alert(1)</script>';
    const file = join(dir, 'results.json');
    // every value "cgan" (generator names, the model option), not the instance keys
    await writeFile(file, (await readFile(file, 'utf8')).replaceAll('"cgan"', JSON.stringify(bad)));
    const page = await buildReport(dir);
    assert.doesNotMatch(page, /<script/i);
    const escaped = esc(bad);
    assert.ok(
      page.includes(`<h3>${escaped} · generator seed 0 · whole train split</h3>`),
      'instance heading',
    );
    assert.ok(page.includes(`>generator ${escaped}</th>`), 'table group');
    assert.ok(page.includes(`${escaped}: synthetic`), 'chart labels (escaped by the SVG renderer)');
    // the synthetic grids are still found from the study folder and the instance key
    const inlined = [...page.matchAll(/src="data:image\/png;base64,/g)].length;
    assert.equal(inlined, 6);
  });
});

describe('study report: intervals, verdicts and quality vs gain', () => {
  test('several units: intervals in brackets; a logit-scale interval gets its footnote; better/unclear highlighted', async () => {
    const dir = await copyStudy();
    await editSummary(dir, (s) => {
      s.config.seeds = [0, 1, 2];
      const widen = (i: Mutable<Interval> | null, method: 't' | 'logit-t' = 't') => {
        if (!i) return;
        i.n = 3;
        i.ci = [i.mean - 0.02, i.mean + 0.03];
        i.method = method;
      };
      for (const c of s.cells) {
        Object.values(c.metrics).forEach((i) => widen(i));
        for (const x of c.comparisons) widen(x.diff.accuracy);
      }
      const cnnReal = s.cells.find((c) => c.classifier === 'cnn' && c.condition === 'real')!;
      cnnReal.metrics.accuracy = { n: 3, mean: 0.795, std: 0.1, ci: [0.5, 0.97], method: 'logit-t' };
      const rf = s.cells.find((c) => c.classifier === 'lbp-rf' && c.condition === 'real+synthetic×1')!;
      rf.comparisons[0]!.judgement = { direction: 'better', basis: 'both tests agree: made up' };
      const rfReb = s.cells.find((c) => c.classifier === 'lbp-rf' && c.condition === 'rebalanced')!;
      rfReb.comparisons[0]!.judgement = { direction: 'unclear', basis: 'only one test: made up' };
    });
    const page = await buildReport(dir);
    const cnn = block(page, 'cnn');
    const real = rowOf(cnn, 'real', null);
    assert.match(
      real,
      /<td class="num">79\.5 <span class="ci">\[50\.0, 97\.0\]<\/span><sup class="fn">†<\/sup><\/td>/,
    );
    assert.ok(cnn.includes(esc(LOGIT_NOTE)), 'the footnote under the cnn table');
    const rf = block(page, 'lbp-rf');
    assert.ok(!rf.includes(esc(LOGIT_NOTE)), 'no logit interval in the lbp-rf table, no footnote');
    const s = await readSummary(dir);
    const acc = cellOf(s, 'cgan', 'synthetic', 'lbp-rf').metrics.accuracy!;
    assert.ok(rf.includes(`${pct(acc.mean)} <span class="ci">[${pct(acc.ci[0])}, ${pct(acc.ci[1])}]</span>`));
    const better = rowOf(rf, 'real+synthetic×1', 'cgan');
    assert.match(
      better,
      /<td class="num better" title="against real">\+2\.5 <span class="ci">\[\+0\.5, \+5\.5\]<\/span><\/td>/,
    );
    assert.match(better, /<td class="verdict better" title="both tests agree: made up">better<\/td>/);
    assert.match(
      rowOf(rf, 'rebalanced', 'cgan'),
      /<td class="verdict unclear" title="only one test: made up">not established<\/td>/,
    );
    assert.doesNotMatch(page, /One unit per cell/);
  });

  test('quality vs gain with three instances: a scatter with one point per instance and the Spearman table', async () => {
    const dir = await copyStudy();
    const fids = [2827.4, 1500, 900];
    await editSummary(dir, (s) => {
      const whole = s.instances[0]!;
      s.instances = [0, 1, 2].map((g) => ({
        ...whole,
        key: `cgan/seed-${g}/all`,
        generatorSeed: g,
        quality: { ...whole.quality!, fid: fids[g]! },
      }));
      const q = s.qualityVsGain!;
      const template = q.points.find((p) => p.condition === 'real+synthetic×1' && p.classifier === 'cnn')!;
      q.points = [0, 1, 2].map((g) => ({
        ...template,
        instance: `cgan/seed-${g}/all`,
        generatorSeed: g,
        quality: { ...template.quality, fid: fids[g]! },
        effect: { ...template.effect, accuracy: [-0.11, -0.02, 0.04][g]! },
      }));
      q.correlations = q.correlations
        .filter((c) => c.condition === 'real+synthetic×1' && c.classifier === 'cnn')
        .map((c) =>
          c.quality === 'fid' && c.effect === 'accuracy'
            ? { ...c, n: 3, rho: -1, p: 0.3333333, pMethod: 'exact-permutation', ci: null }
            : { ...c, n: c.quality === 'kid' ? 0 : 3 },
        );
    });
    const page = await buildReport(dir);
    const q = section(page, 'quality');
    assert.equal(svgCount(q), 1, 'one scatter: the only (condition, classifier) with points');
    assert.equal((q.match(/aria-roledescription="point"/g) ?? []).length, 3);
    for (const g of [0, 1, 2]) assert.ok(q.includes(`>cgan seed ${g}</text>`), `label of seed ${g}`);
    assert.match(
      q,
      /<tr><td>FID<\/td><td>Δ accuracy<\/td><td class="num">3<\/td><td class="num">−1\.00<\/td><td class="num">0\.333<\/td><td>exact permutation<\/td><td class="num">needs n ≥ 4<\/td><\/tr>/,
    );
    assert.doesNotMatch(q, /<td>KID<\/td>/, 'figures no instance has are left out');
    // three instance blocks; the two made-up seeds have no folder, and say so
    assert.equal(section(page, 'generators').split('<section class="instance"').length - 1, 3);
    assert.match(
      page,
      /No evaluation was found \(generators\/cgan\/seed-1\/all\/evaluation\/evaluation\.json is missing\)/,
    );
    assert.match(page, /No picture \(generators\/cgan\/seed-2\/all\/synthetic-grid\.png is missing\)/);
  });

  test('no quality vs gain (null): no section and no link to it', async () => {
    const dir = await copyStudy();
    await editSummary(dir, (s) => {
      s.qualityVsGain = null;
      s.verdicts = s.verdicts.filter((v) => v.question !== 'quality');
    });
    const page = await buildReport(dir);
    assert.doesNotMatch(page, /id="quality"/);
    assert.doesNotMatch(page, /href="#quality"/);
    assert.doesNotMatch(page, /Quality vs gain/);
  });
});

describe('study report: missing pieces', () => {
  test('no evaluation folder: a note, no evaluation table or privacy charts', async () => {
    const dir = await copyStudy();
    await rm(join(dir, 'generators/cgan/seed-0/all/evaluation'), { recursive: true });
    const page = await buildReport(dir);
    assert.match(
      page,
      /No evaluation was found \(generators\/cgan\/seed-0\/all\/evaluation\/evaluation\.json is missing\)/,
    );
    assert.doesNotMatch(page, /held-out real \(floor\)/);
    assert.equal(svgCount(page), 7);
  });

  test('evaluation disabled in the config: says so', async () => {
    const dir = await copyStudy();
    await rm(join(dir, 'generators/cgan/seed-0/all/evaluation'), { recursive: true });
    await editSummary(dir, (s) => {
      s.config.evaluate.enabled = false;
    });
    assert.match(await buildReport(dir), /Not evaluated: evaluation was disabled/);
  });

  test('no run folders, no grids: notes instead of curves and pictures', async () => {
    const dir = await copyStudy();
    await rm(join(dir, 'generators/cgan/seed-0/all/00000-cgan-pneumoniamnist-28'), { recursive: true });
    await rm(join(dir, 'generators/cgan/seed-0/limited-25pct/synthetic-grid.png'));
    await rm(join(dir, 'real-grid.png'));
    const page = await buildReport(dir);
    assert.match(page, /Its training run \(00000-cgan-pneumoniamnist-28\) is not in the study folder/);
    assert.match(
      page,
      /No picture \(generators\/cgan\/seed-0\/limited-25pct\/synthetic-grid\.png is missing\)/,
    );
    assert.match(page, /No picture \(real-grid\.png is missing\)/);
    assert.equal(svgCount(page), 8);
  });

  test('an existing run outside the study that is not on this machine: a note', async () => {
    const dir = await copyStudy();
    await editSummary(dir, (s) => {
      const i = s.instances[0]!;
      i.existingRun = true;
      i.runs = [{ dir: '/nowhere/00001-run', checkpoint: '/nowhere/00001-run/checkpoints/x', kimg: 1 }];
    });
    assert.match(
      await buildReport(dir),
      /The existing run it samples from \(00001-run\) is not on this machine/,
    );
  });

  test('a folder without results.json, a foreign one, and version 1 results are refused with a StudyError', async () => {
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
    const old = await copyStudy();
    await editJson(join(old, 'results.json'), (v) => {
      v['version'] = 1;
    });
    await assert.rejects(buildReport(old), (e: unknown) => {
      assert.ok(e instanceof StudyError);
      assert.equal(e.context.file, join(old, 'results.json'));
      assert.match(e.message, /written by an older medsynth \(results version 1\)/);
      assert.ok(e.message.includes(join(old, 'results.json')), 'the message names the file');
      return true;
    });
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
 * The summary of a made-up `paper`-preset study (K classes, 19 conditions, four generators × two generator
 * seeds, four classifiers, three seeds), through the study's own summariseStudy: predictions right with a
 * probability that depends on the condition and the generator.
 */
function madeUpStudy(classNames: readonly string[]): StudySummary {
  const config = resolveStudyConfig({
    preset: 'paper',
    data: { source: 'medmnist:organamnist' },
    seeds: [0, 1, 2],
  });
  const k = classNames.length;
  const testLabels = Int32Array.from({ length: 300 }, (_, i) => i % k);
  const conditions = studyConditions(config);
  const classifiers = config.classifiers.map((c) => (typeof c === 'string' ? c : c.name));
  const generators = config.generators.map((g) => g.name);
  const gSeeds = Array.from({ length: config.generatorSeeds }, (_, g) => g);
  const rows: JobRow[] = [];
  const job = (
    condition: string,
    generator: string | null,
    g: number | null,
    classifier: string,
    seed: number,
  ) => {
    const gi = generator === null ? 0 : generators.indexOf(generator) + 1;
    const random = rng(
      100_000 * gi + 1000 * (g ?? 0) + 10 * classifiers.indexOf(classifier) + seed + condition.length,
    );
    const skill =
      condition === 'synthetic'
        ? 0.35 + 0.05 * gi
        : condition.startsWith('limited')
          ? 0.6
          : 0.78 + 0.01 * gi + 0.005 * (g ?? 0);
    const predicted = Array.from(testLabels, (l) => (random() < skill ? l : Math.floor(random() * k)));
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    testLabels.forEach((l, i) => confusion[l]![predicted[i]!]!++);
    const perClass = confusion.map((row, c) => {
      const tp = row[c]!;
      const recall = tp / row.reduce((a, b) => a + b, 0);
      const precision = tp / confusion.reduce((a, r) => a + r[c]!, 0);
      return { f1: (2 * precision * recall) / (precision + recall), recall, precision };
    });
    const correct = Uint8Array.from(testLabels, (l, i) => (predicted[i] === l ? 1 : 0));
    const accuracy = correct.reduce((a, b) => a + b, 0) / correct.length;
    rows.push({
      id: `${generator ?? '-'}|${g ?? '-'}|${condition}|${classifier}|${seed}`,
      generator,
      generatorSeed: g,
      condition,
      classifier,
      seed,
      trainReal: condition === 'synthetic' ? 0 : 1000,
      trainSynthetic: generator === null ? 0 : 500,
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
  };
  for (const { name, condition } of conditions)
    for (const classifier of classifiers)
      for (const seed of config.seeds) {
        if (!condition.augment && (classifier === 'lbp-rf' || classifier === 'texture-lr')) continue;
        if (!usesSynthetic(condition)) {
          if (condition.kind === 'limited') for (const g of gSeeds) job(name, null, g, classifier, seed);
          else job(name, null, null, classifier, seed);
        } else for (const gen of generators) for (const g of gSeeds) job(name, gen, g, classifier, seed);
      }
  const fractions = [
    null,
    ...new Set(
      conditions.flatMap(({ condition: c }) => (c.kind === 'limited' && c.topUp ? [c.fraction] : [])),
    ),
  ];
  const instances: InstanceRecord[] = generators.flatMap((generator, gi) =>
    gSeeds.flatMap((g) =>
      fractions.map((fraction) => ({
        key: `${generator}/seed-${g}/${fraction === null ? 'all' : `limited-${fraction * 100}pct`}`,
        generator,
        generatorSeed: g,
        fraction,
        perClassModels: false,
        existingRun: false,
        runs: [],
        trainedOn: { images: 1000, classCounts: new Array<number>(k).fill(1000 / k), what: 'made up' },
        pool: { images: 500, seconds: 2, perClass: new Array<number>(k).fill(50) },
        fidelity: { accuracy: 0.8, balancedAccuracy: 0.8 },
        evaluation: null,
        quality:
          fraction === null
            ? {
                fid: 40 - 8 * gi + g,
                kid: 0.02,
                precision: 0.5 + 0.1 * gi,
                recall: 0.4,
                coverage: 0.3,
                msssimRatio: 1.1,
                classFidelity: 0.8,
              }
            : null,
      })),
    ),
  );
  return summariseStudy(config, classNames, testLabels, rows, instances);
}

describe('study report: a large study', () => {
  test('nine classes, 19 conditions, four generators × two seeds, four classifiers: every table and chart, in seconds', async () => {
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
    assert.ok(seconds < 30, `built in ${seconds.toFixed(1)} s`);
    for (const c of summary.cells) rowOf(block(page, c.classifier), c.condition, c.generator);
    for (const v of summary.verdicts) assert.ok(page.includes(esc(v.text)));
    assert.ok(summary.verdicts.some((v) => v.question === 'limited'));
    // intervals over two generator seeds for synthetic cells, three classifier seeds for the rest
    const gen = summary.cells.find((c) => c.generator !== null && c.condition === 'rebalanced')!;
    assert.equal(gen.units, 'generator seeds');
    assert.match(rowOf(block(page, gen.classifier), 'rebalanced', gen.generator), numCell('2 gen.'));
    const real: CellSummary = summary.cells[0]!;
    assert.ok(
      page.includes(
        `${pct(real.metrics.accuracy!.mean)} <span class="ci">[${pct(real.metrics.accuracy!.ci[0])}, ${pct(real.metrics.accuracy!.ci[1])}]</span>`,
      ),
    );
    assert.doesNotMatch(page, /sens\. %/, 'no sensitivity for nine classes');
    assert.equal(
      section(page, 'generators').split('<section class="instance"').length - 1,
      summary.instances.length,
    );
    // quality vs gain: eight whole-split instances per (condition, classifier), one scatter each
    const q = section(page, 'quality');
    const scatters = new Set(summary.qualityVsGain!.points.map((p) => `${p.condition}|${p.classifier}`));
    assert.equal(svgCount(q), scatters.size);
    assert.equal(
      (q.match(/aria-roledescription="point"/g) ?? []).length,
      summary.qualityVsGain!.points.length,
    );
    // augmentation: rows real and the three limited fractions, one +synthetic column per generator
    const aug = block(page, 'Classic augmentation and synthetic images');
    assert.ok(aug.includes('<th class="num">classic + synthetic (ddpm) %</th>'));
    assert.ok(aug.includes('<td>limited-5%</td>'));
    // accuracy, per-class F1, ratio (×0.5/1/2), limited, 4 confusion heatmaps and the scatters; no loss, no privacy
    assert.equal(svgCount(page), 4 + 4 + scatters.size);
    assert.match(page, /Accuracy vs amount of synthetic data/);
  });
});
