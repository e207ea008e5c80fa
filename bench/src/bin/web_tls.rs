//! What `--web.config.file` costs: `/api/v1/query?query=up` requests per second against vigil
//! with plain HTTP, with basic auth, and with TLS plus basic auth (a certificate from a CA made
//! here with OpenSSL, bcrypt cost 10), CLIENTS concurrent keep-alive clients for SECONDS each.
//! Checks every answer is a success with one `up` series; prints the rates and the overheads.
//! The three run in the order A B C C B A and each rate is the mean of its two runs, so drift of
//! the shared machine (warm-up, other load) does not favour one.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin web_tls [-- CLIENTS SECONDS]`

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_bench::{Killed, free_port, up};

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pki(dir: &Path) {
    let d = |f: &str| dir.join(f).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=bench ca",
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.crt"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=bench server",
        "-keyout",
        &d("server.key"),
        "-out",
        &d("server.csr"),
    ]);
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.crt"),
        "-CAkey",
        &d("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &d("ext"),
        "-out",
        &d("server.crt"),
    ]);
}

/// Requests per second over `seconds` with `clients` keep-alive clients; panics on a bad answer.
fn rate(base: &str, ca: Option<&Path>, auth: bool, clients: usize, seconds: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut b = reqwest::Client::builder().pool_max_idle_per_host(clients);
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).unwrap();
            b = b.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
        }
        let client = b.build().unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let url = format!("{base}/api/v1/query?query=up");
        let start = Instant::now();
        let deadline = start + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url, done) = (client.clone(), url.clone(), done.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let mut req = client.get(&url);
                        if auth {
                            req = req.basic_auth("alice", Some("secret"));
                        }
                        let resp = req.send().await.expect("request");
                        assert_eq!(resp.status(), 200);
                        let v: serde_json::Value = resp.json().await.unwrap();
                        assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(1));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(16);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    vigil_scrape::client::install_crypto_provider();
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    pki(&dir);
    let hash = bcrypt::hash("secret", 10).unwrap();
    let auth_only = dir.join("auth.yml");
    std::fs::write(&auth_only, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let tls_auth = dir.join("tls.yml");
    std::fs::write(
        &tls_auth,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    )
    .unwrap();
    println!("{clients} keep-alive clients, {seconds}s each, GET /api/v1/query?query=up\n");
    let kinds = [
        ("plain HTTP", None, "http"),
        ("basic auth", Some(&auth_only), "http"),
        ("TLS + basic auth", Some(&tls_auth), "https"),
    ];
    let mut sums = [0.0f64; 3];
    for i in [0usize, 1, 2, 2, 1, 0] {
        let (name, web, scheme) = kinds[i];
        let port = free_port();
        let cfg = dir.join("vigil.yml");
        std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    scheme: {scheme}\n{}    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            if web.is_some() { format!("    basic_auth:\n      username: alice\n      password: secret\n    tls_config:\n      ca_file: {}\n", dir.join("ca.crt").display()) } else { String::new() })).unwrap();
        let mut cmd = Command::new(&vigil);
        cmd.args([
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!(
                "--storage.tsdb.path={}",
                dir.join(format!("data-{port}")).display()
            ),
            "--log.level=error".into(),
        ]);
        if let Some(w) = web {
            cmd.arg(format!("--web.config.file={}", w.display()));
        }
        let _v = Killed(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        while !up(port) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let base = format!("{scheme}://127.0.0.1:{port}");
        let ca = (scheme == "https").then(|| dir.join("ca.crt"));
        // Wait for the first self-scrape, so `up` has its one series.
        let t0 = Instant::now();
        loop {
            let ok = std::panic::catch_unwind(|| rate(&base, ca.as_deref(), web.is_some(), 1, 1))
                .is_ok();
            if ok {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "{name}: no answer");
            std::thread::sleep(Duration::from_millis(500));
        }
        let r = rate(&base, ca.as_deref(), web.is_some(), clients, seconds);
        println!("{name:<17} {r:>9.0} requests/s");
        sums[i] += r;
    }
    let rates: Vec<f64> = sums.iter().map(|s| s / 2.0).collect();
    println!(
        "\nmeans: plain {:.0}, basic auth {:.0}, TLS + basic auth {:.0} requests/s",
        rates[0], rates[1], rates[2]
    );
    println!(
        "\noverhead of basic auth: {:.1}%; of TLS + basic auth: {:.1}%",
        (1.0 - rates[1] / rates[0]) * 100.0,
        (1.0 - rates[2] / rates[0]) * 100.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
