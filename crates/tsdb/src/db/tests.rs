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
    // Each block written counts as one compaction, as Prometheus counts its head cuts.
    let c = db.compactions();
    assert_eq!(c.ran, blocks.len() as u64);
    assert_eq!(c.buckets.iter().sum::<u64>(), c.ran);
    assert_eq!(c.failed, 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn merges_count_as_compactions() {
    let d = tmp("mergecount");
    let opts = Options::new(0, 0).with_block_range(HOUR_MS / 2, Some(3 * HOUR_MS / 2));
    let db = Db::open(&d, opts).unwrap();
    ingest(&db, 0, 4, 60_000);
    db.maintain().unwrap();
    let c = db.compactions();
    let merged: Vec<_> = db
        .blocks()
        .into_iter()
        .filter(|b| b.meta.compaction.level > 1)
        .collect();
    assert!(!merged.is_empty(), "nothing was merged");
    // Every head cut wrote a level-1 block that now sits in the merged block's sources or
    // still on its own; each merge is one more.
    let cuts: usize = db
        .blocks()
        .iter()
        .map(|b| b.meta.compaction.sources.len().max(1))
        .sum();
    assert_eq!(c.ran, (cuts + merged.len()) as u64);
    assert_eq!(c.buckets.iter().sum::<u64>(), c.ran);
    assert_eq!(all(&db).len(), 4 * 60);
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

/// A head cut while a query reads the head, past the series it had decoded: the query still
/// gets every sample of every series once (the cut's block is not among the blocks it listed;
/// the head decoded what it had not read before truncating).
#[test]
fn a_head_cut_while_a_query_reads_loses_nothing() {
    let d = tmp("cut-while-reading");
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let mut t = 0;
    while t < 7 * HOUR_MS {
        let mut app = db.appender();
        for i in 0..100 {
            let l = Labels::from_pairs([("__name__", "x"), ("i", &format!("{i:03}"))]);
            app.append(0, &l, t, i as f64).unwrap();
        }
        app.commit().unwrap();
        t += 60_000;
    }
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let mut it = q
        .select_shard(&[Matcher::equal("__name__", "x")], 0, 1)
        .unwrap();
    let first = it.next().unwrap();
    db.maintain().unwrap();
    let (lo, _) = db.head().time_range().unwrap();
    assert!(lo >= 2 * HOUR_MS, "the head was cut (starts at {lo})");
    let rest: Vec<Series> = it.collect();
    assert_eq!(rest.len(), 99);
    for s in std::iter::once(&first).chain(&rest) {
        assert_eq!(s.samples.len(), 7 * 60, "{:?}", s.labels);
        assert!(s.samples.windows(2).all(|w| w[0].t < w[1].t));
    }
    let _ = std::fs::remove_dir_all(&d);
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
        .filter(|n| n != "lock" && n != "wal" && n != "chunks_head" && n != "head-chunks")
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
            .filter(|n| n != "lock" && n != "wal" && n != "chunks_head" && n != "head-chunks")
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

fn hist(k: i64) -> vigil_model::FloatHistogram {
    use vigil_model::histogram::Span;
    // A counter histogram that grows with `k`, and resets every 500 samples; a layout
    // change (a new bucket) every 200.
    let k = k % 500;
    let extra = (k / 200) as usize;
    let mut buckets = vec![k as f64, 2.0 * k as f64, 0.5 * k as f64];
    buckets.extend(std::iter::repeat_n(1.0, extra));
    vigil_model::FloatHistogram {
        schema: 1,
        zero_threshold: 2f64.powi(-128),
        zero_count: 1.0,
        count: 1.0 + buckets.iter().sum::<f64>(),
        sum: 0.25 * k as f64,
        positive_spans: vec![Span {
            offset: -1,
            length: buckets.len() as u32,
        }],
        positive_buckets: buckets,
        ..Default::default()
    }
}

fn all_histograms(db: &Db) -> Vec<(i64, vigil_model::FloatHistogram)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    q.select(&[Matcher::equal("__name__", "h")])
        .unwrap()
        .flat_map(|s| s.histograms)
        .map(|x| (x.t, (*x.h).clone()))
        .collect()
}

/// Histograms equal in time and every field that carries meaning (read back, a hint says
/// what the chunks know).
fn assert_same(
    got: &[(i64, vigil_model::FloatHistogram)],
    want: &[(i64, vigil_model::FloatHistogram)],
) {
    assert_eq!(got.len(), want.len());
    for ((t, g), (wt, w)) in got.iter().zip(want) {
        assert_eq!(t, wt);
        assert!(g.same_as(w), "at {t}: {g:?} vs {w:?}");
    }
}

/// Native histograms go through the whole life of the data: the head, the WAL (replayed
/// after a restart), a checkpoint, a block cut and a compaction, with every sample read
/// back; a series may switch between floats and histograms; an invalid layout is refused
/// by name; the WAL's segments that hold histograms say so (version 4).
#[test]
fn native_histograms_live_through_wal_checkpoint_blocks_and_compaction() {
    let d = tmp("nativehist");
    let opts = Options::new(0, 0).with_block_range(HOUR_MS / 2, Some(3 * HOUR_MS / 2));
    let h = Labels::from_pairs([("__name__", "h"), ("job", "a")]);
    let x = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    // 15s for 4h: 960 histograms, and floats of another series beside them.
    let want: Vec<(i64, vigil_model::FloatHistogram)> =
        (0..960).map(|k| (k * 15_000, hist(k))).collect();
    {
        let db = Db::open(&d, opts.clone()).unwrap();
        let mut app = db.appender();
        let mut bad = hist(1);
        bad.positive_buckets.pop();
        let err = app.append_histogram(0, &h, 0, bad).unwrap_err().to_string();
        assert!(err.starts_with("invalid native histogram: "), "{err}");
        app.rollback();
        for (t, fh) in &want[..480] {
            let mut app = db.appender();
            app.append_histogram(0, &h, *t, fh.clone()).unwrap();
            app.append(0, &x, *t, *t as f64).unwrap();
            // An exact repeat is taken as one; another histogram at that time is not.
            app.append_histogram(0, &h, *t, fh.clone()).unwrap();
            assert!(app.append_histogram(0, &h, *t, hist(7)).is_err() || fh.same_as(&hist(7)));
            app.commit().unwrap();
        }
        assert_same(&all_histograms(&db), &want[..480]);
    }
    let seg_versions = |d: &Path| -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(d.join("wal"))
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let b = std::fs::read(&p).ok()?;
                (b.len() >= 16 && &b[..8] == b"VIGILWAL")
                    .then(|| u32::from_le_bytes(b[8..12].try_into().unwrap()))
            })
            .collect();
        v.sort();
        v
    };
    assert!(
        seg_versions(&d).contains(&crate::wal::HISTOGRAM_VERSION),
        "{:?}",
        seg_versions(&d)
    );
    {
        // Replayed from the WAL; then more, cut into blocks, checkpointed, compacted.
        let db = Db::open(&d, opts.clone()).unwrap();
        assert_same(&all_histograms(&db), &want[..480]);
        for (t, fh) in &want[480..] {
            let mut app = db.appender();
            app.append_histogram(0, &h, *t, fh.clone()).unwrap();
            app.append(0, &x, *t, *t as f64).unwrap();
            app.commit().unwrap();
        }
        db.maintain().unwrap();
        let blocks = db.blocks();
        assert!(!blocks.is_empty());
        assert!(blocks.iter().all(|b| b.meta.version == 5));
        assert!(blocks.iter().any(|b| b.meta.compaction.level >= 2));
        assert!(
            blocks
                .iter()
                .all(|b| b.meta.stats.num_histogram_samples > 0)
        );
        assert_same(&all_histograms(&db), &want);
        assert_eq!(all(&db).len(), 960);
    }
    {
        // After the checkpoint, a restart reads blocks, checkpoint and WAL alike.
        let db = Db::open(&d, opts.clone()).unwrap();
        assert_same(&all_histograms(&db), &want);
        // A series switches kind, within one transaction too; nothing is lost.
        let t0 = 960 * 15_000;
        let mut app = db.appender();
        app.append(0, &h, t0, 1.0).unwrap();
        app.append_histogram(0, &h, t0 + 1000, hist(3)).unwrap();
        app.append(0, &h, t0 + 2000, 2.0).unwrap();
        app.commit().unwrap();
    }
    let db = Db::open(&d, opts).unwrap();
    let q = db.querier(960 * 15_000, i64::MAX / 2).unwrap();
    let s: Vec<Series> = q
        .select(&[Matcher::equal("__name__", "h")])
        .unwrap()
        .collect();
    assert_eq!(s.len(), 1);
    let ft: Vec<i64> = s[0].samples.iter().map(|x| x.t).collect();
    let ht: Vec<i64> = s[0].histograms.iter().map(|x| x.t).collect();
    assert_eq!(ft, [960 * 15_000, 960 * 15_000 + 2000]);
    assert_eq!(ht, [960 * 15_000 + 1000]);
    let _ = std::fs::remove_dir_all(&d);
}

/// A head holding samples of 1970 beside today's (a remote-write client replaying old data):
/// the old range becomes one block and the next cut starts at today's samples, not at the
/// following empty range. Each empty range of the 56-year gap used to cost a truncation, a
/// checkpoint and a new WAL segment: hundreds of thousands of them, while a remote write
/// queue following the WAL lost its place.
#[test]
fn a_gap_of_years_in_the_head_is_not_walked_range_by_range() {
    let d = tmp("gap");
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let today = 1_796_000_000_000i64;
    let mut app = db.appender();
    for t in [1000, 2000, 3000] {
        app.append(0, &l, t, 1.0).unwrap();
    }
    app.commit().unwrap();
    let mut app = db.appender();
    app.append(0, &l, today, 2.0).unwrap();
    app.commit().unwrap();
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 1);
    assert_eq!(db.head().time_range(), Some((today, today)));
    let segments = crate::wal::segments(&d.join("wal")).unwrap();
    assert!(segments.len() <= 3, "{} WAL segments", segments.len());
    assert_eq!(all(&db).len(), 4);
    // Maintenance again finds nothing to cut.
    db.maintain().unwrap();
    assert_eq!(crate::wal::segments(&d.join("wal")).unwrap(), segments);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--storage.tsdb.delay-compact-file.path`: a level-1 block merges only once the sidecar's
/// meta file lists it as uploaded, and nothing after a block that waits merges either; a file
/// that cannot be read or parsed holds nothing back (as in Prometheus).
#[test]
fn merges_wait_for_the_blocks_upload_when_asked() {
    let d = tmp("delaycompact");
    let meta = d.join("thanos.shipper.json");
    let mut opts = Options::new(0, 0).with_block_range(HOUR_MS / 2, Some(3 * HOUR_MS / 2));
    opts.delay_compact_file = Some(meta.clone());
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(&meta, r#"{"version": 1, "uploaded": []}"#).unwrap();
    let db = Db::open(&d, opts.clone()).unwrap();
    ingest(&db, 0, 4, 60_000);
    db.maintain().unwrap();
    let level1: Vec<String> = db.blocks().iter().map(|b| b.meta.ulid.clone()).collect();
    assert!(level1.len() >= 6, "{} blocks", level1.len());
    assert!(db.blocks().iter().all(|b| b.meta.compaction.level == 1));

    // The first and third blocks uploaded: the first range still waits for its second.
    let list = |ulids: &[&String]| {
        let v: Vec<String> = ulids.iter().map(|u| format!("{u:?}")).collect();
        format!("{{\"version\":1,\"uploaded\":[{}]}}", v.join(","))
    };
    std::fs::write(&meta, list(&[&level1[0], &level1[2]])).unwrap();
    db.maintain().unwrap();
    assert!(db.blocks().iter().all(|b| b.meta.compaction.level == 1));

    // The first range's three uploaded: merged; the next waits for its blocks.
    std::fs::write(
        &meta,
        list(&[&level1[0], &level1[1], &level1[2], &level1[4]]),
    )
    .unwrap();
    db.maintain().unwrap();
    let merged: Vec<_> = db
        .blocks()
        .into_iter()
        .filter(|b| b.meta.compaction.level > 1)
        .collect();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].meta.min_time, 0);
    assert_eq!(all(&db).len(), 4 * 60);

    // A file that does not parse holds nothing back.
    std::fs::write(&meta, "not json").unwrap();
    db.maintain().unwrap();
    assert_eq!(
        db.blocks()
            .iter()
            .filter(|b| b.meta.compaction.level > 1)
            .count(),
        2
    );
    assert_eq!(all(&db).len(), 4 * 60);
    let _ = std::fs::remove_dir_all(&d);
}

/// Late samples (the out-of-order window) go into the block cut from their range, in time
/// order with the in-order ones, and read back the same after a restart.
#[test]
fn late_samples_are_cut_into_blocks_in_time_order() {
    let d = tmp("late-cut");
    let opts = Options::new(0, 0);
    let x = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let want = {
        let db = Db::open(&d, opts.clone()).unwrap();
        db.head().set_out_of_order_window(HOUR_MS);
        ingest(&db, 0, 4, 60_000);
        let mut app = db.appender();
        for k in 0..59 {
            app.append(0, &x, 3 * HOUR_MS + 30_000 + k * 60_000, -1.0)
                .unwrap();
        }
        app.commit().unwrap();
        ingest(&db, 4, 7, 60_000);
        db.maintain().unwrap();
        let blocks = db.blocks();
        assert_eq!(blocks.len(), 2, "[0, 2h) and [2h, 4h) cut");
        assert_eq!(blocks[1].meta.stats.num_samples, 120 + 59);
        let s = all(&db);
        assert_eq!(s.len(), 7 * 60 + 59);
        assert!(s.windows(2).all(|w| w[0].t < w[1].t));
        assert_eq!(s.iter().filter(|x| x.v == -1.0).count(), 59);
        s
    };
    let db = Db::open(&d, opts).unwrap();
    assert_eq!(all(&db), want, "after a restart");
    let _ = std::fs::remove_dir_all(&d);
}

/// `--enable-feature=delayed-compaction`: a head cut that is due waits out the delay, counted
/// from the first maintenance pass that finds it due, then happens as without it.
#[test]
fn a_due_head_cut_waits_for_the_compaction_delay() {
    let d = tmp("delayed-cut");
    let mut opts = Options::new(0, 0);
    opts.head_cut_delay = std::time::Duration::from_millis(300);
    let db = Db::open(&d, opts).unwrap();
    ingest(&db, 0, 4, 60_000);
    db.maintain().unwrap();
    assert!(db.blocks().is_empty(), "the delay holds the cut back");
    std::thread::sleep(std::time::Duration::from_millis(400));
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 1, "[0, 2h) cut once the delay is over");
    assert_eq!(all(&db).len(), 4 * 60);
    let _ = std::fs::remove_dir_all(&d);
}

/// `--enable-feature=use-uncached-io`: a block's files leave the page cache once written (a
/// block written without it stays there), and the block reads back whole.
#[test]
fn uncached_io_leaves_written_blocks_out_of_the_page_cache() {
    let d = tmp("uncached");
    std::fs::create_dir_all(&d).unwrap();
    // Values that do not compress: a few megabytes of chunks.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let series: Vec<Series> = (0..1000)
        .map(|i| Series {
            labels: Labels::from_pairs([("__name__", "x".to_string()), ("i", i.to_string())]),
            samples: (0..480)
                .map(|k| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    Sample {
                        t: k * 15_000,
                        v: f64::from_bits(x >> 12 | 0x3ff0_0000_0000_0000),
                    }
                })
                .collect(),
            histograms: vec![],
        })
        .collect();
    let write = |on: bool| {
        crate::uncached::set(on);
        let meta = crate::block::write_block(
            &d,
            0,
            2 * HOUR_MS,
            series.clone(),
            Compaction {
                level: 1,
                sources: vec![],
                hints: vec![],
            },
        )
        .unwrap();
        crate::uncached::set(false);
        let (resident, pages) =
            crate::uncached::resident_pages(&d.join(&meta.ulid).join("chunks").join("000001"));
        (resident, pages, meta.ulid)
    };
    let (cached, pages, _) = write(false);
    assert!(pages > 500, "{pages} pages of chunks");
    let (left, _, ulid) = write(true);
    assert!(
        left * 10 < cached,
        "{left} of {pages} pages stay cached with the feature, {cached} without"
    );
    let b = Block::open(&d.join(&ulid)).unwrap();
    let back: usize = b.read_all().map(|s| s.samples.len()).sum();
    assert_eq!(back, 1000 * 480);
    let _ = std::fs::remove_dir_all(&d);
}

/// Blocks whose time ranges overlap (a backfill beside a compacted block) are merged into one
/// block over their union before any other compaction, as Prometheus's planner merges them,
/// whatever their size; blocks that touch without overlapping are left alone; where two hold
/// a sample at one time the older block's (by start, then ULID) stays, in queries before the
/// merge and in the merged block alike. With `overlapping_compaction` off nothing is merged
/// and queries answer the same.
#[test]
fn overlapping_blocks_are_merged_first() {
    let l = |job: &str| Labels::from_pairs([("__name__", "x"), ("job", job)]);
    let s = |pairs: &[(i64, f64)]| -> Vec<Sample> {
        pairs.iter().map(|&(t, v)| Sample { t, v }).collect()
    };
    let c = |level| Compaction {
        level,
        sources: vec![],
        hints: vec![],
    };
    let day = 24 * HOUR_MS;
    let write = |d: &Path| {
        std::fs::create_dir_all(d).unwrap();
        // A compacted day, a backfilled 2h block inside it (one sample clashing), one
        // overlapping its end, and a block that only touches the day's end.
        let day_block = crate::block::write_block(
            d,
            0,
            day,
            vec![(l("a"), s(&[(0, 1.0), (HOUR_MS, 2.0), (day - 1, 3.0)]))],
            c(4),
        )
        .unwrap();
        // ULIDs are made from the clock: the day block is the older one.
        std::thread::sleep(std::time::Duration::from_millis(2));
        crate::block::write_block(
            d,
            0,
            2 * HOUR_MS,
            vec![
                (l("a"), s(&[(HOUR_MS, 99.0), (HOUR_MS + 1, 4.0)])),
                (l("b"), s(&[(5, 5.0)])),
            ],
            c(1),
        )
        .unwrap();
        crate::block::write_block(
            d,
            day - HOUR_MS,
            day + HOUR_MS,
            vec![(l("b"), s(&[(day + 1, 6.0)]))],
            c(1),
        )
        .unwrap();
        crate::block::write_block(
            d,
            day + HOUR_MS,
            day + 3 * HOUR_MS,
            vec![(l("c"), s(&[(day + 2 * HOUR_MS, 7.0)]))],
            c(1),
        )
        .unwrap();
        // Out-of-order blocks past the in-order data (as Prometheus's out-of-order head can
        // write them): overlapping each other, but never merged, and still marked, so they
        // do not move the head's start.
        for v in [8.0, 9.0] {
            crate::block::write_block(
                d,
                day + 3 * HOUR_MS,
                day + 5 * HOUR_MS,
                vec![(l("d"), s(&[(day + 4 * HOUR_MS, v)]))],
                Compaction {
                    level: 1,
                    sources: vec![],
                    hints: vec!["from-out-of-order".into()],
                },
            )
            .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        day_block
    };
    let everything = |db: &Db| -> Vec<(Labels, Vec<Sample>)> {
        let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
        let mut v: Vec<_> = q
            .select(&[Matcher::equal("__name__", "x")])
            .unwrap()
            .map(|x| (x.labels, x.samples))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let past = |db: &Db| -> Vec<bool> {
        db.blocks()
            .iter()
            .filter(|b| b.meta.min_time == day + 3 * HOUR_MS)
            .map(|b| b.meta.compaction.out_of_order())
            .collect()
    };
    let want = vec![
        (
            l("a"),
            s(&[(0, 1.0), (HOUR_MS, 2.0), (HOUR_MS + 1, 4.0), (day - 1, 3.0)]),
        ),
        (l("b"), s(&[(5, 5.0), (day + 1, 6.0)])),
        (l("c"), s(&[(day + 2 * HOUR_MS, 7.0)])),
        (l("d"), s(&[(day + 4 * HOUR_MS, 8.0)])),
    ];
    let d = tmp("overlap");
    let day_block = write(&d);
    let mut opts = Options::new(0, 0);
    opts.overlapping_compaction = false;
    let db = Db::open(&d, opts.clone()).unwrap();
    assert_eq!(everything(&db), want, "queries merge overlapping blocks");
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 6, "left alone when told");
    drop(db);
    opts.overlapping_compaction = true;
    let db = Db::open(&d, opts).unwrap();
    db.maintain().unwrap();
    assert_eq!(past(&db), [true, true]);
    let blocks: Vec<_> = db
        .blocks()
        .into_iter()
        .filter(|b| !b.meta.compaction.out_of_order())
        .collect();
    assert_eq!(
        blocks.len(),
        2,
        "{:?}",
        blocks
            .iter()
            .map(|b| (b.meta.min_time, b.meta.max_time))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (blocks[0].meta.min_time, blocks[0].meta.max_time),
        (0, day + HOUR_MS)
    );
    assert_eq!(blocks[0].meta.compaction.level, 5);
    assert!(blocks[0].meta.compaction.sources.contains(&day_block.ulid));
    assert_eq!(blocks[1].meta.min_time, day + HOUR_MS, "touching only");
    assert_eq!(everything(&db), want);
    drop(db);
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    assert_eq!(everything(&db), want, "after a restart");
    let _ = std::fs::remove_dir_all(&d);
}

/// Late samples older than the head's start, within the out-of-order window (as Prometheus's
/// out-of-order blocks take them): answered at once, written out at the next pass as a
/// `from-out-of-order` block that compaction merges with the block of its range, kept
/// through a crash before that pass (the WAL) and one after it (a sample replayed again is
/// one sample), handed to remote write, and deleted for good by a deletion. Older than the
/// window they are too old. (Native histograms: the next test.)
#[test]
fn late_samples_older_than_the_head_go_to_out_of_order_blocks() {
    let d = tmp("ooo-blocks");
    let opts = Options::new(0, 0);
    let x = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let y = Labels::from_pairs([("__name__", "y"), ("job", "old-only")]);
    let open = || {
        let db = Db::open(&d, opts.clone()).unwrap();
        db.head().set_out_of_order_window(4 * HOUR_MS);
        db
    };
    let (a, b) = (HOUR_MS + 30_000, HOUR_MS + 120_000);
    let want = {
        let db = open();
        ingest(&db, 0, 5, 60_000);
        db.maintain().unwrap();
        assert_eq!(db.blocks().len(), 1, "[0, 2h) cut");
        let mut app = db.appender();
        app.append(0, &x, a, -1.0).unwrap();
        // A time the block holds already: the block's sample stays.
        app.append(0, &x, b, -2.0).unwrap();
        // A series with old samples only.
        app.append(0, &y, a, 7.0).unwrap();
        assert_eq!(
            app.append(0, &x, 30 * 60_000, -3.0),
            Err(vigil_storage::AppendError::TooOld)
        );
        app.commit().unwrap();
        let s = all(&db);
        assert_eq!(s.len(), 5 * 60 + 1);
        assert!(s.windows(2).all(|w| w[0].t < w[1].t));
        assert!(s.contains(&Sample { t: a, v: -1.0 }));
        assert!(s.contains(&Sample {
            t: b,
            v: (b / 1000) as f64
        }));
        // Remote write reads it from the WAL, its series named by labels.
        let mut journal = crate::journal::follow(&d.join("wal")).unwrap();
        let mut names = std::collections::HashMap::new();
        let mut sent = Vec::new();
        journal
            .poll(1_000_000, &mut |r, _| match r {
                vigil_storage::JournalRecord::Series(s) => names.extend(s),
                vigil_storage::JournalRecord::Samples(s) => sent.extend(s),
                _ => {}
            })
            .unwrap();
        assert!(
            sent.iter()
                .any(|&(r, t, v)| t == a && v == 7.0 && names[&r] == y)
        );
        s
    };
    // A crash before the pass: the WAL has them.
    let db = open();
    assert_eq!(all(&db), want);
    db.flush_old().unwrap();
    let ooo: Vec<_> = db
        .blocks()
        .into_iter()
        .filter(|b| b.meta.compaction.out_of_order())
        .collect();
    assert_eq!(ooo.len(), 1, "one block for the one range");
    assert_eq!(
        (ooo[0].meta.min_time, ooo[0].meta.max_time),
        (0, 2 * HOUR_MS)
    );
    assert!(!db.head().holds_old());
    assert_eq!(all(&db), want);
    db.maintain().unwrap();
    let blocks = db.blocks();
    assert_eq!(
        blocks.len(),
        1,
        "the out-of-order block merged into [0, 2h)"
    );
    assert_eq!(blocks[0].meta.compaction.level, 2);
    assert_eq!(all(&db), want);
    drop(db);
    // A crash after the pass, before any checkpoint: replayed again, still one sample each.
    let db = open();
    assert_eq!(all(&db), want);
    db.maintain().unwrap();
    assert_eq!(all(&db), want);
    assert_eq!(db.blocks().len(), 1);
    // Deleted for good, the old-only series too, also after a restart.
    db.delete_series(
        &[vec![Matcher::equal("job", "old-only")]],
        i64::MIN,
        i64::MAX,
    )
    .unwrap();
    db.delete_series(&[vec![Matcher::equal("__name__", "x")]], a, a)
        .unwrap();
    let q = |db: &Db| {
        let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
        let ys = q
            .select(&[Matcher::equal("__name__", "y")])
            .unwrap()
            .count();
        (all(db).len(), ys)
    };
    assert_eq!(q(&db), (5 * 60, 0));
    drop(db);
    let db = open();
    assert_eq!(q(&db), (5 * 60, 0));
    let _ = std::fs::remove_dir_all(&d);
}

/// Native histograms older than the head's start, within the window, as floats are (the test
/// above): answered at once beside the head's, written out as a `from-out-of-order` block at
/// the next pass and merged into the block of their range, kept through a crash before and
/// after that pass, handed to remote write; older than the window they are too old. Old
/// ones falling between a block's are read as following those: a drop in count after a
/// block's sample is a counter reset whatever the old sample's own chunk said.
#[test]
fn late_native_histograms_older_than_the_head_go_to_out_of_order_blocks() {
    let d = tmp("ooo-histogram-blocks");
    let opts = Options::new(0, 0);
    let h = Labels::from_pairs([("__name__", "h"), ("job", "a")]);
    let open = || {
        let db = Db::open(&d, opts.clone()).unwrap();
        db.head().set_out_of_order_window(4 * HOUR_MS);
        db
    };
    let in_head: Vec<(i64, vigil_model::FloatHistogram)> = (0..5)
        .map(|k| (4 * HOUR_MS + k * 60_000, hist(100 + k)))
        .collect();
    let old: Vec<(i64, vigil_model::FloatHistogram)> = (0..3)
        .map(|k| (HOUR_MS + k * 60_000, hist(10 + k)))
        .collect();
    // Between the old ones, with higher counts: each old one after it is a reset.
    let block_part: Vec<(i64, vigil_model::FloatHistogram)> = (0..2)
        .map(|k| (HOUR_MS + 30_000 + k * 60_000, hist(300 + k)))
        .collect();
    let mut want = {
        let db = open();
        ingest(&db, 0, 5, 60_000);
        let mut app = db.appender();
        for (t, x) in &block_part {
            app.append_histogram(0, &h, *t, x.clone()).unwrap();
        }
        for (t, x) in &in_head {
            app.append_histogram(0, &h, *t, x.clone()).unwrap();
        }
        app.commit().unwrap();
        db.maintain().unwrap();
        assert_eq!(db.blocks().len(), 1, "[0, 2h) cut");
        // Newest first, one commit each: each one older than the head's start.
        for (t, x) in old.iter().rev() {
            let mut app = db.appender();
            app.append_histogram(0, &h, *t, x.clone()).unwrap();
            app.commit().unwrap();
        }
        let mut app = db.appender();
        assert_eq!(
            app.append_histogram(0, &h, 30 * 60_000, hist(1)),
            Err(vigil_storage::AppendError::TooOld)
        );
        drop(app);
        let got = all_histograms(&db);
        let mut want = old.clone();
        want.extend(block_part.iter().cloned());
        want.sort_by_key(|x| x.0);
        want.extend(in_head.iter().cloned());
        assert_eq!(
            got.iter().map(|x| x.0).collect::<Vec<_>>(),
            want.iter().map(|x| x.0).collect::<Vec<_>>()
        );
        // Remote write reads them from the WAL, their series named by labels.
        let mut journal = crate::journal::follow(&d.join("wal")).unwrap();
        let mut names = std::collections::HashMap::new();
        let mut sent = Vec::new();
        journal
            .poll(1_000_000, &mut |r, _| match r {
                vigil_storage::JournalRecord::Series(s) => names.extend(s),
                vigil_storage::JournalRecord::Histograms(s) => sent.extend(s),
                _ => {}
            })
            .unwrap();
        for (t, x) in &old {
            assert!(
                sent.iter()
                    .any(|(r, st, sh)| st == t && sh.count == x.count && names[r] == h),
                "{t} sent"
            );
        }
        want
    };
    // Read back late, a histogram's reset hint is what the chunks say; compared without it.
    for x in want.iter_mut() {
        x.1.hint = vigil_model::histogram::CounterResetHint::Unknown;
    }
    let same = |db: &Db| {
        let mut got = all_histograms(db);
        // Read as a rate reads them: after the block's samples, the old ones' drops are
        // resets; between in-order neighbours none is.
        let resets: Vec<i64> = got
            .windows(2)
            .filter(|w| w[1].1.detect_reset(&w[0].1))
            .map(|w| w[1].0)
            .collect();
        assert_eq!(
            resets,
            vec![HOUR_MS + 60_000, HOUR_MS + 120_000],
            "the old samples after the block's"
        );
        for x in got.iter_mut() {
            x.1.hint = vigil_model::histogram::CounterResetHint::Unknown;
        }
        assert_same(&got, &want);
    };
    // A crash before the pass: the WAL has them.
    let db = open();
    same(&db);
    db.flush_old().unwrap();
    let ooo: Vec<_> = db
        .blocks()
        .into_iter()
        .filter(|b| b.meta.compaction.out_of_order())
        .collect();
    assert_eq!(ooo.len(), 1, "one block for the one range");
    assert_eq!(
        (ooo[0].meta.min_time, ooo[0].meta.max_time),
        (0, 2 * HOUR_MS)
    );
    assert!(!db.head().holds_old());
    same(&db);
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 1, "merged into [0, 2h)");
    same(&db);
    drop(db);
    // A crash after the pass, before any checkpoint: replayed again, still one sample each.
    let db = open();
    same(&db);
    db.maintain().unwrap();
    same(&db);
    let _ = std::fs::remove_dir_all(&d);
}

/// A querier made before a head cut and read after it still answers the range the cut moved
/// into a block (it reads the head first, then the blocks served since it was made), for
/// selections, sharded selections and label values alike.
#[test]
fn a_query_across_a_head_cut_misses_nothing() {
    let d = tmp("query-across-cut");
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    ingest(&db, 0, 5, 60_000);
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    db.maintain().unwrap();
    assert_eq!(
        db.blocks().len(),
        1,
        "[0, 2h) cut after the querier was made"
    );
    let x = [Matcher::equal("__name__", "x")];
    let n: usize = q.select(&x).unwrap().map(|s| s.samples.len()).sum();
    assert_eq!(n, 5 * 60);
    let n: usize = (0..2)
        .map(|k| {
            q.select_shard(&x, k, 2)
                .unwrap()
                .map(|s| s.samples.len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(n, 5 * 60);
    assert_eq!(q.label_values("job", &x).unwrap(), vec!["a".to_string()]);
    let _ = std::fs::remove_dir_all(&d);
}

/// The span that makes a head cut due is overflow-safe at the ends of i64, and counts no
/// further than half a range past now.
#[test]
fn cut_due_is_bounded_by_the_clock_and_never_overflows() {
    let (r, now) = (2 * HOUR_MS, 1_796_000_000_000i64);
    assert!(cut_due(now - 4 * HOUR_MS, now, r, now));
    assert!(!cut_due(now - 2 * HOUR_MS, now, r, now));
    // A sample at the far past still lets the cut go on (the span wrapped negative before).
    assert!(cut_due(i64::MIN, now, r, now));
    assert!(cut_due(i64::MIN, i64::MAX, r, now));
    // A sample far ahead counts as half a range past now: no cut of the present.
    assert!(!cut_due(now - HOUR_MS, i64::MAX, r, now));
    assert!(!cut_due(now - 2 * HOUR_MS, now + 100 * HOUR_MS, r, now));
    assert!(cut_due(now - 2 * HOUR_MS - 1, now + 100 * HOUR_MS, r, now));
}

/// One sample far in the future (remote write takes any time) neither deletes the blocks
/// (retention counts from the newest block, and from no later than now) nor has the head cut
/// the present range, which would refuse every sample of the next two hours.
#[test]
fn a_sample_from_the_future_deletes_nothing_and_refuses_nothing() {
    let d = tmp("future");
    let db = Db::open(&d, Options::new(10 * 24 * HOUR_MS, 0)).unwrap();
    let now = wall_ms();
    let from = (now - 30 * HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
    let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let mut t = from;
    let mut n = 0;
    while t <= now - 60_000 {
        let mut app = db.appender();
        app.append(0, &l, t, 1.0).unwrap();
        app.commit().unwrap();
        t += 300_000;
        n += 1;
    }
    db.maintain().unwrap();
    let oldest = |db: &Db| db.blocks().iter().map(|b| b.meta.min_time).min();
    let first = oldest(&db);
    assert!(first.is_some_and(|t| t <= from), "blocks written");
    let far = Labels::from_pairs([("__name__", "x"), ("job", "far")]);
    let mut app = db.appender();
    app.append(0, &far, now + 10 * 365 * 24 * HOUR_MS, 2.0)
        .unwrap();
    app.commit().unwrap();
    db.maintain().unwrap();
    db.maintain().unwrap();
    assert_eq!(oldest(&db), first, "blocks deleted");
    // The present is still open for appends.
    let mut app = db.appender();
    app.append(0, &l, now, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(all(&db).len(), n + 2);
    let _ = std::fs::remove_dir_all(&d);
}

/// Times 2^62 ms or more either side are out of bounds; one just inside (taken while no block
/// was written) is cut into a block of its own, range arithmetic and all, and ingestion goes
/// on.
#[test]
fn a_sample_at_the_far_end_of_time_is_cut_like_any_other() {
    let d = tmp("farpast");
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let now = wall_ms();
    let bound = crate::head::TIME_BOUND;
    for t in [i64::MIN, -bound, bound, i64::MAX] {
        let mut app = db.appender();
        assert_eq!(
            app.append(0, &l, t, 1.0),
            Err(vigil_storage::AppendError::OutOfBounds),
            "{t}"
        );
    }
    let mut app = db.appender();
    app.append(0, &l, -bound + 1, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    app.append(0, &l, now - 60_000, 2.0).unwrap();
    app.commit().unwrap();
    db.maintain().unwrap();
    assert_eq!(db.head().time_range(), Some((now - 60_000, now - 60_000)));
    assert!(db.blocks().iter().any(|b| b.meta.min_time <= -bound));
    let mut app = db.appender();
    app.append(0, &l, now, 3.0).unwrap();
    app.commit().unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let n: usize = q
        .select(&[Matcher::equal("__name__", "x")])
        .unwrap()
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(n, 3);
    let _ = std::fs::remove_dir_all(&d);
}

/// Blocks near the ends of time (an older vigil's WAL, another tool's blocks) neither panic
/// nor wrap the merge planner's range arithmetic: a range that does not fit is left unmerged.
#[test]
fn blocks_near_the_ends_of_time_do_not_overflow_merges() {
    let d = tmp("farblocks");
    std::fs::create_dir_all(&d).unwrap();
    let l = Labels::from_pairs([("__name__", "x")]);
    for (lo, hi) in [
        (i64::MIN, i64::MIN + 1000),
        (i64::MIN + 1000, i64::MIN + 2000),
        (i64::MAX - 2000, i64::MAX - 1000),
        (i64::MAX - 1000, i64::MAX),
    ] {
        crate::block::write_block(
            &d,
            lo,
            hi,
            vec![vigil_storage::Series::new(
                l.clone(),
                vec![Sample { t: lo, v: 1.0 }],
            )],
            crate::block::Compaction {
                level: 1,
                sources: vec![],
                hints: vec![],
            },
        )
        .unwrap();
    }
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    db.maintain().unwrap();
    assert_eq!(db.blocks().len(), 4);
    let _ = std::fs::remove_dir_all(&d);
}

/// The label endpoints' `match[]` answer from chunk ranges (blocks) and chunk times (head)
/// without decoding every sample: a series counts in a range where it has data, in a block
/// or the head, and not where it has none.
#[test]
fn label_values_with_matchers_follow_where_series_have_data() {
    let d = tmp("labels-by-range");
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    ingest(&db, 0, 5, 60_000);
    let y = Labels::from_pairs([("__name__", "y"), ("job", "b")]);
    for t in (0..10 * 60_000).step_by(60_000) {
        let mut app = db.appender();
        app.append(0, &y, t, 1.0).unwrap();
        app.commit().unwrap();
    }
    db.maintain().unwrap();
    assert!(!db.blocks().is_empty(), "some of it in blocks");
    let m = [Matcher::new(vigil_storage::MatchOp::Regex, "__name__", "x|y").unwrap()];
    let values = |mint: i64, maxt: i64| {
        db.querier(mint, maxt)
            .unwrap()
            .label_values("job", &m)
            .unwrap()
    };
    assert_eq!(values(0, 5 * 60_000), ["a", "b"]);
    assert_eq!(values(3 * HOUR_MS, 9 * HOUR_MS / 2), ["a"]);
    assert_eq!(
        values(42 * HOUR_MS / 10, 9 * HOUR_MS / 2),
        ["a"],
        "the head alone"
    );
    assert!(values(6 * HOUR_MS, 7 * HOUR_MS).is_empty(), "no data there");
    let names = db
        .querier(3 * HOUR_MS, 9 * HOUR_MS / 2)
        .unwrap()
        .label_names(&m)
        .unwrap();
    assert_eq!(names, ["__name__", "job"]);
    let _ = std::fs::remove_dir_all(&d);
}

/// A block is removed as superseded (a crash between a merge and removing its sources) only
/// where a higher-level block names it and covers its whole range: one copied in or crafted
/// that merely names it in `sources` deletes nothing.
#[test]
fn only_a_block_covering_a_source_supersedes_it() {
    let d = tmp("supersede");
    let opts = || Options::new(0, 0).with_block_range(HOUR_MS / 2, Some(HOUR_MS / 2));
    {
        let db = Db::open(&d, opts()).unwrap();
        ingest(&db, 0, 3, 60_000);
        db.maintain().unwrap();
    }
    let block_dirs = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.file_name().unwrap().len() == 26)
            .collect();
        v.sort();
        v
    };
    let dirs = block_dirs();
    assert!(dirs.len() >= 2, "{dirs:?}");
    let meta = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("meta.json")).unwrap()).unwrap()
    };
    let (x, y) = (dirs[0].clone(), dirs[1].clone());
    let (xm, ym) = (meta(&x), meta(&y));
    // A level-2 block with y's data and range naming x as a source.
    let ulid = crate::block::new_ulid();
    let fake = d.join(&ulid);
    std::fs::create_dir_all(&fake).unwrap();
    for e in std::fs::read_dir(&y).unwrap().flatten() {
        if e.path().is_dir() {
            std::fs::create_dir_all(fake.join(e.file_name())).unwrap();
            for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                std::fs::copy(f.path(), fake.join(e.file_name()).join(f.file_name())).unwrap();
            }
        } else {
            std::fs::copy(e.path(), fake.join(e.file_name())).unwrap();
        }
    }
    let write_meta = |min_time: &serde_json::Value| {
        let mut m = ym.clone();
        m["ulid"] = ulid.clone().into();
        m["minTime"] = min_time.clone();
        m["compaction"]["level"] = 2.into();
        m["compaction"]["sources"] = serde_json::json!([xm["ulid"].clone()]);
        std::fs::write(fake.join("meta.json"), m.to_string()).unwrap();
    };
    write_meta(&ym["minTime"]);
    drop(Db::open(&d, opts()).unwrap());
    assert!(x.exists(), "a block naming x without covering it removed x");
    // Covering x's range too, as a merge's block does: x is superseded and removed.
    write_meta(&xm["minTime"]);
    drop(Db::open(&d, opts()).unwrap());
    assert!(!x.exists(), "the merged block's source was kept");
    let _ = std::fs::remove_dir_all(&d);
}
