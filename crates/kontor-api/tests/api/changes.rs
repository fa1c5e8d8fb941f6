//! The changes feed (`GET /v1/connections/{id}/transactions/changes`) on SQLite and PostgreSQL,
//! against the sandbox bank with its clock moved on: the first call lists everything as added,
//! page by page; after days pass (pending entries book, new ones arrive) the feed names exactly
//! the transactions that were added, modified and removed, a booked pending entry as `modified`
//! under its hub id; replaying the feed, in small pages or from the start, reproduces the list
//! endpoint exactly. Cursors that were altered, made up, or issued for another connection or
//! tenant are refused; one whose changes retention deleted, or that predates a sync which logged
//! nothing (the previous release's, during a rollout), is `410 cursor_expired`.

use std::collections::{BTreeMap, BTreeSet};

use kontor_domain::time::Timestamp;
use kontor_test_support::{Backend, error_code};
use kontor_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};

use crate::support::{World, friday_evening, region_of, world_on, world_on_from};

type Copy = BTreeMap<String, Value>;

fn changes_path(connection: &str, cursor: Option<&str>, limit: usize) -> String {
    let mut path = format!("/v1/connections/{connection}/transactions/changes?limit={limit}");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    path
}

async fn page(w: &World, connection: &str, cursor: Option<&str>, limit: usize) -> Value {
    w.get_json(&changes_path(connection, cursor, limit)).await
}

fn id_of(t: &Value) -> String {
    t["id"].as_str().unwrap().to_owned()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array().unwrap().iter().map(id_of).collect()
}

/// Applies one page to a tenant's copy, as a tenant would.
fn apply(copy: &mut Copy, page: &Value) {
    for t in page["added"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page["modified"].as_array().unwrap())
    {
        copy.insert(id_of(t), t.clone());
    }
    for gone in page["removed"].as_array().unwrap() {
        copy.remove(&id_of(gone));
    }
}

/// Follows the feed from `cursor` until `has_more` is false; returns the cursor to go on from
/// and how many pages it took.
async fn follow(
    w: &World,
    connection: &str,
    mut cursor: Option<String>,
    limit: usize,
    copy: &mut Copy,
) -> (String, usize) {
    let mut pages = 0;
    loop {
        let page = page(w, connection, cursor.as_deref(), limit).await;
        pages += 1;
        let changes = ["added", "modified", "removed"]
            .iter()
            .map(|k| page[k].as_array().unwrap().len())
            .sum::<usize>();
        assert!(changes <= limit, "{page}");
        apply(copy, &page);
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            return (cursor.unwrap(), pages);
        }
        assert!(pages < 1000, "the feed never ends");
    }
}

/// What the list endpoint shows for every account of a user.
async fn listed(w: &World, user_id: &str) -> Copy {
    let mut out = Copy::new();
    for account in w.accounts(user_id).await {
        for t in w
            .all_transactions(account["id"].as_str().unwrap(), "")
            .await
        {
            out.insert(id_of(&t), t);
        }
    }
    out
}

/// `POST …/refresh`, once the first sync's lease is let go.
async fn refreshed(w: &World, connection: &str) {
    for _ in 0..50 {
        let response = w.refresh(connection).await;
        match response.status().as_u16() {
            200 => return,
            409 => {
                let code = error_code(response).await;
                assert_eq!(code, "sync_in_progress");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => panic!("refresh: {other} {}", response.text().await.unwrap()),
        }
    }
    panic!("the refresh never got the lease");
}

async fn refused(w: &World, token: &str, path: &str) -> (u16, String) {
    let response = w.app.get(path, token).await;
    let status = response.status().as_u16();
    (status, error_code(response).await)
}

async fn feed_story(backend: Backend, test: &str) {
    let Some(w) = world_on_from(backend, test, Some(friday_evening())).await else {
        return;
    };
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (user_id, connection, _) = w.link(user, bank).await;
        w.synced(&connection).await;
        // At the Berlin Group bank (seven entries pending), one pending entry the hub will not
        // recognise in the next fetch, as if the bank had dropped it and reported another:
        // another key and amount than the bank's. (The UK bank has one pending entry, which
        // books in these four days.)
        let mut dropped = BTreeSet::new();
        if bank == "sonnenbank" {
            let pending = listed(&w, &user_id)
                .await
                .into_values()
                .find(|t| t["status"] == "pending")
                .unwrap_or_else(|| panic!("{bank}: no pending entry"));
            let pool = w.app.stores.raw_cell_pool(region_of(user));
            sqlx::query(
                "UPDATE transactions SET dedup_key = 'dropped', amount_minor = amount_minor - 1 \
                 WHERE id = $1",
            )
            .bind(pending["id"].as_str().unwrap())
            .execute(&pool)
            .await
            .unwrap();
            dropped.insert(id_of(&pending));
        }
        let before = listed(&w, &user_id).await;
        assert!(before.len() > 10, "{bank}: too little history to page");

        // The first call, without a cursor: everything as added, in several pages.
        let mut copy = Copy::new();
        let (cursor, pages) = follow(&w, &connection, None, 7, &mut copy).await;
        assert!(pages > 2, "{bank}: {pages} pages");
        assert_eq!(copy, before, "{bank}: the first pass is the list endpoint");

        // Nothing changed: nothing to do, and the cursor stays usable.
        let quiet = page(&w, &connection, Some(&cursor), 50).await;
        for kind in ["added", "modified", "removed"] {
            assert!(quiet[kind].as_array().unwrap().is_empty(), "{quiet}");
        }
        assert_eq!(quiet["has_more"], false);

        // Four days at the bank: pending entries book, new ones arrive.
        w.sandbox.advance_clock(time::Duration::days(4)).unwrap();
        refreshed(&w, &connection).await;
        let after = listed(&w, &user_id).await;

        let want_added: BTreeSet<String> = after
            .keys()
            .filter(|id| !before.contains_key(*id))
            .cloned()
            .collect();
        let want_removed: BTreeSet<String> = before
            .keys()
            .filter(|id| !after.contains_key(*id))
            .cloned()
            .collect();
        let want_modified: BTreeSet<String> = after
            .iter()
            .filter(|(id, t)| before.get(*id).is_some_and(|b| b != *t))
            .map(|(id, _)| id.clone())
            .collect();
        let booked: BTreeSet<String> = want_modified
            .iter()
            .filter(|id| before[*id]["status"] == "pending" && after[*id]["status"] == "booked")
            .cloned()
            .collect();
        assert!(!want_added.is_empty(), "{bank}: nothing new in four days");
        assert_eq!(want_removed, dropped, "{bank}: the dropped pending entry");
        assert!(!booked.is_empty(), "{bank}: nothing booked in four days");

        // One call names exactly what changed, each transaction as the list shows it now.
        let changes = page(&w, &connection, Some(&cursor), 200).await;
        assert_eq!(changes["has_more"], false, "{bank}");
        assert_eq!(ids(&changes["added"]), want_added, "{bank}: added");
        assert_eq!(ids(&changes["modified"]), want_modified, "{bank}: modified");
        assert_eq!(ids(&changes["removed"]), want_removed, "{bank}: removed");
        for t in changes["added"]
            .as_array()
            .unwrap()
            .iter()
            .chain(changes["modified"].as_array().unwrap())
        {
            assert_eq!(t, &after[&id_of(t)], "{bank}");
        }
        for gone in changes["removed"].as_array().unwrap() {
            assert_eq!(gone["account_id"], before[&id_of(gone)]["account_id"]);
        }
        let mut applied = copy.clone();
        apply(&mut applied, &changes);
        assert_eq!(applied, after, "{bank}: one call keeps an exact copy");

        // The same cursor again, in pages of two: the same end state.
        let (_, pages) = follow(&w, &connection, Some(cursor.clone()), 2, &mut copy).await;
        assert!(pages > 1, "{bank}: paging the log");
        assert_eq!(
            copy, after,
            "{bank}: replaying the feed is the list endpoint"
        );
        // And from scratch.
        let mut fresh = Copy::new();
        follow(&w, &connection, None, 200, &mut fresh).await;
        assert_eq!(fresh, after, "{bank}: a fresh first pass");

        // The event that told the tenant points at the changes.
        let updated = w
            .events(&format!("&type=transactions.updated&user_id={user_id}"))
            .await;
        let last = updated.last().unwrap();
        assert_eq!(last["data"]["connection_id"], connection.as_str());
        let hinted = last["data"]["changes_cursor"].as_str().unwrap();
        let from_hint = page(&w, &connection, Some(hinted), 200).await;
        assert_eq!(
            ids(&from_hint["added"]),
            want_added,
            "{bank}: the event's cursor"
        );
        assert_eq!(ids(&from_hint["modified"]), want_modified);
        assert_eq!(ids(&from_hint["removed"]), want_removed);
    }
}

#[tokio::test]
async fn the_feed_keeps_an_exact_copy_on_sqlite() {
    feed_story(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn the_feed_keeps_an_exact_copy_on_postgres() {
    feed_story(
        Backend::Postgres,
        "api::changes::the_feed_keeps_an_exact_copy_on_postgres",
    )
    .await;
}

async fn cursor_story(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    let (user_id, connection, _) = w.link("alice", "sonnenbank").await;
    w.synced(&connection).await;
    // Another connection of the same tenant, in the same cell (pending: linking alice at the
    // same bank again would supersede her first consent).
    let other = w.create_connection(&user_id, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut copy = Copy::new();
    let (cursor, _) = follow(&w, &connection, None, 200, &mut copy).await;
    let (other_cursor, _) = follow(&w, &other, None, 200, &mut Copy::new()).await;

    // Made up, altered, or another connection's: 400 invalid_cursor.
    let (payload, tag) = cursor
        .strip_prefix("ch1.")
        .unwrap()
        .split_once('.')
        .unwrap();
    let mut flipped = payload.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'e' { b'f' } else { b'e' };
    let altered = format!("ch1.{}.{tag}", String::from_utf8(flipped).unwrap());
    // A cursor of the list endpoints is no cursor of the feed.
    let account = w.accounts(&user_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listing = w
        .get_json(&format!("/v1/accounts/{account}/transactions?limit=1"))
        .await;
    let legacy = listing["next_cursor"].as_str().unwrap().to_owned();
    for bad in [
        "nonsense",
        "ch1.e30.AAAA",
        altered.as_str(),
        &other_cursor,
        &legacy,
    ] {
        assert_eq!(
            refused(&w, &w.token, &changes_path(&connection, Some(bad), 50)).await,
            (400, "invalid_cursor".to_owned()),
            "{bad}"
        );
    }
    for (query, code) in [
        ("?limit=0", "invalid_query"),
        ("?limit=201", "invalid_query"),
        ("?since=1", "invalid_query"),
    ] {
        let path = format!("/v1/connections/{connection}/transactions/changes{query}");
        assert_eq!(refused(&w, &w.token, &path).await, (400, code.to_owned()));
    }
    assert_eq!(
        refused(
            &w,
            &w.token,
            "/v1/connections/acc_de_x/transactions/changes"
        )
        .await,
        (400, "invalid_id".to_owned())
    );

    // Another tenant: the connection does not exist for it, and its own cursors do not fit.
    let stranger = w.app.tenant("Stranger Finance").await;
    let token = w.app.token(&stranger).await;
    assert_eq!(
        refused(&w, &token, &changes_path(&connection, None, 50)).await,
        (404, "not_found".to_owned())
    );
    let user = w
        .app
        .create_user(&token, "stranger-user", region_of("alice"))
        .await;
    let created: Value = w
        .app
        .post_json(
            "/v1/connections",
            &token,
            &json!({ "user_id": user["id"], "redirect_uri": crate::support::REDIRECT }),
        )
        .await
        .json()
        .await
        .unwrap();
    let theirs = created["id"].as_str().unwrap();
    let response = w.app.get(&changes_path(theirs, None, 50), &token).await;
    assert_eq!(
        response.status(),
        200,
        "a pending connection has an empty feed"
    );
    let empty: Value = response.json().await.unwrap();
    assert_eq!(empty["added"], json!([]));
    let their_cursor = empty["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        refused(
            &w,
            &w.token,
            &changes_path(&connection, Some(&their_cursor), 50)
        )
        .await,
        (400, "invalid_cursor".to_owned()),
        "another tenant's cursor"
    );
    assert_eq!(
        refused(&w, &token, &changes_path(theirs, Some(&cursor), 50)).await,
        (400, "invalid_cursor".to_owned()),
        "a cursor shown to another tenant"
    );

    // A sync the previous release ran during a rollout logs nothing; it moved `last_synced_at`
    // only. The next sync leaves a gap for it: cursors from before are expired, later ones fine.
    w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
    let pool = w.app.stores.raw_cell_pool(region_of("alice"));
    sqlx::query("UPDATE connections SET last_synced_at = last_synced_at + 1 WHERE id = $1")
        .bind(connection.as_str())
        .execute(&pool)
        .await
        .unwrap();
    refreshed(&w, &connection).await;
    assert_eq!(
        refused(&w, &w.token, &changes_path(&connection, Some(&cursor), 50)).await,
        (410, "cursor_expired".to_owned())
    );
    let mut copy = Copy::new();
    let (cursor, _) = follow(&w, &connection, None, 200, &mut copy).await;
    assert_eq!(copy, listed(&w, &user_id).await, "starting again");
    w.sandbox.advance_clock(time::Duration::days(2)).unwrap();
    refreshed(&w, &connection).await;
    let (cursor_after, _) = follow(&w, &connection, Some(cursor.clone()), 200, &mut copy).await;
    assert_eq!(copy, listed(&w, &user_id).await, "going on after the gap");

    // Retention deletes the log with the events: a cursor from before is expired, one at the
    // head is fine, and so is starting again.
    let worker = Worker::new(w.app.hub.clone(), WorkerSettings::default());
    let day = 86_400;
    let kept = worker
        .lifecycle(Timestamp::now().plus_seconds(89 * day))
        .await;
    assert_eq!(kept.changes_purged, 0);
    let purged = worker
        .lifecycle(Timestamp::now().plus_seconds(91 * day))
        .await;
    assert!(purged.changes_purged > 0);
    assert_eq!(
        refused(&w, &w.token, &changes_path(&connection, Some(&cursor), 50)).await,
        (410, "cursor_expired".to_owned())
    );
    let at_head = page(&w, &connection, Some(&cursor_after), 50).await;
    assert_eq!(at_head["has_more"], false);
    let mut again = Copy::new();
    follow(&w, &connection, None, 200, &mut again).await;
    assert_eq!(again, copy);

    // Erasure takes the log with the connection.
    let response = w
        .app
        .delete(&format!("/v1/users/{user_id}"), &w.token)
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        refused(&w, &w.token, &changes_path(&connection, None, 50)).await,
        (404, "not_found".to_owned())
    );
    let left: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transaction_changes WHERE connection_id = $1")
            .bind(connection.as_str())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, 0, "the erased user's change log is gone");
}

#[tokio::test]
async fn bad_foreign_and_expired_cursors_on_sqlite() {
    cursor_story(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn bad_foreign_and_expired_cursors_on_postgres() {
    cursor_story(
        Backend::Postgres,
        "api::changes::bad_foreign_and_expired_cursors_on_postgres",
    )
    .await;
}
