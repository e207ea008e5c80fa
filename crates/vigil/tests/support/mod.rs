//! Helpers for the end-to-end tests: real processes on free ports, a tiny HTTP client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A target serving one classic histogram, `req_seconds` (buckets 0.1, 0.5, 1 and +Inf), in
/// the text format; every bucket's own count grows each second, so rates of all four are
/// above zero. Returns its port.
pub fn histogram_target() -> u16 {
    let start = std::time::Instant::now();
    serve_text(move || {
        let n = start.elapsed().as_secs() + 1;
        let mut body =
            String::from("# HELP req_seconds Request latency.\n# TYPE req_seconds histogram\n");
        for (le, c) in [("0.1", n), ("0.5", 3 * n), ("1", 4 * n), ("+Inf", 6 * n)] {
            body += &format!("req_seconds_bucket{{le=\"{le}\"}} {c}\n");
        }
        body += &format!(
            "req_seconds_sum {}\nreq_seconds_count {}\n",
            0.7 * n as f64,
            6 * n
        );
        body
    })
}

/// A target answering every request with what `body` gives then, in the text format.
/// Returns its port.
pub fn serve_text(body: impl Fn() -> String + Send + 'static) -> u16 {
    use std::io::{Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = body();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "vigil-e2e-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Find a Debian-installed binary; the test command installs the packages, so a missing one
/// is a failure with a clear message, never a silent skip.
pub fn debian_bin(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{name} is not installed: run ./scripts/test, which installs the Debian packages the end-to-end tests need"
    );
}

pub fn spawn(name: &str, bin: &Path, args: &[String], dir: &Path) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    Proc {
        child,
        name: name.into(),
        log,
    }
}

pub fn vigil_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vigil"))
}

/// A minimal HTTP/1.1 request; returns status and body.
pub fn http(method: &str, url: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http url");
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(hostport)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/x-www-form-urlencoded\r\n"
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    Ok((status, payload))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get(url: &str) -> (u16, String) {
    http("GET", url, None).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn get_json(url: &str) -> serde_json::Value {
    let (code, body) = get(url);
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {url} -> {code}: not JSON ({e}): {body}"))
}

/// Poll `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn wait_http(url: &str) {
    wait_http_for(url, Duration::from_secs(20));
}

/// [`wait_http`] for a server that starts others first.
pub fn wait_http_for(url: &str, timeout: Duration) {
    wait_for(&format!("{url} to answer"), timeout, || {
        http("GET", url, None).ok().filter(|(c, _)| *c == 200)
    });
}

/// Percent-encode a query parameter.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/api/v1/query` result list for `q`.
pub fn query(base: &str, q: &str) -> Vec<serde_json::Value> {
    let v = get_json(&format!("{base}/api/v1/query?query={}", enc(q)));
    assert_eq!(v["status"], "success", "query {q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// A running vigil with its own data dir and port.
pub struct Vigil {
    pub proc: Proc,
    pub base: String,
    pub dir: PathBuf,
    pub port: u16,
}

impl Vigil {
    pub fn start(name: &str, config: Option<&str>, extra: &[&str]) -> Vigil {
        Self::start_under(name, config, extra, "")
    }

    /// Start on a given port (for configs that scrape vigil itself).
    pub fn start_on(name: &str, config: Option<&str>, extra: &[&str], port: u16) -> Vigil {
        Self::start_full(name, config, extra, "", port)
    }

    /// Start with the API and UI under `prefix` (e.g. `/vigil`, from `--web.external-url`).
    pub fn start_under(name: &str, config: Option<&str>, extra: &[&str], prefix: &str) -> Vigil {
        Self::start_full(name, config, extra, prefix, free_port())
    }

    fn start_full(
        name: &str,
        config: Option<&str>,
        extra: &[&str],
        prefix: &str,
        port: u16,
    ) -> Vigil {
        let dir = temp_dir(name);
        let mut args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
        ];
        if let Some(c) = config {
            std::fs::write(dir.join("vigil.yml"), c).unwrap();
            args.push(format!("--config.file={}", dir.join("vigil.yml").display()));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = spawn("vigil", &vigil_bin(), &args, &dir);
        let base = format!("http://127.0.0.1:{port}");
        let v = Vigil {
            proc,
            base,
            dir,
            port,
        };
        let b = v.base.clone();
        wait_for("vigil to be ready", Duration::from_secs(30), || {
            http("GET", &format!("{b}{prefix}/-/ready"), None)
                .ok()
                .filter(|(c, _)| *c == 200)
        });
        v
    }

    pub fn write_config(&self, c: &str) {
        std::fs::write(self.dir.join("vigil.yml"), c).unwrap();
    }
}

pub fn node_exporter(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let p = spawn(
        "node-exporter",
        &debian_bin("prometheus-node-exporter"),
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        dir,
    );
    wait_http(&format!("http://127.0.0.1:{port}/metrics"));
    (p, port)
}

pub fn blackbox_exporter(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let cfg = dir.join("blackbox.yml");
    std::fs::write(&cfg, "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n  tcp_connect:\n    prober: tcp\n").unwrap();
    let p = spawn(
        "blackbox-exporter",
        &debian_bin("prometheus-blackbox-exporter"),
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--config.file={}", cfg.display()),
        ],
        dir,
    );
    wait_http(&format!("http://127.0.0.1:{port}/metrics"));
    (p, port)
}

/// Run a command; panics with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A test PKI made with OpenSSL: a CA, a server certificate for 127.0.0.1/localhost, a client
/// certificate the CA signed (SAN `client.example`), and a client certificate from another CA.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let d = |f: &str| dir.join(f).display().to_string();
        let ossl = |args: &[&str]| run_ok(Command::new("openssl").args(args));
        for ca in ["ca", "rogue-ca"] {
            ossl(&[
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
                &format!("/CN=vigil test {ca}"),
                "-keyout",
                &d(&format!("{ca}.key")),
                "-out",
                &d(&format!("{ca}.crt")),
            ]);
        }
        let pki = Pki { dir: dir.clone() };
        pki.issue(
            "server",
            "ca",
            "/CN=vigil test server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        );
        pki.issue(
            "client",
            "ca",
            "/CN=vigil test client",
            "subjectAltName=DNS:client.example",
        );
        pki.issue(
            "rogue-client",
            "rogue-ca",
            "/CN=rogue client",
            "subjectAltName=DNS:client.example",
        );
        pki
    }

    /// Issue `<name>.crt`/`<name>.key` signed by `<ca>`.
    pub fn issue(&self, name: &str, ca: &str, subj: &str, ext: &str) {
        let d = |f: &str| self.dir.join(f).display().to_string();
        let ossl = |args: &[&str]| run_ok(Command::new("openssl").args(args));
        ossl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            subj,
            "-keyout",
            &d(&format!("{name}.key")),
            "-out",
            &d(&format!("{name}.csr")),
        ]);
        let extfile = self.dir.join(format!("{name}.ext"));
        std::fs::write(&extfile, format!("{ext}\n")).unwrap();
        ossl(&[
            "x509",
            "-req",
            "-in",
            &d(&format!("{name}.csr")),
            "-CA",
            &d(&format!("{ca}.crt")),
            "-CAkey",
            &d(&format!("{ca}.key")),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile.display().to_string(),
            "-out",
            &d(&format!("{name}.crt")),
        ]);
    }

    pub fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }
}

/// `curl` with `args`: `(exit code, HTTP status, headers and body)`; `-sS -i` are added.
pub fn curl(args: &[&str]) -> (i32, u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl (installed by scripts/test)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (out.status.code().unwrap_or(-1), status, text)
}

/// Debian's VictoriaMetrics on `port`, data under `dir`, answering at once (no latency offset,
/// no cache, no deduplication).
pub fn victoria_metrics(dir: &Path, port: u16) -> Proc {
    let p = spawn(
        "victoria-metrics",
        &debian_bin("victoria-metrics"),
        &[
            format!("-storageDataPath={}", dir.join("vm-data").display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
            "-dedup.minScrapeInterval=1ms".into(),
            "-retentionPeriod=100y".into(),
        ],
        dir,
    );
    wait_http(&format!("http://127.0.0.1:{port}/health"));
    p
}

/// Debian's Chromium (or `$CHROMIUM`), which the browser tests need.
pub fn chromium() -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Debian's chromium is needed for the browser tests (scripts/test installs it)"
    );
    chromium
}

/// Run `ui/tests/<script>` with node against `base`, screenshots going to
/// `target/ui-screenshots`, then `args`: whether it succeeded, and its output (printed).
pub fn browser_script(script: &str, base: &str, args: &[String]) -> (bool, String) {
    let out = Command::new("node")
        .arg(format!("tests/{script}"))
        .arg(base)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/ui-screenshots"
        ))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui"))
        .env("CHROMIUM", chromium())
        .output()
        .expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    (out.status.success(), text)
}

/// The samples of a text exposition: `name{labels}` → value, labels in the order written
/// (comments and blank lines skipped).
pub fn samples(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// vigil on the data directory `data` (its embedded config unless `extra` names one), ready:
/// the process and its base URL.
pub fn vigil_on(dir: &Path, data: &Path, name: &str, extra: &[&str]) -> (Proc, String) {
    let port = free_port();
    let mut args = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--storage.tsdb.path={}", data.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = spawn(name, &vigil_bin(), &args, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    (p, base)
}

/// A copy of the tree `from` at `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// An integer native histogram of schema 0 whose counts grow with `k`: buckets 0 and 1 (and,
/// when `wide`, bucket 3), a zero bucket, an empty negative bucket.
pub fn growing_histogram(t: i64, k: i64, wide: bool) -> vigil_remote::proto::Histogram {
    use vigil_remote::proto::{BucketSpan, Histogram};
    let span = |offset, length| BucketSpan { offset, length };
    let (spans, deltas, count) = if wide {
        (vec![span(0, 2), span(1, 1)], vec![k, k, k], 6 * k as u64)
    } else {
        (vec![span(0, 2)], vec![k, k], 3 * k as u64)
    };
    Histogram {
        count_int: Some(count + k as u64),
        sum: 1.5 * k as f64,
        schema: 0,
        zero_threshold: 0.001,
        zero_count_int: Some(k as u64),
        positive_spans: spans,
        positive_deltas: deltas,
        negative_spans: vec![span(1, 1)],
        negative_deltas: vec![0],
        timestamp: t,
        ..Default::default()
    }
}

/// POST native histograms of one series (`name`, `job="app"`) to a remote write 1.0 receiver
/// (`base` + `/api/v1/write`) with curl; the response's status.
pub fn remote_write_histograms(
    base: &str,
    dir: &Path,
    name: &str,
    hs: &[vigil_remote::proto::Histogram],
) -> String {
    use vigil_remote::proto::{Label, TimeSeries, WriteRequest};
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("__name__", name), label("job", "app")],
            histograms: hs.iter().map(prost::Message::encode_to_vec).collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let body = dir.join(format!("{name}-histograms.bin"));
    std::fs::write(&body, vigil_remote::codec::encode(&req)).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/x-protobuf"])
        .args(["-H", "Content-Encoding: snappy"])
        .args(["-H", "X-Prometheus-Remote-Write-Version: 0.1.0"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("{base}/api/v1/write"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every `expr` of a Grafana dashboard's panels, and its template variables' `label_values`
/// queries.
pub fn dashboard_queries(path: &std::path::Path) -> (Vec<String>, Vec<String>) {
    fn walk(v: &serde_json::Value, exprs: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(e)) = m.get("expr") {
                    exprs.push(e.clone());
                }
                m.values().for_each(|x| walk(x, exprs));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, exprs)),
            _ => {}
        }
    }
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    walk(&d["panels"], &mut exprs);
    walk(&d["rows"], &mut exprs);
    let vars = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["query"].as_str().or_else(|| v["query"]["query"].as_str()))
        .filter(|q| q.starts_with("label_values("))
        .map(String::from)
        .collect();
    (exprs, vars)
}

/// Each series' metadata as the WAL under `wal_dir` last logs it, by `key` of its labels, and
/// how many entries were logged in all (`--enable-feature=metadata-wal-records`).
pub fn wal_metadata(
    wal_dir: &Path,
    key: impl Fn(&vigil_model::Labels) -> String,
) -> (
    std::collections::BTreeMap<String, std::sync::Arc<vigil_storage::Metadata>>,
    usize,
) {
    use vigil_tsdb::wal::Record;
    let mut labels = std::collections::HashMap::new();
    let mut out = std::collections::BTreeMap::new();
    let mut entries = 0;
    vigil_tsdb::wal::replay_from_with(wal_dir, 0, false, &mut |_: &Record| {}, |r| match r {
        Record::Series(s) => labels.extend(s),
        Record::Metadata(m) => {
            for (r, meta) in m {
                entries += 1;
                out.insert(key(&labels[&r]), meta);
            }
        }
        _ => {}
    })
    .unwrap();
    (out, entries)
}
