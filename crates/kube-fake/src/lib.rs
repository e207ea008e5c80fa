//! A fake Kubernetes API server for vigil's tests. Kubernetes cannot run on the build machine,
//! so discovery is tested against this: it speaks the real list/watch HTTP protocol (lists with
//! `metadata.resourceVersion`, `?watch=true|1&resourceVersion=N` streams of newline-delimited
//! `ADDED`/`MODIFIED`/`DELETED`/`BOOKMARK` events, `410 Expired` inside the stream when a version
//! is too old, label and field selectors) with object JSON as a cluster stores it. The client
//! code under test is the same that runs in a cluster.
//!
//! Objects are put in with [`FakeKube::apply`] / [`FakeKube::delete`]; [`manifests`] turns the
//! chapter 14 Deployment and Service manifests into the Pods, Services, Endpoints and
//! EndpointSlices a cluster would hold.

pub mod manifests;
mod selector;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

/// The resource kinds served, with their paths and list kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Res {
    Pods,
    Services,
    Endpoints,
    Nodes,
    Namespaces,
    EndpointSlices,
    Ingresses,
    Deployments,
    ConfigMaps,
    Secrets,
    ReplicaSets,
    DaemonSets,
    StatefulSets,
    Jobs,
    CronJobs,
    HorizontalPodAutoscalers,
    PersistentVolumeClaims,
    PersistentVolumes,
    ResourceQuotas,
    LimitRanges,
    Leases,
    StorageClasses,
    VolumeAttachments,
    CertificateSigningRequests,
    MutatingWebhookConfigurations,
    ValidatingWebhookConfigurations,
    ReplicationControllers,
    PodDisruptionBudgets,
    IngressClasses,
    NetworkPolicies,
    ValidatingAdmissionPolicies,
    ValidatingAdmissionPolicyBindings,
    MutatingAdmissionPolicies,
    MutatingAdmissionPolicyBindings,
    CustomResourceDefinitions,
    /// A custom resource served through [`FakeKube::serve_custom`] (its registration order).
    Custom(u16),
}

/// A custom resource's kind as served: `apiVersion`, plural (its path) and `kind`.
#[derive(Debug, Clone)]
struct CustomKind {
    api_version: String,
    plural: String,
    kind: String,
    namespaced: bool,
}

impl Res {
    fn from_path(group: &str, res: &str) -> Option<Res> {
        Some(match (group, res) {
            ("v1", "pods") => Res::Pods,
            ("v1", "services") => Res::Services,
            ("v1", "endpoints") => Res::Endpoints,
            ("v1", "nodes") => Res::Nodes,
            ("v1", "namespaces") => Res::Namespaces,
            ("discovery.k8s.io/v1", "endpointslices") => Res::EndpointSlices,
            ("networking.k8s.io/v1", "ingresses") => Res::Ingresses,
            ("apps/v1", "deployments") => Res::Deployments,
            ("v1", "configmaps") => Res::ConfigMaps,
            ("v1", "secrets") => Res::Secrets,
            ("apps/v1", "replicasets") => Res::ReplicaSets,
            ("apps/v1", "daemonsets") => Res::DaemonSets,
            ("apps/v1", "statefulsets") => Res::StatefulSets,
            ("batch/v1", "jobs") => Res::Jobs,
            ("batch/v1", "cronjobs") => Res::CronJobs,
            ("autoscaling/v2", "horizontalpodautoscalers") => Res::HorizontalPodAutoscalers,
            ("v1", "persistentvolumeclaims") => Res::PersistentVolumeClaims,
            ("v1", "persistentvolumes") => Res::PersistentVolumes,
            ("v1", "resourcequotas") => Res::ResourceQuotas,
            ("v1", "limitranges") => Res::LimitRanges,
            ("coordination.k8s.io/v1", "leases") => Res::Leases,
            ("storage.k8s.io/v1", "storageclasses") => Res::StorageClasses,
            ("storage.k8s.io/v1", "volumeattachments") => Res::VolumeAttachments,
            ("certificates.k8s.io/v1", "certificatesigningrequests") => {
                Res::CertificateSigningRequests
            }
            ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations") => {
                Res::MutatingWebhookConfigurations
            }
            ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations") => {
                Res::ValidatingWebhookConfigurations
            }
            ("v1", "replicationcontrollers") => Res::ReplicationControllers,
            ("policy/v1", "poddisruptionbudgets") => Res::PodDisruptionBudgets,
            ("networking.k8s.io/v1", "ingressclasses") => Res::IngressClasses,
            ("networking.k8s.io/v1", "networkpolicies") => Res::NetworkPolicies,
            ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies") => {
                Res::ValidatingAdmissionPolicies
            }
            ("admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings") => {
                Res::ValidatingAdmissionPolicyBindings
            }
            ("admissionregistration.k8s.io/v1", "mutatingadmissionpolicies") => {
                Res::MutatingAdmissionPolicies
            }
            ("admissionregistration.k8s.io/v1", "mutatingadmissionpolicybindings") => {
                Res::MutatingAdmissionPolicyBindings
            }
            ("apiextensions.k8s.io/v1", "customresourcedefinitions") => {
                Res::CustomResourceDefinitions
            }
            _ => return None,
        })
    }

    /// `(apiVersion, kind)` of the objects; custom kinds' come from the server's registry.
    fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Res::Custom(_) => ("", ""),
            Res::Pods => ("v1", "Pod"),
            Res::Services => ("v1", "Service"),
            Res::Endpoints => ("v1", "Endpoints"),
            Res::Nodes => ("v1", "Node"),
            Res::Namespaces => ("v1", "Namespace"),
            Res::EndpointSlices => ("discovery.k8s.io/v1", "EndpointSlice"),
            Res::Ingresses => ("networking.k8s.io/v1", "Ingress"),
            Res::Deployments => ("apps/v1", "Deployment"),
            Res::ConfigMaps => ("v1", "ConfigMap"),
            Res::Secrets => ("v1", "Secret"),
            Res::ReplicaSets => ("apps/v1", "ReplicaSet"),
            Res::DaemonSets => ("apps/v1", "DaemonSet"),
            Res::StatefulSets => ("apps/v1", "StatefulSet"),
            Res::Jobs => ("batch/v1", "Job"),
            Res::CronJobs => ("batch/v1", "CronJob"),
            Res::HorizontalPodAutoscalers => ("autoscaling/v2", "HorizontalPodAutoscaler"),
            Res::PersistentVolumeClaims => ("v1", "PersistentVolumeClaim"),
            Res::PersistentVolumes => ("v1", "PersistentVolume"),
            Res::ResourceQuotas => ("v1", "ResourceQuota"),
            Res::LimitRanges => ("v1", "LimitRange"),
            Res::Leases => ("coordination.k8s.io/v1", "Lease"),
            Res::StorageClasses => ("storage.k8s.io/v1", "StorageClass"),
            Res::VolumeAttachments => ("storage.k8s.io/v1", "VolumeAttachment"),
            Res::CertificateSigningRequests => {
                ("certificates.k8s.io/v1", "CertificateSigningRequest")
            }
            Res::MutatingWebhookConfigurations => (
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
            ),
            Res::ValidatingWebhookConfigurations => (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
            ),
            Res::ReplicationControllers => ("v1", "ReplicationController"),
            Res::PodDisruptionBudgets => ("policy/v1", "PodDisruptionBudget"),
            Res::IngressClasses => ("networking.k8s.io/v1", "IngressClass"),
            Res::NetworkPolicies => ("networking.k8s.io/v1", "NetworkPolicy"),
            Res::ValidatingAdmissionPolicies => (
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicy",
            ),
            Res::ValidatingAdmissionPolicyBindings => (
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicyBinding",
            ),
            Res::MutatingAdmissionPolicies => {
                ("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicy")
            }
            Res::MutatingAdmissionPolicyBindings => (
                "admissionregistration.k8s.io/v1",
                "MutatingAdmissionPolicyBinding",
            ),
            Res::CustomResourceDefinitions => {
                ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            }
        }
    }

    /// The resource of an object, from its `kind`.
    pub fn of(obj: &Value) -> Option<Res> {
        Some(match obj["kind"].as_str()? {
            "Pod" => Res::Pods,
            "Service" => Res::Services,
            "Endpoints" => Res::Endpoints,
            "Node" => Res::Nodes,
            "Namespace" => Res::Namespaces,
            "EndpointSlice" => Res::EndpointSlices,
            "Ingress" => Res::Ingresses,
            "Deployment" => Res::Deployments,
            "ConfigMap" => Res::ConfigMaps,
            "Secret" => Res::Secrets,
            "ReplicaSet" => Res::ReplicaSets,
            "DaemonSet" => Res::DaemonSets,
            "StatefulSet" => Res::StatefulSets,
            "Job" => Res::Jobs,
            "CronJob" => Res::CronJobs,
            "HorizontalPodAutoscaler" => Res::HorizontalPodAutoscalers,
            "PersistentVolumeClaim" => Res::PersistentVolumeClaims,
            "PersistentVolume" => Res::PersistentVolumes,
            "ResourceQuota" => Res::ResourceQuotas,
            "LimitRange" => Res::LimitRanges,
            "Lease" => Res::Leases,
            "StorageClass" => Res::StorageClasses,
            "VolumeAttachment" => Res::VolumeAttachments,
            "CertificateSigningRequest" => Res::CertificateSigningRequests,
            "MutatingWebhookConfiguration" => Res::MutatingWebhookConfigurations,
            "ValidatingWebhookConfiguration" => Res::ValidatingWebhookConfigurations,
            "ReplicationController" => Res::ReplicationControllers,
            "PodDisruptionBudget" => Res::PodDisruptionBudgets,
            "IngressClass" => Res::IngressClasses,
            "NetworkPolicy" => Res::NetworkPolicies,
            "ValidatingAdmissionPolicy" => Res::ValidatingAdmissionPolicies,
            "ValidatingAdmissionPolicyBinding" => Res::ValidatingAdmissionPolicyBindings,
            "MutatingAdmissionPolicy" => Res::MutatingAdmissionPolicies,
            "MutatingAdmissionPolicyBinding" => Res::MutatingAdmissionPolicyBindings,
            "CustomResourceDefinition" => Res::CustomResourceDefinitions,
            _ => return None,
        })
    }
}

#[derive(Clone)]
struct Event {
    rv: u64,
    res: Res,
    kind: &'static str,
    object: Value,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<(Res, String), Value>,
    log: Vec<Event>,
    /// Events at or below this version have been compacted away: older watches get 410.
    compacted: u64,
    /// Longest a watch stays open (real servers: minutes; short here so re-watching is tested).
    watch_cap: Duration,
    /// Requests seen, e.g. `list pods`, `watch pods` (for assertions on client behaviour).
    requests: Vec<String>,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    bearer: Option<String>,
    /// Resources whose reads are refused with 403, as RBAC refuses a role that lacks them.
    forbidden: std::collections::BTreeSet<Res>,
    /// Kinds this "cluster" does not serve (an older Kubernetes): 404.
    unserved: std::collections::BTreeSet<Res>,
    /// Custom resources served ([`Res::Custom`] indexes this).
    custom: Vec<CustomKind>,
}

impl Inner {
    /// The resource of an object: a built-in kind, else a custom kind served for its
    /// `apiVersion` and `kind`.
    fn res_of(&self, obj: &Value) -> Option<Res> {
        Res::of(obj).or_else(|| {
            let (v, k) = (obj["apiVersion"].as_str()?, obj["kind"].as_str()?);
            let i = self
                .custom
                .iter()
                .position(|c| c.api_version == v && c.kind == k)?;
            Some(Res::Custom(i as u16))
        })
    }

    fn res_at(&self, group: &str, res: &str) -> Option<Res> {
        Res::from_path(group, res).or_else(|| {
            let i = self
                .custom
                .iter()
                .position(|c| c.api_version == group && c.plural == res)?;
            Some(Res::Custom(i as u16))
        })
    }

    fn type_meta(&self, r: Res) -> (String, String) {
        match r {
            Res::Custom(i) => {
                let c = &self.custom[i as usize];
                (c.api_version.clone(), c.kind.clone())
            }
            _ => {
                let (v, k) = r.type_meta();
                (v.to_string(), k.to_string())
            }
        }
    }
}

type Shared = Arc<(Mutex<Inner>, broadcast::Sender<()>)>;

/// A running fake API server on `127.0.0.1:port`, stopped when dropped.
pub struct FakeKube {
    pub port: u16,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn key_of(obj: &Value) -> String {
    let m = &obj["metadata"];
    match m["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", m["name"].as_str().unwrap_or("")),
        _ => m["name"].as_str().unwrap_or("").to_string(),
    }
}

impl FakeKube {
    /// Start on a free port, on its own runtime (usable from sync and async tests alike).
    pub fn start() -> FakeKube {
        Self::try_start().expect("fake API server")
    }

    /// As [`FakeKube::start`], saying why it could not (no port, no thread).
    pub fn try_start() -> Result<FakeKube, String> {
        let (tx, _) = broadcast::channel(1024);
        let shared: Shared = Arc::new((
            Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                log: Vec::new(),
                compacted: 0,
                watch_cap: Duration::from_secs(5),
                requests: Vec::new(),
                bearer: None,
                forbidden: Default::default(),
                unserved: Default::default(),
                custom: Vec::new(),
            }),
            tx,
        ));
        let app = Router::new()
            .route("/version", get(version))
            .route("/api/{v}/{res}", get(core_all))
            .route("/api/{v}/namespaces/{ns}/{res}", get(core_ns))
            .route("/apis", get(api_groups))
            .route("/apis/{g}/{v}", get(group_resources))
            .route("/apis/{g}/{v}/{res}", get(group_all))
            .route("/apis/{g}/{v}/namespaces/{ns}/{res}", get(group_ns))
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
                get(scale_get).put(scale_set).patch(scale_set),
            )
            .fallback(|| async {
                status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            })
            .with_state(shared.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("listen on 127.0.0.1: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("listen on 127.0.0.1: {e}"))?
            .port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Its own thread and runtime: usable from sync and async tests, and dropping it from
        // inside another runtime is fine.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        std::thread::Builder::new()
            .name("kube-fake".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
                rt.shutdown_background();
            })
            .map_err(|e| format!("thread: {e}"))?;
        Ok(FakeKube {
            port,
            shared,
            stop: Some(stop),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create or update an object (its `kind` says which resource); returns it as stored, with
    /// its new `resourceVersion` (and a `uid` if it had none).
    pub fn apply(&self, obj: Value) -> Value {
        apply(&self.shared, obj)
    }

    /// Replace a stored object's `status` (leaving its spec as it is now: a status write never
    /// undoes a concurrent change of the spec). False when there is no such object.
    pub fn set_status(&self, res: Res, key: &str, status: Value) -> bool {
        update(&self.shared, res, key, |o| o["status"] = status).is_some()
    }

    /// Delete an object; `key` is `<namespace>/<name>` (or `<name>` for nodes, namespaces).
    pub fn delete(&self, res: Res, key: &str) -> bool {
        let (lock, tx) = &*self.shared;
        let mut s = lock.lock();
        let Some(mut obj) = s.objects.remove(&(res, key.to_string())) else {
            return false;
        };
        s.rv += 1;
        let rv = s.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        s.log.push(Event {
            rv,
            res,
            kind: "DELETED",
            object: obj,
        });
        let _ = tx.send(());
        true
    }

    /// Forget the event log: watches resuming from an older version get `410 Expired` and
    /// must relist (as after an etcd compaction).
    pub fn compact(&self) {
        let mut s = self.shared.0.lock();
        s.compacted = s.rv;
        s.log.clear();
        // Open watches end so clients resume (and meet the 410).
        drop(s);
        let _ = self.shared.1.send(());
    }

    /// Cap on how long a watch stays open.
    pub fn set_watch_cap(&self, d: Duration) {
        self.shared.0.lock().watch_cap = d;
    }

    /// Refuse every list and watch of `res` with 403 Forbidden from now on (a role without it).
    pub fn forbid(&self, res: Res) {
        self.shared.0.lock().forbidden.insert(res);
    }

    /// Serve `res` again after [`FakeKube::forbid`] (the role was granted it).
    pub fn permit(&self, res: Res) {
        self.shared.0.lock().forbidden.remove(&res);
    }

    /// Serve a custom resource at `/apis/<api_version>/<plural>` (and per namespace), as an
    /// API server does once its CustomResourceDefinition is established; objects of that
    /// `apiVersion` and `kind` can then be applied. Returns its [`Res`].
    pub fn serve_custom(&self, api_version: &str, plural: &str, kind: &str) -> Res {
        self.serve_custom_scoped(api_version, plural, kind, true)
    }

    /// As [`FakeKube::serve_custom`], for a namespaced or a cluster-scoped kind (what
    /// discovery says of it; objects of a cluster-scoped kind have no namespace).
    pub fn serve_custom_scoped(
        &self,
        api_version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
    ) -> Res {
        let mut s = self.shared.0.lock();
        if let Some(i) = s
            .custom
            .iter()
            .position(|c| c.api_version == api_version && c.kind == kind)
        {
            // Served again (after `unserve`, too): as now described.
            s.custom[i].plural = plural.to_string();
            s.custom[i].namespaced = namespaced;
            s.unserved.remove(&Res::Custom(i as u16));
            return Res::Custom(i as u16);
        }
        s.custom.push(CustomKind {
            api_version: api_version.to_string(),
            plural: plural.to_string(),
            kind: kind.to_string(),
            namespaced,
        });
        Res::Custom((s.custom.len() - 1) as u16)
    }

    /// Answer 404 for `res`, as an API server of a Kubernetes release without it does (or, for
    /// a custom kind, one whose CRD was deleted: discovery no longer lists it). Watches open
    /// now run to their end; the clients' next ones get the 404.
    pub fn unserve(&self, res: Res) {
        self.shared.0.lock().unserved.insert(res);
    }

    pub fn require_bearer(&self, token: &str) {
        self.shared.0.lock().bearer = Some(token.to_string());
    }

    /// Requests served so far (`list pods`, `watch pods`, ...).
    pub fn requests(&self) -> Vec<String> {
        self.shared.0.lock().requests.clone()
    }

    pub fn get(&self, res: Res, key: &str) -> Option<Value> {
        self.shared
            .0
            .lock()
            .objects
            .get(&(res, key.to_string()))
            .cloned()
    }
}

/// Store `obj` (create or update) and tell the watches.
fn apply(shared: &Shared, obj: Value) -> Value {
    let (lock, tx) = &**shared;
    let out = apply_locked(&mut lock.lock(), obj);
    let _ = tx.send(());
    out
}

/// Change a stored object in place, under one lock (so no other write lands between the read
/// and the write, as a resourceVersion precondition guarantees on a real server). `None` when
/// there is no such object.
fn update(shared: &Shared, res: Res, key: &str, f: impl FnOnce(&mut Value)) -> Option<Value> {
    let (lock, tx) = &**shared;
    let mut s = lock.lock();
    let mut obj = s.objects.get(&(res, key.to_string()))?.clone();
    f(&mut obj);
    let out = apply_locked(&mut s, obj);
    drop(s);
    let _ = tx.send(());
    Some(out)
}

fn apply_locked(s: &mut Inner, mut obj: Value) -> Value {
    let res = s
        .res_of(&obj)
        .unwrap_or_else(|| panic!("unknown kind in {obj}"));
    s.rv += 1;
    let rv = s.rv;
    let key = key_of(&obj);
    let m = &mut obj["metadata"];
    m["resourceVersion"] = json!(rv.to_string());
    if m["uid"].is_null() {
        m["uid"] = json!(format!("uid-{rv}"));
    }
    if m["creationTimestamp"].is_null() {
        m["creationTimestamp"] = json!("2026-11-30T00:00:00Z");
    }
    let kind = if s.objects.contains_key(&(res, key.clone())) {
        "MODIFIED"
    } else {
        "ADDED"
    };
    s.objects.insert((res, key), obj.clone());
    s.log.push(Event {
        rv,
        res,
        kind,
        object: obj.clone(),
    });
    obj
}

/// A Deployment's `scale` subresource (`autoscaling/v1` `Scale`), as `kubectl scale` reads it.
fn scale_of(d: &Value) -> Value {
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": d["metadata"]["name"], "namespace": d["metadata"]["namespace"],
                        "resourceVersion": d["metadata"]["resourceVersion"]},
           "spec": {"replicas": replicas},
           "status": {"replicas": d["status"]["replicas"].as_i64().unwrap_or(replicas)}})
}

async fn scale_get(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let d =
        s.0.lock()
            .objects
            .get(&(Res::Deployments, format!("{ns}/{name}")))
            .cloned();
    match d {
        Some(d) => json_response(&scale_of(&d)),
        None => not_found_deployment(&name),
    }
}

/// `PUT` or `PATCH` of the scale: the body's `spec.replicas` becomes the Deployment's (whoever
/// runs the pods watches the Deployment and follows).
async fn scale_set(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let replicas = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v["spec"]["replicas"].as_i64() {
            Some(n) if n >= 0 => n,
            _ => {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "spec.replicas: a non-negative integer is required",
                );
            }
        },
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    s.0.lock().requests.push("scale deployments".into());
    let stored = update(&s, Res::Deployments, &format!("{ns}/{name}"), |d| {
        d["spec"]["replicas"] = json!(replicas);
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        d["metadata"]["generation"] = json!(generation);
    });
    match stored {
        Some(d) => json_response(&scale_of(&d)),
        None => not_found_deployment(&name),
    }
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn not_found_deployment(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("deployments.apps \"{name}\" not found"),
    )
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code.as_u16()})
        .to_string(),
    )
        .into_response()
}

fn unauthorized(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let want = s.0.lock().bearer.clone()?;
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (got != Some(want.as_str()))
        .then(|| status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"))
}

async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"})
            .to_string(),
    )
        .into_response()
}

async fn core_all(
    State(s): State<Shared>,
    Path((v, res)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    serve(s, &v, &res, None, q).await
}

async fn core_ns(
    State(s): State<Shared>,
    Path((v, ns, res)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    serve(s, &v, &res, Some(ns), q).await
}

/// Discovery of the API groups (`APIGroupList`): the groups of the custom kinds served, each
/// with its versions (the first served is the preferred one).
async fn api_groups(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let st = s.0.lock();
    for (i, c) in st.custom.iter().enumerate() {
        if st.unserved.contains(&Res::Custom(i as u16)) {
            continue;
        }
        if let Some((g, v)) = c.api_version.split_once('/') {
            let vs = groups.entry(g.to_string()).or_default();
            if !vs.iter().any(|x| x == v) {
                vs.push(v.to_string());
            }
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json_response(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

/// Discovery of a group version (`APIResourceList`): the custom kinds served there, which
/// clients ask for to learn a kind's plural and scope.
async fn group_resources(
    State(s): State<Shared>,
    Path((g, v)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    let gv = format!("{g}/{v}");
    let st = s.0.lock();
    let resources: Vec<Value> = st
        .custom
        .iter()
        .enumerate()
        .filter(|(i, c)| c.api_version == gv && !st.unserved.contains(&Res::Custom(*i as u16)))
        .map(|(_, c)| c)
            .map(|c| {
                json!({"name": c.plural, "singularName": c.kind.to_lowercase(), "namespaced": c.namespaced,
                   "kind": c.kind, "verbs": ["get", "list", "watch"]})
            })
            .collect();
    if resources.is_empty() {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    json_response(&json!({"kind": "APIResourceList", "apiVersion": "v1",
                           "groupVersion": gv, "resources": resources}))
}

async fn group_all(
    State(s): State<Shared>,
    Path((g, v, res)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    serve(s, &format!("{g}/{v}"), &res, None, q).await
}

async fn group_ns(
    State(s): State<Shared>,
    Path((g, v, ns, res)): Path<(String, String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unauthorized(&s, &headers) {
        return r;
    }
    serve(s, &format!("{g}/{v}"), &res, Some(ns), q).await
}

/// Query parameters, percent-decoded.
fn params(q: Option<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(
    shared: Shared,
    group: &str,
    res: &str,
    ns: Option<String>,
    q: Option<String>,
) -> Response {
    let found = shared.0.lock().res_at(group, res);
    let Some(r) = found else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource ({group} {res})"),
        );
    };
    // A cluster-scoped kind has no per-namespace path.
    let cluster_scoped = match r {
        Res::Custom(i) => shared
            .0
            .lock()
            .custom
            .get(i as usize)
            .is_some_and(|c| !c.namespaced),
        _ => false,
    };
    if shared.0.lock().unserved.contains(&r) || (cluster_scoped && ns.is_some()) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    if shared.0.lock().forbidden.contains(&r) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("{res} is forbidden: the role does not allow listing it"),
        );
    }
    let p = params(q);
    let labels = match selector::Labels::parse(p.get("labelSelector").map_or("", |s| s)) {
        Ok(l) => l,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    let fields = match selector::Fields::parse(p.get("fieldSelector").map_or("", |s| s)) {
        Ok(f) => f,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e),
    };
    if p.get("sendInitialEvents").is_some_and(|v| v == "true") {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "sendInitialEvents is not supported by this server",
        );
    }
    let matches = {
        let ns = ns.clone();
        move |obj: &Value| {
            ns.as_deref()
                .is_none_or(|n| obj["metadata"]["namespace"].as_str() == Some(n))
                && labels.matches(obj)
                && fields.matches(obj)
        }
    };
    let watch = p.get("watch").is_some_and(|w| w == "true" || w == "1");
    let (api_version, kind) = shared.0.lock().type_meta(r);
    if !watch {
        // Pages as the API server gives them (`limit`, then `continue` with the token of the
        // last page): every page carries the first page's resourceVersion, and a watch from
        // it replays whatever changed while the pages were read.
        let limit = p
            .get("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0);
        // The token names the last object served (not a position), so an object deleted
        // between pages does not shift one unserved into the part already read.
        let token = p.get("continue").filter(|c| !c.is_empty());
        let (token_rv, after) = match token.map(|t| t.split_once(':')) {
            None => (None, None),
            Some(Some((rv, last))) => match rv.parse::<u64>() {
                Ok(rv) => (Some(rv), Some(last.to_string())),
                Err(_) => {
                    return status(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "continue key is not valid",
                    );
                }
            },
            Some(None) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid",
                );
            }
        };
        let s = shared.0.lock();
        let from = match after {
            Some(last) => std::ops::Bound::Excluded((r, last)),
            None => std::ops::Bound::Included((r, String::new())),
        };
        let all = s
            .objects
            .range((from, std::ops::Bound::Unbounded))
            .take_while(|((res, _), _)| *res == r)
            .filter(|(_, o)| matches(o));
        let items: Vec<(Value, String)> = match limit {
            Some(n) => all
                .take(n + 1)
                .map(|((_, k), o)| (o.clone(), k.clone()))
                .collect(),
            None => all.map(|((_, k), o)| (o.clone(), k.clone())).collect(),
        };
        let rv = token_rv.unwrap_or(s.rv);
        drop(s);
        shared.0.lock().requests.push(format!("list {res}"));
        let (mut items, mut keys) = items.into_iter().unzip::<_, _, Vec<_>, Vec<_>>();
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let Some(n) = limit
            && items.len() > n
        {
            items.truncate(n);
            keys.truncate(n);
            meta["continue"] = json!(format!("{rv}:{}", keys[n - 1]));
        }
        return (
            [(header::CONTENT_TYPE, "application/json")],
            json!({"kind": format!("{kind}List"), "apiVersion": api_version,
                   "metadata": meta, "items": items})
            .to_string(),
        )
            .into_response();
    }
    let from: u64 = p
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = p
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (cap, start, compacted) = {
        let mut s = shared.0.lock();
        s.requests.push(format!("watch {res}"));
        (
            s.watch_cap,
            if from == 0 { s.rv } else { from },
            s.compacted,
        )
    };
    let open_for = timeout.map_or(cap, |t| t.min(cap));
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let line = |v: Value| Ok(bytes::Bytes::from(format!("{v}\n")));
    tokio::spawn(async move {
        if from != 0 && from < compacted {
            let _ = tx
                .send(line(
                    json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                    "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
                    "message": format!("too old resource version: {from} ({compacted})")}}),
                ))
                .await;
            return;
        }
        let mut notified = shared.1.subscribe();
        let deadline = tokio::time::Instant::now() + open_for;
        let mut last = start;
        let mut compacted_at_start = compacted;
        loop {
            let (events, now_compacted) = {
                let s = shared.0.lock();
                let ev: Vec<Event> = s
                    .log
                    .iter()
                    .filter(|e| e.rv > last && e.res == r)
                    .cloned()
                    .collect();
                (ev, s.compacted)
            };
            if now_compacted != compacted_at_start {
                // The log was compacted under this watch: end it, the client resumes.
                compacted_at_start = now_compacted;
                let _ = compacted_at_start;
                return;
            }
            for e in events {
                last = e.rv;
                if matches(&e.object)
                    && tx
                        .send(line(json!({"type": e.kind, "object": e.object})))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            tokio::select! {
                _ = notified.recv() => continue,
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = tx.send(line(json!({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": api_version,
                        "metadata": {"resourceVersion": last.to_string()}}}))).await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Value {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut c = std::net::TcpStream::connect(host).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }

    /// Pages as the API server gives them; an object deleted between pages does not make
    /// the next one skip an object not yet served.
    #[test]
    fn lists_come_in_pages_that_survive_a_deletion() {
        let k = FakeKube::start();
        for i in 0..5 {
            k.apply(json!({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": format!("p{i}"), "namespace": "ns"}}));
        }
        let names = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let base = format!("{}/api/v1/namespaces/ns/pods?limit=2", k.url());
        let first = get(&base);
        assert_eq!(names(&first), ["p0", "p1"]);
        let token = first["metadata"]["continue"].as_str().unwrap().to_string();
        k.delete(Res::Pods, "ns/p0");
        let second = get(&format!("{base}&continue={token}"));
        assert_eq!(names(&second), ["p2", "p3"]);
        assert_eq!(
            second["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );
        let token = second["metadata"]["continue"].as_str().unwrap().to_string();
        let last = get(&format!("{base}&continue={token}"));
        assert_eq!(names(&last), ["p4"]);
        assert!(last["metadata"].get("continue").is_none());
        assert_eq!(names(&get(&format!("{}/api/v1/pods", k.url()))).len(), 4);
    }
}
