//! A fleet of synthetic application targets for scale benchmarks: many `/metrics` endpoints on
//! loopback, each exposing the same families a web service does (request counters by method,
//! handler and code; a latency histogram; per-customer counters; cache and queue gauges;
//! process figures), with values that move between scrapes as real ones do.
//!
//! Every target has the same metric label sets but for its customers: each target has a window
//! of ids of its own, overlapping its neighbours', out of a million (at 1,000 targets, nearly
//! every id is in use: a label with about a million values). The scrape config adds
//! `namespace`, `service` and `pod` per target, as Kubernetes discovery would. Each scrape of
//! `/metrics` advances a target's values by one step: counters grow by random amounts (a third
//! of them stay idle), histogram buckets grow consistently (cumulative, `+Inf` equals
//! `_count`), gauges hold or move up and down. A response waits 0-250 ms first, as a busy
//! application's does, so scrape durations vary.

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::TcpListener;
use std::sync::Arc;

use parking_lot::Mutex;

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 5] = ["200", "201", "304", "404", "500"];
const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];
/// Share of a latency observation at or below each bucket's bound.
const CDF: [f64; 11] = [
    0.02, 0.08, 0.25, 0.45, 0.68, 0.86, 0.94, 0.98, 0.995, 0.999, 1.0,
];
/// Customer ids are drawn from this many.
const CUSTOMERS: u64 = 1_000_000;

/// What a line's value is and how it moves.
#[derive(Clone, Copy)]
enum Kind {
    /// Grows by about `rate` a scrape (0: idle).
    Counter {
        rate: f32,
    },
    /// Wanders around its start; `hold` of 8 scrapes it keeps its value.
    Gauge {
        hold: u8,
    },
    /// Bucket `b` of histogram `h` (cumulative counts).
    Bucket {
        h: u32,
        b: u8,
    },
    Sum {
        h: u32,
    },
    Count {
        h: u32,
    },
    /// `app_customer_requests_total` for the target's `k`-th customer.
    Customer {
        k: u32,
        rate: f32,
    },
}

struct Line {
    /// The series' text up to the value (`name{labels} `); customers' are built per target.
    prefix: String,
    kind: Kind,
}

/// The families of one target, `per_target` series in all.
struct Template {
    lines: Vec<Line>,
    histograms: usize,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: a cheap, well-spread hash for reproducible per-series choices.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

impl Template {
    fn new(per_target: usize) -> Template {
        let mut lines = Vec::with_capacity(per_target);
        let mut histograms = 0usize;
        let full = |lines: &Vec<Line>| lines.len() >= per_target;
        let rate = |i: usize| -> f32 {
            let u = unit(i as u64 * 7 + 1);
            if u < 0.33 { 0.0 } else { (u * u * 60.0) as f32 }
        };
        // Handlers scale with the target's size: 50 at 10,000 series.
        let handlers = (per_target / 200).max(1);
        let push = |lines: &mut Vec<Line>, prefix: String, kind: Kind| {
            if lines.len() < per_target {
                lines.push(Line { prefix, kind });
            }
        };
        // 10%: request counters.
        'req: for h in 0..handlers {
            for m in METHODS {
                for c in CODES {
                    if lines.len() >= per_target / 10 {
                        break 'req;
                    }
                    let i = lines.len();
                    push(
                        &mut lines,
                        format!(
                            "http_requests_total{{method=\"{m}\",handler=\"/api/v1/h{h}\",code=\"{c}\"}} "
                        ),
                        Kind::Counter { rate: rate(i) },
                    );
                }
            }
        }
        // About 26%: latency histograms (13 series each).
        'hist: for h in 0..handlers {
            for m in METHODS {
                if lines.len() + 13 > per_target * 36 / 100 {
                    break 'hist;
                }
                let labels = format!("method=\"{m}\",handler=\"/api/v1/h{h}\"");
                let id = histograms as u32;
                for (b, le) in BUCKETS.iter().enumerate() {
                    push(
                        &mut lines,
                        format!("http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} "),
                        Kind::Bucket { h: id, b: b as u8 },
                    );
                }
                push(
                    &mut lines,
                    format!("http_request_duration_seconds_sum{{{labels}}} "),
                    Kind::Sum { h: id },
                );
                push(
                    &mut lines,
                    format!("http_request_duration_seconds_count{{{labels}}} "),
                    Kind::Count { h: id },
                );
                histograms += 1;
            }
        }
        // A few process figures.
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "go_goroutines",
            "go_memstats_heap_inuse_bytes",
        ] {
            let kind = if name.ends_with("_total") {
                Kind::Counter { rate: 0.7 }
            } else {
                Kind::Gauge { hold: 2 }
            };
            push(&mut lines, format!("{name} "), kind);
        }
        // 15%: cache entries by cache and shard (mostly unchanged between scrapes).
        'cache: for c in 0.. {
            for s in 0..64 {
                if lines.len() >= per_target * 51 / 100 {
                    break 'cache;
                }
                push(
                    &mut lines,
                    format!("app_cache_entries{{cache=\"c{c}\",shard=\"{s}\"}} "),
                    Kind::Gauge { hold: 6 },
                );
            }
        }
        // 1%: queue depths.
        let mut q = 0;
        while lines.len() < per_target * 52 / 100 {
            push(
                &mut lines,
                format!("app_queue_depth{{queue=\"q{q}\"}} "),
                Kind::Gauge { hold: 1 },
            );
            q += 1;
        }
        // The rest: per-customer request counters (the high-cardinality label).
        let mut k = 0u32;
        while !full(&lines) {
            let i = lines.len();
            push(
                &mut lines,
                String::new(),
                Kind::Customer {
                    k,
                    rate: rate(i) / 10.0,
                },
            );
            k += 1;
        }
        Template { lines, histograms }
    }
}

/// One target's current values and how many scrapes it has answered.
struct State {
    values: Vec<f64>,
    /// Per histogram: observations this step (so buckets, sum and count agree).
    step_obs: Vec<f64>,
    step: u64,
}

/// The fleet: `targets` endpoints of `per_target` series each, served until the process ends.
pub struct Fleet {
    pub ports: Vec<u16>,
    pub per_target: usize,
    template: Arc<Template>,
    states: Vec<Arc<Mutex<State>>>,
}

impl Fleet {
    pub fn start(targets: usize, per_target: usize) -> Fleet {
        let template = Arc::new(Template::new(per_target));
        let mut ports = Vec::with_capacity(targets);
        let mut states = Vec::with_capacity(targets);
        for t in 0..targets {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            ports.push(l.local_addr().unwrap().port());
            let state = Arc::new(Mutex::new(State::new(&template, t as u64)));
            states.push(state.clone());
            let template = template.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    for s in l.incoming() {
                        let Ok(s) = s else { continue };
                        let (template, state) = (template.clone(), state.clone());
                        // Without a thread, this one request waits; the target stays up.
                        let _ = std::thread::Builder::new()
                            .stack_size(256 * 1024)
                            .spawn(move || answer(s, &template, &state, t as u64));
                    }
                })
                .unwrap();
        }
        Fleet {
            ports,
            per_target,
            template,
            states,
        }
    }

    /// Series of one target whose text starts with `prefix` (e.g. `http_requests_total{`).
    pub fn series_of(&self, prefix: &str) -> usize {
        self.template
            .lines
            .iter()
            .filter(|l| match l.kind {
                Kind::Customer { .. } => "app_customer_requests_total{".starts_with(prefix),
                _ => l.prefix.starts_with(prefix),
            })
            .count()
    }

    /// Target `t`'s scrapes answered so far and the sum of the values it last served for the
    /// series whose text starts with `prefix`: what a query for them should answer.
    pub fn served(&self, t: usize, prefix: &str) -> (u64, f64) {
        let st = self.states[t].lock();
        let sum = self
            .template
            .lines
            .iter()
            .zip(&st.values)
            .filter(|(l, _)| {
                !matches!(l.kind, Kind::Customer { .. }) && l.prefix.starts_with(prefix)
            })
            .map(|(_, v)| *v)
            .sum();
        (st.step, sum)
    }

    /// Series the fleet serves, all targets together.
    pub fn series(&self) -> usize {
        self.ports.len() * self.per_target
    }

    /// A `scrape_configs` entry (job `fleet`) listing every target with the labels Kubernetes
    /// discovery would give it.
    pub fn scrape_config(&self, interval_s: u64) -> String {
        let mut out = format!(
            "global:\n  scrape_interval: {interval_s}s\n  scrape_timeout: {}s\nscrape_configs:\n  - job_name: fleet\n    sample_limit: 0\n    static_configs:\n",
            interval_s * 2 / 3
        );
        for (i, p) in self.ports.iter().enumerate() {
            let svc = i % 50;
            let _ = write!(
                out,
                "      - targets: ['127.0.0.1:{p}']\n        labels: {{namespace: team-{}, service: svc-{svc}, pod: svc-{svc}-{:05x}}}\n",
                i % 20,
                mix(i as u64) & 0xfffff
            );
        }
        out
    }
}

/// Answer one connection: `GET /metrics` advances the target a step and serves it.
fn answer(mut s: std::net::TcpStream, template: &Template, state: &Mutex<State>, t: u64) {
    let mut buf = [0u8; 8192];
    let n = s.read(&mut buf).unwrap_or(0);
    if !buf[..n].starts_with(b"GET /metrics") {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    // The wait comes before the lock: it delays this answer, not the next scrape's.
    let delay = unit(t * 1_000_003 + state.lock().step) * 0.25;
    std::thread::sleep(std::time::Duration::from_secs_f64(delay));
    let body = {
        let mut st = state.lock();
        st.advance(template, t);
        st.render(template, t)
    };
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body.as_bytes());
}

impl State {
    fn new(t: &Template, target: u64) -> State {
        let mut values = vec![0.0; t.lines.len()];
        for (i, (l, v)) in t.lines.iter().zip(values.iter_mut()).enumerate() {
            let seed = target * 1_000_003 + i as u64;
            *v = match l.kind {
                Kind::Counter { .. } | Kind::Customer { .. } => (unit(seed) * 1e5).floor(),
                Kind::Gauge { .. } => (unit(seed) * 5e3).floor(),
                _ => 0.0,
            };
        }
        State {
            values,
            step_obs: vec![0.0; t.histograms],
            step: 0,
        }
    }

    /// One scrape's worth of change.
    fn advance(&mut self, t: &Template, target: u64) {
        self.step += 1;
        let base = mix(target ^ (self.step << 40));
        for (h, o) in self.step_obs.iter_mut().enumerate() {
            *o = (unit(base ^ h as u64) * 40.0).floor();
        }
        for (i, (l, v)) in t.lines.iter().zip(self.values.iter_mut()).enumerate() {
            let seed = base ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
            let u = unit(seed);
            match l.kind {
                Kind::Counter { rate } | Kind::Customer { rate, .. } => {
                    *v += (2.0 * rate as f64 * u).floor();
                }
                Kind::Gauge { hold } => {
                    // Whether it moves and by how much are separate draws: up as often as
                    // down.
                    if u * 8.0 >= hold as f64 {
                        *v = (*v + (unit(seed ^ 0x5bd1_e995) - 0.5) * 40.0)
                            .round()
                            .max(0.0);
                    }
                }
                Kind::Bucket { h, b } => {
                    // Cumulative: a bucket gains its share of the step's observations, so
                    // counts never fall from one bucket to the next.
                    *v += (self.step_obs[h as usize] * CDF[b as usize]).round();
                }
                Kind::Sum { h } => {
                    *v += self.step_obs[h as usize] * (0.04 + 0.05 * u);
                }
                Kind::Count { h } => *v += self.step_obs[h as usize],
            }
        }
    }

    fn render(&self, t: &Template, target: u64) -> String {
        let mut out = String::with_capacity(t.lines.len() * 80);
        // A window of customer ids of its own, overlapping its neighbours'.
        let first = target * 2_477 % CUSTOMERS;
        for (l, v) in t.lines.iter().zip(&self.values) {
            match l.kind {
                Kind::Customer { k, .. } => {
                    let id = (first + k as u64) % CUSTOMERS;
                    let _ = writeln!(
                        out,
                        "app_customer_requests_total{{customer=\"c-{id}\"}} {v}"
                    );
                }
                _ => {
                    out.push_str(&l.prefix);
                    let _ = writeln!(out, "{v}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes are exact, series are unique, a histogram's buckets stay cumulative with `+Inf`
    /// equal to its count, scrape after scrape, and gauges go down as well as up.
    #[test]
    fn targets_are_well_formed() {
        for per in [100, 1_000, 10_000] {
            let t = Template::new(per);
            let mut st = State::new(&t, 3);
            let gauges0 = st.values.clone();
            for _ in 0..5 {
                st.advance(&t, 3);
                let body = st.render(&t, 3);
                let lines: Vec<&str> = body.lines().collect();
                assert_eq!(lines.len(), per);
                let names: std::collections::HashSet<&str> = lines
                    .iter()
                    .map(|l| l.rsplit_once(' ').unwrap().0)
                    .collect();
                assert_eq!(names.len(), per, "duplicate series");
                let value = |prefix: &str| -> f64 {
                    lines
                        .iter()
                        .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' '))
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                for h in 0..t.histograms.min(3) {
                    let (m, hd) = (METHODS[h % 4], h / 4);
                    let labels = format!("method=\"{m}\",handler=\"/api/v1/h{hd}\"");
                    let mut last = 0.0;
                    for le in BUCKETS {
                        let b = value(&format!(
                            "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}"
                        ));
                        assert!(b >= last, "bucket {le} fell below the one before");
                        last = b;
                    }
                    assert_eq!(
                        last,
                        value(&format!("http_request_duration_seconds_count{{{labels}}}"))
                    );
                }
            }
            let (mut up, mut down) = (0, 0);
            for ((l, a), b) in t.lines.iter().zip(&gauges0).zip(&st.values) {
                if matches!(l.kind, Kind::Gauge { .. }) {
                    up += (b > a) as usize;
                    down += (b < a) as usize;
                }
            }
            assert!(up > 0 && down > 0, "gauges: {up} up, {down} down");
        }
    }
}
