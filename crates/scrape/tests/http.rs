//! The HTTP side of scrapes against a real server on loopback: auth headers, params and
//! path, content negotiation, gzip, body size limit, non-200 answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use vigil_scrape::Health;
use vigil_scrape::scrape_loop::ScrapeLoop;
use vigil_storage::{Matcher, MemoryStorage, Storage};

/// What the server saw of the last request.
type Seen = Arc<Mutex<Vec<String>>>;

/// Serve `body` (gzip-compressed when `gzip`) with `status` to every request, recording
/// request heads.
fn server(body: &'static str, status: &'static str, gzip: bool) -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = vec![0u8; 8192];
            let n = c.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            s2.lock().unwrap().push(head);
            let (payload, enc) = if gzip {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(body.as_bytes()).unwrap();
                (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
            } else {
                (body.as_bytes().to_vec(), "")
            };
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n{enc}Content-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = c.write_all(&payload);
        }
    });
    (port, seen)
}

fn scrape_loop(job_yaml: &str, port: u16) -> (ScrapeLoop, Arc<MemoryStorage>) {
    let yaml = format!("scrape_configs:\n  - job_name: t\n{job_yaml}");
    let cfg = vigil_config::Config::parse(&yaml, Path::new("/tmp")).expect("config");
    let st = Arc::new(MemoryStorage::new());
    let storage: Arc<dyn Storage> = st.clone();
    let lp = ScrapeLoop::for_target(
        cfg.scrape_configs[0].clone(),
        storage,
        &format!("127.0.0.1:{port}"),
    )
    .expect("loop");
    (lp, st)
}

fn up(st: &MemoryStorage) -> f64 {
    let q = st.querier(0, i64::MAX / 2).unwrap();
    q.select(&[Matcher::equal("__name__", "up")])
        .unwrap()
        .next()
        .unwrap()
        .samples
        .last()
        .unwrap()
        .v
}

#[tokio::test]
async fn basic_auth_params_path_and_negotiation() {
    let (port, seen) = server("a 1\n", "200 OK", false);
    let (mut lp, st) = scrape_loop(
        "    metrics_path: /probe\n    params:\n      module: [http_2xx]\n    basic_auth:\n      username: user\n      password: pass\n",
        port,
    );
    assert_eq!(
        lp.url(),
        format!("http://127.0.0.1:{port}/probe?module=http_2xx")
    );
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
    assert_eq!(up(&st), 1.0);
    let head = seen
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.starts_with("get /probe?module=http_2xx http/1.1"),
        "{head}"
    );
    assert!(head.contains("authorization: basic dxnlcjpwyxnz"), "{head}");
    assert!(
        head.contains("accept: application/openmetrics-text;version=1.0.0"),
        "{head}"
    );
    assert!(
        head.contains("x-prometheus-scrape-timeout-seconds: 10"),
        "{head}"
    );
    assert!(head.contains("accept-encoding: gzip"), "{head}");
}

#[tokio::test]
async fn bearer_token_file_is_read_at_scrape_time() {
    let (port, seen) = server("a 1\n", "200 OK", false);
    let dir = std::env::temp_dir().join(format!("vigil-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tok = dir.join("token");
    std::fs::write(&tok, "first\n").unwrap();
    let (mut lp, _) = scrape_loop(&format!("    bearer_token_file: {}\n", tok.display()), port);
    lp.scrape_and_report().await;
    std::fs::write(&tok, "rotated\n").unwrap();
    lp.scrape_and_report().await;
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer first"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .contains("authorization: bearer rotated"),
        "{}",
        heads[1]
    );
}

#[tokio::test]
async fn http_headers_values_secrets_and_files_are_sent() {
    let (port, seen) = server("a 1\n", "200 OK", false);
    let dir = std::env::temp_dir().join(format!("vigil-hdr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("tenant");
    std::fs::write(&f, "team-a\n").unwrap();
    let (mut lp, _) = scrape_loop(
        &format!(
            "    http_headers:\n      X-Plain: {{values: [v1]}}\n      X-Secret: {{secrets: [s1]}}\n      X-Scope-OrgID: {{files: [{}]}}\n",
            f.display()
        ),
        port,
    );
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
    // Files are re-read per request, as Prometheus does (rotated tokens are picked up).
    std::fs::write(&f, "team-b\n").unwrap();
    lp.scrape_and_report().await;
    let heads: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for want in ["x-plain: v1", "x-secret: s1", "x-scope-orgid: team-a"] {
        assert!(heads[0].contains(want), "{want}: {}", heads[0]);
    }
    assert!(heads[1].contains("x-scope-orgid: team-b"), "{}", heads[1]);
    // A file gone at scrape time fails that scrape with its name, not silently.
    std::fs::remove_file(&f).unwrap();
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Down);
    assert!(
        lp.status().last_error.contains("tenant"),
        "{}",
        lp.status().last_error
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn gzip_bodies_are_decompressed() {
    let (port, _) = server("# TYPE a gauge\na{x=\"1\"} 42\n", "200 OK", true);
    let (mut lp, st) = scrape_loop("", port);
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
    let q = st.querier(0, i64::MAX / 2).unwrap();
    let a: Vec<_> = q
        .select(&[Matcher::equal("__name__", "a")])
        .unwrap()
        .collect();
    assert_eq!(a[0].samples[0].v, 42.0);
}

#[tokio::test]
async fn large_bodies_reuse_kept_buffers_and_keep_their_limit() {
    // Past the size the body pool keeps buffers for; under gzip the length is unknown until
    // read, so scrapes after the first are sized from the one before and take a kept buffer.
    let body: &'static str = Box::leak(
        (0..40_000)
            .map(|i| format!("big_series{{n=\"{i:06}\"}} {i}\n"))
            .collect::<String>()
            .into_boxed_str(),
    );
    assert!(body.len() > vigil_scrape::body_pool::MIN_KEPT);
    for gzip in [true, false] {
        let (port, _) = server(body, "200 OK", gzip);
        let (mut lp, st) =
            scrape_loop(&format!("    body_size_limit: {}B\n", body.len() + 1), port);
        for _ in 0..3 {
            lp.scrape_and_report().await;
            assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
            assert_eq!(lp.status().last_samples, 40_000);
        }
        let q = st.querier(0, i64::MAX / 2).unwrap();
        let n = q
            .select(&[Matcher::equal("__name__", "big_series")])
            .unwrap()
            .count();
        assert_eq!(n, 40_000);
        // A body of exactly the limit fails, as in Prometheus; without gzip its declared
        // length takes one of the buffers the scrapes above gave back.
        let (mut lp, _) = scrape_loop(&format!("    body_size_limit: {}B\n", body.len()), port);
        for _ in 0..2 {
            lp.scrape_and_report().await;
            assert_eq!(lp.status().last_error, "body size limit exceeded");
        }
    }
}

#[tokio::test]
async fn body_size_limit_and_http_errors_fail_the_scrape() {
    let (port, _) = server("a_metric_with_a_long_name 1\n", "200 OK", false);
    let (mut lp, st) = scrape_loop("    body_size_limit: 10B\n", port);
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Down);
    assert_eq!(lp.status().last_error, "body size limit exceeded");
    assert_eq!(up(&st), 0.0);

    // With `extra-scrape-metrics`, the body size reads -1 for a body over the limit, as in
    // Prometheus, and the whole body's bytes otherwise.
    let whole = "a_metric_with_a_long_name 1\n".len() as f64;
    for (limit, want) in [("10B", -1.0), ("1KiB", whole)] {
        let yaml = format!("scrape_configs:\n  - job_name: t\n    body_size_limit: {limit}\n");
        let cfg = vigil_config::Config::parse(&yaml, Path::new("/tmp")).expect("config");
        let mut sc = cfg.scrape_configs[0].clone();
        sc.extra_scrape_metrics = true;
        let st = Arc::new(MemoryStorage::new());
        let storage: Arc<dyn Storage> = st.clone();
        let mut lp = ScrapeLoop::for_target(sc, storage, &format!("127.0.0.1:{port}")).unwrap();
        lp.scrape_and_report().await;
        let q = st.querier(0, i64::MAX / 2).unwrap();
        let got = q
            .select(&[Matcher::equal("__name__", "scrape_body_size_bytes")])
            .unwrap()
            .next()
            .map(|s| s.samples[0].v);
        assert_eq!(got, Some(want), "limit {limit}");
    }

    let (port, _) = server("nope", "404 Not Found", false);
    let (mut lp, _) = scrape_loop("", port);
    lp.scrape_and_report().await;
    assert_eq!(
        lp.status().last_error,
        "server returned HTTP status 404 Not Found"
    );

    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut lp, _) = scrape_loop("", dead);
    lp.scrape_and_report().await;
    let e = lp.status().last_error;
    assert!(
        e.starts_with(&format!("Get \"http://127.0.0.1:{dead}/metrics\"")),
        "{e}"
    );
}

/// `tls_config.server_name` is sent as SNI (as Go sends it) and the certificate is checked
/// against it, while the request goes to the target's address with the target in `Host`.
#[tokio::test]
async fn tls_server_name_is_sent_as_sni() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    vigil_scrape::client::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("vigil-sni-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = |f: &str| dir.join(f).display().to_string();
    let ossl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    ossl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=sni test ca",
                "-keyout",
                &d("ca.key"),
                "-out",
                &d("ca.crt"),
            ],
        ]
        .concat(),
    );
    ossl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=target.example",
                "-keyout",
                &d("t.key"),
                "-out",
                &d("t.csr"),
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("t.ext"), "subjectAltName=DNS:target.example\n").unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        &d("t.csr"),
        "-CA",
        &d("ca.crt"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &d("t.ext"),
        "-out",
        &d("t.crt"),
    ]);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(d("t.crt"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(d("t.key")).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, c);
            let mut buf = vec![0u8; 8192];
            let n = tls.read(&mut buf).unwrap_or(0);
            let sni = tls.conn.server_name().unwrap_or("<none>").to_string();
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            s2.lock().unwrap().push(format!("sni={sni}\n{head}"));
            let body = "a 1\n";
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    let (mut lp, st) = scrape_loop(
        &format!(
            "    scheme: https\n    tls_config:\n      ca_file: {}\n      server_name: target.example\n",
            d("ca.crt")
        ),
        port,
    );
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
    assert_eq!(up(&st), 1.0);
    let seen = seen.lock().unwrap().clone();
    let head = seen[0].to_ascii_lowercase();
    assert!(head.starts_with("sni=target.example\n"), "{head}");
    assert!(head.contains(&format!("host: 127.0.0.1:{port}")), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn proxy_url_is_used_and_no_proxy_bypasses_it() {
    let (target, target_seen) = server("a 1\n", "200 OK", false);
    let (proxy, proxy_seen) = server("a 1\n", "200 OK", false);
    let (mut lp, _) = scrape_loop(
        &format!("    proxy_url: http://127.0.0.1:{proxy}\n"),
        target,
    );
    lp.scrape_and_report().await;
    assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
    // Through the proxy the request line carries the absolute URL of the target.
    let via = proxy_seen.lock().unwrap().clone();
    assert_eq!(via.len(), 1, "{via:?}");
    assert!(
        via[0].starts_with(&format!("GET http://127.0.0.1:{target}/metrics")),
        "{}",
        via[0]
    );
    assert!(target_seen.lock().unwrap().is_empty());
    // `no_proxy` naming the target's address (an IP, a CIDR) sends it direct.
    for bypass in ["127.0.0.1", "10.0.0.0/8,127.0.0.0/8"] {
        let (mut lp, _) = scrape_loop(
            &format!("    proxy_url: http://127.0.0.1:{proxy}\n    no_proxy: {bypass}\n"),
            target,
        );
        lp.scrape_and_report().await;
        assert_eq!(lp.status().health, Health::Up, "{}", lp.status().last_error);
    }
    assert_eq!(proxy_seen.lock().unwrap().len(), 1, "no_proxy ignored");
    assert_eq!(target_seen.lock().unwrap().len(), 2);
    // A list that does not name the target keeps the proxy.
    let (mut lp, _) = scrape_loop(
        &format!("    proxy_url: http://127.0.0.1:{proxy}\n    no_proxy: example.com\n"),
        target,
    );
    lp.scrape_and_report().await;
    assert_eq!(proxy_seen.lock().unwrap().len(), 2);
}

/// Prometheus 3.13's per-target histogram labels: relabeling `__scrape_native_histograms__`
/// to true makes this target's Accept header ask for protobuf first (no `scrape_protocols`
/// set), while the job's other targets keep the text formats.
#[tokio::test]
async fn a_target_s_native_histograms_label_picks_its_accept_header() {
    let (port, seen) = server("a 1\n", "200 OK", false);
    async fn head(lp: &mut ScrapeLoop, seen: &Seen) -> String {
        lp.scrape_and_report().await;
        seen.lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap()
            .to_ascii_lowercase()
    }
    let (mut plain, _) = scrape_loop("", port);
    let h = head(&mut plain, &seen).await;
    assert!(
        h.contains("accept: application/openmetrics-text;version=1.0.0"),
        "{h}"
    );
    let (mut native, _) = scrape_loop(
        "    relabel_configs:\n      - target_label: __scrape_native_histograms__\n        replacement: 'true'\n",
        port,
    );
    let h = head(&mut native, &seen).await;
    assert!(
        h.contains("accept: application/vnd.google.protobuf;proto=io.prometheus.client.metricfamily;encoding=delimited"),
        "{h}"
    );
}
