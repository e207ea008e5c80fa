//! The `storage` section (TSDB and exemplar settings).

use super::*;

pub(crate) fn storage(ctx: &Ctx<'_>, s: &Option<RawStorage>) -> Result<StorageConfig, ConfigError> {
    let mut out = StorageConfig::default();
    if let Some(e) = s.as_ref().and_then(|s| s.exemplars.as_ref()) {
        out.exemplars_section = true;
        out.max_exemplars = e.max_exemplars;
    }
    let Some(t) = s.as_ref().and_then(|s| s.tsdb.as_ref()) else {
        return Ok(out);
    };
    if let Some(d) = ctx.duration(
        "storage.tsdb.out_of_order_time_window",
        &t.out_of_order_time_window,
    )? {
        out.out_of_order_time_window = d;
    }
    if let Some(r) = &t.retention {
        let _at = ctx.at(r);
        let r = &r.value;
        out.retention_time = ctx.duration("storage.tsdb.retention.time", &r.time)?;
        if let Some(sz) = &r.size {
            out.retention_size =
                Some(parse_size(&sz.0).map_err(|e| ctx.err("storage.tsdb.retention.size", e))?);
        }
        if let Some(p) = r.percentage {
            if !(0.0..=100.0).contains(&p) {
                return Err(ctx.err(
                    "storage.tsdb.retention.percentage",
                    format!("retention percentage must be between 0 and 100, got {p}"),
                ));
            }
            out.retention_percentage = Some(p);
        }
    }
    Ok(out)
}
