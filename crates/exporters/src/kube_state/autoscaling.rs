//! HorizontalPodAutoscalers (`autoscaling/v2`): kube-state-metrics' `kube_horizontalpodautoscaler_*`
//! families, from its internal/store/horizontalpodautoscaler.go. The kubernetes-mixin's
//! `KubeHpaReplicasMismatch` and `KubeHpaMaxedOut` read the replica families.

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, MetricSpec, MetricStatus, MetricTarget, MetricValueStatus,
};

use super::families::{Options, created, s, typed_condition_series, with_annotations};
use super::text::{Family, Quantity, Rendered, gauge};

pub const HPA: [Family; 12] = [
    gauge(
        "kube_horizontalpodautoscaler_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_info",
        "Information about this autoscaler.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_metadata_generation",
        "[STABLE] The generation observed by the HorizontalPodAutoscaler controller.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "[STABLE] Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "[STABLE] Lower limit for the number of pods that can be set by the autoscaler, default 1.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_spec_target_metric",
        "The metric specifications used by this autoscaler when calculating the desired replica count.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_status_target_metric",
        "The current metric status used by this autoscaler when calculating the desired replica count.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_status_current_replicas",
        "[STABLE] Current number of replicas of pods managed by this autoscaler.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "[STABLE] Desired number of replicas of pods managed by this autoscaler.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_status_condition",
        "[STABLE] The condition of this autoscaler.",
    ),
    gauge(
        "kube_horizontalpodautoscaler_created",
        "Unix creation timestamp",
    ),
    gauge(
        "kube_horizontalpodautoscaler_deletion_timestamp",
        "Unix deletion timestamp",
    ),
];

pub fn hpa_families() -> Vec<Family> {
    with_annotations(&HPA, "kube_horizontalpodautoscaler_annotations")
}

/// A metric's name and the source of its target (spec) or current value (status).
fn spec_metric(m: &MetricSpec) -> Option<(&str, &MetricTarget)> {
    match m.type_.as_str() {
        "Object" => m
            .object
            .as_ref()
            .map(|x| (x.metric.name.as_str(), &x.target)),
        "Pods" => m.pods.as_ref().map(|x| (x.metric.name.as_str(), &x.target)),
        "Resource" => m.resource.as_ref().map(|x| (x.name.as_str(), &x.target)),
        "ContainerResource" => m
            .container_resource
            .as_ref()
            .map(|x| (x.name.as_str(), &x.target)),
        "External" => m
            .external
            .as_ref()
            .map(|x| (x.metric.name.as_str(), &x.target)),
        _ => None,
    }
}

fn status_metric(m: &MetricStatus) -> Option<(&str, &MetricValueStatus)> {
    match m.type_.as_str() {
        "Object" => m
            .object
            .as_ref()
            .map(|x| (x.metric.name.as_str(), &x.current)),
        "Pods" => m
            .pods
            .as_ref()
            .map(|x| (x.metric.name.as_str(), &x.current)),
        "Resource" => m.resource.as_ref().map(|x| (x.name.as_str(), &x.current)),
        "ContainerResource" => m
            .container_resource
            .as_ref()
            .map(|x| (x.name.as_str(), &x.current)),
        "External" => m
            .external
            .as_ref()
            .map(|x| (x.metric.name.as_str(), &x.current)),
        _ => None,
    }
}

/// What a metric's target (spec) or current status gives: any of a value, an average value
/// and an average utilization.
struct Reading<'a> {
    value: Option<&'a str>,
    average: Option<&'a str>,
    utilization: Option<i32>,
}

impl<'a> From<&'a MetricTarget> for Reading<'a> {
    fn from(t: &'a MetricTarget) -> Self {
        Reading {
            value: t.value.as_ref().map(|q| q.0.as_str()),
            average: t.average_value.as_ref().map(|q| q.0.as_str()),
            utilization: t.average_utilization,
        }
    }
}

impl<'a> From<&'a MetricValueStatus> for Reading<'a> {
    fn from(c: &'a MetricValueStatus) -> Self {
        Reading {
            value: c.value.as_ref().map(|q| q.0.as_str()),
            average: c.average_value.as_ref().map(|q| q.0.as_str()),
            utilization: c.average_utilization,
        }
    }
}

/// One series per value the reading gives: `value`, `average`, `utilization`; none for a
/// field that is absent.
fn target_series(
    r: &mut Rendered,
    fam: &Family,
    i: usize,
    base: &[(&str, &str)],
    name: &str,
    read: Reading,
) {
    let mut add = |kind: &str, v: f64| {
        let mut l = base.to_vec();
        l.extend([("metric_name", name), ("metric_target_type", kind)]);
        r.add(fam, i, &l, v);
    };
    if let Some(v) = read.value.and_then(Quantity::parse).map(|q| q.ksm_float()) {
        add("value", v);
    }
    if let Some(v) = read
        .average
        .and_then(Quantity::parse)
        .map(|q| q.ksm_float())
    {
        add("average", v);
    }
    if let Some(u) = read.utilization {
        add("utilization", u as f64);
    }
}

pub fn render_hpa(h: &HorizontalPodAutoscaler, o: &Options) -> Rendered {
    let fams = hpa_families();
    let mut r = Rendered::new(fams.len());
    let m = &h.metadata;
    let base = [
        ("namespace", s(&m.namespace)),
        ("horizontalpodautoscaler", s(&m.name)),
    ];
    if let Some(extra) = o.labels("horizontalpodautoscalers", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    let spec = h.spec.as_ref();
    let target = spec.map(|x| &x.scale_target_ref);
    let api = target.and_then(|t| t.api_version.as_deref()).unwrap_or("");
    let mut l = base.to_vec();
    if !api.is_empty() {
        l.push(("scaletargetref_api_version", api));
    }
    l.extend([
        (
            "scaletargetref_kind",
            target.map_or("", |t| t.kind.as_str()),
        ),
        (
            "scaletargetref_name",
            target.map_or("", |t| t.name.as_str()),
        ),
    ]);
    r.add(&fams[1], 1, &l, 1.0);
    r.add(&fams[2], 2, &base, m.generation.unwrap_or(0) as f64);
    if let Some(sp) = spec {
        r.add(&fams[3], 3, &base, sp.max_replicas as f64);
        // The API defaults minReplicas to 1.
        r.add(&fams[4], 4, &base, sp.min_replicas.unwrap_or(1) as f64);
        for (name, t) in sp.metrics.iter().flatten().filter_map(spec_metric) {
            target_series(&mut r, &fams[5], 5, &base, name, t.into());
        }
    }
    let st = h.status.as_ref();
    for (name, c) in st
        .and_then(|x| x.current_metrics.as_ref())
        .into_iter()
        .flatten()
        .filter_map(status_metric)
    {
        target_series(&mut r, &fams[6], 6, &base, name, c.into());
    }
    r.add(
        &fams[7],
        7,
        &base,
        st.and_then(|x| x.current_replicas).unwrap_or(0) as f64,
    );
    r.add(
        &fams[8],
        8,
        &base,
        st.map_or(0, |x| x.desired_replicas) as f64,
    );
    let conds = st.and_then(|x| x.conditions.as_ref()).into_iter().flatten();
    typed_condition_series(
        &mut r,
        &fams[9],
        9,
        &base,
        conds.map(|c| (c.type_.as_str(), c.status.as_str())),
    );
    if let Some(t) = created(m) {
        r.add(&fams[10], 10, &base, t);
    }
    if let Some(t) = m.deletion_timestamp.as_ref() {
        r.add(&fams[11], 11, &base, t.0.as_second() as f64);
    }
    if let Some(extra) = o.annotations("horizontalpodautoscalers", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}
