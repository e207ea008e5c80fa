//! The server: config, discovery -> scrape -> storage, the web API, reloads and shutdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use parking_lot::RwLock;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use vigil_config::units::parse_size;
use vigil_config::{Config, parse_duration};
use vigil_discovery::{JobSd, Manager as DiscoveryManager};
use vigil_scrape::ScrapeManager;
use vigil_storage::Storage;
use vigil_tsdb::db::{Db, Options as TsdbOptions};
use vigil_web::{AppState, ReloadRequest};

use crate::agent::AgentOptions;
use crate::flags::ServerFlags;
use crate::process_metrics::ProcessCollector;

/// Where the config comes from.
enum ConfigSource {
    File(PathBuf),
    /// No `--config.file` and no `./prometheus.yml`: scrape ourselves.
    Embedded(String),
}

fn embedded_config(listen: &str) -> String {
    let port = listen.rsplit(':').next().unwrap_or("9090");
    let host = listen.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    let host = match host {
        "" | "0.0.0.0" | "[::]" | "::" => "localhost",
        h => h,
    };
    format!(
        "# vigil's embedded default config: used when no --config.file is given and there is no\n\
         # ./prometheus.yml. It scrapes vigil itself.\n\
         global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n\n\
         scrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: [\"{host}:{port}\"]\n"
    )
}

impl ConfigSource {
    /// Load the config; in agent mode also refuse the sections an agent does not run.
    /// `storage.exemplars` without `--enable-feature=exemplar-storage` does nothing, as in
    /// Prometheus, and a warning says so.
    fn load_for(&self, agent: bool, exemplar_storage: bool) -> Result<Config, String> {
        let mut cfg = self.load()?;
        if cfg.storage.exemplars_section && !exemplar_storage {
            cfg.warnings.push(
                "storage.exemplars: has no effect without --enable-feature=exemplar-storage (as in Prometheus)"
                    .into(),
            );
        }
        for (i, r) in cfg.remote_write.iter().enumerate() {
            if r.send_exemplars && !exemplar_storage {
                cfg.warnings.push(format!(
                    "remote_write[{i}].send_exemplars: no exemplar is kept without --enable-feature=exemplar-storage (as in Prometheus), so none is sent"
                ));
            }
        }
        if agent && let Err(e) = cfg.check_agent() {
            return Err(match self {
                ConfigSource::File(p) => format!(
                    "couldn't load configuration (--config.file={:?}): {e}",
                    p.display().to_string()
                ),
                ConfigSource::Embedded(_) => e,
            });
        }
        Ok(cfg)
    }

    fn load(&self) -> Result<Config, String> {
        match self {
            ConfigSource::File(p) => Config::load(p).map_err(|e| {
                format!(
                    "couldn't load configuration (--config.file={:?}): {e}",
                    p.display().to_string()
                )
            }),
            ConfigSource::Embedded(y) => {
                Config::parse(y, Path::new(".")).map_err(|e| e.to_string())
            }
        }
    }
}

struct ReloadMetrics {
    success: Gauge,
    success_ts: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// Everything a reload touches.
struct Reloader {
    source: ConfigSource,
    /// `--agent`: the config may not hold rules, alerting or remote read.
    agent: bool,
    /// `--enable-feature=exemplar-storage`: a reload resizes the exemplar ring (to
    /// `--storage.tsdb.max-exemplars` when given, which the config cannot change).
    exemplar_storage: bool,
    max_exemplars_flag: Option<u64>,
    discovery: DiscoveryManager,
    scrape: Arc<ScrapeManager>,
    rules: Arc<vigil_rules::Manager>,
    notifier: Arc<vigil_rules::notifier::Notifier>,
    /// Rule settings from the flags; the config adds its intervals and external labels.
    rule_flags: vigil_rules::Options,
    state: Arc<AppState>,
    metrics: ReloadMetrics,
    db: Arc<Db>,
    retention_flags: RetentionFlags,
    remote: Arc<vigil_remote::RemoteWrite>,
    /// `--storage.remote.flush-deadline`: how long a queue that goes away may keep sending.
    remote_flush: Duration,
    remote_read: Arc<vigil_remote::read_client::RemoteRead>,
}

/// `--enable-feature=delayed-compaction`'s delay: drawn at random, up to
/// `--storage.tsdb.delayed-compaction.max-percent` (1 to 100, default 10) of the block range,
/// as Prometheus draws it; another whole percentage is warned about and the default used,
/// and a value that is not a whole (decimal) number refused, as there.
fn head_cut_delay(max_percent: Option<&str>, block_range: Duration) -> anyhow::Result<Duration> {
    let pct = match max_percent.map(|s| (s, s.trim().parse::<i64>())) {
        None => 10,
        Some((s, Err(_))) => anyhow::bail!(
            "invalid value {s:?} for flag --storage.tsdb.delayed-compaction.max-percent: a whole number"
        ),
        Some((_, Ok(p))) if (1..=100).contains(&p) => p as u64,
        Some(_) => {
            tracing::warn!(
                default = 10,
                "The --storage.tsdb.delayed-compaction.max-percent should have a value between 1 and 100. Using default"
            );
            10
        }
    };
    let max_ms = (block_range.as_millis() as u64).saturating_mul(pct) / 100;
    if max_ms == 0 {
        return Ok(Duration::ZERO);
    }
    use std::hash::BuildHasher;
    let draw = std::collections::hash_map::RandomState::new().hash_one(0xde1a_u64);
    Ok(Duration::from_millis(draw % max_ms))
}

/// `storage.tsdb.out_of_order_time_window` in milliseconds.
fn late_window_ms(cfg: &Config) -> i64 {
    i64::try_from(cfg.storage.out_of_order_time_window.as_millis()).unwrap_or(i64::MAX)
}

/// The exemplar ring's size: `--storage.tsdb.max-exemplars` if given, else
/// `storage.exemplars.max_exemplars`, else Prometheus's 100000; 0 or less keeps none.
fn max_exemplars(flag: Option<u64>, cfg: &Config) -> usize {
    match flag {
        Some(n) => n as usize,
        None => cfg.storage.max_exemplars.unwrap_or(100_000).max(0) as usize,
    }
}

/// Retention from the flags; the config's `storage.tsdb.retention` wins where it is set (as in
/// current Prometheus, whose retention flags are deprecated in its favour).
struct RetentionFlags {
    time: Option<Duration>,
    bytes: u64,
}

impl RetentionFlags {
    /// `(time, bytes)`: with neither set anywhere, 15 days (Prometheus's default); with only a
    /// size, no time limit.
    fn effective(&self, cfg: &Config) -> (Duration, u64) {
        let time = cfg
            .storage
            .retention_time
            .or(self.time)
            .filter(|d| !d.is_zero());
        let bytes = cfg.storage.retention_size.unwrap_or(self.bytes);
        match (time, bytes) {
            (None, 0) => (Duration::from_secs(15 * 86_400), 0),
            (t, b) => (t.unwrap_or(Duration::ZERO), b),
        }
    }
}

impl Reloader {
    /// Load and apply the config; on any error the running config stays as it was.
    fn reload(&self) -> Result<(), String> {
        let res = self
            .source
            .load_for(self.agent, self.exemplar_storage)
            .and_then(|cfg| {
                // Loud: a configured section that does nothing is never silent.
                let not_running: Vec<String> =
                    cfg.unimplemented().iter().map(|u| u.to_string()).collect();
                for w in &cfg.warnings {
                    if not_running.contains(w) {
                        tracing::error!("NOT RUNNING: {w}");
                    } else {
                        tracing::warn!("{w}");
                    }
                }
                // Rule files are read and checked before anything changes: a bad one fails the
                // reload and the running groups (and everything else) stay.
                let rule_files = vigil_rules::Manager::check(&cfg.rule_files).map_err(|errs| {
                    for e in &errs {
                        tracing::error!(err = %e, "loading groups failed");
                    }
                    format!(
                        "error loading rules, previous rule set restored: {}",
                        errs.join("; ")
                    )
                })?;
                let unmatched_rule_globs = vigil_rules::manager::unmatched(&cfg.rule_files);
                let alerting = vigil_rules::notifier::Notifier::prepare(&cfg.alerting)?;
                let remote_read = self.remote_read.prepare(&cfg)?;
                // Scrape clients are built before remote write changes: a job whose CA file
                // cannot be read fails the reload with every part as it was.
                let scrape = self
                    .scrape
                    .prepare(&cfg.scrape_configs)
                    .map_err(|e| e.to_string())?;
                // Remote write next: it fails (changing nothing) if an endpoint's client cannot
                // be built. Stopping a removed queue waits for its flush, off the async workers.
                tokio::task::block_in_place(|| {
                    self.remote.apply(
                        &cfg.remote_write,
                        &cfg.global.external_labels,
                        self.remote_flush,
                    )
                })?;
                self.scrape.commit(scrape);
                self.remote_read.commit(remote_read);
                self.notifier.commit(alerting, &cfg.global.external_labels);
                self.rules.set_unmatched(unmatched_rule_globs);
                self.rules.apply(
                    rule_files,
                    vigil_rules::Options {
                        default_interval: cfg.global.evaluation_interval,
                        default_query_offset: cfg.global.rule_query_offset,
                        external_labels: cfg
                            .global
                            .external_labels
                            .iter()
                            .map(|l| (l.name.to_string(), l.value.to_string()))
                            .collect(),
                        ..self.rule_flags.clone()
                    },
                );
                self.discovery.apply(
                    cfg.scrape_configs
                        .iter()
                        .map(|sc| (sc.job_name.clone(), JobSd::from_scrape_config(sc)))
                        .collect(),
                );
                let (t, b) = self.retention_flags.effective(&cfg);
                self.db.set_retention(t.as_millis() as i64, b);
                self.db.head().set_out_of_order_window(late_window_ms(&cfg));
                if self.exemplar_storage && !self.agent {
                    self.db
                        .head()
                        .exemplars
                        .resize(max_exemplars(self.max_exemplars_flag, &cfg));
                }
                *self.state.storage_retention.write() = retention_string(t, b);
                *self.state.config.write() = Arc::new(cfg);
                Ok(())
            });
        let status = &self.state.reload_status;
        match &res {
            Ok(()) => {
                self.metrics.success.set(1);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                self.metrics.success_ts.set(now.as_secs_f64());
                status.success.store(true, Ordering::Relaxed);
                status
                    .last_success_ms
                    .store(now.as_millis() as i64, Ordering::Relaxed);
                tracing::info!("Completed loading of configuration file");
            }
            Err(e) => {
                self.metrics.success.set(0);
                status.success.store(false, Ordering::Relaxed);
                tracing::error!(err = %e, "Error reloading config");
            }
        }
        res
    }
}

/// `--query.max-bytes` when not given: a quarter of the memory vigil may use (the machine's,
/// or its cgroup's limit when lower, as in a container) over the query pool's threads (one per
/// core; more queries wait for a thread), so the heaviest API queries running at once cannot
/// take more than that quarter between them. Rule groups evaluate on their own threads, each
/// bounded by the same figure, so many groups at once can add to it.
fn default_query_max_bytes() -> usize {
    let mem = usable_memory();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    (mem / 4 / cores).max(64 << 20) as usize
}

/// The memory vigil may use: the machine's, or its cgroup's limit when lower (a container).
pub(crate) fn usable_memory() -> u64 {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mem_total = read("/proc/meminfo")
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(8 << 30);
    // cgroup v2 `memory.max` ("max" when unlimited), then v1 (a huge number when unlimited).
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    cgroup.map_or(mem_total, |c| c.min(mem_total))
}

fn init_logging(f: &ServerFlags) {
    let filter =
        tracing_subscriber::EnvFilter::new(format!("{},hyper=warn,reqwest=warn", f.log_level));
    // Logs go to stderr, as Prometheus's do, with colours only on a terminal.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if f.log_format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

pub async fn run(flags: ServerFlags) -> Result<()> {
    init_logging(&flags);
    // Flags that are set but not carried out: never silent, and refused ones stop start-up.
    let (warn, not_running, refused) = flags.review();
    for w in &warn {
        tracing::warn!("{w}");
    }
    for n in &not_running {
        tracing::error!("NOT RUNNING: {n}");
    }
    if !refused.is_empty() {
        bail!("refused flag(s): {}", refused.join("; "));
    }
    let agent = flags.agent_mode();
    let given: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(m) = crate::server_flags::mode_conflict(agent, &given) {
        bail!("{m}");
    }
    if agent {
        tracing::info!(
            mode = "agent",
            "Starting vigil in agent mode: scrape and remote write only"
        );
    }
    vigil_scrape::client::install_crypto_provider();
    let start_time = SystemTime::now();

    let source = match &flags.config_file {
        Some(p) => ConfigSource::File(PathBuf::from(p)),
        None if Path::new("prometheus.yml").exists() => {
            ConfigSource::File(PathBuf::from("prometheus.yml"))
        }
        None => ConfigSource::Embedded(embedded_config(
            flags
                .listen_address
                .first()
                .map_or("0.0.0.0:9090", String::as_str),
        )),
    };
    if let ConfigSource::Embedded(_) = source {
        tracing::info!(
            "No --config.file and no ./prometheus.yml: running the embedded config that scrapes vigil itself"
        );
    }
    let exemplar_storage = crate::server_flags::feature(&flags, "exemplar-storage");
    // Before any config is read: it changes a default of the scrape configs.
    vigil_config::set_native_histograms_default(crate::server_flags::feature(
        &flags,
        "native-histograms",
    ));
    vigil_config::set_created_timestamp_zero_ingestion(crate::server_flags::feature(
        &flags,
        "created-timestamp-zero-ingestion",
    ));
    vigil_config::set_extra_scrape_metrics(crate::server_flags::feature(
        &flags,
        "extra-scrape-metrics",
    ));
    vigil_config::set_type_and_unit_labels(crate::server_flags::feature(
        &flags,
        "type-and-unit-labels",
    ));
    vigil_config::set_metadata_wal_records(crate::server_flags::feature(
        &flags,
        "metadata-wal-records",
    ));
    vigil_tsdb::uncached::set(crate::server_flags::feature(&flags, "use-uncached-io"));
    vigil_config::set_otlp_native_delta(crate::server_flags::feature(
        &flags,
        "otlp-native-delta-ingestion",
    ));
    vigil_config::set_otlp_delta_to_cumulative(crate::server_flags::feature(
        &flags,
        "otlp-deltatocumulative",
    ));
    let initial = source
        .load_for(agent, exemplar_storage)
        .map_err(anyhow::Error::msg)?;
    // The web config file and the listener first: a bad --web.config.file stops start-up
    // before storage is opened.
    let max_connections: usize = flags.max_connections.parse().map_err(|_| {
        anyhow::anyhow!(
            "invalid --web.max-connections {:?}: a non-negative integer",
            flags.max_connections
        )
    })?;
    let read_timeout = parse_duration(&flags.read_timeout)
        .map_err(|e| anyhow::anyhow!("invalid --web.read-timeout {:?}: {e}", flags.read_timeout))?;
    let web = vigil_serve::Server::bind(vigil_serve::Options {
        listen: flags.listen_address.clone(),
        web_config: flags.web_config_file.as_ref().map(PathBuf::from),
        max_connections,
        read_timeout: (!read_timeout.is_zero()).then_some(read_timeout),
    })
    .await?;
    let initial_eval_interval_ms = initial.global.evaluation_interval.as_millis() as i64;

    let retention_flag = flags
        .retention_time
        .clone()
        .or(flags.retention_deprecated.clone());
    let retention_time_flag = match retention_flag.as_deref() {
        None | Some("0s") | Some("0") => None,
        Some(s) => Some(
            parse_duration(s)
                .map_err(|e| anyhow::anyhow!("invalid --storage.tsdb.retention.time {s:?}: {e}"))?,
        ),
    };
    let lookback = parse_duration(&flags.lookback_delta).map_err(|e| {
        anyhow::anyhow!(
            "invalid --query.lookback-delta {:?}: {e}",
            flags.lookback_delta
        )
    })?;
    let retention_bytes_flag = match flags.retention_size.as_deref() {
        None | Some("0") | Some("0B") => 0,
        Some(s) => parse_size(s)
            .map_err(|e| anyhow::anyhow!("invalid --storage.tsdb.retention.size {s:?}: {e}"))?,
    };
    let retention_flags = RetentionFlags {
        time: retention_time_flag,
        bytes: retention_bytes_flag,
    };
    let (retention, retention_bytes) = retention_flags.effective(&initial);
    // Both remote write messages unless the flag narrows them (Prometheus 3's default).
    let receiver_messages = if flags.remote_write_receiver_messages.is_empty() {
        vec![
            vigil_remote::receive::Message::V1,
            vigil_remote::receive::Message::V2,
        ]
    } else {
        let mut v = Vec::new();
        for m in flags
            .remote_write_receiver_messages
            .iter()
            .flat_map(|m| m.split(','))
        {
            match vigil_remote::receive::Message::parse(m.trim()) {
                Some(m) => v.push(m),
                None => anyhow::bail!(
                    "invalid --web.remote-write-receiver.accepted-protobuf-messages {m:?}: supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
                ),
            }
        }
        v
    };
    let query_timeout = parse_duration(&flags.query_timeout)
        .map_err(|e| anyhow::anyhow!("invalid --query.timeout {:?}: {e}", flags.query_timeout))?;
    // Beyond the semaphore's most, any number is "no limit" in effect (and would panic there).
    let query_concurrency: usize = match flags.query_max_concurrency.parse::<usize>() {
        Ok(n) if n > 0 => n.min(tokio::sync::Semaphore::MAX_PERMITS),
        _ => anyhow::bail!(
            "invalid --query.max-concurrency {:?}: a positive integer",
            flags.query_max_concurrency
        ),
    };
    let max_concurrent_evals: usize = match flags.rules_max_concurrent_evals.as_deref() {
        None => 4,
        Some(v) => match v.parse() {
            Ok(n) => n,
            _ => {
                anyhow::bail!("invalid --rules.max-concurrent-evals {v:?}: a non-negative integer")
            }
        },
    };
    // 0 is accepted as Prometheus accepts it (every query that loads a sample then fails).
    let query_max_samples: usize = match flags.query_max_samples.parse() {
        Ok(n) => n,
        _ => anyhow::bail!(
            "invalid --query.max-samples {:?}: a non-negative integer",
            flags.query_max_samples
        ),
    };
    // Every scrape body in flight together: a quarter of memory (see `body_pool`), so a
    // target that sends without end, or a gzip body that expands to gigabytes, fails its own
    // scrape instead of taking the process down.
    vigil_scrape::body_pool::set_budget((usable_memory() / 4).min(usize::MAX as u64) as usize);
    let query_max_bytes: usize = match flags.query_max_bytes.as_deref() {
        None => default_query_max_bytes(),
        Some(s) => match parse_size(s) {
            Ok(n) => n as usize,
            Err(e) => anyhow::bail!("invalid --query.max-bytes {s:?}: {e}"),
        },
    };
    let db_dir = PathBuf::from(&flags.tsdb_path);
    let min_block = parse_duration(&flags.min_block_duration).map_err(|e| {
        anyhow::anyhow!(
            "invalid --storage.tsdb.min-block-duration {:?}: {e}",
            flags.min_block_duration
        )
    })?;
    let max_block = match flags.max_block_duration.as_deref() {
        None => None,
        Some(s) => Some(parse_duration(s).map_err(|e| {
            anyhow::anyhow!("invalid --storage.tsdb.max-block-duration {s:?}: {e}")
        })?),
    };
    if min_block.is_zero() {
        anyhow::bail!("--storage.tsdb.min-block-duration must be greater than 0");
    }
    let mut opts = TsdbOptions::new(retention.as_millis() as i64, retention_bytes)
        .with_block_range(
            min_block.as_millis() as i64,
            max_block.map(|d| d.as_millis() as i64),
        );
    opts.no_lockfile = flags.no_lockfile;
    if flags.block_format == "prometheus" {
        opts.block_format = vigil_tsdb::db::BlockFormat::Prometheus;
    }
    // Prometheus parses the flag with or without the feature: a value that is not a whole
    // number stops start-up either way.
    if let Some(v) = flags.delayed_compaction_max_percent.as_deref()
        && v.trim().parse::<i64>().is_err()
    {
        bail!(
            "invalid value {v:?} for flag --storage.tsdb.delayed-compaction.max-percent: a whole number"
        );
    }
    if crate::server_flags::feature(&flags, "delayed-compaction") {
        opts.head_cut_delay =
            head_cut_delay(flags.delayed_compaction_max_percent.as_deref(), min_block)?;
        tracing::info!(delay = ?opts.head_cut_delay, "Delayed compaction: a head cut waits this long once it is due");
    }
    opts.memory_snapshot = crate::server_flags::feature(&flags, "memory-snapshot-on-shutdown");
    opts.overlapping_compaction = flags.allow_overlapping_compaction.unwrap_or(true);
    if let Some(p) = flags.delay_compact_file_path.as_deref() {
        tracing::info!(
            path = p,
            "Compactions will be delayed for blocks not marked as uploaded in the file tracking uploads"
        );
        opts.delay_compact_file = Some(std::path::PathBuf::from(p));
    }
    if let Some(s) = flags
        .wal_segment_size
        .as_deref()
        .filter(|s| !matches!(*s, "0" | "0B"))
    {
        let n = parse_size(s)
            .map_err(|e| anyhow::anyhow!("invalid --storage.tsdb.wal-segment-size {s:?}: {e}"))?;
        if !(10 << 20..=256 << 20).contains(&n) {
            bail!(
                "flag 'storage.tsdb.wal-segment-size' must be set between 10MB and 256MB, got {s}"
            );
        }
        opts.wal.segment_size = n;
    }
    opts.wal.compression = crate::server_flags::wal_compression(
        "storage.tsdb",
        flags.wal_compression,
        flags.wal_compression_type.as_deref(),
    )?;
    // Exemplars go to the ring and the WAL (the agent's: for remote write) only with the
    // feature, as in Prometheus.
    opts.wal.exemplars = exemplar_storage;
    // Series' metadata in the WAL (segments of version 6, which older builds refuse).
    let metadata_records = crate::server_flags::feature(&flags, "metadata-wal-records");
    opts.wal.metadata = metadata_records;
    if exemplar_storage {
        opts.max_exemplars = max_exemplars(flags.max_exemplars, &initial);
    } else if flags.max_exemplars.is_some() {
        tracing::warn!(
            "--storage.tsdb.max-exemplars: has no effect without --enable-feature=exemplar-storage"
        );
    }
    let agent_opts = if agent {
        Some(AgentOptions::from_flags(&flags)?)
    } else {
        None
    };
    let data_dir = match &agent_opts {
        Some(a) => a.dir.clone(),
        None => db_dir.clone(),
    };
    let db = {
        let agent_opts = agent_opts.clone();
        tokio::task::spawn_blocking(move || match agent_opts {
            Some(a) => {
                let mut o = a.tsdb_options();
                o.wal.exemplars = exemplar_storage;
                o.wal.metadata = metadata_records;
                Db::open_agent(&a.dir, o)
            }
            None => Db::open(&db_dir, opts),
        })
        .await?
        .with_context(|| format!("opening storage at {:?}", data_dir.display().to_string()))?
    };
    let db = Arc::new(db);
    // Before anything appends; a reload sets it again.
    db.head().set_out_of_order_window(late_window_ms(&initial));
    // An agent keeps no samples in memory and has no flag to change the limit (the
    // `storage.tsdb.*` flags are server-only, as in Prometheus): no limit, as Prometheus's agent.
    let max_series = if agent {
        0
    } else {
        flags
            .max_head_series
            .unwrap_or_else(default_max_head_series)
    };
    db.head()
        .stats
        .max_series
        .store(max_series, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(max_head_series = max_series, "Head series limit (0: none)");
    let storage: Arc<dyn Storage> = db.clone();
    // `remote_read` endpoints join every query (and rule) read; without `read_recent` only
    // for time before local storage starts: the first block's start, else now, plus two
    // evaluation intervals of margin for start-up (Prometheus's rule).
    let remote_read = {
        let db = db.clone();
        let margin = 2 * initial_eval_interval_ms;
        vigil_remote::read_client::RemoteRead::new(
            tokio::runtime::Handle::current(),
            Box::new(move || {
                let first = db.blocks().iter().map(|b| b.meta.min_time).min();
                first.unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64)
                }) + margin
            }),
            query_max_bytes,
        )
    };
    let queryable: Arc<dyn Storage> = Arc::new(vigil_remote::read_client::Fanout {
        local: storage.clone(),
        remote: remote_read.clone(),
    });
    // Remote write follows the WAL; each queue keeps where it got to under `<data>/remote`.
    let remote = vigil_remote::RemoteWrite::new(
        db.clone(),
        data_dir.join("remote"),
        tokio::runtime::Handle::current(),
    );
    let remote_flush = flag_duration(
        "storage.remote.flush-deadline",
        &flags.remote_flush_deadline,
        "1m",
    )?;
    let remote_read_sample_limit = match flags.remote_read_sample_limit.as_deref() {
        None => 50_000_000,
        Some(v) => v.parse::<u64>().map_err(|e| {
            anyhow::anyhow!("invalid --storage.remote.read-sample-limit {v:?}: {e}")
        })?,
    };
    // Prometheus's default; 0 is no limit, as there.
    let remote_read_concurrent = match flags.remote_read_concurrent_limit.as_deref() {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .map_err(|e| {
                anyhow::anyhow!("invalid --storage.remote.read-concurrent-limit {v:?}: {e}")
            })?
            .min(tokio::sync::Semaphore::MAX_PERMITS),
    };
    let remote_read_max_frame = match flags.remote_read_max_bytes_in_frame.as_deref() {
        None => 1_048_576,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => anyhow::bail!(
                "invalid --storage.remote.read-max-bytes-in-frame {v:?}: a positive number of bytes"
            ),
        },
    };

    // Self-metrics.
    let mut registry = Registry::default();
    vigil_discovery::metrics::register(&mut registry);
    vigil_scrape::metrics::register(&mut registry);
    let reload_metrics = ReloadMetrics {
        success: Gauge::default(),
        success_ts: Gauge::default(),
    };
    registry.register(
        "prometheus_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful.",
        reload_metrics.success.clone(),
    );
    registry.register(
        "prometheus_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration reload.",
        reload_metrics.success_ts.clone(),
    );
    registry.register_collector(Box::new(crate::tsdb_metrics::TsdbCollector {
        db: db.clone(),
    }));
    let query_gate = Arc::new(tokio::sync::Semaphore::new(query_concurrency));
    registry.register_collector(Box::new(crate::engine_metrics::EngineCollector {
        gate: query_gate.clone(),
        max: query_concurrency,
    }));
    let build_info: prometheus_client::metrics::family::Family<Vec<(String, String)>, Gauge> =
        Default::default();
    build_info
        .get_or_create(&vec![
            ("version".into(), env!("CARGO_PKG_VERSION").into()),
            ("branch".into(), "main".into()),
        ])
        .set(1);
    registry.register(
        "vigil_build_info",
        "A metric with a constant '1' value labeled by version.",
        build_info,
    );
    registry.register_collector(Box::new(ProcessCollector {
        start_time_seconds: start_time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    }));
    let registry = Arc::new(registry);

    let scrape = ScrapeManager::new(storage.clone());
    // Remote write 1.0 sends the targets' metric metadata beside the samples.
    {
        let scrape = scrape.clone();
        remote.set_metadata_source(Arc::new(move || {
            scrape
                .targets()
                .active
                .iter()
                .flat_map(|t| t.status.lock().metadata.iter().cloned().collect::<Vec<_>>())
                .collect()
        }));
    }
    let discovery_interval = parse_duration(&flags.discovery_reload_interval).map_err(|e| {
        anyhow::anyhow!(
            "invalid --scrape.discovery-reload-interval {:?}: {e}",
            flags.discovery_reload_interval
        )
    })?;
    let (discovery, targets_rx) =
        DiscoveryManager::with_interval(discovery_interval.max(Duration::from_millis(100)));
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (quit_tx, mut quit_rx) = mpsc::channel::<()>(1);

    let engine = vigil_promql::Engine {
        lookback_ms: lookback.as_millis() as i64,
        subquery_step_ms: initial_eval_interval_ms,
        max_samples: query_max_samples,
        max_bytes: query_max_bytes,
        deadline: None,
        delayed_name_removal: crate::server_flags::feature(&flags, "promql-delayed-name-removal"),
        type_and_unit_labels: crate::server_flags::feature(&flags, "type-and-unit-labels"),
        per_step_stats: crate::server_flags::feature(&flags, "promql-per-step-stats"),
        stats: Default::default(),
    };
    let rules = vigil_rules::Manager::new(queryable.clone(), engine.clone(), query_timeout);
    // As Prometheus: the limit acts only with the feature (0 leaves every rule in the
    // group's own thread, in its batch's order).
    let rules = Arc::new(
        if crate::server_flags::feature(&flags, "concurrent-rule-eval") {
            rules.with_concurrent_evals(max_concurrent_evals)
        } else {
            rules
        },
    );
    let rule_flags = vigil_rules::Options {
        external_url: external_url(&flags),
        outage_tolerance: flag_duration(
            "rules.alert.for-outage-tolerance",
            &flags.alert_for_outage_tolerance,
            "1h",
        )?,
        grace_period: flag_duration(
            "rules.alert.for-grace-period",
            &flags.alert_for_grace_period,
            "10m",
        )?,
        resend_delay: flag_duration("rules.alert.resend-delay", &flags.alert_resend_delay, "1m")?,
        ..Default::default()
    };

    let queue_capacity = flag_count(
        "alertmanager.notification-queue-capacity",
        &flags.notification_queue_capacity,
        10_000,
    )?;
    let batch_size = flag_count(
        "alertmanager.notification-batch-size",
        &flags.notification_batch_size,
        256,
    )?;
    let notifier = vigil_rules::notifier::Notifier::start(queue_capacity, batch_size);
    rules.set_notifier(notifier.clone());

    let agent_stats = Arc::new(crate::agent::AgentStats::default());
    let metrics_agent = agent.then(|| (db.clone(), agent_stats.clone()));
    let metrics_registry = registry.clone();
    let metrics_rules = rules.clone();
    let metrics_notifier = notifier.clone();
    let metrics_remote = remote.clone();
    let metrics_remote_read = remote_read.clone();
    let state = Arc::new(AppState {
        storage: storage.clone(),
        queryable,
        scrape: scrape.clone(),
        discovery_health: discovery.health(),
        rules: rules.clone(),
        notifier: notifier.clone(),
        engine,
        query_timeout,
        query_gate,
        query_pool: vigil_web::query_pool::QueryPool::per_core(),
        dashboards_dir: flags.dashboards_dir.clone(),
        dashboards_provisioning: flags.dashboards_provisioning.clone(),
        route_prefix: vigil_web::route_prefix(
            flags.route_prefix.as_deref(),
            flags.external_url.as_deref(),
        ),
        // The external URL's path wins over the route prefix for links (Prometheus's rule).
        external_path: match flags.external_url.as_deref() {
            Some(u) => vigil_web::route_prefix(None, Some(u)),
            None => vigil_web::route_prefix(flags.route_prefix.as_deref(), None),
        },
        config: RwLock::new(Arc::new(initial)),
        flags: {
            let mut pairs = flags.as_pairs();
            // Prometheus's default file name would say a file is read that is not.
            if matches!(source, ConfigSource::Embedded(_))
                && let Some(p) = pairs.iter_mut().find(|(n, _)| n == "config.file")
            {
                p.1 = "(none: the embedded config that scrapes vigil itself)".into();
            }
            pairs
        },
        metrics: Box::new(move || {
            let mut s = String::new();
            let _ = prometheus_client::encoding::text::encode(&mut s, &metrics_registry);
            // The registry ends with "# EOF"; the rule metrics go before it.
            let mut rules_text = vigil_rules::api::metrics(&metrics_rules.groups())
                + &metrics_notifier.metrics()
                + &metrics_remote.metrics()
                + &metrics_remote_read.metrics();
            if let Some((db, st)) = &metrics_agent {
                rules_text.push_str(&crate::agent::metrics(db, st));
            }
            match s.rfind("# EOF") {
                Some(i) => s.insert_str(i, &rules_text),
                None => s.push_str(&rules_text),
            }
            s
        }),
        tsdb_status: {
            let db = db.clone();
            Box::new(move |limit| crate::tsdb_metrics::status_json(&db, limit))
        },
        enable_lifecycle: flags.enable_lifecycle,
        admin: flags
            .enable_admin_api
            .then(|| Arc::new(DbAdmin(db.clone())) as Arc<dyn vigil_web::Admin>),
        reload: reload_tx,
        quit: quit_tx,
        ready: false.into(),
        start_time,
        reload_status: Default::default(),
        storage_retention: RwLock::new(retention_string(retention, retention_bytes)),
        page_title: flags.page_title.clone(),
        cors: Arc::new(vigil_web::cors::Cors::new(&flags.cors_origin).map_err(anyhow::Error::msg)?),
        user_assets: flags.user_assets.as_ref().map(PathBuf::from),
        receiver_messages,
        receivers_requested: (
            flags.enable_remote_write_receiver,
            flags.enable_otlp_receiver,
        ),
        remote: Some(remote.clone()),
        agent,
        remote_read_max_frame,
        remote_read_gate: (remote_read_concurrent > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(remote_read_concurrent))),
        search_api: crate::server_flags::feature(&flags, "search-api").then_some(
            vigil_web::search::SearchApi {
                max_limit: flags.search_max_limit,
            },
        ),
        remote_read_sample_limit: if remote_read_sample_limit == 0 {
            u64::MAX
        } else {
            remote_read_sample_limit
        },
        wal_corruptions: {
            let db = db.clone();
            Box::new(move || {
                db.head()
                    .stats
                    .wal_corruptions
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
        },
    });

    let reloader = Reloader {
        source,
        agent,
        exemplar_storage,
        max_exemplars_flag: flags.max_exemplars,
        discovery,
        scrape: scrape.clone(),
        rules: rules.clone(),
        notifier: notifier.clone(),
        rule_flags,
        state: state.clone(),
        metrics: reload_metrics,
        db: db.clone(),
        retention_flags,
        remote: remote.clone(),
        remote_flush,
        remote_read,
    };
    if let Err(e) = reloader.reload() {
        bail!("{e}");
    }
    tokio::spawn(scrape.clone().run(targets_rx));

    let app = vigil_web::router(state.clone());
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(web.serve(app, async move {
        let _ = shutdown_rx.wait_for(|v| *v).await;
    }));
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!("Server is ready to receive web requests.");

    // Storage maintenance: cut head blocks, compact, apply retention; an agent truncates its
    // WAL behind remote write instead.
    let maint_db = db.clone();
    // On a thread of its own below the scrapes' priority: at ten million series a block cut
    // takes a core for a minute or more, which scrapes must not wait for.
    let maint_pool = std::sync::Arc::new(vigil_web::query_pool::QueryPool::named(
        "vigil-maintenance",
        1,
        vigil_web::query_pool::MAINTENANCE_NICE,
    ));
    let pool = maint_pool.clone();
    let retention_task = match agent_opts.clone() {
        Some(a) => tokio::spawn(crate::agent::truncate_loop(
            maint_db,
            remote.clone(),
            a,
            agent_stats.clone(),
        )),
        None => tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let d = maint_db.clone();
                let work = move || {
                    let before = d.compactions().ran;
                    let r = d.maintain();
                    (r, d.compactions().ran != before)
                };
                let wrote = match pool.run(work).await {
                    Some((Ok(()), wrote)) => wrote,
                    Some((Err(e), wrote)) => {
                        tracing::error!(err = %e, "Storage maintenance failed");
                        wrote
                    }
                    None => {
                        tracing::error!("Storage maintenance panicked");
                        true
                    }
                };
                // A block written means a head truncated (or blocks merged): memory freed in
                // the middle of the heap, which glibc would keep for the process's life; so
                // do large queries' working memory on the pool threads. The trim locks each
                // malloc arena in turn, so it runs at the scrapes' priority: on the
                // low-priority thread it could be preempted holding an arena that a scrape
                // waits to allocate from.
                let release = move || {
                    (wrote || crate::malloc::worth_releasing()).then(crate::malloc::release_free)
                };
                if let Ok(Some(took)) = tokio::task::spawn_blocking(release).await {
                    tracing::info!(
                        took_ms = took.as_millis() as u64,
                        "Freed memory returned to the kernel"
                    );
                }
            }
        }),
    };

    // `--enable-feature=auto-reload-config`: reload when the file's content changes.
    let auto_reload = match (
        &reloader.source,
        crate::server_flags::feature(&flags, "auto-reload-config"),
    ) {
        (ConfigSource::File(p), true) => {
            let every = match flags.auto_reload_interval.as_deref() {
                None => Duration::from_secs(30),
                Some(s) => parse_duration(s).map_err(|e| {
                    anyhow::anyhow!("invalid --config.auto-reload-interval {s:?}: {e}")
                })?,
            };
            // As Prometheus: at least a second.
            Some((p.clone(), every.max(Duration::from_secs(1))))
        }
        _ => None,
    };
    let checksum = |p: &Path| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(p).ok().hash(&mut h);
        h.finish()
    };
    let mut last_sum = auto_reload.as_ref().map(|(p, _)| checksum(p));
    let mut auto_tick = tokio::time::interval(
        auto_reload
            .as_ref()
            .map_or(Duration::from_secs(3600), |(_, d)| *d),
    );
    auto_tick.tick().await;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            Some(reply) = reload_rx.recv() => {
                let _ = reply.send(reloader.reload());
            }
            _ = hup.recv() => {
                let _ = reloader.reload();
            }
            _ = auto_tick.tick(), if auto_reload.is_some() => {
                if let Some((p, _)) = &auto_reload {
                    let sum = checksum(p);
                    if Some(sum) != last_sum {
                        last_sum = Some(sum);
                        tracing::info!("Configuration file changed: reloading");
                        let _ = reloader.reload();
                    }
                }
            }
            _ = quit_rx.recv() => {
                tracing::warn!("Received termination request via web service, exiting gracefully...");
                break;
            }
            _ = term.recv() => {
                tracing::warn!("Received SIGTERM, exiting gracefully...");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::warn!("Received SIGINT, exiting gracefully...");
                break;
            }
        }
    }
    state.ready.store(false, Ordering::Relaxed);
    retention_task.abort();
    // A pass under way (a cut or a merge) finishes before the process ends, as it did on
    // tokio's blocking pool: the pool runs jobs in turn, so an empty one waits it out.
    maint_pool.run(|| ()).await;
    scrape.stop();
    rules.stop();
    // Queued samples go out for up to `--storage.remote.flush-deadline`; where each queue got
    // to is saved, and the WAL keeps the rest for the next start.
    tokio::task::block_in_place(|| remote.shutdown(remote_flush));
    // Alerts already queued go out first (`--alertmanager.drain-notification-queue-on-shutdown`,
    // on by default as in Prometheus), for at most 10s.
    if flags.drain_notification_queue != Some(false) {
        notifier.drain(Duration::from_secs(10)).await;
    }
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    // Last, once nothing appends (an append racing it is in the WAL after it, and replayed).
    let t = std::time::Instant::now();
    match tokio::task::block_in_place(|| db.write_head_snapshot()) {
        Ok(Some(w)) => {
            tracing::info!(dir = %w.dir.display(), series = w.series, bytes = w.bytes, elapsed = ?t.elapsed(), "Head snapshot written for the next start")
        }
        Ok(None) => {}
        // The WAL holds everything: the next start replays it.
        Err(err) => {
            tracing::error!(%err, "Head snapshot not written: the next start replays the WAL")
        }
    }
    tracing::info!("See you next time!");
    Ok(())
}

/// The admin API over the database.
struct DbAdmin(Arc<Db>);

impl vigil_web::Admin for DbAdmin {
    fn delete_series(
        &self,
        sets: &[Vec<vigil_storage::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> std::io::Result<()> {
        self.0.delete_series(sets, mint, maxt).map(|_| ())
    }

    fn clean_tombstones(&self) -> std::io::Result<()> {
        // Deletes are applied to blocks when issued; nothing is left to clean.
        Ok(())
    }

    fn snapshot(&self, skip_head: bool) -> std::io::Result<String> {
        self.0.snapshot(skip_head)
    }
}

/// The head series limit when `--storage.tsdb.max-head-series` is not given: a series per KiB
/// of half the memory vigil may use (its cgroup's limit, else the machine's RAM). vigil's head
/// takes well under a KiB per series, so the limit stops a cardinality explosion before memory
/// runs out, not a healthy server.
fn default_max_head_series() -> u64 {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let ram = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match cgroup.or(ram) {
        Some(bytes) => (bytes / 2 / 1024).max(100_000),
        None => 0,
    }
}

/// `storageRetention` as Prometheus words it: the time, and the size when one is set
/// (`15d`, `15d or 512MiB`).
fn retention_string(time: Duration, bytes: u64) -> String {
    let t = vigil_model::time::format_duration_ms(time.as_millis() as i64);
    let b = vigil_config::units::format_size(bytes);
    match (time.is_zero(), bytes == 0) {
        (_, true) => t,
        (true, false) => b,
        (false, false) => format!("{t} or {b}"),
    }
}

/// A count flag with Prometheus's default; a malformed value stops start-up naming it.
fn flag_count(name: &str, v: &Option<String>, default: usize) -> Result<usize> {
    match v.as_deref() {
        None => Ok(default),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("invalid --{name} {t:?}: a positive integer"),
        },
    }
}

/// A duration flag with Prometheus's default; a malformed value stops start-up naming it.
fn flag_duration(name: &str, v: &Option<String>, default: &str) -> Result<Duration> {
    let t = v.as_deref().unwrap_or(default);
    parse_duration(t).map_err(|e| anyhow::anyhow!("invalid --{name} {t:?}: {e}"))
}

/// `--web.external-url`, else `http://<hostname>:<port>` of the first listen address, as
/// Prometheus computes it (alert templates and links use it).
fn external_url(flags: &ServerFlags) -> String {
    if let Some(u) = &flags.external_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let port = flags
        .listen_address
        .first()
        .and_then(|a| a.rsplit_once(':').map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| "9090".into());
    format!("http://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_config_targets_own_port() {
        assert!(embedded_config("0.0.0.0:9090").contains("localhost:9090"));
        assert!(embedded_config("127.0.0.1:1234").contains("127.0.0.1:1234"));
    }

    /// The delay is drawn below the percentage of the block range (the default 10 for a
    /// missing or invalid one), and differs between draws (processes); the cut waiting for it
    /// is `a_due_head_cut_waits_for_the_compaction_delay` in the storage crate.
    #[test]
    fn delayed_compaction_draws_its_delay_within_the_percentage() {
        let hour = Duration::from_secs(3600);
        let draw = |p: Option<&str>, range| head_cut_delay(p, range).unwrap();
        let draws: Vec<Duration> = (0..50).map(|_| draw(Some("50"), hour)).collect();
        assert!(draws.iter().all(|d| *d < hour / 2));
        assert!(draws.iter().any(|d| *d != draws[0]), "drawn at random");
        for default in [None, Some("0"), Some("101"), Some("-3")] {
            assert!(
                (0..50).all(|_| draw(default, hour) < hour / 10),
                "{default:?}"
            );
        }
        assert_eq!(draw(Some("100"), Duration::ZERO), Duration::ZERO);
        // As Prometheus's flag parsing: not a whole number, no start.
        for bad in ["x", "1.5"] {
            let e = head_cut_delay(Some(bad), hour).unwrap_err().to_string();
            assert!(e.contains("delayed-compaction.max-percent"), "{e}");
        }
    }
}
