//! Roles `endpoints` and `endpointslice`: one target per endpoint address and port, joined with
//! the backing pod (and its matching container port) and the service; container ports of those
//! pods that no endpoint names become extra targets.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Endpoints, ObjectReference};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::Stores;
use super::meta::{Set, bool_str, join_host_port, key, object_labels, sanitize};
use super::pod::{Owners, containers, node_meta, pod_labels};
use super::slim::Pod;
use crate::TargetGroup;

/// Pods met while building a group, with the endpoint ports seen for each.
struct Seen<'a> {
    pods: BTreeMap<String, (&'a Pod, BTreeSet<i32>)>,
    owners: Owners<'a>,
}

impl<'a> Seen<'a> {
    /// Add the pod's labels and its container port matching `port` to `t`; remember the port.
    fn join(&mut self, st: &'a Stores, t: &mut Set, r: Option<&ObjectReference>, port: i32) {
        let Some(r) = r.filter(|r| r.kind.as_deref() == Some("Pod")) else {
            return;
        };
        let k = format!(
            "{}/{}",
            r.namespace.as_deref().unwrap_or(""),
            r.name.as_deref().unwrap_or("")
        );
        let Some(pod) = st.pods.get(&k) else { return };
        t.extend(&pod_labels(pod, &self.owners));
        // The last container with a matching port wins, as Prometheus's loop.
        for (c, init) in containers(pod) {
            if let Some(p) = c.ports.iter().flatten().find(|p| p.container_port == port) {
                t.meta("pod_container_name", c.name.clone());
                t.meta("pod_container_image", c.image.clone().unwrap_or_default());
                t.meta(
                    "pod_container_port_name",
                    p.name.clone().unwrap_or_default(),
                );
                t.meta("pod_container_port_number", p.container_port.to_string());
                t.meta(
                    "pod_container_port_protocol",
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                );
                t.meta("pod_container_init", bool_str(init));
            }
        }
        self.pods
            .entry(k)
            .or_insert_with(|| (pod, BTreeSet::new()))
            .1
            .insert(port);
    }

    /// Targets for container ports of seen pods that no endpoint listed.
    fn extra_targets(&self) -> Vec<vigil_model::Labels> {
        let mut out = Vec::new();
        for (pod, ports) in self.pods.values() {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default();
            if ip.is_empty() {
                continue;
            }
            let pl = pod_labels(pod, &self.owners);
            for (c, init) in containers(pod) {
                for p in c.ports.iter().flatten() {
                    if ports.contains(&p.container_port) {
                        continue;
                    }
                    let mut t = pl.clone();
                    t.set("__address__", join_host_port(&ip, p.container_port));
                    t.meta("pod_container_name", c.name.clone());
                    t.meta("pod_container_image", c.image.clone().unwrap_or_default());
                    t.meta(
                        "pod_container_port_name",
                        p.name.clone().unwrap_or_default(),
                    );
                    t.meta("pod_container_port_number", p.container_port.to_string());
                    t.meta(
                        "pod_container_port_protocol",
                        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    );
                    t.meta("pod_container_init", bool_str(init));
                    out.push(t.labels());
                }
            }
        }
        out
    }
}

fn attach_node(st: &Stores, attach: bool, t: &mut Set, node: Option<&str>) {
    if let (true, Some(n)) = (attach, node)
        && let Some(node) = st.nodes.get(n)
    {
        t.extend(&node_meta(node));
    }
}

pub fn endpoints_group<'a>(
    ep: &Endpoints,
    st: &'a Stores,
    attach: bool,
    owners: Owners<'a>,
) -> TargetGroup {
    let ns = ep.metadata.namespace.clone().unwrap_or_default();
    let mut g = Set::default();
    g.meta("namespace", ns.clone());
    object_labels(&mut g, "endpoints", &ep.metadata);
    if let Some(svc) = st.services.get(&key(&ep.metadata)) {
        g.extend(&super::service::service_labels(svc));
    }
    let mut seen = Seen {
        pods: BTreeMap::new(),
        owners,
    };
    let mut targets = Vec::new();
    for subset in ep.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            let ready = subset.addresses.iter().flatten().map(|a| (a, true));
            let not_ready = subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, false));
            for (a, ready) in ready.chain(not_ready) {
                let mut t = Set::default();
                t.set("__address__", join_host_port(&a.ip, port.port));
                t.meta("endpoint_port_name", port.name.clone().unwrap_or_default());
                t.meta(
                    "endpoint_port_protocol",
                    port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                );
                t.meta("endpoint_ready", bool_str(ready));
                if let Some(r) = &a.target_ref {
                    t.meta(
                        "endpoint_address_target_kind",
                        r.kind.clone().unwrap_or_default(),
                    );
                    t.meta(
                        "endpoint_address_target_name",
                        r.name.clone().unwrap_or_default(),
                    );
                }
                if let Some(n) = &a.node_name {
                    t.meta("endpoint_node_name", n.clone());
                }
                if let Some(h) = a.hostname.as_ref().filter(|h| !h.is_empty()) {
                    t.meta("endpoint_hostname", h.clone());
                }
                let node = a.node_name.as_deref().or_else(|| {
                    a.target_ref
                        .as_ref()
                        .filter(|r| r.kind.as_deref() == Some("Node"))
                        .and_then(|r| r.name.as_deref())
                });
                attach_node(st, attach, &mut t, node);
                seen.join(st, &mut t, a.target_ref.as_ref(), port.port);
                targets.push(t.labels());
            }
        }
    }
    targets.extend(seen.extra_targets());
    TargetGroup {
        source: format!("endpoints/{}", key(&ep.metadata)),
        targets,
        labels: g.labels(),
    }
}

pub fn endpointslice_group<'a>(
    es: &EndpointSlice,
    st: &'a Stores,
    attach: bool,
    owners: Owners<'a>,
) -> TargetGroup {
    let ns = es.metadata.namespace.clone().unwrap_or_default();
    let mut g = Set::default();
    g.meta("namespace", ns.clone());
    object_labels(&mut g, "endpointslice", &es.metadata);
    g.meta("endpointslice_address_type", es.address_type.clone());
    if let Some(svc) = es
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
        .and_then(|name| st.services.get(&format!("{ns}/{name}")))
    {
        g.extend(&super::service::service_labels(svc));
    }
    let mut seen = Seen {
        pods: BTreeMap::new(),
        owners,
    };
    let mut targets = Vec::new();
    for e in &es.endpoints {
        for port in es.ports.iter().flatten() {
            for addr in &e.addresses {
                let mut t = Set::default();
                t.set(
                    "__address__",
                    match port.port {
                        Some(p) => join_host_port(addr, p),
                        None => addr.clone(),
                    },
                );
                if let Some(n) = &port.name {
                    t.meta("endpointslice_port_name", n.clone());
                }
                if let Some(p) = &port.protocol {
                    t.meta("endpointslice_port_protocol", p.clone());
                }
                if let Some(p) = port.port {
                    t.meta("endpointslice_port", p.to_string());
                }
                if let Some(a) = &port.app_protocol {
                    t.meta("endpointslice_port_app_protocol", a.clone());
                }
                if let Some(c) = &e.conditions {
                    for (name, v) in [
                        ("ready", c.ready),
                        ("serving", c.serving),
                        ("terminating", c.terminating),
                    ] {
                        if let Some(v) = v {
                            t.meta(
                                &format!("endpointslice_endpoint_conditions_{name}"),
                                bool_str(v),
                            );
                        }
                    }
                }
                if let Some(h) = &e.hostname {
                    t.meta("endpointslice_endpoint_hostname", h.clone());
                }
                if let Some(r) = &e.target_ref {
                    t.meta(
                        "endpointslice_address_target_kind",
                        r.kind.clone().unwrap_or_default(),
                    );
                    t.meta(
                        "endpointslice_address_target_name",
                        r.name.clone().unwrap_or_default(),
                    );
                }
                if let Some(n) = &e.node_name {
                    t.meta("endpointslice_endpoint_node_name", n.clone());
                }
                if let Some(z) = &e.zone {
                    t.meta("endpointslice_endpoint_zone", z.clone());
                }
                for (k, v) in e.deprecated_topology.iter().flatten() {
                    let k = sanitize(k);
                    t.meta(&format!("endpointslice_endpoint_topology_{k}"), v.clone());
                    t.meta(
                        &format!("endpointslice_endpoint_topology_present_{k}"),
                        "true",
                    );
                }
                let node = match &e.target_ref {
                    Some(r) if r.kind.as_deref() == Some("Node") => r.name.as_deref(),
                    _ => e.node_name.as_deref(),
                };
                attach_node(st, attach, &mut t, node);
                if let Some(p) = port.port {
                    seen.join(st, &mut t, e.target_ref.as_ref(), p);
                }
                targets.push(t.labels());
            }
        }
    }
    targets.extend(seen.extra_targets());
    TargetGroup {
        source: format!("endpointslice/{}", key(&es.metadata)),
        targets,
        labels: g.labels(),
    }
}
