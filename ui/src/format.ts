// Pure formatting helpers of the dashboard renderer (unit-tested in tests/unit.mjs): Grafana's
// units, interval rounding, duration text and variable interpolation.

export interface Vars {
  [name: string]: string[];
}

export function durationText(sec: number): string {
  const units: [string, number][] = [
    ['y', 31536000],
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  for (const [u, n] of units) if (sec >= n && sec % n === 0) return `${sec / n}${u}`;
  return sec >= 1 ? `${Math.round(sec)}s` : `${Math.round(sec * 1000)}ms`;
}

// Grafana's interval rounding table (kbn.roundInterval), in milliseconds.
export function roundInterval(ms: number): number {
  const t: [number, number][] = [
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1500, 1000],
    [3500, 2000],
    [7500, 5000],
    [12500, 10000],
    [17500, 15000],
    [25000, 20000],
    [45000, 30000],
    [90000, 60000],
    [210000, 120000],
    [450000, 300000],
    [750000, 600000],
    [1050000, 900000],
    [1500000, 1200000],
    [2700000, 1800000],
    [5400000, 3600000],
    [9000000, 7200000],
    [16200000, 10800000],
    [32400000, 21600000],
    [86400000, 43200000],
    [604800000, 86400000],
  ];
  for (const [lim, v] of t) if (ms <= lim) return v;
  return 604800000;
}

// ---- units ----

export function fmtNum(v: number, decimals?: number): string {
  if (!isFinite(v)) return String(v);
  const d = decimals ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 1 ? 2 : 3);
  const s = v.toFixed(d);
  // Without explicit decimals, trailing zeros of the fraction go (2.50 -> 2.5, 3.00 -> 3).
  return decimals !== undefined || !s.includes('.') ? s : s.replace(/0+$/, '').replace(/\.$/, '');
}

function scaled(v: number, base: number, units: string[], decimals?: number): string {
  let i = 0;
  while (Math.abs(v) >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${fmtNum(v, decimals)} ${units[i]}`.trim();
}

export function formatUnit(v: number | null, unit: string | undefined, decimals?: number): string {
  if (v === null || v === undefined || isNaN(v)) return 'N/A';
  switch (unit) {
    case 'bytes':
      return scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], decimals);
    case 'decbytes':
      return scaled(v, 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], decimals);
    case 'Bps':
      return scaled(v, 1000, ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s', 'PB/s'], decimals);
    case 'binBps':
      return scaled(v, 1024, ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s', 'PiB/s'], decimals);
    case 'bps':
      return scaled(v, 1000, ['b/s', 'kb/s', 'Mb/s', 'Gb/s', 'Tb/s', 'Pb/s'], decimals);
    case 'binbps':
      return scaled(v, 1024, ['b/s', 'Kib/s', 'Mib/s', 'Gib/s', 'Tib/s', 'Pib/s'], decimals);
    case 'percent':
      return `${fmtNum(v, decimals)}%`;
    case 'percentunit':
      return `${fmtNum(v * 100, decimals)}%`;
    case 'reqps':
      return `${scaled(v, 1000, ['', 'K', 'M', 'G'], decimals)} req/s`.replace('  ', ' ');
    case 'ops':
      return `${scaled(v, 1000, ['', 'K', 'M', 'G'], decimals)} ops/s`.replace('  ', ' ');
    case 'ms':
      return v >= 1000 ? formatUnit(v / 1000, 's', decimals) : `${fmtNum(v, decimals)} ms`;
    case 's':
    case 'dtdurations':
    case 'dtdurationms': {
      const s = unit === 'dtdurationms' ? v / 1000 : v;
      if (unit !== 's' && s >= 60) {
        const d = Math.floor(s / 86400),
          h = Math.floor((s % 86400) / 3600),
          m = Math.floor((s % 3600) / 60),
          r = Math.floor(s % 60);
        return [d && `${d} day`, h && `${h} hour`, m && `${m} min`, r && `${r} sec`]
          .filter(Boolean)
          .slice(0, 2)
          .join(', ');
      }
      if (Math.abs(s) < 1 && s !== 0) return `${fmtNum(s * 1000, decimals)} ms`;
      if (Math.abs(s) < 60) return `${fmtNum(s, decimals)} s`;
      if (Math.abs(s) < 3600) return `${fmtNum(s / 60, decimals)} min`;
      if (Math.abs(s) < 86400) return `${fmtNum(s / 3600, decimals)} hour`;
      return `${fmtNum(s / 86400, decimals)} day`;
    }
    case 'none':
      return fmtNum(v, decimals);
    default:
      return scaled(v, 1000, ['', 'K', 'Mil', 'Bil', 'Tri'], decimals);
  }
}

export function interpolate(expr: string, vars: Vars, builtins: Record<string, string>): string {
  const val = (name: string) => {
    if (name in builtins) return builtins[name];
    const v = vars[name];
    if (!v) return undefined;
    return v.length === 1 ? v[0] : `(${v.join('|')})`;
  };
  return expr
    .replace(/\$\{(\w+)(?::\w+)?\}/g, (m, n) => val(n) ?? m)
    .replace(/\[\[(\w+)\]\]/g, (m, n) => val(n) ?? m)
    .replace(/\$(\w+)/g, (m, n) => val(n) ?? m);
}

/** A Prometheus duration (`1h30m`, `90s`, `500ms`) in seconds; NaN when it is not one. */
export function parseDuration(s: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)/g;
  let m: RegExpExecArray | null;
  let matched = '';
  while ((m = re.exec(s))) {
    matched += m[0];
    const n = parseFloat(m[1]);
    total +=
      n * ({ ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 } as Record<string, number>)[m[2]];
  }
  return matched === s.trim() && total > 0 ? total : NaN;
}

/** Relative links, and absolute ones only over http(s). The URL parser decides, as the browser
 *  would: it strips the tabs and newlines that could hide a scheme from a regular expression. */
export function safeHref(h: string): boolean {
  try {
    return /^https?:$/.test(new URL(h, 'http://base.invalid/').protocol);
  } catch {
    return false;
  }
}

const LEGACY_METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label name as PromQL writes it: quoted when outside the classic character set. */
export function labelNameText(n: string): string {
  return LEGACY_LABEL.test(n) ? n : JSON.stringify(n);
}

/** A metric name as a PromQL selector: `{"my.metric"}` when outside the classic set. */
export function metricSelectorText(n: string): string {
  return LEGACY_METRIC.test(n) ? n : `{${JSON.stringify(n)}}`;
}

/**
 * A series as PromQL writes it: `name{a="x", ...}`, or, for a metric name outside the classic
 * set, `{"my.metric", a="x"}` (Prometheus 3's UTF-8 names); label names outside it quoted.
 */
export function metricText(m: Record<string, string>): string {
  const name = m.__name__ || '';
  const rest = Object.entries(m)
    .filter(([k]) => k !== '__name__')
    .sort()
    .map(([k, v]) => `${labelNameText(k)}="${v}"`);
  if (name && !LEGACY_METRIC.test(name)) return `{${[JSON.stringify(name), ...rest].join(', ')}}`;
  return rest.length ? `${name}{${rest.join(', ')}}` : name || '{}';
}
