//! The `icmp` prober: one echo request, the reply's round trip and (IPv4 raw sockets) its TTL.
//! As the blackbox exporter on Linux it first tries an unprivileged ping socket (allowed by
//! `net.ipv4.ping_group_range`), then a raw socket (root or `CAP_NET_RAW`); when neither may be
//! opened the probe fails and says so.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::options::IpPreference;
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

/// Ask for the TTL (IPv4) or hop limit (IPv6) of received packets as control messages.
fn request_hop_limit(sock: &Socket, v6: bool) {
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVTTL)
    };
    let on: libc::c_int = 1;
    // SAFETY: a plain setsockopt with a valid fd and an int option value of the right size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// One datagram with its sender and, when the kernel attached it, its TTL / hop limit.
fn recv_with_hop_limit(
    fd: RawFd,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<IpAddr>, Option<u8>)> {
    // SAFETY: every pointer handed to recvmsg points into a live local buffer of the length
    // given; the control messages are walked with the libc macros within msg_controllen.
    unsafe {
        let mut from: libc::sockaddr_storage = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut from as *mut libc::sockaddr_storage as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut hop = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            if (level == libc::IPPROTO_IP && ty == libc::IP_TTL)
                || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_HOPLIMIT)
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                hop = Some(v as u8);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let addr = match from.ss_family as libc::c_int {
            libc::AF_INET => {
                let a = &*(&from as *const libc::sockaddr_storage as *const libc::sockaddr_in);
                Some(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 => {
                let a = &*(&from as *const libc::sockaddr_storage as *const libc::sockaddr_in6);
                Some(IpAddr::from(a.sin6_addr.s6_addr))
            }
            _ => None,
        };
        Ok((n as usize, addr, hop))
    }
}

/// Send one echo and wait (without holding a thread) for its reply: the round trip, and the
/// reply's TTL / hop limit.
async fn ping(
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
    request_hop_limit(&sock, v6);
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
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
    // SAFETY: the AsyncFd owns the socket, whose fd stays open and unchanged until it drops.
    let afd = unsafe { tokio::io::unix::AsyncFd::register(sock) }.map_err(|e| e.to_string())?;
    let sent = Instant::now();
    afd.get_ref()
        .send_to(&packet, &to)
        .map_err(|e| format!("Error writing to socket: {e}"))?;
    let mut buf = [0u8; 1500];
    loop {
        let ready = tokio::time::timeout_at(deadline.into(), afd.readable()).await;
        let Ok(Ok(mut guard)) = ready else {
            return Err("Timeout reading from socket".into());
        };
        let (n, from, hop) =
            match guard.try_io(|s| recv_with_hop_limit(s.get_ref().as_raw_fd(), &mut buf)) {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(format!("Error reading from socket: {e}")),
                Err(_would_block) => continue,
            };
        if from != Some(addr) {
            continue;
        }
        // Raw IPv4 sockets hand over the IP header too (its TTL byte is the reply's TTL).
        let (icmp, header_ttl) = if raw && !v6 {
            let ihl = (*buf.first().unwrap_or(&0x45) & 0x0f) as usize * 4;
            (buf.get(ihl..n).unwrap_or(&[]), buf.get(8).copied())
        } else {
            (&buf[..n], None)
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
        return Ok((sent.elapsed(), hop.or(header_ttl)));
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
    // A little before the probe's own limit, so the failure is this prober's, with its log.
    let deadline = deadline
        .checked_sub(Duration::from_millis(20))
        .unwrap_or(deadline);
    match ping(addr.ip(), o, deadline, out).await {
        Ok((rtt, hop)) => {
            out.add(
                "probe_icmp_duration_seconds",
                "phase=\"rtt\"",
                rtt.as_secs_f64(),
            );
            if let Some(hop) = hop {
                out.set("probe_icmp_reply_hop_limit", "", hop as f64);
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
