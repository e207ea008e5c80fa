//! Expectations from kube-state-metrics' custom resource state documentation
//! (`docs/metrics/extend/customresourcestate-metrics.md`) and its `registry_factory_test.go`
//! and generator test data, with the order its source writes (samples sorted by their own
//! labels, every line's labels sorted by name), where the document's examples differ.

use super::*;
use serde_json::json;

/// The document's example object.
fn foo() -> Value {
    json!({
        "kind": "Foo", "apiVersion": "myteam.io/v1",
        "metadata": {"name": "foo", "labels": {"foo": "bar"},
                     "annotations": {"bar": "baz", "qux": "quxx"}},
        "spec": {"version": "v1.2.3", "replicas": 1,
                 "order": [{"id": 1, "value": true}, {"id": 3, "value": false}],
                 "refs": ["my_other_foo", "foo_2", "foo_with_extensions"]},
        "status": {"phase": "Pending",
                   "active": {"type-a": 1, "type-b": 3},
                   "conditions": [{"name": "a", "value": 45}, {"name": "b", "value": 66}],
                   "sub": {"type-a": {"active": 1, "ready": 2}, "type-b": {"active": 3, "ready": 4}},
                   "uptime": 43.21}
    })
}

const G: &str =
    r#"customresource_group="myteam.io",customresource_kind="Foo",customresource_version="v1""#;

/// The config's one resource, rendered on `obj`: each family's lines.
fn render(resource: &str, obj: &Value) -> Vec<String> {
    let cfg = format!(
        "kind: CustomResourceStateMetrics\nspec:\n  resources:\n  - groupVersionKind: {{group: myteam.io, version: v1, kind: Foo}}\n{resource}"
    );
    let rs = parse(&cfg).unwrap_or_else(|e| panic!("{e}\n{cfg}"));
    assert_eq!(rs.len(), 1);
    rs[0].render(obj).per_family
}

#[test]
fn paths_walk_maps_arrays_and_filters() {
    let o = foo();
    let get = |p: &[&str]| Path::of(p).get(&o).cloned();
    assert_eq!(get(&["spec", "replicas"]), Some(json!(1)));
    assert_eq!(get(&["spec", "order", "0", "value"]), Some(json!(true)));
    assert_eq!(
        get(&["status", "conditions", "[name=a]", "value"]),
        Some(json!(45))
    );
    assert_eq!(
        get(&["status", "conditions", "[value=66]", "name"]),
        Some(json!("b"))
    );
    assert_eq!(get(&["metadata", "name=foo"]), Some(json!("foo")));
    assert_eq!(get(&["spec", "order", "-1", "value"]), Some(json!(false)));
    assert_eq!(
        get(&["spec", "order", "[id=3]", "value"]),
        Some(json!(false))
    );
    assert_eq!(
        get(&["spec", "order", "[value=false]", "id"]),
        Some(json!(3))
    );
    // Nothing there is nothing, not an error: a missing key, an index past the end.
    assert_eq!(get(&["spec", "nope"]), None);
    assert_eq!(get(&["spec", "order", "7"]), None);
    assert_eq!(get(&[]), Some(o.clone()));
    let bad = Path::compile(&["[oops]".to_string()], "x");
    assert!(bad.unwrap_err().contains("invalid list lookup"));
}

#[test]
fn values_convert_as_kube_state_metrics_does() {
    let f = |v: Value| to_f64(&v).ok();
    assert_eq!(f(json!("250m")), Some(0.25));
    assert_eq!(f(json!("5Gi")), Some(5368709120.0));
    assert_eq!(f(json!("28%")), Some(0.28));
    assert_eq!(f(json!("2022-06-28T00:00:00Z")), Some(1656374400.0));
    assert_eq!(f(json!("43.21")), Some(43.21));
    assert_eq!(f(json!("1e3")), Some(1000.0));
    assert_eq!(f(json!("Yes")), Some(1.0));
    assert_eq!(f(json!("unknown")), Some(0.0));
    assert_eq!(f(json!(true)), Some(1.0));
    assert_eq!(f(json!(7)), Some(7.0));
    assert_eq!(f(json!("+Inf")), Some(f64::INFINITY));
    assert_eq!(f(json!("28.5%")), None);
    assert_eq!(f(json!("abc")), None);
    assert_eq!(f(json!({"a": 1})), None);
}

#[test]
fn a_single_value() {
    let fams = render(
        "    metrics:\n    - name: uptime\n      help: Foo uptime\n      each:\n        type: Gauge\n        gauge:\n          path: [status, uptime]\n",
        &foo(),
    );
    assert_eq!(fams, [format!("kube_customresource_uptime{{{G}}} 43.21\n")]);
    // A prefix of one's own, and none.
    let cfg = "spec:\n  resources:\n  - groupVersionKind: {group: myteam.io, version: v1, kind: Foo}\n    metricNamePrefix: PFX\n    metrics:\n    - name: uptime\n      each: {type: gauge, gauge: {path: [status, uptime]}}\n";
    let named = |p: &str| parse(&cfg.replace("PFX", p)).unwrap()[0].families()[0].name;
    assert_eq!(named("myteam_foos"), "myteam_foos_uptime");
    assert_eq!(named("\"\""), "uptime");
}

#[test]
fn a_state_set_in_label_order() {
    let fams = render(
        "    metrics:\n    - name: status_phase\n      help: Foo status_phase\n      each:\n        type: StateSet\n        stateSet:\n          labelName: phase\n          path: [status, phase]\n          list: [Pending, Bar, Baz]\n",
        &foo(),
    );
    assert_eq!(
        fams,
        [format!(
            "kube_customresource_status_phase{{{G},phase=\"Bar\"}} 0\nkube_customresource_status_phase{{{G},phase=\"Baz\"}} 0\nkube_customresource_status_phase{{{G},phase=\"Pending\"}} 1\n"
        )]
    );
}

#[test]
fn info_from_the_object_and_from_an_array() {
    let fams = render(
        "    labelsFromPath:\n      name: [metadata, name]\n    metrics:\n    - name: version\n      help: Foo version\n      each:\n        type: Info\n        info:\n          labelsFromPath:\n            version: [spec, version]\n    - name: ref_info\n      help: Reference to other Foo\n      each:\n        type: Info\n        info:\n          path: [spec, refs]\n          labelsFromPath:\n            ref: []\n",
        &foo(),
    );
    assert_eq!(
        fams[0],
        format!("kube_customresource_version{{{G},name=\"foo\",version=\"v1.2.3\"}} 1\n")
    );
    assert_eq!(
        fams[1],
        format!(
            "kube_customresource_ref_info{{{G},name=\"foo\",ref=\"foo_2\"}} 1\nkube_customresource_ref_info{{{G},name=\"foo\",ref=\"foo_with_extensions\"}} 1\nkube_customresource_ref_info{{{G},name=\"foo\",ref=\"my_other_foo\"}} 1\n"
        )
    );
}

#[test]
fn the_kitchen_sink() {
    let fams = render(
        r#"    commonLabels:
      crd_type: foo
    labelsFromPath:
      name: [metadata, name]
    metrics:
    - name: ready_count
      help: Number Foo Bars ready
      commonLabels:
        custom_metric: "yes"
      labelsFromPath:
        "*": [metadata, labels]
        "lorem_*": [metadata, annotations]
        "**": [metadata, annotations]
        name: [metadata, name]
        foo: [metadata, labels, foo]
      each:
        type: Gauge
        gauge:
          path: [status, sub]
          labelFromKey: type
          labelsFromPath:
            active: [active]
          valueFrom: [ready]
"#,
        &foo(),
    );
    let line = |active: &str, ty: &str, v: &str| {
        format!(
            "kube_customresource_ready_count{{_bar=\"baz\",_qux=\"quxx\",active=\"{active}\",crd_type=\"foo\",custom_metric=\"yes\",{G},foo=\"bar\",lorem_bar=\"baz\",lorem_qux=\"quxx\",name=\"foo\",type=\"{ty}\"}} {v}\n"
        )
    };
    assert_eq!(
        fams,
        [format!(
            "{}{}",
            line("1", "type-a", "2"),
            line("3", "type-b", "4")
        )]
    );
}

#[test]
fn conditions_as_gauges_and_a_map_by_key() {
    let obj = json!({"kind": "Foo", "apiVersion": "myteam.io/v1",
        "metadata": {"name": "x", "namespace": "ns"},
        "status": {"active": {"type-a": 1, "type-b": 3},
                   "conditions": [{"lastTransitionTime": "2019-10-22T16:29:31Z",
                                   "status": "True", "type": "Ready"}]}});
    let fams = render(
        "    labelsFromPath:\n      name: [metadata, name]\n      namespace: [metadata, namespace]\n    metrics:\n    - name: foo_status\n      each:\n        type: Gauge\n        gauge:\n          path: [status, conditions]\n          labelsFromPath:\n            type: [type]\n          valueFrom: [status]\n    - name: foo_since\n      each:\n        type: Gauge\n        gauge:\n          path: [status, conditions]\n          labelsFromPath:\n            type: [type]\n          valueFrom: [lastTransitionTime]\n    - name: active\n      each:\n        type: Gauge\n        gauge:\n          path: [status, active]\n          labelFromKey: type\n    - name: paused\n      each:\n        type: Gauge\n        gauge:\n          path: [spec, paused]\n          nilIsZero: true\n    - name: missing\n      each:\n        type: Gauge\n        gauge:\n          path: [spec, paused]\n",
        &obj,
    );
    let l = r#"name="x",namespace="ns""#;
    assert_eq!(
        fams[0],
        format!("kube_customresource_foo_status{{{G},{l},type=\"Ready\"}} 1\n")
    );
    assert_eq!(
        fams[1],
        format!("kube_customresource_foo_since{{{G},{l},type=\"Ready\"}} 1.571761771e+09\n")
    );
    assert_eq!(
        fams[2],
        format!(
            "kube_customresource_active{{{G},{l},type=\"type-a\"}} 1\nkube_customresource_active{{{G},{l},type=\"type-b\"}} 3\n"
        )
    );
    assert_eq!(
        fams[3],
        format!("kube_customresource_paused{{{G},{l}}} 0\n")
    );
    assert_eq!(fams[4], "", "a path that is not there gives no sample");
}

/// kube-state-metrics' generator test data (`pkg/customresourcestate/generate/generator/
/// testdata`): its config, object and the lines it captured.
#[test]
fn the_generator_test_data() {
    let cfg = r#"
kind: CustomResourceStateMetrics
spec:
  resources:
  - groupVersionKind:
      group: bar.example.com
      kind: Foo
      version: foo
    metricNamePrefix: foo
    labelsFromPath:
      cluster_name: [metadata, labels, cluster.x-k8s.io/cluster-name]
      name: [metadata, name]
    metrics:
    - name: created
      help: Unix creation timestamp.
      each:
        type: Gauge
        gauge:
          path: [metadata, creationTimestamp]
          valueFrom: null
    - name: owner
      help: Owner references.
      each:
        type: Info
        info:
          path: [metadata, ownerReferences]
          labelsFromPath:
            owner_is_controller: [controller]
            owner_kind: [kind]
            owner_name: [name]
            owner_uid: [uid]
    - name: status_condition
      help: The condition of a foo.
      each:
        type: StateSet
        stateSet:
          labelName: status
          labelsFromPath:
            type: [type]
          list: [True, False, Unknown]
          path: [status, conditions]
          valueFrom: [status]
    - name: status_condition_last_transition_time
      help: The condition last transition time of a foo.
      each:
        type: Gauge
        gauge:
          labelsFromPath:
            status: [status]
            type: [type]
          path: [status, conditions]
          valueFrom: [lastTransitionTime]
"#;
    let obj = json!({"apiVersion": "bar.example.com/foo", "kind": "Foo",
        "metadata": {"name": "bar", "creationTimestamp": "2023-10-17T11:55:39Z",
                     "ownerReferences": [{"apiVersion": "v1", "kind": "foo", "controller": true,
                                          "name": "foo", "uid": "someuid"}]},
        "status": {"conditions": [
            {"lastTransitionTime": "2023-10-12T13:59:02Z", "status": "True", "type": "SomeType"},
            {"lastTransitionTime": "2023-10-12T13:59:02Z", "status": "False", "type": "AnotherType"}]}});
    let rs = parse(cfg).unwrap();
    assert_eq!(rs[0].plural, "foos");
    let names: Vec<&str> = rs[0].families().iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "foo_created",
            "foo_owner",
            "foo_status_condition",
            "foo_status_condition_last_transition_time"
        ]
    );
    let b = r#"customresource_group="bar.example.com",customresource_kind="Foo",customresource_version="foo",name="bar""#;
    let fams = rs[0].render(&obj).per_family;
    assert_eq!(fams[0], format!("foo_created{{{b}}} 1.697543739e+09\n"));
    assert_eq!(
        fams[1],
        format!(
            "foo_owner{{{b},owner_is_controller=\"true\",owner_kind=\"foo\",owner_name=\"foo\",owner_uid=\"someuid\"}} 1\n"
        )
    );
    let want: String = [
        ("False", "AnotherType", 1),
        ("False", "SomeType", 0),
        ("True", "AnotherType", 0),
        ("True", "SomeType", 1),
        ("Unknown", "AnotherType", 0),
        ("Unknown", "SomeType", 0),
    ]
    .iter()
    .map(|(s, t, v)| format!("foo_status_condition{{{b},status=\"{s}\",type=\"{t}\"}} {v}\n"))
    .collect();
    assert_eq!(fams[2], want);
    assert_eq!(
        fams[3],
        format!(
            "foo_status_condition_last_transition_time{{{b},status=\"False\",type=\"AnotherType\"}} 1.697119142e+09\nfoo_status_condition_last_transition_time{{{b},status=\"True\",type=\"SomeType\"}} 1.697119142e+09\n"
        )
    );
}

#[test]
fn scalars_stay_text_and_nulls_are_nothing() {
    // Unquoted YAML scalars are kept as written (Go reads them into strings).
    let fams = render(
        "    commonLabels:\n      release: 1.10\n    metrics:\n    - name: phase\n      help: \"two\\nlines \\\\ here\"\n      each:\n        type: StateSet\n        stateSet:\n          labelName: phase\n          path: [status, phase]\n          list: [Pending, True, yes]\n",
        &json!({"status": {"phase": "True"}}),
    );
    assert_eq!(
        fams,
        [format!(
            "kube_customresource_phase{{{G},phase=\"Pending\",release=\"1.10\"}} 0\nkube_customresource_phase{{{G},phase=\"True\",release=\"1.10\"}} 1\nkube_customresource_phase{{{G},phase=\"yes\",release=\"1.10\"}} 0\n"
        )]
    );
    let cfg = "spec:\n  resources:\n  - groupVersionKind: {group: myteam.io, version: v1, kind: Foo}\n    metrics:\n    - name: phase\n      help: \"two\\nlines \\\\ here\"\n      each: {type: Info, info: {labelsFromPath: {x: [x]}}}\n";
    assert_eq!(
        parse(cfg).unwrap()[0].families()[0].help,
        "two\\nlines \\\\ here"
    );
    // A null element is nothing: no label from it, and 0 with nilIsZero.
    let fams = render(
        "    metrics:\n    - name: refs\n      each:\n        type: Info\n        info:\n          path: [spec, refs]\n          labelsFromPath:\n            ref: []\n    - name: counts\n      each:\n        type: Gauge\n        gauge:\n          path: [spec, counts]\n          nilIsZero: true\n",
        &json!({"spec": {"refs": ["a", null], "counts": [2, null]}}),
    );
    assert_eq!(
        fams[0],
        format!("kube_customresource_refs{{{G},ref=\"a\"}} 1\n")
    );
    assert_eq!(
        fams[1],
        format!("kube_customresource_counts{{{G}}} 2\nkube_customresource_counts{{{G}}} 0\n")
    );
}

#[test]
fn what_vigil_does_not_do_is_refused_by_name() {
    let with = |gvk: &str, extra: &str| {
        parse(&format!(
            "spec:\n  resources:\n  - groupVersionKind: {gvk}\n    metrics:\n    - name: m\n      each: {{type: Gauge, gauge: {{path: [x]{extra}}}}}\n"
        ))
    };
    // Wildcards are taken, to be resolved through discovery; a named kind is not one.
    let w = with("{group: a.io, version: \"*\", kind: Foo}", "").unwrap();
    assert!(w[0].is_wildcard());
    assert!(with("{group: a.io, version: v1, kind: \"\"}", "").unwrap()[0].is_wildcard());
    assert!(!with("{group: a.io, version: v1, kind: Foo}", "").unwrap()[0].is_wildcard());
    let e = with("{version: v1, kind: Foo}", "").unwrap_err();
    assert!(e.contains("group is required"), "{e}");
    let e = with(
        "{group: a.io, version: v1, kind: Foo}",
        ", valueType: duration",
    )
    .unwrap_err();
    assert!(e.contains("valueType"), "{e}");
    let e = parse("spec:\n  resources:\n  - groupVersionKind: {group: a.io, version: v1, kind: Foo}\n    metrics:\n    - name: m\n      each: {type: Counter}\n").unwrap_err();
    assert!(
        e.contains("unknown metric type") && e.contains("metrics[0] (m)"),
        "{e}"
    );
    let e = parse("spec:\n  resources:\n  - groupVersionKind: {group: a.io, version: v1, kind: Foo}\n    metrics:\n    - name: m\n      each: {type: Info}\n").unwrap_err();
    assert!(e.contains("each.info to not be nil"), "{e}");
    assert!(parse("spec: [").is_err());
    let e = parse("spec:\n  resources:\n  - groupVersionKind: {group: a.io, version: v1, kind: Foo}\n    metrics:\n    - name: m\n      each: {type: Gauge, gauge: {path: [x], valueFrom: {celExpr: \"x + 1\"}}}\n").unwrap_err();
    assert!(
        e.contains("each.gauge.valueFrom") && e.contains("celExpr"),
        "{e}"
    );
    for (bad, want) in [
        ("name: my-metric", "not a valid metric name"),
        (
            "name: m\n      commonLabels: {my-label: x}",
            "commonLabels: \"my-label\" is not a valid label name",
        ),
        (
            "name: m\n      each: {type: StateSet, stateSet: {path: [x], list: [a]}}",
            "labelName: \"\" is not a valid label name",
        ),
        (
            "name: m\n      each: {type: Info, info: {path: [x], labelFromKey: a.b}}",
            "labelFromKey: \"a.b\"",
        ),
    ] {
        let cfg = format!(
            "spec:\n  resources:\n  - groupVersionKind: {{group: a.io, version: v1, kind: Foo}}\n    metrics:\n    - {bad}\n"
        );
        // A metric without its own `each` gets a valid one, so only the name is at fault.
        let cfg = if bad.contains("each:") {
            cfg
        } else {
            format!("{cfg}      each: {{type: Info, info: {{path: [x]}}}}\n")
        };
        let e = parse(&cfg).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
    }
    assert_eq!(pluralize("Policy"), "policies");
    assert_eq!(pluralize("Ingress"), "ingresses");
    assert_eq!(pluralize("Gateway"), "gateways");
    assert_eq!(pluralize("VerticalPodAutoscaler"), "verticalpodautoscalers");
}
