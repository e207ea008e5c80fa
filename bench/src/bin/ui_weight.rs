//! The query page side by side: vigil's UI and Debian's Prometheus 2.42 (its classic UI) drawing
//! the same 1h chart of 100 series from the same backfilled data, in headless Chromium; prints
//! page weight (bytes transferred on first load, API answers included) and time to the chart.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin ui_weight`
//! (needs Debian's chromium and the UI's npm packages: `cd ui && npm ci`).

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_bench::dataset::Dataset;
use vigil_bench::servers::{
    backfill_prometheus, backfill_vigil, start_prometheus, start_vigil, urlencode,
};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-ui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 10 pods: 90 counters + 10 gauges = the 100 series charted, ending now.
    let ds = Dataset {
        pods: 10,
        hours: 2,
        interval_s: 15,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let om = dir.join("data.om");
    ds.write_from(&om, now - 2 * 3600 + 30).unwrap();
    backfill_vigil(&vigil, &om, &dir.join("vigil")).unwrap();
    backfill_prometheus(&om, &dir.join("prom")).unwrap();
    // A 10-panel dashboard over the same data for vigil's renderer.
    let dash = dir.join("dashboards");
    std::fs::create_dir_all(&dash).unwrap();
    let exprs = [
        "sum(rate(dset_requests_total[$__rate_interval]))",
        "sum by (code) (rate(dset_requests_total[$__rate_interval]))",
        "sum by (method) (rate(dset_requests_total[$__rate_interval]))",
        "histogram_quantile(0.9, sum by (le) (rate(dset_latency_seconds_bucket[$__rate_interval])))",
        "dset_temperature_celsius",
        "avg(dset_temperature_celsius)",
        "max by (region) (dset_temperature_celsius)",
        "sum(rate(dset_latency_seconds_count[$__rate_interval]))",
        "topk(5, rate(dset_requests_total[$__rate_interval]))",
        "count(dset_requests_total)",
    ];
    let panels: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::json!({"type": if i == 9 { "stat" } else { "timeseries" }, "title": format!("panel {i}"),
                "gridPos": {"x": (i % 2) * 12, "y": (i / 2) * 8, "w": 12, "h": 8},
                "targets": [{"expr": e}]})
        })
        .collect();
    std::fs::write(
        dash.join("bench.json"),
        serde_json::json!({"uid": "bench", "title": "bench", "time": {"from": "now-1h", "to": "now"}, "panels": panels}).to_string(),
    )
    .unwrap();
    let v = start_vigil(
        &vigil,
        &dir.join("vigil"),
        &[format!("--dashboards.dir={}", dash.display())],
    );
    let p = start_prometheus(&dir.join("prom"), &[]);
    let q = urlencode("{__name__=~\"dset_requests_total|dset_temperature_celsius\"}");
    let args = [
        format!(
            "vigil=http://127.0.0.1:{}/graph?g0.expr={q}&g0.tab=0&g0.range_input=1h",
            v.port
        ),
        format!(
            "prometheus=http://127.0.0.1:{}/graph/?g0.expr={q}&g0.tab=0&g0.range_input=1h",
            p.port
        ),
        format!(
            "dashboard=http://127.0.0.1:{}/d/bench/bench?from=now-1h&to=now",
            v.port
        ),
    ];
    let out = Command::new("node")
        .arg("tests/measure.mjs")
        .args(&args)
        .current_dir(root.join("ui"))
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_str(text.trim()).expect("measurement JSON");
    println!(
        "1h chart of 100 series (vigil, prometheus), and vigil's 10-panel dashboard over 1h,\nmedian of 5 cold loads:\n"
    );
    println!(
        "{:<12} {:>14} {:>20}",
        "", "page weight KB", "time to chart ms"
    );
    for name in ["vigil", "prometheus", "dashboard"] {
        println!(
            "{:<12} {:>14.0} {:>20.0}",
            name,
            j[name]["bytes"].as_f64().unwrap_or(0.0) / 1024.0,
            j[name]["ms"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
