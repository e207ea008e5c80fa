//! Backfilling blocks from an OpenMetrics file, as `promtool tsdb create-blocks-from
//! openmetrics`: every sample carries a timestamp (seconds), the file ends with `# EOF`, and
//! samples are grouped into blocks aligned to the block duration. Old timestamps (Unix time 0)
//! are fine.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_model::exposition::{Entry, Format, Parser};
use vigil_model::{Labels, Sample};

use crate::block::{BlockMeta, Compaction, write_block};

/// Write blocks for every sample in `input` into `out`; returns their metas in time order.
pub fn create_blocks_from_openmetrics(
    input: &[u8],
    out: &Path,
    block_ms: i64,
) -> Result<Vec<BlockMeta>, String> {
    let mut ranges: BTreeMap<i64, BTreeMap<Labels, Vec<Sample>>> = BTreeMap::new();
    for e in Parser::new(input, Format::OpenMetrics) {
        let Entry::Sample(s) = e.map_err(|e| e.to_string())? else {
            continue;
        };
        let t = s.timestamp_ms.ok_or_else(|| {
            format!(
                "sample {} has no timestamp: backfill needs explicit timestamps",
                s.series
            )
        })?;
        if !crate::head::in_time_bound(t) {
            return Err(format!(
                "sample {} at {t}: a time 2^62 ms or more from 1970 is out of bounds",
                s.series
            ));
        }
        let start = t.div_euclid(block_ms) * block_ms;
        ranges
            .entry(start)
            .or_default()
            .entry(s.to_labels())
            .or_default()
            .push(Sample { t, v: s.value });
    }
    std::fs::create_dir_all(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut metas = Vec::new();
    for (start, series) in ranges {
        let series: Vec<vigil_storage::Series> = series
            .into_iter()
            .map(|(l, mut s)| {
                s.sort_by_key(|x| x.t);
                s.dedup_by_key(|x| x.t);
                vigil_storage::Series::new(l, s)
            })
            .collect();
        let meta = write_block(
            out,
            start,
            start + block_ms,
            series,
            Compaction {
                level: 1,
                sources: vec![],
                hints: vec![],
            },
        )
        .map_err(|e| format!("write block: {e}"))?;
        metas.push(meta);
    }
    Ok(metas)
}
