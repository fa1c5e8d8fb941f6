//! How payments are written down: UK sort codes and account numbers as people write them, one
//! status vocabulary whatever standard the bank speaks, and statuses stored by earlier releases
//! (`executing`) read and converted on both backends.

use kontor_test_support::Backend;
use serde_json::{Value, json};

use crate::payments::{authorise, body, payment, post};
use crate::support::{World, world, world_on};

fn uk_body(user_id: &str, sort_code: &str, account_number: &str) -> Value {
    let mut request = body(user_id, "thames-bank", "1.00");
    request["creditor"] =
        json!({"name": "Landlord Ltd", "sort_code": sort_code, "account_number": account_number});
    request
}

#[tokio::test]
async fn sort_codes_are_taken_with_hyphens_or_spaces() {
    let w = world().await;
    let bob = w.user("bob").await;
    for (n, (sort_code, number)) in [
        ("40-09-93", "30971327"),
        ("40 09 93", "3097 1327"),
        ("400993", "3097-1327"),
    ]
    .into_iter()
    .enumerate()
    {
        let response = post(
            &w,
            Some(&format!("sc-{n}")),
            &uk_body(&bob, sort_code, number),
        )
        .await;
        assert_eq!(response.status(), 201, "{sort_code} {number}");
        let created: Value = response.json().await.unwrap();
        assert_eq!(
            created["creditor_account"],
            json!({"iban": null, "sort_code": "400993", "account_number": "30971327"}),
            "stored and answered as digits"
        );
    }
    for (n, (sort_code, number, says)) in [
        ("40-09-9", "30971327", "a sort code has 6 digits, not 5"),
        (
            "40--09-93",
            "30971327",
            "a sort code separates its digit groups",
        ),
        ("40.09.93", "30971327", "found '.' at position 2"),
        ("400993", "3097132", "an account number has 8 digits, not 7"),
        ("400993", " 30971327", "an account number separates"),
    ]
    .into_iter()
    .enumerate()
    {
        let response = post(
            &w,
            Some(&format!("bad-{n}")),
            &uk_body(&bob, sort_code, number),
        )
        .await;
        assert_eq!(response.status(), 400, "{sort_code:?} {number:?}");
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope["error"]["code"], "invalid_account_number");
        let message = envelope["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("creditor: "), "{message}");
        assert!(message.contains(says), "{message}");
    }
    // A grouped sort code travels to the bank as the spec's 14 digits.
    let created: Value = post(&w, Some("sc-pay"), &uk_body(&bob, "40-09-93", "3097 1327"))
        .await
        .json()
        .await
        .unwrap();
    authorise(&w, created["authorize_url"].as_str().unwrap(), "bob").await;
    let ledger: Vec<_> = w
        .sandbox
        .payments()
        .into_iter()
        .filter(|p| p.bank_id == "thames-bank")
        .collect();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].creditor_account, "40099330971327");
}

/// Each typed field's limit is at its n characters, counted as characters (not bytes), and
/// one more is refused with the field's code; the Idempotency-Key's at 255 bytes.
#[tokio::test]
async fn payment_fields_are_refused_past_their_limits() {
    let w = world().await;
    let bob = w.user("bob").await;
    let with = |field: &str, value: Value| {
        let mut request = uk_body(&bob, "40 09 93", "30971327");
        match field {
            "creditor.name" => request["creditor"]["name"] = value,
            other => request[other] = value,
        }
        request
    };
    let accepted = [
        with("creditor.name", json!("é".repeat(70))),
        with("remittance", json!("日".repeat(140))),
        with("remittance", json!("Miete 🏠 November")),
        with("end_to_end_id", json!("E".repeat(35))),
    ];
    for (n, request) in accepted.iter().enumerate() {
        let response = post(&w, Some(&format!("ok-{n}")), request).await;
        assert_eq!(response.status(), 201, "{request}");
    }
    let refused = [
        (
            with("creditor.name", json!("é".repeat(71))),
            "invalid_creditor_name",
        ),
        (
            with("creditor.name", json!(" Landlord")),
            "invalid_creditor_name",
        ),
        (
            with("creditor.name", json!("Land\u{0}lord")),
            "invalid_creditor_name",
        ),
        (
            with("remittance", json!("日".repeat(141))),
            "invalid_remittance",
        ),
        (with("remittance", json!("Rent ")), "invalid_remittance"),
        (with("remittance", json!("")), "invalid_remittance"),
        (
            with("end_to_end_id", json!("E".repeat(36))),
            "invalid_end_to_end_id",
        ),
        (
            with("end_to_end_id", json!("E2E 1")),
            "invalid_end_to_end_id",
        ),
        (with("end_to_end_id", json!("É2E")), "invalid_end_to_end_id"),
    ];
    for (n, (request, code)) in refused.iter().enumerate() {
        let response = post(&w, Some(&format!("bad-{n}")), request).await;
        assert_eq!(response.status(), 400, "{request}");
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope["error"]["code"], *code, "{request}");
    }
    let good = uk_body(&bob, "400993", "30971327");
    let longest = post(&w, Some(&"k".repeat(255)), &good).await;
    assert_eq!(longest.status(), 201);
    let envelope: Value = post(&w, Some(&"k".repeat(256)), &good)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(envelope["error"]["code"], "invalid_idempotency_key");
}

/// Right after the user's SCA, the sandbox's Berlin Group bank says ACTC and its UK bank
/// `AcceptedSettlementInProcess`: the same stage, so the same status for the tenant.
#[tokio::test]
async fn the_same_stage_has_the_same_status_at_both_standards() {
    let w = world().await;
    let mut seen = Vec::new();
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        let created: Value = post(&w, Some(bank), &body(&user_id, bank, "1.50"))
            .await
            .json()
            .await
            .unwrap();
        authorise(&w, created["authorize_url"].as_str().unwrap(), user).await;
        let view = payment(&w, created["id"].as_str().unwrap()).await;
        let last = view["history"].as_array().unwrap().last().unwrap().clone();
        seen.push((view["status"].clone(), last["bank_status"].clone()));
    }
    assert_eq!(
        seen,
        [
            (json!("authorised"), json!("ACTC")),
            (json!("authorised"), json!("AcceptedSettlementInProcess")),
        ]
    );
}

async fn executing_rows(w: &World) -> (i64, i64) {
    let pool = w.app.stores.raw_cell_pool("de");
    let payments: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE status = 'executing'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let history: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payment_status_history WHERE status = 'executing'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    (payments, history)
}

/// Rows an earlier release wrote with `executing` read as `authorised`, and `kontor migrate`'s
/// data step rewrites them in batches; a payment in that state still moves on normally.
async fn legacy_executing(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    let alice = w.user("alice").await;
    let created: Value = post(&w, Some("old"), &body(&alice, "sonnenbank", "1.60"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    authorise(&w, created["authorize_url"].as_str().unwrap(), "alice").await;
    // What the previous release stored for an accepted payment.
    let pool = w.app.stores.raw_cell_pool("de");
    sqlx::query("UPDATE payments SET status = 'executing' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE payment_status_history SET status = 'executing' WHERE payment_id = $1 AND status = 'authorised'",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(executing_rows(&w).await, (1, 1));

    let view = payment(&w, id).await;
    assert_eq!(view["status"], "authorised", "{view}");
    assert!(
        view["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["status"] != "executing"),
        "{view}"
    );

    assert_eq!(w.app.hub.merge_legacy_payment_statuses().await.unwrap(), 2);
    assert_eq!(executing_rows(&w).await, (0, 0));
    assert_eq!(w.app.hub.merge_legacy_payment_statuses().await.unwrap(), 0);
    assert_eq!(payment(&w, id).await["history"], view["history"]);
    let done = crate::payments::settle(&w, id).await;
    assert_eq!(done["status"], "completed");
}

#[tokio::test]
async fn legacy_executing_rows_read_and_convert_on_sqlite() {
    legacy_executing(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn legacy_executing_rows_read_and_convert_on_postgres() {
    legacy_executing(
        Backend::Postgres,
        "api::payment_words::legacy_executing_rows_read_and_convert_on_postgres",
    )
    .await;
}

#[tokio::test]
async fn the_status_table_is_in_the_api_document() {
    let w = world().await;
    let document: Value = w
        .app
        .http
        .get(w.app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema = &document["components"]["schemas"]["PaymentStatus"];
    assert_eq!(
        schema["enum"],
        json!([
            "pending",
            "authorised",
            "completed",
            "rejected",
            "cancelled",
            "unknown"
        ])
    );
    let description = schema["description"].as_str().unwrap();
    assert!(description.contains("| `authorised` |"), "{description}");
    assert!(
        description.contains("`AcceptedSettlementInProcess`"),
        "{description}"
    );
    assert!(description.contains("`ACSP`"), "{description}");
    // The cancel operation is documented with its refusal.
    let cancel = &document["paths"]["/v1/payments/{id}/cancel"]["post"];
    assert_eq!(cancel["operationId"], "cancelPayment");
}
