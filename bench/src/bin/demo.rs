//! `vigil demo`'s first minute: the time from starting it until every target it discovers is
//! up, until every panel of its three dashboards has data (each panel's query answers with at
//! least one series, as the dashboard page asks), and the demo process's memory (the whole
//! demo is one process: server, simulated API, apps and exporters) over a minute of running.
//! No reference runs: the goal is absolute (under 20s to every panel drawn).
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin demo [-- SECONDS]`

use std::time::{Duration, Instant};

use vigil_bench::servers::urlencode;
use vigil_bench::{free_port, http_get, rss_bytes, spawn};

const DASHBOARDS: [&str; 3] = ["demo-todo-list", "demo-numbers-api", "demo-cluster"];

fn json(port: u16, path: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&http_get(port, path)?).ok()
}

fn main() {
    let run_for: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let bin = vigil_bench::vigil_binary();
    assert!(
        bin.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let tmp = std::env::temp_dir().join(format!("vigil-bench-demo-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let port = free_port();
    let t0 = Instant::now();
    let demo = spawn(
        &bin,
        &[
            "demo".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--data={}", tmp.join("data").display()),
        ],
    );
    let pid = demo.0.id();
    let deadline = Duration::from_secs(120);
    // Every discovered target up (the demo has eight jobs; all of them answering).
    let all_up = loop {
        assert!(t0.elapsed() < deadline, "targets did not come up");
        if let Some(t) = json(port, "/api/v1/targets?state=active") {
            let ts = t["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let jobs: std::collections::BTreeSet<String> = ts
                .iter()
                .filter_map(|t| t["labels"]["job"].as_str().map(str::to_string))
                .collect();
            if jobs.len() >= 8 && ts.iter().all(|t| t["health"] == "up") {
                break t0.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut exprs = Vec::new();
    for uid in DASHBOARDS {
        let d = json(port, &format!("/api/v1/dashboards/{uid}")).expect("dashboard");
        for p in d["data"]["dashboard"]["panels"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            for t in p["targets"].as_array().cloned().unwrap_or_default() {
                exprs.push(t["expr"].as_str().unwrap_or("").to_string());
            }
        }
    }
    let all_drawn = loop {
        assert!(t0.elapsed() < deadline, "panels did not all get data");
        let ok = exprs.iter().all(|e| {
            json(port, &format!("/api/v1/query?query={}", urlencode(e))).is_some_and(|r| {
                r["data"]["result"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
        });
        if ok {
            break t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut peak = 0u64;
    while t0.elapsed() < Duration::from_secs(run_for) {
        peak = peak.max(rss_bytes(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    let last = rss_bytes(pid).unwrap_or(0);
    drop(demo);
    let _ = std::fs::remove_dir_all(&tmp);
    println!(
        "vigil demo ({} panel queries over {} dashboards)",
        exprs.len(),
        DASHBOARDS.len()
    );
    println!("  every target up:        {:.1} s", all_up.as_secs_f64());
    println!(
        "  every panel with data:  {:.1} s (goal: under 20 s)",
        all_drawn.as_secs_f64()
    );
    println!(
        "  memory over {run_for} s:     peak RSS {:.0} MB, at the end {:.0} MB",
        peak as f64 / 1e6,
        last as f64 / 1e6
    );
}
