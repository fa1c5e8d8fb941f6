//! TPP certificates: what the sandbox reads from one (serial, issuer, subject, PSD2 roles, public
//! key) and whether it chains to the TPP test CA and is valid now. The TLS layer accepts any
//! client certificate whose key the client proves to hold, so that these judgements can be
//! answered in each standard's error format instead of a failed handshake.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::dn::Dn;
use super::qc::{self, Psd2Attributes, PspRole};

/// Why a certificate is not accepted. The variants map onto Berlin Group's
/// `CERTIFICATE_MISSING`, `CERTIFICATE_INVALID` and `CERTIFICATE_EXPIRED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    #[error("no certificate was presented")]
    Missing,
    #[error("the certificate is not valid: {0}")]
    Invalid(String),
    #[error("the certificate is expired or not yet valid: {0}")]
    Expired(String),
}

/// A public key the sandbox can verify signatures with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// PKCS#1 `RSAPublicKey` DER, and the modulus size in bits.
    Rsa { der: Vec<u8>, bits: usize },
    /// An uncompressed P-256 point.
    EcP256(Vec<u8>),
    /// Anything else (P-384, Ed25519, …): present but not usable for the signatures here.
    Other,
}

/// What the sandbox knows about a TPP certificate.
#[derive(Debug, Clone)]
pub struct TppCertificate {
    pub der: Vec<u8>,
    /// The serial number's big-endian bytes as encoded.
    pub serial: Vec<u8>,
    pub issuer: Dn,
    pub subject: Dn,
    /// Validity in Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The PSD2 QC statement, if the certificate has one.
    pub psd2: Option<Psd2Attributes>,
    pub key: PublicKey,
}

/// `organizationIdentifier`.
pub const ORGANIZATION_IDENTIFIER: &str = "2.5.4.97";

impl TppCertificate {
    /// Parses one DER certificate (no trust decision).
    pub fn parse(der: &[u8]) -> Result<Self, CertProblem> {
        let invalid = |why: &str| CertProblem::Invalid(why.to_string());
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| invalid("not a DER X.509 certificate"))?;
        if !rest.is_empty() {
            return Err(invalid("trailing bytes after the certificate"));
        }
        let issuer = Dn::from_x509(cert.issuer()).ok_or_else(|| invalid("unreadable issuer"))?;
        let subject = Dn::from_x509(cert.subject()).ok_or_else(|| invalid("unreadable subject"))?;
        let qc_oid = qc::QC_STATEMENTS_OID
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        let psd2 = cert
            .iter_extensions()
            .find(|e| e.oid.to_id_string() == qc_oid)
            .and_then(|e| qc::parse_psd2(e.value));
        let spki = cert.public_key();
        let key_bytes = spki.subject_public_key.data.to_vec();
        let key = match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" => {
                let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
                PublicKey::Rsa {
                    der: key_bytes,
                    bits,
                }
            }
            // id-ecPublicKey; a 65-byte uncompressed point is P-256.
            "1.2.840.10045.2.1" if key_bytes.len() == 65 && key_bytes.first() == Some(&4) => {
                PublicKey::EcP256(key_bytes)
            }
            _ => PublicKey::Other,
        };
        Ok(Self {
            der: der.to_vec(),
            serial: cert.raw_serial().to_vec(),
            issuer,
            subject,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            psd2,
            key,
        })
    }

    /// The serial number in upper-case hexadecimal without leading zeros (`9FA1`), as the
    /// Berlin Group `keyId` writes it.
    pub fn serial_hex(&self) -> String {
        let hex: String = self.serial.iter().map(|b| format!("{b:02X}")).collect();
        let trimmed = hex.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }
    }

    pub fn organization_identifier(&self) -> Option<&str> {
        self.subject.get(ORGANIZATION_IDENTIFIER)
    }

    pub fn roles(&self) -> &[PspRole] {
        self.psd2.as_ref().map_or(&[], |p| p.roles.as_slice())
    }

    pub fn has_role(&self, role: PspRole) -> bool {
        self.roles().contains(&role)
    }

    /// `x5t#S256`: base64url of the SHA-256 of the DER (RFC 8705 §3.1).
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.der)
    }
}

/// `x5t#S256` of a DER certificate.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Any extended key usage will do: QSealCs often carry none, or ones TLS does not know.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// What a certificate is being judged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS client authentication (QWAC/OBWAC): the certificate must allow `clientAuth` if it
    /// lists extended key usages at all.
    TlsClient,
    /// Signing (QSealC/OBSeal): no extended key usage is required.
    Seal,
}

/// The TPP test CA(s): the certificates the sandbox trusts to issue TPP certificates.
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
}

impl TrustStore {
    pub fn new(ca_ders: &[CertificateDer<'_>]) -> Result<Self, CertProblem> {
        let anchors = ca_ders
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(|e| CertProblem::Invalid(format!("TPP CA certificate: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { anchors })
    }

    /// Judges a chain (leaf first, then any intermediates the TPP sent) at `now`.
    pub fn judge(
        &self,
        chain: &[CertificateDer<'_>],
        usage: Usage,
        now: UnixTime,
    ) -> Result<TppCertificate, CertProblem> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(CertProblem::Missing);
        };
        let parsed = TppCertificate::parse(leaf)?;
        let end_entity = EndEntityCert::try_from(leaf)
            .map_err(|e| CertProblem::Invalid(format!("unreadable certificate: {e}")))?;
        let algorithms = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all;
        let result = match usage {
            Usage::TlsClient => end_entity.verify_for_usage(
                algorithms,
                &self.anchors,
                intermediates,
                now,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            ),
            Usage::Seal => end_entity.verify_for_usage(
                algorithms,
                &self.anchors,
                intermediates,
                now,
                AnyUsage,
                None,
                None,
            ),
        };
        match result {
            Ok(_) => Ok(parsed),
            Err(
                error @ (webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }),
            ) => Err(CertProblem::Expired(error.to_string())),
            Err(webpki::Error::UnknownIssuer) => Err(CertProblem::Invalid(
                "it is not issued by the sandbox's TPP CA".into(),
            )),
            Err(error) => Err(CertProblem::Invalid(error.to_string())),
        }
    }
}
