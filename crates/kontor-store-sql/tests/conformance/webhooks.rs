//! Webhooks in storage: endpoints and their sealed secrets in the control database; the outbox
//! (events turned into deliveries once), queue heads leased to one worker at a time, attempts
//! recorded, and claims that never hand one delivery to two workers — on both backends.

use std::collections::HashSet;
use std::sync::Arc;

use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{
    Attempt, AttemptError, DeliveryFailure, DeliveryState, DisabledReason, EndpointStatus,
    EventSelection, WebhookEndpoint, ordering_key,
};
use kontor_domain::{DeliveryId, Region, TenantId, UserId, WebhookEndpointId};
use kontor_store::{
    AttemptRecord, CellStore, DeliveryFilter, DeliveryOutcome, DeliveryStore, EndpointChange,
    EventStore, NewDelivery, NewWebhookEndpoint, StoreError,
};
use kontor_test_support::TestStores;

use crate::tenants::new_tenant;

fn uk() -> Region {
    Region::parse("uk").unwrap()
}

async fn tenant(stores: &TestStores) -> TenantId {
    let (tenant, client) = new_tenant("Hooks Ltd");
    stores
        .control()
        .create_tenant(&tenant, &client)
        .await
        .unwrap();
    tenant.id
}

fn endpoint(tenant: &TenantId, created_at: Timestamp) -> NewWebhookEndpoint {
    NewWebhookEndpoint {
        endpoint: WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            tenant_id: tenant.clone(),
            url: "https://hooks.example/kontor".into(),
            description: None,
            events: EventSelection::All,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            disabled_at: None,
            previous_secret_expires_at: None,
            created_at,
            updated_at: created_at,
        },
        sealed_secret: "s1.current".into(),
    }
}

fn event(tenant: &TenantId, user: &UserId, at: i64) -> Event {
    Event {
        created_at: Timestamp::from_unix_micros(at),
        ..Event::untyped(
            tenant.clone(),
            user,
            EventType::TransactionsUpdated,
            serde_json::json!({ "n": at }),
        )
    }
}

fn delivery(event: &Event, endpoint: &WebhookEndpointId, at: Timestamp) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::generate(event.id.region()),
        tenant_id: event.tenant_id.clone(),
        endpoint_id: endpoint.clone(),
        event_id: event.id.clone(),
        ordering_key: ordering_key(event),
        queued_at: event.created_at,
        redelivery: false,
        created_at: at,
    }
}

fn attempt(status: Option<u16>, error: Option<AttemptError>) -> Attempt {
    Attempt {
        number: 1,
        at: Timestamp::now(),
        status_code: status,
        error,
        latency_us: 1234,
    }
}

/// Dispatches `event` alone, with its delivery to `endpoint` created at `at`.
async fn dispatch_one(
    cell: &dyn CellStore,
    event: &Event,
    endpoint: &WebhookEndpointId,
    at: Timestamp,
) {
    cell.dispatch_events(
        std::slice::from_ref(&event.id),
        &[delivery(event, endpoint, at)],
        at,
    )
    .await
    .unwrap();
}

/// Records a 204 answer to `owner`'s attempt of `id`: the delivery is delivered.
async fn record_delivered(cell: &dyn CellStore, id: &DeliveryId, owner: &str) {
    cell.record_attempt(
        id,
        owner,
        &attempt(Some(204), None),
        DeliveryOutcome::Delivered,
    )
    .await
    .unwrap();
}

pub async fn endpoints_keep_secrets_sealed_and_rotate(stores: TestStores) {
    let control = stores.control();
    let tenant = tenant(&stores).await;
    let now = Timestamp::now();
    let first = endpoint(&tenant, now);
    let created = control.create_webhook_endpoint(&first, 2).await.unwrap();
    assert_eq!(created, first.endpoint);
    let id = created.id.clone();
    assert_eq!(
        control.webhook_endpoint(&tenant, &id).await.unwrap(),
        created
    );
    assert!(matches!(
        control.webhook_endpoint(&TenantId::generate(), &id).await,
        Err(StoreError::NotFound)
    ));

    // A tenant's limit holds.
    control
        .create_webhook_endpoint(&endpoint(&tenant, now), 2)
        .await
        .unwrap();
    assert!(matches!(
        control
            .create_webhook_endpoint(&endpoint(&tenant, now), 2)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        control.list_webhook_endpoints(&tenant).await.unwrap().len(),
        2
    );

    // Changes apply field by field; disabling records who did it.
    let change = EndpointChange {
        url: Some("https://hooks.example/v2".into()),
        events: Some(EventSelection::parse(&["user.erased"]).unwrap()),
        status: Some((EndpointStatus::Disabled, Some(DisabledReason::Tenant))),
        ..EndpointChange::default()
    };
    let changed = control
        .update_webhook_endpoint(&tenant, &id, &change, now)
        .await
        .unwrap();
    assert_eq!(changed.url, "https://hooks.example/v2");
    assert_eq!(changed.status, EndpointStatus::Disabled);
    assert_eq!(changed.disabled_reason, Some(DisabledReason::Tenant));
    assert!(changed.disabled_at.is_some());
    let enable = EndpointChange {
        status: Some((EndpointStatus::Enabled, None)),
        ..EndpointChange::default()
    };
    let enabled = control
        .update_webhook_endpoint(&tenant, &id, &enable, now)
        .await
        .unwrap();
    assert_eq!(
        (enabled.status, enabled.disabled_reason, enabled.disabled_at),
        (EndpointStatus::Enabled, None, None)
    );
    assert_eq!(enabled.url, "https://hooks.example/v2");

    // Rotation keeps the old sealed secret, valid until the given time.
    let until = now.plus_seconds(86_400);
    control
        .rotate_webhook_secret(&tenant, &id, "s1.next", until, now)
        .await
        .unwrap();
    let secrets = control
        .endpoint_secrets(std::slice::from_ref(&id), now)
        .await
        .unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].sealed_secret, "s1.next");
    assert_eq!(secrets[0].sealed_previous.as_deref(), Some("s1.current"));
    assert_eq!(secrets[0].endpoint.previous_secret_expires_at, Some(until));
    assert_eq!(secrets[0].tenant_key, None);
    let later = control
        .endpoint_secrets(std::slice::from_ref(&id), until.plus_seconds(1))
        .await
        .unwrap();
    assert_eq!(later[0].sealed_previous, None);
    assert!(!format!("{:?}", secrets[0]).contains("s1."));

    // The tenant's data key is made once, whoever asks first.
    assert_eq!(control.tenant_data_key(&tenant).await.unwrap(), None);
    let kept = control
        .ensure_tenant_data_key(&tenant, "w1.a")
        .await
        .unwrap();
    assert_eq!(kept, "w1.a");
    assert_eq!(
        control
            .ensure_tenant_data_key(&tenant, "w1.b")
            .await
            .unwrap(),
        "w1.a"
    );
    let secrets = control
        .endpoint_secrets(std::slice::from_ref(&id), now)
        .await
        .unwrap();
    assert_eq!(secrets[0].tenant_key.as_deref(), Some("w1.a"));

    // The hub disables a failing endpoint once; a deleted one is gone.
    assert!(control.disable_failing_endpoint(&id, now).await.unwrap());
    assert!(!control.disable_failing_endpoint(&id, now).await.unwrap());
    let disabled = control.webhook_endpoint(&tenant, &id).await.unwrap();
    assert_eq!(disabled.disabled_reason, Some(DisabledReason::Failing));
    control.delete_webhook_endpoint(&tenant, &id).await.unwrap();
    assert!(matches!(
        control.delete_webhook_endpoint(&tenant, &id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        control
            .endpoint_secrets(&[id], now)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn the_outbox_is_dispatched_once(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let user = UserId::generate(&uk());
    let endpoint = WebhookEndpointId::generate();
    let events: Vec<Event> = (1..=3).map(|n| event(&tenant, &user, n)).collect();
    for e in &events {
        cell.append_event(e).await.unwrap();
    }
    let waiting = cell.undispatched_events(10).await.unwrap();
    assert_eq!(
        waiting.iter().map(|e| &e.id).collect::<Vec<_>>(),
        events.iter().map(|e| &e.id).collect::<Vec<_>>(),
        "oldest first"
    );
    let now = Timestamp::now();
    let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    let deliveries: Vec<_> = events.iter().map(|e| delivery(e, &endpoint, now)).collect();
    cell.dispatch_events(&ids, &deliveries, now).await.unwrap();
    assert!(cell.undispatched_events(10).await.unwrap().is_empty());

    // A second dispatcher that read the same events makes no second delivery.
    let again: Vec<_> = events.iter().map(|e| delivery(e, &endpoint, now)).collect();
    cell.dispatch_events(&ids, &again, now).await.unwrap();
    let listed = cell
        .list_deliveries(&tenant, &endpoint, &DeliveryFilter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);
    assert!(
        listed
            .items
            .iter()
            .all(|d| d.state == DeliveryState::Pending)
    );
    assert_eq!(listed.items[0].event_type, EventType::TransactionsUpdated);
    assert_eq!(listed.items[0].user_id.as_ref(), Some(&user));

    // A cell refuses another region's events.
    let de_event = Event::untyped(
        tenant.clone(),
        &UserId::generate(&Region::parse("de").unwrap()),
        EventType::UserErased,
        serde_json::json!({}),
    );
    assert!(matches!(
        cell.dispatch_events(&[de_event.id], &[], now).await,
        Err(StoreError::WrongCell { .. })
    ));
}

pub async fn claims_take_each_queue_head_in_order(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (alice, bob) = (UserId::generate(&uk()), UserId::generate(&uk()));
    let endpoint = WebhookEndpointId::generate();
    let a: Vec<Event> = (1..=3).map(|n| event(&tenant, &alice, n)).collect();
    let b = event(&tenant, &bob, 2);
    let now = Timestamp::now();
    let mut all = a.clone();
    all.push(b.clone());
    for e in &all {
        cell.append_event(e).await.unwrap();
    }
    let deliveries: Vec<_> = all.iter().map(|e| delivery(e, &endpoint, now)).collect();
    let ids: Vec<_> = all.iter().map(|e| e.id.clone()).collect();
    cell.dispatch_events(&ids, &deliveries, now).await.unwrap();

    // One head per user's queue; nothing behind a head is handed out.
    let lease = now.plus_seconds(60);
    let claimed = cell.claim_deliveries("w1", lease, now, 10).await.unwrap();
    let events: HashSet<_> = claimed.iter().map(|c| c.event.id.clone()).collect();
    assert_eq!(events, HashSet::from([a[0].id.clone(), b.id.clone()]));
    assert!(claimed.iter().all(|c| c.attempts == 0));
    assert!(
        cell.claim_deliveries("w2", lease, now, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased heads block their queues"
    );

    // A failed attempt of alice's head keeps her queue waiting until its retry is due.
    let head = claimed.iter().find(|c| c.event.id == a[0].id).unwrap();
    let retry_at = now.plus_seconds(30);
    cell.record_attempt(
        &head.id,
        "w1",
        &attempt(Some(503), Some(AttemptError::HttpStatus)),
        DeliveryOutcome::RetryAt(retry_at),
    )
    .await
    .unwrap();
    assert!(
        cell.claim_deliveries("w2", lease, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = cell
        .claim_deliveries("w2", retry_at.plus_seconds(61), retry_at, 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "bob's head is still leased to w1");
    assert_eq!(retried[0].event.id, a[0].id);
    assert_eq!(retried[0].attempts, 1);
    assert!(retried[0].first_attempt_at.is_some());

    // Delivered: the next of alice's events is the head.
    record_delivered(cell.as_ref(), &retried[0].id, "w2").await;
    let next = cell
        .claim_deliveries("w2", retry_at.plus_seconds(61), retry_at, 10)
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|c| c.event.id.clone()).collect::<Vec<_>>(),
        vec![a[1].id.clone()]
    );

    // A lease that lapsed (a worker died) is taken over.
    let lapsed = lease.plus_seconds(1);
    let taken = cell
        .claim_deliveries("w3", lapsed.plus_seconds(60), lapsed, 10)
        .await
        .unwrap();
    assert!(taken.iter().any(|c| c.event.id == b.id));
    // w1's late failure report does not move bob's delivery on, but the attempt is logged.
    let bobs = taken.iter().find(|c| c.event.id == b.id).unwrap();
    cell.record_attempt(
        &bobs.id,
        "w1",
        &attempt(None, Some(AttemptError::Timeout)),
        DeliveryOutcome::GiveUp(DeliveryFailure::RetriesExhausted),
    )
    .await
    .unwrap();
    let filter = DeliveryFilter {
        event: Some(b.id.clone()),
        ..DeliveryFilter::default()
    };
    let bob_delivery = &cell
        .list_deliveries(&tenant, &endpoint, &filter, None, 10)
        .await
        .unwrap()
        .items[0];
    assert_eq!(bob_delivery.state, DeliveryState::Pending);
    assert_eq!(bob_delivery.attempts, 1);
    let attempts = cell
        .delivery_attempts(std::slice::from_ref(&bob_delivery.id))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].1.error, Some(AttemptError::Timeout));

    // Giving up needs the lease; success is recorded whoever sends it.
    cell.give_up_delivery(&bobs.id, "w3", DeliveryFailure::EndpointDeleted, lapsed)
        .await
        .unwrap();
    let failed = cell
        .list_deliveries(
            &tenant,
            &endpoint,
            &DeliveryFilter {
                state: Some(DeliveryState::Failed),
                ..DeliveryFilter::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(
        failed.items[0].failure,
        Some(DeliveryFailure::EndpointDeleted)
    );
    assert!(failed.items[0].next_attempt_at.is_none());
    assert!(cell.delivered_since(&endpoint, now).await.unwrap());
    assert!(
        !cell
            .delivered_since(&endpoint, Timestamp::now().plus_seconds(5))
            .await
            .unwrap()
    );
}

/// An event can commit after a younger one of the same user was dispatched (its transaction
/// took longer): its delivery is then the older one of the queue while the younger is in
/// flight, and it waits for that attempt, so one user's deliveries are never sent side by side.
pub async fn an_older_delivery_dispatched_late_waits_for_the_leased_one(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let alice = UserId::generate(&uk());
    let endpoint = WebhookEndpointId::generate();
    let (older, younger) = (event(&tenant, &alice, 1), event(&tenant, &alice, 2));
    let now = Timestamp::now();
    for e in [&older, &younger] {
        cell.append_event(e).await.unwrap();
    }
    dispatch_one(cell.as_ref(), &younger, &endpoint, now).await;
    let lease = now.plus_seconds(60);
    let first = cell.claim_deliveries("w1", lease, now, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.id, younger.id);

    dispatch_one(cell.as_ref(), &older, &endpoint, now).await;
    assert!(
        cell.claim_deliveries("w2", lease, now, 10)
            .await
            .unwrap()
            .is_empty(),
        "the older delivery was handed out while the younger one was in flight"
    );

    record_delivered(cell.as_ref(), &first[0].id, "w1").await;
    let next = cell.claim_deliveries("w2", lease, now, 10).await.unwrap();
    assert_eq!(
        next.iter().map(|c| c.event.id.clone()).collect::<Vec<_>>(),
        vec![older.id.clone()]
    );
}

pub async fn concurrent_claims_never_share_a_delivery(stores: TestStores) {
    let cell: Arc<dyn CellStore> = stores.cell("uk").clone();
    let tenant = TenantId::generate();
    let endpoint = WebhookEndpointId::generate();
    let now = Timestamp::now();
    // One event per user: every delivery is the head of its own queue.
    let events: Vec<Event> = (0..120)
        .map(|n| event(&tenant, &UserId::generate(&uk()), n))
        .collect();
    for e in &events {
        cell.append_event(e).await.unwrap();
    }
    let deliveries: Vec<_> = events.iter().map(|e| delivery(e, &endpoint, now)).collect();
    let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    cell.dispatch_events(&ids, &deliveries, now).await.unwrap();

    let workers: Vec<_> = (0..6)
        .map(|w| {
            let cell = cell.clone();
            tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    let batch = cell
                        .claim_deliveries(&owner, now.plus_seconds(60), now, 7)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|c| c.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for worker in workers {
        for id in worker.await.unwrap() {
            assert!(seen.insert(id.clone()), "{id} was claimed twice");
        }
    }
    assert_eq!(seen.len(), events.len(), "every delivery was claimed once");
}

pub async fn job_leases_have_one_holder(stores: TestStores) {
    let cell = stores.cell("uk");
    let now = Timestamp::now();
    let until = now.plus_seconds(30);
    assert!(cell.claim_job("dispatch", "a", until, now).await.unwrap());
    assert!(!cell.claim_job("dispatch", "b", until, now).await.unwrap());
    assert!(
        cell.claim_job("dispatch", "a", until, now).await.unwrap(),
        "renewal"
    );
    assert!(cell.claim_job("other", "b", until, now).await.unwrap());
    assert!(
        cell.claim_job(
            "dispatch",
            "b",
            until.plus_seconds(30),
            until.plus_seconds(1)
        )
        .await
        .unwrap(),
        "a lapsed lease is taken over"
    );
    cell.release_job("dispatch", "a").await.unwrap();
    assert!(!cell.claim_job("dispatch", "a", until, now).await.unwrap());
    cell.release_job("dispatch", "b").await.unwrap();
    assert!(cell.claim_job("dispatch", "a", until, now).await.unwrap());
}

/// A move's fence that commits while a claim is running, after the claim's statement began but
/// before it reached the subject's delivery, keeps that delivery unleased (PostgreSQL; on
/// SQLite a claim holds the one write lock and the fence waits for it). At READ COMMITTED a
/// statement reads with the snapshot of its start: a claim that checked the fence in the same
/// statement as it took its row locks leased the delivery during the freeze.
pub async fn a_fence_placed_during_a_claim_keeps_its_deliveries(stores: TestStores) {
    if stores.backend != kontor_test_support::Backend::Postgres {
        return;
    }
    let cell = stores.cell("uk").clone();
    let pool = cell.database().pool().clone();
    let tenant = TenantId::generate();
    let endpoint = WebhookEndpointId::generate();
    let now = Timestamp::now();
    // The delivery to fence: bob's, due last.
    let bob = UserId::generate(&uk());
    let b = event(&tenant, &bob, now.unix_micros() - 1_000_000);
    cell.append_event(&b).await.unwrap();
    let due = Timestamp::from_unix_micros(now.unix_micros() - 1_000_000);
    dispatch_one(cell.as_ref(), &b, &endpoint, due).await;
    // Ahead of it, a long queue of alice's whose head is leased: the claim reads all of it and
    // takes none, which keeps its statement busy for a while before it reaches bob's.
    let alice = UserId::generate(&uk());
    let filler = 40_000_i64;
    let earlier = now.unix_micros() - 10_000_000;
    sqlx::query(
        "INSERT INTO events (id, tenant_id, user_id, type, data, created_at, dispatched_at) \
         SELECT 'filler-' || n, $1, $2, 'transactions.updated', '{}', $3 + n, $3 + n \
         FROM generate_series(1, $4) AS n",
    )
    .bind(tenant.as_str())
    .bind(alice.as_str())
    .bind(earlier)
    .bind(filler)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, tenant_id, event_id, endpoint_id, ordering_key, \
         queued_at, state, next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
         SELECT 'filler-' || n, $1, 'filler-' || n, $2, $3, $4 + n, 'pending', $4, \
         CASE WHEN n = 1 THEN 'elsewhere' END, CASE WHEN n = 1 THEN $5 END, $4, $4 \
         FROM generate_series(1, $6) AS n",
    )
    .bind(tenant.as_str())
    .bind(endpoint.as_str())
    .bind(alice.as_str())
    .bind(earlier)
    .bind(now.plus_seconds(600).unix_micros())
    .bind(filler)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE webhook_deliveries")
        .execute(&pool)
        .await
        .unwrap();

    let claiming = {
        let cell = cell.clone();
        tokio::spawn(async move {
            cell.claim_deliveries("w1", now.plus_seconds(60), now, 10)
                .await
                .unwrap()
        })
    };
    // Wait until the claim's row selection runs, then place a fence as a move's freeze does
    // (`moves::fence`: lock the subject's deliveries, then insert the fence) and commit it.
    let mut watched = 0;
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%SKIP LOCKED%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if running > 0 {
            break;
        }
        assert!(
            !claiming.is_finished(),
            "the claim ended before it was seen"
        );
        watched += 1;
        assert!(watched < 5_000, "the claim never ran");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut fence = pool
        .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    let leased: Vec<Option<String>> = sqlx::query_scalar(
        "UPDATE webhook_deliveries SET updated_at = updated_at WHERE tenant_id = $1 \
         AND event_id IN (SELECT id FROM events WHERE user_id = $2) RETURNING lease_owner",
    )
    .bind(tenant.as_str())
    .bind(bob.as_str())
    .fetch_all(&mut *fence)
    .await
    .unwrap();
    assert_eq!(
        leased,
        vec![None],
        "the fence came before the claim reached bob"
    );
    sqlx::query(
        "INSERT INTO move_fences (move_id, tenant_id, user_id, state, created_at) \
         VALUES ('move-1', $1, $2, 'outgoing', $3)",
    )
    .bind(tenant.as_str())
    .bind(bob.as_str())
    .bind(Timestamp::now().unix_micros())
    .execute(&mut *fence)
    .await
    .unwrap();
    fence.commit().await.unwrap();
    assert!(
        !claiming.is_finished(),
        "the claim ended before the fence committed: the race was not run"
    );

    let claimed = claiming.await.unwrap();
    assert!(
        claimed.iter().all(|c| c.event.id != b.id),
        "a delivery fenced before it was leased was handed out: {claimed:?}"
    );
    let owner: Option<String> =
        sqlx::query_scalar("SELECT lease_owner FROM webhook_deliveries WHERE event_id = $1")
            .bind(b.id.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        owner, None,
        "the fenced delivery's lease was written after the fence"
    );
}

/// `n` deliveries to `endpoint`, one per user, dispatched and claimed by `w1`.
async fn claimed_for_users(
    cell: &dyn CellStore,
    tenant: &TenantId,
    endpoint: &WebhookEndpointId,
    now: Timestamp,
    n: i64,
) -> Vec<kontor_store::ClaimedDelivery> {
    let events: Vec<Event> = (1..=n)
        .map(|k| event(tenant, &UserId::generate(&uk()), k))
        .collect();
    for e in &events {
        cell.append_event(e).await.unwrap();
    }
    let deliveries: Vec<_> = events.iter().map(|e| delivery(e, endpoint, now)).collect();
    let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    cell.dispatch_events(&ids, &deliveries, now).await.unwrap();
    cell.claim_deliveries("w1", now.plus_seconds(60), now, 100)
        .await
        .unwrap()
}

async fn state_of(
    cell: &dyn CellStore,
    tenant: &TenantId,
    endpoint: &WebhookEndpointId,
    id: &DeliveryId,
) -> kontor_domain::webhook::Delivery {
    cell.list_deliveries(tenant, endpoint, &DeliveryFilter::default(), None, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|d| &d.id == id)
        .unwrap()
}

/// Attempts recorded together (`record_attempts`, one transaction per cell) end each delivery as
/// recording them one by one would.
pub async fn attempts_recorded_together_are_counted_and_settled_each(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let endpoint = WebhookEndpointId::generate();
    let now = Timestamp::now();
    let claimed = claimed_for_users(cell.as_ref(), &tenant, &endpoint, now, 5).await;
    assert_eq!(claimed.len(), 5);
    // A record of a delivery that does not exist fails the whole group: nothing is recorded.
    let ghost = AttemptRecord {
        id: DeliveryId::generate(&uk()),
        attempt: attempt(Some(204), None),
        outcome: DeliveryOutcome::Delivered,
    };
    let last = AttemptRecord {
        id: claimed[4].id.clone(),
        attempt: attempt(Some(204), None),
        outcome: DeliveryOutcome::Delivered,
    };
    assert!(matches!(
        cell.record_attempts("w1", &[last, ghost]).await,
        Err(StoreError::NotFound)
    ));
    let untouched = state_of(cell.as_ref(), &tenant, &endpoint, &claimed[4].id).await;
    assert_eq!(untouched.state, DeliveryState::Pending);
    assert_eq!(untouched.attempts, 0);

    // Two delivered, one to retry, one given up, in one call: each settled as alone.
    let retry_at = now.plus_seconds(30);
    let records = [
        (Some(204), None, DeliveryOutcome::Delivered),
        (Some(200), None, DeliveryOutcome::Delivered),
        (
            Some(503),
            Some(AttemptError::HttpStatus),
            DeliveryOutcome::RetryAt(retry_at),
        ),
        (
            None,
            Some(AttemptError::Timeout),
            DeliveryOutcome::GiveUp(DeliveryFailure::RetriesExhausted),
        ),
    ]
    .into_iter()
    .zip(&claimed)
    .map(|((status, error, outcome), c)| AttemptRecord {
        id: c.id.clone(),
        attempt: attempt(status, error),
        outcome,
    })
    .collect::<Vec<_>>();
    cell.record_attempts("w1", &records).await.unwrap();
    for (record, state) in records.iter().zip([
        DeliveryState::Succeeded,
        DeliveryState::Succeeded,
        DeliveryState::Pending,
        DeliveryState::Failed,
    ]) {
        let d = state_of(cell.as_ref(), &tenant, &endpoint, &record.id).await;
        assert_eq!(d.state, state, "{}", record.id);
        assert_eq!(d.attempts, 1);
        let delivered = (state == DeliveryState::Succeeded).then_some(record.attempt.at);
        assert_eq!(d.delivered_at, delivered);
    }
    assert_eq!(
        state_of(cell.as_ref(), &tenant, &endpoint, &records[2].id)
            .await
            .next_attempt_at,
        Some(retry_at)
    );
    assert_eq!(
        state_of(cell.as_ref(), &tenant, &endpoint, &records[3].id)
            .await
            .failure,
        Some(DeliveryFailure::RetriesExhausted)
    );
    let ids: Vec<_> = records.iter().map(|r| r.id.clone()).collect();
    let logged = cell.delivery_attempts(&ids).await.unwrap();
    assert_eq!(logged.len(), 4);
    for (id, logged) in &logged {
        let record = records.iter().find(|r| &r.id == id).unwrap();
        assert_eq!(logged.number, 1);
        assert_eq!(logged.status_code, record.attempt.status_code);
        assert_eq!(logged.error, record.attempt.error);
    }

    // The retried delivery's next attempt is numbered 2; a late report by a worker whose lease
    // ran out (w1) is logged but does not move a delivery another worker holds.
    let retried = cell
        .claim_deliveries("w2", retry_at.plus_seconds(60), retry_at, 10)
        .await
        .unwrap();
    let again = retried.iter().find(|c| c.id == records[2].id).unwrap();
    let late = AttemptRecord {
        id: again.id.clone(),
        attempt: attempt(None, Some(AttemptError::Timeout)),
        outcome: DeliveryOutcome::RetryAt(retry_at.plus_seconds(60)),
    };
    let delivered = AttemptRecord {
        id: claimed[4].id.clone(),
        attempt: attempt(Some(204), None),
        outcome: DeliveryOutcome::Delivered,
    };
    cell.record_attempts("w1", &[late, delivered])
        .await
        .unwrap();
    let d = state_of(cell.as_ref(), &tenant, &endpoint, &again.id).await;
    assert_eq!((d.state, d.attempts), (DeliveryState::Pending, 2));
    assert_eq!(d.next_attempt_at, Some(retry_at), "w2's lease stands");
    assert_eq!(
        state_of(cell.as_ref(), &tenant, &endpoint, &claimed[4].id)
            .await
            .state,
        DeliveryState::Succeeded
    );
    let numbers: Vec<u32> = cell
        .delivery_attempts(std::slice::from_ref(&again.id))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, a)| a.number)
        .collect();
    assert_eq!(numbers, vec![1, 2]);
}

pub async fn a_large_group_is_recorded_in_runs(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let endpoint = WebhookEndpointId::generate();
    let now = Timestamp::now();
    // 71 = 64 + 4 + 2 + 1: four statement sizes; every other one fails and is retried later.
    let claimed = claimed_for_users(cell.as_ref(), &tenant, &endpoint, now, 71).await;
    assert_eq!(claimed.len(), 71);
    let retry_at = now.plus_seconds(30);
    let records: Vec<AttemptRecord> = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (attempt, outcome) = if i % 2 == 0 {
                (attempt(Some(204), None), DeliveryOutcome::Delivered)
            } else {
                (
                    attempt(Some(500), Some(AttemptError::HttpStatus)),
                    DeliveryOutcome::RetryAt(retry_at),
                )
            };
            AttemptRecord {
                id: c.id.clone(),
                attempt,
                outcome,
            }
        })
        .collect();
    cell.record_attempts("w1", &records).await.unwrap();
    let page = cell
        .list_deliveries(&tenant, &endpoint, &DeliveryFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 71);
    for record in &records {
        let d = page.items.iter().find(|d| d.id == record.id).unwrap();
        assert_eq!(d.attempts, 1, "{}", record.id);
        match record.outcome {
            DeliveryOutcome::Delivered => {
                assert_eq!(d.state, DeliveryState::Succeeded);
                assert_eq!(d.delivered_at, Some(record.attempt.at));
            }
            _ => {
                assert_eq!(d.state, DeliveryState::Pending);
                assert_eq!(d.next_attempt_at, Some(retry_at));
            }
        }
    }
    let ids: Vec<_> = records.iter().map(|r| r.id.clone()).collect();
    let logged = cell.delivery_attempts(&ids).await.unwrap();
    assert_eq!(logged.len(), 71);
    for (id, logged) in &logged {
        let record = records.iter().find(|r| &r.id == id).unwrap();
        assert_eq!(
            (logged.number, logged.status_code),
            (1, record.attempt.status_code)
        );
    }
    // The retried ones are free again at their time, each its queue's head.
    let again = cell
        .claim_deliveries("w2", retry_at.plus_seconds(60), retry_at, 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 35);
}

/// A group with a fenced delivery in it records nothing: the fence is read once for the run,
/// after the rows are locked, as `record_attempt` reads it for one delivery.
pub async fn a_group_with_a_fenced_delivery_records_nothing(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let endpoint = WebhookEndpointId::generate();
    let now = Timestamp::now();
    let (alice, bob) = (UserId::generate(&uk()), UserId::generate(&uk()));
    let events = [event(&tenant, &alice, 1), event(&tenant, &bob, 2)];
    for e in &events {
        cell.append_event(e).await.unwrap();
    }
    let deliveries: Vec<_> = events.iter().map(|e| delivery(e, &endpoint, now)).collect();
    let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    cell.dispatch_events(&ids, &deliveries, now).await.unwrap();
    let claimed = cell
        .claim_deliveries("w1", now.plus_seconds(60), now, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    fence_user(&stores, &tenant, &bob, now).await;
    let records: Vec<AttemptRecord> = claimed
        .iter()
        .map(|c| AttemptRecord {
            id: c.id.clone(),
            attempt: attempt(Some(204), None),
            outcome: DeliveryOutcome::Delivered,
        })
        .collect();
    assert!(matches!(
        cell.record_attempts("w1", &records).await,
        Err(StoreError::Moving { .. })
    ));
    for c in &claimed {
        let d = state_of(cell.as_ref(), &tenant, &endpoint, &c.id).await;
        assert_eq!(
            (d.state, d.attempts),
            (DeliveryState::Pending, 0),
            "{}",
            c.id
        );
    }
    assert!(
        cell.delivery_attempts(&[claimed[0].id.clone(), claimed[1].id.clone()])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A dispatch whose batch holds one fenced event writes nothing, wherever in the batch the event
/// is (here past the first read of fences): no delivery, and every event still undispatched.
pub async fn a_dispatch_with_a_fenced_event_writes_nothing(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let endpoint = WebhookEndpointId::generate();
    let now = Timestamp::now();
    let (alice, bob) = (UserId::generate(&uk()), UserId::generate(&uk()));
    let mut events: Vec<Event> = (1..=60).map(|n| event(&tenant, &alice, n)).collect();
    events.push(event(&tenant, &bob, 61));
    for e in &events {
        cell.append_event(e).await.unwrap();
    }
    fence_user(&stores, &tenant, &bob, now).await;
    let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    let deliveries: Vec<_> = events.iter().map(|e| delivery(e, &endpoint, now)).collect();
    assert!(matches!(
        cell.dispatch_events(&ids, &deliveries, now).await,
        Err(StoreError::Moving { .. })
    ));
    let listed = cell
        .list_deliveries(&tenant, &endpoint, &DeliveryFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(listed.items.is_empty(), "{} deliveries", listed.items.len());
    let undispatched = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM events WHERE tenant_id = $1 AND dispatched_at IS NULL",
    )
    .bind(tenant.as_str())
    .fetch_one(&stores.raw_cell_pool("uk"))
    .await
    .unwrap();
    assert_eq!(undispatched, 61);
}

/// Fences `user` of `tenant` in the `uk` cell as a move's outgoing side does.
async fn fence_user(stores: &TestStores, tenant: &TenantId, user: &UserId, now: Timestamp) {
    sqlx::query(
        "INSERT INTO move_fences (move_id, tenant_id, user_id, state, created_at) \
         VALUES ('move-1', $1, $2, 'outgoing', $3)",
    )
    .bind(tenant.as_str())
    .bind(user.as_str())
    .bind(now.unix_micros())
    .execute(&stores.raw_cell_pool("uk"))
    .await
    .unwrap();
}
