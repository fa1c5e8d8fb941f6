//! Issuing the sandbox's test certificates with rcgen: the two CAs, the server certificate for
//! HTTPS, and the demo TPP's QWAC (TLS) and QSealC (signatures) with PSD2 QC statements.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::{Duration, OffsetDateTime};

use super::qc::{self, PspRole, QcType};

/// Why a certificate or key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error(transparent)]
    KeyGen(#[from] super::rsa_keygen::KeyGenError),
    #[error("the system random number generator failed")]
    Random,
}

/// A certificate and its private key, both DER.
#[derive(Clone)]
pub struct Issued {
    pub cert_der: Vec<u8>,
    pub key_pkcs8: Vec<u8>,
}

impl Issued {
    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        super::pki::pem("CERTIFICATE", &self.cert_der)
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        super::pki::pem("PRIVATE KEY", &self.key_pkcs8)
    }
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_der", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// A random positive 16-byte serial number (RFC 5280 allows up to 20 octets).
fn serial() -> Result<SerialNumber, IssueError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| IssueError::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    Ok(SerialNumber::from_slice(&bytes))
}

fn name(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    dn
}

/// Valid from an hour ago (clocks differ) for `days`, with a fresh serial number.
fn validity(params: &mut CertificateParams, days: i64) -> Result<(), IssueError> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    params.serial_number = Some(serial()?);
    Ok(())
}

fn key_pair(pkcs8: &[u8]) -> Result<KeyPair, IssueError> {
    Ok(KeyPair::try_from(pkcs8)?)
}

/// A self-signed CA (P-256) valid for ten years.
pub fn ca(common_name: &str) -> Result<Issued, IssueError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(&[
        (DnType::CountryName, "DE"),
        (DnType::OrganizationName, "Kontor Sandbox"),
        (DnType::CommonName, common_name),
    ]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, 3650)?;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_der: cert.der().to_vec(),
        key_pkcs8: key.serialize_der(),
    })
}

fn issuer(ca: &Issued) -> Result<Issuer<'static, KeyPair>, IssueError> {
    let key = key_pair(&ca.key_pkcs8)?;
    Ok(Issuer::from_ca_cert_der(&ca.cert_der.clone().into(), key)?)
}

/// The HTTPS server certificate (P-256) for `names` (host names and IP addresses), valid for a
/// year.
pub fn server(ca: &Issued, names: &[String]) -> Result<Issued, IssueError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = name(&[
        (DnType::OrganizationName, "Kontor Sandbox"),
        (
            DnType::CommonName,
            names.first().map_or("localhost", String::as_str),
        ),
    ]);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, 365)?;
    let cert = params.signed_by(&key, &issuer(ca)?)?;
    Ok(Issued {
        cert_der: cert.der().to_vec(),
        key_pkcs8: key.serialize_der(),
    })
}

/// Who a TPP certificate is for.
#[derive(Debug, Clone)]
pub struct TppSubject {
    pub organization: String,
    /// `organizationIdentifier` (2.5.4.97), e.g. `PSDDE-BAFIN-123456`.
    pub organization_identifier: String,
    /// The UK directory's organisation id (OU) and software statement id (CN).
    pub org_id: String,
    pub software_statement_id: String,
    pub country: String,
    pub roles: Vec<PspRole>,
    pub nca_name: String,
    pub nca_id: String,
}

/// A TPP certificate issued by `ca`: a QWAC (P-256 key, `clientAuth`) or a QSealC (a new
/// 2048-bit RSA key, for PS256 and `rsa-sha256`), valid for a year.
pub fn tpp(ca: &Issued, subject: &TppSubject, kind: QcType) -> Result<Issued, IssueError> {
    let (key, key_pkcs8) = match kind {
        QcType::Web => {
            let key = KeyPair::generate()?;
            let der = key.serialize_der();
            (key, der)
        }
        QcType::Seal => {
            let der = super::rsa_keygen::generate_rsa_pkcs8(2048)?;
            let key = KeyPair::from_pkcs8_der_and_sign_algo(
                &PrivatePkcs8KeyDer::from(der.clone()),
                &PKCS_RSA_SHA256,
            )?;
            (key, der)
        }
    };
    let mut params = CertificateParams::default();
    params.distinguished_name = name(&[
        (DnType::CountryName, &subject.country),
        (DnType::OrganizationName, &subject.organization),
        (DnType::OrganizationalUnitName, &subject.org_id),
        (
            DnType::CustomDnType(vec![2, 5, 4, 97]),
            &subject.organization_identifier,
        ),
        (DnType::CommonName, &subject.software_statement_id),
    ]);
    params.key_usages = match kind {
        QcType::Web => vec![KeyUsagePurpose::DigitalSignature],
        QcType::Seal => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ],
    };
    if kind == QcType::Web {
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    }
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        qc::QC_STATEMENTS_OID,
        qc::encode(kind, &subject.roles, &subject.nca_name, &subject.nca_id),
    )];
    validity(&mut params, 365)?;
    let cert = params.signed_by(&key, &issuer(ca)?)?;
    Ok(Issued {
        cert_der: cert.der().to_vec(),
        key_pkcs8,
    })
}
