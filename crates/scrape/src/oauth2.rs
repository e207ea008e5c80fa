//! `oauth2` for scrapes: the client-credentials grant, as Go's `clientcredentials` package
//! does it. The token is fetched from `token_url` (client id and secret as HTTP basic auth,
//! `grant_type=client_credentials`, the scopes and `endpoint_params` in the form), kept until
//! ten seconds before it expires, and sent as `Authorization: <token_type> <access_token>`.

use std::time::{Duration, Instant};

use vigil_config::OAuth2;

/// A token source for one scrape pool.
pub struct TokenSource {
    cfg: OAuth2,
    client: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, Option<Instant>)>>,
}

impl TokenSource {
    pub fn new(cfg: &OAuth2) -> Result<TokenSource, crate::client::ClientError> {
        use crate::client::ClientError;
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let t = &cfg.tls_config;
        if crate::tls::needs_own_config(t) {
            b = b.tls_backend_preconfigured(crate::tls::client_config(t)?);
        } else {
            let ca = match (&t.ca_file, &t.ca) {
                (Some(f), _) => Some(crate::client::read_file(f, "oauth2 CA file")?),
                (None, Some(c)) => Some(c.as_bytes().to_vec()),
                _ => None,
            };
            if let Some(pem) = ca {
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    ClientError::OAuth2(format!("unable to use specified CA cert: {e}"))
                })?;
                b = b.tls_certs_only(certs);
            }
            if t.insecure_skip_verify {
                b = b.tls_danger_accept_invalid_certs(true);
            }
        }
        Ok(TokenSource {
            cfg: cfg.clone(),
            client: b
                .build()
                .map_err(|e| ClientError::OAuth2(format!("unable to build HTTP client: {e}")))?,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// The `Authorization` header value, from the cache or a new token.
    pub async fn header(&self) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if let Some((h, expiry)) = cached.as_ref()
            && expiry.is_none_or(|e| Instant::now() + Duration::from_secs(10) < e)
        {
            return Ok(h.clone());
        }
        let secret = match (&self.cfg.client_secret, &self.cfg.client_secret_file) {
            (_, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("oauth2: unable to read client_secret_file {f}: {e}"))?
                .trim()
                .to_string(),
            (Some(s), None) => s.0.clone(),
            (None, None) => String::new(),
        };
        let mut form: Vec<(String, String)> =
            vec![("grant_type".into(), "client_credentials".into())];
        if !self.cfg.scopes.is_empty() {
            form.push(("scope".into(), self.cfg.scopes.join(" ")));
        }
        for (k, v) in &self.cfg.endpoint_params {
            form.push((k.clone(), v.clone()));
        }
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = self
            .client
            .post(&self.cfg.token_url)
            .basic_auth(&self.cfg.client_id, Some(secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "oauth2: cannot fetch token from {}: {e}",
                    self.cfg.token_url
                )
            })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("oauth2: cannot fetch token: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "oauth2: cannot fetch token: {status}: {}",
                text.chars().take(200).collect::<String>()
            ));
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("oauth2: token response is not JSON: {e}"))?;
        let token = v["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or("oauth2: server response missing access_token")?;
        let kind = match v["token_type"].as_str() {
            None | Some("") => "Bearer",
            Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer",
            Some(t) => t,
        };
        let expiry = v["expires_in"]
            .as_f64()
            .or_else(|| v["expires_in"].as_str().and_then(|s| s.parse().ok()))
            // A hostile or broken server may answer `1e300` or `inf`: cap at a day
            // so the token is fetched again rather than the arithmetic panicking.
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Instant::now() + Duration::from_secs_f64(s.min(86_400.0)));
        let h = format!("{kind} {token}");
        *cached = Some((h.clone(), expiry));
        Ok(h)
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
