//! vigil, Prometheus and VictoriaMetrics started side by side over the same backfilled data,
//! answering the same HTTP queries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Killed, free_port, http_get};

/// A running server and its HTTP port.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    child: Killed,
}

impl Server {
    /// The server's process id (for its CPU readings).
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// GET `path?params` (values URL-encoded); the body.
    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> String {
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect();
        http_get(self.port, &format!("{path}?{}", q.join("&"))).unwrap_or_default()
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub const PROMTOOL: &str = "/usr/bin/promtool";
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The Debian VictoriaMetrics binary, if installed.
pub fn victoria_metrics() -> Option<&'static str> {
    ["/usr/bin/victoria-metrics", "/usr/sbin/victoria-metrics"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Backfill `om` into `dir` with `vigil tsdb create-blocks-from openmetrics`.
pub fn backfill_vigil(vigil: &Path, om: &Path, dir: &Path) -> Result<(), String> {
    run(Command::new(vigil)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(dir))
}

/// Backfill `om` into `dir` with Prometheus's `promtool`.
pub fn backfill_prometheus(om: &Path, dir: &Path) -> Result<(), String> {
    run(Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(dir))
}

fn wait_ready(port: u16, name: &str) {
    let t = Instant::now();
    loop {
        if let Some(b) = http_get(port, "/-/ready")
            && !b.is_empty()
            && !b.contains("not yet ready")
            && !b.to_ascii_lowercase().contains("service unavailable")
        {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{name} not ready on port {port} after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A config with no scrape jobs, so only the backfilled data is queried.
fn empty_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("empty.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\n").expect("write config");
    cfg
}

fn start_prom_like(name: &'static str, bin: &Path, data: &Path, extra: &[String]) -> Server {
    let port = free_port();
    let cfg = empty_config(data.parent().unwrap_or(data));
    let child = Killed(
        Command::new(bin)
            .args([
                format!("--config.file={}", cfg.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--storage.tsdb.path={}", data.display()),
                "--storage.tsdb.retention.time=100y".into(),
                "--log.level=warn".into(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}")),
    );
    wait_ready(port, name);
    Server { name, port, child }
}

/// vigil serving the TSDB in `data`.
pub fn start_vigil(vigil: &Path, data: &Path, extra: &[String]) -> Server {
    start_prom_like("vigil", vigil, data, extra)
}

/// Debian's Prometheus serving the TSDB in `data`.
pub fn start_prometheus(data: &Path, extra: &[String]) -> Server {
    start_prom_like("prometheus", Path::new(PROMETHEUS), data, extra)
}

/// VictoriaMetrics with `om` imported (converted to its Prometheus-text import with
/// millisecond timestamps) and flushed.
pub fn start_victoria_metrics(bin: &str, om: &Path, data: &Path) -> Server {
    let port = free_port();
    let child = Killed(
        Command::new(bin)
            .arg(format!("-storageDataPath={}", data.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics"),
    );
    while http_get(port, "/health").is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(om).expect("read data set");
    let mut body = String::with_capacity(text.len());
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some((head, ts)) = l.rsplit_once(' ') {
            let ms = (ts.parse::<f64>().unwrap_or(0.0) * 1000.0).round() as i64;
            body.push_str(head);
            body.push(' ');
            body.push_str(&ms.to_string());
            body.push('\n');
        }
    }
    let url = format!("http://127.0.0.1:{port}/api/v1/import/prometheus");
    let mut c = Command::new("curl")
        .args(["-s", "-f", "--data-binary", "@-", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("curl");
    use std::io::Write as _;
    c.stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .expect("send import");
    assert!(c.wait().expect("curl").success(), "import failed");
    let _ = http_get(port, "/internal/force_flush");
    std::thread::sleep(Duration::from_secs(2));
    Server {
        name: "victoria-metrics",
        port,
        child,
    }
}
