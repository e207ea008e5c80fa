//! Agent mode (`--agent`), side by side with Debian's Prometheus 2.42 in agent mode
//! (`--enable-feature=agent`): both scrape a real node exporter and remote-write to one
//! VictoriaMetrics; they answer the API alike (422 "unavailable with Prometheus Agent" where
//! an agent has no local data), refuse the same config sections and flags with the same words,
//! and vigil's WAL is truncated behind remote write without losing a sample, across SIGKILL
//! and across a receiver outage with a reload in the middle.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

/// Raw sample timestamps (ms) of `selector` in VictoriaMetrics, sorted.
fn exported(vm: &str, selector: &str) -> Vec<i64> {
    let _ = get(&format!("{vm}/internal/force_flush"));
    let (_, body) = get(&format!("{vm}/api/v1/export?match[]={}", enc(selector)));
    let mut ts: Vec<i64> = body
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| {
            v["timestamps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.as_i64())
        })
        .collect();
    ts.sort_unstable();
    ts
}

fn config(ne_port: u16, self_port: u16, vm: &str, who: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    agent: {who}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{self_port}']\nremote_write:\n  - url: {vm}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
    )
}

#[test]
fn agent_mode_answers_refuses_and_forwards_as_prometheus_agent() {
    let dir = temp_dir("agent");
    let (_ne, ne_port) = node_exporter(&dir);
    let vm_port = free_port();
    let _vm = victoria_metrics(&dir, vm_port);
    let vm = format!("http://127.0.0.1:{vm_port}");

    let (vport, pport) = (free_port(), free_port());
    std::fs::write(dir.join("vigil.yml"), config(ne_port, vport, &vm, "vigil")).unwrap();
    std::fs::write(dir.join("prom.yml"), config(ne_port, pport, &vm, "prom")).unwrap();
    let agent_dir = dir.join("data-agent");
    let vigil_args = vec![
        "--agent".to_string(),
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--config.file={}", dir.join("vigil.yml").display()),
        format!("--storage.agent.path={}", agent_dir.display()),
        "--storage.agent.wal-truncate-frequency=2s".into(),
        "--storage.agent.retention.min-time=1s".into(),
        "--storage.agent.no-lockfile".into(),
        "--storage.agent.wal-compression".into(),
    ];
    let vigil = spawn("vigil-agent", &vigil_bin(), &vigil_args, &dir);
    let _prom = spawn(
        "prometheus-agent",
        &debian_bin("prometheus"),
        &[
            "--enable-feature=agent".into(),
            format!("--web.listen-address=127.0.0.1:{pport}"),
            format!("--config.file={}", dir.join("prom.yml").display()),
            format!("--storage.agent.path={}", dir.join("prom-agent").display()),
        ],
        &dir,
    );
    let (vb, pb) = (
        format!("http://127.0.0.1:{vport}"),
        format!("http://127.0.0.1:{pport}"),
    );
    wait_http(&format!("{vb}/-/ready"));
    wait_http(&format!("{pb}/-/ready"));

    // The API: what needs local data is refused alike, the rest answers.
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/query_range?query=up&start=0&end=10&step=1",
        "/api/v1/labels",
        "/api/v1/label/job/values",
        "/api/v1/series?match[]=up",
        "/api/v1/rules",
        "/api/v1/alerts",
        "/api/v1/alertmanagers",
        "/api/v1/status/tsdb",
    ] {
        let (vc, vbody) = get(&format!("{vb}{path}"));
        let (pc, pbody) = get(&format!("{pb}{path}"));
        assert_eq!((vc, pc), (422, 422), "{path}: {vbody} / {pbody}");
        let v: serde_json::Value = serde_json::from_str(&vbody).unwrap();
        let p: serde_json::Value = serde_json::from_str(&pbody).unwrap();
        assert_eq!(v, p, "{path}");
    }
    // Both scrape the node exporter and themselves.
    let jobs = |base: &str| {
        wait_for("targets up", Duration::from_secs(30), || {
            let t = get_json(&format!("{base}/api/v1/targets"));
            let mut up: Vec<String> = t["data"]["activeTargets"]
                .as_array()?
                .iter()
                .filter(|t| t["health"] == "up")
                .map(|t| t["labels"]["job"].as_str().unwrap_or("").to_string())
                .collect();
            up.sort();
            (up.len() == 2).then_some(up)
        })
    };
    assert_eq!(jobs(&vb), jobs(&pb));
    // The agent's landing page, and the query page leads there.
    let (code, page) = get(&format!("{vb}/agent"));
    assert_eq!(code, 200);
    assert!(page.contains("agent mode"), "{page}");
    let (_, code, graph) = curl(&["-L", &format!("{vb}/graph")]);
    assert!((300..400).contains(&code), "{graph}");
    assert!(
        graph.contains("agent mode"),
        "/graph leads to /agent: {graph}"
    );

    // What both forwarded: the same series of the node exporter.
    wait_for("both agents' samples", Duration::from_secs(30), || {
        let v = exported(&vm, r#"node_load1{agent="vigil"}"#);
        let p = exported(&vm, r#"node_load1{agent="prom"}"#);
        (v.len() >= 3 && p.len() >= 3).then_some(())
    });
    let names = |who: &str| {
        let r = get_json(&format!(
            "{vm}/api/v1/label/__name__/values?match[]={}",
            enc(&format!(r#"{{agent="{who}",job="node"}}"#))
        ));
        let mut n: Vec<String> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let (vn, pn) = (names("vigil"), names("prom"));
    assert!(vn.len() > 50, "{vn:?}");
    assert_eq!(vn, pn);

    // The WAL is truncated behind remote write: a checkpoint appears, the first segment goes,
    // and no block is ever written.
    let wal = agent_dir.join("wal");
    wait_for("a WAL checkpoint", Duration::from_secs(30), || {
        let names: Vec<String> = std::fs::read_dir(&wal)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        (names.iter().any(|n| n.starts_with("checkpoint."))
            && !names.iter().any(|n| n == "00000000"))
        .then_some(())
    });
    let blocks = std::fs::read_dir(&agent_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().len() == 26)
        .count();
    assert_eq!(blocks, 0);
    let (_, metrics) = get(&format!("{vb}/metrics"));
    assert!(
        metrics.contains("prometheus_agent_active_series "),
        "{metrics}"
    );
    assert!(
        !agent_dir.join("lock").exists(),
        "--storage.agent.no-lockfile"
    );
    // --storage.agent.wal-compression: the segments say version 2 (records may be compressed).
    let segs: Vec<Vec<u8>> = std::fs::read_dir(agent_dir.join("wal"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| std::fs::read(e.path()).unwrap())
        .filter(|b| b.len() >= 16)
        .collect();
    assert!(!segs.is_empty());
    for b in segs {
        assert_eq!(
            (&b[..8], &b[8..12]),
            (&b"VIGILWAL"[..], &2u32.to_le_bytes()[..])
        );
    }

    // SIGKILL, then start again on the same WAL: what was scraped before the kill arrives.
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    drop(vigil);
    let _again = spawn("vigil-agent-2", &vigil_bin(), &vigil_args, &dir);
    wait_http(&format!("{vb}/-/ready"));
    let sel = r#"up{agent="vigil",job="node"}"#;
    let ts = wait_for(
        "the samples from before the kill",
        Duration::from_secs(30),
        || {
            let ts = exported(&vm, sel);
            ts.iter().any(|t| *t > killed_at + 1000).then_some(ts)
        },
    );
    let before: Vec<i64> = ts.iter().copied().filter(|t| *t < killed_at).collect();
    assert!(before.len() >= 4, "{before:?} kill {killed_at} all {ts:?}");
    // One sample a second from the start to the kill: no gap, so nothing was lost.
    for w in before.windows(2) {
        assert!(
            w[1] - w[0] < 2500,
            "a gap in what vigil forwarded: {w:?} in {before:?}"
        );
    }
    assert!(
        killed_at - before.last().unwrap() < 2500,
        "the last samples before SIGKILL were lost: last {} vs kill {killed_at}",
        before.last().unwrap()
    );
}

#[test]
fn agent_mode_refuses_what_an_agent_does_not_run() {
    let dir = temp_dir("agent-refuse");
    std::fs::write(
        dir.join("rules.yml"),
        "rule_files: [r.yml]\nscrape_configs: []\n",
    )
    .unwrap();
    let run = |bin: &Path, args: &[String]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let port = free_port();
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let cfg = format!("--config.file={}", dir.join("rules.yml").display());
    let agent_path = format!("--storage.agent.path={}", dir.join("d").display());
    let want = "field rule_files is not allowed in agent mode";
    let v = run(
        &vigil_bin(),
        &[
            "--agent".into(),
            listen.clone(),
            cfg.clone(),
            agent_path.clone(),
        ],
    );
    assert!(v.contains(want), "vigil: {v}");
    let p = run(
        &debian_bin("prometheus"),
        &[
            "--enable-feature=agent".into(),
            listen.clone(),
            cfg,
            agent_path.clone(),
        ],
    );
    assert!(p.contains(want), "prometheus: {p}");
    // `vigil check config --agent` says the same.
    let out = std::process::Command::new(vigil_bin())
        .args(["check", "config", "--agent"])
        .arg(dir.join("rules.yml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(want));

    // Server-only flags in agent mode, and agent-only flags in server mode.
    let want = r#"The following flag(s) can not be used in agent mode: ["--storage.tsdb.path"]"#;
    let ok = dir.join("ok.yml");
    std::fs::write(&ok, "scrape_configs: []\n").unwrap();
    let ok = format!("--config.file={}", ok.display());
    for (bin, mode) in [
        (vigil_bin(), "--agent"),
        (debian_bin("prometheus"), "--enable-feature=agent"),
    ] {
        let e = run(
            &bin,
            &[
                mode.into(),
                listen.clone(),
                ok.clone(),
                agent_path.clone(),
                "--storage.tsdb.path=x".into(),
            ],
        );
        assert!(e.contains(want), "{}: {e}", bin.display());
    }
    // The segment size is checked as Prometheus checks it.
    let e = run(
        &vigil_bin(),
        &[
            "--agent".into(),
            listen.clone(),
            ok.clone(),
            agent_path.clone(),
            "--storage.agent.wal-segment-size=5MB".into(),
        ],
    );
    assert!(
        e.contains("flag 'storage.agent.wal-segment-size' must be set between 10MB and 256MB"),
        "{e}"
    );
    let e = run(&vigil_bin(), &[listen, ok, agent_path]);
    assert!(
        e.contains(
            r#"The following flag(s) can only be used in agent mode: ["--storage.agent.path"]"#
        ),
        "{e}"
    );
}

/// An agent keeps everything through a receiver outage with WAL truncations running and a
/// config reload in the middle: truncation never drops a segment the queue has not delivered,
/// a reload that leaves `remote_write` as it is keeps the queue and its place, and once the
/// receiver is back every scrape of the outage arrives.
#[test]
fn agent_keeps_everything_through_an_outage_and_a_reload() {
    let dir = temp_dir("agent-outage");
    let (_ne, ne_port) = node_exporter(&dir);
    let vm_port = free_port();
    let vm_proc = victoria_metrics(&dir, vm_port);
    let vm = format!("http://127.0.0.1:{vm_port}");
    let vport = free_port();
    let cfg_path = dir.join("vigil.yml");
    std::fs::write(&cfg_path, config(ne_port, vport, &vm, "vigil")).unwrap();
    let args = vec![
        "--agent".to_string(),
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--config.file={}", cfg_path.display()),
        format!("--storage.agent.path={}", dir.join("data-agent").display()),
        "--storage.agent.wal-truncate-frequency=2s".into(),
        "--storage.agent.retention.min-time=1s".into(),
        "--web.enable-lifecycle".into(),
    ];
    let vigil = spawn("vigil-agent", &vigil_bin(), &args, &dir);
    let vb = format!("http://127.0.0.1:{vport}");
    wait_http(&format!("{vb}/-/ready"));
    let sel = r#"up{agent="vigil",job="node"}"#;
    wait_for("the first samples", Duration::from_secs(30), || {
        (!exported(&vm, sel).is_empty()).then_some(())
    });
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    // The receiver goes away (after flushing what it acknowledged, which vigil will not
    // resend); truncations keep running every 2s meanwhile.
    let _ = get(&format!("{vm}/internal/force_flush"));
    let outage_start = now_ms();
    drop(vm_proc);
    let metric = |name: &str| -> f64 {
        let (_, m) = get(&format!("{vb}/metrics"));
        m.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // The segment the queue reads: what it holds cannot all have been delivered.
    let reading = metric("prometheus_wal_watcher_current_segment") as u64;
    std::thread::sleep(Duration::from_secs(6));
    // A reload that changes scraping but not remote_write.
    std::fs::write(
        &cfg_path,
        config(ne_port, vport, &vm, "vigil").replace(
            "  - job_name: self\n",
            "  - job_name: self\n    scrape_interval: 2s\n",
        ),
    )
    .unwrap();
    let (_, code, text) = curl(&["-X", "POST", &format!("{vb}/-/reload")]);
    assert_eq!(code, 200, "{text}");
    std::thread::sleep(Duration::from_secs(6));
    // Truncation ran meanwhile (it cuts a segment each time) and deleted nothing undelivered.
    let segments: Vec<String> = std::fs::read_dir(dir.join("data-agent/wal"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert!(
        segments.len() >= 3,
        "segments cut by truncation: {segments:?}"
    );
    let undelivered = format!("{reading:08}");
    assert!(
        segments.contains(&undelivered),
        "segment {undelivered}, not yet delivered, was deleted: {segments:?}"
    );
    // The reload kept the queue (same remote_write): one start in the log.
    assert_eq!(
        vigil.log_text().matches("Remote write: started").count(),
        1,
        "{}",
        vigil.log_text()
    );
    // The receiver is back.
    let _vm_again = victoria_metrics(&dir, vm_port);
    let back = now_ms();
    let ts = wait_for("the outage's samples", Duration::from_secs(90), || {
        let ts = exported(&vm, sel);
        ts.iter().any(|t| *t > back + 2000).then_some(ts)
    });
    let during: Vec<i64> = ts
        .iter()
        .copied()
        .filter(|t| *t > outage_start && *t < back)
        .collect();
    assert!(during.len() >= 8, "scrapes of the outage: {during:?}");
    for w in ts.windows(2) {
        assert!(w[1] - w[0] < 2500, "a gap in what arrived: {w:?} in {ts:?}");
    }
    drop(vigil);
}
