//! On-disk size of the same data in vigil, Prometheus and VictoriaMetrics, in one run.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin storage [-- SERIES HOURS]`
//!
//! Generates SERIES series (default 10000: integer counters, gauges with one decimal,
//! histogram buckets, and counters of full-precision floats, a quarter each) with a
//! sample every 15s for HOURS hours (default 2), writes them as one OpenMetrics file with
//! timestamps, and loads it into: vigil (`vigil tsdb create-blocks-from openmetrics`),
//! Prometheus (`promtool tsdb create-blocks-from openmetrics`) and VictoriaMetrics (its
//! `/api/v1/import/prometheus` endpoint, then a forced flush). Prints bytes per sample and
//! the ratios, plus load times.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_bench::dataset::Rng;
use vigil_bench::du;

/// Uniform in [0, 1) in steps of 1e-6.
fn unit6(rng: &mut Rng) -> f64 {
    (rng.next_u64() % 1_000_000) as f64 / 1_000_000.0
}

/// The series whose values are read back from each store to check they are kept exactly.
const PROBE_SERIES: &str = "bench_family_3_cpu_seconds_total";

fn generate(series: usize, hours: u64, dir: &Path) -> (PathBuf, u64, Vec<f64>) {
    let path = dir.join("data.om");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let start: u64 = 1_700_000_000;
    let steps = hours * 3600 / 15;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut samples = 0u64;
    let per_family = 100;
    let mut probe = Vec::new();
    for fam in 0..series.div_ceil(per_family) {
        let kind = fam % 4;
        let name = format!(
            "bench_family_{fam}_{}",
            [
                "requests_total",
                "temperature_celsius",
                "latency_seconds_bucket",
                "cpu_seconds_total"
            ][kind]
        );
        let typ = ["counter", "gauge", "unknown", "counter"][kind];
        let family = name.trim_end_matches("_total");
        writeln!(f, "# TYPE {family} {typ}").unwrap();
        for i in 0..per_family.min(series - fam * per_family) {
            let labels = if kind == 2 {
                let les = [
                    "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "+Inf",
                ];
                format!(
                    "pod=\"pod-{}\",le=\"{}\"",
                    i / les.len(),
                    les[i % les.len()]
                )
            } else {
                format!("pod=\"pod-{i}\",region=\"r{}\"", i % 5)
            };
            let mut v = unit6(&mut rng) * 100.0;
            let mut line = String::new();
            for s in 0..steps {
                v = match kind {
                    0 | 2 => v + (rng.next_u64() % 20) as f64,
                    1 => (v + (unit6(&mut rng) - 0.5) * 2.0).clamp(-50.0, 150.0),
                    // Full-precision floats (no short decimal form), as CPU seconds are.
                    _ => v + unit6(&mut rng) * 0.37,
                };
                let v = match kind {
                    1 => (v * 10.0).round() / 10.0,
                    3 => v,
                    _ => v.round(),
                };
                if fam == 3 && i == 0 {
                    probe.push(v);
                }
                line.clear();
                let _ = writeln!(line, "{name}{{{labels}}} {v} {}", start + s * 15);
                f.write_all(line.as_bytes()).unwrap();
                samples += 1;
            }
        }
    }
    writeln!(f, "# EOF").unwrap();
    (path, samples, probe)
}

/// The "day" data set: 600 series (half counters with integer increments uniform in
/// 0..19, half gauges random-walking by steps uniform in -1.00..=1.00 at 2 decimals) over 24h at
/// 15s. Returns the file, the sample count, the probe series' values (a gauge) and the data's
/// entropy in bytes per sample (timestamps are regular: 0 bits).
fn generate_day(dir: &Path) -> (PathBuf, u64, Vec<f64>, f64) {
    let path = dir.join("day.om");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    // Day-aligned (a multiple of 86400), so a 24h block holds the whole day in every tool.
    let start: u64 = 1_699_920_000;
    let steps = 24 * 3600 / 15;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut samples = 0u64;
    let mut probe = Vec::new();
    writeln!(f, "# TYPE bench_day_requests counter").unwrap();
    for i in 0..300 {
        let mut v = 0u64;
        for s in 0..steps {
            v += rng.next_u64() % 20;
            writeln!(
                f,
                "bench_day_requests_total{{pod=\"pod-{i}\"}} {v} {}",
                start + s * 15
            )
            .unwrap();
            samples += 1;
        }
    }
    writeln!(f, "# TYPE bench_day_temperature gauge").unwrap();
    for i in 0..300 {
        let mut c: i64 = 2000 + (rng.next_u64() % 1000) as i64; // hundredths
        for s in 0..steps {
            c = (c + (rng.next_u64() % 201) as i64 - 100).clamp(-5000, 15000);
            let v = c as f64 / 100.0;
            if i == 0 {
                probe.push(v);
            }
            writeln!(
                f,
                "bench_day_temperature{{pod=\"pod-{i}\"}} {v} {}",
                start + s * 15
            )
            .unwrap();
            samples += 1;
        }
    }
    writeln!(f, "# EOF").unwrap();
    let entropy_bits = (20f64.log2() + 201f64.log2()) / 2.0;
    (path, samples, probe, entropy_bits / 8.0)
}

/// (values read back bit for bit equal, values written).
fn exact_count(written: &[f64], back: &[f64]) -> (usize, usize) {
    let same = written
        .iter()
        .zip(back)
        .filter(|(a, b)| a.to_bits() == b.to_bits())
        .count();
    (same, written.len())
}

fn run(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    // `day`: the data set (600 series, 24h, 24h blocks) and its entropy.
    let day = args.peek().is_some_and(|a| a == "day");
    if day {
        args.next();
    }
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let hours: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let block = if day {
        "--max-block-duration=24h"
    } else {
        "--max-block-duration=2h"
    };
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, samples, probe, entropy, probe_name) = if day {
        let (p, n, probe, e) = generate_day(&dir);
        (p, n, probe, Some(e), "bench_day_temperature")
    } else {
        let (p, n, probe) = generate(series, hours, &dir);
        (p, n, probe, None, PROBE_SERIES)
    };
    println!(
        "{} series x {}h at 15s = {samples} samples ({:.0} MB OpenMetrics)",
        if day { 600 } else { series },
        if day { 24 } else { hours },
        std::fs::metadata(&input).unwrap().len() as f64 / 1e6
    );

    let mut rows: Vec<(&str, u64, Duration)> = Vec::new();
    let vd = dir.join("vigil");
    let t = run(Command::new(&vigil)
        .args(["tsdb", "create-blocks-from", block, "openmetrics"])
        .arg(&input)
        .arg(&vd));
    rows.push(("vigil", du(&vd), t));
    // Read the probe series back through `vigil tsdb dump`.
    let dump = Command::new(&vigil)
        .args(["tsdb", "dump"])
        .arg(&vd)
        .output()
        .expect("vigil tsdb dump");
    let prefix = format!("{{__name__=\"{probe_name}\", pod=\"pod-0\"");
    let back: Vec<f64> = String::from_utf8_lossy(&dump.stdout)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').nth(1)?.parse().ok())
        .collect();
    let mut exact = vec![("vigil", exact_count(&probe, &back))];

    // The same blocks as `--storage.tsdb.block-format=prometheus` would keep them: exported,
    // and read back (bit for bit) from the export.
    let ve = dir.join("vigil-prometheus-format");
    let t = run(Command::new(&vigil)
        .args(["tsdb", "export", "--format=prometheus"])
        .arg(&vd)
        .arg(&ve));
    rows.push(("vigil, Prometheus format", du(&ve), t));
    let dump = Command::new(&vigil)
        .args(["tsdb", "dump"])
        .arg(&ve)
        .output()
        .expect("vigil tsdb dump");
    let back: Vec<f64> = String::from_utf8_lossy(&dump.stdout)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').nth(1)?.parse().ok())
        .collect();
    exact.push(("vigil, Prometheus format", exact_count(&probe, &back)));

    if Path::new("/usr/bin/promtool").exists() {
        let pd = dir.join("prom");
        let t = run(Command::new("/usr/bin/promtool")
            .args(["tsdb", "create-blocks-from", block, "openmetrics"])
            .arg(&input)
            .arg(&pd));
        rows.push(("prometheus", du(&pd), t));
    } else {
        println!("promtool not found (apt-get install prometheus): skipping Prometheus");
    }

    let vm_bin = ["/usr/bin/victoria-metrics", "/usr/sbin/victoria-metrics"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if let Some(vm_bin) = vm_bin {
        let vmd = dir.join("vm");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(vm_bin)
            .arg(format!("-storageDataPath={}", vmd.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(100));
        }
        // VictoriaMetrics takes Prometheus text with millisecond timestamps.
        let text = std::fs::read_to_string(&input).unwrap();
        let mut body = String::with_capacity(text.len() + text.len() / 8);
        for l in text.lines() {
            if l.starts_with('#') {
                continue;
            }
            if let Some((head, ts)) = l.rsplit_once(' ') {
                let _ = writeln!(body, "{head} {}000", ts);
            }
        }
        let t = Instant::now();
        let url = format!("http://127.0.0.1:{port}/api/v1/import/prometheus");
        let status = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data-binary",
                "@-",
                &url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(body.as_bytes())?;
                c.wait_with_output()
            });
        let _ = Command::new("curl")
            .args([
                "-s",
                &format!("http://127.0.0.1:{port}/internal/force_flush"),
            ])
            .output();
        let elapsed = t.elapsed();
        // VictoriaMetrics writes in-memory parts to disk in the background: wait until its
        // own data-size metric has stopped changing (3s unchanged, at most 60s), and use it.
        let vm_size = || -> u64 {
            Command::new("curl")
                .args(["-s", &format!("http://127.0.0.1:{port}/metrics")])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter(|l| l.starts_with("vm_data_size_bytes"))
                        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                        .sum::<f64>() as u64
                })
                .unwrap_or(0)
        };
        let (mut last, mut stable, waited) = (0u64, 0, Instant::now());
        while stable < 3 && waited.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_secs(1));
            let _ = Command::new("curl")
                .args([
                    "-s",
                    &format!("http://127.0.0.1:{port}/internal/force_flush"),
                ])
                .output();
            let now = vm_size();
            stable = if now == last && now > 0 {
                stable + 1
            } else {
                0
            };
            last = now;
        }
        // Its own figure (parts and index), not `du`: the directory also holds caches and
        // files awaiting merge, which would count against it unfairly.
        let vm_bytes = if last > 0 { last } else { du(&vmd) };
        let code = status
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        assert!(
            code.starts_with('2'),
            "VictoriaMetrics import answered {code}"
        );
        rows.push(("victoria-metrics", vm_bytes, elapsed));
        let export = Command::new("curl")
            .args([
                "-s",
                "-G",
                "--data-urlencode",
                &format!("match[]={{__name__=\"{probe_name}\",pod=\"pod-0\"}}"),
                "--data-urlencode",
                "start=0",
                &format!("http://127.0.0.1:{port}/api/v1/export"),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        let back: Vec<f64> = export
            .split_once("\"values\":[")
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(vals, _)| vals.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default();
        exact.push(("victoria-metrics", exact_count(&probe, &back)));
        let _ = child.kill();
        let _ = child.wait();
    } else {
        println!("victoria-metrics not found (apt-get install victoria-metrics): skipping it");
    }

    println!();
    println!(
        "{:<26} {:>12} {:>14} {:>10} {:>10}",
        "", "bytes", "bytes/sample", "load s", "size/vigil"
    );
    let vbytes = rows[0].1 as f64;
    for (name, bytes, t) in &rows {
        println!(
            "{:<26} {:>12} {:>14.3} {:>10.2} {:>10.2}",
            name,
            bytes,
            *bytes as f64 / samples as f64,
            t.as_secs_f64(),
            *bytes as f64 / vbytes
        );
    }
    if let Some(e) = entropy {
        println!();
        println!("entropy of the generator's data: {e:.3} bytes/sample");
        for (name, bytes, _) in &rows {
            println!(
                "{name}: {:.2}x the entropy",
                *bytes as f64 / samples as f64 / e
            );
        }
    }
    println!();
    for (name, (same, total)) in &exact {
        println!(
            "{name}: {same} of {total} samples of {probe_name}{{pod=\"pod-0\"}} read back bit-exact"
        );
    }
    println!(
        "note: VictoriaMetrics' time includes the HTTP import of Prometheus text and a forced flush (it merges parts in the background, so its size can still shrink later)."
    );
    let _ = std::fs::remove_dir_all(&dir);
}
