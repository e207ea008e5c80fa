//! `bcache`: every bcache cache set under `/sys/fs/bcache/<uuid>/`, with its backing devices
//! (`bdevN`) and cache devices (`cacheN`), as node_exporter 1.5 (procfs 0.8) reads and reports
//! them, including the sizes bcache writes in its own human-readable form (`20.4G`).

use std::io::ErrorKind;
use std::path::Path;

use super::{Error, Kind, Node, Out};

/// The set's own values: (file under the set, family suffix, help, type, scale).
const SET: [(&str, &str, &str, Kind, f64); 10] = [
    (
        "average_key_size",
        "average_key_size_sectors",
        "Average data per key in the btree (sectors).",
        Kind::Gauge,
        1.0,
    ),
    (
        "btree_cache_size",
        "btree_cache_size_bytes",
        "Amount of memory currently used by the btree cache.",
        Kind::Gauge,
        1.0,
    ),
    (
        "cache_available_percent",
        "cache_available_percent",
        "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).",
        Kind::Gauge,
        1.0,
    ),
    ("congested", "congested", "Congestion.", Kind::Gauge, 1.0),
    (
        "root_usage_percent",
        "root_usage_percent",
        "Percentage of the root btree node in use (tree depth increases if too high).",
        Kind::Gauge,
        1.0,
    ),
    (
        "tree_depth",
        "tree_depth",
        "Depth of the btree.",
        Kind::Gauge,
        1.0,
    ),
    (
        "internal/active_journal_entries",
        "active_journal_entries",
        "Number of journal entries that are newer than the index.",
        Kind::Gauge,
        1.0,
    ),
    (
        "internal/btree_nodes",
        "btree_nodes",
        "Total nodes in the btree.",
        Kind::Gauge,
        1.0,
    ),
    (
        // The file is in microseconds; node_exporter scales it as nanoseconds, so the
        // "seconds" are a thousandth of the real duration.
        "internal/btree_read_average_duration_us",
        "btree_read_average_duration_seconds",
        "Average btree read duration.",
        Kind::Gauge,
        1e-9,
    ),
    (
        "internal/cache_read_races",
        "cache_read_races_total",
        "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.",
        Kind::Counter,
        1.0,
    ),
];

/// The files of each `stats_*` directory: (file, family suffix, help). The set's and the
/// backing devices' `stats_five_minute` and the set's `stats_total` are read too (so a bad one
/// fails the collector) but only the backing devices' `stats_total` is reported.
const PERIOD: [(&str, &str, &str); 7] = [
    (
        "bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
    ),
    (
        "cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
    ),
    (
        "cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
    ),
    (
        "cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
    ),
    (
        "cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
    (
        "cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
    ),
    (
        "cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
    ),
];

/// A cache device's values: (file, family suffix, help, type).
const CACHE: [(&str, &str, &str, Kind); 3] = [
    (
        "io_errors",
        "io_errors",
        "Number of errors that have occurred, decayed by io_error_halflife.",
        Kind::Gauge,
    ),
    (
        "metadata_written",
        "metadata_written_bytes_total",
        "Sum of all non data writes (btree writes and all other metadata).",
        Kind::Counter,
    ),
    (
        "written",
        "written_bytes_total",
        "Sum of all data that has been written to the cache.",
        Kind::Counter,
    ),
];

/// Go's `uint64(f)` as amd64 computes it: negative values wrap (`-5` is 2^64-5), and NaN and
/// values out of range give 2^63 (the x86 "integer indefinite"), where Rust's `as` saturates.
pub(super) fn go_u64(f: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let cvt = |x: f64| {
        if x.is_nan() || !(-TWO_63..TWO_63).contains(&x) {
            i64::MIN
        } else {
            x as i64
        }
    };
    if f < TWO_63 {
        cvt(f) as u64
    } else {
        (cvt(f - TWO_63) as u64) | (1 << 63)
    }
}

/// Go's `strconv.ParseFloat` at `T`'s precision, for decimal text: a value out of range is an
/// error there, not infinity. (Go's hexadecimal floats, `0x1p4`, are not accepted.)
pub(super) fn go_parse_float<T: std::str::FromStr + Into<f64>>(s: &str) -> Option<f64> {
    let v: f64 = s.parse::<T>().ok()?.into();
    let word = s.trim_start_matches(['+', '-']);
    let infinite = word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity");
    (!v.is_infinite() || infinite).then_some(v)
}

/// bch_hprint's mantissa as procfs reads it: `20.4` is 20 + 4/10.24, whatever follows the
/// point (so `.10` is more than `.9`), anything after a second point ignored.
fn pseudo_float(s: &str) -> Option<f64> {
    let mut parts = s.split('.');
    let int = go_parse_float::<f64>(parts.next()?)?;
    match parts.next() {
        None => Some(int),
        Some(frac) => Some(int + go_parse_float::<f64>(frac)? / 10.24),
    }
}

/// procfs's `dehumanize`: a last byte beyond `9` is a binary multiplier (`k`, `M`, … `Y`; any
/// other letter multiplies by 0), else the whole is a plain number.
fn dehumanize(b: &[u8]) -> Option<u64> {
    let (&last, rest) = b.split_last()?;
    let v = if last > b'9' {
        let mul = match last {
            b'k' => Some(10),
            b'M' => Some(20),
            b'G' => Some(30),
            b'T' => Some(40),
            b'P' => Some(50),
            b'E' => Some(60),
            b'Z' => Some(70),
            b'Y' => Some(80),
            _ => None,
        }
        .map_or(0.0, |shift| (1u128 << shift) as f64);
        pseudo_float(std::str::from_utf8(rest).ok()?)? * mul
    } else {
        go_parse_float::<f64>(std::str::from_utf8(b).ok()?)?
    };
    Some(go_u64(v))
}

/// A signed value: one leading `-`, the rest dehumanized, negated as Go wraps a uint64.
fn dehumanize_signed(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => Some(dehumanize(rest.as_bytes())?.wrapping_neg() as i64),
        None => Some(dehumanize(s.as_bytes())? as i64),
    }
}

fn parse_error(path: &Path, what: String) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        what,
    }
}

/// procfs's `readValue`: a file that does not exist reads as 0 (kernels differ in what they
/// have); otherwise the content without its last byte, taken for the newline whatever it is
/// (so `23` without one reads as 2). An empty file panics node_exporter 1.5; here it is an
/// error.
fn value(path: &Path) -> Result<u64, Error> {
    let b = match super::read_bounded_bytes(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(b) => b,
    };
    let Some((_, content)) = b.split_last() else {
        return Err(parse_error(path, "empty file".into()));
    };
    dehumanize(content).ok_or_else(|| {
        parse_error(
            path,
            format!(
                "{:?} is not a bcache value",
                String::from_utf8_lossy(content)
            ),
        )
    })
}

/// The last whitespace-separated field of each line starting with one of `prefixes`, in
/// order, with `parse` applied; a later line of a prefix overrides an earlier one. Unlike the
/// single values, a missing file fails the collector.
fn fields<const N: usize, T: Copy + Default>(
    path: &Path,
    prefixes: [&str; N],
    parse: impl Fn(usize, &str) -> Option<T>,
) -> Result<[T; N], Error> {
    let text = super::read(path)?;
    let mut out = [T::default(); N];
    for line in text.lines() {
        let Some(i) = prefixes.iter().position(|p| line.starts_with(p)) else {
            continue;
        };
        let field = line.split_whitespace().last().unwrap_or_default();
        out[i] = parse(i, field)
            .ok_or_else(|| parse_error(path, format!("{line:?} is not a bcache value")))?;
    }
    Ok(out)
}

/// `writeback_rate_debug`: rate, dirty, target, proportional, integral, change, next io
/// (the unsigned ones kept bit for bit). All are parsed, so a bad one fails the collector;
/// dirty and next io are not reported.
fn writeback(path: &Path) -> Result<[i64; 7], Error> {
    let prefixes = [
        "rate:",
        "dirty:",
        "target:",
        "proportional:",
        "integral:",
        "change:",
        "next io:",
    ];
    fields(path, prefixes, |i, f| match i {
        0 => dehumanize(f.strip_suffix("/sec").unwrap_or(f).as_bytes()).map(|v| v as i64),
        1 | 2 => dehumanize(f.as_bytes()).map(|v| v as i64),
        3 | 4 => dehumanize_signed(f),
        5 => dehumanize_signed(f.strip_suffix("/sec").unwrap_or(f)),
        _ => f.strip_suffix("ms").unwrap_or(f).parse().ok(),
    })
}

/// `priority_stats`: the unused and metadata percentages.
fn priority(path: &Path) -> Result<[u64; 2], Error> {
    fields(path, ["Unused:", "Metadata:"], |_, f| {
        let f = f.strip_suffix('%').unwrap_or(f);
        // Go's ParseUint takes no sign.
        if f.starts_with('+') {
            None
        } else {
            f.parse().ok()
        }
    })
}

/// One `stats_*` directory's values, in [`PERIOD`]'s order.
fn period(dir: &Path) -> Result<[u64; 7], Error> {
    let mut v = [0; 7];
    for (slot, (file, _, _)) in v.iter_mut().zip(PERIOD) {
        *slot = value(&dir.join(file))?;
    }
    Ok(v)
}

struct Bdev {
    name: String,
    dirty_data: u64,
    writeback: [i64; 7],
    total: [u64; 7],
}

struct Cache {
    name: String,
    values: [u64; 3],
    priority: Option<[u64; 2]>,
}

struct Set {
    uuid: String,
    values: [u64; 10],
    bdevs: Vec<Bdev>,
    caches: Vec<Cache>,
}

fn read_set(dir: &Path, uuid: String, with_priority: bool) -> Result<Set, Error> {
    let mut values = [0; 10];
    for (slot, (file, ..)) in values.iter_mut().zip(SET) {
        *slot = value(&dir.join(file))?;
    }
    period(&dir.join("stats_five_minute"))?;
    period(&dir.join("stats_total"))?;
    let mut bdevs = Vec::new();
    for (name, d) in super::numbered(dir, "bdev") {
        let dirty_data = value(&d.join("dirty_data"))?;
        let writeback = writeback(&d.join("writeback_rate_debug"))?;
        period(&d.join("stats_five_minute"))?;
        let total = period(&d.join("stats_total"))?;
        bdevs.push(Bdev {
            name,
            dirty_data,
            writeback,
            total,
        });
    }
    let mut caches = Vec::new();
    for (name, d) in super::numbered(dir, "cache") {
        let mut values = [0; 3];
        for (slot, (file, ..)) in values.iter_mut().zip(CACHE) {
            *slot = value(&d.join(file))?;
        }
        let priority = if with_priority {
            Some(priority(&d.join("priority_stats"))?)
        } else {
            None
        };
        caches.push(Cache {
            name,
            values,
            priority,
        });
    }
    Ok(Set {
        uuid,
        values,
        bdevs,
        caches,
    })
}

/// `fs/bcache/*-*` without `--collector.bcache.priorityStats`.
pub(super) fn bcache(n: &Node, out: &mut Out) -> Result<(), Error> {
    bcache_with(n, out, n.opts.bcache_priority_stats)
}

/// `fs/bcache/*-*`: each cache set, named by its uuid (any entry with a `-` in its name, as
/// procfs globs them). As in node_exporter 1.5 every set is read before anything is written
/// and any failure fails the collector; no set at all is a success with nothing to report.
/// `with_priority` is `--collector.bcache.priorityStats`: each cache device's
/// `priority_stats` too, which the kernel computes by walking every bucket.
pub(super) fn bcache_with(n: &Node, out: &mut Out, with_priority: bool) -> Result<(), Error> {
    let dir = n.sys("fs/bcache");
    let mut uuids: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| name.contains('-'))
        .collect();
    uuids.sort();
    let mut sets = Vec::new();
    for (uuid, path) in uuids {
        sets.push(read_set(&path, uuid, with_priority)?);
    }
    for s in &sets {
        let uuid = [("uuid", s.uuid.as_str())];
        for ((_, family, help, kind, scale), v) in SET.iter().zip(s.values) {
            out.add(
                &format!("node_bcache_{family}"),
                help,
                *kind,
                &uuid,
                v as f64 * scale,
            );
        }
        for b in &s.bdevs {
            let labels = [
                ("backing_device", b.name.as_str()),
                ("uuid", s.uuid.as_str()),
            ];
            let w = &b.writeback;
            for (family, help, v) in [
                (
                    "dirty_data_bytes",
                    "Amount of dirty data for this backing device in the cache.",
                    b.dirty_data as f64,
                ),
                (
                    "dirty_target_bytes",
                    "Current dirty data target threshold for this backing device in bytes.",
                    w[2] as u64 as f64,
                ),
                (
                    "writeback_rate",
                    "Current writeback rate for this backing device in bytes.",
                    w[0] as u64 as f64,
                ),
                (
                    "writeback_rate_proportional_term",
                    "Current result of proportional controller, part of writeback rate",
                    w[3] as f64,
                ),
                (
                    "writeback_rate_integral_term",
                    "Current result of integral controller, part of writeback rate",
                    w[4] as f64,
                ),
                (
                    "writeback_change",
                    "Last writeback rate change step for this backing device.",
                    w[5] as f64,
                ),
            ] {
                out.gauge(&format!("node_bcache_{family}"), help, &labels, v);
            }
            for ((_, family, help), v) in PERIOD.iter().zip(b.total) {
                out.counter(&format!("node_bcache_{family}"), help, &labels, v as f64);
            }
        }
        for c in &s.caches {
            let labels = [("cache_device", c.name.as_str()), ("uuid", s.uuid.as_str())];
            for ((_, family, help, kind), v) in CACHE.iter().zip(c.values) {
                out.add(
                    &format!("node_bcache_{family}"),
                    help,
                    *kind,
                    &labels,
                    v as f64,
                );
            }
            if let Some([unused, metadata]) = c.priority {
                out.gauge(
                    "node_bcache_priority_stats_unused_percent",
                    "The percentage of the cache that doesn't contain any data.",
                    &labels,
                    unused as f64,
                );
                out.gauge(
                    "node_bcache_priority_stats_metadata_percent",
                    "Bcache's metadata overhead.",
                    &labels,
                    metadata as f64,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bcache's sizes as procfs reads them, and Go's float-to-uint64 conversion.
    #[test]
    fn values_as_procfs_reads_them() {
        for (s, want) in [
            ("0", Some(0)),
            ("97", Some(97)),
            ("12.2k", Some(12488)),
            ("2.10k", Some(3048)),
            ("1.2.3k", Some(1224)),
            ("1.6T", Some(1_743_756_722_176)),
            ("5x", Some(0)),
            ("-5", Some(u64::MAX - 4)),
            ("-5k", Some(u64::MAX - 5119)),
            ("1e30", Some(1 << 63)),
            ("1.5%", None),
            ("inf", None),
            ("", None),
        ] {
            assert_eq!(dehumanize(s.as_bytes()), want, "{s}");
        }
        assert_eq!(dehumanize_signed("-6.1G"), Some(-6_547_308_544));
        assert_eq!(dehumanize_signed("-0.0k"), Some(0));
        assert_eq!(go_u64(f64::NAN), 1 << 63);
        assert_eq!(go_u64(-125_000_000.0), u64::MAX - 124_999_999);
        assert_eq!(
            go_u64(18_446_744_073_709_549_568.0),
            18_446_744_073_709_549_568
        );
        assert_eq!(go_parse_float::<f32>("13.64"), Some(13.640_000_343_322_754));
        assert_eq!(go_parse_float::<f32>("1e39"), None);
    }
}
