//! `GET /v1/users/{id}/export`: a linked user's whole history (alice at Sonnenbank, over 1,000
//! transactions) streamed as NDJSON and compared with the list endpoints, on SQLite and
//! PostgreSQL; tenant isolation, the scope, and an erased user.

use std::collections::{BTreeMap, BTreeSet};

use kontor_domain::tenant::Scope;
use kontor_test_support::{Backend, TestApp, error_code};
use serde_json::Value;

use crate::payments::{body, post};
use crate::support::{World, world_on};

/// The export's lines, each parsed, and how many body chunks they came in.
async fn export(w: &World, user: &str) -> (Vec<Value>, usize, String) {
    let mut response = w
        .app
        .get(&format!("/v1/users/{user}/export"), &w.token)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed, not sent as one body of known length"
    );
    let mut raw = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        chunks += 1;
        raw.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(raw).unwrap();
    assert!(text.ends_with('\n'), "every line ends with a newline");
    let lines = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .collect();
    (lines, chunks, text)
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == kind)
        .map(|l| &l["data"])
        .collect()
}

fn ids(values: impl IntoIterator<Item = Value>) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn export_story(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    let (user, connection, _) = w.link("alice", "sonnenbank").await;
    w.synced(&connection).await;
    assert_eq!(
        post(&w, Some("export-pay"), &body(&user, "sonnenbank", "12.34"))
            .await
            .status(),
        201
    );
    let consent_id = w.session(&connection).await.consent_id;

    let events_before = w.events(&format!("&user_id={user}")).await;
    let (lines, chunks, text) = export(&w, &user).await;
    let events_after = w.events(&format!("&user_id={user}")).await;

    // Framing: the header first, the summary last, and the summary counts every line before it.
    assert_eq!(lines[0]["type"], "export");
    assert_eq!(lines[0]["data"]["format"], "kontor.user_export");
    assert_eq!(lines[0]["data"]["version"], 1);
    assert_eq!(lines[0]["data"]["user_id"], user.as_str());
    let summary = &lines.last().unwrap()["data"];
    assert_eq!(lines.last().unwrap()["type"], "summary");
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["lines"], lines.len() - 1);
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for line in &lines[..lines.len() - 1] {
        *counted
            .entry(line["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let summary_counts: BTreeMap<String, u64> = summary["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(summary_counts, counted);
    assert!(
        chunks > 2,
        "{chunks} chunks: the export is written batch by batch"
    );

    // The user, with the external_id opened.
    let read = w.get_json(&format!("/v1/users/{user}")).await;
    assert_eq!(of_type(&lines, "user"), vec![&read]);

    // The connection's metadata, and none of its secrets.
    let connections = of_type(&lines, "connection");
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["id"], connection.as_str());
    assert!(connections[0].get("connect_url").is_none());
    assert!(!text.contains(&consent_id), "the bank's consent id leaked");

    // Accounts and balances as the list endpoints give them.
    let accounts: Value = w
        .get_json(&format!("/v1/accounts?user_id={user}&limit=200"))
        .await;
    let accounts = accounts["data"].as_array().unwrap().clone();
    assert!(!accounts.is_empty());
    let exported_accounts: Vec<Value> = of_type(&lines, "account").into_iter().cloned().collect();
    assert_eq!(exported_accounts, accounts);

    let mut balances = 0;
    let mut listed = Vec::new();
    for account in &accounts {
        let id = account["id"].as_str().unwrap();
        let page: Value = w.get_json(&format!("/v1/accounts/{id}/balances")).await;
        balances += page["data"].as_array().unwrap().len();
        listed.extend(w.all_transactions(id, "").await);
    }
    let exported_balances = of_type(&lines, "balance");
    assert_eq!(exported_balances.len(), balances);
    assert!(
        exported_balances
            .iter()
            .all(|b| accounts.iter().any(|a| a["id"] == b["account_id"]))
    );

    // Every transaction, exactly once, the same as the transaction list shows it.
    let exported: Vec<Value> = of_type(&lines, "transaction")
        .into_iter()
        .cloned()
        .collect();
    assert!(
        exported.len() > 1_000,
        "alice has over 1,000 transactions, exported {}",
        exported.len()
    );
    assert_eq!(exported.len(), listed.len());
    eprintln!(
        "export: {} lines in {chunks} chunks, {} transactions over {} accounts, {summary_counts:?}",
        lines.len(),
        exported.len(),
        accounts.len()
    );
    assert_eq!(ids(exported.clone()), ids(listed.clone()));
    assert_eq!(
        exported, listed,
        "same order (account by account, newest first)"
    );

    // The payment with its history, without the link that authorises it.
    let payments = of_type(&lines, "payment");
    assert_eq!(payments.len(), 1);
    assert!(payments[0]["authorize_url"].is_null());
    assert!(!payments[0]["history"].as_array().unwrap().is_empty());
    assert_eq!(payments[0]["amount"]["value"], "12.34");

    // The events about the user (the payment may still add one while the export runs).
    assert!(!events_before.is_empty());
    let exported_events: Vec<Value> = of_type(&lines, "event").into_iter().cloned().collect();
    assert!(
        exported_events == events_before || exported_events == events_after,
        "{exported_events:?} vs {events_before:?} / {events_after:?}"
    );

    // Erased: the export is gone with the user.
    let erased = w.app.delete(&format!("/v1/users/{user}"), &w.token).await;
    assert_eq!(erased.status(), 204);
    let response = w
        .app
        .get(&format!("/v1/users/{user}/export"), &w.token)
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}

#[tokio::test]
async fn a_long_history_exports_completely_on_sqlite() {
    export_story(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn a_long_history_exports_completely_on_postgres() {
    export_story(
        Backend::Postgres,
        "api::export::a_long_history_exports_completely_on_postgres",
    )
    .await;
}

#[tokio::test]
async fn the_export_is_the_tenants_own_and_needs_users_read() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let token = app.token(&acme).await;
    let user = app.create_user(&token, "export-me", "uk").await;
    let id = user["id"].as_str().unwrap();
    let path = format!("/v1/users/{id}/export");

    let response = app.get(&path, &token).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["export", "user", "summary"]);

    // Another tenant's user answers exactly like an unknown one.
    let other = app.tenant("Other").await;
    let other_token = app.token(&other).await;
    let theirs = app.get(&path, &other_token).await;
    let unknown = app
        .get(
            "/v1/users/usr_uk_00000000000000000000000000/export",
            &other_token,
        )
        .await;
    assert_eq!(
        (theirs.status().as_u16(), unknown.status().as_u16()),
        (404, 404)
    );
    let (theirs, unknown): (Value, Value) =
        (theirs.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(theirs["error"]["code"], "not_found");
    assert_eq!(theirs["error"]["message"], unknown["error"]["message"]);

    // users:read is needed; other scopes do not do.
    let writer = app
        .tenant_with_scopes(
            "Writer",
            Some(
                [Scope::UsersWrite, Scope::AccountsRead, Scope::EventsRead]
                    .into_iter()
                    .collect(),
            ),
        )
        .await;
    let writer_token = app.token(&writer).await;
    let writers_user = app.create_user(&writer_token, "no-read", "uk").await;
    let response = app
        .get(
            &format!("/v1/users/{}/export", writers_user["id"].as_str().unwrap()),
            &writer_token,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "insufficient_scope");

    // A malformed id is refused; an erased user is gone.
    let response = app.get("/v1/users/usr_uk_nope/export", &token).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_id");
    assert_eq!(
        app.delete(&format!("/v1/users/{id}"), &token)
            .await
            .status(),
        204
    );
    let response = app.get(&path, &token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
}
