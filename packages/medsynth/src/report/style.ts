/**
 * The report's style sheet, in a module of its own so that the web app (`medsynth serve`), which shows report
 * sections with it too, can load it without loading the report's renderers.
 */
export const REPORT_CSS = `
:root { --fg: #1d2329; --muted: #5b6670; --line: #dde2e6; --bg-soft: #f5f7f9; --accent: #1f5f99;
  --good: #dff3e4; --good-fg: #17602e; --bad: #fbe3e1; --bad-fg: #9b1c13; --warn: #fff4d6; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; line-height: 1.25; }
h2 { font-size: 1.3rem; margin: 40px 0 12px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 24px 0 8px; }
h4 { font-size: 0.95rem; margin: 16px 0 6px; }
h5 { font-size: 0.9rem; margin: 12px 0 4px; }
p { margin: 8px 0; }
a { color: var(--accent); }
code { font: 0.88em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--bg-soft);
  padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
.sub { color: var(--muted); margin: 0 0 8px; }
nav.toc { font-size: 0.92rem; display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 8px 0 0; }
.note { color: var(--muted); font-size: 0.93rem; }
.callout { background: var(--bg-soft); border-left: 4px solid var(--accent); padding: 8px 12px; margin: 12px 0; }
.warning { background: var(--warn); border-left: 4px solid #c99a06; padding: 8px 12px; margin: 8px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
ul.verdicts { list-style: none; padding: 0; margin: 8px 0; }
ul.verdicts li { padding: 7px 12px; margin: 6px 0; background: var(--bg-soft); border-left: 4px solid var(--accent);
  border-radius: 3px; }
.scroll { overflow-x: auto; margin: 8px 0 4px; }
table { border-collapse: collapse; font-size: 0.86rem; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); }
th { text-align: left; font-weight: 600; background: var(--bg-soft); vertical-align: bottom; }
td:first-child { white-space: nowrap; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.ci { color: var(--muted); }
tbody.group th { background: #fff; border-bottom: 1px solid var(--fg); padding-top: 12px; }
tr.baseline td { font-weight: 600; }
td.better { background: var(--good); color: var(--good-fg); font-weight: 600; }
td.worse { background: var(--bad); color: var(--bad-fg); font-weight: 600; }
td.unclear { background: var(--warn); }
td.verdict { white-space: nowrap; }
td.text { white-space: normal; min-width: 22em; color: var(--muted); }
span.ci { color: var(--muted); }
sup.fn { color: var(--muted); font-size: 0.75em; }
section.instance { border: 1px solid var(--line); border-radius: 4px; padding: 2px 16px 12px; margin: 20px 0; }
section.instance h3 { margin-top: 12px; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; vertical-align: -1px; }
.grids { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px 28px; }
figure { margin: 12px 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
figcaption .note { font-weight: normal; }
.grid-wrap { display: flex; align-items: stretch; }
.grid-labels { position: relative; flex: 0 0 7.5em; }
.grid-labels span { position: absolute; right: 8px; left: 0; display: flex; align-items: center;
  justify-content: flex-end; text-align: right; font-size: 0.85rem; line-height: 1.1; overflow: hidden; }
.grid-wrap img { flex: 0 1 auto; min-width: 0; width: 100%; height: auto; image-rendering: pixelated;
  border-radius: 2px; }
.chart { margin: 12px 0 8px; overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; }
.chart-row { display: flex; flex-wrap: wrap; gap: 12px 28px; }
.chart-row > .chart { flex: 0 0 auto; max-width: 100%; }
details { margin: 12px 0; }
summary { cursor: pointer; color: var(--accent); }
footer { margin-top: 40px; font-size: 0.93rem; }
footer li { margin: 4px 0; }
@media print { .chart, figure, table { break-inside: avoid; } }
`;
