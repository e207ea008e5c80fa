//! Commits during a head truncation: how long the head's truncation after a block cut keeps a
//! scrape's commit waiting. SERIES series (default 1,000,000) get a sample every 15s for 40
//! minutes (one closed chunk of 120 samples and an open one each), then the head is truncated
//! 20 minutes in, through every series' closed chunk (each is re-encoded from the cut on),
//! while another thread commits a scrape's worth of samples (PER_COMMIT series of its own,
//! default 10,000) with a millisecond between transactions, as scrapes do.
//! Prints the truncation's duration, the commits made during it and the longest of them, then
//! checks that the head kept exactly the samples from the cut on. The same for two reads of
//! the whole index: the values of a label with one per series (`/api/v1/label/series/values`
//! without matchers), and the TSDB status walk (`/api/v1/status/tsdb`). Last, every series
//! stops and is removed by the truncation after the one that finds it empty: the same for that
//! one.
//!
//! `cargo run --release -p vigil-bench --bin cut_stall [-- SERIES PER_COMMIT]` (PER_COMMIT 1
//! is the shape of this command's figures before 2026-12-05: one sample a transaction)
//!
//! In-process, on vigil's head alone: no other system has this lock to compare (Prometheus
//! shards its series over 16,384 locks, so its truncation never holds them all).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigil_model::Labels;
use vigil_storage::{MatchOp, Matcher, Storage};
use vigil_tsdb::head::Head;

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 160;

fn main() {
    let series: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let per_commit: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let head = Head::in_memory();
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "bench_metric"),
                (
                    "instance",
                    &format!("10.0.{}.{}:9100", i / 65536, i % 65536),
                ),
                ("series", &i.to_string()),
            ])
        })
        .collect();
    let t0 = Instant::now();
    let mut refs = vec![0u64; series];
    for k in 0..SAMPLES {
        let mut app = head.appender();
        for (i, l) in labels.iter().enumerate() {
            refs[i] = app
                .append(refs[i], l, k * STEP_MS, (k * (i as i64 % 7)) as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
    println!(
        "{series} series x {SAMPLES} samples loaded in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let cut = 20 * 60 * 1000;
    let mut next_t = SAMPLES * STEP_MS;
    let measured = while_committing(&head, per_commit, &mut next_t, || {
        head.truncate(cut).unwrap();
    });
    report("truncation through every series' chunk", measured);
    // The work was done: every series kept exactly its samples from the cut on.
    let want = ((SAMPLES * STEP_MS - cut + STEP_MS - 1) / STEP_MS) as usize;
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    let m = Matcher::new(MatchOp::Equal, "__name__", "bench_metric").unwrap();
    let (mut n, mut bad) = (0usize, 0usize);
    for s in q.select(&[m]).unwrap() {
        n += 1;
        if s.samples.len() != want || s.samples[0].t < cut {
            bad += 1;
        }
    }
    println!("checked: {n} series, {bad} without exactly the {want} samples from the cut on");
    assert_eq!(
        (n, bad),
        (series, 0),
        "the truncation lost or kept the wrong samples"
    );
    drop(q);

    // Reads of the whole index: a label with a value per series, and the TSDB status page.
    let mut values = 0;
    let measured = while_committing(&head, per_commit, &mut next_t, || {
        let q = head.querier(i64::MIN, i64::MAX).unwrap();
        values = q.label_values("series", &[]).unwrap().len();
    });
    report(
        &format!("label values of `series` ({values} values)"),
        measured,
    );
    assert_eq!(values, series);
    let mut pairs = 0;
    let measured = while_committing(&head, per_commit, &mut next_t, || {
        pairs = head.cardinality(10).num_label_pairs;
    });
    report(&format!("TSDB status ({pairs} label pairs)"), measured);
    assert!(pairs as usize > 2 * series);

    // Churn: every series stops (a cut past their last sample finds them empty, the next
    // one removes them, their postings with them).
    let past = SAMPLES * STEP_MS;
    head.truncate(past).unwrap();
    let measured = while_committing(&head, per_commit, &mut next_t, || {
        head.truncate(past).unwrap();
    });
    report(&format!("removal of all {series} series"), measured);
    let left = head.num_series();
    assert_eq!(left, per_commit, "only the committer's series are left");
    let q = head.querier(i64::MIN, i64::MAX).unwrap();
    assert!(
        q.label_values("series", &[]).unwrap().is_empty(),
        "the removed series' postings are gone"
    );
}

/// Print what `while_committing` measured during `what`.
fn report(what: &str, (took, commits, longest): (Duration, u64, Duration)) {
    println!(
        "{what}: {:.3} s; commits meanwhile: {commits}, the longest {:.1} ms",
        took.as_secs_f64(),
        longest.as_secs_f64() * 1000.0
    );
}

/// Run `op` while another thread commits, as scrapes do, a sample of each of `per_commit`
/// series of its own, then sleeps a millisecond, from 200 ms before `op` to 50 ms after (the
/// first commit, which makes the series, is not the one measured). Each append takes the
/// head's index lock for its checks, so a transaction of many samples waits on a walk's
/// holds where one of a single sample does not. Returns `op`'s duration, the commits made
/// and the longest of them.
fn while_committing(
    head: &Head,
    per_commit: usize,
    next_t: &mut i64,
    op: impl FnOnce(),
) -> (Duration, u64, Duration) {
    let done = AtomicBool::new(false);
    let t0 = *next_t;
    let (took, n, longest, last_t) = std::thread::scope(|sc| {
        let committer = sc.spawn(|| {
            let own: Vec<Labels> = (0..per_commit)
                .map(|i| {
                    Labels::from_pairs([
                        ("__name__", "bench_scrape".to_string()),
                        ("job", "bench".to_string()),
                        ("i", i.to_string()),
                    ])
                })
                .collect();
            let (mut refs, mut t) = (vec![0u64; per_commit], t0);
            let (mut n, mut longest) = (0u64, Duration::ZERO);
            while !done.load(Ordering::Relaxed) {
                let start = Instant::now();
                let mut app = head.appender();
                for (r, l) in refs.iter_mut().zip(&own) {
                    *r = app.append(*r, l, t, 1.0).unwrap();
                }
                app.commit().unwrap();
                longest = longest.max(start.elapsed());
                n += 1;
                t += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (n, longest, t)
        });
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        op();
        let took = start.elapsed();
        std::thread::sleep(Duration::from_millis(50));
        done.store(true, Ordering::Relaxed);
        let (n, longest, t) = committer.join().unwrap();
        (took, n, longest, t)
    });
    *next_t = last_t;
    // Commits went on from before the operation to after it: the longest of them is a figure.
    assert!(n > 20, "only {n} commits while the operation ran");
    (took, n, longest)
}
