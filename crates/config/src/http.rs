//! HTTP client settings shared by scrape configs, remote write and read and Alertmanagers:
//! authentication, TLS, proxies, headers.

use super::*;

pub(crate) fn labels_map(
    ctx: &Ctx<'_>,
    field: &str,
    m: &Option<BTreeMap<Text, Text>>,
) -> Result<Labels, ConfigError> {
    let mut pairs = Vec::new();
    for (k, v) in m.iter().flatten() {
        // Any UTF-8 name, as Prometheus 3 checks label sets it is given.
        if !NameValidation::Utf8.label_name_ok(&k.0) {
            return Err(ctx.err(field, format!("{:?} is not a valid label name", k.0)));
        }
        pairs.push((k.0.clone(), v.0.clone()));
    }
    Ok(Labels::from_pairs(pairs))
}

/// `*_ref` fields name secrets held by a secret provider, which vigil does not have: refused,
/// so a credential is never silently missing.
pub(crate) fn no_refs(
    ctx: &Ctx<'_>,
    field: &str,
    refs: &[(&str, &Option<String>)],
) -> Result<(), ConfigError> {
    for (name, v) in refs {
        if v.is_some() {
            return Err(ctx.err(
                format!("{field}.{name}"),
                format!("{name} is not supported: vigil has no secret providers; give the secret inline or with the matching _file field"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn tls(
    ctx: &Ctx<'_>,
    field: &str,
    t: &Option<RawTls>,
) -> Result<TlsConfig, ConfigError> {
    let Some(t) = t else {
        return Ok(TlsConfig::default());
    };
    no_refs(
        ctx,
        field,
        &[
            ("ca_ref", &t.ca_ref),
            ("cert_ref", &t.cert_ref),
            ("key_ref", &t.key_ref),
        ],
    )?;
    for (a, b, n) in [(&t.ca, &t.ca_file, "ca"), (&t.cert, &t.cert_file, "cert")] {
        if a.is_some() && b.is_some() {
            return Err(ctx.err(
                field,
                format!("at most one of {n} and {n}_file must be configured"),
            ));
        }
    }
    if t.key.is_some() && t.key_file.is_some() {
        return Err(ctx.err(field, "at most one of key and key_file must be configured"));
    }
    let has_cert = t.cert.is_some() || t.cert_file.is_some();
    let has_key = t.key.is_some() || t.key_file.is_some();
    if has_cert != has_key {
        return Err(ctx.err(field, if has_cert { "exactly one of key or key_file must be configured when a client certificate is configured" } else { "exactly one of cert or cert_file must be configured when a client key is configured" }));
    }
    for v in [&t.min_version, &t.max_version].into_iter().flatten() {
        if !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13") {
            return Err(ctx.err(field, format!("unknown TLS version: {v}")));
        }
    }
    Ok(TlsConfig {
        ca_file: t.ca_file.as_deref().map(|p| ctx.path(p)),
        cert_file: t.cert_file.as_deref().map(|p| ctx.path(p)),
        key_file: t.key_file.as_deref().map(|p| ctx.path(p)),
        ca: t.ca.clone(),
        cert: t.cert.clone(),
        key: t.key.as_ref().map(|k| Secret(k.0.0.clone())),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        min_version: t.min_version.clone(),
        max_version: t.max_version.clone(),
    })
}

/// The inlined `HTTPClientConfig` fields, validated as Prometheus's common/config does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn http_client(
    ctx: &Ctx<'_>,
    field: &str,
    basic_auth: &Option<RawBasicAuth>,
    authorization: &Option<RawAuthorization>,
    oauth2: &Option<RawOAuth2>,
    bearer_token: &Option<SecretText>,
    bearer_token_file: &Option<String>,
    tls_config: &Option<RawTls>,
    proxy_url: &Option<String>,
    no_proxy: &Option<String>,
    proxy_from_environment: &Option<bool>,
    follow_redirects: &Option<bool>,
    enable_http2: &Option<bool>,
    http_headers: &Option<BTreeMap<String, RawHttpHeader>>,
) -> Result<HttpClientConfig, ConfigError> {
    if bearer_token.is_some() && bearer_token_file.is_some() {
        return Err(ctx.err(
            field,
            "at most one of bearer_token & bearer_token_file must be configured",
        ));
    }
    let has_bearer = bearer_token.is_some() || bearer_token_file.is_some();
    if (basic_auth.is_some() || oauth2.is_some()) && has_bearer {
        return Err(ctx.err(field, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"));
    }
    if [
        basic_auth.is_some(),
        oauth2.is_some(),
        authorization.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count()
        > 1
    {
        return Err(ctx.err(
            field,
            "at most one of basic_auth, oauth2 & authorization must be configured",
        ));
    }
    if authorization.is_some() && has_bearer {
        return Err(ctx.err(
            field,
            "authorization is not compatible with bearer_token & bearer_token_file",
        ));
    }
    if let Some(b) = basic_auth {
        no_refs(
            ctx,
            &format!("{field}.basic_auth"),
            &[
                ("username_ref", &b.username_ref),
                ("password_ref", &b.password_ref),
            ],
        )?;
    }
    if let Some(a) = authorization {
        no_refs(
            ctx,
            &format!("{field}.authorization"),
            &[("credentials_ref", &a.credentials_ref)],
        )?;
    }
    let basic = match basic_auth {
        None => None,
        Some(b) => {
            if b.username.is_some() && b.username_file.is_some() {
                return Err(ctx.err(
                    field,
                    "at most one of basic_auth username & username_file must be configured",
                ));
            }
            if b.password.is_some() && b.password_file.is_some() {
                return Err(ctx.err(
                    field,
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
            Some(BasicAuth {
                username: b.username.clone().map(|t| t.0).unwrap_or_default(),
                username_file: b.username_file.as_deref().map(|p| ctx.path(p)),
                password: b.password.as_ref().map(|p| Secret(p.0.0.clone())),
                password_file: b.password_file.as_deref().map(|p| ctx.path(p)),
            })
        }
    };
    let mut auth = match authorization {
        None => None,
        Some(a) => {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(ctx.err(field, "at most one of authorization credentials & credentials_file must be configured"));
            }
            let kind = a
                .kind
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "Bearer".into());
            if kind.eq_ignore_ascii_case("basic") {
                return Err(ctx.err(
                    field,
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            Some(Authorization {
                kind,
                credentials: a.credentials.as_ref().map(|c| Secret(c.0.0.clone())),
                credentials_file: a.credentials_file.as_deref().map(|p| ctx.path(p)),
            })
        }
    };
    if has_bearer {
        // bearer_token(_file) is the old spelling of authorization with type Bearer.
        auth = Some(Authorization {
            kind: "Bearer".into(),
            credentials: bearer_token.as_ref().map(|c| Secret(c.0.0.clone())),
            credentials_file: bearer_token_file.as_deref().map(|p| ctx.path(p)),
        });
    }
    let oauth = match oauth2 {
        None => None,
        Some(o) => {
            if o.client_secret.is_some() && o.client_secret_file.is_some() {
                return Err(ctx.err(
                    field,
                    "at most one of oauth2 client_secret & client_secret_file must be configured",
                ));
            }
            let f = format!("{field}.oauth2");
            no_refs(
                ctx,
                &f,
                &[
                    ("client_secret_ref", &o.client_secret_ref),
                    ("client_certificate_key_ref", &o.client_certificate_key_ref),
                ],
            )?;
            if let Some(g) = o
                .grant_type
                .as_deref()
                .filter(|g| *g != "client_credentials")
            {
                return Err(ctx.err(format!("{f}.grant_type"), format!("grant type {g:?} is not supported by vigil: only client_credentials with a client secret is (the JWT-bearer grant is not)")));
            }
            // The JWT-bearer grant's fields: refused by name rather than dropped.
            for (set, name) in [
                (o.client_certificate_key.is_some(), "client_certificate_key"),
                (
                    o.client_certificate_key_file.is_some(),
                    "client_certificate_key_file",
                ),
                (
                    o.client_certificate_key_id.is_some(),
                    "client_certificate_key_id",
                ),
                (o.signature_algorithm.is_some(), "signature_algorithm"),
                (o.iss.is_some(), "iss"),
                (o.audience.is_some(), "audience"),
                (o.claims.is_some(), "claims"),
            ] {
                if set {
                    return Err(ctx.err(format!("{f}.{name}"), format!("{name} belongs to the JWT-bearer grant, which vigil does not support: only client_credentials with a client secret is")));
                }
            }
            for (set, name) in [
                (o.proxy_url.is_some(), "proxy_url"),
                (o.no_proxy.is_some(), "no_proxy"),
                (o.proxy_from_environment.is_some(), "proxy_from_environment"),
                (o.proxy_connect_header.is_some(), "proxy_connect_header"),
            ] {
                if set {
                    return Err(ctx.err(format!("{f}.{name}"), format!("{name}: a proxy for the token endpoint is not supported by vigil; the token is fetched directly")));
                }
            }
            if o.token_url.as_deref().is_none_or(str::is_empty) {
                return Err(ctx.err(&f, "oauth2 token_url must be configured"));
            }
            Some(OAuth2 {
                client_id: o.client_id.clone().map(|t| t.0).unwrap_or_default(),
                client_secret: o.client_secret.as_ref().map(|s| Secret(s.0.0.clone())),
                client_secret_file: o.client_secret_file.as_deref().map(|p| ctx.path(p)),
                token_url: o.token_url.clone().unwrap_or_default(),
                scopes: o.scopes.clone().unwrap_or_default(),
                endpoint_params: o.endpoint_params.clone().unwrap_or_default(),
                tls_config: tls(ctx, &format!("{field}.oauth2.tls_config"), &o.tls_config)?,
            })
        }
    };
    if proxy_from_environment.unwrap_or(false) && (proxy_url.is_some() || no_proxy.is_some()) {
        return Err(ctx.err(field, "if proxy_from_environment is configured, proxy_url and no_proxy must not be configured"));
    }
    if no_proxy.is_some() && proxy_url.is_none() {
        return Err(ctx.err(
            field,
            "if no_proxy is configured, proxy_url must also be configured",
        ));
    }
    let mut headers = BTreeMap::new();
    let mut header_files = BTreeMap::new();
    for (name, h) in http_headers.iter().flatten() {
        if let Some(files) = &h.files {
            header_files.insert(name.clone(), files.iter().map(|p| ctx.path(p)).collect());
        }
        let mut vals: Vec<String> = h.values.clone().unwrap_or_default();
        vals.extend(h.secrets.iter().flatten().map(|s| s.0.0.clone()));
        headers.insert(name.clone(), vals);
    }
    Ok(HttpClientConfig {
        basic_auth: basic,
        authorization: auth,
        oauth2: oauth,
        tls_config: tls(ctx, &format!("{field}.tls_config"), tls_config)?,
        proxy_url: proxy_url.clone(),
        no_proxy: no_proxy.clone(),
        proxy_from_environment: proxy_from_environment.unwrap_or(false),
        follow_redirects: follow_redirects.unwrap_or(true),
        enable_http2: enable_http2.unwrap_or(true),
        http_headers: headers,
        http_header_files: header_files,
    })
}

macro_rules! http_of {
    ($ctx:expr, $field:expr, $r:expr) => {
        http_client(
            $ctx,
            $field,
            &$r.basic_auth,
            &$r.authorization,
            &$r.oauth2,
            &$r.bearer_token,
            &$r.bearer_token_file,
            &$r.tls_config,
            &$r.proxy_url,
            &$r.no_proxy,
            &$r.proxy_from_environment,
            &$r.follow_redirects,
            &$r.enable_http2,
            &$r.http_headers,
        )
    };
}
pub(crate) use http_of;
