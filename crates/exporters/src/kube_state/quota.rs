//! ResourceQuotas and LimitRanges: kube-state-metrics' `kube_resourcequota*` and
//! `kube_limitrange*` families, from its internal/store/resourcequota.go and limitrange.go.
//! The kubernetes-mixin's quota alerts and resource dashboards read
//! `kube_resourcequota{type="hard"|"used"}`.

use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};

use super::families::{Options, created, s, with_annotations};
use super::text::{Family, Quantity, Rendered, gauge};

pub const QUOTA: [Family; 3] = [
    gauge(
        "kube_resourcequota_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_resourcequota",
        "[STABLE] Information about resource quota.",
    ),
    gauge(
        "kube_resourcequota_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn quota_families() -> Vec<Family> {
    with_annotations(&QUOTA, "kube_resourcequota_annotations")
}

pub fn render_quota(q: &ResourceQuota, o: &Options) -> Rendered {
    let fams = quota_families();
    let mut r = Rendered::new(fams.len());
    let m = &q.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("resourcequota", s(&m.name)),
    ];
    if let Some(t) = created(m) {
        r.add(&fams[0], 0, &base, t);
    }
    // The status, not the spec: what the quota controller has accepted and counted.
    let st = q.status.as_ref();
    for (kind, list) in [
        ("hard", st.and_then(|x| x.hard.as_ref())),
        ("used", st.and_then(|x| x.used.as_ref())),
    ] {
        for (res, qty) in list.into_iter().flatten() {
            if let Some(v) = Quantity::parse(&qty.0).map(|q| q.ksm_float()) {
                let mut l = base.to_vec();
                l.extend([("resource", res.as_str()), ("type", kind)]);
                r.add(&fams[1], 1, &l, v);
            }
        }
    }
    if let Some(extra) = o.labels("resourcequotas", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("resourcequotas", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

pub const LIMITRANGE: [Family; 2] = [
    gauge("kube_limitrange", "[STABLE] Information about limit range."),
    gauge(
        "kube_limitrange_created",
        "[STABLE] Unix creation timestamp",
    ),
];

pub fn limitrange_families() -> Vec<Family> {
    LIMITRANGE.to_vec()
}

/// One series per constraint of each item, in kube-state-metrics' order of the constraint
/// kinds; resource names as written (not sanitized), constraint names in the API's case.
pub fn render_limitrange(lr: &LimitRange, _o: &Options) -> Rendered {
    let fams = limitrange_families();
    let mut r = Rendered::new(fams.len());
    let m = &lr.metadata;
    let base = [("namespace", s(&m.namespace)), ("limitrange", s(&m.name))];
    for item in lr.spec.iter().flat_map(|x| x.limits.iter()) {
        for (constraint, list) in [
            ("min", &item.min),
            ("max", &item.max),
            ("default", &item.default),
            ("defaultRequest", &item.default_request),
            ("maxLimitRequestRatio", &item.max_limit_request_ratio),
        ] {
            for (res, qty) in list.iter().flatten() {
                if let Some(v) = Quantity::parse(&qty.0).map(|q| q.ksm_float()) {
                    let mut l = base.to_vec();
                    l.extend([
                        ("resource", res.as_str()),
                        ("type", item.type_.as_str()),
                        ("constraint", constraint),
                    ]);
                    r.add(&fams[0], 0, &l, v);
                }
            }
        }
    }
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    r
}
