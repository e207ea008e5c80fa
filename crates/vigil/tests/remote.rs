//! Remote storage against real peers from Debian: vigil remote-writing to VictoriaMetrics
//! (through a receiver outage and a `kill -9` of vigil, with nothing lost) and to Prometheus's
//! receiver; Prometheus remote-writing to vigil's receiver; Prometheus federating from vigil
//! and reading from it with `remote_read`; and the receiver refusing bad input by name.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// Samples as (labels, timestamp ms, value).
type Raw = Vec<(String, i64, String)>;

const IGNORED: &[&str] = &["replica", "site"];

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One number from an instant query at `t`.
fn value_at(base: &str, q: &str, t: f64) -> Option<f64> {
    let r = get_json(&format!("{base}/api/v1/query?query={}&time={t:.3}", enc(q)));
    r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Every sample of the series matching `sel` in `(from, to]`, as (labels, timestamp ms,
/// value) sorted: the raw data as the query API returns it. Labels named in `IGNORED` (the
/// sender's external labels) are left out so both sides compare.
fn raw(base: &str, sel: &str, from: f64, to: f64) -> Vec<(String, i64, String)> {
    let secs = (to - from).ceil() as i64;
    let r = get_json(&format!(
        "{base}/api/v1/query?query={}&time={to:.3}",
        enc(&format!("{sel}[{secs}s]"))
    ));
    let mut out = Vec::new();
    for s in r["data"]["result"].as_array().cloned().unwrap_or_default() {
        let mut m: Vec<(String, String)> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        m.sort();
        for p in s["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            if (t as f64) > from * 1000.0 {
                out.push((format!("{m:?}"), t, p[1].as_str().unwrap().to_string()));
            }
        }
    }
    out.sort();
    out
}

/// Debian's VictoriaMetrics on `dir`, answering from the newest samples, deduplicating
/// repeated timestamps (a resumed queue may resend a few).
fn pending(base: &str) -> f64 {
    let (_, body) = get(&format!("{base}/metrics"));
    body.lines()
        .filter(|l| l.starts_with("prometheus_remote_storage_samples_pending{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metric(base: &str, name: &str) -> f64 {
    let (_, body) = get(&format!("{base}/metrics"));
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Stop a process with SIGTERM and wait for it.
fn terminate(mut p: Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let _ = p.child.wait();
}

/// Wait until `peer` has every sample `source` has of `sel` in `(from, to]`; both. With
/// `flush`, the peer is VictoriaMetrics, asked each time to make what it received searchable.
fn converge(source: &str, peer: &str, sel: &str, from: f64, to: f64, flush: bool) -> (Raw, Raw) {
    let mut last = (Vec::new(), Vec::new());
    for _ in 0..120 {
        if flush {
            let _ = get(&format!("{peer}/internal/force_flush"));
        }
        let (a, b) = (raw(source, sel, from, to), raw(peer, sel, from, to));
        if !a.is_empty() && a == b {
            return (a, b);
        }
        last = (a, b);
        std::thread::sleep(Duration::from_millis(500));
    }
    last
}

fn first_difference(a: &[(String, i64, String)], b: &[(String, i64, String)]) -> String {
    let missing: Vec<_> = a.iter().filter(|x| !b.contains(x)).take(3).collect();
    let extra: Vec<_> = b.iter().filter(|x| !a.contains(x)).take(3).collect();
    format!(
        "{} vs {} samples; only in vigil: {missing:?}; only in the peer: {extra:?}",
        a.len(),
        b.len()
    )
}

/// vigil scrapes a real node exporter and remote-writes to VictoriaMetrics: both hold the same
/// samples. VictoriaMetrics is then stopped while vigil keeps scraping, and started again: the
/// backlog drains and nothing from the outage is missing. vigil is then killed with SIGKILL
/// and started again on its data: it resumes where it got to, and still nothing is missing.
#[test]
fn remote_write_to_victoria_metrics_loses_nothing_across_outage_and_kill() {
    let dir = temp_dir("remote-vm");
    let (_ne, ne_port) = node_exporter(&dir);
    let vm_port = free_port();
    let vm = victoria_metrics(&dir, vm_port);
    let vmbase = format!("http://127.0.0.1:{vm_port}");
    let vport = free_port();
    std::fs::write(
        dir.join("vigil.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels:\n    replica: a\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{vport}']\nremote_write:\n  - url: {vmbase}/api/v1/write\n    name: vm\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
        ),
    )
    .unwrap();
    let vbase = format!("http://127.0.0.1:{vport}");
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--config.file={}", dir.join("vigil.yml").display()),
    ];
    let first = spawn("vigil-1", &vigil_bin(), &args, &dir);
    wait_http(&format!("{vbase}/-/ready"));
    let start = now();
    std::thread::sleep(Duration::from_secs(8));

    // The same series and samples in both (VictoriaMetrics's also carry `replica="a"`).
    let t = now() - 1.0;
    let sel = r#"{job="node",__name__=~"up|node_load1|node_cpu_seconds_total"}"#;
    let (a, b) = converge(&vbase, &vmbase, sel, start - 60.0, t, true);
    assert!(a.len() >= 10, "{}", a.len());
    assert_eq!(a, b, "{}", first_difference(&a, &b));
    let ext = value_at(&vmbase, r#"count(up{job="node",replica="a"})"#, t);
    assert_eq!(ext, Some(1.0), "external labels are sent");
    // vigil's own metrics, with a queue's series among them, still parse when scraped.
    let own = value_at(&vbase, r#"up{job="self"}"#, t);
    assert_eq!(
        own,
        Some(1.0),
        "{:?}",
        get(&format!("{vbase}/api/v1/targets"))
    );
    // The counter is read from a later self-scrape than `t`'s on a loaded machine: wait for it.
    wait_for(
        "the queue's counters are scraped",
        Duration::from_secs(30),
        || {
            value_at(
                &vbase,
                r#"prometheus_remote_storage_samples_total{remote_name="vm"}"#,
                now(),
            )
            .filter(|n| *n > 0.0)
        },
    );

    // The receiver goes away (stopped cleanly: VictoriaMetrics keeps its newest samples in
    // memory for a few seconds, and a SIGKILL would lose what it had acknowledged); vigil
    // keeps scraping and retrying.
    terminate(vm);
    let outage_start = now();
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        metric(&vbase, "prometheus_remote_storage_samples_retried_total") > 0.0,
        "sends were retried"
    );
    let _vm = victoria_metrics(&dir, vm_port);
    wait_for("the backlog to drain", Duration::from_secs(60), || {
        (pending(&vbase) == 0.0
            && metric(
                &vbase,
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
            ) > now() - 3.0)
            .then_some(())
    });
    let t = now() - 1.0;
    let up_sel = r#"up{job="node"}"#;
    // On a loaded machine the newest scrapes can take a moment to be appended: wait for them.
    wait_for("the outage's scrapes", Duration::from_secs(30), || {
        (raw(&vbase, up_sel, outage_start - 5.0, t).len() >= 15).then_some(())
    });
    let (a, b) = converge(&vbase, &vmbase, up_sel, outage_start - 5.0, t, true);
    assert!(a.len() >= 15, "{a:?}");
    assert_eq!(a, b, "samples of the outage: {}", first_difference(&a, &b));

    // kill -9 vigil, start it again on the same data: it resumes from where it got to.
    drop(first);
    let killed_at = now();
    std::thread::sleep(Duration::from_secs(2));
    let _second = spawn("vigil-2", &vigil_bin(), &args, &dir);
    wait_http(&format!("{vbase}/-/ready"));
    // Scrapes after the restart (their number, not the time, is what the check below needs).
    let restarted = now();
    wait_for("scrapes after the restart", Duration::from_secs(60), || {
        let t = now() - 1.0;
        (raw(&vbase, r#"up{job="node"}"#, restarted, t).len() >= 6).then_some(())
    });
    wait_for(
        "the restarted queue to catch up",
        Duration::from_secs(60),
        || {
            (pending(&vbase) == 0.0
                && metric(
                    &vbase,
                    "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                ) > now() - 3.0)
                .then_some(())
        },
    );
    let t = now() - 1.0;
    let (a, b) = converge(&vbase, &vmbase, up_sel, killed_at - 20.0, t, true);
    assert!(a.len() >= 20, "{a:?}");
    assert_eq!(
        a,
        b,
        "samples around the kill: {}",
        first_difference(&a, &b)
    );
    assert!(dir.join("data/remote/vm.position").is_file());
}

/// Debian's Prometheus on `dir/prometheus.yml` with `extra` flags: the process and base URL.
/// A receiver that is not listening yet (connections refused) is tried again soon, not after
/// the backoff: with a 10-minute backoff, samples still reach VictoriaMetrics once it starts,
/// and vigil logs the refused tries far less often than it makes them.
#[test]
fn refused_connections_are_retried_before_the_backoff_ends() {
    let dir = temp_dir("remote-refused");
    let vm_port = free_port();
    let vmbase = format!("http://127.0.0.1:{vm_port}");
    let vport = free_port();
    std::fs::write(
        dir.join("vigil.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{vport}']\nremote_write:\n  - url: {vmbase}/api/v1/write\n    name: vm\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 10m\n      max_backoff: 10m\n"
        ),
    )
    .unwrap();
    let vbase = format!("http://127.0.0.1:{vport}");
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--config.file={}", dir.join("vigil.yml").display()),
    ];
    let vigil = spawn("vigil", &vigil_bin(), &args, &dir);
    wait_http(&format!("{vbase}/-/ready"));
    wait_for("refused sends", Duration::from_secs(60), || {
        (metric(&vbase, "prometheus_remote_storage_samples_retried_total") > 0.0).then_some(())
    });
    // Several tries have been refused by now (one every 250ms), each at least one of
    // the batch's samples retried, while the 10-minute backoff has not ended once.
    std::thread::sleep(Duration::from_secs(3));
    let _vm = victoria_metrics(&dir, vm_port);
    let t = wait_for("samples at the receiver", Duration::from_secs(60), || {
        let _ = get(&format!("{vmbase}/internal/force_flush"));
        let t = now();
        value_at(&vmbase, r#"count(up{job="self"})"#, t).map(|_| t)
    });
    let (a, b) = converge(
        &vbase,
        &vmbase,
        r#"up{job="self"}"#,
        t - 600.0,
        t - 1.0,
        true,
    );
    assert!(!a.is_empty());
    assert_eq!(a, b, "{}", first_difference(&a, &b));
    drop(vigil);
    let log = std::fs::read_to_string(dir.join("vigil.log")).unwrap_or_default();
    let warned = log
        .lines()
        .filter(|l| l.contains("Remote write: send failed; retrying"))
        .count();
    assert!(warned >= 1, "the refused tries are logged:\n{log}");
    assert!(
        warned <= 3,
        "refused tries are logged once per max_backoff, not each time ({warned} lines)"
    );
}

/// `queue_config.sample_age_limit`: samples that aged past it while the receiver was down are
/// dropped, not sent (and counted as dropped); those taken after it came back arrive. Here
/// the receiver (Debian's VictoriaMetrics) starts 8 s after vigil with a 3 s limit: vigil holds
/// the outage's scrapes, the receiver none older than the limit at the first send.
#[test]
fn samples_older_than_the_age_limit_are_not_sent() {
    let dir = temp_dir("remote-age-limit");
    let vm_port = free_port();
    let vmbase = format!("http://127.0.0.1:{vm_port}");
    let vport = free_port();
    std::fs::write(
        dir.join("vigil.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{vport}']\nremote_write:\n  - url: {vmbase}/api/v1/write\n    name: vm\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 500ms\n      sample_age_limit: 3s\n"
        ),
    )
    .unwrap();
    let vbase = format!("http://127.0.0.1:{vport}");
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--config.file={}", dir.join("vigil.yml").display()),
    ];
    let _vigil = spawn("vigil", &vigil_bin(), &args, &dir);
    wait_http(&format!("{vbase}/-/ready"));
    // The outage starts with the first scrape stored (a loaded machine may take seconds).
    wait_for("a first scrape", Duration::from_secs(60), || {
        value_at(&vbase, r#"up{job="self"}"#, now())
    });
    let started = now();
    std::thread::sleep(Duration::from_secs(8));
    let vm_up = now();
    let _vm = victoria_metrics(&dir, vm_port);
    // When it listens (on a loaded machine, seconds after it was started).
    let vm_ready = now();
    wait_for("samples at the receiver", Duration::from_secs(60), || {
        let _ = get(&format!("{vmbase}/internal/force_flush"));
        value_at(&vmbase, r#"count(up{job="self"})"#, now()).map(|_| ())
    });
    // A few more sends, then compare what each side holds.
    std::thread::sleep(Duration::from_secs(7));
    let _ = get(&format!("{vmbase}/internal/force_flush"));
    let to = now();
    let mine = raw(&vbase, r#"up{job="self"}"#, started - 5.0, to);
    let theirs = raw(&vmbase, r#"up{job="self"}"#, started - 5.0, to);
    let outage_ms = ((vm_up - 5.0) * 1000.0) as i64;
    assert!(
        mine.iter().any(|x| x.1 < outage_ms),
        "vigil keeps the outage's scrapes: {mine:?}"
    );
    // Nothing sent was more than the limit (plus a batch deadline and a backoff) older than
    // the receiver's start; the outage's first scrapes were never sent.
    let oldest = theirs
        .iter()
        .map(|x| x.1)
        .min()
        .expect("samples at the receiver");
    assert!(
        oldest as f64 >= (vm_up - 3.0 - 2.0) * 1000.0,
        "the receiver got a sample from {:.1} s before it started: {theirs:?}",
        vm_up - oldest as f64 / 1000.0
    );
    assert!(
        metric(&vbase, "prometheus_remote_storage_samples_dropped_total") > 0.0,
        "the dropped samples are counted"
    );
    // Those after the receiver came back all arrived.
    let recent = |v: &Raw| -> Raw {
        v.iter()
            .filter(|x| {
                x.1 as f64 > (vm_ready + 1.0) * 1000.0 && (x.1 as f64) < (to - 2.0) * 1000.0
            })
            .cloned()
            .collect()
    };
    assert!(!recent(&mine).is_empty());
    assert_eq!(recent(&mine), recent(&theirs));
}

fn prometheus(dir: &Path, name: &str, extra: &[&str]) -> (Proc, String) {
    let port = free_port();
    let mut args = vec![
        format!(
            "--config.file={}",
            dir.join(format!("{name}.yml")).display()
        ),
        format!(
            "--storage.tsdb.path={}",
            dir.join(format!("{name}-data")).display()
        ),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = spawn(name, &debian_bin("prometheus"), &args, dir);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/-/ready"));
    (p, base)
}

/// vigil -> Prometheus 2.42's receiver, and Prometheus 2.42 -> vigil's receiver: the same
/// samples arrive on the other side.
#[test]
fn remote_write_both_ways_with_prometheus() {
    let dir = temp_dir("remote-prom");
    let (_ne, ne_port) = node_exporter(&dir);
    // Prometheus receiving (and scraping nothing).
    std::fs::write(dir.join("receiver.yml"), "global:\n  scrape_interval: 1s\n").unwrap();
    let (_rx, rxbase) = prometheus(&dir, "receiver", &["--web.enable-remote-write-receiver"]);
    // vigil receiving, and sending what it scrapes to Prometheus.
    let vcfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: {rxbase}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'up|node_load1|node_memory_MemFree_bytes'\n        action: keep\n"
    );
    let v = Vigil::start(
        "remote-prom-vigil",
        Some(&vcfg),
        &["--web.enable-remote-write-receiver"],
    );
    // Prometheus scraping the same exporter under another job and sending it to vigil.
    std::fs::write(
        dir.join("sender.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node-via-prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
            v.base
        ),
    )
    .unwrap();
    let (_tx, txbase) = prometheus(&dir, "sender", &[]);
    let start = now();
    let sel = r#"{job="node",__name__=~"up|node_load1|node_memory_MemFree_bytes"}"#;
    // Enough scrapes on both sides first (a busy machine can slow the first few).
    let sel_prom =
        r#"{job="node-via-prometheus",__name__=~"up|node_load1|node_network_receive_bytes_total"}"#;
    let t = wait_for("samples scraped", Duration::from_secs(60), || {
        let t = now() - 2.0;
        (raw(&v.base, sel, start - 60.0, t).len() > 20
            && raw(&txbase, sel_prom, start - 60.0, t).len() >= 5)
            .then_some(t)
    });
    let (a, b) = converge(&v.base, &rxbase, sel, start - 60.0, t, false);
    assert!(a.len() > 20, "{}", a.len());
    assert_eq!(a, b, "vigil -> Prometheus: {}", first_difference(&a, &b));
    let everything = raw(&rxbase, r#"{job="node"}"#, start - 60.0, t);
    let names: std::collections::BTreeSet<&str> = everything
        .iter()
        .filter_map(|(m, _, _)| m.split("\"__name__\", \"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["node_load1", "node_memory_MemFree_bytes", "up"],
        "write_relabel_configs kept only these"
    );

    let (a, b) = converge(&txbase, &v.base, sel_prom, start - 60.0, t, false);
    assert!(a.len() >= 5, "{}", a.len());
    assert_eq!(a, b, "Prometheus -> vigil: {}", first_difference(&a, &b));
    assert!(metric(&v.base, "vigil_remote_write_received_samples_total") > 0.0);
}

/// Prometheus federating from vigil's `/federate`, and another reading from vigil's
/// `/api/v1/read` with `remote_read`: the samples they get are vigil's (same timestamps and
/// values), with vigil's external labels.
#[test]
fn prometheus_federates_and_remote_reads_from_vigil() {
    let dir = temp_dir("remote-federate");
    let (_ne, ne_port) = node_exporter(&dir);
    let vcfg = format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    site: vigil\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
    );
    let v = Vigil::start("remote-federate-vigil", Some(&vcfg), &[]);
    std::thread::sleep(Duration::from_secs(3));
    let vhost = v.base.trim_start_matches("http://").to_string();

    // The text format: each series' newest sample with its timestamp, external labels added.
    let (code, text) = wait_for("federated series", Duration::from_secs(30), || {
        let (code, text) = get(&format!(
            "{}/federate?match[]={}",
            v.base,
            enc(r#"{job="node",__name__=~"up|node_load1"}"#)
        ));
        text.contains("up{").then_some((code, text))
    });
    assert_eq!(code, 200);
    assert!(text.contains("# TYPE up untyped"), "{text}");
    let up_line = text.lines().find(|l| l.starts_with("up{")).expect(&text);
    assert!(
        up_line.contains(r#"job="node""#) && up_line.contains(r#"site="vigil""#),
        "{up_line}"
    );
    assert_eq!(
        up_line.split(' ').count(),
        3,
        "value and timestamp: {up_line}"
    );
    let (code, _) = get(&format!("{}/federate?match[]=%7B", v.base));
    assert_eq!(code, 400, "a bad selector is refused");

    std::fs::write(
        dir.join("federator.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{job=\"node\"}}']\n    static_configs:\n      - targets: ['{vhost}']\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("reader.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nremote_read:\n  - url: {}/api/v1/read\n    read_recent: true\n",
            v.base
        ),
    )
    .unwrap();
    let (_f, fbase) = prometheus(&dir, "federator", &[]);
    let (_r, rbase) = prometheus(&dir, "reader", &[]);
    std::thread::sleep(Duration::from_secs(8));
    let t = now() - 1.0;
    let from = t - 30.0;
    // `up`: written on every scrape, whether or not the exporter answered in time.
    let sel = r#"up{job="node"}"#;
    let mine = raw(&v.base, sel, from, t);
    assert!(mine.len() >= 5, "{mine:?}");

    // Federated samples are vigil's samples: same series, timestamps and values.
    let fed = raw(&fbase, sel, from, t);
    assert!(fed.len() >= 2, "{fed:?}");
    for s in &fed {
        assert!(
            mine.contains(s),
            "federated {s:?} is not one of vigil's: {mine:?}"
        );
    }
    // Remote read returns exactly vigil's samples.
    let read = raw(&rbase, sel, from, t);
    assert_eq!(read, mine, "{}", first_difference(&mine, &read));
    let r = value_at(&rbase, r#"count(up{site="vigil"})"#, t);
    assert_eq!(r, Some(1.0), "remote read carries vigil's external labels");
}

/// The receiver refuses what it cannot store, naming the problem, and stores nothing of it:
/// garbage, a truncated snappy frame, the wrong content type or encoding, remote write 2.0,
/// an out-of-order sample (the whole request rolled back); then a good write is stored.
#[test]
fn receiver_refuses_bad_input_by_name() {
    let v = Vigil::start(
        "remote-bad-input",
        None,
        &["--web.enable-remote-write-receiver"],
    );
    let url = format!("{}/api/v1/write", v.base);
    let post = |body: &[u8], ct: &str, enc_: &str| -> (u16, String) {
        let f = v.dir.join("body.bin");
        std::fs::write(&f, body).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
            .args(["-H", &format!("Content-Type: {ct}")])
            .args(["-H", &format!("Content-Encoding: {enc_}")])
            .arg("--data-binary")
            .arg(format!("@{}", f.display()))
            .arg(&url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_string())
    };
    let good = vigil_bench_write_request(&[("good_metric", 1000, 1.0), ("good_metric", 2000, 2.0)]);
    let ooo = vigil_bench_write_request(&[("ooo_metric", 5000, 1.0), ("good_metric", 1500, 9.0)]);
    let pb = "application/x-protobuf";
    for (body, ct, e, code, want) in [
        (b"garbage".to_vec(), pb, "snappy", 400, "snappy"),
        (good[..good.len() / 2].to_vec(), pb, "snappy", 400, "snappy"),
        (
            good.clone(),
            "text/plain",
            "snappy",
            415,
            "application/x-protobuf",
        ),
        (good.clone(), pb, "gzip", 415, "gzip"),
        (
            good.clone(),
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            "snappy",
            415,
            "io.prometheus.write.v3.Request",
        ),
        // Remote write 2.0 refers to labels through its symbols table: a reference past its
        // end, or half a pair, names the series.
        (v2_request(&[1, 9], None), V2, "snappy", 400, "reference 9"),
        (v2_request(&[1], None), V2, "snappy", 400, "odd number"),
    ] {
        let (c, b) = post(&body, ct, e);
        assert_eq!(c, code, "{ct} {e}: {b}");
        assert!(b.contains(want), "{ct} {e}: {b}");
    }
    let (c, b) = post(&good, pb, "snappy");
    assert_eq!(c, 204, "{b}");
    let (c, b) = post(&ooo, pb, "snappy");
    assert_eq!(c, 400, "{b}");
    assert!(
        b.contains("out of order") && b.contains("good_metric"),
        "{b}"
    );
    // A 2.0 write is stored and receipted with what was written, native histograms too; an
    // invalid histogram (spans announcing buckets it does not have) is a 400 naming it, and
    // nothing of that write is stored.
    let receipt = |body: &[u8]| -> (u16, String) {
        let f = v.dir.join("v2.bin");
        std::fs::write(&f, body).unwrap();
        let (body, code, head) = curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {V2}"),
            "-H",
            "Content-Encoding: snappy",
            "--data-binary",
            &format!("@{}", f.display()),
            &url,
        ]);
        (code, format!("{head}\n{body}").to_ascii_lowercase())
    };
    let (c, head) = receipt(&v2_request(&[3, 4], None));
    assert_eq!(c, 204, "{head}");
    assert!(
        head.contains("x-prometheus-remote-write-samples-written: 2"),
        "{head}"
    );
    use prost::Message as _;
    use vigil_remote::proto::{BucketSpan, Histogram};
    let good_h = Histogram {
        count_int: Some(3),
        sum: 1.5,
        positive_spans: vec![BucketSpan {
            offset: 0,
            length: 2,
        }],
        positive_deltas: vec![1, 1],
        timestamp: 1000,
        ..Default::default()
    };
    let (c, head) = receipt(&v2_request(&[3, 5], Some(good_h.encode_to_vec())));
    assert_eq!(c, 204, "{head}");
    assert!(
        head.contains("x-prometheus-remote-write-samples-written: 2")
            && head.contains("x-prometheus-remote-write-histograms-written: 1"),
        "{head}"
    );
    let bad_h = Histogram {
        positive_deltas: vec![1],
        timestamp: 2000,
        ..good_h
    };
    let (c, head) = receipt(&v2_request(&[], Some(bad_h.encode_to_vec())));
    assert_eq!(c, 400, "{head}");
    assert!(
        head.contains("invalid native histogram") && head.contains("histograms[0]"),
        "{head}"
    );
    // A 2.0 write is answered per sample, as current Prometheus answers it: a sample refused
    // for its time is skipped and named in a 400, the rest stored and receipted.
    let late = {
        use vigil_remote::proto::{RequestV2, Sample, TimeSeriesV2};
        vigil_remote::codec::encode(&RequestV2 {
            symbols: ["", "__name__", "v2_metric", "n", "a"]
                .map(String::from)
                .to_vec(),
            timeseries: vec![TimeSeriesV2 {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![
                    Sample {
                        value: 5.0,
                        timestamp: 500,
                    },
                    Sample {
                        value: 3.0,
                        timestamp: 3000,
                    },
                ],
                ..Default::default()
            }],
        })
    };
    let (c, head) = receipt(&late);
    assert_eq!(c, 400, "{head}");
    assert!(
        head.contains("x-prometheus-remote-write-samples-written: 1")
            && head.contains("1 samples or histograms not written: out of order sample")
            && head.contains("timestamp 500"),
        "{head}"
    );
    let r = query(&v.base, r#"v2_metric{n="a"} @ 3"#);
    assert_eq!(r[0]["value"][1], "3", "{r:?}");
    let r = query(&v.base, "count_over_time(v2_metric[1h] @ 3)");
    assert_eq!(r.len(), 3, "{r:?}");
    let r = query(&v.base, "histogram_count(v2_metric{n=\"c\"} @ 1)");
    assert_eq!(r[0]["value"][1], "3", "{r:?}");
    // The rejected write left nothing behind, the good one is all there.
    let r = query(&v.base, "count_over_time(good_metric[1h] @ 2)");
    assert_eq!(r[0]["value"][1], "2", "{r:?}");
    assert!(query(&v.base, "ooo_metric @ 5").is_empty(), "rolled back");
    // Still serving.
    assert_eq!(get(&format!("{}/-/healthy", v.base)).0, 200);
}

const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// A snappy `io.prometheus.write.v2.Request` with the series `v2_metric{n="<a value>"}` whose
/// labels are `__name__` plus the pair `refs` (indexes into the symbols ["", "__name__",
/// "v2_metric", "n", "a", "b", "c"]), samples at 1s and 2s (no such series when `refs` is
/// empty); with `histogram` (an encoded `Histogram`), also that native histogram sample in the
/// series `v2_metric{n="c"}`.
fn v2_request(refs: &[u32], histogram: Option<Vec<u8>>) -> Vec<u8> {
    use vigil_remote::proto::{RequestV2, Sample, TimeSeriesV2};
    let mut labels_refs = vec![1, 2];
    labels_refs.extend_from_slice(refs);
    let mut req = RequestV2 {
        symbols: ["", "__name__", "v2_metric", "n", "a", "b", "c"]
            .map(String::from)
            .to_vec(),
        timeseries: vec![TimeSeriesV2 {
            labels_refs: labels_refs.clone(),
            samples: vec![
                Sample {
                    value: 1.0,
                    timestamp: 1000,
                },
                Sample {
                    value: 2.0,
                    timestamp: 2000,
                },
            ],
            ..Default::default()
        }],
    };
    if refs.is_empty() {
        req.timeseries.clear();
    }
    if let Some(h) = histogram {
        req.timeseries.push(TimeSeriesV2 {
            labels_refs: vec![1, 2, 3, 6],
            histograms: vec![h],
            ..Default::default()
        });
    }
    vigil_remote::codec::encode(&req)
}

/// A snappy `prometheus.WriteRequest` with one series per distinct name, built with the
/// crate vigil itself uses (the encoder is checked against Prometheus by the tests above).
fn vigil_bench_write_request(samples: &[(&str, i64, f64)]) -> Vec<u8> {
    use vigil_remote::proto::{Label, Sample, TimeSeries, WriteRequest};
    let mut req = WriteRequest::default();
    for (name, t, v) in samples {
        let i = match req
            .timeseries
            .iter()
            .position(|s| s.labels[0].value == *name)
        {
            Some(i) => i,
            None => {
                req.timeseries.push(TimeSeries {
                    labels: vec![Label {
                        name: "__name__".into(),
                        value: name.to_string(),
                    }],
                    ..Default::default()
                });
                req.timeseries.len() - 1
            }
        };
        req.timeseries[i].samples.push(Sample {
            value: *v,
            timestamp: *t,
        });
    }
    vigil_remote::codec::encode(&req)
}

/// `--storage.remote.read-sample-limit` refuses a remote read that would return more samples,
/// and answers one within it; `--storage.remote.flush-deadline` bounds how long shutdown waits
/// for an unreachable receiver (what was not sent stays in the WAL; resuming from it is shown
/// by `remote_write_to_victoria_metrics_loses_nothing_across_outage_and_kill`).
#[test]
fn remote_read_sample_limit_and_flush_deadline() {
    use vigil_remote::proto::{LabelMatcher, Query, ReadRequest, ReadResponse};
    let cfg = "remote_write:\n  - url: http://127.0.0.1:1/api/v1/write\n    name: nowhere\n    queue_config:\n      batch_send_deadline: 100ms\n      min_backoff: 50ms\n      max_backoff: 100ms\n";
    let v = Vigil::start(
        "remote-limits",
        Some(cfg),
        &[
            "--web.enable-remote-write-receiver",
            "--storage.remote.read-sample-limit=3",
            "--storage.remote.flush-deadline=2s",
        ],
    );
    let body = vigil_bench_write_request(&[
        ("limited", 1000, 1.0),
        ("limited", 2000, 2.0),
        ("limited", 3000, 3.0),
        ("limited", 4000, 4.0),
    ]);
    let post = |path: &str, body: &[u8]| -> (u16, Vec<u8>) {
        let f = v.dir.join("req.bin");
        std::fs::write(&f, body).unwrap();
        let out_f = v.dir.join("resp.bin");
        let out = Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&out_f)
            .args(["-w", "%{http_code}", "-X", "POST"])
            .args([
                "-H",
                "Content-Type: application/x-protobuf",
                "-H",
                "Content-Encoding: snappy",
            ])
            .arg("--data-binary")
            .arg(format!("@{}", f.display()))
            .arg(format!("{}{path}", v.base))
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        (code, std::fs::read(&out_f).unwrap_or_default())
    };
    assert_eq!(post("/api/v1/write", &body).0, 204);
    let read = |end: i64| {
        vigil_remote::codec::encode(&ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: end,
                matchers: vec![LabelMatcher {
                    r#type: 0,
                    name: "__name__".into(),
                    value: "limited".into(),
                }],
                hints: None,
            }],
            accepted_response_types: vec![0],
        })
    };
    let (code, resp) = post("/api/v1/read", &read(10_000));
    assert_eq!(code, 400);
    assert!(
        String::from_utf8_lossy(&resp).contains("exceeded sample limit (3)"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let (code, resp) = post("/api/v1/read", &read(2_500));
    assert_eq!(code, 200);
    let r: ReadResponse = vigil_remote::codec::decode(&resp).unwrap();
    let got: Vec<(i64, f64)> = r.results[0].timeseries[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value))
        .collect();
    assert_eq!(got, [(1000, 1.0), (2000, 2.0)]);

    // Samples written after the queue started wait for a receiver that never answers.
    let now_ms = (now() * 1000.0) as i64;
    let fresh = vigil_bench_write_request(&[("fresh", now_ms, 1.0)]);
    assert_eq!(post("/api/v1/write", &fresh).0, 204);
    wait_for("a send retried", Duration::from_secs(20), || {
        (metric(&v.base, "prometheus_remote_storage_samples_retried_total") > 0.0).then_some(())
    });
    let mut v = v;
    let _ = Command::new("kill")
        .args(["-TERM", &v.proc.child.id().to_string()])
        .status();
    let exited = wait_for(
        "shutdown within the flush deadline",
        Duration::from_secs(30),
        || v.proc.child.try_wait().ok().flatten(),
    );
    assert!(exited.success(), "{exited:?}");
    let log = v.proc.log_text();
    assert!(log.contains("flush deadline reached"), "{log}");

    // The abandoned sample was not counted as sent: started again on the same data with a
    // receiver that answers (the queue keeps its name, so its saved position), it arrives.
    let rx = Vigil::start(
        "remote-limits-rx",
        None,
        &["--web.enable-remote-write-receiver"],
    );
    v.write_config(&format!(
        "remote_write:\n  - url: {}/api/v1/write\n    name: nowhere\n    queue_config:\n      batch_send_deadline: 100ms\n",
        rx.base
    ));
    let port = free_port();
    let _again = spawn(
        "vigil-again",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", v.dir.join("data").display()),
            format!("--config.file={}", v.dir.join("vigil.yml").display()),
        ],
        &v.dir,
    );
    wait_for(
        "the unsent sample delivered",
        Duration::from_secs(30),
        || (!query(&rx.base, "fresh").is_empty()).then_some(()),
    );
}

/// Total of the remote read query counter over every endpoint of `base`.
fn read_queries(base: &str) -> f64 {
    metric(base, "prometheus_remote_storage_read_queries_total")
}

/// A remote read endpoint that answers with `SAMPLES` only, as servers without streaming do:
/// Debian's Prometheus behind a proxy that rewrites each request's accepted response types
/// to `[SAMPLES]`. Returns its read URL.
fn samples_only_proxy(prometheus: &str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/read", listener.local_addr().unwrap());
    let upstream = prometheus.trim_start_matches("http://").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let upstream = upstream.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut r = BufReader::new(conn.try_clone()?);
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body)?;
                let mut req: vigil_remote::proto::ReadRequest =
                    vigil_remote::codec::decode(&body).expect("a read request");
                req.accepted_response_types = vec![0];
                let body = vigil_remote::codec::encode(&req);
                let mut up = std::net::TcpStream::connect(&upstream)?;
                write!(
                    up,
                    "POST /api/v1/read HTTP/1.1\r\nHost: {upstream}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Read-Version: 0.1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )?;
                up.write_all(&body)?;
                let mut answer = Vec::new();
                up.read_to_end(&mut answer)?;
                conn.write_all(&answer)?;
                Ok(())
            });
        }
    });
    url
}

/// vigil reading Debian's Prometheus with `remote_read`: queries answer with Prometheus's
/// samples (sent as streamed XOR chunks), as Prometheus's own client merges them. Without `read_recent` only time before
/// local storage starts is asked for; the external labels filter the selection and come off
/// the answers (`filter_external_labels`), or stay when it is off; `required_matchers` gate
/// which selections go out; an endpoint that is down makes a warning, not an error.
#[test]
fn vigil_remote_reads_from_prometheus() {
    let dir = temp_dir("remote-read-client");
    let (_ne, ne_port) = node_exporter(&dir);
    std::fs::write(
        dir.join("source.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels:\n    replica: a\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n"
        ),
    )
    .unwrap();
    let (_src, pbase) = prometheus(&dir, "source", &[]);
    let read_url = format!("{pbase}/api/v1/read");
    // Same external labels as the source: the selection carries replica="a", which the source
    // takes as its own, and the answers lose it again.
    let a = Vigil::start(
        "remote-read-a",
        Some(&format!(
            "global:\n  external_labels:\n    replica: a\nremote_read:\n  - url: {read_url}\n"
        )),
        &[],
    );
    let dead = free_port();
    let b = Vigil::start(
        "remote-read-b",
        Some(&format!(
            "global:\n  external_labels:\n    replica: b\nremote_read:\n  - url: {read_url}\n    name: filtered\n  - url: {read_url}\n    name: unfiltered\n    filter_external_labels: false\n    required_matchers:\n      job: node\n  - url: http://127.0.0.1:{dead}/api/v1/read\n    name: down\n    required_matchers:\n      job: gone\n"
        )),
        &[],
    );
    // The same through an endpoint that answers with samples only.
    let sampled = Vigil::start(
        "remote-read-sampled",
        Some(&format!(
            "global:\n  external_labels:\n    replica: a\nremote_read:\n  - url: {}\n",
            samples_only_proxy(&pbase)
        )),
        &[],
    );
    // A small query budget: remote answers count against it too.
    let small = Vigil::start(
        "remote-read-small",
        Some(&format!("remote_read:\n  - url: {read_url}\n")),
        &["--query.max-bytes=64KB"],
    );
    let sel = r#"up{job="node"}"#;
    let (t, from, theirs) = wait_for("the source's samples", Duration::from_secs(60), || {
        let t = now() - 1.0;
        let theirs = raw(&pbase, sel, t - 30.0, t);
        (theirs.len() >= 5).then_some((t, t - 30.0, theirs))
    });
    let mine = raw(&a.base, sel, from, t);
    assert_eq!(mine, theirs, "{}", first_difference(&theirs, &mine));
    let sampled_mine = raw(&sampled.base, sel, from, t);
    assert_eq!(
        sampled_mine,
        theirs,
        "{}",
        first_difference(&theirs, &sampled_mine)
    );
    let node_load = r#"node_load1{job="node"}"#;
    assert_eq!(
        raw(&a.base, node_load, from, t),
        raw(&pbase, node_load, from, t)
    );
    let r = get_json(&format!(
        "{}/api/v1/query?query={}&time={t:.3}",
        a.base,
        enc(sel)
    ));
    let metric_a = &r["data"]["result"][0]["metric"];
    assert_eq!(metric_a["job"], "node", "{r}");
    assert!(
        metric_a.get("replica").is_none(),
        "external label kept: {r}"
    );
    // Series and range queries read the remote too.
    let r = get_json(&format!(
        "{}/api/v1/series?match[]={}&start={from:.3}&end={t:.3}",
        a.base,
        enc(sel)
    ));
    assert_eq!(r["data"].as_array().map(Vec::len), Some(1), "{r}");
    let range = |base: &str| {
        get_json(&format!(
            "{base}/api/v1/query_range?query={}&start={from:.3}&end={t:.3}&step=1",
            enc(&format!("sum({sel})"))
        ))["data"]["result"]
            .clone()
    };
    let r = range(&a.base);
    assert!(r[0]["values"].as_array().map_or(0, Vec::len) >= 5, "{r}");
    assert_eq!(r, range(&pbase));
    // Without read_recent, time after local storage starts (now plus two evaluation
    // intervals, with no blocks yet) is not asked for.
    let before = read_queries(&a.base);
    assert!(before > 0.0);
    // Prometheus answered with streamed chunks (asked first, as current Prometheus asks).
    let (_, m) = get(&format!("{}/metrics", a.base));
    assert!(
        m.lines().any(|l| l
            .starts_with("prometheus_remote_storage_read_queries_total{code=\"200\",remote_name=")
            && l.contains("response_type=\"chunked\"")),
        "{m}"
    );
    let (_, m) = get(&format!("{}/metrics", sampled.base));
    assert!(
        m.lines().any(|l| l
            .starts_with("prometheus_remote_storage_read_queries_total{code=\"200\",remote_name=")
            && l.contains("response_type=\"sampled\"")),
        "{m}"
    );
    let later = now() + 3600.0;
    let r = get_json(&format!(
        "{}/api/v1/query?query={}&time={later:.3}",
        a.base,
        enc(sel)
    ));
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(read_queries(&a.base), before, "read recent data remotely");

    // Another replica's external label: the filtered endpoint finds nothing; the unfiltered
    // one (asked only for job="node") answers with the source's replica label.
    let r = get_json(&format!(
        "{}/api/v1/query?query={}&time={t:.3}",
        b.base,
        enc(sel)
    ));
    let res = r["data"]["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(res.len(), 1, "{r}");
    assert_eq!(res[0]["metric"]["replica"], "a", "{r}");
    assert!(r.get("warnings").is_none(), "{r}");
    // `up` alone lacks job="node": the unfiltered endpoint is not asked; the filtered one
    // asks for replica="b", which the source does not have.
    let r = get_json(&format!(
        "{}/api/v1/query?query={}&time={t:.3}",
        b.base,
        enc("up")
    ));
    assert_eq!(r["data"]["result"].as_array().map(Vec::len), Some(0), "{r}");
    // The endpoint that is down: the query succeeds, with the failure as a warning.
    let r = get_json(&format!(
        "{}/api/v1/query?query={}&time={t:.3}",
        b.base,
        enc(r#"up{job="gone"}"#)
    ));
    assert_eq!(r["status"], "success", "{r}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("remote_read") && warnings.contains(&dead.to_string()),
        "{r}"
    );
    let (_, m) = get(&format!("{}/metrics", b.base));
    assert!(
        m.lines().any(|l| l.starts_with(
            "prometheus_remote_storage_read_queries_total{code=\"error\",remote_name=\"down\""
        )),
        "{m}"
    );

    // Under the budget: the same answer. Every node series over half a minute is more than
    // 64 kB decoded: the query fails naming the flag (not a partial answer), and the server
    // goes on answering.
    assert_eq!(raw(&small.base, sel, from, t), theirs);
    let r = get_json(&format!(
        "{}/api/v1/query?query={}&time={t:.3}",
        small.base,
        enc(r#"count(count_over_time({job="node"}[30s]))"#)
    ));
    assert_eq!(r["status"], "error", "{r}");
    let e = r["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("--query.max-bytes") && e.contains(&pbase.replace("http://", "")),
        "{r}"
    );
    assert_eq!(raw(&small.base, sel, from, t), theirs);
    let theirs_count = get_json(&format!(
        "{pbase}/api/v1/query?query={}&time={t:.3}",
        enc(r#"count({job="node"})"#)
    ));
    assert!(
        theirs_count["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|n| n > 100.0),
        "the source has too few series for the budget to matter: {theirs_count}"
    );
}

/// Remote write 2.0 (`protobuf_message: io.prometheus.write.v2.Request`) from one vigil to
/// another's receiver: the same samples on both sides. Debian's Prometheus 2.42 only takes
/// 1.0; it answers a 2.0 body with 204 having read it as empty, and vigil, missing the 2.0
/// receipt header, counts those samples as failed and says why instead of reporting them
/// sent.
#[test]
fn remote_write_2_0_between_vigils_and_against_a_1_0_receiver() {
    let dir = temp_dir("remote-v2");
    let (_ne, ne_port) = node_exporter(&dir);
    std::fs::write(dir.join("old.yml"), "global:\n  scrape_interval: 1s\n").unwrap();
    let (_old, oldbase) = prometheus(&dir, "old", &["--web.enable-remote-write-receiver"]);
    let rx = Vigil::start(
        "remote-v2-rx",
        Some("scrape_configs: []\n"),
        &["--web.enable-remote-write-receiver"],
    );
    let keep = "    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'up|node_load1|node_memory_MemFree_bytes'\n        action: keep\n";
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: {}/api/v1/write\n    name: v2\n    protobuf_message: io.prometheus.write.v2.Request\n    queue_config:\n      batch_send_deadline: 1s\n{keep}  - url: {oldbase}/api/v1/write\n    name: old\n    protobuf_message: io.prometheus.write.v2.Request\n    queue_config:\n      batch_send_deadline: 1s\n{keep}",
        rx.base
    );
    let tx = Vigil::start("remote-v2-tx", Some(&cfg), &[]);
    let start = now();
    let sel = r#"{job="node",__name__=~"up|node_load1|node_memory_MemFree_bytes"}"#;
    // Some scrapes first (a slow exporter on a busy machine can take a few seconds).
    let t = wait_for("samples scraped", Duration::from_secs(60), || {
        let t = now() - 2.0;
        (raw(&tx.base, sel, start - 60.0, t).len() > 15).then_some(t)
    });
    let (a, b) = converge(&tx.base, &rx.base, sel, start - 60.0, t, false);
    assert!(a.len() > 15, "{}", a.len());
    assert_eq!(
        a,
        b,
        "vigil -> vigil over 2.0: {}",
        first_difference(&a, &b)
    );
    // The 1.0 receiver stored nothing, and vigil knows.
    assert!(raw(&oldbase, sel, start - 60.0, t).is_empty());
    let failed = wait_for("failed samples counted", Duration::from_secs(30), || {
        let (_, m) = get(&format!("{}/metrics", tx.base));
        let v: f64 = m
            .lines()
            .filter(|l| {
                l.starts_with("prometheus_remote_storage_samples_failed_total{")
                    && l.contains("remote_name=\"old\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (v > 0.0).then_some(v)
    });
    assert!(failed > 0.0);
    let log = tx.proc.log_text();
    assert!(
        log.contains("does not take remote write 2.0"),
        "no reason given in the log:\n{log}"
    );
    let (_, m) = get(&format!("{}/metrics", tx.base));
    let failed_v2: f64 = m
        .lines()
        .filter(|l| {
            l.starts_with("prometheus_remote_storage_samples_failed_total{")
                && l.contains("remote_name=\"v2\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failed_v2, 0.0, "the 2.0 receiver wrote everything");

    // A receiver told to take 1.0 only answers 2.0 with 415, naming the flag.
    let only_v1 = Vigil::start(
        "remote-v2-only-v1",
        Some("scrape_configs: []\n"),
        &[
            "--web.enable-remote-write-receiver",
            "--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
        ],
    );
    let f = only_v1.dir.join("v2.bin");
    std::fs::write(&f, v2_request(&[3, 4], None)).unwrap();
    let post = |ct: &str| {
        curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {ct}"),
            "-H",
            "Content-Encoding: snappy",
            "--data-binary",
            &format!("@{}", f.display()),
            &format!("{}/api/v1/write", only_v1.base),
        ])
    };
    let (_, code, text) = post(V2);
    assert_eq!(code, 415, "{text}");
    assert!(
        text.contains("io.prometheus.write.v2.Request is not accepted")
            && text.contains("--web.remote-write-receiver.accepted-protobuf-messages"),
        "{text}"
    );
    std::fs::write(&f, vigil_bench_write_request(&[("v1_metric", 1000, 1.0)])).unwrap();
    let (_, code, text) = post("application/x-protobuf");
    assert_eq!(code, 204, "{text}");
}

/// POST a remote read request to `base`: status, content type, body.
fn post_read(base: &str, req: &vigil_remote::proto::ReadRequest) -> (u16, String, Vec<u8>) {
    let dir = temp_dir("read-body");
    let f = dir.join("req.bin");
    std::fs::write(&f, vigil_remote::codec::encode(req)).unwrap();
    let out = Command::new("curl")
        // A read that never answers fails the test (status 0) rather than hanging it.
        .args(["-sS", "-m", "60", "-D", "-", "-o"])
        .arg(dir.join("resp.bin"))
        .args(["-X", "POST", "-H", "Content-Type: application/x-protobuf"])
        .args(["-H", "Content-Encoding: snappy", "--data-binary"])
        .arg(format!("@{}", f.display()))
        .arg(format!("{base}/api/v1/read"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .unwrap_or("")
        .trim()
        .to_string();
    (
        status,
        ctype,
        std::fs::read(dir.join("resp.bin")).unwrap_or_default(),
    )
}

/// Remote read with `STREAMED_XOR_CHUNKS` (what Thanos' sidecar asks for): frames with a
/// correct length and CRC-32C, one series each, XOR chunks of at most 120 samples that decode
/// to exactly the samples the `SAMPLES` answer holds; a series longer than
/// `--storage.remote.read-max-bytes-in-frame` continues over several frames; the client's
/// first accepted type wins.
#[test]
fn streamed_remote_read_matches_the_samples_answer() {
    use vigil_remote::proto::{
        ChunkedReadResponse, LabelMatcher, Query, ReadRequest, ReadResponse,
    };
    let v = Vigil::start(
        "remote-streamed",
        Some("scrape_configs: []\nglobal:\n  external_labels:\n    site: s1\n"),
        &[
            "--web.enable-remote-write-receiver",
            "--storage.remote.read-max-bytes-in-frame=600",
            "--storage.remote.read-concurrent-limit=1",
        ],
    );
    // Three series, 500 samples each, at irregular steps with changing values.
    let mut samples = Vec::new();
    for name in ["s_a", "s_b", "s_c"] {
        let mut t = 1_000_000i64;
        for i in 0..500i64 {
            t += 1000 + (i * 37) % 900;
            samples.push((name, t, (i * i % 97) as f64 * 0.25));
        }
    }
    let (code, text) = post_write(&v.dir, &v.base, &vigil_bench_write_request(&samples));
    assert_eq!(code, 204, "{text}");
    let request = |types: Vec<i32>| ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 10_000_000,
            matchers: vec![LabelMatcher {
                r#type: 2,
                name: "__name__".into(),
                value: "s_.*".into(),
            }],
            hints: None,
        }],
        accepted_response_types: types,
    };
    type Flat = Vec<(String, Vec<(i64, u64)>)>;
    let (status, ctype, body) = post_read(&v.base, &request(vec![0, 1]));
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/x-protobuf", "SAMPLES listed first");
    let whole: ReadResponse = vigil_remote::codec::decode(&body).unwrap();
    let mut want: Flat = whole.results[0]
        .timeseries
        .iter()
        .map(|ts| {
            (
                format!("{:?}", ts.labels),
                ts.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(want.len(), 3);
    assert_eq!(want[0].1.len(), 500);
    assert!(want[0].0.contains("s1"), "external labels: {}", want[0].0);

    let (status, ctype, body) = post_read(&v.base, &request(vec![1, 0]));
    assert_eq!(status, 200);
    assert_eq!(
        ctype,
        "application/x-streamed-protobuf; proto=prometheus.chunkedreadresponse"
    );
    let mut got: std::collections::BTreeMap<String, Vec<(i64, u64)>> = Default::default();
    let mut frames = 0;
    let mut rest = &body[..];
    while !rest.is_empty() {
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = rest[i];
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            i += 1;
            if b < 0x80 {
                break;
            }
        }
        let crc = u32::from_be_bytes(rest[i..i + 4].try_into().unwrap());
        let msg = &rest[i + 4..i + 4 + len];
        assert_eq!(crc, crc32c::crc32c(msg), "frame {frames} checksum");
        rest = &rest[i + 4 + len..];
        frames += 1;
        let r = <ChunkedReadResponse as prost::Message>::decode(msg).unwrap();
        assert_eq!(r.query_index, 0);
        assert_eq!(r.chunked_series.len(), 1, "one series a frame");
        let cs = &r.chunked_series[0];
        let entry = got.entry(format!("{:?}", cs.labels)).or_default();
        for c in &cs.chunks {
            assert_eq!(c.r#type, 1, "XOR");
            let pts: Vec<_> = vigil_tsdb::chunk::XorIter::from_bytes(&c.data)
                .unwrap()
                .collect();
            assert!(pts.len() <= 120);
            assert_eq!(pts[0].t, c.min_time_ms);
            assert_eq!(pts[pts.len() - 1].t, c.max_time_ms);
            entry.extend(pts.iter().map(|p| (p.t, p.v.to_bits())));
        }
    }
    let got: Flat = got.into_iter().collect();
    assert_eq!(got, want, "streamed samples differ from the SAMPLES answer");
    assert!(
        frames > 3,
        "a 500-sample series fits no 600-byte frame: {frames} frames"
    );
    // A type vigil does not serve is refused by name.
    let (status, _, body) = post_read(&v.base, &request(vec![7]));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("STREAMED_XOR_CHUNKS"));
    // With --storage.remote.read-concurrent-limit=1 every read above held the one slot and
    // gave it back (answered, streamed or refused): six more at once each wait their turn,
    // and all are answered whole.
    let readers: Vec<_> = (0..6)
        .map(|i| {
            let base = v.base.clone();
            let req = request(if i % 2 == 0 { vec![0] } else { vec![1] });
            std::thread::spawn(move || post_read(&base, &req))
        })
        .collect();
    for (i, r) in readers.into_iter().enumerate() {
        let (status, _, body) = r.join().unwrap();
        assert_eq!(status, 200, "read {i}: {}", String::from_utf8_lossy(&body));
        if i % 2 == 0 {
            let r: ReadResponse = vigil_remote::codec::decode(&body).unwrap();
            assert_eq!(r.results[0].timeseries.len(), 3, "read {i}");
        } else {
            assert!(body.len() > 600, "read {i}: {} bytes streamed", body.len());
        }
    }
}

/// A remote write endpoint that records every request body (snappy-compressed, as sent) and
/// answers 204: its port and the bodies.
fn recording_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rx_port = l.local_addr().unwrap().port();
    let bodies: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Default::default();
    let b2 = bodies.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let b3 = b2.clone();
            std::thread::spawn(move || {
                loop {
                    // One request: headers, then Content-Length bytes.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if c.read(&mut byte).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if c.read_exact(&mut body).is_err() {
                        return;
                    }
                    b3.lock().unwrap().push(body);
                    if c.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (rx_port, bodies)
}

/// `metadata_config` with remote write 1.0: every `send_interval`, the `# TYPE`/`# HELP` of
/// each family the targets expose goes to the endpoint in `WriteRequest.metadata`, as
/// Prometheus sends it; with 2.0 each series carries its family's (no Debian receiver keeps
/// metadata, so a recording endpoint here reads the requests). The help texts are the node
/// exporter's own.
#[test]
fn remote_write_sends_metric_metadata() {
    use vigil_remote::proto::WriteRequest;
    let dir = temp_dir("remote-metadata");
    let (_ne, ne_port) = node_exporter(&dir);
    let (rx_port, bodies) = recording_receiver();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\nremote_write:\n  - url: http://127.0.0.1:{rx_port}/write\n    name: md\n    metadata_config:\n      send_interval: 1s\n      max_samples_per_send: 50\n  - url: http://127.0.0.1:{rx_port}/write2\n    name: md2\n    protobuf_message: io.prometheus.write.v2.Request\n    metadata_config:\n      send_interval: 1s\n"
    );
    let v = Vigil::start("remote-metadata", Some(&cfg), &[]);
    let (_, exposition) = get(&format!("http://127.0.0.1:{ne_port}/metrics"));
    let help = exposition
        .lines()
        .find_map(|l| l.strip_prefix("# HELP node_load1 "))
        .expect("node_load1 help")
        .to_string();
    let found = wait_for("metadata sent", Duration::from_secs(60), || {
        let bodies = bodies.lock().unwrap().clone();
        let mut md = Vec::new();
        let mut full = false;
        for b in &bodies {
            // Each body is one of the two messages; read as the other it is empty.
            let req: WriteRequest = vigil_remote::codec::decode(b).unwrap();
            if !req.metadata.is_empty() {
                assert!(
                    req.timeseries.is_empty(),
                    "metadata requests carry no samples"
                );
                assert!(req.metadata.len() <= 50, "max_samples_per_send");
                full |= req.metadata.len() == 50;
                md.extend(req.metadata);
            }
        }
        md.iter()
            .find(|m| m.metric_family_name == "node_load1")
            .cloned()
            .map(|m| (m, full))
    });
    let (load1, full) = found;
    assert_eq!(load1.r#type, 2, "gauge");
    assert_eq!(load1.help, help);
    assert!(
        full,
        "a round of more than 50 families is split into requests of 50"
    );
    // Remote write 2.0: the series themselves carry type, help and unit (by symbol).
    let (kind, help2) = wait_for("2.0 series with metadata", Duration::from_secs(60), || {
        let bodies = bodies.lock().unwrap().clone();
        bodies.iter().find_map(|b| {
            let req: vigil_remote::proto::RequestV2 = vigil_remote::codec::decode(b).ok()?;
            req.timeseries.iter().find_map(|ts| {
                let name = ts
                    .labels_refs
                    .chunks(2)
                    .find(|p| req.symbols[p[0] as usize] == "__name__")
                    .map(|p| req.symbols[p[1] as usize].clone())?;
                let m = ts.metadata.as_ref()?;
                (name == "node_load1").then(|| (m.r#type, req.symbols[m.help_ref as usize].clone()))
            })
        })
    });
    assert_eq!((kind, help2), (2, help.clone()));
    let (_, m) = get(&format!("{}/metrics", v.base));
    assert!(
        m.lines().any(|l| l
            .starts_with("prometheus_remote_storage_metadata_total{remote_name=\"md\"")
            && !l.ends_with(" 0")),
        "{m}"
    );
}

/// Debian's Prometheus receiving remote writes with a 30m out-of-order window (and `extra`
/// flags), started; and the arguments for vigil doing the same (started by the caller, which
/// restarts it): Prometheus's process and URL, vigil's arguments.
fn late_window_receivers(dir: &Path, extra: &[&str]) -> (Proc, String, Vec<String>) {
    let cfg =
        "global:\n  scrape_interval: 1h\nstorage:\n  tsdb:\n    out_of_order_time_window: 30m\n";
    std::fs::write(dir.join("prom.yml"), cfg).unwrap();
    std::fs::write(dir.join("vigil.yml"), cfg).unwrap();
    let mut prom_args = vec!["--web.enable-remote-write-receiver"];
    prom_args.extend(extra);
    let (p, pbase) = prometheus(dir, "prom", &prom_args);
    let mut vigil_args = vec![
        format!("--config.file={}", dir.join("vigil.yml").display()),
        "--web.enable-remote-write-receiver".to_string(),
    ];
    vigil_args.extend(extra.iter().map(|s| s.to_string()));
    (p, pbase, vigil_args)
}

/// POST a remote write 1.0 body (snappy-compressed) to `base`'s receiver, through a file in
/// `dir`: the status and the answer's body.
fn post_write(dir: &Path, base: &str, body: &[u8]) -> (u16, String) {
    let f = dir.join("write.bin");
    std::fs::write(&f, body).unwrap();
    let (_, code, text) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-protobuf",
        "-H",
        "Content-Encoding: snappy",
        "--data-binary",
        &format!("@{}", f.display()),
        &format!("{base}/api/v1/write"),
    ]);
    (code, text)
}

/// Late samples older than the head's start, which Prometheus writes to out-of-order blocks:
/// both run with 10m blocks, so 25 minutes of in-order samples make both cut blocks; then
/// late samples go into the ranges cut (and into the head), within the 30m window, and one
/// beyond it is refused by both. Both answer the same and count the same, before vigil writes
/// its out-of-order block, after it (merged into the block of its range), and after a
/// `kill -9` of vigil.
#[test]
fn late_samples_older_than_the_head_answer_as_prometheus() {
    let dir = temp_dir("remote-ooo-blocks");
    let (_p, pbase, vigil_args) =
        late_window_receivers(&dir, &["--storage.tsdb.min-block-duration=10m"]);
    let vigil_args: Vec<&str> = vigil_args.iter().map(String::as_str).collect();
    let data = dir.join("vigil-data");
    let (v, vbase) = vigil_on(&dir, &data, "vigil", &vigil_args);
    let t0 = (now() as i64 / 60) * 60_000;
    let post = |base: &str, body: &[u8]| post_write(&dir, base, body);
    let mut in_order = Vec::new();
    for k in (0..=25).rev() {
        in_order.push(("old_a", t0 - k * 60_000, k as f64));
        in_order.push(("old_b", t0 - k * 60_000, -(k as f64)));
    }
    for base in [&pbase, &vbase] {
        let (c, text) = post(base, &vigil_bench_write_request(&in_order));
        assert_eq!(c, 204, "{base}: {text}");
    }
    // Both cut the ranges that are complete (the head keeps at most 15m).
    let head_start = |base: &str| metric(base, "prometheus_tsdb_head_min_time");
    let start = wait_for("both cut blocks", Duration::from_secs(150), || {
        let (p, v) = (head_start(&pbase), head_start(&vbase));
        (p > (t0 - 20 * 60_000) as f64 && p == v).then_some(p as i64)
    });
    assert!(
        start > t0 - 20 * 60_000 && start <= t0 - 5 * 60_000,
        "{start}"
    );
    // Late: between a's samples, older than the head's start and within it; c only late.
    let mut late: Vec<(&str, i64, f64)> = (1..=24)
        .map(|k| ("old_a", t0 - k * 60_000 + 30_000, 100.0 + k as f64))
        .collect();
    late.extend((3..=27).map(|k| ("old_c", t0 - k * 60_000, k as f64)));
    let too_old = [("old_b", t0 - 40 * 60_000, 1.0)];
    let mut counted = Vec::new();
    for base in [&pbase, &vbase] {
        let (c, text) = post(base, &vigil_bench_write_request(&late));
        assert_eq!(c, 204, "{base}: {text}");
        let (c, text) = post(base, &vigil_bench_write_request(&too_old));
        assert!(
            !(200..300).contains(&c),
            "{base} took a too-old sample: {text}"
        );
        counted.push(metric(
            base,
            "prometheus_tsdb_head_out_of_order_samples_appended_total",
        ));
    }
    assert_eq!(
        counted[0], counted[1],
        "late samples counted (Prometheus, vigil)"
    );
    let from = (t0 - 60 * 60_000) as f64 / 1000.0;
    let to = t0 as f64 / 1000.0 + 1.0;
    let sel = r#"{__name__=~"old_.*"}"#;
    let want = raw(&pbase, sel, from, to);
    assert_eq!(
        want.len(),
        52 + 24 + 25,
        "Prometheus holds every sample taken"
    );
    let same = |vbase: &str, when: &str| {
        let got = raw(vbase, sel, from, to);
        assert!(got == want, "{when}: {}", first_difference(&got, &want));
        for q in ["count_over_time(old_a[40m])", "sum_over_time(old_c[40m])"] {
            let (a, b) = (value_at(vbase, q, to - 1.0), value_at(&pbase, q, to - 1.0));
            assert!(
                a.is_some() && a == b,
                "{when}: {q}: vigil {a:?}, Prometheus {b:?}"
            );
        }
    };
    same(&vbase, "held apart");
    // kill -9 before they are written out: the WAL has them.
    drop(v);
    let (v, vbase) = vigil_on(&dir, &data, "vigil-again", &vigil_args);
    same(&vbase, "after kill -9 before their block");
    // vigil's next maintenance pass writes its out-of-order blocks.
    wait_for(
        "vigil's out-of-order block",
        Duration::from_secs(150),
        || {
            v.log_text()
                .contains("Out-of-order block written")
                .then_some(())
        },
    );
    same(&vbase, "in blocks");
    drop(v);
    let (_v, vbase) = vigil_on(&dir, &data, "vigil-third", &vigil_args);
    same(&vbase, "after kill -9");
}

/// Series' metadata in a WAL directory, as its newest records give it: instance -> help.
fn wal_metadata(wal_dir: &Path) -> (std::collections::BTreeMap<String, String>, usize) {
    let (by_instance, entries) =
        support::wal_metadata(wal_dir, |l| l.get("instance").unwrap_or("").to_string());
    let help = by_instance
        .into_iter()
        .map(|(k, m)| (k, m.help.clone()))
        .collect();
    (help, entries)
}

/// `--enable-feature=metadata-wal-records`: each series' metadata goes into the WAL when it
/// changes, and remote write 2.0 sends each series its own. Two targets give one family
/// different help texts (a family table, what is sent without the feature, has one entry per
/// family): each series is sent with its target's. A change of help is logged and sent.
/// After a restart the series are still sent with theirs, read back from the WAL, and the
/// scrapes log nothing again. vigil's 2.0 receiver with the feature logs what it is sent in
/// its own WAL. (Prometheus 2.42 has neither the feature nor remote write 2.0, and
/// VictoriaMetrics keeps no metadata, so vigil is both ends here.)
#[test]
fn metadata_wal_records_send_each_series_its_own() {
    use std::sync::{Arc, Mutex};
    let dir = temp_dir("remote-metadata-wal");
    let body = |help: &str| {
        format!(
            "# HELP app_requests_total {help}\n# TYPE app_requests_total counter\napp_requests_total 1\n"
        )
    };
    let a = Arc::new(Mutex::new(body("Requests of A.")));
    let b = Arc::new(Mutex::new(body("Requests of B.")));
    let serve = |body: &Arc<Mutex<String>>| {
        let body = body.clone();
        serve_text(move || body.lock().unwrap().clone())
    };
    let (pa, pb) = (serve(&a), serve(&b));
    let (rec_port, bodies) = recording_receiver();
    let feature = "--enable-feature=metadata-wal-records";
    let rx = Vigil::start(
        "remote-metadata-wal-rx",
        Some("scrape_configs: []\n"),
        &["--web.enable-remote-write-receiver", feature],
    );
    let queue = "    protobuf_message: io.prometheus.write.v2.Request\n    queue_config:\n      batch_send_deadline: 1s\n    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: app_requests_total\n        action: keep\n";
    let cfg = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{pa}', '127.0.0.1:{pb}']\nremote_write:\n  - url: http://127.0.0.1:{rec_port}/write\n{queue}  - url: {}/api/v1/write\n{queue}",
        rx.base
    );
    std::fs::write(dir.join("tx.yml"), cfg).unwrap();
    let data = dir.join("tx-data");
    let config = format!("--config.file={}", dir.join("tx.yml").display());
    let start = || vigil_on(&dir, &data, "remote-metadata-wal-tx", &[&config, feature]);
    // The help each instance's series was last sent with, in the requests from `from` on.
    let sent = |from: usize| {
        let bodies = bodies.lock().unwrap().clone();
        let mut out = std::collections::BTreeMap::new();
        for b in bodies.iter().skip(from) {
            let req: vigil_remote::proto::RequestV2 = vigil_remote::codec::decode(b).unwrap();
            for ts in &req.timeseries {
                let label = |name: &str| {
                    ts.labels_refs
                        .chunks(2)
                        .find(|p| req.symbols[p[0] as usize] == name)
                        .map(|p| req.symbols[p[1] as usize].clone())
                };
                let m = ts.metadata.as_ref().expect("every series has metadata");
                assert_eq!(m.r#type, 1, "counter");
                out.insert(
                    label("instance").unwrap(),
                    req.symbols[m.help_ref as usize].clone(),
                );
            }
        }
        out
    };
    let want = |ha: &str, hb: &str| {
        std::collections::BTreeMap::from([
            (format!("127.0.0.1:{pa}"), ha.to_string()),
            (format!("127.0.0.1:{pb}"), hb.to_string()),
        ])
    };
    let (tx, _) = start();
    let first = want("Requests of A.", "Requests of B.");
    wait_for(
        "each series sent with its own help",
        Duration::from_secs(60),
        || (sent(0) == first).then_some(()),
    );
    *a.lock().unwrap() = body("Requests to A, counted.");
    let changed = want("Requests to A, counted.", "Requests of B.");
    wait_for("the changed help sent", Duration::from_secs(60), || {
        (sent(0) == changed).then_some(())
    });
    terminate(tx);
    let (logged, entries) = wal_metadata(&data.join("wal"));
    assert_eq!(logged, changed);
    assert_eq!(entries, 3, "each series once, and the change");
    // Restarted: the requests after it still carry each series' own.
    let n = bodies.lock().unwrap().len();
    let (tx, _) = start();
    wait_for("help sent after a restart", Duration::from_secs(60), || {
        let got = sent(n);
        (got.len() == 2).then_some(())
    });
    assert_eq!(sent(n), changed);
    terminate(tx);
    assert_eq!(wal_metadata(&data.join("wal")).1, 3, "nothing logged again");
    // The receiver logged what it was sent.
    let rx_wal = rx.dir.join("data").join("wal");
    terminate(rx.proc);
    assert_eq!(wal_metadata(&rx_wal).0, changed);
}

/// Native histograms read from Debian's Prometheus 2.42 with `remote_read`, as streamed
/// histogram chunks (2.42 answers a `SAMPLES` request with floats only; that path's
/// histograms are covered by `read_client`'s tests): vigil answers PromQL over them as
/// Prometheus does. The histograms go into Prometheus through its remote write receiver
/// (`--enable-feature=native-histograms`), integer histograms of schema 0 (whose bucket
/// bounds both print alike), with a counter reset and a change of bucket layout.
#[test]
fn native_histograms_remote_read_from_prometheus() {
    let dir = temp_dir("remote-read-histograms");
    let (_src, pbase) = histogram_receiver(&dir, "source");
    let end = (now() as i64 - 5) * 1000;
    let start = end - 120_000;
    let hs = two_minutes_of_histograms(start);
    let text = remote_write_histograms(&pbase, &dir, "nh_seconds", &hs);
    assert!(
        text.ends_with("204"),
        "Prometheus refused the histograms: {text}"
    );
    let read_url = format!("{pbase}/api/v1/read");
    let chunked = Vigil::start(
        "remote-read-histograms-chunked",
        Some(&format!(
            "remote_read:\n  - url: {read_url}\n    read_recent: true\n"
        )),
        &[],
    );
    let at = end as f64 / 1000.0;
    assert_eq!(same_histogram_answers(&pbase, &chunked.base, at), 18);
}

/// Debian's Prometheus as a remote write receiver of native histograms, scraping nothing.
fn histogram_receiver(dir: &Path, name: &str) -> (Proc, String) {
    std::fs::write(
        dir.join(format!("{name}.yml")),
        "global:\n  scrape_interval: 1m\n",
    )
    .unwrap();
    prometheus(
        dir,
        name,
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    )
}

/// One histogram every 5s for 2 minutes from `start` (25 samples): counts grow, bucket 3
/// appears half way, a counter reset at 90s.
fn two_minutes_of_histograms(start: i64) -> Vec<vigil_remote::proto::Histogram> {
    let mut k = 1i64;
    (0..25)
        .map(|i| {
            if i == 18 {
                k = 1;
            }
            let h = growing_histogram(start + i * 5_000, k, i >= 12);
            k += 1;
            h
        })
        .collect()
}

/// The answers of a few native histogram queries at three times around `at`, from
/// Prometheus (`pbase`) and vigil (`vbase`): equal, and none empty. Returns how many.
fn same_histogram_answers(pbase: &str, vbase: &str, at: f64) -> usize {
    let answer = |base: &str, q: &str, t: f64| {
        get_json(&format!("{base}/api/v1/query?query={}&time={t:.3}", enc(q)))["data"].clone()
    };
    let mut compared = 0;
    for q in [
        "nh_seconds",
        "nh_seconds[1m]",
        "histogram_count(nh_seconds)",
        "histogram_sum(nh_seconds)",
        // At bucket bounds, below the zero bucket: no interpolation, so 2.42 and current
        // Prometheus agree.
        "histogram_fraction(-1, 4, nh_seconds)",
        "histogram_count(rate(nh_seconds[1m]))",
    ] {
        // Off the samples' 5s grid: no sample on a window's edge, where 2.42 (closed on the
        // left) and current Prometheus (open) differ.
        for t in [at - 72.5, at - 27.5, at - 2.5] {
            let want = answer(pbase, q, t);
            assert!(
                want["result"].as_array().is_some_and(|r| !r.is_empty()),
                "Prometheus has no answer for {q} at {t}: {want}"
            );
            let full = get_json(&format!(
                "{vbase}/api/v1/query?query={}&time={t:.3}",
                enc(q)
            ));
            assert_eq!(full["data"], want, "{q} at {t}: {full}");
            compared += 1;
        }
    }
    compared
}

/// vigil stores native histograms: the same integer histograms remote-written to Debian's
/// Prometheus 2.42 and to vigil's receiver answer the same queries, from vigil's head and
/// again after vigil is killed with SIGKILL and replays its WAL, and from a snapshot (the
/// head written as a block) served by another vigil.
#[test]
fn native_histograms_stored_by_vigil_answer_as_prometheus() {
    let dir = temp_dir("remote-write-histograms");
    let (_src, pbase) = histogram_receiver(&dir, "source");
    let end = (now() as i64 - 5) * 1000;
    let start = end - 120_000;
    let hs = two_minutes_of_histograms(start);
    let text = remote_write_histograms(&pbase, &dir, "nh_seconds", &hs);
    assert!(text.ends_with("204"), "Prometheus refused: {text}");
    let vport = free_port();
    let vbase = format!("http://127.0.0.1:{vport}");
    let args = vec![
        format!("--web.listen-address=127.0.0.1:{vport}"),
        format!("--storage.tsdb.path={}", dir.join("vigil-data").display()),
        "--web.enable-remote-write-receiver".to_string(),
        "--web.enable-admin-api".to_string(),
    ];
    let first = spawn("vigil-1", &vigil_bin(), &args, &dir);
    wait_http(&format!("{vbase}/-/ready"));
    let text = remote_write_histograms(&vbase, &dir, "nh_seconds", &hs);
    assert!(text.ends_with("204"), "vigil refused: {text}");
    let at = end as f64 / 1000.0;
    assert_eq!(same_histogram_answers(&pbase, &vbase, at), 18);
    let (_, m) = get(&format!("{vbase}/metrics"));
    assert!(
        m.lines()
            .any(|l| l == format!("vigil_remote_write_received_histograms_total {}", hs.len())),
        "{m}"
    );
    // Acknowledged histograms survive kill -9.
    drop(first);
    let _second = spawn("vigil-2", &vigil_bin(), &args, &dir);
    wait_http(&format!("{vbase}/-/ready"));
    assert_eq!(same_histogram_answers(&pbase, &vbase, at), 18);
    // The head written as a block (a snapshot), served by a vigil of its own.
    let (code, body) = http("POST", &format!("{vbase}/api/v1/admin/tsdb/snapshot"), None).unwrap();
    assert_eq!(code, 200, "{body}");
    let snap: serde_json::Value = serde_json::from_str(&body).unwrap();
    let snap_dir = dir
        .join("vigil-data/snapshots")
        .join(snap["data"]["name"].as_str().unwrap());
    let blocks: Vec<_> = std::fs::read_dir(&snap_dir).unwrap().collect();
    assert_eq!(blocks.len(), 1, "the head as one block");
    let bport = free_port();
    let bbase = format!("http://127.0.0.1:{bport}");
    let _third = spawn(
        "vigil-3",
        &vigil_bin(),
        &[
            format!("--web.listen-address=127.0.0.1:{bport}"),
            format!("--storage.tsdb.path={}", snap_dir.display()),
        ],
        &dir,
    );
    wait_http(&format!("{bbase}/-/ready"));
    assert_eq!(same_histogram_answers(&pbase, &bbase, at), 18);
}

/// vigil sends native histograms with `send_native_histograms: true`: the same histograms,
/// written to vigil, reach Debian's Prometheus 2.42 (remote write 1.0, integer histograms)
/// and another vigil (2.0, receipted), and both answer as vigil does. Timestamps are ahead of
/// the clock: a queue without a saved position sends only what is newer than its start.
#[test]
fn native_histograms_are_remote_written_by_vigil() {
    let dir = temp_dir("remote-write-histograms-out");
    let (_peer, pbase) = histogram_receiver(&dir, "peer");
    let b = Vigil::start(
        "remote-write-histograms-b",
        None,
        &["--web.enable-remote-write-receiver"],
    );
    let a = Vigil::start(
        "remote-write-histograms-a",
        Some(&format!(
            "remote_write:\n  - url: {pbase}/api/v1/write\n    name: prom\n    send_native_histograms: true\n    queue_config:\n      batch_send_deadline: 1s\n  - url: {}/api/v1/write\n    name: vigil\n    protobuf_message: io.prometheus.write.v2.Request\n    send_native_histograms: true\n    queue_config:\n      batch_send_deadline: 1s\n",
            b.base
        )),
        &["--web.enable-remote-write-receiver"],
    );
    let start = (now() as i64 + 10) * 1000;
    let hs = two_minutes_of_histograms(start);
    let end = start + 120_000;
    let text = remote_write_histograms(&a.base, &dir, "nh_seconds", &hs);
    assert!(text.ends_with("204"), "vigil refused: {text}");
    let at = end as f64 / 1000.0;
    let count_at =
        |base: &str| value_at(base, "count_over_time(nh_seconds[10m])", at).unwrap_or(0.0) as usize;
    for base in [&pbase, &b.base] {
        wait_for(
            "the histograms at the receiver",
            Duration::from_secs(60),
            || (count_at(base) == hs.len()).then_some(()),
        );
    }
    // A's answers are Prometheus's; B's are A's.
    assert_eq!(same_histogram_answers(&pbase, &a.base, at), 18);
    assert_eq!(same_histogram_answers(&pbase, &b.base, at), 18);
    let sent = |name: &str| {
        let (_, m) = get(&format!("{}/metrics", a.base));
        m.lines()
            .filter(|l| {
                l.starts_with("prometheus_remote_storage_histograms_total{")
                    && l.contains(&format!("remote_name=\"{name}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(sent("prom"), hs.len() as f64);
    assert_eq!(sent("vigil"), hs.len() as f64);
}

/// `storage.tsdb.out_of_order_time_window` against Prometheus 2.42 side by side: the same
/// remote writes (in-order samples, then late ones inside the window, some older than their
/// series' first sample) are stored alike and answer alike, and both count the late samples
/// they took. A sample older than the window is refused by both and stored by neither (vigil
/// answers 400 "too old sample", as current Prometheus; 2.42 answered 500). After a `kill -9`
/// vigil replays the late samples from its WAL and still answers as Prometheus.
#[test]
fn late_samples_within_the_window_answer_as_prometheus() {
    let dir = temp_dir("remote-late");
    let (_p, pbase, vigil_args) = late_window_receivers(&dir, &[]);
    let vigil_args: Vec<&str> = vigil_args.iter().map(String::as_str).collect();
    let data = dir.join("vigil-data");
    let (v, vbase) = vigil_on(&dir, &data, "vigil", &vigil_args);
    let t0 = (now() as i64 / 60) * 60_000;
    let post = |base: &str, body: &[u8]| post_write(&dir, base, body);
    // In order: a and b every minute over the last 20 minutes.
    let mut in_order = Vec::new();
    for k in (0..=20).rev() {
        in_order.push(("late_a", t0 - k * 60_000, k as f64));
        in_order.push(("late_b", t0 - k * 60_000, -(k as f64)));
    }
    // Late, within the window: between a's samples, and before its first one.
    let mut late: Vec<(&str, i64, f64)> = (1..=19)
        .map(|k| ("late_a", t0 - k * 60_000 + 30_000, 100.0 + k as f64))
        .collect();
    late.extend((21..=29).map(|k| ("late_a", t0 - k * 60_000, 200.0 + k as f64)));
    let too_old = [("late_b", t0 - 45 * 60_000, 1.0)];
    let mut counted = Vec::new();
    for base in [&pbase, &vbase] {
        let (c, text) = post(base, &vigil_bench_write_request(&in_order));
        assert_eq!(c, 204, "{base}: {text}");
        let (c, text) = post(base, &vigil_bench_write_request(&late));
        assert_eq!(c, 204, "{base}: {text}");
        let (c, text) = post(base, &vigil_bench_write_request(&too_old));
        assert!(
            !(200..300).contains(&c),
            "{base} took a too-old sample: {text}"
        );
        counted.push(metric(
            base,
            "prometheus_tsdb_head_out_of_order_samples_appended_total",
        ));
    }
    let (c, text) = post(&vbase, &vigil_bench_write_request(&too_old));
    assert!(c == 400 && text.contains("too old sample"), "{c}: {text}");
    assert_eq!(
        counted,
        [28.0, 28.0],
        "late samples counted (Prometheus, vigil)"
    );
    let from = (t0 - 60 * 60_000) as f64 / 1000.0;
    let to = t0 as f64 / 1000.0 + 1.0;
    let sel = r#"{__name__=~"late_.*"}"#;
    let want = raw(&pbase, sel, from, to);
    assert_eq!(want.len(), 42 + 28, "Prometheus holds every sample taken");
    let got = raw(&vbase, sel, from, to);
    assert!(got == want, "{}", first_difference(&got, &want));
    // Functions over the late samples answer alike too.
    for q in [
        "count_over_time(late_a[40m])",
        "max_over_time(late_a[40m])",
        "changes(late_a[40m])",
    ] {
        let (a, b) = (value_at(&vbase, q, to - 1.0), value_at(&pbase, q, to - 1.0));
        assert!(a.is_some() && a == b, "{q}: vigil {a:?}, Prometheus {b:?}");
    }
    // kill -9, and the WAL brings the late samples back.
    drop(v);
    let (_v, vbase) = vigil_on(&dir, &data, "vigil-again", &vigil_args);
    let got = raw(&vbase, sel, from, to);
    assert!(
        got == want,
        "after kill -9: {}",
        first_difference(&got, &want)
    );
}
