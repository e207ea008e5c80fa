//! vigil's own rendering of Grafana dashboards, in headless Chromium: every chapter 14 dashboard
//! (JSON files and a ConfigMap, as the book provisions them) loads with all its panels and no
//! errors; the built-in dashboards show what the API returns; a template variable re-queries.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kiamol-ch14/grafana"
);

#[test]
fn dashboards_render_in_headless_chromium() {
    chromium();
    let dir = temp_dir("dashboards");
    let dash = dir.join("dashboards");
    std::fs::create_dir_all(&dash).unwrap();
    // APOD as the book's ConfigMap; the three TODO versions as JSON (they share a uid, so each
    // gets its own here to load side by side).
    std::fs::copy(
        format!("{FIXTURES}/grafana-dashboard-apod.yaml"),
        dash.join("apod.yaml"),
    )
    .unwrap();
    let mut expect = vec!["kb5nhJAZk=13".to_string()];
    for (f, suffix) in [
        ("grafana-dashboard-todo-list.json", "v1"),
        ("update/grafana-dashboard-todo-list-v2.json", "v2"),
        ("update/grafana-dashboard-todo-list-v3.json", "v3"),
    ] {
        let mut d: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{f}")).unwrap())
                .unwrap();
        let uid = format!("{}-{suffix}", d["uid"].as_str().unwrap());
        d["uid"] = uid.clone().into();
        let panels = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] != "row")
            .count();
        expect.push(format!("{uid}={panels}"));
        std::fs::write(dash.join(format!("todo-{suffix}.json")), d.to_string()).unwrap();
    }
    // An old dashboard (schema 14: `rows` of panels with `span`s), provisioned the Grafana way.
    let old = dir.join("provisioned");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(
        old.join("old.json"),
        r#"{"schemaVersion": 14, "uid": "old-rows", "title": "Old rows", "rows": [
            {"title": "Row", "height": "250px", "panels": [
                {"type": "graph", "span": 6, "title": "up", "targets": [{"expr": "up", "legendFormat": "{{job}}"}]},
                {"type": "singlestat", "span": 6, "title": "targets", "format": "short", "targets": [{"expr": "sum(up)"}]}]}]}"#,
    )
    .unwrap();
    let providers = dir.join("providers.yaml");
    std::fs::write(
        &providers,
        format!("apiVersion: 1\nproviders:\n  - name: default\n    type: file\n    options:\n      path: {}\n", old.display()),
    )
    .unwrap();
    expect.push("old-rows=2".into());
    // A panel whose query is broken shows its error; the other panel still draws.
    std::fs::write(
        dash.join("broken.json"),
        r#"{"uid": "broken", "title": "Broken", "panels": [
            {"type": "timeseries", "title": "bad", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 6}, "targets": [{"expr": "sum(rate("}]},
            {"type": "stat", "title": "good", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 6}, "targets": [{"expr": "1+1"}]}]}"#,
    )
    .unwrap();
    // Chained variables: `instance`'s options depend on the chosen `job`.
    std::fs::write(
        dash.join("chained.json"),
        r#"{"uid": "chained", "title": "Chained", "templating": {"list": [
            {"name": "job", "type": "query", "query": "label_values(up, job)", "current": {"value": "node"}},
            {"name": "instance", "type": "query", "query": "label_values(up{job=\"$job\"}, instance)"}]},
          "panels": [{"type": "stat", "title": "up", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 6},
            "targets": [{"expr": "up{instance=\"$instance\"}"}]}]}"#,
    )
    .unwrap();
    // Heatmaps of one histogram, converted to a native one and kept classic too.
    std::fs::write(
        dash.join("heatmaps.json"),
        r#"{"uid": "heatmaps", "title": "Heatmaps", "panels": [
            {"type": "heatmap", "title": "native", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
             "targets": [{"expr": "sum(rate(req_seconds[30s]))"}]},
            {"type": "heatmap", "title": "classic", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8},
             "targets": [{"expr": "sum by (le) (rate(req_seconds_bucket[30s]))", "format": "heatmap", "legendFormat": "{{le}}"}]}]}"#,
    )
    .unwrap();
    expect.push("heatmaps=2".into());
    expect.push("vigil-kubernetes=8".into());
    let (_ne, ne_port) = node_exporter(&dir);
    let hist_port = histogram_target();
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n  - job_name: vigil\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  - job_name: hist\n    convert_classic_histograms_to_nhcb: true\n    always_scrape_classic_histograms: true\n    static_configs:\n      - targets: ['127.0.0.1:{hist_port}']\n"
    );
    let dash_arg = format!("--dashboards.dir={}", dash.display());
    let prov_arg = format!("--dashboards.provisioning={}", providers.display());
    let v = Vigil::start_on("dashboards", Some(&cfg), &[&dash_arg, &prov_arg], port);
    wait_for("the jobs scraped", Duration::from_secs(20), || {
        (query(&v.base, "up").len() == 3
            && !query(&v.base, "rate(req_seconds[30s])").is_empty()
            && !query(&v.base, "prometheus_tsdb_head_series").is_empty())
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let api = get_json(&format!("{}/api/v1/dashboards", v.base));
    assert_eq!(api["data"]["errors"], serde_json::json!([]));
    let ui = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui");
    // The renderer's units, intervals and variable substitution, unit by unit.
    let unit = Command::new("node")
        .arg("tests/unit.mjs")
        .current_dir(ui)
        .output()
        .expect("node");
    assert!(
        unit.status.success(),
        "renderer unit checks failed: {}{}",
        String::from_utf8_lossy(&unit.stdout),
        String::from_utf8_lossy(&unit.stderr)
    );
    let (ok, text) = browser_script("dashboards.mjs", &v.base, &expect);
    assert!(ok, "dashboard checks failed:\n{text}");
    assert!(text.contains("all dashboard checks passed"));
}
