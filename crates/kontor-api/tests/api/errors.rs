//! Every bad input gets its own 4xx code in the error envelope, changes nothing, and the server
//! keeps serving.

use kontor_test_support::{TestApp, error_code};
use serde_json::json;

async fn post_raw(
    app: &TestApp,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.http
        .post(app.url("/v1/users"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_bodies_each_have_a_code_and_write_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let json_type = "application/json";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            json_type,
            b"{\"external_id\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (json_type, b"".to_vec(), 400, "malformed_json"),
        (
            json_type,
            b"{\"external_id\":\"a\",\"region\":\"uk\"} trailing".to_vec(),
            400,
            "malformed_json",
        ),
        (
            json_type,
            br#"{"external_id":"a","region":"uk","admin":true}"#.to_vec(),
            400,
            "unknown_field",
        ),
        (
            json_type,
            br#"{"external_id":"a"}"#.to_vec(),
            400,
            "missing_field",
        ),
        (
            json_type,
            br#"{"external_id":42,"region":"uk"}"#.to_vec(),
            400,
            "invalid_type",
        ),
        (
            json_type,
            br#"["external_id","region"]"#.to_vec(),
            400,
            "invalid_type",
        ),
        (
            json_type,
            br#"{"external_id":"a","region":"UK"}"#.to_vec(),
            400,
            "invalid_region",
        ),
        (
            json_type,
            br#"{"external_id":"a","region":"fr"}"#.to_vec(),
            400,
            "invalid_region",
        ),
        (
            json_type,
            br#"{"external_id":"","region":"uk"}"#.to_vec(),
            400,
            "invalid_external_id",
        ),
        (
            json_type,
            br#"{"external_id":" padded","region":"uk"}"#.to_vec(),
            400,
            "invalid_external_id",
        ),
        (
            "text/plain",
            br#"{"external_id":"a","region":"uk"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let response = post_raw(&app, &token, content_type, body).await;
        assert_eq!(response.status(), status, "{shown}");
        assert_eq!(error_code(response).await, code, "{shown}");
    }
    let long = json!({"external_id": "x".repeat(256), "region": "uk"});
    let response = app.post_json("/v1/users", &token, &long).await;
    assert_eq!(error_code(response).await, "invalid_external_id");

    assert_eq!(app.user_rows().await, 0, "no bad request wrote anything");
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;
    let huge = format!(
        r#"{{"external_id":"{}","region":"uk"}}"#,
        "x".repeat(100 * 1024)
    );
    let response = post_raw(&app, &token, "application/json", huge.into_bytes()).await;
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "payload_too_large");

    let response = app
        .http
        .post(app.url("/v1/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&pad={}",
            "x".repeat(100 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "payload_too_large");
    assert_eq!(app.user_rows().await, 0);
}

#[tokio::test]
async fn bad_ids_queries_and_routes() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let token = app.token(&tenant).await;

    let cases: &[(&str, u16, &str)] = &[
        ("/v1/users/not-an-id", 400, "invalid_id"),
        (
            "/v1/users/acc_uk_00000000000000000000000000",
            400,
            "invalid_id",
        ),
        // Not UTF-8 once decoded: refused before routing, for every route alike.
        ("/v1/users/usr_uk_%FF", 400, "invalid_encoding"),
        // Well formed, but no such region here: nothing can exist there.
        (
            "/v1/users/usr_fr_00000000000000000000000000",
            404,
            "not_found",
        ),
        (
            "/v1/users/usr_uk_00000000000000000000000000",
            404,
            "not_found",
        ),
        ("/v1/users?limit=0", 400, "invalid_query"),
        ("/v1/users?limit=abc", 400, "invalid_query"),
        ("/v1/users?limit=999", 400, "invalid_query"),
        ("/v1/users?colour=blue", 400, "invalid_query"),
        ("/v1/users?region=zz", 400, "invalid_region"),
        ("/v1/users?cursor=not-a-cursor", 400, "invalid_cursor"),
        (
            "/v1/users?external_id=a&cursor=eyJyIjoidWsifQ",
            400,
            "invalid_query",
        ),
        ("/v1/nothing-here", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let response = app.get(path, &token).await;
        assert_eq!(response.status(), *status, "{path}");
        assert_eq!(error_code(response).await, *code, "{path}");
    }
    // A cursor for a region the query excludes.
    let de_cursor = "eyJyIjoiZGUifQ"; // {"r":"de"}
    let response = app
        .get(&format!("/v1/users?region=uk&cursor={de_cursor}"), &token)
        .await;
    assert_eq!(error_code(response).await, "invalid_cursor");

    let response = app
        .http
        .put(app.url("/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_code(response).await, "method_not_allowed");
}
