//! Ten million active series on one machine: vigil, then Debian's `victoria-metrics` on the
//! same work, one after the other, scrape a fleet of synthetic application targets
//! (`vigil_bench::fleet`: counters, gauges, classic histograms, a customer label with about a
//! million values, values moving as real ones do) every 15s for MINUTES. Then vigil and
//! Debian's `prometheus`, again one after the other, do the same at SMALL_SERIES, where
//! Prometheus can still run, so that ratio is on record too. The fleet is served by this
//! process on the same 2 cores; its CPU is printed beside each system's.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin scale [-- SERIES MINUTES SMALL_SERIES SMALL_MINUTES]`
//! (defaults 10000000 30 1000000 10; targets of 10,000 series each; SERIES or SMALL_SERIES 0
//! leaves those runs out; `SCALE_REFERENCES=0` leaves out VictoriaMetrics and Prometheus). A
//! system that ends during its run (the kernel's OOM killer, say) is reported with how it
//! ended; the command fails if vigil does.
//!
//! Each minute it prints, for the system running: resident memory (all, and anonymous: the
//! heap without mapped files), CPU (cores: ingestion plus that minute's dashboard queries and
//! one read of its own `/metrics`), samples/s appended
//! against the fleet's rate, the WAL's and the whole data directory's bytes, and the slowest
//! of a fixed set of dashboard queries, instant and range (the last hour, step 60s), asked
//! while ingestion goes on, then the minute's slowest scrape and the targets down in it, as
//! the system recorded them (`scrape_duration_seconds`, `up`). (VictoriaMetrics caches range-query results between calls, as it
//! does for its users; vigil and Prometheus compute each call afresh.) vigil and Prometheus run
//! with `--storage.tsdb.min-block-duration=5m` and `max-block-duration=15m`, so that head
//! blocks are cut (once the head spans 7.5 minutes) and merged within the run; their
//! compaction counts and durations are printed.
//!
//! At the end of a run the fleet's truth is checked through the query API: every target up in
//! every scrape of the window, every series in every target's last scrape, one fleet-wide
//! family counted in full, the first target's series counted and its request counters summed
//! against what the fleet last served, its stored samples equal to series x scrapes, and
//! samples/s appended (the system's own counter) at least 98% of the fleet's rate (the window's
//! edges cut scrapes short by one). A failed check fails the command after the summary. Then
//! the system is killed with SIGKILL and restarted on its data: the time until it answers
//! `count(up)` with every target again is its restart time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_bench::fleet::Fleet;
use vigil_bench::servers::urlencode;
use vigil_bench::{
    Killed, cpu_seconds, du, free_port, http_get, instant_at, now, peak_rss_bytes,
    proc_status_bytes, rss_bytes, spawn, up,
};

const INTERVAL_S: u64 = 15;
const PER_TARGET: usize = 10_000;

#[derive(Clone, Copy, PartialEq)]
enum System {
    Vigil,
    Prometheus,
    Victoria,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Vigil => "vigil",
            System::Prometheus => "prometheus",
            System::Victoria => "victoria-metrics",
        }
    }
}

/// What one run measured.
struct Run {
    system: System,
    series: usize,
    peak_rss: u64,
    /// Mean over the run after the first full scrape round.
    rss_mean: f64,
    cores: f64,
    samples_per_s: f64,
    expected_per_s: f64,
    disk: u64,
    /// Per query: (median, max) seconds, instant and range, and failed or empty answers.
    latencies: Vec<(f64, f64, f64, f64, usize)>,
    restart_s: f64,
    /// CPU of this process (the fleet, and the harness's queries) during the run.
    fleet_cores: f64,
    failed: Vec<String>,
    /// How it ended, if it ended by itself during the run (the kernel's OOM killer, say).
    died: Option<String>,
}

fn start(system: System, bin: &Path, cfg: &Path, data: &Path, port: u16) -> Killed {
    let args: Vec<String> = match system {
        System::Victoria => vec![
            format!("-promscrape.config={}", cfg.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            format!("-storageDataPath={}", data.display()),
            "-loggerLevel=ERROR".into(),
            "-search.latencyOffset=1s".into(),
            // Its default refuses queries over 300k series; the end-of-run check of a whole
            // family selects 1M at 10M series.
            "-search.maxUniqueTimeseries=20000000".into(),
            "-retentionPeriod=1d".into(),
        ],
        _ => vec![
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", data.display()),
            "--storage.tsdb.min-block-duration=5m".into(),
            "--storage.tsdb.max-block-duration=15m".into(),
            "--log.level=warn".into(),
        ],
    };
    spawn(bin, &args)
}

/// A metric of the system's own `/metrics`, summed over the series matching `filter`. A
/// failed read is retried; None if it keeps failing (a 0 would skew rates).
fn try_own_metric(port: u16, name: &str, filter: &str) -> Option<f64> {
    for _ in 0..5 {
        if let Some(body) = http_get(port, "/metrics").filter(|b| b.contains(name)) {
            return Some(
                body.lines()
                    .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
                    .filter(|l| l.contains(filter))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum(),
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

fn own_metric(port: u16, name: &str, filter: &str) -> f64 {
    try_own_metric(port, name, filter)
        .unwrap_or_else(|| panic!("no {name} in the /metrics of the server on port {port}"))
}

/// How a process that ended by itself ended, with the kernel's OOM-kill line if it has one.
fn ended(child: &mut Killed) -> Option<String> {
    let status = child.0.try_wait().ok()??;
    let pid = child.0.id();
    let oom = std::process::Command::new("dmesg")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .rev()
                .find(|l| l.contains(&format!("Killed process {pid} ")))
                .map(|l| l.trim().to_string())
        });
    Some(match oom {
        Some(line) => format!("{status}; the kernel: {line}"),
        None => status.to_string(),
    })
}

fn appended(system: System, port: u16) -> Option<f64> {
    match system {
        System::Victoria => try_own_metric(port, "vm_rows_inserted_total", "type=\"promscrape\""),
        _ => try_own_metric(port, "prometheus_tsdb_head_samples_appended_total", ""),
    }
}

/// Seconds a query took, or None if it failed or answered nothing.
fn timed(port: u16, path: &str) -> Option<f64> {
    let t = Instant::now();
    let body = http_get(port, path)?;
    let took = t.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    if v["status"] != "success" || v["data"]["result"][0].is_null() {
        eprintln!("query failed or empty: {path}: {body:.300}");
        return None;
    }
    Some(took)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The dashboard queries: one pod's panel, a fleet-wide latency quantile of one handler, the
/// top error handlers, one customer, queue depth by queue, and the targets up.
fn dashboard(first_target: u16) -> Vec<(&'static str, String)> {
    vec![
        (
            "one pod by code",
            format!(
                "sum by (code) (rate(http_requests_total{{instance=\"127.0.0.1:{first_target}\"}}[5m]))"
            ),
        ),
        (
            "p99 of one handler",
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{handler=\"/api/v1/h0\"}[5m])))".into(),
        ),
        (
            "top 10 error handlers",
            "topk(10, sum by (handler) (rate(http_requests_total{code=\"500\"}[5m])))".into(),
        ),
        (
            "one customer",
            "sum(rate(app_customer_requests_total{customer=\"c-42\"}[5m]))".into(),
        ),
        (
            "queue depth by queue",
            "max by (queue) (app_queue_depth)".into(),
        ),
        ("targets up", "count(up == 1)".into()),
    ]
}

fn run(system: System, bin: &Path, fleet: &Fleet, minutes: u64, dir: &Path) -> Run {
    let name = system.name();
    let targets = fleet.ports.len();
    let series = fleet.series();
    // Each target also gives 5 series of its own scrape (`up`, `scrape_duration_seconds`, ...).
    let expected_per_s = (series + 5 * targets) as f64 / INTERVAL_S as f64;
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, fleet.scrape_config(INTERVAL_S)).unwrap();
    let data = dir.join(name);
    let port = free_port();
    println!();
    println!(
        "== {name}: {series} series on {targets} targets every {INTERVAL_S}s ({expected_per_s:.0} samples/s) for {minutes} min"
    );
    let me = std::process::id();
    let mut child = start(system, bin, &cfg, &data, port);
    let pid = child.0.id();
    let t0 = Instant::now();
    while !up(port) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{name} did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let queries = dashboard(fleet.ports[0]);
    let mut inst: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    let mut range: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    let mut bad = vec![0usize; queries.len()];
    let (mut rss_sum, mut rss_n) = (0f64, 0f64);
    println!(
        "{:>5} {:>9} {:>9} {:>7} {:>11} {:>7} {:>9} {:>9} {:>13} {:>7} {:>12} {:>5}",
        "min",
        "RSS MB",
        "anon MB",
        "cores",
        "samples/s",
        "of rate",
        "WAL MB",
        "data MB",
        "slowest q (s)",
        "failed",
        "scrape max s",
        "down"
    );
    // (when, its CPU, samples appended): CPU and time are read together.
    let mut last = (Instant::now(), cpu_seconds(pid).unwrap_or(0.0), 0.0);
    // The first minute creates every series: the run is measured from the end of it.
    let mut first = last;
    let mut fleet_cpu_first = 0.0;
    let window_start = now() + 60.0;
    let mut died = None;
    for minute in 1..=minutes {
        std::thread::sleep(Duration::from_secs(60).saturating_sub(last.0.elapsed()));
        let (t, cpu) = (Instant::now(), cpu_seconds(pid).unwrap_or(0.0));
        let Some(app) = appended(system, port) else {
            std::thread::sleep(Duration::from_secs(2));
            died = ended(&mut child);
            let why = died.as_deref().unwrap_or("running but not answering");
            println!("{name} stopped answering in minute {minute}: {why}");
            assert!(died.is_some(), "{name} on port {port} does not answer");
            break;
        };
        let rss = rss_bytes(pid).unwrap_or(0);
        // Heap apart from mapped file pages (blocks read, WAL written), which the kernel can
        // take back: RSS growing with anonymous memory flat is not a leak.
        let anon = proc_status_bytes(pid, "RssAnon").unwrap_or(0);
        let dt = t.duration_since(last.0).as_secs_f64();
        let (cores, rate) = ((cpu - last.1) / dt, (app - last.2) / dt);
        last = (t, cpu, app);
        if minute == 1 {
            first = last;
            fleet_cpu_first = cpu_seconds(me).unwrap_or(0.0);
        } else {
            rss_sum += rss as f64;
            rss_n += 1.0;
        }
        let wal = du(&data.join("wal"));
        let total = du(&data);
        // The dashboard, asked once a minute while ingestion goes on.
        let at = now();
        let span = ((minute * 60).min(3600)) as f64;
        let (mut slowest, mut failed) = (0f64, 0);
        for (i, (_, q)) in queries.iter().enumerate() {
            let a = timed(
                port,
                &format!("/api/v1/query?query={}&time={at:.3}", urlencode(q)),
            );
            let b = timed(
                port,
                &format!(
                    "/api/v1/query_range?query={}&start={:.3}&end={at:.3}&step=60",
                    urlencode(q),
                    at - span
                ),
            );
            for (answer, into) in [(a, &mut inst[i]), (b, &mut range[i])] {
                match answer {
                    Some(s) => {
                        slowest = slowest.max(s);
                        if minute > 1 {
                            into.push(s);
                        }
                    }
                    None => {
                        failed += 1;
                        if minute > 1 {
                            bad[i] += 1;
                        }
                    }
                }
            }
        }
        // The minute's slowest scrape and the targets whose scrape failed in it, as the
        // system recorded them: which minutes a failure of the end's checks came from.
        let scrape_max = instant_at(port, "max(max_over_time(scrape_duration_seconds[1m]))", at)
            .unwrap_or(f64::NAN);
        let down = instant_at(port, "count(min_over_time(up[1m]) == 0) or vector(0)", at)
            .unwrap_or(f64::NAN);
        println!(
            "{minute:>5} {:>9.0} {:>9.0} {cores:>7.3} {rate:>11.0} {:>7.2} {:>9.0} {:>9.0} {slowest:>13.2} {failed:>7} {scrape_max:>12.2} {down:>5}",
            rss as f64 / 1e6,
            anon as f64 / 1e6,
            rate / expected_per_s,
            wal as f64 / 1e6,
            total as f64 / 1e6,
        );
    }
    if let Some(why) = died {
        let _ = std::fs::remove_dir_all(&data);
        let failed = if system == System::Vigil {
            vec![format!("vigil at {series} series ended: {why}")]
        } else {
            Vec::new()
        };
        return Run {
            system,
            series,
            peak_rss: 0,
            rss_mean: 0.0,
            cores: 0.0,
            samples_per_s: 0.0,
            expected_per_s,
            disk: 0,
            latencies: Vec::new(),
            restart_s: 0.0,
            fleet_cores: 0.0,
            failed,
            died: Some(why),
        };
    }
    let (t_end, cpu_end) = (Instant::now(), cpu_seconds(pid).unwrap_or(0.0));
    let app_end = appended(system, port)
        .unwrap_or_else(|| panic!("{name} stopped answering at the end of its run"));
    let measured = t_end.duration_since(first.0).as_secs_f64();
    let cores = (cpu_end - first.1) / measured;
    let samples_per_s = (app_end - first.2) / measured;
    let fleet_cores = (cpu_seconds(me).unwrap_or(0.0) - fleet_cpu_first) / measured;
    let window_end = now();
    let peak = peak_rss_bytes(pid).unwrap_or(0);

    // The fleet's truth, through the query API.
    std::thread::sleep(Duration::from_secs(2));
    let w = format!("{}s", (window_end - window_start).max(60.0) as u64);
    let scrapes_due = (window_end - window_start) / INTERVAL_S as f64;
    let ask = |q: &str| instant_at(port, q, window_end);
    let up_now = ask("count(up == 1)").unwrap_or(0.0);
    let fewest = ask(&format!("min(count_over_time(up[{w}]))")).unwrap_or(0.0);
    let down = ask(&format!("sum(1 - min_over_time(up[{w}]))")).unwrap_or(-1.0);
    let scraped = ask("sum(scrape_samples_scraped)").unwrap_or(0.0);
    let family = fleet.series_of("http_requests_total{") * targets;
    let family_stored = ask("count(http_requests_total)").unwrap_or(0.0);
    let p0 = format!("instance=\"127.0.0.1:{}\"", fleet.ports[0]);
    let own = ask(&format!("count({{{p0},__name__!~\"up|scrape_.+\"}})")).unwrap_or(0.0);
    // Its samples in the window: each stored scrape holds all the series of these families
    // (asked family by family: `count_over_time` drops the name, which alone tells them apart).
    let families = [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "app_cache_entries",
        "app_customer_requests_total",
    ];
    let p0_series: usize = families
        .iter()
        .map(|f| fleet.series_of(&format!("{f}{{")))
        .sum();
    let p0_samples = ask(&families
        .iter()
        .map(|f| format!("sum(count_over_time({f}{{{p0}}}[{w}]))"))
        .collect::<Vec<_>>()
        .join(" + "))
    .unwrap_or(0.0);
    let p0_scrapes = ask(&format!("sum(count_over_time(up{{{p0}}}[{w}]))")).unwrap_or(0.0);
    let slowest_scrape =
        ask(&format!("max(max_over_time(scrape_duration_seconds[{w}]))")).unwrap_or(f64::NAN);
    // The first target's request counters against what it last served (a scrape may land
    // between reading the fleet and asking: then again).
    let mut values_match = false;
    for _ in 0..10 {
        let (step, want) = fleet.served(0, "http_requests_total{");
        let got = instant_at(port, &format!("sum(http_requests_total{{{p0}}})"), now());
        if fleet.served(0, "http_requests_total{").0 == step && got == Some(want) {
            values_match = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    println!(
        "checks: {up_now} of {targets} targets up; fewest scrapes of a target in the last {w}: {fewest} (about {scrapes_due:.0} due); targets ever down: {down}; series per scrape: {scraped} of {series}; http_requests_total series: {family_stored} of {family}; first target: {own} series of {}, {p0_samples} samples of {p0_series} series in {p0_scrapes} scrapes, request counters as served: {values_match}; slowest scrape {slowest_scrape:.2}s",
        fleet.per_target
    );
    println!(
        "ingested {samples_per_s:.0} samples/s of {expected_per_s:.0} due ({:.3}); {cores:.3} cores (the fleet: {fleet_cores:.3}); peak RSS {:.0} MB ({:.0} bytes/series)",
        samples_per_s / expected_per_s,
        peak as f64 / 1e6,
        peak as f64 / (series + 5 * targets) as f64
    );
    let mut checks = vec![
        (up_now as usize == targets, "not every target up"),
        (fewest >= scrapes_due - 1.5, "a target missed scrapes"),
        (down == 0.0, "a target was down"),
        (scraped as usize == series, "not every series scraped"),
        (
            family_stored as usize == family,
            "a family's series missing",
        ),
        (
            own as usize == fleet.per_target,
            "the first target's series missing",
        ),
        (
            p0_scrapes > 0.0 && p0_samples == p0_scrapes * p0_series as f64,
            "the first target's stored samples are not series x scrapes",
        ),
        (values_match, "stored values differ from those served"),
        (
            samples_per_s >= expected_per_s * 0.98,
            "fewer samples appended than scraped",
        ),
        (
            bad.iter().all(|&b| b == 0),
            "dashboard queries failed or answered nothing",
        ),
    ];
    if system != System::Victoria {
        let c = own_metric(port, "prometheus_tsdb_compactions_total", "");
        let sum = own_metric(port, "prometheus_tsdb_compaction_duration_seconds_sum", "");
        let blocks = du(&data)
            .saturating_sub(du(&data.join("wal")))
            .saturating_sub(du(&data.join("chunks_head")));
        println!(
            "compactions: {c} taking {sum:.1}s in all ({:.1}s each); blocks {:.0} MB",
            sum / c.max(1.0),
            blocks as f64 / 1e6
        );
        // The head spans 7.5 minutes before its first cut.
        checks.push((minutes < 10 || c > 0.0, "no block was cut"));
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|f| !f.0)
        .map(|f| format!("{name} at {series} series: {}", f.1))
        .collect();
    for f in &failed {
        println!("FAILED: {f}");
    }

    let latencies: Vec<_> = (0..queries.len())
        .map(|i| {
            let (a, b) = (&mut inst[i], &mut range[i]);
            let (ma, mb) = (
                a.iter().cloned().fold(0.0, f64::max),
                b.iter().cloned().fold(0.0, f64::max),
            );
            (median(a), ma, median(b), mb, bad[i])
        })
        .collect();
    let disk = du(&data);

    // Restart on the data: SIGKILL, then the time until every target answers again.
    drop(child);
    let t0 = Instant::now();
    let again = start(system, bin, &cfg, &data, port);
    loop {
        if up(port) && instant_at(port, "count(up)", now()) == Some(targets as f64) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "{name} not back in 15 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let restart_s = t0.elapsed().as_secs_f64();
    println!("restart after kill -9: answering count(up) with every target after {restart_s:.1}s");
    drop(again);
    let _ = std::fs::remove_dir_all(&data);
    Run {
        system,
        series,
        peak_rss: peak,
        rss_mean: rss_sum / rss_n.max(1.0),
        cores,
        samples_per_s,
        expected_per_s,
        disk,
        latencies,
        restart_s,
        fleet_cores,
        failed,
        died: None,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg = |d: u64| args.next().and_then(|s| s.parse().ok()).unwrap_or(d);
    let (series, minutes, small, small_minutes) = (
        arg(10_000_000) as usize,
        arg(30),
        arg(1_000_000) as usize,
        arg(10),
    );
    assert!(
        (series == 0 || minutes >= 3) && (small == 0 || small_minutes >= 3),
        "runs of 3 minutes or more (SERIES or SMALL_SERIES 0 leaves those runs out)"
    );
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    // `SCALE_REFERENCES=0` runs vigil alone: for comparing two builds of vigil (the other
    // named by VIGIL_BENCH_BIN) without the references' half hour each, or their packages.
    let references = std::env::var("SCALE_REFERENCES").map_or(true, |v| v != "0");
    let prometheus = PathBuf::from("/usr/bin/prometheus");
    let vm = match references {
        true => {
            assert!(prometheus.exists(), "install Debian's prometheus");
            vigil_bench::servers::victoria_metrics()
                .expect("install Debian's victoria-metrics: apt-get install victoria-metrics")
        }
        false => "",
    };
    let dir = std::env::temp_dir().join(format!("vigil-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let per = PER_TARGET
        .min(if series > 0 { series } else { small })
        .min(if small > 0 { small } else { series })
        .max(1);
    let mut runs = Vec::new();
    let mut first_port = 0;
    if series > 0 {
        let fleet = Fleet::start(series / per, per);
        first_port = fleet.ports[0];
        runs.push(run(System::Vigil, &vigil, &fleet, minutes, &dir));
        if references {
            runs.push(run(System::Victoria, Path::new(vm), &fleet, minutes, &dir));
        }
    }
    if small > 0 {
        let fleet = Fleet::start(small / per, per);
        first_port = fleet.ports[0];
        runs.push(run(System::Vigil, &vigil, &fleet, small_minutes, &dir));
        if references {
            runs.push(run(
                System::Prometheus,
                &prometheus,
                &fleet,
                small_minutes,
                &dir,
            ));
        }
    }

    let queries = dashboard(first_port);
    println!();
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>7} {:>12} {:>9} {:>10} {:>12}",
        "",
        "series",
        "peak MB",
        "mean MB",
        "cores",
        "samples/s",
        "disk MB",
        "restart s",
        "fleet cores"
    );
    for r in &runs {
        if let Some(why) = &r.died {
            println!(
                "{:<18} {:>10} did not finish: {why}",
                r.system.name(),
                r.series
            );
            continue;
        }
        println!(
            "{:<18} {:>10} {:>10.0} {:>10.0} {:>7.3} {:>12} {:>9.0} {:>10.1} {:>12.3}",
            r.system.name(),
            r.series,
            r.peak_rss as f64 / 1e6,
            r.rss_mean / 1e6,
            r.cores,
            format!(
                "{:.0} ({:.3})",
                r.samples_per_s,
                r.samples_per_s / r.expected_per_s
            ),
            r.disk as f64 / 1e6,
            r.restart_s,
            r.fleet_cores
        );
    }
    println!();
    println!(
        "dashboard query latency in seconds while ingesting, median / max (instant | range over up to 1h, step 60s):"
    );
    for r in runs.iter().filter(|r| r.died.is_none()) {
        println!("  {} at {} series:", r.system.name(), r.series);
        for (i, (q, _)) in queries.iter().enumerate() {
            let (a, b, c, d, bad) = r.latencies[i];
            println!(
                "    {q:<22} {a:>7.3} / {b:>7.3} | {c:>7.3} / {d:>7.3}  ({bad} failed or empty)"
            );
        }
    }
    let ratio = |a: &Run, b: &Run, f: &dyn Fn(&Run) -> f64| f(a) / f(b).max(1e-9);
    let peak = |r: &Run| r.peak_rss as f64;
    let cores = |r: &Run| r.cores;
    let restart = |r: &Run| r.restart_s;
    println!();
    // Pairs on the same fleet: (vigil, the reference).
    for pair in runs.chunks(2) {
        let [v, other] = pair else { continue };
        if v.died.is_some() || other.died.is_some() {
            println!("at {} series: no ratio, a system did not finish", v.series);
            continue;
        }
        let (a, b, how) = if other.system == System::Victoria {
            (v, other, "vigil / victoria-metrics")
        } else {
            (other, v, "prometheus / vigil")
        };
        println!(
            "at {} series: {how}: RSS {:.2}, CPU {:.2}, restart {:.2}",
            v.series,
            ratio(a, b, &peak),
            ratio(a, b, &cores),
            ratio(a, b, &restart)
        );
    }
    println!(
        "ratios: peak RSS, CPU cores and restart time; below 1 vigil / victoria-metrics and above 1 prometheus / vigil favour vigil."
    );
    let _ = std::fs::remove_dir_all(&dir);
    let failed: Vec<&String> = runs.iter().flat_map(|r| &r.failed).collect();
    assert!(
        failed.is_empty(),
        "checks failed, so the figures above may measure less work: {failed:?}"
    );
}
