//! The hub's transport identity: its client certificate presented to a strict sandbox bank
//! (and judged there by chain, validity and PSD2 role), the bank's server certificate checked
//! against a per-bank CA bundle, the PSD2 attributes read from the certificate, and the files
//! replaced while requests run.

mod identity;
mod refusals;
mod rotation;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

/// A CA for test certificates: the sandbox's TPP CA (its key) or one of our own.
pub struct TestCa {
    pub cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        Self::from_der(der, key)
    }

    /// A CA whose certificate and PKCS #8 key are given (the sandbox's TPP CA).
    pub fn from_parts(cert_der: &[u8], key_pkcs8: &[u8]) -> Self {
        Self::from_der(cert_der.to_vec(), KeyPair::try_from(key_pkcs8).unwrap())
    }

    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    fn from_der(cert_der: Vec<u8>, key: KeyPair) -> Self {
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.clone()), key).unwrap();
        Self { cert_der, issuer }
    }

    /// A TLS client certificate (P-256, `clientAuth`) with the PSD2 QC statement for `roles`
    /// (none at all when `roles` is `None`), valid from `from` for `days`.
    pub fn issue(&self, spec: &Spec) -> TestCert {
        static SERIAL: AtomicU64 = AtomicU64::new(0x1000);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CountryName, "DE");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Kontor Test TPP");
        params.distinguished_name.push(
            DnType::CustomDnType(vec![2, 5, 4, 97]),
            spec.organization_identifier,
        );
        params
            .distinguished_name
            .push(DnType::CommonName, spec.name);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
        params.not_before = spec.from;
        params.not_after = spec.from + Duration::days(spec.days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if let Some(roles) = spec.roles {
            params.custom_extensions = vec![CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 3],
                qc_statements(roles),
            )];
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: format!("{serial:x}"),
        }
    }
}

/// What to put in a test certificate.
pub struct Spec {
    pub name: &'static str,
    pub organization_identifier: &'static str,
    pub roles: Option<&'static [&'static str]>,
    pub from: OffsetDateTime,
    pub days: i64,
}

impl Spec {
    pub fn qwac(roles: &'static [&'static str]) -> Self {
        Self {
            name: "kontor-hub",
            organization_identifier: "PSDDE-BAFIN-123456",
            roles: Some(roles),
            from: OffsetDateTime::now_utc() - Duration::days(1),
            days: 365,
        }
    }

    pub fn expired(mut self) -> Self {
        self.from = OffsetDateTime::now_utc() - Duration::days(30);
        self.days = 2;
        self
    }
}

pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// The serial as [`kontor_banks::CertificateInfo`] shows it.
    pub serial: String,
}

impl TestCert {
    /// Writes certificate and key into one file.
    pub fn write_combined(&self, path: &Path) {
        std::fs::write(path, format!("{}{}", self.cert_pem, self.key_pem)).unwrap();
    }

    /// Writes `tls.crt` and `tls.key` into `dir`, returning their paths.
    pub fn write_pair(&self, dir: &Path) -> (PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

// ---- the QC statements, DER-encoded here ----

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 128 {
        out.push(u8::try_from(len).unwrap());
    } else {
        out.extend([0x81, u8::try_from(len).unwrap()]);
    }
    out.extend_from_slice(content);
    out
}

fn role_oid(name: &str) -> Vec<u8> {
    let last = match name {
        "PSP_AS" => 1,
        "PSP_PI" => 2,
        "PSP_AI" => 3,
        "PSP_IC" => 4,
        other => panic!("unknown role {other}"),
    };
    // 0.4.0.19495.1.n
    tlv(0x06, &[0x04, 0x00, 0x81, 0x98, 0x27, 0x01, last])
}

/// `QCStatements` holding QcCompliance and the PSD2 statement (roles, BaFin).
fn qc_statements(roles: &[&str]) -> Vec<u8> {
    let roles: Vec<u8> = roles
        .iter()
        .flat_map(|r| tlv(0x30, &[role_oid(r), tlv(0x0c, r.as_bytes())].concat()))
        .collect();
    let info = tlv(
        0x30,
        &[
            tlv(0x30, &roles),
            tlv(0x0c, b"Federal Financial Supervisory Authority"),
            tlv(0x0c, b"DE-BAFIN"),
        ]
        .concat(),
    );
    let compliance = tlv(0x30, &tlv(0x06, &[0x04, 0x00, 0x8e, 0x46, 0x01, 0x01]));
    let psd2 = tlv(
        0x30,
        &[tlv(0x06, &[0x04, 0x00, 0x81, 0x98, 0x27, 0x02]), info].concat(),
    );
    tlv(0x30, &[compliance, psd2].concat())
}
