//! Network collectors: netdev (per-interface counters), netclass (per-interface sysfs
//! properties), netstat (protocol counters), sockstat (socket counts), conntrack, arp,
//! softnet, udp_queues and bonding.

use super::{Error, Node, Out, attr, parse_f64, read, read_optional};

fn netdev_wanted(n: &Node, dev: &str) -> bool {
    super::device_wanted(&n.opts.netdev_include, &n.opts.netdev_exclude, dev)
}

/// The counters node_exporter's netlink reader reports, by their `/proc/net/dev` names, each
/// the sum of these `/sys/class/net/*/statistics` files: the kernel's `rtnl_link_stats64`
/// either way, folded as `/proc/net/dev` folds them.
const NETDEV: [(&str, &[&str]); 17] = [
    ("receive_bytes", &["rx_bytes"]),
    ("receive_packets", &["rx_packets"]),
    ("receive_errs", &["rx_errors"]),
    ("receive_drop", &["rx_dropped", "rx_missed_errors"]),
    ("receive_fifo", &["rx_fifo_errors"]),
    (
        "receive_frame",
        &[
            "rx_frame_errors",
            "rx_length_errors",
            "rx_over_errors",
            "rx_crc_errors",
        ],
    ),
    ("receive_compressed", &["rx_compressed"]),
    ("receive_multicast", &["multicast"]),
    ("receive_nohandler", &["rx_nohandler"]),
    ("transmit_bytes", &["tx_bytes"]),
    ("transmit_packets", &["tx_packets"]),
    ("transmit_errs", &["tx_errors"]),
    ("transmit_drop", &["tx_dropped"]),
    ("transmit_fifo", &["tx_fifo_errors"]),
    ("transmit_colls", &["collisions"]),
    (
        "transmit_carrier",
        &[
            "tx_carrier_errors",
            "tx_aborted_errors",
            "tx_heartbeat_errors",
            "tx_window_errors",
        ],
    ),
    ("transmit_compressed", &["tx_compressed"]),
];

fn netdev_sample(out: &mut Out, dev: &str, stat: &str, v: f64) {
    out.counter(
        &format!("node_network_{stat}_total"),
        &format!("Network device statistic {stat}."),
        &[("device", dev)],
        v,
    );
}

/// Per-interface counters from `/sys/class/net/*/statistics` (node_exporter's default netlink
/// source) or, with `--no-collector.netdev.netlink`, from `/proc/net/dev`.
pub fn netdev(n: &Node, out: &mut Out) -> Result<(), Error> {
    if !n.opts.netdev_netlink {
        return netdev_proc(n, out);
    }
    let dir = n.sys("class/net");
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
        path: dir.clone(),
        source,
    })?;
    let mut devs: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|d| netdev_wanted(n, d))
        .collect();
    devs.sort();
    for dev in &devs {
        let stats = dir.join(dev).join("statistics");
        // A device without statistics (none in sysfs) is skipped, as netlink skips a link
        // without them.
        if !stats.is_dir() {
            continue;
        }
        for (stat, files) in NETDEV {
            let v: Option<f64> = files
                .iter()
                .map(|f| attr(&stats.join(f)).and_then(|s| s.parse::<f64>().ok()))
                .sum();
            if let Some(v) = v {
                netdev_sample(out, dev, stat, v);
            }
        }
    }
    Ok(())
}

/// `/proc/net/dev`: two header lines, then `name: 8 receive and 8 transmit columns`.
fn netdev_proc(n: &Node, out: &mut Out) -> Result<(), Error> {
    const COLS: [&str; 16] = [
        "receive_bytes",
        "receive_packets",
        "receive_errs",
        "receive_drop",
        "receive_fifo",
        "receive_frame",
        "receive_compressed",
        "receive_multicast",
        "transmit_bytes",
        "transmit_packets",
        "transmit_errs",
        "transmit_drop",
        "transmit_fifo",
        "transmit_colls",
        "transmit_carrier",
        "transmit_compressed",
    ];
    let path = n.proc("net/dev");
    let s = read(&path)?;
    for line in s.lines().skip(2) {
        let Some((dev, rest)) = line.split_once(':') else {
            continue;
        };
        let dev = dev.trim();
        if !netdev_wanted(n, dev) {
            continue;
        }
        for (stat, v) in COLS.iter().zip(rest.split_whitespace()) {
            netdev_sample(out, dev, stat, parse_f64(&path, v)?);
        }
    }
    Ok(())
}

/// `/sys/class/net/<iface>/<file>` properties node_exporter reports as numbers, with the
/// metric suffix; flags and dev_id are written in hex by the kernel.
const NETCLASS: [(&str, &str); 13] = [
    ("addr_assign_type", "address_assign_type"),
    ("carrier", "carrier"),
    ("dev_id", "device_id"),
    ("dormant", "dormant"),
    ("flags", "flags"),
    ("ifindex", "iface_id"),
    ("iflink", "iface_link"),
    ("link_mode", "iface_link_mode"),
    ("mtu", "mtu_bytes"),
    ("name_assign_type", "name_assign_type"),
    ("netdev_group", "net_dev_group"),
    ("tx_queue_len", "transmit_queue_length"),
    ("type", "protocol_type"),
];

fn number(s: &str) -> Option<f64> {
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => s.parse().ok(),
    }
}

/// Per-interface properties from `/sys/class/net`.
pub fn netclass(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/net");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Error::NoData(format!("cannot list {}: {e}", dir.display())))?;
    let mut devs: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|d| !n.opts.netclass_ignored.is_match(d) && dir.join(d).is_dir())
        .collect();
    devs.sort();
    for dev in &devs {
        let d = dir.join(dev);
        let a = |f: &str| attr(&d.join(f));
        let labels = [("device", dev.as_str())];
        let operstate = a("operstate").unwrap_or_default();
        out.gauge(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            &labels,
            if operstate == "up" { 1.0 } else { 0.0 },
        );
        let (address, broadcast, duplex, ifalias) = (
            a("address").unwrap_or_default(),
            a("broadcast").unwrap_or_default(),
            a("duplex").unwrap_or_default(),
            a("ifalias").unwrap_or_default(),
        );
        out.gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            &[
                ("address", &address),
                ("broadcast", &broadcast),
                ("device", dev),
                ("duplex", &duplex),
                ("ifalias", &ifalias),
                ("operstate", &operstate),
            ],
            1.0,
        );
        for (file, suffix) in NETCLASS {
            if let Some(v) = a(file).as_deref().and_then(number) {
                out.gauge(
                    &format!("node_network_{suffix}"),
                    &format!("Network device property: {suffix}"),
                    &labels,
                    v,
                );
            }
        }
        for (file, suffix) in [
            ("carrier_changes", "carrier_changes_total"),
            ("carrier_up_count", "carrier_up_changes_total"),
            ("carrier_down_count", "carrier_down_changes_total"),
        ] {
            if let Some(v) = a(file).as_deref().and_then(number) {
                out.counter(
                    &format!("node_network_{suffix}"),
                    &format!("Network device property: {suffix}"),
                    &labels,
                    v,
                );
            }
        }
        if let Some(speed) = a("speed").as_deref().and_then(number) {
            // Megabits per second; -1 (unknown) is reported as-is unless asked to skip it.
            if speed >= 0.0 || !n.opts.netclass_ignore_invalid_speed {
                out.gauge(
                    "node_network_speed_bytes",
                    "Network device property: speed_bytes",
                    &labels,
                    speed * 1000.0 * 1000.0 / 8.0,
                );
            }
        }
    }
    Ok(())
}

/// `/proc/net/{netstat,snmp}` (pairs of header and value lines per protocol) and
/// `/proc/net/snmp6` (one `Name value` per line): the fields `--collector.netstat.fields`
/// selects, untyped.
pub fn netstat(n: &Node, out: &mut Out) -> Result<(), Error> {
    let mut emit = |proto: &str, key: &str, v: &str, path: &std::path::Path| -> Result<(), Error> {
        let field = format!("{proto}_{key}");
        if !n.opts.netstat_fields.is_match(&field) {
            return Ok(());
        }
        out.untyped(
            &format!("node_netstat_{field}"),
            &format!("Statistic {proto}{key}."),
            &[],
            parse_f64(path, v)?,
        );
        Ok(())
    };
    for file in ["net/netstat", "net/snmp"] {
        let path = n.proc(file);
        let s = read(&path)?;
        let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
        for pair in lines.chunks(2) {
            // A header line and a value line of the same protocol, with as many values as
            // names; anything else would put values under the wrong names.
            let bad = |what: String| Error::Parse {
                path: path.clone(),
                what,
            };
            let [names, values] = pair else {
                return Err(bad("a header line without its value line".into()));
            };
            let (Some((proto, names)), Some((vproto, values))) =
                (names.split_once(':'), values.split_once(':'))
            else {
                return Err(bad(format!("not a protocol line: {names:?}")));
            };
            if proto != vproto {
                return Err(bad(format!("{proto} header followed by {vproto} values")));
            }
            let names: Vec<&str> = names.split_whitespace().collect();
            let values: Vec<&str> = values.split_whitespace().collect();
            if names.len() != values.len() {
                return Err(bad(format!(
                    "{proto}: {} names, {} values",
                    names.len(),
                    values.len()
                )));
            }
            for (k, v) in names.into_iter().zip(values) {
                emit(proto, k, v, &path)?;
            }
        }
    }
    let path = n.proc("net/snmp6");
    match read_optional(&path) {
        Ok(s) => {
            for line in s.lines() {
                let mut f = line.split_whitespace();
                let (Some(k), Some(v)) = (f.next(), f.next()) else {
                    continue;
                };
                // `Udp6InDatagrams`: the protocol is everything up to its `6`.
                let Some(i) = k.find('6') else { continue };
                emit(&k[..=i], &k[i + 1..], v, &path)?;
            }
        }
        // IPv6 disabled: no snmp6, and nothing missing.
        Err(Error::NoData(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// `/proc/net/sockstat` and `sockstat6`: socket counts per protocol; `mem` (pages) also in
/// bytes.
pub fn sockstat(n: &Node, out: &mut Out) -> Result<(), Error> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    for (file, required) in [("net/sockstat", true), ("net/sockstat6", false)] {
        let path = n.proc(file);
        let s = match read_optional(&path) {
            Ok(s) => s,
            Err(Error::NoData(_)) if !required => continue,
            Err(e) => return Err(e),
        };
        for line in s.lines() {
            let Some((proto, rest)) = line.split_once(':') else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            for kv in f.chunks(2) {
                let [k, v] = kv else { continue };
                let v = parse_f64(&path, v)?;
                if proto == "sockets" {
                    if *k == "used" {
                        out.gauge(
                            "node_sockstat_sockets_used",
                            "Number of IPv4 sockets in use.",
                            &[],
                            v,
                        );
                    }
                    continue;
                }
                out.gauge(
                    &format!("node_sockstat_{proto}_{k}"),
                    &format!("Number of {proto} sockets in state {k}."),
                    &[],
                    v,
                );
                if *k == "mem" {
                    out.gauge(
                        &format!("node_sockstat_{proto}_mem_bytes"),
                        &format!("Number of {proto} sockets in state mem_bytes."),
                        &[],
                        v * page,
                    );
                }
            }
        }
    }
    Ok(())
}

/// `/proc/sys/net/netfilter/nf_conntrack_{count,max}` and the per-CPU statistics of
/// `/proc/net/stat/nf_conntrack`, summed.
pub fn conntrack(n: &Node, out: &mut Out) -> Result<(), Error> {
    for (file, name, help) in [
        (
            "sys/net/netfilter/nf_conntrack_count",
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
        ),
        (
            "sys/net/netfilter/nf_conntrack_max",
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
        ),
    ] {
        let path = n.proc(file);
        let s = read_optional(&path)?;
        out.gauge(name, help, &[], parse_f64(&path, &s)?);
    }
    let path = n.proc("net/stat/nf_conntrack");
    let Ok(s) = read_optional(&path) else {
        return Ok(());
    };
    const STATS: [(&str, &str); 8] = [
        ("found", "Number of searched entries which were successful."),
        (
            "invalid",
            "Number of packets seen which can not be tracked.",
        ),
        (
            "ignore",
            "Number of packets seen which are already connected to a conntrack entry.",
        ),
        ("insert", "Number of entries inserted into the list."),
        (
            "insert_failed",
            "Number of entries for which list insertion was attempted but failed.",
        ),
        (
            "drop",
            "Number of packets dropped due to conntrack failure.",
        ),
        (
            "early_drop",
            "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
        ),
        (
            "search_restart",
            "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
        ),
    ];
    let mut lines = s.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    let mut sums = [0.0f64; STATS.len()];
    for line in lines {
        for (col, v) in cols.iter().zip(line.split_whitespace()) {
            if let Some(i) = STATS.iter().position(|(k, _)| k == col) {
                sums[i] += super::parse_hex(&path, v)?;
            }
        }
    }
    for (i, (k, help)) in STATS.iter().enumerate() {
        out.gauge(&format!("node_nf_conntrack_stat_{k}"), help, &[], sums[i]);
    }
    Ok(())
}

/// `/proc/net/arp`: entries per device.
pub fn arp(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("net/arp");
    let s = read(&path)?;
    let mut per: std::collections::BTreeMap<&str, f64> = Default::default();
    for line in s.lines().skip(1) {
        if let Some(dev) = line.split_whitespace().nth(5) {
            *per.entry(dev).or_default() += 1.0;
        }
    }
    for (dev, count) in per {
        out.gauge(
            "node_arp_entries",
            "ARP entries by device",
            &[("device", dev)],
            count,
        );
    }
    Ok(())
}

/// `/proc/net/softnet_stat`: per CPU (by line), packets processed, dropped and the times
/// processing ran out of quota; the kernel writes them in hex.
pub fn softnet(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("net/softnet_stat");
    let s = read(&path)?;
    for (cpu, line) in s.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            return Err(Error::Parse {
                path,
                what: format!("a line with {} fields", f.len()),
            });
        }
        let hex = |v: &str| super::parse_hex(&path, v);
        let cpu = cpu.to_string();
        let labels = [("cpu", cpu.as_str())];
        out.counter(
            "node_softnet_processed_total",
            "Number of processed packets",
            &labels,
            hex(f[0])?,
        );
        out.counter(
            "node_softnet_dropped_total",
            "Number of dropped packets",
            &labels,
            hex(f[1])?,
        );
        out.counter(
            "node_softnet_times_squeezed_total",
            "Number of times processing packets ran out of quota",
            &labels,
            hex(f[2])?,
        );
    }
    Ok(())
}

/// `/proc/net/udp` and `udp6`: memory queued for UDP sockets, summed per direction.
pub fn udp_queues(n: &Node, out: &mut Out) -> Result<(), Error> {
    let mut any = false;
    for (file, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
        let path = n.proc(file);
        let s = match read_optional(&path) {
            Ok(s) => s,
            Err(Error::NoData(_)) => continue,
            Err(e) => return Err(e),
        };
        any = true;
        let (mut tx, mut rx) = (0.0, 0.0);
        for line in s.lines().skip(1) {
            let Some(q) = line.split_whitespace().nth(4) else {
                continue;
            };
            let Some((t, r)) = q.split_once(':') else {
                continue;
            };
            tx += super::parse_hex(&path, t)?;
            rx += super::parse_hex(&path, r)?;
        }
        let help = "Number of allocated memory in the kernel for UDP datagrams in bytes.";
        out.gauge("node_udp_queues", help, &[("ip", ip), ("queue", "rx")], rx);
        out.gauge("node_udp_queues", help, &[("ip", ip), ("queue", "tx")], tx);
    }
    if any {
        Ok(())
    } else {
        Err(Error::NoData("no /proc/net/udp or udp6".into()))
    }
}

/// Bonded interfaces: per master in `/sys/class/net/bonding_masters`, its slaves and how many
/// of them have MII status up (`<master>/lower_<slave>`, or `slave_<slave>` on older kernels).
pub fn bonding(n: &Node, out: &mut Out) -> Result<(), Error> {
    let net = n.sys("class/net");
    let masters = read_optional(&net.join("bonding_masters"))?;
    for master in masters.split_whitespace() {
        let slaves = read_optional(&net.join(master).join("bonding/slaves"))?;
        let (mut total, mut active) = (0.0, 0.0);
        for slave in slaves.split_whitespace() {
            let lower = net
                .join(master)
                .join(format!("lower_{slave}/bonding_slave/mii_status"));
            let state = match read_optional(&lower) {
                Err(Error::NoData(_)) => read_optional(
                    &net.join(master)
                        .join(format!("slave_{slave}/bonding_slave/mii_status")),
                )?,
                r => r?,
            };
            total += 1.0;
            if state.trim() == "up" {
                active += 1.0;
            }
        }
        let labels = [("master", master)];
        out.gauge(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
            &labels,
            total,
        );
        out.gauge(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
            &labels,
            active,
        );
    }
    Ok(())
}
