//! Discovery's self-metrics, with Prometheus's names.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub static FILE_READ_ERRORS: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static FILE_SCAN_DURATION: LazyLock<Counter<f64>> = LazyLock::new(Counter::default);
pub static DISCOVERED_TARGETS: LazyLock<Family<Vec<(String, String)>, Gauge>> =
    LazyLock::new(Family::default);
pub static UPDATES_SENT: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static KUBERNETES_EVENTS: LazyLock<Family<Vec<(String, String)>, Counter>> =
    LazyLock::new(Family::default);
pub static KUBERNETES_FAILURES: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Register discovery's metrics in the server's registry.
pub fn register(r: &mut Registry) {
    let p = r.sub_registry_with_prefix("prometheus_sd");
    p.register(
        "file_read_errors",
        "The number of File-SD read errors.",
        FILE_READ_ERRORS.clone(),
    );
    p.register(
        "file_scan_duration_seconds",
        "Time spent scanning files for File-SD, in seconds.",
        FILE_SCAN_DURATION.clone(),
    );
    p.register(
        "discovered_targets",
        "Current number of discovered targets.",
        DISCOVERED_TARGETS.clone(),
    );
    p.register(
        "kubernetes_events",
        "The number of Kubernetes events handled.",
        KUBERNETES_EVENTS.clone(),
    );
    p.register(
        "kubernetes_failures",
        "The number of failed WATCH/LIST requests (and client setups).",
        KUBERNETES_FAILURES.clone(),
    );
    p.register(
        "updates_delivered",
        "Number of target-group updates delivered to the scrape manager.",
        UPDATES_SENT.clone(),
    );
}
