//! `--web.config.file` on the server: TLS with client certificates from a CA made by OpenSSL,
//! basic auth with bcrypt, response headers, certificate rotation without a restart, and
//! start-up refused on a missing or bad file. Driven with curl and openssl, as a user would.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;
use vigil_kube_fake::FakeKube;

fn web_config(dir: &std::path::Path, pki: &Pki, hash: &str, extra_tls: &str) -> String {
    let path = dir.join("web.yml");
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n{extra_tls}http_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: {hash}\n",
            pki.path("server.crt"),
            pki.path("server.key"),
            pki.path("ca.crt"),
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Start vigil with `args` and wait until `/-/ready` answers over TLS with the client
/// certificate and alice's password.
fn start_tls(dir: &std::path::Path, pki: &Pki, port: u16, args: &[String]) -> Proc {
    let p = spawn("vigil", &vigil_bin(), args, dir);
    let url = format!("https://127.0.0.1:{port}/-/ready");
    let ca = pki.path("ca.crt");
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    wait_for("vigil over TLS", Duration::from_secs(30), || {
        let (_, code, _) = curl(&[
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-u",
            "alice:secret",
            &url,
        ]);
        (code == 200).then_some(())
    });
    p
}

#[test]
fn tls_client_certificates_and_basic_auth_guard_every_endpoint() {
    let dir = temp_dir("web-tls");
    let pki = Pki::new(&dir);
    let hash = bcrypt::hash("secret", 4).unwrap();
    let cfg = web_config(&dir, &pki, &hash, "");
    let port = free_port();
    let vigil = start_tls(
        &dir,
        &pki,
        port,
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.config.file={cfg}"),
        ],
    );
    let base = format!("https://127.0.0.1:{port}");
    let ca = pki.path("ca.crt");
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let (rcert, rkey) = (pki.path("rogue-client.crt"), pki.path("rogue-client.key"));
    let with_cert = |extra: &[&str], path: &str| {
        let mut a = vec!["--cacert", &ca, "--cert", &cert, "--key", &key];
        a.extend_from_slice(extra);
        let url = format!("{base}{path}");
        a.push(&url);
        curl(&a)
    };

    // No client certificate, or one from another CA: the handshake fails.
    let (rc, _, out) = curl(&[
        "--cacert",
        &ca,
        "-u",
        "alice:secret",
        &format!("{base}/-/healthy"),
    ]);
    assert_ne!(rc, 0, "{out}");
    let (rc, _, out) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &rcert,
        "--key",
        &rkey,
        "-u",
        "alice:secret",
        &format!("{base}/-/healthy"),
    ]);
    assert_ne!(rc, 0, "{out}");
    // Plain HTTP on the TLS port gets no answer.
    let (_, code, _) = curl(&[&format!("http://127.0.0.1:{port}/-/healthy")]);
    assert_eq!(code, 0);

    for path in ["/-/healthy", "/api/v1/query?query=up", "/graph", "/metrics"] {
        // Right certificate, no or wrong credentials: 401, with the configured header.
        let (_, code, out) = with_cert(&[], path);
        assert_eq!(code, 401, "{path}: {out}");
        assert!(
            out.contains("WWW-Authenticate: Basic") || out.contains("www-authenticate: Basic"),
            "{out}"
        );
        assert!(
            out.to_ascii_lowercase().contains("x-frame-options: deny"),
            "{out}"
        );
        let (_, code, _) = with_cert(&["-u", "alice:wrong"], path);
        assert_eq!(code, 401, "{path}");
        let (_, code, _) = with_cert(&["-u", "mallory:secret"], path);
        assert_eq!(code, 401, "{path}");
        // Both right: served, headers included.
        let (_, code, out) = with_cert(&["-u", "alice:secret"], path);
        assert_eq!(code, 200, "{path}: {out}");
        assert!(
            out.to_ascii_lowercase().contains("x-frame-options: deny"),
            "{out}"
        );
    }
    // HTTP/2 is negotiated over TLS, as Go's server offers it.
    let (_, code, out) = with_cert(&["-u", "alice:secret", "--http2"], "/-/healthy");
    assert_eq!(code, 200);
    assert!(out.starts_with("HTTP/2"), "{out}");

    // A new certificate in place of the old one is served from the next connection on.
    let subject = || {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-cert",
                &cert,
                "-key",
                &key,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(subject().contains("CN = vigil test server"));
    pki.issue(
        "server",
        "ca",
        "/CN=vigil rotated server",
        "subjectAltName=IP:127.0.0.1",
    );
    wait_for("the rotated certificate", Duration::from_secs(20), || {
        subject()
            .contains("CN = vigil rotated server")
            .then_some(())
    });
    let (_, code, _) = with_cert(&["-u", "alice:secret"], "/-/healthy");
    assert_eq!(code, 200);

    // Users change without a restart too.
    let hash2 = bcrypt::hash("another", 4).unwrap();
    web_config(&dir, &pki, &hash2, "");
    wait_for("the new password", Duration::from_secs(20), || {
        (with_cert(&["-u", "alice:another"], "/-/healthy").1 == 200).then_some(())
    });
    assert_eq!(with_cert(&["-u", "alice:secret"], "/-/healthy").1, 401);
    drop(vigil);
}

#[test]
fn basic_auth_without_tls_and_bad_files_refused_at_start() {
    let dir = temp_dir("web-auth");
    let hash = bcrypt::hash("secret", 4).unwrap();
    let cfg = dir.join("web.yml");
    std::fs::write(&cfg, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
    let port = free_port();
    let _v = spawn(
        "vigil",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.config.file={}", cfg.display()),
        ],
        &dir,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for("vigil", Duration::from_secs(30), || {
        (curl(&["-u", "alice:secret", &format!("{base}/-/ready")]).1 == 200).then_some(())
    });
    assert_eq!(curl(&[&format!("{base}/api/v1/query?query=up")]).1, 401);
    assert_eq!(
        curl(&[
            "-u",
            "alice:secret",
            &format!("{base}/api/v1/query?query=up")
        ])
        .1,
        200
    );

    // A missing file, an unknown key, a plaintext password: start-up stops, naming the file
    // and the problem.
    for (content, want) in [
        (None, "cannot read it"),
        (Some("basic_auth_user:\n  alice: x\n"), "basic_auth_user"),
        (
            Some("basic_auth_users:\n  alice: secret\n"),
            "not a bcrypt hash",
        ),
        (
            Some(
                "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
            ),
            "failed to read cert_file",
        ),
    ] {
        let f = dir.join("bad-web.yml");
        let _ = std::fs::remove_file(&f);
        if let Some(c) = content {
            std::fs::write(&f, c).unwrap();
        }
        let out = Command::new(vigil_bin())
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data2").display()
            ))
            .arg(format!("--web.config.file={}", f.display()))
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("bad-web.yml"), "{err}");
        assert!(err.contains(want), "{want}: {err}");
        // Refused before storage was touched.
        assert!(!dir.join("data2").join("wal").exists());
    }
}

/// TLS (server certificate only) and alice's password, as the exporters' file.
fn tls_and_auth(dir: &std::path::Path, pki: &Pki) -> String {
    let hash = bcrypt::hash("secret", 4).unwrap();
    let path = dir.join("exporter-web.yml");
    std::fs::write(
        &path,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  alice: {hash}\n",
            pki.path("server.crt"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn the_exporters_serve_behind_the_same_file_and_real_peers_scrape_through_it() {
    let dir = temp_dir("web-exporters");
    let pki = Pki::new(&dir);
    let cfg = tls_and_auth(&dir, &pki);
    let ca = pki.path("ca.crt");
    let kube = FakeKube::start();
    let (probe_port, ks_port, cm_port) = (free_port(), free_port(), free_port());
    let _probe = spawn(
        "vigil-probe",
        &vigil_bin(),
        &[
            "probe".into(),
            format!("--web.listen-address=127.0.0.1:{probe_port}"),
            format!("--web.config.file={cfg}"),
        ],
        &dir,
    );
    let _ks = spawn(
        "vigil-kube-state",
        &vigil_bin(),
        &[
            "kube-state".into(),
            "--telemetry-host=127.0.0.1".into(),
            format!("--telemetry-port={}", free_port()),
            format!("--web.listen-address=127.0.0.1:{ks_port}"),
            format!("--apiserver={}", kube.url()),
            format!("--tls-config={cfg}"),
        ],
        &dir,
    );
    let _cm = spawn(
        "vigil-container-metrics",
        &vigil_bin(),
        &[
            "container-metrics".into(),
            format!("--web.listen-address=127.0.0.1:{cm_port}"),
            format!("--web.config.file={cfg}"),
        ],
        &dir,
    );
    for port in [probe_port, ks_port, cm_port] {
        let url = format!("https://127.0.0.1:{port}/metrics");
        wait_for(
            &format!("exporter on {port}"),
            Duration::from_secs(30),
            || (curl(&["--cacert", &ca, "-u", "alice:secret", &url]).1 == 200).then_some(()),
        );
        assert_eq!(curl(&["--cacert", &ca, &url]).1, 401, "{url}");
        assert_eq!(
            curl(&["--cacert", &ca, "-u", "alice:nope", &url]).1,
            401,
            "{url}"
        );
        let (rc, _, _) = curl(&[&url.replace("https", "http")]);
        let (_, code, _) = curl(&[&url.replace("https", "http")]);
        assert!(rc != 0 || code == 0, "{url} answered plain HTTP");
    }

    // Debian's Prometheus scrapes the protected prober as any blackbox exporter.
    let prom_port = free_port();
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: probe\n    scheme: https\n    metrics_path: /probe\n    params:\n      module: [tcp_connect]\n      target: ['127.0.0.1:{prom_port}']\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: alice\n      password: secret\n    static_configs:\n      - targets: ['127.0.0.1:{probe_port}']\n"
        ),
    )
    .unwrap();
    let _prom = spawn(
        "prometheus",
        &debian_bin("prometheus"),
        &[
            format!("--config.file={}", prom_cfg.display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir,
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    wait_http(&format!("{prom}/-/ready"));
    wait_for(
        "Prometheus to scrape the prober",
        Duration::from_secs(60),
        || {
            let r = get_json(&format!(
                "{prom}/api/v1/query?query=probe_success%20and%20on()%20up%7Bjob%3D%22probe%22%7D%3D%3D1"
            ));
            (r["data"]["result"][0]["value"][1] == "1").then_some(())
        },
    );

    // vigil scrapes Debian's node exporter behind its own web config file.
    let ne_port = free_port();
    let _ne = spawn(
        "node-exporter",
        &debian_bin("prometheus-node-exporter"),
        &[
            format!("--web.listen-address=127.0.0.1:{ne_port}"),
            format!("--web.config.file={cfg}"),
        ],
        &dir,
    );
    let vport = free_port();
    let vcfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: alice\n      password: secret\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let v = Vigil::start_on("web-scrapes-node", Some(&vcfg), &[], vport);
    wait_for(
        "vigil to scrape the protected node exporter",
        Duration::from_secs(60),
        || {
            let r = query(
                &v.base,
                "up{job=\"node\"} == 1 and on() count(node_cpu_seconds_total) > 0",
            );
            (!r.is_empty()).then_some(())
        },
    );
}

/// HTTP/2 has no header timeout in hyper: an HTTP/2 connection that starts no request for
/// `--web.read-timeout` is closed, so idle or stalled HTTP/2 clients cannot hold connections
/// (and `--web.max-connections` slots) forever.
#[test]
fn idle_http2_connections_are_closed_after_the_read_timeout() {
    use std::io::{Read, Write};
    let dir = temp_dir("web-h2-idle");
    let pki = Pki::new(&dir);
    let web = dir.join("web-h2.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nhttp_server_config:\n  http2: true\nbasic_auth_users:\n  alice: {}\n",
            pki.path("server.crt"),
            pki.path("server.key"),
            // Costly on purpose: checking a password keeps a request in flight for a while.
            bcrypt::hash("secret", 14).unwrap(),
        ),
    )
    .unwrap();
    let port = free_port();
    let _v = spawn(
        "vigil",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.config.file={}", web.display()),
            "--web.read-timeout=1s".into(),
        ],
        &dir,
    );
    let ca = pki.path("ca.crt");
    wait_for("vigil over TLS", Duration::from_secs(30), || {
        let (_, code, _) = curl(&[
            "--cacert",
            &ca,
            "--http2",
            "-u",
            "alice:secret",
            &format!("https://127.0.0.1:{port}/-/ready"),
        ]);
        (code == 200).then_some(())
    });
    // A client that negotiates h2, sends the connection preface, SETTINGS and `frames`, then
    // nothing; the connection must still be closed by the server.
    let open_then_stall = |frames: &[u8], later: &[u8], what: &str| {
        let mut c = Command::new("openssl")
            .args(["s_client", "-alpn", "h2", "-CAfile", &ca, "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        stdin.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
        stdin.write_all(frames).unwrap();
        stdin.flush().unwrap();
        if !later.is_empty() {
            // Sent apart, so the server has handed the request to its handler first.
            std::thread::sleep(Duration::from_millis(500));
            stdin.write_all(later).unwrap();
            stdin.flush().unwrap();
        }
        // stdin stays open: s_client ends only when the server closes the connection.
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = c.try_wait().unwrap() {
                break Some(s);
            }
            if t0.elapsed() > Duration::from_secs(60) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let Some(_) = status else {
            let _ = c.kill();
            panic!("{what}: HTTP/2 connection kept open past --web.read-timeout");
        };
        let mut out = Vec::new();
        c.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains("ALPN protocol: h2"), "{what}: {out}");
        drop(stdin);
    };
    open_then_stall(&[], &[], "idle");
    // A request still in flight (its password, new to the server, is being checked with
    // bcrypt), then reset by the client: the reset drops the handler, and the connection must
    // count as idle again, or a client could hold any number of connections by opening and
    // resetting streams.
    let path = b"/-/ready";
    let auth = "Basic YWxpY2U6d3Jvbmc="; // alice:wrong, a miss: not in the auth cache
    let mut block = vec![0x82, 0x87, 0x04, path.len() as u8]; // GET, https, :path literal
    block.extend_from_slice(path);
    block.extend_from_slice(&[0x0f, 0x08, auth.len() as u8]); // authorization literal
    block.extend_from_slice(auth.as_bytes());
    let mut frames = vec![0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1]; // HEADERS, END_*
    frames.extend_from_slice(&block);
    let reset = [0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8]; // RST_STREAM, CANCEL
    open_then_stall(&frames, &reset, "reset stream");
}
