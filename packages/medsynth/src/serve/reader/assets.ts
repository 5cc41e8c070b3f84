/**
 * The reader study's static files, held in memory: its style sheet (on top of the app's `medsynth.css`) and
 * its page script — a plain ES module with no dependency that runs the session page: it asks the server for
 * the reader's next image (`GET <api>/next?reader=`), shows it, and posts the call and confidence
 * (`POST <api>/answers`). It never learns an image's truth: the server keeps it and the answer carries only
 * the image's opaque id. Pages hand it data through `data-` attributes (the Content-Security-Policy forbids
 * inline scripts). Keyboard: 1–5 choose the confidence, R and S answer.
 */

export const READER_CSS = `
.reader-intro { max-width: 46em; }
.reader-top { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 4px 24px; }
.reader-progress { display: flex; align-items: center; gap: 10px; color: var(--muted); font-variant-numeric: tabular-nums; }
.reader-progress progress { width: 14em; height: 0.9em; accent-color: var(--accent); }
.reader-stage { display: grid; grid-template-columns: max-content minmax(17em, 24em); gap: 20px 32px; align-items: start;
  margin-top: 16px; }
.reader-figure { margin: 0; }
.reader-figure img { display: block; width: min(448px, 86vw, 64vh); height: auto; aspect-ratio: 1 / 1; background: #111;
  image-rendering: pixelated; border-radius: 4px; }
.reader-class { margin: 8px 0 0; font-size: 1.05rem; }
.reader-class strong { font-weight: 700; }
.reader-answer fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 14px; padding: 6px 14px 10px; }
.reader-answer legend { font-weight: 600; padding: 0 4px; }
.confidence-scale { display: flex; gap: 6px; margin: 6px 0 2px; }
.confidence-scale label { flex: 1; display: flex; flex-direction: column; align-items: center; gap: 2px; padding: 6px 0 4px;
  border: 1px solid var(--line); border-radius: 5px; cursor: pointer; font-variant-numeric: tabular-nums; }
.confidence-scale label:has(input:checked) { border-color: var(--accent); background: #e3effa; font-weight: 700; }
.confidence-ends { display: flex; justify-content: space-between; color: var(--muted); font-size: 0.82rem; }
.calls { display: flex; gap: 12px; }
.calls button { flex: 1; font-size: 1.15rem; font-weight: 600; padding: 14px 8px; border-width: 2px; }
.calls button[data-call=real] { border-color: #2f7a46; }
.calls button[data-call=synthetic] { border-color: #7a3f9d; }
.calls button:disabled { opacity: 0.45; cursor: not-allowed; }
kbd { font: 0.75em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; border: 1px solid var(--line);
  border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; margin-left: 6px; color: var(--muted); font-weight: 400; }
.status { min-height: 1.5em; color: var(--muted); }
.status.bad { color: var(--bad-fg); font-weight: 600; }
.reader-start form { display: flex; flex-wrap: wrap; align-items: end; gap: 10px 14px; margin: 16px 0; }
.reader-start label { display: flex; flex-direction: column; gap: 4px; font-weight: 600; }
.reader-start input[type=text] { font: inherit; padding: 6px 10px; min-width: 18em; border: 1px solid var(--line); border-radius: 4px; }
.reader-start button { padding: 7px 22px; font-size: 1rem; }
.error-text { color: var(--bad-fg); font-weight: 600; }
.verdict { font-size: 1.1rem; padding: 12px 16px; border-radius: 4px; border-left: 6px solid var(--accent); background: var(--bg-soft); }
.verdict.chance { border-left-color: #2f7a46; background: var(--good); color: var(--good-fg); }
.verdict.distinguishable { border-left-color: #9b1c13; background: var(--bad); color: var(--bad-fg); }
td.kappa { font-weight: 600; }
@media (max-width: 760px) {
  .reader-stage { grid-template-columns: minmax(0, 1fr); }
  .reader-start input[type=text] { min-width: 0; width: 100%; }
}
`;

export const READER_JS = `// medsynth reader study: the session page (see src/serve/reader/assets.ts).
const root = document.getElementById('reader-session');
if (root) {
  const api = root.dataset.api;
  const reader = root.dataset.reader;
  const $ = (id) => document.getElementById(id);
  const img = $('item-image');
  const figure = $('item-figure');
  const caption = $('item-class');
  const progress = $('progress');
  const count = $('progress-text');
  const status = $('status');
  const done = $('done');
  const form = $('answer-form');
  const buttons = [...document.querySelectorAll('button[data-call]')];
  const radios = [...document.querySelectorAll('input[name="confidence"]')];
  let item = null;
  let loaded = false;
  let busy = false;
  let shownAt = 0;

  const confidence = () => {
    const r = radios.find((x) => x.checked);
    return r ? Number(r.value) : null;
  };
  const update = () => {
    const ready = item !== null && loaded && !busy;
    for (const b of buttons) b.disabled = !ready || confidence() === null;
    root.dataset.state = item === null ? (done.hidden ? 'loading' : 'done') : ready ? 'ready' : 'loading';
  };
  const say = (text, bad = false) => {
    status.textContent = text;
    status.classList.toggle('bad', bad);
  };
  const show = (state) => {
    progress.max = state.total;
    progress.value = state.answered;
    count.textContent = state.answered + ' of ' + state.total + ' answered';
    for (const r of radios) r.checked = false;
    if (state.done) {
      item = null;
      form.hidden = true;
      figure.hidden = true;
      done.hidden = false;
      say('');
      update();
      return;
    }
    item = state.item;
    loaded = false;
    root.dataset.item = '';
    if (state.item.className) {
      caption.textContent = '';
      caption.append('Class: ');
      const b = document.createElement('strong');
      b.textContent = state.item.className;
      caption.append(b);
      caption.hidden = false;
    } else caption.hidden = true;
    update();
    img.src = state.item.image;
  };
  const failed = async (res) => {
    let message = 'HTTP ' + res.status;
    try {
      const body = await res.json();
      if (body && typeof body.error === 'string') message = body.error;
    } catch {
      // not JSON: keep the status
    }
    say('Not saved: ' + message, true);
  };
  const next = async () => {
    say('Preparing the images…');
    const res = await fetch(api + '/next?reader=' + encodeURIComponent(reader), { headers: { accept: 'application/json' } });
    if (!res.ok) return failed(res);
    say('');
    show(await res.json());
  };
  const answer = async (call) => {
    if (item === null || !loaded || busy) return;
    const c = confidence();
    if (c === null) {
      say('Choose how confident you are first (1–5).', true);
      return;
    }
    busy = true;
    update();
    try {
      const res = await fetch(api + '/answers', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({
          reader,
          item: item.id,
          call,
          confidence: c,
          ms: Math.max(0, Math.round(performance.now() - shownAt)),
        }),
      });
      if (res.status === 201) show((await res.json()).next);
      else if (res.status === 409) await next();
      else await failed(res);
    } catch (e) {
      say('Not saved: ' + (e instanceof Error ? e.message : String(e)), true);
    } finally {
      busy = false;
      update();
    }
  };
  img.addEventListener('load', () => {
    if (item === null) return;
    loaded = true;
    shownAt = performance.now();
    root.dataset.item = item.id;
    update();
  });
  img.addEventListener('error', () => {
    if (item !== null) say('The image could not be loaded; reload the page to try again.', true);
  });
  for (const r of radios) r.addEventListener('change', update);
  for (const b of buttons) b.addEventListener('click', () => void answer(b.dataset.call));
  form.addEventListener('submit', (e) => e.preventDefault());
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.repeat) return;
    if (/^[1-5]$/.test(e.key)) {
      const r = radios.find((x) => x.value === e.key);
      if (r) r.checked = true;
      update();
    } else if (e.key === 'r' || e.key === 'R') void answer('real');
    else if (e.key === 's' || e.key === 'S') void answer('synthetic');
  });
  next().catch((e) => say(e instanceof Error ? e.message : String(e), true));
}
`;

export interface ReaderAsset {
  readonly type: string;
  readonly body: string;
}

/** Served at `/reader/-/<name>`. */
export const READER_ASSETS: ReadonlyMap<string, ReaderAsset> = new Map([
  ['reader.css', { type: 'text/css; charset=utf-8', body: READER_CSS }],
  ['reader.js', { type: 'text/javascript; charset=utf-8', body: READER_JS }],
]);
