//! Tests of `db`'s admin operations (deletions, snapshots).

use super::*;

#[test]
fn delete_series_survives_restart_and_rewrites_blocks() {
    let d = std::env::temp_dir().join(format!("vigil-db-delete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let la = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
    let lb = Labels::from_pairs([("__name__", "x"), ("job", "b")]);
    {
        let db = Db::open(&d, Options::new(0, 0)).unwrap();
        let mut t = 0;
        while t < 5 * HOUR_MS {
            let mut app = db.appender();
            app.append(0, &la, t, 1.0).unwrap();
            app.append(0, &lb, t, 2.0).unwrap();
            app.commit().unwrap();
            t += 60_000;
        }
        db.maintain().unwrap();
        assert!(!db.blocks().is_empty());
        let n = db
            .delete_series(&[vec![Matcher::equal("job", "a")]], 0, i64::MAX)
            .unwrap();
        assert!(n >= 2, "head and block series touched: {n}");
        let snap = db.snapshot(false).unwrap();
        assert!(d.join("snapshots").join(&snap).is_dir());
        assert_eq!(snap.len(), "20261124T103000Z-".len() + 16);
    }
    let db = Db::open(&d, Options::new(0, 0)).unwrap();
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let a: usize = q
        .select(&[Matcher::equal("job", "a")])
        .unwrap()
        .map(|s| s.samples.len())
        .sum();
    let b: usize = q
        .select(&[Matcher::equal("job", "b")])
        .unwrap()
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(a, 0, "deleted samples stay deleted after a restart");
    assert_eq!(b, 5 * 60);
}

#[test]
fn snapshot_names_like_prometheus() {
    assert_eq!(format_snapshot_time(1_512_940_344), "20171210T211224Z");
}
