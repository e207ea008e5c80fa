//! The web UI in headless Chromium against vigil scraping a real node exporter: targets with
//! health, a typed query drawing as many series as the API returns, completion, links that
//! reproduce the view, the service-discovery page explaining a dropped target, jobs that
//! discover nothing saying why, every page rendering without console errors. Screenshots go to `target/ui-screenshots/`.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn ui_pages_in_headless_chromium() {
    chromium();
    let dir = temp_dir("ui");
    let (_ne, ne_port) = node_exporter(&dir);
    let hist_port = histogram_target();
    // A recording and an alerting rule for the rules and alerts pages.
    let rules_dir = temp_dir("ui-rules");
    std::fs::write(
        rules_dir.join("ui.yml"),
        "groups:\n  - name: ui\n    rules:\n      - record: node:up\n        expr: up{job=\"node\"}\n      - alert: NodeUp\n        expr: up{job=\"node\"} == 1\n        labels:\n          severity: info\n        annotations:\n          summary: '{{ $labels.instance }} is up'\n",
    )
    .unwrap();
    let rules_glob = format!("{}/*.yml", rules_dir.display());
    // A file_sd file that does not parse: the pages name it as the reason its job is empty.
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "[{\"targets\": [").unwrap();
    let broken = broken.display();
    let cfg = format!(
        "# a comment the config page must not show\nglobal:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: ['{rules_glob}']\nremote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n    name: nowhere\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n  - job_name: filtered\n    static_configs:\n      - targets: ['keep.example:9100', 'drop.example:9100']\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: drop.*\n        action: drop\n  - job_name: hist\n    convert_classic_histograms_to_nhcb: true\n    static_configs:\n      - targets: ['127.0.0.1:{hist_port}']\n  - job_name: consul\n    consul_sd_configs:\n      - server: 127.0.0.1:1\n  - job_name: broken-files\n    file_sd_configs:\n      - files: ['{broken}']\n"
    );
    let v = Vigil::start("ui", Some(&cfg), &[]);
    // The same under a path prefix, as behind an ingress: the prefix comes from the external URL.
    let vp = Vigil::start_under(
        "ui-prefixed",
        Some(&cfg),
        &["--web.external-url=http://monitoring.example/vigil/"],
        "/vigil",
    );
    let (code, _) = http(
        "GET",
        &format!("{}/vigil/api/v1/query?query=up", vp.base),
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "API under the prefix");
    let (code, _) = http("GET", &format!("{}/api/v1/query?query=up", vp.base), None).unwrap();
    assert_eq!(code, 404, "nothing outside the prefix");
    for path in ["/vigil/", "/"] {
        let head = response_head(&vp.base, path);
        assert!(
            head.starts_with("HTTP/1.1 303") && head.contains("location: /vigil/graph"),
            "{path} redirects to the query page under the prefix: {head}"
        );
    }
    // A proxy that strips its path: routes at the root, links under the external URL's path.
    let vs = Vigil::start(
        "ui-stripped",
        Some(&cfg),
        &[
            "--web.external-url=http://proxy.example/outer/",
            "--web.route-prefix=/",
        ],
    );
    let (code, page) = http("GET", &format!("{}/graph", vs.base), None).unwrap();
    assert_eq!(code, 200, "routes at the root with --web.route-prefix=/");
    assert!(
        page.contains("<base href=\"/outer/\">"),
        "links follow the external URL's path: {}",
        &page[..page.len().min(300)]
    );
    assert!(response_head(&vs.base, "/").contains("location: /outer/graph"));
    drop(vs);
    wait_for("a few scrapes", Duration::from_secs(15), || {
        (query(&v.base, "node_cpu_seconds_total").len() > 1
            && !query(&v.base, "rate(req_seconds[30s])").is_empty())
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let (ok, text) = browser_script("browser.mjs", &v.base, &[format!("{}/vigil", vp.base)]);
    assert!(ok, "browser checks failed:\n{text}");
    assert!(text.contains("all browser checks passed"));
}

/// The UI's script and styles are embedded gzipped: a browser gets them so, with
/// `Content-Encoding: gzip`; a client that does not take gzip (or refuses it with `q=0`) gets
/// the same bytes unpacked.
#[test]
fn ui_assets_served_gzipped_or_plain() {
    use std::io::Read;
    let v = Vigil::start("ui-gzip", None, &[]);
    for name in ["app.js", "app.css"] {
        let path = format!("/assets/{name}");
        let (head, zipped) = raw_get(&v.base, &path, "Accept-Encoding: gzip, deflate, br\r\n");
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(
            head.contains("content-encoding: gzip"),
            "{path} gzipped: {head}"
        );
        assert!(head.contains("vary: accept-encoding"), "{path}: {head}");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut unzipped)
            .unwrap_or_else(|e| panic!("{path}: the body is not gzip: {e}"));
        assert!(zipped.len() * 2 < unzipped.len(), "{path} compresses");
        for accept in [
            "",
            "Accept-Encoding: identity\r\n",
            "Accept-Encoding: gzip;q=0, identity\r\n",
        ] {
            let (head, plain) = raw_get(&v.base, &path, accept);
            assert!(
                head.starts_with("http/1.1 200"),
                "{path} [{accept}]: {head}"
            );
            assert!(
                !head.contains("content-encoding"),
                "{path} [{accept}] plain: {head}"
            );
            assert_eq!(plain, unzipped, "{path} [{accept}]: the same file");
        }
    }
    let (head, _) = raw_get(&v.base, "/assets/none.js", "Accept-Encoding: gzip\r\n");
    assert!(head.starts_with("http/1.1 404"), "{head}");
}

/// A GET's head (lower-cased header names) and body bytes, with extra request headers.
fn raw_get(base: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "{path}: a sized body: {head}"
    );
    (head, buf[split + 4..].to_vec())
}

/// The status line and headers of a GET, lower-cased header names (axum sends them so).
fn response_head(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split("\r\n\r\n").next().unwrap_or("").to_string()
}
