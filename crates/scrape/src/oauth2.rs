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
        let text = read_bounded(resp).await?;
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

/// The most of a token response read, as Go's oauth2 package reads (1 MiB): a token server
/// that answers without end fails its fetch instead of growing the process.
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

async fn read_bounded(mut resp: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("oauth2: cannot fetch token: {e}"))?
    {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
            return Err(format!(
                "oauth2: cannot fetch token: the response is longer than {MAX_TOKEN_RESPONSE} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A token server that streams without end fails the fetch, naming the bound, once 1 MiB
    /// has come; a token of an ordinary size is still read.
    #[tokio::test]
    async fn an_endless_token_response_fails_at_the_bound() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = c.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    if req.starts_with("POST /small") {
                        let body =
                            r#"{"access_token":"t0k","token_type":"bearer","expires_in":3600}"#;
                        let _ = c
                            .write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
                            .await;
                        return;
                    }
                    let _ = c
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"access_token\":\"")
                        .await;
                    let chunk = vec![b'a'; 64 << 10];
                    // At most 64 MiB, so a failing test ends too.
                    for _ in 0..1024 {
                        if c.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let cfg = |path: &str| OAuth2 {
            client_id: "c".into(),
            token_url: format!("http://127.0.0.1:{port}/{path}"),
            ..Default::default()
        };
        crate::client::install_crypto_provider();
        let src = TokenSource::new(&cfg("endless")).unwrap();
        let err = src.header().await.unwrap_err();
        assert!(err.contains("longer than 1048576 bytes"), "{err}");
        let src = TokenSource::new(&cfg("small")).unwrap();
        assert_eq!(src.header().await.unwrap(), "Bearer t0k");
    }
}
