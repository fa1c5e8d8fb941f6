//! UK journeys in strict mode, as a FAPI client makes them: the client registered with its
//! signing certificate, `private_key_jwt` at the token endpoint, signed request objects, and
//! `x-jws-signature` on payment requests.

use reqwest::Method;
use serde_json::{Value, json};

use super::tpp::{TestCert, detached, jws_header, jwt, now};
use super::{QSEAL, QWAC, Strict};
use crate::common::{Harness, Reply, TPP_REDIRECT, uuid};
use crate::flows::complete_redirect_sca;
use crate::uk_flows::{BANK, pkce, query};

pub const CLIENT: &str = "test-tpp";
pub const MTLS_CLIENT: &str = "test-tpp-mtls";
pub const KID: &str = "test-seal-1";
pub const ISS: &str = "test-org/test-app";

impl Strict {
    /// Registers the test TPP at Thames Bank through the admin API: one `private_key_jwt`
    /// client and one `tls_client_auth` client, both with `QSEAL` as signing key.
    pub async fn register_clients(&self) {
        for (client_id, method) in [
            (CLIENT, "private_key_jwt"),
            (MTLS_CLIENT, "tls_client_auth"),
        ] {
            let reply = self
                .h
                .admin(
                    Method::POST,
                    &format!("/banks/{BANK}/clients"),
                    Some(json!({
                        "client_id": client_id,
                        "token_endpoint_auth_method": method,
                        "tls_client_auth_subject_dn": QWAC.subject_dn,
                        "signing_certificates": [{ "kid": KID, "pem": QSEAL.pem() }],
                        "org_id": "test-org",
                        "software_statement_id": "test-app",
                        "redirect_uris": [TPP_REDIRECT],
                    })),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.text());
        }
    }
}

pub fn issuer(h: &Harness) -> String {
    h.sandbox.bank(BANK).unwrap().issuer.unwrap()
}

pub fn token_url(h: &Harness) -> String {
    h.sandbox.bank(BANK).unwrap().token_url.unwrap()
}

/// A `private_key_jwt` client assertion.
pub fn assertion(seal: &TestCert, kid: &str, client_id: &str, aud: &str, jti: &str) -> String {
    jwt(
        seal,
        &json!({ "alg": "PS256", "kid": kid, "typ": "JWT" }),
        &json!({ "iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "iat": now(), "exp": now() + 300 }),
    )
}

pub async fn token_request(h: &Harness, fields: &[(&str, &str)]) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    h.send(
        &Method::POST,
        &token_url(h),
        &[],
        Some(body.into_bytes()),
        Some("application/x-www-form-urlencoded".into()),
    )
    .await
}

/// A token request authenticated with a fresh client assertion.
pub async fn token_with_assertion(h: &Harness, fields: &[(&str, &str)]) -> Reply {
    let assertion = assertion(&QSEAL, KID, CLIENT, &token_url(h), &uuid());
    let mut all = fields.to_vec();
    all.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    ));
    all.push(("client_assertion", &assertion));
    token_request(h, &all).await
}

pub async fn client_token(h: &Harness, scope: &str) -> String {
    let reply =
        token_with_assertion(h, &[("grant_type", "client_credentials"), ("scope", scope)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_string()
}

/// The claims of a request object for `consent` (FAPI: every parameter inside, 60 minutes).
pub fn request_claims(h: &Harness, consent: &str, scope: &str, challenge: &str) -> Value {
    json!({
        "iss": CLIENT,
        "aud": issuer(h),
        "client_id": CLIENT,
        "response_type": "code",
        "redirect_uri": TPP_REDIRECT,
        "scope": scope,
        "state": "st-strict",
        "nonce": "n-strict",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "jti": uuid(),
        "nbf": now() - 5,
        "exp": now() + 600,
        "claims": { "id_token": { "openbanking_intent_id": { "value": consent, "essential": true } } },
    })
}

/// The authorization URL for a request object, with the usual parameters repeated in the query.
pub fn authorize_url(h: &Harness, request: &str, claims: &Value) -> String {
    let mut url = url::Url::parse(&h.sandbox.bank(BANK).unwrap().authorize_url.unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", TPP_REDIRECT)
        .append_pair("scope", claims["scope"].as_str().unwrap())
        .append_pair("state", claims["state"].as_str().unwrap())
        .append_pair("request", request);
    url.to_string()
}

pub fn sign_request(claims: &Value) -> String {
    jwt(
        &QSEAL,
        &json!({ "alg": "PS256", "kid": KID, "typ": "oauth-authz-req+jwt" }),
        claims,
    )
}

/// Authorises `consent` as `user`; returns (code, verifier).
pub async fn authorize(h: &Harness, consent: &str, scope: &str, user: &str) -> (String, String) {
    let (verifier, challenge) = pkce(consent);
    let claims = request_claims(h, consent, scope, &challenge);
    let reply = h
        .get_page(&authorize_url(h, &sign_request(&claims), &claims))
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let done = complete_redirect_sca(h, &reply.location(), user).await;
    assert_eq!(done.status, 303, "{}", done.text());
    let callback = url::Url::parse(&done.location()).unwrap();
    assert_eq!(query(&callback, "state").as_deref(), Some("st-strict"));
    (query(&callback, "code").expect("a code"), verifier)
}

pub async fn exchange(h: &Harness, code: &str, verifier: &str) -> Reply {
    token_with_assertion(
        h,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", TPP_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("x-fapi-interaction-id", uuid()),
    ]
}

/// Headers of a payment request: token, idempotency key and `x-jws-signature` over `body`.
pub fn signed_write(token: &str, key: &str, body: &Value) -> Vec<(&'static str, String)> {
    let mut headers = bearer(token);
    headers.push(("x-idempotency-key", key.to_string()));
    let bytes = serde_json::to_vec(body).unwrap();
    headers.push((
        "x-jws-signature",
        detached(&QSEAL, &jws_header(KID, ISS), &bytes),
    ));
    headers
}

pub fn payment_consent_body() -> Value {
    json!({
        "Data": {
            "Initiation": {
                "InstructionIdentification": "INSTR-STRICT",
                "EndToEndIdentification": "E2E-STRICT",
                "LocalInstrument": "UK.OBIE.FPS",
                "InstructedAmount": { "Amount": "10.00", "Currency": "GBP" },
                "CreditorAccount": { "SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "60161331926819", "Name": "Acme Plumbing Ltd" },
                "RemittanceInformation": { "Reference": "INV-STRICT" }
            }
        },
        "Risk": { "PaymentContextCode": "BillPayment" }
    })
}
