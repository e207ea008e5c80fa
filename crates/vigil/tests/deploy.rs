//! The deployment: `deploy/kubernetes/` manifests validated offline against the Kubernetes API
//! types (every document decodes as its kind, API versions current, the RBAC grants what
//! Kubernetes discovery lists and watches, the embedded config loads), and chapter 14's own
//! Prometheus Deployment with only the image swapped: its arguments start vigil.

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;
use support::*;
use vigil_kube_fake::manifests::parse_docs;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes");
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kiamol-ch14"
);

fn decode<T: serde::de::DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{} {} does not decode: {e}",
            doc["kind"], doc["metadata"]["name"]
        )
    })
}

#[test]
fn manifests_are_valid_kubernetes_objects() {
    let mut kinds = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(DEPLOY)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut config_yaml = None;
    let mut rules_yaml = None;
    let mut k8s_rules_yaml = None;
    let mut statefulset = None;
    let mut role = None;
    for f in files {
        for doc in parse_docs(&std::fs::read_to_string(&f).unwrap()) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            let api = doc["apiVersion"].as_str().unwrap();
            let want_api = match kind.as_str() {
                "Namespace" | "ServiceAccount" | "ConfigMap" | "Service" => "v1",
                "ClusterRole" | "ClusterRoleBinding" => "rbac.authorization.k8s.io/v1",
                "StatefulSet" => "apps/v1",
                other => panic!("unexpected kind {other} in {}", f.display()),
            };
            assert_eq!(api, want_api, "{kind} apiVersion");
            match kind.as_str() {
                "Namespace" => drop(decode::<Namespace>(&doc)),
                "ServiceAccount" => drop(decode::<ServiceAccount>(&doc)),
                "Service" => drop(decode::<Service>(&doc)),
                "ClusterRoleBinding" => drop(decode::<ClusterRoleBinding>(&doc)),
                "ClusterRole" => role = Some(decode::<ClusterRole>(&doc)),
                "ConfigMap" => {
                    let cm = decode::<ConfigMap>(&doc);
                    let data = cm.data.unwrap_or_default();
                    config_yaml = data.get("prometheus.yml").cloned();
                    rules_yaml = data.get("rules.yml").cloned();
                    k8s_rules_yaml = data.get("kubernetes.rules.yml").cloned();
                }
                "StatefulSet" => statefulset = Some(decode::<StatefulSet>(&doc)),
                _ => unreachable!(),
            }
            kinds.push(kind);
        }
    }
    for k in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "StatefulSet",
        "Service",
    ] {
        assert!(kinds.iter().any(|x| x == k), "missing {k}");
    }

    // The role lets Kubernetes discovery list and watch every role's objects.
    let rules = role.unwrap().rules.unwrap_or_default();
    let grants = |group: &str, res: &str| {
        rules.iter().any(|r| {
            r.api_groups
                .as_ref()
                .is_some_and(|g| g.iter().any(|x| x == group))
                && r.resources
                    .as_ref()
                    .is_some_and(|rs| rs.iter().any(|x| x == res))
                && ["list", "watch"]
                    .iter()
                    .all(|v| r.verbs.iter().any(|x| x == v))
        })
    };
    for (g, r) in [
        ("", "pods"),
        ("", "services"),
        ("", "endpoints"),
        ("", "nodes"),
        ("discovery.k8s.io", "endpointslices"),
        ("networking.k8s.io", "ingresses"),
    ] {
        assert!(grants(g, r), "ClusterRole must allow list/watch on {g}/{r}");
    }

    // The embedded config loads, and the StatefulSet's probes and arguments are vigil's.
    let dir = temp_dir("deploy-config");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config_yaml.expect("prometheus.yml in the ConfigMap")).unwrap();
    // The rule files sit beside it in the same ConfigMap (mounted at /config/).
    std::fs::write(
        dir.join("rules.yml"),
        rules_yaml.expect("rules.yml in the ConfigMap"),
    )
    .unwrap();
    let k8s_rules = dir.join("kubernetes.rules.yml");
    std::fs::write(
        &k8s_rules,
        k8s_rules_yaml.expect("kubernetes.rules.yml in the ConfigMap"),
    )
    .unwrap();
    // Debian's promtool takes the Kubernetes recordings as they are.
    let out = std::process::Command::new(debian_bin("promtool"))
        .args(["check", "rules"])
        .arg(&k8s_rules)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("SUCCESS: 19 rules found"),
        "promtool: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(vigil_bin())
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "config rejected: {text}");
    assert!(text.contains("  SUCCESS: 2 rule files found"), "{text}");
    assert!(text.contains("  SUCCESS: 5 rules found"), "{text}");
    assert!(text.contains("  SUCCESS: 19 rules found"), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
    let ss = statefulset.unwrap();
    let c = &ss.spec.unwrap().template.spec.unwrap().containers[0];
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/-/ready"));
    assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/-/healthy"));
    let args = c.args.clone().unwrap();
    assert!(args.contains(&"--web.enable-lifecycle".to_string()));
}

#[test]
fn chapter14_prometheus_deployment_args_start_vigil() {
    // The book's Deployment, image swapped: same args, config mounted at /config/.
    let docs = parse_docs(
        &std::fs::read_to_string(format!("{FIXTURES}/prometheus/prometheus.yaml")).unwrap(),
    );
    let d: Deployment = decode(docs.iter().find(|d| d["kind"] == "Deployment").unwrap());
    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
    let args = c.args.clone().unwrap();
    assert_eq!(
        args,
        [
            "--config.file=/config/prometheus.yml",
            "--web.enable-lifecycle"
        ]
    );
    let mount = c.volume_mounts.as_ref().unwrap()[0].mount_path.clone();
    assert_eq!(mount, "/config/");

    // Run vigil with exactly those arguments, the path remapped to a temp dir standing in for
    // the mount, from a working directory standing in for the image's (data goes there).
    let dir = temp_dir("ch14-args");
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let cm = parse_docs(
        &std::fs::read_to_string(format!("{FIXTURES}/prometheus/prometheus-config.yaml")).unwrap(),
    );
    std::fs::write(
        config_dir.join("prometheus.yml"),
        cm[0]["data"]["prometheus.yml"].as_str().unwrap(),
    )
    .unwrap();
    let port = free_port();
    let mut real_args: Vec<String> = args
        .iter()
        .map(|a| a.replace("/config/", &format!("{}/", config_dir.display())))
        .collect();
    real_args.push(format!("--web.listen-address=127.0.0.1:{port}"));
    let _v = spawn("vigil", &vigil_bin(), &real_args, &dir);
    let base = format!("http://127.0.0.1:{port}");
    // Outside a cluster the in-cluster client cannot be built: vigil says so, keeps retrying,
    // and serves meanwhile.
    wait_for("vigil ready", Duration::from_secs(30), || {
        http("GET", &format!("{base}/-/ready"), None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
    let (code, _) = http("POST", &format!("{base}/-/reload"), None).unwrap();
    assert_eq!(code, 200, "--web.enable-lifecycle enables /-/reload");
    assert!(
        Path::new(&dir.join("data")).is_dir(),
        "default storage path"
    );
    let flags = get_json(&format!("{base}/api/v1/status/flags"));
    assert_eq!(flags["data"]["web.enable-lifecycle"], "true");
}

/// The exporter examples: every document decodes as its kind, every vigil container's
/// arguments are accepted by the binary, and each exporter's role grants what it watches.
#[test]
fn exporter_examples_are_valid_and_their_args_parse() {
    let dir = Path::new(DEPLOY).join("examples");
    let mut seen = Vec::new();
    let mut roles: Vec<ClusterRole> = Vec::new();
    for name in [
        "probe-sidecar.yaml",
        "kube-state.yaml",
        "container-metrics.yaml",
        "node-exporter.yaml",
    ] {
        for doc in parse_docs(&std::fs::read_to_string(dir.join(name)).unwrap()) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            let spec = match kind.as_str() {
                "Deployment" => decode::<Deployment>(&doc).spec.unwrap().template.spec,
                "DaemonSet" => decode::<DaemonSet>(&doc).spec.unwrap().template.spec,
                "ServiceAccount" => {
                    decode::<ServiceAccount>(&doc);
                    None
                }
                "Service" => {
                    decode::<Service>(&doc);
                    None
                }
                "ClusterRoleBinding" => {
                    decode::<ClusterRoleBinding>(&doc);
                    None
                }
                "ClusterRole" => {
                    roles.push(decode::<ClusterRole>(&doc));
                    None
                }
                other => panic!("unexpected kind {other} in {name}"),
            };
            for c in spec.map(|s| s.containers).unwrap_or_default() {
                if c.image.as_deref() != Some("vigil:latest") {
                    continue;
                }
                let mut args = c.args.clone().unwrap_or_default();
                seen.push(args[0].clone());
                args.push("--help".into());
                let out = std::process::Command::new(vigil_bin())
                    .args(&args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: vigil {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ["container-metrics", "kube-state", "node", "probe"]);
    let grants = |group: &str, res: &str| {
        roles.iter().any(|role| {
            role.rules.iter().flatten().any(|r| {
                r.api_groups.iter().flatten().any(|g| g == group)
                    && r.resources.iter().flatten().any(|x| x == res)
                    && ["list", "watch"]
                        .iter()
                        .all(|v| r.verbs.iter().any(|x| x == v))
            })
        })
    };
    // Every resource `vigil kube-state` renders, so the role keeps up with the exporter.
    for r in vigil_exporters::kube_state::SUPPORTED {
        let g = match r {
            "deployments" | "replicasets" | "daemonsets" | "statefulsets" => "apps",
            "jobs" | "cronjobs" => "batch",
            "horizontalpodautoscalers" => "autoscaling",
            "poddisruptionbudgets" => "policy",
            "ingresses" | "ingressclasses" | "networkpolicies" => "networking.k8s.io",
            "endpointslices" => "discovery.k8s.io",
            "storageclasses" | "volumeattachments" => "storage.k8s.io",
            "leases" => "coordination.k8s.io",
            "certificatesigningrequests" => "certificates.k8s.io",
            "mutatingwebhookconfigurations"
            | "validatingwebhookconfigurations"
            | "mutatingadmissionpolicies"
            | "mutatingadmissionpolicybindings"
            | "validatingadmissionpolicies"
            | "validatingadmissionpolicybindings" => "admissionregistration.k8s.io",
            "customresourcedefinitions" => "apiextensions.k8s.io",
            _ => "",
        };
        assert!(grants(g, r), "kube-state needs list/watch on {g}/{r}");
    }
}

/// The Alertmanager example: valid objects, labelled and listening where vigil's config looks
/// for it, with a configuration Debian's `amtool check-config` accepts.
#[test]
fn alertmanager_example_is_valid_and_found_by_the_config() {
    let path = Path::new(DEPLOY).join("examples/alertmanager.yaml");
    let mut am_config = None;
    let mut deployment = None;
    for doc in parse_docs(&std::fs::read_to_string(&path).unwrap()) {
        match doc["kind"].as_str().unwrap() {
            "ConfigMap" => {
                am_config = decode::<ConfigMap>(&doc)
                    .data
                    .and_then(|d| d.get("alertmanager.yml").cloned())
            }
            "Deployment" => deployment = Some(decode::<Deployment>(&doc)),
            "Service" => drop(decode::<Service>(&doc)),
            other => panic!("unexpected kind {other}"),
        }
    }
    let d = deployment.expect("a Deployment");
    let tpl = d.spec.unwrap().template;
    let labels = tpl.metadata.unwrap().labels.unwrap();
    assert_eq!(
        labels["app"], "alertmanager",
        "the label vigil's config keeps"
    );
    let c = &tpl.spec.unwrap().containers[0];
    assert!(
        c.ports.iter().flatten().any(|p| p.container_port == 9093),
        "the port vigil's config keeps"
    );
    let dir = temp_dir("deploy-alertmanager");
    std::fs::write(
        dir.join("alertmanager.yml"),
        am_config.expect("alertmanager.yml"),
    )
    .unwrap();
    let out = std::process::Command::new(debian_bin("amtool"))
        .args(["check-config"])
        .arg(dir.join("alertmanager.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "amtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The sharding example: valid objects; the template the init container renders gives a
/// config `vigil check config` accepts for every replica; and with the replicas' configs, every
/// target is kept by exactly one replica (the hashmod modulus matches the replica count).
#[test]
fn sharding_example_splits_targets_between_replicas() {
    let path = Path::new(DEPLOY).join("examples/sharding.yaml");
    let (mut template, mut replicas) = (None, None);
    for doc in parse_docs(&std::fs::read_to_string(&path).unwrap()) {
        match doc["kind"].as_str().unwrap() {
            "ConfigMap" => {
                template = decode::<ConfigMap>(&doc)
                    .data
                    .and_then(|d| d.get("prometheus.yml.tmpl").cloned())
            }
            "StatefulSet" => {
                let ss = decode::<StatefulSet>(&doc);
                let spec = ss.spec.unwrap();
                let init = &spec
                    .template
                    .spec
                    .as_ref()
                    .unwrap()
                    .init_containers
                    .as_ref()
                    .unwrap()[0];
                assert!(
                    init.command
                        .as_ref()
                        .unwrap()
                        .join(" ")
                        .contains("${HOSTNAME##*-}"),
                    "the ordinal comes from the pod name"
                );
                replicas = spec.replicas;
            }
            "Deployment" => drop(decode::<Deployment>(&doc)),
            "Service" => drop(decode::<Service>(&doc)),
            other => panic!("unexpected kind {other}"),
        }
    }
    let template = template.expect("the config template");
    let n = replicas.expect("replicas") as usize;
    assert!(
        template.contains(&format!("modulus: {n}")),
        "the hashmod modulus must equal the replica count {n}"
    );
    let dir = temp_dir("deploy-sharding");
    let mut configs = Vec::new();
    for shard in 0..n {
        let cfg = dir.join(format!("shard-{shard}.yml"));
        std::fs::write(&cfg, template.replace("__SHARD__", &shard.to_string())).unwrap();
        let out = std::process::Command::new(vigil_bin())
            .args(["check", "config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shard {shard}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        configs.push(vigil_config::Config::load(&cfg).unwrap());
    }
    // 200 annotated pods: each is scraped by exactly one replica, and each replica gets some.
    let mut per_shard = vec![0; n];
    for i in 0..200 {
        let pod = vigil_model::Labels::from_pairs([
            ("__address__", format!("10.1.{}.{}:8080", i / 250, i % 250)),
            (
                "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape",
                "true".into(),
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true".into(),
            ),
            ("__meta_kubernetes_namespace", "apps".into()),
            ("__meta_kubernetes_pod_name", format!("pod-{i}")),
        ]);
        let kept: Vec<usize> = configs
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                vigil_model::relabel::process(&pod, &c.scrape_configs[0].relabel_configs).is_some()
            })
            .map(|(s, _)| s)
            .collect();
        assert_eq!(kept.len(), 1, "pod-{i} kept by {kept:?}");
        per_shard[kept[0]] += 1;
    }
    assert!(per_shard.iter().all(|&k| k > 40), "{per_shard:?}");
    assert_eq!(
        configs[1].global.external_labels.get("shard"),
        Some("1"),
        "the shard label"
    );
}

/// The exporter examples on the fake API server: node `node-1` at `{net}.12`, each example's
/// pod (container-metrics at `{net}.10`, kube-state at `{net}.11`, node-exporter on the host
/// network at `{net}.12`), and vigil's kube-state and node exporters listening on their pods'
/// IPs. container-metrics is left to the caller, whose paths differ.
fn example_exporters(k: &vigil_kube_fake::FakeKube, dir: &Path, net: &str) -> Vec<Proc> {
    use vigil_kube_fake::manifests::{node, pod};
    let host = format!("{net}.12");
    k.apply(node("node-1", &host));
    for (file, ip) in [
        ("container-metrics.yaml", format!("{net}.10")),
        ("kube-state.yaml", format!("{net}.11")),
        ("node-exporter.yaml", host.clone()),
    ] {
        let docs = parse_docs(
            &std::fs::read_to_string(Path::new(DEPLOY).join("examples").join(file)).unwrap(),
        );
        let workload = docs
            .iter()
            .find(|d| d["kind"] == "DaemonSet" || d["kind"] == "Deployment")
            .unwrap();
        k.apply(pod(workload, 0, &ip, "node-1", &host));
    }
    vec![
        spawn(
            "kube-state",
            &vigil_bin(),
            &[
                "kube-state".into(),
                format!("--web.listen-address={net}.11:8080"),
                format!("--telemetry-host={net}.11"),
                "--telemetry-port=8081".into(),
                format!("--apiserver={}", k.url()),
            ],
            dir,
        ),
        spawn(
            "node",
            &vigil_bin(),
            &["node".into(), format!("--web.listen-address={host}:9100")],
            dir,
        ),
    ]
}

/// The shipped config (02-config.yaml) pointed at `api_server`, its rule files replaced by
/// `rule_files`, and the ConfigMap's rule files' texts.
fn shipped_config(api_server: &str, rule_files: &[String]) -> (String, ShippedRules) {
    let cm =
        parse_docs(&std::fs::read_to_string(Path::new(DEPLOY).join("02-config.yaml")).unwrap());
    let mut cfg = String::new();
    let mut in_rule_files = false;
    for line in cm[0]["data"]["prometheus.yml"].as_str().unwrap().lines() {
        if line.starts_with("rule_files:") {
            in_rule_files = true;
            cfg.push_str("rule_files:\n");
            for f in rule_files {
                cfg.push_str(&format!("  - {f}\n"));
            }
            continue;
        }
        if in_rule_files && line.trim_start().starts_with("- ") {
            continue;
        }
        in_rule_files = false;
        cfg.push_str(line);
        cfg.push('\n');
        if let Some(i) = line.find("- role: pod") {
            cfg.push_str(&format!("{}api_server: {api_server}\n", " ".repeat(i + 2)));
        }
    }
    let data = cm[0]["data"].as_object().unwrap();
    let rules = |k: &str| data[k].as_str().unwrap().to_string();
    (
        cfg,
        ShippedRules {
            chapter: rules("rules.yml"),
            kubernetes: rules("kubernetes.rules.yml"),
        },
    )
}

/// The rule files of the shipped ConfigMap.
struct ShippedRules {
    /// `rules.yml`: the chapter's apps.
    chapter: String,
    /// `kubernetes.rules.yml`: the recordings the kubernetes-mixin's dashboards read.
    kubernetes: String,
}

/// The standard Kubernetes jobs of the deployed config: the exporter examples' pods, found
/// through the fake API server with their manifests' labels and ports, are scraped under the
/// job names and labels the kubernetes-mixin's dashboards select (`job="kubelet",
/// metrics_path="/metrics/cadvisor"`, `job="kube-state-metrics"`, `job="node-exporter"` with
/// the node as `instance`), each by a real vigil exporter listening on the pod's IP.
#[test]
fn standard_jobs_scrape_the_exporters_as_kube_prometheus_labels_them() {
    use vigil_kube_fake::FakeKube;
    let dir = temp_dir("deploy-standard-jobs");
    let k = FakeKube::start();
    let _exporters = example_exporters(&k, &dir, "127.0.2");
    // An application pod elsewhere, for kube-state to report under its own namespace.
    k.apply(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop", "uid": "uid-web-0"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "web:1"}]},
        "status": {"phase": "Running", "podIP": "127.0.2.30"}
    }));
    let _cm = spawn(
        "container-metrics",
        &vigil_bin(),
        &[
            "container-metrics".into(),
            "--web.listen-address=127.0.2.10:8080".into(),
        ],
        &dir,
    );
    // The deployed config as it is, pointed at the fake API server and scraping every 2s; its
    // rule file sits beside it as in the ConfigMap.
    let files = ["rules.yml", "kubernetes.rules.yml"].map(|f| dir.join(f).display().to_string());
    let (cfg, rules) = shipped_config(&k.url(), &files);
    let cfg = cfg.replace("scrape_interval: 30s", "scrape_interval: 2s");
    std::fs::write(&files[0], rules.chapter).unwrap();
    std::fs::write(&files[1], rules.kubernetes).unwrap();
    let v = Vigil::start("deploy-standard-jobs-vigil", Some(&cfg), &[]);
    let b = v.base.clone();
    for (q, what) in [
        (
            r#"up{job="kubelet",metrics_path="/metrics/cadvisor",node="node-1",instance="127.0.2.10:8080"} == 1"#,
            "cAdvisor's families as the kubelet's",
        ),
        (
            r#"up{job="kube-state-metrics",instance="127.0.2.11:8080"} == 1"#,
            "kube-state-metrics (not its telemetry port)",
        ),
        (
            r#"up{job="node-exporter",instance="node-1"} == 1"#,
            "the node exporter",
        ),
        (
            r#"container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",id="/"}"#,
            "the root cgroup's memory",
        ),
        (
            r#"kube_pod_info{job="kube-state-metrics",namespace="shop",pod="web-0",node="node-1"}"#,
            "an application pod under its own namespace",
        ),
        (
            r#"kube_node_info{job="kube-state-metrics",node="node-1"}"#,
            "the node",
        ),
        // The node-mixin's recording rule `instance:node_num_cpu:sum`, by node.
        (
            r#"count without (cpu, mode) (node_cpu_seconds_total{job="node-exporter",mode="idle",instance="node-1"})"#,
            "CPUs by node",
        ),
    ] {
        wait_for(what, Duration::from_secs(30), || {
            (!query(&b, q).is_empty()).then_some(())
        });
    }
    // One target per exporter: no second port of a pod, no pod of another job.
    let targets = get_json(&format!("{b}/api/v1/targets?state=active"));
    let pools: Vec<String> = targets["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scrapePool"].as_str().unwrap().to_string())
        .filter(|p| ["kubelet", "kube-state-metrics", "node-exporter"].contains(&p.as_str()))
        .collect();
    assert_eq!(pools.len(), 3, "{targets}");
}

/// One pod's cgroups (cgroup v2, systemd driver) on a built node: the pod's sandbox holding its
/// network and an app container with a CPU quota, swap and disk I/O on `sda`.
fn pod_cgroups(root: &Path, uid: &str, app: &str, sandbox: &str) {
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let cg = "sys/fs/cgroup";
    let stat = "usage_usec 183453210\nuser_usec 120345678\nsystem_usec 63107532\nnr_periods 51234\nnr_throttled 1203\nthrottled_usec 45678901\n";
    let mem = "anon 73400320\nfile 31457280\nkernel 2097152\nfile_mapped 8388608\ninactive_anon 72351744\nactive_anon 1048576\ninactive_file 20971520\nactive_file 10485760\npgfault 48213\npgmajfault 17\n";
    write(
        &format!("{cg}/cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    write(&format!("{cg}/cgroup.procs"), "1\n");
    let pod = format!(
        "{cg}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    );
    for (dir, quota, procs) in [
        (format!("{cg}/kubepods.slice"), "max 100000", ""),
        (
            format!("{cg}/kubepods.slice/kubepods-burstable.slice"),
            "max 100000",
            "",
        ),
        (pod.clone(), "max 100000", ""),
        (
            format!("{pod}/cri-containerd-{sandbox}.scope"),
            "max 100000",
            "4242\n",
        ),
        (
            format!("{pod}/cri-containerd-{app}.scope"),
            "200000 100000",
            "4243\n",
        ),
    ] {
        write(&format!("{dir}/cpu.stat"), stat);
        write(&format!("{dir}/cpu.max"), &format!("{quota}\n"));
        write(&format!("{dir}/memory.current"), "107479040\n");
        write(&format!("{dir}/memory.stat"), mem);
        write(&format!("{dir}/memory.max"), "268435456\n");
        write(&format!("{dir}/memory.swap.current"), "4096\n");
        write(&format!("{dir}/cgroup.procs"), procs);
        write(
            &format!("{dir}/io.stat"),
            "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252\n",
        );
    }
    let net = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  eth0: 9876543    6543    1    2    0     0          0         0  1234567    4321    3    5    0     0       0          0\n";
    write("proc/4242/net/dev", net);
    write("proc/meminfo", "MemTotal:       16314452 kB\n");
    write("sys/block/sda/dev", "8:0\n");
}

/// kube-prometheus's pod and namespace dashboards and its rules on vigil alone: the shipped
/// config's standard jobs scrape `vigil container-metrics` (a built node whose pod the API
/// names), `vigil kube-state` and `vigil node` (this machine), all found through the fake API
/// server. Every rule evaluates healthy, every template variable finds values, and every panel
/// query answers with data: those built on the kubernetes-mixin's `k8s.rules` recordings, which
/// the fixture's sample does not hold, read the shipped `kubernetes.rules.yml`'s, whose values
/// are checked against the pod's objects and cgroups.
#[test]
fn kubernetes_mixin_dashboards_on_vigils_exporters() {
    use vigil_kube_fake::FakeKube;
    const UID: &str = "6c3f0f4e-2b1a-4d7e-9c1e-8a4f1b2c3d4e";
    const APP: &str = "3f9a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdde";
    const SANDBOX: &str = "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233";
    let dir = temp_dir("deploy-mixin");
    let root = dir.join("node");
    pod_cgroups(&root, UID, APP, SANDBOX);
    let k = FakeKube::start();
    let _exporters = example_exporters(&k, &dir, "127.0.3");
    // The application: a Deployment's pod in `shop` with requests and limits, whose cgroups
    // are the built node's.
    for obj in [
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"},
                           "status": {"phase": "Active"}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}},
            "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "shop", "uid": "uid-web-abc",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": "uid-web", "controller": true}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 1}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-abc-x1", "namespace": "shop", "uid": UID, "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                              "uid": "uid-web-abc", "controller": true}]},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx:1.25",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "200m", "memory": "256Mi"}}}]},
            "status": {"phase": "Running", "podIP": "127.0.3.30", "qosClass": "Burstable",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "web", "image": "docker.io/library/nginx:1.25",
                           "imageID": "", "containerID": format!("containerd://{APP}"), "ready": true,
                           "restartCount": 0, "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}}}]}}),
    ] {
        k.apply(obj);
    }
    let _cm = spawn(
        "container-metrics",
        &vigil_bin(),
        &[
            "container-metrics".into(),
            "--web.listen-address=127.0.3.10:8080".into(),
            format!("--path.sysfs={}", root.join("sys").display()),
            format!("--path.procfs={}", root.join("proc").display()),
            format!("--path.rootfs={}", root.display()),
            format!("--apiserver={}", k.url()),
            "--node-name=node-1".into(),
        ],
        &dir,
    );
    let kp = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/kube-prometheus")
        .canonicalize()
        .unwrap();
    // The shipped config, pointed at the fake API server, scraping and evaluating every second,
    // with the fixture's rule files in place of the chapter's, beside its Kubernetes recordings.
    let mut rule_files: Vec<String> = [
        "kubePrometheus.rules.yml",
        "kubeStateMetrics.rules.yml",
        "nodeExporter.rules.yml",
    ]
    .iter()
    .map(|f| kp.join(f).display().to_string())
    .collect();
    let ours = dir.join("kubernetes.rules.yml");
    rule_files.push(ours.display().to_string());
    let (cfg, shipped) = shipped_config(&k.url(), &rule_files);
    std::fs::write(&ours, shipped.kubernetes).unwrap();
    let cfg = cfg
        .replace("scrape_interval: 30s", "scrape_interval: 1s")
        .replace("evaluation_interval: 30s", "evaluation_interval: 1s");
    let v = Vigil::start("deploy-mixin-vigil", Some(&cfg), &[]);
    let b = v.base.clone();
    // Rates need two scrapes of each job; the recording rules one evaluation after that.
    wait_for("every job scraped twice", Duration::from_secs(60), || {
        let n = query(
            &b,
            r#"count by (job) (count_over_time(up{job=~"kubelet|kube-state-metrics|node-exporter"}[1m]) >= 3)"#,
        );
        // The pod's names come from the API through container-metrics' watch.
        let named = query(
            &b,
            r#"rate(container_cpu_usage_seconds_total{namespace="shop",container="web"}[1m])"#,
        );
        (n.len() == 3
            && !named.is_empty()
            && !query(&b, "instance:node_cpu_utilisation:rate5m").is_empty()
            && !query(
                &b,
                "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m",
            )
            .is_empty())
        .then_some(())
    });
    let rules = get_json(&format!("{b}/api/v1/rules"));
    let mut n = 0;
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            n += 1;
            assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
        }
    }
    // 12, 4 and 41 rules in the fixture's three files, 19 in the shipped one.
    assert_eq!(n, 76, "rules");
    // Recorded by the fixture's rules, or by kube-prometheus rules outside the sample.
    let recorded: Vec<String> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .filter(|r| r["type"] == "recording")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let fill = |q: &str| {
        q.replace("$namespace", "shop")
            .replace("$pod", "web-abc-x1")
            .replace("$cluster", "")
            .replace("$__rate_interval", "1m")
    };
    let mut with_data = 0;
    let mut outside = Vec::new();
    for file in ["k8s-resources-pod.json", "namespace-by-pod.json"] {
        let (exprs, vars) = dashboard_queries(&kp.join(file));
        assert!(exprs.len() >= 10, "{file}: {exprs:?}");
        for var in vars {
            // label_values(SELECTOR, label): the selector finds series, and those carry the
            // label, except `cluster`, which no series here has (one cluster, no external
            // label: the dashboards' `cluster="$cluster"` then matches series without it).
            let inner = var
                .trim_start_matches("label_values(")
                .trim_end_matches(')');
            let (selector, label) = inner.rsplit_once(',').unwrap_or((inner, ""));
            let found = query(&b, &fill(selector));
            assert!(!found.is_empty(), "{file}: variable {var} finds nothing");
            let label = label.trim();
            if label != "cluster" {
                assert!(
                    found.iter().any(|r| r["metric"][label].is_string()),
                    "{file}: variable {var} finds no {label}"
                );
            }
        }
        for e in exprs {
            let q = fill(&e);
            // Every query evaluates (query() fails the test on an error answer).
            let answer = query(&b, &q);
            let needs_outside_rule = q
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .any(|w| {
                    w.contains(':')
                        && w.chars().next().is_some_and(char::is_alphabetic)
                        && !recorded.iter().any(|r| r == w)
                });
            if needs_outside_rule {
                outside.push(q);
                continue;
            }
            assert!(!answer.is_empty(), "{file}: no data for {q}");
            with_data += 1;
        }
    }
    // The two dashboards' 52 panel queries, every one with data: the pod dashboard's CPU and
    // memory quota panels read the shipped `kubernetes.rules.yml`'s recordings.
    assert_eq!((with_data, outside.len()), (52, 0), "{outside:#?}");
    // The recordings hold what the pod's objects and cgroups say.
    let one = |q: &str| -> Value {
        let r = query(&b, q);
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0].clone()
    };
    let value = |v: &Value| v["value"][1].as_str().unwrap().parse::<f64>().unwrap();
    let pod = r#"namespace="shop", pod="web-abc-x1", container="web""#;
    for (q, want) in [
        (
            format!(
                "cluster:namespace:pod_cpu:active:kube_pod_container_resource_requests{{{pod}}}"
            ),
            0.1,
        ),
        (
            format!("cluster:namespace:pod_cpu:active:kube_pod_container_resource_limits{{{pod}}}"),
            0.2,
        ),
        (
            r#"namespace_memory:kube_pod_container_resource_requests:sum{namespace="shop"}"#.into(),
            64.0 * 1024.0 * 1024.0,
        ),
        (
            r#"namespace_memory:kube_pod_container_resource_limits:sum{namespace="shop"}"#.into(),
            256.0 * 1024.0 * 1024.0,
        ),
    ] {
        assert_eq!(value(&one(&q)), want, "{q}");
    }
    for name in [
        "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m",
        "node_namespace_pod_container:container_memory_working_set_bytes",
        "node_namespace_pod_container:container_memory_rss",
    ] {
        let r = one(&format!("{name}{{{pod}}}"));
        assert_eq!(r["metric"]["node"], "node-1", "{name}: {r}");
    }
    // The working set recorded is cAdvisor's for the container.
    let ws = one(&format!(
        "container_memory_working_set_bytes{{{pod}, job=\"kubelet\"}}"
    ));
    let rec = one(&format!(
        "node_namespace_pod_container:container_memory_working_set_bytes{{{pod}}}"
    ));
    assert_eq!(value(&rec), value(&ws));
    // The pod's workload is its ReplicaSet's Deployment.
    let w = one(r#"namespace_workload_pod:kube_pod_owner:relabel{pod="web-abc-x1"}"#);
    assert_eq!(
        (&w["metric"]["workload"], &w["metric"]["workload_type"]),
        (&Value::from("web"), &Value::from("deployment")),
        "{w}"
    );
}

/// The kubernetes-mixin's workload, resource and storage alerts read kube-state-metrics'
/// families through label joins the fixture's sample never exercises. Written here in the
/// shape of those alerts (the same families, labels and joins, not copied), over a cluster
/// whose objects are each in the state one alert is about, beside healthy ones: every alert
/// fires for exactly the objects at fault, so the families exist, carry the labels the joins
/// name, and hold the values the objects say.
#[test]
fn kubernetes_mixin_style_alerts_fire_for_the_objects_at_fault() {
    use vigil_kube_fake::FakeKube;
    let dir = temp_dir("deploy-mixin-alerts");
    let k = FakeKube::start();
    let _exporters = example_exporters(&k, &dir, "127.0.4");
    let owner = |kind: &str, name: &str| {
        serde_json::json!([{"apiVersion": "apps/v1", "kind": kind, "name": name,
                            "uid": format!("uid-{name}"), "controller": true}])
    };
    let pod = |name: &str, phase: &str, owner_ref: Value, cpu: &str, waiting: Option<&str>| {
        let state = match waiting {
            Some(r) => serde_json::json!({"waiting": {"reason": r}}),
            None => serde_json::json!({"running": {"startedAt": "2026-12-01T00:00:00Z"}}),
        };
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "apps", "uid": format!("uid-{name}"),
                         "ownerReferences": owner_ref},
            "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "app:1",
                     "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "main", "image": "app:1",
                "imageID": "", "ready": waiting.is_none(), "restartCount": 7, "state": state}]}})
    };
    let deployment = |name: &str,
                      generation: i64,
                      observed: i64,
                      available: i64,
                      progressing: &str| {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "apps", "uid": format!("uid-{name}"),
                         "generation": generation},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": []}}},
            "status": {"observedGeneration": observed, "replicas": 3, "updatedReplicas": available,
                       "readyReplicas": available, "availableReplicas": available,
                       "conditions": [{"type": "Progressing", "status": progressing},
                                      {"type": "Available", "status": "True"}]}})
    };
    for obj in [
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"},
                           "status": {"phase": "Active"}}),
        deployment("stuck", 5, 4, 1, "False"),
        deployment("fine", 2, 2, 3, "True"),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "stuck-1", "namespace": "apps", "uid": "uid-stuck-1",
                         "ownerReferences": owner("Deployment", "stuck")},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "stuck"}}},
            "status": {"replicas": 3}}),
        // A pod restarting without end, one that cannot be scheduled (it asks for more CPU
        // than the node has), and a healthy one; all the stuck Deployment's.
        pod(
            "stuck-1-crash",
            "Running",
            owner("ReplicaSet", "stuck-1"),
            "100m",
            Some("CrashLoopBackOff"),
        ),
        pod(
            "stuck-1-pending",
            "Pending",
            owner("ReplicaSet", "stuck-1"),
            "5",
            Some("ContainerCreating"),
        ),
        pod(
            "stuck-1-ok",
            "Running",
            owner("ReplicaSet", "stuck-1"),
            "100m",
            None,
        ),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "apps", "uid": "uid-db", "generation": 3},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": []}}},
            "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 1, "currentReplicas": 1,
                       "updatedReplicas": 2, "currentRevision": "db-1", "updateRevision": "db-2"}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "cache", "namespace": "apps", "uid": "uid-cache", "generation": 1},
            "spec": {"replicas": 2, "serviceName": "cache", "selector": {"matchLabels": {"app": "cache"}},
                     "template": {"metadata": {"labels": {"app": "cache"}}, "spec": {"containers": []}}},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "currentReplicas": 2,
                       "updatedReplicas": 2, "currentRevision": "cache-1", "updateRevision": "cache-1"}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "apps", "uid": "uid-agent", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": []}}},
            "status": {"observedGeneration": 2, "desiredNumberScheduled": 3, "currentNumberScheduled": 2,
                       "numberMisscheduled": 1, "numberReady": 2, "numberAvailable": 2,
                       "updatedNumberScheduled": 2}}),
        serde_json::json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "failed", "namespace": "apps", "uid": "uid-failed"},
            "spec": {"completions": 1, "parallelism": 1, "template": {"spec": {"containers": []}}},
            "status": {"failed": 2, "startTime": "2020-01-01T00:00:00Z",
                       "conditions": [{"type": "Failed", "status": "True"}]}}),
        serde_json::json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "endless", "namespace": "apps", "uid": "uid-endless"},
            "spec": {"completions": 1, "parallelism": 1, "template": {"spec": {"containers": []}}},
            "status": {"active": 1, "startTime": "2020-01-01T00:00:00Z"}}),
        serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "maxed", "namespace": "apps", "uid": "uid-maxed", "generation": 1},
            "spec": {"minReplicas": 1, "maxReplicas": 5,
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "fine"}},
            "status": {"currentReplicas": 5, "desiredReplicas": 5}}),
        serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "behind", "namespace": "apps", "uid": "uid-behind", "generation": 1},
            "spec": {"minReplicas": 1, "maxReplicas": 10,
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "stuck"}},
            "status": {"currentReplicas": 3, "desiredReplicas": 4}}),
        serde_json::json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": "apps", "uid": "uid-compute"},
            "spec": {"hard": {"pods": "10", "requests.memory": "1Gi"}},
            "status": {"hard": {"pods": "10", "requests.memory": "1Gi"},
                       "used": {"pods": "3", "requests.memory": "1000Mi"}}}),
        serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-broken", "uid": "uid-pv-broken"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/data/broken"}},
            "status": {"phase": "Failed"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-ok", "uid": "uid-pv-ok"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/data/ok"}},
            "status": {"phase": "Bound"}}),
    ] {
        k.apply(obj);
    }
    let alerts = r#"groups:
  - name: workloads
    rules:
      - alert: PodCrashLooping
        expr: max_over_time(kube_pod_container_status_waiting_reason{job="kube-state-metrics", reason="CrashLoopBackOff"}[5m]) >= 1
      - alert: PodNotReady
        expr: |
          sum by (namespace, pod) (
            max by (namespace, pod) (kube_pod_status_phase{job="kube-state-metrics", phase=~"Pending|Unknown|Failed"})
            * on (namespace, pod) group_left (owner_kind)
              topk by (namespace, pod) (1, max by (namespace, pod, owner_kind) (kube_pod_owner{owner_kind!="Job"}))
          ) > 0
      - alert: ContainerWaiting
        expr: sum by (namespace, pod, container) (kube_pod_container_status_waiting_reason{job="kube-state-metrics", reason!="CrashLoopBackOff"}) > 0
      - alert: DeploymentGenerationMismatch
        expr: kube_deployment_status_observed_generation{job="kube-state-metrics"} != kube_deployment_metadata_generation{job="kube-state-metrics"}
      - alert: DeploymentReplicasMismatch
        expr: kube_deployment_spec_replicas{job="kube-state-metrics"} > kube_deployment_status_replicas_available{job="kube-state-metrics"}
      - alert: DeploymentRolloutStuck
        expr: kube_deployment_status_condition{job="kube-state-metrics", condition="Progressing", status="false"} != 0
      - alert: StatefulSetReplicasMismatch
        expr: kube_statefulset_status_replicas_ready{job="kube-state-metrics"} != kube_statefulset_replicas{job="kube-state-metrics"}
      - alert: StatefulSetGenerationMismatch
        expr: kube_statefulset_status_observed_generation{job="kube-state-metrics"} != kube_statefulset_metadata_generation{job="kube-state-metrics"}
      - alert: StatefulSetUpdateNotRolledOut
        expr: |
          max without (revision) (
            kube_statefulset_status_current_revision{job="kube-state-metrics"}
            unless kube_statefulset_status_update_revision{job="kube-state-metrics"}
          )
          * (kube_statefulset_replicas{job="kube-state-metrics"} != kube_statefulset_status_replicas_updated{job="kube-state-metrics"})
      - alert: DaemonSetNotScheduled
        expr: kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"} - kube_daemonset_status_current_number_scheduled{job="kube-state-metrics"} > 0
      - alert: DaemonSetMisScheduled
        expr: kube_daemonset_status_number_misscheduled{job="kube-state-metrics"} > 0
      - alert: DaemonSetRolloutStuck
        expr: kube_daemonset_status_updated_number_scheduled{job="kube-state-metrics"} != kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics"}
      - alert: JobNotCompleted
        expr: time() - max by (namespace, job_name) (kube_job_status_start_time{job="kube-state-metrics"} and kube_job_status_active{job="kube-state-metrics"} > 0) > 43200
      - alert: JobFailed
        expr: kube_job_failed{job="kube-state-metrics"} > 0
      - alert: HpaReplicasMismatch
        expr: |
          (kube_horizontalpodautoscaler_status_desired_replicas{job="kube-state-metrics"} != kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"})
          and (kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"} > kube_horizontalpodautoscaler_spec_min_replicas{job="kube-state-metrics"})
          and (kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"} < kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics"})
      - alert: HpaMaxedOut
        expr: kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics"} == kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics"}
  - name: resources
    rules:
      - alert: CPUOvercommit
        expr: sum by (cluster) (namespace_cpu:kube_pod_container_resource_requests:sum) > sum by (cluster) (kube_node_status_allocatable{job="kube-state-metrics", resource="cpu"})
      - alert: QuotaAlmostFull
        expr: kube_resourcequota{job="kube-state-metrics", type="used"} / ignoring (instance, job, type) (kube_resourcequota{job="kube-state-metrics", type="hard"} > 0) > 0.9
  - name: storage
    rules:
      - alert: PersistentVolumeErrors
        expr: kube_persistentvolume_status_phase{job="kube-state-metrics", phase=~"Failed|Pending"} > 0
"#;
    let files = ["kubernetes.rules.yml", "alerts.yml"].map(|f| dir.join(f).display().to_string());
    let (cfg, shipped) = shipped_config(&k.url(), &files);
    std::fs::write(&files[0], shipped.kubernetes).unwrap();
    std::fs::write(&files[1], alerts).unwrap();
    let cfg = cfg
        .replace("scrape_interval: 30s", "scrape_interval: 1s")
        .replace("evaluation_interval: 30s", "evaluation_interval: 1s");
    let v = Vigil::start("deploy-mixin-alerts-vigil", Some(&cfg), &[]);
    let b = v.base.clone();
    // What each alert must name, as `label=value` pairs beside the alert's name.
    let want: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "PodCrashLooping",
            vec![("pod", "stuck-1-crash"), ("container", "main")],
        ),
        ("PodNotReady", vec![("pod", "stuck-1-pending")]),
        (
            "ContainerWaiting",
            vec![("pod", "stuck-1-pending"), ("container", "main")],
        ),
        (
            "DeploymentGenerationMismatch",
            vec![("deployment", "stuck")],
        ),
        ("DeploymentReplicasMismatch", vec![("deployment", "stuck")]),
        ("DeploymentRolloutStuck", vec![("deployment", "stuck")]),
        ("StatefulSetReplicasMismatch", vec![("statefulset", "db")]),
        ("StatefulSetGenerationMismatch", vec![("statefulset", "db")]),
        ("StatefulSetUpdateNotRolledOut", vec![("statefulset", "db")]),
        ("DaemonSetNotScheduled", vec![("daemonset", "agent")]),
        ("DaemonSetMisScheduled", vec![("daemonset", "agent")]),
        ("DaemonSetRolloutStuck", vec![("daemonset", "agent")]),
        ("JobNotCompleted", vec![("job_name", "endless")]),
        ("JobFailed", vec![("job_name", "failed")]),
        (
            "HpaReplicasMismatch",
            vec![("horizontalpodautoscaler", "behind")],
        ),
        ("HpaMaxedOut", vec![("horizontalpodautoscaler", "maxed")]),
        ("CPUOvercommit", vec![]),
        (
            "QuotaAlmostFull",
            vec![
                ("resourcequota", "compute"),
                ("resource", "requests.memory"),
            ],
        ),
        (
            "PersistentVolumeErrors",
            vec![("persistentvolume", "pv-broken"), ("phase", "Failed")],
        ),
    ];
    let firing = wait_for("every alert firing", Duration::from_secs(60), || {
        let a = get_json(&format!("{b}/api/v1/alerts"));
        let alerts = a["data"]["alerts"].as_array().cloned().unwrap_or_default();
        let named = |n: &str| alerts.iter().any(|x| x["labels"]["alertname"] == n);
        want.iter().all(|(n, _)| named(n)).then_some(alerts)
    });
    // No rule failed to evaluate.
    let rules = get_json(&format!("{b}/api/v1/rules"));
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
        }
    }
    for (name, labels) in &want {
        let of: Vec<&Value> = firing
            .iter()
            .filter(|x| x["labels"]["alertname"] == *name)
            .collect();
        // Exactly one object at fault per alert: the healthy ones stay silent.
        assert_eq!(of.len(), 1, "{name}: {of:#?}");
        for (l, v) in labels {
            assert_eq!(of[0]["labels"][*l], *v, "{name}: {}", of[0]);
        }
        if *name != "CPUOvercommit" && *name != "PersistentVolumeErrors" {
            assert_eq!(of[0]["labels"]["namespace"], "apps", "{name}: {}", of[0]);
        }
        assert_eq!(of[0]["state"], "firing", "{name}");
    }
    let names: std::collections::BTreeSet<&str> = firing
        .iter()
        .filter_map(|x| x["labels"]["alertname"].as_str())
        .collect();
    assert_eq!(names.len(), want.len(), "{names:?}");
}
