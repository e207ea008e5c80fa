//! The `tcp` prober: connect, then walk `query_response` reading line by line as the exporter's
//! line scanner does (a matched line is consumed, what follows it stays for the next `expect`),
//! sending each step's line with the match's `${1}`-style groups expanded. Its options (the
//! module's `tcp` section) are read here too.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::options::{IpPreference, check_keys, ip_preference};
use super::tls::Tls;
use super::{Outcome, resolve, tls};

#[derive(Debug, Clone, Default)]
pub struct TcpOptions {
    pub ip: IpPreference,
    /// `tls: true`: the connection is wrapped in TLS (with `tls_config`).
    pub tls: Option<Tls>,
    /// `query_response`: (expect regex, send line) steps.
    pub query_response: Vec<(Option<regex::Regex>, Option<String>)>,
}

const TCP_KEYS: [&str; 5] = [
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "query_response",
    "tls",
    "tls_config",
];
const TCP_UNSUPPORTED: [&str; 1] = ["source_ip_address"];

impl TcpOptions {
    /// The `tcp` section of a module.
    pub(super) fn from_json(t: &Value, unsupported: &mut Vec<String>) -> Result<Self, String> {
        check_keys(t, "tcp", &TCP_KEYS, &TCP_UNSUPPORTED, unsupported)?;
        let mut tcp = TcpOptions {
            ip: ip_preference(t, "tcp")?,
            tls: match t["tls"].as_bool().unwrap_or(false) {
                true => Some(Tls::from_json(&t["tls_config"], "tcp.tls_config")?),
                false => None,
            },
            query_response: Vec::new(),
        };
        for step in t["query_response"].as_array().into_iter().flatten() {
            check_keys(
                step,
                "tcp.query_response",
                &["expect", "send"],
                &["starttls"],
                unsupported,
            )?;
            let expect = match step["expect"].as_str() {
                Some(r) => Some(
                    regex::Regex::new(r)
                        .map_err(|e| format!("tcp.query_response.expect {r:?}: {e}"))?,
                ),
                None => None,
            };
            tcp.query_response
                .push((expect, step["send"].as_str().map(str::to_string)));
        }
        Ok(tcp)
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Lines from a stream: `\n`-terminated, a trailing `\r` dropped, the last unterminated line
/// returned at end of stream.
struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(inner: R) -> Self {
        Lines {
            inner,
            buf: Vec::new(),
            eof: false,
        }
    }

    async fn next_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.eof {
                return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
            }
            // Go's line scanner gives up on a line longer than 64 KiB.
            if self.buf.len() > 64 * 1024 {
                return Err(std::io::Error::other("bufio.Scanner: token too long"));
            }
            let mut chunk = [0u8; 4096];
            match self.inner.read(&mut chunk).await? {
                0 => self.eof = true,
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

pub(super) async fn probe_tcp(o: &TcpOptions, target: &str, out: &mut Outcome) -> bool {
    out.set("probe_failed_due_to_regex", "", 0.0);
    let Some((host, port)) = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(|c| c == '[' || c == ']'), p.parse().ok()?)))
    else {
        out.log(format!(
            "Error splitting target address and port: {target:?}"
        ));
        return false;
    };
    let Some(addr) = resolve(out, host, port, &o.ip).await else {
        return false;
    };
    let conn = match TcpStream::connect(addr).await {
        Ok(c) => c,
        Err(e) => {
            out.log(format!("Error dialing TCP: {e}"));
            return false;
        }
    };
    out.log("Successfully dialed");
    let stream: Box<dyn Io> = match &o.tls {
        Some(t) => match t.connect(host, conn).await {
            Ok(s) => {
                tls::report(out, s.get_ref().1, t.verify);
                Box::new(s)
            }
            Err(e) => {
                out.log(format!("TLS Handshake (client) failed: {e}"));
                return false;
            }
        },
        None => Box::new(conn),
    };
    let (rd, mut wr) = tokio::io::split(stream);
    let mut lines = Lines::new(rd);
    for (expect, send) in &o.query_response {
        let mut send = send.clone().unwrap_or_default();
        if let Some(re) = expect {
            let mut matched = None;
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        out.log(format!("Read line: {text}"));
                        if let Some(caps) = re.captures(&text) {
                            let mut expanded = String::new();
                            caps.expand(&send, &mut expanded);
                            matched = Some(expanded);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        out.log(format!("Error reading from connection: {e}"));
                        return false;
                    }
                }
            }
            match matched {
                Some(expanded) => {
                    out.log(format!("Regexp matched: {:?}", re.as_str()));
                    out.set("probe_failed_due_to_regex", "", 0.0);
                    send = expanded;
                }
                None => {
                    out.set("probe_failed_due_to_regex", "", 1.0);
                    out.log(format!("Regexp {:?} did not match", re.as_str()));
                    return false;
                }
            }
        }
        // An empty `send` sends nothing, as the exporter does.
        if !send.is_empty() {
            out.log(format!("Sending line: {send}"));
            if let Err(e) = wr.write_all(format!("{send}\n").as_bytes()).await {
                out.log(format!("Failed to send: {e}"));
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_keep_what_follows_a_match() {
        let data: &[u8] = b"220 hello\r\n250-one\n250 two";
        let mut l = Lines::new(data);
        assert_eq!(l.next_line().await.unwrap().unwrap(), b"220 hello");
        assert_eq!(l.next_line().await.unwrap().unwrap(), b"250-one");
        assert_eq!(l.next_line().await.unwrap().unwrap(), b"250 two");
        assert_eq!(l.next_line().await.unwrap(), None);
    }
}
