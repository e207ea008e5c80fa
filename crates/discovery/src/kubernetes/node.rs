//! Role `node`: one target per node, the kubelet on the node's preferred address.

use k8s_openapi::api::core::v1::Node;

use super::meta::{Set, join_host_port, object_labels, sanitize};
use crate::TargetGroup;

/// Address types in the order Prometheus prefers them for `__address__`.
const PREFERENCE: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// `None` when the node has no address: Prometheus then sends nothing (earlier targets stay).
pub fn group(node: &Node) -> Option<TargetGroup> {
    let addrs = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .map(|a| a.as_slice())
        .unwrap_or_default();
    let first_of = |t: &str| {
        addrs
            .iter()
            .find(|a| a.type_ == t)
            .map(|a| a.address.clone())
    };
    let addr = PREFERENCE.iter().find_map(|t| first_of(t))?;
    let mut g = Set::default();
    object_labels(&mut g, "node", &node.metadata);
    g.meta(
        "node_provider_id",
        node.spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
    );
    let port = node
        .status
        .as_ref()
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|k| k.port)
        .unwrap_or(10250);
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut t = Set::default();
    t.set("__address__", join_host_port(&addr, port));
    t.set("instance", name.clone());
    let mut seen: Vec<&str> = Vec::new();
    for a in addrs {
        if !seen.contains(&a.type_.as_str()) {
            seen.push(&a.type_);
            t.meta(
                &sanitize(&format!("node_address_{}", a.type_)),
                a.address.clone(),
            );
        }
    }
    Some(TargetGroup {
        source: format!("node/{name}"),
        targets: vec![t.labels()],
        labels: g.labels(),
    })
}
