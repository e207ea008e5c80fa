//! Label pieces shared by every role: object metadata labels, name sanitising, addresses.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const META: &str = "__meta_kubernetes_";

/// Prometheus's `SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes `_` (one
/// per character, multi-byte ones included).
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Labels being built for a group or a target.
#[derive(Debug, Default, Clone)]
pub struct Set(pub BTreeMap<String, String>);

impl Set {
    /// Set `__meta_kubernetes_<name>`.
    pub fn meta(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.0.insert(format!("{META}{name}"), value.into());
        self
    }
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.0.insert(name.to_string(), value.into());
        self
    }
    pub fn extend(&mut self, other: &Set) {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }
    pub fn labels(&self) -> vigil_model::Labels {
        vigil_model::Labels::from_pairs(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// `_name`, `_label_*`, `_labelpresent_*`, `_annotation_*`, `_annotationpresent_*` for role word
/// `r` (`pod`, `service`, `endpoints`, `endpointslice`, `node`, `ingress`).
pub fn object_labels(set: &mut Set, r: &str, m: &ObjectMeta) {
    set.meta(&format!("{r}_name"), m.name.clone().unwrap_or_default());
    metadata_pairs(set, r, m);
}

/// `_label_*`, `_labelpresent_*`, `_annotation_*`, `_annotationpresent_*` alone (a namespace's,
/// attached to other objects' groups, has no `_name`).
pub fn metadata_pairs(set: &mut Set, r: &str, m: &ObjectMeta) {
    pairs(set, r, "label", m.labels.as_ref());
    pairs(set, r, "annotation", m.annotations.as_ref());
}

fn pairs(set: &mut Set, r: &str, kind: &str, map: Option<&BTreeMap<String, String>>) {
    for (k, v) in map.into_iter().flatten() {
        let k = sanitize(k);
        set.meta(&format!("{r}_{kind}_{k}"), v.clone());
        set.meta(&format!("{r}_{kind}present_{k}"), "true");
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts in brackets.
pub fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A port-less address: an IPv6 host in brackets (as Prometheus 3).
pub fn host_only(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `true`/`false` as Prometheus writes booleans.
pub fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `<namespace>/<name>` of an object (`<name>` for cluster-scoped ones).
pub fn key(m: &ObjectMeta) -> String {
    match &m.namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", m.name.as_deref().unwrap_or("")),
        _ => m.name.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_and_addresses_as_prometheus() {
        assert_eq!(sanitize("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize("prometheus.io/scrape"), "prometheus_io_scrape");
        assert_eq!(sanitize("é-x"), "__x");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::5", 8080), "[fd00::5]:8080");
        assert_eq!(host_only("fd00::5"), "[fd00::5]");
    }
}
