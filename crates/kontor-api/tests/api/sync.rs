//! Syncing against the sandbox bank over HTTP, for both standards: the first sync reads
//! everything, later ones add new entries and follow pending ones until they book (the bank
//! changes their ids when they do) without duplicates or losses, unattended syncs stay within
//! the daily allowance, and every fault mode degrades with a clear error and recovers.

use std::collections::HashSet;

use kontor_domain::ConnectionId;
use kontor_sandbox_bank::FaultConfig;
use kontor_service::{ServiceError, SyncTrigger};
use kontor_test_support::error_code;
use serde_json::Value;

use crate::support::{World, world};

const BANKS: [(&str, &str); 2] = [("alice", "sonnenbank"), ("bob", "thames-bank")];

/// The sandbox's own account list for a user at a bank.
fn truth(w: &World, bank: &str, user: &str) -> Vec<kontor_sandbox_bank::AccountInfo> {
    w.sandbox
        .accounts(bank)
        .unwrap()
        .into_iter()
        .filter(|a| a.username == user)
        .collect()
}

async fn accounts(w: &World, user_id: &str) -> Vec<Value> {
    w.accounts(user_id).await
}

fn ids(transactions: &[Value]) -> HashSet<String> {
    transactions
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_first_sync_reads_everything_the_bank_has() {
    let w = world().await;
    for (user, bank) in BANKS {
        let (user_id, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        let expected = truth(&w, bank, user);
        let accounts = accounts(&w, &user_id).await;
        assert_eq!(accounts.len(), expected.len(), "{bank}: {accounts:?}");
        let mut total = 0;
        for account in &accounts {
            let account_id = account["id"].as_str().unwrap();
            let transactions = w.all_transactions(account_id, "").await;
            assert_eq!(
                ids(&transactions).len(),
                transactions.len(),
                "no duplicate ids"
            );
            total += transactions.len();
            // Newest first, exact amounts, the account's currency.
            let dates: Vec<&str> = transactions
                .iter()
                .filter_map(|t| t["booking_date"].as_str())
                .collect();
            assert!(
                dates.windows(2).all(|w| w[0] >= w[1]),
                "{bank}: not newest first"
            );
            for t in &transactions {
                let value = t["amount"]["value"].as_str().unwrap();
                assert!(value.contains('.'), "{value}");
                assert_eq!(t["amount"]["currency"], account["currency"]);
            }
            let balances: Value = w
                .app
                .get(&format!("/v1/accounts/{account_id}/balances"), &w.token)
                .await
                .json()
                .await
                .unwrap();
            assert!(
                !balances["data"].as_array().unwrap().is_empty(),
                "{bank}: no balances"
            );
        }
        let bank_total: usize = expected.iter().map(|a| a.entries).sum();
        assert_eq!(
            total, bank_total,
            "{bank}: every entry the bank reports, once"
        );
        let updated = w
            .events(&format!("&type=transactions.updated&user_id={user_id}"))
            .await;
        assert_eq!(updated.len(), 1);
        assert_eq!(updated[0]["data"]["initial"], true);
    }
}

#[tokio::test]
async fn pending_entries_book_without_duplicates_or_losses() {
    let w = world().await;
    for (user, bank) in BANKS {
        let (user_id, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        let account_ids: Vec<String> = accounts(&w, &user_id)
            .await
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        let mut before = Vec::new();
        for account in &account_ids {
            before.extend(w.all_transactions(account, "").await);
        }
        let pending_before: HashSet<String> = before
            .iter()
            .filter(|t| t["status"] == "pending")
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();

        // Simulated days pass at the bank: pending entries book (under new bank ids) and new
        // ones appear.
        w.sandbox.advance_clock(time::Duration::days(4)).unwrap();
        let response = w.refresh(&id).await;
        assert_eq!(response.status(), 200);
        let report: Value = response.json().await.unwrap();
        let booked: u64 = report["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["booked"].as_u64().unwrap())
            .sum();
        let added: u64 = report["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["added"].as_u64().unwrap())
            .sum();

        let mut after = Vec::new();
        for account in &account_ids {
            after.extend(w.all_transactions(account, "").await);
        }
        assert_eq!(ids(&after).len(), after.len(), "{bank}: no duplicates");
        let bank_total: usize = truth(&w, bank, user).iter().map(|a| a.entries).sum();
        assert_eq!(
            after.len(),
            bank_total,
            "{bank}: nothing lost, nothing extra"
        );
        if !pending_before.is_empty() {
            assert!(
                booked > 0,
                "{bank}: four days should book some pending entries: {report}"
            );
        }
        // A pending entry that booked kept its hub id.
        let now_booked: HashSet<String> = after
            .iter()
            .filter(|t| t["status"] == "booked")
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        let kept = pending_before.intersection(&now_booked).count();
        assert_eq!(
            u64::try_from(kept).unwrap(),
            booked.min(u64::try_from(pending_before.len()).unwrap()),
            "{bank}: {report}"
        );
        assert!(
            added > 0 || booked > 0,
            "{bank}: the refresh saw nothing new: {report}"
        );

        // Syncing again without time passing changes nothing.
        let again: Value = w.refresh(&id).await.json().await.unwrap();
        for account in again["accounts"].as_array().unwrap() {
            assert_eq!(
                account["added"].as_u64().unwrap()
                    + account["updated"].as_u64().unwrap()
                    + account["removed"].as_u64().unwrap(),
                0,
                "{again}"
            );
        }
        let filtered = w.all_transactions(&account_ids[0], "&status=pending").await;
        assert!(filtered.iter().all(|t| t["status"] == "pending"));
    }
}

#[tokio::test]
async fn unattended_syncs_stay_within_the_daily_allowance() {
    let w = world().await;
    for (user, bank) in BANKS {
        let (_, id, _) = w.link(user, bank).await;
        w.synced(&id).await;
        let connection = ConnectionId::parse(&id).unwrap();
        let mut done = 0;
        let mut refused = 0;
        for _ in 0..6 {
            match w.app.hub.sync(&connection, SyncTrigger::Scheduled).await {
                Ok(_) => done += 1,
                Err(ServiceError::Conflict {
                    code: kontor_service::ErrorCode::AccessExceeded,
                    ..
                }) => refused += 1,
                Err(other) => panic!("{bank}: {other}"),
            }
        }
        assert_eq!(
            (done, refused),
            (4, 2),
            "{bank}: four unattended syncs a day, then none"
        );
        // The bank never had to refuse one: the hub stopped first.
        assert!(w.events("&type=connection.sync_failed").await.is_empty());
        // With the user present, syncing goes on.
        assert_eq!(w.refresh(&id).await.status(), 200);
        let connection = w.connection(&id).await;
        assert!(
            connection["next_sync_at"].as_str().unwrap()
                > connection["last_synced_at"].as_str().unwrap()
        );
    }
}

#[tokio::test]
async fn bank_faults_degrade_clearly_and_recover() {
    let w = world().await;
    for (user, bank) in BANKS {
        let (_, id, _) = w.link(user, bank).await;
        w.synced(&id).await;

        // Slower than the connector's timeout: the bank is unavailable.
        w.sandbox
            .set_faults(
                bank,
                FaultConfig {
                    latency_ms: 4_000,
                    ..FaultConfig::default()
                },
            )
            .unwrap();
        let response = w.refresh(&id).await;
        assert_eq!(response.status(), 503, "{bank}");
        assert!(
            response.headers().contains_key("retry-after"),
            "a 503 says when to retry"
        );
        assert_eq!(error_code(response).await, "bank_unavailable");
        w.sandbox.clear_faults(bank).unwrap();
        assert_eq!(
            w.connection(&id).await["status"],
            "active",
            "a slow bank does not end the connection"
        );

        // A failure or two, a rate limit, a reset: retried, the refresh succeeds.
        for faults in [
            FaultConfig {
                fail_next: 1,
                error_status: Some(500),
                ..FaultConfig::default()
            },
            FaultConfig {
                fail_next: 1,
                error_status: Some(503),
                ..FaultConfig::default()
            },
            FaultConfig {
                rate_limit_next: 1,
                retry_after_seconds: Some(1),
                ..FaultConfig::default()
            },
            FaultConfig {
                reset_next: 1,
                ..FaultConfig::default()
            },
        ] {
            w.sandbox.set_faults(bank, faults.clone()).unwrap();
            let response = w.refresh(&id).await;
            assert_eq!(response.status(), 200, "{bank}: {faults:?}");
            w.sandbox.clear_faults(bank).unwrap();
        }

        // A bank asking for a long pause: the tenant gets 429 with the bank's Retry-After.
        w.sandbox
            .set_faults(
                bank,
                FaultConfig {
                    rate_limit_next: 5,
                    retry_after_seconds: Some(30),
                    ..FaultConfig::default()
                },
            )
            .unwrap();
        let response = w.refresh(&id).await;
        assert_eq!(response.status(), 429, "{bank}");
        assert_eq!(response.headers()["retry-after"], "30", "{bank}");
        assert_eq!(error_code(response).await, "bank_rate_limited", "{bank}");
        w.sandbox.clear_faults(bank).unwrap();
        assert_eq!(w.connection(&id).await["status"], "active");
        assert_eq!(
            w.refresh(&id).await.status(),
            200,
            "{bank}: a success ends the run of failures"
        );

        // The bank down for good: every read fails, the sync is rescheduled, the tenant told once
        // per run of failures.
        let told = |events: &[Value]| {
            events
                .iter()
                .filter(|e| e["data"]["connection_id"] == id.as_str())
                .count()
        };
        let before = told(&w.events("&type=connection.sync_failed").await);
        w.sandbox
            .set_faults(
                bank,
                FaultConfig {
                    error_percent: 100,
                    error_status: Some(503),
                    ..FaultConfig::default()
                },
            )
            .unwrap();
        let connection = ConnectionId::parse(&id).unwrap();
        for _ in 0..2 {
            let err = w
                .app
                .hub
                .sync(&connection, SyncTrigger::Scheduled)
                .await
                .unwrap_err();
            assert!(matches!(err, ServiceError::Bank(_)), "{err}");
        }
        let after = told(&w.events("&type=connection.sync_failed").await);
        assert_eq!(after, before + 1, "told once");
        w.sandbox.clear_faults(bank).unwrap();
        assert_eq!(w.refresh(&id).await.status(), 200, "{bank}: recovers");
    }
}

#[tokio::test]
async fn a_fault_while_linking_fails_the_connection_cleanly() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let created = w.create_connection(&user_id, None).await;
    w.sandbox
        .set_faults(
            "sonnenbank",
            FaultConfig {
                fail_next: 5,
                error_status: Some(500),
                ..FaultConfig::default()
            },
        )
        .unwrap();
    let browser = w.browser();
    let page = browser
        .open(created["connect_url"].as_str().unwrap())
        .await
        .page();
    let back = browser
        .submit(&page.form("bank-sonnenbank").unwrap())
        .await
        .left();
    let query = crate::support::query_of(&back);
    assert_eq!(query["status"], "failed");
    assert_eq!(query["reason"], "bank_unavailable");
}
