//! The TLS side of a bank's HTTP client: the bank's server certificate verified against the
//! system's roots plus an optional CA bundle for that bank, and the hub's client identity
//! (see [`ClientIdentity`]) offered on every new connection.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::identity::{ClientIdentity, IdentityError};
use super::{HttpSettings, builder};

/// How the hub's client reaches one bank over TLS.
#[derive(Debug, Clone, Default)]
pub struct BankTls {
    /// Presented on every new connection; `None`: no client certificate.
    pub identity: Option<Arc<ClientIdentity>>,
    /// Trusted besides the system's roots for this bank's server certificate.
    pub ca_bundle: Vec<CertificateDer<'static>>,
}

/// Why a bank's TLS client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    File(#[from] IdentityError),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Reads a PEM file of CA certificates; one that holds none is refused.
pub fn read_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let pem = std::fs::read(path).map_err(|source| IdentityError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |reason: String| IdentityError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// A client for one bank (see [`crate::build_client`]) with `tls` on its connections.
pub fn build_client_with_tls(
    settings: &HttpSettings,
    tls: &BankTls,
) -> Result<reqwest::Client, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        tls.ca_bundle.iter().cloned(),
        provider.clone(),
    )?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match &tls.identity {
        Some(identity) => config.with_client_cert_resolver(identity.clone()),
        None => config.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A resumed session carries the certificate of the handshake it resumes: after a rotation
    // the bank would go on seeing the old one. Every new connection makes a full handshake
    // (connections are pooled, so this is rare).
    config.resumption = rustls::client::Resumption::disabled();
    Ok(builder(settings)
        .tls_backend_preconfigured(config)
        .build()?)
}
