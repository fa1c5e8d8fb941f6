//! Tenant isolation: another tenant's ids answer 404 on every route, and nothing changes.

use kontor_test_support::{TestApp, error_code};
use serde_json::Value;

#[tokio::test]
async fn another_tenants_users_do_not_exist_for_you() {
    let app = TestApp::spawn().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let a_token = app.token(&a).await;
    let b_token = app.token(&b).await;
    let user = app.create_user(&a_token, "a-customer", "uk").await;
    let path = format!("/v1/users/{}", user["id"].as_str().unwrap());

    let response = app.get(&path, &b_token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");

    let response = app.delete(&path, &b_token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");

    for query in [
        "/v1/users",
        "/v1/users?external_id=a-customer",
        "/v1/users?region=uk",
    ] {
        let page: Value = app.get(query, &b_token).await.json().await.unwrap();
        assert_eq!(page["data"], serde_json::json!([]), "{query}");
    }

    // B's attempts changed nothing for A.
    let still: Value = app.get(&path, &a_token).await.json().await.unwrap();
    assert_eq!(still, user);
    assert_eq!(app.user_rows().await, 1);
}

#[tokio::test]
async fn a_cursor_from_another_tenant_shows_only_your_users() {
    let app = TestApp::spawn().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let a_token = app.token(&a).await;
    let b_token = app.token(&b).await;
    for i in 0..3 {
        app.create_user(&a_token, &format!("a{i}"), "uk").await;
    }
    app.create_user(&b_token, "b0", "uk").await;
    let page: Value = app
        .get("/v1/users?limit=1", &a_token)
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let theirs: Value = app
        .get(&format!("/v1/users?cursor={cursor}"), &b_token)
        .await
        .json()
        .await
        .unwrap();
    for user in theirs["data"].as_array().unwrap() {
        assert_eq!(user["external_id"], "b0");
    }
}

#[tokio::test]
async fn another_tenants_connections_accounts_and_events_do_not_exist_for_you() {
    let w = crate::support::world().await;
    let (user_id, id, _) = w.link("alice", "sonnenbank").await;
    w.synced(&id).await;
    let accounts: Value = w
        .app
        .get(&format!("/v1/accounts?user_id={user_id}"), &w.token)
        .await
        .json()
        .await
        .unwrap();
    let account = accounts["data"][0]["id"].as_str().unwrap().to_owned();

    let other = w.app.tenant("Other").await;
    let b = w.app.token(&other).await;
    for path in [
        format!("/v1/connections/{id}"),
        format!("/v1/accounts/{account}"),
        format!("/v1/accounts/{account}/balances"),
        format!("/v1/accounts/{account}/transactions"),
    ] {
        let response = w.app.get(&path, &b).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "not_found", "{path}");
    }
    for path in [
        format!("/v1/connections/{id}/refresh"),
        format!("/v1/connections/{id}/reconfirm"),
    ] {
        let body = serde_json::json!({"psu_ip_address": "198.51.100.7"});
        let body = if path.ends_with("refresh") {
            body
        } else {
            Value::Null
        };
        let response = w.app.post_json(&path, &b, &body).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = w.app.delete(&format!("/v1/connections/{id}"), &b).await;
    assert_eq!(response.status(), 404);
    for path in [
        format!("/v1/connections?user_id={user_id}"),
        format!("/v1/accounts?user_id={user_id}"),
        format!("/v1/events?user_id={user_id}"),
        "/v1/events".to_owned(),
    ] {
        let page: Value = w.app.get(&path, &b).await.json().await.unwrap();
        assert_eq!(page["data"], serde_json::json!([]), "{path}");
    }
    let create = w
        .app
        .post_json(
            "/v1/connections",
            &b,
            &serde_json::json!({"user_id": user_id, "redirect_uri": crate::support::REDIRECT}),
        )
        .await;
    assert_eq!(create.status(), 404);
    // Nothing changed for the owner.
    assert_eq!(w.connection(&id).await["status"], "active");
}

/// The hub remembers whose account a read found (to skip that lookup on the next page); that
/// must neither open the account to another tenant nor keep an erased user's account readable.
#[tokio::test]
async fn a_transaction_page_read_before_stays_scoped_and_goes_with_its_user() {
    let w = crate::support::world().await;
    let (user_id, id, _) = w.link("alice", "sonnenbank").await;
    w.synced(&id).await;
    let accounts: Value = w
        .app
        .get(&format!("/v1/accounts?user_id={user_id}"), &w.token)
        .await
        .json()
        .await
        .unwrap();
    let account = accounts["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/accounts/{account}/transactions?limit=5");
    for _ in 0..2 {
        let page: Value = w.app.get(&path, &w.token).await.json().await.unwrap();
        assert!(!page["data"].as_array().unwrap().is_empty(), "{page}");
    }
    // Past the last transaction: an empty page, not a 404.
    let future = format!("/v1/accounts/{account}/transactions?from=2999-01-01");
    let empty = w.app.get(&future, &w.token).await;
    assert_eq!(empty.status(), 200);
    assert_eq!(
        empty.json::<Value>().await.unwrap()["data"],
        serde_json::json!([])
    );

    let other = w.app.tenant("Other").await;
    let b = w.app.token(&other).await;
    for path in [&path, &future] {
        let response = w.app.get(path, &b).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "not_found", "{path}");
    }

    let erased = w
        .app
        .delete(&format!("/v1/users/{user_id}"), &w.token)
        .await;
    assert_eq!(erased.status(), 204);
    for path in [&path, &future] {
        let response = w.app.get(path, &w.token).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "not_found", "{path}");
    }
}
