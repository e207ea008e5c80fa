//! The `zfs` collector: OpenZFS's kstats under `spl/kstat/zfs/` (the module-wide files, and each
//! pool's `io`, `objset-*` and `state`), as node_exporter 1.5 reads them: the same families,
//! help texts, skipped rows and failures.

use std::collections::HashSet;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::out::{Kind, Out};
use super::{Error, Node, read_bounded_bytes};

/// The module-wide kstat files, by the subsystem their families are named after. `dbuf_stats`
/// is node_exporter 1.5's name for what OpenZFS calls `dbufstats`, so on a real node it is
/// never found: `dbufstats` is not read.
const STATS: [(&str, &str); 11] = [
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbuf_stats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
];

/// The states `node_zfs_zpool_state` has a series for: 1.5 has no `suspended`, so a suspended
/// pool (or any other state) shows 0 in every one.
const STATES: [&str; 6] = [
    "online", "degraded", "faulted", "offline", "removed", "unavail",
];

/// The kstat type node_exporter 1.5 reads (`KSTAT_DATA_UINT64`); rows of any other type,
/// such as the int64s newer OpenZFS writes, are skipped.
const UINT64: &str = "4";

/// Samples as node_exporter's registry keeps them: a series collected twice, or a family
/// collected again with another help text or type (`foo-bar` after `foo_bar`, `a.b` after
/// `b`), keeps what came first and the collector still succeeds.
struct Sink<'a> {
    out: &'a mut Out,
    seen: HashSet<String>,
}

impl Sink<'_> {
    fn add(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], v: u64) {
        if self
            .out
            .family(name)
            .is_some_and(|(h, k)| h != help || k != kind)
        {
            return;
        }
        let mut key = name.to_string();
        for (k, lv) in labels {
            for part in [k, lv] {
                key.push('\0');
                key.push_str(part);
            }
        }
        if self.seen.insert(key) {
            self.out.add(name, help, kind, labels, v as f64);
        }
    }
}

/// node_exporter's name for a kstat: what follows its last `.`, `-` written `_`, after
/// `node_<subsystem>`. Nothing follows in a kstat ending in `.`: Prometheus's `BuildFQName`
/// then gives an empty name, on which node_exporter 1.5 crashes and vigil fails the collector.
fn metric_name(subsystem: &str, kstat: &str) -> String {
    let last = kstat.rsplit('.').next().unwrap_or(kstat).replace('-', "_");
    if last.is_empty() {
        String::new()
    } else {
        format!("node_{subsystem}_{last}")
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)`: decimal digits only (Rust's parser would also take a
/// leading `+`).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn not_integer(help: &str) -> String {
    format!("could not parse expected integer value for {help:?}")
}

/// A module-wide file: `name type data` rows after that header. Rows before it, shorter rows
/// and other types are skipped; a file without the header fails the collector.
fn stats(sink: &mut Sink<'_>, subsystem: &str, file: &str, text: &str) -> Result<(), String> {
    let mut started = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if !started {
            started = f == ["name", "type", "data"];
            continue;
        }
        if f.len() < 3 || f[1] != UINT64 {
            continue;
        }
        let help = format!("kstat.zfs.misc.{file}.{}", f[0]);
        let v = parse_u64(f[2]).ok_or_else(|| not_integer(&help))?;
        let name = metric_name(subsystem, f[0]);
        sink.add(&name, &help, Kind::Untyped, &[], v);
    }
    if !started {
        return Err(format!("did not parse a single {file:?} metric"));
    }
    Ok(())
}

/// A pool's `io` (OpenZFS before 2.1): a header row of at least 12 names starting `nread`,
/// then rows of values under them. Nothing before such a header is read, and a file without
/// one gives nothing.
fn pool_io(sink: &mut Sink<'_>, pool: &str, text: &str) -> Result<(), String> {
    let mut names: Vec<&str> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if names.is_empty() {
            if f.len() >= 12 && f[0] == "nread" {
                names = f;
            }
            continue;
        }
        // node_exporter 1.5 crashes on a row (even an empty one) shorter than the header.
        if f.len() < names.len() {
            let (got, want) = (f.len(), names.len());
            return Err(format!("a row of {got} values under {want} names"));
        }
        for (name, v) in names.iter().zip(&f) {
            let help = format!("kstat.zfs.misc.io.{name}");
            let v = parse_u64(v).ok_or_else(|| not_integer(&help))?;
            let name = metric_name("zfs_zpool", name);
            sink.add(&name, &help, Kind::Untyped, &[("zpool", pool)], v);
        }
    }
    Ok(())
}

/// A dataset's `objset-*`: `name type data` rows, the dataset named by its `dataset_name` row.
/// Rows before that one have empty `zpool` and `dataset` labels, as in node_exporter 1.5.
fn objset(sink: &mut Sink<'_>, pool: &str, text: &str) -> Result<(), String> {
    let (mut zpool, mut dataset) = ("", "");
    let mut started = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if !started {
            started = f == ["name", "type", "data"];
            continue;
        }
        if f.len() < 3 {
            continue;
        }
        if f[0] == "dataset_name" {
            (zpool, dataset) = (pool, f[2]);
            continue;
        }
        if f[1] != UINT64 {
            continue;
        }
        let help = format!("kstat.zfs.misc.objset.{}", f[0]);
        let v = parse_u64(f[2]).ok_or_else(|| not_integer(&help))?;
        let name = metric_name("zfs_zpool_dataset", f[0]);
        sink.add(
            &name,
            &help,
            Kind::Untyped,
            &[("dataset", dataset), ("zpool", zpool)],
            v,
        );
    }
    if !started {
        return Err(format!("did not parse a single {zpool} {dataset} metric"));
    }
    Ok(())
}

/// A pool's `state`: its first line, lowercased (Go's per-character mapping), against each of
/// [`STATES`]; only an exact match counts (`ONLINE ` with a space is no state).
fn pool_state(sink: &mut Sink<'_>, pool: &str, text: &str) {
    let first = text.split('\n').next().unwrap_or("");
    let first = first.strip_suffix('\r').unwrap_or(first);
    let state: String = first
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect();
    for s in STATES {
        sink.add(
            "node_zfs_zpool_state",
            "kstat.zfs.misc.state",
            Kind::Gauge,
            &[("state", s), ("zpool", pool)],
            u64::from(state == s),
        );
    }
}

/// Whether Go's `os.Open` would open `path` (non-blocking here, so a FIFO cannot hold the
/// scrape; it is refused when read).
fn opens(path: &Path) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok()
}

/// A kstat file's text; bytes that are not UTF-8 only matter where Go would refuse them too
/// (in a name or label).
fn read_text(path: &Path) -> Result<String, Error> {
    read_bounded_bytes(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// `dir`'s entries that `keep` accepts by name, sorted as Go's `filepath.Glob` returns them
/// (its `*` takes hidden names too).
fn entries(dir: &Path, keep: impl Fn(&str, &Path) -> bool) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, path)| keep(name.as_str(), path.as_path()))
        .collect();
    v.sort();
    v
}

/// `spl/kstat/zfs/`: no such directory is no data (the zfs module is not loaded). A missing
/// module-wide file is skipped, each came with some ZFS version; one that cannot be parsed
/// fails the collector and leaves the pools unread. node_exporter reads the module-wide files
/// in random order, so what it serves before such a failure varies; vigil reads them in
/// [`STATS`]'s order.
pub(super) fn zfs(n: &Node, out: &mut Out) -> Result<(), Error> {
    let base = n.proc("spl/kstat/zfs");
    if !opens(&base) {
        return Err(Error::NoData(format!(
            "{} cannot be opened: ZFS statistics are not available",
            base.display()
        )));
    }
    let mut sink = Sink {
        out,
        seen: HashSet::new(),
    };
    let failed = |path: &Path, what: String| Error::Parse {
        path: path.to_path_buf(),
        what,
    };
    for (subsystem, file) in STATS {
        let path = base.join(file);
        if !opens(&path) {
            continue;
        }
        let text = read_text(&path)?;
        stats(&mut sink, subsystem, file, &text).map_err(|w| failed(&path, w))?;
    }
    // The pools: every directory, read as node_exporter globs `*/io`, then `*/objset-*`, then
    // `*/state`. A file listed but not readable fails the collector.
    let pools = entries(&base, |_, p| p.is_dir());
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    for (pool, dir) in &pools {
        let path = dir.join("io");
        if exists(&path) {
            let text = read_text(&path)?;
            pool_io(&mut sink, pool, &text).map_err(|w| failed(&path, w))?;
        }
    }
    for (pool, dir) in &pools {
        for (_, path) in entries(dir, |name, _| name.starts_with("objset-")) {
            let text = read_text(&path)?;
            objset(&mut sink, pool, &text).map_err(|w| failed(&path, w))?;
        }
    }
    for (pool, dir) in &pools {
        let path = dir.join("state");
        if exists(&path) {
            let text = read_text(&path)?;
            pool_state(&mut sink, pool, &text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: impl FnOnce(&mut Sink<'_>) -> Result<(), String>) -> (Result<(), String>, String) {
        let mut out = Out::default();
        let r = {
            let mut sink = Sink {
                out: &mut out,
                seen: HashSet::new(),
            };
            f(&mut sink)
        };
        (r, out.render())
    }

    #[test]
    fn stats_rows_as_node_exporter_reads_them() {
        let text = "13 1 0x01 9 2448 1 2\nhits 4 99\nname type data\nhits 4 5\nhits 4 3\n\
                    neg 3 -7\nint 1 2\nerpt-set 4 1\nerpt_set 4 2\na.b 4 6\nb 4 7\nshort 4\n";
        let (r, text) = run(|s| stats(s, "zfs_fm", "fm", text));
        assert_eq!(r, Ok(()));
        assert_eq!(
            text,
            "# HELP node_zfs_fm_b kstat.zfs.misc.fm.a.b\n# TYPE node_zfs_fm_b untyped\n\
             node_zfs_fm_b 6\n\
             # HELP node_zfs_fm_erpt_set kstat.zfs.misc.fm.erpt-set\n\
             # TYPE node_zfs_fm_erpt_set untyped\nnode_zfs_fm_erpt_set 1\n\
             # HELP node_zfs_fm_hits kstat.zfs.misc.fm.hits\n# TYPE node_zfs_fm_hits untyped\n\
             node_zfs_fm_hits 5\n"
        );
        // No header, or a value Go's ParseUint refuses: the collector fails.
        for bad in ["", "name type data\nx 4 +1\n", "name type data\nx 4 -1\n"] {
            assert!(run(|s| stats(s, "zfs_fm", "fm", bad)).0.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pool_files() {
        let io = "12 3 0x00 1 80 1 2\nnread nwritten reads writes wtime wlentime wupdate rtime \
                  rlentime rupdate wcnt rcnt\n1 2 3 4 5 6 7 8 9 10 11 12 13\n\
                  99 99 99 99 99 99 99 99 99 99 99 99\n";
        let (r, text) = run(|s| pool_io(s, "tank", io));
        assert_eq!(r, Ok(()));
        assert!(text.contains("\nnode_zfs_zpool_nread{zpool=\"tank\"} 1\n"));
        assert!(text.contains("\nnode_zfs_zpool_rcnt{zpool=\"tank\"} 12\n"));
        assert!(!text.contains(" 99\n") && !text.contains(" 13\n"));
        // An 11-name header is not one; a short row is refused (node_exporter crashes).
        let eleven = "nread a b c d e f g h i j\n1\n";
        assert_eq!(run(|s| pool_io(s, "t", eleven)).1, "");
        let short = "nread a b c d e f g h i j k\n1 2 3\n";
        assert!(run(|s| pool_io(s, "t", short)).0.is_err());

        let os = "name type data\nwrites 4 1\ndataset_name 7 tank/home\nnread 4 2\nneg 3 3\n";
        let (r, text) = run(|s| objset(s, "tank", os));
        assert_eq!(r, Ok(()));
        assert!(text.contains("node_zfs_zpool_dataset_writes{dataset=\"\",zpool=\"\"} 1\n"));
        assert!(
            text.contains("node_zfs_zpool_dataset_nread{dataset=\"tank/home\",zpool=\"tank\"} 2\n")
        );
        assert!(!text.contains("neg"));
        assert!(run(|s| objset(s, "tank", "writes 4 1\n")).0.is_err());

        for (state, online) in [("ONLINE\nx\n", 1), ("online \n", 0), ("", 0)] {
            let (_, text) = run(|s| {
                pool_state(s, "tank", state);
                Ok(())
            });
            assert_eq!(text.lines().count(), 2 + STATES.len());
            let want = format!("{{state=\"online\",zpool=\"tank\"}} {online}\n");
            assert!(text.contains(&want), "{state:?}");
        }
    }
}
