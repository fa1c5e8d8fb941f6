//! Berlin Group bank rules: frequencyPerDay, expiry, revocation, consent replacement, and the
//! spec's error codes for malformed requests.

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::common::{Harness, bg};
use crate::flows::{ais_headers, bg_consent, consent_body, ibans, redirect_headers, tpp_code};
use crate::spec::Api;

const BANK: &str = "sonnenbank";

async fn get(h: &Harness, path: &str, consent: &str, psu_present: bool) -> crate::common::Reply {
    h.call(
        Api::BerlinGroup,
        &h.base(BANK),
        Method::GET,
        path,
        &ais_headers(consent, psu_present),
        None,
    )
    .await
}

#[tokio::test]
async fn frequency_per_day_limits_unattended_reads_per_account_and_endpoint() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let consent = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 2),
    )
    .await;
    let account = crate::flows::resource_ids(&h, BANK, "alice")[0].clone();
    let balances = format!("/v1/accounts/{account}/balances");
    for _ in 0..2 {
        assert_eq!(get(&h, &balances, &consent, false).await.status, 200);
    }
    let exceeded = get(&h, &balances, &consent, false).await;
    assert_eq!(
        (exceeded.status, tpp_code(&exceeded)),
        (429, "ACCESS_EXCEEDED".into())
    );
    assert_eq!(
        get(&h, &balances, &consent, true).await.status,
        200,
        "reads with the PSU present do not count"
    );
    let transactions =
        format!("/v1/accounts/{account}/transactions?bookingStatus=booked&dateFrom=2026-02-01");
    assert_eq!(
        get(&h, &transactions, &consent, false).await.status,
        200,
        "each endpoint has its own allowance"
    );
    h.sandbox.advance_clock(Duration::days(1)).unwrap();
    assert_eq!(
        get(&h, &balances, &consent, false).await.status,
        200,
        "the allowance renews daily"
    );
}

#[tokio::test]
async fn consents_expire_and_can_be_revoked() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let short = bg_consent(&h, BANK, "alice", &json!({ "access": { "accounts": [{ "iban": ibans[0] }] }, "recurringIndicator": false, "validUntil": "2026-03-03", "frequencyPerDay": 1, "combinedServiceIndicator": false })).await;
    assert_eq!(get(&h, "/v1/accounts", &short, true).await.status, 200);
    h.sandbox.advance_clock(Duration::days(2)).unwrap();
    let expired = get(&h, "/v1/accounts", &short, true).await;
    assert_eq!(
        (expired.status, tpp_code(&expired)),
        (401, "CONSENT_EXPIRED".into())
    );
    assert_eq!(
        get(&h, &format!("/v1/consents/{short}/status"), &short, true)
            .await
            .json()["consentStatus"],
        "expired"
    );

    // validUntil far in the future is shortened to 180 days (from today, two days on).
    let long = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "9999-12-31", 4),
    )
    .await;
    assert_eq!(
        get(&h, &format!("/v1/consents/{long}"), &long, true)
            .await
            .json()["validUntil"],
        "2026-08-31"
    );
    h.sandbox.expire_consent(BANK, &long).unwrap();
    assert_eq!(
        tpp_code(&get(&h, "/v1/accounts", &long, true).await),
        "CONSENT_EXPIRED"
    );

    let revoked = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 4),
    )
    .await;
    let deleted = h
        .call(
            Api::BerlinGroup,
            &h.base(BANK),
            Method::DELETE,
            &format!("/v1/consents/{revoked}"),
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        get(
            &h,
            &format!("/v1/consents/{revoked}/status"),
            &revoked,
            true
        )
        .await
        .json()["consentStatus"],
        "terminatedByTpp"
    );
    let read = get(&h, "/v1/accounts", &revoked, true).await;
    assert_eq!(
        (read.status, tpp_code(&read)),
        (401, "CONSENT_INVALID".into())
    );

    let by_psu = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 4),
    )
    .await;
    let admin = h
        .admin(
            Method::POST,
            &format!("/banks/{BANK}/consents/{by_psu}/revoke"),
            None,
        )
        .await;
    assert_eq!(admin.status, 204);
    assert_eq!(
        get(&h, &format!("/v1/consents/{by_psu}/status"), &by_psu, true)
            .await
            .json()["consentStatus"],
        "revokedByPsu"
    );
    assert_eq!(
        tpp_code(&get(&h, "/v1/accounts", &by_psu, true).await),
        "CONSENT_INVALID"
    );
}

#[tokio::test]
async fn a_new_recurring_consent_expires_the_former_one() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let ibans = ibans(&h, BANK, "alice");
    let first = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 4),
    )
    .await;
    let second = bg_consent(
        &h,
        BANK,
        "alice",
        &consent_body(&ibans[..1], "2026-05-01", 4),
    )
    .await;
    assert_eq!(
        get(&h, &format!("/v1/consents/{first}/status"), &first, true)
            .await
            .json()["consentStatus"],
        "expired"
    );
    assert_eq!(
        get(&h, &format!("/v1/consents/{second}/status"), &second, true)
            .await
            .json()["consentStatus"],
        "valid"
    );
}

#[tokio::test]
async fn malformed_requests_get_the_specs_error_codes() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let base = h.base(BANK);
    let body = consent_body(&ibans(&h, BANK, "alice")[..1], "2026-05-01", 4);
    let post = |headers: Vec<(&'static str, String)>, body: Value| {
        let h = &h;
        let base = base.clone();
        async move {
            h.call(
                Api::BerlinGroup,
                &base,
                Method::POST,
                "/v1/consents",
                &headers,
                Some(&body),
            )
            .await
        }
    };
    let no_id = post(
        vec![
            ("psu-ip-address", "192.0.2.1".into()),
            ("tpp-redirect-uri", "https://tpp.example/cb".into()),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(
        (no_id.status, tpp_code(&no_id)),
        (400, "FORMAT_ERROR".into())
    );
    assert!(no_id.header("x-request-id").is_some());
    let bad_id = post(
        vec![
            ("x-request-id", "not-a-uuid".into()),
            ("psu-ip-address", "192.0.2.1".into()),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(tpp_code(&bad_id), "FORMAT_ERROR");
    let no_ip = post(
        bg(&[("tpp-redirect-uri", "https://tpp.example/cb")]),
        body.clone(),
    )
    .await;
    assert_eq!(tpp_code(&no_ip), "FORMAT_ERROR");
    let no_redirect = post(bg(&[("psu-ip-address", "192.0.2.1")]), body.clone()).await;
    assert_eq!(tpp_code(&no_redirect), "FORMAT_ERROR");
    let mut too_often = body.clone();
    too_often["frequencyPerDay"] = json!(5);
    assert_eq!(
        tpp_code(&post(redirect_headers(), too_often).await),
        "FORMAT_ERROR"
    );
    let mut combined = body.clone();
    combined["combinedServiceIndicator"] = json!(true);
    assert_eq!(
        tpp_code(&post(redirect_headers(), combined).await),
        "SESSIONS_NOT_SUPPORTED"
    );
    let mut foreign = body.clone();
    foreign["access"]["accounts"] = json!([{ "iban": "DE89370400440532013000" }]);
    assert_eq!(
        tpp_code(&post(redirect_headers(), foreign).await),
        "FORMAT_ERROR"
    );
    let missing = post(redirect_headers(), json!({ "access": {} })).await;
    assert_eq!(tpp_code(&missing), "FORMAT_ERROR");
    assert!(
        missing.json()["tppMessages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("recurringIndicator")
    );
    let wrong_type = h
        .call_raw(
            Api::BerlinGroup,
            &base,
            Method::POST,
            "/v1/consents",
            &redirect_headers(),
            Some(b"<xml/>".to_vec()),
            Some("application/xml".into()),
        )
        .await;
    assert_eq!(wrong_type.status, 415);

    let consent = bg_consent(&h, BANK, "alice", &body).await;
    let account = crate::flows::resource_ids(&h, BANK, "alice")[0].clone();
    let no_consent = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::GET,
            "/v1/accounts",
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(tpp_code(&no_consent), "FORMAT_ERROR");
    let unknown = get(&h, "/v1/accounts", "cns-unknown", true).await;
    assert_eq!(
        (unknown.status, tpp_code(&unknown)),
        (403, "CONSENT_UNKNOWN".into())
    );
    let tx = |q: &str| format!("/v1/accounts/{account}/transactions{q}");
    assert_eq!(
        tpp_code(&get(&h, &tx("?dateFrom=2026-01-01"), &consent, true).await),
        "FORMAT_ERROR"
    );
    assert_eq!(
        tpp_code(&get(&h, &tx("?bookingStatus=booked"), &consent, true).await),
        "FORMAT_ERROR"
    );
    assert_eq!(
        tpp_code(
            &get(
                &h,
                &tx("?bookingStatus=booked&dateFrom=2026-02-10&dateTo=2026-02-01"),
                &consent,
                true
            )
            .await
        ),
        "PERIOD_INVALID"
    );
    assert_eq!(
        tpp_code(&get(&h, &tx("?bookingStatus=information"), &consent, true).await),
        "PARAMETER_NOT_SUPPORTED"
    );
    let xml = h
        .call(
            Api::BerlinGroup,
            &base,
            Method::GET,
            &tx("?bookingStatus=booked&dateFrom=2026-02-01"),
            &[
                ais_headers(&consent, true),
                vec![("accept", "application/xml".into())],
            ]
            .concat(),
            None,
        )
        .await;
    assert_eq!(
        (xml.status, tpp_code(&xml)),
        (406, "REQUESTED_FORMATS_INVALID".into())
    );
    // No operation exists to validate against, so this exchange is checked by hand.
    let method = h
        .send(
            &Method::PUT,
            &format!("{base}/v1/consents"),
            &bg(&[]),
            None,
            None,
        )
        .await;
    assert_eq!(
        (method.status, tpp_code(&method)),
        (405, "SERVICE_INVALID".into())
    );
    let nowhere = h
        .send(
            &Method::GET,
            &format!("{base}/v2/whatever"),
            &bg(&[]),
            None,
            None,
        )
        .await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(tpp_code(&nowhere), "RESOURCE_UNKNOWN");
}
