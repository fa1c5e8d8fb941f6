//! What a failed sync costs and shows: only reads the bank served count against the consent's
//! daily allowance, the hub keeps retrying within what is left, and the tenant sees the real
//! next attempt, the last error, the run of failures and the recovery.

use kontor_domain::ConnectionId;
use kontor_domain::time::Timestamp;
use kontor_sandbox_bank::FaultConfig;
use kontor_service::{ServiceError, SyncTrigger, schedule};
use serde_json::Value;

use crate::support::{World, world};

fn bank_down() -> FaultConfig {
    FaultConfig {
        error_percent: 100,
        error_status: Some(503),
        ..FaultConfig::default()
    }
}

async fn unattended_reads(w: &World, id: &ConnectionId) -> u32 {
    let cell = w.app.hub.cell_of(id).await.unwrap();
    cell.sync_counters(id).await.unwrap().unattended_reads
}

async fn scheduled(w: &World, id: &ConnectionId) -> Result<(), ServiceError> {
    w.app.hub.sync(id, SyncTrigger::Scheduled).await.map(drop)
}

/// The events of `kind` about one connection, oldest first.
async fn events_about(w: &World, kind: &str, id: &str) -> Vec<Value> {
    let mut events: Vec<Value> = w
        .events(&format!("&type={kind}"))
        .await
        .into_iter()
        .filter(|e| e["data"]["connection_id"] == id)
        .collect();
    events.reverse();
    events
}

fn at(value: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(value.as_str().unwrap()).unwrap()
}

fn utc_day_of(rfc3339: &str) -> time::Date {
    let at = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    at.to_offset(time::UtcOffset::UTC).date()
}

#[tokio::test]
async fn a_sync_the_bank_did_not_serve_leaves_the_allowance_and_is_retried_today() {
    let w = world().await;
    let (_, raw, _) = w.link("alice", "sonnenbank").await;
    w.synced(&raw).await;
    let id = ConnectionId::parse(&raw).unwrap();
    // The first sync was the user's; three unattended ones use three of the day's four reads.
    assert_eq!(unattended_reads(&w, &id).await, 0);
    for _ in 0..3 {
        scheduled(&w, &id).await.unwrap();
    }
    assert_eq!(unattended_reads(&w, &id).await, 3);

    // A bank outage: the failed attempt is not a read.
    w.sandbox.set_faults("sonnenbank", bank_down()).unwrap();
    let err = scheduled(&w, &id).await.unwrap_err();
    assert!(matches!(err, ServiceError::Bank(_)), "{err}");
    assert_eq!(unattended_reads(&w, &id).await, 3, "no read was served");

    // The tenant is told when the hub tries again, and that is what the connection says too:
    // a retry within minutes, today, since a read is left.
    let failed = events_about(&w, "connection.sync_failed", &raw).await;
    assert_eq!(failed.len(), 1);
    let next = failed[0]["data"]["next_attempt_at"].as_str().unwrap();
    let connection = w.connection(&raw).await;
    assert_eq!(
        connection["next_sync_at"].as_str(),
        Some(next),
        "{connection}"
    );
    let retry_in =
        Timestamp::parse_rfc3339(next).unwrap().unix_seconds() - Timestamp::now().unix_seconds();
    assert!((0..=3_600).contains(&retry_in), "{next}");

    // The bank is back; the retry is made, and it is the day's fourth read.
    w.sandbox.clear_faults("sonnenbank").unwrap();
    scheduled(&w, &id).await.unwrap();
    assert_eq!(unattended_reads(&w, &id).await, 4);
    // None left today: the next attempt is tomorrow's, and the connection says so.
    let connection = w.connection(&raw).await;
    let next = connection["next_sync_at"].as_str().unwrap();
    assert_eq!(
        utc_day_of(next),
        schedule::utc_day(schedule::next_utc_day(Timestamp::now())),
        "{connection}"
    );
}

#[tokio::test]
async fn a_read_the_bank_served_counts_even_when_the_sync_fails_after_it() {
    let w = world().await;
    let (_, raw, _) = w.link("alice", "sonnenbank").await;
    w.synced(&raw).await;
    let id = ConnectionId::parse(&raw).unwrap();
    for _ in 0..3 {
        scheduled(&w, &id).await.unwrap();
    }
    // The account list is served, the transactions are not: the bank counted an access.
    w.sandbox
        .set_faults(
            "sonnenbank",
            FaultConfig {
                path_contains: Some("/transactions".into()),
                ..bank_down()
            },
        )
        .unwrap();
    scheduled(&w, &id).await.unwrap_err();
    assert_eq!(unattended_reads(&w, &id).await, 4);
    // That was the last read of the day: the next attempt is tomorrow, not a retry that would
    // find nothing left, and the event says the same as the connection.
    let failed = events_about(&w, "connection.sync_failed", &raw).await;
    let next = failed[0]["data"]["next_attempt_at"].as_str().unwrap();
    assert_eq!(
        utc_day_of(next),
        schedule::utc_day(schedule::next_utc_day(Timestamp::now()))
    );
    assert_eq!(
        w.connection(&raw).await["next_sync_at"].as_str(),
        Some(next)
    );
    // The hub itself holds back: no fifth unattended read today.
    w.sandbox.clear_faults("sonnenbank").unwrap();
    let err = scheduled(&w, &id).await.unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Conflict {
                code: kontor_service::ErrorCode::AccessExceeded,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(unattended_reads(&w, &id).await, 4);
}

/// A refresh once the connection's lease is free: `last_synced_at` commits a moment before the
/// first sync lets go of its lease, and a refresh in between is (rightly) `409 sync_in_progress`,
/// which changes nothing on the connection.
async fn refresh_once_free(w: &World, id: &str) -> reqwest::Response {
    for _ in 0..50 {
        let response = w.refresh(id).await;
        if response.status() != 409 {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    w.refresh(id).await
}

#[tokio::test]
async fn failures_and_recovery_show_on_the_connection_and_as_events() {
    let w = world().await;
    let (_, id, _) = w.link("bob", "thames-bank").await;
    let synced = w.synced(&id).await;
    let sync = &synced["sync"];
    assert_eq!(sync["consecutive_failures"], 0, "{synced}");
    assert!(sync["last_error"].is_null(), "{synced}");
    assert_eq!(sync["last_success_at"], synced["last_synced_at"]);
    assert_eq!(sync["next_attempt_at"], synced["next_sync_at"]);

    w.sandbox.set_faults("thames-bank", bank_down()).unwrap();
    for failures in 1..=2 {
        assert_eq!(refresh_once_free(&w, &id).await.status(), 503);
        let connection = w.connection(&id).await;
        let sync = &connection["sync"];
        assert_eq!(sync["consecutive_failures"], failures, "{connection}");
        assert_eq!(
            sync["last_error"]["code"], "bank_unavailable",
            "{connection}"
        );
        assert!(
            sync["last_error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(at(&sync["last_error"]["at"]) > at(&sync["last_success_at"]));
        assert_eq!(sync["next_attempt_at"], connection["next_sync_at"]);
    }
    assert_eq!(
        events_about(&w, "connection.sync_failed", &id).await.len(),
        1,
        "once per run"
    );
    assert!(
        events_about(&w, "connection.sync_recovered", &id)
            .await
            .is_empty()
    );

    w.sandbox.clear_faults("thames-bank").unwrap();
    assert_eq!(w.refresh(&id).await.status(), 200);
    let connection = w.connection(&id).await;
    let sync = &connection["sync"];
    assert_eq!(sync["consecutive_failures"], 0, "{connection}");
    // The last error stays for reference, older than the success that ended the run.
    assert_eq!(sync["last_error"]["code"], "bank_unavailable");
    assert!(at(&sync["last_error"]["at"]) < at(&sync["last_success_at"]));
    let recovered = events_about(&w, "connection.sync_recovered", &id).await;
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    let data = &recovered[0]["data"];
    assert_eq!(data["consecutive_failures"], 2, "{data}");
    assert_eq!(data["last_error_code"], "bank_unavailable", "{data}");
    assert_eq!(
        data["next_attempt_at"], connection["next_sync_at"],
        "{data}"
    );

    // A success without failures before it is no recovery.
    assert_eq!(w.refresh(&id).await.status(), 200);
    assert_eq!(
        events_about(&w, "connection.sync_recovered", &id)
            .await
            .len(),
        1
    );
}
