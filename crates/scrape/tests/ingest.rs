//! What a scrape stores: target labels, honor_labels, metric relabeling, limits, staleness,
//! failed scrapes. Runs the real loop's ingest path against the in-memory storage.

use std::path::Path;
use std::sync::Arc;

use vigil_model::{Labels, Sample, is_stale_nan};
use vigil_scrape::scrape_loop::ScrapeLoop;
use vigil_storage::{Matcher, MemoryStorage, Series, Storage};

const TEXT: &str = "text/plain; version=0.0.4";

fn setup(job_yaml: &str) -> (ScrapeLoop, Arc<MemoryStorage>) {
    let yaml = format!(
        "scrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['127.0.0.1:1']\n{job_yaml}"
    );
    let cfg = vigil_config::Config::parse(&yaml, Path::new(".")).expect("config");
    let st = Arc::new(MemoryStorage::new());
    let storage: Arc<dyn Storage> = st.clone();
    (
        ScrapeLoop::for_benchmark(cfg.scrape_configs[0].clone(), storage).expect("loop"),
        st,
    )
}

/// As [`setup`] with no job YAML, the scrape config changed by `change` (for settings that
/// come from feature flags, not the config file).
fn setup_with(
    change: impl FnOnce(&mut vigil_config::ScrapeConfig),
) -> (ScrapeLoop, Arc<MemoryStorage>) {
    let yaml =
        "scrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['127.0.0.1:1']\n";
    let cfg = vigil_config::Config::parse(yaml, Path::new(".")).expect("config");
    let mut sc = cfg.scrape_configs[0].clone();
    change(&mut sc);
    let st = Arc::new(MemoryStorage::new());
    let storage: Arc<dyn Storage> = st.clone();
    (ScrapeLoop::for_benchmark(sc, storage).expect("loop"), st)
}

fn series(st: &MemoryStorage, name: &str) -> Vec<Series> {
    let q = st.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .collect()
}

fn last(st: &MemoryStorage, name: &str) -> f64 {
    let s = series(st, name);
    assert_eq!(s.len(), 1, "{name}: {s:?}");
    s[0].samples.last().unwrap().v
}

#[test]
fn samples_carry_target_labels_and_report_series() {
    let (mut lp, st) = setup("");
    lp.ingest(b"# TYPE a gauge\na{x=\"1\"} 5\nb 7\n", TEXT, 1000)
        .unwrap();
    let a = series(&st, "a");
    assert_eq!(
        a[0].labels,
        Labels::from_pairs([
            ("__name__", "a"),
            ("x", "1"),
            ("job", "t"),
            ("instance", "127.0.0.1:1")
        ])
    );
    assert_eq!(a[0].samples, vec![Sample { t: 1000, v: 5.0 }]);
    assert_eq!(last(&st, "up"), 1.0);
    assert_eq!(last(&st, "scrape_samples_scraped"), 2.0);
    assert_eq!(last(&st, "scrape_samples_post_metric_relabeling"), 2.0);
    assert_eq!(last(&st, "scrape_series_added"), 2.0);
    lp.ingest(b"a{x=\"1\"} 6\nb 8\n", TEXT, 2000).unwrap();
    assert_eq!(
        last(&st, "scrape_series_added"),
        0.0,
        "cached series are not new"
    );
    assert_eq!(last(&st, "a"), 6.0);
}

#[test]
fn conflicting_labels_become_exported_unless_honor_labels() {
    let (mut lp, st) = setup("");
    lp.ingest(b"a{job=\"other\",exported_job=\"x\"} 1\n", TEXT, 1000)
        .unwrap();
    let l = &series(&st, "a")[0].labels;
    assert_eq!(l.get("job"), Some("t"));
    assert_eq!(l.get("exported_exported_job"), Some("other"));
    assert_eq!(l.get("exported_job"), Some("x"));

    let (mut lp, st) = setup("    honor_labels: true\n");
    lp.ingest(b"a{job=\"other\"} 1\n", TEXT, 1000).unwrap();
    assert_eq!(series(&st, "a")[0].labels.get("job"), Some("other"));
}

#[test]
fn metric_relabel_configs_drop_and_rewrite() {
    let (mut lp, st) = setup(
        "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'go_.*'\n        action: drop\n      - source_labels: [x]\n        target_label: y\n",
    );
    let body = b"go_goroutines 5\na{x=\"1\"} 1\n";
    lp.ingest(body, TEXT, 1000).unwrap();
    lp.ingest(body, TEXT, 2000).unwrap();
    assert!(series(&st, "go_goroutines").is_empty());
    assert_eq!(series(&st, "a")[0].labels.get("y"), Some("1"));
    assert_eq!(last(&st, "scrape_samples_scraped"), 2.0);
    assert_eq!(last(&st, "scrape_samples_post_metric_relabeling"), 1.0);
}

#[test]
fn vanished_series_get_staleness_markers() {
    let (mut lp, st) = setup("");
    lp.ingest(b"a 1\nb 1\n", TEXT, 1000).unwrap();
    lp.ingest(b"a 2\n", TEXT, 2000).unwrap();
    let b = &series(&st, "b")[0].samples;
    assert_eq!(b.len(), 2);
    assert!(is_stale_nan(b[1].v) && b[1].t == 2000);
    lp.ingest(b"a 3\n", TEXT, 3000).unwrap();
    assert_eq!(series(&st, "b")[0].samples.len(), 2, "only one marker");
    lp.ingest(b"a 4\nb 5\n", TEXT, 4000).unwrap();
    assert_eq!(
        series(&st, "b")[0].samples.last().unwrap().v,
        5.0,
        "a series may come back"
    );
}

#[test]
fn explicit_timestamps_are_honoured_and_not_stale_tracked() {
    let (mut lp, st) = setup("");
    lp.ingest(b"a 1 500\n", TEXT, 1000).unwrap();
    assert_eq!(series(&st, "a")[0].samples, vec![Sample { t: 500, v: 1.0 }]);
    lp.ingest(b"", TEXT, 2000).unwrap();
    assert_eq!(
        series(&st, "a")[0].samples.len(),
        1,
        "no staleness marker for timestamped series"
    );

    let (mut lp, st) = setup("    honor_timestamps: false\n");
    lp.ingest(b"a 1 500\n", TEXT, 1000).unwrap();
    assert_eq!(
        series(&st, "a")[0].samples,
        vec![Sample { t: 1000, v: 1.0 }]
    );
}

/// A target's own timestamp more than 10 minutes past the scrape is refused as out of
/// bounds, as Prometheus's scrape refuses it; the scrape and its other samples go on, and the
/// refused sample still counts after relabeling (as Prometheus 2.42 reports it: 3, 3, 2 for
/// this body).
#[test]
fn timestamps_too_far_ahead_are_refused() {
    let (mut lp, st) = setup("");
    let ts = 1_796_000_000_000i64;
    let body = format!(
        "a 1 {}
b 2 {}
c 3
",
        ts + 600_000,
        ts + 600_001
    );
    let before = vigil_scrape::metrics::OUT_OF_BOUNDS.get();
    lp.ingest(body.as_bytes(), TEXT, ts).unwrap();
    assert_eq!(
        series(&st, "a")[0].samples,
        vec![Sample {
            t: ts + 600_000,
            v: 1.0
        }]
    );
    assert!(series(&st, "b").is_empty());
    assert_eq!(series(&st, "c")[0].samples, vec![Sample { t: ts, v: 3.0 }]);
    assert_eq!(last(&st, "up"), 1.0);
    assert_eq!(last(&st, "scrape_samples_scraped"), 3.0);
    assert_eq!(last(&st, "scrape_samples_post_metric_relabeling"), 3.0);
    assert_eq!(last(&st, "scrape_series_added"), 2.0);
    assert!(vigil_scrape::metrics::OUT_OF_BOUNDS.get() > before);
    // A created timestamp's zero is not written for a refused sample either.
    let (mut lp, st) = setup_with(|c| c.created_timestamp_zero_ingestion = true);
    let om = "application/openmetrics-text; version=1.0.0";
    let body = format!(
        "# TYPE d counter\nd_total 1 {}\nd_created {}\n# EOF\n",
        (ts + 700_000) as f64 / 1000.0,
        (ts + 650_000) as f64 / 1000.0
    );
    lp.ingest(body.as_bytes(), om, ts).unwrap();
    assert!(series(&st, "d_total").is_empty());
}

#[test]
fn a_bad_line_fails_the_whole_scrape_and_marks_the_last_good_one_stale() {
    let (mut lp, st) = setup("");
    lp.ingest(b"a 1\n", TEXT, 1000).unwrap();
    let err = lp.ingest(b"a 2\nb{ 3\n", TEXT, 2000).unwrap_err();
    assert!(err.starts_with("line 2"), "{err}");
    let a = &series(&st, "a")[0].samples;
    assert_eq!(a.len(), 2);
    assert!(
        is_stale_nan(a[1].v),
        "the good line of a failed scrape is not stored; a goes stale"
    );
    assert!(series(&st, "b").is_empty());
    assert_eq!(last(&st, "up"), 0.0);
    lp.ingest(b"a 4\n", TEXT, 3000).unwrap();
    assert_eq!(last(&st, "a"), 4.0);
    assert_eq!(last(&st, "up"), 1.0);
}

#[test]
fn sample_limit_fails_the_scrape() {
    let (mut lp, st) = setup("    sample_limit: 2\n");
    let err = lp.ingest(b"a 1\nb 1\nc 1\n", TEXT, 1000).unwrap_err();
    assert_eq!(err, "sample limit exceeded");
    assert!(series(&st, "a").is_empty());
    assert_eq!(last(&st, "up"), 0.0);
    // The report still says how many samples the failed scrape had, as Prometheus's does.
    assert_eq!(last(&st, "scrape_samples_scraped"), 3.0);
    assert_eq!(last(&st, "scrape_samples_post_metric_relabeling"), 3.0);
    lp.ingest(b"a 1\nb 1\n", TEXT, 2000).unwrap();
    assert_eq!(last(&st, "up"), 1.0);
}

#[test]
fn label_limits_fail_the_scrape_with_prometheus_wording() {
    let (mut lp, _) = setup("    label_limit: 3\n");
    let err = lp
        .ingest(b"a{x=\"1\",y=\"2\"} 1\n", TEXT, 1000)
        .unwrap_err();
    assert_eq!(
        err,
        "label_limit exceeded (metric: a, number of labels: 5, limit: 3)"
    );
    let (mut lp, _) = setup("    label_name_length_limit: 8\n");
    let err = lp
        .ingest(b"a{long_name=\"1\"} 1\n", TEXT, 1000)
        .unwrap_err();
    assert!(err.starts_with("label_name_length_limit exceeded (metric: a, label name: long_name, length: 9, limit: 8)"), "{err}");
    let (mut lp, _) = setup("    label_value_length_limit: 3\n");
    let err = lp.ingest(b"a{x=\"toolong\"} 1\n", TEXT, 1000).unwrap_err();
    assert!(
        err.starts_with("label_value_length_limit exceeded"),
        "{err}"
    );
}

/// An out-of-order sample is counted and skipped; it still counts after relabeling, as
/// Prometheus 2.42 reports it (`scrape_samples_post_metric_relabeling` 2 for this body).
#[test]
fn out_of_order_samples_are_counted_not_fatal() {
    let (mut lp, st) = setup("");
    lp.ingest(b"a 1 5000\nb 1\n", TEXT, 1000).unwrap();
    let stats = lp.ingest(b"a 2 4000\nb 2\n", TEXT, 2000).unwrap();
    assert_eq!(stats.scraped, 2);
    assert_eq!(stats.post_relabel, 2);
    assert_eq!(last(&st, "a"), 1.0);
    assert_eq!(last(&st, "up"), 1.0);
}

#[test]
fn openmetrics_bodies_are_parsed_by_content_type() {
    let (mut lp, st) = setup("");
    let om = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    lp.ingest(b"# TYPE c counter\nc_total 3 1.5\n# EOF\n", om, 2000)
        .unwrap();
    assert_eq!(
        series(&st, "c_total")[0].samples,
        vec![Sample { t: 1500, v: 3.0 }]
    );
    assert!(
        lp.ingest(b"# TYPE c counter\nc_total 3\n", om, 3000)
            .is_err(),
        "missing # EOF"
    );
}

/// `type-and-unit-labels`: each series carries its family's type and unit (`__type__`,
/// `__unit__`) where the body declares them, replacing what the body wrote; a series outside
/// the family last declared, or of unknown type, gets no type.
#[test]
fn type_and_unit_labels_come_from_each_series_family() {
    let (mut lp, st) = setup_with(|c| c.type_and_unit_labels = true);
    let text = "# TYPE req_total counter\nreq_total{code=\"200\"} 5\n\
        # TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 3\nlat_count 2\n\
        # TYPE q summary\nq{quantile=\"0.5\"} 1\nq_sum 2\nq_count 3\n\
        # TYPE temp gauge\ntemp{__type__=\"counter\"} 20\nstray 1\n\
        # TYPE u untyped\nu{__type__=\"x\",__unit__=\"y\"} 1\n";
    lp.ingest(text.as_bytes(), TEXT, 1000).unwrap();
    let meta = |name: &str| {
        let s = series(&st, name);
        assert_eq!(s.len(), 1, "{name}: {s:?}");
        (
            s[0].labels.get("__type__").map(str::to_string),
            s[0].labels.get("__unit__").map(str::to_string),
        )
    };
    let typed = |t: &str| (Some(t.to_string()), None);
    assert_eq!(meta("req_total"), typed("counter"));
    for name in ["lat_sum", "lat_count"] {
        assert_eq!(meta(name), typed("histogram"), "{name}");
    }
    assert_eq!(series(&st, "lat_bucket").len(), 2);
    for s in series(&st, "lat_bucket") {
        assert_eq!(s.labels.get("__type__"), Some("histogram"));
    }
    for name in ["q", "q_sum", "q_count"] {
        assert_eq!(meta(name), typed("summary"), "{name}");
    }
    assert_eq!(
        meta("temp"),
        typed("gauge"),
        "the body's own __type__ is replaced"
    );
    assert_eq!(
        meta("stray"),
        (None, None),
        "not of the family last declared"
    );
    assert_eq!(
        meta("u"),
        (Some("x".into()), Some("y".into())),
        "unknown type, no unit: the body's labels stay"
    );

    let om = "# TYPE disk_bytes gauge\n# UNIT disk_bytes bytes\ndisk_bytes 10\n\
        # TYPE lat_seconds histogram\n# UNIT lat_seconds seconds\n\
        lat_seconds_bucket{le=\"1\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 1\n\
        lat_seconds_count 1\nlat_seconds_sum 0.5\n# EOF\n";
    lp.ingest(
        om.as_bytes(),
        "application/openmetrics-text; version=1.0.0",
        2000,
    )
    .unwrap();
    assert_eq!(
        meta("disk_bytes"),
        (Some("gauge".into()), Some("bytes".into()))
    );
    assert_eq!(
        meta("lat_seconds_count"),
        (Some("histogram".into()), Some("seconds".into()))
    );

    // Without the feature, nothing is added.
    let (mut lp, st) = setup("");
    lp.ingest(text.as_bytes(), TEXT, 1000).unwrap();
    assert_eq!(series(&st, "req_total")[0].labels.get("__type__"), None);
    assert_eq!(
        series(&st, "temp")[0].labels.get("__type__"),
        Some("counter"),
        "the body's own label, as written"
    );
}

/// Prometheus 3.13's per-target histogram labels: a target whose relabeling sets
/// `__convert_classic_histograms_to_nhcb__` stores its classic histogram as a native one with
/// custom buckets, whatever the job says; a value that is not a boolean is refused by name.
#[test]
fn a_target_s_histogram_labels_override_the_job() {
    let body = b"# TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 3\nlat_count 2\n";
    let (mut lp, st) = setup(
        "    relabel_configs:\n      - target_label: __convert_classic_histograms_to_nhcb__\n        replacement: 'true'\n",
    );
    lp.ingest(body, TEXT, 1000).unwrap();
    let s = series(&st, "lat");
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].histograms.len(), 1, "a native histogram: {s:?}");
    assert!(series(&st, "lat_bucket").is_empty());

    let (mut lp, st) = setup("");
    lp.ingest(body, TEXT, 1000).unwrap();
    assert!(series(&st, "lat").is_empty());
    assert_eq!(series(&st, "lat_bucket").len(), 2);

    // Emptied by relabeling (a source label the target lacks): the job's setting.
    let (mut lp, st) = setup(
        "    convert_classic_histograms_to_nhcb: true\n    relabel_configs:\n      - source_labels: [__meta_missing]\n        target_label: __convert_classic_histograms_to_nhcb__\n",
    );
    lp.ingest(body, TEXT, 1000).unwrap();
    assert_eq!(series(&st, "lat").len(), 1, "the job's conversion");

    let yaml = "scrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['127.0.0.1:1']\n    relabel_configs:\n      - target_label: __scrape_native_histograms__\n        replacement: 'maybe'\n";
    let cfg = vigil_config::Config::parse(yaml, Path::new(".")).expect("config");
    let st: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let err = ScrapeLoop::for_benchmark(cfg.scrape_configs[0].clone(), st)
        .err()
        .expect("refused");
    assert!(
        err.contains("__scrape_native_histograms__") && err.contains("\"maybe\""),
        "{err}"
    );
}

/// A storage that records every `update_metadata` call and stores samples in memory.
#[derive(Default)]
struct MetadataRecorder {
    inner: MemoryStorage,
    calls: std::sync::Mutex<Vec<(String, vigil_storage::Metadata)>>,
}

/// Records the calls of a transaction that commits.
struct RecordingAppender<'a> {
    inner: Box<dyn vigil_storage::Appender + 'a>,
    pending: Vec<(String, vigil_storage::Metadata)>,
    calls: &'a std::sync::Mutex<Vec<(String, vigil_storage::Metadata)>>,
}

impl vigil_storage::Appender for RecordingAppender<'_> {
    fn append(
        &mut self,
        r: vigil_storage::SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<vigil_storage::SeriesRef, vigil_storage::AppendError> {
        self.inner.append(r, labels, t, v)
    }
    fn append_exemplar(
        &mut self,
        r: vigil_storage::SeriesRef,
        labels: &Labels,
        e: vigil_storage::Exemplar,
    ) -> Result<(), vigil_storage::AppendError> {
        self.inner.append_exemplar(r, labels, e)
    }
    fn update_metadata(
        &mut self,
        r: vigil_storage::SeriesRef,
        labels: &Labels,
        meta: &Arc<vigil_storage::Metadata>,
    ) -> Result<vigil_storage::SeriesRef, vigil_storage::AppendError> {
        self.pending.push((labels.to_string(), (**meta).clone()));
        Ok(r)
    }
    fn commit(self: Box<Self>) -> Result<(), vigil_storage::StorageError> {
        self.calls.lock().unwrap().extend(self.pending);
        self.inner.commit()
    }
    fn rollback(self: Box<Self>) {
        self.inner.rollback()
    }
}

impl Storage for MetadataRecorder {
    fn appender(&self) -> Box<dyn vigil_storage::Appender + '_> {
        Box::new(RecordingAppender {
            inner: self.inner.appender(),
            pending: Vec::new(),
            calls: &self.calls,
        })
    }
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn vigil_storage::Querier + '_>, vigil_storage::StorageError> {
        self.inner.querier(mint, maxt)
    }
    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<vigil_storage::SeriesExemplars>, vigil_storage::StorageError> {
        self.inner.exemplars(mint, maxt, sets)
    }
}

/// `metadata-wal-records`: the storage is given a series' metadata when the series is new to
/// the target or its family's type, help or unit changed in this scrape, as Prometheus's
/// scrape loop gives it, and only for series of the family last declared. A change first seen
/// by a scrape that failed is given by the next one that succeeds. Without the feature it is
/// never given.
#[test]
fn series_metadata_goes_to_the_storage_when_new_or_changed() {
    use vigil_model::exposition::MetricType;
    for on in [true, false] {
        let yaml = "scrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['127.0.0.1:1']\n";
        let cfg = vigil_config::Config::parse(yaml, Path::new(".")).expect("config");
        let mut sc = cfg.scrape_configs[0].clone();
        sc.append_metadata = on;
        let st = Arc::new(MetadataRecorder::default());
        let storage: Arc<dyn Storage> = st.clone();
        let mut lp = ScrapeLoop::for_benchmark(sc, storage).expect("loop");
        let body = |help: &str, extra: &str| {
            format!(
                "# HELP req_total {help}\n# TYPE req_total counter\nreq_total{{code=\"200\"}} 5\n{extra}\
                 # HELP temp Temperature.\n# TYPE temp gauge\ntemp 20\nstray 1\n"
            )
        };
        let mut calls = |body: String, ts: i64| {
            let ok = !body.contains("bad{");
            assert_eq!(lp.ingest(body.as_bytes(), TEXT, ts).is_ok(), ok);
            let mut c: Vec<(String, MetricType, String)> =
                std::mem::take(&mut *st.calls.lock().unwrap())
                    .into_iter()
                    .map(|(l, m)| (l, m.kind, m.help))
                    .collect();
            c.sort_by(|a, b| a.0.cmp(&b.0));
            c
        };
        let req = |code: &str, help: &str| {
            (
                format!("req_total{{code=\"{code}\", instance=\"127.0.0.1:1\", job=\"t\"}}"),
                MetricType::Counter,
                help.to_string(),
            )
        };
        let temp = (
            "temp{instance=\"127.0.0.1:1\", job=\"t\"}".to_string(),
            MetricType::Gauge,
            "Temperature.".to_string(),
        );
        let first = calls(body("Requests.", ""), 1000);
        let again = calls(body("Requests.", ""), 2000);
        let changed = calls(
            body("Requests served.", "req_total{code=\"500\"} 1\n"),
            3000,
        );
        let new_series = calls(
            body(
                "Requests served.",
                "req_total{code=\"500\"} 1\nreq_total{code=\"404\"} 1\n",
            ),
            4000,
        );
        let both = "req_total{code=\"500\"} 1\nreq_total{code=\"404\"} 1\n";
        let failed = calls(body("Requests, all.", &format!("{both}bad{{{{\n")), 5000);
        let after_failure = calls(body("Requests, all.", both), 6000);
        if !on {
            assert!(first.is_empty() && changed.is_empty() && new_series.is_empty());
            assert!(after_failure.is_empty());
            continue;
        }
        assert_eq!(
            first,
            vec![req("200", "Requests."), temp.clone()],
            "stray is in no family"
        );
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(
            changed,
            vec![
                req("200", "Requests served."),
                req("500", "Requests served.")
            ]
        );
        assert_eq!(new_series, vec![req("404", "Requests served.")]);
        assert!(failed.is_empty(), "rolled back");
        assert_eq!(
            after_failure,
            vec![
                req("200", "Requests, all."),
                req("404", "Requests, all."),
                req("500", "Requests, all.")
            ]
        );
    }
}
