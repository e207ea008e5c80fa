//! The `dns` prober: one query over UDP or TCP to the target server, then the rcode and the
//! answer, authority and additional sections checked as the blackbox exporter does. Records are
//! matched in the text form of Go's `miekg/dns` (`name.<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata`), so
//! a module's regular expressions mean the same here.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::options::IpPreference;
use super::{Outcome, resolve};

const TYPES: [(&str, u16); 14] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("DS", 43),
    ("DNSKEY", 48),
    ("HTTPS", 65),
    ("ANY", 255),
    ("CAA", 257),
];

const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

/// Regular expressions over one section's records.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub fail_if_matches: Vec<regex::Regex>,
    pub fail_if_all_match: Vec<regex::Regex>,
    pub fail_if_not_matches: Vec<regex::Regex>,
    pub fail_if_none_matches: Vec<regex::Regex>,
}

#[derive(Debug, Clone)]
pub struct DnsOptions {
    pub ip: IpPreference,
    pub tcp: bool,
    pub query_name: String,
    pub query_type: u16,
    pub recursion_desired: bool,
    pub valid_rcodes: Vec<String>,
    pub answer: Validation,
    pub authority: Validation,
    pub additional: Validation,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions {
            ip: IpPreference::default(),
            tcp: false,
            query_name: String::new(),
            query_type: 255,
            recursion_desired: true,
            valid_rcodes: vec!["NOERROR".into()],
            answer: Validation::default(),
            authority: Validation::default(),
            additional: Validation::default(),
        }
    }
}

fn regexes(v: &Value, key: &str) -> Result<Vec<regex::Regex>, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let r = r.as_str().ok_or_else(|| format!("{key}: not a string"))?;
            regex::Regex::new(r).map_err(|e| format!("{key}: regexp {r:?}: {e}"))
        })
        .collect()
}

fn validation(v: &Value, key: &str) -> Result<Validation, String> {
    for k in v.as_object().into_iter().flatten().map(|(k, _)| k) {
        if ![
            "fail_if_matches_regexp",
            "fail_if_all_match_regexp",
            "fail_if_not_matches_regexp",
            "fail_if_none_matches_regexp",
        ]
        .contains(&k.as_str())
        {
            return Err(format!("dns.{key}: unknown field {k:?}"));
        }
    }
    Ok(Validation {
        fail_if_matches: regexes(&v["fail_if_matches_regexp"], key)?,
        fail_if_all_match: regexes(&v["fail_if_all_match_regexp"], key)?,
        fail_if_not_matches: regexes(&v["fail_if_not_matches_regexp"], key)?,
        fail_if_none_matches: regexes(&v["fail_if_none_matches_regexp"], key)?,
    })
}

impl DnsOptions {
    /// The `dns` section; `query_name` is required when the prober is `dns`.
    pub fn from_json(v: &Value, ip: IpPreference, required: bool) -> Result<DnsOptions, String> {
        let mut o = DnsOptions {
            ip,
            ..Default::default()
        };
        if v.is_null() && !required {
            return Ok(o);
        }
        o.query_name = v["query_name"].as_str().unwrap_or("").to_string();
        if required && o.query_name.is_empty() {
            return Err("dns: query_name is required".into());
        }
        if let Some(t) = v["query_type"].as_str().filter(|t| !t.is_empty()) {
            o.query_type = TYPES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(t))
                .map(|(_, c)| *c)
                .ok_or_else(|| format!("dns.query_type: {t:?} is not a query type vigil knows"))?;
        }
        match v["transport_protocol"].as_str().unwrap_or("udp") {
            "udp" | "" => {}
            "tcp" => o.tcp = true,
            other => {
                return Err(format!(
                    "dns.transport_protocol: {other:?} is not udp or tcp"
                ));
            }
        }
        if let Some(c) = v["query_class"].as_str()
            && !c.eq_ignore_ascii_case("IN")
        {
            return Err(format!("dns.query_class: only IN is supported, not {c:?}"));
        }
        o.recursion_desired = v["recursion_desired"].as_bool().unwrap_or(true);
        if let Some(rs) = v["valid_rcodes"].as_array() {
            o.valid_rcodes = rs
                .iter()
                .map(|r| {
                    let r = r.as_str().unwrap_or("");
                    RCODES
                        .contains(&r)
                        .then(|| r.to_string())
                        .ok_or_else(|| format!("dns.valid_rcodes: {r:?} is not an rcode"))
                })
                .collect::<Result<_, _>>()?;
        }
        o.answer = validation(&v["validate_answer_rrs"], "validate_answer_rrs")?;
        o.authority = validation(&v["validate_authority_rrs"], "validate_authority_rrs")?;
        o.additional = validation(&v["validate_additional_rrs"], "validate_additional_rrs")?;
        Ok(o)
    }
}

/// The keys of the `dns` section vigil implements, and those it knows but does not.
pub const KEYS: [&str; 11] = [
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "transport_protocol",
    "query_class",
    "query_name",
    "query_type",
    "recursion_desired",
    "valid_rcodes",
    "validate_answer_rrs",
    "validate_authority_rrs",
    "validate_additional_rrs",
];
pub const UNSUPPORTED: [&str; 3] = ["dns_over_tls", "tls_config", "source_ip_address"];

// ---- wire format ----

fn query(id: u16, name: &str, qtype: u16, rd: bool) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&(if rd { 0x0100u16 } else { 0 }).to_be_bytes());
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    q
}

/// A (possibly compressed) name at `pos`: its text with a final `.`, and the position after it.
/// A name longer than DNS allows (255 octets on the wire, as Go's resolver refuses) is
/// malformed: compression pointers could otherwise make each of thousands of records a name
/// of kilobytes from a few bytes.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut end = None;
    let mut wire = 0usize;
    for _ in 0..128 {
        let len = *msg.get(pos)? as usize;
        if len & 0xc0 == 0xc0 {
            let ptr = ((len & 0x3f) << 8) | *msg.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            pos = ptr;
            continue;
        }
        if len == 0 {
            if out.is_empty() {
                out.push('.');
            }
            return Some((out, end.unwrap_or(pos + 1)));
        }
        let label = msg.get(pos + 1..pos + 1 + len)?;
        wire += 1 + len;
        if wire > 255 {
            return None;
        }
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b' ' | b'@' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
        pos += 1 + len;
    }
    None
}

fn type_name(t: u16) -> String {
    TYPES
        .iter()
        .find(|(_, c)| *c == t)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("TYPE{t}"))
}

/// `<character-string>`s as miekg/dns quotes them.
fn strings(mut d: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while let Some((&l, rest)) = d.split_first() {
        let s = rest.get(..l as usize)?;
        let mut t = String::from("\"");
        for &b in s {
            match b {
                b'"' | b'\\' => {
                    t.push('\\');
                    t.push(b as char);
                }
                0x20..=0x7e => t.push(b as char),
                _ => t.push_str(&format!("\\{b:03}")),
            }
        }
        t.push('"');
        parts.push(t);
        d = &rest[l as usize..];
    }
    Some(parts.join(" "))
}

/// One resource record in miekg/dns's text form, and (for SOA) its serial; the position after.
fn read_rr(msg: &[u8], pos: usize) -> Option<(String, Option<u32>, usize)> {
    let (name, p) = read_name(msg, pos)?;
    let f = msg.get(p..p + 10)?;
    let rtype = u16::from_be_bytes([f[0], f[1]]);
    let class = u16::from_be_bytes([f[2], f[3]]);
    let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
    let len = u16::from_be_bytes([f[8], f[9]]) as usize;
    let start = p + 10;
    let rd = msg.get(start..start + len)?;
    let mut serial = None;
    let class_s = if class == 1 {
        "IN".to_string()
    } else {
        format!("CLASS{class}")
    };
    let u16_at =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*rd.get(i)?, *rd.get(i + 1)?])) };
    let data = match rtype {
        1 if len == 4 => format!("{}.{}.{}.{}", rd[0], rd[1], rd[2], rd[3]),
        28 if len == 16 => {
            let b: [u8; 16] = rd.try_into().ok()?;
            std::net::Ipv6Addr::from(b).to_string()
        }
        2 | 5 | 12 => read_name(msg, start)?.0,
        15 => format!("{} {}", u16_at(0)?, read_name(msg, start + 2)?.0),
        16 => strings(rd)?,
        33 => format!(
            "{} {} {} {}",
            u16_at(0)?,
            u16_at(2)?,
            u16_at(4)?,
            read_name(msg, start + 6)?.0
        ),
        6 => {
            let (mname, q) = read_name(msg, start)?;
            let (rname, q) = read_name(msg, q)?;
            let n = |i: usize| -> Option<u32> {
                let b = msg.get(q + 4 * i..q + 4 * i + 4)?;
                Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            serial = n(0);
            format!(
                "{mname} {rname} {} {} {} {} {}",
                n(0)?,
                n(1)?,
                n(2)?,
                n(3)?,
                n(4)?
            )
        }
        // RFC 3597's generic form, as miekg/dns prints types it does not know.
        _ => format!(
            "\\# {len} {}",
            rd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    };
    let text = format!("{name}\t{ttl}\t{class_s}\t{}\t{data}", type_name(rtype));
    Some((text, serial, start + len))
}

/// A parsed response: rcode, and the three sections' records as text (plus the first SOA
/// serial of the answer).
struct Response {
    rcode: u16,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    soa_serial: Option<u32>,
}

fn parse(msg: &[u8], id: u16) -> Result<Response, String> {
    if msg.len() < 12 {
        return Err("short DNS message".into());
    }
    if u16::from_be_bytes([msg[0], msg[1]]) != id {
        return Err("DNS response with another id".into());
    }
    let n = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    let (qd, an, ns, ar) = (n(4), n(6), n(8), n(10));
    let rcode = u16::from_be_bytes([msg[2], msg[3]]) & 0x0f;
    let mut pos = 12;
    for _ in 0..qd {
        let (_, p) = read_name(msg, pos).ok_or("bad question")?;
        pos = p + 4;
    }
    let mut sections = [Vec::new(), Vec::new(), Vec::new()];
    let mut soa_serial = None;
    for (i, count) in [an, ns, ar].into_iter().enumerate() {
        for _ in 0..count {
            let (text, serial, p) = read_rr(msg, pos).ok_or("bad resource record")?;
            if i == 0 && soa_serial.is_none() {
                soa_serial = serial;
            }
            // The EDNS OPT pseudo-record is not a record of the additional section.
            if !text.contains("\tTYPE41\t") {
                sections[i].push(text);
            }
            pos = p;
        }
    }
    let [answer, authority, additional] = sections;
    Ok(Response {
        rcode,
        answer,
        authority,
        additional,
        soa_serial,
    })
}

/// The exporter's checks, with its semantics: record by record, a `fail_if_matches` or
/// `fail_if_not_matches` hit fails at once; after all records, `fail_if_all_match_regexp` fails
/// unless every record matched every one of them, and `fail_if_none_matches_regexp` fails
/// unless some record matched one of them (even when the section is empty).
fn validate(rrs: &[String], v: &Validation, out: &mut Outcome) -> bool {
    // A match that is required cannot happen in an empty section.
    if rrs.is_empty() && !v.fail_if_not_matches.is_empty() {
        out.log("fail_if_not_matches_regexp specified but no RRs returned");
        return false;
    }
    if rrs.is_empty() && !v.fail_if_none_matches.is_empty() {
        out.log("fail_if_none_matches_regexp specified but no RRs returned");
        return false;
    }
    let (mut all_match, mut any_match) = (true, false);
    for rr in rrs {
        if let Some(re) = v.fail_if_matches.iter().find(|re| re.is_match(rr)) {
            out.log(format!(
                "At least one RR matched regexp {:?}: {rr}",
                re.as_str()
            ));
            return false;
        }
        if v.fail_if_all_match.iter().any(|re| !re.is_match(rr)) {
            all_match = false;
        }
        if let Some(re) = v.fail_if_not_matches.iter().find(|re| !re.is_match(rr)) {
            out.log(format!(
                "At least one RR did not match regexp {:?}: {rr}",
                re.as_str()
            ));
            return false;
        }
        if v.fail_if_none_matches.iter().any(|re| re.is_match(rr)) {
            any_match = true;
        }
    }
    if !v.fail_if_all_match.is_empty() && !all_match {
        out.log("Not all RRs matched regexp");
        return false;
    }
    if !v.fail_if_none_matches.is_empty() && !any_match {
        out.log("None of the RRs did matched any regexp");
        return false;
    }
    true
}

fn phase(out: &mut Outcome, name: &str, secs: f64) {
    out.add(
        "probe_dns_duration_seconds",
        &format!("phase=\"{name}\""),
        secs,
    );
}

async fn exchange(
    addr: std::net::SocketAddr,
    tcp: bool,
    q: &[u8],
    out: &mut Outcome,
) -> Result<Vec<u8>, String> {
    let t = Instant::now();
    if tcp {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        phase(out, "connect", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(q);
        s.write_all(&framed).await.map_err(|e| e.to_string())?;
        let len = s.read_u16().await.map_err(|e| e.to_string())? as usize;
        let mut buf = vec![0; len];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        phase(out, "request", t.elapsed().as_secs_f64());
        Ok(buf)
    } else {
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let s = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| e.to_string())?;
        s.connect(addr).await.map_err(|e| e.to_string())?;
        phase(out, "connect", t.elapsed().as_secs_f64());
        let t = Instant::now();
        s.send(q).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0; 65535];
        let n = s.recv(&mut buf).await.map_err(|e| e.to_string())?;
        buf.truncate(n);
        phase(out, "request", t.elapsed().as_secs_f64());
        Ok(buf)
    }
}

pub(super) async fn probe_dns(o: &DnsOptions, target: &str, out: &mut Outcome) -> bool {
    for p in ["resolve", "connect", "request"] {
        phase(out, p, 0.0);
    }
    for n in [
        "probe_dns_answer_rrs",
        "probe_dns_authority_rrs",
        "probe_dns_additional_rrs",
        "probe_dns_query_succeeded",
    ] {
        out.set(n, "", 0.0);
    }
    // `host`, `host:port` or `[v6]:port`; port 53 by default.
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
            Ok(p) => (h.trim_matches(|c| c == '[' || c == ']'), p),
            Err(_) => {
                out.log(format!("Error parsing port {p:?}"));
                return false;
            }
        },
        _ => (target.trim_matches(|c| c == '[' || c == ']'), 53),
    };
    let t = Instant::now();
    let Some(addr) = resolve(out, host, port, &o.ip).await else {
        return false;
    };
    phase(out, "resolve", t.elapsed().as_secs_f64());
    let id: u16 = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_nanos()
        & 0xffff) as u16;
    let q = query(id, &o.query_name, o.query_type, o.recursion_desired);
    out.log(format!(
        "Making DNS query: target={addr} qname={} qtype={}",
        o.query_name,
        type_name(o.query_type)
    ));
    let msg = match exchange(addr, o.tcp, &q, out).await {
        Ok(m) => m,
        Err(e) => {
            out.log(format!("Error while sending a DNS query: {e}"));
            return false;
        }
    };
    let r = match parse(&msg, id) {
        Ok(r) => r,
        Err(e) => {
            out.log(format!("Error while sending a DNS query: {e}"));
            return false;
        }
    };
    out.set("probe_dns_answer_rrs", "", r.answer.len() as f64);
    out.set("probe_dns_authority_rrs", "", r.authority.len() as f64);
    out.set("probe_dns_additional_rrs", "", r.additional.len() as f64);
    out.set("probe_dns_query_succeeded", "", 1.0);
    if o.query_type == 6
        && let Some(serial) = r.soa_serial
    {
        out.set("probe_dns_serial", "", serial as f64);
    }
    let rcode = RCODES.get(r.rcode as usize).copied().unwrap_or("UNKNOWN");
    out.log(format!("Got response: rcode={rcode}"));
    if !o.valid_rcodes.iter().any(|v| v == rcode) {
        out.log(format!("Rcode {rcode} is not one of the valid rcodes"));
        return false;
    }
    validate(&r.answer, &o.answer, out)
        && validate(&r.authority, &o.authority, out)
        && validate(&r.additional, &o.additional, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_reads_as_miekg_prints_it() {
        // example.test. A → two addresses, with a compressed name; an SOA in authority.
        let mut m = query(7, "example.test", 1, true);
        m[2] |= 0x80; // QR
        m[7] = 2; // ANCOUNT
        m[9] = 1; // NSCOUNT
        for ip in [[10, 0, 0, 1], [10, 0, 0, 2]] {
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
            m.extend_from_slice(&ip);
        }
        let mut soa = vec![2, b'n', b's', 0xc0, 12, 4, b'h', b'o', b's', b't', 0xc0, 12];
        for n in [2026113001u32, 7200, 3600, 1209600, 300] {
            soa.extend_from_slice(&n.to_be_bytes());
        }
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, soa.len() as u8]);
        m.extend_from_slice(&soa);
        let r = parse(&m, 7).unwrap();
        assert_eq!(r.rcode, 0);
        assert_eq!(
            r.answer,
            [
                "example.test.\t3600\tIN\tA\t10.0.0.1",
                "example.test.\t3600\tIN\tA\t10.0.0.2"
            ]
        );
        assert_eq!(
            r.authority,
            [
                "example.test.\t60\tIN\tSOA\tns.example.test. host.example.test. 2026113001 7200 3600 1209600 300"
            ]
        );
        assert!(parse(&m, 8).is_err());
        assert!(parse(&m[..20], 7).is_err());
    }

    /// Compression pointers cannot make a name past DNS's 255 octets: a chain of five
    /// 63-octet labels read through a pointer is malformed, as Go's resolver finds it; one of
    /// three labels (193 octets) reads.
    #[test]
    fn names_past_255_octets_are_malformed() {
        let mut msg = vec![0u8; 12];
        let chain = |labels: usize| -> Vec<u8> {
            let mut c = Vec::new();
            for _ in 0..labels {
                c.push(63);
                c.extend_from_slice(&[b'a'; 63]);
            }
            c.push(0);
            c
        };
        msg.extend(chain(3));
        let short_end = msg.len();
        msg.extend(chain(5));
        let (name, _) = read_name(&msg, 12).unwrap();
        assert_eq!(name.len(), 3 * 64);
        // A pointer to the long chain, as a record's owner name would be.
        let at = msg.len();
        msg.extend_from_slice(&[0xc0, short_end as u8]);
        assert!(read_name(&msg, short_end).is_none());
        assert!(read_name(&msg, at).is_none());
    }
}
