//! The WAL followed as a [`Journal`](vigil_storage::Journal): what remote write reads.

use std::path::Path;

use vigil_storage::{JournalPoll, JournalPos, JournalReader, JournalRecord, StorageError};

use crate::wal::{self, Follower, Position, Record};

/// Series refs and their labels.
type SeriesList = Vec<(u64, vigil_model::Labels)>;

struct Reader {
    wal_dir: std::path::PathBuf,
    /// Series of the checkpoint, handed over before the segments.
    checkpoint: Option<(SeriesList, u64)>,
    follower: Follower,
}

/// The series of the latest checkpoint in `wal_dir` and the first segment after it.
fn checkpoint_series(wal_dir: &Path) -> Result<(SeriesList, Option<u64>), StorageError> {
    let io = |e: std::io::Error| StorageError::Other(format!("WAL {}: {e}", wal_dir.display()));
    let (cp_seg, cp_dir) = wal::latest_checkpoint(wal_dir).map_err(io)?;
    let mut series = Vec::new();
    if let Some(dir) = &cp_dir {
        // Read-only: a checkpoint is never repaired or changed by a reader.
        wal::replay_from_with(dir, 0, false, &mut |_: &Record| {}, |r| {
            if let Record::Series(s) = r {
                series.extend(s);
            }
        })
        .map_err(io)?;
    }
    Ok((series, cp_seg.map(|n| n + 1)))
}

/// A reader over `wal_dir` from its latest checkpoint (series only) and the segments after it
/// (or the oldest segment when there is no checkpoint).
pub fn follow(wal_dir: &Path) -> Result<Box<dyn JournalReader>, StorageError> {
    let io = |e: std::io::Error| StorageError::Other(format!("WAL {}: {e}", wal_dir.display()));
    let (series, after_cp) = checkpoint_series(wal_dir)?;
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
        checkpoint: Some((series, first)),
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
        if let Some((series, first)) = self.checkpoint.take() {
            f(
                JournalRecord::Series(series),
                JournalPos {
                    segment: first,
                    offset: 0,
                },
            );
            out.records += 1;
        }
        let rep = self
            .follower
            .poll(max.saturating_sub(out.records), |r, p| {
                let pos = to_pos(p);
                match r {
                    Record::Series(s) => f(JournalRecord::Series(s), pos),
                    Record::Samples(s) => f(JournalRecord::Samples(s), pos),
                    // Deletions are local: remote storage keeps what it was sent.
                    Record::Tombstones(_) => {}
                }
            })
            .map_err(|e| StorageError::Other(format!("WAL: {e}")))?;
        out.records += rep.records;
        out.gaps += rep.segments_missed + rep.segments_cut_short;
        if rep.segments_missed > 0 {
            // Segments went (a checkpoint covered them) before they were read: their series
            // records with them. The checkpoint that replaced them names every live series;
            // hand those over before anything after the gap is read.
            let (series, _) = checkpoint_series(&self.wal_dir)?;
            f(
                JournalRecord::Series(series),
                to_pos(self.follower.position()),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{CheckpointWriter, Wal, encode};
    use vigil_model::Labels;

    /// Segments a checkpoint removed before the reader got to them: the reader reports the
    /// gap and hands over the checkpoint's series before any sample after it, so those
    /// samples still find their series.
    #[test]
    fn after_a_gap_the_checkpoint_series_come_before_later_samples() {
        let d = std::env::temp_dir().join(format!("vigil-journal-gap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut w = Wal::open(&d).unwrap();
        let first = w.current_segment();
        let series = vec![(7, Labels::from_pairs([("__name__", "m")]))];
        let mut buf = Vec::new();
        encode(&mut buf, &Record::Series(series.clone()));
        encode(&mut buf, &Record::Samples(vec![(7, 1000, 1.0)]));
        w.write(&buf).unwrap();
        let mut reader = follow(&d).unwrap();
        // Before the reader reads anything: a cut, a checkpoint covering the first segment,
        // and that segment deleted; then a sample in the new segment.
        w.cut().unwrap();
        let mut cp = CheckpointWriter::create(&d, first).unwrap();
        let mut framed = Vec::new();
        encode(&mut framed, &Record::Series(series.clone()));
        cp.write(&framed).unwrap();
        cp.finish().unwrap();
        std::fs::remove_file(d.join(format!("{first:08}"))).ok();
        let mut more = Vec::new();
        encode(&mut more, &Record::Samples(vec![(7, 2000, 2.0)]));
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
        let _ = std::fs::remove_dir_all(&d);
    }
}
