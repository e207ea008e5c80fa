//! Byte sizes as Prometheus writes them (`units.Base2Bytes`): read by the configuration's
//! flags and fields and by the prober's modules, which the blackbox exporter reads alike.

/// A byte size as Prometheus's `units.ParseBase2Bytes` reads it (flags such as
/// `--storage.tsdb.retention.size` and the config's `retention.size`): one or more
/// `<number><unit>` parts, numbers may have a fraction (`1.5GB`), units `B`, `KB`/`KiB`,
/// `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, `PB`/`PiB`, `EB`/`EiB`, all powers of 1024 and
/// case-sensitive; a unit is required except for a bare `0`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let mut rest = t;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return Err(format!("units: invalid size {s:?}"));
    }
    while !rest.is_empty() {
        let nlen = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(nlen);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("units: invalid size {s:?}"))?;
        let ulen = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(ulen);
        let mult: u64 = match unit {
            "B" => 1,
            "KB" | "KiB" => 1 << 10,
            "MB" | "MiB" => 1 << 20,
            "GB" | "GiB" => 1 << 30,
            "TB" | "TiB" => 1 << 40,
            "PB" | "PiB" => 1 << 50,
            "EB" | "EiB" => 1 << 60,
            "" => return Err(format!("units: missing unit in {s:?}")),
            u => return Err(format!("units: unknown unit {u} in {s}")),
        };
        total += n * mult as f64;
        rest = next;
    }
    if !total.is_finite() || total >= u64::MAX as f64 {
        return Err(format!("units: size out of range {s:?}"));
    }
    Ok(total as u64)
}

/// A byte size as Prometheus prints a `units.Base2Bytes` (`512MiB`, `1GiB`, `0B`).
pub fn format_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n == 0 {
        return "0B".into();
    }
    let mut out = String::new();
    let mut rest = n;
    for (i, u) in UNITS.iter().enumerate().rev() {
        let m = 1u64 << (10 * i);
        if rest >= m {
            out.push_str(&format!("{}{u}", rest / m));
            rest %= m;
        }
    }
    out
}
