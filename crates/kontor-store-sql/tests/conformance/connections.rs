//! Connections: creation for an existing user, the single-use state, status changes checked by
//! the state machine and recorded with their event, scheduling and leases.

use kontor_domain::bank::BankId;
use kontor_domain::connection::{
    Access, ConnectionEvent, ConnectionStatus, FailureReason, NewConnection,
};
use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, Region, TenantId, UserId};
use kontor_store::{
    CellStore, ConnectionStore, EventFilter, EventStore, ListFilter, StoreError, Transition,
};
use kontor_test_support::TestStores;

use crate::users::new_user;

pub async fn user_with_connection(
    cell: &dyn CellStore,
    tenant: &TenantId,
) -> (UserId, ConnectionId) {
    let user = cell
        .create_user(&new_user(
            tenant,
            &format!("u-{}", rand::random::<u32>()),
            cell.region().as_str(),
        ))
        .await
        .unwrap();
    let new = NewConnection {
        id: ConnectionId::generate(cell.region()),
        tenant_id: tenant.clone(),
        user_id: user.id.clone(),
        bank_id: None,
        access: Access::ALL,
        redirect_uri: "https://app.example/done".into(),
        language: None,
        connect_token_hash: "tokenhash".into(),
        psu_id: None,
        frequency_per_day: 4,
        created_at: Timestamp::now(),
    };
    let created = cell.create_connection(&new).await.unwrap();
    assert_eq!(created.status, ConnectionStatus::Pending);
    (user.id, new.id)
}

fn to(event: ConnectionEvent, at: Timestamp) -> Transition {
    Transition {
        event,
        failure_reason: None,
        valid_until: None,
        session: None,
        next_sync_at: None,
        at,
    }
}

pub async fn connections_need_the_tenants_user(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, id) = user_with_connection(cell.as_ref(), &tenant).await;
    assert_eq!(cell.connection(&tenant, &id).await.unwrap().user_id, user);
    assert!(matches!(
        cell.connection(&TenantId::generate(), &id).await,
        Err(StoreError::NotFound)
    ));

    let other = TenantId::generate();
    let stranger = NewConnection {
        id: ConnectionId::generate(&Region::parse("uk").unwrap()),
        tenant_id: other.clone(),
        user_id: user,
        bank_id: None,
        access: Access::ALL,
        redirect_uri: "https://x.example".into(),
        language: None,
        connect_token_hash: "h".into(),
        psu_id: None,
        frequency_per_day: 4,
        created_at: Timestamp::now(),
    };
    assert!(matches!(
        cell.create_connection(&stranger).await,
        Err(StoreError::NotFound)
    ));
    let page = cell
        .list_connections(&tenant, &ListFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(
        cell.list_connections(&other, &ListFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn state_is_single_use_and_expires(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (_, id) = user_with_connection(cell.as_ref(), &tenant).await;
    let now = Timestamp::now();
    let bank = BankId::parse("sonnenbank").unwrap();
    cell.begin_authorisation(&id, &bank, "state-1", now.plus_seconds(600), "sealed", now)
        .await
        .unwrap();

    assert!(matches!(
        cell.take_state(&id, "wrong", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        cell.take_state(&id, "state-1", now.plus_seconds(601)).await,
        Err(StoreError::NotFound)
    ));
    let taken = cell.take_state(&id, "state-1", now).await.unwrap();
    assert_eq!(taken.session.as_deref(), Some("sealed"));
    assert_eq!(taken.connection.bank_id, Some(bank.clone()));
    assert!(matches!(
        cell.take_state(&id, "state-1", now).await,
        Err(StoreError::NotFound)
    ));
    // Spent, but kept: a replay is recognised as one.
    let after = cell.connection_secrets(&id).await.unwrap();
    assert_eq!(after.state_hash.as_deref(), Some("state-1"));
    assert!(after.state_spent_at.is_some());

    // A new attempt replaces the state with an unspent one.
    cell.begin_authorisation(&id, &bank, "state-1b", now.plus_seconds(600), "sealed", now)
        .await
        .unwrap();
    let renewed = cell.connection_secrets(&id).await.unwrap();
    assert_eq!(renewed.state_spent_at, None);
    assert!(matches!(
        cell.take_state(&id, "state-1", now).await,
        Err(StoreError::NotFound)
    ));
    cell.take_state(&id, "state-1b", now).await.unwrap();

    // Once active, the handshake cannot start again.
    cell.transition(&id, &to(ConnectionEvent::Authorised, now), None)
        .await
        .unwrap();
    assert!(matches!(
        cell.begin_authorisation(&id, &bank, "state-2", now.plus_seconds(600), "s", now)
            .await,
        Err(StoreError::StateRefused { .. })
    ));
}

pub async fn transitions_follow_the_state_machine_and_record_events(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, id) = user_with_connection(cell.as_ref(), &tenant).await;
    let now = Timestamp::now();
    let active = Transition {
        valid_until: Some(now.plus_seconds(90 * 86_400)),
        session: Some("sealed-session".into()),
        next_sync_at: Some(now),
        ..to(ConnectionEvent::Authorised, now)
    };
    let event = Event::untyped(
        tenant.clone(),
        &user,
        EventType::ConnectionActive,
        serde_json::json!({"connection_id": id}),
    );
    let connection = cell.transition(&id, &active, Some(&event)).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Active);
    assert_eq!(connection.authorised_at, Some(now));
    assert_eq!(connection.valid_until, Some(now.plus_seconds(90 * 86_400)));

    let again = cell
        .transition(&id, &to(ConnectionEvent::Authorised, now), None)
        .await;
    assert!(
        matches!(again, Err(StoreError::StateRefused { .. })),
        "{again:?}"
    );

    let events = cell
        .list_events(&tenant, &EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].event_type, EventType::ConnectionActive);

    let failed = Transition {
        failure_reason: Some(FailureReason::ConsentInvalid),
        ..to(ConnectionEvent::Failed, now)
    };
    let connection = cell.transition(&id, &failed, None).await.unwrap();
    assert_eq!(connection.status, ConnectionStatus::Failed);
    assert_eq!(
        connection.failure_reason,
        Some(FailureReason::ConsentInvalid)
    );
    assert_eq!(
        connection.next_sync_at, None,
        "a dead connection is never scheduled"
    );
    assert_eq!(
        cell.connection_secrets(&id).await.unwrap().session,
        None,
        "its secrets are dropped"
    );
    assert!(
        cell.transition(&id, &to(ConnectionEvent::Revoked, now), None)
            .await
            .is_err()
    );
}

pub async fn due_syncs_and_leases(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (_, id) = user_with_connection(cell.as_ref(), &tenant).await;
    let now = Timestamp::now();
    let active = Transition {
        next_sync_at: Some(now.plus_seconds(60)),
        ..to(ConnectionEvent::Authorised, now)
    };
    cell.transition(&id, &active, None).await.unwrap();
    assert!(cell.due_for_sync(now, 10).await.unwrap().is_empty());
    assert_eq!(
        cell.due_for_sync(now.plus_seconds(61), 10).await.unwrap(),
        vec![id.clone()]
    );

    assert!(
        cell.claim(&id, "worker-a", now.plus_seconds(30), now)
            .await
            .unwrap()
    );
    assert!(
        !cell
            .claim(&id, "worker-b", now.plus_seconds(30), now)
            .await
            .unwrap()
    );
    // A leased connection is not handed out again while the lease runs...
    assert!(
        cell.due_for_sync(now.plus_seconds(20), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // ...and an expired lease can be taken over.
    assert!(
        cell.claim(&id, "worker-b", now.plus_seconds(90), now.plus_seconds(31))
            .await
            .unwrap()
    );
    cell.release(&id, "worker-a").await.unwrap(); // not the holder: no effect
    assert!(
        !cell
            .claim(&id, "worker-a", now.plus_seconds(90), now.plus_seconds(40))
            .await
            .unwrap()
    );
    cell.release(&id, "worker-b").await.unwrap();
    assert!(
        cell.claim(&id, "worker-a", now.plus_seconds(90), now.plus_seconds(40))
            .await
            .unwrap()
    );
}

pub async fn events_filter_and_page(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, _) = user_with_connection(cell.as_ref(), &tenant).await;
    let (other_user, _) = user_with_connection(cell.as_ref(), &tenant).await;
    let base = Timestamp::now();
    for i in 0..5i64 {
        let who = if i % 2 == 0 { &user } else { &other_user };
        let kind = if i < 3 {
            EventType::TransactionsUpdated
        } else {
            EventType::ConnectionExpired
        };
        let mut event = Event::untyped(tenant.clone(), who, kind, serde_json::json!({"n": i}));
        event.created_at = base.plus_seconds(i);
        cell.append_event(&event).await.unwrap();
    }
    cell.append_event(&Event::untyped(
        TenantId::generate(),
        &user,
        EventType::UserErased,
        serde_json::json!({}),
    ))
    .await
    .unwrap();

    let all = cell
        .list_events(&tenant, &EventFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5);
    let ns: Vec<i64> = all
        .items
        .iter()
        .map(|e| e.data["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [0, 1, 2, 3, 4], "oldest first");

    let by_type = EventFilter {
        event_type: Some(EventType::ConnectionExpired),
        ..EventFilter::default()
    };
    assert_eq!(
        cell.list_events(&tenant, &by_type, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let by_user = EventFilter {
        user: Some(user.clone()),
        ..EventFilter::default()
    };
    assert_eq!(
        cell.list_events(&tenant, &by_user, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    let since = EventFilter {
        since: Some(base.plus_seconds(3)),
        ..EventFilter::default()
    };
    assert_eq!(
        cell.list_events(&tenant, &since, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let first = cell
        .list_events(&tenant, &EventFilter::default(), None, 2)
        .await
        .unwrap();
    let second = cell
        .list_events(&tenant, &EventFilter::default(), first.next.as_ref(), 2)
        .await
        .unwrap();
    assert_eq!(second.items[0].data["n"], 2);
}

pub async fn expiry_is_announced_once_until_reconfirmed(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (user, id) = user_with_connection(cell.as_ref(), &tenant).await;
    let now = Timestamp::now();
    let active = Transition {
        valid_until: Some(now.plus_seconds(3 * 86_400)),
        ..to(ConnectionEvent::Authorised, now)
    };
    cell.transition(&id, &active, None).await.unwrap();
    let week = now.plus_seconds(7 * 86_400);
    assert_eq!(cell.expiring_unnotified(week, 10).await.unwrap().len(), 1);
    assert!(cell.expiring_unnotified(now, 10).await.unwrap().is_empty());

    let notice = |n: i64| {
        Event::untyped(
            tenant.clone(),
            &user,
            EventType::ConnectionExpiring,
            serde_json::json!({"n": n}),
        )
    };
    cell.mark_expiry_notified(&id, now, &notice(1))
        .await
        .unwrap();
    cell.mark_expiry_notified(&id, now, &notice(2))
        .await
        .unwrap();
    assert!(cell.expiring_unnotified(week, 10).await.unwrap().is_empty());
    let filter = EventFilter {
        event_type: Some(EventType::ConnectionExpiring),
        ..EventFilter::default()
    };
    assert_eq!(
        cell.list_events(&tenant, &filter, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        1,
        "announced once"
    );

    let reconfirmed = Transition {
        valid_until: Some(now.plus_seconds(5 * 86_400)),
        ..to(ConnectionEvent::Reconfirmed, now)
    };
    cell.transition(&id, &reconfirmed, None).await.unwrap();
    assert_eq!(
        cell.expiring_unnotified(week, 10).await.unwrap().len(),
        1,
        "a new period, a new notice"
    );
    assert_eq!(
        cell.expiring_before(now.plus_seconds(4 * 86_400), 10)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        cell.expiring_before(now.plus_seconds(6 * 86_400), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn decoupled_starts_are_capped_across_requests(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let (_, id) = user_with_connection(cell.as_ref(), &tenant).await;
    // Ten concurrent starts against a cap of two: exactly two are counted.
    let mut starts = Vec::new();
    for _ in 0..10 {
        let cell = cell.clone();
        let id = id.clone();
        starts.push(tokio::spawn(async move {
            cell.count_decoupled_start(&id, 2).await.unwrap()
        }));
    }
    let mut counted = 0;
    for start in starts {
        counted += usize::from(start.await.unwrap());
    }
    assert_eq!(counted, 2);
    assert_eq!(
        cell.connection_secrets(&id).await.unwrap().decoupled_starts,
        2
    );

    // A link that is no longer pending counts nothing.
    let (_, ended) = user_with_connection(cell.as_ref(), &tenant).await;
    cell.transition(&ended, &to(ConnectionEvent::Failed, Timestamp::now()), None)
        .await
        .unwrap();
    assert!(!cell.count_decoupled_start(&ended, 2).await.unwrap());
}

pub async fn newer_authorisations_sharing_accounts_are_found(stores: TestStores) {
    let cell = stores.cell("uk");
    let tenant = TenantId::generate();
    let other_tenant = TenantId::generate();
    let bank = BankId::parse("sonnenbank").unwrap();
    let t0 = Timestamp::now();
    let link = |tenant: TenantId, at: Timestamp, accounts: &'static [&'static str]| {
        let cell = cell.clone();
        let bank = bank.clone();
        async move {
            let (user, id) = user_with_connection(cell.as_ref(), &tenant).await;
            cell.begin_authorisation(&id, &bank, "s", at.plus_seconds(600), "sealed", at)
                .await
                .unwrap();
            cell.transition(&id, &to(ConnectionEvent::Authorised, at), None)
                .await
                .unwrap();
            crate::accounts::write_accounts(cell.as_ref(), &tenant, &user, &id, accounts).await;
            id
        }
    };
    let first = link(tenant.clone(), t0, &["acc-1", "acc-2"]).await;
    let unrelated = link(other_tenant.clone(), t0.plus_seconds(10), &["acc-9"]).await;
    let newer = link(other_tenant.clone(), t0.plus_seconds(20), &["acc-2"]).await;
    let ids = vec!["acc-1".to_owned(), "acc-2".to_owned()];
    let found = cell
        .authorised_sharing_accounts(&bank, t0, &ids, &first)
        .await
        .unwrap();
    let found: Vec<ConnectionId> = found.into_iter().map(|c| c.id).collect();
    assert_eq!(found, vec![newer.clone()]);
    assert!(!found.contains(&unrelated));
    // Only later authorisations count, and only at the same bank.
    assert!(
        cell.authorised_sharing_accounts(&bank, t0.plus_seconds(20), &ids, &first)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        cell.authorised_sharing_accounts(&BankId::parse("thames-bank").unwrap(), t0, &ids, &first)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        cell.authorised_sharing_accounts(&bank, t0, &[], &first)
            .await
            .unwrap()
            .is_empty()
    );
}
