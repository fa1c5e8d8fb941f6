//! A cell's gauges: payments per phase with the oldest change, the webhook backlog and what is
//! overdue in it, overdue syncs and consents about to lapse.

use kontor_domain::connection::ConnectionEvent;
use kontor_domain::event::{Event, EventType};
use kontor_domain::payment::PaymentPhase;
use kontor_domain::time::Timestamp;
use kontor_domain::{DeliveryId, TenantId, WebhookEndpointId};
use kontor_store::{
    CellGauges, ConnectionStore, DeliveryStore, EventStore, GaugeStore, NewDelivery, PaymentChange,
    PaymentStore, Transition,
};
use kontor_test_support::TestStores;

use crate::connections::user_with_connection;
use crate::payments::new_payment;

fn phase(gauges: &CellGauges, phase: PaymentPhase) -> (u64, Option<Timestamp>) {
    let gauge = gauges.payments.iter().find(|g| g.phase == phase).unwrap();
    (gauge.count, gauge.oldest_change)
}

pub async fn gauges_count_and_age_what_waits(stores: TestStores) {
    let cell = stores.cell("de");
    let now = Timestamp::now();
    let horizon = now.plus_seconds(7 * 86_400);

    let empty = cell.gauges(now, horizon).await.unwrap();
    assert_eq!(
        empty.payments.iter().map(|g| g.phase).collect::<Vec<_>>(),
        vec![
            PaymentPhase::Accepted,
            PaymentPhase::Initiating,
            PaymentPhase::AwaitingSca,
            PaymentPhase::Submitting,
            PaymentPhase::Submitted,
        ]
    );
    assert!(
        empty
            .payments
            .iter()
            .all(|g| g.count == 0 && g.oldest_change.is_none())
    );
    assert_eq!(
        empty,
        CellGauges {
            payments: empty.payments.clone(),
            ..CellGauges::default()
        }
    );

    // Payments: two accepted, one of them moved on to initiating later.
    let tenant = TenantId::generate();
    let (user, connection) = user_with_connection(cell.as_ref(), &tenant).await;
    let mut first = new_payment(&tenant, &user);
    first.payment.created_at = now.plus_seconds(-600);
    first.payment.updated_at = now.plus_seconds(-600);
    cell.create_payment(&first).await.unwrap();
    let mut second = new_payment(&tenant, &user);
    second.payment.created_at = now.plus_seconds(-300);
    second.payment.updated_at = now.plus_seconds(-300);
    cell.create_payment(&second).await.unwrap();
    let step = PaymentChange::phase(
        &[PaymentPhase::Accepted],
        PaymentPhase::Initiating,
        now.plus_seconds(-120),
    );
    cell.advance_payment(&first.payment.id, &step)
        .await
        .unwrap();

    // A connection whose sync is 100 s overdue and whose consent lapses in five days.
    let active = Transition {
        event: ConnectionEvent::Authorised,
        failure_reason: None,
        valid_until: Some(now.plus_seconds(5 * 86_400)),
        session: None,
        next_sync_at: Some(now.plus_seconds(-100)),
        at: now.plus_seconds(-200),
    };
    cell.transition(&connection, &active, None).await.unwrap();

    // One event dispatched into a delivery due 30 s ago, one still in the outbox.
    let event = |age: i64| Event {
        created_at: now.plus_seconds(-age),
        ..Event::untyped(
            tenant.clone(),
            &user,
            EventType::TransactionsUpdated,
            serde_json::json!({ "age": age }),
        )
    };
    let dispatched = event(400);
    cell.append_event(&dispatched).await.unwrap();
    let delivery = NewDelivery {
        id: DeliveryId::generate(dispatched.id.region()),
        tenant_id: tenant.clone(),
        endpoint_id: WebhookEndpointId::generate(),
        event_id: dispatched.id.clone(),
        ordering_key: user.to_string(),
        queued_at: dispatched.created_at,
        redelivery: false,
        created_at: now.plus_seconds(-30),
    };
    cell.dispatch_events(
        std::slice::from_ref(&dispatched.id),
        std::slice::from_ref(&delivery),
        now.plus_seconds(-30),
    )
    .await
    .unwrap();

    let gauges = cell.gauges(now, horizon).await.unwrap();
    assert_eq!(
        phase(&gauges, PaymentPhase::Accepted),
        (1, Some(now.plus_seconds(-300)))
    );
    assert_eq!(
        phase(&gauges, PaymentPhase::Initiating),
        (1, Some(now.plus_seconds(-120)))
    );
    assert_eq!(phase(&gauges, PaymentPhase::Submitted), (0, None));
    assert_eq!(gauges.deliveries_pending, 1);
    assert_eq!(
        gauges.oldest_pending_queued_at,
        Some(now.plus_seconds(-400))
    );
    assert_eq!(gauges.oldest_due_at, Some(now.plus_seconds(-30)));
    assert_eq!(gauges.oldest_overdue_sync_at, Some(now.plus_seconds(-100)));
    assert_eq!(gauges.consents_expiring, 1);
    // Not within a horizon of four days.
    let sooner = cell
        .gauges(now, now.plus_seconds(4 * 86_400))
        .await
        .unwrap();
    assert_eq!(sooner.consents_expiring, 0);

    // An event waiting longer in the outbox is the oldest due work.
    let waiting = event(250);
    cell.append_event(&waiting).await.unwrap();
    let gauges = cell.gauges(now, horizon).await.unwrap();
    assert_eq!(gauges.oldest_due_at, Some(now.plus_seconds(-250)));

    // Seen from an earlier moment, nothing is overdue yet.
    let before = now.plus_seconds(-500);
    let earlier = cell.gauges(before, horizon).await.unwrap();
    assert_eq!(earlier.oldest_due_at, None);
    assert_eq!(earlier.oldest_overdue_sync_at, None);

    // The other region's cell holds none of it.
    let other = stores.cell("uk").gauges(now, horizon).await.unwrap();
    assert_eq!(other.deliveries_pending, 0);
    assert!(other.payments.iter().all(|g| g.count == 0));
}
