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
    grid: { stroke: () => cssColor('--line') } as any,
    ticks: { stroke: () => cssColor('--line') } as any,
    ...extra,
  };
}

/** Keep `u` redrawn on theme switches while it is on the page. */
export function track(u: uPlot): uPlot {
  charts.add(u);
  return u;
}

export function redrawCharts() {
  for (const u of charts) {
    if (!u.root.isConnected) { charts.delete(u); continue; }
    u.redraw(false, true);
  }
}
