//! Tests of `head`.

use super::*;
use vigil_storage::AppendError;

#[test]
fn ref_hash_keeps_sequence_in_the_bucket_bits_and_mixes_the_tag() {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let b = BuildHasherDefault::<RefHash>::default();
    let tags: std::collections::HashSet<u64> = (1..=1000u64)
        .map(|r| {
            let h = b.hash_one(r);
            assert_eq!(h & ((1 << 57) - 1), r, "bucket bits of ref {r}");
            h >> 57
        })
        .collect();
    assert!(tags.len() > 100, "tags spread: {}", tags.len());
}

/// Every series pays for a series-map entry and a label-map entry: keep them from growing
/// unnoticed (an agent's series is little more than these and its labels).
#[test]
fn per_series_entries_stay_small() {
    assert!(std::mem::size_of::<MemSeries>() <= 40);
    assert!(std::mem::size_of::<LabelIndex>() <= 32);
    // A float series' chunks: one allocation of glibc's 112-byte class (histograms and late
    // samples share one pointer).
    assert!(std::mem::size_of::<Chunks>() <= 104);
}

/// The label map finds each series by its labels, forgets only the ref it is told to, and
/// finds series again after its table grew (hashes come from the series map).
#[test]
fn label_map_finds_series_through_growth_and_removal() {
    let mut idx = Index::default();
    let l = |i: u64| Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
    for r in 1..=1000 {
        idx.insert(r, l(r));
    }
    assert!((1..=1000).all(|r| idx.find(&l(r)) == Some(r)));
    // A second ref with the labels of ref 5 (as a replay can leave): removing it leaves 5.
    idx.insert_replayed(2000, l(5));
    idx.remove_many(&[2000, 7]);
    assert_eq!(idx.find(&l(5)), Some(5));
    assert_eq!(idx.find(&l(7)), None);
    assert_eq!(idx.find(&l(1001)), None);
    assert!((8..=1000).all(|r| idx.find(&l(r)) == Some(r)));
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-head-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn l(p: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(p.iter().copied())
}

#[test]
fn truncation_keeps_exactly_the_samples_from_the_cut_on() {
    // Chunks cut only when full, and also at multiples of a range (500 ms: 50 samples).
    for (range, n, cut) in [0i64, 500].into_iter().flat_map(|r| {
        [0i64, 1, 119, 120, 121, 300]
            .into_iter()
            .flat_map(move |n| {
                [0i64, 1, 50, 60, 119, 120, 121, 130, 240, 299, 300, 400]
                    .into_iter()
                    .map(move |c| (r, n, c))
            })
    }) {
        let range = ChunkRange::new(range);
        {
            let mut s = MemSeries::new(Labels::from_pairs([("__name__", "x")]));
            for i in 0..n {
                s.push(i * 10, i as f64, range);
            }
            let empty = s.truncate_before(cut * 10);
            let got = s.samples(i64::MIN, i64::MAX);
            let want: Vec<i64> = (cut.min(n)..n).map(|i| i * 10).collect();
            assert_eq!(
                got.iter().map(|x| x.t).collect::<Vec<_>>(),
                want,
                "n={n} cut={cut}"
            );
            assert_eq!(empty, want.is_empty());
            // Appends continue after a truncation.
            s.push(n * 10 + 5, -1.0, range);
            assert_eq!(s.samples(i64::MIN, i64::MAX).len(), want.len() + 1);
        }
    }
}

/// With chunks ending at multiples of the block range, a read of one range takes exactly its
/// samples, and a truncation at a multiple drops whole chunks: the chunks it keeps are the
/// very ones it had, not re-encoded copies.
#[test]
fn chunks_end_at_range_multiples_so_cuts_take_whole_chunks() {
    let range = ChunkRange::new(1_000);
    let mut s = MemSeries::new(Labels::from_pairs([("__name__", "x")]));
    // A sample every 15 ms from 7 ms on: ranges hold 66 or 67 samples, never a full chunk.
    for i in 0..400i64 {
        s.push(7 + i * 15, i as f64, range);
    }
    let c = s.chunks.as_ref().expect("chunks");
    for x in &c.closed {
        assert_eq!(x.min_t / 1_000, x.max_t / 1_000, "a chunk spans a boundary");
    }
    assert!(range.same(c.open_min_t, 7 + 399 * 15));
    for k in 0..6 {
        let got = s.samples(k * 1_000, (k + 1) * 1_000 - 1);
        let want: Vec<i64> = (0..400)
            .map(|i| 7 + i * 15)
            .filter(|t| t / 1_000 == k)
            .collect();
        assert_eq!(
            got.iter().map(|x| x.t).collect::<Vec<_>>(),
            want,
            "range {k}"
        );
    }
    let kept: Vec<*const u8> = c.closed[2..].iter().map(|x| x.data.as_ptr()).collect();
    assert!(!s.truncate_before(2_000));
    let c = s.chunks.as_ref().expect("chunks");
    let now: Vec<*const u8> = c.closed.iter().map(|x| x.data.as_ptr()).collect();
    assert_eq!(now, kept, "truncation re-encoded a chunk");
    assert_eq!(s.samples(i64::MIN, i64::MAX)[0].t, 7 + 133 * 15);
}

/// A bulk load refuses what a commit would (not newer than a series' last, before
/// `min_valid`, no metric name), continues a label set that comes twice, and logs exactly
/// what the head took: a reopen replays the same head.
#[test]
fn bulk_load_takes_what_a_commit_would_and_logs_it() {
    let d = tmp("bulk");
    let dump = |h: &Head| -> std::collections::BTreeMap<String, Vec<(i64, f64)>> {
        h.index
            .read()
            .series
            .values()
            .map(|s| {
                let v = s.samples(i64::MIN, i64::MAX);
                (s.labels.to_string(), v.iter().map(|x| (x.t, x.v)).collect())
            })
            .collect()
    };
    let ts =
        |ts: &[i64]| -> Vec<Sample> { ts.iter().map(|&t| Sample { t, v: t as f64 }).collect() };
    let (a, b) = (
        l(&[("__name__", "up"), ("job", "a")]),
        l(&[("__name__", "up"), ("job", "b")]),
    );
    let want = {
        let h = Head::open(&d, i64::MIN).unwrap();
        let mut app = h.appender();
        app.append(0, &a, 50, 1.0).unwrap();
        app.commit().unwrap();
        h.raise_min_valid(10);
        let series = vec![
            (a.clone(), ts(&[40, 50, 60, 70])),
            (b.clone(), ts(&[5, 20, 30])),
            (l(&[("job", "no-name")]), ts(&[20])),
            (b.clone(), ts(&[25, 30, 40])),
        ];
        assert_eq!(h.bulk_load(&series).unwrap(), (5, 6));
        let got = dump(&h);
        assert_eq!(got[&a.to_string()], vec![(50, 1.0), (60, 60.0), (70, 70.0)]);
        assert_eq!(
            got[&b.to_string()],
            vec![(20, 20.0), (30, 30.0), (40, 40.0)]
        );
        assert_eq!(got.len(), 2);
        got
    };
    let h = Head::open(&d, i64::MIN).unwrap();
    assert_eq!(dump(&h), want);
    // The series limit counts series that take a sample: the second new one is refused
    // whole, an empty one costs nothing.
    let h = Head::in_memory();
    h.stats.max_series.store(1, Ordering::Relaxed);
    let (x, y, z) = (
        l(&[("__name__", "x")]),
        l(&[("__name__", "y")]),
        l(&[("__name__", "z")]),
    );
    let series = vec![(z, vec![]), (x.clone(), ts(&[1, 2])), (y, ts(&[1]))];
    assert_eq!(h.bulk_load(&series).unwrap(), (2, 1));
    assert_eq!(dump(&h)[&x.to_string()], vec![(1, 1.0), (2, 2.0)]);
    assert_eq!(dump(&h).len(), 2, "x, and z empty");
}

#[test]
fn committed_samples_survive_reopen() {
    let d = tmp("reopen");
    {
        let h = Head::open(&d, i64::MIN).unwrap();
        for i in 0..300 {
            let mut app = h.appender();
            app.append(
                0,
                &l(&[("__name__", "up"), ("job", "a")]),
                i * 1000,
                i as f64,
            )
            .unwrap();
            app.append(0, &l(&[("__name__", "up"), ("job", "b")]), i * 1000, 1.0)
                .unwrap();
            app.commit().unwrap();
        }
        let mut app = h.appender();
        app.append(0, &l(&[("__name__", "up"), ("job", "a")]), 999_999, 5.0)
            .unwrap();
        app.rollback();
    }
    let h = Head::open(&d, i64::MIN).unwrap();
    assert_eq!(h.num_series(), 2);
    let q = h.querier(0, i64::MAX).unwrap();
    let s: Vec<Series> = q.select(&[Matcher::equal("job", "a")]).unwrap().collect();
    assert_eq!(s[0].samples.len(), 300);
    assert_eq!(
        s[0].samples[299],
        Sample {
            t: 299_000,
            v: 299.0
        }
    );
    // New series after reopen get fresh refs.
    let mut app = h.appender();
    let r = app.append(0, &l(&[("__name__", "new")]), 1, 1.0).unwrap();
    assert!(r > 2);
    app.commit().unwrap();
}

/// A truncation between an append and its commit removed the (still empty) new series;
/// the commit used to drop its samples silently.
#[test]
fn commit_survives_a_concurrent_truncation() {
    let h = Head::in_memory();
    let old = l(&[("__name__", "old")]);
    let mut app = h.appender();
    app.append(0, &old, 1_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    let r = app
        .append(0, &l(&[("__name__", "new")]), 10_000, 2.0)
        .unwrap();
    app.append(0, &old, 10_000, 3.0).unwrap();
    h.truncate(5_000).unwrap(); // "new" is empty and "old" only has data before 5000
    app.commit().unwrap();
    let q = h.querier(0, i64::MAX).unwrap();
    let got: Vec<Series> = q
        .select(&[Matcher::new(MatchOp::Regex, "__name__", "new|old").unwrap()])
        .unwrap()
        .collect();
    assert_eq!(got.len(), 2, "both series are back: {got:?}");
    assert!(
        got.iter()
            .all(|s| s.samples.len() == 1 && s.samples[0].t == 10_000)
    );
    let mut app = h.appender();
    assert_eq!(
        app.append(0, &l(&[("__name__", "new")]), 11_000, 4.0)
            .unwrap(),
        r,
        "same ref, no duplicate series"
    );
}

/// A transaction open across two truncations commits into the series it appended to, whether
/// it appended before the first one found the series empty (no removal while it is open) or
/// after (its append spared the series).
#[test]
fn transactions_open_across_two_truncations_keep_their_samples() {
    let h = Head::in_memory();
    let new = l(&[("__name__", "new")]);
    let mut early = h.appender();
    early.append(0, &new, 10_000, 1.0).unwrap();
    h.truncate(5_000).unwrap();
    h.truncate(5_000).unwrap();
    early.commit().unwrap();
    let other = l(&[("__name__", "other")]);
    let mut refused = h.appender();
    refused.append(0, &other, 10_000, 1.0).unwrap();
    refused.rollback();
    h.truncate(5_000).unwrap(); // "other" is empty: doomed
    let mut late = h.appender();
    late.append(0, &other, 11_000, 2.0).unwrap();
    h.truncate(5_000).unwrap();
    late.commit().unwrap();
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let got: Vec<(String, Vec<i64>)> = q
        .select(&[Matcher::new(MatchOp::Regex, "__name__", "new|other").unwrap()])
        .unwrap()
        .map(|s| {
            let name = s.labels.get("__name__").unwrap_or("").to_string();
            (name, s.samples.iter().map(|x| x.t).collect())
        })
        .collect();
    assert_eq!(
        got,
        vec![("new".into(), vec![10_000]), ("other".into(), vec![11_000])]
    );
}

/// A truncation walks the series in several holds of the index lock, letting commits in
/// between: series emptied by the cut go (two-phase), the rest keep exactly their samples from
/// the cut on, the head's range starts at its oldest sample, and every commit made while the
/// walks ran lands (series created empty before a walk and committed during it included).
#[test]
fn truncation_in_holds_lets_commits_in_and_loses_none() {
    let h = Head::in_memory();
    let n = 3 * super::TRUNCATE_SERIES_PER_HOLD as usize + 10;
    let m = |i: usize| l(&[("__name__", "m"), ("i", &i.to_string())]);
    let mut app = h.appender();
    for i in 0..n {
        app.append(0, &m(i), 1_000, 1.0).unwrap();
        if i % 2 == 0 {
            app.append(0, &m(i), 5_000, 2.0).unwrap();
        }
    }
    app.commit().unwrap();
    let writers = 4;
    let per_writer = 300;
    std::thread::scope(|sc| {
        for w in 0..writers {
            let h = &h;
            sc.spawn(move || {
                for k in 0..per_writer {
                    // Appended (the series made, empty) now, committed a little later, so
                    // truncations run in between.
                    let mut app = h.appender();
                    let labels = l(&[
                        ("__name__", "live"),
                        ("w", &w.to_string()),
                        ("k", &k.to_string()),
                    ]);
                    app.append(0, &labels, 6_000 + k as i64, 3.0).unwrap();
                    if k % 3 == 0 {
                        std::thread::yield_now();
                    }
                    app.commit().unwrap();
                }
            });
        }
        for _ in 0..6 {
            h.truncate(2_000).unwrap();
        }
    });
    // Two more: the odd series, found empty, go at the second.
    h.truncate(2_000).unwrap();
    h.truncate(2_000).unwrap();
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let kept: Vec<Series> = q
        .select(&[Matcher::new(MatchOp::Equal, "__name__", "m").unwrap()])
        .unwrap()
        .collect();
    assert_eq!(kept.len(), n.div_ceil(2));
    assert!(
        kept.iter()
            .all(|s| s.samples.len() == 1 && s.samples[0].t == 5_000)
    );
    let live: Vec<Series> = q
        .select(&[Matcher::new(MatchOp::Equal, "__name__", "live").unwrap()])
        .unwrap()
        .collect();
    assert_eq!(
        live.len(),
        writers * per_writer,
        "every committed series is there"
    );
    assert!(live.iter().all(|s| s.samples.len() == 1));
    assert_eq!(h.time_range(), Some((5_000, 6_000 + per_writer as i64 - 1)));
    assert_eq!(
        h.index.read().series.len(),
        n.div_ceil(2) + writers * per_writer
    );
}

/// Removing many series in several holds leaves the index whole: every posting names a
/// series there and every series is in the postings of each of its labels, no value or name
/// is left without series, and a series made again (same labels, new ref) while the removal
/// ran is found.
#[test]
fn removal_in_holds_leaves_postings_exact() {
    let h = Head::in_memory();
    let n = 3 * super::REMOVE_WORK_PER_HOLD + 100;
    let m = |i: usize| {
        l(&[
            ("__name__", if i.is_multiple_of(2) { "even" } else { "odd" }),
            ("i", &i.to_string()),
            ("job", "j"),
        ])
    };
    let mut app = h.appender();
    for i in 0..n {
        // A quarter stay after the cut.
        let t = if i % 4 == 0 { 5_000 } else { 1_000 };
        app.append(0, &m(i), t, 1.0).unwrap();
    }
    app.commit().unwrap();
    h.truncate(2_000).unwrap();
    std::thread::scope(|sc| {
        sc.spawn(|| {
            // Series the removal takes, made again meanwhile (or just before it).
            for i in (1..200).step_by(4) {
                let mut app = h.appender();
                app.append(0, &m(i), 6_000, 2.0).unwrap();
                app.commit().unwrap();
            }
        });
        h.truncate(2_000).unwrap();
    });
    let idx = h.index.read();
    for (name, vals) in &idx.postings {
        assert!(!vals.is_empty(), "{name} has no values left");
        for (value, refs) in vals {
            assert!(!refs.is_empty(), "{name}={value} has no series left");
            assert!(
                refs.windows(2).all(|w| w[0] < w[1]),
                "{name}={value} sorted"
            );
            for r in refs {
                let s = idx
                    .series
                    .get(r)
                    .unwrap_or_else(|| panic!("{name}={value}: ref {r} is gone"));
                assert_eq!(s.labels.get(name), Some(value.as_str()));
            }
        }
    }
    for (r, s) in &idx.series {
        for lp in s.labels.iter() {
            assert!(
                idx.postings[lp.name][lp.value].contains(r),
                "{r} in {}={}",
                lp.name,
                lp.value
            );
        }
    }
    let kept: Vec<usize> = (0..n).filter(|i| i % 4 == 0).collect();
    let again = (1..200).step_by(4).count();
    assert_eq!(idx.series.len(), kept.len() + again);
    assert_eq!(idx.postings["__name__"]["odd"].len(), again);
    assert_eq!(idx.postings["__name__"]["even"].len(), kept.len());
}

/// Walks by ref start past the refs whose series are all gone; series made later are walked.
#[test]
fn truncation_walks_start_past_refs_long_gone() {
    let h = Head::in_memory();
    let mut app = h.appender();
    for i in 0..10 {
        // The first five only before the cut.
        let t = if i < 5 { 1_000 } else { 5_000 };
        app.append(0, &l(&[("__name__", "m"), ("i", &i.to_string())]), t, 1.0)
            .unwrap();
    }
    app.commit().unwrap();
    h.truncate(2_000).unwrap();
    assert_eq!(
        h.live_from.load(Ordering::Relaxed),
        1,
        "found empty once: kept"
    );
    h.truncate(2_000).unwrap();
    assert_eq!(h.live_from.load(Ordering::Relaxed), 6);
    let mut app = h.appender();
    app.append(0, &l(&[("__name__", "late")]), 3_000, 1.0)
        .unwrap();
    app.commit().unwrap();
    // The late series is walked (emptied twice, it goes); the others keep their samples.
    h.truncate(4_000).unwrap();
    h.truncate(4_000).unwrap();
    assert_eq!(h.index.read().series.len(), 5);
    assert_eq!(h.live_from.load(Ordering::Relaxed), 6);
    let c = h.cardinality(10);
    assert_eq!(
        (c.num_series, c.chunk_count),
        (5, 5),
        "chunks counted from live_from on"
    );
}

#[test]
fn postings_select_all_matcher_kinds() {
    // The same answers from the postings and, in agent mode (none kept), from a scan.
    let agent_dir = tmp("agent-select");
    for h in [
        Head::in_memory(),
        Head::open_agent(&agent_dir, crate::wal::WriteOptions::default()).unwrap(),
    ] {
        select_all_matcher_kinds(h);
    }
    let _ = std::fs::remove_dir_all(&agent_dir);
}

fn select_all_matcher_kinds(h: Head) {
    let mut app = h.appender();
    for (job, inst) in [("a", "1"), ("a", "2"), ("b", "1"), ("c", "")] {
        app.append(
            0,
            &l(&[("__name__", "up"), ("job", job), ("inst", inst)]),
            1000,
            1.0,
        )
        .unwrap();
    }
    app.commit().unwrap();
    // The index's selection (an agent head keeps no samples to query).
    let count = |ms: Vec<Matcher>| h.index.read().select(&ms).len();
    assert_eq!(count(vec![Matcher::equal("job", "a")]), 2);
    assert_eq!(
        count(vec![
            Matcher::new(MatchOp::Regex, "job", "a|b").unwrap(),
            Matcher::equal("inst", "1")
        ]),
        2
    );
    assert_eq!(
        count(vec![
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::NotEqual, "job", "a").unwrap()
        ]),
        2
    );
    assert_eq!(
        count(vec![
            Matcher::equal("__name__", "up"),
            Matcher::equal("inst", "")
        ]),
        1
    );
    assert_eq!(
        count(vec![Matcher::new(MatchOp::NotRegex, "job", ".*").unwrap()]),
        0
    );
    if !h.wal_only {
        let q = h.querier(0, 2000).unwrap();
        assert_eq!(q.select(&[Matcher::equal("job", "a")]).unwrap().count(), 2);
        assert_eq!(q.label_values("job", &[]).unwrap(), ["a", "b", "c"]);
    }
}

/// One transaction creates a series and another appends to it and commits first: the
/// series record goes to the WAL with that first commit, so the sample replays.
#[test]
fn a_sample_logged_before_its_creators_commit_replays() {
    let d = tmp("unlogged");
    let lab = l(&[("__name__", "shared")]);
    {
        let h = Head::open(&d, i64::MIN).unwrap();
        let mut a = h.appender();
        a.append(0, &lab, 1_000, 1.0).unwrap();
        let mut b = h.appender();
        b.append(0, &lab, 1_000, 1.0).unwrap();
        b.commit().unwrap();
        a.rollback();
    }
    let h = Head::open(&d, i64::MIN).unwrap();
    let q = h.querier(0, i64::MAX).unwrap();
    let got: Vec<Series> = q
        .select(&[Matcher::equal("__name__", "shared")])
        .unwrap()
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples, [Sample { t: 1_000, v: 1.0 }]);
}

/// The series limit counts series with samples: a transaction refused at the limit leaves
/// empty series behind that use none of it, and their number is bounded too.
#[test]
fn the_series_limit_counts_live_series_and_bounds_empty_ones() {
    let h = Head::in_memory();
    h.stats.max_series.store(10, Ordering::Relaxed);
    let s = |name: &str, i: usize| l(&[("__name__", name), ("i", &i.to_string())]);
    // An exploding target: refused at the 11th series, its transaction rolled back.
    let mut app = h.appender();
    let mut refused = None;
    for i in 0..100 {
        if let Err(e) = app.append(0, &s("boom", i), 1_000, 1.0) {
            refused = Some((i, e));
            break;
        }
    }
    app.rollback();
    let (at, err) = refused.expect("refused");
    assert_eq!(at, 10);
    assert!(matches!(err, AppendError::SeriesLimit(10)));
    // Nothing of it is live: a calm target has all ten.
    let mut app = h.appender();
    for i in 0..10 {
        app.append(0, &s("calm", i), 1_000, 1.0).unwrap();
    }
    app.commit().unwrap();
    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &s("calm", 10), 1_000, 1.0),
        Err(AppendError::SeriesLimit(10))
    ));
    app.rollback();
    // Empty series are bounded: at most twice the limit in all.
    for i in 0..100 {
        let mut app = h.appender();
        let _ = app.append(0, &s("more", i), 1_000, 1.0);
        app.rollback();
    }
    assert!(h.num_series() <= 20, "{}", h.num_series());
    // Truncation removes series that stay empty; the live ones stay.
    h.truncate(0).unwrap();
    h.truncate(0).unwrap();
    assert_eq!(h.num_series(), 10);
    assert_eq!(h.index.read().empty, 0);
}

/// Exemplars within one transaction are checked against each other as against the ring, and
/// a checkpoint carries the ring over a restart.
#[test]
fn exemplars_in_a_transaction_and_through_a_checkpoint() {
    let d = tmp("exemplars");
    let opts = wal::WriteOptions {
        exemplars: true,
        ..Default::default()
    };
    let series = l(&[("__name__", "req_total")]);
    let ex = |t: i64, id: &str| Exemplar {
        labels: l(&[("trace_id", id)]),
        value: 1.0,
        t,
    };
    let all = || vec![vec![Matcher::equal("__name__", "req_total")]];
    {
        let h = Head::open_mode(&d, i64::MIN, true, opts, 10, 0, false).unwrap();
        let mut app = h.appender();
        let r = app.append(0, &series, 1000, 1.0).unwrap();
        app.append_exemplar(r, &series, ex(10, "a")).unwrap();
        // A repeat of the pending newest is a no-op; an older one is out of order.
        app.append_exemplar(r, &series, ex(10, "a")).unwrap();
        assert!(matches!(
            app.append_exemplar(r, &series, ex(5, "b")),
            Err(AppendError::Exemplar(
                vigil_storage::ExemplarError::OutOfOrder
            ))
        ));
        // A series named by labels only (ref 0), as a remote write receiver names it.
        app.append_exemplar(0, &series, ex(20, "c")).unwrap();
        app.commit().unwrap();
        let got = h.exemplars(0, i64::MAX, &all()).unwrap();
        assert_eq!(got[0].exemplars, vec![ex(10, "a"), ex(20, "c")]);
        h.checkpoint(i64::MIN).unwrap();
    }
    let h = Head::open_mode(&d, i64::MIN, true, opts, 10, 0, false).unwrap();
    let got = h.exemplars(0, i64::MAX, &all()).unwrap();
    assert_eq!(got[0].exemplars, vec![ex(10, "a"), ex(20, "c")]);
    // Without the ring nothing is kept, and appending one is not an error.
    let h = Head::in_memory();
    let mut app = h.appender();
    let r = app.append(0, &series, 1000, 1.0).unwrap();
    app.append_exemplar(r, &series, ex(10, "a")).unwrap();
    app.commit().unwrap();
    assert!(h.exemplars(0, i64::MAX, &all()).unwrap().is_empty());
}

/// A staleness marker appended as a float to a series whose newest sample is a histogram
/// (what a scrape writes when a histogram series disappears) is stored as a histogram stale
/// marker, as in Prometheus, and survives a restart as one.
#[test]
fn a_float_stale_marker_on_a_histogram_series_is_a_histogram() {
    use vigil_storage::{Matcher, Storage};
    let d = tmp("stale-histogram");
    let a = l(&[("__name__", "rt_seconds")]);
    let read = |h: &Head| {
        let q = h.querier(i64::MIN, i64::MAX).unwrap();
        let s: Vec<_> = q
            .select(&[Matcher::equal("__name__", "rt_seconds")])
            .unwrap()
            .collect();
        (s[0].samples.len(), s[0].histograms.clone())
    };
    {
        let h = Head::open(&d, i64::MIN).unwrap();
        let mut app = h.appender();
        let hist = vigil_model::FloatHistogram {
            count: 2.0,
            sum: 1.0,
            zero_count: 2.0,
            zero_threshold: 0.001,
            ..Default::default()
        };
        let r = app.append_histogram(0, &a, 1000, hist).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        // By ref, as a scrape marks a series that went away.
        app.append(r, &a, 2000, vigil_model::STALE_NAN).unwrap();
        app.commit().unwrap();
        let (floats, hs) = read(&h);
        assert_eq!(floats, 0);
        assert_eq!(hs.len(), 2);
        assert!(hs[1].is_stale());
    }
    let h = Head::open(&d, i64::MIN).unwrap();
    let (floats, hs) = read(&h);
    assert_eq!((floats, hs.len()), (0, 2));
    assert!(hs[1].is_stale());
}

/// The created-timestamp zero sample: appended once before a series' first sample and after a
/// reset, refused without a trace otherwise (nothing counted out of order, no series refused
/// twice at the series limit), and an empty histogram for a histogram series.
#[test]
fn start_zero_samples_are_a_silent_best_effort() {
    let h = Head::in_memory();
    let c = l(&[("__name__", "c_total")]);
    let mut app = h.appender();
    let r = app.append_start_zero(0, &c, 1000, 5000, None).unwrap();
    let r = app.append(r, &c, 5000, 3.0).unwrap();
    app.commit().unwrap();
    for t in [6000, 7000] {
        let mut app = h.appender();
        let r2 = app.append_start_zero(r, &c, 1000, t, None).unwrap();
        assert_eq!(r2, r);
        app.append(r, &c, t, 4.0).unwrap();
        app.commit().unwrap();
    }
    // A reset: a created timestamp after the newest sample.
    let mut app = h.appender();
    app.append_start_zero(r, &c, 7500, 8000, None).unwrap();
    app.append(r, &c, 8000, 1.0).unwrap();
    // Not before the sample: nothing.
    app.append_start_zero(r, &c, 9000, 9000, None).unwrap();
    app.commit().unwrap();
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let got: Vec<(i64, f64)> = q
        .select(&[vigil_storage::Matcher::equal("__name__", "c_total")])
        .unwrap()
        .flat_map(|s| s.samples)
        .map(|s| (s.t, s.v))
        .collect();
    assert_eq!(
        got,
        [
            (1000, 0.0),
            (5000, 3.0),
            (6000, 4.0),
            (7000, 4.0),
            (7500, 0.0),
            (8000, 1.0)
        ]
    );
    assert_eq!(h.stats.out_of_order.load(Ordering::Relaxed), 0);

    // A histogram series: an empty histogram of the sample's schema, a counter reset.
    let hs = l(&[("__name__", "h")]);
    let sample = vigil_model::FloatHistogram {
        schema: 2,
        zero_threshold: 0.5,
        count: 2.0,
        sum: 1.0,
        positive_spans: vec![vigil_model::histogram::Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![2.0],
        ..Default::default()
    };
    let mut app = h.appender();
    let r = app
        .append_start_zero(0, &hs, 100, 200, Some(&sample))
        .unwrap();
    app.append_histogram(r, &hs, 200, sample.clone()).unwrap();
    app.commit().unwrap();
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let got: Vec<Series> = q
        .select(&[vigil_storage::Matcher::equal("__name__", "h")])
        .unwrap()
        .collect();
    let first = &got[0].histograms[0];
    assert_eq!((first.t, first.h.count, first.h.schema), (100, 0.0, 2));
    assert_eq!(first.h.zero_threshold, 0.5);

    // At the series limit a new series' zero is not attempted: the sample's own refusal is
    // the one counted.
    let h = Head::in_memory();
    h.stats.max_series.store(1, Ordering::Relaxed);
    let mut app = h.appender();
    app.append(0, &c, 1000, 1.0).unwrap();
    let n = l(&[("__name__", "new_total")]);
    assert_eq!(app.append_start_zero(0, &n, 500, 1000, None), Ok(0));
    assert!(matches!(
        app.append(0, &n, 1000, 1.0),
        Err(AppendError::SeriesLimit(1))
    ));
    app.commit().unwrap();
    assert_eq!(h.stats.series_refused.load(Ordering::Relaxed), 1);
}

/// The status page's top lists: the highest counts first, ties in order of the text as
/// printed (`a0=x` before `a=y`, which a (name, value) order would reverse), each list cut
/// at the limit, the totals over everything; checked against every pair counted naively.
#[test]
fn cardinality_top_lists_match_a_naive_count() {
    let h = Head::in_memory();
    let mut app = h.appender();
    let mut all: Vec<Labels> = Vec::new();
    for i in 0..60u32 {
        let mut pairs = vec![
            ("__name__", format!("m{}", i % 7)),
            ("a", format!("{}", i % 4)),
            ("a0", format!("{}", i % 4)),
            ("job", "j".to_string()),
            ("id", i.to_string()),
        ];
        if i % 5 == 0 {
            pairs.push(("zone", format!("z{}", i % 2)));
        }
        let l = Labels::from_pairs(pairs);
        app.append(0, &l, 1000, 1.0).unwrap();
        all.push(l);
    }
    app.commit().unwrap();
    let mut pair_counts: std::collections::BTreeMap<String, u64> = Default::default();
    let mut names: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for l in &all {
        for p in l.iter() {
            *pair_counts
                .entry(format!("{}={}", p.name, p.value))
                .or_default() += 1;
            names
                .entry(p.name.to_string())
                .or_default()
                .insert(p.value.to_string());
        }
    }
    let naive = |v: Vec<(String, u64)>, limit: usize| {
        let mut v = v;
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(limit);
        v
    };
    for limit in [1, 3, 10, 1000] {
        let c = h.cardinality(limit);
        assert_eq!(c.num_series, 60);
        // One open chunk each, counted in ranges of refs.
        assert_eq!(c.chunk_count, 60);
        assert_eq!(c.num_label_pairs, pair_counts.len() as u64);
        assert_eq!(
            c.series_count_by_label_value_pair,
            naive(
                pair_counts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                limit
            ),
            "limit {limit}"
        );
        assert_eq!(
            c.series_count_by_metric_name,
            naive(
                pair_counts
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("__name__=")?.to_string(), *v)))
                    .collect(),
                limit
            )
        );
        assert_eq!(
            c.label_value_count_by_label_name,
            naive(
                names
                    .iter()
                    .map(|(k, v)| (k.clone(), v.len() as u64))
                    .collect(),
                limit
            )
        );
    }
    // `a=0` and `a0=0` both have 15 series: the printed text decides, and '0' (0x30) sorts
    // before '=' (0x3d).
    let c = h.cardinality(1000);
    let pos = |s: &str| {
        c.series_count_by_label_value_pair
            .iter()
            .position(|(k, _)| k == s)
            .unwrap()
    };
    assert!(pos("a0=0") < pos("a=0"));
}

/// Every series' samples, by label set.
fn head_dump(h: &Head) -> std::collections::BTreeMap<String, Vec<(i64, f64)>> {
    h.index
        .read()
        .series
        .values()
        .map(|s| {
            let v = s.samples(i64::MIN, i64::MAX);
            let v: Vec<(i64, f64)> = v.iter().map(|x| (x.t, x.v)).collect();
            (s.labels.to_string(), v)
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The samples the latest checkpoint holds, and which segments are left.
fn wal_state(d: &std::path::Path) -> (usize, Vec<u64>) {
    let wal_dir = d.join("wal");
    let (_, cp) = wal::latest_checkpoint(&wal_dir).unwrap();
    let mut samples = 0;
    if let Some(cp) = cp {
        wal::replay(&cp, |rec| {
            if let Record::Samples(s) = rec {
                samples += s.len();
            }
        })
        .unwrap();
    }
    (samples, wal::segments(&wal_dir).unwrap())
}

/// A head of 50 series, a sample each every 10 ms from `from` to `to`, one commit per step,
/// in segments small enough that each holds a few steps.
fn fill(h: &Head, from: i64, to: i64) {
    for t in (from..to).step_by(10) {
        let mut app = h.appender();
        for i in 0..50 {
            let s = l(&[("__name__", "m"), ("i", &i.to_string())]);
            app.append(0, &s, t, (t + i) as f64).unwrap();
        }
        app.commit().unwrap();
    }
}

/// The head in `d` with segments small enough that each holds a few steps of [`fill`], and
/// chunks ending at multiples of 1,000 ms; samples before `min_valid` are skipped.
fn reopen(d: &std::path::Path, min_valid: i64) -> Head {
    let opts = wal::WriteOptions {
        segment_size: 8 << 10,
        ..wal::WriteOptions::default()
    };
    Head::open_mode(d, min_valid, true, opts, 0, 1_000, false).unwrap()
}

/// A selection decodes its series as they are read, and a truncation meanwhile (a head cut,
/// whose block the reader may not have) first decodes what the reader has not read yet: every
/// series comes whole, from before the cut too, sorted, capped at what was committed when it
/// was listed; a selection listed after the truncation starts at the cut.
#[test]
fn a_truncation_while_a_selection_is_read_leaves_the_reader_whole() {
    use vigil_storage::{Matcher, Storage};
    let h = Head::in_memory();
    // 50 series of 300 samples: more than one decoding batch.
    fill(&h, 0, 3_000);
    let m = [Matcher::equal("__name__", "m")];
    let q = h.querier(0, i64::MAX).unwrap();
    let mut it = q.select_shard(&m, 0, 1).unwrap();
    let first = it.next().unwrap();
    assert_eq!(first.samples.len(), 300);
    // Committed after the listing: not seen by it.
    fill(&h, 3_000, 3_100);
    h.truncate(2_000).unwrap();
    let rest: Vec<Series> = it.collect();
    assert_eq!(rest.len(), 49);
    let mut prev = first.labels.clone();
    for s in &rest {
        assert!(
            s.labels > prev,
            "out of order: {:?} after {prev:?}",
            s.labels
        );
        prev = s.labels.clone();
        assert_eq!(s.samples.len(), 300, "{:?}", s.labels);
        assert_eq!(s.samples.first().map(|x| x.t), Some(0));
        assert_eq!(s.samples.last().map(|x| x.t), Some(2_990));
    }
    // Listed after: the head from the cut on, and the samples committed since.
    let after: Vec<Series> = q.select_shard(&m, 0, 1).unwrap().collect();
    assert_eq!(after.len(), 50);
    assert!(
        after
            .iter()
            .all(|s| s.samples.len() == 110 && s.samples.first().map(|x| x.t) == Some(2_000))
    );
    // Shards split the series and each is read lazily alike.
    let a: usize = (0..3)
        .map(|sh| q.select_shard(&m, sh, 3).unwrap().count())
        .sum();
    assert_eq!(a, 50);
}

/// After a cut, the checkpoint drops the segments whose samples are all before it and keeps
/// only the head's series (no sample is rewritten); the later segments stay, and a restart
/// (replaying from the cut, as a database does past its newest block) has the same head.
#[test]
fn a_checkpoint_drops_old_segments_without_rewriting_samples() {
    let d = tmp("light-checkpoint");
    let h = reopen(&d, i64::MIN);
    fill(&h, 0, 3_000);
    let before = wal_state(&d).1;
    h.truncate(2_000).unwrap();
    let (cp_samples, after) = wal_state(&d);
    assert_eq!(cp_samples, 0, "the checkpoint rewrote samples");
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert!(after.first() > before.first());
    let want = head_dump(&h);
    assert!(
        want.values()
            .all(|v| v.first().unwrap().0 == 2_000 && v.len() == 100)
    );
    drop(h);
    let h = reopen(&d, 2_000);
    assert_eq!(head_dump(&h), want);
    drop(h);
    // With no block to say where the head begins (retention deleted them all), the kept
    // segments' samples before the cut stay out: the checkpoint says where it was.
    let h = reopen(&d, i64::MIN);
    assert_eq!(head_dump(&h), want);
    // And again, from the restarted head: its first checkpoint writes the whole head (it
    // knows nothing of the segments it did not write), the next one drops again.
    fill(&h, 3_000, 4_000);
    h.truncate(3_000).unwrap();
    assert!(
        wal_state(&d).0 > 0,
        "a restarted head's first checkpoint is whole"
    );
    // The segments after the whole checkpoint's cut hold samples from 4,000 on.
    fill(&h, 4_000, 6_000);
    h.truncate(5_000).unwrap();
    assert_eq!(wal_state(&d).0, 0);
    fill(&h, 6_000, 6_500);
    let want = head_dump(&h);
    drop(h);
    let h = reopen(&d, 5_000);
    assert_eq!(head_dump(&h), want);
    let _ = std::fs::remove_dir_all(&d);
}

/// Samples a head holds only through its checkpoint (a series written ahead in time, before
/// a restart whose segments were lost) are carried into the next checkpoint from the cut on,
/// when that one drops segments instead of writing the whole head.
#[test]
fn a_checkpoint_carries_what_only_the_previous_one_holds() {
    let d = tmp("carry-checkpoint");
    let ahead = l(&[("__name__", "ahead")]);
    {
        let h = reopen(&d, i64::MIN);
        for t in (0..5_000).step_by(10) {
            let mut app = h.appender();
            app.append(0, &ahead, t, t as f64).unwrap();
            app.commit().unwrap();
        }
        h.checkpoint(i64::MIN).unwrap();
    }
    for s in wal::segments(&d.join("wal")).unwrap() {
        std::fs::remove_file(wal::segment_path(&d.join("wal"), s)).unwrap();
    }
    let h = reopen(&d, i64::MIN);
    fill(&h, 2_000, 3_000);
    h.truncate(2_500).unwrap();
    assert_eq!(
        wal_state(&d).0,
        250,
        "the ahead series' samples from the cut on"
    );
    let want = head_dump(&h);
    assert_eq!(want[&ahead.to_string()].len(), 250);
    drop(h);
    let h = reopen(&d, 2_500);
    assert_eq!(head_dump(&h), want);
    let _ = std::fs::remove_dir_all(&d);
}

/// A deletion's segment is never dropped with a checkpoint that keeps only series: the
/// segments before it go, it stays (its tombstone replays over the samples logged before it),
/// and once it is the oldest the checkpoint writes the whole head, deletions applied.
#[test]
fn a_deletion_keeps_its_segment_until_a_whole_checkpoint() {
    let d = tmp("pinned-checkpoint");
    let h = reopen(&d, i64::MIN);
    fill(&h, 0, 2_500);
    let seven = |h: &Head| -> Vec<(i64, f64)> {
        head_dump(h)
            .into_iter()
            .find(|(k, _)| k.contains("\"7\""))
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    let gone = vec![Matcher::equal("i", "7")];
    assert_eq!(h.delete(&[gone], 0, 2_800).unwrap(), 1);
    fill(&h, 2_500, 3_000);
    h.truncate(1_000).unwrap();
    assert_eq!(
        wal_state(&d).0,
        0,
        "segments before the deletion's go as they are"
    );
    assert_eq!(seven(&h).first().unwrap().0, 2_500);
    let want = head_dump(&h);
    drop(h);
    let h = reopen(&d, 1_000);
    assert_eq!(head_dump(&h), want, "the deletion replays from its segment");
    drop(h);
    // A fresh process knows nothing of these segments: whole. And within one process, once
    // the deletion's segment is the oldest.
    let h = reopen(&d, i64::MIN);
    fill(&h, 3_000, 4_000);
    h.truncate(2_000).unwrap();
    assert!(wal_state(&d).0 > 0);
    let gone = vec![Matcher::equal("i", "8")];
    assert_eq!(h.delete(&[gone], 3_500, 3_600).unwrap(), 1);
    fill(&h, 4_000, 5_000);
    h.truncate(3_000).unwrap();
    assert!(
        wal_state(&d).0 > 0,
        "the deletion's segment, the oldest, was dropped"
    );
    let want = head_dump(&h);
    let eight = want.iter().find(|(k, _)| k.contains("\"8\"")).unwrap().1;
    assert_eq!(eight.len(), 200 - 11);
    drop(h);
    let h = reopen(&d, 3_000);
    assert_eq!(head_dump(&h), want);
    let _ = std::fs::remove_dir_all(&d);
}

/// The out-of-order window: a float sample older than its series' newest is taken from the
/// head's newest time less the window on (the bound included), and refused as too old before
/// it; without a window it is out of order. A late sample at a time the series holds is
/// dropped (the first stays), and late histograms are refused.
#[test]
fn late_samples_within_the_window_are_kept_and_the_rest_refused() {
    let h = Head::in_memory();
    h.set_out_of_order_window(1_000);
    let x = l(&[("__name__", "x")]);
    let mut app = h.appender();
    for t in (0..=10_000).step_by(1_000) {
        app.append(0, &x, t, t as f64).unwrap();
    }
    app.commit().unwrap();
    let mut app = h.appender();
    assert!(app.append(0, &x, 9_500, 1.0).is_ok());
    assert!(app.append(0, &x, 9_250, 2.0).is_ok());
    assert!(
        app.append(0, &x, 9_000, 3.0).is_ok(),
        "held in order: dropped"
    );
    assert_eq!(app.append(0, &x, 8_999, 4.0), Err(AppendError::TooOld));
    // The newest sample itself: a different value is a duplicate, as without a window.
    assert_eq!(
        app.append(0, &x, 10_000, 5.0),
        Err(AppendError::DuplicateTimestamp)
    );
    // A newer sample in the same transaction, and a late one behind it.
    assert!(app.append(0, &x, 11_000, 6.0).is_ok());
    assert!(app.append(0, &x, 10_500, 7.0).is_ok());
    app.commit().unwrap();
    let mut app = h.appender();
    assert!(app.append(0, &x, 10_500, 8.0).is_ok(), "held late: dropped");
    // The window counts back from the head's newest time, now 11,000.
    assert_eq!(app.append(0, &x, 9_999, 9.0), Err(AppendError::TooOld));
    app.commit().unwrap();
    let q = h.querier(8_000, i64::MAX).unwrap();
    let got: Vec<(i64, f64)> = q
        .select(&[Matcher::equal("__name__", "x")])
        .unwrap()
        .flat_map(|s| s.samples)
        .map(|s| (s.t, s.v))
        .collect();
    assert_eq!(
        got,
        [
            (8_000, 8_000.0),
            (9_000, 9_000.0),
            (9_250, 2.0),
            (9_500, 1.0),
            (10_000, 10_000.0),
            (10_500, 7.0),
            (11_000, 6.0)
        ]
    );
    assert_eq!(h.stats.late_appended.load(Ordering::Relaxed), 3);
    assert_eq!(h.stats.too_old.load(Ordering::Relaxed), 2);
    assert_eq!(h.stats.out_of_order.load(Ordering::Relaxed), 0);
    // A late native histogram after a histogram is taken too (its reset hint made unknown),
    // and a late sample of the other kind is not.
    let hs = l(&[("__name__", "h")]);
    let mut app = h.appender();
    let one = FloatHistogram {
        count: 1.0,
        sum: 1.0,
        hint: vigil_model::histogram::CounterResetHint::NotCounterReset,
        ..Default::default()
    };
    app.append_histogram(0, &hs, 11_000, one.clone()).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    app.append_histogram(0, &hs, 10_900, one).unwrap();
    assert_eq!(
        app.append(0, &hs, 10_800, 1.0),
        Err(AppendError::OutOfOrder)
    );
    assert_eq!(
        app.append_histogram(0, &x, 10_800, FloatHistogram::default()),
        Err(AppendError::OutOfOrder)
    );
    app.commit().unwrap();
    let q = h.querier(0, i64::MAX).unwrap();
    let got: Vec<(i64, vigil_model::histogram::CounterResetHint)> = q
        .select(&[Matcher::equal("__name__", "h")])
        .unwrap()
        .flat_map(|s| s.histograms)
        .map(|s| (s.t, s.h.hint))
        .collect();
    use vigil_model::histogram::CounterResetHint as Hint;
    assert_eq!(got[0], (10_900, Hint::Unknown));
    assert_eq!(got[1].0, 11_000);
    assert_eq!(h.stats.late_appended.load(Ordering::Relaxed), 4);
    // Without a window, a late sample is out of order again.
    h.set_out_of_order_window(0);
    let mut app = h.appender();
    assert_eq!(app.append(0, &x, 10_750, 1.0), Err(AppendError::OutOfOrder));
    assert_eq!(h.stats.out_of_order.load(Ordering::Relaxed), 3);
    drop(app);
}

/// Late samples are in the WAL like any other: a restart replays them (repeats of samples the
/// head holds stay single), a cut drops those before it, and both kinds of checkpoint (the
/// light one that drops segments, and the whole one a restarted head writes first) keep the
/// rest.
#[test]
fn late_samples_survive_restarts_cuts_and_checkpoints() {
    let d = tmp("late");
    let s0 = l(&[("__name__", "m"), ("i", "0")]);
    let late = |h: &Head, ts: &mut dyn Iterator<Item = i64>| {
        h.set_out_of_order_window(1_000_000);
        let mut app = h.appender();
        for t in ts {
            app.append(0, &s0, t, -(t as f64)).unwrap();
        }
        app.commit().unwrap();
    };
    let hs = l(&[("__name__", "hs")]);
    let hist = |h: &Head, ts: &mut dyn Iterator<Item = i64>| {
        let mut app = h.appender();
        for t in ts {
            let v = FloatHistogram {
                count: t as f64,
                ..Default::default()
            };
            app.append_histogram(0, &hs, t, v).unwrap();
        }
        app.commit().unwrap();
    };
    // The histogram series' times and counts.
    let hist_dump = |h: &Head| -> Vec<(i64, f64)> {
        let idx = h.index.read();
        let r = idx.find(&hs).unwrap();
        let v = idx.series[&r].histograms(i64::MIN, i64::MAX);
        v.iter().map(|x| (x.t, x.h.count)).collect()
    };
    let h = reopen(&d, i64::MIN);
    fill(&h, 0, 3_000);
    hist(&h, &mut (0..3_000).step_by(100));
    late(&h, &mut (0..100).map(|k| 5 + 20 * k));
    hist(&h, &mut (0..30).map(|k| 50 + 100 * k));
    // A time the series holds in order, with another value: the first stays.
    late(&h, &mut std::iter::once(100));
    let want = head_dump(&h);
    let s = &want[&s0.to_string()];
    assert_eq!(s.len(), 400);
    assert!(s.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(s[7], (45, -45.0));
    assert_eq!(s[8], (50, 50.0));
    assert_eq!(s.iter().find(|x| x.0 == 100), Some(&(100, 100.0)));
    let want_h = hist_dump(&h);
    assert_eq!(want_h.len(), 60);
    assert!(want_h.iter().all(|x| x.0 as f64 == x.1));
    assert!(want_h.windows(2).all(|w| w[0].0 < w[1].0));
    drop(h);
    let h = reopen(&d, i64::MIN);
    assert_eq!(head_dump(&h), want, "replayed");
    assert_eq!(hist_dump(&h), want_h, "histograms replayed");
    // A cut drops the late samples before it with the rest; the light checkpoint keeps the
    // later ones in their segments.
    h.truncate(1_000).unwrap();
    let want = head_dump(&h);
    assert_eq!(want[&s0.to_string()].len(), 200 + 50);
    let want_h = hist_dump(&h);
    assert_eq!(want_h.len(), 40);
    drop(h);
    let h = reopen(&d, 1_000);
    assert_eq!(head_dump(&h), want, "replayed past the cut");
    assert_eq!(hist_dump(&h), want_h);
    // More late samples, then this restarted head's first checkpoint, which is whole.
    late(&h, &mut (0..50).map(|k| 2_003 + 20 * k));
    fill(&h, 3_000, 4_000);
    h.truncate(2_000).unwrap();
    assert!(wal_state(&d).0 > 0, "a whole checkpoint");
    let want = head_dump(&h);
    assert_eq!(want[&s0.to_string()].len(), 200 + 50);
    let want_h = hist_dump(&h);
    assert_eq!(want_h.len(), 20);
    drop(h);
    let h = reopen(&d, 2_000);
    assert_eq!(head_dump(&h), want, "replayed from a whole checkpoint");
    assert_eq!(hist_dump(&h), want_h);
    let _ = std::fs::remove_dir_all(&d);
}

/// The agent counts the window back from the series' newest sample (exclusive), as
/// Prometheus's agent does: a late sample inside it is logged for remote write, and one
/// outside is out of order.
#[test]
fn the_agent_logs_late_samples_within_the_window_of_their_series() {
    let d = tmp("agent-late");
    let h = Head::open_agent(&d, crate::wal::WriteOptions::default()).unwrap();
    h.set_out_of_order_window(1_000);
    let x = l(&[("__name__", "x")]);
    let y = l(&[("__name__", "y")]);
    let mut app = h.appender();
    app.append(0, &x, 10_000, 1.0).unwrap();
    app.append(0, &y, 50_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    // x's window is its own: y's newer sample does not narrow it.
    assert!(app.append(0, &x, 9_001, 2.0).is_ok());
    assert_eq!(app.append(0, &x, 9_000, 3.0), Err(AppendError::OutOfOrder));
    // The newest time again with another value is within the window too; with the same
    // value it is a repeat, not logged again.
    assert!(app.append(0, &x, 10_000, 4.0).is_ok());
    assert!(app.append(0, &x, 10_000, 1.0).is_ok());
    app.commit().unwrap();
    assert_eq!(h.stats.out_of_order.load(Ordering::Relaxed), 1);
    drop(h);
    let mut logged = Vec::new();
    wal::replay(&d.join("wal"), |rec| {
        if let Record::Samples(s) = rec {
            logged.extend(s.into_iter().map(|x| (x.1, x.2)));
        }
    })
    .unwrap();
    assert_eq!(
        logged,
        [(10_000, 1.0), (50_000, 1.0), (9_001, 2.0), (10_000, 4.0)]
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// An in-order histogram that follows a late one in time had its reset hint made against the
/// sample before it in its chunk: read back, that hint is unknown, so a reader compares it
/// with the late one (a late count of 30 between 10 and 20 makes 20 a reset).
#[test]
fn a_histogram_after_a_late_one_has_its_reset_left_to_the_reader() {
    use vigil_model::histogram::CounterResetHint as Hint;
    let h = Head::in_memory();
    h.set_out_of_order_window(1_000);
    let hs = l(&[("__name__", "h")]);
    let at = |count: f64| FloatHistogram {
        count,
        sum: count,
        ..Default::default()
    };
    let mut app = h.appender();
    app.append_histogram(0, &hs, 100, at(10.0)).unwrap();
    app.append_histogram(0, &hs, 200, at(20.0)).unwrap();
    app.append_histogram(0, &hs, 300, at(25.0)).unwrap();
    app.commit().unwrap();
    let hints = |h: &Head| -> Vec<(i64, Hint)> {
        let q = h.querier(0, i64::MAX).unwrap();
        q.select(&[Matcher::equal("__name__", "h")])
            .unwrap()
            .flat_map(|s| s.histograms)
            .map(|s| (s.t, s.h.hint))
            .collect()
    };
    let before = hints(&h);
    assert_eq!(before[2], (300, Hint::NotCounterReset), "{before:?}");
    let mut app = h.appender();
    app.append_histogram(0, &hs, 150, at(30.0)).unwrap();
    app.commit().unwrap();
    let after = hints(&h);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], (150, Hint::Unknown));
    assert_eq!(after[2], (200, Hint::Unknown));
    assert_eq!(
        after[3],
        (300, Hint::NotCounterReset),
        "its chunk neighbour is in order"
    );
}

/// Late samples under way while in-order samples are appended and the head is cut: every
/// sample acknowledged at or after the last cut is in the head, exactly once, and a restart
/// replays the same head from the WAL.
#[test]
fn late_samples_racing_cuts_are_all_kept_and_replayed() {
    use std::sync::atomic::AtomicI64;
    let d = tmp("late-race");
    let h = reopen(&d, i64::MIN);
    h.set_out_of_order_window(i64::MAX / 4);
    let s = l(&[("__name__", "race")]);
    let newest = AtomicI64::new(-1);
    let cut = AtomicI64::new(i64::MIN);
    let acked: Mutex<Vec<(i64, f64)>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        // In order, every 10 ms; every second of data, the cutter is let catch up to two
        // seconds behind, so cuts land among the appends.
        sc.spawn(|| {
            for t in (0..6_000).step_by(10) {
                if t % 1_000 == 0 && t >= 2_000 {
                    while cut.load(Ordering::SeqCst) < t - 2_000 {
                        std::thread::yield_now();
                    }
                }
                let mut app = h.appender();
                if app.append(0, &s, t, t as f64).is_ok() && app.commit().is_ok() {
                    acked.lock().push((t, t as f64));
                }
                newest.store(t, Ordering::SeqCst);
            }
        });
        // Late, at the odd 5s, about as far behind the newest as the cuts are, so some land
        // just after a cut and some just before.
        sc.spawn(|| {
            let mut t = 5;
            while t < 5_900 {
                if newest.load(Ordering::SeqCst) < (t + 900).min(5_990) {
                    std::thread::yield_now();
                    continue;
                }
                let mut app = h.appender();
                let v = -(t as f64);
                match app.append(0, &s, t, v) {
                    Ok(_) => {
                        if app.commit().is_ok() {
                            acked.lock().push((t, v));
                        }
                    }
                    // Behind a cut that overtook it: refused, not acknowledged.
                    Err(AppendError::OutOfBounds) => {}
                    Err(e) => panic!("{t}: {e}"),
                }
                t += 20;
            }
        });
        // Cuts, well behind the newest, up to 5,000.
        sc.spawn(|| {
            while cut.load(Ordering::SeqCst) < 5_000 {
                let at = (newest.load(Ordering::SeqCst) - 400).div_euclid(1_000) * 1_000;
                if at > cut.load(Ordering::SeqCst) {
                    h.truncate(at).unwrap();
                    cut.store(at, Ordering::SeqCst);
                }
                std::thread::yield_now();
            }
        });
    });
    let last_cut = cut.load(Ordering::SeqCst);
    assert_eq!(last_cut, 5_000);
    let mut want: Vec<(i64, f64)> = acked
        .into_inner()
        .into_iter()
        .filter(|x| x.0 >= last_cut)
        .collect();
    want.sort_by_key(|x| x.0);
    let got = head_dump(&h).remove(&s.to_string()).unwrap_or_default();
    assert_eq!(got, want, "the head holds every acknowledged sample once");
    assert!(want.iter().any(|x| x.1 < 0.0), "late samples were taken");
    drop(h);
    let h = reopen(&d, last_cut);
    assert_eq!(
        head_dump(&h).remove(&s.to_string()).unwrap_or_default(),
        want,
        "replayed"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A sample before the head's range is counted as out of bounds, whether refused when appended
/// or dropped at commit because a cut overtook its transaction (as Prometheus counts both).
#[test]
fn out_of_bounds_samples_are_counted_at_append_and_at_commit() {
    let h = Head::in_memory();
    let x = l(&[("__name__", "x")]);
    let mut app = h.appender();
    app.append(0, &x, 10_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut open = h.appender();
    open.append(0, &x, 11_000, 2.0).unwrap();
    h.truncate(12_000).unwrap();
    open.commit().unwrap();
    assert_eq!(
        h.stats.out_of_bounds.load(Ordering::Relaxed),
        1,
        "dropped at commit"
    );
    let mut app = h.appender();
    assert_eq!(
        app.append(0, &x, 11_500, 3.0),
        Err(AppendError::OutOfBounds)
    );
    assert_eq!(h.stats.out_of_bounds.load(Ordering::Relaxed), 2);
}

/// Every record of the WAL (or checkpoint) in `dir`, in order.
fn records(dir: &std::path::Path) -> Vec<Record> {
    let mut out = Vec::new();
    wal::replay_from_with(dir, 0, false, &mut |_: &Record| {}, |r| out.push(r)).unwrap();
    out
}

/// The version in the header of segment `n` of `dir`.
fn segment_version(dir: &std::path::Path, n: u64) -> u32 {
    let b = std::fs::read(wal::segment_path(dir, n)).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// `metadata-wal-records`: a series' metadata is logged when it differs from what the head
/// holds (after the series records, before the samples; a commit of metadata alone too), comes
/// back at replay so a restart does not log it again, is kept (the latest only) by a
/// checkpoint, and goes with its series. Without the feature nothing is kept or logged.
#[test]
fn series_metadata_is_logged_on_change_and_kept_through_restarts() {
    use vigil_model::exposition::MetricType;
    use vigil_storage::Metadata;
    let d = tmp("metadata");
    let opts = wal::WriteOptions {
        metadata: true,
        ..Default::default()
    };
    let open = || Head::open_mode(&d, i64::MIN, true, opts, 0, 0, false).unwrap();
    let a = l(&[("__name__", "req_total"), ("instance", "a")]);
    let b = l(&[("__name__", "req_total"), ("instance", "b")]);
    let meta = |help: &str| {
        Arc::new(Metadata {
            kind: MetricType::Counter,
            unit: "requests".into(),
            help: help.into(),
        })
    };
    let logged = |dir: &std::path::Path| -> Vec<(u64, String)> {
        records(dir)
            .into_iter()
            .filter_map(|r| match r {
                Record::Metadata(m) => Some(m),
                _ => None,
            })
            .flatten()
            .map(|(r, m)| (r, m.help.clone()))
            .collect()
    };
    let wal_dir = d.join("wal");
    let (ra, rb) = {
        let h = open();
        let mut app = h.appender();
        let ra = app.append(0, &a, 1000, 1.0).unwrap();
        app.update_metadata(ra, &a, &meta("old")).unwrap();
        app.update_metadata(ra, &a, &meta("A")).unwrap();
        let rb = app.append(0, &b, 1000, 1.0).unwrap();
        app.update_metadata(rb, &b, &meta("B")).unwrap();
        app.commit().unwrap();
        // The same again logs nothing; a change named by labels only (ref 0) is logged, in
        // a commit without samples.
        let mut app = h.appender();
        app.append(ra, &a, 2000, 2.0).unwrap();
        app.update_metadata(ra, &a, &meta("A")).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        app.update_metadata(0, &b, &meta("B2")).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        let unknown = l(&[("__name__", "nope")]);
        assert!(matches!(
            app.update_metadata(0, &unknown, &meta("x")),
            Err(AppendError::InvalidLabels(_))
        ));
        app.rollback();
        assert_eq!(h.series_metadata(rb).unwrap().help, "B2");
        (ra, rb)
    };
    // One transaction's last metadata of a series wins.
    assert_eq!(
        logged(&wal_dir),
        vec![(ra, "A".into()), (rb, "B".into()), (rb, "B2".into())]
    );
    // Series, then metadata, then samples.
    let kinds: Vec<&str> = records(&wal_dir)
        .iter()
        .map(|r| match r {
            Record::Series(_) => "series",
            Record::Metadata(_) => "metadata",
            Record::Samples(_) => "samples",
            _ => "other",
        })
        .collect();
    assert_eq!(
        &kinds[..4],
        &["series", "metadata", "samples", "samples"],
        "{kinds:?}"
    );
    assert_eq!(segment_version(&wal_dir, 0), wal::METADATA_VERSION);
    {
        let h = open();
        assert_eq!(*h.series_metadata(ra).unwrap(), *meta("A"));
        assert_eq!(h.series_metadata(rb).unwrap().help, "B2");
        // Replayed, so a scrape after the restart giving the same logs nothing.
        let mut app = h.appender();
        app.append(ra, &a, 3000, 3.0).unwrap();
        app.update_metadata(ra, &a, &meta("A")).unwrap();
        app.commit().unwrap();
        assert_eq!(logged(&wal_dir).len(), 3);
        // A checkpoint holds each series' latest only, and the segments it covers go.
        h.checkpoint(i64::MIN).unwrap();
        let (_, cp) = wal::latest_checkpoint(&wal_dir).unwrap();
        let cp = cp.expect("a checkpoint");
        assert_eq!(logged(&cp), vec![(ra, "A".into()), (rb, "B2".into())]);
        assert_eq!(segment_version(&cp, 0), wal::METADATA_VERSION);
    }
    {
        let h = open();
        assert_eq!(h.series_metadata(rb).unwrap().help, "B2");
        // A series removed (two truncations find it empty) takes its metadata with it.
        h.truncate(2500).unwrap();
        h.truncate(2500).unwrap();
        assert!(h.series_metadata(rb).is_none());
        assert_eq!(h.series_metadata(ra).unwrap().help, "A");
    }
    // Without the feature: accepted, neither kept nor logged, and the segments stay at the
    // version an older build reads.
    let d2 = tmp("metadata-off");
    {
        let h = Head::open(&d2, i64::MIN).unwrap();
        let mut app = h.appender();
        let r = app.append(0, &a, 1000, 1.0).unwrap();
        assert_eq!(app.update_metadata(r, &a, &meta("A")), Ok(r));
        app.commit().unwrap();
        assert!(h.series_metadata(r).is_none());
    }
    assert!(logged(&d2.join("wal")).is_empty());
    assert!(segment_version(&d2.join("wal"), 0) < wal::METADATA_VERSION);
}

/// A light checkpoint drops the segments that logged the series' metadata: it holds every
/// series' metadata itself, so a restart still has it; so does the agent's checkpoint.
#[test]
fn light_and_agent_checkpoints_keep_series_metadata() {
    use vigil_model::exposition::MetricType;
    let meta = Arc::new(vigil_storage::Metadata {
        kind: MetricType::Gauge,
        unit: String::new(),
        help: "M.".into(),
    });
    let opts = wal::WriteOptions {
        segment_size: 8 << 10,
        metadata: true,
        ..wal::WriteOptions::default()
    };
    let series = |i: usize| l(&[("__name__", "m"), ("i", &i.to_string())]);
    let with_meta = |h: &Head| {
        let mut app = h.appender();
        for i in 0..50 {
            let r = app.append(0, &series(i), 0, 0.0).unwrap();
            app.update_metadata(r, &series(i), &meta).unwrap();
        }
        app.commit().unwrap();
    };
    let all_have_it = |h: &Head| {
        let idx = h.index.read();
        assert_eq!(idx.series.len(), 50);
        assert!(
            idx.series
                .keys()
                .all(|r| idx.metadata.get(r) == Some(&meta))
        );
        // Replayed series of one family share one handle.
        let first = idx.metadata.values().next().unwrap();
        assert!(idx.metadata.values().all(|m| Arc::ptr_eq(m, first)));
    };
    let d = tmp("light-checkpoint-metadata");
    let h = Head::open_mode(&d, i64::MIN, true, opts, 0, 1_000, false).unwrap();
    with_meta(&h);
    fill(&h, 10, 3_000);
    let before = wal_state(&d).1;
    h.truncate(2_000).unwrap();
    let (cp_samples, after) = wal_state(&d);
    assert_eq!(cp_samples, 0, "a light checkpoint");
    assert!(after.first() > before.first(), "{before:?} -> {after:?}");
    drop(h);
    let h = Head::open_mode(&d, 2_000, true, opts, 0, 1_000, false).unwrap();
    all_have_it(&h);
    drop(h);
    // Without the feature, what the WAL holds is not applied.
    let off = wal::WriteOptions {
        metadata: false,
        ..opts
    };
    let h = Head::open_mode(&d, 2_000, true, off, 0, 1_000, false).unwrap();
    assert!(h.index.read().metadata.is_empty());
    drop(h);

    let d = tmp("agent-checkpoint-metadata");
    let h = Head::open_agent(&d, opts).unwrap();
    with_meta(&h);
    fill(&h, 10, 3_000);
    h.truncate_agent(u64::MAX, i64::MIN).unwrap();
    let wal_dir = d.join("wal");
    let (_, cp) = wal::latest_checkpoint(&wal_dir).unwrap();
    let held: usize = records(&cp.expect("an agent checkpoint"))
        .into_iter()
        .map(|r| match r {
            Record::Metadata(m) => m.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(held, 50);
    drop(h);
    let h = Head::open_agent(&d, opts).unwrap();
    all_have_it(&h);
    let _ = std::fs::remove_dir_all(&d);
}

/// Old samples (older than the head's start, within the window) are held apart and logged by
/// labels; a light checkpoint that drops the segment logging them writes them itself, so a
/// restart still holds them, and so does a head snapshot. Native histograms alike (a
/// histogram's count stands for it below), also in a series that has old floats too.
#[test]
fn old_samples_survive_the_checkpoint_that_drops_their_segment() {
    let d = tmp("old-samples-checkpoint");
    let h = reopen(&d, i64::MIN);
    h.set_out_of_order_window(10_000);
    fill(&h, 0, 3_000);
    h.truncate(2_000).unwrap();
    let old = l(&[("__name__", "old")]);
    let histogram = |count: f64| FloatHistogram {
        count,
        sum: count,
        ..Default::default()
    };
    let mut app = h.appender();
    app.append(0, &old, 1_500, 15.0).unwrap();
    app.append_histogram(0, &old, 1_400, histogram(3.0))
        .unwrap();
    app.append_histogram(0, &l(&[("__name__", "oldh")]), 1_200, histogram(4.0))
        .unwrap();
    app.commit().unwrap();
    assert!(
        wal::may_hold(&d.join("wal"), wal::OLD_HISTOGRAMS_VERSION).unwrap(),
        "segments of version 8 log old histograms"
    );
    let mut app = h.appender();
    app.append_histogram(0, &l(&[("__name__", "oldh")]), 1_100, histogram(2.0))
        .unwrap();
    app.commit().unwrap();
    let held = |h: &Head| -> Vec<(String, i64, f64)> {
        let mut v: Vec<(String, i64, f64)> = h
            .old_stores()
            .iter()
            .flat_map(|s| s.series_in_sorted(i64::MIN, i64::MAX).collect::<Vec<_>>())
            .flat_map(|s| {
                let name = s.labels.get("__name__").unwrap_or("").to_string();
                let hs: Vec<(String, i64, f64)> = s
                    .histograms
                    .iter()
                    .map(|x| (format!("{name} histogram"), x.t, x.h.count))
                    .collect();
                s.samples
                    .into_iter()
                    .map(move |x| (name.clone(), x.t, x.v))
                    .chain(hs)
            })
            .collect();
        v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        v
    };
    let want = vec![
        ("old".to_string(), 1_500, 15.0),
        ("old histogram".to_string(), 1_400, 3.0),
        ("oldh histogram".to_string(), 1_100, 2.0),
        ("oldh histogram".to_string(), 1_200, 4.0),
    ];
    assert_eq!(held(&h), want);
    assert!(
        h.index
            .read()
            .series
            .values()
            .all(|s| s.samples(0, 1_999).is_empty())
    );
    let first = wal::segments(&d.join("wal")).unwrap()[0];
    fill(&h, 3_000, 5_000);
    h.truncate(4_000).unwrap();
    assert!(
        wal::segments(&d.join("wal")).unwrap()[0] > first + 5,
        "the segments up to the cut went"
    );
    // The checkpoint that dropped them says it may hold old histograms.
    let (_, cp) = wal::latest_checkpoint(&d.join("wal")).unwrap();
    let header = std::fs::read(cp.expect("a checkpoint").join("00000000")).unwrap();
    assert_eq!(
        u32::from_le_bytes(header[8..12].try_into().unwrap()),
        wal::OLD_HISTOGRAMS_VERSION
    );
    drop(h);
    let h = reopen(&d, 4_000);
    assert_eq!(held(&h), want);
    h.write_snapshot().unwrap().expect("a snapshot");
    drop(h);
    let opts = wal::WriteOptions {
        segment_size: 8 << 10,
        ..wal::WriteOptions::default()
    };
    let h = Head::open_mode(&d, 4_000, true, opts, 0, 1_000, true).unwrap();
    assert!(h.stats.snapshot_loaded.load(Ordering::Relaxed));
    assert_eq!(held(&h), want);
    // Written out: the store is empty, and what comes next goes to a new one.
    let (store, leftover) = h.begin_old_flush().unwrap();
    assert!(!leftover);
    assert_eq!(store.time_range(), Some((1_100, 1_500)));
    h.end_old_flush();
    assert!(!h.holds_old());
    // The WAL still logs it (a deletion must checkpoint), also after a start from a snapshot
    // written with nothing held, which replays none of it.
    assert!(h.old_in_wal());
    h.write_snapshot().unwrap().expect("a snapshot");
    drop(h);
    let h = Head::open_mode(&d, 4_000, true, opts, 0, 1_000, true).unwrap();
    assert!(h.stats.snapshot_loaded.load(Ordering::Relaxed));
    assert!(!h.holds_old());
    assert!(h.old_in_wal());
    // A whole checkpoint with nothing held drops every record of them.
    h.checkpoint_all().unwrap();
    assert!(!h.old_in_wal());
    drop(h);
    let h = reopen(&d, 4_000);
    assert!(!h.holds_old() && !h.old_in_wal());
    let _ = std::fs::remove_dir_all(&d);
}

/// A float or native histogram appended within the head's range whose range is cut before
/// the commit (the head's start passes it) is an old sample at commit, within the window;
/// without a window it is out of bounds, as before.
#[test]
fn a_sample_a_cut_overtakes_becomes_an_old_sample() {
    for window in [10_000, 0] {
        let h = Head::in_memory();
        h.set_out_of_order_window(window);
        let s = l(&[("__name__", "m")]);
        let mut app = h.appender();
        app.append(0, &s, 5_000, 1.0).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        app.append(0, &s, 6_000, 2.0).unwrap();
        h.raise_min_valid(7_000);
        app.commit().unwrap();
        let held: Vec<i64> = h
            .old_stores()
            .iter()
            .flat_map(|o| o.series_in_sorted(i64::MIN, i64::MAX).collect::<Vec<_>>())
            .flat_map(|x| x.samples.into_iter().map(|y| y.t))
            .collect();
        if window > 0 {
            assert_eq!(held, vec![6_000]);
            assert_eq!(h.stats.out_of_bounds.load(Ordering::Relaxed), 0);
        } else {
            assert!(held.is_empty());
            assert_eq!(h.stats.out_of_bounds.load(Ordering::Relaxed), 1);
        }
        // A native histogram alike.
        let hs = l(&[("__name__", "h")]);
        let one = FloatHistogram {
            count: 1.0,
            sum: 1.0,
            ..Default::default()
        };
        let mut app = h.appender();
        app.append_histogram(0, &hs, 8_000, one.clone()).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        app.append_histogram(0, &hs, 9_000, one).unwrap();
        h.raise_min_valid(10_000);
        app.commit().unwrap();
        let held: Vec<i64> = h
            .old_stores()
            .iter()
            .flat_map(|o| o.series_in_sorted(i64::MIN, i64::MAX).collect::<Vec<_>>())
            .flat_map(|x| x.histograms.into_iter().map(|y| y.t))
            .collect();
        if window > 0 {
            assert_eq!(held, vec![9_000]);
            assert_eq!(h.stats.out_of_bounds.load(Ordering::Relaxed), 0);
        } else {
            assert!(held.is_empty());
            assert_eq!(h.stats.out_of_bounds.load(Ordering::Relaxed), 2);
        }
    }
}

/// A full chunk copied out to be written, then rebuilt before its place is put in (a
/// deletion re-encoding it with the same range and length), keeps its new bytes in memory:
/// the place of the old ones is not put in. An unchanged one is read back from its file.
#[test]
fn a_chunk_rebuilt_while_written_keeps_its_new_bytes() {
    let d = tmp("mapped-install");
    let h = reopen(&d, i64::MIN);
    let (a, b) = (l(&[("__name__", "a")]), l(&[("__name__", "b")]));
    for t in 0..130 {
        let mut app = h.appender();
        app.append(0, &a, t * 10, t as f64).unwrap();
        app.append(0, &b, t * 10, t as f64).unwrap();
        app.commit().unwrap();
    }
    let mut idx = h.index.write();
    let w = idx.take_listed();
    assert_eq!(w.lens.len(), 2, "one full chunk each");
    let ra = idx.find(&a).unwrap();
    let rb = idx.find(&b).unwrap();
    let c = idx
        .series
        .get_mut(&ra)
        .unwrap()
        .chunks
        .as_deref_mut()
        .unwrap();
    let mut other = c.closed[0].data.to_vec();
    let last = other.len() - 1;
    other[last] ^= 1;
    c.closed[0].data = other.clone().into();
    let files = idx
        .mapped
        .clone()
        .expect("a writable head writes its chunks");
    let placed = files.store(&w.buf, &w.lens).unwrap();
    idx.install(w, placed);
    let ca = idx.series[&ra].chunks.as_deref().unwrap();
    assert!(ca.closed[0].data.is_heap());
    assert_eq!(&ca.closed[0].data[..], &other[..]);
    let cb = idx.series[&rb].chunks.as_deref().unwrap();
    assert!(
        !cb.closed[0].data.is_heap(),
        "b's chunk now read from its file"
    );
    drop(idx);
    let q = h.querier(0, i64::MAX).unwrap();
    let got: Vec<f64> = q
        .select(&[Matcher::equal("__name__", "b")])
        .unwrap()
        .flat_map(|s| s.samples.into_iter().map(|x| x.v))
        .collect();
    assert_eq!(got, (0..130).map(|t| t as f64).collect::<Vec<_>>());
    drop(q);
    drop(h);
    let _ = std::fs::remove_dir_all(&d);
}

/// Chunks a deletion or a cut rebuilds in memory go back to the chunk files: after each, no
/// series keeps a full chunk on the heap, and the samples read are those left.
#[test]
fn chunks_rebuilt_by_a_deletion_or_a_cut_go_back_to_the_files() {
    let d = tmp("mapped-rebuilt");
    let h = reopen(&d, i64::MIN);
    let a = l(&[("__name__", "a")]);
    for t in 0..500 {
        let mut app = h.appender();
        app.append(0, &a, t * 10, t as f64).unwrap();
        app.commit().unwrap();
    }
    h.write_chunks(true);
    let heap = |h: &Head| {
        let idx = h.index.read();
        idx.series
            .values()
            .map(|s| s.heap_chunks().count())
            .sum::<usize>()
    };
    let closed = |h: &Head| {
        let idx = h.index.read();
        idx.series
            .values()
            .map(|s| s.chunks.as_deref().map_or(0, |c| c.closed.len()))
            .sum::<usize>()
    };
    let values = |h: &Head| -> Vec<f64> {
        let q = h.querier(i64::MIN, i64::MAX).unwrap();
        q.select(&[Matcher::equal("__name__", "a")])
            .unwrap()
            .flat_map(|s| s.samples.into_iter().map(|x| x.v))
            .collect()
    };
    assert!(closed(&h) >= 3, "several full chunks");
    assert_eq!(heap(&h), 0, "all written out");
    // A deletion in the middle rebuilds the series in memory.
    h.delete(&[vec![Matcher::equal("__name__", "a")]], 1_000, 1_990)
        .unwrap();
    assert!(closed(&h) >= 2);
    assert_eq!(heap(&h), 0, "the rebuilt chunks are written out");
    let want: Vec<f64> = (0..500)
        .filter(|t| !(100..200).contains(t))
        .map(|t| t as f64)
        .collect();
    assert_eq!(values(&h), want);
    // A cut through a full chunk re-encodes it from the cut on.
    h.truncate(2_505).unwrap();
    assert!(closed(&h) >= 1);
    assert_eq!(heap(&h), 0, "the re-encoded chunk is written out");
    let want: Vec<f64> = (251..500).map(|t| t as f64).collect();
    assert_eq!(values(&h), want);
    drop(h);
    let _ = std::fs::remove_dir_all(&d);
}

/// Native histogram chunks close by their size, not at block ranges, so a block cut (at a
/// range's end, as `Db` cuts) goes across one and re-encodes the series' histogram chunks:
/// they go back to the files too, and read back whole.
#[test]
fn histogram_chunks_a_block_cut_re_encodes_go_back_to_the_files() {
    let d = tmp("mapped-rebuilt-hist");
    let h = reopen(&d, i64::MIN);
    let hs = l(&[("__name__", "h")]);
    let at = |count: f64| FloatHistogram {
        count,
        sum: count,
        ..Default::default()
    };
    for t in 0..1_000 {
        let mut app = h.appender();
        app.append_histogram(0, &hs, t * 10, at(t as f64)).unwrap();
        app.commit().unwrap();
    }
    h.write_chunks(true);
    let chunks = |h: &Head| {
        let idx = h.index.read();
        let s = idx.series.values().next().unwrap();
        let closed = s
            .chunks
            .as_deref()
            .and_then(|c| c.hist())
            .map_or(0, |x| x.closed.len());
        (closed, s.heap_chunks().count())
    };
    let (closed, heap) = chunks(&h);
    assert!(
        closed >= 2 && heap == 0,
        "{closed} closed, {heap} in memory"
    );
    // A cut at a block range's end that falls inside a histogram chunk.
    let cut = 4_000;
    {
        let idx = h.index.read();
        let c = idx
            .series
            .values()
            .next()
            .unwrap()
            .chunks
            .as_deref()
            .unwrap();
        let straddled = c
            .hist()
            .unwrap()
            .closed
            .iter()
            .any(|x| x.min_t < cut && x.max_t >= cut);
        assert!(straddled, "the cut goes across a closed histogram chunk");
    }
    h.truncate(cut).unwrap();
    let (closed, heap) = chunks(&h);
    assert!(closed >= 1, "re-encoded closed chunks remain");
    assert_eq!(heap, 0, "the re-encoded chunks are written out");
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let counts: Vec<f64> = q
        .select(&[Matcher::equal("__name__", "h")])
        .unwrap()
        .flat_map(|s| s.histograms.into_iter().map(|x| x.h.count))
        .collect();
    assert_eq!(counts, (400..1_000).map(|t| t as f64).collect::<Vec<_>>());
    drop(q);
    drop(h);
    let _ = std::fs::remove_dir_all(&d);
}

/// A head whose chunks stay in memory (no files) keeps them through cuts and deletions.
#[test]
fn chunks_stay_in_memory_where_nothing_maps_them() {
    let h = Head::in_memory();
    let a = l(&[("__name__", "a")]);
    for t in 0..500 {
        let mut app = h.appender();
        app.append(0, &a, t * 10, t as f64).unwrap();
        app.commit().unwrap();
    }
    h.delete(&[vec![Matcher::equal("__name__", "a")]], 1_000, 1_990)
        .unwrap();
    h.truncate(2_505).unwrap();
    let idx = h.index.read();
    let s = idx.series.values().next().unwrap();
    assert!(s.heap_chunks().count() >= 1, "in memory, as before");
}
