//! Tenant-wide lists (`GET /v1/connections`, `GET /v1/payments` without `user_id`): rows of
//! every region's cell, merged in creation order, paged with one cursor across cells, filtered
//! by status, bank and creation time, and never another tenant's. On SQLite and PostgreSQL.

use kontor_domain::time::Timestamp;
use kontor_test_support::{Backend, error_code};
use serde_json::{Value, json};

use crate::payments::{body as payment_body, post as post_payment};
use crate::support::{World, world_on};

/// Every row of a list, page by page (`limit` rows each); the pages seen.
async fn walk(w: &World, path: &str, limit: u32) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = w.get_json(&url).await;
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit as usize);
        rows.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (rows, pages),
        }
        assert!(pages < 100, "the list never ends");
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Rows in (created_at, id) order, as the lists promise; compared as instants (RFC 3339 drops
/// trailing zeros of the fraction, so the strings do not sort in time order).
pub fn assert_ordered(rows: &[Value]) {
    let keys: Vec<(Timestamp, String)> = rows
        .iter()
        .map(|r| {
            (
                Timestamp::parse_rfc3339(r["created_at"].as_str().unwrap()).unwrap(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

async fn connections_across_cells(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    // Users in both regions, their connections created alternately, so that every page of two
    // mixes the cells.
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let mut created = Vec::new();
    for round in 0..3 {
        for (user, bank) in [(&alice, "sonnenbank"), (&bob, "thames-bank")] {
            let bank = if round == 2 { "banque-lumiere" } else { bank };
            created.push(w.create_connection(user, Some(bank)).await);
        }
    }
    let revoked = created[3]["id"].as_str().unwrap().to_owned();
    let response = w
        .app
        .delete(&format!("/v1/connections/{revoked}"), &w.token)
        .await;
    assert_eq!(response.status(), 200);
    // Another tenant's connection, in the same cells.
    let other = w.app.tenant("Other").await;
    let other_token = w.app.token(&other).await;
    let stranger = w.app.create_user(&other_token, "stranger", "uk").await;
    let theirs = w
        .app
        .post_json(
            "/v1/connections",
            &other_token,
            &json!({"user_id": stranger["id"], "redirect_uri": crate::support::REDIRECT}),
        )
        .await;
    assert_eq!(theirs.status(), 201);

    let (all, pages) = walk(&w, "/v1/connections", 2).await;
    let mut expected: Vec<String> = created
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    let mut seen = ids(&all);
    assert_ordered(&all);
    seen.sort();
    assert_eq!(
        seen, expected,
        "every connection of the tenant once, no other's"
    );
    assert_eq!(pages, 3);
    let regions: std::collections::BTreeSet<_> =
        seen.iter().map(|id| id[4..6].to_owned()).collect();
    assert_eq!(regions.len(), 2, "rows of both cells: {seen:?}");

    // Filters, alone and together, through the same paging.
    let revoked_only = walk(&w, "/v1/connections?status=revoked", 1).await.0;
    assert_eq!(ids(&revoked_only), std::slice::from_ref(&revoked));
    let pending = walk(&w, "/v1/connections?status=pending", 2).await.0;
    assert_eq!(pending.len(), 5);
    let lumiere = walk(&w, "/v1/connections?bank_id=banque-lumiere", 1)
        .await
        .0;
    assert_eq!(lumiere.len(), 2);
    assert!(lumiere.iter().all(|c| c["bank_id"] == "banque-lumiere"));
    let bobs = walk(
        &w,
        &format!("/v1/connections?user_id={bob}&status=pending"),
        1,
    )
    .await
    .0;
    assert_eq!(bobs.len(), 2);
    assert!(bobs.iter().all(|c| c["user_id"] == bob.as_str()));
    let third = all[2]["created_at"].as_str().unwrap();
    let since = walk(
        &w,
        &format!("/v1/connections?created_after={}", urlencode(third)),
        2,
    )
    .await
    .0;
    assert_eq!(ids(&since), ids(&all[2..]));
    let before = walk(
        &w,
        &format!("/v1/connections?created_before={}", urlencode(third)),
        5,
    )
    .await
    .0;
    assert_eq!(ids(&before), ids(&all[..2]));

    // The other tenant sees its one connection only.
    let response = w.app.get("/v1/connections", &other_token).await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["user_id"], stranger["id"]);

    // Bad filters: 400 with their codes.
    for (query, code) in [
        ("status=exploded", "invalid_status"),
        ("status=completed", "invalid_status"),
        ("bank_id=no-such-bank", "unknown_bank"),
        ("bank_id=NOT%20AN%20ID", "unknown_bank"),
        ("created_after=yesterday", "invalid_time_range"),
        (
            "created_after=2026-01-02T00:00:00Z&created_before=2026-01-01T00:00:00Z",
            "invalid_time_range",
        ),
        ("user_id=usr_nope", "invalid_id"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("limit=0", "invalid_query"),
        ("colour=blue", "invalid_query"),
    ] {
        let response = w
            .app
            .get(&format!("/v1/connections?{query}"), &w.token)
            .await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(error_code(response).await, code, "{query}");
    }
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

#[tokio::test]
async fn connections_of_the_whole_tenant_on_sqlite() {
    connections_across_cells(Backend::Sqlite, "api::tenant_lists::connections_sqlite").await;
}

#[tokio::test]
async fn connections_of_the_whole_tenant_on_postgres() {
    connections_across_cells(Backend::Postgres, "api::tenant_lists::connections_postgres").await;
}

async fn payments_across_cells(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let mut created = Vec::new();
    for n in 0..2 {
        for (user, bank) in [(&alice, "sonnenbank"), (&bob, "thames-bank")] {
            let key = format!("{user}-{n}");
            let response = post_payment(&w, Some(&key), &payment_body(user, bank, "1.00")).await;
            assert_eq!(response.status(), 201);
            created.push(response.json::<Value>().await.unwrap());
        }
    }
    let other = w.app.tenant("Other").await;
    let other_token = w.app.token(&other).await;

    let (all, pages) = walk(&w, "/v1/payments", 1).await;
    assert_eq!(pages, 4);
    assert_ordered(&all);
    let mut seen = ids(&all);
    seen.sort();
    let mut expected = ids(&created);
    expected.sort();
    assert_eq!(seen, expected);

    let thames = walk(&w, "/v1/payments?bank_id=thames-bank&status=pending", 1)
        .await
        .0;
    assert_eq!(thames.len(), 2);
    assert!(thames.iter().all(|p| p["bank_id"] == "thames-bank"));
    assert!(
        walk(&w, "/v1/payments?status=completed", 5)
            .await
            .0
            .is_empty()
    );
    let last = all[3]["created_at"].as_str().unwrap();
    let latest = walk(
        &w,
        &format!("/v1/payments?created_after={}", urlencode(last)),
        5,
    )
    .await
    .0;
    assert_eq!(ids(&latest), ids(&all[3..]));

    let response = w.app.get("/v1/payments", &other_token).await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
    let response = w.app.get("/v1/payments?status=revoked", &w.token).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_status");
}

#[tokio::test]
async fn payments_of_the_whole_tenant_on_sqlite() {
    payments_across_cells(Backend::Sqlite, "api::tenant_lists::payments_sqlite").await;
}

#[tokio::test]
async fn payments_of_the_whole_tenant_on_postgres() {
    payments_across_cells(Backend::Postgres, "api::tenant_lists::payments_postgres").await;
}
