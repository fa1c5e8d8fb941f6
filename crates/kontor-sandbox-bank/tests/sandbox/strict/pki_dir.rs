//! The PKI directory the hub side reads: the files are written once and reused, and the demo
//! TPP's certificates and `demo-tpp.json` are enough to talk to both kinds of bank.

use reqwest::Method;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use super::tpp::{TestCert, client, default_coverage, sign_bg};
use super::uk_flows::{assertion, token_request};
use crate::common::{Harness, Reply, builder};
use crate::flows::{consent_body, ibans, redirect_headers};
use crate::spec::Api;
use kontor_sandbox_bank::SandboxPki;
use kontor_sandbox_bank::tpp::{PspRole, TppSubject};

const FILES: [&str; 10] = [
    "server-ca.pem",
    "server-ca.key.pem",
    "tpp-ca.pem",
    "tpp-ca.key.pem",
    "sandbox-signing.key.pem",
    "demo-tpp-qwac.pem",
    "demo-tpp-qwac.key.pem",
    "demo-tpp-qseal.pem",
    "demo-tpp-qseal.key.pem",
    "demo-tpp.json",
];

fn load(dir: &std::path::Path, cert: &str, key: &str) -> (Vec<u8>, Vec<u8>) {
    let cert = CertificateDer::from_pem_file(dir.join(cert))
        .unwrap()
        .to_vec();
    let key = PrivatePkcs8KeyDer::from_pem_file(dir.join(key))
        .unwrap()
        .secret_pkcs8_der()
        .to_vec();
    (cert, key)
}

/// A TPP's certificates as the test client uses them, from DER and the `keyId` the PKI names.
fn identity(
    qwac: (Vec<u8>, Vec<u8>),
    seal: (Vec<u8>, Vec<u8>),
    key_id: &str,
) -> (TestCert, TestCert) {
    let (serial, issuer) = key_id
        .strip_prefix("SN=")
        .and_then(|rest| rest.split_once(",CA="))
        .unwrap();
    let cert = |(der, key_pkcs8): (Vec<u8>, Vec<u8>), serial: &str, issuer: &str| TestCert {
        der,
        key_pkcs8,
        serial_hex: serial.to_string(),
        issuer_dn: issuer.to_string(),
        subject_dn: String::new(),
    };
    (cert(qwac, "", ""), cert(seal, serial, issuer))
}

/// A Berlin Group consent request signed with `seal`.
async fn signed_consent(h: &Harness, seal: &TestCert, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut headers = redirect_headers();
    let cover = default_coverage(&headers);
    sign_bg(seal, &mut headers, &bytes, &cover);
    h.call_raw(
        Api::BerlinGroup,
        &h.base("sonnenbank"),
        Method::POST,
        "/v1/consents",
        &headers,
        Some(bytes),
        Some("application/json".into()),
    )
    .await
}

#[tokio::test]
async fn the_demo_tpp_files_work_at_both_kinds_of_bank() {
    let dir = tempfile::tempdir().unwrap();
    let pki = SandboxPki::load_or_generate(dir.path()).unwrap();
    let again = SandboxPki::load_or_generate(dir.path()).unwrap();
    assert_eq!(
        pki.server_ca_der(),
        again.server_ca_der(),
        "existing files are reused"
    );
    let Some(mut h) = Harness::start_with(builder().require_tpp_certificates(again)).await else {
        return;
    };
    for file in FILES {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("demo-tpp.json")).unwrap())
            .unwrap();
    assert_eq!(info["roles"], json!(["PSP_PI", "PSP_AI"]));
    let uk = &info["uk_clients"][0];
    assert_eq!(uk["bank_id"], "thames-bank");
    assert_eq!(uk["token_endpoint_auth_method"], "private_key_jwt");

    let server_ca = CertificateDer::from_pem_file(dir.path().join("server-ca.pem")).unwrap();
    let (qwac, seal) = identity(
        load(dir.path(), "demo-tpp-qwac.pem", "demo-tpp-qwac.key.pem"),
        load(dir.path(), "demo-tpp-qseal.pem", "demo-tpp-qseal.key.pem"),
        info["berlin_group_key_id"].as_str().unwrap(),
    );
    h.client = client(&server_ca, Some(&qwac));

    // Berlin Group: a signed consent.
    let body = consent_body(&ibans(&h, "sonnenbank", "alice")[..1], "2026-06-30", 4);
    let created = signed_consent(&h, &seal, &body).await;
    assert_eq!(created.status, 201, "{}", created.text());

    // UK: a private_key_jwt token with the demo client and kid.
    let token_url = uk["token_url"].as_str().unwrap();
    let client_id = uk["client_id"].as_str().unwrap();
    let kid = info["jws_kid"].as_str().unwrap();
    let signed = assertion(&seal, kid, client_id, token_url, "demo-jti-1");
    let reply = token_request(
        &h,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "accounts payments"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &signed),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let jwks = h.get_page(uk["jwks_url"].as_str().unwrap()).await.json();
    assert_eq!(jwks["keys"][0]["alg"], "PS256");

    // Another TPP (a tenant with its own licence) issued from the same CA works too.
    let tenant = pki
        .issue_tpp(&TppSubject {
            organization: "Tenant TPP B.V.".into(),
            organization_identifier: "PSDNL-DNB-424242".into(),
            org_id: "tenant-org".into(),
            software_statement_id: "tenant-app".into(),
            country: "NL".into(),
            roles: vec![PspRole::Ai],
            nca_name: "De Nederlandsche Bank".into(),
            nca_id: "NL-DNB".into(),
        })
        .unwrap();
    assert_eq!(tenant.info.roles, vec![PspRole::Ai]);
    let (tenant_qwac, tenant_seal) = identity(
        (tenant.qwac.cert_der.clone(), tenant.qwac.key_pkcs8.clone()),
        (
            tenant.qseal.cert_der.clone(),
            tenant.qseal.key_pkcs8.clone(),
        ),
        &tenant.info.berlin_group_key_id,
    );
    h.client = client(&server_ca, Some(&tenant_qwac));
    let created = signed_consent(&h, &tenant_seal, &body).await;
    assert_eq!(created.status, 201, "{}", created.text());
}
