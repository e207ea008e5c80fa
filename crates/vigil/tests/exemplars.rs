//! Exemplars against Debian's Prometheus 2.42 with `--enable-feature=exemplar-storage`: both
//! scrape one OpenMetrics target whose exemplars change every three seconds, and
//! `/api/v1/query_exemplars` answers alike over the time both scraped. Then vigil alone: its
//! exemplars survive `kill -9` (the WAL), a reload resizes the ring, and without the feature
//! nothing is kept and `storage.exemplars` is named in a warning.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::*;

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Seconds each set of the target's exemplars is served: three scrapes a second apart see
/// each, so a scrape delayed on a busy machine misses none.
const BUCKET: u64 = 3;

/// The target's page in bucket `b` (one bucket per [`BUCKET`] seconds): exemplars with their own
/// timestamps (equal for every scraper), one without (it takes the scrape's time), one whose
/// labels are too long (refused by both), and one going back in time (out of order after its
/// first).
fn page(b: u64) -> String {
    let long = "x".repeat(130);
    format!(
        "# TYPE req counter\n\
         req_total{{path=\"/a\"}} {b} # {{trace_id=\"a{b}\"}} 0.5 {t}.123\n\
         req_total{{path=\"/b\"}} {b} # {{trace_id=\"b{b}\",span_id=\"\"}} 1.5 {t}\n\
         # TYPE lat histogram\n\
         lat_bucket{{le=\"0.1\"}} {b} # {{trace_id=\"h{b}\"}} 0.05 {t}.250\n\
         lat_bucket{{le=\"+Inf\"}} {b}\n\
         lat_sum 1.0\n\
         lat_count {b}\n\
         # TYPE now counter\n\
         now_total {b} # {{trace_id=\"n{b}\"}} 7\n\
         # TYPE big counter\n\
         big_total 1 # {{trace_id=\"{long}\"}} 1 {t}\n\
         # TYPE back counter\n\
         back_total {b} # {{trace_id=\"o{b}\"}} 1 {back}\n\
         # EOF\n",
        t = b * BUCKET,
        back = 4_000_000_000 - b * BUCKET,
    )
}

/// Serve [`page`] for the current bucket on a free port.
fn target() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = page(now_s() / BUCKET);
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

fn config(port: u16, extra: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n{extra}scrape_configs:\n  - job_name: om\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
}

/// `/api/v1/query_exemplars` as series labels -> exemplars (each as its JSON text).
fn exemplars(base: &str, query: &str, start: f64, end: f64) -> BTreeMap<String, Vec<String>> {
    let v = get_json(&format!(
        "{base}/api/v1/query_exemplars?query={}&start={start}&end={end}",
        enc(query)
    ));
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for s in v["data"].as_array().unwrap_or(&Vec::new()) {
        let ex: Vec<String> = s["exemplars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.to_string())
            .collect();
        out.insert(s["seriesLabels"].to_string(), ex);
    }
    out
}

fn metric(base: &str, name: &str) -> f64 {
    let (_, text) = get(&format!("{base}/metrics"));
    samples(&text)
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not on {base}/metrics"))
}

fn prometheus(dir: &Path, cfg: &str) -> (Proc, String) {
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let port = free_port();
    let args = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--enable-feature=exemplar-storage".to_string(),
    ];
    let p = spawn("prometheus", &debian_bin("prometheus"), &args, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    (p, base)
}

#[test]
fn exemplars_as_prometheus_stores_and_serves_them() {
    let port = target();
    let cfg = config(port, "");
    let dir = temp_dir("exemplars-prom");
    let (_p, pbase) = prometheus(&dir, &cfg);
    let v = Vigil::start(
        "exemplars",
        Some(&cfg),
        &["--enable-feature=exemplar-storage"],
    );
    // Both scrape every second; exemplars change every three. Compare the buckets both have
    // surely seen whole: from a bucket after both scraped (Prometheus's first scrape waits
    // for its discovery) to one before the last scrape.
    for base in [&pbase, &v.base] {
        wait_for("first exemplars", Duration::from_secs(30), || {
            (!exemplars(base, "req_total", 0.0, 5e9).is_empty()).then_some(())
        });
    }
    let first = now_s() / BUCKET + 1;
    std::thread::sleep(Duration::from_secs(18));
    let last = now_s() / BUCKET - 1;
    assert!(last >= first + 3, "too few buckets: {first}..{last}");
    let (start, end) = ((first * BUCKET) as f64, (last * BUCKET) as f64 + 0.9);
    for q in [
        "req_total",
        "lat_bucket",
        "{__name__=~\"req_total|lat_bucket\", path!=\"/b\"}",
        "rate(req_total[5m]) + on() group_left sum(lat_bucket)",
        "big_total",
    ] {
        let want = exemplars(&pbase, q, start, end);
        let got = exemplars(&v.base, q, start, end);
        assert_eq!(got, want, "query_exemplars {q}");
    }
    let got = exemplars(&v.base, "req_total", start, end);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.values().all(|e| e.len() as u64 == last - first + 1),
        "one exemplar per bucket: {got:?}"
    );
    // The empty-valued span_id is dropped, as Prometheus drops it.
    assert!(!got.keys().any(|k| k.contains("span_id")));
    assert!(exemplars(&v.base, "big_total", 0.0, 5e9).is_empty());
    // No timestamp: the exemplar takes its sample's (the scrape's) time.
    let now = exemplars(&v.base, "now_total", start, end);
    let ex: Vec<Value> = now
        .values()
        .next()
        .expect("now_total exemplars")
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let t = ex[0]["timestamp"].as_f64().unwrap();
    let at = query(&v.base, &format!("timestamp(now_total @ {t})"));
    assert_eq!(
        at[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
        t
    );
    // Out of order after the first: counted by the scrape in both.
    for base in [&pbase, &v.base] {
        assert!(
            metric(
                base,
                "prometheus_target_scrapes_exemplar_out_of_order_total"
            ) > 0.0
        );
    }
    assert_eq!(
        metric(&v.base, "prometheus_tsdb_exemplar_max_exemplars"),
        100_000.0
    );
    // A query without selectors has no data: 204, as in Prometheus.
    for base in [&pbase, &v.base] {
        let (code, body) = get(&format!("{base}/api/v1/query_exemplars?query=1%2B1"));
        assert_eq!((code, body.as_str()), (204, ""));
    }
}

#[test]
fn exemplars_survive_a_kill_and_a_reload_resizes_them() {
    let port = target();
    let v = Vigil::start(
        "exemplars-kill",
        Some(&config(
            port,
            "storage:\n  exemplars:\n    max_exemplars: 50\n",
        )),
        &["--enable-feature=exemplar-storage"],
    );
    let base = v.base.clone();
    wait_for("exemplars", Duration::from_secs(30), || {
        (exemplars(&base, "req_total", 0.0, 5e9)
            .values()
            .map(Vec::len)
            .sum::<usize>()
            >= 6)
            .then_some(())
    });
    assert_eq!(
        metric(&base, "prometheus_tsdb_exemplar_max_exemplars"),
        50.0
    );
    // kill -9, then start on the same directory with no target: what was stored is back.
    let before = exemplars(&base, "req_total", 0.0, 5e9);
    let Vigil {
        mut proc,
        dir,
        port: vport,
        ..
    } = v;
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
    let args = [
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--config.file={}", dir.join("vigil.yml").display()),
        "--enable-feature=exemplar-storage".to_string(),
        "--web.enable-lifecycle".to_string(),
    ];
    std::fs::write(
        dir.join("vigil.yml"),
        "storage:\n  exemplars:\n    max_exemplars: 50\n",
    )
    .unwrap();
    let _p = spawn("vigil-again", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    let after = exemplars(&base, "req_total", 0.0, 5e9);
    assert_eq!(after, before, "exemplars after kill -9");
    // A reload to 3 keeps the newest 3 of all.
    std::fs::write(
        dir.join("vigil.yml"),
        "storage:\n  exemplars:\n    max_exemplars: 3\n",
    )
    .unwrap();
    let (code, body) = http("POST", &format!("{base}/-/reload"), None).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(metric(&base, "prometheus_tsdb_exemplar_max_exemplars"), 3.0);
    assert_eq!(
        metric(&base, "prometheus_tsdb_exemplar_exemplars_in_storage"),
        3.0
    );
}

#[test]
fn without_the_feature_nothing_is_kept_and_the_section_is_named() {
    let port = target();
    let v = Vigil::start(
        "exemplars-off",
        Some(&config(
            port,
            "storage:\n  exemplars:\n    max_exemplars: 50\n",
        )),
        &[],
    );
    let base = v.base.clone();
    wait_for("a few scrapes", Duration::from_secs(30), || {
        (query(&base, "count_over_time(up[1m])")
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            >= 3.0)
            .then_some(())
    });
    assert!(exemplars(&base, "req_total", 0.0, 5e9).is_empty());
    assert_eq!(
        metric(&base, "prometheus_tsdb_exemplar_exemplars_in_storage"),
        0.0
    );
    let log = v.proc.log_text();
    assert!(
        log.contains("storage.exemplars: has no effect without --enable-feature=exemplar-storage"),
        "{log}"
    );
    // The WAL stays readable by builds that predate exemplars: no version-3 segment.
    for e in std::fs::read_dir(v.dir.join("data/wal")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let b = std::fs::read(&p).unwrap();
            assert!(
                b.len() < 12 || b[8] < 3,
                "{} is version {}",
                p.display(),
                b[8]
            );
        }
    }
}

/// Exemplars by remote write, against Prometheus 2.42 both ways: vigil sends them to
/// Prometheus's receiver (1.0) and to another vigil (2.0), and Prometheus sends them to a vigil
/// receiver; each receiver then answers `query_exemplars` as the sender does.
#[test]
fn exemplars_travel_by_remote_write_both_ways() {
    let port = target();
    let dir = temp_dir("exemplars-rw");
    // Receivers: Prometheus and two vigils, scraping nothing.
    let (_prx, prx) = {
        std::fs::write(dir.join("rx.yml"), "global:\n  scrape_interval: 1s\n").unwrap();
        let port = free_port();
        let args = vec![
            format!("--config.file={}", dir.join("rx.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("rx-data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--enable-feature=exemplar-storage".to_string(),
            "--web.enable-remote-write-receiver".to_string(),
        ];
        let p = spawn("prometheus-rx", &debian_bin("prometheus"), &args, &dir);
        let base = format!("http://127.0.0.1:{port}");
        wait_http(&format!("{base}/-/ready"));
        (p, base)
    };
    let receiver = |name: &str| {
        Vigil::start(
            name,
            Some("global:\n  scrape_interval: 1s\n"),
            &[
                "--enable-feature=exemplar-storage",
                "--web.enable-remote-write-receiver",
            ],
        )
    };
    let v2rx = receiver("exemplars-v2rx");
    let from_prom = receiver("exemplars-from-prom");
    // vigil sends to Prometheus (1.0) and to vigil (2.0).
    let rw = format!(
        "remote_write:\n  - url: {prx}/api/v1/write\n    send_exemplars: true\n    queue_config: {{batch_send_deadline: 1s}}\n  - url: {}/api/v1/write\n    send_exemplars: true\n    protobuf_message: io.prometheus.write.v2.Request\n    queue_config: {{batch_send_deadline: 1s}}\n",
        v2rx.base
    );
    let sender = Vigil::start(
        "exemplars-tx",
        Some(&config(port, &rw)),
        &["--enable-feature=exemplar-storage"],
    );
    // Prometheus sends to the other vigil.
    let (_ptx, ptx) = prometheus(
        &dir,
        &config(
            port,
            &format!(
                "remote_write:\n  - url: {}/api/v1/write\n    send_exemplars: true\n    queue_config: {{batch_send_deadline: 1s}}\n",
                from_prom.base
            ),
        ),
    );
    for base in [&sender.base, &ptx] {
        wait_for("exemplars at the sender", Duration::from_secs(60), || {
            (exemplars(base, "req_total", 0.0, 5e9)
                .values()
                .map(Vec::len)
                .sum::<usize>()
                >= 10)
                .then_some(())
        });
    }
    // What each sender held a few seconds ago reaches its receivers.
    let end = (now_s() - 4) as f64;
    for (from, to, what) in [
        (&sender.base, &prx, "vigil -> Prometheus (1.0)"),
        (&sender.base, &v2rx.base, "vigil -> vigil (2.0)"),
        (&ptx, &from_prom.base, "Prometheus -> vigil (1.0)"),
    ] {
        for q in ["req_total", "lat_bucket"] {
            let want = exemplars(from, q, 0.0, end);
            assert!(!want.is_empty(), "{what}: nothing to compare");
            let t0 = std::time::Instant::now();
            loop {
                let got = exemplars(to, q, 0.0, end);
                if got == want {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "{what} {q}: sent {want:#?}\nreceived {got:#?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let sent = metric(&sender.base, "prometheus_remote_storage_exemplars_in_total");
    assert!(sent > 0.0);
}

/// `--storage.tsdb.max-exemplars` (vigil's) sizes the ring over the config, also across a
/// reload; without the feature it warns that it does nothing.
#[test]
fn the_max_exemplars_flag_sizes_the_ring_over_the_config() {
    let cfg = "storage:\n  exemplars:\n    max_exemplars: 50\n";
    let v = Vigil::start(
        "exemplars-flag",
        Some(cfg),
        &[
            "--enable-feature=exemplar-storage",
            "--storage.tsdb.max-exemplars=7",
            "--web.enable-lifecycle",
        ],
    );
    assert_eq!(
        metric(&v.base, "prometheus_tsdb_exemplar_max_exemplars"),
        7.0
    );
    v.write_config("storage:\n  exemplars:\n    max_exemplars: 9\n");
    let (code, body) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        metric(&v.base, "prometheus_tsdb_exemplar_max_exemplars"),
        7.0
    );
    let off = Vigil::start(
        "exemplars-flag-off",
        None,
        &["--storage.tsdb.max-exemplars=7"],
    );
    assert_eq!(
        metric(&off.base, "prometheus_tsdb_exemplar_max_exemplars"),
        0.0
    );
    let log = off.proc.log_text();
    assert!(
        log.contains(
            "--storage.tsdb.max-exemplars: has no effect without --enable-feature=exemplar-storage"
        ),
        "{log}"
    );
}

/// Prometheus 2.42's WAL with exemplars, left by `kill -9`: vigil started on its directory with
/// the feature answers `query_exemplars` as Prometheus did before the kill, and only then are
/// Prometheus's head files removed; started without the feature, it imports the samples only
/// and keeps the files, unchanged, under `prometheus-unread/`.
#[test]
fn a_prometheus_wal_s_exemplars_are_carried_over() {
    let port = target();
    let dir = temp_dir("exemplars-import");
    let (mut p, pbase) = prometheus(&dir, &config(port, ""));
    wait_for("four buckets of exemplars", Duration::from_secs(40), || {
        (exemplars(&pbase, "req_total", 0.0, 5e9)
            .values()
            .map(Vec::len)
            .min()
            .unwrap_or(0)
            >= 4)
            .then_some(())
    });
    // Up to the start of the current bucket, once every scrape begun before it has committed:
    // what Prometheus answers then is in its WAL and cannot change before the kill.
    let cut = now_s() / BUCKET * BUCKET;
    std::thread::sleep(Duration::from_millis(1500));
    let queries = [
        "req_total",
        "lat_bucket",
        "now_total",
        "{__name__=~\"req_total|lat_bucket\", path!=\"/b\"}",
    ];
    let want: Vec<_> = queries
        .iter()
        .map(|q| exemplars(&pbase, q, 0.0, cut as f64 - 0.001))
        .collect();
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let data = dir.join("prom-data");
    assert!(want[0].values().all(|e| e.len() >= 3), "{want:?}");

    // Without the feature first, on a copy: the samples come in, the head's files are kept.
    let off = dir.join("prom-data-off");
    copy_tree(&data, &off);
    let (vp, base) = vigil_on(&dir, &off, "vigil-off", &[]);
    assert!(!query(&base, "req_total").is_empty());
    assert!(exemplars(&base, "req_total", 0.0, 5e9).is_empty());
    let kept = std::fs::read_dir(off.join("prometheus-unread"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(kept, 1, "{}", vp.log_text());
    assert!(
        vp.log_text()
            .contains("kept only with --enable-feature=exemplar-storage"),
        "{}",
        vp.log_text()
    );
    drop(vp);

    // With the feature: the same exemplars as Prometheus answered, and its files gone.
    let (vp, base) = vigil_on(
        &dir,
        &data,
        "vigil-on",
        &["--enable-feature=exemplar-storage"],
    );
    for (q, want) in queries.iter().zip(&want) {
        let got = exemplars(&base, q, 0.0, cut as f64 - 0.001);
        assert_eq!(&got, want, "query_exemplars {q}");
    }
    assert!(
        !data.join("prometheus-unread").exists(),
        "{}",
        vp.log_text()
    );
    assert!(!data.join("prometheus-import").exists());
}
