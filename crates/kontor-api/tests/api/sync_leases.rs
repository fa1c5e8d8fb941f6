//! Leases on syncs are short and renewed by their live holder: a slow bank never lets another
//! process in, and a process that dies mid-sync (here: its task aborted, so it neither renews nor
//! releases) loses the connection within seconds. A first sync the user started and a crash cut
//! short is resumed by the worker as the user's own, not as an unattended read.

use std::net::IpAddr;
use std::time::Duration;

use kontor_domain::ConnectionId;
use kontor_domain::time::Timestamp;
use kontor_sandbox_bank::FaultConfig;
use kontor_service::{NextStep, SyncTrigger};
use kontor_test_support::browser::Browser;
use kontor_test_support::error_code;
use kontor_worker::{Worker, WorkerSettings};
use sqlx::Row;

use crate::support::{World, http_settings, query_of, test_api_settings, world_with};

const LEASE_SECONDS: i64 = 3;

async fn short_leases() -> World {
    world_with(http_settings(), test_api_settings(), |hub| {
        hub.lease_seconds = LEASE_SECONDS;
    })
    .await
}

fn user_ip() -> IpAddr {
    IpAddr::from([198, 51, 100, 7])
}

fn slow_bank() -> FaultConfig {
    FaultConfig {
        latency_ms: 2_000,
        ..FaultConfig::default()
    }
}

/// The connection's lease and first-sync mark, as stored.
struct Stored {
    owner: Option<String>,
    until: Option<i64>,
    first_sync_started: Option<i64>,
}

async fn stored(w: &World, id: &str) -> Stored {
    let row = sqlx::query(
        "SELECT lease_owner, lease_until, first_sync_started_at FROM connections WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&w.app.stores.raw_cell_pool("de"))
    .await
    .unwrap();
    Stored {
        owner: row.try_get("lease_owner").unwrap(),
        until: row.try_get("lease_until").unwrap(),
        first_sync_started: row.try_get("first_sync_started_at").unwrap(),
    }
}

/// Polls `check` every 50 ms until it holds; fails after 30 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

/// Links `user` at `bank` and activates the connection through the hub itself, not the hosted
/// callback page: so no first sync starts on its own, and the test runs it.
async fn link_without_first_sync(w: &World, user: &str, bank: &str) -> String {
    let user_id = w.user(user).await;
    let created = w.create_connection(&user_id, None).await;
    let login = w
        .to_bank(&w.browser(), created["connect_url"].as_str().unwrap(), bank)
        .await;
    // A browser that stays at the bank: where it is sent back to the hub, it stops.
    let at_bank = Browser::new(&[w.sandbox.url()]);
    let callback = w.authenticate(&at_bank, &login, user).await.left();
    let step = w.app.hub.link_callback(query_of(&callback)).await.unwrap();
    assert!(
        matches!(
            step,
            NextStep::Tenant {
                activated: Some(_),
                ..
            }
        ),
        "{step:?}"
    );
    created["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_live_sync_keeps_its_lease_however_long_the_bank_takes() {
    let w = short_leases().await;
    let (_, raw, _) = w.link("alice", "sonnenbank").await;
    w.synced(&raw).await;
    let id = ConnectionId::parse(&raw).unwrap();
    w.sandbox.set_faults("sonnenbank", slow_bank()).unwrap();
    let hub = w.app.hub.clone();
    let running = {
        let id = id.clone();
        tokio::spawn(async move { hub.sync(&id, SyncTrigger::UserPresent(user_ip())).await })
    };
    until("the sync holds the lease", || async {
        stored(&w, &raw).await.owner.is_some()
    })
    .await;
    let first_until = stored(&w, &raw).await.until.unwrap();
    // Past the end of the lease as first taken; the bank is still answering (several reads of
    // two seconds each).
    until("the first lease period is over", || async {
        Timestamp::now().unix_micros() > first_until + 200_000
    })
    .await;
    assert!(!running.is_finished(), "the sync should still be reading");
    assert!(
        stored(&w, &raw).await.until.unwrap_or(0) > first_until,
        "renewed"
    );
    let response = w.refresh(&raw).await;
    assert_eq!(response.status(), 409, "the holder is alive");
    assert_eq!(error_code(response).await, "sync_in_progress");
    running.await.unwrap().unwrap();
    w.sandbox.clear_faults("sonnenbank").unwrap();
    let after = stored(&w, &raw).await;
    assert!(after.owner.is_none(), "released when done");
}

#[tokio::test]
async fn a_first_sync_cut_short_by_a_crash_resumes_soon_as_the_users_own() {
    let w = short_leases().await;
    let raw = link_without_first_sync(&w, "alice", "sonnenbank").await;
    let id = ConnectionId::parse(&raw).unwrap();

    // The user's first sync starts and the process dies while the bank answers.
    w.sandbox.set_faults("sonnenbank", slow_bank()).unwrap();
    let hub = w.app.hub.clone();
    let dying = {
        let id = id.clone();
        tokio::spawn(async move { hub.sync(&id, SyncTrigger::UserPresent(user_ip())).await })
    };
    until("the first sync is under way", || async {
        let row = stored(&w, &raw).await;
        row.owner.is_some() && row.first_sync_started.is_some()
    })
    .await;
    dying.abort();
    assert!(dying.await.unwrap_err().is_cancelled());
    w.sandbox.clear_faults("sonnenbank").unwrap();
    let connection = w.connection(&raw).await;
    assert_eq!(connection["status"], "active");
    assert!(connection["last_synced_at"].is_null(), "{connection}");
    assert!(
        stored(&w, &raw).await.owner.is_some(),
        "the dead owner's lease"
    );

    // A worker (a restarted process, say) resumes it once the dead owner's lease lapses: the
    // hub's clock moves past it.
    w.app
        .clock
        .advance(Duration::from_secs(LEASE_SECONDS.unsigned_abs() + 1));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = Worker::new(
        w.app.hub.clone(),
        WorkerSettings {
            tick: Duration::from_millis(200),
            ..WorkerSettings::default()
        },
    );
    let worker = tokio::spawn(worker.run(stopped));
    let connection = w.synced(&raw).await;
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert!(
        !connection["account_ids"].as_array().unwrap().is_empty(),
        "{connection}"
    );
    // Still the user's sync: it did not count against the day's unattended reads.
    let cell = w.app.hub.cell_of(&id).await.unwrap();
    assert_eq!(cell.sync_counters(&id).await.unwrap().unattended_reads, 0);
    assert!(stored(&w, &raw).await.first_sync_started.is_none(), "done");
    // And nothing holds the connection any more.
    assert_eq!(w.refresh(&raw).await.status(), 200);
}
