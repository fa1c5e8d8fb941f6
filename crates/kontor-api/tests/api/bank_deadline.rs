//! Requests that wait on a bank are bounded (`ApiSettings::bank_deadline`, config
//! `server.bank_deadline_ms`): a bank asking to wait longer than that gets its rate limit answered
//! at once, with its `Retry-After`, and a bank too slow for it gets `bank_unavailable`.

use std::time::Duration;

use kontor_api::ApiSettings;
use kontor_banks::HttpSettings;
use kontor_sandbox_bank::FaultConfig;
use kontor_test_support::error_code;
use serde_json::Value;

use crate::support::{World, http_settings, test_api_settings, world_with};

/// Fault responses the sandbox has given at `bank` so far.
async fn injected(w: &World, bank: &str) -> u64 {
    let url = format!("{}/banks/{bank}/faults", w.sandbox.admin_url());
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    body["injected"].as_u64().expect("injected count")
}

#[tokio::test]
async fn a_long_retry_after_is_answered_at_once_with_the_banks_wait() {
    // The connector would honour a Retry-After of up to 30 s on its own (the default): only the
    // request's deadline (15 s by default) stops it from sitting that out, three times over.
    let w = world_with(
        HttpSettings {
            max_retry_after: Duration::from_secs(30),
            ..http_settings()
        },
        test_api_settings(),
        |_| {},
    )
    .await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (_, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        w.sandbox
            .set_faults(
                bank,
                FaultConfig {
                    rate_limit_next: 5,
                    retry_after_seconds: Some(30),
                    path_contains: Some("/accounts".into()),
                    ..FaultConfig::default()
                },
            )
            .unwrap();
        let before = injected(&w, bank).await;
        let response = w.refresh(&id).await;
        assert_eq!(response.status(), 429, "{bank}");
        assert_eq!(response.headers()["retry-after"], "30", "{bank}");
        assert_eq!(error_code(response).await, "bank_rate_limited", "{bank}");
        assert_eq!(
            injected(&w, bank).await - before,
            1,
            "{bank}: asked once, not again after sleeping out the bank's wait"
        );
        w.sandbox.clear_faults(bank).unwrap();
        assert_eq!(w.refresh(&id).await.status(), 200, "{bank}");
    }
}

#[tokio::test]
async fn a_request_waits_on_a_slow_bank_no_longer_than_its_deadline() {
    let w = world_with(
        http_settings(),
        ApiSettings {
            bank_deadline: Duration::from_secs(1),
            ..test_api_settings()
        },
        |_| {},
    )
    .await;
    let (_, id, _) = w.link("alice", "sonnenbank").await;
    // The first sync runs in the background, not bounded by any request.
    w.synced(&id).await;
    // Each answer comes within the connector's own timeout (3 s), but a refresh asks several.
    w.sandbox
        .set_faults(
            "sonnenbank",
            FaultConfig {
                latency_ms: 2_000,
                ..FaultConfig::default()
            },
        )
        .unwrap();
    let response = w.refresh(&id).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "bank_unavailable");
    w.sandbox.clear_faults("sonnenbank").unwrap();
    let connection = w.connection(&id).await;
    assert_eq!(connection["status"], "active", "{connection}");
    assert_eq!(w.refresh(&id).await.status(), 200);
}
