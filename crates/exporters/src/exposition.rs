//! Writing the text exposition as the Go exporters do: families declared once, lines with
//! labels escaped, values formatted as Go's `strconv.FormatFloat(v, 'g', -1, 64)`.

use std::fmt::Write;

/// One metric family: name, `# TYPE`, `# HELP`.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    /// As printed: stable families' text starts `[STABLE] `, as kube-state-metrics prints it.
    pub help: &'static str,
}

pub const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "gauge",
        help,
    }
}

pub const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "counter",
        help,
    }
}

/// An object's lines as they are written, one string per family of its resource.
pub struct Rendered {
    pub per_family: Vec<String>,
}

impl Rendered {
    pub fn new(families: usize) -> Self {
        Rendered {
            per_family: vec![String::new(); families],
        }
    }

    /// Add `name{labels} value` to family `fam`.
    pub fn add(&mut self, fam: &Family, idx: usize, labels: &[(&str, &str)], v: f64) {
        let out = &mut self.per_family[idx];
        out.push_str(fam.name);
        push_labels(out, labels.iter().map(|(k, v)| (*k, *v)));
        let _ = writeln!(out, " {}", fmt_value(v));
    }

    /// As [`add`](Self::add), with extra label pairs owned by the caller (`label_*`).
    pub fn add_with(
        &mut self,
        fam: &Family,
        idx: usize,
        labels: &[(&str, &str)],
        extra: &[(String, String)],
        v: f64,
    ) {
        let out = &mut self.per_family[idx];
        out.push_str(fam.name);
        push_labels(
            out,
            labels
                .iter()
                .map(|(k, v)| (*k, *v))
                .chain(extra.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        let _ = writeln!(out, " {}", fmt_value(v));
    }
}

/// An object's lines kept between scrapes: one exact-size allocation and where each family's
/// lines end (a `String` per family would cost its header and growth slack per object).
pub struct Compact {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Compact {
    pub fn family(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

impl From<Rendered> for Compact {
    fn from(r: Rendered) -> Compact {
        let mut text = String::with_capacity(r.per_family.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(r.per_family.len());
        for f in &r.per_family {
            text.push_str(f);
            ends.push(text.len() as u32);
        }
        Compact {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

pub use vigil_model::exposition::escape_label_value;

pub fn push_labels<'a>(out: &mut String, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut first = true;
    for (k, v) in labels {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

/// `# HELP` text escapes backslash and newline.
pub fn escape_help(h: &str) -> std::borrow::Cow<'_, str> {
    if h.contains(['\\', '\n']) {
        h.replace('\\', "\\\\").replace('\n', "\\n").into()
    } else {
        h.into()
    }
}

/// This machine's architecture as Go names it (`GOARCH`), for the exporters' `*_build_info`.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as kube-state-metrics writes values.
pub use vigil_model::format_go_float as fmt_value;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_go_does() {
        assert_eq!(fmt_value(1.0), "1");
        assert_eq!(fmt_value(0.1), "0.1");
        assert_eq!(fmt_value(100000.0), "100000");
        assert_eq!(fmt_value(1e6), "1e+06");
        assert_eq!(fmt_value(16710053888.0), "1.6710053888e+10");
        assert_eq!(fmt_value(1.5e9), "1.5e+09");
        assert_eq!(fmt_value(0.0001), "0.0001");
        assert_eq!(fmt_value(0.00001), "1e-05");
        assert_eq!(fmt_value(999999.9999999999), "999999.9999999999");
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(-2.5e-7), "-2.5e-07");
    }
}
