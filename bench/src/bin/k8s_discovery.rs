//! Kubernetes discovery at scale: vigil and VictoriaMetrics watch the same fake API server
//! holding PODS annotated pods (default 10,000); prints the time from start until every pod is
//! an active target, the memory it costs, and the time for one new pod to become a target.
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

fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("app-{i}"), "namespace": "bench",
                     "labels": {"app": format!("app-{}", i % 50)},
                     "annotations": {"prometheus.io/port": "8080"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:1",
                  "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
                   "hostIP": "192.168.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
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
    k.delete(vigil_kube_fake::Res::Pods, &format!("bench/app-{pods}"));

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
    let _ = std::fs::remove_dir_all(&dir);
}
