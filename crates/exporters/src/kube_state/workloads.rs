//! ReplicationControllers and PodDisruptionBudgets: kube-state-metrics'
//! `kube_replicationcontroller_*` and `kube_poddisruptionbudget_*` families, from its
//! internal/store/replicationcontroller.go and poddisruptionbudget.go.

use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::families::{Options, created, owner_series, s, with_annotations};
use super::text::{Family, Rendered, gauge};

pub const REPLICATIONCONTROLLER: [Family; 9] = [
    gauge(
        "kube_replicationcontroller_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_replicationcontroller_status_replicas",
        "[STABLE] The number of replicas per ReplicationController.",
    ),
    gauge(
        "kube_replicationcontroller_status_fully_labeled_replicas",
        "[STABLE] The number of fully labeled replicas per ReplicationController.",
    ),
    gauge(
        "kube_replicationcontroller_status_ready_replicas",
        "[STABLE] The number of ready replicas per ReplicationController.",
    ),
    gauge(
        "kube_replicationcontroller_status_available_replicas",
        "[STABLE] The number of available replicas per ReplicationController.",
    ),
    gauge(
        "kube_replicationcontroller_status_observed_generation",
        "[STABLE] The generation observed by the ReplicationController controller.",
    ),
    gauge(
        "kube_replicationcontroller_spec_replicas",
        "[STABLE] Number of desired pods for a ReplicationController.",
    ),
    gauge(
        "kube_replicationcontroller_metadata_generation",
        "[STABLE] Sequence number representing a specific generation of the desired state.",
    ),
    gauge(
        "kube_replicationcontroller_owner",
        "Information about the ReplicationController's owner.",
    ),
];

pub fn replicationcontroller_families() -> Vec<Family> {
    REPLICATIONCONTROLLER.to_vec()
}

pub fn render_replicationcontroller(rc: &ReplicationController, _o: &Options) -> Rendered {
    let fams = replicationcontroller_families();
    let mut r = Rendered::new(fams.len());
    let m = &rc.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("replicationcontroller", s(&m.name)),
    ];
    if let Some(t) = created(m) {
        r.add(&fams[0], 0, &base, t);
    }
    let st = rc.status.as_ref();
    let status = [
        st.map_or(0, |x| x.replicas) as f64,
        st.and_then(|x| x.fully_labeled_replicas).unwrap_or(0) as f64,
        st.and_then(|x| x.ready_replicas).unwrap_or(0) as f64,
        st.and_then(|x| x.available_replicas).unwrap_or(0) as f64,
        st.and_then(|x| x.observed_generation).unwrap_or(0) as f64,
    ];
    for (i, v) in status.into_iter().enumerate() {
        r.add(&fams[i + 1], i + 1, &base, v);
    }
    if let Some(n) = rc.spec.as_ref().and_then(|x| x.replicas) {
        r.add(&fams[6], 6, &base, n as f64);
    }
    r.add(&fams[7], 7, &base, m.generation.unwrap_or(0) as f64);
    owner_series(&mut r, &fams[8], 8, &base, m);
    r
}

pub const PDB: [Family; 8] = [
    gauge(
        "kube_poddisruptionbudget_labels",
        "Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_poddisruptionbudget_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_poddisruptionbudget_status_current_healthy",
        "[STABLE] Current number of healthy pods",
    ),
    gauge(
        "kube_poddisruptionbudget_status_desired_healthy",
        "[STABLE] Minimum desired number of healthy pods",
    ),
    gauge(
        "kube_poddisruptionbudget_status_pod_disruptions_allowed",
        "[STABLE] Number of pod disruptions that are currently allowed",
    ),
    gauge(
        "kube_poddisruptionbudget_status_expected_pods",
        "[STABLE] Total number of pods counted by this disruption budget",
    ),
    gauge(
        "kube_poddisruptionbudget_status_observed_generation",
        "[STABLE] Most recent generation observed when updating this PDB status",
    ),
    gauge(
        "kube_poddisruptionbudget_deletion_timestamp",
        "Unix deletion timestamp",
    ),
];

pub fn pdb_families() -> Vec<Family> {
    with_annotations(&PDB, "kube_poddisruptionbudget_annotations")
}

/// The status counts, 0 while the disruption controller has not filled them in.
pub fn render_pdb(p: &PodDisruptionBudget, o: &Options) -> Rendered {
    let fams = pdb_families();
    let mut r = Rendered::new(fams.len());
    let m = &p.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("poddisruptionbudget", s(&m.name)),
    ];
    if let Some(extra) = o.labels("poddisruptionbudgets", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    let st = p.status.as_ref();
    let status = [
        st.map_or(0, |x| x.current_healthy) as f64,
        st.map_or(0, |x| x.desired_healthy) as f64,
        st.map_or(0, |x| x.disruptions_allowed) as f64,
        st.map_or(0, |x| x.expected_pods) as f64,
        st.and_then(|x| x.observed_generation).unwrap_or(0) as f64,
    ];
    for (i, v) in status.into_iter().enumerate() {
        r.add(&fams[i + 2], i + 2, &base, v);
    }
    if let Some(t) = m.deletion_timestamp.as_ref() {
        r.add(&fams[7], 7, &base, t.0.as_second() as f64);
    }
    if let Some(extra) = o.annotations("poddisruptionbudgets", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}
