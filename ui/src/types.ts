// The shapes of the Prometheus HTTP API answers the pages read (`data` of each response), as
// vigil serves them. Fields a page does not read are left out.

export type Labels = Record<string, string>;

/** `[unix seconds, "value"]`, as the API writes a sample. */
export type SamplePair = [number, string];

/** A native histogram as the API writes it: counts as strings, and each bucket as
 *  `[boundary rule, lower, upper, count]` (rule 0: `(lower, upper]`, 1: `[lower, upper)`,
 *  2: `(lower, upper)`, 3: `[lower, upper]`); no `buckets` when all are empty. */
export interface NativeHistogram {
  count: string;
  sum: string;
  buckets?: [number, string, string, string][];
}

/** `[unix seconds, histogram]`, as the API writes a histogram sample. */
export type HistogramPair = [number, NativeHistogram];

/** A vector's sample: a float `value` or a native `histogram`. */
export interface InstantSample {
  metric: Labels;
  value?: SamplePair;
  histogram?: HistogramPair;
}

/** A matrix's series: float `values`, native `histograms`, or both (a series may switch). */
export interface RangeSeries {
  metric: Labels;
  values?: SamplePair[];
  histograms?: HistogramPair[];
}

export type QueryData =
  | { resultType: 'vector'; result: InstantSample[] }
  | { resultType: 'matrix'; result: RangeSeries[] }
  | { resultType: 'scalar'; result: SamplePair }
  | { resultType: 'string'; result: SamplePair };

export interface Alert {
  labels: Labels;
  annotations?: Labels;
  state: string;
  activeAt: string;
  value: string;
}

export interface Rule {
  type: 'alerting' | 'recording';
  name: string;
  query: string;
  health: string;
  lastError?: string;
  lastEvaluation: string;
  evaluationTime: number;
  labels?: Labels;
  /** Alerting rules only. */
  state?: string;
  duration?: number;
  keepFiringFor?: number;
  annotations?: Labels;
  alerts?: Alert[];
}

export interface RuleGroup {
  name: string;
  file: string;
  interval: number;
  lastEvaluation: string;
  evaluationTime: number;
  rules: Rule[];
}

export interface RulesData {
  groups?: RuleGroup[];
}

export interface ActiveTarget {
  discoveredLabels: Labels;
  labels: Labels;
  scrapePool: string;
  scrapeUrl: string;
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  health: string;
}

export interface DroppedTarget {
  discoveredLabels: Labels;
  scrapePool?: string;
}

export interface TargetsData {
  activeTargets: ActiveTarget[];
  droppedTargets?: DroppedTarget[];
}

/** One relabel rule as `/api/v1/targets/relabel_steps` shows it. */
export interface RelabelRule {
  action: string;
  source_labels?: string[];
  regex?: string;
  target_label?: string;
  replacement?: string;
}

/** vigil's remote-write queue status (`/api/v1/status/remote_write`). */
export interface RemoteWriteQueue {
  name: string;
  url: string;
  samplesSent: number;
  samplesPending: number;
  samplesFailed: number;
  shards: number;
  highestSentTimestampMs: number;
  lastError?: string;
}

export interface TsdbStatus {
  headStats?: Record<string, number>;
  seriesCountByMetricName: { name: string; value: number }[];
  labelValueCountByLabelName: { name: string; value: number }[];
  memoryInBytesByLabelName: { name: string; value: number }[];
  seriesCountByLabelValuePair: { name: string; value: number }[];
}
