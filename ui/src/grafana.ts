// The parts of Grafana's dashboard JSON that vigil's renderer reads. Dashboards in the wild carry
// every vintage of Grafana's model (rows of spans, `yaxes`, `fieldConfig`), so every field is
// optional and typed as those files write it; the renderer decides what each missing one means.

export interface ThresholdStep {
  /** `null` on the base step. */
  value?: number | null;
  color: string;
}

export interface FieldDefaults {
  unit?: string;
  decimals?: number;
  min?: number;
  max?: number;
  thresholds?: { steps?: ThresholdStep[] };
  custom?: { stacking?: { mode?: string } };
}

export interface Target {
  expr?: string;
  hide?: boolean;
  legendFormat?: string;
}

/** An old graph panel's axis; the bounds may be strings. */
export interface YAxis {
  format?: string;
  min?: number | string | null;
  max?: number | string | null;
}

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Panel {
  type: string;
  title?: string;
  gridPos: GridPos;
  /** Rows: whether collapsed, and the panels they hold then. */
  collapsed?: boolean;
  panels?: Panel[];
  targets?: Target[];
  fieldConfig?: { defaults?: FieldDefaults };
  options?: { content?: string };
  maxDataPoints?: number;
  // Older panel models.
  yaxes?: YAxis[];
  format?: string;
  decimals?: number;
  /** singlestat: `"50,80"`, with one more colour than thresholds. */
  thresholds?: string;
  colors?: string[];
  content?: string;
  stack?: boolean;
  fill?: number;
  legend?: { show?: boolean };
  /** Old row layouts: width in twelfths. */
  span?: number;
}

/** An old dashboard's row (before `panels` with `gridPos`). */
export interface Row {
  title?: string;
  showTitle?: boolean;
  height?: string | number;
  collapse?: boolean;
  panels?: Omit<Panel, 'gridPos'>[];
}

export interface Variable {
  name: string;
  type: string;
  label?: string;
  query?: string | { query?: string };
  regex?: string;
  current?: { value?: string | string[] };
  allValue?: string;
  includeAll?: boolean;
  multi?: boolean;
  /** 2: hidden. */
  hide?: number;
}

export interface Dashboard {
  title: string;
  time?: { from?: string; to?: string };
  refresh?: string;
  panels?: Panel[];
  rows?: Row[];
  templating?: { list?: Variable[] };
}

/** One row of `/api/v1/dashboards`. */
export interface DashboardEntry {
  uid: string;
  slug?: string;
  title: string;
  tags?: string[];
  source: string;
}

export interface DashboardList {
  dashboards: DashboardEntry[];
  errors?: string[];
}
