//! Role `pod`: one group per pod, one target per declared container port (or per container
//! without ports), init containers after regular ones.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::Store;
use super::slim::{Container, Job, Pod, ReplicaSet, controller_of};

use super::meta::{Set, bool_str, host_only, join_host_port, key, object_labels};
use crate::TargetGroup;

/// The controllers above a pod's own that `attach_metadata` names (Prometheus 3.11): each store
/// is there when its option is on.
#[derive(Default, Clone, Copy)]
pub struct Owners<'a> {
    /// `deployment: true`: the pod's ReplicaSet leads to its Deployment.
    pub replicasets: Option<&'a Store<ReplicaSet>>,
    /// `job: true`: a pod controlled by a Job carries the Job's name.
    pub job: bool,
    /// `cronjob: true`: the pod's Job leads to its CronJob.
    pub jobs: Option<&'a Store<Job>>,
}

impl Owners<'_> {
    /// `__meta_kubernetes_pod_deployment_name`, `_job_name` and `_cronjob_name` of a pod whose
    /// controller is `owner`. Kinds are taken with their API group (a custom resource of kind
    /// `Job` is not a batch Job), and an owner is the object it names only when the UIDs agree
    /// (one deleted and recreated under the same name is another object). A label is absent
    /// while the object it is read from is not known (not listed yet, or gone), or when that
    /// object has no controller of the expected kind.
    fn add(&self, s: &mut Set, namespace: &str, owner: &OwnerReference) {
        let is = |o: &OwnerReference, group: &str, kind: &str| {
            o.kind == kind && o.api_version.split_once('/').map(|(g, _)| g) == Some(group)
        };
        let above = |m: Option<&ObjectMeta>, group: &str, kind: &str| {
            m.filter(|m| m.uid.as_deref() == Some(owner.uid.as_str()))
                .and_then(controller_of)
                .filter(|o| is(o, group, kind) && !o.name.is_empty())
                .map(|o| o.name.clone())
        };
        let key = key(&ObjectMeta {
            namespace: Some(namespace.to_string()),
            name: Some(owner.name.clone()),
            ..Default::default()
        });
        if is(owner, "apps", "ReplicaSet") {
            if let Some(rs) = self.replicasets {
                let m = rs.get(&key).map(|r| &r.metadata);
                if let Some(d) = above(m, "apps", "Deployment") {
                    s.meta("pod_deployment_name", d);
                }
            }
        } else if is(owner, "batch", "Job") {
            if self.job && !owner.name.is_empty() {
                s.meta("pod_job_name", owner.name.clone());
            }
            if let Some(jobs) = self.jobs {
                let m = jobs.get(&key).map(|j| &j.metadata);
                if let Some(c) = above(m, "batch", "CronJob") {
                    s.meta("pod_cronjob_name", c);
                }
            }
        }
    }
}

/// The pod labels the endpoints roles also attach (everything of the group but the namespace).
pub fn pod_labels(pod: &Pod, owners: &Owners) -> Set {
    let mut s = Set::default();
    object_labels(&mut s, "pod", &pod.metadata);
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    s.meta(
        "pod_ip",
        status.and_then(|x| x.pod_ip.clone()).unwrap_or_default(),
    );
    let ready = status
        .and_then(|x| x.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.to_ascii_lowercase())
        .unwrap_or_else(|| "unknown".into());
    s.meta("pod_ready", ready);
    s.meta(
        "pod_phase",
        status.and_then(|x| x.phase.clone()).unwrap_or_default(),
    );
    s.meta(
        "pod_node_name",
        spec.and_then(|x| x.node_name.clone()).unwrap_or_default(),
    );
    s.meta(
        "pod_host_ip",
        status.and_then(|x| x.host_ip.clone()).unwrap_or_default(),
    );
    s.meta("pod_uid", pod.metadata.uid.clone().unwrap_or_default());
    if let Some(owner) = controller_of(&pod.metadata) {
        if !owner.kind.is_empty() {
            s.meta("pod_controller_kind", owner.kind.clone());
        }
        if !owner.name.is_empty() {
            s.meta("pod_controller_name", owner.name.clone());
        }
        owners.add(
            &mut s,
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            owner,
        );
    }
    // First IPv4 and first IPv6 of the pod's addresses (Prometheus 3).
    let ips = status.and_then(|x| x.pod_ips.as_ref());
    if let Some(v4) = ips
        .into_iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .find(|ip| !ip.is_empty() && !ip.contains(':'))
    {
        s.meta("pod_ipv4", v4);
    }
    if let Some(v6) = ips
        .into_iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .find(|ip| ip.contains(':'))
    {
        s.meta("pod_ipv6", v6);
    }
    s
}

/// Labels of a node, for `attach_metadata: {node: true}`.
pub fn node_meta(node: &Node) -> Set {
    let mut s = Set::default();
    object_labels(&mut s, "node", &node.metadata);
    s
}

/// Every container of the pod with whether it is an init container, in Prometheus's order.
pub fn containers(pod: &Pod) -> Vec<(&Container, bool)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .map(|c| (c, false))
        .chain(spec.init_containers.iter().flatten().map(|c| (c, true)))
        .collect()
}

/// The group of one pod. `node` is the pod's node when `attach_metadata.node` is on and the
/// node is known.
pub fn group(pod: &Pod, node: Option<&Node>, owners: &Owners) -> TargetGroup {
    let source = format!("pod/{}", key(&pod.metadata));
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    if ip.is_empty() {
        // No IP yet (pending) or any more (evicted): an empty group removes earlier targets.
        return TargetGroup {
            source,
            ..Default::default()
        };
    }
    let mut g = pod_labels(pod, owners);
    g.meta(
        "namespace",
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    if let Some(n) = node {
        g.extend(&node_meta(n));
    }
    let status_of = |name: &str, init: bool| {
        let st = pod.status.as_ref()?;
        let list = if init {
            st.init_container_statuses.as_ref()
        } else {
            st.container_statuses.as_ref()
        }?;
        list.iter()
            .find(|c| c.name == name)
            .and_then(|c| c.container_id.clone())
    };
    let mut targets = Vec::new();
    for (c, init) in containers(pod) {
        let mut base = Set::default();
        base.meta("pod_container_name", c.name.clone());
        base.meta(
            "pod_container_id",
            status_of(&c.name, init).unwrap_or_default(),
        );
        base.meta("pod_container_image", c.image.clone().unwrap_or_default());
        base.meta("pod_container_init", bool_str(init));
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut t = base.clone();
            t.set("__address__", host_only(&ip));
            targets.push(t.labels());
            continue;
        }
        for p in ports {
            let mut t = base.clone();
            t.set("__address__", join_host_port(&ip, p.container_port));
            t.meta(
                "pod_container_port_name",
                p.name.clone().unwrap_or_default(),
            );
            t.meta("pod_container_port_number", p.container_port.to_string());
            t.meta(
                "pod_container_port_protocol",
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            );
            targets.push(t.labels());
        }
    }
    TargetGroup {
        source,
        targets,
        labels: g.labels(),
    }
}
