//! Erasure as a recorded, resumable operation (its revocation queue, the user's data and events
//! deleted, closing with a tally), idempotency records erased by user, and event retention.

use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::{
    ConnectionId, DeliveryId, EventId, Region, TenantId, UserId, WebhookEndpointId,
};
use kontor_store::{
    DeliveryStore, ErasurePhase, ErasureStore, EventFilter, EventStore, Idempotency, NewDelivery,
    NewRevocation, RevocationOutcome, RevocationTally, StoreError, UserStore,
};
use kontor_test_support::TestStores;

use crate::users::new_user;

fn uk() -> Region {
    Region::parse("uk").unwrap()
}

fn event(tenant: &TenantId, user: Option<&UserId>, at: Timestamp) -> Event {
    Event {
        id: EventId::generate(&uk()),
        tenant_id: tenant.clone(),
        user_id: user.cloned(),
        event_type: EventType::TransactionsUpdated,
        data: serde_json::json!({ "n": 1 }),
        created_at: at,
    }
}

/// An event with a delivery and one attempt (written directly: attempts need a claim).
async fn delivered(stores: &TestStores, event: &Event) {
    let cell = stores.cell("uk");
    cell.append_event(event).await.unwrap();
    let delivery = DeliveryId::generate(&uk());
    cell.create_deliveries(&[NewDelivery {
        id: delivery.clone(),
        tenant_id: event.tenant_id.clone(),
        endpoint_id: WebhookEndpointId::generate(),
        event_id: event.id.clone(),
        ordering_key: event.id.to_string(),
        queued_at: event.created_at,
        redelivery: true,
        created_at: event.created_at,
    }])
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, seq, at, status_code, latency_us) \
         VALUES ($1, 1, $2, 500, 10)",
    )
    .bind(delivery.as_str())
    .bind(event.created_at.unix_micros())
    .execute(&stores.raw_cell_pool("uk"))
    .await
    .unwrap();
}

async fn count(stores: &TestStores, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&stores.raw_cell_pool("uk"))
        .await
        .unwrap()
}

pub async fn erasure_is_recorded_then_erases_and_closes(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let now = Timestamp::now();
    let user = cell
        .create_user(&new_user(&tenant, "erase-me", "uk"))
        .await
        .unwrap();
    let keep = cell
        .create_user(&new_user(&tenant, "keep-me", "uk"))
        .await
        .unwrap();
    let revocation = NewRevocation {
        id: "rvk_1".into(),
        connection_id: ConnectionId::generate(&uk()),
        bank_id: "thames-bank".into(),
        ticket: "sealed".into(),
    };

    // Another tenant cannot erase the user; a user that does not exist is not found.
    assert!(matches!(
        cell.record_erasure(&TenantId::generate(), &user.id, &[], now)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        cell.record_erasure(&tenant, &user.id, std::slice::from_ref(&revocation), now)
            .await
            .unwrap()
    );
    // Recorded once: a repeat keeps the first record and adds no revocation.
    assert!(
        !cell
            .record_erasure(&tenant, &user.id, std::slice::from_ref(&revocation), now)
            .await
            .unwrap()
    );
    let recorded = cell.erasure(&user.id).await.unwrap().unwrap();
    assert_eq!(recorded.phase, ErasurePhase::Recorded);
    // Nothing is revoked before the data is gone; a fresh record is not stale yet.
    assert!(
        cell.revocations_due(now.plus_seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(cell.erasures_to_finish(now, 10).await.unwrap().is_empty());
    let stale = cell
        .erasures_to_finish(now.plus_seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].user_id, user.id);

    let mine = event(&tenant, Some(&user.id), now);
    let theirs = event(&tenant, Some(&keep.id), now);
    delivered(&stores, &mine).await;
    delivered(&stores, &theirs).await;
    let erased = event(&tenant, None, now);
    assert!(cell.erase_user_data(&user.id, &erased, now).await.unwrap());
    assert!(!cell.erase_user_data(&user.id, &erased, now).await.unwrap());
    assert!(matches!(
        cell.user(&tenant, &user.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        cell.event(&tenant, &mine.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(count(&stores, "webhook_deliveries").await, 1);
    assert_eq!(count(&stores, "webhook_attempts").await, 1);
    let listed = cell
        .list_events(
            &tenant,
            &EventFilter {
                user: Some(user.id.clone()),
                ..EventFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    cell.event(&tenant, &theirs.id).await.unwrap();
    cell.event(&tenant, &erased.id).await.unwrap();

    // The revocation is due now; a failed attempt waits for its retry.
    let due = cell.revocations_due(now, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].ticket, "sealed");
    assert_eq!(due[0].attempts, 0);
    let closing = |tally: RevocationTally| {
        let mut e = event(&tenant, None, now);
        e.data = serde_json::json!({ "revoked": tally.revoked, "failed": tally.failed });
        e
    };
    assert_eq!(cell.close_erasure(&user.id, &closing).await.unwrap(), None);
    cell.record_revocation(
        "rvk_1",
        &RevocationOutcome::Retry {
            next_attempt_at: now.plus_seconds(60),
            error: "bank_unavailable".into(),
        },
        None,
        now,
    )
    .await
    .unwrap();
    assert!(cell.revocations_due(now, 10).await.unwrap().is_empty());
    let again = cell
        .revocations_due(now.plus_seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 1);
    let failure = event(&tenant, None, now);
    cell.record_revocation(
        "rvk_1",
        &RevocationOutcome::Failed {
            error: "bank_unavailable".into(),
        },
        Some(&failure),
        now,
    )
    .await
    .unwrap();
    cell.event(&tenant, &failure.id).await.unwrap();
    // An outcome for a revocation no longer pending changes nothing.
    let late = event(&tenant, None, now);
    cell.record_revocation("rvk_1", &RevocationOutcome::Revoked, Some(&late), now)
        .await
        .unwrap();
    assert!(matches!(
        cell.event(&tenant, &late.id).await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(
        cell.erasures_to_finish(now, 10).await.unwrap()[0].phase,
        ErasurePhase::Erased
    );
    assert_eq!(
        cell.close_erasure(&user.id, &closing).await.unwrap(),
        Some(RevocationTally {
            revoked: 0,
            failed: 1
        })
    );
    assert_eq!(cell.erasure(&user.id).await.unwrap(), None);
    assert_eq!(count(&stores, "erasure_revocations").await, 0);
    assert_eq!(cell.close_erasure(&user.id, &closing).await.unwrap(), None);
}

pub async fn idempotency_records_are_erased_by_user_and_by_resource(stores: TestStores) {
    let control = stores.control();
    let tenant = TenantId::generate();
    let gone = UserId::generate(&uk());
    let stays = UserId::generate(&uk());
    let now = Timestamp::now();
    let lock = now.plus_seconds(60);
    for (user, key, resource) in [
        (&gone, "k-gone", "pay_uk_1"),
        (&stays, "k-stays", "pay_uk_2"),
        (&stays, "k-old", "pay_uk_3"),
    ] {
        control
            .begin_idempotent(&tenant, user, key, "h", resource, lock, now)
            .await
            .unwrap();
        control
            .complete_idempotent(&tenant, key, now)
            .await
            .unwrap();
    }
    // A record from before keys named their user.
    sqlx::query("UPDATE idempotency_keys SET user_id = NULL WHERE idempotency_key = 'k-old'")
        .execute(&stores.raw_control_pool())
        .await
        .unwrap();
    let erased = control
        .erase_idempotency(&tenant, &gone, &["pay_uk_3".to_owned()])
        .await
        .unwrap();
    assert_eq!(erased, 2);
    for (key, expected) in [
        ("k-gone", Idempotency::New),
        ("k-old", Idempotency::New),
        (
            "k-stays",
            Idempotency::Replay {
                resource_id: "pay_uk_2".into(),
            },
        ),
    ] {
        assert_eq!(
            control
                .begin_idempotent(&tenant, &stays, key, "h", "pay_uk_9", lock, now)
                .await
                .unwrap(),
            expected,
            "{key}"
        );
    }
}

pub async fn retention_deletes_old_events_in_batches(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let now = Timestamp::now();
    let old = now.plus_seconds(-91 * 86_400);
    let mut old_events = Vec::new();
    for i in 0..3 {
        let e = event(&tenant, None, old.plus_seconds(i));
        delivered(&stores, &e).await;
        old_events.push(e);
    }
    let recent = event(&tenant, None, now.plus_seconds(-89 * 86_400));
    delivered(&stores, &recent).await;
    let cutoff = now.plus_seconds(-90 * 86_400);
    assert_eq!(cell.purge_events(cutoff, 2).await.unwrap(), 2);
    assert_eq!(cell.purge_events(cutoff, 2).await.unwrap(), 1);
    assert_eq!(cell.purge_events(cutoff, 2).await.unwrap(), 0);
    for e in &old_events {
        assert!(matches!(
            cell.event(&tenant, &e.id).await,
            Err(StoreError::NotFound)
        ));
    }
    cell.event(&tenant, &recent.id).await.unwrap();
    assert_eq!(count(&stores, "events").await, 1);
    assert_eq!(count(&stores, "webhook_deliveries").await, 1);
    assert_eq!(count(&stores, "webhook_attempts").await, 1);
}
