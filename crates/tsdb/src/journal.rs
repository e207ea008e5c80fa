//! The WAL followed as a [`Journal`](vigil_storage::Journal): what remote write reads.

use std::path::Path;

use vigil_storage::{JournalPoll, JournalPos, JournalReader, JournalRecord, StorageError};

use crate::wal::{self, Follower, Position, Record};

/// Series refs and their labels.
type SeriesList = Vec<(u64, vigil_model::Labels)>;
/// Series refs and their metadata.
type MetadataList = Vec<(u64, std::sync::Arc<vigil_storage::Metadata>)>;

struct Reader {
    wal_dir: std::path::PathBuf,
    /// The head whose label sets are handed out in place of the copies decoded from the log,
    /// so a reader (remote write) holds no second copy of every series' labels.
    head: Option<std::sync::Weak<crate::head::Head>>,
    /// Series of the checkpoint and their metadata, handed over before the segments.
    checkpoint: Option<(SeriesList, MetadataList, u64)>,
    follower: Follower,
    /// The newest checkpoint already seen (reported as its series, or pending or reported
    /// as `Live`).
    reported_cp: Option<u64>,
    /// The segment being read when a newer checkpoint was last looked for.
    looked_at: u64,
    /// A checkpoint's live series to report once the reader is past `through`, the newest
    /// segment when it was found: a series the head dropped before the checkpoint can only
    /// have samples in segments up to then (later samples make it a new series), and those
    /// must still find their labels.
    pending_live: Option<PendingLive>,
    /// The next ref handed out for a series of an old samples record, which names series by
    /// labels: refs from 2^63 on, which the head never reaches.
    synthetic: u64,
}

/// The first ref [`Reader::synthetic`] hands out.
const SYNTHETIC_REFS: u64 = 1 << 63;

struct PendingLive {
    checkpoint: u64,
    series: Vec<u64>,
    through: u64,
}

/// The series of the latest checkpoint in `wal_dir`, their metadata (with `with_metadata`,
/// else none is decoded), and the first segment after it.
fn checkpoint_series(
    wal_dir: &Path,
    with_metadata: bool,
) -> Result<(SeriesList, MetadataList, Option<u64>), StorageError> {
    let io = |e: std::io::Error| StorageError::Other(format!("WAL {}: {e}", wal_dir.display()));
    let (cp_seg, cp_dir) = wal::latest_checkpoint(wal_dir).map_err(io)?;
    let mut series = Vec::new();
    let mut metadata = Vec::new();
    if let Some(dir) = &cp_dir {
        // Read-only: a checkpoint is never repaired or changed by a reader.
        wal::replay_from_with(dir, 0, false, &mut |_: &Record| {}, |r| match r {
            Record::Series(s) => series.extend(s),
            Record::Metadata(m) if with_metadata => metadata.extend(m),
            _ => {}
        })
        .map_err(io)?;
    }
    Ok((series, metadata, cp_seg.map(|n| n + 1)))
}

/// A reader over `wal_dir` from its latest checkpoint (series and their metadata) and the segments after it
/// (or the oldest segment when there is no checkpoint).
pub fn follow(wal_dir: &Path) -> Result<Box<dyn JournalReader>, StorageError> {
    follow_with(wal_dir, None)
}

/// As [`follow`], handing out `head`'s label sets where a series' labels equal them.
pub fn follow_sharing(
    wal_dir: &Path,
    head: std::sync::Weak<crate::head::Head>,
) -> Result<Box<dyn JournalReader>, StorageError> {
    follow_with(wal_dir, Some(head))
}

fn follow_with(
    wal_dir: &Path,
    head: Option<std::sync::Weak<crate::head::Head>>,
) -> Result<Box<dyn JournalReader>, StorageError> {
    let io = |e: std::io::Error| StorageError::Other(format!("WAL {}: {e}", wal_dir.display()));
    let (series, metadata, after_cp) = checkpoint_series(wal_dir, true)?;
    let first = match after_cp {
        Some(n) => n,
        None => wal::segments(wal_dir)
            .map_err(io)?
            .first()
            .copied()
            .unwrap_or(0),
    };
    Ok(Box::new(Reader {
        wal_dir: wal_dir.to_path_buf(),
        head,
        reported_cp: first.checked_sub(1).filter(|_| after_cp.is_some()),
        looked_at: first,
        pending_live: None,
        checkpoint: Some((series, metadata, first)),
        synthetic: SYNTHETIC_REFS,
        follower: Follower::new(
            wal_dir,
            Position {
                segment: first,
                offset: 0,
            },
        ),
    }))
}

fn to_pos(p: Position) -> JournalPos {
    JournalPos {
        segment: p.segment,
        offset: p.offset,
    }
}

impl JournalReader for Reader {
    fn poll(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(JournalRecord, JournalPos),
    ) -> Result<JournalPoll, StorageError> {
        let mut out = JournalPoll::default();
        let head = self.head.as_ref().and_then(std::sync::Weak::upgrade);
        if let Some((mut series, mut metadata, first)) = self.checkpoint.take() {
            if let Some(h) = &head {
                h.share_labels(&mut series);
                h.share_metadata(&mut metadata);
            }
            let at = JournalPos {
                segment: first,
                offset: 0,
            };
            f(JournalRecord::Series(series), at);
            out.records += 1;
            if !metadata.is_empty() {
                f(JournalRecord::Metadata(metadata), at);
                out.records += 1;
            }
        }
        let synthetic = &mut self.synthetic;
        let rep = self
            .follower
            .poll(max.saturating_sub(out.records), |r, p| {
                let pos = to_pos(p);
                match r {
                    Record::Series(mut s) => {
                        if let Some(h) = &head {
                            h.share_labels(&mut s);
                        }
                        f(JournalRecord::Series(s), pos)
                    }
                    Record::Samples(s) => f(JournalRecord::Samples(s), pos),
                    Record::Exemplars(e) => f(JournalRecord::Exemplars(e), pos),
                    Record::Histograms(h) => f(JournalRecord::Histograms(h), pos),
                    // Old samples (and histograms) name their series by labels: each gets a ref of its own
                    // here (forgotten once the WAL is truncated past this segment), so
                    // readers see series and samples as everywhere else.
                    Record::OldSamples(o) => {
                        let mut series = Vec::with_capacity(o.len());
                        let mut samples = Vec::new();
                        for (labels, s) in o {
                            let r = *synthetic;
                            *synthetic += 1;
                            series.push((r, labels));
                            samples.extend(s.into_iter().map(|(t, v)| (r, t, v)));
                        }
                        f(JournalRecord::Series(series), pos);
                        f(JournalRecord::Samples(samples), pos)
                    }
                    Record::OldHistograms(o) => {
                        let mut series = Vec::with_capacity(o.len());
                        let mut hs = Vec::new();
                        for (labels, s) in o {
                            let r = *synthetic;
                            *synthetic += 1;
                            series.push((r, labels));
                            hs.extend(s.into_iter().map(|(t, h)| (r, t, h)));
                        }
                        f(JournalRecord::Series(series), pos);
                        f(JournalRecord::Histograms(hs), pos)
                    }
                    Record::Metadata(mut m) => {
                        if let Some(h) = &head {
                            h.share_metadata(&mut m);
                        }
                        f(JournalRecord::Metadata(m), pos)
                    }
                    // Deletions are local: remote storage keeps what it was sent.
                    Record::Tombstones(_) => {}
                    // Only in head snapshots, never in the WAL.
                    Record::HeadChunks(_) => {}
                }
            })
            .map_err(|e| StorageError::Other(format!("WAL: {e}")))?;
        out.records += rep.records;
        out.gaps += rep.segments_missed + rep.segments_cut_short;
        // On entering a new segment: a checkpoint written since (the head truncated) names
        // the series still live; once the reader is past every segment that existed then,
        // the others can be forgotten, so a reader's series map does not grow with churn.
        let at = self.follower.position().segment;
        if at != self.looked_at && rep.segments_missed == 0 {
            self.looked_at = at;
            if let Some(p) = self.pending_live.take_if(|p| at > p.through) {
                f(
                    JournalRecord::Live {
                        segment: p.checkpoint,
                        series: p.series,
                    },
                    to_pos(self.follower.position()),
                );
                out.records += 1;
            }
            let io = |e: std::io::Error| {
                StorageError::Other(format!("WAL {}: {e}", self.wal_dir.display()))
            };
            if self.pending_live.is_none()
                && let (Some(cp), Some(_)) = wal::latest_checkpoint(&self.wal_dir).map_err(io)?
                && self.reported_cp.is_none_or(|r| cp > r)
                && cp < at
            {
                // The series and the number from one read of the directory: a checkpoint
                // written in between would otherwise pair a newer live set with an older one.
                let (series, _, after) = checkpoint_series(&self.wal_dir, false)?;
                if let Some(cp) = after.and_then(|a| a.checked_sub(1))
                    && cp < at
                {
                    let through = wal::segments(&self.wal_dir)
                        .map_err(io)?
                        .last()
                        .copied()
                        .unwrap_or(at);
                    self.reported_cp = Some(cp);
                    self.pending_live = Some(PendingLive {
                        checkpoint: cp,
                        series: series.into_iter().map(|(r, _)| r).collect(),
                        through,
                    });
                }
            }
        }
        if rep.segments_missed > 0 {
            // Segments went (a checkpoint covered them) before they were read: their series
            // records with them. The checkpoint that replaced them names every live series;
            // hand those over before anything after the gap is read.
            let (mut series, mut metadata, after) = checkpoint_series(&self.wal_dir, true)?;
            if let Some(h) = &head {
                h.share_labels(&mut series);
                h.share_metadata(&mut metadata);
            }
            self.reported_cp = after.and_then(|n| n.checked_sub(1));
            self.looked_at = self.follower.position().segment;
            self.pending_live = None;
            let live: Vec<u64> = series.iter().map(|(r, _)| *r).collect();
            f(
                JournalRecord::Series(series),
                to_pos(self.follower.position()),
            );
            if !metadata.is_empty() {
                f(
                    JournalRecord::Metadata(metadata),
                    to_pos(self.follower.position()),
                );
            }
            if let Some(cp) = self.reported_cp {
                let through = wal::segments(&self.wal_dir)
                    .map_err(|e| StorageError::Other(format!("WAL: {e}")))?
                    .last()
                    .copied()
                    .unwrap_or(self.looked_at);
                self.pending_live = Some(PendingLive {
                    checkpoint: cp,
                    series: live,
                    through,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{CheckpointWriter, Compression, Wal, encode};
    use vigil_model::Labels;

    /// Segments a checkpoint removed before the reader got to them: the reader reports the
    /// gap and hands over the checkpoint's series and their metadata before any sample after
    /// it, so those samples still find their series. A reader started on the checkpoint
    /// begins with both too.
    #[test]
    fn after_a_gap_the_checkpoint_series_come_before_later_samples() {
        let d = std::env::temp_dir().join(format!("vigil-journal-gap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut w = Wal::open(&d).unwrap();
        let first = w.current_segment();
        let series = vec![(7, Labels::from_pairs([("__name__", "m")]))];
        let mut buf = Vec::new();
        encode(
            &mut buf,
            &Record::Series(series.clone()),
            Compression::Snappy,
        );
        encode(
            &mut buf,
            &Record::Samples(vec![(7, 1000, 1.0)]),
            Compression::Snappy,
        );
        w.write(&buf).unwrap();
        let mut reader = follow(&d).unwrap();
        // Before the reader reads anything: a cut, a checkpoint covering the first segment,
        // and that segment deleted; then a sample in the new segment.
        w.cut().unwrap();
        let mut cp =
            CheckpointWriter::create(&d, first, crate::wal::WriteOptions::default()).unwrap();
        let mut framed = Vec::new();
        encode(
            &mut framed,
            &Record::Series(series.clone()),
            Compression::Snappy,
        );
        let meta = vec![(
            7,
            std::sync::Arc::new(vigil_storage::Metadata {
                kind: vigil_model::exposition::MetricType::Counter,
                unit: String::new(),
                help: "M.".into(),
            }),
        )];
        encode(
            &mut framed,
            &Record::Metadata(meta.clone()),
            Compression::Snappy,
        );
        cp.write(&framed).unwrap();
        cp.finish().unwrap();
        std::fs::remove_file(d.join(format!("{first:08}"))).ok();
        let mut more = Vec::new();
        encode(
            &mut more,
            &Record::Samples(vec![(7, 2000, 2.0)]),
            Compression::Snappy,
        );
        w.write(&more).unwrap();
        let mut got = Vec::new();
        let mut gaps = 0;
        for _ in 0..4 {
            let p = reader.poll(100, &mut |r, _| got.push(r)).unwrap();
            gaps += p.gaps;
        }
        assert!(gaps >= 1, "the gap is reported");
        let samples_at = got
            .iter()
            .position(|r| matches!(r, JournalRecord::Samples(s) if s[0].1 == 2000))
            .expect("the later sample");
        assert!(
            got[..samples_at]
                .iter()
                .any(|r| matches!(r, JournalRecord::Series(s) if s == &series)),
            "{got:?}"
        );
        assert!(
            got[..samples_at]
                .iter()
                .any(|r| matches!(r, JournalRecord::Metadata(m) if m == &meta)),
            "{got:?}"
        );
        let mut fresh = follow(&d).unwrap();
        let mut first = Vec::new();
        fresh.poll(2, &mut |r, _| first.push(r)).unwrap();
        assert_eq!(
            first[..2],
            [JournalRecord::Series(series), JournalRecord::Metadata(meta)]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A checkpoint written while the reader follows: once the reader is past every segment
    /// that existed when it was found, it reports which series are still live.
    #[test]
    fn a_new_checkpoint_reports_the_live_series_once_passed() {
        let d = std::env::temp_dir().join(format!("vigil-journal-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut w = Wal::open(&d).unwrap();
        let first = w.current_segment();
        let kept = (7, Labels::from_pairs([("__name__", "kept")]));
        let gone = (8, Labels::from_pairs([("__name__", "gone")]));
        let mut buf = Vec::new();
        encode(
            &mut buf,
            &Record::Series(vec![kept.clone(), gone.clone()]),
            Compression::Snappy,
        );
        encode(
            &mut buf,
            &Record::Samples(vec![(7, 1000, 1.0), (8, 1000, 1.0)]),
            Compression::Snappy,
        );
        w.write(&buf).unwrap();
        let mut reader = follow(&d).unwrap();
        let mut got = Vec::new();
        reader.poll(100, &mut |r, _| got.push(r)).unwrap();
        assert!(!got.iter().any(|r| matches!(r, JournalRecord::Live { .. })));
        // The head truncates: a new segment, a checkpoint of the first with `kept` only.
        w.cut().unwrap();
        let mut cp =
            CheckpointWriter::create(&d, first, crate::wal::WriteOptions::default()).unwrap();
        let mut framed = Vec::new();
        encode(
            &mut framed,
            &Record::Series(vec![kept.clone()]),
            Compression::Snappy,
        );
        cp.write(&framed).unwrap();
        cp.finish().unwrap();
        let mut more = Vec::new();
        encode(
            &mut more,
            &Record::Samples(vec![(7, 2000, 2.0)]),
            Compression::Snappy,
        );
        w.write(&more).unwrap();
        for _ in 0..4 {
            reader.poll(100, &mut |r, _| got.push(r)).unwrap();
        }
        // Not yet: segments that existed at the checkpoint may still name dropped series.
        assert!(!got.iter().any(|r| matches!(r, JournalRecord::Live { .. })));
        w.cut().unwrap();
        let mut last = Vec::new();
        encode(
            &mut last,
            &Record::Samples(vec![(7, 3000, 3.0)]),
            Compression::Snappy,
        );
        w.write(&last).unwrap();
        for _ in 0..4 {
            reader.poll(100, &mut |r, _| got.push(r)).unwrap();
        }
        let live: Vec<_> = got
            .iter()
            .filter_map(|r| match r {
                JournalRecord::Live { segment, series } => Some((*segment, series.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(live, vec![(first, vec![7])], "{got:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
