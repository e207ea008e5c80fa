//! The protobuf messages of Prometheus's remote write 1.0 (`prometheus.WriteRequest`) and 2.0
//! (`io.prometheus.write.v2.Request`) and of remote read, declared by hand from the published
//! `.proto` field numbers (no build-time code generation).

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histograms, each a [`Histogram`] message: decoded by the receiver one at a
    /// time.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram, 5 summary, 6 info,
    /// 7 stateset.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `prometheus.ReadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadRequest {
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    /// 0 `SAMPLES`, 1 `STREAMED_XOR_CHUNKS`.
    #[prost(int32, repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
    #[prost(message, optional, tag = "4")]
    pub hints: Option<ReadHints>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelMatcher {
    /// 0 `=`, 1 `!=`, 2 `=~`, 3 `!~`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadHints {
    #[prost(int64, tag = "1")]
    pub step_ms: i64,
    #[prost(string, tag = "2")]
    pub func: String,
    #[prost(int64, tag = "3")]
    pub start_ms: i64,
    #[prost(int64, tag = "4")]
    pub end_ms: i64,
    #[prost(string, repeated, tag = "5")]
    pub grouping: Vec<String>,
    #[prost(bool, tag = "6")]
    pub by: bool,
    #[prost(int64, tag = "7")]
    pub range_ms: i64,
}

/// `prometheus.ReadResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryResult {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `io.prometheus.write.v2.Request` (remote write 2.0): strings once in `symbols` (the first
/// always empty), series referring to them by index. Fields 1 to 3 are reserved so that a
/// 1.0 decoder reads a 2.0 body as empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestV2 {
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeriesV2>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeriesV2 {
    /// Pairs of (name, value) indexes into `symbols`.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histograms, each a [`Histogram`] message (2.0's has 1.0's fields).
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub histograms: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<ExemplarV2>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<MetadataV2>,
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExemplarV2 {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataV2 {
    /// 0 unspecified, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram, 5 summary, 6 info,
    /// 7 stateset.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// One frame's message of a `STREAMED_XOR_CHUNKS` remote read response.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Which query of the request the series answers.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// 0 unknown, 1 XOR, 2 histogram, 3 float histogram.
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// `prometheus.Histogram`: a native histogram sample in remote write 1.0 and remote read.
/// Integer histograms carry counts as `*_int` and buckets as deltas from the previous bucket;
/// float histograms carry `*_float` and absolute bucket counts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub count_int: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub count_float: Option<f64>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(uint64, optional, tag = "6")]
    pub zero_count_int: Option<u64>,
    #[prost(double, optional, tag = "7")]
    pub zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// 0 unknown, 1 yes (a reset), 2 no, 3 gauge.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

impl Histogram {
    /// As PromQL computes with it: float counts, absolute buckets; None for a layout
    /// Prometheus does not define (unknown schema, a zero threshold that is not a finite
    /// non-negative number, spans that disagree with the buckets or leave the index range).
    pub fn to_float(&self) -> Option<vigil_model::FloatHistogram> {
        use vigil_model::histogram::{CounterResetHint, Span};
        let spans = |s: &[BucketSpan]| -> Vec<Span> {
            s.iter()
                .map(|x| Span {
                    offset: x.offset,
                    length: x.length,
                })
                .collect()
        };
        // Integer buckets are deltas from the bucket before.
        let absolute = vigil_model::histogram::absolute_from_deltas;
        let float = self.count_float.is_some();
        let h = vigil_model::FloatHistogram {
            hint: u8::try_from(self.reset_hint)
                .ok()
                .and_then(CounterResetHint::from_code)
                .unwrap_or_default(),
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self
                .zero_count_float
                .unwrap_or(self.zero_count_int.unwrap_or(0) as f64),
            count: self
                .count_float
                .unwrap_or(self.count_int.unwrap_or(0) as f64),
            sum: self.sum,
            positive_spans: spans(&self.positive_spans),
            positive_buckets: if float {
                self.positive_counts.clone()
            } else {
                absolute(&self.positive_deltas)
            },
            negative_spans: spans(&self.negative_spans),
            negative_buckets: if float {
                self.negative_counts.clone()
            } else {
                absolute(&self.negative_deltas)
            },
            custom_values: self.custom_values.clone(),
        };
        (vigil_model::histogram::valid_layout(&h)
            && vigil_model::histogram::check_counts(&h, !float).is_ok())
        .then_some(h)
    }

    /// The message a histogram sample at `t` is sent as: integer counts and bucket deltas
    /// when every count is a whole number a 64-bit integer holds exactly (what scraped
    /// histograms are, and what receivers that predate float histograms take), float counts
    /// otherwise. A stale marker keeps its NaN sum.
    pub fn from_float(h: &vigil_model::FloatHistogram, t: i64) -> Histogram {
        let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0;
        let integer = [h.count, h.zero_count]
            .iter()
            .chain(&h.positive_buckets)
            .chain(&h.negative_buckets)
            .all(|&v| whole(v));
        let spans = |s: &[vigil_model::histogram::Span]| {
            s.iter()
                .map(|x| BucketSpan {
                    offset: x.offset,
                    length: x.length,
                })
                .collect()
        };
        // Integer buckets go as deltas from the bucket before (the first from 0).
        let deltas = |b: &[f64]| {
            let mut prev = 0i64;
            b.iter()
                .map(|&v| {
                    let v = v as i64;
                    let d = v - prev;
                    prev = v;
                    d
                })
                .collect()
        };
        let mut m = Histogram {
            sum: h.sum,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            negative_spans: spans(&h.negative_spans),
            positive_spans: spans(&h.positive_spans),
            reset_hint: i32::from(h.hint.code()),
            timestamp: t,
            custom_values: h.custom_values.clone(),
            ..Default::default()
        };
        if integer {
            m.count_int = Some(h.count as u64);
            m.zero_count_int = Some(h.zero_count as u64);
            m.positive_deltas = deltas(&h.positive_buckets);
            m.negative_deltas = deltas(&h.negative_buckets);
        } else {
            m.count_float = Some(h.count);
            m.zero_count_float = Some(h.zero_count);
            m.positive_counts = h.positive_buckets.clone();
            m.negative_counts = h.negative_buckets.clone();
        }
        m
    }
}
