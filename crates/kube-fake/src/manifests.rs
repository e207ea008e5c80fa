//! What a cluster would store after `kubectl apply` of Deployment and Service manifests: Pods
//! made from each Deployment's template (generated names, `pod-template-hash`, ReplicaSet owner,
//! running and ready with container statuses), Services with cluster IPs, and their Endpoints
//! and EndpointSlices (target ports resolved against the pods' named ports).

use serde_json::{Value, json};

/// Every YAML document of a multi-document manifest, as JSON.
pub fn parse_docs(yaml: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in yaml.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if !cur.trim().is_empty() {
                let mut v: Value = serde_saphyr::from_str(&cur)
                    .unwrap_or_else(|e| panic!("manifest document: {e}\n{cur}"));
                integers(&mut v);
                docs.push(v);
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs
}

/// Whole numbers as JSON integers (the YAML reader may hand back `400.0` for `0400`, which
/// the API types, `i32` fields, reject).
fn integers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && n.as_i64().is_none()
                && f.fract() == 0.0
                && f.abs() < 9e15
            {
                *v = json!(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integers),
        Value::Object(o) => o.values_mut().for_each(integers),
        _ => {}
    }
}

/// A short stable hash, as the pod-template-hash label looks.
fn short_hash(s: &str, len: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h = (h / ALPHABET.len() as u64) ^ h.rotate_left(17);
            c
        })
        .collect()
}

/// A node with an internal IP and the usual kubelet port, ready, with a kind-like node's
/// capacity and node info.
pub fn node(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {"providerID": format!("fake://{name}"), "podCIDR": "10.244.0.0/24"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "capacity": {"cpu": "4", "memory": "16318412Ki", "pods": "110", "ephemeral-storage": "102625208Ki"},
            "allocatable": {"cpu": "3800m", "memory": "15806412Ki", "pods": "110", "ephemeral-storage": "94580335255"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"}, {"type": "DiskPressure", "status": "False"},
                {"type": "PIDPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "nodeInfo": {"kernelVersion": "6.1.0-28-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "containerRuntimeVersion": "containerd://1.7.18", "kubeletVersion": "v1.33.1",
                         "kubeProxyVersion": "v1.33.1", "operatingSystem": "linux", "architecture": "amd64",
                         "systemUUID": format!("uuid-{name}"), "machineID": format!("machine-{name}"),
                         "bootID": format!("boot-{name}")}
        }
    })
}

/// A Deployment as stored: `replicas` defaulted to 1, and a status saying `available` of them
/// are available (the rest unavailable).
pub fn deployment(manifest: &Value, available: i64) -> Value {
    let mut d = manifest.clone();
    if d["spec"]["replicas"].is_null() {
        d["spec"]["replicas"] = json!(1);
    }
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    d["metadata"]["generation"] = json!(1);
    if d["metadata"]["namespace"].is_null() {
        d["metadata"]["namespace"] = json!("default");
    }
    d["status"] = deployment_status(1, replicas, replicas, available);
    d
}

/// A Deployment's status at `generation`: `running` of its `wanted` pods exist, `available`
/// of them available.
pub fn deployment_status(generation: i64, wanted: i64, running: i64, available: i64) -> Value {
    json!({
        "observedGeneration": generation, "replicas": running, "updatedReplicas": running,
        "readyReplicas": available, "availableReplicas": available,
        "unavailableReplicas": (wanted - available).max(0),
        "conditions": [{"type": "Available", "status": if available > 0 { "True" } else { "False" }}]
    })
}

/// A namespace, active.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

/// Pod number `index` of a Deployment, with IP `ip` on node `node` (whose IP is `host_ip`).
pub fn pod(deployment: &Value, index: usize, ip: &str, node: &str, host_ip: &str) -> Value {
    let dname = deployment["metadata"]["name"].as_str().unwrap_or("app");
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let template = &deployment["spec"]["template"];
    let hash = short_hash(dname, 10);
    let rs = format!("{dname}-{hash}");
    let name = format!("{rs}-{}", short_hash(&format!("{dname}{index}"), 5));
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["pod-template-hash"] = json!(hash);
    let mut spec = template["spec"].clone();
    let mut statuses = Vec::new();
    for (list, status_list) in [("containers", &mut statuses)] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            for p in c["ports"].as_array_mut().into_iter().flatten() {
                if p["protocol"].is_null() {
                    p["protocol"] = json!("TCP");
                }
            }
            status_list.push(json!({
                "name": c["name"], "image": c["image"], "imageID": "",
                "containerID": format!("containerd://{}", short_hash(&format!("{name}{}", c["name"]), 16)),
                "ready": true, "restartCount": 0, "started": true,
                "state": {"running": {"startedAt": "2026-11-30T00:00:00Z"}}
            }));
        }
    }
    spec["nodeName"] = json!(node);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "labels": labels,
            "annotations": template["metadata"]["annotations"].clone(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": format!("uid-{rs}"), "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": spec,
        "status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip,
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                           {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": statuses
        }
    })
}

fn selects(selector: &Value, pod: &Value) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| pod["metadata"]["labels"][k].as_str() == v.as_str())
}

/// A Service as stored (cluster IP, defaulted type and protocols), and the Endpoints and
/// EndpointSlice the control plane derives from the pods it selects.
pub fn service(svc: &Value, cluster_ip: &str, pods: &[Value]) -> [Value; 3] {
    let mut s = svc.clone();
    let name = s["metadata"]["name"].as_str().unwrap_or("svc").to_string();
    let ns = s["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    s["metadata"]["namespace"] = json!(ns);
    if s["spec"]["type"].is_null() {
        s["spec"]["type"] = json!("ClusterIP");
    }
    s["spec"]["clusterIP"] = json!(cluster_ip);
    for p in s["spec"]["ports"].as_array_mut().into_iter().flatten() {
        if p["protocol"].is_null() {
            p["protocol"] = json!("TCP");
        }
    }
    let selected: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["namespace"].as_str() == Some(ns.as_str()))
        .filter(|p| selects(&s["spec"]["selector"], p))
        .collect();
    // Resolve each service port's targetPort (a number or a container port name).
    let target_port = |sp: &Value| -> i64 {
        match &sp["targetPort"] {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(name) => selected
                .iter()
                .flat_map(|p| p["spec"]["containers"].as_array().into_iter().flatten())
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|cp| cp["name"].as_str() == Some(name.as_str()))
                .and_then(|cp| cp["containerPort"].as_i64())
                .unwrap_or(0),
            _ => sp["port"].as_i64().unwrap_or(0),
        }
    };
    let ports: Vec<Value> = s["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|sp| {
            json!({"name": sp["name"].as_str().unwrap_or(""), "port": target_port(sp),
                   "protocol": sp["protocol"]})
        })
        .collect();
    let target_ref = |p: &Value| {
        json!({"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
               "uid": p["metadata"]["uid"]})
    };
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": s["metadata"]["labels"].clone()},
        "subsets": if selected.is_empty() { json!([]) } else { json!([{
            "addresses": selected.iter().map(|p| json!({
                "ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"], "targetRef": target_ref(p)
            })).collect::<Vec<_>>(),
            "ports": ports
        }]) }
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-{}", short_hash(&name, 5)), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": name,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": selected.iter().map(|p| json!({
            "addresses": [p["status"]["podIP"]],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": p["spec"]["nodeName"], "targetRef": target_ref(p)
        })).collect::<Vec<_>>(),
        "ports": ports
    });
    [s, endpoints, slice]
}

/// The chapter 14 apps' manifests, phase A (before the exporter sidecars are added).
pub const CHAPTER14_APPS: [&str; 8] = [
    "timecheck/timecheck.yaml",
    "apod/api.yaml",
    "apod/log.yaml",
    "apod/web.yaml",
    "todo-list/web.yaml",
    "todo-list/db.yaml",
    "todo-list/proxy.yaml",
    "numbers/api.yaml",
];

/// Load the chapter 14 apps into `k` as a one-node cluster holds them: one pod per Deployment
/// (IPs `<ip_prefix>.<10, 11, ...>` in file order), Services with Endpoints and slices.
/// Returns the Deployments and their pods by Deployment name.
pub fn chapter14(
    k: &crate::FakeKube,
    fixtures: &std::path::Path,
    ip_prefix: &str,
) -> std::collections::BTreeMap<String, (Value, Value)> {
    k.apply(node("node-1", "192.168.49.2"));
    let mut out = std::collections::BTreeMap::new();
    let mut services = Vec::new();
    let mut ip = 10;
    for f in CHAPTER14_APPS {
        let text = std::fs::read_to_string(fixtures.join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", fixtures.join(f).display()));
        for d in parse_docs(&text) {
            match d["kind"].as_str() {
                Some("Deployment") => {
                    let ns = d["metadata"]["namespace"].as_str().unwrap_or("default");
                    k.apply(namespace(ns));
                    k.apply(deployment(&d, 1));
                    let p = k.apply(pod(
                        &d,
                        0,
                        &format!("{ip_prefix}.{ip}"),
                        "node-1",
                        "192.168.49.2",
                    ));
                    ip += 1;
                    let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
                    out.insert(name, (d, p));
                }
                Some("Service") => services.push(d),
                _ => {}
            }
        }
    }
    let pods: Vec<Value> = out.values().map(|(_, p)| p.clone()).collect();
    for (i, s) in services.iter().enumerate() {
        for o in service(s, &format!("10.96.0.{}", 10 + i), &pods) {
            k.apply(o);
        }
    }
    out
}
