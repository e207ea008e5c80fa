// Chart colours follow the page's theme. A canvas cannot resolve `var(--x)` (uPlot draws axes
// on one), so colours are read from the CSS variables whenever a chart draws, and a theme
// switch redraws every chart still on the page.
import uPlot from 'uplot';

const charts = new Set<uPlot>();

/** The value of a CSS custom property on the root, e.g. `--muted`. */
export function cssColor(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** Axis options drawing labels in `--muted` and grid lines in `--line`, for either theme. */
export function themedAxis(extra: Partial<uPlot.Axis> = {}): uPlot.Axis {
  return {
    stroke: () => cssColor('--muted'),
    grid: { stroke: () => cssColor('--line') },
    ticks: { stroke: () => cssColor('--line') },
    ...extra,
  };
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Time-axis labels that always say the time of day: `14:05` when ticks are a minute or
 *  more apart, `14:05:30` when closer (uPlot's own labels turn into `:30`, `:00` there), with
 *  the date added when ticks are a day or more apart. Timestamps are in seconds. */
export function timeTicks(_u: uPlot, splits: number[], _axis: number, _space: number, incr: number): string[] {
  return splits.map((t) => {
    const d = new Date(t * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (incr >= 86400) return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    return incr < 60 ? `${hm}:${pad(d.getSeconds())}` : hm;
  });
}

/** The x (time) axis, themed, with [`timeTicks`] labels. */
export function timeAxis(extra: Partial<uPlot.Axis> = {}): uPlot.Axis {
  // Room for `14:05:30`: uPlot spaces ticks for its own, shorter labels.
  return themedAxis({ values: timeTicks, space: 64, ...extra });
}

/** Keep `u` redrawn on theme switches while it is on the page. */
export function track(u: uPlot): uPlot {
  charts.add(u);
  return u;
}

export function redrawCharts() {
  for (const u of charts) {
    if (!u.root.isConnected) {
      charts.delete(u);
      continue;
    }
    u.redraw(false, true);
  }
}
