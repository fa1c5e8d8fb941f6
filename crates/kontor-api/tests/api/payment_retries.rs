//! A payment whose row committed but whose answer failed afterwards (the commit's reply lost with
//! the primary, or recording the key's completion failing): the retry with the same Idempotency-Key
//! must carry on with that payment, never create a second one.

use kontor_test_support::error_code;
use serde_json::Value;
use sqlx::AnyPool;

use crate::payments::{body, post};
use crate::support::world;

const KEY: &str = "order-answer-lost";

async fn payments(cell: &AnyPool) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM payments ORDER BY id")
        .fetch_all(cell)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_payment_whose_answer_failed_after_it_committed_is_resumed_not_made_twice() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let request = body(&user_id, "sonnenbank", "9.99");
    let cell = w.app.stores.raw_cell_pool("de");

    // Recording the key's completion in the control database fails: the payment has committed
    // in the cell, and the request is answered with an error.
    let control = w.app.stores.raw_control_pool();
    sqlx::query(
        "CREATE TRIGGER refuse_completion BEFORE UPDATE ON idempotency_keys BEGIN \
         SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&control)
    .await
    .unwrap();
    let first = post(&w, Some(KEY), &request).await;
    assert_eq!(first.status(), 500);
    let committed = payments(&cell).await;
    assert_eq!(
        committed.len(),
        1,
        "the payment committed before the answer failed"
    );

    // Retried at once, the key is still held for the first request.
    let busy = post(&w, Some(KEY), &request).await;
    assert_eq!(busy.status(), 409);
    assert_eq!(error_code(busy).await, "idempotency_key_in_use");
    assert_eq!(payments(&cell).await, committed, "no second payment");

    // The cause goes away, and the key's lock lapses (set back instead of waiting for it).
    sqlx::query("DROP TRIGGER refuse_completion")
        .execute(&control)
        .await
        .unwrap();
    sqlx::query("UPDATE idempotency_keys SET locked_until = 0")
        .execute(&control)
        .await
        .unwrap();

    let retried = post(&w, Some(KEY), &request).await;
    assert_eq!(retried.status(), 201);
    let created: Value = retried.json().await.unwrap();
    assert_eq!(created["id"], committed[0].as_str(), "{created}");
    assert_eq!(payments(&cell).await, committed, "one payment for one key");

    // From now on the key answers that payment as a replay.
    let replay = post(&w, Some(KEY), &request).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["id"], committed[0].as_str());
}
