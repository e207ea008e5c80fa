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
";

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
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, MODULES).unwrap();
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
    wait_http(&format!("http://127.0.0.1:{vp_port}/metrics"));
    let closed = free_port();
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
        ] {
            assert_eq!(ours.get(k), theirs.get(k), "{k} for {module} {target}");
        }
        assert_eq!(ours["probe_success"], success, "{module} {target}");
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
