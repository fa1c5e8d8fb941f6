//! A connection's sync bookkeeping: leases renewed by their holder only (connections and
//! payments alike), the day's unattended reads counted once across racing processes and given
//! back or filled up as a sync ends, and the last error and first-sync mark kept as they should.

use std::sync::Arc;

use kontor_domain::connection::{ConnectionEvent, SyncError};
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, TenantId};
use kontor_store::{
    AccountStore, CellStore, ConnectionStore, PaymentStore, ReadsChange, SyncBookkeeping,
    SyncWrite, Transition, UserStore,
};
use kontor_test_support::TestStores;
use time::macros::date;

use crate::connections::user_with_connection;
use crate::payments::new_payment;
use crate::users::new_user;

fn authorised(at: Timestamp) -> Transition {
    Transition {
        event: ConnectionEvent::Authorised,
        failure_reason: None,
        valid_until: None,
        session: Some("sealed-session".into()),
        next_sync_at: Some(at),
        at,
    }
}

async fn active_connection(cell: &dyn CellStore) -> ConnectionId {
    let (_, id) = user_with_connection(cell, &TenantId::generate()).await;
    cell.transition(&id, &authorised(Timestamp::now()), None)
        .await
        .unwrap();
    id
}

fn failure(reads: ReadsChange, failures: u32, error: Option<SyncError>) -> SyncBookkeeping {
    SyncBookkeeping {
        synced_at: None,
        next_sync_at: Some(Timestamp::now().plus_seconds(300)),
        reads,
        sync_failures: failures,
        error,
        session: None,
    }
}

pub async fn leases_are_renewed_by_their_holder_only(stores: TestStores) {
    let cell = stores.cell("de");
    let id = active_connection(cell.as_ref()).await;
    let now = Timestamp::now();
    assert!(
        cell.claim(&id, "a", now.plus_seconds(3), now)
            .await
            .unwrap()
    );
    assert!(cell.renew(&id, "a", now.plus_seconds(6)).await.unwrap());
    assert!(!cell.renew(&id, "b", now.plus_seconds(60)).await.unwrap());
    // Renewed, so not yet lapsed where the first lease would have.
    assert!(
        !cell
            .claim(&id, "b", now.plus_seconds(9), now.plus_seconds(4))
            .await
            .unwrap()
    );
    // Lapsed and taken over: the old holder cannot renew it back.
    assert!(
        cell.claim(&id, "b", now.plus_seconds(9), now.plus_seconds(7))
            .await
            .unwrap()
    );
    assert!(!cell.renew(&id, "a", now.plus_seconds(12)).await.unwrap());
    cell.release(&id, "b").await.unwrap();
    assert!(!cell.renew(&id, "b", now.plus_seconds(12)).await.unwrap());

    let user = cell
        .create_user(&new_user(&TenantId::generate(), "payer", "de"))
        .await
        .unwrap();
    let payment = cell
        .create_payment(&new_payment(&user.tenant_id, &user.id))
        .await
        .unwrap();
    let pid = &payment.id;
    assert!(
        cell.claim_payment(pid, "w", now.plus_seconds(3), now)
            .await
            .unwrap()
    );
    assert!(
        cell.renew_payment(pid, "w", now.plus_seconds(6))
            .await
            .unwrap()
    );
    assert!(
        !cell
            .renew_payment(pid, "x", now.plus_seconds(6))
            .await
            .unwrap()
    );
    assert!(
        !cell
            .claim_payment(pid, "x", now.plus_seconds(9), now.plus_seconds(4))
            .await
            .unwrap()
    );
}

pub async fn unattended_reads_are_counted_once_across_racing_processes(stores: TestStores) {
    let cell: Arc<dyn CellStore> = stores.cell("de").clone();
    let id = active_connection(cell.as_ref()).await;
    let day = date!(2026 - 11 - 26);
    let racers: Vec<_> = (0..10)
        .map(|_| {
            let cell = cell.clone();
            let id = id.clone();
            tokio::spawn(async move { cell.reserve_read(&id, day, 4).await.unwrap() })
        })
        .collect();
    let mut counted = 0;
    for racer in racers {
        counted += u32::from(racer.await.unwrap());
    }
    assert_eq!(counted, 4, "never past the allowance");
    let counters = cell.sync_counters(&id).await.unwrap();
    assert_eq!(
        (counters.reads_day, counters.unattended_reads),
        (Some(day), 4)
    );

    // A read the bank did not serve is given back; one of another day is not.
    cell.record_sync_failure(&id, &failure(ReadsChange::GiveBack(day), 1, None), None)
        .await
        .unwrap();
    assert_eq!(cell.sync_counters(&id).await.unwrap().unattended_reads, 3);
    let yesterday = date!(2026 - 11 - 25);
    cell.record_sync_failure(
        &id,
        &failure(ReadsChange::GiveBack(yesterday), 1, None),
        None,
    )
    .await
    .unwrap();
    assert_eq!(cell.sync_counters(&id).await.unwrap().unattended_reads, 3);
    // The bank says the day is used up.
    let used_up = ReadsChange::UsedUp { day, allowance: 4 };
    cell.record_sync_failure(&id, &failure(used_up, 2, None), None)
        .await
        .unwrap();
    assert!(!cell.reserve_read(&id, day, 4).await.unwrap());
    // A new day starts from nothing.
    let tomorrow = date!(2026 - 11 - 27);
    assert!(cell.reserve_read(&id, tomorrow, 4).await.unwrap());
    let counters = cell.sync_counters(&id).await.unwrap();
    assert_eq!(
        (
            counters.reads_day,
            counters.unattended_reads,
            counters.sync_failures
        ),
        (Some(tomorrow), 1, 2)
    );
}

pub async fn the_last_error_and_the_first_sync_are_kept_as_they_should(stores: TestStores) {
    let cell = stores.cell("de");
    let id = active_connection(cell.as_ref()).await;
    let tenant = cell
        .connection_secrets(&id)
        .await
        .unwrap()
        .connection
        .tenant_id;
    let started = Timestamp::now();
    cell.start_first_sync(&id, "sealed-ip", started)
        .await
        .unwrap();
    let secrets = cell.connection_secrets(&id).await.unwrap();
    assert_eq!(secrets.first_sync, Some(("sealed-ip".to_owned(), started)));

    let error = SyncError {
        code: "bank_unavailable".into(),
        message: "bank unavailable: the bank answered 503".into(),
        at: Timestamp::now(),
    };
    cell.record_sync_failure(
        &id,
        &failure(ReadsChange::Keep, 1, Some(error.clone())),
        None,
    )
    .await
    .unwrap();
    let failed = cell.connection(&tenant, &id).await.unwrap();
    assert_eq!(failed.sync_failures, 1);
    assert_eq!(failed.last_sync_error, Some(error.clone()));
    assert!(
        cell.connection_secrets(&id)
            .await
            .unwrap()
            .first_sync
            .is_some()
    );

    // A success ends the run and the first sync, and keeps the last error for reference.
    let synced_at = Timestamp::now();
    let write = SyncWrite {
        connection_id: id.clone(),
        accounts: vec![],
        balances: vec![],
        inserts: vec![],
        updates: vec![],
        removals: vec![],
        bookkeeping: SyncBookkeeping {
            synced_at: Some(synced_at),
            sync_failures: 0,
            ..failure(ReadsChange::Keep, 0, None)
        },
        events: vec![],
    };
    cell.apply_sync(&write).await.unwrap();
    let synced = cell.connection(&tenant, &id).await.unwrap();
    assert_eq!(synced.sync_failures, 0);
    assert_eq!(synced.last_synced_at, Some(synced_at));
    assert_eq!(synced.last_sync_error, Some(error));
    assert_eq!(cell.connection_secrets(&id).await.unwrap().first_sync, None);
    // Once synced, there is no first sync to mark any more.
    cell.start_first_sync(&id, "sealed-ip", Timestamp::now())
        .await
        .unwrap();
    assert_eq!(cell.connection_secrets(&id).await.unwrap().first_sync, None);

    // An ended connection keeps no user's IP address.
    let other = active_connection(cell.as_ref()).await;
    cell.start_first_sync(&other, "sealed-ip", Timestamp::now())
        .await
        .unwrap();
    let revoked = Transition {
        event: ConnectionEvent::Revoked,
        session: None,
        next_sync_at: None,
        ..authorised(Timestamp::now())
    };
    cell.transition(&other, &revoked, None).await.unwrap();
    assert_eq!(
        cell.connection_secrets(&other).await.unwrap().first_sync,
        None
    );
}
