//! Grafana dashboards vigil renders itself: JSON files (or Kubernetes ConfigMaps wrapping them,
//! as chapter 14 provisions Grafana) from `--dashboards.dir`, re-read on every request so a
//! changed file shows at once, plus the dashboards built into the binary.

use std::path::Path;

use serde_json::{Value, json};

/// Dashboards shipped in the binary, shown even without `--dashboards.dir`.
const BUILTIN: [&str; 3] = [
    include_str!("../dashboards/vigil.json"),
    include_str!("../dashboards/targets.json"),
    include_str!("../dashboards/kubernetes.json"),
];

/// The directories a Grafana provisioning file (`providers.yaml`) points at: every provider of
/// type `file` contributes its `options.path`.
pub fn provisioned_dirs(providers_yaml: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let text = std::fs::read_to_string(providers_yaml)
        .map_err(|e| format!("{}: {e}", providers_yaml.display()))?;
    let v: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", providers_yaml.display()))?;
    Ok(v["providers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["type"].as_str().is_none_or(|t| t == "file"))
        .filter_map(|p| p["options"]["path"].as_str().map(std::path::PathBuf::from))
        .collect())
}

/// A dashboard's identity: `uid` (from the JSON, else the file name), title, slug.
pub struct Dashboard {
    pub uid: String,
    pub title: String,
    pub json: Value,
    pub source: String,
}

fn slug(title: &str) -> String {
    let s: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

impl Dashboard {
    pub fn summary(&self) -> Value {
        json!({
            "uid": self.uid,
            "title": self.title,
            "slug": slug(&self.title),
            "tags": self.json["tags"].clone(),
            "source": self.source,
        })
    }
}

fn from_json(v: Value, fallback_uid: &str, source: &str) -> Option<Dashboard> {
    // Grafana's API export wraps it: {"dashboard": {...}, "meta": {...}}.
    let d = if v
        .get("dashboard")
        .is_some_and(|d| d.get("panels").is_some() || d.get("rows").is_some())
    {
        v["dashboard"].clone()
    } else {
        v
    };
    if d.get("panels").is_none() && d.get("rows").is_none() {
        return None;
    }
    let uid = d["uid"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| slug(fallback_uid));
    Some(Dashboard {
        uid,
        title: d["title"].as_str().unwrap_or(fallback_uid).to_string(),
        json: d,
        source: source.to_string(),
    })
}

/// Every dashboard in a file: a JSON dashboard, or the JSON values of a ConfigMap's `data`.
fn from_file(path: &Path) -> Result<Vec<Dashboard>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("dashboard");
    let src = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "json" {
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{src}: {e}"))?;
        return Ok(from_json(v, stem, &src).into_iter().collect());
    }
    let mut out = Vec::new();
    for doc in text.split("\n---") {
        if doc.trim().is_empty() {
            continue;
        }
        let v: Value = serde_saphyr::from_str(doc).map_err(|e| format!("{src}: {e}"))?;
        for (key, val) in v["data"].as_object().into_iter().flatten() {
            if let Some(s) = val.as_str()
                && let Ok(j) = serde_json::from_str::<Value>(s)
            {
                out.extend(from_json(j, key.trim_end_matches(".json"), &src));
            }
        }
    }
    Ok(out)
}

/// The built-in dashboards, then those of `--dashboards.dir` and of the directories a
/// `--dashboards.provisioning` file names. Files that cannot be read are reported, and the rest
/// still load.
pub fn load_all(dir: Option<&Path>, providers: Option<&Path>) -> (Vec<Dashboard>, Vec<String>) {
    let (mut out, mut errors) = load(dir);
    if let Some(p) = providers {
        match provisioned_dirs(p) {
            Ok(dirs) => {
                for d in dirs {
                    let (more, errs) = load(Some(&d));
                    errors.extend(errs);
                    for x in more.into_iter().filter(|x| x.source != "built in") {
                        out.retain(|y| y.uid != x.uid);
                        out.push(x);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

/// The built-in dashboards, then those of `dir` (files sorted by name). Files that cannot be
/// read are reported, and the rest still load.
pub fn load(dir: Option<&Path>) -> (Vec<Dashboard>, Vec<String>) {
    let mut out: Vec<Dashboard> = BUILTIN
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .filter_map(|v| from_json(v, "builtin", "built in"))
        .collect();
    let mut errors = Vec::new();
    if let Some(dir) = dir {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_else(|e| {
                errors.push(format!("{}: {e}", dir.display()));
                Vec::new()
            });
        files.sort();
        for f in files.iter().filter(|f| {
            matches!(
                f.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        }) {
            match from_file(f) {
                Ok(ds) => {
                    for d in ds {
                        // A later dashboard with the same uid replaces the earlier one.
                        out.retain(|x| x.uid != d.uid);
                        out.push(d);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }
    (out, errors)
}
