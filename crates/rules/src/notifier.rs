//! Sends alerts to Alertmanager as Prometheus's notifier does: `alerting.alertmanagers` found by
//! static, file or Kubernetes discovery and relabeled, alerts given the external labels and
//! `alert_relabel_configs`, a bounded queue (the oldest dropped when full), batches POSTed to
//! every Alertmanager's API v2, and the `prometheus_notifications_*` metrics.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde_json::json;

use vigil_config::{AlertingConfig, AlertmanagerConfig};
use vigil_discovery::{JobSd, Manager as DiscoveryManager, TargetSets};
use vigil_model::relabel::{RelabelConfig, process};
use vigil_model::{Labels, LabelsBuilder};
use vigil_scrape::client::Scraper;

use crate::rule::{Alert, to_map};

/// One alert as it goes to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// Milliseconds.
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
}

impl Outgoing {
    /// From a rule's alert: starts when it fired, ends when it resolved (else when it stops
    /// being valid unless re-sent).
    pub fn from_alert(a: &Alert, expr: &str, external_url: &str) -> Outgoing {
        Outgoing {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at.unwrap_or(a.active_at),
            ends_at: a.resolved_at.unwrap_or(a.valid_until),
            generator_url: format!(
                "{external_url}/graph?g0.expr={}&g0.tab=1",
                crate::template::funcs::query_escape(expr)
            ),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "labels": to_map(&self.labels),
            "annotations": self.annotations,
            "startsAt": crate::api::rfc3339(Some(self.starts_at)),
            "endsAt": crate::api::rfc3339(Some(self.ends_at)),
            "generatorURL": self.generator_url,
        })
    }
}

/// One `alertmanagers` entry as running: its client, timeout, relabeling and what discovery
/// found.
struct AmSet {
    client: Arc<Scraper>,
    cfg: AlertmanagerConfig,
    active: Vec<String>,
    dropped: Vec<String>,
}

#[derive(Default)]
struct PerAm {
    sent: u64,
    errors: u64,
    latency_sum: f64,
    latency_count: u64,
}

#[derive(Default)]
struct Stats {
    dropped: u64,
    per_am: BTreeMap<String, PerAm>,
}

pub struct Notifier {
    queue: Mutex<VecDeque<Outgoing>>,
    capacity: usize,
    batch: usize,
    wake: Arc<tokio::sync::Notify>,
    sets: RwLock<Vec<AmSet>>,
    relabel: RwLock<(Vec<RelabelConfig>, Labels)>,
    stats: Mutex<Stats>,
    discovery: DiscoveryManager,
    /// What discovery last published: a reload that changes only relabeling, scheme or path
    /// recomputes the URLs from it (discovery itself does not publish again then).
    last_found: Mutex<TargetSets>,
}

/// An `alerting` section checked and ready to take effect ([`Notifier::prepare`]).
pub struct Prepared {
    sets: Vec<AmSet>,
    alerting: AlertingConfig,
}

/// Where one batch goes for one `alertmanagers` entry: client, timeout, URLs, relabeling.
type SendTo = (Arc<Scraper>, Duration, Vec<String>, Vec<RelabelConfig>);

/// Job name of the `i`-th `alertmanagers` entry in the notifier's discovery.
fn set_job(i: usize) -> String {
    format!("config-{i}")
}

impl Notifier {
    /// Start the notifier (inside the tokio runtime): its sender and its discovery.
    pub fn start(capacity: usize, batch: usize) -> Arc<Notifier> {
        let (discovery, mut targets) = DiscoveryManager::with_interval(Duration::from_secs(5));
        let n = Arc::new(Notifier {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            batch: batch.max(1),
            wake: Arc::new(tokio::sync::Notify::new()),
            sets: RwLock::new(Vec::new()),
            relabel: RwLock::new((Vec::new(), Labels::empty())),
            stats: Mutex::new(Stats::default()),
            discovery,
            last_found: Mutex::new(TargetSets::default()),
        });
        let weak = Arc::downgrade(&n);
        tokio::spawn(async move {
            while targets.changed().await.is_ok() {
                let sets = targets.borrow_and_update().clone();
                let Some(n) = weak.upgrade() else { return };
                *n.last_found.lock() = sets.clone();
                n.update_targets(&sets);
            }
        });
        let weak = Arc::downgrade(&n);
        let wake = n.wake.clone();
        tokio::spawn(async move {
            loop {
                {
                    let Some(n) = weak.upgrade() else { return };
                    if !n.queue.lock().is_empty() {
                        n.send_batch().await;
                        continue;
                    }
                }
                // A `send` in between leaves a permit: this returns at once then.
                wake.notified().await;
            }
        });
        n
    }

    /// Check the `alerting` section and build its clients (a bad TLS file fails the reload
    /// here), changing nothing yet.
    pub fn prepare(alerting: &AlertingConfig) -> Result<Prepared, String> {
        let mut sets = Vec::new();
        for (i, am) in alerting.alertmanagers.iter().enumerate() {
            let client = Scraper::with_http(
                &am.http_client,
                &[],
                vigil_config::NameEscaping::AllowUtf8,
                false,
                0,
            )
            .map_err(|e| format!("alerting.alertmanagers[{i}]: {e}"))?;
            sets.push(AmSet {
                client: Arc::new(client),
                cfg: am.clone(),
                active: Vec::new(),
                dropped: Vec::new(),
            });
        }
        Ok(Prepared {
            sets,
            alerting: alerting.clone(),
        })
    }

    /// Put a prepared `alerting` section in force.
    pub fn commit(&self, p: Prepared, external_labels: &Labels) {
        let Prepared { sets, alerting } = p;
        *self.sets.write() = sets;
        // URLs from what discovery found so far; sets whose discovery changed get theirs
        // when it publishes.
        let found = self.last_found.lock().clone();
        self.update_targets(&found);
        *self.relabel.write() = (
            alerting.alert_relabel_configs.clone(),
            external_labels.clone(),
        );
        self.discovery.apply(
            alerting
                .alertmanagers
                .iter()
                .enumerate()
                .map(|(i, am)| (set_job(i), sd_of(am)))
                .collect(),
        );
    }

    /// [`Notifier::prepare`] and [`Notifier::commit`] at once.
    pub fn apply(&self, alerting: &AlertingConfig, external_labels: &Labels) -> Result<(), String> {
        self.commit(Self::prepare(alerting)?, external_labels);
        Ok(())
    }

    fn update_targets(&self, found: &TargetSets) {
        let mut sets = self.sets.write();
        for (i, s) in sets.iter_mut().enumerate() {
            let Some(groups) = found.get(&set_job(i)) else {
                continue;
            };
            let (mut active, mut dropped) = (Vec::new(), Vec::new());
            for g in groups {
                for t in &g.targets {
                    let mut b = LabelsBuilder::new();
                    for l in g.labels.iter() {
                        b.set(l.name, l.value);
                    }
                    for l in t.iter() {
                        b.set(l.name, l.value);
                    }
                    b.set("__scheme__", s.cfg.scheme.clone());
                    b.set("__alerts_path__", alerts_path(&s.cfg.path_prefix));
                    let lset = b.build();
                    let url_of = |l: &Labels| {
                        format!(
                            "{}://{}{}",
                            l.get_or_empty("__scheme__"),
                            l.get_or_empty("__address__"),
                            l.get_or_empty("__alerts_path__")
                        )
                    };
                    match process(&lset, &s.cfg.relabel_configs) {
                        Some(l) if l.has("__address__") => active.push(url_of(&l)),
                        _ => dropped.push(url_of(&lset)),
                    }
                }
            }
            active.sort();
            active.dedup();
            s.active = active;
            s.dropped = dropped;
        }
    }

    /// Queue alerts: external labels added where the alert has none of that name, then
    /// `alert_relabel_configs`; when the queue is full the oldest go (and are counted).
    pub fn send(&self, alerts: Vec<Outgoing>) {
        let (relabel, external) = self.relabel.read().clone();
        let mut q = self.queue.lock();
        let mut dropped = 0u64;
        for mut a in alerts {
            if !external.is_empty() {
                let mut b = a.labels.builder();
                for l in external.iter() {
                    if !a.labels.has(l.name) {
                        b.set(l.name, l.value);
                    }
                }
                a.labels = b.build();
            }
            let Some(l) = process(&a.labels, &relabel) else {
                continue;
            };
            a.labels = l;
            if q.len() >= self.capacity {
                q.pop_front();
                dropped += 1;
            }
            q.push_back(a);
        }
        drop(q);
        if dropped > 0 {
            self.stats.lock().dropped += dropped;
            tracing::warn!(
                num_dropped = dropped,
                "Alert notification queue full, dropping alerts"
            );
        }
        self.wake.notify_one();
    }

    /// Send one batch to every Alertmanager; the batch is lost (and counted as dropped) only
    /// if none took it.
    async fn send_batch(&self) {
        let batch: Vec<Outgoing> = {
            let mut q = self.queue.lock();
            let n = q.len().min(self.batch);
            q.drain(..n).collect()
        };
        if batch.is_empty() {
            return;
        }
        let targets: Vec<SendTo> = self
            .sets
            .read()
            .iter()
            .map(|s| {
                (
                    s.client.clone(),
                    s.cfg.timeout,
                    s.active.clone(),
                    s.cfg.alert_relabel_configs.clone(),
                )
            })
            .collect();
        let mut any_ok = false;
        let mut tries = Vec::new();
        for (client, timeout, urls, relabel) in targets {
            let alerts: Vec<serde_json::Value> = batch
                .iter()
                .filter_map(|a| {
                    let labels = process(&a.labels, &relabel)?;
                    let mut a = a.clone();
                    a.labels = labels;
                    Some(a.json())
                })
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let body = serde_json::to_vec(&alerts).unwrap_or_default();
            for url in urls {
                let client = client.clone();
                let body = body.clone();
                let n = alerts.len() as u64;
                tries.push(async move {
                    let t = Instant::now();
                    let r = client.post_json(&url, body, timeout).await;
                    (url, n, t.elapsed(), r)
                });
            }
        }
        let results = futures_util::future::join_all(tries).await;
        let mut st = self.stats.lock();
        for (url, n, took, r) in results {
            let e = st.per_am.entry(url.clone()).or_default();
            e.latency_sum += took.as_secs_f64();
            e.latency_count += 1;
            e.sent += n;
            match r {
                Ok(()) => any_ok = true,
                Err(err) => {
                    e.errors += 1;
                    tracing::error!(alertmanager = %url, count = n, err = %err, "Error sending alerts");
                }
            }
        }
        if !any_ok {
            st.dropped += batch.len() as u64;
        }
    }

    /// Send what is queued, for up to `within` (at shutdown).
    pub async fn drain(&self, within: Duration) {
        let until = Instant::now() + within;
        while !self.queue.lock().is_empty() && Instant::now() < until {
            self.send_batch().await;
        }
    }

    /// `(active, dropped)` Alertmanager URLs, for `/api/v1/alertmanagers`.
    pub fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        let sets = self.sets.read();
        (
            sets.iter().flat_map(|s| s.active.iter().cloned()).collect(),
            sets.iter()
                .flat_map(|s| s.dropped.iter().cloned())
                .collect(),
        )
    }

    /// `prometheus_notifications_*` in the text exposition format.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let (active, _) = self.alertmanagers();
        let st = self.stats.lock();
        let mut urls: Vec<String> = active.clone();
        urls.extend(st.per_am.keys().cloned());
        urls.sort();
        urls.dedup();
        let get = |u: &str| st.per_am.get(u);
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_latency_seconds Latency quantiles for sending alert notifications.\n# TYPE prometheus_notifications_latency_seconds summary"
        );
        for u in &urls {
            let (s, c) = get(u)
                .map(|p| (p.latency_sum, p.latency_count))
                .unwrap_or((0.0, 0));
            let _ = writeln!(
                out,
                "prometheus_notifications_latency_seconds_sum{{alertmanager=\"{u}\"}} {s}"
            );
            let _ = writeln!(
                out,
                "prometheus_notifications_latency_seconds_count{{alertmanager=\"{u}\"}} {c}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_errors_total Total number of errors sending alert notifications.\n# TYPE prometheus_notifications_errors_total counter"
        );
        for u in &urls {
            let _ = writeln!(
                out,
                "prometheus_notifications_errors_total{{alertmanager=\"{u}\"}} {}",
                get(u).map(|p| p.errors).unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_sent_total Total number of alerts sent.\n# TYPE prometheus_notifications_sent_total counter"
        );
        for u in &urls {
            let _ = writeln!(
                out,
                "prometheus_notifications_sent_total{{alertmanager=\"{u}\"}} {}",
                get(u).map(|p| p.sent).unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_dropped_total Total number of alerts dropped due to errors when sending to Alertmanager.\n# TYPE prometheus_notifications_dropped_total counter\nprometheus_notifications_dropped_total {}",
            st.dropped
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_queue_length The number of alert notifications in the queue.\n# TYPE prometheus_notifications_queue_length gauge\nprometheus_notifications_queue_length {}",
            self.queue.lock().len()
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_queue_capacity The capacity of the alert notifications queue.\n# TYPE prometheus_notifications_queue_capacity gauge\nprometheus_notifications_queue_capacity {}",
            self.capacity
        );
        let _ = writeln!(
            out,
            "# HELP prometheus_notifications_alertmanagers_discovered The number of alertmanagers discovered and active.\n# TYPE prometheus_notifications_alertmanagers_discovered gauge\nprometheus_notifications_alertmanagers_discovered {}",
            active.len()
        );
        out
    }

    pub fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }
}

fn sd_of(am: &AlertmanagerConfig) -> JobSd {
    JobSd {
        static_configs: am.static_configs.clone(),
        file_sd_configs: am.file_sd_configs.clone(),
        kubernetes_sd_configs: am.kubernetes_sd_configs.clone(),
    }
}

/// `path_prefix` joined with the API v2 path, as Go's `path.Join("/", prefix, "/api/v2/alerts")`.
fn alerts_path(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        "/api/v2/alerts".into()
    } else {
        format!("/{p}/api/v2/alerts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> Outgoing {
        Outgoing {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: BTreeMap::new(),
            starts_at: 0,
            ends_at: 1,
            generator_url: String::new(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_oldest_and_counts_them() {
        // No Alertmanager configured: nothing is taken off the queue but by the sender, which
        // finds nowhere to send and counts the batch as dropped.
        let n = Notifier::start(3, 2);
        n.apply(
            &AlertingConfig::default(),
            &Labels::from_pairs([("cluster", "c")]),
        )
        .unwrap();
        // Fill faster than the sender runs (it is not polled until this task yields).
        n.send((0..5).map(|i| alert(&format!("a{i}"))).collect());
        assert_eq!(n.queue_len(), 3);
        let q: Vec<String> = n
            .queue
            .lock()
            .iter()
            .map(|a| a.labels.get_or_empty("alertname").to_string())
            .collect();
        assert_eq!(q, ["a2", "a3", "a4"], "the oldest went");
        assert!(
            n.queue.lock()[0].labels.has("cluster"),
            "external labels added"
        );
        assert_eq!(n.stats.lock().dropped, 2);
        // The sender drains in batches of 2, counting each unsent batch as dropped.
        n.drain(Duration::from_secs(5)).await;
        assert_eq!(n.queue_len(), 0);
        assert_eq!(n.stats.lock().dropped, 5);
        let m = n.metrics();
        assert!(
            m.contains("prometheus_notifications_dropped_total 5"),
            "{m}"
        );
        assert!(
            m.contains("prometheus_notifications_queue_capacity 3"),
            "{m}"
        );
    }

    #[test]
    fn alerts_path_joins_the_prefix() {
        assert_eq!(alerts_path(""), "/api/v2/alerts");
        assert_eq!(alerts_path("/am/"), "/am/api/v2/alerts");
        assert_eq!(alerts_path("am"), "/am/api/v2/alerts");
    }
}
