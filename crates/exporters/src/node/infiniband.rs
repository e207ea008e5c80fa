//! `infiniband`: every InfiniBand (and RoCE) adapter under `/sys/class/infiniband` — its
//! identity, and for each port its state, physical state, signalling rate and the counters in
//! `counters/` (and `counters_ext/`, where kernels before 4.5 kept the 64-bit ones), as
//! node_exporter 1.5 (procfs 0.8) reads and reports them. `hw_counters/` is not read.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use super::{Error, Node, Out, missing_is_no_data};

/// The `counters/` files reported: (file, family suffix, help).
const COUNTERS: [(&str, &str, &str); 22] = [
    (
        "VL15_dropped",
        "vl15_dropped_total",
        "Number of incoming VL15 packets dropped due to resource limitations.",
    ),
    (
        "excessive_buffer_overrun_errors",
        "excessive_buffer_overrun_errors_total",
        "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.",
    ),
    (
        "link_downed",
        "link_downed_total",
        "Number of times the link failed to recover from an error state and went down",
    ),
    (
        "link_error_recovery",
        "link_error_recovery_total",
        "Number of times the link successfully recovered from an error state",
    ),
    (
        "local_link_integrity_errors",
        "local_link_integrity_errors_total",
        "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.",
    ),
    (
        "multicast_rcv_packets",
        "multicast_packets_received_total",
        "Number of multicast packets received (including errors)",
    ),
    (
        "multicast_xmit_packets",
        "multicast_packets_transmitted_total",
        "Number of multicast packets transmitted (including errors)",
    ),
    (
        "port_rcv_constraint_errors",
        "port_constraint_errors_received_total",
        "Number of packets received on the switch physical port that are discarded",
    ),
    (
        "port_rcv_data",
        "port_data_received_bytes_total",
        "Number of data octets received on all links",
    ),
    (
        "port_rcv_discards",
        "port_discards_received_total",
        "Number of inbound packets discarded by the port because the port is down or congested",
    ),
    (
        "port_rcv_errors",
        "port_errors_received_total",
        "Number of packets containing an error that were received on this port",
    ),
    (
        "port_rcv_packets",
        "port_packets_received_total",
        "Number of packets received on all VLs by this port (including errors)",
    ),
    (
        "port_rcv_remote_physical_errors",
        "port_receive_remote_physical_errors_total",
        "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.",
    ),
    (
        "port_rcv_switch_relay_errors",
        "port_receive_switch_relay_errors_total",
        "Number of packets that could not be forwarded by the switch.",
    ),
    (
        "port_xmit_constraint_errors",
        "port_constraint_errors_transmitted_total",
        "Number of packets not transmitted from the switch physical port",
    ),
    (
        "port_xmit_data",
        "port_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
    ),
    (
        "port_xmit_discards",
        "port_discards_transmitted_total",
        "Number of outbound packets discarded by the port because the port is down or congested",
    ),
    (
        "port_xmit_packets",
        "port_packets_transmitted_total",
        "Number of packets transmitted on all VLs from this port (including errors)",
    ),
    (
        "port_xmit_wait",
        "port_transmit_wait_total",
        "Number of ticks during which the port had data to transmit but no data was sent during the entire tick",
    ),
    (
        "symbol_error",
        "symbol_error_total",
        "Number of minor link errors detected on one or more physical lanes.",
    ),
    (
        "unicast_rcv_packets",
        "unicast_packets_received_total",
        "Number of unicast packets received (including errors)",
    ),
    (
        "unicast_xmit_packets",
        "unicast_packets_transmitted_total",
        "Number of unicast packets transmitted (including errors)",
    ),
];

/// The `counters_ext/` files reported, as [`COUNTERS`].
const LEGACY_COUNTERS: [(&str, &str, &str); 8] = [
    (
        "port_multicast_rcv_packets",
        "legacy_multicast_packets_received_total",
        "Number of multicast packets received",
    ),
    (
        "port_multicast_xmit_packets",
        "legacy_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted",
    ),
    (
        "port_rcv_data_64",
        "legacy_data_received_bytes_total",
        "Number of data octets received on all links",
    ),
    (
        "port_rcv_packets_64",
        "legacy_packets_received_total",
        "Number of data packets received on all links",
    ),
    (
        "port_unicast_rcv_packets",
        "legacy_unicast_packets_received_total",
        "Number of unicast packets received",
    ),
    (
        "port_unicast_xmit_packets",
        "legacy_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted",
    ),
    (
        "port_xmit_data_64",
        "legacy_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
    ),
    (
        "port_xmit_packets_64",
        "legacy_packets_transmitted_total",
        // node_exporter's wording, "received" though these are transmitted.
        "Number of data packets received on all links",
    ),
];

/// The data counters count 4-byte words (per lane, as Mellanox puts it); procfs multiplies
/// them by 4, wrapping as Go's uint64 does.
const IN_WORDS: [&str; 4] = [
    "port_rcv_data",
    "port_xmit_data",
    "port_rcv_data_64",
    "port_xmit_data_64",
];

struct Port {
    state: u32,
    phys_state: u32,
    rate: u64,
    /// (family suffix, help, value) of each counter read.
    counters: Vec<(&'static str, &'static str, u64)>,
}

struct Device {
    name: String,
    board_id: String,
    fw_ver: String,
    hca_type: String,
    /// By port number: two directories naming one port (`1`, `01`) are one port, the later
    /// in name order winning, as in procfs's map.
    ports: BTreeMap<u32, Port>,
}

fn parse_error(path: &Path, what: String) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        what,
    }
}

/// A directory's entries in name order, as Go's `os.ReadDir` gives them: which failure is
/// met first decides between no data and an error.
fn entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, Error> {
    let rd = std::fs::read_dir(dir).map_err(|e| missing_is_no_data(dir, e))?;
    let mut v = rd
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| missing_is_no_data(dir, e))?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

/// Go's `ParseUint(s, 10, 32)`: digits only, no sign.
fn parse_u32(s: &str) -> Option<u32> {
    if s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

/// `4: ACTIVE` → 4. Exactly one colon.
fn state_id(s: &str) -> Option<u32> {
    let mut parts = s.split(':');
    let (Some(id), Some(_), None) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    parse_u32(id.trim())
}

/// `100 Gb/sec (4X EDR)` → bytes per second: the text before the first space, parsed as a
/// 32-bit float (so `13.64` is 13.6400003…), times 125,000,000, truncated as Go converts.
fn parse_rate(s: &str) -> Option<u64> {
    let (gbit, _) = s.split_once(' ')?;
    let v = super::bcache::go_parse_float::<f32>(gbit.trim())?;
    Some(super::bcache::go_u64(v * 125_000_000.0))
}

/// One `counters` or `counters_ext` directory: every regular file is read (symlinks and
/// directories are skipped), the known ones parsed. A file absent, closed to this user or
/// unsupported by the driver is skipped, as is an `N/A (no PMA)` value (adapters without a
/// performance management agent).
fn read_counters(
    dir: &Path,
    table: &[(&'static str, &'static str, &'static str)],
    into: &mut Vec<(&'static str, &'static str, u64)>,
) -> Result<(), Error> {
    for e in entries(dir)? {
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = e.path();
        let v = match super::sysread(&path) {
            Ok(v) => v,
            Err(e)
                if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied)
                    || matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) =>
            {
                continue;
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let name = e.file_name();
        let Some(&(file, family, help)) = table.iter().find(|(f, _, _)| name == **f) else {
            continue;
        };
        let n = match super::fibrechannel::parse_uint_base0(&v) {
            Some(n) => n,
            None if v.contains("N/A (no PMA)") => continue,
            None => return Err(parse_error(&path, format!("{v:?} is not a counter"))),
        };
        let n = if IN_WORDS.contains(&file) {
            n.wrapping_mul(4)
        } else {
            n
        };
        into.push((family, help, n));
    }
    Ok(())
}

fn read_port(dir: &Path, name: &str) -> Result<(u32, Port), Error> {
    let number = parse_u32(name)
        .ok_or_else(|| parse_error(dir, format!("port {name:?} is not a number")))?;
    let whole = |f: &str| {
        let p = dir.join(f);
        super::read_bounded(&p).map_err(|e| missing_is_no_data(&p, e))
    };
    let state_file = |f: &str| {
        let s = whole(f)?;
        state_id(&s).ok_or_else(|| parse_error(&dir.join(f), format!("{s:?} is not `ID: NAME`")))
    };
    let state = state_file("state")?;
    let phys_state = state_file("phys_state")?;
    let r = whole("rate")?;
    let rate = parse_rate(&r)
        .ok_or_else(|| parse_error(&dir.join("rate"), format!("{r:?} is not a rate")))?;
    let mut counters = Vec::new();
    read_counters(&dir.join("counters"), &COUNTERS, &mut counters)?;
    match read_counters(&dir.join("counters_ext"), &LEGACY_COUNTERS, &mut counters) {
        // Only kernels before 4.5 have it.
        Err(Error::NoData(_)) => {}
        r => r?,
    }
    Ok((
        number,
        Port {
            state,
            phys_state,
            rate,
            counters,
        },
    ))
}

fn read_device(dir: &Path, name: String) -> Result<Device, Error> {
    let attr = |f: &str| {
        let p = dir.join(f);
        super::sysread(&p).map_err(|e| missing_is_no_data(&p, e))
    };
    let board_id = attr("board_id")?;
    let fw_ver = attr("fw_ver")?;
    // Not every driver has it; 1.5 reports it empty then.
    let hca_type = match attr("hca_type") {
        Err(Error::NoData(_)) => String::new(),
        r => r?,
    };
    let mut ports = BTreeMap::new();
    for e in entries(&dir.join("ports"))? {
        let (number, port) = read_port(&e.path(), &e.file_name().to_string_lossy())?;
        ports.insert(number, port);
    }
    Ok(Device {
        name,
        board_id,
        fw_ver,
        hca_type,
        ports,
    })
}

/// `class/infiniband/*`. As in node_exporter 1.5 every device is read before anything is
/// written, and the first failure, in name order, decides: a missing file or directory
/// anywhere (`board_id`, `fw_ver`, `ports`, a port's `state`, `phys_state`, `rate` or
/// `counters/`) is no data for the whole collector, anything else an error.
pub(super) fn infiniband(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/infiniband");
    let mut devices = Vec::new();
    for e in entries(&dir)? {
        devices.push(read_device(
            &e.path(),
            e.file_name().to_string_lossy().into_owned(),
        )?);
    }
    for d in &devices {
        out.gauge(
            "node_infiniband_info",
            "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            &[
                ("board_id", &d.board_id),
                ("device", &d.name),
                ("firmware_version", &d.fw_ver),
                ("hca_type", &d.hca_type),
            ],
            1.0,
        );
        for (number, p) in &d.ports {
            let port = number.to_string();
            let labels = [("device", d.name.as_str()), ("port", port.as_str())];
            out.gauge(
                "node_infiniband_state_id",
                "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
                &labels,
                p.state.into(),
            );
            out.gauge(
                "node_infiniband_physical_state_id",
                "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
                &labels,
                p.phys_state.into(),
            );
            out.gauge(
                "node_infiniband_rate_bytes_per_second",
                "Maximum signal transfer rate",
                &labels,
                p.rate as f64,
            );
            for (family, help, v) in &p.counters {
                out.counter(
                    &format!("node_infiniband_{family}"),
                    help,
                    &labels,
                    *v as f64,
                );
            }
        }
    }
    Ok(())
}
