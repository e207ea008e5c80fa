//! End-to-end: the real `vigil` binary scraping real exporters from Debian.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use support::*;
use vigil_model::exposition::{Entry, Format, Parser};

type LabelMap = BTreeMap<String, String>;

fn metric_of(v: &Value) -> LabelMap {
    v["metric"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn value_of(v: &Value) -> String {
    v["value"][1].as_str().unwrap().to_string()
}

/// Series an exporter serves right now: label set (with `__name__`) -> value.
fn served(url: &str) -> BTreeMap<LabelMap, f64> {
    let (code, body) = get(url);
    assert_eq!(code, 200, "{url}");
    Parser::new(body.as_bytes(), Format::Text)
        .filter_map(|e| match e.unwrap() {
            Entry::Sample(s) => Some((
                s.to_labels()
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                s.value,
            )),
            _ => None,
        })
        .collect()
}

fn stored(base: &str, selector: &str) -> BTreeMap<LabelMap, String> {
    query(base, selector)
        .iter()
        .map(|r| (metric_of(r), value_of(r)))
        .collect()
}

#[test]
fn embedded_default_config_scrapes_itself() {
    let dir = temp_dir("embedded");
    let port = free_port();
    let p = spawn(
        "vigil",
        &vigil_bin(),
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &dir,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/healthy"));
    assert!(
        dir.join("data").is_dir(),
        "default storage path ./data is created"
    );
    // One scrape interval of the embedded config is 15s.
    let body = wait_for("up from the self-scrape", Duration::from_secs(25), || {
        let (_, b) = get(&format!("{base}/api/v1/query?query=up"));
        b.contains("\"job\":\"vigil\"").then_some(b)
    });
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let r = &v["data"]["result"][0];
    let want: LabelMap = [
        ("__name__", "up"),
        ("instance", &*format!("127.0.0.1:{port}")),
        ("job", "vigil"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(metric_of(r), want);
    assert!(r["value"][0].is_number(), "timestamp is a JSON number: {r}");
    assert_eq!(r["value"][1], "1");
    let (_, m) = get(&format!("{base}/metrics"));
    assert!(
        m.contains("prometheus_target_scrape_pool_targets{scrape_job=\"vigil\"} 1"),
        "{m}"
    );
    assert!(m.contains("process_resident_memory_bytes"), "{m}");
    drop(p);
}

#[test]
fn stores_what_node_exporter_served() {
    let dir = temp_dir("node");
    let (_ne, ne_port) = node_exporter(&dir);
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let v = Vigil::start("node", Some(&cfg), &[]);
    wait_for("node exporter up", Duration::from_secs(15), || {
        (query(&v.base, "up{job=\"node\"}").first().map(value_of) == Some("1".into())).then_some(())
    });
    // Let a couple more scrapes land, then compare with what the exporter serves.
    std::thread::sleep(Duration::from_millis(2500));
    let exporter = served(&format!("http://127.0.0.1:{ne_port}/metrics"));
    let instance = format!("127.0.0.1:{ne_port}");
    let ours = stored(&v.base, "{job=\"node\"}");
    let mut missing = Vec::new();
    for labels in exporter.keys() {
        let mut l = labels.clone();
        l.insert("job".into(), "node".into());
        l.insert("instance".into(), instance.clone());
        if !ours.contains_key(&l) {
            missing.push(l);
        }
    }
    assert!(
        missing.is_empty(),
        "{} served series not stored, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    // Values that do not change between scrapes must be stored exactly.
    let constant = [
        "node_memory_MemTotal_bytes",
        "process_max_fds",
        "node_exporter_build_info",
        "go_info",
    ];
    let mut compared = 0;
    for (labels, val) in &exporter {
        if constant.contains(&labels["__name__"].as_str()) {
            let mut l = labels.clone();
            l.insert("job".into(), "node".into());
            l.insert("instance".into(), instance.clone());
            assert_eq!(ours[&l].parse::<f64>().unwrap(), *val, "{l:?}");
            compared += 1;
        }
    }
    assert!(compared >= 3, "compared {compared} constant series");
    // The synthetic series describe the scrape.
    let scraped: f64 = value_of(&query(&v.base, "scrape_samples_scraped{job=\"node\"}")[0])
        .parse()
        .unwrap();
    assert!(
        (scraped - exporter.len() as f64).abs() <= 5.0,
        "scraped {scraped} vs served {}",
        exporter.len()
    );
    for m in [
        "scrape_duration_seconds",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        assert_eq!(
            query(&v.base, &format!("{m}{{job=\"node\"}}")).len(),
            1,
            "{m}"
        );
    }
    let t = get_json(&format!("{}/api/v1/targets", v.base));
    let a = &t["data"]["activeTargets"][0];
    assert_eq!(a["health"], "up");
    assert_eq!(a["scrapePool"], "node");
    assert_eq!(
        a["scrapeUrl"],
        format!("http://127.0.0.1:{ne_port}/metrics")
    );
    assert_eq!(a["discoveredLabels"]["__address__"], instance);
    assert_eq!(a["labels"]["instance"], instance);
    assert_eq!(a["lastError"], "");
    assert!(a["lastScrapeDuration"].as_f64().unwrap() > 0.0);
    assert!(a["lastScrape"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn blackbox_probe_with_params_and_param_target_relabeling() {
    let dir = temp_dir("blackbox");
    let (_ne, ne_port) = node_exporter(&dir);
    let (_bb, bb_port) = blackbox_exporter(&dir);
    // As chapter 14: the probe target travels in __param_target, the exporter is __address__.
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params:\n      module: [http_2xx]\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: 127.0.0.1:{bb_port}\n"
    );
    let v = Vigil::start("blackbox", Some(&cfg), &[]);
    let target = format!("127.0.0.1:{ne_port}");
    wait_for("probe_success", Duration::from_secs(15), || {
        let r = query(&v.base, "probe_success{job=\"blackbox\"}");
        (r.len() == 1 && value_of(&r[0]) == "1").then_some(())
    });
    let r = query(&v.base, "probe_http_status_code");
    assert_eq!(value_of(&r[0]), "200");
    assert_eq!(metric_of(&r[0])["instance"], target);
    let direct = served(&format!(
        "http://127.0.0.1:{bb_port}/probe?module=http_2xx&target={target}"
    ));
    let names: BTreeSet<String> = direct.keys().map(|l| l["__name__"].clone()).collect();
    let ours: BTreeSet<String> = stored(&v.base, "{job=\"blackbox\"}")
        .keys()
        .map(|l| l["__name__"].clone())
        .collect();
    let missing: Vec<_> = names.difference(&ours).collect();
    assert!(missing.is_empty(), "probe metrics not stored: {missing:?}");
    let t = get_json(&format!("{}/api/v1/targets", v.base));
    assert_eq!(
        t["data"]["activeTargets"][0]["scrapeUrl"],
        format!("http://127.0.0.1:{bb_port}/probe?module=http_2xx&target=127.0.0.1%3A{ne_port}")
    );
}

#[test]
fn reload_needs_lifecycle_keeps_loops_and_rejects_bad_config() {
    let dir = temp_dir("reload");
    let (_ne, ne_port) = node_exporter(&dir);
    let job = |name: &str| {
        format!(
            "  - job_name: {name}\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
        )
    };
    let head = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n";

    let locked = Vigil::start("reload-locked", Some(&format!("{head}{}", job("a"))), &[]);
    let (code, body) = http("POST", &format!("{}/-/reload", locked.base), None).unwrap();
    assert_eq!(
        (code, body.as_str()),
        (403, "Lifecycle API is not enabled.")
    );
    drop(locked);

    let v = Vigil::start(
        "reload",
        Some(&format!("{head}{}", job("a"))),
        &["--web.enable-lifecycle"],
    );
    wait_for("job a up", Duration::from_secs(15), || {
        (!query(&v.base, "up{job=\"a\"}").is_empty()).then_some(())
    });
    v.write_config(&format!("{head}{}{}", job("a"), job("b")));
    let (code, body) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 200, "{body}");
    // Job a's loop survived the reload: its target is still "up", not a fresh "unknown" one.
    let t = get_json(&format!("{}/api/v1/targets?scrapePool=a", v.base));
    assert_eq!(t["data"]["activeTargets"][0]["health"], "up");
    wait_for("job b up", Duration::from_secs(15), || {
        (!query(&v.base, "up{job=\"b\"}").is_empty()).then_some(())
    });

    v.write_config(&format!("{head}  - job_name: c\n    scrape_interval: 1s\n    scrape_timeout: 5s\n    static_configs:\n      - targets: ['x:1']\n"));
    let (code, body) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 500);
    assert!(
        body.contains("scrape timeout greater than scrape interval"),
        "{body}"
    );
    let pools = get_json(&format!("{}/api/v1/scrape_pools", v.base));
    assert_eq!(
        pools["data"]["scrapePools"],
        serde_json::json!(["a", "b"]),
        "old config keeps running"
    );
    let (_, m) = get(&format!("{}/metrics", v.base));
    assert!(
        m.contains("prometheus_config_last_reload_successful 0"),
        "{m}"
    );
    assert!(
        v.proc
            .log_text()
            .contains("scrape timeout greater than scrape interval"),
        "error is logged"
    );

    // A job whose CA file cannot be read fails the reload before anything changes: the
    // remote write endpoint given beside it is not started either.
    let missing = dir.join("no-such-ca.pem");
    v.write_config(&format!(
        "{head}{}  - job_name: tls\n    scheme: https\n    tls_config:\n      ca_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:1']\nremote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n",
        job("a"),
        missing.display()
    ));
    let (code, body) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("no-such-ca.pem"), "{body}");
    let rw = get_json(&format!("{}/api/v1/status/remote_write", v.base));
    assert_eq!(rw["data"]["queues"], serde_json::json!([]), "{rw}");
    let pools = get_json(&format!("{}/api/v1/scrape_pools", v.base));
    assert_eq!(pools["data"]["scrapePools"], serde_json::json!(["a", "b"]));

    // SIGHUP reloads too.
    v.write_config(&format!("{head}{}", job("a")));
    unsafe_kill_hup(v.proc.child.id());
    wait_for("job b gone after SIGHUP", Duration::from_secs(10), || {
        let p = get_json(&format!("{}/api/v1/scrape_pools", v.base));
        (p["data"]["scrapePools"] == serde_json::json!(["a"])).then_some(())
    });
}

fn unsafe_kill_hup(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn file_sd_follows_changes_and_stale_marks_removed_targets() {
    let dir = temp_dir("filesd");
    let (_ne, ne_port) = node_exporter(&dir);
    let targets = dir.join("targets.json");
    std::fs::write(
        &targets,
        format!(r#"[{{"targets": ["127.0.0.1:{ne_port}"], "labels": {{"team": "infra"}}}}]"#),
    )
    .unwrap();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: files\n    file_sd_configs:\n      - files: ['{}/*.json']\n",
        dir.display()
    );
    let v = Vigil::start("filesd", Some(&cfg), &[]);
    let r = wait_for("file target up", Duration::from_secs(15), || {
        let r = query(&v.base, "up{job=\"files\"}");
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(metric_of(&r[0])["team"], "infra");
    assert!(!query(&v.base, "node_memory_MemTotal_bytes{job=\"files\"}").is_empty());
    std::fs::write(&targets, "[]").unwrap();
    // The target goes away and its series are marked stale at once: queries stop returning them.
    wait_for("target removed and stale", Duration::from_secs(15), || {
        let t = get_json(&format!("{}/api/v1/targets", v.base));
        let gone = t["data"]["activeTargets"].as_array().unwrap().is_empty();
        (gone
            && query(&v.base, "up{job=\"files\"}").is_empty()
            && query(&v.base, "node_memory_MemTotal_bytes").is_empty())
        .then_some(())
    });
}

/// Serve `body` for every request on a free port, from a thread.
fn serve_static(body: &'static str, content_type: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn malformed_exposition_fails_the_scrape_with_the_line() {
    let dir = temp_dir("malformed");
    let _ = dir;
    let good = serve_static(
        "# TYPE a gauge\na 1\nb{x=\"1\"} 2\n",
        "text/plain; version=0.0.4",
    );
    let bad = serve_static("a 1\nb{x=\"1\" 2\n", "text/plain; version=0.0.4");
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: good\n    static_configs:\n      - targets: ['127.0.0.1:{good}']\n  - job_name: bad\n    static_configs:\n      - targets: ['127.0.0.1:{bad}']\n"
    );
    let v = Vigil::start("malformed", Some(&cfg), &[]);
    wait_for("both scraped", Duration::from_secs(15), || {
        (query(&v.base, "up").len() == 2).then_some(())
    });
    let up = stored(&v.base, "up");
    let by_job: BTreeMap<String, String> = up
        .iter()
        .map(|(l, v)| (l["job"].clone(), v.clone()))
        .collect();
    assert_eq!(by_job["good"], "1");
    assert_eq!(by_job["bad"], "0");
    // Nothing of the failed scrape is stored, not even the valid first line.
    assert!(query(&v.base, "a{job=\"bad\"}").is_empty());
    assert_eq!(query(&v.base, "a{job=\"good\"}").len(), 1);
    let t = get_json(&format!("{}/api/v1/targets?scrapePool=bad", v.base));
    let err = t["data"]["activeTargets"][0]["lastError"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("line 2"), "error names the line: {err}");
    assert_eq!(t["data"]["activeTargets"][0]["health"], "down");
}

#[test]
fn check_config_accepts_good_and_names_the_problem_in_bad() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/config"
    );
    let out = std::process::Command::new(vigil_bin())
        .args([
            "check",
            "config",
            &format!("{shared}/global_timeout.good.yml"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    let out = std::process::Command::new(vigil_bin())
        .args(["check", "config", &format!("{shared}/jobname.bad.yml")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED") && text.contains("job_name"),
        "{text}"
    );
}

/// The blackbox exporter's documented configuration: targets written as URLs, rewritten by
/// relabeling (Prometheus checks static targets only in jobs without relabel configs). The same
/// from a file SD file, where a bad group is dropped alone and named in the log, and a URL
/// target left as the address after relabeling is dropped with its error, as Prometheus does.
#[test]
fn url_targets_with_relabeling_and_a_bad_file_sd_group() {
    let dir = temp_dir("url-targets");
    let (_ne, ne_port) = node_exporter(&dir);
    let (_bb, bb_port) = blackbox_exporter(&dir);
    let url = format!("http://127.0.0.1:{ne_port}/metrics");
    std::fs::write(
        dir.join("probes.json"),
        format!(
            r#"[{{"targets": ["{url}?from=file"]}}, {{"targets": ["x:1"], "labels": {{"": "y"}}}}]"#
        ),
    )
    .unwrap();
    let relabel = format!(
        "    relabel_configs:\n      - source_labels: [__address__]\n        target_label: __param_target\n      - source_labels: [__param_target]\n        target_label: instance\n      - target_label: __address__\n        replacement: 127.0.0.1:{bb_port}\n"
    );
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params:\n      module: [http_2xx]\n    static_configs:\n      - targets: ['{url}']\n{relabel}  - job_name: blackbox-file\n    metrics_path: /probe\n    params:\n      module: [http_2xx]\n    file_sd_configs:\n      - files: ['{}']\n{relabel}  - job_name: unrelabeled-file\n    file_sd_configs:\n      - files: ['{}']\n",
        dir.join("probes.json").display(),
        dir.join("probes.json").display()
    );
    let v = Vigil::start("url-targets", Some(&cfg), &[]);
    for (job, instance) in [
        ("blackbox", url.clone()),
        ("blackbox-file", format!("{url}?from=file")),
    ] {
        wait_for(&format!("{job} probes"), Duration::from_secs(30), || {
            let r = query(&v.base, &format!("probe_success{{job=\"{job}\"}}"));
            (r.len() == 1 && value_of(&r[0]) == "1" && metric_of(&r[0])["instance"] == instance)
                .then_some(())
        });
    }
    // Without relabeling the URL is not an address: dropped at scrape time with its error.
    let t = get_json(&format!("{}/api/v1/targets?state=any", v.base));
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert!(
        !active
            .iter()
            .any(|a| a["labels"]["job"] == "unrelabeled-file"),
        "{t}"
    );
    let log = v.proc.log_text();
    assert!(
        log.contains("target group 1: \"\" is not a valid label name (group dropped)"),
        "{log}"
    );
    // The unrelabeled job's targets reach their pool on its own sync, which may log after
    // the probes above answered: waited for, not assumed.
    wait_for(
        "the URL target's error in the log",
        Duration::from_secs(30),
        || {
            v.proc
                .log_text()
                .contains("is not a valid hostname")
                .then_some(())
        },
    );
    // A job without relabeling still refuses a URL at load time, as Prometheus.
    let bad = "scrape_configs:\n  - job_name: x\n    static_configs:\n      - targets: ['http://a:1/x']\n";
    let out = std::process::Command::new(vigil_bin())
        .args(["check", "config"])
        .arg({
            let p = dir.join("bad.yml");
            std::fs::write(&p, bad).unwrap();
            p
        })
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("is not a valid hostname"));
}

/// Scrape `oauth2` (client credentials, token cached until it expires) against a token server
/// and a target of this test's that want them, and `tls_config.server_name` against a target
/// whose certificate names only `target.example` while it is scraped at 127.0.0.1.
#[test]
fn scrape_oauth2_and_tls_server_name() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = temp_dir("oauth2");
    // Token endpoint and protected target in one server.
    let tokens = Arc::new(AtomicU64::new(0));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let oport = l.local_addr().unwrap().port();
    let t2 = tokens.clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let tokens = t2.clone();
            let seen = seen2.clone();
            std::thread::spawn(move || {
                // Headers, then as much body as Content-Length says.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let len: usize = text[..h]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len || n == 0 {
                            break;
                        }
                    } else if n == 0 {
                        break;
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let lower = req.to_ascii_lowercase();
                let (code, body) = if req.starts_with("POST /token") {
                    // client id "vigil", secret "s3cret": dmlnaWw6czNjcmV0
                    if lower.contains("authorization: basic ") && req.contains("dmlnaWw6czNjcmV0") {
                        tokens.fetch_add(1, Ordering::Relaxed);
                        seen.lock()
                            .unwrap()
                            .push(req[req.find("\r\n\r\n").unwrap_or(0)..].to_string());
                        (
                            "200 OK",
                            r#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#
                                .to_string(),
                        )
                    } else {
                        ("401 Unauthorized", "bad client credentials".to_string())
                    }
                } else if lower.contains("authorization: bearer tok-1") {
                    ("200 OK", "# TYPE secured gauge\nsecured 1\n".to_string())
                } else {
                    ("401 Unauthorized", "no token".to_string())
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {code}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    // A TLS target whose certificate names target.example only.
    let pki = Pki::new(&dir);
    pki.issue(
        "named",
        "ca",
        "/CN=target.example",
        "subjectAltName=DNS:target.example",
    );
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            pki.path("named.crt"),
            pki.path("named.key")
        ),
    )
    .unwrap();
    let tport = free_port();
    let _target = spawn(
        "vigil-target",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{tport}"),
            format!("--storage.tsdb.path={}", dir.join("target-data").display()),
            format!("--web.config.file={}", web.display()),
        ],
        &dir,
    );
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let ca = pki.path("ca.crt");
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: oauth\n    oauth2:\n      client_id: vigil\n      client_secret_file: {}\n      token_url: http://127.0.0.1:{oport}/token\n      scopes: [metrics, read]\n      endpoint_params: {{audience: vigil}}\n    static_configs:\n      - targets: ['127.0.0.1:{oport}']\n  - job_name: named\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      server_name: target.example\n    static_configs:\n      - targets: ['127.0.0.1:{tport}']\n  - job_name: unnamed\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    static_configs:\n      - targets: ['127.0.0.1:{tport}']\n",
        secret.display()
    );
    let v = Vigil::start("oauth2", Some(&cfg), &[]);
    let t0 = std::time::Instant::now();
    while query(&v.base, "secured").is_empty() {
        if t0.elapsed() > Duration::from_secs(30) {
            panic!(
                "no oauth2 scrape: {}",
                get_json(&format!("{}/api/v1/targets", v.base))
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for("the named TLS target", Duration::from_secs(30), || {
        let r = query(&v.base, r#"up{job="named"} == 1"#);
        (!r.is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        tokens.load(Ordering::Relaxed),
        1,
        "the token is cached until it expires"
    );
    let body = seen.lock().unwrap()[0].clone();
    for want in [
        "grant_type=client_credentials",
        "scope=metrics%20read",
        "audience=vigil",
    ] {
        assert!(body.contains(want), "{want} in the token request: {body}");
    }
    assert_eq!(query(&v.base, r#"up{job="oauth"}"#)[0]["value"][1], "1");
    // Without server_name the certificate does not match 127.0.0.1.
    assert_eq!(query(&v.base, r#"up{job="unnamed"}"#)[0]["value"][1], "0");
}

/// A machine (or image) with no CA certificates: Prometheus starts and scrapes plain HTTP
/// there, and so must vigil (reqwest alone refuses to build any client without roots). HTTPS
/// targets with their own `ca_file` still verify; one relying on the missing system roots is
/// down, and its error says why.
#[test]
fn no_system_ca_certificates_plain_http_still_scrapes() {
    let dir = temp_dir("no-ca");
    let (_ne, ne_port) = node_exporter(&dir);
    let pki = Pki::new(&dir);
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            pki.path("server.crt"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    let tport = free_port();
    let _target = spawn(
        "no-ca-target",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{tport}"),
            format!("--storage.tsdb.path={}", dir.join("target-data").display()),
            format!("--web.config.file={}", web.display()),
        ],
        &dir,
    );
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: plain\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n  - job_name: own-ca\n    scheme: https\n    tls_config:\n      ca_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{tport}']\n  - job_name: system-ca\n    scheme: https\n    static_configs:\n      - targets: ['127.0.0.1:{tport}']\n",
        pki.path("ca.crt")
    );
    std::fs::write(dir.join("no-ca.yml"), cfg).unwrap();
    let empty = dir.join("no-certs");
    std::fs::create_dir_all(&empty).unwrap();
    let port = free_port();
    let log = dir.join("no-ca.log");
    let f = std::fs::File::create(&log).unwrap();
    let child = std::process::Command::new(vigil_bin())
        .args([
            format!("--config.file={}", dir.join("no-ca.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .env("SSL_CERT_FILE", dir.join("none.pem"))
        .env("SSL_CERT_DIR", &empty)
        .current_dir(&dir)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let _v = Proc {
        child,
        name: "no-ca".into(),
        log: log.clone(),
    };
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    let health = |job: &str| -> Option<(String, String)> {
        let r = get_json(&format!("{base}/api/v1/targets"));
        r["data"]["activeTargets"]
            .as_array()?
            .iter()
            .find(|t| t["labels"]["job"] == job && t["health"] != "unknown")
            .map(|t| {
                (
                    t["health"].as_str().unwrap_or("").to_string(),
                    t["lastError"].as_str().unwrap_or("").to_string(),
                )
            })
    };
    for job in ["plain", "own-ca"] {
        wait_for(job, Duration::from_secs(30), || {
            health(job).filter(|(h, _)| h == "up")
        });
    }
    let (h, err) = wait_for("system-ca scraped", Duration::from_secs(30), || {
        health("system-ca")
    });
    assert_eq!(h, "down");
    assert!(err.contains("no CA certificates"), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no CA certificates on this machine"),
        "{text}"
    );
}
