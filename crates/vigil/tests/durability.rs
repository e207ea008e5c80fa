//! Acknowledged samples survive `kill -9`.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

#[test]
fn kill_9_loses_no_committed_sample() {
    let dir = temp_dir("kill9");
    let (_ne, ne_port) = node_exporter(&dir);
    let data = dir.join("data");
    let port = free_port();
    let cfg = dir.join("vigil.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"),
    )
    .unwrap();
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--config.file={}", cfg.display()),
    ];
    let base = format!("http://127.0.0.1:{port}");
    let mut v = spawn("vigil", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    // Scrapes start once discovery has delivered the target (up to its 5s update interval,
    // longer on a loaded machine): wait for the first stored scrape, then for a window of
    // later ones.
    let t0 = std::time::Instant::now();
    loop {
        let up = get_json(&format!(
            "{base}/api/v1/query?query={}",
            enc("up{job=\"node\"}")
        ));
        if up["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no scrape stored after 60s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
