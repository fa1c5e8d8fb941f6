//! `kontor banks check` and the startup refusal of a payments bank whose certificate lacks
//! `PSP_PI`, through the binary. The certificates are made here (rcgen), never committed.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "test")]

mod common;

use std::path::{Path, PathBuf};

use common::{kontor, run, stdout_json};

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(content.len()).unwrap()];
    out.extend_from_slice(content);
    out
}

/// A certificate and key with a PSD2 statement holding `roles` (2 = PSP_PI, 3 = PSP_AI),
/// competent authority BaFin, organizationIdentifier PSDDE-BAFIN-123456.
fn qwac(dir: &Path, name: &str, roles: &[u8]) -> PathBuf {
    let arc = [0x04, 0x00, 0x81, 0x98, 0x27];
    let roles: Vec<u8> = roles
        .iter()
        .flat_map(|n| {
            let oid = tlv(0x06, &[&arc[..], &[0x01, *n]].concat());
            tlv(0x30, &[oid, tlv(0x0c, b"r")].concat())
        })
        .collect();
    let info = [
        tlv(0x30, &roles),
        tlv(0x0c, b"Federal Financial Supervisory Authority"),
        tlv(0x0c, b"DE-BAFIN"),
    ];
    let statement = tlv(
        0x30,
        &[
            tlv(0x06, &[&arc[..], &[0x02]].concat()),
            tlv(0x30, &info.concat()),
        ]
        .concat(),
    );
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 97]),
        "PSDDE-BAFIN-123456",
    );
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 3],
        tlv(0x30, &statement),
    )];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (crt, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    crt
}

fn config(dir: &Path, cert: &Path, payments: bool) -> PathBuf {
    let path = dir.join("kontor.toml");
    std::fs::write(
        &path,
        format!(
            "[[banks]]\nid = \"sonnenbank\"\nname = \"Sonnenbank\"\ncountry = \"DE\"\n\
             standard = \"berlin-group\"\nbase_url = \"https://bank.example\"\n\
             tls_identity = {cert:?}\ntls_key = {key:?}\npayments = {payments}\n",
            key = cert.with_extension("key"),
        ),
    )
    .unwrap();
    path
}

#[test]
fn banks_check_shows_the_psd2_attributes_and_payments_need_psp_pi() {
    let dir = tempfile::tempdir().unwrap();
    let ai_only = qwac(dir.path(), "ai-only", &[3]);

    let refused = run(kontor(dir.path()).args([
        "--config",
        config(dir.path(), &ai_only, true).to_str().unwrap(),
        "banks",
        "check",
    ]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"sonnenbank\" is configured for payments")
            && stderr.contains("lacks the PSD2 role PSP_PI (it has: PSP_AI)"),
        "{stderr}"
    );

    let both = qwac(dir.path(), "both", &[3, 2]);
    let checked = stdout_json(&run(kontor(dir.path()).args([
        "--config",
        config(dir.path(), &both, true).to_str().unwrap(),
        "banks",
        "check",
        "--json",
    ])));
    let first = &checked[0];
    assert_eq!(first["bank"], "sonnenbank");
    assert_eq!(first["organization_identifier"], "PSDDE-BAFIN-123456");
    assert_eq!(
        first["psd2"]["roles"],
        serde_json::json!(["PSP_PI", "PSP_AI"])
    );
    assert_eq!(first["psd2"]["nca_id"], "DE-BAFIN");
    assert_eq!(first["status"], "ok");

    let printed = run(kontor(dir.path()).args([
        "--config",
        config(dir.path(), &ai_only, false).to_str().unwrap(),
        "config",
        "print",
    ]));
    let stdout = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(
        stdout.contains("# sonnenbank tls:") && stdout.contains("roles PSP_AI;"),
        "{stdout}"
    );
    toml::from_str::<toml::Value>(&stdout).unwrap();
}
