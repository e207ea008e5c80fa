//! Collectors about the machine and its clock: uname, os, time, timex, selinux.

use std::ffi::CStr;

use super::{Error, Node, Out, attr, read_optional};

fn field(chars: &[libc::c_char]) -> String {
    // SAFETY: uname(2) NUL-terminates every field within its fixed-size array.
    unsafe { CStr::from_ptr(chars.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// `uname(2)` as node_uname_info.
pub fn uname(_n: &Node, out: &mut Out) -> Result<(), Error> {
    // SAFETY: `u` is a writable utsname the call fills; zeroed is a valid bit pattern for it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(Error::Read {
            path: "uname(2)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let (dom, mach, node, rel, sys, ver) = (
        field(&u.domainname),
        field(&u.machine),
        field(&u.nodename),
        field(&u.release),
        field(&u.sysname),
        field(&u.version),
    );
    out.gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        &[
            ("domainname", &dom),
            ("machine", &mach),
            ("nodename", &node),
            ("release", &rel),
            ("sysname", &sys),
            ("version", &ver),
        ],
        1.0,
    );
    Ok(())
}

/// An os-release value: unquoted, with the shell escapes the format allows undone.
fn os_release_value(v: &str) -> String {
    let v = v.trim();
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    let inner = if quoted { &v[1..v.len() - 1] } else { v };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The leading `major.minor` of a version as a number: `22.04` → 22.04, `3.18.2` → 3.18,
/// `12` → 12; none when it does not start with a digit or is 0.
fn major_minor(v: &str) -> Option<f64> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let major = digits(v);
    if major == 0 {
        return None;
    }
    let mut end = major;
    if v[major..].starts_with('.') {
        end = major + 1 + digits(&v[major + 1..]);
    }
    v[..end]
        .trim_end_matches('.')
        .parse()
        .ok()
        .filter(|x: &f64| *x > 0.0)
}

/// `/etc/os-release` (else `/usr/lib/os-release`) under `--path.rootfs` as node_os_info and
/// node_os_version.
pub fn os(n: &Node, out: &mut Out) -> Result<(), Error> {
    let mut text = None;
    for rel in ["etc/os-release", "usr/lib/os-release"] {
        match read_optional(&n.paths.rootfs.join(rel)) {
            Ok(s) => {
                text = Some(s);
                break;
            }
            Err(Error::NoData(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    let Some(text) = text else {
        return Err(Error::NoData(
            "no os-release file under --path.rootfs".into(),
        ));
    };
    let mut kv = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            kv.insert(k.trim().to_string(), os_release_value(v));
        }
    }
    let get = |k: &str| kv.get(k).map(String::as_str).unwrap_or("");
    out.gauge(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        &[
            ("build_id", get("BUILD_ID")),
            ("id", get("ID")),
            ("id_like", get("ID_LIKE")),
            ("image_id", get("IMAGE_ID")),
            ("image_version", get("IMAGE_VERSION")),
            ("name", get("NAME")),
            ("pretty_name", get("PRETTY_NAME")),
            ("variant", get("VARIANT")),
            ("variant_id", get("VARIANT_ID")),
            ("version", get("VERSION")),
            ("version_codename", get("VERSION_CODENAME")),
            ("version_id", get("VERSION_ID")),
        ],
        1.0,
    );
    if let Some(v) = major_minor(get("VERSION_ID")) {
        out.gauge(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            &[
                ("id", get("ID")),
                ("id_like", get("ID_LIKE")),
                ("name", get("NAME")),
            ],
            v,
        );
    }
    Ok(())
}

/// The wall clock, the local time zone's offset, and the kernel's clock sources.
pub fn time(n: &Node, out: &mut Out) -> Result<(), Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    out.gauge(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        &[],
        now,
    );
    let secs = now as libc::time_t;
    // SAFETY: `tm` is a writable struct localtime_r fills; `secs` outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            // SAFETY: a non-null tm_zone points at a NUL-terminated name owned by libc.
            unsafe { CStr::from_ptr(tm.tm_zone) }
                .to_string_lossy()
                .into_owned()
        };
        out.gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            &[("time_zone", &zone)],
            tm.tm_gmtoff as f64,
        );
    }
    let dir = n.sys("devices/system/clocksource");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut sources: Vec<(String, std::path::PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_prefix("clocksource")?.to_string();
            Some((id, e.path()))
        })
        .collect();
    sources.sort();
    for (id, path) in sources {
        for cs in attr(&path.join("available_clocksource"))
            .unwrap_or_default()
            .split_whitespace()
        {
            out.gauge(
                "node_time_clocksource_available_info",
                "Available clocksources read from '/sys/devices/system/clocksource'.",
                &[("clocksource", cs), ("device", &id)],
                1.0,
            );
        }
        if let Some(cur) = attr(&path.join("current_clocksource")) {
            out.gauge(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                &[("clocksource", cur.trim()), ("device", &id)],
                1.0,
            );
        }
    }
    Ok(())
}

/// `adjtimex(2)` read-only: the kernel's clock discipline state.
pub fn timex(_n: &Node, out: &mut Out) -> Result<(), Error> {
    // SAFETY: a zeroed timex with modes 0 asks for nothing to change; the kernel fills it.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(Error::NoData(format!("adjtimex(2): {e}")));
        }
        return Err(Error::Read {
            path: "adjtimex(2)".into(),
            source: e,
        });
    }
    // Offsets are in nanoseconds with STA_NANO, else microseconds.
    let div = if t.status & libc::STA_NANO != 0 {
        1e9
    } else {
        1e6
    };
    // Frequencies are parts per million scaled by 2^16.
    let ppm = |v: libc::c_long| v as f64 / 65536.0 / 1e6;
    let synced = if state == libc::TIME_ERROR { 0.0 } else { 1.0 };
    let gauges: [(&str, &str, f64); 13] = [
        (
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / div,
        ),
        (
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + ppm(t.freq),
        ),
        (
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            t.maxerror as f64 / 1e6,
        ),
        (
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            t.esterror as f64 / 1e6,
        ),
        (
            "node_timex_status",
            "Value of the status array bits.",
            t.status as f64,
        ),
        (
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            t.constant as f64,
        ),
        (
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            t.tick as f64 / 1e6,
        ),
        (
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            ppm(t.ppsfreq),
        ),
        (
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            t.jitter as f64 / div,
        ),
        (
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            t.shift as f64,
        ),
        (
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            ppm(t.stabil),
        ),
        (
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            t.tai as f64,
        ),
        (
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            synced,
        ),
    ];
    for (name, help, v) in gauges {
        out.gauge(name, help, &[], v);
    }
    for (name, help, v) in [
        (
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            t.jitcnt,
        ),
        (
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            t.calcnt,
        ),
        (
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            t.errcnt,
        ),
        (
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt,
        ),
    ] {
        out.counter(name, help, &[], v as f64);
    }
    Ok(())
}

/// SELinux: whether it is enabled (selinuxfs has `enforce`), and if so the mode configured in
/// `/etc/selinux/config` and the mode in force (enforcing 1, permissive 0, disabled -1).
pub fn selinux(n: &Node, out: &mut Out) -> Result<(), Error> {
    let Some(enforce) = attr(&n.sys("fs/selinux/enforce")) else {
        out.gauge(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
            &[],
            0.0,
        );
        return Ok(());
    };
    out.gauge(
        "node_selinux_enabled",
        "SELinux is enabled, 1 is true, 0 is false",
        &[],
        1.0,
    );
    let config = read_optional(&n.paths.rootfs.join("etc/selinux/config")).unwrap_or_default();
    let configured = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("SELINUX="))
        .map(|m| match m.trim() {
            "enforcing" => 1.0,
            "permissive" => 0.0,
            _ => -1.0,
        })
        .unwrap_or(-1.0);
    out.gauge(
        "node_selinux_config_mode",
        "Configured SELinux enforcement mode",
        &[],
        configured,
    );
    out.gauge(
        "node_selinux_current_mode",
        "Current SELinux enforcement mode",
        &[],
        if enforce.trim() == "1" { 1.0 } else { 0.0 },
    );
    Ok(())
}

/// The DMI attributes node_exporter reports, by label (`sys_vendor` is `system_vendor`).
const DMI: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("system_vendor", "sys_vendor"),
];

/// `class/dmi/id`: `node_dmi_info` labelled by the firmware's DMI strings. An attribute this
/// user may not read (the serials and UUID are root's) is left out; an empty one is an empty
/// label. node_exporter reads them once at start; vigil at each scrape (they do not change
/// while the machine runs).
pub fn dmi(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/dmi/id");
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoData(format!(
                "{}: the platform has no DMI information",
                dir.display()
            )));
        }
        Err(source) => return Err(Error::Read { path: dir, source }),
        Ok(rd) => rd,
    };
    let mut found: Vec<(&str, String)> = Vec::new();
    for e in entries.flatten() {
        // Regular files only (not `power/`, not the `subsystem` link).
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let file = e.file_name().to_string_lossy().into_owned();
        let Some((label, _)) = DMI.iter().find(|(_, f)| *f == file) else {
            continue;
        };
        match super::sysread(&e.path()) {
            Ok(v) => found.push((label, v)),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            Err(source) => {
                return Err(Error::Read {
                    path: dir.join(&file),
                    source,
                });
            }
        }
    }
    if found.is_empty() {
        return Err(Error::NoData(format!(
            "{}: no DMI attribute could be read",
            dir.display()
        )));
    }
    found.sort();
    let labels: Vec<(&str, &str)> = found.iter().map(|(k, v)| (*k, v.as_str())).collect();
    out.gauge(
        "node_dmi_info",
        "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
        &labels,
        1.0,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_and_versions() {
        assert_eq!(os_release_value("\"Debian GNU/Linux\""), "Debian GNU/Linux");
        assert_eq!(os_release_value("'a \\\"b\\\"'"), "a \"b\"");
        assert_eq!(os_release_value("debian"), "debian");
        assert_eq!(major_minor("22.04"), Some(22.04));
        assert_eq!(major_minor("3.18.2"), Some(3.18));
        assert_eq!(major_minor("12"), Some(12.0));
        assert_eq!(major_minor(""), None);
    }
}
