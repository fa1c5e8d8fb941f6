//! The hub's client against a strict sandbox bank: the bank's HTTPS certificate is trusted
//! through the bank's CA bundle only, and the bank judges the hub's client certificate by its
//! chain, validity and PSD2 role before anything else (a good one gets as far as the missing
//! request signature, which is not this layer's work).

use std::sync::{Arc, LazyLock};

use kontor_banks::{
    BankTls, ClientIdentity, HttpSettings, IdentityFiles, IdentityLabel, build_client_with_tls,
};
use kontor_sandbox_bank::{RunningSandbox, SandboxBank, SandboxPki};
use rustls::pki_types::CertificateDer;
use serde_json::Value;

use super::{Spec, TestCa, TestCert};

/// Made once: RSA key generation is slow in a debug build.
static PKI: LazyLock<SandboxPki> = LazyLock::new(|| SandboxPki::generate().unwrap());

fn sandbox_ca() -> TestCa {
    TestCa::from_parts(PKI.tpp_ca_der(), PKI.tpp_ca_key_pkcs8().unwrap())
}

async fn strict_sandbox() -> RunningSandbox {
    SandboxBank::builder()
        .require_tpp_certificates(PKI.clone())
        .start_local()
        .await
        .unwrap()
}

fn identity(dir: &std::path::Path, cert: &TestCert) -> Arc<ClientIdentity> {
    let path = dir.join(format!("{}.pem", cert.serial));
    cert.write_combined(&path);
    ClientIdentity::load(
        IdentityLabel {
            bank: "sonnenbank".into(),
            tenant: None,
            kind: "tls",
        },
        IdentityFiles {
            certificate: path,
            key: None,
        },
    )
    .unwrap()
}

fn client(identity: Option<Arc<ClientIdentity>>) -> reqwest::Client {
    build_client_with_tls(
        &HttpSettings::default(),
        &BankTls {
            identity,
            ca_bundle: vec![CertificateDer::from(PKI.server_ca_der().to_vec())],
        },
    )
    .unwrap()
}

/// The Berlin Group error code the bank answered `url` with (a 401).
async fn refusal(client: &reqwest::Client, url: &str) -> String {
    let response = client
        .post(url)
        .header("x-request-id", "6f4f4d0e-6a4e-4d43-9d7c-111111111111")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "{url}");
    let body: Value = response.json().await.unwrap();
    body["tppMessages"][0]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no tppMessages code in {body}"))
        .to_owned()
}

#[tokio::test]
async fn the_bank_judges_the_certificate_the_hub_presents() {
    let sandbox = strict_sandbox().await;
    let base = sandbox.base_url("sonnenbank").unwrap();
    assert!(base.starts_with("https://"), "{base}");
    let consents = format!("{base}/v1/consents");
    let payments = format!("{base}/v1/payments/sepa-credit-transfers");
    let dir = tempfile::tempdir().unwrap();
    let ca = sandbox_ca();
    let other_ca = TestCa::new("Somebody Else's CA");

    let cases: [(&str, Option<TestCert>, &str, &str); 6] = [
        ("no certificate", None, &consents, "CERTIFICATE_MISSING"),
        (
            "another CA's",
            Some(other_ca.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]))),
            &consents,
            "CERTIFICATE_INVALID",
        ),
        (
            "an expired one",
            Some(ca.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]).expired())),
            &consents,
            "CERTIFICATE_EXPIRED",
        ),
        (
            "PSP_PI only, for account information",
            Some(ca.issue(&Spec::qwac(&["PSP_PI"]))),
            &consents,
            "ROLE_INVALID",
        ),
        (
            "PSP_AI only, for a payment",
            Some(ca.issue(&Spec::qwac(&["PSP_AI"]))),
            &payments,
            "ROLE_INVALID",
        ),
        (
            "both roles: the certificate passes, the unsigned request does not",
            Some(ca.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]))),
            &payments,
            "SIGNATURE_MISSING",
        ),
    ];
    for (what, cert, url, expected) in cases {
        let client = client(cert.as_ref().map(|c| identity(dir.path(), c)));
        assert_eq!(refusal(&client, url).await, expected, "{what}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_banks_server_certificate_needs_its_ca_bundle() {
    let sandbox = strict_sandbox().await;
    let base = sandbox.base_url("sonnenbank").unwrap();
    let without_bundle =
        build_client_with_tls(&HttpSettings::default(), &BankTls::default()).unwrap();
    let err = without_bundle
        .get(format!("{base}/v1/accounts"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // The same request with the bundle reaches the bank (which then wants a certificate).
    assert_eq!(
        refusal(&client(None), &format!("{base}/v1/consents")).await,
        "CERTIFICATE_MISSING"
    );
    sandbox.shutdown().await;
}
