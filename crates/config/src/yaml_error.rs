//! YAML errors in Prometheus's words: reading text into the raw structs, keeping the field path
//! and line of a failure.

use super::*;

/// Read YAML text into a raw struct, keeping the field path of a failure.
pub(crate) fn from_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
    let path = RefCell::new(String::new());
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *path.borrow_mut() = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| yaml_err(file, &path.borrow(), &e))
}

/// The Go type Prometheus names in "field X not found in type Y", from the section holding it.
pub(crate) fn section_type(parent: &str) -> &'static str {
    let last = parent
        .rsplit('.')
        .next()
        .unwrap_or("")
        .split('[')
        .next()
        .unwrap_or("");
    match last {
        "" => "config.Config",
        "global" => "config.GlobalConfig",
        "scrape_configs" => "config.ScrapeConfig",
        "relabel_configs"
        | "metric_relabel_configs"
        | "write_relabel_configs"
        | "alert_relabel_configs" => "relabel.Config",
        "static_configs" => "targetgroup.Group",
        "file_sd_configs" => "file.SDConfig",
        "kubernetes_sd_configs" => "kubernetes.SDConfig",
        "http_sd_configs" => "http.SDConfig",
        "namespaces" => "kubernetes.NamespaceDiscovery",
        "selectors" => "kubernetes.SelectorConfig",
        "attach_metadata" => "kubernetes.AttachMetadataConfig",
        "tls_config" => "config.TLSConfig",
        "basic_auth" => "config.BasicAuth",
        "authorization" => "config.Authorization",
        "oauth2" => "config.OAuth2",
        "alerting" => "config.AlertingConfig",
        "alertmanagers" => "config.AlertmanagerConfig",
        "remote_write" => "config.RemoteWriteConfig",
        "remote_read" => "config.RemoteReadConfig",
        "queue_config" => "config.QueueConfig",
        "storage" => "config.StorageConfig",
        "tsdb" => "config.TSDBConfig",
        "retention" => "config.TSDBRetentionConfig",
        _ => "config",
    }
}

/// A serde-saphyr error as Prometheus would word it, with the field path and position.
pub(crate) fn yaml_err(file: &str, path: &str, e: &serde_saphyr::Error) -> ConfigError {
    let line = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line(), l.column()));
    // One line, without the snippet or the position (reported separately).
    let mut msg = e
        .without_snippet()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(rest) = msg.strip_prefix("error: ")
        && let Some((_, m)) = rest.split_once(": ")
        && rest.starts_with("line ")
    {
        msg = m.to_string();
    }
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    // serde_path_to_error: `?` for an unknown position; Spanned items add `.value`.
    let mut field = path.replace("].value", "]").replace(".value.", ".");
    // An unknown position (a map key, the document) carries no information: drop it.
    while let Some(f) = field.strip_suffix(".?") {
        field = f.to_string();
    }
    if field == "?" || field == "." {
        field.clear();
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let parent = field
            .strip_suffix(name)
            .map(|p| p.trim_end_matches('.'))
            .unwrap_or(&field)
            .to_string();
        msg = format!("field {name} not found in type {}", section_type(&parent));
        field = parent;
    } else if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let name = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        msg = format!("field {name} already set");
    } else if msg.starts_with("!!binary scalar is not valid UTF-8") {
        msg = "!!binary value is not valid UTF-8 text".into();
    } else if msg.starts_with("invalid !!binary base64") {
        msg = "!!binary value contains invalid base64 data".into();
    }
    ConfigError::Yaml {
        path: file.to_string(),
        field,
        line,
        msg,
    }
}
