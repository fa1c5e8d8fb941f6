//! Faults on demand: 5xx, 429 with Retry-After, connection resets, latency, determinism.

use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use crate::common::{Harness, bg, builder};
use crate::spec::Api;
use crate::uk_flows::{aisp, auth};

async fn set(h: &Harness, bank: &str, faults: serde_json::Value) {
    let reply = h
        .admin(Method::PUT, &format!("/banks/{bank}/faults"), Some(faults))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

async fn bg_status(h: &Harness) -> crate::common::Reply {
    h.call(
        Api::BerlinGroup,
        &h.base("sonnenbank"),
        Method::GET,
        "/v1/consents/cns-unknown/status",
        &bg(&[]),
        None,
    )
    .await
}

#[tokio::test]
async fn server_errors_in_each_standards_format() {
    let Some(h) = Harness::start().await else {
        return;
    };
    set(&h, "sonnenbank", json!({ "fail_next": 1 })).await;
    let failed = bg_status(&h).await;
    assert_eq!(failed.status, 500);
    assert!(
        failed.body.is_empty(),
        "the spec defines no body for Berlin Group 500s"
    );
    assert!(failed.header("x-request-id").is_some());
    assert_eq!(
        bg_status(&h).await.status,
        403,
        "only the next request failed"
    );
    set(
        &h,
        "sonnenbank",
        json!({ "fail_next": 1, "error_status": 503 }),
    )
    .await;
    assert_eq!(bg_status(&h).await.status, 503);

    set(&h, "thames-bank", json!({ "fail_next": 2 })).await;
    let uk = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &auth("none"),
            None,
        )
        .await;
    assert_eq!(uk.status, 500);
    assert_eq!(
        uk.json()["Errors"][0]["ErrorCode"],
        "UK.OBIE.UnexpectedError"
    );
    let token = h
        .send(
            &Method::POST,
            &h.sandbox.uk_credentials("thames-bank").unwrap().token_url,
            &[],
            None,
            None,
        )
        .await;
    assert_eq!(token.status, 500, "the token endpoint fails too");
    // 503 is not among the UK spec's responses; real banks send it anyway, without a body.
    set(
        &h,
        "thames-bank",
        json!({ "fail_next": 1, "error_status": 503 }),
    )
    .await;
    let unavailable = h
        .send(
            &Method::GET,
            &format!("{}/accounts", aisp(&h)),
            &auth("none"),
            None,
            None,
        )
        .await;
    assert_eq!(unavailable.status, 503);
    assert!(unavailable.header("x-fapi-interaction-id").is_some());
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let Some(h) = Harness::start().await else {
        return;
    };
    set(
        &h,
        "sonnenbank",
        json!({ "rate_limit_next": 2, "retry_after_seconds": 7 }),
    )
    .await;
    let ais = bg_status(&h).await;
    assert_eq!((ais.status, ais.header("retry-after")), (429, Some("7")));
    assert_eq!(ais.json()["tppMessages"][0]["code"], "ACCESS_EXCEEDED");
    let pis = h
        .call(
            Api::BerlinGroup,
            &h.base("sonnenbank"),
            Method::GET,
            "/v1/payments/sepa-credit-transfers/pmt-x/status",
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(pis.status, 429);
    assert!(pis.body.is_empty(), "PIS 429s have no body in the spec");
    set(
        &h,
        "thames-bank",
        json!({ "rate_limit_next": 1, "retry_after_seconds": 3 }),
    )
    .await;
    let uk = h
        .call(
            Api::UkAccounts,
            &aisp(&h),
            Method::GET,
            "/accounts",
            &auth("none"),
            None,
        )
        .await;
    assert_eq!((uk.status, uk.header("retry-after")), (429, Some("3")));
}

#[tokio::test]
async fn connection_resets_close_without_a_response() {
    let Some(h) = Harness::start().await else {
        return;
    };
    set(&h, "sonnenbank", json!({ "reset_next": 1 })).await;
    let url = format!("{}/v1/consents/cns-x/status", h.base("sonnenbank"));
    let result = h
        .client
        .get(&url)
        .header("x-request-id", crate::common::uuid())
        .send()
        .await;
    let error = result.expect_err("the connection is closed without a response");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    assert_eq!(
        bg_status(&h).await.status,
        403,
        "the bank answers again afterwards"
    );
    let faults = h
        .admin(Method::GET, "/banks/sonnenbank/faults", None)
        .await
        .json();
    assert_eq!(faults["injected"], 1);
}

#[tokio::test]
async fn latency_is_added_and_cleared() {
    let Some(h) = Harness::start().await else {
        return;
    };
    set(&h, "sonnenbank", json!({ "latency_ms": 300 })).await;
    let started = Instant::now();
    assert_eq!(bg_status(&h).await.status, 403);
    assert!(started.elapsed().as_millis() >= 300);
    assert_eq!(
        h.admin(Method::DELETE, "/banks/sonnenbank/faults", None)
            .await
            .status,
        204
    );
    let started = Instant::now();
    bg_status(&h).await;
    assert!(started.elapsed().as_millis() < 300);
}

#[tokio::test]
async fn percentage_faults_repeat_for_the_same_seed_and_respect_path_filters() {
    let Some(h) = Harness::start().await else {
        return;
    };
    let Some(other) = Harness::start_with(builder()).await else {
        return;
    };
    let config = json!({ "error_percent": 40, "seed": 3, "path_contains": "/status" });
    let mut runs = Vec::new();
    for harness in [&h, &other] {
        set(harness, "sonnenbank", config.clone()).await;
        let mut statuses = Vec::new();
        for _ in 0..25 {
            statuses.push(bg_status(harness).await.status);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let errors = runs[0].iter().filter(|s| **s == 500).count();
    assert!((3..=20).contains(&errors), "{:?}", runs[0]);
    let elsewhere = h
        .call(
            Api::BerlinGroup,
            &h.base("sonnenbank"),
            Method::GET,
            "/v1/consents/cns-x",
            &bg(&[]),
            None,
        )
        .await;
    assert_eq!(elsewhere.status, 403, "paths without /status are untouched");

    let invalid = h
        .admin(
            Method::PUT,
            "/banks/sonnenbank/faults",
            Some(json!({ "error_percent": 101 })),
        )
        .await;
    assert_eq!(invalid.status, 400);
    let typo = h
        .admin(
            Method::PUT,
            "/banks/sonnenbank/faults",
            Some(json!({ "latency": 5 })),
        )
        .await;
    assert_eq!(typo.status, 400);
    assert_eq!(
        h.admin(Method::GET, "/banks/nobank/faults", None)
            .await
            .status,
        404
    );
}
