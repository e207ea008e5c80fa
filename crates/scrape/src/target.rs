//! Targets: what relabeling makes of a discovered label set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use vigil_config::{ScrapeConfig, format_duration, parse_duration};
use vigil_model::labels::{
    ADDRESS, ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS, CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB, INSTANCE, JOB,
    META_PREFIX, METRICS_PATH, PARAM_PREFIX, RESERVED_PREFIX, SCHEME, SCRAPE_INTERVAL,
    SCRAPE_NATIVE_HISTOGRAMS, SCRAPE_TIMEOUT,
};
use vigil_model::relabel;
use vigil_model::{Labels, LabelsBuilder};

/// A target after relabeling.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Labels before relabeling, with the job's defaults (`job`, `__scheme__`, ...) added,
    /// as Prometheus shows them as "discovered labels".
    pub discovered: Labels,
    /// Labels after relabeling, `__meta_*` removed, `instance` defaulted; still holds the
    /// internal `__address__`, `__scheme__`, `__param_*`... that shape the URL.
    pub labels: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// The job's histogram settings as this target's labels left them.
    pub histograms: HistogramSettings,
}

/// `scrape_native_histograms`, `always_scrape_classic_histograms` and
/// `convert_classic_histograms_to_nhcb` for one target: the job's, unless relabeling changed
/// its `__scrape_native_histograms__`, `__always_scrape_classic_histograms__` or
/// `__convert_classic_histograms_to_nhcb__` label (Prometheus 3.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSettings {
    pub native: bool,
    pub keep_classic: bool,
    pub to_nhcb: bool,
}

/// Go's `strconv.ParseBool`, as a target's boolean labels are read.
fn parse_bool(label: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "error parsing {label}: strconv.ParseBool: parsing {v:?}: invalid syntax"
        )),
    }
}

impl Target {
    /// The labels every sample of this target carries: those without the `__` prefix.
    pub fn public_labels(&self) -> Labels {
        public(&self.labels)
    }
}

fn public(l: &Labels) -> Labels {
    Labels::from_sorted_refs(l.iter().filter(|l| !l.name.starts_with(RESERVED_PREFIX)))
}

/// Outcome of relabeling one discovered label set.
#[derive(Debug, Clone, PartialEq)]
pub enum Populated {
    Keep(Target),
    /// Dropped by `relabel_configs`; holds the discovered labels.
    Dropped(Labels),
}

/// Apply the job's defaults and `relabel_configs` to one discovered target, as Prometheus's
/// `PopulateLabels` does (current Prometheus: no default port is added to `__address__`).
pub fn populate(
    group_labels: &Labels,
    target_labels: &Labels,
    cfg: &ScrapeConfig,
) -> Result<Populated, String> {
    let mut lb = LabelsBuilder::with_capacity(group_labels.len() + target_labels.len() + 6);
    for l in group_labels.iter().chain(target_labels.iter()) {
        lb.set(l.name, l.value);
    }
    let defaults = [
        (JOB, cfg.job_name.clone()),
        (SCRAPE_INTERVAL, format_duration(cfg.scrape_interval)),
        (SCRAPE_TIMEOUT, format_duration(cfg.scrape_timeout)),
        (METRICS_PATH, cfg.metrics_path.clone()),
        (SCHEME, cfg.scheme.clone()),
        (
            SCRAPE_NATIVE_HISTOGRAMS,
            cfg.scrape_native_histograms.to_string(),
        ),
        (
            ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS,
            cfg.always_scrape_classic_histograms.to_string(),
        ),
        (
            CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB,
            cfg.convert_classic_histograms_to_nhcb.to_string(),
        ),
    ];
    for (k, v) in defaults {
        if lb.get(k).is_none() {
            lb.set(k, v);
        }
    }
    for (k, vs) in &cfg.params {
        let name = format!("{PARAM_PREFIX}{k}");
        if let Some(v) = vs.first()
            && lb.get(&name).is_none()
        {
            lb.set(name, v.clone());
        }
    }
    let discovered = lb.clone().build();
    for rule in &cfg.relabel_configs {
        if !relabel::apply(&mut lb, rule) {
            return Ok(Populated::Dropped(discovered));
        }
    }
    let Some(addr) = lb.get(ADDRESS).map(str::to_string) else {
        return Err("no address".into());
    };
    if addr.contains('/') || addr.contains(' ') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let interval = parse_duration(lb.get(SCRAPE_INTERVAL).unwrap_or(""))
        .map_err(|e| format!("error parsing scrape interval: {e}"))?;
    let timeout = parse_duration(lb.get(SCRAPE_TIMEOUT).unwrap_or(""))
        .map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            format_duration(timeout),
            format_duration(interval)
        ));
    }
    // A label relabeling emptied (deleted) leaves the job's setting, as Go reads an empty
    // label as unset.
    let flag = |label: &str, job: bool| match lb.get(label) {
        None | Some("") => Ok(job),
        Some(v) => parse_bool(label, v),
    };
    let histograms = HistogramSettings {
        native: flag(SCRAPE_NATIVE_HISTOGRAMS, cfg.scrape_native_histograms)?,
        keep_classic: flag(
            ALWAYS_SCRAPE_CLASSIC_HISTOGRAMS,
            cfg.always_scrape_classic_histograms,
        )?,
        to_nhcb: flag(
            CONVERT_CLASSIC_HISTOGRAMS_TO_NHCB,
            cfg.convert_classic_histograms_to_nhcb,
        )?,
    };
    lb.retain(|l| !l.name.starts_with(META_PREFIX));
    if lb.get(INSTANCE).is_none() {
        lb.set(INSTANCE, addr.clone());
    }
    let labels = lb.build();
    let url = scrape_url(&labels, cfg);
    Ok(Populated::Keep(Target {
        discovered,
        labels,
        url,
        interval,
        timeout,
        histograms,
    }))
}

/// `scheme://address/path?params`, with `__param_*` labels overriding the first value of a
/// configured parameter, as Prometheus's `Target.URL` does.
fn scrape_url(labels: &Labels, cfg: &ScrapeConfig) -> String {
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in labels.iter() {
        if let Some(k) = l.name.strip_prefix(PARAM_PREFIX) {
            match params.get_mut(k) {
                Some(vs) if !vs.is_empty() => vs[0] = l.value.to_string(),
                _ => {
                    params.insert(k.to_string(), vec![l.value.to_string()]);
                }
            }
        }
    }
    let mut url = format!(
        "{}://{}{}",
        labels.get_or_empty(SCHEME),
        labels.get_or_empty(ADDRESS),
        labels.get_or_empty(METRICS_PATH)
    );
    let mut first = true;
    for (k, vs) in &params {
        for v in vs {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(&query_escape(k));
            url.push('=');
            url.push_str(&query_escape(v));
        }
    }
    url
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Health of a target, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What the last scrape of a target found.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
    pub last_samples: u64,
    /// Metric metadata of the last successful scrape (kept while scrapes fail).
    pub metadata: std::sync::Arc<Vec<crate::metadata::MetricMetadata>>,
}

impl Default for TargetStatus {
    fn default() -> Self {
        TargetStatus {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_scrape_duration: Duration::ZERO,
            last_samples: 0,
            metadata: Default::default(),
        }
    }
}

/// A running target: its definition and its live status, shared between its loop and the API.
#[derive(Debug)]
pub struct ActiveTarget {
    pub pool: String,
    pub target: Target,
    pub status: Mutex<TargetStatus>,
}

pub type SharedTarget = Arc<ActiveTarget>;
