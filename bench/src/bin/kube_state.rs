//! `vigil kube-state` at scale, every resource it renders enabled (opt-in ones too): the fake API server holds PODS
//! pods (default 10,000) in Deployments of 20, with resource requests and limits, on 10 nodes,
//! and for each Deployment what a cluster holds beside it (its ReplicaSet, a Service with its
//! Endpoints and EndpointSlice, a ConfigMap, a Secret, a HorizontalPodAutoscaler and a
//! PodDisruptionBudget), in 25 namespaces; prints the time from start until every resource has
//! listed, the exporter's resident memory, the exposition's size and the median time to serve
//! `/metrics`, and checks that every kind's families have their samples.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin kube_state [-- PODS]`
//!
//! kube-state-metrics itself is not packaged by Debian (and no Go toolchain can be fetched
//! here), so there is no side-by-side figure; the memory is set against the size of the objects'
//! JSON, which a client that kept whole objects would hold at least once.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_bench::{Killed, free_port, http_get, http_get_status, rss_bytes};
use vigil_kube_fake::FakeKube;
use vigil_kube_fake::manifests::node;

fn pod(i: usize) -> Value {
    let d = i / 20;
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("app-{d}-{i}"), "namespace": format!("ns-{}", d % 25),
                     "labels": {"app": format!("app-{d}"), "pod-template-hash": "5d8f9c"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{d}-5d8f9c"),
                                          "uid": format!("rs-{d}"), "controller": true}]},
        "spec": {"nodeName": format!("node-{}", i % 10), "containers": [
            {"name": "app", "image": "registry.example/app:1.2.3",
             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}},
            {"name": "sidecar", "image": "registry.example/sidecar:0.9",
             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        "status": {"phase": "Running", "podIP": format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                   "hostIP": format!("192.168.0.{}", i % 10), "startTime": "2026-11-30T00:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [
                       {"name": "app", "image": "registry.example/app:1.2.3", "imageID": "registry.example/app@sha256:aa",
                        "containerID": format!("containerd://{i:064x}"), "ready": true, "restartCount": i % 3,
                        "state": {"running": {"startedAt": "2026-11-30T00:00:00Z"}}},
                       {"name": "sidecar", "image": "registry.example/sidecar:0.9", "imageID": "registry.example/sidecar@sha256:bb",
                        "containerID": format!("containerd://{:064x}", i + 1_000_000), "ready": true, "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-11-30T00:00:00Z"}}}]}
    })
}

/// What a cluster holds for Deployment `d` beside its pods.
fn around_deployment(d: usize, pods: &[Value]) -> Vec<Value> {
    let (name, ns) = (format!("app-{d}"), format!("ns-{}", d % 25));
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": format!("dep-{d}")},
        "spec": {"replicas": 20, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}}}});
    let owner = |kind: &str, n: &str, uid: String| json!([{"apiVersion": "apps/v1", "kind": kind, "name": n, "uid": uid, "controller": true}]);
    let rs_name = format!("{name}-5d8f9c");
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "namespace": ns, "uid": format!("rs-{d}"), "generation": 1,
                     "labels": {"app": name, "pod-template-hash": "5d8f9c"},
                     "ownerReferences": owner("Deployment", &name, format!("dep-{d}"))},
        "spec": {"replicas": 20, "selector": {"matchLabels": {"app": name, "pod-template-hash": "5d8f9c"}}},
        "status": {"replicas": 20, "fullyLabeledReplicas": 20, "readyReplicas": 20,
                   "availableReplicas": 20, "observedGeneration": 1}});
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    let [svc, endpoints, slice] = vigil_kube_fake::manifests::service(
        &svc,
        &format!("10.96.{}.{}", d >> 8 & 255, d & 255),
        pods,
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{name}-config"), "namespace": ns, "resourceVersion": format!("{}", 1000 + d)},
        "data": {"app.properties": "log.level=info\nfeature.x=true\n"}});
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": format!("{name}-tls"), "namespace": ns, "resourceVersion": format!("{}", 2000 + d)},
        "data": {"tls.crt": "LS0tLS1CRUdJTi4uLg==", "tls.key": "LS0tLS1CRUdJTi4uLg=="}});
    let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": 10, "maxReplicas": 40,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                              "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        "status": {"currentReplicas": 20, "desiredReplicas": 20,
                   "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                                       "current": {"averageUtilization": 42, "averageValue": "42m"}}}],
                   "conditions": [{"type": "AbleToScale", "status": "True"},
                                  {"type": "ScalingActive", "status": "True"}]}});
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": {"minAvailable": 15, "selector": {"matchLabels": {"app": name}}},
        "status": {"currentHealthy": 20, "desiredHealthy": 15, "disruptionsAllowed": 5,
                   "expectedPods": 20, "observedGeneration": 1}});
    vec![
        vigil_kube_fake::manifests::deployment(&dep, 20),
        rs,
        svc,
        endpoints,
        slice,
        cm,
        secret,
        hpa,
        pdb,
    ]
}

fn main() {
    let pods: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let k = FakeKube::start();
    k.set_watch_cap(Duration::from_secs(300));
    let mut json_bytes = 0usize;
    for n in 0..10 {
        json_bytes += k
            .apply(node(&format!("node-{n}"), &format!("192.168.0.{n}")))
            .to_string()
            .len();
    }
    for n in 0..25 {
        json_bytes += k
            .apply(vigil_kube_fake::manifests::namespace(&format!("ns-{n}")))
            .to_string()
            .len();
    }
    let all_pods: Vec<Value> = (0..pods).map(pod).collect();
    for p in &all_pods {
        json_bytes += k.apply(p.clone()).to_string().len();
    }
    let deployments = pods.div_ceil(20);
    for d in 0..deployments {
        for obj in around_deployment(d, &all_pods[d * 20..((d + 1) * 20).min(pods)]) {
            json_bytes += k.apply(obj).to_string().len();
        }
    }
    println!(
        "{pods} pods (2 containers each), {deployments} deployments with a replicaset, service (endpoints, endpointslice), configmap, secret, HPA and PDB each, 25 namespaces, 10 nodes in the fake API server ({:.1} MB of object JSON)",
        json_bytes as f64 / 1e6
    );
    let port = free_port();
    let t0 = Instant::now();
    let ks = Killed(
        Command::new(&vigil)
            .args([
                "kube-state",
                &format!("--web.listen-address=127.0.0.1:{port}"),
                "--telemetry-host=127.0.0.1",
                &format!("--telemetry-port={}", free_port()),
                &format!("--apiserver={}", k.url()),
                // Every resource vigil renders, the opt-in ones (Endpoints, IngressClasses)
                // included.
                &format!(
                    "--resources={}",
                    vigil_exporters::kube_state::SUPPORTED.join(",")
                ),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while http_get_status(port, "/readyz") != Some(200) {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "not synced after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let synced = t0.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_bytes(ks.0.id()).unwrap_or(0);
    let mut times = Vec::new();
    let mut size = 0;
    let mut samples = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let body = http_get(port, "/metrics").expect("metrics");
        times.push(t.elapsed().as_secs_f64());
        size = body.len();
        samples = body.lines().filter(|l| !l.starts_with('#')).count();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    // The work was done: every kind's objects are on the page, as many as were made.
    let body = http_get(port, "/metrics").expect("metrics");
    let count = |prefix: &str| body.lines().filter(|l| l.starts_with(prefix)).count();
    let deployments = pods.div_ceil(20);
    for (family, want) in [
        ("kube_pod_info{", pods),
        ("kube_deployment_spec_replicas{", deployments),
        ("kube_replicaset_owner{", deployments),
        ("kube_service_info{", deployments),
        ("kube_endpoint_info{", deployments),
        ("kube_endpointslice_info{", deployments),
        ("kube_configmap_info{", deployments),
        ("kube_secret_info{", deployments),
        (
            "kube_horizontalpodautoscaler_spec_max_replicas{",
            deployments,
        ),
        (
            "kube_poddisruptionbudget_status_expected_pods{",
            deployments,
        ),
        ("kube_namespace_status_phase{", 25 * 2),
        ("kube_node_info{", 10),
    ] {
        assert_eq!(count(family), want, "{family} samples");
    }
    let rss_after = rss_bytes(ks.0.id()).unwrap_or(0);
    println!(
        "start to all resources listed: {:.2} s",
        synced.as_secs_f64()
    );
    println!(
        "resident memory after sync: {:.1} MB ({:.0} bytes per pod); after 5 scrapes: {:.1} MB",
        rss as f64 / 1e6,
        rss as f64 / pods as f64,
        rss_after as f64 / 1e6
    );
    println!(
        "exposition: {samples} samples, {:.1} MB; median /metrics time {:.0} ms",
        size as f64 / 1e6,
        times[2] * 1000.0
    );
    println!(
        "memory / object JSON size: {:.2}",
        rss as f64 / json_bytes as f64
    );
}
