//! Secret masking: configs and URLs as they are shown (on `/config`, in logs) without secrets.

use super::*;

/// A URL with the password of its user info (`scheme://user:password@host`) masked.
pub fn mask_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_start = rest.find('/').unwrap_or(rest.len());
            match rest[..host_start].rsplit_once('@') {
                Some((user, host)) if user.contains(':') => {
                    let user = user.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}:{MASK}@{host}{}", &rest[host_start..])
                }
                Some(_) => url.to_string(),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

impl Config {
    /// The config as loaded, re-serialised (values and their order, without the file's
    /// comments, which can hold credentials), with every secret replaced by `<secret>`.
    pub fn to_masked_yaml(&self) -> String {
        let masked = self.masked_source();
        reserialize::reserialize(&masked).unwrap_or_else(|e| {
            // The text parsed when the config was loaded; this cannot fail in practice. Never
            // fall back to text that may carry comments.
            format!("# vigil could not re-serialise the configuration: {e}\n")
        })
    }

    /// The main file's text with every secret replaced by `<secret>`: the secrets vigil
    /// parses are masked where the parser found them (any quoting, block scalars, anchors);
    /// inside sections kept opaque (unsupported service discoveries) values of secret-named
    /// keys are masked line by line; URL passwords too.
    pub(crate) fn masked_source(&self) -> String {
        let mut text = self.source.clone();
        let mut spans = self.secret_spans.clone();
        spans.sort_unstable();
        spans.dedup();
        let mut end_of_next = usize::MAX;
        for &(o, l) in spans.iter().rev() {
            let e = o + l;
            if e > text.len() || e > end_of_next {
                continue;
            }
            if !text.is_char_boundary(o) || !text.is_char_boundary(e) {
                continue;
            }
            // Block scalars' spans run to the next line's indentation: keep that.
            let region = &text[o..e];
            let tail = region[region.trim_end().len()..].to_string();
            text.replace_range(o..e, &format!("{MASK}{tail}"));
            end_of_next = o;
        }
        mask_by_key(&text)
    }
}

pub(crate) const MASK: &str = "<secret>";

/// Keys whose values are secrets in Prometheus's SD configs (masked where vigil keeps the
/// section opaque).
pub(crate) const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "key",
    "secret_key",
    "token",
    "auth_token",
    "key_passphrase",
    "application_secret",
    "consumer_key",
    "service_account_key",
    "private_key",
    "client_certificate_key",
];

pub(crate) fn mask_by_key(text: &str) -> String {
    let key_re = regex::Regex::new(r"^(\s*(?:-\s+)*)([A-Za-z0-9_]+)(\s*:)(\s*)(.*)$")
        .unwrap_or_else(|_| unreachable!("constant regex"));
    let flow_re = regex::Regex::new(&format!(
        r#"([{{,]\s*)({})(\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,}}\s][^,}}]*)"#,
        SECRET_KEYS.join("|")
    ))
    .unwrap_or_else(|_| unreachable!("constant regex"));
    let url_re = regex::Regex::new(r"(://[^/\s:@]+:)[^@/\s]+@")
        .unwrap_or_else(|_| unreachable!("constant regex"));
    let mut out: Vec<String> = Vec::new();
    // While masking a block scalar: the key's column; deeper lines are its content.
    let mut block: Option<usize> = None;
    for line in text.split('\n') {
        if let Some(col) = block {
            let indent = line.len() - line.trim_start().len();
            if line.trim().is_empty() || indent > col {
                continue;
            }
            block = None;
        }
        let mut l = line.to_string();
        if let Some(c) = key_re.captures(line) {
            let val = c[5].trim_end();
            let plain_scalar = !val.is_empty()
                && !val.starts_with(['#', '{', '[', '&', '*'])
                && !val.starts_with(MASK);
            if SECRET_KEYS.contains(&&c[2]) && plain_scalar {
                if val.starts_with(['|', '>']) {
                    block = Some(c[1].len());
                }
                let sep = if c[4].is_empty() { " " } else { &c[4] };
                l = format!("{}{}{}{sep}{MASK}", &c[1], &c[2], &c[3]);
            }
        }
        if l.contains('{') {
            l = flow_re
                .replace_all(&l, |c: &regex::Captures| {
                    if c[4].starts_with(MASK) {
                        c[0].to_string()
                    } else {
                        format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
                    }
                })
                .into_owned();
        }
        l = url_re
            .replace_all(&l, format!("${{1}}{MASK}@"))
            .into_owned();
        out.push(l);
    }
    out.join("\n")
}
