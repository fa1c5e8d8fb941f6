//! `/v1/users`: create, read, list, erase.

use kontor_test_support::{TestApp, error_code};
use serde_json::{Value, json};

#[tokio::test]
async fn create_read_and_erase_a_user() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;

    let response = app
        .post_json(
            "/v1/users",
            &token,
            &json!({"external_id": "customer-1", "region": "uk"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = response.json().await.unwrap();
    let id = user["id"].as_str().unwrap();
    assert!(id.starts_with("usr_uk_"), "{id}");
    assert_eq!(location, format!("/v1/users/{id}"));
    assert_eq!(user["external_id"], "customer-1");
    assert_eq!(user["region"], "uk");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));

    let read: Value = app.get(&location, &token).await.json().await.unwrap();
    assert_eq!(read, user);

    assert_eq!(app.delete(&location, &token).await.status(), 204);
    let response = app.get(&location, &token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    let response = app.delete(&location, &token).await;
    assert_eq!(response.status(), 404);
    assert_eq!(app.user_rows().await, 0);
}

#[tokio::test]
async fn external_id_is_unique_per_region() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let first = app.create_user(&token, "dup", "uk").await;
    let response = app
        .post_json(
            "/v1/users",
            &token,
            &json!({"external_id": "dup", "region": "uk"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "user_exists");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap())
    );
    // Another region may hold the same reference.
    app.create_user(&token, "dup", "de").await;
    assert_eq!(app.user_rows().await, 2);
}

#[tokio::test]
async fn find_by_external_id_across_regions() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let uk = app.create_user(&token, "same", "uk").await;
    let de = app.create_user(&token, "same", "de").await;
    app.create_user(&token, "other", "uk").await;

    let all: Value = app
        .get("/v1/users?external_id=same", &token)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&uk["id"].as_str().unwrap()) && ids.contains(&de["id"].as_str().unwrap()));
    assert_eq!(all["next_cursor"], Value::Null);

    let only_uk: Value = app
        .get("/v1/users?external_id=same&region=uk", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only_uk["data"].as_array().unwrap().len(), 1);
    assert_eq!(only_uk["data"][0]["id"], uk["id"]);

    let none: Value = app
        .get("/v1/users?external_id=nobody", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["data"], json!([]));
}

#[tokio::test]
async fn pages_walk_every_region_once() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let mut expected = Vec::new();
    for i in 0..4 {
        expected.push(app.create_user(&token, &format!("uk-{i}"), "uk").await["id"].clone());
        expected.push(app.create_user(&token, &format!("de-{i}"), "de").await["id"].clone());
    }
    let other = app.tenant("Other").await;
    let other_token = app.token(&other).await;
    app.create_user(&other_token, "theirs", "uk").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users?limit=3&cursor={c}"),
            None => "/v1/users?limit=3".to_owned(),
        };
        let page: Value = app.get(&path, &token).await.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|u| u["id"].clone()));
        pages += 1;
        assert!(pages < 10, "paging does not terminate");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    for id in &expected {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} seen once"
        );
    }
    // Regions come in a fixed order (de before uk).
    let first_uk = seen
        .iter()
        .position(|id| id.as_str().unwrap().starts_with("usr_uk_"))
        .unwrap();
    assert!(
        seen[..first_uk]
            .iter()
            .all(|id| id.as_str().unwrap().starts_with("usr_de_"))
    );

    let uk_only: Value = app
        .get("/v1/users?region=uk&limit=200", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(uk_only["data"].as_array().unwrap().len(), 4);
}
