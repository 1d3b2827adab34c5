//! Serving certificate: PEM loading, a resolver whose certificate can be swapped while the
//! listener runs, the reload task, and self-signed certificates for local runs.
//!
//! Rotation reads the files' contents through their paths on every poll and compares bytes,
//! so the kubelet's `..data` symlink swap is seen like any other change. A new pair is used
//! only when it parses and its key matches its certificate; otherwise the last good pair
//! keeps serving.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

/// Why a certificate pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate PEM: {0}")]
    CertificatePem(String),
    #[error("certificate PEM holds no CERTIFICATE block")]
    NoCertificate,
    #[error("private key PEM: {0} (expected PKCS#8, PKCS#1 RSA or SEC1 EC)")]
    KeyPem(String),
    #[error("certificate and key do not go together: {0}")]
    Mismatch(String),
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("generating a certificate: {0}")]
    Generate(String),
}

/// The crypto provider used for serving (ring, as compiled in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain (leaf first, intermediates allowed) and a PEM private key,
/// and checks that the key belongs to the leaf certificate.
pub fn load_certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::CertificatePem(err.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| TlsError::KeyPem(err.to_string()))?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| TlsError::KeyPem(err.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // A key whose public half is unknown cannot be checked here; ring's keys all expose it.
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(err) => Err(TlsError::Mismatch(err.to_string())),
    }
}

/// A certificate chain as PEM, leaf first (64 base64 characters a line, RFC 7468).
pub fn chain_pem(chain: &[CertificateDer<'_>]) -> String {
    use base64::Engine;
    let mut pem = String::new();
    for cert in chain {
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        // Base64 is ASCII, so every 64-byte chunk is valid UTF-8.
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// Holds the current certificate; rustls asks it on every handshake.
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl CertResolver {
    pub fn new(key: CertifiedKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// The certificate new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer cannot panic while holding the lock (it only assigns), but stay total.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the certificate; connections already established keep theirs.
    pub fn swap(&self, key: CertifiedKey) {
        let key = Arc::new(key);
        match self.current.write() {
            Ok(mut guard) => *guard = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server configuration serving `resolver`'s certificate with ALPN h2 and http/1.1.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Config(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The two files of a certificate pair, as mounted from a Secret.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The bytes of both files, read through their paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairContents {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl CertFiles {
    pub async fn read(&self) -> Result<PairContents, TlsError> {
        Ok(PairContents {
            cert: read_file(&self.cert).await?,
            key: read_file(&self.key).await?,
        })
    }

    /// Loads the pair once, for the start of the process.
    pub async fn load(&self) -> Result<(CertifiedKey, PairContents), TlsError> {
        let contents = self.read().await?;
        let key = load_certified_key(&contents.cert, &contents.key)?;
        Ok((key, contents))
    }
}

async fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Polls `files` every `interval` until `shutdown` turns true; swaps in every changed pair
/// that is valid. Never panics and never gives up: a bad pair is logged and reported once
/// (`on_reload(false)`), and the last good pair keeps serving; a good one is `on_reload(true)`.
/// The callback keeps this module free of the metrics (the caller counts).
pub async fn reload_certificates(
    files: CertFiles,
    resolver: Arc<CertResolver>,
    on_reload: impl Fn(bool) + Send + 'static,
    mut last: PairContents,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_read_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let contents = match files.read().await {
            Ok(contents) => {
                last_read_error = None;
                contents
            }
            Err(err) => {
                // Files missing for a moment (or for good): say so once, keep serving.
                let text = err.to_string();
                if last_read_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "cannot read the serving certificate; keeping the current one");
                    last_read_error = Some(text);
                }
                continue;
            }
        };
        if contents == last {
            continue;
        }
        match load_certified_key(&contents.cert, &contents.key) {
            Ok(key) => {
                resolver.swap(key);
                on_reload(true);
                tracing::info!(cert = %files.cert.display(), "serving certificate reloaded");
                last = contents;
            }
            Err(err) => {
                // The two files may have been read on both sides of an update: look again
                // before calling the pair bad.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if matches!(files.read().await, Ok(again) if again != contents) {
                    continue;
                }
                on_reload(false);
                tracing::error!(error = %err, cert = %files.cert.display(), key = %files.key.display(),
                    "new serving certificate rejected; keeping the last good one");
                last = contents;
            }
        }
    }
}

/// A generated certificate and its key, PEM encoded.
#[derive(Debug, Clone)]
pub struct GeneratedPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed certificate for `names` (DNS names or IP addresses).
pub fn self_signed(names: &[&str]) -> Result<GeneratedPair, TlsError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|err| TlsError::Generate(err.to_string()))?;
    Ok(GeneratedPair {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
    })
}

/// Names of the local self-signed certificate.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate authority that signs serving certificates: the CA of the self-managed mode,
/// and the one the tests and the soak run rotate serving certificates under.
pub struct CertificateAuthority {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

/// A serving certificate (the leaf alone, PEM) and its key, signed by a
/// [`CertificateAuthority`].
#[derive(Debug, Clone)]
pub struct IssuedPair {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
}

impl CertificateAuthority {
    /// A new CA, valid from a year ago for ten years, that signs leaves only.
    pub fn new(common_name: &str) -> Result<Self, TlsError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(generate)?;
        set_validity(&mut params);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let cert = params.self_signed(&key).map_err(generate)?;
        Ok(Self { params, key, cert })
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        self.cert.der()
    }

    /// A serving certificate for `names` (DNS names or IP addresses; the first is also the
    /// common name) with a fresh key.
    pub fn issue(&self, names: &[String]) -> Result<IssuedPair, TlsError> {
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(generate)?;
        set_validity(&mut params);
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(generate)?;
        Ok(IssuedPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
        })
    }
}

fn generate(err: rcgen::Error) -> TlsError {
    TlsError::Generate(err.to_string())
}

/// Valid from a year ago to ten years on: tolerant of clock skew, long enough not to need
/// rotation in the self-managed mode.
fn set_validity(params: &mut rcgen::CertificateParams) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Close enough for validity bounds a year on either side.
    let year = 1970 + i32::try_from(seconds / 31_556_952).unwrap_or(56);
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_generated_pair_and_rejects_mismatches() {
        let a = self_signed(&LOCAL_NAMES).unwrap();
        let b = self_signed(&LOCAL_NAMES).unwrap();
        assert!(load_certified_key(a.cert_pem.as_bytes(), a.key_pem.as_bytes()).is_ok());
        let err = load_certified_key(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch(_)), "{err}");
        assert!(matches!(
            load_certified_key(b"", a.key_pem.as_bytes()),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            load_certified_key(a.cert_pem.as_bytes(), b"garbage"),
            Err(TlsError::KeyPem(_))
        ));
        let truncated = &a.cert_pem.as_bytes()[..a.cert_pem.len() / 2];
        assert!(load_certified_key(truncated, a.key_pem.as_bytes()).is_err());
    }

    #[test]
    fn accepts_a_chain_with_intermediates() {
        let leaf = self_signed(&LOCAL_NAMES).unwrap();
        let other = self_signed(&["ca.example"]).unwrap();
        let chain = format!("{}{}", leaf.cert_pem, other.cert_pem);
        let key = load_certified_key(chain.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
        assert_eq!(key.cert.len(), 2);
    }

    #[test]
    fn a_chain_written_as_pem_reads_back_the_same() {
        let leaf = self_signed(&LOCAL_NAMES).unwrap();
        let other = self_signed(&["ca.example"]).unwrap();
        let chain = format!("{}{}", leaf.cert_pem, other.cert_pem);
        let key = load_certified_key(chain.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
        let pem = chain_pem(&key.cert);
        let read: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, key.cert);
        assert!(pem.lines().all(|line| line.len() <= 64), "{pem}");
    }

    #[test]
    fn resolver_swaps() {
        let a = self_signed(&LOCAL_NAMES).unwrap();
        let b = self_signed(&LOCAL_NAMES).unwrap();
        let key_a = load_certified_key(a.cert_pem.as_bytes(), a.key_pem.as_bytes()).unwrap();
        let key_b = load_certified_key(b.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap();
        let leaf_b = key_b.cert[0].clone();
        let resolver = CertResolver::new(key_a);
        resolver.swap(key_b);
        assert_eq!(resolver.current().cert[0], leaf_b);
        assert!(server_config(Arc::new(resolver)).is_ok());
    }
}
