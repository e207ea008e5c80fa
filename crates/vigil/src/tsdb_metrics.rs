//! `prometheus_tsdb_*` metrics, read from the database when `/metrics` is scraped.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use vigil_tsdb::db::Db;

/// The compaction durations as a histogram with Prometheus's buckets.
struct CompactionDurations(vigil_tsdb::db::CompactionSnapshot);

impl EncodeMetric for CompactionDurations {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let c = &self.0;
        let buckets: Vec<(f64, u64)> = vigil_tsdb::db::COMPACTION_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(c.buckets)
            .collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            c.sum_seconds,
            c.ran,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

pub struct TsdbCollector {
    pub db: Arc<Db>,
}

impl std::fmt::Debug for TsdbCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TsdbCollector")
    }
}

impl Collector for TsdbCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let head = self.db.head();
        let st = &head.stats;
        let blocks = self.db.blocks();
        let gauge = |enc: &mut DescriptorEncoder,
                     name: &str,
                     help: &str,
                     v: f64|
         -> Result<(), std::fmt::Error> {
            ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
        };
        let counter = |enc: &mut DescriptorEncoder,
                       name: &str,
                       help: &str,
                       v: u64|
         -> Result<(), std::fmt::Error> {
            ConstCounter::new(v).encode(enc.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)
        };
        gauge(
            &mut enc,
            "prometheus_tsdb_head_series",
            "Total number of series in the head block.",
            head.num_series() as f64,
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_head_samples_appended",
            "Total number of appended samples.",
            st.samples_appended.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_head_series_created",
            "Total number of series created in the head",
            st.series_created.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_out_of_order_samples",
            "Total number of out of order samples ingestion failed attempts.",
            st.out_of_order.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_out_of_bound_samples",
            "Total number of out of bound samples ingestion failed attempts with out of order support disabled.",
            st.out_of_bounds.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_too_old_samples",
            "Total number of out of order samples ingestion failed attempts with out-of-order support enabled, but sample outside of time window.",
            st.too_old.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_head_out_of_order_samples_appended",
            "Total number of appended out of order samples.",
            st.late_appended.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_wal_corruptions",
            "Total number of WAL corruptions.",
            st.wal_corruptions.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_snapshot_replay_error",
            "Total number snapshot replays that failed.",
            st.snapshot_replay_errors.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_wal_writes_failed",
            "Total number of WAL writes that failed.",
            st.wal_writes_failed.load(Ordering::Relaxed),
        )?;
        // Prometheus's exemplar storage figures (as it exports them with the feature on).
        let ex = head.exemplars.stats();
        counter(
            &mut enc,
            "prometheus_tsdb_exemplar_exemplars_appended",
            "Total number of appended exemplars.",
            ex.appended_total,
        )?;
        gauge(
            &mut enc,
            "prometheus_tsdb_exemplar_exemplars_in_storage",
            "Number of exemplars currently in circular storage.",
            ex.in_storage as f64,
        )?;
        gauge(
            &mut enc,
            "prometheus_tsdb_exemplar_series_with_exemplars_in_storage",
            "Number of series with exemplars currently in circular storage.",
            ex.series as f64,
        )?;
        gauge(
            &mut enc,
            "prometheus_tsdb_exemplar_last_exemplars_timestamp_seconds",
            "The timestamp of the oldest exemplar stored in circular storage. Useful to check for what timerange the current exemplar buffer limit allows. This usually means the last timestampfor all exemplars for a typical setup. This is not true though if one of the series timestamp is in future compared to rest series.",
            ex.oldest_t as f64 / 1000.0,
        )?;
        gauge(
            &mut enc,
            "prometheus_tsdb_exemplar_max_exemplars",
            "Total number of exemplars the exemplar storage can store, resizeable.",
            ex.max as f64,
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_exemplar_out_of_order_exemplars",
            "Total number of out of order exemplar ingestion failed attempts.",
            ex.out_of_order_total,
        )?;
        gauge(
            &mut enc,
            "vigil_tsdb_head_series_limit",
            "Most series the head holds (--storage.tsdb.max-head-series; 0: none).",
            st.max_series.load(Ordering::Relaxed) as f64,
        )?;
        counter(
            &mut enc,
            "vigil_tsdb_head_series_refused",
            "New series refused at the head series limit.",
            st.series_refused.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut enc,
            "vigil_tsdb_appends_failing",
            "1 while the WAL cannot be written (a full disk): appends are refused until it can.",
            if st.appends_failing.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        )?;
        gauge(
            &mut enc,
            "vigil_tsdb_unreadable_files",
            "Files in the storage directory vigil could not read at start (left as they were; the log names each and why).",
            self.db.unreadable().len() as f64,
        )?;
        let (histogram_chunks, bad_chunks) = self.db.skipped_chunks();
        counter(
            &mut enc,
            "vigil_tsdb_unreadable_chunks",
            "Chunks (and series entries) of blocks skipped when read because they were damaged (bad checksum, cut short).",
            bad_chunks,
        )?;
        counter(
            &mut enc,
            "vigil_tsdb_histogram_chunks_read",
            "Native histogram chunks of Prometheus blocks read for queries.",
            histogram_chunks,
        )?;
        gauge(
            &mut enc,
            "prometheus_tsdb_blocks_loaded",
            "Number of currently loaded data blocks",
            blocks.len() as f64,
        )?;
        let bytes: u64 = blocks.iter().map(|b| b.size_bytes).sum();
        gauge(
            &mut enc,
            "prometheus_tsdb_storage_blocks_bytes",
            "The number of bytes that are currently used for local storage by all blocks.",
            bytes as f64,
        )?;
        gauge(
            &mut enc,
            "prometheus_tsdb_wal_storage_size_bytes",
            "Size of the write log directory.",
            self.db.wal_size() as f64,
        )?;
        let c = self.db.compactions();
        counter(
            &mut enc,
            "prometheus_tsdb_compactions",
            "Total number of compactions that were executed for the partition.",
            c.ran,
        )?;
        counter(
            &mut enc,
            "prometheus_tsdb_compactions_failed",
            "Total number of compactions that failed for the partition.",
            c.failed,
        )?;
        CompactionDurations(c).encode(enc.encode_descriptor(
            "prometheus_tsdb_compaction_duration_seconds",
            "Duration of compaction runs",
            None,
            MetricType::Histogram,
        )?)?;
        if let Some((lo, hi)) = head.time_range() {
            gauge(
                &mut enc,
                "prometheus_tsdb_head_min_time",
                "Minimum time bound of the head block.",
                lo as f64,
            )?;
            gauge(
                &mut enc,
                "prometheus_tsdb_head_max_time",
                "Maximum timestamp of the head block.",
                hi as f64,
            )?;
        }
        Ok(())
    }
}

/// The `data` object of `/api/v1/status/tsdb`, in Prometheus's shape.
pub fn status_json(db: &Db, limit: usize) -> serde_json::Value {
    let c = db.head().cardinality(limit);
    let list = |v: &[(String, u64)]| -> serde_json::Value {
        v.iter()
            .map(|(n, x)| serde_json::json!({"name": n, "value": x}))
            .collect()
    };
    // An empty head reports the extremes, as Prometheus does.
    let (lo, hi) = db.head().time_range().unwrap_or((i64::MAX, i64::MIN));
    serde_json::json!({
        "headStats": {"numSeries": c.num_series, "numLabelPairs": c.num_label_pairs, "chunkCount": c.chunk_count, "minTime": lo, "maxTime": hi},
        "seriesCountByMetricName": list(&c.series_count_by_metric_name),
        "labelValueCountByLabelName": list(&c.label_value_count_by_label_name),
        "memoryInBytesByLabelName": list(&c.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": list(&c.series_count_by_label_value_pair),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::Labels;
    use vigil_storage::Storage;
    use vigil_tsdb::db::Options;

    /// Head cuts are exported as Prometheus's compaction counter and duration histogram.
    #[test]
    fn compactions_are_exported() {
        let d = std::env::temp_dir().join(format!("vigil-tsdb-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let hour = 3_600_000;
        let db = Arc::new(
            Db::open(
                &d,
                Options::new(0, 0).with_block_range(hour / 2, Some(hour / 2)),
            )
            .unwrap(),
        );
        let l = Labels::from_pairs([("__name__", "x")]);
        for t in (0..3 * hour).step_by(60_000) {
            let mut app = db.appender();
            app.append(0, &l, t, 1.0).unwrap();
            app.commit().unwrap();
        }
        db.maintain().unwrap();
        let mut reg = prometheus_client::registry::Registry::default();
        reg.register_collector(Box::new(TsdbCollector { db: db.clone() }));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        let blocks = db.blocks().len();
        assert!(blocks >= 3, "{blocks} blocks");
        for want in [
            format!("prometheus_tsdb_compactions_total {blocks}\n"),
            "prometheus_tsdb_compactions_failed_total 0\n".to_string(),
            format!("prometheus_tsdb_compaction_duration_seconds_count {blocks}\n"),
            format!("prometheus_tsdb_compaction_duration_seconds_bucket{{le=\"+Inf\"}} {blocks}\n"),
            "# TYPE prometheus_tsdb_compaction_duration_seconds histogram\n".to_string(),
        ] {
            assert!(text.contains(&want), "{want:?} missing from:\n{text}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
