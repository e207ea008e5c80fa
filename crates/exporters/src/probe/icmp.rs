//! The `icmp` prober: one echo request, the reply's round trip and (IPv4 raw sockets) its TTL.
//! As the blackbox exporter on Linux it first tries an unprivileged ping socket (allowed by
//! `net.ipv4.ping_group_range`), then a raw socket (root or `CAP_NET_RAW`); when neither may be
//! opened the probe fails and says so.

use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::config::IpPreference;
use super::{Outcome, resolve};

#[derive(Debug, Clone)]
pub struct IcmpOptions {
    pub ip: IpPreference,
    pub payload_size: usize,
    pub ttl: Option<u32>,
}

pub const KEYS: [&str; 4] = [
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "payload_size",
    "ttl",
];
pub const UNSUPPORTED: [&str; 2] = ["source_ip_address", "dont_fragment"];

impl IcmpOptions {
    pub fn from_json(v: &Value, ip: IpPreference) -> Result<IcmpOptions, String> {
        let ttl = match &v["ttl"] {
            Value::Null => None,
            t => match t.as_u64() {
                Some(n @ 1..=255) => Some(n as u32),
                _ => return Err(format!("icmp.ttl: {t} is not between 1 and 255")),
            },
        };
        Ok(IcmpOptions {
            ip,
            payload_size: v["payload_size"].as_u64().unwrap_or(0) as usize,
            ttl,
        })
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum (the kernel fills ICMPv6's), id, sequence, payload.
fn echo(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Open the socket the way the exporter does: unprivileged first, then raw.
fn open(v6: bool, out: &mut Outcome) -> Result<(Socket, bool), String> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => return Ok((s, false)),
        Err(e) => out.log(format!(
            "Unable to do unprivileged listen on socket, will attempt privileged: {e}"
        )),
    }
    Socket::new(domain, Type::from(libc::SOCK_RAW), Some(proto))
        .map(|s| (s, true))
        .map_err(|e| {
            format!("Error listening to socket: {e} (ICMP needs root, CAP_NET_RAW, or this group in net.ipv4.ping_group_range)")
        })
}

/// Send one echo and wait for its reply: (round trip, reply TTL when the raw IPv4 header
/// shows it).
fn ping(
    addr: IpAddr,
    o: &IcmpOptions,
    deadline: Instant,
    out: &mut Outcome,
) -> Result<(Duration, Option<u8>), String> {
    let t = Instant::now();
    let v6 = addr.is_ipv6();
    let (sock, raw) = open(v6, out)?;
    if let Some(ttl) = o.ttl {
        let r = if v6 {
            sock.set_unicast_hops_v6(ttl)
        } else {
            sock.set_ttl_v4(ttl)
        };
        r.map_err(|e| format!("setting the TTL: {e}"))?;
    }
    out.add(
        "probe_icmp_duration_seconds",
        "phase=\"setup\"",
        t.elapsed().as_secs_f64(),
    );
    let id = (std::process::id() & 0xffff) as u16;
    let seq = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_micros()
        & 0xffff) as u16;
    let payload: Vec<u8> = if o.payload_size > 0 {
        (0..o.payload_size).map(|i| (i % 256) as u8).collect()
    } else {
        b"Prometheus Blackbox Exporter".to_vec()
    };
    let packet = echo(v6, id, seq, &payload);
    let to = SockAddr::from(SocketAddr::new(addr, 0));
    let sent = Instant::now();
    sock.send_to(&packet, &to)
        .map_err(|e| format!("Error writing to socket: {e}"))?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("Timeout reading from socket".into());
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("Timeout reading from socket".into());
            }
            Err(e) => return Err(format!("Error reading from socket: {e}")),
        };
        // SAFETY: recv_from initialised the first n bytes.
        let data: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        if from.as_socket().map(|s| s.ip()) != Some(addr) {
            continue;
        }
        // Raw IPv4 sockets hand over the IP header too.
        let (icmp, ttl) = if raw && !v6 {
            let ihl = (*data.first().unwrap_or(&0x45) & 0x0f) as usize * 4;
            (
                data.get(ihl..).unwrap_or(&[]).to_vec(),
                data.get(8).copied(),
            )
        } else {
            (data, None)
        };
        let reply_type = if v6 { 129 } else { 0 };
        if icmp.len() < 8 || icmp[0] != reply_type {
            continue;
        }
        let rseq = u16::from_be_bytes([icmp[6], icmp[7]]);
        let rid = u16::from_be_bytes([icmp[4], icmp[5]]);
        // Unprivileged sockets get their id rewritten by the kernel; the sequence still matches.
        if rseq != seq || (raw && rid != id) || icmp[8..] != payload[..] {
            continue;
        }
        return Ok((sent.elapsed(), ttl));
    }
}

pub(super) async fn probe_icmp(
    o: &IcmpOptions,
    target: &str,
    deadline: Instant,
    out: &mut Outcome,
) -> bool {
    for p in ["resolve", "setup", "rtt"] {
        out.set(
            "probe_icmp_duration_seconds",
            &format!("phase=\"{p}\""),
            0.0,
        );
    }
    let t = Instant::now();
    let Some(addr) = resolve(out, target.trim_matches(|c| c == '[' || c == ']'), 0, &o.ip).await
    else {
        return false;
    };
    out.add(
        "probe_icmp_duration_seconds",
        "phase=\"resolve\"",
        t.elapsed().as_secs_f64(),
    );
    let opts = o.clone();
    let mut sub = Outcome::default();
    let res = tokio::task::spawn_blocking(move || {
        let r = ping(addr.ip(), &opts, deadline, &mut sub);
        (r, sub)
    })
    .await;
    let (r, sub) = match res {
        Ok(x) => x,
        Err(e) => {
            out.log(format!("ICMP probe task failed: {e}"));
            return false;
        }
    };
    for (n, l, v) in sub.metrics {
        out.add(&n, &l, v);
    }
    out.log.extend(sub.log);
    match r {
        Ok((rtt, ttl)) => {
            out.add(
                "probe_icmp_duration_seconds",
                "phase=\"rtt\"",
                rtt.as_secs_f64(),
            );
            if let Some(ttl) = ttl {
                out.set("probe_icmp_reply_hop_limit", "", ttl as f64);
            }
            out.log("Found matching reply packet");
            true
        }
        Err(e) => {
            out.log(e);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo(false, 0x1234, 7, b"Prometheus Blackbox Exporter");
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&p), 0);
        assert_eq!(echo(true, 1, 1, b"x")[0], 128);
    }
}
