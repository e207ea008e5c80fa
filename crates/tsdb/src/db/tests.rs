//! Tests of `db`.

use super::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-db-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ingest(db: &Db, from_h: i64, to_h: i64, step_ms: i64) {
    let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let mut t = from_h * HOUR_MS;
    while t < to_h * HOUR_MS {
        let mut app = db.appender();
        app.append(0, &l, t, (t / 1000) as f64).unwrap();
        app.commit().unwrap();
        t += step_ms;
    }
}

fn all(db: &Db) -> Vec<Sample> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    q.select(&[Matcher::equal("__name__", "x")])
        .unwrap()
        .flat_map(|s| s.samples)
        .collect()
}

#[test]
fn min_block_duration_sets_the_cut_range() {
    let d = tmp("minblock");
    let opts = Options::new(0, 0).with_block_range(HOUR_MS / 2, Some(HOUR_MS / 2));
    let db = Db::open(&d, opts).unwrap();
    ingest(&db, 0, 3, 60_000);
    db.maintain().unwrap();
    let blocks = db.blocks();
    assert!(blocks.len() >= 3, "{} blocks", blocks.len());
    // max-block-duration equal to the min: nothing is compacted beyond 30m.
    assert!(
        blocks
            .iter()
            .all(|b| b.meta.max_time - b.meta.min_time == HOUR_MS / 2)
    );
    assert_eq!(all(&db).len(), 3 * 60);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn block_format_prometheus_writes_and_compacts_prometheus_blocks() {
    let d = tmp("promformat");
    let mut opts = Options::new(0, 0).with_block_range(HOUR_MS / 2, Some(3 * HOUR_MS / 2));
    opts.block_format = BlockFormat::Prometheus;
    let db = Db::open(&d, opts.clone()).unwrap();
    ingest(&db, 0, 4, 60_000);
    db.maintain().unwrap();
    let blocks = db.blocks();
    assert!(blocks.len() >= 2, "{} blocks", blocks.len());
    assert!(
        blocks
            .iter()
            .all(|b| b.format == crate::block::Format::Prometheus(2)),
        "every block cut or compacted is in Prometheus's format"
    );
    // The 1.5h compaction merged the first three half-hour blocks.
    assert!(blocks.iter().any(|b| b.meta.compaction.level == 2));
    assert_eq!(all(&db).len(), 4 * 60);
    drop(db);
    // And read back after a restart.
    let db = Db::open(&d, opts).unwrap();
    assert_eq!(all(&db).len(), 4 * 60);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn head_is_cut_into_blocks_and_everything_stays_queryable_across_restarts() {
    let d = tmp("cut");
    let opts = Options::new(0, 0);
    {
        let db = Db::open(&d, opts.clone()).unwrap();
        ingest(&db, 0, 7, 60_000);
        db.maintain().unwrap();
        assert!(!db.blocks().is_empty(), "blocks were cut");
        let (lo, _) = db.head().time_range().unwrap();
        assert!(lo >= 2 * HOUR_MS, "head truncated");
        assert_eq!(all(&db).len(), 7 * 60);
        // Samples inside block ranges are now out of bounds.
        let mut app = db.appender();
        let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        assert_eq!(
            app.append(0, &l, 10, 1.0),
            Err(vigil_storage::AppendError::OutOfBounds)
        );
    }
    let db = Db::open(&d, opts).unwrap();
    let s = all(&db);
    assert_eq!(
        s.len(),
        7 * 60,
        "blocks + checkpoint + WAL replay give every sample once"
    );
    assert!(s.windows(2).all(|w| w[0].t < w[1].t));
}

#[test]
fn merge_streams_series_in_label_order_across_blocks() {
    let d = tmp("merge-stream");
    std::fs::create_dir_all(&d).unwrap();
    let l = |job: &str| Labels::from_pairs([("__name__", "x"), ("job", job)]);
    let s = |pairs: &[(i64, f64)]| -> Vec<Sample> {
        pairs.iter().map(|&(t, v)| Sample { t, v }).collect()
    };
    let c = || Compaction {
        level: 1,
        sources: vec![],
        hints: vec![],
    };
    // Two series in the first block, one shared with the second, a third only there, and
    // an overlapping block whose sample at t=1000 clashes with the first's.
    crate::block::write_block(
        &d,
        0,
        7_200_000,
        vec![
            (l("c"), s(&[(0, 1.0)])),
            (l("a"), s(&[(0, 1.0), (1000, 2.0)])),
        ],
        c(),
    )
    .unwrap();
    crate::block::write_block(
        &d,
        7_200_000,
        14_400_000,
        vec![
            (l("a"), s(&[(7_200_000, 3.0)])),
            (l("b"), s(&[(7_200_000, 4.0)])),
        ],
        c(),
    )
    .unwrap();
    crate::block::write_block(
        &d,
        0,
        7_200_000,
        vec![(l("a"), s(&[(500, 9.0), (1000, 99.0)]))],
        c(),
    )
    .unwrap();
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let blocks = db.blocks();
    assert_eq!(blocks.len(), 3);
    db.merge(0, 14_400_000, &blocks).unwrap();
    let merged = db.blocks();
    assert_eq!(merged.len(), 1);
    let got: Vec<(Labels, Vec<Sample>)> = merged[0]
        .all_series()
        .into_iter()
        .map(|x| (x.labels, x.samples))
        .collect();
    // Blocks are listed by start time; at t=1000 the first listed block's sample stays.
    let first_is_a_and_c = blocks[0].meta.stats.num_series == 2;
    let at_1000 = if first_is_a_and_c { 2.0 } else { 99.0 };
    assert_eq!(
        got,
        vec![
            (
                l("a"),
                s(&[(0, 1.0), (500, 9.0), (1000, at_1000), (7_200_000, 3.0)])
            ),
            (l("b"), s(&[(7_200_000, 4.0)])),
            (l("c"), s(&[(0, 1.0)])),
        ]
    );
    // The writer refuses series out of label order rather than writing a wrong index.
    let e = crate::block::write_block_sorted(
        &d,
        0,
        1,
        vec![(l("b"), s(&[(0, 1.0)])), (l("a"), s(&[(0, 1.0)]))]
            .into_iter()
            .map(Ok),
        c(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_merge_that_meets_damage_leaves_every_block_as_it_was() {
    let d = tmp("merge-damage");
    std::fs::create_dir_all(&d).unwrap();
    let l = |job: &str| Labels::from_pairs([("__name__", "x"), ("job", job)]);
    let series = |t0: i64| -> Vec<(Labels, Vec<Sample>)> {
        (0..3)
            .map(|i| {
                let s = (0..200)
                    .map(|k| Sample {
                        t: t0 + k * 1000,
                        v: k as f64,
                    })
                    .collect();
                (l(&i.to_string()), s)
            })
            .collect()
    };
    let c = Compaction::default;
    let damaged = crate::prometheus::writer::write_block(&d, 0, 7_200_000, series(0), c()).unwrap();
    crate::block::write_block(&d, 7_200_000, 14_400_000, series(7_200_000), c()).unwrap();
    // A byte inside the Prometheus block's last chunk: its checksum fails when read.
    let chunks = d.join(&damaged.ulid).join("chunks/000001");
    let mut b = std::fs::read(&chunks).unwrap();
    let n = b.len();
    b[n - 10] ^= 0xff;
    std::fs::write(&chunks, b).unwrap();
    let before: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let blocks = db.blocks();
    db.merge(0, 14_400_000, &blocks).unwrap();
    assert_eq!(db.blocks().len(), 2, "both blocks still served");
    let mut after: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "lock" && n != "wal" && n != "chunks_head")
        .collect();
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(after, before, "no new block, nothing removed, no .tmp left");
    assert!(db.unmergeable.lock().contains(&damaged.ulid));
    let _ = std::fs::remove_dir_all(&d);
}

/// The same for a block vigil wrote: a chunk past the end of its (cut short) chunk file
/// is skipped and counted, so the merge refuses rather than rewrite the block without
/// that series.
#[test]
fn a_merge_that_meets_damage_in_vigils_own_block_leaves_it_as_it_was() {
    let d = tmp("merge-damage-vigil");
    std::fs::create_dir_all(&d).unwrap();
    let l = |job: &str| Labels::from_pairs([("__name__", "x"), ("job", job)]);
    let series = |t0: i64| -> Vec<(Labels, Vec<Sample>)> {
        (0..3)
            .map(|i| {
                let s = (0..200)
                    .map(|k| Sample {
                        t: t0 + k * 1000,
                        v: (k * k) as f64 / 7.0,
                    })
                    .collect();
                (l(&i.to_string()), s)
            })
            .collect()
    };
    let c = Compaction::default;
    let damaged = crate::block::write_block(&d, 0, 7_200_000, series(0), c()).unwrap();
    crate::block::write_block(&d, 7_200_000, 14_400_000, series(7_200_000), c()).unwrap();
    let chunks = d.join(&damaged.ulid).join("chunks/000001");
    let b = std::fs::read(&chunks).unwrap();
    std::fs::write(&chunks, &b[..b.len() - 8]).unwrap();
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n != "lock" && n != "wal" && n != "chunks_head")
            .collect();
        v.sort();
        v
    };
    let before = listing();
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let blocks = db.blocks();
    db.merge(0, 14_400_000, &blocks).unwrap();
    assert_eq!(
        listing(),
        before,
        "no new block, nothing removed, no .tmp left"
    );
    assert!(
        db.skipped_chunks().1 > 0,
        "the damaged chunk is counted: {:?}",
        db.skipped_chunks()
    );
    assert!(db.unmergeable.lock().contains(&damaged.ulid));
    // The readable series are still served.
    let b = db
        .blocks()
        .into_iter()
        .find(|b| b.meta.ulid == damaged.ulid)
        .unwrap();
    assert!(!b.select(&[], 0, 7_200_000).is_empty());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn compaction_merges_and_retention_deletes_whole_blocks() {
    let d = tmp("compact");
    {
        let db = Db::open(&d, Options::new(10 * 24 * HOUR_MS, 0)).unwrap();
        ingest(&db, 0, 30, 300_000);
        db.maintain().unwrap();
        let blocks = db.blocks();
        assert!(
            blocks.iter().any(|b| b.meta.compaction.level > 1),
            "some blocks were compacted"
        );
        assert!(
            blocks
                .iter()
                .any(|b| b.meta.max_time - b.meta.min_time == 18 * HOUR_MS)
        );
        assert_eq!(all(&db).len(), 30 * 12);
    }
    let db = Db::open(&d, Options::new(12 * HOUR_MS, 0)).unwrap();
    db.maintain().unwrap();
    let blocks = db.blocks();
    let newest = db.head().time_range().unwrap().1;
    assert!(
        blocks
            .iter()
            .all(|b| b.meta.max_time > newest - 24 * HOUR_MS),
        "expired blocks deleted"
    );
    let s = all(&db);
    assert!(s.windows(2).all(|w| w[0].t < w[1].t));
    assert_eq!(s.last().unwrap().t, 30 * HOUR_MS - 300_000);
}

#[test]
fn native_histograms_are_refused_by_name_not_dropped() {
    // The TSDB does not store native histograms yet: an append says so, and nothing of the
    // transaction's floats is lost because of it.
    let d = tmp("nativehist");
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let mut app = db.appender();
    let err = app
        .append_histogram(0, &l, 1000, vigil_model::FloatHistogram::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "native histograms are not supported by this storage"
    );
    app.append(0, &l, 1000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&db), vec![Sample { t: 1000, v: 1.0 }]);
    let _ = std::fs::remove_dir_all(&d);
}
