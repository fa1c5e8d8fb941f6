//! TLS termination for [`super::serve_with`]: the certificate chain, its key and optionally the
//! CA that client certificates must chain to, read from PEM files and reloaded when they change.
//!
//! [`TlsReloader::reload`] reads the three files and compares a digest of their bytes with the
//! last ones tried, so that it works however the files are replaced: rewritten in place, renamed
//! over, or swapped as a whole directory by Kubernetes (the `..data` symlink of a mounted
//! Secret). New contents that do not make a working configuration (a PEM that does not parse, a
//! key that is not the certificate's, a chain being written while the key is not yet) are refused
//! and logged, and the configuration in use stays; the same contents are not tried again until a
//! file changes, or a reload is forced (SIGHUP). Each handshake takes the configuration current
//! when its connection was accepted, so connections already open keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use sha2::{Digest, Sha256};

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first, PEM.
    pub certificate: PathBuf,
    /// The leaf's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients may present a certificate, which must chain to one of these CAs (PEM);
    /// whether one that presents none is served is `client_auth` (tenants bound to a
    /// certificate are checked by the API either way).
    pub client_ca: Option<PathBuf>,
    /// Whether the handshake demands a client certificate (only with `client_ca`).
    pub client_auth: ClientAuth,
}

/// Whether clients must present a certificate to connect at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client may present a certificate; one without is served, and only clients bound to
    /// certificates are refused without theirs.
    #[default]
    Optional,
    /// The handshake fails without a certificate that chains to `client_ca`: every caller,
    /// probes included, must have one.
    Required,
}

/// Why a set of files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The files hold what is in use (or what was refused last time).
    Unchanged,
    /// New contents are in use from the next handshake on.
    Reloaded(CertificateSummary),
    /// New contents were refused; the previous configuration stays.
    Refused(String),
}

/// What operators want to know of a certificate in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The leaf's serial number, hexadecimal.
    pub serial: String,
    /// The leaf's subject.
    pub subject: String,
    /// When the leaf expires, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// The TLS configuration in use, and how to renew it from the files.
pub struct TlsReloader {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The digest of the contents last tried, accepted or refused.
    tried: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Loads the files once; at startup a failure is an error (there is nothing to fall back on).
    pub fn load(files: TlsFiles) -> Result<(Self, CertificateSummary), TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = Contents::read(&files)?;
        let (config, summary) = build(&files, &contents, &provider)?;
        record(&summary);
        Ok((
            Self {
                files,
                provider,
                current: RwLock::new(Arc::new(config)),
                tried: Mutex::new(contents.digest()),
            },
            summary,
        ))
    }

    /// The configuration new handshakes use.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and, if their contents changed since last tried (or `force`), puts
    /// them in use when they make a working configuration. Logs and counts the outcome
    /// (`kontor_tls_reloads_total{result}`).
    pub fn reload(&self, force: bool) -> Reload {
        let outcome = self.try_reload(force);
        match &outcome {
            Reload::Unchanged => {}
            Reload::Reloaded(summary) => {
                tracing::info!(
                    serial = %summary.serial,
                    subject = %summary.subject,
                    not_after = summary.not_after,
                    "TLS certificate reloaded"
                );
                metrics::counter!("kontor_tls_reloads_total", "result" => "reloaded").increment(1);
                record(summary);
            }
            Reload::Refused(problem) => {
                tracing::error!(
                    problem = %problem,
                    "new TLS certificate files refused; the certificate in use stays"
                );
                metrics::counter!("kontor_tls_reloads_total", "result" => "refused").increment(1);
            }
        }
        outcome
    }

    fn try_reload(&self, force: bool) -> Reload {
        let contents = match Contents::read(&self.files) {
            Ok(contents) => contents,
            // A file missing for a moment (replaced by a rename) is refused once, not each poll.
            Err(err) => return self.refuse_once(force, err.to_string()),
        };
        let digest = contents.digest();
        let mut tried = match self.tried.lock() {
            Ok(tried) => tried,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *tried == digest && !force {
            return Reload::Unchanged;
        }
        *tried = digest;
        drop(tried);
        match build(&self.files, &contents, &self.provider) {
            Ok((config, summary)) => {
                let mut current = match self.current.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = Arc::new(config);
                Reload::Reloaded(summary)
            }
            Err(err) => Reload::Refused(err.to_string()),
        }
    }

    fn refuse_once(&self, force: bool, problem: String) -> Reload {
        let digest: [u8; 32] = Sha256::digest(problem.as_bytes()).into();
        let mut tried = match self.tried.lock() {
            Ok(tried) => tried,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *tried == digest && !force {
            return Reload::Unchanged;
        }
        *tried = digest;
        Reload::Refused(problem)
    }
}

/// Sets the gauges that describe the certificate in use.
fn record(summary: &CertificateSummary) {
    #[expect(clippy::cast_precision_loss, reason = "seconds since the epoch fit")]
    metrics::gauge!("kontor_tls_certificate_not_after_seconds").set(summary.not_after as f64);
}

/// The files' bytes, read together.
struct Contents {
    certificate: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Contents {
    /// Reads the files until the certificate is the same after the others as before them, so
    /// that a replacement landing between two reads is not taken for a mismatched pair.
    fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        let mut certificate = read(&files.certificate)?;
        for _ in 0..3 {
            let key = read(&files.key)?;
            let client_ca = files.client_ca.as_deref().map(read).transpose()?;
            let again = read(&files.certificate)?;
            if again == certificate {
                return Ok(Self {
                    certificate,
                    key,
                    client_ca,
                });
            }
            certificate = again;
        }
        Err(invalid(
            &files.certificate,
            "kept changing while it was read",
        ))
    }

    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [
            Some(&self.certificate),
            Some(&self.key),
            self.client_ca.as_ref(),
        ] {
            let part = part.map_or(&[][..], Vec::as_slice);
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, problem: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(path, format!("not a PEM certificate list: {err}")))?;
    if certificates.is_empty() {
        return Err(invalid(path, "holds no certificate"));
    }
    Ok(certificates)
}

fn build(
    files: &TlsFiles,
    contents: &Contents,
    provider: &Arc<CryptoProvider>,
) -> Result<(rustls::ServerConfig, CertificateSummary), TlsError> {
    let chain = certificates(&files.certificate, &contents.certificate)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key)
        .map_err(|err| invalid(&files.key, format!("not a PEM private key: {err}")))?;
    let summary = summarize(&files.certificate, &chain[0])?;
    let verifier: Arc<dyn ClientCertVerifier> = match (&files.client_ca, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(path, pem)? {
                roots.add(ca).map_err(|err| invalid(path, err))?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            match files.client_auth {
                ClientAuth::Optional => builder.allow_unauthenticated(),
                ClientAuth::Required => builder,
            }
            .build()
            .map_err(|err| invalid(path, err))?
        }
        _ => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, summary))
}

fn summarize(path: &Path, leaf: &CertificateDer<'_>) -> Result<CertificateSummary, TlsError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|err| invalid(path, format!("the first certificate does not parse: {err}")))?;
    let not_after = parsed.validity().not_after.timestamp();
    let now = UnixTime::now().as_secs();
    if i64::try_from(now).is_ok_and(|now| not_after < now) {
        return Err(invalid(path, "the certificate has expired"));
    }
    Ok(CertificateSummary {
        serial: parsed.raw_serial_as_string().replace(':', ""),
        subject: parsed.subject().to_string(),
        not_after,
    })
}

/// The SHA-256 digest of a client's certificate (DER), as RFC 8705 binds tokens to it
/// (`x5t#S256`, base64url of these bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCertificate(pub [u8; 32]);

impl ClientCertificate {
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Lower-case hexadecimal, as stored.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What `kontor clients bind --certificate` reads: the first certificate of a PEM file, its
/// thumbprint, and its subject and expiry to show the operator what was bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemCertificate {
    pub thumbprint: kontor_domain::CertificateThumbprint,
    pub subject: String,
    pub not_after: i64,
}

/// Reads the first certificate of `pem`; a PEM without one, or whose first does not parse as
/// X.509, is refused with the reason.
pub fn pem_certificate(pem: &[u8]) -> Result<PemCertificate, String> {
    let first = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")?
        .map_err(|err| format!("not a PEM certificate: {err}"))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|err| format!("the certificate does not parse: {err}"))?;
    Ok(PemCertificate {
        thumbprint: kontor_domain::CertificateThumbprint::of_der(first.as_ref()),
        subject: parsed.subject().to_string(),
        not_after: parsed.validity().not_after.timestamp(),
    })
}
