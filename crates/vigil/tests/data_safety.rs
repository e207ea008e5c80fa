//! vigil never destroys data it does not understand: in agent mode, which reads no blocks, a
//! directory Debian's Prometheus wrote (WAL, head chunks, a promtool-backfilled block) is
//! refused and every file stays byte for byte as it was (the server reads such a directory:
//! `prometheus_data.rs`); two processes never share a directory; a read-only directory is
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
fn the_agent_refuses_a_prometheus_directory_and_leaves_it_byte_identical() {
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
            "--agent".to_string(),
            format!("--storage.agent.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ],
    );
    assert!(!status.success(), "{log}");
    for want in [
        "holds data vigil did not write, which agent mode does not read",
        "chunks_head (Prometheus's memory-mapped head chunks)",
        "(a Prometheus block)",
        "wal/00000000 (a WAL segment not in vigil's format",
        "has not changed anything",
        "server mode reads",
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
        // As root the mount must work (this machine's kind allows it); without root, file
        // permissions stop writes and are checked instead.
        assert!(!is_root(), "mount --bind failed as root");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let (status, log) = vigil_exits(
        &dir,
        &[
            "--agent".to_string(),
            format!("--storage.agent.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{}", free_port()),
        ],
    );
    if mounted {
        let _ = Command::new("umount").arg(&data).status();
    }
    assert!(!status.success(), "{log}");
    assert!(log.contains("is not writable"), "{log}");
    let why = if mounted {
        "Read-only file system"
    } else {
        "Permission denied"
    };
    assert!(log.contains(why), "{log}");
}

/// A full disk: appends stop (logged once, `vigil_tsdb_appends_failing` 1), queries and the UI
/// go on, nothing acknowledged is lost, and appends resume by themselves when space returns.
/// The data directory is a small tmpfs made for the test.
#[test]
fn a_full_disk_stops_appends_keeps_serving_and_resumes_by_itself() {
    let dir = temp_dir("enospc");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // As root the mount must work (this machine's kind allows it): failing it is a
        // failure, not a pass. Without root there is no way to make a small disk here.
        assert!(!is_root(), "mount -t tmpfs failed as root");
        eprintln!("SKIPPED: mounting a tmpfs needs root (this test ran as another user)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(data.clone());
    let (_ne, ne_port) = node_exporter(&dir);
    let port = free_port();
    let cfg = dir.join("vigil.yml");
    std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n")).unwrap();
    let args = [
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--config.file={}", cfg.display()),
        "--storage.tsdb.wal-segment-size=10MB".into(),
    ];
    let mut v = spawn("vigil", &vigil_bin(), &args, &dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    let count = |at: f64| -> f64 {
        let r = get_json(&format!(
            "{base}/api/v1/query?query={}&time={at}",
            enc("count_over_time(up{job=\"node\"}[1h])")
        ));
        r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    wait_for("a few scrapes", Duration::from_secs(30), || {
        (count(now()) >= 3.0).then_some(())
    });

    // Fill the disk.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
    }
    wait_for("appends to stop", Duration::from_secs(30), || {
        v.log_text()
            .contains("Storage cannot write its WAL")
            .then_some(())
    });
    let t_full = now();
    let before = count(t_full);
    assert!(before >= 3.0);
    let (_, metrics) = get(&format!("{base}/metrics"));
    assert!(
        metrics.contains("vigil_tsdb_appends_failing 1"),
        "{metrics}"
    );
    // Queries and the UI go on; what was acknowledged is there.
    assert_eq!(get(&format!("{base}/graph")).0, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(t_full), before, "acknowledged samples stay");
    assert_eq!(
        v.log_text().matches("Storage cannot write its WAL").count(),
        1,
        "logged once, not per scrape"
    );
    // Space returns: appends resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    wait_for("appends to resume", Duration::from_secs(30), || {
        (count(now()) > before + 2.0).then_some(())
    });
    assert!(v.log_text().contains("appends resumed"));
    let (_, metrics) = get(&format!("{base}/metrics"));
    assert!(
        metrics.contains("vigil_tsdb_appends_failing 0"),
        "{metrics}"
    );
    // And everything acknowledged survives a kill -9.
    let t_kill = now();
    let acknowledged = count(t_kill);
    v.child.kill().unwrap();
    v.child.wait().unwrap();
    let _v2 = spawn("vigil-restarted", &vigil_bin(), &args, &dir);
    wait_http(&format!("{base}/-/ready"));
    assert!(
        count(t_kill) >= acknowledged,
        "{} < {acknowledged}",
        count(t_kill)
    );
}

/// Serve `body` as `/metrics` on a loopback port (one thread per connection).
fn serve_static(body: String) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body: &'static str = Box::leak(body.into_boxed_str());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(body.as_bytes());
            });
        }
    });
    port
}

/// `--storage.tsdb.max-head-series`: a target whose series would pass the limit fails its own
/// scrapes, naming the limit; the other targets go on, with room for their series.
#[test]
fn a_cardinality_explosion_fails_its_own_target_only() {
    let series = |name: &str, n: usize| {
        let mut b = format!("# TYPE {name} gauge\n");
        for i in 0..n {
            b.push_str(&format!("{name}{{id=\"{i}\"}} 1\n"));
        }
        b
    };
    let calm = serve_static(series("calm", 200));
    let exploding = serve_static(series("exploding", 5000));
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: exploding\n    static_configs:\n      - targets: ['127.0.0.1:{exploding}']\n  - job_name: calm\n    static_configs:\n      - targets: ['127.0.0.1:{calm}']\n"
    );
    let v = Vigil::start(
        "cardinality",
        Some(&cfg),
        &["--storage.tsdb.max-head-series=1000"],
    );
    wait_for("the calm target's series", Duration::from_secs(30), || {
        (query(&v.base, "count(calm)")
            .first()
            .map(|r| r["value"][1] == "200")
            == Some(true))
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(query(&v.base, r#"up{job="calm"}"#)[0]["value"][1], "1");
    assert_eq!(query(&v.base, r#"up{job="exploding"}"#)[0]["value"][1], "0");
    assert!(
        query(&v.base, "exploding").is_empty(),
        "none of its samples stored"
    );
    let t = get_json(&format!("{}/api/v1/targets", v.base));
    let err = t["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["job"] == "exploding")
        .map(|a| a["lastError"].as_str().unwrap_or("").to_string())
        .unwrap();
    assert!(err.contains("head series limit of 1000 reached"), "{err}");
    let (_, metrics) = get(&format!("{}/metrics", v.base));
    assert!(
        metrics.contains("vigil_tsdb_head_series_limit 1000"),
        "{metrics}"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
