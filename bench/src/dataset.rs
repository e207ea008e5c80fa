//! A deterministic data set for query tests and benchmarks, written as one OpenMetrics file that
//! vigil (`vigil tsdb create-blocks-from openmetrics`), Prometheus (`promtool tsdb
//! create-blocks-from openmetrics`) and VictoriaMetrics (converted to its import format) all load.
//!
//! Three kinds of series, a third each: counters `dset_requests_total{pod, method, code}` with
//! integer increments and an occasional reset, gauges `dset_temperature_celsius{pod, region}`
//! with one decimal, and a classic histogram `dset_latency_seconds{pod}` (buckets, sum, count).
//! Sample timestamps sit 1.234s past a multiple of the interval, so no sample is ever exactly on
//! a window boundary of a query evaluated at whole seconds (Prometheus 2.42 windows are closed
//! on the left, 3.x's open; off-grid samples make both agree).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// 2025-01-01T00:00:00Z, in seconds.
pub const START_S: i64 = 1_735_689_600;
/// Offset of every sample past its interval slot, in milliseconds.
pub const OFFSET_MS: i64 = 1_234;
pub const BUCKETS: [&str; 8] = ["0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
pub const METHODS: [&str; 3] = ["get", "post", "put"];
pub const CODES: [&str; 3] = ["200", "404", "500"];
pub const REGIONS: [&str; 4] = ["eu", "us", "ap", "sa"];

/// Deterministic pseudo-random numbers (xorshift64).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Shape of the data set.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    /// Pods; each has 9 counters, 1 gauge and a histogram of 10 series.
    pub pods: usize,
    pub hours: i64,
    pub interval_s: i64,
}

impl Dataset {
    /// Series the data set holds.
    pub fn series(&self) -> usize {
        self.pods * (METHODS.len() * CODES.len() + 1 + BUCKETS.len() + 2)
    }

    /// First and last sample time, in milliseconds.
    pub fn time_range_ms(&self) -> (i64, i64) {
        let steps = self.hours * 3600 / self.interval_s;
        (
            START_S * 1000 + OFFSET_MS,
            START_S * 1000 + (steps - 1) * self.interval_s * 1000 + OFFSET_MS,
        )
    }

    /// Write the OpenMetrics file from [`START_S`]; returns the number of samples.
    pub fn write(&self, path: &Path) -> std::io::Result<u64> {
        self.write_from(path, START_S)
    }

    /// Write the OpenMetrics file with its first interval slot at `start_s` (Unix seconds).
    pub fn write_from(&self, path: &Path, start_s: i64) -> std::io::Result<u64> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let steps = self.hours * 3600 / self.interval_s;
        let ts = |k: i64| {
            let ms = start_s * 1000 + k * self.interval_s * 1000 + OFFSET_MS;
            format!("{}.{:03}", ms / 1000, ms % 1000)
        };
        let mut n = 0u64;
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut line = String::new();

        writeln!(f, "# TYPE dset_requests counter")?;
        for pod in 0..self.pods {
            for m in METHODS {
                for c in CODES {
                    let mut v = 0f64;
                    let rate = 1 + rng.below(50) as u64;
                    for k in 0..steps {
                        if rng.below(2000) == 0 {
                            v = 0.0; // a restart
                        } else {
                            v += (rng.next_u64() % (2 * rate)) as f64;
                        }
                        line.clear();
                        let _ = writeln!(
                            line,
                            "dset_requests_total{{pod=\"pod-{pod}\",method=\"{m}\",code=\"{c}\"}} {v} {}",
                            ts(k)
                        );
                        f.write_all(line.as_bytes())?;
                        n += 1;
                    }
                }
            }
        }
        writeln!(f, "# TYPE dset_temperature_celsius gauge")?;
        for pod in 0..self.pods {
            let region = REGIONS[pod % REGIONS.len()];
            let mut v = 20.0 + rng.below(100) as f64 / 10.0;
            for k in 0..steps {
                v = ((v + (rng.unit() - 0.5) * 2.0).clamp(-10.0, 60.0) * 10.0).round() / 10.0;
                line.clear();
                let _ = writeln!(
                    line,
                    "dset_temperature_celsius{{pod=\"pod-{pod}\",region=\"{region}\"}} {v} {}",
                    ts(k)
                );
                f.write_all(line.as_bytes())?;
                n += 1;
            }
        }
        writeln!(f, "# TYPE dset_latency_seconds histogram")?;
        for pod in 0..self.pods {
            let mut counts = [0u64; BUCKETS.len()];
            let mut sum = 0f64;
            let mut rows: Vec<String> = Vec::with_capacity(steps as usize * (BUCKETS.len() + 2));
            for k in 0..steps {
                // New observations fall in buckets; counts are cumulative over `le`.
                for _ in 0..rng.below(20) {
                    let b = rng.below(BUCKETS.len());
                    for c in counts.iter_mut().skip(b) {
                        *c += 1;
                    }
                    sum += [0.005, 0.03, 0.07, 0.2, 0.4, 0.8, 2.0, 4.0][b];
                }
                for (i, le) in BUCKETS.iter().enumerate() {
                    rows.push(format!(
                        "dset_latency_seconds_bucket{{pod=\"pod-{pod}\",le=\"{le}\"}} {} {}",
                        counts[i],
                        ts(k)
                    ));
                }
                rows.push(format!(
                    "dset_latency_seconds_sum{{pod=\"pod-{pod}\"}} {} {}",
                    (sum * 1000.0).round() / 1000.0,
                    ts(k)
                ));
                rows.push(format!(
                    "dset_latency_seconds_count{{pod=\"pod-{pod}\"}} {} {}",
                    counts[BUCKETS.len() - 1],
                    ts(k)
                ));
            }
            // OpenMetrics wants each series' samples together: sort by series, then time.
            rows.sort_by(|a, b| {
                let (sa, _) = a.rsplit_once(' ').unwrap();
                let (sb, _) = b.rsplit_once(' ').unwrap();
                let (ka, _) = sa.rsplit_once(' ').unwrap();
                let (kb, _) = sb.rsplit_once(' ').unwrap();
                ka.cmp(kb)
            });
            for r in rows {
                writeln!(f, "{r}")?;
                n += 1;
            }
        }
        writeln!(f, "# EOF")?;
        f.flush()?;
        Ok(n)
    }
}
