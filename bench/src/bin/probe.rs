//! Probe latency: `vigil probe` and Debian's `prometheus-blackbox-exporter` probing the same
//! local targets with the same modules, one probe at a time; prints the median and 90th
//! percentile of the whole `/probe` request as a scraper sees it, the median
//! `probe_duration_seconds` each reports, and the ratios (vigil / blackbox; below 1 is faster).
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin probe [-- PROBES]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_bench::{Killed, free_port, http_get, serve, up};

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// (request seconds, reported probe_duration_seconds) for `n` probes.
fn run(port: u16, module: &str, target: &str, n: usize) -> (Vec<f64>, Vec<f64>) {
    let path = format!("/probe?module={module}&target={target}");
    let (mut req, mut rep) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let body = http_get(port, &path).expect("probe answered");
        req.push(t.elapsed().as_secs_f64());
        assert!(
            body.contains("probe_success 1"),
            "{module} {target}: {body}"
        );
        let d = body
            .lines()
            .find_map(|l| l.strip_prefix("probe_duration_seconds "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN);
        rep.push(d);
    }
    (req, rep)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let bb = ["/usr/bin/prometheus-blackbox-exporter"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect(
            "Debian's prometheus-blackbox-exporter (apt-get install prometheus-blackbox-exporter)",
        );
    let dir = std::env::temp_dir().join(format!("vigil-bench-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("blackbox.yml");
    std::fs::write(
        &cfg,
        "modules:\n  http_2xx:\n    prober: http\n  tcp_connect:\n    prober: tcp\n",
    )
    .unwrap();
    // A target: a small page on loopback (the same process answers HTTP and TCP connects).
    let target = serve("ok\n".repeat(100));
    let servers: Vec<(&str, u16, Killed)> = vec![
        {
            let p = free_port();
            let c = Command::new(&vigil)
                .args([
                    "probe",
                    &format!("--web.listen-address=127.0.0.1:{p}"),
                    &format!("--config.file={}", cfg.display()),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            ("vigil probe", p, Killed(c))
        },
        {
            let p = free_port();
            let c = Command::new(bb)
                .args([
                    &format!("--web.listen-address=127.0.0.1:{p}"),
                    &format!("--config.file={}", cfg.display()),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            ("blackbox-exporter", p, Killed(c))
        },
    ];
    for (_, p, _) in &servers {
        let t = Instant::now();
        while !up(*p) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "exporter did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    println!("{n} sequential probes per module, target on loopback");
    println!(
        "{:<20} {:<12} {:>12} {:>12} {:>16}",
        "exporter", "module", "median ms", "p90 ms", "reported ms"
    );
    let mut medians = std::collections::BTreeMap::new();
    for (module, tgt) in [
        ("http_2xx", format!("http://127.0.0.1:{target}/")),
        ("tcp_connect", format!("127.0.0.1:{target}")),
    ] {
        for (name, port, _) in &servers {
            // Warm up connections and caches first.
            run(*port, module, &tgt, 20);
            let (mut req, mut rep) = run(*port, module, &tgt, n);
            let med = quantile(&mut req, 0.5) * 1000.0;
            let p90 = quantile(&mut req, 0.9) * 1000.0;
            let reported = quantile(&mut rep, 0.5) * 1000.0;
            println!("{name:<20} {module:<12} {med:>12.3} {p90:>12.3} {reported:>16.3}");
            medians.insert((module, *name), (med, reported));
        }
    }
    for module in ["http_2xx", "tcp_connect"] {
        let v = medians[&(module, "vigil probe")];
        let b = medians[&(module, "blackbox-exporter")];
        println!(
            "{module}: vigil/blackbox request latency {:.2}, reported probe duration {:.2}",
            v.0 / b.0,
            v.1 / b.1
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
