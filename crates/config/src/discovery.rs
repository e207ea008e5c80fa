//! Service discovery sections: static configs, `file_sd_configs` and `kubernetes_sd_configs`.

use super::*;

/// `static_configs`. As Prometheus, targets are checked to be host:port addresses only in jobs
/// without `relabel_configs`: with relabeling, a target written as a URL (the blackbox
/// exporter's documented pattern) is rewritten before it is scraped, and a target still not an
/// address after relabeling is dropped with an error then.
pub(crate) fn static_configs(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<Item<RawStaticConfig>>>,
    check_hosts: bool,
) -> Result<Vec<StaticConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, s) in v.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(s) = s else {
            return Err(ctx.err(f, "empty or null section in static_configs"));
        };
        let _at = ctx.at(s);
        let s = &s.value;
        let mut targets = Vec::new();
        for t in s.targets.iter().flatten().flatten() {
            if check_hosts && t.0.contains('/') {
                return Err(ctx.err(
                    format!("{f}.targets"),
                    format!("{:?} is not a valid hostname", t.0),
                ));
            }
            targets.push(t.0.clone());
        }
        out.push(StaticConfig {
            targets,
            labels: labels_map(ctx, &format!("{f}.labels"), &s.labels)?,
        });
    }
    Ok(out)
}

pub(crate) fn file_sd(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<Item<RawFileSd>>>,
) -> Result<Vec<FileSdConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, s) in v.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(s) = s else {
            return Err(ctx.err(f, "empty or null section in file_sd_configs"));
        };
        let _at = ctx.at(s);
        let s = &s.value;
        let files = s.files.clone().unwrap_or_default();
        if files.is_empty() {
            return Err(ctx.err(
                f,
                "file service discovery config must contain at least one path name",
            ));
        }
        for p in &files {
            let ext = Path::new(p)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("");
            if !matches!(ext, "json" | "yml" | "yaml") {
                return Err(ctx.err(
                    format!("{f}.files"),
                    format!("path name {p:?} is not valid for file discovery"),
                ));
            }
        }
        out.push(FileSdConfig {
            files: files.iter().map(|p| ctx.path(p)).collect(),
            refresh_interval: ctx
                .duration(&format!("{f}.refresh_interval"), &s.refresh_interval)?
                .unwrap_or(Duration::from_secs(300)),
        });
    }
    Ok(out)
}

/// A Kubernetes label or field selector, checked for the syntax the API accepts.
pub(crate) fn valid_selector(s: &str, field: bool) -> bool {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .all(|part| {
            let ops: &[&str] = &["!=", "==", "="];
            let has_op = ops.iter().any(|op| part.contains(op));
            if field {
                has_op
            } else {
                has_op || part.contains(" in ") || part.contains(" notin ") || !part.contains(' ')
            }
        })
}

/// The HTTP client settings the Kubernetes client cannot carry out are refused at load, by
/// name (else the config loads and discovery fails, or silently does otherwise, at run time).
fn kube_client_can(ctx: &Ctx<'_>, f: &str, h: &HttpClientConfig) -> Result<(), ConfigError> {
    let not_yet = |field: &str| {
        Err(ctx.err(
            format!("{f}.{field}"),
            "is not supported for kubernetes_sd_configs by vigil yet",
        ))
    };
    if let Some(a) = &h.authorization
        && !a.kind.eq_ignore_ascii_case("bearer")
    {
        return Err(ctx.err(
            format!("{f}.authorization.type"),
            format!(
                "{:?} is not supported for kubernetes_sd_configs by vigil (Bearer is)",
                a.kind
            ),
        ));
    }
    if h.oauth2.is_some() {
        return not_yet("oauth2");
    }
    let t = &h.tls_config;
    for (set, field) in [
        (t.ca.is_some(), "tls_config.ca (use ca_file)"),
        (t.cert.is_some(), "tls_config.cert (use cert_file)"),
        (t.key.is_some(), "tls_config.key (use key_file)"),
        (t.min_version.is_some(), "tls_config.min_version"),
        (t.max_version.is_some(), "tls_config.max_version"),
        (h.no_proxy.is_some(), "no_proxy"),
        (h.proxy_from_environment, "proxy_from_environment"),
    ] {
        if set {
            return not_yet(field);
        }
    }
    Ok(())
}

pub(crate) fn kubernetes(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<Item<RawKubernetesSd>>>,
) -> Result<Vec<KubernetesSdConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, k) in v.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(k) = k else {
            return Err(ctx.err(f, "empty or null section in kubernetes_sd_configs"));
        };
        let _at = ctx.at(k);
        let k = &k.value;
        let role =
            match k.role.as_deref() {
                None | Some("") => return Err(ctx.err(
                    &f,
                    "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
                )),
                Some(r) => KubernetesRole::parse(r).ok_or_else(|| {
                    ctx.err(
                        format!("{f}.role"),
                        format!("unknown Kubernetes SD role {r:?}"),
                    )
                })?,
            };
        let http = http_of!(ctx, &f, k)?;
        kube_client_can(ctx, &f, &http)?;
        if let Some(name) = http.http_header_files.keys().next() {
            // The Kubernetes client's headers are fixed when it is built; a file re-read per
            // request (as Prometheus does) is not possible there yet.
            return Err(ctx.err(
                format!("{f}.http_headers.{name}.files"),
                "header values from files are not supported for kubernetes_sd_configs yet; use values or secrets",
            ));
        }
        let api_server = k.api_server.clone().filter(|s| !s.is_empty());
        let custom_http = http != HttpClientConfig::default();
        if let Some(kc) = &k.kubeconfig_file {
            if api_server.is_some() {
                return Err(ctx.err(
                    &f,
                    "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
                ));
            }
            if custom_http {
                return Err(ctx.err(
                    &f,
                    "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
                ));
            }
            let _ = kc;
        }
        if api_server.is_none() && k.kubeconfig_file.is_none() && custom_http {
            return Err(ctx.err(&f, "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"));
        }
        let own = k
            .namespaces
            .as_ref()
            .and_then(|n| n.own_namespace)
            .unwrap_or(false);
        if own && api_server.is_some() {
            return Err(ctx.err(
                &f,
                "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
            ));
        }
        if own && k.kubeconfig_file.is_some() {
            return Err(ctx.err(
                &f,
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
            ));
        }
        let allowed: &[KubernetesRole] = match role {
            KubernetesRole::Pod => &[KubernetesRole::Pod, KubernetesRole::Node],
            KubernetesRole::Service => &[KubernetesRole::Service],
            KubernetesRole::Endpoints => &[
                KubernetesRole::Pod,
                KubernetesRole::Service,
                KubernetesRole::Endpoints,
            ],
            KubernetesRole::EndpointSlice => &[
                KubernetesRole::Pod,
                KubernetesRole::Service,
                KubernetesRole::EndpointSlice,
            ],
            KubernetesRole::Node => &[KubernetesRole::Node],
            KubernetesRole::Ingress => &[KubernetesRole::Ingress],
        };
        let mut selectors = Vec::new();
        let mut seen = HashSet::new();
        for (j, s) in k.selectors.iter().flatten().enumerate() {
            let sf = format!("{f}.selectors[{j}]");
            let _at = ctx.at(s);
            let s = &s.value;
            let r = s.role.as_deref().unwrap_or("");
            let sr = KubernetesRole::parse(r)
                .ok_or_else(|| ctx.err(&sf, format!("invalid selector role: {r}")))?;
            if !seen.insert(sr.as_str()) {
                return Err(ctx.err(&sf, format!("duplicated selector role: {r}")));
            }
            if !allowed.contains(&sr) {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                return Err(ctx.err(
                    &sf,
                    format!(
                        "{} role supports only {} selectors",
                        role.as_str(),
                        names.join(", ")
                    ),
                ));
            }
            if let Some(l) = &s.label
                && !valid_selector(l, false)
            {
                return Err(ctx.err(format!("{sf}.label"), format!("invalid selector: {l:?}")));
            }
            if let Some(fl) = &s.field
                && !valid_selector(fl, true)
            {
                return Err(ctx.err(
                    format!("{sf}.field"),
                    format!("invalid selector: '{fl}'; can't understand '{fl}'"),
                ));
            }
            selectors.push(Selector {
                role: sr,
                label: s.label.clone(),
                field: s.field.clone(),
            });
        }
        out.push(KubernetesSdConfig {
            role,
            api_server,
            kubeconfig_file: k.kubeconfig_file.as_deref().map(|p| ctx.path(p)),
            namespaces: k.namespaces.as_ref().map(|n| Namespaces {
                names: n.names.clone().unwrap_or_default(),
                own_namespace: own,
            }),
            selectors,
            attach_metadata: {
                let a = k.attach_metadata.as_ref();
                let on = |f: fn(&RawAttachMetadata) -> Option<bool>| a.and_then(f).unwrap_or(false);
                AttachMetadata {
                    node: on(|a| a.node),
                    namespace: on(|a| a.namespace),
                    deployment: on(|a| a.deployment),
                    job: on(|a| a.job),
                    cronjob: on(|a| a.cronjob),
                }
            },
            http_client: http,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::Config;

    /// What the Kubernetes client cannot do is refused at load, naming the field, instead of
    /// a config that loads and a discovery that fails (or does otherwise) at run time.
    #[test]
    fn kubernetes_client_settings_it_cannot_carry_out_are_refused_by_name() {
        let cfg = |extra: &str| {
            Config::parse(
                &format!(
                    "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        api_server: 'https://k:6443'\n        {extra}\n"
                ),
                std::path::Path::new("/"),
            )
        };
        for (line, field) in [
            (
                "authorization: {type: Token, credentials: x}",
                "authorization.type",
            ),
            ("tls_config: {ca: abc}", "tls_config.ca"),
            ("tls_config: {min_version: TLS13}", "tls_config.min_version"),
            ("tls_config: {max_version: TLS12}", "tls_config.max_version"),
            ("proxy_from_environment: true", "proxy_from_environment"),
        ] {
            let e = cfg(line).expect_err(line).to_string();
            assert!(
                e.contains(&format!("kubernetes_sd_configs[0].{field}")),
                "{line}: {e}"
            );
            assert!(
                e.contains("not supported for kubernetes_sd_configs"),
                "{line}: {e}"
            );
        }
        for ok in [
            "authorization: {credentials: x}",
            "tls_config: {ca_file: ca.pem, insecure_skip_verify: false}",
            "basic_auth: {username_file: u.txt, password: p}",
        ] {
            assert!(cfg(ok).is_ok(), "{ok}: {:?}", cfg(ok).err());
        }
    }
}
