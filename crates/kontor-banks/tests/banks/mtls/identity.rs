//! Loading and reloading an identity's files, and what the certificate says about the TPP.

use kontor_banks::{ClientIdentity, IdentityFiles, IdentityLabel, PspRole};

use super::{Spec, TestCa};

fn label() -> IdentityLabel {
    IdentityLabel {
        bank: "sonnenbank".into(),
        tenant: None,
        kind: "tls",
    }
}

#[test]
fn reads_the_psd2_attributes() {
    let ca = TestCa::new("Identity Test CA");
    let dir = tempfile::tempdir().unwrap();
    let cert = ca.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]));
    let path = dir.path().join("hub.pem");
    cert.write_combined(&path);
    let identity = ClientIdentity::load(
        label(),
        IdentityFiles {
            certificate: path,
            key: None,
        },
    )
    .unwrap();
    let info = identity.info();
    assert_eq!(info.serial, cert.serial);
    assert_eq!(
        info.organization_identifier.as_deref(),
        Some("PSDDE-BAFIN-123456")
    );
    let psd2 = info.psd2.clone().expect("a PSD2 statement");
    assert_eq!(
        psd2.roles,
        vec![PspRole::PaymentInitiation, PspRole::AccountInformation]
    );
    assert_eq!(psd2.nca_id, "DE-BAFIN");
    assert_eq!(psd2.nca_name, "Federal Financial Supervisory Authority");
    assert!(info.has_role(PspRole::PaymentInitiation));
    assert!(info.not_after > info.not_before);

    let plain = ca.issue(&Spec {
        roles: None,
        ..Spec::qwac(&[])
    });
    let (c, k) = plain.write_pair(&dir.path().join("plain"));
    let plain = ClientIdentity::load(
        label(),
        IdentityFiles {
            certificate: c,
            key: Some(k),
        },
    )
    .unwrap();
    assert_eq!(plain.info().psd2, None);
    assert_eq!(plain.info().roles_text(), "none");
}

#[test]
fn refuses_what_does_not_parse_or_match_and_keeps_the_identity_in_use() {
    let ca = TestCa::new("Identity Test CA");
    let dir = tempfile::tempdir().unwrap();
    let first = ca.issue(&Spec::qwac(&["PSP_AI"]));
    let second = ca.issue(&Spec::qwac(&["PSP_AI"]));
    let (cert, key) = first.write_pair(dir.path());
    let files = IdentityFiles {
        certificate: cert.clone(),
        key: Some(key.clone()),
    };

    // At start, each kind of bad file is refused with the file's name.
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = ClientIdentity::load(label(), files.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls.key"), "{err}");
    std::fs::write(&key, &second.key_pem).unwrap();
    let err = ClientIdentity::load(label(), files.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not belong to the certificate"), "{err}");
    std::fs::write(&cert, "no certificate here").unwrap();
    let err = ClientIdentity::load(label(), files.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no PEM certificate"), "{err}");

    first.write_pair(dir.path());
    let identity = ClientIdentity::load(label(), files).unwrap();
    assert!(!identity.reload().unwrap(), "nothing changed");

    // Half a rotation (a new certificate, the old key) is refused; the first stays.
    std::fs::write(&cert, &second.cert_pem).unwrap();
    assert!(identity.reload().is_err());
    assert_eq!(identity.info().serial, first.serial);
    // A truncated certificate too.
    std::fs::write(&cert, &second.cert_pem[..second.cert_pem.len() / 2]).unwrap();
    assert!(identity.reload().is_err());
    assert_eq!(identity.info().serial, first.serial);
    // A missing file too.
    std::fs::remove_file(&key).unwrap();
    assert!(identity.reload().is_err());
    assert_eq!(identity.info().serial, first.serial);

    second.write_pair(dir.path());
    assert!(identity.reload().unwrap());
    assert_eq!(identity.info().serial, second.serial);
}
