//! The agent's storage (`--agent`): samples go to the WAL only, the head keeps series and
//! each one's newest sample, and the WAL is truncated only up to what remote write has
//! passed, keeping the series in a checkpoint.

use std::path::PathBuf;

use vigil_model::Labels;
use vigil_storage::{Journal, JournalRecord, Matcher, Storage};
use vigil_tsdb::db::{Db, Options};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-agent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn labels(i: u32) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

fn append(db: &Db, t: i64) {
    let mut app = db.appender();
    for i in 0..10 {
        app.append(0, &labels(i), t, t as f64).unwrap();
    }
    app.commit().unwrap();
}

/// Every record a fresh reader of the journal hands over: series and samples.
fn read_all(db: &Db) -> (usize, Vec<(u64, i64, f64)>) {
    let mut r = db.follow().unwrap();
    let (mut series, mut samples) = (0, Vec::new());
    loop {
        let p = r
            .poll(1000, &mut |rec, _| match rec {
                JournalRecord::Series(s) => series += s.len(),
                JournalRecord::Samples(s) => samples.extend(s),
                JournalRecord::Live { .. }
                | JournalRecord::Exemplars(_)
                | JournalRecord::Metadata(_)
                | JournalRecord::Histograms(_) => {}
            })
            .unwrap();
        if p.records == 0 {
            break;
        }
    }
    (series, samples)
}

#[test]
fn samples_live_in_the_wal_only_and_truncation_keeps_series() {
    let d = dir("wal-only");
    let db = Db::open_agent(&d, Options::new(0, 0)).unwrap();
    for t in [1000, 2000, 3000] {
        append(&db, t);
    }
    // Nothing to query: the agent holds no samples in memory.
    {
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(
            q.select(&[Matcher::equal("__name__", "m")])
                .unwrap()
                .count(),
            0
        );
    }
    // Every sample is in the WAL, for remote write.
    let (series, samples) = read_all(&db);
    assert_eq!(series, 10);
    assert_eq!(samples.len(), 30);
    // The newest sample still guards the order: an older one is refused.
    let mut app = db.appender();
    assert!(app.append(0, &labels(0), 500, 1.0).is_err());
    app.rollback();

    // Nothing is passed by remote write yet (keep from segment 0): nothing is dropped.
    assert_eq!(db.truncate_agent(0, i64::MIN).unwrap(), None);
    assert_eq!(read_all(&db).1.len(), 30);
    // Everything is passed: the segments go, the series stay in a checkpoint.
    // (The first call closed segment 0; this one closes segment 1 and drops both.)
    let dropped = db.truncate_agent(u64::MAX, i64::MIN).unwrap();
    assert_eq!(dropped, Some(1));
    let (series, samples) = read_all(&db);
    assert_eq!((series, samples.len()), (10, 0));
    append(&db, 4000);
    assert_eq!(read_all(&db).1.len(), 10);
    drop(db);

    // Reopened: the series and their newest samples come back from the checkpoint and WAL.
    let db = Db::open_agent(&d, Options::new(0, 0)).unwrap();
    let mut app = db.appender();
    assert!(
        app.append(0, &labels(3), 3500, 1.0).is_err(),
        "order kept across restart"
    );
    app.rollback();
    append(&db, 5000);
    let (series, samples) = read_all(&db);
    assert_eq!(series, 10, "same refs: no series written twice");
    assert_eq!(samples.len(), 20);
    // No block directory is ever written.
    let blocks = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().len() == 26)
        .count();
    assert_eq!(blocks, 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn idle_series_are_forgotten_after_two_truncations() {
    let d = dir("gc");
    let db = Db::open_agent(&d, Options::new(0, 0)).unwrap();
    append(&db, 1000);
    let mut app = db.appender();
    app.append(0, &labels(99), 9000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(db.head().num_series(), 11);
    // Idle since before 5000: marked by the first truncation, removed by the second.
    db.truncate_agent(u64::MAX, 5000).unwrap();
    assert_eq!(db.head().num_series(), 11);
    db.truncate_agent(u64::MAX, 5000).unwrap();
    assert_eq!(db.head().num_series(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

/// With exemplar storage on, the agent logs each new exemplar in the WAL for remote write
/// (a repeat of a series' last is not), and keeps none in memory.
#[test]
fn exemplars_are_logged_once_each() {
    let d = dir("exemplars");
    let mut o = Options::new(0, 0);
    o.wal.exemplars = true;
    let db = Db::open_agent(&d, o).unwrap();
    let ex = |t: i64, id: &str| vigil_storage::Exemplar {
        labels: Labels::from_pairs([("trace_id", id.to_string())]),
        value: 1.0,
        t,
    };
    for (t, id) in [(1000, "a"), (2000, "a"), (3000, "b")] {
        let mut app = db.appender();
        let r = app.append(0, &labels(0), t, 1.0).unwrap();
        // The client repeats its last exemplar until it records another.
        let e = if id == "a" { ex(1000, id) } else { ex(t, id) };
        app.append_exemplar(r, &labels(0), e).unwrap();
        app.commit().unwrap();
    }
    let mut r = db.follow().unwrap();
    let mut got = Vec::new();
    loop {
        let p = r
            .poll(1000, &mut |rec, _| {
                if let JournalRecord::Exemplars(e) = rec {
                    got.extend(e.into_iter().map(|(_, e)| (e.t, e.labels)));
                }
            })
            .unwrap();
        if p.records == 0 {
            break;
        }
    }
    let ids: Vec<(i64, String)> = got
        .into_iter()
        .map(|(t, l)| (t, l.get("trace_id").unwrap_or("").to_string()))
        .collect();
    assert_eq!(ids, [(1000, "a".to_string()), (3000, "b".to_string())]);
    assert!(
        db.exemplars(0, i64::MAX, &[vec![Matcher::equal("__name__", "m")]])
            .unwrap()
            .is_empty()
    );
}

/// A journal reader (remote write) gets the head's own label sets, not copies decoded from
/// the log: a queue keeps no second copy of every series' labels.
#[test]
fn the_journal_hands_out_the_heads_label_sets() {
    let d = dir("shared-labels");
    let db = Db::open_agent(&d, Options::new(0, 0)).unwrap();
    append(&db, 1000);
    let mut r = db.follow().unwrap();
    let mut got = Vec::new();
    r.poll(1000, &mut |rec, _| {
        if let JournalRecord::Series(s) = rec {
            got.extend(s);
        }
    })
    .unwrap();
    assert_eq!(got.len(), 10);
    // Shared: the head holds the other handle of each.
    assert!(got.iter().all(|(_, l)| l.is_shared()), "{got:?}");
    // Without the head (the log read on its own), each is a fresh copy.
    let mut r = vigil_tsdb::journal::follow(&d.join("wal")).unwrap();
    let mut alone = Vec::new();
    r.poll(1000, &mut |rec, _| {
        if let JournalRecord::Series(s) = rec {
            alone.extend(s);
        }
    })
    .unwrap();
    assert_eq!(alone.len(), 10);
    assert!(alone.iter().all(|(_, l)| !l.is_shared()));
}
