// Grafana dashboards rendered by vigil: /dashboards lists them, /d/<uid>/<slug> lays one out as
// Grafana does (24-column grid from gridPos, rows and collapsed rows, old row/span layouts),
// with graph/timeseries, heatmap (native histograms, or classic ones by `le`), stat/singlestat,
// gauge, bargauge, table and text panels; legendFormat,
// units, decimals, thresholds, stacking, min/max; template variables; the time range and auto
// refresh in the URL (?from=now-1h&to=now&refresh=10s).
import uPlot from 'uplot';
import { api, el, metricText } from './api';
import { Vars, durationText, formatUnit, interpolate, parseDuration, roundInterval } from './format';
import { themedAxis, timeAxis, track } from './theme';
import { classicCells, drawHeatmap, nativeCells } from './heatmap';
import type { Dashboard, DashboardList, Panel, Variable } from './grafana';
import type { Labels, QueryData, RangeSeries, SamplePair } from './types';

export async function dashboardsPage(root: HTMLElement) {
  const { data } = await api<DashboardList>('/api/v1/dashboards');
  root.append(el('h1', {}, 'Dashboards'));
  for (const e of data.errors || []) root.append(el('div', { class: 'error' }, e));
  const rows = data.dashboards.map((d) =>
    el(
      'tr',
      {},
      el('td', {}, el('a', { href: `d/${encodeURIComponent(d.uid)}${d.slug ? `/${d.slug}` : ''}` }, d.title)),
      el('td', {}, ...(d.tags || []).map((t: string) => el('span', { class: 'label' }, t))),
      el('td', { class: 'muted' }, d.source),
    ),
  );
  root.append(
    el(
      'table',
      {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Title'), el('th', {}, 'Tags'), el('th', {}, 'From'))),
      el('tbody', {}, ...rows),
    ),
  );
}

// ---- time ----

function parseRel(s: string, now: number): number {
  if (/^\d+$/.test(s)) return parseInt(s, 10) / (s.length > 11 ? 1000 : 1);
  const m = /^now(?:-(\d+)([smhdwMy]))?(?:\/[smhdwMy])?$/.exec(s.trim());
  if (!m) {
    const t = Date.parse(s);
    return isNaN(t) ? now : t / 1000;
  }
  if (!m[1]) return now;
  const mult: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };
  return now - parseInt(m[1], 10) * mult[m[2]];
}

// ---- variables ----

async function variableOptions(v: Variable, vars: Vars): Promise<string[]> {
  const raw = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
  const q = v.type === 'query' ? interpolate(String(raw), vars, {}) : raw;
  switch (v.type) {
    case 'custom':
      return String(q)
        .split(',')
        .map((s: string) => s.trim())
        .filter(Boolean);
    case 'constant':
      return [String(q)];
    case 'interval':
      return String(q)
        .split(',')
        .map((s: string) => s.trim())
        .filter(Boolean);
    case 'query': {
      let m: RegExpExecArray | null;
      if ((m = /^label_values\((?:(.+),\s*)?(\w+)\)\s*$/.exec(q))) {
        const params: Record<string, string> = {};
        if (m[1]) params['match[]'] = m[1];
        return (await api<string[]>(`/api/v1/label/${m[2]}/values`, params)).data;
      }
      if (/^label_names\(\)\s*$/.test(q)) return (await api<string[]>('/api/v1/labels')).data;
      if ((m = /^metrics\((.*)\)\s*$/.exec(q))) {
        const re = new RegExp(m[1]);
        return (await api<string[]>('/api/v1/label/__name__/values')).data.filter((n) => re.test(n));
      }
      if ((m = /^query_result\((.*)\)\s*$/.exec(q))) {
        return (await instant(m[1])).map((s) => `${metricText(s.metric)} ${s.value[1]} ${s.value[0] * 1000}`);
      }
      return [];
    }
    default:
      return [];
  }
}

/** An instant query's answer as float samples (native histograms have no single value to
 *  show, so they are left out); a scalar is one sample with no labels. */
async function instant(query: string, time?: number): Promise<{ metric: Labels; value: SamplePair }[]> {
  const params: Record<string, string> = { query };
  if (time !== undefined) params.time = String(time);
  const { data } = await api<QueryData>('/api/v1/query', params);
  switch (data.resultType) {
    case 'vector':
      return data.result.flatMap((s) => (s.value ? [{ metric: s.metric, value: s.value }] : []));
    case 'scalar':
      return [{ metric: {}, value: data.result }];
    default:
      return [];
  }
}

// ---- layout ----

/** Panels laid out on Grafana's 24-column grid; old `rows` (spans of 12) converted. */
export function layout(d: Dashboard): Panel[] {
  if (Array.isArray(d.panels) && d.panels.length) return d.panels;
  const out: Panel[] = [];
  let y = 0;
  for (const row of d.rows || []) {
    const h = Math.max(3, Math.round((parseInt(String(row.height || '250'), 10) || 250) / 30));
    if (row.showTitle || row.title)
      out.push({
        type: 'row',
        title: row.title,
        gridPos: { x: 0, y, w: 24, h: 1 },
        collapsed: !!row.collapse,
        panels: [],
      });
    y += 1;
    let x = 0;
    for (const p of row.panels || []) {
      const w = Math.min(24, Math.round((p.span || 12) * 2));
      if (x + w > 24) {
        x = 0;
        y += h;
      }
      out.push({ ...p, gridPos: { x, y, w, h } });
      x += w;
    }
    y += h;
  }
  return out;
}

const COLORS: Record<string, string> = {
  green: '#56a64b',
  red: '#e02f44',
  orange: '#ff9830',
  yellow: '#f2cc0c',
  blue: '#3274d9',
  purple: '#a352cc',
};
const color = (c: string) =>
  COLORS[c] || COLORS[c?.replace(/^(dark|semi-dark|light|super-light)-/, '')] || c || '#56a64b';
const PALETTE = [
  '#7eb26d',
  '#eab839',
  '#6ed0e0',
  '#ef843c',
  '#e24d42',
  '#1f78c1',
  '#ba43a9',
  '#705da0',
  '#508642',
  '#cca300',
];

function thresholdColor(v: number, p: Panel): string {
  const steps = p.fieldConfig?.defaults?.thresholds?.steps;
  if (Array.isArray(steps) && steps.length) {
    let c = steps[0].color;
    for (const s of steps) if (s.value !== null && s.value !== undefined && v >= s.value) c = s.color;
    return color(c);
  }
  if (p.thresholds && p.colors) {
    const t = String(p.thresholds).split(',').map(Number);
    let i = 0;
    while (i < t.length && v >= t[i]) i++;
    return p.colors[i] || 'inherit';
  }
  return 'inherit';
}

function legend(fmt: string | undefined, metric: Record<string, string>, expr: string): string {
  if (fmt) return fmt.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, l) => metric[l] ?? '');
  const t = metricText(metric);
  return t === '{}' ? expr : t;
}

// ---- panels ----

interface Ctx {
  from: number;
  to: number;
  vars: Vars;
  width: number;
}

function panelUnit(p: Panel): string | undefined {
  return p.fieldConfig?.defaults?.unit ?? p.yaxes?.[0]?.format ?? p.format;
}

function builtins(ctx: Ctx, p: Panel, width: number): Record<string, string> {
  const range = ctx.to - ctx.from;
  const maxPoints = p.maxDataPoints || Math.max(width, 100);
  const minInterval = 15;
  let intervalMs = roundInterval((range * 1000) / maxPoints);
  intervalMs = Math.max(intervalMs, minInterval * 1000);
  const rate = Math.max(intervalMs / 1000 + minInterval, 4 * minInterval);
  return {
    __interval: durationText(intervalMs / 1000),
    __interval_ms: String(intervalMs),
    __rate_interval: durationText(rate),
    __range: durationText(Math.round(range)),
    __range_s: String(Math.round(range)),
    __range_ms: String(Math.round(range * 1000)),
  };
}

async function renderPanel(p: Panel, ctx: Ctx, body: HTMLElement) {
  const targets = (p.targets || []).flatMap((t) => (t.expr && !t.hide ? [{ ...t, expr: t.expr }] : []));
  const width = Math.max(body.clientWidth, 200);
  const b = builtins(ctx, p, width);
  const step = Math.max(parseInt(b.__interval_ms, 10) / 1000, 1);
  const unit = panelUnit(p);
  const decimals = p.fieldConfig?.defaults?.decimals ?? p.decimals ?? undefined;
  const instantValues = async () => {
    const out: { label: string; value: number }[] = [];
    for (const t of targets) {
      for (const s of await instant(interpolate(t.expr, ctx.vars, b), ctx.to))
        out.push({ label: legend(t.legendFormat, s.metric, t.expr), value: parseFloat(s.value[1]) });
    }
    return out;
  };
  switch (p.type) {
    case 'text': {
      const content = p.options?.content ?? p.content ?? '';
      body.append(
        el(
          'div',
          { class: 'text-panel' },
          ...String(content)
            .split('\n')
            .map((l) => el('div', {}, l.replace(/^#+\s*/, ''))),
        ),
      );
      return;
    }
    case 'stat':
    case 'singlestat':
    case 'gauge':
    case 'bargauge': {
      const vals = await instantValues();
      if (!vals.length) {
        body.append(el('div', { class: 'stat-value muted' }, 'No data'));
        return;
      }
      const shown = p.type === 'bargauge' ? vals : vals.slice(0, p.type === 'stat' ? 8 : 4);
      const min = p.fieldConfig?.defaults?.min ?? 0;
      const max =
        p.fieldConfig?.defaults?.max ??
        (p.type === 'gauge' || p.type === 'bargauge'
          ? Math.max(100, ...shown.map((v) => v.value).filter(Number.isFinite))
          : undefined);
      const wrap = el('div', { class: `stat-wrap ${p.type}` });
      for (const v of shown) {
        const c = thresholdColor(v.value, p);
        const cell = el(
          'div',
          { class: 'stat' },
          shown.length > 1 ? el('div', { class: 'stat-label muted' }, v.label) : null,
          el('div', { class: 'stat-value', style: `color:${c}` }, formatUnit(v.value, unit, decimals)),
        );
        if ((p.type === 'gauge' || p.type === 'bargauge') && max !== undefined) {
          const pct = Number.isFinite(v.value)
            ? Math.max(0, Math.min(100, ((v.value - min) / (max - min || 1)) * 100))
            : 0;
          cell.append(
            el(
              'div',
              { class: 'bar' },
              el('div', { style: `width:${pct}%;background:${c === 'inherit' ? '#56a64b' : c}` }),
            ),
          );
        }
        wrap.append(cell);
      }
      body.append(wrap);
      return;
    }
    case 'table':
    case 'table-old': {
      const rows: Labels[] = [];
      for (const t of targets) {
        for (const s of await instant(interpolate(t.expr, ctx.vars, b), ctx.to))
          rows.push({ ...s.metric, Value: s.value[1] });
      }
      const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort((a, z) =>
        a === 'Value' ? 1 : z === 'Value' ? -1 : a.localeCompare(z),
      );
      body.append(
        rows.length
          ? el(
              'table',
              { class: 'panel-table' },
              el('thead', {}, el('tr', {}, ...cols.map((c) => el('th', {}, c)))),
              el(
                'tbody',
                {},
                ...rows.map((r) =>
                  el(
                    'tr',
                    {},
                    ...cols.map((c) =>
                      el('td', {}, c === 'Value' ? formatUnit(parseFloat(r[c]), unit, decimals) : (r[c] ?? '')),
                    ),
                  ),
                ),
              ),
            )
          : el('div', { class: 'muted' }, 'No data'),
      );
      return;
    }
    default: {
      // graph, timeseries and anything else drawn over time.
      const start = Math.floor(ctx.from / step) * step;
      const end = Math.ceil(ctx.to / step) * step;
      const series: { label: string; values: [number, string][] }[] = [];
      const all: RangeSeries[] = [];
      for (const t of targets) {
        const r = await api<QueryData>('/api/v1/query_range', {
          query: interpolate(t.expr, ctx.vars, b),
          start: String(start),
          end: String(end),
          step: String(step),
        });
        if (r.data.resultType !== 'matrix') continue;
        for (const s of r.data.result) {
          all.push(s);
          if (s.values?.length) series.push({ label: legend(t.legendFormat, s.metric, t.expr), values: s.values });
        }
      }
      const xs: number[] = [];
      for (let t = start; t <= end + 1e-9; t += step) xs.push(Math.round(t * 1000) / 1000);
      // Native histograms, and a heatmap panel's classic buckets: one heatmap of them all,
      // bucket by bucket (as Grafana draws a heatmap panel's series).
      const native = all.filter((s) => s.histograms?.length);
      const classic = p.type === 'heatmap' && !native.length ? all.filter((s) => s.metric.le !== undefined) : [];
      if (native.length || classic.length) {
        const cells = native.length ? nativeCells(native, xs) : classicCells(classic, xs);
        body.dataset.series = String(native.length || classic.length);
        const holder = el('div', { class: 'chart' });
        body.append(holder);
        // Room below for the readout line.
        drawHeatmap(holder, xs, step, cells, width, Math.max(body.clientHeight - 22, 80));
        if (native.length && series.length)
          body.append(el('div', { class: 'muted' }, `${series.length} float series not drawn beside the histograms`));
        return;
      }
      body.dataset.series = String(series.length);
      if (!series.length) {
        body.append(el('div', { class: 'muted' }, 'No data'));
        return;
      }
      const idx = new Map(xs.map((t, i) => [t, i]));
      const ys = series.map((s) => {
        const col: (number | null)[] = new Array(xs.length).fill(null);
        for (const [t, v] of s.values) {
          const i = idx.get(Math.round(t * 1000) / 1000);
          if (i !== undefined) col[i] = parseFloat(v);
        }
        return col;
      });
      const stacked = p.stack === true || p.fieldConfig?.defaults?.custom?.stacking?.mode === 'normal';
      if (stacked)
        for (let j = 1; j < ys.length; j++)
          for (let i = 0; i < xs.length; i++)
            if (ys[j][i] !== null) ys[j][i] = (ys[j][i] as number) + ((ys[j - 1][i] as number) || 0);
      const min = p.fieldConfig?.defaults?.min ?? (p.yaxes?.[0]?.min != null ? Number(p.yaxes[0].min) : undefined);
      const max = p.fieldConfig?.defaults?.max ?? (p.yaxes?.[0]?.max != null ? Number(p.yaxes[0].max) : undefined);
      const holder = el('div', { class: 'chart' });
      body.append(holder);
      const height = Math.max(body.clientHeight - 10, 80);
      const u = track(
        new uPlot(
          {
            width,
            height,
            legend: { show: p.legend?.show !== false && series.length <= 12 },
            scales: {
              y: {
                range: (_u: uPlot, lo: number, hi: number) => [
                  min ?? Math.min(lo, 0),
                  max ?? (hi === lo ? hi + 1 : hi),
                ],
              },
            },
            axes: [
              timeAxis({ size: 30 }),
              themedAxis({
                size: 72,
                values: (_u: uPlot, vals: number[]) => vals.map((v) => formatUnit(v, unit, undefined)),
              }),
            ],
            series: [
              {},
              ...series.map((s, i) => ({
                label: s.label,
                stroke: PALETTE[i % PALETTE.length],
                width: 1.5,
                fill: stacked || p.fill ? PALETTE[i % PALETTE.length] + '30' : undefined,
                points: { show: s.values.length < 30, size: 4 },
                value: (_u: uPlot, v: number) => formatUnit(v, unit, decimals),
              })),
            ],
          },
          [xs, ...ys],
          holder,
        ),
      );
      // The legend sits below the plot: the plot gives it room, so a short panel does not
      // clip it.
      // Measured once laid out: right after construction the legend is not yet in its final
      // shape (it measured several times its height, and charts came out 60px tall).
      const legendBox = holder.querySelector('.u-legend') as HTMLElement | null;
      const fitLegend = () => {
        const room = body.clientHeight - (legendBox?.offsetHeight || 0) - 10;
        const fit = Math.max(room, 60);
        if (Math.abs(fit - u.height) > 1) u.setSize({ width, height: fit });
      };
      fitLegend();
      requestAnimationFrame(fitLegend);
    }
  }
}

export async function dashboardPage(root: HTMLElement, uid: string) {
  const { data } = await api<{ dashboard: Dashboard }>(`/api/v1/dashboards/${encodeURIComponent(uid)}`);
  const d = data.dashboard;
  const params = new URLSearchParams(location.search);
  const fromS = params.get('from') || d.time?.from || 'now-6h';
  const toS = params.get('to') || d.time?.to || 'now';
  const refresh = params.get('refresh') ?? d.refresh ?? '';
  document.title = `vigil · ${d.title}`;
  const vars: Vars = {};
  const varBar = el('div', { class: 'toolbar' });
  const rangeSel = el(
    'select',
    { 'aria-label': 'time range' },
    ...['now-5m', 'now-15m', 'now-30m', 'now-1h', 'now-3h', 'now-6h', 'now-12h', 'now-24h', 'now-2d', 'now-7d'].map(
      (r) => el('option', { value: r }, `Last ${r.slice(4)}`),
    ),
  );
  if (![...rangeSel.options].some((o) => o.value === fromS)) rangeSel.append(el('option', { value: fromS }, fromS));
  rangeSel.value = fromS;
  const refreshSel = el(
    'select',
    { 'aria-label': 'refresh' },
    ...['', '5s', '10s', '30s', '1m', '5m'].map((r) => el('option', { value: r }, r ? `every ${r}` : 'no refresh')),
  );
  if (![...refreshSel.options].some((o) => o.value === refresh))
    refreshSel.append(el('option', { value: refresh }, refresh));
  refreshSel.value = refresh;
  const grid = el('div', { class: 'dash-grid' });
  root.append(
    el('div', { class: 'toolbar' }, el('h1', { style: 'margin:0;flex:1' }, d.title), rangeSel, refreshSel),
    varBar,
    grid,
  );
  const setUrl = () => {
    const u = new URL(location.href);
    u.searchParams.set('from', rangeSel.value);
    u.searchParams.set('to', toS);
    refreshSel.value ? u.searchParams.set('refresh', refreshSel.value) : u.searchParams.delete('refresh');
    for (const [k, v] of Object.entries(chosenBy)) {
      u.searchParams.delete(`var-${k}`);
      for (const x of v) u.searchParams.append(`var-${k}`, x);
    }
    history.replaceState(null, '', u);
  };
  // Template variables: options from the API, values from the URL or the dashboard's current.
  // Each variable's query sees the variables before it (Grafana's chaining); changing one
  // reloads the options of those after it, keeping their choice while it is still offered.
  const defs = (d.templating?.list || []).filter((v) => v.type !== 'datasource' && v.type !== 'adhoc');
  const chosenBy: Record<string, string[]> = {};
  const shown: (HTMLElement | undefined)[] = [];
  const setupVar = async (i: number, first: boolean) => {
    const v = defs[i];
    let opts: string[] = [];
    try {
      opts = await variableOptions(v, vars);
    } catch {
      opts = [];
    }
    if (v.regex) {
      try {
        const re = new RegExp(v.regex.replace(/^\/(.*)\/\w*$/, '$1'));
        opts = opts
          .map((o) => {
            const m = re.exec(o);
            return m ? (m[1] ?? m[0]) : null;
          })
          .filter((o): o is string => o !== null);
      } catch {
        /* keep */
      }
    }
    opts = [...new Set(opts)];
    const isAll = (c: string) => c === '$__all' || c === 'All';
    let chosen: string[];
    if (first) {
      const fromUrl = params.getAll(`var-${v.name}`);
      const cur = v.current?.value;
      chosen = fromUrl.length
        ? fromUrl
        : Array.isArray(cur)
          ? cur
          : cur !== undefined
            ? [String(cur)]
            : opts.slice(0, 1);
    } else {
      const prev = chosenBy[v.name] || [];
      chosen = prev.length && prev.every((c) => isAll(c) || opts.includes(c)) ? prev : opts.slice(0, 1);
    }
    const all =
      v.allValue || (opts.length ? opts.map((o) => o.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|') : '.*');
    const resolve = (c: string[]) => (c.some(isAll) ? [all] : c);
    chosenBy[v.name] = chosen;
    vars[v.name] = resolve(chosen);
    if (v.hide === 2) return;
    const sel = el(
      'select',
      { 'aria-label': `variable ${v.name}`, multiple: !!v.multi, 'data-var': v.name },
      ...(v.includeAll ? [el('option', { value: '$__all' }, 'All')] : []),
      ...opts.map((o) => el('option', { value: o }, o)),
    );
    for (const o of sel.options) o.selected = chosen.includes(o.value) || (o.value === '$__all' && chosen.some(isAll));
    sel.addEventListener('change', async () => {
      chosenBy[v.name] = [...sel.selectedOptions].map((o) => o.value);
      vars[v.name] = resolve(chosenBy[v.name]);
      for (let j = i + 1; j < defs.length; j++) await setupVar(j, false);
      setUrl();
      draw();
    });
    const label = el('label', {}, `${v.label || v.name} `, sel);
    if (shown[i]) shown[i]!.replaceWith(label);
    else varBar.append(label);
    shown[i] = label;
  };
  for (let i = 0; i < defs.length; i++) await setupVar(i, true);
  let timer: number | undefined;
  const draw = () => {
    const now = Date.now() / 1000;
    const ctx: Ctx = { from: parseRel(rangeSel.value, now), to: parseRel(toS, now), vars, width: 0 };
    grid.replaceChildren();
    const panels = layout(d);
    const collapsedChildren = (p: Panel) => (p.type === 'row' && p.collapsed ? p.panels || [] : []);
    for (const p of panels) {
      const g = p.gridPos || { x: 0, y: 0, w: 12, h: 8 };
      const style = `grid-column:${g.x + 1} / span ${g.w};grid-row:${g.y + 1} / span ${g.h}`;
      if (p.type === 'row') {
        const kids = collapsedChildren(p);
        grid.append(
          el(
            'div',
            { class: 'dash-row', style },
            el('h2', {}, (p.collapsed ? '▸ ' : '▾ ') + interpolate(p.title || '', vars, {})),
            kids.length ? el('span', { class: 'muted' }, ` (${kids.length} panels)`) : null,
          ),
        );
        continue;
      }
      const body = el('div', { class: 'panel-body' });
      const box = el(
        'section',
        { class: 'dash-panel', style, 'data-type': p.type, 'data-title': p.title || '' },
        el('header', {}, interpolate(p.title || '', vars, {})),
        body,
      );
      grid.append(box);
      requestAnimationFrame(() =>
        renderPanel(p, ctx, body)
          .then(() => box.classList.add('done'))
          .catch((e: unknown) => {
            body.append(el('div', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e)));
            box.classList.add('done', 'failed');
          }),
      );
    }
    clearInterval(timer);
    // A link sets the refresh: keep it between 5 s (no hammering the server) and 24 days
    // (setInterval's limit, beyond which browsers fire at once).
    const secs = refreshSel.value ? parseDuration(refreshSel.value) : 0;
    if (secs > 0) timer = window.setInterval(draw, Math.min(Math.max(secs, 5), 24 * 86400) * 1000);
  };
  rangeSel.addEventListener('change', () => {
    setUrl();
    draw();
  });
  refreshSel.addEventListener('change', () => {
    setUrl();
    draw();
  });
  draw();
}
