//! Scraping: from target groups to samples in storage.
//!
//! - [`target`]: target relabeling (`relabel_configs`) turns discovered label sets into
//!   [`target::Target`]s with a scrape URL, or records why they were dropped.
//! - [`client`]: the HTTP side of one scrape (auth, TLS, content negotiation, gzip, body limit);
//!   [`tls`] builds the TLS setup when `tls_config.server_name` names the certificate.
//! - [`body_pool`]: large scrape bodies' buffers, kept between scrapes and shared by targets.
//! - [`cache`]: per-target series cache, raw series text -> series ref, so a known series
//!   costs a comparison with the series expected next (a hash lookup when the order changed)
//!   and an append.
//! - [`metadata`]: `# HELP`/`# TYPE`/`# UNIT` per target, for `/api/v1/targets/metadata` and
//!   remote write's metadata.
//! - [`oauth2`]: the client-credentials token source for `oauth2:` in scrape configs.
//! - [`metrics`]: scraping's own `prometheus_*` counters.
//! - [`scrape_loop`]: one task per target: scrape every interval at a fixed offset, parse,
//!   `metric_relabel_configs`, limits, one storage transaction per scrape, synthetic `up` and
//!   `scrape_*` series, staleness markers.
//! - [`pool`]: one pool per job, starting and stopping loops as targets come and go.
//! - [`manager`]: the pools of the current config, fed by discovery's watch channel.
//!
//! Scraping writes only through `vigil_storage::Appender`; it never reads storage.

pub mod body_pool;
pub mod cache;
pub mod client;
pub mod manager;
pub mod metadata;
pub mod metrics;
pub mod oauth2;
pub mod pool;
pub mod scrape_loop;
pub mod target;
pub mod tls;

pub use manager::{ScrapeManager, TargetsSnapshot};
pub use target::{Health, Target, TargetStatus};
