//! Several cells per region through the API, on both backends: placement by least load, a user
//! in a region's second cell served on every path (link, reads, a payment, erasure), tenant-wide
//! lists exact across four cells, tenants pinned to dedicated cells, draining and closed cells,
//! and ids with and without a cell number.

use std::collections::BTreeSet;

use kontor_domain::{CellId, CellState, TenantId};
use kontor_service::{CellPolicy, HubSettings};
use kontor_test_support::{Backend, error_code};
use serde_json::{Value, json};

use crate::payments::{authorise, body, post, settle};
use crate::support::{World, world_of_cells};

/// A tenant configured (before it exists) as the only one of cell `de-2`.
const PINNED: &str = "ten_0000000000000000000000000p";

fn cell(name: &str) -> CellId {
    CellId::parse(name).unwrap()
}

fn pinned() -> TenantId {
    TenantId::parse(PINNED).unwrap()
}

fn pin_de_2(settings: &mut HubSettings) {
    settings.placement.cells.insert(
        cell("de-2"),
        CellPolicy {
            state: CellState::Open,
            tenants: vec![pinned()],
        },
    );
}

/// `de-2` dedicated to [`PINNED`] and draining; both cells of `uk` take no new users.
fn drain(settings: &mut HubSettings) {
    let policy = |state, tenants: Vec<TenantId>| CellPolicy { state, tenants };
    let cells = &mut settings.placement.cells;
    cells.insert(cell("de-2"), policy(CellState::Draining, vec![pinned()]));
    cells.insert(cell("uk-1"), policy(CellState::Closed, Vec::new()));
    cells.insert(cell("uk-2"), policy(CellState::Draining, Vec::new()));
}

async fn rows(w: &World, cell: &str, table: &str, id: &str) -> i64 {
    let sql = match table {
        "users" => "SELECT COUNT(*) FROM users WHERE id = $1",
        "connections" => "SELECT COUNT(*) FROM connections WHERE user_id = $1",
        "payments" => "SELECT COUNT(*) FROM payments WHERE user_id = $1",
        other => panic!("no query for {other}"),
    };
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&w.app.stores.raw_cell_pool(cell))
        .await
        .unwrap()
}

async fn new_user(w: &World, token: &str, region: &str) -> String {
    let external = format!("u-{}", rand::random::<u64>());
    let user = w.app.create_user(token, &external, region).await;
    user["id"].as_str().expect("created").to_owned()
}

async fn users_spread_by_least_load(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, |_| {}).await else {
        return;
    };
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(new_user(&w, &w.token, "de").await);
    }
    let cells: Vec<&str> = ids.iter().map(|id| id.split('_').nth(1).unwrap()).collect();
    // Both empty: cell 1; then whichever holds fewer, the lower number on a tie.
    assert_eq!(cells, ["de", "de-2", "de", "de-2"]);
    for id in &ids {
        let (home, other) = if id.starts_with("usr_de-2_") {
            ("de-2", "de")
        } else {
            ("de", "de-2")
        };
        assert_eq!(rows(&w, home, "users", id).await, 1, "{id} in {home}");
        assert_eq!(rows(&w, other, "users", id).await, 0, "{id} not in {other}");
    }
    // A count taken afresh agrees with the one placement kept.
    w.app.hub.refresh_cell_loads().await.unwrap();
    let fifth = new_user(&w, &w.token, "de").await;
    assert!(fifth.starts_with("usr_de_"), "{fifth}");
}

#[tokio::test]
async fn users_spread_over_a_regions_cells_by_least_load() {
    users_spread_by_least_load(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn users_spread_over_a_regions_cells_by_least_load_on_postgres() {
    users_spread_by_least_load(
        Backend::Postgres,
        "api::cells::users_spread_over_a_regions_cells_by_least_load_on_postgres",
    )
    .await;
}

async fn second_cell_end_to_end(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, |_| {}).await else {
        return;
    };
    // The region's first user fills cell 1; Alice goes to the emptier cell 2.
    let first = w.user("carol").await;
    assert!(first.starts_with("usr_de_"), "{first}");
    let (user_id, connection_id, back) = w.link("alice", "sonnenbank").await;
    assert!(user_id.starts_with("usr_de-2_"), "{user_id}");
    assert!(connection_id.starts_with("con_de-2_"), "{connection_id}");
    assert!(back.as_str().contains(&connection_id), "{back}");

    let connection = w.synced(&connection_id).await;
    assert_eq!(connection["status"], "active", "{connection}");
    let accounts = w.accounts(&user_id).await;
    assert!(!accounts.is_empty());
    let mut transactions = 0;
    for account in &accounts {
        let id = account["id"].as_str().unwrap();
        assert!(id.starts_with("acc_de-2_"), "{id}");
        let read = w.get_json(&format!("/v1/accounts/{id}")).await;
        assert_eq!(read["id"], id);
        for tx in w.all_transactions(id, "").await {
            assert!(tx["id"].as_str().unwrap().starts_with("txn_de-2_"), "{tx}");
            transactions += 1;
        }
    }
    assert!(transactions > 0, "the sandbox account has history");
    let events = w.events(&format!("&user_id={user_id}")).await;
    assert!(!events.is_empty());
    for event in &events {
        let id = event["id"].as_str().unwrap();
        assert!(id.starts_with("evt_de-2_"), "{id}");
        assert_eq!(w.get_json(&format!("/v1/events/{id}")).await["id"], id);
    }

    let response = post(
        &w,
        Some("cell-2-order"),
        &body(&user_id, "sonnenbank", "5.00"),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let payment_id = created["id"].as_str().unwrap().to_owned();
    assert!(payment_id.starts_with("pay_de-2_"), "{payment_id}");
    authorise(&w, created["authorize_url"].as_str().unwrap(), "alice").await;
    let done = settle(&w, &payment_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let listed = w.get_json(&format!("/v1/payments?user_id={user_id}")).await;
    assert_eq!(listed["data"][0]["id"], payment_id.as_str());

    assert_eq!(rows(&w, "de-2", "users", &user_id).await, 1);
    assert_eq!(rows(&w, "de-2", "connections", &user_id).await, 1);
    assert_eq!(rows(&w, "de-2", "payments", &user_id).await, 1);
    assert_eq!(rows(&w, "de", "connections", &user_id).await, 0);

    let erased = w
        .app
        .delete(&format!("/v1/users/{user_id}"), &w.token)
        .await;
    assert_eq!(erased.status(), 204);
    for path in [
        format!("/v1/users/{user_id}"),
        format!("/v1/connections/{connection_id}"),
        format!("/v1/payments/{payment_id}"),
    ] {
        assert_eq!(w.app.get(&path, &w.token).await.status(), 404, "{path}");
    }
    assert_eq!(rows(&w, "de-2", "users", &user_id).await, 0);
    assert_eq!(rows(&w, "de-2", "connections", &user_id).await, 0);
    assert_eq!(rows(&w, "de-2", "payments", &user_id).await, 0);
    // Carol, in cell 1, is untouched.
    assert_eq!(rows(&w, "de", "users", &first).await, 1);
}

#[tokio::test]
async fn a_user_in_a_regions_second_cell_works_on_every_path() {
    second_cell_end_to_end(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn a_user_in_a_regions_second_cell_works_on_every_path_on_postgres() {
    second_cell_end_to_end(
        Backend::Postgres,
        "api::cells::a_user_in_a_regions_second_cell_works_on_every_path_on_postgres",
    )
    .await;
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

async fn lists_exact(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, |_| {}).await else {
        return;
    };
    let mut users = BTreeSet::new();
    let mut connections = BTreeSet::new();
    for region in ["de", "uk", "de", "uk", "de", "uk"] {
        let user = new_user(&w, &w.token, region).await;
        for _ in 0..2 {
            let created = w.create_connection(&user, None).await;
            connections.insert(created["id"].as_str().unwrap().to_owned());
        }
        users.insert(user);
    }
    let homes: BTreeSet<&str> = users.iter().map(|u| u.split('_').nth(1).unwrap()).collect();
    assert_eq!(homes, BTreeSet::from(["de", "de-2", "uk", "uk-2"]));

    for limit in [1, 5, 200] {
        let listed = walk(&w, &format!("/v1/connections?limit={limit}")).await;
        let ids: Vec<String> = listed
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), connections.len(), "limit {limit}: each once");
        assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), connections);
        // In (created_at, id) order, compared as instants: the strings sorted wrongly when a
        // fraction ended in zeros ("…04.4Z" after "…04.429632Z").
        crate::tenant_lists::assert_ordered(&listed);

        let listed = walk(&w, &format!("/v1/users?limit={limit}")).await;
        let ids: Vec<String> = listed
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), users.len(), "limit {limit}: each user once");
        assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), users);
    }
    let de = walk(&w, "/v1/users?limit=1&region=de").await;
    assert_eq!(de.len(), 3);
    assert!(de.iter().all(|u| u["region"] == "de"), "{de:?}");
}

#[tokio::test]
async fn tenant_wide_lists_are_exact_across_cells() {
    lists_exact(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn tenant_wide_lists_are_exact_across_cells_on_postgres() {
    lists_exact(
        Backend::Postgres,
        "api::cells::tenant_wide_lists_are_exact_across_cells_on_postgres",
    )
    .await;
}

async fn pinned_tenant(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, pin_de_2).await else {
        return;
    };
    let own = w.app.tenant_with_id(pinned(), "Own Cluster", None).await;
    let own_token = w.app.token(&own).await;
    for _ in 0..3 {
        let id = new_user(&w, &own_token, "de").await;
        assert!(id.starts_with("usr_de-2_"), "the pinned tenant's: {id}");
    }
    for _ in 0..3 {
        let id = new_user(&w, &w.token, "de").await;
        assert!(id.starts_with("usr_de_"), "no one else's: {id}");
    }
    // Not pinned in uk: the shared cells, by load.
    let a = new_user(&w, &own_token, "uk").await;
    let b = new_user(&w, &own_token, "uk").await;
    assert!(
        a.starts_with("usr_uk_") && b.starts_with("usr_uk-2_"),
        "{a} {b}"
    );
}

#[tokio::test]
async fn a_pinned_tenants_users_go_only_to_its_dedicated_cell() {
    pinned_tenant(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn a_pinned_tenants_users_go_only_to_its_dedicated_cell_on_postgres() {
    pinned_tenant(
        Backend::Postgres,
        "api::cells::a_pinned_tenants_users_go_only_to_its_dedicated_cell_on_postgres",
    )
    .await;
}

async fn draining(backend: Backend, test: &str) {
    let Some(w) = world_of_cells(backend, test, drain).await else {
        return;
    };
    for _ in 0..3 {
        let id = new_user(&w, &w.token, "de").await;
        assert!(id.starts_with("usr_de_"), "{id}");
    }
    let before = w.app.user_rows().await;
    let body = json!({ "external_id": "late", "region": "uk" });
    let refused = w.app.post_json("/v1/users", &w.token, &body).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, "no_open_cell");
    // A tenant whose dedicated cell drains is not put elsewhere.
    let own = w.app.tenant_with_id(pinned(), "Own Cluster", None).await;
    let own_token = w.app.token(&own).await;
    let body = json!({ "external_id": "mine", "region": "de" });
    let refused = w.app.post_json("/v1/users", &own_token, &body).await;
    assert_eq!(error_code(refused).await, "no_open_cell");
    assert_eq!(w.app.user_rows().await, before, "nothing was created");
}

#[tokio::test]
async fn draining_and_closed_cells_take_no_new_users() {
    draining(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn draining_and_closed_cells_take_no_new_users_on_postgres() {
    draining(
        Backend::Postgres,
        "api::cells::draining_and_closed_cells_take_no_new_users_on_postgres",
    )
    .await;
}

#[tokio::test]
async fn ids_name_their_cell_and_malformed_cells_are_invalid() {
    let w = world_of_cells(Backend::Sqlite, "sqlite", |_| {})
        .await
        .unwrap();
    let one = new_user(&w, &w.token, "de").await;
    let two = new_user(&w, &w.token, "de").await;
    assert!(one.starts_with("usr_de_") && two.starts_with("usr_de-2_"));
    // An id without a number (every id from before cells had numbers) is cell 1's.
    assert_eq!(
        w.get_json(&format!("/v1/users/{one}")).await["id"],
        one.as_str()
    );
    assert_eq!(
        w.get_json(&format!("/v1/users/{two}")).await["id"],
        two.as_str()
    );
    let random = two.rsplit('_').next().unwrap();
    let elsewhere = w
        .app
        .get(&format!("/v1/users/usr_de_{random}"), &w.token)
        .await;
    assert_eq!(
        elsewhere.status(),
        404,
        "the same random part names another user"
    );
    let unserved = w
        .app
        .get(&format!("/v1/users/usr_de-3_{random}"), &w.token)
        .await;
    assert_eq!(
        unserved.status(),
        404,
        "a cell this deployment does not have"
    );
    for bad in ["de-0", "de-1", "de-x", "de-99999999999", "de-", "de-02"] {
        for path in [
            format!("/v1/users/usr_{bad}_{random}"),
            format!("/v1/connections/con_{bad}_{random}"),
            format!("/v1/payments?user_id=usr_{bad}_{random}"),
        ] {
            let response = w.app.get(&path, &w.token).await;
            assert_eq!(response.status(), 400, "{path}");
            assert_eq!(error_code(response).await, "invalid_id", "{path}");
        }
    }
}

#[tokio::test]
async fn an_external_id_is_unique_across_a_regions_cells() {
    let w = world_of_cells(Backend::Sqlite, "sqlite", |_| {})
        .await
        .unwrap();
    let first = w.app.create_user(&w.token, "same-person", "de").await;
    let first = first["id"].as_str().unwrap().to_owned();
    assert!(first.starts_with("usr_de_"), "{first}");
    // Placement would put the next user in the emptier de-2; the external_id is taken in de-1.
    let body = json!({ "external_id": "same-person", "region": "de" });
    let again = w.app.post_json("/v1/users", &w.token, &body).await;
    assert_eq!(again.status(), 409);
    let envelope: Value = again.json().await.unwrap();
    assert_eq!(envelope["error"]["code"], "user_exists");
    assert!(
        envelope["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&first),
        "{envelope}"
    );
    assert_eq!(w.app.user_rows().await, 1);
    let found = w
        .get_json("/v1/users?external_id=same-person&region=de")
        .await;
    assert_eq!(found["data"][0]["id"], first.as_str());
    // Another region is another namespace, as before.
    let uk = w.app.create_user(&w.token, "same-person", "uk").await;
    assert!(uk["id"].as_str().unwrap().starts_with("usr_uk_"));
}

/// `external_id` is unique per tenant in a region, whichever of its cells holds the user: while a
/// cell of the region cannot be read, that cannot be checked, so the region takes no new users
/// (503, nothing written); other regions are unaffected.
#[tokio::test]
async fn an_unreachable_cell_stops_new_users_of_its_region_only() {
    use std::sync::Arc;

    use kontor_domain::Region;
    use kontor_store_sql::{PoolSettings, SqlCell};
    use kontor_test_support::{TestApp, TestStores};

    let mut stores = TestStores::sqlite(&["de", "uk"]).await;
    let settings = PoolSettings {
        acquire_timeout: std::time::Duration::from_millis(300),
        ..PoolSettings::default()
    };
    let dead = SqlCell::open(
        Region::parse("de").unwrap(),
        "postgres://postgres@127.0.0.1:1/nowhere",
        &settings,
    )
    .unwrap();
    stores
        .cells
        .insert_as(cell("de-2"), Arc::new(dead))
        .unwrap();
    let app = TestApp::serve(stores, crate::support::test_api_settings()).await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let body = json!({ "external_id": "u0", "region": "de" });
    let refused = app.post_json("/v1/users", &token, &body).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(error_code(refused).await, "service_unavailable");
    assert_eq!(app.user_rows().await, 0);
    let uk = app.create_user(&token, "u0", "uk").await;
    assert!(uk["id"].as_str().unwrap().starts_with("usr_uk_"));
}
