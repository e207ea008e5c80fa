//! Classic histograms converted to native histograms with custom buckets (NHCB), as current
//! Prometheus does with `convert_classic_histograms_to_nhcb` (its `textparse` NHCB parser
//! and `convertnhcb`), between a body's parser and the scraper.
//!
//! A family typed `histogram` by its last `# TYPE` line has its `_bucket` (with a numeric
//! `le`), `_count` and `_sum` series collected per label set (labels other than `le`); a run
//! of them ends at the first entry that is not one of them with the same base name and labels,
//! and its histogram is handed on before that entry. The histogram is named after the family,
//! with schema -53, the finite `le` bounds as custom bounds (sorted; a repeated bound keeps its
//! first count), per-bucket counts from the cumulative ones (the `+Inf` bucket last, added
//! from the count when the body has none), the count from `_count` (or the largest bucket) and
//! the sum from `_sum` (0 without one). A run that cannot be a histogram (a count that
//! disagrees with `+Inf`, buckets that go down, a negative or non-finite count, a sum without
//! a count) yields nothing and is counted. Gauge histograms, summaries and untyped series pass
//! through unchanged, and so do classic series of a histogram the body also gives as a native
//! histogram. The classic series themselves are handed on too only with `keep_classic`
//! (`always_scrape_classic_histograms`).

use std::borrow::Cow;

use super::lex::parse_float;
use super::{Entry, Exemplar, HistogramEntry, LabelIter, MetricType, SampleEntry, TextSpan};
use crate::histogram::{CUSTOM_BUCKETS_SCHEMA, FloatHistogram, Span};

/// Hands entries on to a sink, turning classic histograms into NHCB ones on the way.
#[derive(Debug, Default)]
pub struct Converter {
    keep_classic: bool,
    /// The family the last `# TYPE` line made a histogram, if it did.
    family: Option<String>,
    group: Option<Group>,
    /// The base name and labels of the last native histogram handed on: its classic series
    /// are not converted (the histogram is already native).
    native: Option<(String, Vec<(String, String)>)>,
    /// Runs that could not be converted.
    failed: u64,
}

/// One run of a classic histogram's series.
#[derive(Debug)]
struct Group {
    base: String,
    /// Labels other than `le`, sorted: what tells runs apart.
    key: Vec<(String, String)>,
    /// The same labels in the order of the run's first line (the series text keeps it).
    labels: Vec<(String, String)>,
    /// `(le, cumulative count)` as they came; sorted by `le` (a repeated bound keeping its
    /// first count) before the run is read, see [`Group::sorted`].
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
    timestamp_ms: Option<i64>,
    created_ms: Option<i64>,
    exemplars: Vec<(f64, i64, String)>,
}

/// Which classic series of the family a sample is.
enum Part {
    Bucket(f64),
    Count,
    Sum,
}

type Sink<'s> = &'s mut dyn FnMut(Entry<'_>) -> Result<(), String>;

impl Converter {
    pub fn new(keep_classic: bool) -> Self {
        Converter {
            keep_classic,
            ..Default::default()
        }
    }

    /// Runs of classic series that did not make a histogram so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Take one entry: hand it on, collect it, or both; a finished run's histogram is handed
    /// on first.
    pub fn push(&mut self, e: Entry<'_>, f: Sink<'_>) -> Result<(), String> {
        match &e {
            Entry::Sample(s) => {
                if let Some((base, part)) = self.part(s) {
                    let labels = labels_of(s.labels());
                    let mut key = labels.clone();
                    key.sort();
                    if self
                        .native
                        .as_ref()
                        .is_some_and(|n| n.0 == base && n.1 == key)
                    {
                        self.flush(f)?;
                        return f(e);
                    }
                    if self
                        .group
                        .as_ref()
                        .is_some_and(|g| g.base != base || g.key != key)
                    {
                        self.flush(f)?;
                    }
                    let g = self.group.get_or_insert_with(|| Group {
                        base: base.to_string(),
                        key,
                        labels,
                        buckets: Vec::new(),
                        count: None,
                        sum: None,
                        timestamp_ms: s.timestamp_ms,
                        created_ms: s.created_ms,
                        exemplars: Vec::new(),
                    });
                    g.take(part, s);
                    return match self.keep_classic {
                        true => f(e),
                        false => Ok(()),
                    };
                }
                // A series that is not collected ends the run only if it is another metric
                // (as Prometheus compares them: base name, and labels but `le`): a bucket
                // whose `le` is not a number passes through inside its run.
                if let Some(g) = &self.group {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|x| s.name.strip_suffix(x))
                        .unwrap_or(&s.name);
                    if base != g.base || label_key(s.labels()) != g.key {
                        self.flush(f)?;
                    }
                }
                f(e)
            }
            Entry::Histogram(h) => {
                self.flush(f)?;
                self.native = Some((h.name.to_string(), label_key(h.labels())));
                f(e)
            }
            Entry::Type { family, kind } => {
                self.flush(f)?;
                self.family = (*kind == MetricType::Histogram).then(|| family.to_string());
                f(e)
            }
            Entry::Help { .. } | Entry::Unit { .. } => {
                self.flush(f)?;
                f(e)
            }
        }
    }

    /// The end of the body: the last run's histogram.
    pub fn finish(&mut self, f: Sink<'_>) -> Result<(), String> {
        self.flush(f)
    }

    /// The family's base name and which of its classic series `s` is, if it is one.
    fn part<'s>(&self, s: &'s SampleEntry<'_>) -> Option<(&'s str, Part)> {
        let family = self.family.as_deref()?;
        let rest = s.name.strip_prefix(family)?;
        let base = &s.name[..family.len()];
        let part = match rest {
            "_count" => Part::Count,
            "_sum" => Part::Sum,
            "_bucket" => {
                let (_, le) = s.labels().find(|(n, _)| *n == "le")?;
                let le = parse_float(le.as_bytes()).ok()?;
                if le.is_nan() {
                    return None;
                }
                Part::Bucket(le)
            }
            _ => return None,
        };
        Some((base, part))
    }

    /// Hand on the run's histogram, if there is a run and it makes one.
    fn flush(&mut self, f: Sink<'_>) -> Result<(), String> {
        let Some(g) = self.group.take() else {
            return Ok(());
        };
        let Some((h, integer)) = g.histogram() else {
            self.failed += 1;
            return Ok(());
        };
        let mut series = String::with_capacity(g.base.len() + 16 * g.labels.len());
        let (name_len, labels_at) = super::write_series(
            &mut series,
            &g.base,
            g.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let labels_raw = match labels_at {
            Some(at) => &series[at..series.len() - 1],
            None => "",
        };
        let mut exemplars = g.exemplars.clone();
        // In the order they are appended in, as for a protobuf native histogram.
        exemplars.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.total_cmp(&b.0)));
        f(Entry::Histogram(HistogramEntry {
            series: &series,
            name: match name_len {
                0 => Cow::Borrowed(g.base.as_str()),
                n => Cow::Borrowed(&series[..n]),
            },
            h: &h,
            integer,
            timestamp_ms: g.timestamp_ms,
            created_ms: g.created_ms,
            exemplars: exemplars
                .iter()
                .map(|(value, t, labels)| Exemplar {
                    value: *value,
                    timestamp_ms: Some(*t),
                    labels_raw: labels,
                })
                .collect(),
            labels_raw: TextSpan::within(&series, labels_raw),
            converted: true,
        }))
    }
}

/// A series' labels other than `le` (empty values are no label), in the order written.
fn labels_of(labels: LabelIter<'_>) -> Vec<(String, String)> {
    labels
        .filter(|(n, v)| *n != "le" && !v.is_empty())
        .map(|(n, v)| (n.to_string(), v.into_owned()))
        .collect()
}

/// The same, sorted: what tells runs apart.
fn label_key(labels: LabelIter<'_>) -> Vec<(String, String)> {
    let mut k = labels_of(labels);
    k.sort();
    k
}

impl Group {
    /// The buckets sorted by bound, a repeated bound keeping its first count (a stable sort
    /// keeps arrival order among equal bounds; the dedup keeps the first of each).
    fn sorted(&self) -> Vec<(f64, f64)> {
        let mut b = self.buckets.clone();
        if !b.is_sorted_by(|x, y| x.0.total_cmp(&y.0).is_lt()) {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            b.dedup_by(|later, first| later.0.total_cmp(&first.0).is_eq());
        }
        b
    }

    fn take(&mut self, part: Part, s: &SampleEntry<'_>) {
        match part {
            Part::Count => self.count = Some(s.value),
            Part::Sum => self.sum = Some(s.value),
            Part::Bucket(le) => {
                // -0 is the bound 0 (bounds compare as numbers, as in Prometheus).
                let le = if le == 0.0 { 0.0 } else { le };
                // Appended: sorting as they came (an insert each) was quadratic in a run's
                // buckets when they arrive in descending order.
                self.buckets.push((le, s.value));
            }
        }
        // A histogram's exemplars need a timestamp (they are ordered by it).
        if let Some(e) = &s.exemplar
            && let Some(t) = e.timestamp_ms
        {
            self.exemplars.push((e.value, t, e.labels_raw.to_string()));
        }
    }

    /// The run as a custom-bucket histogram and whether its counts are whole, or None when it
    /// cannot be one.
    fn histogram(&self) -> Option<(FloatHistogram, bool)> {
        let mut cumulative = self.sorted();
        let highest = cumulative.last().map(|b| b.1);
        // A sum alone is not a histogram.
        let count = self.count.or(highest)?;
        match cumulative.last() {
            Some(&(le, c)) if le == f64::INFINITY => {
                if self.count.is_some() && c != count {
                    return None;
                }
            }
            _ => cumulative.push((f64::INFINITY, count)),
        }
        let mut custom_values = Vec::with_capacity(cumulative.len() - 1);
        let mut buckets = Vec::with_capacity(cumulative.len());
        let mut prev = 0.0;
        for &(le, c) in &cumulative {
            if !c.is_finite() || c < prev || (le.is_infinite() && le < 0.0) {
                return None;
            }
            if le.is_finite() {
                custom_values.push(le);
            }
            buckets.push(c - prev);
            prev = c;
        }
        let integer = count.fract() == 0.0 && buckets.iter().all(|b| b.fract() == 0.0);
        let h = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count,
            sum: self.sum.unwrap_or(0.0),
            positive_spans: vec![Span {
                offset: 0,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets,
            custom_values,
            ..Default::default()
        };
        Some((h.compacted(), integer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Format, Parser};

    /// What a body becomes: each entry as text, histograms with their buckets.
    fn convert(body: &str, keep_classic: bool) -> (Vec<String>, u64) {
        let mut c = Converter::new(keep_classic);
        let mut out = Vec::new();
        let mut sink = |e: Entry<'_>| {
            out.push(match e {
                Entry::Sample(s) => format!("{} {}", s.series, s.value),
                Entry::Histogram(h) => {
                    let b: Vec<String> = h
                        .h
                        .positive()
                        .iter()
                        .map(|(i, c)| format!("{i}:{c}"))
                        .collect();
                    format!(
                        "H {} name={} labels={:?} count={} sum={} bounds={:?} buckets=[{}] integer={} t={:?} exemplars={}",
                        h.series,
                        h.name,
                        h.labels().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>(),
                        h.h.count,
                        h.h.sum,
                        h.h.custom_values,
                        b.join(" "),
                        h.integer,
                        h.timestamp_ms,
                        h.exemplars.len()
                    )
                }
                Entry::Type { family, kind } => format!("# TYPE {family} {}", kind.as_str()),
                Entry::Help { family, .. } => format!("# HELP {family}"),
                Entry::Unit { family, .. } => format!("# UNIT {family}"),
            });
            Ok(())
        };
        let format = match body.contains("# EOF") {
            true => Format::OpenMetrics,
            false => Format::Text,
        };
        for e in Parser::new(body.as_bytes(), format) {
            c.push(e.unwrap(), &mut sink).unwrap();
        }
        c.finish(&mut sink).unwrap();
        (out, c.failed())
    }

    /// Buckets in any order read as in bound order, a repeated bound keeping its first
    /// count; a long run in descending order converts in linear-log time, not quadratic.
    #[test]
    fn buckets_in_any_order_sort_and_keep_the_first_of_a_bound() {
        let body = "# TYPE rpc histogram\n\
            rpc_bucket{le=\"+Inf\"} 7\n\
            rpc_bucket{le=\"1\"} 5\n\
            rpc_bucket{le=\"0.1\"} 2\n\
            rpc_bucket{le=\"1\"} 6\n\
            rpc_bucket{le=\"0.5\"} 5\n\
            rpc_count 7\n";
        let (out, failed) = convert(body, false);
        assert_eq!(failed, 0);
        assert_eq!(
            out[1],
            "H rpc name=rpc labels=[] count=7 sum=0 bounds=[0.1, 0.5, 1.0] buckets=[0:2 1:3 3:2] integer=true t=None exemplars=0"
        );
        let n = 200_000;
        let mut long = String::from("# TYPE big histogram\n");
        for i in (0..n).rev() {
            long.push_str(&format!("big_bucket{{le=\"{i}\"}} {i}\n"));
        }
        long.push_str(&format!("big_bucket{{le=\"+Inf\"}} {n}\n"));
        let (out, failed) = convert(&long, false);
        assert_eq!(failed, 0);
        assert!(out[1].starts_with("H big name=big"), "{:.80}", out[1]);
    }

    #[test]
    fn a_classic_histogram_becomes_one_with_custom_buckets() {
        let body = "# TYPE rpc histogram\n\
            rpc_bucket{path=\"/a\",le=\"0.1\"} 2\n\
            rpc_bucket{path=\"/a\",le=\"0.5\"} 5\n\
            rpc_bucket{path=\"/a\",le=\"1\"} 5\n\
            rpc_bucket{path=\"/a\",le=\"+Inf\"} 7\n\
            rpc_sum{path=\"/a\"} 3.25\n\
            rpc_count{path=\"/a\"} 7\n\
            rpc_bucket{path=\"/b\",le=\"0.1\"} 0.5\n\
            rpc_bucket{path=\"/b\",le=\"+Inf\"} 1.5\n\
            rpc_count{path=\"/b\"} 1.5\n\
            # TYPE up gauge\n\
            up 1\n";
        let (out, failed) = convert(body, false);
        assert_eq!(failed, 0);
        assert_eq!(
            out,
            [
                "# TYPE rpc histogram",
                "H rpc{path=\"/a\"} name=rpc labels=[\"path=/a\"] count=7 sum=3.25 bounds=[0.1, 0.5, 1.0] buckets=[0:2 1:3 3:2] integer=true t=None exemplars=0",
                "H rpc{path=\"/b\"} name=rpc labels=[\"path=/b\"] count=1.5 sum=0 bounds=[0.1] buckets=[0:0.5 1:1] integer=false t=None exemplars=0",
                "# TYPE up gauge",
                "up 1",
            ]
        );
        // Kept too with `keep_classic`, the histogram after its run.
        let (out, _) = convert(body, true);
        assert_eq!(out.len(), 14);
        assert_eq!(out[1], "rpc_bucket{path=\"/a\",le=\"0.1\"} 2");
        assert!(out[7].starts_with("H rpc{path=\"/a\"}"), "{}", out[7]);
    }

    /// Buckets out of order are sorted, a repeated bound keeps its first count, a missing
    /// `+Inf` comes from the count, and without a count the largest bucket is the count;
    /// count and sum alone make one `+Inf` bucket.
    #[test]
    fn incomplete_and_unordered_runs() {
        let body = "# TYPE x histogram\n\
            x_bucket{le=\"10\"} 4\n\
            x_bucket{le=\"1\"} 1\n\
            x_bucket{le=\"1.0\"} 3\n\
            x_count 6\n\
            x_sum 20\n\
            # TYPE y histogram\n\
            y_bucket{le=\"2\"} 3 1000\n\
            y_bucket{le=\"5\"} 4 1000\n\
            # TYPE z histogram\n\
            z_count 2\n\
            z_sum 1\n";
        let (out, failed) = convert(body, false);
        assert_eq!(failed, 0);
        let hs: Vec<&String> = out.iter().filter(|l| l.starts_with("H ")).collect();
        assert_eq!(
            hs,
            [
                "H x name=x labels=[] count=6 sum=20 bounds=[1.0, 10.0] buckets=[0:1 1:3 2:2] integer=true t=None exemplars=0",
                "H y name=y labels=[] count=4 sum=0 bounds=[2.0, 5.0] buckets=[0:3 1:1] integer=true t=Some(1000) exemplars=0",
                "H z name=z labels=[] count=2 sum=1 bounds=[] buckets=[0:2] integer=true t=None exemplars=0",
            ]
        );
    }

    /// What cannot be a histogram yields nothing and is counted; what is not a classic
    /// histogram's series passes through, and ends the run before it.
    #[test]
    fn what_is_not_converted() {
        let body = "# TYPE bad histogram\n\
            bad_bucket{le=\"1\"} 5\n\
            bad_bucket{le=\"2\"} 3\n\
            bad_count 5\n\
            bad_sum 1\n\
            # TYPE mismatch histogram\n\
            mismatch_bucket{le=\"+Inf\"} 4\n\
            mismatch_count 5\n\
            # TYPE lonely histogram\n\
            lonely_sum 3\n\
            # TYPE odd histogram\n\
            odd_bucket{le=\"x\"} 1\n\
            odd_count 1\n\
            odd_total 9\n\
            # TYPE s summary\n\
            s_count 1\n\
            s_sum 2\n\
            untyped_bucket{le=\"1\"} 1\n";
        let (out, failed) = convert(body, false);
        assert_eq!(failed, 3);
        let rest: Vec<&String> = out.iter().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rest,
            [
                "odd_bucket{le=\"x\"} 1",
                "H odd name=odd labels=[] count=1 sum=0 bounds=[] buckets=[0:1] integer=true t=None exemplars=0",
                "odd_total 9",
                "s_count 1",
                "s_sum 2",
                "untyped_bucket{le=\"1\"} 1",
            ]
        );
    }

    /// Bounds compare as numbers (`-0` is `0`), and a bucket whose `le` is not a number
    /// passes through without ending its run.
    #[test]
    fn bounds_as_numbers_and_runs_kept_whole() {
        let body = "# TYPE z histogram\n\
            z_bucket{le=\"-0\"} 1\n\
            z_bucket{le=\"0\"} 2\n\
            z_bucket{le=\"oops\"} 7\n\
            z_bucket{le=\"+Inf\"} 3\n\
            z_count 3\n\
            z_sum 0.5\n";
        let (out, failed) = convert(body, false);
        assert_eq!(failed, 0);
        assert_eq!(
            out,
            [
                "# TYPE z histogram",
                "z_bucket{le=\"oops\"} 7",
                "H z name=z labels=[] count=3 sum=0.5 bounds=[0.0] buckets=[0:1 1:2] integer=true t=None exemplars=0",
            ]
        );
    }

    /// OpenMetrics: exemplars with a timestamp ride along; `_created` ends the run; gauge
    /// histograms are not converted.
    #[test]
    fn openmetrics_exemplars_created_and_gauge_histograms() {
        let body = "# TYPE h histogram\n\
            h_bucket{le=\"1.0\"} 1 # {trace_id=\"a\"} 0.5 123.0\n\
            h_bucket{le=\"+Inf\"} 2 # {trace_id=\"b\"} 3\n\
            h_count 2\n\
            h_sum 3.5\n\
            h_created 1000.0\n\
            # TYPE g gaugehistogram\n\
            g_bucket{le=\"+Inf\"} 2\n\
            g_gcount 2\n\
            # EOF\n";
        let (out, failed) = convert(body, false);
        assert_eq!(failed, 0);
        assert_eq!(
            out,
            [
                "# TYPE h histogram",
                "H h name=h labels=[] count=2 sum=3.5 bounds=[1.0] buckets=[0:1 1:1] integer=true t=None exemplars=1",
                "h_created 1000",
                "# TYPE g gaugehistogram",
                "g_bucket{le=\"+Inf\"} 2",
                "g_gcount 2",
            ]
        );
    }

    /// A histogram the body also has as a native one keeps its classic series as they are.
    #[test]
    fn a_native_histogram_s_classic_series_are_not_converted() {
        let mut c = Converter::new(false);
        let mut out = Vec::new();
        let mut sink = |e: Entry<'_>| {
            out.push(match e {
                Entry::Sample(s) => s.series.to_string(),
                Entry::Histogram(h) => format!("H {} {}", h.series, h.converted),
                _ => String::new(),
            });
            Ok(())
        };
        let native = FloatHistogram {
            count: 1.0,
            zero_count: 1.0,
            ..Default::default()
        };
        let series = "n{a=\"1\"}";
        c.push(
            Entry::Type {
                family: "n",
                kind: MetricType::Histogram,
            },
            &mut sink,
        )
        .unwrap();
        c.push(
            Entry::Histogram(HistogramEntry {
                series,
                name: "n".into(),
                h: &native,
                integer: true,
                timestamp_ms: None,
                created_ms: None,
                exemplars: Vec::new(),
                labels_raw: TextSpan::within(series, &series[2..7]),
                converted: false,
            }),
            &mut sink,
        )
        .unwrap();
        for line in Parser::new(
            b"n_count{a=\"1\"} 1\nn_bucket{a=\"1\",le=\"+Inf\"} 1\nn_count{a=\"2\"} 4\n",
            Format::Text,
        ) {
            c.push(line.unwrap(), &mut sink).unwrap();
        }
        c.finish(&mut sink).unwrap();
        assert_eq!(
            out,
            [
                "",
                "H n{a=\"1\"} false",
                "n_count{a=\"1\"}",
                "n_bucket{a=\"1\",le=\"+Inf\"}",
                "H n{a=\"2\"} true",
            ]
        );
    }
}
