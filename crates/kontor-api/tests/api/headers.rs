//! Headers on every answer: API responses hold personal data and, once, a webhook secret, so
//! nothing may cache them and no browser may sniff their type; the public API document may be
//! cached.

use kontor_test_support::TestApp;
use serde_json::json;

fn assert_private(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{what}: {headers:?}"
    );
    assert_eq!(
        headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff"),
        "{what}: {headers:?}"
    );
}

#[tokio::test]
async fn api_answers_are_not_cached_nor_sniffed() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;

    let user = app
        .post_json(
            "/v1/users",
            &token,
            &json!({ "external_id": "c-1", "region": "uk" }),
        )
        .await;
    assert_eq!(user.status(), 201);
    assert_private(&user, "POST /v1/users");
    let listed = app.get("/v1/users", &token).await;
    assert_private(&listed, "GET /v1/users");

    // The one answer that shows a webhook secret.
    let endpoint = app
        .post_json(
            "/v1/webhook-endpoints",
            &token,
            &json!({ "url": "https://1.1.1.1/hook", "events": ["*"] }),
        )
        .await;
    assert_eq!(endpoint.status(), 201);
    assert_private(&endpoint, "POST /v1/webhook-endpoints");

    // Errors too, including those no handler answers.
    let unauthorised = app.http.get(app.url("/v1/users")).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    assert_private(&unauthorised, "401");
    let missing = app.get("/v1/nothing-here", &token).await;
    assert_eq!(missing.status(), 404);
    assert_private(&missing, "404");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_private(&ready, "/readyz");
}

#[tokio::test]
async fn the_public_api_document_may_be_cached_but_not_sniffed() {
    let app = TestApp::spawn().await;
    for path in ["/openapi.json", "/docs/"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_ne!(
            headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
        assert_eq!(
            headers
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{path}"
        );
    }
}
