//! `kubernetes_sd_configs`: objects listed and watched through the kube crate's watcher (list,
//! then watch; on a dropped watch it resumes, on `410 Gone` it relists, with backoff), kept in
//! stores, and turned into one target group per object with the `__meta_kubernetes_*` labels
//! of Prometheus (`docs/kubernetes-sd.md` is the specification followed, role by role).
//!
//! After each batch of events every group of the role is rebuilt from the stores; when any group
//! changed or disappeared the current set goes to the manager. Rebuilding everything keeps joins
//! (endpoints with their pods and service, pods with their node) current without per-edge
//! bookkeeping; it costs a pass over the role's objects per batch of events.

mod client;
pub mod endpoints;
pub mod ingress;
pub mod meta;
pub mod node;
pub mod pod;
pub mod service;
pub mod slim;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use vigil_config::{KubernetesRole, KubernetesSdConfig};

use crate::{TargetGroup, metrics};
use slim::{Job, Pod, ReplicaSet};

/// Objects of one kind, by `<namespace>/<name>`, with the watcher that reported each.
pub struct Store<T> {
    objects: HashMap<String, (usize, T)>,
    /// Objects listed since a watcher's `Init`, swapped in at its `InitDone`.
    pending: HashMap<usize, HashMap<String, T>>,
}

impl<T> Default for Store<T> {
    fn default() -> Self {
        Store {
            objects: HashMap::new(),
            pending: HashMap::new(),
        }
    }
}

impl<T: Resource> Store<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.objects.get(key).map(|(_, o)| o)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.objects.values().map(|(_, o)| o)
    }

    /// Apply one watcher event. Managed fields (the API server's record of who set what, often
    /// the largest part of an object) are dropped: no label reads them.
    pub fn apply(&mut self, watcher_id: usize, ev: watcher::Event<T>) {
        let key_of = |o: &T| meta::key(o.meta());
        match ev {
            watcher::Event::Apply(mut o) => {
                o.meta_mut().managed_fields = None;
                self.objects.insert(key_of(&o), (watcher_id, o));
            }
            watcher::Event::Delete(o) => {
                self.objects.remove(&key_of(&o));
            }
            watcher::Event::Init => {
                self.pending.insert(watcher_id, HashMap::new());
            }
            watcher::Event::InitApply(mut o) => {
                o.meta_mut().managed_fields = None;
                self.pending
                    .entry(watcher_id)
                    .or_default()
                    .insert(key_of(&o), o);
            }
            watcher::Event::InitDone => {
                // A relist replaces everything this watcher reported: objects deleted while
                // the watch was down disappear here.
                let fresh = self.pending.remove(&watcher_id).unwrap_or_default();
                self.objects.retain(|_, (w, _)| *w != watcher_id);
                for (k, o) in fresh {
                    self.objects.insert(k, (watcher_id, o));
                }
            }
        }
    }
}

/// Every store a role may join against.
#[derive(Default)]
pub struct Stores {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub nodes: Store<Node>,
    pub endpoints: Store<Endpoints>,
    pub slices: Store<EndpointSlice>,
    pub ingresses: Store<Ingress>,
    /// For `attach_metadata: {namespace: true}`.
    pub namespaces: Store<Namespace>,
    /// For `attach_metadata: {deployment: true}`.
    pub replicasets: Store<ReplicaSet>,
    /// For `attach_metadata: {cronjob: true}`.
    pub jobs: Store<Job>,
}

/// A watcher's event, tagged with the watcher (objects are large: boxed).
enum Ev {
    Pod(usize, Box<watcher::Event<Pod>>),
    Service(usize, Box<watcher::Event<Service>>),
    Node(usize, Box<watcher::Event<Node>>),
    Endpoints(usize, Box<watcher::Event<Endpoints>>),
    Slice(usize, Box<watcher::Event<EndpointSlice>>),
    Ingress(usize, Box<watcher::Event<Ingress>>),
    Namespace(usize, Box<watcher::Event<Namespace>>),
    ReplicaSet(usize, Box<watcher::Event<ReplicaSet>>),
    Job(usize, Box<watcher::Event<Job>>),
}

/// The namespaces to watch; empty means all, through the cluster-wide paths.
fn namespaces(cfg: &KubernetesSdConfig) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(ns) = &cfg.namespaces {
        out.extend(ns.names.iter().cloned());
        if ns.own_namespace {
            match std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            {
                Ok(n) => out.push(n),
                Err(e) => tracing::error!(error = %e, "kubernetes_sd: cannot read own namespace"),
            }
        }
    }
    out
}

/// The watcher configuration for objects of `role`: the config's selectors for it.
fn watch_config(cfg: &KubernetesSdConfig, role: KubernetesRole) -> watcher::Config {
    let mut w = watcher::Config::default();
    for s in cfg.selectors.iter().filter(|s| s.role == role) {
        if let Some(l) = &s.label {
            w = w.labels(l);
        }
        if let Some(f) = &s.field {
            w = w.fields(f);
        }
    }
    w
}

/// Starts the watchers of one SD config, all feeding one channel.
struct Spawner<'a> {
    client: &'a kube::Client,
    cfg: &'a KubernetesSdConfig,
    tx: mpsc::Sender<Ev>,
    next_id: usize,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    health: crate::health::Reporter,
}

impl Spawner<'_> {
    /// One `Api` per configured namespace, or one cluster-wide.
    fn namespaced_apis<K>(&self) -> Vec<Api<K>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        let nss = namespaces(self.cfg);
        if nss.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            nss.iter()
                .map(|n| Api::namespaced(self.client.clone(), n))
                .collect()
        }
    }

    /// Watch namespaced objects `K` (one watcher per configured namespace, or one
    /// cluster-wide) with the config's selectors for `role`.
    fn namespaced<K>(&mut self, role: KubernetesRole, wrap: fn(usize, Box<watcher::Event<K>>) -> Ev)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
        K::DynamicType: Default,
    {
        for api in self.namespaced_apis() {
            self.spawn(api, role, wrap);
        }
    }

    /// Nodes are cluster-scoped: one watcher.
    fn nodes(&mut self) {
        let api: Api<Node> = Api::all(self.client.clone());
        self.spawn(api, KubernetesRole::Node, Ev::Node);
    }

    /// Namespaces are cluster-scoped: one watcher over all of them (the config's selectors
    /// are for roles, none of which is `namespace`), whatever `namespaces:` lists, as only
    /// the namespaces of discovered objects are looked up.
    fn namespace_objects(&mut self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        self.watch(api, "namespace", watcher::Config::default(), Ev::Namespace);
    }

    /// Controllers a pod's labels are read through (`attach_metadata` `deployment` and
    /// `cronjob`): in the configured namespaces, with no selector (the config's selectors are
    /// for roles; filtering these could only drop labels).
    fn controllers<K>(&mut self, what: &'static str, wrap: fn(usize, Box<watcher::Event<K>>) -> Ev)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
        K::DynamicType: Default,
    {
        for api in self.namespaced_apis() {
            self.watch(api, what, watcher::Config::default(), wrap);
        }
    }

    /// Watch the objects of `role` with the config's selectors for it.
    fn spawn<K>(
        &mut self,
        api: Api<K>,
        role: KubernetesRole,
        wrap: fn(usize, Box<watcher::Event<K>>) -> Ev,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let config = watch_config(self.cfg, role);
        self.watch(api, role.as_str(), config, wrap);
    }

    /// Start one watcher, its events tagged with a new id and counted under `what`.
    fn watch<K>(
        &mut self,
        api: Api<K>,
        what: &'static str,
        config: watcher::Config,
        wrap: fn(usize, Box<watcher::Event<K>>) -> Ev,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let id = self.next_id;
        self.next_id += 1;
        // A failure is reported by the resource's path (`/api/v1/namespaces/x/pods`), so one
        // namespace refused is told apart from another that works.
        let part = api.resource_url().to_string();
        self.tasks.push(tokio::spawn(forward(
            watcher(api, config),
            id,
            what,
            self.tx.clone(),
            wrap,
            (self.health.clone(), part),
        )));
    }
}

async fn forward<K, S>(
    stream: S,
    id: usize,
    role: &'static str,
    tx: mpsc::Sender<Ev>,
    wrap: fn(usize, Box<watcher::Event<K>>) -> Ev,
    (health, part): (crate::health::Reporter, String),
) where
    K: Clone + Send + 'static,
    S: futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    // Errors (API down, 410, decode failures) are retried with backoff; the last known
    // objects stay in the stores meanwhile.
    let mut stream = std::pin::pin!(stream.default_backoff());
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                health.ok(&part);
                metrics::KUBERNETES_EVENTS
                    .get_or_create(&vec![
                        ("role".to_string(), role.to_string()),
                        ("event".to_string(), event_name(&ev).to_string()),
                    ])
                    .inc();
                if tx.send(wrap(id, Box::new(ev))).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                metrics::KUBERNETES_FAILURES.inc();
                tracing::warn!(role, error = %e, "kubernetes_sd: watch failed; keeping the last known objects and retrying");
                // A watch that resumes after a failure sends nothing until an object
                // changes, so the report lapses unless a retry fails again: kube's backoff
                // waits at most about 60 s (30 s with up to as much again of jitter), and a
                // try may take a 30 s connect timeout to fail.
                health.fail_for(
                    &part,
                    format!("watch failed, retrying: {e}"),
                    Duration::from_secs(180),
                );
            }
        }
    }
}

fn event_name<K>(ev: &watcher::Event<K>) -> &'static str {
    match ev {
        watcher::Event::Apply(_) | watcher::Event::InitApply(_) => "add",
        watcher::Event::Delete(_) => "delete",
        watcher::Event::Init | watcher::Event::InitDone => "relist",
    }
}

/// Every group of the role from the current stores, by source. A node without addresses
/// yields nothing (its earlier group, if any, is kept, as Prometheus).
pub fn render(cfg: &KubernetesSdConfig, st: &Stores) -> Vec<TargetGroup> {
    let mut groups = render_role(cfg, st);
    if attaches_namespace(cfg) {
        for g in &mut groups {
            add_namespace_labels(g, st);
        }
    }
    groups
}

/// Whether the config attaches namespace metadata, for a role that has a namespace.
fn attaches_namespace(cfg: &KubernetesSdConfig) -> bool {
    cfg.attach_metadata.namespace && cfg.role != KubernetesRole::Node
}

/// `__meta_kubernetes_namespace_label_*`, `_labelpresent_*`, `_annotation_*` and
/// `_annotationpresent_*` of the group's namespace, on the group (Prometheus 3.6's
/// `attach_metadata.namespace`); nothing while the namespace is not known.
fn add_namespace_labels(g: &mut TargetGroup, st: &Stores) {
    let Some(ns) = g
        .labels
        .get("__meta_kubernetes_namespace")
        .and_then(|n| st.namespaces.get(n))
    else {
        return;
    };
    let mut set = meta::Set::default();
    meta::metadata_pairs(&mut set, "namespace", &ns.metadata);
    if set.0.is_empty() {
        return;
    }
    let mut b = g.labels.builder();
    for (k, v) in set.0 {
        b.set(k, v);
    }
    g.labels = b.build();
}

/// Whether the role's targets carry pod labels (and so what `attach_metadata` adds to them).
fn has_pods(role: KubernetesRole) -> bool {
    matches!(
        role,
        KubernetesRole::Pod | KubernetesRole::Endpoints | KubernetesRole::EndpointSlice
    )
}

/// The stores `attach_metadata` `deployment`, `job` and `cronjob` read pods' owners from.
fn owners<'a>(cfg: &KubernetesSdConfig, st: &'a Stores) -> pod::Owners<'a> {
    let a = &cfg.attach_metadata;
    pod::Owners {
        replicasets: a.deployment.then_some(&st.replicasets),
        job: a.job,
        jobs: a.cronjob.then_some(&st.jobs),
    }
}

fn render_role(cfg: &KubernetesSdConfig, st: &Stores) -> Vec<TargetGroup> {
    let attach = cfg.attach_metadata.node;
    let owners = owners(cfg, st);
    match cfg.role {
        KubernetesRole::Pod => st
            .pods
            .values()
            .map(|p| {
                let node = attach
                    .then(|| p.spec.as_ref().and_then(|s| s.node_name.as_deref()))
                    .flatten()
                    .and_then(|n| st.nodes.get(n));
                pod::group(p, node, &owners)
            })
            .collect(),
        KubernetesRole::Service => st.services.values().map(service::group).collect(),
        KubernetesRole::Node => st.nodes.values().filter_map(node::group).collect(),
        KubernetesRole::Ingress => st.ingresses.values().map(ingress::group).collect(),
        KubernetesRole::Endpoints => st
            .endpoints
            .values()
            .map(|e| endpoints::endpoints_group(e, st, attach, owners))
            .collect(),
        KubernetesRole::EndpointSlice => st
            .slices
            .values()
            .map(|e| endpoints::endpointslice_group(e, st, attach, owners))
            .collect(),
    }
}

/// Run one `kubernetes_sd_config`, sending changed groups to `tx` until it is dropped.
pub async fn run(
    cfg: KubernetesSdConfig,
    tx: mpsc::Sender<Vec<TargetGroup>>,
    health: crate::health::Reporter,
) {
    let client = loop {
        match client::build(&cfg).await {
            Ok(c) => {
                health.ok("client");
                break c;
            }
            Err(e) => {
                metrics::KUBERNETES_FAILURES.inc();
                tracing::error!(error = %e, "kubernetes_sd: cannot create the client; retrying in 30s");
                health.fail(
                    "client",
                    format!("cannot create the client, retrying every 30s: {e}"),
                );
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    };
    let (etx, mut erx) = mpsc::channel::<Ev>(1024);
    let attach = cfg.attach_metadata.node;
    let mut sp = Spawner {
        client: &client,
        cfg: &cfg,
        tx: etx,
        next_id: 0,
        tasks: Vec::new(),
        health,
    };
    use KubernetesRole as R;
    match cfg.role {
        R::Pod => sp.namespaced(R::Pod, Ev::Pod),
        R::Service => sp.namespaced(R::Service, Ev::Service),
        R::Node => sp.nodes(),
        R::Ingress => sp.namespaced(R::Ingress, Ev::Ingress),
        R::Endpoints | R::EndpointSlice => {
            if cfg.role == R::Endpoints {
                sp.namespaced(R::Endpoints, Ev::Endpoints);
            } else {
                sp.namespaced(R::EndpointSlice, Ev::Slice);
            }
            sp.namespaced(R::Service, Ev::Service);
            sp.namespaced(R::Pod, Ev::Pod);
        }
    }
    if attach && has_pods(cfg.role) {
        sp.nodes();
    }
    if has_pods(cfg.role) && cfg.attach_metadata.deployment {
        sp.controllers("replicaset", Ev::ReplicaSet);
    }
    if has_pods(cfg.role) && cfg.attach_metadata.cronjob {
        sp.controllers("job", Ev::Job);
    }
    if attaches_namespace(&cfg) {
        sp.namespace_objects();
    }
    let tasks = std::mem::take(&mut sp.tasks);
    let watchers = sp.next_id;
    drop(sp);
    // Watchers stop when this task is aborted (the manager drops the job).
    struct AbortAll(Vec<tokio::task::JoinHandle<()>>);
    impl Drop for AbortAll {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
    let _guard = AbortAll(tasks);

    let mut st = Stores::default();
    let mut sent: BTreeMap<String, TargetGroup> = BTreeMap::new();
    // Nothing is rendered until every watcher has listed once, so joined labels (pods of
    // endpoints, nodes of pods) are complete in the first groups sent (as Prometheus waits
    // for its informers' caches to sync).
    let mut synced: std::collections::HashSet<usize> = Default::default();
    while let Some(first) = erx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = erx.try_recv() {
            batch.push(more);
        }
        for ev in batch {
            if let Some(w) = ev.init_done() {
                synced.insert(w);
            }
            apply(&mut st, ev);
        }
        if synced.len() < watchers {
            continue;
        }
        // Empty groups (a pod without an IP) count as absent, so they are not re-sent.
        let now: BTreeMap<String, TargetGroup> = render(&cfg, &st)
            .into_iter()
            .filter(|g| !(g.targets.is_empty() && g.labels.is_empty()))
            .map(|g| (g.source.clone(), g))
            .collect();
        let mut changed = Vec::new();
        for (src, g) in &now {
            if sent.get(src) != Some(g) {
                changed.push(g.clone());
            }
        }
        for src in sent.keys() {
            if !now.contains_key(src) {
                let keep_node =
                    cfg.role == R::Node && st.nodes.get(src.trim_start_matches("node/")).is_some();
                if !keep_node {
                    changed.push(TargetGroup {
                        source: src.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        if changed.is_empty() {
            continue;
        }
        for g in &changed {
            if g.targets.is_empty() && g.labels.is_empty() {
                sent.remove(&g.source);
            } else {
                sent.insert(g.source.clone(), g.clone());
            }
        }
        // The manager takes a provider's whole list each time; the scrape side diffs targets,
        // so only changed targets start or stop loops.
        if tx.send(sent.values().cloned().collect()).await.is_err() {
            return;
        }
    }
}

impl Ev {
    /// The watcher whose initial (re)list this event completes.
    fn init_done(&self) -> Option<usize> {
        let done = |w: usize, d: bool| d.then_some(w);
        match self {
            Ev::Pod(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Service(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Node(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Endpoints(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Slice(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Ingress(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Namespace(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::ReplicaSet(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
            Ev::Job(w, e) => done(*w, matches!(**e, watcher::Event::InitDone)),
        }
    }
}

fn apply(st: &mut Stores, ev: Ev) {
    match ev {
        Ev::Pod(w, e) => st.pods.apply(w, *e),
        Ev::Service(w, e) => st.services.apply(w, *e),
        Ev::Node(w, e) => st.nodes.apply(w, *e),
        Ev::Endpoints(w, e) => st.endpoints.apply(w, *e),
        Ev::Slice(w, e) => st.slices.apply(w, *e),
        Ev::Ingress(w, e) => st.ingresses.apply(w, *e),
        Ev::Namespace(w, e) => st.namespaces.apply(w, *e),
        Ev::ReplicaSet(w, e) => st.replicasets.apply(w, *e),
        Ev::Job(w, e) => st.jobs.apply(w, *e),
    }
}
