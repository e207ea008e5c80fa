//! Acknowledged samples survive `kill -9`.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

/// A node exporter and a vigil's arguments to scrape it every second into `<dir>/data`
/// (with `extra`): the exporter, the data directory, the arguments and the base URL.
fn node_job(
    dir: &std::path::Path,
    extra: &[&str],
) -> (Proc, std::path::PathBuf, Vec<String>, String) {
    let (ne, ne_port) = node_exporter(dir);
    let data = dir.join("data");
    let port = free_port();
    let cfg = dir.join("vigil.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"),
    )
    .unwrap();
    let mut args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--config.file={}", cfg.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    (ne, data, args, format!("http://127.0.0.1:{port}"))
}

/// Scrapes start once discovery has delivered the target (up to its 5s update interval,
/// longer on a loaded machine): wait for the first stored scrape.
fn wait_for_a_scrape(base: &str) {
    let t0 = std::time::Instant::now();
    while get_json(&format!(
        "{base}/api/v1/query?query={}",
        enc("up{job=\"node\"}")
    ))["data"]["result"]
        .as_array()
        .is_none_or(|r| r.is_empty())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no scrape stored after 60s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kill_9_loses_no_committed_sample() {
    let dir = temp_dir("kill9");
    let (_ne, _data, args, base) = node_job(&dir, &[]);
    let mut v = spawn("vigil", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    // The first stored scrape, then a window of later ones.
    wait_for_a_scrape(&base);
    std::thread::sleep(Duration::from_secs(7));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Everything a query can see was committed. The window ends 2.5s ago: every scrape that
    // started in it (timeout 1s) has committed, so no in-flight commit can change it later.
    let q = format!(
        "{base}/api/v1/query_range?query={}&start={}&end={}&step=0.25",
        enc("{job=\"node\"}"),
        now - 6.0,
        now - 2.5
    );
    let before = get_json(&q);
    let series_before = before["data"]["result"].as_array().unwrap().len();
    assert!(
        series_before > 100,
        "node exporter series stored: {series_before}"
    );
    v.child.kill().unwrap(); // SIGKILL: no shutdown path runs
    v.child.wait().unwrap();
    drop(v);

    let v2 = spawn("vigil", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    let after = get_json(&q);
    assert_eq!(
        before["data"], after["data"],
        "the pre-crash window reads back identically after restart"
    );
    let (_, m) = get(&format!("{base}/metrics"));
    assert!(m.contains("prometheus_tsdb_wal_corruptions_total"), "{m}");
    drop(v2);
}

/// With `--enable-feature=memory-snapshot-on-shutdown` a clean stop writes the head whole,
/// and the next start loads it (replaying only what the WAL holds after it): every sample
/// reads back as before, the snapshot is used once and removed, and the WAL is untouched.
#[test]
fn a_head_snapshot_written_at_shutdown_loads_at_the_next_start() {
    let dir = temp_dir("head-snapshot");
    let (_ne, data, args, base) = node_job(&dir, &["--enable-feature=memory-snapshot-on-shutdown"]);
    let mut v = spawn("vigil", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    wait_for_a_scrape(&base);
    std::thread::sleep(Duration::from_secs(4));
    let pid = v.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    v.child.wait().unwrap();
    let log = v.log_text();
    drop(v);
    assert!(log.contains("Head snapshot written"), "{log}");
    let snaps: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("head-snapshot.")
        })
        .collect();
    assert_eq!(snaps.len(), 1, "one snapshot in {}", data.display());
    assert!(snaps[0].path().join("meta.json").exists());
    let wal_before: Vec<_> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // Everything stored, read back from the data directory alone (no scrapes after the
    // stop can be in it).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let q = format!(
        "{base}/api/v1/query_range?query={}&start={}&end={}&step=0.25",
        enc("{job=\"node\"}"),
        now - 600.0,
        now
    );
    let v2 = spawn("vigil2", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    let log2 = v2.log_text();
    assert!(log2.contains("Head snapshot loaded"), "{log2}");
    let loaded = get_json(&q);
    drop(v2);
    // The same directory replayed from the WAL alone (the snapshot is gone after its use).
    assert!(
        std::fs::read_dir(&data)
            .unwrap()
            .filter_map(|e| e.ok())
            .all(|e| !e
                .file_name()
                .to_string_lossy()
                .starts_with("head-snapshot.")),
        "the snapshot was removed once used"
    );
    for f in &wal_before {
        assert!(data.join("wal").join(f).exists(), "WAL file {f:?} kept");
    }
    let plain_args: Vec<String> = args[..3].to_vec();
    let v3 = spawn("vigil3", &vigil_bin(), &plain_args, &dir);
    wait_http(&format!("{base}/-/ready"));
    let replayed = get_json(&q);
    drop(v3);
    let n = loaded["data"]["result"].as_array().map_or(0, |r| r.len());
    assert!(n > 100, "node exporter series loaded: {n}");
    // Both runs scrape again after their start: compare what was stored before the stop.
    let upto = |r: &serde_json::Value| -> Vec<(String, Vec<serde_json::Value>)> {
        let mut out: Vec<_> = r["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let vals = s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p[0].as_f64().unwrap() <= now)
                    .cloned()
                    .collect();
                (s["metric"].to_string(), vals)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(upto(&loaded), upto(&replayed));
}
