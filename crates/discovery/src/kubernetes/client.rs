//! A kube client for one `kubernetes_sd_config`: `api_server` with Prometheus's HTTP client
//! options, a kubeconfig file, or the in-cluster service account (token re-read by kube as it
//! rotates).

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use vigil_config::KubernetesSdConfig;

pub async fn build(cfg: &KubernetesSdConfig) -> Result<kube::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = if let Some(api) = &cfg.api_server {
        let uri: http::Uri = api
            .parse()
            .map_err(|e| format!("api_server {api:?}: {e}"))?;
        let mut c = kube::Config::new(uri);
        apply_http_client(&mut c, &cfg.http_client)?;
        c
    } else if let Some(path) = &cfg.kubeconfig_file {
        let k =
            Kubeconfig::read_from(path).map_err(|e| format!("kubeconfig_file {path:?}: {e}"))?;
        kube::Config::from_custom_kubeconfig(k, &KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubeconfig_file {path:?}: {e}"))?
    } else {
        kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?
    };
    kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

fn apply_http_client(
    c: &mut kube::Config,
    h: &vigil_config::HttpClientConfig,
) -> Result<(), String> {
    let mut auth = AuthInfo::default();
    if let Some(a) = &h.authorization {
        if let Some(t) = &a.credentials {
            auth.token = Some(t.0.clone().into());
        }
        auth.token_file = a.credentials_file.clone();
    }
    if let Some(b) = &h.basic_auth {
        auth.username = Some(match &b.username_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("basic_auth username_file {f:?}: {e}"))?
                .trim_end()
                .to_string(),
            None => b.username.clone(),
        });
        let password = match (&b.password, &b.password_file) {
            (Some(p), _) => p.0.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("basic_auth password_file {f:?}: {e}"))?
                .trim_end()
                .to_string(),
            (None, None) => String::new(),
        };
        auth.password = Some(password.into());
    }
    // The config loader refuses what this client cannot do (oauth2, inline TLS material,
    // TLS versions, no_proxy, proxy_from_environment, non-Bearer authorization).
    let t = &h.tls_config;
    if let Some(ca) = &t.ca_file {
        c.root_cert_file = Some(ca.into());
    }
    auth.client_certificate = t.cert_file.clone();
    auth.client_key = t.key_file.clone();
    c.accept_invalid_certs = t.insecure_skip_verify;
    c.tls_server_name = t.server_name.clone();
    if let Some(p) = &h.proxy_url {
        c.proxy_url = Some(p.parse().map_err(|e| format!("proxy_url {p:?}: {e}"))?);
    }
    for (name, values) in &h.http_headers {
        for v in values {
            let n = http::HeaderName::try_from(name.as_str())
                .map_err(|e| format!("http_headers {name:?}: {e}"))?;
            let v = http::HeaderValue::try_from(v.as_str())
                .map_err(|e| format!("http_headers {name:?}: {e}"))?;
            c.headers.push((n, v));
        }
    }
    c.auth_info = auth;
    Ok(())
}
