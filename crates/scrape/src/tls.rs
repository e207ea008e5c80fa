//! `tls_config.server_name`: the name a target's certificate is checked against when it is
//! not the host the target is scraped at (pods are scraped by IP). reqwest checks the URL's
//! host, so with a server name the scraper's TLS is built here: the CA (or the system's roots),
//! the client certificate, the versions, and a verifier that checks the chain and the name
//! `server_name` gives. Go also sends that name as SNI; `client::Scraper` does the same by
//! sending HTTPS requests to that name, pinned to the target's address.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use vigil_config::TlsConfig;

use crate::client::{ClientError, read_file};

/// Whether this machine has no CA certificates (none in `SSL_CERT_FILE`, `SSL_CERT_DIR` or
/// the system's store), read once. reqwest then refuses to build a client at all, which would
/// stop plain-HTTP scrapes too; such clients are built by [`client_config`] instead, whose
/// HTTPS connections fail naming the reason, as Go's do with an empty root pool.
pub fn system_roots_missing() -> bool {
    static MISSING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MISSING.get_or_init(|| {
        // Counted as reqwest's verifier counts them: certificates that parse.
        let mut roots = RootCertStore::empty();
        let (valid, _) =
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let missing = valid == 0;
        if missing {
            tracing::warn!("no CA certificates on this machine (SSL_CERT_FILE, SSL_CERT_DIR, /etc/ssl/certs): HTTPS endpoints without tls_config.ca_file will fail certificate checks");
        }
        missing
    })
}

/// Whether a client for `t` must be built here rather than by reqwest: it names a
/// `server_name`, or it relies on the system's roots and there are none.
pub fn needs_own_config(t: &TlsConfig) -> bool {
    t.server_name.is_some() || (t.ca_file.is_none() && t.ca.is_none() && system_roots_missing())
}

/// The rustls client config for `t`: the certificate is checked against its `server_name`
/// (the URL's host without one) with its CA or the system's roots.
pub fn client_config(t: &TlsConfig) -> Result<rustls::ClientConfig, ClientError> {
    let server_name = match &t.server_name {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| ClientError::Tls(format!("tls_config.server_name {name:?}: {e}")))?,
        ),
        None => None,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let ca = match (&t.ca_file, &t.ca) {
        (Some(f), _) => Some(read_file(f, "CA file")?),
        (None, Some(c)) => Some(c.as_bytes().to_vec()),
        _ => None,
    };
    match ca {
        Some(pem) => {
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| {
                    ClientError::Tls(format!("unable to use specified CA cert: {e}"))
                })?;
                roots.add(c).map_err(|e| {
                    ClientError::Tls(format!("unable to use specified CA cert: {e}"))
                })?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let version = |v: &str| match v {
        "TLS13" => 13,
        "TLS12" => 12,
        _ => 12,
    };
    let (lo, hi) = (
        t.min_version.as_deref().map_or(12, version),
        t.max_version.as_deref().map_or(13, version),
    );
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if lo <= 12 && hi >= 12 {
        versions.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if roots.is_empty() && (t.ca_file.is_some() || t.ca.is_some()) {
        return Err(ClientError::Tls(
            "unable to use specified CA cert: no certificate in it".into(),
        ));
    }
    let inner = if roots.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ClientError::Tls(format!("tls_config: {e}")))?,
        )
    };
    let verifier = Arc::new(NamedVerifier {
        inner,
        name: server_name,
        skip: t.insecure_skip_verify,
        algs: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| ClientError::Tls(format!("tls_config: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cert = match (&t.cert_file, &t.cert) {
        (Some(f), _) => Some(read_file(f, "client certificate")?),
        (None, Some(c)) => Some(c.as_bytes().to_vec()),
        _ => None,
    };
    let key = match (&t.key_file, &t.key) {
        (Some(f), _) => Some(read_file(f, "client key")?),
        (None, Some(k)) => Some(k.0.as_bytes().to_vec()),
        _ => None,
    };
    let mut cfg = match (cert, key) {
        (Some(c), Some(k)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&c)
                .collect::<Result<_, _>>()
                .map_err(|e| ClientError::Tls(format!("unable to use client certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(&k)
                .map_err(|e| ClientError::Tls(format!("unable to use client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ClientError::Tls(format!("unable to use client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Checks the chain as usual, against `name` when there is one rather than the URL's host;
/// with `insecure_skip_verify` accepts any certificate (handshake signatures still checked).
/// With no roots to check against (`inner` none) every certificate fails, saying why.
#[derive(Debug)]
struct NamedVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    name: Option<ServerName<'static>>,
    skip: bool,
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        url_host: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.skip {
            return Ok(ServerCertVerified::assertion());
        }
        let Some(inner) = &self.inner else {
            return Err(rustls::Error::General(
                "no CA certificates to check the server's certificate against: none on this machine and no tls_config.ca_file".into(),
            ));
        };
        let name = self.name.as_ref().unwrap_or(url_host);
        inner.verify_server_cert(end_entity, intermediates, name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
