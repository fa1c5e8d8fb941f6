//! Moves between cells seen from outside, on both backends: a tenant with users, a linked
//! connection, transactions, a payment, a webhook endpoint with events and deliveries moves
//! from de-1 to de-2 and every old id still answers, lists show each record once, new writes
//! land in de-2, nothing is left in de-1 and erasure works; a user moves alone; a write made
//! during the freeze waits and succeeds; a move across regions is refused and changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kontor_domain::{CellId, CellState, UserId};
use kontor_service::{CellPolicy, HubSettings};
use kontor_store_sql::moves::{
    FailureHook, MoveCell, MoveError, MoveOptions, MovePhase, MoveRequest, Mover, Subject,
    row_counts,
};
use kontor_test_support::Backend;
use serde_json::{Value, json};

use crate::payments::{authorise, body, post, settle};
use crate::support::{World, world_of_cells};

/// de-2 takes no new users (so the tenant starts whole in de-1, as a move requires); webhook
/// receivers on this machine are allowed.
fn settings(settings: &mut HubSettings) {
    crate::webhooks::local(settings);
    settings.placement.cells.insert(
        CellId::parse("de-2").unwrap(),
        CellPolicy {
            state: CellState::Draining,
            tenants: Vec::new(),
        },
    );
}

/// The engine over the test's cells, named as configuration names them (`de-1`, `de-2`, …).
fn mover(w: &World, hook: Option<FailureHook>) -> Mover {
    let stores = &w.app.stores;
    let cells = stores
        .cell_names
        .iter()
        .enumerate()
        .map(|(i, id)| MoveCell {
            name: id.to_string(),
            cell: stores.sql_cells[i].as_ref().clone(),
            keys: stores.sql_key_stores[i].as_ref().clone(),
        })
        .collect();
    let options = MoveOptions {
        batch: 7,
        hook,
        ..MoveOptions::default()
    };
    Mover::new(stores.control.as_ref().clone(), cells, options)
}

fn request(subject: Subject, to: &str) -> MoveRequest {
    MoveRequest {
        subject,
        from: "de-1".to_owned(),
        to: to.to_owned(),
        grace: Duration::ZERO,
    }
}

async fn counts(w: &World, cell: &str, subject: &Subject) -> Vec<(&'static str, i64)> {
    let mut out: Vec<_> = row_counts(w.app.stores.cell(cell), subject)
        .await
        .unwrap()
        .into_iter()
        .collect();
    out.sort();
    out
}

fn total(counts: &[(&'static str, i64)]) -> i64 {
    counts.iter().map(|(_, n)| n).sum()
}

/// Every page of `path` (which has a query already), following `next_cursor`.
async fn walk(w: &World, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_path = path.to_owned();
        if let Some(c) = &cursor {
            page_path.push_str(&format!("&cursor={c}"));
        }
        let page = w.get_json(&page_path).await;
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return out,
        }
    }
}

fn ids(listed: &[Value]) -> Vec<String> {
    listed
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A tenant (or user) with every kind of record: Alice linked and synced with a settled
/// payment, Carol with a pending connection, a webhook endpoint and the deliveries of the
/// events.
struct Tenant {
    alice: String,
    carol: String,
    connection: String,
    payment: String,
    endpoint: String,
}

async fn populate(w: &World) -> Tenant {
    let created = w
        .app
        .post_json(
            "/v1/webhook-endpoints",
            &w.token,
            &json!({"url": "http://127.0.0.1:1029/hook", "events": ["*"]}),
        )
        .await;
    let status = created.status();
    let endpoint: Value = created.json().await.unwrap();
    assert_eq!(status, 201, "{endpoint}");
    let (alice, connection, _) = w.link("alice", "sonnenbank").await;
    assert!(alice.starts_with("usr_de_"), "{alice}");
    assert_eq!(w.synced(&connection).await["status"], "active");
    let carol = w.user("carol").await;
    w.create_connection(&carol, None).await;
    let response = post(w, Some("move-order"), &body(&alice, "sonnenbank", "5.00")).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let payment = order["id"].as_str().unwrap().to_owned();
    authorise(w, order["authorize_url"].as_str().unwrap(), "alice").await;
    assert_eq!(settle(w, &payment).await["status"], "completed");
    // The events become deliveries, each tried once (nobody listens: they stay due).
    kontor_service::Deliverer::new(w.app.hub.clone())
        .unwrap()
        .run_once()
        .await;
    Tenant {
        alice,
        carol,
        connection,
        payment,
        endpoint: endpoint["id"].as_str().unwrap().to_owned(),
    }
}

/// Every record of the tenant as the API answers it, by path.
async fn snapshot(w: &World, t: &Tenant) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut read = |path: String, value: Value| out.push((path, value));
    for path in [
        format!("/v1/users/{}", t.alice),
        format!("/v1/users/{}", t.carol),
        format!("/v1/connections/{}", t.connection),
        format!("/v1/payments/{}", t.payment),
    ] {
        let value = w.get_json(&path).await;
        read(path, value);
    }
    let accounts = w.accounts(&t.alice).await;
    assert!(!accounts.is_empty());
    for account in &accounts {
        let id = account["id"].as_str().unwrap();
        let path = format!("/v1/accounts/{id}");
        read(path.clone(), w.get_json(&path).await);
        let transactions = w.all_transactions(id, "").await;
        assert!(!transactions.is_empty());
        read(format!("{path}/transactions"), Value::Array(transactions));
    }
    let events = walk(w, "/v1/events?limit=3").await;
    assert!(events.len() > 2, "{events:?}");
    for event in &events {
        let path = format!("/v1/events/{}", event["id"].as_str().unwrap());
        read(path.clone(), w.get_json(&path).await);
    }
    read("/v1/events".to_owned(), Value::Array(events));
    let mut deliveries = walk(
        w,
        &format!("/v1/webhook-endpoints/{}/deliveries?limit=2", t.endpoint),
    )
    .await;
    assert!(!deliveries.is_empty());
    deliveries.sort_by_key(|d| d["id"].as_str().unwrap().to_owned());
    read("deliveries".to_owned(), Value::Array(deliveries));
    let mut users = ids(&walk(w, "/v1/users?limit=1").await);
    users.sort();
    read("/v1/users".to_owned(), json!(users));
    let connections = ids(&walk(w, "/v1/connections?limit=1").await);
    read("/v1/connections".to_owned(), json!(connections));
    let payments = ids(&walk(w, "/v1/payments?limit=1").await);
    read("/v1/payments".to_owned(), json!(payments));
    for list in ["connections", "payments", "events"] {
        let path = format!("/v1/{list}?limit=1&user_id={}", t.alice);
        let listed = ids(&walk(w, &path).await);
        assert!(!listed.is_empty(), "{path}");
        read(path, json!(listed));
    }
    let export = w
        .app
        .get(&format!("/v1/users/{}/export", t.alice), &w.token)
        .await;
    assert_eq!(export.status(), 200);
    // Every line but the first (which says when the export was made).
    let lines: Vec<Value> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["type"] != "export")
        .collect();
    assert!(lines.len() > 10, "{}", lines.len());
    read("export".to_owned(), Value::Array(lines));
    out
}

/// After an erasure of a moved user: none of their data is left in either cell; the erasure's
/// own record (and its bank revocation, pending) is in de-2, where the erasure ran.
fn erased_in_de_2(de_2: Vec<(&'static str, i64)>, de_1: Vec<(&'static str, i64)>) {
    for (table, n) in &de_2 {
        let expected = i64::from(matches!(*table, "erasures" | "erasure_revocations"));
        assert_eq!(*n, expected, "{table} in de-2: {de_2:?}");
    }
    assert_eq!(total(&de_1), 0, "{de_1:?}");
}

/// The same records answered, path by path (naming only the path that differs).
fn same(before: &[(String, Value)], after: &[(String, Value)]) {
    assert_eq!(before.len(), after.len());
    for ((path, was), (again, now)) in before.iter().zip(after) {
        assert_eq!(path, again);
        assert!(was == now, "{path} answers differently after the move");
    }
}

fn each_once(snapshot: &[(String, Value)]) {
    for (path, value) in snapshot {
        if let Some(items) = value.as_array() {
            let distinct: BTreeSet<String> = items.iter().map(ToString::to_string).collect();
            assert_eq!(distinct.len(), items.len(), "{path} lists a record twice");
        }
    }
}

async fn a_tenant_moves(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, settings).await else {
        return;
    };
    let t = populate(&w).await;
    let before = snapshot(&w, &t).await;
    each_once(&before);
    let subject = Subject::Tenant(w.tenant_id.clone());
    let in_source = counts(&w, "de", &subject).await;
    assert!(total(&in_source) > 20, "{in_source:?}");
    assert_eq!(total(&counts(&w, "de-2", &subject).await), 0);

    let report = mover(&w, None)
        .start(&request(subject.clone(), "de-2"))
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    assert!(!report.tables.is_empty());
    for check in &report.tables {
        assert!(check.matches(), "{check:?}");
    }
    w.app.hub.refresh_routes().await.unwrap();
    assert_eq!(w.app.hub.route_count(), 1);

    // Every old id answers as before, lists show each record once; nothing is left in de-1.
    let after = snapshot(&w, &t).await;
    same(&before, &after);
    each_once(&after);
    assert_eq!(total(&counts(&w, "de", &subject).await), 0);
    assert_eq!(counts(&w, "de-2", &subject).await, in_source);

    // A new write for Alice lands in de-2, though its id names her home.
    let created = w.create_connection(&t.alice, None).await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("con_de_"), "{id}");
    assert_eq!(w.get_json(&format!("/v1/connections/{id}")).await["id"], id);
    let user = Subject::User {
        tenant: w.tenant_id.clone(),
        user: UserId::parse(&t.alice).unwrap(),
    };
    let alice_in = |cell| counts(&w, cell, &user);
    let connections = |c: Vec<(&str, i64)>| c.iter().find(|(t, _)| *t == "connections").unwrap().1;
    assert_eq!(connections(alice_in("de-2").await), 2);
    assert_eq!(connections(alice_in("de").await), 0);

    // Alice's erasure works in de-2: her rows and her key go.
    let erased = w
        .app
        .delete(&format!("/v1/users/{}", t.alice), &w.token)
        .await;
    assert_eq!(erased.status(), 204);
    for path in [
        format!("/v1/users/{}", t.alice),
        format!("/v1/connections/{}", t.connection),
        format!("/v1/payments/{}", t.payment),
    ] {
        assert_eq!(w.app.get(&path, &w.token).await.status(), 404, "{path}");
    }
    erased_in_de_2(alice_in("de-2").await, alice_in("de").await);
    let alice = UserId::parse(&t.alice).unwrap();
    for cell in ["de", "de-2"] {
        let keys = w.app.stores.key_store(cell);
        assert!(
            kontor_store::UserKeyStore::user_key(keys.as_ref(), &alice)
                .await
                .unwrap()
                .is_none(),
            "no key of Alice in {cell}"
        );
    }
    // Carol is still served.
    assert_eq!(
        w.get_json(&format!("/v1/users/{}", t.carol)).await["id"],
        t.carol
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moves_and_every_old_id_answers() {
    a_tenant_moves(Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moves_and_every_old_id_answers_on_postgres() {
    a_tenant_moves(
        Backend::Postgres,
        "api::moves::a_tenant_moves_and_every_old_id_answers_on_postgres",
    )
    .await;
}

async fn a_user_moves(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, settings).await else {
        return;
    };
    let t = populate(&w).await;
    let before = snapshot(&w, &t).await;
    let alice = UserId::parse(&t.alice).unwrap();
    let subject = Subject::User {
        tenant: w.tenant_id.clone(),
        user: alice.clone(),
    };
    let carol = Subject::User {
        tenant: w.tenant_id.clone(),
        user: UserId::parse(&t.carol).unwrap(),
    };
    let alice_before = counts(&w, "de", &subject).await;
    let carol_before = counts(&w, "de", &carol).await;
    let report = mover(&w, None)
        .start(&request(subject.clone(), "de-2"))
        .await
        .unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    w.app.hub.refresh_routes().await.unwrap();

    let after = snapshot(&w, &t).await;
    same(&before, &after);
    each_once(&after);
    assert_eq!(total(&counts(&w, "de", &subject).await), 0);
    assert_eq!(counts(&w, "de-2", &subject).await, alice_before);
    assert_eq!(counts(&w, "de", &carol).await, carol_before);
    assert_eq!(total(&counts(&w, "de-2", &carol).await), 0);

    // New writes: Alice's land in de-2, Carol's stay in de-1.
    let created = w.create_connection(&t.alice, None).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(w.get_json(&format!("/v1/connections/{id}")).await["id"], id);
    w.create_connection(&t.carol, None).await;
    let connections = |c: Vec<(&str, i64)>| c.iter().find(|(t, _)| *t == "connections").unwrap().1;
    assert_eq!(connections(counts(&w, "de-2", &subject).await), 2);
    assert_eq!(connections(counts(&w, "de", &carol).await), 2);
    let erased = w
        .app
        .delete(&format!("/v1/users/{}", t.alice), &w.token)
        .await;
    assert_eq!(erased.status(), 204);
    erased_in_de_2(
        counts(&w, "de-2", &subject).await,
        counts(&w, "de", &subject).await,
    );
    assert_eq!(
        w.app
            .get(&format!("/v1/users/{}", t.alice), &w.token)
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_moves_alone() {
    a_user_moves(Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_moves_alone_on_postgres() {
    a_user_moves(
        Backend::Postgres,
        "api::moves::a_user_moves_alone_on_postgres",
    )
    .await;
}

async fn a_write_waits_out_the_freeze(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, settings).await else {
        return;
    };
    let alice = w.user("alice").await;
    w.create_connection(&alice, None).await;
    let subject = Subject::Tenant(w.tenant_id.clone());
    // The move stops right after the source's fence: the tenant is frozen.
    let stop = Arc::new(AtomicBool::new(true));
    let once = stop.clone();
    let hook: FailureHook =
        Arc::new(move |step| step == "fenced" && once.swap(false, Ordering::SeqCst));
    let engine = mover(&w, Some(hook));
    let refused = engine
        .start(&request(subject.clone(), "de-2"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "move_injected_failure");
    let moves = w.app.stores.control.cell_moves().await.unwrap();
    let [frozen] = moves.as_slice() else {
        panic!("{moves:?}")
    };
    assert_eq!(frozen.phase, MovePhase::Frozen);

    // Reads go on during the freeze.
    assert_eq!(w.get_json(&format!("/v1/users/{alice}")).await["id"], alice);
    // A write waits: it is answered once the move is through.
    let writer = {
        let http = w.app.http.clone();
        let url = w.app.url("/v1/connections");
        let token = w.token.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"user_id": alice, "redirect_uri": crate::support::REDIRECT}))
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!writer.is_finished(), "the write waits during the freeze");
    let report = engine.resume(&frozen.id).await.unwrap();
    assert_eq!(report.phase, MovePhase::Done);
    let response = writer.await.unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let user = Subject::User {
        tenant: w.tenant_id.clone(),
        user: UserId::parse(&alice).unwrap(),
    };
    let connections = |c: Vec<(&str, i64)>| c.iter().find(|(t, _)| *t == "connections").unwrap().1;
    assert_eq!(connections(counts(&w, "de-2", &user).await), 2);
    assert_eq!(total(&counts(&w, "de", &subject).await), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_the_freeze_waits_and_succeeds() {
    a_write_waits_out_the_freeze(Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_during_the_freeze_waits_and_succeeds_on_postgres() {
    a_write_waits_out_the_freeze(
        Backend::Postgres,
        "api::moves::a_write_during_the_freeze_waits_and_succeeds_on_postgres",
    )
    .await;
}

/// Past the bound, a write frozen by a move is answered 503 `subject_moving` with
/// `Retry-After`, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_frozen_past_the_bound_is_answered_subject_moving() {
    fn short(s: &mut HubSettings) {
        settings(s);
        s.routes.write_wait = Duration::from_millis(300);
    }
    let Some(w) = world_of_cells(Backend::Sqlite, "sqlite", short).await else {
        return;
    };
    let alice = w.user("alice").await;
    let subject = Subject::Tenant(w.tenant_id.clone());
    let hook: FailureHook = Arc::new(|step| step == "fenced");
    let refused = mover(&w, Some(hook))
        .start(&request(subject.clone(), "de-2"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "move_injected_failure");
    let before = counts(&w, "de", &subject).await;
    let response = w
        .app
        .post_json(
            "/v1/connections",
            &w.token,
            &json!({"user_id": alice, "redirect_uri": crate::support::REDIRECT}),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "subject_moving", "{body}");
    assert_eq!(counts(&w, "de", &subject).await, before);
    assert_eq!(w.get_json(&format!("/v1/users/{alice}")).await["id"], alice);
}

async fn across_regions_refused(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, settings).await else {
        return;
    };
    let alice = w.user("alice").await;
    w.create_connection(&alice, None).await;
    let subject = Subject::Tenant(w.tenant_id.clone());
    let before = counts(&w, "de", &subject).await;
    let err = mover(&w, None)
        .start(&request(subject.clone(), "uk-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, MoveError::AcrossRegions { .. }), "{err:?}");
    assert_eq!(err.code(), "move_across_regions");
    assert!(w.app.stores.control.cell_moves().await.unwrap().is_empty());
    assert!(w.app.stores.control.cell_routes().await.unwrap().is_empty());
    assert_eq!(counts(&w, "de", &subject).await, before);
    assert_eq!(total(&counts(&w, "uk", &subject).await), 0);
}

#[tokio::test]
async fn a_move_across_regions_is_refused() {
    across_regions_refused(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn a_move_across_regions_is_refused_on_postgres() {
    across_regions_refused(
        Backend::Postgres,
        "api::moves::a_move_across_regions_is_refused_on_postgres",
    )
    .await;
}
