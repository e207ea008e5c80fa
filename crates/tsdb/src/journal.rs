//! The WAL followed as a [`Journal`](vigil_storage::Journal): what remote write reads.

use std::path::Path;

use vigil_storage::{JournalPoll, JournalPos, JournalReader, JournalRecord, StorageError};

use crate::wal::{self, Follower, Position, Record};

struct Reader {
    /// Series of the checkpoint, handed over before the segments.
    checkpoint: Option<(Vec<(u64, vigil_model::Labels)>, u64)>,
    follower: Follower,
}

/// A reader over `wal_dir` from its latest checkpoint (series only) and the segments after it
/// (or the oldest segment when there is no checkpoint).
pub fn follow(wal_dir: &Path) -> Result<Box<dyn JournalReader>, StorageError> {
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
    let first = match cp_seg {
        Some(n) => n + 1,
        None => wal::segments(wal_dir)
            .map_err(io)?
            .first()
            .copied()
            .unwrap_or(0),
    };
    Ok(Box::new(Reader {
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
                let pos = JournalPos {
                    segment: p.segment,
                    offset: p.offset,
                };
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
        Ok(out)
    }
}
