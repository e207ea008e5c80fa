//! Kubernetes discovery against the fake API server (real list/watch protocol, object JSON as a
//! cluster stores it), seeded from the chapter 14 manifests: every role's groups and labels,
//! scaling and deletion followed through the watch, resumption and relisting after `410`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use vigil_config::{Config, KubernetesSdConfig};
use vigil_discovery::TargetGroup;
use vigil_discovery::kubernetes;
use vigil_kube_fake::manifests::{chapter14, node, parse_docs, pod};
use vigil_kube_fake::{FakeKube, Res};
use vigil_model::Labels;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kiamol-ch14"
);

fn docs(rel: &str) -> Vec<Value> {
    parse_docs(&std::fs::read_to_string(format!("{FIXTURES}/{rel}")).unwrap())
}

/// The chapter 14 apps of phase A as a cluster holds them; pods by Deployment name.
fn seed(k: &FakeKube) -> BTreeMap<String, Value> {
    chapter14(k, Path::new(FIXTURES), "10.244.0")
        .into_iter()
        .map(|(name, (_, pod))| (name, pod))
        .collect()
}

fn sd(k: &FakeKube, role: &str, extra: &str) -> KubernetesSdConfig {
    let y = format!(
        "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: {role}\n        api_server: {}\n{extra}",
        k.url()
    );
    let c = Config::parse(&y, Path::new("/")).expect("config");
    c.scrape_configs[0].kubernetes_sd_configs[0].clone()
}

/// Runs discovery and hands out its updates.
struct Discovery {
    rx: mpsc::Receiver<Vec<TargetGroup>>,
    last: Vec<TargetGroup>,
    _task: tokio::task::JoinHandle<()>,
}

impl Discovery {
    fn start(cfg: KubernetesSdConfig) -> Discovery {
        let (tx, rx) = mpsc::channel(16);
        Discovery {
            rx,
            last: Vec::new(),
            _task: tokio::spawn(kubernetes::run(
                cfg,
                tx,
                vigil_discovery::health::Reporter::detached(),
            )),
        }
    }

    /// Wait (up to 20s) for an update satisfying `f`.
    async fn until(&mut self, what: &str, f: impl Fn(&[TargetGroup]) -> bool) -> Vec<TargetGroup> {
        if f(&self.last) {
            return self.last.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(g)) => {
                    self.last = g;
                    if f(&self.last) {
                        return self.last.clone();
                    }
                }
                _ => panic!("timed out waiting for {what}; last: {:#?}", self.last),
            }
        }
    }
}

fn by_source<'a>(groups: &'a [TargetGroup], prefix: &str) -> Vec<&'a TargetGroup> {
    groups
        .iter()
        .filter(|g| g.source.starts_with(prefix))
        .collect()
}

/// A target's labels merged with its group's, as the scrape side sees them.
fn merged(g: &TargetGroup, t: &Labels) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = g
        .labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    for l in t.iter() {
        m.insert(l.name.to_string(), l.value.to_string());
    }
    m
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_role_labels_scaling_deletion_and_relisting() {
    let k = FakeKube::start();
    k.set_watch_cap(Duration::from_secs(2));
    let pods = seed(&k);
    let mut d = Discovery::start(sd(&k, "pod", ""));
    // Every object decodes as the API types (as a real cluster's would).
    for (n, p) in &pods {
        if let Err(e) = serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(p.clone()) {
            panic!("pod of {n} does not decode: {e}");
        }
    }
    let groups = d
        .until("every pod", |g| by_source(g, "pod/").len() == pods.len())
        .await;

    // numbers-api, label for label (docs/kubernetes-sd.md §2).
    let p = &pods["numbers-api"];
    let name = p["metadata"]["name"].as_str().unwrap();
    let g = groups
        .iter()
        .find(|g| g.source == format!("pod/kiamol-ch14-test/{name}"))
        .expect("numbers-api group");
    assert_eq!(g.targets.len(), 2, "one target per container port");
    let rs = p["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap();
    let hash = p["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let exporter_id = p["status"]["containerStatuses"][1]["containerID"]
        .as_str()
        .unwrap();
    let mut want = map(&[
        ("__address__", "10.244.0.17:9115"),
        ("__meta_kubernetes_namespace", "kiamol-ch14-test"),
        ("__meta_kubernetes_pod_name", name),
        ("__meta_kubernetes_pod_ip", "10.244.0.17"),
        ("__meta_kubernetes_pod_ipv4", "10.244.0.17"),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_node_name", "node-1"),
        ("__meta_kubernetes_pod_host_ip", "192.168.49.2"),
        ("__meta_kubernetes_pod_uid", uid),
        ("__meta_kubernetes_pod_controller_kind", "ReplicaSet"),
        ("__meta_kubernetes_pod_controller_name", rs),
        ("__meta_kubernetes_pod_label_app", "numbers-api"),
        ("__meta_kubernetes_pod_labelpresent_app", "true"),
        ("__meta_kubernetes_pod_label_pod_template_hash", hash),
        (
            "__meta_kubernetes_pod_labelpresent_pod_template_hash",
            "true",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_port",
            "9115",
        ),
        (
            "__meta_kubernetes_pod_annotationpresent_prometheus_io_port",
            "true",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_path",
            "/probe",
        ),
        (
            "__meta_kubernetes_pod_annotationpresent_prometheus_io_path",
            "true",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_target",
            "http://127.0.0.1/healthz",
        ),
        (
            "__meta_kubernetes_pod_annotationpresent_prometheus_io_target",
            "true",
        ),
        ("__meta_kubernetes_pod_container_name", "exporter"),
        ("__meta_kubernetes_pod_container_id", exporter_id),
        (
            "__meta_kubernetes_pod_container_image",
            "prom/blackbox-exporter:v0.17.0",
        ),
        ("__meta_kubernetes_pod_container_init", "false"),
        ("__meta_kubernetes_pod_container_port_name", "metrics"),
        ("__meta_kubernetes_pod_container_port_number", "9115"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ]);
    let exporter = g
        .targets
        .iter()
        .map(|t| merged(g, t))
        .find(|m| m["__meta_kubernetes_pod_container_name"] == "exporter")
        .expect("exporter target");
    assert_eq!(exporter, want);
    // The other container's target differs only in its container fields.
    let api = g
        .targets
        .iter()
        .map(|t| merged(g, t))
        .find(|m| m["__meta_kubernetes_pod_container_name"] == "api")
        .unwrap();
    want.insert("__address__".into(), "10.244.0.17:80".into());
    for (k2, v) in [
        ("container_name", "api"),
        ("container_image", "kiamol/ch03-numbers-api"),
        ("container_port_name", "api"),
        ("container_port_number", "80"),
        (
            "container_id",
            p["status"]["containerStatuses"][0]["containerID"]
                .as_str()
                .unwrap(),
        ),
    ] {
        want.insert(format!("__meta_kubernetes_pod_{k2}"), v.into());
    }
    assert_eq!(api, want);

    // A container without ports (todo-web) gives one port-less target.
    let web = &pods["todo-web"];
    let g = groups
        .iter()
        .find(|g| {
            g.source
                .ends_with(web["metadata"]["name"].as_str().unwrap())
        })
        .unwrap();
    assert_eq!(g.targets.len(), 1);
    assert_eq!(
        g.targets[0].get("__address__"),
        web["status"]["podIP"].as_str()
    );
    assert!(!g.targets[0].has("__meta_kubernetes_pod_container_port_number"));

    // Scaling timecheck to two replicas: the new pod appears through the watch.
    let tc = docs("timecheck/timecheck.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let second = k.apply(pod(&tc, 1, "10.244.0.99", "node-1", "192.168.49.2"));
    let second_name = second["metadata"]["name"].as_str().unwrap().to_string();
    let groups = d
        .until("the new replica", |g| {
            g.iter()
                .any(|x| x.source.ends_with(&second_name) && !x.targets.is_empty())
        })
        .await;
    assert_eq!(by_source(&groups, "pod/").len(), pods.len() + 1);

    // A pod losing its IP (evicted) keeps no targets; deletion removes its group.
    let mut evicted = second.clone();
    evicted["status"] = json!({"phase": "Failed", "reason": "Evicted"});
    k.apply(evicted);
    d.until("evicted pod without targets", |g| {
        !g.iter()
            .any(|x| x.source.ends_with(&second_name) && !x.targets.is_empty())
    })
    .await;
    k.delete(Res::Pods, &format!("kiamol-ch14-test/{second_name}"));
    let tc_name = pods["timecheck"]["metadata"]["name"].as_str().unwrap();
    k.delete(Res::Pods, &format!("kiamol-ch14-test/{tc_name}"));
    let groups = d
        .until("the deleted pods gone", |g| {
            !g.iter().any(|x| x.source.ends_with(tc_name))
        })
        .await;
    assert_eq!(by_source(&groups, "pod/").len(), pods.len() - 1);

    // Watches end every 2s here and are resumed; after a compaction the resumed watch gets
    // 410 Expired inside the stream and the watcher relists. Changes made meanwhile arrive.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Another kind's change moves the cluster's version past the pod watch's, then compaction.
    k.apply(node("node-2", "192.168.49.3"));
    k.compact();
    let back = k.apply(pod(&tc, 2, "10.244.0.100", "node-1", "192.168.49.2"));
    let back_name = back["metadata"]["name"].as_str().unwrap().to_string();
    d.until("a pod added around a compaction", |g| {
        g.iter().any(|x| x.source.ends_with(&back_name))
    })
    .await;
    let reqs = k.requests();
    assert!(
        reqs.iter().filter(|r| *r == "list pods").count() >= 2,
        "relisted after 410: {reqs:?}"
    );
    assert!(reqs.iter().filter(|r| *r == "watch pods").count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_and_namespaces_are_sent_to_the_server() {
    let k = FakeKube::start();
    let pods = seed(&k);
    let extra = "        namespaces:\n          names: [kiamol-ch14-test]\n        selectors:\n          - role: pod\n            label: app in (apod-api, apod-web)\n            field: spec.nodeName=node-1\n";
    let mut d = Discovery::start(sd(&k, "pod", extra));
    let groups = d
        .until("the selected pods", |g| by_source(g, "pod/").len() == 2)
        .await;
    for name in ["apod-api", "apod-web"] {
        let n = pods[name]["metadata"]["name"].as_str().unwrap();
        assert!(groups.iter().any(|g| g.source.ends_with(n)), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_endpointslice_node_and_ingress_roles() {
    let k = FakeKube::start();
    let pods = seed(&k);
    let api = &pods["numbers-api"];
    let api_pod = api["metadata"]["name"].as_str().unwrap();

    // service: one target per port, the DNS name and the service port.
    let mut d = Discovery::start(sd(&k, "service", ""));
    let g = d
        .until("numbers-api service", |g| {
            g.iter()
                .any(|x| x.source == "svc/kiamol-ch14-test/numbers-api")
        })
        .await;
    let g = g
        .iter()
        .find(|x| x.source == "svc/kiamol-ch14-test/numbers-api")
        .unwrap();
    let t = merged(g, &g.targets[0]);
    assert_eq!(t["__address__"], "numbers-api.kiamol-ch14-test.svc:8016");
    assert_eq!(t["__meta_kubernetes_service_type"], "LoadBalancer");
    let stored = k
        .get(Res::Services, "kiamol-ch14-test/numbers-api")
        .unwrap();
    assert_eq!(
        t["__meta_kubernetes_service_cluster_ip"],
        stored["spec"]["clusterIP"].as_str().unwrap()
    );
    assert_eq!(t["__meta_kubernetes_service_port_number"], "8016");
    assert_eq!(t["__meta_kubernetes_service_port_protocol"], "TCP");
    // Empty label values are absent in vigil's label sets (identical for relabeling).
    assert!(!t.contains_key("__meta_kubernetes_service_loadbalancer_ip"));

    // endpoints: the endpoint joined with its pod and container port, the pod's other port as
    // an extra target, service labels on the group.
    let mut d = Discovery::start(sd(&k, "endpoints", ""));
    let g = d
        .until("numbers-api endpoints joined", |g| {
            g.iter().any(|x| {
                x.source == "endpoints/kiamol-ch14-test/numbers-api" && x.targets.len() == 2
            })
        })
        .await;
    let g = g
        .iter()
        .find(|x| x.source == "endpoints/kiamol-ch14-test/numbers-api")
        .unwrap();
    let ts: Vec<_> = g.targets.iter().map(|t| merged(g, t)).collect();
    let ep = ts
        .iter()
        .find(|t| t["__address__"] == "10.244.0.17:80")
        .expect("endpoint target");
    assert_eq!(ep["__meta_kubernetes_endpoint_ready"], "true");
    assert!(!ep.contains_key("__meta_kubernetes_endpoint_port_name"));
    assert_eq!(ep["__meta_kubernetes_endpoint_address_target_kind"], "Pod");
    assert_eq!(
        ep["__meta_kubernetes_endpoint_address_target_name"],
        api_pod
    );
    assert_eq!(ep["__meta_kubernetes_endpoint_node_name"], "node-1");
    assert_eq!(ep["__meta_kubernetes_pod_container_name"], "api");
    assert_eq!(ep["__meta_kubernetes_pod_container_port_name"], "api");
    assert_eq!(ep["__meta_kubernetes_service_name"], "numbers-api");
    assert_eq!(ep["__meta_kubernetes_endpoints_name"], "numbers-api");
    assert_eq!(ep["__meta_kubernetes_pod_name"], api_pod);
    let extra = ts
        .iter()
        .find(|t| t["__address__"] == "10.244.0.17:9115")
        .expect("extra target for the unlisted exporter port");
    assert_eq!(extra["__meta_kubernetes_pod_container_name"], "exporter");
    assert!(!extra.contains_key("__meta_kubernetes_endpoint_ready"));

    // endpointslice: the same endpoint in slice vocabulary.
    let mut d = Discovery::start(sd(&k, "endpointslice", ""));
    let g = d
        .until("numbers-api slice", |g| {
            g.iter().any(|x| {
                x.source
                    .starts_with("endpointslice/kiamol-ch14-test/numbers-api")
                    && x.targets.len() == 2
            })
        })
        .await;
    let g = g
        .iter()
        .find(|x| {
            x.source
                .starts_with("endpointslice/kiamol-ch14-test/numbers-api")
        })
        .unwrap();
    let t = g
        .targets
        .iter()
        .map(|t| merged(g, t))
        .find(|t| t["__address__"] == "10.244.0.17:80")
        .unwrap();
    assert_eq!(t["__meta_kubernetes_endpointslice_address_type"], "IPv4");
    assert_eq!(t["__meta_kubernetes_endpointslice_port"], "80");
    assert_eq!(
        t["__meta_kubernetes_endpointslice_endpoint_conditions_ready"],
        "true"
    );
    assert_eq!(
        t["__meta_kubernetes_endpointslice_address_target_name"],
        api_pod
    );
    assert_eq!(t["__meta_kubernetes_service_name"], "numbers-api");
    assert_eq!(t["__meta_kubernetes_pod_container_name"], "api");

    // node: the kubelet on the internal IP, instance = node name.
    let mut d = Discovery::start(sd(&k, "node", ""));
    let g = d
        .until("node-1", |g| g.iter().any(|x| x.source == "node/node-1"))
        .await;
    let t = merged(&g[0], &g[0].targets[0]);
    assert_eq!(t["__address__"], "192.168.49.2:10250");
    assert_eq!(t["instance"], "node-1");
    assert_eq!(
        t["__meta_kubernetes_node_address_InternalIP"],
        "192.168.49.2"
    );
    assert_eq!(t["__meta_kubernetes_node_address_Hostname"], "node-1");
    assert_eq!(t["__meta_kubernetes_node_provider_id"], "fake://node-1");
    assert_eq!(
        t["__meta_kubernetes_node_label_kubernetes_io_hostname"],
        "node-1"
    );

    // ingress: one target per rule path, https where TLS covers the host (wildcards too).
    k.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "kiamol-ch14-test"},
        "spec": {"ingressClassName": "nginx",
                 "tls": [{"hosts": ["*.example.com"]}],
                 "rules": [{"host": "todo.example.com", "http": {"paths": [
                              {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "todo-web", "port": {"number": 80}}}},
                              {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "todo-web", "port": {"number": 80}}}}]}},
                           {"host": "apod.local"}]}
    }));
    let mut d = Discovery::start(sd(&k, "ingress", ""));
    let g = d
        .until("ingress", |g| g.iter().any(|x| x.targets.len() == 3))
        .await;
    let ts: Vec<_> = g[0].targets.iter().map(|t| merged(&g[0], t)).collect();
    let api_path = ts
        .iter()
        .find(|t| t["__meta_kubernetes_ingress_path"] == "/api")
        .unwrap();
    assert_eq!(api_path["__address__"], "todo.example.com");
    assert_eq!(api_path["__meta_kubernetes_ingress_scheme"], "https");
    assert_eq!(api_path["__meta_kubernetes_ingress_class_name"], "nginx");
    let plain = ts
        .iter()
        .find(|t| t["__address__"] == "apod.local")
        .unwrap();
    assert_eq!(plain["__meta_kubernetes_ingress_path"], "/");
    assert_eq!(plain["__meta_kubernetes_ingress_scheme"], "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_kubeconfig_and_node_metadata() {
    let k = FakeKube::start();
    let pods = seed(&k);
    k.require_bearer("s3cret");
    let dir = std::env::temp_dir().join(format!("vigil-k8s-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Without credentials the API answers 401: nothing is discovered, and nothing breaks.
    let mut d = Discovery::start(sd(&k, "node", ""));
    assert!(
        tokio::time::timeout(Duration::from_secs(2), d.rx.recv())
            .await
            .is_err(),
        "no groups without credentials"
    );

    // authorization.credentials_file (a rotated service-account token would be re-read).
    let token = dir.join("token");
    std::fs::write(&token, "s3cret").unwrap();
    let extra = format!(
        "        authorization:\n          credentials_file: {}\n        attach_metadata:\n          node: true\n",
        token.display()
    );
    let mut d = Discovery::start(sd(&k, "pod", &extra));
    let groups = d
        .until("pods with a token", |g| {
            by_source(g, "pod/").len() == pods.len()
        })
        .await;
    // attach_metadata.node: the pod's node labels on its group.
    assert!(groups.iter().all(|g| {
        g.labels.get("__meta_kubernetes_node_name") == Some("node-1")
            && g.labels
                .get("__meta_kubernetes_node_label_kubernetes_io_hostname")
                == Some("node-1")
    }));

    // kubeconfig_file, as kubectl writes it.
    let kc = dir.join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\ncurrent-context: fake\nusers:\n- name: u\n  user:\n    token: s3cret\n",
            k.url()
        ),
    )
    .unwrap();
    let y = format!(
        "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - role: node\n        kubeconfig_file: {}\n",
        kc.display()
    );
    let c = Config::parse(&y, Path::new("/")).expect("config");
    let mut d = Discovery::start(c.scrape_configs[0].kubernetes_sd_configs[0].clone());
    d.until("nodes through a kubeconfig", |g| {
        g.iter().any(|x| x.source == "node/node-1")
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `attach_metadata: {namespace: true}` (Prometheus 3.6): every group of the pod, service,
/// endpoints, endpointslice and ingress roles carries its namespace's labels and annotations,
/// sanitized, with their `present` twins; a change to the namespace is followed (a removed
/// label goes); without the option there are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_metadata_is_attached_and_followed() {
    let k = FakeKube::start();
    let pods = seed(&k);
    let ns = pods.values().next().unwrap()["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let namespace = |labels: Value| {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": ns, "labels": labels,
                            "annotations": {"team.example.com/owner": "web"}}})
    };
    k.apply(namespace(
        json!({"kubernetes.io/metadata.name": ns, "env": "prod"}),
    ));
    k.apply(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "web", "namespace": ns},
                   "spec": {"rules": [{"host": "web.example"}]}}),
    );
    let extra = "        attach_metadata:\n          namespace: true\n";
    let label = |g: &TargetGroup, name: &str| g.labels.get(name).map(str::to_string);
    for role in ["pod", "service", "endpoints", "endpointslice", "ingress"] {
        let mut d = Discovery::start(sd(&k, role, extra));
        let groups = d
            .until(&format!("{role} groups"), |g| {
                g.iter()
                    .any(|x| x.labels.get("__meta_kubernetes_namespace") == Some(&ns))
            })
            .await;
        for g in groups
            .iter()
            .filter(|g| g.labels.get("__meta_kubernetes_namespace") == Some(&ns))
        {
            assert_eq!(
                label(g, "__meta_kubernetes_namespace_label_env").as_deref(),
                Some("prod"),
                "{role}: {g:?}"
            );
            assert_eq!(
                label(
                    g,
                    "__meta_kubernetes_namespace_labelpresent_kubernetes_io_metadata_name"
                )
                .as_deref(),
                Some("true")
            );
            assert_eq!(
                label(
                    g,
                    "__meta_kubernetes_namespace_annotation_team_example_com_owner"
                )
                .as_deref(),
                Some("web")
            );
            assert_eq!(
                label(
                    g,
                    "__meta_kubernetes_namespace_annotationpresent_team_example_com_owner"
                )
                .as_deref(),
                Some("true")
            );
            assert!(label(g, "__meta_kubernetes_namespace_name").is_none());
        }
        if role == "pod" {
            // The namespace relabelled: groups follow, the removed label goes.
            k.apply(namespace(json!({"env": "staging"})));
            d.until("the new namespace labels", |g| {
                let mine: Vec<_> = g
                    .iter()
                    .filter(|x| x.labels.get("__meta_kubernetes_namespace") == Some(&ns))
                    .collect();
                !mine.is_empty()
                    && mine.iter().all(|x| {
                        x.labels.get("__meta_kubernetes_namespace_label_env") == Some("staging")
                            && x.labels
                                .get(
                                    "__meta_kubernetes_namespace_label_kubernetes_io_metadata_name",
                                )
                                .is_none()
                    })
            })
            .await;
            k.apply(namespace(
                json!({"kubernetes.io/metadata.name": ns, "env": "prod"}),
            ));
        }
    }
    // Without the option: none.
    let mut d = Discovery::start(sd(&k, "pod", ""));
    let groups = d.until("pods", |g| !g.is_empty()).await;
    assert!(groups.iter().all(|g| {
        !g.labels
            .iter()
            .any(|l| l.name.starts_with("__meta_kubernetes_namespace_"))
    }));
}

/// `attach_metadata` `deployment`, `job` and `cronjob` (Prometheus 3.11): a pod's group names
/// the Deployment above its ReplicaSet and the Job and CronJob above it; a label appears once
/// the object it is read through is listed and goes when that object loses its owner; the
/// endpoints roles carry them on targets joined to the pod; without the options there are none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_names_are_attached_through_replicasets_and_jobs() {
    let k = FakeKube::start();
    let pods = seed(&k);
    let (dname, dpod) = pods.iter().next().unwrap();
    let ns = dpod["metadata"]["namespace"].as_str().unwrap().to_string();
    let pod_name = dpod["metadata"]["name"].as_str().unwrap().to_string();
    let rs_name = dpod["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let owned = |kind: &str, name: &str, owner: Option<(&str, &str)>| {
        let (api, group_api) = match kind {
            "ReplicaSet" => ("apps/v1", "apps/v1"),
            _ => ("batch/v1", "batch/v1"),
        };
        let refs: Vec<Value> = owner
            .into_iter()
            .map(|(k, n)| {
                json!({"apiVersion": group_api, "kind": k, "name": n,
                                 "uid": format!("uid-{n}"), "controller": true})
            })
            .collect();
        json!({"apiVersion": api, "kind": kind,
               "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                            "ownerReferences": refs}})
    };
    // A pod of a Job that a CronJob made, and one of a Job made by hand.
    let job_pod = |name: &str, job: &str, ip: &str| {
        let mut p = dpod.clone();
        p["metadata"]["name"] = json!(name);
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job",
            "name": job, "uid": format!("uid-{job}"), "controller": true}]);
        p["status"]["podIP"] = json!(ip);
        p["status"]["podIPs"] = json!([{"ip": ip}]);
        p
    };
    k.apply(job_pod(
        "report-29000000-x1",
        "report-29000000",
        "10.244.9.1",
    ));
    k.apply(job_pod("manual-y2", "manual", "10.244.9.2"));
    // A pod of a custom resource that is also called a Job (Volcano's): not a batch Job.
    let mut volcano = job_pod("volcano-z3", "manual", "10.244.9.3");
    volcano["metadata"]["ownerReferences"][0]["apiVersion"] = json!("batch.volcano.sh/v1alpha1");
    volcano["metadata"]["ownerReferences"][0]["uid"] = json!("uid-volcano");
    k.apply(volcano);
    k.apply(owned("Job", "report-29000000", Some(("CronJob", "report"))));
    k.apply(owned("Job", "manual", None));

    let extra = "        attach_metadata:\n          deployment: true\n          job: true\n          cronjob: true\n";
    let label = |g: &TargetGroup, n: &str| g.labels.get(n).map(str::to_string);
    let group = |gs: &[TargetGroup], pod: &str| -> Option<TargetGroup> {
        gs.iter()
            .find(|g| g.source == format!("pod/{ns}/{pod}"))
            .cloned()
    };
    let mut d = Discovery::start(sd(&k, "pod", extra));
    let gs = d
        .until("the job pods' names", |gs| {
            group(gs, "report-29000000-x1").is_some()
                && group(gs, "manual-y2").is_some()
                && group(gs, "volcano-z3").is_some()
        })
        .await;
    let volcano = group(&gs, "volcano-z3").unwrap();
    for n in ["job", "cronjob"] {
        assert_eq!(
            label(&volcano, &format!("__meta_kubernetes_pod_{n}_name")),
            None
        );
    }
    let report = group(&gs, "report-29000000-x1").unwrap();
    assert_eq!(
        label(&report, "__meta_kubernetes_pod_job_name").as_deref(),
        Some("report-29000000")
    );
    assert_eq!(
        label(&report, "__meta_kubernetes_pod_cronjob_name").as_deref(),
        Some("report")
    );
    let manual = group(&gs, "manual-y2").unwrap();
    assert_eq!(
        label(&manual, "__meta_kubernetes_pod_job_name").as_deref(),
        Some("manual")
    );
    assert_eq!(label(&manual, "__meta_kubernetes_pod_cronjob_name"), None);
    // The Deployment's pod: its ReplicaSet is not listed yet, so no name.
    let dep = group(&gs, &pod_name).unwrap();
    assert_eq!(label(&dep, "__meta_kubernetes_pod_deployment_name"), None);
    assert_eq!(label(&dep, "__meta_kubernetes_pod_job_name"), None);
    // The ReplicaSet appears: the pod's group follows.
    k.apply(owned("ReplicaSet", &rs_name, Some(("Deployment", dname))));
    d.until("the deployment name", |gs| {
        group(gs, &pod_name).is_some_and(|g| {
            label(&g, "__meta_kubernetes_pod_deployment_name").as_deref() == Some(dname.as_str())
        })
    })
    .await;
    // The ReplicaSet deleted and made again under its name: another object (another UID), not
    // the pod's owner, so the name goes until the pod is adopted.
    let mut again = owned("ReplicaSet", &rs_name, Some(("Deployment", dname)));
    again["metadata"]["uid"] = json!("uid-another");
    k.apply(again);
    d.until(
        "the deployment name gone with the replaced ReplicaSet",
        |gs| {
            group(gs, &pod_name)
                .is_some_and(|g| label(&g, "__meta_kubernetes_pod_deployment_name").is_none())
        },
    )
    .await;
    k.apply(owned("ReplicaSet", &rs_name, Some(("Deployment", dname))));
    // The Job orphaned (its CronJob deleted with orphan propagation): the name goes.
    k.apply(owned("Job", "report-29000000", None));
    d.until("the cronjob name gone", |gs| {
        group(gs, "report-29000000-x1").is_some_and(|g| {
            label(&g, "__meta_kubernetes_pod_cronjob_name").is_none()
                && label(&g, "__meta_kubernetes_pod_job_name").as_deref() == Some("report-29000000")
        })
    })
    .await;

    // The endpoints roles: targets joined to the Deployment's pod carry its name.
    for role in ["endpoints", "endpointslice"] {
        let mut d = Discovery::start(sd(&k, role, extra));
        d.until(
            &format!("{role} targets of the pod with its deployment"),
            |gs| {
                gs.iter().any(|g| {
                    g.targets.iter().any(|t| {
                        let m = merged(g, t);
                        m.get("__meta_kubernetes_pod_name") == Some(&pod_name)
                            && m.get("__meta_kubernetes_pod_deployment_name") == Some(dname)
                    })
                })
            },
        )
        .await;
    }

    // Without the options: none, whatever the cluster holds.
    let mut d = Discovery::start(sd(&k, "pod", ""));
    let gs = d
        .until("all pods", |gs| group(gs, "manual-y2").is_some())
        .await;
    for g in &gs {
        for n in ["deployment", "job", "cronjob"] {
            assert_eq!(
                label(g, &format!("__meta_kubernetes_pod_{n}_name")),
                None,
                "{g:?}"
            );
        }
    }
}

/// More pods than one page: the list comes in pages (`limit` and `continue`, as the API server
/// pages it and kube's watcher asks for 500 at a time), and every pod is discovered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_longer_than_a_page_is_read_whole() {
    let k = FakeKube::start();
    let n = 1_234;
    for i in 0..n {
        k.apply(json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": format!("p{i:04}"), "namespace": "big"},
                       "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
                       "status": {"phase": "Running", "podIP": format!("10.1.{}.{}", i / 250, i % 250)}}));
    }
    let mut d = Discovery::start(sd(&k, "pod", ""));
    let groups = d
        .until("every pod", |g| by_source(g, "pod/big/").len() == n)
        .await;
    let mut sources: Vec<&str> = groups.iter().map(|g| g.source.as_str()).collect();
    sources.dedup();
    assert_eq!(sources.len(), n);
    let lists = k.requests().iter().filter(|r| *r == "list pods").count();
    assert_eq!(lists, 3, "{:?}", k.requests());
}

/// A watch the API server refuses (RBAC without `pods`) is reported to the discovery health the
/// target pages read, naming the resource and the refusal, and the report clears once the
/// role is granted and the watch works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_watch_is_reported_until_it_works() {
    use std::sync::Arc;
    use vigil_discovery::health::{Health, Reporter};
    let k = FakeKube::start();
    k.forbid(Res::Pods);
    let health = Arc::new(Health::default());
    let (tx, mut rx) = mpsc::channel(16);
    let reporter = Reporter::new(
        health.clone(),
        "pods",
        "kubernetes_sd_configs[0] (role pod)".into(),
        0,
    );
    let task = tokio::spawn(kubernetes::run(sd(&k, "pod", ""), tx, reporter));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let problem = loop {
        if let Some(p) = health.problems().into_iter().next() {
            break p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no problem reported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(problem.job, "pods");
    assert_eq!(problem.provider, "kubernetes_sd_configs[0] (role pod)");
    assert_eq!(problem.part, "/api/v1/pods");
    assert!(
        problem.error.contains("403") || problem.error.contains("orbidden"),
        "{problem:?}"
    );
    k.permit(Res::Pods);
    k.apply(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "u-p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {"podIP": "10.0.0.1"}}));
    // The watcher retries with backoff; once it lists, the report goes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !health.problems().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still reported: {:?}",
            health.problems()
        );
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    task.abort();
}
