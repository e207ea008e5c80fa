//! Property test: the TSDB (head, WAL replay after restarts, blocks cut and compacted, packed
//! chunks, full head chunks written to their files and read back through mmap, with what a
//! crash while writing them leaves) answers every query as a naive reference store does, over
//! random appends (including NaN, stale markers and ±Inf) and random matchers of every kind
//! over random time ranges.

use std::path::PathBuf;

use vigil_model::Labels;
use vigil_model::sample::STALE_NAN;
use vigil_storage::{MatchOp, Matcher, MemoryStorage, Series, Storage};
use vigil_tsdb::db::{Db, Options};

const HOUR: i64 = 3_600_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const JOBS: [&str; 3] = ["api", "db", "web"];
const PODS: [&str; 4] = ["a-1", "a-2", "b-1", "c-10"];
const NAMES: [&str; 3] = ["requests_total", "temperature", "up"];

fn series_labels(r: &mut Rng) -> Labels {
    let mut pairs = vec![
        ("__name__", NAMES[r.below(3) as usize]),
        ("job", JOBS[r.below(3) as usize]),
    ];
    if r.below(3) > 0 {
        pairs.push(("pod", PODS[r.below(4) as usize]));
    }
    Labels::from_pairs(pairs)
}

fn value(r: &mut Rng, prev: f64) -> f64 {
    match r.below(50) {
        0 => f64::NAN,
        1 => STALE_NAN,
        2 => f64::INFINITY,
        3 => -0.0,
        4..=20 => (r.below(10_000) as f64) / 100.0,
        _ => prev + r.below(20) as f64,
    }
}

fn matcher(r: &mut Rng) -> Matcher {
    let (name, vals): (&str, &[&str]) = match r.below(3) {
        0 => ("__name__", &NAMES),
        1 => ("job", &JOBS),
        _ => ("pod", &PODS),
    };
    let v = vals[r.below(vals.len() as u64) as usize];
    match r.below(6) {
        0 => Matcher::equal(name, v),
        1 => Matcher::new(MatchOp::NotEqual, name, v).unwrap(),
        2 => Matcher::new(MatchOp::Regex, name, format!("{}.*", &v[..1])).unwrap(),
        3 => Matcher::new(MatchOp::NotRegex, name, v).unwrap(),
        4 => Matcher::new(MatchOp::Regex, name, format!("{v}|x")).unwrap(),
        _ => Matcher::new(MatchOp::Regex, name, ".+").unwrap(),
    }
}

fn same(a: &[Series], b: &[Series]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} series vs {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        if x.labels != y.labels {
            return Err(format!("labels {} vs {}", x.labels, y.labels));
        }
        let bits = |s: &Series| -> Vec<(i64, u64)> {
            s.samples.iter().map(|p| (p.t, p.v.to_bits())).collect()
        };
        if bits(x) != bits(y) {
            return Err(format!(
                "{}: {} samples vs {} (first difference at {:?})",
                x.labels,
                x.samples.len(),
                y.samples.len(),
                bits(x).iter().zip(bits(y)).find(|(p, q)| *p != q)
            ));
        }
    }
    Ok(())
}

fn tmp(seed: u64) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-ref-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn tsdb_answers_as_the_reference_store() {
    for seed in [1u64, 7, 42, 1234] {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed * 0x1000_0001));
        let dir = tmp(seed);
        // 30-minute blocks, compacted up to 90 minutes: several cuts and merges in 6 hours.
        let opts = Options::new(0, 0).with_block_range(HOUR / 2, Some(3 * HOUR / 2));
        let mut db = Db::open(&dir, opts.clone()).unwrap();
        let reference = MemoryStorage::new();
        let mut series: Vec<Labels> = (0..25).map(|_| series_labels(&mut r)).collect();
        series.sort();
        series.dedup();
        let mut last: Vec<(i64, f64)> = vec![(-1, 0.0); series.len()];
        let mut t = 0i64;
        let mut mapped_seen = 0;
        while t < 6 * HOUR {
            let mut app = db.appender();
            let mut rapp = reference.appender();
            for (i, l) in series.iter().enumerate() {
                if r.below(5) == 0 {
                    continue; // not every series every time
                }
                let ts = t + r.below(10_000) as i64;
                if ts <= last[i].0 {
                    continue;
                }
                let v = value(&mut r, last[i].1);
                last[i] = (ts, if v.is_finite() { v } else { last[i].1 });
                app.append(0, l, ts, v).unwrap();
                rapp.append(0, l, ts, v).unwrap();
            }
            app.commit().unwrap();
            rapp.commit().unwrap();
            t += 15_000 + r.below(30_000) as i64;
            if r.below(60) == 0 {
                db.maintain().unwrap();
                // Mid-run, the head's full chunks are in their files (a maintenance pass
                // writes out what is due): one query across head and blocks.
                mapped_seen += chunk_files(&dir);
                check(&db, &reference, &mut r, seed, usize::MAX);
            }
            if r.below(200) == 0 {
                // Restart: WAL (and checkpoint) replay plus the blocks on disk. What a crash
                // while writing head chunk files leaves (a header cut short, a file of ours
                // with garbage after its header) is removed by the start; a file that is not
                // ours is left alone and never used.
                drop(db);
                let chunks = dir.join("head-chunks");
                std::fs::create_dir_all(&chunks).unwrap();
                std::fs::write(chunks.join("00000040"), b"VIGIL").unwrap();
                let mut junk = b"VIGILHCK\0\0\0\0\0\0\0\0".to_vec();
                junk.extend((0..5000).map(|_| r.below(256) as u8));
                std::fs::write(chunks.join("00000041"), junk).unwrap();
                std::fs::write(chunks.join("00000050"), b"someone else's").unwrap();
                db = Db::open(&dir, opts.clone()).unwrap();
                assert!(!chunks.join("00000040").exists() && !chunks.join("00000041").exists());
                assert_eq!(
                    std::fs::read(chunks.join("00000050")).unwrap(),
                    b"someone else's"
                );
                check(&db, &reference, &mut r, seed, usize::MAX);
            }
        }
        db.maintain().unwrap();
        for round in 0..200 {
            check(&db, &reference, &mut r, seed, round);
        }
        assert!(!db.blocks().is_empty(), "blocks were cut");
        assert!(
            mapped_seen > 0,
            "seed {seed}: head chunks were written to files"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// How many of vigil's head chunk files hold chunks (past their 16-byte header).
fn chunk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("head-chunks"))
        .map(|rd| {
            rd.filter_map(|e| {
                use std::os::unix::fs::FileExt;
                let mut b = [0u8; 32];
                let f = std::fs::File::open(e.ok()?.path()).ok()?;
                f.read_exact_at(&mut b, 0).ok()?;
                Some(b)
            })
            .filter(|b| b.starts_with(b"VIGILHCK") && b[16..].iter().any(|&x| x != 0))
            .count()
        })
        .unwrap_or(0)
}

/// One random selection (and its sharded reading, label names and values) compared with the
/// reference store's.
fn check(db: &Db, reference: &MemoryStorage, r: &mut Rng, seed: u64, round: usize) {
    {
        let ms: Vec<Matcher> = (0..=r.below(2)).map(|_| matcher(r)).collect();
        if ms.iter().all(|m| m.matches_empty()) {
            return;
        }
        let mint = r.below(7 * HOUR as u64) as i64 - HOUR;
        let maxt = mint + r.below(4 * HOUR as u64) as i64;
        let got: Vec<Series> = db
            .querier(mint, maxt)
            .unwrap()
            .select(&ms)
            .unwrap()
            .collect();
        let want: Vec<Series> = reference
            .querier(mint, maxt)
            .unwrap()
            .select(&ms)
            .unwrap()
            .collect();
        if let Err(e) = same(&got, &want) {
            panic!("seed {seed} round {round} {ms:?} [{mint}, {maxt}]: {e}");
        }
        // The lazy sharded reading: shards partition the selection, each in label order.
        let of = 1 + r.below(4) as usize;
        let q = db.querier(mint, maxt).unwrap();
        let mut sharded: Vec<Series> = Vec::new();
        for shard in 0..of {
            let part: Vec<Series> = q.select_shard(&ms, shard, of).unwrap().collect();
            assert!(
                part.windows(2).all(|w| w[0].labels < w[1].labels),
                "seed {seed} round {round}: shard {shard} of {of} out of label order"
            );
            assert!(part.iter().all(|s| s.labels.shard(of) == shard));
            sharded.extend(part);
        }
        sharded.sort_by(|a, b| a.labels.cmp(&b.labels));
        if let Err(e) = same(&sharded, &want) {
            panic!("seed {seed} round {round} {ms:?} [{mint}, {maxt}] in {of} shards: {e}");
        }
        let q = db.querier(mint, maxt).unwrap();
        let rq = reference.querier(mint, maxt).unwrap();
        assert_eq!(q.label_names(&ms).unwrap(), rq.label_names(&ms).unwrap());
        assert_eq!(
            q.label_values("pod", &ms).unwrap(),
            rq.label_values("pod", &ms).unwrap(),
            "seed {seed} round {round}"
        );
    }
}
