//! `vigil kube-state`: Kubernetes object state as kube-state-metrics exposes it. Pods,
//! Deployments, Nodes, Namespaces and Services are listed and watched through the kube crate's
//! watcher; each object's lines are rendered when it changes (as kube-state-metrics keeps
//! them), so a scrape only concatenates them, family by family.

pub mod families;
pub mod text;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;

use crate::exposition::Compact;
pub use families::Options;
use text::{Family, Rendered};

/// The rendered objects of one resource, by `namespace/name`, and whether it has listed once.
#[derive(Default)]
struct Objects {
    /// Shared so a scrape can take a snapshot and write it without holding the lock.
    by_key: BTreeMap<String, Arc<Compact>>,
    synced: bool,
}

/// One watched resource: its families and its objects' lines.
pub struct Watched {
    pub name: &'static str,
    families: Vec<Family>,
    objects: RwLock<Objects>,
    events: AtomicU64,
    errors: AtomicU64,
}

/// Everything the exporter serves.
pub struct KubeState {
    /// In kube-state-metrics' output order: alphabetical by plural name.
    resources: Vec<Arc<Watched>>,
}

fn key(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// Keep one resource's store current until the task is dropped.
async fn watch<K>(
    api: Api<K>,
    res: Arc<Watched>,
    opts: Arc<Options>,
    render: fn(&K, &Options) -> Rendered,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // A (re)list is collected aside and swapped in whole, so objects deleted while the watch
    // was down disappear.
    let mut pending: Option<BTreeMap<String, Arc<Compact>>> = None;
    while let Some(ev) = stream.next().await {
        res.events.fetch_add(1, Ordering::Relaxed);
        match ev {
            Ok(watcher::Event::Init) => pending = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(o)) => {
                pending
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key(o.meta()), Arc::new(render(&o, &opts).into()));
            }
            Ok(watcher::Event::InitDone) => {
                {
                    let mut objs = res.objects.write();
                    objs.by_key = pending.take().unwrap_or_default();
                    objs.synced = true;
                }
                // A (re)list parses every object at once; hand the freed pages back (glibc
                // keeps them otherwise, and they would count against us for the process's life).
                #[cfg(target_env = "gnu")]
                // SAFETY: malloc_trim only releases free memory; it has no preconditions.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
            Ok(watcher::Event::Apply(o)) => {
                let r = Arc::new(Compact::from(render(&o, &opts)));
                res.objects.write().by_key.insert(key(o.meta()), r);
            }
            Ok(watcher::Event::Delete(o)) => {
                res.objects.write().by_key.remove(&key(o.meta()));
            }
            Err(e) => {
                res.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(resource = res.name, error = %e, "kube-state: watch failed; retrying with backoff");
            }
        }
    }
}

impl KubeState {
    /// Start watching every resource with `client`; the watches run on the current runtime.
    pub fn start(client: kube::Client, opts: Options) -> Arc<KubeState> {
        let opts = Arc::new(opts);
        let new = |name: &'static str, families: Vec<Family>| {
            Arc::new(Watched {
                name,
                families,
                objects: Default::default(),
                events: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            })
        };
        let deployments = new("deployments", families::DEPLOYMENT.to_vec());
        let namespaces = new("namespaces", families::NAMESPACE.to_vec());
        let nodes = new("nodes", families::NODE.to_vec());
        let pods = new("pods", families::pod_families());
        let services = new("services", families::SERVICE.to_vec());
        tokio::spawn(watch(
            Api::<Deployment>::all(client.clone()),
            deployments.clone(),
            opts.clone(),
            families::render_deployment,
        ));
        tokio::spawn(watch(
            Api::<Namespace>::all(client.clone()),
            namespaces.clone(),
            opts.clone(),
            families::render_namespace,
        ));
        tokio::spawn(watch(
            Api::<Node>::all(client.clone()),
            nodes.clone(),
            opts.clone(),
            families::render_node,
        ));
        tokio::spawn(watch(
            Api::<Pod>::all(client.clone()),
            pods.clone(),
            opts.clone(),
            families::render_pod,
        ));
        tokio::spawn(watch(
            Api::<Service>::all(client),
            services.clone(),
            opts,
            families::render_service,
        ));
        Arc::new(KubeState {
            resources: vec![deployments, namespaces, nodes, pods, services],
        })
    }

    /// The state metrics: per resource with objects, per family its HELP and TYPE (even with
    /// no sample, as kube-state-metrics does) and every object's lines.
    pub fn exposition(&self) -> String {
        // A snapshot of the objects' lines under each lock (reference counts only), written
        // after the locks are released, so watch events are never held up by a scrape.
        let snapshot: Vec<(&Watched, Vec<Arc<Compact>>)> = self
            .resources
            .iter()
            .map(|r| {
                (
                    r.as_ref(),
                    r.objects.read().by_key.values().cloned().collect(),
                )
            })
            .collect();
        // One exact allocation (large enough to be its own mapping, returned when freed)
        // instead of a string doubling its way up.
        let mut size = 0;
        for (res, objs) in &snapshot {
            if objs.is_empty() {
                continue;
            }
            for (i, f) in res.families.iter().enumerate() {
                size += 18 + 2 * f.name.len() + f.help.len() + f.kind.len();
                size += objs.iter().map(|r| r.family(i).len()).sum::<usize>();
            }
        }
        let mut out = String::with_capacity(size);
        for (res, objs) in &snapshot {
            if objs.is_empty() {
                continue;
            }
            for (i, f) in res.families.iter().enumerate() {
                out.push_str(&format!(
                    "# HELP {} {}\n# TYPE {} {}\n",
                    f.name, f.help, f.name, f.kind
                ));
                for r in objs {
                    out.push_str(r.family(i));
                }
            }
        }
        out
    }

    /// True once every resource has listed once.
    pub fn synced(&self) -> bool {
        self.resources.iter().all(|r| r.objects.read().synced)
    }

    /// The exporter's own metrics (kube-state-metrics serves these on its telemetry port).
    pub fn telemetry(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&Watched) -> u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for r in &self.resources {
                out.push_str(&format!("{name}{{resource=\"{}\"}} {}\n", r.name, value(r)));
            }
        };
        family(
            "vigil_kube_state_watch_events_total",
            "counter",
            "Watch events received, by resource.",
            &|r| r.events.load(Ordering::Relaxed),
        );
        family(
            "vigil_kube_state_watch_errors_total",
            "counter",
            "List or watch failures, by resource.",
            &|r| r.errors.load(Ordering::Relaxed),
        );
        family(
            "vigil_kube_state_objects",
            "gauge",
            "Objects held, by resource.",
            &|r| r.objects.read().by_key.len() as u64,
        );
        out
    }
}

/// A client from `--apiserver`, else `--kubeconfig`, else the in-cluster service account.
pub async fn client(
    apiserver: Option<&str>,
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = if let Some(path) = kubeconfig {
        let k = kube::config::Kubeconfig::read_from(path)
            .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
        let mut c = kube::Config::from_custom_kubeconfig(k, &Default::default())
            .await
            .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
        if let Some(a) = apiserver {
            c.cluster_url = a.parse().map_err(|e| format!("--apiserver {a:?}: {e}"))?;
        }
        c
    } else if let Some(a) = apiserver {
        kube::Config::new(a.parse().map_err(|e| format!("--apiserver {a:?}: {e}"))?)
    } else {
        kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?
    };
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router(state: Arc<KubeState>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<KubeState>>| async move {
                // Tens of megabytes at scale: written off the async workers.
                let text = tokio::task::spawn_blocking(move || s.exposition())
                    .await
                    .unwrap_or_default();
                ([(header::CONTENT_TYPE, TEXT)], text).into_response()
            }),
        )
        .route(
            "/telemetry",
            get(|State(s): State<Arc<KubeState>>| async move {
                ([(header::CONTENT_TYPE, TEXT)], s.telemetry()).into_response()
            }),
        )
        .route("/healthz", get(|| async { "OK" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<KubeState>>| async move {
                if s.synced() {
                    "OK".into_response()
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not synced yet").into_response()
                }
            }),
        )
        .route(
            "/",
            get(|| async {
                axum::response::Html(
                    "<h1>vigil kube-state</h1><p>kube-state-metrics compatible: <a href=\"metrics\">/metrics</a>, <a href=\"telemetry\">/telemetry</a>, <a href=\"healthz\">/healthz</a></p>",
                )
            }),
        )
        .with_state(state)
}
