//! Prometheus 3's UTF-8 metric and label names end to end: a target exposing quoted names in
//! the text format 1.0.0, scraped under both validation schemes (each asking for its
//! escaping in the Accept header), queried with quoted selectors, read through the label
//! values API with `U__` names, and federated by Debian's Prometheus 2.42, which knows no
//! UTF-8 names and so must get them escaped.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

const BODY: &str = "# HELP \"http.requests\" Requests served.\n# TYPE \"http.requests\" counter\n{\"http.requests\",\"k8s.pod\"=\"web-1\",code=\"200\"} 5\n{\"http.requests\",\"k8s.pod\"=\"web-2\",code=\"500\"} 2\nplain_metric{\"label.with.dots\"=\"x\"} 1\n";

/// Each request's path and Accept header.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A target answering every request with [`BODY`] as text 1.0.0, keeping each request's
/// path and Accept header.
fn target() -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let keep = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
            let accept = req
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("accept")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            keep.lock().unwrap().push((path, accept));
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            );
        }
    });
    (port, seen)
}

fn labels(r: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r["metric"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn utf8_names_scrape_query_and_federate() {
    let (port, seen) = target();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: utf8\n    metrics_path: /utf8\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  - job_name: legacy\n    metrics_path: /legacy\n    metric_name_validation_scheme: legacy\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let v = Vigil::start("utf8-names", Some(&cfg), &[]);
    let pods = wait_for("the quoted series", Duration::from_secs(30), || {
        let r = query(&v.base, r#"{"http.requests"}"#);
        (r.len() == 2).then_some(r)
    });
    let mut got: Vec<Vec<(String, String)>> = pods.iter().map(labels).collect();
    got.sort();
    let want = |pod: &str, code: &str| {
        let mut l = vec![
            ("__name__".to_string(), "http.requests".to_string()),
            ("code".to_string(), code.to_string()),
            ("instance".to_string(), format!("127.0.0.1:{port}")),
            ("job".to_string(), "utf8".to_string()),
            ("k8s.pod".to_string(), pod.to_string()),
        ];
        l.sort();
        l
    };
    assert_eq!(got, [want("web-1", "200"), want("web-2", "500")]);
    // Quoted label names group and match.
    let r = query(
        &v.base,
        r#"sum by ("k8s.pod") ({"http.requests", code="500"})"#,
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["metric"]["k8s.pod"], "web-2");
    assert_eq!(r[0]["value"][1], "2");
    let r = query(&v.base, r#"plain_metric{"label.with.dots"="x"}"#);
    assert_eq!(r.len(), 1, "{r:?}");

    // The legacy job refuses the whole scrape, naming the series, and stores none of it.
    let t = wait_for("the legacy job's error", Duration::from_secs(30), || {
        let t = get_json(&format!("{}/api/v1/targets", v.base));
        let a = t["data"]["activeTargets"].as_array()?.clone();
        let legacy = a.into_iter().find(|x| x["labels"]["job"] == "legacy")?;
        (legacy["health"] == "down").then_some(legacy)
    });
    let err = t["lastError"].as_str().unwrap();
    assert!(
        err.contains("invalid metric name or label names") && err.contains("http.requests"),
        "{err}"
    );
    assert!(
        query(
            &v.base,
            r#"{job="legacy", __name__!="up", __name__!~"scrape_.*"}"#
        )
        .is_empty()
    );
    let r = query(&v.base, r#"up{job="legacy"}"#);
    assert_eq!(r[0]["value"][1], "0");

    // Each job asked for its own escaping, with Prometheus 3's Accept header (read once both
    // jobs have been scraped: the legacy job's error above says it was).
    let accepts: Vec<(String, String)> = seen.lock().unwrap().clone();
    let of = |p: &str| {
        accepts
            .iter()
            .find(|(path, _)| path == p)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no scrape of {p}: {accepts:?}"))
    };
    assert_eq!(
        of("/utf8"),
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
    assert!(
        of("/legacy").contains("escaping=underscores"),
        "{accepts:?}"
    );

    // Label values by a `U__`-escaped name (as Grafana asks).
    let lv = get_json(&format!("{}/api/v1/label/U__k8s_2e_pod/values", v.base));
    assert_eq!(lv["data"], serde_json::json!(["web-1", "web-2"]), "{lv}");

    // Federation: names as they are only for a reader that asks.
    let fed = |accept: &str| {
        let (_, code, text) = curl(&[
            "-H",
            &format!("Accept: {accept}"),
            &format!(
                "{}/federate?match[]={}",
                v.base,
                enc(r#"{__name__=~"http.requests|plain_metric"}"#)
            ),
        ]);
        assert_eq!(code, 200, "{text}");
        text
    };
    let t = fed("text/plain;version=0.0.4;escaping=allow-utf-8");
    assert!(t.contains("escaping=allow-utf-8"), "{t}");
    assert!(t.contains("# TYPE \"http.requests\" untyped"), "{t}");
    assert!(
        t.contains("{\"http.requests\",code=\"200\",instance="),
        "{t}"
    );
    assert!(t.contains("\"k8s.pod\"=\"web-1\""), "{t}");
    let t = fed("text/plain;version=0.0.4");
    assert!(t.contains("escaping=underscores"), "{t}");
    assert!(t.contains("http_requests{code=\"200\""), "{t}");
    assert!(t.contains("k8s_pod=\"web-1\""), "{t}");
    assert!(t.contains("plain_metric{instance="), "{t}");
    assert!(t.contains("label_with_dots=\"x\""), "{t}");
    let t = fed("text/plain;version=0.0.4;escaping=values");
    assert!(t.contains("U__http_2e_requests{"), "{t}");
    assert!(t.contains("U__k8s_2e_pod=\"web-1\""), "{t}");

    // Debian's Prometheus 2.42 federates from vigil: it asks for no escaping, so it gets
    // underscores, which it can store.
    let dir = temp_dir("utf8-names-prom");
    let pport = free_port();
    let pcfg = dir.join("prometheus.yml");
    std::fs::write(
        &pcfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params: {{'match[]': ['{{__name__=~\"http.requests|plain_metric\"}}']}}\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            v.port
        ),
    )
    .unwrap();
    let _prom = spawn(
        "prometheus",
        &debian_bin("prometheus"),
        &[
            format!("--config.file={}", pcfg.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{pport}"),
        ],
        &dir,
    );
    let pbase = format!("http://127.0.0.1:{pport}");
    wait_http(&format!("{pbase}/-/ready"));
    let r = wait_for("Prometheus to federate", Duration::from_secs(60), || {
        let r = query(&pbase, "http_requests");
        (r.len() == 2).then_some(r)
    });
    let mut pods: Vec<String> = r
        .iter()
        .map(|x| x["metric"]["k8s_pod"].as_str().unwrap().to_string())
        .collect();
    pods.sort();
    assert_eq!(pods, ["web-1", "web-2"], "{r:?}");
    let up = query(&pbase, r#"up{job="federate"}"#);
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
}

/// The schemes are checked as Prometheus checks them: a legacy scheme cannot ask for UTF-8
/// names, and an unknown scheme is named.
#[test]
fn name_schemes_are_checked_at_load() {
    let dir = temp_dir("utf8-names-check");
    let check = |yaml: &str| {
        let f = dir.join("p.yml");
        std::fs::write(&f, yaml).unwrap();
        let out = std::process::Command::new(vigil_bin())
            .args(["check", "config"])
            .arg(&f)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = check(
        "scrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: legacy\n    metric_name_escaping_scheme: allow-utf-8\n    static_configs:\n      - targets: ['x:1']\n",
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("utf8 metric names requested but validation scheme is not set to UTF8"),
        "{text}"
    );
    let (ok, text) = check(
        "global:\n  metric_name_escaping_scheme: nope\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1']\n",
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("unknown global name escaping method specified") && text.contains("nope"),
        "{text}"
    );
    // Global legacy, inherited: the scrape config asks for underscores and is valid; and it
    // takes no warning (the fields act).
    let (ok, text) = check(
        "global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n    relabel_configs:\n      - target_label: ok_name\n        replacement: x\n    static_configs:\n      - targets: ['x:1']\n",
    );
    assert!(ok, "{text}");
    assert!(!text.contains("WARNING"), "{text}");
    // A relabel target outside the legacy names is refused under legacy, taken under utf8.
    let relabel = |scheme: &str| {
        format!(
            "scrape_configs:\n  - job_name: a\n    metric_name_validation_scheme: {scheme}\n    relabel_configs:\n      - target_label: k8s.pod\n        replacement: x\n    static_configs:\n      - targets: ['x:1']\n"
        )
    };
    let (ok, text) = check(&relabel("legacy"));
    assert!(
        !ok && text.contains("\"k8s.pod\" is invalid 'target_label'"),
        "{text}"
    );
    let (ok, text) = check(&relabel("utf8"));
    assert!(ok, "{text}");
}
