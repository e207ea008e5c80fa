//! Metric metadata (`metadata_config`): for remote write 1.0, every `send_interval`, the
//! `# TYPE`/`# HELP`/`# UNIT` of every metric family the targets expose, each distinct one
//! once, in `prometheus.WriteRequest.metadata` requests of at most `max_samples_per_send`
//! entries, as Prometheus sends them beside the samples; for 2.0, a family map (refreshed as
//! often) from which each series sent carries its own, or with `metadata-wal-records` each
//! series' own metadata from the WAL ([`SeriesMap`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use vigil_config::RemoteWriteConfig;
use vigil_scrape::metadata::MetricMetadata;

use crate::proto::{self, WriteRequest};
use crate::queue::Stats;

/// Where the metadata comes from: the scrape targets' latest, each family possibly several
/// times (one per target).
pub type MetadataSource = Arc<dyn Fn() -> Vec<MetricMetadata> + Send + Sync>;

/// The protocol's number for a metric type name.
fn type_number(kind: &str) -> i32 {
    match kind {
        "counter" => 1,
        "gauge" => 2,
        "histogram" => 3,
        "gaugehistogram" => 4,
        "summary" => 5,
        "info" => 6,
        "stateset" => 7,
        _ => 0,
    }
}

/// Each distinct (family, type, help, unit) once, sorted: targets that agree share an
/// entry, and ones that differ each send theirs, as Prometheus's metadata watcher does.
pub fn entries(all: Vec<MetricMetadata>) -> Vec<proto::MetricMetadata> {
    let distinct: std::collections::BTreeSet<(String, i32, String, String)> = all
        .into_iter()
        .map(|m| (m.family, type_number(m.kind), m.help, m.unit))
        .collect();
    distinct
        .into_iter()
        .map(|(family, kind, help, unit)| proto::MetricMetadata {
            r#type: kind,
            metric_family_name: family,
            help,
            unit,
        })
        .collect()
}

/// Metadata by family name, for remote write 2.0, whose series carry their own: (protocol
/// type, help, unit).
/// Family name → (protocol type, help, unit).
pub type FamilyTable = std::collections::HashMap<String, (i32, String, String)>;

/// A [`FamilyTable`] shared between the refresher and the queue's shards.
pub type FamilyMap = Arc<parking_lot::RwLock<FamilyTable>>;

/// The family a series' metric name belongs to: itself, or without the suffix the text
/// formats add to a family's series (`_total`, `_bucket`, ...), as Prometheus looks it up.
pub fn family_of<'a, V>(
    map: &'a std::collections::HashMap<String, V>,
    name: &str,
) -> Option<&'a V> {
    if let Some(v) = map.get(name) {
        return Some(v);
    }
    [
        "_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum",
    ]
    .iter()
    .find_map(|suffix| map.get(name.strip_suffix(suffix)?))
}

/// Series' own metadata from the WAL (`--enable-feature=metadata-wal-records`), keyed by
/// the label set a series is sent with: remote write 2.0 sends it in place of its family's.
pub type SeriesTable = std::collections::HashMap<vigil_model::Labels, Arc<vigil_storage::Metadata>>;

/// A [`SeriesTable`] shared between the queue's reader and its shards.
pub type SeriesMap = Arc<parking_lot::RwLock<SeriesTable>>;

/// Keep `map` to the targets' metadata, refreshed every `send_interval` until `stop`.
pub async fn refresh(
    every: std::time::Duration,
    source: MetadataSource,
    map: FamilyMap,
    stop: Arc<AtomicBool>,
) {
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut next = FamilyTable::new();
        for m in entries(source()) {
            // Where targets differ, one family entry is kept (a series carries one).
            next.entry(m.metric_family_name)
                .or_insert((m.r#type, m.help, m.unit));
        }
        // Until the first scrapes bring metadata, look again soon rather than a whole
        // interval later.
        let wait = if next.is_empty() {
            every.min(std::time::Duration::from_secs(2))
        } else {
            every
        };
        *map.write() = next;
        tokio::time::sleep(wait).await;
    }
}

/// Send the metadata every `send_interval` until `stop`. Errors worth retrying are retried
/// with the queue's backoff until the next round is due; others count as failed.
pub async fn run(
    cfg: RemoteWriteConfig,
    client: Arc<vigil_scrape::client::Scraper>,
    source: MetadataSource,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(cfg.metadata_send_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let headers = crate::queue::write_headers(&cfg, false);
    loop {
        tick.tick().await;
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let all = entries(source());
        let round_ends = tokio::time::Instant::now() + cfg.metadata_send_interval;
        for batch in all.chunks(cfg.metadata_max_per_send.max(1)) {
            let n = batch.len() as u64;
            let body = crate::codec::encode(&WriteRequest {
                timeseries: Vec::new(),
                metadata: batch.to_vec(),
            });
            let mut backoff = cfg.queue_config.min_backoff;
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let res = client
                    .post_reply(
                        &cfg.url,
                        &headers,
                        body.clone(),
                        cfg.remote_timeout,
                        &["Retry-After"],
                    )
                    .await;
                let q = &cfg.queue_config;
                let mut wait = backoff;
                let retry = match res {
                    Ok(r) if (200..300).contains(&r.status) => {
                        stats.metadata_sent.fetch_add(n, Ordering::Relaxed);
                        stats
                            .metadata_bytes
                            .fetch_add(body.len() as u64, Ordering::Relaxed);
                        false
                    }
                    Ok(r) if r.status >= 500 || (r.status == 429 && q.retry_on_http_429) => {
                        // As for samples: the receiver's Retry-After, within max_backoff.
                        if let Some(d) = r.headers[0]
                            .as_deref()
                            .and_then(crate::queue::retry_after_header)
                        {
                            wait = d.min(q.max_backoff);
                        }
                        true
                    }
                    Ok(vigil_scrape::client::Reply {
                        status: s, text, ..
                    }) => {
                        tracing::error!(url = %vigil_config::mask_url(&cfg.url), status = s, err = %text, entries = n, "Remote write: metadata refused");
                        stats.metadata_failed.fetch_add(n, Ordering::Relaxed);
                        false
                    }
                    Err(_) => true,
                };
                if !retry {
                    break;
                }
                if tokio::time::Instant::now() + wait >= round_ends {
                    // The next round sends the metadata afresh.
                    stats.metadata_failed.fetch_add(n, Ordering::Relaxed);
                    break;
                }
                stats.metadata_retried.fetch_add(n, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(q.max_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_distinct_metadata_with_protocol_types() {
        let m = |f: &str, k: &'static str, h: &str| MetricMetadata {
            family: f.into(),
            kind: k,
            help: h.into(),
            unit: String::new(),
        };
        let e = entries(vec![
            m("b_total", "counter", "first"),
            m("a", "gauge", "g"),
            m("b_total", "counter", "second target"),
            m("b_total", "counter", "first"),
            m("h", "histogram", ""),
        ]);
        let got: Vec<(&str, i32, &str)> = e
            .iter()
            .map(|x| (x.metric_family_name.as_str(), x.r#type, x.help.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 2, "g"),
                ("b_total", 1, "first"),
                ("b_total", 1, "second target"),
                ("h", 3, "")
            ]
        );
    }
}

#[cfg(test)]
mod family_tests {
    use super::*;

    #[test]
    fn series_names_find_their_family() {
        let map: std::collections::HashMap<String, i32> =
            [("http_requests_total", 1), ("latency", 3), ("up", 2)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert_eq!(family_of(&map, "http_requests_total"), Some(&1));
        assert_eq!(family_of(&map, "latency_bucket"), Some(&3));
        assert_eq!(family_of(&map, "latency_sum"), Some(&3));
        assert_eq!(family_of(&map, "up"), Some(&2));
        assert_eq!(family_of(&map, "other"), None);
    }
}
