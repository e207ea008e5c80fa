//! The budget of the HTTP bodies being probed at once, against a real site on loopback. A
//! test binary of its own: the budget is process-wide.

use std::time::Duration;

use vigil_exporters::probe::{Outcome, load_modules, probe, set_body_budget};

/// A site that sends without end fails its probe at the module's `body_size_limit`, or
/// without one at the bodies' budget, well before the timeout, and gives the budget back; an
/// ordinary site is probed as before.
#[tokio::test]
async fn an_endless_body_fails_its_probe_at_the_budget() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    set_body_budget(8 << 20);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                let _ = c.read(&mut req).await;
                let endless = req.starts_with(b"GET /endless");
                let head: &[u8] = if endless {
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                };
                let _ = c.write_all(head).await;
                let block = vec![b'x'; 1 << 16];
                while endless && c.write_all(&block).await.is_ok() {}
            });
        }
    });
    let mods = load_modules(None).unwrap();
    // A module's `body_size_limit` stops the read first: that many bytes, then a failure.
    let limited = load_modules(Some(
        "modules:\n  small:\n    prober: http\n    http:\n      body_size_limit: 64KiB\n",
    ))
    .unwrap();
    let o = probe(
        &limited["small"],
        &format!("http://127.0.0.1:{port}/endless"),
        Duration::from_secs(60),
    )
    .await;
    let get = |o: &Outcome, n: &str| o.metrics.iter().find(|m| m.0 == n).map(|m| m.2);
    assert_eq!(get(&o, "probe_success"), Some(0.0));
    assert_eq!(
        get(&o, "probe_http_uncompressed_body_length"),
        Some(65536.0)
    );
    assert_eq!(get(&o, "probe_http_status_code"), Some(200.0));
    assert!(
        o.log.iter().any(|l| l.contains("request body too large")),
        "{:?}",
        o.log
    );
    let o = probe(
        &limited["small"],
        &format!("http://127.0.0.1:{port}/fine"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(get(&o, "probe_success"), Some(1.0), "{:?}", o.log);
    // A size without its unit is refused naming the field, as the exporter refuses it.
    let err = load_modules(Some(
        "modules:\n  m:\n    prober: http\n    http:\n      body_size_limit: 12\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("http.body_size_limit") && err.contains("unit"),
        "{err}"
    );
    let o = probe(
        &mods["http_2xx"],
        &format!("http://127.0.0.1:{port}/endless"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(get(&o, "probe_success"), Some(0.0));
    assert!(
        o.log
            .iter()
            .any(|l| l.contains("vigil's bound") && l.contains("8388608")),
        "{:?}",
        o.log
    );
    let o = probe(
        &mods["http_2xx"],
        &format!("http://127.0.0.1:{port}/fine"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(get(&o, "probe_success"), Some(1.0), "{:?}", o.log);
}
