//! Queries never starve ingestion: while a second process (this test) keeps vigil busy with
//! heavy queries from 16 connections, every scrape of five targets happens, succeeds and stays
//! within its timeout, as vigil's own `up` and `scrape_duration_seconds` record them.
//! (`bench/src/bin/query_overload.rs` measures the same against Prometheus.)

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::*;

/// Serve `body` as `/metrics` on a loopback port, one thread per connection.
fn serve(body: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
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

fn value(base: &str, q: &str, t: f64) -> f64 {
    let r = get_json(&format!("{base}/api/v1/query?query={}&time={t}", enc(q)));
    r["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn every_scrape_happens_on_time_under_a_burst_of_queries_and_series_reads() {
    let targets: Vec<String> = (0..5)
        .map(|t| {
            let mut body = String::from("# TYPE load_requests_total counter\n");
            for i in 0..4000 {
                body.push_str(&format!(
                    "load_requests_total{{code=\"{}\",pod=\"p{t}-{i}\"}} {}\n",
                    ["200", "404", "500"][i % 3],
                    i
                ));
            }
            format!("'127.0.0.1:{}'", serve(body))
        })
        .collect();
    let cfg = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: load\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let v = Vigil::start("overload", Some(&cfg), &[]);
    let base = v.base.clone();
    wait_for("scrapes of every target", Duration::from_secs(60), || {
        let n = value(&base, r#"min(count_over_time(up{job="load"}[10s]))"#, now());
        (n >= 3.0).then_some(())
    });

    let stop = Arc::new(AtomicBool::new(false));
    let answered: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let load_start = now();
    // Half the clients query; the rest read every series through the metadata endpoints and
    // federation, which walk as much of the head as a query does.
    let every = enc(r#"{job="load"}"#);
    let requests = [
        format!(
            "/api/v1/query?query={}",
            enc(
                "sum by (code) (rate(load_requests_total[1m])) and on() count(load_requests_total) > 0"
            )
        ),
        format!("/api/v1/series?match[]={every}"),
        format!("/api/v1/label/pod/values?match[]={every}"),
        format!("/federate?match[]={every}"),
    ];
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let (stop, answered, base) = (stop.clone(), answered.clone(), base.clone());
            let kind = if i % 2 == 0 { 0 } else { 1 + (i / 2) % 3 };
            let path = requests[kind].clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((200, _)) = http("GET", &format!("{base}{path}"), None) {
                        answered[kind].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let window = 30.0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(window) {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    for (kind, path) in requests.iter().enumerate() {
        assert!(
            answered[kind].load(Ordering::Relaxed) > 0,
            "the load had {path} answered"
        );
    }
    // vigil's own record of the window (the last scrapes have landed by now).
    std::thread::sleep(Duration::from_secs(2));
    let end = load_start + window;
    let range = format!("{}s", window as u64);
    for t in &targets {
        let inst = t.trim_matches('\'');
        let sel = format!(r#"{{job="load",instance="{inst}"}}"#);
        let count = value(&base, &format!("count_over_time(up{sel}[{range}])"), end);
        let good = value(&base, &format!("sum_over_time(up{sel}[{range}])"), end);
        let longest = value(
            &base,
            &format!("max_over_time(scrape_duration_seconds{sel}[{range}])"),
            end,
        );
        // One scrape every 2s: the window holds `window / 2` of them, give or take the one
        // at each edge.
        assert!(
            count >= window / 2.0 - 1.0,
            "{inst}: {count} scrapes in {window}s"
        );
        assert_eq!(good, count, "{inst}: every scrape succeeded");
        assert!(
            longest < 2.0,
            "{inst}: a scrape took {longest}s, past its 2s timeout"
        );
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Each thread's name and nice value, from `/proc/PID/task/*/stat`.
fn thread_priorities(pid: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        // After the name: state is field 3, nice field 19.
        let nice = stat[close + 2..]
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .unwrap();
        out.push((stat[open + 1..close].to_string(), nice));
    }
    out
}

/// Block cuts and merges run below scrapes and above queries: at ten million series a cut
/// takes a core for a minute or more, and a scrape must never wait for it, while a burst of
/// queries must not hold off the cuts that bound the head's memory.
#[test]
fn block_writes_run_below_scrapes_and_above_queries() {
    let v = Vigil::start("priorities", None, &[]);
    let pid = v.proc.child.id();
    // A thread is named before it lowers its own priority: wait until it has.
    let threads = wait_for(
        "the maintenance thread's priority",
        Duration::from_secs(10),
        || {
            let t = thread_priorities(pid);
            let base = t.iter().find(|(n, _)| n == "vigil")?.1;
            t.iter()
                .any(|(n, p)| n.starts_with("vigil-maint") && (*p > base || base == 19))
                .then_some(t)
        },
    );
    let nice_of = |prefix: &str| -> Vec<i64> {
        threads
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, p)| *p)
            .collect()
    };
    // Relative to the process's own (the test may run under `nice`).
    let base = threads.iter().find(|(n, _)| n == "vigil").unwrap().1;
    assert_eq!(
        nice_of("vigil-maint"),
        vec![(base + 10).min(19)],
        "{threads:?}"
    );
    let queries = nice_of("vigil-query");
    assert!(
        !queries.is_empty() && queries.iter().all(|&p| p == 19),
        "{threads:?}"
    );
    let workers = nice_of("tokio-rt-worker");
    assert!(
        !workers.is_empty() && workers.iter().all(|&p| p == base),
        "{threads:?}"
    );
}
