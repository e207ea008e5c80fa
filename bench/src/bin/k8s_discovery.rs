//! Kubernetes discovery at scale: vigil and VictoriaMetrics watch the same fake API server
//! holding PODS annotated pods (default 10,000), each as full as a real Deployment's pod; prints
//! the time from start until every pod is an active target, the memory it costs, and the time
//! for one new pod to become a target.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin k8s_discovery [-- PODS]`
//!
//! Pod IPs are unroutable (10.x): scrapes would fail, so the scrape interval is 1h and the
//! measurement is discovery and target management, not scraping. VictoriaMetrics runs with
//! `-promscrape.kubernetesSDCheckInterval=1s` (its default, 30s, would dominate); vigil's
//! discovery manager publishes at most every 5s (as Prometheus), which bounds its latency.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_bench::{Killed, free_port, http_get, rss_bytes, up};
use vigil_kube_fake::FakeKube;

/// A pod as a Deployment's pods look in a real cluster (about 5 KB of JSON): owner, labels and
/// annotations, a container with environment, resources, probes and volume mounts, the service
/// account volume, tolerations, statuses with conditions and container states, and the managed
/// fields the API server records. Discovery reads a fraction of it; what it keeps is its memory.
fn pod(i: usize) -> Value {
    let name = format!("app-{}-7c9f8d5b6-{i:05}", i % 50);
    let ip = format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255);
    let fields = json!({"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                        "f:ownerReferences": {".": {}, "k:{\"uid\":\"rs\"}": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {}, "f:image": {},
                                   "f:imagePullPolicy": {}, "f:livenessProbe": {}, "f:name": {}, "f:ports": {},
                                   "f:readinessProbe": {}, "f:resources": {}, "f:terminationMessagePath": {},
                                   "f:terminationMessagePolicy": {}, "f:volumeMounts": {}}},
                                   "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                                   "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}});
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "bench", "generateName": format!("app-{}-7c9f8d5b6-", i % 50),
                     "uid": format!("6c3f0f4e-2b1a-4d7e-9c1e-{i:012}"), "resourceVersion": "1",
                     "creationTimestamp": "2026-11-30T12:00:00Z",
                     "labels": {"app": format!("app-{}", i % 50), "pod-template-hash": "7c9f8d5b6"},
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                                     "kubectl.kubernetes.io/restartedAt": "2026-11-30T12:00:00Z"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{}-7c9f8d5b6", i % 50),
                                          "uid": "rs", "controller": true, "blockOwnerDeletion": true}],
                     "managedFields": [
                         {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                          "time": "2026-11-30T12:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields},
                         {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T12:00:05Z",
                          "fieldsType": "FieldsV1", "subresource": "status",
                          "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {},
                                       "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
                                       "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {},
                                       "f:podIPs": {".": {}, "k:{\"ip\":\"x\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}}}]},
        "spec": {"nodeName": format!("node-{}", i % 10), "serviceAccountName": "default",
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                 "terminationGracePeriodSeconds": 30, "enableServiceLinks": true, "priority": 0,
                 "securityContext": {}, "preemptionPolicy": "PreemptLowerPriority",
                 "containers": [{"name": "app", "image": "registry.example.com/team/app:1.4.2", "imagePullPolicy": "IfNotPresent",
                     "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                     "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                             {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                     "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 10,
                                       "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5,
                                        "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                     "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                     "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                 "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                     {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                     {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                     {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                                 {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.1", "hostIPs": [{"ip": "192.168.0.1"}],
                   "qosClass": "Burstable", "startTime": "2026-11-30T12:00:01Z",
                   "conditions": [{"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2026-11-30T12:00:02Z"},
                                  {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-30T12:00:01Z"},
                                  {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T12:00:05Z"},
                                  {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-30T12:00:05Z"},
                                  {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T12:00:00Z"}],
                   "containerStatuses": [{"name": "app", "ready": true, "started": true, "restartCount": 0,
                                          "image": "registry.example.com/team/app:1.4.2",
                                          "imageID": "registry.example.com/team/app@sha256:4b1c6f0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c",
                                          "containerID": format!("containerd://{i:064}"),
                                          "state": {"running": {"startedAt": "2026-11-30T12:00:03Z"}}, "lastState": {}}]}
    })
}

fn active_targets(port: u16) -> usize {
    http_get(port, "/api/v1/targets?state=active")
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|j| j["data"]["activeTargets"].as_array().map(|a| a.len()))
        .unwrap_or(0)
}

fn wait_targets(port: u16, n: usize, since: Instant) -> Duration {
    loop {
        if active_targets(port) >= n {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(300),
            "not all targets after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    for i in 0..pods {
        k.apply(pod(i));
    }
    let dir = std::env::temp_dir().join(format!("vigil-bench-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("k8s.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1h\n  scrape_timeout: 10s\nscrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs:\n      - role: pod\n        api_server: {}\n    relabel_configs:\n      - source_labels: [__meta_kubernetes_pod_annotationpresent_prometheus_io_port]\n        regex: 'true'\n        action: keep\n",
            k.url()
        ),
    )
    .unwrap();
    println!("{pods} annotated pods in the fake API server");

    let mut rows = Vec::new();
    // vigil
    let vp = free_port();
    let t0 = Instant::now();
    let v = Killed(
        Command::new(&vigil)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{vp}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("vigil").display()
            ))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while !up(vp) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = wait_targets(vp, pods, t0);
    let rss = rss_bytes(v.0.id()).unwrap_or(0);
    let t1 = Instant::now();
    k.apply(pod(pods));
    let one = wait_targets(vp, pods + 1, t1);
    rows.push(("vigil", all, rss, one));
    drop(v);
    let added = pod(pods);
    k.delete(
        vigil_kube_fake::Res::Pods,
        &format!("bench/{}", added["metadata"]["name"].as_str().unwrap_or("")),
    );

    // VictoriaMetrics
    if let Some(vm) = vigil_bench::servers::victoria_metrics() {
        let port = free_port();
        let t0 = Instant::now();
        let c = Killed(
            Command::new(vm)
                .arg(format!("-promscrape.config={}", cfg.display()))
                .arg("-promscrape.kubernetesSDCheckInterval=1s")
                .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                .arg(format!("-storageDataPath={}", dir.join("vm").display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        while !up(port) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let all = wait_targets(port, pods, t0);
        let rss = rss_bytes(c.0.id()).unwrap_or(0);
        let t1 = Instant::now();
        k.apply(pod(pods + 1));
        let one = wait_targets(port, pods + 1, t1);
        rows.push(("victoria-metrics", all, rss, one));
    } else {
        println!("victoria-metrics not installed: vigil only");
    }

    println!();
    println!(
        "{:<18} {:>22} {:>10} {:>24}",
        "", "start to all active s", "RSS MB", "one new pod to target s"
    );
    for (name, all, rss, one) in &rows {
        println!(
            "{:<18} {:>22.2} {:>10.0} {:>24.2}",
            name,
            all.as_secs_f64(),
            *rss as f64 / 1e6,
            one.as_secs_f64()
        );
    }
    if let [(_, _, v, _), (_, _, vm, _)] = rows[..]
        && vm > 0
    {
        println!("RSS vigil / victoria-metrics: {:.2}", v as f64 / vm as f64);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
