//! The metrics of issue 16 appear with their labels once what they count has happened: bank
//! calls by bank, operation and outcome; payment status changes; consents that lapsed; and the
//! worker's gauges (payments per phase, webhook backlog, overdue syncs, expiring consents).
//! Only this test reads the worker's gauges in this binary, so their values are its own.

use kontor_domain::time::Timestamp;
use kontor_sandbox_bank::FaultConfig;
use serde_json::Value;

use crate::payments::{authorise, body, post, settle};
use crate::support::{World, world};

/// The value of the series `name` whose labels include every pair of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|raw| raw.parse().ok())
}

async fn metrics(w: &World) -> String {
    w.app
        .http
        .get(w.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn bank_calls_payments_expiries_and_backlogs_are_measured() {
    let w = world().await;
    let (user, connection, _) = w.link("alice", "sonnenbank").await;
    w.synced(&connection).await;

    // A bank slower than the connector's timeout: the refresh's account read is unavailable.
    w.sandbox
        .set_faults(
            "sonnenbank",
            FaultConfig {
                latency_ms: 4_000,
                ..FaultConfig::default()
            },
        )
        .unwrap();
    assert_eq!(w.refresh(&connection).await.status(), 503);
    w.sandbox.clear_faults("sonnenbank").unwrap();

    // A payment, accepted and not yet authorised.
    let created: Value = post(&w, Some("order-1"), &body(&user, "sonnenbank", "9.99"))
        .await
        .json()
        .await
        .unwrap();
    let payment = created["id"].as_str().unwrap().to_owned();
    let now = Timestamp::now();
    assert_eq!(kontor_worker::report_gauges(&w.app.hub, now).await, 2);
    let text = metrics(&w).await;

    let ok = |operation| {
        value(
            &text,
            "kontor_bank_requests_total",
            &[
                ("bank", "sonnenbank"),
                ("operation", operation),
                ("outcome", "ok"),
            ],
        )
    };
    for operation in [
        "start_consent",
        "complete_consent",
        "accounts",
        "balances",
        "transactions",
    ] {
        assert!(ok(operation).unwrap_or(0.0) >= 1.0, "{operation}:\n{text}");
    }
    let unavailable = value(
        &text,
        "kontor_bank_requests_total",
        &[
            ("bank", "sonnenbank"),
            ("operation", "accounts"),
            ("outcome", "unavailable"),
        ],
    );
    assert!(unavailable.unwrap_or(0.0) >= 1.0, "{text}");
    assert!(
        value(
            &text,
            "kontor_bank_request_duration_seconds_count",
            &[("bank", "sonnenbank"), ("operation", "accounts")],
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );

    let gauge = |text: &str, name, labels: &[(&str, &str)]| {
        value(text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing:\n{text}"))
    };
    assert_eq!(
        gauge(
            &text,
            "kontor_payments",
            &[("region", "de"), ("phase", "accepted")]
        ),
        1.0
    );
    assert_eq!(
        gauge(
            &text,
            "kontor_payments",
            &[("region", "uk"), ("phase", "accepted")]
        ),
        0.0
    );
    assert_eq!(
        gauge(
            &text,
            "kontor_payments",
            &[("region", "de"), ("phase", "submitted")]
        ),
        0.0
    );
    for name in [
        "kontor_payments_oldest_in_phase_seconds",
        "kontor_webhook_backlog",
        "kontor_webhook_oldest_undelivered_seconds",
        "kontor_webhook_backlog_oldest_due_seconds",
        "kontor_sync_oldest_overdue_seconds",
        "kontor_consents_expiring",
    ] {
        gauge(&text, name, &[("region", "de")]);
        gauge(&text, name, &[("region", "uk")]);
    }
    assert_eq!(
        gauge(&text, "kontor_consents_expiring", &[("region", "de")]),
        0.0
    );

    // Half a year on: the consent lapses within the notice period, the scheduled sync is
    // overdue, and the events of linking still wait in the outbox (no worker dispatches here).
    let later = now.plus_seconds(175 * 86_400);
    kontor_worker::report_gauges(&w.app.hub, later).await;
    let text = metrics(&w).await;
    assert_eq!(
        gauge(&text, "kontor_consents_expiring", &[("region", "de")]),
        1.0
    );
    assert!(
        gauge(
            &text,
            "kontor_sync_oldest_overdue_seconds",
            &[("region", "de")]
        ) > 86_400.0
    );
    assert!(
        gauge(
            &text,
            "kontor_webhook_backlog_oldest_due_seconds",
            &[("region", "de")]
        ) > 86_400.0
    );
    assert!(
        gauge(
            &text,
            "kontor_payments_oldest_in_phase_seconds",
            &[("region", "de"), ("phase", "accepted")]
        ) > 86_400.0
    );

    // The payment goes through: its status changes are counted.
    let url = created["authorize_url"].as_str().unwrap();
    authorise(&w, url, "alice").await;
    let done = settle(&w, &payment).await;
    assert_eq!(done["status"], "completed", "{done}");
    // The consent lapses at the end of its validity.
    let expired = w
        .app
        .hub
        .expire_lapsed(now.plus_seconds(200 * 86_400))
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let text = metrics(&w).await;
    for (name, labels) in [
        (
            "kontor_payment_status_changes_total",
            [("region", "de"), ("status", "completed")],
        ),
        (
            "kontor_consents_expired_total",
            [("region", "de"), ("by", "validity")],
        ),
        (
            "kontor_bank_requests_total",
            [("operation", "initiate_payment"), ("outcome", "ok")],
        ),
    ] {
        let counted = value(&text, name, &labels).unwrap_or(0.0);
        assert!(counted >= 1.0, "{name} {labels:?}:\n{text}");
    }
    // Labels carry no ids.
    assert!(!text.contains("usr_") && !text.contains("con_") && !text.contains("pay_"));
}
