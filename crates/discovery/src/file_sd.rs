//! `file_sd_configs`: target groups from JSON or YAML files matched by glob patterns.
//!
//! Files are checked for changes every second (name, size, modification time) and fully
//! re-read every `refresh_interval`, so edits show up quickly without depending on inotify,
//! which does not see ConfigMap updates through symlink swaps reliably anyway. A file that
//! fails to parse keeps its last good groups and the error is logged and counted; a bad group
//! in a file that parses is dropped alone, with an error naming the file and the group.
//! Targets are not checked to be addresses here: relabeling may rewrite a URL-form target (the
//! blackbox exporter's pattern), and one that is still not an address is dropped at scrape
//! time with its error, as Prometheus does.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::sync::mpsc;
use vigil_config::FileSdConfig;
use vigil_model::labels::ADDRESS;
use vigil_model::names::NameValidation;
use vigil_model::{Labels, LabelsBuilder};

use crate::TargetGroup;
use crate::metrics;

/// `__meta_filepath`: the file a target came from.
pub const META_FILEPATH: &str = "__meta_filepath";

const POLL: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parse one file's content; the format is chosen by extension as Prometheus does. The groups
/// that are valid, and an error for each one that is not (dropped); `Err` if the file itself
/// cannot be read as a list of groups.
pub fn parse(path: &Path, content: &str) -> Result<(Vec<TargetGroup>, Vec<String>), String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let raw: Vec<Result<RawGroup, String>> = match ext {
        "json" => serde_json::from_str::<Vec<serde_json::Value>>(content)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|v| serde_json::from_value::<RawGroup>(v).map_err(|e| e.to_string()))
            .collect(),
        "yml" | "yaml" => {
            if content.trim().is_empty() {
                Vec::new()
            } else if let Ok(groups) = serde_saphyr::from_str::<Vec<RawGroup>>(content) {
                // Read into the groups' string fields straight away: a label value keeps the
                // scalar as written (`env: yes`, `version: 1.10`), as Go's YAML reads it.
                groups.into_iter().map(Ok).collect()
            } else {
                // A group that is wrong: each read on its own, so the others are kept and the
                // wrong one is named.
                serde_saphyr::from_str::<Vec<serde_json::Value>>(content)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|v| serde_json::from_value::<RawGroup>(v).map_err(|e| e.to_string()))
                    .collect()
            }
        }
        other => {
            return Err(format!(
                "retrieval target groups: unsupported file extension {other:?}"
            ));
        }
    };
    let file = path.display().to_string();
    let (mut groups, mut errors) = (Vec::new(), Vec::new());
    for (i, g) in raw.into_iter().enumerate() {
        let group = g.and_then(|g| {
            let mut lb = LabelsBuilder::with_capacity(g.labels.len() + 1);
            for (k, v) in g.labels {
                // Any UTF-8 name, as Prometheus 3 reads target groups.
                if !NameValidation::Utf8.label_name_ok(&k) {
                    return Err(format!("\"{k}\" is not a valid label name"));
                }
                lb.set(k, v);
            }
            lb.set(META_FILEPATH, file.clone());
            Ok(TargetGroup {
                source: format!("{file}:{i}"),
                targets: g
                    .targets
                    .into_iter()
                    .map(|t| Labels::from_pairs([(ADDRESS, t)]))
                    .collect(),
                labels: lb.build(),
            })
        });
        match group {
            Ok(g) => groups.push(g),
            Err(e) => errors.push(format!("target group {i}: {e} (group dropped)")),
        }
    }
    Ok((groups, errors))
}

/// The files currently matched by `patterns`, sorted.
fn list_files(patterns: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = patterns
        .iter()
        .filter_map(|p| glob::glob(p).ok())
        .flat_map(|paths| paths.filter_map(Result::ok))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out.dedup();
    out
}

type Stamp = (u64, Option<SystemTime>);

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()))
}

/// Run the provider until the receiver is gone, sending the full list of groups whenever it
/// changes.
pub async fn run(
    cfg: FileSdConfig,
    tx: mpsc::Sender<Vec<TargetGroup>>,
    health: crate::health::Reporter,
) {
    let mut stamps: HashMap<PathBuf, Stamp> = HashMap::new();
    let mut groups: BTreeMap<PathBuf, Vec<TargetGroup>> = BTreeMap::new();
    let mut last_sent: Option<Vec<TargetGroup>> = None;
    // Files whose last read failed, reported to `health` until they read or go.
    let mut failed: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
    let mut last_full = Instant::now();
    let mut first = true;
    loop {
        let full = first || last_full.elapsed() >= cfg.refresh_interval;
        let started = Instant::now();
        let files = list_files(&cfg.files);
        groups.retain(|p, _| files.contains(p));
        // A file that failed and is gone is no longer a problem.
        failed.retain(|p| {
            let kept = files.contains(p);
            if !kept {
                health.ok(&p.display().to_string());
            }
            kept
        });
        stamps.retain(|p, _| files.contains(p));
        for f in &files {
            let st = stamp(f);
            if !full && st.is_some() && stamps.get(f) == st.as_ref() {
                continue;
            }
            let content = tokio::fs::read_to_string(f).await;
            match content
                .map_err(|e| e.to_string())
                .and_then(|c| parse(f, &c))
            {
                Ok((g, bad)) => {
                    for e in &bad {
                        metrics::FILE_READ_ERRORS.inc();
                        tracing::error!(file = %f.display(), err = %e, "Error in file");
                    }
                    if bad.is_empty() {
                        health.ok(&f.display().to_string());
                        failed.remove(f);
                    } else {
                        health.fail(&f.display().to_string(), bad.join("; "));
                        failed.insert(f.clone());
                    }
                    groups.insert(f.clone(), g);
                }
                Err(e) => {
                    metrics::FILE_READ_ERRORS.inc();
                    tracing::error!(file = %f.display(), err = %e, "Error reading file");
                    health.fail(&f.display().to_string(), &e);
                    failed.insert(f.clone());
                }
            }
            if let Some(st) = st {
                stamps.insert(f.clone(), st);
            }
        }
        if full {
            last_full = Instant::now();
        }
        metrics::FILE_SCAN_DURATION.inc_by(started.elapsed().as_secs_f64());
        let all: Vec<TargetGroup> = groups.values().flatten().cloned().collect();
        if last_sent.as_ref() != Some(&all) {
            if tx.send(all.clone()).await.is_err() {
                return;
            }
            last_sent = Some(all);
        }
        first = false;
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_yaml() {
        let j = r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}]"#;
        let (g, bad) = parse(Path::new("/x/t.json"), j).unwrap();
        assert!(bad.is_empty());
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "/x/t.json:0");
        assert_eq!(g[0].labels.get("env"), Some("prod"));
        assert_eq!(g[0].labels.get(META_FILEPATH), Some("/x/t.json"));
        assert_eq!(g[1].targets[0].get(ADDRESS), Some("c:3"));
        let y = "- targets: ['a:1']\n  labels:\n    env: dev\n";
        let (g, _) = parse(Path::new("t.yml"), y).unwrap();
        assert_eq!(g[0].labels.get("env"), Some("dev"));
        // Label values as written, as Go's YAML reads them into strings.
        let y = "- targets: ['a:1']\n  labels:\n    env: yes\n    version: 1.10\n";
        let (g, bad) = parse(Path::new("t.yml"), y).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(g[0].labels.get("env"), Some("yes"));
        assert_eq!(g[0].labels.get("version"), Some("1.10"));
        // A wrong group in YAML is still dropped alone.
        let y = "- targets: ['a:1']\n- targets: ['b:1']\n  bogus: 1\n";
        let (g, bad) = parse(Path::new("t.yml"), y).unwrap();
        assert_eq!((g.len(), bad.len()), (1, 1), "{bad:?}");
    }

    /// A bad group is dropped alone, named; the file's other groups stay. URL-form targets are
    /// kept for relabeling (the blackbox exporter's pattern), as Prometheus keeps them.
    #[test]
    fn a_bad_group_drops_alone_and_url_targets_are_kept() {
        let j = r#"[{"targets": ["a:1"]}, {"targets": ["b:1"], "labels": {"": "y"}}, {"targets": [1]}, {"targets": ["c:1"], "bogus": 1}, {"targets": ["http://d:1/probe"]}]"#;
        let (g, bad) = parse(Path::new("t.json"), j).unwrap();
        let kept: Vec<&str> = g
            .iter()
            .map(|g| g.targets[0].get(ADDRESS).unwrap())
            .collect();
        assert_eq!(kept, ["a:1", "http://d:1/probe"]);
        assert_eq!(
            g[1].source, "t.json:4",
            "sources keep the groups' positions"
        );
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(
            bad[0].starts_with("target group 1: \"\" is not a valid label name"),
            "{bad:?}"
        );
        assert!(bad[2].contains("bogus"), "{bad:?}");
        // The file itself unreadable: an error for the whole file (its last good groups stay).
        assert!(parse(Path::new("t.txt"), "[]").is_err());
        assert!(parse(Path::new("t.json"), "{").is_err());
        assert!(parse(Path::new("t.yml"), "targets: [a]\n").is_err());
    }

    #[tokio::test]
    async fn run_follows_file_changes() {
        let dir = std::env::temp_dir().join(format!("vigil-filesd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("targets.json");
        std::fs::write(&f, r#"[{"targets": ["a:1"]}]"#).unwrap();
        let cfg = FileSdConfig {
            files: vec![dir.join("*.json").display().to_string()],
            refresh_interval: Duration::from_secs(300),
        };
        let (tx, mut rx) = mpsc::channel(4);
        let health = std::sync::Arc::new(crate::health::Health::default());
        let reporter =
            crate::health::Reporter::new(health.clone(), "files", "file_sd_configs[0]".into(), 0);
        let task = tokio::spawn(run(cfg, tx, reporter));
        let first = rx.recv().await.unwrap();
        assert_eq!(first[0].targets.len(), 1);
        assert!(health.problems().is_empty());
        // A file that stops parsing is a problem the pages can name (its targets are kept);
        // once it parses again, it is not.
        let wait_problems = |n: usize| {
            let health = health.clone();
            async move {
                for _ in 0..200 {
                    if health.problems().len() == n {
                        return health.problems();
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("never {n} problems: {:?}", health.problems());
            }
        };
        std::fs::write(&f, "[{").unwrap();
        let p = wait_problems(1).await;
        assert_eq!(
            (p[0].job.as_str(), p[0].provider.as_str()),
            ("files", "file_sd_configs[0]")
        );
        assert_eq!(p[0].part, f.display().to_string());
        std::fs::write(&f, r#"[{"targets": ["a:1", "b:22"]}]"#).unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second[0].targets.len(), 2);
        wait_problems(0).await;
        std::fs::remove_file(&f).unwrap();
        let third = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(third.is_empty());
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
