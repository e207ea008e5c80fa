// Heatmaps of histograms over time: native histograms (their buckets as the API writes them)
// and classic ones (series told apart by `le`), drawn by uPlot so they share the charts' time
// axis, theme and cursor. Each cell is one bucket at one step, coloured by its count.
import uPlot from 'uplot';
import { el } from './api';
import { fmtNum } from './format';
import { cssColor, themedAxis, timeAxis, track } from './theme';
import type { HistogramPair, NativeHistogram, RangeSeries } from './types';

/** A bucket: its bounds and how the API says they close. */
export interface Bucket {
  lower: number;
  upper: number;
  rule: number;
}

/** The cells of one heatmap: `counts[bucket][step]`, null where a step has no sample. */
export interface Cells {
  buckets: Bucket[];
  counts: (number | null)[][];
}

const key = (b: Bucket) => `${b.rule}|${b.lower}|${b.upper}`;

/** A bucket as Prometheus's UI writes it: `(0.1, 0.25]`. */
export function bucketText(b: Bucket): string {
  const open = b.rule === 1 || b.rule === 3 ? '[' : '(';
  const close = b.rule === 0 || b.rule === 3 ? ']' : ')';
  return `${open}${fmtBound(b.lower)}, ${fmtBound(b.upper)}${close}`;
}

function fmtBound(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const a = Math.abs(v);
  // Six significant digits: exponential buckets' bounds are long fractions.
  return a !== 0 && (a < 1e-4 || a >= 1e9) ? v.toExponential(3) : String(Number(v.toPrecision(6)));
}

/** A number as the API writes it: Go's `+Inf`, `-Inf` and `NaN` included. */
export function parseValue(s: string): number {
  switch (s) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    default:
      return parseFloat(s);
  }
}

/** A native histogram's buckets with their counts. */
export function nativeBuckets(h: NativeHistogram): [Bucket, number][] {
  return (h.buckets || []).map(([rule, lo, hi, c]) => [
    { rule, lower: parseValue(lo), upper: parseValue(hi) },
    parseValue(c),
  ]);
}

/** Native histogram series on the steps `xs`, summed bucket by bucket (the same bounds add). */
export function nativeCells(series: RangeSeries[], xs: number[]): Cells {
  const index = new Map(xs.map((t, i) => [Math.round(t * 1000), i]));
  const rows = new Map<string, { b: Bucket; row: (number | null)[] }>();
  for (const s of series)
    for (const [t, h] of s.histograms || ([] as HistogramPair[])) {
      const i = index.get(Math.round(t * 1000));
      if (i === undefined) continue;
      for (const [b, c] of nativeBuckets(h)) {
        let r = rows.get(key(b));
        if (!r) rows.set(key(b), (r = { b, row: new Array(xs.length).fill(null) }));
        r.row[i] = (r.row[i] ?? 0) + c;
      }
    }
  const sorted = [...rows.values()].sort((p, q) => p.b.upper - q.b.upper || p.b.lower - q.b.lower);
  return { buckets: sorted.map((r) => r.b), counts: sorted.map((r) => r.row) };
}

/** Classic histogram series (cumulative counts told apart by `le`) on the steps `xs`: series
 *  of one `le` summed, then each bucket's count less the one below it. Series without a
 *  numeric `le` are left out. */
export function classicCells(series: RangeSeries[], xs: number[]): Cells {
  const index = new Map(xs.map((t, i) => [Math.round(t * 1000), i]));
  const byLe = new Map<number, (number | null)[]>();
  for (const s of series) {
    const le = parseValue(s.metric.le ?? '');
    if (Number.isNaN(le)) continue;
    let row = byLe.get(le);
    if (!row) byLe.set(le, (row = new Array(xs.length).fill(null)));
    for (const [t, v] of s.values || []) {
      const i = index.get(Math.round(t * 1000));
      if (i !== undefined) row[i] = (row[i] ?? 0) + parseFloat(v);
    }
  }
  const les = [...byLe.keys()].sort((a, b) => a - b);
  const buckets: Bucket[] = [];
  const counts: (number | null)[][] = [];
  les.forEach((le, k) => {
    const row = byLe.get(le) as (number | null)[];
    const below = k > 0 ? (byLe.get(les[k - 1]) as (number | null)[]) : null;
    buckets.push({ lower: k > 0 ? les[k - 1] : le > 0 ? 0 : -Infinity, upper: le, rule: 0 });
    // A step where the bucket below has no value leaves the cell empty (its own count is
    // unknown), rather than showing the cumulative count.
    counts.push(row.map((v, i) => (v === null || below?.[i] === null ? null : Math.max(0, v - (below?.[i] ?? 0)))));
  });
  return { buckets, counts };
}

/** A sequential colour for `f` in [0, 1]: pale blue through teal and yellow to red. */
function colour(f: number): string {
  const stops: [number, number, number][] = [
    [210, 70, 88],
    [190, 70, 55],
    [60, 85, 55],
    [10, 85, 50],
  ];
  const x = Math.min(Math.max(f, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const t = x - i;
  const [h0, s0, l0] = stops[i];
  const [h1, s1, l1] = stops[i + 1];
  return `hsl(${h0 + (h1 - h0) * t}, ${s0 + (s1 - s0) * t}%, ${l0 + (l1 - l0) * t}%)`;
}

/** Draw `cells` over the steps `xs` (seconds, `step` apart) into `holder`: one row per bucket,
 *  labelled with its upper bound, and a readout of the bucket under the cursor. */
export function drawHeatmap(
  holder: HTMLElement,
  xs: number[],
  step: number,
  cells: Cells,
  width: number,
  height = 320,
) {
  const { buckets, counts } = cells;
  holder.classList.add('heatmap');
  holder.dataset.buckets = String(buckets.length);
  let max = 0;
  for (const row of counts) for (const c of row) if (c !== null && c > max) max = c;
  const readout = el('div', { class: 'heatmap-readout muted' }, '\u00a0');
  // Row j spans j..j+1 on the y scale; its upper bound labels its top edge.
  const label = (v: number) => {
    const b = buckets[Math.round(v) - 1];
    return b ? fmtBound(b.upper) : '';
  };
  const draw = (u: uPlot) => {
    const ctx = u.ctx;
    let drawn = 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    counts.forEach((row, j) => {
      const y0 = u.valToPos(j + 1, 'y', true);
      const y1 = u.valToPos(j, 'y', true);
      row.forEach((c, i) => {
        if (c === null || c <= 0) return;
        const x0 = u.valToPos(xs[i] - step / 2, 'x', true);
        const x1 = u.valToPos(xs[i] + step / 2, 'x', true);
        ctx.fillStyle = colour(max > 0 ? Math.sqrt(c / max) : 0);
        ctx.fillRect(x0, y0, Math.max(x1 - x0, 1), Math.max(y1 - y0, 1));
        drawn++;
      });
    });
    ctx.restore();
    // What was drawn, for tests and for anyone inspecting the page.
    holder.dataset.cells = String(drawn);
  };
  const u = new uPlot(
    {
      width,
      height,
      legend: { show: false },
      scales: {
        x: { time: true, range: [xs[0] - step / 2, xs[xs.length - 1] + step / 2] },
        y: { auto: false, range: [0, Math.max(buckets.length, 1)] },
      },
      axes: [
        timeAxis(),
        themedAxis({
          size: 70,
          // Row edges, at most about one label per 20px.
          splits: () => {
            const every = Math.max(1, Math.ceil(buckets.length / Math.max(height / 20, 1)));
            const out: number[] = [];
            for (let j = buckets.length; j > 0; j -= every) out.push(j);
            return out.reverse();
          },
          values: (_u: uPlot, vals: number[]) => vals.map(label),
          grid: { show: false },
        }),
      ],
      series: [{}, { label: 'count', stroke: cssColor('--muted'), points: { show: false }, paths: () => null }],
      hooks: {
        draw: [draw],
        setCursor: [
          (u: uPlot) => {
            const i = u.cursor.idx;
            const top = u.cursor.top ?? -1;
            if (i === null || i === undefined || top < 0) {
              readout.textContent = '\u00a0';
              return;
            }
            const j = Math.floor(u.posToVal(top, 'y'));
            const b = buckets[j];
            const c = counts[j]?.[i];
            const when = new Date(xs[i] * 1000).toLocaleTimeString();
            readout.textContent = b
              ? `${when}  ${bucketText(b)}: ${c === null || c === undefined ? '–' : fmtNum(c)}`
              : '\u00a0';
          },
        ],
      },
    },
    [xs, xs.map(() => null)],
    holder,
  );
  holder.append(readout);
  track(u);
}
