//! The server's command-line flags, by Prometheus's names, and what vigil does with each.
//!
//! Boolean flags parse as kingpin's: `--x` sets one, `--no-x` clears it (rewritten to
//! `--x=false` before parsing, see `crate::argv`), and `--x=true|false` is accepted too.
//!
//! Every flag Prometheus (2.42 and current) accepts is accepted here, so an existing
//! Deployment's arguments work unchanged, and none is silently ignored: [`FLAGS`] says for each
//! whether it works, has no effect by nature (Go runtime tuning, storage internals vigil does
//! differently: warned about when set), configures something vigil does not run yet (logged as
//! NOT RUNNING), or is refused at start-up with the reason. `vigil --write-documentation` prints
//! the table; docs/configuration.md's copy is checked against it in the tests.

use clap::{ArgAction, Args};

/// What vigil does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It works as in Prometheus.
    Works,
    /// It has no effect by its nature in vigil; a warning names it when it is set.
    Warns,
    /// It configures a feature vigil does not run yet; an error-level `NOT RUNNING` line names
    /// it when it is set. (No flag is in this state today; the state stays for the next
    /// Prometheus flag that vigil can accept before it runs it.)
    #[allow(dead_code)]
    NotRunning,
}

/// One flag: its name (without `--`), what vigil does with it, and a note (for `Works`, what
/// it does; otherwise why).
pub struct FlagInfo {
    pub name: &'static str,
    pub kind: Kind,
    pub note: &'static str,
}

const fn f(name: &'static str, kind: Kind, note: &'static str) -> FlagInfo {
    FlagInfo { name, kind, note }
}

impl FlagInfo {
    /// The flag's `--help` text: its note, marked as having no effect or as not running
    /// where it is so.
    pub fn help(&self) -> String {
        let note = self.note.replace('`', "");
        match self.kind {
            Works => note,
            Warns => format!("No effect: {note}"),
            NotRunning => format!("NOT RUNNING in vigil yet: {note}"),
        }
    }
}

/// The table's entry for `--name`.
pub fn info(name: &str) -> Option<&'static FlagInfo> {
    FLAGS.iter().find(|f| f.name == name)
}

use Kind::*;

/// Every server flag.
pub const FLAGS: &[FlagInfo] = &[
    f(
        "config.file",
        Works,
        "`prometheus.yml` (else the embedded self-scrape config)",
    ),
    f(
        "config.auto-reload-interval",
        Works,
        "with `--enable-feature=auto-reload-config`: reload when the config file's content changes, checked this often (default 30s)",
    ),
    f(
        "web.listen-address",
        Works,
        "address to serve on (default `0.0.0.0:9090`); repeat it to serve on several",
    ),
    f(
        "web.config.file",
        Works,
        "TLS, client certificates, basic auth, headers, rate limit (the exporter toolkit's file)",
    ),
    f(
        "web.read-timeout",
        Works,
        "longest wait for a request's headers, on an idle connection and for a TLS handshake (default 5m); an HTTP/2 connection (TLS with `http2`) that starts no request for that long is closed",
    ),
    f(
        "web.max-connections",
        Works,
        "connections served at once; more wait to be accepted (default 512)",
    ),
    f(
        "web.search.max-limit",
        Works,
        "with `--enable-feature=search-api`, the largest `limit` a request to `/api/v1/search/*` may ask for; 0 is no cap (default 10000)",
    ),
    f(
        "web.external-url",
        Works,
        "the URL users reach vigil at: links, and the route prefix's default",
    ),
    f(
        "web.route-prefix",
        Works,
        "prefix of every route (default: the external URL's path)",
    ),
    f("web.user-assets", Works, "a directory served at `/user/`"),
    f(
        "web.enable-lifecycle",
        Works,
        "`POST /-/reload` and `/-/quit`",
    ),
    f("web.enable-admin-api", Works, "`/api/v1/admin/tsdb/*`"),
    f("web.page-title", Works, "the UI's page title"),
    f(
        "web.cors.origin",
        Works,
        "anchored regular expression of the origins the API answers cross-origin (default `.*`)",
    ),
    f(
        "web.enable-remote-write-receiver",
        Works,
        "`POST /api/v1/write` stores remote write 1.0 and 2.0 (snappy protobuf) requests",
    ),
    f(
        "web.remote-write-receiver.accepted-protobuf-messages",
        Works,
        "the messages the receiver takes, repeatable: `prometheus.WriteRequest` (1.0), `io.prometheus.write.v2.Request` (2.0); others are answered 415 (default: both)",
    ),
    f(
        "web.enable-otlp-receiver",
        Works,
        "`POST /api/v1/otlp/v1/metrics` stores OTLP metrics (protobuf or JSON, plain or gzip) as Prometheus translates them, with the config's `otlp:` settings",
    ),
    f(
        "web.console.templates",
        Warns,
        "vigil has no console templates (as Prometheus 3)",
    ),
    f(
        "web.console.libraries",
        Warns,
        "vigil has no console templates (as Prometheus 3)",
    ),
    f(
        "web.max-notifications-subscribers",
        Warns,
        "vigil's UI has no live notifications",
    ),
    f(
        "storage.tsdb.path",
        Works,
        "the data directory (default `data/`); a Prometheus data directory is read as it is (its blocks served; its WAL and head chunks carried into blocks and vigil's own WAL at start)",
    ),
    f(
        "storage.tsdb.retention.time",
        Works,
        "how long samples are kept (default 15d unless a size is set; the config's `storage.tsdb.retention` wins), counted back from the newest block's end as Prometheus counts it, but never from later than now: a block reaching into the future (from remote-written samples with future times) does not doom the others",
    ),
    f(
        "storage.tsdb.retention.size",
        Works,
        "most bytes kept on disk (blocks, the WAL and the head chunk files, as Prometheus counts them), the oldest blocks dropped first (`512MB`, `1.5GiB`)",
    ),
    f(
        "storage.tsdb.retention",
        Works,
        "deprecated alias of `--storage.tsdb.retention.time`",
    ),
    f(
        "storage.tsdb.min-block-duration",
        Works,
        "range of the blocks the head is cut into (default 2h)",
    ),
    f(
        "storage.tsdb.max-block-duration",
        Works,
        "longest block compaction builds (default 10% of retention, at most 31d)",
    ),
    f(
        "storage.tsdb.wal-segment-size",
        Works,
        "size WAL segments are cut at, 10MiB to 256MiB (default 128MiB)",
    ),
    f(
        "storage.tsdb.no-lockfile",
        Works,
        "do not lock `<path>/lock`",
    ),
    f(
        "storage.tsdb.block-format",
        Works,
        "vigil's own: `vigil` (default) or `prometheus`: the format of the blocks vigil writes (head blocks, compactions); `prometheus` writes index v2 and XOR chunks as Prometheus does, for a Thanos sidecar or a way back; measured at 2.24x the disk of vigil's format",
    ),
    f(
        "storage.tsdb.max-exemplars",
        Works,
        "vigil's own: with `--enable-feature=exemplar-storage`, how many exemplars the ring holds, over `storage.exemplars.max_exemplars` (a reload cannot change it then); warns without the feature (default: the config's, else 100000)",
    ),
    f(
        "storage.tsdb.max-head-series",
        Works,
        "vigil's own: most series the head holds; past it a target's new series fail its scrape (as `sample_limit`) while other targets go on; `0` for none (default: a series per KiB of half the memory vigil may use)",
    ),
    f(
        "storage.tsdb.wal-compression",
        Works,
        "snappy-compress WAL records (default on, as Prometheus; measured 0.73x the WAL bytes for 1.09x the CPU)",
    ),
    f(
        "storage.tsdb.wal-compression-type",
        Works,
        "`snappy` (the default); `zstd` is refused at start-up: vigil compresses with snappy only",
    ),
    f(
        "storage.tsdb.head-chunks-write-queue-size",
        Warns,
        "vigil writes full head chunks to `head-chunks/` in batches from the thread that commits or truncates; there is no queue to size",
    ),
    f(
        "storage.tsdb.samples-per-chunk",
        Warns,
        "vigil's head chunks hold 120 samples; its block chunks 480, or for a series of more than 480 samples in a block up to 7,680 with a seek point every 240",
    ),
    f(
        "storage.tsdb.max-block-chunk-segment-size",
        Warns,
        "vigil writes one chunk file per block",
    ),
    f(
        "storage.tsdb.allow-overlapping-blocks",
        Warns,
        "deprecated in Prometheus, which always allows them; vigil always reads overlapping blocks (a backfill, Prometheus's own) and queries merge them",
    ),
    f(
        "storage.tsdb.allow-overlapping-compaction",
        Works,
        "blocks whose time ranges overlap are merged into one before any other compaction, as Prometheus's planner merges them (default true); `=false` leaves them for another component (Thanos, Mimir) to merge (the level compaction still merges overlapping blocks that fall within one of its windows, as Prometheus's does), and queries merge them as always",
    ),
    f(
        "storage.tsdb.delayed-compaction.max-percent",
        Works,
        "with `--enable-feature=delayed-compaction`: the longest delay of a head cut once it is due, in percent of the block range (1 to 100, another whole number warned about and 10 used; default 10), the delay drawn at random per process and checked at the once-a-minute maintenance pass; without the feature the flag has no effect (warned)",
    ),
    f(
        "storage.tsdb.delay-compact-file.path",
        Works,
        "a JSON file of uploaded blocks (a Thanos sidecar's `thanos.shipper.json`), read at each compaction: level-1 blocks not listed there, and blocks after them, are not merged yet, as in Prometheus 3.9+; a file that cannot be read or parsed holds nothing back (logged)",
    ),
    f(
        "storage.tsdb.block-reload-interval",
        Warns,
        "vigil reloads its own blocks when it writes them",
    ),
    f(
        "storage.remote.flush-deadline",
        Works,
        "how long remote write queues keep sending at shutdown or when a reload removes them (default 1m)",
    ),
    f(
        "storage.remote.read-sample-limit",
        Works,
        "most samples one remote read request returns (default 5e7; 0: no limit)",
    ),
    f(
        "storage.remote.read-concurrent-limit",
        Works,
        "most remote read requests served at once; more wait their turn (default 10; 0: no limit)",
    ),
    f(
        "storage.remote.read-max-bytes-in-frame",
        Works,
        "about the most bytes of one frame of a streamed (`STREAMED_XOR_CHUNKS`) remote read response, before compression (default 1048576)",
    ),
    f(
        "rules.alert.for-outage-tolerance",
        Works,
        "how long vigil may have been down for an alert's `for` progress to be restored at start (default 1h)",
    ),
    f(
        "rules.alert.for-grace-period",
        Works,
        "least time left to wait after a restore before an alert fires (default 10m)",
    ),
    f(
        "rules.alert.resend-delay",
        Works,
        "least time before a firing alert is sent to Alertmanager again (default 1m)",
    ),
    f(
        "rules.max-concurrent-evals",
        Works,
        "with `--enable-feature=concurrent-rule-eval`: rule evaluations at once across all groups (default 4); without the feature each group's rules run in order and the flag has no effect (warned)",
    ),
    f(
        "alertmanager.notification-queue-capacity",
        Works,
        "alerts waiting to be sent; when full the oldest are dropped and counted (default 10000)",
    ),
    f(
        "alertmanager.notification-batch-size",
        Works,
        "alerts per request to Alertmanager (default 256, as current Prometheus)",
    ),
    f(
        "alertmanager.drain-notification-queue-on-shutdown",
        Works,
        "send queued alerts before exiting, for at most 10s (default true)",
    ),
    f(
        "alertmanager.timeout",
        Warns,
        "deprecated no-op in Prometheus 2.42, removed in 3",
    ),
    f(
        "query.lookback-delta",
        Works,
        "how far back an instant selector looks (default 5m)",
    ),
    f(
        "query.timeout",
        Works,
        "longest a query may run, waiting for a slot included (default 2m); series, label and search requests and federation are held to it too, and TSDB-status requests while they wait, unlike Prometheus",
    ),
    f(
        "query.max-concurrency",
        Works,
        "queries admitted at once, series, label, search and TSDB-status requests among them (unlike Prometheus); more wait for a slot (default 20)",
    ),
    f(
        "query.max-samples",
        Works,
        "most samples one query may hold at once, as Prometheus counts them: a range function's input counts while its series is evaluated, results and selectors returned as they are count until the answer (default 50000000)",
    ),
    f(
        "query.max-bytes",
        Works,
        "vigil's own: bytes of samples and series labels one query may load (labels it reads by reference from the head are not counted), checked as each series is read (and each selection's decoded `remote_read` answers before they are read), past which it fails as `--query.max-samples` does; `0` for none (default: a quarter of the memory vigil may use, over the number of query threads, one per core)",
    ),
    f(
        "scrape.discovery-reload-interval",
        Works,
        "how often discovered targets reach the scrape pools (default 5s)",
    ),
    f(
        "scrape.adjust-timestamps",
        Warns,
        "vigil stores scrape timestamps as taken",
    ),
    f(
        "scrape.timestamp-tolerance",
        Warns,
        "vigil stores scrape timestamps as taken",
    ),
    f(
        "enable-feature",
        Works,
        "comma-separated features: `auto-reload-config`, `concurrent-rule-eval`, `created-timestamp-zero-ingestion`, `delayed-compaction`, `exemplar-storage`, `memory-snapshot-on-shutdown`, `metadata-wal-records`, `native-histograms`, `ooo-native-histograms`, `otlp-deltatocumulative`, `otlp-native-delta-ingestion`, `promql-binop-fill-modifiers`, `promql-delayed-name-removal`, `promql-per-step-stats`, `search-api`, `type-and-unit-labels`, `use-uncached-io` and `extra-scrape-metrics` work; the others are named in a warning with what vigil does instead",
    ),
    f(
        "auto-gomaxprocs",
        Warns,
        "Go runtime tuning; vigil sizes its threads from the CPUs it may use",
    ),
    f("auto-gomemlimit", Warns, "Go runtime tuning"),
    f("auto-gomemlimit.ratio", Warns, "Go runtime tuning"),
    f("log.level", Works, "`debug`, `info`, `warn`, `error`"),
    f("log.format", Works, "`logfmt` (text) or `json`"),
    f(
        "write-documentation",
        Works,
        "print this table (Markdown) and exit",
    ),
    f(
        "agent",
        Works,
        "agent mode: scrape and remote-write only; samples live in a WAL until sent, no queries, rules or alerts (the server-only flags, and `rule_files`, `alerting`, `remote_read` in the config, are refused)",
    ),
    f(
        "storage.agent.path",
        Works,
        "the agent's WAL directory (default `data-agent/`)",
    ),
    f(
        "storage.agent.wal-compression",
        Works,
        "snappy-compress the agent's WAL records (default on, as Prometheus)",
    ),
    f(
        "storage.agent.wal-compression-type",
        Works,
        "`snappy` (the default); `zstd` is refused at start-up: vigil compresses with snappy only",
    ),
    f(
        "storage.agent.wal-segment-size",
        Works,
        "size of a WAL segment, 10MB to 256MB (default 128MB)",
    ),
    f(
        "storage.agent.wal-truncate-frequency",
        Works,
        "how often the WAL is truncated (default 2h)",
    ),
    f(
        "storage.agent.retention.min-time",
        Works,
        "WAL segments written more recently than this are kept even when sent (default 5m)",
    ),
    f(
        "storage.agent.retention.max-time",
        Works,
        "WAL segments written longer ago than this are dropped even when not sent, e.g. through a long receiver outage (default 4h)",
    ),
    f(
        "storage.agent.no-lockfile",
        Works,
        "do not take `<storage.agent.path>/lock`",
    ),
    f(
        "dashboards.dir",
        Works,
        "vigil's own: a directory of Grafana dashboards rendered at `/dashboards`",
    ),
    f(
        "dashboards.provisioning",
        Works,
        "vigil's own: a Grafana provisioning file whose file providers' paths load as `--dashboards.dir`",
    ),
];

/// The table as Markdown: the flag section of docs/configuration.md.
pub fn documentation() -> String {
    let mut s = String::from("| flag | what vigil does |\n| --- | --- |\n");
    for fl in FLAGS {
        let what = match fl.kind {
            Works => fl.note.to_string(),
            Warns => format!("accepted, no effect (warns when set): {}", fl.note),
            NotRunning => format!("accepted, NOT RUNNING (logged when set): {}", fl.note),
        };
        s.push_str(&format!("| `--{}` | {what} |\n", fl.name));
    }
    s
}

/// The server's flags as clap parses them. Their help is [`FLAGS`]'s note, set by
/// `crate::flags::command`, so `--help` and docs/configuration.md say the same.
#[derive(Args, Debug, Clone)]
pub struct ServerFlags {
    /// Every flag given on the command line, by name, with its value as given (repeated ones
    /// joined by commas): set by `main` from clap's matches, for the flags page.
    #[arg(skip)]
    pub given: Vec<(String, String)>,
    #[arg(long = "config.file")]
    pub config_file: Option<String>,
    #[arg(long = "config.auto-reload-interval")]
    pub auto_reload_interval: Option<String>,
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: Vec<String>,
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<String>,
    #[arg(long = "web.read-timeout", default_value = "5m")]
    pub read_timeout: String,
    #[arg(long = "web.max-connections", default_value = "512")]
    pub max_connections: String,
    #[arg(long = "web.search.max-limit", default_value_t = 10_000)]
    pub search_max_limit: usize,
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,
    #[arg(long = "web.route-prefix")]
    pub route_prefix: Option<String>,
    #[arg(long = "web.user-assets")]
    pub user_assets: Option<String>,
    #[arg(long = "web.enable-lifecycle", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub enable_lifecycle: bool,
    #[arg(long = "web.enable-admin-api", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub enable_admin_api: bool,
    #[arg(long = "web.page-title", default_value = "vigil")]
    pub page_title: String,
    #[arg(long = "web.cors.origin", default_value = ".*")]
    pub cors_origin: String,
    #[arg(long = "web.enable-remote-write-receiver", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub enable_remote_write_receiver: bool,
    #[arg(long = "web.remote-write-receiver.accepted-protobuf-messages")]
    pub remote_write_receiver_messages: Vec<String>,
    #[arg(long = "web.enable-otlp-receiver", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub enable_otlp_receiver: bool,
    #[arg(long = "web.console.templates")]
    pub console_templates: Option<String>,
    #[arg(long = "web.console.libraries")]
    pub console_libraries: Option<String>,
    #[arg(long = "web.max-notifications-subscribers")]
    pub max_notifications_subscribers: Option<String>,
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: String,
    #[arg(long = "storage.tsdb.retention.time")]
    pub retention_time: Option<String>,
    #[arg(long = "storage.tsdb.retention.size")]
    pub retention_size: Option<String>,
    #[arg(long = "storage.tsdb.retention", hide = true)]
    pub retention_deprecated: Option<String>,
    #[arg(
        long = "storage.tsdb.min-block-duration",
        default_value = "2h",
        hide = true
    )]
    pub min_block_duration: String,
    #[arg(long = "storage.tsdb.max-block-duration", hide = true)]
    pub max_block_duration: Option<String>,
    #[arg(long = "storage.tsdb.wal-segment-size", hide = true)]
    pub wal_segment_size: Option<String>,
    #[arg(long = "storage.tsdb.max-head-series")]
    pub max_head_series: Option<u64>,
    #[arg(long = "storage.tsdb.max-exemplars")]
    pub max_exemplars: Option<u64>,
    #[arg(long = "storage.tsdb.block-format", default_value = "vigil", value_parser = ["vigil", "prometheus"])]
    pub block_format: String,
    #[arg(long = "storage.tsdb.no-lockfile", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub no_lockfile: bool,
    #[arg(long = "storage.tsdb.wal-compression", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub wal_compression: Option<bool>,
    #[arg(long = "storage.tsdb.wal-compression-type", hide = true, value_parser = ["snappy", "zstd"])]
    pub wal_compression_type: Option<String>,
    #[arg(long = "storage.tsdb.head-chunks-write-queue-size")]
    pub head_chunks_write_queue_size: Option<String>,
    #[arg(long = "storage.tsdb.samples-per-chunk", hide = true)]
    pub samples_per_chunk: Option<String>,
    #[arg(long = "storage.tsdb.max-block-chunk-segment-size", hide = true)]
    pub max_block_chunk_segment_size: Option<String>,
    #[arg(long = "storage.tsdb.allow-overlapping-blocks", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub allow_overlapping_blocks: Option<bool>,
    #[arg(long = "storage.tsdb.allow-overlapping-compaction", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub allow_overlapping_compaction: Option<bool>,
    #[arg(long = "storage.tsdb.delayed-compaction.max-percent", hide = true)]
    pub delayed_compaction_max_percent: Option<String>,
    #[arg(long = "storage.tsdb.delay-compact-file.path")]
    pub delay_compact_file_path: Option<String>,
    #[arg(long = "storage.tsdb.block-reload-interval", hide = true)]
    pub block_reload_interval: Option<String>,
    #[arg(long = "storage.remote.flush-deadline")]
    pub remote_flush_deadline: Option<String>,
    #[arg(long = "storage.remote.read-sample-limit")]
    pub remote_read_sample_limit: Option<String>,
    #[arg(long = "storage.remote.read-concurrent-limit")]
    pub remote_read_concurrent_limit: Option<String>,
    #[arg(long = "storage.remote.read-max-bytes-in-frame")]
    pub remote_read_max_bytes_in_frame: Option<String>,
    #[arg(long = "rules.alert.for-outage-tolerance")]
    pub alert_for_outage_tolerance: Option<String>,
    #[arg(long = "rules.alert.for-grace-period")]
    pub alert_for_grace_period: Option<String>,
    #[arg(long = "rules.alert.resend-delay")]
    pub alert_resend_delay: Option<String>,
    #[arg(long = "rules.max-concurrent-evals")]
    pub rules_max_concurrent_evals: Option<String>,
    #[arg(long = "alertmanager.notification-queue-capacity")]
    pub notification_queue_capacity: Option<String>,
    #[arg(long = "alertmanager.notification-batch-size")]
    pub notification_batch_size: Option<String>,
    #[arg(long = "alertmanager.drain-notification-queue-on-shutdown", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub drain_notification_queue: Option<bool>,
    #[arg(long = "alertmanager.timeout", hide = true)]
    pub alertmanager_timeout: Option<String>,
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub lookback_delta: String,
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,
    #[arg(long = "query.max-concurrency", default_value = "20")]
    pub query_max_concurrency: String,
    #[arg(long = "query.max-samples", default_value = "50000000")]
    pub query_max_samples: String,
    #[arg(long = "query.max-bytes")]
    pub query_max_bytes: Option<String>,
    #[arg(
        long = "scrape.discovery-reload-interval",
        default_value = "5s",
        hide = true
    )]
    pub discovery_reload_interval: String,
    #[arg(long = "scrape.adjust-timestamps", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub scrape_adjust_timestamps: Option<bool>,
    #[arg(long = "scrape.timestamp-tolerance", hide = true)]
    pub scrape_timestamp_tolerance: Option<String>,
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,
    #[arg(long = "auto-gomaxprocs", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub auto_gomaxprocs: Option<bool>,
    #[arg(long = "auto-gomemlimit", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub auto_gomemlimit: Option<bool>,
    #[arg(long = "auto-gomemlimit.ratio")]
    pub auto_gomemlimit_ratio: Option<String>,
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
    #[arg(long = "write-documentation", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub write_documentation: bool,
    #[arg(long = "agent", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true)]
    pub agent: Option<bool>,
    #[arg(long = "storage.agent.path", hide = true)]
    pub agent_path: Option<String>,
    #[arg(long = "storage.agent.wal-compression", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub agent_wal_compression: Option<bool>,
    #[arg(long = "storage.agent.wal-compression-type", hide = true, value_parser = ["snappy", "zstd"])]
    pub agent_wal_compression_type: Option<String>,
    #[arg(long = "storage.agent.wal-segment-size", hide = true)]
    pub agent_wal_segment_size: Option<String>,
    #[arg(long = "storage.agent.wal-truncate-frequency", hide = true)]
    pub agent_wal_truncate_frequency: Option<String>,
    #[arg(long = "storage.agent.retention.min-time", hide = true)]
    pub agent_retention_min_time: Option<String>,
    #[arg(long = "storage.agent.retention.max-time", hide = true)]
    pub agent_retention_max_time: Option<String>,
    #[arg(long = "storage.agent.no-lockfile", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, require_equals = true, hide = true)]
    pub agent_no_lockfile: Option<bool>,
    #[arg(long = "dashboards.dir")]
    pub dashboards_dir: Option<std::path::PathBuf>,
    #[arg(long = "dashboards.provisioning")]
    pub dashboards_provisioning: Option<std::path::PathBuf>,
}

/// Features `--enable-feature` names, and what vigil does about each.
const FEATURES: &[(&str, Option<&str>)] = &[
    ("auto-reload-config", None),
    ("exemplar-storage", None),
    // Works as in Prometheus 2.40 to 3.8: `scrape_native_histograms` defaults to true (3.9
    // and later ignore the flag; the config field decides).
    ("native-histograms", None),
    // Late native histograms are taken within `storage.tsdb.out_of_order_time_window`, as in
    // Prometheus 3.4 and later, where the flag is a no-op.
    ("ooo-native-histograms", None),
    // The head written whole at shutdown and loaded at the next start (`head::snapshot`).
    ("memory-snapshot-on-shutdown", None),
    (
        "expand-external-labels",
        Some("always on (as in Prometheus 3): `$VAR` in external label values is expanded"),
    ),
    // `scrape_timeout_seconds`, `scrape_sample_limit`, `scrape_body_size_bytes` per scrape.
    ("extra-scrape-metrics", None),
    // A 0 at each counter's, summary's and histogram's created timestamp; protobuf first.
    ("created-timestamp-zero-ingestion", None),
    // A group's rules that read none of each other run side by side.
    ("concurrent-rule-eval", None),
    (
        "promql-experimental-functions",
        Some("vigil's experimental PromQL functions are always on"),
    ),
    // `stats=all` on the query API adds the samples read at each step.
    ("promql-per-step-stats", None),
    (
        "promql-at-modifier",
        Some("always on (as in Prometheus 2.33+)"),
    ),
    (
        "promql-negative-offset",
        Some("always on (as in Prometheus 2.33+)"),
    ),
    (
        "no-default-scrape-port",
        Some("always on (as in Prometheus 3)"),
    ),
    (
        "new-service-discovery-manager",
        Some("vigil has one discovery manager"),
    ),
    (
        "agent",
        Some(
            "Prometheus 2's spelling of --agent: vigil runs as an agent (Prometheus 3 ignores it and runs a server); use --agent",
        ),
    ),
    // Current Prometheus's features (its `cmd/prometheus/main.go`): what vigil does instead.
    (
        "promql-duration-expr",
        Some(
            "duration expressions (`x[5m * 2]`, `offset (step())`) are always on, as in Prometheus 3.14+",
        ),
    ),
    // Functions and operators mark their results; the names go when the result is assembled.
    ("promql-delayed-name-removal", None),
    (
        "promql-extended-range-selectors",
        Some(
            "the `anchored` and `smoothed` range modifiers are always on, as current Prometheus made them stable",
        ),
    ),
    // `fill()`, `fill_left()`, `fill_right()` after a binary operator.
    ("promql-binop-fill-modifiers", None),
    // Scraped series and remote write 2.0 series carry `__type__` and `__unit__`.
    ("type-and-unit-labels", None),
    // Series' metadata logged in the WAL on change; remote write 2.0 sends each series' own.
    ("metadata-wal-records", None),
    // A head cut waits a random delay once due (`--storage.tsdb.delayed-compaction.max-percent`).
    ("delayed-compaction", None),
    // Block files leave the page cache once written (`vigil_tsdb::uncached`).
    ("use-uncached-io", None),
    ("old-ui", Some("vigil has one UI")),
    // Delta points summed per stream into cumulative ones before translation.
    ("otlp-deltatocumulative", None),
    // Delta sums and histograms stored as they come (type unknown, gauge histograms).
    ("otlp-native-delta-ingestion", None),
    (
        "st-storage",
        Some(
            "vigil keeps no start timestamp per sample (created-timestamp-zero-ingestion stores a 0 at each)",
        ),
    ),
    (
        "histograms-st-encoding",
        Some("vigil keeps no start timestamps in histogram chunks"),
    ),
    (
        "use-start-timestamps",
        Some("rate, irate, increase and resets do not read start timestamps in vigil"),
    ),
    (
        "st-synthesis",
        Some("vigil synthesises no start timestamps"),
    ),
    (
        "xor2-encoding",
        Some("vigil writes Prometheus's XOR float chunks"),
    ),
    (
        "fast-startup",
        Some("vigil writes no series_state.json; it starts by replaying its WAL, fast"),
    ),
    // `/api/v1/search/*`: names and values matched and scored as current Prometheus does.
    ("search-api", None),
];

/// Prometheus's rule for mixing modes, over the flags given on the command line (`args`,
/// without the program name): in agent mode the server-only flags are refused, in server mode
/// the agent-only ones; the message is Prometheus's.
pub fn mode_conflict(agent: bool, args: &[String]) -> Option<String> {
    let given: Vec<String> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a))
        .map(|a| a.strip_prefix("no-").unwrap_or(a).to_string())
        .collect();
    let server_only = |f: &str| {
        [
            "storage.tsdb.",
            "storage.remote.read-",
            "rules.",
            "alertmanager.",
            "query.",
        ]
        .iter()
        .any(|p| f.starts_with(p))
    };
    let agent_only = |f: &str| f.starts_with("storage.agent.");
    let bad: Vec<String> = given
        .iter()
        .filter(|f| if agent { server_only(f) } else { agent_only(f) })
        .map(|f| format!("\"--{f}\""))
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(format!(
        "The following flag(s) can {} agent mode: [{}]",
        if agent {
            "not be used in"
        } else {
            "only be used in"
        },
        bad.join(" ")
    ))
}

/// The WAL compression `--<prefix>.wal-compression` and `--<prefix>.wal-compression-type`
/// ask for (on, snappy, by default as in Prometheus); zstd is refused by name.
pub fn wal_compression(
    prefix: &str,
    on: Option<bool>,
    kind: Option<&str>,
) -> anyhow::Result<vigil_tsdb::wal::Compression> {
    use vigil_tsdb::wal::Compression;
    if !on.unwrap_or(true) {
        return Ok(Compression::None);
    }
    match kind.unwrap_or("snappy") {
        "snappy" => Ok(Compression::Snappy),
        other => anyhow::bail!(
            "--{prefix}.wal-compression-type={other}: vigil compresses its WAL with snappy only; use snappy or --no-{prefix}.wal-compression"
        ),
    }
}

/// Whether `--enable-feature` names `name`.
pub fn feature(flags: &ServerFlags, name: &str) -> bool {
    flags.enable_feature.iter().any(|f| f.trim() == name)
}

impl ServerFlags {
    /// Agent mode: `--agent`, or Prometheus 2's `--enable-feature=agent`.
    pub fn agent_mode(&self) -> bool {
        self.agent == Some(true) || feature(self, "agent")
    }
}

impl ServerFlags {
    /// Flags that are set and are not carried out: `(warnings, not running, refused)`, each
    /// line naming the flag. Refused ones stop start-up.
    pub fn review(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let (mut warn, mut not_running, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        let set: Vec<(&str, bool)> = vec![
            (
                "web.enable-remote-write-receiver",
                self.enable_remote_write_receiver,
            ),
            (
                "web.remote-write-receiver.accepted-protobuf-messages",
                !self.remote_write_receiver_messages.is_empty(),
            ),
            ("web.enable-otlp-receiver", self.enable_otlp_receiver),
            ("web.console.templates", self.console_templates.is_some()),
            ("web.console.libraries", self.console_libraries.is_some()),
            (
                "web.max-notifications-subscribers",
                self.max_notifications_subscribers.is_some(),
            ),
            (
                "storage.tsdb.head-chunks-write-queue-size",
                self.head_chunks_write_queue_size.is_some(),
            ),
            (
                "storage.tsdb.samples-per-chunk",
                self.samples_per_chunk.is_some(),
            ),
            (
                "storage.tsdb.max-block-chunk-segment-size",
                self.max_block_chunk_segment_size.is_some(),
            ),
            (
                "storage.tsdb.allow-overlapping-blocks",
                self.allow_overlapping_blocks.is_some(),
            ),
            (
                "storage.tsdb.delayed-compaction.max-percent",
                self.delayed_compaction_max_percent.is_some(),
            ),
            (
                "storage.tsdb.block-reload-interval",
                self.block_reload_interval.is_some(),
            ),
            (
                "storage.remote.flush-deadline",
                self.remote_flush_deadline.is_some(),
            ),
            (
                "storage.remote.read-sample-limit",
                self.remote_read_sample_limit.is_some(),
            ),
            (
                "storage.remote.read-concurrent-limit",
                self.remote_read_concurrent_limit.is_some(),
            ),
            (
                "storage.remote.read-max-bytes-in-frame",
                self.remote_read_max_bytes_in_frame.is_some(),
            ),
            (
                "rules.alert.for-outage-tolerance",
                self.alert_for_outage_tolerance.is_some(),
            ),
            (
                "rules.alert.for-grace-period",
                self.alert_for_grace_period.is_some(),
            ),
            (
                "rules.alert.resend-delay",
                self.alert_resend_delay.is_some(),
            ),
            (
                "rules.max-concurrent-evals",
                self.rules_max_concurrent_evals.is_some(),
            ),
            (
                "alertmanager.notification-queue-capacity",
                self.notification_queue_capacity.is_some(),
            ),
            (
                "alertmanager.notification-batch-size",
                self.notification_batch_size.is_some(),
            ),
            (
                "alertmanager.drain-notification-queue-on-shutdown",
                self.drain_notification_queue.is_some(),
            ),
            ("alertmanager.timeout", self.alertmanager_timeout.is_some()),
            (
                "scrape.adjust-timestamps",
                self.scrape_adjust_timestamps.is_some(),
            ),
            (
                "scrape.timestamp-tolerance",
                self.scrape_timestamp_tolerance.is_some(),
            ),
            ("auto-gomaxprocs", self.auto_gomaxprocs.is_some()),
            ("auto-gomemlimit", self.auto_gomemlimit.is_some()),
            (
                "auto-gomemlimit.ratio",
                self.auto_gomemlimit_ratio.is_some(),
            ),
            ("agent", self.agent == Some(true)),
            ("storage.agent.path", self.agent_path.is_some()),
            (
                "storage.agent.wal-segment-size",
                self.agent_wal_segment_size.is_some(),
            ),
            (
                "storage.agent.wal-truncate-frequency",
                self.agent_wal_truncate_frequency.is_some(),
            ),
            (
                "storage.agent.retention.min-time",
                self.agent_retention_min_time.is_some(),
            ),
            (
                "storage.agent.retention.max-time",
                self.agent_retention_max_time.is_some(),
            ),
            (
                "storage.agent.no-lockfile",
                self.agent_no_lockfile.is_some(),
            ),
        ];
        for (name, is_set) in set {
            if !is_set {
                continue;
            }
            let Some(info) = FLAGS.iter().find(|f| f.name == name) else {
                continue;
            };
            let line = format!("--{name}: {}", info.note);
            match info.kind {
                Warns => warn.push(format!("{line} (the flag has no effect)")),
                NotRunning => not_running.push(line),
                Works => {}
            }
        }
        if self.delayed_compaction_max_percent.is_some() && !feature(self, "delayed-compaction") {
            warn.push("--storage.tsdb.delayed-compaction.max-percent: acts only with --enable-feature=delayed-compaction (the flag has no effect)".to_string());
        }
        if self.auto_reload_interval.is_some() && !feature(self, "auto-reload-config") {
            warn.push("--config.auto-reload-interval: acts only with --enable-feature=auto-reload-config (the flag has no effect)".to_string());
        }
        if self.rules_max_concurrent_evals.is_some() && !feature(self, "concurrent-rule-eval") {
            warn.push("--rules.max-concurrent-evals: acts only with --enable-feature=concurrent-rule-eval (the flag has no effect)".to_string());
        }
        let on = |f: &str| self.enable_feature.iter().any(|x| x.trim() == f);
        if on("otlp-deltatocumulative") && on("otlp-native-delta-ingestion") {
            // Prometheus's refusal, in its words.
            refused.push("cannot enable otlp-deltatocumulative and otlp-native-delta-ingestion features at the same time".to_string());
        }
        if self.agent == Some(true) && on("memory-snapshot-on-shutdown") {
            warn.push("--enable-feature=memory-snapshot-on-shutdown: an agent keeps no samples in memory, so there is no head to write (the feature has no effect in agent mode)".to_string());
        }
        for feat in &self.enable_feature {
            let feat = feat.trim();
            if feat.is_empty() {
                continue;
            }
            match FEATURES.iter().find(|(n, _)| *n == feat) {
                Some((_, None)) => {}
                Some((_, Some(why))) if why.starts_with("refused") => {
                    refused.push(format!("--enable-feature={feat}: {why}"))
                }
                Some((_, Some(why))) if feat == "agent" => {
                    warn.push(format!("--enable-feature={feat}: {why}"))
                }
                Some((_, Some(why))) => warn.push(format!(
                    "--enable-feature={feat}: {why} (the feature has no effect)"
                )),
                // As Prometheus: an unknown feature name is only warned about.
                None => warn.push(format!("--enable-feature={feat}: unknown feature, ignored")),
            }
        }
        (warn, not_running, refused)
    }

    /// Every flag as `/api/v1/status/flags` shows it: name to value, as strings.
    pub fn as_pairs(&self) -> Vec<(String, String)> {
        let o = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        let ob = |v: &Option<bool>, d: bool| v.unwrap_or(d).to_string();
        let b = |v: bool| v.to_string();
        let mut out: Vec<(String, String)> = vec![
            ("config.file".into(), o(&self.config_file, "prometheus.yml")),
            (
                "config.auto-reload-interval".into(),
                o(&self.auto_reload_interval, "30s"),
            ),
            ("web.listen-address".into(), self.listen_address.join(",")),
            ("web.config.file".into(), o(&self.web_config_file, "")),
            ("web.read-timeout".into(), self.read_timeout.clone()),
            ("web.max-connections".into(), self.max_connections.clone()),
            (
                "web.search.max-limit".into(),
                self.search_max_limit.to_string(),
            ),
            ("web.external-url".into(), o(&self.external_url, "")),
            ("web.route-prefix".into(), o(&self.route_prefix, "")),
            ("web.user-assets".into(), o(&self.user_assets, "")),
            ("web.enable-lifecycle".into(), b(self.enable_lifecycle)),
            ("web.enable-admin-api".into(), b(self.enable_admin_api)),
            ("web.page-title".into(), self.page_title.clone()),
            ("web.cors.origin".into(), self.cors_origin.clone()),
            (
                "web.enable-remote-write-receiver".into(),
                b(self.enable_remote_write_receiver),
            ),
            (
                "web.enable-otlp-receiver".into(),
                b(self.enable_otlp_receiver),
            ),
            (
                "web.console.templates".into(),
                o(&self.console_templates, "consoles"),
            ),
            (
                "web.console.libraries".into(),
                o(&self.console_libraries, "console_libraries"),
            ),
            ("storage.tsdb.path".into(), self.tsdb_path.clone()),
            (
                "storage.tsdb.retention.time".into(),
                o(&self.retention_time, "0s"),
            ),
            (
                "storage.tsdb.retention.size".into(),
                o(&self.retention_size, "0B"),
            ),
            (
                "storage.tsdb.min-block-duration".into(),
                self.min_block_duration.clone(),
            ),
            (
                "storage.tsdb.max-block-duration".into(),
                o(&self.max_block_duration, ""),
            ),
            (
                "storage.tsdb.wal-segment-size".into(),
                o(&self.wal_segment_size, "0B"),
            ),
            ("storage.tsdb.no-lockfile".into(), b(self.no_lockfile)),
            (
                "storage.tsdb.block-format".into(),
                self.block_format.clone(),
            ),
            (
                "storage.tsdb.max-head-series".into(),
                self.max_head_series
                    .map_or_else(|| "auto".to_string(), |n| n.to_string()),
            ),
            (
                "storage.tsdb.max-exemplars".into(),
                self.max_exemplars
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            ),
            (
                "storage.tsdb.wal-compression".into(),
                ob(&self.wal_compression, true),
            ),
            ("query.lookback-delta".into(), self.lookback_delta.clone()),
            ("query.timeout".into(), self.query_timeout.clone()),
            (
                "query.max-concurrency".into(),
                self.query_max_concurrency.clone(),
            ),
            ("query.max-samples".into(), self.query_max_samples.clone()),
            (
                "query.max-bytes".into(),
                self.query_max_bytes.clone().unwrap_or_default(),
            ),
            (
                "scrape.discovery-reload-interval".into(),
                self.discovery_reload_interval.clone(),
            ),
            ("enable-feature".into(), self.enable_feature.join(",")),
            ("agent".into(), b(self.agent_mode())),
            (
                "storage.agent.path".into(),
                o(&self.agent_path, "data-agent/"),
            ),
            (
                "storage.agent.wal-segment-size".into(),
                o(&self.agent_wal_segment_size, "0B"),
            ),
            (
                "storage.agent.wal-truncate-frequency".into(),
                o(&self.agent_wal_truncate_frequency, "2h"),
            ),
            (
                "storage.agent.retention.min-time".into(),
                o(&self.agent_retention_min_time, "5m"),
            ),
            (
                "storage.agent.retention.max-time".into(),
                o(&self.agent_retention_max_time, "4h"),
            ),
            (
                "storage.agent.no-lockfile".into(),
                ob(&self.agent_no_lockfile, false),
            ),
            ("log.level".into(), self.log_level.clone()),
            ("log.format".into(), self.log_format.clone()),
        ];
        // Every other flag, as given or at its default, in the table's order: the page and
        // `/api/v1/status/flags` list every flag vigil takes, as Prometheus's do.
        for f in FLAGS {
            if out.iter().any(|(n, _)| n == f.name) {
                continue;
            }
            let v = match self.given.iter().find(|(n, _)| n == f.name) {
                Some((_, v)) => v.clone(),
                None => default_shown(f.name).to_string(),
            };
            out.push((f.name.into(), v));
        }
        out
    }
}

/// The default `/api/v1/status/flags` shows for a flag whose parser has none (its value is
/// decided where it is used): Prometheus's default, which vigil's is too.
fn default_shown(name: &str) -> &'static str {
    match name {
        "web.remote-write-receiver.accepted-protobuf-messages" => {
            "prometheus.WriteRequest,io.prometheus.write.v2.Request"
        }
        "web.max-notifications-subscribers" => "16",
        "storage.tsdb.wal-compression-type" | "storage.agent.wal-compression-type" => "snappy",
        "storage.agent.wal-compression" | "alertmanager.drain-notification-queue-on-shutdown" => {
            "true"
        }
        "storage.tsdb.allow-overlapping-compaction" => "true",
        "storage.tsdb.delayed-compaction.max-percent" => "10",
        "storage.tsdb.samples-per-chunk" => "120",
        "storage.tsdb.head-chunks-write-queue-size" => "0",
        "storage.tsdb.max-block-chunk-segment-size" => "0B",
        "storage.tsdb.block-reload-interval" => "1m",
        "storage.remote.flush-deadline" => "1m",
        "storage.remote.read-sample-limit" => "50000000",
        "storage.remote.read-concurrent-limit" => "10",
        "storage.remote.read-max-bytes-in-frame" => "1048576",
        "rules.alert.for-outage-tolerance" => "1h",
        "rules.alert.for-grace-period" => "10m",
        "rules.alert.resend-delay" => "1m",
        "rules.max-concurrent-evals" => "4",
        "alertmanager.notification-queue-capacity" => "10000",
        "alertmanager.notification-batch-size" => "256",
        "auto-gomemlimit.ratio" => "0.9",
        "auto-gomaxprocs" | "auto-gomemlimit" | "scrape.adjust-timestamps" => "true",
        "scrape.timestamp-tolerance" => "2ms",
        "write-documentation" => "false",
        "storage.tsdb.allow-overlapping-blocks" => "true",
        _ => "",
    }
}

/// Flags Prometheus gives no default: the flags page shows them empty until given.
#[cfg(test)]
const NO_DEFAULT: &[&str] = &[
    "web.config.file",
    "web.external-url",
    "web.route-prefix",
    "web.user-assets",
    "storage.tsdb.retention",
    "storage.tsdb.max-block-duration",
    "storage.tsdb.max-exemplars",
    "storage.tsdb.delay-compact-file.path",
    "query.max-bytes",
    "dashboards.dir",
    "dashboards.provisioning",
    "enable-feature",
    "alertmanager.timeout",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The features `--enable-feature`'s note says work are exactly those that act.
    #[test]
    fn the_feature_note_names_the_working_features() {
        let note = FLAGS
            .iter()
            .find(|f| f.name == "enable-feature")
            .unwrap()
            .note;
        let working = note.split(" work;").next().unwrap();
        for (name, what) in FEATURES {
            let named = working.contains(&format!("`{name}`"));
            assert_eq!(named, what.is_none(), "{name}: {note}");
        }
    }

    /// The flags page lists every flag vigil takes, each once; one given shows its value.
    #[test]
    fn the_flags_page_lists_every_flag() {
        let cmd = crate::flags::command();
        let m = cmd
            .clone()
            .try_get_matches_from(["vigil", "--rules.alert.resend-delay=2m"])
            .unwrap();
        let mut cli = <crate::flags::Cli as clap::FromArgMatches>::from_arg_matches(&m).unwrap();
        cli.server.given = crate::flags::given(&cmd, &m);
        let pairs = cli.server.as_pairs();
        for f in FLAGS {
            let n = pairs.iter().filter(|(p, _)| p == f.name).count();
            assert_eq!(n, 1, "--{} listed {n} times", f.name);
        }
        let v = |name: &str| pairs.iter().find(|(p, _)| p == name).unwrap().1.clone();
        for f in FLAGS {
            assert_eq!(
                v(f.name).is_empty(),
                NO_DEFAULT.contains(&f.name),
                "--{}: {:?}",
                f.name,
                v(f.name)
            );
        }
        assert_eq!(v("rules.alert.resend-delay"), "2m");
        assert_eq!(v("rules.alert.for-grace-period"), "10m");
        assert_eq!(v("storage.remote.read-concurrent-limit"), "10");
    }

    /// A flag that acts only with a feature says so when the feature is off.
    #[test]
    fn auto_reload_interval_without_its_feature_is_named() {
        use clap::Parser;
        let review = |args: &[&str]| {
            let cli = crate::flags::Cli::try_parse_from(
                std::iter::once("vigil").chain(args.iter().copied()),
            )
            .unwrap();
            cli.server.review().0
        };
        let warned = |w: &[String]| {
            w.iter()
                .any(|l| l.starts_with("--config.auto-reload-interval: acts only with"))
        };
        assert!(warned(&review(&["--config.auto-reload-interval=5s"])));
        assert!(!warned(&review(&[
            "--config.auto-reload-interval=5s",
            "--enable-feature=auto-reload-config"
        ])));
        assert!(!warned(&review(&[])));
    }

    /// `--help` says what the table says: a flag that works is not called ineffective, and
    /// one that has no effect says so.
    #[test]
    fn help_is_the_tables_note() {
        let cmd = crate::flags::command();
        for f in FLAGS {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(f.name))
                .unwrap_or_else(|| panic!("--{}", f.name));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert_eq!(help, f.help(), "--{}", f.name);
            let says_none = help.starts_with("No effect") || help.contains("NOT RUNNING");
            assert_eq!(says_none, f.kind != Works, "--{}: {help}", f.name);
        }
    }

    /// Every flag clap knows is in the table, and every table entry is a flag.
    #[test]
    fn the_table_and_the_parser_agree() {
        use clap::CommandFactory;
        let cmd = crate::flags::Cli::command();
        let longs: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(String::from))
            .filter(|l| l != "help" && l != "version")
            .collect();
        for l in &longs {
            assert!(FLAGS.iter().any(|f| f.name == l), "--{l} is not in FLAGS");
        }
        for f in FLAGS {
            assert!(
                longs.iter().any(|l| l == f.name),
                "FLAGS names --{} which clap lacks",
                f.name
            );
        }
    }
}
