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
    let text = read_bounded(providers_yaml)?;
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

/// The most one dashboard file may hold (Grafana's own are well under a few MiB).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// A dashboard file's text: a regular file (a FIFO or device named `*.json` would block the
/// reader or never end) of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| err(&e))?;
    if !meta.is_file() {
        return Err(err(&"not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| err(&e))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(err(&format!(
            "larger than {} MiB, the most a dashboard file may be",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}

/// Every dashboard in a file: a JSON dashboard, or the JSON values of a ConfigMap's `data`.
fn from_file(path: &Path) -> Result<Vec<Dashboard>, String> {
    let text = read_bounded(path)?;
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

#[cfg(test)]
mod tests {
    /// A FIFO named like a dashboard is reported, not read (reading it would block until a
    /// writer came), and the directory's other dashboards still load.
    #[test]
    fn a_fifo_in_the_directory_is_refused_and_the_rest_load() {
        let dir = std::env::temp_dir().join(format!("vigil-dash-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mkfifo")
            .arg(dir.join("a.json"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo");
        std::fs::write(
            dir.join("b.json"),
            r#"{"uid":"mine","title":"Mine","panels":[]}"#,
        )
        .unwrap();
        let (ds, errors) = super::load(Some(&dir));
        assert!(ds.iter().any(|d| d.uid == "mine"), "{errors:?}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("a.json: not a regular file"),
            "{errors:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
