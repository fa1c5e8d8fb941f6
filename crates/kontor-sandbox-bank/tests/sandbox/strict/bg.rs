//! Strict mode at a Berlin Group bank: a signed consent, account read and payment over mutual
//! TLS; and each refusal with its `tppMessages` code (no certificate, another CA, expired, wrong
//! role, missing or tampered signature, tampered body).

use reqwest::Method;
use serde_json::{Value, json};

use super::tpp::{Spec, TestCert, default_coverage, digest, sign_bg};
use super::{OTHER_CA, QSEAL, QWAC, Strict, TEST_CA};
use crate::common::{Harness, Reply, TPP_REDIRECT};
use crate::flows::{
    ais_headers, complete_redirect_sca, consent_body, ibans, redirect_headers, tpp_code,
};
use crate::spec::Api;

const BANK: &str = "sonnenbank";

fn payment(debtor: &str) -> Value {
    json!({
        "debtorAccount": { "iban": debtor },
        "instructedAmount": { "currency": "EUR", "amount": "12.34" },
        "creditorAccount": { "iban": "DE89370400440532013000" },
        "creditorName": "Rheinwerk Versand GmbH",
        "remittanceInformationUnstructured": "Rechnung 7"
    })
}

/// Sends a Berlin Group call signed by `seal` (covering what the IG asks), or unsigned.
async fn send(
    h: &Harness,
    method: Method,
    path: &str,
    mut headers: Vec<(&'static str, String)>,
    body: Option<&Value>,
    seal: Option<&TestCert>,
) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    if let Some(seal) = seal {
        let cover = default_coverage(&headers);
        sign_bg(
            seal,
            &mut headers,
            bytes.as_deref().unwrap_or_default(),
            &cover,
        );
    }
    send_raw(h, method, path, &headers, bytes).await
}

async fn send_raw(
    h: &Harness,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    bytes: Option<Vec<u8>>,
) -> Reply {
    let content_type = bytes.as_ref().map(|_| "application/json".to_string());
    h.call_raw(
        Api::BerlinGroup,
        &h.base(BANK),
        method,
        path,
        headers,
        bytes,
        content_type,
    )
    .await
}

fn assert_refused(reply: &Reply, code: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(tpp_code(reply), code, "{}", reply.text());
}

#[tokio::test]
async fn signed_consent_account_read_and_payment_over_mutual_tls() {
    let Some(s) = Strict::start().await else {
        return;
    };
    let h = &s.h;
    assert!(h.sandbox.url().starts_with("https://"));
    let alice = ibans(h, BANK, "alice");
    let body = consent_body(&alice[..1], "2026-06-30", 4);
    let created = send(
        h,
        Method::POST,
        "/v1/consents",
        redirect_headers(),
        Some(&body),
        Some(&QSEAL),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let json = created.json();
    let consent = json["consentId"].as_str().unwrap().to_string();
    let sca = json["_links"]["scaRedirect"]["href"].as_str().unwrap();
    let done = complete_redirect_sca(h, sca, "alice").await;
    assert_eq!(done.location(), TPP_REDIRECT);

    let accounts = send(
        h,
        Method::GET,
        "/v1/accounts",
        ais_headers(&consent, true),
        None,
        Some(&QSEAL),
    )
    .await;
    assert_eq!(accounts.status, 200, "{}", accounts.text());
    assert_eq!(accounts.json()["accounts"][0]["iban"], alice[0].as_str());

    let created = send(
        h,
        Method::POST,
        "/v1/payments/sepa-credit-transfers",
        redirect_headers(),
        Some(&payment(&alice[0])),
        Some(&QSEAL),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let json = created.json();
    let id = json["paymentId"].as_str().unwrap().to_string();
    complete_redirect_sca(
        h,
        json["_links"]["scaRedirect"]["href"].as_str().unwrap(),
        "alice",
    )
    .await;
    let status = send(
        h,
        Method::GET,
        &format!("/v1/payments/sepa-credit-transfers/{id}/status"),
        crate::common::bg(&[]),
        None,
        Some(&QSEAL),
    )
    .await;
    assert_eq!(
        status.json()["transactionStatus"],
        "ACTC",
        "{}",
        status.text()
    );
    assert_eq!(h.sandbox.payments().len(), 1);
}

#[tokio::test]
async fn the_tls_client_certificate_must_be_ours_valid_and_present() {
    let Some(mut s) = Strict::start().await else {
        return;
    };
    let debtor = ibans(&s.h, BANK, "alice")[0].clone();
    let foreign = OTHER_CA.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]));
    let expired = TEST_CA.issue(&Spec {
        expired: true,
        ..Spec::qwac(&["PSP_AI", "PSP_PI"])
    });
    for (identity, code) in [
        (None, "CERTIFICATE_MISSING"),
        (Some(&foreign), "CERTIFICATE_INVALID"),
        (Some(&expired), "CERTIFICATE_EXPIRED"),
    ] {
        s.use_identity(identity);
        let reply = send(
            &s.h,
            Method::POST,
            "/v1/payments/sepa-credit-transfers",
            redirect_headers(),
            Some(&payment(&debtor)),
            Some(&QSEAL),
        )
        .await;
        assert_refused(&reply, code);
        let read = send(
            &s.h,
            Method::GET,
            "/v1/accounts",
            ais_headers("cns-x", true),
            None,
            Some(&QSEAL),
        )
        .await;
        assert_refused(&read, code);
    }
    assert!(
        s.h.sandbox.payments().is_empty(),
        "a refused request changes nothing"
    );
    // The SCA pages stay open to browsers, which have no TPP certificate.
    let page = s.h.get_page(&format!("{}/app", s.h.base(BANK))).await;
    assert_eq!(page.status, 200, "{}", page.text());
}

#[tokio::test]
async fn each_service_needs_its_psd2_role() {
    let Some(mut s) = Strict::start().await else {
        return;
    };
    let alice = ibans(&s.h, BANK, "alice");
    let ais_only = TEST_CA.issue(&Spec::qwac(&["PSP_AI"]));
    s.use_identity(Some(&ais_only));
    let consent = send(
        &s.h,
        Method::POST,
        "/v1/consents",
        redirect_headers(),
        Some(&consent_body(&alice[..1], "2026-06-30", 4)),
        Some(&QSEAL),
    )
    .await;
    assert_eq!(
        consent.status,
        201,
        "PSP_AI may ask for account access: {}",
        consent.text()
    );
    let pay = send(
        &s.h,
        Method::POST,
        "/v1/payments/sepa-credit-transfers",
        redirect_headers(),
        Some(&payment(&alice[0])),
        Some(&QSEAL),
    )
    .await;
    assert_refused(&pay, "ROLE_INVALID");
    assert!(pay.text().contains("PSP_PI"), "{}", pay.text());

    // The seal certificate needs the role too.
    s.use_identity(Some(&QWAC));
    let ais_seal = TEST_CA.issue(&Spec::qseal(&["PSP_AI"]));
    let pay = send(
        &s.h,
        Method::POST,
        "/v1/payments/sepa-credit-transfers",
        redirect_headers(),
        Some(&payment(&alice[0])),
        Some(&ais_seal),
    )
    .await;
    assert_refused(&pay, "ROLE_INVALID");
    assert!(s.h.sandbox.payments().is_empty());
}

#[tokio::test]
async fn unsigned_tampered_and_badly_signed_requests_are_refused() {
    let Some(s) = Strict::start().await else {
        return;
    };
    let h = &s.h;
    let debtor = ibans(h, BANK, "alice")[0].clone();
    let path = "/v1/payments/sepa-credit-transfers";
    let body = serde_json::to_vec(&payment(&debtor)).unwrap();
    let signed = |seal: &TestCert, cover: Option<&[&str]>| {
        let mut headers = redirect_headers();
        let cover = cover.map_or_else(|| default_coverage(&headers), <[&str]>::to_vec);
        sign_bg(seal, &mut headers, &body, &cover);
        headers
    };
    let replace = |headers: &mut Vec<(&'static str, String)>, name: &str, value: String| {
        headers.iter_mut().find(|(k, _)| *k == name).unwrap().1 = value;
    };

    // No signature at all.
    let reply = send_raw(
        h,
        Method::POST,
        path,
        &redirect_headers(),
        Some(body.clone()),
    )
    .await;
    assert_refused(&reply, "SIGNATURE_MISSING");

    // A signature without its certificate.
    let mut headers = signed(&QSEAL, None);
    headers.retain(|(k, _)| *k != "tpp-signature-certificate");
    let reply = send_raw(h, Method::POST, path, &headers, Some(body.clone())).await;
    assert_refused(&reply, "CERTIFICATE_MISSING");

    // A tampered signature value.
    let mut headers = signed(&QSEAL, None);
    let value = headers
        .iter()
        .find(|(k, _)| *k == "signature")
        .unwrap()
        .1
        .clone();
    let tampered = value.replacen("signature=\"", "signature=\"AAAA", 1);
    replace(&mut headers, "signature", tampered);
    let reply = send_raw(h, Method::POST, path, &headers, Some(body.clone())).await;
    assert_refused(&reply, "SIGNATURE_INVALID");

    // A tampered body under a valid signature: the digest no longer matches ...
    let mut other = payment(&debtor);
    other["instructedAmount"]["amount"] = json!("9999.00");
    let other = serde_json::to_vec(&other).unwrap();
    let headers = signed(&QSEAL, None);
    let reply = send_raw(h, Method::POST, path, &headers, Some(other.clone())).await;
    assert_refused(&reply, "SIGNATURE_INVALID");
    // ... and with its digest recomputed, the signature over the digest no longer verifies.
    let mut headers = signed(&QSEAL, None);
    replace(&mut headers, "digest", digest(&other));
    let reply = send_raw(h, Method::POST, path, &headers, Some(other)).await;
    assert_refused(&reply, "SIGNATURE_INVALID");

    // The signature must cover X-Request-ID, and TPP-Redirect-URI when it is sent.
    for cover in [&["digest"][..], &["digest", "x-request-id"][..]] {
        let headers = signed(&QSEAL, Some(cover));
        let reply = send_raw(h, Method::POST, path, &headers, Some(body.clone())).await;
        assert_refused(&reply, "SIGNATURE_INVALID");
        assert!(reply.text().contains("must cover"), "{}", reply.text());
    }

    // keyId must name the certificate sent.
    let mut headers = signed(&QSEAL, None);
    let value = headers
        .iter()
        .find(|(k, _)| *k == "signature")
        .unwrap()
        .1
        .clone();
    replace(
        &mut headers,
        "signature",
        value.replacen(&QSEAL.serial_hex, "9FA1", 1),
    );
    let reply = send_raw(h, Method::POST, path, &headers, Some(body.clone())).await;
    assert_refused(&reply, "SIGNATURE_INVALID");

    // The signing certificate is judged like the TLS one, and must be of the same organisation.
    let seal_cases = [
        (
            OTHER_CA.issue(&Spec::qseal(&["PSP_AI", "PSP_PI"])),
            "CERTIFICATE_INVALID",
        ),
        (
            TEST_CA.issue(&Spec {
                expired: true,
                ..Spec::qseal(&["PSP_AI", "PSP_PI"])
            }),
            "CERTIFICATE_EXPIRED",
        ),
        (
            TEST_CA.issue(&Spec {
                organization: "PSDFR-ACPR-111111",
                ..Spec::qseal(&["PSP_AI", "PSP_PI"])
            }),
            "CERTIFICATE_INVALID",
        ),
    ];
    for (seal, code) in &seal_cases {
        let headers = signed(seal, None);
        let reply = send_raw(h, Method::POST, path, &headers, Some(body.clone())).await;
        assert_refused(&reply, code);
    }

    assert!(
        h.sandbox.payments().is_empty(),
        "a refused request changes nothing"
    );
    // The same request, properly signed, goes through.
    let reply = send_raw(h, Method::POST, path, &signed(&QSEAL, None), Some(body)).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}
