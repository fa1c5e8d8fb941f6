//! Strict mode at a UK bank, the paths that work: `private_key_jwt` and `tls_client_auth`,
//! signed request objects, a PS256 `id_token` checked against the bank's JWKS (`iss`, `aud`,
//! `nonce`, `c_hash`, `s_hash`), certificate-bound tokens, signed payment requests and
//! responses; and the discovery document that says so.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use ring::signature::{RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::tpp::Spec;
use super::uk_flows::*;
use super::{QWAC, Strict, TEST_CA};
use crate::common::{Harness, Reply};
use crate::spec::Api;
use crate::uk_flows::{BANK, aisp, pisp};

/// Verifies a compact PS256 JWS (`detached`: over `payload` instead of its own) against the
/// bank's JWKS; returns its header and payload.
async fn verify_with_jwks(h: &Harness, jws: &str, detached: Option<&[u8]>) -> (Value, Value) {
    let jwks_url = h
        .sandbox
        .bank(BANK)
        .unwrap()
        .jwks_url
        .expect("a JWKS in strict mode");
    let jwks = h.get_page(&jwks_url).await.json();
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "PS256");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the kid is in the JWKS");
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    let payload_b64 = match detached {
        Some(body) => URL_SAFE_NO_PAD.encode(body),
        None => parts[1].to_string(),
    };
    let input = format!("{}.{payload_b64}", parts[0]);
    RsaPublicKeyComponents { n, e }
        .verify(
            &RSA_PSS_2048_8192_SHA256,
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .expect("the signature verifies with the published key");
    let payload = if detached.is_some() {
        Value::Null
    } else {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
    };
    (header, payload)
}

fn half_hash(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(value.as_bytes())[..16])
}

async fn account_consent(h: &Harness, token: &str) -> String {
    let created = h
        .call(
            Api::UkAccounts,
            &aisp(h),
            Method::POST,
            "/account-access-consents",
            &bearer(token),
            Some(&json!({ "Data": { "Permissions": ["ReadAccountsDetail", "ReadBalances"] }, "Risk": {} })),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()["Data"]["ConsentId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn private_key_jwt_request_object_id_token_and_bound_reads() {
    let Some(mut s) = Strict::start().await else {
        return;
    };
    s.register_clients().await;
    let h = &s.h;
    let discovery = h
        .get_page(&h.sandbox.bank(BANK).unwrap().discovery_url.unwrap())
        .await
        .json();
    assert_eq!(
        discovery["tls_client_certificate_bound_access_tokens"],
        true
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["PS256"])
    );
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt", "tls_client_auth"])
    );

    let tpp = client_token(h, "accounts").await;
    let consent = account_consent(h, &tpp).await;
    let (code, verifier) = authorize(h, &consent, "openid accounts", "bob").await;
    let tokens = exchange(h, &code, &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let tokens = tokens.json();
    let access = tokens["access_token"].as_str().unwrap().to_string();

    let (_, claims) = verify_with_jwks(h, tokens["id_token"].as_str().unwrap(), None).await;
    assert_eq!(claims["iss"], discovery["issuer"]);
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["nonce"], "n-strict");
    assert_eq!(claims["openbanking_intent_id"], consent.as_str());
    assert_eq!(claims["c_hash"], half_hash(&code));
    assert_eq!(claims["s_hash"], half_hash("st-strict"));
    assert_eq!(claims["at_hash"], half_hash(&access));
    assert!(claims["exp"].as_i64().unwrap() > super::tpp::now());

    let accounts = h
        .call(
            Api::UkAccounts,
            &aisp(h),
            Method::GET,
            "/accounts",
            &bearer(&access),
            None,
        )
        .await;
    assert_eq!(accounts.status, 200, "{}", accounts.text());

    // The token is bound to QWAC: the same TPP over another of its certificates, or over
    // none, gets 401.
    let second = TEST_CA.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]));
    for identity in [Some(&second), None] {
        s.use_identity(identity);
        let reply =
            s.h.call(
                Api::UkAccounts,
                &aisp(&s.h),
                Method::GET,
                "/accounts",
                &bearer(&access),
                None,
            )
            .await;
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
}

#[tokio::test]
async fn signed_payment_with_signed_response() {
    let Some(s) = Strict::start().await else {
        return;
    };
    s.register_clients().await;
    let h = &s.h;
    let tpp = client_token(h, "payments").await;
    let body = payment_consent_body();
    let created = h
        .call(
            Api::UkPayments,
            &pisp(h),
            Method::POST,
            "/domestic-payment-consents",
            &signed_write(&tpp, "strict-consent-1", &body),
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let signature = created.header("x-jws-signature").unwrap().to_string();
    let (header, _) = verify_with_jwks(h, &signature, Some(&created.body)).await;
    assert!(
        header.get("b64").is_none(),
        "3.1.4+ signs the base64url payload"
    );
    let consent = created.json()["Data"]["ConsentId"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, verifier) = authorize(h, &consent, "openid payments", "bob").await;
    let psu = exchange(h, &code, &verifier).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let pay = json!({ "Data": { "ConsentId": consent, "Initiation": body["Data"]["Initiation"] }, "Risk": body["Risk"] });
    let paid = h
        .call(
            Api::UkPayments,
            &pisp(h),
            Method::POST,
            "/domestic-payments",
            &signed_write(&psu, "strict-pay-1", &pay),
            Some(&pay),
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text());
    assert_eq!(paid.json()["Data"]["Status"], "AcceptedSettlementInProcess");
    assert_eq!(h.sandbox.payments().len(), 1);
}

#[tokio::test]
async fn tls_client_auth_checks_the_certificate_subject() {
    let Some(mut s) = Strict::start().await else {
        return;
    };
    s.register_clients().await;
    let fields = [
        ("grant_type", "client_credentials"),
        ("scope", "accounts"),
        ("client_id", MTLS_CLIENT),
    ];
    let ok: Reply = token_request(&s.h, &fields).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Another certificate of the CA, with another subject, is not this client.
    let other = TEST_CA.issue(&Spec {
        common_name: "another-app",
        ..Spec::qwac(&["PSP_AI", "PSP_PI"])
    });
    s.use_identity(Some(&other));
    let refused = token_request(&s.h, &fields).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(refused.json()["error"], "invalid_client");
    // A private_key_jwt client cannot authenticate with its certificate alone.
    s.use_identity(Some(&QWAC));
    let refused = token_request(
        &s.h,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "accounts"),
            ("client_id", CLIENT),
        ],
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text());
}
