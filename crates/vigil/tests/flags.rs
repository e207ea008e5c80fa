//! Every server flag has an effect, a warning naming it, a NOT RUNNING line, or a refusal: table
//! driven over `vigil --write-documentation` (the flag table, which docs/configuration.md carries) and
//! `vigil --help`. Flags whose effect needs its own setup are checked here too (CORS, page title,
//! user assets, two listen addresses, JSON logs, WAL segment size, automatic reload).

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use support::*;

/// `(flag, kind, note)` rows of the table vigil prints.
fn table() -> Vec<(String, String)> {
    let out = run_ok(Command::new(vigil_bin()).arg("--write-documentation"));
    out.lines()
        .skip(2)
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let flag = cells.first()?.trim().trim_matches('`').strip_prefix("--")?;
            Some((flag.to_string(), cells.get(1)?.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_readme_carries_the_flag_table_and_help_lists_only_known_flags() {
    let doc = run_ok(Command::new(vigil_bin()).arg("--write-documentation"));
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    let start = readme
        .find("<!-- flags:begin -->\n")
        .expect("the flag table in docs/configuration.md")
        + 21;
    let end = readme.find("<!-- flags:end -->").unwrap();
    assert_eq!(
        &readme[start..end],
        doc,
        "docs/configuration.md's flag table differs from `vigil --write-documentation`"
    );
    let rows = table();
    let help = run_ok(Command::new(vigil_bin()).arg("--help"));
    for word in help.split_whitespace() {
        if let Some(flag) = word.strip_prefix("--") {
            let flag: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            let flag = flag.trim_end_matches('.');
            if flag.is_empty() || flag == "help" || flag == "version" {
                continue;
            }
            assert!(
                rows.iter().any(|(f, _)| f == flag),
                "--{flag} in --help but not in the table"
            );
        }
    }
    // The help text does not call working flags "not yet applied", or features "later".
    assert!(
        !help.contains("not yet applied") && !help.contains("lands with"),
        "{help}"
    );
}

/// A value for each flag that takes one (boolean flags take none).
fn sample(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "web.remote-write-receiver.accepted-protobuf-messages" => "prometheus.WriteRequest",
        "web.console.templates" | "web.console.libraries" => "consoles",
        "web.max-notifications-subscribers" | "rules.max-concurrent-evals" => "4",
        "storage.tsdb.wal-compression-type" | "storage.agent.wal-compression-type" => "snappy",
        "storage.tsdb.head-chunks-write-queue-size" | "storage.tsdb.samples-per-chunk" => "120",
        "storage.tsdb.max-block-chunk-segment-size" | "storage.agent.wal-segment-size" => "64MB",
        "storage.tsdb.delayed-compaction.max-percent" => "10",
        "storage.tsdb.delay-compact-file.path" | "storage.agent.path" => "/tmp/x",
        "storage.remote.read-sample-limit" => "5e7",
        "storage.remote.read-concurrent-limit" => "10",
        "storage.remote.read-max-bytes-in-frame" => "1048576",
        "alertmanager.notification-queue-capacity" | "alertmanager.notification-batch-size" => {
            "100"
        }
        "auto-gomemlimit.ratio" => "0.9",
        "scrape.timestamp-tolerance" => "2ms",
        "storage.tsdb.block-reload-interval"
        | "storage.remote.flush-deadline"
        | "rules.alert.for-outage-tolerance"
        | "rules.alert.for-grace-period"
        | "rules.alert.resend-delay"
        | "alertmanager.timeout"
        | "storage.agent.wal-truncate-frequency"
        | "storage.agent.retention.min-time"
        | "storage.agent.retention.max-time" => "1m",
        _ => return None,
    })
}

fn arg(flag: &str) -> String {
    match sample(flag) {
        Some(v) => format!("--{flag}={v}"),
        None => format!("--{flag}"),
    }
}

#[test]
fn refused_flags_stop_start_up_naming_the_flag_and_why() {
    let dir = temp_dir("flags-refused");
    for (flag, what) in table().iter().filter(|(_, w)| w.starts_with("refused")) {
        let out = Command::new(vigil_bin())
            .arg(arg(flag))
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--{flag} was not refused: {err}");
        assert!(err.contains(&format!("--{flag}: ")), "--{flag}: {err}");
        let why = what.trim_start_matches("refused: ");
        assert!(err.contains(why), "--{flag}: {err}");
    }
}

#[test]
fn flags_without_effect_are_named_when_set_and_not_running_ones_loudly() {
    let rows = table();
    let mut args: Vec<String> = Vec::new();
    let mut expect: Vec<(String, &str)> = Vec::new();
    for (flag, what) in &rows {
        if flag.starts_with("storage.agent.") {
            // Agent mode only (the server refuses them): `tests/agent.rs` covers them.
            continue;
        }
        if what.starts_with("accepted, no effect") {
            args.push(arg(flag));
            expect.push((format!("--{flag}: "), "WARN"));
        } else if what.starts_with("accepted, NOT RUNNING") {
            args.push(arg(flag));
            expect.push((format!("NOT RUNNING: --{flag}: "), "ERROR"));
        }
    }
    args.push(
        "--enable-feature=native-histograms,no-such-feature,promql-duration-expr,promql-extended-range-selectors"
            .into(),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = Vigil::start("flags-warned", None, &refs);
    let log = v.proc.log_text();
    for (want, level) in &expect {
        let line = log
            .lines()
            .find(|l| l.contains(want.as_str()))
            .unwrap_or_else(|| panic!("no log line with {want:?}:\n{log}"));
        assert!(
            line.contains(level),
            "{want} should be logged at {level}: {line}"
        );
    }
    // It works now (native histograms are scraped): nothing is said about it.
    assert!(
        !log.contains("--enable-feature=native-histograms:"),
        "{log}"
    );
    assert!(
        log.contains("--enable-feature=no-such-feature: unknown feature"),
        "{log}"
    );
    // Current Prometheus's features are named with what vigil does instead.
    assert!(
        log.contains("--enable-feature=promql-duration-expr: duration expressions"),
        "{log}"
    );
    assert!(
        log.contains(
            "--enable-feature=promql-extended-range-selectors: the `anchored` and `smoothed` range modifiers are always on"
        ),
        "{log}"
    );
}

/// Where the effect of each working flag is tested (a test function's name, checked to exist).
const TESTED_BY: &[(&str, &str)] = &[
    (
        "web.enable-otlp-receiver",
        "otlp_metrics_are_stored_as_prometheus_translates_them",
    ),
    (
        "rules.max-concurrent-evals",
        "concurrent_rule_eval_reorders_by_dependencies_and_its_limit_needs_it",
    ),
    (
        "web.enable-remote-write-receiver",
        "receiver_refuses_bad_input_by_name",
    ),
    (
        "storage.remote.read-max-bytes-in-frame",
        "streamed_remote_read_matches_the_samples_answer",
    ),
    (
        "storage.remote.read-concurrent-limit",
        "streamed_remote_read_matches_the_samples_answer",
    ),
    (
        "web.remote-write-receiver.accepted-protobuf-messages",
        "remote_write_2_0_between_vigils_and_against_a_1_0_receiver",
    ),
    (
        "storage.remote.flush-deadline",
        "remote_read_sample_limit_and_flush_deadline",
    ),
    (
        "storage.remote.read-sample-limit",
        "remote_read_sample_limit_and_flush_deadline",
    ),
    (
        "config.file",
        "reload_needs_lifecycle_keeps_loops_and_rejects_bad_config",
    ),
    ("config.auto-reload-interval", "working_flags_take_effect"),
    ("web.listen-address", "working_flags_take_effect"),
    (
        "web.config.file",
        "tls_client_certificates_and_basic_auth_guard_every_endpoint",
    ),
    ("web.read-timeout", "connection_limit_and_read_timeout"),
    ("web.max-connections", "connection_limit_and_read_timeout"),
    (
        "web.search.max-limit",
        "search_api_finds_names_and_values_as_prometheus_defines",
    ),
    ("web.external-url", "ui_pages_in_headless_chromium"),
    ("web.route-prefix", "ui_pages_in_headless_chromium"),
    ("web.user-assets", "working_flags_take_effect"),
    (
        "web.enable-lifecycle",
        "reload_needs_lifecycle_keeps_loops_and_rejects_bad_config",
    ),
    (
        "web.enable-admin-api",
        "admin_api_is_off_by_default_and_deletes_snapshots_when_on",
    ),
    ("web.page-title", "working_flags_take_effect"),
    ("web.cors.origin", "working_flags_take_effect"),
    (
        "storage.tsdb.path",
        "vigil_takes_over_a_prometheus_directory_and_the_way_back_works",
    ),
    ("storage.tsdb.retention.time", "working_flags_take_effect"),
    ("storage.tsdb.retention.size", "working_flags_take_effect"),
    ("storage.tsdb.retention", "working_flags_take_effect"),
    (
        "storage.tsdb.min-block-duration",
        "min_block_duration_sets_the_cut_range",
    ),
    (
        "storage.tsdb.max-block-duration",
        "min_block_duration_sets_the_cut_range",
    ),
    ("storage.tsdb.wal-segment-size", "working_flags_take_effect"),
    (
        "storage.tsdb.wal-compression",
        "wal_compression_flags_choose_how_segments_are_written",
    ),
    (
        "storage.tsdb.wal-compression-type",
        "wal_compression_flags_choose_how_segments_are_written",
    ),
    (
        "storage.agent.wal-compression",
        "wal_compression_flags_choose_how_segments_are_written",
    ),
    (
        "storage.agent.wal-compression-type",
        "wal_compression_flags_choose_how_segments_are_written",
    ),
    (
        "storage.tsdb.block-format",
        "block_format_prometheus_writes_and_compacts_prometheus_blocks",
    ),
    ("storage.tsdb.no-lockfile", "working_flags_take_effect"),
    (
        "storage.tsdb.max-head-series",
        "a_cardinality_explosion_fails_its_own_target_only",
    ),
    (
        "storage.tsdb.max-exemplars",
        "the_max_exemplars_flag_sizes_the_ring_over_the_config",
    ),
    ("query.lookback-delta", "working_flags_take_effect"),
    ("query.timeout", "query_flags_take_effect"),
    ("query.max-concurrency", "query_flags_take_effect"),
    ("query.max-samples", "working_flags_take_effect"),
    ("query.max-bytes", "working_flags_take_effect"),
    (
        "agent",
        "agent_mode_answers_refuses_and_forwards_as_prometheus_agent",
    ),
    (
        "storage.agent.path",
        "agent_mode_answers_refuses_and_forwards_as_prometheus_agent",
    ),
    (
        "storage.agent.wal-truncate-frequency",
        "agent_mode_answers_refuses_and_forwards_as_prometheus_agent",
    ),
    (
        "storage.agent.retention.min-time",
        "agent_mode_answers_refuses_and_forwards_as_prometheus_agent",
    ),
    (
        "storage.agent.no-lockfile",
        "agent_mode_answers_refuses_and_forwards_as_prometheus_agent",
    ),
    (
        "storage.agent.retention.max-time",
        "keep_from_follows_queues_and_retention",
    ),
    (
        "storage.agent.wal-segment-size",
        "agent_mode_refuses_what_an_agent_does_not_run",
    ),
    (
        "scrape.discovery-reload-interval",
        "publishes_no_more_often_than_the_interval",
    ),
    ("enable-feature", "working_flags_take_effect"),
    ("log.level", "working_flags_take_effect"),
    ("log.format", "working_flags_take_effect"),
    (
        "write-documentation",
        "the_readme_carries_the_flag_table_and_help_lists_only_known_flags",
    ),
    (
        "rules.alert.for-outage-tolerance",
        "alert_for_progress_survives_a_restart",
    ),
    (
        "rules.alert.for-grace-period",
        "alert_for_progress_survives_a_restart",
    ),
    (
        "rules.alert.resend-delay",
        "alerts_reach_alertmanager_and_resolve_there",
    ),
    (
        "alertmanager.notification-queue-capacity",
        "alerts_reach_alertmanager_and_resolve_there",
    ),
    (
        "alertmanager.notification-batch-size",
        "alerts_reach_alertmanager_and_resolve_there",
    ),
    (
        "alertmanager.drain-notification-queue-on-shutdown",
        "a_full_queue_drops_the_oldest_and_counts_them",
    ),
    (
        "storage.tsdb.delay-compact-file.path",
        "merges_wait_for_the_blocks_upload_when_asked",
    ),
    ("dashboards.dir", "dashboards_render_in_headless_chromium"),
    (
        "storage.tsdb.delayed-compaction.max-percent",
        "delayed_compaction_draws_its_delay_within_the_percentage",
    ),
    (
        "storage.tsdb.allow-overlapping-compaction",
        "overlapping_blocks_are_merged_first",
    ),
    (
        "dashboards.provisioning",
        "dashboards_render_in_headless_chromium",
    ),
];

#[test]
fn every_working_flag_names_the_test_of_its_effect() {
    // Every Rust source of the workspace's crates (integration tests and unit tests).
    let crates = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut sources = String::new();
    let mut stack = vec![std::path::PathBuf::from(crates)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                sources.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    for (flag, what) in table() {
        if what.starts_with("accepted") || what.starts_with("refused") {
            continue;
        }
        let test = TESTED_BY
            .iter()
            .find(|(f, _)| *f == flag)
            .unwrap_or_else(|| panic!("--{flag} works but TESTED_BY names no test for it"))
            .1;
        assert!(
            sources.contains(&format!("fn {test}(")),
            "--{flag}: test {test} not found"
        );
    }
}

#[test]
fn working_flags_take_effect() {
    let dir = temp_dir("flags-work");
    let assets = dir.join("assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("hello.txt"), "hello from user assets").unwrap();
    let (p1, p2) = (free_port(), free_port());
    let cfg = dir.join("vigil.yml");
    std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{p1}']\n")).unwrap();
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{p1}"),
        format!("--web.listen-address=127.0.0.1:{p2}"),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--config.file={}", cfg.display()),
        format!("--web.user-assets={}", assets.display()),
        "--web.page-title=Team <Ops> Monitoring".into(),
        r"--web.cors.origin=https://grafana\.example".into(),
        "--storage.tsdb.retention.time=30d".into(),
        "--storage.tsdb.retention.size=1.5GB".into(),
        "--storage.tsdb.max-block-duration=1d".into(),
        "--storage.tsdb.wal-segment-size=16MB".into(),
        "--storage.tsdb.no-lockfile".into(),
        "--query.lookback-delta=1m".into(),
        "--query.max-samples=1000".into(),
        "--query.max-bytes=4KB".into(),
        "--scrape.discovery-reload-interval=1s".into(),
        "--enable-feature=auto-reload-config".into(),
        "--config.auto-reload-interval=1s".into(),
        "--log.level=debug".into(),
        "--log.format=json".into(),
    ];
    let v = spawn("vigil", &vigil_bin(), &args, &dir);
    let (b1, b2) = (
        format!("http://127.0.0.1:{p1}"),
        format!("http://127.0.0.1:{p2}"),
    );
    wait_http(&format!("{b1}/-/ready"));
    // Both listen addresses serve.
    assert_eq!(get(&format!("{b2}/-/ready")).0, 200);
    // The flags as given.
    let f = get_json(&format!("{b1}/api/v1/status/flags"));
    let flags: BTreeMap<String, String> = serde_json::from_value(f["data"].clone()).unwrap();
    assert_eq!(
        flags["web.listen-address"],
        format!("127.0.0.1:{p1},127.0.0.1:{p2}")
    );
    assert_eq!(flags["query.lookback-delta"], "1m");
    // Every flag is listed, those not given at their defaults.
    assert_eq!(flags["alertmanager.notification-queue-capacity"], "10000");
    assert_eq!(flags["storage.remote.flush-deadline"], "1m");
    // Retention, size as Prometheus prints it.
    let rt = get_json(&format!("{b1}/api/v1/status/runtimeinfo"));
    assert_eq!(rt["data"]["storageRetention"], "30d or 1GiB512MiB");
    // Page title, escaped.
    let (_, page) = get(&format!("{b1}/graph"));
    assert!(
        page.contains("<title>Team &lt;Ops&gt; Monitoring</title>"),
        "{page}"
    );
    // User assets.
    assert_eq!(
        get(&format!("{b1}/user/hello.txt")),
        (200, "hello from user assets".to_string())
    );
    assert_eq!(get(&format!("{b1}/user/../vigil.yml")).0, 404);
    // CORS: the allowed origin is echoed, another is not.
    let (_, code, head) = curl(&[
        "-H",
        "Origin: https://grafana.example",
        &format!("{b1}/api/v1/query?query=1"),
    ]);
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://grafana.example"),
        "{head}"
    );
    let (_, _, head) = curl(&[
        "-H",
        "Origin: https://evil.example",
        &format!("{b1}/api/v1/query?query=1"),
    ]);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );
    // Lookback: a sample older than 1m is not returned by an instant selector.
    wait_for("a scrape", Duration::from_secs(30), || {
        (!query(&b1, "up").is_empty()).then_some(())
    });
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = get_json(&format!("{b1}/api/v1/query?query=up&time={}", t + 120));
    assert_eq!(r["data"]["result"], serde_json::json!([]), "lookback 1m");
    // Max samples: a query loading more fails.
    let r = get_json(&format!(
        "{b1}/api/v1/query?query={}",
        enc("count_over_time(up[1h:1s])")
    ));
    assert_eq!(r["errorType"], "execution", "{r}");
    // Max bytes: 300 steps of `up` are under 1,000 samples but over 4KB (16 bytes a sample).
    let r = get_json(&format!(
        "{b1}/api/v1/query?query={}",
        enc("count_over_time(up[5m:1s])")
    ));
    assert_eq!(r["errorType"], "execution", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap_or("")
            .contains("--query.max-bytes"),
        "{r}"
    );
    // The WAL segment size is validated as Prometheus validates it (segments are cut at the
    // size given: `wal::tests` cover the cut).
    let out = Command::new(vigil_bin())
        .args([
            "--storage.tsdb.wal-segment-size=5MB",
            "--storage.tsdb.path=/nonexistent/x",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("must be set between 10MB and 256MB"),
        "{err}"
    );
    // No lock file was taken.
    assert!(
        !dir.join("data").join("lock").exists(),
        "--storage.tsdb.no-lockfile takes no lock"
    );
    // Automatic reload: a changed file is loaded without /-/reload.
    std::fs::write(&cfg, format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: renamed\n    static_configs:\n      - targets: ['127.0.0.1:{p1}']\n")).unwrap();
    wait_for("the automatic reload", Duration::from_secs(30), || {
        let t = get_json(&format!("{b1}/api/v1/targets"));
        t.to_string().contains("\"renamed\"").then_some(())
    });
    // JSON logs at debug level.
    let log = v.log_text();
    let first = log.lines().next().unwrap_or("");
    assert!(
        first.starts_with('{') && first.contains("\"level\""),
        "{first}"
    );
    assert!(log.contains("DEBUG"), "debug lines at --log.level=debug");
}

/// WAL compression is on by default (as in Prometheus) and writes version-2 segments; off,
/// segments stay version 1 (what builds before compression read); zstd is refused by name.
/// `wal::tests` cover the records themselves and `prometheus_data`, `agent` and the rest of
/// the suite replay compressed WALs, the default.
#[test]
fn wal_compression_flags_choose_how_segments_are_written() {
    let dir = temp_dir("flags-wal-compression");
    let cfg = dir.join("empty.yml");
    std::fs::write(&cfg, "scrape_configs: []\n").unwrap();
    let version = |wal: &std::path::Path| {
        let b = std::fs::read(wal.join("00000000")).unwrap();
        assert_eq!(&b[..8], b"VIGILWAL");
        u32::from_le_bytes(b[8..12].try_into().unwrap())
    };
    let cases: [(&str, &[&str], u32); 4] = [
        ("server", &["--storage.tsdb.wal-compression-type=snappy"], 2),
        ("server", &["--no-storage.tsdb.wal-compression"], 1),
        ("agent", &["--storage.agent.wal-compression-type=snappy"], 2),
        ("agent", &["--storage.agent.wal-compression=false"], 1),
    ];
    for (i, (mode, extra, want)) in cases.into_iter().enumerate() {
        let port = free_port();
        let data = dir.join(format!("data-{i}"));
        let mut args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--config.file={}", cfg.display()),
        ];
        if mode == "agent" {
            args.push("--agent".into());
            args.push(format!("--storage.agent.path={}", data.display()));
        } else {
            args.push(format!("--storage.tsdb.path={}", data.display()));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let _v = spawn(&format!("vigil-{i}"), &vigil_bin(), &args, &dir);
        wait_http(&format!("http://127.0.0.1:{port}/-/ready"));
        assert_eq!(version(&data.join("wal")), want, "{mode} {extra:?}");
    }
    for (mode, flag) in [
        (
            "--storage.tsdb.path=x",
            "--storage.tsdb.wal-compression-type=zstd",
        ),
        ("--agent", "--storage.agent.wal-compression-type=zstd"),
    ] {
        let out = Command::new(vigil_bin())
            .args([mode, flag, &format!("--config.file={}", cfg.display())])
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && err.contains(&format!(
                    "{flag}: vigil compresses its WAL with snappy only"
                )),
            "{err}"
        );
    }
}

#[test]
fn connection_limit_and_read_timeout() {
    use std::io::{Read, Write};
    let port = free_port();
    let dir = temp_dir("flags-conn");
    let _v = spawn(
        "vigil",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--config.file={}", {
                let c = dir.join("empty.yml");
                std::fs::write(&c, "scrape_configs: []\n").unwrap();
                c.display().to_string()
            }),
            "--web.max-connections=2".into(),
            "--web.read-timeout=3s".into(),
        ],
        &dir,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    std::thread::sleep(Duration::from_millis(300));
    // Two idle connections take both slots.
    let idle: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A third is accepted by the kernel but not served while they are open.
    let mut third = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        third,
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        third.read(&mut buf).is_err(),
        "served beyond --web.max-connections"
    );
    // The idle ones send nothing: --web.read-timeout closes them, which frees the slots.
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(
            c.read(&mut b).unwrap_or(0),
            0,
            "an idle connection is closed"
        );
    }
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = String::new();
    third.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[test]
fn query_flags_take_effect() {
    let v = Vigil::start(
        "flags-query",
        Some("scrape_configs: []\n"),
        &[
            "--query.timeout=1ms",
            "--query.max-concurrency=3",
            "--log.level=warn",
        ],
    );
    let r = get_json(&format!(
        "{}/api/v1/query?query={}",
        v.base,
        enc("count_over_time(vector(1)[10d:1s])")
    ));
    assert_eq!(r["errorType"], "timeout", "{r}");
    let (_, metrics) = get(&format!("{}/metrics", v.base));
    assert!(
        metrics.contains("prometheus_engine_queries_concurrent_max 3"),
        "{metrics}"
    );
    // The scrape bodies' budget is set at start-up: a quarter of memory, not unbounded.
    let budget: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_scrape_body_budget_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no body budget in {metrics}"));
    assert!(budget >= (16 << 20) as f64, "{budget}");
    // --log.level=warn: no info lines.
    let log = v.proc.log_text();
    assert!(!log.contains("Server is ready"), "{log}");
}

/// `fill()` after a binary operator parses only behind `promql-binop-fill-modifiers`, as in
/// Prometheus; with it, a series missing on one side is combined with the fill value.
#[test]
fn binop_fill_modifiers_follow_their_feature_flag() {
    let q = enc(
        r#"label_replace(vector(1), "a", "x", "", "") + fill(10) label_replace(vector(2), "a", "y", "", "")"#,
    );
    let off = Vigil::start("flags-fill-off", Some("scrape_configs: []\n"), &[]);
    let r = get_json(&format!("{}/api/v1/query?query={q}&time=100", off.base));
    assert_eq!(r["errorType"], "bad_data", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("binop fill modifiers are experimental and not enabled"),
        "{r}"
    );
    drop(off);
    let on = Vigil::start(
        "flags-fill-on",
        Some("scrape_configs: []\n"),
        &["--enable-feature=promql-binop-fill-modifiers"],
    );
    let r = get_json(&format!("{}/api/v1/query?query={q}&time=100", on.base));
    assert_eq!(r["status"], "success", "{r}");
    let mut got: Vec<(String, String)> = r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["a"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("x".into(), "11".into()), ("y".into(), "12".into())],
        "{r}"
    );
    // The flag is not named as doing nothing.
    let log = on.proc.log_text();
    assert!(!log.contains("promql-binop-fill-modifiers:"), "{log}");
}

/// With `promql-delayed-name-removal`, a function keeps the name until the result is
/// assembled, so `label_replace` can still read it; without, it is gone at once.
#[test]
fn delayed_name_removal_follows_its_feature_flag() {
    let q = enc(
        r#"label_replace(-label_replace(vector(1), "__name__", "m", "", ""), "orig", "$1", "__name__", "(.*)")"#,
    );
    for (feature, want) in [
        (None, json_metric(&[])),
        (
            Some("promql-delayed-name-removal"),
            json_metric(&[("orig", "m")]),
        ),
    ] {
        let args: Vec<String> = feature
            .iter()
            .map(|f| format!("--enable-feature={f}"))
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let v = Vigil::start("flags-delayed-names", Some("scrape_configs: []\n"), &refs);
        let r = get_json(&format!("{}/api/v1/query?query={q}&time=100", v.base));
        assert_eq!(r["status"], "success", "{r}");
        let result = r["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{r}");
        assert_eq!(result[0]["metric"], want, "{feature:?}: {r}");
        assert_eq!(result[0]["value"][1], "-1", "{r}");
    }
}

/// With `type-and-unit-labels`, scraped series carry their family's type (`__type__`), here
/// vigil's own `/metrics`.
#[test]
fn type_and_unit_labels_follow_their_feature_flag() {
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let v = Vigil::start_on(
        "flags-type-unit",
        Some(&cfg),
        &["--enable-feature=type-and-unit-labels"],
        port,
    );
    let q = enc(r#"count by (__type__) ({job="self", __type__=~"counter|gauge"})"#);
    let r = wait_for("typed series", Duration::from_secs(30), || {
        let r = get_json(&format!("{}/api/v1/query?query={q}", v.base));
        (r["data"]["result"].as_array().map_or(0, Vec::len) == 2).then_some(r)
    });
    assert_eq!(r["status"], "success", "{r}");
    // The scrape's own series (`up`) are not the target's and carry no type.
    let up = get_json(&format!(
        "{}/api/v1/query?query={}",
        v.base,
        enc(r#"up{job="self"}"#)
    ));
    assert_eq!(
        up["data"]["result"][0]["metric"]["__type__"],
        serde_json::Value::Null,
        "{up}"
    );
    let log = v.proc.log_text();
    assert!(!log.contains("type-and-unit-labels:"), "{log}");
}

/// Query statistics: any `stats` value adds `stats` to a query's data (timings and the
/// samples read, as Prometheus's API); `stats=all` adds the samples of each step only with
/// `promql-per-step-stats`. The samples `count_over_time(up[1m])` reads are the counts it
/// answers, so the totals are checked against the answer.
#[test]
fn query_stats_follow_the_parameter_and_per_step_stats_their_feature() {
    for feature in [false, true] {
        let port = free_port();
        let cfg = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        );
        let args: &[&str] = if feature {
            &["--enable-feature=promql-per-step-stats"]
        } else {
            &[]
        };
        let v = Vigil::start_on("flags-stats", Some(&cfg), args, port);
        let count = |r: &serde_json::Value| -> u64 {
            r["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0)
        };
        let q = enc("count_over_time(up[1m])");
        let t = wait_for("three scrapes", Duration::from_secs(30), || {
            let r = get_json(&format!("{}/api/v1/query?query={q}", v.base));
            let t = r["data"]["result"][0]["value"][0].as_f64()?;
            (count(&r) >= 3).then_some(t)
        });
        let at = |stats: &str| {
            get_json(&format!(
                "{}/api/v1/query?query={q}&time={t}{stats}",
                v.base
            ))
        };
        let plain = at("");
        assert_eq!(plain["data"]["stats"], serde_json::Value::Null, "{plain}");
        for (param, per_step) in [("&stats=1", false), ("&stats=all", feature)] {
            let r = at(param);
            let s = &r["data"]["stats"];
            assert_eq!(s["samples"]["totalQueryableSamples"], count(&r), "{r}");
            assert!(
                s["samples"]["peakSamples"].as_u64().unwrap() >= count(&r),
                "{r}"
            );
            for k in [
                "evalTotalTime",
                "resultSortTime",
                "queryPreparationTime",
                "innerEvalTime",
                "execQueueTime",
                "execTotalTime",
            ] {
                assert!(s["timings"][k].as_f64().is_some(), "{k}: {r}");
            }
            let steps = &s["samples"]["totalQueryableSamplesPerStep"];
            if per_step {
                // The time as a number (whole seconds read back as an integer).
                assert_eq!(steps.as_array().map(Vec::len), Some(1), "{r}");
                assert_eq!(steps[0][0].as_f64(), Some(t), "{r}");
                assert_eq!(steps[0][1].as_u64(), Some(count(&r)), "{r}");
            } else {
                assert_eq!(steps, &serde_json::Value::Null, "{param}: {r}");
            }
        }
        // A range query: a step per point, each step's count that step's answer.
        let start = t - 2.0;
        let r = get_json(&format!(
            "{}/api/v1/query_range?query={q}&start={start}&end={t}&step=1&stats=all",
            v.base
        ));
        let values = r["data"]["result"][0]["values"].as_array().unwrap().clone();
        let answers: Vec<u64> = values
            .iter()
            .map(|p| p[1].as_str().unwrap().parse().unwrap())
            .collect();
        let s = &r["data"]["stats"]["samples"];
        assert_eq!(
            s["totalQueryableSamples"],
            answers.iter().sum::<u64>(),
            "{r}"
        );
        if feature {
            let per: Vec<u64> = s["totalQueryableSamplesPerStep"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[1].as_u64().unwrap())
                .collect();
            assert_eq!(per, answers, "{r}");
        }
        let log = v.proc.log_text();
        assert!(!log.contains("promql-per-step-stats:"), "{log}");
    }
}

/// With `concurrent-rule-eval`, a rule that reads a later rule which reads nothing sees that
/// rule's result of the same evaluation (Prometheus runs such rules in a first batch); in file
/// order it sees the previous evaluation's, so it has one sample fewer. Without the feature,
/// `--rules.max-concurrent-evals` is named as having no effect.
#[test]
fn concurrent_rule_eval_reorders_by_dependencies_and_its_limit_needs_it() {
    let rules_dir = temp_dir("flags-concurrent-rules");
    let rules = rules_dir.join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g\n  rules:\n  - record: doubled\n    expr: base * 2\n  - record: base\n    expr: vector(21)\n",
    )
    .unwrap();
    let cfg = format!(
        "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs: []\n",
        rules.display()
    );
    for (feature, fewer) in [(false, 1), (true, 0)] {
        let mut args = vec!["--rules.max-concurrent-evals=2"];
        if feature {
            args.push("--enable-feature=concurrent-rule-eval");
        }
        let v = Vigil::start("flags-concurrent", Some(&cfg), &args);
        let q = enc("count_over_time(base[1h]) - count_over_time(doubled[1h])");
        // At a time three evaluations back (each is done by then), once there are a few.
        let r = wait_for("a few evaluations", Duration::from_secs(30), || {
            let now = get_json(&format!("{}/api/v1/query?query=time()", v.base))["data"]["result"]
                [0]
            .as_f64()?;
            let n = enc("count_over_time(base[1h])");
            let t = now - 3.0;
            let c = get_json(&format!("{}/api/v1/query?query={n}&time={t}", v.base));
            let c: f64 = c["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
            (c >= 3.0).then(|| get_json(&format!("{}/api/v1/query?query={q}&time={t}", v.base)))
        });
        assert_eq!(
            r["data"]["result"][0]["value"][1],
            fewer.to_string(),
            "feature {feature}: {r}"
        );
        let log = v.proc.log_text();
        assert_eq!(
            log.contains("--rules.max-concurrent-evals: acts only with"),
            !feature,
            "{log}"
        );
        assert!(!log.contains("concurrent-rule-eval:"), "{log}");
    }
}

/// `${VAR}` in an external label's value is the environment's (here `HOME`, which vigil
/// inherits from the test), as Prometheus 3 always expands it; `$$` is a literal `$`.
#[test]
fn external_labels_expand_environment_variables() {
    let home = std::env::var("HOME").unwrap_or_default();
    assert!(!home.is_empty(), "the test needs HOME set");
    let port = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    home: 'h-${{HOME}}'\n    cost: '$$5'\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let v = Vigil::start_on(
        "flags-expand",
        Some(&cfg),
        &["--enable-feature=expand-external-labels"],
        port,
    );
    let url = format!("{}/federate?match[]={}", v.base, enc("up"));
    let body = wait_for("a federated up", Duration::from_secs(30), || {
        let (code, body) = get(&url);
        (code == 200 && body.contains("up{")).then_some(body)
    });
    assert!(body.contains(&format!("home=\"h-{home}\"")), "{body}");
    assert!(body.contains("cost=\"$5\""), "{body}");
    // The 2.x flag is named as always on.
    let log = v.proc.log_text();
    assert!(
        log.contains("--enable-feature=expand-external-labels: always on"),
        "{log}"
    );
}

fn json_metric(pairs: &[(&str, &str)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect(),
    )
}

#[test]
fn malformed_flag_values_are_refused_naming_the_flag() {
    let dir = temp_dir("flags-malformed");
    for (flag, value) in [
        ("query.max-samples", "lots"),
        ("query.max-bytes", "lots"),
        ("query.max-concurrency", "0"),
        ("query.timeout", "soon"),
        ("query.lookback-delta", "-5m"),
        ("storage.tsdb.retention.size", "big"),
    ] {
        let out = Command::new(vigil_bin())
            .arg(format!("--{flag}={value}"))
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .current_dir(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--{flag}={value} was accepted");
        assert!(err.contains(&format!("--{flag}")), "--{flag}: {err}");
    }
}

/// Counts past what a semaphore can hold (2^61) mean "no limit" in effect: the server starts
/// and answers, where a semaphore of that size would have panicked at start-up.
#[test]
fn huge_concurrency_limits_start_and_serve() {
    let huge = "4611686018427387904";
    let v = Vigil::start(
        "flags-huge-limits",
        Some("scrape_configs: []\n"),
        &[
            &format!("--query.max-concurrency={huge}"),
            &format!("--web.max-connections={huge}"),
            &format!("--storage.remote.read-concurrent-limit={huge}"),
        ],
    );
    let r = get_json(&format!("{}/api/v1/query?query={}", v.base, enc("1+1")));
    assert_eq!(r["data"]["result"][1], "2", "{r}");
    let r = get_json(&format!("{}/api/v1/labels", v.base));
    assert_eq!(r["status"], "success", "{r}");
}
