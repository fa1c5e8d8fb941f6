//! The OpenAPI document (snapshotted, so API changes show in review) and the `/docs` page, whose
//! assets the binary serves itself.

use kontor_api::ErrorCode;
use kontor_test_support::TestApp;
use serde_json::Value;

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = TestApp::spawn().await;
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let first = response.bytes().await.unwrap();
    // The same document on every request.
    let again = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap(), first);
    let doc: Value = serde_json::from_slice(&first).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn openapi_lists_every_route_and_error_code() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/oauth/token",
        "/v1/users",
        "/v1/users/{id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the document"
        );
    }
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(codes.len(), ErrorCode::ALL.len());
    for code in ErrorCode::ALL {
        assert!(
            codes.contains(&Value::String(code.as_str().to_owned())),
            "{}",
            code.as_str()
        );
    }
}

#[tokio::test]
async fn docs_page_and_assets_are_served_locally() {
    let app = TestApp::spawn().await;
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page must not load anything from the internet"
    );
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.unwrap();
        assert!(body.len() > 100, "{asset} is empty");
    }
    let init = app
        .http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}
