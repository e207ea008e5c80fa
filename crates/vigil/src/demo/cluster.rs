//! The demo's simulated cluster: the fake Kubernetes API server the tests use, holding the
//! chapter's namespaces, Deployments and pods (one node, pod IPs on loopback addresses
//! `127.14.0.N`), and a controller that keeps each Deployment's pods running: when a
//! Deployment's replicas change (`vigil demo scale`, through the API's `scale` subresource),
//! pods are started or stopped, and discovery sees them come and go.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use vigil_kube_fake::{FakeKube, Res, manifests};

use super::apps::{self, Pod, Shared, Workload};

/// The namespace of the chapter's apps (its `prometheus.yml` keeps only this one).
pub const APPS_NS: &str = "kiamol-ch14-test";
const NODE: &str = "simulated-node";
const NODE_IP: &str = "127.14.0.1";

/// One Deployment of the demo.
struct Spec {
    name: &'static str,
    namespace: &'static str,
    workload: Workload,
    /// Container name and ports (name, number).
    containers: &'static [(&'static str, &'static [(&'static str, u16)])],
    /// The pod template's annotations (`{ip}` stands for the pod's IP).
    annotations: &'static [(&'static str, &'static str)],
}

const SPECS: &[Spec] = &[
    Spec {
        name: "timecheck",
        namespace: APPS_NS,
        workload: Workload::Timecheck,
        containers: &[("timecheck", &[("metrics", 8080)])],
        annotations: &[],
    },
    Spec {
        name: "todo-web",
        namespace: APPS_NS,
        workload: Workload::TodoWeb,
        containers: &[("web", &[("http", 8080)])],
        annotations: &[],
    },
    Spec {
        name: "todo-proxy",
        namespace: APPS_NS,
        workload: Workload::TodoProxy,
        containers: &[
            ("nginx", &[("http", 8080)]),
            ("exporter", &[("metrics", 9113)]),
        ],
        annotations: &[("prometheus.io/port", "9113")],
    },
    Spec {
        name: "todo-db",
        namespace: APPS_NS,
        workload: Workload::TodoDb,
        containers: &[
            ("db", &[("postgres", 5432)]),
            ("exporter", &[("metrics", 9187)]),
        ],
        annotations: &[("prometheus.io/port", "9187")],
    },
    Spec {
        name: "numbers-api",
        namespace: APPS_NS,
        workload: Workload::NumbersApi,
        containers: &[
            ("api", &[("api", 8080)]),
            ("exporter", &[("metrics", 9115)]),
        ],
        // The blackbox sidecar probes the API's health endpoint in its own pod.
        annotations: &[
            ("prometheus.io/port", "9115"),
            ("prometheus.io/path", "/probe"),
            ("prometheus.io/target", "http://{ip}:8080/healthz"),
        ],
    },
    Spec {
        name: "loadgen",
        namespace: APPS_NS,
        workload: Workload::LoadGen,
        containers: &[("loadgen", &[])],
        // It has no metrics: the annotation keeps it out of the targets (see
        // /service-discovery, "dropped").
        annotations: &[("prometheus.io/scrape", "false")],
    },
    Spec {
        name: "cadvisor",
        namespace: "kube-system",
        workload: Workload::Cadvisor,
        containers: &[("cadvisor", &[("http", 8080)])],
        annotations: &[],
    },
    Spec {
        name: "kube-state-metrics",
        namespace: "kube-system",
        workload: Workload::KubeState,
        containers: &[(
            "kube-state-metrics",
            &[("http-metrics", 8080), ("telemetry", 8081)],
        )],
        annotations: &[],
    },
];

/// The Deployment object of `s` with `replicas`.
fn deployment(s: &Spec, replicas: i64) -> Value {
    let containers: Vec<Value> = s
        .containers
        .iter()
        .map(|(name, ports)| {
            json!({
                "name": name,
                "image": format!("vigil-demo/{}:simulated", s.name),
                "ports": ports.iter().map(|(n, p)| json!({"name": n, "containerPort": p})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let annotations: serde_json::Map<String, Value> = s
        .annotations
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": {"app": s.name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": s.name}},
            "template": {
                "metadata": {"labels": {"app": s.name}, "annotations": annotations},
                "spec": {"containers": containers}
            }
        }
    })
}

struct Running {
    key: String,
    ip: Ipv4Addr,
    _pod: Pod,
}

/// The simulated cluster: its API server and the pods running.
pub struct Cluster {
    pub kube: FakeKube,
    pub shared: Arc<Shared>,
    pods: tokio::sync::Mutex<BTreeMap<&'static str, Vec<Running>>>,
    /// Last octet of each pod IP in use.
    used: parking_lot::Mutex<Vec<u8>>,
}

impl Cluster {
    /// Start the API server with the node, namespaces and Deployments (one replica each).
    pub fn start() -> Result<Arc<Cluster>, String> {
        let kube = FakeKube::try_start()?;
        // Watches stay open as a real server keeps them (the tests' short cap exercises
        // re-watching; the demo has no use for it).
        kube.set_watch_cap(Duration::from_secs(300));
        kube.apply(manifests::node(NODE, NODE_IP));
        for ns in [APPS_NS, "kube-system", "default"] {
            kube.apply(manifests::namespace(ns));
        }
        for s in SPECS {
            kube.apply(manifests::deployment(&deployment(s, 1), 0));
        }
        let shared = Arc::new(Shared::new(kube.url())?);
        Ok(Arc::new(Cluster {
            kube,
            shared,
            pods: Default::default(),
            used: parking_lot::Mutex::new(Vec::new()),
        }))
    }

    /// Pods wanted per Deployment, as its `spec.replicas` says now (the exporters that watch
    /// the API run once, whatever it says).
    fn wanted(&self, s: &Spec) -> usize {
        if s.workload.singleton() {
            return 1;
        }
        self.kube
            .get(Res::Deployments, &format!("{}/{}", s.namespace, s.name))
            .and_then(|d| d["spec"]["replicas"].as_i64())
            .unwrap_or(1)
            .clamp(0, 20) as usize
    }

    fn take_ip(&self) -> Option<Ipv4Addr> {
        let mut used = self.used.lock();
        let n = (10..=250u8).find(|n| !used.contains(n))?;
        used.push(n);
        Some(Ipv4Addr::new(127, 14, 0, n))
    }

    /// Bring every Deployment's pods to its replicas; returns the problems met.
    pub async fn reconcile(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut clashed_ips: Vec<u8> = Vec::new();
        let mut pods = self.pods.lock().await;
        for s in SPECS {
            let want = self.wanted(s);
            let running = pods.entry(s.name).or_default();
            while running.len() > want {
                let r = running.pop().expect("non-empty");
                self.kube.delete(Res::Pods, &r.key);
                self.used.lock().retain(|n| *n != r.ip.octets()[3]);
                tracing::info!(pod = %r.key, ip = %r.ip, "Simulated cluster: pod deleted");
            }
            let mut clashes: Vec<String> = Vec::new();
            while running.len() < want {
                // A port held by something else on every IP (a program listening on
                // 0.0.0.0:8080, say) is reported as that, not as running out of IPs; a few
                // addresses held (another demo's pods) are skipped.
                if clashes.len() >= 32 {
                    clashes.truncate(3);
                    problems.push(format!(
                        "{}: its ports are taken on every pod IP tried (32 of them; first: {}); stop what listens there",
                        s.name,
                        clashes.join("; ")
                    ));
                    break;
                }
                let Some(ip) = self.take_ip() else {
                    problems.push("no pod IP left in 127.14.0.10-250".into());
                    break;
                };
                let pod = match apps::start(s.workload, ip, &self.shared).await {
                    Ok(p) => p,
                    // Held by something else: that IP stays marked used; try the next.
                    Err(apps::StartError::InUse(e)) => {
                        tracing::info!(err = %e, "Simulated cluster: pod IP taken; trying another");
                        clashes.push(e);
                        clashed_ips.push(ip.octets()[3]);
                        continue;
                    }
                    Err(apps::StartError::Failed(e)) => {
                        self.used.lock().retain(|n| *n != ip.octets()[3]);
                        problems.push(format!("{}: {e}", s.name));
                        break;
                    }
                };
                let d = deployment(s, want as i64);
                let mut obj = manifests::pod(&d, running.len(), &ip.to_string(), NODE, NODE_IP);
                if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
                    for v in a.values_mut() {
                        if let Some(t) = v.as_str() {
                            *v = json!(t.replace("{ip}", &ip.to_string()));
                        }
                    }
                }
                let stored = self.kube.apply(obj);
                let key = format!(
                    "{}/{}",
                    s.namespace,
                    stored["metadata"]["name"].as_str().unwrap_or("")
                );
                tracing::info!(pod = %key, %ip, "Simulated cluster: pod started");
                running.push(Running { key, ip, _pod: pod });
            }
            // The Deployment's status follows its pods (written alone: a scale landing
            // meanwhile keeps its replicas, and the next pass follows it).
            let key = format!("{}/{}", s.namespace, s.name);
            if let Some(d) = self.kube.get(Res::Deployments, &key) {
                let have = running.len() as i64;
                let status = manifests::deployment_status(
                    d["metadata"]["generation"].as_i64().unwrap_or(1),
                    want as i64,
                    have,
                    have,
                );
                if d["status"] != status {
                    self.kube.set_status(Res::Deployments, &key, status);
                }
            }
            let addrs = |port: u16| {
                running
                    .iter()
                    .map(|r| std::net::SocketAddr::from((r.ip, port)))
                    .collect::<Vec<_>>()
            };
            match s.workload {
                Workload::TodoWeb => *self.shared.web.write() = addrs(8080),
                Workload::TodoProxy => *self.shared.proxies.write() = addrs(8080),
                Workload::NumbersApi => *self.shared.numbers.write() = addrs(8080),
                _ => {}
            }
        }
        // Addresses skipped for a clash are tried again on a later pass (what held them may be
        // gone), not lost for good.
        self.used.lock().retain(|n| !clashed_ips.contains(n));
        problems
    }

    /// Follow the Deployments until the process ends.
    pub async fn control(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            for p in self.reconcile().await {
                tracing::warn!(problem = %p, "Simulated cluster");
            }
        }
    }

    /// Stop every pod.
    pub async fn stop(&self) {
        self.pods.lock().await.clear();
    }

    /// The Deployments: namespace, name, and whether it can be scaled.
    pub fn deployments() -> Vec<(&'static str, &'static str, bool)> {
        SPECS
            .iter()
            .map(|s| (s.namespace, s.name, !s.workload.singleton()))
            .collect()
    }
}
