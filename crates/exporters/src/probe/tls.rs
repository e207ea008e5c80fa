//! TLS for the probers: a rustls client built from a module's `tls_config` (system roots plus
//! `ca_file`, client certificate, `server_name`, `insecure_skip_verify`, version bounds), and
//! the certificate metrics the blackbox exporter reports after a handshake.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use super::Outcome;
use super::cert;

/// A module's `tls_config`, ready to connect with.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub server_name: Option<String>,
    pub verify: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .field("verify", &self.verify)
            .finish()
    }
}

/// Accepts any certificate (`insecure_skip_verify: true`); signatures are still checked so the
/// handshake itself is sound.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// rustls' web PKI verifier, plus Go's acceptance of a trusted self-signed certificate used
/// directly as the server's (webpki refuses a CA certificate as an end entity; Go's
/// `x509.Verify` accepts a leaf that is itself in the root pool). The name and the validity
/// period are still checked for that case.
#[derive(Debug)]
struct Verifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    trusted: Vec<Vec<u8>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(e)
                if self
                    .trusted
                    .iter()
                    .any(|t| t.as_slice() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                let expired =
                    cert::parse(end_entity).is_none_or(|c| c.not_after < now.as_secs() as i64);
                if expired {
                    return Err(e);
                }
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

const TLS_KEYS: [&str; 7] = [
    "ca_file",
    "cert_file",
    "key_file",
    "server_name",
    "insecure_skip_verify",
    "min_version",
    "max_version",
];

impl Tls {
    /// From a `tls_config` section (absent: system roots, verification on).
    pub fn from_json(v: &Value, section: &str) -> Result<Tls, String> {
        for k in v.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !TLS_KEYS.contains(&k.as_str()) {
                return Err(format!("{section}: unknown or unsupported field {k:?}"));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // TLS 1.2 and 1.3 are what rustls speaks; the bounds narrow them.
        let bound = |key: &str| -> Result<Option<u8>, String> {
            match v[key].as_str() {
                None => Ok(None),
                Some("TLS12") => Ok(Some(12)),
                Some("TLS13") => Ok(Some(13)),
                Some(o) => Err(format!(
                    "{section}.{key}: {o:?} is not supported (TLS12 and TLS13 are)"
                )),
            }
        };
        let (min, max) = (bound("min_version")?, bound("max_version")?);
        let versions: Vec<&'static rustls::SupportedProtocolVersion> =
            [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
                .into_iter()
                .filter(|(r, _)| min.is_none_or(|m| *r >= m) && max.is_none_or(|m| *r <= m))
                .map(|(_, v)| v)
                .collect();
        if versions.is_empty() {
            return Err(format!("{section}: min_version is above max_version"));
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("{section}: {e}"))?;
        let verify = !v["insecure_skip_verify"].as_bool().unwrap_or(false);
        let builder = if verify {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
            let mut trusted = Vec::new();
            if let Some(f) = v["ca_file"].as_str() {
                let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(f)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| format!("{section}.ca_file {f:?}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("{section}.ca_file {f:?}: no certificate in it"));
                }
                for c in certs {
                    trusted.push(c.as_ref().to_vec());
                    roots
                        .add(c)
                        .map_err(|e| format!("{section}.ca_file {f:?}: {e}"))?;
                }
            }
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| format!("{section}: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier { inner, trusted }))
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        };
        let config = match (v["cert_file"].as_str(), v["key_file"].as_str()) {
            (Some(c), Some(k)) => {
                let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(c)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| format!("{section}.cert_file {c:?}: {e}"))?;
                let key = PrivateKeyDer::from_pem_file(k)
                    .map_err(|e| format!("{section}.key_file {k:?}: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("{section}: client certificate: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(format!("{section}: cert_file and key_file go together")),
        };
        Ok(Tls {
            config: Arc::new(config),
            server_name: v["server_name"].as_str().map(str::to_string),
            verify,
        })
    }

    /// Handshake over `stream` with `host` as the name to check (unless `server_name` is set).
    pub async fn connect(
        &self,
        host: &str,
        stream: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let sn = ServerName::try_from(name.to_string())
            .map_err(|e| format!("invalid server name {name:?}: {e}"))?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(sn, stream)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The exporter's certificate metrics after a handshake: earliest expiry over the presented
/// certificates, the TLS version, and the leaf's identity with the expiry of its chain.
pub fn report(out: &mut Outcome, conn: &rustls::ClientConnection, verified: bool) {
    let certs = conn.peer_certificates().unwrap_or(&[]);
    let parsed: Vec<Option<cert::CertInfo>> = certs.iter().map(|c| cert::parse(c)).collect();
    if let Some(earliest) = parsed.iter().flatten().map(|c| c.not_after).min() {
        out.set("probe_ssl_earliest_cert_expiry", "", earliest as f64);
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "unknown",
    };
    out.set(
        "probe_tls_version_info",
        &format!("version=\"{version}\""),
        1.0,
    );
    let (Some(Some(leaf)), Some(der)) = (parsed.first(), certs.first()) else {
        return;
    };
    // The chain: from the leaf, each certificate's issuer among those presented, until a
    // self-signed one or a missing link (rustls does not hand back the path it built; this
    // leaves out extra certificates a server sends, as Go's verified chains do, but lacks the
    // root when the server does not send it). Without verification there is no chain, and the
    // exporter reports Go's zero time.
    let chain_expiry =
        if verified {
            let mut chain = vec![leaf];
            let mut cur = leaf;
            while cur.issuer != cur.subject && chain.len() < 10 {
                match parsed.iter().flatten().find(|c| {
                    c.subject == cur.issuer && !chain.iter().any(|x| std::ptr::eq(*x, *c))
                }) {
                    Some(next) => {
                        chain.push(next);
                        cur = next;
                    }
                    None => break,
                }
            }
            chain
                .iter()
                .map(|c| c.not_after)
                .min()
                .unwrap_or(GO_ZERO_TIME)
        } else {
            GO_ZERO_TIME
        };
    out.set(
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "",
        chain_expiry as f64,
    );
    let esc = crate::exposition::escape_label_value;
    out.set(
        "probe_ssl_last_chain_info",
        &format!(
            "fingerprint_sha256=\"{}\",issuer=\"{}\",subject=\"{}\",subjectalternative=\"{}\"",
            cert::fingerprint_sha256(der),
            esc(&leaf.issuer),
            esc(&leaf.subject),
            esc(&leaf.dns_names.join(","))
        ),
        1.0,
    );
}

/// `time.Time{}.Unix()` in Go: January 1 of year 1.
const GO_ZERO_TIME: i64 = -62135596800;
