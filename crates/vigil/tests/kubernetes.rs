//! The chapter 14 scenario end to end: vigil runs the book's `prometheus.yml` unchanged except
//! for `api_server` (there is no cluster here; a fake API server speaking the real list/watch
//! protocol stands in, seeded from the book's manifests). Pod IPs are loopback addresses where
//! real exporters listen, so vigil scrapes each pod IP directly, follows a scale-up without a
//! reload, and marks a deleted pod's series stale. Debian's VictoriaMetrics, given the same
//! config and API server, is the referee for the active targets.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::*;
use vigil_kube_fake::manifests::{chapter14, parse_docs, pod};
use vigil_kube_fake::{FakeKube, Res};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kiamol-ch14"
);

/// The book's Prometheus config (from its ConfigMap), pointed at `api_server` and scraping every
/// 2s instead of 30s so the test is quick. Nothing else is changed.
fn chapter14_config(api_server: &str) -> String {
    let cm = parse_docs(
        &std::fs::read_to_string(format!("{FIXTURES}/prometheus/prometheus-config.yaml")).unwrap(),
    );
    let yml = cm[0]["data"]["prometheus.yml"]
        .as_str()
        .unwrap()
        .to_string();
    // `api_server` goes under `role`, at its indentation.
    let mut out = String::new();
    for line in yml.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(i) = line.find("- role: pod") {
            out.push_str(&format!("{}api_server: {api_server}\n", " ".repeat(i + 2)));
        }
    }
    assert!(out.contains("api_server"));
    out.replace("scrape_interval: 30s", "scrape_interval: 2s")
}

/// Active `test-pods` targets as (job, instance, scrape URL, health).
fn active(base: &str) -> Vec<(String, String, String, String)> {
    let j = get_json(&format!("{base}/api/v1/targets?state=active"));
    let mut out: Vec<_> = j["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["scrapePool"] == "test-pods")
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or("").to_string(),
                t["labels"]["instance"].as_str().unwrap_or("").to_string(),
                t["scrapeUrl"].as_str().unwrap_or("").to_string(),
                t["health"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pod_name(p: &Value) -> String {
    p["metadata"]["name"].as_str().unwrap().to_string()
}

#[test]
fn chapter14_pods_discovered_scraped_scaled_and_refereed_by_victoriametrics() {
    let dir = temp_dir("k8s-ch14");
    let k = FakeKube::start();
    let apps = chapter14(&k, Path::new(FIXTURES), "127.0.1");
    // A pod outside the test namespace (the monitoring stack itself) must be dropped.
    let mut mon = apps["timecheck"].1.clone();
    mon["metadata"]["name"] = "prometheus-7d9c-abcde".into();
    mon["metadata"]["namespace"] = "kiamol-ch14-monitoring".into();
    mon["status"]["podIP"] = "127.0.1.90".into();
    k.apply(mon);

    // Real exporters where two pods' annotated ports point: timecheck's node exporter stand-in
    // on its pod IP and port, numbers-api's blackbox exporter sidecar on 9115.
    let ip = |app: &str| apps[app].1["status"]["podIP"].as_str().unwrap().to_string();
    let _timecheck = spawn(
        "node-exporter-timecheck",
        &debian_bin("prometheus-node-exporter"),
        &[format!("--web.listen-address={}:8080", ip("timecheck"))],
        &dir,
    );
    let bb_cfg = dir.join("blackbox.yml");
    std::fs::write(&bb_cfg, "modules:\n  http_2xx:\n    prober: http\n").unwrap();
    let _numbers = spawn(
        "blackbox-numbers",
        &debian_bin("prometheus-blackbox-exporter"),
        &[
            format!("--web.listen-address={}:9115", ip("numbers-api")),
            format!("--config.file={}", bb_cfg.display()),
        ],
        &dir,
    );
    wait_http(&format!("http://{}:8080/metrics", ip("timecheck")));
    wait_http(&format!("http://{}:9115/metrics", ip("numbers-api")));

    let cfg = chapter14_config(&k.url());
    let v = Vigil::start("k8s-ch14", Some(&cfg), &[]);
    let b = v.base.clone();

    // Phase A of the chapter: six annotated apps, each one target named after its pod.
    let want_urls = |apps: &std::collections::BTreeMap<String, (Value, Value)>| {
        let mut w: Vec<(String, String, String)> = vec![
            ("timecheck", "8080", "/metrics"),
            ("apod-api", "80", "/actuator/prometheus"),
            ("apod-log", "80", "/metrics"),
            ("apod-web", "80", "/metrics"),
            (
                "numbers-api",
                "9115",
                "/probe?target=http%3A%2F%2F127.0.0.1%2Fhealthz",
            ),
        ]
        .into_iter()
        .map(|(app, port, path)| {
            let p = &apps[app].1;
            (
                app.to_string(),
                pod_name(p),
                format!(
                    "http://{}:{port}{path}",
                    p["status"]["podIP"].as_str().unwrap()
                ),
            )
        })
        .collect();
        // todo-web declares no port: its pod IP alone.
        let p = &apps["todo-web"].1;
        w.push((
            "todo-web".into(),
            pod_name(p),
            format!("http://{}/metrics", p["status"]["podIP"].as_str().unwrap()),
        ));
        w.sort();
        w
    };
    let want = want_urls(&apps);
    let got = wait_for(
        "the six chapter 14 targets",
        Duration::from_secs(30),
        || {
            let a = active(&b);
            (a.len() == 6).then_some(a)
        },
    );
    let got_urls: Vec<(String, String, String)> = got
        .iter()
        .map(|(j, i, u, _)| (j.clone(), i.clone(), u.clone()))
        .collect();
    assert_eq!(got_urls, want);
    // Pods with real exporters behind their IPs are up (scraped directly by pod IP).
    wait_for(
        "timecheck and numbers-api up",
        Duration::from_secs(20),
        || {
            let a = active(&b);
            let up = |job: &str| a.iter().any(|t| t.0 == job && t.3 == "up");
            (up("timecheck") && up("numbers-api")).then_some(())
        },
    );
    let tc = pod_name(&apps["timecheck"].1);
    assert!(
        !query(
            &b,
            &format!("node_cpu_seconds_total{{job=\"timecheck\",instance=\"{tc}\"}}")
        )
        .is_empty(),
        "node exporter samples stored under the pod's job and instance"
    );
    // `scrape: "false"` pods and other namespaces are dropped, not scraped.
    let dropped = get_json(&format!("{b}/api/v1/targets?state=dropped"));
    let dropped_pods: BTreeSet<String> = dropped["data"]["droppedTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["discoveredLabels"]["__meta_kubernetes_pod_name"].as_str())
        .map(str::to_string)
        .collect();
    for app in ["todo-db", "todo-proxy"] {
        assert!(
            dropped_pods.contains(&pod_name(&apps[app].1)),
            "{app} dropped"
        );
    }
    assert!(dropped_pods.contains("prometheus-7d9c-abcde"));
    // Why was todo-db dropped? The relabel steps name the rule.
    let todo_db = pod_name(&apps["todo-db"].1);
    let discovered = dropped["data"]["droppedTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["discoveredLabels"]["__meta_kubernetes_pod_name"] == todo_db.as_str())
        .unwrap()["discoveredLabels"]
        .clone();
    let steps = get_json(&format!(
        "{b}/api/v1/targets/relabel_steps?scrapePool=test-pods&labels={}",
        enc(&discovered.to_string())
    ));
    let steps = steps["data"]["steps"].as_array().unwrap().clone();
    assert_eq!(
        steps.len(),
        2,
        "kept by the namespace rule, dropped by the next: {steps:?}"
    );
    assert_eq!(steps[0]["keep"], true);
    assert_eq!(steps[1]["keep"], false);
    assert_eq!(steps[1]["rule"]["action"], "drop");
    assert_eq!(
        steps[1]["rule"]["source_labels"][1],
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    );

    // The referee: VictoriaMetrics with the same config and API server finds the same
    // targets (job, instance, scrape URL). VM 1.79 adds the default port to port-less
    // addresses (docs/kubernetes-sd.md §7.2), so `:80` is stripped from its URLs.
    if let Some(vm) = ["/usr/bin/victoria-metrics", "/usr/sbin/victoria-metrics"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    {
        let cfg_path = dir.join("vm.yml");
        std::fs::write(&cfg_path, &cfg).unwrap();
        let port = free_port();
        let _vm = spawn(
            "victoria-metrics",
            Path::new(vm),
            &[
                format!("-promscrape.config={}", cfg_path.display()),
                "-promscrape.kubernetesSDCheckInterval=1s".into(),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.join("vm").display()),
            ],
            &dir,
        );
        let vm_base = format!("http://127.0.0.1:{port}");
        let vm_targets = wait_for("VictoriaMetrics' targets", Duration::from_secs(30), || {
            let a = http("GET", &format!("{vm_base}/api/v1/targets"), None)
                .ok()
                .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())?;
            let t: Vec<(String, String, String)> = a["data"]["activeTargets"]
                .as_array()?
                .iter()
                .filter(|t| t["labels"]["job"].as_str() != Some(""))
                .map(|t| {
                    (
                        t["labels"]["job"].as_str().unwrap_or("").to_string(),
                        t["labels"]["instance"].as_str().unwrap_or("").to_string(),
                        t["scrapeUrl"].as_str().unwrap_or("").replace(":80/", "/"),
                    )
                })
                .collect();
            (t.len() == 6).then_some(t)
        });
        let mut vm_sorted = vm_targets;
        vm_sorted.sort();
        let ours: Vec<(String, String, String)> = want
            .iter()
            .map(|(j, i, u)| (j.clone(), i.clone(), u.replace(":80/", "/")))
            .collect();
        assert_eq!(vm_sorted, ours, "VictoriaMetrics disagrees");

        // Label for label: every target's `__meta_kubernetes_*` labels as VictoriaMetrics
        // discovers them, except those VM 1.79 does not produce (container id and image, and
        // Prometheus 3's `pod_ipv4`/`pod_ipv6`; docs/kubernetes-sd.md §1.9, §7.2) and empty
        // values (absent in vigil's label sets; the same for relabeling).
        let metas = |t: &Value| -> std::collections::BTreeMap<String, String> {
            t["discoveredLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| {
                    k.starts_with("__meta_kubernetes_")
                        && v.as_str() != Some("")
                        && !k.starts_with("__meta_kubernetes_pod_container_id")
                        && !k.starts_with("__meta_kubernetes_pod_container_image")
                        && !k.starts_with("__meta_kubernetes_pod_ipv")
                })
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        };
        let by_instance = |j: &Value| -> std::collections::BTreeMap<String, Value> {
            j["data"]["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| Some((t["labels"]["instance"].as_str()?.to_string(), t.clone())))
                .collect()
        };
        let vm_all = by_instance(
            &serde_json::from_str(
                &http("GET", &format!("{vm_base}/api/v1/targets"), None)
                    .unwrap()
                    .1,
            )
            .unwrap(),
        );
        let ours_all = by_instance(&get_json(&format!("{b}/api/v1/targets?state=active")));
        let mut compared = 0;
        for (instance, t) in &ours_all {
            if t["scrapePool"] != "test-pods" {
                continue;
            }
            let theirs = vm_all.get(instance).expect("VM has the target");
            let (a, b2) = (metas(t), metas(theirs));
            let diff: Vec<String> = a
                .keys()
                .chain(b2.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|k| a.get(*k) != b2.get(*k))
                .map(|k| format!("{k}: vigil {:?} vs VM {:?}", a.get(k), b2.get(k)))
                .collect();
            assert!(
                diff.is_empty(),
                "__meta labels of {instance} differ: {diff:#?}"
            );
            compared += 1;
        }
        assert_eq!(compared, 6);
    } else {
        panic!("victoria-metrics is needed as the referee (scripts/test installs it)");
    }

    // Scaling timecheck to two replicas: the new pod is discovered through the watch and
    // scraped by its IP within seconds, with no reload.
    let tc_dep = apps["timecheck"].0.clone();
    let second = pod(&tc_dep, 1, "127.0.1.30", "node-1", "192.168.49.2");
    let second_name = pod_name(&second);
    let _second_exporter = spawn(
        "node-exporter-timecheck-2",
        &debian_bin("prometheus-node-exporter"),
        &["--web.listen-address=127.0.1.30:8080".to_string()],
        &dir,
    );
    wait_http("http://127.0.1.30:8080/metrics");
    k.apply(second);
    wait_for("the new replica scraped", Duration::from_secs(20), || {
        active(&b)
            .iter()
            .any(|t| t.1 == second_name && t.3 == "up")
            .then_some(())
    });

    // Deleting the first pod removes its target; its series go stale (no value at "now").
    k.delete(Res::Pods, &format!("kiamol-ch14-test/{tc}"));
    wait_for(
        "the deleted pod's target gone",
        Duration::from_secs(20),
        || (!active(&b).iter().any(|t| t.1 == tc)).then_some(()),
    );
    wait_for("its series stale", Duration::from_secs(20), || {
        query(&b, &format!("up{{instance=\"{tc}\"}}"))
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        query(&b, &format!("up{{instance=\"{second_name}\"}}")).len(),
        1,
        "the other replica carries on"
    );
}
