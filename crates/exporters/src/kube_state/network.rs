//! Endpoints, EndpointSlices, Ingresses, IngressClasses and NetworkPolicies:
//! kube-state-metrics' `kube_endpoint_*`, `kube_endpointslice_*`, `kube_ingress_*`,
//! `kube_ingressclass_*` and `kube_networkpolicy_*` families, from its internal/store/
//! endpoint.go, endpointslice.go, ingress.go, ingressclass.go and networkpolicy.go.

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};

use super::families::{Options, created, resource_version, s, with_annotations};
use super::text::{Family, Rendered, gauge};

fn flag(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

// ---- endpoints ----

pub const ENDPOINT: [Family; 5] = [
    gauge("kube_endpoint_info", "[STABLE] Information about endpoint."),
    gauge("kube_endpoint_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_endpoint_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_endpoint_address",
        "[STABLE] Information about Endpoint available and non available addresses.",
    ),
    gauge(
        "kube_endpoint_ports",
        "[STABLE] (Deprecated since v2.14.0) Information about the Endpoint ports.",
    ),
];

pub fn endpoint_families() -> Vec<Family> {
    with_annotations(&ENDPOINT, "kube_endpoint_annotations")
}

/// Addresses per port of each subset, ready ones then not ready ones (a subset without ports
/// has no address series, as in kube-state-metrics); duplicates across subsets are kept.
pub fn render_endpoint(e: &Endpoints, o: &Options) -> Rendered {
    let fams = endpoint_families();
    let mut r = Rendered::new(fams.len());
    let m = &e.metadata;
    let base = [("namespace", s(&m.namespace)), ("endpoint", s(&m.name))];
    r.add(&fams[0], 0, &base, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    if let Some(extra) = o.labels("endpoints", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    for sub in e.subsets.iter().flatten() {
        for port in sub.ports.iter().flatten() {
            let number = port.port.to_string();
            let (name, proto) = (s(&port.name), s(&port.protocol));
            for (list, ready) in [
                (&sub.addresses, "true"),
                (&sub.not_ready_addresses, "false"),
            ] {
                for a in list.iter().flatten() {
                    let mut l = base.to_vec();
                    l.extend([
                        ("port_protocol", proto),
                        ("port_number", number.as_str()),
                        ("port_name", name),
                        ("ip", a.ip.as_str()),
                        ("ready", ready),
                    ]);
                    r.add(&fams[3], 3, &l, 1.0);
                }
            }
            let mut l = base.to_vec();
            l.extend([
                ("port_name", name),
                ("port_protocol", proto),
                ("port_number", number.as_str()),
            ]);
            r.add(&fams[4], 4, &l, 1.0);
        }
    }
    if let Some(extra) = o.annotations("endpoints", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- endpointslices ----

pub const ENDPOINTSLICE: [Family; 6] = [
    gauge(
        "kube_endpointslice_info",
        "Information about endpointslice.",
    ),
    gauge("kube_endpointslice_created", "Unix creation timestamp"),
    gauge(
        "kube_endpointslice_endpoints_hints",
        "Topology routing hints attached to endpoints",
    ),
    gauge(
        "kube_endpointslice_endpoints",
        "Endpoints attached to the endpointslice.",
    ),
    gauge(
        "kube_endpointslice_ports",
        "Ports attached to the endpointslice.",
    ),
    gauge(
        "kube_endpointslice_labels",
        "Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn endpointslice_families() -> Vec<Family> {
    with_annotations(&ENDPOINTSLICE, "kube_endpointslice_annotations")
}

/// The slice's name before its namespace, as kube-state-metrics orders them; every endpoint
/// label present, empty where the field is unset (its v2.14 labels with the later fix of
/// `serving`, `terminating` and `hostname`).
pub fn render_endpointslice(e: &EndpointSlice, o: &Options) -> Rendered {
    let fams = endpointslice_families();
    let mut r = Rendered::new(fams.len());
    let m = &e.metadata;
    let base = [
        ("endpointslice", s(&m.name)),
        ("namespace", s(&m.namespace)),
    ];
    let mut l = base.to_vec();
    l.push(("addresstype", e.address_type.as_str()));
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    for ep in &e.endpoints {
        let Some(first) = ep.addresses.first() else {
            continue;
        };
        for z in ep.hints.iter().flat_map(|h| h.for_zones.iter().flatten()) {
            let mut l = base.to_vec();
            l.extend([("address", first.as_str()), ("for_zone", z.name.as_str())]);
            r.add(&fams[2], 2, &l, 1.0);
        }
    }
    for ep in &e.endpoints {
        let c = ep.conditions.as_ref();
        let t = ep.target_ref.as_ref();
        let fixed = [
            ("ready", flag(c.and_then(|c| c.ready))),
            ("serving", flag(c.and_then(|c| c.serving))),
            ("terminating", flag(c.and_then(|c| c.terminating))),
            ("hostname", s(&ep.hostname)),
            ("targetref_kind", t.map_or("", |t| s(&t.kind))),
            ("targetref_name", t.map_or("", |t| s(&t.name))),
            ("targetref_namespace", t.map_or("", |t| s(&t.namespace))),
            ("endpoint_nodename", s(&ep.node_name)),
            ("endpoint_zone", s(&ep.zone)),
        ];
        for a in &ep.addresses {
            let mut l = base.to_vec();
            l.extend(fixed);
            l.push(("address", a.as_str()));
            r.add(&fams[3], 3, &l, 1.0);
        }
    }
    for p in e.ports.iter().flatten() {
        let number = p.port.map(|n| n.to_string()).unwrap_or_default();
        let mut l = base.to_vec();
        l.extend([
            ("port_name", s(&p.name)),
            ("port_protocol", s(&p.protocol)),
            ("port_number", number.as_str()),
        ]);
        r.add(&fams[4], 4, &l, 1.0);
    }
    if let Some(extra) = o.labels("endpointslices", m) {
        r.add_with(&fams[5], 5, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("endpointslices", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- ingresses ----

pub const INGRESS: [Family; 6] = [
    gauge("kube_ingress_info", "[STABLE] Information about ingress."),
    gauge(
        "kube_ingress_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_ingress_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_ingress_metadata_resource_version",
        "Resource version representing a specific version of ingress.",
    ),
    gauge(
        "kube_ingress_path",
        "[STABLE] Ingress host, paths and backend service information.",
    ),
    gauge(
        "kube_ingress_tls",
        "[STABLE] Ingress TLS host and secret information.",
    ),
];

pub fn ingress_families() -> Vec<Family> {
    with_annotations(&INGRESS, "kube_ingress_annotations")
}

/// The class from the legacy annotation when present (even empty), else the spec's, else
/// `_default`; one path series per HTTP path, with service labels (a port given by name
/// shows as 0, as in kube-state-metrics) or resource labels.
pub fn render_ingress(ing: &Ingress, o: &Options) -> Rendered {
    let fams = ingress_families();
    let mut r = Rendered::new(fams.len());
    let m = &ing.metadata;
    let base = [("namespace", s(&m.namespace)), ("ingress", s(&m.name))];
    let spec = ing.spec.as_ref();
    let class = m
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/ingress.class"))
        .map(String::as_str)
        .or_else(|| spec.and_then(|x| x.ingress_class_name.as_deref()))
        .unwrap_or("_default");
    let mut l = base.to_vec();
    l.push(("ingressclass", class));
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(extra) = o.labels("ingresses", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    if let Some(t) = created(m) {
        r.add(&fams[2], 2, &base, t);
    }
    if let Some(v) = resource_version(m) {
        r.add(&fams[3], 3, &base, v);
    }
    for rule in spec.and_then(|x| x.rules.as_ref()).into_iter().flatten() {
        let Some(http) = rule.http.as_ref() else {
            continue;
        };
        for p in &http.paths {
            let mut l = base.to_vec();
            l.extend([
                ("host", s(&rule.host)),
                ("path", s(&p.path)),
                ("path_type", p.path_type.as_str()),
            ]);
            let port;
            if let Some(svc) = p.backend.service.as_ref() {
                port = svc
                    .port
                    .as_ref()
                    .and_then(|x| x.number)
                    .unwrap_or(0)
                    .to_string();
                l.extend([
                    ("service_name", svc.name.as_str()),
                    ("service_port", port.as_str()),
                ]);
            } else {
                let res = p.backend.resource.as_ref();
                l.extend([
                    ("resource_api_group", res.map_or("", |x| s(&x.api_group))),
                    ("resource_kind", res.map_or("", |x| x.kind.as_str())),
                    ("resource_name", res.map_or("", |x| x.name.as_str())),
                ]);
            }
            r.add(&fams[4], 4, &l, 1.0);
        }
    }
    for tls in spec.and_then(|x| x.tls.as_ref()).into_iter().flatten() {
        for host in tls.hosts.iter().flatten() {
            let mut l = base.to_vec();
            l.extend([("tls_host", host.as_str()), ("secret", s(&tls.secret_name))]);
            r.add(&fams[5], 5, &l, 1.0);
        }
    }
    if let Some(extra) = o.annotations("ingresses", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- ingressclasses ----

pub const INGRESSCLASS: [Family; 3] = [
    gauge("kube_ingressclass_info", "Information about ingressclass."),
    gauge("kube_ingressclass_created", "Unix creation timestamp"),
    gauge(
        "kube_ingressclass_labels",
        "Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn ingressclass_families() -> Vec<Family> {
    with_annotations(&INGRESSCLASS, "kube_ingressclass_annotations")
}

pub fn render_ingressclass(c: &IngressClass, o: &Options) -> Rendered {
    let fams = ingressclass_families();
    let mut r = Rendered::new(fams.len());
    let m = &c.metadata;
    let base = [("ingressclass", s(&m.name))];
    let mut l = base.to_vec();
    l.push((
        "controller",
        c.spec.as_ref().map_or("", |x| s(&x.controller)),
    ));
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    if let Some(extra) = o.labels("ingressclasses", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("ingressclasses", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- networkpolicies ----

pub const NETWORKPOLICY: [Family; 4] = [
    gauge(
        "kube_networkpolicy_created",
        "Unix creation timestamp of network policy",
    ),
    gauge(
        "kube_networkpolicy_labels",
        "Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_networkpolicy_spec_ingress_rules",
        "Number of ingress rules on the networkpolicy",
    ),
    gauge(
        "kube_networkpolicy_spec_egress_rules",
        "Number of egress rules on the networkpolicy",
    ),
];

pub fn networkpolicy_families() -> Vec<Family> {
    with_annotations(&NETWORKPOLICY, "kube_networkpolicy_annotations")
}

/// Rule counts are the lengths of the lists, whatever `policyTypes` says.
pub fn render_networkpolicy(np: &NetworkPolicy, o: &Options) -> Rendered {
    let fams = networkpolicy_families();
    let mut r = Rendered::new(fams.len());
    let m = &np.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("networkpolicy", s(&m.name)),
    ];
    if let Some(t) = created(m) {
        r.add(&fams[0], 0, &base, t);
    }
    if let Some(extra) = o.labels("networkpolicies", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    let spec = np.spec.as_ref();
    let ingress = spec.and_then(|x| x.ingress.as_ref()).map_or(0, Vec::len);
    let egress = spec.and_then(|x| x.egress.as_ref()).map_or(0, Vec::len);
    r.add(&fams[2], 2, &base, ingress as f64);
    r.add(&fams[3], 3, &base, egress as f64);
    if let Some(extra) = o.annotations("networkpolicies", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}
