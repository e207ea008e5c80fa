//! `fibrechannel`: each Fibre Channel host adapter's port attributes and link counters, from
//! `/sys/class/fc_host/<host>/` and its `statistics/`, as node_exporter 1.5 (procfs 0.8)
//! reads and reports them.

use std::io::ErrorKind;
use std::path::Path;

use super::{Error, Node, Out};

/// The host attributes procfs reads, in its order. Every one must be readable, `node_name`
/// too though it is not reported: 1.5 fails the collector on a missing one (later releases
/// skip it).
const ATTRS: [&str; 11] = [
    "speed",
    "port_state",
    "port_type",
    "node_name",
    "port_id",
    "port_name",
    "fabric_name",
    "dev_loss_tmo",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
];

/// The counters reported: (statistics file, family, help). The driver's other files are read
/// (so one that cannot be read fails the collector) but not parsed.
const COUNTERS: [(&str, &str, &str); 14] = [
    (
        "dumped_frames",
        "node_fibrechannel_dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        "error_frames",
        "node_fibrechannel_error_frames_total",
        "Number of errors in frames",
    ),
    (
        "invalid_crc_count",
        "node_fibrechannel_invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    (
        "rx_frames",
        "node_fibrechannel_rx_frames_total",
        "Number of frames received",
    ),
    (
        "rx_words",
        "node_fibrechannel_rx_words_total",
        "Number of words received by host port",
    ),
    (
        "tx_frames",
        "node_fibrechannel_tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        "tx_words",
        "node_fibrechannel_tx_words_total",
        "Number of words transmitted by host port",
    ),
    (
        "seconds_since_last_reset",
        "node_fibrechannel_seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        "invalid_tx_word_count",
        "node_fibrechannel_invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        "link_failure_count",
        "node_fibrechannel_link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        "loss_of_sync_count",
        "node_fibrechannel_loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "loss_of_signal_count",
        "node_fibrechannel_loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        "nos_count",
        "node_fibrechannel_nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "fcp_packet_aborts",
        "node_fibrechannel_fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
];

/// What HBA firmware reports for a counter it does not implement; such a counter is left out.
const UNIMPLEMENTED: u64 = u64::MAX;

struct Host {
    name: String,
    /// By [`ATTRS`].
    attrs: Vec<String>,
    /// By [`COUNTERS`]; a counter the driver has no file for stays 0 and is reported as 0.
    counters: [u64; COUNTERS.len()],
}

impl Host {
    fn attr(&self, f: &str) -> &str {
        ATTRS
            .iter()
            .position(|a| *a == f)
            .map_or("", |i| self.attrs[i].as_str())
    }
}

pub(super) fn fibrechannel(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/fc_host");
    let rd = std::fs::read_dir(&dir).map_err(|e| super::missing_is_no_data(&dir, e))?;
    let mut entries = Vec::new();
    for e in rd {
        let e = e.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        // Every entry is a host, whatever its type: a stray file fails the collector.
        entries.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    entries.sort();
    // All hosts are read before any is written: one that cannot be read leaves the collector
    // with nothing, as in node_exporter.
    let mut hosts = Vec::with_capacity(entries.len());
    for (name, path) in entries {
        let mut attrs = Vec::with_capacity(ATTRS.len());
        for f in ATTRS {
            let p = path.join(f);
            let mut v = super::sysread(&p).map_err(|source| Error::Read { path: p, source })?;
            // The names and port ID lose their first two characters (the kernel's `0x`),
            // whatever they are.
            if matches!(f, "node_name" | "port_id" | "port_name" | "fabric_name") && v.len() > 2 {
                v = String::from_utf8_lossy(&v.as_bytes()[2..]).into_owned();
            }
            attrs.push(v);
        }
        let counters = statistics(&path.join("statistics"))?;
        hosts.push(Host {
            name,
            attrs,
            counters,
        });
    }
    for h in &hosts {
        out.gauge(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
            &[
                ("dev_loss_tmo", h.attr("dev_loss_tmo")),
                ("fabric_name", h.attr("fabric_name")),
                ("fc_host", &h.name),
                ("port_id", h.attr("port_id")),
                ("port_name", h.attr("port_name")),
                ("port_state", h.attr("port_state")),
                ("port_type", h.attr("port_type")),
                ("speed", h.attr("speed")),
                ("supported_classes", h.attr("supported_classes")),
                ("supported_speeds", h.attr("supported_speeds")),
                ("symbolic_name", h.attr("symbolic_name")),
            ],
            1.0,
        );
        for ((_, family, help), v) in COUNTERS.iter().zip(h.counters) {
            if v != UNIMPLEMENTED {
                out.counter(family, help, &[("fc_host", &h.name)], v as f64);
            }
        }
    }
    Ok(())
}

/// A host's `statistics/` counters, which drivers write in hex (`0x1a`).
fn statistics(dir: &Path) -> Result<[u64; COUNTERS.len()], Error> {
    let rd = match std::fs::read_dir(dir) {
        // procfs hands this error up as it is, so node_exporter takes it for an absent
        // class: no data for the whole collector.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::NoData(format!("{}: {e}", dir.display())));
        }
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
        Ok(rd) => rd,
    };
    let mut files = Vec::new();
    for e in rd {
        let e = e.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        // Only regular files (not followed through symlinks); reset_statistics is write-only.
        if !e.file_type().is_ok_and(|t| t.is_file()) || e.file_name() == "reset_statistics" {
            continue;
        }
        files.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    files.sort();
    let mut counters = [0; COUNTERS.len()];
    for (file, p) in files {
        let v = match super::sysread(&p) {
            Ok(v) => v,
            // Gone, or a write-only or unsupported attribute of this driver.
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    || matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                    ) =>
            {
                continue;
            }
            Err(source) => return Err(Error::Read { path: p, source }),
        };
        if let Some(i) = COUNTERS.iter().position(|(f, _, _)| *f == file) {
            // node_exporter 1.5 crashes on a counter that is not a number; failing the
            // collector is the nearest a scrape can come.
            counters[i] = parse_uint_base0(&v).ok_or_else(|| Error::Parse {
                path: p,
                what: format!("{v:?} is not an unsigned number"),
            })?;
        }
    }
    Ok(counters)
}

/// Go's `strconv.ParseUint(s, 0, 64)`, which procfs parses sysfs counters with: `0x`, `0o`,
/// `0b` or a bare leading `0` (octal: `010` is eight) choose the base, and `_` may separate
/// digits. No sign; out of range is an error.
pub(super) fn parse_uint_base0(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    // A two-letter prefix counts only with something after it (`0x` alone is octal, and
    // invalid).
    let prefix = |p: [&str; 2]| {
        (s.len() >= 3)
            .then(|| s.strip_prefix(p[0]).or_else(|| s.strip_prefix(p[1])))
            .flatten()
    };
    let (radix, digits) = if let Some(d) = prefix(["0x", "0X"]) {
        (16, d)
    } else if let Some(d) = prefix(["0b", "0B"]) {
        (2, d)
    } else if let Some(d) = prefix(["0o", "0O"]) {
        (8, d)
    } else if let Some(d) = s.strip_prefix('0') {
        (8, d)
    } else {
        (10, s)
    };
    // An underscore must follow a digit or the prefix and be followed by a digit.
    if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_uint_base0;

    #[test]
    fn unsigned_integers_as_go_parses_them_with_base_0() {
        for (s, want) in [
            ("0", Some(0)),
            ("42", Some(42)),
            ("0x1a", Some(26)),
            ("0X1A", Some(26)),
            ("0xffffffffffffffff", Some(u64::MAX)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("010", Some(8)),
            ("00", Some(0)),
            ("08", None),
            ("0b101", Some(5)),
            ("0o17", Some(15)),
            ("0_17", Some(15)),
            ("1_000", Some(1000)),
            ("0x_1_0", Some(16)),
            ("0x1__0", None),
            ("0x1_", None),
            ("_1", None),
            ("0x", None),
            ("0b", None),
            ("0x+1", None),
            ("+5", None),
            ("-1", None),
            ("", None),
            ("abc", None),
        ] {
            assert_eq!(parse_uint_base0(s), want, "{s}");
        }
    }
}
