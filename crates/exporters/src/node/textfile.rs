//! The textfile collector: `*.prom` files in `--collector.textfile.directory`, written by cron
//! jobs and scripts, served with the node's own families. A file that does not parse, or that
//! carries timestamps, is skipped whole and sets `node_textfile_scrape_error`.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use vigil_model::exposition::{Entry, Format, MetricType, Parser};

use super::{Error, Kind, Node, Out};
use crate::exposition::{fmt_value, push_labels};

/// One file's samples, parsed whole before any of it is added: (family, help if the file
/// gives one, kind, rendered line). The help is shared by the family's lines: a long HELP
/// over many lines must not be copied per line.
struct Parsed {
    lines: Vec<(String, Option<Arc<str>>, Kind, String)>,
}

fn kind(t: MetricType) -> Kind {
    match t {
        MetricType::Counter => Kind::Counter,
        MetricType::Gauge => Kind::Gauge,
        MetricType::Histogram => Kind::Histogram,
        MetricType::Summary => Kind::Summary,
        _ => Kind::Untyped,
    }
}

/// The family a sample line belongs to: the declared one when the name is it or, for
/// histograms and summaries, it plus a suffix of theirs.
fn family_of<'a>(
    name: &'a str,
    declared: Option<(&'a str, MetricType)>,
) -> Option<(&'a str, MetricType)> {
    let (fam, t) = declared?;
    if name == fam {
        return Some((fam, t));
    }
    let suffix = name.strip_prefix(fam)?;
    let ok = match t {
        MetricType::Histogram => ["_bucket", "_sum", "_count"].contains(&suffix),
        MetricType::Summary => ["_sum", "_count"].contains(&suffix),
        _ => false,
    };
    ok.then_some((fam, t))
}

fn quoted_name(path: &Path, name: &str) -> String {
    format!(
        "{} uses the name {name:?}, outside the classic character set, which the text format this exporter writes cannot carry; the file is skipped",
        path.display()
    )
}

fn parse(path: &Path, text: &str) -> Result<Parsed, String> {
    let mut helps: std::collections::HashMap<&str, Arc<str>> = Default::default();
    let mut types: std::collections::HashMap<&str, MetricType> = Default::default();
    let mut last: Option<(&str, MetricType)> = None;
    let mut lines = Vec::new();
    let mut samples = Vec::new();
    for e in Parser::new(text.as_bytes(), Format::Text) {
        match e.map_err(|e| e.to_string())? {
            Entry::Help { family, help } => {
                helps.insert(family, Arc::from(help.as_ref()));
            }
            Entry::Type { family, kind } => {
                types.insert(family, kind);
                last = Some((family, kind));
            }
            // The text format carries no native histograms.
            Entry::Unit { .. } | Entry::Histogram(_) => {}
            Entry::Sample(s) => {
                if s.timestamp_ms.is_some() {
                    return Err(format!(
                        "{} carries a sample timestamp ({}); textfile metrics may not, so the file is skipped",
                        path.display(),
                        s.name
                    ));
                }
                // The exporter writes the classic text format, which cannot carry other names.
                let std::borrow::Cow::Borrowed(name) = s.name else {
                    return Err(quoted_name(path, &s.name));
                };
                if !vigil_model::names::is_legacy_metric_name(name) {
                    return Err(quoted_name(path, name));
                }
                let (fam, t) = family_of(name, last)
                    .unwrap_or((name, *types.get(name).unwrap_or(&MetricType::Unknown)));
                let mut labels: Vec<(&str, String)> = Vec::new();
                for (k, v) in s.labels() {
                    match k {
                        std::borrow::Cow::Borrowed(k)
                            if vigil_model::names::is_legacy_label_name(k) =>
                        {
                            labels.push((k, v.into_owned()))
                        }
                        k => return Err(quoted_name(path, &k)),
                    }
                }
                labels.sort_by(|a, b| a.0.cmp(b.0));
                let mut line = String::from(name);
                push_labels(&mut line, labels.iter().map(|(k, v)| (*k, v.as_str())));
                let _ = writeln!(line, " {}", fmt_value(s.value));
                samples.push((fam, t, line));
            }
        }
    }
    for (fam, t, line) in samples {
        lines.push((fam.to_string(), helps.get(fam).cloned(), kind(t), line));
    }
    Ok(Parsed { lines })
}

pub fn textfile(n: &Node, out: &mut Out) -> Result<(), Error> {
    let mut error = false;
    let mut parsed = Vec::new();
    if let Some(dir) = &n.opts.textfile_dir {
        match std::fs::read_dir(dir) {
            Err(e) => {
                tracing::error!(directory = %dir.display(), "cannot read the textfile directory: {e}");
                error = true;
            }
            Ok(entries) => {
                let mut files: Vec<_> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "prom"))
                    .collect();
                files.sort();
                for path in files {
                    match read_file(&path) {
                        Some(p) => parsed.push((path, p)),
                        None => error = true,
                    }
                }
            }
        }
    }
    // A family without HELP in any file is described by the files it came from.
    let mut sources: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (path, p) in &parsed {
        for (fam, _, _, _) in &p.lines {
            let files = sources.entry(fam.clone()).or_default();
            let path = path.display().to_string();
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    let mut helps: std::collections::HashMap<String, Arc<str>> = Default::default();
    for (_, p) in &parsed {
        for (fam, help, _, _) in &p.lines {
            if let Some(h) = help {
                match helps.get(fam) {
                    Some(first) if first != h => {
                        tracing::error!(family = %fam, "textfiles give this family different help texts; the first is kept");
                        error = true;
                    }
                    Some(_) => {}
                    None => {
                        helps.insert(fam.clone(), h.clone());
                    }
                }
            }
        }
    }
    // Families without HELP: the text made once per family, not per line.
    for (fam, files) in &sources {
        if !helps.contains_key(fam) {
            helps.insert(
                fam.clone(),
                Arc::from(format!("Metric read from {}", files.join(", "))),
            );
        }
    }
    let mut mtimes = Vec::new();
    for (path, p) in parsed {
        for (fam, _, kind, line) in p.lines {
            let help = helps.get(&fam).cloned().unwrap_or_else(|| Arc::from(""));
            match out.family(&fam) {
                // Two types for one family would make the exposition invalid: the later
                // samples are dropped and the error is reported.
                Some((_, k)) if k != kind => {
                    tracing::error!(file = %path.display(), family = %fam, "textfile family has a different type than one already collected; its samples are skipped");
                    error = true;
                }
                _ => out.push_line(&fam, &help, kind, line),
            }
        }
        mtimes.push(path);
    }
    for path in mtimes {
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as f64)
            .unwrap_or(0.0);
        out.gauge(
            "node_textfile_mtime_seconds",
            "Unixtime mtime of textfiles successfully read.",
            &[("file", &path.display().to_string())],
            mtime,
        );
    }
    out.gauge(
        "node_textfile_scrape_error",
        "1 if there was an error opening or reading a file, 0 otherwise",
        &[],
        if error { 1.0 } else { 0.0 },
    );
    Ok(())
}

/// One file parsed; `None` (logged) when it could not be read or used.
fn read_file(path: &Path) -> Option<Parsed> {
    let text = match super::read_bounded(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(file = %path.display(), "cannot read the textfile: {e}");
            return None;
        }
    };
    match parse(path, &text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(file = %path.display(), "textfile skipped: {e}");
            None
        }
    }
}
