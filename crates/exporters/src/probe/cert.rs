//! What the blackbox exporter reports about a peer's certificates, read from their DER: the
//! validity end, subject and issuer as Go prints a `pkix.Name`, the DNS names of the subject
//! alternative names, and the SHA-256 fingerprint. A small DER walker is enough for these
//! fields; nothing here verifies anything (rustls did that during the handshake).

/// One DER element: tag, contents, and the rest of the input after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first & 0x80 == 0 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value.
fn children(mut input: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((t, c, rest)) = element(input) {
        out.push((t, c));
        input = rest;
    }
    out
}

/// An OBJECT IDENTIFIER in dotted form.
fn oid(bytes: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for b in bytes {
        v = (v << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() {
                // The first subidentifier packs two arcs: 40 * X + Y, X at most 2.
                let x = (v / 40).min(2);
                parts.push(x);
                parts.push(v - 40 * x);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime) as Unix seconds.
fn time(tag: u8, s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let y: i64 = s.get(..2)?.parse().ok()?;
            (if y >= 50 { 1900 + y } else { 2000 + y }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (mo, d, h, mi, se) = (
        n(0..2)?,
        n(2..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10).unwrap_or(0),
    );
    let days = vigil_model::time::days_from_civil(year, mo, d);
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

/// Go's `pkix.Name.String()`: the standard attributes in Go's fixed order (serial number,
/// common name, organisational unit, organisation, postal code, street, locality, province,
/// country; the values of one type joined by `+`), then other attributes as `OID=#<DER hex>`
/// in reverse order, joined by `,`, with Go's escaping.
fn name(der: &[u8]) -> String {
    const ORDER: [(&str, &str); 9] = [
        ("2.5.4.5", "SERIALNUMBER"),
        ("2.5.4.3", "CN"),
        ("2.5.4.11", "OU"),
        ("2.5.4.10", "O"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.7", "L"),
        ("2.5.4.8", "ST"),
        ("2.5.4.6", "C"),
    ];
    let mut known: Vec<(String, String)> = Vec::new();
    let mut other: Vec<String> = Vec::new();
    for (_, set) in children(der) {
        for (_, atv) in children(set) {
            let Some((0x06, o, value_tlv)) = element(atv) else {
                continue;
            };
            let Some((_, v, _)) = element(value_tlv) else {
                continue;
            };
            let id = oid(o);
            if ORDER.iter().any(|(k, _)| *k == id) {
                known.push((id, String::from_utf8_lossy(v).into_owned()));
            } else {
                let hex: String = value_tlv.iter().map(|b| format!("{b:02x}")).collect();
                other.push(format!("{id}=#{hex}"));
            }
        }
    }
    let escape = |v: &str| {
        let mut out = String::new();
        for (k, c) in v.char_indices() {
            let esc = match c {
                ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
                ' ' => k == 0 || k + 1 == v.len(),
                '#' => k == 0,
                _ => false,
            };
            if esc {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let mut rdns: Vec<String> = Vec::new();
    for (id, key) in ORDER {
        let vals: Vec<String> = known
            .iter()
            .filter(|(k, _)| k == id)
            .map(|(_, v)| format!("{key}={}", escape(v)))
            .collect();
        if !vals.is_empty() {
            rdns.push(vals.join("+"));
        }
    }
    rdns.extend(other.into_iter().rev());
    rdns.join(",")
}

/// The fields of one certificate the exporter reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertInfo {
    pub not_after: i64,
    pub subject: String,
    pub issuer: String,
    pub dns_names: Vec<String>,
    pub serial_hex: String,
}

/// Parse a certificate's DER; `None` when it is not one.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let mut fields = children(tbs).into_iter().peekable();
    if fields.peek().is_some_and(|(t, _)| *t == 0xa0) {
        fields.next(); // [0] version
    }
    let (_, serial) = fields.next()?;
    fields.next()?; // signature algorithm
    let (_, issuer) = fields.next()?;
    let (_, validity) = fields.next()?;
    let (_, subject) = fields.next()?;
    let times = children(validity);
    let (t, not_after) = times.get(1)?;
    let mut info = CertInfo {
        not_after: time(*t, not_after)?,
        subject: name(subject),
        issuer: name(issuer),
        dns_names: Vec::new(),
        serial_hex: serial
            .iter()
            .skip_while(|b| **b == 0)
            .map(|b| format!("{b:02x}"))
            .collect(),
    };
    for (t, c) in fields {
        if t != 0xa3 {
            continue; // [3] extensions
        }
        for (_, exts) in children(c) {
            for (_, ext) in children(exts) {
                let parts = children(ext);
                let Some((0x06, o)) = parts.first() else {
                    continue;
                };
                if oid(o) != "2.5.29.17" {
                    continue;
                }
                let Some((0x04, value)) = parts.last() else {
                    continue;
                };
                if let Some((_, names, _)) = element(value) {
                    for (tag, n) in children(names) {
                        // [2] dNSName
                        if tag == 0x82 {
                            info.dns_names.push(String::from_utf8_lossy(n).into_owned());
                        }
                    }
                }
            }
        }
    }
    Some(info)
}

/// SHA-256 of the certificate's DER, lower-case hex.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_and_times() {
        assert_eq!(oid(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(time(0x17, b"261230120000Z"), Some(1798632000));
        assert_eq!(time(0x18, b"20261230120000Z"), Some(1798632000));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2524607999));
    }
}
