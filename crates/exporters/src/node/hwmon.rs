//! Hardware sensors and counters, with the units and names node_exporter gives them: hwmon
//! chips under `/sys/class/hwmon` (temperatures, voltages, fans, power), thermal zones and
//! cooling devices, EDAC memory controllers' error counts and RAPL energy counters.

use super::{Error, Node, Out, attr};

/// The sensor types of hwmon's sysfs interface that are reported.
const HWMON_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// Lower case, anything but `[a-z0-9:_]` as `_`, no `_` at either end.
fn clean(s: &str) -> String {
    let c: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    c.trim_matches('_').to_string()
}

/// `temp1_crit_alarm` → (`temp`, 1, `crit_alarm`); `update_interval` → (`update_interval`, 0,
/// ``). The type is everything before the first digit.
fn explode(file: &str) -> Option<(&str, u32, &str)> {
    let t_end = file
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(file.len());
    let (t, rest) = file.split_at(t_end);
    if t.is_empty() {
        return None;
    }
    let n_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let num = if n_end == 0 {
        0
    } else {
        rest[..n_end].parse().ok()?
    };
    let prop = match &rest[n_end..] {
        "" => "",
        p => p.strip_prefix('_')?,
    };
    Some((t, num, prop))
}

/// The chip label: the device's bus and name (`platform_coretemp_0`), else the `name` file,
/// else the hwmonN directory's name.
fn chip_name(dir: &std::path::Path) -> Option<String> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let name = dev
            .file_name()
            .map(|n| clean(&n.to_string_lossy()))
            .unwrap_or_default();
        let bus = dev
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| clean(&n.to_string_lossy()))
            .unwrap_or_default();
        match (bus.is_empty(), name.is_empty()) {
            (false, false) => return Some(format!("{bus}_{name}")),
            (true, false) => return Some(name),
            _ => {}
        }
    }
    if let Some(n) = attr(&dir.join("name"))
        .map(|n| clean(&n))
        .filter(|n| !n.is_empty())
    {
        return Some(n);
    }
    let real = std::fs::canonicalize(dir).ok()?;
    Some(clean(&real.file_name()?.to_string_lossy())).filter(|n| !n.is_empty())
}

/// Hardware monitoring chips under `/sys/class/hwmon`: temperatures, voltages, fans, power,
/// with the units and names node_exporter gives them.
pub fn hwmon(n: &Node, out: &mut Out) -> Result<(), Error> {
    use std::collections::BTreeMap;
    let root = n.sys("class/hwmon");
    let entries = std::fs::read_dir(&root)
        .map_err(|e| Error::NoData(format!("cannot list {}: {e}", root.display())))?;
    let mut dirs: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut failed = None;
    for dir in dirs {
        let Some(chip) = chip_name(&dir) else {
            failed = Some(Error::Parse {
                path: dir.clone(),
                what: "no name for the chip".into(),
            });
            continue;
        };
        if let Some(name) = attr(&dir.join("name")) {
            out.gauge(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                &[("chip", &chip), ("chip_name", &clean(&name))],
                1.0,
            );
        }
        // sensor (type + number) → property → value, from the chip's directory and its device's.
        let mut data: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
        for d in [dir.clone(), dir.join("device")] {
            let Ok(files) = std::fs::read_dir(&d) else {
                continue;
            };
            for f in files.filter_map(|e| e.ok()) {
                let fname = f.file_name().to_string_lossy().into_owned();
                let Some((t, num, prop)) = explode(&fname) else {
                    continue;
                };
                if !HWMON_TYPES.contains(&t) {
                    continue;
                }
                if let Some(v) = attr(&f.path()) {
                    data.entry((t.to_string(), format!("{t}{num}")))
                        .or_default()
                        .insert(prop.to_string(), v);
                }
            }
        }
        for ((t, sensor), props) in &data {
            let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
            if let Some(label) = props.get("label") {
                out.gauge(
                    "node_hwmon_sensor_label",
                    "Label for given chip and sensor",
                    &[("chip", &chip), ("label", label.trim()), ("sensor", sensor)],
                    1.0,
                );
            }
            let bare = props.get("").and_then(|v| v.trim().parse::<f64>().ok());
            match t.as_str() {
                "beep_enable" => {
                    let on = props.get("").is_some_and(|v| v == "1");
                    out.gauge(
                        "node_hwmon_beep_enabled",
                        "Hardware beep enabled",
                        &labels,
                        if on { 1.0 } else { 0.0 },
                    );
                    continue;
                }
                "vrm" => {
                    if let Some(v) = bare {
                        out.gauge(
                            "node_hwmon_voltage_regulator_version",
                            "Hardware voltage regulator",
                            &labels,
                            v,
                        );
                    }
                    continue;
                }
                "update_interval" => {
                    if let Some(v) = bare {
                        out.gauge(
                            "node_hwmon_update_interval_seconds",
                            "Hardware monitor update interval",
                            &labels,
                            v * 0.001,
                        );
                    }
                    continue;
                }
                _ => {}
            }
            for (el, raw) in props {
                if el == "label" {
                    continue;
                }
                let Ok(v) = raw.trim().parse::<f64>() else {
                    continue;
                };
                let mut name = format!("node_hwmon_{t}");
                if el == "input" {
                    // The input is the reading itself, unless a bare file already is.
                    if props.contains_key("") {
                        name.push_str("_input");
                    }
                } else if !el.is_empty() {
                    name.push('_');
                    name.push_str(&clean(el));
                }
                let el = el.as_str();
                let (suffix, help, v, counter) = match (t.as_str(), el) {
                    (_, "fault" | "alarm") => {
                        ("", format!("Hardware sensor {el} status ({t})"), v, false)
                    }
                    (_, "beep") => (
                        "_enabled",
                        "Hardware monitor sensor has beeping enabled".into(),
                        v,
                        false,
                    ),
                    ("in" | "cpu", _) => (
                        "_volts",
                        format!("Hardware monitor for voltage ({el})"),
                        v * 0.001,
                        false,
                    ),
                    ("temp", e) if e != "type" => (
                        "_celsius",
                        format!("Hardware monitor for temperature ({el})"),
                        v * 0.001,
                        false,
                    ),
                    ("curr", _) => (
                        "_amps",
                        format!("Hardware monitor for current ({el})"),
                        v * 0.001,
                        false,
                    ),
                    ("energy", _) => (
                        "_joule_total",
                        format!("Hardware monitor for joules used so far ({el})"),
                        v / 1e6,
                        true,
                    ),
                    ("power", "accuracy") => (
                        "",
                        "Hardware monitor power meter accuracy, as a ratio".into(),
                        v / 1e6,
                        false,
                    ),
                    (
                        "power",
                        "average_interval" | "average_interval_min" | "average_interval_max",
                    ) => (
                        "_seconds",
                        format!("Hardware monitor power usage update interval ({el})"),
                        v * 0.001,
                        false,
                    ),
                    ("power", _) => (
                        "_watt",
                        format!("Hardware monitor for power usage in watts ({el})"),
                        v / 1e6,
                        false,
                    ),
                    ("humidity", _) => (
                        "",
                        format!(
                            "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({el})"
                        ),
                        v / 1e6,
                        false,
                    ),
                    ("fan", "input" | "min" | "max" | "target") => (
                        "_rpm",
                        format!("Hardware monitor for fan revolutions per minute ({el})"),
                        v,
                        false,
                    ),
                    _ => ("", format!("Hardware monitor {t} element {el}"), v, false),
                };
                name.push_str(suffix);
                if counter {
                    out.counter(&name, &help, &labels, v);
                } else {
                    out.gauge(&name, &help, &labels, v);
                }
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// An attribute that may be absent or closed to this user (no value), else must read.
fn optional(path: &std::path::Path) -> Result<Option<String>, Error> {
    match super::sysread(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if super::missing_or_denied(&e) => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn required(path: &std::path::Path) -> Result<String, Error> {
    super::sysread(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// ENODATA: a zone whose sensor has no reading right now, which node_exporter skips.
fn no_data(e: &Error) -> bool {
    matches!(e, Error::Read { source, .. } if source.raw_os_error() == Some(libc::ENODATA))
}

/// `class/thermal`: every zone's temperature, then every cooling device's state. As in
/// node_exporter 1.5, a zone that cannot be read fails the collector before any zone is
/// written, and a cooling device that cannot be read fails it after the zones were.
pub fn thermal_zone(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/thermal");
    let mut zones = Vec::new();
    for (name, p) in super::numbered(&dir, "thermal_zone") {
        let zone = || -> Result<(String, f64), Error> {
            let kind = required(&p.join("type"))?;
            required(&p.join("policy"))?;
            let temp = super::read_int(&p.join("temp"))?;
            optional(&p.join("mode"))?;
            if let Some(passive) = optional(&p.join("passive"))?
                && passive.parse::<u64>().is_err()
            {
                return Err(Error::Parse {
                    path: p.join("passive"),
                    what: format!("{passive:?} is not a number"),
                });
            }
            Ok((kind, temp as f64 / 1000.0))
        };
        match zone() {
            Ok((kind, t)) => zones.push((name["thermal_zone".len()..].to_string(), kind, t)),
            Err(e) if no_data(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    for (zone, kind, t) in &zones {
        out.gauge(
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            &[("zone", zone), ("type", kind)],
            *t,
        );
    }
    let mut devices = Vec::new();
    for (name, p) in super::numbered(&dir, "cooling_device") {
        let kind = required(&p.join("type"))?;
        let state = |f: &str| -> Result<f64, Error> {
            let s = required(&p.join(f))?;
            s.parse::<i64>()
                .map(|v| v as f64)
                .map_err(|_| Error::Parse {
                    path: p.join(f),
                    what: format!("{s:?} is not a number"),
                })
        };
        let max = state("max_state")?;
        let cur = state("cur_state")?;
        devices.push((name["cooling_device".len()..].to_string(), kind, cur, max));
    }
    for (name, kind, cur, max) in &devices {
        let l = [("name", name.as_str()), ("type", kind.as_str())];
        out.gauge(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
            &l,
            *cur,
        );
        out.gauge(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
            &l,
            *max,
        );
    }
    Ok(())
}

/// A whole file as an unsigned base-10 number (node_exporter's `readUintFromFile`).
fn read_uint(path: &std::path::Path) -> Result<u64, Error> {
    let s = super::read(path)?;
    s.trim().parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        what: format!("{:?} is not an unsigned number", s.trim()),
    })
}

/// `devices/system/edac/mc/mc*`: each memory controller's corrected and uncorrected errors, in
/// total, without a row (`csrow="unknown"`) and per chip-select row. A controller file that
/// cannot be read fails the collector after what was already written, as in node_exporter 1.5.
pub fn edac(n: &Node, out: &mut Out) -> Result<(), Error> {
    const CE: &str = "node_edac_csrow_correctable_errors_total";
    const CE_HELP: &str = "Total correctable memory errors for this csrow.";
    const UE: &str = "node_edac_csrow_uncorrectable_errors_total";
    const UE_HELP: &str = "Total uncorrectable memory errors for this csrow.";
    for (name, mc) in super::numbered(&n.sys("devices/system/edac/mc"), "mc") {
        let digits = leading_digits(&name["mc".len()..]);
        let c = [("controller", digits)];
        let unknown = [("controller", digits), ("csrow", "unknown")];
        out.counter(
            "node_edac_correctable_errors_total",
            "Total correctable memory errors.",
            &c,
            read_uint(&mc.join("ce_count"))? as f64,
        );
        out.counter(
            CE,
            CE_HELP,
            &unknown,
            read_uint(&mc.join("ce_noinfo_count"))? as f64,
        );
        out.counter(
            "node_edac_uncorrectable_errors_total",
            "Total uncorrectable memory errors.",
            &c,
            read_uint(&mc.join("ue_count"))? as f64,
        );
        out.counter(
            UE,
            UE_HELP,
            &unknown,
            read_uint(&mc.join("ue_noinfo_count"))? as f64,
        );
        for (row, p) in super::numbered(&mc, "csrow") {
            let l = [
                ("controller", digits),
                ("csrow", leading_digits(&row["csrow".len()..])),
            ];
            out.counter(CE, CE_HELP, &l, read_uint(&p.join("ce_count"))? as f64);
            out.counter(UE, UE_HELP, &l, read_uint(&p.join("ue_count"))? as f64);
        }
    }
    Ok(())
}

/// The digits a sysfs name's number starts with (`mc12` → `12`, as node_exporter's pattern
/// captures them).
fn leading_digits(s: &str) -> &str {
    &s[..s.bytes().take_while(u8::is_ascii_digit).count()]
}

/// Prometheus's `SanitizeMetricName` as node_exporter applies it to a RAPL zone name: every
/// run of characters outside `[0-9A-Za-z_]`, with the underscores around it, becomes one `_`.
fn sanitize_metric_name(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        // The start of a match: underscores, then at least one bad character.
        let mut j = i;
        while j < chars.len() && chars[j] == '_' {
            j += 1;
        }
        if j < chars.len() && !ok(chars[j]) {
            while j < chars.len() && !ok(chars[j]) {
                j += 1;
            }
            while j < chars.len() && chars[j] == '_' {
                j += 1;
            }
            out.push('_');
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// `class/powercap/*`: the energy counter of every RAPL zone, in joules, one family per zone
/// name (`package-1` is zone `package`, index 1), as node_exporter 1.5 names them, or one family
/// with a `rapl_zone` label (`--collector.rapl.enable-zone-label`). No powercap class, or an
/// energy counter only root may read (kernels from 5.10), is no data.
pub fn rapl(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/powercap");
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if super::missing_or_denied(&e) => {
            return Err(Error::NoData(format!("{}: {e}", dir.display())));
        }
        Err(source) => return Err(Error::Read { path: dir, source }),
        Ok(rd) => rd,
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut used: std::collections::HashMap<String, i64> = Default::default();
    let mut zones = Vec::new();
    for entry in names {
        let p = dir.join(&entry);
        // The control type (`intel-rapl`) has no name: not a zone.
        let Ok(raw) = super::read_bounded(&p.join("name")) else {
            continue;
        };
        let raw = raw.trim().to_string();
        let split = raw
            .split_once('-')
            .filter(|(_, idx)| !idx.contains('-'))
            .and_then(|(name, idx)| Some((name.to_string(), idx.parse::<i64>().ok()?)));
        let (name, index) = split.unwrap_or_else(|| {
            let index = used.get(&raw).copied().unwrap_or(0);
            (raw.clone(), index)
        });
        used.insert(name.clone(), index + 1);
        let range = p.join("max_energy_range_uj");
        match read_uint(&range) {
            Err(Error::Read { source, .. }) if super::missing_or_denied(&source) => {
                return Err(Error::NoData(format!("{}: {source}", range.display())));
            }
            r => {
                r?;
            }
        }
        zones.push((name, index, p));
    }
    for (name, index, p) in zones {
        let energy = p.join("energy_uj");
        let uj = match read_uint(&energy) {
            Err(Error::Read { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                return Err(Error::NoData(format!("{}: {source}", energy.display())));
            }
            r => r?,
        };
        let path = p.to_string_lossy().into_owned();
        let index = index.to_string();
        if n.opts.rapl_zone_label {
            out.counter(
                "node_rapl_joules_total",
                "Current RAPL value in joules",
                &[("index", &index), ("path", &path), ("rapl_zone", &name)],
                uj as f64 / 1e6,
            );
        } else {
            out.counter(
                &format!("node_rapl_{}_joules_total", sanitize_metric_name(&name)),
                &format!("Current RAPL {name} value in joules"),
                &[("index", &index), ("path", &path)],
                uj as f64 / 1e6,
            );
        }
    }
    Ok(())
}

/// Go's `ParseInt(s, 0, 64)`: a `0x`, `0o`, `0b` or bare `0` prefix chooses the base (`010`
/// is eight), underscores allowed after a prefix.
fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits, prefixed) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r, true)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r, true)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r, true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, false)
        };
    let digits: String = if prefixed {
        // Go allows an underscore after the prefix and between digits, nowhere else.
        if digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    if digits.is_empty() {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// The power supply attributes node_exporter reports as numbers: (family suffix, file, scale).
const SUPPLY_NUMBERS: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cyclecount", "cycle_count", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_seconds", "time_to_empty_now", 1.0),
    ("time_to_full_seconds", "time_to_full_now", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_ampere", "current_now", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_watthour", "energy_now", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_volt", "voltage_now", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_ampere", "charge_now", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_watt", "power_now", 1e6),
    ("temp_celsius", "temp", 10.0),
    ("temp_alert_max_celsius", "temp_alert_max", 10.0),
    ("temp_alert_min_celsius", "temp_alert_min", 10.0),
    ("temp_ambient_celsius", "temp_ambient", 10.0),
    ("temp_ambient_max_celsius", "temp_ambient_max", 10.0),
    ("temp_ambient_min_celsius", "temp_ambient_min", 10.0),
    ("temp_max_celsius", "temp_max", 10.0),
    ("temp_min_celsius", "temp_min", 10.0),
];

/// Numbers procfs parses (so a bad one fails the collector) that node_exporter does not report.
const SUPPLY_UNREPORTED: [&str; 7] = [
    "charge_avg",
    "current_avg",
    "energy_avg",
    "power_avg",
    "voltage_avg",
    "time_to_empty_avg",
    "time_to_full_avg",
];

/// The strings of `node_power_supply_info`, each a label when not empty.
const SUPPLY_STRINGS: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
];

/// `class/power_supply/*`: batteries, mains and USB supplies, as node_exporter 1.5 (procfs 0.8)
/// reads them: every supply is read before anything is written, an attribute the driver does
/// not support is skipped, and any other failure (a file only root may read, a number that is
/// not one) fails the collector.
pub fn powersupplyclass(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/power_supply");
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoData(format!("{}: {e}", dir.display())));
        }
        Err(source) => return Err(Error::Read { path: dir, source }),
        Ok(rd) => rd,
    };
    let mut supplies = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        let files = std::fs::read_dir(&p).map_err(|source| Error::Read {
            path: p.clone(),
            source,
        })?;
        let mut numbers: Vec<(&str, f64, f64)> = Vec::new();
        let mut strings: Vec<(&str, String)> = Vec::new();
        for f in files.flatten() {
            if !f.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let file = f.file_name().to_string_lossy().into_owned();
            let v = match super::sysread(&f.path()) {
                Ok(v) => v,
                // Not there, or not supported by this driver right now.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || matches!(
                            e.raw_os_error(),
                            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                        ) =>
                {
                    continue;
                }
                Err(source) => {
                    return Err(Error::Read {
                        path: f.path(),
                        source,
                    });
                }
            };
            let number = SUPPLY_NUMBERS.iter().find(|(_, fl, _)| *fl == file);
            if number.is_some() || SUPPLY_UNREPORTED.contains(&file.as_str()) {
                let x = parse_int_base0(&v).ok_or_else(|| Error::Parse {
                    path: f.path(),
                    what: format!("{v:?} is not a number"),
                })?;
                if let Some((suffix, _, scale)) = number {
                    numbers.push((suffix, x as f64, *scale));
                }
            } else if let Some(s) = SUPPLY_STRINGS.iter().find(|s| **s == file) {
                strings.push((s, v));
            }
        }
        supplies.push((name, numbers, strings));
    }
    for (name, numbers, strings) in &supplies {
        if n.opts.power_supply_ignored.is_match(name) {
            continue;
        }
        for (suffix, x, scale) in numbers {
            out.gauge(
                &format!("node_power_supply_{suffix}"),
                &format!("{suffix} value of /sys/class/power_supply/<power_supply>."),
                &[("power_supply", name)],
                x / scale,
            );
        }
        let mut labels: Vec<(&str, &str)> = vec![("power_supply", name)];
        labels.extend(
            strings
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (*k, v.as_str())),
        );
        labels.sort();
        out.gauge(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            &labels,
            1.0,
        );
    }
    Ok(())
}

#[cfg(test)]
mod supply_tests {
    use super::*;

    /// Go's base-0 integers, which power supply numbers are parsed as.
    #[test]
    fn base0_integers_as_go_parses_them() {
        for (s, want) in [
            ("42", Some(42)),
            ("-5", Some(-5)),
            ("010", Some(8)),
            ("0x10", Some(16)),
            ("0b101", Some(5)),
            ("0o17", Some(15)),
            ("0x_1_0", Some(16)),
            ("0x1__0", None),
            ("0x1_0", Some(16)),
            ("0", Some(0)),
            ("08", None),
            ("12x", None),
            ("", None),
        ] {
            assert_eq!(parse_int_base0(s), want, "{s}");
        }
        assert_eq!(sanitize_metric_name("package-0-die-0"), "package_0_die_0");
        assert_eq!(sanitize_metric_name("my.zone"), "my_zone");
        assert_eq!(sanitize_metric_name("a_-_b"), "a_b");
    }
}
