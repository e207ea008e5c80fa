//! One loop per target: scrape, parse, relabel, append, report.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::watch;
use vigil_config::ScrapeConfig;
use vigil_model::exposition::{
    Entry as Line, Format, MetricType, Parser, SampleEntry, nhcb, proto,
};
use vigil_model::labels::{METRIC_NAME, quote};
use vigil_model::relabel;
use vigil_model::{Labels, LabelsBuilder, STALE_NAN};
use vigil_storage::{AppendError, Appender, SeriesRef, Storage};

use crate::cache::{Entry, SeriesCache};
use crate::client::{ScrapeError, Scraper};
use crate::metrics;
use crate::target::{Health, SharedTarget};

/// What every loop of a pool shares.
#[derive(Clone)]
pub struct PoolContext {
    pub cfg: Arc<ScrapeConfig>,
    pub scraper: Arc<Scraper>,
    pub storage: Arc<dyn Storage>,
    /// Set when the pool is over `target_limit`: every loop fails with it instead of scraping.
    pub forced_error: Arc<Mutex<Option<String>>>,
}

/// How a loop is told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// The target went away: write staleness markers for its series.
    Gone,
    /// A config reload replaces the loop: no staleness markers, the new loop carries on.
    Replaced,
}

/// Counts of one appended scrape.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct AppendStats {
    pub scraped: u64,
    pub post_relabel: u64,
    pub series_added: u64,
}

const REPORT_NAMES: [&str; 8] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    // With `extra-scrape-metrics` only.
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
];

/// How many of [`REPORT_NAMES`] every scrape reports (the rest with `extra-scrape-metrics`).
const BASIC_REPORTS: usize = 5;

pub struct ScrapeLoop {
    ctx: PoolContext,
    target: SharedTarget,
    /// Target labels without the `__` ones: what every sample carries.
    target_labels: Labels,
    cache: SeriesCache,
    report: Vec<(Labels, SeriesRef)>,
    metadata: crate::metadata::MetadataTracker,
    /// The last body's length: how much room the next one gets when its length is unknown.
    last_body: usize,
    /// About what the last good scrape appended: its body's samples after relabeling (native
    /// histograms included, created-timestamp zeros and staleness markers not), and the
    /// report's.
    last_appended: usize,
}

/// Whether a failed fetch failed for its body's size.
fn over_body_size_limit<T>(fetched: &Result<T, String>) -> bool {
    matches!(fetched, Err(e) if *e == ScrapeError::BodySizeLimit.to_string())
}

fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ScrapeLoop {
    pub fn new(ctx: PoolContext, target: SharedTarget) -> Self {
        let target_labels = target.target.public_labels();
        let reports = if ctx.cfg.extra_scrape_metrics {
            REPORT_NAMES.len()
        } else {
            BASIC_REPORTS
        };
        let report = REPORT_NAMES[..reports]
            .iter()
            .map(|n| {
                let mut b = target_labels.builder();
                b.set(METRIC_NAME, *n);
                (b.build(), 0)
            })
            .collect();
        ScrapeLoop {
            ctx,
            target,
            target_labels,
            cache: SeriesCache::new(),
            report,
            metadata: Default::default(),
            last_body: 0,
            last_appended: 0,
        }
    }

    /// Delay before the first scrape: a fixed point in the interval derived from the
    /// target's labels, so targets spread across the interval and a restarted loop keeps its
    /// phase.
    fn offset(&self, interval: Duration) -> Duration {
        // In u128: an interval of 2^64 ns or more (which the config's durations no longer
        // allow) would otherwise truncate to 0 and divide by it.
        let iv = interval.as_nanos().max(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let base = iv - now % iv;
        let phase = u128::from(self.target.target.labels.stable_hash()) % iv;
        let mut next = base + phase;
        if next > iv {
            next -= iv;
        }
        Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
    }

    /// Scrape until told to stop. `previous`: the loop this one replaces (config reload), which
    /// finishes its scrape in flight before this one starts, so the two never overlap.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<Stop>,
        previous: Option<tokio::task::JoinHandle<()>>,
    ) {
        if let Some(p) = previous {
            let _ = p.await;
        }
        let interval = self.target.target.interval;
        let start = tokio::time::Instant::now() + self.offset(interval);
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() != Stop::Running {
                break;
            }
            self.scrape_and_report().await;
        }
        if *stop.borrow() == Stop::Gone {
            // As Prometheus: mark the series stale when the next scrape would have happened,
            // so a target that only flickered out of discovery leaves no gap.
            ticker.tick().await;
            self.end_of_run_staleness();
        }
    }

    /// One scrape: fetch, append in one transaction, report, update the target's status.
    pub async fn scrape_and_report(&mut self) {
        metrics::SCRAPES.inc();
        let started_wall = SystemTime::now();
        let started = Instant::now();
        let ts = now_ms(started_wall);
        let forced = self.ctx.forced_error.lock().clone();
        let fetched = match forced {
            Some(e) => Err(e),
            None => self
                .ctx
                .scraper
                .fetch(
                    &self.target.target.url,
                    self.target.target.timeout,
                    self.target.target.histograms.native,
                    self.last_body,
                )
                .await
                .map_err(|e| {
                    if e == ScrapeError::BodySizeLimit {
                        metrics::BODY_SIZE_LIMIT.inc();
                    }
                    if matches!(e, ScrapeError::BodyBudget { .. }) {
                        metrics::BODY_BUDGET.inc();
                    }
                    e.to_string()
                }),
        };
        let duration = started.elapsed();
        // `scrape_body_size_bytes`, as Prometheus reports it: -1 when the body was over
        // `body_size_limit`, 0 for another failed fetch.
        if let Ok(f) = &fetched {
            self.last_body = f.body.len();
        }
        let body_bytes = match (&fetched, over_body_size_limit(&fetched)) {
            (Ok(f), _) => f.body.len() as f64,
            (Err(_), true) => -1.0,
            (Err(_), false) => 0.0,
        };
        let body = fetched
            .as_ref()
            .map(|f| (&f.body[..], f.content_type.as_str()))
            .map_err(Clone::clone);
        let (result, commit) = self.store(body, ts, duration, body_bytes);
        let mut st = self.target.status.lock();
        st.last_scrape = Some(started_wall);
        st.last_scrape_duration = duration;
        st.last_samples = result.as_ref().map(|s| s.scraped).unwrap_or(0);
        match result.and_then(|_| commit.map_err(|e| e.to_string())) {
            Ok(()) => {
                st.health = Health::Up;
                st.last_error.clear();
                if let Some(m) = self.metadata.finish() {
                    st.metadata = m;
                }
            }
            Err(e) => {
                st.health = Health::Down;
                st.last_error = e;
            }
        }
        tracing::debug!(
            target_url = %self.target.target.url,
            duration_seconds = duration.as_secs_f64(),
            samples = st.last_samples,
            error = %st.last_error,
            "Scrape"
        );
    }

    /// Append a fetched body (or record a failed fetch) as one transaction: samples, staleness
    /// markers, the synthetic series. Returns the append outcome and the commit's.
    fn store(
        &mut self,
        body: Result<(&[u8], &str), String>,
        ts: i64,
        duration: Duration,
        body_bytes: f64,
    ) -> (
        Result<AppendStats, String>,
        Result<(), vigil_storage::StorageError>,
    ) {
        self.cache.begin();
        let storage = self.ctx.storage.clone();
        let mut app = storage.appender();
        // A target serves about what it served last time: the transaction's buffers are sized
        // once, not grown (and rehashed) as a large body's samples arrive.
        if body.is_ok() {
            app.reserve(self.last_appended);
        }
        // Counts survive a failed append: the report says how many samples there were, as
        // Prometheus's does.
        let mut stats = AppendStats::default();
        let result = body
            .and_then(|(b, ct)| self.append_body(app.as_mut(), b, ct, ts, &mut stats))
            .map(|()| stats);
        let stats = match &result {
            Ok(stats) => {
                for e in self.cache.vanished() {
                    let _ = app.append(e.r, &e.labels, ts, STALE_NAN);
                }
                *stats
            }
            Err(_) => {
                // Nothing of a failed scrape is kept; what the last good scrape had goes stale.
                app.rollback();
                app = storage.appender();
                self.cache.forget_current();
                self.metadata.failed();
                for e in self.cache.vanished() {
                    let _ = app.append(e.r, &e.labels, ts, STALE_NAN);
                }
                stats
            }
        };
        self.cache.sweep();
        let up = if result.is_ok() { 1.0 } else { 0.0 };
        let values = [
            up,
            duration.as_secs_f64(),
            stats.scraped as f64,
            stats.post_relabel as f64,
            stats.series_added as f64,
            self.target.target.timeout.as_secs_f64(),
            self.ctx.cfg.sample_limit as f64,
            body_bytes,
        ];
        self.append_report(app.as_mut(), ts, values);
        if result.is_ok() {
            self.last_appended = stats.post_relabel as usize + self.report.len();
        }
        (result, app.commit())
    }

    /// Store `body` as if scraped at `ts`, without HTTP: for benchmarks and tests.
    pub fn ingest(
        &mut self,
        body: &[u8],
        content_type: &str,
        ts: i64,
    ) -> Result<AppendStats, String> {
        let (r, c) = self.store(
            Ok((body, content_type)),
            ts,
            Duration::ZERO,
            body.len() as f64,
        );
        c.map_err(|e| e.to_string())?;
        // As a scrape that succeeded: the metadata it saw is published.
        if r.is_ok() {
            self.metadata.finish();
        }
        r
    }

    /// A loop for a single target `127.0.0.1:1` of `cfg`, not started: for benchmarks.
    pub fn for_benchmark(cfg: ScrapeConfig, storage: Arc<dyn Storage>) -> Result<Self, String> {
        Self::for_target(cfg, storage, "127.0.0.1:1")
    }

    /// A loop for one target `address` of `cfg` (target relabeling applied), not started:
    /// drive it with [`Self::scrape_and_report`]. For tests and tools.
    pub fn for_target(
        cfg: ScrapeConfig,
        storage: Arc<dyn Storage>,
        address: &str,
    ) -> Result<Self, String> {
        let scraper = Scraper::new(&cfg).map_err(|e| e.to_string())?;
        let group = vigil_model::Labels::empty();
        let t = vigil_model::Labels::from_pairs([(vigil_model::labels::ADDRESS, address)]);
        let target = match crate::target::populate(&group, &t, &cfg)? {
            crate::target::Populated::Keep(t) => t,
            crate::target::Populated::Dropped(_) => {
                return Err("target dropped by relabeling".into());
            }
        };
        let ctx = PoolContext {
            cfg: Arc::new(cfg),
            scraper: Arc::new(scraper),
            storage,
            forced_error: Arc::new(Mutex::new(None)),
        };
        let shared = Arc::new(crate::target::ActiveTarget {
            pool: ctx.cfg.job_name.clone(),
            target,
            status: Mutex::new(Default::default()),
        });
        Ok(ScrapeLoop::new(ctx, shared))
    }

    /// The target's live status.
    pub fn status(&self) -> crate::target::TargetStatus {
        self.target.status.lock().clone()
    }

    /// The URL this loop scrapes.
    pub fn url(&self) -> &str {
        &self.target.target.url
    }

    /// The report series this loop writes (5, or 8 with `extra-scrape-metrics`), valued from
    /// `values` in [`REPORT_NAMES`] order.
    fn append_report(&mut self, app: &mut dyn Appender, ts: i64, values: [f64; 8]) {
        for ((labels, r), v) in self.report.iter_mut().zip(values) {
            if let Ok(nr) = app.append(*r, labels, ts, v) {
                *r = nr;
            }
        }
    }

    /// The target went away: mark every series it had, and its report series, stale.
    fn end_of_run_staleness(&mut self) {
        let ts = now_ms(SystemTime::now());
        let storage = self.ctx.storage.clone();
        let mut app = storage.appender();
        for e in self.cache.current() {
            let _ = app.append(e.r, &e.labels, ts, STALE_NAN);
        }
        self.append_report(app.as_mut(), ts, [STALE_NAN; 8]);
        let _ = app.commit();
    }

    /// Labels of a scraped sample: target labels merged in (`honor_labels` decides who wins
    /// a conflict; otherwise the scraped label is kept as `exported_<name>`), then
    /// `metric_relabel_configs`. `None` when relabeling drops the series.
    ///
    /// `meta`: with `type-and-unit-labels`, the type and unit of the series' family, which
    /// replace any `__type__`/`__unit__` the body wrote when they are known.
    fn sample_labels(
        &self,
        s: &SampleEntry<'_>,
        meta: Option<(MetricType, &str)>,
    ) -> Result<Option<Labels>, String> {
        let cfg = &self.ctx.cfg;
        let mut lb = LabelsBuilder::with_capacity(self.target_labels.len() + 4);
        lb.set(METRIC_NAME, &*s.name);
        for (n, v) in s.labels() {
            lb.set(n, v.into_owned());
        }
        if let Some((kind, unit)) = meta {
            if kind != MetricType::Unknown {
                lb.set("__type__", kind.as_str());
            }
            if !unit.is_empty() {
                lb.set("__unit__", unit);
            }
        }
        if cfg.honor_labels {
            for l in self.target_labels.iter() {
                if lb.get(l.name).is_none() {
                    lb.set(l.name, l.value);
                }
            }
        } else {
            let mut conflicts: Vec<(String, String)> = Vec::new();
            for l in self.target_labels.iter() {
                if let Some(v) = lb.get(l.name) {
                    conflicts.push((l.name.to_string(), v.to_string()));
                }
                lb.set(l.name, l.value);
            }
            conflicts.sort_by_key(|(n, _)| n.len());
            for (name, value) in conflicts {
                let mut new = format!("exported_{name}");
                while lb.get(&new).is_some() {
                    new = format!("exported_{new}");
                }
                lb.set(new, value);
            }
        }
        for rule in &cfg.metric_relabel_configs {
            if !relabel::apply(&mut lb, rule) {
                return Ok(None);
            }
        }
        let labels = lb.build();
        if labels.metric_name().is_none() {
            return Err("__name__ label is missing".into());
        }
        // As Prometheus, after relabeling (which may have fixed or made a bad name): one
        // series outside the scrape config's validation scheme fails the whole scrape.
        let names = cfg.name_validation;
        if !labels.iter().all(|l| {
            if l.name == METRIC_NAME {
                names.metric_name_ok(l.value)
            } else {
                names.label_name_ok(l.name)
            }
        }) {
            return Err(format!("invalid metric name or label names: {labels}"));
        }
        check_label_limits(&labels, cfg)?;
        Ok(Some(labels))
    }

    /// Parse `body` and append its samples, counting into `stats` (kept on error too). An
    /// error fails the whole scrape.
    pub fn append_body(
        &mut self,
        app: &mut dyn Appender,
        body: &[u8],
        content_type: &str,
        ts: i64,
        stats: &mut AppendStats,
    ) -> Result<(), String> {
        let cfg = self.ctx.cfg.clone();
        let mut st = BodyState {
            limit_exceeded: false,
            bucket_limit_exceeded: false,
            bucket_limit: cfg.native_histogram_bucket_limit,
            max_schema: max_schema(cfg.native_histogram_min_bucket_factor),
            iter: self.cache.iter,
            ts,
            start_zero: cfg.created_timestamp_zero_ingestion,
            family: None,
            last_family: String::new(),
            family_pending: None,
        };
        self.metadata.begin();
        // The job's histogram settings as this target's labels left them.
        let hs = self.target.target.histograms;
        // Classic histograms become native ones with custom buckets on the way in, with
        // `convert_classic_histograms_to_nhcb`.
        let mut nhcb = hs.to_nhcb.then(|| nhcb::Converter::new(hs.keep_classic));
        let mut sink = |line: Line<'_>| self.append_line(app, line, &cfg, stats, &mut st);
        let mut give = |line: Line<'_>| match nhcb.as_mut() {
            Some(c) => c.push(line, &mut sink),
            None => sink(line),
        };
        if proto::is_proto(content_type) {
            let opts = proto::Options {
                native_histograms: hs.native,
                keep_classic: hs.keep_classic,
            };
            // Streamed: one series text at a time, however many the body expands into.
            proto::decode_each(body, opts, &mut give)?;
        } else {
            let mut parser = Parser::new(body, Format::from_content_type(content_type));
            if cfg.created_timestamp_zero_ingestion {
                parser = parser.with_created_timestamps();
            }
            for line in parser {
                give(line.map_err(|e| e.to_string())?)?;
            }
        }
        if let Some(c) = nhcb.as_mut() {
            c.finish(&mut sink)?;
            if c.failed() > 0 {
                metrics::NHCB_FAILED.inc_by(c.failed());
            }
        }
        if st.limit_exceeded {
            metrics::SAMPLE_LIMIT.inc();
            return Err("sample limit exceeded".into());
        }
        if st.bucket_limit_exceeded {
            metrics::BUCKET_LIMIT.inc();
            return Err("histogram bucket limit exceeded".into());
        }
        Ok(())
    }

    /// One entry of a body: metadata noted, a sample appended (or counted against a limit).
    fn append_line(
        &mut self,
        app: &mut dyn Appender,
        line: Line<'_>,
        cfg: &ScrapeConfig,
        stats: &mut AppendStats,
        st: &mut BodyState,
    ) -> Result<(), String> {
        let iter = st.iter;
        let (s, mut value) = match line {
            Line::Sample(s) => {
                let v = Value::Float(s.value, s.exemplar.clone());
                (s, v)
            }
            Line::Histogram(h) => {
                let v = Value::Histogram(h.h.clone(), h.integer, h.exemplars.clone(), h.converted);
                (h.as_sample(), v)
            }
            Line::Help { family, help } => {
                self.metadata.help(family, &help);
                st.declared(family, cfg);
                return Ok(());
            }
            Line::Type { family, kind } => {
                self.metadata.kind(family, kind);
                st.declared(family, cfg);
                if cfg.type_and_unit_labels {
                    st.family_mut(family).1 = kind;
                }
                return Ok(());
            }
            Line::Unit { family, unit } => {
                self.metadata.unit(family, unit);
                st.declared(family, cfg);
                if cfg.type_and_unit_labels {
                    st.family_mut(family).2 = unit.to_string();
                }
                return Ok(());
            }
        };
        stats.scraped += 1;
        let explicit_ts = cfg.honor_timestamps && s.timestamp_ms.is_some();
        let t = if explicit_ts {
            s.timestamp_ms.unwrap_or(st.ts)
        } else {
            st.ts
        };
        // Past `sample_limit`, keep counting so the report says how many there were; the
        // scrape fails at the end.
        let limit = cfg.sample_limit;
        let over_limit = |stats: &mut AppendStats, st: &mut BodyState| {
            let over = limit > 0 && stats.post_relabel >= limit;
            if over {
                st.limit_exceeded = true;
                stats.post_relabel += 1;
            }
            over
        };
        if let Some(e) = self.cache.get_mut(s.series) {
            SeriesCache::touch(e, iter);
            if e.dropped() || over_limit(stats, st) {
                return Ok(());
            }
            if !value.prepare(&e.labels, st)? {
                return Ok(());
            }
            let r = value.start_zero(app, e.r, &e.labels, s.created_ms, t, st);
            match value.append(app, r, &e.labels, t, st) {
                Ok(nr) => {
                    e.r = nr;
                    stats.post_relabel += 1;
                    append_exemplars(app, nr, &e.labels, value.exemplars(), t);
                    if cfg.append_metadata {
                        update_metadata(&mut self.metadata, app, nr, &e.labels, false, st);
                    }
                }
                Err(err) => {
                    // A sample refused for its time still brings its exemplar (and its
                    // metadata), and counts among the samples after relabeling, as in
                    // Prometheus.
                    if refused_for_time(&err) {
                        stats.post_relabel += 1;
                        append_exemplars(app, e.r, &e.labels, value.exemplars(), t);
                        if cfg.append_metadata {
                            update_metadata(&mut self.metadata, app, e.r, &e.labels, false, st);
                        }
                    }
                    count_append_error(err)?
                }
            }
            return Ok(());
        }
        let meta = if cfg.type_and_unit_labels {
            st.type_and_unit(&s.name)
        } else {
            None
        };
        let Some(labels) = self.sample_labels(&s, meta)? else {
            let e = Entry {
                r: 0,
                labels: Labels::empty(),
                last_iter: iter,
                prev_iter: 0,
                track_staleness: false,
            };
            self.cache.insert(s.series, e);
            return Ok(());
        };
        if over_limit(stats, st) || !value.prepare(&labels, st)? {
            return Ok(());
        }
        let r = value.start_zero(app, 0, &labels, s.created_ms, t, st);
        match value.append(app, r, &labels, t, st) {
            Ok(r) => {
                stats.post_relabel += 1;
                stats.series_added += 1;
                append_exemplars(app, r, &labels, value.exemplars(), t);
                if cfg.append_metadata {
                    update_metadata(&mut self.metadata, app, r, &labels, true, st);
                }
                let track_staleness = !explicit_ts || cfg.track_timestamps_staleness;
                let e = Entry {
                    r,
                    labels,
                    last_iter: iter,
                    prev_iter: 0,
                    track_staleness,
                };
                self.cache.insert(s.series, e);
            }
            Err(err) => {
                if refused_for_time(&err) {
                    stats.post_relabel += 1;
                    append_exemplars(app, 0, &labels, value.exemplars(), t);
                }
                count_append_error(err)?
            }
        }
        Ok(())
    }

    /// Number of raw series the cache holds.
    pub fn cached_series(&self) -> usize {
        self.cache.len()
    }
}

/// What one body's appends share.
struct BodyState {
    limit_exceeded: bool,
    bucket_limit_exceeded: bool,
    bucket_limit: u64,
    max_schema: i32,
    iter: u32,
    ts: i64,
    /// `created-timestamp-zero-ingestion`: a 0 at each series' created timestamp.
    start_zero: bool,
    /// `type-and-unit-labels`: the family the last `# TYPE`/`# UNIT` line was about, its type
    /// and unit (only tracked with the feature).
    family: Option<(String, MetricType, String)>,
    /// `metadata-wal-records`: the family the last `# TYPE`, `# HELP` or `# UNIT` line was
    /// about (only tracked with the feature), and whether it changed since the last scrape
    /// that succeeded (looked up once per family and body, at its first cached series).
    last_family: String,
    family_pending: Option<bool>,
}

/// How far past the scrape's time a target's own timestamp may be: Prometheus's limit
/// (`maxAheadTime` in its scrape package).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

impl BodyState {
    /// The newest time a sample of this scrape may have.
    fn latest(&self) -> i64 {
        self.ts.saturating_add(MAX_AHEAD_MS)
    }

    /// A metadata line about `family` was read.
    fn declared(&mut self, family: &str, cfg: &ScrapeConfig) {
        if cfg.append_metadata {
            // The family's entry may change with each of its lines.
            self.family_pending = None;
            if self.last_family != family {
                self.last_family.clear();
                self.last_family.push_str(family);
            }
        }
    }

    /// The metadata entry of `family`, started afresh when the body moves to another family.
    fn family_mut(&mut self, family: &str) -> &mut (String, MetricType, String) {
        if self.family.as_ref().is_none_or(|f| f.0 != family) {
            self.family = Some((family.to_string(), MetricType::Unknown, String::new()));
        }
        self.family.as_mut().expect("set above")
    }

    /// The type and unit labels series `name` gets: its family's, if it belongs to the family
    /// last declared.
    fn type_and_unit(&self, name: &str) -> Option<(MetricType, &str)> {
        let (family, kind, unit) = self.family.as_ref()?;
        vigil_model::exposition::belongs_to_family(name, family, *kind)
            .then_some((*kind, unit.as_str()))
    }
}

/// A sample's value with what came with it.
enum Value<'a> {
    Float(f64, Option<vigil_model::exposition::Exemplar<'a>>),
    /// The histogram, whether its counts are integers, its exemplars, whether it was
    /// converted from classic series (custom buckets, checked by the converter).
    Histogram(
        vigil_model::FloatHistogram,
        bool,
        Vec<vigil_model::exposition::Exemplar<'a>>,
        bool,
    ),
}

impl<'a> Value<'a> {
    /// For a histogram whose series is kept (after relabeling, as Prometheus's appender
    /// checks): Prometheus's checks, whose failure fails the scrape, then the resolution
    /// limits; false when it does not fit the bucket limit (the scrape fails at the end).
    fn prepare(&mut self, labels: &Labels, st: &mut BodyState) -> Result<bool, String> {
        let Value::Histogram(h, integer, _, converted) = self else {
            return Ok(true);
        };
        if !*converted {
            proto::check(h, *integer).map_err(|e| format!("{labels}: {e}"))?;
        }
        let fits = fit_histogram(h, st.max_schema, st.bucket_limit);
        st.bucket_limit_exceeded |= !fits;
        Ok(fits)
    }

    /// With `created-timestamp-zero-ingestion`, the 0 at the series' created timestamp before
    /// the sample (a best effort, as in Prometheus: its refusal is neither an error nor
    /// counted); the series ref to append the sample with.
    fn start_zero(
        &self,
        app: &mut dyn Appender,
        r: SeriesRef,
        labels: &Labels,
        created: Option<i64>,
        t: i64,
        st: &BodyState,
    ) -> SeriesRef {
        let Some(start) = created.filter(|_| st.start_zero && t <= st.latest()) else {
            return r;
        };
        let template = match self {
            Value::Float(v, _) if vigil_model::is_stale_nan(*v) => return r,
            Value::Float(..) => None,
            Value::Histogram(h, ..) => Some(h),
        };
        app.append_start_zero(r, labels, start, t, template)
            .unwrap_or(r)
    }

    fn append(
        &self,
        app: &mut dyn Appender,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        st: &BodyState,
    ) -> Result<SeriesRef, AppendError> {
        // A target's own timestamp too far ahead is refused as out of bounds, as Prometheus's
        // scrape refuses it: stored, it would move the head's newest time, and with it head
        // cuts and retention, into the future.
        if t > st.latest() {
            return Err(AppendError::OutOfBounds);
        }
        match self {
            Value::Float(v, _) => app.append(r, labels, t, *v),
            Value::Histogram(h, _, _, _) => app.append_histogram(r, labels, t, h.clone()),
        }
    }

    fn exemplars(&self) -> &[vigil_model::exposition::Exemplar<'a>] {
        match self {
            Value::Float(_, e) => e.as_slice(),
            Value::Histogram(_, _, e, _) => e,
        }
    }
}

/// With `metadata-wal-records`: give the storage the series' metadata when the series is
/// `new` to this target or its family's metadata changed, as Prometheus's scrape loop does
/// (the storage logs only what differs from what it holds). A change counts until a scrape
/// with it succeeded, so a failed scrape does not lose it. A refusal (the series went
/// meanwhile) costs the metadata only, never the scrape.
fn update_metadata(
    tracker: &mut crate::metadata::MetadataTracker,
    app: &mut dyn Appender,
    r: SeriesRef,
    labels: &Labels,
    new: bool,
    st: &mut BodyState,
) {
    if st.last_family.is_empty() {
        return;
    }
    // The steady state: one lookup per family and scrape, nothing allocated.
    if !new
        && !*st
            .family_pending
            .get_or_insert_with(|| tracker.pending(&st.last_family))
    {
        return;
    }
    let Some(name) = labels.metric_name() else {
        return;
    };
    if let Some(meta) = tracker.for_series(&st.last_family, name)
        && let Err(e) = app.update_metadata(r, labels, &meta)
    {
        tracing::debug!(err = %e, series = %labels, "Metadata not stored");
    }
}

/// The finest schema `native_histogram_min_bucket_factor` allows, as Prometheus picks it:
/// the largest whose growth factor `2^(2^-schema)` is at least the factor.
fn max_schema(factor: f64) -> i32 {
    use vigil_model::histogram::{MAX_SCHEMA, MIN_SCHEMA};
    let factor = if factor <= 1.0 { 1.00271 } else { factor };
    let floor = (-factor.log2().log2()).floor();
    if floor >= MAX_SCHEMA as f64 {
        MAX_SCHEMA
    } else if floor <= MIN_SCHEMA as f64 {
        MIN_SCHEMA
    } else {
        floor as i32
    }
}

/// Lower `h`'s resolution to `max_schema`, then until it has at most `limit` buckets (0: no
/// limit); false when it cannot fit (custom buckets, or the coarsest schema reached), which
/// fails the scrape as in Prometheus.
fn fit_histogram(h: &mut vigil_model::FloatHistogram, max_schema: i32, limit: u64) -> bool {
    use vigil_model::histogram::MIN_SCHEMA;
    if h.schema > max_schema {
        h.reduce_resolution(max_schema);
    }
    let n = |h: &vigil_model::FloatHistogram| {
        (h.positive_buckets.len() + h.negative_buckets.len()) as u64
    };
    if limit == 0 {
        return true;
    }
    while n(h) > limit {
        if h.uses_custom_buckets() || h.schema <= MIN_SCHEMA {
            return false;
        }
        h.reduce_resolution(h.schema - 1);
    }
    true
}

/// Hand a sample's exemplar to the storage; without a timestamp it takes the sample's. As in
/// Prometheus, a refused exemplar never fails the scrape: out-of-order ones are counted, the
/// rest logged at debug.
///
/// A native histogram's exemplars come back every scrape (a client keeps its last few), so
/// most of them are older than the newest stored: out-of-order ones are counted only when all
/// of a sample's are, as Prometheus counts them (otherwise it was a partial update).
fn append_exemplars(
    app: &mut dyn Appender,
    r: SeriesRef,
    series: &Labels,
    exs: &[vigil_model::exposition::Exemplar<'_>],
    t: i64,
) {
    let mut out_of_order = 0;
    for ex in exs {
        let mut b = LabelsBuilder::with_capacity(2);
        for (n, v) in ex.labels() {
            b.set(n, v.into_owned());
        }
        let e = vigil_storage::Exemplar {
            labels: b.build(),
            value: ex.value,
            t: ex.timestamp_ms.unwrap_or(t),
        };
        match app.append_exemplar(r, series, e) {
            Ok(()) => {}
            Err(AppendError::Exemplar(vigil_storage::ExemplarError::OutOfOrder)) => {
                out_of_order += 1;
            }
            Err(err) => tracing::debug!(%err, series = %series, "Error while adding exemplar"),
        }
    }
    if out_of_order > 0 && out_of_order == exs.len() {
        metrics::EXEMPLAR_OUT_OF_ORDER.inc_by(out_of_order as u64);
    }
}

/// A sample refused for its time only (the series is fine).
fn refused_for_time(e: &AppendError) -> bool {
    matches!(
        e,
        AppendError::OutOfOrder
            | AppendError::TooOld
            | AppendError::DuplicateTimestamp
            | AppendError::OutOfBounds
    )
}

/// Per-sample append errors are counted and the scrape goes on, as in Prometheus; a series
/// the storage refuses outright fails the scrape.
fn count_append_error(e: AppendError) -> Result<(), String> {
    match e {
        // Prometheus counts a sample older than the out-of-order window as out of order.
        AppendError::OutOfOrder | AppendError::TooOld => metrics::OUT_OF_ORDER.inc(),
        AppendError::DuplicateTimestamp => metrics::DUPLICATE.inc(),
        AppendError::OutOfBounds => metrics::OUT_OF_BOUNDS.inc(),
        AppendError::InvalidLabels(m) | AppendError::InvalidHistogram(m) => return Err(m),
        // The target's new series do not fit: its scrape fails (as over sample_limit), the
        // series of every other target go on.
        e @ (AppendError::SeriesLimit(_) | AppendError::Unsupported(_)) => {
            return Err(e.to_string());
        }
        // Only exemplar appends return these, and they are handled there.
        AppendError::Exemplar(_) => 0,
    };
    Ok(())
}

fn check_label_limits(labels: &Labels, cfg: &ScrapeConfig) -> Result<(), String> {
    let name = labels.metric_name().unwrap_or("");
    let short: String = name.chars().take(50).collect();
    if cfg.label_limit > 0 && labels.len() as u64 > cfg.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {short}, number of labels: {}, limit: {})",
            labels.len(),
            cfg.label_limit
        ));
    }
    for l in labels.iter() {
        if cfg.label_name_length_limit > 0 && l.name.len() as u64 > cfg.label_name_length_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {short}, label name: {}, length: {}, limit: {})",
                l.name.chars().take(50).collect::<String>(),
                l.name.len(),
                cfg.label_name_length_limit
            ));
        }
        if cfg.label_value_length_limit > 0 && l.value.len() as u64 > cfg.label_value_length_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {short}, label name: {}, value: {}, length: {}, limit: {})",
                l.name,
                quote(&l.value.chars().take(50).collect::<String>()),
                l.value.len(),
                cfg.label_value_length_limit
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::FloatHistogram;
    use vigil_model::histogram::Span;

    #[test]
    fn the_min_bucket_factor_picks_prometheus_s_schema() {
        // No factor: the finest schema; 1.1 allows schema 2 (factor 1.19); 2 allows 0;
        // a huge factor stops at the coarsest.
        assert_eq!(max_schema(0.0), 8);
        assert_eq!(max_schema(1.1), 2);
        assert_eq!(max_schema(2.0), 0);
        assert_eq!(max_schema(1e9), -4);
    }

    #[test]
    fn a_histogram_over_the_bucket_limit_loses_resolution_or_fails() {
        let h = FloatHistogram {
            schema: 2,
            count: 10.0,
            sum: 1.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 4,
            }],
            positive_buckets: vec![1.0, 2.0, 3.0, 4.0],
            ..Default::default()
        };
        // Schema 1 merges indexes 1 and 2 into 1, 3 into 2: three buckets fit a limit of 3.
        let mut x = h.clone();
        assert!(fit_histogram(&mut x, 8, 3));
        assert_eq!(x.schema, 1);
        assert_eq!(x.positive(), vec![(0, 1.0), (1, 5.0), (2, 4.0)]);
        // A limit of 2 takes one more step.
        let mut x = h.clone();
        assert!(fit_histogram(&mut x, 8, 2));
        assert_eq!(x.schema, 0);
        assert_eq!(x.positive(), vec![(0, 1.0), (1, 9.0)]);
        let mut x = h.clone();
        assert!(fit_histogram(&mut x, 0, 0));
        assert_eq!(x.schema, 0);
        assert_eq!(x.positive_buckets.iter().sum::<f64>(), 10.0);
        // Custom buckets cannot be merged: over the limit, the scrape fails.
        let mut c = FloatHistogram {
            schema: vigil_model::histogram::CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![1.0, 2.0],
            ..h.clone()
        };
        c.positive_spans[0].length = 3;
        c.positive_buckets.pop();
        assert!(!fit_histogram(&mut c, 8, 2));
    }
}
