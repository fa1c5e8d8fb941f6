//! Strict mode at a UK bank, the refusals: at the token endpoint (no or foreign certificate,
//! client secrets, bad or replayed assertions, roles), at the authorization endpoint (unsigned,
//! mis-addressed, expired, altered and replayed request objects), and on payment requests
//! (missing, malformed, tampered and mis-claimed `x-jws-signature`), each in the spec's format.

use reqwest::Method;
use serde_json::{Value, json};

use super::tpp::{Spec, detached, jws_header, jwt, now};
use super::uk_flows::*;
use super::{OTHER_CA, QSEAL, QWAC, Strict, TEST_CA};
use crate::common::{Harness, uuid};
use crate::spec::Api;
use crate::uk_flows::{ob_code, pisp, pkce, query};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn with_assertion(h: &Harness, assertion: &str) -> crate::common::Reply {
    token_request(
        h,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "accounts"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

fn assert_invalid_client(reply: &crate::common::Reply, mentions: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    let json = reply.json();
    assert_eq!(json["error"], "invalid_client");
    assert!(
        json["error_description"]
            .as_str()
            .unwrap()
            .contains(mentions),
        "expected `{mentions}` in {json}"
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_fapi_refuses() {
    let Some(mut s) = Strict::start().await else {
        return;
    };
    s.register_clients().await;
    let aud = token_url(&s.h);

    // No certificate, another CA's, an expired one.
    let foreign = OTHER_CA.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"]));
    let expired = TEST_CA.issue(&Spec {
        expired: true,
        ..Spec::qwac(&["PSP_AI", "PSP_PI"])
    });
    for (identity, mentions) in [
        (None, "no certificate"),
        (Some(&foreign), "not issued by the sandbox's TPP CA"),
        (Some(&expired), "expired"),
    ] {
        s.use_identity(identity);
        let reply = with_assertion(&s.h, &assertion(&QSEAL, KID, CLIENT, &aud, &uuid())).await;
        assert_invalid_client(&reply, mentions);
    }
    s.use_identity(Some(&QWAC));
    let h = &s.h;

    // Client secrets are not accepted.
    let reply = h
        .send(
            &Method::POST,
            &aud,
            &[(
                "authorization",
                "Basic a29udG9yLXNhbmRib3gtdHBwOnNhbmRib3gtc2VjcmV0".into(),
            )],
            Some(b"grant_type=client_credentials&scope=accounts".to_vec()),
            Some("application/x-www-form-urlencoded".into()),
        )
        .await;
    assert_invalid_client(&reply, "client secrets are not accepted");

    // A tampered assertion, one for another audience, one without jti, one from an unknown key.
    let good = assertion(&QSEAL, KID, CLIENT, &aud, &uuid());
    let mut tampered = good.clone();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    assert_invalid_client(
        &with_assertion(h, &tampered).await,
        "signature does not verify",
    );
    let elsewhere = assertion(&QSEAL, KID, CLIENT, "https://other.example/token", &uuid());
    assert_invalid_client(&with_assertion(h, &elsewhere).await, "aud");
    let unknown_kid = assertion(&QSEAL, "not-registered", CLIENT, &aud, &uuid());
    assert_invalid_client(&with_assertion(h, &unknown_kid).await, "kid");
    let expired_assertion = jwt(
        &QSEAL,
        &json!({ "alg": "PS256", "kid": KID }),
        &json!({ "iss": CLIENT, "sub": CLIENT, "aud": aud, "jti": uuid(), "exp": now() - 600 }),
    );
    assert_invalid_client(&with_assertion(h, &expired_assertion).await, "expired");

    // The same assertion twice: the second is a replay.
    assert_eq!(with_assertion(h, &good).await.status, 200);
    assert_invalid_client(&with_assertion(h, &good).await, "replayed");

    // A certificate with PSP_AI only gets no `payments` token.
    let ais_only = TEST_CA.issue(&Spec::qwac(&["PSP_AI"]));
    s.use_identity(Some(&ais_only));
    let reply = token_with_assertion(
        &s.h,
        &[("grant_type", "client_credentials"), ("scope", "payments")],
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"], "unauthorized_client");
    let reply = token_with_assertion(
        &s.h,
        &[("grant_type", "client_credentials"), ("scope", "accounts")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The `error` of the redirect back to the TPP.
async fn authorize_error(h: &Harness, request: &str, claims: &Value) -> String {
    let reply = h.get_page(&authorize_url(h, request, claims)).await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let location = url::Url::parse(&reply.location()).unwrap();
    assert!(
        location.as_str().starts_with(crate::common::TPP_REDIRECT),
        "{location}"
    );
    query(&location, "error").unwrap_or_else(|| panic!("no error in {location}"))
}

#[tokio::test]
async fn request_objects_must_be_signed_addressed_fresh_and_unused() {
    let Some(s) = Strict::start().await else {
        return;
    };
    s.register_clients().await;
    let h = &s.h;
    let consent = {
        let tpp = client_token(h, "accounts").await;
        let created = h
            .call(
                Api::UkAccounts,
                &crate::uk_flows::aisp(h),
                Method::POST,
                "/account-access-consents",
                &bearer(&tpp),
                Some(&json!({ "Data": { "Permissions": ["ReadAccountsBasic"] }, "Risk": {} })),
            )
            .await;
        created.json()["Data"]["ConsentId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (_, challenge) = pkce(&consent);
    let claims = || request_claims(h, &consent, "openid accounts", &challenge);

    // Unsigned (`alg: none`, as the sandbox accepts outside strict mode).
    let unsigned = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none"}"#),
        base64_url(&claims().to_string())
    );
    assert_eq!(
        authorize_error(h, &unsigned, &claims()).await,
        "invalid_request_object"
    );
    // Signed, but for another issuer, expired, too long-lived, or altered after signing.
    for change in [
        json!({ "aud": "https://other-bank.example" }),
        json!({ "exp": now() - 120, "nbf": now() - 900 }),
        json!({ "exp": now() + 7200 }),
    ] {
        let mut changed = claims();
        for (k, v) in change.as_object().unwrap() {
            changed[k] = v.clone();
        }
        assert_eq!(
            authorize_error(h, &sign_request(&changed), &changed).await,
            "invalid_request_object",
            "{change}"
        );
    }
    let signed = sign_request(&claims());
    let mut parts: Vec<String> = signed.split('.').map(str::to_string).collect();
    let mut altered = claims();
    altered["scope"] = json!("openid accounts payments");
    parts[1] = base64_url(&altered.to_string());
    assert_eq!(
        authorize_error(h, &parts.join("."), &claims()).await,
        "invalid_request_object"
    );
    // The query may repeat a parameter, not contradict it.
    let inside = claims();
    let mut outside = inside.clone();
    outside["state"] = json!("another-state");
    assert_eq!(
        authorize_error(h, &sign_request(&inside), &outside).await,
        "invalid_request_object"
    );
    // No request object at all.
    let mut url = url::Url::parse(&authorize_url(h, "x", &claims())).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != "request")
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let reply = h.get_page(url.as_str()).await;
    assert_eq!(
        query(&url::Url::parse(&reply.location()).unwrap(), "error").as_deref(),
        Some("invalid_request")
    );

    // A good one works once; replayed, it is refused.
    let good = claims();
    let request = sign_request(&good);
    let first = h.get_page(&authorize_url(h, &request, &good)).await;
    assert_eq!(first.status, 303, "{}", first.text());
    assert!(first.location().contains("/sca/"), "{}", first.location());
    assert_eq!(
        authorize_error(h, &request, &good).await,
        "invalid_request_object"
    );
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn payment_requests_need_a_valid_detached_signature() {
    let Some(s) = Strict::start().await else {
        return;
    };
    s.register_clients().await;
    let h = &s.h;
    let tpp = client_token(h, "payments").await;
    let body = payment_consent_body();
    let bytes = serde_json::to_vec(&body).unwrap();
    let send = |signature: Option<String>| {
        let mut headers = bearer(&tpp);
        headers.push(("x-idempotency-key", uuid()[..36].to_string()));
        if let Some(signature) = signature {
            headers.push(("x-jws-signature", signature));
        }
        let body = body.clone();
        async move {
            h.call(
                Api::UkPayments,
                &pisp(h),
                Method::POST,
                "/domestic-payment-consents",
                &headers,
                Some(&body),
            )
            .await
        }
    };
    let with_header = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut header = jws_header(KID, ISS);
        change(&mut header);
        detached(&QSEAL, &header, &bytes)
    };

    let reply = send(None).await;
    assert_eq!(
        (reply.status, ob_code(&reply).as_str()),
        (400, "UK.OBIE.Signature.Missing")
    );
    for malformed in [
        "not-a-jws",
        "a.b.c.d",
        "eyJhbGciOiJQUzI1NiJ9.eyJ4IjoxfQ.c2ln",
    ] {
        let reply = send(Some(malformed.into())).await;
        assert_eq!(
            ob_code(&reply),
            "UK.OBIE.Signature.Malformed",
            "{malformed}: {}",
            reply.text()
        );
    }
    // A signature over another body (the body tampered under a valid signature).
    let mut other = body.clone();
    other["Data"]["Initiation"]["InstructedAmount"]["Amount"] = json!("9999.00");
    let over_other = detached(
        &QSEAL,
        &jws_header(KID, ISS),
        &serde_json::to_vec(&other).unwrap(),
    );
    let reply = send(Some(over_other)).await;
    assert_eq!(
        (reply.status, ob_code(&reply).as_str()),
        (400, "UK.OBIE.Signature.Invalid")
    );
    // A tampered signature value.
    let mut tampered = with_header(&|_| {});
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");
    assert_eq!(
        ob_code(&send(Some(tampered)).await),
        "UK.OBIE.Signature.Invalid"
    );
    // Claims the 3.1.11 profile does not allow.
    let claim_cases = [
        ("b64", json!(false), "b64 false is for 3.1.3 and before"),
        ("alg", json!("HS256"), "HS256"),
        ("kid", json!("nobody"), "unknown kid"),
        (
            "http://openbanking.org.uk/iss",
            json!("someone/else"),
            "another issuer",
        ),
        (
            "http://openbanking.org.uk/tan",
            json!("example.com"),
            "another trust anchor",
        ),
        (
            "http://openbanking.org.uk/iat",
            json!(now() + 3600),
            "iat in the future",
        ),
        (
            "crit",
            json!(["http://openbanking.org.uk/iat"]),
            "crit incomplete",
        ),
    ];
    for (claim, value, case) in claim_cases {
        let reply = send(Some(with_header(&|h| {
            h.insert(claim.into(), value.clone());
        })))
        .await;
        assert_eq!(
            ob_code(&reply),
            "UK.OBIE.Signature.InvalidClaim",
            "{case}: {}",
            reply.text()
        );
    }
    let reply = send(Some(with_header(&|h| {
        h.remove("http://openbanking.org.uk/tan");
    })))
    .await;
    assert_eq!(
        ob_code(&reply),
        "UK.OBIE.Signature.MissingClaim",
        "{}",
        reply.text()
    );
    assert!(h.sandbox.payments().is_empty());

    // The same body, properly signed, is accepted.
    let reply = send(Some(with_header(&|_| {}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}
