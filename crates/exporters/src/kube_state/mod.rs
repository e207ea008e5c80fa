//! `vigil kube-state`: Kubernetes object state as kube-state-metrics exposes it. The resources
//! in [`SUPPORTED`] are listed and watched through the kube crate's watcher; each object's lines are rendered when it changes (as kube-state-metrics keeps
//! them), so a scrape only concatenates them, family by family.

pub mod autoscaling;
pub mod batch;
pub mod cluster;
mod cron;
pub mod custom;
pub mod families;
mod go_duration;
pub mod list_watch;
pub mod network;
pub mod objects;
pub mod quota;
pub mod storage;
pub mod text;
pub mod workloads;

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
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Endpoints, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ReplicationController, ResourceQuota, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{StorageClass, VolumeAttachment};
use kube::api::DynamicObject;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;

use crate::exposition::Compact;
pub use families::Options;
use text::{Family, Rendered};

/// The rendered objects of one resource, by `namespace/name`, and how many of its watches
/// have not listed yet.
#[derive(Default)]
struct Objects {
    /// Shared so a scrape can take a snapshot and write it without holding the lock.
    by_key: BTreeMap<String, Arc<Compact>>,
    unsynced: usize,
}

/// What to watch and expose (kube-state-metrics' `--resources`, `--namespaces`,
/// `--namespaces-denylist`, `--metric-allowlist`, `--metric-denylist`,
/// `--use-apiserver-cache`).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None`: every resource vigil implements.
    pub resources: Option<Vec<String>>,
    /// Empty: all namespaces. Namespaced resources are then watched per namespace (as
    /// kube-state-metrics does, so a namespace-scoped Role is enough).
    pub namespaces: Vec<String>,
    pub namespaces_denylist: Vec<String>,
    /// Anchored patterns over family names.
    pub metric_allowlist: Vec<regex::Regex>,
    pub metric_denylist: Vec<regex::Regex>,
    /// List from the API server's watch cache (`resourceVersion=0`) instead of a quorum read.
    pub use_apiserver_cache: bool,
    /// `--shard` of `--total-shards`: this instance keeps the objects whose UID hashes to it.
    pub shard: u32,
    pub total_shards: u32,
    /// `--custom-resource-state-config[-file]`: kinds rendered from paths into their objects.
    pub custom: Vec<custom::Resource>,
    /// `--custom-resource-state-only`: no built-in resource, whatever `--resources` says.
    pub custom_only: bool,
}

/// The resources vigil renders.
pub const SUPPORTED: [&str; 35] = [
    "certificatesigningrequests",
    "configmaps",
    "cronjobs",
    "customresourcedefinitions",
    "daemonsets",
    "deployments",
    "endpoints",
    "endpointslices",
    "horizontalpodautoscalers",
    "ingressclasses",
    "ingresses",
    "jobs",
    "leases",
    "limitranges",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "mutatingwebhookconfigurations",
    "namespaces",
    "networkpolicies",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "poddisruptionbudgets",
    "pods",
    "replicasets",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "services",
    "statefulsets",
    "storageclasses",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "validatingwebhookconfigurations",
    "volumeattachments",
];

/// Rendered only when `--resources` names them, as kube-state-metrics leaves them out of its
/// default set (`pkg/options/resource.go`; Endpoints left it for EndpointSlices in v2.18).
pub const OPT_IN: [&str; 2] = ["endpoints", "ingressclasses"];

/// Every resource kube-state-metrics knows (default and opt-in), for telling an unknown name
/// from one vigil does not render yet.
pub const KNOWN: [&str; 40] = [
    "certificatesigningrequests",
    "clusterrolebindings",
    "clusterroles",
    "configmaps",
    "cronjobs",
    "customresourcedefinitions",
    "daemonsets",
    "deployments",
    "endpoints",
    "endpointslices",
    "horizontalpodautoscalers",
    "ingressclasses",
    "ingresses",
    "jobs",
    "leases",
    "limitranges",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "mutatingwebhookconfigurations",
    "namespaces",
    "networkpolicies",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "poddisruptionbudgets",
    "pods",
    "replicasets",
    "replicationcontrollers",
    "resourcequotas",
    "rolebindings",
    "roles",
    "secrets",
    "serviceaccounts",
    "services",
    "statefulsets",
    "storageclasses",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "validatingwebhookconfigurations",
    "volumeattachments",
];

impl Scope {
    /// Check `--resources`: an unknown name is an error; known ones vigil does not render yet
    /// are returned (the caller warns about them by name).
    pub fn check_resources(&self) -> Result<Vec<String>, String> {
        let Some(rs) = &self.resources else {
            return Ok(vec![]);
        };
        let mut missing = Vec::new();
        for r in rs {
            if !KNOWN.contains(&r.as_str()) {
                return Err(format!("--resources: unknown resource {r:?}"));
            }
            if !SUPPORTED.contains(&r.as_str()) {
                missing.push(r.clone());
            }
        }
        if missing.len() == rs.len() {
            return Err(format!(
                "--resources: vigil renders none of {rs:?} yet (it renders {})",
                SUPPORTED.join(", ")
            ));
        }
        Ok(missing)
    }

    fn wants(&self, resource: &str) -> bool {
        if self.custom_only {
            return false;
        }
        match &self.resources {
            Some(rs) => rs.iter().any(|r| r == resource),
            None => !OPT_IN.contains(&resource),
        }
    }

    fn namespace_allowed(&self, ns: &str) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns))
            && !self.namespaces_denylist.iter().any(|n| n == ns)
    }

    /// Whether this shard serves the object with `uid`: kube-state-metrics hashes the UID
    /// with FNV-1a (64 bit) and places it with jump consistent hashing, so instances given
    /// the same `--total-shards` split objects the way kube-state-metrics' shards do.
    fn owns(&self, uid: Option<&str>) -> bool {
        self.total_shards <= 1
            || jump_hash(fnv1a64(uid.unwrap_or("").as_bytes()), self.total_shards) == self.shard
    }

    fn family_allowed(&self, name: &str) -> bool {
        (self.metric_allowlist.is_empty() || self.metric_allowlist.iter().any(|r| r.is_match(name)))
            && !self.metric_denylist.iter().any(|r| r.is_match(name))
    }
}

/// One watched resource: its families and its objects' lines.
pub struct Watched {
    pub name: &'static str,
    /// The Go type kube-state-metrics names the resource by in its telemetry (`*v1.Pod`).
    go_type: String,
    /// `apiVersion/plural`, as its list and watch requests are counted (see [`list_watch`]).
    api_plural: String,
    families: Vec<Family>,
    objects: RwLock<Objects>,
    events: AtomicU64,
    errors: AtomicU64,
    /// A custom kind's `group/version/kind` (empty for built-in resources): one watch per
    /// kind.
    gvk: String,
    /// A custom kind's watch tasks, stopped when it is watched anew (its CRD came with another
    /// plural or scope than the one guessed).
    tasks: parking_lot::Mutex<Vec<tokio::task::AbortHandle>>,
    /// A custom kind watched by a guessed plural and scope (see `custom::Resource::guessed`).
    guessed: bool,
    /// A custom kind's scope as watched.
    cluster_scoped: bool,
}

/// A resource's (still empty) state, waiting for `watches` lists.
fn new_watched(
    name: &'static str,
    go_type: String,
    api_plural: String,
    families: Vec<Family>,
    watches: usize,
) -> Arc<Watched> {
    Arc::new(Watched {
        name,
        go_type,
        api_plural,
        families,
        objects: RwLock::new(Objects {
            by_key: BTreeMap::new(),
            unsynced: watches,
        }),
        events: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        gvk: String::new(),
        tasks: Default::default(),
        guessed: false,
        cluster_scoped: false,
    })
}

/// A custom kind's identity, apart from its plural.
fn custom_gvk(cr: &custom::Resource) -> String {
    format!("{}/{}/{}", cr.group, cr.version, cr.kind)
}

/// Watch one resolved custom resource kind (one watch per allowed namespace, or one over the
/// cluster): its state, filled as its objects come.
///
/// `at_start`: its lists count for readiness (`/readyz`); a kind found later does not hold
/// readiness back while it lists (its CRD's webhook may not be up yet).
fn watch_custom(
    cr: &custom::Resource,
    client: &kube::Client,
    scope: &Arc<Scope>,
    config: &watcher::Config,
    at_start: bool,
) -> Arc<Watched> {
    let cr = Arc::new(cr.clone());
    let ar = kube::discovery::ApiResource {
        group: cr.group.clone(),
        version: cr.version.clone(),
        api_version: cr.api_version(),
        kind: cr.kind.clone(),
        plural: cr.plural.clone(),
    };
    // `plural.version.group`, as kubectl names it fully: apart from any built-in's name, and
    // from the same kind at another version.
    let name: &'static str =
        Box::leak(format!("{}.{}.{}", cr.plural, cr.version, cr.group).into_boxed_str());
    // A cluster-scoped kind has no per-namespace path to list.
    let cr_ns: Vec<Option<String>> = if cr.cluster_scoped || scope.namespaces.is_empty() {
        vec![None]
    } else {
        scope.namespaces.iter().cloned().map(Some).collect()
    };
    let w = Arc::new(Watched {
        name,
        go_type: "*unstructured.Unstructured".to_string(),
        api_plural: format!("{}/{}", cr.api_version(), cr.plural),
        families: cr.families(),
        objects: RwLock::new(Objects {
            by_key: BTreeMap::new(),
            unsynced: if at_start { cr_ns.len() } else { 0 },
        }),
        events: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        gvk: custom_gvk(&cr),
        tasks: Default::default(),
        guessed: cr.guessed,
        cluster_scoped: cr.cluster_scoped,
    });
    for ns in &cr_ns {
        let api = match ns {
            Some(n) => Api::<DynamicObject>::namespaced_with(client.clone(), n, &ar),
            None => Api::<DynamicObject>::all_with(client.clone(), &ar),
        };
        let sc = scope.clone();
        let cluster = cr.cluster_scoped;
        // A cluster-scoped kind's objects have no namespace to filter by.
        let keep: Arc<dyn Fn(&DynamicObject) -> bool + Send + Sync> =
            Arc::new(move |o: &DynamicObject| {
                (cluster || sc.namespace_allowed(o.metadata.namespace.as_deref().unwrap_or("")))
                    && sc.owns(o.metadata.uid.as_deref())
            });
        let cr = cr.clone();
        let render = Arc::new(move |o: &DynamicObject| {
            cr.render(&serde_json::to_value(o).unwrap_or_default())
        });
        let task = tokio::spawn(watch(
            api,
            w.clone(),
            render,
            ns.clone(),
            keep,
            config.clone(),
        ));
        w.tasks.lock().push(task.abort_handle());
    }
    w
}

/// Everything the exporter serves.
pub struct KubeState {
    /// In kube-state-metrics' output order: alphabetical by plural name, then the custom
    /// resources in the order they were found (at start, then as their CRDs appear).
    resources: RwLock<Vec<Arc<Watched>>>,
    scope: Arc<Scope>,
    /// The client's list and watch requests (see [`list_watch`]).
    requests: Arc<list_watch::ListWatch>,
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lamping and Veach's jump consistent hash: the bucket in `0..buckets` for `key`.
fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

fn key(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// Keep one resource's store current until the task is dropped. `namespace`: the watch covers
/// only that namespace (its relists replace only that namespace's objects); `keep` filters
/// objects (the namespace deny list).
async fn watch<K>(
    api: Api<K>,
    res: Arc<Watched>,
    render: Arc<dyn Fn(&K) -> Rendered + Send + Sync>,
    namespace: Option<String>,
    keep: Arc<dyn Fn(&K) -> bool + Send + Sync>,
    config: watcher::Config,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let new_stream = || {
        watcher(api.clone(), config.clone())
            .default_backoff()
            .boxed()
    };
    let mut stream = new_stream();
    let mut listed = false;
    // The last list failed with 404: the cluster does not serve this kind.
    let mut unserved = false;
    // A resumed watch was answered 404 (said once until the watch delivers again), and the
    // wait before the next fresh watcher.
    let mut gone = false;
    let mut restart_delay = std::time::Duration::from_secs(1);
    let in_scope = |k: &str| {
        namespace.as_ref().is_none_or(|ns| {
            k.strip_prefix(ns.as_str())
                .is_some_and(|r| r.starts_with('/'))
        })
    };
    // A (re)list is collected aside and swapped in whole, so objects deleted while the watch
    // was down disappear.
    let mut pending: Option<BTreeMap<String, Arc<Compact>>> = None;
    while let Some(ev) = stream.next().await {
        res.events.fetch_add(1, Ordering::Relaxed);
        match ev {
            Ok(watcher::Event::Init) => pending = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(o)) => {
                if keep(&o) {
                    pending
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key(o.meta()), Arc::new(render(&o).into()));
                }
            }
            Ok(watcher::Event::InitDone) => {
                if std::mem::take(&mut unserved) {
                    tracing::info!(
                        resource = res.name,
                        "kube-state: the API server serves this resource now"
                    );
                }
                {
                    let mut objs = res.objects.write();
                    objs.by_key.retain(|k, _| !in_scope(k));
                    objs.by_key.extend(pending.take().unwrap_or_default());
                    if !listed {
                        listed = true;
                        objs.unsynced = objs.unsynced.saturating_sub(1);
                    }
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
                (gone, restart_delay) = (false, std::time::Duration::from_secs(1));
                if keep(&o) {
                    let r = Arc::new(Compact::from(render(&o)));
                    res.objects.write().by_key.insert(key(o.meta()), r);
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                (gone, restart_delay) = (false, std::time::Duration::from_secs(1));
                res.objects.write().by_key.remove(&key(o.meta()));
            }
            Err(e) => {
                // Not allowed to list it (say, a role written before vigil rendered this
                // resource): its families stay empty, and it counts as synced so /readyz does
                // not wait for a list that cannot come. The watch keeps retrying and fills
                // them in once the role allows it.
                // Likewise for a kind this cluster does not serve (mutating admission policies
                // are `v1` from Kubernetes 1.36 on): 404 until an upgrade brings it.
                let code = match &e {
                    watcher::Error::InitialListFailed(kube::Error::Api(s)) => Some(s.code),
                    _ => None,
                };
                // A kind served until now and gone (its CRD deleted while the watch was down,
                // so no deletions came): a watch resuming from the last version gets 404, and
                // would retry that forever. Its objects are gone with it; a fresh watcher lists
                // (quietly 404 while unserved) and fills them in when it is served again.
                if let watcher::Error::WatchStartFailed(kube::Error::Api(s)) = &e
                    && s.code == 404
                {
                    if !gone {
                        gone = true;
                        res.errors.fetch_add(1, Ordering::Relaxed);
                        res.objects.write().by_key.retain(|k, _| !in_scope(k));
                        tracing::warn!(resource = res.name, error = %e, "kube-state: the API server no longer serves this resource; its objects are dropped (retrying quietly)");
                    } else {
                        tracing::debug!(resource = res.name, error = %e, "kube-state: still not watchable");
                    }
                    // The fresh watcher's lists answer 404 quietly until it is served again.
                    unserved = true;
                    if !listed {
                        listed = true;
                        let mut objs = res.objects.write();
                        objs.unsynced = objs.unsynced.saturating_sub(1);
                    }
                    // Backing off: a server that lists a kind but will not watch it would
                    // otherwise be listed again and again.
                    tokio::time::sleep(restart_delay).await;
                    restart_delay = (restart_delay * 2).min(std::time::Duration::from_secs(300));
                    stream = new_stream();
                    continue;
                }
                // An unserved kind stays so until the cluster is upgraded: said once, then
                // retried quietly (neither the log nor the error count grows every backoff).
                if code == Some(404) && unserved {
                    tracing::debug!(resource = res.name, error = %e, "kube-state: still not served");
                    continue;
                }
                res.errors.fetch_add(1, Ordering::Relaxed);
                if code == Some(403) && !listed {
                    listed = true;
                    let mut objs = res.objects.write();
                    objs.unsynced = objs.unsynced.saturating_sub(1);
                    tracing::error!(resource = res.name, error = %e, "kube-state: not allowed to list this resource; its families stay empty until the role allows it (retrying)");
                } else if code == Some(404) {
                    unserved = true;
                    // Listed before, so served before: whatever it had is gone.
                    res.objects.write().by_key.retain(|k, _| !in_scope(k));
                    if !listed {
                        listed = true;
                        let mut objs = res.objects.write();
                        objs.unsynced = objs.unsynced.saturating_sub(1);
                    }
                    tracing::warn!(resource = res.name, error = %e, "kube-state: the API server does not serve this resource (an older Kubernetes); its families stay empty (retrying quietly)");
                } else {
                    tracing::warn!(resource = res.name, error = %e, "kube-state: watch failed; retrying with backoff");
                }
            }
        }
    }
}

impl KubeState {
    /// Start watching the resources of `scope` with `client`; the watches run on the current
    /// runtime.
    /// `requests` counts what `client` sends (a client from [`client`] with that counter).
    pub fn start(
        client: kube::Client,
        opts: Options,
        scope: Scope,
        requests: Arc<list_watch::ListWatch>,
    ) -> Arc<KubeState> {
        let opts = Arc::new(opts);
        let scope = Arc::new(scope);
        let config = if scope.use_apiserver_cache {
            watcher::Config::default().any_semantic()
        } else {
            watcher::Config::default()
        };
        let mut resources = Vec::new();
        let new = new_watched;
        // Namespaced resources: one watch per allowed namespace when they are listed, else
        // one over all namespaces with the deny list applied here.
        let per_ns: Vec<Option<String>> = if scope.namespaces.is_empty() {
            vec![None]
        } else {
            scope.namespaces.iter().cloned().map(Some).collect()
        };
        macro_rules! namespaced {
            ($name:literal, $ty:ty, $families:expr, $render:expr) => {
                if scope.wants($name) {
                    let w = new(
                        $name,
                        go_type::<$ty>(),
                        api_plural::<$ty>(),
                        $families,
                        per_ns.len(),
                    );
                    for ns in &per_ns {
                        let api = match ns {
                            Some(n) => Api::<$ty>::namespaced(client.clone(), n),
                            None => Api::<$ty>::all(client.clone()),
                        };
                        let sc = scope.clone();
                        let keep: Arc<dyn Fn(&$ty) -> bool + Send + Sync> =
                            Arc::new(move |o: &$ty| {
                                sc.namespace_allowed(o.meta().namespace.as_deref().unwrap_or(""))
                                    && sc.owns(o.meta().uid.as_deref())
                            });
                        let o = opts.clone();
                        tokio::spawn(watch(
                            api,
                            w.clone(),
                            Arc::new(move |x: &$ty| $render(x, &o)),
                            ns.clone(),
                            keep,
                            config.clone(),
                        ));
                    }
                    resources.push(w);
                }
            };
        }
        macro_rules! cluster {
            ($name:literal, $ty:ty, $families:expr, $render:expr, $filter_by_name:expr) => {
                if scope.wants($name) {
                    let w = new($name, go_type::<$ty>(), api_plural::<$ty>(), $families, 1);
                    let sc = scope.clone();
                    let keep: Arc<dyn Fn(&$ty) -> bool + Send + Sync> = Arc::new(move |o: &$ty| {
                        (!$filter_by_name
                            || sc.namespace_allowed(o.meta().name.as_deref().unwrap_or("")))
                            && sc.owns(o.meta().uid.as_deref())
                    });
                    let o = opts.clone();
                    tokio::spawn(watch(
                        Api::<$ty>::all(client.clone()),
                        w.clone(),
                        Arc::new(move |x: &$ty| $render(x, &o)),
                        None,
                        keep,
                        config.clone(),
                    ));
                    resources.push(w);
                }
            };
        }
        namespaced!(
            "configmaps",
            objects::ConfigMapMeta,
            families::configmap_families(),
            families::render_configmap
        );
        namespaced!(
            "daemonsets",
            DaemonSet,
            families::daemonset_families(),
            families::render_daemonset
        );
        namespaced!(
            "deployments",
            Deployment,
            families::deployment_families(),
            families::render_deployment
        );
        cluster!(
            "namespaces",
            Namespace,
            families::namespace_families(),
            families::render_namespace,
            true
        );
        cluster!(
            "nodes",
            Node,
            families::node_families(),
            families::render_node,
            false
        );
        namespaced!("pods", Pod, families::pod_families(), families::render_pod);
        namespaced!(
            "replicasets",
            ReplicaSet,
            families::replicaset_families(),
            families::render_replicaset
        );
        namespaced!(
            "secrets",
            objects::SecretMeta,
            families::secret_families(),
            families::render_secret
        );
        namespaced!(
            "services",
            Service,
            families::service_families(),
            families::render_service
        );
        namespaced!(
            "statefulsets",
            StatefulSet,
            families::statefulset_families(),
            families::render_statefulset
        );
        namespaced!("jobs", Job, batch::job_families(), batch::render_job);
        namespaced!(
            "horizontalpodautoscalers",
            HorizontalPodAutoscaler,
            autoscaling::hpa_families(),
            autoscaling::render_hpa
        );
        namespaced!(
            "persistentvolumeclaims",
            PersistentVolumeClaim,
            storage::pvc_families(),
            storage::render_pvc
        );
        cluster!(
            "persistentvolumes",
            PersistentVolume,
            storage::pv_families(),
            storage::render_pv,
            false
        );
        namespaced!(
            "resourcequotas",
            ResourceQuota,
            quota::quota_families(),
            quota::render_quota
        );
        namespaced!(
            "cronjobs",
            CronJob,
            batch::cronjob_families(),
            batch::render_cronjob
        );
        namespaced!(
            "endpoints",
            Endpoints,
            network::endpoint_families(),
            network::render_endpoint
        );
        namespaced!(
            "endpointslices",
            EndpointSlice,
            network::endpointslice_families(),
            network::render_endpointslice
        );
        namespaced!(
            "ingresses",
            Ingress,
            network::ingress_families(),
            network::render_ingress
        );
        cluster!(
            "ingressclasses",
            IngressClass,
            network::ingressclass_families(),
            network::render_ingressclass,
            false
        );
        namespaced!(
            "networkpolicies",
            NetworkPolicy,
            network::networkpolicy_families(),
            network::render_networkpolicy
        );
        namespaced!(
            "replicationcontrollers",
            ReplicationController,
            workloads::replicationcontroller_families(),
            workloads::render_replicationcontroller
        );
        namespaced!(
            "poddisruptionbudgets",
            PodDisruptionBudget,
            workloads::pdb_families(),
            workloads::render_pdb
        );
        namespaced!(
            "limitranges",
            LimitRange,
            quota::limitrange_families(),
            quota::render_limitrange
        );
        // kube-state-metrics lists leases across all namespaces whatever `--namespaces` says
        // (its issue #2121), once per namespace given; vigil lists them once.
        cluster!(
            "leases",
            Lease,
            cluster::lease_families(),
            cluster::render_lease,
            false
        );
        cluster!(
            "storageclasses",
            StorageClass,
            storage::storageclass_families(),
            storage::render_storageclass,
            false
        );
        cluster!(
            "volumeattachments",
            VolumeAttachment,
            storage::volumeattachment_families(),
            storage::render_volumeattachment,
            false
        );
        cluster!(
            "certificatesigningrequests",
            CertificateSigningRequest,
            cluster::csr_families(),
            cluster::render_csr,
            false
        );
        cluster!(
            "mutatingwebhookconfigurations",
            MutatingWebhookConfiguration,
            cluster::mutating_families(),
            cluster::render_mutating,
            false
        );
        cluster!(
            "validatingadmissionpolicies",
            objects::ValidatingPolicy,
            cluster::validating_policy_families(),
            cluster::render_validating_policy,
            false
        );
        cluster!(
            "validatingadmissionpolicybindings",
            objects::ValidatingBinding,
            cluster::validating_binding_families(),
            cluster::render_validating_binding,
            false
        );
        cluster!(
            "mutatingadmissionpolicies",
            objects::MutatingPolicy,
            cluster::mutating_policy_families(),
            cluster::render_mutating_policy,
            false
        );
        cluster!(
            "mutatingadmissionpolicybindings",
            objects::MutatingBinding,
            cluster::mutating_binding_families(),
            cluster::render_mutating_binding,
            false
        );
        cluster!(
            "customresourcedefinitions",
            objects::CrdMeta,
            cluster::crd_families(),
            cluster::render_crd,
            false
        );
        cluster!(
            "validatingwebhookconfigurations",
            ValidatingWebhookConfiguration,
            cluster::validating_families(),
            cluster::render_validating,
            false
        );
        // Resources in name order, as kube-state-metrics writes them.
        resources.sort_by_key(|w| w.name);
        // Custom resources after them, in the order `custom::resolve` gives (named kinds, then
        // the wildcards' kinds).
        for cr in &scope.custom {
            if cr.is_wildcard() {
                // Only `custom::resolve` knows which kinds it stands for.
                tracing::warn!(group = %cr.group, "kube-state: an unresolved wildcard custom resource is not watched");
                continue;
            }
            resources.push(watch_custom(cr, &client, &scope, &config, true));
        }
        Arc::new(KubeState {
            resources: RwLock::new(resources),
            scope,
            requests,
        })
    }

    /// Follow the custom kinds that appear after start: every `every`, resolve the entries
    /// of `wanted` (the config's, unresolved) again and watch each kind not watched yet,
    /// after the others in the output (kube-state-metrics follows CRDs as they come); a named
    /// kind watched by a guessed plural whose CRD now gives another plural or scope is watched
    /// anew in its place. Kinds that go away keep their watches, which retry quietly; their
    /// objects go when a watch or list is answered 404.
    pub fn follow_custom(
        self: &Arc<Self>,
        client: kube::Client,
        wanted: Vec<custom::Resource>,
        every: std::time::Duration,
    ) {
        // Wildcards find new kinds, and named kinds watched by a guessed plural their CRDs;
        // the named entries are resolved with the wildcards so that a kind an entry names
        // stays that entry's.
        let guessed = self.resources.read().iter().any(|w| w.guessed);
        if !(guessed || wanted.iter().any(custom::Resource::is_wildcard)) || every.is_zero() {
            return;
        }
        let state = self.clone();
        let config = if state.scope.use_apiserver_cache {
            watcher::Config::default().any_semantic()
        } else {
            watcher::Config::default()
        };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let found = match custom::resolve_quietly(&client, wanted.clone()).await {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(error = %e, "kube-state: rediscovering custom resource kinds failed; trying again later");
                        continue;
                    }
                };
                for r in found.iter().filter(|r| !r.is_wildcard()) {
                    let gvk = custom_gvk(r);
                    let watched = state.resources.read().iter().position(|w| w.gvk == gvk);
                    if let Some(i) = watched {
                        let old = state.resources.read()[i].clone();
                        let plural = format!("{}/{}", r.api_version(), r.plural);
                        if !old.guessed
                            || r.guessed
                            || (old.api_plural == plural && old.cluster_scoped == r.cluster_scoped)
                        {
                            continue;
                        }
                        tracing::info!(group = %r.group, version = %r.version, kind = %r.kind, plural = %r.plural, "kube-state: a custom kind watched by a guessed plural is listed now; watching it by its CRD's");
                        // Still holding readiness back if the guessed watch never listed.
                        let at_start = old.objects.read().unsynced > 0;
                        let w = watch_custom(r, &client, &state.scope, &config, at_start);
                        for t in old.tasks.lock().drain(..) {
                            t.abort();
                        }
                        state.resources.write()[i] = w;
                        continue;
                    }
                    tracing::info!(group = %r.group, version = %r.version, kind = %r.kind, plural = %r.plural, "kube-state: watching a custom resource kind that appeared");
                    let w = watch_custom(r, &client, &state.scope, &config, false);
                    state.resources.write().push(w);
                }
            }
        });
    }

    /// The state metrics: per resource with objects, per family its HELP and TYPE (even with
    /// no sample, as kube-state-metrics does) and every object's lines.
    pub fn exposition(&self) -> String {
        // A snapshot of the objects' lines under each lock (reference counts only), written
        // after the locks are released, so watch events are never held up by a scrape.
        let resources = self.resources.read().clone();
        let snapshot: Vec<(&Watched, Vec<Arc<Compact>>)> = resources
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
                if !self.scope.family_allowed(f.name) {
                    continue;
                }
                size += 18 + 2 * f.name.len() + f.help.len() + f.kind.len();
                size += objs.iter().map(|r| r.family(i).len()).sum::<usize>();
            }
        }
        let mut out = String::with_capacity(size);
        // Custom resources may name one family twice (two kinds, one metric): its header is
        // written once, as kube-state-metrics does.
        let mut headed = std::collections::HashSet::new();
        for (res, objs) in &snapshot {
            if objs.is_empty() {
                continue;
            }
            for (i, f) in res.families.iter().enumerate() {
                if !self.scope.family_allowed(f.name) {
                    continue;
                }
                if headed.insert(f.name) {
                    out.push_str(&format!(
                        "# HELP {} {}\n# TYPE {} {}\n",
                        f.name, f.help, f.name, f.kind
                    ));
                }
                for r in objs {
                    out.push_str(r.family(i));
                }
            }
        }
        out
    }

    /// True once every resource has listed once.
    pub fn synced(&self) -> bool {
        self.resources
            .read()
            .iter()
            .all(|r| r.objects.read().unsynced == 0)
    }

    /// The exporter's own metrics (kube-state-metrics serves these on its telemetry port).
    pub fn telemetry(&self) -> String {
        // Families by name, as the Go client gathers them: kube-state-metrics' own first, then
        // vigil's.
        let resources = self.resources.read().clone();
        let mut fams: BTreeMap<&str, String> = BTreeMap::new();
        let mut family =
            |name: &'static str, kind: &str, help: &str, value: &dyn Fn(&Watched) -> u64| {
                let mut out = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
                for r in &resources {
                    out.push_str(&format!("{name}{{resource=\"{}\"}} {}\n", r.name, value(r)));
                }
                fams.insert(name, out);
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
        // kube-state-metrics' list and watch counters (the kubernetes-mixin's
        // KubeStateMetricsListErrors and WatchErrors divide their errors by these totals):
        // a series once its first request is counted, sorted by resource then result.
        for (name, help, op) in [
            (
                "kube_state_metrics_list_total",
                "Number of total resource list in kube-state-metrics",
                list_watch::Op::List,
            ),
            (
                "kube_state_metrics_watch_total",
                "Number of total resource watches in kube-state-metrics",
                list_watch::Op::Watch,
            ),
        ] {
            // By Go type: every custom resource is `*unstructured.Unstructured` there.
            let mut by_type: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for r in &resources {
                for (result, ok) in [("error", false), ("success", true)] {
                    let n = self.requests.count(&r.api_plural, op, ok);
                    if n > 0 {
                        *by_type.entry((r.go_type.as_str(), result)).or_default() += n;
                    }
                }
            }
            let lines: Vec<String> = by_type
                .into_iter()
                .map(|((ty, result), n)| {
                    format!("{name}{{resource=\"{ty}\",result=\"{result}\"}} {n}\n")
                })
                .collect();
            if !lines.is_empty() {
                let mut out = format!("# HELP {name} {help}\n# TYPE {name} counter\n");
                lines.iter().for_each(|l| out.push_str(l));
                fams.insert(name, out);
            }
        }
        // The Go client's version collector, which kube-state-metrics registers: dashboards
        // and the mixin list exporter versions by it. Go-only fields stay empty.
        fams.insert(
            "kube_state_metrics_build_info",
            format!(
                "# HELP kube_state_metrics_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion from which kube_state_metrics was built, and the goos and goarch for the build.\n# TYPE kube_state_metrics_build_info gauge\nkube_state_metrics_build_info{{branch=\"\",goarch=\"{}\",goos=\"{}\",goversion=\"\",revision=\"vigil\",tags=\"\",version=\"{}\"}} 1\n",
                crate::exposition::go_arch(),
                std::env::consts::OS,
                env!("CARGO_PKG_VERSION")
            ),
        );
        // kube-state-metrics' own sharding gauges, so its dashboards see the shard layout.
        fams.insert(
            "kube_state_metrics_shard_ordinal",
            format!(
                "# HELP kube_state_metrics_shard_ordinal Current sharding ordinal/index of this instance\n# TYPE kube_state_metrics_shard_ordinal gauge\nkube_state_metrics_shard_ordinal{{shard_ordinal=\"{0}\"}} {0}\n",
                self.scope.shard
            ),
        );
        fams.insert(
            "kube_state_metrics_total_shards",
            format!(
                "# HELP kube_state_metrics_total_shards Number of total shards this instance is aware of\n# TYPE kube_state_metrics_total_shards gauge\nkube_state_metrics_total_shards {}\n",
                self.scope.total_shards
            ),
        );
        fams.into_values().collect()
    }
}

/// A built-in resource's `apiVersion/plural` (`apps/v1/deployments`).
fn api_plural<K: Resource<DynamicType = ()>>() -> String {
    format!("{}/{}", K::api_version(&()), K::plural(&()))
}

/// kube-state-metrics' name for a resource's type: its Go type, `*<version>.<Kind>`.
fn go_type<K: Resource<DynamicType = ()>>() -> String {
    format!("*{}.{}", K::version(&()), K::kind(&()))
}

/// A client from `--apiserver`, else `--kubeconfig`, else the in-cluster service account.
pub async fn client(
    apiserver: Option<&str>,
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Client, String> {
    let config = client_config(apiserver, kubeconfig).await?;
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

/// [`client`], with every list and watch request it sends counted into `requests`.
pub async fn counted_client(
    apiserver: Option<&str>,
    kubeconfig: Option<&std::path::Path>,
    requests: Arc<list_watch::ListWatch>,
) -> Result<kube::Client, String> {
    let config = client_config(apiserver, kubeconfig).await?;
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(|e| format!("Kubernetes client: {e}"))?
        .with_layer(&list_watch::CountLayer(requests))
        .build())
}

async fn client_config(
    apiserver: Option<&str>,
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Config, String> {
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
    Ok(config)
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The telemetry server (`--telemetry-host`/`--telemetry-port`): the exporter's own metrics.
pub fn telemetry_router(state: Arc<KubeState>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<KubeState>>| async move {
                ([(header::CONTENT_TYPE, TEXT)], s.telemetry()).into_response()
            }),
        )
        .route(
            "/",
            get(|| async {
                axum::response::Html(
                    "<h1>vigil kube-state telemetry</h1><p><a href=\"metrics\">/metrics</a></p>",
                )
            }),
        )
        .with_state(state)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Allowlists as kube-state-metrics reads them: `*` over the resource's own list, an empty
    /// list writes nothing, a lone `*` only first, one `*` inside a key as a pattern.
    #[test]
    fn allowlists_follow_kube_state_metrics_rules() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let m = ObjectMeta {
            labels: Some(
                [
                    ("app", "web"),
                    ("app.kubernetes.io/name", "db"),
                    ("tier", "x"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            ..Default::default()
        };
        let names = |flag: &str| -> Option<Vec<String>> {
            let o = Options {
                labels_allowlist: Options::parse_allowlist("metric-labels-allowlist", flag)
                    .unwrap(),
                ..Default::default()
            };
            o.labels("pods", &m)
                .map(|v| v.into_iter().map(|(k, _)| k).collect())
        };
        assert_eq!(names("pods=[app]").unwrap(), ["label_app"]);
        assert_eq!(names("pods=[]"), None);
        assert_eq!(names("nodes=[app]"), None);
        assert_eq!(names("pods=[*]").unwrap().len(), 3);
        assert_eq!(names("pods=[tier,*]").unwrap(), ["label_tier"]);
        assert_eq!(
            names("pods=[app.*]").unwrap(),
            ["label_app_kubernetes_io_name"]
        );
        assert_eq!(names("pods=[tier],*=[app]").unwrap(), ["label_app"]);
        assert!(Options::parse_allowlist("f", "pods=[a*b*]").is_err());
    }

    /// FNV-1a 64 published vectors and the jump hash table generated from the paper's
    /// reference C++ code (as go-jump, which kube-state-metrics uses, tests it).
    #[test]
    fn shard_hash_matches_the_references() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        let table: [(u64, [u32; 19]); 3] = [
            (
                1,
                [0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17],
            ),
            (
                0xdeadbeef,
                [0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16],
            ),
            (
                0x0ddc0ffeebadf00d,
                [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15],
            ),
        ];
        for (key, buckets) in table {
            for (i, want) in buckets.iter().enumerate() {
                assert_eq!(
                    jump_hash(key, i as u32 + 1),
                    *want,
                    "key {key:#x}, {} buckets",
                    i + 1
                );
            }
        }
        for n in 1..20 {
            assert_eq!(jump_hash(0, n), 0);
        }
    }
}
