//! Scraping's self-metrics, with Prometheus's names.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type JobLabels = Vec<(String, String)>;

pub static OUT_OF_ORDER: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static DUPLICATE: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static EXEMPLAR_OUT_OF_ORDER: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static OUT_OF_BOUNDS: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static SAMPLE_LIMIT: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static BUCKET_LIMIT: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static BODY_SIZE_LIMIT: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static TARGET_LIMIT: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static POOL_RELOADS: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static POOL_TARGETS: LazyLock<Family<JobLabels, Gauge>> = LazyLock::new(Family::default);
pub static SCRAPES: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static NHCB_FAILED: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static BODY_BUDGET: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The scrape bodies' budget and what the bodies in flight hold, read when `/metrics` is
/// scraped (see `body_pool`).
#[derive(Debug)]
struct BodyBudgetCollector;

impl prometheus_client::collector::Collector for BodyBudgetCollector {
    fn encode(
        &self,
        mut enc: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::gauge::ConstGauge;
        ConstGauge::new(crate::body_pool::held() as f64).encode(enc.encode_descriptor(
            "vigil_scrape_body_bytes_in_flight",
            "Bytes the scrape bodies being read or parsed hold now (their buffers' capacity).",
            None,
            MetricType::Gauge,
        )?)?;
        let budget = crate::body_pool::budget();
        ConstGauge::new(if budget == usize::MAX { -1.0 } else { budget as f64 }).encode(
            enc.encode_descriptor(
                "vigil_scrape_body_budget_bytes",
                "The most the scrape bodies being read at once may hold (a quarter of memory; one body at most half), -1 when unbounded.",
                None,
                MetricType::Gauge,
            )?,
        )
    }
}

/// Register scraping's metrics in the server's registry.
pub fn register(r: &mut Registry) {
    let t = r.sub_registry_with_prefix("prometheus_target");
    t.register(
        "scrapes_sample_out_of_order",
        "Total number of samples rejected due to not being out of the expected order.",
        OUT_OF_ORDER.clone(),
    );
    t.register(
        "scrapes_exemplar_out_of_order",
        "Total number of exemplar rejected due to not being out of the expected order.",
        EXEMPLAR_OUT_OF_ORDER.clone(),
    );
    t.register(
        "scrapes_sample_duplicate_timestamp",
        "Total number of samples rejected due to duplicate timestamps but different values.",
        DUPLICATE.clone(),
    );
    t.register(
        "scrapes_sample_out_of_bounds",
        "Total number of samples rejected due to timestamp falling outside of the time bounds.",
        OUT_OF_BOUNDS.clone(),
    );
    t.register(
        "scrapes_exceeded_sample_limit",
        "Total number of scrapes that hit the sample limit and were rejected.",
        SAMPLE_LIMIT.clone(),
    );
    t.register(
        "scrapes_exceeded_native_histogram_bucket_limit",
        "Total number of scrapes that hit the native histogram bucket limit and were rejected.",
        BUCKET_LIMIT.clone(),
    );
    t.register(
        "scrapes_exceeded_body_size_limit",
        "Total number of scrapes that hit the body size limit.",
        BODY_SIZE_LIMIT.clone(),
    );
    t.register(
        "scrape_pool_exceeded_target_limit",
        "Total number of times scrape pools hit the target limit, during sync or config reload.",
        TARGET_LIMIT.clone(),
    );
    t.register(
        "scrape_pool_reloads",
        "Total number of scrape pool reloads.",
        POOL_RELOADS.clone(),
    );
    t.register(
        "scrape_pool_targets",
        "Current number of targets in this scrape pool.",
        POOL_TARGETS.clone(),
    );
    t.register(
        "scrapes",
        "Total number of scrapes performed.",
        SCRAPES.clone(),
    );
    r.register(
        "vigil_scrape_body_budget_exceeded",
        "Scrapes failed because their body would pass the budget of all scrape bodies in flight (vigil_scrape_body_budget_bytes), or half of it for one body.",
        BODY_BUDGET.clone(),
    );
    r.register_collector(Box::new(BodyBudgetCollector));
    // Prometheus drops such a histogram without counting it; vigil says how many.
    r.register(
        "vigil_scrape_nhcb_conversion_failures",
        "Classic histograms not converted to native histograms with custom buckets (convert_classic_histograms_to_nhcb) because their series cannot make one: a count that disagrees with the +Inf bucket, buckets that go down, a negative or non-finite count, or a sum without a count.",
        NHCB_FAILED.clone(),
    );
}
