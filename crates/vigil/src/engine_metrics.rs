//! `prometheus_engine_*` metrics: how many queries run and how many may (as Prometheus names
//! them), read from the query gate when `/metrics` is scraped.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

pub struct EngineCollector {
    pub gate: Arc<tokio::sync::Semaphore>,
    /// `--query.max-concurrency`.
    pub max: usize,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let running = self.max.saturating_sub(self.gate.available_permits());
        ConstGauge::new(running as f64).encode(enc.encode_descriptor(
            "prometheus_engine_queries",
            "The current number of queries being executed or waiting.",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.max as f64).encode(enc.encode_descriptor(
            "prometheus_engine_queries_concurrent_max",
            "The max number of concurrent queries.",
            None,
            MetricType::Gauge,
        )?)
    }
}
