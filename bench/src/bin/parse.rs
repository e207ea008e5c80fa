//! Parse throughput of vigil's two exposition parsers, and the cost of one scrape of the same
//! payload through the series cache into the appender (cold: first scrape, every series new;
//! warm: later scrapes, every series cached).
//!
//! `cargo run --release -p vigil-bench --bin parse [-- SERIES]` (default 100000 series).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_model::exposition::{Entry, Format, Parser};

fn parse_once(body: &[u8], f: Format) -> usize {
    let mut n = 0;
    for e in Parser::new(body, f) {
        if let Entry::Sample(s) = e.expect("benchmark payload parses") {
            black_box(s.value);
            n += 1;
        }
    }
    n
}

fn time<F: FnMut()>(min: Duration, mut f: F) -> (Duration, u32) {
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < min || runs < 3 {
        f();
        runs += 1;
    }
    (start.elapsed() / runs, runs)
}

fn main() {
    let series: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    println!("payload: {series} series (counters, gauges, histograms with 10 buckets, summaries)");
    println!();
    println!(
        "{:<14} {:>10} {:>12} {:>12} {:>14}",
        "parser", "size MB", "ms/parse", "MB/s", "samples/s"
    );
    for (name, om) in [("text 0.0.4", false), ("openmetrics", true)] {
        let body = vigil_bench::exposition(series, om);
        let f = if om {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        let n = parse_once(body.as_bytes(), f);
        let (per, _) = time(Duration::from_secs(2), || {
            black_box(parse_once(black_box(body.as_bytes()), f));
        });
        let mb = body.len() as f64 / 1e6;
        println!(
            "{:<14} {:>10.1} {:>12.2} {:>12.0} {:>14.0}",
            name,
            mb,
            per.as_secs_f64() * 1e3,
            mb / per.as_secs_f64(),
            n as f64 / per.as_secs_f64()
        );
    }

    println!();
    println!("one scrape through series cache + relabeling + appender (TSDB head, no WAL):");
    let body = vigil_bench::exposition(series, false);
    let yaml = "scrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: ['127.0.0.1:1']\n";
    let cfg = vigil_config::Config::parse(yaml, std::path::Path::new(".")).expect("bench config");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let storage: Arc<dyn vigil_storage::Storage> = Arc::new(vigil_tsdb::head::Head::in_memory());
    let mut lp = vigil_scrape::scrape_loop::ScrapeLoop::for_benchmark(
        cfg.scrape_configs[0].clone(),
        storage,
    )
    .expect("loop");
    let mut ts = 1_700_000_000_000i64;
    let t0 = Instant::now();
    let stats = lp
        .ingest(body.as_bytes(), "text/plain; version=0.0.4", ts)
        .expect("ingest");
    let cold = t0.elapsed();
    assert_eq!(stats.series_added as usize, stats.scraped as usize);
    let (warm, runs) = time(Duration::from_secs(3), || {
        ts += 15_000;
        black_box(
            lp.ingest(body.as_bytes(), "text/plain; version=0.0.4", ts)
                .expect("ingest"),
        );
    });
    let n = stats.scraped as f64;
    println!(
        "  cold (all {} series new): {:>8.1} ms  {:>6.0} ns/sample",
        stats.scraped,
        cold.as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e9 / n
    );
    println!(
        "  warm (cached, {runs} runs):     {:>8.1} ms  {:>6.0} ns/sample",
        warm.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e9 / n
    );
}
