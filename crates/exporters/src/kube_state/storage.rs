//! PersistentVolumeClaims, PersistentVolumes, StorageClasses and VolumeAttachments:
//! kube-state-metrics' `kube_persistentvolumeclaim_*`, `kube_persistentvolume_*`,
//! `kube_storageclass_*` and `kube_volumeattachment_*` families, from its
//! internal/store/persistentvolumeclaim.go, persistentvolume.go, storageclass.go and
//! volumeattachment.go. The kubernetes-mixin's volume alerts read the claims' access modes and
//! labels and the volumes' phase.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{StorageClass, VolumeAttachment};

use super::families::{Options, created, s, typed_condition_series, with_annotations};
use super::text::{Family, Quantity, Rendered, gauge, label_name};

pub const PVC: [Family; 8] = [
    gauge(
        "kube_persistentvolumeclaim_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_persistentvolumeclaim_info",
        "[STABLE] Information about persistent volume claim.",
    ),
    gauge(
        "kube_persistentvolumeclaim_status_phase",
        "[STABLE] The phase the persistent volume claim is currently in.",
    ),
    gauge(
        "kube_persistentvolumeclaim_resource_requests_storage_bytes",
        "[STABLE] The capacity of storage requested by the persistent volume claim.",
    ),
    gauge(
        "kube_persistentvolumeclaim_access_mode",
        "[STABLE] The access mode(s) specified by the persistent volume claim.",
    ),
    gauge(
        "kube_persistentvolumeclaim_status_condition",
        "Information about status of different conditions of persistent volume claim.",
    ),
    gauge(
        "kube_persistentvolumeclaim_created",
        "Unix creation timestamp",
    ),
    gauge(
        "kube_persistentvolumeclaim_deletion_timestamp",
        "Unix deletion timestamp",
    ),
];

pub fn pvc_families() -> Vec<Family> {
    with_annotations(&PVC, "kube_persistentvolumeclaim_annotations")
}

/// A phase family: one series per phase kube-state-metrics lists, 1 for the current one; none
/// when the object has no phase yet.
fn phases(
    r: &mut Rendered,
    fam: &Family,
    i: usize,
    base: &[(&str, &str)],
    phase: &str,
    all: &[&str],
) {
    if phase.is_empty() {
        return;
    }
    for p in all {
        let mut l = base.to_vec();
        l.push(("phase", p));
        r.add(fam, i, &l, if *p == phase { 1.0 } else { 0.0 });
    }
}

pub fn render_pvc(c: &PersistentVolumeClaim, o: &Options) -> Rendered {
    let fams = pvc_families();
    let mut r = Rendered::new(fams.len());
    let m = &c.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("persistentvolumeclaim", s(&m.name)),
    ];
    if let Some(extra) = o.labels("persistentvolumeclaims", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    let spec = c.spec.as_ref();
    // The beta annotation wins over the field, as the API server once read it.
    let class = m
        .annotations
        .as_ref()
        .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"))
        .map(String::as_str)
        .or_else(|| spec.and_then(|x| x.storage_class_name.as_deref()))
        .unwrap_or("<none>");
    let mut l = base.to_vec();
    l.extend([
        ("storageclass", class),
        ("volumename", spec.map_or("", |x| s(&x.volume_name))),
        ("volumemode", spec.map_or("", |x| s(&x.volume_mode))),
    ]);
    r.add(&fams[1], 1, &l, 1.0);
    let st = c.status.as_ref();
    phases(
        &mut r,
        &fams[2],
        2,
        &base,
        st.map_or("", |x| s(&x.phase)),
        &["Lost", "Bound", "Pending"],
    );
    if let Some(q) = spec
        .and_then(|x| x.resources.as_ref())
        .and_then(|x| x.requests.as_ref())
        .and_then(|x| x.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
    {
        r.add(&fams[3], 3, &base, q.value());
    }
    for mode in spec
        .and_then(|x| x.access_modes.as_ref())
        .into_iter()
        .flatten()
    {
        let mut l = base.to_vec();
        l.push(("access_mode", mode.as_str()));
        r.add(&fams[4], 4, &l, 1.0);
    }
    let conds = st.and_then(|x| x.conditions.as_ref()).into_iter().flatten();
    typed_condition_series(
        &mut r,
        &fams[5],
        5,
        &base,
        conds.map(|c| (c.type_.as_str(), c.status.as_str())),
    );
    if let Some(t) = created(m) {
        r.add(&fams[6], 6, &base, t);
    }
    if let Some(t) = m.deletion_timestamp.as_ref() {
        r.add(&fams[7], 7, &base, t.0.as_second() as f64);
    }
    if let Some(extra) = o.annotations("persistentvolumeclaims", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

pub const PV: [Family; 8] = [
    gauge(
        "kube_persistentvolume_claim_ref",
        "[STABLE] Information about the Persistent Volume Claim Reference.",
    ),
    gauge(
        "kube_persistentvolume_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_persistentvolume_status_phase",
        "[STABLE] The phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    gauge(
        "kube_persistentvolume_info",
        "[STABLE] Information about persistentvolume.",
    ),
    gauge(
        "kube_persistentvolume_capacity_bytes",
        "[STABLE] Persistentvolume capacity in bytes.",
    ),
    gauge("kube_persistentvolume_created", "Unix creation timestamp"),
    gauge(
        "kube_persistentvolume_deletion_timestamp",
        "Unix deletion timestamp",
    ),
    gauge(
        "kube_persistentvolume_volume_mode",
        "Volume Mode information for the PersistentVolume.",
    ),
];

pub fn pv_families() -> Vec<Family> {
    with_annotations(&PV, "kube_persistentvolume_annotations")
}

pub fn render_pv(v: &PersistentVolume, o: &Options) -> Rendered {
    let fams = pv_families();
    let mut r = Rendered::new(fams.len());
    let m = &v.metadata;
    let base = [("persistentvolume", s(&m.name))];
    let spec = v.spec.as_ref();
    if let Some(c) = spec.and_then(|x| x.claim_ref.as_ref()) {
        let mut l = base.to_vec();
        l.extend([("name", s(&c.name)), ("claim_namespace", s(&c.namespace))]);
        r.add(&fams[0], 0, &l, 1.0);
    }
    if let Some(extra) = o.labels("persistentvolumes", m) {
        r.add_with(&fams[1], 1, &base, &extra, 1.0);
    }
    phases(
        &mut r,
        &fams[2],
        2,
        &base,
        v.status.as_ref().map_or("", |x| s(&x.phase)),
        &["Pending", "Available", "Bound", "Released", "Failed"],
    );
    // The volume's source: only the first one set fills its labels, as kube-state-metrics
    // checks them in this order.
    let mut src: [String; 18] = Default::default();
    if let Some(sp) = spec {
        if let Some(g) = &sp.gce_persistent_disk {
            src[0] = g.pd_name.clone();
        } else if let Some(e) = &sp.aws_elastic_block_store {
            src[1] = e.volume_id.clone();
        } else if let Some(a) = &sp.azure_disk {
            src[2] = a.disk_name.clone();
        } else if let Some(fc) = &sp.fc {
            src[3] = fc.wwids.clone().unwrap_or_default().join(",");
            src[4] = fc.lun.map(|l| l.to_string()).unwrap_or_default();
            src[5] = fc.target_wwns.clone().unwrap_or_default().join(",");
        } else if let Some(i) = &sp.iscsi {
            src[6] = i.target_portal.clone();
            src[7] = i.iqn.clone();
            src[8] = i.lun.to_string();
            src[9] = i.initiator_name.clone().unwrap_or_default();
        } else if let Some(n) = &sp.nfs {
            src[10] = n.server.clone();
            src[11] = n.path.clone();
        } else if let Some(c) = &sp.csi {
            src[12] = c.driver.clone();
            src[13] = c.volume_handle.clone();
        } else if let Some(l) = &sp.local {
            src[14] = l.path.clone();
            src[15] = l.fs_type.clone().unwrap_or_default();
        } else if let Some(h) = &sp.host_path {
            src[16] = h.path.clone();
            src[17] = h.type_.clone().unwrap_or_default();
        }
    }
    let names = [
        "gce_persistent_disk_name",
        "ebs_volume_id",
        "azure_disk_name",
        "fc_wwids",
        "fc_lun",
        "fc_target_wwns",
        "iscsi_target_portal",
        "iscsi_iqn",
        "iscsi_lun",
        "iscsi_initiator_name",
        "nfs_server",
        "nfs_path",
        "csi_driver",
        "csi_volume_handle",
        "local_path",
        "local_fs",
        "host_path",
        "host_path_type",
    ];
    let mut l = base.to_vec();
    l.push((
        "storageclass",
        spec.map_or("", |x| s(&x.storage_class_name)),
    ));
    l.extend(names.iter().zip(src.iter()).map(|(k, v)| (*k, v.as_str())));
    l.push((
        "reclaim_policy",
        spec.map_or("", |x| s(&x.persistent_volume_reclaim_policy)),
    ));
    r.add(&fams[3], 3, &l, 1.0);
    let capacity = spec
        .and_then(|x| x.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))
        .map_or(0.0, |q| q.value());
    r.add(&fams[4], 4, &base, capacity);
    if let Some(t) = created(m) {
        r.add(&fams[5], 5, &base, t);
    }
    if let Some(t) = m.deletion_timestamp.as_ref() {
        r.add(&fams[6], 6, &base, t.0.as_second() as f64);
    }
    let mut l = base.to_vec();
    l.push((
        "volumemode",
        spec.and_then(|x| x.volume_mode.as_deref())
            .unwrap_or("Filesystem"),
    ));
    r.add(&fams[7], 7, &l, 1.0);
    if let Some(extra) = o.annotations("persistentvolumes", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

pub const STORAGECLASS: [Family; 3] = [
    gauge(
        "kube_storageclass_info",
        "[STABLE] Information about storageclass.",
    ),
    gauge(
        "kube_storageclass_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_storageclass_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn storageclass_families() -> Vec<Family> {
    with_annotations(&STORAGECLASS, "kube_storageclass_annotations")
}

pub fn render_storageclass(c: &StorageClass, o: &Options) -> Rendered {
    let fams = storageclass_families();
    let mut r = Rendered::new(fams.len());
    let m = &c.metadata;
    let base = [("storageclass", s(&m.name))];
    // Unset fields as the API server defaults them.
    let mut l = base.to_vec();
    l.extend([
        ("provisioner", c.provisioner.as_str()),
        (
            "reclaim_policy",
            c.reclaim_policy.as_deref().unwrap_or("Delete"),
        ),
        (
            "volume_binding_mode",
            c.volume_binding_mode.as_deref().unwrap_or("Immediate"),
        ),
    ]);
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    if let Some(extra) = o.labels("storageclasses", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("storageclasses", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

pub const VOLUMEATTACHMENT: [Family; 6] = [
    gauge(
        "kube_volumeattachment_labels",
        "Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_volumeattachment_info",
        "Information about volumeattachment.",
    ),
    gauge("kube_volumeattachment_created", "Unix creation timestamp"),
    gauge(
        "kube_volumeattachment_spec_source_persistentvolume",
        "PersistentVolume source reference.",
    ),
    // kube-state-metrics' help for this family repeats the info family's.
    gauge(
        "kube_volumeattachment_status_attached",
        "Information about volumeattachment.",
    ),
    gauge(
        "kube_volumeattachment_status_attachment_metadata",
        "volumeattachment metadata.",
    ),
];

pub fn volumeattachment_families() -> Vec<Family> {
    VOLUMEATTACHMENT.to_vec()
}

/// Every key of `map` as a `prefix` label, sorted by key.
fn all_pairs(
    prefix: &str,
    map: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| (label_name(prefix, k), v.clone()))
        .collect()
}

/// kube-state-metrics writes every label of a VolumeAttachment, with or without an allowlist
/// (its families for this resource do not take one), and so does vigil.
pub fn render_volumeattachment(v: &VolumeAttachment, _o: &Options) -> Rendered {
    let fams = volumeattachment_families();
    let mut r = Rendered::new(fams.len());
    let m = &v.metadata;
    let base = [("volumeattachment", s(&m.name))];
    r.add_with(
        &fams[0],
        0,
        &base,
        &all_pairs("label_", m.labels.as_ref()),
        1.0,
    );
    let mut l = base.to_vec();
    l.extend([
        ("attacher", v.spec.attacher.as_str()),
        ("node", v.spec.node_name.as_str()),
    ]);
    r.add(&fams[1], 1, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[2], 2, &base, t);
    }
    if let Some(pv) = v.spec.source.persistent_volume_name.as_deref() {
        let mut l = base.to_vec();
        l.push(("volumename", pv));
        r.add(&fams[3], 3, &l, 1.0);
    }
    let st = v.status.as_ref();
    r.add(
        &fams[4],
        4,
        &base,
        if st.is_some_and(|x| x.attached) {
            1.0
        } else {
            0.0
        },
    );
    r.add_with(
        &fams[5],
        5,
        &base,
        &all_pairs("metadata_", st.and_then(|x| x.attachment_metadata.as_ref())),
        1.0,
    );
    r
}
