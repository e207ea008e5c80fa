//! Role `ingress`: one target per rule and path, addressed by the rule's host.

use k8s_openapi::api::networking::v1::Ingress;

use super::meta::{Set, key, object_labels};
use crate::TargetGroup;

/// Whether `host` is covered by a TLS host (exactly, or by a `*.` wildcard of the same depth).
fn tls_covers(tls_host: &str, host: &str) -> bool {
    if tls_host == host {
        return true;
    }
    let (t, h): (Vec<&str>, Vec<&str>) = (tls_host.split('.').collect(), host.split('.').collect());
    t.len() == h.len() && t[0] == "*" && t[1..] == h[1..]
}

pub fn group(ing: &Ingress) -> TargetGroup {
    let mut g = Set::default();
    g.meta(
        "namespace",
        ing.metadata.namespace.clone().unwrap_or_default(),
    );
    object_labels(&mut g, "ingress", &ing.metadata);
    let spec = ing.spec.as_ref();
    if let Some(c) = spec.and_then(|s| s.ingress_class_name.clone()) {
        g.meta("ingress_class_name", c);
    }
    let tls_hosts: Vec<String> = spec
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|t| t.hosts.clone().unwrap_or_default())
        .collect();
    let mut targets = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
        let host = rule.host.clone().unwrap_or_default();
        let scheme = if tls_hosts.iter().any(|t| tls_covers(t, &host)) {
            "https"
        } else {
            "http"
        };
        let paths: Vec<String> = match &rule.http {
            None => vec!["/".into()],
            Some(h) => h
                .paths
                .iter()
                .map(|p| match p.path.as_deref() {
                    None | Some("") => "/".to_string(),
                    Some(x) => x.to_string(),
                })
                .collect(),
        };
        for path in paths {
            let mut t = Set::default();
            t.set("__address__", host.clone());
            t.meta("ingress_host", host.clone());
            t.meta("ingress_path", path);
            t.meta("ingress_scheme", scheme);
            targets.push(t.labels());
        }
    }
    TargetGroup {
        source: format!("ingress/{}", key(&ing.metadata)),
        targets,
        labels: g.labels(),
    }
}
