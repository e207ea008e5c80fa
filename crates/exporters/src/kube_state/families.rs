//! kube-state-metrics' families for pods, deployments, replicasets, daemonsets, statefulsets,
//! nodes, namespaces, services, configmaps and secrets: names,
//! label sets and values as `docs/kube-state-metrics.md` specifies (kube-state-metrics v2,
//! plus the v1 resource families behind `--legacy-resource-metrics`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Namespace, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::objects::{ConfigMapMeta, SecretMeta};
use super::text::{Family, Rendered, counter, gauge, label_name, sanitize};

/// What the operator chose: which Kubernetes labels become `label_*` labels per resource
/// (`--metric-labels-allowlist`), and whether the v1 families are written too.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Resource (`pods`, `deployments`, …) to allowed label keys; `*` allows all.
    pub labels_allowlist: BTreeMap<String, Vec<String>>,
    /// The same for annotation keys (`kube_<resource>_annotations`).
    pub annotations_allowlist: BTreeMap<String, Vec<String>>,
    pub legacy_resource_metrics: bool,
}

impl Options {
    /// `--metric-labels-allowlist=pods=[app,version],deployments=[*]` (the same form for
    /// `--metric-annotations-allowlist`, named by `flag` in errors).
    pub fn parse_allowlist(flag: &str, s: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
        let mut out = BTreeMap::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let (res, tail) = rest
                .split_once("=[")
                .ok_or_else(|| format!("--{flag}: expected resource=[keys] at {rest:?}"))?;
            let (list, tail) = tail
                .split_once(']')
                .ok_or_else(|| format!("--{flag}: missing ] after {res:?}"))?;
            let keys: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect();
            // kube-state-metrics skips such a key with a warning; refused here, by name.
            if let Some(k) = keys.iter().find(|k| k.matches('*').count() > 1) {
                return Err(format!(
                    "--{flag}: {}=[{k}]: at most one * in a key",
                    res.trim()
                ));
            }
            out.insert(res.trim().to_string(), keys);
            rest = tail.trim_start_matches(',').trim();
        }
        Ok(out)
    }

    /// The `label_*` pairs of an object's labels allowed for `resource`, sorted by key; `None`
    /// when the resource has no allowlist (kube-state-metrics then writes no `*_labels` sample).
    pub(super) fn labels(&self, resource: &str, m: &ObjectMeta) -> Option<Vec<(String, String)>> {
        allowed_pairs(&self.labels_allowlist, resource, "label_", &m.labels)
    }

    /// The `annotation_*` pairs, as [`Self::labels`] for annotations.
    pub(super) fn annotations(
        &self,
        resource: &str,
        m: &ObjectMeta,
    ) -> Option<Vec<(String, String)>> {
        allowed_pairs(
            &self.annotations_allowlist,
            resource,
            "annotation_",
            &m.annotations,
        )
    }
}

/// kube-state-metrics' rules: the `*` resource's list applies to every resource, over the
/// resource's own; an empty list writes no sample; a lone `*` first allows every key (later
/// it allows nothing); a key with one `*` matches keys with that prefix and suffix.
fn allowed_pairs(
    allowlist: &BTreeMap<String, Vec<String>>,
    resource: &str,
    prefix: &str,
    map: &Option<BTreeMap<String, String>>,
) -> Option<Vec<(String, String)>> {
    let allowed = allowlist.get("*").or_else(|| allowlist.get(resource))?;
    if allowed.is_empty() {
        return None;
    }
    let all = allowed.first().is_some_and(|a| a == "*");
    let allows = |k: &str| {
        allowed.iter().any(|a| match a.split_once('*') {
            None => a == k,
            Some(("", "")) => false,
            Some((pre, post)) => {
                k.len() >= pre.len() + post.len() && k.starts_with(pre) && k.ends_with(post)
            }
        })
    };
    map.iter()
        .flatten()
        .filter(|(k, _)| all || allows(k))
        .map(|(k, v)| (label_name(prefix, k), v.clone()))
        .collect::<Vec<_>>()
        .into()
}

impl Options {}

/// `kube_<resource>_annotations`: written only for resources `--metric-annotations-allowlist`
/// names, as kube-state-metrics does. Kept last in each resource's list.
const fn annotations_family(name: &'static str) -> Family {
    gauge(
        name,
        "Kubernetes annotations converted to Prometheus labels.",
    )
}

/// A resource's families with its annotations family appended.
pub(super) fn with_annotations(fixed: &[Family], name: &'static str) -> Vec<Family> {
    let mut v = fixed.to_vec();
    v.push(annotations_family(name));
    v
}

pub fn deployment_families() -> Vec<Family> {
    with_annotations(&DEPLOYMENT, "kube_deployment_annotations")
}

pub fn node_families() -> Vec<Family> {
    with_annotations(&NODE, "kube_node_annotations")
}

pub fn namespace_families() -> Vec<Family> {
    with_annotations(&NAMESPACE, "kube_namespace_annotations")
}

pub fn service_families() -> Vec<Family> {
    with_annotations(&SERVICE, "kube_service_annotations")
}

pub fn daemonset_families() -> Vec<Family> {
    with_annotations(&DAEMONSET, "kube_daemonset_annotations")
}

pub fn statefulset_families() -> Vec<Family> {
    with_annotations(&STATEFULSET, "kube_statefulset_annotations")
}

pub fn replicaset_families() -> Vec<Family> {
    with_annotations(&REPLICASET, "kube_replicaset_annotations")
}

pub fn configmap_families() -> Vec<Family> {
    with_annotations(&CONFIGMAP, "kube_configmap_annotations")
}

pub fn secret_families() -> Vec<Family> {
    with_annotations(&SECRET, "kube_secret_annotations")
}

pub(super) fn created(m: &ObjectMeta) -> Option<f64> {
    m.creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second() as f64)
}

pub(super) fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

/// `cpu` → (`cpu`, `core`), `memory` → (`memory`, `byte`), other names sanitized, with the unit
/// kube-state-metrics gives them.
fn resource_unit(name: &str) -> (String, &'static str) {
    let unit = match name {
        "cpu" => "core",
        "memory" | "ephemeral-storage" | "storage" => "byte",
        n if n.starts_with("hugepages-") || n.starts_with("attachable-volumes-") => "byte",
        _ => "integer",
    };
    (sanitize(name), unit)
}

/// Where the quantities come from decides their rounding, as in kube-state-metrics.
#[derive(Clone, Copy, PartialEq)]
enum Rounding {
    /// Containers: cpu to a thousandth of a core, everything else to whole units; no `pods`.
    Container,
    /// Nodes: every resource to a thousandth.
    Node,
}

fn quantities(
    q: &Option<BTreeMap<String, Quantity>>,
    how: Rounding,
) -> Vec<(String, &'static str, f64)> {
    q.iter()
        .flatten()
        .filter(|(k, _)| !(how == Rounding::Container && *k == "pods"))
        .filter_map(|(k, v)| {
            let (r, u) = resource_unit(k);
            let q = super::text::Quantity::parse(&v.0)?;
            let x = if how == Rounding::Node || k == "cpu" {
                q.milli()
            } else {
                q.value()
            };
            Some((r, u, x))
        })
        .collect()
}

// ---- pods ----

pub const POD: [Family; 22] = [
    gauge("kube_pod_info", "[STABLE] Information about pod."),
    gauge(
        "kube_pod_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_pod_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_pod_owner",
        "[STABLE] Information about the Pod's owner.",
    ),
    gauge(
        "kube_pod_start_time",
        "[STABLE] Start time in unix timestamp for a pod.",
    ),
    gauge("kube_pod_status_phase", "[STABLE] The pods current phase."),
    gauge(
        "kube_pod_status_ready",
        "[STABLE] Describes whether the pod is ready to serve requests.",
    ),
    gauge(
        "kube_pod_status_scheduled",
        "[STABLE] Describes the status of the scheduling process for the pod.",
    ),
    gauge(
        "kube_pod_container_info",
        "[STABLE] Information about a container in a pod.",
    ),
    gauge(
        "kube_pod_container_status_waiting",
        "[STABLE] Describes whether the container is currently in waiting state.",
    ),
    gauge(
        "kube_pod_container_status_waiting_reason",
        "[STABLE] Describes the reason the container is currently in waiting state.",
    ),
    gauge(
        "kube_pod_container_status_running",
        "[STABLE] Describes whether the container is currently in running state.",
    ),
    gauge(
        "kube_pod_container_status_terminated",
        "[STABLE] Describes whether the container is currently in terminated state.",
    ),
    gauge(
        "kube_pod_container_status_terminated_reason",
        "Describes the reason the container is currently in terminated state.",
    ),
    gauge(
        "kube_pod_container_status_last_terminated_reason",
        "Describes the last reason the container was in terminated state.",
    ),
    gauge(
        "kube_pod_container_status_ready",
        "[STABLE] Describes whether the containers readiness check succeeded.",
    ),
    counter(
        "kube_pod_container_status_restarts_total",
        "[STABLE] The number of container restarts per container.",
    ),
    gauge(
        "kube_pod_container_resource_requests",
        "The number of requested request resource by a container. It is recommended to use the kube_pod_resource_requests metric exposed by kube-scheduler instead, as it is more precise.",
    ),
    gauge(
        "kube_pod_container_resource_limits",
        "The number of requested limit resource by a container. It is recommended to use the kube_pod_resource_limits metric exposed by kube-scheduler instead, as it is more precise.",
    ),
    gauge(
        "kube_pod_container_resource_requests_cpu_cores",
        "The number of requested cpu cores by a container.",
    ),
    gauge(
        "kube_pod_container_resource_requests_memory_bytes",
        "The number of requested memory bytes by a container.",
    ),
    gauge(
        "kube_pod_container_resource_limits_cpu_cores",
        "The limit on cpu cores to be used by a container.",
    ),
];
/// The last v1 family (outside the array above to keep its index arithmetic simple).
pub const POD_LEGACY_LIMIT_MEMORY: Family = gauge(
    "kube_pod_container_resource_limits_memory_bytes",
    "The limit on memory to be used by a container in bytes.",
);

/// The rest of kube-state-metrics v2.18's default pod families, after the legacy one (index
/// `POD_MORE_AT` on).
pub const POD_MORE: [Family; 34] = [
    gauge(
        "kube_pod_completion_time",
        "[STABLE] Completion time in unix timestamp for a pod.",
    ),
    gauge(
        "kube_pod_container_state_started",
        "[STABLE] Start time in unix timestamp for a pod container.",
    ),
    gauge(
        "kube_pod_container_status_last_terminated_exitcode",
        "Describes the exit code for the last container in terminated state.",
    ),
    gauge(
        "kube_pod_container_status_last_terminated_timestamp",
        "Last terminated time for a pod container in unix timestamp.",
    ),
    gauge("kube_pod_deletion_timestamp", "Unix deletion timestamp"),
    gauge("kube_pod_ips", "Pod IP addresses"),
    gauge(
        "kube_pod_init_container_info",
        "[STABLE] Information about an init container in a pod.",
    ),
    gauge(
        "kube_pod_init_container_resource_limits",
        "The number of requested limit resource by an init container.",
    ),
    gauge(
        "kube_pod_init_container_resource_requests",
        "The number of requested request resource by an init container.",
    ),
    gauge(
        "kube_pod_init_container_status_last_terminated_reason",
        "Describes the last reason the init container was in terminated state.",
    ),
    gauge(
        "kube_pod_init_container_status_ready",
        "[STABLE] Describes whether the init containers readiness check succeeded.",
    ),
    counter(
        "kube_pod_init_container_status_restarts_total",
        "[STABLE] The number of restarts for the init container.",
    ),
    gauge(
        "kube_pod_init_container_status_running",
        "[STABLE] Describes whether the init container is currently in running state.",
    ),
    gauge(
        "kube_pod_init_container_status_terminated",
        "[STABLE] Describes whether the init container is currently in terminated state.",
    ),
    gauge(
        "kube_pod_init_container_status_terminated_reason",
        "Describes the reason the init container is currently in terminated state.",
    ),
    gauge(
        "kube_pod_init_container_status_waiting",
        "[STABLE] Describes whether the init container is currently in waiting state.",
    ),
    gauge(
        "kube_pod_init_container_status_waiting_reason",
        "Describes the reason the init container is currently in waiting state.",
    ),
    gauge(
        "kube_pod_overhead_cpu_cores",
        "The pod overhead in regards to cpu cores associated with running a pod.",
    ),
    gauge(
        "kube_pod_overhead_memory_bytes",
        "The pod overhead in regards to memory associated with running a pod.",
    ),
    gauge(
        "kube_pod_restart_policy",
        "[STABLE] Describes the restart policy in use by this pod.",
    ),
    gauge(
        "kube_pod_runtimeclass_name_info",
        "The runtimeclass associated with the pod.",
    ),
    gauge(
        "kube_pod_spec_volumes_persistentvolumeclaims_info",
        "[STABLE] Information about persistentvolumeclaim volumes in a pod.",
    ),
    gauge(
        "kube_pod_spec_volumes_persistentvolumeclaims_readonly",
        "[STABLE] Describes whether a persistentvolumeclaim is mounted read only.",
    ),
    gauge("kube_pod_status_qos_class", "The pods current qosClass."),
    gauge(
        "kube_pod_status_ready_time",
        "Readiness achieved time in unix timestamp for a pod.",
    ),
    gauge(
        "kube_pod_status_initialized_time",
        "Initialized time in unix timestamp for a pod.",
    ),
    gauge(
        "kube_pod_status_container_ready_time",
        "Readiness achieved time in unix timestamp for a pod containers.",
    ),
    gauge("kube_pod_status_reason", "The pod status reasons"),
    gauge(
        "kube_pod_status_scheduled_time",
        "[STABLE] Unix timestamp when pod moved into scheduled status",
    ),
    gauge(
        "kube_pod_status_unschedulable",
        "[STABLE] Describes the unschedulable status for the pod.",
    ),
    gauge(
        "kube_pod_status_unscheduled_time",
        "Unix timestamp when pod moved into unscheduled status",
    ),
    gauge(
        "kube_pod_tolerations",
        "Information about the pod tolerations",
    ),
    gauge("kube_pod_service_account", "The service account for a pod."),
    gauge("kube_pod_scheduler", "The scheduler for a pod."),
];
/// Where [`POD_MORE`] starts in [`pod_families`].
const POD_MORE_AT: usize = POD.len() + 1;

/// Go's zero `time.Time` as Unix seconds: what kube-state-metrics writes for a time field that
/// is absent from a state or condition that is there.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

fn seconds(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> f64 {
    t.map_or(GO_ZERO_TIME, |t| t.0.as_second() as f64)
}

/// A deletion timestamp that is set and not Go's zero time.
fn deleted(m: &ObjectMeta) -> Option<f64> {
    m.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second() as f64)
        .filter(|t| *t != GO_ZERO_TIME)
}

/// kube-state-metrics v2.18's fixed pod status reasons.
const POD_STATUS_REASONS: [&str; 5] = [
    "Evicted",
    "NodeAffinity",
    "NodeLost",
    "Shutdown",
    "UnexpectedAdmissionError",
];

pub fn pod_families() -> Vec<Family> {
    let mut v = POD.to_vec();
    v.push(POD_LEGACY_LIMIT_MEMORY);
    v.extend(POD_MORE);
    v.push(annotations_family("kube_pod_annotations"));
    v
}

/// The families of [`POD_MORE`] for one pod.
fn render_pod_more(r: &mut Rendered, fams: &[Family], p: &Pod, base: &[(&str, &str); 3]) {
    let at = |name: &str| {
        POD_MORE_AT
            + POD_MORE
                .iter()
                .position(|f| f.name == name)
                .expect("a POD_MORE family")
    };
    let add = |r: &mut Rendered, name: &str, extra: &[(&str, &str)], v: f64| {
        let i = at(name);
        let mut l = base.to_vec();
        l.extend_from_slice(extra);
        r.add(&fams[i], i, &l, v);
    };
    let m = &p.metadata;
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten();
    // The newest finish of the containers that have terminated, when after the epoch.
    let finished = statuses
        .clone()
        .filter_map(|cs| cs.state.as_ref()?.terminated.as_ref())
        .map(|t| seconds(t.finished_at.as_ref()))
        .fold(0.0_f64, f64::max);
    if finished > 0.0 {
        add(r, "kube_pod_completion_time", &[], finished);
    }
    for cs in statuses.clone() {
        let c = [("container", cs.name.as_str())];
        let state = cs.state.as_ref();
        if let Some(t) = state.and_then(|s| s.running.as_ref()) {
            add(
                r,
                "kube_pod_container_state_started",
                &c,
                seconds(t.started_at.as_ref()),
            );
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            add(
                r,
                "kube_pod_container_state_started",
                &c,
                seconds(t.started_at.as_ref()),
            );
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            add(
                r,
                "kube_pod_container_status_last_terminated_exitcode",
                &c,
                t.exit_code as f64,
            );
            add(
                r,
                "kube_pod_container_status_last_terminated_timestamp",
                &c,
                seconds(t.finished_at.as_ref()),
            );
        }
    }
    if let Some(t) = deleted(m) {
        add(r, "kube_pod_deletion_timestamp", &[], t);
    }
    for ip in status
        .and_then(|s| s.pod_ips.as_ref())
        .into_iter()
        .flatten()
    {
        // As Go's `ParseIPSloppy` then `To4`: IPv4 with leading zeros and IPv4-mapped IPv6 are
        // family 4; an address that does not parse is left out (kube-state-metrics would crash
        // on it).
        let sloppy_v4 = || {
            let parts: Vec<&str> = ip.ip.split('.').collect();
            parts.len() == 4
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.len() <= 3
                        && p.bytes().all(|b| b.is_ascii_digit())
                        && p.parse::<u16>().is_ok_and(|n| n <= 255)
                })
        };
        let family = match ip.ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => "4",
            Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => "4",
            Ok(std::net::IpAddr::V6(_)) => "6",
            Err(_) if sloppy_v4() => "4",
            Err(_) => continue,
        };
        add(
            r,
            "kube_pod_ips",
            &[("ip", ip.ip.as_str()), ("ip_family", family)],
            1.0,
        );
    }
    let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
    let inits: Vec<&Container> = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .collect();
    let init_statuses: Vec<&ContainerStatus> = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .collect();
    for c in &inits {
        for cs in init_statuses.iter().filter(|cs| cs.name == c.name) {
            add(
                r,
                "kube_pod_init_container_info",
                &[
                    ("container", cs.name.as_str()),
                    ("image_spec", c.image.as_deref().unwrap_or("")),
                    ("image", cs.image.as_str()),
                    ("image_id", cs.image_id.as_str()),
                    ("container_id", s(&cs.container_id)),
                    ("restart_policy", s(&c.restart_policy)),
                ],
                1.0,
            );
        }
    }
    for c in &inits {
        let res = c.resources.as_ref();
        for (name, q) in [
            (
                "kube_pod_init_container_resource_limits",
                res.and_then(|r| r.limits.clone()),
            ),
            (
                "kube_pod_init_container_resource_requests",
                res.and_then(|r| r.requests.clone()),
            ),
        ] {
            for (resource, unit, v) in quantities(&q, Rounding::Container) {
                add(
                    r,
                    name,
                    &[
                        ("container", c.name.as_str()),
                        ("node", node),
                        ("resource", resource.as_str()),
                        ("unit", unit),
                    ],
                    v,
                );
            }
        }
    }
    for cs in &init_statuses {
        let c = [("container", cs.name.as_str())];
        let state = cs.state.as_ref();
        let (waiting, running, terminated) = (
            state.and_then(|s| s.waiting.as_ref()),
            state.and_then(|s| s.running.as_ref()),
            state.and_then(|s| s.terminated.as_ref()),
        );
        let one = |b: bool| if b { 1.0 } else { 0.0 };
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let l = [c[0], ("reason", s(&t.reason))];
            add(
                r,
                "kube_pod_init_container_status_last_terminated_reason",
                &l,
                1.0,
            );
        }
        add(r, "kube_pod_init_container_status_ready", &c, one(cs.ready));
        add(
            r,
            "kube_pod_init_container_status_restarts_total",
            &c,
            cs.restart_count as f64,
        );
        add(
            r,
            "kube_pod_init_container_status_running",
            &c,
            one(running.is_some()),
        );
        add(
            r,
            "kube_pod_init_container_status_terminated",
            &c,
            one(terminated.is_some()),
        );
        if let Some(t) = terminated {
            let l = [c[0], ("reason", s(&t.reason))];
            add(
                r,
                "kube_pod_init_container_status_terminated_reason",
                &l,
                1.0,
            );
        }
        add(
            r,
            "kube_pod_init_container_status_waiting",
            &c,
            one(waiting.is_some()),
        );
        if let Some(w) = waiting {
            let l = [c[0], ("reason", s(&w.reason))];
            add(r, "kube_pod_init_container_status_waiting_reason", &l, 1.0);
        }
    }
    let overhead = spec.and_then(|s| s.overhead.as_ref());
    if let Some(q) = overhead
        .and_then(|o| o.get("cpu"))
        .and_then(|q| super::text::Quantity::parse(&q.0))
    {
        add(r, "kube_pod_overhead_cpu_cores", &[], q.ksm_float());
    }
    if let Some(q) = overhead
        .and_then(|o| o.get("memory"))
        .and_then(|q| super::text::Quantity::parse(&q.0))
    {
        add(r, "kube_pod_overhead_memory_bytes", &[], q.value());
    }
    add(
        r,
        "kube_pod_restart_policy",
        &[("type", spec.map_or("", |x| s(&x.restart_policy)))],
        1.0,
    );
    if let Some(rc) = spec.and_then(|x| x.runtime_class_name.as_deref()) {
        add(
            r,
            "kube_pod_runtimeclass_name_info",
            &[("runtimeclass_name", rc)],
            1.0,
        );
    }
    for v in spec.and_then(|x| x.volumes.as_ref()).into_iter().flatten() {
        if let Some(claim) = &v.persistent_volume_claim {
            let l = [
                ("volume", v.name.as_str()),
                ("persistentvolumeclaim", claim.claim_name.as_str()),
            ];
            add(
                r,
                "kube_pod_spec_volumes_persistentvolumeclaims_info",
                &l,
                1.0,
            );
            let ro = if claim.read_only == Some(true) {
                1.0
            } else {
                0.0
            };
            add(
                r,
                "kube_pod_spec_volumes_persistentvolumeclaims_readonly",
                &l,
                ro,
            );
        }
    }
    if let Some(qos) = status
        .and_then(|s| s.qos_class.as_deref())
        .filter(|q| !q.is_empty())
    {
        for class in ["BestEffort", "Burstable", "Guaranteed"] {
            let v = if qos == class { 1.0 } else { 0.0 };
            add(r, "kube_pod_status_qos_class", &[("qos_class", class)], v);
        }
    }
    let conditions = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten();
    for c in conditions.clone() {
        let t = seconds(c.last_transition_time.as_ref());
        match (c.type_.as_str(), c.status.as_str()) {
            ("Ready", "True") => add(r, "kube_pod_status_ready_time", &[], t),
            ("Initialized", "True") => add(r, "kube_pod_status_initialized_time", &[], t),
            ("ContainersReady", "True") => add(r, "kube_pod_status_container_ready_time", &[], t),
            _ => {}
        }
    }
    // A reason counts from the pod's status, any condition's reason (whatever its status) or
    // any container's current termination.
    let reasons: Vec<&str> = status
        .and_then(|s| s.reason.as_deref())
        .into_iter()
        .chain(conditions.clone().filter_map(|c| c.reason.as_deref()))
        .chain(statuses.filter_map(|cs| cs.state.as_ref()?.terminated.as_ref()?.reason.as_deref()))
        .collect();
    for reason in POD_STATUS_REASONS {
        let v = if reasons.contains(&reason) { 1.0 } else { 0.0 };
        add(r, "kube_pod_status_reason", &[("reason", reason)], v);
    }
    for c in conditions.filter(|c| c.type_ == "PodScheduled") {
        let t = seconds(c.last_transition_time.as_ref());
        match c.status.as_str() {
            "True" => add(r, "kube_pod_status_scheduled_time", &[], t),
            "False" => {
                add(r, "kube_pod_status_unschedulable", &[], 1.0);
                add(r, "kube_pod_status_unscheduled_time", &[], t);
            }
            _ => {}
        }
    }
    // One series per distinct toleration, in the order first written.
    let mut seen: Vec<[String; 5]> = Vec::new();
    for t in spec
        .and_then(|x| x.tolerations.as_ref())
        .into_iter()
        .flatten()
    {
        let row = [
            s(&t.key).to_string(),
            s(&t.operator).to_string(),
            s(&t.value).to_string(),
            s(&t.effect).to_string(),
            t.toleration_seconds
                .map(|x| x.to_string())
                .unwrap_or_default(),
        ];
        if seen.contains(&row) {
            continue;
        }
        add(
            r,
            "kube_pod_tolerations",
            &[
                ("key", &row[0]),
                ("operator", &row[1]),
                ("value", &row[2]),
                ("effect", &row[3]),
                ("toleration_seconds", &row[4]),
            ],
            1.0,
        );
        seen.push(row);
    }
    add(
        r,
        "kube_pod_service_account",
        &[(
            "service_account",
            spec.map_or("", |x| s(&x.service_account_name)),
        )],
        1.0,
    );
    add(
        r,
        "kube_pod_scheduler",
        &[("name", spec.map_or("", |x| s(&x.scheduler_name)))],
        1.0,
    );
}

pub(super) fn condition_series(
    r: &mut Rendered,
    fams: &[Family],
    i: usize,
    base: &[(&str, &str)],
    status: Option<&str>,
) {
    for (label, want) in [("true", "True"), ("false", "False"), ("unknown", "Unknown")] {
        let mut l = base.to_vec();
        l.push(("condition", label));
        r.add(
            &fams[i],
            i,
            &l,
            if status == Some(want) { 1.0 } else { 0.0 },
        );
    }
}

/// Conditions with their type as a label (`condition="AbleToScale"`) and the status as another
/// (`status="true"|"false"|"unknown"`), 1 for the status each has, as HPAs and PVCs write them.
pub(super) fn typed_condition_series<'a>(
    r: &mut Rendered,
    fam: &Family,
    i: usize,
    base: &[(&'a str, &'a str)],
    conds: impl Iterator<Item = (&'a str, &'a str)>,
) {
    for (kind, status) in conds {
        for (label, want) in [("true", "True"), ("false", "False"), ("unknown", "Unknown")] {
            let mut l = base.to_vec();
            l.extend([("condition", kind), ("status", label)]);
            r.add(fam, i, &l, if status == want { 1.0 } else { 0.0 });
        }
    }
}

pub fn render_pod(p: &Pod, o: &Options) -> Rendered {
    let fams = pod_families();
    let mut r = Rendered::new(fams.len());
    let m = &p.metadata;
    let (ns, name, uid) = (s(&m.namespace), s(&m.name), s(&m.uid));
    let base = [("namespace", ns), ("pod", name), ("uid", uid)];
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
    let owner = m
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let (ck, cn) = owner.map_or(("", ""), |o| (o.kind.as_str(), o.name.as_str()));
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    r.add(
        &fams[0],
        0,
        &[
            ("namespace", ns),
            ("pod", name),
            ("uid", uid),
            ("host_ip", status.map_or("", |x| s(&x.host_ip))),
            ("pod_ip", status.map_or("", |x| s(&x.pod_ip))),
            ("node", node),
            ("created_by_kind", ck),
            ("created_by_name", cn),
            (
                "priority_class",
                spec.map_or("", |x| s(&x.priority_class_name)),
            ),
            ("host_network", if host_network { "true" } else { "false" }),
        ],
        1.0,
    );
    if let Some(extra) = o.labels("pods", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("pods", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    if let Some(c) = created(m) {
        r.add(&fams[2], 2, &base, c);
    }
    owner_series(&mut r, &fams[3], 3, &base, m);
    if let Some(t) = status.and_then(|s| s.start_time.as_ref()) {
        r.add(&fams[4], 4, &base, t.0.as_second() as f64);
    }
    if let Some(phase) = status
        .and_then(|s| s.phase.as_deref())
        .filter(|p| !p.is_empty())
    {
        for ph in ["Pending", "Succeeded", "Failed", "Unknown", "Running"] {
            let mut l = base.to_vec();
            l.push(("phase", ph));
            r.add(&fams[5], 5, &l, if phase == ph { 1.0 } else { 0.0 });
        }
    }
    let cond = |t: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
            .map(|c| c.status.as_str())
    };
    if let Some(st) = cond("Ready") {
        condition_series(&mut r, &fams, 6, &base, Some(st));
    }
    if let Some(st) = cond("PodScheduled") {
        condition_series(&mut r, &fams, 7, &base, Some(st));
    }
    let statuses: Vec<&ContainerStatus> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .collect();
    for cs in &statuses {
        let c = cs.name.as_str();
        let spec_image = spec
            .and_then(|s| s.containers.iter().find(|x| x.name == cs.name))
            .and_then(|x| x.image.as_deref())
            .unwrap_or("");
        let cb = [
            ("namespace", ns),
            ("pod", name),
            ("uid", uid),
            ("container", c),
        ];
        let mut l = cb.to_vec();
        l.extend([
            ("image_spec", spec_image),
            ("image", cs.image.as_str()),
            ("image_id", cs.image_id.as_str()),
            ("container_id", s(&cs.container_id)),
        ]);
        r.add(&fams[8], 8, &l, 1.0);
        let state = cs.state.as_ref();
        let waiting = state.and_then(|s| s.waiting.as_ref());
        let running = state.and_then(|s| s.running.as_ref());
        let terminated = state.and_then(|s| s.terminated.as_ref());
        r.add(&fams[9], 9, &cb, if waiting.is_some() { 1.0 } else { 0.0 });
        // A state that is there writes its reason, empty or not, as kube-state-metrics does.
        if let Some(reason) = waiting.map(|w| s(&w.reason)) {
            let mut l = cb.to_vec();
            l.push(("reason", reason));
            r.add(&fams[10], 10, &l, 1.0);
        }
        r.add(
            &fams[11],
            11,
            &cb,
            if running.is_some() { 1.0 } else { 0.0 },
        );
        r.add(
            &fams[12],
            12,
            &cb,
            if terminated.is_some() { 1.0 } else { 0.0 },
        );
        if let Some(reason) = terminated.map(|t| s(&t.reason)) {
            let mut l = cb.to_vec();
            l.push(("reason", reason));
            r.add(&fams[13], 13, &l, 1.0);
        }
        if let Some(reason) = cs
            .last_state
            .as_ref()
            .and_then(|x| x.terminated.as_ref())
            .map(|t| s(&t.reason))
        {
            let mut l = cb.to_vec();
            l.push(("reason", reason));
            r.add(&fams[14], 14, &l, 1.0);
        }
        r.add(&fams[15], 15, &cb, if cs.ready { 1.0 } else { 0.0 });
        r.add(&fams[16], 16, &cb, cs.restart_count as f64);
    }
    let containers: Vec<&Container> = spec
        .map(|s| s.containers.iter().collect())
        .unwrap_or_default();
    for c in containers {
        let res = c.resources.as_ref();
        for (idx, q) in [
            (17, res.and_then(|r| r.requests.clone())),
            (18, res.and_then(|r| r.limits.clone())),
        ] {
            for (resource, unit, v) in quantities(&q, Rounding::Container) {
                r.add(
                    &fams[idx],
                    idx,
                    &[
                        ("namespace", ns),
                        ("pod", name),
                        ("uid", uid),
                        ("container", c.name.as_str()),
                        ("node", node),
                        ("resource", resource.as_str()),
                        ("unit", unit),
                    ],
                    v,
                );
                if o.legacy_resource_metrics {
                    let legacy = match (idx, resource.as_str()) {
                        (17, "cpu") => Some(19),
                        (17, "memory") => Some(20),
                        (18, "cpu") => Some(21),
                        (18, "memory") => Some(22),
                        _ => None,
                    };
                    if let Some(li) = legacy {
                        r.add(
                            &fams[li],
                            li,
                            &[
                                ("namespace", ns),
                                ("pod", name),
                                ("container", c.name.as_str()),
                                ("node", node),
                            ],
                            v,
                        );
                    }
                }
            }
        }
    }
    render_pod_more(&mut r, &fams, p, &base);
    r
}

// ---- deployments ----

pub const DEPLOYMENT: [Family; 17] = [
    gauge(
        "kube_deployment_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_deployment_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_deployment_spec_replicas",
        "[STABLE] Number of desired pods for a deployment.",
    ),
    gauge(
        "kube_deployment_spec_paused",
        "[STABLE] Whether the deployment is paused and will not be processed by the deployment controller.",
    ),
    gauge(
        "kube_deployment_status_replicas",
        "[STABLE] The number of replicas per deployment.",
    ),
    gauge(
        "kube_deployment_status_replicas_ready",
        "[STABLE] The number of ready replicas per deployment.",
    ),
    gauge(
        "kube_deployment_status_replicas_available",
        "[STABLE] The number of available replicas per deployment.",
    ),
    gauge(
        "kube_deployment_status_replicas_unavailable",
        "[STABLE] The number of unavailable replicas per deployment.",
    ),
    gauge(
        "kube_deployment_status_replicas_updated",
        "[STABLE] The number of updated replicas per deployment.",
    ),
    gauge(
        "kube_deployment_status_observed_generation",
        "[STABLE] The generation observed by the deployment controller.",
    ),
    gauge(
        "kube_deployment_status_condition",
        "[STABLE] The current status conditions of a deployment.",
    ),
    gauge(
        "kube_deployment_metadata_generation",
        "[STABLE] Sequence number representing a specific generation of the desired state.",
    ),
    gauge(
        "kube_deployment_spec_strategy_rollingupdate_max_unavailable",
        "[STABLE] Maximum number of unavailable replicas during a rolling update of a deployment.",
    ),
    gauge(
        "kube_deployment_spec_strategy_rollingupdate_max_surge",
        "[STABLE] Maximum number of replicas that can be scheduled above the desired number of replicas during a rolling update of a deployment.",
    ),
    gauge(
        "kube_deployment_status_terminating_replicas",
        "The number of terminating replicas per deployment.",
    ),
    gauge(
        "kube_deployment_deletion_timestamp",
        "Unix deletion timestamp",
    ),
    gauge(
        "kube_deployment_owner",
        "Information about the Deployment's owner.",
    ),
];

pub fn render_deployment(d: &Deployment, o: &Options) -> Rendered {
    let fams = deployment_families();
    let mut r = Rendered::new(fams.len());
    let m = &d.metadata;
    let base = [("namespace", s(&m.namespace)), ("deployment", s(&m.name))];
    if let Some(c) = created(m) {
        r.add(&fams[0], 0, &base, c);
    }
    if let Some(extra) = o.labels("deployments", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("deployments", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    let spec = d.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    r.add(&fams[2], 2, &base, replicas as f64);
    r.add(
        &fams[3],
        3,
        &base,
        if spec.and_then(|s| s.paused).unwrap_or(false) {
            1.0
        } else {
            0.0
        },
    );
    let st = d.status.as_ref();
    let n = |f: fn(&k8s_openapi::api::apps::v1::DeploymentStatus) -> Option<i32>| {
        st.and_then(f).unwrap_or(0) as f64
    };
    r.add(&fams[4], 4, &base, n(|s| s.replicas));
    r.add(&fams[5], 5, &base, n(|s| s.ready_replicas));
    r.add(&fams[6], 6, &base, n(|s| s.available_replicas));
    r.add(&fams[7], 7, &base, n(|s| s.unavailable_replicas));
    r.add(&fams[8], 8, &base, n(|s| s.updated_replicas));
    r.add(
        &fams[9],
        9,
        &base,
        st.and_then(|s| s.observed_generation).unwrap_or(0) as f64,
    );
    for c in st.and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        for (label, want) in [("true", "True"), ("false", "False"), ("unknown", "Unknown")] {
            let mut l = base.to_vec();
            l.extend([("condition", c.type_.as_str()), ("status", label)]);
            r.add(&fams[10], 10, &l, if c.status == want { 1.0 } else { 0.0 });
        }
    }
    r.add(&fams[11], 11, &base, m.generation.unwrap_or(0) as f64);
    let rolling = spec
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    // An int as it is, a percentage of the desired replicas rounded as the controller rounds
    // it (down for unavailable, up for surge); a value that is neither gives no sample, where
    // kube-state-metrics would crash.
    let scaled = |v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString, up: bool| {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        match v {
            IntOrString::Int(i) => Some(*i as f64),
            IntOrString::String(p) => {
                let pct = p.strip_suffix('%')?.parse::<i64>().ok()? as f64;
                let x = pct * replicas as f64 / 100.0;
                Some(if up { x.ceil() } else { x.floor() })
            }
        }
    };
    if let Some(v) = rolling
        .and_then(|ru| ru.max_unavailable.as_ref())
        .and_then(|mu| scaled(mu, false))
    {
        r.add(&fams[12], 12, &base, v);
    }
    if let Some(v) = rolling
        .and_then(|ru| ru.max_surge.as_ref())
        .and_then(|ms| scaled(ms, true))
    {
        r.add(&fams[13], 13, &base, v);
    }
    if let Some(t) = st.and_then(|s| s.terminating_replicas) {
        r.add(&fams[14], 14, &base, t as f64);
    }
    if let Some(t) = deleted(m) {
        r.add(&fams[15], 15, &base, t);
    }
    // The controlling owner only (the family has no `owner_is_controller` label, unlike the
    // other `*_owner` families); none: empty labels, as kube-state-metrics' test shows.
    let ctl = m
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let mut l = base.to_vec();
    l.extend([
        ("owner_kind", ctl.map_or("", |o| o.kind.as_str())),
        ("owner_name", ctl.map_or("", |o| o.name.as_str())),
    ]);
    r.add(&fams[16], 16, &l, 1.0);
    r
}

// ---- nodes ----

pub const NODE: [Family; 16] = [
    gauge(
        "kube_node_info",
        "[STABLE] Information about a cluster node.",
    ),
    gauge(
        "kube_node_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_node_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_node_spec_unschedulable",
        "[STABLE] Whether a node can schedule new pods.",
    ),
    gauge(
        "kube_node_status_condition",
        "[STABLE] The condition of a cluster node.",
    ),
    gauge(
        "kube_node_status_allocatable",
        "[STABLE] The allocatable for different resources of a node that are available for scheduling.",
    ),
    gauge(
        "kube_node_status_capacity",
        "[STABLE] The capacity for different resources of a node.",
    ),
    gauge(
        "kube_node_status_allocatable_cpu_cores",
        "The CPU resources of a node that are available for scheduling.",
    ),
    gauge(
        "kube_node_status_allocatable_memory_bytes",
        "The memory resources of a node that are available for scheduling.",
    ),
    gauge(
        "kube_node_status_allocatable_pods",
        "The pod resources of a node that are available for scheduling.",
    ),
    gauge(
        "kube_node_status_capacity_cpu_cores",
        "The total CPU resources of the node.",
    ),
    gauge(
        "kube_node_status_capacity_memory_bytes",
        "The total memory resources of the node.",
    ),
    gauge("kube_node_deletion_timestamp", "Unix deletion timestamp"),
    gauge("kube_node_role", "The role of a cluster node."),
    gauge(
        "kube_node_spec_taint",
        "[STABLE] The taint of a cluster node.",
    ),
    gauge("kube_node_status_addresses", "Node address information."),
];

pub fn render_node(n: &Node, o: &Options) -> Rendered {
    let fams = node_families();
    let mut r = Rendered::new(fams.len());
    let m = &n.metadata;
    let name = s(&m.name);
    let base = [("node", name)];
    let st = n.status.as_ref();
    let info = st.and_then(|s| s.node_info.as_ref());
    let spec = n.spec.as_ref();
    let internal_ip = st
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().rfind(|a| a.type_ == "InternalIP"))
        .map_or("", |a| a.address.as_str());
    r.add(
        &fams[0],
        0,
        &[
            ("node", name),
            (
                "kernel_version",
                info.map_or("", |i| i.kernel_version.as_str()),
            ),
            ("os_image", info.map_or("", |i| i.os_image.as_str())),
            (
                "container_runtime_version",
                info.map_or("", |i| i.container_runtime_version.as_str()),
            ),
            (
                "kubelet_version",
                info.map_or("", |i| i.kubelet_version.as_str()),
            ),
            (
                "kubeproxy_version",
                info.map_or("", |i| i.kube_proxy_version.as_str()),
            ),
            ("provider_id", spec.map_or("", |x| s(&x.provider_id))),
            ("pod_cidr", spec.map_or("", |x| s(&x.pod_cidr))),
            ("system_uuid", info.map_or("", |i| i.system_uuid.as_str())),
            ("internal_ip", internal_ip),
        ],
        1.0,
    );
    if let Some(extra) = o.labels("nodes", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("nodes", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    if let Some(c) = created(m) {
        r.add(&fams[2], 2, &base, c);
    }
    r.add(
        &fams[3],
        3,
        &base,
        if spec.and_then(|s| s.unschedulable).unwrap_or(false) {
            1.0
        } else {
            0.0
        },
    );
    for c in st.and_then(|s| s.conditions.as_ref()).into_iter().flatten() {
        for (label, want) in [("true", "True"), ("false", "False"), ("unknown", "Unknown")] {
            r.add(
                &fams[4],
                4,
                &[
                    ("node", name),
                    ("condition", c.type_.as_str()),
                    ("status", label),
                ],
                if c.status == want { 1.0 } else { 0.0 },
            );
        }
    }
    for (idx, q) in [
        (5, st.and_then(|s| s.allocatable.clone())),
        (6, st.and_then(|s| s.capacity.clone())),
    ] {
        for (resource, unit, v) in quantities(&q, Rounding::Node) {
            r.add(
                &fams[idx],
                idx,
                &[
                    ("node", name),
                    ("resource", resource.as_str()),
                    ("unit", unit),
                ],
                v,
            );
            if o.legacy_resource_metrics {
                let legacy = match (idx, resource.as_str()) {
                    (5, "cpu") => Some(7),
                    (5, "memory") => Some(8),
                    (5, "pods") => Some(9),
                    (6, "cpu") => Some(10),
                    (6, "memory") => Some(11),
                    _ => None,
                };
                if let Some(li) = legacy {
                    r.add(&fams[li], li, &base, v);
                }
            }
        }
    }
    if let Some(t) = deleted(m) {
        r.add(&fams[12], 12, &base, t);
    }
    // Every `node-role.kubernetes.io/<role>` label key, whatever its value, in name order.
    for key in m.labels.iter().flatten().map(|(k, _)| k) {
        if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
            r.add(&fams[13], 13, &[("node", name), ("role", role)], 1.0);
        }
    }
    for t in spec.and_then(|x| x.taints.as_ref()).into_iter().flatten() {
        r.add(
            &fams[14],
            14,
            &[
                ("node", name),
                ("key", t.key.as_str()),
                ("value", s(&t.value)),
                ("effect", t.effect.as_str()),
            ],
            1.0,
        );
    }
    for a in st.and_then(|x| x.addresses.as_ref()).into_iter().flatten() {
        r.add(
            &fams[15],
            15,
            &[
                ("node", name),
                ("type", a.type_.as_str()),
                ("address", a.address.as_str()),
            ],
            1.0,
        );
    }
    r
}

// ---- namespaces ----

pub const NAMESPACE: [Family; 4] = [
    gauge("kube_namespace_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_namespace_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_namespace_status_phase",
        "[STABLE] kubernetes namespace status phase.",
    ),
    gauge(
        "kube_namespace_status_condition",
        "The condition of a namespace.",
    ),
];

pub fn render_namespace(n: &Namespace, o: &Options) -> Rendered {
    let fams = namespace_families();
    let mut r = Rendered::new(fams.len());
    let m = &n.metadata;
    let base = [("namespace", s(&m.name))];
    if let Some(c) = created(m) {
        r.add(&fams[0], 0, &base, c);
    }
    if let Some(extra) = o.labels("namespaces", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("namespaces", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    let phase = n
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    for ph in ["Active", "Terminating"] {
        r.add(
            &fams[2],
            2,
            &[("namespace", s(&m.name)), ("phase", ph)],
            if phase == ph { 1.0 } else { 0.0 },
        );
    }
    let conds = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.as_str(), c.status.as_str()));
    typed_condition_series(&mut r, &fams[3], 3, &base, conds);
    r
}

// ---- services ----

pub const SERVICE: [Family; 7] = [
    gauge("kube_service_info", "[STABLE] Information about service."),
    gauge("kube_service_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_service_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_service_spec_type", "[STABLE] Type about service."),
    gauge(
        "kube_service_spec_external_ip",
        "[STABLE] Service external ips. One series for each ip",
    ),
    gauge(
        "kube_service_status_load_balancer_ingress",
        "[STABLE] Service load balancer ingress status",
    ),
    gauge("kube_service_deletion_timestamp", "Unix deletion timestamp"),
];

pub fn render_service(svc: &Service, o: &Options) -> Rendered {
    let fams = service_families();
    let mut r = Rendered::new(fams.len());
    let m = &svc.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("service", s(&m.name)),
        ("uid", s(&m.uid)),
    ];
    let spec = svc.spec.as_ref();
    let lb_ip = spec.map_or("", |x| s(&x.load_balancer_ip));
    let mut l = base.to_vec();
    l.extend([
        ("cluster_ip", spec.map_or("", |x| s(&x.cluster_ip))),
        ("external_name", spec.map_or("", |x| s(&x.external_name))),
        ("load_balancer_ip", lb_ip),
        (
            "external_traffic_policy",
            spec.map_or("", |x| s(&x.external_traffic_policy)),
        ),
    ]);
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(c) = created(m) {
        r.add(&fams[1], 1, &base, c);
    }
    if let Some(extra) = o.labels("services", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("services", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    let mut l = base.to_vec();
    l.push((
        "type",
        spec.map_or("ClusterIP", |s| s.type_.as_deref().unwrap_or("ClusterIP")),
    ));
    r.add(&fams[3], 3, &l, 1.0);
    for ip in spec
        .and_then(|x| x.external_ips.as_ref())
        .into_iter()
        .flatten()
    {
        let mut l = base.to_vec();
        l.push(("external_ip", ip.as_str()));
        r.add(&fams[4], 4, &l, 1.0);
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|x| x.load_balancer.as_ref())
        .and_then(|x| x.ingress.as_ref());
    for i in ingress.into_iter().flatten() {
        let mut l = base.to_vec();
        l.extend([("ip", s(&i.ip)), ("hostname", s(&i.hostname))]);
        r.add(&fams[5], 5, &l, 1.0);
    }
    if let Some(t) = deleted(m) {
        r.add(&fams[6], 6, &base, t);
    }
    r
}

/// `kube_*_metadata_resource_version`: the object's resource version as a number, no sample
/// when it is not one (kube-state-metrics parses it as a float the same way).
pub(super) fn resource_version(m: &ObjectMeta) -> Option<f64> {
    m.resource_version.as_deref()?.parse::<f64>().ok()
}

// ---- configmaps (metadata only: read as `ConfigMapMeta`, the data is skipped) ----

pub const CONFIGMAP: [Family; 4] = [
    gauge(
        "kube_configmap_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_configmap_info",
        "[STABLE] Information about configmap.",
    ),
    gauge("kube_configmap_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_configmap_metadata_resource_version",
        "Resource version representing a specific version of the configmap.",
    ),
];

pub fn render_configmap(c: &ConfigMapMeta, o: &Options) -> Rendered {
    let fams = configmap_families();
    let mut r = Rendered::new(fams.len());
    let m = &c.metadata;
    let base = [("namespace", s(&m.namespace)), ("configmap", s(&m.name))];
    if let Some(extra) = o.labels("configmaps", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    r.add(&fams[1], 1, &base, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[2], 2, &base, t);
    }
    if let Some(v) = resource_version(m) {
        r.add(&fams[3], 3, &base, v);
    }
    if let Some(extra) = o.annotations("configmaps", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- secrets (metadata and type only: read as `SecretMeta`, the data is skipped) ----

/// `kubectl.kubernetes.io/last-applied-configuration` as a label name.
const LAST_APPLIED: &str = "annotation_kubectl_kubernetes_io_last_applied_configuration";

pub const SECRET: [Family; 6] = [
    gauge("kube_secret_info", "[STABLE] Information about secret."),
    gauge("kube_secret_type", "[STABLE] Type about secret."),
    gauge(
        "kube_secret_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_secret_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_secret_metadata_resource_version",
        "Resource version representing a specific version of secret.",
    ),
    gauge("kube_secret_owner", "Information about the Secret's owner."),
];

pub fn render_secret(sec: &SecretMeta, o: &Options) -> Rendered {
    let fams = secret_families();
    let mut r = Rendered::new(fams.len());
    let m = &sec.metadata;
    let base = [("namespace", s(&m.namespace)), ("secret", s(&m.name))];
    r.add(&fams[0], 0, &base, 1.0);
    let mut l = base.to_vec();
    l.push(("type", s(&sec.type_)));
    r.add(&fams[1], 1, &l, 1.0);
    if let Some(extra) = o.labels("secrets", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    if let Some(t) = created(m) {
        r.add(&fams[3], 3, &base, t);
    }
    if let Some(v) = resource_version(m) {
        r.add(&fams[4], 4, &base, v);
    }
    owner_series(&mut r, &fams[5], 5, &base, m);
    if let Some(mut extra) = o.annotations("secrets", m) {
        // kubectl keeps the whole applied object, data included, in this annotation: never
        // write it out, even when every annotation is allowed (a deliberate difference from
        // kube-state-metrics, which would).
        extra.retain(|(k, _)| k != LAST_APPLIED);
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

/// `kube_*_owner` series of an object: one per owner reference, or one with empty owner
/// labels when it has none (current kube-state-metrics; v2.0-v2.7 wrote `<none>`).
pub(super) fn owner_series<'a>(
    r: &mut Rendered,
    fam: &Family,
    i: usize,
    base: &[(&'a str, &'a str)],
    m: &'a ObjectMeta,
) {
    let owners: Vec<_> = m.owner_references.iter().flatten().collect();
    if owners.is_empty() {
        let mut l = base.to_vec();
        l.extend([
            ("owner_kind", ""),
            ("owner_name", ""),
            ("owner_is_controller", ""),
        ]);
        r.add(fam, i, &l, 1.0);
    }
    for ow in owners {
        let mut l = base.to_vec();
        let ctl = if ow.controller == Some(true) {
            "true"
        } else {
            "false"
        };
        l.extend([
            ("owner_kind", ow.kind.as_str()),
            ("owner_name", ow.name.as_str()),
            ("owner_is_controller", ctl),
        ]);
        r.add(fam, i, &l, 1.0);
    }
}

// ---- replicasets ----

pub const REPLICASET: [Family; 9] = [
    gauge(
        "kube_replicaset_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_replicaset_status_replicas",
        "[STABLE] The number of replicas per ReplicaSet.",
    ),
    gauge(
        "kube_replicaset_status_fully_labeled_replicas",
        "[STABLE] The number of fully labeled replicas per ReplicaSet.",
    ),
    gauge(
        "kube_replicaset_status_ready_replicas",
        "[STABLE] The number of ready replicas per ReplicaSet.",
    ),
    gauge(
        "kube_replicaset_status_observed_generation",
        "[STABLE] The generation observed by the ReplicaSet controller.",
    ),
    gauge(
        "kube_replicaset_spec_replicas",
        "[STABLE] Number of desired pods for a ReplicaSet.",
    ),
    gauge(
        "kube_replicaset_metadata_generation",
        "[STABLE] Sequence number representing a specific generation of the desired state.",
    ),
    gauge(
        "kube_replicaset_owner",
        "[STABLE] Information about the ReplicaSet's owner.",
    ),
    gauge(
        "kube_replicaset_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn render_replicaset(rs: &ReplicaSet, o: &Options) -> Rendered {
    let fams = replicaset_families();
    let mut r = Rendered::new(fams.len());
    let m = &rs.metadata;
    let base = [("namespace", s(&m.namespace)), ("replicaset", s(&m.name))];
    if let Some(t) = created(m) {
        r.add(&fams[0], 0, &base, t);
    }
    let st = rs.status.as_ref();
    r.add(&fams[1], 1, &base, st.map_or(0, |x| x.replicas) as f64);
    r.add(
        &fams[2],
        2,
        &base,
        st.and_then(|x| x.fully_labeled_replicas).unwrap_or(0) as f64,
    );
    r.add(
        &fams[3],
        3,
        &base,
        st.and_then(|x| x.ready_replicas).unwrap_or(0) as f64,
    );
    r.add(
        &fams[4],
        4,
        &base,
        st.and_then(|x| x.observed_generation).unwrap_or(0) as f64,
    );
    if let Some(n) = rs.spec.as_ref().and_then(|x| x.replicas) {
        r.add(&fams[5], 5, &base, n as f64);
    }
    r.add(&fams[6], 6, &base, m.generation.unwrap_or(0) as f64);
    owner_series(&mut r, &fams[7], 7, &base, m);
    if let Some(extra) = o.labels("replicasets", m) {
        r.add_with(&fams[8], 8, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("replicasets", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- daemonsets ----

pub const DAEMONSET: [Family; 11] = [
    gauge("kube_daemonset_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_daemonset_status_current_number_scheduled",
        "[STABLE] The number of nodes running at least one daemon pod and are supposed to.",
    ),
    gauge(
        "kube_daemonset_status_desired_number_scheduled",
        "[STABLE] The number of nodes that should be running the daemon pod.",
    ),
    gauge(
        "kube_daemonset_status_number_available",
        "[STABLE] The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available",
    ),
    gauge(
        "kube_daemonset_status_number_misscheduled",
        "[STABLE] The number of nodes running a daemon pod but are not supposed to.",
    ),
    gauge(
        "kube_daemonset_status_number_ready",
        "[STABLE] The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    gauge(
        "kube_daemonset_status_number_unavailable",
        "[STABLE] The number of nodes that should be running the daemon pod and have none of the daemon pod running and available",
    ),
    gauge(
        "kube_daemonset_status_observed_generation",
        "[STABLE] The most recent generation observed by the daemon set controller.",
    ),
    gauge(
        "kube_daemonset_status_updated_number_scheduled",
        "[STABLE] The total number of nodes that are running updated daemon pod",
    ),
    gauge(
        "kube_daemonset_metadata_generation",
        "[STABLE] Sequence number representing a specific generation of the desired state.",
    ),
    gauge(
        "kube_daemonset_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn render_daemonset(ds: &DaemonSet, o: &Options) -> Rendered {
    let fams = daemonset_families();
    let mut r = Rendered::new(fams.len());
    let m = &ds.metadata;
    let base = [("namespace", s(&m.namespace)), ("daemonset", s(&m.name))];
    if let Some(t) = created(m) {
        r.add(&fams[0], 0, &base, t);
    }
    let st = ds.status.as_ref();
    let counts = [
        st.map_or(0, |x| x.current_number_scheduled),
        st.map_or(0, |x| x.desired_number_scheduled),
        st.and_then(|x| x.number_available).unwrap_or(0),
        st.map_or(0, |x| x.number_misscheduled),
        st.map_or(0, |x| x.number_ready),
        st.and_then(|x| x.number_unavailable).unwrap_or(0),
    ];
    for (i, n) in counts.into_iter().enumerate() {
        r.add(&fams[i + 1], i + 1, &base, n as f64);
    }
    r.add(
        &fams[7],
        7,
        &base,
        st.and_then(|x| x.observed_generation).unwrap_or(0) as f64,
    );
    r.add(
        &fams[8],
        8,
        &base,
        st.and_then(|x| x.updated_number_scheduled).unwrap_or(0) as f64,
    );
    r.add(&fams[9], 9, &base, m.generation.unwrap_or(0) as f64);
    if let Some(extra) = o.labels("daemonsets", m) {
        r.add_with(&fams[10], 10, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("daemonsets", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- statefulsets ----

pub const STATEFULSET: [Family; 15] = [
    gauge(
        "kube_statefulset_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_statefulset_status_replicas",
        "[STABLE] The number of replicas per StatefulSet.",
    ),
    gauge(
        "kube_statefulset_status_replicas_available",
        "[STABLE] The number of available replicas per StatefulSet.",
    ),
    gauge(
        "kube_statefulset_status_replicas_current",
        "[STABLE] The number of current replicas per StatefulSet.",
    ),
    gauge(
        "kube_statefulset_status_replicas_ready",
        "[STABLE] The number of ready replicas per StatefulSet.",
    ),
    gauge(
        "kube_statefulset_status_replicas_updated",
        "[STABLE] The number of updated replicas per StatefulSet.",
    ),
    gauge(
        "kube_statefulset_status_observed_generation",
        "[STABLE] The generation observed by the StatefulSet controller.",
    ),
    gauge(
        "kube_statefulset_replicas",
        "[STABLE] Number of desired pods for a StatefulSet.",
    ),
    gauge(
        "kube_statefulset_ordinals_start",
        "[STABLE] Start ordinal of the StatefulSet.",
    ),
    gauge(
        "kube_statefulset_metadata_generation",
        "[STABLE] Sequence number representing a specific generation of the desired state for the StatefulSet.",
    ),
    gauge(
        "kube_statefulset_persistentvolumeclaim_retention_policy",
        "[STABLE] Count of retention policy for StatefulSet template PVCs",
    ),
    gauge(
        "kube_statefulset_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_statefulset_status_current_revision",
        "[STABLE] Indicates the version of the StatefulSet used to generate Pods in the sequence [0,currentReplicas).",
    ),
    gauge(
        "kube_statefulset_status_update_revision",
        "[STABLE] Indicates the version of the StatefulSet used to generate Pods in the sequence [replicas-updatedReplicas,replicas)",
    ),
    gauge(
        "kube_statefulset_deletion_timestamp",
        "[STABLE] Unix deletion timestamp",
    ),
];

pub fn render_statefulset(ss: &StatefulSet, o: &Options) -> Rendered {
    let fams = statefulset_families();
    let mut r = Rendered::new(fams.len());
    let m = &ss.metadata;
    let base = [("namespace", s(&m.namespace)), ("statefulset", s(&m.name))];
    if let Some(t) = created(m) {
        r.add(&fams[0], 0, &base, t);
    }
    let st = ss.status.as_ref();
    let counts = [
        st.map_or(0, |x| x.replicas),
        st.and_then(|x| x.available_replicas).unwrap_or(0),
        st.and_then(|x| x.current_replicas).unwrap_or(0),
        st.and_then(|x| x.ready_replicas).unwrap_or(0),
        st.and_then(|x| x.updated_replicas).unwrap_or(0),
    ];
    for (i, n) in counts.into_iter().enumerate() {
        r.add(&fams[i + 1], i + 1, &base, n as f64);
    }
    r.add(
        &fams[6],
        6,
        &base,
        st.and_then(|x| x.observed_generation).unwrap_or(0) as f64,
    );
    let spec = ss.spec.as_ref();
    if let Some(n) = spec.and_then(|x| x.replicas) {
        r.add(&fams[7], 7, &base, n as f64);
    }
    if let Some(ord) = spec.and_then(|x| x.ordinals.as_ref()) {
        r.add(&fams[8], 8, &base, ord.start.unwrap_or(0) as f64);
    }
    r.add(&fams[9], 9, &base, m.generation.unwrap_or(0) as f64);
    let policy = spec.and_then(|x| x.persistent_volume_claim_retention_policy.as_ref());
    let deleted = policy.map_or("", |p| s(&p.when_deleted));
    let scaled = policy.map_or("", |p| s(&p.when_scaled));
    if !deleted.is_empty() || !scaled.is_empty() {
        let mut l = base.to_vec();
        l.extend([("when_deleted", deleted), ("when_scaled", scaled)]);
        r.add(&fams[10], 10, &l, 1.0);
    }
    if let Some(extra) = o.labels("statefulsets", m) {
        r.add_with(&fams[11], 11, &base, &extra, 1.0);
    }
    for (i, rev) in [
        (12, st.map_or("", |x| s(&x.current_revision))),
        (13, st.map_or("", |x| s(&x.update_revision))),
    ] {
        let mut l = base.to_vec();
        l.push(("revision", rev));
        r.add(&fams[i], i, &l, 1.0);
    }
    if let Some(t) = m.deletion_timestamp.as_ref() {
        r.add(&fams[14], 14, &base, t.0.as_second() as f64);
    }
    if let Some(extra) = o.annotations("statefulsets", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}
