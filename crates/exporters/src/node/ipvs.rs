//! The `ipvs` collector: IP Virtual Server statistics (what kube-proxy's IPVS mode programs)
//! from `/proc/net/ip_vs_stats` and `/proc/net/ip_vs`, as node_exporter 1.5 reads them
//! through procfs 0.8: the same families, labels, sums and checks.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::out::Out;
use super::{Error, Node, read_optional};

/// `--collector.ipvs.backend-labels`' names, in the order node_exporter keeps them.
pub const BACKEND_LABELS: [&str; 6] = [
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
];

/// The flag's value as node_exporter reads it: comma-separated names, empty ones ignored,
/// kept in [`BACKEND_LABELS`]' order; an unknown name is refused.
pub fn backend_labels(flag: &str) -> Result<Vec<&'static str>, String> {
    let asked: Vec<&str> = flag.split(',').filter(|s| !s.is_empty()).collect();
    let mut unknown: Vec<&str> = asked
        .iter()
        .copied()
        .filter(|a| !BACKEND_LABELS.contains(a))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        return Err(format!(
            "unknown IPVS backend labels: {:?}",
            unknown.join(", ")
        ));
    }
    Ok(BACKEND_LABELS
        .iter()
        .copied()
        .filter(|l| asked.contains(l))
        .collect())
}

/// Hex digits only (Rust's parsers would also take a leading `+`, Go's do not).
fn hex(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

/// `ip_vs_stats`' totals: connections, packets in and out, bytes in and out (hex).
fn parse_stats(text: &str) -> Result<[u64; 5], String> {
    let lines: Vec<&str> = text.splitn(4, '\n').collect();
    if lines.len() != 4 {
        return Err("ip_vs_stats corrupt: too short".into());
    }
    let f: Vec<&str> = lines[2].split_whitespace().collect();
    if f.len() != 5 {
        return Err("ip_vs_stats corrupt: unexpected number of fields".into());
    }
    let mut out = [0u64; 5];
    for (o, x) in out.iter_mut().zip(&f) {
        *o = hex(x).ok_or_else(|| format!("parsing {x:?}: invalid syntax"))?;
    }
    Ok(out)
}

/// An address as the kernel writes it: 8 hex digits and a 4-digit hex port (IPv4), or a
/// bracketed full IPv6 address and the port (46 characters); anything else is refused, as
/// procfs refuses it.
fn ip_port(s: &str) -> Result<(IpAddr, u16), String> {
    let bad = || format!("unexpected IP:Port: {s}");
    let ip = match s.len() {
        13 => {
            let v = hex(s.get(..8).ok_or_else(bad)?).ok_or_else(bad)?;
            IpAddr::V4(Ipv4Addr::from(v as u32))
        }
        46 => {
            let inner = s.get(1..40).ok_or_else(bad)?;
            let v6: Ipv6Addr = inner
                .parse()
                .map_err(|_| format!("invalid IPv6 address: {inner}"))?;
            IpAddr::V6(v6)
        }
        _ => return Err(bad()),
    };
    let port = s.get(s.len() - 4..).ok_or_else(bad)?;
    let port = hex(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("parsing {port:?}: invalid syntax"))?;
    Ok((ip, port))
}

/// An address as Go prints a `net.IP`: IPv4-mapped IPv6 addresses as IPv4.
fn show(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// One real server line: its virtual service's and its own labels, weight, active and
/// inactive connections.
struct Backend {
    labels: [String; 6],
    weight: u64,
    active: u64,
    inactive: u64,
}

fn parse_backends(text: &str) -> Result<Vec<Backend>, String> {
    let mut out = Vec::new();
    // The virtual service the lines below belong to: protocol, mark, address, port.
    let (mut proto, mut mark, mut local, mut local_port) =
        (String::new(), String::new(), String::new(), 0u16);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // procfs reads a second field of every line that is not a header; node_exporter
        // crashes on a one-field line, vigil skips it.
        if f.len() < 2 || f[0] == "IP" || f[0] == "Prot" || f[1] == "RemoteAddress:Port" {
            continue;
        }
        match f[0] {
            "TCP" | "UDP" => {
                let (ip, port) = ip_port(f[1])?;
                (proto, mark, local, local_port) = (f[0].into(), String::new(), show(&ip), port);
            }
            "FWM" => {
                (proto, mark, local, local_port) = (f[0].into(), f[1].into(), String::new(), 0);
            }
            "->" if f.len() >= 6 => {
                let (ip, port) = ip_port(f[1])?;
                let num = |x: &str| x.parse::<u64>().map_err(|e| format!("parsing {x:?}: {e}"));
                out.push(Backend {
                    labels: [
                        local.clone(),
                        local_port.to_string(),
                        show(&ip),
                        port.to_string(),
                        proto.clone(),
                        mark.clone(),
                    ],
                    weight: num(f[3])?,
                    active: num(f[4])?,
                    inactive: num(f[5])?,
                });
            }
            // Other protocols (SCTP) and short real-server lines are not read: their real
            // servers count under the virtual service before them, as in procfs.
            _ => {}
        }
    }
    Ok(out)
}

/// `/proc/net/ip_vs_stats` and `/proc/net/ip_vs`; a node without the first (no IPVS module)
/// has no data. The totals are written before the real servers are read, so a failure there
/// keeps them, as node_exporter's does.
pub fn ipvs(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("net/ip_vs_stats");
    let text = read_optional(&path)?;
    let stats = parse_stats(&text).map_err(|what| Error::Parse {
        path: path.clone(),
        what: format!("could not get IPVS stats: {what}"),
    })?;
    for (name, help, v) in [
        (
            "node_ipvs_connections_total",
            "The total number of connections made.",
            stats[0],
        ),
        (
            "node_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
            stats[1],
        ),
        (
            "node_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
            stats[2],
        ),
        (
            "node_ipvs_incoming_bytes_total",
            "The total amount of incoming data.",
            stats[3],
        ),
        (
            "node_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data.",
            stats[4],
        ),
    ] {
        out.counter(name, help, &[], v as f64);
    }
    let path = n.proc("net/ip_vs");
    let text = super::read_bounded(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let backends = parse_backends(&text).map_err(|what| Error::Parse {
        path: path.clone(),
        what: format!("could not get backend status: {what}"),
    })?;
    // Real servers with equal values of the chosen labels are summed.
    let chosen: Vec<usize> = n
        .opts
        .ipvs_backend_labels
        .iter()
        .filter_map(|l| BACKEND_LABELS.iter().position(|b| b == l))
        .collect();
    let mut sums: BTreeMap<Vec<&str>, [u64; 3]> = BTreeMap::new();
    for b in &backends {
        let key: Vec<&str> = chosen.iter().map(|&i| b.labels[i].as_str()).collect();
        let s = sums.entry(key).or_default();
        s[0] += b.active;
        s[1] += b.inactive;
        s[2] += b.weight;
    }
    for (values, s) in &sums {
        let labels: Vec<(&str, &str)> = chosen
            .iter()
            .zip(values)
            .map(|(&i, v)| (BACKEND_LABELS[i], *v))
            .collect();
        for (name, help, v) in [
            (
                "node_ipvs_backend_connections_active",
                "The current active connections by local and remote address.",
                s[0],
            ),
            (
                "node_ipvs_backend_connections_inactive",
                "The current inactive connections by local and remote address.",
                s[1],
            ),
            (
                "node_ipvs_backend_weight",
                "The current backend weight by local and remote address.",
                s[2],
            ),
        ] {
            out.gauge(name, help, &labels, v as f64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_lines_are_read_as_procfs_reads_them() {
        let (ip, port) = ip_port("C0A80016:0CEA").unwrap();
        assert_eq!((show(&ip), port), ("192.168.0.22".to_string(), 3306));
        let (ip, port) = ip_port("[2620:0000:0000:0000:0000:0000:0000:0001]:0035").unwrap();
        assert_eq!((show(&ip), port), ("2620::1".to_string(), 53));
        let (ip, _) = ip_port("[0000:0000:0000:0000:0000:ffff:0a00:0001]:0035").unwrap();
        assert_eq!(show(&ip), "10.0.0.1");
        for bad in [
            "C0A80016",
            "C0A800:0CEA",
            "C0A8321A:10000",
            "[2620::1]:0035",
            "ZZA80016:0CEA",
            "+0A80016:0CEA",
            "C0A80016:+CEA",
        ] {
            assert!(ip_port(bad).is_err(), "{bad}");
        }
        let text = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  C0A80016:0CEA wlc\n  -> C0A85216:0CEA      Tunnel  100    248        2\n  -> C0A85216:0CEA Tunnel 1 2\nSCTP C0A80017:0CEA wlc\n  -> C0A85217:0CEA      Tunnel  7    8        9\nFWM  10001000 wlc\n  -> C0A8321A:0CEA      Route   0      0          1\nX\n";
        let b = parse_backends(text).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[0].labels,
            ["192.168.0.22", "3306", "192.168.82.22", "3306", "TCP", ""]
        );
        // The SCTP service's real server counts under the TCP service before it.
        assert_eq!((b[1].labels[0].as_str(), b[1].weight), ("192.168.0.22", 7));
        assert_eq!(
            b[2].labels,
            ["", "0", "192.168.50.26", "3306", "FWM", "10001000"]
        );
        assert!(parse_backends("  -> C0A8321A:0CEA Route x 2 3\n").is_err());
        assert!(parse_stats("a\nb\n").is_err());
        assert!(parse_stats("h\nh\n 1 2 3 4\n\n").is_err());
        assert!(parse_stats("h\nh\n 1 2 3 4 G\n\n").is_err());
        assert_eq!(
            parse_stats("h\nh\n 10 2 3 4 FF\n\n").unwrap(),
            [16, 2, 3, 4, 255]
        );
    }

    #[test]
    fn backend_labels_flag() {
        assert_eq!(
            backend_labels("proto,,local_address").unwrap(),
            ["local_address", "proto"]
        );
        assert_eq!(backend_labels("").unwrap(), Vec::<&str>::new());
        assert_eq!(
            backend_labels("x,proto,a").unwrap_err(),
            r#"unknown IPVS backend labels: "a, x""#
        );
    }
}
