//! Remote storage: the remote write sender (one [`queue::Queue`] per `remote_write` entry,
//! following the storage's journal), the receiver, the remote read endpoint and client
//! ([`read_client::Fanout`], a storage that merges `remote_read` endpoints into reads), and
//! their `prometheus_remote_storage_*` metrics.
//!
//! This crate sits above storage: it reads the journal and appends through the
//! [`vigil_storage`] traits only, never the TSDB's files.

#[cfg(test)]
mod alloc_count;
#[cfg(test)]
#[global_allocator]
static COUNTING: alloc_count::Counting = alloc_count::Counting;
pub mod batch;
pub mod codec;
pub mod metadata;
pub mod otlp;
pub mod otlp_delta;
pub mod otlp_json;
pub mod otlp_proto;
pub mod proto;
pub mod queue;
pub mod read;
pub mod read_client;
pub mod receive;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use vigil_config::RemoteWriteConfig;
use vigil_model::Labels;
use vigil_model::exposition::escape_label_value as esc;
use vigil_storage::Journal;

use queue::Queue;

/// The queue's name as Prometheus shows it: the configured `name`, else a hash of the
/// endpoint's settings (so an unchanged entry keeps its queue and saved position).
pub fn queue_name(cfg: &RemoteWriteConfig) -> String {
    if !cfg.name.is_empty() {
        return cfg.name.clone();
    }
    settings_hash(cfg)
}

/// Where a queue keeps how far it got. Names come from the config: `/` (and `%`, the
/// escape) are escaped as `%2f`, so no name reaches outside the directory.
fn position_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let mut f = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' | '%' | '\0' => f.push_str(&format!("%{:02x}", c as u32)),
            c => f.push(c),
        }
    }
    let file = dir.join(format!("{f}.position"));
    // Before names were escaped, a name with `%` (and no `/`) kept its file unescaped: take
    // that file over rather than lose where the queue got to.
    let old = dir.join(format!("{name}.position"));
    if f != name && !name.contains('/') && !name.contains('\0') && !file.exists() && old.exists() {
        let _ = std::fs::rename(&old, &file);
    }
    file
}

/// Six hex digits of FNV-1a over every setting of an endpoint (URL, headers, auth,
/// relabelling, queue): stable across builds, so a restart finds the same queue, position
/// file and `remote_name`.
pub(crate) fn settings_hash(cfg: &impl std::fmt::Debug) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{cfg:?}").bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:06x}", h & 0xff_ffff)
}

/// A running queue and the settings it runs with.
type Running = (RemoteWriteConfig, Labels, Arc<Queue>);

/// Every remote write queue, reconfigured on reload.
pub struct RemoteWrite {
    journal: Arc<dyn Journal>,
    dir: PathBuf,
    rt: tokio::runtime::Handle,
    queues: Mutex<Vec<Running>>,
    /// Held for a whole apply or shutdown.
    applying: Mutex<()>,
    /// Samples received on `/api/v1/write` and their outcomes.
    pub received: Mutex<ReceiverStats>,
    /// Where queues get metric metadata from (the scrape targets), once set.
    metadata: Mutex<Option<metadata::MetadataSource>>,
}

#[derive(Default, Debug, Clone)]
pub struct ReceiverStats {
    pub requests: u64,
    pub samples: u64,
    pub histograms: u64,
    pub refused: u64,
    pub invalid_series: u64,
    pub histograms_dropped: u64,
    pub exemplars_dropped: u64,
}

impl RemoteWrite {
    /// Queues save where they got to under `dir` (`<data>/remote`).
    pub fn new(journal: Arc<dyn Journal>, dir: PathBuf, rt: tokio::runtime::Handle) -> Arc<Self> {
        Arc::new(RemoteWrite {
            journal,
            dir,
            rt,
            queues: Mutex::new(Vec::new()),
            applying: Mutex::new(()),
            received: Mutex::new(ReceiverStats::default()),
            metadata: Mutex::new(None),
        })
    }

    /// Where metric metadata comes from; queues started afterwards send it.
    pub fn set_metadata_source(&self, source: metadata::MetadataSource) {
        *self.metadata.lock() = Some(source);
    }

    /// Run exactly `cfgs`: queues whose settings (and external labels) are unchanged keep
    /// running; the others stop (delivering what they hold, for up to `flush`) and new ones
    /// start. An entry whose client cannot be built fails the whole apply before anything
    /// changes.
    pub fn apply(
        &self,
        cfgs: &[RemoteWriteConfig],
        external: &Labels,
        flush: Duration,
    ) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for c in cfgs {
            vigil_scrape::client::Scraper::with_http(
                &c.http_client,
                &[],
                vigil_config::NameEscaping::AllowUtf8,
                false,
                0,
            )
            .map_err(|e| format!("remote_write {:?}: {e}", queue_name(c)))?;
            if !names.insert(queue_name(c)) {
                return Err(format!(
                    "duplicate remote write configs are not allowed, found duplicate for URL: {}",
                    vigil_config::mask_url(&c.url)
                ));
            }
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("remote write state {}: {e}", self.dir.display()))?;
        // One apply at a time; `queues` itself is held only to swap the list, never while a
        // queue stops (which can take the flush deadline): `/metrics` reads it meanwhile.
        let _one = self.applying.lock();
        let current: Vec<Running> = self.queues.lock().clone();
        let (mut keep, mut removed) = (Vec::new(), Vec::new());
        for (c, ext, q) in current {
            if cfgs.contains(&c) && &ext == external {
                keep.push((c, ext, q));
            } else {
                removed.push(q);
            }
        }
        *self.queues.lock() = keep.clone();
        // Removed queues stop before new ones start: a renamed endpoint's new queue must not
        // share a position file with the old one still running.
        std::thread::scope(|sc| {
            for q in &removed {
                sc.spawn(move || q.stop(flush));
            }
        });
        for q in removed {
            if !names.contains(&q.name) {
                // vigil's own file: the queue is gone, so is where it got to.
                let _ = std::fs::remove_file(position_file(&self.dir, &q.name));
            }
        }
        for c in cfgs {
            if keep.iter().any(|(k, e, _)| k == c && e == external) {
                continue;
            }
            let name = queue_name(c);
            let q = Queue::start(
                name.clone(),
                c.clone(),
                external.clone(),
                self.journal.clone(),
                position_file(&self.dir, &name),
                self.rt.clone(),
                self.metadata.lock().clone(),
            )?;
            tracing::info!(queue = %name, url = %vigil_config::mask_url(&c.url), "Remote write: started");
            keep.push((c.clone(), external.clone(), q));
            *self.queues.lock() = keep.clone();
        }
        Ok(())
    }

    /// The WAL segment every queue has delivered everything before (the lowest of theirs);
    /// `None` without queues. What an agent may drop from its WAL.
    pub fn delivered_segment(&self) -> Option<u64> {
        // While queues are being replaced (a stop can take the flush deadline), the list is
        // incomplete: nothing may be taken as delivered.
        let Some(_apply) = self.applying.try_lock() else {
            return Some(0);
        };
        self.queues
            .lock()
            .iter()
            .map(|(_, _, q)| q.stats.delivered_segment.load(Ordering::SeqCst))
            .min()
    }

    /// Stop every queue, delivering what it holds for up to `flush`.
    pub fn shutdown(&self, flush: Duration) {
        let _one = self.applying.lock();
        let qs = std::mem::take(&mut *self.queues.lock());
        // All at once: the flush deadline bounds the whole shutdown, not each queue in turn.
        std::thread::scope(|sc| {
            for (_, _, q) in &qs {
                sc.spawn(move || q.stop(flush));
            }
        });
    }

    /// One line per queue for the status page: name, URL, samples sent, pending, last error.
    pub fn status(&self) -> serde_json::Value {
        let qs = self.queues.lock().clone();
        serde_json::Value::Array(
            qs.iter()
                .map(|(_, _, q)| {
                    let s = &q.stats;
                    serde_json::json!({
                        "name": q.name,
                        "url": q.url,
                        "samplesSent": s.samples_sent.load(Ordering::Relaxed),
                        "samplesPending": s.samples_pending.load(Ordering::Relaxed),
                        "samplesFailed": s.samples_failed.load(Ordering::Relaxed),
                        "shards": s.shards.load(Ordering::Relaxed),
                        "highestSentTimestampMs": s.highest_sent_ms.load(Ordering::Relaxed),
                        "lastError": s.last_error.lock().clone(),
                    })
                })
                .collect(),
        )
    }

    /// `prometheus_remote_storage_*` and the receiver's counters, in the text format.
    pub fn metrics(&self) -> String {
        let qs = self.queues.lock().clone();
        let mut out = String::new();
        let per_queue: [QueueMetric; 26] = [
            (
                "prometheus_remote_storage_metadata_total",
                "counter",
                "Total number of metadata entries sent to remote storage.",
                |s| s.metadata_sent.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_metadata_failed_total",
                "counter",
                "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.",
                |s| s.metadata_failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_metadata_retried_total",
                "counter",
                "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable.",
                |s| s.metadata_retried.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_metadata_bytes_total",
                "counter",
                "The total number of bytes of metadata sent by the queue after compression.",
                |s| s.metadata_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_samples_total",
                "counter",
                "Total number of samples sent to remote storage.",
                |s| s.samples_sent.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_samples_failed_total",
                "counter",
                "Total number of samples which failed on send to remote storage, non-recoverable errors.",
                |s| s.samples_failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_samples_retried_total",
                "counter",
                "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
                |s| s.samples_retried.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_samples_dropped_total",
                "counter",
                "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling, due to being too old or unintentionally because of an unknown reference ID.",
                |s| s.samples_dropped.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_total",
                "counter",
                "Total number of exemplars sent to remote storage.",
                |s| s.exemplars_sent.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_failed_total",
                "counter",
                "Total number of exemplars which failed on send to remote storage, non-recoverable errors.",
                |s| s.exemplars_failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_retried_total",
                "counter",
                "Total number of exemplars which failed on send to remote storage but were retried because the send error was recoverable.",
                |s| s.exemplars_retried.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_dropped_total",
                "counter",
                "Total number of exemplars which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.",
                |s| s.exemplars_dropped.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_histograms_total",
                "counter",
                "Total number of histograms sent to remote storage.",
                |s| s.histograms_sent.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_histograms_failed_total",
                "counter",
                "Total number of histograms which failed on send to remote storage, non-recoverable errors.",
                |s| s.histograms_failed.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_histograms_retried_total",
                "counter",
                "Total number of histograms which failed on send to remote storage but were retried because the send error was recoverable.",
                |s| s.histograms_retried.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_histograms_dropped_total",
                "counter",
                "Total number of histograms which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.",
                |s| s.histograms_dropped.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_histograms_pending",
                "gauge",
                "The number of histograms pending in the queues shards to be sent to the remote storage.",
                |s| s.histograms_pending.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_exemplars_pending",
                "gauge",
                "The number of exemplars pending in the queues shards to be sent to the remote storage.",
                |s| s.exemplars_pending.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_samples_pending",
                "gauge",
                "The number of samples pending in the queues shards to be sent to the remote storage.",
                |s| s.samples_pending.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_bytes_total",
                "counter",
                "The total number of bytes of data (not metadata) sent by the queue after compression.",
                |s| s.bytes_sent.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                "gauge",
                "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
                |s| s.highest_sent_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            ),
            (
                "prometheus_remote_storage_shards",
                "gauge",
                "The number of shards used for parallel sending to the remote storage.",
                |s| s.shards.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_remote_storage_shards_desired",
                "gauge",
                "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
                |s| s.shards_desired.load(Ordering::Relaxed) as f64,
            ),
            (
                "prometheus_wal_watcher_current_segment",
                "gauge",
                "Current segment the WAL watcher is reading records from.",
                |s| s.current_segment.load(Ordering::Relaxed) as f64,
            ),
            (
                "vigil_remote_storage_series_tracked",
                "gauge",
                "Series the queue knows the labels of (forgotten once the WAL is truncated past them and they are not live).",
                |s| s.series_tracked.load(Ordering::Relaxed) as f64,
            ),
            (
                "vigil_remote_storage_wal_gaps_total",
                "counter",
                "WAL segments removed or cut short before remote write read them: their samples were not sent.",
                |s| s.gaps.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, typ, help, f) in per_queue {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {typ}");
            for (_, _, q) in qs.iter() {
                let label = if name == "prometheus_wal_watcher_current_segment" {
                    format!("consumer=\"{}\"", esc(&q.name))
                } else {
                    format!("remote_name=\"{}\",url=\"{}\"", esc(&q.name), esc(&q.url))
                };
                let _ = writeln!(out, "{name}{{{label}}} {}", f(&q.stats));
            }
        }
        // A summary without quantiles: its sum and count, per queue.
        let name = "prometheus_remote_storage_sent_batch_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Duration of send calls to the remote storage.\n# TYPE {name} summary"
        );
        for (_, _, q) in qs.iter() {
            let label = format!("remote_name=\"{}\",url=\"{}\"", esc(&q.name), esc(&q.url));
            let _ = writeln!(
                out,
                "{name}_sum{{{label}}} {}\n{name}_count{{{label}}} {}",
                q.stats.send_micros.load(Ordering::Relaxed) as f64 / 1e6,
                q.stats.batches.load(Ordering::Relaxed)
            );
        }
        let (inn, high) = qs.iter().fold((0u64, 0u64), |(a, b), (_, _, q)| {
            (
                a + q.stats.samples_in.load(Ordering::Relaxed),
                b.max(q.stats.highest_in_ms.load(Ordering::Relaxed)),
            )
        });
        let _ = writeln!(
            out,
            "# HELP prometheus_remote_storage_samples_in_total Samples read from the WAL for remote storage.\n# TYPE prometheus_remote_storage_samples_in_total counter\nprometheus_remote_storage_samples_in_total {inn}"
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_remote_storage_highest_timestamp_in_seconds Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.\n# TYPE prometheus_remote_storage_highest_timestamp_in_seconds gauge\nprometheus_remote_storage_highest_timestamp_in_seconds {}",
            high as f64 / 1000.0
        );
        let ex_in: u64 = qs
            .iter()
            .map(|(_, _, q)| q.stats.exemplars_in.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(
            out,
            "# HELP prometheus_remote_storage_exemplars_in_total Exemplars read from the WAL for remote storage.\n# TYPE prometheus_remote_storage_exemplars_in_total counter\nprometheus_remote_storage_exemplars_in_total {ex_in}"
        );
        let h_in: u64 = qs
            .iter()
            .map(|(_, _, q)| q.stats.histograms_in.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(
            out,
            "# HELP prometheus_remote_storage_histograms_in_total HistogramSamples read from the WAL for remote storage.\n# TYPE prometheus_remote_storage_histograms_in_total counter\nprometheus_remote_storage_histograms_in_total {h_in}"
        );
        let r = self.received.lock().clone();
        let _ = writeln!(
            out,
            "# HELP prometheus_api_remote_write_invalid_labels_samples_total The total number of remote write samples which contains invalid labels.\n# TYPE prometheus_api_remote_write_invalid_labels_samples_total counter\nprometheus_api_remote_write_invalid_labels_samples_total {}",
            r.invalid_series
        );
        let _ = writeln!(
            out,
            "# HELP vigil_remote_write_received_samples_total Samples stored from remote write requests.\n# TYPE vigil_remote_write_received_samples_total counter\nvigil_remote_write_received_samples_total {}\n# HELP vigil_remote_write_received_histograms_total Native histogram samples stored from remote write requests.\n# TYPE vigil_remote_write_received_histograms_total counter\nvigil_remote_write_received_histograms_total {}\n# HELP vigil_remote_write_refused_requests_total Remote write requests answered with an error.\n# TYPE vigil_remote_write_refused_requests_total counter\nvigil_remote_write_refused_requests_total {}\n# HELP vigil_remote_write_dropped_histograms_total Native histogram samples received and not stored (a storage without native histograms).\n# TYPE vigil_remote_write_dropped_histograms_total counter\nvigil_remote_write_dropped_histograms_total {}\n# HELP vigil_remote_write_dropped_exemplars_total Exemplars received and refused (labels too long, out of order).\n# TYPE vigil_remote_write_dropped_exemplars_total counter\nvigil_remote_write_dropped_exemplars_total {}",
            r.samples, r.histograms, r.refused, r.histograms_dropped, r.exemplars_dropped
        );
        out
    }
}

/// A per-queue metric: name, type, help and how to read it.
type QueueMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&queue::Stats) -> f64,
);

/// External labels as a map (remote read adds them to its results).
pub fn external_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Label, Sample, TimeSeries, WriteRequest};
    use crate::receive::{ReceiveError, check_headers};

    /// A queue's name comes from the config: whatever it holds, its position file stays in
    /// the queue directory, and distinct names keep distinct files.
    #[test]
    fn position_files_stay_in_their_directory() {
        let dir = std::path::Path::new("/data/remote");
        for name in [
            "../../etc/passwd",
            "/abs",
            "a/b",
            "..",
            ".",
            "x%2fy",
            "plain-name_1",
        ] {
            let f = position_file(dir, name);
            assert_eq!(f.parent(), Some(dir), "{name}");
            assert!(
                f.components()
                    .all(|c| !matches!(c, std::path::Component::ParentDir)),
                "{name}: {}",
                f.display()
            );
        }
        assert_ne!(position_file(dir, "a/b"), position_file(dir, "a%2fb"));
        // A name with `%` kept its file unescaped before: it is taken over, not lost.
        let d = std::env::temp_dir().join(format!("vigil-posfile-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("q%1.position"), "3 40\n").unwrap();
        let f = position_file(&d, "q%1");
        assert_eq!(f, d.join("q%251.position"));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "3 40\n");
        assert!(!d.join("q%1.position").exists());
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(
            position_file(dir, "plain-name_1"),
            dir.join("plain-name_1.position")
        );
    }

    #[test]
    fn write_requests_survive_snappy_and_protobuf() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 42,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let back: WriteRequest = codec::decode(&codec::encode(&req)).unwrap();
        assert_eq!(back, req);
        let e = codec::decode::<WriteRequest>(b"\xff\xff\xff\xff\x7f").unwrap_err();
        assert!(e.contains("snappy"), "{e}");
    }

    /// The fuzz target's seeds (hand-made bytes: a kind byte, then a snappy body) are each a
    /// valid request of their kind, so fuzzing starts from inputs that get past decoding.
    #[test]
    fn fuzz_seeds_decode() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/remote");
        let seed = |n: &str| std::fs::read(dir.join(n)).unwrap();
        let st = vigil_storage::MemoryStorage::new();
        for (name, msg) in [("v1", receive::Message::V1), ("v2", receive::Message::V2)] {
            let b = seed(name);
            assert_eq!(b[0] % 3, if msg == receive::Message::V1 { 0 } else { 1 });
            let req = receive::decode(msg, &b[1..]).unwrap();
            let got = receive::append(&st, &req).unwrap();
            assert_eq!(got.samples, 1, "{name}");
        }
        let b = seed("read");
        assert_eq!(b[0] % 3, 2);
        let (req, kind) = read::decode(&b[1..]).unwrap();
        assert_eq!(kind, read::ResponseType::StreamedXorChunks);
        let mut frames = 0;
        read::stream(&st, &req, &BTreeMap::new(), 1024, &mut |_| {
            frames += 1;
            true
        })
        .unwrap();
        assert_eq!(frames, 1, "the series both writes stored");
    }

    /// A `SAMPLES` answer carries native histograms as `Histogram` messages (integer form
    /// for whole counts), counted against the sample limit with the floats.
    #[test]
    fn remote_read_samples_carry_native_histograms() {
        use vigil_model::histogram::Span;
        use vigil_storage::Storage;
        let st = vigil_storage::MemoryStorage::new();
        let h = vigil_model::FloatHistogram {
            schema: 1,
            count: 5.0,
            sum: 2.5,
            zero_count: 1.0,
            zero_threshold: 0.001,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1.0, 3.0],
            ..Default::default()
        };
        let labels = vigil_model::Labels::from_pairs([("__name__", "h")]);
        let mut app = st.appender();
        app.append_histogram(0, &labels, 1000, h.clone()).unwrap();
        app.append_histogram(0, &labels, 2000, h.clone()).unwrap();
        app.commit().unwrap();
        let req = proto::ReadRequest {
            queries: vec![proto::Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 5000,
                matchers: vec![proto::LabelMatcher {
                    r#type: 0,
                    name: "__name__".into(),
                    value: "h".into(),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let body = read::read_samples(&st, &req, &BTreeMap::new(), 100).unwrap();
        let resp: proto::ReadResponse = codec::decode(&body).unwrap();
        let ts = &resp.results[0].timeseries[0];
        assert!(ts.samples.is_empty());
        assert_eq!(ts.histograms.len(), 2);
        let got: proto::Histogram = prost::Message::decode(&ts.histograms[1][..]).unwrap();
        assert_eq!(got.timestamp, 2000);
        assert!(got.to_float().unwrap().same_as(&h));
        let e = read::read_samples(&st, &req, &BTreeMap::new(), 1).unwrap_err();
        assert!(e.to_string().contains("sample limit"), "{e}");
    }

    #[test]
    fn headers_are_checked_as_prometheus_checks_them() {
        assert!(check_headers(None, None).is_ok());
        assert!(check_headers(Some("application/x-protobuf"), Some("snappy")).is_ok());
        assert!(
            check_headers(
                Some("application/x-protobuf;proto=prometheus.WriteRequest"),
                None
            )
            .is_ok()
        );
        assert_eq!(
            check_headers(
                Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
                Some("snappy")
            )
            .unwrap(),
            receive::Message::V2
        );
        for (ct, ce) in [
            (Some("application/json"), None),
            (
                Some("application/x-protobuf;proto=io.prometheus.write.v3"),
                None,
            ),
            (Some("application/x-protobuf"), Some("zstd")),
        ] {
            let e = check_headers(ct, ce).unwrap_err();
            assert!(matches!(e, ReceiveError::UnsupportedMediaType(_)), "{e}");
            assert_eq!(e.status(), 415);
        }
    }

    #[test]
    fn invalid_series_are_skipped_and_the_rest_stored() {
        let st = vigil_storage::MemoryStorage::new();
        let series = |labels: &[(&str, &str)], t: i64| TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: vec![Sample {
                value: 1.0,
                timestamp: t,
            }],
            ..Default::default()
        };
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "ok"), ("b", "1"), ("a", "2")], 10),
                series(&[("job", "no-name")], 10),
                series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], 10),
            ],
            metadata: vec![],
        };
        let got = receive::append(&st, &req).unwrap();
        assert_eq!((got.series, got.samples, got.invalid_series), (1, 1, 2));
        // Out of order: the whole request is refused and nothing of it stored.
        let req = WriteRequest {
            timeseries: vec![
                series(&[("__name__", "fresh")], 10),
                series(&[("__name__", "ok"), ("a", "2"), ("b", "1")], 5),
            ],
            metadata: vec![],
        };
        let e = receive::append(&st, &req).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
        let q = vigil_storage::Storage::querier(&st, 0, 100).unwrap();
        let fresh: Vec<_> = q
            .select(&[vigil_storage::Matcher::equal("__name__", "fresh")])
            .unwrap()
            .collect();
        assert!(fresh.is_empty(), "rolled back");
    }

    /// Mutation fuzzing of the receiver and remote read decoders: valid requests with bytes
    /// flipped, inserted, removed and cut short, and plain noise, must each be decoded or
    /// refused with an error, never panic, and a decoded write must append or be refused.
    #[test]
    fn decoders_survive_mutated_and_random_input() {
        use crate::proto::{LabelMatcher, Query, ReadRequest};
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let series = |name: &str, n: i64| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: name.into(),
                },
                Label {
                    name: "job".into(),
                    value: "fuzz".into(),
                },
            ],
            samples: (0..n)
                .map(|t| Sample {
                    value: t as f64,
                    timestamp: t * 1000,
                })
                .collect(),
            ..Default::default()
        };
        let write = codec::encode(&WriteRequest {
            timeseries: vec![series("a", 5), series("b", 3)],
            metadata: vec![],
        });
        let write_v2 = codec::encode(&proto::RequestV2 {
            symbols: ["", "__name__", "a", "job", "x"].map(String::from).to_vec(),
            timeseries: vec![proto::TimeSeriesV2 {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1000,
                }],
                ..Default::default()
            }],
        });
        let read_req = codec::encode(&ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 10_000,
                matchers: vec![LabelMatcher {
                    r#type: 2,
                    name: "__name__".into(),
                    value: "a|b".into(),
                }],
                hints: None,
            }],
            accepted_response_types: vec![0],
        });
        let st = vigil_storage::MemoryStorage::new();
        receive::append(&st, &receive::decode(receive::Message::V1, &write).unwrap()).unwrap();
        let ext = BTreeMap::new();
        let (mut decoded, mut refused) = (0, 0);
        for round in 0..20_000 {
            let base = match round % 3 {
                0 => &write,
                1 => &write_v2,
                _ => &read_req,
            };
            let mut b = base.clone();
            match next() % 5 {
                0 => b = (0..(next() % 64)).map(|_| next() as u8).collect(),
                1 => b.truncate((next() as usize) % (b.len() + 1)),
                2 => {
                    let at = (next() as usize) % (b.len() + 1);
                    b.insert(at, next() as u8);
                }
                3 if !b.is_empty() => {
                    let at = (next() as usize) % b.len();
                    b.remove(at);
                }
                _ => {
                    for _ in 0..1 + next() % 4 {
                        if b.is_empty() {
                            break;
                        }
                        let at = (next() as usize) % b.len();
                        b[at] ^= 1 << (next() % 8);
                    }
                }
            }
            if round % 3 < 2 {
                let msg = if round % 3 == 0 {
                    receive::Message::V1
                } else {
                    receive::Message::V2
                };
                match receive::decode(msg, &b) {
                    Ok(req) => {
                        decoded += 1;
                        let _ = receive::append(&st, &req);
                    }
                    Err(_) => refused += 1,
                }
            } else {
                match read::read(&st, &b, &ext, 1_000_000) {
                    Ok(_) => decoded += 1,
                    Err(_) => refused += 1,
                }
            }
        }
        // Both outcomes were exercised.
        assert!(
            decoded > 100 && refused > 100,
            "{decoded} decoded, {refused} refused"
        );
    }
}
