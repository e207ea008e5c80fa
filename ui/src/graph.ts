// /graph: query panels with an expression editor (highlighting, completion of metric names,
// label names and values, functions), table and chart views, range/end/step controls; the URL
// holds every panel's state, in Prometheus's `g0.expr=...&g0.tab=...&g0.range_input=...` form.
import uPlot from 'uplot';
import { api, el, errorText, metricText } from './api';
import { labelNameText, metricSelectorText, parseDuration } from './format';
import type { NativeHistogram, QueryData } from './types';
import { themedAxis, timeAxis, track } from './theme';
import { bucketText, drawHeatmap, nativeBuckets, nativeCells } from './heatmap';

// PromQL's functions, from the engine's own table: the server lists them in the page.
const FUNCTIONS: string[] =
  document.querySelector<HTMLMetaElement>('meta[name="promql-functions"]')?.content.split(',') ?? [];
const AGGREGATIONS = [
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'group',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
  'limitk',
  'limit_ratio',
];
const KEYWORDS = [
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'anchored',
  'smoothed',
];

let metricNames: string[] = [];
let labelNames: string[] = [];

function escapeHtml(s: string) {
  return s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c as '&' | '<' | '>']);
}

/** PromQL as highlighted HTML (functions, keywords, strings, numbers). */
export function highlight(q: string): string {
  const re =
    /("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|`[^`]*`?)|(\b\d+(?:\.\d+)?(?:ms|[smhdwy])?\b)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g;
  let out = '';
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(q))) {
    out += escapeHtml(q.slice(last, m.index));
    if (m[1]) out += `<span class="hl-str">${escapeHtml(m[1])}</span>`;
    else if (m[2]) out += `<span class="hl-num">${m[2]}</span>`;
    else if (m[3]) {
      const w = m[3];
      const cls =
        (m[4] && (FUNCTIONS.includes(w) || AGGREGATIONS.includes(w))) || AGGREGATIONS.includes(w)
          ? 'hl-fn'
          : KEYWORDS.includes(w)
            ? 'hl-kw'
            : '';
      out += cls ? `<span class="${cls}">${w}</span>` : escapeHtml(w);
      if (m[4]) out += escapeHtml(m[4]);
    }
    last = re.lastIndex;
  }
  return out + escapeHtml(q.slice(last)) + '\n';
}

interface PanelState {
  expr: string;
  tab: number;
  range: string;
  end: string;
  step: string;
  stacked: boolean;
}

function readState(): PanelState[] {
  const p = new URLSearchParams(location.search);
  const out: PanelState[] = [];
  for (let i = 0; p.has(`g${i}.expr`) || p.has(`g${i}.tab`); i++) {
    out.push({
      expr: p.get(`g${i}.expr`) || '',
      tab: parseInt(p.get(`g${i}.tab`) || '1', 10),
      range: p.get(`g${i}.range_input`) || '1h',
      end: p.get(`g${i}.end_input`) || '',
      step: p.get(`g${i}.step_input`) || '',
      stacked: p.get(`g${i}.stacked`) === '1',
    });
  }
  return out.length ? out : [{ expr: '', tab: 1, range: '1h', end: '', step: '', stacked: false }];
}

function writeState(panels: PanelState[]) {
  const p = new URLSearchParams();
  panels.forEach((s, i) => {
    p.set(`g${i}.expr`, s.expr);
    p.set(`g${i}.tab`, String(s.tab));
    p.set(`g${i}.range_input`, s.range);
    if (s.end) p.set(`g${i}.end_input`, s.end);
    if (s.step) p.set(`g${i}.step_input`, s.step);
    if (s.stacked) p.set(`g${i}.stacked`, '1');
  });
  history.replaceState(null, '', `${location.pathname}?${p}`);
}

/** The word being typed at the cursor and what kind of completion fits there. */
function context(text: string, pos: number): { word: string; kind: 'metric' | 'label' | 'value'; label?: string } {
  const before = text.slice(0, pos);
  const valueM = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/.exec(before);
  if (valueM) return { word: valueM[3], kind: 'value', label: valueM[1] };
  const open = before.lastIndexOf('{');
  const close = before.lastIndexOf('}');
  const word = (/[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before) || [''])[0];
  if (open > close) return { word, kind: 'label' };
  const grouping = /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*$/.exec(before);
  return { word, kind: grouping ? 'label' : 'metric' };
}

function editor(initial: string, onRun: () => void): { root: HTMLElement; value: () => string } {
  const ta = el('textarea', {
    spellcheck: 'false',
    placeholder: 'Expression (press Shift+Enter for newlines)',
    'aria-label': 'expression',
  });
  ta.value = initial;
  const pre = el('pre', { class: 'hl', 'aria-hidden': 'true' });
  const box = el('div', { class: 'complete', hidden: true, role: 'listbox' });
  const wrap = el('div', { class: 'expr' }, pre, ta, box);
  pre.style.cssText =
    'position:absolute;inset:0;margin:0;padding:5px 9px;pointer-events:none;background:transparent;white-space:pre-wrap;word-break:break-all;font-family:ui-monospace,monospace;font-size:14px;line-height:1.45;border:1px solid transparent';
  ta.style.cssText =
    'position:relative;background:transparent;color:transparent;caret-color:var(--fg);padding:5px 9px;font-size:14px;line-height:1.45;word-break:break-all';
  const sync = () => {
    pre.innerHTML = highlight(ta.value);
    ta.style.height = 'auto';
    ta.style.height = ta.scrollHeight + 2 + 'px';
  };
  let items: { text: string; hint: string }[] = [];
  let sel = 0;
  const show = () => {
    box.replaceChildren(
      ...items.map((it, i) =>
        el(
          'div',
          {
            class: i === sel ? 'sel' : '',
            role: 'option',
            onmousedown: (e: Event) => {
              e.preventDefault();
              sel = i;
              accept();
            },
          },
          it.text,
          el('small', {}, it.hint),
        ),
      ),
    );
    box.hidden = items.length === 0;
  };
  const accept = () => {
    const it = items[sel];
    if (!it) return;
    const pos = ta.selectionStart;
    const { word } = context(ta.value, pos);
    ta.value = ta.value.slice(0, pos - word.length) + it.text + ta.value.slice(pos);
    const np = pos - word.length + it.text.length;
    ta.setSelectionRange(np, np);
    items = [];
    show();
    sync();
  };
  const complete = async () => {
    const c = context(ta.value, ta.selectionStart);
    const w = c.word;
    let cands: { text: string; hint: string }[] = [];
    if (c.kind === 'value' && c.label) {
      try {
        const { data } = await api<string[]>(`/api/v1/label/${encodeURIComponent(c.label)}/values`, { limit: '500' });
        cands = data.filter((v) => v.startsWith(w)).map((v) => ({ text: v, hint: 'value' }));
      } catch {
        cands = [];
      }
    } else if (c.kind === 'label') {
      cands = labelNames.filter((n) => n.startsWith(w)).map((n) => ({ text: labelNameText(n), hint: 'label' }));
    } else if (w.length > 0) {
      cands = [
        ...metricNames.filter((n) => n.startsWith(w)).map((n) => ({ text: metricSelectorText(n), hint: 'metric' })),
        ...[...FUNCTIONS, ...AGGREGATIONS].filter((n) => n.startsWith(w)).map((n) => ({ text: n, hint: 'function' })),
        ...KEYWORDS.filter((n) => n.startsWith(w)).map((n) => ({ text: n, hint: 'keyword' })),
      ];
    }
    items = cands.filter((x) => x.text !== w).slice(0, 50);
    sel = 0;
    show();
  };
  ta.addEventListener('input', () => {
    sync();
    complete();
  });
  ta.addEventListener('blur', () => {
    items = [];
    show();
  });
  ta.addEventListener('keydown', (e) => {
    if (!box.hidden && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      sel = (sel + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      show();
      e.preventDefault();
    } else if (!box.hidden && (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey))) {
      accept();
      e.preventDefault();
    } else if (e.key === 'Escape') {
      items = [];
      show();
    } else if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      onRun();
    }
  });
  sync();
  return { root: wrap, value: () => ta.value };
}

/** The range picker's steps, as Prometheus's UI offers them. */
const RANGES = ['1m', '5m', '15m', '30m', '1h', '2h', '6h', '12h', '1d', '2d', '1w', '2w', '4w', '8w', '24w', '1y'];

/** A time as a `datetime-local` input's value (local time, to the second). */
function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

const PALETTE = [
  '#2f6fed',
  '#e8590c',
  '#2b8a3e',
  '#c2255c',
  '#7048e8',
  '#0c8599',
  '#e67700',
  '#5c940d',
  '#a61e4d',
  '#1864ab',
];

function panel(state: PanelState, all: PanelState[], onRemove: () => void): HTMLElement {
  const out = el('div', { class: 'result' });
  const msgs = el('div');
  let ed: { root: HTMLElement; value: () => string };
  const run = async () => {
    state.expr = ed.value();
    state.range = rangeIn.value;
    state.end = endValue();
    state.step = stepIn.value;
    state.stacked = stacked.checked;
    writeState(all);
    msgs.replaceChildren();
    out.replaceChildren();
    if (!state.expr.trim()) return;
    const end = state.end ? Date.parse(state.end) / 1000 : Date.now() / 1000;
    try {
      if (state.tab === 1) await table(state.expr, end, out, msgs);
      else await chart(state, end, out, msgs);
    } catch (e) {
      msgs.append(el('div', { class: 'error', role: 'alert' }, errorText(e)));
    }
  };
  ed = editor(state.expr, run);
  const rangeIn = el('input', {
    value: state.range,
    size: 6,
    'aria-label': 'range',
    title: 'Range, e.g. 1h',
    list: 'vigil-ranges',
  });
  // The end is picked in local time (empty: now) and kept in the URL as RFC 3339 UTC.
  const endIn = el('input', {
    type: 'datetime-local',
    step: '1',
    'aria-label': 'end',
    title: 'End time (local); empty for now',
  });
  endIn.value = state.end ? toLocalInput(Date.parse(state.end)) : '';
  const endValue = () => (endIn.value ? new Date(endIn.value).toISOString() : '');
  const rangeStep = (dir: number) => {
    const cur = parseDuration(rangeIn.value) || 3600;
    const i = RANGES.findIndex((r) => parseDuration(r) >= cur);
    const at = i < 0 ? RANGES.length - 1 : parseDuration(RANGES[i]) === cur ? i + dir : dir < 0 ? i - 1 : i;
    rangeIn.value = RANGES[Math.max(0, Math.min(RANGES.length - 1, at))];
    run();
  };
  const shiftEnd = (dir: number) => {
    const range = parseDuration(rangeIn.value) || 3600;
    const end = endIn.value ? new Date(endIn.value).getTime() : Date.now();
    const next = end + dir * range * 1000;
    endIn.value = next >= Date.now() ? '' : toLocalInput(next);
    run();
  };
  const stepIn = el('input', {
    value: state.step,
    placeholder: 'Step (auto)',
    size: 8,
    'aria-label': 'step',
    title: 'Resolution step, e.g. 15s',
  });
  const stacked = el('input', { type: 'checkbox', 'aria-label': 'stacked' });
  stacked.checked = state.stacked;
  const tabs = el('div', { class: 'tabs' });
  const setTab = (t: number) => {
    state.tab = t;
    drawTabs();
    run();
  };
  const drawTabs = () =>
    tabs.replaceChildren(
      el('button', { class: state.tab === 1 ? 'on' : '', onclick: () => setTab(1) }, 'Table'),
      el('button', { class: state.tab === 0 ? 'on' : '', onclick: () => setTab(0) }, 'Graph'),
    );
  drawTabs();
  const controls = el(
    'div',
    { class: 'toolbar' },
    tabs,
    el(
      'span',
      { class: 'picker' },
      el('button', { onclick: () => rangeStep(-1), title: 'Shorter range', 'aria-label': 'shorter range' }, '−'),
      el('label', {}, 'Range ', rangeIn),
      el('button', { onclick: () => rangeStep(1), title: 'Longer range', 'aria-label': 'longer range' }, '+'),
    ),
    el(
      'span',
      { class: 'picker' },
      el('button', { onclick: () => shiftEnd(-1), title: 'Back by the range', 'aria-label': 'earlier' }, '◀'),
      el('label', {}, 'End ', endIn),
      el('button', { onclick: () => shiftEnd(1), title: 'Forward by the range', 'aria-label': 'later' }, '▶'),
      el(
        'button',
        {
          onclick: () => {
            endIn.value = '';
            run();
          },
          title: 'End now',
          'aria-label': 'end now',
        },
        'now',
      ),
    ),
    el('label', {}, 'Step ', stepIn),
    el('label', {}, stacked, ' stacked'),
    el('button', { class: 'primary', onclick: run }, 'Execute'),
    el('button', { onclick: onRemove, title: 'Remove panel' }, '✕'),
  );
  [rangeIn, endIn, stepIn].forEach((i) =>
    i.addEventListener('keydown', (e: KeyboardEvent) => {
      if (e.key === 'Enter') run();
    }),
  );
  endIn.addEventListener('change', run);
  stacked.addEventListener('change', run);
  const p = el('div', { class: 'panel' }, ed.root, controls, msgs, out);
  if (state.expr) setTimeout(run, 0);
  return p;
}

function showNotes(msgs: HTMLElement, warnings?: string[], infos?: string[]) {
  for (const w of warnings || []) msgs.append(el('div', { class: 'warn' }, '⚠ ' + w));
  for (const i of infos || []) msgs.append(el('div', { class: 'muted' }, 'ℹ ' + i));
}

async function table(expr: string, end: number, out: HTMLElement, msgs: HTMLElement) {
  const r = await api<QueryData>('/api/v1/query', { query: expr, time: String(end) });
  showNotes(msgs, r.warnings, r.infos);
  const d = r.data;
  const rows: HTMLElement[] = [];
  if (d.resultType === 'vector')
    for (const s of d.result)
      rows.push(
        el(
          'tr',
          {},
          el('td', {}, metricText(s.metric)),
          el('td', {}, s.histogram ? histogramCell(s.histogram[1]) : (s.value?.[1] ?? '')),
        ),
      );
  else if (d.resultType === 'matrix')
    for (const s of d.result) {
      const points = [
        ...(s.values || []).map(([t, v]): [number, string] => [t, v]),
        ...(s.histograms || []).map(([t, h]): [number, string] => [t, `count: ${h.count}, sum: ${h.sum}`]),
      ].sort((a, b) => a[0] - b[0]);
      rows.push(
        el('tr', {}, el('td', {}, metricText(s.metric)), el('td', {}, points.map(([t, v]) => `${v} @${t}`).join('\n'))),
      );
    }
  else rows.push(el('tr', {}, el('td', {}, d.resultType), el('td', {}, String(d.result[1]))));
  out.append(
    rows.length
      ? el('table', { class: 'series-table' }, el('tbody', {}, ...rows))
      : el('div', { class: 'empty' }, 'Empty query result'),
  );
}

/** A native histogram in the table: its count and sum, then its non-empty buckets. */
function histogramCell(h: NativeHistogram): HTMLElement {
  const buckets = nativeBuckets(h).filter(([, c]) => c !== 0);
  return el(
    'div',
    { class: 'histogram' },
    el('div', {}, `count: ${h.count}, sum: ${h.sum}`),
    buckets.length
      ? el(
          'table',
          { class: 'buckets' },
          el('thead', {}, el('tr', {}, el('th', {}, 'bucket'), el('th', {}, 'count'))),
          el(
            'tbody',
            {},
            ...buckets.map(([b, c]) => el('tr', {}, el('td', {}, bucketText(b)), el('td', {}, String(c)))),
          ),
        )
      : null,
  );
}

async function chart(state: PanelState, end: number, out: HTMLElement, msgs: HTMLElement) {
  const range = parseDuration(state.range);
  if (!range) throw new Error(`invalid range ${JSON.stringify(state.range)}`);
  const step = state.step ? parseDuration(state.step) : Math.max(Math.round(range / 250), 1);
  if (!step) throw new Error(`invalid step ${JSON.stringify(state.step)}`);
  const start = end - range;
  const r = await api<QueryData>('/api/v1/query_range', {
    query: state.expr,
    start: String(start),
    end: String(end),
    step: String(step),
  });
  showNotes(msgs, r.warnings, r.infos);
  if (r.data.resultType !== 'matrix') throw new Error(`a range query answered a ${r.data.resultType}`);
  if (!r.data.result.length) {
    out.append(el('div', { class: 'empty' }, 'Empty query result'));
    return;
  }
  const xs: number[] = [];
  for (let t = start; t <= end + 1e-9; t += step) xs.push(Math.round(t * 1000) / 1000);
  // Native histograms: a heatmap per series (the first ten), then the float series' chart.
  const hists = r.data.result.filter((s) => s.histograms?.length);
  const width = Math.max(out.clientWidth || 800, 300);
  for (const s of hists.slice(0, 10)) {
    const holder = el('div', { class: 'chart', 'data-series': '1' });
    out.append(el('div', { class: 'heatmap-title' }, metricText(s.metric)), holder);
    drawHeatmap(holder, xs, step, nativeCells([s], xs), width);
  }
  if (hists.length > 10)
    msgs.append(el('div', { class: 'muted' }, `ℹ ${hists.length - 10} more histogram series are not drawn`));
  const series = r.data.result.filter((s) => s.values?.length);
  if (!series.length) return;
  const index = new Map(xs.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const col: (number | null)[] = new Array(xs.length).fill(null);
    for (const [t, v] of s.values || []) {
      const i = index.get(Math.round(t * 1000) / 1000);
      if (i !== undefined) col[i] = parseFloat(v);
    }
    return col;
  });
  if (state.stacked)
    for (let j = 1; j < ys.length; j++)
      for (let i = 0; i < xs.length; i++)
        if (ys[j][i] !== null) ys[j][i] = (ys[j][i] as number) + ((ys[j - 1][i] as number) || 0);
  const holder = el('div', { class: 'chart', 'data-series': String(series.length) });
  out.append(holder);
  const opts: uPlot.Options = {
    width: Math.max(holder.clientWidth || out.clientWidth || 800, 300),
    height: 320,
    series: [
      {},
      ...series.map((s, i) => ({
        label: metricText(s.metric),
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        fill: state.stacked ? PALETTE[i % PALETTE.length] + '40' : undefined,
        // Sparse series (a fresh target, a short history) are drawn as points, not nothing.
        points: { show: (s.values?.length ?? 0) < 60, size: 5 },
      })),
    ],
    axes: [timeAxis(), themedAxis()],
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
  };
  track(new uPlot(opts, [xs, ...ys], holder));
}

export async function graphPage(root: HTMLElement) {
  const panels = readState();
  const list = el('div');
  const draw = () => {
    list.replaceChildren(
      ...panels.map((s, i) =>
        panel(s, panels, () => {
          panels.splice(i, 1);
          writeState(panels);
          draw();
        }),
      ),
    );
  };
  root.append(
    el('h1', {}, 'Query'),
    el('datalist', { id: 'vigil-ranges' }, ...RANGES.map((r) => el('option', { value: r }))),
    list,
    el(
      'button',
      {
        onclick: () => {
          panels.push({ expr: '', tab: 1, range: '1h', end: '', step: '', stacked: false });
          draw();
        },
      },
      '+ Add panel',
    ),
  );
  draw();
  Promise.all([api<string[]>('/api/v1/label/__name__/values'), api<string[]>('/api/v1/labels')])
    .then(([m, l]) => {
      metricNames = m.data;
      labelNames = l.data;
    })
    .catch(() => {});
}
