//! The OTLP metrics receiver (`POST /api/v1/otlp/v1/metrics`, `--web.enable-otlp-receiver`):
//! an `ExportMetricsServiceRequest` translated as current Prometheus translates it (its
//! `otlptranslator`: metric and label names, resource attributes to `job`, `instance` and
//! `target_info`, each metric type to series) into the remote write 1.0 shape, which
//! [`crate::receive::append`] stores in one transaction.
//!
//! As in Prometheus the request is all or nothing: a metric that cannot be translated fails
//! the whole request (500), a sample the storage refuses (out of order, too old) too (400).

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use vigil_model::exposition::MetricType;
use vigil_model::{FloatHistogram, STALE_NAN};
use vigil_storage::Metadata;

use crate::otlp_proto::{
    self as p, ExportMetricsServiceRequest, KeyValue, any_value, metric, number_data_point,
};
use crate::proto::{Exemplar, Histogram, Label, Sample, TimeSeries, WriteRequest};
use crate::receive::ReceiveError;

/// `otlp.translation_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    UnderscoreEscapingWithSuffixes,
    UnderscoreEscapingWithoutSuffixes,
    NoUtf8EscapingWithSuffixes,
    NoTranslation,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "" | "UnderscoreEscapingWithSuffixes" => Strategy::UnderscoreEscapingWithSuffixes,
            "UnderscoreEscapingWithoutSuffixes" => Strategy::UnderscoreEscapingWithoutSuffixes,
            "NoUTF8EscapingWithSuffixes" => Strategy::NoUtf8EscapingWithSuffixes,
            "NoTranslation" => Strategy::NoTranslation,
            _ => return None,
        })
    }

    fn escapes(self) -> bool {
        matches!(
            self,
            Strategy::UnderscoreEscapingWithSuffixes | Strategy::UnderscoreEscapingWithoutSuffixes
        )
    }
}

/// The `otlp:` section of the configuration, and what else the translation reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub strategy: Strategy,
    pub promote_resource_attributes: Vec<String>,
    pub promote_all_resource_attributes: bool,
    pub ignore_resource_attributes: Vec<String>,
    pub keep_identifying_resource_attributes: bool,
    pub convert_histograms_to_nhcb: bool,
    pub promote_scope_metadata: bool,
    pub label_name_underscore_sanitization: bool,
    pub label_name_preserve_multiple_underscores: bool,
    /// `--query.lookback-delta`: `target_info` is written every half of it across the
    /// request's time span, so it is seen at every step in between.
    pub lookback_ms: i64,
    /// `type-and-unit-labels`: series carry `__type__` and `__unit__`.
    pub type_and_unit_labels: bool,
    /// `created-timestamp-zero-ingestion`: counters, histograms and summaries get a 0 at their
    /// points' start time.
    pub start_zeros: bool,
    /// `otlp-native-delta-ingestion`: delta sums and histograms are stored as they come (each
    /// point's change over its interval), not refused.
    pub native_delta: bool,
    /// `metadata-wal-records`: each series gets its metric's type, unit and help
    /// ([`Translated::metadata`]), as Prometheus's OTLP appender gives them.
    pub metadata: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            strategy: Strategy::default(),
            promote_resource_attributes: Vec::new(),
            promote_all_resource_attributes: false,
            ignore_resource_attributes: Vec::new(),
            keep_identifying_resource_attributes: false,
            convert_histograms_to_nhcb: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
            lookback_ms: 5 * 60 * 1000,
            type_and_unit_labels: false,
            start_zeros: false,
            native_delta: false,
            metadata: false,
        }
    }
}

/// Read a request body: protobuf or JSON, plain or gzip, as Prometheus takes it (400 for a
/// body that cannot be read, naming why, and as current Prometheus for another content type
/// or encoding). `max_body`: the most a gzip body may expand to.
pub fn decode(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    max_body: usize,
) -> Result<ExportMetricsServiceRequest, ReceiveError> {
    let json = match content_type.map(str::trim).unwrap_or("") {
        "application/x-protobuf" => false,
        "application/json" => true,
        other => {
            return Err(ReceiveError::BadRequest(format!(
                "unsupported content type: {other}, supported: [application/json, application/x-protobuf]"
            )));
        }
    };
    let plain;
    let body = match content_encoding.map(str::trim).unwrap_or("") {
        "" => body,
        "gzip" => {
            use std::io::Read;
            let mut out = Vec::new();
            // Bounded: a small gzip body can expand without limit.
            flate2::read::MultiGzDecoder::new(body)
                .take(max_body as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ReceiveError::BadRequest(format!("gzip: {e}")))?;
            if out.len() > max_body {
                return Err(ReceiveError::BadRequest(format!(
                    "gzip: the body expands to more than {max_body} bytes"
                )));
            }
            plain = out;
            &plain[..]
        }
        other => {
            return Err(ReceiveError::BadRequest(format!(
                "unsupported compression: {other}. Only \"gzip\" or no compression supported"
            )));
        }
    };
    if json {
        return crate::otlp_json::decode(body)
            .map_err(|e| ReceiveError::BadRequest(format!("decoding the OTLP request: {e}")));
    }
    ExportMetricsServiceRequest::decode(body)
        .map_err(|e| ReceiveError::BadRequest(format!("decoding the OTLP request: {e}")))
}

/// A request translated: the series to store, and what was only warned about.
#[derive(Debug, Default)]
pub struct Translated {
    pub write: WriteRequest,
    /// With [`Settings::start_zeros`]: each series' start time, where its points gave one
    /// (for [`crate::receive::append_with_starts`]).
    pub starts: Vec<Option<i64>>,
    /// With [`Settings::metadata`]: each series' metadata, by its place in `write` (for
    /// [`crate::receive::append_with_starts`]); empty otherwise.
    pub metadata: crate::receive::SeriesMetadata,
    pub warnings: Vec<String>,
}

/// Translate `req` as Prometheus does. Any metric that cannot be translated makes the whole
/// request an error (every such metric named), as Prometheus answers it (500).
pub fn translate(
    req: &ExportMetricsServiceRequest,
    s: &Settings,
) -> Result<Translated, ReceiveError> {
    let mut out = Out::default();
    let mut errors = Vec::new();
    let mut expanded = 0u64;
    for rm in &req.resource_metrics {
        let resource: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes[..]);
        let res = ResourceLabels::new(resource, s, &mut errors);
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for sm in &rm.scope_metrics {
            let scope = ScopeLabels::new(sm, s, &mut errors);
            // Refused before its series are made when they would hold too much.
            expanded = expanded.saturating_add(expanded_label_bytes(&res, &scope, sm, s));
            if expanded > MAX_EXPANDED_LABEL_BYTES {
                return Err(ReceiveError::BadRequest(format!(
                    "the request's series would hold over {} MiB of labels: its resource and scope attributes are copied into every series of their data points (a {} KiB resource over many points); send fewer points per request or smaller attributes",
                    MAX_EXPANDED_LABEL_BYTES >> 20,
                    res.cost().div_ceil(1024),
                )));
            }
            for m in &sm.metrics {
                if s.metadata {
                    out.meta = Some(Arc::new(metric_metadata(m)));
                }
                let mut ctx = MetricCtx {
                    s,
                    res: &res,
                    scope: &scope,
                    out: &mut out,
                    first: &mut first,
                    last: &mut last,
                    delta: false,
                };
                if let Err(e) = ctx.metric(m) {
                    errors.push(e);
                }
            }
        }
        if first <= last {
            if s.metadata {
                // Prometheus's own, for every `target_info`.
                out.meta = Some(Arc::new(Metadata {
                    kind: MetricType::Gauge,
                    unit: String::new(),
                    help: "Target metadata".to_string(),
                }));
            }
            res.target_info(s, first, last, &mut out);
        }
    }
    if !errors.is_empty() {
        // The first few, and how many: a request of a million bad metrics answers briefly.
        let more = errors.len().saturating_sub(MAX_ERRORS_SHOWN);
        errors.truncate(MAX_ERRORS_SHOWN);
        let mut msg = errors.join("; ");
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        return Err(ReceiveError::Storage(msg));
    }
    out.finish();
    let starts = out
        .series
        .keys()
        .map(|l| out.starts.get(l).copied())
        .collect();
    let metadata = if s.metadata {
        out.series
            .keys()
            .map(|l| out.metadata.get(l).cloned())
            .collect()
    } else {
        Vec::new()
    };
    Ok(Translated {
        write: WriteRequest {
            timeseries: out.series.into_values().collect(),
            ..Default::default()
        },
        starts,
        metadata,
        warnings: out.warnings,
    })
}

/// The series being built, by label set (a series written twice in one request, such as
/// `target_info` of two resources with the same identity, gets both samples).
/// A series' labels, name and value, in name order.
type Pairs = Vec<(String, String)>;

#[derive(Default)]
struct Out {
    series: BTreeMap<Pairs, TimeSeries>,
    /// Native histogram samples by series (time, encoded), moved into their series when done.
    histograms: BTreeMap<Pairs, Vec<(i64, Vec<u8>)>>,
    warnings: Vec<String>,
    target_info_samples: usize,
    /// The earliest start time (ms) given for a series.
    starts: BTreeMap<Pairs, i64>,
    /// With [`Settings::metadata`]: the metadata of the metric being translated, and each
    /// series' (the last metric to write a series gives it, as Prometheus updates it).
    meta: Option<Arc<Metadata>>,
    metadata: BTreeMap<Pairs, Arc<Metadata>>,
}

impl Out {
    fn series(&mut self, labels: Vec<(String, String)>) -> &mut TimeSeries {
        if let Some(m) = &self.meta {
            // Only when new or changed: a series of many points is written many times.
            let same = self
                .metadata
                .get(&labels)
                .is_some_and(|x| Arc::ptr_eq(x, m));
            if !same {
                self.metadata.insert(labels.clone(), m.clone());
            }
        }
        self.series
            .entry(labels)
            .or_insert_with_key(|l| TimeSeries {
                labels: l
                    .iter()
                    .map(|(name, value)| Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                ..Default::default()
            })
    }

    /// Note a series' start time (ms; 0: none given).
    fn start(&mut self, labels: &Pairs, start: i64) {
        if start > 0 {
            let s = self.starts.entry(labels.clone()).or_insert(start);
            *s = (*s).min(start);
        }
    }

    fn sample(&mut self, labels: Vec<(String, String)>, t: i64, v: f64) {
        self.series(labels).samples.push(Sample {
            value: v,
            timestamp: t,
        });
    }

    /// Each series' samples in time order, one per time (the last given): a series two
    /// resources or batches both wrote is stored, not refused as out of order.
    fn finish(&mut self) {
        // Every series was given its metric's metadata when written; the histograms moved
        // into their series here must not take the last metric's.
        self.meta = None;
        for (labels, mut hs) in std::mem::take(&mut self.histograms) {
            hs.sort_by_key(|(t, _)| *t);
            let mut kept: Vec<(i64, Vec<u8>)> = Vec::with_capacity(hs.len());
            for x in hs {
                match kept.last_mut() {
                    Some(l) if l.0 == x.0 => *l = x,
                    _ => kept.push(x),
                }
            }
            self.series(labels)
                .histograms
                .extend(kept.into_iter().map(|(_, h)| h));
        }
        for s in self.series.values_mut() {
            s.exemplars.sort_by_key(|x| x.timestamp);
            s.samples.sort_by_key(|x| x.timestamp);
            let mut kept: Vec<Sample> = Vec::with_capacity(s.samples.len());
            for x in s.samples.drain(..) {
                match kept.last_mut() {
                    Some(l) if l.timestamp == x.timestamp => *l = x,
                    _ => kept.push(x),
                }
            }
            s.samples = kept;
        }
    }
}

/// A point flagged "no recorded value": its series go stale.
fn stale(flags: u32) -> bool {
    flags & p::FLAG_NO_RECORDED_VALUE != 0
}

/// Nanoseconds to milliseconds, as Prometheus truncates them.
fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

/// A label set under construction: later sets of a name replace earlier ones, an empty value
/// removes the label (as Prometheus's `labels.Builder`).
#[derive(Clone, Default)]
struct LabelSet(BTreeMap<String, String>);

impl LabelSet {
    fn set(&mut self, k: &str, v: &str) {
        if v.is_empty() {
            self.0.remove(k);
        } else {
            self.0.insert(k.to_string(), v.to_string());
        }
    }

    fn with(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut l = self.clone();
        for (k, v) in extra {
            l.set(k, v);
        }
        l.0.into_iter().collect()
    }
}

/// Attributes as labels: sorted by their original key, each name as the strategy makes it;
/// two keys that make one name join their values with `;`.
fn attribute_labels(
    attrs: &[KeyValue],
    s: &Settings,
    keep: impl Fn(&str) -> bool,
    into: &mut LabelSet,
    only_new: bool,
) -> Result<(), String> {
    let mut sorted: Vec<&KeyValue> = attrs.iter().filter(|kv| keep(&kv.key)).collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let name = label_name(&kv.key, s)?;
        let value = any_string(kv.value.as_ref());
        match seen.get_mut(&name) {
            Some(v) => {
                v.push(';');
                v.push_str(&value);
            }
            None => {
                seen.insert(name, value);
            }
        }
    }
    for (k, v) in seen {
        if only_new && into.0.contains_key(&k) {
            continue;
        }
        into.set(&k, &v);
    }
    Ok(())
}

/// Most `target_info` samples one resource of one request writes.
const TARGET_INFO_MAX: i64 = 1000;

/// Most `target_info` samples one request writes, over all its resources.
const TARGET_INFO_REQUEST_MAX: usize = 100_000;

/// Translation errors named in an answer.
const MAX_ERRORS_SHOWN: usize = 10;

/// Most bytes the series of one request may hold in labels (by [`expanded_label_bytes`]),
/// past which it is refused before translation. A resource's attributes are written once
/// in the body but copied into every series of its data points (and a classic histogram's
/// point makes a series per bucket), so a body of 16 MiB could otherwise take terabytes.
/// Ordinary requests are far below it: 8,192 points of a resource with ten promoted
/// attributes come to a few MiB.
const MAX_EXPANDED_LABEL_BYTES: u64 = 512 << 20;

/// What one label costs beyond its text: the two strings of its name and value.
const LABEL_OVERHEAD: u64 = 48;

fn label_set_cost(l: &LabelSet) -> u64 {
    l.0.iter()
        .map(|(k, v)| (k.len() + v.len()) as u64 + LABEL_OVERHEAD)
        .sum()
}

/// A data point's attributes as labels: each value's text as the series will hold it, the
/// name with room for its escaping (a prefix, a doubled underscore).
fn attributes_cost(attrs: &[KeyValue]) -> u64 {
    attrs
        .iter()
        .map(|kv| (kv.key.len() + 8 + any_string(kv.value.as_ref()).len()) as u64 + LABEL_OVERHEAD)
        .sum()
}

/// About the bytes the labels of every series `sm`'s data points make would hold: per
/// series, the resource's and scope's labels, the point's attributes, the stored name (unit
/// words and suffixes added), `__type__` and `__unit__` under `type-and-unit-labels`, and
/// `le` or `quantile`; a classic histogram's point makes one series per bucket and two more,
/// a summary's one per quantile and two more.
fn expanded_label_bytes(
    res: &ResourceLabels,
    scope: &ScopeLabels,
    sm: &p::ScopeMetrics,
    s: &Settings,
) -> u64 {
    let base = res.cost() + label_set_cost(&scope.labels);
    let mut total = 0u64;
    for m in &sm.metrics {
        let kind = match &m.data {
            None => continue,
            Some(metric::Data::Gauge(_)) => Kind::Gauge,
            Some(metric::Data::Sum(x)) if x.is_monotonic => Kind::Counter,
            Some(metric::Data::Sum(_)) => Kind::UpDown,
            Some(metric::Data::Histogram(_) | metric::Data::ExponentialHistogram(_)) => {
                Kind::Histogram
            }
            Some(metric::Data::Summary(_)) => Kind::Summary,
        };
        // A name that cannot be made fails the request anyway; counted at its most then.
        let name =
            metric_name(m, kind, s).map_or(m.name.len() + 2 * m.unit.len() + 16, |n| n.len());
        let mut per_metric = base + (name + 16) as u64 + LABEL_OVERHEAD;
        if s.type_and_unit_labels {
            per_metric += (24 + 2 * m.unit.len()) as u64 + 2 * LABEL_OVERHEAD;
        }
        // `le` or `quantile` and its value.
        let bound = 40 + LABEL_OVERHEAD;
        let mut add = |series: usize, attrs: &[KeyValue], bounded: bool| {
            let per = per_metric + attributes_cost(attrs) + if bounded { bound } else { 0 };
            total = total.saturating_add(per.saturating_mul(series as u64));
        };
        match &m.data {
            None => {}
            Some(metric::Data::Gauge(g)) => g
                .data_points
                .iter()
                .for_each(|p| add(1, &p.attributes, false)),
            Some(metric::Data::Sum(x)) => x
                .data_points
                .iter()
                .for_each(|p| add(1, &p.attributes, false)),
            Some(metric::Data::ExponentialHistogram(x)) => x
                .data_points
                .iter()
                .for_each(|p| add(1, &p.attributes, false)),
            Some(metric::Data::Histogram(x)) => x.data_points.iter().for_each(|p| {
                if s.convert_histograms_to_nhcb {
                    add(1, &p.attributes, false)
                } else {
                    add(p.bucket_counts.len().max(1) + 2, &p.attributes, true)
                }
            }),
            Some(metric::Data::Summary(x)) => x
                .data_points
                .iter()
                .for_each(|p| add(p.quantile_values.len() + 2, &p.attributes, true)),
        }
    }
    total
}

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// What a resource gives every series of it: promoted attributes, `job` and `instance`.
struct ResourceLabels<'a> {
    attrs: &'a [KeyValue],
    promoted: LabelSet,
    job: Option<String>,
    instance: Option<String>,
}

impl<'a> ResourceLabels<'a> {
    fn new(attrs: &'a [KeyValue], s: &Settings, errors: &mut Vec<String>) -> Self {
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| any_string(kv.value.as_ref()))
        };
        let job = get(SERVICE_NAME).map(|name| match get(SERVICE_NAMESPACE) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        let instance = get(SERVICE_INSTANCE_ID);
        let mut promoted = LabelSet::default();
        let promote = |k: &str| {
            if s.promote_all_resource_attributes {
                !s.ignore_resource_attributes.iter().any(|x| x == k)
            } else {
                s.promote_resource_attributes.iter().any(|x| x == k)
            }
        };
        if let Err(e) = attribute_labels(attrs, s, promote, &mut promoted, false) {
            errors.push(e);
        }
        ResourceLabels {
            attrs,
            promoted,
            job,
            instance,
        }
    }

    /// `target_info` for a resource with series from `first` to `last` (ms): its attributes
    /// (the identifying three only when kept) with `job` and `instance`, 1 every half
    /// lookback delta and at `last`. None when the resource has no other attribute or no
    /// identity.
    fn target_info(&self, s: &Settings, first: i64, last: i64, out: &mut Out) {
        let identifying = [SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID];
        if !self
            .attrs
            .iter()
            .any(|kv| !identifying.contains(&kv.key.as_str()))
        {
            return;
        }
        if self.job.is_none() && self.instance.is_none() {
            return;
        }
        let mut l = LabelSet::default();
        let keep = |k: &str| s.keep_identifying_resource_attributes || !identifying.contains(&k);
        if let Err(e) = attribute_labels(self.attrs, s, keep, &mut l, false) {
            out.warnings.push(format!("target_info: {e}"));
            return;
        }
        self.identity(&mut l);
        let labels = l.with(&[("__name__", "target_info")]);
        if out.target_info_samples >= TARGET_INFO_REQUEST_MAX {
            return;
        }
        let every = (s.lookback_ms / 2).max(1);
        // Bounded, whatever the points' times: the latest TARGET_INFO_MAX of the span (a
        // request with one point at 1970 and one now would otherwise make millions).
        let mut t = first.max(last.saturating_sub(every.saturating_mul(TARGET_INFO_MAX)));
        let series = out.series(labels);
        let mut n = 0;
        while t < last {
            series.samples.push(Sample {
                value: 1.0,
                timestamp: t,
            });
            n += 1;
            t = t.saturating_add(every);
        }
        series.samples.push(Sample {
            value: 1.0,
            timestamp: last,
        });
        out.target_info_samples += n + 1;
    }

    /// The bytes the labels this resource gives each of its series hold.
    fn cost(&self) -> u64 {
        let one = |v: &Option<String>, name: &str| {
            v.as_ref()
                .map_or(0, |v| (name.len() + v.len()) as u64 + LABEL_OVERHEAD)
        };
        label_set_cost(&self.promoted) + one(&self.job, "job") + one(&self.instance, "instance")
    }

    fn identity(&self, l: &mut LabelSet) {
        if let Some(j) = &self.job {
            l.set("job", j);
        }
        if let Some(i) = &self.instance {
            l.set("instance", i);
        }
    }
}

/// The scope's labels, with `promote_scope_metadata`.
struct ScopeLabels {
    labels: LabelSet,
}

impl ScopeLabels {
    fn new(sm: &p::ScopeMetrics, s: &Settings, errors: &mut Vec<String>) -> Self {
        let mut labels = LabelSet::default();
        if let Some(scope) = &sm.scope
            && s.promote_scope_metadata
            && !scope.name.is_empty()
        {
            // Each named as a whole (`otel_scope_` and the key), the last of a name kept.
            for kv in &scope.attributes {
                match label_name(&format!("otel_scope_{}", kv.key), s) {
                    Ok(name) => labels.set(&name, &any_string(kv.value.as_ref())),
                    Err(e) => errors.push(e),
                }
            }
            labels.set("otel_scope_name", &scope.name);
            labels.set("otel_scope_version", &scope.version);
            labels.set("otel_scope_schema_url", &sm.schema_url);
        }
        ScopeLabels { labels }
    }
}

/// Translating one metric.
struct MetricCtx<'a, 'b> {
    s: &'a Settings,
    res: &'a ResourceLabels<'b>,
    scope: &'a ScopeLabels,
    out: &'a mut Out,
    first: &'a mut i64,
    last: &'a mut i64,
    /// The metric is of delta temporality (taken with `native_delta`): its type is unknown
    /// (no `__type__`), and its native histograms are gauge histograms.
    delta: bool,
}

/// What a metric is stored as, for its name's suffixes and the type label.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Gauge,
    Counter,
    /// A non-monotonic sum: stored as a gauge, named as neither (no `_total`, no `_ratio`).
    UpDown,
    Histogram,
    Summary,
}

impl MetricCtx<'_, '_> {
    fn metric(&mut self, m: &p::Metric) -> Result<(), String> {
        let name = &m.name;
        let native_delta = self.s.native_delta;
        // Whether the metric is of delta temporality; refused unless taken natively.
        let cumulative = |t: i32| match t {
            p::TEMPORALITY_CUMULATIVE => Ok(false),
            p::TEMPORALITY_DELTA if native_delta => Ok(true),
            _ => Err(format!(
                "invalid temporality and type combination for metric {name:?}"
            )),
        };
        let empty = || format!("empty data points. {name} is dropped");
        match &m.data {
            None => Err(format!(
                "could not get aggregation temporality for {name} as it has unsupported metric type Empty"
            )),
            Some(metric::Data::Gauge(g)) => {
                if g.data_points.is_empty() {
                    return Err(empty());
                }
                let n = metric_name(m, Kind::Gauge, self.s)?;
                for dp in &g.data_points {
                    self.number(m, &n, Kind::Gauge, dp, false)?;
                }
                Ok(())
            }
            Some(metric::Data::Sum(sum)) => {
                self.delta = cumulative(sum.aggregation_temporality)?;
                if sum.data_points.is_empty() {
                    return Err(empty());
                }
                let kind = if sum.is_monotonic {
                    Kind::Counter
                } else {
                    Kind::UpDown
                };
                let n = metric_name(m, kind, self.s)?;
                for dp in &sum.data_points {
                    self.number(m, &n, kind, dp, true)?;
                }
                Ok(())
            }
            Some(metric::Data::Histogram(h)) => {
                self.delta = cumulative(h.aggregation_temporality)?;
                if h.data_points.is_empty() {
                    return Err(empty());
                }
                let n = metric_name(m, Kind::Histogram, self.s)?;
                for dp in &h.data_points {
                    if self.s.convert_histograms_to_nhcb {
                        self.nhcb(m, &n, dp)?;
                    } else {
                        self.classic(m, &n, dp)?;
                    }
                }
                Ok(())
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                self.delta = cumulative(h.aggregation_temporality)?;
                if h.data_points.is_empty() {
                    return Err(empty());
                }
                let n = metric_name(m, Kind::Histogram, self.s)?;
                for dp in &h.data_points {
                    self.exponential(m, &n, dp)?;
                }
                Ok(())
            }
            Some(metric::Data::Summary(sm)) => {
                if sm.data_points.is_empty() {
                    return Err(empty());
                }
                let n = metric_name(m, Kind::Summary, self.s)?;
                for dp in &sm.data_points {
                    self.summary(m, &n, dp)?;
                }
                Ok(())
            }
        }
    }

    /// The labels of a data point's series (before `__name__`, `le` and `quantile`).
    fn labels(
        &mut self,
        m: &p::Metric,
        kind: Kind,
        attrs: &[KeyValue],
        t: i64,
    ) -> Result<LabelSet, String> {
        *self.first = (*self.first).min(t);
        *self.last = (*self.last).max(t);
        let mut l = LabelSet::default();
        attribute_labels(attrs, self.s, |_| true, &mut l, false)?;
        for (k, v) in &self.res.promoted.0 {
            if !l.0.contains_key(k) {
                l.set(k, v);
            }
        }
        self.res.identity(&mut l);
        for (k, v) in &self.scope.labels.0 {
            l.set(k, v);
        }
        if self.s.type_and_unit_labels {
            let kind = match kind {
                Kind::Gauge | Kind::UpDown => "gauge",
                Kind::Counter => "counter",
                Kind::Histogram => "histogram",
                Kind::Summary => "summary",
            };
            // A delta's type is unknown to Prometheus's model, and an unknown type is no label.
            if !self.delta {
                l.set("__type__", kind);
            }
            l.set("__unit__", &unit_words(&m.unit));
        }
        Ok(l)
    }

    /// With `start_zeros`, a series' start time from a point that has one (not a stale one).
    fn start(&mut self, labels: &Pairs, start_ns: u64, flags: u32) {
        if self.s.start_zeros && !stale(flags) {
            self.out.start(labels, ms(start_ns));
        }
    }

    /// A classic histogram's or a summary's `_sum` (when given) and `_count`, which start at
    /// the point's start time; stale with the point.
    fn sum_and_count(
        &mut self,
        l: &LabelSet,
        name: &str,
        t: i64,
        sum: Option<f64>,
        count: u64,
        (start_ns, flags): (u64, u32),
    ) {
        let val = |v: f64| if stale(flags) { STALE_NAN } else { v };
        let sum = sum.map(|s| ("_sum", s));
        for (suffix, v) in sum.into_iter().chain([("_count", count as f64)]) {
            let labels = l.with(&[("__name__", &format!("{name}{suffix}"))]);
            self.start(&labels, start_ns, flags);
            self.out.sample(labels, t, val(v));
        }
    }

    fn number(
        &mut self,
        m: &p::Metric,
        name: &str,
        kind: Kind,
        dp: &p::NumberDataPoint,
        with_exemplars: bool,
    ) -> Result<(), String> {
        let t = ms(dp.time_unix_nano);
        let l = self.labels(m, kind, &dp.attributes, t)?;
        let v = if stale(dp.flags) {
            STALE_NAN
        } else {
            match dp.value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                Some(number_data_point::Value::AsInt(v)) => v as f64,
                None => 0.0,
            }
        };
        let labels = l.with(&[("__name__", name)]);
        if kind == Kind::Counter {
            self.start(&labels, dp.start_time_unix_nano, dp.flags);
        }
        let series = self.out.series(labels);
        series.samples.push(Sample {
            value: v,
            timestamp: t,
        });
        if with_exemplars {
            series.exemplars.extend(dp.exemplars.iter().map(exemplar));
        }
        Ok(())
    }

    fn classic(
        &mut self,
        m: &p::Metric,
        name: &str,
        dp: &p::HistogramDataPoint,
    ) -> Result<(), String> {
        let t = ms(dp.time_unix_nano);
        let l = self.labels(m, Kind::Histogram, &dp.attributes, t)?;
        let val = |v: f64| if stale(dp.flags) { STALE_NAN } else { v };
        let (st, flags) = (dp.start_time_unix_nano, dp.flags);
        self.sum_and_count(&l, name, t, dp.sum, dp.count, (st, flags));
        // Exemplars go to the first bucket whose bound holds them, the rest to +Inf.
        let mut placed: Vec<Vec<Exemplar>> = vec![Vec::new(); dp.explicit_bounds.len() + 1];
        for e in &dp.exemplars {
            let ex = exemplar(e);
            let i = dp
                .explicit_bounds
                .iter()
                .position(|b| ex.value <= *b)
                .unwrap_or(dp.explicit_bounds.len());
            placed[i].push(ex);
        }
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, b) in dp.explicit_bounds.iter().enumerate() {
            let Some(c) = dp.bucket_counts.get(i) else {
                break;
            };
            cumulative = cumulative.saturating_add(*c);
            let le = go_format_f(*b);
            let labels = l.with(&[("__name__", &bucket), ("le", &le)]);
            self.start(&labels, st, flags);
            let s = self.out.series(labels);
            s.samples.push(Sample {
                value: val(cumulative as f64),
                timestamp: t,
            });
            s.exemplars.append(&mut placed[i]);
        }
        let labels = l.with(&[("__name__", &bucket), ("le", "+Inf")]);
        self.start(&labels, st, flags);
        let inf = self.out.series(labels);
        inf.samples.push(Sample {
            value: val(dp.count as f64),
            timestamp: t,
        });
        if let Some(rest) = placed.last_mut() {
            inf.exemplars.append(rest);
        }
        Ok(())
    }

    fn nhcb(
        &mut self,
        m: &p::Metric,
        name: &str,
        dp: &p::HistogramDataPoint,
    ) -> Result<(), String> {
        let t = ms(dp.time_unix_nano);
        let l = self.labels(m, Kind::Histogram, &dp.attributes, t)?;
        let counts: Vec<f64> = dp.bucket_counts.iter().map(|c| *c as f64).collect();
        let mut h = FloatHistogram {
            schema: vigil_model::histogram::CUSTOM_BUCKETS_SCHEMA,
            count: dp.count as f64,
            sum: dp.sum.unwrap_or(0.0),
            custom_values: dp.explicit_bounds.clone(),
            ..Default::default()
        };
        (h.positive_spans, h.positive_buckets) = layout(
            counts
                .iter()
                .copied()
                .enumerate()
                .map(|(i, c)| (i as i32, c)),
        );
        self.histogram(
            l,
            name,
            t,
            h,
            (dp.start_time_unix_nano, dp.flags),
            &dp.exemplars,
        )
    }

    fn exponential(
        &mut self,
        m: &p::Metric,
        name: &str,
        dp: &p::ExponentialHistogramDataPoint,
    ) -> Result<(), String> {
        if dp.scale < -4 {
            return Err(format!(
                "cannot convert exponential to native histogram. Scale must be >= -4, was {}",
                dp.scale
            ));
        }
        let t = ms(dp.time_unix_nano);
        let l = self.labels(m, Kind::Histogram, &dp.attributes, t)?;
        // Finer than schema 8: merged down to it.
        let down = (dp.scale - 8).max(0) as u32;
        let side = |b: &Option<p::Buckets>| {
            let Some(b) = b else {
                return (Vec::new(), Vec::new());
            };
            let mut merged: BTreeMap<i32, f64> = BTreeMap::new();
            for (i, c) in b.bucket_counts.iter().enumerate() {
                let idx = b
                    .offset
                    .saturating_add(i32::try_from(i).unwrap_or(i32::MAX));
                // Go's shift: past the width, 0 or -1.
                let shifted = idx
                    .checked_shr(down)
                    .unwrap_or(if idx < 0 { -1 } else { 0 });
                *merged.entry(shifted.saturating_add(1)).or_default() += *c as f64;
            }
            layout(merged.into_iter())
        };
        let (positive_spans, positive_buckets) = side(&dp.positive);
        let (negative_spans, negative_buckets) = side(&dp.negative);
        if dp.count == 0 && dp.sum.is_some_and(|s| s != 0.0) {
            self.out.warnings.push(format!(
                "exponential histogram {name}: a count of zero with a non-zero sum"
            ));
        }
        let h = FloatHistogram {
            schema: dp.scale - down as i32,
            // Prometheus's constant (the proto's zero_threshold is not read there yet).
            zero_threshold: 1e-128,
            zero_count: dp.zero_count as f64,
            count: dp.count as f64,
            sum: dp.sum.unwrap_or(0.0),
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            ..Default::default()
        };
        self.histogram(
            l,
            name,
            t,
            h,
            (dp.start_time_unix_nano, dp.flags),
            &dp.exemplars,
        )
    }

    fn histogram(
        &mut self,
        l: LabelSet,
        name: &str,
        t: i64,
        mut h: FloatHistogram,
        (start, flags): (u64, u32),
        exemplars: &[p::Exemplar],
    ) -> Result<(), String> {
        if stale(flags) {
            h.sum = STALE_NAN;
            h.count = STALE_NAN;
        }
        if self.delta {
            // Each point is an interval's own counts: no point continues another, as a
            // gauge histogram's do not (Prometheus's hint for deltas, stale ones too).
            h.hint = vigil_model::histogram::CounterResetHint::Gauge;
        }
        let labels = l.with(&[("__name__", name)]);
        self.start(&labels, start, flags);
        self.out
            .histograms
            .entry(labels.clone())
            .or_default()
            .push((t, Histogram::from_float(&h, t).encode_to_vec()));
        self.out
            .series(labels)
            .exemplars
            .extend(exemplars.iter().map(exemplar));
        Ok(())
    }

    fn summary(
        &mut self,
        m: &p::Metric,
        name: &str,
        dp: &p::SummaryDataPoint,
    ) -> Result<(), String> {
        let t = ms(dp.time_unix_nano);
        let l = self.labels(m, Kind::Summary, &dp.attributes, t)?;
        let val = |v: f64| if stale(dp.flags) { STALE_NAN } else { v };
        let start = (dp.start_time_unix_nano, dp.flags);
        self.sum_and_count(&l, name, t, Some(dp.sum), dp.count, start);
        for q in &dp.quantile_values {
            let qs = go_format_f(q.quantile);
            self.out.sample(
                l.with(&[("__name__", name), ("quantile", &qs)]),
                t,
                val(q.value),
            );
        }
        Ok(())
    }
}

/// Buckets by index (ascending) as spans and counts: leading empty buckets skipped, gaps of
/// up to two empty buckets filled with zeros, longer ones a new span (Prometheus's layout).
fn layout(
    buckets: impl Iterator<Item = (i32, f64)>,
) -> (Vec<vigil_model::histogram::Span>, Vec<f64>) {
    use vigil_model::histogram::Span;
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::new();
    let mut next: Option<i32> = None;
    for (i, c) in buckets {
        if c == 0.0 {
            continue;
        }
        match next {
            Some(n) if i >= n && i - n <= 2 => {
                counts.extend(std::iter::repeat_n(0.0, (i - n) as usize));
                if let Some(s) = spans.last_mut() {
                    s.length += (i - n) as u32 + 1;
                }
            }
            _ => {
                let offset = match next {
                    Some(n) => i - n,
                    None => i,
                };
                spans.push(Span { offset, length: 1 });
            }
        }
        counts.push(c);
        next = Some(i.saturating_add(1));
    }
    (spans, counts)
}

fn exemplar(e: &p::Exemplar) -> Exemplar {
    let mut labels = Vec::new();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if !e.trace_id.is_empty() {
        labels.push(Label {
            name: "trace_id".into(),
            value: hex(&e.trace_id),
        });
    }
    if !e.span_id.is_empty() {
        labels.push(Label {
            name: "span_id".into(),
            value: hex(&e.span_id),
        });
    }
    let attrs: Vec<Label> = e
        .filtered_attributes
        .iter()
        .map(|kv| Label {
            name: kv.key.clone(),
            value: any_string(kv.value.as_ref()),
        })
        .collect();
    // As Prometheus: the attributes only while the exemplar's labels stay within 128 runes.
    let runes = |l: &[Label]| {
        l.iter()
            .map(|x| x.name.chars().count() + x.value.chars().count())
            .sum::<usize>()
    };
    if runes(&labels) + runes(&attrs) <= 128 {
        labels.extend(attrs);
    }
    Exemplar {
        labels,
        value: match e.value {
            Some(p::exemplar::Value::AsDouble(v)) => v,
            Some(p::exemplar::Value::AsInt(v)) => v as f64,
            None => 0.0,
        },
        timestamp: ms(e.time_unix_nano),
    }
}

/// An attribute value as text, as OpenTelemetry's `AsString`: numbers as JSON writes them,
/// bytes in base64, arrays and maps as Go's `json.Marshal` writes them.
pub fn any_string(v: Option<&p::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(f)) => js_float(*f),
        Some(any_value::Value::BytesValue(b)) => base64(b),
        Some(_) => {
            let mut out = String::new();
            // Go's encoder fails on a NaN or an infinity anywhere inside: no text at all.
            if go_json(v, &mut out).is_some() {
                out
            } else {
                String::new()
            }
        }
    }
}

/// `v` as Go's `json.Marshal` writes the raw value: map keys sorted, `<`, `>`, `&`, U+2028
/// and U+2029 escaped, floats in the shortest form. `None` for a NaN or an infinity. (Nesting
/// is bounded by the decoders: 100 levels of protobuf, 128 of JSON.)
fn go_json(v: Option<&p::AnyValue>, out: &mut String) -> Option<()> {
    match v.and_then(|v| v.value.as_ref()) {
        None => out.push_str("null"),
        Some(any_value::Value::StringValue(s)) => go_json_string(s, out),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => out.push_str(&i.to_string()),
        Some(any_value::Value::DoubleValue(f)) => {
            if !f.is_finite() {
                return None;
            }
            out.push_str(&js_float(*f));
        }
        Some(any_value::Value::BytesValue(b)) => go_json_string(&base64(b), out),
        Some(any_value::Value::ArrayValue(a)) => {
            out.push('[');
            for (i, x) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(Some(x), out)?;
            }
            out.push(']');
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let mut sorted: Vec<&KeyValue> = kv.values.iter().collect();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            // A key given twice: the last, as a Go map keeps it.
            sorted.dedup_by(|b, a| {
                if a.key == b.key {
                    std::mem::swap(a, b);
                    true
                } else {
                    false
                }
            });
            out.push('{');
            for (i, x) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(&x.key, out);
                out.push(':');
                go_json(x.value.as_ref(), out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as JavaScript (and so OpenTelemetry's `AsString`) writes it.
fn js_float(f: f64) -> String {
    let a = f.abs();
    if f.is_nan() || f.is_infinite() {
        return format!("json: unsupported value: {}", non_finite_text(f));
    }
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let e = format!("{f:e}");
        return match e.split_once('e') {
            Some((m, exp)) if !exp.starts_with('-') => format!("{m}e+{exp}"),
            _ => e,
        };
    }
    format!("{f}")
}

/// NaN or an infinity as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it.
fn non_finite_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// A bound or quantile as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it.
fn go_format_f(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    format!("{f}")
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A label name from an attribute key, as the strategy makes it.
fn label_name(k: &str, s: &Settings) -> Result<String, String> {
    if k.is_empty() {
        return Err("label name is empty".into());
    }
    let invalid = |n: &str| {
        Err(format!(
            "normalization for label name {k:?} resulted in invalid name {n:?}"
        ))
    };
    if !s.strategy.escapes() {
        if k.chars().all(|c| c == '_') {
            return invalid(k);
        }
        return Ok(k.to_string());
    }
    let mut n: String = k
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !s.label_name_preserve_multiple_underscores {
        n = collapse_underscores(&n);
    }
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n = format!("key_{n}");
    } else if s.label_name_underscore_sanitization && n.starts_with('_') && !n.starts_with("__") {
        n = format!("key{n}");
    }
    if n.chars().all(|c| c == '_') {
        return invalid(&n);
    }
    Ok(n)
}

/// Runs of `_` as one, keeping the double underscores of a `__name__`-like name.
fn collapse_underscores(n: &str) -> String {
    let (pre, core, post) = if n.len() >= 4 && n.starts_with("__") && n.ends_with("__") {
        ("__", &n[2..n.len() - 2], "__")
    } else {
        ("", n, "")
    };
    let mut out = String::with_capacity(n.len());
    for c in core.chars() {
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    format!("{pre}{out}{post}")
}

/// A metric's metadata as Prometheus's OTLP translation gives it: a non-monotonic sum is a
/// gauge, and a delta (taken with `otlp-native-delta-ingestion`) of unknown type; the unit as
/// its words (`By/s` -> `bytes_per_second`).
fn metric_metadata(m: &p::Metric) -> Metadata {
    let delta = |t: i32| t == p::TEMPORALITY_DELTA;
    let kind = match &m.data {
        Some(metric::Data::Gauge(_)) => MetricType::Gauge,
        Some(metric::Data::Sum(s)) if delta(s.aggregation_temporality) => MetricType::Unknown,
        Some(metric::Data::Sum(s)) if s.is_monotonic => MetricType::Counter,
        Some(metric::Data::Sum(_)) => MetricType::Gauge,
        Some(metric::Data::Histogram(h)) if delta(h.aggregation_temporality) => MetricType::Unknown,
        Some(metric::Data::ExponentialHistogram(h)) if delta(h.aggregation_temporality) => {
            MetricType::Unknown
        }
        Some(metric::Data::Histogram(_) | metric::Data::ExponentialHistogram(_)) => {
            MetricType::Histogram
        }
        Some(metric::Data::Summary(_)) => MetricType::Summary,
        None => MetricType::Unknown,
    };
    Metadata {
        kind,
        unit: unit_words(&m.unit),
        help: m.description.clone(),
    }
}

/// The unit's words for a name suffix (`ms` -> `milliseconds`); other units as they are.
fn unit_word(u: &str) -> &str {
    match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The word after `per_` (`s` -> `second`).
fn per_unit_word(u: &str) -> &str {
    match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// A unit's suffix words, cleaned: characters outside `[a-zA-Z0-9:]` as `_`, runs of `_` as
/// one, no leading `_`. A unit in braces (an annotation such as `{request}`) has none.
fn unit_parts(unit: &str) -> (String, String) {
    let clean = |u: &str| -> String {
        if u.contains(['{', '}']) {
            return String::new();
        }
        let s: String = u
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == ':' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        collapse_underscores(&s).trim_start_matches('_').to_string()
    };
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let per = parts.next().unwrap_or("").trim();
    (clean(unit_word(main)), clean(per_unit_word(per)))
}

/// A unit as Prometheus's `otlptranslator.UnitNamer` builds it, for `__unit__` and series
/// metadata (`By/s` -> `bytes_per_second`): the main word and `per_` with the per word,
/// each cleaned (characters outside `[a-zA-Z0-9:_]` as `_`, runs of `_` as one, no leading
/// `_`), joined by `_`, then one leading and one trailing `_` taken off. A part in braces (an
/// annotation such as `{request}`) gives nothing.
fn unit_words(unit: &str) -> String {
    let clean = |u: &str| -> String {
        let s: String = u
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == ':' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let s = collapse_underscores(&s);
        s.strip_prefix('_').unwrap_or(&s).to_string()
    };
    let usable = |u: &str| !u.is_empty() && !u.contains(['{', '}']);
    let mut tokens = unit.splitn(2, '/');
    let main_raw = tokens.next().unwrap_or("").trim();
    let main = if usable(main_raw) {
        clean(unit_word(main_raw))
    } else {
        String::new()
    };
    let per_raw = tokens.next().unwrap_or("").trim();
    let per = match usable(per_raw).then(|| per_unit_word(per_raw)) {
        Some(w) if !w.is_empty() => clean(&format!("per_{w}")),
        _ => String::new(),
    };
    let u = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    let u = u.strip_prefix('_').unwrap_or(&u);
    u.strip_suffix('_').unwrap_or(u).to_string()
}

/// A metric's name as the strategy makes it.
fn metric_name(m: &p::Metric, kind: Kind, s: &Settings) -> Result<String, String> {
    let name = &m.name;
    match s.strategy {
        Strategy::NoTranslation => Ok(name.clone()),
        Strategy::UnderscoreEscapingWithoutSuffixes => {
            let n = name
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_'))
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            finish(name, n)
        }
        Strategy::UnderscoreEscapingWithSuffixes => {
            let mut tokens: Vec<String> = name
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            let (main, per) = unit_parts(&m.unit);
            if !main.is_empty() && !tokens.contains(&main) {
                tokens.push(main);
            }
            // Always, as Prometheus (its check looks for `per_<unit>`, never one token).
            if !per.is_empty() {
                tokens.push("per".into());
                tokens.push(per);
            }
            if kind == Kind::Counter {
                tokens.retain(|t| t != "total");
                tokens.push("total".into());
            }
            if m.unit == "1" && kind == Kind::Gauge {
                tokens.retain(|t| t != "ratio");
                tokens.push("ratio".into());
            }
            finish(name, tokens.join("_"))
        }
        Strategy::NoUtf8EscapingWithSuffixes => {
            // Prometheus's `buildMetricName`: the type and per-unit suffixes taken off the
            // name first, the unit added unless the name ends with it, then the rest again.
            let (main, per) = unit_parts(&m.unit);
            let ratio = m.unit == "1" && kind == Kind::Gauge;
            let mut n = name.clone();
            if kind == Kind::Counter {
                n = trim_suffix(&n, "total");
            }
            if ratio {
                n = trim_suffix(&n, "ratio");
            }
            let per_suffix = format!("per_{per}");
            if !per.is_empty() {
                n = trim_suffix(&n, &per_suffix);
            }
            if !main.is_empty() && !n.ends_with(&main) {
                n = format!("{n}_{main}");
            }
            if !per.is_empty() {
                n = format!("{n}_{per_suffix}");
            }
            if kind == Kind::Counter {
                n.push_str("_total");
            }
            if ratio {
                n.push_str("_ratio");
            }
            Ok(n)
        }
    }
}

/// `name` without `suffix` and the one character before it, when it ends so.
fn trim_suffix(name: &str, suffix: &str) -> String {
    if name.ends_with(suffix) && name.len() > suffix.len() + 1 {
        let cut = name.len() - suffix.len();
        if let Some(d) = name[..cut].chars().last() {
            return name[..cut - d.len_utf8()].to_string();
        }
    }
    name.to_string()
}

fn finish(orig: &str, mut n: String) -> Result<String, String> {
    if n.is_empty() {
        return Err(format!(
            "normalization for metric {orig:?} resulted in empty name"
        ));
    }
    if n.chars().all(|c| c == '_') {
        return Err(format!(
            "normalization for metric {orig:?} resulted in invalid name {n:?}"
        ));
    }
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, '_');
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
