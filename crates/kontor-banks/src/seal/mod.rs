//! The third party's seal: the certificate (eIDAS QSealC, or the UK directory's OBSeal) and its
//! RSA private key, with which the hub signs what it sends banks that ask for signed requests
//! (Berlin Group `Signature`, UK request objects, client assertions and `x-jws-signature`).
//!
//! RSA runs on `ring` (RSASSA-PKCS1-v1_5 and RSASSA-PSS, SHA-256). The key is checked against
//! the certificate when it is loaded, so that a mismatched pair is refused at startup rather
//! than by the bank at the first request.

mod dn;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::KeyPair as _;
use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a seal could not be loaded. The text never quotes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the seal certificate: {0}")]
    Certificate(String),
    #[error("the seal key: {0}")]
    Key(String),
    #[error("the seal key does not belong to the seal certificate")]
    Mismatch,
}

/// The hub's seal certificate and key. `Debug` shows the certificate's identity, never the key.
pub struct SealKey {
    key: RsaKeyPair,
    cert_der: Vec<u8>,
    berlin_group_key_id: String,
    thumbprint: String,
    directory_issuer: Option<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("key_id", &self.berlin_group_key_id)
            .finish_non_exhaustive()
    }
}

impl SealKey {
    /// The certificate (the first in `cert_pem`: the seal certificate itself, any chain after
    /// it is ignored) and its RSA private key (PKCS #8 or PKCS #1), both PEM.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, SealError> {
        let cert = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .ok_or_else(|| SealError::Certificate("no PEM CERTIFICATE found".into()))?
            .map_err(|_| SealError::Certificate("not valid PEM".into()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|_| SealError::Key("no PEM private key found".into()))?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(SealError::Key(
                    "an RSA key is needed (PKCS #8 or PKCS #1)".into(),
                ));
            }
        }
        .map_err(|e| SealError::Key(format!("not a usable RSA key ({e})")))?;
        Self::new(cert.as_ref(), key)
    }

    fn new(cert_der: &[u8], key: RsaKeyPair) -> Result<Self, SealError> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|_| SealError::Certificate("not a DER X.509 certificate".into()))?;
        // The certificate's key is an RSAPublicKey in the BIT STRING; ring's is the same DER.
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(SealError::Mismatch);
        }
        let berlin_group_key_id = format!(
            "SN={},CA={}",
            serial_hex(cert.raw_serial()),
            dn::header_safe(&dn::rfc4514(cert.issuer()))
        );
        let thumbprint = jwk_thumbprint(&PublicKeyComponents::<Vec<u8>>::from(key.public()));
        let directory_issuer = dn::directory_issuer(cert.subject());
        Ok(Self {
            key,
            cert_der: cert_der.to_vec(),
            berlin_group_key_id,
            thumbprint,
            directory_issuer,
            rng: SystemRandom::new(),
        })
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The Berlin Group `keyId`: `SN=<serial, hex>,CA=<issuer DN, RFC 4514>`.
    pub fn berlin_group_key_id(&self) -> &str {
        &self.berlin_group_key_id
    }

    /// The RFC 7638 thumbprint of the public key (SHA-256, base64url): the `kid` a JWKS
    /// publishing this key would give it, used when no `kid` is configured.
    pub fn jwk_thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// `{organisation id}/{software statement id}` from the subject's `OU` and `CN`, as the UK
    /// directory issues OBSeal certificates; the `http://openbanking.org.uk/iss` of a JWS.
    pub fn directory_issuer(&self) -> Option<&str> {
        self.directory_issuer.as_deref()
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (`rsa-sha256`, JWS `RS256`).
    pub fn sign_pkcs1_sha256(&self, message: &[u8]) -> Result<Vec<u8>, SealError> {
        self.sign(&RSA_PKCS1_SHA256, message)
    }

    /// RSASSA-PSS with SHA-256, MGF1 SHA-256 and a 32-byte salt (JWS `PS256`).
    pub fn sign_pss_sha256(&self, message: &[u8]) -> Result<Vec<u8>, SealError> {
        self.sign(&RSA_PSS_SHA256, message)
    }

    fn sign(
        &self,
        encoding: &'static dyn RsaEncoding,
        message: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(encoding, &self.rng, message, &mut signature)
            .map_err(|_| SealError::Key("signing failed".into()))?;
        Ok(signature)
    }
}

/// The serial number's bytes in upper-case hexadecimal, without the sign byte DER adds.
fn serial_hex(raw: &[u8]) -> String {
    let trimmed = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    trimmed.iter().map(|b| format!("{b:02X}")).collect()
}

/// RFC 7638 §3: SHA-256 of `{"e":…,"kty":"RSA","n":…}`, base64url.
fn jwk_thumbprint(public: &PublicKeyComponents<Vec<u8>>) -> String {
    let strip = |bytes: &[u8]| -> Vec<u8> {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        bytes[first..].to_vec()
    };
    let json = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(strip(&public.e)),
        URL_SAFE_NO_PAD.encode(strip(&public.n))
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests;
