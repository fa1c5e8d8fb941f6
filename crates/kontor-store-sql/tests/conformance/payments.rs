//! Payments and idempotency keys: a retried creation makes no second payment, steps are checked
//! phase changes with their history, a key is held by one request at a time, and an abandoned
//! request's key can be resumed.

use kontor_domain::bank::BankId;
use kontor_domain::event::{Event, EventType};
use kontor_domain::payment::{Payment, PaymentPhase, PaymentScheme, PaymentStatus};
use kontor_domain::time::Timestamp;
use kontor_domain::{Currency, Money, PaymentId, Region, TenantId, UserId};
use kontor_store::{
    EventFilter, EventStore, Idempotency, LegacyIdempotency, ListFilter, NewPayment, PaymentChange,
    PaymentStore, StoreError, UserStore,
};
use kontor_test_support::TestStores;

use crate::users::new_user;

pub fn new_payment(tenant: &TenantId, user: &UserId) -> NewPayment {
    let now = Timestamp::now();
    NewPayment {
        payment: Payment {
            id: PaymentId::generate(user.region()),
            tenant_id: tenant.clone(),
            user_id: user.clone(),
            bank_id: BankId::parse("sonnenbank").unwrap(),
            scheme: PaymentScheme::Sepa,
            status: PaymentStatus::Pending,
            phase: PaymentPhase::Accepted,
            amount: Money::parse("12.34", Currency::parse("EUR").unwrap()).unwrap(),
            end_to_end_id: "E2E-1".into(),
            redirect_uri: "https://app.example/paid".into(),
            bank_payment_id: None,
            bank_status: None,
            status_reason: None,
            created_at: now,
            updated_at: now,
            next_poll_at: None,
            poll_attempts: 0,
        },
        details: "sealed".into(),
        authorize_token_hash: "hash".into(),
    }
}

pub async fn a_retried_creation_makes_no_second_payment(stores: TestStores) {
    let cell = stores.cell("de");
    let tenant = TenantId::generate();
    let user = cell
        .create_user(&new_user(&tenant, "payer", "de"))
        .await
        .unwrap();
    let new = new_payment(&tenant, &user.id);
    let first = cell.create_payment(&new).await.unwrap();
    let again = cell.create_payment(&new).await.unwrap();
    assert_eq!(first, again);
    let page = cell
        .list_payments(&tenant, &ListFilter::user(&user.id), None, 10)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(cell.status_history(&new.payment.id).await.unwrap().len(), 1);
    assert!(matches!(
        cell.payment(&TenantId::generate(), &new.payment.id).await,
        Err(StoreError::NotFound)
    ));
    let mut stranger = new_payment(&TenantId::generate(), &user.id);
    stranger.payment.id = PaymentId::generate(user.id.region());
    assert!(matches!(
        cell.create_payment(&stranger).await,
        Err(StoreError::NotFound)
    ));
}

/// A list page's payments are read at once: their sealed parts and their histories, each the
/// same as the single reads give; ids the cell does not hold are left out. A creation answers
/// exactly what it wrote (the service answers it without reading it back).
pub async fn several_payments_are_read_at_once(stores: TestStores) {
    let cell = stores.cell("de");
    let tenant = TenantId::generate();
    let user = cell
        .create_user(&new_user(&tenant, "payer", "de"))
        .await
        .unwrap();
    let first = new_payment(&tenant, &user.id);
    let second = new_payment(&tenant, &user.id);
    assert_eq!(cell.create_payment(&first).await.unwrap(), first.payment);
    assert_eq!(cell.create_payment(&second).await.unwrap(), second.payment);
    let now = Timestamp::now();
    let mut initiate =
        PaymentChange::phase(&[PaymentPhase::Accepted], PaymentPhase::Initiating, now);
    initiate.status = Some((PaymentStatus::Pending, Some("RCVD".into())));
    cell.advance_payment(&second.payment.id, &initiate)
        .await
        .unwrap();

    let unknown = PaymentId::generate(user.id.region());
    let ids = [first.payment.id.clone(), second.payment.id.clone(), unknown];
    let mut rows = cell.payments_secrets(&ids).await.unwrap();
    rows.sort_by(|a, b| a.payment.id.as_str().cmp(b.payment.id.as_str()));
    assert_eq!(rows.len(), 2, "the unknown id is left out");
    for row in &rows {
        let single = cell.payment_secrets(&row.payment.id).await.unwrap();
        assert_eq!(row.payment, single.payment);
        assert_eq!(row.details, single.details);
        assert_eq!(row.session, single.session);
        assert_eq!(row.authorize_token_hash, single.authorize_token_hash);
    }
    let changes = cell.status_histories(&ids).await.unwrap();
    for id in &ids[..2] {
        let listed: Vec<_> = changes
            .iter()
            .filter(|(of, _)| of == id)
            .map(|(_, change)| change.clone())
            .collect();
        assert_eq!(listed, cell.status_history(id).await.unwrap(), "{id}");
    }
    assert_eq!(
        changes
            .iter()
            .filter(|(of, _)| of == &second.payment.id)
            .count(),
        2,
        "created, then RCVD"
    );
    assert!(cell.payments_secrets(&[]).await.unwrap().is_empty());
    assert!(cell.status_histories(&[]).await.unwrap().is_empty());
}

pub async fn payment_steps_are_checked_and_recorded(stores: TestStores) {
    let cell = stores.cell("de");
    let tenant = TenantId::generate();
    let user = cell
        .create_user(&new_user(&tenant, "payer", "de"))
        .await
        .unwrap();
    let new = new_payment(&tenant, &user.id);
    let id = new.payment.id.clone();
    cell.create_payment(&new).await.unwrap();
    let now = Timestamp::now();

    let mut initiate =
        PaymentChange::phase(&[PaymentPhase::Accepted], PaymentPhase::Initiating, now);
    initiate.state = Some(Some(("state-hash".into(), now.plus_seconds(600))));
    cell.advance_payment(&id, &initiate).await.unwrap();
    // The same step again is refused: the payment is no longer accepted.
    assert!(matches!(
        cell.advance_payment(&id, &initiate).await,
        Err(StoreError::StateRefused { .. })
    ));

    let mut sca = PaymentChange::phase(&[PaymentPhase::Initiating], PaymentPhase::AwaitingSca, now);
    sca.status = Some((PaymentStatus::Pending, Some("RCVD".into())));
    sca.bank_payment_id = Some("bank-1".into());
    sca.session = Some("sealed-session".into());
    let p = cell.advance_payment(&id, &sca).await.unwrap();
    assert_eq!(p.bank_payment_id.as_deref(), Some("bank-1"));
    assert_eq!(p.bank_status.as_deref(), Some("RCVD"));

    // The state is taken together with the step it allows; a wrong or expired state changes
    // nothing.
    let mut returned =
        PaymentChange::phase(&[PaymentPhase::AwaitingSca], PaymentPhase::Submitting, now);
    returned.session = Some("sealed-session-with-callback".into());
    let lease = ("request-1", now.plus_seconds(30));
    assert!(matches!(
        cell.take_payment_state(&id, "other-hash", now, &returned, lease)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        cell.take_payment_state(&id, "state-hash", now.plus_seconds(601), &returned, lease)
            .await,
        Err(StoreError::NotFound)
    ));
    // While someone else holds the payment, the state stays unspent.
    assert!(
        cell.claim_payment(&id, "worker-1", now.plus_seconds(10), now)
            .await
            .unwrap()
    );
    assert!(matches!(
        cell.take_payment_state(&id, "state-hash", now, &returned, lease)
            .await,
        Err(StoreError::StateRefused { .. })
    ));
    cell.release_payment(&id, "worker-1").await.unwrap();
    assert_eq!(
        cell.payment_secrets(&id).await.unwrap().payment.phase,
        PaymentPhase::AwaitingSca
    );
    let taken = cell
        .take_payment_state(&id, "state-hash", now, &returned, lease)
        .await
        .unwrap();
    // The request holds the payment now: no worker takes it.
    assert!(
        !cell
            .claim_payment(&id, "worker-1", now.plus_seconds(10), now)
            .await
            .unwrap()
    );
    cell.release_payment(&id, "request-1").await.unwrap();
    assert_eq!(taken.payment.phase, PaymentPhase::Submitting);
    assert_eq!(taken.details, "sealed", "steps without details keep them");
    assert_eq!(
        taken.session.as_deref(),
        Some("sealed-session-with-callback")
    );
    // Spent, its hash kept: a replay is recognised, and cannot be taken again.
    assert_eq!(taken.state_hash.as_deref(), Some("state-hash"));
    assert!(taken.state_spent_at.is_some());
    assert!(matches!(
        cell.take_payment_state(&id, "state-hash", now, &returned, lease)
            .await,
        Err(StoreError::NotFound)
    ));

    let mut submitted =
        PaymentChange::phase(&[PaymentPhase::Submitting], PaymentPhase::Submitted, now);
    submitted.status = Some((PaymentStatus::Authorised, Some("ACTC".into())));
    submitted.next_poll_at = Some(Some(now.plus_seconds(60)));
    submitted.event = Some(Event::untyped(
        tenant.clone(),
        &user.id,
        EventType::PaymentStatusChanged,
        serde_json::json!({"payment_id": id}),
    ));
    // The bank told who pays: the step replaces the sealed details; steps without leave them.
    submitted.details = Some("sealed-with-debtor".into());
    cell.advance_payment(&id, &submitted).await.unwrap();
    assert_eq!(
        cell.payment_secrets(&id).await.unwrap().details,
        "sealed-with-debtor"
    );

    // Polls: due only when the time comes; a backwards status is refused.
    let stale = now.plus_seconds(-3600);
    assert!(
        cell.payments_due(now, stale, stale, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        cell.payments_due(now.plus_seconds(61), stale, stale, 10)
            .await
            .unwrap(),
        vec![id.clone()]
    );
    let mut backwards =
        PaymentChange::phase(&[PaymentPhase::Submitted], PaymentPhase::Submitted, now);
    backwards.status = Some((PaymentStatus::Pending, Some("PDNG".into())));
    assert!(matches!(
        cell.advance_payment(&id, &backwards).await,
        Err(StoreError::StateRefused { .. })
    ));

    let mut done = PaymentChange::phase(&[PaymentPhase::Submitted], PaymentPhase::Done, now);
    done.status = Some((PaymentStatus::Rejected, Some("RJCT".into())));
    done.reason = Some("insufficient funds".into());
    done.next_poll_at = Some(None);
    let p = cell.advance_payment(&id, &done).await.unwrap();
    assert_eq!(
        cell.payment_secrets(&id).await.unwrap().details,
        "sealed-with-debtor"
    );
    assert_eq!(p.status, PaymentStatus::Rejected);
    assert_eq!(p.status_reason.as_deref(), Some("insufficient funds"));
    let history: Vec<(PaymentStatus, Option<String>, Option<String>)> = cell
        .status_history(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.status, h.bank_status, h.reason))
        .collect();
    assert_eq!(
        history,
        vec![
            (PaymentStatus::Pending, None, None),
            (PaymentStatus::Pending, Some("RCVD".into()), None),
            (PaymentStatus::Authorised, Some("ACTC".into()), None),
            (
                PaymentStatus::Rejected,
                Some("RJCT".into()),
                Some("insufficient funds".into())
            ),
        ]
    );
    let events = cell
        .list_events(&tenant, &EventFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert!(
        cell.payments_due(now.plus_seconds(10_000), stale, stale, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Erasure takes the payment and its history.
    cell.delete_user(&tenant, &user.id, None).await.unwrap();
    assert!(matches!(
        cell.payment_secrets(&id).await,
        Err(StoreError::NotFound)
    ));
    assert!(cell.status_history(&id).await.unwrap().is_empty());
}

pub async fn idempotency_keys_are_held_once_and_resumable(stores: TestStores) {
    let control = stores.control();
    let payer = UserId::generate(&Region::parse("uk").unwrap());
    let tenant = TenantId::generate();
    let other = TenantId::generate();
    let now = Timestamp::now();
    let lock = now.plus_seconds(60);
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "k1", "h1", "pay_1", lock, now)
            .await
            .unwrap(),
        Idempotency::New
    );
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "k1", "h1", "pay_2", lock, now)
            .await
            .unwrap(),
        Idempotency::InFlight
    );
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "k1", "h2", "pay_2", lock, now)
            .await
            .unwrap(),
        Idempotency::InFlight,
        "while held, even a different request is told the key is in use"
    );
    // Keys are per tenant.
    assert_eq!(
        control
            .begin_idempotent(&other, &payer, "k1", "h9", "pay_9", lock, now)
            .await
            .unwrap(),
        Idempotency::New
    );
    // The holder died: after its lock, the same request resumes with the same resource.
    let later = now.plus_seconds(61);
    assert_eq!(
        control
            .begin_idempotent(
                &tenant,
                &payer,
                "k1",
                "h1",
                "pay_3",
                later.plus_seconds(60),
                later
            )
            .await
            .unwrap(),
        Idempotency::Resume {
            resource_id: "pay_1".into()
        }
    );
    control
        .complete_idempotent(&tenant, "k1", later)
        .await
        .unwrap();
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "k1", "h1", "pay_4", lock, later)
            .await
            .unwrap(),
        Idempotency::Replay {
            resource_id: "pay_1".into()
        }
    );
    // A released key is free again.
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "k2", "h1", "pay_5", lock, now)
            .await
            .unwrap(),
        Idempotency::New
    );
    control.release_idempotent(&tenant, "k2").await.unwrap();
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "k2", "h2", "pay_6", lock, now)
            .await
            .unwrap(),
        Idempotency::New
    );
    // Old finished keys are purged; unfinished ones are kept.
    assert_eq!(
        control
            .purge_idempotency(later.plus_seconds(1))
            .await
            .unwrap(),
        1
    );
}

pub async fn concurrent_requests_with_one_key_get_one_go_ahead(stores: TestStores) {
    let control = stores.control();
    let tenant = TenantId::generate();
    let now = Timestamp::now();
    let attempts = (0..8).map(|i| {
        let control = control.clone();
        let tenant = tenant.clone();
        async move {
            control
                .begin_idempotent(
                    &tenant,
                    &UserId::generate(&Region::parse("uk").unwrap()),
                    "same",
                    "h",
                    &format!("pay_{i}"),
                    now.plus_seconds(60),
                    now,
                )
                .await
                .unwrap()
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let new = outcomes.iter().filter(|o| **o == Idempotency::New).count();
    let busy = outcomes
        .iter()
        .filter(|o| **o == Idempotency::InFlight)
        .count();
    assert_eq!((new, busy), (1, 7), "{outcomes:?}");
}

/// Rows an earlier release wrote (the key itself, a bare SHA-256 of the request) keep answering
/// until converted: the same request replays and converts the row; another is refused; a
/// conversion run leaves none behind.
pub async fn legacy_idempotency_keys_are_honoured_and_converted(stores: TestStores) {
    let control = stores.control();
    let pool = stores.raw_control_pool();
    let tenant = TenantId::generate();
    let now = Timestamp::now();
    let sha = |c: char| c.to_string().repeat(64);
    for (key, hash) in [
        ("old-1", sha('a')),
        ("old-2", sha('b')),
        ("old-3", sha('c')),
    ] {
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash, resource_id, \
             state, created_at, completed_at) VALUES ($1, $2, $3, $4, 'done', $5, $5)",
        )
        .bind(tenant.as_str())
        .bind(key)
        .bind(hash)
        .bind(format!("pay_{key}"))
        .bind(now.unix_micros())
        .execute(&pool)
        .await
        .unwrap();
    }
    let legacy = |key, request_hash| Some(LegacyIdempotency { key, request_hash });
    let payer = UserId::generate(&Region::parse("uk").unwrap());
    let lock = now.plus_seconds(30);
    let a = sha('a');
    assert_eq!(
        control
            .begin_idempotent_with_legacy(
                &tenant,
                &payer,
                "ik1.one",
                "rh1.one",
                legacy("old-1", &a),
                "pay_x",
                lock,
                now
            )
            .await
            .unwrap(),
        Idempotency::Replay {
            resource_id: "pay_old-1".into()
        }
    );
    // Converted on the way: found by the keyed forms alone from now on.
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "ik1.one", "rh1.one", "pay_y", lock, now)
            .await
            .unwrap(),
        Idempotency::Replay {
            resource_id: "pay_old-1".into()
        }
    );
    let z = sha('z');
    assert_eq!(
        control
            .begin_idempotent_with_legacy(
                &tenant,
                &payer,
                "ik1.two",
                "rh1.two",
                legacy("old-2", &z),
                "pay_x",
                lock,
                now
            )
            .await
            .unwrap(),
        Idempotency::Mismatch
    );
    // Another tenant's legacy row is not this tenant's.
    assert_eq!(
        control
            .begin_idempotent_with_legacy(
                &TenantId::generate(),
                &payer,
                "ik1.t",
                "rh1.t",
                legacy("old-3", &sha('c')),
                "pay_t",
                lock,
                now
            )
            .await
            .unwrap(),
        Idempotency::New
    );

    let left = control.legacy_idempotency_keys(10).await.unwrap();
    let mut keys: Vec<&str> = left.iter().map(|r| r.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["old-2", "old-3"]);
    for row in &left {
        let key = format!("ik1.{}", row.key);
        assert!(
            control
                .convert_idempotency_key(row, &key, "rh1.c")
                .await
                .unwrap()
        );
        assert!(
            !control
                .convert_idempotency_key(row, &key, "rh1.c")
                .await
                .unwrap()
        );
    }
    assert!(
        control
            .legacy_idempotency_keys(10)
            .await
            .unwrap()
            .is_empty()
    );
    let plaintext: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM idempotency_keys WHERE idempotency_key LIKE 'old-%' \
         OR request_hash NOT LIKE 'rh1.%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(plaintext, 0);
    assert_eq!(
        control
            .begin_idempotent(&tenant, &payer, "ik1.old-3", "rh1.c", "pay_z", lock, now)
            .await
            .unwrap(),
        Idempotency::Replay {
            resource_id: "pay_old-3".into()
        }
    );
}
