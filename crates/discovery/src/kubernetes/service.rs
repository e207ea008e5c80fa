//! Role `service`: one target per service port, addressed by the service's DNS name.

use k8s_openapi::api::core::v1::Service;

use super::meta::{Set, key, object_labels};
use crate::TargetGroup;

/// The service labels the endpoints roles attach to their groups.
pub fn service_labels(svc: &Service) -> Set {
    let mut s = Set::default();
    s.meta(
        "namespace",
        svc.metadata.namespace.clone().unwrap_or_default(),
    );
    object_labels(&mut s, "service", &svc.metadata);
    s
}

pub fn group(svc: &Service) -> TargetGroup {
    let g = service_labels(svc);
    let spec = svc.spec.as_ref();
    let kind = spec.and_then(|s| s.type_.clone()).unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let mut targets = Vec::new();
    for p in spec.and_then(|s| s.ports.as_ref()).into_iter().flatten() {
        let mut t = Set::default();
        t.set("__address__", format!("{name}.{ns}.svc:{}", p.port));
        t.meta("service_port_name", p.name.clone().unwrap_or_default());
        t.meta("service_port_number", p.port.to_string());
        t.meta(
            "service_port_protocol",
            p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        );
        t.meta("service_type", kind.clone());
        if kind == "ExternalName" {
            t.meta(
                "service_external_name",
                spec.and_then(|s| s.external_name.clone())
                    .unwrap_or_default(),
            );
        } else {
            t.meta(
                "service_cluster_ip",
                spec.and_then(|s| s.cluster_ip.clone()).unwrap_or_default(),
            );
        }
        if kind == "LoadBalancer" {
            t.meta(
                "service_loadbalancer_ip",
                spec.and_then(|s| s.load_balancer_ip.clone())
                    .unwrap_or_default(),
            );
        }
        targets.push(t.labels());
    }
    TargetGroup {
        source: format!("svc/{}", key(&svc.metadata)),
        targets,
        labels: g.labels(),
    }
}
