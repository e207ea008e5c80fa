//! The families a scrape writes, gathered then printed as node_exporter prints them: families
//! sorted by name, each with `# HELP` and `# TYPE`, samples sorted, label names in order.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::exposition::{fmt_value, push_labels};

/// A family's type as the text format names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Untyped,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

struct Fam {
    help: String,
    kind: Kind,
    /// Rendered sample lines, each ending in `\n`.
    lines: Vec<String>,
}

/// One scrape's output under construction.
#[derive(Default)]
pub struct Out {
    fams: BTreeMap<String, Fam>,
    /// Samples refused: a name from a file that is not a valid metric or label name, or a
    /// family given a second type. One bad line must not make the whole page unparsable.
    rejected: usize,
    last_rejection: String,
}

fn valid_metric_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl Out {
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.add(name, help, Kind::Gauge, labels, v);
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.add(name, help, Kind::Counter, labels, v);
    }

    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.add(name, help, Kind::Untyped, labels, v);
    }

    /// Add one sample. Label names are sorted here, as the Go client prints them; a family's
    /// help and type are the first ones given (every caller passes constants per name).
    pub fn add(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], v: f64) {
        if !valid_metric_name(name) || !labels.iter().all(|(k, _)| valid_label_name(k)) {
            self.reject(format!(
                "{name:?} is not a valid metric name with valid label names"
            ));
            return;
        }
        let mut line = String::with_capacity(name.len() + 16);
        line.push_str(name);
        if labels.windows(2).all(|w| w[0].0 < w[1].0) {
            push_labels(&mut line, labels.iter().copied());
        } else {
            let mut sorted = labels.to_vec();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            push_labels(&mut line, sorted.into_iter());
        }
        let _ = writeln!(line, " {}", fmt_value(v));
        self.push_line(name, help, kind, line);
    }

    /// Add an already rendered sample line (the textfile collector's, parsed and validated).
    pub fn push_line(&mut self, name: &str, help: &str, kind: Kind, line: String) {
        match self.fams.get_mut(name) {
            Some(f) if f.kind != kind => {
                let msg = format!(
                    "{name} already has type {}, not {}",
                    f.kind.as_str(),
                    kind.as_str()
                );
                self.reject(msg);
            }
            Some(f) => f.lines.push(line),
            None => {
                self.fams.insert(
                    name.to_string(),
                    Fam {
                        help: help.to_string(),
                        kind,
                        lines: vec![line],
                    },
                );
            }
        }
    }

    /// The help and type a family already has, if any sample of it was added.
    pub fn family(&self, name: &str) -> Option<(&str, Kind)> {
        self.fams.get(name).map(|f| (f.help.as_str(), f.kind))
    }

    fn reject(&mut self, why: String) {
        self.rejected += 1;
        self.last_rejection = why;
    }

    /// How many samples were refused so far.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// Why the last refused sample was refused.
    pub fn last_rejection(&self) -> &str {
        &self.last_rejection
    }

    /// The text exposition of everything added.
    pub fn render(mut self) -> String {
        let mut text = String::with_capacity(
            self.fams
                .iter()
                .map(|(n, f)| {
                    n.len() * 2 + f.help.len() + 32 + f.lines.iter().map(String::len).sum::<usize>()
                })
                .sum(),
        );
        for (name, f) in self.fams.iter_mut() {
            f.lines.sort_unstable();
            // One sample per series: a second value for the same series (a textfile repeating
            // a line with another value) would make the page invalid, so only the first in
            // sorted order is kept.
            let before = f.lines.len();
            f.lines.dedup_by(|b, a| series_key(a) == series_key(b));
            if f.lines.len() < before {
                tracing::warn!(family = %name, dropped = before - f.lines.len(), "samples for a series already written were dropped");
            }
            let _ = writeln!(
                text,
                "# HELP {name} {}",
                crate::exposition::escape_help(&f.help)
            );
            let _ = writeln!(text, "# TYPE {name} {}", f.kind.as_str());
            for l in &f.lines {
                text.push_str(l);
            }
        }
        text
    }
}

/// A rendered line without its value: `name{labels}`.
fn series_key(line: &str) -> &str {
    line.trim_end().rsplit_once(' ').map_or(line, |(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_sorted_labels_ordered_values_as_go() {
        let mut o = Out::default();
        o.gauge("b", "B.", &[("z", "1"), ("a", "x\"y")], 1e6);
        o.counter("a_total", "A.", &[], 3.0);
        o.gauge("b", "B.", &[("a", "0"), ("z", "0")], 0.5);
        o.gauge("bad name", "x", &[], 1.0);
        o.gauge("ok", "x", &[("bad-label", "v")], 1.0);
        o.push_line("a_total", "A.", Kind::Gauge, "a_total 1\n".into());
        o.push_line("a_total", "A.", Kind::Counter, "a_total 4\n".into());
        assert_eq!(o.rejected(), 3);
        assert_eq!(
            o.render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n\
             # HELP b B.\n# TYPE b gauge\nb{a=\"0\",z=\"0\"} 0.5\nb{a=\"x\\\"y\",z=\"1\"} 1e+06\n"
        );
    }
}
