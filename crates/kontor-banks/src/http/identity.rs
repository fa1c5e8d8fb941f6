//! The hub's TLS client identity at a bank (its QWAC or OBWAC): a certificate chain and private
//! key read from PEM files and presented on every new TLS connection through a rustls
//! resolver. The files are read again when their contents change (an atomic rename, or the
//! Kubernetes secret volume's `..data` symlink swap: reading through the path follows it);
//! what does not parse, or whose key does not belong to its certificate, is refused with an
//! error log and the identity in use stays. Connections already open keep the identity they
//! were made with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use super::certificate::CertificateInfo;

/// The Prometheus gauge with each identity's `notAfter`.
pub const EXPIRY_METRIC: &str = "kontor_certificate_expiry_timestamp_seconds";

pub use kontor_domain::certificate::{EXPIRY_WARNING_DAYS, ExpiryStatus};

/// Where an identity's PEM files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFiles {
    /// The certificate chain, leaf first (and the key too, when `key` is `None`).
    pub certificate: PathBuf,
    /// The private key (PKCS #8, PKCS #1 or SEC1), when it is in a file of its own.
    pub key: Option<PathBuf>,
}

/// Whose identity this is, for logs and the expiry metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLabel {
    pub bank: String,
    /// The tenant with its own registration at the bank; `None` for the hub's.
    pub tenant: Option<String>,
    /// `tls` for the transport certificate, `seal` for the signing one (QSealC, OBSeal).
    pub kind: &'static str,
}

/// Why an identity's files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The identity in use.
struct Loaded {
    key: Arc<CertifiedKey>,
    info: CertificateInfo,
    /// SHA-256 over the files' bytes, to see whether they changed.
    fingerprint: [u8; 32],
}

/// A reloadable TLS client identity; share it (`Arc`) between the clients that present it.
pub struct ClientIdentity {
    label: IdentityLabel,
    files: IdentityFiles,
    current: RwLock<Loaded>,
    /// The fingerprint of files last refused, so that a broken file is logged once.
    refused: RwLock<Option<[u8; 32]>>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("label", &self.label)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Reads the files; `Err` when they do not hold a certificate chain with its key.
    pub fn load(label: IdentityLabel, files: IdentityFiles) -> Result<Arc<Self>, IdentityError> {
        let loaded = read(&files)?;
        let identity = Arc::new(Self {
            label,
            files,
            current: RwLock::new(loaded),
            refused: RwLock::new(None),
        });
        identity.record_expiry();
        Ok(identity)
    }

    pub fn label(&self) -> &IdentityLabel {
        &self.label
    }

    pub fn files(&self) -> &IdentityFiles {
        &self.files
    }

    /// The certificate in use (the leaf).
    pub fn info(&self) -> CertificateInfo {
        self.with_current(|l| l.info.clone())
    }

    /// The leaf certificate in use, DER.
    pub fn leaf_der(&self) -> Option<Vec<u8>> {
        self.with_current(|l| l.key.cert.first().map(|c| c.as_ref().to_vec()))
    }

    fn with_current<T>(&self, f: impl FnOnce(&Loaded) -> T) -> T {
        // A poisoned lock still holds a complete identity: writers only swap whole values.
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// Reads the files again. `Ok(true)`: they changed and now are in use; `Ok(false)`: they
    /// did not change; `Err`: they changed but cannot be used, and the identity in use stays.
    pub fn reload(&self) -> Result<bool, IdentityError> {
        let fingerprint = fingerprint(&self.files)?;
        if self.with_current(|l| l.fingerprint) == fingerprint {
            return Ok(false);
        }
        match read(&self.files) {
            Ok(loaded) => {
                let serial = loaded.info.serial.clone();
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
                self.record_expiry();
                tracing::info!(
                    bank = %self.label.bank,
                    tenant = self.label.tenant.as_deref(),
                    kind = self.label.kind,
                    serial = %serial,
                    "client certificate reloaded; new connections present it"
                );
                Ok(true)
            }
            Err(err) => Err(err),
        }
    }

    /// Reloads, logging a refusal once per distinct broken content.
    fn poll(&self) {
        match self.reload() {
            Ok(_) => {
                *self
                    .refused
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
            Err(err) => {
                let seen = fingerprint(&self.files).ok();
                let mut refused = self
                    .refused
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.is_none() || *refused != seen {
                    tracing::error!(
                        bank = %self.label.bank,
                        tenant = self.label.tenant.as_deref(),
                        kind = self.label.kind,
                        error = %err,
                        "changed client certificate files refused; the previous identity stays in use"
                    );
                    *refused = seen;
                }
            }
        }
        self.record_expiry();
    }

    /// Sets the expiry gauge (again: a recorder installed after the first load still gets it).
    fn record_expiry(&self) {
        record_expiry(&self.label, self.with_current(|l| l.info.not_after));
    }

    /// Polls the files every `interval` on the current Tokio runtime until the identity is
    /// dropped. Without a runtime (a one-off command) it does nothing.
    pub fn watch(self: &Arc<Self>, interval: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(identity) = weak.upgrade() else {
                    return;
                };
                // File reads are small but blocking.
                let done = tokio::task::spawn_blocking(move || identity.poll()).await;
                if done.is_err() {
                    return;
                }
            }
        });
    }
}

/// Sets [`EXPIRY_METRIC`] of the certificate `label` names to `not_after` (Unix seconds).
pub fn record_expiry(label: &IdentityLabel, not_after: i64) {
    #[expect(
        clippy::cast_precision_loss,
        reason = "Unix seconds fit an f64's mantissa for the next hundred million years"
    )]
    let value = not_after as f64;
    metrics::gauge!(
        EXPIRY_METRIC,
        "bank" => label.bank.clone(),
        "tenant" => label.tenant.clone().unwrap_or_default(),
        "kind" => label.kind,
    )
    .set(value);
}

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.with_current(|l| l.key.clone()))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn fingerprint(files: &IdentityFiles) -> Result<[u8; 32], IdentityError> {
    let mut hash = Sha256::new();
    hash.update(read_file(&files.certificate)?);
    if let Some(key) = &files.key {
        hash.update([0u8]);
        hash.update(read_file(key)?);
    }
    Ok(hash.finalize().into())
}

fn read(files: &IdentityFiles) -> Result<Loaded, IdentityError> {
    let cert_pem = read_file(&files.certificate)?;
    let key_path = files.key.as_deref().unwrap_or(&files.certificate);
    let key_pem = match &files.key {
        Some(path) => read_file(path)?,
        None => cert_pem.clone(),
    };
    let mut hash = Sha256::new();
    hash.update(&cert_pem);
    if files.key.is_some() {
        hash.update([0u8]);
        hash.update(&key_pem);
    }
    let fingerprint: [u8; 32] = hash.finalize().into();
    let invalid = |path: &Path, reason: String| IdentityError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&files.certificate, format!("unreadable PEM: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(invalid(
            &files.certificate,
            "holds no PEM certificate".into(),
        ));
    };
    let info = CertificateInfo::parse(leaf).map_err(|e| invalid(&files.certificate, e))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(key_path, format!("holds no PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(key_path, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        invalid(
            key_path,
            "the private key does not belong to the certificate".into(),
        )
    })?;
    Ok(Loaded {
        key: Arc::new(certified),
        info,
        fingerprint,
    })
}
