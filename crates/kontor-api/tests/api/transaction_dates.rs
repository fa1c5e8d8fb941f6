//! `transaction_date` (cell migration 0012): the date a transaction happened, filled by ingest by
//! its precedence rule (booking date, else the bank's transaction date, else value date, else the
//! day first seen), and shown for rows the previous release wrote before the backfill reaches
//! them, computed from the stored dates, so that a tenant never sees it missing.

use std::collections::HashMap;

use serde_json::Value;

use crate::support::{World, friday_evening, region_of, world, world_on_from};

async fn transactions_of(w: &World, user_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for account in w.accounts(user_id).await {
        out.extend(
            w.all_transactions(account["id"].as_str().unwrap(), "")
                .await,
        );
    }
    out
}

/// What the rule gives over the dates the API shows (neither sandbox bank sends a separate
/// transaction date, and both send at least one date per entry).
fn expected(t: &Value) -> &str {
    t["booking_date"]
        .as_str()
        .or_else(|| t["value_date"].as_str())
        .unwrap_or_else(|| panic!("no date at all: {t}"))
}

#[tokio::test]
async fn ingest_fills_the_transaction_date_by_precedence() {
    let Some(w) = world_on_from(
        kontor_test_support::Backend::Sqlite,
        "transaction_dates::ingest",
        Some(friday_evening()),
    )
    .await
    else {
        return;
    };
    // alice banks with a Berlin Group bank, bob with the UK one.
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (user_id, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        let transactions = transactions_of(&w, &user_id).await;
        assert!(!transactions.is_empty(), "{bank}");
        for t in &transactions {
            assert_eq!(
                t["transaction_date"].as_str(),
                Some(expected(t)),
                "{bank}: {t}"
            );
        }
        let booked = transactions
            .iter()
            .filter(|t| t["status"] == "booked")
            .count();
        assert!(booked > 0, "{bank}: no booked entry to check");
        if bank == "sonnenbank" {
            // The case the field exists for: a pending entry with only a value date.
            let value_only: Vec<&Value> = transactions
                .iter()
                .filter(|t| t["status"] == "pending" && t["booking_date"].is_null())
                .collect();
            assert!(
                !value_only.is_empty(),
                "the Berlin Group sandbox has no pending entry without a booking date"
            );
            for t in value_only {
                assert_eq!(t["transaction_date"], t["value_date"], "{t}");
            }
        }

        // Days pass at the bank; pending entries book, and their date becomes the booking date.
        let before: HashMap<String, Value> = transactions
            .into_iter()
            .map(|t| (t["id"].as_str().unwrap().to_owned(), t))
            .collect();
        w.sandbox.advance_clock(time::Duration::days(4)).unwrap();
        assert_eq!(w.refresh(&id).await.status(), 200);
        let after = transactions_of(&w, &user_id).await;
        let mut now_booked = 0;
        for t in &after {
            assert_eq!(
                t["transaction_date"].as_str(),
                Some(expected(t)),
                "{bank}: {t}"
            );
            let was = before.get(t["id"].as_str().unwrap());
            if was.is_some_and(|was| was["status"] == "pending") && t["status"] == "booked" {
                now_booked += 1;
                assert_eq!(t["transaction_date"], t["booking_date"], "{t}");
            }
        }
        assert!(now_booked > 0, "{bank}: nothing booked in four days");
    }
}

/// Rows as the previous release left them (no `transaction_date`): the API shows the date the
/// rule gives over the stored dates, the backfill then stores exactly that, and nothing changes
/// for the tenant.
#[tokio::test]
async fn rows_not_yet_backfilled_show_the_same_date() {
    let w = world().await;
    let (user_id, id, _) = w.link("alice", "sonnenbank").await;
    w.synced(&id).await;
    let stored = transactions_of(&w, &user_id).await;
    let pool = w.app.stores.raw_cell_pool(region_of("alice"));
    let cleared = sqlx::query("UPDATE transactions SET transaction_date = NULL")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(usize::try_from(cleared).unwrap(), stored.len());

    let unfilled = transactions_of(&w, &user_id).await;
    assert_eq!(unfilled, stored, "a row without the column reads the same");

    let cell = w.app.stores.cell(region_of("alice")).clone();
    let mut filled = 0;
    loop {
        let n = kontor_store::AccountStore::backfill_transaction_dates(cell.as_ref(), 7)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 7);
        filled += n;
    }
    assert_eq!(filled, cleared);
    let nulls: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE transaction_date IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(nulls, 0);
    assert_eq!(transactions_of(&w, &user_id).await, stored);
}
