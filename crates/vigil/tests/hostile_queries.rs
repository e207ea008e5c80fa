//! Hostile requests against the real server: deep nesting of every construct, long chains,
//! 10 MB expressions, absurd ranges and steps. Each gets an answer (a result or a clear error),
//! and the server is alive and still scraping afterwards.

mod support;

use std::time::Duration;

use support::*;

fn post_query(base: &str, path: &str, q: &str) -> (u16, serde_json::Value) {
    post_raw(base, path, &format!("query={}", enc(q)))
}

/// POST a form body as given (characters such as `(` and `-` need no escaping in a form, so
/// a 10 MB expression stays a 10 MB body). The answer is read even if the server stops reading
/// the body early (as it does past its size limit).
fn post_raw(base: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body.as_bytes());
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let v = serde_json::from_str(payload)
        .unwrap_or_else(|_| serde_json::Value::String(payload.to_string()));
    (code, v)
}

/// Samples of `up` stored for vigil's own target so far.
fn scrapes(base: &str) -> f64 {
    let r = query(base, "count_over_time(up[1h])");
    r.first()
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn hostile_queries_get_answers_and_the_server_keeps_scraping() {
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let v = Vigil::start_on("hostile", Some(&cfg), &[], port);
    let b = v.base.clone();
    wait_for("first scrapes", Duration::from_secs(30), || {
        (scrapes(&b) >= 2.0).then_some(())
    });
    let before = scrapes(&b);

    // What Prometheus answers, vigil answers.
    let answered = [
        format!("{}1{}", "(".repeat(2000), ")".repeat(2000)),
        format!("{}up", "-".repeat(10_000)),
        format!("1{}", "+1".repeat(50_000)),
        format!("{}up{}", "sum(".repeat(3000), ")".repeat(3000)),
        format!("up{}", " or up".repeat(20_000)),
    ];
    for q in &answered {
        let (code, r) = post_query(&b, "/api/v1/query", q);
        assert_eq!(code, 200, "{}...: {r}", &q[..30]);
        assert_eq!(r["status"], "success");
        for path in ["/api/v1/parse_query", "/api/v1/format_query"] {
            let (code, r) = post_query(&b, path, q);
            assert!(
                code == 200 || (code == 400 && r["errorType"] == "bad_data"),
                "{path} {}...: {code} {r}",
                &q[..30]
            );
        }
    }
    let (_, r) = post_query(&b, "/api/v1/query", &format!("1{}", "+1".repeat(50_000)));
    assert_eq!(r["data"]["result"][1], "50001");

    // Past the documented limits: a clear bad_data error.
    let refused = [
        (
            format!("{}up{}", "abs(".repeat(20_001), ")".repeat(20_001)),
            "nested too deeply",
        ),
        (format!("{}up", "-".repeat(20_001)), "nested too deeply"),
        (
            format!("1{}", "+1".repeat(300_000)),
            "more than 250000 operators",
        ),
        ("rate(up[300y])".to_string(), "duration out of range"),
        (
            "up @ -9223372036854775808".to_string(),
            "timestamp out of bounds",
        ),
    ];
    for (q, want) in &refused {
        for path in [
            "/api/v1/query",
            "/api/v1/parse_query",
            "/api/v1/format_query",
        ] {
            let (code, r) = post_query(&b, path, q);
            assert_eq!(code, 400, "{path} {}...: {r}", &q[..20]);
            assert_eq!(r["errorType"], "bad_data");
            assert!(r["error"].as_str().unwrap().contains(want), "{r}");
        }
    }
    // 10 MB expressions, sent as 10 MB form bodies: refused by the lexer before any tree is
    // built, or answered.
    let ten_mb = (10 << 20) - 64;
    for (q, want) in [
        (
            format!("1{}", "-1".repeat(ten_mb / 2 - 1)),
            Some("more than 1000000 tokens"),
        ),
        ("(".repeat(ten_mb), Some("more than 1000000 tokens")),
        ("a".repeat(ten_mb), None),
    ] {
        for path in [
            "/api/v1/query",
            "/api/v1/parse_query",
            "/api/v1/format_query",
        ] {
            let (code, r) = post_raw(&b, path, &format!("query={q}"));
            match want {
                Some(w) => {
                    assert_eq!(code, 400, "{path} {}...: {r}", &q[..20]);
                    assert!(r["error"].as_str().unwrap().contains(w), "{r}");
                }
                None => assert_eq!(code, 200, "{path} {}...: {r}", &q[..20]),
            }
        }
    }
    // Larger than Prometheus's 10 MiB form limit: refused before parsing.
    let (code, _) = post_raw(
        &b,
        "/api/v1/query",
        &format!("query={}", "1".repeat(11 << 20)),
    );
    assert_eq!(code, 413);

    // Absurd ranges and steps.
    let (code, r) = post_query(&b, "/api/v1/query", "count_over_time(up[1y:1ms])");
    assert_eq!(
        (code, r["errorType"].as_str()),
        (422, Some("execution")),
        "{r}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (params, want) in [
        (format!("start=0&end={now}&step=0.001"), 400),
        ("start=-1e30&end=1e30&step=1e25".to_string(), 200),
        ("start=1&end=0&step=1".to_string(), 400),
        ("start=0&end=1&step=-1".to_string(), 400),
    ] {
        let (code, r) = http(
            "GET",
            &format!("{b}/api/v1/query_range?query=up&{params}"),
            None,
        )
        .unwrap();
        assert_eq!(code, want, "{params}: {r}");
    }
    let (code, r) = get(&format!("{b}/api/v1/query?query=up&time=1e300"));
    assert_eq!(code, 200, "{r}");

    // Alive, and scraping went on throughout.
    assert_eq!(get(&format!("{b}/-/healthy")).0, 200);
    wait_for(
        "scrapes after the hostile queries",
        Duration::from_secs(30),
        || (scrapes(&b) >= before + 2.0).then_some(()),
    );
    let log = v.proc.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
