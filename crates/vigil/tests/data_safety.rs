//! vigil never destroys data it does not understand: on a directory Debian's Prometheus wrote
//! (WAL, head chunks, a promtool-backfilled block) it refuses to start and every file stays
//! byte for byte as it was; two processes never share a directory; a read-only directory is
//! refused clearly.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Every file under `dir` (relative path to bytes), and every directory (to `None`).
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                stack.push(e.path());
            } else {
                out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// Run vigil to its exit (it must exit within 60 s); returns the exit status and its log.
fn vigil_exits(dir: &Path, args: &[String]) -> (std::process::ExitStatus, String) {
    let log = dir.join("vigil-refused.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(vigil_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, std::fs::read_to_string(&log).unwrap());
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "vigil did not exit: {}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_prometheus(dir: &Path, data: &Path, port: u16) -> Proc {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    spawn(
        "prometheus",
        &debian_bin("prometheus"),
        &[
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        dir,
    )
}

#[test]
fn a_prometheus_directory_is_refused_and_left_byte_identical() {
    let dir = temp_dir("prom-dir");
    let data = dir.join("data");
    // Prometheus scrapes itself for a few seconds (WAL and head chunks), then is killed.
    let port = free_port();
    let mut prom = start_prometheus(&dir, &data, port);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    wait_for("Prometheus to scrape", Duration::from_secs(60), || {
        let v = get_json(&format!(
            "{base}/api/v1/query?query=count_over_time(up[1m])"
        ));
        v["data"]["result"][0]["value"][1]
            .as_str()
            .filter(|n| n.parse::<f64>().unwrap_or(0.0) >= 3.0)
            .map(|_| ())
    });
    prom.child.kill().unwrap();
    prom.child.wait().unwrap();
    // And a backfilled block, written by promtool.
    let om = dir.join("backfill.om");
    std::fs::write(
        &om,
        "# TYPE backfilled gauge\nbackfilled{a=\"b\"} 1 1600000000\nbackfilled{a=\"b\"} 2 1600000060\n# EOF\n",
    )
    .unwrap();
    let out = Command::new(debian_bin("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let before = snapshot(&data);
    assert!(
        before.keys().any(|k| k.starts_with("wal/0")),
        "{:?}",
        before.keys()
    );
    assert!(before.contains_key("chunks_head"));
    let (status, log) = vigil_exits(
        &dir,
        &[
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ],
    );
    assert!(!status.success(), "{log}");
    for want in [
        "holds data vigil did not write",
        "chunks_head (Prometheus's memory-mapped head chunks)",
        "(a Prometheus block)",
        "wal/00000000 (a WAL segment not in vigil's format",
        "has not changed anything",
        "promtool tsdb dump-openmetrics",
    ] {
        assert!(log.contains(want), "missing {want:?} in: {log}");
    }
    assert_eq!(snapshot(&data), before, "a file changed");

    // The way back is intact: Prometheus starts on its directory and has its data.
    let port = free_port();
    let _prom = start_prometheus(&dir, &data, port);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    let r = query(&base, "backfilled @ 1600000060");
    assert_eq!(r.len(), 1, "{r:?}");
}

#[test]
fn two_processes_never_share_a_directory() {
    let first = Vigil::start("lock-first", None, &[]);
    let data = first.dir.join("data");
    let (status, log) = vigil_exits(
        &first.dir,
        &[
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ],
    );
    assert!(!status.success(), "{log}");
    assert!(log.contains("is in use by another process"), "{log}");
    // Prometheus is kept out by the same lock file (Debian's build takes it only with
    // `--storage.tsdb.use-lockfile`; upstream's takes it unless `--storage.tsdb.no-lockfile`).
    let cfg = first.dir.join("prom-none.yml");
    std::fs::write(&cfg, "global: {}\n").unwrap();
    let out = Command::new(debian_bin("prometheus"))
        .arg("--storage.tsdb.use-lockfile")
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--config.file={}", cfg.display()))
        .current_dir(&first.dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("lock DB directory"), "{err}");
    // vigil is unharmed.
    assert_eq!(get(&format!("{}/-/healthy", first.base)).0, 200);
}

#[test]
fn a_read_only_directory_is_refused_clearly() {
    let dir = temp_dir("read-only");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A read-only bind mount; as root, file permissions alone do not stop writes.
    let mounted = Command::new("mount")
        .args(["--bind"])
        .arg(&data)
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(&data)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        // Not a silent pass: say why nothing was checked.
        eprintln!(
            "SKIPPED: this machine does not allow a read-only bind mount (needs root and CAP_SYS_ADMIN)"
        );
        return;
    }
    let (status, log) = vigil_exits(
        &dir,
        &[
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ],
    );
    let _ = Command::new("umount").arg(&data).status();
    assert!(!status.success(), "{log}");
    assert!(log.contains("is not writable"), "{log}");
    assert!(log.contains("Read-only file system"), "{log}");
}
