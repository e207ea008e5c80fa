//! Who a cgroup belongs to: the pod UID and container ID written in its path (both cgroup
//! drivers, every QoS class), and the names the Kubernetes API gives them.

use std::collections::HashMap;

/// What the path says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathIds {
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
    /// `containerd`, `crio` or `docker`, from the scope name; `None` for bare cgroupfs ids.
    pub runtime: Option<&'static str>,
}

/// `pod<uid>` (cgroupfs) or `…-pod<uid_with_underscores>.slice` (systemd), directly under a QoS
/// cgroup.
fn pod_uid(component: &str) -> Option<String> {
    // systemd: the last `-` part of the slice (its `_` stand for the UID's `-`); cgroupfs: the
    // whole component.
    let part = match component.strip_suffix(".slice") {
        Some(c) => c.rsplit('-').next()?,
        None => component,
    };
    let uid = part.strip_prefix("pod")?;
    (!uid.is_empty()
        && uid
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
    .then(|| uid.replace('_', "-"))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A container scope or directory: `cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `docker-<id>.scope`, or the bare id; CRI-O's conmon scopes are not containers.
fn container_id(component: &str) -> Option<(String, Option<&'static str>)> {
    let c = component.strip_suffix(".scope").unwrap_or(component);
    if c.starts_with("crio-conmon-") {
        return None;
    }
    for (prefix, rt) in [
        ("cri-containerd-", "containerd"),
        ("crio-", "crio"),
        ("docker-", "docker"),
    ] {
        if let Some(id) = c.strip_prefix(prefix) {
            return is_hex64(id).then(|| (id.to_string(), Some(rt)));
        }
    }
    is_hex64(c).then(|| (c.to_string(), None))
}

/// The ids in a cgroup path such as
/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`
/// or `/kubepods/besteffort/pod<uid>/<id>`.
pub fn parse(id: &str) -> PathIds {
    let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty()).collect();
    if parts.first().is_none_or(|p| !p.starts_with("kubepods")) {
        return PathIds::default();
    }
    let mut out = PathIds::default();
    for (i, p) in parts.iter().enumerate().skip(1) {
        if out.pod_uid.is_none() {
            // A pod sits right under the pods root (guaranteed) or under a QoS cgroup.
            let qos_parent = i == 1
                || (i == 2 && (parts[1].contains("burstable") || parts[1].contains("besteffort")));
            if qos_parent && let Some(uid) = pod_uid(p) {
                out.pod_uid = Some(uid);
            }
        } else if let Some((cid, rt)) = container_id(p) {
            // (some runtimes nest a sub-cgroup below the scope: the first id wins)
            if out.container_id.is_none() {
                out.container_id = Some(cid);
                out.runtime = rt;
            }
        }
    }
    out
}

/// A pod as the API describes it, reduced to what the labels need.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    /// Container ID (without the `containerd://` scheme) → (name, image, restart count).
    pub containers: HashMap<String, (String, String, i32)>,
}

/// The six labels cAdvisor gives a Kubernetes container series, in name order:
/// `container`, `id`, `image`, `name`, `namespace`, `pod`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub container: String,
    pub id: String,
    pub image: String,
    pub name: String,
    pub namespace: String,
    pub pod: String,
}

/// Labels for cgroup `id`, using the pods the API reported (by UID). `sandbox` is true for the
/// container of a pod that holds its network (no status entry: the pause container).
pub fn labels(id: &str, pods: &HashMap<String, PodInfo>) -> (Labels, bool) {
    let ids = parse(id);
    let mut l = Labels {
        id: id.to_string(),
        ..Default::default()
    };
    let Some(uid) = &ids.pod_uid else {
        return (l, false);
    };
    let pod = pods.get(uid);
    if let Some(p) = pod {
        l.namespace = p.namespace.clone();
        l.pod = p.name.clone();
    }
    let Some(cid) = &ids.container_id else {
        return (l, false);
    };
    let known = pod.and_then(|p| p.containers.get(cid));
    match known {
        Some((cname, image, restarts)) => {
            l.container = cname.clone();
            l.image = image.clone();
            l.name = match ids.runtime {
                Some("crio") | Some("docker") => {
                    format!("k8s_{cname}_{}_{}_{uid}_{restarts}", l.pod, l.namespace)
                }
                _ => cid.clone(),
            };
        }
        None => {
            // The sandbox: containerd names it by id with container="", the others "POD".
            l.name = match ids.runtime {
                Some("crio") | Some("docker") => {
                    format!("k8s_POD_{}_{}_{uid}_0", l.pod, l.namespace)
                }
                _ => cid.clone(),
            };
            if matches!(ids.runtime, Some("crio") | Some("docker")) {
                l.container = "POD".into();
            }
        }
    }
    (l, pod.is_some() && known.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "3f9a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdde1";

    #[test]
    fn paths_of_both_drivers_and_every_qos_class() {
        let cid = &CID[..64];
        let sys = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6c3f0f4e_2b1a_4d7e_9c1e_8a4f1b2c3d4e.slice/cri-containerd-{cid}.scope"
        );
        let p = parse(&sys);
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("6c3f0f4e-2b1a-4d7e-9c1e-8a4f1b2c3d4e")
        );
        assert_eq!(p.container_id.as_deref(), Some(cid));
        assert_eq!(p.runtime, Some("containerd"));
        let guaranteed = format!(
            "/kubepods.slice/kubepods-pod0123abcd_0000_1111_2222_333344445555.slice/crio-{cid}.scope"
        );
        let p = parse(&guaranteed);
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("0123abcd-0000-1111-2222-333344445555")
        );
        assert_eq!(p.runtime, Some("crio"));
        let fs = format!("/kubepods/besteffort/podb933ae96-0000-1111-2222-333344445555/{cid}");
        let p = parse(&fs);
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("b933ae96-0000-1111-2222-333344445555")
        );
        assert_eq!(p.container_id.as_deref(), Some(cid));
        assert_eq!(p.runtime, None);
        // Pod level, QoS level, conmon and other cgroups carry no container.
        let pod_level = parse("/kubepods/burstable/pod1234");
        assert_eq!(pod_level.pod_uid.as_deref(), Some("1234"));
        assert_eq!(pod_level.container_id, None);
        assert_eq!(
            parse("/kubepods.slice/kubepods-burstable.slice"),
            PathIds::default()
        );
        let conmon = parse(&format!(
            "/kubepods.slice/kubepods-pod1.slice/crio-conmon-{cid}.scope"
        ));
        assert_eq!(conmon.container_id, None);
        assert_eq!(parse("/system.slice/kubelet.service"), PathIds::default());
    }
}
