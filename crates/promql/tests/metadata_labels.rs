//! The type and unit labels (`__type__`, `__unit__`) go wherever the metric name goes:
//! vigil's own cases in the upstream test format (`testdata/metadata_labels.test`).

#[test]
fn type_and_unit_labels_go_with_the_name() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/testdata/metadata_labels.test"
    ))
    .unwrap();
    let r = vigil_promql::promqltest::run(&text);
    assert!(r.failed.is_empty(), "failed: {:#?}", r.failed);
    assert_eq!(r.passed, r.total());
    assert!(r.passed >= 10, "{} passed", r.passed);
}
