//! The seal against certificates issued by the sandbox's PKI: the identifiers it derives are
//! compared with what the sandbox's own code says they are, and every signature is checked
//! with ring's public-key verification from the certificate's key.

use std::sync::LazyLock;

use kontor_sandbox_bank::SandboxPki;
use kontor_sandbox_bank::tpp::TppIdentity;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
};

use super::*;

/// Issuing RSA certificates is slow in a debug build: once per test binary.
pub(crate) static PKI: LazyLock<SandboxPki> =
    LazyLock::new(|| SandboxPki::generate().expect("test PKI"));

pub(crate) fn demo() -> &'static TppIdentity {
    PKI.demo_tpp().expect("demo TPP")
}

pub(crate) fn demo_seal() -> SealKey {
    let demo = demo();
    SealKey::from_pem(
        demo.qseal.cert_pem().as_bytes(),
        demo.qseal.key_pem().as_bytes(),
    )
    .expect("the demo seal loads")
}

/// Verifies with the key in the certificate, parsed on its own.
pub(crate) fn verifies(
    algorithm: &'static dyn VerificationAlgorithm,
    cert_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    let key = cert.public_key().subject_public_key.data.to_vec();
    UnparsedPublicKey::new(algorithm, key)
        .verify(message, signature)
        .is_ok()
}

#[test]
fn identifiers_agree_with_the_sandbox() {
    let seal = demo_seal();
    let info = &demo().info;
    let (ours, theirs) = (seal.berlin_group_key_id(), &info.berlin_group_key_id);
    let serial = |id: &str| {
        id.strip_prefix("SN=")
            .and_then(|rest| rest.split_once(','))
            .map(|(sn, ca)| {
                (
                    sn.trim_start_matches('0').to_ascii_uppercase(),
                    ca.to_owned(),
                )
            })
            .unwrap()
    };
    assert_eq!(serial(ours), serial(theirs), "{ours} vs {theirs}");
    assert_eq!(seal.jwk_thumbprint(), info.jws_kid);
    assert_eq!(seal.directory_issuer(), Some(info.jws_iss.as_str()));
    assert_eq!(seal.cert_der(), demo().qseal.cert_der.as_slice());
    assert!(!format!("{seal:?}").contains("PRIVATE"));
}

#[test]
fn signatures_verify_with_the_certificate_and_not_after_tampering() {
    let seal = demo_seal();
    let cert = seal.cert_der().to_vec();
    let message = b"digest: SHA-256=abc\nx-request-id: 1";

    let pkcs1 = seal.sign_pkcs1_sha256(message).unwrap();
    assert!(verifies(
        &RSA_PKCS1_2048_8192_SHA256,
        &cert,
        message,
        &pkcs1
    ));
    assert!(!verifies(
        &RSA_PKCS1_2048_8192_SHA256,
        &cert,
        b"digest: SHA-256=abd\nx-request-id: 1",
        &pkcs1
    ));
    let mut flipped = pkcs1.clone();
    flipped[10] ^= 1;
    assert!(!verifies(
        &RSA_PKCS1_2048_8192_SHA256,
        &cert,
        message,
        &flipped
    ));
    // PKCS #1 v1.5 is deterministic; PSS is salted, and is not PKCS #1 v1.5.
    assert_eq!(pkcs1, seal.sign_pkcs1_sha256(message).unwrap());

    let pss = seal.sign_pss_sha256(message).unwrap();
    assert!(verifies(&RSA_PSS_2048_8192_SHA256, &cert, message, &pss));
    assert!(!verifies(&RSA_PKCS1_2048_8192_SHA256, &cert, message, &pss));
    assert!(!verifies(&RSA_PSS_2048_8192_SHA256, &cert, b"other", &pss));
    assert_ne!(pss, seal.sign_pss_sha256(message).unwrap());
}

#[test]
fn a_key_of_another_certificate_or_no_rsa_key_is_refused() {
    let demo = demo();
    let other = PKI
        .issue_tpp(&kontor_sandbox_bank::tpp::TppSubject {
            organization: "Other".into(),
            organization_identifier: "PSDNL-DNB-1".into(),
            org_id: "other".into(),
            software_statement_id: "other-app".into(),
            country: "NL".into(),
            roles: vec![kontor_sandbox_bank::tpp::PspRole::Ai],
            nca_name: "De Nederlandsche Bank".into(),
            nca_id: "NL-DNB".into(),
        })
        .unwrap();
    let cert = demo.qseal.cert_pem();
    assert_eq!(
        SealKey::from_pem(cert.as_bytes(), other.qseal.key_pem().as_bytes()).unwrap_err(),
        SealError::Mismatch
    );
    // The QWAC's key is P-256: not an RSA seal.
    let err = SealKey::from_pem(
        demo.qwac.cert_pem().as_bytes(),
        demo.qwac.key_pem().as_bytes(),
    )
    .unwrap_err();
    assert!(matches!(err, SealError::Key(_)), "{err}");
    let err = SealKey::from_pem(b"nothing here", demo.qseal.key_pem().as_bytes()).unwrap_err();
    assert!(matches!(err, SealError::Certificate(_)), "{err}");
    let err = SealKey::from_pem(
        cert.as_bytes(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_err();
    assert!(matches!(err, SealError::Key(_)), "{err}");
}

#[test]
fn serials_drop_the_sign_byte_only() {
    assert_eq!(serial_hex(&[0x00, 0x9f, 0xa1]), "9FA1");
    assert_eq!(serial_hex(&[0x01, 0x02]), "0102");
    assert_eq!(serial_hex(&[0x00]), "00");
}
