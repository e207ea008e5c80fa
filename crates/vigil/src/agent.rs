//! Agent mode (`--agent`): the storage settings and the loop that truncates the agent's WAL
//! once remote write has sent it. Samples live only in the WAL (see `Db::open_agent`); a
//! segment goes when every remote write queue is past it and it is older than
//! `--storage.agent.retention.min-time`, or when it is older than `retention.max-time` (a
//! receiver down that long loses what is older, as in Prometheus).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use vigil_config::parse_duration;
use vigil_config::units::parse_size;
use vigil_tsdb::db::{Db, Options as TsdbOptions};

use crate::flags::ServerFlags;

/// The `--storage.agent.*` flags, checked and with Prometheus's defaults and adjustments.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub dir: PathBuf,
    pub segment_size: Option<u64>,
    pub compression: vigil_tsdb::wal::Compression,
    pub no_lockfile: bool,
    pub truncate_every: Duration,
    pub min_time: Duration,
    pub max_time: Duration,
}

impl AgentOptions {
    pub fn from_flags(f: &ServerFlags) -> Result<AgentOptions> {
        let dur = |name: &str, v: &Option<String>, default: Duration| -> Result<Duration> {
            match v.as_deref() {
                None => Ok(default),
                Some(s) => {
                    let d = parse_duration(s)
                        .map_err(|e| anyhow::anyhow!("invalid --{name} {s:?}: {e}"))?;
                    // As Prometheus: zero means the default.
                    Ok(if d.is_zero() { default } else { d })
                }
            }
        };
        let truncate_every = dur(
            "storage.agent.wal-truncate-frequency",
            &f.agent_wal_truncate_frequency,
            Duration::from_secs(2 * 3600),
        )?;
        let min_time = dur(
            "storage.agent.retention.min-time",
            &f.agent_retention_min_time,
            Duration::from_secs(5 * 60),
        )?;
        let mut max_time = dur(
            "storage.agent.retention.max-time",
            &f.agent_retention_max_time,
            Duration::from_secs(4 * 3600),
        )?;
        // Prometheus's adjustments: max-time is at least min-time and the truncate interval.
        max_time = max_time.max(min_time).max(truncate_every);
        let segment_size = match f
            .agent_wal_segment_size
            .as_deref()
            .filter(|s| !matches!(*s, "0" | "0B"))
        {
            None => None,
            Some(s) => {
                let n = parse_size(s).map_err(|e| {
                    anyhow::anyhow!("invalid --storage.agent.wal-segment-size {s:?}: {e}")
                })?;
                if !(10 << 20..=256 << 20).contains(&n) {
                    bail!(
                        "flag 'storage.agent.wal-segment-size' must be set between 10MB and 256MB"
                    );
                }
                Some(n)
            }
        };
        Ok(AgentOptions {
            dir: PathBuf::from(f.agent_path.as_deref().unwrap_or("data-agent/")),
            segment_size,
            compression: crate::server_flags::wal_compression(
                "storage.agent",
                f.agent_wal_compression,
                f.agent_wal_compression_type.as_deref(),
            )?,
            no_lockfile: f.agent_no_lockfile == Some(true),
            truncate_every,
            min_time,
            max_time,
        })
    }

    pub fn tsdb_options(&self) -> TsdbOptions {
        let mut o = TsdbOptions::new(0, 0);
        o.no_lockfile = self.no_lockfile;
        if let Some(n) = self.segment_size {
            o.wal.segment_size = n;
        }
        o.wal.compression = self.compression;
        o
    }
}

/// What the truncations did, for `/metrics`.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub truncations: AtomicU64,
    pub truncations_failed: AtomicU64,
    pub checkpoints: AtomicU64,
    pub last_truncate_micros: AtomicU64,
}

/// The first WAL segment to keep: the lowest every queue has not finished (all of them
/// without queues), raised past segments older than `max_time` and lowered to keep segments
/// younger than `min_time`.
pub fn keep_from(
    segments: &[(u64, SystemTime)],
    delivered: Option<u64>,
    now: SystemTime,
    min_time: Duration,
    max_time: Duration,
) -> u64 {
    let age = |m: &SystemTime| now.duration_since(*m).unwrap_or_default();
    let mut keep = delivered.unwrap_or(u64::MAX);
    if let Some(n) = segments
        .iter()
        .filter(|(_, m)| age(m) > max_time)
        .map(|(n, _)| n + 1)
        .max()
    {
        keep = keep.max(n);
    }
    if let Some(n) = segments
        .iter()
        .filter(|(_, m)| age(m) < min_time)
        .map(|(n, _)| *n)
        .min()
    {
        keep = keep.min(n);
    }
    keep
}

/// Every `--storage.agent.wal-truncate-frequency`: drop what remote write has sent.
pub async fn truncate_loop(
    db: Arc<Db>,
    remote: Arc<vigil_remote::RemoteWrite>,
    opts: AgentOptions,
    stats: Arc<AgentStats>,
) {
    loop {
        tokio::time::sleep(opts.truncate_every).await;
        let (db, remote, opts2, stats2) = (db.clone(), remote.clone(), opts.clone(), stats.clone());
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<Option<u64>> {
            let t0 = std::time::Instant::now();
            let now = SystemTime::now();
            let keep = keep_from(
                &db.wal_segments()?,
                remote.delivered_segment(),
                now,
                opts2.min_time,
                opts2.max_time,
            );
            // Series with no sample for max-time are forgotten: segments older than that go
            // anyway, so no kept segment still needs them.
            let idle = opts2.max_time;
            let inactive_before = now
                .checked_sub(idle)
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(i64::MIN, |d| d.as_millis() as i64);
            let r = db.truncate_agent(keep, inactive_before);
            stats2
                .last_truncate_micros
                .store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
            r
        })
        .await;
        stats.truncations.fetch_add(1, Ordering::Relaxed);
        match res {
            Ok(Ok(Some(last))) => {
                stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                tracing::info!(through_segment = last, "WAL checkpoint complete");
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                stats.truncations_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(err = %e, "failed to truncate WAL");
            }
            Err(e) => {
                stats.truncations_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(err = %e, "WAL truncation panicked");
            }
        }
    }
}

/// The agent's self-metrics under Prometheus's names.
pub fn metrics(db: &Db, st: &AgentStats) -> String {
    let h = db.head();
    let mut out = String::new();
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    };
    one(
        "prometheus_agent_active_series",
        "gauge",
        "Number of active series being tracked by the WAL storage",
        h.num_series() as f64,
    );
    one(
        "prometheus_agent_samples_appended_total",
        "counter",
        "Total number of samples appended to the storage",
        h.stats.samples_appended.load(Ordering::Relaxed) as f64,
    );
    one(
        "prometheus_agent_out_of_order_samples_total",
        "counter",
        "Total number of out of order samples ingestion failed attempts.",
        h.stats.out_of_order.load(Ordering::Relaxed) as f64,
    );
    one(
        "prometheus_agent_checkpoint_creations_total",
        "counter",
        "Total number of checkpoint creations attempted.",
        st.checkpoints.load(Ordering::Relaxed) as f64,
    );
    one(
        "prometheus_agent_truncations_failed_total",
        "counter",
        "Total number of WAL truncations that failed.",
        st.truncations_failed.load(Ordering::Relaxed) as f64,
    );
    one(
        "prometheus_agent_last_truncate_duration_seconds",
        "gauge",
        "How long the last WAL truncation took.",
        st.last_truncate_micros.load(Ordering::Relaxed) as f64 / 1e6,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_from_follows_queues_and_retention() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
        let ago = |s: u64| now - Duration::from_secs(s);
        // Segments 3..=6, written 5h, 3h, 1h and 1s ago.
        let segs = [
            (3, ago(5 * 3600)),
            (4, ago(3 * 3600)),
            (5, ago(3600)),
            (6, ago(1)),
        ];
        let (min, max) = (Duration::from_secs(300), Duration::from_secs(4 * 3600));
        // Queues are through segment 4: segments before 5 may go.
        assert_eq!(keep_from(&segs, Some(5), now, min, max), 5);
        // A queue stuck at segment 0: only what is older than max-time goes.
        assert_eq!(keep_from(&segs, Some(0), now, min, max), 4);
        // No queues: everything but what is younger than min-time.
        assert_eq!(keep_from(&segs, None, now, min, max), 6);
        // Delivered past the newest segment, which is still recent: it stays.
        assert_eq!(keep_from(&segs, Some(7), now, min, max), 6);
    }
}
