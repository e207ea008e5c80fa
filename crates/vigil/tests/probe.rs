//! `vigil probe` against Debian's `prometheus-blackbox-exporter`: the same modules and targets
//! through both give the same metric names, label sets, success values and the status and
//! regex results that decide them.

mod support;

use std::collections::BTreeMap;

use support::*;

const MODULES: &str = "modules:
  http_2xx:
    prober: http
  http_404:
    prober: http
    http:
      valid_status_codes: [404]
  http_no_node:
    prober: http
    http:
      fail_if_body_matches_regexp: ['node_cpu']
  http_post:
    prober: http
    http:
      method: POST
      headers:
        Content-Type: text/plain
      body: hello
  tcp_connect:
    prober: tcp
  tcp_http:
    prober: tcp
    timeout: 3s
    tcp:
      query_response:
        - send: \"GET / HTTP/1.0\\n\"
        - expect: 'HTTP/1.[01] 200'
  http_header_bad:
    prober: http
    http:
      fail_if_header_matches:
        - header: X-Thing
          regexp: bad
  http_header_required:
    prober: http
    http:
      fail_if_header_not_matches:
        - header: X-Missing
          regexp: .*
  http_host_port:
    prober: http
    http:
      fail_if_body_not_matches_regexp: ['host=127\\.0\\.0\\.1:[0-9]+;']
  http_fast:
    prober: http
    timeout: 1s
  http_small:
    prober: http
    http:
      body_size_limit: 10B
  http_small_regex:
    prober: http
    http:
      body_size_limit: 10B
      fail_if_body_not_matches_regexp: ['host']
  http_limit_fits:
    prober: http
    http:
      body_size_limit: 1KiB
  http_302:
    prober: http
    http:
      no_follow_redirects: true
      valid_status_codes: [302]
  https_verify:
    prober: http
    http:
      tls_config:
        ca_file: CERT
  https_insecure:
    prober: http
    http:
      tls_config:
        insecure_skip_verify: true
  https_fail_if_ssl:
    prober: http
    http:
      fail_if_ssl: true
      tls_config:
        insecure_skip_verify: true
  http_fail_if_not_ssl:
    prober: http
    http:
      fail_if_not_ssl: true
  tcp_tls:
    prober: tcp
    tcp:
      tls: true
      tls_config:
        ca_file: CERT
  dns_a:
    prober: dns
    dns:
      query_name: vigil.test
      query_type: A
      validate_answer_rrs:
        fail_if_not_matches_regexp: ['^vigil\\.test\\.\\t300\\tIN\\tA\\t127\\.0\\.0\\.[12]$']
      validate_authority_rrs:
        fail_if_none_matches_regexp: ['\\tNS\\tns\\.vigil\\.test\\.$']
      validate_additional_rrs:
        fail_if_all_match_regexp: ['^ns\\.vigil\\.test\\.']
  dns_a_bad:
    prober: dns
    dns:
      query_name: vigil.test
      query_type: A
      validate_answer_rrs:
        fail_if_matches_regexp: ['127\\.0\\.0\\.2']
  dns_not_all:
    prober: dns
    dns:
      query_name: vigil.test
      query_type: A
      validate_answer_rrs:
        fail_if_all_match_regexp: ['127\\.0\\.0\\.1$']
  dns_soa:
    prober: dns
    dns:
      query_name: vigil.test
      query_type: SOA
  dns_nx:
    prober: dns
    dns:
      query_name: missing.test
      query_type: A
  dns_nx_ok:
    prober: dns
    dns:
      query_name: missing.test
      query_type: A
      valid_rcodes: [NXDOMAIN]
  dns_tcp:
    prober: dns
    dns:
      transport_protocol: tcp
      query_name: vigil.test
      query_type: A
  dns_txt:
    prober: dns
    dns:
      query_name: txt.vigil.test
      query_type: TXT
      validate_answer_rrs:
        fail_if_none_matches_regexp: ['\"hello world\" \"second\"$']
  icmp:
    prober: icmp
  tcp_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: '^220 (\\w+)$'
          send: 'HELLO ${1}'
        - expect: '^250 got HELLO second$'
";

/// A scripted DNS server on UDP and TCP (same port): `vigil.test.` has two A records (with an
/// NS in authority and its address in additional) and an SOA, `txt.vigil.test.` a TXT record,
/// everything else is NXDOMAIN with the SOA in authority.
fn dns_server() -> u16 {
    fn name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in n.trim_end_matches('.').split('.') {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }
    fn rr(out: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, data: &[u8]) {
        out.extend_from_slice(owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    fn answer(q: &[u8]) -> Option<Vec<u8>> {
        let mut pos = 12;
        let mut qname = String::new();
        while *q.get(pos)? != 0 {
            let l = q[pos] as usize;
            qname.push_str(std::str::from_utf8(q.get(pos + 1..pos + 1 + l)?).ok()?);
            qname.push('.');
            pos += 1 + l;
        }
        let qtype = u16::from_be_bytes([*q.get(pos + 1)?, *q.get(pos + 2)?]);
        let question = q.get(12..pos + 5)?;
        let here = [0xc0u8, 12]; // the question's name
        let zone = name("vigil.test");
        let mut soa = name("ns.vigil.test");
        soa.extend(name("hostmaster.vigil.test"));
        for n in [2026113001u32, 7200, 3600, 1209600, 300] {
            soa.extend_from_slice(&n.to_be_bytes());
        }
        let (mut an, mut ns, mut ar) = (Vec::new(), Vec::new(), Vec::new());
        let mut rcode = 0u16;
        let counts: [u16; 3] = match (qname.as_str(), qtype) {
            ("vigil.test.", 1) => {
                rr(&mut an, &here, 1, 300, &[127, 0, 0, 1]);
                rr(&mut an, &here, 1, 300, &[127, 0, 0, 2]);
                rr(&mut ns, &here, 2, 3600, &name("ns.vigil.test"));
                rr(&mut ar, &name("ns.vigil.test"), 1, 3600, &[127, 0, 0, 53]);
                [2, 1, 1]
            }
            ("vigil.test.", 6) => {
                rr(&mut an, &here, 6, 3600, &soa);
                [1, 0, 0]
            }
            ("txt.vigil.test.", 16) => {
                rr(&mut an, &here, 16, 60, b"\x0bhello world\x06second");
                [1, 0, 0]
            }
            _ => {
                rr(&mut ns, &zone, 6, 3600, &soa);
                rcode = 3;
                [0, 1, 0]
            }
        };
        let mut r = Vec::new();
        r.extend_from_slice(&q[..2]);
        let rd = u16::from_be_bytes([q[2], q[3]]) & 0x0100;
        r.extend_from_slice(&(0x8400 | rd | rcode).to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        for c in counts {
            r.extend_from_slice(&c.to_be_bytes());
        }
        r.extend_from_slice(question);
        r.extend(an);
        r.extend(ns);
        r.extend(ar);
        Some(r)
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            if let Some(r) = answer(&buf[..n]) {
                let _ = udp.send_to(&r, from);
            }
        }
    });
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in tcp.incoming().flatten() {
            let mut len = [0u8; 2];
            if c.read_exact(&mut len).is_err() {
                continue;
            }
            let mut q = vec![0; u16::from_be_bytes(len) as usize];
            if c.read_exact(&mut q).is_ok()
                && let Some(r) = answer(&q)
            {
                let _ = c.write_all(&(r.len() as u16).to_be_bytes());
                let _ = c.write_all(&r);
            }
        }
    });
    port
}

/// A scripted peer: HTTP on one port (`/redirect/N` redirects N times, `/slow` answers after
/// 3 s, every answer carries `X-Thing: bad` and echoes the Host header), and a line protocol on
/// another (a two-line banner, then `250 got <line>` for the line received).
fn scripted_peer() -> (u16, u16) {
    use std::io::{BufRead, BufReader, Write};
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in http.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                let mut first = String::new();
                r.read_line(&mut first).unwrap_or(0);
                let mut host = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                        break;
                    }
                    if let Some(h) = l.to_ascii_lowercase().strip_prefix("host:") {
                        host = h.trim().to_string();
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, extra) = match path.strip_prefix("/redirect/") {
                    Some("0") | None => ("200 OK", String::new()),
                    Some(n) => {
                        let n: u32 = n.parse().unwrap_or(0);
                        ("302 Found", format!("Location: /redirect/{}\r\n", n - 1))
                    }
                };
                if path == "/slow" {
                    std::thread::sleep(std::time::Duration::from_secs(3));
                }
                let body = format!("host={host};");
                let _ = write!(
                    w,
                    "HTTP/1.1 {status}\r\n{extra}X-Thing: bad\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    let lines = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let line_port = lines.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in lines.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let _ = w.write_all(b"220-first\r\n220 second\r\n");
                let mut l = String::new();
                let _ = BufReader::new(conn).read_line(&mut l);
                let _ = write!(w, "250 got {}\r\n", l.trim_end());
            });
        }
    });
    (http_port, line_port)
}

/// The probe log and module as `debug=true` shows them (for failure messages).
fn debug(port: u16, target: &str, module: &str) -> String {
    get(&format!(
        "http://127.0.0.1:{port}/probe?target={}&module={module}&debug=true",
        enc(target)
    ))
    .1
}

/// (name{labels}) -> value of a probe's exposition.
fn probe(port: u16, target: &str, module: &str) -> BTreeMap<String, f64> {
    let (code, body) = get(&format!(
        "http://127.0.0.1:{port}/probe?target={}&module={module}",
        enc(target)
    ));
    assert_eq!(code, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn probes_answer_as_the_blackbox_exporter() {
    let dir = temp_dir("probe");
    let (_ne, ne_port) = node_exporter(&dir);
    // A TLS peer: OpenSSL's test server with a fresh self-signed certificate for 127.0.0.1.
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
        ])
        .args([
            "-subj",
            "/CN=vigil probe test/O=vigil, the project",
            "-addext",
            "subjectAltName=DNS:localhost,DNS:probe.test,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tls_port = free_port();
    let _tls = spawn(
        "openssl-s-server",
        std::path::Path::new("/usr/bin/openssl"),
        &[
            "s_server".into(),
            "-quiet".into(),
            "-www".into(),
            "-accept".into(),
            format!("127.0.0.1:{tls_port}"),
            "-cert".into(),
            cert.display().to_string(),
            "-key".into(),
            key.display().to_string(),
        ],
        &dir,
    );
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, MODULES.replace("CERT", &cert.display().to_string())).unwrap();
    let bb_port = free_port();
    let _bb = spawn(
        "blackbox-exporter",
        &debian_bin("prometheus-blackbox-exporter"),
        &[
            format!("--web.listen-address=127.0.0.1:{bb_port}"),
            format!("--config.file={}", cfg.display()),
        ],
        &dir,
    );
    let vp_port = free_port();
    let _vp = spawn(
        "vigil-probe",
        &vigil_bin(),
        &[
            "probe".into(),
            format!("--web.listen-address=127.0.0.1:{vp_port}"),
            format!("--config.file={}", cfg.display()),
        ],
        &dir,
    );
    wait_http(&format!("http://127.0.0.1:{bb_port}/metrics"));
    wait_for("the TLS peer", std::time::Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", tls_port))
            .ok()
            .map(|_| ())
    });
    wait_http(&format!("http://127.0.0.1:{vp_port}/metrics"));
    let closed = free_port();
    let (peer, line_peer) = scripted_peer();
    let peer = format!("127.0.0.1:{peer}");
    let dns = format!("127.0.0.1:{}", dns_server());
    let ne = format!("127.0.0.1:{ne_port}");
    let cases = [
        (format!("http://{ne}/metrics"), "http_2xx", 1.0),
        // (the node exporter answers every path; vigil probe's own server has real 404s)
        (
            format!("http://127.0.0.1:{vp_port}/nonexistent"),
            "http_2xx",
            0.0,
        ),
        (
            format!("http://127.0.0.1:{vp_port}/nonexistent"),
            "http_404",
            1.0,
        ),
        (format!("http://{ne}/metrics"), "http_no_node", 0.0),
        (format!("http://{ne}/"), "http_no_node", 1.0),
        (format!("http://{ne}/metrics"), "http_post", 1.0),
        (format!("http://127.0.0.1:{closed}/"), "http_2xx", 0.0),
        ("http://nonexistent.invalid/".to_string(), "http_2xx", 0.0),
        (ne.clone(), "tcp_connect", 1.0),
        (format!("127.0.0.1:{closed}"), "tcp_connect", 0.0),
        (ne.clone(), "tcp_http", 1.0),
        (format!("http://{peer}/redirect/3"), "http_2xx", 1.0),
        (format!("http://{peer}/redirect/12"), "http_2xx", 0.0),
        (format!("http://{peer}/redirect/2"), "http_302", 1.0),
        (format!("http://{peer}/"), "http_header_bad", 0.0),
        (format!("http://{peer}/"), "http_header_required", 0.0),
        (format!("http://{peer}/"), "http_host_port", 1.0),
        (format!("http://{peer}/slow"), "http_fast", 0.0),
        // A body past `body_size_limit` fails the probe, its read bytes counted.
        (format!("http://{peer}/"), "http_small", 0.0),
        (format!("http://{peer}/"), "http_small_regex", 0.0),
        (format!("http://{peer}/"), "http_limit_fits", 1.0),
        (format!("127.0.0.1:{line_peer}"), "tcp_banner", 1.0),
        (
            format!("https://127.0.0.1:{tls_port}/"),
            "https_verify",
            1.0,
        ),
        (
            format!("https://127.0.0.1:{tls_port}/"),
            "https_insecure",
            1.0,
        ),
        (format!("https://127.0.0.1:{tls_port}/"), "http_2xx", 0.0),
        (
            format!("https://127.0.0.1:{tls_port}/"),
            "https_fail_if_ssl",
            0.0,
        ),
        (format!("http://{peer}/"), "http_fail_if_not_ssl", 0.0),
        (format!("127.0.0.1:{tls_port}"), "tcp_tls", 1.0),
        (dns.clone(), "dns_a", 1.0),
        (dns.clone(), "dns_a_bad", 0.0),
        (dns.clone(), "dns_not_all", 0.0),
        (dns.clone(), "dns_soa", 1.0),
        (dns.clone(), "dns_nx", 0.0),
        (dns.clone(), "dns_nx_ok", 1.0),
        (dns.clone(), "dns_tcp", 1.0),
        (dns.clone(), "dns_txt", 1.0),
        ("127.0.0.1".to_string(), "icmp", 1.0),
        ("nonexistent.invalid".to_string(), "icmp", 0.0),
    ];
    for (target, module, success) in cases {
        let theirs = probe(bb_port, &target, module);
        let ours = probe(vp_port, &target, module);
        let names = |m: &BTreeMap<String, f64>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&ours),
            names(&theirs),
            "metric names and labels for {module} {target}"
        );
        for k in [
            "probe_success",
            "probe_http_status_code",
            "probe_failed_due_to_regex",
            "probe_ip_protocol",
            "probe_ip_addr_hash",
            "probe_http_redirects",
            "probe_http_ssl",
            "probe_http_version",
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "probe_icmp_reply_hop_limit",
        ] {
            assert_eq!(
                ours.get(k),
                theirs.get(k),
                "{k} for {module} {target}\n--- blackbox:\n{}\n--- vigil:\n{}",
                debug(bb_port, &target, module),
                debug(vp_port, &target, module)
            );
        }
        // Every DNS figure but the timings.
        if module.starts_with("dns") {
            for (k, v) in &theirs {
                if !k.contains("duration") && !k.contains("lookup_time") {
                    assert_eq!(ours.get(k), Some(v), "{k} for {module}");
                }
            }
        }
        // The scripted peer's answers are fixed, so their lengths must agree too.
        if target.contains(&peer) {
            for k in [
                "probe_http_content_length",
                "probe_http_uncompressed_body_length",
            ] {
                assert_eq!(ours.get(k), theirs.get(k), "{k} for {module} {target}");
            }
        }
        // ICMP needs a raw or ping socket: as root here; otherwise both exporters must agree.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if module != "icmp" || root {
            assert_eq!(ours["probe_success"], success, "{module} {target}");
        }
    }
    // The probe log, as `debug=true` shows it.
    let (_, debug) = get(&format!(
        "http://127.0.0.1:{vp_port}/probe?target={}&module=http_404&debug=true",
        enc(&format!("http://{ne}/metrics"))
    ));
    assert!(
        debug.contains("Invalid HTTP response status code 200"),
        "{debug}"
    );
}

/// The blackbox exporter's flags, with its meanings: `--config.check`, `--web.route-prefix`,
/// `--history.limit` with `/logs`, `--timeout-offset`, `--log.prober`, `/-/reload` and
/// `/-/healthy`, several `--web.listen-address`, and `--web.systemd-socket` refused by name.
#[test]
fn blackbox_exporter_flags() {
    let dir = temp_dir("probe-flags");
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, "modules:\n  http_2xx:\n    prober: http\n").unwrap();
    let check = |path: &std::path::Path| {
        std::process::Command::new(vigil_bin())
            .args(["probe", "--config.check"])
            .arg(format!("--config.file={}", path.display()))
            .output()
            .unwrap()
    };
    assert!(check(&cfg).status.success());
    let bad = dir.join("bad.yml");
    std::fs::write(&bad, "modules:\n  x:\n    prober: http\n    nonsense: 1\n").unwrap();
    assert!(!check(&bad).status.success());
    let out = std::process::Command::new(vigil_bin())
        .args(["probe", "--web.systemd-socket"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--web.systemd-socket: refused"));

    let (port, port2) = (free_port(), free_port());
    let p = spawn(
        "vigil-probe",
        &vigil_bin(),
        &[
            "probe".into(),
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.listen-address=127.0.0.1:{port2}"),
            "--web.route-prefix=/bb".into(),
            "--history.limit=2".into(),
            "--timeout-offset=2".into(),
            "--log.prober=warn".into(),
            "--log.level=warn".into(),
            "--web.read-timeout=1s".into(),
        ],
        &dir,
    );
    let base = format!("http://127.0.0.1:{port}/bb");
    wait_http(&format!("{base}/-/healthy"));
    // --web.read-timeout: a client that connects and sends nothing is dropped, not kept.
    {
        use std::io::Read;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 256];
        // The server closes (0 bytes, or a 408 and then the close), long before our 20 s.
        let n = c
            .read(&mut buf)
            .expect("the server kept an idle connection past --web.read-timeout");
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || head.starts_with("HTTP/1.1 408"), "{head}");
    }
    assert_eq!(
        get(&format!("http://127.0.0.1:{port2}/bb/-/healthy")),
        (200, "Healthy".into())
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/probe?target=x")).0,
        404,
        "only under the prefix"
    );
    let target = format!("http://127.0.0.1:{port}/bb/-/healthy");
    let probe = |n: u32| {
        let (_, code, body) = curl(&[
            "-H",
            "X-Prometheus-Scrape-Timeout-Seconds: 5",
            &format!("{base}/probe?module=http_2xx&target={}&n={n}", enc(&target)),
        ]);
        assert_eq!(code, 200, "{body}");
        body
    };
    for n in 0..3 {
        assert!(probe(n).contains("probe_success 1"));
    }
    // The history keeps the last two: ids 1 and 2.
    assert_eq!(get(&format!("{base}/logs?id=0")).0, 404);
    let (code, log) = get(&format!("{base}/logs?id=2"));
    assert_eq!(code, 200);
    // 5 s from the scrape less the 2 s offset.
    assert!(log.contains("timeout_seconds=3"), "{log}");
    assert_eq!(get(&format!("{base}/logs?target={}", enc(&target))).0, 200);
    assert!(get(&format!("{base}/")).1.contains("Recent probes"));
    // --log.prober=warn: the probe's lines reach the log at warn.
    assert!(p.log_text().contains("Beginning probe"), "{}", p.log_text());
    // /-/reload reads the file again (POST only).
    std::fs::write(
        &cfg,
        "modules:\n  http_2xx:\n    prober: http\n  tcp_check:\n    prober: tcp\n",
    )
    .unwrap();
    assert_eq!(get(&format!("{base}/-/reload")).0, 405);
    assert_eq!(
        http("POST", &format!("{base}/-/reload"), None).unwrap().0,
        200
    );
    let (code, body) = get(&format!(
        "{base}/probe?module=tcp_check&target=127.0.0.1:{port}"
    ));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("probe_success 1"), "{body}");
}
