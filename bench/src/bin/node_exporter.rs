//! `vigil node` against Debian's `prometheus-node-exporter` on this machine: both run the same
//! collectors (node_exporter's defaults that vigil implements) and are scraped the same number
//! of times, one scrape at a time, alternating. Each answer is checked to hold the same
//! families as the other's (the work was done), then the CPU each process used per scrape, its
//! resident memory after the run and its peak are printed with the ratios (vigil / node_exporter;
//! below 1 is less).
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin node_exporter [-- SCRAPES]`

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use vigil_bench::{Killed, cpu_seconds, free_port, http_get, peak_rss_bytes, rss_bytes, spawn, up};

/// The node's families in an answer (the exporter process's own left out), and its sample count.
fn families(body: &str) -> (BTreeSet<String>, usize) {
    let mut fams = BTreeSet::new();
    let mut samples = 0;
    for l in body.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or("");
            if name.starts_with("node_") && name != "node_exporter_build_info" {
                fams.insert(name.to_string());
            }
        } else if l.starts_with("node_") {
            samples += 1;
        }
    }
    (fams, samples)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let ne = std::path::Path::new("/usr/bin/prometheus-node-exporter");
    assert!(
        ne.exists(),
        "Debian's prometheus-node-exporter (apt-get install prometheus-node-exporter)"
    );
    let mut common = vec![
        "--collector.disable-defaults".to_string(),
        // Upstream's defaults, which vigil follows (Debian patches these two).
        "--collector.netdev.device-exclude=".to_string(),
        "--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)".to_string(),
        "--collector.textfile.directory=".to_string(),
    ];
    // The collectors both run: node_exporter 1.5's defaults that vigil implements.
    common.extend(
        vigil_exporters::node::COLLECTORS
            .iter()
            .filter(|c| c.default_enabled)
            .map(|c| format!("--collector.{}", c.name)),
    );
    let (vp, np) = (free_port(), free_port());
    let mut va = vec![
        "node".to_string(),
        format!("--web.listen-address=127.0.0.1:{vp}"),
    ];
    va.extend(common.clone());
    let mut na = vec![format!("--web.listen-address=127.0.0.1:{np}")];
    na.extend(common);
    let servers: Vec<(&str, u16, Killed)> = vec![
        ("vigil node", vp, spawn(&vigil, &va)),
        ("node_exporter", np, spawn(ne, &na)),
    ];
    for (name, p, _) in &servers {
        let t = Instant::now();
        while !up(*p) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "{name} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Warm up: first scrapes read files into the page cache and fill lazily built state.
    let mut last = Vec::new();
    for (name, p, _) in &servers {
        for _ in 0..20 {
            http_get(*p, "/metrics").unwrap_or_else(|| panic!("{name} answered"));
        }
        last.push(families(&http_get(*p, "/metrics").unwrap()));
    }
    let (v_fams, ne_fams) = (&last[0].0, &last[1].0);
    assert_eq!(
        v_fams,
        ne_fams,
        "the two serve different families: only vigil {:?}, only node_exporter {:?}",
        v_fams.difference(ne_fams).collect::<Vec<_>>(),
        ne_fams.difference(v_fams).collect::<Vec<_>>()
    );
    let cpu0: Vec<f64> = servers
        .iter()
        .map(|(_, _, k)| cpu_seconds(k.0.id()).unwrap())
        .collect();
    let mut wall = [Duration::ZERO; 2];
    let mut samples = [0usize; 2];
    for _ in 0..n {
        for (i, (name, p, _)) in servers.iter().enumerate() {
            let t = Instant::now();
            let body = http_get(*p, "/metrics").unwrap_or_else(|| panic!("{name} answered"));
            wall[i] += t.elapsed();
            let (fams, s) = families(&body);
            assert_eq!(
                fams.len(),
                v_fams.len(),
                "{name} served {} families, not {}",
                fams.len(),
                v_fams.len()
            );
            samples[i] += s;
        }
    }
    println!(
        "{n} scrapes each, alternating; {} node families, {} node samples per scrape (vigil) and {} (node_exporter)",
        v_fams.len(),
        samples[0] / n,
        samples[1] / n
    );
    println!(
        "{:<16} {:>16} {:>16} {:>12} {:>12}",
        "exporter", "CPU ms/scrape", "wall ms/scrape", "RSS MB", "peak RSS MB"
    );
    let mut row = Vec::new();
    for (i, (name, _, k)) in servers.iter().enumerate() {
        let pid = k.0.id();
        let cpu = (cpu_seconds(pid).unwrap() - cpu0[i]) / n as f64 * 1000.0;
        let wall_ms = wall[i].as_secs_f64() / n as f64 * 1000.0;
        let rss = rss_bytes(pid).unwrap() as f64 / 1e6;
        let peak = peak_rss_bytes(pid).unwrap() as f64 / 1e6;
        println!("{name:<16} {cpu:>16.3} {wall_ms:>16.3} {rss:>12.1} {peak:>12.1}");
        row.push((cpu, wall_ms, rss, peak));
    }
    let (v, b) = (row[0], row[1]);
    println!(
        "vigil/node_exporter: CPU per scrape {:.2}, wall per scrape {:.2}, RSS {:.2}, peak RSS {:.2}",
        v.0 / b.0,
        v.1 / b.1,
        v.2 / b.2,
        v.3 / b.3
    );
}
