//! Pieces shared by the start-up benchmarks (`prometheus_startup`, `restart`): a server's time
//! to ready, one number from a query, and a head filled through remote write.

use std::time::{Duration, Instant};

use vigil_remote::proto::{Label, Sample, TimeSeries, WriteRequest};

/// How long until `/-/ready` answers 200 (at most 15 minutes).
pub fn wait_ready(port: u16) -> Duration {
    let t = Instant::now();
    loop {
        if crate::http_get_status(port, "/-/ready") == Some(200) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "not ready after 15 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of an instant query that must have one.
pub fn scalar(port: u16, q: &str) -> f64 {
    let body = crate::http_get(
        port,
        &format!("/api/v1/query?query={}", crate::servers::urlencode(q)),
    )
    .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{q}: {body:.300}"))
}

/// Send `series` series (`{name}_{i % 100}`, `instance`, `job="bench"`, and a unique `series`
/// label, so `count_over_time` counts each) with `samples` samples each, 15 s apart from
/// `t0`, in time order across the series, 5,000 series a remote write 1.0 request; `value`
/// gives series `i`'s value at step `k`. Every request must be accepted.
pub fn remote_write_walk(
    port: u16,
    name: &str,
    series: usize,
    samples: i64,
    t0: i64,
    value: impl Fn(usize, i64) -> f64,
) {
    vigil_scrape::client::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let batch = 5_000;
    for k in 0..samples {
        for start in (0..series).step_by(batch) {
            let mut req = WriteRequest::default();
            for i in start..(start + batch).min(series) {
                let l = |n: &str, v: String| Label {
                    name: n.into(),
                    value: v,
                };
                req.timeseries.push(TimeSeries {
                    labels: vec![
                        l("__name__", format!("{name}_{}", i % 100)),
                        l("instance", format!("pod-{}", i / 100)),
                        l("job", "bench".into()),
                        l("series", i.to_string()),
                    ],
                    samples: vec![Sample {
                        value: value(i, k),
                        timestamp: t0 + k * 15_000,
                    }],
                    ..Default::default()
                });
            }
            let body = vigil_remote::codec::encode(&req);
            let resp = rt
                .block_on(
                    client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body)
                        .send(),
                )
                .unwrap();
            assert!(
                resp.status().is_success(),
                "remote write: {}",
                resp.status()
            );
        }
    }
}

/// `bin` (vigil or Prometheus) started on `data` with an empty config and its remote write
/// receiver, its log (stdout and stderr) in `log`.
pub fn start(
    bin: &str,
    data: &std::path::Path,
    port: u16,
    extra: &[&str],
    log: &std::path::Path,
) -> crate::Killed {
    let cfg = data.parent().unwrap().join("empty.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let out = std::fs::File::create(log).unwrap();
    crate::Killed(
        std::process::Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--web.enable-remote-write-receiver")
            .args(extra)
            .stdout(std::process::Stdio::from(out.try_clone().unwrap()))
            .stderr(std::process::Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}")),
    )
}
