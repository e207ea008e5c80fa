//! `vigil tsdb analyze`, `dump` and `export`: inspect the blocks of a data directory (vigil's
//! or Prometheus's), and write it out in Prometheus's format.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use vigil_storage::{Matcher, Storage};

use crate::block::Block;
use crate::db::Db;

/// A report of the blocks in `dir`: ranges, sizes, and the label names and metric names with
/// the most series (the cardinality questions `promtool tsdb analyze` answers).
pub fn analyze(dir: &Path, limit: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut blocks: Vec<Block> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        if e.path().join("meta.json").exists() {
            match Block::open(&e.path()) {
                Ok(b) => blocks.push(b),
                // One damaged block does not hide the others: named, and the report goes on.
                Err(err) => {
                    let _ = writeln!(out, "Unreadable block {}: {err}\n", e.path().display());
                }
            }
        }
    }
    blocks.sort_by_key(|b| b.meta.min_time);
    if blocks.is_empty() {
        return Err(format!("no blocks in {}", dir.display()));
    }
    for b in &blocks {
        let m = &b.meta;
        let _ = writeln!(
            out,
            "Block ID: {}\nFormat: {}\nDuration: {}ms (mint {} maxt {})\nSeries: {}\nSamples: {}\nChunks: {}\nSize: {} bytes\nCompaction level: {}\n",
            m.ulid,
            match b.format {
                crate::block::Format::Vigil => "vigil".to_string(),
                crate::block::Format::Prometheus(v) => format!("Prometheus (index v{v})"),
            },
            m.max_time - m.min_time,
            m.min_time,
            m.max_time,
            m.stats.num_series,
            m.stats.num_samples,
            m.stats.num_chunks,
            b.size_bytes,
            m.compaction.level
        );
    }
    let newest = blocks
        .last()
        .map(|b| b.meta.ulid.clone())
        .unwrap_or_default();
    let b = blocks
        .iter()
        .find(|b| b.meta.ulid == newest)
        .ok_or("no block")?;
    let series = b.all_series();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut label_card: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    let mut pairs: HashMap<String, usize> = HashMap::new();
    for s in &series {
        *by_name
            .entry(s.labels.get_or_empty("__name__").to_string())
            .or_default() += 1;
        for l in s.labels.iter() {
            label_card
                .entry(l.name.to_string())
                .or_default()
                .insert(l.value.to_string());
            *pairs.entry(format!("{}={}", l.name, l.value)).or_default() += 1;
        }
    }
    let top = |m: Vec<(String, usize)>, title: &str, out: &mut String| {
        let mut m = m;
        m.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let _ = writeln!(out, "{title} (block {newest}):");
        for (k, v) in m.into_iter().take(limit) {
            let _ = writeln!(out, "{v} {k}");
        }
        out.push('\n');
    };
    top(
        by_name.into_iter().collect(),
        "Highest cardinality metric names",
        &mut out,
    );
    top(
        label_card.into_iter().map(|(k, v)| (k, v.len())).collect(),
        "Highest cardinality labels",
        &mut out,
    );
    top(
        pairs.into_iter().collect(),
        "Most common label pairs",
        &mut out,
    );
    Ok(out)
}

/// Every sample of the database in `dir` within `[mint, maxt]`, one line each:
/// `{labels} value timestamp_ms`, as `promtool tsdb dump`.
pub fn dump(dir: &Path, mint: i64, maxt: i64, out: &mut dyn std::io::Write) -> Result<(), String> {
    // Read-only: dumping next to a running server must not repair, lock or write anything.
    let db = Db::open_read_only(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    let q = db.querier(mint, maxt).map_err(|e| e.to_string())?;
    let all =
        Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".+").map_err(|e| e.to_string())?;
    // Lazily, each series decoded as it is reached (the head's a few at a time): the whole
    // database is never in memory at once.
    for s in q.select_shard(&[all], 0, 1).map_err(|e| e.to_string())? {
        let labels = s.labels.clone();
        let mut text = String::from("{");
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "{}={}", l.name, vigil_model::labels::quote(l.value));
        }
        text.push('}');
        for x in s.samples {
            writeln!(out, "{text} {} {}", x.v, x.t).map_err(|e| e.to_string())?;
        }
        // Native histograms as Prometheus's dump prints them: the histogram's string form.
        for x in s.histograms {
            let h = &x.h;
            writeln!(
                out,
                "{text} {{count:{}, sum:{}, buckets:{:?}}} {}",
                h.count,
                h.sum,
                h.buckets()
                    .iter()
                    .filter(|b| b.count != 0.0)
                    .map(|b| (b.lower, b.upper, b.count))
                    .collect::<Vec<_>>(),
                x.t
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// What [`export_prometheus`] wrote.
pub struct Exported {
    pub blocks: Vec<crate::block::BlockMeta>,
}

/// Write the database in `dir` (blocks and head, either format) as Prometheus-format blocks
/// under `out`: one per source block with the same range, compaction level and sources, and
/// the head as one more. `dir` is opened read-only; `out` must be empty or absent.
pub fn export_prometheus(dir: &Path, out: &Path) -> Result<Exported, String> {
    if std::fs::read_dir(out)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        return Err(format!(
            "{} is not empty: export writes into an empty directory",
            out.display()
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let db = Db::open_read_only(dir).map_err(|e| format!("open {}: {e}", dir.display()))?;
    let mut metas = Vec::new();
    for b in db.blocks() {
        // Series by series, in label order: an export holds one at a time. Damage found
        // while reading stops the export rather than leaving it out.
        let before = b.skipped_chunks().1;
        let ulid = b.meta.ulid.clone();
        let bb = b.clone();
        // Checked once every series is read: a damaged chunk fails the block's export.
        let damaged = std::iter::once_with(move || {
            (bb.skipped_chunks().1 != before).then(|| {
                Err(std::io::Error::other(format!(
                    "block {ulid} has chunks vigil cannot read (damage)"
                )))
            })
        })
        .flatten();
        let series = b.read_all().map(Ok).chain(damaged);
        let m = crate::prometheus::writer::write_block_sorted(
            out,
            b.meta.min_time,
            b.meta.max_time,
            series,
            b.meta.compaction.clone(),
        )
        .map_err(|e| format!("write block for {}: {e}", b.meta.ulid))?;
        metas.push(m);
    }
    if let Some((lo, hi)) = db.head().time_range() {
        let series = db.head().series_in_sorted(lo, hi + 1).map(Ok);
        let m = crate::prometheus::writer::write_block_sorted(
            out,
            lo,
            hi + 1,
            series,
            crate::block::Compaction::default(),
        )
        .map_err(|e| format!("write the head's block: {e}"))?;
        metas.push(m);
    }
    Ok(Exported { blocks: metas })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{BlockFormat, Options};
    use vigil_model::Labels;

    /// `analyze` and `dump` on a directory of each block format vigil writes (and its head):
    /// the blocks named with their format, and every sample dumped once.
    #[test]
    fn analyze_and_dump_read_both_block_formats() {
        for format in [BlockFormat::Vigil, BlockFormat::Prometheus] {
            let d =
                std::env::temp_dir().join(format!("vigil-tools-{format:?}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            let hour = 3_600_000;
            let mut opts = Options::new(0, 0).with_block_range(hour / 2, Some(hour / 2));
            opts.block_format = format;
            {
                let db = Db::open(&d, opts).unwrap();
                let l = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
                for k in 0..180 {
                    let mut app = db.appender();
                    app.append(0, &l, k * 60_000, k as f64).unwrap();
                    app.commit().unwrap();
                }
                db.maintain().unwrap();
                assert!(db.blocks().len() >= 3, "{format:?}");
            }
            let report = analyze(&d, 10).unwrap();
            let want = match format {
                BlockFormat::Vigil => "Format: vigil\n",
                BlockFormat::Prometheus => "Format: Prometheus (index v2)\n",
            };
            assert!(report.contains(want), "{format:?}: {report}");
            assert!(report.contains("1 x\n"), "{format:?}: {report}");
            let mut out = Vec::new();
            dump(&d, i64::MIN, i64::MAX, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(
                lines.len(),
                180,
                "{format:?}: blocks and head, each sample once"
            );
            assert_eq!(lines[0], "{__name__=\"x\", job=\"a\"} 0 0");
            assert_eq!(lines[179], "{__name__=\"x\", job=\"a\"} 179 10740000");
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}
