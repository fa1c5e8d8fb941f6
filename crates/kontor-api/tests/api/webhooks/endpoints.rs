//! Managing endpoints: the secret is shown once, changes apply field by field, every bad input has
//! its code, and another tenant's endpoint does not exist.

use kontor_domain::tenant::{Scope, Scopes};
use kontor_test_support::{TestApp, error_code};
use serde_json::{Value, json};

use super::{hooks, hooks_on, local};

#[tokio::test]
async fn endpoints_are_created_read_changed_and_deleted() {
    let h = hooks().await;
    let created = h
        .endpoint(
            "http://127.0.0.1:9009/hook",
            &["connection.active", "user.erased"],
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("whe_"));
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["status"], "enabled");
    assert_eq!(
        created["events"],
        json!(["connection.active", "user.erased"])
    );

    // The secret is never shown again.
    let read = h.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert!(read.get("secret").is_none(), "{read}");
    assert_eq!(read["url"], "http://127.0.0.1:9009/hook");
    let list = h.get("/v1/webhook-endpoints").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["next_cursor"].is_null());
    assert!(!list.to_string().contains(secret));

    let patch = |body: Value| {
        let app = &h.app;
        let token = h.token.clone();
        let url = app.url(&format!("/v1/webhook-endpoints/{id}"));
        async move {
            app.http
                .patch(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let changed: Value = patch(json!({ "events": ["*"], "description": "orders" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["events"], json!(["*"]));
    assert_eq!(changed["description"], "orders");
    let disabled: Value = patch(json!({ "status": "disabled", "description": null }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["disabled_reason"], "tenant");
    assert!(disabled["description"].is_null());
    assert_eq!(disabled["events"], json!(["*"]), "untouched fields stay");
    let enabled: Value = patch(json!({ "status": "enabled" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["status"], "enabled");
    assert!(enabled["disabled_reason"].is_null());

    let response = h
        .app
        .delete(&format!("/v1/webhook-endpoints/{id}"), &h.token)
        .await;
    assert_eq!(response.status(), 204);
    let gone = h
        .app
        .get(&format!("/v1/webhook-endpoints/{id}"), &h.token)
        .await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn bad_input_is_refused_with_its_code_and_changes_nothing() {
    let h = hooks().await;
    let post = async |body: Value| {
        h.app
            .post_json("/v1/webhook-endpoints", &h.token, &body)
            .await
    };
    for (body, code) in [
        (
            json!({ "url": "not a url", "events": ["*"] }),
            "invalid_webhook_url",
        ),
        (
            json!({ "url": "ftp://hooks.example/", "events": ["*"] }),
            "invalid_webhook_url",
        ),
        (
            json!({ "url": "http://u:p@127.0.0.1/", "events": ["*"] }),
            "invalid_webhook_url",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "events": [] }),
            "invalid_event_types",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "events": ["user.exploded"] }),
            "invalid_event_types",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "events": ["*", "user.erased"] }),
            "invalid_event_types",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "events": ["*"], "description": "x".repeat(501) }),
            "invalid_description",
        ),
        (
            json!({ "url": "http://127.0.0.1/", "events": ["*"], "secret": "mine" }),
            "unknown_field",
        ),
        (json!({ "url": "http://127.0.0.1/" }), "missing_field"),
        (json!({ "url": 1, "events": ["*"] }), "invalid_type"),
    ] {
        let response = post(body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    assert!(
        h.get("/v1/webhook-endpoints").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let created = h.endpoint("http://127.0.0.1:9009/hook", &["*"]).await;
    let id = created["id"].as_str().unwrap();
    let response = h
        .app
        .http
        .patch(h.app.url(&format!("/v1/webhook-endpoints/{id}")))
        .bearer_auth(&h.token)
        .json(&json!({ "status": "paused" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, "invalid_endpoint_status");
    for path in [
        "/v1/webhook-endpoints/nope",
        "/v1/webhook-endpoints/usr_uk_00000000000000000000000000",
    ] {
        let response = h.app.get(path, &h.token).await;
        assert_eq!(response.status(), 400);
        assert_eq!(error_code(response).await, "invalid_id");
    }

    // Another tenant sees nothing of it.
    let other = h.app.tenant("Other").await;
    let other_token = h.app.token(&other).await;
    for path in [
        format!("/v1/webhook-endpoints/{id}"),
        format!("/v1/webhook-endpoints/{id}/deliveries"),
    ] {
        assert_eq!(h.app.get(&path, &other_token).await.status(), 404, "{path}");
    }
    let rotate = h
        .app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &other_token,
            &json!({}),
        )
        .await;
    assert_eq!(rotate.status(), 404);
    assert_eq!(
        h.app
            .delete(&format!("/v1/webhook-endpoints/{id}"), &other_token)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn endpoints_need_the_webhooks_scope_and_are_limited() {
    let app = TestApp::builder().hub_settings(local).spawn().await;
    let reader = app
        .tenant_with_scopes("Reader", Some(Scopes::parse("events:read").unwrap()))
        .await;
    let token = app.token(&reader).await;
    let response = app
        .post_json(
            "/v1/webhook-endpoints",
            &token,
            &json!({ "url": "http://127.0.0.1/", "events": ["*"] }),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(response).await, "insufficient_scope");
    assert_eq!(app.get("/v1/webhook-endpoints", &token).await.status(), 403);
    assert!(Scopes::all().contains(Scope::WebhooksManage));

    let h = hooks_on(app).await;
    for _ in 0..16 {
        h.endpoint("http://127.0.0.1:9009/hook", &["*"]).await;
    }
    let response = h
        .app
        .post_json(
            "/v1/webhook-endpoints",
            &h.token,
            &json!({ "url": "http://127.0.0.1:9009/hook", "events": ["*"] }),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "webhook_endpoint_limit");
}
