//! Grafana's Prometheus data source against vigil: each request `docs/grafana.md` lists (its
//! checklist rows in brackets), in the shapes Grafana 6.7 (the chapter 14 fixtures) and current
//! Grafana send, against vigil scraping a real node exporter. Grafana itself cannot run here; the
//! requests are rebuilt from its source and documentation.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

fn post_form(url: &str, body: &str) -> (u16, Value) {
    let (code, text) = http_form(url, body);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A form POST as Grafana's backend sends it.
fn http_form(url: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let code = buf[9..12].parse().unwrap();
    let body = buf.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked bodies: take the JSON object inside.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => body[a..=b].to_string(),
        _ => body.to_string(),
    };
    (code, body)
}

fn status(url: &str) -> u16 {
    http("GET", url, None).unwrap().0
}

#[test]
fn grafana_requests_answer_as_prometheus() {
    let dir = temp_dir("grafana");
    let (_ne, ne_port) = node_exporter(&dir);
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let v = Vigil::start("grafana", Some(&cfg), &[]);
    let b = v.base.clone();
    wait_for("data", Duration::from_secs(15), || {
        (query(&b, "up").len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (start, end) = ((now - 60) / 15 * 15, (now / 15 + 1) * 15);

    // [1] POST query_range, form body, aligned start/end.
    let (code, j) = post_form(
        &format!("{b}/api/v1/query_range"),
        &format!(
            "query={}&start={start}&end={end}&step=15",
            enc("rate(node_cpu_seconds_total[1m])")
        ),
    );
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["data"]["resultType"], "matrix");
    for s in j["data"]["result"].as_array().unwrap() {
        for p in s["values"].as_array().unwrap() {
            let t = p[0].as_f64().unwrap() as i64;
            assert_eq!((t - start) % 15, 0, "points at start + k*step");
            assert!(p[1].is_string());
        }
    }
    // [2] GET with integer times (6.7 through the data proxy); [3] fractional step and start.
    let (code, _) = http(
        "GET",
        &format!("{b}/api/v1/query_range?query=up&start={start}&end={end}&step=15"),
        None,
    )
    .unwrap();
    assert_eq!(code, 200);
    let r = get_json(&format!(
        "{b}/api/v1/query_range?query=up&start={start}.123&end={end}&step=0.2"
    ));
    assert_eq!(r["status"], "success");
    // [4] limits with Prometheus's messages.
    let (code, t) = http(
        "GET",
        &format!("{b}/api/v1/query_range?query=up&start=0&end={end}&step=1"),
        None,
    )
    .unwrap();
    assert_eq!(code, 400);
    assert!(t.contains("exceeded maximum resolution of 11,000 points per timeseries"));
    let (code, t) = http(
        "GET",
        &format!("{b}/api/v1/query_range?query=up&start={end}&end={start}&step=15"),
        None,
    )
    .unwrap();
    assert_eq!(code, 400);
    assert!(t.contains("end timestamp must not be before start time"));
    // [5] timeout and unknown parameters accepted; a bad timeout is bad data.
    let r = get_json(&format!(
        "{b}/api/v1/query?query=up&timeout=60s&max_source_resolution=5m"
    ));
    assert_eq!(r["status"], "success");
    assert_eq!(
        status(&format!("{b}/api/v1/query?query=up&timeout=soon")),
        400
    );
    // [6] Save & test (current): POST query=1+1&time=4.
    let (code, j) = post_form(&format!("{b}/api/v1/query"), "query=1%2B1&time=4");
    assert_eq!(code, 200);
    assert_eq!(j["data"]["resultType"], "scalar");
    assert_eq!(j["data"]["result"], serde_json::json!([4, "2"]));
    // [7] Save & test (6.7): GET with a fractional now.
    let r = get_json(&format!("{b}/api/v1/query?query=1%2B1&time={now}.123"));
    assert_eq!(r["data"]["result"][1], "2");
    // [8] POST with the parameters in the URL and an empty body.
    let (code, j) = post_form(&format!("{b}/api/v1/query?query=up"), "");
    assert_eq!(code, 200);
    assert_eq!(j["data"]["resultType"], "vector");
    // [9] instant vector shape.
    let r = get_json(&format!("{b}/api/v1/query?query=up&time={now}.5"));
    let s = &r["data"]["result"][0];
    assert_eq!(s["metric"]["job"], "node");
    assert_eq!(s["value"][0].as_f64(), Some(now as f64 + 0.5));
    // [10] the error envelope.
    let (code, t) = http("GET", &format!("{b}/api/v1/query?query=up%7B"), None).unwrap();
    assert_eq!(code, 400);
    let e: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(
        (e["status"].as_str(), e["errorType"].as_str()),
        (Some("error"), Some("bad_data"))
    );
    // [11] warnings beside data.
    let r = get_json(&format!(
        "{b}/api/v1/query?query={}",
        enc("histogram_quantile(2, up)")
    ));
    assert!(r["warnings"].as_array().is_some_and(|w| !w.is_empty()));
    // [12] buildinfo: semver >= 2.24, no `features` (or Grafana takes it for Mimir).
    let bi = get_json(&format!("{b}/api/v1/status/buildinfo"));
    let ver = bi["data"]["version"].as_str().unwrap();
    let parts: Vec<u32> = ver.split('.').map(|x| x.parse().unwrap()).collect();
    assert!(parts[0] > 2 || (parts[0] == 2 && parts[1] >= 24), "{ver}");
    assert!(bi["data"].get("features").is_none());
    // [13] POST where Prometheus only has GET: 405, so Grafana falls back to GET.
    for path in ["status/buildinfo", "rules", "label/job/values", "metadata"] {
        let (code, _) = http_form(&format!("{b}/api/v1/{path}"), "");
        assert_eq!(code, 405, "POST {path}");
    }
    // [14] labels in a (minute-snapped) range with Grafana's limit; [15] with match[].
    let r = get_json(&format!(
        "{b}/api/v1/labels?start={}&end={}&limit=40000",
        (now - 3600) / 60 * 60,
        now / 60 * 60 + 60
    ));
    let names: Vec<&str> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert!(names.contains(&"__name__") && names.contains(&"cpu"));
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted");
    let (code, j) = post_form(
        &format!("{b}/api/v1/labels"),
        &format!(
            "match[]={}&match[]={}",
            enc("up"),
            enc("{__name__=~\".*cpu_seconds.*\"}")
        ),
    );
    assert_eq!(code, 200);
    let names: Vec<&str> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert!(
        names.contains(&"mode") && names.contains(&"job"),
        "union: {names:?}"
    );
    // [16] label values with match[] and limit; [17] without a range.
    let r = get_json(&format!(
        "{b}/api/v1/label/__name__/values?match[]={}&limit=1",
        enc("{job=\"node\"}")
    ));
    assert_eq!(r["data"].as_array().unwrap().len(), 1);
    assert_eq!(r["warnings"][0], "results truncated due to limit");
    let r = get_json(&format!("{b}/api/v1/label/job/values"));
    assert_eq!(r["data"], serde_json::json!(["node"]));
    // [18] U__-escaped label names.
    let r = get_json(&format!("{b}/api/v1/label/U__job/values"));
    assert_eq!(r["data"], serde_json::json!(["node"]));
    // [19] series with match[] and limit; no match[] is bad data. [20] raw braces (6.x).
    let r = get_json(&format!(
        "{b}/api/v1/series?match[]={}&start={start}&end={end}&limit=2",
        enc("{__name__!=\"\"}")
    ));
    assert_eq!(r["data"].as_array().unwrap().len(), 2);
    assert_eq!(status(&format!("{b}/api/v1/series")), 400);
    // Braces unencoded as Grafana 6.x builds the URL; the browser itself encodes the quotes
    // (raw `"` is not valid in a request line, and hyper refuses it).
    let r = get_json(&format!(
        "{b}/api/v1/series?match[]={{__name__=%22up%22}}&start={start}&end={end}"
    ));
    assert_eq!(r["data"][0]["__name__"], "up");
    // [21] metadata; [22, 23] exemplars, probe in milliseconds and a real query.
    let r = get_json(&format!("{b}/api/v1/metadata"));
    assert!(r["data"].is_object());
    let r = get_json(&format!(
        "{b}/api/v1/query_exemplars?query=test&start={}&end={}",
        start * 1000,
        end * 1000
    ));
    assert_eq!(r["data"], serde_json::json!([]));
    let (code, j) = post_form(
        &format!("{b}/api/v1/query_exemplars"),
        &format!("query=up&start={start}&end={end}"),
    );
    assert_eq!((code, &j["data"]), (200, &serde_json::json!([])));
    // [24, 25] rules and alerts (none yet), [26] flags.
    assert_eq!(
        get_json(&format!("{b}/api/v1/rules"))["data"]["groups"],
        serde_json::json!([])
    );
    assert_eq!(
        get_json(&format!("{b}/api/v1/alerts"))["data"]["alerts"],
        serde_json::json!([])
    );
    assert!(get_json(&format!("{b}/api/v1/status/flags"))["data"]["storage.tsdb.path"].is_string());
    // [32] `$__rate_interval` arrives as a Go duration such as `1m0s`.
    let r = get_json(&format!(
        "{b}/api/v1/query?query={}",
        enc("rate(node_cpu_seconds_total[1m0s])")
    ));
    assert_eq!(r["status"], "success");

    // [27, 28] every query of the chapter 14 dashboards, as Grafana 6.7 sends them (30 minutes,
    // step 15: 121 points).
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/kiamol-ch14/grafana"
    );
    let mut n = 0;
    for f in [
        "grafana-dashboard-apod.json",
        "update/grafana-dashboard-todo-list-v3.json",
    ] {
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{fixtures}/{f}")).unwrap())
                .unwrap();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                let r = get_json(&format!(
                    "{b}/api/v1/query_range?query={}&start={}&end={end}&step=15",
                    enc(expr),
                    end - 1800
                ));
                assert_eq!(r["status"], "success", "{f}: {expr}: {r}");
                assert_eq!(r["data"]["resultType"], "matrix");
                n += 1;
            }
        }
    }
    assert_eq!(n, 13 + 20, "every dashboard query ran");
}
