//! Why a config was rejected, and how the error names the field and line.

/// Why a config was rejected. Displayed as Prometheus words it, plus where:
/// `parsing YAML file prometheus.yml: scrape_configs[0] (job "node").relabel_configs[1]
/// (line 12, column 9): relabel configuration for replace action requires 'target_label' value`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {err}")]
    Io { path: String, err: std::io::Error },
    /// The text is not YAML of the config's shape: syntax, unknown field, wrong type,
    /// duplicate key.
    #[error("parsing YAML file {path}: {}", located(field, *line, msg))]
    Yaml {
        path: String,
        /// Field path, e.g. `scrape_configs[0].relabel_configs` (empty when unknown).
        field: String,
        /// 1-based line and column, when the parser knows them.
        line: Option<(u64, u64)>,
        msg: String,
    },
    /// Well-formed YAML with a value Prometheus rejects.
    #[error("parsing YAML file {path}: {}", located(field, *line, msg))]
    Invalid {
        path: String,
        /// Field path; a scrape config's segment carries its job: `scrape_configs[2] (job "x")`.
        field: String,
        /// 1-based line and column of the innermost enclosing item the parser located.
        line: Option<(u64, u64)>,
        msg: String,
    },
}

impl ConfigError {
    /// The field path the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Yaml { field, .. } | ConfigError::Invalid { field, .. } => {
                Some(field).filter(|f| !f.is_empty()).map(String::as_str)
            }
        }
    }

    /// 1-based line and column, if known.
    pub fn line_column(&self) -> Option<(u64, u64)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Yaml { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// The message alone, without file, field or position.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Io { err, .. } => err.to_string(),
            ConfigError::Yaml { msg, .. } | ConfigError::Invalid { msg, .. } => msg.clone(),
        }
    }
}

pub(crate) fn located(field: &str, line: Option<(u64, u64)>, msg: &str) -> String {
    let mut out = field.to_string();
    if let Some((l, c)) = line {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("(line {l}, column {c})"));
    }
    if !out.is_empty() {
        out.push_str(": ");
    }
    out.push_str(msg);
    out
}
