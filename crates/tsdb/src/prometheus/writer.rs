//! A whole block in Prometheus's format: `meta.json` (version 1), `index` (v2), `chunks/`
//! (XOR chunks of up to 120 samples, as Prometheus's head cuts them, and float histogram
//! chunks for native histograms) and an empty `tombstones`, written under `<ulid>.tmp` and
//! renamed into place when complete.

use std::fs::File;
use std::path::Path;

use super::{chunks, index, tombstones};
use crate::block::{BlockMeta, BlockStats, Compaction, SeriesSamples, TMP_MARKER};
use crate::chunk::XorChunk;

/// Samples per chunk, as Prometheus's head cuts them.
pub const CHUNK_SAMPLES: usize = 120;

/// Write a Prometheus-format block of `series` (any order) covering `[min_time, max_time)`
/// under `parent`; a failed write removes what it wrote.
pub fn write_block(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    series: Vec<impl Into<SeriesSamples>>,
    compaction: Compaction,
) -> std::io::Result<BlockMeta> {
    let mut series: Vec<SeriesSamples> = series.into_iter().map(Into::into).collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    write_block_sorted(
        parent,
        min_time,
        max_time,
        series.into_iter().map(Ok),
        compaction,
    )
}

/// [`write_block`] from series in label order, each label set once (an error otherwise),
/// taken one at a time: chunks go to the files as they come and only labels and chunk
/// references are kept for the index.
pub fn write_block_sorted(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    series: impl IntoIterator<Item = std::io::Result<impl Into<SeriesSamples>>>,
    compaction: Compaction,
) -> std::io::Result<BlockMeta> {
    let series = series.into_iter().map(|s| s.map(Into::into));
    crate::block::write_new_block(parent, |tmp, ulid| {
        write_in(parent, tmp, ulid, min_time, max_time, series, compaction)
    })
}

fn write_in(
    parent: &Path,
    tmp: &Path,
    ulid: String,
    min_time: i64,
    max_time: i64,
    series: impl IntoIterator<Item = std::io::Result<SeriesSamples>>,
    mut compaction: Compaction,
) -> std::io::Result<BlockMeta> {
    std::fs::create_dir_all(tmp)?;
    // vigil's mark on an unfinished write (removed after a crash); taken off after the rename.
    File::create(tmp.join(TMP_MARKER))?;
    let mut w = chunks::Writer::new(&tmp.join("chunks"))?;
    let mut stats = BlockStats::default();
    let mut entries: Vec<(vigil_model::Labels, Vec<index::ChunkRef>)> = Vec::new();
    for item in series {
        // A source's error (damage found while reading) stops the write before the rename.
        let vigil_storage::Series {
            labels,
            samples,
            histograms,
        } = item?;
        if samples.is_empty() && histograms.is_empty() {
            continue;
        }
        if entries.last().is_some_and(|(prev, _)| *prev >= labels) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("block series out of label order at {labels:?}"),
            ));
        }
        let mut refs = Vec::with_capacity(samples.len().div_ceil(CHUNK_SAMPLES));
        for part in samples.chunks(CHUNK_SAMPLES) {
            let mut c = XorChunk::new();
            for s in part {
                c.append(s.t, s.v);
            }
            let r = w.add(chunks::ENC_XOR, &c.bytes())?;
            refs.push((part[0].t, part[part.len() - 1].t, r));
            stats.num_chunks += 1;
            stats.num_samples += part.len() as u64;
        }
        if !histograms.is_empty() {
            for c in super::histogram_chunk::encode_all(&histograms) {
                let r = w.add(c.encoding, &c.bytes)?;
                refs.push((c.min_t, c.max_t, r));
                stats.num_chunks += 1;
            }
            stats.num_samples += histograms.len() as u64;
            stats.num_histogram_samples += histograms.len() as u64;
            // The index lists a series' chunks by time (a series may switch kinds).
            refs.sort_by_key(|r| r.0);
        }
        entries.push((labels, refs));
    }
    w.finish()?;
    stats.num_series = entries.len() as u64;
    std::fs::write(tmp.join("index"), index::write_v2(&entries))?;
    std::fs::write(tmp.join("tombstones"), tombstones::empty())?;
    if compaction.sources.is_empty() {
        compaction.sources = vec![ulid.clone()];
    }
    compaction.level = compaction.level.max(1);
    let meta = BlockMeta {
        ulid: ulid.clone(),
        min_time,
        max_time,
        stats,
        compaction,
        version: 1,
    };
    std::fs::write(
        tmp.join("meta.json"),
        serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?,
    )?;
    for f in ["index", "tombstones", "meta.json"] {
        File::open(tmp.join(f))?.sync_all()?;
    }
    File::open(tmp.join("chunks"))?.sync_all()?;
    File::open(tmp)?.sync_all()?;
    crate::uncached::forget_block(tmp);
    std::fs::rename(tmp, parent.join(&ulid))?;
    // On disk before callers delete what the block replaces.
    File::open(parent)?.sync_all()?;
    // The marker goes after the rename: a crash before it leaves an ordinary block with one
    // extra empty file, which nothing reads.
    let _ = std::fs::remove_file(parent.join(&ulid).join(TMP_MARKER));
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, Format};
    use vigil_model::{Labels, Sample};
    use vigil_storage::{MatchOp, Matcher};

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-promw-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn data() -> Vec<(Labels, Vec<Sample>)> {
        (0..40)
            .map(|i| {
                let l = Labels::from_pairs([
                    ("__name__", if i % 2 == 0 { "a" } else { "b" }.to_string()),
                    ("i", i.to_string()),
                ]);
                let s = (0..300)
                    .map(|k| Sample {
                        t: k * 1000,
                        v: (i * k) as f64 + 0.5,
                    })
                    .collect();
                (l, s)
            })
            .collect()
    }

    #[test]
    fn series_out_of_label_order_are_refused_not_indexed() {
        let d = tmp("order");
        let mut series = data();
        series.sort_by(|a, b| b.0.cmp(&a.0));
        let e = write_block_sorted(
            &d,
            0,
            300_000,
            series.into_iter().map(Ok),
            Compaction::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        // Nothing is left behind.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    }

    #[test]
    fn a_written_block_reads_back_as_prometheus_format() {
        let d = tmp("rw");
        let meta = write_block(&d, 0, 300_000, data(), Compaction::default()).unwrap();
        assert_eq!(meta.version, 1);
        assert_eq!(meta.stats.num_chunks, 40 * 3);
        assert_eq!(meta.compaction.sources, vec![meta.ulid.clone()]);
        let dir = d.join(&meta.ulid);
        assert!(!dir.join(TMP_MARKER).exists());
        let b = Block::open(&dir).unwrap();
        assert_eq!(b.format, Format::Prometheus(2));
        let got = b.select(&[Matcher::equal("__name__", "a")], 0, i64::MAX);
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|s| s.samples.len() == 300));
        let got = b.select(&[Matcher::equal("i", "7")], 10_000, 11_000);
        assert_eq!(
            got[0].samples,
            vec![Sample { t: 10_000, v: 70.5 }, Sample { t: 11_000, v: 77.5 }]
        );
        let re = Matcher::new(MatchOp::Regex, "i", "1.").unwrap();
        assert_eq!(b.select(&[re], 0, i64::MAX).len(), 10);
        let mut names = b.label_names();
        names.sort();
        assert_eq!(names, ["__name__", "i"]);
        assert_eq!(b.skipped_chunks(), (0, 0));
    }

    #[test]
    fn an_index_of_format_v1_is_read() {
        let d = tmp("v1");
        let meta = write_block(&d, 0, 300_000, data(), Compaction::default()).unwrap();
        let dir = d.join(&meta.ulid);
        // Rewrite the index as version 1 over the same chunks.
        let b = Block::open(&dir).unwrap();
        let mut entries = Vec::new();
        for i in 0..b.num_series_for_test() {
            let (labels, cms) = b.entry_for_test(i);
            entries.push((
                labels,
                cms.iter().map(|c| (c.min_t, c.max_t, c.offset)).collect(),
            ));
        }
        drop(b);
        std::fs::write(
            dir.join("index"),
            crate::prometheus::index::write(&entries, 1),
        )
        .unwrap();
        let b = Block::open(&dir).unwrap();
        assert_eq!(b.format, Format::Prometheus(1));
        let got = b.select(&[Matcher::equal("i", "7")], 10_000, 11_000);
        assert_eq!(
            got[0].samples,
            vec![Sample { t: 10_000, v: 70.5 }, Sample { t: 11_000, v: 77.5 }]
        );
        assert_eq!(
            b.select(&[Matcher::equal("__name__", "b")], 0, i64::MAX)
                .len(),
            20
        );
        let mut v = b.label_values("__name__");
        v.sort();
        assert_eq!(v, ["a", "b"]);
    }

    #[test]
    fn damage_is_an_error_or_a_skipped_chunk_never_a_panic() {
        let d = tmp("bad");
        let meta = write_block(&d, 0, 300_000, data(), Compaction::default()).unwrap();
        let dir = d.join(&meta.ulid);
        // A bad checksum in a chunk: the block opens, that chunk is skipped and counted.
        let seg = dir.join("chunks/000001");
        let mut b = std::fs::read(&seg).unwrap();
        b[20] ^= 0xff;
        std::fs::write(&seg, &b).unwrap();
        let blk = Block::open(&dir).unwrap();
        let all = blk.select(&[], 0, i64::MAX);
        let n: usize = all.iter().map(|s| s.samples.len()).sum();
        assert_eq!(n, 40 * 300 - 120);
        assert_eq!(blk.skipped_chunks(), (0, 1));
        // A truncated index: the block does not open, with a reason.
        let idx = dir.join("index");
        let b = std::fs::read(&idx).unwrap();
        for cut in [b.len() - 1, b.len() / 2, 10] {
            std::fs::write(&idx, &b[..cut]).unwrap();
            let err = Block::open(&dir)
                .err()
                .expect("a truncated index must not open");
            assert!(err.to_string().contains("index"), "{err}");
        }
        // Every single flipped byte of the index either fails to open or reads without panic.
        for i in (5..b.len()).step_by(7) {
            let mut c = b.clone();
            c[i] ^= 0x5a;
            std::fs::write(&idx, &c).unwrap();
            if let Ok(blk) = Block::open(&dir) {
                let _ = blk.select(&[], 0, i64::MAX);
            }
        }
    }

    #[test]
    fn tombstones_hide_deleted_ranges() {
        let d = tmp("stones");
        let meta = write_block(&d, 0, 300_000, data(), Compaction::default()).unwrap();
        let dir = d.join(&meta.ulid);
        // Series IDs are entry offsets / 16: find the one of i="3" from the index.
        let b = Block::open(&dir).unwrap();
        let id = b.series_ids_for_test(&[Matcher::equal("i", "3")])[0];
        let mut body = Vec::new();
        crate::prometheus::put_uvarint(&mut body, id);
        crate::prometheus::put_varint(&mut body, 0);
        crate::prometheus::put_varint(&mut body, 99_000);
        let mut f = crate::prometheus::TOMBSTONES_MAGIC.to_be_bytes().to_vec();
        f.push(1);
        f.extend_from_slice(&body);
        f.extend_from_slice(&crate::prometheus::crc(&body).to_be_bytes());
        std::fs::write(dir.join("tombstones"), f).unwrap();
        let b = Block::open(&dir).unwrap();
        let got = b.select(&[Matcher::equal("i", "3")], 0, i64::MAX);
        assert_eq!(got[0].samples.len(), 200);
        assert_eq!(got[0].samples[0].t, 100_000);
    }
}
